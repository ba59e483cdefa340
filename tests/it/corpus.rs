//! The test corpus: every `.kern` file of the golden tests and the kernels
//! library, shared by the harnesses that run all of them.

use kernjit::cli_args::{self, ArgSpec};
use std::path::{Path, PathBuf};

/// Every `.kern` file under `dir`, recursively, sorted.
pub fn kern_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(kern_files(&path));
        } else if path.extension().is_some_and(|e| e == "kern") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The crate's root directory.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every golden program and every kernel file.
pub fn all_programs() -> Vec<PathBuf> {
    let mut files = kern_files(&root().join("tests/golden"));
    files.extend(kern_files(&root().join("kernels")));
    files
}

/// A `# run:` line whose call and arguments parse.
pub struct RunCall {
    pub line: usize,
    pub call: String,
    pub kernel: String,
    pub specs: Vec<ArgSpec>,
}

/// The `# run:` lines of `source` that parse (the others are the business
/// of the tests that check run lines).
pub fn run_calls(source: &str) -> Vec<RunCall> {
    cli_args::run_lines(source)
        .into_iter()
        .filter_map(|(line, call)| {
            let (kernel, raw) = cli_args::parse_call(&call).ok()?;
            let specs = raw.iter().map(|a| cli_args::parse_arg(a)).collect::<Result<Vec<_>, _>>().ok()?;
            Some(RunCall { line, call, kernel, specs })
        })
        .collect()
}
