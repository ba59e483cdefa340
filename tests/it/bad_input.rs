//! Hostile inputs a golden `.kern` text file cannot hold: invalid UTF-8, NUL
//! bytes, BOM + CRLF, megabytes of random bytes, pathological nesting and
//! sizes. Every one must come back as `Ok` or a clean `Err` (never a panic,
//! never a stack overflow), in bounded time, with every span inside the file.
//!
//! These run on the default test thread (2 MB stack) on purpose: the parser's
//! depth limits are what keep every later phase's recursion bounded, and a
//! test with a bigger stack would hide a regression.

use kernjit::{diag, Error, Module, Scalar, Type, Value};
use std::time::{Duration, Instant};

/// A deterministic xorshift64 stream.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// Checks the invariants every error must keep: known codes, spans inside
/// the file, and a rendering that does not panic. Returns the codes.
#[track_caller]
fn check_error(error: &Error) -> Vec<&'static str> {
    let Error::Compile { file, diagnostics } = error else {
        panic!("expected a compile error, got {error}");
    };
    assert!(!diagnostics.is_empty(), "a compile error without diagnostics");
    let len = file.text().len() as u32;
    for d in diagnostics {
        assert!(diag::CODES.iter().any(|(code, _)| *code == d.code), "unknown code {} ({})", d.code, d.message);
        assert!(
            d.span.start <= d.span.end && d.span.end <= len,
            "{}: span {:?} outside the file of {len} bytes",
            d.code,
            d.span
        );
        for label in &d.labels {
            assert!(
                label.span.start <= label.span.end && label.span.end <= len,
                "{}: label span {:?} outside the file",
                d.code,
                label.span
            );
        }
        assert!(!d.message.is_empty());
    }
    // Rendering must not panic either (only the first few, it can be slow for
    // thousands of diagnostics on a 10 MB line).
    let first: Vec<_> = diagnostics.iter().take(5).cloned().collect();
    let rendered = diag::render(&first, file, false);
    assert!(rendered.contains(first[0].code), "{rendered}");
    diagnostics.iter().map(|d| d.code).collect()
}

/// Parses and, on success, type-checks every kernel that needs no arguments;
/// returns the parse result after checking error invariants.
#[track_caller]
fn parse(name: &str, source: &[u8]) -> Result<Module, Vec<&'static str>> {
    match Module::parse(name, source) {
        Ok(module) => Ok(module),
        Err(error) => Err(check_error(&error)),
    }
}

#[track_caller]
fn within(limit_secs: u64, start: Instant, what: &str) {
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(limit_secs), "{what} took {elapsed:?} (limit {limit_secs} s)");
}

fn line_col_of_first(error: &Error) -> String {
    let Error::Compile { file, diagnostics } = error else { panic!("expected a compile error") };
    file.line_col(diagnostics[0].span.start).to_string()
}

#[test]
fn invalid_utf8_is_e0101_with_position() {
    let source = b"def f(x):\n    return x\xff + 1\n";
    let error = Module::parse("bad.kern", source).expect_err("invalid UTF-8 must be rejected");
    assert_eq!(check_error(&error), ["E0101"]);
    assert_eq!(line_col_of_first(&error), "2:13");
    // A truncated multi-byte sequence at the very end of the file.
    let error = Module::parse("bad.kern", b"def f(x):\n    return x\n# \xc3").expect_err("truncated UTF-8");
    assert_eq!(check_error(&error), ["E0101"]);
    assert_eq!(line_col_of_first(&error), "3:3");
    // Invalid UTF-8 on the first byte.
    let error = Module::parse("bad.kern", b"\x80def f():\n    pass\n").expect_err("leading continuation byte");
    assert_eq!(check_error(&error), ["E0101"]);
    assert_eq!(line_col_of_first(&error), "1:1");
}

#[test]
fn nul_bytes_are_a_clean_error() {
    let error = Module::parse("nul.kern", b"def f(x):\n    return x\0 + 1\n").expect_err("NUL is not a token");
    assert_eq!(check_error(&error), ["E0102"]);
    assert_eq!(line_col_of_first(&error), "2:13");
    // A file of nothing but NULs.
    let codes = parse("nuls.kern", &[0u8; 4096]).expect_err("NULs only");
    assert!(codes.iter().all(|c| *c == "E0102"), "{codes:?}");
}

#[test]
fn bom_and_crlf_parse_and_run() {
    let source = "\u{feff}import math\r\n\r\ndef f(x):\r\n    if x > 0:\r\n        return x + 1\r\n    return (x +\r\n            2)\r\n";
    let module = Module::parse("bom.kern", source.as_bytes()).unwrap_or_else(|e| panic!("{}", e.render(false)));
    assert_eq!(module.kernel_names(), ["f"]);
    let mut args = [Value::Scalar(Scalar::I64(2))];
    assert_eq!(module.interpret("f", &mut args).unwrap(), Value::Scalar(Scalar::I64(3)));
    let mut args = [Value::Scalar(Scalar::I64(-5))];
    assert_eq!(module.interpret("f", &mut args).unwrap(), Value::Scalar(Scalar::I64(-3)));
    // An error in a CRLF file still gets the right line and column.
    let error = Module::parse("crlf.kern", b"def f(x):\r\n    y = $\r\n    return y\r\n").expect_err("`$`");
    assert_eq!(check_error(&error), ["E0102"]);
    assert_eq!(line_col_of_first(&error), "2:9");
    // Old Mac line ends (a lone CR): accepted or rejected, never a panic.
    let _ = parse("cr.kern", b"def f(x):\r    return x\r");
}

#[test]
fn ten_megabytes_of_random_bytes() {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let bytes: Vec<u8> = (0..10 << 20).map(|_| rng.next() as u8).collect();
    let start = Instant::now();
    let codes = parse("random.kern", &bytes).expect_err("random bytes are not a program");
    assert_eq!(codes, ["E0101"], "random bytes are almost surely invalid UTF-8 near the start");
    within(10, start, "10 MB of random bytes");

    // Random printable ASCII (valid UTF-8) goes through the lexer and parser.
    let alphabet = b"abcdefxyz0123456789_ ()[]{}:,.+-*/%<>=!&|^~@#'\"\\\n\n\n    \t;";
    let text: Vec<u8> = (0..10 << 20).map(|_| alphabet[(rng.next() % alphabet.len() as u64) as usize]).collect();
    let start = Instant::now();
    let _ = parse("random_ascii.kern", &text);
    within(30, start, "10 MB of random ASCII");

    // Random tokens of the language, which get deeper into the parser.
    let words = [
        "def ", "f", "(", ")", ":", "\n", "    ", "return ", "x", " + ", " * ", "1", "2.5", "[", "]", ",", "if ",
        "else", " = ", "for ", " in ", "range", "while ", "prange", "np.zeros", "(", ")", " and ", " not ", "-", "**",
        "\n    ",
    ];
    let mut text = String::new();
    while text.len() < 2 << 20 {
        text.push_str(words[(rng.next() % words.len() as u64) as usize]);
    }
    let start = Instant::now();
    let _ = parse("random_tokens.kern", text.as_bytes());
    within(30, start, "2 MB of random tokens");
}

#[test]
fn many_small_random_token_files_never_panic() {
    let words = [
        "def ",
        "f",
        "g",
        "(",
        ")",
        ":",
        "\n",
        "    ",
        "return ",
        "x",
        "a",
        " + ",
        " // ",
        "1",
        "0",
        "2.5",
        "[",
        "]",
        ",",
        "if ",
        "else",
        " = ",
        "for ",
        " in ",
        "range",
        "(",
        ")",
        "-",
        "**",
        "\n    ",
        "\n        ",
        "x[",
        "a.shape",
        "prange(",
        "np.zeros(",
        "min(",
        "True",
        " < ",
        " and ",
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let mut text = String::from("def k(x, a):\n    ");
        for _ in 0..(rng.next() % 40) {
            text.push_str(words[(rng.next() % words.len() as u64) as usize]);
        }
        text.push('\n');
        if let Ok(module) = parse("fuzz.kern", text.as_bytes()) {
            // Whatever parsed must also type-check or fail cleanly.
            for kernel in module.kernel_names() {
                let args = [Type::Scalar(kernjit::ScalarType::I64), Type::Scalar(kernjit::ScalarType::F64)];
                if let Err(error) = module.specialise(kernel, &args) {
                    check_error(&error);
                }
            }
        }
    }
}

#[test]
fn a_200k_term_sum_is_a_clean_e0203() {
    let source = format!("def f():\n    return {}1\n", "1+".repeat(200_000));
    let start = Instant::now();
    let codes = parse("long_sum.kern", source.as_bytes()).expect_err("too deep");
    within(5, start, "200k-term expression");
    assert_eq!(codes, ["E0203"]);
}

#[test]
fn a_sum_just_under_the_depth_limit_checks_and_runs() {
    // The deepest expression the parser accepts must be walked by inference
    // and the interpreter on a 2 MB stack.
    for terms in [100usize, 500, 990] {
        let source = format!("def f(x):\n    return x{}\n", "+x".repeat(terms));
        let module = Module::parse("sum.kern", source.as_bytes()).unwrap_or_else(|e| panic!("{}", e.render(false)));
        let mut args = [Value::Scalar(Scalar::I64(1))];
        let result = module.interpret("f", &mut args).unwrap_or_else(|e| panic!("{}", e.render(false)));
        assert_eq!(result, Value::Scalar(Scalar::I64(terms as i64 + 1)));
    }
}

#[test]
fn ten_thousand_nested_parens() {
    let source = format!("def f(x):\n    return {}x{}\n", "(".repeat(10_000), ")".repeat(10_000));
    let start = Instant::now();
    let codes = parse("parens.kern", source.as_bytes()).expect_err("too deep");
    within(5, start, "10k nested parens");
    assert!(codes.contains(&"E0203"), "{codes:?}");
    // Unbalanced: 10k opening brackets only.
    let source = format!("def f(x):\n    return {}x\n", "[".repeat(10_000));
    let codes = parse("open.kern", source.as_bytes()).expect_err("unclosed");
    assert!(!codes.is_empty());
    // Nested calls and subscripts, which recurse through different rules.
    let source = format!("def f(x):\n    return {}x{}\n", "g(".repeat(10_000), ")".repeat(10_000));
    let codes = parse("calls.kern", source.as_bytes()).expect_err("too deep");
    assert!(codes.contains(&"E0203"), "{codes:?}");
    let source = format!("def f(x):\n    return x{}\n", "[0]".repeat(10_000));
    let _ = parse("subscripts.kern", source.as_bytes());
    let source = format!("def f(x):\n    return {}x\n", "-".repeat(10_000));
    let codes = parse("unary.kern", source.as_bytes()).expect_err("too deep");
    assert!(codes.contains(&"E0203"), "{codes:?}");
    let source = format!("def f(x):\n    return {}x\n", "not ".repeat(10_000));
    let codes = parse("not.kern", source.as_bytes()).expect_err("too deep");
    assert!(codes.contains(&"E0203"), "{codes:?}");
    let source = format!("def f(x):\n    return x{}\n", "**x".repeat(10_000));
    let codes = parse("pow.kern", source.as_bytes()).expect_err("too deep");
    assert!(codes.contains(&"E0203"), "{codes:?}");
    let source = format!("def f(x):\n    return {}0\n", "x if x else ".repeat(10_000));
    let codes = parse("ifexp.kern", source.as_bytes()).expect_err("too deep");
    assert!(codes.contains(&"E0203"), "{codes:?}");
}

#[test]
fn deep_but_accepted_nesting_specialises_and_runs() {
    // Below MAX_NESTING: each phase walks this recursively.
    for depth in [10usize, 50, 66] {
        let source = format!("def f(x):\n    return {}x{}\n", "-(".repeat(depth), ")".repeat(depth));
        let module = Module::parse("nest.kern", source.as_bytes()).unwrap_or_else(|e| panic!("{}", e.render(false)));
        let mut args = [Value::Scalar(Scalar::I64(7))];
        let result = module.interpret("f", &mut args).unwrap_or_else(|e| panic!("{}", e.render(false)));
        let expected = if depth % 2 == 0 { 7 } else { -7 };
        assert_eq!(result, Value::Scalar(Scalar::I64(expected)), "depth {depth}");
    }
}

#[test]
fn ten_thousand_nested_ifs() {
    let mut source = String::from("def f(x):\n");
    for level in 1..=10_000 {
        source.push_str(&" ".repeat(4 * level));
        source.push_str("if x:\n");
    }
    source.push_str(&" ".repeat(4 * 10_001));
    source.push_str("x = 1\n    return x\n");
    let start = Instant::now();
    let codes = parse("ifs.kern", source.as_bytes()).expect_err("too deep");
    within(10, start, "10k nested ifs");
    assert!(codes.contains(&"E0203"), "{codes:?}");
    // The same with while and for, and one space per level.
    let mut source = String::from("def f(x):\n");
    for level in 1..=10_000 {
        source.push_str(&" ".repeat(level));
        source.push_str(if level % 2 == 0 { "while x:\n" } else { "for i in range(x):\n" });
    }
    source.push_str(&" ".repeat(10_001));
    source.push_str("pass\n");
    let codes = parse("loops.kern", source.as_bytes()).expect_err("too deep");
    assert!(codes.contains(&"E0203"), "{codes:?}");
}

#[test]
fn nested_blocks_under_the_limit_run() {
    let depth = 150;
    let mut source = String::from("def f(x):\n    n = 0\n");
    for level in 1..=depth {
        source.push_str(&" ".repeat(4 * level));
        source.push_str("if x > 0:\n");
    }
    source.push_str(&" ".repeat(4 * (depth + 1)));
    source.push_str("n = 1\n    return n\n");
    let module = Module::parse("blocks.kern", source.as_bytes()).unwrap_or_else(|e| panic!("{}", e.render(false)));
    let mut args = [Value::Scalar(Scalar::I64(1))];
    let result = module.interpret("f", &mut args).unwrap_or_else(|e| panic!("{}", e.render(false)));
    assert_eq!(result, Value::Scalar(Scalar::I64(1)));
}

#[test]
fn a_hundred_thousand_functions() {
    let mut source = String::new();
    for i in 0..100_000 {
        source.push_str(&format!("def f{i}(x):\n    return x + {i}\n\n"));
    }
    source.push_str("def last(x):\n    return f99999(x) + f0(x)\n");
    let start = Instant::now();
    let parsed = parse("many.kern", source.as_bytes());
    within(10, start, "parsing 100k functions");
    if let Ok(module) = parsed {
        assert_eq!(module.kernel_names().len(), 100_001);
        let start = Instant::now();
        let mut args = [Value::Scalar(Scalar::I64(1))];
        assert_eq!(module.interpret("last", &mut args).unwrap(), Value::Scalar(Scalar::I64(100_001)));
        within(10, start, "calling one of 100k functions");
    }
}

/// `f0` calls `f1` ... calls `f{n-1}`, each adding 1 to the result.
pub(crate) fn call_chain(n: usize) -> String {
    let mut source = String::new();
    for i in 0..n - 1 {
        source.push_str(&format!("def f{i}(x):\n    return f{}(x) + 1\n\n", i + 1));
    }
    source.push_str(&format!("def f{}(x):\n    return x\n", n - 1));
    source
}

#[test]
fn a_long_call_chain_is_bounded() {
    // f0 calls f1 calls ... f2999: specialisation goes 3000 functions deep,
    // and the interpreter must stop at the recursion limit, not the stack.
    let n = 3000;
    let source = call_chain(n);
    let module = parse("chain.kern", source.as_bytes()).expect("a call chain parses");
    let mut args = [Value::Scalar(Scalar::I64(0))];
    match module.interpret("f0", &mut args) {
        Ok(value) => assert_eq!(value, Value::Scalar(Scalar::I64(n as i64 - 1))),
        Err(error) => {
            let codes: Vec<_> = error.diagnostics().iter().map(|d| d.code).collect();
            assert!(codes == ["R0605"] || codes.iter().all(|c| c.starts_with('E')), "{codes:?}: {error}");
        }
    }
}

#[test]
fn a_one_million_character_line() {
    // A valid line: a long name and a long literal in one statement.
    let name = "v".repeat(500_000);
    let source = format!("def f(x):\n    {name} = x\n    return {name} + 0\n");
    let start = Instant::now();
    let module = parse("long_line.kern", source.as_bytes()).expect("a long name is fine");
    let mut args = [Value::Scalar(Scalar::I64(4))];
    assert_eq!(module.interpret("f", &mut args).unwrap(), Value::Scalar(Scalar::I64(4)));
    within(10, start, "a 1M-character line");
    // A 1M-character comment, then an error after it on the same line count.
    let source = format!("# {}\ndef f(x):\n    return x $\n", "c".repeat(1_000_000));
    let error = Module::parse("long_comment.kern", source.as_bytes()).expect_err("`$`");
    assert_eq!(check_error(&error), ["E0102"]);
    assert_eq!(line_col_of_first(&error), "3:14");
    // 1M characters of `x, ` in one tuple: long but flat.
    let source = format!("def f(x):\n    return x{}\n", ", x".repeat(333_333));
    let start = Instant::now();
    let _ = parse("long_tuple.kern", source.as_bytes());
    within(10, start, "a 1M-character tuple");
    // A 1M-digit number.
    let source = format!("def f():\n    return {}\n", "9".repeat(1_000_000));
    let codes = parse("long_number.kern", source.as_bytes()).expect_err("too large");
    assert_eq!(codes, ["E0105"]);
    // A 1M-character error line: an unterminated string.
    let source = format!("def f():\n    return '{}\n", "s".repeat(1_000_000));
    let codes = parse("long_string.kern", source.as_bytes()).expect_err("unterminated");
    assert!(codes.contains(&"E0106"), "{codes:?}");
}

#[test]
fn many_errors_stay_bounded() {
    // 100k lines each with a mistake: every error is reported or the list is
    // capped, but the parse must finish quickly.
    let source = "def f(x):\n".to_string() + &"    y = $ + lambda\n".repeat(100_000);
    let start = Instant::now();
    let codes = parse("many_errors.kern", source.as_bytes()).expect_err("errors");
    within(20, start, "100k erroneous lines");
    assert!(!codes.is_empty());
}

#[test]
fn empty_and_whitespace_files() {
    for source in [&b""[..], b"\n\n\n", b"   \n", b"# only a comment", b"\xef\xbb\xbf", b"\\\n", b"\r\n\r\n"] {
        match parse("empty.kern", source) {
            Ok(module) => assert!(module.kernel_names().is_empty()),
            Err(codes) => assert!(!codes.is_empty()),
        }
    }
}

#[test]
fn cli_exits_1_on_garbage() {
    let dir = std::env::temp_dir().join(format!("kernjit-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = XorShift(12345);
    let garbage: Vec<u8> = (0..100_000).map(|_| rng.next() as u8).collect();
    let cases: [(&str, &[u8]); 4] = [
        ("garbage.kern", &garbage),
        ("nul.kern", b"def f(x):\n    return x\0\n"),
        ("deep.kern", "def f(x):\n    return ((((((((((((((((((((((((((((((((((((((((((((((((((x\n".as_bytes()),
        (
            "parens.kern",
            format!("def f(x):\n    return {}x{}\n", "(".repeat(10_000), ")".repeat(10_000)).leak().as_bytes(),
        ),
    ];
    for (name, bytes) in cases {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        for args in [vec!["check", path.to_str().unwrap()], vec!["run", path.to_str().unwrap(), "f", "1", "--interp"]] {
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_kernjit"))
                .args(&args)
                .env("NO_COLOR", "1")
                .output()
                .expect("the binary runs");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{name} {args:?}: {:?}\n{stderr}", output.status);
            assert!(stderr.contains("error"), "{name}: {stderr}");
            assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_code_the_goldens_produce_is_in_the_code_list() {
    // `diag::CODES` is documented as the full list users can match on: every
    // code that shows up in a golden transcript must be there.
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "kern") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden"), &mut files);
    let mut missing = std::collections::BTreeSet::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        for (at, _) in text.match_indices("error[") {
            let code = &text[at + 6..];
            let Some(end) = code.find(']') else { continue };
            let code = &code[..end];
            if !diag::CODES.iter().any(|(known, _)| *known == code) {
                missing.insert(format!("{code} ({})", path.file_name().unwrap().to_string_lossy()));
            }
        }
    }
    assert!(missing.is_empty(), "codes used but not listed in diag::CODES: {missing:?}");
}

#[test]
fn a_long_chain_of_distinct_kernels_specialises_and_runs() {
    // 300 kernels, each calling the next: deep for inference, legal for users.
    let mut source = String::new();
    for i in 0..300 {
        source.push_str(&format!("def f{i}(x):\n    return f{}(x) + 1\n\n", i + 1));
    }
    source.push_str("def f300(x):\n    return x\n");
    let module = Module::parse("chain.kern", source.as_bytes()).unwrap_or_else(|e| panic!("{}", e.render(false)));
    let mut args = [Value::Scalar(Scalar::I64(5))];
    let result = module.interpret("f0", &mut args).unwrap_or_else(|e| panic!("{}", e.render(false)));
    assert_eq!(result, Value::Scalar(Scalar::I64(305)));
}

#[test]
fn fuzz_findings_are_clean_errors() {
    // Minimised inputs of the fuzz targets (`fuzz/`), each once a failed
    // check, with the codes they must give. `fuzz_checks::parse` also checks
    // that every span lies on character boundaries.
    let cases: [(&[u8], &[&str]); 2] = [
        // Invalid UTF-8: E0101's span was one byte of the 3-byte U+FFFD that
        // replaces the bad byte in the file's text.
        (b"def f(x):\n    return x\xff\n", &["E0101"]),
        // A dedent whose first token is a BOM: E0104's span was the first
        // byte of the 3-byte character.
        (b"  ]\n \xef\xbb\xbf", &["E0107", "E0102", "E0104", "E0201"]),
    ];
    for (source, expected) in cases {
        assert!(kernjit::fuzz_checks::parse(source).is_none(), "{source:?} parsed");
        let error = Module::parse("fuzz.kern", source).expect_err("an error");
        assert_eq!(check_error(&error), expected, "{source:?}");
    }
}
