//! What the names a kernel does not define itself mean: the globals a host
//! (the Python package) resolved in the kernel's module, frozen at compile
//! time.
//!
//! A desugaring pass between parsing and inference: [`resolve`] rewrites the
//! syntax tree so that inference sees only what it already knows — a frozen
//! constant becomes its literal, a module alias (`import numpy as xp`)
//! becomes `np`, a member imported by name (`from math import sqrt`) becomes
//! `math.sqrt`, an alias of another kernel becomes that kernel's name — and
//! reports a global kernels cannot use at the place it is used.

use crate::ast::{self, Expr, ExprKind};
use crate::diag::Diagnostic;
use crate::span::Span;
use crate::value::Scalar;
use rustc_hash::FxHashSet as HashSet;

/// A compile-time constant bound to a global name.
#[derive(Clone, Debug, PartialEq)]
pub enum Constant {
    /// A Python `int`: a weak literal, as if written in the kernel.
    Int(i128),
    /// A Python `float`: a weak literal.
    Float(f64),
    /// A Python `bool`.
    Bool(bool),
    /// A NumPy scalar, which keeps its dtype (`np.float32(0.5)`).
    Typed(Scalar),
    /// A tuple of constants.
    Tuple(Vec<Constant>),
}

/// A module kernels know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnownModule {
    Math,
    Numpy,
    Numba,
}

impl KnownModule {
    /// The name kernels use for the module: `math`, `np`, `numba`.
    pub fn canonical(self) -> &'static str {
        match self {
            KnownModule::Math => "math",
            KnownModule::Numpy => "np",
            KnownModule::Numba => "numba",
        }
    }
}

/// What one global name is bound to.
#[derive(Clone, Debug, PartialEq)]
pub enum Global {
    /// A number, boolean, NumPy scalar or tuple of them, frozen.
    Constant(Constant),
    /// A module under some alias (`import numpy as xp`).
    Module(KnownModule),
    /// A member of a known module bound to a name (`from math import sqrt`,
    /// `from numba import prange`): the module and the member's own name.
    Member(KnownModule, String),
    /// Another kernel of the same program, by the name its `def` gives it
    /// (`from helpers import smooth as sm` binds `sm` to `smooth`).
    Kernel(String),
    /// Something kernels cannot use; the text says what it is (`a dict`,
    /// `the module os`), for the error at each use.
    Unsupported(String),
}

/// The globals of one kernel's module that the kernel refers to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Globals {
    pub names: Vec<(String, Global)>,
}

impl Globals {
    pub fn get(&self, name: &str) -> Option<&Global> {
        self.names.iter().find(|(n, _)| n == name).map(|(_, global)| global)
    }
}

/// Rewrites `function` (its body and annotations) for the globals its module
/// binds: every read of a name the function does not bind itself (Python's
/// rule: a name assigned anywhere in a function is local to all of it) and
/// that `globals` has is replaced as the module doc says. Returns the
/// diagnostics for unsupported globals and constants kernels cannot hold.
pub fn resolve(function: &mut ast::FunctionDef, globals: &Globals) -> Vec<Diagnostic> {
    if globals.names.is_empty() {
        return Vec::new();
    }
    let mut bound: HashSet<String> = function.params.iter().map(|param| param.name.name.clone()).collect();
    bind_block(&function.body, &mut bound);
    let mut resolver = Resolver { globals, bound, diagnostics: Vec::new() };
    for param in &mut function.params {
        if let Some(annotation) = &mut param.annotation {
            resolver.expr(annotation);
        }
    }
    if let Some(returns) = &mut function.returns {
        resolver.expr(returns);
    }
    resolver.block(&mut function.body);
    resolver.diagnostics
}

/// What kernels can take from their module, for the help of an unsupported
/// global.
const USABLE_GLOBALS: &str = "numbers, booleans, NumPy scalars and tuples of them, the math, numpy and numba \
modules and their functions, and other kernels";

/// Adds the names `block` binds: assignment targets (names, tuples of
/// names), annotated names, names updated in place, `for` targets.
fn bind_block(block: &[ast::Stmt], bound: &mut HashSet<String>) {
    for stmt in block {
        match &stmt.kind {
            ast::StmtKind::Assign { targets, .. } => targets.iter().for_each(|target| bind_target(target, bound)),
            ast::StmtKind::AnnAssign { target, .. } => {
                bound.insert(target.name.clone());
            }
            ast::StmtKind::AugAssign { target, .. } => bind_target(target, bound),
            ast::StmtKind::For { target, body, .. } => {
                bound.insert(target.name.clone());
                bind_block(body, bound);
            }
            ast::StmtKind::If { then, orelse, .. } => {
                bind_block(then, bound);
                bind_block(orelse, bound);
            }
            ast::StmtKind::While { body, .. } => bind_block(body, bound),
            ast::StmtKind::Expr(_)
            | ast::StmtKind::Break
            | ast::StmtKind::Continue
            | ast::StmtKind::Pass
            | ast::StmtKind::Return(_) => {}
        }
    }
}

/// Adds the names an assignment target binds (a subscript binds none).
fn bind_target(target: &Expr, bound: &mut HashSet<String>) {
    match &target.kind {
        ExprKind::Name(name) => {
            bound.insert(name.clone());
        }
        ExprKind::Tuple(items) => items.iter().for_each(|item| bind_target(item, bound)),
        _ => {}
    }
}

/// Rewrites the reads of one function's free names.
struct Resolver<'g> {
    globals: &'g Globals,
    /// The names the function binds (its parameters and assigned names).
    bound: HashSet<String>,
    diagnostics: Vec<Diagnostic>,
}

impl Resolver<'_> {
    fn block(&mut self, block: &mut [ast::Stmt]) {
        for stmt in block {
            self.stmt(stmt);
        }
    }

    fn stmt(&mut self, stmt: &mut ast::Stmt) {
        // Assignment targets go through `expr` too: a name they bind is local,
        // so it is left alone, and a subscript's array and indices are reads.
        match &mut stmt.kind {
            ast::StmtKind::Expr(value) | ast::StmtKind::Return(Some(value)) => self.expr(value),
            ast::StmtKind::Assign { targets, value } => {
                targets.iter_mut().for_each(|target| self.expr(target));
                self.expr(value);
            }
            ast::StmtKind::AnnAssign { annotation, value, .. } => {
                self.expr(annotation);
                if let Some(value) = value {
                    self.expr(value);
                }
            }
            ast::StmtKind::AugAssign { target, value, .. } => {
                self.expr(target);
                self.expr(value);
            }
            ast::StmtKind::If { cond, then, orelse } => {
                self.expr(cond);
                self.block(then);
                self.block(orelse);
            }
            ast::StmtKind::While { cond, body } => {
                self.expr(cond);
                self.block(body);
            }
            ast::StmtKind::For { iter, body, .. } => {
                self.expr(iter);
                self.block(body);
            }
            ast::StmtKind::Return(None) | ast::StmtKind::Break | ast::StmtKind::Continue | ast::StmtKind::Pass => {}
        }
    }

    fn expr(&mut self, expr: &mut Expr) {
        crate::stack::guarded(|| self.expr_inner(expr))
    }

    fn expr_inner(&mut self, expr: &mut Expr) {
        match &mut expr.kind {
            ExprKind::Name(name) => {
                if let Some(replacement) = self.replacement(name, expr.span) {
                    *expr = replacement;
                }
            }
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) | ExprKind::None | ExprKind::Error => {}
            ExprKind::Attribute { value, .. } => self.expr(value),
            ExprKind::Call { func, args, keywords } => {
                self.expr(func);
                args.iter_mut().for_each(|arg| self.expr(arg));
                keywords.iter_mut().for_each(|keyword| self.expr(&mut keyword.value));
            }
            ExprKind::Subscript { value, items } => {
                self.expr(value);
                for item in items {
                    match item {
                        ast::SubscriptItem::Index(index) => self.expr(index),
                        ast::SubscriptItem::Slice { lower, upper, step, .. } => {
                            for part in [lower, upper, step].into_iter().flatten() {
                                self.expr(part);
                            }
                        }
                    }
                }
            }
            ExprKind::Unary { operand, .. } => self.expr(operand),
            ExprKind::Binary { left, right, .. } | ExprKind::BoolOp { left, right, .. } => {
                self.expr(left);
                self.expr(right);
            }
            ExprKind::Compare { first, rest } => {
                self.expr(first);
                rest.iter_mut().for_each(|(_, operand)| self.expr(operand));
            }
            ExprKind::IfExp { cond, body, orelse } => {
                self.expr(cond);
                self.expr(body);
                self.expr(orelse);
            }
            ExprKind::Tuple(items) => items.iter_mut().for_each(|item| self.expr(item)),
        }
    }

    /// What a read of `name` at `span` becomes, if the name is a global.
    fn replacement(&mut self, name: &str, span: Span) -> Option<Expr> {
        if self.bound.contains(name) {
            return None;
        }
        let expr = |kind| Expr { kind, span };
        Some(match self.globals.get(name)? {
            Global::Constant(constant) => match literal(constant, span) {
                Ok(literal) => literal,
                Err(value) => {
                    self.diagnostics.push(too_large(name, value, span));
                    expr(ExprKind::Error)
                }
            },
            Global::Module(module) => expr(ExprKind::Name(module.canonical().to_string())),
            Global::Member(module, member) => member_of(*module, member, span),
            Global::Kernel(def_name) => expr(ExprKind::Name(def_name.clone())),
            Global::Unsupported(what) => {
                self.diagnostics.push(unsupported(name, what, span));
                expr(ExprKind::Error)
            }
        })
    }
}

/// `module.member`, as kernels write it (`math.sqrt`, `np.float32`).
fn member_of(module: KnownModule, member: &str, span: Span) -> Expr {
    let value = Expr { kind: ExprKind::Name(module.canonical().to_string()), span };
    let attr = ast::Ident { name: member.to_string(), span };
    Expr { kind: ExprKind::Attribute { value: Box::new(value), attr }, span }
}

/// A constant as the literal that means it in a kernel, every node with the
/// span of the name it replaces; `Err` holds an integer no kernel integer
/// can hold.
fn literal(constant: &Constant, span: Span) -> Result<Expr, i128> {
    let expr = |kind| Expr { kind, span };
    Ok(match constant {
        Constant::Int(value) => int_literal(*value, span).ok_or(*value)?,
        Constant::Float(value) => float_literal(*value, span),
        Constant::Bool(value) => expr(ExprKind::Bool(*value)),
        Constant::Typed(scalar) => typed_literal(*scalar, span),
        Constant::Tuple(items) => {
            let items = items.iter().map(|item| literal(item, span)).collect::<Result<_, _>>()?;
            expr(ExprKind::Tuple(items))
        }
    })
}

/// A weak integer literal (`5`, `-5`), if `value` fits in `i64`. `i64::MIN`
/// has no literal of its own (its magnitude does not fit): it is written
/// `-9223372036854775807 - 1`, as C writes it.
fn int_literal(value: i128, span: Span) -> Option<Expr> {
    let expr = |kind| Expr { kind, span };
    let negate = |operand: Expr| expr(ExprKind::Unary { op: ast::UnaryOp::Neg, operand: Box::new(operand) });
    let value = i64::try_from(value).ok()?;
    Some(match value {
        0.. => expr(ExprKind::Int(value as u64)),
        i64::MIN => expr(ExprKind::Binary {
            op: ast::BinOp::Sub,
            left: Box::new(negate(expr(ExprKind::Int(i64::MAX as u64)))),
            right: Box::new(expr(ExprKind::Int(1))),
        }),
        _ => negate(expr(ExprKind::Int(value.unsigned_abs()))),
    })
}

/// A weak float literal: a negative value (and `-0.0`) is the negation of
/// its magnitude, as it would be written; NaN and infinities stand as they
/// are.
fn float_literal(value: f64, span: Span) -> Expr {
    let expr = |kind| Expr { kind, span };
    if value.is_sign_negative() && !value.is_nan() {
        expr(ExprKind::Unary { op: ast::UnaryOp::Neg, operand: Box::new(expr(ExprKind::Float(-value))) })
    } else {
        expr(ExprKind::Float(value))
    }
}

/// A NumPy scalar as kernels write it, `np.float32(0.5)`: a conversion of a
/// weak literal, so it keeps its dtype.
fn typed_literal(scalar: Scalar, span: Span) -> Expr {
    let convert = |argument: Expr| {
        let func = member_of(KnownModule::Numpy, scalar.ty().numpy_name(), span);
        Expr { kind: ExprKind::Call { func: Box::new(func), args: vec![argument], keywords: Vec::new() }, span }
    };
    match scalar {
        Scalar::Bool(value) => convert(Expr { kind: ExprKind::Bool(value), span }),
        Scalar::F32(value) => convert(float_literal(f64::from(value), span)),
        Scalar::F64(value) => convert(float_literal(value, span)),
        Scalar::U64(value) if value > i64::MAX as u64 => {
            // No weak literal holds it: a sum of `np.uint64`s of ones that do.
            let low = value - i64::MAX as u64;
            let high = typed_literal(Scalar::U64(i64::MAX as u64), span);
            let low = typed_literal(Scalar::U64(low), span);
            Expr { kind: ExprKind::Binary { op: ast::BinOp::Add, left: Box::new(high), right: Box::new(low) }, span }
        }
        integer => {
            convert(int_literal(integer.to_i128(), span).expect("a NumPy integer other than a large u64 fits in i64"))
        }
    }
}

/// The error for a global integer no kernel integer holds.
fn too_large(name: &str, value: i128, span: Span) -> Diagnostic {
    let mut help = format!("a Python integer is an `i64` in a kernel, from {} to {}", i64::MIN, i64::MAX);
    if u64::try_from(value).is_ok() {
        help.push_str(&format!("; freeze an unsigned one as a NumPy scalar, `{name} = np.uint64({value})`"));
    }
    Diagnostic::error(
        "E0407",
        span,
        format!("the global `{name}` holds the integer {value}, which does not fit in `i64`"),
    )
    .with_span_label("used here")
    .with_help(help)
}

/// The error at a use of a global kernels cannot use. `what` is a noun
/// phrase (`a dict`, `the module os`); an array gets the advice to pass it
/// as an argument.
fn unsupported(name: &str, what: &str, span: Span) -> Diagnostic {
    let noun = what.strip_prefix("a ").or_else(|| what.strip_prefix("an "));
    let message = match noun {
        Some(noun) => format!("`{name}` is a global {noun}, which kernels cannot use"),
        None if what.starts_with("the ") => format!("`{name}` is a global bound to {what}, which kernels cannot use"),
        None => format!("`{name}` is a global {what}, which kernels cannot use"),
    };
    let array = noun.is_some_and(|noun| noun.starts_with("array") || noun.starts_with("NumPy array"));
    let help = if array {
        format!("pass `{name}` to the kernel as an argument; from their module, kernels can use only {USABLE_GLOBALS}")
    } else {
        format!("from their module, kernels can use only {USABLE_GLOBALS}")
    };
    Diagnostic::error("E0301", span, message).with_span_label("used here").with_help(help)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{ScalarType, Type};
    use crate::value::Value;
    use crate::{Module, Source};

    fn globals(names: &[(&str, Global)]) -> Globals {
        Globals { names: names.iter().map(|(name, global)| (name.to_string(), global.clone())).collect() }
    }

    fn module(text: &str, globals: Globals) -> Result<Module, crate::Error> {
        Module::from_sources(vec![Source {
            file: "m.py".to_string(),
            text: text.to_string(),
            first_line: 1,
            indent: 0,
            globals,
        }])
    }

    /// The first function of `text` after resolving, printed compactly: one
    /// line per statement, expressions as in the source.
    fn resolved(text: &str, globals: &Globals) -> (String, Vec<String>) {
        let file = crate::span::SourceFile::new("m.py", text);
        let mut parsed = crate::parser::parse(&file);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let function = &mut parsed.module.functions[0];
        let diagnostics = resolve(function, globals);
        let mut out = String::new();
        for param in &function.params {
            let annotation = param.annotation.as_ref().map(|a| format!(": {}", show(a))).unwrap_or_default();
            out.push_str(&format!("param {}{annotation}\n", param.name.name));
        }
        if let Some(returns) = &function.returns {
            out.push_str(&format!("-> {}\n", show(returns)));
        }
        show_block(&function.body, 0, &mut out);
        (out, diagnostics.iter().map(|d| d.short(&file)).collect())
    }

    fn show_block(block: &[ast::Stmt], depth: usize, out: &mut String) {
        for stmt in block {
            let pad = "  ".repeat(depth);
            match &stmt.kind {
                ast::StmtKind::Expr(value) => out.push_str(&format!("{pad}{}\n", show(value))),
                ast::StmtKind::Assign { targets, value } => {
                    let targets: Vec<String> = targets.iter().map(show).collect();
                    out.push_str(&format!("{pad}{} = {}\n", targets.join(" = "), show(value)));
                }
                ast::StmtKind::AnnAssign { target, annotation, value } => {
                    let value = value.as_ref().map(|v| format!(" = {}", show(v))).unwrap_or_default();
                    out.push_str(&format!("{pad}{}: {}{value}\n", target.name, show(annotation)));
                }
                ast::StmtKind::AugAssign { target, op, value } => {
                    out.push_str(&format!("{pad}{} {}= {}\n", show(target), op.symbol(), show(value)))
                }
                ast::StmtKind::If { cond, then, orelse } => {
                    out.push_str(&format!("{pad}if {}:\n", show(cond)));
                    show_block(then, depth + 1, out);
                    out.push_str(&format!("{pad}else:\n"));
                    show_block(orelse, depth + 1, out);
                }
                ast::StmtKind::While { cond, body } => {
                    out.push_str(&format!("{pad}while {}:\n", show(cond)));
                    show_block(body, depth + 1, out);
                }
                ast::StmtKind::For { target, iter, body } => {
                    out.push_str(&format!("{pad}for {} in {}:\n", target.name, show(iter)));
                    show_block(body, depth + 1, out);
                }
                ast::StmtKind::Return(value) => {
                    out.push_str(&format!("{pad}return {}\n", value.as_ref().map(show).unwrap_or_default()))
                }
                ast::StmtKind::Break | ast::StmtKind::Continue | ast::StmtKind::Pass => {
                    out.push_str(&format!("{pad}{:?}\n", stmt.kind))
                }
            }
        }
    }

    /// An expression with every operation parenthesised.
    fn show(expr: &Expr) -> String {
        let list = |items: &[Expr]| items.iter().map(show).collect::<Vec<_>>().join(", ");
        match &expr.kind {
            ExprKind::Int(value) => value.to_string(),
            ExprKind::Float(value) => format!("{value:?}"),
            ExprKind::Bool(value) => if *value { "True" } else { "False" }.to_string(),
            ExprKind::None => "None".to_string(),
            ExprKind::Name(name) => name.clone(),
            ExprKind::Attribute { value, attr } => format!("{}.{}", show(value), attr.name),
            ExprKind::Call { func, args, keywords } => {
                let mut parts = vec![list(args)];
                parts.extend(keywords.iter().map(|k| format!("{}={}", k.name.name, show(&k.value))));
                parts.retain(|part| !part.is_empty());
                format!("{}({})", show(func), parts.join(", "))
            }
            ExprKind::Subscript { value, items } => {
                let part = |part: &Option<Expr>| part.as_ref().map(show).unwrap_or_default();
                let items: Vec<String> = items
                    .iter()
                    .map(|item| match item {
                        ast::SubscriptItem::Index(index) => show(index),
                        ast::SubscriptItem::Slice { lower, upper, step, .. } => {
                            format!("{}:{}:{}", part(lower), part(upper), part(step))
                        }
                    })
                    .collect();
                format!("{}[{}]", show(value), items.join(", "))
            }
            ExprKind::Unary { op, operand } => format!("({op:?} {})", show(operand)),
            ExprKind::Binary { op, left, right } => format!("({} {} {})", show(left), op.symbol(), show(right)),
            ExprKind::BoolOp { op, left, right } => format!("({} {op:?} {})", show(left), show(right)),
            ExprKind::Compare { first, rest } => {
                let rest: Vec<String> = rest.iter().map(|(op, e)| format!("{} {}", op.symbol(), show(e))).collect();
                format!("({} {})", show(first), rest.join(" "))
            }
            ExprKind::IfExp { cond, body, orelse } => {
                format!("({} if {} else {})", show(body), show(cond), show(orelse))
            }
            ExprKind::Tuple(items) => format!("({})", list(items)),
            ExprKind::Error => "<error>".to_string(),
        }
    }

    fn example_globals() -> Globals {
        globals(&[
            ("N", Global::Constant(Constant::Int(3))),
            ("EPS", Global::Constant(Constant::Float(-1e-9))),
            ("xp", Global::Module(KnownModule::Numpy)),
            ("m", Global::Module(KnownModule::Math)),
            ("nb", Global::Module(KnownModule::Numba)),
            ("sqrt", Global::Member(KnownModule::Math, "sqrt".into())),
            ("prange", Global::Member(KnownModule::Numba, "prange".into())),
            ("float32", Global::Member(KnownModule::Numpy, "float32".into())),
            ("sm", Global::Kernel("smooth".into())),
            ("table", Global::Unsupported("a dict".into())),
            ("grid", Global::Unsupported("a NumPy array".into())),
            ("os", Global::Unsupported("the module os".into())),
            ("cells", Global::Unsupported("a list (use a tuple, or pass a NumPy array as an argument)".into())),
            ("none", Global::Unsupported("None".into())),
        ])
    }

    #[test]
    fn reads_of_globals_are_rewritten_everywhere() {
        let text = "\
def f(a: float32[:], b: xp.float64) -> float32:
    s: float32 = float32(N)
    for i in prange(N, a.shape[0] - N):
        a[i + N] = sm(a[i:N:N], k=xp.float32(EPS)) if m.pi > N else sqrt(a[N])
        s += xp.zeros((N, N), dtype=float32)[0, N] + (N, EPS)[1]
    while N < s and not nb.prange:
        s = -N
    return s
";
        let (out, diagnostics) = resolved(text, &example_globals());
        expect_test::expect![[r#"
            param a: np.float32[::]
            param b: np.float64
            -> np.float32
            s: np.float32 = np.float32(3)
            for i in numba.prange(3, (a.shape[0] - 3)):
              a[(i + 3)] = (smooth(a[i:3:3], k=np.float32((Neg 1e-9))) if (math.pi > 3) else math.sqrt(a[3]))
              s += (np.zeros((3, 3), dtype=np.float32)[0, 3] + (3, (Neg 1e-9))[1])
            while ((3 < s) And (Not numba.prange)):
              s = (Neg 3)
            return s
        "#]]
        .assert_eq(&out);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
    }

    #[test]
    fn names_the_function_binds_are_left_alone() {
        // Parameters, assigned names (anywhere in the function, even after
        // a read), tuple targets, annotated names, augmented names and `for`
        // targets are local: the globals of the same names are not used.
        let names = ["N", "EPS", "xp", "m", "sqrt", "table", "grid", "os"];
        let table: Vec<(&str, Global)> = names.iter().map(|name| (*name, Global::Constant(Constant::Int(7)))).collect();
        let text = "\
def f(N):
    r = EPS + xp + m + sqrt + table + grid + os + N + K
    if r > 0:
        EPS, xp = 1, 2
        m = sqrt = 3
    while r < 0:
        sqrt: int = 1
    table += 1
    for grid in range(1):
        os = 2
    return r
";
        let mut globals = globals(&table);
        globals.names.push(("K".into(), Global::Constant(Constant::Int(7))));
        let (out, diagnostics) = resolved(text, &globals);
        expect_test::expect![[r#"
            param N
            r = ((((((((EPS + xp) + m) + sqrt) + table) + grid) + os) + N) + 7)
            if (r > 0):
              (EPS, xp) = (1, 2)
              m = sqrt = 3
            else:
            while (r < 0):
              sqrt: int = 1
            table += 1
            for grid in range(1):
              os = 2
            return r
        "#]]
        .assert_eq(&out);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
    }

    #[test]
    fn constants_become_the_literals_that_mean_them() {
        let constants = [
            Constant::Int(0),
            Constant::Int(-7),
            Constant::Int(i64::MAX as i128),
            Constant::Int(i64::MIN as i128),
            Constant::Float(2.5),
            Constant::Float(-0.0),
            Constant::Float(f64::NAN),
            Constant::Float(f64::NEG_INFINITY),
            Constant::Bool(true),
            Constant::Typed(Scalar::F32(-0.5)),
            Constant::Typed(Scalar::I8(-128)),
            Constant::Typed(Scalar::I64(i64::MIN)),
            Constant::Typed(Scalar::U64(u64::MAX)),
            Constant::Typed(Scalar::Bool(false)),
            Constant::Tuple(vec![Constant::Int(1), Constant::Typed(Scalar::U8(2)), Constant::Tuple(Vec::new())]),
        ];
        let out: Vec<String> =
            constants.iter().map(|constant| show(&literal(constant, Span::default()).expect("fits"))).collect();
        expect_test::expect![[r#"
            0
            (Neg 7)
            9223372036854775807
            ((Neg 9223372036854775807) - 1)
            2.5
            (Neg 0.0)
            NaN
            (Neg inf)
            True
            np.float32((Neg 0.5))
            np.int8((Neg 128))
            np.int64(((Neg 9223372036854775807) - 1))
            (np.uint64(9223372036854775807) + (np.uint64(9223372036854775807) + np.uint64(1)))
            np.bool_(False)
            (1, np.uint8(2), ())"#]]
        .assert_eq(&out.join("\n"));
    }

    #[test]
    fn globals_kernels_cannot_use_are_errors_at_each_use() {
        let mut globals = example_globals();
        globals.names.push(("BIG".into(), Global::Constant(Constant::Int(u64::MAX as i128))));
        globals.names.push(("HUGE".into(), Global::Constant(Constant::Tuple(vec![Constant::Int(-(1 << 70))]))));
        let text = "def f(x):\n    return table[x] + grid[x] + os.getpid() + BIG + HUGE[0] + grid[0]\n";
        let (_, diagnostics) = resolved(text, &globals);
        let (_, others) = resolved("def g():\n    return cells[0] + none\n", &globals);
        expect_test::expect![[r#"
            m.py:2:12: error[E0301]: `cells` is a global list (use a tuple, or pass a NumPy array as an argument), which kernels cannot use
            m.py:2:23: error[E0301]: `none` is a global None, which kernels cannot use"#]]
        .assert_eq(&others.join("\n"));
        expect_test::expect![[r#"
            m.py:2:12: error[E0301]: `table` is a global dict, which kernels cannot use
            m.py:2:23: error[E0301]: `grid` is a global NumPy array, which kernels cannot use
            m.py:2:33: error[E0301]: `os` is a global bound to the module os, which kernels cannot use
            m.py:2:47: error[E0407]: the global `BIG` holds the integer 18446744073709551615, which does not fit in `i64`
            m.py:2:53: error[E0407]: the global `HUGE` holds the integer -1180591620717411303424, which does not fit in `i64`
            m.py:2:63: error[E0301]: `grid` is a global NumPy array, which kernels cannot use"#]]
        .assert_eq(&diagnostics.join("\n"));
        let error = module(text, globals).expect_err("unsupported globals");
        expect_test::expect![[r#"
            error[E0301]: `grid` is a global NumPy array, which kernels cannot use
              ┌─ m.py:2:23
              │
            2 │     return table[x] + grid[x] + os.getpid() + BIG + HUGE[0] + grid[0]
              │                       ^^^^ used here
              │
              = help: pass `grid` to the kernel as an argument; from their module, kernels can use only numbers, booleans, NumPy scalars and tuples of them, the math, numpy and numba modules and their functions, and other kernels

        "#]]
        .assert_eq(&crate::diag::render(&error.diagnostics()[1..2], &error_file(&error), false));
        // Only an array is advised to be an argument.
        let helps: Vec<bool> =
            error.diagnostics().iter().map(|d| d.help.as_ref().unwrap().starts_with("pass")).collect();
        assert_eq!(helps, [false, true, false, false, false, true]);
    }

    fn error_file(error: &crate::Error) -> crate::span::SourceFile {
        match error {
            crate::Error::Compile { file, .. } => (**file).clone(),
            other => panic!("not a compile error: {other}"),
        }
    }

    /// The return type and value of `def f(x): return EXPR` for `x`: with
    /// the `K` of `EXPR` written as `literal`, and with `K` a global bound
    /// to `constant`.
    fn written_and_frozen(expr: &str, literal: &str, constant: Constant, x: Scalar) -> [(Type, Value); 2] {
        let run = |text: String, globals: Globals| {
            let module = module(&text, globals).expect("parses");
            let program = module.specialise("f", &[Type::Scalar(x.ty())]).expect("types");
            let value = module.interpret("f", &mut [Value::Scalar(x)]).expect("runs");
            (program.entry_function().ret.clone(), value)
        };
        let written = expr.replace('K', &format!("({literal})"));
        let written = run(format!("def f(x):\n    return {written}\n"), Globals::default());
        let frozen = run(format!("def f(x):\n    return {expr}\n"), globals(&[("K", Global::Constant(constant))]));
        [written, frozen]
    }

    #[test]
    fn frozen_constants_type_as_the_same_literal_written_in_the_kernel() {
        use ScalarType::*;
        let pair = Constant::Tuple(vec![Constant::Int(1), Constant::Typed(Scalar::U8(2))]);
        let cases = [
            // Weak Python literals take the other operand's dtype.
            ("x + K", "2", Constant::Int(2), Scalar::I32(5), I32),
            ("x * K", "-3", Constant::Int(-3), Scalar::I8(5), I8),
            ("x + K", "-9223372036854775807 - 1", Constant::Int(i64::MIN as i128), Scalar::I64(5), I64),
            ("x * K", "0.5", Constant::Float(0.5), Scalar::F32(3.0), F32),
            ("x * K", "-0.5", Constant::Float(-0.5), Scalar::I16(3), F64),
            ("x + K", "True", Constant::Bool(true), Scalar::U8(3), U8),
            ("K", "7", Constant::Int(7), Scalar::F32(0.0), I64),
            // NumPy scalars keep their dtype.
            ("x + K", "np.float32(0.5)", Constant::Typed(Scalar::F32(0.5)), Scalar::I16(3), F32),
            ("x + K", "np.float64(0.5)", Constant::Typed(Scalar::F64(0.5)), Scalar::F32(3.0), F64),
            ("x + K", "np.int16(-2)", Constant::Typed(Scalar::I16(-2)), Scalar::I8(3), I16),
            ("x & K", "np.bool_(True)", Constant::Typed(Scalar::Bool(true)), Scalar::Bool(true), Bool),
            ("K[1] + x", "1, np.uint8(2)", pair, Scalar::U8(3), U8),
        ];
        for (expr, literal, constant, x, dtype) in cases {
            let [written, frozen] = written_and_frozen(expr, literal, constant, x);
            assert_eq!(written.0, Type::Scalar(dtype), "{expr} with K = {literal}");
            assert_eq!(frozen, written, "{expr} with K = {literal}");
        }
        let big = Constant::Typed(Scalar::U64(u64::MAX));
        let [_, frozen] = written_and_frozen("K", "0", big, Scalar::I64(0));
        assert_eq!(frozen, (Type::Scalar(U64), Value::Scalar(Scalar::U64(u64::MAX))));
        let [_, frozen] = written_and_frozen("K", "0", Constant::Float(f64::NEG_INFINITY), Scalar::I64(0));
        assert_eq!(frozen.1, Value::Scalar(Scalar::F64(f64::NEG_INFINITY)));
    }
}
