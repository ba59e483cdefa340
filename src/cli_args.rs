//! The text syntax for kernel arguments, shared by `kernjit run`, the
//! `# run:` lines of `.kern` files and (later) `# bench:` lines.
//!
//! An argument is a scalar (`2.5`, `7`, `true`, `i32:7`), an `.npy` file
//! (`@data.npy`) or an array generator (`zeros(3, 4)`, `rand(64):f32`). Text
//! is first parsed into an [`ArgSpec`], which knows its kern [`Type`] without
//! allocating anything, and then [`materialise`]d into [`Value`]s. Random
//! generators are reproducible across languages: one splitmix64 stream per
//! call, seeded by the caller and consumed left to right, exactly as the
//! CPython reference runner (`tests/cpython/run_kern.py`) does it.
//!
//! This module turns text into values and values into `.npy` files; it never
//! prints, never runs a kernel and never exits the process.

use crate::types::{ArrayType, ScalarType, Type, MAX_NDIM};
use crate::value::{ArrayData, Element, Scalar, Value};
use ndarray::ArrayD;
use ndarray_npy::{ReadNpyExt, WriteNpyExt};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

/// The largest number of elements a generator may create (2^31).
pub const MAX_GENERATED_ELEMENTS: u64 = 1 << 31;

/// What every argument may look like, for error messages.
const ACCEPTED: &str = "expected a number (`2.5`, `7`, `-3`), `true`/`false`, a typed scalar \
     (`i32:7`, `f32:2.5`, `u8:3`, `bool:1`), an array file (`@data.npy`), or a generator \
     `zeros(d0, ...)`, `ones(...)`, `full(d0, ..., v)`, `arange(...)`, `rand(...)`, `randn(...)` \
     with an optional `:dtype` suffix (`rand(64, 64):f32`)";

/// The names of the array generators, as written in arguments.
const GENERATOR_NAMES: [&str; 6] = ["zeros", "ones", "full", "arange", "rand", "randn"];

/// One parsed argument, not yet turned into a value.
#[derive(Clone, Debug, PartialEq)]
pub enum ArgSpec {
    /// A scalar of a definite dtype.
    Scalar(Scalar),
    /// An array made by a generator.
    Generate { generator: Generator, shape: Vec<usize>, dtype: ScalarType },
    /// An array loaded from an `.npy` file; the path is as written (relative
    /// paths are resolved against the base directory given to
    /// [`ArgSpec::ty`] and [`materialise`]).
    Npy(PathBuf),
}

/// How a generated array is filled (C order).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Generator {
    Zeros,
    Ones,
    /// Every element is this value (already of the array's dtype).
    Full(Scalar),
    /// 0, 1, 2, ... in C order.
    Arange,
    /// Uniform on [0, 1).
    Rand,
    /// Standard normal.
    Randn,
}

impl ArgSpec {
    /// The kern type of the value this argument becomes, without allocating
    /// it. For an `.npy` file only the header is read (and the file's length
    /// checked against it); a relative path is resolved against `base_dir`.
    pub fn ty(&self, base_dir: &Path) -> Result<Type, String> {
        match self {
            ArgSpec::Scalar(scalar) => Ok(Type::Scalar(scalar.ty())),
            ArgSpec::Generate { shape, dtype, .. } => {
                Ok(Type::Array(ArrayType { dtype: *dtype, ndim: shape.len() as u8 }))
            }
            ArgSpec::Npy(path) => {
                let header = check_npy_file(&base_dir.join(path))?;
                Ok(Type::Array(ArrayType { dtype: header.dtype, ndim: header.shape.len() as u8 }))
            }
        }
    }
}

/// Splits `kernel(ARG, ARG, ...)` into the kernel name and the raw argument
/// texts (split on commas outside brackets, each trimmed).
pub fn parse_call(text: &str) -> Result<(String, Vec<String>), String> {
    let text = text.trim();
    let shape_help = "a call looks like `kernel(ARG, ARG, ...)`";
    let open = text.find('(').ok_or_else(|| format!("`{text}`: missing `(`; {shape_help}"))?;
    let name = text[..open].trim();
    if !is_identifier(name) {
        return Err(format!("`{text}`: `{name}` is not a kernel name; {shape_help}"));
    }
    let inner = text[open + 1..]
        .strip_suffix(')')
        .ok_or_else(|| format!("`{text}`: the call must end with `)`; {shape_help}"))?;
    let args = split_top_level(inner).map_err(|message| format!("`{text}`: {message}"))?;
    Ok((name.to_string(), args))
}

/// Every `# run: CALL` comment line of a source file, as (1-based line
/// number, call text).
pub fn run_lines(source: &str) -> Vec<(usize, String)> {
    tagged_lines(source, "run:")
}

/// The `# bench: CALL` comments of a source file (the calls `kernjit bench`
/// measures), with their 1-based line numbers.
pub fn bench_lines(source: &str) -> Vec<(usize, String)> {
    tagged_lines(source, "bench:")
}

fn tagged_lines(source: &str, tag: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    for (index, line) in source.lines().enumerate() {
        let Some(comment) = line.trim_start().strip_prefix('#') else { continue };
        if let Some(call) = comment.trim_start().strip_prefix(tag) {
            lines.push((index + 1, call.trim().to_string()));
        }
    }
    lines
}

/// Parses one argument (see the module documentation for the syntax).
pub fn parse_arg(text: &str) -> Result<ArgSpec, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!("empty argument; {ACCEPTED}"));
    }
    if let Some(path) = text.strip_prefix('@') {
        let path = path.trim();
        if path.is_empty() {
            return Err("`@` must be followed by the path of an .npy file (`@data.npy`)".into());
        }
        return Ok(ArgSpec::Npy(PathBuf::from(path)));
    }
    let word_end = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(text.len());
    let (word, rest) = text.split_at(word_end);
    let rest_trimmed = rest.trim_start();
    if rest_trimmed.starts_with('(') && is_identifier(word) {
        return parse_generator(text, word, rest_trimmed);
    }
    if let Some(value_text) = rest_trimmed.strip_prefix(':') {
        if let Some(dtype) = kern_dtype(word) {
            let literal = parse_literal(value_text.trim()).map_err(|message| format!("`{text}`: {message}"))?;
            if let Literal::Typed(_) = literal {
                return Err(format!("`{text}`: a typed scalar takes a plain number after `{word}:`"));
            }
            return literal
                .to_scalar(dtype, true)
                .map(ArgSpec::Scalar)
                .map_err(|message| format!("`{text}`: {message}"));
        }
        if is_identifier(word) {
            return Err(format!("`{text}`: `{word}` is not a dtype (accepted: {})", dtype_list()));
        }
    }
    match parse_literal(text) {
        Ok(literal) => literal
            .to_scalar(literal.default_dtype(), true)
            .map(ArgSpec::Scalar)
            .map_err(|message| format!("`{text}`: {message}")),
        Err(_) => Err(format!("`{text}` is not a valid argument; {ACCEPTED}")),
    }
}

/// Turns parsed arguments into values. One splitmix64 generator seeded with
/// `seed` is consumed by the random generators from left to right; `.npy`
/// paths are resolved against `base_dir`.
pub fn materialise(specs: &[ArgSpec], seed: u64, base_dir: &Path) -> Result<Vec<Value>, String> {
    let mut rng = SplitMix64::new(seed);
    let mut values = Vec::with_capacity(specs.len());
    for spec in specs {
        let value = match spec {
            ArgSpec::Scalar(scalar) => Value::Scalar(*scalar),
            ArgSpec::Generate { generator, shape, dtype } => {
                Value::Array(generate(*generator, shape, *dtype, &mut rng)?)
            }
            ArgSpec::Npy(path) => Value::Array(read_npy(&base_dir.join(path))?),
        };
        values.push(value);
    }
    Ok(values)
}

/// Reads an `.npy` file holding an array kern supports (1 to 3 dimensions,
/// C or Fortran order, a dtype kern has). A file that is malformed or whose
/// header promises more or less data than it holds gives an error.
pub fn read_npy(path: &Path) -> Result<ArrayData, String> {
    let shown = path.display();
    let header = check_npy_file(path)?;
    // The header is sound and the data is all there: let ndarray-npy read the
    // file from the start (it handles byte order and Fortran order).
    let file = File::open(path).map_err(|error| format!("{shown}: {error}"))?;
    let reader = BufReader::new(file);
    let result = match header.dtype {
        ScalarType::Bool => read_typed::<bool>(reader),
        ScalarType::I8 => read_typed::<i8>(reader),
        ScalarType::I16 => read_typed::<i16>(reader),
        ScalarType::I32 => read_typed::<i32>(reader),
        ScalarType::I64 => read_typed::<i64>(reader),
        ScalarType::U8 => read_typed::<u8>(reader),
        ScalarType::U16 => read_typed::<u16>(reader),
        ScalarType::U32 => read_typed::<u32>(reader),
        ScalarType::U64 => read_typed::<u64>(reader),
        ScalarType::F32 => read_typed::<f32>(reader),
        ScalarType::F64 => read_typed::<f64>(reader),
    };
    result.map_err(|message| format!("{shown}: {message}"))
}

/// Reads the header of an `.npy` file and checks that the file holds exactly
/// the data the header promises (without reading the data).
fn check_npy_file(path: &Path) -> Result<NpyHeader, String> {
    let shown = path.display();
    let mut file = File::open(path).map_err(|error| format!("{shown}: {error}"))?;
    let header = read_npy_header(&mut file).map_err(|message| format!("{shown}: {message}"))?;
    let file_len = file.metadata().map_err(|error| format!("{shown}: {error}"))?.len();
    // The extents must multiply out within isize::MAX bytes even when one of
    // them is 0 (as ndarray requires, counting a 0 extent as 1).
    let full_len =
        header.shape.iter().try_fold(header.dtype.size_bytes() as u64, |acc, &d| acc.checked_mul(d.max(1) as u64));
    let Some(full_len) = full_len.filter(|&len| len <= isize::MAX as u64) else {
        return Err(format!("{shown}: the shape in the header is too large"));
    };
    let data_len = if header.shape.contains(&0) { 0 } else { full_len };
    let present = file_len.saturating_sub(header.data_offset);
    if present < data_len {
        return Err(format!(
            "{shown}: truncated file: the header promises {data_len} bytes of data but only {present} are present"
        ));
    }
    if present > data_len {
        return Err(format!("{shown}: {} unexpected bytes after the array data", present - data_len));
    }
    Ok(header)
}

/// Writes an array as an `.npy` file (C or Fortran order as it is laid out;
/// other strides are written in C order).
pub fn write_npy(path: &Path, array: &ArrayData) -> Result<(), String> {
    let shown = path.display();
    let file = File::create(path).map_err(|error| format!("{shown}: {error}"))?;
    let writer = BufWriter::new(file);
    crate::with_array!(array, a => a.write_npy(writer)).map_err(|error| format!("{shown}: cannot write .npy: {error}"))
}

// ---------------------------------------------------------------------------
// Scalars and literals

/// A number as written, before it gets a dtype.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Literal {
    Bool(bool),
    Int(i128),
    Float(f64),
    /// `i32:7`, allowed as the fill value of `full`.
    Typed(Scalar),
}

impl Literal {
    /// The dtype a literal gets when none is written.
    fn default_dtype(self) -> ScalarType {
        match self {
            Literal::Bool(_) => ScalarType::Bool,
            Literal::Int(_) => ScalarType::I64,
            Literal::Float(_) => ScalarType::F64,
            Literal::Typed(scalar) => scalar.ty(),
        }
    }

    /// Converts to `dtype`. An integer must fit an integer dtype; a float
    /// going to an integer dtype truncates toward zero and, when `strict`,
    /// must be finite and in range (otherwise it is cast like `astype`).
    fn to_scalar(self, dtype: ScalarType, strict: bool) -> Result<Scalar, String> {
        if dtype == ScalarType::Bool {
            return Ok(Scalar::Bool(match self {
                Literal::Bool(v) => v,
                Literal::Int(v) => v != 0,
                Literal::Float(v) => v != 0.0,
                Literal::Typed(scalar) => scalar.is_truthy(),
            }));
        }
        match self {
            Literal::Typed(scalar) => Ok(scalar.cast(dtype)),
            Literal::Bool(v) => Ok(Scalar::from_i128_wrapping(v as i128, dtype)),
            Literal::Int(v) if dtype.is_int() => {
                let (low, high) = dtype.int_range();
                if v < low || v > high {
                    return Err(format!("{v} is out of range for {dtype} ({low} to {high})"));
                }
                Ok(Scalar::from_i128_wrapping(v, dtype))
            }
            // Through f64 first, as Python's float(int) does.
            Literal::Int(v) => Ok(Scalar::F64(v as f64).cast(dtype)),
            Literal::Float(v) if dtype.is_int() && strict => {
                if !v.is_finite() {
                    return Err(format!("cannot convert {} to {dtype}", Scalar::F64(v)));
                }
                Literal::Int(v.trunc() as i128).to_scalar(dtype, strict)
            }
            Literal::Float(v) => Ok(Scalar::F64(v).cast(dtype)),
        }
    }
}

/// Parses a number the way the CPython runner does: `_` separators, `0x`,
/// `0b`, `0o` prefixes, decimal ints, Python floats (`inf`, `nan`, `1e-3`)
/// and `true`/`false` in any case.
fn parse_number(text: &str) -> Result<Literal, String> {
    let cleaned: String = text.trim().chars().filter(|&c| c != '_').collect();
    let lower = cleaned.to_ascii_lowercase();
    if lower == "true" || lower == "false" {
        return Ok(Literal::Bool(lower == "true"));
    }
    let (negative, body) = match cleaned.as_bytes().first() {
        Some(b'-') => (true, &cleaned[1..]),
        Some(b'+') => (false, &cleaned[1..]),
        _ => (false, cleaned.as_str()),
    };
    let radix_body = match body.get(..2).map(|p| p.to_ascii_lowercase()) {
        Some(prefix) if prefix == "0x" => Some((16, &body[2..])),
        Some(prefix) if prefix == "0b" => Some((2, &body[2..])),
        Some(prefix) if prefix == "0o" => Some((8, &body[2..])),
        _ => None,
    };
    let integer = match radix_body {
        Some((radix, digits)) => Some((radix, digits)),
        None if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) => Some((10, body)),
        None => None,
    };
    if let Some((radix, digits)) = integer {
        if digits.is_empty() || digits.starts_with(['+', '-']) {
            return Err(format!("`{text}` is not a number"));
        }
        let magnitude = i128::from_str_radix(digits, radix).map_err(|_| format!("`{text}` is too large"))?;
        return Ok(Literal::Int(if negative { -magnitude } else { magnitude }));
    }
    if !cleaned.is_empty() && cleaned.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) {
        if let Ok(value) = cleaned.parse::<f64>() {
            return Ok(Literal::Float(value));
        }
    }
    Err(format!("`{text}` is not a number"))
}

/// A plain number or a typed scalar (`i32:7`).
fn parse_literal(text: &str) -> Result<Literal, String> {
    let text = text.trim();
    if let Some((word, value_text)) = text.split_once(':') {
        let word = word.trim();
        let dtype = kern_dtype(word).ok_or_else(|| format!("`{word}` is not a dtype (accepted: {})", dtype_list()))?;
        let literal = parse_number(value_text)?;
        return literal.to_scalar(dtype, true).map(Literal::Typed);
    }
    parse_number(text)
}

/// The kern short dtype names only (`f64`, `u8`, `bool`), as in the CPython
/// runner, so a run line means the same in both.
fn kern_dtype(name: &str) -> Option<ScalarType> {
    ScalarType::ALL.into_iter().find(|dtype| dtype.name() == name)
}

fn dtype_list() -> String {
    let names: Vec<&str> = ScalarType::ALL.iter().map(|dtype| dtype.name()).collect();
    names.join(", ")
}

fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Splits on commas outside `()` and `[]`; every part must be non-empty.
/// An empty or blank text gives no parts.
fn split_top_level(text: &str) -> Result<Vec<String>, String> {
    let mut parts = Vec::new();
    let mut depth: i32 = 0;
    let mut start = 0;
    for (index, c) in text.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced `{c}`"));
                }
            }
            ',' if depth == 0 => {
                parts.push(text[start..index].trim().to_string());
                start = index + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced `(` or `[`".into());
    }
    let last = text[start..].trim();
    if !last.is_empty() || !parts.is_empty() {
        parts.push(last.to_string());
    }
    if parts.iter().any(|part| part.is_empty()) {
        return Err("empty argument (two commas in a row, or a trailing comma)".into());
    }
    Ok(parts)
}

// ---------------------------------------------------------------------------
// Generators

/// Parses `NAME(...)` with an optional `:dtype` suffix; `rest` starts at `(`.
fn parse_generator(text: &str, name: &str, rest: &str) -> Result<ArgSpec, String> {
    let generator_help = "generators take 1 to 3 dimensions: `zeros(d0, ...)`, `ones(...)`, \
         `full(d0, ..., v)`, `arange(...)`, `rand(...)`, `randn(...)`, optionally followed by `:dtype`";
    if !GENERATOR_NAMES.contains(&name) {
        return Err(format!("`{text}`: `{name}` is not a generator; {generator_help}"));
    }
    let close = matching_paren(rest).ok_or_else(|| format!("`{text}`: missing `)`"))?;
    let inner = &rest[1..close];
    let suffix = rest[close + 1..].trim();
    let dtype = if suffix.is_empty() {
        None
    } else {
        let dtype_name = suffix.strip_prefix(':').map(str::trim).ok_or_else(|| {
            format!("`{text}`: unexpected `{suffix}` after `)`; a dtype is written `{name}(...):f32`")
        })?;
        Some(
            kern_dtype(dtype_name)
                .ok_or_else(|| format!("`{text}`: `{dtype_name}` is not a dtype (accepted: {})", dtype_list()))?,
        )
    };
    let mut parts = split_top_level(inner).map_err(|message| format!("`{text}`: {message}"))?;
    let fill = if name == "full" {
        if parts.len() < 2 {
            return Err(format!("`{text}`: `full` takes dimensions and then a fill value, as in `full(3, 4, 2.5)`"));
        }
        let fill_text = parts.pop().unwrap_or_default();
        Some(parse_literal(&fill_text).map_err(|message| format!("`{text}`: bad fill value: {message}"))?)
    } else {
        None
    };
    let shape = parse_shape(text, &parts, generator_help)?;
    let (generator, dtype) = match (name, fill) {
        ("full", Some(fill)) => {
            let dtype = dtype.unwrap_or(fill.default_dtype());
            let value = fill.to_scalar(dtype, false).map_err(|message| format!("`{text}`: fill value: {message}"))?;
            (Generator::Full(value), dtype)
        }
        ("zeros", _) => (Generator::Zeros, dtype.unwrap_or(ScalarType::F64)),
        ("ones", _) => (Generator::Ones, dtype.unwrap_or(ScalarType::F64)),
        ("arange", _) => (Generator::Arange, dtype.unwrap_or(ScalarType::I64)),
        ("rand", _) => (Generator::Rand, dtype.unwrap_or(ScalarType::F64)),
        _ => (Generator::Randn, dtype.unwrap_or(ScalarType::F64)),
    };
    Ok(ArgSpec::Generate { generator, shape, dtype })
}

/// The dimensions of a generator: 1 to 3 non-negative integers whose product
/// is at most [`MAX_GENERATED_ELEMENTS`].
fn parse_shape(text: &str, parts: &[String], generator_help: &str) -> Result<Vec<usize>, String> {
    if parts.is_empty() || parts.len() > MAX_NDIM {
        return Err(format!("`{text}`: arrays have 1 to {MAX_NDIM} dimensions, got {}; {generator_help}", parts.len()));
    }
    let mut shape = Vec::with_capacity(parts.len());
    let mut count: u128 = 1;
    for part in parts {
        let dim = match parse_number(part) {
            Ok(Literal::Int(dim)) if dim >= 0 => dim,
            Ok(Literal::Int(_)) => {
                return Err(format!("`{text}`: dimension `{part}` is negative; dimensions are integers ≥ 0"))
            }
            _ => return Err(format!("`{text}`: dimension `{part}` is not an integer; dimensions are integers ≥ 0")),
        };
        count = count.saturating_mul(dim.min(u64::MAX as i128) as u128);
        if count > MAX_GENERATED_ELEMENTS as u128 {
            return Err(format!("`{text}`: too many elements (at most 2^31 = {MAX_GENERATED_ELEMENTS})"));
        }
        shape.push(dim as usize);
    }
    Ok(shape)
}

/// The index of the `)` matching the `(` at the start of `text`.
fn matching_paren(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    for (index, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(index);
                }
            }
            _ => {}
        }
    }
    None
}

/// Fills a generated array in C order: values are made as f64 (random,
/// ones, zeros) or i64 (arange) and cast to `dtype` with [`Scalar::cast`].
fn generate(
    generator: Generator,
    shape: &[usize],
    dtype: ScalarType,
    rng: &mut SplitMix64,
) -> Result<ArrayData, String> {
    let count: usize = shape.iter().product();
    if count as u64 > MAX_GENERATED_ELEMENTS {
        return Err(format!("an array of shape {shape:?} has too many elements (at most 2^31)"));
    }
    let mut values = Vec::new();
    values.try_reserve_exact(count).map_err(|_| format!("cannot allocate an array of shape {shape:?}"))?;
    for index in 0..count {
        let value = match generator {
            Generator::Zeros => Scalar::F64(0.0),
            Generator::Ones => Scalar::F64(1.0),
            Generator::Full(value) => value,
            Generator::Arange => Scalar::I64(index as i64),
            Generator::Rand => Scalar::F64(rng.uniform()),
            Generator::Randn => Scalar::F64(rng.normal()),
        };
        values.push(value.cast(dtype));
    }
    Ok(ArrayData::from_scalars(dtype, shape, &values))
}

/// The splitmix64 generator, bit-exact with the CPython runner's.
struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1) with 53 random bits.
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 * 2f64.powi(-53)
    }

    /// Standard normal by Box–Muller (one value per two uniforms).
    fn normal(&mut self) -> f64 {
        let u1 = self.uniform();
        let u2 = self.uniform();
        (-2.0 * (1.0 - u1).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

// ---------------------------------------------------------------------------
// .npy headers

/// What an `.npy` header says about the data after it.
#[derive(Clone, Debug, PartialEq)]
struct NpyHeader {
    dtype: ScalarType,
    shape: Vec<usize>,
    fortran_order: bool,
    /// Where the data starts, in bytes from the start of the file.
    data_offset: u64,
}

/// The longest header we read; NumPy's own are under 100 bytes.
const MAX_NPY_HEADER_BYTES: usize = 1 << 20;

/// Reads and checks the magic, version and header dictionary of an `.npy`
/// file, leaving `reader` at the start of the data.
fn read_npy_header(reader: &mut impl Read) -> Result<NpyHeader, String> {
    let not_npy = "not an .npy file (it does not start with the `\\x93NUMPY` magic)";
    let mut magic = [0u8; 8];
    reader.read_exact(&mut magic).map_err(|_| not_npy.to_string())?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err(not_npy.into());
    }
    let major = magic[6];
    let (header_len, prefix_len) = match major {
        1 => {
            let mut len = [0u8; 2];
            reader.read_exact(&mut len).map_err(|_| "truncated .npy header".to_string())?;
            (u16::from_le_bytes(len) as usize, 10)
        }
        2 | 3 => {
            let mut len = [0u8; 4];
            reader.read_exact(&mut len).map_err(|_| "truncated .npy header".to_string())?;
            (u32::from_le_bytes(len) as usize, 12)
        }
        other => return Err(format!("unsupported .npy format version {other}.{} (1.0 to 3.0 are read)", magic[7])),
    };
    if header_len > MAX_NPY_HEADER_BYTES {
        return Err(format!("the .npy header claims to be {header_len} bytes long, which is not plausible"));
    }
    let mut header_bytes = Vec::new();
    reader
        .take(header_len as u64)
        .read_to_end(&mut header_bytes)
        .map_err(|error| format!("cannot read the .npy header: {error}"))?;
    if header_bytes.len() < header_len {
        return Err("truncated .npy header".into());
    }
    // Versions 1 and 2 are latin-1; every byte we care about is ASCII.
    let header_text: String = header_bytes.iter().map(|&b| b as char).collect();
    let fields = parse_header_dict(&header_text)
        .map_err(|message| format!("bad .npy header `{}`: {message}", header_text.trim()))?;
    let mut descr = None;
    let mut fortran_order = None;
    let mut shape = None;
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("descr", PyLiteral::Str(text)) => descr = Some(text),
            ("descr", _) => {
                return Err("structured (record) dtypes are not supported; kern arrays hold one scalar dtype".into())
            }
            ("fortran_order", PyLiteral::Bool(flag)) => fortran_order = Some(flag),
            ("shape", PyLiteral::Tuple(dims)) => shape = Some(dims),
            (key, _) => return Err(format!("bad .npy header: unexpected value for `{key}`")),
        }
    }
    let (Some(descr), Some(fortran_order), Some(shape)) = (descr, fortran_order, shape) else {
        return Err("bad .npy header: it must give `descr`, `fortran_order` and `shape`".into());
    };
    let dtype = dtype_of_descr(&descr)?;
    if shape.is_empty() {
        return Err("0-dimensional arrays are not supported; pass a scalar argument instead (`2.5`, `i32:7`)".into());
    }
    if shape.len() > MAX_NDIM {
        return Err(format!("the array has {} dimensions; kern arrays have 1 to {MAX_NDIM}", shape.len()));
    }
    Ok(NpyHeader { dtype, shape, fortran_order, data_offset: (prefix_len + header_len) as u64 })
}

/// The dtype of an `.npy` type descriptor, accepting exactly the spellings
/// ndarray-npy reads (little- and big-endian, `|` for one-byte types).
fn dtype_of_descr(descr: &str) -> Result<ScalarType, String> {
    use ScalarType::*;
    let dtype = match descr {
        "|b1" => Bool,
        "|i1" | "i1" | "b" => I8,
        "|u1" | "u1" | "B" => U8,
        "<i2" | ">i2" => I16,
        "<i4" | ">i4" => I32,
        "<i8" | ">i8" => I64,
        "<u2" | ">u2" => U16,
        "<u4" | ">u4" => U32,
        "<u8" | ">u8" => U64,
        "<f4" | ">f4" => F32,
        "<f8" | ">f8" => F64,
        other => {
            return Err(format!(
                "dtype `{other}` is not supported (kern reads bool `|b1`, ints `|i1`, `<i2`, `<i4`, `<i8`, `|u1`, `<u2`, `<u4`, `<u8`, \
                 floats `<f4`, `<f8`; big-endian `>` also works)"
            ))
        }
    };
    Ok(dtype)
}

/// The values an `.npy` header dictionary may hold.
#[derive(Clone, Debug, PartialEq)]
enum PyLiteral {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
    /// Anything else we recognise but do not use (a list, a number).
    Other,
}

/// Parses the Python dict literal of an `.npy` header:
/// `{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_header_dict(text: &str) -> Result<Vec<(String, PyLiteral)>, String> {
    let mut cursor = HeaderCursor { bytes: text.as_bytes(), position: 0 };
    cursor.expect(b'{')?;
    let mut fields = Vec::new();
    loop {
        cursor.skip_space();
        if cursor.eat(b'}') {
            break;
        }
        let key = cursor.string()?;
        cursor.expect(b':')?;
        let value = cursor.value()?;
        fields.push((key, value));
        cursor.skip_space();
        if !cursor.eat(b',') {
            cursor.expect(b'}')?;
            break;
        }
    }
    cursor.skip_space();
    if cursor.position != cursor.bytes.len() {
        return Err("unexpected text after `}`".into());
    }
    Ok(fields)
}

struct HeaderCursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl HeaderCursor<'_> {
    fn skip_space(&mut self) {
        while self.bytes.get(self.position).is_some_and(|b| b.is_ascii_whitespace()) {
            self.position += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.skip_space();
        if self.bytes.get(self.position) == Some(&byte) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(format!("expected `{}`", byte as char))
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.skip_space();
        let quote = match self.bytes.get(self.position) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err("expected a quoted string".into()),
        };
        let start = self.position + 1;
        let length = self.bytes[start..].iter().position(|&b| b == quote).ok_or("unterminated string")?;
        self.position = start + length + 1;
        Ok(self.bytes[start..start + length].iter().map(|&b| b as char).collect())
    }

    fn word(&mut self) -> &str {
        self.skip_space();
        let start = self.position;
        while self.bytes.get(self.position).is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-') {
            self.position += 1;
        }
        std::str::from_utf8(&self.bytes[start..self.position]).unwrap_or("")
    }

    fn value(&mut self) -> Result<PyLiteral, String> {
        self.skip_space();
        match self.bytes.get(self.position) {
            Some(b'\'' | b'"') => self.string().map(PyLiteral::Str),
            Some(b'(') => {
                self.position += 1;
                let mut dims = Vec::new();
                loop {
                    if self.eat(b')') {
                        break;
                    }
                    let word = self.word().to_string();
                    let word = word.strip_suffix('L').unwrap_or(&word);
                    let dim = word.parse::<usize>().map_err(|_| format!("bad dimension `{word}` in shape"))?;
                    dims.push(dim);
                    if !self.eat(b',') {
                        self.expect(b')')?;
                        break;
                    }
                }
                Ok(PyLiteral::Tuple(dims))
            }
            Some(b'[') => {
                // A structured dtype's field list: skip to the matching `]`.
                let mut depth = 0usize;
                while let Some(&b) = self.bytes.get(self.position) {
                    self.position += 1;
                    match b {
                        b'[' => depth += 1,
                        b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Ok(PyLiteral::Other);
                            }
                        }
                        _ => {}
                    }
                }
                Err("unterminated `[`".into())
            }
            _ => match self.word() {
                "True" => Ok(PyLiteral::Bool(true)),
                "False" => Ok(PyLiteral::Bool(false)),
                "" => Err("expected a value".into()),
                _ => Ok(PyLiteral::Other),
            },
        }
    }
}

/// Reads a whole `.npy` file as an array of `T`, with at most 3 dimensions.
fn read_typed<T: Element + ndarray_npy::ReadableElement>(reader: impl Read) -> Result<ArrayData, String> {
    let array = ArrayD::<T>::read_npy(reader).map_err(|error| format!("cannot read .npy: {error}"))?;
    Ok(T::wrap(array))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ArrayD, IxDyn, ShapeBuilder};

    fn scalar(text: &str) -> Scalar {
        match parse_arg(text) {
            Ok(ArgSpec::Scalar(s)) => s,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn array(text: &str, seed: u64) -> ArrayData {
        let spec = parse_arg(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        match materialise(&[spec], seed, Path::new(".")) {
            Ok(mut values) => match values.remove(0) {
                Value::Array(a) => a,
                other => panic!("{text}: {other:?}"),
            },
            Err(e) => panic!("{text}: {e}"),
        }
    }

    fn error(text: &str) -> String {
        match parse_arg(text) {
            Err(e) => e,
            Ok(spec) => panic!("{text} should be rejected, got {spec:?}"),
        }
    }

    #[test]
    fn plain_scalars() {
        assert_eq!(scalar("2.5"), Scalar::F64(2.5));
        assert_eq!(scalar("7"), Scalar::I64(7));
        assert_eq!(scalar("-3"), Scalar::I64(-3));
        assert_eq!(scalar("+3"), Scalar::I64(3));
        assert_eq!(scalar("1_000"), Scalar::I64(1000));
        assert_eq!(scalar("0x1F"), Scalar::I64(31));
        assert_eq!(scalar("-0b101"), Scalar::I64(-5));
        assert_eq!(scalar("1e-3"), Scalar::F64(1e-3));
        assert_eq!(scalar("-1.5"), Scalar::F64(-1.5));
        assert_eq!(scalar(".5"), Scalar::F64(0.5));
        assert_eq!(scalar("true"), Scalar::Bool(true));
        assert_eq!(scalar("True"), Scalar::Bool(true));
        assert_eq!(scalar("false"), Scalar::Bool(false));
        assert_eq!(scalar("False"), Scalar::Bool(false));
        assert_eq!(scalar("inf"), Scalar::F64(f64::INFINITY));
        assert_eq!(scalar("-inf"), Scalar::F64(f64::NEG_INFINITY));
        assert!(matches!(scalar("nan"), Scalar::F64(v) if v.is_nan()));
        assert_eq!(scalar(" 4 "), Scalar::I64(4));
        assert_eq!(scalar("9223372036854775807"), Scalar::I64(i64::MAX));
        assert!(error("9223372036854775808").contains("out of range for i64"));
    }

    #[test]
    fn typed_scalars() {
        assert_eq!(scalar("i32:7"), Scalar::I32(7));
        assert_eq!(scalar("f32:2.5"), Scalar::F32(2.5));
        assert_eq!(scalar("u8:3"), Scalar::U8(3));
        assert_eq!(scalar("u8:255"), Scalar::U8(255));
        assert_eq!(scalar("bool:1"), Scalar::Bool(true));
        assert_eq!(scalar("bool:0"), Scalar::Bool(false));
        assert_eq!(scalar("i8:-128"), Scalar::I8(-128));
        assert_eq!(scalar("i64:-3"), Scalar::I64(-3));
        assert_eq!(scalar("u64:18446744073709551615"), Scalar::U64(u64::MAX));
        assert_eq!(scalar("f64:7"), Scalar::F64(7.0));
        assert_eq!(scalar("i32:2.9"), Scalar::I32(2), "float to int truncates");
        assert_eq!(scalar("i16:true"), Scalar::I16(1));
        assert_eq!(scalar("f32:1e300"), Scalar::F32(f32::INFINITY));
        assert_eq!(scalar("f32: 0.1"), Scalar::F32(0.1));
        let message = error("u8:300");
        assert!(message.contains("u8:300") && message.contains("out of range for u8"), "{message}");
        assert!(error("u8:-1").contains("out of range"));
        assert!(error("i8:128").contains("out of range"));
        assert!(error("i32:nan").contains("cannot convert"));
        assert!(error("f16:1").contains("not a dtype"));
        assert!(error("i32:abc").contains("not a number"));
        assert!(error("i32:i32:1").contains("plain number"));
    }

    #[test]
    fn bad_arguments_name_the_text_and_what_is_accepted() {
        for bad in ["abc", "1.2.3", "--", "0x", "1e", "[1, 2]", "x y"] {
            let message = error(bad);
            assert!(message.contains(bad), "{bad}: {message}");
            assert!(message.contains("expected a number"), "{bad}: {message}");
        }
        assert!(error("").contains("empty argument"));
        assert!(error("@").contains(".npy"));
        assert!(error("eye(3)").contains("not a generator"));
        assert!(error("zeros(3").contains("missing `)`"));
        assert!(error("zeros(3) x").contains("unexpected"));
        assert!(error("zeros(3):f16").contains("not a dtype"));
        assert!(error("zeros()").contains("1 to 3 dimensions, got 0"));
        assert!(error("zeros(1, 2, 3, 4)").contains("1 to 3 dimensions, got 4"));
        assert!(error("zeros(-1)").contains("negative"));
        assert!(error("zeros(2.5)").contains("not an integer"));
        assert!(error("zeros(true)").contains("not an integer"));
        assert!(error("zeros(3,,4)").contains("empty argument"));
        assert!(error("zeros(65536, 65536)").contains("too many elements"));
        assert!(error("zeros(2048, 1024, 1025)").contains("too many elements"));
        assert!(error("full(3)").contains("fill value"));
        assert!(error("full(3, x)").contains("bad fill value"));
        assert!(error("full(3, 300):u8").contains("out of range"));
    }

    #[test]
    fn generator_shapes_and_dtypes() {
        let spec = parse_arg("zeros(10):i64").unwrap();
        assert_eq!(spec, ArgSpec::Generate { generator: Generator::Zeros, shape: vec![10], dtype: ScalarType::I64 });
        assert_eq!(spec.ty(Path::new(".")).unwrap().to_string(), "i64[:]");
        assert_eq!(parse_arg("rand(64,64):f32").unwrap().ty(Path::new(".")).unwrap().to_string(), "f32[:, :]");
        assert_eq!(parse_arg("randn(2, 3, 4)").unwrap().ty(Path::new(".")).unwrap().to_string(), "f64[:, :, :]");
        assert_eq!(parse_arg("arange(5)").unwrap().ty(Path::new(".")).unwrap().to_string(), "i64[:]");
        assert_eq!(parse_arg("ones(5) : u8").unwrap().ty(Path::new(".")).unwrap().to_string(), "u8[:]");
        assert_eq!(parse_arg("full(2, 3, 7)").unwrap().ty(Path::new(".")).unwrap().to_string(), "i64[:, :]");
        assert_eq!(parse_arg("full(2, 3, 7.0)").unwrap().ty(Path::new(".")).unwrap().to_string(), "f64[:, :]");
        assert_eq!(parse_arg("full(2, true)").unwrap().ty(Path::new(".")).unwrap().to_string(), "bool[:]");
        assert_eq!(parse_arg("full(2, i32:7)").unwrap().ty(Path::new(".")).unwrap().to_string(), "i32[:]");
        assert_eq!(parse_arg("full(2, i32:7):f32").unwrap().ty(Path::new(".")).unwrap().to_string(), "f32[:]");
        assert_eq!(scalar("7").ty(), ScalarType::I64);

        let a = array("arange(2, 3)", 0);
        assert_eq!(a.shape(), vec![2, 3]);
        assert_eq!(a.to_scalars(), (0..6).map(Scalar::I64).collect::<Vec<_>>());
        let a = array("arange(300):u8", 0);
        assert_eq!(a.to_scalars()[299], Scalar::U8(43), "arange casts by wrapping");
        let a = array("arange(4):f32", 0);
        assert_eq!(a.to_scalars(), vec![Scalar::F32(0.0), Scalar::F32(1.0), Scalar::F32(2.0), Scalar::F32(3.0)]);
        assert_eq!(array("zeros(3)", 0).to_scalars(), vec![Scalar::F64(0.0); 3]);
        assert_eq!(array("ones(2, 2):i32", 0).to_scalars(), vec![Scalar::I32(1); 4]);
        assert_eq!(array("full(2, 2.7):u8", 0).to_scalars(), vec![Scalar::U8(2); 2], "float fill truncates");
        assert_eq!(array("full(2, -2.7):i64", 0).to_scalars(), vec![Scalar::I64(-2); 2]);
        assert_eq!(array("full(3, 0.5):bool", 0).to_scalars(), vec![Scalar::Bool(true); 3]);
        assert_eq!(array("full(1, 1, 1, 3):f32", 0).to_scalars(), vec![Scalar::F32(3.0)]);
        assert_eq!(array("full(2, false)", 0).to_scalars(), vec![Scalar::Bool(false); 2]);
        let empty = array("zeros(0, 5)", 0);
        assert_eq!((empty.shape(), empty.len()), (vec![0, 5], 0));
    }

    /// splitmix64 written independently, with u128 arithmetic reduced mod 2^64.
    fn reference_next(state: &mut u128) -> u64 {
        let modulus = 1u128 << 64;
        *state = (*state + 0x9E3779B97F4A7C15) % modulus;
        let mut z = *state;
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % modulus;
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % modulus;
        (z ^ (z >> 31)) as u64
    }

    #[test]
    fn splitmix64_matches_reference_values() {
        // The published first output of splitmix64 seeded with 0.
        assert_eq!(SplitMix64::new(0).next(), 0xE220A8397B1DCDAF);
        let mut rng = SplitMix64::new(42);
        let mut state = 42u128;
        for _ in 0..100 {
            assert_eq!(rng.next(), reference_next(&mut state));
        }
        // First uniform for seed 42: the top 53 bits of 0xbdd732262feb6e95
        // (the first output) over 2^53.
        let mut state = 42u128;
        let first = reference_next(&mut state);
        assert_eq!(first, 0xbdd732262feb6e95);
        let expected = (first >> 11) as f64 / 9007199254740992.0;
        assert_eq!(SplitMix64::new(42).uniform(), expected);
        assert_eq!(expected, 0.7415648787718233);
        // The CPython runner's first normal for seed 42.
        assert!((SplitMix64::new(42).normal() - 0.8822489062222688).abs() < 1e-15);
    }

    #[test]
    fn random_arrays_share_one_stream_left_to_right() {
        let specs = [parse_arg("rand(2, 2):f32").unwrap(), parse_arg("7").unwrap(), parse_arg("rand(1)").unwrap()];
        let values = materialise(&specs, 42, Path::new(".")).unwrap();
        let mut rng = SplitMix64::new(42);
        let expected: Vec<f64> = (0..5).map(|_| rng.uniform()).collect();
        let Value::Array(first) = &values[0] else { panic!() };
        let Value::Array(second) = &values[2] else { panic!() };
        let first: Vec<Scalar> = first.to_scalars();
        assert_eq!(first, expected[..4].iter().map(|&v| Scalar::F32(v as f32)).collect::<Vec<_>>());
        assert_eq!(first[0], Scalar::F32(0.7415648787718233f64 as f32));
        assert_eq!(second.to_scalars(), vec![Scalar::F64(expected[4])]);
        assert_eq!(values[1], Value::Scalar(Scalar::I64(7)));
        // Same seed, same values; other seed, other values.
        assert_eq!(materialise(&specs, 42, Path::new(".")).unwrap(), values);
        assert_ne!(materialise(&specs, 43, Path::new(".")).unwrap(), values);
        // randn cast to an int truncates toward zero.
        let normals = array("randn(50)", 7).to_scalars();
        let ints = array("randn(50):i64", 7).to_scalars();
        for (n, i) in normals.iter().zip(&ints) {
            assert_eq!(Scalar::I64(n.to_f64().trunc() as i64), *i);
        }
        let uniforms = array("rand(1000)", 1).to_scalars();
        assert!(uniforms.iter().all(|v| (0.0..1.0).contains(&v.to_f64())));
    }

    #[test]
    fn calls_and_run_lines() {
        assert_eq!(
            parse_call("k(rand(3, 4), 2.5, full(2, 2, i32:1):f32)").unwrap(),
            ("k".to_string(), vec!["rand(3, 4)".to_string(), "2.5".to_string(), "full(2, 2, i32:1):f32".to_string()])
        );
        assert_eq!(parse_call("  go( ) ").unwrap(), ("go".to_string(), vec![]));
        assert!(parse_call("k(1,)").unwrap_err().contains("empty argument"));
        assert!(parse_call("k(1").unwrap_err().contains("must end with `)`"));
        assert!(parse_call("k 1").unwrap_err().contains("missing `(`"));
        assert!(parse_call("1k(1)").unwrap_err().contains("not a kernel name"));
        assert!(parse_call("k(zeros(3)))").unwrap_err().contains("unbalanced"));
        let source =
            "def f(x):\n    return x\n# run: f(1)\n  #run:f(rand(3))\n# runner: no\nx = 1 # run: not a comment line\n";
        assert_eq!(run_lines(source), vec![(3, "f(1)".to_string()), (4, "f(rand(3))".to_string())]);
    }

    fn round_trip(data: &ArrayData) -> ArrayData {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        write_npy(&path, data).unwrap();
        let spec = parse_arg(&format!("@{}", path.display())).unwrap();
        assert_eq!(spec.ty(Path::new("/nonexistent")).unwrap(), Type::Array(data.array_type()));
        read_npy(&path).unwrap()
    }

    #[test]
    fn npy_round_trips_every_dtype() {
        for dtype in ScalarType::ALL {
            let values: Vec<Scalar> = (0..24).map(|i| Scalar::I64(i * 7 - 40).cast(dtype)).collect();
            for shape in [vec![24], vec![4, 6], vec![2, 3, 4]] {
                let data = ArrayData::from_scalars(dtype, &shape, &values);
                assert_eq!(round_trip(&data), data, "{dtype} {shape:?}");
            }
        }
    }

    #[test]
    fn npy_fortran_order_keeps_logical_elements() {
        let fortran = ArrayD::from_shape_vec(IxDyn(&[2, 3]).f(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]).unwrap();
        assert_eq!(fortran[[0, 1]], 2.0);
        let data = ArrayData::F64(fortran);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.npy");
        write_npy(&path, &data).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert!(String::from_utf8_lossy(&bytes).contains("'fortran_order': True"));
        let read = read_npy(&path).unwrap();
        assert_eq!(read, data);
        assert_eq!(read.to_scalars(), (1..=6).map(|v| Scalar::F64(v as f64)).collect::<Vec<_>>());
        // A transposed (non-contiguous in either order) view is written in C order.
        let strided = ArrayData::I32(
            ArrayD::from_shape_vec(IxDyn(&[3, 4]), (0..12).collect())
                .unwrap()
                .slice_move(ndarray::s![.., ..;2])
                .into_dyn(),
        );
        assert_eq!(round_trip(&strided).to_scalars(), strided.to_scalars());
    }

    /// An .npy file with a hand-written header and data.
    fn npy_bytes(header: &str, data: &[u8]) -> Vec<u8> {
        let mut text = header.to_string();
        while !(10 + text.len() + 1).is_multiple_of(64) {
            text.push(' ');
        }
        text.push('\n');
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(text.len() as u16).to_le_bytes());
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    fn load(bytes: &[u8]) -> Result<ArrayData, String> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.npy"), bytes).unwrap();
        let specs = [parse_arg("@x.npy").unwrap()];
        let result = materialise(&specs, 0, dir.path()).map(|mut values| match values.remove(0) {
            Value::Array(a) => a,
            other => panic!("{other:?}"),
        });
        // The header-only type must agree with the loader on good files.
        if let Ok(data) = &result {
            assert_eq!(specs[0].ty(dir.path()).unwrap(), Type::Array(data.array_type()));
        }
        result
    }

    #[test]
    fn npy_hand_written_headers() {
        let header = "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }";
        let data: Vec<u8> = [1i32, 2, 3, 4].iter().flat_map(|v| v.to_le_bytes()).collect();
        let read = load(&npy_bytes(header, &data)).unwrap();
        assert_eq!(read.to_scalars(), vec![Scalar::I32(1), Scalar::I32(2), Scalar::I32(3), Scalar::I32(4)]);
        // Big-endian is read too.
        let header = "{'descr': '>u2', 'fortran_order': True, 'shape': (3,), }";
        let data: Vec<u8> = [1u16, 256, 65535].iter().flat_map(|v| v.to_be_bytes()).collect();
        assert_eq!(
            load(&npy_bytes(header, &data)).unwrap().to_scalars(),
            vec![Scalar::U16(1), Scalar::U16(256), Scalar::U16(65535)]
        );
        // An empty array.
        let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 3), }";
        assert_eq!(load(&npy_bytes(header, &[])).unwrap().shape(), vec![0, 3]);
    }

    #[test]
    fn npy_lies_and_junk_are_errors() {
        let f64_data: Vec<u8> = [1.0f64, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"hello".to_vec(), "not an .npy file"),
            (Vec::new(), "not an .npy file"),
            (b"\x93NUMPY\x01".to_vec(), "not an .npy file"),
            (b"\x93NUMPY\x01\x00\x50".to_vec(), "truncated .npy header"),
            (b"\x93NUMPY\x01\x00\x50\x00{'descr'".to_vec(), "truncated .npy header"),
            (b"\x93NUMPY\x09\x00\x00\x00".to_vec(), "unsupported .npy format version 9"),
            (b"\x93NUMPY\x02\x00\xff\xff\xff\xff".to_vec(), "not plausible"),
            (npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", &f64_data), "truncated file"),
            (
                npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }", &f64_data),
                "truncated file",
            ),
            (
                npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999, 99999999999999), }", &[]),
                "too large",
            ),
            (npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", &f64_data), "unexpected bytes"),
            (npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (), }", &f64_data[..8]), "0-dimensional"),
            (npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1, 2), }", &f64_data), "1 to 3"),
            (
                npy_bytes("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", &f64_data),
                "dtype `<c16` is not supported",
            ),
            (npy_bytes("{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", &f64_data), "not supported"),
            (npy_bytes("{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (2,), }", &f64_data), "structured"),
            (npy_bytes("{'descr': '<f8', 'shape': (2,), }", &f64_data), "must give"),
            (npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (-2,), }", &f64_data), "bad dimension"),
            (npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,) ", &f64_data), "bad .npy header"),
            (npy_bytes("{'descr': '<f8', 'fortran_order': 'no', 'shape': (2,), }", &f64_data), "unexpected value"),
            (npy_bytes("{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", &[0, 7]), "bool"),
        ];
        for (bytes, expected) in cases {
            let message = load(&bytes).expect_err(expected);
            assert!(message.contains(expected), "expected {expected:?} in {message:?}");
            assert!(message.contains("x.npy"), "{message}");
        }
        let message = materialise(&[parse_arg("@missing.npy").unwrap()], 0, Path::new("/nonexistent-dir")).unwrap_err();
        assert!(message.contains("/nonexistent-dir/missing.npy"), "{message}");
        assert!(parse_arg("@missing.npy").unwrap().ty(Path::new(".")).is_err());
    }
}
