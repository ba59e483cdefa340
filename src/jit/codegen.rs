//! Cranelift's half of a compile: machine code for the translated functions
//! of a program, on more than one core when there is more than one.
//!
//! `lower` pushes each function into a [`Stream`] as soon as it is
//! translated (a kernel, its out-of-line callees, its `prange` bodies and
//! the entry trampoline, if any); a sizeable one starts compiling on a
//! long-lived helper thread at once, while the calling thread translates
//! the rest.
//! [`Stream::finish`] returns each function's machine code and relocations,
//! which `lower` then hands to the `JITModule` with `define_function_bytes`.
//! Functions are independent until linking: the result does not depend on
//! which thread compiled what.

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::Function;
use cranelift_codegen::isa::{OwnedTargetIsa, TargetIsa};
use cranelift_codegen::Context;
use cranelift_module::{FuncId, ModuleReloc};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock};

/// One translated function, ready for Cranelift.
pub struct Job {
    pub id: FuncId,
    pub func: Function,
    /// What it is, for listings.
    pub label: String,
}

/// One function's machine code.
pub struct Compiled {
    pub id: FuncId,
    pub label: String,
    pub bytes: Vec<u8>,
    pub alignment: u64,
    pub relocs: Vec<ModuleReloc>,
    /// The Cranelift IR as text, when asked for.
    pub clif: Option<String>,
    /// Cranelift's disassembly, when asked for.
    pub listing: Option<String>,
}

/// Instructions below which a function is not worth another thread:
/// compiling it takes about as long as handing it over. (Measured over the
/// bench kernels with `examples/compile_loop.rs`: 60 beats 20, 40, 100 and
/// 150; at 150 the parent of a `prange` body, 60–150 instructions, compiled
/// after the body on one core: `mandelbrot` 0.89 ms against 0.65 ms.)
const MIN_PARALLEL_INSTS: usize = 60;

/// Functions handed to Cranelift as they are translated. A sizeable one
/// (at least `MIN_PARALLEL_INSTS` instructions) goes to a helper thread at
/// once, so that it compiles while the calling thread translates the rest;
/// [`Stream::finish`] compiles on the calling thread what no helper took
/// and returns the results in the order the jobs came. The code does not
/// depend on which thread compiled what.
pub struct Stream {
    shared: Arc<Shared>,
}

struct Shared {
    isa: OwnedTargetIsa,
    keep_clif: bool,
    keep_asm: bool,
    /// Jobs not yet taken, with their position in the stream.
    queue: Mutex<std::collections::VecDeque<(usize, Job, Option<String>)>>,
    /// Per job pushed: its result, once compiled.
    results: Mutex<Vec<Option<Result<Compiled, String>>>>,
    /// Signalled when a result is stored.
    done: Condvar,
}

impl Stream {
    /// With `keep_clif`, each result keeps its function's Cranelift IR as
    /// text; with `keep_asm`, its disassembly.
    pub fn new(isa: &OwnedTargetIsa, keep_clif: bool, keep_asm: bool) -> Stream {
        Stream {
            shared: Arc::new(Shared {
                isa: isa.clone(),
                keep_clif,
                keep_asm,
                queue: Mutex::new(std::collections::VecDeque::new()),
                results: Mutex::new(Vec::new()),
                done: Condvar::new(),
            }),
        }
    }

    /// Queues `job`, and hands a sizeable one to a helper thread (on a
    /// machine with one core, it compiles here and now).
    pub fn push(&self, job: Job) {
        let clif = self.shared.keep_clif.then(|| job.func.display().to_string());
        let sizeable = job.func.dfg.num_insts() >= MIN_PARALLEL_INSTS;
        let index = {
            let mut results = lock(&self.shared.results);
            results.push(None);
            results.len() - 1
        };
        lock(&self.shared.queue).push_back((index, job, clif));
        if sizeable && cores() > 1 {
            let shared = Arc::clone(&self.shared);
            submit(Box::new(move || while shared.compile_next() {}));
        }
    }

    /// Every job's machine code, in the order pushed.
    pub fn finish(&self) -> Result<Vec<Compiled>, String> {
        while self.shared.compile_next() {}
        // Wait for jobs a helper took and is still compiling.
        let mut results = lock(&self.shared.results);
        while results.iter().any(Option::is_none) {
            results = self.shared.done.wait(results).unwrap_or_else(|e| e.into_inner());
        }
        results.iter_mut().map(|slot| slot.take().expect("every job ran")).collect()
    }
}

impl Shared {
    /// Takes and compiles the oldest queued job; false if there was none.
    fn compile_next(&self) -> bool {
        let Some((index, job, clif)) = lock(&self.queue).pop_front() else { return false };
        with_context(|context| {
            // A panic in Cranelift becomes this job's error, so that the
            // waiting thread is never left waiting.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                compile_one(&*self.isa, context, job, self.keep_asm)
            }))
            .unwrap_or_else(|_| Err("the code generator panicked".to_string()))
            .map(|compiled| Compiled { clif, ..compiled });
            lock(&self.results)[index] = Some(result);
        });
        self.done.notify_all();
        true
    }
}

type Task = Box<dyn FnOnce() + Send>;

/// Starts the compile helper threads now rather than in the first compile
/// that needs them (`lower::prepare`).
pub fn start_helpers() {
    if cores() > 1 {
        helpers();
    }
}

/// Hands `task` to the compile helper threads; runs it here if they could
/// not be started.
fn submit(task: Task) {
    match helpers() {
        Some(sender) => {
            if let Err(mpsc::SendError(task)) = lock(sender).send(task) {
                task();
            }
        }
        None => task(),
    }
}

/// The compile helper threads' queue, started on first use (one thread per
/// core but the caller's); `None` if none could be started.
fn helpers() -> &'static Option<Mutex<mpsc::Sender<Task>>> {
    static HELPERS: OnceLock<Option<Mutex<mpsc::Sender<Task>>>> = OnceLock::new();
    HELPERS.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Task>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut started = 0;
        for k in 1..cores() {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new().name(format!("kernjit-compile-{k}")).spawn(move || loop {
                let task = lock(&receiver).recv();
                match task {
                    Ok(task) => task(),
                    Err(_) => break,
                }
            });
            started += spawned.is_ok() as usize;
        }
        (started > 0).then(|| Mutex::new(sender))
    })
}

/// Runs `f` with this thread's Cranelift context, kept from one compile to
/// the next: its buffers (and the register allocator's) are reused rather
/// than allocated again for every function.
fn with_context<R>(f: impl FnOnce(&mut Context) -> R) -> R {
    thread_local! {
        static CONTEXT: std::cell::RefCell<Option<Context>> = const { std::cell::RefCell::new(None) };
    }
    CONTEXT.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => f(slot.get_or_insert_with(Context::new)),
        // Not reentrant in practice; a fresh context if it ever were.
        Err(_) => f(&mut Context::new()),
    })
}

/// A mutex's contents, also after a panic elsewhere (which `compile`'s
/// scope re-raises anyway).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Compiles one function on this thread, without a listing.
pub fn compile_single(isa: &dyn TargetIsa, job: Job) -> Result<Compiled, String> {
    with_context(|context| compile_one(isa, context, job, false))
}

fn compile_one(isa: &dyn TargetIsa, context: &mut Context, job: Job, keep_asm: bool) -> Result<Compiled, String> {
    context.clear();
    context.set_disasm(keep_asm);
    context.func = job.func;
    context.compile(isa, &mut ControlPlane::default()).map_err(|e| format!("{:?}", e.inner))?;
    let code = context.compiled_code().expect("compiled above");
    let alignment = code.buffer.alignment as u64;
    let bytes = code.code_buffer().to_vec();
    let listing = if keep_asm { Some(code.vcode.clone().unwrap_or_default()) } else { None };
    let relocs =
        code.buffer.relocs().iter().map(|reloc| ModuleReloc::from_mach_reloc(reloc, &context.func, job.id)).collect();
    Ok(Compiled { id: job.id, label: job.label, bytes, alignment, relocs, clif: None, listing })
}

/// The cores this process may use (read once: it looks at cgroup limits).
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cranelift_codegen::ir::{types, AbiParam, InstBuilder, Signature, UserFuncName};
    use cranelift_codegen::isa::CallConv;
    use cranelift_codegen::settings::{self, Configurable};
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

    /// `f(x) = ((x * 3 + 1) * 3 + 2) ...`, `terms` steps long.
    fn chain(isa: &dyn TargetIsa, terms: i64) -> Function {
        let mut signature = Signature::new(CallConv::SystemV);
        signature.params.push(AbiParam::new(types::I64));
        signature.returns.push(AbiParam::new(types::I64));
        let mut func = Function::with_name_signature(UserFuncName::default(), signature);
        let mut context = FunctionBuilderContext::new();
        let mut builder = FunctionBuilder::new(&mut func, &mut context);
        let block = builder.create_block();
        builder.append_block_params_for_function_params(block);
        builder.switch_to_block(block);
        builder.seal_block(block);
        let mut value = builder.block_params(block)[0];
        for term in 0..terms {
            let tripled = builder.ins().imul_imm_s(value, 3);
            value = builder.ins().iadd_imm_s(tripled, term);
        }
        builder.ins().return_(&[value]);
        builder.finalize(isa.frontend_config());
        func
    }

    fn isa() -> OwnedTargetIsa {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").unwrap();
        cranelift_native::builder().unwrap().finish(settings::Flags::new(flags)).unwrap()
    }

    #[test]
    fn streamed_compiles_give_the_code_of_serial_ones_in_job_order() {
        let isa = isa();
        let sizes = [400, 5, 300, 200, 90];
        let jobs = || {
            sizes.iter().enumerate().map(|(k, &n)| Job {
                id: FuncId::from_u32(k as u32),
                func: chain(&*isa, n),
                label: format!("chain {n}"),
            })
        };
        let serial: Vec<Vec<u8>> =
            with_context(|context| jobs().map(|job| compile_one(&*isa, context, job, false).unwrap().bytes).collect());
        for _ in 0..20 {
            let stream = Stream::new(&isa, false, false);
            for job in jobs() {
                stream.push(job);
            }
            let streamed = stream.finish().unwrap();
            let ids: Vec<u32> = streamed.iter().map(|code| code.id.as_u32()).collect();
            assert_eq!(ids, [0, 1, 2, 3, 4]);
            let bytes: Vec<Vec<u8>> = streamed.into_iter().map(|code| code.bytes).collect();
            assert_eq!(bytes, serial);
        }
    }

    /// Streams finished from several threads at once (sharing the helper
    /// threads) all complete with their own code, an empty stream included.
    #[test]
    fn concurrent_streams_each_get_their_own_code() {
        let isa = isa();
        let sizes = [300, 80, 10];
        let serial: Vec<Vec<u8>> = with_context(|context| {
            sizes
                .iter()
                .map(|&n| {
                    let job = Job { id: FuncId::from_u32(0), func: chain(&*isa, n), label: String::new() };
                    compile_one(&*isa, context, job, false).unwrap().bytes
                })
                .collect()
        });
        assert!(Stream::new(&isa, false, false).finish().unwrap().is_empty());
        std::thread::scope(|scope| {
            for thread in 0..6 {
                let (isa, serial) = (&isa, &serial);
                scope.spawn(move || {
                    for round in 0..5 {
                        let stream = Stream::new(isa, false, false);
                        // Rotate the order so that threads push different jobs first.
                        let order: Vec<usize> = (0..sizes.len()).map(|k| (k + thread + round) % sizes.len()).collect();
                        for (position, &k) in order.iter().enumerate() {
                            let id = FuncId::from_u32(position as u32);
                            stream.push(Job { id, func: chain(&**isa, sizes[k]), label: String::new() });
                        }
                        let streamed = stream.finish().unwrap();
                        for (code, &k) in streamed.iter().zip(&order) {
                            assert_eq!(code.bytes, serial[k]);
                        }
                    }
                });
            }
        });
    }
}
