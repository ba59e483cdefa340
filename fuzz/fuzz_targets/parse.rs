//! Raw bytes as a source file: lexing and parsing never panic, and an error's
//! diagnostics have known codes and spans inside the file, and render.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kernjit::fuzz_checks::parse(data);
});
