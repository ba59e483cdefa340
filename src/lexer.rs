//! The lexer: source text to tokens, with Python's layout rules.
//!
//! Raw tokens come from a [`logos`] state machine ([`RawToken`]); a second
//! pass ([`Layout`]) turns line breaks and leading whitespace into `Newline`,
//! `Indent` and `Dedent` tokens the way CPython's tokenizer does: line breaks
//! inside brackets and after a `\` are ignored, blank and comment-only lines
//! produce nothing, and the token stream always ends with a `Newline` (when
//! the last line had tokens), `Dedent`s back to column 0 and `Eof`.
//!
//! The lexer also keeps brackets balanced for the parser: a closing bracket
//! that matches nothing is reported and dropped, and brackets left open are
//! reported once and closed with zero-width tokens (at the end of the file, or
//! before a line that starts with a statement keyword such as `def` or
//! `return`, which cannot continue an expression). Every character it cannot
//! read becomes one `Invalid` token after a diagnostic, so the parser can stay
//! quiet about it.
//!
//! The lexer runs in time linear in the input, never panics and never
//! recurses. It knows nothing about the grammar beyond brackets and layout.

use crate::diag::Diagnostic;
use crate::span::{SourceFile, Span};
use logos::Logos;

/// One token: its kind and the bytes it covers. Names carry no text; the
/// parser reads it from the source through the span.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

/// The kinds of token. Keywords of Python that kern does not support are
/// tokens too, so the parser can name them in its messages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum TokenKind {
    // Layout.
    /// The end of a logical line.
    Newline,
    /// The first line of a more indented block.
    Indent,
    /// The end of an indented block (zero width).
    Dedent,
    Eof,
    /// Characters or an unterminated string the lexer already reported.
    Invalid,

    // Literals and names.
    Name,
    Int(u64),
    Float(f64),
    /// A string literal of any kind (only docstrings and decorator arguments
    /// are allowed; the parser reports the others).
    String,

    // Keywords of the kern subset.
    Def,
    Return,
    If,
    Elif,
    Else,
    While,
    For,
    In,
    Break,
    Continue,
    Pass,
    And,
    Or,
    Not,
    True,
    False,
    None,
    Import,
    From,
    As,

    // Python keywords outside the subset, lexed so they can be rejected by name.
    Class,
    Lambda,
    Try,
    Except,
    Finally,
    With,
    Raise,
    Global,
    Nonlocal,
    Yield,
    Async,
    Await,
    Del,
    Assert,
    Is,

    // Operators.
    Plus,
    Minus,
    Star,
    Slash,
    DoubleSlash,
    Percent,
    DoubleStar,
    At,
    Amper,
    Pipe,
    Caret,
    Tilde,
    LeftShift,
    RightShift,
    Less,
    LessEqual,
    Greater,
    GreaterEqual,
    EqualEqual,
    NotEqual,

    // Assignment.
    Equal,
    PlusEqual,
    MinusEqual,
    StarEqual,
    SlashEqual,
    DoubleSlashEqual,
    PercentEqual,
    DoubleStarEqual,
    AmperEqual,
    PipeEqual,
    CaretEqual,
    LeftShiftEqual,
    RightShiftEqual,
    AtEqual,
    /// `:=`, the walrus operator (rejected by the parser).
    ColonEqual,

    // Punctuation.
    LeftParen,
    RightParen,
    LeftBracket,
    RightBracket,
    LeftBrace,
    RightBrace,
    Comma,
    Colon,
    Dot,
    Semicolon,
    Arrow,
    /// `...` (rejected by the parser).
    Ellipsis,
}

impl TokenKind {
    /// How messages name a token: "`def`", "a name", "the end of the line".
    pub fn describe(self) -> &'static str {
        use TokenKind::*;
        match self {
            Newline => "the end of the line",
            Indent => "an indented line",
            Dedent => "the end of the indented block",
            Eof => "the end of the file",
            Invalid => "an invalid character",
            Name => "a name",
            Int(_) => "an integer literal",
            Float(_) => "a float literal",
            String => "a string literal",
            _ => self.symbol(),
        }
    }

    /// The source text of a fixed token, in backticks (empty for tokens
    /// whose text varies).
    pub fn symbol(self) -> &'static str {
        use TokenKind::*;
        match self {
            Newline | Indent | Dedent | Eof | Invalid | Name | Int(_) | Float(_) | String => "",
            Def => "`def`",
            Return => "`return`",
            If => "`if`",
            Elif => "`elif`",
            Else => "`else`",
            While => "`while`",
            For => "`for`",
            In => "`in`",
            Break => "`break`",
            Continue => "`continue`",
            Pass => "`pass`",
            And => "`and`",
            Or => "`or`",
            Not => "`not`",
            True => "`True`",
            False => "`False`",
            None => "`None`",
            Import => "`import`",
            From => "`from`",
            As => "`as`",
            Class => "`class`",
            Lambda => "`lambda`",
            Try => "`try`",
            Except => "`except`",
            Finally => "`finally`",
            With => "`with`",
            Raise => "`raise`",
            Global => "`global`",
            Nonlocal => "`nonlocal`",
            Yield => "`yield`",
            Async => "`async`",
            Await => "`await`",
            Del => "`del`",
            Assert => "`assert`",
            Is => "`is`",
            Plus => "`+`",
            Minus => "`-`",
            Star => "`*`",
            Slash => "`/`",
            DoubleSlash => "`//`",
            Percent => "`%`",
            DoubleStar => "`**`",
            At => "`@`",
            Amper => "`&`",
            Pipe => "`|`",
            Caret => "`^`",
            Tilde => "`~`",
            LeftShift => "`<<`",
            RightShift => "`>>`",
            Less => "`<`",
            LessEqual => "`<=`",
            Greater => "`>`",
            GreaterEqual => "`>=`",
            EqualEqual => "`==`",
            NotEqual => "`!=`",
            Equal => "`=`",
            PlusEqual => "`+=`",
            MinusEqual => "`-=`",
            StarEqual => "`*=`",
            SlashEqual => "`/=`",
            DoubleSlashEqual => "`//=`",
            PercentEqual => "`%=`",
            DoubleStarEqual => "`**=`",
            AmperEqual => "`&=`",
            PipeEqual => "`|=`",
            CaretEqual => "`^=`",
            LeftShiftEqual => "`<<=`",
            RightShiftEqual => "`>>=`",
            AtEqual => "`@=`",
            ColonEqual => "`:=`",
            LeftParen => "`(`",
            RightParen => "`)`",
            LeftBracket => "`[`",
            RightBracket => "`]`",
            LeftBrace => "`{`",
            RightBrace => "`}`",
            Comma => "`,`",
            Colon => "`:`",
            Dot => "`.`",
            Semicolon => "`;`",
            Arrow => "`->`",
            Ellipsis => "`...`",
        }
    }

    /// The closing bracket for an opening one.
    fn closer(self) -> Option<TokenKind> {
        match self {
            TokenKind::LeftParen => Some(TokenKind::RightParen),
            TokenKind::LeftBracket => Some(TokenKind::RightBracket),
            TokenKind::LeftBrace => Some(TokenKind::RightBrace),
            _ => Option::None,
        }
    }

    fn is_closing_bracket(self) -> bool {
        matches!(self, TokenKind::RightParen | TokenKind::RightBracket | TokenKind::RightBrace)
    }

    /// Keywords that can only start a statement: a line starting with one of
    /// them cannot be the continuation of an expression in brackets.
    fn starts_statement_only(self) -> bool {
        use TokenKind::*;
        matches!(
            self,
            Def | Class
                | Return
                | While
                | Elif
                | Pass
                | Break
                | Continue
                | Import
                | Try
                | Except
                | Finally
                | With
                | Raise
                | Global
                | Nonlocal
                | Del
                | Assert
        )
    }
}

/// The tokens of a file and the lexical errors found on the way.
#[derive(Debug)]
pub struct Lexed {
    pub tokens: Vec<Token>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Splits a file into tokens. Never fails: problems become diagnostics and
/// the token stream is still well formed (balanced brackets, balanced
/// `Indent`/`Dedent`, a final `Eof`).
pub fn lex(file: &SourceFile) -> Lexed {
    let text = file.text();
    let start = if text.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
    let mut layout = Layout::new(text);
    let mut raw_lexer = RawToken::lexer(&text[start..]);
    while let Some(raw) = raw_lexer.next() {
        let range = raw_lexer.span();
        let span = Span::new(range.start + start, range.end + start);
        layout.push_raw(raw, span);
    }
    layout.finish()
}

/// What a string-literal callback found: the closing quote, or the end of
/// the line (or file) first.
#[derive(Clone, Copy, Debug, PartialEq)]
enum StringEnd {
    Closed,
    Unterminated,
}

/// The raw tokens, before layout. Spaces, tabs, form feeds and comments are
/// skipped here; indentation is measured from the source text later.
#[derive(Logos, Clone, Copy, Debug, PartialEq)]
#[logos(skip r"[ \t\x0c]+")]
enum RawToken {
    #[token("def", |_| TokenKind::Def)]
    #[token("return", |_| TokenKind::Return)]
    #[token("if", |_| TokenKind::If)]
    #[token("elif", |_| TokenKind::Elif)]
    #[token("else", |_| TokenKind::Else)]
    #[token("while", |_| TokenKind::While)]
    #[token("for", |_| TokenKind::For)]
    #[token("in", |_| TokenKind::In)]
    #[token("break", |_| TokenKind::Break)]
    #[token("continue", |_| TokenKind::Continue)]
    #[token("pass", |_| TokenKind::Pass)]
    #[token("and", |_| TokenKind::And)]
    #[token("or", |_| TokenKind::Or)]
    #[token("not", |_| TokenKind::Not)]
    #[token("True", |_| TokenKind::True)]
    #[token("False", |_| TokenKind::False)]
    #[token("None", |_| TokenKind::None)]
    #[token("import", |_| TokenKind::Import)]
    #[token("from", |_| TokenKind::From)]
    #[token("as", |_| TokenKind::As)]
    #[token("class", |_| TokenKind::Class)]
    #[token("lambda", |_| TokenKind::Lambda)]
    #[token("try", |_| TokenKind::Try)]
    #[token("except", |_| TokenKind::Except)]
    #[token("finally", |_| TokenKind::Finally)]
    #[token("with", |_| TokenKind::With)]
    #[token("raise", |_| TokenKind::Raise)]
    #[token("global", |_| TokenKind::Global)]
    #[token("nonlocal", |_| TokenKind::Nonlocal)]
    #[token("yield", |_| TokenKind::Yield)]
    #[token("async", |_| TokenKind::Async)]
    #[token("await", |_| TokenKind::Await)]
    #[token("del", |_| TokenKind::Del)]
    #[token("assert", |_| TokenKind::Assert)]
    #[token("is", |_| TokenKind::Is)]
    #[token("+", |_| TokenKind::Plus)]
    #[token("-", |_| TokenKind::Minus)]
    #[token("*", |_| TokenKind::Star)]
    #[token("/", |_| TokenKind::Slash)]
    #[token("//", |_| TokenKind::DoubleSlash)]
    #[token("%", |_| TokenKind::Percent)]
    #[token("**", |_| TokenKind::DoubleStar)]
    #[token("@", |_| TokenKind::At)]
    #[token("&", |_| TokenKind::Amper)]
    #[token("|", |_| TokenKind::Pipe)]
    #[token("^", |_| TokenKind::Caret)]
    #[token("~", |_| TokenKind::Tilde)]
    #[token("<<", |_| TokenKind::LeftShift)]
    #[token(">>", |_| TokenKind::RightShift)]
    #[token("<", |_| TokenKind::Less)]
    #[token("<=", |_| TokenKind::LessEqual)]
    #[token(">", |_| TokenKind::Greater)]
    #[token(">=", |_| TokenKind::GreaterEqual)]
    #[token("==", |_| TokenKind::EqualEqual)]
    #[token("!=", |_| TokenKind::NotEqual)]
    #[token("=", |_| TokenKind::Equal)]
    #[token("+=", |_| TokenKind::PlusEqual)]
    #[token("-=", |_| TokenKind::MinusEqual)]
    #[token("*=", |_| TokenKind::StarEqual)]
    #[token("/=", |_| TokenKind::SlashEqual)]
    #[token("//=", |_| TokenKind::DoubleSlashEqual)]
    #[token("%=", |_| TokenKind::PercentEqual)]
    #[token("**=", |_| TokenKind::DoubleStarEqual)]
    #[token("&=", |_| TokenKind::AmperEqual)]
    #[token("|=", |_| TokenKind::PipeEqual)]
    #[token("^=", |_| TokenKind::CaretEqual)]
    #[token("<<=", |_| TokenKind::LeftShiftEqual)]
    #[token(">>=", |_| TokenKind::RightShiftEqual)]
    #[token("@=", |_| TokenKind::AtEqual)]
    #[token(":=", |_| TokenKind::ColonEqual)]
    #[token("(", |_| TokenKind::LeftParen)]
    #[token(")", |_| TokenKind::RightParen)]
    #[token("[", |_| TokenKind::LeftBracket)]
    #[token("]", |_| TokenKind::RightBracket)]
    #[token("{", |_| TokenKind::LeftBrace)]
    #[token("}", |_| TokenKind::RightBrace)]
    #[token(",", |_| TokenKind::Comma)]
    #[token(":", |_| TokenKind::Colon)]
    #[token(".", |_| TokenKind::Dot)]
    #[token(";", |_| TokenKind::Semicolon)]
    #[token("->", |_| TokenKind::Arrow)]
    #[token("...", |_| TokenKind::Ellipsis)]
    Fixed(TokenKind),

    /// A physical line break: `\n`, `\r\n` or a lone `\r`.
    #[regex(r"\r\n|\r|\n")]
    LineBreak,

    /// A `\` at the end of a line joins it with the next one.
    #[regex(r"\\(\r\n|\r|\n)", logos::skip)]
    Continuation,

    #[regex(r"#[^\r\n]*", logos::skip, allow_greedy = true)]
    Comment,

    /// An identifier. Any non-ASCII character is taken in here and checked
    /// afterwards, so a keyword followed by `é` stays one word and a stray
    /// symbol like `×` gets a precise message.
    #[regex("[A-Za-z_\u{80}-\u{10FFFF}][A-Za-z0-9_\u{80}-\u{10FFFF}]*")]
    Word,

    /// A number: the callback takes every character that could belong to it,
    /// and [`parse_number`] checks the result.
    #[regex("[0-9]", scan_number)]
    #[regex(r"\.[0-9]", scan_number)]
    Number,

    /// The opening quote (with any prefix) of a string literal; the callback
    /// scans to its end.
    #[regex(r#"[rRbBfFuUtT]{0,2}["']"#, scan_string)]
    Str(StringEnd),
}

/// Extends a number token over its remaining characters: letters, digits
/// and `_` (so `1abc` is one bad literal), one `.` in a decimal literal, and
/// a sign right after a decimal exponent's `e`.
fn scan_number(lexer: &mut logos::Lexer<RawToken>) {
    let matched = lexer.slice().as_bytes();
    let rest = lexer.remainder().as_bytes();
    let prefixed = matched == b"0" && matches!(rest.first(), Some(b'x' | b'X' | b'o' | b'O' | b'b' | b'B'));
    let mut seen_dot = matched[0] == b'.';
    let mut seen_exponent = false;
    let mut length = 0;
    while let Some(&byte) = rest.get(length) {
        if byte.is_ascii_alphanumeric() || byte == b'_' {
            length += 1;
            if !prefixed && (byte == b'e' || byte == b'E') && !seen_exponent {
                seen_exponent = true;
                let signed = matches!(rest.get(length), Some(b'+' | b'-'));
                if signed && rest.get(length + 1).is_some_and(u8::is_ascii_digit) {
                    length += 1;
                }
            }
        } else if byte == b'.' && !prefixed && !seen_dot && !seen_exponent {
            seen_dot = true;
            length += 1;
        } else {
            break;
        }
    }
    lexer.bump(length);
}

/// Extends a string token to its closing quote (three quotes for a
/// triple-quoted string). A one-line string stops before an unescaped line
/// break; a triple-quoted one at the end of the file.
fn scan_string(lexer: &mut logos::Lexer<RawToken>) -> StringEnd {
    let quote = *lexer.slice().as_bytes().last().unwrap_or(&b'"');
    let rest = lexer.remainder().as_bytes();
    let triple = rest.len() >= 2 && rest[0] == quote && rest[1] == quote;
    let mut position = if triple { 2 } else { 0 };
    let (length, end) = loop {
        match rest.get(position) {
            Option::None => break (rest.len(), StringEnd::Unterminated),
            Some(b'\\') => {
                // An escaped character never ends the string, even in a raw
                // string; `\` + CRLF counts as one escaped line break.
                position += if rest.get(position + 1..position + 3) == Some(b"\r\n") { 3 } else { 2 };
            }
            Some(b'\n' | b'\r') if !triple => break (position, StringEnd::Unterminated),
            Some(&byte) if byte == quote => {
                if !triple {
                    break (position + 1, StringEnd::Closed);
                }
                if rest.get(position + 1) == Some(&quote) && rest.get(position + 2) == Some(&quote) {
                    break (position + 3, StringEnd::Closed);
                }
                position += 1;
            }
            Some(_) => position += 1,
        }
    };
    // An escape at the very end can point one past the text.
    lexer.bump(length.min(rest.len()));
    end
}

/// The second pass: layout tokens, bracket balance and conversion of raw
/// tokens, with their diagnostics.
struct Layout<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    diagnostics: Vec<Diagnostic>,
    /// The columns of the enclosing indented blocks; starts as `[0]`.
    indents: Vec<u32>,
    /// The open brackets, innermost last.
    brackets: Vec<Token>,
    /// The current logical line has produced a token.
    line_has_tokens: bool,
    /// No token yet on the current physical line.
    at_physical_line_start: bool,
    /// A run of unreadable characters not yet reported (reported as one).
    pending_invalid: Option<Span>,
    reported_tab: bool,
}

impl<'a> Layout<'a> {
    fn new(text: &'a str) -> Layout<'a> {
        Layout {
            text,
            tokens: Vec::with_capacity(text.len() / 4 + 2),
            diagnostics: Vec::new(),
            indents: vec![0],
            brackets: Vec::new(),
            line_has_tokens: false,
            at_physical_line_start: true,
            pending_invalid: Option::None,
            reported_tab: false,
        }
    }

    fn push_raw(&mut self, raw: Result<RawToken, ()>, span: Span) {
        let raw = match raw {
            Ok(raw) => raw,
            Err(()) => {
                self.note_invalid(span);
                return;
            }
        };
        match raw {
            RawToken::LineBreak => {
                self.flush_invalid();
                self.at_physical_line_start = true;
                if self.brackets.is_empty() && self.line_has_tokens {
                    self.tokens.push(Token { kind: TokenKind::Newline, span });
                    self.line_has_tokens = false;
                }
            }
            RawToken::Fixed(kind) => self.push_token(kind, span),
            RawToken::Word => self.push_word(span),
            RawToken::Number => {
                let text = &self.text[span.range()];
                let kind = match parse_number(text) {
                    Ok(kind) => kind,
                    Err(problem) => {
                        let mut diagnostic = Diagnostic::error("E0105", span, problem.message);
                        if let Some(help) = problem.help {
                            diagnostic = diagnostic.with_help(help);
                        }
                        self.diagnostics.push(diagnostic);
                        TokenKind::Int(0)
                    }
                };
                self.push_token(kind, span);
            }
            RawToken::Str(StringEnd::Closed) => self.push_token(TokenKind::String, span),
            RawToken::Str(StringEnd::Unterminated) => {
                let diagnostic = Diagnostic::error("E0106", span, "unterminated string literal")
                    .with_span_label("this string has no closing quote")
                    .with_help("string literals are not supported in kernels anyway; remove it");
                self.diagnostics.push(diagnostic);
                self.push_token(TokenKind::Invalid, span);
            }
            // Skipped by logos; listed for completeness.
            RawToken::Continuation | RawToken::Comment => {}
        }
    }

    /// Splits a word into names and unreadable characters (a non-ASCII
    /// character that is not a letter or digit, such as `×` or U+00A0).
    fn push_word(&mut self, span: Span) {
        let word = &self.text[span.range()];
        if word.is_ascii() {
            self.push_token(TokenKind::Name, span);
            return;
        }
        let base = span.start as usize;
        let mut name_start: Option<usize> = Option::None;
        for (offset, character) in word.char_indices() {
            let in_name = match name_start {
                Some(_) => character == '_' || character.is_alphanumeric(),
                Option::None => character == '_' || character.is_alphabetic(),
            };
            if in_name {
                name_start.get_or_insert(offset);
                continue;
            }
            if let Some(name_offset) = name_start.take() {
                self.push_token(TokenKind::Name, Span::new(base + name_offset, base + offset));
            }
            let character_span = Span::new(base + offset, base + offset + character.len_utf8());
            self.note_invalid(character_span);
        }
        if let Some(name_offset) = name_start {
            self.push_token(TokenKind::Name, Span::new(base + name_offset, span.end as usize));
        }
    }

    /// Records an unreadable character; adjacent ones are reported together.
    fn note_invalid(&mut self, span: Span) {
        match &mut self.pending_invalid {
            Some(pending) if pending.end == span.start => pending.end = span.end,
            _ => {
                self.flush_invalid();
                self.pending_invalid = Some(span);
            }
        }
    }

    fn flush_invalid(&mut self) {
        let Some(span) = self.pending_invalid.take() else { return };
        let run = &self.text[span.range()];
        let first = run.chars().next().unwrap_or('\u{fffd}');
        let mut diagnostic = Diagnostic::error("E0102", span, format!("unexpected character {}", describe_char(first)))
            .with_span_label("not part of any kern token");
        if let Some(help) = invalid_char_help(first) {
            diagnostic = diagnostic.with_help(help);
        }
        self.diagnostics.push(diagnostic);
        self.push_token(TokenKind::Invalid, span);
    }

    /// Emits a token, handling the start of a logical line (indentation)
    /// and bracket balance first.
    fn push_token(&mut self, kind: TokenKind, span: Span) {
        if kind != TokenKind::Invalid {
            self.flush_invalid();
        }
        let first_on_physical_line = std::mem::replace(&mut self.at_physical_line_start, false);
        if !self.brackets.is_empty() && first_on_physical_line && kind.starts_statement_only() {
            // `x = f(a` followed by `return x`: the bracket was never closed.
            self.close_open_brackets(span);
            self.end_logical_line(span);
        }
        if !self.line_has_tokens {
            self.start_logical_line(span);
        }
        if kind.closer().is_some() {
            self.brackets.push(Token { kind, span });
        } else if kind.is_closing_bracket() && !self.close_bracket(kind, span) {
            return;
        }
        self.tokens.push(Token { kind, span });
    }

    /// Measures the indentation of the line whose first token is at `span`
    /// and emits `Indent` or `Dedent`s.
    fn start_logical_line(&mut self, span: Span) {
        self.line_has_tokens = true;
        let token_start = span.start as usize;
        let bytes = self.text.as_bytes();
        let mut line_start = token_start;
        while line_start > 0 && matches!(bytes[line_start - 1], b' ' | b'\t' | b'\x0c') {
            line_start -= 1;
        }
        let mut column: u32 = 0;
        let mut tab_offset = Option::None;
        for (offset, &byte) in bytes[line_start..token_start].iter().enumerate() {
            match byte {
                b'\t' => {
                    tab_offset.get_or_insert(line_start + offset);
                    column = (column / 8 + 1).saturating_mul(8);
                }
                b'\x0c' => column = 0,
                _ => column = column.saturating_add(1),
            }
        }
        if let Some(offset) = tab_offset {
            if !self.reported_tab {
                self.reported_tab = true;
                self.diagnostics.push(
                    Diagnostic::error("E0103", Span::new(offset, offset + 1), "tab in indentation")
                        .with_span_label("this is a tab")
                        .with_help("indent with spaces (kern, like PEP 8, uses 4 spaces)"),
                );
            }
        }
        let indent_span = Span::new(line_start, token_start);
        let current = *self.indents.last().unwrap_or(&0);
        if column > current {
            self.indents.push(column);
            self.tokens.push(Token { kind: TokenKind::Indent, span: indent_span });
            return;
        }
        if column == current {
            return;
        }
        // A dedent: it must land on an enclosing level. If it does not, say
        // so and continue at the nearest level (the deeper one on a tie).
        if !self.indents.contains(&column) {
            let nearest = self
                .indents
                .iter()
                .copied()
                .min_by_key(|level| (level.abs_diff(column), u32::MAX - level))
                .unwrap_or(0);
            let enclosing: Vec<String> = self.indents.iter().map(u32::to_string).collect();
            let first_char = self.text[token_start..].chars().next().map_or(0, char::len_utf8);
            self.diagnostics.push(
                Diagnostic::error(
                    "E0104",
                    Span::new(token_start, token_start + first_char),
                    format!("this line is indented to column {column}, which matches no enclosing block"),
                )
                .with_span_label("inconsistent dedent")
                .with_help(format!("indent it like one of the enclosing blocks (columns {})", enclosing.join(", "))),
            );
            column = nearest;
        }
        let dedent_span = Span::new(token_start, token_start);
        while self.indents.last().is_some_and(|&level| level > column) {
            self.indents.pop();
            self.tokens.push(Token { kind: TokenKind::Dedent, span: dedent_span });
        }
    }

    /// Pops the bracket a closing token matches. Returns false when the
    /// closing token must be dropped (it matches nothing).
    fn close_bracket(&mut self, kind: TokenKind, span: Span) -> bool {
        let Some(top) = self.brackets.last().copied() else {
            self.diagnostics.push(
                Diagnostic::error("E0107", span, format!("unmatched {}", kind.symbol()))
                    .with_span_label("no bracket is open here")
                    .with_help("remove it, or add the opening bracket it closes"),
            );
            return false;
        };
        if top.kind.closer() == Some(kind) {
            self.brackets.pop();
            return true;
        }
        let expected = top.kind.closer().unwrap_or(TokenKind::RightParen);
        if let Some(depth) = self.brackets.iter().rposition(|open| open.kind.closer() == Some(kind)) {
            // `[f(a]`: the inner brackets were never closed.
            self.diagnostics.push(
                Diagnostic::error(
                    "E0107",
                    top.span,
                    format!("missing {} to close {}", expected.symbol(), top.kind.symbol()),
                )
                .with_span_label("this bracket is never closed")
                .with_label(span, format!("{} closes an outer bracket here", kind.symbol())),
            );
            while self.brackets.len() > depth + 1 {
                let open = self.brackets.pop().unwrap_or(top);
                let closer = open.kind.closer().unwrap_or(TokenKind::RightParen);
                self.tokens.push(Token { kind: closer, span: Span::new(span.start as usize, span.start as usize) });
            }
            self.brackets.pop();
            return true;
        }
        // `(a]`: take it as the bracket that was meant.
        self.diagnostics.push(
            Diagnostic::error("E0107", span, format!("{} does not match {}", kind.symbol(), top.kind.symbol()))
                .with_span_label(format!("expected {}", expected.symbol()))
                .with_label(top.span, "opened here"),
        );
        self.brackets.pop();
        self.tokens.push(Token { kind: expected, span });
        false
    }

    /// Reports the innermost open bracket and closes all of them with
    /// zero-width tokens placed after the last real token.
    fn close_open_brackets(&mut self, next: Span) {
        let Some(innermost) = self.brackets.last().copied() else { return };
        let closer = innermost.kind.closer().unwrap_or(TokenKind::RightParen);
        let mut diagnostic =
            Diagnostic::error("E0107", innermost.span, format!("{} is never closed", innermost.kind.symbol()))
                .with_span_label("opened here")
                .with_help(format!("add {} at the end of the expression", closer.symbol()));
        if next.start as usize != self.text.len() {
            diagnostic = diagnostic.with_label(next, "the next statement starts here");
        }
        self.diagnostics.push(diagnostic);
        let at = self.tokens.last().map_or(next.start, |token| token.span.end) as usize;
        while let Some(open) = self.brackets.pop() {
            let closer = open.kind.closer().unwrap_or(TokenKind::RightParen);
            self.tokens.push(Token { kind: closer, span: Span::new(at, at) });
        }
    }

    /// Ends the current logical line early (after closing brackets).
    fn end_logical_line(&mut self, next: Span) {
        if self.line_has_tokens {
            let at = self.tokens.last().map_or(next.start, |token| token.span.end) as usize;
            self.tokens.push(Token { kind: TokenKind::Newline, span: Span::new(at, at) });
            self.line_has_tokens = false;
        }
    }

    fn finish(mut self) -> Lexed {
        self.flush_invalid();
        let end = self.text.len();
        let end_span = Span::new(end, end);
        self.close_open_brackets(end_span);
        self.end_logical_line(end_span);
        while self.indents.len() > 1 {
            self.indents.pop();
            self.tokens.push(Token { kind: TokenKind::Dedent, span: end_span });
        }
        self.tokens.push(Token { kind: TokenKind::Eof, span: end_span });
        Lexed { tokens: self.tokens, diagnostics: self.diagnostics }
    }
}

/// A problem with a number literal.
struct NumberProblem {
    message: String,
    help: Option<&'static str>,
}

impl NumberProblem {
    fn new(message: String) -> NumberProblem {
        NumberProblem { message, help: Option::None }
    }

    fn with_help(mut self, help: &'static str) -> NumberProblem {
        self.help = Some(help);
        self
    }
}

/// Reads a number literal as scanned by [`scan_number`]: an integer
/// (decimal, `0x`, `0o`, `0b`, with `_` between digits) that fits in a
/// `u64`, or a float.
fn parse_number(text: &str) -> Result<TokenKind, NumberProblem> {
    let bytes = text.as_bytes();
    let radix = match bytes {
        [b'0', b'x' | b'X', ..] => Some((16, "hexadecimal")),
        [b'0', b'o' | b'O', ..] => Some((8, "octal")),
        [b'0', b'b' | b'B', ..] => Some((2, "binary")),
        _ => Option::None,
    };
    if let Some((radix, radix_name)) = radix {
        let digits = &text[2..];
        // Python allows one `_` right after the prefix: `0x_ff`.
        let digits = digits.strip_prefix('_').unwrap_or(digits);
        if let Some(bad) = digits.chars().find(|c| *c != '_' && !c.is_digit(radix)) {
            return Err(NumberProblem::new(format!("invalid digit `{bad}` in {radix_name} literal `{text}`")));
        }
        return parse_digits(text, digits, radix).map(TokenKind::Int);
    }
    if text.ends_with(['j', 'J']) && text.len() > 1 {
        return Err(NumberProblem::new(format!("complex literal `{text}` is not supported"))
            .with_help("kernels compute with real numbers only"));
    }
    if let Some(bad) = text.chars().find(|c| !(c.is_ascii_digit() || matches!(c, '_' | '.' | 'e' | 'E' | '+' | '-'))) {
        return Err(NumberProblem::new(format!("invalid character `{bad}` in number literal `{text}`"))
            .with_help("names cannot start with a digit"));
    }
    if text.contains(['.', 'e', 'E']) {
        return parse_float(text).map(TokenKind::Float);
    }
    if bytes.len() > 1 && bytes[0] == b'0' && text.bytes().any(|b| b.is_ascii_digit() && b != b'0') {
        return Err(NumberProblem::new(format!("leading zeros are not allowed in decimal literal `{text}`"))
            .with_help("write `0o` for an octal literal, or remove the zeros"));
    }
    parse_digits(text, text, 10).map(TokenKind::Int)
}

/// The value of a run of digits with single `_` separators between them.
fn parse_digits(text: &str, digits: &str, radix: u32) -> Result<u64, NumberProblem> {
    check_underscores(text, digits)?;
    let mut value: u64 = 0;
    for digit in digits.chars().filter_map(|c| c.to_digit(radix)) {
        value = value.checked_mul(u64::from(radix)).and_then(|v| v.checked_add(u64::from(digit))).ok_or_else(|| {
            NumberProblem::new(format!("integer literal too large: `{text}`"))
                .with_help("integer literals must fit in 64 bits (at most 18446744073709551615)")
        })?;
    }
    Ok(value)
}

/// Checks that `digits` is digits with single `_` between them (and not
/// empty).
fn check_underscores(text: &str, digits: &str) -> Result<(), NumberProblem> {
    if digits.is_empty() {
        return Err(NumberProblem::new(format!("number literal `{text}` has no digits")));
    }
    if digits.starts_with('_') || digits.ends_with('_') || digits.contains("__") {
        return Err(NumberProblem::new(format!("misplaced `_` in number literal `{text}`"))
            .with_help("`_` may only separate two digits, as in `1_000`"));
    }
    Ok(())
}

/// A decimal float: `1.5`, `1.`, `.5`, `1e-3`, `1_000.0`, `2E+10`.
fn parse_float(text: &str) -> Result<f64, NumberProblem> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(index) => (&text[..index], Some(&text[index + 1..])),
        Option::None => (text, Option::None),
    };
    let (whole, fraction) = match mantissa.find('.') {
        Some(index) => (&mantissa[..index], Some(&mantissa[index + 1..])),
        Option::None => (mantissa, Option::None),
    };
    if whole.is_empty() && fraction.is_none_or(str::is_empty) {
        return Err(NumberProblem::new(format!("number literal `{text}` has no digits")));
    }
    if !whole.is_empty() {
        check_underscores(text, whole)?;
    }
    if let Some(fraction) = fraction.filter(|f| !f.is_empty()) {
        check_underscores(text, fraction)?;
    }
    if let Some(exponent) = exponent {
        let digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
        if digits.is_empty() {
            return Err(NumberProblem::new(format!("missing exponent digits in `{text}`"))
                .with_help("write the exponent as in `1e-3` or `2.5E+10`"));
        }
        check_underscores(text, digits)?;
    }
    if mantissa.contains(['+', '-']) {
        return Err(NumberProblem::new(format!("invalid number literal `{text}`")));
    }
    let cleaned: std::string::String = text.chars().filter(|c| *c != '_').collect();
    cleaned.parse::<f64>().map_err(|_| NumberProblem::new(format!("invalid number literal `{text}`")))
}

/// Names a character for a message: `$`, or its code point when it is not
/// printable.
fn describe_char(character: char) -> std::string::String {
    let code = character as u32;
    let name = match character {
        '\0' => Some("NUL"),
        '\u{7f}' => Some("DEL"),
        '\u{a0}' => Some("no-break space"),
        '\u{200b}' => Some("zero-width space"),
        '\u{feff}' => Some("byte order mark"),
        '\u{fffd}' => Some("replacement character"),
        _ => Option::None,
    };
    if let Some(name) = name {
        return format!("U+{code:04X} ({name})");
    }
    if character == '`' {
        return "'`' (backtick)".to_string();
    }
    if character.is_ascii_graphic() {
        return format!("`{character}`");
    }
    if character.is_control() || character.is_whitespace() || character.is_ascii() {
        return format!("U+{code:04X}");
    }
    format!("`{character}` (U+{code:04X})")
}

fn invalid_char_help(character: char) -> Option<&'static str> {
    Some(match character {
        '!' => "write `not x` for negation; `!=` is the only operator with `!`",
        '\\' => "a `\\` continues a line only as the last character of the line",
        '$' | '?' | '`' => "this character has no meaning in kern; remove it",
        '\u{fffd}' => "the file is probably not valid UTF-8 here",
        '\u{a0}' | '\u{200b}' | '\u{feff}' => "replace it with an ordinary space, or remove it",
        '×' | '÷' | '−' | '≤' | '≥' | '≠' => "kern operators are ASCII: `*`, `/`, `-`, `<=`, `>=`, `!=`",
        c if c.is_control() => "remove the control character",
        _ => return Option::None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lexes `text` and prints each token as `Kind` or `Kind"text"`, layout
    /// tokens by name, separated by spaces.
    fn tokens(text: &str) -> String {
        let file = SourceFile::new("test.kern", text);
        let lexed = lex(&file);
        render(&file, &lexed.tokens)
    }

    fn render(file: &SourceFile, tokens: &[Token]) -> String {
        let mut out = Vec::new();
        for token in tokens {
            let text = file.snippet(token.span);
            out.push(match token.kind {
                TokenKind::Newline => "NL".to_string(),
                TokenKind::Indent => "INDENT".to_string(),
                TokenKind::Dedent => "DEDENT".to_string(),
                TokenKind::Eof => "EOF".to_string(),
                TokenKind::Name => format!("name:{text}"),
                TokenKind::Int(value) => format!("int:{value}"),
                TokenKind::Float(value) => format!("float:{value:?}"),
                TokenKind::String => format!("str:{text}"),
                TokenKind::Invalid => format!("invalid:{text:?}"),
                kind => kind.symbol().trim_matches('`').to_string(),
            });
        }
        out.join(" ")
    }

    fn codes(text: &str) -> Vec<&'static str> {
        let file = SourceFile::new("test.kern", text);
        lex(&file).diagnostics.iter().map(|d| d.code).collect()
    }

    fn messages(text: &str) -> Vec<String> {
        let file = SourceFile::new("test.kern", text);
        lex(&file).diagnostics.iter().map(|d| format!("{} {}", d.code, d.message)).collect()
    }

    #[test]
    fn indentation_produces_indent_and_dedent() {
        let text = "def f(x):\n    if x:\n        return 1\n    return 2\n";
        assert_eq!(
            tokens(text),
            "def name:f ( name:x ) : NL INDENT if name:x : NL INDENT return int:1 NL DEDENT \
             return int:2 NL DEDENT EOF"
        );
    }

    #[test]
    fn final_newline_and_dedents_are_added_at_end_of_file() {
        assert_eq!(tokens("def f():\n    pass"), "def name:f ( ) : NL INDENT pass NL DEDENT EOF");
        assert_eq!(tokens(""), "EOF");
        assert_eq!(tokens("\n\n   \n# only a comment\n"), "EOF");
    }

    #[test]
    fn blank_and_comment_lines_produce_nothing() {
        let text = "def f():\n\n    # comment\n        # deeper comment\n    x = 1  # trailing\n\n\n    y = 2\n";
        assert_eq!(tokens(text), "def name:f ( ) : NL INDENT name:x = int:1 NL name:y = int:2 NL DEDENT EOF");
    }

    #[test]
    fn crlf_and_lone_cr_are_line_breaks() {
        let text = "def f():\r\n    x = 1\r    y = 2\r\n";
        assert_eq!(tokens(text), "def name:f ( ) : NL INDENT name:x = int:1 NL name:y = int:2 NL DEDENT EOF");
        let file = SourceFile::new("t", text);
        let lexed = lex(&file);
        let newline = lexed.tokens.iter().find(|t| t.kind == TokenKind::Newline).map(|t| t.span);
        assert_eq!(newline, Some(Span::new(8, 10)));
    }

    #[test]
    fn byte_order_mark_is_skipped() {
        let text = "\u{feff}def f():\n    pass\n";
        assert_eq!(tokens(text), "def name:f ( ) : NL INDENT pass NL DEDENT EOF");
        let file = SourceFile::new("t", text);
        assert_eq!(lex(&file).tokens[0].span, Span::new(3, 6));
        assert!(codes(text).is_empty());
    }

    #[test]
    fn brackets_and_backslashes_join_lines() {
        let text = "x = f(a,\n      b) + \\\n    c\ny = [1,\n2]\n";
        assert_eq!(tokens(text), "name:x = name:f ( name:a , name:b ) + name:c NL name:y = [ int:1 , int:2 ] NL EOF");
        assert_eq!(tokens("x = (1 +\r\n  2)\r\n"), "name:x = ( int:1 + int:2 ) NL EOF");
        assert_eq!(tokens("x = 1 + \\\r\n  2\r\n"), "name:x = int:1 + int:2 NL EOF");
    }

    #[test]
    fn operators_and_keywords() {
        assert_eq!(
            tokens("a //= b ** -c @ d -> e := f ... g.h; i != j << k >>= l"),
            "name:a //= name:b ** - name:c @ name:d -> name:e := name:f ... name:g . name:h ; \
             name:i != name:j << name:k >>= name:l NL EOF"
        );
        assert_eq!(
            tokens("class lambda is not in print define iffy"),
            "class lambda is not in name:print name:define name:iffy NL EOF"
        );
    }

    #[test]
    fn number_literals() {
        assert_eq!(
            tokens("1_000 0x1F 0o17 0b101 0 00 18446744073709551615"),
            "int:1000 int:31 int:15 int:5 int:0 int:0 int:18446744073709551615 NL EOF"
        );
        assert_eq!(
            tokens("1.5 1. .5 1e-3 1_000.0 2E+10 1.e2 0.0"),
            "float:1.5 float:1.0 float:0.5 float:0.001 float:1000.0 float:20000000000.0 float:100.0 float:0.0 NL EOF"
        );
        assert_eq!(tokens("0x1e+1"), "int:30 + int:1 NL EOF");
        assert_eq!(tokens("a[1:2]"), "name:a [ int:1 : int:2 ] NL EOF");
    }

    #[test]
    fn bad_number_literals_are_reported() {
        assert_eq!(messages("18446744073709551616"), ["E0105 integer literal too large: `18446744073709551616`"]);
        for text in ["1abc", "0x", "0x1g", "012", "1__0", "1_", "1e", "1e+", "3j", "0b2"] {
            let found = codes(text);
            assert!(found.iter().all(|c| *c == "E0105") && !found.is_empty(), "{text}: {found:?}");
        }
    }

    #[test]
    fn strings_are_tokens() {
        assert_eq!(
            tokens("'a' \"b\" r'\\'' rb\"x\" f'{y}' '''multi\nline''' \"\"\"q\"\"\""),
            "str:'a' str:\"b\" str:r'\\'' str:rb\"x\" str:f'{y}' str:'''multi\nline''' str:\"\"\"q\"\"\" NL EOF"
        );
        assert!(codes("'abc'").is_empty());
    }

    #[test]
    fn unterminated_strings_are_reported() {
        assert_eq!(messages("x = 'abc\ny = 1\n"), ["E0106 unterminated string literal"]);
        assert_eq!(tokens("x = 'abc\ny = 1\n"), "name:x = invalid:\"'abc\" NL name:y = int:1 NL EOF");
        assert_eq!(codes("x = '''abc\ny = 1\n"), ["E0106"]);
        assert_eq!(codes("'\\"), ["E0106"]);
    }

    #[test]
    fn tab_in_indentation_is_reported_once() {
        let text = "def f():\n\tx = 1\n\ty = 2\n";
        let file = SourceFile::new("t", text);
        let lexed = lex(&file);
        assert_eq!(lexed.diagnostics.len(), 1);
        assert_eq!(lexed.diagnostics[0].code, "E0103");
        assert_eq!(lexed.diagnostics[0].message, "tab in indentation");
        assert_eq!(lexed.diagnostics[0].help.as_deref(), Some("indent with spaces (kern, like PEP 8, uses 4 spaces)"));
        assert!(codes("x =\t1\n").is_empty());
    }

    #[test]
    fn inconsistent_dedent_is_reported() {
        let text = "def f():\n    if x:\n        y = 1\n      z = 2\n    return\n";
        assert_eq!(codes(text), ["E0104"]);
        // The line continues at the nearest level, so the stream stays balanced.
        assert_eq!(
            tokens(text),
            "def name:f ( ) : NL INDENT if name:x : NL INDENT name:y = int:1 NL name:z = int:2 NL \
             DEDENT return NL DEDENT EOF"
        );
    }

    #[test]
    fn unmatched_and_unclosed_brackets() {
        assert_eq!(messages("x = 1)\n"), ["E0107 unmatched `)`"]);
        assert_eq!(tokens("x = 1)\n"), "name:x = int:1 NL EOF");
        let file = SourceFile::new("t", "x = f(a\n");
        let lexed = lex(&file);
        assert_eq!(lexed.diagnostics.len(), 1);
        assert_eq!(lexed.diagnostics[0].message, "`(` is never closed");
        assert_eq!(lexed.diagnostics[0].span, Span::new(5, 6));
        assert_eq!(render(&file, &lexed.tokens), "name:x = name:f ( name:a ) NL EOF");
        assert_eq!(messages("x = (a]\n"), ["E0107 `]` does not match `(`"]);
        assert_eq!(tokens("x = (a]\n"), "name:x = ( name:a ) NL EOF");
        assert_eq!(messages("x = [f(a]\n"), ["E0107 missing `)` to close `(`"]);
        assert_eq!(tokens("x = [f(a]\n"), "name:x = [ name:f ( name:a ) ] NL EOF");
    }

    #[test]
    fn unclosed_bracket_stops_at_a_statement_keyword() {
        let text = "def f(a):\n    x = g(a\n    return x\n";
        assert_eq!(codes(text), ["E0107"]);
        assert_eq!(
            tokens(text),
            "def name:f ( name:a ) : NL INDENT name:x = name:g ( name:a ) NL return name:x NL DEDENT EOF"
        );
    }

    #[test]
    fn invalid_characters_are_reported_and_skipped() {
        assert_eq!(messages("a $ b"), ["E0102 unexpected character `$`"]);
        assert_eq!(tokens("a $$ b"), "name:a invalid:\"$$\" name:b NL EOF");
        assert_eq!(messages("x\0"), ["E0102 unexpected character U+0000 (NUL)"]);
        assert_eq!(messages("a × b"), ["E0102 unexpected character `×` (U+00D7)"]);
        assert_eq!(messages("a\u{fffd}b"), ["E0102 unexpected character U+FFFD (replacement character)"]);
        assert_eq!(tokens("a\u{a0}b"), "name:a invalid:\"\\u{a0}\" name:b NL EOF");
        assert_eq!(codes("!x ? `y` \\ z"), ["E0102", "E0102", "E0102", "E0102", "E0102"]);
    }

    #[test]
    fn unicode_identifiers_are_names() {
        assert_eq!(tokens("π = café + ifé"), "name:π = name:café + name:ifé NL EOF");
        assert!(codes("π = 1").is_empty());
    }

    #[test]
    fn spans_are_byte_offsets() {
        let file = SourceFile::new("t", "é = 10\n");
        let lexed = lex(&file);
        let spans: Vec<(usize, usize)> =
            lexed.tokens.iter().map(|t| (t.span.start as usize, t.span.end as usize)).collect();
        assert_eq!(spans, [(0, 2), (3, 4), (5, 7), (7, 8), (8, 8)]);
    }

    #[test]
    fn deep_brackets_are_linear_and_balanced() {
        let text = "x = ".to_string() + &"[".repeat(100_000);
        let file = SourceFile::new("t", text);
        let lexed = lex(&file);
        assert_eq!(lexed.diagnostics.len(), 1);
        let opens = lexed.tokens.iter().filter(|t| t.kind == TokenKind::LeftBracket).count();
        let closes = lexed.tokens.iter().filter(|t| t.kind == TokenKind::RightBracket).count();
        assert_eq!((opens, closes), (100_000, 100_000));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let length = (next() % 200) as usize;
            let bytes: Vec<u8> = (0..length).map(|_| next() as u8).collect();
            let (file, _) = SourceFile::from_bytes("fuzz", &bytes);
            let lexed = lex(&file);
            assert_eq!(lexed.tokens.last().map(|t| t.kind), Some(TokenKind::Eof));
            let depth = lexed.tokens.iter().fold(0i64, |depth, token| match token.kind {
                TokenKind::Indent => depth + 1,
                TokenKind::Dedent => depth - 1,
                _ => depth,
            });
            assert_eq!(depth, 0);
        }
    }
}
