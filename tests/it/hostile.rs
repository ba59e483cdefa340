//! Hostile inputs beyond `bad_input.rs`: valid programs of extreme size,
//! 10k-level nesting through every recursive rule, lying `.npy` files (through
//! `cli_args::read_npy` and the CLI), arrays with zero-length axes, and
//! arrays of more than 2^31 elements. Each one must give a result or a clean
//! error (checked by `kernjit::fuzz_checks::check_error`) in bounded time, in
//! the interpreter and in the JIT alike.
//!
//! Like `bad_input.rs`, these run on the default 2 MB test thread.

use kernjit::fuzz_checks::check_error;
use kernjit::ndarray::{ArrayD, IxDyn, ShapeBuilder};
use kernjit::{ArrayData, Error, Module, Options, Scalar, Value};
use std::time::{Duration, Instant};

#[track_caller]
fn within(limit_secs: u64, start: Instant, what: &str) {
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(limit_secs), "{what} took {elapsed:?} (limit {limit_secs} s)");
}

/// The codes of a clean error (after checking its invariants).
#[track_caller]
fn codes(error: &Error) -> Vec<&'static str> {
    check_error(error);
    error.diagnostics().iter().map(|d| d.code).collect()
}

/// Parses, or returns the codes of the (checked) error.
#[track_caller]
fn parse(name: &str, source: &[u8]) -> Result<Module, Vec<&'static str>> {
    Module::parse(name, source).map_err(|error| codes(&error))
}

#[track_caller]
fn parse_ok(source: &str) -> Module {
    Module::parse("hostile.kern", source.as_bytes()).unwrap_or_else(|e| panic!("{}", e.render(false)))
}

#[track_caller]
fn expect_e0203(name: &str, source: &str) {
    let start = Instant::now();
    let codes = parse(name, source.as_bytes()).expect_err(name);
    within(5, start, name);
    assert!(codes.contains(&"E0203"), "{name}: {codes:?}");
}

/// Runs `kernel` in the interpreter and the JIT on copies of `args`; both must
/// agree (result and arrays after the call). Returns the interpreter's result
/// and its arguments after the call.
#[track_caller]
fn both(module: &Module, kernel: &str, args: &[Value]) -> (Result<Value, Error>, Vec<Value>) {
    let mut interp_args = args.to_vec();
    let interp = module.interpret(kernel, &mut interp_args);
    let mut jit_args = args.to_vec();
    let jit = module.run(kernel, &mut jit_args);
    match (&interp, &jit) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{kernel}: interpreter and JIT results differ"),
        (Err(a), Err(b)) => assert_eq!(a.render(false), b.render(false), "{kernel}: errors differ"),
        _ => panic!("{kernel}: interpreter {interp:?} but JIT {jit:?}"),
    }
    assert_eq!(interp_args, jit_args, "{kernel}: arrays after the call differ");
    if let Err(error) = &interp {
        check_error(error);
    }
    (interp, interp_args)
}

fn i64v(v: i64) -> Value {
    Value::Scalar(Scalar::I64(v))
}

fn f64v(v: f64) -> Value {
    Value::Scalar(Scalar::F64(v))
}

fn zeros_f64(shape: &[usize]) -> Value {
    Value::Array(ArrayData::F64(ArrayD::zeros(IxDyn(shape))))
}

// ---------------------------------------------------------------------------
// Size

#[test]
fn ten_megabytes_of_valid_source() {
    // 100k small kernels, each with a loop and a branch: about 10 MB.
    let mut source = String::with_capacity(11 << 20);
    let mut i = 0;
    while source.len() < 10 << 20 {
        source.push_str(&format!(
            "def kernel_number_{i}(a, x):\n    s = 0.0\n    for j in range(a.shape[0]):\n        if a[j] > x:\n            \
             s += a[j] * {i}.0 - x\n    return s\n\n"
        ));
        i += 1;
    }
    let start = Instant::now();
    let module = parse_ok(&source);
    within(20, start, "parsing 10 MB");
    assert_eq!(module.kernel_names().len(), i);
    let last = format!("kernel_number_{}", i - 1);
    let a = Value::Array(ArrayData::F64(ArrayD::from_shape_vec(IxDyn(&[3]), vec![1.0, 5.0, 9.0]).unwrap()));
    let start = Instant::now();
    let (result, _) = both(&module, &last, &[a, f64v(4.0)]);
    let expected = (5.0 + 9.0) * (i - 1) as f64 - 8.0;
    assert_eq!(result.unwrap(), f64v(expected));
    within(10, start, "running one of 100k kernels");

    // One kernel of 10 MB: 700k statements in a row.
    let mut source = String::from("def f(x):\n");
    let mut statements = 0;
    while source.len() < 10 << 20 {
        source.push_str("    x = x + 1\n");
        statements += 1;
    }
    source.push_str("    return x\n");
    let start = Instant::now();
    let module = parse_ok(&source);
    let mut args = [i64v(0)];
    let result = module.interpret("f", &mut args).unwrap_or_else(|e| panic!("{}", e.render(false)));
    assert_eq!(result, i64v(statements));
    within(20, start, "parsing and interpreting a 10 MB kernel");
}

#[test]
fn a_big_kernel_compiles() {
    // 50k statements in one function: the JIT must compile it (linear time).
    let mut source = String::from("def f(x):\n");
    for k in 0..50_000 {
        source.push_str(&format!("    x = x * 3 + {k}\n"));
    }
    source.push_str("    return x\n");
    let module = parse_ok(&source);
    let start = Instant::now();
    let (result, _) = both(&module, "f", &[i64v(1)]);
    result.unwrap_or_else(|e| panic!("{}", e.render(false)));
    within(30, start, "compiling 50k statements");
}

#[test]
fn a_million_term_expressions() {
    let n = 1_000_000;
    // Left-nested chains are too deep for the tree: E0203, quickly.
    for op in [" + ", " * ", " - ", " and ", " or ", " | ", " < "] {
        let source = format!("def f(x):\n    return x{}\n", format!("{op}x").repeat(n));
        let start = Instant::now();
        match parse("chain.kern", source.as_bytes()) {
            Err(codes) => assert!(codes.contains(&"E0203"), "{op}: {codes:?}"),
            // A comparison chain is flat (one node): it parses and must check.
            Ok(module) => {
                assert_eq!(op, " < ");
                let mut args = [i64v(1)];
                assert_eq!(module.interpret("f", &mut args).unwrap(), Value::Scalar(Scalar::Bool(false)));
            }
        }
        within(10, start, &format!("a 1M-term `{op}` chain"));
    }
    // Deeply parenthesised: x + (x + (x + ...)).
    let source = format!("def f(x):\n    return {}x{}\n", "x + (".repeat(n), ")".repeat(n));
    expect_e0203("right_nested.kern", &source);
    // A balanced tree of 2^20 terms is only 21 levels deep: it is a valid
    // program that every phase must handle.
    fn balanced(levels: u32) -> String {
        if levels == 0 {
            "x".to_string()
        } else {
            let half = balanced(levels - 1);
            format!("({half}+{half})")
        }
    }
    let source = format!("def f(x):\n    return {}\n", balanced(20));
    let start = Instant::now();
    let module = parse_ok(&source);
    let mut args = [i64v(1)];
    assert_eq!(module.interpret("f", &mut args).unwrap(), i64v(1 << 20));
    within(20, start, "a balanced 1M-term expression");
    // A smaller balanced tree through the JIT as well.
    let module = parse_ok(&format!("def f(x):\n    return {}\n", balanced(14)));
    let start = Instant::now();
    let (result, _) = both(&module, "f", &[i64v(1)]);
    assert_eq!(result.unwrap(), i64v(1 << 14));
    within(20, start, "compiling a 16k-term expression");
    // Flat but huge: a 200k-element tuple, a call with 200k arguments, a
    // subscript with 200k indices, 200k chained assignment targets.
    let n = 200_000;
    let source = format!("def f(x):\n    return (x{})\n", ", x".repeat(n));
    let start = Instant::now();
    assert_eq!(parse("tuple.kern", source.as_bytes()).expect_err("too many items"), ["E0206"]);
    within(5, start, "a 200k-element tuple");
    for (name, source) in [
        ("call.kern", format!("def g(x):\n    return x\n\ndef f(x):\n    return g(x{})\n", ", x".repeat(n))),
        ("index.kern", format!("def f(x):\n    return x[0{}]\n", ", 0".repeat(n))),
        ("targets.kern", format!("def f(x):\n    {}y = x\n    return y\n", "y = ".repeat(n))),
        (
            "params.kern",
            format!("def f(x{}):\n    return x\n", (0..n / 2).map(|k| format!(", p{k}")).collect::<String>()),
        ),
    ] {
        let start = Instant::now();
        if let Ok(module) = parse(name, source.as_bytes()) {
            let mut args = [i64v(1)];
            if let Err(error) = module.interpret("f", &mut args) {
                check_error(&error);
            }
        }
        within(20, start, name);
    }
    // Parameters: 255 are fine in both engines, more are E0206 (compile time
    // and the native call grow with them), quickly even for 100k.
    let params = |n: usize| {
        format!("def f({}):\n    return p0 + p{}\n", (0..n).map(|k| format!("p{k}, ")).collect::<String>(), n - 1)
    };
    let module = parse_ok(&params(255));
    let args: Vec<Value> = (0..255).map(i64v).collect();
    let (result, _) = both(&module, "f", &args);
    assert_eq!(result.unwrap_or_else(|e| panic!("{}", e.render(false))), i64v(254));
    for n in [256, 100_000] {
        let start = Instant::now();
        assert_eq!(parse("params.kern", params(n).as_bytes()).expect_err("too many"), ["E0206"]);
        within(5, start, "100k parameters");
    }
    // Tuples: 255 items are fine (unpacked in both engines), more are E0206
    // (each element read carries the tuple's type), quickly even for 100k.
    let unpack = |n: usize| {
        let names: Vec<String> = (0..n).map(|k| format!("a{k}")).collect();
        format!("def f(x):\n    {} = {}\n    return a0 + a{}\n", names.join(", "), vec!["x"; n].join(", "), n - 1)
    };
    let module = parse_ok(&unpack(255));
    let (result, _) = both(&module, "f", &[i64v(3)]);
    assert_eq!(result.unwrap_or_else(|e| panic!("{}", e.render(false))), i64v(6));
    for n in [256, 100_000] {
        let start = Instant::now();
        let codes = parse("unpack.kern", unpack(n).as_bytes()).expect_err("too many");
        assert!(codes.iter().all(|code| *code == "E0206"), "{codes:?}");
        within(5, start, "unpacking 100k names");
    }
}

#[test]
fn ten_thousand_levels_of_every_recursive_rule() {
    let n = 10_000;
    let cases = [
        ("subscript_in_subscript", format!("def f(x):\n    return {}0{}\n", "x[".repeat(n), "]".repeat(n))),
        ("tuples", format!("def f(x):\n    return {}x{}\n", "(".repeat(n), ",)".repeat(n))),
        ("lists", format!("def f(x):\n    return {}x{}\n", "[".repeat(n), "]".repeat(n))),
        ("braces", format!("def f(x):\n    return {}x{}\n", "{".repeat(n), "}".repeat(n))),
        ("attributes", format!("def f(x):\n    return x{}\n", ".shape".repeat(n))),
        ("unary_plus", format!("def f(x):\n    return {}x\n", "+".repeat(n))),
        ("invert", format!("def f(x):\n    return {}x\n", "~".repeat(n))),
        ("mixed_unary", format!("def f(x):\n    return {}x\n", "- + ~ not ".repeat(n / 4))),
        ("minus_parens", format!("def f(x):\n    return {}x{}\n", "-(".repeat(n), ")".repeat(n))),
        ("keyword_calls", format!("def f(x):\n    return {}x{}\n", "g(a=".repeat(n), ")".repeat(n))),
        ("slices", format!("def f(x):\n    return {}0{}\n", "x[:".repeat(n), "]".repeat(n))),
        ("lambdas", format!("def f(x):\n    return {}x\n", "lambda: ".repeat(n))),
        ("walrus", format!("def f(x):\n    return {}x{}\n", "(y := ".repeat(n), ")".repeat(n))),
        ("starred", format!("def f(x):\n    return g({}x)\n", "*".repeat(n))),
        ("await", format!("def f(x):\n    return {}x\n", "await ".repeat(n))),
        ("power_parens", format!("def f(x):\n    return {}x{}\n", "x ** (".repeat(n), ")".repeat(n))),
        ("ifexp_parens", format!("def f(x):\n    return {}x{}\n", "x if (".repeat(n), ") else x".repeat(n))),
        ("compare_parens", format!("def f(x):\n    return {}x{}\n", "x < (".repeat(n), ")".repeat(n))),
        ("index_target", format!("def f(x):\n    x[{}0{}] = 1\n", "x[".repeat(n), "]".repeat(n))),
        ("aug_target", format!("def f(x):\n    x[{}0{}] += 1\n", "x[".repeat(n), "]".repeat(n))),
        ("return_annotation", format!("def f(x) -> {}f64{}:\n    return x\n", "(".repeat(n), ")".repeat(n))),
        ("param_annotation", format!("def f(x: {}f64{}):\n    return x\n", "(".repeat(n), ")".repeat(n))),
        ("decorators", format!("{}def f(x):\n    return x\n", "@njit\n".repeat(n))),
        ("decorator_call", format!("@{}njit{}\ndef f(x):\n    return x\n", "g(".repeat(n), ")".repeat(n))),
        ("default_args", format!("def f(x={}0{}):\n    return x\n", "(".repeat(n), ")".repeat(n))),
        ("range_args", format!("def f(x):\n    for i in range({}x{}):\n        pass\n", "(".repeat(n), ")".repeat(n))),
        ("backslashes", format!("def f(x):\n    return x{}\n", " + \\\n x".repeat(n))),
        ("comments", format!("def f(x):\n{}    return x\n", "    # c\n".repeat(n))),
        ("docstrings", format!("def f(x):\n    {}x{}\n", "(\"\"\"".repeat(n), "\"\"\")".repeat(n))),
    ];
    for (name, source) in cases {
        let start = Instant::now();
        match parse(name, source.as_bytes()) {
            Ok(module) => {
                for kernel in module.kernel_names() {
                    let mut args = [i64v(1)];
                    if let Err(error) = module.interpret(kernel, &mut args) {
                        check_error(&error);
                    }
                }
            }
            Err(codes) => assert!(!codes.is_empty(), "{name}"),
        }
        within(5, start, name);
    }
}

#[test]
fn many_errors_on_long_lines_render_briefly() {
    // 100k errors on one 200 KB line: rendering every one with its line
    // would print 20 GB. At most `diag::MAX_RENDERED` are shown, and a line
    // longer than 1000 bytes is not quoted.
    let source = format!("def f(x):\n    return x {}\n", "$ ".repeat(100_000));
    let error = Module::parse("dollars.kern", source.as_bytes()).expect_err("`$`");
    assert_eq!(error.diagnostics().len(), 100_000);
    let start = Instant::now();
    let rendered = error.render(false);
    within(5, start, "rendering 100k errors");
    assert!(rendered.len() < 100_000, "{} bytes", rendered.len());
    assert!(rendered.contains("error: 99900 more errors not shown"), "{}", &rendered[rendered.len() - 200..]);
    check_error(&error);
    // Through the CLI: exit code 1, bounded time and output.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dollars.kern");
    std::fs::write(&path, &source).unwrap();
    let start = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kernjit"))
        .args(["check", path.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .expect("the binary runs");
    within(10, start, "kernjit check on 100k errors");
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stderr.len() < 100_000, "{} bytes of diagnostics", output.stderr.len());
    // Short lines still get their snippets.
    let error = Module::parse("short.kern", b"def f(x):\n    return x $\n").expect_err("`$`");
    assert!(error.render(false).contains("return x $"));
}

#[test]
fn long_elif_chains_and_nested_defs() {
    // An elif chain is flat in the source but nests in the tree (an `elif`
    // is an `if` in the `else` block): it counts toward the nesting limit.
    let chain = |n: usize| {
        let mut source = String::from("def f(x):\n    if x == 0:\n        return 0\n");
        for k in 1..n {
            source.push_str(&format!("    elif x == {k}:\n        return {k}\n"));
        }
        source + "    else:\n        return -1\n"
    };
    let module = parse_ok(&chain(150));
    for x in [0, 149, 150] {
        let (result, _) = both(&module, "f", &[i64v(x)]);
        assert_eq!(result.unwrap(), i64v(if x < 150 { x } else { -1 }));
    }
    for n in [1_000, 100_000] {
        expect_e0203("elif.kern", &chain(n));
    }
    // 10k nested defs: each one is an error (nested def), never a crash.
    let mut source = String::new();
    for level in 0..10_000 {
        source.push_str(&" ".repeat(level));
        source.push_str("def f(x):\n");
    }
    source.push_str(&" ".repeat(10_000));
    source.push_str("return x\n");
    let start = Instant::now();
    let codes = parse("nested_defs.kern", source.as_bytes()).expect_err("nested defs");
    within(5, start, "10k nested defs");
    assert!(codes.contains(&"E0202") || codes.contains(&"E0203"), "{codes:?}");
    // 10k nested whiles with the deepest one breaking out.
    let mut source = String::from("def f(x):\n");
    for level in 1..=10_000 {
        source.push_str(&" ".repeat(level));
        source.push_str("while True:\n");
    }
    source.push_str(&" ".repeat(10_001));
    source.push_str("break\n");
    expect_e0203("nested_whiles.kern", &source);
}

#[test]
fn a_hundred_thousand_functions_through_the_jit_and_check() {
    let mut source = String::new();
    for i in 0..100_000 {
        source.push_str(&format!("def f{i}(x: i64) -> i64:\n    return x + {i}\n\n"));
    }
    source.push_str("def last(x):\n    return f99999(x) + f0(x)\n");
    let module = parse_ok(&source);
    let start = Instant::now();
    let (result, _) = both(&module, "last", &[i64v(1)]);
    assert_eq!(result.unwrap(), i64v(100_001));
    within(10, start, "compiling one of 100k functions");
    let start = Instant::now();
    module.check_annotated().unwrap_or_else(|e| panic!("{}", e.render(false)));
    within(20, start, "checking 100k annotated functions");
    // Every function defined twice: 100k duplicate-definition errors.
    let doubled = format!("{source}{source}");
    let start = Instant::now();
    if let Ok(module) = parse("twice.kern", doubled.as_bytes()) {
        let error = module.specialise("last", &[kernjit::Type::Scalar(kernjit::ScalarType::I64)]).unwrap_err();
        assert!(codes(&error).contains(&"E0303"));
    }
    within(20, start, "100k duplicate definitions");
}

#[test]
fn a_hundred_thousand_deep_call_chain() {
    // Specialising f0 specialises f1 ... f99999: inference must not overflow
    // the stack or take unbounded memory; the interpreter and the JIT stop
    // at the recursion limit (or inference refuses the chain).
    let module = parse_ok(&crate::bad_input::call_chain(100_000));
    let start = Instant::now();
    match module.specialise("f0", &[kernjit::Type::Scalar(kernjit::ScalarType::I64)]) {
        Ok(_) => {
            let mut args = [i64v(0)];
            let result = module.interpret("f0", &mut args);
            let error = result.expect_err("deeper than the recursion limit");
            assert_eq!(codes(&error), ["R0605"]);
        }
        Err(error) => {
            codes(&error);
        }
    }
    within(30, start, "a 100k-deep call chain");
}

// ---------------------------------------------------------------------------
// .npy files that lie

/// An `.npy` file: magic, version 1.0, the header padded to 64 bytes, data.
fn npy_bytes(header: &str, data: &[u8]) -> Vec<u8> {
    let mut text = header.to_string();
    while !(10 + text.len() + 1).is_multiple_of(64) {
        text.push(' ');
    }
    text.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(text.len() as u16).to_le_bytes());
    bytes.extend_from_slice(text.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

fn header(descr: &str, fortran: &str, shape: &str) -> String {
    format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}")
}

/// Files that must be refused, with a word the message must contain.
fn lying_npy_files() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let data16: Vec<u8> = [1.0f64, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut past_eof = b"\x93NUMPY\x01\x00\xff\xff{'descr': '<f8'".to_vec();
    past_eof.extend_from_slice(b", 'fortran_order': False, 'shape': (2,), }");
    let mut v2_past_eof = b"\x93NUMPY\x02\x00\x00\x00\x01\x00".to_vec();
    v2_past_eof.extend_from_slice(header("<f8", "False", "(2,)").as_bytes());
    vec![
        ("shape_larger.npy", npy_bytes(&header("<f8", "False", "(3,)"), &data16), "truncated"),
        ("shape_much_larger.npy", npy_bytes(&header("<f8", "False", "(4096, 4096)"), &data16), "truncated"),
        ("shape_smaller.npy", npy_bytes(&header("<f8", "False", "(1,)"), &data16), "unexpected bytes"),
        ("negative_dim.npy", npy_bytes(&header("<f8", "False", "(-2,)"), &data16), "bad dimension"),
        ("negative_second_dim.npy", npy_bytes(&header("<f8", "False", "(2, -1)"), &data16), "bad dimension"),
        ("huge_dim.npy", npy_bytes(&header("<f8", "False", "(18446744073709551616,)"), &data16), "bad dimension"),
        ("max_dim.npy", npy_bytes(&header("<f8", "False", "(18446744073709551615,)"), &data16), "large"),
        (
            "overflowing_product.npy",
            npy_bytes(&header("<f8", "False", "(4294967296, 4294967296, 4294967296)"), &data16),
            "large",
        ),
        ("zero_times_huge.npy", npy_bytes(&header("<f8", "False", "(0, 18446744073709551615)"), &[]), "large"),
        ("zero_times_huge_u8.npy", npy_bytes(&header("|u1", "False", "(9223372036854775808, 0)"), &[]), "large"),
        ("float_dim.npy", npy_bytes(&header("<f8", "False", "(2.0,)"), &data16), "bad .npy header"),
        ("unknown_descr.npy", npy_bytes(&header("<f2", "False", "(8,)"), &data16), "not supported"),
        ("object_descr.npy", npy_bytes(&header("|O", "False", "(2,)"), &data16), "not supported"),
        ("datetime_descr.npy", npy_bytes(&header("<M8[s]", "False", "(2,)"), &data16), "not supported"),
        ("void_descr.npy", npy_bytes(&header("|V8", "False", "(2,)"), &data16), "not supported"),
        ("empty_descr.npy", npy_bytes(&header("", "False", "(2,)"), &data16), "not supported"),
        ("dtype_too_narrow.npy", npy_bytes(&header("<f4", "False", "(2,)"), &data16), "unexpected bytes"),
        ("dtype_too_wide.npy", npy_bytes(&header("<f8", "False", "(4,)"), &data16[..16]), "truncated"),
        ("fortran_garbage.npy", npy_bytes(&header("<f8", "Maybe", "(2,)"), &data16), "unexpected value"),
        ("fortran_number.npy", npy_bytes(&header("<f8", "1", "(2,)"), &data16), "unexpected value"),
        ("fortran_string.npy", npy_bytes(&header("<f8", "'True'", "(2,)"), &data16), "unexpected value"),
        ("fortran_missing.npy", npy_bytes("{'descr': '<f8', 'shape': (2,), }", &data16), "must give"),
        ("shape_list.npy", npy_bytes(&header("<f8", "False", "[2]"), &data16), "unexpected value"),
        ("shape_unclosed.npy", npy_bytes(&header("<f8", "False", "(2,"), &data16), "bad .npy header"),
        ("shape_nested.npy", npy_bytes(&header("<f8", "False", "((2,),)"), &data16), "bad dimension"),
        ("unknown_key.npy", npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), 'x': 1}", &data16), "x"),
        ("header_past_eof.npy", past_eof, "truncated"),
        ("v2_header_past_eof.npy", v2_past_eof, "truncated"),
        ("magic_only.npy", b"\x93NUMPY".to_vec(), "not an .npy file"),
        ("empty.npy", Vec::new(), "not an .npy file"),
        ("not_npy.npy", b"def f(x):\n    return x\n".to_vec(), "not an .npy file"),
        ("bad_bool.npy", npy_bytes(&header("|b1", "False", "(2,)"), &[1, 2]), "bool"),
        ("deep_brackets.npy", npy_bytes(&format!("{{'descr': {}", "[".repeat(60_000)), &[]), "npy"),
        (
            "nul_in_header.npy",
            npy_bytes("{'descr': '<f8\0', 'fortran_order': False, 'shape': (2,), }", &data16),
            "not supported",
        ),
    ]
}

#[test]
fn lying_npy_files_are_errors_from_read_npy() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, expected) in lying_npy_files() {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let start = Instant::now();
        let message = match kernjit::cli_args::read_npy(&path) {
            Err(message) => message,
            Ok(array) => panic!("{name}: read as {:?} {:?}", array.dtype(), array.shape()),
        };
        assert!(message.contains(expected), "{name}: expected {expected:?} in {message:?}");
        assert!(message.contains(name), "{name}: {message}");
        // The header-only type check must refuse it too (unless only the
        // data lies).
        let spec = kernjit::cli_args::parse_arg(&format!("@{name}")).unwrap();
        assert!(spec.ty(dir.path()).is_err() || name == "bad_bool.npy", "{name}: the type check accepted it");
        within(2, start, name);
    }
}

#[test]
fn zero_sized_npy_files_read() {
    let dir = tempfile::tempdir().unwrap();
    for (shape, expected) in [("(0,)", vec![0]), ("(0, 7)", vec![0, 7]), ("(7, 0, 3)", vec![7, 0, 3])] {
        let path = dir.path().join("empty.npy");
        std::fs::write(&path, npy_bytes(&header("<i4", "True", shape), &[])).unwrap();
        let array = kernjit::cli_args::read_npy(&path).unwrap_or_else(|e| panic!("{shape}: {e}"));
        assert_eq!(array.shape(), expected);
        assert_eq!(array.dtype(), kernjit::ScalarType::I32);
    }
}

#[test]
fn lying_npy_files_are_errors_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let kern = dir.path().join("k.kern");
    std::fs::write(&kern, "def total(a):\n    s = 0.0\n    for i in range(len(a)):\n        s += a[i]\n    return s\n")
        .unwrap();
    let files = lying_npy_files();
    // Every lie through `run`, and a handful through `run --interp`.
    for (index, (name, bytes, _)) in files.iter().enumerate() {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let mut args =
            vec!["run".to_string(), kern.display().to_string(), "total".into(), format!("@{}", path.display())];
        if index % 5 == 0 {
            args.push("--interp".into());
        }
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_kernjit"))
            .args(&args)
            .env("NO_COLOR", "1")
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {:?}\n{stderr}", output.status);
        assert!(stderr.contains(name) && stderr.contains("error"), "{name}: {stderr}");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
    // A bench line and `check` with a lying file: reported, exit code 1.
    let bench = dir.path().join("b.kern");
    std::fs::write(
        &bench,
        "def total(a):\n    return len(a)\n# bench: total(@shape_larger.npy)\n# run: total(@zero_times_huge.npy)\n",
    )
    .unwrap();
    for args in [vec!["bench", "--reps", "1"], vec!["check"]] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_kernjit"))
            .args(&args)
            .arg(&bench)
            .env("NO_COLOR", "1")
            .output()
            .expect("the binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {:?}\n{stderr}", output.status);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

// ---------------------------------------------------------------------------
// Zero-length axes

const EMPTY_KERNELS: &str = "\
import numpy as np

def total(a):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i]
    return s

def total2(a):
    s = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            s += a[i, j]
    return s + a.size + len(a) * 10 + a.shape[1] * 100 + a.ndim * 1000

def total3(a):
    s = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            for k in range(a.shape[2]):
                s += a[i, j, k]
    return s + a.size + a.shape[2]

def psum(a):
    s = 0.0
    m = -1.0
    for i in prange(a.shape[0]):
        s += a[i]
        m = max(m, a[i])
    return s, m

def psum_rows(a):
    s = 0.0
    for i in prange(a.shape[0]):
        for j in range(a.shape[1]):
            s += a[i, j]
    return s

def pcount(n):
    c = 0
    for i in prange(n):
        c += 1
    for i in prange(n, 0):
        c += 1
    for i in prange(0, n, -1):
        c += 1
    return c

def make(n):
    a = np.zeros(n)
    b = np.zeros((n, 3), dtype=np.int32)
    c = np.ones((4, n, 2))
    d = np.arange(n)
    e = np.arange(5, n)
    f = np.empty_like(b)
    g = np.full((n,), 2.5)
    return len(a) + b.shape[0] + b.size + c.size + c.shape[1] + len(d) + len(e) + f.size + len(g)

def make_return(n):
    return np.zeros((3, n))

def views(a):
    b = a[0:0]
    c = a[3:1]
    d = a[len(a):]
    e = a[-2:]
    return len(b) + len(c) + len(d) + len(e)

def row_of_empty(a):
    r = a[0]
    return len(r)

def column_of_empty(a):
    c = a[:, 0]
    return len(c)

def first(a):
    return a[0]

def last(a):
    return a[-1]

def fill(a):
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            a[i, j] = 1.0
    return a.size

def pfill(a):
    for i in prange(len(a)):
        a[i] = i
";

#[test]
fn zero_length_axes_in_both_engines() {
    let module = parse_ok(EMPTY_KERNELS);
    // Force every prange onto the thread pool, even with 0 trips.
    let parallel =
        module.clone().with_options(Options { parallel_min_trips: Some(0), threads: Some(2), ..Options::default() });
    for module in [&module, &parallel] {
        let ok = |kernel: &str, args: &[Value]| {
            let (result, args) = both(module, kernel, args);
            (result.unwrap_or_else(|e| panic!("{kernel}: {}", e.render(false))), args)
        };
        let err = |kernel: &str, args: &[Value]| {
            let (result, _) = both(module, kernel, args);
            codes(&result.expect_err(kernel))
        };
        assert_eq!(ok("total", &[zeros_f64(&[0])]).0, f64v(0.0));
        assert_eq!(ok("total2", &[zeros_f64(&[0, 5])]).0, f64v(500.0 + 2000.0));
        assert_eq!(ok("total2", &[zeros_f64(&[5, 0])]).0, f64v(50.0 + 2000.0));
        assert_eq!(ok("total2", &[zeros_f64(&[0, 0])]).0, f64v(2000.0));
        assert_eq!(ok("total3", &[zeros_f64(&[2, 0, 3])]).0, f64v(3.0));
        assert_eq!(ok("total3", &[zeros_f64(&[0, 0, 0])]).0, f64v(0.0));
        let pair = Value::Tuple(vec![Scalar::F64(0.0), Scalar::F64(-1.0)]);
        assert_eq!(ok("psum", &[zeros_f64(&[0])]).0, pair);
        assert_eq!(ok("psum_rows", &[zeros_f64(&[0, 4])]).0, f64v(0.0));
        assert_eq!(ok("psum_rows", &[zeros_f64(&[4, 0])]).0, f64v(0.0));
        assert_eq!(ok("pcount", &[i64v(0)]).0, i64v(0));
        assert_eq!(ok("pcount", &[i64v(-5)]).0, i64v(10));
        // Empty but with huge other axes.
        assert_eq!(ok("total2", &[zeros_f64(&[0, 1 << 40])]).0, f64v((100u64 << 40) as f64 + 2000.0));
        assert_eq!(ok("total3", &[zeros_f64(&[0, 1 << 30, 1 << 30])]).0, f64v((1u64 << 30) as f64));
        assert_eq!(ok("make", &[i64v(0)]).0, i64v(0));
        let (made, _) = ok("make_return", &[i64v(0)]);
        let Value::Array(made) = made else { panic!("{made:?}") };
        assert_eq!(made.shape(), vec![3, 0]);
        assert_eq!(ok("views", &[zeros_f64(&[0])]).0, i64v(0));
        assert_eq!(ok("views", &[zeros_f64(&[5])]).0, i64v(2));
        assert_eq!(ok("row_of_empty", &[zeros_f64(&[2, 0])]).0, i64v(0));
        assert_eq!(ok("column_of_empty", &[zeros_f64(&[0, 3])]).0, i64v(0));
        assert_eq!(err("row_of_empty", &[zeros_f64(&[0, 2])]), ["R0601"]);
        assert_eq!(err("column_of_empty", &[zeros_f64(&[3, 0])]), ["R0601"]);
        assert_eq!(err("first", &[zeros_f64(&[0])]), ["R0601"]);
        assert_eq!(err("last", &[zeros_f64(&[0])]), ["R0601"]);
        assert_eq!(ok("fill", &[zeros_f64(&[0, 3])]).0, i64v(0));
        assert_eq!(ok("fill", &[zeros_f64(&[3, 0])]).0, i64v(0));
        let (_, after) = ok("pfill", &[Value::Array(ArrayData::I64(ArrayD::zeros(IxDyn(&[0]))))]);
        assert_eq!(after[0].ty().to_string(), "i64[:]");
        // Empty arrays in other layouts: a Fortran-order 0×3 and a
        // reversed (negative-stride) empty view.
        let fortran = ArrayD::<f64>::zeros(IxDyn(&[0, 3]).f());
        assert_eq!(ok("total2", &[Value::Array(ArrayData::F64(fortran))]).0, f64v(300.0 + 2000.0));
        let mut reversed = ArrayD::<f64>::zeros(IxDyn(&[0]));
        reversed.invert_axis(kernjit::ndarray::Axis(0));
        assert_eq!(ok("total", &[Value::Array(ArrayData::F64(reversed))]).0, f64v(0.0));
    }
}

// ---------------------------------------------------------------------------
// More than 2^31 elements

/// 2^31 + 16: past every 32-bit index.
const BIG: usize = (1 << 31) + 16;

/// A zeroed array (calloc: the pages are only touched where the kernel
/// writes), or `None` with a note when the allocator refuses the memory.
fn big_zeroed<T: Clone + Default>(shape: &[usize]) -> Option<ArrayD<T>> {
    let len: usize = shape.iter().product();
    if Vec::<T>::new().try_reserve_exact(len).is_err() {
        eprintln!("note: skipping: cannot allocate {len} elements");
        return None;
    }
    // `vec![0; n]` of a primitive is one calloc.
    Some(ArrayD::from_shape_vec(IxDyn(shape), vec![T::default(); len]).unwrap())
}

const BIG_KERNELS: &str = "\
def poke(a):
    n = len(a)
    a[n - 1] = 7
    a[n - 16] = a[n - 1] + 1
    a[2147483647] = 3
    a[-2] = 5
    return i64(a[2147483648]) * 1000 + i64(a[n - 17]) * 100 + i64(a[n - 2]) * 10 + i64(a[0])

def poke_bool(a):
    n = len(a)
    a[n - 1] = True
    a[2147483649] = True
    return a[n - 1] and a[2147483649] and not a[n - 2] and a.size == n

def tail_sum(a, start):
    s = 0
    for i in prange(start, len(a)):
        s += a[i]
    return s

def tail_view(a):
    t = a[2147483648:]
    t[len(t) - 1] = 9
    return len(t) * 10 + t[len(t) - 1]

def poke2(b):
    b[1, b.shape[1] - 1] = 4
    return b[1, b.shape[1] - 1] + b.shape[1] + b.size
";

/// The tests of huge arrays run one at a time: the interpreter copies its
/// array arguments, so each one can commit 4 GB.
static HUGE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `kernel` on `args` in the interpreter, then in the JIT on the arrays
/// the interpreter left (the kernels write the same values again), and
/// returns both results.
fn interp_then_jit(module: &Module, kernel: &str, args: &mut [Value]) -> (Value, Value) {
    let interp = module.interpret(kernel, args).unwrap_or_else(|e| panic!("interp {kernel}: {}", e.render(false)));
    let jit = module.run(kernel, args).unwrap_or_else(|e| panic!("jit {kernel}: {}", e.render(false)));
    (interp, jit)
}

#[test]
fn more_than_two_to_the_31_elements() {
    let _one_at_a_time = HUGE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let module = parse_ok(BIG_KERNELS);
    let Some(bytes) = big_zeroed::<u8>(&[BIG]) else { return };
    let mut args = [Value::Array(ArrayData::U8(bytes))];
    let (interp, jit) = interp_then_jit(&module, "poke", &mut args);
    assert_eq!((interp, jit), (i64v(8350), i64v(8350)));
    let [Value::Array(ArrayData::U8(array))] = args else { panic!() };
    assert_eq!((array[[BIG - 1]], array[[BIG - 16]], array[[(1 << 31) - 1]], array[[BIG - 2]]), (7, 8, 3, 5));
    // In the JIT only from here (each interpreter call copies the array
    // twice): a reduction over the last 4096 elements on the thread pool, a
    // view that starts at 2^31, and the same memory as two rows of 2^30 + 8,
    // whose last element lies past 2^31.
    let mut args = [Value::Array(ArrayData::U8(array)), i64v(BIG as i64 - 4096)];
    let parallel = module.clone().with_options(Options { parallel_min_trips: Some(0), ..Options::default() });
    let sum = parallel.run("tail_sum", &mut args).unwrap_or_else(|e| panic!("{}", e.render(false)));
    assert_eq!(sum, i64v(7 + 8 + 3 + 5));
    let [array, _] = args;
    let mut args = [array];
    assert_eq!(module.run("tail_view", &mut args).unwrap_or_else(|e| panic!("{}", e.render(false))), i64v(169));
    let [Value::Array(ArrayData::U8(array))] = args else { panic!() };
    let columns = BIG / 2;
    let rows = array.into_shape_with_order(IxDyn(&[2, columns])).unwrap();
    let mut args = [Value::Array(ArrayData::U8(rows))];
    let result = module.run("poke2", &mut args).unwrap_or_else(|e| panic!("{}", e.render(false)));
    assert_eq!(result, i64v(4 + columns as i64 + 2 * columns as i64));
    let Value::Array(ArrayData::U8(rows)) = &args[0] else { panic!() };
    assert_eq!(rows[[1, columns - 1]], 4);
}

#[test]
fn more_than_two_to_the_31_bools() {
    let _one_at_a_time = HUGE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let module = parse_ok(BIG_KERNELS);
    let Some(flags) = big_zeroed::<bool>(&[BIG]) else { return };
    let mut args = [Value::Array(ArrayData::Bool(flags))];
    let yes = Value::Scalar(Scalar::Bool(true));
    assert_eq!(interp_then_jit(&module, "poke_bool", &mut args), (yes.clone(), yes));
    let Value::Array(ArrayData::Bool(flags)) = &args[0] else { panic!() };
    assert!(flags[[BIG - 1]] && flags[[(1 << 31) + 1]] && !flags[[BIG - 2]]);
}
