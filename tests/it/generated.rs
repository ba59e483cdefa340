//! Differential testing on generated programs (`kernjit::testgen`): every
//! program runs in the interpreter and in four JIT configurations
//! (`testgen::engines`: bounds-checked, unoptimised, 2 threads, 1 thread
//! through the pool), and all must agree bit for bit (NaN canonicalised),
//! errors included.
//!
//! CI runs a bounded batch with a fixed seed. More, with another seed:
//!
//! ```sh
//! KERNJIT_GEN_CASES=1000000 KERNJIT_GEN_SEED=7 cargo test --release --test it generated -- --nocapture
//! ```
//!
//! `KERNJIT_GEN_SHOW=R0601` prints every program that stops with that error
//! code (to see what the generator makes). A mismatch is shrunk (proptest, over the generator's input bytes) to a
//! minimal program, printed with its arguments; keep it as a golden test.

use kernjit::testgen::{self, describe, differential, Generated, Verdict};
use kernjit::Value;
use proptest::collection::vec;
use proptest::prelude::any;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn program(bytes: &[u8]) -> Generated {
    testgen::generate(&mut arbitrary::Unstructured::new(bytes)).expect("the generator never runs out of choices")
}

#[test]
fn generated_programs_agree_in_every_engine() {
    let cases = env_number("KERNJIT_GEN_CASES", 5000);
    let seed = env_number("KERNJIT_GEN_SEED", 0x006b_6572_6e6a_6974);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config { cases: cases as u32, failure_persistence: None, ..Config::default() };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));

    let counts = std::cell::RefCell::new((0u64, 0u64, 0u64)); // agreed, of which errors, rejected
    let error_codes = std::cell::RefCell::new(std::collections::BTreeMap::<String, u64>::new());
    let rejections = std::cell::RefCell::new(Vec::new());
    let started = std::time::Instant::now();
    let result = runner.run(&vec(any::<u8>(), 0..3000), |bytes| {
        let generated = program(&bytes);
        match differential(&generated) {
            Ok(Verdict::Agreed { error }) => {
                let mut counts = counts.borrow_mut();
                counts.0 += 1;
                if let Some(code) = error {
                    if std::env::var("KERNJIT_GEN_SHOW").is_ok_and(|show| show == code) {
                        eprintln!("{}", describe(&generated));
                    }
                    counts.1 += 1;
                    *error_codes.borrow_mut().entry(code).or_default() += 1;
                }
            }
            Ok(Verdict::Rejected(error)) => {
                counts.borrow_mut().2 += 1;
                rejections.borrow_mut().push(format!("{}\n{error}", generated.source));
            }
            Err(message) => return Err(TestCaseError::fail(message)),
        }
        Ok(())
    });
    let (agreed, errors, rejected) = *counts.borrow();
    eprintln!(
        "generated programs: {agreed} agreed ({errors} of them on a runtime error: {:?}), {rejected} rejected, in {:.1} s",
        error_codes.borrow(),
        started.elapsed().as_secs_f64()
    );
    if let Err(failure) = result {
        panic!("seed {seed}: {failure}");
    }
    let rejections = rejections.borrow();
    if let Ok(path) = std::env::var("KERNJIT_GEN_REJECTIONS") {
        std::fs::write(path, rejections.join("\n=====\n")).expect("the rejections file is writable");
    }
    // A rejected program is a generator (or checker) bug; a few are
    // tolerated so one odd corner does not hide the rest of the batch.
    assert!(
        rejected * 50 <= agreed + rejected,
        "{rejected} of {} generated programs were rejected; the first:\n{}",
        agreed + rejected,
        rejections.first().map_or("", String::as_str)
    );
    assert!(errors * 2 < agreed, "most programs should run to the end ({errors} of {agreed} failed)");
}

#[test]
fn generated_programs_cover_the_language() {
    let mut state = 7;
    let mut text = String::new();
    for _ in 0..300 {
        let bytes = random_bytes(&mut state, 3000);
        text.push_str(&program(&bytes).source);
    }
    for construct in [
        "prange(",
        "range(",
        "while ",
        "break",
        "continue",
        "elif ",
        "else:",
        "np.zeros(",
        "np.full(",
        "np.arange(",
        "math.sqrt(",
        "np.float32(",
        "np.uint8(",
        "bool(",
        "min(",
        "max(",
        " if ",
        " and ",
        " or ",
        "not ",
        "//",
        "%",
        "<<",
        "[:, ",
        ".shape[",
        "len(",
        "def helper",
        "= helper",
        " += ",
        "return ",
        ", v",
        "        return ",
    ] {
        assert!(text.contains(construct), "no generated program uses `{construct}`");
    }
}

/// Input bytes for the generator from a splitmix64 stream.
fn random_bytes(state: &mut u64, count: usize) -> Vec<u8> {
    (0..count)
        .map(|_| {
            *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

#[test]
fn generated_arguments_cover_layouts_and_dtypes() {
    let mut state = 9;
    let mut layouts = std::collections::HashSet::new();
    let mut dtypes = std::collections::HashSet::new();
    let mut empty = false;
    for _ in 0..300 {
        let bytes = random_bytes(&mut state, 3000);
        for arg in program(&bytes).args {
            match arg {
                Value::Array(array) => {
                    layouts.insert(format!("{:?}", array.layout()));
                    dtypes.insert(array.dtype());
                    empty |= array.is_empty();
                }
                Value::Scalar(scalar) => {
                    dtypes.insert(scalar.ty());
                }
                _ => {}
            }
        }
    }
    assert_eq!(dtypes.len(), 11, "{dtypes:?}");
    assert!(layouts.len() >= 3 && empty, "{layouts:?}, empty: {empty}");
}
