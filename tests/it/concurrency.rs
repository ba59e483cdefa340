//! Many host threads at once: the first call of a new signature from 32
//! threads compiles it exactly once, with every result right, over hundreds
//! of rounds mixing scalar and array signatures of every layout; parallel
//! (`prange`) kernels called from several host threads give the bits of one
//! thread; a bounded cache evicting under contention stays correct.

use kernjit::ndarray::{s, Array1, Array2, ArrayView1, ArrayView2};
use kernjit::{Element, Jit, Kernel, Module, Options, Scalar, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Barrier;

const SOURCE: &str = "\
def combine(x, k):
    return x * k + 1

def total(a, k):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * (i + k)
    return s

def total2(a, k):
    s = 0.0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            s += a[i, j] * (i * 3 + j + k)
    return s
";

/// The signatures the rounds mix: no two share a kernel and argument types,
/// so none can be served by another's code compiled for any layout (see
/// `jit::cache`), and each one compiles on its own.
#[derive(Clone, Copy, Debug)]
enum Sig {
    F64,
    F32,
    I64,
    /// `total(f64[::1], i64)`.
    VecF64,
    /// `total(f32[:], i64)`: every other element.
    VecF32Strided,
    /// `total(i64[:], i64)`: a negative stride.
    VecI64Reversed,
    /// `total2(f64[:, ::1], i64)`.
    MatF64,
    /// `total2(f32[::1, :], i64)`: Fortran order.
    MatF32Fortran,
    /// `total2(i32[:, :], i64)`: every other row.
    MatI32Strided,
}

/// Every [`Sig`], in declaration order (so `sig as usize` indexes it).
const SIGS: [Sig; 9] = [
    Sig::F64,
    Sig::F32,
    Sig::I64,
    Sig::VecF64,
    Sig::VecF32Strided,
    Sig::VecI64Reversed,
    Sig::MatF64,
    Sig::MatF32Fortran,
    Sig::MatI32Strided,
];

/// The kernels of [`SOURCE`], in the order [`Sig::kernel`] indexes them.
const KERNELS: [&str; 3] = ["combine", "total", "total2"];

/// The arrays the array signatures read (never written).
struct Inputs {
    v64: Array1<f64>,
    v32: Array1<f32>,
    vi64: Array1<i64>,
    m64: Array2<f64>,
    m32: Array2<f32>,
    mi32: Array2<i32>,
}

impl Inputs {
    fn new() -> Inputs {
        Inputs {
            v64: Array1::from_shape_fn(37, |i| i as f64 * 0.25 - 3.0),
            v32: Array1::from_shape_fn(74, |i| i as f32 * 0.5 + 1.0),
            vi64: Array1::from_shape_fn(29, |i| i as i64 * 7 - 50),
            m64: Array2::from_shape_fn((6, 5), |(i, j)| (i * 5 + j) as f64 * 0.125),
            // Transposed when passed: a Fortran-order 6×5 view.
            m32: Array2::from_shape_fn((5, 6), |(i, j)| (i * 6 + j) as f32 - 10.0),
            mi32: Array2::from_shape_fn((12, 5), |(i, j)| (i * 5 + j) as i32 - 20),
        }
    }

    fn v32_strided(&self) -> ArrayView1<'_, f32> {
        self.v32.slice(s![..;2])
    }

    fn vi64_reversed(&self) -> ArrayView1<'_, i64> {
        self.vi64.slice(s![..;-1])
    }

    fn m32_fortran(&self) -> ArrayView2<'_, f32> {
        self.m32.t()
    }

    fn mi32_strided(&self) -> ArrayView2<'_, i32> {
        self.mi32.slice(s![..;2, ..])
    }
}

impl Sig {
    /// Index into [`KERNELS`].
    fn kernel(self) -> usize {
        match self {
            Sig::F64 | Sig::F32 | Sig::I64 => 0,
            Sig::VecF64 | Sig::VecF32Strided | Sig::VecI64Reversed => 1,
            Sig::MatF64 | Sig::MatF32Fortran | Sig::MatI32Strided => 2,
        }
    }

    /// The scalar `x` passed by the scalar signatures for `k`.
    fn x(k: i64) -> f64 {
        k as f64 * 1.5 - 2.0
    }

    /// Calls `kernel` (this signature's) through `Kernel::call`.
    fn call(self, kernel: &Kernel, inputs: &Inputs, k: i64) -> Value {
        let x = Sig::x(k);
        match self {
            Sig::F64 => kernel.call((x, k)),
            Sig::F32 => kernel.call((x as f32, k)),
            Sig::I64 => kernel.call((x as i64, k)),
            Sig::VecF64 => kernel.call((inputs.v64.view(), k)),
            Sig::VecF32Strided => kernel.call((inputs.v32_strided(), k)),
            Sig::VecI64Reversed => kernel.call((inputs.vi64_reversed(), k)),
            Sig::MatF64 => kernel.call((&inputs.m64, k)),
            Sig::MatF32Fortran => kernel.call((inputs.m32_fortran(), k)),
            Sig::MatI32Strided => kernel.call((inputs.mi32_strided(), k)),
        }
        .unwrap()
    }

    /// Makes a typed handle (which compiles the signature, or finds it) and
    /// calls it, for the signatures whose handle is compiled for exactly
    /// their layout; `None` for the others.
    fn call_typed(self, kernel: &Kernel, inputs: &Inputs, k: i64) -> Option<Value> {
        let x = Sig::x(k);
        let f64_value = |value: f64| Value::Scalar(Scalar::F64(value));
        Some(match self {
            Sig::F64 => f64_value(kernel.typed::<(f64, i64), f64>().unwrap().call((x, k)).unwrap()),
            Sig::I64 => {
                Value::Scalar(Scalar::I64(kernel.typed::<(i64, i64), i64>().unwrap().call((x as i64, k)).unwrap()))
            }
            Sig::VecF64 => {
                f64_value(kernel.typed::<(ArrayView1<f64>, i64), f64>().unwrap().call((inputs.v64.view(), k)).unwrap())
            }
            Sig::MatF64 => {
                f64_value(kernel.typed::<(ArrayView2<f64>, i64), f64>().unwrap().call((inputs.m64.view(), k)).unwrap())
            }
            _ => return None,
        })
    }

    /// The reference interpreter's result, on owned copies of the arrays.
    fn interpret(self, module: &Module, inputs: &Inputs, k: i64) -> Value {
        fn owned<T: Element, D: kernjit::ndarray::Dimension>(view: kernjit::ndarray::ArrayView<'_, T, D>) -> Value {
            Value::Array(T::wrap(view.to_owned().into_dyn()))
        }
        let x = Sig::x(k);
        let first = match self {
            Sig::F64 => Value::Scalar(Scalar::F64(x)),
            Sig::F32 => Value::Scalar(Scalar::F32(x as f32)),
            Sig::I64 => Value::Scalar(Scalar::I64(x as i64)),
            Sig::VecF64 => owned(inputs.v64.view()),
            Sig::VecF32Strided => owned(inputs.v32_strided()),
            Sig::VecI64Reversed => owned(inputs.vi64_reversed()),
            Sig::MatF64 => owned(inputs.m64.view()),
            Sig::MatF32Fortran => owned(inputs.m32_fortran()),
            Sig::MatI32Strided => owned(inputs.mi32_strided()),
        };
        let mut args = [first, Value::Scalar(Scalar::I64(k))];
        module.interpret(KERNELS[self.kernel()], &mut args).unwrap()
    }
}

const THREADS: usize = 32;
const ROUNDS: usize = 500;

/// The argument `k` thread `thread` passes: each thread's results differ.
fn k_of(thread: usize) -> i64 {
    thread as i64 - 7
}

/// One round: a fresh module whose signatures are all new, and (in odd
/// rounds) one `Kernel` per kernel that all threads share, memo included.
struct Round {
    module: Module,
    shared: Option<Vec<Kernel>>,
    /// How many different signatures the threads call (1 to 4).
    width: usize,
    /// The first signature (index into [`SIGS`]).
    first: usize,
}

impl Round {
    fn sig(&self, thread: usize) -> Sig {
        SIGS[(self.first + thread % self.width) % SIGS.len()]
    }
}

#[test]
fn the_first_call_from_32_threads_compiles_each_signature_once() {
    let inputs = Inputs::new();
    let reference = Module::parse("reference.kern", SOURCE.as_bytes()).unwrap();
    let expected: Vec<Vec<Value>> = SIGS
        .iter()
        .map(|sig| (0..THREADS).map(|thread| sig.interpret(&reference, &inputs, k_of(thread))).collect())
        .collect();
    let jit = Jit::new();
    let rounds: Vec<Round> = (0..ROUNDS)
        .map(|round| {
            let module = jit.compile(SOURCE).unwrap();
            let shared = (round % 2 == 1).then(|| KERNELS.iter().map(|name| module.kernel(name).unwrap()).collect());
            Round { module, shared, width: 1 + round % 4, first: round * 5 % SIGS.len() }
        })
        .collect();
    // Lookups made in each round (a call, or making a typed handle).
    let lookups: Vec<AtomicU64> = (0..ROUNDS).map(|_| AtomicU64::new(0)).collect();
    let barrier = Barrier::new(THREADS);
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let (rounds, lookups, barrier, inputs, expected) = (&rounds, &lookups, &barrier, &inputs, &expected);
            scope.spawn(move || {
                let k = k_of(thread);
                for (index, round) in rounds.iter().enumerate() {
                    let sig = round.sig(thread);
                    let kernel = match &round.shared {
                        Some(kernels) => kernels[sig.kernel()].clone(),
                        None => round.module.kernel(KERNELS[sig.kernel()]).unwrap(),
                    };
                    let want = &expected[sig as usize][thread];
                    barrier.wait();
                    // Every third thread makes a typed handle where it can;
                    // the others call twice (the second call may be a memo hit).
                    let typed = if thread % 3 == 0 { sig.call_typed(&kernel, inputs, k) } else { None };
                    let calls = match typed {
                        Some(result) => {
                            assert_eq!(&result, want, "round {index}, thread {thread}, {sig:?} (typed)");
                            1
                        }
                        None => {
                            for call in 0..2 {
                                let result = sig.call(&kernel, inputs, k);
                                assert_eq!(&result, want, "round {index}, thread {thread}, {sig:?}, call {call}");
                            }
                            2
                        }
                    };
                    lookups[index].fetch_add(calls, Ordering::Relaxed);
                }
            });
        }
    });
    let elapsed = started.elapsed();
    for (index, round) in rounds.iter().enumerate() {
        let stats = round.module.stats();
        let distinct = round.width as u64;
        assert_eq!(stats.misses, distinct, "round {index}: one compile per signature: {stats:?}");
        let lookups = lookups[index].load(Ordering::Relaxed);
        assert_eq!(stats.hits + stats.misses, lookups, "round {index}: {stats:?}");
    }
    eprintln!("{ROUNDS} rounds of {THREADS} threads behind a barrier: {elapsed:.2?}");
}

// ---- prange from several host threads ----

const PARALLEL: &str = "\
def sum_squares(x):
    s = 0.0
    for i in prange(x.shape[0]):
        s += x[i] * x[i]
    return s

def extremes(x):
    lo = inf
    hi = -inf
    total = 0.0
    for i in prange(x.shape[0]):
        v = x[i] * 3.0 - 1.0
        lo = min(lo, v)
        hi = max(hi, v)
        total += v
    return total, lo, hi

def affine(x, out, k):
    for i in prange(x.shape[0]):
        out[i] = x[i] * k + i
";

/// A value's bits, comparable (`0.0` and `-0.0` differ).
fn bits(value: &Value) -> Vec<u64> {
    match value {
        Value::Scalar(Scalar::F64(x)) => vec![x.to_bits()],
        Value::Tuple(items) => items
            .iter()
            .map(|item| match item {
                Scalar::F64(x) => x.to_bits(),
                other => panic!("unexpected {other:?}"),
            })
            .collect(),
        other => panic!("unexpected {other:?}"),
    }
}

/// Everything one host thread's call produced, as bits: the result (none
/// for `affine`) and the output array.
fn run_parallel(module: &Module, x: &Array1<f64>, thread: usize) -> (Vec<u64>, Vec<u64>) {
    let mut out = Array1::<f64>::zeros(x.len());
    let result = match thread % 3 {
        0 => bits(&module.kernel("sum_squares").unwrap().call((x.view(),)).unwrap()),
        1 => bits(&module.kernel("extremes").unwrap().call((x,)).unwrap()),
        _ => {
            let affine = module.kernel("affine").unwrap();
            affine.call((x.view(), out.view_mut(), 0.5 + thread as f64)).unwrap();
            Vec::new()
        }
    };
    (result, out.iter().map(|v| v.to_bits()).collect())
}

#[test]
fn prange_kernels_called_from_several_host_threads_give_the_bits_of_one_thread() {
    const HOST_THREADS: usize = 6;
    const CALLS: usize = 150;
    let parallel = |threads| Options { threads: Some(threads), parallel_min_trips: Some(0), ..Options::default() };
    let serial = Jit::with_options(parallel(1)).compile(PARALLEL).unwrap();
    let module = Jit::with_options(parallel(2)).compile(PARALLEL).unwrap();
    let inputs: Vec<Array1<f64>> =
        (0..8).map(|seed| crate::parallel::spread(3_000 + 12_345 * seed, seed as u64)).collect();
    let expected: Vec<Vec<(Vec<u64>, Vec<u64>)>> =
        (0..HOST_THREADS).map(|thread| inputs.iter().map(|x| run_parallel(&serial, x, thread)).collect()).collect();
    let barrier = Barrier::new(HOST_THREADS);
    let started = std::time::Instant::now();
    std::thread::scope(|scope| {
        for (thread, expected) in expected.iter().enumerate() {
            let (module, inputs, barrier) = (&module, &inputs, &barrier);
            scope.spawn(move || {
                barrier.wait();
                for call in 0..CALLS {
                    let input = (call + thread) % inputs.len();
                    let got = run_parallel(module, &inputs[input], thread);
                    assert!(got == expected[input], "host thread {thread}, call {call}, input {input}");
                }
            });
        }
    });
    eprintln!("{HOST_THREADS} host threads × {CALLS} parallel calls: {:.2?}", started.elapsed());
}

// ---- A bounded cache under contention ----

#[test]
fn a_bounded_cache_evicting_under_contention_stays_correct() {
    const HOST_THREADS: usize = 4;
    const ITERATIONS: usize = 40;
    let inputs = Inputs::new();
    let reference = Module::parse("reference.kern", SOURCE.as_bytes()).unwrap();
    let five = [Sig::F64, Sig::I64, Sig::VecF64, Sig::VecI64Reversed, Sig::MatF64];
    let expected: Vec<Vec<Value>> = five
        .iter()
        .map(|sig| (0..HOST_THREADS).map(|thread| sig.interpret(&reference, &inputs, k_of(thread))).collect())
        .collect();
    let module = Jit::with_options(Options { cache_capacity: Some(2), ..Options::default() }).compile(SOURCE).unwrap();
    // Made first: its program is evicted soon, and must stay valid.
    let typed = module.kernel("total").unwrap().typed::<(ArrayView1<f64>, i64), f64>().unwrap();
    let barrier = Barrier::new(HOST_THREADS);
    std::thread::scope(|scope| {
        for thread in 0..HOST_THREADS {
            let (module, inputs, expected, barrier, typed) = (&module, &inputs, &expected, &barrier, &typed);
            scope.spawn(move || {
                let k = k_of(thread);
                let kernels: Vec<Kernel> = KERNELS.iter().map(|name| module.kernel(name).unwrap()).collect();
                barrier.wait();
                for iteration in 0..ITERATIONS {
                    for (index, sig) in five.iter().enumerate() {
                        let result = sig.call(&kernels[sig.kernel()], inputs, k);
                        assert_eq!(result, expected[index][thread], "thread {thread}, {sig:?}, {iteration}");
                        assert!(module.stats().cached <= 2);
                    }
                    // `five[2]` is `Sig::VecF64`, the handle's signature.
                    let typed_result = Value::Scalar(Scalar::F64(typed.call((inputs.v64.view(), k)).unwrap()));
                    assert_eq!(typed_result, expected[2][thread]);
                }
            });
        }
    });
    let stats = module.stats();
    assert!(stats.cached <= 2 && stats.evictions > 0, "{stats:?}");
    assert_eq!(stats.evictions, stats.misses - stats.cached as u64, "{stats:?}");
}
