//! kernjit's errors as Python exceptions.
//!
//! Syntax and type errors raise `CompileError` with the rendered diagnostic
//! (no colour). A fault while a kernel runs raises the exception a Python
//! user expects for it (`IndexError`, `ZeroDivisionError`, ...), whose
//! message starts with `file.py:LINE:COL: what happened` and goes on with
//! the rendered diagnostic. This is the one place errors are mapped.

use kernjit::span::SourceFile;
use kernjit::{Error, RuntimeError, RuntimeErrorKind};
use pyo3::create_exception;
use pyo3::exceptions::{
    PyException, PyIndexError, PyMemoryError, PyOSError, PyRecursionError, PySystemError, PyTypeError, PyValueError,
    PyZeroDivisionError,
};
use pyo3::PyErr;

create_exception!(
    _kernjit,
    CompileError,
    PyException,
    "A syntax or type error in a kernel (Numba's TypingError). `str(e)` is the rendered diagnostic \
     with the .py file, line and column."
);

/// The Python exception for a kernjit error.
pub fn to_py_err(error: Error) -> PyErr {
    match &error {
        Error::Compile { .. } => CompileError::new_err(error.render(false).trim_end().to_string()),
        Error::Runtime { file, error: runtime } => runtime_error(&error, file, runtime),
        Error::Io(message) => PyOSError::new_err(message.clone()),
        Error::Codegen(_) => PySystemError::new_err(error.render(false).trim_end().to_string()),
        Error::Signature { .. } => PyTypeError::new_err(error.to_string()),
        Error::UnknownKernel { .. } => PyValueError::new_err(error.to_string()),
    }
}

/// `file.py:12:9: x[12]: index 12 out of bounds for axis 0 with size 10`,
/// then the rendered diagnostic, as the exception the fault calls for.
fn runtime_error(error: &Error, file: &SourceFile, runtime: &RuntimeError) -> PyErr {
    let message =
        format!("{}: {}\n{}", location(file, runtime.span.start), runtime.kind, error.render(false).trim_end());
    match &runtime.kind {
        RuntimeErrorKind::IndexOutOfBounds { .. } => PyIndexError::new_err(message),
        RuntimeErrorKind::DivisionByZero => PyZeroDivisionError::new_err(message),
        RuntimeErrorKind::ZeroStep | RuntimeErrorKind::NegativePower { .. } => PyValueError::new_err(message),
        RuntimeErrorKind::BadArraySize { shape } if shape.iter().any(|&extent| extent < 0) => {
            PyValueError::new_err(message)
        }
        RuntimeErrorKind::BadArraySize { .. } => PyMemoryError::new_err(message),
        RuntimeErrorKind::RecursionTooDeep => PyRecursionError::new_err(message),
        RuntimeErrorKind::Internal { .. } => PySystemError::new_err(message),
    }
}

/// `file.py:LINE:COL` of a byte offset of a program's text.
pub fn location(file: &SourceFile, offset: u32) -> String {
    format!("{}:{}", file.name_at(offset), file.line_col(offset))
}
