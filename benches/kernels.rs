//! Criterion benchmarks: what compiling a kernel costs, how fast the JIT's
//! machine code runs against hand-written Rust, and what a cached dynamic call
//! costs.
//!
//! For one representative kernel of each `kernels/*.kern` file (the [`CASES`]
//! table) this measures
//! - `compile/{parse,infer,codegen,total}/<kernel>`: a cold compile from
//!   source text to callable machine code, phase by phase (the IR verifier
//!   off, bounds checks on, as in a release build);
//! - `run/jit/<kernel>` and `run/jit_nobounds/<kernel>`: steady-state
//!   [`CompiledProgram::call`] with and without bounds checks;
//! - `run/rust/<kernel>`: the hand-written Rust of `handwritten/mod.rs`;
//!
//! and `call/scalar/*`, the overhead of calling `add(a, b)` through
//! [`Module::run`] (cache lookup and marshalling) and through
//! [`CompiledProgram::call`].
//!
//! Inputs come from the `# run:` argument syntax (`cli_args`) with the CLI's
//! default seed, so `kernjit run FILE CALL` reproduces them. Before timing a
//! kernel, the bench runs the JIT (both variants) and the Rust baseline once
//! on fresh inputs and panics unless every output agrees to 1e-9 relative: a
//! wrong baseline is worse than none. Nothing here tunes a kernel.
//!
//! `cargo bench --bench kernels` takes a few minutes on two cores.

mod handwritten;

use criterion::{BenchmarkId, Criterion, SamplingMode};
use kernjit::cli_args;
use kernjit::jit::engine::CompiledProgram;
use kernjit::jit::lower::LowerOptions;
use kernjit::{ArrayData, Layout, Module, Options, Scalar, Type, Value};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

/// The CLI's default `--seed`.
const SEED: u64 = 42;

/// Outputs must agree with the JIT's to this relative error.
const TOLERANCE: f64 = 1e-9;

/// One benchmarked kernel.
struct Case {
    /// The kernel's name, which is also the benchmark id.
    kernel: &'static str,
    /// Its source file, relative to the crate root.
    file: &'static str,
    /// The call, in `# run:` syntax.
    call: &'static str,
    /// The arguments the kernel writes, compared with the baseline's outputs
    /// (in this order, then the return value).
    written_args: &'static [usize],
    /// The hand-written version, set up from the same argument values.
    baseline: fn(&[Value]) -> Box<dyn Baseline>,
}

/// Sizes are chosen so one serial call takes roughly 1 to 50 ms.
const CASES: &[Case] = &[
    Case {
        kernel: "resize_into",
        file: "kernels/bicubic.kern",
        call: "resize_into(rand(512, 512), zeros(1024, 1024))",
        written_args: &[1],
        baseline: ResizeInto::boxed,
    },
    Case {
        kernel: "eccentric_anomaly_grid",
        file: "kernels/kepler.kern",
        call: "eccentric_anomaly_grid(randn(1000), rand(100), 1e-12, 50, zeros(1000, 100))",
        written_args: &[4],
        baseline: EccentricAnomalyGrid::boxed,
    },
    Case {
        kernel: "calibrate_stack",
        file: "kernels/calibrate.kern",
        call: "calibrate_stack(arange(16, 512, 512):u16, rand(512, 512), rand(512, 512), \
               full(512, 512, 0.98), 30.0, zeros(16, 512, 512):f32)",
        written_args: &[5],
        baseline: CalibrateStack::boxed,
    },
    Case {
        kernel: "inject_planets",
        file: "kernels/planets.kern",
        call: "inject_planets(randn(1024, 1024), arange(1000):f64, arange(1000):f64, 100.0, 2.0)",
        written_args: &[],
        baseline: InjectPlanets::boxed,
    },
    Case {
        kernel: "accelerations",
        file: "kernels/nbody.kern",
        call: "accelerations(randn(1024, 3), rand(1024), 0.05, zeros(1024, 3))",
        written_args: &[3],
        baseline: Accelerations::boxed,
    },
    Case {
        kernel: "mandelbrot",
        file: "kernels/mandelbrot.kern",
        call: "mandelbrot(-2.0, 1.0, -1.25, 1.25, 200, zeros(512, 512):i32)",
        written_args: &[5],
        baseline: Mandelbrot::boxed,
    },
    Case {
        kernel: "axpy",
        file: "kernels/axpy_dot.kern",
        call: "axpy(2.0, rand(2000000), rand(2000000))",
        written_args: &[2],
        baseline: Axpy::boxed,
    },
    Case {
        kernel: "dot",
        file: "kernels/axpy_dot.kern",
        call: "dot(rand(2000000), rand(2000000))",
        written_args: &[],
        baseline: Dot::boxed,
    },
    Case {
        kernel: "jacobi_step",
        file: "kernels/stencil.kern",
        call: "jacobi_step(rand(2048, 2048), rand(2048, 2048), 0.0001, zeros(2048, 2048))",
        written_args: &[3],
        baseline: JacobiStep::boxed,
    },
    Case {
        kernel: "histogram",
        file: "kernels/histogram.kern",
        call: "histogram(randn(4000000), -3.0, 3.0, zeros(64):i64)",
        written_args: &[3],
        baseline: Histogram::boxed,
    },
    Case {
        kernel: "black_scholes",
        file: "kernels/black_scholes.kern",
        call: "black_scholes(full(200000, 100.0), full(200000, 95.0), rand(200000), 0.03, 0.25, \
               zeros(200000), zeros(200000))",
        written_args: &[5, 6],
        baseline: BlackScholes::boxed,
    },
];

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    let cases: Vec<Prepared> = CASES.iter().map(Prepared::new).collect();
    bench_compile(&mut criterion, &cases);
    bench_run(&mut criterion, &cases);
    bench_call(&mut criterion);
    criterion.final_summary();
}

/// A case with its source, arguments and both compiled variants, checked
/// against the baseline.
struct Prepared {
    case: &'static Case,
    source: Vec<u8>,
    types: Vec<Type>,
    args: Vec<Value>,
    jit: CompiledProgram,
    jit_nobounds: CompiledProgram,
}

impl Prepared {
    fn new(case: &'static Case) -> Prepared {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let source = std::fs::read(root.join(case.file)).unwrap_or_else(|e| panic!("{}: {e}", case.file));
        let (name, arg_texts) = cli_args::parse_call(case.call).unwrap();
        assert_eq!(name, case.kernel, "{}", case.call);
        let specs: Vec<_> = arg_texts.iter().map(|text| cli_args::parse_arg(text).unwrap()).collect();
        let args = cli_args::materialise(&specs, SEED, root).unwrap();
        let types: Vec<Type> = args.iter().map(Value::ty).collect();
        let layouts: Vec<Layout> = args.iter().map(Value::layout).collect();

        let module = Module::parse(case.file, &source).unwrap();
        let program = module.specialise(case.kernel, &types).unwrap_or_else(|e| panic!("{}", e.render(false)));
        let jit = CompiledProgram::compile(&program, &lower_options(true, &layouts), false).unwrap();
        let jit_nobounds = CompiledProgram::compile(&program, &lower_options(false, &layouts), false).unwrap();

        let prepared = Prepared { case, source, types, args, jit, jit_nobounds };
        prepared.check_against_baseline();
        prepared
    }

    /// Runs both JIT variants and the baseline once on fresh copies of the
    /// arguments and panics unless all outputs agree.
    fn check_against_baseline(&self) {
        let mut baseline = (self.case.baseline)(&self.args);
        let expected = baseline.run_and_collect();
        for (variant, compiled) in [("jit", &self.jit), ("jit_nobounds", &self.jit_nobounds)] {
            let mut args = self.args.clone();
            let result = compiled.call(&mut args).unwrap_or_else(|e| panic!("{}: {e:?}", self.case.kernel));
            let mut actual = Vec::new();
            for &index in self.case.written_args {
                actual.extend(value_to_f64s(&args[index]));
            }
            actual.extend(value_to_f64s(&result));
            let report = compare(&actual, &expected);
            eprintln!("check {} ({variant} vs rust): {report}", self.case.kernel);
            assert!(
                report.agrees(),
                "{}: the JIT ({variant}) and the Rust baseline disagree (or the output is all zero): {report}",
                self.case.kernel
            );
        }
    }
}

/// How the bench compiles: as `Module` does for these argument layouts
/// (the inputs are C-contiguous), without the IR verifier, and running
/// `prange` loops on one thread (this bench compares serial code;
/// `benches/parallel.rs` measures threads).
fn lower_options(boundscheck: bool, layouts: &[Layout]) -> LowerOptions {
    LowerOptions { boundscheck, verify: false, layouts: layouts.to_vec(), threads: Some(1), ..LowerOptions::default() }
}

/// `compile/<phase>/<kernel>`.
fn bench_compile(criterion: &mut Criterion, cases: &[Prepared]) {
    let mut group = criterion.benchmark_group("compile");
    group.sample_size(20).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    for prepared in cases {
        let Prepared { case, source, types, args, .. } = prepared;
        let layouts: Vec<Layout> = args.iter().map(Value::layout).collect();
        let options = lower_options(true, &layouts);
        group.bench_function(BenchmarkId::new("parse", case.kernel), |b| {
            b.iter_with_large_drop(|| Module::parse(case.file, black_box(source)).unwrap())
        });
        let module = Module::parse(case.file, source).unwrap();
        group.bench_function(BenchmarkId::new("infer", case.kernel), |b| {
            b.iter_with_large_drop(|| module.specialise(case.kernel, black_box(types)).unwrap())
        });
        let program = module.specialise(case.kernel, types).unwrap();
        // The split of code generation into its phases (printed, not timed
        // by criterion): the mean over 20 compiles.
        let mut phases = kernjit::jit::lower::CodegenPhases::default();
        for _ in 0..20 {
            let compiled = CompiledProgram::compile(&program, &options, false).unwrap();
            phases.lower += compiled.phases.lower / 20;
            phases.cranelift += compiled.phases.cranelift / 20;
            phases.finalize += compiled.phases.finalize / 20;
        }
        eprintln!(
            "codegen phases {}: lower {:.0} µs, cranelift {:.0} µs, finalize {:.0} µs",
            case.kernel,
            phases.lower.as_secs_f64() * 1e6,
            phases.cranelift.as_secs_f64() * 1e6,
            phases.finalize.as_secs_f64() * 1e6
        );
        group.bench_function(BenchmarkId::new("codegen", case.kernel), |b| {
            b.iter_with_large_drop(|| CompiledProgram::compile(black_box(&program), &options, false).unwrap())
        });
        group.bench_function(BenchmarkId::new("total", case.kernel), |b| {
            b.iter_with_large_drop(|| {
                let module = Module::parse(case.file, black_box(source)).unwrap();
                let program = module.specialise(case.kernel, types).unwrap();
                CompiledProgram::compile(&program, &options, false).unwrap()
            })
        });
    }
    group.finish();
}

/// `run/{jit,jit_nobounds,rust}/<kernel>`. The arguments are reused between
/// iterations: the kernels only write outputs, or (axpy, histogram) update
/// them in a way that does not change the work.
fn bench_run(criterion: &mut Criterion, cases: &[Prepared]) {
    let mut group = criterion.benchmark_group("run");
    // Calls take milliseconds: flat sampling (the same iteration count in
    // every sample) keeps 15 samples within the measurement time.
    group.sample_size(15).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    group.sampling_mode(SamplingMode::Flat);
    for prepared in cases {
        let kernel = prepared.case.kernel;
        for (variant, compiled) in [("jit", &prepared.jit), ("jit_nobounds", &prepared.jit_nobounds)] {
            let mut args = prepared.args.clone();
            group.bench_function(BenchmarkId::new(variant, kernel), |b| {
                b.iter(|| compiled.call(black_box(&mut args)).unwrap())
            });
        }
        let mut baseline = (prepared.case.baseline)(&prepared.args);
        group.bench_function(BenchmarkId::new("rust", kernel), |b| b.iter(|| baseline.run()));
    }
    group.finish();
}

/// `call/scalar/*`: the cost of a call that does no work.
fn bench_call(criterion: &mut Criterion) {
    let source = b"def add(a, b):\n    return a + b\n";
    let options = Options { verify: false, ..Options::default() };
    let module = Module::parse("add.kern", source).unwrap().with_options(options);
    let mut args = [Value::Scalar(Scalar::F64(1.5)), Value::Scalar(Scalar::F64(2.25))];
    assert_eq!(module.run("add", &mut args).unwrap(), Value::Scalar(Scalar::F64(3.75)));
    let types: Vec<Type> = args.iter().map(Value::ty).collect();
    let compiled = module.compiled("add", &types, &[Layout::Any; 2]).unwrap();

    let mut group = criterion.benchmark_group("call");
    group.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    group.bench_function("scalar/module_run", |b| b.iter(|| module.run("add", black_box(&mut args)).unwrap()));
    group.bench_function("scalar/compiled_call", |b| b.iter(|| compiled.call(black_box(&mut args)).unwrap()));
    let kernel = module.kernel("add").unwrap();
    group.bench_function("scalar/kernel_call", |b| b.iter(|| kernel.call(black_box((1.5, 2.25))).unwrap()));
    let typed = kernel.typed::<(f64, f64), f64>().unwrap();
    group.bench_function("scalar/typed", |b| b.iter(|| typed.call(black_box((1.5, 2.25))).unwrap()));

    // Arrays: marshalling views (and checking their layout) per call.
    let source = b"def first(x, y):\n    return x[0] + y[0]\n";
    let module =
        Module::parse("first.kern", source).unwrap().with_options(Options { verify: false, ..Options::default() });
    let (x, y) = (ndarray::Array1::<f64>::ones(16), ndarray::Array1::<f64>::ones(16));
    let kernel = module.kernel("first").unwrap();
    group.bench_function("array/kernel_call", |b| b.iter(|| kernel.call(black_box((x.view(), y.view()))).unwrap()));
    let typed = kernel.typed::<(ndarray::ArrayView1<f64>, ndarray::ArrayView1<f64>), f64>().unwrap();
    group.bench_function("array/typed", |b| b.iter(|| typed.call(black_box((x.view(), y.view()))).unwrap()));
    group.finish();
}

// ---------------------------------------------------------------------------
// Baselines: each owns plain Rust copies of the arguments it needs.

/// A hand-written kernel with its inputs and outputs.
trait Baseline {
    /// One call (what `run/rust/<kernel>` times).
    fn run(&mut self);
    /// Every output after one call, flattened in the order of the case's
    /// `written_args` and then the return value.
    fn run_and_collect(&mut self) -> Vec<f64>;
}

struct ResizeInto {
    src: Vec<f64>,
    src_shape: Vec<usize>,
    out: Vec<f64>,
    out_shape: Vec<usize>,
}

impl ResizeInto {
    fn boxed(args: &[Value]) -> Box<dyn Baseline> {
        Box::new(ResizeInto {
            src: f64s(&args[0]),
            src_shape: shape(&args[0]),
            out: f64s(&args[1]),
            out_shape: shape(&args[1]),
        })
    }
}

impl Baseline for ResizeInto {
    fn run(&mut self) {
        let (h, w, oh, ow) = (self.src_shape[0], self.src_shape[1], self.out_shape[0], self.out_shape[1]);
        handwritten::resize_into(black_box(&self.src), h, w, &mut self.out, oh, ow);
    }
    fn run_and_collect(&mut self) -> Vec<f64> {
        self.run();
        self.out.clone()
    }
}

struct EccentricAnomalyGrid {
    mean_anomalies: Vec<f64>,
    eccentricities: Vec<f64>,
    tol: f64,
    maxiter: i64,
    out: Vec<f64>,
}

impl EccentricAnomalyGrid {
    fn boxed(args: &[Value]) -> Box<dyn Baseline> {
        Box::new(EccentricAnomalyGrid {
            mean_anomalies: f64s(&args[0]),
            eccentricities: f64s(&args[1]),
            tol: scalar_f64(&args[2]),
            maxiter: scalar_i64(&args[3]),
            out: f64s(&args[4]),
        })
    }
}

impl Baseline for EccentricAnomalyGrid {
    fn run(&mut self) {
        handwritten::eccentric_anomaly_grid(
            black_box(&self.mean_anomalies),
            &self.eccentricities,
            black_box(self.tol),
            black_box(self.maxiter),
            &mut self.out,
        );
    }
    fn run_and_collect(&mut self) -> Vec<f64> {
        self.run();
        self.out.clone()
    }
}

struct CalibrateStack {
    frames: Vec<u16>,
    bias: Vec<f64>,
    dark: Vec<f64>,
    flat: Vec<f64>,
    exptime: f64,
    out: Vec<f32>,
}

impl CalibrateStack {
    fn boxed(args: &[Value]) -> Box<dyn Baseline> {
        let frames = match &args[0] {
            Value::Array(ArrayData::U16(array)) => array.iter().copied().collect(),
            other => panic!("calibrate_stack: frames must be u16, got {}", other.ty()),
        };
        let out = match &args[5] {
            Value::Array(ArrayData::F32(array)) => array.iter().copied().collect(),
            other => panic!("calibrate_stack: out must be f32, got {}", other.ty()),
        };
        Box::new(CalibrateStack {
            frames,
            bias: f64s(&args[1]),
            dark: f64s(&args[2]),
            flat: f64s(&args[3]),
            exptime: scalar_f64(&args[4]),
            out,
        })
    }
}

impl Baseline for CalibrateStack {
    fn run(&mut self) {
        handwritten::calibrate_stack(
            black_box(&self.frames),
            &self.bias,
            &self.dark,
            &self.flat,
            black_box(self.exptime),
            &mut self.out,
        );
    }
    fn run_and_collect(&mut self) -> Vec<f64> {
        self.run();
        self.out.iter().map(|&v| f64::from(v)).collect()
    }
}

struct InjectPlanets {
    image: Vec<f64>,
    image_shape: Vec<usize>,
    xs: Vec<f64>,
    ys: Vec<f64>,
    flux: f64,
    sigma: f64,
}

impl InjectPlanets {
    fn boxed(args: &[Value]) -> Box<dyn Baseline> {
        Box::new(InjectPlanets {
            image: f64s(&args[0]),
            image_shape: shape(&args[0]),
            xs: f64s(&args[1]),
            ys: f64s(&args[2]),
            flux: scalar_f64(&args[3]),
            sigma: scalar_f64(&args[4]),
        })
    }

    fn call(&self) -> Vec<f64> {
        let (h, w) = (self.image_shape[0], self.image_shape[1]);
        handwritten::inject_planets(black_box(&self.image), h, w, &self.xs, &self.ys, black_box(self.flux), self.sigma)
    }
}

impl Baseline for InjectPlanets {
    fn run(&mut self) {
        // The kernel returns a new image; so does the baseline (and drops it).
        black_box(self.call());
    }
    fn run_and_collect(&mut self) -> Vec<f64> {
        self.call()
    }
}

struct Accelerations {
    pos: Vec<f64>,
    mass: Vec<f64>,
    eps: f64,
    acc: Vec<f64>,
}

impl Accelerations {
    fn boxed(args: &[Value]) -> Box<dyn Baseline> {
        Box::new(Accelerations {
            pos: f64s(&args[0]),
            mass: f64s(&args[1]),
            eps: scalar_f64(&args[2]),
            acc: f64s(&args[3]),
        })
    }
}

impl Baseline for Accelerations {
    fn run(&mut self) {
        handwritten::accelerations(black_box(&self.pos), &self.mass, black_box(self.eps), &mut self.acc);
    }
    fn run_and_collect(&mut self) -> Vec<f64> {
        self.run();
        self.acc.clone()
    }
}

struct Mandelbrot {
    bounds: [f64; 4],
    maxiter: i64,
    out: Vec<i32>,
    width: usize,
}

impl Mandelbrot {
    fn boxed(args: &[Value]) -> Box<dyn Baseline> {
        let out = match &args[5] {
            Value::Array(ArrayData::I32(array)) => array.iter().copied().collect(),
            other => panic!("mandelbrot: out must be i32, got {}", other.ty()),
        };
        Box::new(Mandelbrot {
            bounds: [scalar_f64(&args[0]), scalar_f64(&args[1]), scalar_f64(&args[2]), scalar_f64(&args[3])],
            maxiter: scalar_i64(&args[4]),
            out,
            width: shape(&args[5])[1],
        })
    }
}

impl Baseline for Mandelbrot {
    fn run(&mut self) {
        let [xmin, xmax, ymin, ymax] = black_box(self.bounds);
        handwritten::mandelbrot(xmin, xmax, ymin, ymax, black_box(self.maxiter), &mut self.out, self.width);
    }
    fn run_and_collect(&mut self) -> Vec<f64> {
        self.run();
        self.out.iter().map(|&v| f64::from(v)).collect()
    }
}

struct Axpy {
    a: f64,
    x: Vec<f64>,
    y: Vec<f64>,
}

impl Axpy {
    fn boxed(args: &[Value]) -> Box<dyn Baseline> {
        Box::new(Axpy { a: scalar_f64(&args[0]), x: f64s(&args[1]), y: f64s(&args[2]) })
    }
}

impl Baseline for Axpy {
    fn run(&mut self) {
        handwritten::axpy(black_box(self.a), black_box(&self.x), &mut self.y);
    }
    fn run_and_collect(&mut self) -> Vec<f64> {
        self.run();
        self.y.clone()
    }
}

struct Dot {
    x: Vec<f64>,
    y: Vec<f64>,
}

impl Dot {
    fn boxed(args: &[Value]) -> Box<dyn Baseline> {
        Box::new(Dot { x: f64s(&args[0]), y: f64s(&args[1]) })
    }
}

impl Baseline for Dot {
    fn run(&mut self) {
        black_box(handwritten::dot(black_box(&self.x), black_box(&self.y)));
    }
    fn run_and_collect(&mut self) -> Vec<f64> {
        vec![handwritten::dot(&self.x, &self.y)]
    }
}

struct JacobiStep {
    u: Vec<f64>,
    f: Vec<f64>,
    h2: f64,
    out: Vec<f64>,
    nx: usize,
}

impl JacobiStep {
    fn boxed(args: &[Value]) -> Box<dyn Baseline> {
        Box::new(JacobiStep {
            u: f64s(&args[0]),
            f: f64s(&args[1]),
            h2: scalar_f64(&args[2]),
            out: f64s(&args[3]),
            nx: shape(&args[0])[1],
        })
    }
}

impl Baseline for JacobiStep {
    fn run(&mut self) {
        handwritten::jacobi_step(black_box(&self.u), &self.f, black_box(self.h2), &mut self.out, self.nx);
    }
    fn run_and_collect(&mut self) -> Vec<f64> {
        self.run();
        self.out.clone()
    }
}

struct Histogram {
    values: Vec<f64>,
    lo: f64,
    hi: f64,
    counts: Vec<i64>,
}

impl Histogram {
    fn boxed(args: &[Value]) -> Box<dyn Baseline> {
        let counts = match &args[3] {
            Value::Array(ArrayData::I64(array)) => array.iter().copied().collect(),
            other => panic!("histogram: counts must be i64, got {}", other.ty()),
        };
        Box::new(Histogram { values: f64s(&args[0]), lo: scalar_f64(&args[1]), hi: scalar_f64(&args[2]), counts })
    }

    fn call(&mut self) -> i64 {
        handwritten::histogram(black_box(&self.values), black_box(self.lo), black_box(self.hi), &mut self.counts)
    }
}

impl Baseline for Histogram {
    fn run(&mut self) {
        black_box(self.call());
    }
    fn run_and_collect(&mut self) -> Vec<f64> {
        let total = self.call();
        let mut outputs: Vec<f64> = self.counts.iter().map(|&c| c as f64).collect();
        outputs.push(total as f64);
        outputs
    }
}

struct BlackScholes {
    spot: Vec<f64>,
    strike: Vec<f64>,
    expiry: Vec<f64>,
    rate: f64,
    sigma: f64,
    call: Vec<f64>,
    put: Vec<f64>,
}

impl BlackScholes {
    fn boxed(args: &[Value]) -> Box<dyn Baseline> {
        Box::new(BlackScholes {
            spot: f64s(&args[0]),
            strike: f64s(&args[1]),
            expiry: f64s(&args[2]),
            rate: scalar_f64(&args[3]),
            sigma: scalar_f64(&args[4]),
            call: f64s(&args[5]),
            put: f64s(&args[6]),
        })
    }
}

impl Baseline for BlackScholes {
    fn run(&mut self) {
        handwritten::black_scholes(
            black_box(&self.spot),
            &self.strike,
            &self.expiry,
            black_box(self.rate),
            black_box(self.sigma),
            &mut self.call,
            &mut self.put,
        );
    }
    fn run_and_collect(&mut self) -> Vec<f64> {
        self.run();
        let mut outputs = self.call.clone();
        outputs.extend_from_slice(&self.put);
        outputs
    }
}

// ---------------------------------------------------------------------------
// Value helpers.

/// The elements of an `f64` array argument, in C order.
fn f64s(value: &Value) -> Vec<f64> {
    match value {
        Value::Array(ArrayData::F64(array)) => array.iter().copied().collect(),
        other => panic!("expected an f64 array, got {}", other.ty()),
    }
}

fn shape(value: &Value) -> Vec<usize> {
    match value {
        Value::Array(array) => array.shape(),
        other => panic!("expected an array, got {}", other.ty()),
    }
}

fn scalar_f64(value: &Value) -> f64 {
    match value {
        Value::Scalar(Scalar::F64(v)) => *v,
        other => panic!("expected an f64 scalar, got {}", other.ty()),
    }
}

fn scalar_i64(value: &Value) -> i64 {
    match value {
        Value::Scalar(Scalar::I64(v)) => *v,
        other => panic!("expected an i64 scalar, got {}", other.ty()),
    }
}

/// Any value as a flat list of `f64` (arrays in C order; `None` is empty).
fn value_to_f64s(value: &Value) -> Vec<f64> {
    match value {
        Value::Scalar(scalar) => vec![scalar.to_f64()],
        Value::Tuple(items) => items.iter().map(|item| item.to_f64()).collect(),
        Value::Array(array) => array.to_scalars().into_iter().map(Scalar::to_f64).collect(),
        Value::None => Vec::new(),
    }
}

/// How two output lists differ.
#[derive(Debug)]
struct Comparison {
    lengths: (usize, usize),
    /// Values of the expected output that are not zero (an all-zero output
    /// would make agreement meaningless).
    nonzero: usize,
    bit_identical: usize,
    worst_relative: f64,
    worst_index: usize,
    disagreeing: usize,
}

impl Comparison {
    fn agrees(&self) -> bool {
        self.lengths.0 == self.lengths.1 && self.disagreeing == 0 && self.nonzero > 0
    }
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} vs {} values ({} nonzero), {} bit-identical, {} beyond {TOLERANCE:e}, worst relative error {:e} at {}",
            self.lengths.0,
            self.lengths.1,
            self.nonzero,
            self.bit_identical,
            self.disagreeing,
            self.worst_relative,
            self.worst_index
        )
    }
}

/// A NaN relative error counts as a disagreement, hence the negated comparisons.
#[allow(clippy::neg_cmp_op_on_partial_ord)]
fn compare(actual: &[f64], expected: &[f64]) -> Comparison {
    let mut comparison = Comparison {
        lengths: (actual.len(), expected.len()),
        nonzero: expected.iter().filter(|&&e| e != 0.0).count(),
        bit_identical: 0,
        worst_relative: 0.0,
        worst_index: 0,
        disagreeing: 0,
    };
    for (index, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        if a.to_bits() == e.to_bits() || a == e || (a.is_nan() && e.is_nan()) {
            comparison.bit_identical += usize::from(a.to_bits() == e.to_bits());
            continue;
        }
        let relative = (a - e).abs() / a.abs().max(e.abs());
        if !(relative <= TOLERANCE) {
            comparison.disagreeing += 1;
        }
        if !(relative <= comparison.worst_relative) {
            comparison.worst_relative = relative;
            comparison.worst_index = index;
        }
    }
    comparison
}
