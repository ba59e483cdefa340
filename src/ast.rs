//! The untyped syntax tree produced by the parser.
//!
//! Every node carries the byte [`Span`] of the source it came from. The tree is
//! purely syntactic: names are unresolved strings and there are no types.
//! Inference (`infer`) turns it into the typed IR; nothing after inference
//! looks at this tree.

use crate::span::Span;

/// A parsed `.kern` file: its functions in source order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Module {
    pub functions: Vec<FunctionDef>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

/// `def name(params) -> ret: body`. Decorators are parsed and dropped.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionDef {
    pub name: Ident,
    pub params: Vec<Param>,
    /// The return annotation, written as an expression (`f64`, `f64[:]`).
    pub returns: Option<Expr>,
    pub body: Block,
    /// From `def` to the end of the body.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: Ident,
    /// The annotation, written as an expression (`f64`, `i64[:, :]`, `np.float32`).
    pub annotation: Option<Expr>,
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
    /// An expression evaluated for its effect (a call); docstrings are dropped
    /// by the parser and never appear here.
    Expr(Expr),
    /// `t1 = t2 = value`: one or more targets (names, subscripts, tuples of names).
    Assign {
        targets: Vec<Expr>,
        value: Expr,
    },
    /// `x: T = value` or `x: T`.
    AnnAssign {
        target: Ident,
        annotation: Expr,
        value: Option<Expr>,
    },
    /// `target op= value` on a name or a subscript.
    AugAssign {
        target: Expr,
        op: BinOp,
        value: Expr,
    },
    /// `if`/`elif`/`else`; an `elif` is a nested `If` alone in `orelse`.
    If {
        cond: Expr,
        then: Block,
        orelse: Block,
    },
    While {
        cond: Expr,
        body: Block,
    },
    /// `for target in iter:`; the iterator is a call like `range(n)`.
    For {
        target: Ident,
        iter: Expr,
        body: Block,
    },
    Break,
    Continue,
    Pass,
    Return(Option<Expr>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer literal (decimal, hex, octal or binary; `_` separators).
    Int(u64),
    Float(f64),
    Bool(bool),
    None,
    Name(String),
    /// `value.attr`
    Attribute {
        value: Box<Expr>,
        attr: Ident,
    },
    /// `func(args, name=value)`
    Call {
        func: Box<Expr>,
        args: Vec<Expr>,
        keywords: Vec<Keyword>,
    },
    /// `value[i, j:k]`: one item per comma-separated part.
    Subscript {
        value: Box<Expr>,
        items: Vec<SubscriptItem>,
    },
    Unary {
        op: UnaryOp,
        operand: Box<Expr>,
    },
    Binary {
        op: BinOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `a and b`, `a or b` (left-nested for longer chains).
    BoolOp {
        op: BoolOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    /// `a < b <= c`: the first operand and each (operator, operand) after it.
    Compare {
        first: Box<Expr>,
        rest: Vec<(CmpOp, Expr)>,
    },
    /// `body if cond else orelse`
    IfExp {
        cond: Box<Expr>,
        body: Box<Expr>,
        orelse: Box<Expr>,
    },
    /// `(a, b)` or `a, b`.
    Tuple(Vec<Expr>),
    /// Stands in for an expression the parser could not read (an error was
    /// already reported).
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Keyword {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SubscriptItem {
    Index(Expr),
    /// `lower:upper:step`, each part optional.
    Slice {
        lower: Option<Expr>,
        upper: Option<Expr>,
        step: Option<Expr>,
        span: Span,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `+x`
    Pos,
    /// `~x`
    Invert,
    /// `not x`
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    /// `/`, true division.
    Div,
    /// `//`, floor division.
    FloorDiv,
    /// `%`, the sign of the divisor.
    Mod,
    Pow,
    BitAnd,
    BitOr,
    BitXor,
    LShift,
    RShift,
    /// `@`: parsed only to be rejected with a clear message.
    MatMul,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::FloorDiv => "//",
            BinOp::Mod => "%",
            BinOp::Pow => "**",
            BinOp::BitAnd => "&",
            BinOp::BitOr => "|",
            BinOp::BitXor => "^",
            BinOp::LShift => "<<",
            BinOp::RShift => ">>",
            BinOp::MatMul => "@",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BoolOp {
    And,
    Or,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }
}
