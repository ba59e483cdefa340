//! Stack growth for the recursive phases.
//!
//! The parser bounds nesting (200 levels) and tree depth (1000), but the
//! phases that walk the tree recursively (parser, inference, interpreter)
//! still need more stack than a 2 MiB test thread has at those limits. Each
//! recursive entry point runs through [`guarded`], which switches to a fresh
//! heap-allocated stack segment when less than [`RED_ZONE`] bytes remain.

/// Grow when less than this much stack is left. Large enough for the deepest
/// run of frames between two checkpoints (about 20 parser frames per level).
const RED_ZONE: usize = 256 * 1024;
/// The size of each new stack segment.
const SEGMENT: usize = 4 * 1024 * 1024;

/// Runs `f`, first moving to a new stack segment if this one is nearly full.
pub(crate) fn guarded<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(RED_ZONE, SEGMENT, f)
}
