//! The kern type system: scalar dtypes, arrays, tuples, and NumPy 2 promotion.
//!
//! A leaf module shared by inference, the interpreter and the CLI. It knows
//! nothing about syntax: signatures written as text (`kernel(f64, f64[:])`)
//! are parsed here with a tiny dedicated parser.

use std::fmt;

/// A scalar element type (NumPy dtype).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScalarType {
    Bool,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    F32,
    F64,
}

use ScalarType::*;

impl ScalarType {
    pub const ALL: [ScalarType; 11] = [Bool, I8, I16, I32, I64, U8, U16, U32, U64, F32, F64];

    /// The short kern name: `f64`, `u8`, `bool`.
    pub fn name(self) -> &'static str {
        match self {
            Bool => "bool",
            I8 => "i8",
            I16 => "i16",
            I32 => "i32",
            I64 => "i64",
            U8 => "u8",
            U16 => "u16",
            U32 => "u32",
            U64 => "u64",
            F32 => "f32",
            F64 => "f64",
        }
    }

    /// The NumPy name: `float64`, `uint8`, `bool_`.
    pub fn numpy_name(self) -> &'static str {
        match self {
            Bool => "bool_",
            I8 => "int8",
            I16 => "int16",
            I32 => "int32",
            I64 => "int64",
            U8 => "uint8",
            U16 => "uint16",
            U32 => "uint32",
            U64 => "uint64",
            F32 => "float32",
            F64 => "float64",
        }
    }

    /// Parses a dtype name in any accepted spelling: kern (`f64`), NumPy
    /// (`float64`, `bool_`), and the Python builtins `float`, `int`, `bool`.
    pub fn from_name(name: &str) -> Option<ScalarType> {
        Some(match name {
            "bool" | "bool_" | "b1" => Bool,
            "i8" | "int8" => I8,
            "i16" | "int16" => I16,
            "i32" | "int32" | "intc" => I32,
            "i64" | "int64" | "int" | "intp" | "int_" => I64,
            "u8" | "uint8" => U8,
            "u16" | "uint16" => U16,
            "u32" | "uint32" => U32,
            "u64" | "uint64" | "uintp" => U64,
            "f32" | "float32" | "single" => F32,
            "f64" | "float64" | "float" | "double" | "float_" => F64,
            _ => return None,
        })
    }

    pub fn is_bool(self) -> bool {
        self == Bool
    }

    pub fn is_int(self) -> bool {
        matches!(self, I8 | I16 | I32 | I64 | U8 | U16 | U32 | U64)
    }

    pub fn is_signed_int(self) -> bool {
        matches!(self, I8 | I16 | I32 | I64)
    }

    pub fn is_unsigned_int(self) -> bool {
        matches!(self, U8 | U16 | U32 | U64)
    }

    pub fn is_float(self) -> bool {
        matches!(self, F32 | F64)
    }

    /// Width in bits (bool counts as 8, its storage size).
    pub fn bits(self) -> u32 {
        match self {
            Bool | I8 | U8 => 8,
            I16 | U16 => 16,
            I32 | U32 | F32 => 32,
            I64 | U64 | F64 => 64,
        }
    }

    /// Size of one element in bytes.
    pub fn size_bytes(self) -> usize {
        self.bits() as usize / 8
    }

    fn signed_of_bits(bits: u32) -> ScalarType {
        match bits {
            8 => I8,
            16 => I16,
            32 => I32,
            _ => I64,
        }
    }

    /// The inclusive range of an integer type, as i128.
    pub fn int_range(self) -> (i128, i128) {
        match self {
            Bool => (0, 1),
            I8 => (i8::MIN as i128, i8::MAX as i128),
            I16 => (i16::MIN as i128, i16::MAX as i128),
            I32 => (i32::MIN as i128, i32::MAX as i128),
            I64 => (i64::MIN as i128, i64::MAX as i128),
            U8 => (0, u8::MAX as i128),
            U16 => (0, u16::MAX as i128),
            U32 => (0, u32::MAX as i128),
            U64 => (0, u64::MAX as i128),
            F32 | F64 => (i128::MIN, i128::MAX),
        }
    }
}

impl fmt::Display for ScalarType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// NumPy's `promote_types` for two concrete dtypes (NumPy 2 rules).
///
/// `bool` promotes to anything; ints of one signedness widen; a signed and an
/// unsigned int go to the smallest signed type holding both (`u64` with any
/// signed int gives `f64`); small ints (≤16 bits) with `f32` stay `f32`,
/// larger ints with `f32` give `f64`.
pub fn promote(a: ScalarType, b: ScalarType) -> ScalarType {
    if a == b {
        return a;
    }
    match (a, b) {
        (Bool, other) | (other, Bool) => other,
        (x, y) if x.is_float() && y.is_float() => F64,
        (x, f) | (f, x) if f.is_float() && x.is_int() => {
            if f == F32 && x.bits() <= 16 {
                F32
            } else {
                F64
            }
        }
        (x, y) if x.is_signed_int() == y.is_signed_int() => {
            if x.bits() >= y.bits() {
                x
            } else {
                y
            }
        }
        (x, y) => {
            let (signed, unsigned) = if x.is_signed_int() { (x, y) } else { (y, x) };
            if signed.bits() > unsigned.bits() {
                signed
            } else if unsigned.bits() < 64 {
                ScalarType::signed_of_bits(unsigned.bits() * 2)
            } else {
                F64
            }
        }
    }
}

/// An array type: element dtype and number of dimensions (1 to 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArrayType {
    pub dtype: ScalarType,
    pub ndim: u8,
}

/// The most dimensions an array may have.
pub const MAX_NDIM: usize = 3;

/// The type of a kern value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Type {
    Scalar(ScalarType),
    Array(ArrayType),
    /// A tuple of scalars (return values, `a.shape`, unpacking).
    Tuple(Vec<ScalarType>),
    /// The value of a function that returns nothing.
    None,
    /// Not yet known during inference; never present in a checked program.
    Unknown,
}

impl Type {
    pub fn scalar(self: &Type) -> Option<ScalarType> {
        match self {
            Type::Scalar(s) => Some(*s),
            _ => None,
        }
    }

    pub fn array(self: &Type) -> Option<ArrayType> {
        match self {
            Type::Array(a) => Some(*a),
            _ => None,
        }
    }

    pub fn is_known(&self) -> bool {
        !matches!(self, Type::Unknown)
    }
}

impl From<ScalarType> for Type {
    fn from(s: ScalarType) -> Type {
        Type::Scalar(s)
    }
}

impl fmt::Display for ArrayType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let axes = vec![":"; self.ndim as usize].join(", ");
        write!(f, "{}[{}]", self.dtype, axes)
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Scalar(s) => write!(f, "{s}"),
            Type::Array(a) => write!(f, "{a}"),
            Type::Tuple(items) => {
                let names: Vec<&str> = items.iter().map(|s| s.name()).collect();
                if names.len() == 1 {
                    write!(f, "({},)", names[0])
                } else {
                    write!(f, "({})", names.join(", "))
                }
            }
            Type::None => f.write_str("None"),
            Type::Unknown => f.write_str("?"),
        }
    }
}

/// A kernel signature: a kernel name and its argument types.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Signature {
    pub kernel: String,
    pub args: Vec<Type>,
    /// One per argument: what compiled code may assume about an array's
    /// layout (`Layout::Any` for scalars).
    pub layouts: Vec<Layout>,
}

impl Signature {
    /// A signature assuming nothing about array layouts.
    pub fn new(kernel: impl Into<String>, args: Vec<Type>) -> Signature {
        let layouts = vec![Layout::Any; args.len()];
        Signature { kernel: kernel.into(), args, layouts }
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let args: Vec<String> = self
            .args
            .iter()
            .enumerate()
            .map(|(k, ty)| type_with_layout(ty, self.layouts.get(k).copied().unwrap_or_default()))
            .collect();
        write!(f, "{}({})", self.kernel, args.join(", "))
    }
}

/// How an array's elements are laid out in memory, as far as compiled code
/// may assume: the layout class is part of the signature cache key, and the
/// code for a contiguous layout computes strides from the shape.
///
/// Written as in Numba: `f64[:, ::1]` is C-contiguous, `f64[::1, :]` is
/// F-contiguous, `f64[::1]` is a contiguous vector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Layout {
    /// Row-major and contiguous: the last axis has stride 1, each other
    /// axis the product of the extents after it.
    C,
    /// Column-major and contiguous (for two or more dimensions).
    F,
    /// Any strides (and every scalar).
    #[default]
    Any,
}

impl Layout {
    /// The layout class of an array with these extents and strides (in
    /// elements). Axes of extent 1 never move the address, so their stride
    /// does not matter; an array with no elements is contiguous.
    pub fn of(shape: &[i64], strides: &[i64]) -> Layout {
        if shape.contains(&0) {
            return Layout::C;
        }
        let contiguous = |axes: &mut dyn Iterator<Item = usize>| {
            let mut expected = 1i64;
            for axis in axes {
                if shape[axis] != 1 && strides[axis] != expected {
                    return false;
                }
                expected = expected.saturating_mul(shape[axis]);
            }
            true
        };
        if contiguous(&mut (0..shape.len()).rev()) {
            Layout::C
        } else if contiguous(&mut (0..shape.len())) {
            Layout::F
        } else {
            Layout::Any
        }
    }

    /// Whether an array of layout `self` may be passed where code was
    /// compiled for `assumed`.
    pub fn satisfies(self, assumed: Layout) -> bool {
        assumed == Layout::Any || self == assumed
    }
}

fn type_with_layout(ty: &Type, layout: Layout) -> String {
    match (ty, layout) {
        (Type::Array(array), Layout::C | Layout::F) => {
            let mut axes = vec![":"; array.ndim as usize];
            let contiguous = if layout == Layout::C { axes.len() - 1 } else { 0 };
            axes[contiguous] = "::1";
            format!("{}[{}]", array.dtype, axes.join(", "))
        }
        _ => ty.to_string(),
    }
}

/// Parses one type written as text: `f64`, `float32`, `i64[:, :]`, `u8[:]`.
pub fn parse_type(text: &str) -> Result<Type, String> {
    parse_type_and_layout(text).map(|(ty, _)| ty)
}

/// Parses one type and its layout: `f64[:, ::1]` is a C-contiguous
/// `f64[:, :]` (see [`Layout`]).
pub fn parse_type_and_layout(text: &str) -> Result<(Type, Layout), String> {
    let text = text.trim();
    let (base, axes) = match text.find('[') {
        Some(open) => {
            let close = text
                .rfind(']')
                .filter(|&close| close > open && text[close + 1..].trim().is_empty())
                .ok_or_else(|| format!("`{text}`: missing `]`"))?;
            (&text[..open], Some(&text[open + 1..close]))
        }
        None => (text, None),
    };
    let base = base.trim();
    let base = base.strip_prefix("np.").unwrap_or(base);
    let dtype = ScalarType::from_name(base)
        .ok_or_else(|| format!("`{base}` is not a type (expected f64, f32, i64, i32, u8, bool, ...)"))?;
    let Some(axes) = axes else { return Ok((Type::Scalar(dtype), Layout::Any)) };
    let mut unit = Vec::new();
    for axis in axes.split(',') {
        match axis.trim() {
            ":" => unit.push(false),
            "::1" => unit.push(true),
            _ => return Err(format!("`{text}`: each axis is written `:` (or `::1` for the contiguous one)")),
        }
    }
    let ndim = unit.len();
    if ndim > MAX_NDIM {
        return Err(format!("`{text}`: arrays have at most {MAX_NDIM} dimensions"));
    }
    let layout = match unit.iter().filter(|&&u| u).count() {
        0 => Layout::Any,
        1 if unit[ndim - 1] => Layout::C,
        1 if unit[0] => Layout::F,
        _ => return Err(format!("`{text}`: only the last axis (C order) or the first (F order) can be `::1`")),
    };
    Ok((Type::Array(ArrayType { dtype, ndim: ndim as u8 }), layout))
}

/// Parses `kernel(f64, f64[:])` (or just the argument list in parentheses,
/// `(f64, f64[:])`, when `kernel` is given separately).
pub fn parse_signature(text: &str) -> Result<Signature, String> {
    let text = text.trim();
    let open = text.find('(').ok_or("a signature looks like `kernel(f64, f64[:])`")?;
    if !text.ends_with(')') {
        return Err("a signature must end with `)`".into());
    }
    let kernel = text[..open].trim().to_string();
    let inner = &text[open + 1..text.len() - 1];
    let mut parsed = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in inner.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parsed.push(parse_type_and_layout(&inner[start..i])?);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !inner[start..].trim().is_empty() {
        parsed.push(parse_type_and_layout(&inner[start..])?);
    } else if !parsed.is_empty() {
        return Err("trailing `,` in signature".into());
    }
    let (args, layouts) = parsed.into_iter().unzip();
    Ok(Signature { kernel, args, layouts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promotion_follows_numpy() {
        assert_eq!(promote(U8, I8), I16);
        assert_eq!(promote(U32, I32), I64);
        assert_eq!(promote(U64, I64), F64);
        assert_eq!(promote(I16, F32), F32);
        assert_eq!(promote(I32, F32), F64);
        assert_eq!(promote(Bool, U8), U8);
        assert_eq!(promote(I64, I8), I64);
        assert_eq!(promote(F32, F64), F64);
        assert_eq!(promote(U16, I32), I32);
    }

    #[test]
    fn signatures_parse() {
        let sig = parse_signature("k(f64, i64[:, :], np.float32, u8[:])").unwrap();
        assert_eq!(sig.kernel, "k");
        assert_eq!(sig.to_string(), "k(f64, i64[:, :], f32, u8[:])");
        assert!(parse_signature("k(f64[:,:,:,:])").is_err());
        assert!(parse_signature("k(x)").is_err());
        assert_eq!(parse_signature("k()").unwrap().args, vec![]);
    }

    #[test]
    fn layouts_parse_and_print_as_in_numba() {
        let sig = parse_signature("k(f64[:, ::1], f32[::1, :, :], i64[::1], u8[:, :], f64)").unwrap();
        assert_eq!(sig.layouts, vec![Layout::C, Layout::F, Layout::C, Layout::Any, Layout::Any]);
        assert_eq!(sig.to_string(), "k(f64[:, ::1], f32[::1, :, :], i64[::1], u8[:, :], f64)");
        assert!(parse_signature("k(f64[::1, ::1])").is_err());
        assert!(parse_signature("k(f64[:, ::1, :])").is_err());
    }

    #[test]
    fn layout_classes() {
        assert_eq!(Layout::of(&[3, 4], &[4, 1]), Layout::C);
        assert_eq!(Layout::of(&[3, 4], &[1, 3]), Layout::F);
        assert_eq!(Layout::of(&[3, 4], &[8, 2]), Layout::Any);
        assert_eq!(Layout::of(&[3, 4], &[-4, 1]), Layout::Any);
        assert_eq!(Layout::of(&[5], &[1]), Layout::C);
        assert_eq!(Layout::of(&[5], &[-1]), Layout::Any);
        // Strides of axes of extent 1 never matter; empty arrays are contiguous.
        assert_eq!(Layout::of(&[1, 4], &[99, 1]), Layout::C);
        assert_eq!(Layout::of(&[4, 1], &[1, 7]), Layout::C);
        assert_eq!(Layout::of(&[0, 4], &[3, 5]), Layout::C);
        assert!(Layout::C.satisfies(Layout::Any) && !Layout::Any.satisfies(Layout::C));
    }
}
