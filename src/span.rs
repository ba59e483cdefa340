//! Source files and byte spans.
//!
//! A leaf module: every later phase points into the source through a [`Span`]
//! (byte offsets), and only diagnostics rendering turns spans into lines and
//! columns. A file may be put together from pieces of other files
//! ([`Segment`]); positions are then reported in those files. Nothing here
//! knows about tokens, syntax or types.

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
///
/// The text may be put together from pieces of other files (the Python
/// package hands over functions taken from `.py` files): each piece is a
/// [`Segment`], and positions are reported in the file the piece comes from
/// ([`SourceFile::line_col`], [`SourceFile::name_at`]). An ordinary file is
/// one segment starting at its first line and column.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: String,
    text: String,
    /// The byte offset where each line of `text` starts (the first is 0).
    line_starts: Vec<usize>,
    /// Where each piece of the text comes from, by increasing start; never
    /// empty, and the first starts at 0 (an ordinary file has one, itself).
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
        let name = name.into();
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let whole = Segment { start: 0, name: name.clone(), first_line: 1, indent: 0 };
        SourceFile { name, text, line_starts, segments: vec![whole] }
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
    ///
    /// Segments should start at 0 and at line starts, in increasing order;
    /// others are made usable rather than refused: they are sorted, a start
    /// is moved back to a character boundary, and text before the first
    /// segment counts as lines of the first segment's file from line 1.
    pub fn from_segments(text: String, segments: Vec<Segment>) -> SourceFile {
        let mut segments = segments;
        for segment in &mut segments {
            segment.start = segment.start.min(text.len());
            while !text.is_char_boundary(segment.start) {
                segment.start -= 1;
            }
        }
        segments.sort_by_key(|segment| segment.start);
        let name = segments.first().map(|segment| segment.name.clone()).unwrap_or_default();
        let mut file = SourceFile::new(name, text);
        if segments.first().is_some_and(|first| first.start == 0) {
            file.segments = segments;
        } else {
            file.segments.extend(segments);
        }
        file
    }

    /// The file's name; for a file made of pieces, the first piece's (see
    /// [`SourceFile::name_at`]).
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

    /// The 1-based line and character column of a byte offset, in the file
    /// the offset's piece comes from: the piece's first line plus the line
    /// within the piece, and the column plus the indentation removed.
    pub fn line_col(&self, offset: u32) -> LineCol {
        let offset = (offset as usize).min(self.text.len());
        let segment = &self.segments[self.segment_index(offset)];
        let first_line_index = self.line_index(segment.start);
        let line_index = self.line_index(offset);
        let line_start = self.line_starts[line_index].max(segment.start);
        let mut column_end = offset;
        while !self.text.is_char_boundary(column_end) {
            column_end -= 1;
        }
        let column = self.text[line_start..column_end].chars().count() + 1;
        LineCol { line: segment.first_line + (line_index - first_line_index), column: column + segment.indent }
    }

    /// The name of the file the byte at `offset` comes from: its segment's
    /// file, or [`SourceFile::name`] for an ordinary file.
    pub fn name_at(&self, offset: u32) -> &str {
        &self.segments[self.segment_index(offset as usize)].name
    }

    /// The pieces the text is made of (one for an ordinary file, itself),
    /// by increasing start; the first starts at 0.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The index in [`SourceFile::segments`] of the piece holding byte
    /// `offset` (the last piece for an offset past the end).
    pub fn segment_index(&self, offset: usize) -> usize {
        self.segments.partition_point(|segment| segment.start <= offset).saturating_sub(1)
    }

    /// The bytes of the text that piece `index` covers.
    pub fn segment_range(&self, index: usize) -> std::ops::Range<usize> {
        let start = self.segments.get(index).map_or(self.text.len(), |segment| segment.start);
        let end = self.segments.get(index + 1).map_or(self.text.len(), |segment| segment.start);
        start..end
    }

    /// The 0-based line of the whole text (not of a piece's file) holding
    /// byte `offset`.
    pub fn line_index(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset).saturating_sub(1)
    }

    /// Where 0-based line `line_index` of the whole text starts, if it
    /// exists.
    pub fn line_start(&self, line_index: usize) -> Option<usize> {
        self.line_starts.get(line_index).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(start: usize, name: &str, first_line: usize, indent: usize) -> Segment {
        Segment { start, name: name.to_string(), first_line, indent }
    }

    /// `name:line:column` of every offset where `needle` occurs.
    fn positions(file: &SourceFile, needle: &str) -> Vec<String> {
        file.text()
            .match_indices(needle)
            .map(|(offset, _)| format!("{}:{}", file.name_at(offset as u32), file.line_col(offset as u32)))
            .collect()
    }

    #[test]
    fn an_ordinary_file_counts_from_its_first_line_and_column() {
        let file = SourceFile::new("k.kern", "def f(x):\n    return é + x\n");
        assert_eq!(positions(&file, "x"), ["k.kern:1:7", "k.kern:2:16"]);
        assert_eq!(file.line_col(0), LineCol { line: 1, column: 1 });
        // Past the end: the last position of the text.
        assert_eq!(file.line_col(1000), LineCol { line: 3, column: 1 });
        assert_eq!(file.segments().len(), 1);
        assert_eq!(file.segment_range(0), 0..file.text().len());
    }

    #[test]
    fn pieces_report_their_own_file_line_and_column() {
        let a = "def f(x):\n    return x\n";
        let b = "def g(y):\n    return y\n";
        let text = format!("{a}{b}");
        let file = SourceFile::from_segments(
            text,
            vec![segment(0, "/home/u/a.py", 10, 0), segment(a.len(), "/home/u/b.py", 3, 4)],
        );
        assert_eq!(file.name(), "/home/u/a.py");
        assert_eq!(positions(&file, "x"), ["/home/u/a.py:10:7", "/home/u/a.py:11:12"]);
        assert_eq!(positions(&file, "y"), ["/home/u/b.py:3:11", "/home/u/b.py:4:16"]);
        assert_eq!(positions(&file, "def"), ["/home/u/a.py:10:1", "/home/u/b.py:3:5"]);
        assert_eq!(file.segment_index(a.len() - 1), 0);
        assert_eq!(file.segment_index(a.len()), 1);
        assert_eq!(file.segment_range(1), a.len()..file.text().len());
    }

    #[test]
    fn odd_segments_are_made_usable() {
        // Unsorted, starting past 0 and inside a character: sorted, a start
        // moves back to a character boundary, and the text before the first
        // counts as lines of the first piece's file from line 1.
        let text = "xy\né\ncd\n".to_string();
        let file = SourceFile::from_segments(text, vec![segment(6, "c.py", 7, 2), segment(4, "b.py", 5, 0)]);
        let starts: Vec<usize> = file.segments().iter().map(|segment| segment.start).collect();
        assert_eq!(starts, [0, 3, 6]);
        assert_eq!(file.name(), "b.py");
        assert_eq!(positions(&file, "y"), ["b.py:1:2"]);
        assert_eq!(positions(&file, "é"), ["b.py:5:1"]);
        assert_eq!(positions(&file, "d"), ["c.py:7:4"]);
        let empty = SourceFile::from_segments(String::new(), Vec::new());
        assert_eq!(empty.name_at(0), "");
        assert_eq!(empty.line_col(0), LineCol { line: 1, column: 1 });
    }
}
