//! Checked loop copies, compiled on first use.
//!
//! A versioned loop (`lower.rs`, `versioned_loop`) checks the indices it can
//! before it starts and then runs a copy of itself without those checks; when
//! a check before the loop fails, the fully checked copy runs instead, which
//! in practice happens only on the way to an index error. Compiling those
//! checked copies with their functions was a quarter of all compile time, so
//! each one is translated with its loop (the translation needs the state
//! around the loop) but handed to Cranelift only when a call first takes it.
//!
//! The fast code stores the loop's bounds and the locals the loop uses into
//! an environment and calls [`kj_checked_loop`] with its [`CheckedLoop`];
//! the checked copy, a function `(ctx, env) -> status` of its own, runs the
//! loop and stores the locals it assigned back into the environment.

use super::abi::{self, CallContext, ErrorSlot};
use super::codegen;
use cranelift_codegen::ir;
use cranelift_jit::JITModule;
use cranelift_module::Module;
use std::sync::{Arc, Mutex, OnceLock};

/// Owns a program's code; shared between the program and its checked loops.
pub type SharedModule = Arc<Mutex<Option<JITModule>>>;

/// The environment's first slots: the loop's `start`, `step`, first and end
/// trip; the locals follow, one 8-byte slot per Cranelift value.
pub const ENV_LOCALS: usize = 4;

/// The checked copy of one versioned loop, and its code once compiled.
pub struct CheckedLoop {
    /// The translated function, until it is compiled.
    func: Mutex<Option<ir::Function>>,
    /// The module its parent's code is in, which it joins (set when the
    /// program is assembled, `attach`).
    module: OnceLock<SharedModule>,
    /// Its address, or why it could not be compiled.
    code: OnceLock<Result<usize, String>>,
    /// Where a failure to compile it is reported (the loop's position).
    site: u32,
}

/// A checked copy's type: `(ctx, env) -> status` (`abi.rs` statuses).
type CheckedLoopFn = unsafe extern "C" fn(*mut CallContext, *mut u64) -> i8;

impl CheckedLoop {
    /// A loop whose errors are reported at `site`; its function follows
    /// (`set_function`), before the code that calls it can run.
    pub fn new(site: u32) -> Box<CheckedLoop> {
        Box::new(CheckedLoop { func: Mutex::new(None), module: OnceLock::new(), code: OnceLock::new(), site })
    }

    pub fn set_function(&self, func: ir::Function) {
        *lock(&self.func) = Some(func);
    }

    /// The translated function (for listings), if not compiled yet.
    pub fn function(&self) -> Option<ir::Function> {
        lock(&self.func).clone()
    }

    /// Ties the loop to the module holding its parent's code.
    pub fn attach(&self, module: &SharedModule) {
        let _ = self.module.set(Arc::clone(module));
    }

    /// Its code, compiled by the first caller; callers racing it wait.
    fn code(&self) -> Result<CheckedLoopFn, &str> {
        let code = self.code.get_or_init(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.compile()))
                .unwrap_or_else(|_| Err("the code generator panicked".to_string()))
        });
        match code {
            // SAFETY: the address of a finalized function of this type.
            Ok(address) => Ok(unsafe { std::mem::transmute::<usize, CheckedLoopFn>(*address) }),
            Err(message) => Err(message),
        }
    }

    /// Compiles the function into the parent's module, on a thread of its
    /// own: the caller may be deep in a recursion, with little stack left.
    fn compile(&self) -> Result<usize, String> {
        let func = lock(&self.func).take().ok_or("compiled once already")?;
        let shared = self.module.get().ok_or("not attached to a module")?;
        let work = move || -> Result<usize, String> {
            let mut guard = lock(shared);
            let module = guard.as_mut().ok_or("the program was freed")?;
            let id = module.declare_anonymous_function(&func.signature).map_err(|e| e.to_string())?;
            let label = "checked loop".to_string();
            let code = codegen::compile_single(module.isa(), codegen::Job { id, func, label })?;
            module.define_function_bytes(id, code.alignment, &code.bytes, &code.relocs).map_err(|e| e.to_string())?;
            module.finalize_definitions().map_err(|e| e.to_string())?;
            Ok(module.get_finalized_function(id) as usize)
        };
        std::thread::scope(|scope| {
            let thread = std::thread::Builder::new().name("kernjit-checked-loop".to_string()).stack_size(16 << 20);
            match thread.spawn_scoped(scope, work) {
                Ok(handle) => handle.join().unwrap_or_else(|_| Err("the code generator panicked".to_string())),
                Err(e) => Err(format!("no thread to compile on: {e}")),
            }
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs a checked loop copy (compiling it on first use): the fast code's
/// fallback when a check hoisted before a versioned loop fails. Returns its
/// status; a copy that cannot be compiled fails with `ERROR_INTERNAL` at the
/// loop.
///
/// # Safety
///
/// `ctx` points to a live [`CallContext`], `record` to a [`CheckedLoop`] of
/// the running program, and `env` to the environment its function expects.
pub unsafe extern "C" fn kj_checked_loop(ctx: *mut CallContext, record: *const CheckedLoop, env: *mut u64) -> i8 {
    if ctx.is_null() || record.is_null() {
        return abi::STATUS_ERROR;
    }
    // SAFETY: `record` lives as long as the program (this function's contract).
    let record = unsafe { &*record };
    match record.code() {
        // SAFETY: the function's contract is this one's.
        Ok(function) => unsafe { function(ctx, env) },
        Err(_) => {
            // SAFETY: `ctx` points to a live context.
            unsafe {
                (*ctx).error = ErrorSlot { kind: abi::ERROR_INTERNAL, site: record.site, ..ErrorSlot::default() }
            };
            abi::STATUS_ERROR
        }
    }
}
