//! Lowering: the typed IR to Cranelift IR, compiled to machine code.
//!
//! Entry point [`lower`]: every specialisation of a [`tir::Program`] becomes
//! one native function following `abi.rs`; the host calls the entry function
//! with the entry signature, through a trampoline if other functions call
//! it. One private [`Translator`] per function with one `translate_*` method
//! per construct (the shape of cranelift-jit-demo's FunctionTranslator).
//!
//! Runtime semantics are those documented in `tir.rs`, bit for bit: wrapping
//! integers, Python `//` and `%`, guarded divisions (no instruction here can
//! trap), saturating float-to-int conversion, bounds checks with the
//! interpreter's error details, and the block/tree reduction order of
//! `prange`. Errors leave through the context's error slot and a status
//! result, never through a trap or an unwind.

use super::abi::{self, ArrayArg};
use super::codegen;
use super::cold;
use super::hoist::{self, AxisIndex, Induction};
use super::runtime::{self, Site};
use super::ssa;
use crate::mathlib::{self, MathFunction};
use crate::span::Span;
use crate::tir::{self, BinaryOp, Builtin, ExprKind, Fill, StmtKind, ViewItem};
use crate::types::{Layout, ScalarType, Type};
use crate::value::{Scalar, RECURSION_LIMIT};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    self, types as cl, AbiParam, Block, BlockArg, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind,
    Value as ClValue,
};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, FuncId, Linkage, Module};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// How to compile.
#[derive(Clone, Debug)]
pub struct LowerOptions {
    /// Emit bounds checks on every index (negative indices wrap either way).
    pub boundscheck: bool,
    /// Run Cranelift's IR verifier (about 20% of compile time).
    pub verify: bool,
    /// What the entry kernel may assume about each argument's layout (one
    /// per parameter; missing entries are `Layout::Any`). The host must
    /// only pass arrays of these layouts (`CompiledProgram` checks).
    pub layouts: Vec<Layout>,
    /// Threads `prange` loops may use when the code runs (`None`: the
    /// process default, `pool::default_threads`). Not used by codegen; the
    /// compiled program passes it to the runtime on every call.
    pub threads: Option<usize>,
    /// Trips below which a parallel loop runs serially (`None`:
    /// `tir::parallel_min_trips` of its body).
    pub parallel_min_trips: Option<u64>,
    /// Run Cranelift's optimisations (`opt_level=speed`); off, `none`. The
    /// differential tests run both: optimisation must not change results.
    pub optimize: bool,
}

impl Default for LowerOptions {
    fn default() -> LowerOptions {
        LowerOptions {
            boundscheck: true,
            verify: cfg!(debug_assertions),
            layouts: Vec::new(),
            threads: None,
            parallel_min_trips: None,
            optimize: true,
        }
    }
}

/// A compiled program: its code (owned by `module`), its entry and
/// the table that turns error sites back into source positions.
pub struct Lowered {
    pub module: JITModule,
    /// `entry(ctx, args, results) -> i8`, see `abi.rs`.
    pub entry: *const u8,
    pub sites: Vec<Site>,
    /// The Cranelift IR of every function, when asked for (for `dump`).
    pub clif: Option<String>,
    /// The machine code of every function as text, when asked for.
    pub asm: Option<String>,
    /// Index checks emitted, and index checks proven unnecessary.
    pub checks: BoundsChecks,
    /// Where the time went.
    pub phases: CodegenPhases,
    /// The layout the code assumes for each entry parameter; the host must
    /// pass arrays of these layouts.
    pub entry_layouts: Vec<Layout>,
    /// Whether some function can call itself (the host then runs the code
    /// on a large stack and sets the context's stack limit).
    pub recursive: bool,
    /// The `prange` loops that run on the thread pool.
    pub parallel_loops: Vec<ParallelLoop>,
    /// The checked copies of versioned loops, compiled into `module` on
    /// first use once attached to it (`cold.rs`). Generated code holds
    /// their addresses (hence the boxes): they live as long as the code.
    #[allow(clippy::vec_box)]
    pub checked_loops: Vec<Box<cold::CheckedLoop>>,
}

/// Time spent in each phase of code generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodegenPhases {
    /// Typed IR to Cranelift IR (`Translator`).
    pub lower: std::time::Duration,
    /// Cranelift: optimisation, instruction selection, register allocation
    /// and emission, for every function and the entry trampoline, if any.
    pub cranelift: std::time::Duration,
    /// Linking the functions and making their memory executable.
    pub finalize: std::time::Duration,
}

/// What became of the array index checks, counted once per index in the
/// source (an access in a versioned loop is counted in its fast copy only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BoundsChecks {
    /// Checked on every execution.
    pub kept: usize,
    /// Proven in bounds (`hoist::in_bounds_fact`): never checked.
    pub removed: usize,
    /// Checked once before a loop, which then runs a copy without them
    /// (`hoist::hoistable`).
    pub hoisted: usize,
}

impl BoundsChecks {
    fn add(&mut self, other: BoundsChecks) {
        self.kept += other.kept;
        self.removed += other.removed;
        self.hoisted += other.hoisted;
    }
}

impl Lowered {
    /// The listings (Cranelift IR, machine code), freeing the code, which is
    /// never called.
    pub fn into_listings(self) -> (Option<String>, Option<String>) {
        let Lowered { module, clif, asm, .. } = self;
        // SAFETY: the only pointer into the module's code is `entry`, which
        // was moved out of `self` above and is dropped unused.
        unsafe { module.free_memory() };
        (clif, asm)
    }
}

/// Compiles every function of `program` and the entry trampoline.
pub fn lower(program: &tir::Program, options: &LowerOptions, keep_clif: bool) -> Result<Lowered, String> {
    lower_with_listings(program, options, keep_clif, false)
}

/// [`lower`], keeping the Cranelift IR and/or Cranelift's disassembly of the
/// machine code of every function (for `kernjit dump`).
pub fn lower_with_listings(
    program: &tir::Program,
    options: &LowerOptions,
    keep_clif: bool,
    keep_asm: bool,
) -> Result<Lowered, String> {
    let isa = host_isa(options)?;
    let mut jit_builder = JITBuilder::with_isa(isa.clone(), default_libcall_names());
    // One lookup in a table built once per process, rather than a fresh
    // symbol map per compiled program.
    let trampoline = checked_loop_trampoline(&isa)?;
    jit_builder.symbol_lookup_fn(Box::new(move |name| match name {
        CHECKED_LOOP_TRAMPOLINE => Some(trampoline as *const u8),
        _ => super::runtime::symbol_address(name),
    }));
    let mut module = JITModule::new(jit_builder);
    let mut helpers = Helpers::declare(&mut module)?;

    let callees = tir::call_graph(program);
    // An entry function no function calls is the entry itself: it takes its
    // arguments from the host's slots (no trampoline to compile).
    let entry_index = program.entry.0 as usize;
    let own_entry = !callees.iter().any(|called| called.contains(&entry_index));
    let mut func_ids = Vec::with_capacity(program.functions.len());
    for (index, function) in program.functions.iter().enumerate() {
        let signature = if own_entry && index == entry_index {
            entry_signature(&module)
        } else {
            function_signature(&module, function)
        };
        let name = format!("k{index}_{}", function.name);
        let id = module.declare_function(&name, Linkage::Local, &signature).map_err(|e| e.to_string())?;
        func_ids.push(id);
    }

    let mut sites = Vec::new();
    let mut checks = BoundsChecks::default();
    let mut builder_context = FunctionBuilderContext::new();
    let mut phases = CodegenPhases::default();
    let lower_started = std::time::Instant::now();
    let stream = codegen::Stream::new(&isa, keep_clif, keep_asm);
    let entry_layouts = entry_layouts(program, options);
    let inlinable: Vec<bool> = program.functions.iter().map(inlinable).collect();
    let (inlined, called_out_of_line) = inlined_calls(program, &inlinable);
    let recursive = recursive_functions(&callees);
    let looping = hoist::looping_functions(program, &callees, &recursive);
    // Without a cycle of calls, no chain of calls is longer than the number
    // of functions: below the limit, the depth needs no counting.
    let track_depth = recursive.contains(&true) || program.functions.len() >= RECURSION_LIMIT;
    let mut outlined = Vec::new();
    for (index, function) in program.functions.iter().enumerate() {
        if inlinable[index] && !called_out_of_line[index] && index != entry_index {
            // Every call to it is inlined: no code of its own.
            continue;
        }
        let args_in_slots = own_entry && index == entry_index;
        let signature = if args_in_slots { entry_signature(&module) } else { function_signature(&module, function) };
        let mut func = ir::Function::with_name_signature(ir::UserFuncName::default(), signature);
        let pending = {
            let builder = FunctionBuilder::new(&mut func, &mut builder_context);
            let layouts = if index == entry_index { entry_layouts.as_slice() } else { &[] };
            let mut translator = Translator::new(
                builder,
                program,
                function,
                &mut module,
                &func_ids,
                &mut helpers,
                &mut sites,
                options,
                layouts,
                (&inlined, &looping),
                Recursion { function: recursive[index], tracked: track_depth },
                (&mut outlined, &stream),
            );
            if args_in_slots {
                translator.args_in_slots();
            }
            let (counted, pending) = translator.translate_function();
            checks.add(counted);
            pending
        };
        stream.push(codegen::Job { id: func_ids[index], func, label: format!("{} ({index})", function.name) });
        let counted = translate_checked_copies(
            pending,
            program,
            &mut module,
            &func_ids,
            &mut helpers,
            &mut sites,
            options,
            (&inlined, &looping),
            (&mut outlined, &stream),
        );
        checks.add(counted);
    }
    let entry_id = if own_entry {
        func_ids[entry_index]
    } else {
        let (id, func) = translate_entry(&mut module, program, &func_ids, &mut builder_context)?;
        stream.push(codegen::Job { id, func, label: "entry".to_string() });
        id
    };

    let mut parallel_loops = Vec::new();
    let mut checked_loops = Vec::new();
    let mut checked_clif = String::new();
    for split in outlined {
        match split {
            Outlined::Parallel { report } => parallel_loops.push(report),
            Outlined::Checked { name, record } => {
                let label = format!("{name} (checked copy of a versioned loop, compiled on first use)");
                let func = record.function();
                if let (true, Some(func)) = (keep_clif, &func) {
                    checked_clif.push_str(&format!("; {label}\n{}\n", func.display()));
                }
                if let (true, Some(func)) = (keep_asm, func) {
                    // Compiled now for the listing only.
                    let id = module.declare_anonymous_function(&func.signature).map_err(|e| e.to_string())?;
                    stream.push(codegen::Job { id, func, label });
                }
                checked_loops.push(record);
            }
        }
    }
    phases.lower = lower_started.elapsed();

    let cranelift_started = std::time::Instant::now();
    let compiled = stream.finish()?;
    let mut clif = keep_clif.then(String::new);
    let mut asm = keep_asm.then(String::new);
    for code in &compiled {
        module
            .define_function_bytes(code.id, code.alignment, &code.bytes, &code.relocs)
            .map_err(|e| format!("{e:?}"))?;
        if let (Some(text), Some(listing)) = (clif.as_mut(), &code.clif) {
            text.push_str(&format!("; {}\n{listing}\n", code.label));
        }
        if let (Some(text), Some(listing)) = (asm.as_mut(), &code.listing) {
            text.push_str(&format!("; {}, {} bytes\n{listing}\n", code.label, code.bytes.len()));
        }
    }
    if let Some(text) = clif.as_mut() {
        text.push_str(&checked_clif);
    }
    phases.cranelift = cranelift_started.elapsed();
    let finalize_started = std::time::Instant::now();
    module.finalize_definitions().map_err(|e| e.to_string())?;
    let entry = module.get_finalized_function(entry_id);
    phases.finalize = finalize_started.elapsed();
    let recursive = recursive.contains(&true);
    Ok(Lowered {
        module,
        entry,
        sites,
        clif,
        asm,
        checks,
        phases,
        entry_layouts,
        recursive,
        parallel_loops,
        checked_loops,
    })
}

/// In `array[indices] = value`, a read of the same element (same array
/// local, the same pure index expressions) that `value` always evaluates:
/// reached from its root through arithmetic and casts only, as in the
/// `a[i] = a[i] + v` of an augmented assignment. Its key (`hoist::index_key`).
fn same_element_read(value: &tir::Expr, array: &tir::Expr, indices: &[tir::Expr]) -> Option<usize> {
    fn same(a: &tir::Expr, b: &tir::Expr) -> bool {
        match (&a.kind, &b.kind) {
            (ExprKind::Local(x), ExprKind::Local(y)) => x == y,
            (ExprKind::Const(x), ExprKind::Const(y)) => x == y && a.ty == b.ty,
            (ExprKind::Cast(x), ExprKind::Cast(y)) => a.ty == b.ty && same(x, y),
            (ExprKind::Unary(p, x), ExprKind::Unary(q, y)) => p == q && same(x, y),
            (ExprKind::Binary(p, x1, x2), ExprKind::Binary(q, y1, y2)) => {
                p == q && a.ty == b.ty && same(x1, y1) && same(x2, y2)
            }
            _ => false,
        }
    }
    let ExprKind::Local(target) = array.kind else { return None };
    match &value.kind {
        ExprKind::Index { array: read, indices: read_indices, .. } => {
            let same_array = matches!(read.kind, ExprKind::Local(local) if local == target);
            let same_indices =
                read_indices.len() == indices.len() && read_indices.iter().zip(indices).all(|(a, b)| same(a, b));
            (same_array && same_indices).then(|| hoist::index_key(value))
        }
        ExprKind::Cast(inner) | ExprKind::Unary(_, inner) => same_element_read(inner, array, indices),
        ExprKind::Binary(_, a, b) => {
            same_element_read(a, array, indices).or_else(|| same_element_read(b, array, indices))
        }
        _ => None,
    }
}

/// What a function's code does about recursion.
#[derive(Clone, Copy, Debug)]
struct Recursion {
    /// The function is on a cycle of calls: it checks the stack on entry.
    function: bool,
    /// The program counts call depth (it has a cycle of calls, or more
    /// functions than the depth limit): every call checks and counts it.
    tracked: bool,
}

/// Per function of the call graph (`tir::call_graph`): whether it can
/// reach itself through calls.
fn recursive_functions(callees: &[Vec<usize>]) -> Vec<bool> {
    (0..callees.len())
        .map(|start| {
            let mut seen = vec![false; callees.len()];
            let mut stack = callees[start].clone();
            while let Some(next) = stack.pop() {
                if next == start {
                    return true;
                }
                if !std::mem::replace(&mut seen[next], true) {
                    stack.extend(&callees[next]);
                }
            }
            false
        })
        .collect()
}

/// Largest callee body, in typed-IR expressions, that is inlined.
const MAX_INLINED_EXPRS: usize = 48;

/// Whether calls to `function` are inlined: a small leaf (it calls nothing,
/// so inlining never nests and never hides recursion) returning no array
/// and running no parallel loop.
fn inlinable(function: &tir::Function) -> bool {
    let mut exprs = 0;
    let mut calls = false;
    tir::for_each_expr(&function.body, &mut |expr| {
        exprs += 1;
        calls |= matches!(expr.kind, ExprKind::Call { .. });
    });
    let parallel = tir::any_stmt(
        &function.body,
        &mut |stmt| matches!(&stmt.kind, StmtKind::ForRange { parallel: Some(parallel), .. } if parallel.runs_in_parallel()),
    );
    !calls && !parallel && exprs <= MAX_INLINED_EXPRS && !matches!(function.ret, Type::Array(_))
}

/// Callees of at most this many typed-IR nodes are inlined at every call.
const ALWAYS_INLINED_EXPRS: usize = 16;

/// Which calls are inlined (`hoist::index_key` of the call expression), and
/// per function whether some call to it is not (then it is compiled as a
/// function of its own). A call to an `inlinable` function is inlined where
/// it runs most often, in an innermost loop (one with no loop in its body;
/// the `prange` body counts), and anywhere if the callee is tiny. Elsewhere
/// the call costs little next to the loop it sits around, and one shared
/// compiled copy costs less to compile than a copy per call.
fn inlined_calls(program: &tir::Program, inlinable: &[bool]) -> (HashSet<usize>, Vec<bool>) {
    struct Walk<'p> {
        inlinable: &'p [bool],
        tiny: Vec<bool>,
        inlined: HashSet<usize>,
        out_of_line: Vec<bool>,
    }
    impl Walk<'_> {
        fn expr(&mut self, expr: &tir::Expr, hot: bool) {
            if let ExprKind::Call { func, .. } = expr.kind {
                let callee = func.0 as usize;
                if self.inlinable[callee] {
                    if hot || self.tiny[callee] {
                        self.inlined.insert(hoist::index_key(expr));
                    } else {
                        self.out_of_line[callee] = true;
                    }
                }
            }
            tir::for_each_operand(expr, |operand| self.expr(operand, hot));
        }

        /// `hot`: the statements are in an innermost loop.
        fn block(&mut self, block: &[tir::Stmt], hot: bool) {
            for stmt in block {
                match &stmt.kind {
                    StmtKind::ForRange { start, stop, step, body, .. } => {
                        for bound in [start, stop, step] {
                            self.expr(bound, hot);
                        }
                        self.block(body, innermost(body));
                    }
                    StmtKind::While { cond, body } => {
                        let body_hot = innermost(body);
                        self.expr(cond, body_hot);
                        self.block(body, body_hot);
                    }
                    StmtKind::If { cond, then, orelse } => {
                        self.expr(cond, hot);
                        self.block(then, hot);
                        self.block(orelse, hot);
                    }
                    StmtKind::Assign { value, .. } | StmtKind::Return(Some(value)) | StmtKind::Expr(value) => {
                        self.expr(value, hot)
                    }
                    StmtKind::Store { array, indices, value, .. } => {
                        for expr in std::iter::once(array).chain(indices).chain(std::iter::once(value)) {
                            self.expr(expr, hot);
                        }
                    }
                    StmtKind::Return(None) | StmtKind::Break | StmtKind::Continue => {}
                }
            }
        }
    }
    fn innermost(body: &[tir::Stmt]) -> bool {
        !tir::any_stmt(body, &mut |stmt| matches!(stmt.kind, StmtKind::ForRange { .. } | StmtKind::While { .. }))
    }
    let tiny = program
        .functions
        .iter()
        .map(|function| {
            let mut exprs = 0;
            tir::for_each_expr(&function.body, &mut |_| exprs += 1);
            exprs <= ALWAYS_INLINED_EXPRS
        })
        .collect();
    let count = program.functions.len();
    let mut walk = Walk { inlinable, tiny, inlined: HashSet::default(), out_of_line: vec![false; count] };
    for function in &program.functions {
        walk.block(&function.body, false);
    }
    (walk.inlined, walk.out_of_line)
}

/// The layout the entry function assumes for each parameter: that of
/// `options` for an array, `Layout::Any` for a scalar, and `Layout::Any` for
/// everything if some function of the program calls the entry function
/// (then its code must take any strides).
fn entry_layouts(program: &tir::Program, options: &LowerOptions) -> Vec<Layout> {
    let mut called = false;
    for function in &program.functions {
        tir::for_each_expr(&function.body, &mut |expr| {
            called |= matches!(expr.kind, ExprKind::Call { func, .. } if func == program.entry);
        });
    }
    let entry = program.entry_function();
    (0..entry.params.len())
        .map(|k| match entry.local(entry.params[k]).ty {
            Type::Array(_) if !called => options.layouts.get(k).copied().unwrap_or_default(),
            _ => Layout::Any,
        })
        .collect()
}

/// Does the once-per-process work of compiling ahead of time: starts the
/// compile helper threads, detects the CPU, builds the code generator's
/// flags (for these options' verifier and optimisation settings) and
/// compiles the checked-loop trampoline. `kernjit
/// bench` calls it so that the first bench line's compile time is that of
/// the kernel alone.
pub fn prepare(options: &LowerOptions) -> Result<(), String> {
    codegen::start_helpers();
    checked_loop_trampoline(&host_isa(options)?).map(drop)
}

/// The host's ISA with every CPU feature it has, optimising for speed. Built
/// once per process (per verifier setting): detecting the CPU and building
/// the flags costs more than compiling a small kernel.
fn host_isa(options: &LowerOptions) -> Result<cranelift_codegen::isa::OwnedTargetIsa, String> {
    type Isa = std::sync::OnceLock<Result<cranelift_codegen::isa::OwnedTargetIsa, String>>;
    static ISAS: [Isa; 4] = [Isa::new(), Isa::new(), Isa::new(), Isa::new()];
    let index = options.verify as usize * 2 + options.optimize as usize;
    ISAS[index].get_or_init(|| build_host_isa(options)).clone()
}

fn build_host_isa(options: &LowerOptions) -> Result<cranelift_codegen::isa::OwnedTargetIsa, String> {
    let mut flags = settings::builder();
    let set =
        |flags: &mut settings::Builder, name: &str, value: &str| flags.set(name, value).map_err(|e| e.to_string());
    set(&mut flags, "opt_level", if options.optimize { "speed" } else { "none" })?;
    // Register allocation is about half of all compile time. regalloc2's
    // single-pass allocator would take the warm compile median over the
    // kernels/ bench lines from 1.44 to 0.92 ms, but its code spills in hot
    // loops: mandelbrot ran 4x slower (122 vs 36 ms). The default
    // (backtracking) allocator stays.
    set(&mut flags, "is_pic", "false")?;
    // Nothing unwinds through kernel code (helpers return status codes, and
    // a panic cannot cross their `extern "C"`), and cranelift-jit registers
    // no unwind tables: emitting them would be wasted work.
    set(&mut flags, "unwind_info", "false")?;
    set(&mut flags, "enable_verifier", if options.verify { "true" } else { "false" })?;
    let isa_builder = cranelift_native::builder().map_err(|e| e.to_string())?;
    isa_builder.finish(settings::Flags::new(flags)).map_err(|e| e.to_string())
}

/// The Cranelift type of a scalar.
fn clif_type(dtype: ScalarType) -> ir::Type {
    match dtype {
        ScalarType::Bool | ScalarType::I8 | ScalarType::U8 => cl::I8,
        ScalarType::I16 | ScalarType::U16 => cl::I16,
        ScalarType::I32 | ScalarType::U32 => cl::I32,
        ScalarType::I64 | ScalarType::U64 => cl::I64,
        ScalarType::F32 => cl::F32,
        ScalarType::F64 => cl::F64,
    }
}

/// The Cranelift values a value of type `ty` occupies as a parameter or result.
fn flat_types(ty: &Type) -> Vec<ir::Type> {
    match ty {
        Type::Scalar(dtype) => vec![clif_type(*dtype)],
        Type::Tuple(items) => items.iter().map(|d| clif_type(*d)).collect(),
        Type::Array(_) => vec![cl::I64],
        Type::None | Type::Unknown => vec![],
    }
}

fn function_signature(module: &JITModule, function: &tir::Function) -> ir::Signature {
    let mut signature = module.make_signature();
    signature.params.push(AbiParam::new(cl::I64));
    signature.params.push(AbiParam::new(cl::I64));
    for param in &function.params {
        for ty in flat_types(&function.local(*param).ty) {
            signature.params.push(AbiParam::new(ty));
        }
    }
    signature.returns.push(AbiParam::new(cl::I8));
    signature
}

/// The symbol of [`checked_loop_trampoline`].
const CHECKED_LOOP_TRAMPOLINE: &str = "kj_checked_loop_preserve_all";

/// `trampoline(ctx, loop, env)`: calls `kj_checked_loop(ctx, loop, env)` and
/// stores its status in the first byte of `env`, in Cranelift's
/// `preserve_all` convention: the call clobbers no register of its caller.
/// The checked copy of a loop nested in another runs from inside the outer
/// loop; through a normal call, every value the outer loop keeps in a
/// register would have to be spilled around it, hot path included
/// (`calibrate_stack` ran 2x slower). Compiled once per process, into a
/// module kept for the life of the process.
fn checked_loop_trampoline(isa: &cranelift_codegen::isa::OwnedTargetIsa) -> Result<usize, String> {
    static TRAMPOLINE: std::sync::OnceLock<Result<usize, String>> = std::sync::OnceLock::new();
    TRAMPOLINE
        .get_or_init(|| {
            let mut jit_builder = JITBuilder::with_isa(isa.clone(), default_libcall_names());
            jit_builder.symbol_lookup_fn(Box::new(super::runtime::symbol_address));
            let mut module = JITModule::new(jit_builder);
            let mut callee_signature = module.make_signature();
            callee_signature.params.extend([AbiParam::new(cl::I64); 3]);
            callee_signature.returns.push(AbiParam::new(cl::I8));
            let callee = module
                .declare_function("kj_checked_loop", Linkage::Import, &callee_signature)
                .map_err(|e| e.to_string())?;
            let signature = trampoline_signature(&module);
            let id = module
                .declare_function(CHECKED_LOOP_TRAMPOLINE, Linkage::Local, &signature)
                .map_err(|e| e.to_string())?;
            let mut context = module.make_context();
            context.func.signature = signature;
            let mut builder_context = FunctionBuilderContext::new();
            {
                let mut builder = FunctionBuilder::new(&mut context.func, &mut builder_context);
                let block = builder.create_block();
                builder.append_block_params_for_function_params(block);
                builder.switch_to_block(block);
                builder.seal_block(block);
                let params = builder.block_params(block).to_vec();
                let callee = module.declare_func_in_func(callee, builder.func);
                let call = builder.ins().call(callee, &params);
                let status = builder.inst_results(call)[0];
                builder.ins().store(MemFlagsData::trusted(), status, params[2], 0);
                builder.ins().return_(&[]);
                builder.finalize(module.isa().frontend_config());
            }
            module.define_function(id, &mut context).map_err(|e| format!("{e:?}"))?;
            module.finalize_definitions().map_err(|e| e.to_string())?;
            let address = module.get_finalized_function(id) as usize;
            // The code must outlive every program that calls it: the module
            // is kept for the life of the process (and stays reachable, so
            // leak checkers do not flag it).
            static MODULE: std::sync::OnceLock<std::sync::Mutex<JITModule>> = std::sync::OnceLock::new();
            if MODULE.set(std::sync::Mutex::new(module)).is_err() {
                return Err("the checked-loop trampoline was compiled twice".to_string());
            }
            Ok(address)
        })
        .clone()
}

/// `copy(ctx, env) -> status`: a loop copy run as a function of its own
/// (`cold.rs`).
fn loop_copy_signature(module: &JITModule) -> ir::Signature {
    let mut signature = module.make_signature();
    signature.params.extend([AbiParam::new(cl::I64); 2]);
    signature.returns.push(AbiParam::new(cl::I8));
    signature
}

/// `trampoline(ctx, loop, env)` in the `preserve_all` convention.
fn trampoline_signature(module: &JITModule) -> ir::Signature {
    let mut signature = module.make_signature();
    signature.call_conv = cranelift_codegen::isa::CallConv::PreserveAll;
    signature.params.extend([AbiParam::new(cl::I64); 3]);
    signature
}

/// `entry(ctx, args, results) -> i8` (abi.rs).
fn entry_signature(module: &JITModule) -> ir::Signature {
    let mut signature = module.make_signature();
    signature.params.extend([AbiParam::new(cl::I64); 3]);
    signature.returns.push(AbiParam::new(cl::I8));
    signature
}

/// The entry trampoline of an entry function that other functions call:
/// unpacks 8-byte argument slots, calls the entry function, whose `out` is
/// the host's results.
fn translate_entry(
    module: &mut JITModule,
    program: &tir::Program,
    func_ids: &[FuncId],
    builder_context: &mut FunctionBuilderContext,
) -> Result<(FuncId, ir::Function), String> {
    let entry = program.entry_function();
    let signature = entry_signature(module);
    let id = module.declare_function("kernjit_entry", Linkage::Local, &signature).map_err(|e| e.to_string())?;
    let mut func = ir::Function::with_name_signature(ir::UserFuncName::default(), signature);
    {
        let mut builder = FunctionBuilder::new(&mut func, builder_context);
        let block = builder.create_block();
        builder.append_block_params_for_function_params(block);
        builder.switch_to_block(block);
        builder.seal_block(block);
        let params = builder.block_params(block).to_vec();
        let (ctx, args, results) = (params[0], params[1], params[2]);
        let flags = MemFlagsData::trusted();
        let mut call_args = vec![ctx, results];
        let mut slot = 0;
        for param in &entry.params {
            for ty in flat_types(&entry.local(*param).ty) {
                call_args.push(builder.ins().load(ty, flags, args, slot * 8));
                slot += 1;
            }
        }
        let callee = module.declare_func_in_func(func_ids[program.entry.0 as usize], builder.func);
        let call = builder.ins().call(callee, &call_args);
        let status = builder.inst_results(call)[0];
        builder.ins().return_(&[status]);
        builder.finalize(module.isa().frontend_config());
    }
    Ok((id, func))
}

/// Runtime helpers and math routines, declared once per module and imported
/// into each function on first use.
struct Helpers {
    new_array: FuncId,
    arange: FuncId,
    alloc_view: FuncId,
    reduce_tree: FuncId,
    combine: FuncId,
    parallel_for: FuncId,
    /// Outlined `prange` bodies so far (numbers their names).
    outlined: usize,
    /// `checked_loop_trampoline`, which calls `kj_checked_loop`.
    checked_loop: FuncId,
    /// Checked loop copies so far (numbers their names).
    checked_loops: usize,
    /// Fast loop copies so far (numbers their names).
    fast_copies: usize,
    ipow: FuncId,
    math: HashMap<&'static str, FuncId>,
}

impl Helpers {
    fn declare(module: &mut JITModule) -> Result<Helpers, String> {
        let checked_loop = module
            .declare_function(CHECKED_LOOP_TRAMPOLINE, Linkage::Import, &trampoline_signature(module))
            .map_err(|e| e.to_string())?;
        let mut declare = |name: &str, params: &[ir::Type], returns: &[ir::Type]| -> Result<FuncId, String> {
            let mut signature = module.make_signature();
            signature.params.extend(params.iter().map(|t| AbiParam::new(*t)));
            signature.returns.extend(returns.iter().map(|t| AbiParam::new(*t)));
            module.declare_function(name, Linkage::Import, &signature).map_err(|e| e.to_string())
        };
        let i64s = |n: usize| vec![cl::I64; n];
        Ok(Helpers {
            new_array: declare(
                "kj_new_array",
                &[cl::I64, cl::I32, cl::I32, cl::I64, cl::I64, cl::I64, cl::I32, cl::I64, cl::I32],
                &[cl::I64],
            )?,
            arange: declare("kj_arange", &[cl::I64, cl::I32, cl::I64, cl::I64, cl::I64, cl::I32], &[cl::I64])?,
            alloc_view: declare("kj_alloc_view", &[cl::I64], &[cl::I64])?,
            reduce_tree: declare("kj_reduce_tree", &[cl::I32, cl::I32, cl::I64, cl::I64], &[cl::I64])?,
            combine: declare("kj_combine", &[cl::I32, cl::I32, cl::I64, cl::I64], &[cl::I64])?,
            parallel_for: declare("kj_parallel_for", &i64s(6), &[cl::I8])?,
            outlined: 0,
            checked_loop,
            checked_loops: 0,
            fast_copies: 0,
            ipow: declare("kj_ipow", &i64s(2), &[cl::I64])?,
            math: HashMap::default(),
        })
    }

    fn math(&mut self, module: &mut JITModule, symbol: &mathlib::MathSymbol) -> Result<FuncId, String> {
        if let Some(id) = self.math.get(symbol.name) {
            return Ok(*id);
        }
        let (params, returns): (Vec<ir::Type>, Vec<ir::Type>) = match symbol.function {
            MathFunction::UnaryF64(_) => (vec![cl::F64], vec![cl::F64]),
            MathFunction::UnaryF32(_) => (vec![cl::F32], vec![cl::F32]),
            MathFunction::BinaryF64(_) => (vec![cl::F64, cl::F64], vec![cl::F64]),
            MathFunction::BinaryF32(_) => (vec![cl::F32, cl::F32], vec![cl::F32]),
            MathFunction::RoundF64(_) => (vec![cl::F64], vec![cl::I64]),
            #[allow(unreachable_patterns)]
            _ => return Err(format!("unsupported math routine shape for {}", symbol.name)),
        };
        let mut signature = module.make_signature();
        signature.params.extend(params.into_iter().map(AbiParam::new));
        signature.returns.extend(returns.into_iter().map(AbiParam::new));
        let id = module.declare_function(symbol.name, Linkage::Import, &signature).map_err(|e| e.to_string())?;
        self.math.insert(symbol.name, id);
        Ok(id)
    }
}

/// The environment of an outlined `prange` body starts with six 8-byte
/// slots: start, step, trip count, block length, block count and the
/// address of the partials area; the captured values follow.
const ENV_CAPTURES: usize = 6;
/// Partials per reduction variable: one per block (at most 1024 blocks).
const PARTIALS_PER_REDUCTION: u32 = 1024;

/// A local an outlined body reads, and where each of its Cranelift values
/// (`Val::into_values` order) comes from.
struct Capture {
    local: tir::LocalId,
    slots: Vec<CaptureSlot>,
    /// For an array parameter of a layout the host guarantees that the
    /// function never rebinds: its strides follow from its extents in the
    /// body too (a unit stride stays a constant there).
    layout: Layout,
}

struct CaptureSlot {
    ty: ir::Type,
    /// Byte offset in the environment (unused for a constant).
    offset: i32,
    /// An integer constant in the loop's function, rematerialised in the body.
    constant: Option<i64>,
}

/// A parallel loop's trips cut into blocks (`tir::reduction_block_len`).
struct Partition {
    count: ClValue,
    block_len: ClValue,
    blocks: ClValue,
}

/// Code split off the function being translated.
enum Outlined {
    /// A `prange` body, translated and compiling.
    Parallel { report: ParallelLoop },
    /// The checked copy of a versioned loop, compiled on first use.
    Checked { name: String, record: Box<cold::CheckedLoop> },
}

/// A local passed to a checked loop copy (`call_checked_loop`): the
/// environment slots of its values, and whether they come back.
#[derive(Clone)]
struct EnvLocal {
    local: tir::LocalId,
    slots: Vec<usize>,
    written: bool,
}

/// The environment of a loop copy run as a function of its own
/// (`Translator::loop_env`): where it is, and what is in it.
struct LoopEnv {
    address: ClValue,
    layout: EnvLayout,
}

/// What a loop copy's environment holds: the locals in it, and the type of
/// each 8-byte slot.
#[derive(Clone)]
struct EnvLayout {
    locals: Vec<EnvLocal>,
    types: Vec<ir::Type>,
    /// Per slot, the integer constant it holds, if the value is one here:
    /// not stored, but rematerialised in the copy (a unit stride stays a
    /// constant there).
    constants: Vec<Option<i64>>,
}

/// A checked loop copy (`Translator::call_checked_loop`) waiting to be
/// translated: the loop, and what the translator knew around it. Copies are
/// translated after the function they come from went to the compile stream,
/// while it compiles on another core.
struct PendingChecked<'t> {
    name: String,
    copy: LoopCopy,
    var: tir::LocalId,
    body: &'t [tir::Stmt],
    /// The function whose locals the loop uses (an inlined callee's, inside one).
    function: &'t tir::Function,
    layout: EnvLayout,
    in_bounds: Vec<(tir::LocalId, tir::LocalId, u8)>,
    hoisted: HashSet<(usize, usize)>,
    loop_vars: Vec<tir::LocalId>,
    recursion: Recursion,
}

/// A versioned loop's fast copy is a function of its own
/// (`Translator::outlines_fast_copy`) when its body has at least this many
/// typed-IR nodes, the `prange` body it is in has at least
/// `FAST_COPY_MIN_INSTS_BEFORE` instructions before it, and the kernel had
/// fewer than `FAST_COPY_MAX_PARENT_INSTS` before the `prange`. (Measured
/// with `examples/compile_loop.rs` on the `kernels/` bench lines:
/// `jacobi_step`, `inject_planets` and `calibrate_stack` compile 15-20%
/// faster; `resize_into`, whose kernel has 257 instructions before its
/// `prange`, was not faster split, and its split loop ran 13% slower.)
const FAST_COPY_MIN_NODES: usize = 19;
const FAST_COPY_MIN_INSTS_BEFORE: usize = 100;
const FAST_COPY_MAX_PARENT_INSTS: usize = 150;

/// Which copy of a versioned loop a pending function is.
enum LoopCopy {
    /// The checked copy, compiled on first use through its record.
    Checked(Box<cold::CheckedLoop>),
    /// The fast copy (`Translator::outline_fast_copy`): compiled with the
    /// program, as the function `id`, checks hoisted as in the loop's
    /// function and versioning allowed within `version_budget`.
    Fast { id: FuncId, version_budget: usize, counting: bool },
}

/// Translates checked loop copies into the functions their records compile
/// on first use: `(ctx, env) -> status`, the locals from `env`, the loop
/// with every check, the locals it assigns back to `env`. Queued in
/// `outlined` for the listings and the compiled program.
#[allow(clippy::too_many_arguments)]
fn translate_checked_copies<'t, 'a>(
    pending: Vec<PendingChecked<'t>>,
    program: &'t tir::Program,
    module: &'a mut JITModule,
    func_ids: &'a [FuncId],
    helpers: &'a mut Helpers,
    sites: &'a mut Vec<Site>,
    options: &'a LowerOptions,
    calls: (&'a HashSet<usize>, &'a [bool]),
    (outlined, stream): (&'a mut Vec<Outlined>, &'a codegen::Stream),
) -> BoundsChecks {
    let mut pending: std::collections::VecDeque<PendingChecked<'t>> = pending.into();
    let mut checks = BoundsChecks::default();
    while let Some(copy) = pending.pop_front() {
        let mut func = ir::Function::with_name_signature(ir::UserFuncName::default(), loop_copy_signature(module));
        let mut builder_context = FunctionBuilderContext::new();
        let builder = FunctionBuilder::new(&mut func, &mut builder_context);
        let mut inner = Translator::new(
            builder,
            program,
            copy.function,
            &mut *module,
            func_ids,
            &mut *helpers,
            &mut *sites,
            options,
            &[],
            calls,
            Recursion { function: false, ..copy.recursion },
            (&mut *outlined, stream),
        );
        inner.in_bounds = copy.in_bounds;
        inner.hoisted = copy.hoisted;
        inner.loop_vars = copy.loop_vars;
        // A fast copy counts its checks, as its loop would have inline; the
        // checked copy runs only when they fail and is not counted.
        inner.counting = matches!(copy.copy, LoopCopy::Fast { counting: true, .. });
        inner.version_budget = match copy.copy {
            LoopCopy::Fast { version_budget, .. } => version_budget,
            LoopCopy::Checked(_) => 0,
        };
        inner.locals = inner.declare_locals(inner.function);
        let env = inner.out;
        let layout = &copy.layout;
        let load = |inner: &mut Translator, slot: usize| match layout.constants[slot] {
            Some(constant) => inner.builder.ins().iconst(layout.types[slot], constant),
            None => inner.builder.ins().load(layout.types[slot], inner.plain_flags, env, 8 * slot as i32),
        };
        let bounds: Vec<ClValue> = (0..cold::ENV_LOCALS).map(|slot| load(&mut inner, slot)).collect();
        for env_local in &layout.locals {
            let values: Vec<ClValue> = env_local.slots.iter().map(|&slot| load(&mut inner, slot)).collect();
            let ty = inner.function.local(env_local.local).ty.clone();
            inner.assign(env_local.local, Val::from_values(&ty, values));
        }
        inner.counted_loop(copy.var, bounds[0], bounds[1], bounds[2], bounds[3], copy.body);
        for env_local in layout.locals.iter().filter(|env_local| env_local.written) {
            let values = inner.read_local(env_local.local).into_values();
            for (value, &slot) in values.into_iter().zip(&env_local.slots) {
                inner.builder.ins().store(inner.plain_flags, value, env, 8 * slot as i32);
            }
        }
        inner.return_status(abi::STATUS_OK);
        // No loop of a checked copy is versioned; a fast copy may version
        // the loops in it.
        let (counted, nested) = inner.finish();
        checks.add(counted);
        match copy.copy {
            LoopCopy::Checked(record) => {
                record.set_function(func);
                outlined.push(Outlined::Checked { name: copy.name, record });
            }
            LoopCopy::Fast { id, .. } => {
                stream.push(codegen::Job { id, func, label: format!("{} (fast copy of a versioned loop)", copy.name) });
            }
        }
        pending.extend(nested);
    }
    checks
}

/// A `prange` loop compiled to run on the thread pool (for `kernjit dump`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParallelLoop {
    /// The loop statement.
    pub span: Span,
    /// The function containing it, and its outlined body.
    pub function: String,
    pub body: String,
    pub reductions: Vec<tir::ReduceOp>,
    /// Below this many trips it runs serially on the calling thread.
    pub min_trips: u64,
}

/// Why an index needs no check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Proof {
    None,
    /// `hoist::in_bounds_fact`.
    Fact,
    /// Checked before the enclosing versioned loop.
    Hoisted,
}

/// The Cranelift variables of one typed-IR local.
#[derive(Clone)]
enum LocalVars {
    Scalar(Variable),
    Array {
        data: Variable,
        shape: Vec<Variable>,
        strides: Vec<Variable>,
    },
    Tuple(Vec<Variable>),
    /// A fixed local (`ssa::fixed_locals`): the value of its one
    /// assignment, once translated.
    Fixed(Option<Val>),
    None,
}

/// An array in registers: data pointer, extents and strides (in elements).
#[derive(Clone)]
struct ArrayVal {
    data: ClValue,
    shape: Vec<ClValue>,
    strides: Vec<ClValue>,
    dtype: ScalarType,
}

/// A value in registers.
#[derive(Clone)]
enum Val {
    Scalar(ClValue),
    Array(ArrayVal),
    Tuple(Vec<ClValue>),
    None,
}

impl Val {
    fn scalar(&self) -> ClValue {
        match self {
            Val::Scalar(v) => *v,
            _ => unreachable!("typed IR guarantees a scalar here"),
        }
    }

    fn array(self) -> ArrayVal {
        match self {
            Val::Array(a) => a,
            _ => unreachable!("typed IR guarantees an array here"),
        }
    }

    /// Every Cranelift value of the value (an array: data pointer, extents,
    /// strides), the inverse of [`Val::from_values`].
    fn into_values(self) -> Vec<ClValue> {
        match self {
            Val::Scalar(v) => vec![v],
            Val::Tuple(values) => values,
            Val::Array(array) => std::iter::once(array.data).chain(array.shape).chain(array.strides).collect(),
            Val::None => vec![],
        }
    }

    fn from_values(ty: &Type, mut values: Vec<ClValue>) -> Val {
        match ty {
            Type::Scalar(_) => Val::Scalar(values[0]),
            Type::Tuple(_) => Val::Tuple(values),
            Type::Array(array) => {
                let ndim = array.ndim as usize;
                let strides = values.split_off(1 + ndim);
                let shape = values.split_off(1);
                Val::Array(ArrayVal { data: values[0], shape, strides, dtype: array.dtype })
            }
            Type::None | Type::Unknown => Val::None,
        }
    }

    fn flatten(self) -> Vec<ClValue> {
        match self {
            Val::Scalar(v) => vec![v],
            Val::Tuple(values) => values,
            Val::Array(_) | Val::None => vec![],
        }
    }
}

/// The caller's translation state, put aside while an inlined callee's
/// body is translated.
struct Inlining<'t> {
    function: &'t tir::Function,
    locals: Vec<LocalVars>,
    loops: Vec<Loop>,
    in_bounds: Vec<(tir::LocalId, tir::LocalId, u8)>,
    loop_vars: Vec<tir::LocalId>,
    inline_exit: Option<Block>,
}

struct Loop {
    /// Where `continue` goes.
    next: Block,
    /// Where `break` goes.
    exit: Block,
}

struct Translator<'t, 'a, 'b> {
    builder: FunctionBuilder<'b>,
    program: &'t tir::Program,
    function: &'t tir::Function,
    module: &'a mut JITModule,
    func_ids: &'a [FuncId],
    helpers: &'a mut Helpers,
    sites: &'a mut Vec<Site>,
    options: &'a LowerOptions,
    /// Per parameter, the layout the host guarantees (empty: none).
    param_layouts: &'a [Layout],
    /// Per function of the program: whether calls to it are inlined.
    inlined: &'a HashSet<usize>,
    /// Per function of the program: whether it loops (`hoist::looping_functions`).
    looping: &'a [bool],
    /// Whether this function is on a cycle of calls (checks its stack), and
    /// whether the program keeps a call depth at all.
    recursion: Recursion,
    /// Code split off this function: `prange` bodies (already compiling)
    /// and checked loop copies.
    outlined: &'a mut Vec<Outlined>,
    /// Where translated functions go to be compiled.
    stream: &'a codegen::Stream,
    /// Checked loop copies to translate once this function is in `stream`.
    pending: Vec<PendingChecked<'t>>,
    /// While translating an inlined callee's body: where its `return`
    /// jumps, with the results as block arguments.
    inline_exit: Option<Block>,
    locals: Vec<LocalVars>,
    ctx: ClValue,
    /// Where this function writes its results (8-byte slots, abi.rs).
    out: ClValue,
    /// The host's argument slots, for an entry function with the entry
    /// signature (`args_in_slots`); `None`: arguments are parameters.
    arg_slots: Option<ClValue>,
    loops: Vec<Loop>,
    /// Flags for loads and stores of array elements (checked, or the user's
    /// responsibility with bounds checks off).
    data_flags: MemFlagsData,
    /// Flags for reading an argument's `ArrayArg` (never changes during a call).
    header_flags: MemFlagsData,
    /// Flags for context, stack-slot and view-descriptor accesses.
    plain_flags: MemFlagsData,
    /// `(loop variable, array, axis)`: inside these loops, indexing `array`
    /// on `axis` with the loop variable is in bounds (see `in_bounds_fact`).
    in_bounds: Vec<(tir::LocalId, tir::LocalId, u8)>,
    /// Axes of accesses (`(hoist::Access::key, axis)`) whose bounds an
    /// enclosing versioned loop checked before it started: the fast copy
    /// being translated.
    hoisted: HashSet<(usize, usize)>,
    /// Typed-IR nodes of loop copies this function may still add by
    /// versioning (`hoist::VERSIONING_BUDGET`).
    version_budget: usize,
    /// False while translating a second copy of code (its checks were
    /// counted in the first).
    counting: bool,
    /// In a `prange` body: the instructions of the kernel's function
    /// before the loop (`outlines_fast_copy`).
    parallel_parent_insts: Option<usize>,
    /// The variables of the enclosing `for` loops, outermost first.
    loop_vars: Vec<tir::LocalId>,
    /// Index checks that passed on the way to `checked_block` (straight-line
    /// code since): `(index, extent)` to the wrapped position.
    checked: HashMap<(ClValue, ClValue), ClValue>,
    checked_block: Option<Block>,
    /// The shared exit of failed checks (`check`), once one is emitted.
    error_tail: Option<Block>,
    /// The element address each `Index` expression (`hoist::index_key`)
    /// computed when last translated.
    addresses: HashMap<usize, ClValue>,
    checks: BoundsChecks,
}

impl<'t, 'a, 'b> Translator<'t, 'a, 'b> {
    #[allow(clippy::too_many_arguments)]
    fn new(
        mut builder: FunctionBuilder<'b>,
        program: &'t tir::Program,
        function: &'t tir::Function,
        module: &'a mut JITModule,
        func_ids: &'a [FuncId],
        helpers: &'a mut Helpers,
        sites: &'a mut Vec<Site>,
        options: &'a LowerOptions,
        param_layouts: &'a [Layout],
        (inlined, looping): (&'a HashSet<usize>, &'a [bool]),
        recursion: Recursion,
        (outlined, stream): (&'a mut Vec<Outlined>, &'a codegen::Stream),
    ) -> Translator<'t, 'a, 'b> {
        let data_flags = MemFlagsData::trusted();
        let header_flags = MemFlagsData::trusted().with_readonly().with_can_move();
        let plain_flags = MemFlagsData::trusted();
        let entry = builder.create_block();
        builder.append_block_params_for_function_params(entry);
        builder.switch_to_block(entry);
        builder.seal_block(entry);
        let ctx = builder.block_params(entry)[0];
        let out = builder.block_params(entry)[1];
        Translator {
            builder,
            program,
            function,
            module,
            func_ids,
            helpers,
            sites,
            options,
            param_layouts,
            inlined,
            looping,
            recursion,
            outlined,
            stream,
            pending: Vec::new(),
            inline_exit: None,
            locals: Vec::new(),
            ctx,
            out,
            arg_slots: None,
            loops: Vec::new(),
            data_flags,
            header_flags,
            plain_flags,
            in_bounds: Vec::new(),
            hoisted: HashSet::default(),
            version_budget: hoist::VERSIONING_BUDGET,
            counting: true,
            parallel_parent_insts: None,
            loop_vars: Vec::new(),
            addresses: HashMap::default(),
            error_tail: None,
            checked: HashMap::default(),
            checked_block: None,
            checks: BoundsChecks::default(),
        }
    }

    /// Makes this the program's entry (`entry_signature`): the arguments
    /// come from the host's slots, and `out` is the host's results.
    fn args_in_slots(&mut self) {
        let entry = self.builder.current_block().expect("entry block");
        let params = self.builder.block_params(entry);
        self.arg_slots = Some(params[1]);
        self.out = params[2];
    }

    fn translate_function(mut self) -> (BoundsChecks, Vec<PendingChecked<'t>>) {
        // Every local gets its variables, initialised to zero / an empty array.
        self.locals = self.declare_locals(self.function);
        let entry = self.builder.current_block().expect("entry block");
        let params = self.builder.block_params(entry).to_vec();
        if self.recursion.function {
            // Recursion is limited by depth (1000 calls) and, for frames too
            // large for the stack the host provides, by the stack itself.
            // Reported at the `def` line's start (`def name`).
            let span = self.function.span;
            let header =
                Span { start: span.start, end: span.end.min(span.start + 4 + self.function.name.len() as u32) };
            let site = self.site(header, "");
            let sp = self.builder.ins().get_stack_pointer(cl::I64);
            let limit = self.builder.ins().load(cl::I64, self.plain_flags, self.ctx, abi::CONTEXT_STACK_LIMIT_OFFSET);
            let room = self.icmp(IntCC::UnsignedGreaterThanOrEqual, sp, limit);
            self.check(room, abi::ERROR_RECURSION_TOO_DEEP, site, (0, 0), None, &[]);
        }
        let mut next_param = 2;
        for (position, param) in self.function.params.iter().enumerate() {
            let ty = self.function.local(*param).ty.clone();
            let types = flat_types(&ty);
            let count = types.len();
            let values = match self.arg_slots {
                // The host's 8-byte slots, in the order of the flat values.
                Some(args) => types
                    .iter()
                    .enumerate()
                    .map(|(k, &ty)| {
                        let offset = 8 * (next_param - 2 + k) as i32;
                        self.builder.ins().load(ty, self.header_flags, args, offset)
                    })
                    .collect(),
                None => params[next_param..next_param + count].to_vec(),
            };
            next_param += count;
            let value = match &ty {
                Type::Scalar(_) => Val::Scalar(values[0]),
                Type::Tuple(_) => Val::Tuple(values),
                Type::Array(array_ty) => {
                    let layout = self.param_layouts.get(position).copied().unwrap_or_default();
                    Val::Array(self.load_array_param(values[0], array_ty.dtype, array_ty.ndim as usize, layout))
                }
                Type::None | Type::Unknown => Val::None,
            };
            self.assign(*param, value);
        }
        let function = self.function;
        let terminated = self.translate_block(&function.body);
        if !terminated {
            // Falling off the end: only reachable for functions returning None
            // (inference rejects the others).
            self.return_status(abi::STATUS_OK);
        }
        self.finish()
    }

    /// Emits the shared error exit and finalizes the function.
    /// Completes the function; returns its check counts and the checked
    /// loop copies still to translate (`translate_checked_copies`).
    fn finish(mut self) -> (BoundsChecks, Vec<PendingChecked<'t>>) {
        self.finish_error_tail();
        self.builder.seal_all_blocks();
        let config = self.module.isa().frontend_config();
        self.builder.finalize(config);
        (self.checks, self.pending)
    }

    // ---- locals ------------------------------------------------------------

    /// The variables of every local of `function`, each initialised to zero
    /// (an empty array), but for the fixed ones (`ssa::fixed_locals`), which
    /// are bound to the value of their one assignment.
    fn declare_locals(&mut self, function: &tir::Function) -> Vec<LocalVars> {
        let fixed = ssa::fixed_locals(function);
        function
            .locals
            .iter()
            .zip(fixed)
            .map(|(local, fixed)| if fixed { LocalVars::Fixed(None) } else { self.declare_local(&local.ty) })
            .collect()
    }

    fn declare_local(&mut self, ty: &Type) -> LocalVars {
        match ty {
            Type::Scalar(dtype) => {
                let var = self.builder.declare_var(clif_type(*dtype));
                let zero = self.zero(*dtype);
                self.builder.def_var(var, zero);
                LocalVars::Scalar(var)
            }
            Type::Tuple(items) => LocalVars::Tuple(
                items
                    .iter()
                    .map(|dtype| {
                        let var = self.builder.declare_var(clif_type(*dtype));
                        let zero = self.zero(*dtype);
                        self.builder.def_var(var, zero);
                        var
                    })
                    .collect(),
            ),
            Type::Array(array_ty) => {
                let new_var = |builder: &mut FunctionBuilder, value: i64| {
                    let var = builder.declare_var(cl::I64);
                    let constant = builder.ins().iconst(cl::I64, value);
                    builder.def_var(var, constant);
                    var
                };
                let data = new_var(&mut self.builder, 0);
                let shape = (0..array_ty.ndim).map(|_| new_var(&mut self.builder, 0)).collect();
                let strides = (0..array_ty.ndim).map(|_| new_var(&mut self.builder, 0)).collect();
                LocalVars::Array { data, shape, strides }
            }
            Type::None | Type::Unknown => LocalVars::None,
        }
    }

    fn assign(&mut self, local: tir::LocalId, value: Val) {
        if let LocalVars::Fixed(bound) = &mut self.locals[local.0 as usize] {
            *bound = Some(value);
            return;
        }
        match (self.locals[local.0 as usize].clone(), value) {
            (LocalVars::Scalar(var), Val::Scalar(v)) => self.builder.def_var(var, v),
            (LocalVars::Tuple(vars), Val::Tuple(values)) => {
                for (var, v) in vars.iter().zip(values) {
                    self.builder.def_var(*var, v);
                }
            }
            (LocalVars::Array { data, shape, strides }, Val::Array(array)) => {
                self.builder.def_var(data, array.data);
                for (var, v) in shape.iter().zip(&array.shape) {
                    self.builder.def_var(*var, *v);
                }
                for (var, v) in strides.iter().zip(&array.strides) {
                    self.builder.def_var(*var, *v);
                }
            }
            _ => {}
        }
    }

    fn read_local(&mut self, local: tir::LocalId) -> Val {
        match self.locals[local.0 as usize].clone() {
            LocalVars::Scalar(var) => Val::Scalar(self.builder.use_var(var)),
            LocalVars::Tuple(vars) => Val::Tuple(vars.iter().map(|var| self.builder.use_var(*var)).collect()),
            LocalVars::Array { data, shape, strides } => {
                let dtype = match &self.function.local(local).ty {
                    Type::Array(array_ty) => array_ty.dtype,
                    _ => ScalarType::F64,
                };
                Val::Array(ArrayVal {
                    data: self.builder.use_var(data),
                    shape: shape.iter().map(|var| self.builder.use_var(*var)).collect(),
                    strides: strides.iter().map(|var| self.builder.use_var(*var)).collect(),
                    dtype,
                })
            }
            // Read only where no statement reads it (the environment of an
            // outlined loop that assigns it first): any value will do.
            LocalVars::Fixed(None) => self.zero_value(&self.function.local(local).ty.clone()),
            LocalVars::Fixed(Some(value)) => value,
            LocalVars::None => Val::None,
        }
    }

    fn is_fixed(&self, local: tir::LocalId) -> bool {
        matches!(self.locals[local.0 as usize], LocalVars::Fixed(_))
    }

    /// Zero, or an empty array: the value a local starts as.
    fn zero_value(&mut self, ty: &Type) -> Val {
        match ty {
            Type::Scalar(dtype) => Val::Scalar(self.zero(*dtype)),
            Type::Tuple(items) => Val::Tuple(items.iter().map(|dtype| self.zero(*dtype)).collect()),
            Type::Array(array_ty) => {
                let zero = self.i64_const(0);
                let ndim = array_ty.ndim as usize;
                Val::Array(ArrayVal {
                    data: zero,
                    shape: vec![zero; ndim],
                    strides: vec![zero; ndim],
                    dtype: array_ty.dtype,
                })
            }
            Type::None | Type::Unknown => Val::None,
        }
    }

    // ---- constants and encodings -------------------------------------------

    fn zero(&mut self, dtype: ScalarType) -> ClValue {
        self.constant(Scalar::zero(dtype))
    }

    fn constant(&mut self, value: Scalar) -> ClValue {
        match value {
            Scalar::F32(v) => self.builder.ins().f32const(v),
            Scalar::F64(v) => self.builder.ins().f64const(v),
            other => {
                let ty = clif_type(other.ty());
                let bits = other.to_i128() as i64;
                self.builder.ins().iconst(ty, bits)
            }
        }
    }

    fn i64_const(&mut self, value: i64) -> ClValue {
        self.builder.ins().iconst(cl::I64, value)
    }

    fn i32_const(&mut self, value: u32) -> ClValue {
        self.builder.ins().iconst(cl::I32, value as i64)
    }

    /// A scalar as an 8-byte slot value (abi.rs encoding).
    fn encode(&mut self, value: ClValue, dtype: ScalarType) -> ClValue {
        match dtype {
            ScalarType::F64 => self.builder.ins().bitcast(cl::I64, MemFlagsData::new(), value),
            ScalarType::F32 => {
                let bits = self.builder.ins().bitcast(cl::I32, MemFlagsData::new(), value);
                self.builder.ins().uextend(cl::I64, bits)
            }
            ScalarType::I64 | ScalarType::U64 => value,
            d if d.is_signed_int() => self.builder.ins().sextend(cl::I64, value),
            _ => self.builder.ins().uextend(cl::I64, value),
        }
    }

    /// The inverse of [`Self::encode`].
    fn decode(&mut self, bits: ClValue, dtype: ScalarType) -> ClValue {
        match dtype {
            ScalarType::F64 => self.builder.ins().bitcast(cl::F64, MemFlagsData::new(), bits),
            ScalarType::F32 => {
                let low = self.builder.ins().ireduce(cl::I32, bits);
                self.builder.ins().bitcast(cl::F32, MemFlagsData::new(), low)
            }
            ScalarType::I64 | ScalarType::U64 => bits,
            d => self.builder.ins().ireduce(clif_type(d), bits),
        }
    }

    // ---- integer arithmetic, folded --------------------------------------
    //
    // Index, bound and address arithmetic goes through these: an operand
    // that is a constant of this function (a unit stride, a zero start, a
    // literal range) folds here, so Cranelift never sees the instruction.
    // Constants fold fully for `i64`; `x + 0`, `x * 1` and a select on a
    // constant condition fold for every type.

    /// The immediate of an `iconst` defining `value`, of any integer type
    /// (its bits; only compared with 0 and 1 for narrow types).
    fn iconst_bits(&self, value: ClValue) -> Option<i64> {
        let dfg = &self.builder.func.dfg;
        let ir::ValueDef::Result(inst, 0) = dfg.value_def(dfg.resolve_aliases(value)) else { return None };
        match dfg.insts[inst] {
            ir::InstructionData::UnaryImm { opcode: ir::Opcode::Iconst, imm } => Some(imm.bits()),
            _ => None,
        }
    }

    fn iadd(&mut self, a: ClValue, b: ClValue) -> ClValue {
        match (self.const_int(a), self.const_int(b)) {
            (Some(x), Some(y)) => self.i64_const(x.wrapping_add(y)),
            _ if self.iconst_bits(b) == Some(0) => a,
            _ if self.iconst_bits(a) == Some(0) => b,
            _ => self.builder.ins().iadd(a, b),
        }
    }

    fn isub(&mut self, a: ClValue, b: ClValue) -> ClValue {
        match (self.const_int(a), self.const_int(b)) {
            (Some(x), Some(y)) => self.i64_const(x.wrapping_sub(y)),
            _ if self.iconst_bits(b) == Some(0) => a,
            _ => self.builder.ins().isub(a, b),
        }
    }

    fn imul(&mut self, a: ClValue, b: ClValue) -> ClValue {
        match (self.const_int(a), self.const_int(b)) {
            (Some(x), Some(y)) => self.i64_const(x.wrapping_mul(y)),
            _ if self.iconst_bits(b) == Some(1) => a,
            _ if self.iconst_bits(a) == Some(1) => b,
            _ => self.builder.ins().imul(a, b),
        }
    }

    fn icmp(&mut self, cc: IntCC, a: ClValue, b: ClValue) -> ClValue {
        match (self.const_int(a), self.const_int(b)) {
            (Some(x), Some(y)) => {
                let (ux, uy) = (x as u64, y as u64);
                let holds = match cc {
                    IntCC::Equal => x == y,
                    IntCC::NotEqual => x != y,
                    IntCC::SignedLessThan => x < y,
                    IntCC::SignedLessThanOrEqual => x <= y,
                    IntCC::SignedGreaterThan => x > y,
                    IntCC::SignedGreaterThanOrEqual => x >= y,
                    IntCC::UnsignedLessThan => ux < uy,
                    IntCC::UnsignedLessThanOrEqual => ux <= uy,
                    IntCC::UnsignedGreaterThan => ux > uy,
                    IntCC::UnsignedGreaterThanOrEqual => ux >= uy,
                };
                self.builder.ins().iconst(cl::I8, holds as i64)
            }
            _ => self.builder.ins().icmp(cc, a, b),
        }
    }

    fn select(&mut self, cond: ClValue, a: ClValue, b: ClValue) -> ClValue {
        match self.iconst_bits(cond) {
            Some(0) => b,
            Some(_) => a,
            None if a == b => a,
            None => self.builder.ins().select(cond, a, b),
        }
    }

    fn iadd_imm(&mut self, a: ClValue, k: i64) -> ClValue {
        match self.const_int(a) {
            Some(x) => self.i64_const(x.wrapping_add(k)),
            None if k == 0 => a,
            None => self.builder.ins().iadd_imm_s(a, k),
        }
    }

    fn imul_imm(&mut self, a: ClValue, k: i64) -> ClValue {
        match self.const_int(a) {
            Some(x) => self.i64_const(x.wrapping_mul(k)),
            None if k == 1 => a,
            None => self.builder.ins().imul_imm_s(a, k),
        }
    }

    fn icmp_imm(&mut self, cc: IntCC, a: ClValue, k: i64) -> ClValue {
        match self.const_int(a) {
            Some(_) => {
                let k = self.i64_const(k);
                self.icmp(cc, a, k)
            }
            None => self.builder.ins().icmp_imm_s(cc, a, k),
        }
    }

    /// `a and b` of two conditions (`icmp` results: 0 or 1).
    fn both(&mut self, a: ClValue, b: ClValue) -> ClValue {
        match (self.iconst_bits(a), self.iconst_bits(b)) {
            (Some(0), _) => a,
            (_, Some(0)) => b,
            (Some(_), _) => b,
            (_, Some(_)) => a,
            _ => self.builder.ins().band(a, b),
        }
    }

    // ---- errors ------------------------------------------------------------

    fn site(&mut self, span: Span, name: &str) -> u32 {
        self.sites.push(Site { span, name: name.to_string(), check: None });
        (self.sites.len() - 1) as u32
    }

    /// A site for one check of `kind` (see `check`), at `site`'s position.
    fn check_site(&mut self, site: u32, check: runtime::CheckSite) -> u32 {
        let mut entry = self.sites[site as usize].clone();
        entry.check = Some(check);
        self.sites.push(entry);
        (self.sites.len() - 1) as u32
    }

    /// Returns `status` (results, if any, were already stored).
    fn return_status(&mut self, status: i8) {
        let status = self.builder.ins().iconst(cl::I8, status as i64);
        self.builder.ins().return_(&[status]);
    }

    /// Returns `STATUS_ERROR` (the error slot was filled by whoever failed).
    fn return_error(&mut self) {
        self.return_status(abi::STATUS_ERROR);
    }

    /// Continues only if `ok` is true; otherwise fills the error slot with
    /// `kind`, `site` and the given `(offset, i64 value)` fields and returns
    /// `STATUS_ERROR`.
    /// Continues only if `ok` is true; otherwise fails with `kind` at
    /// `site`: for index errors on `axis` with the array's `extent` and the
    /// access's `values` (its indices, the checked one at `slot`); for a
    /// negative power, `values` is the exponent. The failing path jumps to the function's shared error
    /// exit with the site and the dynamic values only.
    fn check(
        &mut self,
        ok: ClValue,
        kind: u32,
        site: u32,
        (axis, slot): (usize, usize),
        extent: Option<ClValue>,
        values: &[ClValue],
    ) {
        if self.iconst_bits(ok).is_some_and(|bits| bits != 0) {
            // Holds by construction (folded constants).
            return;
        }
        let tail = match self.error_tail {
            Some(tail) => tail,
            None => {
                let tail = self.builder.create_block();
                self.builder.set_cold_block(tail);
                self.builder.append_block_param(tail, cl::I32);
                for _ in 0..4 {
                    self.builder.append_block_param(tail, cl::I64);
                }
                self.error_tail = Some(tail);
                tail
            }
        };
        let site = self.check_site(
            site,
            runtime::CheckSite { kind, axis: axis as u32, slot: slot as u32, count: values.len().min(3) as u32 },
        );
        let zero = self.i64_const(0);
        let mut args = vec![BlockArg::from(self.i32_const(site)), BlockArg::from(extent.unwrap_or(zero))];
        for k in 0..3 {
            args.push(BlockArg::from(values.get(k).copied().unwrap_or(zero)));
        }
        let fail = self.builder.create_block();
        let cont = self.builder.create_block();
        self.builder.set_cold_block(fail);
        // The failing edge first: Cranelift's dominator tree then lists
        // `cont` before `fail`, and the e-graph elaboration visits the rest
        // of a loop body before the exit through `fail`, which would end its
        // loop-invariant hoisting for that body.
        let failed = self.icmp_imm(IntCC::Equal, ok, 0);
        self.builder.ins().brif(failed, fail, &[], cont, &[]);
        self.builder.switch_to_block(fail);
        self.builder.seal_block(fail);
        self.builder.ins().jump(tail, &args);
        self.builder.switch_to_block(cont);
        self.builder.seal_block(cont);
    }

    /// Emits the function's shared error exit, if a check used it: fill the
    /// error slot (`abi::ERROR_CHECK`) from the block's parameters, return
    /// `STATUS_ERROR`.
    fn finish_error_tail(&mut self) {
        let Some(tail) = self.error_tail else { return };
        self.builder.switch_to_block(tail);
        self.builder.seal_block(tail);
        let params = self.builder.block_params(tail).to_vec();
        let base = abi::CONTEXT_ERROR_OFFSET;
        let kind = self.i32_const(abi::ERROR_CHECK);
        self.builder.ins().store(self.plain_flags, kind, self.ctx, base + abi::ERROR_KIND_OFFSET);
        self.builder.ins().store(self.plain_flags, params[0], self.ctx, base + abi::ERROR_SITE_OFFSET);
        self.builder.ins().store(self.plain_flags, params[1], self.ctx, base + abi::ERROR_EXTENT_OFFSET);
        for k in 0..3 {
            let offset = base + abi::ERROR_VALUES_OFFSET + 8 * k as i32;
            self.builder.ins().store(self.plain_flags, params[2 + k], self.ctx, offset);
        }
        self.return_error();
    }

    /// Branches on `cond` to a fresh block, made current, or to another
    /// (returned, with a fresh block for the two to meet in).
    fn fork(&mut self, cond: ClValue) -> (Block, Block) {
        let (then, orelse, merge) =
            (self.builder.create_block(), self.builder.create_block(), self.builder.create_block());
        self.builder.ins().brif(cond, then, &[], orelse, &[]);
        self.builder.switch_to_block(then);
        self.builder.seal_block(then);
        (orelse, merge)
    }

    /// Propagates an error status from a call or a null pointer from a helper.
    fn propagate_if(&mut self, failed: ClValue) {
        let fail = self.builder.create_block();
        let cont = self.builder.create_block();
        self.builder.set_cold_block(fail);
        self.builder.ins().brif(failed, fail, &[], cont, &[]);
        self.builder.switch_to_block(fail);
        self.builder.seal_block(fail);
        self.return_error();
        self.builder.switch_to_block(cont);
        self.builder.seal_block(cont);
    }

    // ---- statements ----------------------------------------------------------

    /// Translates a block; returns true if control cannot fall out of it.
    fn translate_block(&mut self, block: &'t [tir::Stmt]) -> bool {
        let terminated = block.iter().any(|stmt| crate::stack::guarded(|| self.translate_stmt(stmt)));
        // The fixed locals assigned here go out of scope: a value defined in
        // this block must not be used where it does not dominate.
        for stmt in block {
            if let StmtKind::Assign { local, .. } = stmt.kind {
                if let LocalVars::Fixed(bound) = &mut self.locals[local.0 as usize] {
                    *bound = None;
                }
            }
        }
        terminated
    }

    /// Returns true if the statement ends control flow (return, break, continue).
    fn translate_stmt(&mut self, stmt: &'t tir::Stmt) -> bool {
        match &stmt.kind {
            StmtKind::Assign { local, value } => {
                let value = self.translate_expr(value);
                self.assign(*local, value);
                false
            }
            StmtKind::Store { array, indices, value, array_name } => {
                let array_expr = array;
                let proven = self.proven_in_bounds(hoist::store_key(stmt), array, indices);
                let array = self.translate_expr(array).array();
                let index_values: Vec<ClValue> = indices.iter().map(|i| self.translate_expr(i).scalar()).collect();
                let read = same_element_read(value, array_expr, indices);
                let value = self.translate_expr(value).scalar();
                let address = match read.and_then(|key| self.addresses.get(&key).copied()) {
                    // `a[i] op= v`: the read of the same element computed
                    // (and checked) the address just now, unconditionally.
                    Some(address) => {
                        if self.counting {
                            self.checks.removed += indices.len();
                        }
                        address
                    }
                    None => {
                        let order = self.address_order(indices);
                        self.element_address(&array, &index_values, &proven, &order, stmt.span, array_name)
                    }
                };
                self.builder.ins().store(self.data_flags, value, address, 0);
                false
            }
            StmtKind::If { cond, then, orelse } => {
                let cond = self.translate_expr(cond).scalar();
                let (else_block, merge) = self.fork(cond);
                if !self.translate_block(then) {
                    self.builder.ins().jump(merge, &[]);
                }
                self.builder.switch_to_block(else_block);
                self.builder.seal_block(else_block);
                if !self.translate_block(orelse) {
                    self.builder.ins().jump(merge, &[]);
                }
                self.builder.switch_to_block(merge);
                self.builder.seal_block(merge);
                false
            }
            StmtKind::While { cond, body } => {
                // Rotated: test, then a do-while with the test at the bottom.
                let body_block = self.builder.create_block();
                let latch = self.builder.create_block();
                let exit = self.builder.create_block();
                let first = self.translate_expr(cond).scalar();
                self.builder.ins().brif(first, body_block, &[], exit, &[]);
                self.builder.switch_to_block(body_block);
                self.loops.push(Loop { next: latch, exit });
                if !self.translate_block(body) {
                    self.builder.ins().jump(latch, &[]);
                }
                self.loops.pop();
                self.builder.switch_to_block(latch);
                self.builder.seal_block(latch);
                let again = self.translate_expr(cond).scalar();
                self.builder.ins().brif(again, body_block, &[], exit, &[]);
                self.builder.seal_block(body_block);
                self.builder.switch_to_block(exit);
                self.builder.seal_block(exit);
                false
            }
            StmtKind::ForRange { var, start, stop, step, body, range_span, parallel } => {
                self.translate_for(*var, start, stop, step, body, (*range_span, stmt.span), parallel.as_ref());
                false
            }
            StmtKind::Break => {
                let exit = self.loops.last().expect("inference checks break is in a loop").exit;
                self.builder.ins().jump(exit, &[]);
                true
            }
            StmtKind::Continue => {
                let next = self.loops.last().expect("inference checks continue is in a loop").next;
                self.builder.ins().jump(next, &[]);
                true
            }
            StmtKind::Return(value) if self.inline_exit.is_some() => {
                let results = value.as_ref().map_or_else(Vec::new, |value| self.translate_expr(value).flatten());
                let args: Vec<BlockArg> = results.into_iter().map(BlockArg::from).collect();
                let exit = self.inline_exit.expect("checked by the guard");
                self.builder.ins().jump(exit, &args);
                true
            }
            StmtKind::Return(value) => {
                if let Some(value) = value {
                    let results = match self.translate_expr(value) {
                        Val::Array(array) => {
                            let view = self.call_helper(self.helpers.alloc_view, &[self.ctx]);
                            let null = self.icmp_imm(IntCC::Equal, view, 0);
                            self.propagate_if(null);
                            self.store_array_arg(&array, view);
                            vec![view]
                        }
                        other => other.flatten(),
                    };
                    for (index, result) in results.into_iter().enumerate() {
                        self.builder.ins().store(self.plain_flags, result, self.out, 8 * index as i32);
                    }
                }
                self.return_status(abi::STATUS_OK);
                true
            }
            StmtKind::Expr(expr) => {
                self.translate_expr(expr);
                false
            }
        }
    }

    /// The Python trip count of `range(start, stop, step)` (step != 0), as
    /// an unsigned i64, computed without overflow.
    fn trip_count(&mut self, start: ClValue, stop: ClValue, step: ClValue) -> ClValue {
        if let Some(step) = self.const_int(step).filter(|&step| step != 0) {
            return self.trip_count_by(start, stop, step);
        }
        let positive = self.icmp_imm(IntCC::SignedGreaterThan, step, 0);
        // Distance and divisor as unsigned values, for either direction.
        let up_distance = self.isub(stop, start);
        let down_distance = self.isub(start, stop);
        let distance = self.select(positive, up_distance, down_distance);
        let negated = self.builder.ins().ineg(step);
        let divisor = self.select(positive, step, negated);
        let up_nonempty = self.icmp(IntCC::SignedLessThan, start, stop);
        let down_nonempty = self.icmp(IntCC::SignedGreaterThan, start, stop);
        let nonempty = self.select(positive, up_nonempty, down_nonempty);
        // Guard the division (distance - 1) / divisor against an empty range.
        let one = self.i64_const(1);
        let distance_minus_one = self.isub(distance, one);
        let quotient = self.builder.ins().udiv(distance_minus_one, divisor);
        let count = self.iadd_imm(quotient, 1);
        let zero = self.i64_const(0);
        self.select(nonempty, count, zero)
    }

    /// [`Self::trip_count`] for a step known here (most loops): one
    /// direction, and no division for a unit step.
    fn trip_count_by(&mut self, start: ClValue, stop: ClValue, step: i64) -> ClValue {
        let (low, high) = if step > 0 { (start, stop) } else { (stop, start) };
        let nonempty = self.icmp(IntCC::SignedLessThan, low, high);
        let distance = self.isub(high, low);
        let count = match step.unsigned_abs() {
            1 => distance,
            divisor => {
                let distance_minus_one = self.iadd_imm(distance, -1);
                let divisor = self.i64_const(divisor as i64);
                let quotient = self.builder.ins().udiv(distance_minus_one, divisor);
                self.iadd_imm(quotient, 1)
            }
        };
        let zero = self.i64_const(0);
        self.select(nonempty, count, zero)
    }

    /// The value of `value` when it is an integer constant of this
    /// function (as the front end emitted it; Cranelift folds the rest).
    fn const_int(&self, value: ClValue) -> Option<i64> {
        let dfg = &self.builder.func.dfg;
        let ir::ValueDef::Result(inst, 0) = dfg.value_def(dfg.resolve_aliases(value)) else { return None };
        match dfg.insts[inst] {
            ir::InstructionData::UnaryImm { opcode: ir::Opcode::Iconst, imm } if dfg.value_type(value) == cl::I64 => {
                Some(imm.bits())
            }
            _ => None,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn translate_for(
        &mut self,
        var: tir::LocalId,
        start: &'t tir::Expr,
        stop: &'t tir::Expr,
        step: &'t tir::Expr,
        body: &'t [tir::Stmt],
        (range_span, span): (Span, Span),
        parallel: Option<&'t tir::Parallel>,
    ) {
        let (start_expr, stop_expr, step_expr) = (start, stop, step);
        let start = self.translate_expr(start).scalar();
        let stop = self.translate_expr(stop).scalar();
        let step = self.translate_expr(step).scalar();
        if self.const_int(step).is_none_or(|step| step == 0) {
            let site = self.site(range_span, "");
            let nonzero = self.icmp_imm(IntCC::NotEqual, step, 0);
            self.check(nonzero, abi::ERROR_ZERO_STEP, site, (0, 0), None, &[]);
        }
        let count = self.trip_count(start, stop, step);
        let fact = hoist::in_bounds_fact(var, start_expr, stop_expr, step_expr, body);
        if let Some(fact) = fact {
            self.in_bounds.push(fact);
        }
        self.loop_vars.push(var);
        match parallel {
            Some(parallel) if parallel.runs_in_parallel() => {
                self.translate_parallel_for(var, (start, step, count), body, parallel, span)
            }
            _ => {
                let zero = self.i64_const(0);
                self.versioned_loop(var, start, step, zero, count, body);
            }
        }
        self.loop_vars.pop();
        if fact.is_some() {
            self.in_bounds.pop();
        }
    }

    /// `for t in first..end: var = start + t * step; body`, versioned when
    /// some of its index checks can be hoisted: every hoisted access is
    /// checked once over the trips `first..end`; if all pass, a copy
    /// without their checks runs, else the fully checked copy (which fails
    /// at the same trip as the interpreter).
    fn versioned_loop(
        &mut self,
        var: tir::LocalId,
        start: ClValue,
        step: ClValue,
        first: ClValue,
        end: ClValue,
        body: &'t [tir::Stmt],
    ) {
        let accesses = self.accesses_to_hoist(var, body);
        if accesses.is_empty() {
            self.counted_loop(var, start, step, first, end, body);
            return;
        }
        let offset = self.imul(first, step);
        let sub_start = self.iadd(start, offset);
        let sub_count = self.isub(end, first);
        let all_in_bounds = self.hoisted_checks_pass(&accesses, sub_start, step, sub_count);
        let axes: Vec<(usize, usize)> = accesses
            .iter()
            .flat_map(|access| {
                access
                    .indices
                    .iter()
                    .enumerate()
                    .filter(|(_, index)| index.is_some())
                    .map(|(axis, _)| (access.key, axis))
            })
            .collect();
        if self.outlines_fast_copy(body) {
            if let Some(env) = self.loop_env(var, (start, step, first, end), body) {
                self.outline_fast_copy(var, body, all_in_bounds, axes, env);
                return;
            }
        }
        let (checked, merge) = self.fork(all_in_bounds);
        self.hoisted.extend(axes.iter().copied());
        self.counted_loop(var, start, step, first, end, body);
        for axis in &axes {
            self.hoisted.remove(axis);
        }
        self.builder.ins().jump(merge, &[]);

        self.builder.set_cold_block(checked);
        self.builder.switch_to_block(checked);
        self.builder.seal_block(checked);
        // The checked copy runs only when a hoisted check failed: no small
        // loop inside it is versioned again (that would copy it twice more
        // for no speed that matters).
        if !self.call_checked_loop(var, (start, step, first, end), body) {
            let counting = std::mem::replace(&mut self.counting, false);
            let budget = std::mem::replace(&mut self.version_budget, 0);
            self.counted_loop(var, start, step, first, end, body);
            self.version_budget = budget;
            self.counting = counting;
        }
        self.builder.ins().jump(merge, &[]);

        self.builder.switch_to_block(merge);
        self.builder.seal_block(merge);
    }

    /// The checked copy of a versioned loop as a function of its own,
    /// compiled on first use (`cold.rs`), called here through
    /// `kj_checked_loop(ctx, loop, env)`. `env` holds the loop's bounds and
    /// the values of the locals the loop uses, and those it assigns come
    /// back through it. False (and nothing emitted) for a loop with a
    /// `return`, which would have to leave two functions.
    fn call_checked_loop(
        &mut self,
        var: tir::LocalId,
        bounds: (ClValue, ClValue, ClValue, ClValue),
        body: &'t [tir::Stmt],
    ) -> bool {
        let Some(env) = self.loop_env(var, bounds, body) else { return false };
        self.call_checked_copy(var, body, &env);
        self.reload_written(&env);
        true
    }

    /// Whether the fast copy of a versioned loop with this body is a
    /// function of its own (`outline_fast_copy`), for the sake of compile
    /// time: in a `prange` body (which compiles on a second core) whose
    /// kernel had little code before the loop (the first core would then
    /// idle while the second compiles the body), when the loop is sizeable
    /// and comes after sizeable code. The body's two halves then compile on
    /// two cores at once.
    fn outlines_fast_copy(&self, body: &'t [tir::Stmt]) -> bool {
        let Some(parent_insts) = self.parallel_parent_insts else { return false };
        if parent_insts >= FAST_COPY_MAX_PARENT_INSTS || self.builder.func.dfg.num_insts() < FAST_COPY_MIN_INSTS_BEFORE
        {
            return false;
        }
        let mut nodes = 0;
        tir::for_each_expr(body, &mut |_| nodes += 1);
        nodes >= FAST_COPY_MIN_NODES
    }

    /// The versioned loop run by one of two functions of its own, on one
    /// environment: the fast copy, compiled with the program (translated
    /// once this function is done), when every check hoisted for `axes`
    /// passes; the checked copy, compiled on first use, otherwise. The
    /// locals the loop assigns come back through the environment.
    fn outline_fast_copy(
        &mut self,
        var: tir::LocalId,
        body: &'t [tir::Stmt],
        all_in_bounds: ClValue,
        axes: Vec<(usize, usize)>,
        env: LoopEnv,
    ) {
        let (checked, merge) = self.fork(all_in_bounds);
        let name = format!("fast{}_{}", self.helpers.fast_copies, self.function.name);
        self.helpers.fast_copies += 1;
        let id = self
            .module
            .declare_function(&name, Linkage::Local, &loop_copy_signature(self.module))
            .expect("fast loop copies have fresh names and one signature");
        let mut hoisted = self.hoisted.clone();
        hoisted.extend(axes);
        let copy = LoopCopy::Fast { id, version_budget: self.version_budget, counting: self.counting };
        let pending = self.pending_copy(copy, name, (var, body), &env, hoisted);
        self.pending.push(pending);
        let status = self.call_helper(id, &[self.ctx, env.address]);
        let failed = self.icmp_imm(IntCC::NotEqual, status, abi::STATUS_OK as i64);
        self.propagate_if(failed);
        self.builder.ins().jump(merge, &[]);

        self.builder.set_cold_block(checked);
        self.builder.switch_to_block(checked);
        self.builder.seal_block(checked);
        self.call_checked_copy(var, body, &env);
        self.builder.ins().jump(merge, &[]);

        self.builder.switch_to_block(merge);
        self.builder.seal_block(merge);
        self.reload_written(&env);
    }

    /// Stores the environment of a loop copy run as a function of its own:
    /// the loop's bounds, then the values of the locals the loop uses.
    /// `None` (and nothing emitted) for a loop with a `return`, which would
    /// have to leave two functions.
    fn loop_env(
        &mut self,
        var: tir::LocalId,
        bounds: (ClValue, ClValue, ClValue, ClValue),
        body: &'t [tir::Stmt],
    ) -> Option<LoopEnv> {
        if tir::any_stmt(body, &mut |stmt| matches!(stmt.kind, StmtKind::Return(_))) {
            return None;
        }
        let mut written = hoist::assigned_locals(body);
        written.insert(var);
        let mut used: std::collections::BTreeSet<tir::LocalId> = written.iter().copied().collect();
        tir::for_each_expr(body, &mut |expr| {
            if let ExprKind::Local(local) = expr.kind {
                used.insert(local);
            }
        });
        // A fixed local the loop assigns is read only inside it: it neither
        // comes in nor goes back.
        used.retain(|local| !(written.contains(local) && self.is_fixed(*local)));
        let (start, step, first, end) = bounds;
        let mut values = vec![start, step, first, end];
        let mut locals = Vec::new();
        for local in used {
            let local_values = self.read_local(local).into_values();
            let slots = (values.len()..values.len() + local_values.len()).collect();
            values.extend(local_values);
            locals.push(EnvLocal { local, slots, written: written.contains(&local) });
        }
        let data = StackSlotData::new(StackSlotKind::ExplicitSlot, 8 * values.len() as u32, 3);
        let slot = self.builder.create_sized_stack_slot(data);
        let address = self.builder.ins().stack_addr(cl::I64, slot, 0);
        let types: Vec<ir::Type> = values.iter().map(|&value| self.builder.func.dfg.value_type(value)).collect();
        let constants: Vec<Option<i64>> = values.iter().map(|&value| self.iconst_bits(value)).collect();
        for (index, (value, constant)) in values.into_iter().zip(&constants).enumerate() {
            if constant.is_none() {
                self.builder.ins().store(self.plain_flags, value, address, 8 * index as i32);
            }
        }
        Some(LoopEnv { address, layout: EnvLayout { locals, types, constants } })
    }

    /// A copy of the loop `var in ..: body` to translate into a function of
    /// its own once this one is done, knowing what this translator knows
    /// here, with the checks of `hoisted` done before the loop.
    fn pending_copy(
        &self,
        copy: LoopCopy,
        name: String,
        (var, body): (tir::LocalId, &'t [tir::Stmt]),
        env: &LoopEnv,
        hoisted: HashSet<(usize, usize)>,
    ) -> PendingChecked<'t> {
        PendingChecked {
            name,
            copy,
            var,
            body,
            function: self.function,
            layout: env.layout.clone(),
            in_bounds: self.in_bounds.clone(),
            hoisted,
            loop_vars: self.loop_vars.clone(),
            recursion: self.recursion,
        }
    }

    /// Runs the loop's checked copy on `env` (compiled on first use) and
    /// leaves on its error.
    fn call_checked_copy(&mut self, var: tir::LocalId, body: &'t [tir::Stmt], env: &LoopEnv) {
        let span = body.first().map_or(self.function.span, |stmt| stmt.span);
        let site = self.site(span, "");
        let record = cold::CheckedLoop::new(site);
        let address = self.i64_const(&*record as *const cold::CheckedLoop as i64);
        let name = format!("checked{}_{}", self.helpers.checked_loops, self.function.name);
        self.helpers.checked_loops += 1;
        let pending = self.pending_copy(LoopCopy::Checked(record), name, (var, body), env, self.hoisted.clone());
        self.pending.push(pending);
        let trampoline = self.module.declare_func_in_func(self.helpers.checked_loop, self.builder.func);
        self.builder.ins().call(trampoline, &[self.ctx, address, env.address]);
        let status = self.builder.ins().load(cl::I8, self.plain_flags, env.address, 0);
        let failed = self.icmp_imm(IntCC::NotEqual, status, abi::STATUS_OK as i64);
        self.propagate_if(failed);
    }

    /// The locals a loop copy run on `env` assigned, read back from it.
    fn reload_written(&mut self, env: &LoopEnv) {
        for env_local in env.layout.locals.iter().filter(|env_local| env_local.written) {
            let values: Vec<ClValue> = env_local
                .slots
                .iter()
                .map(|&slot| {
                    self.builder.ins().load(env.layout.types[slot], self.plain_flags, env.address, 8 * slot as i32)
                })
                .collect();
            let ty = self.function.local(env_local.local).ty.clone();
            self.assign(env_local.local, Val::from_values(&ty, values));
        }
    }

    /// The accesses in the loop's body worth checking before the loop: those
    /// `hoist::hoistable` finds, less those already proven or hoisted.
    fn accesses_to_hoist(&mut self, var: tir::LocalId, body: &'t [tir::Stmt]) -> Vec<hoist::Access<'t>> {
        let (mut accesses, nodes) = hoist::hoistable(var, body, self.function, self.looping);
        if nodes > self.version_budget {
            return Vec::new();
        }
        for access in &mut accesses {
            let (key, array) = (access.key, access.array);
            for (axis, index) in access.indices.iter_mut().enumerate() {
                // Already checked by an enclosing versioned loop, or proven.
                let local = match *index {
                    Some(AxisIndex::Affine { var: Induction::Loop, negated_var: false, offset: None }) => Some(var),
                    Some(AxisIndex::Invariant(expr)) => match expr.kind {
                        ExprKind::Local(local) => Some(local),
                        _ => None,
                    },
                    _ => None,
                };
                let proven = local.is_some_and(|local| self.in_bounds.contains(&(local, array, axis as u8)));
                if proven || self.hoisted.contains(&(key, axis)) {
                    *index = None;
                }
            }
        }
        accesses.retain(|access| access.indices.iter().any(Option::is_some));
        if !accesses.is_empty() {
            self.version_budget -= nodes;
        }
        accesses
    }

    /// Whether every index of every access stays in bounds on every trip of
    /// `start + t * step` for `t < count` (the answer is irrelevant, and
    /// arbitrary, when `count` is 0). `i + c` may overflow: the bounds are
    /// computed with overflow flags, and an overflow fails the check.
    fn hoisted_checks_pass(
        &mut self,
        accesses: &[hoist::Access<'t>],
        start: ClValue,
        step: ClValue,
        count: ClValue,
    ) -> ClValue {
        let last = self.last_trip_value(start, step, count);
        let upward = self.icmp_imm(IntCC::SignedGreaterThan, step, 0);
        let low = self.select(upward, start, last);
        let high = self.select(upward, last, start);
        let mut all = self.builder.ins().iconst(cl::I8, 1);
        for access in accesses {
            let array = self.read_local(access.array).array();
            for (axis, index) in access.indices.iter().enumerate() {
                let Some(index) = *index else { continue };
                let extent = array.shape[axis];
                let inside = match index {
                    AxisIndex::Invariant(expr) => {
                        let value = self.translate_expr(expr).scalar();
                        self.icmp(IntCC::UnsignedLessThan, value, extent)
                    }
                    AxisIndex::Affine { var, negated_var, offset } => {
                        let (low, high) = match var {
                            Induction::Loop => (low, high),
                            Induction::Inner { start, stop } => {
                                let start = self.translate_expr(start).scalar();
                                let stop = self.translate_expr(stop).scalar();
                                (start, self.iadd_imm(stop, -1))
                            }
                        };
                        // index = ±v + offset for v in [low, high].
                        let (min, max) = match offset {
                            None if !negated_var => ((low, None), (high, None)),
                            None => {
                                let zero = self.i64_const(0);
                                (self.checked_sub(zero, high), self.checked_sub(zero, low))
                            }
                            Some((expr, subtracted)) => {
                                let offset = self.translate_expr(expr).scalar();
                                if negated_var {
                                    (self.checked_sub(offset, high), self.checked_sub(offset, low))
                                } else if subtracted {
                                    (self.checked_sub(low, offset), self.checked_sub(high, offset))
                                } else {
                                    (self.checked_add(low, offset), self.checked_add(high, offset))
                                }
                            }
                        };
                        let mut inside = self.icmp_imm(IntCC::SignedGreaterThanOrEqual, min.0, 0);
                        let below = self.icmp(IntCC::SignedLessThan, max.0, extent);
                        inside = self.both(inside, below);
                        for overflow in [min.1, max.1].into_iter().flatten() {
                            let fine = self.icmp_imm(IntCC::SignedGreaterThanOrEqual, overflow, 0);
                            inside = self.both(inside, fine);
                        }
                        inside
                    }
                };
                all = self.both(all, inside);
            }
        }
        all
    }

    /// The loop variable on the last of `count` trips: `start + (count - 1) *
    /// step`, wrapping (meaningless for `count == 0`).
    fn last_trip_value(&mut self, start: ClValue, step: ClValue, count: ClValue) -> ClValue {
        let trips_after_first = self.iadd_imm(count, -1);
        let distance = self.imul(trips_after_first, step);
        self.iadd(start, distance)
    }

    /// `a + b` wrapping, and a value that is negative iff the sum overflowed.
    fn checked_add(&mut self, a: ClValue, b: ClValue) -> (ClValue, Option<ClValue>) {
        let sum = self.iadd(a, b);
        let a_changed = self.builder.ins().bxor(a, sum);
        let b_changed = self.builder.ins().bxor(b, sum);
        (sum, Some(self.builder.ins().band(a_changed, b_changed)))
    }

    /// `a - b` wrapping, and a value that is negative iff it overflowed.
    fn checked_sub(&mut self, a: ClValue, b: ClValue) -> (ClValue, Option<ClValue>) {
        let difference = self.isub(a, b);
        let signs_differ = self.builder.ins().bxor(a, b);
        let a_changed = self.builder.ins().bxor(a, difference);
        (difference, Some(self.builder.ins().band(signs_differ, a_changed)))
    }

    /// `for t in first..end: var = start + t * step; body` as a rotated loop.
    fn counted_loop(
        &mut self,
        var: tir::LocalId,
        start: ClValue,
        step: ClValue,
        first: ClValue,
        end: ClValue,
        body: &'t [tir::Stmt],
    ) {
        let header = self.builder.create_block();
        let latch = self.builder.create_block();
        let exit = self.builder.create_block();
        self.builder.append_block_param(header, cl::I64);
        self.builder.append_block_param(latch, cl::I64);
        let any = self.icmp(IntCC::UnsignedLessThan, first, end);
        self.builder.ins().brif(any, header, &[BlockArg::from(first)], exit, &[]);

        self.builder.switch_to_block(header);
        let trip = self.builder.block_params(header)[0];
        let offset = self.imul(trip, step);
        let value = self.iadd(start, offset);
        self.assign(var, Val::Scalar(value));
        // `continue` jumps to the latch with this trip's counter.
        let continue_block = self.builder.create_block();
        self.loops.push(Loop { next: continue_block, exit });
        if !self.translate_block(body) {
            self.builder.ins().jump(continue_block, &[]);
        }
        self.loops.pop();
        self.builder.switch_to_block(continue_block);
        self.builder.seal_block(continue_block);
        self.builder.ins().jump(latch, &[BlockArg::from(trip)]);

        self.builder.switch_to_block(latch);
        self.builder.seal_block(latch);
        let current = self.builder.block_params(latch)[0];
        let next = self.iadd_imm(current, 1);
        let more = self.icmp(IntCC::UnsignedLessThan, next, end);
        self.builder.ins().brif(more, header, &[BlockArg::from(next)], exit, &[]);
        self.builder.seal_block(header);
        self.builder.switch_to_block(exit);
        self.builder.seal_block(exit);
    }

    /// `block_len = ceil(count / 1024)` and `blocks = ceil(count / block_len)`
    /// (`tir::reduction_block_len`), for `count > 0`.
    fn block_partition(&mut self, count: ClValue) -> (ClValue, ClValue) {
        let whole = self.builder.ins().ushr_imm_u(count, 10);
        let rest = self.builder.ins().band_imm_u(count, 1023);
        let partial_block = self.icmp_imm(IntCC::NotEqual, rest, 0);
        let partial_block = self.builder.ins().uextend(cl::I64, partial_block);
        let block_len = self.iadd(whole, partial_block);
        let len_minus_one = self.iadd_imm(block_len, -1);
        let rounded = self.iadd(count, len_minus_one);
        let blocks = self.builder.ins().udiv(rounded, block_len);
        // Guard the `count + block_len - 1` overflow for huge counts.
        let overflowed = self.icmp(IntCC::UnsignedLessThan, rounded, count);
        let exact = self.builder.ins().udiv(count, block_len);
        let blocks = self.select(overflowed, exact, blocks);
        (block_len, blocks)
    }

    /// The first trip of block `b` and the end of the blocks before `b`
    /// (`b * block_len`, or `count` for `b == blocks`, which avoids the
    /// overflow of `blocks * block_len` for huge counts).
    fn block_start(&mut self, b: ClValue, partition: &Partition) -> ClValue {
        let first = self.imul(b, partition.block_len);
        let last = self.icmp(IntCC::Equal, b, partition.blocks);
        self.select(last, partition.count, first)
    }

    /// A `prange` loop on the thread pool: its body becomes a function of
    /// its own (`outline`), called by `kj_parallel_for` on chunks of the
    /// loop's blocks with an environment of the values it reads. Reductions
    /// combine the blocks' partials as in `tir::ReduceOp`, and afterwards
    /// the loop variable holds its last value, as after a serial loop.
    fn translate_parallel_for(
        &mut self,
        var: tir::LocalId,
        (start, step, count): (ClValue, ClValue, ClValue),
        body: &'t [tir::Stmt],
        parallel: &'t tir::Parallel,
        span: Span,
    ) {
        let skip = self.builder.create_block();
        let work = self.builder.create_block();
        let any = self.icmp_imm(IntCC::NotEqual, count, 0);
        self.builder.ins().brif(any, work, &[], skip, &[]);
        self.builder.switch_to_block(work);
        self.builder.seal_block(work);
        let (block_len, blocks) = self.block_partition(count);

        // One slot of 1024 partials per reduction.
        let reductions = &parallel.reductions;
        let partials = if reductions.is_empty() {
            self.i64_const(0)
        } else {
            let size = PARTIALS_PER_REDUCTION * 8 * reductions.len() as u32;
            let slot = self.builder.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, size, 3));
            self.builder.ins().stack_addr(cl::I64, slot, 0)
        };

        // The environment: the loop's header, then the captured values.
        let captures = self.captures(body, var, parallel);
        let env_slots = ENV_CAPTURES + captures.iter().flat_map(|c| &c.slots).filter(|s| s.constant.is_none()).count();
        let env = self.builder.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            8 * env_slots as u32,
            3,
        ));
        let env = self.builder.ins().stack_addr(cl::I64, env, 0);
        for (index, value) in [start, step, count, block_len, blocks, partials].into_iter().enumerate() {
            self.builder.ins().store(self.plain_flags, value, env, 8 * index as i32);
        }
        for capture in &captures {
            let values = self.read_local(capture.local).into_values();
            for (slot, value) in capture.slots.iter().zip(values) {
                if slot.constant.is_none() {
                    self.builder.ins().store(self.plain_flags, value, env, slot.offset);
                }
            }
        }

        let min_trips = self.options.parallel_min_trips.unwrap_or_else(|| tir::parallel_min_trips(body));
        let outlined = self.outline(var, body, parallel, &captures, (span, min_trips));
        let outlined = self.module.declare_func_in_func(outlined, self.builder.func);
        let address = self.builder.ins().func_addr(cl::I64, outlined);
        let min_trips = self.i64_const(min_trips.min(i64::MAX as u64) as i64);
        let status = self.call_helper(self.helpers.parallel_for, &[self.ctx, address, env, blocks, count, min_trips]);
        let failed = self.icmp_imm(IntCC::NotEqual, status, 0);
        self.propagate_if(failed);

        // Combine: before ⊕ tree(partials).
        for (index, reduction) in reductions.iter().enumerate() {
            let dtype = self.reduction_dtype(reduction);
            let before = self.read_local(reduction.local).scalar();
            let op = self.i32_const(abi::reduce_code(reduction.op));
            let code = self.i32_const(abi::dtype_code(dtype));
            let base = self.iadd_imm(partials, (PARTIALS_PER_REDUCTION * 8) as i64 * index as i64);
            let tree = self.call_helper(self.helpers.reduce_tree, &[op, code, base, blocks]);
            let before_bits = self.encode(before, dtype);
            let combined = self.call_helper(self.helpers.combine, &[op, code, before_bits, tree]);
            let value = self.decode(combined, dtype);
            self.assign(reduction.local, Val::Scalar(value));
        }
        let last = self.last_trip_value(start, step, count);
        self.assign(var, Val::Scalar(last));
        self.builder.ins().jump(skip, &[]);
        self.builder.switch_to_block(skip);
        self.builder.seal_block(skip);
    }

    /// What the body of a parallel loop reads from before the loop: every
    /// local it reads except the loop variable and the reductions (whose
    /// partials start from the identity), with where each of its values
    /// goes in the environment. Integer constants are not stored but
    /// rematerialised in the body, so a contiguous array's unit stride stays
    /// a constant there.
    fn captures(&mut self, body: &'t [tir::Stmt], var: tir::LocalId, parallel: &tir::Parallel) -> Vec<Capture> {
        let mut read = std::collections::BTreeSet::new();
        tir::for_each_expr(body, &mut |expr| {
            if let ExprKind::Local(local) = expr.kind {
                read.insert(local);
            }
        });
        read.remove(&var);
        for reduction in &parallel.reductions {
            read.remove(&reduction.local);
        }
        // A fixed local the body assigns is read only after that, inside it.
        for local in hoist::assigned_locals(body) {
            if self.is_fixed(local) {
                read.remove(&local);
            }
        }
        let mut next = ENV_CAPTURES;
        // Known layouts hold only for parameters of the function being
        // translated (not of an inlined callee) that it never rebinds.
        let rebound =
            if self.inline_exit.is_none() { hoist::assigned_locals(&self.function.body) } else { HashSet::default() };
        read.into_iter()
            .map(|local| {
                let layout = match self.function.params.iter().position(|&param| param == local) {
                    Some(position) if self.inline_exit.is_none() && !rebound.contains(&local) => {
                        self.param_layouts.get(position).copied().unwrap_or_default()
                    }
                    _ => Layout::Any,
                };
                let values = self.read_local(local).into_values();
                let slots = values
                    .into_iter()
                    .map(|value| {
                        let ty = self.builder.func.dfg.value_type(value);
                        let constant = self.integer_constant(value);
                        let offset = 8 * next as i32;
                        if constant.is_none() {
                            next += 1;
                        }
                        CaptureSlot { ty, offset, constant }
                    })
                    .collect();
                Capture { local, slots, layout }
            })
            .collect()
    }

    /// The value of `value` if an `iconst` defines it.
    fn integer_constant(&self, value: ClValue) -> Option<i64> {
        let dfg = &self.builder.func.dfg;
        let ir::ValueDef::Result(inst, _) = dfg.value_def(dfg.resolve_aliases(value)) else { return None };
        match dfg.insts[inst] {
            ir::InstructionData::UnaryImm { opcode: ir::Opcode::Iconst, imm } => Some(imm.bits()),
            _ => None,
        }
    }

    /// Compiles the body of a parallel loop as a function of its own
    /// (`kj_parallel_for` in abi.rs), queued in `self.outlined`.
    fn outline(
        &mut self,
        var: tir::LocalId,
        body: &'t [tir::Stmt],
        parallel: &'t tir::Parallel,
        captures: &[Capture],
        (span, min_trips): (Span, u64),
    ) -> FuncId {
        let mut signature = self.module.make_signature();
        signature.params.extend([AbiParam::new(cl::I64); 4]);
        signature.returns.push(AbiParam::new(cl::I8));
        let name = format!("prange{}_{}", self.helpers.outlined, self.function.name);
        self.helpers.outlined += 1;
        let id = self
            .module
            .declare_function(&name, Linkage::Local, &signature)
            .expect("outlined bodies have fresh names and one signature");
        let mut func = ir::Function::with_name_signature(ir::UserFuncName::default(), signature);
        let mut builder_context = FunctionBuilderContext::new();
        let builder = FunctionBuilder::new(&mut func, &mut builder_context);
        let mut inner = Translator::new(
            builder,
            self.program,
            self.function,
            &mut *self.module,
            self.func_ids,
            &mut *self.helpers,
            &mut *self.sites,
            self.options,
            &[],
            (self.inlined, self.looping),
            Recursion { function: false, ..self.recursion },
            (&mut *self.outlined, self.stream),
        );
        inner.in_bounds = self.in_bounds.clone();
        inner.hoisted = self.hoisted.clone();
        inner.loop_vars = self.loop_vars.clone();
        inner.counting = self.counting;
        inner.parallel_parent_insts = Some(self.builder.func.dfg.num_insts());
        let (checks, pending) = inner.translate_outlined(var, body, parallel, captures);
        self.checks.add(checks);
        let label = format!("{name} (prange body in {})", self.function.name);
        self.stream.push(codegen::Job { id, func, label });
        let counted = translate_checked_copies(
            pending,
            self.program,
            &mut *self.module,
            self.func_ids,
            &mut *self.helpers,
            &mut *self.sites,
            self.options,
            (self.inlined, self.looping),
            (&mut *self.outlined, self.stream),
        );
        self.checks.add(counted);
        let report = ParallelLoop {
            span,
            function: self.function.name.clone(),
            body: name,
            reductions: parallel.reductions.iter().map(|reduction| reduction.op).collect(),
            min_trips,
        };
        self.outlined.push(Outlined::Parallel { report });
        id
    }

    /// The outlined body: `body(ctx, env, first_block, end_block)` runs the
    /// trips of blocks `first_block..end_block`, each block of a loop with
    /// reductions starting from the identity and leaving its partials in
    /// the environment's partials area.
    fn translate_outlined(
        mut self,
        var: tir::LocalId,
        body: &'t [tir::Stmt],
        parallel: &'t tir::Parallel,
        captures: &[Capture],
    ) -> (BoundsChecks, Vec<PendingChecked<'t>>) {
        self.locals = self.declare_locals(self.function);
        let entry = self.builder.current_block().expect("entry block");
        let params = self.builder.block_params(entry).to_vec();
        let (env, first_block, end_block) = (params[1], params[2], params[3]);
        let header: Vec<ClValue> =
            (0..ENV_CAPTURES).map(|k| self.builder.ins().load(cl::I64, self.header_flags, env, 8 * k as i32)).collect();
        let (start, step) = (header[0], header[1]);
        let partition = Partition { count: header[2], block_len: header[3], blocks: header[4] };
        let partials = header[5];
        for capture in captures {
            let values: Vec<ClValue> = capture
                .slots
                .iter()
                .map(|slot| match slot.constant {
                    Some(constant) => self.builder.ins().iconst(slot.ty, constant),
                    None => self.builder.ins().load(slot.ty, self.header_flags, env, slot.offset),
                })
                .collect();
            let ty = self.function.local(capture.local).ty.clone();
            let mut value = Val::from_values(&ty, values);
            if let (Val::Array(array), Layout::C | Layout::F) = (&mut value, capture.layout) {
                // The loaded strides go unused (pure loads: never emitted).
                array.strides = self.contiguous_strides(&array.shape, capture.layout);
            }
            self.assign(capture.local, value);
        }

        if parallel.reductions.is_empty() {
            let first = self.block_start(first_block, &partition);
            let end = self.block_start(end_block, &partition);
            self.versioned_loop(var, start, step, first, end, body);
        } else {
            // for b in first_block..end_block
            let block_header = self.builder.create_block();
            let blocks_done = self.builder.create_block();
            self.builder.append_block_param(block_header, cl::I64);
            let any = self.icmp(IntCC::UnsignedLessThan, first_block, end_block);
            self.builder.ins().brif(any, block_header, &[BlockArg::from(first_block)], blocks_done, &[]);
            self.builder.switch_to_block(block_header);
            let b = self.builder.block_params(block_header)[0];
            for reduction in &parallel.reductions {
                let dtype = self.reduction_dtype(reduction);
                let identity = self.constant(reduction.op.identity(dtype));
                self.assign(reduction.local, Val::Scalar(identity));
            }
            let next = self.iadd_imm(b, 1);
            let first = self.block_start(b, &partition);
            let end = self.block_start(next, &partition);
            self.versioned_loop(var, start, step, first, end, body);
            for (index, reduction) in parallel.reductions.iter().enumerate() {
                let dtype = self.reduction_dtype(reduction);
                let partial = self.read_local(reduction.local).scalar();
                let encoded = self.encode(partial, dtype);
                let offset = self.builder.ins().ishl_imm_u(b, 3);
                let address = self.iadd(partials, offset);
                let area = (PARTIALS_PER_REDUCTION * 8) as i32 * index as i32;
                self.builder.ins().store(self.plain_flags, encoded, address, area);
            }
            let more = self.icmp(IntCC::UnsignedLessThan, next, end_block);
            self.builder.ins().brif(more, block_header, &[BlockArg::from(next)], blocks_done, &[]);
            self.builder.seal_block(block_header);
            self.builder.switch_to_block(blocks_done);
            self.builder.seal_block(blocks_done);
        }
        self.return_status(abi::STATUS_OK);
        self.finish()
    }

    fn reduction_dtype(&self, reduction: &tir::Reduction) -> ScalarType {
        self.function.local(reduction.local).ty.scalar().expect("reductions are scalars")
    }

    fn call_helper(&mut self, id: FuncId, args: &[ClValue]) -> ClValue {
        let func_ref = self.module.declare_func_in_func(id, self.builder.func);
        let call = self.builder.ins().call(func_ref, args);
        self.builder.inst_results(call)[0]
    }

    // ---- arrays ------------------------------------------------------------

    fn load_array_arg(&mut self, pointer: ClValue, dtype: ScalarType, ndim: usize) -> ArrayVal {
        let data = self.builder.ins().load(cl::I64, self.header_flags, pointer, abi::ARRAY_DATA_OFFSET);
        let shape = (0..ndim)
            .map(|k| {
                self.builder.ins().load(cl::I64, self.header_flags, pointer, abi::ARRAY_SHAPE_OFFSET + 8 * k as i32)
            })
            .collect();
        let strides = (0..ndim)
            .map(|k| {
                self.builder.ins().load(cl::I64, self.header_flags, pointer, abi::ARRAY_STRIDES_OFFSET + 8 * k as i32)
            })
            .collect();
        ArrayVal { data, shape, strides, dtype }
    }

    /// An array parameter: its `ArrayArg`, with strides computed from the
    /// extents when the host guarantees a contiguous layout (so the unit
    /// stride is a constant and folds away).
    fn load_array_param(&mut self, pointer: ClValue, dtype: ScalarType, ndim: usize, layout: Layout) -> ArrayVal {
        let mut array = self.load_array_arg(pointer, dtype, ndim);
        if layout != Layout::Any {
            // The stride loads are pure and, now unused, never emitted.
            array.strides = self.contiguous_strides(&array.shape, layout);
        }
        array
    }

    fn store_array_arg(&mut self, array: &ArrayVal, pointer: ClValue) {
        self.builder.ins().store(self.plain_flags, array.data, pointer, abi::ARRAY_DATA_OFFSET);
        for k in 0..3 {
            let (extent, stride) = match (array.shape.get(k), array.strides.get(k)) {
                (Some(e), Some(s)) => (*e, *s),
                _ => (self.i64_const(1), self.i64_const(0)),
            };
            self.builder.ins().store(self.plain_flags, extent, pointer, abi::ARRAY_SHAPE_OFFSET + 8 * k as i32);
            self.builder.ins().store(self.plain_flags, stride, pointer, abi::ARRAY_STRIDES_OFFSET + 8 * k as i32);
        }
    }

    /// An array argument for a call: a stack slot holding its `ArrayArg`.
    fn spill_array(&mut self, array: &ArrayVal) -> ClValue {
        let slot = self.builder.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            std::mem::size_of::<ArrayArg>() as u32,
            3,
        ));
        let pointer = self.builder.ins().stack_addr(cl::I64, slot, 0);
        self.store_array_arg(array, pointer);
        pointer
    }

    /// Wraps a negative index (`i + extent`) and, with bounds checks on,
    /// checks `0 <= i < extent`, reporting every index of the access.
    fn checked_index(&mut self, index: ClValue, extent: ClValue, axis: usize, all: &[ClValue], site: u32) -> ClValue {
        // The same index against the same extent, checked earlier in this
        // straight-line code (`a[r0, c] + b[r1, c]`), is in bounds here.
        if self.checked_block != self.builder.current_block() {
            self.checked.clear();
        }
        if let Some(&position) = self.checked.get(&(index, extent)) {
            if self.counting {
                self.checks.removed += 1;
            }
            return position;
        }
        if !self.options.boundscheck {
            let negative = self.icmp_imm(IntCC::SignedLessThan, index, 0);
            let wrapped = self.iadd(index, extent);
            return self.select(negative, wrapped, index);
        }
        if self.counting {
            self.checks.kept += 1;
        }
        // Wrap a negative index with a select, then one unsigned compare.
        // (A cold block for the wrap would leave the hot path one compare,
        // but Cranelift's e-graph elaboration stops hoisting loop
        // invariants for the code after the join of such a diamond.)
        let negative = self.icmp_imm(IntCC::SignedLessThan, index, 0);
        let wrapped = self.iadd(index, extent);
        let position = self.select(negative, wrapped, index);
        let inside = self.icmp(IntCC::UnsignedLessThan, position, extent);
        // A view's checked item need not be at position `axis` of `all`.
        let slot = all.iter().position(|value| *value == index).unwrap_or(axis);
        self.check(inside, abi::ERROR_INDEX_OUT_OF_BOUNDS, site, (axis, slot), Some(extent), all);
        self.checked.insert((index, extent), position);
        self.checked_block = self.builder.current_block();
        position
    }

    /// Which indices of the access `key`, `array[indices]`, need no check:
    /// all if an enclosing versioned loop checked them, else the loop
    /// variables of enclosing `range(a.shape[k])` loops indexing `a` on axis `k`.
    fn proven_in_bounds(&self, key: usize, array: &tir::Expr, indices: &[tir::Expr]) -> Vec<Proof> {
        let array_local = match array.kind {
            ExprKind::Local(local) => Some(local),
            _ => None,
        };
        indices
            .iter()
            .enumerate()
            .map(|(axis, index)| match index.kind {
                _ if self.hoisted.contains(&(key, axis)) => Proof::Hoisted,
                ExprKind::Local(var) if array_local.is_some_and(|a| self.in_bounds.contains(&(var, a, axis as u8))) => {
                    Proof::Fact
                }
                _ => Proof::None,
            })
            .collect()
    }

    fn element_address(
        &mut self,
        array: &ArrayVal,
        indices: &[ClValue],
        proven: &[Proof],
        order: &[usize],
        span: Span,
        name: &str,
    ) -> ClValue {
        let site = self.site(span, name);
        let positions: Vec<ClValue> = (0..indices.len())
            .map(|axis| {
                if proven[axis] != Proof::None {
                    // 0 <= index < extent holds: no wrap, no check.
                    if self.counting {
                        match proven[axis] {
                            Proof::Hoisted => self.checks.hoisted += 1,
                            _ => self.checks.removed += 1,
                        }
                    }
                    indices[axis]
                } else {
                    self.checked_index(indices[axis], array.shape[axis], axis, indices, site)
                }
            })
            .collect();
        // data + position * stride * size, axis by axis in `order`, so that
        // the terms of indices that do not change in the innermost loop form
        // a prefix the loop-invariant code motion can hoist.
        let size = array.dtype.size_bytes() as i64;
        let mut address = array.data;
        for &axis in order {
            let term = self.imul(positions[axis], array.strides[axis]);
            let bytes = self.imul_imm(term, size);
            address = self.iadd(address, bytes);
        }
        address
    }

    /// The axes of an access in the order their address terms are added:
    /// by the depth of the deepest enclosing loop variable the index uses
    /// (anything not a simple function of locals counts as deepest).
    fn address_order(&self, indices: &[tir::Expr]) -> Vec<usize> {
        fn depth(expr: &tir::Expr, loop_vars: &[tir::LocalId]) -> usize {
            match &expr.kind {
                ExprKind::Const(_) => 0,
                ExprKind::Local(local) => loop_vars.iter().rposition(|var| var == local).map_or(0, |k| k + 1),
                ExprKind::Cast(inner) | ExprKind::Unary(_, inner) => depth(inner, loop_vars),
                ExprKind::Binary(_, a, b) => depth(a, loop_vars).max(depth(b, loop_vars)),
                _ => usize::MAX,
            }
        }
        let mut order: Vec<usize> = (0..indices.len()).collect();
        order.sort_by_key(|&axis| depth(&indices[axis], &self.loop_vars));
        order
    }

    fn translate_view(&mut self, array: ArrayVal, items: &'t [ViewItem], span: Span, name: &str) -> ArrayVal {
        let site = self.site(span, name);
        // Index errors name only the integer items (tir.rs).
        let mut index_values = Vec::new();
        let mut evaluated = Vec::new();
        for item in items {
            match item {
                ViewItem::Index(index) => {
                    let v = self.translate_expr(index).scalar();
                    index_values.push(v);
                    evaluated.push((Some(v), None, None));
                }
                ViewItem::Range { lower, upper } => {
                    let lower = lower.as_ref().map(|e| self.translate_expr(e).scalar());
                    let upper = upper.as_ref().map(|e| self.translate_expr(e).scalar());
                    evaluated.push((None, lower, upper));
                }
            }
        }
        let mut data = array.data;
        let mut shape = Vec::new();
        let mut strides = Vec::new();
        let element = array.dtype.size_bytes() as i64;
        for (axis, (index, lower, upper)) in evaluated.into_iter().enumerate() {
            let extent = array.shape[axis];
            let stride = array.strides[axis];
            if let Some(index) = index {
                let position = self.checked_index(index, extent, axis, &index_values, site);
                let offset = self.imul(position, stride);
                let bytes = self.imul_imm(offset, element);
                data = self.iadd(data, bytes);
            } else {
                let zero = self.i64_const(0);
                let low = match lower {
                    Some(v) => self.clamp_bound(v, extent),
                    None => zero,
                };
                let high = match upper {
                    Some(v) => self.clamp_bound(v, extent),
                    None => extent,
                };
                let length = self.isub(high, low);
                let empty = self.icmp_imm(IntCC::SignedLessThan, length, 0);
                let length = self.select(empty, zero, length);
                let offset = self.imul(low, stride);
                let bytes = self.imul_imm(offset, element);
                data = self.iadd(data, bytes);
                shape.push(length);
                strides.push(stride);
            }
        }
        for axis in items.len()..array.shape.len() {
            shape.push(array.shape[axis]);
            strides.push(array.strides[axis]);
        }
        ArrayVal { data, shape, strides, dtype: array.dtype }
    }

    /// Python slice clamping of one bound: negative counts from the end, then
    /// clamp to `[0, extent]`.
    fn clamp_bound(&mut self, bound: ClValue, extent: ClValue) -> ClValue {
        let negative = self.icmp_imm(IntCC::SignedLessThan, bound, 0);
        let wrapped = self.iadd(bound, extent);
        let adjusted = self.select(negative, wrapped, bound);
        let zero = self.i64_const(0);
        let below = self.icmp_imm(IntCC::SignedLessThan, adjusted, 0);
        let adjusted = self.select(below, zero, adjusted);
        let above = self.icmp(IntCC::SignedGreaterThan, adjusted, extent);
        self.select(above, extent, adjusted)
    }

    // ---- expressions ---------------------------------------------------------

    fn translate_expr(&mut self, expr: &'t tir::Expr) -> Val {
        crate::stack::guarded(|| self.translate_expr_inner(expr))
    }

    fn translate_expr_inner(&mut self, expr: &'t tir::Expr) -> Val {
        match &expr.kind {
            ExprKind::Const(value) => Val::Scalar(self.constant(*value)),
            ExprKind::Local(local) => self.read_local(*local),
            ExprKind::Cast(inner) => {
                let from = inner.ty.scalar().expect("casts are between scalars");
                let to = expr.ty.scalar().expect("casts are between scalars");
                let value = self.translate_expr(inner).scalar();
                Val::Scalar(self.cast(value, from, to))
            }
            ExprKind::Unary(op, inner) => {
                let dtype = inner.ty.scalar().expect("unary operands are scalars");
                let value = self.translate_expr(inner).scalar();
                Val::Scalar(self.translate_unary(*op, value, dtype))
            }
            ExprKind::Binary(op, left, right) => {
                let dtype = left.ty.scalar().expect("binary operands are scalars");
                let a = self.translate_expr(left).scalar();
                let b = self.translate_expr(right).scalar();
                Val::Scalar(self.translate_binary(*op, a, b, dtype, expr.span))
            }
            ExprKind::Powi(base, exponent) => {
                let base = self.translate_expr(base).scalar();
                Val::Scalar(self.translate_powi(base, *exponent, expr.ty.scalar().expect("float")))
            }
            ExprKind::Compare { first, rest } => Val::Scalar(self.translate_compare(first, rest)),
            ExprKind::And(left, right) | ExprKind::Or(left, right) => {
                let is_and = matches!(expr.kind, ExprKind::And(..));
                let dtype = expr.ty.scalar().expect("and/or give scalars");
                Val::Scalar(self.translate_and_or(left, right, dtype, is_and))
            }
            ExprKind::IfExp { cond, then, orelse } => self.translate_if_exp(cond, then, orelse, &expr.ty),
            ExprKind::Index { array, indices, name } => {
                let proven = self.proven_in_bounds(hoist::index_key(expr), array, indices);
                let array = self.translate_expr(array).array();
                let index_values: Vec<ClValue> = indices.iter().map(|i| self.translate_expr(i).scalar()).collect();
                let order = self.address_order(indices);
                let address = self.element_address(&array, &index_values, &proven, &order, expr.span, name);
                self.addresses.insert(hoist::index_key(expr), address);
                Val::Scalar(self.builder.ins().load(clif_type(array.dtype), self.data_flags, address, 0))
            }
            ExprKind::View { array, items, name } => {
                let array = self.translate_expr(array).array();
                Val::Array(self.translate_view(array, items, expr.span, name))
            }
            ExprKind::Call { func, args } => {
                if self.inlined.contains(&hoist::index_key(expr)) {
                    self.translate_inlined_call(*func, args, expr.span)
                } else {
                    self.translate_call(*func, args, expr.span)
                }
            }
            ExprKind::Builtin { op, args } => self.translate_builtin(*op, args, expr),
            ExprKind::Tuple(items) => Val::Tuple(items.iter().map(|item| self.translate_expr(item).scalar()).collect()),
            ExprKind::TupleGet(tuple, index) => {
                // An element of a tuple local is one variable: read only that
                // one (unpacking n names then reads n variables, not n^2).
                if let ExprKind::Local(local) = tuple.kind {
                    if let LocalVars::Tuple(vars) = &self.locals[local.0 as usize] {
                        let var = vars[*index as usize];
                        return Val::Scalar(self.builder.use_var(var));
                    }
                }
                match self.translate_expr(tuple) {
                    Val::Tuple(values) => Val::Scalar(values[*index as usize]),
                    _ => unreachable!("typed IR guarantees a tuple"),
                }
            }
            ExprKind::NewArray { shape, fill } => self.translate_new_array(shape, fill, expr),
            ExprKind::Arange { start, stop, step } => {
                let dtype = expr.ty.array().expect("arange makes an array").dtype;
                let values: Vec<ClValue> = [start, stop, step]
                    .iter()
                    .map(|e| {
                        let v = self.translate_expr(e).scalar();
                        self.encode(v, dtype)
                    })
                    .collect();
                let site = self.site(expr.span, "");
                let code = self.i32_const(abi::dtype_code(dtype));
                let site_value = self.i32_const(site);
                let pointer = self
                    .call_helper(self.helpers.arange, &[self.ctx, code, values[0], values[1], values[2], site_value]);
                Val::Array(self.array_from_helper(pointer, dtype, 1))
            }
        }
    }

    /// A new (C-contiguous) array from a runtime helper.
    fn array_from_helper(&mut self, pointer: ClValue, dtype: ScalarType, ndim: usize) -> ArrayVal {
        let null = self.icmp_imm(IntCC::Equal, pointer, 0);
        self.propagate_if(null);
        self.load_array_param(pointer, dtype, ndim, Layout::C)
    }

    fn translate_new_array(&mut self, shape: &'t [tir::Expr], fill: &'t Fill, expr: &'t tir::Expr) -> Val {
        let array_ty = expr.ty.array().expect("new arrays are arrays");
        let mut dims: Vec<ClValue> = shape.iter().map(|d| self.translate_expr(d).scalar()).collect();
        let (fill_code, value_bits) = match fill {
            Fill::Empty | Fill::Zeros => (abi::FILL_ZEROS, self.i64_const(0)),
            Fill::Ones => (abi::FILL_ONES, self.i64_const(0)),
            Fill::Value(value) => {
                let v = self.translate_expr(value).scalar();
                (abi::FILL_VALUE, self.encode(v, array_ty.dtype))
            }
        };
        while dims.len() < 3 {
            dims.push(self.i64_const(1));
        }
        let site = self.site(expr.span, "");
        let code = self.i32_const(abi::dtype_code(array_ty.dtype));
        let ndim = self.i32_const(array_ty.ndim as u32);
        let fill_value = self.i32_const(fill_code);
        let site_value = self.i32_const(site);
        let pointer = self.call_helper(
            self.helpers.new_array,
            &[self.ctx, code, ndim, dims[0], dims[1], dims[2], fill_value, value_bits, site_value],
        );
        // The array is C-contiguous with exactly these extents: its strides
        // follow from them (so the unit stride is a constant).
        let null = self.icmp_imm(IntCC::Equal, pointer, 0);
        self.propagate_if(null);
        let data = self.builder.ins().load(cl::I64, self.header_flags, pointer, abi::ARRAY_DATA_OFFSET);
        let ndim = array_ty.ndim as usize;
        let shape = dims[..ndim].to_vec();
        let strides = self.contiguous_strides(&shape, Layout::C);
        Val::Array(ArrayVal { data, shape, strides, dtype: array_ty.dtype })
    }

    /// The strides of a contiguous array of extents `shape` in `layout`
    /// (C or F order).
    fn contiguous_strides(&mut self, shape: &[ClValue], layout: Layout) -> Vec<ClValue> {
        let ndim = shape.len();
        let axes: Vec<usize> = if layout == Layout::F { (0..ndim).collect() } else { (0..ndim).rev().collect() };
        let mut strides = vec![self.i64_const(1); ndim];
        let mut stride = strides[0];
        for axis in axes {
            strides[axis] = stride;
            stride = self.imul(stride, shape[axis]);
        }
        strides
    }

    fn translate_call(&mut self, func: tir::FuncId, args: &'t [tir::Expr], span: Span) -> Val {
        let ret = &self.program.function(func).ret;
        let result_types = flat_types(ret);
        let slot = self.builder.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            8 * result_types.len().max(1) as u32,
            3,
        ));
        let out = self.builder.ins().stack_addr(cl::I64, slot, 0);
        let mut values = vec![self.ctx, out];
        for arg in args {
            match self.translate_expr(arg) {
                Val::Array(array) => {
                    let pointer = self.spill_array(&array);
                    values.push(pointer);
                }
                other => values.extend(other.flatten()),
            }
        }
        // Recursion limit: the entry runs at depth 0.
        let depth = self.recursion.tracked.then(|| {
            let site = self.site(span, "");
            let depth = self.builder.ins().load(cl::I64, self.plain_flags, self.ctx, abi::CONTEXT_DEPTH_OFFSET);
            let deeper = self.iadd_imm(depth, 1);
            let allowed = self.icmp_imm(IntCC::SignedLessThanOrEqual, deeper, RECURSION_LIMIT as i64);
            self.check(allowed, abi::ERROR_RECURSION_TOO_DEEP, site, (0, 0), None, &[]);
            self.builder.ins().store(self.plain_flags, deeper, self.ctx, abi::CONTEXT_DEPTH_OFFSET);
            depth
        });
        let callee = self.module.declare_func_in_func(self.func_ids[func.0 as usize], self.builder.func);
        let call = self.builder.ins().call(callee, &values);
        let results = self.builder.inst_results(call).to_vec();
        if let Some(depth) = depth {
            self.builder.ins().store(self.plain_flags, depth, self.ctx, abi::CONTEXT_DEPTH_OFFSET);
        }
        let failed = self.icmp_imm(IntCC::NotEqual, results[0], abi::STATUS_OK as i64);
        self.propagate_if(failed);
        let values: Vec<ClValue> = result_types
            .iter()
            .enumerate()
            .map(|(index, ty)| self.builder.ins().load(*ty, self.plain_flags, out, 8 * index as i32))
            .collect();
        match ret {
            Type::Scalar(_) => Val::Scalar(values[0]),
            Type::Tuple(_) => Val::Tuple(values),
            Type::Array(array_ty) => Val::Array(self.load_array_arg(values[0], array_ty.dtype, array_ty.ndim as usize)),
            Type::None | Type::Unknown => Val::None,
        }
    }

    /// A call to a small leaf function, translated in place: its locals
    /// become variables of this function (zero at the call, as at a call's
    /// start), its `return` a jump to a merge block. The only trace of the
    /// call is the recursion-depth check (in a program that counts depth),
    /// which a leaf needs at its call site only.
    fn translate_inlined_call(&mut self, func: tir::FuncId, args: &'t [tir::Expr], span: Span) -> Val {
        let callee = self.program.function(func);
        let values: Vec<Val> = args.iter().map(|arg| self.translate_expr(arg)).collect();
        if self.recursion.tracked {
            let site = self.site(span, "");
            let depth = self.builder.ins().load(cl::I64, self.plain_flags, self.ctx, abi::CONTEXT_DEPTH_OFFSET);
            let allowed = self.icmp_imm(IntCC::SignedLessThan, depth, RECURSION_LIMIT as i64);
            self.check(allowed, abi::ERROR_RECURSION_TOO_DEEP, site, (0, 0), None, &[]);
        }

        let exit = self.builder.create_block();
        let result_types = flat_types(&callee.ret);
        for ty in &result_types {
            self.builder.append_block_param(exit, *ty);
        }
        let callee_locals = self.declare_locals(callee);
        let saved = Inlining {
            function: std::mem::replace(&mut self.function, callee),
            locals: std::mem::replace(&mut self.locals, callee_locals),
            loops: std::mem::take(&mut self.loops),
            in_bounds: std::mem::take(&mut self.in_bounds),
            loop_vars: std::mem::take(&mut self.loop_vars),
            inline_exit: self.inline_exit.replace(exit),
        };
        for (param, value) in callee.params.iter().zip(values) {
            self.assign(*param, value);
        }
        if !self.translate_block(&callee.body) {
            // Falling off the end: a function returning None.
            self.builder.ins().jump(exit, &[]);
        }
        self.function = saved.function;
        self.locals = saved.locals;
        self.loops = saved.loops;
        self.in_bounds = saved.in_bounds;
        self.loop_vars = saved.loop_vars;
        self.inline_exit = saved.inline_exit;

        self.builder.switch_to_block(exit);
        self.builder.seal_block(exit);
        let results = self.builder.block_params(exit).to_vec();
        match &callee.ret {
            Type::Scalar(_) => Val::Scalar(results[0]),
            Type::Tuple(_) => Val::Tuple(results),
            Type::Array(_) | Type::None | Type::Unknown => Val::None,
        }
    }

    fn translate_if_exp(&mut self, cond: &'t tir::Expr, then: &'t tir::Expr, orelse: &'t tir::Expr, ty: &Type) -> Val {
        let cond = self.translate_expr(cond).scalar();
        let then_block = self.builder.create_block();
        let else_block = self.builder.create_block();
        let merge = self.builder.create_block();
        let types = match ty {
            Type::Array(array_ty) => vec![cl::I64; 1 + 2 * array_ty.ndim as usize],
            other => flat_types(other),
        };
        for t in &types {
            self.builder.append_block_param(merge, *t);
        }
        self.builder.ins().brif(cond, then_block, &[], else_block, &[]);
        for (block, arm) in [(then_block, then), (else_block, orelse)] {
            self.builder.switch_to_block(block);
            self.builder.seal_block(block);
            let value = self.translate_expr(arm);
            let values: Vec<BlockArg> = match value {
                Val::Array(array) => std::iter::once(array.data)
                    .chain(array.shape.iter().copied())
                    .chain(array.strides.iter().copied())
                    .map(BlockArg::from)
                    .collect(),
                other => other.flatten().into_iter().map(BlockArg::from).collect(),
            };
            self.builder.ins().jump(merge, &values);
        }
        self.builder.switch_to_block(merge);
        self.builder.seal_block(merge);
        let params = self.builder.block_params(merge).to_vec();
        match ty {
            Type::Scalar(_) => Val::Scalar(params[0]),
            Type::Tuple(_) => Val::Tuple(params),
            Type::Array(array_ty) => {
                let n = array_ty.ndim as usize;
                Val::Array(ArrayVal {
                    data: params[0],
                    shape: params[1..1 + n].to_vec(),
                    strides: params[1 + n..].to_vec(),
                    dtype: array_ty.dtype,
                })
            }
            Type::None | Type::Unknown => Val::None,
        }
    }

    /// Python truthiness of a scalar, as an `i8` 0/1.
    fn truthy(&mut self, value: ClValue, dtype: ScalarType) -> ClValue {
        match dtype {
            ScalarType::F32 => {
                let zero = self.builder.ins().f32const(0.0);
                self.builder.ins().fcmp(FloatCC::NotEqual, value, zero)
            }
            ScalarType::F64 => {
                let zero = self.builder.ins().f64const(0.0);
                self.builder.ins().fcmp(FloatCC::NotEqual, value, zero)
            }
            _ => self.icmp_imm(IntCC::NotEqual, value, 0),
        }
    }

    fn translate_and_or(
        &mut self,
        left: &'t tir::Expr,
        right: &'t tir::Expr,
        dtype: ScalarType,
        is_and: bool,
    ) -> ClValue {
        let a = self.translate_expr(left).scalar();
        let truth = self.truthy(a, dtype);
        let evaluate_right = self.builder.create_block();
        let merge = self.builder.create_block();
        self.builder.append_block_param(merge, clif_type(dtype));
        if is_and {
            self.builder.ins().brif(truth, evaluate_right, &[], merge, &[BlockArg::from(a)]);
        } else {
            self.builder.ins().brif(truth, merge, &[BlockArg::from(a)], evaluate_right, &[]);
        }
        self.builder.switch_to_block(evaluate_right);
        self.builder.seal_block(evaluate_right);
        let b = self.translate_expr(right).scalar();
        self.builder.ins().jump(merge, &[BlockArg::from(b)]);
        self.builder.switch_to_block(merge);
        self.builder.seal_block(merge);
        self.builder.block_params(merge)[0]
    }

    fn translate_compare(&mut self, first: &'t tir::Expr, rest: &'t [(tir::CmpOp, ScalarType, tir::Expr)]) -> ClValue {
        let mut previous = self.translate_expr(first).scalar();
        let mut previous_ty = first.ty.scalar().expect("comparisons are between scalars");
        if rest.len() == 1 {
            let (op, dtype, operand) = &rest[0];
            let current = self.translate_expr(operand).scalar();
            let current_ty = operand.ty.scalar().expect("scalar");
            let a = self.cast(previous, previous_ty, *dtype);
            let b = self.cast(current, current_ty, *dtype);
            return self.compare(*op, a, b, *dtype);
        }
        // A chain: stop at the first false comparison.
        let merge = self.builder.create_block();
        self.builder.append_block_param(merge, cl::I8);
        for (index, (op, dtype, operand)) in rest.iter().enumerate() {
            let current = self.translate_expr(operand).scalar();
            let current_ty = operand.ty.scalar().expect("scalar");
            let a = self.cast(previous, previous_ty, *dtype);
            let b = self.cast(current, current_ty, *dtype);
            let result = self.compare(*op, a, b, *dtype);
            if index + 1 == rest.len() {
                self.builder.ins().jump(merge, &[BlockArg::from(result)]);
            } else {
                let next = self.builder.create_block();
                self.builder.ins().brif(result, next, &[], merge, &[BlockArg::from(result)]);
                self.builder.switch_to_block(next);
                self.builder.seal_block(next);
            }
            previous = current;
            previous_ty = current_ty;
        }
        self.builder.switch_to_block(merge);
        self.builder.seal_block(merge);
        self.builder.block_params(merge)[0]
    }

    fn compare(&mut self, op: tir::CmpOp, a: ClValue, b: ClValue, dtype: ScalarType) -> ClValue {
        use tir::CmpOp::*;
        if dtype.is_float() {
            let cc = match op {
                Lt => FloatCC::LessThan,
                Le => FloatCC::LessThanOrEqual,
                Gt => FloatCC::GreaterThan,
                Ge => FloatCC::GreaterThanOrEqual,
                Eq => FloatCC::Equal,
                Ne => FloatCC::NotEqual,
            };
            return self.builder.ins().fcmp(cc, a, b);
        }
        let signed = dtype.is_signed_int();
        let cc = match (op, signed) {
            (Lt, true) => IntCC::SignedLessThan,
            (Le, true) => IntCC::SignedLessThanOrEqual,
            (Gt, true) => IntCC::SignedGreaterThan,
            (Ge, true) => IntCC::SignedGreaterThanOrEqual,
            (Lt, false) => IntCC::UnsignedLessThan,
            (Le, false) => IntCC::UnsignedLessThanOrEqual,
            (Gt, false) => IntCC::UnsignedGreaterThan,
            (Ge, false) => IntCC::UnsignedGreaterThanOrEqual,
            (Eq, _) => IntCC::Equal,
            (Ne, _) => IntCC::NotEqual,
        };
        self.icmp(cc, a, b)
    }

    /// Scalar conversion with exactly [`Scalar::cast`]'s rules.
    fn cast(&mut self, value: ClValue, from: ScalarType, to: ScalarType) -> ClValue {
        if from == to {
            return value;
        }
        if to == ScalarType::Bool {
            return self.truthy(value, from);
        }
        match (from.is_float(), to.is_float()) {
            (true, true) => {
                if to == ScalarType::F64 {
                    self.builder.ins().fpromote(cl::F64, value)
                } else {
                    self.builder.ins().fdemote(cl::F32, value)
                }
            }
            (false, true) => {
                let ty = clif_type(to);
                if from.is_signed_int() {
                    self.builder.ins().fcvt_from_sint(ty, value)
                } else {
                    self.builder.ins().fcvt_from_uint(ty, value)
                }
            }
            (true, false) => {
                // Truncate to i64 with saturation (NaN gives 0), then wrap; u64
                // saturates on its own above 2^63.
                let as_i64 = self.builder.ins().fcvt_to_sint_sat(cl::I64, value);
                let result = if to == ScalarType::U64 {
                    let as_u64 = self.builder.ins().fcvt_to_uint_sat(cl::I64, value);
                    let limit = if from == ScalarType::F64 {
                        self.builder.ins().f64const(9_223_372_036_854_775_808.0)
                    } else {
                        self.builder.ins().f32const(9_223_372_036_854_775_808.0)
                    };
                    let high = self.builder.ins().fcmp(FloatCC::GreaterThanOrEqual, value, limit);
                    self.select(high, as_u64, as_i64)
                } else {
                    as_i64
                };
                self.int_resize(result, ScalarType::I64, to)
            }
            (false, false) => self.int_resize(value, from, to),
        }
    }

    /// Integer width change: sign- or zero-extend by the source's signedness,
    /// or truncate (bool counts as an unsigned 0/1 byte).
    fn int_resize(&mut self, value: ClValue, from: ScalarType, to: ScalarType) -> ClValue {
        let (from_ty, to_ty) = (clif_type(from), clif_type(to));
        if from_ty == to_ty {
            value
        } else if from_ty.bits() > to_ty.bits() {
            self.builder.ins().ireduce(to_ty, value)
        } else if from.is_signed_int() {
            self.builder.ins().sextend(to_ty, value)
        } else {
            self.builder.ins().uextend(to_ty, value)
        }
    }

    fn translate_unary(&mut self, op: tir::UnaryOp, value: ClValue, dtype: ScalarType) -> ClValue {
        match op {
            tir::UnaryOp::Neg if dtype.is_float() => self.builder.ins().fneg(value),
            tir::UnaryOp::Neg => self.builder.ins().ineg(value),
            tir::UnaryOp::Invert if dtype.is_bool() => self.builder.ins().bxor_imm_u(value, 1),
            tir::UnaryOp::Invert => self.builder.ins().bnot(value),
            tir::UnaryOp::Not => self.builder.ins().bxor_imm_u(value, 1),
        }
    }

    fn translate_powi(&mut self, base: ClValue, exponent: i32, dtype: ScalarType) -> ClValue {
        let one = self.constant(Scalar::from_i128_wrapping(1, dtype));
        if exponent == 0 {
            return one;
        }
        let mut result = base;
        for _ in 1..exponent.unsigned_abs() {
            result = self.builder.ins().fmul(result, base);
        }
        if exponent < 0 {
            result = self.builder.ins().fdiv(one, result);
        }
        result
    }

    fn math_call(&mut self, symbol: Option<mathlib::MathSymbol>, args: &[ClValue]) -> ClValue {
        let symbol = symbol.expect("mathlib covers every float builtin and operator");
        let id = self.helpers.math(self.module, &symbol).expect("math routines have known shapes");
        self.call_helper(id, args)
    }

    fn translate_binary(&mut self, op: BinaryOp, a: ClValue, b: ClValue, dtype: ScalarType, span: Span) -> ClValue {
        let float = dtype.is_float();
        let signed = dtype.is_signed_int();
        let bits = clif_type(dtype).bits() as i64;
        match op {
            BinaryOp::Add if float => self.builder.ins().fadd(a, b),
            BinaryOp::Sub if float => self.builder.ins().fsub(a, b),
            BinaryOp::Mul if float => self.builder.ins().fmul(a, b),
            BinaryOp::Div => self.builder.ins().fdiv(a, b),
            BinaryOp::Add => self.iadd(a, b),
            BinaryOp::Sub => self.isub(a, b),
            BinaryOp::Mul => self.imul(a, b),
            BinaryOp::FloorDiv | BinaryOp::Mod | BinaryOp::Pow if float => {
                let symbol = mathlib::operator_symbol(op, dtype);
                self.math_call(symbol, &[a, b])
            }
            BinaryOp::FloorDiv | BinaryOp::Mod => {
                let site = self.site(span, "");
                let nonzero = self.icmp_imm(IntCC::NotEqual, b, 0);
                self.check(nonzero, abi::ERROR_DIVISION_BY_ZERO, site, (0, 0), None, &[]);
                if !signed {
                    return if op == BinaryOp::FloorDiv {
                        self.builder.ins().udiv(a, b)
                    } else {
                        self.builder.ins().urem(a, b)
                    };
                }
                // MIN / -1 would trap: divide by 1 instead and fix up. (Not
                // folded: every divisor goes through this select, even a
                // constant one.)
                let minus_one = self.builder.ins().icmp_imm_s(IntCC::Equal, b, -1);
                let one = self.builder.ins().iconst(clif_type(dtype), 1);
                let divisor = self.builder.ins().select(minus_one, one, b);
                let quotient = self.builder.ins().sdiv(a, divisor);
                let remainder = self.builder.ins().srem(a, divisor);
                let negated = self.builder.ins().ineg(a);
                let quotient = self.select(minus_one, negated, quotient);
                // Floor: when the remainder is nonzero and its sign differs
                // from the divisor's, step the quotient down and the remainder
                // over by the divisor.
                let has_remainder = self.icmp_imm(IntCC::NotEqual, remainder, 0);
                let signs = self.builder.ins().bxor(remainder, b);
                let differ = self.icmp_imm(IntCC::SignedLessThan, signs, 0);
                let adjust = self.both(has_remainder, differ);
                if op == BinaryOp::FloorDiv {
                    let lower = self.iadd_imm(quotient, -1);
                    self.select(adjust, lower, quotient)
                } else {
                    let shifted = self.iadd(remainder, b);
                    self.select(adjust, shifted, remainder)
                }
            }
            BinaryOp::Pow => {
                if signed {
                    let site = self.site(span, "");
                    let exponent = self.int_resize(b, dtype, ScalarType::I64);
                    let nonnegative = self.icmp_imm(IntCC::SignedGreaterThanOrEqual, b, 0);
                    self.check(nonnegative, abi::ERROR_NEGATIVE_POWER, site, (0, 0), None, &[exponent]);
                }
                let base = self.int_resize(a, dtype, ScalarType::I64);
                let exponent = if signed {
                    self.int_resize(b, dtype, ScalarType::I64)
                } else {
                    self.int_resize(b, dtype, ScalarType::U64)
                };
                let result = self.call_helper(self.helpers.ipow, &[base, exponent]);
                self.int_resize(result, ScalarType::I64, dtype)
            }
            BinaryOp::BitAnd => self.builder.ins().band(a, b),
            BinaryOp::BitOr => self.builder.ins().bor(a, b),
            BinaryOp::BitXor => self.builder.ins().bxor(a, b),
            BinaryOp::LShift | BinaryOp::RShift => {
                // Amounts outside [0, bits) give 0 (or -1 for >> of a negative).
                let out_of_range = self.icmp_imm(IntCC::UnsignedGreaterThanOrEqual, b, bits);
                let zero = self.builder.ins().iconst(clif_type(dtype), 0);
                if op == BinaryOp::LShift {
                    let shifted = self.builder.ins().ishl(a, b);
                    self.select(out_of_range, zero, shifted)
                } else if signed {
                    let shifted = self.builder.ins().sshr(a, b);
                    let negative = self.icmp_imm(IntCC::SignedLessThan, a, 0);
                    let minus_one = self.builder.ins().iconst(clif_type(dtype), -1);
                    let fill = self.select(negative, minus_one, zero);
                    self.select(out_of_range, fill, shifted)
                } else {
                    let shifted = self.builder.ins().ushr(a, b);
                    self.select(out_of_range, zero, shifted)
                }
            }
        }
    }

    fn translate_builtin(&mut self, op: Builtin, args: &'t [tir::Expr], expr: &'t tir::Expr) -> Val {
        if let Builtin::Shape(axis) = op {
            let array = self.translate_expr(&args[0]).array();
            return Val::Scalar(array.shape[axis as usize]);
        }
        if op == Builtin::Size {
            let array = self.translate_expr(&args[0]).array();
            let mut size = self.i64_const(1);
            for extent in &array.shape {
                size = self.imul(size, *extent);
            }
            return Val::Scalar(size);
        }
        let operand_ty = args[0].ty.scalar().expect("builtin operands are scalars");
        let values: Vec<ClValue> = args.iter().map(|a| self.translate_expr(a).scalar()).collect();
        let x = values[0];
        let float = operand_ty.is_float();
        let result = match op {
            Builtin::Abs if float => self.builder.ins().fabs(x),
            // `iabs` reads its operand as signed: `abs(np.uint16(65527))` is
            // 65527, not 9.
            Builtin::Abs if operand_ty.is_unsigned_int() => x,
            Builtin::Abs => self.builder.ins().iabs(x),
            Builtin::Min | Builtin::Max => {
                let mut accumulator = x;
                for value in &values[1..] {
                    let better = if op == Builtin::Min {
                        self.compare(tir::CmpOp::Lt, *value, accumulator, operand_ty)
                    } else {
                        self.compare(tir::CmpOp::Gt, *value, accumulator, operand_ty)
                    };
                    accumulator = self.select(better, *value, accumulator);
                }
                accumulator
            }
            Builtin::Round if float => {
                let nearest = self.builder.ins().nearest(x);
                self.builder.ins().fcvt_to_sint_sat(cl::I64, nearest)
            }
            Builtin::Round => self.int_resize(x, operand_ty, ScalarType::I64),
            Builtin::Sqrt => self.builder.ins().sqrt(x),
            Builtin::Floor => self.builder.ins().floor(x),
            Builtin::Ceil => self.builder.ins().ceil(x),
            Builtin::Trunc => self.builder.ins().trunc(x),
            Builtin::Copysign => self.builder.ins().fcopysign(x, values[1]),
            Builtin::IsNan => self.builder.ins().fcmp(FloatCC::Unordered, x, x),
            Builtin::IsInf | Builtin::IsFinite => {
                let magnitude = self.builder.ins().fabs(x);
                let infinity = if operand_ty == ScalarType::F32 {
                    self.builder.ins().f32const(f32::INFINITY)
                } else {
                    self.builder.ins().f64const(f64::INFINITY)
                };
                let cc = if op == Builtin::IsInf { FloatCC::Equal } else { FloatCC::LessThan };
                self.builder.ins().fcmp(cc, magnitude, infinity)
            }
            _ => {
                let symbol = mathlib::builtin_symbol(op, operand_ty);
                self.math_call(symbol, &values)
            }
        };
        let _ = expr;
        Val::Scalar(result)
    }
}
