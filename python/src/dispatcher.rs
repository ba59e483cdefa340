//! `Dispatcher`, a kernel as a Python callable: the hot path.
//!
//! A call classifies its arguments (`args::classify`: exact type checks,
//! NumPy arrays read in place) and compares their keys with the last call's
//! (`Memo`). On a match it encodes them straight into a stack buffer and
//! runs the remembered plan's code with the GIL released: no lookup, no
//! allocation, no copy. Otherwise the slow path (`Target::plan`) finds or
//! compiles the code, checks and converts the arguments, runs it, and
//! remembers the plan for the next call.
//!
//! Locking: the dispatcher's state sits in one `RwLock`, only ever held
//! briefly by a thread attached to the interpreter (never across a GIL
//! release), so holders do not wait for one another while a kernel runs:
//! a call takes its memo out as an `Arc` and runs it after unlocking.

use crate::args::{self, Arg, ArgKey};
use crate::program::{execute, Cast, Core, Plan, Program, Target};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A kernel as a callable; the Python layer subclasses it.
#[pyclass(subclass, frozen, module = "kernjit._kernjit")]
pub struct Dispatcher {
    name: Mutex<String>,
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    /// What `_set_program` bound.
    target: Option<Arc<Target>>,
    program: Option<Py<Program>>,
    /// The last call's argument keys and plan (for `target`).
    memo: Option<Arc<Memo>>,
}

/// A call's argument keys and what to run for them.
struct Memo {
    keys: Vec<ArgKey>,
    plan: Plan,
    core: Arc<Core>,
}

#[pymethods]
impl Dispatcher {
    /// Takes any arguments, so that a subclass's `__init__` may have its
    /// own signature; the name comes from the first if it is a str.
    #[new]
    #[pyo3(signature = (*args, **_kwargs))]
    fn new(args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>) -> Dispatcher {
        let name = args
            .get_item(0)
            .ok()
            .and_then(|name| name.cast_into::<PyString>().ok())
            .and_then(|name| name.extract::<String>().ok())
            .unwrap_or_else(|| "kernel".to_string());
        Dispatcher { name: Mutex::new(name), state: RwLock::default() }
    }

    fn __init__(&self, name: String) {
        *self.name.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = name;
    }

    /// Binds the dispatcher to `kernel` of `program`, compiling eager
    /// signatures now.
    #[pyo3(signature = (program, kernel, signatures = None, interpret = false))]
    fn _set_program(
        &self,
        py: Python<'_>,
        program: Bound<'_, Program>,
        kernel: &str,
        signatures: Option<Vec<(String, Option<String>)>>,
        interpret: bool,
    ) -> PyResult<()> {
        let core = program.get().core.clone();
        let target = Target::new(py, core, kernel, signatures, interpret)?;
        let bound = State { target: Some(Arc::new(target)), program: Some(program.unbind()), memo: None };
        // The old state is dropped after unlocking (dropping a `Py` may run
        // Python code).
        let old = std::mem::replace(&mut *self.write_state(), bound);
        drop(old);
        Ok(())
    }

    fn _program(&self, py: Python<'_>) -> Option<Py<Program>> {
        self.read_state().program.as_ref().map(|program| program.clone_ref(py))
    }

    fn _kernel(&self) -> Option<String> {
        self.read_state().target.as_ref().map(|target| target.kernel.clone())
    }

    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        slf: &Bound<'_, Self>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let this = slf.get();
        if let Some(kwargs) = kwargs.filter(|kwargs| !kwargs.is_empty()) {
            return Err(this.keywords_error(kwargs));
        }
        let memo = this.read_state().memo.clone();
        if let Some(memo) = memo {
            if let Some(result) = fast_call(py, &memo, args) {
                return result.map_err(|error| *error);
            }
        }
        this.slow_call(slf, args)
    }

    fn __repr__(&self) -> String {
        format!("<kernjit Dispatcher {}>", self.name.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

/// The call with the last call's plan, if the arguments have the same keys
/// (`None` otherwise: the caller takes the slow path). The error is boxed
/// so that the outcome is two words, returned in registers (a larger one
/// went through the stack and stalled store forwarding: 20 ns a call).
#[inline(always)]
fn fast_call(py: Python<'_>, memo: &Memo, objects: &Bound<'_, PyTuple>) -> Option<Result<Py<PyAny>, Box<PyErr>>> {
    let count = objects.len();
    if count != memo.keys.len() {
        return None;
    }
    args::with_slots(count, |slots, arrays| {
        for (index, key) in memo.keys.iter().enumerate() {
            let object = objects.get_borrowed_item(index).ok()?;
            let quick = args::classify_quick(py, &object, &mut arrays[index])?;
            if quick.key != *key {
                return None;
            }
            slots[index] = match memo.plan.casts[index] {
                None => quick.bits,
                cast => Cast::slot(cast, quick.scalar(), key.is_weak())?,
            };
        }
        args::link_arrays(slots, arrays, |index| memo.keys[index].is_array());
        memo.core.record_memo_hit(py);
        Some(execute(py, &memo.core, &memo.plan, slots).map_err(Box::new))
    })
}

impl Dispatcher {
    /// Binds (calling the subclass's `_build` if not bound yet), plans,
    /// runs, and remembers the plan.
    fn slow_call(&self, slf: &Bound<'_, Self>, objects: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        let py = slf.py();
        let target = match self.target() {
            Some(target) => target,
            None => {
                slf.call_method0("_build")?;
                self.target().ok_or_else(|| {
                    PyTypeError::new_err(format!(
                        "{}._build() did not call _set_program",
                        self.name.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
                    ))
                })?
            }
        };
        if target.interpret {
            return target.interpret(py, objects);
        }
        let args = target.classify_all(py, objects)?;
        let plan = target.plan(py, &args)?;
        let result = target.run(py, &plan, &args);
        let memo = Memo { keys: args.iter().map(Arg::key).collect(), plan, core: target.core.clone() };
        let old = {
            let mut state = self.write_state();
            let current = state.target.as_ref().is_some_and(|bound| Arc::ptr_eq(bound, &target));
            if current {
                state.memo.replace(Arc::new(memo))
            } else {
                None
            }
        };
        drop(old);
        result
    }

    fn target(&self) -> Option<Arc<Target>> {
        self.read_state().target.clone()
    }

    fn read_state(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_state(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn keywords_error(&self, kwargs: &Bound<'_, PyDict>) -> PyErr {
        let names: Vec<String> = kwargs.keys().iter().map(|key| key.to_string()).collect();
        let kernel = self
            .read_state()
            .target
            .as_ref()
            .map(|target| target.kernel.clone())
            .unwrap_or_else(|| self.name.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone());
        PyTypeError::new_err(format!(
            "{kernel}() got keyword argument(s) {}: kernjit kernels take positional arguments only",
            names.join(", ")
        ))
    }
}
