//! Typing expressions: literals, names, operators with NumPy 2 promotion and
//! weak Python literals, comparisons, indexing and views.

use super::stmt::Walker;
use crate::ast;
use crate::diag::Diagnostic;
use crate::span::Span;
use crate::tir::{self, BinaryOp, LocalId};
use crate::types::{promote, ArrayType, ScalarType, Type};
use crate::value::Scalar;

/// A typed expression, plus whether it is *weak*: built only from Python
/// literals (`2`, `0.5`, `True`, `-1`, `math.pi`), so that it adapts to the
/// other operand's dtype (NEP 50). A weak expression's own type is the
/// default for its kind (`i64`, `f64`, `bool`).
#[derive(Clone, Debug)]
pub(super) struct Typed {
    pub expr: tir::Expr,
    pub weak: bool,
}

impl Typed {
    pub fn new(kind: tir::ExprKind, ty: Type, span: Span, weak: bool) -> Typed {
        Typed { expr: tir::Expr { kind, ty, span }, weak }
    }

    /// Stands in for an expression whose type could not be determined (an
    /// error was reported, or types are still provisional).
    pub fn poison(span: Span) -> Typed {
        Typed::new(tir::ExprKind::Const(Scalar::I64(0)), Type::Unknown, span, false)
    }

    pub fn constant(value: Scalar, span: Span, weak: bool) -> Typed {
        Typed::new(tir::ExprKind::Const(value), Type::Scalar(value.ty()), span, weak)
    }

    pub fn scalar(&self) -> Option<ScalarType> {
        self.expr.ty.scalar()
    }

    fn const_value(&self) -> Option<Scalar> {
        match self.expr.kind {
            tir::ExprKind::Const(value) => Some(value),
            _ => None,
        }
    }
}

/// The dtype a weak literal of type `weak` takes next to a concrete `other`.
fn weak_with(weak: ScalarType, other: ScalarType) -> ScalarType {
    match weak {
        ScalarType::Bool => other,
        ScalarType::F64 if !other.is_float() => ScalarType::F64,
        _ if other.is_bool() => weak,
        _ => other,
    }
}

impl<'c, 'a> Walker<'c, 'a> {
    pub fn expr(&mut self, expr: &'a ast::Expr) -> Typed {
        crate::stack::guarded(|| self.expr_inner(expr))
    }

    fn expr_inner(&mut self, expr: &'a ast::Expr) -> Typed {
        let span = expr.span;
        match &expr.kind {
            ast::ExprKind::Int(value) => match i64::try_from(*value) {
                Ok(value) => Typed::constant(Scalar::I64(value), span, true),
                Err(_) => {
                    self.error(
                        Diagnostic::error("E0407", span, "integer literal is too large for `i64`")
                            .with_help("the largest integer literal is 9223372036854775807; use `np.uint64(...)` arithmetic for larger values"),
                    );
                    Typed::poison(span)
                }
            },
            ast::ExprKind::Float(value) => Typed::constant(Scalar::F64(*value), span, true),
            ast::ExprKind::Bool(value) => Typed::constant(Scalar::Bool(*value), span, true),
            ast::ExprKind::None => {
                self.error(
                    Diagnostic::error("E0402", span, "`None` is not a value in kernels")
                        .with_help("`None` is only allowed as `return None`"),
                );
                Typed::poison(span)
            }
            ast::ExprKind::Name(name) => self.name(name, span),
            ast::ExprKind::Attribute { value, attr } => self.attribute(value, attr, span),
            ast::ExprKind::Call { func, args, keywords } => self.call(func, args, keywords, span),
            ast::ExprKind::Subscript { value, items } => self.subscript(value, items, span),
            ast::ExprKind::Unary { op, operand } => {
                let operand = self.expr(operand);
                self.unary(*op, operand, span)
            }
            ast::ExprKind::Binary { op, left, right } => {
                let left = self.expr(left);
                let right = self.expr(right);
                self.binary(*op, left, right, span)
            }
            ast::ExprKind::BoolOp { op, left, right } => {
                let left = self.expr(left);
                let right = self.expr(right);
                self.bool_op(*op, left, right, span)
            }
            ast::ExprKind::Compare { first, rest } => self.compare(first, rest, span),
            ast::ExprKind::IfExp { cond, body, orelse } => {
                let cond = self.expr(cond);
                let cond = self.truthy(cond.expr);
                let then = self.expr(body);
                let orelse = self.expr(orelse);
                self.if_exp(cond, then, orelse, span)
            }
            ast::ExprKind::Tuple(items) => {
                let mut parts = Vec::new();
                let mut dtypes = Vec::new();
                let mut known = true;
                for item in items {
                    let typed = self.expr(item);
                    match typed.expr.ty.clone() {
                        Type::Scalar(dtype) => {
                            dtypes.push(dtype);
                            parts.push(typed.expr);
                        }
                        Type::Unknown => known = false,
                        other => {
                            self.error(
                                Diagnostic::error(
                                    "E0402",
                                    item.span,
                                    format!("tuples may only hold scalars, not `{other}`"),
                                )
                                .with_help("return or pass arrays separately"),
                            );
                            known = false;
                        }
                    }
                }
                if !known {
                    return Typed::poison(span);
                }
                if parts.is_empty() {
                    self.error(Diagnostic::error("E0402", span, "empty tuples are not supported"));
                    return Typed::poison(span);
                }
                Typed::new(tir::ExprKind::Tuple(parts), Type::Tuple(dtypes), span, false)
            }
            ast::ExprKind::Error => Typed::poison(span),
        }
    }

    fn name(&mut self, name: &str, span: Span) -> Typed {
        if let Some(&id) = self.names.get(name) {
            return self.read_local(id, span);
        }
        if let Some(value) = math_constant(name) {
            return Typed::constant(Scalar::F64(value), span, true);
        }
        let diagnostic = if self.cx.function_index.contains_key(name) {
            Diagnostic::error("E0402", span, format!("the function `{name}` cannot be used as a value"))
                .with_help(format!("call it: `{name}(...)`"))
        } else if matches!(name, "range" | "prange" | "len" | "min" | "max" | "abs" | "np" | "math" | "numpy") {
            Diagnostic::error("E0402", span, format!("`{name}` cannot be used as a value"))
                .with_help("call it, or use one of its attributes")
        } else {
            let mut diagnostic = Diagnostic::error("E0301", span, format!("unknown name `{name}`"))
                .with_span_label("not defined in this function");
            if let Some(close) = self.similar_name(name) {
                diagnostic = diagnostic.with_help(format!("did you mean `{close}`?"));
            } else {
                diagnostic = diagnostic.with_help("kernels see only their parameters, their local variables, the other functions of the file and the math builtins");
            }
            diagnostic
        };
        self.error(diagnostic);
        Typed::poison(span)
    }

    fn similar_name(&self, name: &str) -> Option<String> {
        if name.len() < 3 {
            return None;
        }
        let candidates = self.locals[..self.named_count].iter().map(|slot| slot.name.as_str());
        candidates
            .filter(|candidate| edit_distance(candidate, name) <= 1 + name.len() / 4)
            .min_by_key(|candidate| edit_distance(candidate, name))
            .map(str::to_string)
    }

    pub fn read_local(&mut self, id: LocalId, span: Span) -> Typed {
        let ty = self.slot(id).ty.clone();
        if !ty.is_known() {
            // After another error the unknown type is that error's echo.
            let clean = self.cx.diagnostics.len() == self.diagnostics_before;
            if self.final_pass && clean && self.reported_unknown.insert(id) {
                let name = self.slot(id).name.clone();
                self.error(
                    Diagnostic::error("E0406", span, format!("cannot infer the type of `{name}`"))
                        .with_span_label("used here")
                        .with_label(self.slot(id).span, "the only assignments depend on its own value")
                        .with_help(format!("give `{name}` an initial value before it is used, e.g. `{name} = 0.0`")),
                );
            }
            return Typed::poison(span);
        }
        Typed::new(tir::ExprKind::Local(id), ty, span, false)
    }

    /// Converts a scalar to `to`, folding constants and checking that weak
    /// integer literals fit (NumPy 2 raises `OverflowError` there too).
    pub fn cast(&mut self, value: Typed, to: ScalarType) -> tir::Expr {
        let Some(from) = value.scalar() else { return value.expr };
        if from == to {
            return value.expr;
        }
        if let Some(constant) = value.const_value() {
            if value.weak && from == ScalarType::I64 && to.is_int() {
                let (low, high) = to.int_range();
                let literal = constant.to_i128();
                if literal < low || literal > high {
                    self.error(
                        Diagnostic::error("E0407", value.expr.span, format!("integer literal {literal} does not fit in `{to}`"))
                            .with_span_label(format!("used as a `{to}` here"))
                            .with_help(format!("`{to}` holds {low} to {high}; convert the other operand to a wider type first, e.g. `np.int64(x)`")),
                    );
                }
            }
            return tir::Expr {
                kind: tir::ExprKind::Const(constant.cast(to)),
                ty: Type::Scalar(to),
                span: value.expr.span,
            };
        }
        let span = value.expr.span;
        tir::Expr { kind: tir::ExprKind::Cast(Box::new(value.expr)), ty: Type::Scalar(to), span }
    }

    /// A condition as `bool` (Python truthiness).
    pub fn truthy(&mut self, expr: tir::Expr) -> tir::Expr {
        match expr.ty.clone() {
            Type::Scalar(ScalarType::Bool) | Type::Unknown => expr,
            Type::Scalar(_) => self.cast(Typed { expr, weak: false }, ScalarType::Bool),
            other => {
                self.error(
                    Diagnostic::error("E0402", expr.span, format!("a `{other}` cannot be used as a condition"))
                        .with_help("test a scalar, e.g. `if a.shape[0] > 0:` or `if a[i] > 0:`"),
                );
                expr
            }
        }
    }

    /// The common dtype of two scalar operands, with weak literals adapting.
    fn common(&self, left: &Typed, right: &Typed) -> Option<ScalarType> {
        let (a, b) = (left.scalar()?, right.scalar()?);
        Some(match (left.weak, right.weak) {
            (true, false) => weak_with(a, b),
            (false, true) => weak_with(b, a),
            _ => promote(a, b),
        })
    }

    /// Reports an operator applied to non-scalars; returns false if so.
    fn require_scalars(&mut self, what: &str, operands: &[&Typed], span: Span) -> bool {
        for operand in operands {
            match &operand.expr.ty {
                Type::Scalar(_) => {}
                Type::Unknown => return false,
                Type::Array(_) => {
                    self.error(
                        Diagnostic::error("E0402", span, format!("`{what}` on whole arrays is not supported"))
                            .with_label(operand.expr.span, format!("this is `{}`", operand.expr.ty))
                            .with_help("kernels work element by element: write a loop over the indices"),
                    );
                    return false;
                }
                other => {
                    self.error(
                        Diagnostic::error("E0402", span, format!("`{what}` is not defined for `{other}`"))
                            .with_label(operand.expr.span, format!("this is `{other}`")),
                    );
                    return false;
                }
            }
        }
        true
    }

    pub fn binary(&mut self, op: ast::BinOp, left: Typed, right: Typed, span: Span) -> Typed {
        if op == ast::BinOp::MatMul {
            self.error(
                Diagnostic::error("E0402", span, "the `@` matrix-multiply operator is not supported")
                    .with_help("write the loops, or call a kernel that does"),
            );
            return Typed::poison(span);
        }
        if !self.require_scalars(op.symbol(), &[&left, &right], span) {
            return Typed::poison(span);
        }
        let common = self.common(&left, &right).expect("both scalars");
        let weak = left.weak && right.weak;
        let (dtype, tir_op) = match op {
            ast::BinOp::Add | ast::BinOp::Sub | ast::BinOp::Mul | ast::BinOp::FloorDiv | ast::BinOp::Mod => {
                let dtype = if common.is_bool() { ScalarType::I64 } else { common };
                let tir_op = match op {
                    ast::BinOp::Add => BinaryOp::Add,
                    ast::BinOp::Sub => BinaryOp::Sub,
                    ast::BinOp::Mul => BinaryOp::Mul,
                    ast::BinOp::FloorDiv => BinaryOp::FloorDiv,
                    _ => BinaryOp::Mod,
                };
                (dtype, tir_op)
            }
            ast::BinOp::Div => (if common.is_float() { common } else { ScalarType::F64 }, BinaryOp::Div),
            ast::BinOp::Pow => return self.power(left, right, common, span),
            ast::BinOp::BitAnd | ast::BinOp::BitOr | ast::BinOp::BitXor | ast::BinOp::LShift | ast::BinOp::RShift => {
                if common.is_float() {
                    self.error(
                        Diagnostic::error(
                            "E0402",
                            span,
                            format!("`{}` needs integer or bool operands, not `{common}`", op.symbol()),
                        )
                        .with_help("convert with `int(...)` first"),
                    );
                    return Typed::poison(span);
                }
                let shift = matches!(op, ast::BinOp::LShift | ast::BinOp::RShift);
                let dtype = if shift && common.is_bool() { ScalarType::I64 } else { common };
                let tir_op = match op {
                    ast::BinOp::BitAnd => BinaryOp::BitAnd,
                    ast::BinOp::BitOr => BinaryOp::BitOr,
                    ast::BinOp::BitXor => BinaryOp::BitXor,
                    ast::BinOp::LShift => BinaryOp::LShift,
                    _ => BinaryOp::RShift,
                };
                (dtype, tir_op)
            }
            ast::BinOp::MatMul => unreachable!("rejected above"),
        };
        let left = self.cast(left, dtype);
        let right = self.cast(right, dtype);
        Typed::new(tir::ExprKind::Binary(tir_op, Box::new(left), Box::new(right)), Type::Scalar(dtype), span, weak)
    }

    /// `**`: exact repeated multiplication for a float base and a small
    /// constant integer exponent; integer powers for ints; `pow` otherwise.
    fn power(&mut self, left: Typed, right: Typed, common: ScalarType, span: Span) -> Typed {
        let weak = left.weak && right.weak;
        let left_ty = left.scalar().expect("scalar");
        let exponent = right.const_value().filter(|c| right.weak && c.ty() == ScalarType::I64).map(|c| c.to_i128());
        // A float base (or an int base with a float partner) raised to a
        // small constant integer.
        if let Some(n) = exponent.filter(|n| n.abs() <= 64) {
            let base_ty = if left_ty.is_float() {
                left_ty
            } else if left.weak && n < 0 {
                ScalarType::F64
            } else {
                ScalarType::Bool
            };
            if base_ty.is_float() {
                let base = self.cast(left, base_ty);
                return Typed::new(tir::ExprKind::Powi(Box::new(base), n as i32), Type::Scalar(base_ty), span, weak);
            }
        }
        let dtype = if common.is_bool() { ScalarType::I64 } else { common };
        let left = self.cast(left, dtype);
        let right = self.cast(right, dtype);
        Typed::new(
            tir::ExprKind::Binary(BinaryOp::Pow, Box::new(left), Box::new(right)),
            Type::Scalar(dtype),
            span,
            weak,
        )
    }

    fn unary(&mut self, op: ast::UnaryOp, operand: Typed, span: Span) -> Typed {
        let symbol = match op {
            ast::UnaryOp::Neg => "-",
            ast::UnaryOp::Pos => "+",
            ast::UnaryOp::Invert => "~",
            ast::UnaryOp::Not => "not",
        };
        if !self.require_scalars(symbol, &[&operand], span) {
            return Typed::poison(span);
        }
        let dtype = operand.scalar().expect("scalar");
        let weak = operand.weak;
        match op {
            ast::UnaryOp::Not => {
                let cond = self.truthy(operand.expr);
                Typed::new(
                    tir::ExprKind::Unary(tir::UnaryOp::Not, Box::new(cond)),
                    Type::Scalar(ScalarType::Bool),
                    span,
                    false,
                )
            }
            ast::UnaryOp::Pos | ast::UnaryOp::Neg => {
                let dtype = if dtype.is_bool() { ScalarType::I64 } else { dtype };
                let value = self.cast(operand, dtype);
                if op == ast::UnaryOp::Pos {
                    return Typed { expr: tir::Expr { span, ..value }, weak };
                }
                if let tir::ExprKind::Const(constant) = value.kind {
                    let negated = match constant {
                        Scalar::F64(v) => Scalar::F64(-v),
                        Scalar::F32(v) => Scalar::F32(-v),
                        other => Scalar::from_i128_wrapping(-other.to_i128(), dtype),
                    };
                    return Typed::constant(negated, span, weak);
                }
                Typed::new(tir::ExprKind::Unary(tir::UnaryOp::Neg, Box::new(value)), Type::Scalar(dtype), span, weak)
            }
            ast::UnaryOp::Invert => {
                if dtype.is_float() {
                    self.error(
                        Diagnostic::error(
                            "E0402",
                            span,
                            format!("`~` needs an integer or bool operand, not `{dtype}`"),
                        )
                        .with_help("for a logical negation write `not x`"),
                    );
                    return Typed::poison(span);
                }
                let expr = operand.expr;
                Typed::new(tir::ExprKind::Unary(tir::UnaryOp::Invert, Box::new(expr)), Type::Scalar(dtype), span, weak)
            }
        }
    }

    fn bool_op(&mut self, op: ast::BoolOp, left: Typed, right: Typed, span: Span) -> Typed {
        let word = if op == ast::BoolOp::And { "and" } else { "or" };
        if !self.require_scalars(word, &[&left, &right], span) {
            return Typed::poison(span);
        }
        let dtype = self.common(&left, &right).expect("scalars");
        let weak = left.weak && right.weak;
        let left = self.cast(left, dtype);
        let right = self.cast(right, dtype);
        let kind = if op == ast::BoolOp::And {
            tir::ExprKind::And(Box::new(left), Box::new(right))
        } else {
            tir::ExprKind::Or(Box::new(left), Box::new(right))
        };
        Typed::new(kind, Type::Scalar(dtype), span, weak)
    }

    fn compare(&mut self, first: &'a ast::Expr, rest: &'a [(ast::CmpOp, ast::Expr)], span: Span) -> Typed {
        let first = self.expr(first);
        let mut previous = first.clone();
        let mut parts = Vec::new();
        let mut ok = true;
        for (op, operand) in rest {
            let current = self.expr(operand);
            if !self.require_scalars(op.symbol(), &[&previous, &current], span) {
                ok = false;
                previous = current;
                continue;
            }
            let mut dtype = self.common(&previous, &current).expect("scalars");
            // A literal outside the other side's range still compares by value
            // (NumPy 2 does the same): widen instead of wrapping the literal.
            for side in [&previous, &current] {
                if let (true, Some(constant)) = (side.weak, side.const_value()) {
                    let (low, high) = dtype.int_range();
                    let literal = constant.to_i128();
                    if dtype.is_int() && (literal < low || literal > high) {
                        dtype = if dtype == ScalarType::U64 { ScalarType::F64 } else { ScalarType::I64 };
                    }
                }
            }
            parts.push((*op, dtype, current.expr.clone()));
            previous = current;
        }
        if !ok {
            return Typed::poison(span);
        }
        let weak = false;
        Typed::new(
            tir::ExprKind::Compare { first: Box::new(first.expr), rest: parts },
            Type::Scalar(ScalarType::Bool),
            span,
            weak,
        )
    }

    fn if_exp(&mut self, cond: tir::Expr, then: Typed, orelse: Typed, span: Span) -> Typed {
        let (ty, weak) = match (&then.expr.ty, &orelse.expr.ty) {
            (Type::Unknown, _) | (_, Type::Unknown) => return Typed::poison(span),
            (Type::Scalar(_), Type::Scalar(_)) => {
                (Type::Scalar(self.common(&then, &orelse).expect("scalars")), then.weak && orelse.weak)
            }
            (a, b) => match super::join(a, b) {
                Some(joined) => (joined, false),
                None => {
                    self.error(
                        Diagnostic::error(
                            "E0401",
                            span,
                            format!("the two branches have different types: `{a}` and `{b}`"),
                        )
                        .with_label(then.expr.span, format!("`{a}`"))
                        .with_label(orelse.expr.span, format!("`{b}`")),
                    );
                    return Typed::poison(span);
                }
            },
        };
        let (then, orelse) = match &ty {
            Type::Scalar(dtype) => (self.cast(then, *dtype), self.cast(orelse, *dtype)),
            Type::Tuple(_) if then.expr.ty != orelse.expr.ty => {
                self.error(
                    Diagnostic::error("E0401", span, "the two branches give tuples of different types")
                        .with_help("convert the elements so both branches give the same tuple type"),
                );
                return Typed::poison(span);
            }
            _ => (then.expr, orelse.expr),
        };
        Typed::new(
            tir::ExprKind::IfExp { cond: Box::new(cond), then: Box::new(then), orelse: Box::new(orelse) },
            ty,
            span,
            weak,
        )
    }

    /// An array index: any integer, converted to `i64`.
    pub fn index_expr(&mut self, index: &'a ast::Expr) -> tir::Expr {
        let typed = self.expr(index);
        match typed.expr.ty.clone() {
            Type::Scalar(dtype) if dtype.is_int() => self.cast(typed, ScalarType::I64),
            Type::Unknown => typed.expr,
            other => {
                let help = match other {
                    Type::Scalar(ScalarType::Bool) => "boolean masks are not supported; test the condition in a loop",
                    Type::Scalar(_) => "convert the index with `int(...)`",
                    _ => "index with one integer per axis: `a[i, j]`",
                };
                self.error(
                    Diagnostic::error("E0403", index.span, format!("array indices must be integers, not `{other}`"))
                        .with_help(help),
                );
                Typed::poison(index.span).expr
            }
        }
    }

    fn subscript(&mut self, base: &'a ast::Expr, items: &'a [ast::SubscriptItem], span: Span) -> Typed {
        // `a.shape[k]` reads one extent without building the tuple.
        if let ast::ExprKind::Attribute { value, attr } = &base.kind {
            if attr.name == "shape" {
                let array = self.expr(value);
                if let Type::Array(array_ty) = array.expr.ty.clone() {
                    let axis = match items {
                        [ast::SubscriptItem::Index(index)] => self.constant_int(index),
                        _ => None,
                    };
                    let Some(axis) = axis else {
                        self.error(
                            Diagnostic::error("E0409", span, "`.shape` must be indexed with a constant integer")
                                .with_help("write `a.shape[0]`, `a.shape[1]`, ..."),
                        );
                        return Typed::poison(span);
                    };
                    let ndim = array_ty.ndim as i64;
                    let normalised = if axis < 0 { axis + ndim } else { axis };
                    if !(0..ndim).contains(&normalised) {
                        self.error(
                            Diagnostic::error(
                                "E0403",
                                span,
                                format!("axis {axis} is out of range for a {ndim}-D array"),
                            )
                            .with_help(format!("valid axes are 0 to {}", ndim - 1)),
                        );
                        return Typed::poison(span);
                    }
                    return self.builtin_expr(
                        tir::Builtin::Shape(normalised as u8),
                        vec![array.expr],
                        Type::Scalar(ScalarType::I64),
                        span,
                    );
                }
                if !array.expr.ty.is_known() {
                    return Typed::poison(span);
                }
            }
        }
        let base_typed = self.expr(base);
        match base_typed.expr.ty.clone() {
            Type::Unknown => Typed::poison(span),
            Type::Tuple(dtypes) => {
                let index = match items {
                    [ast::SubscriptItem::Index(index)] => self.constant_int(index),
                    _ => None,
                };
                let Some(index) = index else {
                    self.error(
                        Diagnostic::error("E0409", span, "tuples must be indexed with a constant integer")
                            .with_help("write `t[0]`, `t[1]`, ... or unpack it: `a, b = t`"),
                    );
                    return Typed::poison(span);
                };
                let len = dtypes.len() as i64;
                let normalised = if index < 0 { index + len } else { index };
                if !(0..len).contains(&normalised) {
                    self.error(Diagnostic::error(
                        "E0403",
                        span,
                        format!("tuple index {index} is out of range for a tuple of {len}"),
                    ));
                    return Typed::poison(span);
                }
                let dtype = dtypes[normalised as usize];
                Typed::new(
                    tir::ExprKind::TupleGet(Box::new(base_typed.expr), normalised as u32),
                    Type::Scalar(dtype),
                    span,
                    false,
                )
            }
            Type::Array(array_ty) => self.array_subscript(base, base_typed.expr, array_ty, items, span),
            other => {
                self.error(
                    Diagnostic::error("E0403", base.span, format!("a `{other}` cannot be indexed"))
                        .with_span_label("not an array or tuple"),
                );
                Typed::poison(span)
            }
        }
    }

    fn array_subscript(
        &mut self,
        base: &'a ast::Expr,
        array: tir::Expr,
        array_ty: ArrayType,
        items: &'a [ast::SubscriptItem],
        span: Span,
    ) -> Typed {
        let name = super::stmt::render_expr(base);
        if items.len() > array_ty.ndim as usize {
            self.error(
                Diagnostic::error(
                    "E0403",
                    span,
                    format!("too many indices: a {}-D array indexed with {}", array_ty.ndim, items.len()),
                )
                .with_label(base.span, format!("this is `{}`", array.ty)),
            );
            return Typed::poison(span);
        }
        let all_indices = items.iter().all(|item| matches!(item, ast::SubscriptItem::Index(_)));
        if all_indices && items.len() == array_ty.ndim as usize {
            let indices = items
                .iter()
                .map(|item| match item {
                    ast::SubscriptItem::Index(index) => self.index_expr(index),
                    ast::SubscriptItem::Slice { .. } => unreachable!("all indices"),
                })
                .collect();
            return Typed::new(
                tir::ExprKind::Index { array: Box::new(array), indices, name },
                Type::Scalar(array_ty.dtype),
                span,
                false,
            );
        }
        let mut view_items = Vec::new();
        let mut dropped = 0;
        for item in items {
            match item {
                ast::SubscriptItem::Index(index) => {
                    dropped += 1;
                    view_items.push(tir::ViewItem::Index(self.index_expr(index)));
                }
                ast::SubscriptItem::Slice { lower, upper, step, span: slice_span } => {
                    if let Some(step) = step {
                        if self.constant_int(step) != Some(1) {
                            self.error(
                                Diagnostic::error(
                                    "E0403",
                                    *slice_span,
                                    "slices with a step other than 1 are not supported",
                                )
                                .with_help("index with a loop instead: `for k in range(lo, hi, step): ... a[k]`"),
                            );
                        }
                    }
                    let lower = lower.as_ref().map(|e| self.index_expr(e));
                    let upper = upper.as_ref().map(|e| self.index_expr(e));
                    view_items.push(tir::ViewItem::Range { lower, upper });
                }
            }
        }
        let ndim = array_ty.ndim - dropped;
        let ty = Type::Array(ArrayType { dtype: array_ty.dtype, ndim });
        Typed::new(tir::ExprKind::View { array: Box::new(array), items: view_items, name }, ty, span, false)
    }

    /// The value of a constant integer expression (`2`, `-1`), if it is one.
    pub fn constant_int(&mut self, expr: &'a ast::Expr) -> Option<i64> {
        match &expr.kind {
            ast::ExprKind::Int(value) => i64::try_from(*value).ok(),
            ast::ExprKind::Unary { op: ast::UnaryOp::Neg, operand } => match operand.kind {
                ast::ExprKind::Int(value) => i64::try_from(value).ok().map(|v| -v),
                _ => None,
            },
            ast::ExprKind::Unary { op: ast::UnaryOp::Pos, operand } => self.constant_int(operand),
            _ => None,
        }
    }

    pub fn builtin_expr(&mut self, op: tir::Builtin, args: Vec<tir::Expr>, ty: Type, span: Span) -> Typed {
        Typed::new(tir::ExprKind::Builtin { op, args }, ty, span, false)
    }

    fn attribute(&mut self, value: &'a ast::Expr, attr: &'a ast::Ident, span: Span) -> Typed {
        if let ast::ExprKind::Name(module) = &value.kind {
            if !self.names.contains_key(module.as_str()) && matches!(module.as_str(), "math" | "np" | "numpy") {
                if let Some(constant) = math_constant(&attr.name) {
                    return Typed::constant(Scalar::F64(constant), span, true);
                }
                let help = if ScalarType::from_name(&attr.name).is_some() {
                    format!(
                        "a dtype is used as `dtype={module}.{}` or called to convert: `{module}.{}(x)`",
                        attr.name, attr.name
                    )
                } else {
                    "call it, or see the README for the supported math functions".to_string()
                };
                self.error(
                    Diagnostic::error("E0305", span, format!("`{module}.{}` is not supported as a value", attr.name))
                        .with_help(help),
                );
                return Typed::poison(span);
            }
        }
        let array = self.expr(value);
        let Type::Array(array_ty) = array.expr.ty.clone() else {
            if array.expr.ty.is_known() {
                self.error(Diagnostic::error(
                    "E0305",
                    attr.span,
                    format!("a `{}` has no attribute `{}`", array.expr.ty, attr.name),
                ));
            }
            return Typed::poison(span);
        };
        let i64_ty = Type::Scalar(ScalarType::I64);
        match attr.name.as_str() {
            "shape" => {
                if !matches!(array.expr.kind, tir::ExprKind::Local(_)) {
                    self.error(
                        Diagnostic::error("E0409", span, "`.shape` of a temporary array is not supported")
                            .with_help("store the array in a variable first, then use `name.shape`"),
                    );
                    return Typed::poison(span);
                }
                let parts: Vec<tir::Expr> = (0..array_ty.ndim)
                    .map(|axis| {
                        self.builtin_expr(tir::Builtin::Shape(axis), vec![array.expr.clone()], i64_ty.clone(), span)
                            .expr
                    })
                    .collect();
                let ty = Type::Tuple(vec![ScalarType::I64; parts.len()]);
                Typed::new(tir::ExprKind::Tuple(parts), ty, span, false)
            }
            "size" => self.builtin_expr(tir::Builtin::Size, vec![array.expr], i64_ty, span),
            "ndim" => Typed::constant(Scalar::I64(array_ty.ndim as i64), span, false),
            other => {
                self.error(
                    Diagnostic::error("E0305", attr.span, format!("array attribute `.{other}` is not supported"))
                        .with_help("arrays support `.shape`, `.size` and `.ndim`"),
                );
                Typed::poison(span)
            }
        }
    }
}

/// `pi`, `e`, `tau`, `inf`, `nan` (bare, or as `math.X` / `np.X`).
fn math_constant(name: &str) -> Option<f64> {
    Some(match name {
        "pi" => std::f64::consts::PI,
        "e" => std::f64::consts::E,
        "tau" => std::f64::consts::TAU,
        "inf" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => return None,
    })
}

pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let current = row[j + 1];
            row[j + 1] = if ca == *cb { previous } else { 1 + previous.min(row[j]).min(row[j + 1]) };
            previous = current;
        }
    }
    row[b.len()]
}
