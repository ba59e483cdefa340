//! The properties the fuzz targets in `fuzz/` check, as plain functions: the
//! targets call them on every input, and the test suite replays the fuzz
//! corpora through them (`tests/it/fuzz_corpus.rs`). Each function panics
//! when a property does not hold; an `Err` from the library is fine as long
//! as its diagnostics are well-formed.
//!
//! - [`parse`]: any bytes give a [`Module`] or an error whose diagnostics
//!   have known codes and spans inside the source that render.
//! - [`infer`]: the bytes are an [`InferInput`] (argument types, then
//!   source); the kernels of the module are specialised for those types, and
//!   errors must be well-formed as above.

use crate::diag::{self, Diagnostic};
use crate::types::{ArrayType, ScalarType, Type, MAX_NDIM};
use crate::{Error, Module, SourceFile};

/// The file name fuzz inputs are parsed under.
pub const FILE_NAME: &str = "fuzz.kern";

/// Parses `data` as a source file; a failure must be a well-formed error.
pub fn parse(data: &[u8]) -> Option<Module> {
    match Module::parse(FILE_NAME, data) {
        Ok(module) => Some(module),
        Err(error) => {
            check_error(&error);
            None
        }
    }
}

/// How many kernels of one input [`infer`] specialises (the first ones): a
/// module with duplicate definitions fails every specialisation with the
/// same errors, and rendering them for thousands of kernels is slow.
pub const MAX_KERNELS: usize = 16;

/// Decodes `data` as an [`InferInput`] and specialises every kernel of the
/// module (up to [`MAX_KERNELS`]) for its types (cycled or cut to each
/// kernel's arity), then the first once with the types exactly as given, and
/// type-checks the annotated kernels.
pub fn infer(data: &[u8]) {
    infer_input(&InferInput::decode(data));
}

/// [`infer`] on a decoded input.
pub fn infer_input(input: &InferInput) {
    let Some(module) = parse(&input.source) else { return };
    let names: Vec<String> = module.kernel_names().into_iter().map(str::to_string).collect();
    for (function, name) in module.ast().functions.iter().zip(&names).take(MAX_KERNELS) {
        let types = input.types_for(function.params.len());
        if let Err(error) = module.specialise(name, &types) {
            check_error(&error);
        }
    }
    if let Some(first) = names.first() {
        if let Err(error) = module.specialise(first, &input.types) {
            check_error(&error);
        }
    }
    if let Err(error) = module.check_annotated() {
        check_error(&error);
    }
}

/// Checks an error's diagnostics: known codes, non-empty messages, every
/// span (primary and labels) ordered, inside the file and on character
/// boundaries, and a rendering that names every code it shows.
pub fn check_error(error: &Error) {
    let (Error::Compile { file, .. } | Error::Runtime { file, .. }) = error else {
        assert!(!error.render(false).is_empty(), "an empty rendering of {error:?}");
        return;
    };
    let diagnostics = error.diagnostics();
    assert!(!diagnostics.is_empty(), "an error without diagnostics: {error:?}");
    for diagnostic in &diagnostics {
        check_diagnostic(diagnostic, file);
    }
    let rendered = error.render(false);
    for diagnostic in diagnostics.iter().take(diag::MAX_RENDERED) {
        assert!(rendered.contains(diagnostic.code), "{} missing from the rendering:\n{rendered}", diagnostic.code);
    }
    if diagnostics.len() > diag::MAX_RENDERED {
        assert!(rendered.contains(" not shown"), "no count of the errors not shown:\n{rendered}");
    }
}

fn check_diagnostic(diagnostic: &Diagnostic, file: &SourceFile) {
    let code = diagnostic.code;
    assert!(diag::CODES.iter().any(|(known, _)| *known == code), "unknown code {code} ({})", diagnostic.message);
    assert!(!diagnostic.message.is_empty(), "{code}: an empty message");
    let spans = std::iter::once(diagnostic.span).chain(diagnostic.labels.iter().map(|label| label.span));
    for span in spans {
        let (start, end) = (span.start as usize, span.end as usize);
        let text = file.text();
        assert!(
            start <= end && end <= text.len(),
            "{code} ({}): span {start}..{end} outside the file of {} bytes",
            diagnostic.message,
            text.len()
        );
        assert!(
            text.is_char_boundary(start) && text.is_char_boundary(end),
            "{code} ({}): span {start}..{end} splits a character",
            diagnostic.message
        );
    }
}

/// The input of the `infer` target: argument types, then source text.
///
/// Encoding: the leading bytes with the high bit set are types, one byte
/// each (see [`InferInput::type_of_byte`]); everything after them is the
/// source. A plain `.kern` file is therefore a valid input (no types: every
/// kernel gets [`DEFAULT_TYPES`]).
#[derive(Clone, Debug, PartialEq)]
pub struct InferInput {
    pub types: Vec<Type>,
    pub source: Vec<u8>,
}

/// The types cycled over a kernel's parameters when the input gives none.
pub const DEFAULT_TYPES: [Type; 4] = [
    Type::Array(ArrayType { dtype: ScalarType::F64, ndim: 1 }),
    Type::Scalar(ScalarType::F64),
    Type::Scalar(ScalarType::I64),
    Type::Array(ArrayType { dtype: ScalarType::F64, ndim: 2 }),
];

impl InferInput {
    pub fn decode(data: &[u8]) -> InferInput {
        let header = data.iter().take_while(|&&byte| byte >= 0x80).count();
        InferInput {
            types: data[..header].iter().map(|&byte| InferInput::type_of_byte(byte)).collect(),
            source: data[header..].to_vec(),
        }
    }

    /// The bytes that decode to this input, if every type has a byte (and
    /// the source does not start with a byte of the header).
    pub fn encode(&self) -> Option<Vec<u8>> {
        let mut bytes = Vec::with_capacity(self.types.len() + self.source.len());
        for ty in &self.types {
            bytes.push((0x80..=0xff).find(|&byte| InferInput::type_of_byte(byte) == *ty)?);
        }
        if self.source.first().is_some_and(|&byte| byte >= 0x80) {
            return None;
        }
        bytes.extend_from_slice(&self.source);
        Some(bytes)
    }

    /// The type a header byte stands for: with `x` its low 7 bits, `x < 44`
    /// is a scalar (`x / 11 == 0`) or an array of `x / 11` dimensions of
    /// dtype `ScalarType::ALL[x % 11]`; larger `x` is a tuple of 1 to 3
    /// scalars.
    pub fn type_of_byte(byte: u8) -> Type {
        let x = (byte & 0x7f) as usize;
        let dtypes = ScalarType::ALL;
        if x < dtypes.len() * (MAX_NDIM + 1) {
            let dtype = dtypes[x % dtypes.len()];
            match x / dtypes.len() {
                0 => Type::Scalar(dtype),
                ndim => Type::Array(ArrayType { dtype, ndim: ndim as u8 }),
            }
        } else {
            let x = x - dtypes.len() * (MAX_NDIM + 1);
            let len = 1 + x % 3;
            Type::Tuple((0..len).map(|k| dtypes[(x / 3 + k) % dtypes.len()]).collect())
        }
    }

    /// The types for a kernel of `arity` parameters: the input's types
    /// cycled or cut to that length (or [`DEFAULT_TYPES`] cycled).
    pub fn types_for(&self, arity: usize) -> Vec<Type> {
        let pool: &[Type] = if self.types.is_empty() { &DEFAULT_TYPES } else { &self.types };
        (0..arity).map(|index| pool[index % pool.len()].clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_byte_round_trips() {
        for byte in 0x80..=0xffu8 {
            let input = InferInput { types: vec![InferInput::type_of_byte(byte)], source: b"def f(x):\n".to_vec() };
            let encoded = input.encode().unwrap();
            assert_eq!(InferInput::decode(&encoded), input);
        }
        let plain = InferInput::decode(b"def f(x):\n    return x\n");
        assert!(plain.types.is_empty());
        assert_eq!(plain.types_for(3), DEFAULT_TYPES[..3].to_vec());
        let every_kind: Vec<Type> = (0x80..=0xffu8).map(InferInput::type_of_byte).collect();
        assert!(every_kind.contains(&Type::Array(ArrayType { dtype: ScalarType::Bool, ndim: 3 })));
        assert!(every_kind.contains(&Type::Scalar(ScalarType::U64)));
        assert!(every_kind.contains(&Type::Tuple(vec![ScalarType::F64])));
    }

    #[test]
    fn the_checks_accept_good_and_bad_programs() {
        assert!(parse(b"def f(x):\n    return x + 1\n").is_some());
        assert!(parse(b"def f(x):\n    return x +\n").is_none());
        assert!(parse(b"def f(x):\n    return x\xff\n").is_none());
        infer(b"\x84\x99def f(x, a):\n    return a[0] + x\n");
        infer(b"def f(x):\n    return y\n");
        // More errors than are rendered, by one.
        let many = format!("def f(x):\n    return x {}\n", "$ ".repeat(diag::MAX_RENDERED + 1));
        assert!(parse(many.as_bytes()).is_none());
    }
}
