//! Every file in `kernels/` parses, type-checks, and every `# run:` line in it
//! runs in the interpreter; where CPython with NumPy is available, the
//! results agree with running the same file under CPython (`prange = range`).

use kernjit::{cli_args, Module, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn kernel_files() -> Vec<PathBuf> {
    crate::corpus::kern_files(&crate::corpus::root().join("kernels"))
}

/// Runs one `# run:` line in the interpreter.
fn run_line(module: &Module, call: &str, base_dir: &Path) -> Result<(Value, Vec<Value>), String> {
    let (kernel, raw) = cli_args::parse_call(call)?;
    let specs = raw.iter().map(|a| cli_args::parse_arg(a)).collect::<Result<Vec<_>, _>>()?;
    let mut args = cli_args::materialise(&specs, 42, base_dir)?;
    let result = module.interpret(&kernel, &mut args).map_err(|e| e.render(false))?;
    Ok((result, args))
}

#[test]
fn every_kernel_file_checks_and_runs() {
    let files = kernel_files();
    assert!(files.len() >= 10, "the kernels/ library has at least ten files");
    let mut failures = Vec::new();
    let mut runs = 0;
    for path in &files {
        let module = match Module::parse_file(path) {
            Ok(m) => m,
            Err(e) => {
                failures.push(e.render(false));
                continue;
            }
        };
        if let Err(e) = module.check_annotated() {
            failures.push(e.render(false));
        }
        let source = std::fs::read_to_string(path).unwrap();
        let lines = cli_args::run_lines(&source);
        assert!(!lines.is_empty(), "{} has no `# run:` lines", path.display());
        for (line, call) in lines {
            runs += 1;
            if let Err(message) = run_line(&module, &call, path.parent().unwrap()) {
                failures.push(format!("{}:{line}: {call}\n{message}", path.display()));
            }
        }
    }
    assert!(failures.is_empty(), "{} failure(s) in {runs} runs:\n{}", failures.len(), failures.join("\n\n"));
}

fn cpython_with_numpy() -> bool {
    Command::new("python3").args(["-c", "import numpy"]).output().is_ok_and(|o| o.status.success())
}

/// Compares two JSON numbers (or "nan"/"inf" strings) with a tolerance
/// suited to float32 kernels and near-zero results.
fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    let number = |v: &serde_json::Value| match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::Bool(b) => Some(*b as u8 as f64),
        serde_json::Value::String(s) => s.parse::<f64>().ok(),
        _ => None,
    };
    match (a, b) {
        (serde_json::Value::Array(x), serde_json::Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| close(a, b))
        }
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => {
                (x.is_nan() && y.is_nan()) || x == y || (x - y).abs() <= 1e-9 + 2e-4 * x.abs().max(y.abs())
            }
            _ => a == b,
        },
    }
}

fn summary(result: &Value, args: &[Value]) -> serde_json::Value {
    let number = |s: kernjit::Scalar| -> serde_json::Value {
        let v = s.to_f64();
        if v.is_finite() {
            serde_json::json!(v)
        } else {
            serde_json::json!(s.to_string())
        }
    };
    let array_summary = |a: &kernjit::ArrayData| serde_json::json!({"dtype": a.dtype().name(), "shape": a.shape(), "sum": number(kernjit::Scalar::F64(a.sum_f64()))});
    let result = match result {
        Value::Scalar(s) => number(*s),
        Value::Tuple(items) => serde_json::Value::Array(items.iter().map(|s| number(*s)).collect()),
        Value::Array(a) => array_summary(a),
        Value::None => serde_json::Value::Null,
    };
    let args: Vec<serde_json::Value> = args
        .iter()
        .enumerate()
        .filter_map(|(index, arg)| match arg {
            Value::Array(a) => {
                let mut s = array_summary(a);
                s["index"] = serde_json::json!(index);
                Some(s)
            }
            _ => None,
        })
        .collect();
    serde_json::json!({"result": result, "args": args})
}

/// The interpreter agrees with CPython + NumPy on every run line. Skipped
/// (with a message) when NumPy is missing, unless KERNJIT_REQUIRE_CPYTHON is
/// set, as CI does.
#[test]
fn kernels_agree_with_cpython() {
    if !cpython_with_numpy() {
        assert!(
            std::env::var_os("KERNJIT_REQUIRE_CPYTHON").is_none(),
            "KERNJIT_REQUIRE_CPYTHON is set but python3 cannot import numpy"
        );
        eprintln!("skipping the CPython comparison: python3 with numpy is not installed");
        return;
    }
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cpython/run_kern.py");
    let mut failures = Vec::new();
    let mut compared = 0;
    for path in kernel_files() {
        let output = Command::new("python3").arg(&runner).arg("--all-runs").arg(&path).output().unwrap();
        assert!(output.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&output.stderr));
        let expected: Vec<serde_json::Value> =
            String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let module = Module::parse_file(&path).unwrap();
        let source = std::fs::read_to_string(&path).unwrap();
        let lines = cli_args::run_lines(&source);
        assert_eq!(lines.len(), expected.len(), "{}: one CPython result per run line", path.display());
        for ((line, call), python) in lines.iter().zip(&expected) {
            let Ok((result, args)) = run_line(&module, call, path.parent().unwrap()) else { continue };
            let ours = summary(&result, &args);
            compared += 1;
            let same = close(&ours["result"], &python["result"]) && close(&ours["args"], &python["args"]);
            if !same {
                failures.push(format!("{}:{line}: {call}\n  kernjit: {ours}\n  CPython: {python}", path.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} runs disagree with CPython:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
