//! The Python layer's segments as `kernjit::Source`s.
//!
//! A segment is `(file, text, first_line, indent, globals)`, and `globals`
//! maps each global name a kernel reads to a spec tuple (the encoding is
//! documented in `_kernjit.pyi`). Specs are built by the Python layer, not
//! by users: a malformed one is a `TypeError` that says what was expected.
//! A value kernels cannot hold (an int beyond 128 bits, a NumPy scalar of
//! another dtype) becomes `Global::Unsupported`, reported where it is used.

use kernjit::{Constant, Global, Globals, KnownModule, Scalar, ScalarType, Source};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString, PyTuple};

/// One `Source` per segment, in order.
pub fn sources(segments: &Bound<'_, PyAny>) -> PyResult<Vec<Source>> {
    let mut sources = Vec::new();
    for (position, segment) in segments.try_iter()?.enumerate() {
        sources.push(source(&segment?).map_err(|error| context(error, &format!("segment {position}")))?);
    }
    Ok(sources)
}

fn source(segment: &Bound<'_, PyAny>) -> PyResult<Source> {
    let expected = "a segment is (file, text, first_line, indent, globals)";
    let items = segment.cast::<PyTuple>().map_err(|_| PyTypeError::new_err(expected))?;
    if items.len() != 5 {
        return Err(PyTypeError::new_err(expected));
    }
    let globals = items.get_item(4)?;
    Ok(Source {
        file: items.get_item(0)?.extract()?,
        text: items.get_item(1)?.extract()?,
        first_line: items.get_item(2)?.extract()?,
        indent: items.get_item(3)?.extract()?,
        globals: if globals.is_none() { Globals::default() } else { self::globals(&globals)? },
    })
}

fn globals(dict: &Bound<'_, PyAny>) -> PyResult<Globals> {
    let dict = dict.cast::<PyDict>().map_err(|_| PyTypeError::new_err("globals must be a dict {name: spec}"))?;
    let mut names = Vec::with_capacity(dict.len());
    for (name, spec) in dict.iter() {
        let name: String = name.extract()?;
        let global = global(&spec).map_err(|error| context(error, &format!("global `{name}`")))?;
        names.push((name, global));
    }
    Ok(Globals { names })
}

fn global(spec: &Bound<'_, PyAny>) -> PyResult<Global> {
    let (tag, items) = tagged(spec)?;
    let text = |index: usize| -> PyResult<String> { item(&items, index)?.extract() };
    Ok(match (tag.as_str(), items.len()) {
        ("const", 2) => match constant(&item(&items, 1)?)? {
            Ok(constant) => Global::Constant(constant),
            Err(what) => Global::Unsupported(what),
        },
        ("module", 2) => Global::Module(known_module(&text(1)?)?),
        ("member", 3) => Global::Member(known_module(&text(1)?)?, text(2)?),
        ("kernel", 2) => Global::Kernel(text(1)?),
        ("unsupported", 2) => Global::Unsupported(text(1)?),
        _ => {
            return Err(PyTypeError::new_err(format!(
                "unknown global spec {}: expected (\"const\", c), (\"module\", m), (\"member\", m, name), \
                 (\"kernel\", name) or (\"unsupported\", what)",
                repr(spec)
            )))
        }
    })
}

/// A constant spec, or (`Err`) what it is when kernels cannot hold it.
fn constant(spec: &Bound<'_, PyAny>) -> PyResult<Result<Constant, String>> {
    let (tag, items) = tagged(spec)?;
    let value = |index: usize| item(&items, index);
    Ok(match (tag.as_str(), items.len()) {
        ("int", 2) => {
            let value = value(1)?;
            match value.extract::<i128>() {
                Ok(int) => Ok(Constant::Int(int)),
                Err(_) if value.is_instance_of::<PyInt>() => Err(format!("the int {}, too large", value.str()?)),
                Err(error) => return Err(error),
            }
        }
        ("float", 2) => Ok(Constant::Float(value(1)?.extract()?)),
        ("bool", 2) => Ok(Constant::Bool(value(1)?.extract()?)),
        ("np", 3) => {
            let dtype: String = value(1)?.extract()?;
            match ScalarType::from_name(&dtype) {
                Some(dtype) => Ok(Constant::Typed(typed_scalar(&value(2)?, dtype)?)),
                None => Err(format!("a NumPy {dtype} scalar")),
            }
        }
        ("tuple", 2) => {
            let mut constants = Vec::new();
            for element in value(1)?.try_iter()? {
                match constant(&element?)? {
                    Ok(constant) => constants.push(constant),
                    Err(what) => return Ok(Err(format!("a tuple holding {what}"))),
                }
            }
            Ok(Constant::Tuple(constants))
        }
        _ => {
            return Err(PyTypeError::new_err(format!(
                "unknown constant spec {}: expected (\"int\", v), (\"float\", v), (\"bool\", v), \
                 (\"np\", dtype, v) or (\"tuple\", [constant, ...])",
                repr(spec)
            )))
        }
    })
}

/// A NumPy scalar's value (a Python bool, int or float) in its dtype.
fn typed_scalar(value: &Bound<'_, PyAny>, dtype: ScalarType) -> PyResult<Scalar> {
    if value.is_instance_of::<PyBool>() {
        return Ok(Scalar::Bool(value.extract()?).cast(dtype));
    }
    if value.is_instance_of::<PyFloat>() {
        return Ok(Scalar::F64(value.extract()?).cast(dtype));
    }
    let int: i128 = value.extract()?;
    Ok(Scalar::from_i128_wrapping(int, dtype))
}

fn known_module(name: &str) -> PyResult<KnownModule> {
    match name {
        "math" => Ok(KnownModule::Math),
        "numpy" | "np" => Ok(KnownModule::Numpy),
        "numba" => Ok(KnownModule::Numba),
        other => Err(PyTypeError::new_err(format!("`{other}` is not a module kernels know (math, numpy, numba)"))),
    }
}

/// A spec's tag (its first item, a str) and all its items.
fn tagged<'py>(spec: &Bound<'py, PyAny>) -> PyResult<(String, Bound<'py, PyTuple>)> {
    let items = spec
        .cast::<PyTuple>()
        .map_err(|_| PyTypeError::new_err(format!("a spec is a tuple (\"tag\", ...), got {}", repr(spec))))?;
    let tag = items
        .get_item(0)
        .ok()
        .and_then(|tag| tag.cast_into::<PyString>().ok())
        .ok_or_else(|| PyTypeError::new_err(format!("a spec starts with a str tag, got {}", repr(spec))))?;
    Ok((tag.extract()?, items.clone()))
}

/// `repr(value)`, or a placeholder if even that fails.
pub fn repr(value: &Bound<'_, PyAny>) -> String {
    value.repr().map(|text| text.to_string()).unwrap_or_else(|_| "<unprintable object>".to_string())
}

fn item<'py>(items: &Bound<'py, PyTuple>, index: usize) -> PyResult<Bound<'py, PyAny>> {
    items.get_item(index)
}

/// `error` with `what` in front of its message (same exception type).
fn context(error: PyErr, what: &str) -> PyErr {
    Python::attach(|py| {
        let message = error.value(py).str().map(|text| text.to_string()).unwrap_or_default();
        if error.is_instance_of::<PyTypeError>(py) {
            PyTypeError::new_err(format!("{what}: {message}"))
        } else {
            error
        }
    })
}
