//! The few fields detection needs from one containerd log line, in either of the two
//! formats containerd writes: logfmt (`time="..." level=error msg="..." error="..."`,
//! its default, and what the journal's MESSAGE holds) and JSON (`--log-format json`).
//! Defensive: a line that is neither, or has unbalanced quotes, yields what could be
//! read and never panics.

/// What one log line says, fields unescaped. Missing fields are empty.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LogFields {
    pub level: String,
    pub msg: String,
    pub error: String,
    /// `key=` (the ignored-key warning names the TOML key in it).
    pub key: String,
}

/// Reads `line`; `None` when it carries no `msg` at all (not a containerd log line).
pub fn read(line: &str) -> Option<LogFields> {
    let line = line.trim_end_matches(['\r', '\n']);
    let fields = if line.trim_start().starts_with('{') {
        json(line)?
    } else {
        logfmt(line)
    };
    (!fields.msg.is_empty()).then_some(fields)
}

fn json(line: &str) -> Option<LogFields> {
    let value: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).ok()?;
    let text = |k: &str| match value.get(k) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    Some(LogFields {
        level: text("level"),
        msg: text("msg"),
        error: text("error"),
        key: text("key"),
    })
}

fn logfmt(line: &str) -> LogFields {
    let mut fields = LogFields::default();
    let mut rest = line;
    while let Some((name, value, after)) = next_pair(rest) {
        match name {
            "level" => fields.level = value,
            "msg" => fields.msg = value,
            "error" => fields.error = value,
            "key" => fields.key = value,
            _ => {}
        }
        rest = after;
    }
    fields
}

/// The next `name=value` pair of `text`: the value quoted (Go's `%q`, backslash
/// escapes) or bare up to the next space. Returns the rest after the value.
fn next_pair(text: &str) -> Option<(&str, String, &str)> {
    let text = text.trim_start();
    let eq = text.find('=')?;
    let name = &text[..eq];
    // A name with a space in it: skip the word before the space and try again.
    if let Some(space) = name.rfind(' ') {
        return next_pair(&text[space + 1..]);
    }
    let value_text = &text[eq + 1..];
    if let Some(quoted) = value_text.strip_prefix('"') {
        let (value, used) = unquote(quoted);
        Some((name, value, &quoted[used..]))
    } else {
        let end = value_text.find(' ').unwrap_or(value_text.len());
        Some((name, value_text[..end].to_string(), &value_text[end..]))
    }
}

/// The text of a Go-quoted string whose opening quote is already consumed, and how many
/// bytes of `s` it used (including the closing quote, when there is one).
fn unquote(s: &str) -> (String, usize) {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return (out, i + 1),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, other)) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    (out, s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_with_escaped_quotes() {
        let f = read(r#"time="2026-12-02T10:00:00Z" level=error msg="PullImage \"r.test:5000/a:1\" failed" error="rpc error: desc = failed to pull \"r.test:5000/a:1\": x509: certificate signed by unknown authority""#).unwrap();
        assert_eq!(f.level, "error");
        assert_eq!(f.msg, r#"PullImage "r.test:5000/a:1" failed"#);
        assert!(f.error.ends_with("unknown authority"), "{f:?}");
        assert!(f.error.contains(r#""r.test:5000/a:1""#));
    }

    #[test]
    fn json_line() {
        let f = read(r#"{"error":"dial tcp: lookup r.test: no such host","level":"error","msg":"PullImage \"r.test/a:1\" failed","time":"t"}"#).unwrap();
        assert_eq!(f.level, "error");
        assert_eq!(f.msg, r#"PullImage "r.test/a:1" failed"#);
        assert_eq!(f.error, "dial tcp: lookup r.test: no such host");
    }

    #[test]
    fn bare_values_key_field_and_crlf() {
        let f = read("level=warning msg=\"Ignoring unknown key in TOML for plugin\" key=\"registry configs r tls\" plugin=io.containerd.cri.v1.images\r\n").unwrap();
        assert_eq!(f.level, "warning");
        assert_eq!(f.key, "registry configs r tls");
    }

    #[test]
    fn garbage_is_not_a_line_and_never_panics() {
        for text in [
            "",
            "hello world",
            "msg=",
            "msg=\"unterminated \\",
            "{not json",
            "{\"msg\": 3}",
            "= = =",
            "level=error msg=\"é\\",
        ] {
            let _ = read(text);
        }
        assert_eq!(read("plain text without fields"), None);
        assert_eq!(read("{\"msg\": 3}").unwrap().msg, "3");
    }
}
