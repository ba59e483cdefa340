//! The thread pool that runs `prange` loops: one per process, started on
//! first use, growing to the largest thread count any call asks for.
//!
//! Entry point [`run_blocks`]: run `body(first, end)` over chunks of the
//! blocks `0..blocks` on up to `threads` threads (the calling thread is one
//! of them), and return the failure of the lowest failing chunk.
//!
//! # Scheduling
//!
//! A call posts a *region*; the caller and the idle workers that join it
//! claim chunks of consecutive blocks from one atomic counter, so chunks
//! are handed out in increasing order, each to whichever thread is free
//! (irregular loops balance themselves). A chunk is about 1/16 of a thread's
//! share: small enough to balance, large enough that claiming costs nothing.
//!
//! # Errors are deterministic
//!
//! A chunk runs its blocks in order and stops at its first failure. When a
//! chunk fails, no chunk after it is started any more, but every chunk before
//! it (all already claimed, since claims are in order) runs to its end. The
//! failure returned is that of the lowest failing chunk: the first failure in
//! block order, whatever the number of threads.
//!
//! # Lifetimes
//!
//! `body` borrows the caller's stack. A worker joins a region by raising its
//! `active` count *before* claiming, and the caller returns only after every
//! chunk was claimed (or the region stopped) and `active` fell to zero; a
//! worker arriving later claims nothing, so it never calls `body`.
//!
//! # Idle workers
//!
//! After a region, a worker spins for [`SPIN`] watching for new regions
//! (so back-to-back parallel loops start in about a microsecond), then
//! sleeps on a condition variable until a region is posted.
//!
//! Nested use runs serially: a thread already running a chunk (a worker, or
//! a caller inside its own region) runs any inner region's blocks itself.
//!
//! # How many threads
//!
//! A program compiled with `Options::threads` uses that many. Others use
//! [`default_threads`]: [`set_default_threads`] if called, else the calling
//! thread's [`AmbientThreads`] (a host's per-call count: the Python binding
//! reads `os.environ` on each call, since Ray sets `OMP_NUM_THREADS` per
//! task in reused workers), else [`configured_threads`], read once from the
//! environment (`KERNJIT_NUM_THREADS`, `OMP_NUM_THREADS`, every core).

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How long an idle worker watches for new work before it sleeps.
const SPIN: Duration = Duration::from_micros(100);
/// How long a caller spins for its helpers to finish before it sleeps.
const CALLER_SPIN: Duration = Duration::from_micros(50);
/// Chunks per participating thread.
const CHUNKS_PER_THREAD: u64 = 16;
/// The stack of a worker thread: as large as the one recursive programs get
/// on the calling thread (only touched pages cost memory).
pub const WORKER_STACK: usize = 256 << 20;
/// Most threads a call may use.
pub const MAX_THREADS: usize = 1024;

/// Why a chunk failed.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure<E> {
    /// The body returned this error.
    Error(E),
    /// The body panicked (a kernjit bug; the panic was caught).
    Panic,
}

thread_local! {
    /// Set while this thread runs a chunk of some region.
    static IN_REGION: Cell<bool> = const { Cell::new(false) };
    /// For worker threads: the lowest address their stack may reach.
    static STACK_END: Cell<Option<usize>> = const { Cell::new(None) };
    /// The count an [`AmbientThreads`] guard set on this thread (0: none).
    static AMBIENT: Cell<usize> = const { Cell::new(0) };
}

/// The thread count of `prange` loops whose program has no fixed
/// `Options::threads`: the count [`set_default_threads`] set, else the
/// calling thread's ambient count ([`AmbientThreads`], which a host sets
/// around a call), else [`configured_threads`].
pub fn default_threads() -> usize {
    choose_threads(THREADS_OVERRIDE.load(SeqCst), AMBIENT.with(Cell::get), configured_threads)
}

/// [`default_threads`]' precedence (0: not set).
fn choose_threads(overridden: usize, ambient: usize, configured: impl FnOnce() -> usize) -> usize {
    match (overridden, ambient) {
        (0, 0) => configured(),
        (0, ambient) => ambient,
        (overridden, _) => overridden,
    }
}

/// Set by [`set_default_threads`] (0: not set).
static THREADS_OVERRIDE: AtomicUsize = AtomicUsize::new(0);

/// The count [`set_default_threads`] set, if any.
pub fn threads_override() -> Option<usize> {
    match THREADS_OVERRIDE.load(SeqCst) {
        0 => None,
        threads => Some(threads),
    }
}

/// The thread count the environment configures: `KERNJIT_NUM_THREADS`, else
/// `OMP_NUM_THREADS` (so kernjit inside Ray or MPI does not oversubscribe),
/// else every core ([`threads_from_env`]). Read once per process, from the
/// C environment; hosts whose environment changes while they run (a Ray
/// worker, which sets `OMP_NUM_THREADS` per task) read theirs per call and
/// hand the count over with [`AmbientThreads`].
pub fn configured_threads() -> usize {
    static CONFIGURED: OnceLock<usize> = OnceLock::new();
    *CONFIGURED.get_or_init(|| {
        let kernjit = std::env::var("KERNJIT_NUM_THREADS").ok();
        let omp = std::env::var("OMP_NUM_THREADS").ok();
        threads_from_env(kernjit.as_deref(), omp.as_deref())
    })
}

/// The thread count for these values of `KERNJIT_NUM_THREADS` and
/// `OMP_NUM_THREADS` (`None`: unset): the first that is a count, else
/// [`all_cores`]; at most [`MAX_THREADS`]. Unparsable or zero values are
/// skipped; `OMP_NUM_THREADS` may list one count per nesting level (`4,2`),
/// of which the first counts.
pub fn threads_from_env(kernjit: Option<&str>, omp: Option<&str>) -> usize {
    kernjit
        .and_then(parse_thread_count)
        .or_else(|| omp.and_then(parse_thread_count))
        .unwrap_or_else(all_cores)
        .clamp(1, MAX_THREADS)
}

/// A thread count as an environment variable writes it: `4`, ` 4 `, `4,2`.
pub fn parse_thread_count(value: &str) -> Option<usize> {
    value.split(',').next().unwrap_or("").trim().parse::<usize>().ok().filter(|&n| n > 0)
}

/// The cores this process may run on (read once: the call costs
/// microseconds).
pub fn all_cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map(usize::from).unwrap_or(1))
}

/// Sets the process-wide default thread count of later `prange` loops (as
/// Numba's `set_num_threads`): `threads` must be between 1 and
/// [`configured_threads`]. It takes precedence over the environment and
/// over [`AmbientThreads`]; programs compiled with a fixed
/// `Options::threads` keep theirs.
pub fn set_default_threads(threads: usize) -> Result<(), String> {
    set_default_threads_within(threads, configured_threads())
}

/// [`set_default_threads`] with another bound than [`configured_threads`]
/// (a host that reads its environment per call passes what it reads now).
pub fn set_default_threads_within(threads: usize, most: usize) -> Result<(), String> {
    if threads == 0 || threads > most {
        return Err(format!("the number of threads must be between 1 and {most}, got {threads}"));
    }
    THREADS_OVERRIDE.store(threads, SeqCst);
    Ok(())
}

/// The calling thread's default thread count for `prange` loops while this
/// guard lives, in place of [`configured_threads`] (below
/// [`set_default_threads`] in precedence). A host whose configuration
/// changes while the process runs sets it around each call: the Python
/// binding reads `os.environ` (Ray sets `OMP_NUM_THREADS` per task) and
/// enters the count before running a program with a parallel loop. Only
/// the thread that enters a parallel loop reads it (pool workers run any
/// nested loop serially), so nothing is shared between threads. Dropping
/// the guard restores the previous count.
#[must_use = "the count applies while the guard lives"]
pub struct AmbientThreads {
    previous: usize,
    /// Thread-bound: dropped on the thread that entered it.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl AmbientThreads {
    /// Makes `threads` (clamped to `1..=MAX_THREADS`) this thread's count.
    #[inline]
    pub fn enter(threads: usize) -> AmbientThreads {
        let previous = AMBIENT.with(|ambient| ambient.replace(threads.clamp(1, MAX_THREADS)));
        AmbientThreads { previous, _not_send: std::marker::PhantomData }
    }
}

impl Drop for AmbientThreads {
    #[inline]
    fn drop(&mut self) {
        AMBIENT.with(|ambient| ambient.set(self.previous));
    }
}

/// The lowest stack address code on this thread may use, if this is a pool
/// worker (whose stack the pool made); `None` on other threads.
pub fn worker_stack_end() -> Option<usize> {
    STACK_END.with(Cell::get)
}

/// Whether this thread is running a chunk of a region now.
pub fn in_region() -> bool {
    IN_REGION.with(Cell::get)
}

/// Runs `body(first, end)` over consecutive chunks of `0..blocks` on up to
/// `threads` threads, the calling thread included. Runs everything on the
/// calling thread, as one chunk, when `threads <= 1`, `blocks <= 1`, or the
/// thread already runs a chunk (nested use).
///
/// Returns the failure of the lowest failing chunk (see the module doc); a
/// panic in `body` is caught and reported as [`Failure::Panic`].
pub fn run_blocks<E: Send + 'static>(
    threads: usize,
    blocks: u64,
    body: &(dyn Fn(u64, u64) -> Result<(), E> + Sync),
) -> Result<(), Failure<E>> {
    let threads = threads.clamp(1, MAX_THREADS);
    if threads == 1 || blocks <= 1 || in_region() {
        return run_chunk(body, 0, blocks);
    }
    let pool = Pool::get();
    let helpers = threads - 1;
    pool.ensure_workers(helpers);
    let chunk = (blocks / (threads as u64 * CHUNKS_PER_THREAD)).max(1);
    // SAFETY: the region erases `body`'s lifetime. It is called only by
    // threads that joined the region (raised `active`) and claimed a chunk;
    // this function returns only when no chunk is left to claim and
    // `active` is zero (`Region::wait`), so no call outlives the borrow.
    let body: &'static (dyn Fn(u64, u64) -> Result<(), E> + Sync) = unsafe { std::mem::transmute(body) };
    let region = Arc::new(Region {
        body,
        blocks,
        chunk,
        next: AtomicU64::new(0),
        stop_at: AtomicU64::new(u64::MAX),
        active: AtomicUsize::new(0),
        helper_seats: AtomicUsize::new(helpers),
        failure: Mutex::new(None),
        done: (Mutex::new(()), Condvar::new()),
    });
    pool.post(region.clone());
    region.participate();
    region.wait();
    pool.retire(&region);
    let failure = lock(&region.failure).take();
    match failure {
        Some((_, failure)) => Err(failure),
        None => Ok(()),
    }
}

/// Runs one chunk on this thread, marked as inside a region.
fn run_chunk<E>(body: &(dyn Fn(u64, u64) -> Result<(), E> + Sync), first: u64, end: u64) -> Result<(), Failure<E>> {
    let outer = IN_REGION.with(|flag| flag.replace(true));
    let outcome = catch_unwind(AssertUnwindSafe(|| body(first, end)));
    IN_REGION.with(|flag| flag.set(outer));
    match outcome {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(Failure::Error(error)),
        Err(_) => Err(Failure::Panic),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; recover anyway.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What workers see of a region: a chance to help.
trait Job: Send + Sync {
    /// Takes a helper seat if the region has one and work is left.
    fn try_join(&self) -> bool;
    /// Claims and runs chunks until none is left, then leaves.
    fn help(&self);
}

struct Region<E: 'static> {
    body: &'static (dyn Fn(u64, u64) -> Result<(), E> + Sync),
    blocks: u64,
    /// Blocks per chunk.
    chunk: u64,
    /// The next chunk to claim, in chunks.
    next: AtomicU64,
    /// The lowest failed chunk (`u64::MAX`: none): later chunks don't start.
    stop_at: AtomicU64,
    /// Threads between joining and leaving.
    active: AtomicUsize,
    /// Helper threads that may still join.
    helper_seats: AtomicUsize,
    /// The failure of the lowest failed chunk so far.
    failure: Mutex<Option<(u64, Failure<E>)>>,
    /// Signalled when `active` drops to zero.
    done: (Mutex<()>, Condvar),
}

impl<E: Send + 'static> Region<E> {
    fn chunks(&self) -> u64 {
        self.blocks.div_ceil(self.chunk)
    }

    /// Claims and runs chunks until none is left or the region stopped.
    fn participate(&self) {
        self.active.fetch_add(1, SeqCst);
        self.work();
        if self.active.fetch_sub(1, SeqCst) == 1 {
            let _guard = lock(&self.done.0);
            self.done.1.notify_all();
        }
    }

    fn work(&self) {
        let chunks = self.chunks();
        loop {
            let index = self.next.fetch_add(1, SeqCst);
            if index >= chunks || index > self.stop_at.load(SeqCst) {
                return;
            }
            let first = index * self.chunk;
            let end = first.saturating_add(self.chunk).min(self.blocks);
            if let Err(failure) = run_chunk(self.body, first, end) {
                let mut slot = lock(&self.failure);
                if slot.as_ref().is_none_or(|(lowest, _)| index < *lowest) {
                    *slot = Some((index, failure));
                }
                self.stop_at.fetch_min(index, SeqCst);
                return;
            }
        }
    }

    /// Waits until every thread that joined has left. Called by the caller
    /// after its own `participate`, so no chunk is left to claim.
    fn wait(&self) {
        let started = Instant::now();
        let mut spins = 0u32;
        while self.active.load(SeqCst) != 0 {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && started.elapsed() > CALLER_SPIN {
                let mut guard = lock(&self.done.0);
                while self.active.load(SeqCst) != 0 {
                    // The timeout only guards against a missed wake-up.
                    guard = match self.done.1.wait_timeout(guard, Duration::from_millis(1)) {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    };
                }
                return;
            }
        }
    }
}

impl<E: Send + 'static> Job for Region<E> {
    fn try_join(&self) -> bool {
        if self.next.load(SeqCst) >= self.chunks() || self.stop_at.load(SeqCst) != u64::MAX {
            return false;
        }
        self.helper_seats.fetch_update(SeqCst, SeqCst, |seats| seats.checked_sub(1)).is_ok()
    }

    fn help(&self) {
        self.participate();
    }
}

/// The process's workers and the regions they may join.
struct Pool {
    /// Regions with work left, oldest first.
    regions: Mutex<Vec<Arc<dyn Job>>>,
    /// Bumped whenever a region is posted.
    epoch: AtomicU64,
    /// Workers asleep (or about to sleep) on `wake`.
    sleepers: AtomicUsize,
    wake: (Mutex<()>, Condvar),
    /// Workers started so far.
    workers: Mutex<usize>,
    /// Set if a worker could not be started (then callers use fewer threads).
    spawn_failed: AtomicBool,
}

impl Pool {
    fn get() -> &'static Pool {
        static POOL: OnceLock<Pool> = OnceLock::new();
        POOL.get_or_init(|| Pool {
            regions: Mutex::new(Vec::new()),
            epoch: AtomicU64::new(0),
            sleepers: AtomicUsize::new(0),
            wake: (Mutex::new(()), Condvar::new()),
            workers: Mutex::new(0),
            spawn_failed: AtomicBool::new(false),
        })
    }

    /// Starts workers until there are `count`.
    fn ensure_workers(&'static self, count: usize) {
        let mut workers = lock(&self.workers);
        while *workers < count && !self.spawn_failed.load(SeqCst) {
            let spawned = std::thread::Builder::new()
                .name(format!("kernjit-worker-{}", *workers))
                .stack_size(WORKER_STACK)
                .spawn(move || self.worker_loop());
            match spawned {
                Ok(_) => *workers += 1,
                // The region runs on the threads there are.
                Err(_) => self.spawn_failed.store(true, SeqCst),
            }
        }
    }

    fn post(&self, region: Arc<dyn Job>) {
        lock(&self.regions).push(region);
        self.epoch.fetch_add(1, SeqCst);
        if self.sleepers.load(SeqCst) > 0 {
            let _guard = lock(&self.wake.0);
            self.wake.1.notify_all();
        }
    }

    fn retire<E: Send + 'static>(&self, region: &Arc<Region<E>>) {
        let address = Arc::as_ptr(region).cast::<u8>();
        lock(&self.regions).retain(|job| !std::ptr::eq(Arc::as_ptr(job).cast::<u8>(), address));
    }

    /// A region this worker may help with, taking a seat in it.
    fn find_job(&self) -> Option<Arc<dyn Job>> {
        lock(&self.regions).iter().find(|job| job.try_join()).cloned()
    }

    fn worker_loop(&self) {
        let marker = 0u8;
        let top = std::hint::black_box(std::ptr::addr_of!(marker)) as usize;
        // Room below the limit for runtime helpers and this loop's frames.
        STACK_END.with(|end| end.set(Some(top.saturating_sub(WORKER_STACK) + (256 << 10))));
        loop {
            let seen = self.epoch.load(SeqCst);
            if let Some(job) = self.find_job() {
                job.help();
                continue;
            }
            self.idle(seen);
        }
    }

    /// Returns once the epoch moved past `seen`: spinning first, then asleep.
    fn idle(&self, seen: u64) {
        let started = Instant::now();
        let mut spins = 0u32;
        while self.epoch.load(SeqCst) == seen {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(64) && started.elapsed() > SPIN {
                let mut guard = lock(&self.wake.0);
                self.sleepers.fetch_add(1, SeqCst);
                while self.epoch.load(SeqCst) == seen {
                    guard = match self.wake.1.wait(guard) {
                        Ok(guard) => guard,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                }
                self.sleepers.fetch_sub(1, SeqCst);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    fn sum_blocks(threads: usize, blocks: u64) -> u64 {
        let total = AtomicU64::new(0);
        let seen = Mutex::new(vec![0u8; blocks as usize]);
        run_blocks::<()>(threads, blocks, &|first, end| {
            for block in first..end {
                total.fetch_add(block, SeqCst);
                lock(&seen)[block as usize] += 1;
            }
            Ok(())
        })
        .unwrap();
        assert!(lock(&seen).iter().all(|&count| count == 1), "every block runs exactly once");
        total.load(SeqCst)
    }

    #[test]
    fn every_block_runs_once_for_any_thread_count() {
        for threads in [1, 2, 3, 8] {
            for blocks in [0, 1, 2, 7, 1024] {
                assert_eq!(sum_blocks(threads, blocks), blocks * blocks.saturating_sub(1) / 2);
            }
        }
    }

    #[test]
    fn the_lowest_failing_chunk_wins() {
        for threads in [1, 2, 3, 8] {
            for _ in 0..20 {
                let outcome = run_blocks(threads, 1024, &|first, end| {
                    for block in first..end {
                        if block % 100 == 37 {
                            return Err(block);
                        }
                    }
                    Ok(())
                });
                assert_eq!(outcome, Err(Failure::Error(37)), "{threads} threads");
            }
        }
    }

    #[test]
    fn chunks_after_a_failure_do_not_start() {
        let started = AtomicU64::new(0);
        let outcome = run_blocks(2, 1024, &|first, _| {
            started.fetch_add(1, SeqCst);
            if first == 0 {
                Err("first")
            } else {
                Ok(())
            }
        });
        assert_eq!(outcome, Err(Failure::Error("first")));
        // Only chunks claimed before the failure was seen ran.
        assert!(started.load(SeqCst) < 32);
    }

    #[test]
    fn panics_are_caught_and_the_pool_stays_usable() {
        let outcome = run_blocks::<()>(2, 64, &|first, _| if first >= 8 { panic!("boom") } else { Ok(()) });
        assert_eq!(outcome, Err(Failure::Panic));
        assert_eq!(sum_blocks(2, 100), 4950);
    }

    #[test]
    fn nested_regions_run_serially_on_the_calling_thread() {
        let inner_threads = Mutex::new(Vec::new());
        run_blocks::<()>(2, 8, &|_, _| {
            assert!(in_region());
            let me = std::thread::current().id();
            run_blocks::<()>(2, 8, &|_, _| {
                lock(&inner_threads).push(std::thread::current().id() == me);
                Ok(())
            })
            .unwrap();
            Ok(())
        })
        .unwrap();
        assert!(lock(&inner_threads).iter().all(|&same| same));
        assert!(!in_region());
    }

    #[test]
    fn regions_from_many_host_threads_at_once() {
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..50 {
                        assert_eq!(sum_blocks(3, 300), 300 * 299 / 2);
                    }
                });
            }
        });
    }

    #[test]
    fn thread_counts_from_the_environment() {
        assert_eq!(parse_thread_count("4"), Some(4));
        assert_eq!(parse_thread_count(" 3 "), Some(3));
        assert_eq!(parse_thread_count("4,2"), Some(4));
        for skipped in ["", "0", "-1", "two", ",2", "1.5"] {
            assert_eq!(parse_thread_count(skipped), None, "{skipped:?}");
        }
        assert_eq!(threads_from_env(Some("3"), Some("2")), 3, "KERNJIT_NUM_THREADS first");
        assert_eq!(threads_from_env(None, Some("2")), 2);
        assert_eq!(threads_from_env(Some("0"), Some("2")), 2, "a zero is skipped");
        assert_eq!(threads_from_env(Some("x"), Some("y")), all_cores());
        assert_eq!(threads_from_env(None, None), all_cores());
        assert_eq!(threads_from_env(Some("100000"), None), MAX_THREADS);
    }

    #[test]
    fn set_num_threads_then_ambient_then_configured() {
        let configured = || 7;
        assert_eq!(choose_threads(0, 0, configured), 7);
        assert_eq!(choose_threads(0, 2, configured), 2);
        assert_eq!(choose_threads(3, 2, configured), 3);
        assert_eq!(choose_threads(3, 0, configured), 3);
        assert!(set_default_threads_within(0, 4).is_err());
        assert!(set_default_threads_within(5, 4).is_err());
    }

    #[test]
    fn ambient_threads_are_the_calling_threads_and_nest() {
        // No test sets the process-wide override, so the ambient count shows.
        let outside = default_threads();
        assert_eq!(outside, configured_threads());
        {
            let _two = AmbientThreads::enter(2);
            assert_eq!(default_threads(), 2);
            {
                let _one = AmbientThreads::enter(1);
                assert_eq!(default_threads(), 1);
                // Another thread does not see it.
                assert_eq!(std::thread::spawn(default_threads).join().unwrap(), outside);
            }
            assert_eq!(default_threads(), 2);
            let _huge = AmbientThreads::enter(usize::MAX);
            assert_eq!(default_threads(), MAX_THREADS);
        }
        assert_eq!(default_threads(), outside);
        // A zero means one thread, not "unset".
        let _zero = AmbientThreads::enter(0);
        assert_eq!(default_threads(), 1);
    }

    #[test]
    fn workers_know_their_stack() {
        let ends = Mutex::new(Vec::new());
        run_blocks::<()>(2, 1024, &|_, _| {
            let marker = 0u8;
            let here = std::ptr::addr_of!(marker) as usize;
            if let Some(end) = worker_stack_end() {
                lock(&ends).push(here > end && here - end < WORKER_STACK);
            }
            std::thread::sleep(Duration::from_micros(50));
            Ok(())
        })
        .unwrap();
        assert!(lock(&ends).iter().all(|&inside| inside));
        assert_eq!(worker_stack_end(), None, "the calling thread is no worker");
    }
}
