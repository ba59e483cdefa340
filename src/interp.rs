//! The reference interpreter: runs a typed program node by node with exactly
//! the runtime semantics documented in [`crate::tir`].
//!
//! It is the oracle the JIT is checked against, so it favours being plainly
//! correct over being fast. Scalars are [`Scalar`]s; arrays are
//! `ArrayView`s — a shared, typed element buffer plus an offset, a shape and
//! strides counted in elements — so a slice aliases the array it came from.
//! Host arrays are copied into buffers at entry (in logical C order) and
//! copied back into the same host arrays when the call ends, whatever their
//! memory layout. `prange` loops run serially, but reductions are computed
//! block by block and combined in the fixed tree of [`tir::combine_tree`], so
//! results are bit-identical to a parallel run.
//!
//! The interpreter runs on its own thread with a large stack, and grows the
//! stack on demand for very deep expressions, so no program can overflow it.
//! It must never panic: user errors are [`RuntimeError`]s at the failing
//! node's span, and a program that breaks the typed IR's invariants gets a
//! [`RuntimeErrorKind::Internal`] error. It reads the typed IR only; it knows
//! nothing about syntax or inference.

use crate::mathlib::{self, MathFunction};
use crate::span::Span;
use crate::tir::{self, BinaryOp, Builtin, Expr, ExprKind, Fill, FuncId, LocalId, Stmt, StmtKind, UnaryOp, ViewItem};
use crate::types::{ArrayType, ScalarType, Type, MAX_NDIM};
use crate::value::{
    arange_element, arange_len, array_size_allowed, ArrayData, Element, RuntimeError, RuntimeErrorKind, Scalar, Value,
    RECURSION_LIMIT,
};
use ndarray::{ArrayD, IxDyn};
use std::cell::RefCell;
use std::rc::Rc;

/// Runs `program.entry` with `args`, which must have exactly the entry's
/// parameter types (a mismatch is an `Internal` error). Array arguments are
/// updated in place, also when the kernel fails part-way. Returns the kernel's
/// result; an array result is an owned, C-ordered copy of the returned view.
pub fn interpret(program: &tir::Program, args: &mut [Value]) -> Result<Value, RuntimeError> {
    let spawned = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("kernjit-interpreter".to_string())
            .stack_size(INTERPRETER_STACK_BYTES)
            .spawn_scoped(scope, || run(program, args))
            .map(|worker| worker.join())
    });
    match spawned {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(internal_error(format!("the interpreter panicked: {message}"), Span::default()))
        }
        // No thread could be started: run here; the stack still grows on demand.
        Err(_) => run(program, args),
    }
}

/// The interpreter thread's stack (reserved address space, touched only as used).
const INTERPRETER_STACK_BYTES: usize = 256 << 20;
/// When less than this much stack is left, evaluation continues on a new segment.
const STACK_RED_ZONE_BYTES: usize = 256 << 10;
/// The size of each extra stack segment.
const STACK_SEGMENT_BYTES: usize = 16 << 20;

/// Runs the entry function on the current thread.
fn run(program: &tir::Program, args: &mut [Value]) -> Result<Value, RuntimeError> {
    let entry = program
        .functions
        .get(program.entry.0 as usize)
        .ok_or_else(|| internal_error("the entry function does not exist", Span::default()))?;
    let arguments = entry_arguments(entry, args)?;
    let mut interpreter = Interpreter { program, depth: 0 };
    let result = interpreter.call(program.entry, arguments.clone(), entry.span);
    // Copy every array argument back, also after an error: the JIT writes
    // through the host's memory, so partial writes are visible there too.
    for (arg, value) in args.iter_mut().zip(&arguments) {
        if let (Value::Array(host), RuntimeValue::Array(view)) = (arg, value) {
            if !view.buffer.borrow().copy_to_host(host) {
                return Err(internal_error("an argument array changed size", entry.span));
            }
        }
    }
    match result? {
        RuntimeValue::Scalar(value) => Ok(Value::Scalar(value)),
        RuntimeValue::Tuple(items) => Ok(Value::Tuple(items)),
        RuntimeValue::Array(view) => view
            .to_host()
            .map(Value::Array)
            .ok_or_else(|| internal_error("a returned view lies outside its buffer", entry.span)),
        RuntimeValue::None => Ok(Value::None),
    }
}

/// Converts the host's arguments to runtime values, checking each against
/// the entry's parameter types. Arrays are copied into fresh buffers.
fn entry_arguments(entry: &tir::Function, args: &[Value]) -> Result<Vec<RuntimeValue>, RuntimeError> {
    if args.len() != entry.params.len() {
        let message = format!("`{}` takes {} arguments but was given {}", entry.name, entry.params.len(), args.len());
        return Err(internal_error(message, entry.span));
    }
    let mut values = Vec::with_capacity(args.len());
    for (position, (arg, param)) in args.iter().zip(&entry.params).enumerate() {
        let param_type = local_type(entry, *param).map_err(|kind| RuntimeError { kind, span: entry.span })?;
        if arg.ty() != *param_type {
            let message = format!(
                "argument {} of `{}` has type {} but the kernel was specialised for {}",
                position + 1,
                entry.name,
                arg.ty(),
                param_type
            );
            return Err(internal_error(message, entry.span));
        }
        values.push(match arg {
            Value::Scalar(value) => RuntimeValue::Scalar(*value),
            Value::Tuple(items) => RuntimeValue::Tuple(items.clone()),
            Value::Array(host) => {
                let view = ArrayView::from_host(host)
                    .ok_or_else(|| internal_error("an argument array has too many dimensions", entry.span))?;
                RuntimeValue::Array(view)
            }
            Value::None => RuntimeValue::None,
        });
    }
    Ok(values)
}

/// A value during execution. Arrays are views, so cloning one aliases it.
#[derive(Clone, Debug)]
enum RuntimeValue {
    Scalar(Scalar),
    Tuple(Vec<Scalar>),
    Array(ArrayView),
    None,
}

impl RuntimeValue {
    /// The value a local of type `ty` starts with: zero, or an empty array.
    fn initial(ty: &Type) -> RuntimeValue {
        match ty {
            Type::Scalar(dtype) => RuntimeValue::Scalar(Scalar::zero(*dtype)),
            Type::Tuple(items) => RuntimeValue::Tuple(items.iter().map(|dtype| Scalar::zero(*dtype)).collect()),
            Type::Array(array_type) => RuntimeValue::Array(ArrayView::empty(*array_type)),
            Type::None | Type::Unknown => RuntimeValue::None,
        }
    }

    fn has_type(&self, ty: &Type) -> bool {
        match (self, ty) {
            (RuntimeValue::Scalar(value), Type::Scalar(dtype)) => value.ty() == *dtype,
            (RuntimeValue::Tuple(items), Type::Tuple(dtypes)) => {
                items.len() == dtypes.len() && items.iter().zip(dtypes).all(|(item, dtype)| item.ty() == *dtype)
            }
            (RuntimeValue::Array(view), Type::Array(array_type)) => view.array_type() == *array_type,
            (RuntimeValue::None, Type::None) => true,
            _ => false,
        }
    }
}

/// A strided view of a shared element buffer. Element `(i, j, k)` lives at
/// `offset + i * strides[0] + j * strides[1] + k * strides[2]`; every in-bounds
/// index of a non-empty view maps inside the buffer.
#[derive(Clone, Debug)]
struct ArrayView {
    buffer: Rc<RefCell<Buffer>>,
    offset: isize,
    shape: Axes<usize>,
    strides: Axes<isize>,
}

impl ArrayView {
    /// An array of the given type with every extent 0.
    fn empty(array_type: ArrayType) -> ArrayView {
        let ndim = array_type.ndim as usize;
        ArrayView {
            buffer: Rc::new(RefCell::new(Buffer::empty(array_type.dtype))),
            offset: 0,
            shape: Axes::zeros(ndim),
            strides: Axes::zeros(ndim),
        }
    }

    /// A C-contiguous array over a whole buffer of `shape`'s size.
    fn contiguous(buffer: Buffer, shape: Axes<usize>) -> ArrayView {
        let mut strides = Axes::zeros(shape.len());
        let mut stride: isize = 1;
        for axis in (0..shape.len()).rev() {
            strides[axis] = stride;
            // The buffer exists, so the running product fits (it is at most its length).
            stride = stride.saturating_mul(shape[axis].max(1) as isize);
        }
        ArrayView { buffer: Rc::new(RefCell::new(buffer)), offset: 0, shape, strides }
    }

    /// A copy of a host array, in logical (C) order; `None` if it has more
    /// than [`MAX_NDIM`] dimensions.
    fn from_host(host: &ArrayData) -> Option<ArrayView> {
        let shape = Axes::from_slice(&host.shape())?;
        Some(ArrayView::contiguous(Buffer::from_host(host), shape))
    }

    fn dtype(&self) -> ScalarType {
        self.buffer.borrow().dtype()
    }

    fn array_type(&self) -> ArrayType {
        ArrayType { dtype: self.dtype(), ndim: self.shape.len() as u8 }
    }

    fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// The buffer position of the element at `indices` (one `i64` per axis,
    /// negative ones counting from the end), or `IndexOutOfBounds` for the
    /// first bad axis.
    fn position(&self, indices: &[i64], name: &str) -> Result<usize, RuntimeErrorKind> {
        if indices.len() != self.shape.len() {
            return Err(internal(format!("{} indices into a {}-dimensional array", indices.len(), self.shape.len())));
        }
        let mut position = self.offset;
        for (axis, &index) in indices.iter().enumerate() {
            let resolved = resolve_index(index, self.shape[axis])
                .ok_or_else(|| out_of_bounds(name, indices, axis, self.shape[axis]))?;
            position = offset_by(position, resolved, self.strides[axis])?;
        }
        usize::try_from(position).map_err(|_| internal("an element position is negative"))
    }

    fn load(&self, position: usize) -> Result<Scalar, RuntimeErrorKind> {
        self.buffer.borrow().load(position).ok_or_else(|| internal("an element position lies outside its buffer"))
    }

    fn store(&self, position: usize, value: Scalar) -> Result<(), RuntimeErrorKind> {
        if value.ty() != self.dtype() {
            return Err(internal(format!("storing a {} into a {} array", value.ty(), self.dtype())));
        }
        self.buffer
            .borrow_mut()
            .store(position, value)
            .ok_or_else(|| internal("an element position lies outside its buffer"))
    }

    /// The buffer positions of every element, in logical (C) order.
    fn positions(&self) -> Option<Vec<usize>> {
        let len = self.len();
        let mut positions = Vec::with_capacity(len);
        if len == 0 {
            return Some(positions);
        }
        let ndim = self.shape.len();
        let mut index = vec![0usize; ndim];
        loop {
            let mut position = self.offset;
            for (&axis_index, &stride) in index.iter().zip(self.strides.iter()) {
                position = offset_by(position, axis_index, stride).ok()?;
            }
            positions.push(usize::try_from(position).ok()?);
            // Advance the index like an odometer, last axis fastest.
            let mut axis = ndim;
            loop {
                if axis == 0 {
                    return Some(positions);
                }
                axis -= 1;
                index[axis] += 1;
                if index[axis] < self.shape[axis] {
                    break;
                }
                index[axis] = 0;
            }
        }
    }

    /// An owned, C-ordered host copy of the view's elements.
    fn to_host(&self) -> Option<ArrayData> {
        self.buffer.borrow().gather(&self.positions()?, &self.shape)
    }
}

/// Per-axis numbers (extents or strides) of an array of at most
/// [`MAX_NDIM`] dimensions, stored inline so that views clone cheaply.
#[derive(Clone, Copy, Debug)]
struct Axes<T> {
    len: usize,
    values: [T; MAX_NDIM],
}

impl<T: Copy + Default> Axes<T> {
    /// `len` default values (zeros); at most [`MAX_NDIM`].
    fn zeros(len: usize) -> Axes<T> {
        Axes { len: len.min(MAX_NDIM), values: [T::default(); MAX_NDIM] }
    }

    fn from_slice(values: &[T]) -> Option<Axes<T>> {
        let mut axes = Axes::zeros(0);
        for &value in values {
            axes.push(value);
        }
        (axes.len == values.len()).then_some(axes)
    }

    /// Appends a value; values past [`MAX_NDIM`] are dropped (callers only
    /// remove axes, so it never happens).
    fn push(&mut self, value: T) {
        if self.len < MAX_NDIM {
            self.values[self.len] = value;
            self.len += 1;
        }
    }
}

impl<T> std::ops::Deref for Axes<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.values[..self.len]
    }
}

impl<T> std::ops::DerefMut for Axes<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.values[..self.len]
    }
}

/// `index`, counted from the end when negative, if it lies in `0..extent`.
fn resolve_index(index: i64, extent: usize) -> Option<usize> {
    let extent = i64::try_from(extent).ok()?;
    let resolved = if index < 0 { index + extent } else { index };
    if (0..extent).contains(&resolved) {
        Some(resolved as usize)
    } else {
        None
    }
}

/// The start and length of the Python slice `lower:upper` (step 1) of an axis.
fn clamp_slice(lower: Option<i64>, upper: Option<i64>, extent: usize) -> (usize, usize) {
    let extent = i64::try_from(extent).unwrap_or(i64::MAX);
    let clamp = |bound: i64| {
        if bound < 0 {
            (bound + extent).max(0)
        } else {
            bound.min(extent)
        }
    };
    let start = lower.map_or(0, clamp);
    let stop = upper.map_or(extent, clamp);
    (start as usize, (stop - start).max(0) as usize)
}

/// `position + index * stride`, or an `Internal` error if it overflows (only
/// possible for a view that does not fit its buffer).
fn offset_by(position: isize, index: usize, stride: isize) -> Result<isize, RuntimeErrorKind> {
    isize::try_from(index)
        .ok()
        .and_then(|index| index.checked_mul(stride))
        .and_then(|delta| position.checked_add(delta))
        .ok_or_else(|| internal("an element offset overflows"))
}

fn out_of_bounds(name: &str, indices: &[i64], axis: usize, extent: usize) -> RuntimeErrorKind {
    RuntimeErrorKind::IndexOutOfBounds {
        array: name.to_string(),
        indices: indices.to_vec(),
        axis,
        index: indices[axis],
        extent: i64::try_from(extent).unwrap_or(i64::MAX),
    }
}

/// Defines [`Buffer`], the typed element storage of arrays, with one variant
/// per dtype, and its dtype-generic operations.
macro_rules! define_buffer {
    ($($variant:ident($element:ty)),* $(,)?) => {
        /// The elements of one array allocation, in one typed vector.
        #[derive(Debug)]
        enum Buffer {
            $($variant(Vec<$element>),)*
        }

        impl Buffer {
            fn empty(dtype: ScalarType) -> Buffer {
                match dtype {
                    $(ScalarType::$variant => Buffer::$variant(Vec::new()),)*
                }
            }

            /// `len` zeros, or `None` if the memory cannot be allocated.
            fn zeroed(dtype: ScalarType, len: usize) -> Option<Buffer> {
                Some(match dtype {
                    $(ScalarType::$variant => Buffer::$variant(zeros::<$element>(len)?),)*
                })
            }

            /// The elements of a host array of any layout, in logical order.
            fn from_host(host: &ArrayData) -> Buffer {
                match host {
                    $(ArrayData::$variant(array) => Buffer::$variant(match array.as_slice() {
                        Some(elements) => elements.to_vec(),
                        None => array.iter().copied().collect(),
                    }),)*
                }
            }

            /// Writes the buffer back over a host array of the same dtype and
            /// size, in logical order; `false` if they do not match.
            fn copy_to_host(&self, host: &mut ArrayData) -> bool {
                match (self, host) {
                    $((Buffer::$variant(data), ArrayData::$variant(array)) if array.len() == data.len() => {
                        match array.as_slice_mut() {
                            Some(elements) => elements.copy_from_slice(data),
                            None => array.iter_mut().zip(data).for_each(|(target, source)| *target = *source),
                        }
                        true
                    })*
                    _ => false,
                }
            }

            /// A C-ordered host array of `shape` holding the elements at `positions`.
            fn gather(&self, positions: &[usize], shape: &[usize]) -> Option<ArrayData> {
                match self {
                    $(Buffer::$variant(data) => {
                        let elements: Option<Vec<$element>> = positions.iter().map(|&p| data.get(p).copied()).collect();
                        ArrayD::from_shape_vec(IxDyn(shape), elements?).ok().map(ArrayData::$variant)
                    })*
                }
            }

            fn dtype(&self) -> ScalarType {
                match self {
                    $(Buffer::$variant(_) => ScalarType::$variant,)*
                }
            }

            fn load(&self, position: usize) -> Option<Scalar> {
                match self {
                    $(Buffer::$variant(data) => data.get(position).map(|element| element.to_scalar()),)*
                }
            }

            /// Stores `value` (converted with [`Scalar::cast`] if its dtype differs).
            fn store(&mut self, position: usize, value: Scalar) -> Option<()> {
                match self {
                    $(Buffer::$variant(data) => *data.get_mut(position)? = <$element>::from_scalar(value),)*
                }
                Some(())
            }

            fn fill(&mut self, value: Scalar) {
                match self {
                    $(Buffer::$variant(data) => data.fill(<$element>::from_scalar(value)),)*
                }
            }
        }
    };
}

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

/// A vector of `len` zeros, or `None` when the allocator refuses.
fn zeros<T: Element>(len: usize) -> Option<Vec<T>> {
    let mut data = Vec::new();
    data.try_reserve_exact(len).ok()?;
    data.resize(len, T::from_scalar(Scalar::zero(T::DTYPE)));
    Some(data)
}

/// How a statement ended.
enum Flow {
    Normal,
    Break,
    Continue,
    Return(RuntimeValue),
}

/// The locals of one active function call.
struct Frame<'p> {
    function: &'p tir::Function,
    locals: Vec<RuntimeValue>,
}

impl Frame<'_> {
    fn get(&self, local: LocalId) -> Result<&RuntimeValue, RuntimeErrorKind> {
        self.locals
            .get(local.0 as usize)
            .ok_or_else(|| internal(format!("no local {} in `{}`", local.0, self.function.name)))
    }

    fn get_scalar(&self, local: LocalId) -> Result<Scalar, RuntimeErrorKind> {
        match self.get(local)? {
            RuntimeValue::Scalar(value) => Ok(*value),
            _ => Err(internal(format!("local {} of `{}` is not a scalar", local.0, self.function.name))),
        }
    }

    /// Binds a local (arrays by reference), checking the value's type.
    fn set(&mut self, local: LocalId, value: RuntimeValue) -> Result<(), RuntimeErrorKind> {
        let ty = local_type(self.function, local)?;
        if !value.has_type(ty) {
            return Err(internal(format!(
                "assigning a value of another type to `{}` ({ty})",
                self.function.local(local).name
            )));
        }
        self.locals[local.0 as usize] = value;
        Ok(())
    }
}

fn local_type(function: &tir::Function, local: LocalId) -> Result<&Type, RuntimeErrorKind> {
    function
        .locals
        .get(local.0 as usize)
        .map(|local| &local.ty)
        .ok_or_else(|| internal(format!("no local {} in `{}`", local.0, function.name)))
}

/// Attaches a span to an error kind.
trait At<T> {
    fn at(self, span: Span) -> Result<T, RuntimeError>;
}

impl<T> At<T> for Result<T, RuntimeErrorKind> {
    fn at(self, span: Span) -> Result<T, RuntimeError> {
        self.map_err(|kind| RuntimeError { kind, span })
    }
}

fn internal(message: impl Into<String>) -> RuntimeErrorKind {
    RuntimeErrorKind::Internal { message: message.into() }
}

fn internal_error(message: impl Into<String>, span: Span) -> RuntimeError {
    RuntimeError { kind: internal(message), span }
}

struct Interpreter<'p> {
    program: &'p tir::Program,
    /// How many kernel calls are active (the entry call is not counted).
    depth: usize,
}

impl<'p> Interpreter<'p> {
    /// Runs one function with already-evaluated arguments.
    fn call(&mut self, func: FuncId, args: Vec<RuntimeValue>, span: Span) -> Result<RuntimeValue, RuntimeError> {
        let function = self
            .program
            .functions
            .get(func.0 as usize)
            .ok_or_else(|| internal_error(format!("no function {}", func.0), span))?;
        if args.len() != function.params.len() {
            let message =
                format!("`{}` takes {} arguments but was given {}", function.name, function.params.len(), args.len());
            return Err(internal_error(message, span));
        }
        let locals = function.locals.iter().map(|local| RuntimeValue::initial(&local.ty)).collect();
        let mut frame = Frame { function, locals };
        for (param, arg) in function.params.iter().zip(args) {
            frame.set(*param, arg).at(span)?;
        }
        match self.exec_block(&mut frame, &function.body)? {
            Flow::Return(value) => Ok(value),
            // Falling off the end (only possible for a function returning None).
            _ => Ok(RuntimeValue::initial(&function.ret)),
        }
    }

    fn exec_block(&mut self, frame: &mut Frame<'p>, block: &'p [Stmt]) -> Result<Flow, RuntimeError> {
        stacker::maybe_grow(STACK_RED_ZONE_BYTES, STACK_SEGMENT_BYTES, || {
            for stmt in block {
                match self.exec_stmt(frame, stmt)? {
                    Flow::Normal => {}
                    other => return Ok(other),
                }
            }
            Ok(Flow::Normal)
        })
    }

    fn exec_stmt(&mut self, frame: &mut Frame<'p>, stmt: &'p Stmt) -> Result<Flow, RuntimeError> {
        match &stmt.kind {
            StmtKind::Assign { local, value } => {
                let value = self.eval(frame, value)?;
                frame.set(*local, value).at(stmt.span)?;
            }
            StmtKind::Store { array, indices, value, array_name } => {
                let array = self.eval_array(frame, array)?;
                let indices = self.eval_indices(frame, indices)?;
                let value = self.eval_scalar(frame, value)?;
                let position = array.position(&indices, array_name).at(stmt.span)?;
                array.store(position, value).at(stmt.span)?;
            }
            StmtKind::If { cond, then, orelse } => {
                let branch = if self.eval_bool(frame, cond)? { then } else { orelse };
                return self.exec_block(frame, branch);
            }
            StmtKind::While { cond, body } => {
                while self.eval_bool(frame, cond)? {
                    match self.exec_block(frame, body)? {
                        Flow::Normal | Flow::Continue => {}
                        Flow::Break => break,
                        Flow::Return(value) => return Ok(Flow::Return(value)),
                    }
                }
            }
            StmtKind::ForRange { var, start, stop, step, body, range_span, parallel } => {
                let start = self.eval_i64(frame, start)?;
                let stop = self.eval_i64(frame, stop)?;
                let step = self.eval_i64(frame, step)?;
                if step == 0 {
                    return Err(RuntimeError { kind: RuntimeErrorKind::ZeroStep, span: *range_span });
                }
                let range = Range {
                    var: *var,
                    start,
                    step,
                    trip_count: range_trip_count(start, stop, step),
                    span: *range_span,
                };
                return match parallel {
                    None => self.exec_range(frame, &range, body),
                    Some(parallel) => self.exec_parallel_range(frame, &range, body, &parallel.reductions, stmt.span),
                };
            }
            StmtKind::Break => return Ok(Flow::Break),
            StmtKind::Continue => return Ok(Flow::Continue),
            StmtKind::Return(value) => {
                let value = match value {
                    Some(value) => self.eval(frame, value)?,
                    None => RuntimeValue::None,
                };
                return Ok(Flow::Return(value));
            }
            StmtKind::Expr(expr) => {
                self.eval(frame, expr)?;
            }
        }
        Ok(Flow::Normal)
    }

    /// A serial `for` loop.
    fn exec_range(&mut self, frame: &mut Frame<'p>, range: &Range, body: &'p [Stmt]) -> Result<Flow, RuntimeError> {
        for trip in 0..range.trip_count {
            range.set_var(frame, trip)?;
            match self.exec_block(frame, body)? {
                Flow::Normal | Flow::Continue => {}
                Flow::Break => break,
                Flow::Return(value) => return Ok(Flow::Return(value)),
            }
        }
        Ok(Flow::Normal)
    }

    /// A `prange` loop, run serially with the deterministic reduction
    /// semantics of [`tir::ReduceOp`]: each block of trips accumulates a partial
    /// from the identity, and the partials are combined in the fixed tree.
    fn exec_parallel_range(
        &mut self,
        frame: &mut Frame<'p>,
        range: &Range,
        body: &'p [Stmt],
        reductions: &[tir::Reduction],
        span: Span,
    ) -> Result<Flow, RuntimeError> {
        let mut before = Vec::with_capacity(reductions.len());
        for reduction in reductions {
            before.push(frame.get_scalar(reduction.local).at(span)?);
        }
        let block_len = tir::reduction_block_len(range.trip_count);
        let mut partials: Vec<Vec<Scalar>> = vec![Vec::new(); reductions.len()];
        let mut trip = 0;
        let mut stopped = false;
        while trip < range.trip_count && !stopped {
            let block_end = trip.saturating_add(block_len).min(range.trip_count);
            for (reduction, initial) in reductions.iter().zip(&before) {
                let identity = reduction.op.identity(initial.ty());
                frame.set(reduction.local, RuntimeValue::Scalar(identity)).at(span)?;
            }
            while trip < block_end {
                range.set_var(frame, trip)?;
                trip += 1;
                match self.exec_block(frame, body)? {
                    Flow::Normal | Flow::Continue => {}
                    // Inference rejects `break` in a prange; treat it as ending the loop.
                    Flow::Break => {
                        stopped = true;
                        break;
                    }
                    Flow::Return(value) => return Ok(Flow::Return(value)),
                }
            }
            for (reduction, block_partials) in reductions.iter().zip(&mut partials) {
                block_partials.push(frame.get_scalar(reduction.local).at(span)?);
            }
        }
        for ((reduction, initial), block_partials) in reductions.iter().zip(before).zip(&partials) {
            let value = match tir::combine_tree(reduction.op, block_partials) {
                Some(tree) => reduction.op.combine(initial, tree),
                None => initial,
            };
            frame.set(reduction.local, RuntimeValue::Scalar(value)).at(span)?;
        }
        Ok(Flow::Normal)
    }

    fn eval(&mut self, frame: &mut Frame<'p>, expr: &'p Expr) -> Result<RuntimeValue, RuntimeError> {
        stacker::maybe_grow(STACK_RED_ZONE_BYTES, STACK_SEGMENT_BYTES, || self.eval_inner(frame, expr))
    }

    /// Dispatches on the node kind. Each construct has its own method, which
    /// keeps this frame small on the recursive path of deep expressions.
    fn eval_inner(&mut self, frame: &mut Frame<'p>, expr: &'p Expr) -> Result<RuntimeValue, RuntimeError> {
        let span = expr.span;
        match &expr.kind {
            ExprKind::Const(value) => Ok(RuntimeValue::Scalar(*value)),
            ExprKind::Local(local) => frame.get(*local).cloned().at(span),
            ExprKind::Cast(operand) => self.eval_cast(frame, operand, expr),
            ExprKind::Unary(op, operand) => self.eval_unary(frame, *op, operand, span),
            ExprKind::Binary(op, left, right) => self.eval_binary(frame, *op, left, right, span),
            ExprKind::Powi(base, exponent) => self.eval_powi(frame, base, *exponent, span),
            ExprKind::Compare { first, rest } => self.eval_compare(frame, first, rest),
            ExprKind::And(left, right) => self.eval_and_or(frame, left, right, true),
            ExprKind::Or(left, right) => self.eval_and_or(frame, left, right, false),
            ExprKind::IfExp { cond, then, orelse } => self.eval_if_exp(frame, cond, then, orelse),
            ExprKind::Index { array, indices, name } => self.eval_index(frame, array, indices, name, span),
            ExprKind::View { array, items, name } => self.eval_view(frame, array, items, name, span),
            ExprKind::Call { func, args } => self.eval_call(frame, *func, args, span),
            ExprKind::Builtin { op, args } => self.eval_builtin(frame, *op, args, expr),
            ExprKind::Tuple(items) => self.eval_tuple(frame, items),
            ExprKind::TupleGet(tuple, index) => self.eval_tuple_get(frame, tuple, *index, span),
            ExprKind::NewArray { shape, fill } => self.eval_new_array(frame, shape, fill, expr),
            ExprKind::Arange { start, stop, step } => self.eval_arange(frame, start, stop, step, expr),
        }
    }

    fn eval_cast(
        &mut self,
        frame: &mut Frame<'p>,
        operand: &'p Expr,
        expr: &'p Expr,
    ) -> Result<RuntimeValue, RuntimeError> {
        let value = self.eval_scalar(frame, operand)?;
        let dtype = expr_dtype(expr).at(expr.span)?;
        Ok(RuntimeValue::Scalar(value.cast(dtype)))
    }

    fn eval_unary(
        &mut self,
        frame: &mut Frame<'p>,
        op: UnaryOp,
        operand: &'p Expr,
        span: Span,
    ) -> Result<RuntimeValue, RuntimeError> {
        let value = self.eval_scalar(frame, operand)?;
        unary(op, value).map(RuntimeValue::Scalar).at(span)
    }

    fn eval_binary(
        &mut self,
        frame: &mut Frame<'p>,
        op: BinaryOp,
        left: &'p Expr,
        right: &'p Expr,
        span: Span,
    ) -> Result<RuntimeValue, RuntimeError> {
        let left = self.eval_scalar(frame, left)?;
        let right = self.eval_scalar(frame, right)?;
        binary(op, left, right).map(RuntimeValue::Scalar).at(span)
    }

    fn eval_powi(
        &mut self,
        frame: &mut Frame<'p>,
        base: &'p Expr,
        exponent: i32,
        span: Span,
    ) -> Result<RuntimeValue, RuntimeError> {
        let base = self.eval_scalar(frame, base)?;
        powi(base, exponent).map(RuntimeValue::Scalar).at(span)
    }

    /// A comparison chain: lazy, each pair compared after casting both sides.
    fn eval_compare(
        &mut self,
        frame: &mut Frame<'p>,
        first: &'p Expr,
        rest: &'p [(tir::CmpOp, ScalarType, Expr)],
    ) -> Result<RuntimeValue, RuntimeError> {
        let mut previous = self.eval_scalar(frame, first)?;
        for (op, dtype, operand) in rest {
            let current = self.eval_scalar(frame, operand)?;
            if !compare(*op, previous.cast(*dtype), current.cast(*dtype)) {
                return Ok(RuntimeValue::Scalar(Scalar::Bool(false)));
            }
            previous = current;
        }
        Ok(RuntimeValue::Scalar(Scalar::Bool(true)))
    }

    /// `left and right` (`is_and`) or `left or right`, with Python's values.
    fn eval_and_or(
        &mut self,
        frame: &mut Frame<'p>,
        left: &'p Expr,
        right: &'p Expr,
        is_and: bool,
    ) -> Result<RuntimeValue, RuntimeError> {
        let left = self.eval_scalar(frame, left)?;
        if left.is_truthy() == is_and {
            self.eval(frame, right)
        } else {
            Ok(RuntimeValue::Scalar(left))
        }
    }

    fn eval_if_exp(
        &mut self,
        frame: &mut Frame<'p>,
        cond: &'p Expr,
        then: &'p Expr,
        orelse: &'p Expr,
    ) -> Result<RuntimeValue, RuntimeError> {
        let branch = if self.eval_bool(frame, cond)? { then } else { orelse };
        self.eval(frame, branch)
    }

    fn eval_index(
        &mut self,
        frame: &mut Frame<'p>,
        array: &'p Expr,
        indices: &'p [Expr],
        name: &str,
        span: Span,
    ) -> Result<RuntimeValue, RuntimeError> {
        let array = self.eval_array(frame, array)?;
        let indices = self.eval_indices(frame, indices)?;
        let position = array.position(&indices, name).at(span)?;
        array.load(position).map(RuntimeValue::Scalar).at(span)
    }

    /// A call: arguments left to right, then the depth check, then the body.
    fn eval_call(
        &mut self,
        frame: &mut Frame<'p>,
        func: FuncId,
        args: &'p [Expr],
        span: Span,
    ) -> Result<RuntimeValue, RuntimeError> {
        let mut values = Vec::with_capacity(args.len());
        for arg in args {
            values.push(self.eval(frame, arg)?);
        }
        if self.depth >= RECURSION_LIMIT {
            return Err(RuntimeError { kind: RuntimeErrorKind::RecursionTooDeep, span });
        }
        self.depth += 1;
        let result = self.call(func, values, span);
        self.depth -= 1;
        result
    }

    fn eval_builtin(
        &mut self,
        frame: &mut Frame<'p>,
        op: Builtin,
        args: &'p [Expr],
        expr: &'p Expr,
    ) -> Result<RuntimeValue, RuntimeError> {
        let mut values = Vec::with_capacity(args.len());
        for arg in args {
            values.push(self.eval(frame, arg)?);
        }
        expr_dtype(expr).and_then(|dtype| builtin(op, &values, dtype)).map(RuntimeValue::Scalar).at(expr.span)
    }

    fn eval_tuple(&mut self, frame: &mut Frame<'p>, items: &'p [Expr]) -> Result<RuntimeValue, RuntimeError> {
        let mut values = Vec::with_capacity(items.len());
        for item in items {
            values.push(self.eval_scalar(frame, item)?);
        }
        Ok(RuntimeValue::Tuple(values))
    }

    fn eval_tuple_get(
        &mut self,
        frame: &mut Frame<'p>,
        tuple: &'p Expr,
        index: u32,
        span: Span,
    ) -> Result<RuntimeValue, RuntimeError> {
        // A tuple local is read in place, not copied (unpacking n names then
        // costs n, not n^2).
        let evaluated;
        let value = match &tuple.kind {
            ExprKind::Local(local) => frame.get(*local).at(span)?,
            _ => {
                evaluated = self.eval(frame, tuple)?;
                &evaluated
            }
        };
        match value {
            RuntimeValue::Tuple(items) => items
                .get(index as usize)
                .map(|item| RuntimeValue::Scalar(*item))
                .ok_or_else(|| internal_error("tuple index out of range", span)),
            _ => Err(internal_error("indexing a value that is not a tuple", span)),
        }
    }

    fn eval_new_array(
        &mut self,
        frame: &mut Frame<'p>,
        shape: &'p [Expr],
        fill: &'p Fill,
        expr: &'p Expr,
    ) -> Result<RuntimeValue, RuntimeError> {
        let extents = self.eval_indices(frame, shape)?;
        let fill = match fill {
            Fill::Empty | Fill::Zeros => None,
            Fill::Ones => Some(Scalar::from_i128_wrapping(1, ScalarType::I64)),
            Fill::Value(value) => Some(self.eval_scalar(frame, value)?),
        };
        let array_type = expr_array_type(expr).at(expr.span)?;
        new_array(array_type, &extents, fill).map(RuntimeValue::Array).at(expr.span)
    }

    fn eval_arange(
        &mut self,
        frame: &mut Frame<'p>,
        start: &'p Expr,
        stop: &'p Expr,
        step: &'p Expr,
        expr: &'p Expr,
    ) -> Result<RuntimeValue, RuntimeError> {
        let start = self.eval_scalar(frame, start)?;
        let stop = self.eval_scalar(frame, stop)?;
        let step = self.eval_scalar(frame, step)?;
        let array_type = expr_array_type(expr).at(expr.span)?;
        arange(array_type.dtype, start, stop, step).map(RuntimeValue::Array).at(expr.span)
    }

    fn eval_view(
        &mut self,
        frame: &mut Frame<'p>,
        array: &'p Expr,
        items: &'p [ViewItem],
        name: &str,
        span: Span,
    ) -> Result<RuntimeValue, RuntimeError> {
        enum Item {
            Index(i64),
            Range(Option<i64>, Option<i64>),
        }
        let array = self.eval_array(frame, array)?;
        let mut evaluated = Vec::with_capacity(items.len());
        for item in items {
            evaluated.push(match item {
                ViewItem::Index(index) => Item::Index(self.eval_i64(frame, index)?),
                ViewItem::Range { lower, upper } => {
                    let lower = lower.as_ref().map(|bound| self.eval_i64(frame, bound)).transpose()?;
                    let upper = upper.as_ref().map(|bound| self.eval_i64(frame, bound)).transpose()?;
                    Item::Range(lower, upper)
                }
            });
        }
        if evaluated.len() > array.shape.len() {
            return Err(internal_error("a view has more items than its array has axes", span));
        }
        // An index error reports the integer indices of the view, in order.
        let indices: Vec<i64> = evaluated
            .iter()
            .filter_map(|item| if let Item::Index(index) = item { Some(*index) } else { None })
            .collect();
        let mut offset = array.offset;
        let mut shape = Axes::zeros(0);
        let mut strides = Axes::zeros(0);
        for (axis, item) in evaluated.iter().enumerate() {
            let (extent, stride) = (array.shape[axis], array.strides[axis]);
            match *item {
                Item::Index(index) => {
                    let resolved = resolve_index(index, extent).ok_or_else(|| RuntimeError {
                        kind: RuntimeErrorKind::IndexOutOfBounds {
                            array: name.to_string(),
                            indices: indices.clone(),
                            axis,
                            index,
                            extent: i64::try_from(extent).unwrap_or(i64::MAX),
                        },
                        span,
                    })?;
                    offset = offset_by(offset, resolved, stride).at(span)?;
                }
                Item::Range(lower, upper) => {
                    let (start, len) = clamp_slice(lower, upper, extent);
                    offset = offset_by(offset, start, stride).at(span)?;
                    shape.push(len);
                    strides.push(stride);
                }
            }
        }
        for axis in evaluated.len()..array.shape.len() {
            shape.push(array.shape[axis]);
            strides.push(array.strides[axis]);
        }
        Ok(RuntimeValue::Array(ArrayView { buffer: array.buffer, offset, shape, strides }))
    }

    fn eval_scalar(&mut self, frame: &mut Frame<'p>, expr: &'p Expr) -> Result<Scalar, RuntimeError> {
        // Leaves need no stack check and no detour through `RuntimeValue`.
        match &expr.kind {
            ExprKind::Const(value) => return Ok(*value),
            ExprKind::Local(local) => {
                if let Ok(RuntimeValue::Scalar(value)) = frame.get(*local) {
                    return Ok(*value);
                }
            }
            _ => {}
        }
        match self.eval(frame, expr)? {
            RuntimeValue::Scalar(value) => Ok(value),
            _ => Err(internal_error("expected a scalar", expr.span)),
        }
    }

    fn eval_i64(&mut self, frame: &mut Frame<'p>, expr: &'p Expr) -> Result<i64, RuntimeError> {
        match self.eval_scalar(frame, expr)? {
            Scalar::I64(value) => Ok(value),
            other => Err(internal_error(format!("expected an i64, found a {}", other.ty()), expr.span)),
        }
    }

    fn eval_indices(&mut self, frame: &mut Frame<'p>, exprs: &'p [Expr]) -> Result<Vec<i64>, RuntimeError> {
        let mut indices = Vec::with_capacity(exprs.len());
        for expr in exprs {
            indices.push(self.eval_i64(frame, expr)?);
        }
        Ok(indices)
    }

    fn eval_bool(&mut self, frame: &mut Frame<'p>, expr: &'p Expr) -> Result<bool, RuntimeError> {
        match self.eval_scalar(frame, expr)? {
            Scalar::Bool(value) => Ok(value),
            other => Err(internal_error(format!("expected a bool, found a {}", other.ty()), expr.span)),
        }
    }

    fn eval_array(&mut self, frame: &mut Frame<'p>, expr: &'p Expr) -> Result<ArrayView, RuntimeError> {
        match self.eval(frame, expr)? {
            RuntimeValue::Array(view) => Ok(view),
            _ => Err(internal_error("expected an array", expr.span)),
        }
    }
}

/// The bounds of a running `for` loop.
struct Range {
    var: LocalId,
    start: i64,
    step: i64,
    trip_count: u64,
    span: Span,
}

impl Range {
    /// Sets the loop variable for trip `trip`: `start + trip * step`, wrapping.
    fn set_var(&self, frame: &mut Frame<'_>, trip: u64) -> Result<(), RuntimeError> {
        let value = self.start.wrapping_add((trip as i64).wrapping_mul(self.step));
        frame.set(self.var, RuntimeValue::Scalar(Scalar::I64(value))).at(self.span)
    }
}

/// The number of values in Python's `range(start, stop, step)`, `step != 0`
/// (at most 2^64 - 1, so it fits a `u64`).
fn range_trip_count(start: i64, stop: i64, step: i64) -> u64 {
    let (start, stop, step) = (start as i128, stop as i128, step as i128);
    let count = if step > 0 && start < stop {
        (stop - start - 1) / step + 1
    } else if step < 0 && start > stop {
        (start - stop - 1) / -step + 1
    } else {
        0
    };
    count as u64
}

fn expr_dtype(expr: &Expr) -> Result<ScalarType, RuntimeErrorKind> {
    expr.ty.scalar().ok_or_else(|| internal(format!("expected a scalar-typed node, found {}", expr.ty)))
}

fn expr_array_type(expr: &Expr) -> Result<ArrayType, RuntimeErrorKind> {
    expr.ty.array().ok_or_else(|| internal(format!("expected an array-typed node, found {}", expr.ty)))
}

fn unary(op: UnaryOp, value: Scalar) -> Result<Scalar, RuntimeErrorKind> {
    Ok(match (op, value) {
        (UnaryOp::Not, value) => Scalar::Bool(!value.is_truthy()),
        (UnaryOp::Neg, Scalar::F64(x)) => Scalar::F64(-x),
        (UnaryOp::Neg, Scalar::F32(x)) => Scalar::F32(-x),
        (UnaryOp::Neg, int) => Scalar::from_i128_wrapping(int.to_i128().wrapping_neg(), int.ty()),
        (UnaryOp::Invert, Scalar::Bool(x)) => Scalar::Bool(!x),
        (UnaryOp::Invert, Scalar::F32(_) | Scalar::F64(_)) => return Err(internal("`~` of a float")),
        (UnaryOp::Invert, int) => Scalar::from_i128_wrapping(!int.to_i128(), int.ty()),
    })
}

/// A binary operator on two scalars of the same dtype (see [`BinaryOp`]).
fn binary(op: BinaryOp, left: Scalar, right: Scalar) -> Result<Scalar, RuntimeErrorKind> {
    match (left, right) {
        (Scalar::F64(x), Scalar::F64(y)) => {
            let result = match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div => x / y,
                BinaryOp::FloorDiv => mathlib::kj_floordiv_f64(x, y),
                BinaryOp::Mod => mathlib::kj_mod_f64(x, y),
                BinaryOp::Pow => mathlib::kj_powf_f64(x, y),
                _ => return Err(internal(format!("{op:?} on floats"))),
            };
            Ok(Scalar::F64(result))
        }
        (Scalar::F32(x), Scalar::F32(y)) => {
            let result = match op {
                BinaryOp::Add => x + y,
                BinaryOp::Sub => x - y,
                BinaryOp::Mul => x * y,
                BinaryOp::Div => x / y,
                BinaryOp::FloorDiv => mathlib::kj_floordiv_f32(x, y),
                BinaryOp::Mod => mathlib::kj_mod_f32(x, y),
                BinaryOp::Pow => mathlib::kj_powf_f32(x, y),
                _ => return Err(internal(format!("{op:?} on floats"))),
            };
            Ok(Scalar::F32(result))
        }
        (x, y) if x.ty() == y.ty() && !x.ty().is_float() => {
            let ty = x.ty();
            integer_binary(op, x.to_i128(), y.to_i128(), ty).map(|value| Scalar::from_i128_wrapping(value, ty))
        }
        (x, y) => Err(internal(format!("{op:?} on a {} and a {}", x.ty(), y.ty()))),
    }
}

/// An integer (or bool) operator computed exactly in i128 on the operands'
/// values; the caller wraps the result into the dtype. Wrapping i128
/// arithmetic keeps the low bits exact, so the wrapped result is the
/// fixed-width one.
fn integer_binary(op: BinaryOp, x: i128, y: i128, ty: ScalarType) -> Result<i128, RuntimeErrorKind> {
    let bits = ty.bits() as i128;
    Ok(match op {
        BinaryOp::Add => x.wrapping_add(y),
        BinaryOp::Sub => x.wrapping_sub(y),
        BinaryOp::Mul => x.wrapping_mul(y),
        BinaryOp::Div => return Err(internal("`/` on integers")),
        BinaryOp::FloorDiv | BinaryOp::Mod if y == 0 => return Err(RuntimeErrorKind::DivisionByZero),
        // Operands are at most 64 bits wide, so neither operation overflows i128.
        BinaryOp::FloorDiv => floor_div(x, y),
        BinaryOp::Mod => {
            let remainder = x % y;
            if remainder != 0 && ((remainder < 0) != (y < 0)) {
                remainder + y
            } else {
                remainder
            }
        }
        BinaryOp::Pow => {
            if y < 0 {
                return Err(RuntimeErrorKind::NegativePower { exponent: y as i64 });
            }
            let (mut base, mut exponent, mut result) = (x, y, 1i128);
            while exponent > 0 {
                if exponent & 1 == 1 {
                    result = result.wrapping_mul(base);
                }
                base = base.wrapping_mul(base);
                exponent >>= 1;
            }
            result
        }
        BinaryOp::BitAnd => x & y,
        BinaryOp::BitOr => x | y,
        BinaryOp::BitXor => x ^ y,
        BinaryOp::LShift => {
            if (0..bits).contains(&y) {
                x << y
            } else {
                0
            }
        }
        BinaryOp::RShift => {
            if (0..bits).contains(&y) {
                x >> y
            } else if x < 0 {
                -1
            } else {
                0
            }
        }
    })
}

/// Python's `x // y` for `y != 0` (rounds toward negative infinity).
fn floor_div(x: i128, y: i128) -> i128 {
    let quotient = x / y;
    if x % y != 0 && ((x < 0) != (y < 0)) {
        quotient - 1
    } else {
        quotient
    }
}

/// `base ** exponent` by exact left-to-right repeated multiplication.
fn powi(base: Scalar, exponent: i32) -> Result<Scalar, RuntimeErrorKind> {
    macro_rules! repeated {
        ($x:expr, $one:expr) => {{
            let x = $x;
            let mut product = $one;
            for trip in 0..exponent.unsigned_abs() {
                product = if trip == 0 { x } else { product * x };
            }
            if exponent < 0 {
                $one / product
            } else {
                product
            }
        }};
    }
    match base {
        Scalar::F64(x) => Ok(Scalar::F64(repeated!(x, 1.0f64))),
        Scalar::F32(x) => Ok(Scalar::F32(repeated!(x, 1.0f32))),
        other => Err(internal(format!("`**` with a constant exponent on a {}", other.ty()))),
    }
}

/// Compares two scalars of one dtype: IEEE for floats, exact for ints.
fn compare(op: tir::CmpOp, left: Scalar, right: Scalar) -> bool {
    use tir::CmpOp;
    let ordering = if left.ty().is_float() {
        left.to_f64().partial_cmp(&right.to_f64())
    } else {
        Some(left.to_i128().cmp(&right.to_i128()))
    };
    match ordering {
        // NaN is unordered: only `!=` holds.
        None => op == CmpOp::Ne,
        Some(ordering) => match op {
            CmpOp::Lt => ordering.is_lt(),
            CmpOp::Le => ordering.is_le(),
            CmpOp::Gt => ordering.is_gt(),
            CmpOp::Ge => ordering.is_ge(),
            CmpOp::Eq => ordering.is_eq(),
            CmpOp::Ne => ordering.is_ne(),
        },
    }
}

/// A builtin applied to evaluated operands; `dtype` is the node's type.
fn builtin(op: Builtin, args: &[RuntimeValue], dtype: ScalarType) -> Result<Scalar, RuntimeErrorKind> {
    let scalar_arg = |index: usize| match args.get(index) {
        Some(RuntimeValue::Scalar(value)) => Ok(*value),
        _ => Err(internal(format!("{op:?} expects scalar operands"))),
    };
    let array_arg = || match args {
        [RuntimeValue::Array(view)] => Ok(view),
        _ => Err(internal(format!("{op:?} expects one array operand"))),
    };
    match op {
        Builtin::Shape(axis) => {
            let extent =
                array_arg()?.shape.get(axis as usize).copied().ok_or_else(|| internal("shape axis out of range"))?;
            Ok(Scalar::I64(i64::try_from(extent).unwrap_or(i64::MAX)))
        }
        Builtin::Size => Ok(Scalar::I64(i64::try_from(array_arg()?.len()).unwrap_or(i64::MAX))),
        Builtin::Min | Builtin::Max => {
            let replaces = if op == Builtin::Min { tir::CmpOp::Lt } else { tir::CmpOp::Gt };
            let mut acc = scalar_arg(0)?;
            for index in 1..args.len() {
                let value = scalar_arg(index)?;
                if value.ty() != acc.ty() {
                    return Err(internal("min/max operands of different types"));
                }
                if compare(replaces, value, acc) {
                    acc = value;
                }
            }
            Ok(acc)
        }
        Builtin::IsNan => Ok(Scalar::Bool(scalar_arg(0)?.to_f64().is_nan())),
        Builtin::IsInf => Ok(Scalar::Bool(scalar_arg(0)?.to_f64().is_infinite())),
        Builtin::IsFinite => Ok(Scalar::Bool(scalar_arg(0)?.to_f64().is_finite())),
        Builtin::Abs if !scalar_arg(0)?.ty().is_float() => {
            let value = scalar_arg(0)?;
            Ok(Scalar::from_i128_wrapping(value.to_i128().wrapping_abs(), value.ty()))
        }
        Builtin::Round if !scalar_arg(0)?.ty().is_float() => Ok(scalar_arg(0)?.cast(dtype)),
        _ => {
            let first = scalar_arg(0)?;
            let symbol = mathlib::builtin_symbol(op, first.ty())
                .ok_or_else(|| internal(format!("{op:?} on a {}", first.ty())))?;
            let mismatch = || internal(format!("{op:?}: operands do not match {}", symbol.name));
            let second = || scalar_arg(1);
            let result = match (symbol.function, first) {
                (MathFunction::UnaryF64(function), Scalar::F64(x)) => Scalar::F64(function(x)),
                (MathFunction::UnaryF32(function), Scalar::F32(x)) => Scalar::F32(function(x)),
                (MathFunction::BinaryF64(function), Scalar::F64(x)) => match second()? {
                    Scalar::F64(y) => Scalar::F64(function(x, y)),
                    _ => return Err(mismatch()),
                },
                (MathFunction::BinaryF32(function), Scalar::F32(x)) => match second()? {
                    Scalar::F32(y) => Scalar::F32(function(x, y)),
                    _ => return Err(mismatch()),
                },
                (MathFunction::RoundF64(function), Scalar::F64(x)) => Scalar::I64(function(x)).cast(dtype),
                (MathFunction::RoundF32(function), Scalar::F32(x)) => Scalar::I64(function(x)).cast(dtype),
                _ => return Err(mismatch()),
            };
            Ok(result)
        }
    }
}

/// Allocates a C-contiguous array, checking the size first.
fn new_array(array_type: ArrayType, extents: &[i64], fill: Option<Scalar>) -> Result<ArrayView, RuntimeErrorKind> {
    if extents.len() != array_type.ndim as usize {
        return Err(internal("a new array's shape has the wrong number of extents"));
    }
    let bad_size = || RuntimeErrorKind::BadArraySize { shape: extents.to_vec() };
    if !array_size_allowed(extents, array_type.dtype) {
        return Err(bad_size());
    }
    // Every extent is non-negative and the span fits in MAX_ARRAY_BYTES.
    let extents: Vec<usize> = extents.iter().map(|&extent| extent as usize).collect();
    let shape = Axes::from_slice(&extents).ok_or_else(|| internal("a new array has too many dimensions"))?;
    let mut buffer = Buffer::zeroed(array_type.dtype, shape.iter().product()).ok_or_else(bad_size)?;
    if let Some(value) = fill {
        buffer.fill(value.cast(array_type.dtype));
    }
    Ok(ArrayView::contiguous(buffer, shape))
}

/// `np.arange(start, stop, step)` as a 1-D array of `dtype`; the bounds have
/// that dtype.
fn arange(dtype: ScalarType, start: Scalar, stop: Scalar, step: Scalar) -> Result<ArrayView, RuntimeErrorKind> {
    if start.ty() != dtype || stop.ty() != dtype || step.ty() != dtype {
        return Err(internal("arange bounds of another dtype than the array"));
    }
    let len = arange_len(start, stop, step)?;
    let view = new_array(ArrayType { dtype, ndim: 1 }, &[len], None)?;
    for k in 0..len {
        view.store(k as usize, arange_element(start, step, k))?;
    }
    Ok(view)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tir::{CmpOp, Function, Local, Parallel, Program, ReduceOp, Reduction};
    use crate::value::MAX_ARRAY_BYTES;
    use ndarray::{Axis, ShapeBuilder};
    use ScalarType::{Bool, F32, F64, I16, I32, I64, I8, U16, U32, U64, U8};

    // ---- Builders for hand-written typed programs. ----

    fn span(start: usize) -> Span {
        Span::new(start, start + 1)
    }

    fn scalar_type(dtype: ScalarType) -> Type {
        Type::Scalar(dtype)
    }

    fn array_type(dtype: ScalarType, ndim: u8) -> Type {
        Type::Array(ArrayType { dtype, ndim })
    }

    fn node(kind: ExprKind, ty: Type) -> Expr {
        Expr { kind, ty, span: Span::default() }
    }

    fn at(mut expr: Expr, start: usize) -> Expr {
        expr.span = span(start);
        expr
    }

    fn konst(value: Scalar) -> Expr {
        node(ExprKind::Const(value), scalar_type(value.ty()))
    }

    fn int(value: i64) -> Expr {
        konst(Scalar::I64(value))
    }

    fn float(value: f64) -> Expr {
        konst(Scalar::F64(value))
    }

    fn binary(op: BinaryOp, left: Expr, right: Expr) -> Expr {
        let ty = left.ty.clone();
        node(ExprKind::Binary(op, Box::new(left), Box::new(right)), ty)
    }

    fn cast(expr: Expr, dtype: ScalarType) -> Expr {
        node(ExprKind::Cast(Box::new(expr)), scalar_type(dtype))
    }

    fn compare(first: Expr, rest: Vec<(CmpOp, ScalarType, Expr)>) -> Expr {
        node(ExprKind::Compare { first: Box::new(first), rest }, scalar_type(Bool))
    }

    fn builtin(op: Builtin, args: Vec<Expr>, dtype: ScalarType) -> Expr {
        node(ExprKind::Builtin { op, args }, scalar_type(dtype))
    }

    fn dtype_of(array: &Expr) -> (ScalarType, u8) {
        let array_type = array.ty.array().expect("an array expression");
        (array_type.dtype, array_type.ndim)
    }

    fn index(array: Expr, indices: Vec<Expr>, name: &str) -> Expr {
        let (dtype, _) = dtype_of(&array);
        node(ExprKind::Index { array: Box::new(array), indices, name: name.to_string() }, scalar_type(dtype))
    }

    fn whole() -> ViewItem {
        ViewItem::Range { lower: None, upper: None }
    }

    fn slice(lower: Option<i64>, upper: Option<i64>) -> ViewItem {
        ViewItem::Range { lower: lower.map(int), upper: upper.map(int) }
    }

    fn view(array: Expr, items: Vec<ViewItem>, name: &str) -> Expr {
        let (dtype, ndim) = dtype_of(&array);
        let dropped = items.iter().filter(|item| matches!(item, ViewItem::Index(_))).count() as u8;
        node(
            ExprKind::View { array: Box::new(array), items, name: name.to_string() },
            array_type(dtype, ndim - dropped),
        )
    }

    fn new_array(dtype: ScalarType, shape: Vec<Expr>, fill: Fill) -> Expr {
        let ndim = shape.len() as u8;
        node(ExprKind::NewArray { shape, fill }, array_type(dtype, ndim))
    }

    fn stmt(kind: StmtKind) -> Stmt {
        Stmt { kind, span: Span::default() }
    }

    fn assign(local: LocalId, value: Expr) -> Stmt {
        stmt(StmtKind::Assign { local, value })
    }

    fn store(array: Expr, indices: Vec<Expr>, value: Expr, name: &str) -> Stmt {
        stmt(StmtKind::Store { array, indices, value, array_name: name.to_string() })
    }

    fn ret(value: Expr) -> Stmt {
        stmt(StmtKind::Return(Some(value)))
    }

    fn if_then(cond: Expr, then: Vec<Stmt>) -> Stmt {
        stmt(StmtKind::If { cond, then, orelse: vec![] })
    }

    fn for_range(var: LocalId, bounds: (Expr, Expr, Expr), body: Vec<Stmt>) -> Stmt {
        let (start, stop, step) = bounds;
        stmt(StmtKind::ForRange { var, start, stop, step, body, range_span: span(7), parallel: None })
    }

    fn prange(var: LocalId, stop: Expr, body: Vec<Stmt>, reductions: &[(LocalId, ReduceOp)]) -> Stmt {
        let reductions = reductions.iter().map(|&(local, op)| Reduction { local, op }).collect();
        stmt(StmtKind::ForRange {
            var,
            start: int(0),
            stop,
            step: int(1),
            body,
            range_span: span(7),
            parallel: Some(Parallel { reductions, nested: false }),
        })
    }

    /// Collects one function's locals.
    #[derive(Default)]
    struct Builder {
        locals: Vec<Local>,
        params: Vec<LocalId>,
    }

    impl Builder {
        /// Declares a local; returns its id and an expression reading it.
        fn local(&mut self, name: &str, ty: Type) -> (LocalId, Expr) {
            let id = LocalId(self.locals.len() as u32);
            self.locals.push(Local { name: name.to_string(), ty: ty.clone(), span: Span::default() });
            (id, node(ExprKind::Local(id), ty))
        }

        fn param(&mut self, name: &str, ty: Type) -> (LocalId, Expr) {
            let (id, read) = self.local(name, ty);
            self.params.push(id);
            (id, read)
        }

        fn finish(self, name: &str, ret: Type, body: Vec<Stmt>) -> Function {
            Function {
                name: name.to_string(),
                params: self.params,
                locals: self.locals,
                ret,
                body,
                span: Span::default(),
            }
        }
    }

    fn program(functions: Vec<Function>) -> Program {
        Program { functions, entry: FuncId(0) }
    }

    /// Runs a kernel without parameters that returns `expr`.
    fn eval(expr: Expr) -> Result<Value, RuntimeErrorKind> {
        let ty = expr.ty.clone();
        let function = Builder::default().finish("k", ty, vec![ret(expr)]);
        interpret(&program(vec![function]), &mut []).map_err(|error| error.kind)
    }

    fn eval_scalar(expr: Expr) -> Scalar {
        match eval(expr) {
            Ok(Value::Scalar(value)) => value,
            other => panic!("expected a scalar, got {other:?}"),
        }
    }

    fn host(values: Vec<f64>, shape: &[usize]) -> ArrayD<f64> {
        ArrayD::from_shape_vec(IxDyn(shape), values).unwrap()
    }

    fn int_max(dtype: ScalarType) -> Scalar {
        Scalar::from_i128_wrapping(dtype.int_range().1, dtype)
    }

    fn int_min(dtype: ScalarType) -> Scalar {
        Scalar::from_i128_wrapping(dtype.int_range().0, dtype)
    }

    fn of(dtype: ScalarType, value: i128) -> Expr {
        konst(Scalar::from_i128_wrapping(value, dtype))
    }

    // ---- Scalar semantics. ----

    #[test]
    fn integer_arithmetic_wraps_in_every_width() {
        for dtype in [I8, I16, I32, I64, U8, U16, U32, U64] {
            let (max, min) = (int_max(dtype), int_min(dtype));
            assert_eq!(eval_scalar(binary(BinaryOp::Add, konst(max), of(dtype, 1))), min, "{dtype} max + 1");
            assert_eq!(eval_scalar(binary(BinaryOp::Sub, konst(min), of(dtype, 1))), max, "{dtype} min - 1");
            let doubled = Scalar::from_i128_wrapping(max.to_i128() * 2, dtype);
            assert_eq!(eval_scalar(binary(BinaryOp::Mul, konst(max), of(dtype, 2))), doubled, "{dtype} max * 2");
            let negated = node(ExprKind::Unary(UnaryOp::Neg, Box::new(konst(min))), scalar_type(dtype));
            let expected_negation = Scalar::from_i128_wrapping(-min.to_i128(), dtype);
            assert_eq!(eval_scalar(negated), expected_negation, "-({dtype} min)");
            assert_eq!(eval_scalar(builtin(Builtin::Abs, vec![konst(min)], dtype)), min, "abs({dtype} min)");
        }
        assert_eq!(
            eval_scalar(binary(BinaryOp::Mul, of(U64, u64::MAX as i128), of(U64, u64::MAX as i128))),
            Scalar::U64(1)
        );
        let invert = node(ExprKind::Unary(UnaryOp::Invert, Box::new(of(U8, 5))), scalar_type(U8));
        assert_eq!(eval_scalar(invert), Scalar::U8(250));
        let not = node(ExprKind::Unary(UnaryOp::Not, Box::new(int(0))), scalar_type(Bool));
        assert_eq!(eval_scalar(not), Scalar::Bool(true));
    }

    #[test]
    fn integer_floor_division_and_modulo_follow_python() {
        // (x, y, x // y, x % y) as Python computes them.
        let cases = [
            (-7, 2, -4, 1),
            (7, -2, -4, -1),
            (-7, -2, 3, -1),
            (7, 2, 3, 1),
            (-7, 3, -3, 2),
            (6, -3, -2, 0),
            (0, -5, 0, 0),
        ];
        for (x, y, quotient, remainder) in cases {
            assert_eq!(eval_scalar(binary(BinaryOp::FloorDiv, int(x), int(y))), Scalar::I64(quotient), "{x} // {y}");
            assert_eq!(eval_scalar(binary(BinaryOp::Mod, int(x), int(y))), Scalar::I64(remainder), "{x} % {y}");
        }
        assert_eq!(eval_scalar(binary(BinaryOp::FloorDiv, int(i64::MIN), int(-1))), Scalar::I64(i64::MIN));
        assert_eq!(eval_scalar(binary(BinaryOp::Mod, int(i64::MIN), int(-1))), Scalar::I64(0));
        assert_eq!(eval_scalar(binary(BinaryOp::FloorDiv, of(I8, -128), of(I8, -1))), Scalar::I8(-128));
        assert_eq!(eval_scalar(binary(BinaryOp::FloorDiv, of(U8, 200), of(U8, 7))), Scalar::U8(28));
        assert_eq!(eval_scalar(binary(BinaryOp::Mod, of(U64, u64::MAX as i128), of(U64, 10))), Scalar::U64(5));
        for op in [BinaryOp::FloorDiv, BinaryOp::Mod] {
            let function =
                Builder::default().finish("k", scalar_type(I32), vec![ret(at(binary(op, of(I32, 1), of(I32, 0)), 12))]);
            let error = interpret(&program(vec![function]), &mut []).unwrap_err();
            assert_eq!(error, RuntimeError { kind: RuntimeErrorKind::DivisionByZero, span: span(12) });
        }
    }

    #[test]
    fn float_floor_division_and_modulo_follow_python() {
        let check = |x: f64, y: f64, quotient: f64, remainder: f64| {
            let floordiv = eval_scalar(binary(BinaryOp::FloorDiv, float(x), float(y))).as_f64().unwrap();
            let modulo = eval_scalar(binary(BinaryOp::Mod, float(x), float(y))).as_f64().unwrap();
            assert_eq!(floordiv.to_bits(), quotient.to_bits(), "{x} // {y}");
            assert_eq!(modulo.to_bits(), remainder.to_bits(), "{x} % {y}");
        };
        check(-7.5, 2.0, -4.0, 0.5);
        check(5.0, -3.0, -2.0, -1.0);
        check(-0.0, 5.0, -0.0, 0.0);
        check(0.0, -5.0, -0.0, -0.0);
        check(1e308, 1e-308, f64::INFINITY, 3.498445546245627e-309);
        check(-5.0, f64::INFINITY, -1.0, f64::INFINITY);
        check(0.1, 0.01, 10.0, 3.469446951953614e-18);
        assert_eq!(eval_scalar(binary(BinaryOp::FloorDiv, float(3.0), float(0.0))), Scalar::F64(f64::INFINITY));
        assert!(eval_scalar(binary(BinaryOp::Mod, float(3.0), float(0.0))).as_f64().unwrap().is_nan());
        let f32_mod = binary(BinaryOp::Mod, konst(Scalar::F32(-7.5)), konst(Scalar::F32(2.0)));
        assert_eq!(eval_scalar(f32_mod), Scalar::F32(0.5));
    }

    #[test]
    fn shifts_saturate_out_of_range_amounts() {
        let shift = |op, dtype, x: i128, amount: i128| eval_scalar(binary(op, of(dtype, x), of(dtype, amount)));
        assert_eq!(shift(BinaryOp::LShift, I64, 1, 63), Scalar::I64(i64::MIN));
        assert_eq!(shift(BinaryOp::LShift, I64, 1, 64), Scalar::I64(0));
        assert_eq!(shift(BinaryOp::LShift, I64, 1, -1), Scalar::I64(0));
        assert_eq!(shift(BinaryOp::RShift, I64, -8, 1), Scalar::I64(-4));
        assert_eq!(shift(BinaryOp::RShift, I64, -8, 64), Scalar::I64(-1));
        assert_eq!(shift(BinaryOp::RShift, I64, -8, -3), Scalar::I64(-1));
        assert_eq!(shift(BinaryOp::RShift, I64, 8, 100), Scalar::I64(0));
        assert_eq!(shift(BinaryOp::LShift, U8, 255, 1), Scalar::U8(254));
        assert_eq!(shift(BinaryOp::LShift, U8, 1, 8), Scalar::U8(0));
        assert_eq!(shift(BinaryOp::RShift, I8, -128, 7), Scalar::I8(-1));
        assert_eq!(shift(BinaryOp::RShift, U64, u64::MAX as i128, 63), Scalar::U64(1));
        assert_eq!(shift(BinaryOp::LShift, I16, 3, 14), Scalar::I16(-16384));
    }

    #[test]
    fn integer_powers_wrap_and_reject_negative_exponents() {
        let power = |dtype, x: i128, y: i128| eval(binary(BinaryOp::Pow, of(dtype, x), of(dtype, y)));
        assert_eq!(power(I64, 3, 4), Ok(Value::Scalar(Scalar::I64(81))));
        assert_eq!(power(I64, -3, 3), Ok(Value::Scalar(Scalar::I64(-27))));
        assert_eq!(power(I64, 0, 0), Ok(Value::Scalar(Scalar::I64(1))));
        assert_eq!(power(I64, 2, 63), Ok(Value::Scalar(Scalar::I64(i64::MIN))));
        assert_eq!(power(I64, 2, 64), Ok(Value::Scalar(Scalar::I64(0))));
        assert_eq!(power(I64, 3, 41), Ok(Value::Scalar(Scalar::I64(3i64.wrapping_pow(41)))));
        assert_eq!(power(U8, 3, 5), Ok(Value::Scalar(Scalar::U8(243))));
        assert_eq!(power(I8, 3, 5), Ok(Value::Scalar(Scalar::I8(-13))));
        assert_eq!(power(I64, 2, -1), Err(RuntimeErrorKind::NegativePower { exponent: -1 }));
        let float_power = eval_scalar(binary(BinaryOp::Pow, float(2.0), float(0.5)));
        assert_eq!(float_power, Scalar::F64(2f64.powf(0.5)));
    }

    #[test]
    fn powi_is_left_to_right_repeated_multiplication() {
        let powi = |base: Scalar, exponent: i32| {
            let ty = scalar_type(base.ty());
            eval_scalar(node(ExprKind::Powi(Box::new(konst(base)), exponent), ty))
        };
        let x = 1.1f64;
        assert_eq!(powi(Scalar::F64(x), 3), Scalar::F64((x * x) * x));
        assert_eq!(powi(Scalar::F64(x), 5), Scalar::F64((((x * x) * x) * x) * x));
        assert_eq!(powi(Scalar::F64(x), -2), Scalar::F64(1.0 / (x * x)));
        assert_eq!(powi(Scalar::F64(f64::NAN), 0), Scalar::F64(1.0));
        assert_eq!(powi(Scalar::F64(x), 1), Scalar::F64(x));
        let y = 1.1f32;
        assert_eq!(powi(Scalar::F32(y), 3), Scalar::F32((y * y) * y));
    }

    #[test]
    fn compare_chains_are_lazy_and_cast_per_pair() {
        let divide_by_zero = || binary(BinaryOp::FloorDiv, int(1), int(0));
        let stops = compare(int(1), vec![(CmpOp::Lt, I64, int(0)), (CmpOp::Lt, I64, divide_by_zero())]);
        assert_eq!(eval(stops), Ok(Value::Scalar(Scalar::Bool(false))));
        let continues = compare(int(0), vec![(CmpOp::Lt, I64, int(1)), (CmpOp::Lt, I64, divide_by_zero())]);
        assert_eq!(eval(continues), Err(RuntimeErrorKind::DivisionByZero));
        let chain = compare(int(0), vec![(CmpOp::Le, I64, int(0)), (CmpOp::Lt, I64, int(5)), (CmpOp::Ne, I64, int(4))]);
        assert_eq!(eval_scalar(chain), Scalar::Bool(true));
        let big = (1i64 << 53) + 1;
        let as_float = compare(int(big), vec![(CmpOp::Eq, F64, float((1i64 << 53) as f64))]);
        assert_eq!(eval_scalar(as_float), Scalar::Bool(true));
        let as_int = compare(int(big), vec![(CmpOp::Eq, I64, float((1i64 << 53) as f64))]);
        assert_eq!(eval_scalar(as_int), Scalar::Bool(false));
        let nan_ne = compare(float(f64::NAN), vec![(CmpOp::Ne, F64, float(f64::NAN))]);
        assert_eq!(eval_scalar(nan_ne), Scalar::Bool(true));
        let nan_ge = compare(float(f64::NAN), vec![(CmpOp::Ge, F64, float(1.0))]);
        assert_eq!(eval_scalar(nan_ge), Scalar::Bool(false));
        let unsigned = compare(of(U64, u64::MAX as i128), vec![(CmpOp::Gt, U64, of(U64, 1))]);
        assert_eq!(eval_scalar(unsigned), Scalar::Bool(true));
    }

    #[test]
    fn and_or_return_python_values_lazily() {
        let and = |left: Expr, right: Expr| {
            let ty = left.ty.clone();
            node(ExprKind::And(Box::new(left), Box::new(right)), ty)
        };
        let or = |left: Expr, right: Expr| {
            let ty = left.ty.clone();
            node(ExprKind::Or(Box::new(left), Box::new(right)), ty)
        };
        let divide_by_zero = || binary(BinaryOp::FloorDiv, int(1), int(0));
        assert_eq!(eval_scalar(and(int(0), divide_by_zero())), Scalar::I64(0));
        assert_eq!(eval_scalar(and(int(3), int(5))), Scalar::I64(5));
        assert_eq!(eval_scalar(or(int(0), int(7))), Scalar::I64(7));
        assert_eq!(eval_scalar(or(int(2), divide_by_zero())), Scalar::I64(2));
        assert_eq!(eval_scalar(or(int(0), int(0))), Scalar::I64(0));
        assert_eq!(eval_scalar(and(float(f64::NAN), float(1.5))), Scalar::F64(1.5));
        assert_eq!(eval(and(int(1), divide_by_zero())), Err(RuntimeErrorKind::DivisionByZero));
    }

    #[test]
    fn builtins_follow_python() {
        let min = |args: Vec<Expr>| eval_scalar(builtin(Builtin::Min, args, F64));
        assert!(min(vec![float(f64::NAN), float(1.0)]).as_f64().unwrap().is_nan());
        assert_eq!(min(vec![float(1.0), float(f64::NAN), float(-2.0)]), Scalar::F64(-2.0));
        assert_eq!(eval_scalar(builtin(Builtin::Max, vec![int(2), int(7), int(3)], I64)), Scalar::I64(7));
        let round = |x: f64| eval_scalar(builtin(Builtin::Round, vec![float(x)], I64));
        assert_eq!(round(2.5), Scalar::I64(2));
        assert_eq!(round(-3.5), Scalar::I64(-4));
        assert_eq!(round(f64::NAN), Scalar::I64(0));
        assert_eq!(round(-1e300), Scalar::I64(i64::MIN));
        assert_eq!(eval_scalar(builtin(Builtin::Round, vec![int(-7)], I64)), Scalar::I64(-7));
        assert_eq!(eval_scalar(builtin(Builtin::Sqrt, vec![konst(Scalar::F32(2.0))], F32)), Scalar::F32(2f32.sqrt()));
        assert_eq!(eval_scalar(builtin(Builtin::Sin, vec![float(0.5)], F64)), Scalar::F64(0.5f64.sin()));
        assert_eq!(eval_scalar(builtin(Builtin::Abs, vec![float(-0.0)], F64)).as_f64().unwrap().to_bits(), 0);
        assert_eq!(
            eval_scalar(builtin(Builtin::Atan2, vec![float(1.0), float(-1.0)], F64)),
            Scalar::F64(1f64.atan2(-1.0))
        );
        assert_eq!(eval_scalar(builtin(Builtin::Gamma, vec![float(5.0)], F64)), Scalar::F64(24.0));
        assert_eq!(eval_scalar(builtin(Builtin::IsNan, vec![konst(Scalar::F32(f32::NAN))], Bool)), Scalar::Bool(true));
        assert_eq!(eval_scalar(builtin(Builtin::IsFinite, vec![float(f64::INFINITY)], Bool)), Scalar::Bool(false));
        let cast_to_u8 = cast(float(-1.0), U8);
        assert_eq!(eval_scalar(cast_to_u8), Scalar::U8(255));
    }

    // ---- Arrays. ----

    #[test]
    fn index_errors_name_the_array_axis_index_and_extent() {
        let run = |indices: Vec<Expr>| {
            let mut builder = Builder::default();
            let (_, x) = builder.param("x", array_type(F64, 2));
            let function = builder.finish("k", scalar_type(F64), vec![ret(at(index(x, indices, "x"), 40))]);
            let mut args = [Value::Array(ArrayData::F64(ArrayD::zeros(IxDyn(&[10, 5]))))];
            interpret(&program(vec![function]), &mut args)
        };
        let error = run(vec![int(12), int(3)]).unwrap_err();
        assert_eq!(error.span, span(40));
        assert_eq!(error.kind.to_string(), "x[12, 3]: index 12 out of bounds for axis 0 with size 10");
        let error = run(vec![int(-1), int(-6)]).unwrap_err();
        assert_eq!(error.kind.to_string(), "x[-1, -6]: index -6 out of bounds for axis 1 with size 5");
        // Axis 0 is checked first.
        let error = run(vec![int(-11), int(9)]).unwrap_err();
        assert_eq!(error.kind.to_string(), "x[-11, 9]: index -11 out of bounds for axis 0 with size 10");
        // Every index is evaluated before any is checked.
        let error = run(vec![int(12), binary(BinaryOp::Mod, int(1), int(0))]).unwrap_err();
        assert_eq!(error.kind, RuntimeErrorKind::DivisionByZero);
        assert_eq!(run(vec![int(-10), int(-1)]), Ok(Value::Scalar(Scalar::F64(0.0))));
    }

    #[test]
    fn negative_indices_count_from_the_end_and_stores_check_after_the_value() {
        let mut builder = Builder::default();
        let (_, x) = builder.param("x", array_type(I64, 1));
        let body = vec![
            store(x.clone(), vec![int(-1)], binary(BinaryOp::Add, index(x.clone(), vec![int(-2)], "x"), int(100)), "x"),
            store(x.clone(), vec![int(99)], binary(BinaryOp::FloorDiv, int(1), int(0)), "x"),
        ];
        let function = builder.finish("k", Type::None, body);
        let mut args = [Value::Array(ArrayData::I64(ArrayD::from_shape_vec(IxDyn(&[4]), vec![1, 2, 3, 4]).unwrap()))];
        let error = interpret(&program(vec![function]), &mut args).unwrap_err();
        assert_eq!(error.kind, RuntimeErrorKind::DivisionByZero);
        // The first store happened and is visible to the host despite the error.
        assert_eq!(
            args[0],
            Value::Array(ArrayData::I64(ArrayD::from_shape_vec(IxDyn(&[4]), vec![1, 2, 3, 103]).unwrap()))
        );
    }

    #[test]
    fn views_alias_the_host_array() {
        let mut builder = Builder::default();
        let (_, a) = builder.param("a", array_type(F64, 2));
        let (row_id, row) = builder.local("row", array_type(F64, 1));
        let (column_id, column) = builder.local("column", array_type(F64, 1));
        let (inner_id, inner) = builder.local("inner", array_type(F64, 1));
        let body = vec![
            assign(row_id, view(a.clone(), vec![ViewItem::Index(int(1))], "a")),
            store(row.clone(), vec![int(2)], float(100.0), "row"),
            assign(column_id, view(a.clone(), vec![whole(), ViewItem::Index(int(-1))], "a")),
            store(column.clone(), vec![int(0)], float(-1.0), "column"),
            // A view of a view: row 2, columns 1..3, then its element 1.
            assign(
                inner_id,
                view(
                    view(a.clone(), vec![ViewItem::Index(int(2)), slice(Some(1), None)], "a"),
                    vec![slice(Some(1), Some(3))],
                    "b",
                ),
            ),
            store(inner.clone(), vec![int(-1)], float(55.0), "inner"),
            ret(view(a.clone(), vec![slice(Some(-2), Some(100)), slice(None, Some(-2))], "a")),
        ];
        let function = builder.finish("k", array_type(F64, 2), body);
        let mut args = [Value::Array(ArrayData::F64(host((0..12).map(f64::from).collect(), &[3, 4])))];
        let result = interpret(&program(vec![function]), &mut args).unwrap();
        let expected = host(vec![0.0, 1.0, 2.0, -1.0, 4.0, 5.0, 100.0, 7.0, 8.0, 9.0, 10.0, 55.0], &[3, 4]);
        assert_eq!(args[0], Value::Array(ArrayData::F64(expected)));
        // The returned view `a[-2:100, :-2]` comes back as an owned copy.
        assert_eq!(result, Value::Array(ArrayData::F64(host(vec![4.0, 5.0, 8.0, 9.0], &[2, 2]))));
    }

    #[test]
    fn slices_clamp_like_python() {
        let run = |lower: Option<i64>, upper: Option<i64>| {
            let mut builder = Builder::default();
            let (_, b) = builder.param("b", array_type(I64, 1));
            let function = builder.finish("k", array_type(I64, 1), vec![ret(view(b, vec![slice(lower, upper)], "b"))]);
            let mut args =
                [Value::Array(ArrayData::I64(ArrayD::from_shape_vec(IxDyn(&[10]), (0..10).collect()).unwrap()))];
            match interpret(&program(vec![function]), &mut args).unwrap() {
                Value::Array(ArrayData::I64(array)) => array.iter().copied().collect::<Vec<i64>>(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(run(Some(-3), Some(100)), vec![7, 8, 9]);
        assert_eq!(run(Some(5), Some(2)), Vec::<i64>::new());
        assert_eq!(run(Some(-100), Some(2)), vec![0, 1]);
        assert_eq!(run(None, Some(-8)), vec![0, 1]);
        assert_eq!(run(Some(10), None), Vec::<i64>::new());
        assert_eq!(run(Some(i64::MIN), Some(i64::MAX)).len(), 10);
    }

    #[test]
    fn view_index_errors_use_the_source_axis() {
        let run = |items: Vec<ViewItem>| {
            let mut builder = Builder::default();
            let (_, a) = builder.param("a", array_type(F64, 2));
            let function = builder.finish("k", array_type(F64, 1), vec![ret(view(a, items, "a"))]);
            let mut args = [Value::Array(ArrayData::F64(ArrayD::zeros(IxDyn(&[3, 4]))))];
            interpret(&program(vec![function]), &mut args).unwrap_err().kind.to_string()
        };
        assert_eq!(run(vec![ViewItem::Index(int(5))]), "a[5]: index 5 out of bounds for axis 0 with size 3");
        assert_eq!(
            run(vec![whole(), ViewItem::Index(int(-5))]),
            "a[-5]: index -5 out of bounds for axis 1 with size 4"
        );
    }

    /// A kernel that adds `100 * i + j` to every element of a 2-D f64 array
    /// and returns the sum of the original elements, read in logical order.
    fn add_position_kernel() -> Program {
        let mut builder = Builder::default();
        let (_, x) = builder.param("x", array_type(F64, 2));
        let (i_id, i) = builder.local("i", scalar_type(I64));
        let (j_id, j) = builder.local("j", scalar_type(I64));
        let (sum_id, sum) = builder.local("sum", scalar_type(F64));
        let element = index(x.clone(), vec![i.clone(), j.clone()], "x");
        let position = cast(binary(BinaryOp::Add, binary(BinaryOp::Mul, int(100), i.clone()), j.clone()), F64);
        let inner = vec![
            assign(sum_id, binary(BinaryOp::Add, sum.clone(), element.clone())),
            store(x.clone(), vec![i.clone(), j.clone()], binary(BinaryOp::Add, element, position), "x"),
        ];
        let shape = |axis| builtin(Builtin::Shape(axis), vec![x.clone()], I64);
        let body = vec![
            for_range(i_id, (int(0), shape(0), int(1)), vec![for_range(j_id, (int(0), shape(1), int(1)), inner)]),
            ret(sum),
        ];
        program(vec![builder.finish("k", scalar_type(F64), body)])
    }

    #[test]
    fn host_arrays_of_any_layout_are_read_and_written_in_logical_order() {
        let logical = host((0..12).map(|v| f64::from(v) * 1.5).collect(), &[3, 4]);
        let expected = |original: &ArrayD<f64>| {
            let mut updated = original.clone();
            for ((i, j), value) in updated.view_mut().into_dimensionality::<ndarray::Ix2>().unwrap().indexed_iter_mut()
            {
                *value += (100 * i + j) as f64;
            }
            updated
        };
        let fortran = ArrayD::from_shape_vec(IxDyn(&[3, 4]).f(), logical.t().iter().copied().collect()).unwrap();
        assert_eq!(fortran, logical);
        let mut inverted = logical.clone();
        inverted.invert_axis(Axis(0));
        inverted.invert_axis(Axis(1));
        let wide = host((0..24).map(f64::from).collect(), &[3, 8]);
        let strided = wide.slice_move(ndarray::s![.., ..;2]).into_dyn();
        for original in [logical.clone(), fortran, inverted, strided] {
            let mut args = [Value::Array(ArrayData::F64(original.clone()))];
            let sum = interpret(&add_position_kernel(), &mut args).unwrap();
            assert_eq!(sum, Value::Scalar(Scalar::F64(original.iter().sum())));
            assert_eq!(args[0], Value::Array(ArrayData::F64(expected(&original))));
        }
    }

    #[test]
    fn narrow_host_arrays_round_trip() {
        let mut builder = Builder::default();
        let (_, x) = builder.param("x", array_type(U16, 1));
        let body = vec![store(
            x.clone(),
            vec![int(0)],
            binary(BinaryOp::Sub, index(x.clone(), vec![int(1)], "x"), of(U16, 3)),
            "x",
        )];
        let function = builder.finish("k", Type::None, body);
        let mut args = [Value::Array(ArrayData::U16(ArrayD::from_shape_vec(IxDyn(&[2]), vec![9, 1]).unwrap()))];
        assert_eq!(interpret(&program(vec![function]), &mut args), Ok(Value::None));
        assert_eq!(args[0], Value::Array(ArrayData::U16(ArrayD::from_shape_vec(IxDyn(&[2]), vec![65534, 1]).unwrap())));
    }

    #[test]
    fn new_arrays_are_filled_and_returned() {
        let zeros = eval(new_array(I32, vec![int(2), int(3)], Fill::Zeros)).unwrap();
        assert_eq!(zeros, Value::Array(ArrayData::I32(ArrayD::zeros(IxDyn(&[2, 3])))));
        let ones = eval(new_array(F32, vec![int(4)], Fill::Ones)).unwrap();
        assert_eq!(ones, Value::Array(ArrayData::F32(ArrayD::ones(IxDyn(&[4])))));
        let full = eval(new_array(F64, vec![int(2), int(1), int(2)], Fill::Value(Box::new(float(7.5))))).unwrap();
        assert_eq!(full, Value::Array(ArrayData::F64(ArrayD::from_elem(IxDyn(&[2, 1, 2]), 7.5))));
        let empty = eval(new_array(Bool, vec![int(3), int(0)], Fill::Empty)).unwrap();
        assert_eq!(empty, Value::Array(ArrayData::Bool(ArrayD::from_elem(IxDyn(&[3, 0]), false))));
        let wide_but_empty = eval(new_array(F64, vec![int(0), int(1 << 30), int(3)], Fill::Zeros)).unwrap();
        assert_eq!(wide_but_empty, Value::Array(ArrayData::F64(ArrayD::zeros(IxDyn(&[0, 1 << 30, 3])))));
    }

    #[test]
    fn bad_array_sizes_are_errors() {
        let negative = eval(new_array(F64, vec![int(3), int(-1)], Fill::Zeros));
        assert_eq!(negative, Err(RuntimeErrorKind::BadArraySize { shape: vec![3, -1] }));
        let huge = eval(new_array(F64, vec![int(1 << 20), int(1 << 20), int(1 << 20)], Fill::Zeros));
        assert_eq!(huge, Err(RuntimeErrorKind::BadArraySize { shape: vec![1 << 20, 1 << 20, 1 << 20] }));
        let over_limit = eval(new_array(U8, vec![int((MAX_ARRAY_BYTES + 1) as i64)], Fill::Zeros));
        assert!(matches!(over_limit, Err(RuntimeErrorKind::BadArraySize { .. })));
        let overflowing = eval(new_array(I64, vec![int(i64::MAX), int(i64::MAX), int(2)], Fill::Ones));
        assert!(matches!(overflowing, Err(RuntimeErrorKind::BadArraySize { .. })));
        // As in NumPy, an empty array whose other extents could not be strided is refused.
        let huge_but_empty = eval(new_array(F64, vec![int(0), int(1 << 40), int(1 << 20)], Fill::Zeros));
        assert_eq!(huge_but_empty, Err(RuntimeErrorKind::BadArraySize { shape: vec![0, 1 << 40, 1 << 20] }));
    }

    #[test]
    fn arange_counts_like_numpy() {
        let arange = |start: Expr, stop: Expr, step: Expr| {
            let dtype = start.ty.scalar().unwrap();
            let expr = node(
                ExprKind::Arange { start: Box::new(start), stop: Box::new(stop), step: Box::new(step) },
                array_type(dtype, 1),
            );
            eval(expr).map(|value| match value {
                Value::Array(array) => array.to_scalars(),
                other => panic!("{other:?}"),
            })
        };
        let ints = |values: &[i64]| values.iter().map(|&v| Scalar::I64(v)).collect::<Vec<_>>();
        assert_eq!(arange(int(0), int(10), int(3)), Ok(ints(&[0, 3, 6, 9])));
        assert_eq!(arange(int(10), int(0), int(-3)), Ok(ints(&[10, 7, 4, 1])));
        assert_eq!(arange(int(5), int(0), int(1)), Ok(ints(&[])));
        let floats = [0.0, 0.25, 0.5, 0.75].map(Scalar::F64).to_vec();
        assert_eq!(arange(float(0.0), float(1.0), float(0.25)), Ok(floats));
        assert_eq!(arange(float(0.0), float(0.3), float(0.1)).unwrap().len(), 3);
        assert_eq!(arange(int(0), int(5), int(0)), Err(RuntimeErrorKind::ZeroStep));
        assert_eq!(arange(float(0.0), float(5.0), float(0.0)), Err(RuntimeErrorKind::ZeroStep));
        assert!(matches!(arange(float(0.0), float(1.0), float(1e-300)), Err(RuntimeErrorKind::BadArraySize { .. })));
        assert!(matches!(arange(int(i64::MIN), int(i64::MAX), int(1)), Err(RuntimeErrorKind::BadArraySize { .. })));
    }

    // ---- Control flow. ----

    /// `i = i_before; for i in range(start, stop, step): <first(i)>; total += i;
    /// trips += 1`; returns `(total, i after the loop, trips)`.
    fn run_range(
        start: i64,
        stop: i64,
        step: i64,
        i_before: i64,
        first: impl Fn(&Expr) -> Vec<Stmt>,
    ) -> Result<Vec<Scalar>, RuntimeError> {
        let mut builder = Builder::default();
        let (i_id, i) = builder.local("i", scalar_type(I64));
        let (total_id, total) = builder.local("total", scalar_type(I64));
        let (trips_id, trips) = builder.local("trips", scalar_type(I64));
        let mut body = first(&i);
        body.push(assign(total_id, binary(BinaryOp::Add, total.clone(), i.clone())));
        body.push(assign(trips_id, binary(BinaryOp::Add, trips.clone(), int(1))));
        let body = vec![
            assign(i_id, int(i_before)),
            for_range(i_id, (int(start), int(stop), int(step)), body),
            ret(node(ExprKind::Tuple(vec![total, i, trips]), Type::Tuple(vec![I64, I64, I64]))),
        ];
        let function = builder.finish("k", Type::Tuple(vec![I64, I64, I64]), body);
        interpret(&program(vec![function]), &mut []).map(|value| match value {
            Value::Tuple(items) => items,
            other => panic!("{other:?}"),
        })
    }

    #[test]
    fn ranges_follow_python() {
        let result = |start, stop, step| run_range(start, stop, step, 42, |_| vec![]).unwrap();
        let ints = |values: [i64; 3]| values.map(Scalar::I64).to_vec();
        assert_eq!(result(10, 0, -3), ints([22, 1, 4]));
        assert_eq!(result(0, 10, 1), ints([45, 9, 10]));
        assert_eq!(result(0, 10, 4), ints([12, 8, 3]));
        // An empty range leaves the variable alone.
        assert_eq!(result(5, 5, 1), ints([0, 42, 0]));
        assert_eq!(result(0, 5, -1), ints([0, 42, 0]));
        // Trip counts are exact at the extremes: MIN, -1, MAX - 1.
        assert_eq!(result(i64::MIN, i64::MAX, i64::MAX), ints([i64::MIN.wrapping_add(i64::MAX - 2), i64::MAX - 1, 3]));
        assert_eq!(result(i64::MAX, i64::MIN, i64::MIN), ints([i64::MAX - 1, -1, 2]));
        let error = run_range(0, 10, 0, 0, |_| vec![]).unwrap_err();
        assert_eq!(error, RuntimeError { kind: RuntimeErrorKind::ZeroStep, span: span(7) });
    }

    #[test]
    fn break_and_continue() {
        // `if i == 10: break` and `if i % 2 == 1: continue`.
        let result = run_range(0, 100, 1, 0, |i| {
            let ten = compare(i.clone(), vec![(CmpOp::Eq, I64, int(10))]);
            let odd = compare(binary(BinaryOp::Mod, i.clone(), int(2)), vec![(CmpOp::Eq, I64, int(1))]);
            vec![if_then(ten, vec![stmt(StmtKind::Break)]), if_then(odd, vec![stmt(StmtKind::Continue)])]
        })
        .unwrap();
        assert_eq!(result, [20, 10, 5].map(Scalar::I64).to_vec());
    }

    #[test]
    fn while_loops_and_fresh_locals() {
        let mut builder = Builder::default();
        let (n_id, n) = builder.local("n", scalar_type(I64));
        let (steps_id, steps) = builder.local("steps", scalar_type(I64));
        let (_, unassigned) = builder.local("unassigned", array_type(F32, 2));
        let (_, zero) = builder.local("zero", scalar_type(U8));
        let halve = binary(BinaryOp::FloorDiv, n.clone(), int(2));
        let body = vec![
            assign(n_id, int(1000)),
            stmt(StmtKind::While {
                cond: compare(n.clone(), vec![(CmpOp::Gt, I64, int(1))]),
                body: vec![assign(n_id, halve), assign(steps_id, binary(BinaryOp::Add, steps.clone(), int(1)))],
            }),
            ret(node(
                ExprKind::Tuple(vec![
                    steps,
                    builtin(Builtin::Size, vec![unassigned.clone()], I64),
                    builtin(Builtin::Shape(1), vec![unassigned], I64),
                    cast(zero, I64),
                ]),
                Type::Tuple(vec![I64; 4]),
            )),
        ];
        let function = builder.finish("k", Type::Tuple(vec![I64; 4]), body);
        assert_eq!(
            interpret(&program(vec![function]), &mut []),
            Ok(Value::Tuple([9, 0, 0, 0].map(Scalar::I64).to_vec()))
        );
    }

    #[test]
    fn calls_pass_arrays_by_reference_and_return_tuples() {
        // helper(a, v): a[0] = v; return (v * 2, v * 3)
        let mut helper = Builder::default();
        let (_, a) = helper.param("a", array_type(F64, 1));
        let (_, v) = helper.param("v", scalar_type(F64));
        let pair = Type::Tuple(vec![F64, F64]);
        let helper = helper.finish(
            "helper",
            pair.clone(),
            vec![
                store(a, vec![int(0)], v.clone(), "a"),
                ret(node(
                    ExprKind::Tuple(vec![
                        binary(BinaryOp::Mul, v.clone(), float(2.0)),
                        binary(BinaryOp::Mul, v, float(3.0)),
                    ]),
                    pair.clone(),
                )),
            ],
        );
        let mut main = Builder::default();
        let (_, x) = main.param("x", array_type(F64, 1));
        let (t_id, t) = main.local("t", pair.clone());
        let call = node(
            ExprKind::Call { func: FuncId(1), args: vec![view(x, vec![slice(Some(1), None)], "x"), float(4.0)] },
            pair.clone(),
        );
        let main = main.finish(
            "main",
            scalar_type(F64),
            vec![assign(t_id, call), ret(node(ExprKind::TupleGet(Box::new(t), 1), scalar_type(F64)))],
        );
        let mut args = [Value::Array(ArrayData::F64(host(vec![0.0; 3], &[3])))];
        assert_eq!(interpret(&program(vec![main, helper]), &mut args), Ok(Value::Scalar(Scalar::F64(12.0))));
        assert_eq!(args[0], Value::Array(ArrayData::F64(host(vec![0.0, 4.0, 0.0], &[3]))));
    }

    /// `f(n) = 0 if n == 0 else f(n - 1) + 1`, or `f(n) = f(n + 1)` forever.
    fn recursive_program(forever: bool) -> Program {
        let mut builder = Builder::default();
        let (_, n) = builder.param("n", scalar_type(I64));
        let next = binary(if forever { BinaryOp::Add } else { BinaryOp::Sub }, n.clone(), int(1));
        let call = at(node(ExprKind::Call { func: FuncId(0), args: vec![next] }, scalar_type(I64)), 30);
        let mut body = vec![];
        if !forever {
            body.push(if_then(compare(n, vec![(CmpOp::Eq, I64, int(0))]), vec![ret(int(0))]));
        }
        body.push(ret(binary(BinaryOp::Add, call, int(1))));
        program(vec![builder.finish("f", scalar_type(I64), body)])
    }

    #[test]
    fn recursion_is_limited_without_overflowing_the_stack() {
        let run = |forever, n| interpret(&recursive_program(forever), &mut [Value::Scalar(Scalar::I64(n))]);
        let error = run(true, 0).unwrap_err();
        assert_eq!(error, RuntimeError { kind: RuntimeErrorKind::RecursionTooDeep, span: span(30) });
        assert_eq!(run(false, RECURSION_LIMIT as i64), Ok(Value::Scalar(Scalar::I64(RECURSION_LIMIT as i64))));
        assert_eq!(run(false, RECURSION_LIMIT as i64 + 1).unwrap_err().kind, RuntimeErrorKind::RecursionTooDeep);
    }

    #[test]
    fn deep_expressions_do_not_overflow_the_stack() {
        // Building and dropping a deep tree recurses too: do it on a big stack.
        let worker = std::thread::Builder::new().stack_size(1 << 30).spawn(|| {
            let depth = 200_000;
            let mut expr = int(0);
            for _ in 0..depth {
                expr = binary(BinaryOp::Add, expr, int(1));
            }
            eval(expr)
        });
        assert_eq!(worker.unwrap().join().unwrap(), Ok(Value::Scalar(Scalar::I64(200_000))));
    }

    #[test]
    fn mismatched_arguments_are_errors_not_panics() {
        let program = recursive_program(false);
        let wrong_type = interpret(&program, &mut [Value::Scalar(Scalar::F64(1.0))]).unwrap_err();
        assert!(matches!(wrong_type.kind, RuntimeErrorKind::Internal { .. }), "{wrong_type:?}");
        let wrong_count = interpret(&program, &mut []).unwrap_err();
        assert!(matches!(wrong_count.kind, RuntimeErrorKind::Internal { .. }));
    }

    // ---- prange reductions. ----

    /// `acc = initial; for i in prange(len(x)): acc = update(acc, x[i]); return (acc, i)`.
    fn reduction_kernel(
        dtype: ScalarType,
        op: ReduceOp,
        initial: Scalar,
        update: impl Fn(Expr, Expr) -> Expr,
    ) -> Program {
        let mut builder = Builder::default();
        let (_, x) = builder.param("x", array_type(dtype, 1));
        let (acc_id, acc) = builder.local("acc", scalar_type(dtype));
        let (i_id, i) = builder.local("i", scalar_type(I64));
        let body = vec![
            assign(acc_id, konst(initial)),
            assign(i_id, int(-7)),
            prange(
                i_id,
                builtin(Builtin::Shape(0), vec![x.clone()], I64),
                vec![assign(acc_id, update(acc.clone(), index(x, vec![i.clone()], "x")))],
                &[(acc_id, op)],
            ),
            ret(node(ExprKind::Tuple(vec![acc, i]), Type::Tuple(vec![dtype, I64]))),
        ];
        program(vec![builder.finish("reduce", Type::Tuple(vec![dtype, I64]), body)])
    }

    fn run_reduction(program: &Program, array: ArrayData) -> (Scalar, i64) {
        match interpret(program, &mut [Value::Array(array)]) {
            Ok(Value::Tuple(items)) => (items[0], items[1].as_i64().unwrap()),
            other => panic!("{other:?}"),
        }
    }

    /// The documented tree, written out independently of `tir::combine_tree`.
    fn tree_sum(partials: &[f64]) -> f64 {
        if partials.len() == 1 {
            partials[0]
        } else {
            let (left, right) = partials.split_at(partials.len() / 2);
            tree_sum(left) + tree_sum(right)
        }
    }

    #[test]
    fn prange_sums_use_blocks_and_a_fixed_tree() {
        let values: Vec<f64> = (0..5000).map(|i| (i as f64 * 0.37).sin() * 10f64.powi(i % 9)).collect();
        let kernel = reduction_kernel(F64, ReduceOp::Add, Scalar::F64(0.5), |acc, x| binary(BinaryOp::Add, acc, x));
        let (sum, last) = run_reduction(&kernel, ArrayData::F64(host(values.clone(), &[5000])));
        // 5000 trips make blocks of ceil(5000 / 1024) = 5 trips.
        let partials: Vec<f64> =
            values.chunks(5).map(|block| block.iter().fold(0.0, |partial, v| partial + v)).collect();
        assert_eq!(partials.len(), 1000);
        let expected = 0.5 + tree_sum(&partials);
        let naive = values.iter().fold(0.5, |acc, v| acc + v);
        assert_eq!(sum, Scalar::F64(expected));
        assert_ne!(expected, naive, "the data should make the block order observable");
        assert_eq!(last, 4999);

        // An uneven last block: 3001 trips in blocks of 3, the last one of 1.
        let values: Vec<f64> = (0..3001).map(|i| 1.0 / (i as f64 + 1.0)).collect();
        let (sum, _) = run_reduction(&kernel, ArrayData::F64(host(values.clone(), &[3001])));
        let partials: Vec<f64> =
            values.chunks(3).map(|block| block.iter().fold(0.0, |partial, v| partial + v)).collect();
        assert_eq!(sum, Scalar::F64(0.5 + tree_sum(&partials)));

        // No trips: the variable and the loop variable are unchanged.
        let (sum, last) = run_reduction(&kernel, ArrayData::F64(host(vec![], &[0])));
        assert_eq!((sum, last), (Scalar::F64(0.5), -7));
    }

    #[test]
    fn prange_subtraction_accumulates_negated_terms() {
        let kernel = reduction_kernel(F64, ReduceOp::Add, Scalar::F64(1.0), |acc, x| binary(BinaryOp::Sub, acc, x));
        let values: Vec<f64> = (0..2500).map(|i| (i as f64).sqrt() * 1e-3).collect();
        let (result, _) = run_reduction(&kernel, ArrayData::F64(host(values.clone(), &[2500])));
        let partials: Vec<f64> =
            values.chunks(3).map(|block| block.iter().fold(0.0, |partial, v| partial - v)).collect();
        assert_eq!(result, Scalar::F64(1.0 + tree_sum(&partials)));
    }

    #[test]
    fn prange_min_max_mul_and_bitor_reductions() {
        let values: Vec<f64> = (0..3000).map(|i| ((i * 7919) % 3001) as f64 - 1500.0).collect();
        let array = || ArrayData::F64(host(values.clone(), &[3000]));
        let min =
            reduction_kernel(F64, ReduceOp::Min, Scalar::F64(0.0), |acc, x| builtin(Builtin::Min, vec![acc, x], F64));
        assert_eq!(run_reduction(&min, array()), (Scalar::F64(-1500.0), 2999));
        let max =
            reduction_kernel(F64, ReduceOp::Max, Scalar::F64(1e9), |acc, x| builtin(Builtin::Max, vec![acc, x], F64));
        assert_eq!(run_reduction(&max, array()).0, Scalar::F64(1e9));
        let max = reduction_kernel(F64, ReduceOp::Max, Scalar::F64(f64::NEG_INFINITY), |acc, x| {
            builtin(Builtin::Max, vec![acc, x], F64)
        });
        assert_eq!(run_reduction(&max, array()).0, Scalar::F64(values.iter().copied().fold(f64::MIN, f64::max)));

        let threes = ArrayData::I64(ArrayD::from_elem(IxDyn(&[2000]), 3));
        let mul = reduction_kernel(I64, ReduceOp::Mul, Scalar::I64(5), |acc, x| binary(BinaryOp::Mul, acc, x));
        assert_eq!(run_reduction(&mul, threes).0, Scalar::I64(3i64.wrapping_pow(2000).wrapping_mul(5)));

        let bits: Vec<u32> = (0..1500).map(|i| 1u32 << (i % 31)).collect();
        let bitor =
            reduction_kernel(U32, ReduceOp::BitOr, Scalar::U32(1 << 31), |acc, x| binary(BinaryOp::BitOr, acc, x));
        let (result, _) = run_reduction(&bitor, ArrayData::U32(ArrayD::from_shape_vec(IxDyn(&[1500]), bits).unwrap()));
        assert_eq!(result, Scalar::U32(u32::MAX));

        let flags = ArrayData::Bool(ArrayD::from_shape_vec(IxDyn(&[3]), vec![true, true, false]).unwrap());
        let all =
            reduction_kernel(Bool, ReduceOp::BitAnd, Scalar::Bool(true), |acc, x| binary(BinaryOp::BitAnd, acc, x));
        assert_eq!(run_reduction(&all, flags).0, Scalar::Bool(false));
    }

    #[test]
    fn prange_errors_stop_the_loop() {
        let kernel = reduction_kernel(I64, ReduceOp::Add, Scalar::I64(0), |acc, x| {
            binary(BinaryOp::Add, acc, binary(BinaryOp::FloorDiv, int(10), x))
        });
        let array = ArrayData::I64(ArrayD::from_shape_vec(IxDyn(&[4]), vec![1, 2, 0, 5]).unwrap());
        let error = interpret(&kernel, &mut [Value::Array(array)]).unwrap_err();
        assert_eq!(error.kind, RuntimeErrorKind::DivisionByZero);
    }
}
