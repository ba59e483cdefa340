//! Diagnostics: errors as data, rendered in exactly one place.
//!
//! Every phase reports problems as [`Diagnostic`] values (code, message,
//! primary span, secondary labels, help). [`render`] turns them into
//! rustc-style text with `file:line:column` through codespan-reporting. The
//! library never prints; the CLI decides where text goes and which exit code
//! follows.

use crate::span::{SourceFile, Span};
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term;

/// One user-facing problem with the program.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// A stable code such as `E0301`; see [`CODES`].
    pub code: &'static str,
    pub message: String,
    /// Where the problem is.
    pub span: Span,
    /// The text under the primary span's caret (may be empty).
    pub span_label: String,
    /// Other places that explain the problem (the conflicting assignment, ...).
    pub labels: Vec<Label>,
    /// One line saying what to do instead.
    pub help: Option<String>,
}

/// A secondary place in the source, with a short explanation.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

impl Diagnostic {
    pub fn error(code: &'static str, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic { code, message: message.into(), span, span_label: String::new(), labels: Vec::new(), help: None }
    }

    /// Sets the text shown under the primary caret.
    pub fn with_span_label(mut self, text: impl Into<String>) -> Diagnostic {
        self.span_label = text.into();
        self
    }

    pub fn with_label(mut self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.labels.push(Label { span, message: message.into() });
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// `file:line:column: error[CODE]: message`, on one line (for logs and tests).
    pub fn short(&self, file: &SourceFile) -> String {
        let position = file.line_col(self.span.start);
        format!("{}:{}: error[{}]: {}", file.name(), position, self.code, self.message)
    }
}

/// How many diagnostics [`render`] shows; it counts the rest in a last line
/// (an error keeps all of them), so the text stays bounded on any input.
pub const MAX_RENDERED: usize = 100;

/// A diagnostic whose source line is longer than this (in bytes) is shown in
/// its one-line form with its help, without the snippet.
const MAX_SNIPPET_LINE: usize = 1000;

/// Renders diagnostics rustc-style, with source snippets. `color` adds ANSI
/// escapes (the CLI asks for them only when stderr is a terminal).
pub fn render(diagnostics: &[Diagnostic], file: &SourceFile, color: bool) -> String {
    let files = SimpleFile::new(file.name(), file.text());
    let config = term::Config::default();
    let mut out = String::new();
    for diagnostic in diagnostics.iter().take(MAX_RENDERED) {
        let spans = std::iter::once(diagnostic.span).chain(diagnostic.labels.iter().map(|label| label.span));
        if spans.flat_map(|span| [span.start, span.end]).any(|offset| on_long_line(file.text(), offset as usize)) {
            out.push_str(&diagnostic.short(file));
            out.push('\n');
            if let Some(help) = &diagnostic.help {
                out.push_str(&format!("  = help: {help}\n"));
            }
            continue;
        }
        let converted = to_codespan(diagnostic, file);
        if color {
            let mut buffer = term::termcolor::Buffer::ansi();
            if term::emit_to_write_style(&mut buffer, &config, &files, &converted).is_ok() {
                out.push_str(&String::from_utf8_lossy(buffer.as_slice()));
                continue;
            }
        }
        if term::emit_to_string(&mut out, &config, &files, &converted).is_err() {
            // The spans did not fit the file: fall back to the one-line form.
            out.push_str(&diagnostic.short(file));
            out.push('\n');
        }
    }
    if diagnostics.len() > MAX_RENDERED {
        let more = diagnostics.len() - MAX_RENDERED;
        out.push_str(&format!("error: {more} more error{} not shown\n", if more == 1 { "" } else { "s" }));
    }
    out
}

/// Whether the line holding byte `offset` of `text` is longer than
/// [`MAX_SNIPPET_LINE`] (looking at most that far either way).
fn on_long_line(text: &str, offset: usize) -> bool {
    let bytes = text.as_bytes();
    let offset = offset.min(bytes.len());
    let before = &bytes[offset.saturating_sub(MAX_SNIPPET_LINE)..offset];
    let after = &bytes[offset..(offset + MAX_SNIPPET_LINE).min(bytes.len())];
    let start = before.iter().rev().position(|&b| b == b'\n').unwrap_or(before.len());
    let end = after.iter().position(|&b| b == b'\n').unwrap_or(after.len());
    start + end > MAX_SNIPPET_LINE
}

fn to_codespan(diagnostic: &Diagnostic, file: &SourceFile) -> cs::Diagnostic<()> {
    let clamp = |span: Span| {
        let len = file.text().len();
        let start = (span.start as usize).min(len);
        let end = (span.end as usize).clamp(start, len);
        start..end
    };
    let mut labels = vec![cs::Label::primary((), clamp(diagnostic.span)).with_message(&diagnostic.span_label)];
    labels.extend(
        diagnostic.labels.iter().map(|label| cs::Label::secondary((), clamp(label.span)).with_message(&label.message)),
    );
    let mut notes = Vec::new();
    if let Some(help) = &diagnostic.help {
        notes.push(format!("help: {help}"));
    }
    cs::Diagnostic::error()
        .with_code(diagnostic.code)
        .with_message(&diagnostic.message)
        .with_labels(labels)
        .with_notes(notes)
}

/// Every diagnostic code, with what it means. Codes are stable: tests and
/// users match on them.
pub const CODES: &[(&str, &str)] = &[
    // Lexical errors.
    ("E0101", "invalid UTF-8 in the source file"),
    ("E0102", "a character that cannot start a token"),
    ("E0103", "a tab in indentation"),
    ("E0104", "inconsistent dedent"),
    ("E0105", "malformed number literal"),
    ("E0106", "string literals are not supported"),
    ("E0107", "unterminated bracket or unmatched closing bracket"),
    // Syntax errors.
    ("E0201", "unexpected token"),
    ("E0202", "Python construct outside the kern subset"),
    ("E0203", "nesting too deep"),
    ("E0204", "invalid assignment target"),
    ("E0205", "expected an indented block"),
    ("E0206", "too many parameters or tuple items (more than 255)"),
    // Names and declarations.
    ("E0301", "unknown name"),
    ("E0302", "unknown kernel"),
    ("E0303", "duplicate definition"),
    ("E0304", "wrong number of arguments"),
    ("E0305", "unsupported builtin or attribute"),
    ("E0306", "invalid type annotation"),
    ("E0307", "`break` or `continue` outside a loop"),
    // Type errors.
    ("E0401", "incompatible types for one variable"),
    ("E0402", "operator not defined for these types"),
    ("E0403", "indexing error"),
    ("E0404", "argument type mismatch"),
    ("E0405", "return type mismatch"),
    ("E0406", "cannot infer a type (recursion without a base case)"),
    ("E0407", "integer literal out of range"),
    ("E0408", "signature does not match the annotations"),
    ("E0409", "not a constant where one is required"),
    // Parallel loops.
    ("E0501", "race: write to an outer scalar inside prange"),
    ("E0502", "race: augmented assignment to a shared array element"),
    ("E0503", "`break` or `return` directly inside prange"),
    // Runtime errors.
    ("R0601", "index out of bounds"),
    ("R0602", "integer division or modulo by zero"),
    ("R0603", "range step is zero"),
    ("R0604", "bad array size"),
    ("R0605", "recursion too deep"),
    ("R0606", "integer to a negative power"),
    ("R0699", "internal error (a bug in kernjit: please report it)"),
];
