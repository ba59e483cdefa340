//! Cranelift's half of a compile: machine code for a batch of translated
//! functions, on more than one core when the batch is worth splitting.
//!
//! [`compile`] takes the functions `lower` translated (a kernel, its
//! out-of-line callees, its `prange` bodies and the entry trampoline) and
//! returns each one's machine code and relocations, which `lower` then hands
//! to the `JITModule` with `define_function_bytes`. Functions are
//! independent until linking, so when there is more than one sizeable
//! function, scoped threads take them largest first; the result does not
//! depend on which thread compiled what.

use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::Function;
use cranelift_codegen::isa::TargetIsa;
use cranelift_codegen::Context;
use cranelift_module::{FuncId, ModuleReloc};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

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

/// Instructions below which a function is not worth a thread of its own:
/// compiling it takes about as long as starting and joining one (tens of
/// microseconds).
const MIN_PARALLEL_INSTS: usize = 150;

/// Compiles every job, in parallel when more than one of them is sizeable
/// and the machine has more than one core. The results are in job order.
pub fn compile(isa: &dyn TargetIsa, jobs: Vec<Job>, keep_asm: bool) -> Result<Vec<Compiled>, String> {
    let sizeable = jobs.iter().filter(|job| job.func.dfg.num_insts() >= MIN_PARALLEL_INSTS).count();
    let threads = sizeable.min(cores());
    if threads <= 1 {
        let mut context = Context::new();
        return jobs.into_iter().map(|job| compile_one(isa, &mut context, job, keep_asm)).collect();
    }

    // Largest first, so that the longest job never starts last.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&index| std::cmp::Reverse(jobs[index].func.dfg.num_insts()));
    let count = jobs.len();
    let jobs: Vec<Mutex<Option<Job>>> = jobs.into_iter().map(|job| Mutex::new(Some(job))).collect();
    let results: Vec<Mutex<Option<Result<Compiled, String>>>> = (0..count).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        let mut context = Context::new();
        loop {
            let taken = next.fetch_add(1, Ordering::Relaxed);
            let Some(&index) = order.get(taken) else { break };
            let job = lock(&jobs[index]).take().expect("each job is taken once");
            let result = compile_one(isa, &mut context, job, keep_asm);
            *lock(&results[index]) = Some(result);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(work);
        }
        work();
    });
    results
        .into_iter()
        .map(|slot| slot.into_inner().unwrap_or_else(|e| e.into_inner()).expect("every job ran"))
        .collect()
}

/// A mutex's contents, also after a panic elsewhere (which `compile`'s
/// scope re-raises anyway).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
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
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
