//! How many threads a call's `prange` loops use: decided per call, from
//! Python's `os.environ`.
//!
//! The core reads `KERNJIT_NUM_THREADS` / `OMP_NUM_THREADS` once per process
//! (`pool::configured_threads`). That is wrong in a reused Ray worker: Ray
//! sets `OMP_NUM_THREADS` in `os.environ` to the CPUs of each task before it
//! runs and removes it afterwards, so one worker process runs a 1-CPU task,
//! then a 2-CPU one. So a call of a program with a parallel loop (and no
//! fixed thread count: `CompiledProgram::takes_default_threads`) reads the
//! two variables here, under the GIL, and enters the count as the calling
//! thread's `pool::AmbientThreads` while it runs. Precedence:
//! `set_num_threads` > `KERNJIT_NUM_THREADS` > `OMP_NUM_THREADS` > every
//! core.
//!
//! Why `os.environ` and not C's `getenv`: Python code changes the
//! environment through `os.environ` (which also calls `putenv`), and another
//! Python thread may do so while this one reads: `getenv` racing with
//! `putenv` is undefined behaviour, reading the dict under the GIL is not.
//!
//! Cost: two dict lookups in `os.environ._data` with keys encoded once (and
//! one to check `os.environ` is still the object first seen); nothing for
//! programs without a parallel loop.

use kernjit::jit::pool;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyString};
use pyo3::{ffi, intern};

/// The variables read, in order of precedence.
const NAMES: [&str; 2] = ["KERNJIT_NUM_THREADS", "OMP_NUM_THREADS"];

/// `os.environ` as first seen, for reading it without Python code.
struct Environ {
    /// The `os` module's namespace, to notice `os.environ` being replaced.
    os: Py<PyDict>,
    environ: Py<PyAny>,
    /// `os.environ._data` and [`NAMES`] as its keys (`encodekey`): bytes on
    /// POSIX, upper-case str on Windows. `None` if `os.environ` is not an
    /// `os._Environ`.
    data: Option<(Py<PyDict>, [Py<PyAny>; 2])>,
}

static ENVIRON: PyOnceLock<Option<Environ>> = PyOnceLock::new();

fn environ(py: Python<'_>) -> Option<&Environ> {
    ENVIRON
        .get_or_init(py, || {
            let os = py.import("os").ok()?;
            let environ = os.getattr("environ").ok()?;
            let data = (|| -> PyResult<(Py<PyDict>, [Py<PyAny>; 2])> {
                let data = environ.getattr("_data")?.cast_into::<PyDict>()?;
                let encode = environ.getattr("encodekey")?;
                let keys = [encode.call1((NAMES[0],))?.unbind(), encode.call1((NAMES[1],))?.unbind()];
                Ok((data.unbind(), keys))
            })()
            .ok();
            Some(Environ { os: os.dict().unbind(), environ: environ.unbind(), data })
        })
        .as_ref()
}

/// A variable's value as a thread count, if it is one.
fn parse(value: &Bound<'_, PyAny>) -> Option<usize> {
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return std::str::from_utf8(bytes.as_bytes()).ok().and_then(pool::parse_thread_count);
    }
    let text = value.cast::<PyString>().ok()?.to_cow().ok()?;
    pool::parse_thread_count(&text)
}

/// `KERNJIT_NUM_THREADS`, else `OMP_NUM_THREADS`, else every core, as
/// `os.environ` says now (at most `pool::MAX_THREADS`).
pub fn from_environ(py: Python<'_>) -> usize {
    let [kernjit, omp] = read(py);
    kernjit.or(omp).unwrap_or_else(pool::all_cores).clamp(1, pool::MAX_THREADS)
}

/// The two variables as thread counts (`None`: unset or not a count).
fn read(py: Python<'_>) -> [Option<usize>; 2] {
    let Some(cached) = environ(py) else { return [None, None] };
    let environ_key = intern!(py, "environ");
    if let Some((data, keys)) = &cached.data {
        // SAFETY: this thread is attached (`py`), every pointer is a live
        // object we hold, and no Python code runs between a borrowed
        // reference's lookup and its last use (a bytes key hashes without
        // running any).
        unsafe {
            let current = ffi::PyDict_GetItemWithError(cached.os.as_ptr(), environ_key.as_ptr());
            if current == cached.environ.as_ptr() {
                return [0, 1].map(|index| {
                    let value = ffi::PyDict_GetItemWithError(data.as_ptr(), keys[index].as_ptr());
                    if value.is_null() {
                        ffi::PyErr_Clear();
                        None
                    } else if ffi::PyBytes_CheckExact(value) != 0 {
                        let mut text: *mut std::ffi::c_char = std::ptr::null_mut();
                        let mut len: ffi::Py_ssize_t = 0;
                        if ffi::PyBytes_AsStringAndSize(value, &mut text, &mut len) != 0 {
                            ffi::PyErr_Clear();
                            return None;
                        }
                        let bytes = std::slice::from_raw_parts(text.cast::<u8>(), len as usize);
                        std::str::from_utf8(bytes).ok().and_then(pool::parse_thread_count)
                    } else {
                        parse(&Bound::from_borrowed_ptr(py, value))
                    }
                });
            }
            ffi::PyErr_Clear();
        }
    }
    // `os.environ` replaced (by a test, say) or not an `os._Environ`: ask
    // it as Python code would.
    let Ok(Some(current)) = cached.os.bind(py).get_item(environ_key) else { return [None, None] };
    NAMES.map(|name| {
        let value = current.call_method1(intern!(py, "get"), (name,)).ok()?;
        if value.is_none() {
            None
        } else {
            parse(&value)
        }
    })
}

/// For a call of a program that `takes_default_threads`: the count from
/// `os.environ` entered as this thread's default while the guard lives
/// (`None` when `set_num_threads` chose the count: it takes precedence).
#[inline]
pub fn enter(py: Python<'_>) -> Option<pool::AmbientThreads> {
    match pool::threads_override() {
        Some(_) => None,
        None => Some(pool::AmbientThreads::enter(from_environ(py))),
    }
}

/// What `get_num_threads` reports: the count a parallel loop called now
/// from this thread uses.
pub fn current(py: Python<'_>) -> usize {
    pool::threads_override().unwrap_or_else(|| from_environ(py))
}
