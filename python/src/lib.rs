//! kernjit's Python binding, the native module `kernjit._kernjit`.
//!
//! A thin layer, as pydantic-core and polars have: it converts Python values
//! to kernel arguments and results back, maps kernjit's errors to Python's
//! exceptions, and dispatches calls to compiled code. It never parses,
//! type-checks or generates code itself: the `kernjit` crate does, through
//! its public API. The pure-Python package (`kernjit/*.py`) holds the
//! decorator and the user-facing names; `kernjit/_kernjit.pyi` is the
//! contract between the two halves.
//!
//! Codemap:
//! - `program.rs`: `Program` (a parsed set of kernels) and the call paths
//!   shared by every caller: matching arguments to a signature, compiling,
//!   running compiled code, running the reference interpreter;
//! - `dispatcher.rs`: `Dispatcher`, a kernel as a callable, whose
//!   `__call__` is the hot path (it remembers its last call's signature);
//! - `args.rs`: Python arguments classified and encoded for the ABI without
//!   a copy, and results converted back to Python;
//! - `sources.rs`: the Python layer's segments and globals as
//!   `kernjit::Source`s;
//! - `errors.rs`: kernjit's errors as Python exceptions;
//! - `threads.rs`: the thread count of parallel loops, read per call from
//!   `os.environ` (Ray sets `OMP_NUM_THREADS` per task).

mod args;
mod dispatcher;
mod errors;
mod program;
mod sources;
mod threads;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Threads for later `prange` loops, `1 <= n <= get_max_threads()`, for the
/// whole process: it takes precedence over the environment.
#[pyfunction]
fn set_num_threads(py: Python<'_>, threads: i64) -> PyResult<()> {
    let threads = usize::try_from(threads).unwrap_or(0);
    kernjit::jit::pool::set_default_threads_within(threads, threads::from_environ(py)).map_err(PyValueError::new_err)
}

/// The thread count a `prange` loop started now uses: `set_num_threads`'s,
/// else `get_max_threads()`.
#[pyfunction]
fn get_num_threads(py: Python<'_>) -> usize {
    threads::current(py)
}

/// `KERNJIT_NUM_THREADS`, else `OMP_NUM_THREADS`, else the number of cores,
/// as `os.environ` says now.
#[pyfunction]
fn get_max_threads(py: Python<'_>) -> usize {
    threads::from_environ(py)
}

#[pymodule]
fn _kernjit(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    let compile_error = py.get_type::<errors::CompileError>();
    // Users meet it as `kernjit.CompileError` (the package re-exports it).
    compile_error.setattr("__module__", "kernjit")?;
    module.add("CompileError", compile_error)?;
    module.add_class::<program::Program>()?;
    module.add_class::<dispatcher::Dispatcher>()?;
    module.add_function(wrap_pyfunction!(set_num_threads, module)?)?;
    module.add_function(wrap_pyfunction!(get_num_threads, module)?)?;
    module.add_function(wrap_pyfunction!(get_max_threads, module)?)?;
    Ok(())
}
