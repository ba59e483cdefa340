//! The embedding API: compile kernels from Rust and call them with Rust
//! scalars and `ndarray` views, without copying array data.
//!
//! [`Jit`] holds [`Options`] and turns sources into [`Module`]s;
//! [`Module::kernel`] gives a [`Kernel`], whose [`Kernel::call`] takes a
//! tuple of [`Arg`]s and specialises on their types through the module's code
//! cache; [`Kernel::typed`] checks a signature once and returns a [`Typed`]
//! handle whose calls only marshal arguments and jump into machine code.
//!
//! Arguments go straight into the ABI's slots (`jit::abi`): a scalar is
//! encoded in place, a view becomes an `ArrayArg` pointing at the view's own
//! memory with its own shape and strides (in elements, negative ones too).
//! Mutable views (`ArrayViewMut`, `&mut Array`) are written in place.
//! Read-only views (`ArrayView`, `&Array`) are only ever read: a kernel that
//! may store into such an argument — by a conservative analysis of the typed
//! program, `CompiledProgram::writes_param` — is refused with
//! [`Error::Signature`] before it runs.
//!
//! This module never type-checks kernels or generates code: it asks the
//! module's cache for compiled programs and calls them.

use crate::jit::abi::ArrayArg;
use crate::jit::engine::CompiledProgram;
use crate::jit::runtime::{decode_scalar, encode_scalar};
use crate::span::SourceFile;
use crate::types::{parse_signature, ArrayType, Layout, ScalarType, Signature, Type, MAX_NDIM};
use crate::value::{layout_of, ArrayData, Element, Scalar, Value};
use crate::{Error, Module, Options};
use ndarray::{Array, ArrayBase, ArrayD, ArrayView, ArrayViewMut, Data, DataMut, Dimension, Ix1, Ix2, Ix3};
use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

/// The most arguments one call takes (tuples of up to eight [`Arg`]s).
const MAX_ARGS: usize = 8;

// ---- Jit ----

/// Compiles kernel sources with one set of [`Options`].
///
/// Every [`Module`] it makes compiles its kernels with those options, lazily:
/// a kernel is specialised and compiled for a tuple of argument types on its
/// first call with them (or eagerly with [`Kernel::compile_for`] and
/// [`Kernel::typed`]).
///
/// ```
/// use kernjit::{Jit, Options};
///
/// let jit = Jit::with_options(Options { fastmath: false, ..Options::default() });
/// let module = jit.compile("def add(a, b):\n    return a + b\n")?;
/// let add = module.kernel("add")?;
/// let sum = add.call((2.0, 0.5))?;
/// assert_eq!(f64::try_from(sum)?, 2.5);
/// # Ok::<(), kernjit::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Jit {
    options: Options,
}

impl Jit {
    /// A compiler with the default [`Options`] (bounds checks on).
    pub fn new() -> Jit {
        Jit::default()
    }

    pub fn with_options(options: Options) -> Jit {
        Jit { options }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Parses `source` (named `<source>` in diagnostics). Syntax errors come
    /// back as [`Error::Compile`]; type errors come with the first call of
    /// each signature, since kernels are generic.
    pub fn compile(&self, source: &str) -> Result<Module, Error> {
        Ok(Module::parse("<source>", source.as_bytes())?.with_options(self.options.clone()))
    }

    /// Reads and parses a `.kern` file.
    pub fn compile_file(&self, path: impl AsRef<Path>) -> Result<Module, Error> {
        Ok(Module::parse_file(path)?.with_options(self.options.clone()))
    }
}

// ---- Module additions ----

/// What a module's code cache has done, for tuning and for tests.
///
/// Every dynamic call ([`Kernel::call`], [`Module::run`]) and every
/// [`Kernel::compile_for`] and [`Kernel::typed`] looks its signature up
/// once: a lookup that finds compiled code (or waits for another thread
/// compiling it) is a hit, one that compiles is a miss. Calls through a
/// [`Typed`] handle do not look anything up. Phase times are summed over
/// every compilation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
    /// Signatures evicted to stay within [`Options::cache_capacity`]; a
    /// later call of one compiles it again (another miss).
    pub evictions: u64,
    /// Signatures in the cache now (compiled, failed, or being compiled).
    pub cached: usize,
    /// Parsing the source (once per module).
    pub parse: Duration,
    /// Type inference and specialisation.
    pub infer: Duration,
    /// Lowering the typed program to Cranelift IR.
    pub lower: Duration,
    /// Cranelift: optimisation, instruction selection, register allocation
    /// and emission.
    pub cranelift: Duration,
    /// Linking and making the code executable.
    pub finalize: Duration,
}

impl Module {
    /// The kernel called `name`, or [`Error::UnknownKernel`] listing the
    /// kernels the module defines.
    pub fn kernel(&self, name: &str) -> Result<Kernel, Error> {
        let available = self.kernel_names();
        if !available.contains(&name) {
            let available = available.into_iter().map(str::to_string).collect();
            return Err(Error::UnknownKernel { name: name.to_string(), available });
        }
        Ok(Kernel { module: self.clone(), name: Arc::from(name), last_call: Arc::default() })
    }

    /// Cache hits and misses and compile time per phase so far.
    pub fn stats(&self) -> Stats {
        let cache = self.cache.stats();
        Stats {
            hits: cache.lookups.saturating_sub(cache.compiles),
            misses: cache.compiles,
            evictions: cache.evictions,
            cached: cache.cached,
            parse: self.parse_time,
            infer: cache.infer,
            lower: cache.lower,
            cranelift: cache.cranelift,
            finalize: cache.finalize,
        }
    }
}

// ---- Kernel ----

/// One kernel of a [`Module`], called with Rust values.
///
/// Arguments are a tuple of [`Arg`]s: scalars (`f64 f32 i64 i32 i16 i8 u64
/// u32 u16 u8 bool`) and `ndarray` arrays of one to three dimensions with
/// any strides — C or Fortran order, slices, negative strides — passed
/// without copying. A kernel writes through `ArrayViewMut` and `&mut Array`
/// arguments in place; `ArrayView` and `&Array` arguments are only read.
///
/// ```
/// use kernjit::ndarray::{array, s, Array1};
/// use kernjit::Jit;
///
/// let source = "\
/// def scale(x, out, k):
///     for i in range(len(x)):
///         out[i] = k * x[i]
/// ";
/// let module = Jit::new().compile(source)?;
/// let scale = module.kernel("scale")?;
/// let x = array![1.0, 2.0, 3.0];
/// let mut out = Array1::<f64>::zeros(3);
/// scale.call((x.slice(s![..;-1]), out.view_mut(), 2.0))?;
/// assert_eq!(out, array![6.0, 4.0, 2.0]);
///
/// // A kernel that writes an argument refuses a read-only view of it.
/// assert!(scale.call((x.view(), out.view(), 2.0)).is_err());
/// # Ok::<(), kernjit::Error>(())
/// ```
///
/// `Kernel` is cheap to clone and may be shared between threads: all clones
/// share the module's code cache, and each signature compiles once.
#[derive(Clone, Debug)]
pub struct Kernel {
    module: Module,
    name: Arc<str>,
    /// The signature of the last [`Kernel::call`] and what it resolved to,
    /// so that a repeated call skips the cache lookup (shared by clones).
    last_call: Arc<RwLock<Option<Arc<LastCall>>>>,
}

/// A resolved [`Kernel::call`]: argument types, layouts and writability,
/// the program and the argument conversions.
struct LastCall {
    types: Vec<Type>,
    layouts: Vec<Layout>,
    writable: u8,
    compiled: Arc<CompiledProgram>,
    casts: Vec<Option<ScalarType>>,
}

impl fmt::Debug for LastCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LastCall").field("types", &self.types).field("layouts", &self.layouts).finish_non_exhaustive()
    }
}

impl Kernel {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn module(&self) -> &Module {
        &self.module
    }

    /// Calls the kernel, compiling it for these argument types on first use.
    ///
    /// Scalars convert to annotated parameter types where the kernel has
    /// annotations; arrays must match exactly. The result is a [`Value`]:
    /// convert it with `TryFrom` (`f64::try_from(value)?`). Errors: type
    /// errors as [`Error::Compile`], arguments that do not fit (an array
    /// with more than three dimensions, a read-only view of an array the
    /// kernel may write) as [`Error::Signature`], failures while running as
    /// [`Error::Runtime`] with the source position.
    ///
    /// With [`Options::boundscheck`] off, keeping indices in bounds is the
    /// caller's responsibility, as in Numba.
    pub fn call<A: Args>(&self, mut args: A) -> Result<Value, Error> {
        let last = self.last_call.read().ok().and_then(|last| last.clone());
        if let Some(last) = last {
            if last.writable == A::WRITABLE_MASK && sealed::Args::matches(&args, &last.types, &last.layouts) {
                self.module.cache.record_hit(&last.compiled);
                let any_layout = || self.module.compiled(&self.name, &last.types, &vec![Layout::Any; last.types.len()]);
                return invoke(&last.compiled, any_layout, &self.module.file, &mut args, &last.casts);
            }
        }
        let types = args.kern_types();
        self.check_array_dimensions(&types)?;
        let layouts = sealed::Args::layouts(&args);
        let compiled = self.module.compiled(&self.name, &types, &layouts)?;
        let casts = self.plan(&compiled, &types, &A::writable())?;
        let any_layout = || self.module.compiled(&self.name, &types, &vec![Layout::Any; types.len()]);
        let result = invoke(&compiled, any_layout, &self.module.file, &mut args, &casts);
        if let Ok(mut last) = self.last_call.write() {
            *last = Some(Arc::new(LastCall { types, layouts, writable: A::WRITABLE_MASK, compiled, casts }));
        }
        result
    }

    /// Calls the kernel with [`Value`]s (as [`Module::run`]): array values
    /// are owned and updated in place.
    pub fn call_values(&self, args: &mut [Value]) -> Result<Value, Error> {
        self.module.run(&self.name, args)
    }

    /// Compiles the kernel now for one signature: text (`"scale(f64[:],
    /// f64[:], f64)"`, or just `"(f64[:], f64[:], f64)"`) or a
    /// [`Signature`]. Later calls with those types find the code in the cache.
    ///
    /// ```
    /// let module = kernjit::Jit::new().compile("def twice(x):\n    return 2 * x\n")?;
    /// let twice = module.kernel("twice")?;
    /// twice.compile_for("twice(i32)")?;
    /// assert_eq!(i32::try_from(twice.call((21i32,))?)?, 42);
    /// assert_eq!(module.stats().misses, 1);
    /// # Ok::<(), kernjit::Error>(())
    /// ```
    pub fn compile_for<S: ToSignature + ?Sized>(&self, signature: &S) -> Result<(), Error> {
        let signature = signature.to_signature().map_err(|message| self.signature_error(message))?;
        if !signature.kernel.is_empty() && signature.kernel != *self.name {
            return Err(self.signature_error(format!("the signature `{signature}` is for another kernel")));
        }
        self.check_array_dimensions(&signature.args)?;
        self.module.compiled(&self.name, &signature.args, &signature.layouts).map(drop)
    }

    /// A handle for calling the kernel with arguments `A` and result `R`,
    /// checked and compiled once, here.
    ///
    /// `A` is a tuple of [`Arg`] types whose kern types follow from the Rust
    /// types alone: scalars, and views and references of 1 to 3 fixed
    /// dimensions (not `IxDyn`). `R` is any [`FromValue`] type the kernel's
    /// result converts to. Each call then only encodes the arguments and
    /// jumps into machine code: no cache lookup and no type check.
    ///
    /// ```
    /// use kernjit::ndarray::{array, ArrayView1};
    ///
    /// let source = "\
    /// def dot(x, y):
    ///     total = 0.0
    ///     for i in range(len(x)):
    ///         total += x[i] * y[i]
    ///     return total
    /// ";
    /// let module = kernjit::Jit::new().compile(source)?;
    /// let dot = module.kernel("dot")?.typed::<(ArrayView1<f64>, ArrayView1<f64>), f64>()?;
    /// let (x, y) = (array![1.0, 2.0], array![3.0, 4.0]);
    /// assert_eq!(dot.call((x.view(), y.view()))?, 11.0);
    ///
    /// // The wrong result type is an error when the handle is made.
    /// assert!(module.kernel("dot")?.typed::<(ArrayView1<f64>, ArrayView1<f64>), i64>().is_err());
    /// # Ok::<(), kernjit::Error>(())
    /// ```
    pub fn typed<A: Args, R: FromValue>(&self) -> Result<Typed<A, R>, Error> {
        let mut types = Vec::with_capacity(A::LEN);
        for (index, ty) in A::static_types().into_iter().enumerate() {
            let Some(ty) = ty else {
                return Err(self.signature_error(format!(
                    "argument {} is an `IxDyn` array, whose number of dimensions is not part of its type; \
                     use a view of fixed dimensions (`ArrayView1/2/3`) or `Kernel::call`",
                    index + 1
                )));
            };
            types.push(ty);
        }
        self.check_array_dimensions(&types)?;
        // Compiled for contiguous arrays now; other layouts on first use.
        let layouts: Vec<Layout> =
            types.iter().map(|ty| if matches!(ty, Type::Array(_)) { Layout::C } else { Layout::Any }).collect();
        let compiled = self.module.compiled(&self.name, &types, &layouts)?;
        let casts = self.plan(&compiled, &types, &A::writable())?;
        if !R::accepts(compiled.ret()) {
            return Err(self.signature_error(format!(
                "the kernel returns {} for these arguments, which does not convert to `{}`",
                compiled.ret(),
                std::any::type_name::<R>()
            )));
        }
        Ok(Typed {
            compiled,
            any_layout: Arc::new(OnceLock::new()),
            module: self.module.clone(),
            types,
            name: self.name.clone(),
            casts,
            marker: PhantomData,
        })
    }

    /// Arrays must have 1 to 3 dimensions.
    fn check_array_dimensions(&self, types: &[Type]) -> Result<(), Error> {
        for (index, ty) in types.iter().enumerate() {
            if let Type::Array(array) = ty {
                if array.ndim == 0 || array.ndim as usize > MAX_NDIM {
                    return Err(self.signature_error(format!(
                        "argument {} has {} dimensions; kernels take arrays of 1 to {MAX_NDIM}",
                        index + 1,
                        array.ndim
                    )));
                }
            }
        }
        Ok(())
    }

    /// How arguments of `types` are passed to `compiled`: the conversion of
    /// each scalar to its parameter's type (`None` when equal). Refuses
    /// arguments whose types do not fit and read-only arrays the program may
    /// write (`writable[i]` says whether argument `i` may be written).
    fn plan(
        &self,
        compiled: &CompiledProgram,
        types: &[Type],
        writable: &[bool],
    ) -> Result<Vec<Option<ScalarType>>, Error> {
        let params = compiled.params();
        if params.len() != types.len() {
            return Err(self.signature_error(format!(
                "the kernel takes {} arguments but was given {}",
                params.len(),
                types.len()
            )));
        }
        let mut casts = Vec::with_capacity(types.len());
        for (index, (arg, param)) in types.iter().zip(params).enumerate() {
            let name = compiled.param_names().get(index).map_or("?", String::as_str);
            match (arg, param) {
                (Type::Scalar(from), Type::Scalar(to)) => casts.push((from != to).then_some(*to)),
                (Type::Array(_), Type::Array(_)) if arg == param => {
                    if !writable.get(index).copied().unwrap_or(false) && compiled.writes_param(index) {
                        return Err(self.signature_error(format!(
                            "the kernel may write to argument {} (`{name}`), which was passed as a read-only \
                             view; pass a mutable view (`view_mut()` or `&mut array`)",
                            index + 1
                        )));
                    }
                    casts.push(None);
                }
                _ => {
                    return Err(self.signature_error(format!(
                        "argument {} (`{name}`) is {arg} but the kernel takes {param}",
                        index + 1
                    )))
                }
            }
        }
        Ok(casts)
    }

    fn signature_error(&self, message: String) -> Error {
        Error::Signature { kernel: self.name.to_string(), message }
    }
}

// ---- Typed handles ----

/// A kernel specialised and compiled for arguments `A` and result `R`; made
/// by [`Kernel::typed`]. Calls skip the cache and every type check.
///
/// The code made with the handle assumes C-contiguous arrays; the first call
/// with another layout compiles (or finds in the cache) code for any
/// strides, which the handle then keeps. The handle keeps its module alive,
/// is cheap to clone and may be shared between threads.
pub struct Typed<A, R> {
    /// Code for C-contiguous arrays.
    compiled: Arc<CompiledProgram>,
    /// Code for any strides, once a call needed it.
    any_layout: Arc<OnceLock<Arc<CompiledProgram>>>,
    module: Module,
    types: Vec<Type>,
    name: Arc<str>,
    /// Per argument: the parameter's scalar type when it differs (an
    /// annotated parameter).
    casts: Vec<Option<ScalarType>>,
    /// No `A` or `R` is stored; covariant, so a handle for views of one
    /// lifetime takes views of any shorter one.
    marker: PhantomData<fn() -> (A, R)>,
}

impl<A: Args, R: FromValue> Typed<A, R> {
    /// Calls the kernel. Errors are runtime errors ([`Error::Runtime`]).
    pub fn call(&self, mut args: A) -> Result<R, Error> {
        let (compiled, file, casts) = (&self.compiled, &self.module.file, &self.casts);
        // One scalar result: straight from its slot, no `Value`.
        if let Some(slot) = invoke_scalar::<A, R>(compiled, || self.any_layout(), file, &mut args, casts) {
            let ret = compiled.ret();
            return R::from_slot(ret, slot?).ok_or_else(|| Error::Signature {
                kernel: self.name.to_string(),
                message: format!("cannot convert a {ret} result"),
            });
        }
        R::from_value(invoke(compiled, || self.any_layout(), file, &mut args, casts)?)
    }

    /// The code for any layout, compiled (or found in the cache) on first use.
    fn any_layout(&self) -> Result<Arc<CompiledProgram>, Error> {
        if let Some(compiled) = self.any_layout.get() {
            return Ok(compiled.clone());
        }
        let layouts = vec![Layout::Any; self.types.len()];
        let compiled = self.module.compiled(&self.name, &self.types, &layouts)?;
        Ok(self.any_layout.get_or_init(|| compiled).clone())
    }
}

impl<A, R> Typed<A, R> {
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<A, R> Clone for Typed<A, R> {
    fn clone(&self) -> Self {
        Typed {
            compiled: self.compiled.clone(),
            any_layout: self.any_layout.clone(),
            module: self.module.clone(),
            types: self.types.clone(),
            name: self.name.clone(),
            casts: self.casts.clone(),
            marker: PhantomData,
        }
    }
}

impl<A, R> fmt::Debug for Typed<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<String> = self.compiled.params().iter().map(Type::to_string).collect();
        write!(f, "Typed({}({}) -> {})", self.name, params.join(", "), self.compiled.ret())
    }
}

/// Encodes `args` into slots and runs `compiled` on them, or the program
/// `any_layout` gives (compiled for the same types and any strides) if an
/// array's layout is not the one `compiled` assumes.
///
/// `casts` must come from `Kernel::plan` for `compiled` and the kern types
/// of `args` (for a typed handle, the static types of `A`, which every value
/// of `A` has).
fn invoke<A: Args>(
    compiled: &CompiledProgram,
    any_layout: impl FnOnce() -> Result<Arc<CompiledProgram>, Error>,
    file: &Arc<SourceFile>,
    args: &mut A,
    casts: &[Option<ScalarType>],
) -> Result<Value, Error> {
    match run_encoded(compiled, any_layout, file, args, casts, false)? {
        Outcome::Value(value) => Ok(value),
        Outcome::Slot(_) => unreachable!("asked for a value"),
    }
}

/// [`invoke`] returning the raw result slot, when the program's result is
/// one scalar slot and `R` converts from it (`None` otherwise: the caller
/// goes through [`invoke`]).
fn invoke_scalar<A: Args, R: FromValue>(
    compiled: &CompiledProgram,
    any_layout: impl FnOnce() -> Result<Arc<CompiledProgram>, Error>,
    file: &Arc<SourceFile>,
    args: &mut A,
    casts: &[Option<ScalarType>],
) -> Option<Result<u64, Error>> {
    R::from_slot(compiled.ret(), 0)?;
    Some(run_encoded(compiled, any_layout, file, args, casts, true).map(|outcome| match outcome {
        Outcome::Slot(slot) => slot,
        Outcome::Value(_) => unreachable!("asked for a slot"),
    }))
}

enum Outcome {
    Value(Value),
    Slot(u64),
}

fn run_encoded<A: Args>(
    compiled: &CompiledProgram,
    any_layout: impl FnOnce() -> Result<Arc<CompiledProgram>, Error>,
    file: &Arc<SourceFile>,
    args: &mut A,
    casts: &[Option<ScalarType>],
    slot: bool,
) -> Result<Outcome, Error> {
    let mut buffer = SlotBuffer::new();
    args.encode(casts, &mut buffer);
    let fallback;
    let compiled = if buffer.layouts_satisfy(compiled.layouts()) {
        compiled
    } else {
        fallback = any_layout()?;
        &*fallback
    };
    let slots = buffer.slots();
    // SAFETY (`call_slots`' contract, also `call_slots_scalar`'s):
    // - `plan` matched every argument type with its parameter type one to one
    //   (scalars and arrays take one slot each), and scalars were converted
    //   to their parameter's type while encoding;
    // - each array slot points into `buffer`, which lives and is not touched
    //   until the call returns; each `ArrayArg` was made from an `ndarray`
    //   array or view (pointer to logical element 0, shape and strides in
    //   elements), so it describes initialised elements of one allocation;
    // - `args` is borrowed mutably for the whole call, so those elements stay
    //   alive: an `ArrayViewMut` or `&mut` array is an exclusive borrow, an
    //   `ArrayView` or `&` array a shared one under which nothing writes
    //   (element types have no interior mutability), and `plan` refused
    //   read-only arguments for parameters the program may write.
    let result = if slot {
        unsafe { compiled.call_slots_scalar(slots) }.map(Outcome::Slot)
    } else {
        unsafe { compiled.call_slots(slots) }.map(Outcome::Value)
    };
    result.map_err(|error| Error::Runtime { file: file.clone(), error })
}

/// Argument slots on the stack: one per argument, and beside them the
/// `ArrayArg` of each array argument.
struct SlotBuffer {
    slots: [u64; MAX_ARGS],
    /// The descriptor of each array argument (`None` for scalars).
    arrays: [Option<ArrayArg>; MAX_ARGS],
    len: usize,
}

impl SlotBuffer {
    fn new() -> SlotBuffer {
        SlotBuffer { slots: [0; MAX_ARGS], arrays: [None; MAX_ARGS], len: 0 }
    }

    /// Appends one argument. Tuples have at most `MAX_ARGS` elements; an
    /// argument beyond that is dropped, and the call then fails its slot
    /// count check instead of panicking.
    fn push(&mut self, encoded: Encoded) {
        let index = self.len;
        if index >= MAX_ARGS {
            return;
        }
        match encoded {
            Encoded::Scalar(bits) => self.slots[index] = bits,
            Encoded::Array(arg) => self.arrays[index] = Some(arg),
        }
        self.len += 1;
    }

    /// Whether every array argument has the layout `layouts` assumes for it.
    fn layouts_satisfy(&self, layouts: &[Layout]) -> bool {
        self.arrays[..self.len].iter().zip(0..).all(|(arg, index)| match arg {
            // Unused axes have extent 1, which every layout test skips.
            Some(arg) => {
                Layout::of(&arg.shape, &arg.strides).satisfies(layouts.get(index).copied().unwrap_or_default())
            }
            None => true,
        })
    }

    /// The slots, each array slot holding the address of its `ArrayArg` in
    /// `self.arrays` (taken once all are written, so none is invalidated).
    fn slots(&mut self) -> &[u64] {
        for index in 0..self.len {
            if let Some(arg) = &self.arrays[index] {
                self.slots[index] = std::ptr::from_ref(arg) as u64;
            }
        }
        &self.slots[..self.len]
    }
}

// ---- Arguments ----

/// A Rust value a kernel takes: a scalar (`f64 f32 i64 i32 i16 i8 u64 u32
/// u16 u8 bool`) or an `ndarray` array of those elements with 1 to 3
/// dimensions (`Ix1`, `Ix2`, `Ix3`, or `IxDyn` checked at the call) and any
/// strides:
///
/// - `ArrayView<T, D>` and `&ArrayBase<S, D>` are read-only: a kernel that
///   may store into one (directly, through a view or another name for it, or
///   in a function it passes it to) is refused with [`Error::Signature`];
/// - `ArrayViewMut<T, D>` and `&mut ArrayBase<S, D>` are written in place.
///
/// Arrays are never copied: the kernel works on the view's memory with its
/// strides (negative ones included). The trait is sealed, because its
/// implementations hand raw pointers to machine code.
pub trait Arg: sealed::Arg {
    /// The kern type of this argument: `f64`, `i32[:, :]`.
    fn kern_type(&self) -> Type;
}

/// The arguments of one call: a tuple of up to eight [`Arg`]s. A single
/// argument is written `(x,)`, none `()`.
pub trait Args: sealed::Args {
    /// The kern type of each argument, in order.
    fn kern_types(&self) -> Vec<Type>;
}

/// One argument as the ABI takes it.
pub enum Encoded {
    /// A scalar in its slot encoding.
    Scalar(u64),
    /// An array; its slot will hold the descriptor's address.
    Array(ArrayArg),
}

mod sealed {
    use super::{Encoded, Layout, ScalarType, SlotBuffer, Type};

    /// How an [`super::Arg`] is passed; not nameable outside the crate.
    pub trait Arg {
        /// Whether machine code may write through the argument.
        const WRITABLE: bool;
        /// The kern type of every value of this Rust type, when the type
        /// alone fixes it (`None` for `IxDyn` arrays).
        fn static_type() -> Option<Type>;
        /// The argument's slot, or its array descriptor. `cast` converts a
        /// scalar to a parameter's type first; arrays ignore it. The
        /// descriptor's pointer is valid while `self` stays borrowed.
        fn encode(&mut self, cast: Option<ScalarType>) -> Encoded;
        /// The layout class of an array argument ([`Layout::Any`] otherwise).
        fn layout(&self) -> Layout {
            Layout::Any
        }
    }

    /// How a tuple of arguments is passed.
    pub trait Args {
        const LEN: usize;
        fn static_types() -> Vec<Option<Type>>;
        fn writable() -> Vec<bool>;
        /// Encodes every argument, in order, converting scalar `i` with
        /// `casts[i]`.
        #[allow(private_interfaces)]
        fn encode(&mut self, casts: &[Option<ScalarType>], buffer: &mut SlotBuffer);
        /// The layout class of each argument.
        fn layouts(&self) -> Vec<Layout>;
        /// Bit `i` set if argument `i` is writable.
        const WRITABLE_MASK: u8;
        /// Whether the arguments have exactly these kern types and layouts.
        fn matches(&self, types: &[Type], layouts: &[Layout]) -> bool;
    }
}

macro_rules! scalar_arg {
    ($($t:ty),*) => {$(
        impl sealed::Arg for $t {
            const WRITABLE: bool = false;
            fn static_type() -> Option<Type> {
                Some(Type::Scalar(<$t as Element>::DTYPE))
            }
            #[inline]
            fn encode(&mut self, cast: Option<ScalarType>) -> Encoded {
                // Without a cast, straight from the value (copying the
                // `Scalar` through `map_or` stalled store forwarding: the
                // typed call took 44 ns instead of 25).
                match cast {
                    None => Encoded::Scalar(encode_scalar(self.to_scalar())),
                    Some(to) => Encoded::Scalar(encode_scalar(self.to_scalar().cast(to))),
                }
            }
        }

        impl Arg for $t {
            fn kern_type(&self) -> Type {
                Type::Scalar(<$t as Element>::DTYPE)
            }
        }
    )*};
}

scalar_arg!(bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

/// The kern type of an array of `T` with `ndim` dimensions (saturated to
/// 255, which the dimension check then refuses).
fn array_type<T: Element>(ndim: usize) -> Type {
    Type::Array(ArrayType { dtype: T::DTYPE, ndim: u8::try_from(ndim).unwrap_or(u8::MAX) })
}

/// The ABI's descriptor of an `ndarray` array whose logical element 0 is at
/// `data`: shape and strides in elements, unused axes of extent 1 and
/// stride 0. Axes beyond the third are not represented (the dimension check
/// refuses such arrays before any call).
fn array_arg<T>(data: *mut T, shape: &[usize], strides: &[isize]) -> ArrayArg {
    let mut arg = ArrayArg { data: data.cast::<u8>(), shape: [1; 3], strides: [0; 3] };
    for (axis, (&extent, &stride)) in shape.iter().zip(strides).enumerate().take(MAX_NDIM) {
        arg.shape[axis] = i64::try_from(extent).unwrap_or(i64::MAX);
        arg.strides[axis] = stride as i64;
    }
    arg
}

impl<T: Element, D: Dimension> sealed::Arg for ArrayView<'_, T, D> {
    fn layout(&self) -> Layout {
        layout_of(self.shape(), self.strides())
    }
    const WRITABLE: bool = false;
    fn static_type() -> Option<Type> {
        D::NDIM.map(array_type::<T>)
    }
    fn encode(&mut self, _cast: Option<ScalarType>) -> Encoded {
        // Never written through: `Kernel::plan` refuses programs that may.
        Encoded::Array(array_arg(self.as_ptr().cast_mut(), self.shape(), self.strides()))
    }
}

impl<T: Element, D: Dimension> Arg for ArrayView<'_, T, D> {
    fn kern_type(&self) -> Type {
        array_type::<T>(self.ndim())
    }
}

impl<T: Element, D: Dimension> sealed::Arg for ArrayViewMut<'_, T, D> {
    fn layout(&self) -> Layout {
        layout_of(self.shape(), self.strides())
    }
    const WRITABLE: bool = true;
    fn static_type() -> Option<Type> {
        D::NDIM.map(array_type::<T>)
    }
    fn encode(&mut self, _cast: Option<ScalarType>) -> Encoded {
        let data = self.as_mut_ptr();
        Encoded::Array(array_arg(data, self.shape(), self.strides()))
    }
}

impl<T: Element, D: Dimension> Arg for ArrayViewMut<'_, T, D> {
    fn kern_type(&self) -> Type {
        array_type::<T>(self.ndim())
    }
}

impl<T: Element, S: Data<Elem = T>, D: Dimension> sealed::Arg for &ArrayBase<S, D> {
    fn layout(&self) -> Layout {
        layout_of(self.shape(), self.strides())
    }
    const WRITABLE: bool = false;
    fn static_type() -> Option<Type> {
        D::NDIM.map(array_type::<T>)
    }
    fn encode(&mut self, _cast: Option<ScalarType>) -> Encoded {
        // Never written through: `Kernel::plan` refuses programs that may.
        Encoded::Array(array_arg(self.as_ptr().cast_mut(), self.shape(), self.strides()))
    }
}

impl<T: Element, S: Data<Elem = T>, D: Dimension> Arg for &ArrayBase<S, D> {
    fn kern_type(&self) -> Type {
        array_type::<T>(self.ndim())
    }
}

impl<T: Element, S: DataMut<Elem = T>, D: Dimension> sealed::Arg for &mut ArrayBase<S, D> {
    fn layout(&self) -> Layout {
        layout_of(self.shape(), self.strides())
    }
    const WRITABLE: bool = true;
    fn static_type() -> Option<Type> {
        D::NDIM.map(array_type::<T>)
    }
    fn encode(&mut self, _cast: Option<ScalarType>) -> Encoded {
        // `as_mut_ptr` first: it may unshare the data (and change strides).
        let data = self.as_mut_ptr();
        Encoded::Array(array_arg(data, self.shape(), self.strides()))
    }
}

impl<T: Element, S: DataMut<Elem = T>, D: Dimension> Arg for &mut ArrayBase<S, D> {
    fn kern_type(&self) -> Type {
        array_type::<T>(self.ndim())
    }
}

macro_rules! tuple_args {
    ($len:expr; $($name:ident $index:tt),*) => {
        impl<$($name: Arg),*> sealed::Args for ($($name,)*) {
            const LEN: usize = $len;
            fn static_types() -> Vec<Option<Type>> {
                vec![$(<$name as sealed::Arg>::static_type()),*]
            }
            fn writable() -> Vec<bool> {
                vec![$(<$name as sealed::Arg>::WRITABLE),*]
            }
            #[allow(private_interfaces, unused_variables)]
            fn encode(&mut self, casts: &[Option<ScalarType>], buffer: &mut SlotBuffer) {
                $(buffer.push(sealed::Arg::encode(&mut self.$index, casts.get($index).copied().flatten()));)*
            }
            fn layouts(&self) -> Vec<Layout> {
                vec![$(sealed::Arg::layout(&self.$index)),*]
            }
            const WRITABLE_MASK: u8 = 0 $(| ((<$name as sealed::Arg>::WRITABLE as u8) << $index))*;
            #[allow(unused_variables)]
            fn matches(&self, types: &[Type], layouts: &[Layout]) -> bool {
                types.len() == $len
                    && layouts.len() == $len
                    $(&& self.$index.kern_type() == types[$index]
                        && sealed::Arg::layout(&self.$index) == layouts[$index])*
            }
        }

        impl<$($name: Arg),*> Args for ($($name,)*) {
            fn kern_types(&self) -> Vec<Type> {
                vec![$(self.$index.kern_type()),*]
            }
        }
    };
}

tuple_args!(0;);
tuple_args!(1; A 0);
tuple_args!(2; A 0, B 1);
tuple_args!(3; A 0, B 1, C 2);
tuple_args!(4; A 0, B 1, C 2, D 3);
tuple_args!(5; A 0, B 1, C 2, D 3, E 4);
tuple_args!(6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_args!(7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_args!(8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);

// ---- Results ----

/// A Rust type a kernel's result converts to: [`Value`] (anything), `()`
/// (no value), a scalar type (exactly the result's dtype), a tuple of two
/// to four scalars, `ArrayD<T>`, or `Array1/2/3<T>`.
///
/// Each of these (but `Value`) also implements `TryFrom<Value>` with
/// [`Error`], for results of [`Kernel::call`].
pub trait FromValue: Sized {
    /// Whether every kernel result of type `ty` converts to `Self`.
    fn accepts(ty: &Type) -> bool;
    /// The conversion; an [`Error::Signature`] when `value` does not fit.
    fn from_value(value: Value) -> Result<Self, Error>;
    /// The conversion straight from a result's 8-byte slot (`jit::abi`), for
    /// types that take a one-slot result of type `ty` (scalars, `()`);
    /// `None` for the others, which go through [`Value`].
    #[doc(hidden)]
    fn from_slot(ty: &Type, slot: u64) -> Option<Self> {
        let _ = (ty, slot);
        None
    }
}

/// The error for a value that does not convert to `T`.
fn conversion_error<T>(value: &Value) -> Error {
    Error::Signature {
        kernel: String::new(),
        message: format!("a result of type {} does not convert to `{}`", value.ty(), std::any::type_name::<T>()),
    }
}

impl FromValue for Value {
    fn accepts(_: &Type) -> bool {
        true
    }
    fn from_value(value: Value) -> Result<Value, Error> {
        Ok(value)
    }
}

impl FromValue for () {
    fn accepts(ty: &Type) -> bool {
        *ty == Type::None
    }
    fn from_slot(ty: &Type, _slot: u64) -> Option<()> {
        (*ty == Type::None).then_some(())
    }
    fn from_value(value: Value) -> Result<(), Error> {
        match value {
            Value::None => Ok(()),
            other => Err(conversion_error::<()>(&other)),
        }
    }
}

impl TryFrom<Value> for () {
    type Error = Error;
    fn try_from(value: Value) -> Result<(), Error> {
        <() as FromValue>::from_value(value)
    }
}

/// The scalar of exactly dtype `T`.
fn scalar_of<T: Element>(scalar: Scalar) -> Option<T> {
    (scalar.ty() == T::DTYPE).then(|| T::from_scalar(scalar))
}

macro_rules! scalar_result {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn accepts(ty: &Type) -> bool {
                *ty == Type::Scalar(<$t as Element>::DTYPE)
            }
            fn from_slot(ty: &Type, slot: u64) -> Option<$t> {
                let dtype = <$t as Element>::DTYPE;
                (*ty == Type::Scalar(dtype)).then(|| <$t as Element>::from_scalar(decode_scalar(slot, dtype)))
            }
            fn from_value(value: Value) -> Result<$t, Error> {
                match value {
                    Value::Scalar(scalar) if scalar.ty() == <$t as Element>::DTYPE => {
                        Ok(<$t as Element>::from_scalar(scalar))
                    }
                    other => Err(conversion_error::<$t>(&other)),
                }
            }
        }

        impl TryFrom<Value> for $t {
            type Error = Error;
            fn try_from(value: Value) -> Result<$t, Error> {
                <$t as FromValue>::from_value(value)
            }
        }
    )*};
}

scalar_result!(bool, i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

macro_rules! tuple_result {
    ($len:expr; $($name:ident $item:ident $index:tt),*) => {
        impl<$($name: Element),*> FromValue for ($($name,)*) {
            fn accepts(ty: &Type) -> bool {
                *ty == Type::Tuple(vec![$($name::DTYPE),*])
            }
            fn from_value(value: Value) -> Result<Self, Error> {
                if let Value::Tuple(items) = &value {
                    if items.len() == $len {
                        if let ($(Some($item),)*) = ($(scalar_of::<$name>(items[$index]),)*) {
                            return Ok(($($item,)*));
                        }
                    }
                }
                Err(conversion_error::<Self>(&value))
            }
        }

        impl<$($name: Element),*> TryFrom<Value> for ($($name,)*) {
            type Error = Error;
            fn try_from(value: Value) -> Result<Self, Error> {
                <Self as FromValue>::from_value(value)
            }
        }
    };
}

tuple_result!(2; A a 0, B b 1);
tuple_result!(3; A a 0, B b 1, C c 2);
tuple_result!(4; A a 0, B b 1, C c 2, D d 3);

/// The `ArrayD<T>` inside `data`, if its dtype is `T`.
fn array_of<T: Element>(data: ArrayData) -> Result<ArrayD<T>, ArrayData> {
    if data.dtype() != T::DTYPE {
        return Err(data);
    }
    let boxed: Box<dyn Any> = crate::with_array!(data, array => Box::new(array));
    match boxed.downcast::<ArrayD<T>>() {
        Ok(array) => Ok(*array),
        Err(_) => unreachable!("the dtype identifies the element type"),
    }
}

impl<T: Element> FromValue for ArrayD<T> {
    fn accepts(ty: &Type) -> bool {
        matches!(ty, Type::Array(array) if array.dtype == T::DTYPE)
    }
    fn from_value(value: Value) -> Result<ArrayD<T>, Error> {
        match value {
            Value::Array(data) => array_of::<T>(data).map_err(|data| conversion_error::<Self>(&Value::Array(data))),
            other => Err(conversion_error::<Self>(&other)),
        }
    }
}

impl<T: Element> TryFrom<Value> for ArrayD<T> {
    type Error = Error;
    fn try_from(value: Value) -> Result<ArrayD<T>, Error> {
        <Self as FromValue>::from_value(value)
    }
}

macro_rules! fixed_array_result {
    ($($dim:ty => $ndim:expr),*) => {$(
        impl<T: Element> FromValue for Array<T, $dim> {
            fn accepts(ty: &Type) -> bool {
                matches!(ty, Type::Array(array) if array.dtype == T::DTYPE && array.ndim == $ndim)
            }
            fn from_value(value: Value) -> Result<Self, Error> {
                let error = conversion_error::<Self>(&value);
                let array = ArrayD::<T>::from_value(value).map_err(|_| error.clone())?;
                array.into_dimensionality::<$dim>().map_err(|_| error)
            }
        }

        impl<T: Element> TryFrom<Value> for Array<T, $dim> {
            type Error = Error;
            fn try_from(value: Value) -> Result<Self, Error> {
                <Self as FromValue>::from_value(value)
            }
        }
    )*};
}

fixed_array_result!(Ix1 => 1, Ix2 => 2, Ix3 => 3);

// ---- Signatures ----

/// A signature for [`Kernel::compile_for`]: text (`"scale(f64, f64[:])"`,
/// `"(f64, f64[:])"`), a [`Signature`], or a slice of [`Type`]s.
pub trait ToSignature {
    /// The signature (its kernel name is empty when not given), or why the
    /// text is not one.
    fn to_signature(&self) -> Result<Signature, String>;
}

impl ToSignature for str {
    fn to_signature(&self) -> Result<Signature, String> {
        parse_signature(self)
    }
}

impl ToSignature for String {
    fn to_signature(&self) -> Result<Signature, String> {
        parse_signature(self)
    }
}

impl ToSignature for Signature {
    fn to_signature(&self) -> Result<Signature, String> {
        Ok(self.clone())
    }
}

impl ToSignature for [Type] {
    fn to_signature(&self) -> Result<Signature, String> {
        Ok(Signature::new(String::new(), self.to_vec()))
    }
}
