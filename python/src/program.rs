//! `Program`, a parsed set of kernels, and the call paths every caller
//! shares.
//!
//! A call goes: arguments classified (`args.rs`) → a [`Plan`] (the compiled
//! program for their types and layouts, from the module's signature cache
//! or one of the eager signatures, and how each argument converts) →
//! [`execute`]: the slots go to machine code with the GIL released, and the
//! result comes back as a Python value. `Dispatcher` keeps its last plan to
//! skip the first two steps; `Program.call` and `Program.interpret` go all
//! the way every time.
//!
//! The reference interpreter path ([`Target::interpret`]) copies arrays into
//! owned values, runs `Module::interpret` and copies back the arrays it
//! changed, so its results and errors are the JIT's.

use crate::args::{self, Arg, Rejected};
use crate::errors::{to_py_err, CompileError};
use crate::sources;
use crate::threads;
use kernjit::jit::engine::CompiledProgram;
use kernjit::types::{parse_signature, promote};
use kernjit::{Error, Layout, Module, Options, RuntimeError, ScalarType, Signature, Type, Value};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Kernels parsed from sources, compiled per signature on first use.
#[pyclass(frozen, module = "kernjit._kernjit")]
pub struct Program {
    pub core: Arc<Core>,
}

/// What every handle on one program shares.
pub struct Core {
    pub module: Module,
    /// `(kernel, signature text)` of every signature compiled through this
    /// binding, in order of first compilation.
    signatures: Mutex<Vec<(String, String)>>,
    /// Calls answered by a dispatcher's memo of its last call (cache hits
    /// the module's cache never sees).
    memo_hits: AtomicU64,
}

impl Core {
    fn new(module: Module) -> Core {
        Core { module, signatures: Mutex::default(), memo_hits: AtomicU64::new(0) }
    }

    /// Counts a call that reused a dispatcher's last plan. The caller holds
    /// the GIL, which orders every such count: a plain load and store (no
    /// locked instruction on the hot path) lose none. (Without a GIL, which
    /// abi3 modules never run under, counts could be lost, nothing worse.)
    #[inline]
    pub fn record_memo_hit(&self, _attached: Python<'_>) {
        let hits = self.memo_hits.load(Ordering::Relaxed);
        self.memo_hits.store(hits + 1, Ordering::Relaxed);
    }

    /// Remembers that `kernel` was compiled for `signature`.
    fn record_signature(&self, kernel: &str, signature: String) {
        let mut signatures = self.signatures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if !signatures.iter().any(|(k, s)| k == kernel && *s == signature) {
            signatures.push((kernel.to_string(), signature));
        }
    }

    /// The compiled program for `types` and `layouts`, compiling it with
    /// the GIL released on first use.
    fn compiled(
        &self,
        py: Python<'_>,
        kernel: &str,
        types: &[Type],
        layouts: &[Layout],
    ) -> PyResult<Arc<CompiledProgram>> {
        let compiled = py.detach(|| self.module.compiled(kernel, types, layouts)).map_err(to_py_err)?;
        let signature = Signature { kernel: String::new(), args: types.to_vec(), layouts: compiled.layouts().to_vec() };
        self.record_signature(kernel, signature.to_string());
        Ok(compiled)
    }

    /// A runtime error as the Python exception for it.
    pub fn runtime_error(&self, error: RuntimeError) -> PyErr {
        to_py_err(Error::Runtime { file: Arc::new(self.module.source().clone()), error })
    }

    /// The parameter names of `kernel`'s `def`; a `ValueError` listing the
    /// kernels if there is no such kernel.
    fn kernel_params(&self, kernel: &str) -> PyResult<Vec<String>> {
        let ast = self.module.ast();
        match ast.functions.iter().find(|function| function.name.name == kernel) {
            Some(function) => Ok(function.params.iter().map(|param| param.name.name.clone()).collect()),
            None => {
                let available = ast.functions.iter().map(|function| function.name.name.clone()).collect();
                Err(to_py_err(Error::UnknownKernel { name: kernel.to_string(), available }))
            }
        }
    }
}

/// How one call runs: the program, and the conversions of the arguments
/// and the result.
pub struct Plan {
    pub compiled: Arc<CompiledProgram>,
    /// Per argument: the parameter's dtype when a scalar converts to it.
    pub casts: Vec<Option<Cast>>,
    /// The declared result dtype a scalar result converts to.
    pub result_cast: Option<ScalarType>,
    /// Whether the result is one slot (a scalar, or nothing).
    pub scalar_result: bool,
}

/// A scalar argument's conversion to its parameter's dtype.
#[derive(Clone, Copy, Debug)]
pub struct Cast {
    pub to: ScalarType,
    /// Eager signatures: a Python `int` converts only if it fits (another
    /// value of the same type is a different call).
    pub checked: bool,
}

impl Cast {
    /// The slot of `value` converted, or `None` if a checked conversion
    /// does not apply to it.
    #[inline]
    pub fn slot(cast: Option<Cast>, value: kernjit::Scalar, weak: bool) -> Option<u64> {
        match cast {
            None => Some(args::scalar_slot(value, None)),
            Some(cast) if cast.checked && weak && !weak_fits(value, cast.to) => None,
            Some(cast) => Some(args::scalar_slot(value, Some(cast.to))),
        }
    }
}

/// One eager signature: its types and layouts, its code (none in
/// interpret mode) and the declared result dtype.
pub struct Eager {
    pub text: String,
    pub types: Vec<Type>,
    pub layouts: Vec<Layout>,
    pub compiled: Option<Arc<CompiledProgram>>,
    pub result: Option<ScalarType>,
}

/// A kernel of a program as something to call, with its eager signatures.
pub struct Target {
    pub core: Arc<Core>,
    pub kernel: String,
    /// The kernel's parameter names (from its `def`).
    pub params: Vec<String>,
    pub eager: Option<Vec<Eager>>,
    pub interpret: bool,
}

impl Target {
    /// Binds `kernel` of `core`, compiling (or, to interpret, type-checking)
    /// its eager signatures now.
    pub fn new(
        py: Python<'_>,
        core: Arc<Core>,
        kernel: &str,
        signatures: Option<Vec<(String, Option<String>)>>,
        interpret: bool,
    ) -> PyResult<Target> {
        let params = core.kernel_params(kernel)?;
        let eager = match signatures {
            None => None,
            Some(signatures) => {
                let mut eager = Vec::with_capacity(signatures.len());
                for (text, result) in signatures {
                    eager.push(compile_eager(py, &core, kernel, &text, result.as_deref(), interpret)?);
                }
                Some(eager)
            }
        };
        Ok(Target { core, kernel: kernel.to_string(), params, eager, interpret })
    }

    /// Every argument classified; a `TypeError` as Python gives for the
    /// wrong number, or naming the parameter an argument cannot be.
    pub fn classify_all(&self, py: Python<'_>, objects: &Bound<'_, PyTuple>) -> PyResult<Vec<Arg>> {
        self.check_count(objects.len())?;
        let mut classified = Vec::with_capacity(objects.len());
        for (index, object) in objects.iter().enumerate() {
            match args::classify(py, &object) {
                Ok(arg) => classified.push(arg),
                Err(rejected) => return Err(self.rejected(index, &object, rejected)),
            }
        }
        Ok(classified)
    }

    fn check_count(&self, given: usize) -> PyResult<()> {
        let expected = self.params.len();
        if given == expected {
            return Ok(());
        }
        let name = &self.kernel;
        if given > expected {
            let plural = if expected == 1 { "" } else { "s" };
            let were = if given == 1 { "was" } else { "were" };
            return Err(PyTypeError::new_err(format!(
                "{name}() takes {expected} positional argument{plural} but {given} {were} given"
            )));
        }
        let missing: Vec<String> = self.params[given..].iter().map(|param| format!("'{param}'")).collect();
        let listed = match missing.as_slice() {
            [one] => one.clone(),
            [first, second] => format!("{first} and {second}"),
            [init @ .., last] => format!("{}, and {last}", init.join(", ")),
            [] => String::new(),
        };
        let plural = if missing.len() == 1 { "" } else { "s" };
        Err(PyTypeError::new_err(format!(
            "{name}() missing {} required positional argument{plural}: {listed}",
            missing.len()
        )))
    }

    /// The `TypeError` for an argument kernels cannot take.
    fn rejected(&self, index: usize, object: &Bound<'_, PyAny>, rejected: Rejected) -> PyErr {
        let what = args::describe(object, rejected);
        let message = format!("{} is {what}; {}", self.argument_name(index), args::ACCEPTED);
        if rejected == Rejected::IntOutOfRange {
            return pyo3::exceptions::PyOverflowError::new_err(message);
        }
        PyTypeError::new_err(message)
    }

    /// `argument 2 (`b`) of `f``.
    fn argument_name(&self, index: usize) -> String {
        match self.params.get(index) {
            Some(name) => format!("argument {} (`{name}`) of `{}`", index + 1, self.kernel),
            None => format!("argument {} of `{}`", index + 1, self.kernel),
        }
    }

    /// How arguments of these kinds are passed: the matching eager
    /// signature's code, or the code for their types and layouts (compiled
    /// now on first use); the scalar conversions; and the refusal, before
    /// anything runs, of read-only arrays the program may write.
    pub fn plan(&self, py: Python<'_>, args: &[Arg]) -> PyResult<Plan> {
        let (compiled, result_cast, checked) = match &self.eager {
            Some(eager) => {
                let signature = self.match_eager(eager, args)?;
                let compiled = match &signature.compiled {
                    Some(compiled) => compiled.clone(),
                    None => self.core.compiled(py, &self.kernel, &signature.types, &signature.layouts)?,
                };
                (compiled, signature.result, true)
            }
            None => {
                let types: Vec<Type> = args.iter().map(Arg::ty).collect();
                let layouts: Vec<Layout> = args.iter().map(Arg::layout).collect();
                (self.core.compiled(py, &self.kernel, &types, &layouts)?, None, false)
            }
        };
        let casts = self.casts(&compiled, args, checked)?;
        let result_cast = match (result_cast, compiled.ret()) {
            (Some(to), Type::Scalar(from)) if to != *from => Some(to),
            _ => None,
        };
        let scalar_result = matches!(compiled.ret(), Type::Scalar(_) | Type::None);
        Ok(Plan { compiled, casts, result_cast, scalar_result })
    }

    /// Per argument, its conversion to `compiled`'s parameter; errors for
    /// arguments that do not fit and for read-only arrays it may write.
    fn casts(&self, compiled: &CompiledProgram, args: &[Arg], checked: bool) -> PyResult<Vec<Option<Cast>>> {
        let params = compiled.params();
        if params.len() != args.len() {
            self.check_count(args.len())?;
            return Err(PyTypeError::new_err(format!(
                "{}() takes {} arguments but was given {}",
                self.kernel,
                params.len(),
                args.len()
            )));
        }
        let mut casts = Vec::with_capacity(args.len());
        for (index, (arg, param)) in args.iter().zip(params).enumerate() {
            match (arg, param) {
                (Arg::Scalar { value, .. }, Type::Scalar(to)) => {
                    casts.push((value.ty() != *to).then_some(Cast { to: *to, checked }))
                }
                (Arg::Array(array), Type::Array(param_type)) if array.ty == *param_type => {
                    if !array.writable && compiled.writes_param(index) {
                        return Err(self.read_only_error(index));
                    }
                    casts.push(None);
                }
                _ => {
                    return Err(PyTypeError::new_err(format!(
                        "{} is {} but the kernel takes {param}",
                        self.argument_name(index),
                        arg.ty()
                    )))
                }
            }
        }
        Ok(casts)
    }

    fn read_only_error(&self, index: usize) -> PyErr {
        PyValueError::new_err(format!(
            "{} is a read-only array (flags.writeable is False) but `{}` may write to it: write outputs to an \
             array you allocate (np.empty_like(a)), or pass a writable copy (a.copy()); arrays from Ray's object \
             store (task arguments, ray.get) are read-only",
            self.argument_name(index),
            self.kernel
        ))
    }

    /// The first eager signature the arguments match exactly, else the first
    /// they convert to safely; else a `TypeError`.
    fn match_eager<'e>(&self, eager: &'e [Eager], args: &[Arg]) -> PyResult<&'e Eager> {
        let exact = eager.iter().find(|signature| matches_signature(signature, args, true));
        if let Some(signature) =
            exact.or_else(|| eager.iter().find(|signature| matches_signature(signature, args, false)))
        {
            return Ok(signature);
        }
        let given: Vec<String> = args.iter().map(arg_text).collect();
        let declared: Vec<&str> = eager.iter().map(|signature| signature.text.as_str()).collect();
        Err(PyTypeError::new_err(format!(
            "No matching definition for argument type(s) ({}) of `{}`; its signatures are {}",
            given.join(", "),
            self.kernel,
            declared.join(", ")
        )))
    }

    /// Encodes `args` as `plan` says and runs its program.
    pub fn run(&self, py: Python<'_>, plan: &Plan, args: &[Arg]) -> PyResult<Py<PyAny>> {
        args::with_slots(args.len(), |slots, arrays| {
            for (index, arg) in args.iter().enumerate() {
                match arg {
                    Arg::Scalar { value, weak } => {
                        slots[index] = Cast::slot(plan.casts[index], *value, *weak)
                            .unwrap_or_else(|| args::scalar_slot(*value, plan.casts[index].map(|cast| cast.to)));
                    }
                    Arg::Array(array) => {
                        arrays[index].write(array.arg);
                    }
                }
            }
            args::link_arrays(slots, arrays, |index| matches!(args[index], Arg::Array(_)));
            execute(py, &self.core, plan, slots)
        })
    }

    /// Runs the kernel in the reference interpreter on copies of the
    /// arguments, and copies back into the NumPy arrays what it changed.
    pub fn interpret(&self, py: Python<'_>, objects: &Bound<'_, PyTuple>) -> PyResult<Py<PyAny>> {
        let args = self.classify_all(py, objects)?;
        let mut values: Vec<Value> = args.iter().map(|arg| arg.to_value()).collect();
        let mut result_cast = None;
        if let Some(eager) = &self.eager {
            let signature = self.match_eager(eager, &args)?;
            for (value, ty) in values.iter_mut().zip(&signature.types) {
                if let (Value::Scalar(scalar), Type::Scalar(to)) = (&*value, ty) {
                    *value = Value::Scalar(scalar.cast(*to));
                }
            }
            result_cast = signature.result;
        }
        // Read-only arrays: whether the program may write them is known
        // once it is compiled (the analysis lives with the compiled code).
        if args.iter().any(|arg| matches!(arg, Arg::Array(array) if !array.writable)) {
            let types: Vec<Type> = values.iter().map(Value::ty).collect();
            let layouts: Vec<Layout> = args.iter().map(Arg::layout).collect();
            let compiled = self.core.compiled(py, &self.kernel, &types, &layouts)?;
            for (index, arg) in args.iter().enumerate() {
                if matches!(arg, Arg::Array(array) if !array.writable) && compiled.writes_param(index) {
                    return Err(self.read_only_error(index));
                }
            }
        }
        let module = &self.core.module;
        let kernel = self.kernel.as_str();
        let outcome = py.detach(|| module.interpret(kernel, &mut values));
        // Partial writes stay visible after an error, as with the JIT.
        // Only arrays that changed are written, so that an array passed
        // twice is not overwritten by its unchanged copy.
        let changed: Vec<bool> = args
            .iter()
            .zip(&values)
            .map(|(arg, value)| match (arg, value) {
                // SAFETY: the argument tuple keeps the arrays alive.
                (Arg::Array(array), Value::Array(data)) => array.writable && unsafe { args::differs(array, data) },
                _ => false,
            })
            .collect();
        for ((arg, value), changed) in args.iter().zip(&values).zip(changed) {
            if let (Arg::Array(array), Value::Array(data), true) = (arg, value, changed) {
                // SAFETY: the array is alive, writable, and this thread holds
                // the GIL (the caller's Python code is not running).
                unsafe { args::copy_back(array, data) };
            }
        }
        match outcome {
            Ok(value) => args::value_to_py(py, value, result_cast),
            Err(error) => Err(to_py_err(error)),
        }
    }
}

/// Runs `plan`'s program on encoded `slots` with the GIL released (kept
/// for a brief one, see `CompiledProgram::runs_briefly`), its parallel
/// loops on the threads `threads::enter` reads.
#[inline(always)]
pub fn execute(py: Python<'_>, core: &Core, plan: &Plan, slots: &[u64]) -> PyResult<Py<PyAny>> {
    let compiled = &*plan.compiled;
    // SAFETY (`call_slots`' contract, also `call_slots_scalar`'s): the plan
    // matched each argument to its parameter one to one (scalars and arrays
    // take one slot each; `plan` refuses other kinds), so there is one slot
    // per parameter; scalars were encoded in their parameter's dtype; every
    // array slot holds the address of an `ArrayArg`, in the caller's stack
    // or heap buffer, untouched until the call returns, describing a live,
    // aligned NumPy array of the parameter's dtype and dimensions (with its
    // own strides, in elements), which the caller's argument tuple keeps
    // alive; read-only arrays were refused for parameters the program may
    // write. As with any extension that releases the GIL, a Python thread
    // writing the same array during the call races with it: that is the
    // caller's to avoid.
    // A parallel loop runs on the threads `os.environ` asks for now (Ray
    // sets them per task); read for such programs only.
    let _threads = if compiled.takes_default_threads() { threads::enter(py) } else { None };
    if plan.scalar_result {
        // A brief program (straight-line, no loop, call or allocation) runs
        // in nanoseconds: releasing and retaking the GIL would cost 20-35 ns
        // more than the run itself, so it keeps the GIL.
        let run = || unsafe { compiled.call_slots_scalar(slots) };
        let outcome = if compiled.runs_briefly() { run() } else { py.detach(run) };
        let bits = outcome.map_err(|error| core.runtime_error(error))?;
        match compiled.ret() {
            Type::Scalar(dtype) => {
                let scalar = kernjit::jit::runtime::decode_scalar(bits, *dtype);
                args::scalar_to_py(py, plan.result_cast.map_or(scalar, |to| scalar.cast(to)))
            }
            _ => Ok(py.None()),
        }
    } else {
        let outcome = py.detach(|| unsafe { compiled.call_slots(slots) });
        let value = outcome.map_err(|error| core.runtime_error(error))?;
        args::value_to_py(py, value, plan.result_cast)
    }
}

/// Whether a Python `int`'s value fits `to` (any value fits a float).
fn weak_fits(value: kernjit::Scalar, to: ScalarType) -> bool {
    if to.is_float() || !value.ty().is_int() {
        return true;
    }
    let (low, high) = to.int_range();
    (low..=high).contains(&value.to_i128())
}

/// Whether `args` match `signature`: arrays of its dtype and dimensions in
/// a layout it accepts; scalars of its types exactly, or (`exact` false)
/// converting safely: NumPy's `promote_types(arg, param) == param`, and for
/// a Python `int` or `float` (weak) any dtype of its kind holding the value
/// (an `int` also any float).
fn matches_signature(signature: &Eager, args: &[Arg], exact: bool) -> bool {
    signature.types.len() == args.len()
        && args.iter().zip(&signature.types).zip(&signature.layouts).all(|((arg, ty), layout)| match (arg, ty) {
            (Arg::Array(array), Type::Array(param)) => array.ty == *param && array.layout.satisfies(*layout),
            (Arg::Scalar { value, weak }, Type::Scalar(param)) => {
                let from = value.ty();
                from == *param
                    || (!exact
                        && if *weak && from.is_float() {
                            param.is_float()
                        } else if *weak {
                            param.is_float() || (param.is_int() && weak_fits(*value, *param))
                        } else {
                            promote(from, *param) == *param
                        })
            }
            _ => false,
        })
}

/// An argument's type as a signature writes it: `f64`, `f64[:, ::1]`.
fn arg_text(arg: &Arg) -> String {
    let signature = Signature { kernel: String::new(), args: vec![arg.ty()], layouts: vec![arg.layout()] };
    let text = signature.to_string();
    text.trim_start_matches('(').trim_end_matches(')').to_string()
}

/// Compiles one eager signature (type-checks it only, to interpret).
fn compile_eager(
    py: Python<'_>,
    core: &Core,
    kernel: &str,
    text: &str,
    result: Option<&str>,
    interpret: bool,
) -> PyResult<Eager> {
    let signature = parse_kern_signature(text)?;
    let result = match result {
        None => None,
        Some(name) => Some(ScalarType::from_name(name).ok_or_else(|| {
            PyTypeError::new_err(format!("`{name}` is not a result dtype (expected f64, f32, i64, ..., bool)"))
        })?),
    };
    let ret = if interpret {
        let program = py.detach(|| core.module.specialise(kernel, &signature.args)).map_err(to_py_err)?;
        core.record_signature(kernel, signature.to_string());
        let entry = program.entry_function();
        (None, entry.ret.clone())
    } else {
        let compiled = core.compiled(py, kernel, &signature.args, &signature.layouts)?;
        let ret = compiled.ret().clone();
        (Some(compiled), ret)
    };
    if let (Some(declared), ret) = (result, &ret.1) {
        if !matches!(ret, Type::Scalar(_) | Type::None) {
            return Err(CompileError::new_err(format!(
                "`{kernel}` returns {ret} for {text}, which does not convert to the declared result {declared}"
            )));
        }
    }
    Ok(Eager {
        text: signature.to_string(),
        types: signature.args,
        layouts: signature.layouts,
        compiled: ret.0,
        result,
    })
}

/// A signature in kern's text, `(f64[:, ::1], f64)`; a `TypeError` if it
/// is not one.
fn parse_kern_signature(text: &str) -> PyResult<Signature> {
    let signature = parse_signature(text)
        .map_err(|message| PyTypeError::new_err(format!("invalid signature `{text}`: {message}")))?;
    Ok(Signature { kernel: String::new(), ..signature })
}

/// `args` as a tuple (a tuple as is, any other sequence converted).
fn as_tuple<'py>(args: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    match args.cast::<PyTuple>() {
        Ok(tuple) => Ok(tuple.clone()),
        Err(_) => PyTuple::new(args.py(), args.try_iter()?.collect::<PyResult<Vec<_>>>()?),
    }
}

#[pymethods]
impl Program {
    #[new]
    #[pyo3(signature = (segments, *, boundscheck = true, fastmath = false, threads = None))]
    fn new(
        py: Python<'_>,
        segments: &Bound<'_, PyAny>,
        boundscheck: bool,
        fastmath: bool,
        threads: Option<i64>,
    ) -> PyResult<Program> {
        let threads = match threads {
            None => None,
            Some(threads) if threads >= 1 => Some(threads as usize),
            Some(threads) => return Err(PyValueError::new_err(format!("threads must be at least 1, got {threads}"))),
        };
        let sources = sources::sources(segments)?;
        let module = py.detach(|| Module::from_sources(sources)).map_err(to_py_err)?;
        let options = Options { boundscheck, fastmath, threads, ..Options::default() };
        Ok(Program { core: Arc::new(Core::new(module.with_options(options))) })
    }

    /// Parses a `.kern` file.
    #[staticmethod]
    #[pyo3(signature = (path, *, boundscheck = true))]
    fn load(py: Python<'_>, path: std::path::PathBuf, boundscheck: bool) -> PyResult<Program> {
        let bytes = std::fs::read(&path)?;
        let name = path.display().to_string();
        let module = py.detach(|| Module::parse(&name, &bytes)).map_err(to_py_err)?;
        let options = Options { boundscheck, ..Options::default() };
        Ok(Program { core: Arc::new(Core::new(module.with_options(options))) })
    }

    fn kernel_names(&self) -> Vec<String> {
        self.core.module.kernel_names().into_iter().map(str::to_string).collect()
    }

    /// Compiles `kernel` for a kern signature text.
    fn compile(&self, py: Python<'_>, kernel: &str, signature: &str) -> PyResult<()> {
        self.core.kernel_params(kernel)?;
        let signature = parse_kern_signature(signature)?;
        self.core.compiled(py, kernel, &signature.args, &signature.layouts).map(drop)
    }

    /// The signatures compiled so far.
    fn signatures(&self, kernel: &str) -> Vec<String> {
        let signatures = self.core.signatures.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        signatures.iter().filter(|(k, _)| k == kernel).map(|(_, signature)| signature.clone()).collect()
    }

    /// The typed program, every expression with its type.
    fn inspect_types(&self, py: Python<'_>, kernel: &str, signature: &str) -> PyResult<String> {
        self.core.kernel_params(kernel)?;
        let signature = parse_kern_signature(signature)?;
        let module = &self.core.module;
        let program = py.detach(|| module.specialise(kernel, &signature.args)).map_err(to_py_err)?;
        Ok(kernjit::tir::expression_types(&program, module.source()))
    }

    /// The Cranelift IR of every function.
    fn inspect_clif(&self, py: Python<'_>, kernel: &str, signature: &str) -> PyResult<String> {
        self.listing(py, kernel, signature, false)
    }

    /// The machine code of every function, disassembled.
    fn inspect_asm(&self, py: Python<'_>, kernel: &str, signature: &str) -> PyResult<String> {
        self.listing(py, kernel, signature, true)
    }

    /// Cache hits and misses and compile time per phase.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let stats = self.core.module.stats();
        let dict = PyDict::new(py);
        dict.set_item("hits", stats.hits + self.core.memo_hits.load(Ordering::Relaxed))?;
        dict.set_item("misses", stats.misses)?;
        dict.set_item("evictions", stats.evictions)?;
        dict.set_item("cached", stats.cached)?;
        dict.set_item("parse", stats.parse.as_secs_f64())?;
        dict.set_item("infer", stats.infer.as_secs_f64())?;
        dict.set_item("lower", stats.lower.as_secs_f64())?;
        dict.set_item("cranelift", stats.cranelift.as_secs_f64())?;
        dict.set_item("finalize", stats.finalize.as_secs_f64())?;
        Ok(dict)
    }

    /// Runs `kernel` compiled.
    fn call(&self, py: Python<'_>, kernel: &str, args: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let target = Target::new(py, self.core.clone(), kernel, None, false)?;
        let args = target.classify_all(py, &as_tuple(args)?)?;
        let plan = target.plan(py, &args)?;
        target.run(py, &plan, &args)
    }

    /// Runs `kernel` in the reference interpreter.
    fn interpret(&self, py: Python<'_>, kernel: &str, args: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        let target = Target::new(py, self.core.clone(), kernel, None, true)?;
        target.interpret(py, &as_tuple(args)?)
    }

    fn __repr__(&self) -> String {
        format!("<kernjit Program {} ({})>", self.core.module.source().name(), self.kernel_names().join(", "))
    }
}

impl Program {
    /// `inspect_clif` and `inspect_asm`: the listing of a fresh lowering
    /// with the program's options.
    fn listing(&self, py: Python<'_>, kernel: &str, signature: &str, asm: bool) -> PyResult<String> {
        self.core.kernel_params(kernel)?;
        let signature = parse_kern_signature(signature)?;
        let module = &self.core.module;
        py.detach(|| {
            let program = module.specialise(kernel, &signature.args).map_err(ListingError::Kernjit)?;
            let options = module.options();
            let lower_options = kernjit::jit::lower::LowerOptions {
                boundscheck: options.boundscheck,
                verify: false,
                layouts: signature.layouts.clone(),
                threads: options.threads,
                parallel_min_trips: options.parallel_min_trips,
                optimize: options.optimize,
            };
            let lowered = kernjit::jit::lower::lower_with_listings(&program, &lower_options, !asm, asm)
                .map_err(ListingError::Codegen)?;
            let (clif, asm_text) = lowered.into_listings();
            Ok(if asm { asm_text } else { clif }.unwrap_or_default())
        })
        .map_err(|error: ListingError| match error {
            ListingError::Kernjit(error) => to_py_err(error),
            ListingError::Codegen(message) => to_py_err(Error::Codegen(format!("{kernel}: {message}"))),
        })
    }
}

/// Why a listing failed (built without the GIL, turned into a Python
/// exception with it).
enum ListingError {
    Kernjit(Error),
    Codegen(String),
}
