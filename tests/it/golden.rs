//! Golden tests: every `tests/golden/**/*.kern` file holds a program, its
//! directives and, after a marker line, the expected transcript.
//!
//! Directives (comment lines anywhere above the marker):
//! - `# run: kernel(ARG, ...)`  runs in the interpreter (ARG as for `kernjit run`);
//! - `# check: kernel(f64, i64[:])`  specialises for a signature;
//! - `# types: kernel(f64, i64[:])`  lists every expression with its type.
//!
//! A file that does not parse has its syntax errors as the transcript. Run
//! `UPDATE_GOLDEN=1 cargo test --test it golden` after a deliberate change to
//! rewrite the expectations; review the diff before committing.

use kernjit::{cli_args, tir, types, ArrayData, Module, Value};
use std::path::Path;

const MARKER: &str = "# ---- expected (UPDATE_GOLDEN=1 cargo test --test it golden rewrites this) ----";

#[test]
fn golden() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let files = crate::corpus::kern_files(&root);
    assert!(files.len() >= 10, "expected golden files under {}", root.display());
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    for path in &files {
        let text = std::fs::read_to_string(path).expect("golden files are UTF-8");
        let (body, expected) = match text.find(MARKER) {
            Some(at) => (&text[..at], text[at + MARKER.len()..].trim_start_matches('\n')),
            None => (text.as_str(), ""),
        };
        let body = body.trim_end_matches('\n');
        let relative = path.strip_prefix(&root).unwrap().display().to_string();
        let actual: String =
            transcript(&relative, body, path.parent().unwrap()).iter().map(|line| format!("# {line}\n")).collect();
        if actual != expected {
            if update {
                // Write a sibling file and rename it over the original, so two
                // concurrent updates never leave a half-written file.
                let temporary = path.with_extension(format!("kern.{}.tmp", std::process::id()));
                std::fs::write(&temporary, format!("{body}\n\n{MARKER}\n{actual}")).unwrap();
                std::fs::rename(&temporary, path).unwrap();
            } else {
                failures.push(format!("--- {relative}\nexpected:\n{expected}actual:\n{actual}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} golden file(s) differ:\n{}", failures.len(), failures.join("\n"));
}

/// What the golden file expects: syntax errors, or one entry per directive.
pub fn transcript(name: &str, body: &str, base_dir: &Path) -> Vec<String> {
    let module = match Module::parse(name, body.as_bytes()) {
        Ok(module) => module,
        Err(error) => return diagnostics(&error),
    };
    let mut lines = Vec::new();
    for line in body.lines() {
        let line = line.trim();
        if let Some(call) = line.strip_prefix("# run:") {
            lines.push(run(&module, call.trim(), base_dir));
            continue;
        }
        for (prefix, list_types) in [("# check:", false), ("# types:", true)] {
            let Some(signature) = line.strip_prefix(prefix) else { continue };
            let signature = signature.trim();
            let verb = prefix.trim_start_matches("# ").trim_end_matches(':');
            match types::parse_signature(signature) {
                Err(message) => lines.push(format!("{verb} {signature} -> bad signature: {message}")),
                Ok(sig) => match module.specialise(&sig.kernel, &sig.args) {
                    Ok(program) if list_types => {
                        lines.push(format!("{verb} {signature}"));
                        lines
                            .extend(tir::expression_types(&program, module.source()).lines().map(|l| format!("  {l}")));
                    }
                    Ok(_) => lines.push(format!("{verb} {signature} -> ok")),
                    Err(error) => {
                        lines.push(format!("{verb} {signature} -> error"));
                        lines.extend(diagnostics(&error).into_iter().map(|l| format!("  {l}")));
                    }
                },
            }
        }
    }
    if lines.is_empty() {
        lines.push("parses".to_string());
    }
    lines
}

fn run(module: &Module, call: &str, base_dir: &Path) -> String {
    let parsed = cli_args::parse_call(call).and_then(|(kernel, raw)| {
        let specs = raw.iter().map(|arg| cli_args::parse_arg(arg)).collect::<Result<Vec<_>, _>>()?;
        Ok((kernel, cli_args::materialise(&specs, 42, base_dir)?))
    });
    let (kernel, mut args) = match parsed {
        Ok(parts) => parts,
        Err(message) => return format!("run {call} -> bad arguments: {message}"),
    };
    match module.interpret(&kernel, &mut args) {
        Ok(result) => {
            let mut out = format!("run {call} -> {}", render_value(&result));
            for (index, arg) in args.iter().enumerate() {
                if let Value::Array(array) = arg {
                    out.push_str(&format!("\n#   arg{index} = {}", render_array(array)));
                }
            }
            out
        }
        Err(error) => {
            let mut out = format!("run {call} -> error");
            for line in diagnostics(&error) {
                out.push_str(&format!("\n#   {line}"));
            }
            out
        }
    }
}

/// `error[CODE] LINE:COL: message`, one per diagnostic.
pub fn diagnostics(error: &kernjit::Error) -> Vec<String> {
    let (kernjit::Error::Compile { file, .. } | kernjit::Error::Runtime { file, .. }) = error else {
        return vec![error.to_string()];
    };
    error
        .diagnostics()
        .iter()
        .map(|d| format!("error[{}] {}: {}", d.code, file.line_col(d.span.start), d.message))
        .collect()
}

pub fn render_value(value: &Value) -> String {
    match value {
        Value::Scalar(s) => format!("{s} ({})", s.ty()),
        Value::Tuple(items) => {
            let parts: Vec<String> = items.iter().map(|s| format!("{s} ({})", s.ty())).collect();
            format!("({})", parts.join(", "))
        }
        Value::Array(array) => render_array(array),
        Value::None => "None".to_string(),
    }
}

pub fn render_array(array: &ArrayData) -> String {
    let values = array.to_scalars();
    let shown: Vec<String> = values.iter().take(48).map(|v| v.to_string()).collect();
    let more = if values.len() > 48 { format!(", ... ({} more)", values.len() - 48) } else { String::new() };
    format!("{}{:?} [{}{more}]", array.dtype(), array.shape(), shown.join(", "))
}
