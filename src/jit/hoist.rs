//! Which array index checks a loop can do without.
//!
//! Two analyses of a `for var in range(...)` loop's typed IR, both pure:
//!
//! - [`in_bounds_fact`]: the loop variable of `range(c, a.shape[k], d)`
//!   indexing `a` on axis `k` is always in bounds, so that check goes.
//! - [`hoistable`]: the accesses whose every index is *invariant* in the loop
//!   or *affine* in the loop variable (`i`, `i + c`, `c + i`, `i - c`,
//!   `c - i` with `c` invariant). The range such an index covers over the
//!   whole loop is known before the loop starts, so the lowering checks it
//!   once there and *versions* the loop: a copy without those checks runs
//!   when everything is in bounds, the fully checked copy otherwise. The
//!   checked copy reports an error at exactly the iteration the interpreter
//!   does, so versioning never changes what a program does, only how fast.
//!   Only innermost loops are versioned (small constant loops inside do not
//!   count, and their variables are affine too: `xtap[j, t]` for
//!   `t in range(4)`; a call to a function that loops counts as a loop:
//!   beside it the checks cost nothing, and its inlined copy would double
//!   the compile time), and hoisting is per axis (`src[r, c]` with a loaded
//!   `c` still hoists the check on `r`).
//!
//! "Invariant" is syntactic and conservative: constants, scalar locals the
//! loop body never assigns, array extents of arrays it never rebinds, and
//! `+ - *` (wrapping), negation and casts of those. Such an expression can
//! be evaluated before the loop with no side effect and no error, and has
//! the same value on every trip.

use crate::tir::{self, Builtin, Expr, ExprKind, LocalId, Stmt, StmtKind};
use crate::types::Type;
use crate::value::Scalar;
use rustc_hash::FxHashSet as HashSet;

/// Loops whose bodies are larger than this many typed-IR nodes are not
/// versioned: the copy would cost more compile time than the checks cost.
const MAX_VERSIONED_NODES: usize = 200;

/// What a call counts for in those node counts (an inlined callee's body).
const CALL_NODES: usize = 30;

/// How many typed-IR nodes of loop copies versioning may add to one
/// function: a cap on code growth (and compile time) for functions with
/// many innermost loops. Small loops inside a versioned loop are versioned
/// again in each of its copies.
pub const VERSIONING_BUDGET: usize = 4 * MAX_VERSIONED_NODES;

/// `for var in range(c, a.shape[k], d)` with constants `c >= 0`, `d >= 1`,
/// where the body assigns neither `var` nor `a`: every value of `var` in the
/// body is in `[0, a.shape[k])` (the extent is read once, before the loop, and
/// `a` cannot change), so `a[..., var, ...]` on axis `k` needs no check.
pub fn in_bounds_fact(
    var: LocalId,
    start: &Expr,
    stop: &Expr,
    step: &Expr,
    body: &[Stmt],
) -> Option<(LocalId, LocalId, u8)> {
    let constant = |e: &Expr| match e.kind {
        ExprKind::Const(Scalar::I64(v)) => Some(v),
        _ => None,
    };
    if constant(start)? < 0 || constant(step)? < 1 {
        return None;
    }
    let (axis, args) = match &stop.kind {
        ExprKind::Builtin { op: Builtin::Shape(axis), args } => (*axis, args),
        // The size of a 1-D array is its extent.
        ExprKind::Builtin { op: Builtin::Size, args } if matches!(args.first().map(|a| &a.ty), Some(Type::Array(a)) if a.ndim == 1) => {
            (0, args)
        }
        _ => return None,
    };
    let ExprKind::Local(array) = args.first()?.kind else { return None };
    let assigned = assigned_locals(body);
    if assigned.contains(&var) || assigned.contains(&array) {
        return None;
    }
    Some((var, array, axis))
}

/// One index of a hoistable access, as a function of the loop variable.
#[derive(Clone, Copy, Debug)]
pub enum AxisIndex<'a> {
    /// The same value on every trip.
    Invariant(&'a Expr),
    /// `sign * v + offset`, where the offset is `+expr`, `-expr` (for
    /// `v - expr`) or 0, and `v` an induction variable.
    Affine { var: Induction<'a>, negated_var: bool, offset: Option<(&'a Expr, bool)> },
}

/// A variable whose range over the whole loop is known before it starts.
#[derive(Clone, Copy, Debug)]
pub enum Induction<'a> {
    /// The loop's own variable.
    Loop,
    /// The variable of a loop nested in the body, `range(start, stop)` with
    /// `start` and `stop` invariant in the outer loop: within that loop's
    /// body it lies in `[start, stop - 1]`.
    Inner { start: &'a Expr, stop: &'a Expr },
}

/// An array access (an `Index` expression or a `Store` statement) some of
/// whose indices can be checked once before the loop.
#[derive(Clone, Debug)]
pub struct Access<'a> {
    /// Identifies the access node (its address) for the lowering.
    pub key: usize,
    pub array: LocalId,
    /// Per axis, the index if its check can be hoisted.
    pub indices: Vec<Option<AxisIndex<'a>>>,
}

/// The address of an `Index` expression or `Store` statement, as [`Access::key`].
pub fn index_key(expr: &Expr) -> usize {
    expr as *const Expr as usize
}

pub fn store_key(stmt: &Stmt) -> usize {
    stmt as *const Stmt as usize
}

/// Loops of at most this many trips, with constant bounds and a small body
/// without loops or calls, are *small*: they do not stop the loop around
/// them from being versioned (its copy costs little more).
const MAX_SMALL_TRIPS: usize = 4;
const MAX_SMALL_NODES: usize = 80;

/// The values the variable of `for var in range(start, stop, step)` takes,
/// if the loop is small (see `MAX_SMALL_TRIPS`).
pub fn small_loop_trips(start: &Expr, stop: &Expr, step: &Expr, body: &[Stmt]) -> Option<Vec<i64>> {
    let constant = |e: &Expr| match e.kind {
        ExprKind::Const(Scalar::I64(v)) => Some(v),
        _ => None,
    };
    let (start, stop, step) = (constant(start)?, constant(stop)?, constant(step)?);
    if step == 0 {
        return None;
    }
    let mut trips = Vec::new();
    let mut value = i128::from(start);
    while (step > 0 && value < i128::from(stop)) || (step < 0 && value > i128::from(stop)) {
        if trips.len() == MAX_SMALL_TRIPS {
            return None;
        }
        trips.push(value as i64);
        value += i128::from(step);
    }
    let mut walker = Walker::new(LocalId(u32::MAX), None);
    walker.block(body);
    (walker.loops == 0 && walker.calls == 0 && walker.nodes <= MAX_SMALL_NODES).then_some(trips)
}

/// The accesses in `body` (nested blocks and loops included) that the loop
/// `for var in range(...)` can check once, before it starts, and the size
/// of the body in typed-IR nodes (what a copy of the loop costs).
///
/// Only innermost loops are versioned (a body whose only loops are small
/// ones counts): a copy of an outer loop would copy its inner loops, and
/// versioning them too would multiply the copies. A call to a function that
/// loops (`looping`, from [`looping_functions`]) counts as a loop: its
/// inlined copy would be copied too, and next to its loop the checks cost
/// nothing.
pub fn hoistable<'a>(
    var: LocalId,
    body: &'a [Stmt],
    function: &tir::Function,
    looping: &[bool],
) -> (Vec<Access<'a>>, usize) {
    let mut assigned = assigned_locals(body);
    // A loop variable the body reassigns is not `start + t * step`: indices
    // using it are neither invariant nor affine.
    let induction = !assigned.contains(&var);
    assigned.insert(var);
    let mut walker = Walker::new(var, Some(function));
    walker.looping = looping;
    walker.induction = induction;
    walker.assigned = assigned;
    walker.block(body);
    if walker.nodes > MAX_VERSIONED_NODES || walker.loops > 0 {
        return (Vec::new(), walker.nodes);
    }
    (walker.accesses, walker.nodes)
}

/// Every local a block assigns (directly, or as a nested loop variable).
pub fn assigned_locals(block: &[Stmt]) -> HashSet<LocalId> {
    fn walk(block: &[Stmt], out: &mut HashSet<LocalId>) {
        for stmt in block {
            match &stmt.kind {
                StmtKind::Assign { local, .. } => {
                    out.insert(*local);
                }
                StmtKind::If { then, orelse, .. } => {
                    walk(then, out);
                    walk(orelse, out);
                }
                StmtKind::While { body, .. } => walk(body, out),
                StmtKind::ForRange { var, body, .. } => {
                    out.insert(*var);
                    walk(body, out);
                }
                _ => {}
            }
        }
    }
    let mut out = HashSet::default();
    walk(block, &mut out);
    out
}

/// Per function of `program`: whether running it can loop, that is it is
/// `recursive` (on a cycle of calls), its body has a `while` or `for`, or it
/// calls (`callees`, from `tir::call_graph`) a function that can.
pub fn looping_functions(program: &tir::Program, callees: &[Vec<usize>], recursive: &[bool]) -> Vec<bool> {
    let count = program.functions.len();
    let mut looping: Vec<bool> = program
        .functions
        .iter()
        .enumerate()
        .map(|(index, function)| {
            recursive.get(index).copied().unwrap_or(true)
                || tir::any_stmt(&function.body, &mut |stmt| {
                    matches!(stmt.kind, StmtKind::While { .. } | StmtKind::ForRange { .. })
                })
        })
        .collect();
    // A caller of a looping function loops: propagate until nothing changes
    // (at most one round per function).
    let mut changed = true;
    while changed {
        changed = false;
        for index in 0..count {
            if !looping[index] && callees[index].iter().any(|&callee| looping.get(callee).copied().unwrap_or(true)) {
                looping[index] = true;
                changed = true;
            }
        }
    }
    looping
}

struct Walker<'a, 'f> {
    /// Loops in the body that are not small (calls to looping functions
    /// included).
    loops: usize,
    /// Per function of the program: whether it loops (empty: unknown, no
    /// call counts as a loop).
    looping: &'f [bool],
    /// Calls in the body.
    calls: usize,
    var: LocalId,
    /// Whether `var` is `start + t * step` on trip `t` (the body never assigns it).
    induction: bool,
    /// The enclosing nested loops whose variables are induction variables
    /// (`Induction::Inner`), innermost last.
    inner: Vec<(LocalId, &'a Expr, &'a Expr)>,
    assigned: HashSet<LocalId>,
    /// `None` when only counting nodes and loops.
    function: Option<&'f tir::Function>,
    accesses: Vec<Access<'a>>,
    /// Typed-IR nodes seen, to give up on large bodies.
    nodes: usize,
}

impl<'a, 'f> Walker<'a, 'f> {
    fn new(var: LocalId, function: Option<&'f tir::Function>) -> Walker<'a, 'f> {
        Walker {
            loops: 0,
            looping: &[],
            calls: 0,
            var,
            induction: false,
            assigned: HashSet::default(),
            function,
            inner: Vec::new(),
            accesses: Vec::new(),
            nodes: 0,
        }
    }

    fn block(&mut self, block: &'a [Stmt]) {
        for stmt in block {
            if self.nodes > MAX_VERSIONED_NODES {
                return;
            }
            self.nodes += 1;
            match &stmt.kind {
                StmtKind::Assign { value, .. } => self.expr(value),
                StmtKind::Store { array, indices, value, .. } => {
                    self.expr(array);
                    indices.iter().for_each(|index| self.expr(index));
                    self.expr(value);
                    self.access(store_key(stmt), array, indices);
                }
                StmtKind::If { cond, then, orelse } => {
                    self.expr(cond);
                    self.block(then);
                    self.block(orelse);
                }
                StmtKind::While { cond, body } => {
                    self.loops += 1;
                    self.expr(cond);
                    self.block(body);
                }
                StmtKind::ForRange { var, start, stop, step, body, .. } => {
                    if small_loop_trips(start, stop, step, body).is_none() {
                        self.loops += 1;
                    }
                    self.expr(start);
                    self.expr(stop);
                    self.expr(step);
                    let unit_step = matches!(step.kind, ExprKind::Const(Scalar::I64(1)));
                    let induction = unit_step
                        && self.invariant(start)
                        && self.invariant(stop)
                        && !assigned_locals(body).contains(var);
                    if induction {
                        self.inner.push((*var, start, stop));
                    }
                    self.block(body);
                    if induction {
                        self.inner.pop();
                    }
                }
                StmtKind::Return(Some(value)) | StmtKind::Expr(value) => self.expr(value),
                StmtKind::Return(None) | StmtKind::Break | StmtKind::Continue => {}
            }
        }
    }

    fn expr(&mut self, expr: &'a Expr) {
        self.nodes += 1;
        match &expr.kind {
            ExprKind::Index { array, indices, .. } => self.access(index_key(expr), array, indices),
            ExprKind::Call { func, .. } => {
                self.calls += 1;
                self.nodes += CALL_NODES;
                if self.looping.get(func.0 as usize).copied().unwrap_or(false) {
                    self.loops += 1;
                }
            }
            _ => {}
        }
        tir::for_each_operand(expr, |operand| self.expr(operand));
    }

    fn access(&mut self, key: usize, array: &'a Expr, indices: &'a [Expr]) {
        if self.function.is_none() {
            return;
        }
        let ExprKind::Local(array) = array.kind else { return };
        if self.assigned.contains(&array) {
            return;
        }
        let indices: Vec<Option<AxisIndex<'a>>> = indices.iter().map(|index| self.axis_index(index)).collect();
        if indices.iter().any(Option::is_some) {
            self.accesses.push(Access { key, array, indices });
        }
    }

    /// The induction variable `expr` is, if it is one.
    fn induction_var(&self, expr: &Expr) -> Option<Induction<'a>> {
        let ExprKind::Local(local) = expr.kind else { return None };
        if let Some(&(_, start, stop)) = self.inner.iter().rev().find(|(var, _, _)| *var == local) {
            return Some(Induction::Inner { start, stop });
        }
        (self.induction && local == self.var).then_some(Induction::Loop)
    }

    fn axis_index(&self, index: &'a Expr) -> Option<AxisIndex<'a>> {
        if self.invariant(index) {
            return Some(AxisIndex::Invariant(index));
        }
        let affine = |var, negated_var, offset| Some(AxisIndex::Affine { var, negated_var, offset });
        if let Some(var) = self.induction_var(index) {
            return affine(var, false, None);
        }
        let ExprKind::Binary(op @ (tir::BinaryOp::Add | tir::BinaryOp::Sub), a, b) = &index.kind else { return None };
        let subtract = *op == tir::BinaryOp::Sub;
        match (self.induction_var(a), self.induction_var(b)) {
            (Some(var), _) if self.invariant(b) => affine(var, false, Some((b, subtract))),
            (_, Some(var)) if self.invariant(a) => affine(var, subtract, Some((a, false))),
            _ => None,
        }
    }

    /// Whether `expr` has the same value on every trip and can be evaluated
    /// before the loop without effects or errors.
    fn invariant(&self, expr: &Expr) -> bool {
        match &expr.kind {
            ExprKind::Const(_) => true,
            ExprKind::Local(local) => {
                !self.assigned.contains(local)
                    && self.function.is_some_and(|f| matches!(f.local(*local).ty, Type::Scalar(_)))
            }
            ExprKind::Cast(inner) => matches!(inner.ty, Type::Scalar(_)) && self.invariant(inner),
            ExprKind::Unary(tir::UnaryOp::Neg | tir::UnaryOp::Invert, inner) => self.invariant(inner),
            ExprKind::Binary(tir::BinaryOp::Add | tir::BinaryOp::Sub | tir::BinaryOp::Mul, a, b) => {
                self.invariant(a) && self.invariant(b)
            }
            ExprKind::Builtin { op: Builtin::Shape(_) | Builtin::Size, args } => {
                matches!(args.as_slice(), [array] if matches!(array.kind, ExprKind::Local(local) if !self.assigned.contains(&local)))
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ScalarType;

    #[test]
    fn the_size_of_a_one_dimensional_array_bounds_its_index() {
        let source = "\
def k(a, b):
    s = 0.0
    for i in range(a.size):
        s += a[i]
    for j in range(b.size):
        s += b[j // 3, 0]
    return s
";
        let module = crate::Module::parse("t.kern", source.as_bytes()).unwrap();
        let one = Type::Array(crate::types::ArrayType { dtype: ScalarType::F64, ndim: 1 });
        let two = Type::Array(crate::types::ArrayType { dtype: ScalarType::F64, ndim: 2 });
        let program = module.specialise("k", &[one, two]).unwrap();
        let function = program.function(program.entry);
        let facts: Vec<_> = function
            .body
            .iter()
            .filter_map(|stmt| match &stmt.kind {
                StmtKind::ForRange { var, start, stop, step, body, .. } => {
                    Some(in_bounds_fact(*var, start, stop, step, body).map(|(_, array, axis)| (array, axis)))
                }
                _ => None,
            })
            .collect();
        // `a.size` bounds `a`'s axis 0; the size of the 2-D `b` bounds no axis.
        assert_eq!(facts, [Some((function.params[0], 0)), None]);
    }

    #[test]
    fn a_function_loops_if_it_or_a_callee_loops_or_recurses() {
        let source = "\
def leaf(x):
    return x * 2.0 + 1.0

def spin(x):
    while x > 1.0:
        x = x * 0.5
    return x

def calls_spin(x):
    return spin(x) + leaf(x)

def fact(n: i64) -> i64:
    if n <= 1:
        return 1
    return n * fact(n - 1)

def k(x):
    return leaf(x) + calls_spin(x) + fact(3)
";
        let module = crate::Module::parse("t.kern", source.as_bytes()).unwrap();
        let program = module.specialise("k", &[Type::Scalar(ScalarType::F64)]).unwrap();
        let recursive: Vec<bool> = program.functions.iter().map(|f| f.name == "fact").collect();
        let looping = looping_functions(&program, &tir::call_graph(&program), &recursive);
        let by_name: Vec<(&str, bool)> =
            program.functions.iter().zip(&looping).map(|(f, &l)| (f.name.as_str(), l)).collect();
        for (name, expected) in [("leaf", false), ("spin", true), ("calls_spin", true), ("fact", true), ("k", true)] {
            let found = by_name.iter().find(|(n, _)| *n == name).map(|(_, l)| *l);
            assert_eq!(found, Some(expected), "{name}: {by_name:?}");
        }
    }
}
