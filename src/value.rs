//! Runtime values shared by the interpreter, the CLI and (later) the JIT:
//! scalars with exact NumPy-style conversions, owned host arrays, and runtime
//! errors.
//!
//! A leaf above `types` and `span`: it defines what a value *is* and how one
//! scalar converts to another, never how a program is evaluated.

use crate::span::Span;
use crate::types::{ArrayType, Layout, ScalarType, Type};
use ndarray::ArrayD;
use std::fmt;

/// One scalar value of a definite dtype.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
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
    F64(f64),
}

impl Scalar {
    pub fn ty(self) -> ScalarType {
        match self {
            Scalar::Bool(_) => ScalarType::Bool,
            Scalar::I8(_) => ScalarType::I8,
            Scalar::I16(_) => ScalarType::I16,
            Scalar::I32(_) => ScalarType::I32,
            Scalar::I64(_) => ScalarType::I64,
            Scalar::U8(_) => ScalarType::U8,
            Scalar::U16(_) => ScalarType::U16,
            Scalar::U32(_) => ScalarType::U32,
            Scalar::U64(_) => ScalarType::U64,
            Scalar::F32(_) => ScalarType::F32,
            Scalar::F64(_) => ScalarType::F64,
        }
    }

    /// The zero of a dtype (`False` for bool).
    pub fn zero(ty: ScalarType) -> Scalar {
        Scalar::from_i128_wrapping(0, ty)
    }

    /// The value as an i128: exact for every int and bool; floats truncate
    /// with saturation (NaN gives 0).
    pub fn to_i128(self) -> i128 {
        match self {
            Scalar::Bool(v) => v as i128,
            Scalar::I8(v) => v as i128,
            Scalar::I16(v) => v as i128,
            Scalar::I32(v) => v as i128,
            Scalar::I64(v) => v as i128,
            Scalar::U8(v) => v as i128,
            Scalar::U16(v) => v as i128,
            Scalar::U32(v) => v as i128,
            Scalar::U64(v) => v as i128,
            Scalar::F32(v) => v as i128,
            Scalar::F64(v) => v as i128,
        }
    }

    /// The value as an f64 (ints round to nearest, as `as f64` does).
    pub fn to_f64(self) -> f64 {
        match self {
            Scalar::Bool(v) => v as u8 as f64,
            Scalar::I8(v) => v as f64,
            Scalar::I16(v) => v as f64,
            Scalar::I32(v) => v as f64,
            Scalar::I64(v) => v as f64,
            Scalar::U8(v) => v as f64,
            Scalar::U16(v) => v as f64,
            Scalar::U32(v) => v as f64,
            Scalar::U64(v) => v as f64,
            Scalar::F32(v) => v as f64,
            Scalar::F64(v) => v,
        }
    }

    /// Python truthiness: nonzero is true, and NaN is true.
    pub fn is_truthy(self) -> bool {
        match self {
            Scalar::F32(v) => v != 0.0,
            Scalar::F64(v) => v != 0.0,
            other => other.to_i128() != 0,
        }
    }

    /// Wraps an integer into `ty` (two's complement); for float types the
    /// integer is rounded to nearest.
    pub fn from_i128_wrapping(value: i128, ty: ScalarType) -> Scalar {
        match ty {
            ScalarType::Bool => Scalar::Bool(value != 0),
            ScalarType::I8 => Scalar::I8(value as i8),
            ScalarType::I16 => Scalar::I16(value as i16),
            ScalarType::I32 => Scalar::I32(value as i32),
            ScalarType::I64 => Scalar::I64(value as i64),
            ScalarType::U8 => Scalar::U8(value as u8),
            ScalarType::U16 => Scalar::U16(value as u16),
            ScalarType::U32 => Scalar::U32(value as u32),
            ScalarType::U64 => Scalar::U64(value as u64),
            ScalarType::F32 => Scalar::F32(value as f32),
            ScalarType::F64 => Scalar::F64(value as f64),
        }
    }

    /// Converts to another dtype with kern's cast rules (NumPy `astype`,
    /// made total and deterministic):
    /// - to `bool`: nonzero (NaN counts as nonzero);
    /// - int to int: two's-complement wrapping;
    /// - int to float: round to nearest;
    /// - float to float: round to nearest;
    /// - float to int: truncate toward zero to i64 with saturation (NaN gives
    ///   0), then wrap into the target width; for `u64`, values at or above
    ///   2^63 saturate to `u64` instead.
    pub fn cast(self, to: ScalarType) -> Scalar {
        if to == ScalarType::Bool {
            return Scalar::Bool(self.is_truthy());
        }
        match self {
            Scalar::F32(v) => float_to(v as f64, v, to),
            Scalar::F64(v) => float_to(v, v as f32, to),
            int => match to {
                ScalarType::F32 => Scalar::F32(int_to_f32(int)),
                _ => Scalar::from_i128_wrapping(int.to_i128(), to),
            },
        }
    }

    pub fn as_f64(self) -> Option<f64> {
        if let Scalar::F64(v) = self {
            Some(v)
        } else {
            None
        }
    }

    pub fn as_i64(self) -> Option<i64> {
        if let Scalar::I64(v) = self {
            Some(v)
        } else {
            None
        }
    }

    pub fn as_bool(self) -> Option<bool> {
        if let Scalar::Bool(v) = self {
            Some(v)
        } else {
            None
        }
    }
}

/// An int converted to f32 in one rounding step (as `as f32` does from the
/// original width, never through f64).
fn int_to_f32(int: Scalar) -> f32 {
    match int {
        Scalar::Bool(v) => v as u8 as f32,
        Scalar::I8(v) => v as f32,
        Scalar::I16(v) => v as f32,
        Scalar::I32(v) => v as f32,
        Scalar::I64(v) => v as f32,
        Scalar::U8(v) => v as f32,
        Scalar::U16(v) => v as f32,
        Scalar::U32(v) => v as f32,
        Scalar::U64(v) => v as f32,
        Scalar::F32(v) => v,
        Scalar::F64(v) => v as f32,
    }
}

fn float_to(value: f64, value_f32: f32, to: ScalarType) -> Scalar {
    match to {
        ScalarType::F64 => Scalar::F64(value),
        ScalarType::F32 => Scalar::F32(value_f32),
        ScalarType::U64 if value >= 9_223_372_036_854_775_808.0 => Scalar::U64(value as u64),
        _ => Scalar::from_i128_wrapping(value as i64 as i128, to),
    }
}

impl fmt::Display for Scalar {
    /// Python-style text: `True`, `7`, `2.5`, `1e-300`, `nan`, `inf`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Scalar::Bool(v) => f.write_str(if v { "True" } else { "False" }),
            Scalar::F32(v) => write_float(f, v as f64, format!("{v:?}")),
            Scalar::F64(v) => write_float(f, v, format!("{v:?}")),
            other => write!(f, "{}", other.to_i128()),
        }
    }
}

fn write_float(f: &mut fmt::Formatter<'_>, value: f64, debug: String) -> fmt::Result {
    if value.is_nan() {
        f.write_str("nan")
    } else if value.is_infinite() {
        f.write_str(if value > 0.0 { "inf" } else { "-inf" })
    } else {
        f.write_str(&debug)
    }
}

/// An owned n-dimensional host array of any dtype (any strides, including
/// negative ones).
#[derive(Clone, Debug, PartialEq)]
pub enum ArrayData {
    Bool(ArrayD<bool>),
    I8(ArrayD<i8>),
    I16(ArrayD<i16>),
    I32(ArrayD<i32>),
    I64(ArrayD<i64>),
    U8(ArrayD<u8>),
    U16(ArrayD<u16>),
    U32(ArrayD<u32>),
    U64(ArrayD<u64>),
    F32(ArrayD<f32>),
    F64(ArrayD<f64>),
}

/// Applies one expression to the `ArrayD<T>` inside any [`ArrayData`].
#[macro_export]
macro_rules! with_array {
    ($data:expr, $array:ident => $body:expr) => {
        match $data {
            $crate::value::ArrayData::Bool($array) => $body,
            $crate::value::ArrayData::I8($array) => $body,
            $crate::value::ArrayData::I16($array) => $body,
            $crate::value::ArrayData::I32($array) => $body,
            $crate::value::ArrayData::I64($array) => $body,
            $crate::value::ArrayData::U8($array) => $body,
            $crate::value::ArrayData::U16($array) => $body,
            $crate::value::ArrayData::U32($array) => $body,
            $crate::value::ArrayData::U64($array) => $body,
            $crate::value::ArrayData::F32($array) => $body,
            $crate::value::ArrayData::F64($array) => $body,
        }
    };
}

/// Element types that can live in a kern array.
pub trait Element: Copy + Send + Sync + 'static {
    const DTYPE: ScalarType;
    fn to_scalar(self) -> Scalar;
    /// Converts from a scalar of exactly this dtype (casts otherwise).
    fn from_scalar(value: Scalar) -> Self;
    fn wrap(array: ArrayD<Self>) -> ArrayData;
}

macro_rules! element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const DTYPE: ScalarType = ScalarType::$variant;
            fn to_scalar(self) -> Scalar {
                Scalar::$variant(self)
            }
            fn from_scalar(value: Scalar) -> Self {
                match value.cast(ScalarType::$variant) {
                    Scalar::$variant(v) => v,
                    _ => unreachable!("cast returns the requested dtype"),
                }
            }
            fn wrap(array: ArrayD<Self>) -> ArrayData {
                ArrayData::$variant(array)
            }
        }
    };
}

element!(bool, Bool);
element!(i8, I8);
element!(i16, I16);
element!(i32, I32);
element!(i64, I64);
element!(u8, U8);
element!(u16, U16);
element!(u32, U32);
element!(u64, U64);
element!(f32, F32);
element!(f64, F64);

impl ArrayData {
    pub fn dtype(&self) -> ScalarType {
        with_array!(self, a => element_dtype(a))
    }

    pub fn shape(&self) -> Vec<usize> {
        with_array!(self, a => a.shape().to_vec())
    }

    pub fn ndim(&self) -> usize {
        with_array!(self, a => a.ndim())
    }

    /// The layout class of the array's memory (see [`Layout`]).
    pub fn layout(&self) -> Layout {
        with_array!(self, a => layout_of(a.shape(), a.strides()))
    }

    pub fn len(&self) -> usize {
        with_array!(self, a => a.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn array_type(&self) -> ArrayType {
        ArrayType { dtype: self.dtype(), ndim: self.ndim() as u8 }
    }

    /// Every element in logical (C) order, as scalars.
    pub fn to_scalars(&self) -> Vec<Scalar> {
        with_array!(self, a => a.iter().map(|v| v.to_scalar()).collect())
    }

    /// The sum of all elements converted to f64, in logical (C) order.
    pub fn sum_f64(&self) -> f64 {
        with_array!(self, a => a.iter().map(|v| v.to_scalar().to_f64()).sum())
    }

    /// A C-ordered array of the given dtype and shape holding `values`
    /// (converted with [`Scalar::cast`]). `values.len()` must equal the
    /// product of `shape`.
    pub fn from_scalars(dtype: ScalarType, shape: &[usize], values: &[Scalar]) -> ArrayData {
        fn build<T: Element>(shape: &[usize], values: &[Scalar]) -> ArrayData {
            let data: Vec<T> = values.iter().map(|v| T::from_scalar(*v)).collect();
            T::wrap(ArrayD::from_shape_vec(shape.to_vec(), data).expect("shape matches values"))
        }
        match dtype {
            ScalarType::Bool => build::<bool>(shape, values),
            ScalarType::I8 => build::<i8>(shape, values),
            ScalarType::I16 => build::<i16>(shape, values),
            ScalarType::I32 => build::<i32>(shape, values),
            ScalarType::I64 => build::<i64>(shape, values),
            ScalarType::U8 => build::<u8>(shape, values),
            ScalarType::U16 => build::<u16>(shape, values),
            ScalarType::U32 => build::<u32>(shape, values),
            ScalarType::U64 => build::<u64>(shape, values),
            ScalarType::F32 => build::<f32>(shape, values),
            ScalarType::F64 => build::<f64>(shape, values),
        }
    }
}

fn element_dtype<T: Element>(_: &ArrayD<T>) -> ScalarType {
    T::DTYPE
}

/// A value passed to or returned from a kernel.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Scalar(Scalar),
    Tuple(Vec<Scalar>),
    Array(ArrayData),
    /// What a kernel without a `return value` gives back.
    None,
}

/// [`Layout::of`] for an ndarray's extents and strides (at most 3 axes,
/// [`Layout::Any`] beyond).
pub fn layout_of(shape: &[usize], strides: &[isize]) -> Layout {
    if shape.len() > 3 {
        return Layout::Any;
    }
    let mut extents = [0i64; 3];
    let mut steps = [0i64; 3];
    for (axis, (&extent, &stride)) in shape.iter().zip(strides).enumerate() {
        extents[axis] = i64::try_from(extent).unwrap_or(i64::MAX);
        steps[axis] = stride as i64;
    }
    Layout::of(&extents[..shape.len()], &steps[..shape.len()])
}

impl Value {
    /// The layout class of this value: [`Layout::Any`] unless an array.
    pub fn layout(&self) -> Layout {
        match self {
            Value::Array(a) => a.layout(),
            _ => Layout::Any,
        }
    }

    /// The kern type of this value (used to pick a specialisation).
    pub fn ty(&self) -> Type {
        match self {
            Value::Scalar(s) => Type::Scalar(s.ty()),
            Value::Tuple(items) => Type::Tuple(items.iter().map(|s| s.ty()).collect()),
            Value::Array(a) => Type::Array(a.array_type()),
            Value::None => Type::None,
        }
    }
}

impl From<Scalar> for Value {
    fn from(s: Scalar) -> Value {
        Value::Scalar(s)
    }
}

impl From<ArrayData> for Value {
    fn from(a: ArrayData) -> Value {
        Value::Array(a)
    }
}

/// A runtime error inside a kernel, with the source position of the
/// operation that failed.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeError {
    pub kind: RuntimeErrorKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RuntimeErrorKind {
    /// `x[12, 3]: index 12 out of bounds for axis 0 with size 10`.
    IndexOutOfBounds { array: String, indices: Vec<i64>, axis: usize, index: i64, extent: i64 },
    /// Integer `//` or `%` by zero.
    DivisionByZero,
    /// `range(a, b, 0)`.
    ZeroStep,
    /// An array created with a negative or unallocatable size.
    BadArraySize { shape: Vec<i64> },
    /// Recursion deeper than [`RECURSION_LIMIT`] calls.
    RecursionTooDeep,
    /// An integer raised to a negative integer power.
    NegativePower { exponent: i64 },
    /// The program or the arguments break an invariant of the typed IR (an
    /// argument whose type differs from the specialisation's, an ill-typed
    /// node). Never produced by a checked program called correctly: it
    /// reports a kernjit bug as an error instead of a panic.
    Internal { message: String },
}

/// How deep kernel calls may nest before the call fails.
pub const RECURSION_LIMIT: usize = 1000;

/// The largest number of bytes one array created inside a kernel may take.
pub const MAX_ARRAY_BYTES: u64 = 1 << 40;

/// Whether a new array of `extents` may be created: every extent is
/// non-negative and the bytes it would span with its zero extents counted as
/// 1 fit in [`MAX_ARRAY_BYTES`]. Like NumPy, a shape is only allocatable if
/// that span fits, even when the array is empty: otherwise its C strides
/// would overflow. (The allocation itself may still be refused.)
pub fn array_size_allowed(extents: &[i64], dtype: ScalarType) -> bool {
    let mut bytes = dtype.size_bytes() as u128;
    for &extent in extents {
        let Ok(extent) = u128::try_from(extent) else { return false };
        bytes = bytes.saturating_mul(extent.max(1));
    }
    bytes <= MAX_ARRAY_BYTES as u128
}

/// The length of `np.arange(start, stop, step)` (all three of one int or
/// float dtype): `ceil((stop - start) / step)` clamped at 0, computed in f64
/// for floats and exactly for ints. A zero step is `ZeroStep`. The caller
/// checks the length against the size limit.
pub fn arange_len(start: Scalar, stop: Scalar, step: Scalar) -> Result<i64, RuntimeErrorKind> {
    let is_float = step.ty().is_float();
    if !step.is_truthy() || (is_float && step.to_f64() == 0.0) {
        return Err(RuntimeErrorKind::ZeroStep);
    }
    if is_float {
        let len = ((stop.to_f64() - start.to_f64()) / step.to_f64()).ceil();
        // NaN and negative lengths give an empty array; `as` saturates.
        Ok(if len > 0.0 { len as i64 } else { 0 })
    } else {
        let (start, stop, step) = (start.to_i128(), stop.to_i128(), step.to_i128());
        // ceil(d / s) = -floor(-d / s); i128 holds every difference of two
        // 64-bit values, and the quotient of such numbers cannot overflow.
        let numerator = -(stop - start);
        let mut quotient = numerator / step;
        if numerator % step != 0 && ((numerator < 0) != (step < 0)) {
            quotient -= 1;
        }
        Ok(i64::try_from((-quotient).max(0)).unwrap_or(i64::MAX))
    }
}

/// Element `k` of `np.arange(start, step)`: `start + k * step` in the
/// dtype's own arithmetic (IEEE for floats, wrapping for ints).
pub fn arange_element(start: Scalar, step: Scalar, k: i64) -> Scalar {
    match (start, step) {
        (Scalar::F64(start), Scalar::F64(step)) => Scalar::F64(start + k as f64 * step),
        (Scalar::F32(start), Scalar::F32(step)) => Scalar::F32(start + k as f32 * step),
        (start, step) => Scalar::from_i128_wrapping(start.to_i128() + k as i128 * step.to_i128(), start.ty()),
    }
}

impl RuntimeErrorKind {
    /// The stable diagnostic code of this error kind.
    pub fn code(&self) -> &'static str {
        match self {
            RuntimeErrorKind::IndexOutOfBounds { .. } => "R0601",
            RuntimeErrorKind::DivisionByZero => "R0602",
            RuntimeErrorKind::ZeroStep => "R0603",
            RuntimeErrorKind::BadArraySize { .. } => "R0604",
            RuntimeErrorKind::RecursionTooDeep => "R0605",
            RuntimeErrorKind::NegativePower { .. } => "R0606",
            RuntimeErrorKind::Internal { .. } => "R0699",
        }
    }
}

impl fmt::Display for RuntimeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeErrorKind::IndexOutOfBounds { array, indices, axis, index, extent } => {
                let indices: Vec<String> = indices.iter().map(|i| i.to_string()).collect();
                write!(
                    f,
                    "{array}[{}]: index {index} out of bounds for axis {axis} with size {extent}",
                    indices.join(", ")
                )
            }
            RuntimeErrorKind::DivisionByZero => f.write_str("integer division or modulo by zero"),
            RuntimeErrorKind::ZeroStep => f.write_str("range() step must not be zero"),
            RuntimeErrorKind::BadArraySize { shape } => {
                let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
                write!(f, "cannot create an array of shape ({}): negative or too large", dims.join(", "))
            }
            RuntimeErrorKind::RecursionTooDeep => {
                write!(f, "recursion deeper than {RECURSION_LIMIT} calls")
            }
            RuntimeErrorKind::NegativePower { exponent } => {
                write!(f, "integers to negative integer powers are not allowed (exponent {exponent})")
            }
            RuntimeErrorKind::Internal { message } => write!(f, "internal error: {message}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_are_numpy_like_and_total() {
        assert_eq!(Scalar::F64(-1.0).cast(ScalarType::U8), Scalar::U8(255));
        assert_eq!(Scalar::F64(f64::NAN).cast(ScalarType::I32), Scalar::I32(0));
        assert_eq!(Scalar::F64(f64::NAN).cast(ScalarType::Bool), Scalar::Bool(true));
        assert_eq!(Scalar::F64(2.9).cast(ScalarType::I64), Scalar::I64(2));
        assert_eq!(Scalar::F64(-2.9).cast(ScalarType::I64), Scalar::I64(-2));
        assert_eq!(Scalar::F64(1e30).cast(ScalarType::U64), Scalar::U64(u64::MAX));
        assert_eq!(Scalar::I64(300).cast(ScalarType::U8), Scalar::U8(44));
        assert_eq!(Scalar::I32(-1).cast(ScalarType::U64), Scalar::U64(u64::MAX));
        assert_eq!(Scalar::U64(u64::MAX).cast(ScalarType::F32), Scalar::F32(u64::MAX as f32));
    }
}
