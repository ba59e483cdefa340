//! Programs made of functions taken from host files (`Module::from_sources`,
//! as the Python package builds them): diagnostics and runtime errors point
//! at the real files, lines and columns, and the globals of each function's
//! module (constants, module aliases, imported members, other kernels) mean
//! in the kernel what they mean in Python, through the interpreter and the
//! JIT alike.

use expect_test::expect;
use kernjit::ndarray::{array, ArrayD};
use kernjit::{
    ArrayData, Constant, Error, Global, Globals, KnownModule, Module, Scalar, ScalarType, Source, Type, Value,
};

/// `a.py`: a top-level function whose text starts on line 10.
const A_PY: &str = "\
def f(x, a):
    s = 0.0
    for i in prange(a.shape[0]):
        s += sqrt(a[i]) * SCALE
    return sm(x) + s + N + HALF[1]

def at(a, i):
    return a[i] + OFFSET if ENABLED else a[i]
";

/// `b.py`: a function nested in another one (dedented by 4 columns), whose
/// text starts on line 3.
const B_PY: &str = "\
def smooth(y):
    return y * OFFSET + xp.sqrt(y)

def cast(y: float32) -> nb_f64:
    return float32(y) * 2 + np_sqrt(float32(y))

def pick(a, i):
    return a[i]
";

fn a_globals() -> Globals {
    Globals {
        names: vec![
            ("SCALE".into(), Global::Constant(Constant::Float(2.5))),
            ("N".into(), Global::Constant(Constant::Int(-3))),
            ("HALF".into(), Global::Constant(Constant::Tuple(vec![Constant::Int(1), Constant::Float(0.5)]))),
            ("OFFSET".into(), Global::Constant(Constant::Int(100))),
            ("ENABLED".into(), Global::Constant(Constant::Bool(true))),
            ("sqrt".into(), Global::Member(KnownModule::Math, "sqrt".into())),
            ("prange".into(), Global::Member(KnownModule::Numba, "prange".into())),
            ("sm".into(), Global::Kernel("smooth".into())),
        ],
    }
}

fn b_globals() -> Globals {
    Globals {
        names: vec![
            ("OFFSET".into(), Global::Constant(Constant::Typed(Scalar::F32(0.5)))),
            ("xp".into(), Global::Module(KnownModule::Numpy)),
            ("np_sqrt".into(), Global::Member(KnownModule::Numpy, "sqrt".into())),
            ("float32".into(), Global::Member(KnownModule::Numpy, "float32".into())),
            ("nb_f64".into(), Global::Member(KnownModule::Numba, "float64".into())),
            ("lookup".into(), Global::Unsupported("a dict".into())),
        ],
    }
}

/// A program of `a` (from `/home/u/a.py`, line 10) and `b` (from
/// `/home/u/b.py`, line 3, dedented by 4).
fn program(a: &str, b: &str) -> Result<Module, Error> {
    Module::from_sources(vec![
        Source { file: "/home/u/a.py".into(), text: a.into(), first_line: 10, indent: 0, globals: a_globals() },
        Source { file: "/home/u/b.py".into(), text: b.into(), first_line: 3, indent: 4, globals: b_globals() },
    ])
}

/// Runs `kernel` in the interpreter and through the JIT and checks they
/// agree (errors by their rendering).
fn run_both(module: &Module, kernel: &str, args: &[Value]) -> Result<Value, Error> {
    let interpreted = module.interpret(kernel, &mut args.to_vec());
    let compiled = module.kernel(kernel)?.call_values(&mut args.to_vec());
    match (&interpreted, &compiled) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{kernel}: interpreter and JIT disagree"),
        (Err(a), Err(b)) => assert_eq!(a.render(false), b.render(false), "{kernel}: different errors"),
        _ => panic!("{kernel}: interpreter {interpreted:?}, JIT {compiled:?}"),
    }
    compiled
}

fn f64_array(values: &[f64]) -> Value {
    Value::Array(ArrayData::F64(ArrayD::from_shape_vec(vec![values.len()], values.to_vec()).expect("1-D")))
}

/// The argument types of `f`: a float and a 1-D float array.
fn types_f() -> [Type; 2] {
    [Type::Scalar(ScalarType::F64), kernjit::types::parse_type("f64[:]").expect("a type")]
}

#[test]
fn globals_compile_and_run_to_their_python_values() {
    let module = program(A_PY, B_PY).expect("compiles");
    // f(2.0, [1, 4, 9]): math.sqrt over the array times 2.5 is 15; smooth
    // (through its alias `sm`) of a Python float with np.float32(0.5) is
    // 2 * 0.5 + sqrt(2) in f64; N is -3 and HALF[1] is 0.5.
    let result = run_both(&module, "f", &[Value::Scalar(Scalar::F64(2.0)), f64_array(&[1.0, 4.0, 9.0])]);
    let expected = 2.0 * 0.5 + 2f64.sqrt() + 15.0 - 3.0 + 0.5;
    assert_eq!(result.expect("runs"), Value::Scalar(Scalar::F64(expected)));
    // np.float32(0.5) keeps its dtype: smooth of an f32 is an f32, with
    // np.sqrt in f32 too.
    let result = run_both(&module, "smooth", &[Value::Scalar(Scalar::F32(4.0))]);
    assert_eq!(result.expect("runs"), Value::Scalar(Scalar::F32(4.0f32 * 0.5 + 2.0)));
    // The dtypes imported by name are casts and annotations: `float32`
    // is the parameter's type, `-> nb_f64` (numba.float64) converts the
    // result.
    let result = run_both(&module, "cast", &[Value::Scalar(Scalar::F32(2.25))]);
    assert_eq!(result.expect("runs"), Value::Scalar(Scalar::F64(6.0)));
    // The same through the typed Rust API.
    let kernel = module.kernel("f").expect("exists");
    let a = array![1.0, 4.0, 9.0];
    assert_eq!(f64::try_from(kernel.call((2.0, &a)).expect("runs")).expect("f64"), expected);
    // In a.py, OFFSET is the Python int 100 (a weak literal: the array's
    // dtype wins); in b.py it is np.float32(0.5).
    let ints = Value::Array(ArrayData::I32(ArrayD::from_shape_vec(vec![3], vec![1, 2, 3]).expect("1-D")));
    let result = run_both(&module, "at", &[ints, Value::Scalar(Scalar::I64(1))]);
    assert_eq!(result.expect("runs"), Value::Scalar(Scalar::I32(102)));
}

#[test]
fn imported_prange_is_a_parallel_loop_and_positions_are_the_files() {
    let module = program(A_PY, B_PY).expect("compiles");
    let program = module.specialise("f", &types_f()).expect("types");
    let listing = kernjit::tir::expression_types(&program, module.source());
    // `prange` is `from numba import prange`, on line 12 of a.py.
    let loops: Vec<&str> = listing.lines().filter(|line| line.contains("loop")).collect();
    assert_eq!(loops.len(), 1, "{listing}");
    assert!(loops[0].starts_with("  12:5  prange loop, parallel from "), "{listing}");
    let smooth: Vec<&str> = listing.lines().skip_while(|line| !line.starts_with("def smooth")).take(4).collect();
    expect![[r#"
        def smooth(y: f64) -> f64
          4:16  y * OFFSET + xp.sqrt(y)  : f64
          4:16  y * OFFSET  : f64
          4:16  y  : f64"#]]
    .assert_eq(&smooth.join("\n"));
}

#[test]
fn type_errors_point_at_the_original_files() {
    // A call in a.py with the wrong number of arguments: the label at the
    // callee's `def` renders against b.py, with b.py's lines and columns.
    let a = A_PY.replace("sm(x)", "sm(x, x)");
    let error = program(&a, B_PY).expect("parses").specialise("f", &types_f()).expect_err("a type error");
    expect![[r#"
        error[E0304]: `smooth` takes 1 argument but 2 were given
           ┌─ /home/u/a.py:14:12
           │
        14 │     return sm(x, x) + s + N + HALF[1]
           │            ^^^^^^^^
           │
           ┌─ /home/u/b.py:3:9
           │
         3 │ def smooth(y):
           │     ------ defined here

    "#]]
    .assert_eq(&error.render(false));
    expect!["/home/u/a.py:14:12: error[E0304]: `smooth` takes 1 argument but 2 were given"]
        .assert_eq(&error.to_string());
    // A type error inside b.py.
    let b = B_PY.replace("xp.sqrt(y)", "xp.sqrt(y)[0]");
    let error = program(A_PY, &b).expect("parses").specialise("smooth", &types_f()[..1]).expect_err("a type error");
    expect!["/home/u/b.py:4:29: error[E0403]: a `f64` cannot be indexed"].assert_eq(&error.to_string());
}

#[test]
fn runtime_errors_point_at_the_original_files() {
    let module = program(A_PY, B_PY).expect("compiles");
    let args = [f64_array(&[1.0, 2.0]), Value::Scalar(Scalar::I64(5))];
    let error = run_both(&module, "pick", &args).expect_err("out of bounds");
    expect!["/home/u/b.py: runtime error[R0601]: a[5]: index 5 out of bounds for axis 0 with size 2 at 10:16"]
        .assert_eq(&error.to_string());
    expect![[r#"
        error[R0601]: a[5]: index 5 out of bounds for axis 0 with size 2 at 10:16
           ┌─ /home/u/b.py:10:16
           │
        10 │     return a[i]
           │            ^^^^ runtime error here

    "#]]
    .assert_eq(&error.render(false));
    let error = run_both(&module, "at", &args).expect_err("out of bounds");
    expect!["/home/u/a.py: runtime error[R0601]: a[5]: index 5 out of bounds for axis 0 with size 2 at 17:12"]
        .assert_eq(&error.to_string());
}

#[test]
fn an_unsupported_global_is_a_compile_error_naming_it_at_its_line() {
    let b = B_PY.replace("return a[i]", "return a[i] + lookup");
    let error = program(A_PY, &b).expect_err("an unsupported global");
    expect![[r#"
        error[E0301]: `lookup` is a global dict, which kernels cannot use
           ┌─ /home/u/b.py:10:23
           │
        10 │     return a[i] + lookup
           │                   ^^^^^^ used here
           │
           = help: from their module, kernels can use only numbers, booleans, NumPy scalars and tuples of them, the math, numpy and numba modules and their functions, and other kernels

    "#]]
    .assert_eq(&error.render(false));
    // `lookup` means the global only where the function does not bind it.
    let b = B_PY.replace("return a[i]", "lookup = i\n    return a[lookup]");
    program(A_PY, &b).expect("a local `lookup` is not the global");
}
