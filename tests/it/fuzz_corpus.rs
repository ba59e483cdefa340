//! The fuzz corpora as a regular test: every input under `fuzz/corpus/parse`
//! and `fuzz/corpus/infer` (the seeds and the minimised inputs the fuzzers
//! found) goes through the same checks as the fuzz targets
//! (`kernjit::fuzz_checks`), so CI keeps every past finding fixed without
//! running a fuzzer.
//!
//! The seeds are derived from the golden programs and `kernels/`: each file
//! for `parse`, and for `infer` each file once with the default types and
//! once for each of the first two distinct signatures of its `# run:`,
//! `# bench:`, `# check:` and `# types:` lines. `UPDATE_FUZZ_SEEDS=1 cargo test --test it fuzz_corpus`
//! rewrites the `seed-*` files after the golden programs change.

use kernjit::fuzz_checks::{self, InferInput};
use kernjit::{cli_args, types, Type};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn corpus_dir(target: &str) -> PathBuf {
    crate::corpus::root().join("fuzz/corpus").join(target)
}

/// Every file of a corpus directory, sorted.
fn corpus_files(target: &str) -> Vec<PathBuf> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// The argument types of every call and signature line of a source file
/// (calls whose arguments do not parse, or name missing files, are skipped).
fn signatures(source: &str, base_dir: &Path) -> Vec<Vec<Type>> {
    let mut found = Vec::new();
    let calls = cli_args::run_lines(source).into_iter().chain(cli_args::bench_lines(source));
    for (_, call) in calls {
        let Ok((_, raw)) = cli_args::parse_call(&call) else { continue };
        let types: Result<Vec<Type>, String> =
            raw.iter().map(|arg| cli_args::parse_arg(arg).and_then(|spec| spec.ty(base_dir))).collect();
        found.extend(types.ok());
    }
    for line in source.lines() {
        let line = line.trim();
        let Some(signature) = line.strip_prefix("# check:").or_else(|| line.strip_prefix("# types:")) else {
            continue;
        };
        found.extend(types::parse_signature(signature).ok().map(|signature| signature.args));
    }
    let mut unique = Vec::new();
    for types in found {
        if !unique.contains(&types) {
            unique.push(types);
        }
    }
    unique
}

/// How many signature seeds one program gives (the first ones found: more
/// add little but size to the corpus).
const SIGNATURES_PER_FILE: usize = 2;

/// The seed files of both targets, by target and file name.
fn seeds() -> BTreeMap<(&'static str, String), Vec<u8>> {
    let root = crate::corpus::root();
    let mut seeds = BTreeMap::new();
    for path in crate::corpus::all_programs() {
        let relative = path.strip_prefix(root).unwrap().display().to_string();
        let name = format!("seed-{}", relative.trim_start_matches("tests/").replace('/', "-"));
        let source = std::fs::read(&path).unwrap();
        seeds.insert(("parse", name.clone()), source.clone());
        seeds.insert(("infer", name.clone()), source.clone());
        let text = String::from_utf8_lossy(&source);
        for (index, types) in
            signatures(&text, path.parent().unwrap()).into_iter().take(SIGNATURES_PER_FILE).enumerate()
        {
            let input = InferInput { types, source: source.clone() };
            if let Some(bytes) = input.encode() {
                seeds.insert(("infer", format!("{name}.sig{index}")), bytes);
            }
        }
    }
    seeds
}

#[test]
fn fuzz_seeds_are_up_to_date() {
    let update = std::env::var_os("UPDATE_FUZZ_SEEDS").is_some();
    let seeds = seeds();
    let mut stale = Vec::new();
    for target in ["parse", "infer"] {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        // Seeds whose program is gone.
        for path in corpus_files(target) {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with("seed-") && !seeds.contains_key(&(target, name.clone())) {
                if update {
                    std::fs::remove_file(&path).unwrap();
                } else {
                    stale.push(format!("{target}/{name} (no longer a seed)"));
                }
            }
        }
    }
    for ((target, name), bytes) in &seeds {
        let path = corpus_dir(target).join(name);
        if std::fs::read(&path).ok().as_ref() != Some(bytes) {
            if update {
                std::fs::write(&path, bytes).unwrap();
            } else {
                stale.push(format!("{target}/{name}"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "fuzz seeds out of date (run `UPDATE_FUZZ_SEEDS=1 cargo test --release --test it fuzz_corpus`): {stale:?}"
    );
}

/// Runs `check` (the fuzz target's body) on every input of its corpus, which
/// holds at least the seeds.
fn replay(target: &str, check: fn(&[u8])) {
    let files = corpus_files(target);
    assert!(files.len() >= 100, "expected the seeds in {}", corpus_dir(target).display());
    for path in files {
        let bytes = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&bytes));
        assert!(outcome.is_ok(), "{} fails the {target} checks", path.display());
    }
}

#[test]
fn the_parse_corpus_passes_the_parse_checks() {
    replay("parse", |bytes| {
        fuzz_checks::parse(bytes);
    });
}

#[test]
fn the_infer_corpus_passes_the_infer_checks() {
    replay("infer", fuzz_checks::infer);
}
