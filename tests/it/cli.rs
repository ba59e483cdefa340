//! End-to-end tests of the `kernjit` binary: exit codes, messages, and the
//! human and JSON output of `check` and `run` on small kernels written to a
//! temporary directory.

use kernjit::cli_args;
use kernjit::{ArrayData, Scalar, ScalarType};
use serde_json::Value as Json;
use std::path::Path;
use std::process::Command;

/// What one run of the binary gave.
struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn show(&self) -> String {
        format!("exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }

    #[track_caller]
    fn expect_code(&self, code: i32) -> &Outcome {
        assert_eq!(self.code, code, "{}", self.show());
        self
    }

    fn json(&self) -> Json {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| panic!("bad JSON ({e}):\n{}", self.show()))
    }
}

/// Runs `kernjit ARGS` in `dir` with colour off.
fn kernjit(dir: &Path, args: &[&str]) -> Outcome {
    let output = Command::new(env!("CARGO_BIN_EXE_kernjit"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("the kernjit binary runs");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

const KERNELS: &str = "\
import numpy as np

def total(x):
    s = 0.0
    for i in range(len(x)):
        s += x[i]
    return s

def scale(x, a):
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            x[i, j] = x[i, j] * a

def pair(a, b):
    return a + b, a * b

def add(a: f64, b: f64) -> f64:
    return a + b

def first(x):
    return x[10]

def double(x):
    y = np.zeros(x.shape[0])
    for i in range(x.shape[0]):
        y[i] = 2.0 * x[i]
    return y

def special(k):
    if k == 0:
        return np.nan
    if k == 1:
        return np.inf
    return -np.inf

# run: total(rand(10))
# run: scale(zeros(4, 3):f32, 2.5)
# run: pair(1, 2.5)
";

/// A temporary directory holding `kernels.kern`.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("kernels.kern"), KERNELS).unwrap();
    dir
}

// ---------------------------------------------------------------------------
// Usage and user errors (these do not need a working compiler).

#[test]
fn usage_errors_exit_2() {
    let dir = workspace();
    for args in [
        &[][..],
        &["frobnicate"],
        &["run"],
        &["run", "kernels.kern"],
        &["check"],
        &["run", "kernels.kern", "total", "--seed", "abc"],
        &["run", "kernels.kern", "total", "--seed", "-1"],
        &["--color", "sometimes", "check", "kernels.kern"],
        &["run", "kernels.kern", "total", "--bogus"],
    ] {
        let outcome = kernjit(dir.path(), args);
        assert_eq!(outcome.code, 2, "{args:?}\n{}", outcome.show());
        assert!(!outcome.stderr.is_empty(), "{args:?}");
    }
}

#[test]
fn help_shows_examples() {
    let dir = workspace();
    for command in ["run", "check", "dump", "bench", "completions"] {
        let outcome = kernjit(dir.path(), &[command, "--help"]);
        outcome.expect_code(0);
        assert!(outcome.stdout.contains("Examples:"), "{}", outcome.show());
        assert!(outcome.stdout.contains(&format!("kernjit {command} ")), "{}", outcome.show());
    }
    assert!(kernjit(dir.path(), &["run", "--help"]).stdout.contains("rand(64, 64):f32"));
    let main = kernjit(dir.path(), &["--help"]);
    for text in ["Examples:", "kernjit bench", "Exit status:", "2  a usage error", "KERNJIT_NUM_THREADS"] {
        assert!(main.expect_code(0).stdout.contains(text), "{text}\n{}", main.show());
    }
}

#[test]
fn completions_are_scripts_for_each_shell() {
    let dir = workspace();
    let bash = kernjit(dir.path(), &["completions", "bash"]);
    assert!(bash.expect_code(0).stdout.contains("complete -F _kernjit"), "{}", bash.show());
    for subcommand in ["check", "run", "dump", "bench", "completions"] {
        assert!(bash.stdout.contains(subcommand), "{subcommand} missing from the bash completions");
    }
    assert!(bash.stdout.contains("--threads") && bash.stdout.contains("--plot"));
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        assert!(!kernjit(dir.path(), &["completions", shell]).expect_code(0).stdout.is_empty(), "{shell}");
    }
    kernjit(dir.path(), &["completions", "tcsh"]).expect_code(2);
}

#[test]
fn missing_file_exits_1_with_a_message() {
    let dir = workspace();
    for args in [
        &["run", "missing.kern", "k"][..],
        &["check", "missing.kern"],
        &["dump", "missing.kern", "k"],
        &["bench", "missing.kern"],
        &["bench", "missing_dir/"],
    ] {
        let outcome = kernjit(dir.path(), args);
        outcome.expect_code(1);
        assert!(outcome.stderr.contains("error") && outcome.stderr.contains(&args[1][..7]), "{}", outcome.show());
        assert!(outcome.stdout.is_empty());
    }
}

#[test]
fn bad_npy_exits_1() {
    let dir = workspace();
    std::fs::write(dir.path().join("junk.npy"), b"not numpy at all").unwrap();
    let outcome = kernjit(dir.path(), &["run", "kernels.kern", "total", "@junk.npy"]);
    outcome.expect_code(1);
    assert!(outcome.stderr.contains("junk.npy") && outcome.stderr.contains("not an .npy file"), "{}", outcome.show());

    let outcome = kernjit(dir.path(), &["run", "kernels.kern", "total", "@absent.npy"]);
    outcome.expect_code(1);
    assert!(outcome.stderr.contains("absent.npy"), "{}", outcome.show());

    // A header promising more data than the file holds.
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1000000,), }";
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16 + 1).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(b"\n\0\0\0\0\0\0\0\0");
    std::fs::write(dir.path().join("short.npy"), bytes).unwrap();
    let outcome = kernjit(dir.path(), &["run", "kernels.kern", "total", "@short.npy"]);
    outcome.expect_code(1);
    assert!(outcome.stderr.contains("short.npy") && outcome.stderr.contains("truncated"), "{}", outcome.show());
}

#[test]
fn bad_arguments_exit_1_naming_the_argument() {
    let dir = workspace();
    for (arg, expected) in [
        ("u8:300", "out of range for u8"),
        ("zeros(1, 2, 3, 4)", "1 to 3 dimensions"),
        ("eye(3)", "not a generator"),
        ("hello", "expected a number"),
        ("zeros(65536, 65536)", "too many elements"),
    ] {
        let outcome = kernjit(dir.path(), &["run", "kernels.kern", "total", arg]);
        outcome.expect_code(1);
        assert!(
            outcome.stderr.contains("argument 0") && outcome.stderr.contains(expected),
            "{arg}\n{}",
            outcome.show()
        );
    }
}

#[test]
fn negative_numbers_are_arguments_not_flags() {
    let dir = workspace();
    for negative in ["-1.5", "-2", "-1e-3", "-0x10", "-inf"] {
        // The negative number is accepted as argument 0; argument 1 is bad.
        let outcome = kernjit(dir.path(), &["run", "kernels.kern", "total", negative, "u8:300", "--json"]);
        outcome.expect_code(1);
        assert!(outcome.stderr.contains("argument 1: `u8:300`"), "{negative}\n{}", outcome.show());
    }
}

#[test]
fn unknown_kernel_exits_1() {
    let dir = workspace();
    let outcome = kernjit(dir.path(), &["run", "kernels.kern", "nope", "1"]);
    outcome.expect_code(1);
    assert!(outcome.stderr.contains("no kernel named `nope`"), "{}", outcome.show());
    let outcome = kernjit(dir.path(), &["check", "kernels.kern", "--sig", "nope(f64)"]);
    outcome.expect_code(1);
    assert!(outcome.stderr.contains("no kernel named `nope`"), "{}", outcome.show());
    let outcome = kernjit(dir.path(), &["check", "kernels.kern", "--sig", "total(x)"]);
    outcome.expect_code(1);
    assert!(outcome.stderr.contains("--sig 'total(x)'"), "{}", outcome.show());
}

// ---------------------------------------------------------------------------
// check and run end to end (these need the parser, inference and interpreter).

#[test]
fn check_reports_kernels_and_signatures() {
    let dir = workspace();
    let outcome = kernjit(dir.path(), &["check", "kernels.kern", "--sig", "total(f32[:])", "--sig", "double(i64[:])"]);
    outcome.expect_code(0);
    // One annotated kernel, two --sig, three run lines.
    assert_eq!(outcome.stdout, "ok: kernels.kern (7 kernels, 6 signatures checked)\n", "{}", outcome.show());
}

#[test]
fn check_finds_type_errors() {
    let dir = workspace();
    std::fs::write(dir.path().join("bad.kern"), "def f(x):\n    y = x[0]\n    y = x\n    return y\n").unwrap();
    let outcome = kernjit(dir.path(), &["check", "bad.kern", "--sig", "f(f64[:])"]);
    outcome.expect_code(1);
    assert!(outcome.stderr.contains("bad.kern:2:") || outcome.stderr.contains("bad.kern:3:"), "{}", outcome.show());
    assert!(outcome.stderr.contains("--sig 'f(f64[:])'"), "{}", outcome.show());
    assert!(outcome.stdout.is_empty());

    std::fs::write(dir.path().join("syntax.kern"), "def f(x)\n    return x\n").unwrap();
    let outcome = kernjit(dir.path(), &["check", "syntax.kern"]);
    outcome.expect_code(1);
    assert!(outcome.stderr.contains("syntax.kern:1:"), "{}", outcome.show());
}

#[test]
fn check_validates_run_lines() {
    let dir = workspace();
    let source = format!("{KERNELS}# run: total(rand(3), 1, 2)\n# run: missing(1)\n# run: total(u8:300)\n");
    std::fs::write(dir.path().join("runs.kern"), source).unwrap();
    let outcome = kernjit(dir.path(), &["check", "runs.kern"]);
    outcome.expect_code(1);
    let run_line_count = KERNELS.lines().count();
    assert!(outcome.stderr.contains(&format!("runs.kern:{}", run_line_count + 1)), "{}", outcome.show());
    assert!(
        outcome.stderr.contains(&format!("runs.kern:{}: run line `missing(1)`", run_line_count + 2)),
        "{}",
        outcome.show()
    );
    assert!(outcome.stderr.contains("out of range for u8"), "{}", outcome.show());
}

#[test]
fn run_prints_a_scalar_result() {
    let dir = workspace();
    let outcome = kernjit(dir.path(), &["run", "kernels.kern", "add", "2", "0.5"]);
    outcome.expect_code(0);
    assert_eq!(outcome.stdout, "result: 2.5\n");
    assert!(outcome.stderr.starts_with("compile ") && outcome.stderr.contains(" ms, run "), "{}", outcome.show());

    let outcome = kernjit(dir.path(), &["run", "kernels.kern", "add", "-1.5", "-2", "--interp"]);
    outcome.expect_code(0);
    assert_eq!(outcome.stdout, "result: -3.5\n");

    let outcome = kernjit(dir.path(), &["run", "kernels.kern", "add", "-1e-3", "-inf"]);
    outcome.expect_code(0);
    assert_eq!(outcome.stdout, "result: -inf\n");

    let outcome = kernjit(dir.path(), &["run", "kernels.kern", "total", "ones(4, 1):i32"]);
    assert!(outcome.code != 0, "total takes a 1-d array:\n{}", outcome.show());
    let outcome = kernjit(dir.path(), &["run", "kernels.kern", "total", "ones(4):i32"]);
    outcome.expect_code(0);
    assert_eq!(
        outcome.stdout,
        "result: 4.0\narg 0 `ones(4):i32`: i32 array, shape (4,): min 1, max 1, mean 1.0, sum 4\n[1, 1, 1, 1]\n"
    );
}

#[test]
fn run_prints_tuples_arrays_and_array_arguments() {
    let dir = workspace();
    let outcome = kernjit(dir.path(), &["run", "kernels.kern", "pair", "3", "0.5"]);
    outcome.expect_code(0);
    assert_eq!(outcome.stdout, "result: (3.5, 1.5)\n");

    let outcome = kernjit(dir.path(), &["run", "kernels.kern", "scale", "full(2, 3, 1.5)", "2.0"]);
    outcome.expect_code(0);
    assert_eq!(
        outcome.stdout,
        "arg 0 `full(2, 3, 1.5)`: f64 array, shape (2, 3): min 3.0, max 3.0, mean 3.0, sum 18.0\n\
         [[3.0, 3.0, 3.0],\n [3.0, 3.0, 3.0]]\n",
        "a kernel returning None prints no result"
    );

    let outcome = kernjit(dir.path(), &["run", "kernels.kern", "double", "arange(8):f64"]);
    outcome.expect_code(0);
    assert_eq!(
        outcome.stdout,
        "result: f64 array, shape (8,): min 0.0, max 14.0, mean 7.0, sum 56.0\n\
         [ 0.0,  2.0,  4.0,  6.0,  8.0, 10.0, 12.0, 14.0]\n\
         arg 0 `arange(8):f64`: f64 array, shape (8,): min 0.0, max 7.0, mean 3.5, sum 28.0\n\
         [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]\n"
    );
}

#[test]
fn run_json_has_the_documented_shape() {
    let dir = workspace();
    let outcome = kernjit(dir.path(), &["run", "kernels.kern", "scale", "arange(2, 2):f32", "i32:3", "--json"]);
    outcome.expect_code(0);
    let json = outcome.json();
    assert_eq!(json["kernel"], "scale");
    assert_eq!(json["signature"], "scale(f32[:, ::1], i32)");
    assert_eq!(json["result"], Json::Null);
    assert_eq!(json["args"], serde_json::json!([{"index": 0, "dtype": "f32", "shape": [2, 2], "sum": 18.0}]));
    assert!(json["compile_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{}", outcome.show());
    assert!(json["run_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{}", outcome.show());

    let json = kernjit(dir.path(), &["run", "kernels.kern", "pair", "true", "2", "--json"]).expect_code(0).json();
    assert_eq!(json["result"], serde_json::json!([3, 2]));
    assert_eq!(json["args"], serde_json::json!([]));

    let json = kernjit(dir.path(), &["run", "kernels.kern", "double", "ones(3)", "--json"]).expect_code(0).json();
    assert_eq!(json["result"], serde_json::json!({"dtype": "f64", "shape": [3], "sum": 6.0}));

    for (k, expected) in [("0", "nan"), ("1", "inf"), ("2", "-inf")] {
        let json = kernjit(dir.path(), &["run", "kernels.kern", "special", k, "--json"]).expect_code(0).json();
        assert_eq!(json["result"], expected);
    }
}

#[test]
fn run_is_reproducible_and_seeded() {
    let dir = workspace();
    let sum = |seed: &str| {
        let json = kernjit(dir.path(), &["run", "kernels.kern", "total", "rand(100)", "--seed", seed, "--json"])
            .expect_code(0)
            .json();
        json["result"].as_f64().unwrap()
    };
    assert_eq!(sum("42"), sum("42"));
    assert_ne!(sum("42"), sum("7"));
    // Default seed is 42; the first uniform of seed 42 is 0.7415648787718233.
    let json = kernjit(dir.path(), &["run", "kernels.kern", "total", "rand(1)", "--json"]).expect_code(0).json();
    assert_eq!(json["result"], 0.7415648787718233);
}

#[test]
fn run_reads_npy_and_writes_outputs() {
    let dir = workspace();
    let input = ArrayData::from_scalars(ScalarType::F64, &[3], &[Scalar::F64(1.0), Scalar::F64(2.0), Scalar::F64(4.0)]);
    cli_args::write_npy(&dir.path().join("in.npy"), &input).unwrap();
    let outcome = kernjit(dir.path(), &["run", "kernels.kern", "double", "@in.npy", "-o", "out/sub"]);
    outcome.expect_code(0);
    assert!(
        outcome.stdout.starts_with(
            "result: f64 array, shape (3,): min 2.0, max 8.0, mean 4.66666667, sum 14.0\n[2.0, 4.0, 8.0]\n"
        ),
        "{}",
        outcome.show()
    );
    let result = cli_args::read_npy(&dir.path().join("out/sub/result.npy")).unwrap();
    assert_eq!(result.to_scalars(), vec![Scalar::F64(2.0), Scalar::F64(4.0), Scalar::F64(8.0)]);
    assert_eq!(cli_args::read_npy(&dir.path().join("out/sub/arg0.npy")).unwrap(), input);

    let outcome = kernjit(dir.path(), &["run", "kernels.kern", "scale", "arange(1, 3):i16", "2", "-o", "out2"]);
    outcome.expect_code(0);
    let scaled = cli_args::read_npy(&dir.path().join("out2/arg0.npy")).unwrap();
    assert_eq!(scaled.to_scalars(), vec![Scalar::I16(0), Scalar::I16(2), Scalar::I16(4)]);
    assert!(!dir.path().join("out2/result.npy").exists());
    assert!(!dir.path().join("out2/arg1.npy").exists());
}

#[test]
fn runtime_errors_exit_1_with_the_position() {
    let dir = workspace();
    let outcome = kernjit(dir.path(), &["run", "kernels.kern", "first", "zeros(3)"]);
    outcome.expect_code(1);
    assert!(outcome.stderr.contains("out of bounds"), "{}", outcome.show());
    assert!(outcome.stderr.contains("kernels.kern:"), "{}", outcome.show());
    assert!(outcome.stdout.is_empty());
}

#[test]
fn colour_follows_the_flag() {
    let dir = workspace();
    let coloured = kernjit(dir.path(), &["--color", "always", "run", "kernels.kern", "total", "u8:300"]);
    coloured.expect_code(1);
    assert!(coloured.stderr.contains('\x1b'), "{}", coloured.show());
    let plain = kernjit(dir.path(), &["run", "kernels.kern", "total", "u8:300", "--color", "never"]);
    assert!(!plain.stderr.contains('\x1b'), "{}", plain.show());
}

#[test]
fn check_takes_several_files_and_directories() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.kern"), "def one(x):\n    return x + 1\n").unwrap();
    std::fs::write(dir.path().join("b.kern"), "def two(x):\n    return x * 2\n").unwrap();
    let both = kernjit(dir.path(), &["check", "a.kern", "b.kern"]);
    both.expect_code(0);
    assert!(both.stdout.contains("ok: a.kern") && both.stdout.contains("ok: b.kern"), "{}", both.show());
    // A directory checks its .kern files; each --sig applies where its kernel is defined.
    let all = kernjit(dir.path(), &["check", ".", "--sig", "two(f32)"]);
    all.expect_code(0);
    assert_eq!(all.stdout.lines().count(), 2, "{}", all.show());
    let nowhere = kernjit(dir.path(), &["check", ".", "--sig", "three(f32)"]);
    nowhere.expect_code(1);
    assert!(nowhere.stderr.contains("no checked file defines"), "{}", nowhere.show());
    // One bad file fails the run but the others are still reported.
    std::fs::write(dir.path().join("c.kern"), "def bad(x):\n    return x +\n").unwrap();
    let mixed = kernjit(dir.path(), &["check", "."]);
    mixed.expect_code(1);
    assert!(mixed.stdout.contains("ok: ./a.kern") && mixed.stderr.contains("E0201"), "{}", mixed.show());
}

// ---------------------------------------------------------------------------
// prange: dump reports, thread counts.

const PARALLEL: &str = "\
from numba import prange

def psum(x):
    s = 0.0
    for i in prange(x.shape[0]):
        s += x[i]
    return s

def grid(a):
    for i in prange(a.shape[0]):
        for j in prange(a.shape[1]):
            a[i, j] = i * 10 + j
";

fn parallel_workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("par.kern"), PARALLEL).unwrap();
    dir
}

#[test]
fn dump_says_which_prange_loops_run_in_parallel() {
    let dir = parallel_workspace();
    let typed = kernjit(dir.path(), &["dump", "par.kern", "grid", "--sig", "(f64[:, :])", "--stage", "typed"]);
    let typed = &typed.expect_code(0).stdout;
    assert!(typed.contains("10:5  prange loop, parallel from 2 trips, reductions []"), "{typed}");
    assert!(typed.contains("11:9  prange loop, serial: nested in another prange"), "{typed}");
    let typed = kernjit(dir.path(), &["dump", "par.kern", "psum", "--sig", "(f64[:])", "--stage", "typed"]);
    assert!(typed.expect_code(0).stdout.contains("5:5  prange loop, parallel from 6000 trips, reductions [Add]"));

    let clif = kernjit(dir.path(), &["dump", "par.kern", "psum", "--sig", "(f64[:])", "--stage", "clif"]);
    let clif = &clif.expect_code(0).stdout;
    let header = "; prange at 5:5 in psum: parallel (body `prange0_psum`, serial below 6000 trips), reductions [Add]";
    assert!(clif.lines().nth(1) == Some(header), "{clif}");
    assert!(clif.contains("; prange0_psum (prange body in psum)\nfunction"), "{clif}");
    assert!(clif.contains("call fn") && clif.contains("func_addr"), "{clif}");
    let asm = kernjit(dir.path(), &["dump", "par.kern", "psum", "--sig", "(f64[:])", "--stage", "asm"]);
    assert!(asm.expect_code(0).stdout.contains("; prange0_psum (prange body in psum), "), "{}", asm.show());
}

#[test]
fn thread_counts_do_not_change_results() {
    let dir = parallel_workspace();
    let outputs: Vec<String> = ["1", "2", "5"]
        .iter()
        .map(|threads| {
            let run =
                kernjit(dir.path(), &["run", "par.kern", "psum", "randn(200000)", "--threads", threads, "--json"]);
            run.expect_code(0).json()["result"].to_string()
        })
        .collect();
    assert!(outputs.iter().all(|o| *o == outputs[0]), "{outputs:?}");
    for bad in ["0", "-1", "many", "100000"] {
        let run = kernjit(dir.path(), &["run", "par.kern", "psum", "rand(10)", "--threads", bad]);
        assert!(run.expect_code(2).stderr.contains("thread count"), "{}", run.show());
    }
}

// ---------------------------------------------------------------------------
// bench

#[test]
fn bench_reports_rows_as_a_table_and_as_json() {
    let dir = parallel_workspace();
    let kern = format!("# bench: psum(rand(50000))\n# bench: psum(nope(3))\n# bench: grid(zeros(8, 8))\n{PARALLEL}");
    std::fs::write(dir.path().join("par.kern"), kern).unwrap();
    let table = kernjit(dir.path(), &["bench", "par.kern", "--reps", "3", "--threads", "1,2"]);
    // The bad line is reported and the others still run; the exit code says so.
    table.expect_code(1);
    assert!(table.stderr.contains("par.kern:2: argument 0:"), "{}", table.show());
    assert!(table.stdout.contains("psum") && table.stdout.contains("grid") && table.stdout.contains("speedup"));

    let json = kernjit(dir.path(), &["bench", "par.kern", "--reps", "3", "--filter", "psum(rand", "--json"]);
    let row: Json = serde_json::from_str(json.expect_code(0).stdout.lines().next().unwrap()).unwrap();
    for field in [
        "line",
        "call",
        "kernel",
        "signature",
        "engine",
        "threads",
        "compile_ms",
        "compile_phases_ms",
        "first_call_ms",
        "median_ms",
        "min_ms",
        "max_ms",
        "reps",
        "bytes",
        "elements",
        "bytes_per_s",
        "elements_per_s",
        "speedup",
    ] {
        assert!(row.get(field).is_some(), "missing {field}: {row}");
    }
    assert_eq!(row["reps"], 3);
    assert_eq!(row["bytes"], 400_000);
    assert_eq!(row["signature"], "psum(f64[::1])");

    let none = kernjit(dir.path(), &["bench", "par.kern", "--filter", "absent"]);
    assert!(none.expect_code(1).stderr.contains("no `# bench:` lines"), "{}", none.show());
}

#[test]
fn bench_reports_kernel_errors_and_bad_files_and_goes_on() {
    let dir = parallel_workspace();
    std::fs::write(dir.path().join("junk.npy"), b"not numpy at all").unwrap();
    let kern = format!(
        "# bench: psum(@junk.npy)\n# bench: psum(rand(5), 1)\n# bench: psum(ones(3, 3))\n# bench: psum)(\n\
         # bench: psum(rand(100))\n{PARALLEL}"
    );
    std::fs::write(dir.path().join("par.kern"), kern).unwrap();
    let outcome = kernjit(dir.path(), &["bench", "par.kern", "--reps", "2", "--threads", "1", "--json"]);
    outcome.expect_code(1);
    for expected in [
        "par.kern:1: junk.npy: not an .npy file",
        "par.kern:2: psum(rand(5), 1)",
        "takes 1 argument but 2 were given",
        "par.kern:3: psum(ones(3, 3))",
        "par.kern:4:",
    ] {
        assert!(outcome.stderr.contains(expected), "{expected}\n{}", outcome.show());
    }
    // The one good line still produced its row.
    let rows: Vec<Json> = outcome.stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(rows.len(), 1, "{}", outcome.show());
    assert_eq!(rows[0]["line"], "par.kern:5");

    let check = kernjit(dir.path(), &["check", "par.kern"]);
    check.expect_code(1);
    assert!(check.stderr.contains("par.kern:1: bench line `psum(@junk.npy)`"), "{}", check.show());
    assert!(check.stderr.contains("while checking the bench line at par.kern:3"), "{}", check.show());
}

#[test]
fn bench_json_rows_keep_their_schema() {
    let dir = parallel_workspace();
    std::fs::write(dir.path().join("par.kern"), format!("# bench: psum(rand(1000))\n{PARALLEL}")).unwrap();
    let outcome = kernjit(dir.path(), &["bench", "par.kern", "--reps", "2", "--threads", "1,2", "--interp", "--json"]);
    let rows: Vec<Json> = outcome.expect_code(0).stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 3, "{}", outcome.show());
    let engines: Vec<(&str, u64)> =
        rows.iter().map(|r| (r["engine"].as_str().unwrap(), r["threads"].as_u64().unwrap())).collect();
    assert_eq!(engines, [("jit", 1), ("jit", 2), ("interp", 1)]);
    // Field names and JSON types: what CI scripts and plots rely on.
    let types = |row: &Json| -> String {
        let object = row.as_object().unwrap();
        let mut fields: Vec<String> = object
            .iter()
            .map(|(key, value)| {
                let kind = match value {
                    Json::Null => "null",
                    Json::Bool(_) => "bool",
                    Json::Number(_) => "number",
                    Json::String(_) => "string",
                    Json::Array(_) => "array",
                    Json::Object(_) => "object",
                };
                format!("{key}: {kind}")
            })
            .collect();
        fields.sort();
        fields.join("\n")
    };
    expect_test::expect![[r#"
        bytes: number
        bytes_per_s: number
        call: string
        compile_ms: number
        compile_phases_ms: object
        elements: number
        elements_per_s: number
        engine: string
        first_call_ms: number
        kernel: string
        line: string
        max_ms: number
        median_ms: number
        min_ms: number
        reps: number
        signature: string
        speedup: null
        threads: number"#]]
    .assert_eq(&types(&rows[0]));
    assert!(rows[1]["speedup"].is_number() && rows[2]["speedup"].is_number());
    let phases: Vec<&String> = rows[0]["compile_phases_ms"].as_object().unwrap().keys().collect();
    assert_eq!(phases, ["cranelift", "finalize", "infer", "lower", "parse"]);

    // Without --threads: one thread, then the default count.
    let output = Command::new(env!("CARGO_BIN_EXE_kernjit"))
        .args(["bench", "par.kern", "--reps", "2", "--json"])
        .current_dir(dir.path())
        .env("KERNJIT_NUM_THREADS", "3")
        .output()
        .unwrap();
    let threads: Vec<u64> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str::<Json>(line).unwrap()["threads"].as_u64().unwrap())
        .collect();
    assert_eq!(threads, [1, 3]);
}

#[test]
fn bench_plot_writes_an_svg() {
    let dir = parallel_workspace();
    std::fs::write(dir.path().join("par.kern"), format!("# bench: psum(rand(1000))\n{PARALLEL}")).unwrap();
    let outcome = kernjit(dir.path(), &["bench", "par.kern", "--reps", "2", "--threads", "1,2", "--plot", "out.svg"]);
    outcome.expect_code(0);
    let svg = std::fs::read_to_string(dir.path().join("out.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("psum") && svg.contains("thread scaling"), "{svg}");

    let bad = kernjit(dir.path(), &["bench", "par.kern", "--reps", "2", "--plot", "no/such/dir/out.svg"]);
    assert!(bad.expect_code(1).stderr.contains("is not a directory"), "{}", bad.show());
}
