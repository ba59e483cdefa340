//! Measuring one kernel call the way `kernjit bench` reports it: cold
//! compile (per phase), first call, and steady state, kept apart.
//!
//! Entry point [`measure`]. A [`Measurement`] is data; [`report`] renders
//! rows of them as a table or JSON and [`plot`] as an SVG chart. Nothing here
//! prints.

pub mod plot;
pub mod report;

use crate::cli_args::{self, ArgSpec};
use crate::types::{Signature, Type};
use crate::value::Value;
use crate::{Error, Module, Options};
use std::path::Path;
use std::time::{Duration, Instant};

/// How to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Threads for `prange` loops (`None`: the process default).
    pub threads: Option<usize>,
    /// Run the reference interpreter instead of compiled code.
    pub interp: bool,
    /// Steady-state repetitions (`None`: as many as fit in `time`, at least 3).
    pub reps: Option<usize>,
    /// Time to spend on the steady state when `reps` is not given.
    pub time: Duration,
    /// Seed of the random argument generators.
    pub seed: u64,
}

impl Default for BenchOptions {
    fn default() -> BenchOptions {
        BenchOptions { threads: None, interp: false, reps: None, time: Duration::from_secs(1), seed: 42 }
    }
}

/// What one bench line cost.
#[derive(Clone, Debug)]
pub struct Measurement {
    pub kernel: String,
    /// The argument types, `kernel(f64, f64[:, ::1])`.
    pub signature: String,
    /// Threads `prange` loops used (1 for the interpreter).
    pub threads: usize,
    /// Source text to callable code, per phase (the interpreter: parse and
    /// inference only).
    pub compile: CompileTimes,
    /// The first call after compiling (starts the thread pool, touches fresh
    /// memory).
    pub first_call: Duration,
    /// Every steady-state call, sorted.
    pub calls: Vec<Duration>,
    /// Bytes and elements of every array argument and array result (each
    /// counted once per call: what the call touches at least once).
    pub bytes: u64,
    pub elements: u64,
}

/// Cold compile time per phase.
#[derive(Clone, Copy, Debug, Default)]
pub struct CompileTimes {
    pub parse: Duration,
    pub infer: Duration,
    pub lower: Duration,
    pub cranelift: Duration,
    pub finalize: Duration,
}

impl CompileTimes {
    pub fn total(&self) -> Duration {
        self.parse + self.infer + self.lower + self.cranelift + self.finalize
    }
}

impl Measurement {
    pub fn median(&self) -> Duration {
        self.calls.get(self.calls.len() / 2).copied().unwrap_or_default()
    }

    pub fn min(&self) -> Duration {
        self.calls.first().copied().unwrap_or_default()
    }

    pub fn max(&self) -> Duration {
        self.calls.last().copied().unwrap_or_default()
    }

    /// Bytes per second at the median call time.
    pub fn bytes_per_second(&self) -> f64 {
        self.bytes as f64 / self.median().as_secs_f64().max(1e-12)
    }

    /// Elements per second at the median call time.
    pub fn elements_per_second(&self) -> f64 {
        self.elements as f64 / self.median().as_secs_f64().max(1e-12)
    }
}

/// One call of the kernel being measured.
type CallOnce = dyn FnMut(&mut [Value]) -> Result<Value, Error>;

/// Why a bench line could not be measured.
#[derive(Debug)]
pub enum BenchError {
    /// The call or an argument is malformed (the message says which).
    Call(String),
    /// The kernel failed to compile or to run.
    Kernel(Error),
}

impl From<Error> for BenchError {
    fn from(error: Error) -> BenchError {
        BenchError::Kernel(error)
    }
}

/// Compiles and runs `call` (in `# run:` syntax) from the kernels in
/// `source` (read from `file`, which `@path.npy` arguments are relative to).
pub fn measure(file: &Path, source: &[u8], call: &str, options: &BenchOptions) -> Result<Measurement, BenchError> {
    let (kernel, arg_texts) = cli_args::parse_call(call).map_err(BenchError::Call)?;
    let base_dir = file.parent().unwrap_or(Path::new(""));
    let specs = arg_texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            cli_args::parse_arg(text).map_err(|message| BenchError::Call(format!("argument {index}: {message}")))
        })
        .collect::<Result<Vec<ArgSpec>, _>>()?;
    let mut args = cli_args::materialise(&specs, options.seed, base_dir).map_err(BenchError::Call)?;
    let types: Vec<Type> = args.iter().map(Value::ty).collect();
    let layouts = args.iter().map(Value::layout).collect();
    let signature = Signature { kernel: kernel.clone(), args: types.clone(), layouts };
    let module_options = Options { threads: options.threads, verify: false, ..Options::default() };

    // Process start-up (CPU detection, code generator flags) is not part of
    // any one kernel's compile time.
    let lower_options = crate::jit::lower::LowerOptions { verify: false, ..Default::default() };
    crate::jit::lower::prepare(&lower_options).map_err(BenchError::Call)?;
    // Cold: a fresh module, so nothing is cached.
    let module = Module::parse(&file.display().to_string(), source)?.with_options(module_options);
    if !module.kernel_names().contains(&kernel.as_str()) {
        return Err(BenchError::Call(format!("`{kernel}` is not defined in {}", file.display())));
    }
    let mut compile = CompileTimes::default();
    let mut call_once: Box<CallOnce> = if options.interp {
        let started = Instant::now();
        module.specialise(&kernel, &types)?;
        compile.infer = started.elapsed();
        let module = module.clone();
        let kernel = kernel.clone();
        Box::new(move |args| module.interpret(&kernel, args))
    } else {
        module.compiled(&kernel, &signature.args, &signature.layouts)?;
        let stats = module.stats();
        compile.infer = stats.infer;
        compile.lower = stats.lower;
        compile.cranelift = stats.cranelift;
        compile.finalize = stats.finalize;
        // A cache hit (about 0.2 µs) per call, which also converts scalars
        // to annotated parameter types as `kernjit run` does.
        let module = module.clone();
        let kernel = kernel.clone();
        Box::new(move |args| module.run(&kernel, args))
    };
    compile.parse = module.stats().parse;

    let started = Instant::now();
    let result = call_once(&mut args)?;
    let first_call = started.elapsed();
    let (bytes, elements) = footprint(&args, &result);

    let reps = match options.reps {
        Some(reps) => reps.max(1),
        None => {
            // One more call to estimate the steady state.
            let started = Instant::now();
            call_once(&mut args)?;
            let estimate = started.elapsed().max(Duration::from_nanos(100));
            ((options.time.as_secs_f64() / estimate.as_secs_f64()) as usize).clamp(3, 1_000_000)
        }
    };
    let mut calls = Vec::with_capacity(reps);
    for _ in 0..reps {
        let started = Instant::now();
        call_once(&mut args)?;
        calls.push(started.elapsed());
    }
    calls.sort();
    let threads = if options.interp { 1 } else { options.threads.unwrap_or_else(crate::jit::pool::default_threads) };
    Ok(Measurement { kernel, signature: signature.to_string(), threads, compile, first_call, calls, bytes, elements })
}

/// Bytes and elements of the array arguments and an array result.
fn footprint(args: &[Value], result: &Value) -> (u64, u64) {
    let mut bytes = 0u64;
    let mut elements = 0u64;
    for value in args.iter().chain(std::iter::once(result)) {
        if let Value::Array(array) = value {
            let count = array.len() as u64;
            elements += count;
            bytes += count * array.dtype().size_bytes() as u64;
        }
    }
    (bytes, elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &[u8] = b"def axpy(a, x, y):\n    for i in range(x.shape[0]):\n        y[i] += a * x[i]\n";

    #[test]
    fn measures_compile_first_call_and_steady_state() {
        let options = BenchOptions { reps: Some(5), ..BenchOptions::default() };
        let m = measure(Path::new("axpy.kern"), SOURCE, "axpy(2.0, rand(1000), zeros(1000))", &options).unwrap();
        assert_eq!(m.kernel, "axpy");
        assert_eq!(m.signature, "axpy(f64, f64[::1], f64[::1])");
        assert_eq!(m.calls.len(), 5);
        assert!(m.min() <= m.median() && m.median() <= m.max());
        assert!(m.compile.cranelift > Duration::ZERO && m.compile.parse > Duration::ZERO);
        assert_eq!((m.bytes, m.elements), (16_000, 2000));
        let interp = measure(
            Path::new("axpy.kern"),
            SOURCE,
            "axpy(2.0, rand(1000), zeros(1000))",
            &BenchOptions { interp: true, reps: Some(3), ..BenchOptions::default() },
        )
        .unwrap();
        assert_eq!((interp.threads, interp.compile.cranelift), (1, Duration::ZERO));
    }

    #[test]
    fn calibrates_repetitions_to_the_time_budget() {
        let options = BenchOptions { time: Duration::from_millis(20), ..BenchOptions::default() };
        let m = measure(Path::new("axpy.kern"), SOURCE, "axpy(2.0, rand(10), zeros(10))", &options).unwrap();
        assert!(m.calls.len() > 100, "{} calls of a tiny kernel in 20 ms", m.calls.len());
    }

    #[test]
    fn bad_calls_and_kernel_errors_are_reported() {
        let options = BenchOptions { reps: Some(1), ..BenchOptions::default() };
        let bad = |call: &str| measure(Path::new("axpy.kern"), SOURCE, call, &options).unwrap_err();
        assert!(matches!(bad("axpy(2.0, nope(3), zeros(3))"), BenchError::Call(m) if m.starts_with("argument 1")));
        assert!(matches!(bad("missing(1)"), BenchError::Call(m) if m.contains("`missing` is not defined")));
        assert!(matches!(bad("axpy(2.0, rand(5), zeros(3))"), BenchError::Kernel(Error::Runtime { .. })));
        assert!(matches!(bad("axpy(2.0, 1.0, zeros(3))"), BenchError::Kernel(Error::Compile { .. })));
    }
}
