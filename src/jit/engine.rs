//! A compiled program and the one place the host calls into machine code.
//!
//! [`CompiledProgram::compile`] lowers a typed program with Cranelift;
//! [`CompiledProgram::call`] marshals arguments into the ABI's slots, runs the
//! entry trampoline with a fresh [`runtime::CallRuntime`], and turns the
//! status and error slot back into a value or a [`RuntimeError`].

use super::lower::{self, LowerOptions};
use super::runtime::{self, CallRuntime, Site};
use crate::tir;
use crate::types::Type;
use crate::value::{RuntimeError, RuntimeErrorKind, Value};
use cranelift_jit::JITModule;
use std::sync::Mutex;

/// Machine code for one specialised program.
pub struct CompiledProgram {
    /// Address of `entry(ctx, args, results) -> i8` inside `module`'s memory.
    entry: usize,
    params: Vec<Type>,
    ret: Type,
    sites: Vec<Site>,
    /// Owns the code; freed on drop (nothing can call it afterwards).
    module: Mutex<Option<JITModule>>,
    /// The Cranelift IR, when compiled with `keep_clif`.
    pub clif: Option<String>,
}

/// The entry trampoline's type (abi.rs).
type EntryFn = unsafe extern "C" fn(*mut super::abi::CallContext, *const u64, *mut u64) -> i8;

impl CompiledProgram {
    pub fn compile(program: &tir::Program, options: &LowerOptions, keep_clif: bool) -> Result<CompiledProgram, String> {
        let lowered = lower::lower(program, options, keep_clif)?;
        let entry = program.entry_function();
        Ok(CompiledProgram {
            entry: lowered.entry as usize,
            params: entry.params.iter().map(|p| entry.local(*p).ty.clone()).collect(),
            ret: entry.ret.clone(),
            sites: lowered.sites,
            module: Mutex::new(Some(lowered.module)),
            clif: lowered.clif,
        })
    }

    /// The entry kernel's parameter types.
    pub fn params(&self) -> &[Type] {
        &self.params
    }

    /// Runs the program. Array arguments are updated in place.
    pub fn call(&self, args: &mut [Value]) -> Result<Value, RuntimeError> {
        let internal = |message: String| RuntimeError {
            kind: RuntimeErrorKind::Internal { message },
            span: crate::span::Span::default(),
        };
        let (slots, _arrays) = runtime::argument_slots(args, &self.params).map_err(internal)?;
        let mut results = vec![0u64; runtime::result_slot_count(&self.ret).max(1)];
        let mut call_runtime = CallRuntime::new();
        let mut context = runtime::new_context(&mut call_runtime);
        // SAFETY: see `run_entry`.
        let status = unsafe { run_entry(self.entry, &mut context, &slots, &mut results) };
        if status != super::abi::STATUS_OK {
            return Err(runtime::runtime_error(&context.error, &self.sites));
        }
        // SAFETY: the call succeeded, so every result slot holds a value of
        // `self.ret` encoded per abi.rs (an array slot points at a live
        // `ArrayArg` owned by `call_runtime` or describing an argument).
        Ok(unsafe { runtime::result_value(&self.ret, &results, &mut call_runtime) })
    }
}

/// Calls the entry trampoline.
///
/// # Safety
///
/// `entry` must be the address of a finalized entry trampoline of a live
/// `CompiledProgram`, `slots` must hold one correctly encoded slot per
/// flattened parameter (array slots pointing at `ArrayArg`s that stay alive
/// and describe valid memory for the whole call), `results` must have room
/// for every result slot, and `context` must come from `runtime::new_context`
/// with its runtime alive. `CompiledProgram::call` establishes all of these;
/// generated code never traps or unwinds (abi.rs), so the call returns.
unsafe fn run_entry(entry: usize, context: &mut super::abi::CallContext, slots: &[u64], results: &mut [u64]) -> i8 {
    let function: EntryFn = unsafe { std::mem::transmute::<usize, EntryFn>(entry) };
    unsafe { function(context, slots.as_ptr(), results.as_mut_ptr()) }
}

impl Drop for CompiledProgram {
    fn drop(&mut self) {
        let module = match self.module.get_mut() {
            Ok(module) => module.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(module) = module {
            // SAFETY: the only pointer into this module's code is `self.entry`,
            // and it dies with `self`; no call can be running, since `call`
            // borrows `self`.
            unsafe { module.free_memory() };
        }
    }
}
