//! Argument types and a source file (`kernjit::fuzz_checks::InferInput`):
//! every kernel is specialised for the types; inference never panics and its
//! errors are well-formed. A plain `.kern` file is an input (default types).

#![no_main]

use kernjit::fuzz_checks::InferInput;
use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use std::fmt;

/// The decoded input, shown readably by `cargo fuzz fmt infer ARTIFACT`.
struct Input(InferInput);

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Input> {
        let len = u.len();
        Ok(Input(InferInput::decode(u.bytes(len)?)))
    }

    fn arbitrary_take_rest(u: Unstructured<'a>) -> arbitrary::Result<Input> {
        Ok(Input(InferInput::decode(u.take_rest())))
    }
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let types: Vec<String> = self.0.types.iter().map(|ty| ty.to_string()).collect();
        writeln!(f, "types: ({})", types.join(", "))?;
        write!(f, "source:\n{}", String::from_utf8_lossy(&self.0.source))
    }
}

fuzz_target!(|input: Input| {
    kernjit::fuzz_checks::infer_input(&input.0);
});
