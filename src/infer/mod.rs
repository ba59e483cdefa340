//! Name resolution and type inference: AST + argument types → typed IR.
//!
//! Entry point [`infer`]. A kernel is generic; each tuple of argument types is
//! one *specialisation*, inferred in two stages:
//!
//! 1. **Inference** ([`Inferrer::ensure_inferred`]): walk the body repeatedly,
//!    joining every value assigned to each local, until no local type and no
//!    return type changes (a fixpoint; types only move up the promotion
//!    lattice, so it terminates). Errors are not reported here: a provisional
//!    type may still be too low.
//! 2. **Emission** ([`Inferrer::ensure_emitted`]): one final walk with the
//!    converged types builds the typed IR, inserts explicit casts and reports
//!    every error.
//!
//! Calls specialise the callee on the caller's argument types. Recursion reads
//! the callee's provisional return type (annotated, or inferred from the
//! non-recursive branches); a specialisation whose result depended on a
//! still-moving provisional type is not cached and is inferred again later.
//!
//! This module reads the AST and writes the typed IR; it never evaluates code.

mod builtins;
mod expr;
mod prange;
mod stmt;

use crate::ast;
use crate::diag::Diagnostic;
use crate::span::Span;
use crate::tir;
use crate::types::{promote, ArrayType, ScalarType, Type, MAX_NDIM};
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

/// How many times one specialisation's body may be re-walked before we give up.
const MAX_FIXPOINT_ITERATIONS: usize = 64;
/// How deep specialisations may nest (calls of calls of ...) during inference.
const MAX_SPECIALISATION_DEPTH: usize = 1000;
/// How many specialisations one program may have.
const MAX_SPECIALISATIONS: usize = 10_000;

/// Specialises `kernel` of `module` for `args` and returns the typed program,
/// or every error found.
pub fn infer(module: &ast::Module, kernel: &str, args: &[Type]) -> Result<tir::Program, Vec<Diagnostic>> {
    let functions = Functions::new(module);
    infer_with(module, &functions, kernel, args, true)
}

/// Type-checks every function of `module` whose parameters are all annotated
/// (see [`annotated_signature`]) and returns every error, each duplicate
/// definition once. The names are indexed once for all of them, so a module
/// of many kernels is checked in linear time.
pub fn check_annotated(module: &ast::Module) -> Vec<Diagnostic> {
    let functions = Functions::new(module);
    let mut diagnostics = functions.duplicates.clone();
    for function in &module.functions {
        match annotated_signature(function) {
            Ok(Some(args)) => {
                if let Err(errors) = infer_with(module, &functions, &function.name.name, &args, false) {
                    diagnostics.extend(errors);
                }
            }
            Ok(None) => {}
            Err(errors) => diagnostics.extend(errors),
        }
    }
    diagnostics
}

/// [`infer`] with the module's names already indexed; `duplicates` reports
/// the functions defined twice.
fn infer_with(
    module: &ast::Module,
    functions: &Functions,
    kernel: &str,
    args: &[Type],
    duplicates: bool,
) -> Result<tir::Program, Vec<Diagnostic>> {
    let mut cx = Inferrer::new(module, &functions.index);
    if duplicates {
        cx.diagnostics.extend(functions.duplicates.iter().cloned());
    }
    let Some(&def_index) = cx.function_index.get(kernel) else {
        let mut diagnostic =
            Diagnostic::error("E0302", Span::default(), format!("no kernel named `{kernel}` in this file"));
        let names: Vec<&str> = module.functions.iter().map(|f| f.name.name.as_str()).collect();
        diagnostic = diagnostic.with_help(if names.is_empty() {
            "the file defines no functions".to_string()
        } else {
            format!("the kernels in this file are: {}", names.join(", "))
        });
        return Err(vec![diagnostic]);
    };
    let def = &module.functions[def_index];
    let entry = if args.len() != def.params.len() {
        cx.diagnostics.push(
            Diagnostic::error(
                "E0304",
                def.name.span,
                format!(
                    "kernel `{kernel}` takes {} argument{} but {} {} given",
                    def.params.len(),
                    plural(def.params.len()),
                    args.len(),
                    was_were(args.len())
                ),
            )
            .with_span_label("defined here"),
        );
        None
    } else {
        match cx.parameter_types(def_index, args, None) {
            Ok(params) => {
                let spec = cx.spec_for(def_index, params);
                cx.ensure_emitted(spec)
            }
            Err(errors) => {
                cx.diagnostics.extend(errors);
                None
            }
        }
    };
    match entry {
        Some(entry) if cx.diagnostics.is_empty() => {
            let functions = cx.functions.into_iter().map(|f| f.expect("every reserved function is emitted")).collect();
            Ok(tir::Program { functions, entry })
        }
        _ => Err(dedup(cx.diagnostics)),
    }
}

/// The argument types of a function whose parameters are all annotated, or
/// `None` if some parameter has no annotation.
pub fn annotated_signature(function: &ast::FunctionDef) -> Result<Option<Vec<Type>>, Vec<Diagnostic>> {
    let mut types = Vec::new();
    let mut errors = Vec::new();
    for param in &function.params {
        let Some(annotation) = &param.annotation else { return Ok(None) };
        match parse_annotation(annotation) {
            Ok(ty) => types.push(ty),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(Some(types))
    } else {
        Err(errors)
    }
}

fn dedup(diagnostics: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut seen = HashSet::default();
    let mut out = Vec::new();
    for diagnostic in diagnostics {
        let key = (diagnostic.code, diagnostic.span, diagnostic.message.clone());
        if seen.insert(key) {
            out.push(diagnostic);
        }
    }
    out.sort_by_key(|d| d.span.start);
    out
}

pub(crate) fn was_were(n: usize) -> &'static str {
    if n == 1 {
        "was"
    } else {
        "were"
    }
}

pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// One specialisation: a source function and its parameter types.
struct Spec {
    def_index: usize,
    params: Vec<Type>,
    /// The types of the named locals (parameters first), as last inferred.
    local_types: Vec<Type>,
    /// The return type, as last inferred (`Unknown` until a `return` is seen).
    ret: Type,
    /// Inference converged without depending on a moving provisional type.
    inferred: bool,
    /// Reserved when emission starts (so recursive calls can name it).
    id: Option<tir::FuncId>,
}

/// A specialisation being inferred or emitted (the call stack of inference).
struct Frame {
    spec: usize,
    /// The frame's types are final (it is being emitted).
    converged: bool,
    /// The lowest frame index whose provisional return type this frame read.
    depends_on: usize,
}

/// The functions of a module by name (the first definition of each), and an
/// E0303 for every later definition of the same name.
struct Functions<'a> {
    index: HashMap<&'a str, usize>,
    duplicates: Vec<Diagnostic>,
}

impl<'a> Functions<'a> {
    fn new(module: &'a ast::Module) -> Functions<'a> {
        let mut index = HashMap::default();
        for (position, function) in module.functions.iter().enumerate() {
            index.entry(function.name.name.as_str()).or_insert(position);
        }
        let mut duplicates = Vec::new();
        for function in &module.functions {
            let first = &module.functions[index[function.name.name.as_str()]];
            if !std::ptr::eq(first, function) {
                duplicates.push(
                    Diagnostic::error(
                        "E0303",
                        function.name.span,
                        format!("`{}` is defined twice", function.name.name),
                    )
                    .with_span_label("second definition")
                    .with_label(first.name.span, "first defined here")
                    .with_help("rename one of the functions"),
                );
            }
        }
        Functions { index, duplicates }
    }
}

struct Inferrer<'a> {
    module: &'a ast::Module,
    function_index: &'a HashMap<&'a str, usize>,
    specs: Vec<Spec>,
    spec_index: HashMap<(usize, Vec<Type>), usize>,
    stack: Vec<Frame>,
    functions: Vec<Option<tir::Function>>,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Inferrer<'a> {
    fn new(module: &'a ast::Module, function_index: &'a HashMap<&'a str, usize>) -> Inferrer<'a> {
        Inferrer {
            module,
            function_index,
            specs: Vec::new(),
            spec_index: HashMap::default(),
            stack: Vec::new(),
            functions: Vec::new(),
            diagnostics: Vec::new(),
        }
    }

    /// The parameter types of a specialisation: annotations where given
    /// (arguments must convert safely to them), the argument types otherwise.
    /// `call_span` is `None` for the entry kernel (arguments from the host).
    fn parameter_types(
        &self,
        def_index: usize,
        args: &[Type],
        call_span: Option<Span>,
    ) -> Result<Vec<Type>, Vec<Diagnostic>> {
        let def = &self.module.functions[def_index];
        let mut params = Vec::with_capacity(args.len());
        let mut errors = Vec::new();
        for (position, (param, arg)) in def.params.iter().zip(args).enumerate() {
            let Some(annotation) = &param.annotation else {
                params.push(arg.clone());
                continue;
            };
            let declared = match parse_annotation(annotation) {
                Ok(ty) => ty,
                Err(error) => {
                    errors.push(error);
                    continue;
                }
            };
            let fits = match (arg, &declared) {
                (Type::Scalar(from), Type::Scalar(to)) => promote(*from, *to) == *to,
                (Type::Unknown, _) => true,
                (from, to) => from == to,
            };
            if !fits {
                let (code, span) = match call_span {
                    Some(span) => ("E0404", span),
                    None => ("E0408", param.span),
                };
                errors.push(
                    Diagnostic::error(
                        code,
                        span,
                        format!(
                            "argument {} of `{}` is annotated `{declared}` but a `{arg}` was passed",
                            position + 1,
                            def.name.name
                        ),
                    )
                    .with_label(annotation.span, "annotated here")
                    .with_help(match (arg, &declared) {
                        (Type::Scalar(_), Type::Scalar(to)) => {
                            format!("convert the argument explicitly, e.g. `np.{}(x)`", to.numpy_name())
                        }
                        _ => "pass a value of the annotated type".to_string(),
                    }),
                );
            }
            params.push(declared);
        }
        if errors.is_empty() {
            Ok(params)
        } else {
            Err(errors)
        }
    }

    fn spec_for(&mut self, def_index: usize, params: Vec<Type>) -> usize {
        let key = (def_index, params);
        if let Some(&spec) = self.spec_index.get(&key) {
            return spec;
        }
        let index = self.specs.len();
        self.specs.push(Spec {
            def_index,
            params: key.1.clone(),
            local_types: Vec::new(),
            ret: Type::Unknown,
            inferred: false,
            id: None,
        });
        self.spec_index.insert(key, index);
        index
    }

    /// Infers a specialisation's local and return types (stage 1) and returns
    /// its return type, which is provisional if the specialisation is on the
    /// inference stack (recursion).
    fn ensure_inferred(&mut self, spec: usize) -> Type {
        if self.specs[spec].inferred {
            return self.specs[spec].ret.clone();
        }
        if let Some(frame) = self.stack.iter().position(|f| f.spec == spec) {
            if let Some(top) = self.stack.last_mut() {
                top.depends_on = top.depends_on.min(frame);
            }
            return self.specs[spec].ret.clone();
        }
        if self.stack.len() >= MAX_SPECIALISATION_DEPTH || self.specs.len() > MAX_SPECIALISATIONS {
            return Type::Unknown;
        }
        let depth = self.stack.len();
        self.stack.push(Frame { spec, converged: false, depends_on: depth });
        for _ in 0..MAX_FIXPOINT_ITERATIONS {
            let outcome = stmt::walk_function(self, spec, false);
            let spec_state = &mut self.specs[spec];
            let changed = outcome.local_types != spec_state.local_types || outcome.ret != spec_state.ret;
            spec_state.local_types = outcome.local_types;
            spec_state.ret = outcome.ret;
            if !changed {
                break;
            }
        }
        let frame = self.stack.pop().expect("pushed above");
        let speculative = frame.depends_on < depth && !self.stack[frame.depends_on].converged;
        if speculative {
            if let Some(top) = self.stack.last_mut() {
                top.depends_on = top.depends_on.min(frame.depends_on);
            }
        } else {
            self.specs[spec].inferred = true;
        }
        self.specs[spec].ret.clone()
    }

    /// Emits the typed IR of a specialisation (stage 2), reporting its errors,
    /// and returns its id. Only called from final walks.
    fn ensure_emitted(&mut self, spec: usize) -> Option<tir::FuncId> {
        if let Some(id) = self.specs[spec].id {
            return Some(id);
        }
        if self.stack.len() >= MAX_SPECIALISATION_DEPTH || self.specs.len() > MAX_SPECIALISATIONS {
            let def = &self.module.functions[self.specs[spec].def_index];
            let diagnostic = if self.stack.len() >= MAX_SPECIALISATION_DEPTH {
                Diagnostic::error(
                    "E0406",
                    def.name.span,
                    format!("kernel calls nest more than {MAX_SPECIALISATION_DEPTH} deep here (`{}`)", def.name.name),
                )
                .with_help("type inference follows every call; shorten the chain of calls between kernels")
            } else {
                Diagnostic::error(
                    "E0406",
                    def.name.span,
                    format!(
                        "the program needs more than {MAX_SPECIALISATIONS} specialisations (at `{}`)",
                        def.name.name
                    ),
                )
                .with_help("annotate the parameters so calls share one signature")
            };
            self.diagnostics.push(diagnostic);
            return None;
        }
        self.ensure_inferred(spec);
        let id = tir::FuncId(self.functions.len() as u32);
        self.functions.push(None);
        self.specs[spec].id = Some(id);
        let depth = self.stack.len();
        self.stack.push(Frame { spec, converged: true, depends_on: depth });
        let outcome = stmt::walk_function(self, spec, true);
        self.stack.pop();
        self.functions[id.0 as usize] = outcome.function;
        Some(id)
    }
}

/// The least upper bound of two local types, or `None` if they conflict.
pub(crate) fn join(a: &Type, b: &Type) -> Option<Type> {
    match (a, b) {
        (Type::Unknown, other) | (other, Type::Unknown) => Some(other.clone()),
        (Type::Scalar(x), Type::Scalar(y)) => Some(Type::Scalar(promote(*x, *y))),
        (Type::Tuple(x), Type::Tuple(y)) if x.len() == y.len() => {
            Some(Type::Tuple(x.iter().zip(y).map(|(a, b)| promote(*a, *b)).collect()))
        }
        (x, y) if x == y => Some(x.clone()),
        _ => None,
    }
}

/// Reads a type annotation: `f64`, `np.float32`, `float`, `i64[:, :]`,
/// `float64[::1]`, `(f64, i64)`, `tuple[f64, i64]`, `None`.
pub(crate) fn parse_annotation(expr: &ast::Expr) -> Result<Type, Diagnostic> {
    let bad = |message: String| {
        Diagnostic::error("E0306", expr.span, message)
            .with_help("write a dtype (`f64`, `np.int32`, `float`) or an array type (`f64[:]`, `u8[:, :]`)")
    };
    match &expr.kind {
        ast::ExprKind::None => Ok(Type::None),
        ast::ExprKind::Name(_) | ast::ExprKind::Attribute { .. } => {
            dtype_of(expr).map(Type::Scalar).ok_or_else(|| bad("this annotation is not a kern type".into()))
        }
        ast::ExprKind::Subscript { value, items } => {
            if let ast::ExprKind::Name(name) = &value.kind {
                if name == "tuple" || name == "Tuple" {
                    return tuple_annotation(items.iter().filter_map(|item| match item {
                        ast::SubscriptItem::Index(e) => Some(e),
                        ast::SubscriptItem::Slice { .. } => None,
                    }))
                    .ok_or_else(|| bad("a tuple annotation lists scalar dtypes: `tuple[f64, i64]`".into()));
                }
            }
            let dtype =
                dtype_of(value).ok_or_else(|| bad("an array annotation starts with a dtype: `f64[:]`".into()))?;
            for item in items {
                let plain = matches!(item,
                    ast::SubscriptItem::Slice { lower: None, upper: None, step, .. }
                        if step.as_ref().is_none_or(|s| matches!(s.kind, ast::ExprKind::Int(1))));
                if !plain {
                    return Err(bad("each axis of an array annotation is written `:`".into()));
                }
            }
            if items.is_empty() || items.len() > MAX_NDIM {
                return Err(bad(format!("arrays have 1 to {MAX_NDIM} dimensions")));
            }
            Ok(Type::Array(ArrayType { dtype, ndim: items.len() as u8 }))
        }
        ast::ExprKind::Tuple(items) => tuple_annotation(items.iter())
            .ok_or_else(|| bad("a tuple annotation lists scalar dtypes: `(f64, i64)`".into())),
        _ => Err(bad("this annotation is not a kern type".into())),
    }
}

fn tuple_annotation<'e>(items: impl Iterator<Item = &'e ast::Expr>) -> Option<Type> {
    let dtypes: Option<Vec<ScalarType>> = items.map(dtype_of).collect();
    dtypes.filter(|d| !d.is_empty()).map(Type::Tuple)
}

/// A dtype written as `f64`, `float32`, `np.float32`, `numba.float32`, `float`.
pub(crate) fn dtype_of(expr: &ast::Expr) -> Option<ScalarType> {
    match &expr.kind {
        ast::ExprKind::Name(name) => ScalarType::from_name(name),
        ast::ExprKind::Attribute { value, attr } => match &value.kind {
            ast::ExprKind::Name(module) if matches!(module.as_str(), "np" | "numpy" | "numba" | "nb" | "types") => {
                ScalarType::from_name(&attr.name)
            }
            _ => None,
        },
        _ => None,
    }
}
