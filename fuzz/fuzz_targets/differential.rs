//! Bytes as the choices of the program generator (`kernjit::testgen`): the
//! generated kernel runs in the interpreter and in four JIT configurations,
//! which must agree bit for bit, errors included.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    kernjit::testgen::fuzz_differential(data);
});
