//! Diagnostics: errors as data, rendered in exactly one place.
//!
//! Every phase reports problems as [`Diagnostic`] values (code, message,
//! primary span, secondary labels, help). [`render`] turns them into
//! rustc-style text with `file:line:column` through codespan-reporting. The
//! library never prints; the CLI decides where text goes and which exit code
//! follows.
//!
//! A source made of pieces of other files (see [`crate::span::Segment`]) is
//! shown piece by piece: each snippet names the file its piece comes from,
//! with that file's line numbers and columns.

use crate::span::{SourceFile, Span};
use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::{self, Files};
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
        format!("{}:{}: error[{}]: {}", file.name_at(self.span.start), position, self.code, self.message)
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
    let files = Pieces { file };
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

/// The diagnostic in codespan's terms: each span becomes its piece of the
/// file (its id in [`Pieces`]) and a range within that piece.
fn to_codespan(diagnostic: &Diagnostic, file: &SourceFile) -> cs::Diagnostic<usize> {
    let locate = |span: Span| {
        let len = file.text().len();
        let start = (span.start as usize).min(len);
        let index = file.segment_index(start);
        let piece = file.segment_range(index);
        let end = (span.end as usize).clamp(start, piece.end.max(start));
        (index, start - piece.start..end - piece.start)
    };
    let (index, range) = locate(diagnostic.span);
    let mut labels = vec![cs::Label::primary(index, range).with_message(&diagnostic.span_label)];
    labels.extend(diagnostic.labels.iter().map(|label| {
        let (index, range) = locate(label.span);
        cs::Label::secondary(index, range).with_message(&label.message)
    }));
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

/// A [`SourceFile`] as codespan's files: one file per piece (an ordinary
/// file is one piece), whose source is the piece's own text, named after the
/// file it comes from, with that file's line numbers and columns.
struct Pieces<'f> {
    file: &'f SourceFile,
}

impl Pieces<'_> {
    /// The byte range of piece `id` and the line of the whole text it
    /// starts on.
    fn piece(&self, id: usize) -> Result<(std::ops::Range<usize>, usize), files::Error> {
        if id >= self.file.segments().len() {
            return Err(files::Error::FileMissing);
        }
        let range = self.file.segment_range(id);
        let first_line = self.file.line_index(range.start);
        Ok((range, first_line))
    }

    /// Where line `line_index` of piece `id` starts, relative to the piece
    /// (the piece's length for the line after its last, as codespan's
    /// `SimpleFile` does).
    fn line_start(&self, id: usize, line_index: usize) -> Result<usize, files::Error> {
        let (range, first_line) = self.piece(id)?;
        let last_line = self.file.line_index(range.end) - first_line;
        if line_index == 0 {
            return Ok(0);
        }
        match line_index.cmp(&(last_line + 1)) {
            std::cmp::Ordering::Less => {
                let start = self.file.line_start(first_line + line_index).unwrap_or(range.end);
                Ok(start.clamp(range.start, range.end) - range.start)
            }
            std::cmp::Ordering::Equal => Ok(range.len()),
            std::cmp::Ordering::Greater => Err(files::Error::LineTooLarge { given: line_index, max: last_line }),
        }
    }
}

impl<'f> Files<'f> for Pieces<'f> {
    type FileId = usize;
    type Name = &'f str;
    type Source = &'f str;

    fn name(&'f self, id: usize) -> Result<&'f str, files::Error> {
        self.file.segments().get(id).map(|segment| segment.name.as_str()).ok_or(files::Error::FileMissing)
    }

    fn source(&'f self, id: usize) -> Result<&'f str, files::Error> {
        let (range, _) = self.piece(id)?;
        Ok(&self.file.text()[range])
    }

    fn line_index(&'f self, id: usize, byte_index: usize) -> Result<usize, files::Error> {
        let (range, first_line) = self.piece(id)?;
        let offset = range.start + byte_index.min(range.len());
        Ok(self.file.line_index(offset) - first_line)
    }

    fn line_number(&'f self, id: usize, line_index: usize) -> Result<usize, files::Error> {
        let segment = self.file.segments().get(id).ok_or(files::Error::FileMissing)?;
        Ok(segment.first_line + line_index)
    }

    fn column_number(&'f self, id: usize, line_index: usize, byte_index: usize) -> Result<usize, files::Error> {
        let segment = self.file.segments().get(id).ok_or(files::Error::FileMissing)?;
        let source = self.source(id)?;
        let line_range = self.line_range(id, line_index)?;
        Ok(files::column_index(source, line_range, byte_index) + 1 + segment.indent)
    }

    fn line_range(&'f self, id: usize, line_index: usize) -> Result<std::ops::Range<usize>, files::Error> {
        Ok(self.line_start(id, line_index)?..self.line_start(id, line_index + 1)?)
    }
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
