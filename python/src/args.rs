//! Python arguments as kernel arguments, and kernel results as Python
//! values.
//!
//! [`classify`] looks at one Python object with exact type checks, cheapest
//! first: a Python `float`, `int` or `bool`; a NumPy array (read from the
//! array object's own fields, never through Python attributes); a NumPy
//! scalar, which keeps its dtype. An array becomes an [`ArrayArg`] pointing
//! into the NumPy buffer with the array's own shape and strides (converted
//! from bytes to elements): nothing is copied. Arrays kernels cannot address
//! that way (non-native byte order, misaligned data, strides that are not a
//! multiple of the item size) are refused, as are other dtypes and
//! dimensions.
//!
//! Results go the other way: scalars become Python `float`, `int` or
//! `bool`, tuples Python tuples, and arrays NumPy arrays that take over the
//! kernel's allocation without a copy.
//!
//! This module never decides which compiled program runs: it only
//! describes, encodes and converts values.

use kernjit::jit::abi::ArrayArg;
use kernjit::jit::runtime::{decode_scalar, encode_scalar};
use kernjit::{ArrayData, ArrayType, Layout, Scalar, ScalarType, Type, Value};
use numpy::npyffi::{self, flags, NpyTypes, NPY_TYPES, PY_ARRAY_API};
use numpy::IntoPyArray;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;
use pyo3::{ffi, IntoPyObjectExt};
use std::ffi::{c_int, c_long, c_void};
use std::mem::MaybeUninit;

/// One argument as a kernel takes it.
#[derive(Clone, Copy, Debug)]
pub enum Arg {
    /// A scalar. `weak` for a Python `int` or `float`, whose type gives way
    /// to a parameter's in eager signatures (NumPy's NEP 50): `f(3)` fits
    /// an `i32` parameter, as a literal would.
    Scalar {
        value: Scalar,
        weak: bool,
    },
    Array(ArrayInfo),
}

/// A NumPy array as a kernel sees it.
#[derive(Clone, Copy, Debug)]
pub struct ArrayInfo {
    /// Points into the NumPy array's own buffer (strides in elements).
    pub arg: ArrayArg,
    pub ty: ArrayType,
    pub layout: Layout,
    /// `arr.flags.writeable`.
    pub writable: bool,
}

impl Arg {
    /// The kern type of the argument.
    pub fn ty(&self) -> Type {
        match self {
            Arg::Scalar { value, .. } => Type::Scalar(value.ty()),
            Arg::Array(array) => Type::Array(array.ty),
        }
    }

    /// The layout class of an array ([`Layout::Any`] for scalars).
    pub fn layout(&self) -> Layout {
        match self {
            Arg::Scalar { .. } => Layout::Any,
            Arg::Array(array) => array.layout,
        }
    }

    /// Everything about the argument that decides which code runs and how
    /// it is passed, packed for a quick comparison with a remembered call.
    #[inline]
    pub fn key(&self) -> ArgKey {
        match self {
            Arg::Scalar { value, weak } => ArgKey::scalar(value.ty(), *weak),
            Arg::Array(array) => {
                let layout = match array.layout {
                    Layout::C => 0,
                    Layout::F => 1,
                    Layout::Any => 2,
                };
                ArgKey(
                    dtype_index(array.ty.dtype)
                        | 0x40
                        | ((array.ty.ndim as u16) << 7)
                        | (layout << 9)
                        | ((array.writable as u16) << 11),
                )
            }
        }
    }

    /// The argument as an owned [`Value`], for the reference interpreter:
    /// an array's elements are copied.
    pub fn to_value(self) -> Value {
        match self {
            Arg::Scalar { value, .. } => Value::Scalar(value),
            // SAFETY: `array` was classified from a live NumPy array that the
            // caller's argument tuple keeps alive while the call runs.
            Arg::Array(array) => Value::Array(unsafe { copy_in(&array) }),
        }
    }
}

/// [`Arg::key`]: the kind, dtype, dimensions, layout, writability and
/// weakness of an argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArgKey(u16);

impl ArgKey {
    /// The key of a scalar of `dtype`.
    pub const fn scalar(dtype: ScalarType, weak: bool) -> ArgKey {
        ArgKey(dtype_index(dtype) | 0x10 | ((weak as u16) << 5))
    }

    /// The dtype of the scalar or the array's elements.
    #[inline]
    pub fn dtype(self) -> ScalarType {
        ScalarType::ALL[(self.0 & 0xf) as usize % ScalarType::ALL.len()]
    }

    /// Whether the argument is a Python `int` or `float`.
    #[inline]
    pub fn is_weak(self) -> bool {
        self.0 & 0x20 != 0
    }

    /// Whether the argument is an array (its slot holds an `ArrayArg`'s address).
    #[inline]
    pub fn is_array(self) -> bool {
        self.0 & 0x40 != 0
    }
}

/// The position of `dtype` in `ScalarType::ALL`.
const fn dtype_index(dtype: ScalarType) -> u16 {
    match dtype {
        ScalarType::Bool => 0,
        ScalarType::I8 => 1,
        ScalarType::I16 => 2,
        ScalarType::I32 => 3,
        ScalarType::I64 => 4,
        ScalarType::U8 => 5,
        ScalarType::U16 => 6,
        ScalarType::U32 => 7,
        ScalarType::U64 => 8,
        ScalarType::F32 => 9,
        ScalarType::F64 => 10,
    }
}

/// Why an object cannot be a kernel argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejected {
    /// Not a kind of value kernels take.
    Kind,
    /// A Python `int` outside both the int64 and the uint64 ranges.
    IntOutOfRange,
    /// An array of 0 or more than 3 dimensions.
    Dimensions(i32),
    /// An array of a dtype kernels do not compute with.
    Dtype,
    ByteOrder,
    Misaligned,
    /// A stride that is not a multiple of the item size.
    Strides,
}

/// What kernels take, for error messages.
pub const ACCEPTED: &str = "kernels take NumPy arrays of 1 to 3 dimensions with dtype bool, int8, int16, int32, \
                            int64, uint8, uint16, uint32, uint64, float32 or float64 (any strides), Python float, \
                            int and bool, and NumPy scalars of those dtypes";

/// What one argument is. Cheapest checks first: Python `float`, `int` and
/// `bool` by exact type; then NumPy arrays and scalars (NumPy is imported
/// on the first such check); then subclasses of `float` and `int`.
#[inline]
pub fn classify(py: Python<'_>, object: &Bound<'_, PyAny>) -> Result<Arg, Rejected> {
    let pointer = object.as_ptr();
    // SAFETY: `pointer` is a live object (borrowed by `object`) and these
    // are CPython's own type objects; the value functions are called on
    // objects of exactly their type.
    unsafe {
        let ty = ffi::Py_TYPE(pointer);
        if ty == &raw mut ffi::PyFloat_Type {
            return Ok(Arg::Scalar { value: Scalar::F64(ffi::PyFloat_AsDouble(pointer)), weak: true });
        }
        if ty == &raw mut ffi::PyLong_Type {
            return int(pointer);
        }
        if ty == &raw mut ffi::PyBool_Type {
            return Ok(Arg::Scalar { value: Scalar::Bool(pointer == ffi::Py_True()), weak: false });
        }
        let numpy = numpy_types(py).ok_or(Rejected::Kind)?;
        if ty == numpy.ndarray || ffi::PyObject_TypeCheck(pointer, numpy.ndarray) != 0 {
            return array(pointer);
        }
        if let Some(dtype) = numpy.scalar_dtype(ty) {
            return numpy_scalar(py, pointer, dtype);
        }
        if ffi::PyFloat_Check(pointer) != 0 {
            let value = ffi::PyFloat_AsDouble(pointer);
            if value == -1.0 && !ffi::PyErr_Occurred().is_null() {
                ffi::PyErr_Clear();
                return Err(Rejected::Kind);
            }
            return Ok(Arg::Scalar { value: Scalar::F64(value), weak: true });
        }
        if ffi::PyLong_Check(pointer) != 0 {
            return int(pointer);
        }
    }
    Err(Rejected::Kind)
}

/// One argument as the hot path needs it: its key and, for a scalar, its
/// slot (for an array, the `ArrayArg` is written where the caller says).
#[derive(Clone, Copy, Debug)]
pub struct Quick {
    pub key: ArgKey,
    /// A scalar's slot encoding (`encode_scalar`); 0 for an array.
    pub bits: u64,
}

impl Quick {
    /// A scalar's value, decoded from its slot.
    #[inline]
    pub fn scalar(self) -> Scalar {
        decode_scalar(self.bits, self.key.dtype())
    }
}

/// [`classify`] for the hot path: the key and slot in registers rather than
/// an [`Arg`] in memory (copying the enum through the stack stalled store
/// forwarding), and an array's descriptor written straight into `array`.
/// `None` if the object is not an argument (the slow path says why).
#[inline(always)]
pub fn classify_quick(py: Python<'_>, object: &Bound<'_, PyAny>, array: &mut MaybeUninit<ArrayArg>) -> Option<Quick> {
    const WEAK_F64: ArgKey = ArgKey::scalar(ScalarType::F64, true);
    const WEAK_I64: ArgKey = ArgKey::scalar(ScalarType::I64, true);
    const BOOL: ArgKey = ArgKey::scalar(ScalarType::Bool, false);
    let pointer = object.as_ptr();
    // SAFETY: as in `classify`.
    unsafe {
        let ty = ffi::Py_TYPE(pointer);
        if ty == &raw mut ffi::PyFloat_Type {
            return Some(Quick { key: WEAK_F64, bits: ffi::PyFloat_AsDouble(pointer).to_bits() });
        }
        if ty == &raw mut ffi::PyLong_Type {
            let mut overflow: c_int = 0;
            let value = ffi::PyLong_AsLongLongAndOverflow(pointer, &mut overflow);
            if overflow == 0 && (value != -1 || ffi::PyErr_Occurred().is_null()) {
                return Some(Quick { key: WEAK_I64, bits: value as u64 });
            }
        } else if ty == &raw mut ffi::PyBool_Type {
            return Some(Quick { key: BOOL, bits: (pointer == ffi::Py_True()) as u64 });
        }
    }
    match classify(py, object).ok()? {
        Arg::Scalar { value, weak } => {
            Some(Quick { key: ArgKey::scalar(value.ty(), weak), bits: encode_scalar(value) })
        }
        Arg::Array(info) => {
            array.write(info.arg);
            Some(Quick { key: Arg::Array(info).key(), bits: 0 })
        }
    }
}

/// A Python `int`: int64, or uint64 above int64's range (as Numba types
/// it); beyond both, `IntOutOfRange`.
///
/// # Safety
///
/// `pointer` is a live `int` (or subclass) object and the GIL is held.
unsafe fn int(pointer: *mut ffi::PyObject) -> Result<Arg, Rejected> {
    let mut overflow: c_int = 0;
    let value = unsafe { ffi::PyLong_AsLongLongAndOverflow(pointer, &mut overflow) };
    if overflow == 0 {
        if value == -1 && unsafe { !ffi::PyErr_Occurred().is_null() } {
            unsafe { ffi::PyErr_Clear() };
            return Err(Rejected::Kind);
        }
        return Ok(Arg::Scalar { value: Scalar::I64(value), weak: true });
    }
    if overflow > 0 {
        let value = unsafe { ffi::PyLong_AsUnsignedLongLong(pointer) };
        if value == u64::MAX && unsafe { !ffi::PyErr_Occurred().is_null() } {
            unsafe { ffi::PyErr_Clear() };
            return Err(Rejected::IntOutOfRange);
        }
        return Ok(Arg::Scalar { value: Scalar::U64(value), weak: true });
    }
    Err(Rejected::IntOutOfRange)
}

/// A NumPy array, described in place.
///
/// # Safety
///
/// `pointer` is a live `numpy.ndarray` (or subclass) and the GIL is held.
unsafe fn array(pointer: *mut ffi::PyObject) -> Result<Arg, Rejected> {
    let fields = unsafe { &(*pointer.cast::<npyffi::PyArrayObject>()).fields };
    let ndim = fields.nd;
    if !(1..=3).contains(&ndim) {
        return Err(Rejected::Dimensions(ndim));
    }
    let descr = unsafe { &(*fields.descr).fields };
    let dtype = dtype_of_type_num(descr.type_num).ok_or(Rejected::Dtype)?;
    if descr.byteorder as u8 == NON_NATIVE_BYTE_ORDER {
        return Err(Rejected::ByteOrder);
    }
    if fields.flags & flags::NPY_ARRAY_ALIGNED == 0 {
        return Err(Rejected::Misaligned);
    }
    let item_size = dtype.size_bytes() as isize;
    let mut arg = ArrayArg { data: fields.data.cast::<u8>(), shape: [1; 3], strides: [0; 3] };
    for axis in 0..ndim as usize {
        // SAFETY: NumPy keeps `nd` extents and strides.
        let (extent, stride) = unsafe { (*fields.dimensions.add(axis), *fields.strides.add(axis)) };
        if stride % item_size != 0 {
            if extent > 1 {
                return Err(Rejected::Strides);
            }
            // An axis of extent 0 or 1 never moves the address.
            arg.shape[axis] = extent as i64;
            continue;
        }
        arg.shape[axis] = extent as i64;
        arg.strides[axis] = (stride / item_size) as i64;
    }
    let ndim = ndim as usize;
    Ok(Arg::Array(ArrayInfo {
        arg,
        ty: ArrayType { dtype, ndim: ndim as u8 },
        layout: Layout::of(&arg.shape[..ndim], &arg.strides[..ndim]),
        writable: fields.flags & flags::NPY_ARRAY_WRITEABLE != 0,
    }))
}

/// The byte-order character of a non-native dtype.
const NON_NATIVE_BYTE_ORDER: u8 = if cfg!(target_endian = "little") { b'>' } else { b'<' };

/// The dtype of a NumPy type number (C `long` is 32 or 64 bits by platform).
fn dtype_of_type_num(type_num: c_int) -> Option<ScalarType> {
    let long = if std::mem::size_of::<c_long>() == 8 { ScalarType::I64 } else { ScalarType::I32 };
    let unsigned_long = if std::mem::size_of::<c_long>() == 8 { ScalarType::U64 } else { ScalarType::U32 };
    Some(match type_num {
        n if n == NPY_TYPES::NPY_BOOL as c_int => ScalarType::Bool,
        n if n == NPY_TYPES::NPY_BYTE as c_int => ScalarType::I8,
        n if n == NPY_TYPES::NPY_UBYTE as c_int => ScalarType::U8,
        n if n == NPY_TYPES::NPY_SHORT as c_int => ScalarType::I16,
        n if n == NPY_TYPES::NPY_USHORT as c_int => ScalarType::U16,
        n if n == NPY_TYPES::NPY_INT as c_int => ScalarType::I32,
        n if n == NPY_TYPES::NPY_UINT as c_int => ScalarType::U32,
        n if n == NPY_TYPES::NPY_LONG as c_int => long,
        n if n == NPY_TYPES::NPY_ULONG as c_int => unsigned_long,
        n if n == NPY_TYPES::NPY_LONGLONG as c_int => ScalarType::I64,
        n if n == NPY_TYPES::NPY_ULONGLONG as c_int => ScalarType::U64,
        n if n == NPY_TYPES::NPY_FLOAT as c_int => ScalarType::F32,
        n if n == NPY_TYPES::NPY_DOUBLE as c_int => ScalarType::F64,
        _ => return None,
    })
}

/// A NumPy scalar of `dtype`, by value.
///
/// # Safety
///
/// `pointer` is a live NumPy scalar whose C type is `dtype`'s, and the GIL
/// is held.
unsafe fn numpy_scalar(py: Python<'_>, pointer: *mut ffi::PyObject, dtype: ScalarType) -> Result<Arg, Rejected> {
    let mut buffer = [0u64; 2];
    // SAFETY: NumPy writes the scalar's C value (at most 8 bytes for these
    // types) into the aligned buffer.
    unsafe { PY_ARRAY_API.PyArray_ScalarAsCtype(py, pointer, buffer.as_mut_ptr().cast::<c_void>()) };
    // Little- or big-endian, the value's bytes start at the buffer's start.
    let bytes = buffer[0].to_ne_bytes();
    let bits = match dtype.size_bytes() {
        1 => bytes[0] as u64,
        2 => u16::from_ne_bytes([bytes[0], bytes[1]]) as u64,
        4 => u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as u64,
        _ => buffer[0],
    };
    // `decode_scalar` reads only the low bytes a dtype has.
    Ok(Arg::Scalar { value: decode_scalar(bits, dtype), weak: false })
}

/// The NumPy type objects [`classify`] compares with.
struct NumpyTypes {
    ndarray: *mut ffi::PyTypeObject,
    scalars: Vec<(*mut ffi::PyTypeObject, ScalarType)>,
}

// SAFETY: type objects are immortal for the process's life (NumPy's static
// types) and only compared by address or passed to CPython with the GIL.
unsafe impl Send for NumpyTypes {}
unsafe impl Sync for NumpyTypes {}

impl NumpyTypes {
    fn scalar_dtype(&self, ty: *mut ffi::PyTypeObject) -> Option<ScalarType> {
        self.scalars.iter().find(|(scalar, _)| *scalar == ty).map(|(_, dtype)| *dtype)
    }
}

/// NumPy's types, looked up (importing NumPy) on first use; `None` if
/// NumPy cannot be imported.
fn numpy_types(py: Python<'_>) -> Option<&'static NumpyTypes> {
    static TYPES: PyOnceLock<Option<NumpyTypes>> = PyOnceLock::new();
    TYPES
        .get_or_init(py, || {
            py.import("numpy").ok()?;
            let long = if std::mem::size_of::<c_long>() == 8 { ScalarType::I64 } else { ScalarType::I32 };
            let unsigned_long = if std::mem::size_of::<c_long>() == 8 { ScalarType::U64 } else { ScalarType::U32 };
            let table = [
                (NpyTypes::PyBoolArrType_Type, ScalarType::Bool),
                (NpyTypes::PyByteArrType_Type, ScalarType::I8),
                (NpyTypes::PyShortArrType_Type, ScalarType::I16),
                (NpyTypes::PyIntArrType_Type, ScalarType::I32),
                (NpyTypes::PyLongArrType_Type, long),
                (NpyTypes::PyLongLongArrType_Type, ScalarType::I64),
                (NpyTypes::PyUByteArrType_Type, ScalarType::U8),
                (NpyTypes::PyUShortArrType_Type, ScalarType::U16),
                (NpyTypes::PyUIntArrType_Type, ScalarType::U32),
                (NpyTypes::PyULongArrType_Type, unsigned_long),
                (NpyTypes::PyULongLongArrType_Type, ScalarType::U64),
                (NpyTypes::PyFloatArrType_Type, ScalarType::F32),
                (NpyTypes::PyDoubleArrType_Type, ScalarType::F64),
            ];
            // SAFETY: NumPy is imported; these read its C API table.
            unsafe {
                Some(NumpyTypes {
                    ndarray: npyffi::get_type_object(py, NpyTypes::PyArray_Type),
                    scalars: table.into_iter().map(|(ty, dtype)| (npyffi::get_type_object(py, ty), dtype)).collect(),
                })
            }
        })
        .as_ref()
}

/// What an object is, in words, for messages: `a str`, `a 4-D array`,
/// `an array of dtype complex128`.
pub fn describe(object: &Bound<'_, PyAny>, rejected: Rejected) -> String {
    let type_name = object.get_type().name().map(|name| name.to_string()).unwrap_or_else(|_| "?".to_string());
    let dtype = || {
        object
            .getattr("dtype")
            .and_then(|dtype| dtype.str())
            .map(|text| text.to_string())
            .unwrap_or_else(|_| "?".to_string())
    };
    match rejected {
        Rejected::Kind if object.is_none() => "None".to_string(),
        Rejected::Kind => format!("{} {type_name}", article(&type_name)),
        Rejected::IntOutOfRange => "an int outside the int64 and uint64 ranges".to_string(),
        Rejected::Dimensions(ndim) => format!("a {ndim}-D array"),
        Rejected::Dtype => format!("an array of dtype {}", dtype()),
        Rejected::ByteOrder => {
            format!("an array of non-native byte order ({}); use arr.astype(arr.dtype.newbyteorder('='))", dtype())
        }
        Rejected::Misaligned => {
            "a misaligned array (its data is not aligned to its item size); pass a copy".to_string()
        }
        Rejected::Strides => "an array whose strides are not a multiple of its item size; pass a copy".to_string(),
    }
}

fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u' | 'A' | 'E' | 'I' | 'O' | 'U') => "an",
        _ => "a",
    }
}

// ---- Argument slots ----

/// How many arguments fit the stack buffers of [`with_slots`].
const INLINE_ARGS: usize = 8;

/// Runs `body` with one zeroed slot and room for one `ArrayArg` per
/// argument (left uninitialised: only array arguments write theirs): on the
/// stack for up to eight arguments, else on the heap.
#[inline(always)]
pub fn with_slots<R>(count: usize, body: impl FnOnce(&mut [u64], &mut [MaybeUninit<ArrayArg>]) -> R) -> R {
    if count <= INLINE_ARGS {
        let mut slots = [0u64; INLINE_ARGS];
        let mut arrays = [MaybeUninit::<ArrayArg>::uninit(); INLINE_ARGS];
        body(&mut slots[..count], &mut arrays[..count])
    } else {
        body(&mut vec![0; count], &mut vec![MaybeUninit::uninit(); count])
    }
}

/// Points the slot of every array argument (`is_array(i)`) at its
/// `ArrayArg`, once all are written (no later write moves or reborrows
/// them before the call). The caller has written `arrays[i]` for each.
#[inline]
pub fn link_arrays(slots: &mut [u64], arrays: &mut [MaybeUninit<ArrayArg>], is_array: impl Fn(usize) -> bool) {
    let base = arrays.as_mut_ptr().cast::<ArrayArg>();
    for (index, slot) in slots.iter_mut().enumerate() {
        if is_array(index) {
            // SAFETY: `index < slots.len() == arrays.len()`.
            *slot = unsafe { base.add(index) } as u64;
        }
    }
}

/// The slot of a scalar argument converted to `to` (if given).
#[inline]
pub fn scalar_slot(value: Scalar, to: Option<ScalarType>) -> u64 {
    match to {
        None => encode_scalar(value),
        Some(to) => encode_scalar(value.cast(to)),
    }
}

// ---- Results ----

/// A scalar as a Python `float`, `int` or `bool`.
#[inline]
pub fn scalar_to_py(py: Python<'_>, scalar: Scalar) -> PyResult<Py<PyAny>> {
    match scalar {
        Scalar::Bool(value) => value.into_py_any(py),
        Scalar::I8(value) => value.into_py_any(py),
        Scalar::I16(value) => value.into_py_any(py),
        Scalar::I32(value) => value.into_py_any(py),
        Scalar::I64(value) => value.into_py_any(py),
        Scalar::U8(value) => value.into_py_any(py),
        Scalar::U16(value) => value.into_py_any(py),
        Scalar::U32(value) => value.into_py_any(py),
        Scalar::U64(value) => value.into_py_any(py),
        Scalar::F32(value) => (value as f64).into_py_any(py),
        Scalar::F64(value) => value.into_py_any(py),
    }
}

/// A kernel's result as a Python value; an array result becomes a NumPy
/// array owning the kernel's allocation (no copy). `cast` converts a scalar
/// result to a declared result dtype.
pub fn value_to_py(py: Python<'_>, value: Value, cast: Option<ScalarType>) -> PyResult<Py<PyAny>> {
    match value {
        Value::Scalar(scalar) => scalar_to_py(py, cast.map_or(scalar, |to| scalar.cast(to))),
        Value::Tuple(items) => {
            let items = items.into_iter().map(|item| scalar_to_py(py, item)).collect::<PyResult<Vec<_>>>()?;
            Ok(PyTuple::new(py, items)?.into_any().unbind())
        }
        Value::Array(array) => Ok(kernjit::with_array!(array, array => array.into_pyarray(py).into_any().unbind())),
        Value::None => Ok(py.None()),
    }
}

// ---- Copies for the reference interpreter ----

/// The elements of `array` in C order, as owned data of its dtype.
///
/// # Safety
///
/// `array` describes a live, aligned NumPy array.
pub unsafe fn copy_in(array: &ArrayInfo) -> ArrayData {
    let mut values = Vec::new();
    // SAFETY: this function's contract.
    unsafe { for_each_offset(array, |offset| values.push(read_element(array, offset))) };
    let ndim = array.ty.ndim as usize;
    let shape: Vec<usize> = array.arg.shape[..ndim].iter().map(|&extent| extent as usize).collect();
    ArrayData::from_scalars(array.ty.dtype, &shape, &values)
}

/// Whether `data` (C order, same dtype and shape) differs from the NumPy
/// array's elements, bit for bit.
///
/// # Safety
///
/// As [`copy_in`].
pub unsafe fn differs(array: &ArrayInfo, data: &ArrayData) -> bool {
    let values = data.to_scalars();
    let mut index = 0;
    let mut differs = false;
    // SAFETY: this function's contract.
    unsafe {
        for_each_offset(array, |offset| {
            let value = values.get(index).copied().map(encode_scalar);
            differs |= value != Some(encode_scalar(read_element(array, offset)));
            index += 1;
        })
    };
    differs
}

/// Writes `data` (C order, same dtype and shape) into the NumPy array.
///
/// # Safety
///
/// As [`copy_in`], and the array is writable and nothing else accesses it.
pub unsafe fn copy_back(array: &ArrayInfo, data: &ArrayData) {
    let values = data.to_scalars();
    let mut index = 0;
    // SAFETY: this function's contract.
    unsafe {
        for_each_offset(array, |offset| {
            if let Some(value) = values.get(index) {
                write_element(array, offset, *value);
            }
            index += 1;
        })
    };
}

/// Calls `body` with the element offset of every element, in C order.
///
/// # Safety
///
/// As [`copy_in`].
unsafe fn for_each_offset(array: &ArrayInfo, mut body: impl FnMut(isize)) {
    let ArrayArg { shape, strides, .. } = array.arg;
    for i in 0..shape[0] {
        for j in 0..shape[1] {
            for k in 0..shape[2] {
                body((i * strides[0] + j * strides[1] + k * strides[2]) as isize);
            }
        }
    }
}

/// The element at `offset` elements from the array's data pointer.
///
/// # Safety
///
/// The offset is one [`for_each_offset`] gave for this live array.
unsafe fn read_element(array: &ArrayInfo, offset: isize) -> Scalar {
    let dtype = array.ty.dtype;
    let size = dtype.size_bytes() as isize;
    // SAFETY: the element lies in the array's buffer, aligned to its size.
    let bits = unsafe {
        let address = array.arg.data.offset(offset * size);
        match size {
            1 => address.read() as u64,
            2 => address.cast::<u16>().read() as u64,
            4 => address.cast::<u32>().read() as u64,
            _ => address.cast::<u64>().read(),
        }
    };
    decode_scalar(bits, dtype)
}

/// Writes `value` (of the array's dtype) at `offset` elements.
///
/// # Safety
///
/// As [`read_element`], and the array is writable.
unsafe fn write_element(array: &ArrayInfo, offset: isize, value: Scalar) {
    let size = array.ty.dtype.size_bytes() as isize;
    let bits = encode_scalar(value);
    // SAFETY: the element lies in the array's buffer, aligned to its size.
    unsafe {
        let address = array.arg.data.offset(offset * size);
        match size {
            1 => address.write(bits as u8),
            2 => address.cast::<u16>().write(bits as u16),
            4 => address.cast::<u32>().write(bits as u32),
            _ => address.cast::<u64>().write(bits),
        }
    }
}
