//! The parser: tokens to the untyped AST, with error recovery and hard depth
//! limits.
//!
//! Hand-written recursive descent over the lexer's token vector. Every
//! `parse_x` method parses the rule `x` of `grammar/kern.ebnf` and returns
//! `PResult<_>`: `Err(Stop)` means a diagnostic was already recorded and the
//! caller should give up on the current statement. Token helpers: `at(kind)`
//! tests the next token, `eat(kind)` consumes it if present, `expect(kind,
//! what)` consumes it or reports what was expected.
//!
//! Recovery: a statement that fails is skipped up to the end of its logical
//! line (and the indented block after it, if it was a block header), then
//! parsing goes on, so one parse reports every independent mistake.
//!
//! Limits: parentheses, blocks, unary chains and `elif` chains (an `elif` is
//! an `if` in the `else` block) nest at most [`MAX_NESTING`] levels and the
//! expression tree is at most [`MAX_EXPR_DEPTH`] deep (long `a + b + c + ...`
//! chains nest the tree too); past them the statement gets error E0203.
//! Later phases walk the tree recursively, so these limits are what keeps
//! every phase's stack bounded. A function has at most [`MAX_PARAMS`]
//! parameters and a tuple at most [`MAX_TUPLE_ITEMS`] items (E0206).
//!
//! Python constructs outside the kern subset are parsed far enough to name
//! them (E0202) with what to do instead.

use crate::ast::*;
use crate::diag::Diagnostic;
use crate::lexer::{lex, Token, TokenKind as T};
use crate::span::{SourceFile, Span};
use rustc_hash::FxHashMap as HashMap;

/// The deepest nesting of brackets, blocks, unary operators and `elif`s.
pub const MAX_NESTING: usize = 200;
/// The deepest expression tree.
pub const MAX_EXPR_DEPTH: u32 = 1000;
/// The most parameters a function may have (CPython's limit before 3.7).
/// Each is a native argument of the compiled code, and compile time grows
/// faster than linearly with their number.
pub const MAX_PARAMS: usize = 255;
/// The most items a tuple may have: every element read from a tuple carries
/// the tuple's type, so unpacking n items costs n^2.
pub const MAX_TUPLE_ITEMS: usize = 255;

/// The parse result: the tree and every error found (the tree is partial when
/// there are errors).
#[derive(Debug)]
pub struct Parsed {
    pub module: Module,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses a whole file.
pub fn parse(file: &SourceFile) -> Parsed {
    let lexed = lex(file);
    let mut parser =
        Parser { file, tokens: lexed.tokens, pos: 0, diagnostics: lexed.diagnostics, nesting: 0, last_depth: 0 };
    let module = parser.parse_file();
    Parsed { module, diagnostics: parser.diagnostics }
}

/// A diagnostic has been recorded; abandon the current statement.
#[derive(Debug)]
struct Stop;

type PResult<T> = Result<T, Stop>;

struct Parser<'f> {
    file: &'f SourceFile,
    tokens: Vec<Token>,
    pos: usize,
    diagnostics: Vec<Diagnostic>,
    /// Current bracket/block/unary nesting.
    nesting: usize,
    /// The tree depth of the expression the last `parse_*` call returned.
    last_depth: u32,
}

/// A binary operator and its precedence level, 0 (`|`) to 5 (`* / // % @`).
fn binary_op(kind: T) -> Option<(BinOp, u8)> {
    Some(match kind {
        T::Pipe => (BinOp::BitOr, 0),
        T::Caret => (BinOp::BitXor, 1),
        T::Amper => (BinOp::BitAnd, 2),
        T::LeftShift => (BinOp::LShift, 3),
        T::RightShift => (BinOp::RShift, 3),
        T::Plus => (BinOp::Add, 4),
        T::Minus => (BinOp::Sub, 4),
        T::Star => (BinOp::Mul, 5),
        T::Slash => (BinOp::Div, 5),
        T::DoubleSlash => (BinOp::FloorDiv, 5),
        T::Percent => (BinOp::Mod, 5),
        T::At => (BinOp::MatMul, 5),
        _ => return None,
    })
}

fn augmented_op(kind: T) -> Option<BinOp> {
    Some(match kind {
        T::PlusEqual => BinOp::Add,
        T::MinusEqual => BinOp::Sub,
        T::StarEqual => BinOp::Mul,
        T::SlashEqual => BinOp::Div,
        T::DoubleSlashEqual => BinOp::FloorDiv,
        T::PercentEqual => BinOp::Mod,
        T::DoubleStarEqual => BinOp::Pow,
        T::AmperEqual => BinOp::BitAnd,
        T::PipeEqual => BinOp::BitOr,
        T::CaretEqual => BinOp::BitXor,
        T::LeftShiftEqual => BinOp::LShift,
        T::RightShiftEqual => BinOp::RShift,
        T::AtEqual => BinOp::MatMul,
        _ => return None,
    })
}

fn comparison_op(kind: T) -> Option<CmpOp> {
    Some(match kind {
        T::Less => CmpOp::Lt,
        T::LessEqual => CmpOp::Le,
        T::Greater => CmpOp::Gt,
        T::GreaterEqual => CmpOp::Ge,
        T::EqualEqual => CmpOp::Eq,
        T::NotEqual => CmpOp::Ne,
        _ => return None,
    })
}

/// Python statements kern rejects: (token, what it is, what to do instead).
fn unsupported_statement(kind: T) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        T::Class => ("classes are", "use functions and arrays"),
        T::Try | T::Except | T::Finally => {
            ("`try` blocks are", "kernels cannot catch errors; check conditions with `if` instead")
        }
        T::With => ("`with` blocks are", "kernels have no context managers; remove the `with`"),
        T::Raise => ("`raise` is", "kernels cannot raise exceptions; return an error flag or value instead"),
        T::Assert => ("`assert` is", "check the condition with `if` and return an error value"),
        T::Global | T::Nonlocal => ("`global` and `nonlocal` are", "pass the value as an argument, or return it"),
        T::Yield => ("`yield` is", "kernels cannot be generators; write results into an array"),
        T::Async | T::Await => ("`async` and `await` are", "kernels are synchronous; remove `async`/`await`"),
        T::Del => ("`del` is", "variables cannot be deleted; just stop using the name"),
        T::Lambda => ("`lambda` is", "define a function with `def`"),
        _ => return None,
    })
}

impl<'f> Parser<'f> {
    // ---- token helpers ------------------------------------------------

    fn peek(&self) -> T {
        self.tokens[self.pos.min(self.tokens.len() - 1)].kind
    }

    fn peek_at(&self, offset: usize) -> T {
        self.tokens[(self.pos + offset).min(self.tokens.len() - 1)].kind
    }

    fn token(&self) -> Token {
        self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn span(&self) -> Span {
        self.token().span
    }

    /// The end of the last consumed token.
    fn prev_end(&self) -> u32 {
        if self.pos == 0 {
            0
        } else {
            self.tokens[self.pos - 1].span.end
        }
    }

    fn span_from(&self, start: u32) -> Span {
        Span { start, end: self.prev_end().max(start) }
    }

    fn bump(&mut self) -> Token {
        let token = self.token();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        token
    }

    fn at(&self, kind: T) -> bool {
        self.peek() == kind
    }

    fn eat(&mut self, kind: T) -> bool {
        if self.at(kind) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn text(&self, span: Span) -> &'f str {
        self.file.snippet(span)
    }

    fn error(&mut self, diagnostic: Diagnostic) -> Stop {
        self.diagnostics.push(diagnostic);
        Stop
    }

    /// Describes the next token for "found ..." messages.
    fn found(&self) -> String {
        let token = self.token();
        match token.kind {
            T::Name => format!("`{}`", self.text(token.span)),
            T::Newline | T::Indent | T::Dedent | T::Eof | T::Invalid | T::Int(_) | T::Float(_) | T::String => {
                token.kind.describe().to_string()
            }
            kind => kind.symbol().to_string(),
        }
    }

    /// Consumes `kind` or reports "expected {what}, found ...".
    fn expect(&mut self, kind: T, what: &str) -> PResult<Token> {
        if self.at(kind) {
            return Ok(self.bump());
        }
        Err(self.unexpected(what))
    }

    fn unexpected(&mut self, what: &str) -> Stop {
        if self.at(T::Invalid) {
            // The lexer already reported this character.
            return Stop;
        }
        if self.at(T::String) {
            return self.string_error();
        }
        let found = self.found();
        let span = self.span();
        self.error(
            Diagnostic::error("E0201", span, format!("expected {what}, found {found}"))
                .with_span_label(format!("expected {what}")),
        )
    }

    /// Whether the lexer already reported this line's indentation (a tab or
    /// an inconsistent dedent), so a follow-on layout error would be noise.
    fn layout_error_on_line(&self, span: Span) -> bool {
        // Lines of the whole text: in a file made of pieces, two pieces'
        // files may share line numbers.
        let line = self.file.line_index(span.start as usize);
        self.diagnostics
            .iter()
            .any(|d| matches!(d.code, "E0103" | "E0104") && self.file.line_index(d.span.start as usize) == line)
    }

    fn string_error(&mut self) -> Stop {
        let span = self.span();
        self.bump();
        self.error(Diagnostic::error("E0106", span, "string literals are not supported in kernels").with_help(
            "kernels compute with numbers; only a docstring (the first statement of a function) may be a string",
        ))
    }

    fn unsupported(&mut self, span: Span, what: &str, help: &str) -> Stop {
        self.error(Diagnostic::error("E0202", span, format!("{what} not supported in kernels")).with_help(help))
    }

    // ---- limits ---------------------------------------------------------

    /// Enters one nesting level (brackets, blocks, unary operators).
    fn enter(&mut self) -> PResult<()> {
        if self.nesting >= MAX_NESTING {
            let span = self.span();
            return Err(self.error(
                Diagnostic::error("E0203", span, format!("nesting too deep (more than {MAX_NESTING} levels)"))
                    .with_help("split the expression or the blocks into smaller functions"),
            ));
        }
        self.nesting += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting -= 1;
    }

    /// Runs `f` one nesting level deeper (and on a grown stack if needed).
    fn nested<R>(&mut self, f: impl FnOnce(&mut Self) -> PResult<R>) -> PResult<R> {
        self.enter()?;
        let result = crate::stack::guarded(|| f(self));
        self.leave();
        result
    }

    /// Records the depth of a new node and checks the limit.
    fn node(&mut self, kind: ExprKind, span: Span, depth: u32) -> PResult<Expr> {
        if depth > MAX_EXPR_DEPTH {
            return Err(self.error(
                Diagnostic::error(
                    "E0203",
                    span,
                    format!("expression too deeply nested (more than {MAX_EXPR_DEPTH} levels)"),
                )
                .with_help("split the expression into several statements with intermediate variables"),
            ));
        }
        self.last_depth = depth;
        Ok(Expr { kind, span })
    }

    fn leaf(&mut self, kind: ExprKind, span: Span) -> Expr {
        self.last_depth = 1;
        Expr { kind, span }
    }

    // ---- recovery -------------------------------------------------------

    /// Skips the rest of a failed statement: up to and including the end of
    /// its line, and the indented block after it if there is one.
    fn synchronize(&mut self) {
        loop {
            match self.peek() {
                T::Eof => return,
                T::Dedent => return,
                T::Newline => {
                    self.bump();
                    break;
                }
                T::Indent => break,
                _ => {
                    self.bump();
                }
            }
        }
        if self.at(T::Indent) {
            let mut depth = 0usize;
            loop {
                match self.bump().kind {
                    T::Indent => depth += 1,
                    T::Dedent => {
                        depth -= 1;
                        if depth == 0 {
                            return;
                        }
                    }
                    T::Eof => return,
                    _ => {}
                }
            }
        }
    }

    // ---- file level -----------------------------------------------------

    /// file := (NEWLINE | import_statement | decorated | funcdef | docstring | "pass")* EOF
    fn parse_file(&mut self) -> Module {
        let mut module = Module::default();
        let mut first = true;
        loop {
            let is_first = std::mem::replace(&mut first, false);
            match self.peek() {
                T::Eof => break,
                T::Newline | T::Indent | T::Dedent | T::Semicolon => {
                    if self.at(T::Indent) {
                        let span = self.span();
                        if self.layout_error_on_line(span) {
                            self.synchronize();
                            continue;
                        }
                        self.diagnostics.push(
                            Diagnostic::error("E0201", span, "unexpected indentation")
                                .with_help("top-level definitions start at column 1"),
                        );
                        self.synchronize();
                    } else {
                        self.bump();
                    }
                }
                T::Import | T::From => self.skip_import(),
                T::Pass => {
                    self.bump();
                }
                T::String if is_first || self.peek_at(1) == T::Newline => {
                    if is_first {
                        self.bump();
                        self.eat(T::Newline);
                    } else {
                        let _ = self.string_error();
                        self.synchronize();
                    }
                }
                T::At | T::Def => match self.parse_decorated() {
                    Ok(function) => module.functions.push(function),
                    Err(Stop) => self.synchronize(),
                },
                T::Try => self.reject_try(),
                _ => {
                    let span = self.span();
                    if let Some((what, help)) = unsupported_statement(self.peek()) {
                        let _ = self.unsupported(span, what, help);
                    } else if self.at(T::Invalid) {
                        // Already reported by the lexer.
                    } else {
                        self.diagnostics.push(
                            Diagnostic::error("E0202", span, "only functions are allowed at the top level of a kern file")
                                .with_help("kern files contain only `def` functions (and ignored imports); move this into a function"),
                        );
                    }
                    self.synchronize();
                }
            }
        }
        module
    }

    /// Reports a `try` statement once and skips it with all its `except`,
    /// `else` and `finally` clauses.
    fn reject_try(&mut self) {
        let span = self.span();
        let (what, help) = unsupported_statement(T::Try).expect("listed");
        let _ = self.unsupported(span, what, help);
        self.synchronize();
        while matches!(self.peek(), T::Except | T::Finally | T::Else) {
            self.synchronize();
        }
    }

    /// import_statement := ("import" | "from") ... NEWLINE — parsed loosely and dropped.
    fn skip_import(&mut self) {
        while !matches!(self.peek(), T::Newline | T::Eof | T::Dedent | T::Semicolon) {
            self.bump();
        }
        self.eat(T::Newline);
        self.eat(T::Semicolon);
    }

    /// decorated := decorator* funcdef ; decorator := "@" dotted_name [ "(" ... ")" ] NEWLINE
    fn parse_decorated(&mut self) -> PResult<FunctionDef> {
        while self.at(T::At) {
            self.bump();
            self.expect(T::Name, "a decorator name after `@`")?;
            while self.eat(T::Dot) {
                self.expect(T::Name, "a name after `.`")?;
            }
            if self.at(T::LeftParen) {
                // Decorator arguments (`parallel=True`, `"f8(f8)"`, ...) are ignored.
                let mut depth = 0usize;
                loop {
                    match self.bump().kind {
                        T::LeftParen | T::LeftBracket | T::LeftBrace => depth += 1,
                        T::RightParen | T::RightBracket | T::RightBrace => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        T::Eof | T::Newline => break,
                        _ => {}
                    }
                }
            }
            self.expect(T::Newline, "the end of the line after the decorator")?;
        }
        self.parse_funcdef()
    }

    /// funcdef := "def" NAME "(" [parameters] ")" ["->" expression] ":" block
    fn parse_funcdef(&mut self) -> PResult<FunctionDef> {
        let start = self.expect(T::Def, "`def`")?.span.start;
        let name_token = self.expect(T::Name, "the function name after `def`")?;
        let name = Ident { name: self.text(name_token.span).to_string(), span: name_token.span };
        self.expect(T::LeftParen, "`(` after the function name")?;
        let params = self.parse_parameters()?;
        self.expect(T::RightParen, "`)` to close the parameter list")?;
        let returns = if self.eat(T::Arrow) { Some(self.parse_expression()?) } else { None };
        self.expect_colon("the function signature")?;
        let body = self.parse_block(&format!("`def {}(...):`", name.name), true)?;
        Ok(FunctionDef { name, params, returns, body, span: self.span_from(start) })
    }

    /// parameters := param ("," param)* [","] ; param := NAME [":" expression]
    fn parse_parameters(&mut self) -> PResult<Vec<Param>> {
        let mut params: Vec<Param> = Vec::new();
        // Where each name was first declared (a lookup per parameter keeps a
        // list of thousands of parameters linear).
        let mut declared: HashMap<String, Span> = HashMap::default();
        while !self.at(T::RightParen) {
            let span = self.span();
            match self.peek() {
                T::Star if self.peek_at(1) == T::Comma => {
                    return Err(self.unsupported(
                        span,
                        "keyword-only markers (`*`) are",
                        "remove the `*`; kernels take positional arguments",
                    ));
                }
                T::Star | T::DoubleStar => {
                    return Err(self.unsupported(
                        span,
                        "`*args` and `**kwargs` parameters are",
                        "take a fixed number of parameters; pass arrays for many values",
                    ));
                }
                T::Slash => return Err(self.unsupported(span, "positional-only markers (`/`) are", "remove the `/`")),
                _ => {}
            }
            let token = self.expect(T::Name, "a parameter name")?;
            if params.len() == MAX_PARAMS {
                return Err(self.error(
                    Diagnostic::error("E0206", token.span, format!("too many parameters (more than {MAX_PARAMS})"))
                        .with_help("pass the values in arrays"),
                ));
            }
            let name = Ident { name: self.text(token.span).to_string(), span: token.span };
            if let Some(&first) = declared.get(&name.name) {
                self.diagnostics.push(
                    Diagnostic::error("E0303", token.span, format!("duplicate parameter `{}`", name.name))
                        .with_label(first, "first declared here"),
                );
            } else {
                declared.insert(name.name.clone(), token.span);
            }
            let annotation = if self.eat(T::Colon) { Some(self.parse_expression()?) } else { None };
            if self.at(T::Equal) {
                let span = self.span();
                return Err(self.unsupported(span, "default argument values are", "pass every argument explicitly"));
            }
            params.push(Param { name, annotation, span: self.span_from(token.span.start) });
            if !self.eat(T::Comma) {
                break;
            }
        }
        Ok(params)
    }

    fn expect_colon(&mut self, after: &str) -> PResult<()> {
        if self.eat(T::Colon) {
            return Ok(());
        }
        if self.at(T::Invalid) {
            return Err(Stop);
        }
        let found = self.found();
        let span = self.span();
        Err(self.error(
            Diagnostic::error("E0201", span, format!("expected `:` after {after}, found {found}"))
                .with_span_label("expected `:`"),
        ))
    }

    // ---- blocks and statements -------------------------------------------

    /// block := NEWLINE INDENT statement+ DEDENT | simple_statements
    fn parse_block(&mut self, header: &str, function_body: bool) -> PResult<Block> {
        self.nested(|p| p.parse_block_inner(header, function_body))
    }

    fn parse_block_inner(&mut self, header: &str, function_body: bool) -> PResult<Block> {
        if !self.at(T::Newline) {
            let mut block = Vec::new();
            self.parse_simple_statements(&mut block)?;
            return Ok(block);
        }
        self.bump();
        if !self.at(T::Indent) {
            let span = self.span();
            return Err(self.error(
                Diagnostic::error("E0205", span, format!("expected an indented block after {header}"))
                    .with_span_label("this line should be indented")
                    .with_help("indent the body with 4 spaces (use `pass` for an empty body)"),
            ));
        }
        self.bump();
        let mut block = Vec::new();
        let mut first = true;
        while !matches!(self.peek(), T::Dedent | T::Eof) {
            let is_first = std::mem::replace(&mut first, false);
            if function_body && is_first && self.at(T::String) && matches!(self.peek_at(1), T::Newline | T::Semicolon) {
                // A docstring.
                self.bump();
                self.eat(T::Semicolon);
                self.eat(T::Newline);
                continue;
            }
            let is_if = self.at(T::If);
            if let Err(Stop) = self.parse_statement(&mut block) {
                self.synchronize();
                // The `elif` and `else` clauses of a failed `if` are part of
                // it, not errors of their own.
                while is_if && matches!(self.peek(), T::Elif | T::Else) {
                    self.synchronize();
                }
            }
        }
        self.eat(T::Dedent);
        Ok(block)
    }

    /// statement := compound_statement | simple_statements
    fn parse_statement(&mut self, out: &mut Block) -> PResult<()> {
        let span = self.span();
        match self.peek() {
            T::If => out.push(self.parse_if_statement()?),
            T::While => out.push(self.parse_while_statement()?),
            T::For => out.push(self.parse_for_statement()?),
            T::Def | T::At => {
                return Err(self.unsupported(
                    span,
                    "nested functions are",
                    "define helper functions at the top level of the file; they can call each other",
                ));
            }
            T::Indent => {
                if self.layout_error_on_line(span) {
                    return Err(Stop);
                }
                return Err(self.error(
                    Diagnostic::error("E0201", span, "unexpected indentation")
                        .with_help("indent only the body of `if`, `for`, `while` and `def`"),
                ));
            }
            T::Else | T::Elif => {
                let keyword = if self.at(T::Else) { "else" } else { "elif" };
                return Err(self.error(
                    Diagnostic::error("E0201", span, format!("`{keyword}` without a matching `if`"))
                        .with_help(format!("`{keyword}` must line up with an `if` just above it")),
                ));
            }
            T::Try => {
                self.reject_try();
                return Ok(());
            }
            kind if unsupported_statement(kind).is_some() => {
                let (what, help) = unsupported_statement(kind).expect("checked");
                return Err(self.unsupported(span, what, help));
            }
            _ => self.parse_simple_statements(out)?,
        }
        Ok(())
    }

    /// simple_statements := simple_statement (";" simple_statement)* [";"] NEWLINE
    fn parse_simple_statements(&mut self, out: &mut Block) -> PResult<()> {
        loop {
            out.push(self.parse_simple_statement()?);
            if !self.eat(T::Semicolon) || matches!(self.peek(), T::Newline | T::Eof) {
                break;
            }
        }
        if !self.eat(T::Newline) && !matches!(self.peek(), T::Eof | T::Dedent) {
            if self.at(T::ColonEqual) {
                let span = self.span();
                return Err(self.unsupported(span, "the `:=` operator is", "assign on a line of its own"));
            }
            return Err(self.unexpected("the end of the statement"));
        }
        Ok(())
    }

    /// simple_statement := "pass" | "break" | "continue" | return_statement
    ///                   | import_statement | expression_statement
    fn parse_simple_statement(&mut self) -> PResult<Stmt> {
        let start = self.span().start;
        let kind = match self.peek() {
            T::Pass => {
                self.bump();
                StmtKind::Pass
            }
            T::Break => {
                self.bump();
                StmtKind::Break
            }
            T::Continue => {
                self.bump();
                StmtKind::Continue
            }
            T::Return => {
                self.bump();
                if matches!(self.peek(), T::Newline | T::Semicolon | T::Eof | T::Dedent) {
                    StmtKind::Return(None)
                } else {
                    StmtKind::Return(Some(self.parse_expression_list()?))
                }
            }
            T::Import | T::From => {
                while !matches!(self.peek(), T::Newline | T::Eof | T::Dedent | T::Semicolon) {
                    self.bump();
                }
                StmtKind::Pass
            }
            kind if unsupported_statement(kind).is_some() => {
                let (what, help) = unsupported_statement(kind).expect("checked");
                let span = self.span();
                return Err(self.unsupported(span, what, help));
            }
            _ => return self.parse_expression_statement(),
        };
        Ok(Stmt { kind, span: self.span_from(start) })
    }

    /// expression_statement := expression_list
    ///     ( ("=" expression_list)+ | augassign expression_list | ":" expression ["=" expression_list] )?
    fn parse_expression_statement(&mut self) -> PResult<Stmt> {
        let start = self.span().start;
        let first = self.parse_expression_list()?;
        if self.at(T::Equal) {
            let mut targets = vec![first];
            let value = loop {
                self.bump();
                let next = self.parse_expression_list()?;
                if !self.at(T::Equal) {
                    break next;
                }
                targets.push(next);
            };
            for target in &targets {
                self.check_target(target, true)?;
            }
            return Ok(Stmt { kind: StmtKind::Assign { targets, value }, span: self.span_from(start) });
        }
        if let Some(op) = augmented_op(self.peek()) {
            self.bump();
            self.check_target(&first, false)?;
            let value = self.parse_expression_list()?;
            return Ok(Stmt { kind: StmtKind::AugAssign { target: first, op, value }, span: self.span_from(start) });
        }
        if self.at(T::Colon) {
            let ExprKind::Name(name) = &first.kind else {
                let span = first.span;
                return Err(self.error(
                    Diagnostic::error("E0204", span, "only a plain name can be annotated")
                        .with_help("write `x: f64 = ...` with a variable name"),
                ));
            };
            let target = Ident { name: name.clone(), span: first.span };
            self.bump();
            let annotation = self.parse_expression()?;
            let value = if self.eat(T::Equal) { Some(self.parse_expression_list()?) } else { None };
            return Ok(Stmt { kind: StmtKind::AnnAssign { target, annotation, value }, span: self.span_from(start) });
        }
        if self.at(T::ColonEqual) {
            let span = self.span();
            return Err(self.unsupported(span, "the `:=` operator is", "assign on a line of its own"));
        }
        if let ExprKind::Error = first.kind {
            return Err(Stop);
        }
        Ok(Stmt { kind: StmtKind::Expr(first), span: self.span_from(start) })
    }

    /// Reports an expression that cannot be assigned to.
    fn check_target(&mut self, target: &Expr, allow_tuple: bool) -> PResult<()> {
        let what = match &target.kind {
            ExprKind::Name(_) | ExprKind::Subscript { .. } => return Ok(()),
            ExprKind::Tuple(items) if allow_tuple => {
                for item in items {
                    if let ExprKind::Tuple(_) = item.kind {
                        return Err(self.error(
                            Diagnostic::error("E0204", item.span, "nested tuple targets are not supported")
                                .with_help("unpack one level at a time"),
                        ));
                    }
                    self.check_target(item, false)?;
                }
                return Ok(());
            }
            ExprKind::Tuple(_) => "a tuple (augmented assignment works on one name or element)",
            ExprKind::Attribute { .. } => "an attribute (kern values have no settable attributes)",
            ExprKind::Call { .. } => "a function call",
            ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) | ExprKind::None => "a literal",
            ExprKind::Error => return Err(Stop),
            _ => "an expression",
        };
        let span = target.span;
        Err(self.error(Diagnostic::error("E0204", span, format!("cannot assign to {what}")).with_help(
            "assign to a name (`x = ...`), an array element (`a[i] = ...`) or a tuple of names (`a, b = ...`)",
        )))
    }

    /// if_statement := "if" expression ":" block ("elif" expression ":" block)* ["else" ":" block]
    fn parse_if_statement(&mut self) -> PResult<Stmt> {
        let start = self.bump().span.start;
        let cond = self.parse_expression()?;
        self.expect_colon("the `if` condition")?;
        let then = self.parse_block("`if ...:`", false)?;
        let orelse = self.parse_else_part()?;
        Ok(Stmt { kind: StmtKind::If { cond, then, orelse }, span: self.span_from(start) })
    }

    fn parse_else_part(&mut self) -> PResult<Block> {
        if self.at(T::Elif) {
            // An `elif` is an `if` nested in the `else` block, one level deeper
            // in the tree: it counts toward the nesting limit.
            return self.nested(|p| {
                let start = p.bump().span.start;
                let cond = p.parse_expression()?;
                p.expect_colon("the `elif` condition")?;
                let then = p.parse_block("`elif ...:`", false)?;
                let orelse = p.parse_else_part()?;
                Ok(vec![Stmt { kind: StmtKind::If { cond, then, orelse }, span: p.span_from(start) }])
            });
        }
        if self.eat(T::Else) {
            self.expect_colon("`else`")?;
            return self.parse_block("`else:`", false);
        }
        Ok(Vec::new())
    }

    fn reject_loop_else(&mut self) -> PResult<()> {
        if self.at(T::Else) {
            let span = self.span();
            return Err(self.unsupported(
                span,
                "`else` after a loop is",
                "set a flag before `break` and test it after the loop",
            ));
        }
        Ok(())
    }

    /// while_statement := "while" expression ":" block
    fn parse_while_statement(&mut self) -> PResult<Stmt> {
        let start = self.bump().span.start;
        let cond = self.parse_expression()?;
        self.expect_colon("the `while` condition")?;
        let body = self.parse_block("`while ...:`", false)?;
        self.reject_loop_else()?;
        Ok(Stmt { kind: StmtKind::While { cond, body }, span: self.span_from(start) })
    }

    /// for_statement := "for" NAME "in" expression ":" block
    fn parse_for_statement(&mut self) -> PResult<Stmt> {
        let start = self.bump().span.start;
        let token = self.expect(T::Name, "a loop variable name after `for`")?;
        let target = Ident { name: self.text(token.span).to_string(), span: token.span };
        if self.at(T::Comma) {
            let span = self.span();
            return Err(self.error(
                Diagnostic::error("E0204", span, "a `for` loop takes one loop variable")
                    .with_help("kern loops iterate over `range(...)`; unpack inside the body"),
            ));
        }
        self.expect(T::In, "`in` after the loop variable")?;
        let iter = self.parse_expression()?;
        self.expect_colon("the `for` header")?;
        let body = self.parse_block("`for ...:`", false)?;
        self.reject_loop_else()?;
        Ok(Stmt { kind: StmtKind::For { target, iter, body }, span: self.span_from(start) })
    }

    // ---- expressions ---------------------------------------------------

    /// expression_list := expression ("," expression)* [","]
    fn parse_expression_list(&mut self) -> PResult<Expr> {
        let start = self.span().start;
        let first = self.parse_expression()?;
        if !self.at(T::Comma) {
            return Ok(first);
        }
        let mut depth = self.last_depth;
        let mut items = vec![first];
        while self.eat(T::Comma) {
            if !self.starts_expression() {
                break;
            }
            if items.len() == MAX_TUPLE_ITEMS {
                let span = self.span();
                return Err(self.error(
                    Diagnostic::error("E0206", span, format!("too many tuple items (more than {MAX_TUPLE_ITEMS})"))
                        .with_help("use an array for many values"),
                ));
            }
            items.push(self.parse_expression()?);
            depth = depth.max(self.last_depth);
        }
        let span = self.span_from(start);
        self.node(ExprKind::Tuple(items), span, depth + 1)
    }

    fn starts_expression(&self) -> bool {
        !matches!(
            self.peek(),
            T::Newline
                | T::Eof
                | T::Dedent
                | T::Indent
                | T::Equal
                | T::RightParen
                | T::RightBracket
                | T::RightBrace
                | T::Colon
                | T::Semicolon
        ) && augmented_op(self.peek()).is_none()
    }

    /// expression := disjunction ["if" disjunction "else" expression]
    fn parse_expression(&mut self) -> PResult<Expr> {
        self.nested(|p| p.parse_expression_inner())
    }

    fn parse_expression_inner(&mut self) -> PResult<Expr> {
        if self.at(T::Lambda) {
            let span = self.span();
            return Err(self.unsupported(span, "`lambda` is", "define a function with `def`"));
        }
        if matches!(self.peek(), T::Yield | T::Await) {
            let (what, help) = unsupported_statement(self.peek()).expect("listed");
            let span = self.span();
            return Err(self.unsupported(span, what, help));
        }
        let start = self.span().start;
        let body = self.parse_disjunction()?;
        if self.at(T::ColonEqual) {
            let span = self.span();
            return Err(self.unsupported(span, "the `:=` operator is", "assign on a line of its own"));
        }
        if !self.at(T::If) {
            return Ok(body);
        }
        let mut depth = self.last_depth;
        self.bump();
        let cond = self.parse_disjunction()?;
        depth = depth.max(self.last_depth);
        self.expect(T::Else, "`else` in the conditional expression `a if c else b`")?;
        let orelse = self.parse_expression()?;
        depth = depth.max(self.last_depth);
        let span = self.span_from(start);
        self.node(
            ExprKind::IfExp { cond: Box::new(cond), body: Box::new(body), orelse: Box::new(orelse) },
            span,
            depth + 1,
        )
    }

    /// disjunction := conjunction ("or" conjunction)* ; conjunction := inversion ("and" inversion)*
    fn parse_disjunction(&mut self) -> PResult<Expr> {
        self.parse_bool_chain(T::Or)
    }

    fn parse_conjunction(&mut self) -> PResult<Expr> {
        self.parse_bool_chain(T::And)
    }

    fn parse_bool_chain(&mut self, keyword: T) -> PResult<Expr> {
        let operand = |p: &mut Self| if keyword == T::Or { p.parse_conjunction() } else { p.parse_inversion() };
        let start = self.span().start;
        let mut left = operand(self)?;
        let mut depth = self.last_depth;
        while self.eat(keyword) {
            let right = operand(self)?;
            depth = depth.max(self.last_depth) + 1;
            let op = if keyword == T::Or { BoolOp::Or } else { BoolOp::And };
            let span = self.span_from(start);
            left = self.node(ExprKind::BoolOp { op, left: Box::new(left), right: Box::new(right) }, span, depth)?;
        }
        self.last_depth = depth;
        Ok(left)
    }

    /// inversion := "not" inversion | comparison
    fn parse_inversion(&mut self) -> PResult<Expr> {
        if !self.at(T::Not) {
            return self.parse_comparison();
        }
        let start = self.bump().span.start;
        let operand = self.nested(|p| p.parse_inversion())?;
        let depth = self.last_depth + 1;
        let span = self.span_from(start);
        self.node(ExprKind::Unary { op: UnaryOp::Not, operand: Box::new(operand) }, span, depth)
    }

    /// comparison := bitwise_or (comparison_operator bitwise_or)*
    fn parse_comparison(&mut self) -> PResult<Expr> {
        let start = self.span().start;
        let first = self.parse_binary(0)?;
        let mut depth = self.last_depth;
        let mut rest = Vec::new();
        loop {
            let span = self.span();
            match self.peek() {
                T::Is => {
                    return Err(self.unsupported(span, "`is` comparisons are", "compare values with `==` or `!=`"))
                }
                T::In => {
                    return Err(self.unsupported(
                        span,
                        "the `in` operator is",
                        "write a loop that compares each element",
                    ))
                }
                T::Not if self.peek_at(1) == T::In => {
                    return Err(self.unsupported(
                        span,
                        "the `not in` operator is",
                        "write a loop that compares each element",
                    ))
                }
                _ => {}
            }
            let Some(op) = comparison_op(self.peek()) else { break };
            self.bump();
            let operand = self.parse_binary(0)?;
            depth = depth.max(self.last_depth);
            rest.push((op, operand));
        }
        if rest.is_empty() {
            self.last_depth = depth;
            return Ok(first);
        }
        let span = self.span_from(start);
        self.node(ExprKind::Compare { first: Box::new(first), rest }, span, depth + 1)
    }

    /// bitwise_or, bitwise_xor, bitwise_and, shift_expr, sum, term: the
    /// left-associative binary levels from `min_level` up (`binary_op`).
    fn parse_binary(&mut self, min_level: u8) -> PResult<Expr> {
        // Precedence climbing: one call per operator rather than one per
        // precedence level per operand. Operators of a level are left
        // associative: the right operand binds only tighter operators.
        let start = self.span().start;
        let mut left = self.parse_factor()?;
        let mut depth = self.last_depth;
        while let Some((op, level)) = binary_op(self.peek()).filter(|&(_, level)| level >= min_level) {
            self.bump();
            let right = self.parse_binary(level + 1)?;
            depth = depth.max(self.last_depth) + 1;
            let span = self.span_from(start);
            left = self.node(ExprKind::Binary { op, left: Box::new(left), right: Box::new(right) }, span, depth)?;
        }
        self.last_depth = depth;
        Ok(left)
    }

    /// factor := ("+" | "-" | "~") factor | power
    fn parse_factor(&mut self) -> PResult<Expr> {
        let op = match self.peek() {
            T::Plus => UnaryOp::Pos,
            T::Minus => UnaryOp::Neg,
            T::Tilde => UnaryOp::Invert,
            _ => return self.parse_power(),
        };
        let start = self.bump().span.start;
        let operand = self.nested(|p| p.parse_factor())?;
        let depth = self.last_depth + 1;
        let span = self.span_from(start);
        self.node(ExprKind::Unary { op, operand: Box::new(operand) }, span, depth)
    }

    /// power := primary ["**" factor]
    fn parse_power(&mut self) -> PResult<Expr> {
        let start = self.span().start;
        let base = self.parse_primary()?;
        if !self.eat(T::DoubleStar) {
            return Ok(base);
        }
        let base_depth = self.last_depth;
        // `**` is right-associative: each exponent nests one level deeper.
        let exponent = self.nested(|p| p.parse_factor())?;
        let depth = base_depth.max(self.last_depth) + 1;
        let span = self.span_from(start);
        self.node(ExprKind::Binary { op: BinOp::Pow, left: Box::new(base), right: Box::new(exponent) }, span, depth)
    }

    /// primary := atom (call | subscription | "." NAME)*
    fn parse_primary(&mut self) -> PResult<Expr> {
        let start = self.span().start;
        let mut expr = self.parse_atom()?;
        let mut depth = self.last_depth;
        loop {
            match self.peek() {
                T::LeftParen => {
                    self.bump();
                    let (args, keywords, args_depth) = self.parse_arguments()?;
                    self.expect(T::RightParen, "`)` to close the call")?;
                    depth = depth.max(args_depth) + 1;
                    let span = self.span_from(start);
                    expr = self.node(ExprKind::Call { func: Box::new(expr), args, keywords }, span, depth)?;
                }
                T::LeftBracket => {
                    self.bump();
                    let (items, items_depth) = self.parse_subscript_list()?;
                    self.expect(T::RightBracket, "`]` to close the subscript")?;
                    depth = depth.max(items_depth) + 1;
                    let span = self.span_from(start);
                    expr = self.node(ExprKind::Subscript { value: Box::new(expr), items }, span, depth)?;
                }
                T::Dot => {
                    self.bump();
                    let token = self.expect(T::Name, "an attribute name after `.`")?;
                    let attr = Ident { name: self.text(token.span).to_string(), span: token.span };
                    depth += 1;
                    let span = self.span_from(start);
                    expr = self.node(ExprKind::Attribute { value: Box::new(expr), attr }, span, depth)?;
                }
                _ => break,
            }
        }
        self.last_depth = depth;
        Ok(expr)
    }

    /// arguments := argument ("," argument)* [","] ; argument := NAME "=" expression | expression
    fn parse_arguments(&mut self) -> PResult<(Vec<Expr>, Vec<Keyword>, u32)> {
        let mut args = Vec::new();
        let mut keywords: Vec<Keyword> = Vec::new();
        let mut depth = 0;
        while !self.at(T::RightParen) {
            let span = self.span();
            if matches!(self.peek(), T::Star | T::DoubleStar) {
                return Err(self.unsupported(
                    span,
                    "`*` and `**` unpacking in calls is",
                    "pass the arguments one by one",
                ));
            }
            if self.at(T::Name) && self.peek_at(1) == T::Equal {
                let token = self.bump();
                self.bump();
                let value = self.parse_expression()?;
                depth = depth.max(self.last_depth);
                let name = Ident { name: self.text(token.span).to_string(), span: token.span };
                keywords.push(Keyword { name, value, span: self.span_from(span.start) });
            } else {
                if let Some(keyword) = keywords.first() {
                    let keyword_span = keyword.span;
                    return Err(self.error(
                        Diagnostic::error("E0201", span, "a positional argument cannot follow a keyword argument")
                            .with_label(keyword_span, "keyword argument here"),
                    ));
                }
                args.push(self.parse_expression()?);
                depth = depth.max(self.last_depth);
            }
            if self.at(T::For) {
                let span = self.span();
                return Err(self.unsupported(span, "generator expressions are", "write a loop"));
            }
            if !self.eat(T::Comma) {
                break;
            }
        }
        Ok((args, keywords, depth))
    }

    /// subscript_list := subscript ("," subscript)* [","]
    /// subscript := expression | [expression] ":" [expression] [":" [expression]]
    fn parse_subscript_list(&mut self) -> PResult<(Vec<SubscriptItem>, u32)> {
        let mut items = Vec::new();
        let mut depth = 0;
        loop {
            let start = self.span().start;
            let lower = if matches!(self.peek(), T::Colon) { None } else { Some(self.parse_expression()?) };
            if lower.is_some() {
                depth = depth.max(self.last_depth);
            }
            if self.eat(T::Colon) {
                let upper = if self.starts_slice_part() { Some(self.parse_expression()?) } else { None };
                if upper.is_some() {
                    depth = depth.max(self.last_depth);
                }
                let step =
                    if self.eat(T::Colon) && self.starts_slice_part() { Some(self.parse_expression()?) } else { None };
                if step.is_some() {
                    depth = depth.max(self.last_depth);
                }
                items.push(SubscriptItem::Slice { lower, upper, step, span: self.span_from(start) });
            } else if let Some(index) = lower {
                items.push(SubscriptItem::Index(index));
            }
            if !self.eat(T::Comma) || self.at(T::RightBracket) {
                break;
            }
        }
        Ok((items, depth + 1))
    }

    fn starts_slice_part(&self) -> bool {
        !matches!(self.peek(), T::Colon | T::Comma | T::RightBracket)
    }

    /// atom := NAME | INT | FLOAT | "True" | "False" | "None" | "(" [expression_list] ")"
    fn parse_atom(&mut self) -> PResult<Expr> {
        let token = self.token();
        let span = token.span;
        let kind = match token.kind {
            T::Name => ExprKind::Name(self.text(span).to_string()),
            T::Int(value) => ExprKind::Int(value),
            T::Float(value) => ExprKind::Float(value),
            T::True => ExprKind::Bool(true),
            T::False => ExprKind::Bool(false),
            T::None => ExprKind::None,
            T::LeftParen => return self.parse_parenthesized(),
            T::LeftBracket => {
                return Err(self.unsupported(
                    span,
                    "lists and list comprehensions are",
                    "create arrays with `np.empty`/`np.zeros` and fill them in a loop",
                ))
            }
            T::LeftBrace => {
                return Err(self.unsupported(
                    span,
                    "dicts and sets are",
                    "use arrays indexed by integers; create them with `np.zeros` and fill them in a loop",
                ))
            }
            T::Ellipsis => return Err(self.unsupported(span, "`...` (Ellipsis) is", "use `pass` for an empty body")),
            T::Star => return Err(self.unsupported(span, "starred expressions are", "unpack a tuple with `a, b = t`")),
            T::String => return Err(self.string_error()),
            kind if unsupported_statement(kind).is_some() => {
                let (what, help) = unsupported_statement(kind).expect("checked");
                return Err(self.unsupported(span, what, help));
            }
            _ => return Err(self.unexpected("an expression")),
        };
        self.bump();
        Ok(self.leaf(kind, span))
    }

    /// "(" [expression_list] ")": parentheses or a tuple.
    fn parse_parenthesized(&mut self) -> PResult<Expr> {
        crate::stack::guarded(|| self.parse_parenthesized_inner())
    }

    fn parse_parenthesized_inner(&mut self) -> PResult<Expr> {
        let start = self.bump().span.start;
        if self.eat(T::RightParen) {
            let span = self.span_from(start);
            return self.node(ExprKind::Tuple(Vec::new()), span, 1);
        }
        let inner = self.parse_expression_list()?;
        if self.at(T::For) {
            let span = self.span();
            return Err(self.unsupported(span, "generator expressions are", "write a loop"));
        }
        let depth = self.last_depth;
        // A one-element tuple `(a,)` comes back from parse_expression_list as
        // a Tuple only when a comma was present; plain parentheses keep the inner
        // expression (with the parentheses' span).
        self.expect(T::RightParen, "`)` to close `(`")?;
        let span = self.span_from(start);
        self.last_depth = depth;
        Ok(Expr { span: if matches!(inner.kind, ExprKind::Tuple(_)) { span } else { inner.span }, kind: inner.kind })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Parsed {
        parse(&SourceFile::new("test.kern", text))
    }

    /// A compact S-expression rendering of an expression.
    fn sexp(expr: &Expr) -> String {
        match &expr.kind {
            ExprKind::Int(v) => v.to_string(),
            ExprKind::Float(v) => format!("{v:?}"),
            ExprKind::Bool(v) => v.to_string(),
            ExprKind::None => "None".into(),
            ExprKind::Name(n) => n.clone(),
            ExprKind::Attribute { value, attr } => format!("(. {} {})", sexp(value), attr.name),
            ExprKind::Call { func, args, keywords } => {
                let mut parts: Vec<String> = args.iter().map(sexp).collect();
                parts.extend(keywords.iter().map(|k| format!("{}={}", k.name.name, sexp(&k.value))));
                format!("(call {} {})", sexp(func), parts.join(" "))
            }
            ExprKind::Subscript { value, items } => {
                let parts: Vec<String> = items
                    .iter()
                    .map(|item| match item {
                        SubscriptItem::Index(e) => sexp(e),
                        SubscriptItem::Slice { lower, upper, step, .. } => format!(
                            "{}:{}:{}",
                            lower.as_ref().map(sexp).unwrap_or_default(),
                            upper.as_ref().map(sexp).unwrap_or_default(),
                            step.as_ref().map(sexp).unwrap_or_default()
                        ),
                    })
                    .collect();
                format!("([] {} {})", sexp(value), parts.join(" "))
            }
            ExprKind::Unary { op, operand } => format!("({op:?} {})", sexp(operand)),
            ExprKind::Binary { op, left, right } => format!("({} {} {})", op.symbol(), sexp(left), sexp(right)),
            ExprKind::BoolOp { op, left, right } => format!("({op:?} {} {})", sexp(left), sexp(right)),
            ExprKind::Compare { first, rest } => {
                let parts: Vec<String> = rest.iter().map(|(op, e)| format!("{} {}", op.symbol(), sexp(e))).collect();
                format!("(cmp {} {})", sexp(first), parts.join(" "))
            }
            ExprKind::IfExp { cond, body, orelse } => format!("(if {} {} {})", sexp(cond), sexp(body), sexp(orelse)),
            ExprKind::Tuple(items) => format!("(tuple {})", items.iter().map(sexp).collect::<Vec<_>>().join(" ")),
            ExprKind::Error => "<error>".into(),
        }
    }

    fn expr_of(text: &str) -> String {
        let parsed = parse_text(&format!("def f():\n    return {text}\n"));
        assert!(parsed.diagnostics.is_empty(), "{text}: {:?}", parsed.diagnostics);
        let StmtKind::Return(Some(expr)) = &parsed.module.functions[0].body[0].kind else { panic!("not a return") };
        sexp(expr)
    }

    fn codes(text: &str) -> Vec<&'static str> {
        parse_text(text).diagnostics.iter().map(|d| d.code).collect()
    }

    #[test]
    fn precedence_follows_python() {
        assert_eq!(expr_of("1 + 2 * 3"), "(+ 1 (* 2 3))");
        assert_eq!(expr_of("-x ** 2"), "(Neg (** x 2))");
        assert_eq!(expr_of("2 ** -1"), "(** 2 (Neg 1))");
        assert_eq!(expr_of("a ** b ** c"), "(** a (** b c))");
        assert_eq!(expr_of("a - b - c"), "(- (- a b) c)");
        assert_eq!(expr_of("not a and b or c"), "(Or (And (Not a) b) c)");
        assert_eq!(expr_of("0 <= i < n"), "(cmp 0 <= i < n)");
        assert_eq!(expr_of("a | b ^ c & d << 1 + 2"), "(| a (^ b (& c (<< d (+ 1 2)))))");
        assert_eq!(expr_of("x if c else y"), "(if c x y)");
        assert_eq!(expr_of("a[i, j:k, ::2]"), "([] a i j:k: ::2)");
        assert_eq!(
            expr_of("np.zeros((n, m), dtype=np.float32)"),
            "(call (. np zeros) (tuple n m) dtype=(. np float32))"
        );
        assert_eq!(expr_of("a, b"), "(tuple a b)");
        assert_eq!(expr_of("(a,)"), "(tuple a)");
        assert_eq!(expr_of("(a)"), "a");
        assert_eq!(expr_of("a.shape[0]"), "([] (. a shape) 0)");
    }

    #[test]
    fn statements_decorators_imports_and_docstrings() {
        let text = "\"\"\"module doc\"\"\"\nimport math\nfrom numba import njit, prange\n\n@njit(parallel=True, cache=True)\ndef f(x: f64[:], n) -> f64:\n    \"\"\"doc\"\"\"\n    s = t = 0.0\n    a, b = 1, 2\n    s += x[0]\n    y: f64 = 1.0\n    if s: return 1\n    elif n: pass\n    else:\n        s = 2\n    for i in range(n):\n        continue\n    while s < 1: s += 1; break\n    return s\n";
        let parsed = parse_text(text);
        assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
        let function = &parsed.module.functions[0];
        assert_eq!(function.name.name, "f");
        assert_eq!(function.params.len(), 2);
        assert_eq!(function.body.len(), 8);
        assert!(matches!(&function.body[0].kind, StmtKind::Assign { targets, .. } if targets.len() == 2));
        assert!(
            matches!(&function.body[4].kind, StmtKind::If { orelse, .. } if matches!(orelse[0].kind, StmtKind::If { .. }))
        );
    }

    #[test]
    fn rejected_constructs_name_themselves() {
        for (text, code, word) in [
            ("class A:\n    pass\n", "E0202", "classes"),
            ("def f():\n    g = lambda x: x\n", "E0202", "lambda"),
            ("def f():\n    try:\n        pass\n    except:\n        pass\n", "E0202", "try"),
            ("def f():\n    with a:\n        pass\n", "E0202", "with"),
            ("def f():\n    global x\n", "E0202", "global"),
            ("def f():\n    x = [1, 2]\n", "E0202", "lists"),
            ("def f():\n    x = {1: 2}\n", "E0202", "dicts"),
            ("def f(x=1):\n    pass\n", "E0202", "default"),
            ("def f(*args):\n    pass\n", "E0202", "*args"),
            ("def f():\n    def g():\n        pass\n", "E0202", "nested"),
            ("def f():\n    if x is None:\n        pass\n", "E0202", "is"),
            ("def f():\n    x = \"s\"\n", "E0106", "string"),
            ("def f():\n    for i in range(3):\n        pass\n    else:\n        pass\n", "E0202", "else"),
            ("x = 1\n", "E0202", "top level"),
            ("def f():\n    f() = 1\n", "E0204", "function call"),
            ("def f()\n    pass\n", "E0201", "`:`"),
            ("def f():\npass\n", "E0205", "indented block"),
        ] {
            let parsed = parse_text(text);
            let found = parsed.diagnostics.iter().find(|d| d.code == code);
            let diagnostic = found.unwrap_or_else(|| panic!("{text:?}: expected {code}, got {:?}", parsed.diagnostics));
            assert!(
                diagnostic.message.contains(word),
                "{text:?}: message {:?} should mention {word}",
                diagnostic.message
            );
        }
    }

    #[test]
    fn recovery_reports_independent_errors() {
        let text = "def f():\n    x = (1 +\n    return 1\n\ndef g():\n    y = 2 +* 3\n    return y\n\ndef h():\n    return 3\n";
        let parsed = parse_text(text);
        assert!(parsed.diagnostics.len() >= 2, "{:?}", parsed.diagnostics);
        assert_eq!(parsed.module.functions.len(), 3);
    }

    #[test]
    fn depth_limits_give_clean_errors() {
        let chain = format!("def f():\n    return {}\n", vec!["1"; 200_000].join("+"));
        assert!(codes(&chain).contains(&"E0203"));
        let parens = format!("def f():\n    return {}1{}\n", "(".repeat(10_000), ")".repeat(10_000));
        assert!(codes(&parens).contains(&"E0203"));
        let mut blocks = String::from("def f():\n");
        for level in 1..10_000 {
            blocks.push_str(&" ".repeat(level * 4));
            blocks.push_str("if x:\n");
        }
        blocks.push_str(&" ".repeat(40_000));
        blocks.push_str("pass\n");
        assert!(codes(&blocks).contains(&"E0203"));
        let unary = format!("def f():\n    return {}1\n", "-".repeat(100_000));
        assert!(codes(&unary).contains(&"E0203"));
        let brackets = format!("def f():\n    return {}\n", "[".repeat(100_000));
        assert!(!codes(&brackets).is_empty());
        // Under the limits, a long flat chain is fine.
        let ok = format!("def f():\n    return {}\n", vec!["1"; 900].join("+"));
        assert!(codes(&ok).is_empty());
    }

    #[test]
    fn random_input_never_panics() {
        let pieces = [
            "def", " f", "(", ")", ":", "\n", "    ", "x", "=", "1", "+", "[", "]", "if", "else", "for", "in", "range",
            ",", "**", "\t", "\"", "#", "@", "return", "0x", "1e", ".", "(", "lambda", "\\\n", "\r\n", "é", "\0", "$",
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let length = (next() % 60) as usize;
            let text: String = (0..length).map(|_| pieces[(next() % pieces.len() as u64) as usize]).collect();
            let _ = parse_text(&text);
            let bytes: Vec<u8> = (0..length).map(|_| next() as u8).collect();
            let _ = parse_text(&String::from_utf8_lossy(&bytes));
        }
    }
}
