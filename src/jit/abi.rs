//! The contract between generated code and the runtime: memory layouts,
//! scalar encodings, error slots and the runtime helpers' signatures.
//!
//! A leaf of the `jit` module: codegen (`lower`) emits code that follows these
//! layouts, and the runtime (`runtime`) implements the helpers and reads the
//! results. Neither may assume anything not written here.
//!
//! # Generated functions
//!
//! Every specialisation `f` of the typed program becomes one native function
//! (platform C calling convention):
//!
//! ```text
//! f(ctx: *mut CallContext, out: *mut u64, params...) -> status: i8
//! ```
//!
//! - a scalar parameter is passed as its Cranelift type (`bool` as `i8` 0/1,
//!   `iN`/`uN` as `iN`, `f32`, `f64`); a tuple parameter as its elements; an
//!   array parameter as a pointer to an [`ArrayArg`] (read-only for the callee);
//! - `status` is [`STATUS_OK`] or [`STATUS_ERROR`]; on error the results are
//!   unspecified and `ctx.error` says what happened;
//! - results are stored through `out`, one 8-byte slot each (encoded as
//!   below, each value at its own width): one for a scalar, one per element
//!   for a tuple, the address of a runtime-owned [`ArrayArg`] (from
//!   `kj_alloc_view`) for an array, none for `None`. (Returning them in
//!   registers fails for tuples: x86-64 has two integer return registers.)
//!
//! The host calls one *entry* per program:
//!
//! ```text
//! entry(ctx: *mut CallContext, args: *const u64, results: *mut u64) -> i8
//! ```
//!
//! `args` holds one 8-byte slot per scalar (encoded as below), per tuple
//! element, and per array (the address of an `ArrayArg`); `results` is the
//! entry function's `out`. The entry is the entry function itself when no
//! function calls it (it reads its arguments from the slots), and otherwise
//! a trampoline that unpacks the slots and calls it.
//!
//! # Scalar encoding in 8-byte slots
//!
//! Little-endian, value in the low bytes: ints sign- or zero-extended as their
//! type says, `bool` as 0 or 1, `f32` as its bits in the low 32 bits, `f64` as
//! its bits. Readers look only at the low `size_of(T)` bytes.

/// An array as generated code sees it. Strides are in elements (not bytes)
/// and may be negative; `data` points at element `[0, 0, 0]`. Unused axes
/// (beyond the array's ndim) have shape 1 and stride 0.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ArrayArg {
    pub data: *mut u8,
    pub shape: [i64; 3],
    pub strides: [i64; 3],
}

/// Byte offsets of [`ArrayArg`] fields, for generated loads and stores.
pub const ARRAY_DATA_OFFSET: i32 = 0;
pub const ARRAY_SHAPE_OFFSET: i32 = 8;
pub const ARRAY_STRIDES_OFFSET: i32 = 32;
pub const ARRAY_ARG_SIZE: u32 = 56;

/// Per-call state, the first parameter of every generated function.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct CallContext {
    /// Current kernel-call depth (the entry kernel is 0).
    pub depth: i64,
    /// Filled in by the code that fails, before it returns `STATUS_ERROR`.
    pub error: ErrorSlot,
    /// Runtime-owned state (allocations); opaque to generated code.
    pub runtime: *mut u8,
    /// The lowest stack address generated code may grow to: a function on
    /// a cycle of calls checks its stack pointer against it on entry and
    /// fails with `ERROR_RECURSION_TOO_DEEP` below it (0: no limit).
    pub stack_limit: u64,
    /// How many threads `prange` loops may use (0: the process default,
    /// `pool::default_threads`). Read by the runtime only.
    pub threads: u64,
}

pub const CONTEXT_DEPTH_OFFSET: i32 = 0;
pub const CONTEXT_ERROR_OFFSET: i32 = 8;
pub const CONTEXT_STACK_LIMIT_OFFSET: i32 = std::mem::offset_of!(CallContext, stack_limit) as i32;

/// What went wrong, written by generated code or a runtime helper.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorSlot {
    /// One of the `ERROR_*` kinds.
    pub kind: u32,
    /// Index into the compiled program's site table (span and array name).
    pub site: u32,
    /// For index errors: the axis, the original index and the extent.
    pub axis: i64,
    pub index: i64,
    pub extent: i64,
    /// For index errors: how many indices, and their original values. For
    /// `ERROR_BAD_ARRAY_SIZE`: how many extents, and the requested shape. For
    /// `ERROR_NEGATIVE_POWER`: `values[0]` is the exponent.
    pub count: i64,
    pub values: [i64; 3],
}

pub const ERROR_KIND_OFFSET: i32 = 0;
pub const ERROR_SITE_OFFSET: i32 = 4;
pub const ERROR_AXIS_OFFSET: i32 = 8;
pub const ERROR_INDEX_OFFSET: i32 = 16;
pub const ERROR_EXTENT_OFFSET: i32 = 24;
pub const ERROR_COUNT_OFFSET: i32 = 32;
pub const ERROR_VALUES_OFFSET: i32 = 40;

pub const STATUS_OK: i8 = 0;
pub const STATUS_ERROR: i8 = 1;

pub const ERROR_INDEX_OUT_OF_BOUNDS: u32 = 1;
pub const ERROR_DIVISION_BY_ZERO: u32 = 2;
pub const ERROR_ZERO_STEP: u32 = 3;
pub const ERROR_BAD_ARRAY_SIZE: u32 = 4;
pub const ERROR_RECURSION_TOO_DEEP: u32 = 5;
pub const ERROR_NEGATIVE_POWER: u32 = 6;
/// A failed check in generated code: the slot holds the site, the extent
/// and the values; the kind, axis and count come from the site table
/// (`runtime::Site::check`), which keeps the failing paths small.
pub const ERROR_CHECK: u32 = 7;
/// A runtime helper caught a panic (a kernjit bug); `site` is meaningful.
pub const ERROR_INTERNAL: u32 = 99;

/// Dtype codes passed to helpers: the index in [`crate::types::ScalarType::ALL`]
/// (`bool` 0, `i8` 1, ... `f64` 10).
pub fn dtype_code(dtype: crate::types::ScalarType) -> u32 {
    crate::types::ScalarType::ALL.iter().position(|d| *d == dtype).expect("every dtype is listed") as u32
}

/// Fill codes for [`kj_new_array`]: `np.empty` and `np.zeros` (both
/// zero-filled), `np.ones`, `np.full` (with `value_bits`).
pub const FILL_ZEROS: u32 = 0;
pub const FILL_ONES: u32 = 1;
pub const FILL_VALUE: u32 = 2;

/// Reduction operator codes: the order of [`crate::tir::ReduceOp`]'s variants
/// (`Add` 0, `Mul` 1, `Min` 2, `Max` 3, `BitOr` 4, `BitAnd` 5, `BitXor` 6).
pub fn reduce_code(op: crate::tir::ReduceOp) -> u32 {
    use crate::tir::ReduceOp::*;
    match op {
        Add => 0,
        Mul => 1,
        Min => 2,
        Max => 3,
        BitOr => 4,
        BitAnd => 5,
        BitXor => 6,
    }
}

// Runtime helpers (implemented in `runtime`, registered as JIT symbols; every
// one catches panics and reports ERROR_INTERNAL instead of unwinding):
//
// kj_new_array(ctx, dtype: u32, ndim: u32, d0: i64, d1: i64, d2: i64,
//              fill: u32, value_bits: u64, site: u32) -> *mut ArrayArg
//     A new C-contiguous, zero/one/value-filled array owned by the call's
//     runtime; null after writing ERROR_BAD_ARRAY_SIZE (negative extent, size
//     over MAX_ARRAY_BYTES with zero extents counted as 1, or refused memory).
//
// kj_arange(ctx, dtype: u32, start: u64, stop: u64, step: u64, site: u32) -> *mut ArrayArg
//     `np.arange` with bounds encoded in `dtype`; null after ERROR_ZERO_STEP
//     or ERROR_BAD_ARRAY_SIZE. Same values as the interpreter.
//
// kj_alloc_view(ctx) -> *mut ArrayArg
//     A runtime-owned ArrayArg for returning a view; generated code fills it.
//     Null only on allocation failure (with ERROR_INTERNAL).
//
// kj_parallel_for(ctx, body: *const u8, env: *const u8, blocks: i64, trips: i64, min_trips: i64) -> i8
//     Runs an outlined prange body over the blocks 0..blocks on the thread
//     pool (serially if trips < min_trips, with one thread, or when already
//     inside a parallel loop). `body` has the type
//         body(ctx: *mut CallContext, env: *const u8, first_block: i64, end_block: i64) -> i8
//     and is called with a fresh context per chunk (same depth and runtime,
//     its own error slot and stack limit). Returns STATUS_ERROR with the
//     error of the lowest failing block copied into `ctx`.
//
// kj_reduce_tree(op: u32, dtype: u32, partials: *const u64, count: i64) -> u64
//     tir::combine_tree over `count` encoded partials (count >= 1).
//
// kj_combine(op: u32, dtype: u32, a: u64, b: u64) -> u64
//     tir::ReduceOp::combine on two encoded values.
//
// kj_ipow(base: i64, exponent: i64) -> i64
//     Wrapping integer power by repeated squaring. The exponent's bits are
//     read as an unsigned number (signed callers check for negative exponents
//     first, so a u64 exponent above 2^63 works too); the caller truncates to
//     the type's width.
