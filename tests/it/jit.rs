//! The JIT and the interpreter are each other's oracle: every `# run:` line in
//! `tests/golden/` and `kernels/` runs in both, and results, array arguments
//! after the call, and errors (code, position, message) must agree — integers
//! and IEEE values bit for bit (any NaN equals any NaN).

use kernjit::{cli_args, ArrayData, Element, Layout, Module, Scalar, Value};
use ndarray::Axis;

/// What a call gave, comparably (see `kernjit::testgen::outcome`).
pub use kernjit::testgen::outcome;

#[derive(Clone, Copy, Debug)]
enum Relayout {
    Same,
    /// Column-major copies.
    Fortran,
    /// Copies whose every axis has a negative stride.
    Reversed,
}

/// `value` with the same elements in another memory layout.
fn relayout(value: &Value, layout: Relayout) -> Value {
    let Value::Array(array) = value else { return value.clone() };
    let array = kernjit::with_array!(array, a => {
        let ndim = a.ndim();
        match layout {
            Relayout::Same => Element::wrap(a.clone()),
            Relayout::Fortran => Element::wrap(a.t().as_standard_layout().into_owned().reversed_axes()),
            Relayout::Reversed => {
                let mut flipped = a.clone();
                (0..ndim).for_each(|axis| flipped.invert_axis(Axis(axis)));
                let mut back = flipped.as_standard_layout().into_owned();
                (0..ndim).for_each(|axis| back.invert_axis(Axis(axis)));
                Element::wrap(back)
            }
        }
    });
    Value::Array(array)
}

#[test]
fn relayout_changes_layout_not_values() {
    let value = Value::Array(ArrayData::F64(ndarray::ArrayD::from_shape_fn(vec![2, 3], |i| (i[0] * 3 + i[1]) as f64)));
    let layouts: Vec<Layout> =
        [Relayout::Same, Relayout::Fortran, Relayout::Reversed].iter().map(|&l| relayout(&value, l).layout()).collect();
    assert_eq!(layouts, vec![Layout::C, Layout::F, Layout::Any]);
    for l in [Relayout::Fortran, Relayout::Reversed] {
        assert_eq!(relayout(&value, l), value);
    }
}

#[test]
fn jit_agrees_with_the_interpreter_on_every_run_line() {
    let root = crate::corpus::root();
    let files = crate::corpus::all_programs();
    let mut compared = 0;
    let mut failures = Vec::new();
    for path in &files {
        let source = std::fs::read_to_string(path).unwrap();
        let Ok(module) = Module::parse(&path.display().to_string(), source.as_bytes()) else { continue };
        for crate::corpus::RunCall { line, call, kernel, specs } in crate::corpus::run_calls(&source) {
            let base = path.parent().unwrap();
            let (Ok(mut interp_args), Ok(jit_args)) =
                (cli_args::materialise(&specs, 42, base), cli_args::materialise(&specs, 42, base))
            else {
                continue;
            };
            let interpreted = outcome(module.interpret(&kernel, &mut interp_args), &interp_args);
            // The generated arrays are C-contiguous; the same values in
            // Fortran order and with negative strides run other code.
            for layout in [Relayout::Same, Relayout::Fortran, Relayout::Reversed] {
                let mut args: Vec<Value> = jit_args.iter().map(|arg| relayout(arg, layout)).collect();
                let compiled = outcome(module.run(&kernel, &mut args), &args);
                compared += 1;
                if interpreted != compiled {
                    failures.push(format!(
                        "{}:{line}: {call} ({layout:?} arrays)\n--- interpreter\n{interpreted}\n--- jit\n{compiled}",
                        path.strip_prefix(root).unwrap().display()
                    ));
                }
            }
        }
    }
    assert!(compared > 300, "only {compared} run lines compared");
    assert!(failures.is_empty(), "{} of {compared} runs differ:\n{}", failures.len(), failures.join("\n\n"));
}

#[test]
fn bounds_checks_are_removed_only_where_proven() {
    use kernjit::jit::lower::{lower_with_listings, LowerOptions};
    use kernjit::types::parse_signature;
    let source = "\
def copy(a, b):
    for i in range(a.shape[0]):
        b[i] = a[i]
    for j in range(1, a.shape[0], 2):
        b[j] = a[j] + 1.0
    for k in range(a.shape[0]):
        k = k + 1
        b[0] = a[k - 1]
";
    let module = Module::parse("bce.kern", source.as_bytes()).unwrap();
    let signature = parse_signature("copy(f64[:], f64[:])").unwrap();
    let program = module.specialise("copy", &signature.args).unwrap();
    let lowered = lower_with_listings(
        &program,
        &LowerOptions { boundscheck: true, verify: true, ..LowerOptions::default() },
        false,
        false,
    )
    .unwrap();
    // a[i] and a[j] are proven; b[i], b[j] and b[0] are checked once before
    // their loops; a[k - 1] (k is assigned in the loop) is checked every time.
    assert_eq!((lowered.checks.removed, lowered.checks.hoisted, lowered.checks.kept), (2, 3, 1));
    drop(lowered.into_listings());
    // The kept check on `b` still catches a shorter `b`.
    let mut args = [
        Value::Array(ArrayData::F64(ndarray::ArrayD::zeros(vec![4]))),
        Value::Array(ArrayData::F64(ndarray::ArrayD::zeros(vec![2]))),
    ];
    let error = module.run("copy", &mut args).unwrap_err().render(false);
    assert!(error.contains("b[2]: index 2 out of bounds for axis 0 with size 2"), "{error}");
}

/// A sizeable versioned loop deep in a `prange` body whose kernel has little
/// code of its own runs as a function of its own (its fast copy), which the
/// body calls; a kernel with much code before its `prange` keeps the loop
/// inline. (`tests/golden/lang/split_loops.kern` checks the results.)
#[test]
fn big_prange_bodies_call_their_versioned_loop() {
    use kernjit::jit::lower::{lower_with_listings, LowerOptions};
    use kernjit::types::parse_signature;
    let listing = |path: &str, signature: &str| {
        let source = std::fs::read(path).unwrap();
        let module = Module::parse(path, &source).unwrap();
        let signature = parse_signature(signature).unwrap();
        let program = module.specialise(&signature.kernel, &signature.args).unwrap();
        let options = LowerOptions { verify: true, layouts: signature.layouts.clone(), ..LowerOptions::default() };
        let (clif, _) = lower_with_listings(&program, &options, true, false).unwrap().into_listings();
        format!("\n{}", clif.unwrap())
    };
    let split = listing(
        "tests/golden/lang/split_loops.kern",
        "blend_rows(f64[:, ::1], f64[:, ::1], i64[::1], f64[:, ::1], f64[::1], i64, i64, i64)",
    );
    assert!(split.contains("\n; fast0_blend_rows (fast copy of a versioned loop)"), "{split}");
    let body = split.split("\n; ").find(|section| section.starts_with("prange0_blend_rows")).unwrap();
    // It calls the fast copy directly (the checked copy goes through the
    // trampoline, an import).
    assert_eq!(body.lines().filter(|line| line.contains(" = colocated ")).count(), 1, "{body}");
    let stencil = listing("kernels/stencil.kern", "jacobi_step(f64[:, ::1], f64[:, ::1], f64, f64[:, ::1])");
    assert!(stencil.contains("(fast copy of a versioned loop)"), "{stencil}");
    let bicubic = listing("kernels/bicubic.kern", "resize_into(f64[:, ::1], f64[:, ::1])");
    assert!(!bicubic.contains("(fast copy of a versioned loop)"), "{bicubic}");
}

/// A small leaf is inlined where it runs most, in innermost loops, and
/// anywhere when tiny; its other calls share one compiled copy.
#[test]
fn leaves_are_inlined_in_innermost_loops_and_called_elsewhere() {
    use kernjit::jit::lower::{lower_with_listings, LowerOptions};
    use kernjit::types::parse_signature;
    let source = "\
def weight(t):
    x = abs(t)
    if x <= 1.0:
        return ((1.5 * x - 2.5) * x) * x + 1.0
    elif x < 2.0:
        return ((-0.5 * x + 2.5) * x - 4.0) * x + 2.0
    return 0.0

def twice(x):
    return x + x

def rows(a, out):
    for i in range(a.shape[0]):
        w = weight(i * 0.25) + twice(1.0)
        for j in range(a.shape[1]):
            out[i, j] = a[i, j] * w + weight(j * 0.5)
";
    let module = Module::parse("inline.kern", source.as_bytes()).unwrap();
    let signature = parse_signature("rows(f64[:, :], f64[:, :])").unwrap();
    let program = module.specialise("rows", &signature.args).unwrap();
    let options = LowerOptions { verify: true, boundscheck: false, ..LowerOptions::default() };
    let (clif, _) = lower_with_listings(&program, &options, true, false).unwrap().into_listings();
    let clif = clif.unwrap();
    // `weight` has code of its own, called once (from the outer loop);
    // `twice` has none.
    assert!(clif.contains("; weight ("), "{clif}");
    assert!(!clif.contains("; twice ("), "{clif}");
    let listing = format!("\n{clif}");
    let rows = listing.split("\n; ").find(|section| section.starts_with("rows (")).expect("rows is listed");
    // Its only colocated callee is `weight` (the runtime's helpers are
    // imports), called once.
    let callees: Vec<&str> = rows
        .lines()
        .filter(|line| line.contains(" = colocated "))
        .map(|line| line.trim().split(' ').next().unwrap())
        .collect();
    assert_eq!(callees.len(), 1, "{rows}");
    assert_eq!(rows.matches(&format!("call {}(", callees[0])).count(), 1, "{rows}");
    // And the results are the interpreter's.
    let a = ndarray::Array2::from_shape_fn((5, 6), |(i, j)| i as f64 - 0.5 * j as f64);
    let args = || {
        vec![
            Value::Array(ArrayData::F64(a.clone().into_dyn())),
            Value::Array(ArrayData::F64(ndarray::ArrayD::zeros(vec![5, 6]))),
        ]
    };
    let (mut interp_args, mut jit_args) = (args(), args());
    let expected = outcome(module.interpret("rows", &mut interp_args), &interp_args);
    assert_eq!(outcome(module.run("rows", &mut jit_args), &jit_args), expected);
}

#[test]
fn an_entry_no_function_calls_needs_no_trampoline() {
    use kernjit::jit::lower::{lower_with_listings, LowerOptions};
    let source = "\
def mix(t: (f64, i64), flag: bool, small: i8, x: f32, a):
    s = 0.0
    for i in range(len(a)):
        s += a[i] * t[0]
    if flag:
        return s + small + t[1], x
    return s, x

def fact(n):
    if n <= 1:
        return 1
    return n * fact(n - 1)
";
    let module = Module::parse("entry.kern", source.as_bytes()).unwrap();
    let options = LowerOptions { verify: true, ..LowerOptions::default() };
    let listing = |kernel: &str, args: &[Value]| {
        let types: Vec<_> = args.iter().map(Value::ty).collect();
        let program = module.specialise(kernel, &types).unwrap();
        lower_with_listings(&program, &options, true, false).unwrap().into_listings().0.unwrap()
    };
    // `mix` reads its arguments (a tuple, narrow integers, an f32, an array)
    // from the host's slots itself; `fact` calls itself, so the host goes
    // through a trampoline.
    let mut mix_args = vec![
        Value::Tuple(vec![Scalar::F64(0.5), Scalar::I64(-7)]),
        Value::Scalar(Scalar::Bool(true)),
        Value::Scalar(Scalar::I8(-3)),
        Value::Scalar(Scalar::F32(2.5)),
        Value::Array(ArrayData::F64(ndarray::ArrayD::from_shape_fn(vec![9], |i| i[0] as f64))),
    ];
    let mut fact_args = vec![Value::Scalar(Scalar::I64(10))];
    assert!(!listing("mix", &mix_args).contains("; entry"));
    assert!(listing("fact", &fact_args).contains("; entry"));
    let (mut interp_mix, mut interp_fact) = (mix_args.clone(), fact_args.clone());
    assert_eq!(module.run("mix", &mut mix_args).unwrap(), module.interpret("mix", &mut interp_mix).unwrap());
    assert_eq!(module.run("fact", &mut fact_args).unwrap(), Value::Scalar(Scalar::I64(3628800)));
    assert_eq!(module.interpret("fact", &mut interp_fact).unwrap(), Value::Scalar(Scalar::I64(3628800)));
}

#[test]
fn recursion_with_huge_frames_fails_cleanly() {
    // 60 reductions keep 60 x 8 KiB of partials in every frame: 1000 calls
    // would need ~480 MiB of stack. The JIT must report an error, not crash.
    let mut source = String::from("def huge(a, n):\n    if n == 0:\n        return 0.0\n    total = 0.0\n");
    for k in 0..60 {
        source.push_str(&format!("    s{k} = 0.0\n    for i{k} in prange(len(a)):\n        s{k} += a[i{k}]\n"));
        source.push_str(&format!("    total += s{k}\n"));
    }
    source.push_str("    return total + huge(a, n - 1)\n");
    let module = Module::parse("huge.kern", source.as_bytes()).unwrap();
    let mut args =
        [Value::Array(ArrayData::F64(ndarray::ArrayD::from_elem(vec![2], 1.0))), Value::Scalar(Scalar::I64(1000))];
    let error = module.run("huge", &mut args).unwrap_err().render(false);
    assert!(error.contains("R0605") && error.contains("recursion deeper than 1000 calls"), "{error}");
    // Shallow recursion still works.
    args[1] = Value::Scalar(Scalar::I64(10));
    assert_eq!(module.run("huge", &mut args).unwrap(), Value::Scalar(Scalar::F64(1200.0)));
}
