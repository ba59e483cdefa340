//! The typed IR: one fully specialised, type-checked program.
//!
//! Inference produces it; the interpreter (and later the JIT) consume it. Every
//! expression carries its final [`Type`] and every implicit conversion is an
//! explicit [`ExprKind::Cast`], so consumers never re-derive promotion rules:
//! operand types of each node are exactly as documented on the node. A
//! `Program` that came out of `infer` contains no [`Type::Unknown`].
//!
//! Runtime semantics are documented here, on the nodes, and are the contract
//! the interpreter and the JIT must both honour bit for bit.

use crate::span::Span;
use crate::types::{ScalarType, Type};
use crate::value::Scalar;

/// A specialised program: the entry kernel and every function it reaches,
/// each specialised for one tuple of argument types.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    pub functions: Vec<Function>,
    pub entry: FuncId,
}

impl Program {
    pub fn function(&self, id: FuncId) -> &Function {
        &self.functions[id.0 as usize]
    }

    pub fn entry_function(&self) -> &Function {
        self.function(self.entry)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FuncId(pub u32);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalId(pub u32);

/// One specialisation of one source function.
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    /// The source name (several specialisations may share it).
    pub name: String,
    /// The parameters, in order; each is a local whose type is the argument type.
    pub params: Vec<LocalId>,
    /// Every local variable, including parameters and hidden temporaries
    /// (whose names start with `$`). A local starts as zero (scalars, tuple
    /// elements) or as an empty array of its type (every extent 0), so a read
    /// on a path that skipped the assignment is defined; inference rejects
    /// names that are never assigned at all.
    pub locals: Vec<Local>,
    /// The return type; `Type::None` when the function returns no value.
    pub ret: Type,
    pub body: Block,
    pub span: Span,
}

impl Function {
    pub fn local(&self, id: LocalId) -> &Local {
        &self.locals[id.0 as usize]
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Local {
    pub name: String,
    pub ty: Type,
    /// Where the variable is first defined.
    pub span: Span,
}

pub type Block = Vec<Stmt>;

#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `local = value`; `value.ty` equals the local's type. Assigning an array
    /// binds the local to the same array (no copy), as in Python.
    Assign {
        local: LocalId,
        value: Expr,
    },
    /// `array[indices] = value`: `array.ty` is an array type of `ndim`
    /// dimensions, there is one `i64` index per dimension, and `value.ty` is
    /// the array's dtype. Evaluation order: array, indices left to right,
    /// value, then the index check (see [`ExprKind::Index`]) and the store.
    Store {
        array: Expr,
        indices: Vec<Expr>,
        value: Expr,
        array_name: String,
    },
    /// `if cond: then else: orelse`; `cond.ty` is `bool`.
    If {
        cond: Expr,
        then: Block,
        orelse: Block,
    },
    /// `while cond: body`; `cond.ty` is `bool`.
    While {
        cond: Expr,
        body: Block,
    },
    /// `for var in range(start, stop, step)` (or `prange`): all three bounds are
    /// `i64` and evaluated once, in order, before the loop; `var` is an `i64`
    /// local. A zero step is a `ZeroStep` runtime error at `range_span`. The
    /// trip count is that of Python's `range` (computed without overflow); on
    /// trip `t` the variable is set to `start + t * step` (wrapping) before the
    /// body runs. After the loop the variable keeps its last value.
    ForRange {
        var: LocalId,
        start: Expr,
        stop: Expr,
        step: Expr,
        body: Block,
        range_span: Span,
        /// `Some` for `prange`: how the loop may run in parallel.
        parallel: Option<Parallel>,
    },
    Break,
    Continue,
    /// `return` / `return value`; `value.ty` equals the function's return type.
    Return(Option<Expr>),
    /// An expression evaluated for its effects (a call).
    Expr(Expr),
}

/// What a `prange` loop needs to run in parallel with deterministic results.
#[derive(Clone, Debug, PartialEq)]
pub struct Parallel {
    /// The reduction variables (scalars defined before the loop and only
    /// updated with a reduction operator inside it).
    pub reductions: Vec<Reduction>,
    /// A `prange` inside another `prange`: it runs serially, as a `range`
    /// (no reductions, and `break` is allowed).
    pub nested: bool,
}

impl Parallel {
    /// Whether the loop runs on the thread pool (when it is long enough).
    pub fn runs_in_parallel(&self) -> bool {
        !self.nested
    }
}

/// Trips below which a parallel loop runs serially: starting the workers
/// costs a few microseconds, about 30,000 typed-IR nodes of straight-line
/// work. A body with a call, a `while` or a loop of more than 64 (or not
/// constant) trips is assumed to be worth it from 2 trips.
pub fn parallel_min_trips(body: &[Stmt]) -> u64 {
    match straight_line_cost(body) {
        Some(cost) => (30_000 / cost.max(1)).max(2),
        None => 2,
    }
}

/// Typed-IR nodes one run of `block` evaluates (the longer branch of an
/// `if`), if it makes no calls and has no loops but short constant ones.
fn straight_line_cost(block: &[Stmt]) -> Option<u64> {
    let mut cost = 0u64;
    for stmt in block {
        cost += match &stmt.kind {
            StmtKind::While { .. } => return None,
            StmtKind::ForRange { start, stop, step, body, .. } => {
                let bound = |e: &Expr| match e.kind {
                    ExprKind::Const(value) => Some(value.to_i128()),
                    _ => None,
                };
                let (start, stop, step) = (bound(start)?, bound(stop)?, bound(step)?);
                let trips = match step {
                    0 => return None,
                    s if s > 0 => (stop - start + s - 1).div_euclid(s).max(0),
                    s => (start - stop - s - 1).div_euclid(-s).max(0),
                };
                if trips > 64 {
                    return None;
                }
                3 + trips as u64 * straight_line_cost(body)?
            }
            StmtKind::If { cond, then, orelse } => {
                expression_cost(cond)? + straight_line_cost(then)?.max(straight_line_cost(orelse)?)
            }
            _ => {
                let mut nodes = 0;
                let mut calls = false;
                for_each_expr(std::slice::from_ref(stmt), &mut |expr| {
                    nodes += 1;
                    calls |= matches!(expr.kind, ExprKind::Call { .. });
                });
                if calls {
                    return None;
                }
                nodes
            }
        };
    }
    Some(cost)
}

/// Nodes of `expr`, if it makes no call.
fn expression_cost(expr: &Expr) -> Option<u64> {
    let mut nodes = 1;
    let mut calls = matches!(expr.kind, ExprKind::Call { .. });
    for_each_operand(expr, |operand| match expression_cost(operand) {
        Some(cost) => nodes += cost,
        None => calls = true,
    });
    (!calls).then_some(nodes)
}

#[derive(Clone, Debug, PartialEq)]
pub struct Reduction {
    pub local: LocalId,
    pub op: ReduceOp,
}

/// How a reduction variable is updated and how partials combine.
///
/// Semantics (the same serially and in parallel): the trip count `n` is cut
/// into blocks of [`reduction_block_len`]`(n)` trips. Each block starts with
/// the variable set to [`ReduceOp::identity`] and runs its trips in order; the
/// block's final value is its partial. Partials are combined with
/// [`ReduceOp::combine`] in the fixed tree of [`combine_tree`], and the
/// variable's value before the loop is combined with the tree's result
/// (`before ⊕ tree`). With no reductions, iterations may run in any order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// `v += e` and `v -= e` (a block's partial accumulates `-e` for `-=`).
    Add,
    /// `v *= e`
    Mul,
    /// `v = min(v, e)`
    Min,
    /// `v = max(v, e)`
    Max,
    /// `v |= e`
    BitOr,
    /// `v &= e`
    BitAnd,
    /// `v ^= e`
    BitXor,
}

impl ReduceOp {
    /// The neutral starting value of a block's partial.
    pub fn identity(self, ty: ScalarType) -> Scalar {
        let int = |value: i128| Scalar::from_i128_wrapping(value, ty);
        match self {
            ReduceOp::Add | ReduceOp::BitOr | ReduceOp::BitXor => Scalar::zero(ty),
            ReduceOp::Mul => int(1),
            ReduceOp::BitAnd => match ty {
                ScalarType::Bool => Scalar::Bool(true),
                _ => int(-1),
            },
            ReduceOp::Min | ReduceOp::Max => {
                let positive = self == ReduceOp::Min;
                match ty {
                    ScalarType::F32 => Scalar::F32(if positive { f32::INFINITY } else { f32::NEG_INFINITY }),
                    ScalarType::F64 => Scalar::F64(if positive { f64::INFINITY } else { f64::NEG_INFINITY }),
                    _ => {
                        let (low, high) = ty.int_range();
                        int(if positive { high } else { low })
                    }
                }
            }
        }
    }

    /// Combines two partials (or the initial value and the tree result):
    /// wrapping `+`/`*` for ints, IEEE `+`/`*` for floats, bitwise ops, and for
    /// min/max Python's `min(a, b)` = `b if b < a else a` and `max(a, b)` =
    /// `b if b > a else a`.
    pub fn combine(self, a: Scalar, b: Scalar) -> Scalar {
        use Scalar::*;
        macro_rules! arith {
            ($int:ident, $float:tt) => {
                match (a, b) {
                    (F32(x), F32(y)) => F32(x $float y),
                    (F64(x), F64(y)) => F64(x $float y),
                    (Bool(x), Bool(y)) => Bool(((x as u8).$int(y as u8)) != 0),
                    (I8(x), I8(y)) => I8(x.$int(y)),
                    (I16(x), I16(y)) => I16(x.$int(y)),
                    (I32(x), I32(y)) => I32(x.$int(y)),
                    (I64(x), I64(y)) => I64(x.$int(y)),
                    (U8(x), U8(y)) => U8(x.$int(y)),
                    (U16(x), U16(y)) => U16(x.$int(y)),
                    (U32(x), U32(y)) => U32(x.$int(y)),
                    (U64(x), U64(y)) => U64(x.$int(y)),
                    _ => a,
                }
            };
        }
        match self {
            ReduceOp::Add => arith!(wrapping_add, +),
            ReduceOp::Mul => arith!(wrapping_mul, *),
            ReduceOp::Min | ReduceOp::Max => {
                let less = |x: Scalar, y: Scalar| match (x, y) {
                    (F32(x), F32(y)) => x < y,
                    (F64(x), F64(y)) => x < y,
                    (x, y) => x.to_i128() < y.to_i128(),
                };
                let take_b = if self == ReduceOp::Min { less(b, a) } else { less(a, b) };
                if take_b {
                    b
                } else {
                    a
                }
            }
            ReduceOp::BitOr | ReduceOp::BitAnd | ReduceOp::BitXor => {
                let (x, y) = (a.to_i128(), b.to_i128());
                let bits = match self {
                    ReduceOp::BitOr => x | y,
                    ReduceOp::BitAnd => x & y,
                    _ => x ^ y,
                };
                Scalar::from_i128_wrapping(bits, a.ty())
            }
        }
    }
}

/// The number of trips per reduction block for a loop of `trip_count` trips:
/// `ceil(trip_count / 1024)`, at least 1. It depends on the trip count only,
/// never on the number of threads, so results are the same on any machine.
pub fn reduction_block_len(trip_count: u64) -> u64 {
    trip_count.div_ceil(1024).max(1)
}

/// Combines partials in the fixed tree order: a single partial is itself; a
/// list of `k > 1` partials splits at `k / 2`, and the result is
/// `combine(tree(left), tree(right))`. Returns `None` for no partials.
pub fn combine_tree(op: ReduceOp, partials: &[Scalar]) -> Option<Scalar> {
    match partials.len() {
        0 => None,
        1 => Some(partials[0]),
        k => {
            let (left, right) = partials.split_at(k / 2);
            Some(op.combine(combine_tree(op, left)?, combine_tree(op, right)?))
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub ty: Type,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// A constant; `ty` is the constant's dtype.
    Const(Scalar),
    Local(LocalId),
    /// Converts a scalar to `ty` with [`Scalar::cast`].
    Cast(Box<Expr>),
    /// `-x` and `~x` keep the operand's type; `not x` takes and gives `bool`.
    ///
    /// `Neg`: wrapping for ints, IEEE for floats (never on `bool`).
    /// `Invert`: bitwise not for ints; logical not for `bool`.
    Unary(UnaryOp, Box<Expr>),
    /// Both operands and the result have the same scalar type, except the
    /// shifts (right operand has the left's type too) — see [`BinaryOp`].
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `x ** n` for a float `x` and a constant int `n`, `|n| <= 64`: exact
    /// repeated multiplication `((x * x) * x) ...` left to right; `n == 0`
    /// gives 1; negative `n` gives `1 / (x ** -n)`.
    Powi(Box<Expr>, i32),
    /// `a < b <= c ...`: operands are evaluated left to right, lazily (stops
    /// at the first false comparison, like Python). Each `(op, ty, operand)`
    /// compares the previous operand and this one after casting both to `ty`.
    /// The result is `bool`. IEEE comparisons for floats (NaN compares false
    /// except `!=`).
    Compare {
        first: Box<Expr>,
        rest: Vec<(CmpOp, ScalarType, Expr)>,
    },
    /// `a and b`: both operands and the result have type `ty`; if `a` is falsy
    /// (see [`Scalar::is_truthy`]) the result is `a`, else `b` (`b` is not
    /// evaluated when `a` is falsy).
    And(Box<Expr>, Box<Expr>),
    /// `a or b`: if `a` is truthy the result is `a`, else `b`.
    Or(Box<Expr>, Box<Expr>),
    /// `then if cond else orelse`; `cond.ty` is `bool`; both arms have `ty`.
    IfExp {
        cond: Box<Expr>,
        then: Box<Expr>,
        orelse: Box<Expr>,
    },
    /// Reads one element: `array` has `indices.len()` dimensions, each index
    /// is `i64`. An index `i < 0` becomes `i + extent`; then `0 <= i < extent`
    /// must hold, else `IndexOutOfBounds` with `name`, the original indices,
    /// the axis, the original index and the extent (at this node's span).
    /// Indices are checked axis 0 first, after all are evaluated.
    Index {
        array: Box<Expr>,
        indices: Vec<Expr>,
        name: String,
    },
    /// A view of `array` (`ty` is an array type): one item per leading axis;
    /// axes beyond `items` are taken whole. `ViewItem::Index` drops its axis
    /// (checked like [`ExprKind::Index`], axis numbering is the source
    /// array's); `ViewItem::Range` keeps it, with Python slice clamping (step
    /// 1): negative bounds count from the end, then clamp to `[0, extent]`, and
    /// an upper bound below the lower gives length 0. The view aliases the
    /// array's memory. An index error names only the integer items
    /// (`a[5, :]` reports `a[5]: index 5 out of bounds ...`).
    View {
        array: Box<Expr>,
        items: Vec<ViewItem>,
        name: String,
    },
    /// A call to another specialised function; arguments have exactly the
    /// callee's parameter types. Arrays are passed by reference. The entry
    /// kernel runs at depth 0 and each call adds one; a call that would reach
    /// depth [`crate::value::RECURSION_LIMIT`] + 1 fails with
    /// `RecursionTooDeep` at the call's span (1000 nested calls work).
    Call {
        func: FuncId,
        args: Vec<Expr>,
    },
    /// A builtin operation; see [`Builtin`] for operand and result types.
    Builtin {
        op: Builtin,
        args: Vec<Expr>,
    },
    /// A tuple of scalars; `ty` is `Type::Tuple`.
    Tuple(Vec<Expr>),
    /// Element `index` of a tuple-typed expression.
    TupleGet(Box<Expr>, u32),
    /// A new array of type `ty` (dtype and ndim) and the given shape (one
    /// `i64` per dimension, evaluated left to right, then `fill`). A negative
    /// extent, or a size over [`crate::value::MAX_ARRAY_BYTES`] (computed as
    /// NumPy does, with zero extents counted as 1, so every stride fits), is a
    /// `BadArraySize` error, and so is memory the system refuses. The array is
    /// C-contiguous.
    NewArray {
        shape: Vec<Expr>,
        fill: Fill,
    },
    /// `np.arange(start, stop, step)` as a 1-D array of `ty`'s dtype; the
    /// three bounds have that dtype (int or float). Length is
    /// `ceil((stop - start) / step)` clamped at 0 (computed in f64 for floats,
    /// exactly for ints); element `k` is `start + k * step` computed in the
    /// dtype's own arithmetic (NumPy computes `start + k * ((start + step) -
    /// start)`, which can differ in the last bit for floats). Step zero is a
    /// `ZeroStep` error; a length over the size limit is `BadArraySize`.
    Arange {
        start: Box<Expr>,
        stop: Box<Expr>,
        step: Box<Expr>,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum ViewItem {
    Index(Expr),
    Range { lower: Option<Expr>, upper: Option<Expr> },
}

/// How a new array is filled.
#[derive(Clone, Debug, PartialEq)]
pub enum Fill {
    /// `np.empty`: kern fills with zeros too, so results never depend on garbage.
    Empty,
    Zeros,
    Ones,
    /// `np.full(shape, value)`; `value.ty` is the array's dtype.
    Value(Box<Expr>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Invert,
    Not,
}

/// Binary operators on two operands of the same scalar type `T`, giving `T`.
///
/// - `Add Sub Mul`: wrapping for ints (and never on `bool`), IEEE for floats.
/// - `Div`: floats only (inference casts ints to `f64` first). IEEE.
/// - `FloorDiv`: ints: Python floor division, wrapping (`MIN // -1 == MIN`);
///   zero divisor is `DivisionByZero`. Floats: Python's `//`
///   (`floor(a / b)` computed as Python does via `fmod`; `x // 0.0` is IEEE
///   `x / 0.0` floored: ±inf or NaN).
/// - `Mod`: ints: result has the divisor's sign (`-7 % 3 == 2`), `MIN % -1 ==
///   0`; zero divisor is `DivisionByZero`. Floats: Python's `%` (`fmod`, then
///   add the divisor if the signs differ and the result is nonzero; a zero
///   result takes the divisor's sign); `x % 0.0` is NaN.
/// - `Pow`: ints: exponent ≥ 0 by repeated squaring, wrapping; a negative
///   exponent is `NegativePower`. Floats: `powf` from the math library.
/// - `BitAnd BitOr BitXor`: ints and `bool` (logical for `bool`).
/// - `LShift RShift`: ints. A shift amount that is negative or at least the
///   bit width gives 0 for `<<` and for `>>` of a non-negative value, and -1
///   for `>>` of a negative value; otherwise the usual shift (arithmetic
///   for signed `>>`), wrapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    FloorDiv,
    Mod,
    Pow,
    BitAnd,
    BitOr,
    BitXor,
    LShift,
    RShift,
}

pub use crate::ast::CmpOp;

/// Builtin operations. Unless said otherwise all operands and the result have
/// one scalar type `T` (the expression's `ty`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// `abs(x)`: wrapping for ints (`abs(MIN) == MIN`), IEEE `fabs` for floats.
    Abs,
    /// `min(a, b, ...)`, two or more operands: fold left with
    /// `acc = x if x < acc else acc` (Python's rule; NaN never replaces).
    Min,
    /// `max(a, b, ...)`: fold left with `acc = x if x > acc else acc`.
    Max,
    /// `round(x)` of a float `x`: round half to even, giving `ty` = `i64`
    /// (saturating, NaN gives 0). On an int operand it is the identity.
    Round,
    // Float math, `T` is `f32` or `f64`; `f32` uses the `f32` library routine.
    Sqrt,
    Exp,
    Log,
    Log2,
    Log10,
    Log1p,
    Expm1,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    /// Float result (`np.floor`); `math.floor` is `Cast(Floor)` to `i64`.
    Floor,
    Ceil,
    Trunc,
    Erf,
    Erfc,
    /// The gamma function Γ(x).
    Gamma,
    /// ln|Γ(x)|.
    Lgamma,
    /// Two float operands.
    Atan2,
    Hypot,
    Copysign,
    /// C `fmod` (sign of the dividend).
    Fmod,
    /// C `pow`.
    Powf,
    /// One float operand, `bool` result.
    IsNan,
    IsInf,
    IsFinite,
    /// The extent of axis `k` of the array operand, as `i64` (`a.shape[k]`,
    /// `len(a)` is axis 0).
    Shape(u8),
    /// The number of elements of the array operand, as `i64`.
    Size,
}

/// Calls `f` on every direct operand of `expr`, in evaluation order. The
/// match lists every variant, so a new kind of expression must be added here.
pub fn for_each_operand<'e>(expr: &'e Expr, mut f: impl FnMut(&'e Expr)) {
    match &expr.kind {
        ExprKind::Const(_) | ExprKind::Local(_) => {}
        ExprKind::Cast(inner) | ExprKind::Unary(_, inner) | ExprKind::Powi(inner, _) | ExprKind::TupleGet(inner, _) => {
            f(inner)
        }
        ExprKind::Binary(_, a, b) | ExprKind::And(a, b) | ExprKind::Or(a, b) => {
            f(a);
            f(b);
        }
        ExprKind::Compare { first, rest } => {
            f(first);
            rest.iter().for_each(|(_, _, operand)| f(operand));
        }
        ExprKind::IfExp { cond, then, orelse } => {
            f(cond);
            f(then);
            f(orelse);
        }
        ExprKind::Index { array, indices, .. } => {
            f(array);
            indices.iter().for_each(f);
        }
        ExprKind::View { array, items, .. } => {
            f(array);
            for item in items {
                match item {
                    ViewItem::Index(index) => f(index),
                    ViewItem::Range { lower, upper } => lower.iter().chain(upper.iter()).for_each(&mut f),
                }
            }
        }
        ExprKind::Call { args, .. } | ExprKind::Builtin { args, .. } | ExprKind::Tuple(args) => args.iter().for_each(f),
        ExprKind::NewArray { shape, fill } => {
            shape.iter().for_each(&mut f);
            if let Fill::Value(value) = fill {
                f(value);
            }
        }
        ExprKind::Arange { start, stop, step } => {
            f(start);
            f(stop);
            f(step);
        }
    }
}

/// Calls `visit` on every expression in `block`, nested ones included
/// (parents before children, in evaluation order).
pub fn for_each_expr(block: &[Stmt], visit: &mut impl FnMut(&Expr)) {
    fn expr(e: &Expr, visit: &mut impl FnMut(&Expr)) {
        visit(e);
        for_each_operand(e, |operand| expr(operand, visit));
    }
    for stmt in block {
        match &stmt.kind {
            StmtKind::Assign { value, .. } => expr(value, visit),
            StmtKind::Store { array, indices, value, .. } => {
                expr(array, visit);
                indices.iter().for_each(|index| expr(index, visit));
                expr(value, visit);
            }
            StmtKind::If { cond, then, orelse } => {
                expr(cond, visit);
                for_each_expr(then, visit);
                for_each_expr(orelse, visit);
            }
            StmtKind::While { cond, body } => {
                expr(cond, visit);
                for_each_expr(body, visit);
            }
            StmtKind::ForRange { start, stop, step, body, .. } => {
                expr(start, visit);
                expr(stop, visit);
                expr(step, visit);
                for_each_expr(body, visit);
            }
            StmtKind::Return(Some(value)) | StmtKind::Expr(value) => expr(value, visit),
            StmtKind::Return(None) | StmtKind::Break | StmtKind::Continue => {}
        }
    }
}

/// Per function of `program`: the indices of the functions its body calls
/// (once per call site).
pub fn call_graph(program: &Program) -> Vec<Vec<usize>> {
    program
        .functions
        .iter()
        .map(|function| {
            let mut callees = Vec::new();
            for_each_expr(&function.body, &mut |expr| {
                if let ExprKind::Call { func, .. } = expr.kind {
                    callees.push(func.0 as usize);
                }
            });
            callees
        })
        .collect()
}

/// Whether every run of `program` is brief: straight-line code with no
/// loop, no call between kernels and no array made, so that its time is
/// bounded by a few math routines whatever the arguments. Hosts may run
/// such a program without giving up a lock they hold (the Python binding
/// keeps the GIL for it: releasing and retaking it would cost more than
/// the run).
pub fn runs_briefly(program: &Program) -> bool {
    program.functions.iter().all(|function| {
        let looping = any_stmt(&function.body, &mut |stmt| {
            matches!(stmt.kind, StmtKind::While { .. } | StmtKind::ForRange { .. })
        });
        let mut heavy = false;
        for_each_expr(&function.body, &mut |expr| {
            heavy |= matches!(expr.kind, ExprKind::Call { .. } | ExprKind::NewArray { .. } | ExprKind::Arange { .. });
        });
        !looping && !heavy
    })
}

/// Whether some function of `program` has a `prange` loop that may run on
/// the thread pool (one not nested in another `prange`). Only such programs
/// read the thread count (`pool::default_threads`), so hosts that compute
/// it per call (the Python binding) do it for these only.
pub fn has_parallel_loop(program: &Program) -> bool {
    program.functions.iter().any(|function| {
        any_stmt(&function.body, &mut |stmt| {
            matches!(&stmt.kind, StmtKind::ForRange { parallel: Some(parallel), .. } if parallel.runs_in_parallel())
        })
    })
}

/// Whether `pred` holds for some statement of `block`, nested ones included.
pub fn any_stmt(block: &[Stmt], pred: &mut impl FnMut(&Stmt) -> bool) -> bool {
    block.iter().any(|stmt| {
        pred(stmt)
            || match &stmt.kind {
                StmtKind::If { then, orelse, .. } => any_stmt(then, pred) || any_stmt(orelse, pred),
                StmtKind::While { body, .. } | StmtKind::ForRange { body, .. } => any_stmt(body, pred),
                _ => false,
            }
    })
}

/// Lists every expression of every function with its type, one per line, in
/// evaluation order: `  3:12  a + b  : f64`. Implicit conversions show as
/// `as T`. Used by the type-inference tests and `kernjit dump --stage typed`.
pub fn expression_types(program: &Program, file: &crate::span::SourceFile) -> String {
    let mut out = String::new();
    for function in &program.functions {
        let params: Vec<String> = function
            .params
            .iter()
            .map(|id| format!("{}: {}", function.local(*id).name, function.local(*id).ty))
            .collect();
        out.push_str(&format!("def {}({}) -> {}\n", function.name, params.join(", "), function.ret));
        let mut locals: Vec<String> = function
            .locals
            .iter()
            .skip(function.params.len())
            .filter(|local| !local.name.starts_with('$'))
            .map(|local| format!("{}: {}", local.name, local.ty))
            .collect();
        locals.sort();
        if !locals.is_empty() {
            out.push_str(&format!("  locals {}\n", locals.join(", ")));
        }
        let mut lister = Lister { file, out: &mut out };
        lister.block(&function.body);
    }
    out
}

struct Lister<'f, 'o> {
    file: &'f crate::span::SourceFile,
    out: &'o mut String,
}

impl Lister<'_, '_> {
    fn block(&mut self, block: &Block) {
        for stmt in block {
            match &stmt.kind {
                StmtKind::Assign { value, .. } => self.expr(value),
                StmtKind::Store { array, indices, value, .. } => {
                    self.expr(array);
                    indices.iter().for_each(|e| self.expr(e));
                    self.expr(value);
                }
                StmtKind::If { cond, then, orelse } => {
                    self.expr(cond);
                    self.block(then);
                    self.block(orelse);
                }
                StmtKind::While { cond, body } => {
                    self.expr(cond);
                    self.block(body);
                }
                StmtKind::ForRange { start, stop, step, body, parallel, range_span, .. } => {
                    let position = self.file.line_col(stmt.span.start);
                    match parallel {
                        Some(parallel) if parallel.runs_in_parallel() => {
                            let reductions: Vec<String> =
                                parallel.reductions.iter().map(|r| format!("{:?}", r.op)).collect();
                            self.out.push_str(&format!(
                                "  {position}  prange loop, parallel from {} trips, reductions [{}]\n",
                                parallel_min_trips(body),
                                reductions.join(", ")
                            ));
                        }
                        Some(_) => {
                            self.out.push_str(&format!("  {position}  prange loop, serial: nested in another prange\n"))
                        }
                        None => self.out.push_str(&format!("  {position}  range loop\n")),
                    }
                    // Implicit bounds (`range(n)` starts at 0, steps by 1) are not listed.
                    for bound in [start, stop, step] {
                        if !(matches!(bound.kind, ExprKind::Const(_)) && bound.span == *range_span) {
                            self.expr(bound);
                        }
                    }
                    self.block(body);
                }
                StmtKind::Return(Some(value)) | StmtKind::Expr(value) => self.expr(value),
                StmtKind::Return(None) | StmtKind::Break | StmtKind::Continue => {}
            }
        }
    }

    fn expr(&mut self, expr: &Expr) {
        let snippet: String = self.file.snippet(expr.span).split_whitespace().collect::<Vec<_>>().join(" ");
        let snippet = if snippet.chars().count() > 48 {
            format!("{}...", snippet.chars().take(45).collect::<String>())
        } else {
            snippet
        };
        let position = self.file.line_col(expr.span.start);
        let marker = if matches!(expr.kind, ExprKind::Cast(_)) || self.is_folded_cast(expr) { " as" } else { "" };
        self.out.push_str(&format!("  {position}  {snippet}  :{marker} {}\n", expr.ty));
        match &expr.kind {
            ExprKind::Const(_) | ExprKind::Local(_) => {}
            ExprKind::Cast(inner)
            | ExprKind::Unary(_, inner)
            | ExprKind::Powi(inner, _)
            | ExprKind::TupleGet(inner, _) => {
                if !matches!(expr.kind, ExprKind::TupleGet(..)) || inner.span != expr.span {
                    self.expr(inner)
                }
            }
            ExprKind::Binary(_, a, b) | ExprKind::And(a, b) | ExprKind::Or(a, b) => {
                self.expr(a);
                self.expr(b);
            }
            ExprKind::Compare { first, rest } => {
                self.expr(first);
                rest.iter().for_each(|(_, _, e)| self.expr(e));
            }
            ExprKind::IfExp { cond, then, orelse } => {
                self.expr(cond);
                self.expr(then);
                self.expr(orelse);
            }
            ExprKind::Index { array, indices, .. } => {
                self.expr(array);
                indices.iter().for_each(|e| self.expr(e));
            }
            ExprKind::View { array, items, .. } => {
                self.expr(array);
                for item in items {
                    match item {
                        ViewItem::Index(e) => self.expr(e),
                        ViewItem::Range { lower, upper } => {
                            lower.iter().chain(upper.iter()).for_each(|e| self.expr(e));
                        }
                    }
                }
            }
            ExprKind::Call { args, .. } | ExprKind::Builtin { args, .. } | ExprKind::Tuple(args) => {
                args.iter().for_each(|e| self.expr(e));
            }
            ExprKind::NewArray { shape, fill } => {
                shape.iter().for_each(|e| self.expr(e));
                if let Fill::Value(value) = fill {
                    self.expr(value);
                }
            }
            ExprKind::Arange { start, stop, step } => {
                self.expr(start);
                self.expr(stop);
                self.expr(step);
            }
        }
    }

    /// A literal converted at compile time (`2` used as `f32`).
    fn is_folded_cast(&self, expr: &Expr) -> bool {
        let ExprKind::Const(value) = expr.kind else { return false };
        let text = self.file.snippet(expr.span).trim().trim_start_matches('-');
        let natural =
            if text.parse::<u64>().is_ok() || text.starts_with("0x") || text.contains('_') && !text.contains('.') {
                crate::types::ScalarType::I64
            } else if text.parse::<f64>().is_ok() {
                crate::types::ScalarType::F64
            } else {
                return false;
            };
        value.ty() != natural
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::parse_type;

    /// `parallel_min_trips` of the first `prange` loop of `f(x: f64[:])`.
    fn min_trips(body: &str) -> u64 {
        let source = format!("def g(v):\n    return v\n\ndef f(x):\n    for i in prange(x.shape[0]):\n{body}");
        let module = crate::Module::parse("t.kern", source.as_bytes()).unwrap();
        let program = module.specialise("f", &[parse_type("f64[:]").unwrap()]).unwrap();
        let function = program.entry_function();
        let mut found = None;
        any_stmt(&function.body, &mut |stmt| match &stmt.kind {
            StmtKind::ForRange { body, parallel: Some(_), .. } => {
                found = Some(parallel_min_trips(body));
                true
            }
            _ => false,
        });
        found.expect("a prange loop")
    }

    #[test]
    fn parallel_min_trips_weighs_the_body() {
        // x[i] = x[i] * 2.0: 7 nodes (store target, index, value).
        let simple = min_trips("        x[i] = x[i] * 2.0\n");
        assert_eq!(simple, 30_000 / 7);
        // A short constant loop multiplies its body; the longer branch counts.
        let unrolled = min_trips("        for k in range(4):\n            x[i] = x[i] * 2.0\n");
        assert_eq!(unrolled, 30_000 / (3 + 4 * 7));
        let branch =
            min_trips("        if x[i] > 0.0:\n            x[i] = x[i] * 2.0\n        else:\n            x[i] = 0.0\n");
        assert_eq!(branch, 30_000 / (5 + 7));
        // Calls, while loops and long or variable loops: worth it from 2 trips.
        assert_eq!(min_trips("        x[i] = g(x[i])\n"), 2);
        assert_eq!(min_trips("        while x[i] > 1.0:\n            x[i] = x[i] / 2.0\n"), 2);
        assert_eq!(min_trips("        for k in range(100):\n            x[i] += 1.0\n"), 2);
        assert_eq!(min_trips("        for k in range(i):\n            x[i] += 1.0\n"), 2);
    }

    #[test]
    fn brief_programs_are_straight_line_without_calls_or_arrays() {
        let source = "\
def add(a, b):
    return math.sqrt(a * a + b * b) if a > b else a // 2

def pick(x, i):
    return x[i] + x.shape[0]

def looping(n):
    s = 0
    for i in range(n):
        s += i
    return s

def waiting(n):
    while n > 1:
        n = n // 2
    return n

def calls(a, b):
    return add(a, b)

def makes(n):
    return np.zeros(n)[0]
";
        let module = crate::Module::parse("t.kern", source.as_bytes()).unwrap();
        let brief = |kernel: &str, args: &[&str]| {
            let types: Vec<Type> = args.iter().map(|t| parse_type(t).unwrap()).collect();
            runs_briefly(&module.specialise(kernel, &types).unwrap())
        };
        assert!(brief("add", &["f64", "f64"]));
        assert!(brief("pick", &["f64[:]", "i64"]));
        assert!(!brief("looping", &["i64"]));
        assert!(!brief("waiting", &["i64"]));
        assert!(!brief("calls", &["f64", "f64"]));
        assert!(!brief("makes", &["i64"]));
    }

    #[test]
    fn parallel_loops_are_found_in_callees_too() {
        let source = "\
def serial(x):
    for i in range(x.shape[0]):
        x[i] += 1.0

def direct(x):
    for i in prange(x.shape[0]):
        x[i] += 1.0

def helper(x):
    for j in prange(x.shape[0]):
        x[j] += 1.0

def caller(x):
    for i in range(3):
        helper(x)
";
        let module = crate::Module::parse("t.kern", source.as_bytes()).unwrap();
        let parallel =
            |kernel: &str| has_parallel_loop(&module.specialise(kernel, &[parse_type("f64[:]").unwrap()]).unwrap());
        assert!(!parallel("serial"));
        assert!(parallel("direct"));
        assert!(parallel("caller"));
    }
}
