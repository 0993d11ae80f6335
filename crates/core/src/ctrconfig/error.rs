//! Positions in a TOML text, shared by every parser of this module.
//!
//! containerd logs a broken hosts.toml without its path (1.x) and sometimes without a
//! position, so ctrdiag names file, line and column itself. toml_edit reports byte
//! ranges; this turns them into what an operator can jump to in an editor.

use std::fmt;

/// A 1-based line and column (column counted in characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` in `text`. Offsets past the end, or inside a
    /// multi-byte character, are clamped to the nearest character boundary before them,
    /// so a bad span from a parser can never panic here.
    pub fn at(text: &str, offset: usize) -> Position {
        let mut end = offset.min(text.len());
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let before = &text[..end];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = before[line_start..].chars().count() + 1;
        Position { line, column }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A TOML syntax error with the place it was found, from toml_edit's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub position: Option<Position>,
    /// toml_edit's own explanation, one line.
    pub message: String,
}

impl SyntaxError {
    pub(crate) fn from_toml(text: &str, err: &toml_edit::TomlError) -> SyntaxError {
        let message = err
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        SyntaxError {
            position: err.span().map(|s| Position::at(text, s.start)),
            message,
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(f, "{p}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Where an item of a spanned document starts, if the parser kept its span.
pub(crate) fn position_of(text: &str, span: Option<std::ops::Range<usize>>) -> Option<Position> {
    span.map(|s| Position::at(text, s.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_lines_and_characters() {
        let t = "a = 1\nbé = 2\n";
        assert_eq!(Position::at(t, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::at(t, 6), Position { line: 2, column: 1 });
        // 'é' is two bytes: the byte after it is the third character.
        assert_eq!(Position::at(t, 9), Position { line: 2, column: 3 });
        // Inside 'é' and past the end: clamped, no panic.
        assert_eq!(Position::at(t, 8), Position { line: 2, column: 2 });
        assert_eq!(Position::at(t, 999).line, 3);
    }
}
