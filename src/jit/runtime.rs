//! The runtime side of compiled code: the per-call state that owns every
//! array a call allocates, the `extern "C"` helpers generated code calls, the
//! symbol table the JIT links against, the marshalling of host values into
//! and out of 8-byte slots, and the mapping of error slots back to
//! [`RuntimeError`]s.
//!
//! Everything here follows the contract written in [`super::abi`] and gives
//! the interpreter's results bit for bit: sizes, fills and `np.arange` values
//! come from the same shared functions in [`crate::value`], reductions from
//! [`crate::tir`]. This module never generates code and never evaluates
//! programs. No helper may unwind into generated code: helpers with a context
//! catch panics and report `ERROR_INTERNAL`; the others cannot panic.
//!
//! Ownership: a [`CallRuntime`] lives for one call. Arrays created by the
//! call are typed vectors it owns; the [`ArrayArg`]s it hands out are boxes
//! it owns. Neither ever moves or shrinks while the runtime lives, so every
//! pointer generated code holds stays valid until the call ends. When the
//! call returns one whole runtime array, [`result_value`] moves that vector
//! out as the result without copying it.

use super::abi::{self, ArrayArg, CallContext, ErrorSlot};
use crate::mathlib;
use crate::span::Span;
use crate::tir::{self, ReduceOp};
use crate::types::{ScalarType, Type, MAX_NDIM};
use crate::value::{self, ArrayData, Element, RuntimeError, RuntimeErrorKind, Scalar, Value};
use ndarray::{ArrayD, IxDyn};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::sync::{Mutex, MutexGuard};

// ---- Per-call state ----

/// Everything one call of compiled code allocates: the arrays it creates and
/// the [`ArrayArg`]s handed to generated code. Dropping it frees them all
/// (except an array [`result_value`] moved out).
///
/// Helpers reach it through [`CallContext::runtime`] as a shared reference,
/// and it locks internally, so code running on several threads (the bodies
/// of a parallel loop) may share one runtime.
#[derive(Default)]
pub struct CallRuntime {
    state: Mutex<RuntimeState>,
}

impl CallRuntime {
    pub fn new() -> CallRuntime {
        CallRuntime::default()
    }

    /// How many arrays the call has created so far.
    pub fn array_count(&self) -> usize {
        self.state().buffers.len()
    }

    /// Takes ownership of a new array's elements and returns the address of a
    /// runtime-owned C-contiguous [`ArrayArg`] describing them with `shape`
    /// (whose product is `data.len()`).
    fn add_array<T: RuntimeElement>(&self, mut data: Vec<T>, shape: &[usize]) -> *mut ArrayArg {
        let mut arg = ArrayArg { data: data.as_mut_ptr().cast::<u8>(), shape: [1; 3], strides: [0; 3] };
        let strides = c_strides(shape);
        for (axis, &extent) in shape.iter().enumerate().take(MAX_NDIM) {
            arg.shape[axis] = i64::try_from(extent).unwrap_or(i64::MAX);
            arg.strides[axis] = strides[axis];
        }
        // Moving the vector into the runtime moves its header, never its heap
        // buffer, so `arg.data` stays valid.
        let mut state = self.state();
        state.buffers.push(T::into_buffer(data));
        state.add_array_arg(arg)
    }

    /// A runtime-owned copy of `arg` whose address stays valid until the
    /// runtime is dropped.
    fn add_array_arg(&self, arg: ArrayArg) -> *mut ArrayArg {
        self.state().add_array_arg(arg)
    }

    /// Locks the state. A panic while the lock was held (caught by a helper)
    /// leaves it consistent: every change is a single `push`.
    fn state(&self) -> MutexGuard<'_, RuntimeState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn state_mut(&mut self) -> &mut RuntimeState {
        self.state.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Default)]
struct RuntimeState {
    /// Every array the call created, in creation order.
    buffers: Vec<Buffer>,
    /// Every `ArrayArg` handed to generated code.
    array_args: Vec<OwnedArrayArg>,
}

impl RuntimeState {
    fn add_array_arg(&mut self, arg: ArrayArg) -> *mut ArrayArg {
        let owned = OwnedArrayArg::new(arg);
        let address = owned.0.as_ptr();
        self.array_args.push(owned);
        address
    }

    /// If `arg` (of `dtype`, with the logical `shape`) is exactly one whole
    /// runtime array in C order, moves that array out as an owned
    /// `ArrayData` of `shape`, without copying its elements.
    fn take_whole_array(&mut self, dtype: ScalarType, arg: &ArrayArg, shape: &[usize]) -> Option<ArrayData> {
        let len = shape.iter().try_fold(1usize, |product, &extent| product.checked_mul(extent))?;
        let strides = c_strides(shape);
        let c_ordered = shape.iter().zip(strides).zip(arg.strides).all(|((&extent, c), s)| extent <= 1 || c == s);
        if !c_ordered {
            return None;
        }
        // Later arrays are likelier results, so search from the end.
        let buffer = self.buffers.iter_mut().rev().find(|buffer| {
            buffer.dtype() == dtype && buffer.len() == len && ptr::eq(buffer.data_address(), arg.data.cast_const())
        })?;
        buffer.take_as_array(shape)
    }
}

/// A heap-allocated [`ArrayArg`] owned through a raw pointer, so that its
/// address is never invalidated by moving the owner (as moving a `Box` could
/// be under Rust's aliasing rules).
struct OwnedArrayArg(NonNull<ArrayArg>);

impl OwnedArrayArg {
    fn new(arg: ArrayArg) -> OwnedArrayArg {
        OwnedArrayArg(NonNull::from(Box::leak(Box::new(arg))))
    }
}

impl Drop for OwnedArrayArg {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::leak` in `new` and is released
        // only here, once; generated code only uses it while the call runs,
        // before the runtime (and so this value) is dropped.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

// SAFETY: `OwnedArrayArg` owns its allocation exclusively, like a
// `Box<ArrayArg>`; the `data` pointer inside is only an address the runtime
// never dereferences except in `result_value`, under that function's contract.
unsafe impl Send for OwnedArrayArg {}

/// A fresh context for one call using `runtime`: depth 0, no error.
pub fn new_context(runtime: &mut CallRuntime) -> CallContext {
    CallContext {
        depth: 0,
        error: ErrorSlot::default(),
        runtime: (runtime as *mut CallRuntime).cast::<u8>(),
        stack_limit: 0,
        threads: 0,
    }
}

// ---- Runtime helpers called by generated code ----

/// `ErrorSlot::site` for helpers that have no site of their own; it lies
/// outside every site table, so [`runtime_error`] gives it a default span.
const NO_SITE: u32 = u32::MAX;

/// `kj_new_array` (see `abi.rs`): a new C-contiguous array of `ndim` extents
/// `d0, d1, d2` (unused ones ignored), filled with zeros, ones or the value
/// encoded in `value_bits` (in `dtype`), owned by the call's runtime. Null
/// after writing `ERROR_BAD_ARRAY_SIZE` with the requested shape.
///
/// # Safety
///
/// `ctx` is null or points to a live [`CallContext`] made by [`new_context`]
/// whose runtime is still alive, as generated code guarantees.
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn kj_new_array(
    ctx: *mut CallContext,
    dtype: u32,
    ndim: u32,
    d0: i64,
    d1: i64,
    d2: i64,
    fill: u32,
    value_bits: u64,
    site: u32,
) -> *mut ArrayArg {
    // SAFETY: forwarded from this function's contract.
    unsafe { run_helper(ctx, site, |runtime| new_array(runtime, dtype, ndim, [d0, d1, d2], fill, value_bits, site)) }
}

/// `kj_arange` (see `abi.rs`): `np.arange(start, stop, step)` with the bounds
/// encoded in `dtype`. Null after writing `ERROR_ZERO_STEP` or
/// `ERROR_BAD_ARRAY_SIZE`.
///
/// # Safety
///
/// As for [`kj_new_array`].
pub unsafe extern "C" fn kj_arange(
    ctx: *mut CallContext,
    dtype: u32,
    start: u64,
    stop: u64,
    step: u64,
    site: u32,
) -> *mut ArrayArg {
    // SAFETY: forwarded from this function's contract.
    unsafe { run_helper(ctx, site, |runtime| arange(runtime, dtype, start, stop, step, site)) }
}

/// `kj_alloc_view` (see `abi.rs`): a runtime-owned [`ArrayArg`] for
/// generated code to fill, initially an empty array (null data, every extent
/// 0). Rust aborts on a failed small allocation, so in practice it is never
/// null; it is null (with `ERROR_INTERNAL` at no site) only if `ctx` has no
/// runtime.
///
/// # Safety
///
/// As for [`kj_new_array`].
pub unsafe extern "C" fn kj_alloc_view(ctx: *mut CallContext) -> *mut ArrayArg {
    let empty = ArrayArg { data: ptr::null_mut(), shape: [0; 3], strides: [0; 3] };
    // SAFETY: forwarded from this function's contract.
    unsafe { run_helper(ctx, NO_SITE, |runtime| Ok(runtime.add_array_arg(empty))) }
}

/// An outlined `prange` body (see `kj_parallel_for` in `abi.rs`).
type ParallelBody = unsafe extern "C" fn(*mut CallContext, *const u8, i64, i64) -> i8;

/// `kj_parallel_for` (see `abi.rs`): runs an outlined `prange` body over
/// `blocks` blocks on the pool, or serially for short loops.
///
/// # Safety
///
/// `ctx` is null or points to a live [`CallContext`] made by [`new_context`];
/// `body` is the address of a finalized outlined body of the same program,
/// and `env` the environment it expects, alive for the whole call.
pub unsafe extern "C" fn kj_parallel_for(
    ctx: *mut CallContext,
    body: *const u8,
    env: *const u8,
    blocks: i64,
    trips: i64,
    min_trips: i64,
) -> i8 {
    if ctx.is_null() || body.is_null() {
        return abi::STATUS_ERROR;
    }
    // SAFETY: `ctx` points to a live context (this function's contract).
    let parent = unsafe { *ctx };
    // SAFETY: `body` is an outlined body (this function's contract).
    let body = unsafe { std::mem::transmute::<*const u8, ParallelBody>(body) };
    let env = env as usize;
    let threads = match parent.threads {
        0 => super::pool::default_threads(),
        n => usize::try_from(n).unwrap_or(usize::MAX),
    };
    // Trip counts are unsigned: compare them as such.
    let threads = if (trips as u64) < (min_trips as u64) { 1 } else { threads };
    // Plain numbers, so the closure may run on any thread.
    let (depth, runtime, stack_limit) = (parent.depth, parent.runtime as usize, parent.stack_limit);
    let run = |first: u64, end: u64| -> Result<(), ErrorSlot> {
        let mut context = CallContext {
            depth,
            error: ErrorSlot::default(),
            runtime: runtime as *mut u8,
            // A worker checks recursion against its own stack.
            stack_limit: match (stack_limit, super::pool::worker_stack_end()) {
                (0, _) => 0,
                (_, Some(end)) => end as u64,
                (limit, None) => limit,
            },
            threads: parent.threads,
        };
        // SAFETY: the body, its environment and the runtime outlive the
        // region (`pool::run_blocks` returns after every chunk); `context`
        // is this chunk's own.
        let status = unsafe { body(&mut context, env as *const u8, first as i64, end as i64) };
        if status == abi::STATUS_OK {
            Ok(())
        } else {
            Err(context.error)
        }
    };
    match super::pool::run_blocks(threads, blocks.max(0) as u64, &run) {
        Ok(()) => abi::STATUS_OK,
        Err(failure) => {
            let slot = match failure {
                super::pool::Failure::Error(slot) => slot,
                super::pool::Failure::Panic => internal_slot(NO_SITE),
            };
            // SAFETY: as above; only the error field is written.
            unsafe { ptr::addr_of_mut!((*ctx).error).write(slot) };
            abi::STATUS_ERROR
        }
    }
}

/// `kj_reduce_tree` (see `abi.rs`): [`tir::combine_tree`] over `count`
/// encoded partials of `dtype`, encoded. Gives 0 for an unknown operator or
/// dtype code, a null pointer or `count < 1` (all codegen bugs).
///
/// It cannot panic, so it needs no `catch_unwind`: decoding is a total
/// conversion, `combine_tree` only indexes a slice it has checked to be
/// non-empty and splits it in the middle, and `ReduceOp::combine` uses only
/// wrapping integer and IEEE float arithmetic. (A failed allocation aborts;
/// it does not unwind.)
///
/// # Safety
///
/// `partials` is null or points to `count` readable `u64`s.
pub unsafe extern "C" fn kj_reduce_tree(op: u32, dtype: u32, partials: *const u64, count: i64) -> u64 {
    let (Some(op), Some(dtype)) = (reduce_op_from_code(op), dtype_from_code(dtype)) else { return 0 };
    let Ok(count) = usize::try_from(count) else { return 0 };
    if partials.is_null() || count == 0 {
        return 0;
    }
    // SAFETY: the caller guarantees `count` readable values at `partials`.
    let partials = unsafe { std::slice::from_raw_parts(partials, count) };
    let partials: Vec<Scalar> = partials.iter().map(|&bits| decode_scalar(bits, dtype)).collect();
    tir::combine_tree(op, &partials).map_or(0, encode_scalar)
}

/// `kj_combine` (see `abi.rs`): [`ReduceOp::combine`] on two encoded values
/// of `dtype`, encoded. Gives 0 for an unknown operator or dtype code. It
/// cannot panic, for the reasons given on [`kj_reduce_tree`].
pub extern "C" fn kj_combine(op: u32, dtype: u32, a: u64, b: u64) -> u64 {
    let (Some(op), Some(dtype)) = (reduce_op_from_code(op), dtype_from_code(dtype)) else { return 0 };
    encode_scalar(op.combine(decode_scalar(a, dtype), decode_scalar(b, dtype)))
}

/// `kj_ipow` (see `abi.rs`): `base ** exponent` by repeated squaring with
/// wrapping multiplication, the interpreter's loop. Its low bits equal the
/// interpreter's result for every integer width, because wrapping
/// multiplication commutes with truncation. The exponent is read as
/// unsigned (signed callers reject negative exponents first). Only wrapping
/// arithmetic and shifts: it cannot panic.
pub extern "C" fn kj_ipow(base: i64, exponent: i64) -> i64 {
    // The exponent's bits are unsigned (abi.rs): a u64 exponent above 2^63
    // arrives as a negative i64.
    let (mut base, mut exponent, mut result) = (base, exponent as u64, 1i64);
    while exponent > 0 {
        if exponent & 1 == 1 {
            result = result.wrapping_mul(base);
        }
        base = base.wrapping_mul(base);
        exponent >>= 1;
    }
    result
}

/// The address of the runtime helper or math routine `name` (see
/// [`symbols`]), from a table built on first use.
pub fn symbol_address(name: &str) -> Option<*const u8> {
    static TABLE: std::sync::OnceLock<HashMap<&'static str, usize>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| symbols().into_iter().map(|(name, address)| (name, address as usize)).collect());
    table.get(name).map(|&address| address as *const u8)
}

/// Every symbol generated code may call: the runtime helpers above and
/// every [`mathlib::SYMBOLS`] routine.
pub fn symbols() -> Vec<(&'static str, *const u8)> {
    let mut symbols: Vec<(&'static str, *const u8)> = vec![
        ("kj_new_array", kj_new_array as *const u8),
        ("kj_arange", kj_arange as *const u8),
        ("kj_alloc_view", kj_alloc_view as *const u8),
        ("kj_parallel_for", kj_parallel_for as *const u8),
        ("kj_reduce_tree", kj_reduce_tree as *const u8),
        ("kj_combine", kj_combine as *const u8),
        ("kj_ipow", kj_ipow as *const u8),
        ("kj_checked_loop", super::cold::kj_checked_loop as *const u8),
    ];
    symbols.extend(mathlib::SYMBOLS.iter().map(|symbol| (symbol.name, symbol.function.address())));
    symbols
}

// ---- Marshalling host values ----

/// A scalar in its 8-byte slot encoding (`abi.rs`): ints sign- or
/// zero-extended as their type says, `bool` as 0 or 1, `f32` bits in the low
/// 32 bits, `f64` bits.
#[inline]
pub fn encode_scalar(value: Scalar) -> u64 {
    match value {
        Scalar::Bool(v) => v as u64,
        Scalar::I8(v) => v as i64 as u64,
        Scalar::I16(v) => v as i64 as u64,
        Scalar::I32(v) => v as i64 as u64,
        Scalar::I64(v) => v as u64,
        Scalar::U8(v) => v as u64,
        Scalar::U16(v) => v as u64,
        Scalar::U32(v) => v as u64,
        Scalar::U64(v) => v,
        Scalar::F32(v) => v.to_bits() as u64,
        Scalar::F64(v) => v.to_bits(),
    }
}

/// The scalar of type `ty` in a slot, reading only its low `size_of(ty)`
/// bytes (a `bool` is true when its byte is nonzero).
pub fn decode_scalar(bits: u64, ty: ScalarType) -> Scalar {
    match ty {
        ScalarType::Bool => Scalar::Bool(bits as u8 != 0),
        ScalarType::I8 => Scalar::I8(bits as i8),
        ScalarType::I16 => Scalar::I16(bits as i16),
        ScalarType::I32 => Scalar::I32(bits as i32),
        ScalarType::I64 => Scalar::I64(bits as i64),
        ScalarType::U8 => Scalar::U8(bits as u8),
        ScalarType::U16 => Scalar::U16(bits as u16),
        ScalarType::U32 => Scalar::U32(bits as u32),
        ScalarType::U64 => Scalar::U64(bits),
        ScalarType::F32 => Scalar::F32(f32::from_bits(bits as u32)),
        ScalarType::F64 => Scalar::F64(f64::from_bits(bits)),
    }
}

/// How generated code sees a host array: `data` points at logical element
/// `[0, 0, 0]` (wherever the strides put it in memory), shape and strides in
/// elements, unused axes with shape 1 and stride 0. Axes past
/// [`MAX_NDIM`] are not represented (callers check the type first). The
/// pointer stays valid while `array` is neither dropped nor reallocated.
pub fn array_arg(array: &mut ArrayData) -> ArrayArg {
    crate::with_array!(array, a => {
        let mut arg = ArrayArg { data: a.as_mut_ptr().cast::<u8>(), shape: [1; 3], strides: [0; 3] };
        for (axis, (&extent, &stride)) in a.shape().iter().zip(a.strides()).enumerate().take(MAX_NDIM) {
            arg.shape[axis] = i64::try_from(extent).unwrap_or(i64::MAX);
            arg.strides[axis] = stride as i64;
        }
        arg
    })
}

/// The entry trampoline's argument slots for `args`, which must have exactly
/// the types `params`: one slot per scalar and per tuple element (encoded),
/// and per array the address of a boxed [`ArrayArg`] kept alive by the
/// returned vector. Generated code reads and writes array elements through
/// the host's own memory, so `args` must stay alive and untouched (and the
/// boxes alive) while the call runs.
pub fn argument_slots(args: &mut [Value], params: &[Type]) -> Result<(Vec<u64>, Vec<Box<ArrayArg>>), String> {
    if args.len() != params.len() {
        return Err(format!("the kernel takes {} arguments but was given {}", params.len(), args.len()));
    }
    let mut slots = Vec::with_capacity(argument_slot_count(params));
    let mut array_slots = Vec::new();
    let mut boxes = Vec::new();
    for (position, (arg, param)) in args.iter_mut().zip(params).enumerate() {
        let arg_type = arg.ty();
        if arg_type != *param {
            return Err(format!(
                "argument {} has type {arg_type} but the kernel was compiled for {param}",
                position + 1
            ));
        }
        match arg {
            Value::Scalar(value) => slots.push(encode_scalar(*value)),
            Value::Tuple(items) => slots.extend(items.iter().map(|item| encode_scalar(*item))),
            Value::Array(array) => {
                if array.ndim() > MAX_NDIM {
                    return Err(format!("argument {} has more than {MAX_NDIM} dimensions", position + 1));
                }
                array_slots.push(slots.len());
                slots.push(0);
                boxes.push(Box::new(array_arg(array)));
            }
            Value::None => {}
        }
    }
    // Addresses are taken once every box sits in its final vector.
    for (&slot, boxed) in array_slots.iter().zip(&boxes) {
        slots[slot] = ptr::from_ref::<ArrayArg>(boxed) as u64;
    }
    Ok((slots, boxes))
}

/// The number of argument slots for parameters of types `params`.
pub fn argument_slot_count(params: &[Type]) -> usize {
    params.iter().map(slot_count).sum()
}

/// The number of result slots for a return type.
pub fn result_slot_count(ret: &Type) -> usize {
    slot_count(ret)
}

/// The host value of a call's results of type `ret`: scalars and tuples are
/// decoded, `None` gives `Value::None`. An array result's slot holds the
/// address of an [`ArrayArg`]: if it describes exactly one whole array of
/// `runtime` in C order, that array's elements are moved out without a copy;
/// otherwise (a view of a runtime array or of a host argument) the elements
/// are copied through the strides into a new C-ordered array. Missing slots
/// read as 0 and a null array address gives an empty array (both kernjit
/// bugs; debug builds assert).
///
/// # Safety
///
/// `slots` holds the results of one call that returned `STATUS_OK`, made
/// with a context from [`new_context`]`(runtime)`; for an array result every
/// element the `ArrayArg` describes is still alive and holds a valid value of
/// the dtype (a `bool` byte is 0 or 1), and so does every element of a
/// runtime array of that dtype. That means the host argument arrays of the
/// call are neither dropped nor reallocated yet, the call's context is not
/// used again (this `&mut` access invalidates its runtime pointer), and this
/// is the first `result_value` for the call (a moved-out array is no longer
/// the runtime's).
pub unsafe fn result_value(ret: &Type, slots: &[u64], runtime: &mut CallRuntime) -> Value {
    debug_assert!(slots.len() >= result_slot_count(ret), "too few result slots");
    let slot = |index: usize| slots.get(index).copied().unwrap_or(0);
    match ret {
        Type::Scalar(dtype) => Value::Scalar(decode_scalar(slot(0), *dtype)),
        Type::Tuple(items) => {
            Value::Tuple(items.iter().enumerate().map(|(index, dtype)| decode_scalar(slot(index), *dtype)).collect())
        }
        Type::Array(array_type) => {
            let address = slot(0) as *const ArrayArg;
            debug_assert!(!address.is_null(), "a null array result");
            let ndim = (array_type.ndim as usize).min(MAX_NDIM);
            if address.is_null() {
                return Value::Array(empty_array(array_type.dtype, ndim));
            }
            // SAFETY: an array result slot holds the address of a live
            // `ArrayArg` (this function's contract).
            let arg = unsafe { address.read() };
            let shape: Vec<usize> =
                arg.shape[..ndim].iter().map(|&extent| usize::try_from(extent).unwrap_or(0)).collect();
            if let Some(array) = runtime.state_mut().take_whole_array(array_type.dtype, &arg, &shape) {
                return Value::Array(array);
            }
            // SAFETY: every element `arg` describes is alive and valid (this
            // function's contract).
            Value::Array(unsafe { copy_elements(array_type.dtype, &arg, &shape) })
        }
        Type::None | Type::Unknown => Value::None,
    }
}

// ---- Errors ----

/// One entry of a compiled program's site table: where an operation that can
/// fail is, and for index errors the array's name (empty otherwise).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Site {
    pub span: Span,
    pub name: String,
    /// For a check in generated code, which reports `abi::ERROR_CHECK`:
    /// what failed there (the static part of the error).
    pub check: Option<CheckSite>,
}

/// The static part of a failed check's error (see [`Site::check`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CheckSite {
    /// One of the `abi::ERROR_*` kinds.
    pub kind: u32,
    /// For index errors: the axis checked, and which of the slot's
    /// `values` is its index.
    pub axis: u32,
    pub slot: u32,
    /// How many of the slot's `values` are meaningful.
    pub count: u32,
}

/// The [`RuntimeError`] the interpreter would give for the failure an error
/// slot describes. A site outside `sites`, an out-of-range count or an
/// unknown kind never panics (a default span, a clamped count, an
/// `Internal` error).
pub fn runtime_error(slot: &ErrorSlot, sites: &[Site]) -> RuntimeError {
    let site = sites.get(slot.site as usize);
    if slot.kind == abi::ERROR_CHECK {
        // Completed from the site table: kind, axis and count are static.
        let check =
            site.and_then(|site| site.check).unwrap_or(CheckSite { kind: abi::ERROR_INTERNAL, ..CheckSite::default() });
        let count = (check.count as usize).min(slot.values.len());
        let index = slot.values.get(check.slot as usize).copied().unwrap_or(0);
        let full = ErrorSlot { kind: check.kind, axis: i64::from(check.axis), index, count: count as i64, ..*slot };
        return runtime_error(&full, sites);
    }
    let span = site.map_or(Span::default(), |site| site.span);
    let count = usize::try_from(slot.count).unwrap_or(0).min(slot.values.len());
    let values = slot.values[..count].to_vec();
    let kind = match slot.kind {
        abi::ERROR_INDEX_OUT_OF_BOUNDS => RuntimeErrorKind::IndexOutOfBounds {
            array: site.map_or_else(String::new, |site| site.name.clone()),
            indices: values,
            axis: usize::try_from(slot.axis).unwrap_or(0),
            index: slot.index,
            extent: slot.extent,
        },
        abi::ERROR_DIVISION_BY_ZERO => RuntimeErrorKind::DivisionByZero,
        abi::ERROR_ZERO_STEP => RuntimeErrorKind::ZeroStep,
        abi::ERROR_BAD_ARRAY_SIZE => RuntimeErrorKind::BadArraySize { shape: values },
        abi::ERROR_RECURSION_TOO_DEEP => RuntimeErrorKind::RecursionTooDeep,
        abi::ERROR_NEGATIVE_POWER => RuntimeErrorKind::NegativePower { exponent: slot.values[0] },
        abi::ERROR_INTERNAL => {
            RuntimeErrorKind::Internal { message: "a runtime helper of compiled code failed".to_string() }
        }
        other => RuntimeErrorKind::Internal { message: format!("compiled code reported unknown error kind {other}") },
    };
    RuntimeError { kind, span }
}

// ---- Private helpers ----

/// Runs a helper's body with the context's runtime, catching panics. On an
/// error (or a panic, reported as `ERROR_INTERNAL` at `site`) writes the
/// context's error slot and returns null.
///
/// # Safety
///
/// `ctx` is null or points to a live [`CallContext`] whose `runtime` is null
/// or points to a live [`CallRuntime`].
unsafe fn run_helper(
    ctx: *mut CallContext,
    site: u32,
    body: impl FnOnce(&CallRuntime) -> Result<*mut ArrayArg, ErrorSlot>,
) -> *mut ArrayArg {
    if ctx.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: `ctx` points to a live context (this function's contract); the
    // field is read through the raw pointer, without making a reference.
    let runtime = unsafe { (*ctx).runtime }.cast::<CallRuntime>().cast_const();
    let outcome = if runtime.is_null() {
        Err(internal_slot(site))
    } else {
        // SAFETY: a non-null runtime pointer points to a live runtime (this
        // function's contract); helpers only take shared references to it.
        let runtime = unsafe { &*runtime };
        catch_unwind(AssertUnwindSafe(|| body(runtime))).unwrap_or_else(|_| Err(internal_slot(site)))
    };
    match outcome {
        Ok(array) => array,
        Err(slot) => {
            // SAFETY: as above; only the error field is written.
            unsafe { ptr::addr_of_mut!((*ctx).error).write(slot) };
            ptr::null_mut()
        }
    }
}

/// The body of [`kj_new_array`].
fn new_array(
    runtime: &CallRuntime,
    dtype: u32,
    ndim: u32,
    dims: [i64; 3],
    fill: u32,
    value_bits: u64,
    site: u32,
) -> Result<*mut ArrayArg, ErrorSlot> {
    let dtype = dtype_from_code(dtype).ok_or_else(|| internal_slot(site))?;
    let ndim = usize::try_from(ndim).ok().filter(|&ndim| ndim <= MAX_NDIM).ok_or_else(|| internal_slot(site))?;
    let extents = &dims[..ndim];
    let fill_value = match fill {
        abi::FILL_ZEROS => Scalar::zero(dtype),
        abi::FILL_ONES => Scalar::from_i128_wrapping(1, ScalarType::I64).cast(dtype),
        abi::FILL_VALUE => decode_scalar(value_bits, dtype),
        _ => return Err(internal_slot(site)),
    };
    let bad_size = bad_size_slot(extents, site);
    if !value::array_size_allowed(extents, dtype) {
        return Err(bad_size);
    }
    let shape: Vec<usize> =
        extents.iter().map(|&extent| usize::try_from(extent)).collect::<Result<_, _>>().map_err(|_| bad_size)?;
    let len = shape.iter().try_fold(1usize, |product, &extent| product.checked_mul(extent)).ok_or(bad_size)?;
    with_element_type!(dtype, T => {
        let mut data = empty_vec::<T>(len).ok_or(bad_size)?;
        data.resize(len, T::from_scalar(fill_value));
        Ok(runtime.add_array::<T>(data, &shape))
    })
}

/// The body of [`kj_arange`].
fn arange(
    runtime: &CallRuntime,
    dtype: u32,
    start: u64,
    stop: u64,
    step: u64,
    site: u32,
) -> Result<*mut ArrayArg, ErrorSlot> {
    let dtype = dtype_from_code(dtype).ok_or_else(|| internal_slot(site))?;
    let (start, stop, step) = (decode_scalar(start, dtype), decode_scalar(stop, dtype), decode_scalar(step, dtype));
    let len = value::arange_len(start, stop, step).map_err(|kind| error_slot(&kind, site))?;
    let bad_size = bad_size_slot(&[len], site);
    if !value::array_size_allowed(&[len], dtype) {
        return Err(bad_size);
    }
    let len = usize::try_from(len).map_err(|_| bad_size)?;
    with_element_type!(dtype, T => {
        let (start, step) = (T::from_scalar(start), T::from_scalar(step));
        let mut data = empty_vec::<T>(len).ok_or(bad_size)?;
        data.extend((0..len).map(|k| T::arange_element(start, step, k as i64)));
        Ok(runtime.add_array::<T>(data, &[len]))
    })
}

/// An empty vector with room for exactly `len` elements, or `None` when the
/// allocator refuses the memory (the interpreter's rule).
fn empty_vec<T>(len: usize) -> Option<Vec<T>> {
    let mut data = Vec::new();
    data.try_reserve_exact(len).ok()?;
    Some(data)
}

/// C-order strides (in elements) of `shape`, with zero extents counted as 1
/// like the interpreter, and 0 for unused axes.
fn c_strides(shape: &[usize]) -> [i64; 3] {
    let mut strides = [0i64; 3];
    let mut stride: i64 = 1;
    for axis in (0..shape.len().min(MAX_NDIM)).rev() {
        strides[axis] = stride;
        stride = stride.saturating_mul(i64::try_from(shape[axis].max(1)).unwrap_or(i64::MAX));
    }
    strides
}

/// An error slot describing `kind` at `site` (the inverse of
/// [`runtime_error`]).
fn error_slot(kind: &RuntimeErrorKind, site: u32) -> ErrorSlot {
    let with_values = |kind: u32, values: &[i64]| {
        let mut slot = ErrorSlot { kind, site, count: values.len().min(3) as i64, ..ErrorSlot::default() };
        for (target, value) in slot.values.iter_mut().zip(values) {
            *target = *value;
        }
        slot
    };
    match kind {
        RuntimeErrorKind::IndexOutOfBounds { indices, axis, index, extent, .. } => ErrorSlot {
            axis: *axis as i64,
            index: *index,
            extent: *extent,
            ..with_values(abi::ERROR_INDEX_OUT_OF_BOUNDS, indices)
        },
        RuntimeErrorKind::DivisionByZero => with_values(abi::ERROR_DIVISION_BY_ZERO, &[]),
        RuntimeErrorKind::ZeroStep => with_values(abi::ERROR_ZERO_STEP, &[]),
        RuntimeErrorKind::BadArraySize { shape } => with_values(abi::ERROR_BAD_ARRAY_SIZE, shape),
        RuntimeErrorKind::RecursionTooDeep => with_values(abi::ERROR_RECURSION_TOO_DEEP, &[]),
        RuntimeErrorKind::NegativePower { exponent } => with_values(abi::ERROR_NEGATIVE_POWER, &[*exponent]),
        RuntimeErrorKind::Internal { .. } => internal_slot(site),
    }
}

fn bad_size_slot(extents: &[i64], site: u32) -> ErrorSlot {
    error_slot(&RuntimeErrorKind::BadArraySize { shape: extents.to_vec() }, site)
}

fn internal_slot(site: u32) -> ErrorSlot {
    ErrorSlot { kind: abi::ERROR_INTERNAL, site, ..ErrorSlot::default() }
}

/// The dtype with code `code` ([`abi::dtype_code`]).
fn dtype_from_code(code: u32) -> Option<ScalarType> {
    ScalarType::ALL.get(code as usize).copied()
}

/// The reduction operator with code `code` ([`abi::reduce_code`]).
fn reduce_op_from_code(code: u32) -> Option<ReduceOp> {
    const OPS: [ReduceOp; 7] = [
        ReduceOp::Add,
        ReduceOp::Mul,
        ReduceOp::Min,
        ReduceOp::Max,
        ReduceOp::BitOr,
        ReduceOp::BitAnd,
        ReduceOp::BitXor,
    ];
    OPS.get(code as usize).copied()
}

fn slot_count(ty: &Type) -> usize {
    match ty {
        Type::Scalar(_) | Type::Array(_) => 1,
        Type::Tuple(items) => items.len(),
        Type::None | Type::Unknown => 0,
    }
}

/// An array of `dtype` with `ndim` axes of extent 0.
fn empty_array(dtype: ScalarType, ndim: usize) -> ArrayData {
    ArrayData::from_scalars(dtype, &vec![0; ndim], &[])
}

/// A C-ordered copy of the elements `arg` describes with the logical `shape`
/// (`shape.len()` axes; the others of `arg` are ignored).
///
/// # Safety
///
/// For every index within `shape`, `arg.data` offset by the index times the
/// strides (in elements of `dtype`) points to a live, initialised element of
/// `dtype` (any byte for `bool`).
unsafe fn copy_elements(dtype: ScalarType, arg: &ArrayArg, shape: &[usize]) -> ArrayData {
    let mut extents = [1usize; 3];
    let mut strides = [0isize; 3];
    for axis in 0..shape.len().min(MAX_NDIM) {
        extents[axis] = shape[axis];
        strides[axis] = arg.strides[axis] as isize;
    }
    let positions = move || {
        (0..extents[0]).flat_map(move |i| {
            (0..extents[1]).flat_map(move |j| {
                (0..extents[2]).map(move |k| {
                    (i as isize).wrapping_mul(strides[0])
                        + (j as isize).wrapping_mul(strides[1])
                        + (k as isize).wrapping_mul(strides[2])
                })
            })
        })
    };
    let shape = IxDyn(shape);
    if dtype == ScalarType::Bool {
        // Read bytes, so a byte other than 0 or 1 cannot make an invalid bool.
        let base = arg.data.cast::<u8>().cast_const();
        // SAFETY: each position is an in-bounds element (the contract).
        let data: Vec<bool> = positions().map(|offset| unsafe { base.offset(offset).read() } != 0).collect();
        return wrap_c_ordered(shape, data);
    }
    with_element_type!(dtype, T => {
        let base = arg.data.cast::<T>().cast_const();
        // SAFETY: each position is an in-bounds, initialised element (the contract).
        let data: Vec<T> = positions().map(|offset| unsafe { base.offset(offset).read() }).collect();
        wrap_c_ordered(shape, data)
    })
}

/// A C-ordered array of `shape` holding `data` (whose length is the product
/// of `shape`, which every caller guarantees).
fn wrap_c_ordered<T: Element>(shape: IxDyn, data: Vec<T>) -> ArrayData {
    T::wrap(ArrayD::from_shape_vec(shape, data).expect("the element count is the product of the shape"))
}

/// Element types of runtime arrays: how they are stored and how
/// `np.arange` computes them.
trait RuntimeElement: Element {
    fn into_buffer(data: Vec<Self>) -> Buffer;
    /// `start + k * step` in the dtype's own arithmetic, the same value as
    /// [`value::arange_element`].
    fn arange_element(start: Self, step: Self, k: i64) -> Self;
}

/// Defines [`Buffer`] (one typed vector per dtype), its dtype-generic
/// operations, and [`RuntimeElement`] for each element type.
macro_rules! define_buffer {
    ($($variant:ident($element:ty)),* $(,)?) => {
        /// The elements of one runtime array.
        enum Buffer {
            $($variant(Vec<$element>),)*
        }

        impl Buffer {
            fn dtype(&self) -> ScalarType {
                match self {
                    $(Buffer::$variant(_) => ScalarType::$variant,)*
                }
            }

            fn len(&self) -> usize {
                match self {
                    $(Buffer::$variant(data) => data.len(),)*
                }
            }

            fn data_address(&self) -> *const u8 {
                match self {
                    $(Buffer::$variant(data) => data.as_ptr().cast::<u8>(),)*
                }
            }

            /// Moves the elements out as an array of `shape` (whose product
            /// must be the length), leaving an empty buffer; `None` if the
            /// shape does not fit.
            fn take_as_array(&mut self, shape: &[usize]) -> Option<ArrayData> {
                if shape.iter().try_fold(1usize, |product, &extent| product.checked_mul(extent)) != Some(self.len()) {
                    return None;
                }
                match self {
                    $(Buffer::$variant(data) => {
                        ArrayD::from_shape_vec(IxDyn(shape), std::mem::take(data)).ok().map(ArrayData::$variant)
                    })*
                }
            }
        }

        $(impl RuntimeElement for $element {
            fn into_buffer(data: Vec<Self>) -> Buffer {
                Buffer::$variant(data)
            }

            fn arange_element(start: Self, step: Self, k: i64) -> Self {
                arange_element!($variant, start, step, k)
            }
        })*
    };
}

/// The typed `np.arange` element: IEEE for floats, wrapping for ints (the
/// interpreter computes `start + k * step` exactly and wraps; wrapping each
/// operation gives the same low bits), the shared scalar code for `bool`.
macro_rules! arange_element {
    (F64, $start:ident, $step:ident, $k:ident) => {
        $start + $k as f64 * $step
    };
    (F32, $start:ident, $step:ident, $k:ident) => {
        $start + $k as f32 * $step
    };
    (Bool, $start:ident, $step:ident, $k:ident) => {
        bool::from_scalar(value::arange_element(Scalar::Bool($start), Scalar::Bool($step), $k))
    };
    ($int:ident, $start:ident, $step:ident, $k:ident) => {
        $start.wrapping_add(($k as Self).wrapping_mul($step))
    };
}

/// Runs `$body` with the type alias `$t` naming the element type of `$dtype`.
macro_rules! with_element_type {
    ($dtype:expr, $t:ident => $body:expr) => {
        match $dtype {
            ScalarType::Bool => {
                type $t = bool;
                $body
            }
            ScalarType::I8 => {
                type $t = i8;
                $body
            }
            ScalarType::I16 => {
                type $t = i16;
                $body
            }
            ScalarType::I32 => {
                type $t = i32;
                $body
            }
            ScalarType::I64 => {
                type $t = i64;
                $body
            }
            ScalarType::U8 => {
                type $t = u8;
                $body
            }
            ScalarType::U16 => {
                type $t = u16;
                $body
            }
            ScalarType::U32 => {
                type $t = u32;
                $body
            }
            ScalarType::U64 => {
                type $t = u64;
                $body
            }
            ScalarType::F32 => {
                type $t = f32;
                $body
            }
            ScalarType::F64 => {
                type $t = f64;
                $body
            }
        }
    };
}
use with_element_type;

define_buffer!(
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    U8(u8),
    U16(u16),
    U32(u32),
    U64(u64),
    F32(f32),
    F64(f64)
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ArrayType;
    use ndarray::{Axis, ShapeBuilder};
    use ScalarType::{Bool, F32, F64, I16, I32, I64, I8, U64, U8};

    // ---- Helpers ----

    /// One call's runtime, as generated code would use it: each helper call
    /// gets a fresh context (so no context outlives a use of the runtime by
    /// the host), and the last error written is kept.
    #[derive(Default)]
    struct Call {
        runtime: CallRuntime,
        error: ErrorSlot,
    }

    impl Call {
        fn new() -> Call {
            Call::default()
        }

        /// Calls a helper with a fresh context and keeps the error it writes.
        fn with_context(&mut self, helper: impl FnOnce(*mut CallContext) -> *mut ArrayArg) -> *mut ArrayArg {
            let mut ctx = new_context(&mut self.runtime);
            let result = helper(&mut ctx);
            self.error = ctx.error;
            result
        }

        fn new_array(&mut self, dtype: ScalarType, dims: &[i64], fill: u32, value: Scalar) -> *mut ArrayArg {
            let mut padded = [0i64; 3];
            padded[..dims.len()].copy_from_slice(dims);
            let (code, ndim, bits) = (abi::dtype_code(dtype), dims.len() as u32, encode_scalar(value));
            // SAFETY: the context and its runtime are alive.
            self.with_context(|ctx| unsafe {
                kj_new_array(ctx, code, ndim, padded[0], padded[1], padded[2], fill, bits, 7)
            })
        }

        fn arange(&mut self, start: Scalar, stop: Scalar, step: Scalar) -> *mut ArrayArg {
            let code = abi::dtype_code(start.ty());
            let (start, stop, step) = (encode_scalar(start), encode_scalar(stop), encode_scalar(step));
            // SAFETY: the context and its runtime are alive.
            self.with_context(|ctx| unsafe { kj_arange(ctx, code, start, stop, step, 3) })
        }

        fn alloc_view(&mut self) -> *mut ArrayArg {
            // SAFETY: the context and its runtime are alive.
            self.with_context(|ctx| unsafe { kj_alloc_view(ctx) })
        }

        /// The call's array result described by `arg`.
        fn result(&mut self, dtype: ScalarType, ndim: u8, arg: *const ArrayArg) -> ArrayData {
            let ret = Type::Array(ArrayType { dtype, ndim });
            // SAFETY: `arg` describes live elements of the runtime or of a
            // host array the test keeps alive; one result per call.
            match unsafe { result_value(&ret, &[arg as u64], &mut self.runtime) } {
                Value::Array(array) => array,
                other => panic!("not an array: {other:?}"),
            }
        }
    }

    fn read_arg(arg: *const ArrayArg) -> ArrayArg {
        assert!(!arg.is_null());
        // SAFETY: a non-null runtime `ArrayArg` lives as long as its runtime.
        unsafe { *arg }
    }

    fn f64_array(values: &[f64], shape: &[usize]) -> ArrayData {
        ArrayData::F64(ArrayD::from_shape_vec(IxDyn(shape), values.to_vec()).unwrap())
    }

    /// Runs a kernel through the interpreter.
    fn interpret(source: &str, args: &mut [Value]) -> Result<Value, crate::Error> {
        let module = crate::Module::parse("test.kern", source.as_bytes()).unwrap();
        module.interpret("f", args)
    }

    fn interpreter_error(source: &str, args: &mut [Value]) -> RuntimeError {
        match interpret(source, args) {
            Err(crate::Error::Runtime { error, .. }) => error,
            other => panic!("expected a runtime error, got {other:?}"),
        }
    }

    /// Deterministic pseudo-random 64-bit values (SplitMix64).
    fn random_bits(seed: u64, count: usize) -> Vec<u64> {
        let mut state = seed;
        (0..count)
            .map(|_| {
                state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            })
            .collect()
    }

    fn same_bits(a: Scalar, b: Scalar) -> bool {
        a.ty() == b.ty() && encode_scalar(a) == encode_scalar(b)
    }

    /// Equal bits, except that any NaN equals any NaN: Rust leaves the
    /// payload of a NaN produced by arithmetic unspecified (Miri varies it).
    fn same_result(a: Scalar, b: Scalar) -> bool {
        same_bits(a, b) || (a.ty() == b.ty() && a.to_f64().is_nan() && b.to_f64().is_nan())
    }

    const OPS: [ReduceOp; 7] = [
        ReduceOp::Add,
        ReduceOp::Mul,
        ReduceOp::Min,
        ReduceOp::Max,
        ReduceOp::BitOr,
        ReduceOp::BitAnd,
        ReduceOp::BitXor,
    ];

    // ---- Scalar encoding ----

    #[test]
    fn scalars_round_trip_through_slots() {
        let mut values = vec![
            Scalar::Bool(false),
            Scalar::Bool(true),
            Scalar::F32(-0.0),
            Scalar::F32(f32::from_bits(0x7fc0_1234)),
            Scalar::F32(f32::from_bits(0xff80_0001)),
            Scalar::F32(f32::INFINITY),
            Scalar::F32(f32::MIN_POSITIVE / 4.0),
            Scalar::F64(-0.0),
            Scalar::F64(f64::from_bits(0x7ff8_0000_dead_beef)),
            Scalar::F64(f64::from_bits(0xfff0_0000_0000_0001)),
            Scalar::F64(f64::NEG_INFINITY),
            Scalar::F64(5e-324),
        ];
        for dtype in ScalarType::ALL.into_iter().filter(|d| d.is_int()) {
            let (low, high) = dtype.int_range();
            for value in [low, high, 0, 1, -1] {
                values.push(Scalar::from_i128_wrapping(value, dtype));
            }
        }
        for value in values {
            let bits = encode_scalar(value);
            assert!(same_bits(decode_scalar(bits, value.ty()), value), "{value:?}");
            // Readers look only at the low bytes: garbage above them is ignored.
            let size = value.ty().size_bytes();
            if size < 8 {
                let garbage = bits | (0xa5a5_a5a5_a5a5_a5a5u64 << (size * 8));
                assert!(same_bits(decode_scalar(garbage, value.ty()), value), "{value:?} with garbage");
            }
        }
        assert_eq!(encode_scalar(Scalar::I8(-1)), u64::MAX);
        assert_eq!(encode_scalar(Scalar::I32(i32::MIN)), i32::MIN as i64 as u64);
        assert_eq!(encode_scalar(Scalar::U8(255)), 255);
        assert_eq!(encode_scalar(Scalar::U32(u32::MAX)), u32::MAX as u64);
        assert_eq!(encode_scalar(Scalar::Bool(true)), 1);
        assert_eq!(encode_scalar(Scalar::F32(-0.0)), 0x8000_0000);
        assert_eq!(encode_scalar(Scalar::F64(1.0)), 1.0f64.to_bits());
    }

    // ---- kj_new_array ----

    #[test]
    fn new_arrays_have_every_fill_and_dtype() {
        for dtype in ScalarType::ALL {
            let fills = [
                (abi::FILL_ZEROS, Scalar::zero(dtype), Scalar::zero(dtype)),
                (abi::FILL_ONES, Scalar::zero(dtype), Scalar::I64(1).cast(dtype)),
                (abi::FILL_VALUE, Scalar::I64(-3).cast(dtype), Scalar::I64(-3).cast(dtype)),
                (abi::FILL_VALUE, Scalar::F64(2.5).cast(dtype), Scalar::F64(2.5).cast(dtype)),
            ];
            for (fill, value, expected) in fills {
                let mut call = Call::new();
                let arg = read_arg(call.new_array(dtype, &[2, 3], fill, value));
                assert_eq!(arg.shape, [2, 3, 1]);
                assert_eq!(arg.strides, [3, 1, 0]);
                let result = call.result(dtype, 2, &arg);
                assert_eq!(result, ArrayData::from_scalars(dtype, &[2, 3], &[expected; 6]), "{dtype} fill {fill}");
            }
        }
    }

    #[test]
    fn new_array_strides_count_zero_extents_as_one_and_ignore_unused_dims() {
        let mut call = Call::new();
        let arg = read_arg(call.new_array(F64, &[4, 0, 5], abi::FILL_ZEROS, Scalar::F64(0.0)));
        assert_eq!((arg.shape, arg.strides), ([4, 0, 5], [5, 5, 1]));
        let arg = read_arg(call.new_array(I16, &[0], abi::FILL_ONES, Scalar::I16(0)));
        assert_eq!((arg.shape, arg.strides), ([0, 1, 1], [1, 0, 0]));
        // Dimensions beyond `ndim` are ignored, even when they are negative.
        let code = abi::dtype_code(U8);
        // SAFETY: the context and its runtime are alive.
        let arg = read_arg(
            call.with_context(|ctx| unsafe { kj_new_array(ctx, code, 1, 3, -1, i64::MIN, abi::FILL_ZEROS, 0, 0) }),
        );
        assert_eq!((arg.shape, arg.strides), ([3, 1, 1], [1, 0, 0]));
        assert_eq!(call.error.kind, 0);
        assert_eq!(call.runtime.array_count(), 3);
    }

    #[test]
    fn bad_array_sizes_write_the_requested_shape() {
        let cases: [(ScalarType, &[i64]); 4] = [
            (F64, &[3, -1]),
            (F64, &[1 << 20, 1 << 20, 1 << 20]),
            (U8, &[(value::MAX_ARRAY_BYTES + 1) as i64]),
            (I64, &[0, 1 << 40, 2]),
        ];
        for (dtype, dims) in cases {
            let mut call = Call::new();
            let arg = call.new_array(dtype, dims, abi::FILL_ZEROS, Scalar::zero(dtype));
            assert!(arg.is_null(), "{dims:?}");
            let slot = call.error;
            assert_eq!((slot.kind, slot.site, slot.count), (abi::ERROR_BAD_ARRAY_SIZE, 7, dims.len() as i64));
            assert_eq!(&slot.values[..dims.len()], dims);
            let error = runtime_error(&slot, &[]);
            assert_eq!(error.kind, RuntimeErrorKind::BadArraySize { shape: dims.to_vec() });
        }
    }

    #[test]
    fn bad_array_sizes_match_the_interpreter() {
        let source = "import numpy as np\n\ndef f(a, b):\n    return np.zeros((a, b))\n";
        for (a, b) in [(3, -1), (1 << 30, 1 << 30), (-5, 0)] {
            let expected = interpreter_error(source, &mut [Scalar::I64(a).into(), Scalar::I64(b).into()]);
            let mut call = Call::new();
            assert!(call.new_array(F64, &[a, b], abi::FILL_ZEROS, Scalar::F64(0.0)).is_null());
            let sites = vec![Site::default(); 7].into_iter().chain([Site {
                span: expected.span,
                name: String::new(),
                check: None,
            }]);
            assert_eq!(runtime_error(&call.error, &sites.collect::<Vec<_>>()), expected);
        }
    }

    #[test]
    fn helpers_report_bad_codes_as_internal_errors() {
        let mut call = Call::new();
        // (dtype, ndim, fill, site): an unknown dtype, too many axes, an unknown fill.
        for (dtype, ndim, fill, site) in [(11, 1, abi::FILL_ZEROS, 4), (0, 4, abi::FILL_ZEROS, 5), (0, 1, 3, 6)] {
            // SAFETY: the context and its runtime are alive.
            let arg = call.with_context(|ctx| unsafe { kj_new_array(ctx, dtype, ndim, 1, 1, 1, fill, 0, site) });
            assert!(arg.is_null());
            assert_eq!((call.error.kind, call.error.site), (abi::ERROR_INTERNAL, site));
        }
        // A context without a runtime reports instead of crashing.
        let mut orphan =
            CallContext { depth: 0, error: ErrorSlot::default(), runtime: ptr::null_mut(), stack_limit: 0, threads: 0 };
        // SAFETY: a live context whose runtime is null.
        assert!(unsafe { kj_alloc_view(&mut orphan) }.is_null());
        assert_eq!(orphan.error.kind, abi::ERROR_INTERNAL);
        assert!(matches!(runtime_error(&orphan.error, &[]).kind, RuntimeErrorKind::Internal { .. }));
        // SAFETY: null contexts are allowed.
        assert!(unsafe { kj_arange(ptr::null_mut(), 4, 0, 1, 1, 0) }.is_null());
    }

    #[test]
    fn panics_in_helpers_become_internal_errors() {
        let mut call = Call::new();
        // SAFETY: the context and its runtime are alive.
        let arg = call.with_context(|ctx| unsafe { run_helper(ctx, 9, |_| panic!("a deliberate test panic")) });
        assert!(arg.is_null());
        assert_eq!((call.error.kind, call.error.site), (abi::ERROR_INTERNAL, 9));
        // The runtime stays usable after a panic.
        assert!(!call.alloc_view().is_null());
    }

    // ---- kj_arange ----

    #[test]
    fn arange_matches_the_interpreter() {
        let source = "import numpy as np\n\ndef f(a, b, c):\n    return np.arange(a, b, c)\n";
        let int_cases: [(i64, i64, i64); 8] = [
            (0, 10, 1),
            (3, 17, 4),
            (10, -5, -3),
            (5, 5, 1),
            (5, 0, 2),
            (-7, 7, 7),
            (i64::MIN, i64::MAX, 1 << 61),
            (2, -2, -1),
        ];
        let float_cases: [(f64, f64, f64); 8] = [
            (0.0, 1.0, 0.1),
            (1.5, -2.0, -0.25),
            (0.0, 10.0, 3.3),
            (-1e-3, 1e-3, 1e-4),
            (5.0, 5.0, 1.0),
            (0.1, 0.7, 0.2),
            (f64::NAN, 1.0, 1.0),
            (1.0, 0.0, 0.3),
        ];
        let mut triples: Vec<[Scalar; 3]> = Vec::new();
        triples.extend(int_cases.iter().map(|&(a, b, c)| [Scalar::I64(a), Scalar::I64(b), Scalar::I64(c)]));
        triples.extend(float_cases.iter().map(|&(a, b, c)| [Scalar::F64(a), Scalar::F64(b), Scalar::F64(c)]));
        triples.extend(
            float_cases.iter().map(|&(a, b, c)| [Scalar::F32(a as f32), Scalar::F32(b as f32), Scalar::F32(c as f32)]),
        );
        triples.push([Scalar::I8(-100), Scalar::I8(120), Scalar::I8(9)]);
        triples.push([Scalar::U8(250), Scalar::U8(3), Scalar::U8(255)]);
        triples.push([Scalar::U64(u64::MAX - 10), Scalar::U64(u64::MAX), Scalar::U64(3)]);
        triples.push([Scalar::I32(7), Scalar::I32(-40), Scalar::I32(-6)]);
        for [start, stop, step] in triples {
            let mut args: Vec<Value> = vec![start.into(), stop.into(), step.into()];
            let expected = match interpret(source, &mut args).unwrap() {
                Value::Array(array) => array,
                other => panic!("not an array: {other:?}"),
            };
            let mut call = Call::new();
            let arg = call.arange(start, stop, step);
            let result = call.result(start.ty(), 1, arg);
            assert_eq!(result.dtype(), expected.dtype());
            let bits = |array: &ArrayData| array.to_scalars().into_iter().map(encode_scalar).collect::<Vec<_>>();
            assert_eq!(bits(&result), bits(&expected), "arange({start}, {stop}, {step})");
        }
    }

    #[test]
    fn arange_errors_match_the_interpreter() {
        let source = "import numpy as np\n\ndef f(a, b, c):\n    return np.arange(a, b, c)\n";
        let cases = [
            [Scalar::I64(0), Scalar::I64(10), Scalar::I64(0)],
            [Scalar::F64(0.0), Scalar::F64(1.0), Scalar::F64(-0.0)],
            [Scalar::I64(i64::MIN), Scalar::I64(i64::MAX), Scalar::I64(1)],
            [Scalar::F64(0.0), Scalar::F64(1e300), Scalar::F64(1.0)],
        ];
        for [start, stop, step] in cases {
            let expected = interpreter_error(source, &mut [start.into(), stop.into(), step.into()]);
            let mut call = Call::new();
            assert!(call.arange(start, stop, step).is_null());
            assert_eq!(call.error.site, 3);
            let mut sites = vec![Site::default(); 3];
            sites.push(Site { span: expected.span, name: String::new(), check: None });
            assert_eq!(runtime_error(&call.error, &sites), expected, "arange({start}, {stop}, {step})");
        }
    }

    #[test]
    fn typed_arange_elements_equal_the_shared_scalar_formula() {
        for dtype in ScalarType::ALL.into_iter().filter(|d| !d.is_bool()) {
            for (index, bits) in random_bits(dtype as u64, 64).chunks(2).enumerate() {
                let (start, step) = (decode_scalar(bits[0], dtype), decode_scalar(bits[1], dtype));
                let k = match index % 3 {
                    0 => (bits[0] >> 40) as i64,
                    1 => index as i64,
                    _ => (bits[1] >> 1) as i64,
                };
                let expected = value::arange_element(start, step, k);
                let typed = with_element_type!(dtype, T => {
                    T::arange_element(T::from_scalar(start), T::from_scalar(step), k).to_scalar()
                });
                assert!(same_result(typed, expected), "{dtype}: {start} + {k} * {step}");
            }
        }
    }

    // ---- Reductions and powers ----

    #[test]
    fn reduce_tree_and_combine_equal_the_typed_ir() {
        for dtype in ScalarType::ALL {
            for (op_index, op) in OPS.into_iter().enumerate() {
                let code = abi::reduce_code(op);
                assert_eq!(code as usize, op_index);
                let mut bits = random_bits(code as u64 * 100 + dtype as u64, 1024);
                // Special values: NaN, -0.0 and infinities for floats, MIN/MAX for ints.
                let specials =
                    [0, u64::MAX, 1 << 63, f64::NAN.to_bits(), (-0.0f64).to_bits(), f32::NAN.to_bits() as u64];
                bits[..specials.len()].copy_from_slice(&specials);
                let scalars: Vec<Scalar> = bits.iter().map(|&b| decode_scalar(b, dtype)).collect();
                for count in [1usize, 2, 3, 7, 100, 1024] {
                    let expected = tir::combine_tree(op, &scalars[..count]).unwrap();
                    // SAFETY: `count` values are readable.
                    let result = unsafe { kj_reduce_tree(code, abi::dtype_code(dtype), bits.as_ptr(), count as i64) };
                    assert!(same_result(decode_scalar(result, dtype), expected), "{op:?} {dtype} {count}");
                }
                for pair in bits.chunks(2) {
                    let expected = op.combine(decode_scalar(pair[0], dtype), decode_scalar(pair[1], dtype));
                    let result = kj_combine(code, abi::dtype_code(dtype), pair[0], pair[1]);
                    assert!(same_result(decode_scalar(result, dtype), expected), "{op:?} {dtype}");
                }
            }
        }
        // Bad codes and counts are total.
        // SAFETY: a null pointer and empty counts are allowed.
        assert_eq!(unsafe { kj_reduce_tree(0, 4, ptr::null(), 5) }, 0);
        // SAFETY: as above.
        assert_eq!(unsafe { kj_reduce_tree(0, 4, [1u64].as_ptr(), 0) }, 0);
        assert_eq!(kj_combine(7, 4, 1, 2), 0);
        assert_eq!(kj_combine(0, 11, 1, 2), 0);
    }

    #[test]
    fn integer_powers_wrap_like_the_interpreter() {
        let reference = |base: i64, exponent: i64| {
            let (mut base, mut exponent, mut result) = (base as i128, exponent, 1i128);
            while exponent > 0 {
                if exponent & 1 == 1 {
                    result = result.wrapping_mul(base);
                }
                base = base.wrapping_mul(base);
                exponent >>= 1;
            }
            result
        };
        for base in [-3i64, -2, -1, 0, 1, 2, 3, 7, 255, -128, i64::MAX, i64::MIN, 0x1234_5678_9abc] {
            for exponent in [0i64, 1, 2, 3, 10, 31, 63, 64, 65, 1000, i64::MAX] {
                let result = kj_ipow(base, exponent);
                let expected = reference(base, exponent);
                assert_eq!(result, expected as i64, "{base} ** {exponent}");
                assert_eq!(result as i8, expected as i8);
                assert_eq!(result as u16, expected as u16);
                assert_eq!(result as i32, expected as i32);
            }
        }
        // A u64 exponent above 2^63 arrives as a negative i64 and is read as
        // unsigned: 3 ** (2^63 + 1) = 3 * (3 ** 2^63), and 3 ** 2^63 mod 2^64 is
        // 3 squared 63 times.
        let mut square = 3i64;
        for _ in 0..63 {
            square = square.wrapping_mul(square);
        }
        assert_eq!(kj_ipow(3, ((1u64 << 63) + 1) as i64), square.wrapping_mul(3));
        let source = "def f(a, b):\n    return a ** b\n";
        for (base, exponent) in [(Scalar::I8(3), Scalar::I8(7)), (Scalar::U16(7), Scalar::U16(9))] {
            let expected = interpret(source, &mut [base.into(), exponent.into()]).unwrap();
            let result = kj_ipow(base.to_i128() as i64, exponent.to_i128() as i64);
            assert_eq!(Value::Scalar(Scalar::from_i128_wrapping(result as i128, base.ty())), expected);
        }
    }

    // ---- Results ----

    #[test]
    fn whole_runtime_arrays_are_moved_out_without_a_copy() {
        let mut call = Call::new();
        let arg = read_arg(call.new_array(I32, &[2, 3, 4], abi::FILL_VALUE, Scalar::I32(9)));
        let result = call.result(I32, 3, &arg);
        let ArrayData::I32(array) = &result else { panic!("wrong dtype") };
        assert_eq!(array.as_ptr().cast::<u8>(), arg.data.cast_const());
        assert_eq!(array.shape(), &[2, 3, 4]);
        assert!(array.is_standard_layout());
        assert!(array.iter().all(|&v| v == 9));

        // A view covering a whole buffer in C order (a 1-D arange seen as
        // 3 x 4, through a view the generated code filled) moves out too.
        let mut call = Call::new();
        let base = read_arg(call.arange(Scalar::F64(0.0), Scalar::F64(12.0), Scalar::F64(1.0)));
        let view = call.alloc_view();
        // SAFETY: the view is a live runtime `ArrayArg`.
        unsafe { view.write(ArrayArg { data: base.data, shape: [3, 4, 1], strides: [4, 1, 0] }) };
        let result = call.result(F64, 2, view);
        let ArrayData::F64(array) = &result else { panic!("wrong dtype") };
        assert_eq!(array.as_ptr().cast::<u8>(), base.data.cast_const());
        assert_eq!(result, f64_array(&(0..12).map(f64::from).collect::<Vec<_>>(), &[3, 4]));

        // Empty results need no buffer.
        let mut call = Call::new();
        let arg = read_arg(call.new_array(U8, &[0, 3], abi::FILL_ZEROS, Scalar::U8(0)));
        assert_eq!(call.result(U8, 2, &arg), ArrayData::from_scalars(U8, &[0, 3], &[]));
    }

    #[test]
    fn views_of_runtime_arrays_are_copied_through_their_strides() {
        let mut call = Call::new();
        let base = read_arg(call.arange(Scalar::I64(0), Scalar::I64(12), Scalar::I64(1)));
        let element = |index: i64| base.data.wrapping_add(index as usize * 8);

        // Column 1 of the 3 x 4 array.
        let column = call.alloc_view();
        // SAFETY: the view is a live runtime `ArrayArg`.
        unsafe { column.write(ArrayArg { data: element(1), shape: [3, 1, 1], strides: [4, 0, 0] }) };
        let result = call.result(I64, 1, column);
        assert_eq!(result, ArrayData::I64(ArrayD::from_shape_vec(IxDyn(&[3]), vec![1, 5, 9]).unwrap()));

        // The whole array reversed (a negative stride).
        let reversed = call.alloc_view();
        // SAFETY: as above.
        unsafe { reversed.write(ArrayArg { data: element(11), shape: [12, 1, 1], strides: [-1, 0, 0] }) };
        let result = call.result(I64, 1, reversed);
        assert_eq!(result, ArrayData::I64(ArrayD::from_shape_vec(IxDyn(&[12]), (0..12).rev().collect()).unwrap()));

        // A transposed 2-D view: same elements and size as the buffer, but
        // not in C order, so it is copied and the buffer stays in the runtime.
        let transposed = call.alloc_view();
        // SAFETY: as above.
        unsafe { transposed.write(ArrayArg { data: base.data, shape: [4, 3, 1], strides: [1, 4, 0] }) };
        let result = call.result(I64, 2, transposed);
        let expected: Vec<i64> = (0..4).flat_map(|i| (0..3).map(move |j| i + 4 * j)).collect();
        assert_eq!(result, ArrayData::I64(ArrayD::from_shape_vec(IxDyn(&[4, 3]), expected).unwrap()));
        let ArrayData::I64(array) = &result else { panic!("wrong dtype") };
        assert_ne!(array.as_ptr().cast::<u8>(), base.data.cast_const());

        // An unfilled view is an empty array.
        let unfilled = call.alloc_view();
        assert_eq!(call.result(F32, 2, unfilled), ArrayData::from_scalars(F32, &[0, 0], &[]));
    }

    #[test]
    fn views_of_host_arrays_are_copied() {
        let mut host = f64_array(&(0..24).map(f64::from).collect::<Vec<_>>(), &[2, 3, 4]);
        let arg = array_arg(&mut host);
        let mut call = Call::new();
        // `host[1, :, 2]`: elements 14, 18, 22.
        let view = call.alloc_view();
        let data = arg.data.wrapping_add((12 + 2) * 8);
        // SAFETY: the view is a live runtime `ArrayArg`.
        unsafe { view.write(ArrayArg { data, shape: [3, 1, 1], strides: [4, 0, 0] }) };
        assert_eq!(call.result(F64, 1, view), f64_array(&[14.0, 18.0, 22.0], &[3]));
        // The host array itself, returned: an owned copy.
        let whole = call.alloc_view();
        // SAFETY: as above.
        unsafe { whole.write(arg) };
        let result = call.result(F64, 3, whole);
        assert_eq!(result, host);
        let (ArrayData::F64(copy), ArrayData::F64(original)) = (&result, &host) else { panic!("wrong dtype") };
        assert_ne!(copy.as_ptr(), original.as_ptr());
    }

    #[test]
    fn scalar_tuple_and_none_results_are_decoded() {
        let mut runtime = CallRuntime::new();
        let slots = [encode_scalar(Scalar::F32(1.5)), encode_scalar(Scalar::I8(-2)) | 0xff00, 1];
        let tuple = Type::Tuple(vec![F32, I8, Bool]);
        assert_eq!(result_slot_count(&tuple), 3);
        // SAFETY: scalar results need nothing alive.
        let value = unsafe { result_value(&tuple, &slots, &mut runtime) };
        assert_eq!(value, Value::Tuple(vec![Scalar::F32(1.5), Scalar::I8(-2), Scalar::Bool(true)]));
        // SAFETY: as above.
        let value = unsafe { result_value(&Type::Scalar(U64), &[u64::MAX], &mut runtime) };
        assert_eq!(value, Value::Scalar(Scalar::U64(u64::MAX)));
        assert_eq!(result_slot_count(&Type::None), 0);
        // SAFETY: as above.
        assert_eq!(unsafe { result_value(&Type::None, &[], &mut runtime) }, Value::None);
    }

    // ---- Arguments ----

    #[test]
    fn argument_slots_describe_any_host_layout() {
        let values: Vec<f64> = (0..6).map(f64::from).collect();
        let fortran = ArrayD::from_shape_vec(IxDyn(&[2, 3]).f(), values.clone()).unwrap();
        let mut inverted = ArrayD::from_shape_vec(IxDyn(&[2, 3]), values).unwrap();
        inverted.invert_axis(Axis(1));
        let expected_fortran = fortran.clone();
        let expected_inverted = inverted.clone();
        let mut args = vec![
            Value::Scalar(Scalar::I16(-5)),
            Value::Array(ArrayData::F64(fortran)),
            Value::Tuple(vec![Scalar::Bool(true), Scalar::F64(0.5)]),
            Value::Array(ArrayData::F64(inverted)),
        ];
        let params: Vec<Type> = args.iter().map(Value::ty).collect();
        assert_eq!(argument_slot_count(&params), 5);
        let (slots, boxes) = argument_slots(&mut args, &params).unwrap();
        assert_eq!(slots.len(), 5);
        assert_eq!(boxes.len(), 2);
        assert_eq!(decode_scalar(slots[0], I16), Scalar::I16(-5));
        assert_eq!(decode_scalar(slots[2], Bool), Scalar::Bool(true));
        assert_eq!(decode_scalar(slots[3], F64), Scalar::F64(0.5));

        let check = |slot: u64, expected: &ArrayD<f64>, strides: [i64; 3]| {
            let arg = read_arg(slot as *const ArrayArg);
            assert_eq!(arg.shape, [2, 3, 1]);
            assert_eq!(arg.strides, strides);
            for i in 0..2 {
                for j in 0..3 {
                    let offset = i as i64 * arg.strides[0] + j as i64 * arg.strides[1];
                    // SAFETY: every in-bounds element of the host array is alive.
                    let value = unsafe { arg.data.cast::<f64>().offset(offset as isize).read() };
                    assert_eq!(value, expected[[i, j]]);
                }
            }
        };
        check(slots[1], &expected_fortran, [1, 2, 0]);
        check(slots[4], &expected_inverted, [3, -1, 0]);
        drop(boxes);
    }

    #[test]
    fn argument_slots_check_types() {
        let mut args = vec![Value::Scalar(Scalar::I64(1))];
        let error = argument_slots(&mut args, &[Type::Scalar(F64)]).unwrap_err();
        assert_eq!(error, "argument 1 has type i64 but the kernel was compiled for f64");
        let error = argument_slots(&mut args, &[]).unwrap_err();
        assert_eq!(error, "the kernel takes 0 arguments but was given 1");
        let mut args = vec![Value::Array(f64_array(&[1.0], &[1]))];
        let error = argument_slots(&mut args, &[Type::Array(ArrayType { dtype: F64, ndim: 2 })]).unwrap_err();
        assert_eq!(error, "argument 1 has type f64[:] but the kernel was compiled for f64[:, :]");
    }

    // ---- Errors ----

    #[test]
    fn index_errors_read_exactly_like_the_interpreters() {
        let source = "def f(a):\n    x = 0.0\n    return a[1, -7] + x\n";
        let mut args = [Value::Array(f64_array(&[0.0; 6], &[2, 3]))];
        let expected = interpreter_error(source, &mut args);
        let slot = ErrorSlot {
            kind: abi::ERROR_INDEX_OUT_OF_BOUNDS,
            site: 1,
            axis: 1,
            index: -7,
            extent: 3,
            count: 2,
            values: [1, -7, 0],
        };
        let sites = [Site::default(), Site { span: expected.span, name: "a".to_string(), check: None }];
        let error = runtime_error(&slot, &sites);
        assert_eq!(error, expected);
        assert_eq!(error.kind.to_string(), "a[1, -7]: index -7 out of bounds for axis 1 with size 3");
        assert_eq!(error.kind.to_string(), expected.kind.to_string());
    }

    #[test]
    fn every_error_kind_maps_to_the_interpreters_kind() {
        let site = Site { span: Span::new(3, 9), name: String::new(), check: None };
        let kinds = [
            RuntimeErrorKind::IndexOutOfBounds { array: String::new(), indices: vec![4], axis: 0, index: 4, extent: 2 },
            RuntimeErrorKind::DivisionByZero,
            RuntimeErrorKind::ZeroStep,
            RuntimeErrorKind::BadArraySize { shape: vec![1, -2, 3] },
            RuntimeErrorKind::RecursionTooDeep,
            RuntimeErrorKind::NegativePower { exponent: -3 },
        ];
        for kind in kinds {
            let slot = error_slot(&kind, 0);
            assert_eq!(runtime_error(&slot, std::slice::from_ref(&site)), RuntimeError { kind, span: site.span });
        }
        let internal = runtime_error(&internal_slot(0), &[]);
        assert!(matches!(internal.kind, RuntimeErrorKind::Internal { .. }));
        let unknown = runtime_error(&ErrorSlot { kind: 42, ..ErrorSlot::default() }, &[]);
        assert!(matches!(unknown.kind, RuntimeErrorKind::Internal { .. }));
    }

    #[test]
    fn check_errors_are_completed_from_the_site_table() {
        // `a[:, 7]` on a 2-column array: the view's one integer item is
        // values[0] but axis 1 (slot 0).
        let check = CheckSite { kind: abi::ERROR_INDEX_OUT_OF_BOUNDS, axis: 1, slot: 0, count: 1 };
        let sites = [Site::default(), Site { span: Span::new(2, 5), name: "a".into(), check: Some(check) }];
        let slot = ErrorSlot { kind: abi::ERROR_CHECK, site: 1, extent: 2, values: [7, 0, 0], ..ErrorSlot::default() };
        let expected =
            RuntimeErrorKind::IndexOutOfBounds { array: "a".into(), indices: vec![7], axis: 1, index: 7, extent: 2 };
        assert_eq!(runtime_error(&slot, &sites), RuntimeError { kind: expected, span: Span::new(2, 5) });
        let power = CheckSite { kind: abi::ERROR_NEGATIVE_POWER, axis: 0, slot: 0, count: 1 };
        let sites = [Site { span: Span::new(1, 2), name: String::new(), check: Some(power) }];
        let slot = ErrorSlot { kind: abi::ERROR_CHECK, site: 0, values: [-3, 0, 0], ..ErrorSlot::default() };
        assert_eq!(runtime_error(&slot, &sites).kind, RuntimeErrorKind::NegativePower { exponent: -3 });
        // A check site that is missing, or not a check, is an internal error.
        for sites in [&[][..], &[Site::default()][..]] {
            let slot = ErrorSlot { kind: abi::ERROR_CHECK, site: 0, ..ErrorSlot::default() };
            assert!(matches!(runtime_error(&slot, sites).kind, RuntimeErrorKind::Internal { .. }));
        }
    }

    #[test]
    fn malformed_error_slots_do_not_panic() {
        let slot = ErrorSlot {
            kind: abi::ERROR_INDEX_OUT_OF_BOUNDS,
            site: u32::MAX,
            axis: -1,
            count: 99,
            ..ErrorSlot::default()
        };
        let error = runtime_error(&slot, &[]);
        assert_eq!(error.span, Span::default());
        let RuntimeErrorKind::IndexOutOfBounds { indices, axis, .. } = error.kind else { panic!("wrong kind") };
        assert_eq!((indices.len(), axis), (3, 0));
        let slot = ErrorSlot { kind: abi::ERROR_BAD_ARRAY_SIZE, count: -4, ..ErrorSlot::default() };
        assert_eq!(runtime_error(&slot, &[]).kind, RuntimeErrorKind::BadArraySize { shape: vec![] });
    }

    // ---- Symbols ----

    #[test]
    fn symbols_cover_helpers_and_math_routines_once() {
        let symbols = symbols();
        let mut names: Vec<&str> = symbols.iter().map(|(name, _)| *name).collect();
        for helper in
            ["kj_new_array", "kj_arange", "kj_alloc_view", "kj_reduce_tree", "kj_combine", "kj_ipow", "kj_checked_loop"]
        {
            assert!(names.contains(&helper), "{helper}");
        }
        for symbol in mathlib::SYMBOLS {
            assert!(names.contains(&symbol.name), "{}", symbol.name);
        }
        assert!(symbols.iter().all(|(_, address)| !address.is_null()));
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "duplicate symbol names");
    }

    #[test]
    fn runtimes_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CallRuntime>();
    }
}
