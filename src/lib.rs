//! kernjit: a JIT compiler for numeric kernels written in a Python subset.
//!
//! Kernels live in `.kern` files (see `grammar/kern.ebnf` and the README's
//! language reference). A source goes through one pipeline, data flowing one
//! way:
//!
//! ```text
//! bytes → lexer::lex → parser::parse (ast) → infer::infer (tir) → interp::interpret
//! ```
//!
//! The public surface is [`Jit`] (compiles sources with one set of
//! [`Options`]), [`Module`] (a parsed file), [`Kernel`] and [`Typed`] (call a
//! kernel with Rust scalars and `ndarray` views), [`Value`] and friends for
//! arguments and results, and [`Error`], which renders its diagnostics once.
//!
//! ```
//! use kernjit::{Module, Value, Scalar};
//! let module = Module::parse("demo.kern", b"def add(a, b):\n    return a + b\n").unwrap();
//! let mut args = [Value::Scalar(Scalar::I64(2)), Value::Scalar(Scalar::F64(0.5))];
//! let result = module.interpret("add", &mut args).unwrap();
//! assert_eq!(result, Value::Scalar(Scalar::F64(2.5)));
//! ```

mod api;
pub mod ast;
pub mod bench;
pub mod cli_args;
pub mod diag;
#[doc(hidden)]
pub mod fuzz_checks;
pub mod globals;
pub mod infer;
pub mod interp;
pub mod jit;
pub mod lexer;
pub mod mathlib;
pub mod parser;
pub mod show;
pub mod span;
mod stack;
pub mod testgen;
pub mod tir;
pub mod types;
pub mod value;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use api::{Arg, Args, FromValue, Jit, Kernel, Stats, ToSignature, Typed};
pub use diag::Diagnostic;
pub use globals::{Constant, Global, Globals, KnownModule};
/// The `ndarray` version kernjit's array arguments and results use.
pub use ndarray;
pub use span::{SourceFile, Span};
pub use types::{ArrayType, Layout, ScalarType, Signature, Type};
pub use value::{ArrayData, Element, RuntimeError, RuntimeErrorKind, Scalar, Value};

/// A parsed `.kern` file whose kernels can be specialised and run.
#[derive(Clone, Debug)]
pub struct Module {
    file: Arc<SourceFile>,
    ast: Arc<ast::Module>,
    options: Options,
    /// Machine code per (kernel, argument types), compiled on first call.
    cache: Arc<jit::cache::Cache>,
    /// How long parsing took (reported by [`Module::stats`]).
    parse_time: Duration,
}

/// How kernels are compiled and run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Check every array index (on by default). Off, an out-of-bounds index
    /// is the caller's responsibility, as in Numba.
    pub boundscheck: bool,
    /// Threads for `prange` loops, the calling thread included (`None`:
    /// `KERNJIT_NUM_THREADS`, else `OMP_NUM_THREADS`, else all cores). The
    /// results are the same for every count (see the `prange` section of
    /// the language reference).
    pub threads: Option<usize>,
    /// Trips below which a `prange` loop runs serially (`None`: estimated
    /// from the size of the loop's body, `tir::parallel_min_trips`; `Some(0)`:
    /// always in parallel, as tests want).
    pub parallel_min_trips: Option<u64>,
    /// Allow float reassociation. Reserved: results are IEEE-exact today.
    pub fastmath: bool,
    /// Run Cranelift's IR verifier on every function (about 20% of compile
    /// time; on in debug builds).
    pub verify: bool,
    /// Optimise the generated code (on by default). Off, Cranelift runs no
    /// optimisation passes; the results are the same, only slower.
    pub optimize: bool,
    /// The most signatures a module's code cache keeps (`None`, the default:
    /// no limit). For long-running hosts that call kernels with many
    /// signatures: past the capacity, compiling a new signature evicts the
    /// least recently used one, whose next call compiles it again. Code a
    /// caller still holds (a [`Typed`] handle, a call in flight) stays valid.
    /// `Some(0)` keeps one signature.
    pub cache_capacity: Option<usize>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            boundscheck: true,
            threads: None,
            parallel_min_trips: None,
            fastmath: false,
            verify: cfg!(debug_assertions),
            optimize: true,
            cache_capacity: None,
        }
    }
}

impl Module {
    /// Parses a source file. Syntax errors (all of them, where the parser can
    /// recover) come back as [`Error::Compile`].
    pub fn parse(name: &str, source: &[u8]) -> Result<Module, Error> {
        let started = Instant::now();
        let (file, bad_utf8) = SourceFile::from_bytes(name, source);
        let file = Arc::new(file);
        if let Some(offset) = bad_utf8 {
            // The file's text has U+FFFD in place of the bad bytes.
            let span = Span::new(offset, offset + char::REPLACEMENT_CHARACTER.len_utf8());
            let diagnostic = Diagnostic::error("E0101", span, "invalid UTF-8 in source file")
                .with_span_label("this byte is not valid UTF-8")
                .with_help("kern source files must be UTF-8 text");
            return Err(Error::Compile { file, diagnostics: vec![diagnostic] });
        }
        let parsed = parser::parse(&file);
        Module::from_parsed(file, parsed, started)
    }

    /// Parses a program made of functions taken from host files (the Python
    /// package's kernels and the kernels they call): each [`Source`] holds
    /// one or more top-level `def`s, the file and line its text comes from
    /// (for diagnostics that point at the real file), and the globals of its
    /// module, which [`globals::resolve`] applies to its functions.
    pub fn from_sources(sources: Vec<Source>) -> Result<Module, Error> {
        let started = Instant::now();
        let mut text = String::new();
        let mut globals = Vec::with_capacity(sources.len());
        let mut segments = Vec::with_capacity(sources.len());
        for source in sources {
            let start = text.len();
            text.push_str(&source.text);
            if !text.ends_with('\n') {
                text.push('\n');
            }
            segments.push(span::Segment {
                start,
                name: source.file,
                first_line: source.first_line,
                indent: source.indent,
            });
            globals.push((start, source.globals));
        }
        let file = Arc::new(SourceFile::from_segments(text, segments));
        let mut parsed = parser::parse(&file);
        for function in &mut parsed.module.functions {
            let start = function.span.start as usize;
            if let Some((_, globals)) = globals.iter().rev().find(|(segment, _)| *segment <= start) {
                parsed.diagnostics.extend(globals::resolve(function, globals));
            }
        }
        Module::from_parsed(file, parsed, started)
    }

    /// The module of a parsed file, or its syntax errors (`started`: when
    /// parsing began, for [`Module::stats`]).
    fn from_parsed(file: Arc<SourceFile>, parsed: parser::Parsed, started: Instant) -> Result<Module, Error> {
        if !parsed.diagnostics.is_empty() {
            return Err(Error::Compile { file, diagnostics: parsed.diagnostics });
        }
        Ok(Module {
            file,
            ast: Arc::new(parsed.module),
            options: Options::default(),
            cache: Arc::default(),
            parse_time: started.elapsed(),
        })
    }

    /// Reads and parses a file from disk.
    pub fn parse_file(path: impl AsRef<std::path::Path>) -> Result<Module, Error> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|error| Error::Io(format!("{}: {error}", path.display())))?;
        Module::parse(&path.display().to_string(), &bytes)
    }

    /// The same module compiling with `options` (and a fresh code cache).
    pub fn with_options(self, options: Options) -> Module {
        let cache = Arc::new(jit::cache::Cache::with_capacity(options.cache_capacity));
        Module { options, cache, ..self }
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Compiles `kernel` for argument `types` and array `layouts` (one per
    /// argument, [`Layout::Any`] for scalars), or takes it from the cache.
    /// The program may assume less than `layouts` (see `jit::cache`).
    pub fn compiled(
        &self,
        kernel: &str,
        types: &[Type],
        layouts: &[Layout],
    ) -> Result<Arc<jit::engine::CompiledProgram>, Error> {
        self.cache.get_or_compile(kernel, types, layouts, || {
            let started = Instant::now();
            let specialised = self.specialise(kernel, types);
            let inferred = Instant::now();
            let program = specialised
                .inspect_err(|_| self.cache.record_phases(inferred - started, jit::lower::CodegenPhases::default()))?;
            let options = jit::lower::LowerOptions {
                boundscheck: self.options.boundscheck,
                verify: self.options.verify,
                layouts: layouts.to_vec(),
                threads: self.options.threads,
                parallel_min_trips: self.options.parallel_min_trips,
                optimize: self.options.optimize,
            };
            let compiled = jit::engine::CompiledProgram::compile(&program, &options, false);
            let phases = compiled.as_ref().map(|compiled| compiled.phases).unwrap_or_default();
            self.cache.record_phases(inferred - started, phases);
            compiled
                .map(|compiled| (program, compiled))
                .map_err(|message| Error::Codegen(format!("{kernel}: {message}")))
        })
    }

    pub fn source(&self) -> &SourceFile {
        &self.file
    }

    pub fn ast(&self) -> &ast::Module {
        &self.ast
    }

    /// The names of every kernel (top-level function), in source order.
    pub fn kernel_names(&self) -> Vec<&str> {
        self.ast.functions.iter().map(|f| f.name.name.as_str()).collect()
    }

    /// Specialises and type-checks `kernel` for the given argument types.
    pub fn specialise(&self, kernel: &str, args: &[Type]) -> Result<tir::Program, Error> {
        infer::infer(&self.ast, kernel, args).map_err(|diagnostics| self.compile_error(diagnostics))
    }

    /// Type-checks every kernel whose parameters are all annotated (the others
    /// are generic and are checked per call signature).
    pub fn check_annotated(&self) -> Result<(), Error> {
        let diagnostics = infer::check_annotated(&self.ast);
        if diagnostics.is_empty() {
            Ok(())
        } else {
            Err(self.compile_error(diagnostics))
        }
    }

    /// Runs `kernel` in the reference interpreter. Array arguments are updated
    /// in place; scalars are converted to annotated parameter types where the
    /// kernel has annotations.
    pub fn interpret(&self, kernel: &str, args: &mut [Value]) -> Result<Value, Error> {
        let types: Vec<Type> = args.iter().map(Value::ty).collect();
        let program = self.specialise(kernel, &types)?;
        let entry = program.entry_function();
        for (arg, param) in args.iter_mut().zip(&entry.params) {
            if let (Value::Scalar(value), Type::Scalar(to)) = (&*arg, &entry.local(*param).ty) {
                *arg = Value::Scalar(value.cast(*to));
            }
        }
        interp::interpret(&program, args).map_err(|error| Error::Runtime { file: self.file.clone(), error })
    }

    /// Runs `kernel` as machine code, compiling it for these argument types on
    /// the first call (later calls with the same types reuse the code). Array
    /// arguments are updated in place.
    pub fn run(&self, kernel: &str, args: &mut [Value]) -> Result<Value, Error> {
        let types: Vec<Type> = args.iter().map(Value::ty).collect();
        let layouts: Vec<Layout> = args.iter().map(Value::layout).collect();
        let compiled = self.compiled(kernel, &types, &layouts)?;
        for (arg, param) in args.iter_mut().zip(compiled.params()) {
            if let (Value::Scalar(value), Type::Scalar(to)) = (&*arg, param) {
                *arg = Value::Scalar(value.cast(*to));
            }
        }
        compiled.call(args).map_err(|error| Error::Runtime { file: self.file.clone(), error })
    }

    fn compile_error(&self, diagnostics: Vec<Diagnostic>) -> Error {
        Error::Compile { file: self.file.clone(), diagnostics }
    }
}

/// One piece of a program parsed by [`Module::from_sources`].
#[derive(Clone, Debug, Default)]
pub struct Source {
    /// The file the text comes from, as diagnostics name it.
    pub file: String,
    /// Top-level `def`s (dedented, decorators removed).
    pub text: String,
    /// The line of the file where `text` starts (1-based).
    pub first_line: usize,
    /// How many columns of indentation were removed from every line of the
    /// text (a function nested in another one), added back to columns.
    pub indent: usize,
    /// The globals of the text's module.
    pub globals: Globals,
}

/// Everything that can go wrong, as data. [`Error::render`] gives the text.
#[derive(Clone, Debug)]
pub enum Error {
    /// Syntax or type errors, all of them.
    Compile { file: Arc<SourceFile>, diagnostics: Vec<Diagnostic> },
    /// An error while a kernel ran, with its source position.
    Runtime { file: Arc<SourceFile>, error: RuntimeError },
    /// A file could not be read.
    Io(String),
    /// Code generation failed (a bug in kernjit: the typed program was valid).
    Codegen(String),
    /// Rust arguments or a typed handle's types do not fit the kernel (see
    /// [`Kernel::call`] and [`Kernel::typed`]), or a result does not convert
    /// to the requested Rust type.
    Signature { kernel: String, message: String },
    /// [`Module::kernel`] was asked for a name the module does not define.
    UnknownKernel { name: String, available: Vec<String> },
}

impl Error {
    /// The diagnostics, rustc-style; `color` adds ANSI colours.
    pub fn render(&self, color: bool) -> String {
        match self {
            Error::Compile { file, diagnostics } => diag::render(diagnostics, file, color),
            Error::Runtime { file, error } => diag::render(&[runtime_diagnostic(error, file)], file, color),
            Error::Io(message) => format!("error: {message}\n"),
            Error::Codegen(message) => format!("error: code generation failed (a kernjit bug): {message}\n"),
            Error::Signature { .. } | Error::UnknownKernel { .. } => format!("error: {self}\n"),
        }
    }

    /// The diagnostics behind this error (a runtime error gives one).
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            Error::Compile { diagnostics, .. } => diagnostics.clone(),
            Error::Runtime { file, error } => vec![runtime_diagnostic(error, file)],
            Error::Io(_) | Error::Codegen(_) | Error::Signature { .. } | Error::UnknownKernel { .. } => Vec::new(),
        }
    }
}

/// A runtime error as a diagnostic: the message ends with ` at LINE:COL`.
fn runtime_diagnostic(error: &RuntimeError, file: &SourceFile) -> Diagnostic {
    let position = file.line_col(error.span.start);
    Diagnostic::error(error.kind.code(), error.span, format!("{} at {}", error.kind, position))
        .with_span_label("runtime error here")
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Compile { file, diagnostics } => {
                let lines: Vec<String> = diagnostics.iter().map(|d| d.short(file)).collect();
                f.write_str(&lines.join("\n"))
            }
            Error::Runtime { file, error } => {
                write!(
                    f,
                    "{}: runtime error[{}]: {} at {}",
                    file.name_at(error.span.start),
                    error.kind.code(),
                    error.kind,
                    file.line_col(error.span.start)
                )
            }
            Error::Io(message) | Error::Codegen(message) => f.write_str(message),
            Error::Signature { kernel, message } if kernel.is_empty() => f.write_str(message),
            Error::Signature { kernel, message } => write!(f, "kernel `{kernel}`: {message}"),
            Error::UnknownKernel { name, available } => {
                let names: Vec<String> = available.iter().map(|name| format!("`{name}`")).collect();
                match names.len() {
                    0 => write!(f, "no kernel named `{name}`: the module defines no kernels"),
                    _ => write!(f, "no kernel named `{name}`; the module defines {}", names.join(", ")),
                }
            }
        }
    }
}

impl std::error::Error for Error {}

/// The README's code examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
