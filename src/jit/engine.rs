//! A compiled program and the one place the host calls into machine code.
//!
//! [`CompiledProgram::compile`] lowers a typed program with Cranelift;
//! [`CompiledProgram::call`] marshals arguments into the ABI's slots, runs the
//! entry (abi.rs) with a fresh [`runtime::CallRuntime`], and turns the
//! status and error slot back into a value or a [`RuntimeError`].
//! [`CompiledProgram::call_slots`] is the same call for callers (the
//! embedding API) that build the argument slots themselves.
//!
//! Compiling also records which array parameters the program may write
//! ([`CompiledProgram::writes_param`]), so that callers holding read-only
//! memory can refuse to pass it.

use super::cold::{CheckedLoop, SharedModule};
use super::lower::{self, LowerOptions};
use super::runtime::{self, CallRuntime, Site};
use crate::tir;
use crate::types::{Layout, Type};
use crate::value::{RuntimeError, RuntimeErrorKind, Value};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Machine code for one specialised program.
pub struct CompiledProgram {
    /// Address of `entry(ctx, args, results) -> i8` inside `module`'s memory.
    entry: usize,
    params: Vec<Type>,
    /// Whether some function of the program can call itself (then calls run
    /// on a large stack, see `call_slots`).
    recursive: bool,
    /// Threads for `prange` loops (0: the process default).
    threads: u64,
    /// Argument and result slot counts, and whether any parameter assumes a
    /// contiguous layout (computed once, for the per-call checks).
    argument_slots: usize,
    result_slots: usize,
    assumes_layout: bool,
    /// The entry kernel's parameter names, for messages.
    param_names: Vec<String>,
    /// Whether every run is brief (`tir::runs_briefly`).
    brief: bool,
    /// Whether some `prange` loop may run on the pool (`tir::has_parallel_loop`).
    parallel: bool,
    /// Per parameter: whether the program may store into the array it holds.
    written_params: Vec<bool>,
    /// Per parameter: the layout the code assumes (`Layout::Any` for scalars).
    layouts: Vec<Layout>,
    ret: Type,
    sites: Vec<Site>,
    /// Owns the code; freed on drop (nothing can call it afterwards).
    module: SharedModule,
    /// Checked loop copies the code calls (`cold.rs`), which compile into
    /// `module` on first use. Boxed: the code holds their addresses.
    #[allow(clippy::vec_box)]
    _checked_loops: Vec<Box<CheckedLoop>>,
    /// The Cranelift IR, when compiled with `keep_clif`.
    pub clif: Option<String>,
    /// Where code generation spent its time.
    pub phases: lower::CodegenPhases,
    /// When a caller last used the program without looking it up, on the
    /// signature cache's clock (see [`mark_used`](Self::mark_used)).
    last_used: AtomicU64,
}

/// The stack a program with recursion runs on: 1000 nested calls of frames
/// up to about 256 KiB each. Only touched pages cost memory.
const RECURSION_STACK: usize = 256 << 20;
/// Stack kept free below the deepest kernel frame, for the runtime helpers
/// and math routines it calls.
const STACK_MARGIN: usize = 128 << 10;

/// The entry's type (abi.rs).
type EntryFn = unsafe extern "C" fn(*mut super::abi::CallContext, *const u64, *mut u64) -> i8;

impl CompiledProgram {
    pub fn compile(program: &tir::Program, options: &LowerOptions, keep_clif: bool) -> Result<CompiledProgram, String> {
        let lowered = lower::lower(program, options, keep_clif)?;
        let module: SharedModule = std::sync::Arc::new(Mutex::new(Some(lowered.module)));
        for checked in &lowered.checked_loops {
            checked.attach(&module);
        }
        let entry = program.entry_function();
        let params: Vec<Type> = entry.params.iter().map(|p| entry.local(*p).ty.clone()).collect();
        Ok(CompiledProgram {
            argument_slots: runtime::argument_slot_count(&params),
            result_slots: runtime::result_slot_count(&entry.ret).max(1),
            assumes_layout: lowered.entry_layouts.iter().any(|layout| *layout != Layout::Any),
            layouts: lowered.entry_layouts,
            entry: lowered.entry as usize,
            params,
            param_names: entry.params.iter().map(|p| entry.local(*p).name.clone()).collect(),
            written_params: written_params(program),
            brief: tir::runs_briefly(program),
            parallel: tir::has_parallel_loop(program),
            recursive: lowered.recursive,
            threads: options.threads.map_or(0, |threads| threads.max(1) as u64),
            ret: entry.ret.clone(),
            sites: lowered.sites,
            module,
            _checked_loops: lowered.checked_loops,
            clif: lowered.clif,
            phases: lowered.phases,
            last_used: AtomicU64::new(0),
        })
    }

    /// The entry kernel's parameter types.
    pub fn params(&self) -> &[Type] {
        &self.params
    }

    /// The entry kernel's parameter names.
    pub fn param_names(&self) -> &[String] {
        &self.param_names
    }

    /// The layout the code assumes for each parameter ([`Layout::Any`] if none).
    pub fn layouts(&self) -> &[Layout] {
        &self.layouts
    }

    /// Whether every run of the program is brief: straight-line code with
    /// no loop, no call between kernels and no array made
    /// (`tir::runs_briefly`).
    pub fn runs_briefly(&self) -> bool {
        self.brief
    }

    /// Whether a call may run a `prange` loop on the process default thread
    /// count (`pool::default_threads`): the program has a loop that may run
    /// in parallel and was compiled without a fixed `Options::threads`.
    /// Hosts that choose the count per call (`pool::AmbientThreads`) need
    /// to for these programs only.
    pub fn takes_default_threads(&self) -> bool {
        self.parallel && self.threads == 0
    }

    /// The entry kernel's return type.
    pub fn ret(&self) -> &Type {
        &self.ret
    }

    /// Whether the program may store into the array passed as parameter
    /// `index` (directly, through a view or another name for it, or in a
    /// function it is passed to). Conservative: `false` means no store can
    /// reach that array; `true` for a scalar parameter never happens.
    pub fn writes_param(&self, index: usize) -> bool {
        self.written_params.get(index).copied().unwrap_or(true)
    }

    /// Records a use of the program at `tick` of the signature cache's clock
    /// by a caller that did not look it up (`Kernel::call` reusing its last
    /// call's program), so that the cache's least-recently-used eviction
    /// spares it. A relaxed store: ticks only order uses approximately.
    pub fn mark_used(&self, tick: u64) {
        self.last_used.store(tick, Ordering::Relaxed);
    }

    /// The tick of the last [`mark_used`](Self::mark_used) (0 if none).
    pub fn last_used(&self) -> u64 {
        self.last_used.load(Ordering::Relaxed)
    }

    /// Runs the program. Array arguments are updated in place.
    pub fn call(&self, args: &mut [Value]) -> Result<Value, RuntimeError> {
        let (slots, _arrays) = runtime::argument_slots(args, &self.params).map_err(internal_error)?;
        // SAFETY: `argument_slots` encoded one slot per parameter of exactly
        // its type; the array slots point at boxes alive in `_arrays`, which
        // describe the host arrays in `args`, borrowed exclusively (so alive,
        // initialised and unaliased) until this call returns.
        unsafe { self.call_slots(&slots) }
    }

    /// Runs the program on argument slots the caller built (abi.rs).
    ///
    /// # Safety
    ///
    /// `slots` holds exactly one slot per flattened parameter of
    /// [`params`](Self::params), each encoded per abi.rs for that parameter's
    /// type. Every array slot is the address of an [`ArrayArg`](super::abi::ArrayArg)
    /// that stays alive and unchanged during the call, and whose `data`,
    /// `shape` and `strides` describe initialised elements of the parameter's
    /// dtype (a `bool` byte is 0 or 1) inside one live allocation, which stay
    /// alive for the whole call and which nothing else writes while it runs.
    /// If [`writes_param`](Self::writes_param) is true for the parameter, the
    /// elements must also be writable and nothing else may read them during
    /// the call (an exclusive borrow). With bounds checking off, the kernel's
    /// own indices must stay within those shapes.
    pub unsafe fn call_slots(&self, slots: &[u64]) -> Result<Value, RuntimeError> {
        let mut inline_results = [0u64; 8];
        let mut heap_results = Vec::new();
        let results: &mut [u64] = if self.result_slots <= inline_results.len() {
            &mut inline_results[..self.result_slots]
        } else {
            heap_results.resize(self.result_slots, 0);
            &mut heap_results
        };
        let mut call_runtime = CallRuntime::new();
        // SAFETY: this function's contract.
        unsafe { self.execute(slots, results, &mut call_runtime) }?;
        // SAFETY: the call succeeded, so every result slot holds a value of
        // `self.ret` encoded per abi.rs (an array slot points at a live
        // `ArrayArg` owned by `call_runtime` or describing an argument, whose
        // memory the caller keeps alive).
        Ok(unsafe { runtime::result_value(&self.ret, results, &mut call_runtime) })
    }

    /// [`call_slots`](Self::call_slots) for a program returning a scalar
    /// (or nothing): the result's slot, encoded per abi.rs, without making a
    /// [`Value`].
    ///
    /// # Safety
    ///
    /// As [`call_slots`](Self::call_slots).
    pub unsafe fn call_slots_scalar(&self, slots: &[u64]) -> Result<u64, RuntimeError> {
        if !matches!(self.ret, Type::Scalar(_) | Type::None) {
            return Err(internal_error(format!("a result of type {} is not one slot", self.ret)));
        }
        let mut results = [0u64; 1];
        let mut call_runtime = CallRuntime::new();
        // SAFETY: this function's contract; one result slot is enough.
        unsafe { self.execute(slots, &mut results, &mut call_runtime) }?;
        Ok(results[0])
    }

    /// Checks the slots and runs the entry, leaving the results
    /// in `results` (`self.result_slots` of them).
    ///
    /// # Safety
    ///
    /// As [`call_slots`](Self::call_slots); `results` has room for every
    /// result slot.
    unsafe fn execute(
        &self,
        slots: &[u64],
        results: &mut [u64],
        call_runtime: &mut CallRuntime,
    ) -> Result<(), RuntimeError> {
        if slots.len() != self.argument_slots {
            return Err(internal_error(format!(
                "{} argument slots for {} parameter slots",
                slots.len(),
                self.argument_slots
            )));
        }
        if results.len() < self.result_slots {
            return Err(internal_error(format!("{} result slots for {}", results.len(), self.result_slots)));
        }
        if self.assumes_layout {
            // SAFETY: the caller's contract: array slots point at live `ArrayArg`s.
            if let Some(message) = unsafe { self.layout_mismatch(slots) } {
                return Err(internal_error(message));
            }
        }
        let mut context = runtime::new_context(call_runtime);
        context.threads = self.threads;
        let status = if self.recursive {
            // 1000 nested calls need room: run on a stack of our own (unless
            // this thread has that much left), and tell the code where it
            // ends (recursive functions check on entry).
            stacker::maybe_grow(RECURSION_STACK, RECURSION_STACK, || {
                let marker = 0u8;
                let here = std::hint::black_box(std::ptr::addr_of!(marker)) as usize;
                let remaining = stacker::remaining_stack().unwrap_or(1 << 20);
                context.stack_limit = (here.saturating_sub(remaining) + STACK_MARGIN) as u64;
                // SAFETY: see `run_entry`; the slots are this function's contract.
                unsafe { run_entry(self.entry, &mut context, slots, results) }
            })
        } else {
            // SAFETY: see `run_entry`; the slots are this function's contract.
            unsafe { run_entry(self.entry, &mut context, slots, results) }
        };
        if status != super::abi::STATUS_OK {
            return Err(runtime::runtime_error(&context.error, &self.sites));
        }
        Ok(())
    }
}

impl CompiledProgram {
    /// An array argument whose layout is not the one the code assumes
    /// (which would make the code read the wrong elements), described.
    ///
    /// # Safety
    ///
    /// As [`call_slots`](Self::call_slots): array slots hold the addresses
    /// of live `ArrayArg`s, and there are as many slots as parameter slots.
    unsafe fn layout_mismatch(&self, slots: &[u64]) -> Option<String> {
        let mut slot = 0;
        for (position, (param, &assumed)) in self.params.iter().zip(&self.layouts).enumerate() {
            if let (Type::Array(array), Layout::C | Layout::F) = (param, assumed) {
                // SAFETY: this slot belongs to an array parameter (the caller's contract).
                let arg = unsafe { &*(slots[slot] as *const super::abi::ArrayArg) };
                let ndim = array.ndim as usize;
                let actual = Layout::of(&arg.shape[..ndim], &arg.strides[..ndim]);
                if !actual.satisfies(assumed) {
                    return Some(format!(
                        "argument {} has layout {actual:?} but the code was compiled for {assumed:?}",
                        position + 1
                    ));
                }
            }
            slot += runtime::argument_slot_count(std::slice::from_ref(param));
        }
        None
    }
}

fn internal_error(message: String) -> RuntimeError {
    RuntimeError { kind: RuntimeErrorKind::Internal { message }, span: crate::span::Span::default() }
}

/// Calls the entry.
///
/// # Safety
///
/// `entry` must be the address of a finalized entry of a live
/// `CompiledProgram`, `slots` must hold one correctly encoded slot per
/// flattened parameter (array slots pointing at `ArrayArg`s that stay alive
/// and describe valid memory for the whole call), `results` must have room
/// for every result slot, and `context` must come from `runtime::new_context`
/// with its runtime alive. `CompiledProgram::call_slots` establishes all of these;
/// generated code never traps or unwinds (abi.rs), so the call returns.
unsafe fn run_entry(entry: usize, context: &mut super::abi::CallContext, slots: &[u64], results: &mut [u64]) -> i8 {
    let function: EntryFn = unsafe { std::mem::transmute::<usize, EntryFn>(entry) };
    unsafe { function(context, slots.as_ptr(), results.as_mut_ptr()) }
}

impl Drop for CompiledProgram {
    fn drop(&mut self) {
        let module = match self.module.lock() {
            Ok(mut module) => module.take(),
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

// ---- Which parameters a program may write ----

/// The parameters of a function an array expression may refer to (positions
/// in its parameter list).
type Roots = BTreeSet<usize>;

/// For each parameter of the entry function, whether a store can reach the
/// array it holds: a `Store` whose array expression may be rooted at that
/// parameter (the parameter itself, a view of it, a local bound to either),
/// or a call passing such an array to a parameter the callee may write.
///
/// Conservative by construction: an array-typed expression other than a
/// local or a fresh array (`np.zeros`, `np.arange`) may refer to every array
/// among its operands (so `g(a, b)` returning an array counts as `a` or `b`),
/// and a local may refer to everything ever assigned to it. Calls are
/// resolved by iterating to a fixed point, so recursion is covered.
fn written_params(program: &tir::Program) -> Vec<bool> {
    let roots: Vec<Vec<Roots>> = program.functions.iter().map(local_roots).collect();
    let mut writes: Vec<Vec<bool>> = program.functions.iter().map(|f| vec![false; f.params.len()]).collect();
    loop {
        let mut changed = false;
        // Callees are usually specialised after their callers, so visiting
        // the functions backwards settles a call chain in one pass.
        for (index, function) in program.functions.iter().enumerate().rev() {
            let mut scan = WriteScan { roots: &roots[index], callee_writes: &writes, found: writes[index].clone() };
            scan.block(&function.body);
            if scan.found != writes[index] {
                writes[index] = scan.found;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    writes.swap_remove(program.entry.0 as usize)
}

/// For each local of `function`, the parameters whose arrays it may hold.
fn local_roots(function: &tir::Function) -> Vec<Roots> {
    let mut roots = vec![Roots::new(); function.locals.len()];
    for (position, param) in function.params.iter().enumerate() {
        roots[param.0 as usize].insert(position);
    }
    let mut assignments = Vec::new();
    collect_array_assignments(&function.body, &mut assignments);
    loop {
        let mut changed = false;
        for (local, value) in &assignments {
            for root in expr_roots(value, &roots) {
                changed |= roots[local.0 as usize].insert(root);
            }
        }
        if !changed {
            return roots;
        }
    }
}

/// Every `local = value` of array type in `block`, nested blocks included.
fn collect_array_assignments<'p>(block: &'p tir::Block, out: &mut Vec<(tir::LocalId, &'p tir::Expr)>) {
    use tir::StmtKind;
    for stmt in block {
        match &stmt.kind {
            StmtKind::Assign { local, value } => {
                if matches!(value.ty, Type::Array(_)) {
                    out.push((*local, value));
                }
            }
            StmtKind::If { then, orelse, .. } => {
                collect_array_assignments(then, out);
                collect_array_assignments(orelse, out);
            }
            StmtKind::While { body, .. } | StmtKind::ForRange { body, .. } => collect_array_assignments(body, out),
            StmtKind::Store { .. } | StmtKind::Break | StmtKind::Continue | StmtKind::Return(_) | StmtKind::Expr(_) => {
            }
        }
    }
}

/// The parameters an expression's array value may refer to (empty for
/// scalars, tuples and fresh arrays).
fn expr_roots(expr: &tir::Expr, locals: &[Roots]) -> Roots {
    use tir::ExprKind;
    if !matches!(expr.ty, Type::Array(_)) {
        return Roots::new();
    }
    match &expr.kind {
        ExprKind::Local(local) => locals.get(local.0 as usize).cloned().unwrap_or_default(),
        ExprKind::NewArray { .. } | ExprKind::Arange { .. } => Roots::new(),
        _ => {
            let mut roots = Roots::new();
            tir::for_each_operand(expr, |operand| roots.extend(expr_roots(operand, locals)));
            roots
        }
    }
}

/// Finds the parameters of one function that stores may reach.
struct WriteScan<'a> {
    roots: &'a [Roots],
    /// The current approximation for every function of the program.
    callee_writes: &'a [Vec<bool>],
    found: Vec<bool>,
}

impl WriteScan<'_> {
    fn block(&mut self, block: &tir::Block) {
        use tir::StmtKind;
        for stmt in block {
            match &stmt.kind {
                StmtKind::Assign { value, .. } => self.expr(value),
                StmtKind::Store { array, indices, value, .. } => {
                    self.mark(array);
                    self.expr(array);
                    indices.iter().for_each(|index| self.expr(index));
                    self.expr(value);
                }
                StmtKind::If { cond, then, orelse } => {
                    self.expr(cond);
                    self.block(then);
                    self.block(orelse);
                }
                StmtKind::While { cond, body } => {
                    self.expr(cond);
                    self.block(body);
                }
                StmtKind::ForRange { start, stop, step, body, .. } => {
                    self.expr(start);
                    self.expr(stop);
                    self.expr(step);
                    self.block(body);
                }
                StmtKind::Return(Some(value)) | StmtKind::Expr(value) => self.expr(value),
                StmtKind::Return(None) | StmtKind::Break | StmtKind::Continue => {}
            }
        }
    }

    fn expr(&mut self, expr: &tir::Expr) {
        if let tir::ExprKind::Call { func, args } = &expr.kind {
            let callee = self.callee_writes.get(func.0 as usize);
            for (position, arg) in args.iter().enumerate() {
                if callee.is_none_or(|writes| writes.get(position).copied().unwrap_or(true)) {
                    self.mark(arg);
                }
            }
        }
        tir::for_each_operand(expr, |operand| self.expr(operand));
    }

    /// Records that the array `target` evaluates to may be written.
    fn mark(&mut self, target: &tir::Expr) {
        for root in expr_roots(target, self.roots) {
            if let Some(written) = self.found.get_mut(root) {
                *written = true;
            }
        }
    }
}
