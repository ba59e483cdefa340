//! Source files and byte spans.
//!
//! A leaf module: every later phase points into the source through a [`Span`]
//! (byte offsets), and only diagnostics rendering turns spans into lines and
//! columns. Nothing here knows about tokens, syntax or types.

use std::fmt;

/// A half-open byte range `start..end` into one source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        let clamp = |offset: usize| u32::try_from(offset).unwrap_or(u32::MAX);
        Span { start: clamp(start), end: clamp(end.max(start)) }
    }

    /// The smallest span covering both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    pub fn is_empty(self) -> bool {
        self.start >= self.end
    }
}

/// One source file: its name (for messages), its text and a line index.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: String,
    text: String,
    line_starts: Vec<usize>,
    /// For a text put together from pieces of other files: where each piece
    /// comes from, by increasing start (empty for an ordinary file).
    segments: Vec<Segment>,
}

/// Where one piece of a [`SourceFile`] made of several comes from (see
/// [`SourceFile::from_segments`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The byte offset in the file's text where the piece starts.
    pub start: usize,
    /// The name of the file it comes from.
    pub name: String,
    /// The line of that file where it starts (1-based).
    pub first_line: usize,
    /// Columns of indentation removed from each of its lines.
    pub indent: usize,
}

/// A 1-based line and column (columns count characters, as rustc does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for LineCol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl SourceFile {
    /// Builds a source file from text that is already valid UTF-8.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> SourceFile {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile { name: name.into(), text, line_starts, segments: Vec::new() }
    }

    /// Builds a source file from raw bytes. Invalid UTF-8 is replaced by
    /// U+FFFD so the file can still be shown; the byte offset of the first bad
    /// sequence is returned so the lexer can report it.
    pub fn from_bytes(name: impl Into<String>, bytes: &[u8]) -> (SourceFile, Option<usize>) {
        match std::str::from_utf8(bytes) {
            Ok(text) => (SourceFile::new(name, text), None),
            Err(error) => {
                let bad_offset = error.valid_up_to();
                (SourceFile::new(name, String::from_utf8_lossy(bytes).into_owned()), Some(bad_offset))
            }
        }
    }

    /// A source file whose text is made of pieces of other files (`text`
    /// is their concatenation; `segments` say where each starts and comes
    /// from). Lines and columns are reported in the original files.
    pub fn from_segments(text: String, segments: Vec<Segment>) -> SourceFile {
        let name = segments.first().map(|segment| segment.name.clone()).unwrap_or_default();
        let mut file = SourceFile::new(name, text);
        file.segments = segments;
        file
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text covered by a span (empty if the span is out of range).
    pub fn snippet(&self, span: Span) -> &str {
        self.text.get(span.range()).unwrap_or("")
    }

    /// The 1-based line and character column of a byte offset.
    pub fn line_col(&self, offset: u32) -> LineCol {
        let offset = (offset as usize).min(self.text.len());
        let line_index = match self.line_starts.binary_search(&offset) {
            Ok(index) => index,
            Err(index) => index - 1,
        };
        let line_start = self.line_starts[line_index];
        let mut column_end = offset;
        while !self.text.is_char_boundary(column_end) {
            column_end -= 1;
        }
        let column = self.text[line_start..column_end].chars().count() + 1;
        LineCol { line: line_index + 1, column }
    }
}
