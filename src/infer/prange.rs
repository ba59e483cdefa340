//! Race analysis for `prange` loops: which outer scalars are reductions, and
//! which writes would race (spec, "prange").
//!
//! Works on the AST of the loop body. A name written in the body is:
//! - *private* when it is not defined before the loop, or when its first use
//!   in the body is a plain assignment at the top of the body (so every
//!   iteration sets it before reading it; names leak out of loops in Python,
//!   so a helper name reused from an earlier loop is fine);
//! - a *reduction* when it is defined before the loop and the body only
//!   updates it with `v += e`, `v -= e`, `v *= e`, `v |= e`, `v &= e`,
//!   `v ^= e`, `v = min(v, e)` or `v = max(v, e)` (one kind of update, and
//!   `v` read nowhere else in the body);
//! - otherwise a race, reported with a help line.
//!
//! An augmented assignment to an array element must index with the loop
//! variable in an injective affine form (`i`, `i + 1`, `2 * i`, `n - i`) on
//! at least one axis; `counts[b] += 1` or `y[i % 4] += x` would race.

use super::stmt::Walker;
use crate::ast;
use crate::diag::Diagnostic;
use crate::span::Span;
use crate::tir::ReduceOp;
use rustc_hash::FxHashMap as HashMap;

pub(super) struct Analysis<'a> {
    pub reductions: Vec<(&'a str, ReduceOp)>,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum WriteKind {
    /// `v = e`, `v: T = e`, a `for v in` target, or a tuple-unpacking target.
    Plain,
    /// A reduction-shaped update.
    Reduce(ReduceOp),
    /// Any other augmented assignment (`v /= e`, ...).
    OtherAugmented,
}

#[derive(Clone, Copy, Debug)]
struct Event {
    position: u32,
    span: Span,
    write: Option<WriteKind>,
    /// Directly in the loop body (not inside an `if` or an inner loop).
    top_level: bool,
}

/// Every read and write of every name in a block, in source order.
#[derive(Default)]
struct Events<'a> {
    by_name: HashMap<&'a str, Vec<Event>>,
    aug_stores: Vec<(&'a ast::Expr, &'a [ast::SubscriptItem], Span)>,
}

impl<'a> Events<'a> {
    fn read(&mut self, name: &'a str, span: Span) {
        self.by_name.entry(name).or_default().push(Event { position: span.start, span, write: None, top_level: false });
    }

    fn write(&mut self, name: &'a str, span: Span, kind: WriteKind, top_level: bool) {
        self.write_at(name, span, span.start, kind, top_level);
    }

    /// A write shown at `span` that happens at source position `position`.
    fn write_at(&mut self, name: &'a str, span: Span, position: u32, kind: WriteKind, top_level: bool) {
        self.by_name.entry(name).or_default().push(Event { position, span, write: Some(kind), top_level });
    }

    fn block(&mut self, block: &'a [ast::Stmt], top_level: bool) {
        for stmt in block {
            self.stmt(stmt, top_level);
        }
    }

    fn stmt(&mut self, stmt: &'a ast::Stmt, top_level: bool) {
        match &stmt.kind {
            ast::StmtKind::Expr(expr) => self.expr(expr),
            ast::StmtKind::Assign { targets, value } => {
                // A write happens after its value is evaluated: its event sits
                // at the end of the statement, after the reads in the value.
                let after = Span { start: stmt.span.end, end: stmt.span.end };
                if let Some((name, op, other)) = min_max_update(targets, value) {
                    self.expr(other);
                    self.write_at(name, stmt.span, after.start, WriteKind::Reduce(op), top_level);
                    return;
                }
                self.expr(value);
                for target in targets {
                    self.target(target, after, top_level);
                }
            }
            ast::StmtKind::AnnAssign { target, value, .. } => {
                if let Some(value) = value {
                    self.expr(value);
                }
                self.write_at(&target.name, target.span, stmt.span.end, WriteKind::Plain, top_level);
            }
            ast::StmtKind::AugAssign { target, op, value } => {
                self.expr(value);
                match &target.kind {
                    ast::ExprKind::Name(name) => {
                        let kind = match op {
                            ast::BinOp::Add | ast::BinOp::Sub => WriteKind::Reduce(ReduceOp::Add),
                            ast::BinOp::Mul => WriteKind::Reduce(ReduceOp::Mul),
                            ast::BinOp::BitOr => WriteKind::Reduce(ReduceOp::BitOr),
                            ast::BinOp::BitAnd => WriteKind::Reduce(ReduceOp::BitAnd),
                            ast::BinOp::BitXor => WriteKind::Reduce(ReduceOp::BitXor),
                            _ => WriteKind::OtherAugmented,
                        };
                        self.write_at(name, target.span, stmt.span.end, kind, top_level);
                    }
                    ast::ExprKind::Subscript { value: base, items } => {
                        self.expr(base);
                        self.items(items);
                        self.aug_stores.push((base, items, stmt.span));
                    }
                    other => {
                        let _ = other;
                        self.expr(target);
                    }
                }
            }
            ast::StmtKind::If { cond, then, orelse } => {
                self.expr(cond);
                self.block(then, false);
                self.block(orelse, false);
            }
            ast::StmtKind::While { cond, body } => {
                self.expr(cond);
                self.block(body, false);
            }
            ast::StmtKind::For { target, iter, body } => {
                self.expr(iter);
                self.write_at(&target.name, target.span, iter.span.end, WriteKind::Plain, top_level);
                self.block(body, false);
            }
            ast::StmtKind::Return(Some(value)) => self.expr(value),
            _ => {}
        }
    }

    /// An assignment target; `after` is where the write happens (the end of
    /// the statement).
    fn target(&mut self, target: &'a ast::Expr, after: Span, top_level: bool) {
        match &target.kind {
            ast::ExprKind::Name(name) => self.write_at(name, target.span, after.start, WriteKind::Plain, top_level),
            ast::ExprKind::Tuple(items) => {
                for item in items {
                    self.target(item, after, top_level);
                }
            }
            ast::ExprKind::Subscript { value, items } => {
                self.expr(value);
                self.items(items);
            }
            _ => self.expr(target),
        }
    }

    fn items(&mut self, items: &'a [ast::SubscriptItem]) {
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

    fn expr(&mut self, expr: &'a ast::Expr) {
        crate::stack::guarded(|| match &expr.kind {
            ast::ExprKind::Name(name) => self.read(name, expr.span),
            ast::ExprKind::Attribute { value, .. } => self.expr(value),
            ast::ExprKind::Call { func, args, keywords } => {
                if !matches!(func.kind, ast::ExprKind::Name(_)) {
                    self.expr(func);
                }
                for arg in args {
                    self.expr(arg);
                }
                for keyword in keywords {
                    self.expr(&keyword.value);
                }
            }
            ast::ExprKind::Subscript { value, items } => {
                self.expr(value);
                self.items(items);
            }
            ast::ExprKind::Unary { operand, .. } => self.expr(operand),
            ast::ExprKind::Binary { left, right, .. } | ast::ExprKind::BoolOp { left, right, .. } => {
                self.expr(left);
                self.expr(right);
            }
            ast::ExprKind::Compare { first, rest } => {
                self.expr(first);
                for (_, operand) in rest {
                    self.expr(operand);
                }
            }
            ast::ExprKind::IfExp { cond, body, orelse } => {
                self.expr(cond);
                self.expr(body);
                self.expr(orelse);
            }
            ast::ExprKind::Tuple(items) => {
                for item in items {
                    self.expr(item);
                }
            }
            _ => {}
        })
    }
}

/// `v = min(v, e)` / `v = max(e, v)`: the name, the op and `e`.
fn min_max_update<'a>(targets: &'a [ast::Expr], value: &'a ast::Expr) -> Option<(&'a str, ReduceOp, &'a ast::Expr)> {
    let [target] = targets else { return None };
    let ast::ExprKind::Name(name) = &target.kind else { return None };
    let ast::ExprKind::Call { func, args, keywords } = &value.kind else { return None };
    let ast::ExprKind::Name(function) = &func.kind else { return None };
    let op = match function.as_str() {
        "min" => ReduceOp::Min,
        "max" => ReduceOp::Max,
        _ => return None,
    };
    if !keywords.is_empty() {
        return None;
    }
    let is_self = |e: &ast::Expr| matches!(&e.kind, ast::ExprKind::Name(n) if n == name);
    match args.as_slice() {
        [a, b] if is_self(a) && !is_self(b) => Some((name, op, b)),
        [a, b] if is_self(b) && !is_self(a) => Some((name, op, a)),
        _ => None,
    }
}

/// Analyses one `prange` loop (`loop_stmt`, loop variable `var`, `body`).
pub(super) fn analyse<'a>(
    walker: &Walker<'_, 'a>,
    loop_stmt: &'a ast::Stmt,
    var: &'a str,
    body: &'a [ast::Stmt],
) -> Analysis<'a> {
    let mut inside = Events::default();
    inside.block(body, true);

    // Events in the rest of the function (outside this loop's body).
    let mut outside = Events::default();
    for param in &walker.def.params {
        outside.write(&param.name.name, param.name.span, WriteKind::Plain, false);
    }
    collect_outside(&mut outside, &walker.def.body, loop_stmt);

    let loop_start = loop_stmt.span.start;
    let loop_end = loop_stmt.span.end;
    let mut reductions = Vec::new();
    let mut diagnostics = Vec::new();
    let mut names: Vec<&&'a str> = inside.by_name.keys().collect();
    names.sort();
    for &name in names {
        if name == var || !walker.names.contains_key(name) {
            continue;
        }
        let events = &inside.by_name[name];
        let writes: Vec<&Event> = events.iter().filter(|e| e.write.is_some()).collect();
        if writes.is_empty() {
            continue;
        }
        let outside_events = outside.by_name.get(name).map(Vec::as_slice).unwrap_or(&[]);
        let defined_before = outside_events.iter().any(|e| e.write.is_some() && e.position < loop_start)
            || walker.def.params.iter().any(|p| p.name.name == name);
        let first = events.iter().min_by_key(|e| e.position).expect("non-empty");
        let set_first = first.top_level && first.write == Some(WriteKind::Plain);
        if !defined_before || set_first {
            // Private to each iteration. Its value after the loop would depend
            // on which iteration ran last, so it must not be read there.
            let next_after = outside_events.iter().filter(|e| e.position >= loop_end).min_by_key(|e| e.position);
            if let Some(read) = next_after.filter(|e| e.write.is_none()) {
                diagnostics.push(
                    Diagnostic::error("E0501", read.span, format!("`{name}` is assigned inside the prange loop and read after it"))
                        .with_label(writes[0].span, "assigned in the loop here")
                        .with_help("iterations run in parallel, so which one wrote last is undefined; store per-iteration results in an array indexed by the loop variable"),
                );
            }
            continue;
        }
        let ops: Vec<ReduceOp> = writes
            .iter()
            .filter_map(|e| match e.write {
                Some(WriteKind::Reduce(op)) => Some(op),
                _ => None,
            })
            .collect();
        let all_reduce = ops.len() == writes.len();
        let one_op = ops.windows(2).all(|pair| pair[0] == pair[1]);
        let reads: Vec<&Event> = events.iter().filter(|e| e.write.is_none()).collect();
        if all_reduce && one_op && reads.is_empty() {
            reductions.push((name, ops[0]));
            continue;
        }
        let diagnostic = if let (true, false) = (all_reduce, one_op) {
            Diagnostic::error(
                "E0501",
                writes[1].span,
                format!("the reduction variable `{name}` is updated in two different ways in the prange loop"),
            )
            .with_label(writes[0].span, "first update")
            .with_help("a reduction uses one operator (`+=`/`-=`, `*=`, `min`, `max`, `|=`, `&=` or `^=`)")
        } else if all_reduce {
            Diagnostic::error(
                "E0501",
                reads[0].span,
                format!("the reduction variable `{name}` is read inside the prange loop"),
            )
            .with_label(writes[0].span, "updated here")
            .with_help("inside the loop it holds only a partial result; read it after the loop")
        } else {
            let write = writes.iter().find(|e| !matches!(e.write, Some(WriteKind::Reduce(_)))).expect("not all reduce");
            Diagnostic::error("E0501", write.span, format!("`{name}` is defined before the prange loop and assigned inside it: iterations would race on it"))
                .with_span_label("written by every iteration in parallel")
                .with_help(format!(
                    "make it a reduction (`{name} += ...`, `{name} = max({name}, ...)`), assign it at the top of the loop body before any use, or use `range` for a serial loop"
                ))
        };
        diagnostics.push(diagnostic);
    }

    let written_inside: Vec<&str> = inside
        .by_name
        .iter()
        .filter(|(_, events)| events.iter().any(|e| e.write.is_some()))
        .map(|(name, _)| *name)
        .collect();
    for (base, items, span) in &inside.aug_stores {
        let indexed_by_loop = items.iter().any(|item| match item {
            ast::SubscriptItem::Index(index) => affine_in(index, var, &written_inside),
            ast::SubscriptItem::Slice { .. } => false,
        });
        if !indexed_by_loop {
            let name = super::stmt::render_expr(base);
            diagnostics.push(
                Diagnostic::error(
                    "E0502",
                    *span,
                    format!("this update of `{name}` may race: no index is the loop variable `{var}` or an injective form of it (`{var} + c`, `k * {var}`)"),
                )
                    .with_span_label("several iterations may update the same element at once")
                    .with_help(format!(
                        "use a serial `range` loop, or give each iteration its own slot (index with `{var}`) and combine after the loop"
                    )),
            );
        }
    }
    Analysis { reductions, diagnostics }
}

/// Collects events of the whole function except the body of `skip`.
fn collect_outside<'a>(events: &mut Events<'a>, block: &'a [ast::Stmt], skip: &'a ast::Stmt) {
    for stmt in block {
        if std::ptr::eq(stmt, skip) {
            if let ast::StmtKind::For { target, iter, .. } = &stmt.kind {
                events.expr(iter);
                events.write(&target.name, target.span, WriteKind::Plain, false);
            }
            continue;
        }
        match &stmt.kind {
            ast::StmtKind::If { cond, then, orelse } => {
                events.expr(cond);
                collect_outside(events, then, skip);
                collect_outside(events, orelse, skip);
            }
            ast::StmtKind::While { cond, body } => {
                events.expr(cond);
                collect_outside(events, body, skip);
            }
            ast::StmtKind::For { target, iter, body } => {
                events.expr(iter);
                events.write(&target.name, target.span, WriteKind::Plain, false);
                collect_outside(events, body, skip);
            }
            _ => events.stmt(stmt, false),
        }
    }
}

/// Whether `index` is an injective affine function of the loop variable:
/// `i`, `i + c`, `c - i`, `k * i` (nonzero literal `k`), `-i`, where `c` does
/// not change inside the loop.
fn affine_in(index: &ast::Expr, var: &str, written_inside: &[&str]) -> bool {
    match &index.kind {
        ast::ExprKind::Name(name) => name == var,
        ast::ExprKind::Unary { op: ast::UnaryOp::Neg | ast::UnaryOp::Pos, operand } => {
            affine_in(operand, var, written_inside)
        }
        ast::ExprKind::Binary { op: ast::BinOp::Add | ast::BinOp::Sub, left, right } => {
            (affine_in(left, var, written_inside) && invariant(right, var, written_inside))
                || (invariant(left, var, written_inside) && affine_in(right, var, written_inside))
        }
        ast::ExprKind::Binary { op: ast::BinOp::Mul, left, right } => {
            let nonzero = |e: &ast::Expr| matches!(e.kind, ast::ExprKind::Int(k) if k != 0);
            (affine_in(left, var, written_inside) && nonzero(right))
                || (nonzero(left) && affine_in(right, var, written_inside))
        }
        _ => false,
    }
}

/// Whether an expression is the same in every iteration of the loop.
fn invariant(expr: &ast::Expr, var: &str, written_inside: &[&str]) -> bool {
    match &expr.kind {
        ast::ExprKind::Int(_) | ast::ExprKind::Float(_) | ast::ExprKind::Bool(_) => true,
        ast::ExprKind::Name(name) => name != var && !written_inside.contains(&name.as_str()),
        ast::ExprKind::Attribute { value, .. } => invariant(value, var, written_inside),
        ast::ExprKind::Subscript { value, items } => {
            invariant(value, var, written_inside)
                && items
                    .iter()
                    .all(|item| matches!(item, ast::SubscriptItem::Index(i) if invariant(i, var, written_inside)))
        }
        ast::ExprKind::Unary { operand, .. } => invariant(operand, var, written_inside),
        ast::ExprKind::Binary { left, right, .. } => {
            invariant(left, var, written_inside) && invariant(right, var, written_inside)
        }
        _ => false,
    }
}
