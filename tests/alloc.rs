//! Memory: what compiled kernels cost over a long-running host's life.
//!
//! - compiling and dropping many distinct kernels keeps resident memory
//!   bounded (the machine code of a dropped module is freed);
//! - a call of a cached kernel allocates nothing on the heap;
//! - `Options::cache_capacity` bounds the signature cache, evicting the
//!   least recently used program.
//!
//! This is its own test binary because it installs a counting
//! `#[global_allocator]`. Every test holds [`SERIAL`], so that the
//! resident-set figures and the timings see one test at a time.

use kernjit::ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut1};
use kernjit::{Jit, Kernel, Module, Options, ScalarType, Type};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// The system allocator, counting the allocations each thread makes (a
/// `realloc` counts as one) and the bytes it asks for. Counting per thread
/// keeps the test harness's own threads (spawning tests, printing results)
/// out of the figures; the calls measured here run entirely on the calling
/// thread (no `prange`).
struct Counting;

thread_local! {
    /// This thread's allocations and allocated bytes so far.
    static ALLOCATIONS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn count(size: usize) {
    // `try_with`: an allocation while the thread is being torn down is not counted.
    let _ = ALLOCATIONS.try_with(|counts| {
        let (count, bytes) = counts.get();
        counts.set((count + 1, bytes + size as u64));
    });
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged; counting touches only a `const`-initialised thread local
// without a destructor, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Held by every test: one test at a time touches the resident set (and
/// the timings are not disturbed by another test).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Heap allocations (count, bytes) this thread makes while `work` runs.
fn allocations_during(work: impl FnOnce()) -> (u64, u64) {
    let (count, bytes) = ALLOCATIONS.with(Cell::get);
    work();
    let (count_after, bytes_after) = ALLOCATIONS.with(Cell::get);
    (count_after - count, bytes_after - bytes)
}

// ---- Resident memory ----

/// Compiling many kernels, resident memory measured from `/proc`.
#[cfg(target_os = "linux")]
mod resident {
    use super::serial;
    use kernjit::{Jit, Options, Scalar, ScalarType, Value};
    use std::time::{Duration, Instant};

    /// Growth of the resident set allowed over the measured kernels.
    const BOUND: u64 = 20 << 20;

    /// The resident set size in bytes: `/proc/self/statm`'s second field
    /// (pages) times the page size.
    fn resident_bytes() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
        let pages: u64 = statm.split_whitespace().nth(1).and_then(|field| field.parse().ok()).expect("statm field 2");
        pages * page_size()
    }

    /// The kernel's page size, from the first mapping's `KernelPageSize` line
    /// of `/proc/self/smaps` (4 KiB if the file says nothing).
    fn page_size() -> u64 {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        smaps
            .lines()
            .find_map(|line| line.strip_prefix("KernelPageSize:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kb| kb.trim().parse::<u64>().ok())
            .map_or(4096, |kb| kb * 1024)
    }

    fn mib(bytes: u64) -> f64 {
        bytes as f64 / (1024.0 * 1024.0)
    }

    /// Compiles the `n`-th distinct kernel (its source differs in a constant),
    /// calls it once, checks the result and drops everything. Returns the
    /// time of the compiling first call.
    fn compile_call_drop(n: u64) -> Duration {
        let source = format!("def k(x, y):\n    return x * {n} + y\n");
        let module = Jit::new().compile(&source).unwrap();
        let kernel = module.kernel("k").unwrap();
        let started = Instant::now();
        let result = f64::try_from(kernel.call((2.0, 0.5)).unwrap()).unwrap();
        let elapsed = started.elapsed();
        assert_eq!(result, 2.0 * n as f64 + 0.5, "kernel {n}");
        assert_eq!(module.stats().misses, 1);
        elapsed
    }

    #[test]
    fn compiling_and_dropping_ten_thousand_kernels_keeps_resident_memory_bounded() {
        const WARM_UP: u64 = 1_000;
        const KERNELS: u64 = 10_000;
        let _serial = serial();
        let before = resident_bytes();
        for n in 0..WARM_UP {
            compile_call_drop(n);
        }
        let warm = resident_bytes();
        let started = Instant::now();
        let mut compiling = Duration::ZERO;
        for n in WARM_UP..WARM_UP + KERNELS {
            compiling += compile_call_drop(n);
        }
        let total = started.elapsed();
        let after = resident_bytes();
        let growth = after.saturating_sub(warm);
        eprintln!(
            "{KERNELS} kernels compiled, called and dropped: RSS {:.1} MiB before, {:.1} MiB after {WARM_UP} \
             warm-up kernels, {:.1} MiB after (growth {:.2} MiB); the compiling first call {:.1} µs per kernel, \
             the whole cycle {:.1} µs",
            mib(before),
            mib(warm),
            mib(after),
            mib(growth),
            compiling.as_secs_f64() * 1e6 / KERNELS as f64,
            total.as_secs_f64() * 1e6 / KERNELS as f64,
        );
        assert!(growth < BOUND, "resident memory grew by {:.1} MiB over {KERNELS} kernels", mib(growth));
    }

    /// Runs `k(a, b, c, d)` for the `n`-th of the 11⁴ signatures of four
    /// scalars (every argument 1, or `true`) and checks the result against
    /// the interpreter's every `check_every` signatures.
    fn run_signature(module: &kernjit::Module, n: usize, check_every: usize) {
        let mut args: Vec<Value> = (0..4)
            .map(|position| {
                let ty = ScalarType::ALL[n / 11usize.pow(position) % 11];
                Value::Scalar(Scalar::I64(1).cast(ty))
            })
            .collect();
        let result = module.run("k", &mut args).unwrap();
        if n.is_multiple_of(check_every) {
            assert_eq!(result, module.interpret("k", &mut args).unwrap(), "signature {n}: {args:?}");
        }
    }

    #[test]
    fn a_bounded_cache_compiling_thousands_of_signatures_keeps_resident_memory_bounded() {
        const WARM_UP: usize = 1_000;
        const SIGNATURES: usize = 8_000;
        const CAPACITY: usize = 16;
        let _serial = serial();
        let options = Options { cache_capacity: Some(CAPACITY), ..Options::default() };
        let module = Jit::with_options(options).compile("def k(a, b, c, d):\n    return a + b * c - d\n").unwrap();
        for n in 0..WARM_UP {
            run_signature(&module, n, 97);
        }
        let warm = resident_bytes();
        for n in WARM_UP..WARM_UP + SIGNATURES {
            run_signature(&module, n, 97);
        }
        let after = resident_bytes();
        let growth = after.saturating_sub(warm);
        let stats = module.stats();
        eprintln!(
            "one module with cache_capacity {CAPACITY}, {SIGNATURES} signatures after {WARM_UP}: RSS {:.1} MiB after \
             warm-up, {:.1} MiB after (growth {:.2} MiB); {} evictions",
            mib(warm),
            mib(after),
            mib(growth),
            stats.evictions
        );
        assert_eq!(stats.misses as usize, WARM_UP + SIGNATURES);
        assert_eq!(stats.cached, CAPACITY);
        assert!(growth < BOUND, "resident memory grew by {:.1} MiB over {SIGNATURES} signatures", mib(growth));
    }
}

// ---- Calls of cached kernels ----

const CALLS: u64 = 1_000_000;

const KERNELS: &str = "\
def mul_add(a, b):
    return a * b + 1.0

def dot(x, y):
    total = 0.0
    for i in range(len(x)):
        total += x[i] * y[i]
    return total

def trace(m):
    total = 0.0
    for i in range(min(m.shape[0], m.shape[1])):
        total += m[i, i]
    return total

def scale(x, out, k):
    for i in range(len(x)):
        out[i] = k * x[i]
";

/// Runs `call` [`CALLS`] times after a warm-up and reports (and returns)
/// the heap allocations per call.
fn allocations_per_call(path: &str, mut call: impl FnMut(u64)) -> f64 {
    for i in 0..1000 {
        call(i);
    }
    let started = Instant::now();
    let (count, bytes) = allocations_during(|| {
        for i in 0..CALLS {
            call(i);
        }
    });
    let per_call = count as f64 / CALLS as f64;
    eprintln!(
        "{path}: {count} allocations ({bytes} bytes) in {CALLS} calls = {per_call} per call; {:.1} ns per call",
        started.elapsed().as_secs_f64() * 1e9 / CALLS as f64
    );
    per_call
}

fn module() -> Module {
    Jit::new().compile(KERNELS).unwrap()
}

#[test]
fn typed_scalar_calls_allocate_nothing() {
    let _serial = serial();
    let module = module();
    let mul_add = module.kernel("mul_add").unwrap().typed::<(f64, f64), f64>().unwrap();
    let per_call = allocations_per_call("typed (f64, f64) -> f64", |i| {
        let a = i as f64;
        assert_eq!(mul_add.call((a, 0.5)).unwrap(), a * 0.5 + 1.0);
    });
    assert_eq!(per_call, 0.0);
}

#[test]
fn dynamic_scalar_calls_allocate_nothing() {
    let _serial = serial();
    let module = module();
    let mul_add = module.kernel("mul_add").unwrap();
    let per_call = allocations_per_call("Kernel::call (f64, f64)", |i| {
        let a = i as f64;
        assert_eq!(f64::try_from(mul_add.call((a, 0.5)).unwrap()).unwrap(), a * 0.5 + 1.0);
    });
    assert_eq!(per_call, 0.0);
}

#[test]
fn calls_with_array_views_allocate_nothing() {
    let _serial = serial();
    let module = module();
    let x = Array1::from_shape_fn(64, |i| i as f64);
    let y = Array1::from_elem(64, 0.5);
    let m = Array2::from_shape_fn((8, 8), |(i, j)| (i * 8 + j) as f64);
    let mut out = Array1::<f64>::zeros(32);
    let expected_dot: f64 = x.iter().sum::<f64>() * 0.5;
    let expected_trace: f64 = (0..8).map(|i| (i * 9) as f64).sum();
    let expected_strided: f64 = x.iter().step_by(2).sum::<f64>() * 0.5;

    let dot = module.kernel("dot").unwrap();
    let typed_dot = dot.typed::<(ArrayView1<f64>, ArrayView1<f64>), f64>().unwrap();
    let per_call = allocations_per_call("typed (f64[:], f64[:]) -> f64, contiguous", |_| {
        assert_eq!(typed_dot.call((x.view(), y.view())).unwrap(), expected_dot);
    });
    assert_eq!(per_call, 0.0);
    let per_call = allocations_per_call("typed (f64[:], f64[:]) -> f64, strided", |_| {
        assert_eq!(typed_dot.call((x.slice(s![..;2]), y.slice(s![..;2]))).unwrap(), expected_strided);
    });
    assert_eq!(per_call, 0.0);
    let per_call = allocations_per_call("Kernel::call (f64[:], f64[:]), contiguous", |_| {
        assert_eq!(f64::try_from(dot.call((x.view(), y.view())).unwrap()).unwrap(), expected_dot);
    });
    assert_eq!(per_call, 0.0);
    let per_call = allocations_per_call("Kernel::call (f64[:], f64[:]), strided", |_| {
        assert_eq!(f64::try_from(dot.call((x.slice(s![..;2]), y.slice(s![..;2]))).unwrap()).unwrap(), expected_strided);
    });
    assert_eq!(per_call, 0.0);

    let trace = module.kernel("trace").unwrap();
    let typed_trace = trace.typed::<(ArrayView2<f64>,), f64>().unwrap();
    let per_call = allocations_per_call("typed (f64[:, :],) -> f64", |_| {
        assert_eq!(typed_trace.call((m.view(),)).unwrap(), expected_trace);
    });
    assert_eq!(per_call, 0.0);
    let per_call = allocations_per_call("Kernel::call (&f64[:, :],), Fortran order", |_| {
        assert_eq!(f64::try_from(trace.call((&m.t(),)).unwrap()).unwrap(), expected_trace);
    });
    assert_eq!(per_call, 0.0);

    let scale = module.kernel("scale").unwrap();
    let typed_scale = scale.typed::<(ArrayView1<f64>, ArrayViewMut1<f64>, f64), ()>().unwrap();
    let per_call = allocations_per_call("typed (f64[:], f64[:] mut, f64) -> None", |i| {
        typed_scale.call((x.slice(s![..32]), out.view_mut(), i as f64)).unwrap();
    });
    assert_eq!(out[31], 31.0 * (CALLS - 1) as f64);
    assert_eq!(per_call, 0.0);
    let per_call = allocations_per_call("Kernel::call (f64[:], &mut f64[:], f64) -> None", |i| {
        scale.call((x.slice(s![32..]), &mut out, i as f64)).unwrap();
    });
    assert_eq!(out[0], 32.0 * (CALLS - 1) as f64);
    assert_eq!(per_call, 0.0);
}

// ---- The cache capacity ----

const POLY: &str = "def poly(x):\n    return x * 3 + 1\n";

/// Calls `poly` with a scalar of signature `index` (0 to 4: f64, f32, i64,
/// i32, i16) and checks the result.
fn call_poly(kernel: &Kernel, index: usize, x: i16) {
    let expected = 3 * i64::from(x) + 1;
    let result = match index {
        0 => f64::try_from(kernel.call((f64::from(x),)).unwrap()).unwrap() as i64,
        1 => f32::try_from(kernel.call((f32::from(x),)).unwrap()).unwrap() as i64,
        2 => i64::try_from(kernel.call((i64::from(x),)).unwrap()).unwrap(),
        3 => i64::from(i32::try_from(kernel.call((i32::from(x),)).unwrap()).unwrap()),
        _ => i64::from(i16::try_from(kernel.call((x,)).unwrap()).unwrap()),
    };
    assert_eq!(result, expected, "signature {index}, x = {x}");
}

#[test]
fn a_cache_capacity_evicts_the_least_recently_used_signature() {
    let _serial = serial();
    let jit = Jit::with_options(Options { cache_capacity: Some(2), ..Options::default() });

    // Five signatures round-robin through a cache of two: every call but
    // the first (the typed handle's signature, just compiled) misses, since
    // the signature called next is always the oldest, evicted; the results
    // stay right and the cache never holds more than two.
    let module = jit.compile(POLY).unwrap();
    let poly = module.kernel("poly").unwrap();
    // A typed handle keeps its program, valid after the cache evicts it.
    let typed = poly.typed::<(f64,), f64>().unwrap();
    const ROUNDS: usize = 4;
    for round in 0..ROUNDS {
        for index in 0..5 {
            call_poly(&poly, index, (round * 5 + index) as i16);
            assert!(module.stats().cached <= 2, "{:?}", module.stats());
        }
    }
    let stats = module.stats();
    eprintln!("capacity 2, 5 signatures round-robin, {ROUNDS} rounds: {stats:?}");
    let calls = ROUNDS as u64 * 5;
    assert_eq!((stats.misses, stats.hits), (1 + (calls - 1), 1), "{stats:?}");
    assert_eq!(stats.evictions, stats.misses - 2, "{stats:?}");
    assert_eq!(stats.cached, 2);
    assert_eq!(typed.call((2.5,)).unwrap(), 8.5);

    // An evicted program no caller holds is dropped, machine code and all.
    let module = jit.compile(POLY).unwrap();
    let f64_program = module.compiled("poly", &[Type::Scalar(ScalarType::F64)], &[kernjit::Layout::Any]).unwrap();
    let dropped = Arc::downgrade(&f64_program);
    drop(f64_program);
    let poly = module.kernel("poly").unwrap();
    for index in 1..4 {
        call_poly(&poly, index, 3);
    }
    assert_eq!(module.stats().evictions, 2);
    assert!(dropped.upgrade().is_none(), "the evicted f64 program is still alive");

    // Least recently used, not first in: `a` used after `b` survives `c`.
    // `first` calls `a` twice; the second call is answered by its memo of
    // the last call, which still counts as a use.
    let module = jit.compile(POLY).unwrap();
    let (first, second) = (module.kernel("poly").unwrap(), module.kernel("poly").unwrap());
    call_poly(&first, 0, 1);
    call_poly(&second, 1, 1);
    call_poly(&first, 0, 2);
    call_poly(&second, 2, 1);
    assert_eq!((module.stats().misses, module.stats().evictions), (3, 1));
    call_poly(&second, 0, 3);
    assert_eq!(module.stats().misses, 3, "f64 was evicted: {:?}", module.stats());
    call_poly(&second, 1, 2);
    assert_eq!(module.stats().misses, 4, "f32 was kept: {:?}", module.stats());

    // Without a capacity every signature stays.
    let module = Jit::new().compile(POLY).unwrap();
    let poly = module.kernel("poly").unwrap();
    for round in 0..ROUNDS {
        for index in 0..5 {
            call_poly(&poly, index, (round * 5 + index) as i16);
        }
    }
    let stats = module.stats();
    assert_eq!((stats.misses, stats.evictions, stats.cached), (5, 0, 5), "{stats:?}");
}
