//! Bytes read from a log file into complete lines, each with the offset just past its
//! `\n`. A partial last line is held until its newline arrives, so a line is never
//! reported cut in two while containerd is still writing it.

use super::{LogLine, Position};

/// A line that never ends (binary garbage) is reported in pieces of this size rather
/// than held in memory without bound.
pub(super) const MAX_LINE: usize = 1 << 20;

#[derive(Debug)]
pub(super) struct LineSplitter {
    inode: u64,
    /// File offset where `pending` starts: just past the last line handed out.
    start: u64,
    /// Bytes of a line whose `\n` has not been read yet.
    pending: Vec<u8>,
}

impl LineSplitter {
    /// A splitter for the file `inode`, whose next byte is at `offset`.
    pub(super) fn new(inode: u64, offset: u64) -> Self {
        LineSplitter {
            inode,
            start: offset,
            pending: Vec::new(),
        }
    }

    /// Appends `chunk` (the bytes that follow everything pushed before) and returns the
    /// lines it completes, in order.
    pub(super) fn push(&mut self, chunk: &[u8]) -> Vec<LogLine> {
        let mut lines = Vec::new();
        let mut rest = chunk;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            self.pending.extend_from_slice(&rest[..end]);
            rest = &rest[end + 1..];
            lines.push(self.take(1));
        }
        self.pending.extend_from_slice(rest);
        while self.pending.len() >= MAX_LINE {
            let tail = self.pending.split_off(MAX_LINE);
            lines.push(self.take(0));
            self.pending = tail;
        }
        lines
    }

    /// The held partial line, for a file that will not grow any more (rotated away).
    pub(super) fn finish(&mut self) -> Option<LogLine> {
        (!self.pending.is_empty()).then(|| self.take(0))
    }

    /// Hands out `pending` as a line followed by `newline` (0 or 1) bytes of terminator.
    fn take(&mut self, newline: u64) -> LogLine {
        let bytes = std::mem::take(&mut self.pending);
        self.start += bytes.len() as u64 + newline;
        LogLine {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            position: Position::File {
                inode: self.inode,
                offset: self.start,
            },
            time: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts_and_offsets(lines: &[LogLine]) -> Vec<(&str, u64)> {
        lines
            .iter()
            .map(|l| match l.position {
                Position::File { offset, .. } => (l.text.as_str(), offset),
                Position::Journal { .. } => unreachable!("a file line"),
            })
            .collect()
    }

    #[test]
    fn each_line_carries_the_offset_just_past_its_newline() {
        let mut s = LineSplitter::new(7, 100);
        let lines = s.push(b"ab\n\ncde\n");
        assert_eq!(
            texts_and_offsets(&lines),
            [("ab", 103), ("", 104), ("cde", 108)]
        );
        assert!(matches!(lines[0].position, Position::File { inode: 7, .. }));
    }

    #[test]
    fn a_partial_line_waits_for_its_newline_across_reads() {
        let mut s = LineSplitter::new(1, 0);
        assert!(s.push(b"level=error msg=\"Pull").is_empty());
        assert!(s.push(b"Image").is_empty());
        let lines = s.push(b" failed\"\nnext");
        assert_eq!(
            texts_and_offsets(&lines),
            [("level=error msg=\"PullImage failed\"", 35)]
        );
        let rest = s.finish().expect("the held partial line");
        assert_eq!(texts_and_offsets(&[rest]), [("next", 39)]);
        assert!(s.finish().is_none());
    }

    #[test]
    fn invalid_utf8_is_replaced_not_dropped() {
        let mut s = LineSplitter::new(1, 0);
        let lines = s.push(b"bad \xff byte\n");
        assert_eq!(lines[0].text, "bad \u{fffd} byte");
    }

    #[test]
    fn a_line_without_end_is_cut_at_the_bound() {
        let mut s = LineSplitter::new(1, 0);
        let lines = s.push(&vec![b'x'; MAX_LINE + 5]);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].text.len(), MAX_LINE);
        let rest = s.push(b"\n");
        assert_eq!(texts_and_offsets(&rest), [("xxxxx", MAX_LINE as u64 + 6)]);
    }
}
