//! Criterion benchmarks of `prange` on the thread pool:
//!
//! - `region/*`: the overhead of an empty parallel region on 2 threads:
//!   kernjit's pool (`jit::pool::run_blocks`), rayon's (`par_iter` on a
//!   2-thread pool, from outside it, as a host call would be), and a whole
//!   kernel call whose 2-trip `prange` is forced onto the pool;
//! - `scaling/<kernel>/t<N>`: steady-state calls of the `prange` kernels of
//!   `kernels/` on 1, 2 (and, on bigger machines, all) threads. Before
//!   timing, every thread count's outputs are checked to equal the
//!   1-thread outputs.
//!
//! `cargo bench --bench parallel` takes about two minutes on two cores.

use criterion::{BenchmarkId, Criterion, SamplingMode};
use kernjit::cli_args;
use kernjit::jit::engine::CompiledProgram;
use kernjit::jit::lower::LowerOptions;
use kernjit::{Layout, Module, Options, Type, Value};
use rayon::prelude::*;
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

/// The CLI's default `--seed`.
const SEED: u64 = 42;

/// `(file, call)`: the compute-bound kernels the issue names (mandelbrot,
/// n-body, the Kepler grid, bicubic), the memory-bound ones (axpy, dot),
/// and the other `prange` kernels of the serial bench, at its sizes.
const SCALING: &[(&str, &str)] = &[
    ("kernels/mandelbrot.kern", "mandelbrot(-2.0, 1.0, -1.25, 1.25, 200, zeros(512, 512):i32)"),
    ("kernels/nbody.kern", "accelerations(randn(1024, 3), rand(1024), 0.05, zeros(1024, 3))"),
    ("kernels/kepler.kern", "eccentric_anomaly_grid(randn(1000), rand(100), 1e-12, 50, zeros(1000, 100))"),
    ("kernels/bicubic.kern", "resize_into(rand(512, 512), zeros(1024, 1024))"),
    ("kernels/axpy_dot.kern", "axpy_par(2.0, rand(2000000), rand(2000000))"),
    ("kernels/axpy_dot.kern", "dot_par(rand(2000000), rand(2000000))"),
    (
        "kernels/calibrate.kern",
        "calibrate_stack(arange(16, 512, 512):u16, rand(512, 512), rand(512, 512), full(512, 512, 0.98), 30.0, \
         zeros(16, 512, 512):f32)",
    ),
    ("kernels/planets.kern", "inject_planets(randn(1024, 1024), arange(1000):f64, arange(1000):f64, 100.0, 2.0)"),
    ("kernels/stencil.kern", "jacobi_step(rand(2048, 2048), rand(2048, 2048), 0.0001, zeros(2048, 2048))"),
    (
        "kernels/black_scholes.kern",
        "black_scholes(full(200000, 100.0), full(200000, 95.0), rand(200000), 0.03, 0.25, zeros(200000), \
         zeros(200000))",
    ),
];

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    bench_region(&mut criterion);
    bench_scaling(&mut criterion);
    criterion.final_summary();
}

/// `region/*`: an empty parallel region on 2 threads.
fn bench_region(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("region");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    let empty = |_: u64, _: u64| -> Result<(), ()> { Ok(()) };
    group.bench_function("kernjit_pool/2threads", |b| {
        b.iter(|| kernjit::jit::pool::run_blocks(2, black_box(2), &empty).unwrap())
    });
    let rayon_pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
    group.bench_function("rayon_par_iter/2threads", |b| {
        b.iter(|| {
            rayon_pool.install(|| {
                (0..black_box(2u64)).into_par_iter().for_each(|i| {
                    black_box(i);
                })
            })
        })
    });
    let source = b"def touch(x):\n    for i in prange(x.shape[0]):\n        x[i] = 1.0\n";
    let x = ndarray::Array1::<f64>::zeros(2);
    for threads in [1, 2] {
        let options =
            Options { threads: Some(threads), parallel_min_trips: Some(0), verify: false, ..Options::default() };
        let module = Module::parse("touch.kern", source).unwrap().with_options(options);
        let typed = module.kernel("touch").unwrap().typed::<(ndarray::ArrayViewMut1<f64>,), ()>().unwrap();
        let mut x = x.clone();
        group.bench_function(BenchmarkId::new("kernel_call", format!("{threads}threads")), |b| {
            b.iter(|| typed.call((x.view_mut(),)).unwrap())
        });
    }
    group.finish();
}

/// Thread counts to measure: 1, 2 and every core (if more than 2).
fn thread_counts() -> Vec<usize> {
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    let mut counts = vec![1, 2];
    if cores > 2 {
        counts.push(cores);
    }
    counts
}

/// `scaling/<kernel>/t<N>`.
fn bench_scaling(criterion: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut group = criterion.benchmark_group("scaling");
    group.sample_size(15).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.sampling_mode(SamplingMode::Flat);
    for (file, call) in SCALING {
        let source = std::fs::read(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let (kernel, arg_texts) = cli_args::parse_call(call).unwrap();
        let specs: Vec<_> = arg_texts.iter().map(|text| cli_args::parse_arg(text).unwrap()).collect();
        let args = cli_args::materialise(&specs, SEED, root).unwrap();
        let types: Vec<Type> = args.iter().map(Value::ty).collect();
        let layouts: Vec<Layout> = args.iter().map(Value::layout).collect();
        let module = Module::parse(file, &source).unwrap();
        let program = module.specialise(&kernel, &types).unwrap_or_else(|e| panic!("{}", e.render(false)));

        let mut serial_outcome = None;
        for threads in thread_counts() {
            let options = LowerOptions {
                boundscheck: true,
                verify: false,
                layouts: layouts.clone(),
                threads: Some(threads),
                ..LowerOptions::default()
            };
            let compiled = CompiledProgram::compile(&program, &options, false).unwrap();
            // Same outputs as on one thread.
            let mut fresh = args.clone();
            let result = compiled.call(&mut fresh).unwrap_or_else(|e| panic!("{kernel}: {e:?}"));
            let outcome = (result, fresh);
            match &serial_outcome {
                None => serial_outcome = Some(outcome),
                Some(serial) => assert!(*serial == outcome, "{kernel}: {threads} threads change the results"),
            }
            let mut args = args.clone();
            group.bench_function(BenchmarkId::new(kernel.as_str(), format!("t{threads}")), |b| {
                b.iter(|| compiled.call(black_box(&mut args)).unwrap())
            });
        }
    }
    group.finish();
}
