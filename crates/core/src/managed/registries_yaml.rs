//! A small line editor for k3s's and RKE2's `registries.yaml` (`mirrors:` and
//! `configs:` of block mappings): set a scalar, add a list, remove an entry, keeping
//! every other line (comments, order, spacing, other registries' entries) as it was.
//!
//! It understands the block style those files are written in and nothing more: a tab
//! in the indentation, a flow collection (`{...}`, `[...]`) on the way to what it
//! edits, anchors, aliases, tags, complex keys or a second document make it refuse
//! with the line, and the caller shows the change to make by hand instead. Pure.

use std::fmt::Write as _;

/// Why a file is not edited: the operator makes the change by hand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    #[error("line {line} is indented with a tab")]
    Tab { line: usize },
    #[error(
        "line {line} uses YAML that ctrdiag does not edit (anchors, aliases, tags, complex keys or a second document)"
    )]
    Unsupported { line: usize },
    #[error("`{path}` (line {line}) is not a block mapping ctrdiag can add to")]
    NotMapping { path: String, line: usize },
    #[error("`{path}` (line {line}) holds more than one value")]
    NotScalar { path: String, line: usize },
    #[error("`{path}` (line {line}) is already set")]
    Exists { path: String, line: usize },
}

/// One line as far as the editor cares.
#[derive(Debug, Clone)]
struct Entry {
    indent: usize,
    /// The key, unquoted; `None` for a list item or a line that is no `key:`.
    key: Option<String>,
    /// A `- ` list item.
    item: bool,
    /// The value after `key:`, comment cut, trimmed (empty: a nested block follows).
    value: String,
    /// Byte offset just past the key's colon.
    after_colon: usize,
    /// The trailing comment, kept when the value is replaced.
    comment: Option<String>,
}

/// A registries.yaml, line by line.
#[derive(Debug, Clone)]
pub struct RegistriesYaml {
    lines: Vec<String>,
    /// The parsed lines (`None`: blank, comment, or text inside a block scalar).
    entries: Vec<Option<Entry>>,
}

impl RegistriesYaml {
    /// Reads `text`, refusing what the editor cannot edit safely.
    pub fn parse(text: &str) -> Result<RegistriesYaml, YamlError> {
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let mut entries = Vec::with_capacity(lines.len());
        let mut scalar_block: Option<usize> = None;
        let mut seen_content = false;
        for (i, line) in lines.iter().enumerate() {
            let n = i + 1;
            let indent = line.len() - line.trim_start_matches(' ').len();
            let content = &line[indent..];
            if content.starts_with('\t') {
                return Err(YamlError::Tab { line: n });
            }
            if let Some(block_indent) = scalar_block {
                if content.is_empty() || indent > block_indent {
                    entries.push(None);
                    continue;
                }
                scalar_block = None;
            }
            if content.is_empty() || content.starts_with('#') {
                entries.push(None);
                continue;
            }
            if content.starts_with("---") || content.starts_with("...") {
                if seen_content {
                    return Err(YamlError::Unsupported { line: n });
                }
                entries.push(None);
                continue;
            }
            seen_content = true;
            let entry = parse_entry(line, indent).ok_or(YamlError::Unsupported { line: n })?;
            if entry.value.starts_with('|') || entry.value.starts_with('>') {
                scalar_block = Some(indent);
            }
            entries.push(Some(entry));
        }
        Ok(RegistriesYaml { lines, entries })
    }

    /// An empty file, for a registries.yaml that does not exist yet.
    pub fn empty() -> RegistriesYaml {
        RegistriesYaml {
            lines: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// The text, every line ended.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            let _ = writeln!(out, "{l}");
        }
        out
    }

    /// The keys directly under `path` (none when it is absent; an error when it holds
    /// a value instead of a block mapping, such as `configs: {...}`).
    pub fn children(&self, path: &[&str]) -> Result<Vec<String>, YamlError> {
        let range = match self.find(path)? {
            Found::All(range) => range,
            Found::Partial { .. } => return Ok(Vec::new()),
        };
        if let Some(at) = range.start.checked_sub(1)
            && !path.is_empty()
            && !self.entry(at).value.is_empty()
        {
            return Err(YamlError::NotMapping {
                path: dotted(path),
                line: at + 1,
            });
        }
        Ok(self
            .direct_children(range)
            .into_iter()
            .filter_map(|i| self.entry(i).key.clone())
            .collect())
    }

    /// Whether `path` exists.
    pub fn contains(&self, path: &[&str]) -> Result<bool, YamlError> {
        Ok(matches!(self.find(path)?, Found::All(_)) && !path.is_empty())
    }

    /// Sets the scalar at `path` to `value` (YAML text, already quoted), creating the
    /// mappings on the way at the end of their parents.
    pub fn set_scalar(&mut self, path: &[&str], value: &str) -> Result<(), YamlError> {
        match self.find(path)? {
            Found::All(range) => {
                let at = range.start - 1;
                let e = self.entry(at).clone();
                if e.value.is_empty() && !self.direct_children(range).is_empty() {
                    return Err(YamlError::NotScalar {
                        path: dotted(path),
                        line: at + 1,
                    });
                }
                let comment = e.comment.map(|c| format!("  {c}")).unwrap_or_default();
                let line = format!("{} {value}{comment}", &self.lines[at][..e.after_colon]);
                self.replace(at, line);
                Ok(())
            }
            Found::Partial { depth, range } => {
                self.insert(path, depth, range, &[format!(": {value}")]);
                Ok(())
            }
        }
    }

    /// Adds the list `items` (YAML text, already quoted) at `path`, which must not exist.
    pub fn add_list(&mut self, path: &[&str], items: &[String]) -> Result<(), YamlError> {
        match self.find(path)? {
            Found::All(range) => Err(YamlError::Exists {
                path: dotted(path),
                line: range.start,
            }),
            Found::Partial { depth, range } => {
                let mut tail = vec![":".to_string()];
                tail.extend(items.iter().map(|i| format!("- {i}")));
                self.insert(path, depth, range, &tail);
                Ok(())
            }
        }
    }

    /// Removes `path` with everything under it, then any mapping left empty by that.
    /// Whether anything was there.
    pub fn remove(&mut self, path: &[&str]) -> Result<bool, YamlError> {
        let Found::All(range) = self.find(path)? else {
            return Ok(false);
        };
        let start = range.start - 1;
        self.lines.drain(start..range.end);
        self.entries.drain(start..range.end);
        if let Some((_, parent)) = path.split_last()
            && !parent.is_empty()
            && let Found::All(r) = self.find(parent)?
            && self.direct_children(r.clone()).is_empty()
            && self.entry(r.start - 1).value.is_empty()
        {
            self.remove(parent)?;
        }
        Ok(true)
    }

    fn entry(&self, i: usize) -> &Entry {
        self.entries[i]
            .as_ref()
            .expect("indices come from entry lines")
    }

    fn replace(&mut self, at: usize, line: String) {
        let indent = line.len() - line.trim_start_matches(' ').len();
        self.entries[at] = parse_entry(&line, indent);
        self.lines[at] = line;
    }

    /// Inserts the missing part of `path` (from `depth` on) at the end of `range`
    /// (the deepest existing mapping's block, or the whole file), the last key
    /// followed by `tail` (its first line's rest, then more lines one level deeper).
    fn insert(
        &mut self,
        path: &[&str],
        depth: usize,
        range: std::ops::Range<usize>,
        tail: &[String],
    ) {
        let base = if depth == 0 {
            0
        } else {
            let parent = self.entry(range.start - 1).indent;
            self.direct_children(range.clone())
                .first()
                .map_or(parent + 2, |&c| self.entry(c).indent)
        };
        let at = self.content_end(range);
        let mut new = Vec::new();
        for (level, key) in path[depth..].iter().enumerate() {
            let pad = " ".repeat(base + 2 * level);
            let key = yaml_key(key);
            if depth + level + 1 < path.len() {
                new.push(format!("{pad}{key}:"));
            } else {
                new.push(format!("{pad}{key}{}", tail[0]));
                let deeper = " ".repeat(base + 2 * (level + 1));
                new.extend(tail[1..].iter().map(|t| format!("{deeper}{t}")));
            }
        }
        for (k, line) in new.into_iter().enumerate() {
            let indent = line.len() - line.trim_start_matches(' ').len();
            self.entries.insert(at + k, parse_entry(&line, indent));
            self.lines.insert(at + k, line);
        }
    }

    /// Just past the last entry line of `range` (trailing blank lines and comments
    /// belong to what follows).
    fn content_end(&self, range: std::ops::Range<usize>) -> usize {
        (range.start..range.end)
            .rev()
            .find(|&i| self.entries[i].is_some())
            .map_or(range.start, |i| i + 1)
    }

    /// The block of the entry at `i`: the lines after it that are indented deeper
    /// (or are list items at its own indentation, as YAML allows under a key).
    fn block(&self, i: usize) -> std::ops::Range<usize> {
        let own = self.entry(i).indent;
        let mut end = i + 1;
        for j in i + 1..self.entries.len() {
            match &self.entries[j] {
                None => continue,
                Some(e) if e.indent > own || (e.indent == own && e.item) => end = j + 1,
                Some(_) => break,
            }
        }
        // Blank lines and comments after the last entry of the block stay outside it.
        i + 1..self.content_end(i + 1..end).max(i + 1)
    }

    /// The entry lines directly inside `range` (its least-indented mapping keys).
    fn direct_children(&self, range: std::ops::Range<usize>) -> Vec<usize> {
        let mut out = Vec::new();
        let mut level = None;
        for i in range {
            let Some(e) = &self.entries[i] else { continue };
            let level = *level.get_or_insert(e.indent);
            if e.indent == level && e.key.is_some() && !e.item {
                out.push(i);
            }
        }
        out
    }

    /// Walks `path` from the top: all of it found (the block of its last key), or how
    /// deep it got (the block of the deepest key found, or the whole file).
    fn find(&self, path: &[&str]) -> Result<Found, YamlError> {
        let mut range = 0..self.lines.len();
        for (depth, key) in path.iter().enumerate() {
            if depth > 0 {
                let at = range.start - 1;
                let e = self.entry(at);
                if !e.value.is_empty() {
                    return Err(YamlError::NotMapping {
                        path: dotted(&path[..depth]),
                        line: at + 1,
                    });
                }
            }
            let hit = self
                .direct_children(range.clone())
                .into_iter()
                .find(|&i| self.entry(i).key.as_deref() == Some(key));
            match hit {
                Some(i) => range = i + 1..self.block(i).end,
                None => return Ok(Found::Partial { depth, range }),
            }
        }
        Ok(Found::All(range))
    }
}

enum Found {
    All(std::ops::Range<usize>),
    Partial {
        depth: usize,
        range: std::ops::Range<usize>,
    },
}

/// `configs."r.test:5000".tls`, for messages.
fn dotted(path: &[&str]) -> String {
    path.iter()
        .map(|k| {
            if k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                k.to_string()
            } else {
                format!("{k:?}")
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A key as ctrdiag writes it: plain when it is a simple word, double-quoted otherwise
/// (registry hosts hold `.` and `:`).
fn yaml_key(key: &str) -> String {
    if key
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        quote(key)
    }
}

/// A YAML double-quoted string.
pub fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// One non-blank, non-comment line: a `key: value`, a `- item`, or plain text.
/// `None`: YAML the editor will not touch.
fn parse_entry(line: &str, indent: usize) -> Option<Entry> {
    let content = &line[indent..];
    if content == "-" || content.starts_with("- ") {
        return Some(Entry {
            indent,
            key: None,
            item: true,
            value: content[1..].trim().to_string(),
            after_colon: line.len(),
            comment: None,
        });
    }
    if content.starts_with(['&', '*', '!', '?', '{', '[', '|', '>', '%', '@', '`']) {
        return None;
    }
    let (key, key_len) = match content.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let len = quoted_len(content, q)?;
            (unquote(&content[..len], q), len)
        }
        _ => {
            let len = plain_key_len(content);
            (content[..len].trim_end().to_string(), len)
        }
    };
    let rest = content[key_len..].trim_start_matches(' ');
    let Some(after) = rest.strip_prefix(':') else {
        // A line that is no `key:` (the rest of a multi-line plain scalar).
        return Some(Entry {
            indent,
            key: None,
            item: false,
            value: content.to_string(),
            after_colon: line.len(),
            comment: None,
        });
    };
    let after_colon = line.len() - after.len();
    let (value, comment) = split_comment(after);
    let value = value.trim();
    if value.starts_with(['&', '*', '!']) {
        return None;
    }
    Some(Entry {
        indent,
        key: Some(key),
        item: false,
        value: value.to_string(),
        after_colon,
        comment,
    })
}

/// The length of the quoted string `text` starts with (quotes included).
fn quoted_len(text: &str, q: char) -> Option<usize> {
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if q == '"' => {
                chars.next();
            }
            c if c == q => {
                if q == '\'' && chars.peek().is_some_and(|(_, n)| *n == '\'') {
                    chars.next();
                    continue;
                }
                return Some(i + 1);
            }
            _ => {}
        }
    }
    None
}

fn unquote(quoted: &str, q: char) -> String {
    let inner = &quoted[1..quoted.len() - 1];
    if q == '\'' {
        return inner.replace("''", "'");
    }
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A plain key ends at the first `:` followed by a space or the line's end (so
/// `r.test:5000:` is the key `r.test:5000`), or where a comment starts (then it is no
/// key at all, and [`parse_entry`] keeps the line as text).
fn plain_key_len(content: &str) -> usize {
    let bytes = content.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let comment = b == b'#' && i > 0 && bytes[i - 1] == b' ';
        if comment || (b == b':' && bytes.get(i + 1).is_none_or(|n| *n == b' ')) {
            return i;
        }
    }
    content.len()
}

/// A value and its trailing comment (` #` outside quotes).
fn split_comment(after: &str) -> (String, Option<String>) {
    let mut quote = None;
    let bytes = after.as_bytes();
    for (i, c) in after.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if i == 0 || bytes[i - 1] == b' ' => {
                return (after[..i].to_string(), Some(after[i..].to_string()));
            }
            _ => {}
        }
    }
    (after.to_string(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# registries for the cluster
mirrors:
  docker.io:
    endpoint:
      - \"https://mirror.example\"

configs:
  \"other.example:5000\":
    auth:
      username: robot
      password: s3cret   # rotated monthly
";

    fn edit(text: &str, f: impl FnOnce(&mut RegistriesYaml)) -> String {
        let mut y = RegistriesYaml::parse(text).unwrap();
        f(&mut y);
        y.text()
    }

    #[test]
    fn an_unchanged_file_prints_as_it_was() {
        assert_eq!(RegistriesYaml::parse(FILE).unwrap().text(), FILE);
    }

    #[test]
    fn a_new_host_goes_at_the_end_of_configs_in_its_indentation() {
        let out = edit(FILE, |y| {
            y.set_scalar(&["configs", "r.test:5000", "tls", "ca_file"], "\"/ca.crt\"")
                .unwrap()
        });
        assert_eq!(
            out,
            format!("{FILE}  \"r.test:5000\":\n    tls:\n      ca_file: \"/ca.crt\"\n")
        );
        // And it reads back.
        let y = RegistriesYaml::parse(&out).unwrap();
        assert!(
            y.contains(&["configs", "r.test:5000", "tls", "ca_file"])
                .unwrap()
        );
        assert_eq!(
            y.children(&["configs"]).unwrap(),
            ["other.example:5000", "r.test:5000"]
        );
    }

    #[test]
    fn an_existing_host_gets_tls_next_to_its_auth_and_a_value_is_replaced() {
        let out = edit(FILE, |y| {
            y.set_scalar(
                &[
                    "configs",
                    "other.example:5000",
                    "tls",
                    "insecure_skip_verify",
                ],
                "true",
            )
            .unwrap()
        });
        assert!(
            out.ends_with("      password: s3cret   # rotated monthly\n    tls:\n      insecure_skip_verify: true\n"),
            "{out}"
        );
        let out = edit(&out, |y| {
            y.set_scalar(
                &["configs", "other.example:5000", "auth", "password"],
                "\"new\"",
            )
            .unwrap()
        });
        assert!(
            out.contains("      password: \"new\"  # rotated monthly\n"),
            "{out}"
        );
    }

    #[test]
    fn a_missing_section_is_appended_and_an_empty_file_gets_one() {
        let out = edit(
            "mirrors:\n  a.example:\n    endpoint:\n    - \"https://a.example\"\n",
            |y| {
                y.set_scalar(&["configs", "r.test", "tls", "ca_file"], "\"/c\"")
                    .unwrap()
            },
        );
        assert!(
            out.ends_with("    - \"https://a.example\"\nconfigs:\n  \"r.test\":\n    tls:\n      ca_file: \"/c\"\n"),
            "{out}"
        );
        let mut y = RegistriesYaml::empty();
        y.add_list(
            &["mirrors", "r.test:5000", "endpoint"],
            &[quote("http://r.test:5000")],
        )
        .unwrap();
        assert_eq!(
            y.text(),
            "mirrors:\n  \"r.test:5000\":\n    endpoint:\n      - \"http://r.test:5000\"\n"
        );
    }

    #[test]
    fn removing_an_entry_takes_parents_left_empty_and_keeps_the_rest() {
        let out = edit(FILE, |y| {
            assert!(y.remove(&["mirrors", "docker.io"]).unwrap());
            assert!(!y.remove(&["mirrors", "nothing.here"]).unwrap());
        });
        assert!(!out.contains("mirrors"), "{out}");
        assert!(
            out.contains("configs:\n  \"other.example:5000\":\n    auth:"),
            "{out}"
        );
        let out = edit(FILE, |y| {
            assert!(
                y.remove(&["configs", "other.example:5000", "auth", "password"])
                    .unwrap()
            );
        });
        assert!(out.contains("      username: robot\n"), "{out}");
        assert!(!out.contains("s3cret"), "{out}");
    }

    #[test]
    fn a_list_that_exists_and_a_scalar_in_the_way_are_refused() {
        let mut y = RegistriesYaml::parse(FILE).unwrap();
        assert!(matches!(
            y.add_list(&["mirrors", "docker.io", "endpoint"], &[quote("http://x")]),
            Err(YamlError::Exists { line: 4, .. })
        ));
        assert!(matches!(
            y.set_scalar(
                &["configs", "other.example:5000", "auth", "username", "x"],
                "1"
            ),
            Err(YamlError::NotMapping { line: 10, .. })
        ));
        assert!(matches!(
            y.set_scalar(&["configs", "other.example:5000", "auth"], "1"),
            Err(YamlError::NotScalar { line: 9, .. })
        ));
    }

    #[test]
    fn yaml_the_editor_does_not_know_is_refused_with_its_line() {
        for (text, line) in [
            ("configs:\n\t\"r\":\n", 2),
            ("base: &b\n  x: 1\n", 1),
            ("configs: *b\n", 1),
            ("a: 1\n---\nb: 2\n", 2),
            ("? complex\n: key\n", 1),
        ] {
            let e = RegistriesYaml::parse(text).unwrap_err();
            let got = match e {
                YamlError::Tab { line } | YamlError::Unsupported { line } => line,
                other => panic!("{text:?}: {other:?}"),
            };
            assert_eq!(got, line, "{text:?}");
        }
        let mut y = RegistriesYaml::parse("configs: {}\n").unwrap();
        assert!(matches!(
            y.set_scalar(&["configs", "r", "tls", "ca_file"], "\"/c\""),
            Err(YamlError::NotMapping { line: 1, .. })
        ));
    }

    #[test]
    fn block_scalars_are_text_not_keys() {
        let text = "note: |\n  configs: not a key\nconfigs:\n  a:\n    tls:\n      ca_file: /a\n";
        let y = RegistriesYaml::parse(text).unwrap();
        assert_eq!(y.children(&["configs"]).unwrap(), ["a"]);
    }

    #[test]
    fn quoting_escapes_what_yaml_needs() {
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(unquote("'it''s'", '\''), "it's");
        assert_eq!(unquote("\"a\\\"b\"", '"'), "a\"b");
    }
}
