//! The embedding API (`Jit`, `Kernel`, `Typed`): Rust scalars and `ndarray`
//! views of any layout go in without copies, results come out as Rust
//! values, and every answer equals the interpreter's on owned copies of the
//! same arguments.

use kernjit::ndarray::{
    s, Array, Array1, Array2, Array3, ArrayD, ArrayView, ArrayView1, ArrayViewMut1, Dimension, IxDyn, ShapeBuilder,
};
use kernjit::{
    Arg, Element, Error, FromValue, Jit, Kernel, Module, Options, RuntimeErrorKind, Scalar, Signature, Type, Typed,
    Value,
};
use std::fmt::Debug;
use std::sync::{Arc, Barrier};

const SOURCE: &str = "\
def ident(x):
    return x

def poly(x):
    return x * 3 + x // 2

def sum8(a, b, c, d, e, f, g, h):
    return a + b + c + d + e + f + g + h

def sum3(a, b, c):
    return a + b + c

def weighted1(x):
    total = 0.0
    for i in range(x.shape[0]):
        total += x[i] * (i + 1)
    return total

def weighted2(x):
    total = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            total += x[i, j] * (i * 7 + j + 1)
    return total

def weighted3(x):
    total = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            for k in range(x.shape[2]):
                total += x[i, j, k] * (i * 31 + j * 7 + k + 1)
    return total

def fill2(out, k):
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = k * i + j

def scale(x, out, k):
    for i in range(len(x)):
        out[i] = k * x[i]

def through_alias(a):
    b = a[1:]
    c = b
    c[0] = 7

def helper_store(a, i):
    a[i] = 1

def through_callee(a, b):
    helper_store(b, 0)
    return a[0]

def make(n):
    out = np.zeros(n)
    for i in range(n):
        out[i] = i * 0.5
    return out

def grid(n, m):
    out = np.zeros((n, m), dtype=np.int32)
    for i in range(n):
        for j in range(m):
            out[i, j] = i * 10 + j
    return out

def tail(x):
    return x[1:]

def minmax(x):
    lo = x[0]
    hi = x[0]
    for i in range(len(x)):
        lo = min(lo, x[i])
        hi = max(hi, x[i])
    return lo, hi

def stats3(x):
    total = 0.0
    for i in range(len(x)):
        total += x[i]
    return total, len(x), total > 0

def at(x, i):
    return x[i]

def divide(a, b):
    return a // b

def half(x: f32):
    return x / 2

def count_true(flags):
    n = 0
    for i in range(len(flags)):
        if flags[i]:
            n += 1
    return n
";

fn module() -> Module {
    Jit::new().compile(SOURCE).unwrap()
}

/// The array inside a value, as an owned copy for the interpreter.
fn owned<T: Element, D: Dimension>(view: ArrayView<'_, T, D>) -> Value {
    Value::Array(T::wrap(view.to_owned().into_dyn()))
}

/// Runs `kernel` in the interpreter on `args`.
fn interpret(module: &Module, kernel: &str, args: &mut [Value]) -> Value {
    module.interpret(kernel, args).unwrap()
}

/// The 1-based line of `SOURCE` that is exactly `text`.
fn line_of(text: &str) -> usize {
    SOURCE.lines().position(|line| line == text).expect("the line is in SOURCE") + 1
}

fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

#[test]
fn handles_are_send_sync_and_clone() {
    assert_send_sync_clone::<Jit>();
    assert_send_sync_clone::<Module>();
    assert_send_sync_clone::<Kernel>();
    assert_send_sync_clone::<Typed<(f64, f64), f64>>();
    assert_send_sync_clone::<Typed<(ArrayView1<'static, f64>, ArrayViewMut1<'static, f64>), ()>>();
    assert_send_sync_clone::<Error>();
}

/// `ident` returns `x` unchanged and `poly` agrees with the interpreter, for
/// one scalar type, dynamically and through a typed handle.
fn check_scalar<T>(module: &Module, x: T)
where
    T: Arg + FromValue + Element + PartialEq + Debug + TryFrom<Value, Error = Error>,
{
    let ident = module.kernel("ident").unwrap();
    assert_eq!(T::try_from(ident.call((x,)).unwrap()).unwrap(), x);
    assert_eq!(ident.typed::<(T,), T>().unwrap().call((x,)).unwrap(), x);
    let poly = module.kernel("poly").unwrap();
    let expected = interpret(module, "poly", &mut [Value::Scalar(x.to_scalar())]);
    assert_eq!(poly.call((x,)).unwrap(), expected, "poly({x:?})");
    let typed = poly.typed::<(T,), Value>().unwrap();
    assert_eq!(typed.call((x,)).unwrap(), expected);
}

#[test]
fn every_scalar_type_goes_in_and_comes_out() {
    let module = module();
    check_scalar(&module, true);
    check_scalar(&module, -7i8);
    check_scalar(&module, i16::MAX);
    check_scalar(&module, -123_456i32);
    check_scalar(&module, i64::MIN + 5);
    check_scalar(&module, 250u8);
    check_scalar(&module, 60_000u16);
    check_scalar(&module, u32::MAX - 1);
    check_scalar(&module, u64::MAX / 3);
    check_scalar(&module, -2.75f32);
    check_scalar(&module, 1e300f64);
}

#[test]
fn mixed_scalar_arguments_agree_with_the_interpreter() {
    let module = module();
    let sum8 = module.kernel("sum8").unwrap();
    let args = (true, -3i8, 300i16, -70_000i32, 1i64 << 40, 200u8, 65_000u16, 4_000_000_000u32);
    let mut values: Vec<Value> = [
        Scalar::Bool(true),
        Scalar::I8(-3),
        Scalar::I16(300),
        Scalar::I32(-70_000),
        Scalar::I64(1 << 40),
        Scalar::U8(200),
        Scalar::U16(65_000),
        Scalar::U32(4_000_000_000),
    ]
    .into_iter()
    .map(Value::Scalar)
    .collect();
    assert_eq!(sum8.call(args).unwrap(), interpret(&module, "sum8", &mut values));

    let sum3 = module.kernel("sum3").unwrap();
    let mut values = [Value::Scalar(Scalar::U64(9)), Value::Scalar(Scalar::F32(1.5)), Value::Scalar(Scalar::F64(0.25))];
    let expected = interpret(&module, "sum3", &mut values);
    assert_eq!(sum3.call((9u64, 1.5f32, 0.25f64)).unwrap(), expected);
    let typed = sum3.typed::<(u64, f32, f64), f64>().unwrap();
    assert_eq!(Value::Scalar(Scalar::F64(typed.call((9, 1.5, 0.25)).unwrap())), expected);
}

/// Runs `kernel` on `view` (read-only) and on an owned copy in the
/// interpreter; the results must be identical.
fn check_reads<T: Element, D: Dimension>(module: &Module, kernel: &str, view: ArrayView<'_, T, D>) {
    let expected = interpret(module, kernel, &mut [owned(view.clone())]);
    let shape = view.shape().to_vec();
    let strides = view.strides().to_vec();
    let result = module.kernel(kernel).unwrap().call((view,)).unwrap();
    assert_eq!(result, expected, "{kernel} on shape {shape:?} strides {strides:?}");
}

#[test]
fn arrays_of_every_layout_are_read_in_place() {
    let module = module();
    let base1 = Array1::from_shape_fn(11, |i| (i as f64).sin());
    for view in
        [base1.view(), base1.slice(s![..;-1]), base1.slice(s![2..9;3]), base1.slice(s![..;-4]), base1.slice(s![3..3])]
    {
        check_reads(&module, "weighted1", view);
    }

    let base2 = Array2::from_shape_fn((5, 7), |(i, j)| (i * 7 + j) as f64 * 0.37 - 3.0);
    let fortran = Array2::from_shape_vec((5, 7).f(), base2.iter().copied().collect()).unwrap();
    for view in [
        base2.view(),
        fortran.view(),
        base2.t(),
        base2.slice(s![..;-1, ..]),
        base2.slice(s![1..4, ..;-2]),
        base2.slice(s![..;-2, 1..;3]),
        fortran.slice(s![..;-1, ..;-1]),
    ] {
        check_reads(&module, "weighted2", view);
    }

    let base3 = Array3::from_shape_fn((4, 3, 5), |(i, j, k)| ((i * 15 + j * 5 + k) as f64).sqrt());
    let fortran3 = Array3::from_shape_vec((4, 3, 5).f(), base3.iter().copied().collect()).unwrap();
    for view in [
        base3.view(),
        fortran3.view(),
        base3.slice(s![..;-1, .., 1..;2]),
        base3.slice(s![1..3, ..;-1, ..;-3]),
        base3.view().permuted_axes([2, 0, 1]),
    ] {
        check_reads(&module, "weighted3", view);
    }

    // Other element types, `&Array` arguments and `IxDyn` views.
    let ints = Array2::from_shape_fn((3, 4), |(i, j)| (i as i32 - 1) * (j as i32 + 2));
    check_reads(&module, "weighted2", ints.slice(s![..;-1, ..]));
    let singles = Array1::from_shape_fn(6, |i| i as f32 / 3.0);
    check_reads(&module, "weighted1", singles.view());
    let dynamic: ArrayD<f64> = base2.clone().into_dyn();
    check_reads(&module, "weighted2", dynamic.view());
    let by_reference = module.kernel("weighted2").unwrap().call((&base2,)).unwrap();
    assert_eq!(by_reference, interpret(&module, "weighted2", &mut [owned(base2.view())]));

    // A broadcast view repeats elements with stride 0.
    let row = Array1::from_vec(vec![1.0, -2.0, 4.0]);
    check_reads(&module, "weighted2", row.broadcast((4, 3)).unwrap());

    let flags = Array1::from_vec(vec![true, false, true, true, false]);
    check_reads(&module, "count_true", flags.slice(s![..;-1]));
}

#[test]
fn mutable_views_are_written_in_place() {
    let module = module();
    let fill2 = module.kernel("fill2").unwrap();
    let mut base = Array2::<f64>::zeros((6, 8));
    let mut interpreted = {
        let mut args = [owned(base.slice(s![1..5, ..;-2])), Value::Scalar(Scalar::F64(2.5))];
        interpret(&module, "fill2", &mut args);
        args[0].clone()
    };
    let mut view = base.slice_mut(s![1..5, ..;-2]);
    assert_eq!(fill2.call((view.view_mut(), 2.5)).unwrap(), Value::None);
    assert_eq!(owned(view.view()), interpreted);
    // Nothing outside the view changed.
    let mut expected = Array2::<f64>::zeros((6, 8));
    expected.slice_mut(s![1..5, ..;-2]).assign(&Array2::<f64>::try_from(interpreted).unwrap());
    assert_eq!(base, expected);

    // Fortran order through `&mut Array`, with an integer dtype.
    let mut fortran = Array2::<i16>::zeros((3, 4).f());
    {
        let mut args = [owned(fortran.view()), Value::Scalar(Scalar::I64(3))];
        interpret(&module, "fill2", &mut args);
        interpreted = args[0].clone();
    }
    fill2.call((&mut fortran, 3i64)).unwrap();
    assert_eq!(owned(fortran.view()), interpreted);

    // A typed handle writing through a view, reading through another.
    let scale = module.kernel("scale").unwrap().typed::<(ArrayView1<f64>, ArrayViewMut1<f64>, f64), ()>().unwrap();
    let x = Array1::from_vec(vec![1.0, 2.0, 3.0, 4.0]);
    let mut out = Array1::<f64>::zeros(4);
    scale.call((x.slice(s![..;-1]), out.view_mut(), 0.5)).unwrap();
    assert_eq!(out.to_vec(), vec![2.0, 1.5, 1.0, 0.5]);
}

#[test]
fn read_only_views_are_refused_where_the_kernel_may_write() {
    let module = module();
    let mut data = Array1::from_vec(vec![1.0, 2.0, 3.0]);
    let refused = |result: Result<Value, Error>, argument: &str| match result {
        Err(Error::Signature { message, .. }) => {
            assert!(message.contains(argument) && message.contains("view_mut"), "{message}")
        }
        other => panic!("expected a signature error, got {other:?}"),
    };
    refused(module.kernel("scale").unwrap().call((data.view(), data.view(), 2.0)), "argument 2 (`out`)");
    refused(module.kernel("through_alias").unwrap().call((data.view(),)), "argument 1 (`a`)");
    refused(module.kernel("through_alias").unwrap().call((&data,)), "argument 1 (`a`)");
    refused(module.kernel("through_callee").unwrap().call((data.view(), data.view())), "argument 2 (`b`)");
    assert_eq!(data.to_vec(), vec![1.0, 2.0, 3.0], "nothing was written");
    assert!(matches!(
        module.kernel("scale").unwrap().typed::<(ArrayView1<f64>, ArrayView1<f64>, f64), ()>(),
        Err(Error::Signature { .. })
    ));

    // Only the written argument needs to be mutable.
    let mut other = data.clone();
    let result = module.kernel("through_callee").unwrap().call((data.view(), other.view_mut())).unwrap();
    assert_eq!(result, Value::Scalar(Scalar::F64(1.0)));
    assert_eq!(other.to_vec(), vec![1.0, 2.0, 3.0]);
    module.kernel("through_alias").unwrap().call((data.view_mut(),)).unwrap();
    assert_eq!(data.to_vec(), vec![1.0, 7.0, 3.0]);
}

#[test]
fn arrays_and_tuples_come_back_as_rust_values() {
    let module = module();
    let made = module.kernel("make").unwrap().call((4i64,)).unwrap();
    assert_eq!(made, interpret(&module, "make", &mut [Value::Scalar(Scalar::I64(4))]));
    assert_eq!(Array1::<f64>::try_from(made.clone()).unwrap().to_vec(), vec![0.0, 0.5, 1.0, 1.5]);
    assert_eq!(ArrayD::<f64>::try_from(made.clone()).unwrap().shape(), &[4]);
    assert!(Array2::<f64>::try_from(made.clone()).is_err());
    assert!(ArrayD::<f32>::try_from(made).is_err());

    let grid = module.kernel("grid").unwrap().typed::<(i64, i64), Array2<i32>>().unwrap();
    let expected = Array2::from_shape_fn((2, 3), |(i, j)| (i * 10 + j) as i32);
    assert_eq!(grid.call((2, 3)).unwrap(), expected);

    // A returned view of an argument comes back as an owned copy.
    let x = Array2::from_shape_fn((4, 3), |(i, j)| (i * 3 + j) as u8);
    let tail = module.kernel("tail").unwrap().call((x.slice(s![..;-1, ..]),)).unwrap();
    assert_eq!(Array2::<u8>::try_from(tail).unwrap(), x.slice(s![..;-1, ..]).slice(s![1.., ..]));
    let tail = module.kernel("tail").unwrap().typed::<(ArrayView<u8, kernjit::ndarray::Ix2>,), Array2<u8>>().unwrap();
    assert_eq!(tail.call((x.view(),)).unwrap(), x.slice(s![1.., ..]));

    let values = Array1::from_vec(vec![3.0, -1.5, 8.0, 2.0]);
    let minmax = module.kernel("minmax").unwrap();
    assert_eq!(<(f64, f64)>::try_from(minmax.call((values.view(),)).unwrap()).unwrap(), (-1.5, 8.0));
    let typed = minmax.typed::<(ArrayView1<f64>,), (f64, f64)>().unwrap();
    assert_eq!(typed.call((values.slice(s![1..;2]),)).unwrap(), (-1.5, 2.0));
    let stats3 = module.kernel("stats3").unwrap().typed::<(&Array1<f64>,), (f64, i64, bool)>().unwrap();
    assert_eq!(stats3.call((&values,)).unwrap(), (11.5, 4, true));
    assert!(module.kernel("stats3").unwrap().typed::<(&Array1<f64>,), (f64, f64, bool)>().is_err());
    assert!(<(f64, f64)>::try_from(Value::Scalar(Scalar::F64(1.0))).is_err());
    assert_eq!(<()>::try_from(Value::None).unwrap(), ());
}

#[test]
fn typed_handles_check_their_types_once() {
    let module = module();
    let sum3 = module.kernel("sum3").unwrap();
    let add = sum3.typed::<(f64, f64, f64), f64>().unwrap();
    assert_eq!(add.call((1.0, 2.0, 3.5)).unwrap(), 6.5);
    assert_eq!(format!("{add:?}"), "Typed(sum3(f64, f64, f64) -> f64)");

    // A wrong result type, a wrong argument count, an argument type the
    // kernel rejects, and an `IxDyn` argument are errors, never panics.
    let wrong_result = sum3.typed::<(f64, f64, f64), i64>();
    assert!(matches!(wrong_result, Err(Error::Signature { .. })), "{wrong_result:?}");
    assert!(matches!(sum3.typed::<(f64, f64), f64>(), Err(Error::Compile { .. })));
    assert!(matches!(module.kernel("weighted1").unwrap().typed::<(f64,), f64>(), Err(Error::Compile { .. })));
    let dynamic = module.kernel("weighted1").unwrap().typed::<(ArrayView<f64, IxDyn>,), f64>();
    assert!(matches!(dynamic, Err(Error::Signature { .. })));
    assert!(matches!(sum3.call((1.0, 2.0)), Err(Error::Compile { .. })));

    // Annotated parameters convert the argument, dynamically and typed.
    let half = module.kernel("half").unwrap();
    assert_eq!(f32::try_from(half.call((3i16,)).unwrap()).unwrap(), 1.5);
    assert_eq!(half.typed::<(u8,), f32>().unwrap().call((5,)).unwrap(), 2.5);
    assert!(matches!(half.call((3.0f64,)), Err(Error::Compile { .. })));

    // Arrays need one to three dimensions.
    let four = Array::<f64, _>::zeros((1, 2, 1, 2));
    assert!(matches!(module.kernel("weighted3").unwrap().call((four.view(),)), Err(Error::Signature { .. })));
    let four = four.into_dyn();
    assert!(matches!(module.kernel("weighted3").unwrap().call((four.view(),)), Err(Error::Signature { .. })));
}

#[test]
fn compile_for_fills_the_cache_ahead_of_calls() {
    let module = module();
    let weighted = module.kernel("weighted2").unwrap();
    weighted.compile_for("weighted2(f64[:, :])").unwrap();
    weighted.compile_for("(i32[:, :])").unwrap();
    let signature = Signature::new("weighted2", vec![kernjit::types::parse_type("u8[:, :]").unwrap()]);
    weighted.compile_for(&signature).unwrap();
    assert_eq!(module.stats().misses, 3);
    weighted.call((Array2::<f64>::ones((2, 2)).view(),)).unwrap();
    let stats = module.stats();
    assert_eq!((stats.hits, stats.misses), (1, 3));
    // The C-contiguous call found the code compiled for any layout; every
    // compile phase took some time.
    let zero = std::time::Duration::ZERO;
    assert!(stats.infer > zero && stats.lower > zero && stats.cranelift > zero && stats.finalize > zero, "{stats:?}");

    assert!(matches!(weighted.compile_for("weighted1(f64[:])"), Err(Error::Signature { .. })));
    assert!(matches!(weighted.compile_for("weighted2(f64[:"), Err(Error::Signature { .. })));
    assert!(matches!(weighted.compile_for("(f64)"), Err(Error::Compile { .. })));
    let types = [Type::Scalar(kernjit::ScalarType::I64)];
    module.kernel("poly").unwrap().compile_for(&types[..]).unwrap();
}

#[test]
fn runtime_errors_carry_their_source_position() {
    let module = module();
    let x = Array1::from_vec(vec![1.0, 2.0, 3.0]);
    let error = module.kernel("at").unwrap().call((x.view(), 10i64)).unwrap_err();
    let expected = module.interpret("at", &mut [owned(x.view()), Value::Scalar(Scalar::I64(10))]).unwrap_err();
    match (&error, &expected) {
        (Error::Runtime { error, .. }, Error::Runtime { error: interpreted, .. }) => {
            assert!(matches!(error.kind, RuntimeErrorKind::IndexOutOfBounds { index: 10, extent: 3, .. }));
            assert_eq!(error, interpreted);
        }
        other => panic!("expected runtime errors, got {other:?}"),
    }
    let line = line_of("    return x[i]");
    let message = error.to_string();
    assert!(message.contains(&format!("x[10]: index 10 out of bounds for axis 0 with size 3 at {line}:")), "{message}");

    let divide = module.kernel("divide").unwrap().typed::<(i32, i32), i32>().unwrap();
    assert_eq!(divide.call((-7, 2)).unwrap(), -4);
    match divide.call((1, 0)) {
        Err(Error::Runtime { error, file }) => {
            assert_eq!(error.kind, RuntimeErrorKind::DivisionByZero);
            let position = file.line_col(error.span.start).to_string();
            assert!(position.starts_with(&format!("{}:", line_of("    return a // b"))), "{position}");
        }
        other => panic!("expected a runtime error, got {other:?}"),
    }
}

#[test]
fn unknown_kernels_list_the_defined_ones() {
    let module = Jit::new().compile("def a(x):\n    return x\n\ndef b():\n    return 1\n").unwrap();
    match module.kernel("c") {
        Err(error @ Error::UnknownKernel { .. }) => {
            assert_eq!(error.to_string(), "no kernel named `c`; the module defines `a`, `b`");
            assert_eq!(error.render(false), "error: no kernel named `c`; the module defines `a`, `b`\n");
        }
        other => panic!("expected an unknown-kernel error, got {other:?}"),
    }
    assert_eq!(i64::try_from(module.kernel("b").unwrap().call(()).unwrap()).unwrap(), 1);
}

#[test]
fn jit_options_reach_the_module() {
    let options = Options { boundscheck: false, threads: Some(2), ..Options::default() };
    let jit = Jit::with_options(options.clone());
    assert_eq!(jit.compile(SOURCE).unwrap().options(), &options);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.kern");
    std::fs::write(&path, SOURCE).unwrap();
    let module = jit.compile_file(&path).unwrap();
    assert_eq!(module.options(), &options);
    let x = Array1::from_vec(vec![1.0, 2.0]);
    assert_eq!(module.kernel("weighted1").unwrap().call((&x,)).unwrap(), Value::Scalar(Scalar::F64(5.0)));
    assert!(matches!(jit.compile_file(dir.path().join("missing.kern")), Err(Error::Io(_))));
    assert!(matches!(jit.compile("def f(:\n"), Err(Error::Compile { .. })));
}

#[test]
fn threads_racing_on_a_new_signature_compile_it_once() {
    const THREADS: usize = 16;
    let module = module();
    let poly = module.kernel("poly").unwrap();
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let (poly, barrier) = (poly.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                let x = thread as i32 - 5;
                (x, i32::try_from(poly.call((x,)).unwrap()).unwrap())
            })
        })
        .collect();
    for handle in handles {
        let (x, result) = handle.join().unwrap();
        assert_eq!(result, x * 3 + x.div_euclid(2), "poly({x})");
    }
    let stats = module.stats();
    assert_eq!((stats.misses, stats.hits), (1, THREADS as u64 - 1));

    // One typed handle shared by scoped threads.
    let weighted = module.kernel("weighted1").unwrap().typed::<(ArrayView1<f64>,), f64>().unwrap();
    let data = Array1::from_shape_fn(100, |i| i as f64);
    std::thread::scope(|scope| {
        for start in 0..THREADS {
            let (weighted, data) = (&weighted, &data);
            scope.spawn(move || {
                let view = data.slice(s![start..]);
                let expected: f64 = view.iter().enumerate().map(|(i, v)| v * (i + 1) as f64).sum();
                assert_eq!(weighted.call((view,)).unwrap(), expected);
            });
        }
    });
}
