//! `prange` on the thread pool: the same results as the interpreter, bit for
//! bit, for every thread count and every run; the lowest failing iteration's
//! error; concurrent callers; bodies that call other kernels.

use crate::jit::outcome;
use kernjit::{cli_args, Module, Options, Scalar, Value};
use ndarray::Array1;

/// A module running every prange loop in parallel (however short) on
/// `threads` threads.
fn parallel(module: &Module, threads: usize) -> Module {
    module.clone().with_options(Options {
        threads: Some(threads),
        parallel_min_trips: Some(0),
        verify: true,
        ..Options::default()
    })
}

/// An owned copy of `array` as a host value.
fn array_value<T: kernjit::Element, D: ndarray::Dimension>(array: &ndarray::Array<T, D>) -> Value {
    Value::Array(T::wrap(array.clone().into_dyn()))
}

fn int(value: i64) -> Value {
    Value::Scalar(Scalar::I64(value))
}

fn parse(source: &str) -> Module {
    Module::parse("parallel.kern", source.as_bytes()).unwrap()
}

#[test]
fn every_run_line_agrees_with_the_interpreter_on_any_thread_count() {
    let root = crate::corpus::root();
    let mut compared = 0;
    let mut failures = Vec::new();
    for path in crate::corpus::all_programs() {
        let source = std::fs::read_to_string(&path).unwrap();
        if !source.contains("prange") {
            continue;
        }
        let Ok(module) = Module::parse(&path.display().to_string(), source.as_bytes()) else { continue };
        let modules: Vec<(usize, Module)> = [1, 2, 3, 8].into_iter().map(|t| (t, parallel(&module, t))).collect();
        for crate::corpus::RunCall { line, call, kernel, specs } in crate::corpus::run_calls(&source) {
            let base = path.parent().unwrap();
            let Ok(mut interp_args) = cli_args::materialise(&specs, 42, base) else { continue };
            let interpreted = outcome(module.interpret(&kernel, &mut interp_args), &interp_args);
            for (threads, parallel) in &modules {
                let mut args = cli_args::materialise(&specs, 42, base).unwrap();
                let compiled = outcome(parallel.run(&kernel, &mut args), &args);
                compared += 1;
                if interpreted != compiled {
                    failures.push(format!(
                        "{}:{line}: {call} ({threads} threads)\n--- interpreter\n{interpreted}\n--- jit\n{compiled}",
                        path.strip_prefix(root).unwrap().display()
                    ));
                }
            }
        }
    }
    assert!(compared > 40, "only {compared} runs compared");
    assert!(failures.is_empty(), "{} of {compared} runs differ:\n{}", failures.len(), failures.join("\n\n"));
}

const REDUCTIONS: &str = "
from numba import njit, prange

@njit
def stats(x):
    total = 0.0
    squares = 0.0
    product = 1.0
    low = 1e300
    high = -1e300
    bits = 0
    count = 0
    for i in prange(x.shape[0]):
        v = x[i]
        total += v
        squares -= v * v
        product *= 1.0 + v * 1e-6
        low = min(low, v)
        high = max(high, v)
        bits ^= int(v * 1000.0)
        count += 1
    return total, squares, product, low, high, bits, count
";

/// Pseudo-random values with a wide spread of magnitudes, so that the float
/// sum depends on the order of additions.
pub(crate) fn spread(n: usize, seed: u64) -> Array1<f64> {
    let mut state = seed;
    Array1::from_shape_fn(n, |_| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
        (unit - 0.5) * 10f64.powi((state % 7) as i32)
    })
}

#[test]
fn reductions_are_bit_identical_for_every_thread_count_and_run() {
    let module = parse(REDUCTIONS);
    for n in [1, 5, 1023, 1025, 100_003, 1_000_000] {
        let x = spread(n, n as u64);
        let expected = module.interpret("stats", &mut [array_value(&x)]).unwrap();
        for threads in [1, 2, 3, 8] {
            let parallel = parallel(&module, threads);
            let kernel = parallel.kernel("stats").unwrap();
            for run in 0..20 {
                let result = kernel.call((x.view(),)).unwrap();
                assert_eq!(
                    outcome(Ok(result), &[]),
                    outcome(Ok(expected.clone()), &[]),
                    "n={n}, {threads} threads, run {run}"
                );
            }
        }
    }
}

#[test]
fn the_default_options_give_the_same_results() {
    // Default options: all cores, serial below the size estimate.
    let module = parse(REDUCTIONS);
    let x = spread(300_000, 7);
    let expected = module.interpret("stats", &mut [array_value(&x)]).unwrap();
    let result = module.kernel("stats").unwrap().call((x.view(),)).unwrap();
    assert_eq!(outcome(Ok(result), &[]), outcome(Ok(expected), &[]));
}

const GATHER: &str = "
from numba import njit, prange

@njit
def gather(x, index, out):
    for i in prange(index.shape[0]):
        out[i] = x[index[i]] * 2.0
";

#[test]
fn the_error_of_the_lowest_failing_iteration_is_returned() {
    let module = parse(GATHER);
    let n = 50_000;
    let x = Array1::from_shape_fn(n, |i| i as f64);
    let mut state = 12345u64;
    let mut next = |bound: usize| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as usize % bound
    };
    for trial in 0..30 {
        // One to three bad indices at random iterations.
        let mut index = Array1::from_shape_fn(n, |i| ((i * 7) % n) as i64);
        for _ in 0..1 + trial % 3 {
            let at = next(n);
            index[at] = (n + next(1000)) as i64;
        }
        let mut out = Array1::<f64>::zeros(n);
        let mut args = [array_value(&x), array_value(&index), array_value(&out)];
        let expected = module.interpret("gather", &mut args).unwrap_err().render(false);
        for threads in [1, 2, 3, 8] {
            let parallel = parallel(&module, threads);
            let error = parallel.kernel("gather").unwrap().call((x.view(), index.view(), out.view_mut())).unwrap_err();
            assert_eq!(error.render(false), expected, "trial {trial}, {threads} threads");
        }
    }
    // The pool is still fine afterwards.
    let index = Array1::from_shape_fn(n, |i| i as i64);
    let mut out = Array1::<f64>::zeros(n);
    parallel(&module, 2).kernel("gather").unwrap().call((x.view(), index.view(), out.view_mut())).unwrap();
    assert_eq!(out[n - 1], 2.0 * (n - 1) as f64);
}

#[test]
fn concurrent_callers_from_eight_host_threads() {
    let module = parallel(&parse(REDUCTIONS), 2);
    let kernel = module.kernel("stats").unwrap();
    let inputs: Vec<Array1<f64>> = (0..8).map(|k| spread(20_000 + 1000 * k, k as u64)).collect();
    let expected: Vec<String> =
        inputs.iter().map(|x| outcome(Ok(module.interpret("stats", &mut [array_value(x)]).unwrap()), &[])).collect();
    std::thread::scope(|scope| {
        for (x, expected) in inputs.iter().zip(&expected) {
            let kernel = kernel.clone();
            scope.spawn(move || {
                for _ in 0..50 {
                    assert_eq!(&outcome(Ok(kernel.call((x.view(),)).unwrap()), &[]), expected);
                }
            });
        }
    });
}

const CALLS: &str = "
from numba import njit, prange
import numpy as np

@njit
def collatz_steps(n):
    steps = 0
    while n != 1:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        steps += 1
    return steps

@njit
def depth(n):
    if n == 0:
        return 0
    return 1 + depth(n - 1)

@njit
def inner_sum(row):
    s = 0.0
    for j in prange(row.shape[0]):
        s += row[j]
    return s

@njit
def work(steps, grid):
    n = steps.shape[0]
    total = 0
    rows = 0.0
    for i in prange(n):
        steps[i] = collatz_steps(i + 1) + depth(i % 50)
        total += steps[i]
        rows += inner_sum(grid[i % grid.shape[0]])
    return total, rows

@njit
def too_deep(n):
    out = np.zeros(n)
    for i in prange(n):
        out[i] = depth(i * 100)
    return out
";

#[test]
fn bodies_call_other_kernels_recursion_and_nested_pranges() {
    let module = parse(CALLS);
    let grid = ndarray::Array2::from_shape_fn((7, 300), |(i, j)| (i * 300 + j) as f64 * 0.25);
    let steps = Array1::<i64>::zeros(3000);
    let mut args = [array_value(&steps), array_value(&grid)];
    let expected = outcome(module.interpret("work", &mut args), &args[..1]);
    for threads in [1, 2, 3, 8] {
        let parallel = parallel(&module, threads);
        let mut steps = steps.clone();
        let result = parallel.kernel("work").unwrap().call((steps.view_mut(), grid.view()));
        assert_eq!(outcome(result, &[array_value(&steps)]), expected, "{threads} threads");
    }
    // Recursion 1000 deep in a worker fails cleanly, like the interpreter.
    let expected = module.interpret("too_deep", &mut [int(40)]).unwrap_err().render(false);
    for threads in [1, 2, 8] {
        let error = parallel(&module, threads).kernel("too_deep").unwrap().call((40i64,)).unwrap_err();
        assert_eq!(error.render(false), expected, "{threads} threads");
    }
}

#[test]
fn short_loops_and_single_threads_run_serially_with_the_same_results() {
    let module = parse(REDUCTIONS);
    let x = spread(3000, 3);
    let expected = outcome(Ok(module.interpret("stats", &mut [array_value(&x)]).unwrap()), &[]);
    for threads in [None, Some(1), Some(4)] {
        let options = Options { threads, ..Options::default() };
        let module = module.clone().with_options(options);
        let result = module.kernel("stats").unwrap().call((x.view(),)).unwrap();
        assert_eq!(outcome(Ok(result), &[]), expected);
    }
}

/// A contiguous array parameter keeps its layout class inside a `prange`
/// body (whose code derives the strides from the extents, as the kernel's
/// does); a parameter rebound to a view before the loop, or passed on to a
/// helper, has any strides there.
#[test]
fn contiguous_parameters_inside_prange_bodies_in_both_orders() {
    let module = parse(
        "\
def scale(a, out):
    for i in prange(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = a[i, j] * 2.0 + j

def rebound(a, out):
    a = a[1:, 2:]
    for i in prange(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = a[i, j] - i

def fill(a, out):
    for i in prange(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = a[i, j] + a[j % 3, i % 2]

def through_helper(a, out):
    fill(a, out)
",
    );
    use ndarray::{Array2, ShapeBuilder};
    let value = |(i, j): (usize, usize)| (i * 7 + j) as f64 * 0.5 - 3.0;
    let inputs = [Array2::from_shape_fn((5, 7), value), Array2::from_shape_fn((5, 7).f(), value)];
    for kernel in ["scale", "rebound", "fill", "through_helper"] {
        for a in &inputs {
            for out in &inputs {
                let args = || vec![array_value(a), array_value(&(out * 0.0 + 1.0))];
                let mut interp_args = args();
                let expected = outcome(module.interpret(kernel, &mut interp_args), &interp_args);
                for threads in [1, 2] {
                    let mut jit_args = args();
                    let compiled = outcome(parallel(&module, threads).run(kernel, &mut jit_args), &jit_args);
                    assert_eq!(
                        compiled,
                        expected,
                        "{kernel}, {threads} threads, a {:?}, out {:?}",
                        a.strides(),
                        out.strides()
                    );
                }
            }
        }
    }
}

/// Every row's inner loop fails its check before the loop (`j + k` passes
/// the end) and runs its checked copy, which is compiled on first use
/// (`jit/cold.rs`): both threads race to that first use, in a fresh
/// compile each round, and the rows come out as in the interpreter.
#[test]
fn checked_loop_copies_compile_once_under_racing_threads() {
    let source = "\
def shifted_rows(m, out, k):
    for r in prange(m.shape[0]):
        s = 0.0
        for j in range(m.shape[1]):
            if j + k < m.shape[1]:
                s += m[r, j + k]
        out[r] = s

def shifted_rows_failing(m, out, k):
    for r in prange(m.shape[0]):
        s = 0.0
        for j in range(m.shape[1]):
            if j + k < m.shape[1] or r == 40:
                s += m[r, j + k]
        out[r] = s
";
    let m = ndarray::Array2::from_shape_fn((64, 9), |(i, j)| (i * 9 + j) as f64 * 0.25);
    let args = || vec![array_value(&m), array_value(&Array1::<f64>::zeros(64)), int(3)];
    let module = parse(source);
    for kernel in ["shifted_rows", "shifted_rows_failing"] {
        let mut interp_args = args();
        let interpreted = module.interpret(kernel, &mut interp_args);
        let failed = interpreted.is_err();
        let expected = outcome(interpreted, if failed { &[] } else { &interp_args });
        for round in 0..20 {
            let mut jit_args = args();
            // A fresh module: a fresh compile, so a fresh race.
            let result = parallel(&parse(source), 2).run(kernel, &mut jit_args);
            let compiled = outcome(result, if failed { &[] } else { &jit_args });
            assert_eq!(compiled, expected, "{kernel}, round {round}");
        }
    }
}

#[test]
fn programs_say_whether_a_call_takes_the_default_thread_count() {
    // Hosts that choose the count per call (the Python binding reads
    // os.environ) need to for these programs only.
    let module = parse(
        "def par(x):\n    for i in prange(x.shape[0]):\n        x[i] += 1.0\n\n\
         def ser(x):\n    for i in range(x.shape[0]):\n        x[i] += 1.0\n\n\
         def calls_par(x):\n    par(x)\n",
    );
    let args = [kernjit::types::parse_type("f64[:]").unwrap()];
    let takes = |module: &Module, kernel: &str| {
        module.compiled(kernel, &args, &[kernjit::Layout::Any]).unwrap().takes_default_threads()
    };
    assert!(takes(&module, "par"));
    assert!(takes(&module, "calls_par"));
    assert!(!takes(&module, "ser"));
    let fixed = module.clone().with_options(Options { threads: Some(2), ..Options::default() });
    assert!(!takes(&fixed, "par"), "a fixed Options::threads wins");
}

#[test]
fn an_ambient_thread_count_gives_the_same_results() {
    let module = parse(REDUCTIONS);
    let x = spread(300_000, 11);
    let expected = module.interpret("stats", &mut [array_value(&x)]).unwrap();
    for threads in [1, 2, 3] {
        let _ambient = kernjit::jit::pool::AmbientThreads::enter(threads);
        assert_eq!(kernjit::jit::pool::default_threads(), threads);
        let result = module.kernel("stats").unwrap().call((x.view(),)).unwrap();
        assert_eq!(outcome(Ok(result), &[]), outcome(Ok(expected.clone()), &[]), "{threads} threads");
    }
}
