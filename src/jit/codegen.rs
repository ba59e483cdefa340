//! Cranelift's half of a compile: machine code for a batch of translated
//! functions, on more than one core when the batch is worth splitting.
//!
//! [`compile`] takes the functions `lower` translated (a kernel, its
//! out-of-line callees, its `prange` bodies and the entry trampoline) and
//! returns each one's machine code and relocations, which `lower` then hands
//! to the `JITModule` with `define_function_bytes`. Functions are
//! independent until linking, so when there is more than one sizeable
//! function, the calling thread and long-lived helper threads take them
//! largest first; the result does not depend on which thread compiled what.

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::Function;
use cranelift_codegen::isa::{OwnedTargetIsa, TargetIsa};
use cranelift_codegen::Context;
use cranelift_module::{FuncId, ModuleReloc};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock};

/// One translated function, ready for Cranelift.
pub struct Job {
    pub id: FuncId,
    pub func: Function,
}

/// One function's machine code.
pub struct Compiled {
    pub id: FuncId,
    pub bytes: Vec<u8>,
    pub alignment: u64,
    pub relocs: Vec<ModuleReloc>,
    /// Cranelift's disassembly, when asked for.
    pub listing: Option<String>,
}

/// Instructions below which a function is not worth another thread:
/// compiling it takes about as long as handing it over. (Measured over the
/// bench kernels with `examples/compile_loop.rs`: 60 beats 20, 40, 100 and
/// 150; at 150 the parent of a `prange` body, 60–150 instructions, compiled
/// after the body on one core: `mandelbrot` 0.89 ms against 0.65 ms.)
const MIN_PARALLEL_INSTS: usize = 60;

/// Compiles every job, in parallel when more than one of them is sizeable
/// and the machine has more than one core. The results are in job order.
pub fn compile(isa: &OwnedTargetIsa, jobs: Vec<Job>, keep_asm: bool) -> Result<Vec<Compiled>, String> {
    let sizeable = jobs.iter().filter(|job| job.func.dfg.num_insts() >= MIN_PARALLEL_INSTS).count();
    let helpers = sizeable.min(cores()).saturating_sub(1);
    if helpers == 0 {
        return with_context(|context| {
            jobs.into_iter().map(|job| compile_one(&**isa, context, job, keep_asm)).collect()
        });
    }

    // Largest first, so that the longest job never starts last.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&index| std::cmp::Reverse(jobs[index].func.dfg.num_insts()));
    let count = jobs.len();
    let batch = Arc::new(Batch {
        isa: isa.clone(),
        keep_asm,
        order,
        next: AtomicUsize::new(0),
        jobs: jobs.into_iter().map(|job| Mutex::new(Some(job))).collect(),
        results: Mutex::new((0..count).map(|_| None).collect()),
        done: Condvar::new(),
    });
    for _ in 0..helpers {
        let batch = Arc::clone(&batch);
        submit(Box::new(move || batch.work()));
    }
    batch.work();
    // Wait for jobs a helper took and is still compiling (none if the
    // helpers were busy elsewhere and this thread did everything).
    let mut results = lock(&batch.results);
    while results.iter().any(Option::is_none) {
        results = batch.done.wait(results).unwrap_or_else(|e| e.into_inner());
    }
    results.iter_mut().map(|slot| slot.take().expect("every job ran")).collect()
}

/// One call of [`compile`]'s jobs, shared with the helper threads.
struct Batch {
    isa: OwnedTargetIsa,
    keep_asm: bool,
    /// Job indices, largest first.
    order: Vec<usize>,
    /// The next position in `order` to take.
    next: AtomicUsize,
    jobs: Vec<Mutex<Option<Job>>>,
    results: Mutex<Vec<Option<Result<Compiled, String>>>>,
    /// Signalled when a result is stored.
    done: Condvar,
}

impl Batch {
    /// Takes and compiles jobs until none is left.
    fn work(&self) {
        with_context(|context| loop {
            let taken = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(&index) = self.order.get(taken) else { break };
            let job = lock(&self.jobs[index]).take().expect("each job is taken once");
            // A panic in Cranelift becomes this job's error, so that the
            // waiting thread is never left waiting.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                compile_one(&*self.isa, context, job, self.keep_asm)
            }))
            .unwrap_or_else(|_| Err("the code generator panicked".to_string()));
            lock(&self.results)[index] = Some(result);
            self.done.notify_all();
        })
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

/// Compiles one function on this thread.
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
    Ok(Compiled { id: job.id, bytes, alignment, relocs, listing })
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
    fn parallel_compiles_give_the_code_of_serial_ones_in_job_order() {
        let isa = isa();
        let sizes = [400, 5, 300, 200, 90];
        let jobs = || {
            sizes
                .iter()
                .enumerate()
                .map(|(k, &n)| Job { id: FuncId::from_u32(k as u32), func: chain(&*isa, n) })
                .collect()
        };
        let serial: Vec<Vec<u8>> = with_context(|context| {
            let jobs: Vec<Job> = jobs();
            jobs.into_iter().map(|job| compile_one(&*isa, context, job, false).unwrap().bytes).collect()
        });
        for _ in 0..20 {
            let parallel = compile(&isa, jobs(), false).unwrap();
            let ids: Vec<u32> = parallel.iter().map(|code| code.id.as_u32()).collect();
            assert_eq!(ids, [0, 1, 2, 3, 4]);
            let bytes: Vec<Vec<u8>> = parallel.into_iter().map(|code| code.bytes).collect();
            assert_eq!(bytes, serial);
        }
    }
}
