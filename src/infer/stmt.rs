//! Walking one function body: locals, statements, loops and returns.

use super::{join, parse_annotation, plural, prange, Inferrer};
use crate::ast;
use crate::diag::Diagnostic;
use crate::span::Span;
use crate::tir::{self, LocalId};
use crate::types::{ScalarType, Type};
use crate::value::Scalar;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

pub(super) struct WalkOutcome {
    pub local_types: Vec<Type>,
    pub ret: Type,
    /// The typed function (final walks only).
    pub function: Option<tir::Function>,
}

/// One local variable while a body is walked.
pub(super) struct Slot {
    pub name: String,
    pub ty: Type,
    /// Where the local is first defined (for "first assigned here" labels).
    pub span: Span,
    /// Declared with an annotation: its type is fixed.
    pub annotated: bool,
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum LoopKind {
    Serial,
    Parallel,
}

/// The state of one walk over one specialisation's body.
pub(super) struct Walker<'c, 'a> {
    pub cx: &'c mut Inferrer<'a>,
    pub def: &'a ast::FunctionDef,
    pub final_pass: bool,
    pub locals: Vec<Slot>,
    pub names: HashMap<&'a str, LocalId>,
    pub named_count: usize,
    pub ret: Type,
    pub ret_annotated: bool,
    pub saw_value_return: Option<Span>,
    pub saw_bare_return: Option<Span>,
    pub loops: Vec<LoopKind>,
    pub reported_unknown: HashSet<LocalId>,
    /// How many diagnostics existed when this walk started.
    pub diagnostics_before: usize,
}

/// Walks a specialisation's body once; see the module docs for the two modes.
pub(super) fn walk_function(cx: &mut Inferrer<'_>, spec: usize, final_pass: bool) -> WalkOutcome {
    let module = cx.module;
    let def = &module.functions[cx.specs[spec].def_index];
    let params = cx.specs[spec].params.clone();
    let previous_types = cx.specs[spec].local_types.clone();
    let mut ret_annotated = false;
    let mut ret = cx.specs[spec].ret.clone();
    if let Some(annotation) = &def.returns {
        match parse_annotation(annotation) {
            Ok(ty) => {
                ret = ty;
                ret_annotated = true;
            }
            Err(error) => {
                if final_pass {
                    cx.diagnostics.push(error);
                }
            }
        }
    }
    let mut walker = Walker {
        cx,
        def,
        final_pass,
        locals: Vec::new(),
        names: HashMap::default(),
        named_count: 0,
        ret,
        ret_annotated,
        saw_value_return: None,
        saw_bare_return: None,
        loops: Vec::new(),
        reported_unknown: HashSet::default(),
        diagnostics_before: 0,
    };
    walker.diagnostics_before = walker.cx.diagnostics.len();
    // A parameter is a local like any other: it starts with the argument's
    // type and widens if the body assigns it something wider (an annotated
    // parameter keeps its annotation).
    for (param, ty) in def.params.iter().zip(&params) {
        walker.declare(&param.name.name, param.name.span, ty.clone(), param.annotation.is_some());
    }
    declare_assigned_names(&mut walker, &def.body);
    walker.named_count = walker.locals.len();
    for (index, ty) in previous_types.iter().enumerate() {
        if let Some(slot) = walker.locals.get_mut(index) {
            if !slot.annotated {
                slot.ty = if index < params.len() {
                    join(&params[index], ty).unwrap_or_else(|| params[index].clone())
                } else {
                    ty.clone()
                };
            }
        }
    }

    let mut body = walker.block(&def.body);

    // A parameter whose local widened receives the argument in a hidden
    // local of the argument's type and converts it on entry.
    let mut param_ids = Vec::with_capacity(params.len());
    let mut prologue = Vec::new();
    for (index, arg_ty) in params.iter().enumerate() {
        let named = LocalId(index as u32);
        if &walker.locals[index].ty == arg_ty || !final_pass {
            param_ids.push(named);
            continue;
        }
        let span = walker.locals[index].span;
        let incoming = walker.temp(arg_ty.clone(), span);
        walker.locals[incoming.0 as usize].name = walker.locals[index].name.clone();
        param_ids.push(incoming);
        let read = tir::Expr { kind: tir::ExprKind::Local(incoming), ty: arg_ty.clone(), span };
        walker.assign_local(named, super::expr::Typed { expr: read, weak: false }, span, &mut prologue);
    }
    if !prologue.is_empty() {
        prologue.append(&mut body);
        body = prologue;
    }

    if walker.saw_value_return.is_none() && !walker.ret_annotated && !walker.ret.is_known() {
        walker.ret = Type::None;
    }
    if final_pass {
        walker.check_returns();
    }
    let local_types = walker.locals[..walker.named_count].iter().map(|slot| slot.ty.clone()).collect();
    let ret = walker.ret.clone();
    let function = final_pass.then(|| tir::Function {
        name: def.name.name.clone(),
        params: param_ids,
        locals: walker
            .locals
            .iter()
            .map(|slot| tir::Local { name: slot.name.clone(), ty: slot.ty.clone(), span: slot.span })
            .collect(),
        ret: ret.clone(),
        body,
        span: def.span,
    });
    WalkOutcome { local_types, ret, function }
}

/// Declares every name the body assigns, in order of first appearance.
fn declare_assigned_names<'a>(walker: &mut Walker<'_, 'a>, block: &'a [ast::Stmt]) {
    for stmt in block {
        match &stmt.kind {
            ast::StmtKind::Assign { targets, .. } => {
                for target in targets {
                    declare_target(walker, target);
                }
            }
            ast::StmtKind::AnnAssign { target, annotation, .. } => {
                let declared = parse_annotation(annotation).ok().filter(|ty| !matches!(ty, Type::None));
                match (walker.names.get(target.name.as_str()), declared) {
                    (Some(&id), Some(ty)) => {
                        let slot = &mut walker.locals[id.0 as usize];
                        if !slot.annotated {
                            slot.ty = ty;
                            slot.annotated = true;
                        }
                    }
                    (None, Some(ty)) => {
                        walker.declare(&target.name, target.span, ty, true);
                    }
                    (None, None) => {
                        walker.declare(&target.name, target.span, Type::Unknown, false);
                    }
                    (Some(_), None) => {}
                }
            }
            ast::StmtKind::AugAssign { target, .. } => declare_target(walker, target),
            ast::StmtKind::For { target, body, .. } => {
                if !walker.names.contains_key(target.name.as_str()) {
                    walker.declare(&target.name, target.span, Type::Unknown, false);
                }
                declare_assigned_names(walker, body);
            }
            ast::StmtKind::If { then, orelse, .. } => {
                declare_assigned_names(walker, then);
                declare_assigned_names(walker, orelse);
            }
            ast::StmtKind::While { body, .. } => declare_assigned_names(walker, body),
            _ => {}
        }
    }
}

fn declare_target<'a>(walker: &mut Walker<'_, 'a>, target: &'a ast::Expr) {
    match &target.kind {
        ast::ExprKind::Name(name) if !walker.names.contains_key(name.as_str()) => {
            walker.declare(name, target.span, Type::Unknown, false);
        }
        ast::ExprKind::Tuple(items) => {
            for item in items {
                declare_target(walker, item);
            }
        }
        _ => {}
    }
}

impl<'c, 'a> Walker<'c, 'a> {
    pub fn declare(&mut self, name: &'a str, span: Span, ty: Type, annotated: bool) -> LocalId {
        let id = LocalId(self.locals.len() as u32);
        self.locals.push(Slot { name: name.to_string(), ty, span, annotated });
        self.names.insert(name, id);
        id
    }

    /// A hidden temporary local (name starts with `$`).
    pub fn temp(&mut self, ty: Type, span: Span) -> LocalId {
        let id = LocalId(self.locals.len() as u32);
        self.locals.push(Slot { name: format!("${}", id.0), ty, span, annotated: true });
        id
    }

    /// Records an error (final walks only: earlier walks may see types that
    /// are still too low).
    pub fn error(&mut self, diagnostic: Diagnostic) {
        if self.final_pass {
            self.cx.diagnostics.push(diagnostic);
        }
    }

    pub fn slot(&self, id: LocalId) -> &Slot {
        &self.locals[id.0 as usize]
    }

    pub fn block(&mut self, block: &'a [ast::Stmt]) -> tir::Block {
        let mut out = Vec::with_capacity(block.len());
        for stmt in block {
            crate::stack::guarded(|| self.stmt(stmt, &mut out));
        }
        out
    }

    fn push(out: &mut tir::Block, kind: tir::StmtKind, span: Span) {
        out.push(tir::Stmt { kind, span });
    }

    fn stmt(&mut self, stmt: &'a ast::Stmt, out: &mut tir::Block) {
        let span = stmt.span;
        match &stmt.kind {
            ast::StmtKind::Pass => {}
            ast::StmtKind::Expr(expr) => {
                let value = self.expr(expr);
                Self::push(out, tir::StmtKind::Expr(value.expr), span);
            }
            ast::StmtKind::Assign { targets, value } => {
                let value_typed = self.expr(value);
                if targets.len() == 1 {
                    self.assign_to(&targets[0], value_typed, value.span, out);
                } else {
                    let value_expr = self.reusable(value_typed.expr, out);
                    for target in targets {
                        let typed = super::expr::Typed { expr: value_expr.clone(), weak: value_typed.weak };
                        self.assign_to(target, typed, value.span, out);
                    }
                }
            }
            ast::StmtKind::AnnAssign { target, annotation, value } => {
                if let Err(error) = parse_annotation(annotation) {
                    self.error(error);
                }
                if let Some(value) = value {
                    let typed = self.expr(value);
                    let id = self.names[target.name.as_str()];
                    self.assign_local(id, typed, value.span, out);
                }
            }
            ast::StmtKind::AugAssign { target, op, value } => self.aug_assign(target, *op, value, span, out),
            ast::StmtKind::If { cond, then, orelse } => {
                let cond = self.condition(cond);
                let then = self.block(then);
                let orelse = self.block(orelse);
                Self::push(out, tir::StmtKind::If { cond, then, orelse }, span);
            }
            ast::StmtKind::While { cond, body } => {
                let cond = self.condition(cond);
                self.loops.push(LoopKind::Serial);
                let body = self.block(body);
                self.loops.pop();
                Self::push(out, tir::StmtKind::While { cond, body }, span);
            }
            ast::StmtKind::For { target, iter, body } => self.for_loop(stmt, target, iter, body, out),
            ast::StmtKind::Break | ast::StmtKind::Continue => {
                let keyword = if matches!(stmt.kind, ast::StmtKind::Break) { "break" } else { "continue" };
                match self.loops.last() {
                    None => self.error(
                        Diagnostic::error("E0307", span, format!("`{keyword}` outside a loop"))
                            .with_help(format!("`{keyword}` must be inside a `for` or `while` loop")),
                    ),
                    Some(LoopKind::Parallel) if keyword == "break" => self.error(
                        Diagnostic::error("E0503", span, "`break` is not allowed directly inside a `prange` loop")
                            .with_help("iterations of a prange loop run in parallel and cannot stop each other; use `range` for a loop that exits early"),
                    ),
                    Some(_) => {}
                }
                let kind = if keyword == "break" { tir::StmtKind::Break } else { tir::StmtKind::Continue };
                Self::push(out, kind, span);
            }
            ast::StmtKind::Return(value) => self.return_stmt(value.as_ref(), span, out),
        }
    }

    /// Makes an expression safe to evaluate several times: locals and
    /// constants are returned as they are, anything else is stored in a temp.
    pub fn reusable(&mut self, expr: tir::Expr, out: &mut tir::Block) -> tir::Expr {
        if matches!(expr.kind, tir::ExprKind::Local(_) | tir::ExprKind::Const(_)) || !expr.ty.is_known() {
            return expr;
        }
        let span = expr.span;
        let ty = expr.ty.clone();
        let temp = self.temp(ty.clone(), span);
        Self::push(out, tir::StmtKind::Assign { local: temp, value: expr }, span);
        tir::Expr { kind: tir::ExprKind::Local(temp), ty, span }
    }

    fn condition(&mut self, cond: &'a ast::Expr) -> tir::Expr {
        let typed = self.expr(cond);
        self.truthy(typed.expr)
    }

    fn assign_to(&mut self, target: &'a ast::Expr, value: super::expr::Typed, value_span: Span, out: &mut tir::Block) {
        match &target.kind {
            ast::ExprKind::Name(name) => {
                let id = self.names[name.as_str()];
                self.assign_local(id, value, value_span, out);
            }
            ast::ExprKind::Subscript { value: base, items } => {
                let (array, indices, array_name) = match self.store_target(base, items, target.span) {
                    Some(parts) => parts,
                    None => return,
                };
                self.emit_store(array, indices, array_name, value, target.span, out);
            }
            ast::ExprKind::Tuple(targets) => self.unpack(targets, value, target.span, out),
            _ => self.error(
                Diagnostic::error("E0204", target.span, "cannot assign to this expression")
                    .with_help("assign to a name (`x = ...`), an element (`a[i] = ...`) or a tuple of names"),
            ),
        }
    }

    /// `a, b = value`: the value is stored once, then each part is assigned.
    fn unpack(&mut self, targets: &'a [ast::Expr], value: super::expr::Typed, span: Span, out: &mut tir::Block) {
        let Type::Tuple(items) = value.expr.ty.clone() else {
            if value.expr.ty.is_known() {
                self.error(
                    Diagnostic::error(
                        "E0402",
                        value.expr.span,
                        format!("cannot unpack a `{}` into {} names", value.expr.ty, targets.len()),
                    )
                    .with_span_label("not a tuple")
                    .with_help("only tuples (`return a, b`, `a.shape`) can be unpacked"),
                );
            }
            for target in targets {
                let poison = super::expr::Typed::poison(target.span);
                self.assign_to(target, poison, span, out);
            }
            return;
        };
        if items.len() != targets.len() {
            self.error(
                Diagnostic::error(
                    "E0402",
                    span,
                    format!(
                        "cannot unpack a tuple of {} value{} into {} targets",
                        items.len(),
                        plural(items.len()),
                        targets.len()
                    ),
                )
                .with_label(value.expr.span, format!("this is `{}`", value.expr.ty)),
            );
            return;
        }
        let tuple = self.reusable(value.expr, out);
        for (index, (target, item_ty)) in targets.iter().zip(items).enumerate() {
            let part = tir::Expr {
                kind: tir::ExprKind::TupleGet(Box::new(tuple.clone()), index as u32),
                ty: Type::Scalar(item_ty),
                span: tuple.span,
            };
            self.assign_to(target, super::expr::Typed { expr: part, weak: false }, tuple.span, out);
        }
    }

    /// Assigns to a named local, joining its type (inference) or casting the
    /// value to its final type (emission).
    pub fn assign_local(&mut self, id: LocalId, value: super::expr::Typed, value_span: Span, out: &mut tir::Block) {
        let span = value.expr.span;
        let value_ty = value.expr.ty.clone();
        if matches!(value_ty, Type::None) {
            self.error(
                Diagnostic::error("E0405", value_span, "this call returns no value")
                    .with_help("only assign the result of a function that has `return value`"),
            );
            return;
        }
        if !value_ty.is_known() {
            return;
        }
        let slot_ty = self.slot(id).ty.clone();
        let annotated = self.slot(id).annotated;
        let target_ty = if annotated {
            slot_ty.clone()
        } else {
            match join(&slot_ty, &value_ty) {
                Some(joined) => joined,
                None => {
                    let slot = self.slot(id);
                    let diagnostic = Diagnostic::error(
                        "E0401",
                        value_span,
                        format!("`{}` is assigned a `{value_ty}` here but holds a `{slot_ty}` elsewhere", slot.name),
                    )
                    .with_span_label(format!("this is `{value_ty}`"))
                    .with_label(slot.span, format!("`{}` is first defined here", slot.name))
                    .with_help("a variable has one type for the whole function; use a second variable");
                    self.error(diagnostic);
                    return;
                }
            }
        };
        if !annotated {
            self.locals[id.0 as usize].ty = target_ty.clone();
        }
        let Some(value) = self.convert(value, &target_ty, out) else {
            let slot = self.slot(id);
            let diagnostic = Diagnostic::error(
                "E0401",
                value_span,
                format!("`{}` is declared `{target_ty}` but is assigned a `{value_ty}`", slot.name),
            )
            .with_label(slot.span, "declared here");
            self.error(diagnostic);
            return;
        };
        Self::push(out, tir::StmtKind::Assign { local: id, value }, span);
    }

    /// Converts a value to type `to`: scalars are cast, tuples are cast
    /// element by element (through a temp, so the tuple is evaluated once),
    /// and equal types pass through. `None` when the types cannot convert.
    fn convert(&mut self, value: super::expr::Typed, to: &Type, out: &mut tir::Block) -> Option<tir::Expr> {
        let from = value.expr.ty.clone();
        match (to, &from) {
            (Type::Scalar(dtype), Type::Scalar(_)) => Some(self.cast(value, *dtype)),
            (to, from) if to == from => Some(value.expr),
            (Type::Tuple(to_items), Type::Tuple(from_items)) if to_items.len() == from_items.len() => {
                let span = value.expr.span;
                let tuple = self.reusable(value.expr, out);
                let items = to_items
                    .iter()
                    .zip(from_items)
                    .enumerate()
                    .map(|(index, (dtype, item))| {
                        let part = tir::Expr {
                            kind: tir::ExprKind::TupleGet(Box::new(tuple.clone()), index as u32),
                            ty: Type::Scalar(*item),
                            span,
                        };
                        self.cast(super::expr::Typed { expr: part, weak: false }, *dtype)
                    })
                    .collect();
                Some(tir::Expr { kind: tir::ExprKind::Tuple(items), ty: to.clone(), span })
            }
            _ => None,
        }
    }

    /// The array, `i64` indices and display name of `base[items] = ...`.
    fn store_target(
        &mut self,
        base: &'a ast::Expr,
        items: &'a [ast::SubscriptItem],
        span: Span,
    ) -> Option<(tir::Expr, Vec<tir::Expr>, String)> {
        let array = self.expr(base).expr;
        let Type::Array(array_ty) = array.ty.clone() else {
            if array.ty.is_known() {
                self.error(
                    Diagnostic::error(
                        "E0403",
                        base.span,
                        format!("cannot assign into a `{}`: only array elements can be assigned", array.ty),
                    )
                    .with_span_label("not an array"),
                );
            }
            return None;
        };
        let mut indices = Vec::new();
        for item in items {
            match item {
                ast::SubscriptItem::Index(index) => indices.push(self.index_expr(index)),
                ast::SubscriptItem::Slice { span, .. } => {
                    self.error(
                        Diagnostic::error("E0403", *span, "assigning to a slice is not supported")
                            .with_help("write a loop that assigns each element"),
                    );
                    return None;
                }
            }
        }
        if indices.len() != array_ty.ndim as usize {
            self.error(
                Diagnostic::error(
                    "E0403",
                    span,
                    format!(
                        "a {}-D array element needs {} indices, but {} were given",
                        array_ty.ndim,
                        array_ty.ndim,
                        indices.len()
                    ),
                )
                .with_help("assigning to a whole row or slice is not supported; write a loop"),
            );
            return None;
        }
        let name = self.cx_snippet(base);
        Some((array, indices, name))
    }

    fn emit_store(
        &mut self,
        array: tir::Expr,
        indices: Vec<tir::Expr>,
        array_name: String,
        value: super::expr::Typed,
        span: Span,
        out: &mut tir::Block,
    ) {
        let Type::Array(array_ty) = array.ty.clone() else { return };
        let value = match value.expr.ty.clone() {
            Type::Scalar(_) => self.cast(value, array_ty.dtype),
            Type::Unknown => return,
            other => {
                self.error(
                    Diagnostic::error(
                        "E0402",
                        value.expr.span,
                        format!("cannot store a `{other}` into an element of `{}`", array.ty),
                    )
                    .with_help("array elements hold scalars; copy arrays element by element in a loop"),
                );
                return;
            }
        };
        Self::push(out, tir::StmtKind::Store { array, indices, value, array_name }, span);
    }

    fn aug_assign(
        &mut self,
        target: &'a ast::Expr,
        op: ast::BinOp,
        value: &'a ast::Expr,
        span: Span,
        out: &mut tir::Block,
    ) {
        match &target.kind {
            ast::ExprKind::Name(name) => {
                let id = self.names[name.as_str()];
                let current = self.read_local(id, target.span);
                let rhs = self.expr(value);
                let combined = self.binary(op, current, rhs, span);
                self.assign_local(id, combined, span, out);
            }
            ast::ExprKind::Subscript { value: base, items } => {
                let Some((array, indices, array_name)) = self.store_target(base, items, target.span) else {
                    return;
                };
                let array = self.reusable(array, out);
                let indices: Vec<tir::Expr> = indices.into_iter().map(|index| self.reusable(index, out)).collect();
                let Type::Array(array_ty) = array.ty.clone() else { return };
                let load = tir::Expr {
                    kind: tir::ExprKind::Index {
                        array: Box::new(array.clone()),
                        indices: indices.clone(),
                        name: array_name.clone(),
                    },
                    ty: Type::Scalar(array_ty.dtype),
                    span: target.span,
                };
                let rhs = self.expr(value);
                let combined = self.binary(op, super::expr::Typed { expr: load, weak: false }, rhs, span);
                self.emit_store(array, indices, array_name, combined, span, out);
            }
            _ => self.error(
                Diagnostic::error("E0204", target.span, "cannot use an augmented assignment on this expression")
                    .with_help("augmented assignment works on names (`x += 1`) and elements (`a[i] += 1`)"),
            ),
        }
    }

    fn for_loop(
        &mut self,
        stmt: &'a ast::Stmt,
        target: &'a ast::Ident,
        iter: &'a ast::Expr,
        body: &'a [ast::Stmt],
        out: &mut tir::Block,
    ) {
        let span = stmt.span;
        let Some((kind_name, args)) = range_call(iter) else {
            self.error(
                Diagnostic::error(
                    "E0305",
                    iter.span,
                    "kern `for` loops iterate over `range(...)` or `prange(...)` only",
                )
                .with_help("iterate over indices instead: `for i in range(len(a)):` then use `a[i]`"),
            );
            return;
        };
        let parallel_requested = kind_name == "prange";
        let mut bounds = Vec::new();
        for arg in args {
            let typed = self.expr(arg);
            match typed.expr.ty.clone() {
                Type::Scalar(s) if s.is_int() || s.is_bool() => bounds.push(self.cast(typed, ScalarType::I64)),
                Type::Unknown => bounds.push(typed.expr),
                other => {
                    self.error(
                        Diagnostic::error(
                            "E0402",
                            arg.span,
                            format!("`{kind_name}()` arguments must be integers, not `{other}`"),
                        )
                        .with_help("convert with `int(...)`"),
                    );
                    bounds.push(typed.expr);
                }
            }
        }
        let i64_const = |value: i64, span: Span| tir::Expr {
            kind: tir::ExprKind::Const(Scalar::I64(value)),
            ty: Type::Scalar(ScalarType::I64),
            span,
        };
        let (start, stop, step) = match bounds.len() {
            1 => (i64_const(0, iter.span), bounds.remove(0), i64_const(1, iter.span)),
            2 => {
                let stop = bounds.remove(1);
                (bounds.remove(0), stop, i64_const(1, iter.span))
            }
            3 => {
                let step = bounds.remove(2);
                let stop = bounds.remove(1);
                (bounds.remove(0), stop, step)
            }
            n => {
                self.error(
                    Diagnostic::error(
                        "E0304",
                        iter.span,
                        format!("`{kind_name}()` takes 1 to 3 arguments, but {n} were given"),
                    )
                    .with_help("write `range(stop)`, `range(start, stop)` or `range(start, stop, step)`"),
                );
                return;
            }
        };

        // A prange nested in another prange runs serially.
        let parallel = parallel_requested && !self.loops.contains(&LoopKind::Parallel);
        let var = self.names[target.name.as_str()];
        let var_ty = self.slot(var).ty.clone();
        let joined =
            if self.slot(var).annotated { Some(var_ty.clone()) } else { join(&var_ty, &Type::Scalar(ScalarType::I64)) };
        match joined {
            Some(joined) => {
                if !self.slot(var).annotated {
                    self.locals[var.0 as usize].ty = joined;
                }
            }
            None => {
                let slot = self.slot(var);
                let diagnostic = Diagnostic::error(
                    "E0401",
                    target.span,
                    format!("the loop variable `{}` is an `i64` here but holds a `{var_ty}` elsewhere", slot.name),
                )
                .with_label(slot.span, "first defined here")
                .with_help("use a different name for the loop variable");
                self.error(diagnostic);
            }
        }

        let reductions = if parallel {
            let analysis = prange::analyse(self, stmt, &target.name, body);
            for diagnostic in analysis.diagnostics {
                self.error(diagnostic);
            }
            analysis
                .reductions
                .into_iter()
                .filter_map(|(name, op)| self.names.get(name).map(|&local| tir::Reduction { local, op }))
                .collect()
        } else {
            Vec::new()
        };

        self.loops.push(if parallel { LoopKind::Parallel } else { LoopKind::Serial });
        let mut body_block = Vec::new();
        let induction = if self.slot(var).ty == Type::Scalar(ScalarType::I64) {
            var
        } else {
            let induction = self.temp(Type::Scalar(ScalarType::I64), target.span);
            let read = tir::Expr {
                kind: tir::ExprKind::Local(induction),
                ty: Type::Scalar(ScalarType::I64),
                span: target.span,
            };
            self.assign_local(var, super::expr::Typed { expr: read, weak: false }, target.span, &mut body_block);
            induction
        };
        body_block.extend(self.block(body));
        self.loops.pop();
        let parallel = match (parallel, parallel_requested) {
            (true, _) => Some(tir::Parallel { reductions, nested: false }),
            (false, true) => Some(tir::Parallel { reductions: Vec::new(), nested: true }),
            (false, false) => None,
        };
        Self::push(
            out,
            tir::StmtKind::ForRange {
                var: induction,
                start,
                stop,
                step,
                body: body_block,
                range_span: iter.span,
                parallel,
            },
            span,
        );
    }

    fn return_stmt(&mut self, value: Option<&'a ast::Expr>, span: Span, out: &mut tir::Block) {
        if self.loops.contains(&LoopKind::Parallel) {
            self.error(Diagnostic::error("E0503", span, "`return` is not allowed inside a `prange` loop").with_help(
                "iterations of a prange loop run in parallel; store results in an array and return after the loop",
            ));
        }
        let value = value.filter(|v| !matches!(v.kind, ast::ExprKind::None));
        let Some(value) = value else {
            self.saw_bare_return.get_or_insert(span);
            Self::push(out, tir::StmtKind::Return(None), span);
            return;
        };
        self.saw_value_return.get_or_insert(span);
        let typed = self.expr(value);
        let value_ty = typed.expr.ty.clone();
        match &value_ty {
            Type::Unknown => return,
            Type::None => {
                self.error(Diagnostic::error(
                    "E0405",
                    value.span,
                    "this call returns no value, so it cannot be returned",
                ));
                return;
            }
            _ => {}
        }
        if !self.ret_annotated {
            match join(&self.ret, &value_ty) {
                Some(joined) => self.ret = joined,
                None => {
                    let ret = self.ret.clone();
                    let first = self.saw_value_return.unwrap_or(span);
                    self.error(
                        Diagnostic::error(
                            "E0405",
                            value.span,
                            format!("this returns a `{value_ty}` but the function also returns a `{ret}`"),
                        )
                        .with_label(first, "the first return")
                        .with_help("every `return` of a function must give the same kind of value"),
                    );
                    return;
                }
            }
        }
        let ret = self.ret.clone();
        let Some(expr) = self.convert(typed, &ret, out) else {
            self.error(
                Diagnostic::error(
                    "E0405",
                    value.span,
                    format!("this returns a `{value_ty}` but the function is annotated `-> {ret}`"),
                )
                .with_help("return a value of the annotated type"),
            );
            return;
        };
        Self::push(out, tir::StmtKind::Return(Some(expr)), span);
    }

    /// Final checks on the function's returns: mixed bare/value returns,
    /// reaching the end without a value, and unresolved recursion.
    fn check_returns(&mut self) {
        let name = self.def.name.name.clone();
        if let (Some(value), Some(bare)) = (self.saw_value_return, self.saw_bare_return) {
            if !matches!(self.ret, Type::None) {
                self.error(
                    Diagnostic::error("E0405", bare, format!("`{name}` returns a value elsewhere but nothing here"))
                        .with_label(value, "returns a value here")
                        .with_help("return a value on every path"),
                );
            }
        }
        // An unknown return type after other errors is their consequence.
        let clean = self.cx.diagnostics.len() == self.diagnostics_before;
        if self.saw_value_return.is_some() && !self.ret.is_known() && clean {
            self.error(
                Diagnostic::error("E0406", self.def.name.span, format!("cannot infer the return type of `{name}`"))
                    .with_span_label("every return depends on a recursive call")
                    .with_help(format!(
                        "add a base case that returns a plain value, or annotate it: `def {name}(...) -> f64:`"
                    )),
            );
        }
        let returns_value = !matches!(self.ret, Type::None | Type::Unknown);
        if returns_value && !block_terminates(&self.def.body) {
            self.error(
                Diagnostic::error(
                    "E0405",
                    self.def.name.span,
                    format!("`{name}` can reach its end without returning a value"),
                )
                .with_span_label(format!("returns `{}` elsewhere", self.ret))
                .with_help("add a `return` at the end of the function"),
            );
        }
    }

    /// The source text of an expression, used to name arrays in index errors.
    pub fn cx_snippet(&self, expr: &ast::Expr) -> String {
        render_expr(expr)
    }
}

/// `range(...)`/`prange(...)` (also `numba.prange`), with its arguments.
fn range_call(iter: &ast::Expr) -> Option<(&'static str, &[ast::Expr])> {
    let ast::ExprKind::Call { func, args, keywords } = &iter.kind else { return None };
    if !keywords.is_empty() {
        return None;
    }
    let name = match &func.kind {
        ast::ExprKind::Name(name) => name.as_str(),
        ast::ExprKind::Attribute { value, attr } if matches!(&value.kind, ast::ExprKind::Name(m) if m == "numba" || m == "nb") => {
            attr.name.as_str()
        }
        _ => return None,
    };
    match name {
        "range" => Some(("range", args)),
        "prange" => Some(("prange", args)),
        _ => None,
    }
}

/// Whether control can never fall off the end of this block.
pub(super) fn block_terminates(block: &[ast::Stmt]) -> bool {
    block.iter().any(stmt_terminates)
}

fn stmt_terminates(stmt: &ast::Stmt) -> bool {
    match &stmt.kind {
        ast::StmtKind::Return(_) => true,
        ast::StmtKind::If { then, orelse, .. } => block_terminates(then) && block_terminates(orelse),
        ast::StmtKind::While { cond, body } => {
            matches!(cond.kind, ast::ExprKind::Bool(true) | ast::ExprKind::Int(1..)) && !contains_break(body)
        }
        _ => false,
    }
}

/// Whether a loop body has a `break` that exits this loop (not a nested one).
fn contains_break(block: &[ast::Stmt]) -> bool {
    block.iter().any(|stmt| match &stmt.kind {
        ast::StmtKind::Break => true,
        ast::StmtKind::If { then, orelse, .. } => contains_break(then) || contains_break(orelse),
        _ => false,
    })
}

/// A compact source-like rendering of an expression (for array names in
/// runtime errors: `x`, `frames[k]`, `a.b`).
pub(super) fn render_expr(expr: &ast::Expr) -> String {
    match &expr.kind {
        ast::ExprKind::Name(name) => name.clone(),
        ast::ExprKind::Attribute { value, attr } => format!("{}.{}", render_expr(value), attr.name),
        ast::ExprKind::Int(v) => v.to_string(),
        ast::ExprKind::Subscript { value, items } => {
            let parts: Vec<String> = items
                .iter()
                .map(|item| match item {
                    ast::SubscriptItem::Index(e) => render_expr(e),
                    ast::SubscriptItem::Slice { lower, upper, .. } => format!(
                        "{}:{}",
                        lower.as_ref().map(render_expr).unwrap_or_default(),
                        upper.as_ref().map(render_expr).unwrap_or_default()
                    ),
                })
                .collect();
            format!("{}[{}]", render_expr(value), parts.join(", "))
        }
        ast::ExprKind::Call { func, .. } => format!("{}(...)", render_expr(func)),
        _ => "<expr>".to_string(),
    }
}
