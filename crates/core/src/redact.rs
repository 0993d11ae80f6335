//! Secrets never reach a person: text from the node's files (config.toml, hosts.toml,
//! PEM bundles) is passed through [`secrets`] before it is shown in a diff, a piece of
//! evidence or a log line. Private keys become `(private key, 1704 bytes)`; the values
//! of hosts.toml `header` tables (an `Authorization` header is a credential) and of
//! credential keys (`password`, `auth`, `identitytoken`, `registrytoken`) become
//! `"(secret, N bytes)"`, in TOML (`key = value`), in docker-style JSON
//! (`"key": value`) and in block YAML (`key: value`, k3s's registries.yaml). Pure: text in, text out. The journal keeps the real bytes (an undo
//! needs them); it is readable by root only.

/// Keys whose values are credentials wherever they appear (containerd's CRI `auth`
/// tables, docker-style configs).
const SECRET_KEYS: [&str; 5] = [
    "password",
    "auth",
    "identitytoken",
    "identity_token",
    "registrytoken",
];

/// `text` with every secret it holds replaced by a placeholder that tells its kind and
/// size; everything else is unchanged.
pub fn secrets(text: &str) -> String {
    let text = private_keys(text);
    yaml_values(&json_values(&toml_values(&text)))
}

/// Block YAML `key: value` lines whose (plain, unquoted) key is a credential key and
/// whose value is on the line: k3s's and RKE2's registries.yaml keep `auth:` that way.
/// A trailing comment stays; a key with nothing after the colon (a nested block) is
/// not a value.
fn yaml_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let content = body.trim_start_matches([' ', '-']);
        let secret = content.split_once(':').and_then(|(key, rest)| {
            let plain =
                !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            let after = rest.strip_prefix(' ')?;
            let lead = after.len() - after.trim_start().len();
            let value = match after.find(" #") {
                Some(i) => &after[..i],
                None => after,
            }
            .trim();
            let secret = plain && SECRET_KEYS.iter().any(|s| key.eq_ignore_ascii_case(s));
            // Where the value starts in `content`: after the key, `:`, a space and more.
            let at = key.len() + 2 + lead;
            (secret && !value.is_empty() && !value.starts_with("\"(secret,")).then_some((at, value))
        });
        match secret {
            Some((at, value)) => {
                let at = body.len() - content.len() + at;
                out.push_str(&body[..at]);
                out.push_str(&format!("\"(secret, {} bytes)\"", value.len()));
                out.push_str(&line[at + value.len()..]);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// JSON `"key": "value"` pairs whose key is a credential key, wherever they stand:
/// docker writes one pair a line, other tools write a whole config on one line. A
/// string never spans lines in JSON, so a quote left open ends at the line's end and
/// text that is not JSON (TOML, PEM) cannot shift the scan past it.
fn json_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(open) = rest.find('"') {
        out.push_str(&rest[..open]);
        let key_len = string_literal_len(&rest[open..]);
        let key = &rest[open..open + key_len];
        out.push_str(key);
        rest = &rest[open + key_len..];
        let after_key = rest.trim_start_matches([' ', '\t']);
        let Some(after_colon) = after_key.strip_prefix(':') else {
            continue;
        };
        let value_at = after_colon.trim_start_matches([' ', '\t']);
        let name = key.trim_matches('"');
        let secret = SECRET_KEYS.iter().any(|s| name.eq_ignore_ascii_case(s))
            || name.eq_ignore_ascii_case("authorization");
        if !secret || !value_at.starts_with('"') {
            continue;
        }
        let value_len = string_literal_len(value_at);
        out.push_str(&rest[..rest.len() - value_at.len()]);
        out.push_str(&format!("\"(secret, {value_len} bytes)\""));
        rest = &value_at[value_len..];
    }
    out.push_str(rest);
    out
}

/// The length of the JSON string literal `text` starts with (its quotes included),
/// or up to the line's end when it is not closed there.
fn string_literal_len(text: &str) -> usize {
    let mut escaped = false;
    for (i, c) in text.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return i + 1,
            '\n' => return i,
            _ => {}
        }
    }
    text.len()
}

/// PEM private key blocks, whole, as `(private key, N bytes)`.
fn private_keys(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_key_begin(rest) {
        out.push_str(&rest[..start]);
        let block = &rest[start..];
        let end = block
            .find("-----END ")
            .and_then(|e| block[e..].find("PRIVATE KEY-----").map(|k| e + k + 16))
            .unwrap_or(block.len());
        out.push_str(&format!("(private key, {end} bytes)"));
        rest = &block[end..];
    }
    out.push_str(rest);
    out
}

/// Where the next `-----BEGIN ... PRIVATE KEY-----` starts.
fn find_key_begin(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find("-----BEGIN ") {
        let at = from + i;
        let line_end = text[at..].find('\n').map_or(text.len(), |n| at + n);
        if text[at..line_end].contains("PRIVATE KEY-----") {
            return Some(at);
        }
        from = at + 11;
    }
    None
}

/// TOML `key = value` lines whose value is a secret: any key inside a `header` table
/// (or a `header = {...}` inline table), and the credential keys. Multi-line values
/// (arrays, `"""` strings) are replaced whole. Works line by line, so it also reads
/// text that is not valid TOML as well as it can.
fn toml_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut table: Vec<String> = Vec::new();
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('[') {
            table = header_path(trimmed);
            out.push_str(line);
            continue;
        }
        let Some((key, value)) = split_assignment(line) else {
            out.push_str(line);
            continue;
        };
        let path: Vec<String> = table.iter().cloned().chain(key_path(key)).collect();
        if !is_secret(&path) {
            out.push_str(line);
            continue;
        }
        // Take the whole value, across lines when it continues.
        let mut raw = value.to_string();
        while !value_complete(&raw) {
            match lines.next() {
                Some(next) => raw.push_str(next),
                None => break,
            }
        }
        let newline = if raw.ends_with('\n') { "\n" } else { "" };
        let value_len = raw.trim_end().len();
        out.push_str(&line[..line.len() - value.len()]);
        out.push_str(&format!("\"(secret, {value_len} bytes)\"{newline}"));
    }
    out
}

fn is_secret(path: &[String]) -> bool {
    path.iter().any(|s| s.eq_ignore_ascii_case("header"))
        || path
            .last()
            .is_some_and(|k| SECRET_KEYS.iter().any(|s| k.eq_ignore_ascii_case(s)))
}

/// `[a."b.c".d]` / `[[a.b]]` → `["a", "b.c", "d"]`.
fn header_path(line: &str) -> Vec<String> {
    let inner = line.trim_start_matches('[');
    let end = inner.find(']').unwrap_or(inner.len());
    key_path(&inner[..end])
}

/// The segments of a dotted key, quotes removed.
fn key_path(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote = None;
    for c in key.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '.') => out.push(std::mem::take(&mut cur).trim().to_string()),
            (_, c) => cur.push(c),
        }
    }
    out.push(cur.trim().to_string());
    out
}

/// `key = value` at the start of a line (not inside a string): the key and the rest
/// of the line after `=` (leading spaces kept out of the value).
fn split_assignment(line: &str) -> Option<(&str, &str)> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('#') || trimmed.is_empty() {
        return None;
    }
    let mut quote = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '=') => {
                let value = line[i + 1..].trim_start();
                return Some((&line[..i], value));
            }
            _ => {}
        }
    }
    None
}

/// Whether a value's text is complete: brackets and braces balanced outside strings,
/// and no `"""`/`'''` string left open.
fn value_complete(raw: &str) -> bool {
    for fence in ["\"\"\"", "'''"] {
        if raw.trim_start().starts_with(fence) {
            return raw.trim_start()[3..].contains(fence);
        }
    }
    let mut depth = 0i32;
    let mut quote = None;
    let mut escaped = false;
    for c in raw.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '"' | '\'' => quote = Some(c),
                '[' | '{' => depth += 1,
                ']' | '}' => depth -= 1,
                '#' => break,
                _ => {}
            },
        }
    }
    depth <= 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----";

    #[test]
    fn yaml_credentials_are_hidden_and_the_rest_stays() {
        let text = "configs:\n  \"r.test\":\n    auth:\n      username: robot\n      password: s3cret   # monthly\n      auth: \"dXNlcjpwYXNz\"\n      identity_token: tok\n";
        let out = secrets(text);
        for secret in ["s3cret", "dXNlcjpwYXNz", "tok\n"] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(
            out.contains("      password: \"(secret, 6 bytes)\"   # monthly\n"),
            "{out}"
        );
        assert!(out.contains("    auth:\n      username: robot\n"), "{out}");
        // TOML and JSON secrets are still hidden once, not twice.
        assert_eq!(
            secrets("\"password\": \"x\"\n"),
            "\"password\": \"(secret, 3 bytes)\"\n"
        );
    }

    #[test]
    fn private_keys_become_their_size() {
        let text = format!("before\n{KEY}\nafter\n");
        let out = secrets(&text);
        assert_eq!(
            out,
            format!("before\n(private key, {} bytes)\nafter\n", KEY.len())
        );
        let ec = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
        assert!(!secrets(ec).contains("AAAA"));
        // Certificates are public and stay.
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert_eq!(secrets(cert), cert);
    }

    #[test]
    fn header_values_are_hidden_in_every_spelling() {
        let text = r#"server = "https://r.test:5000"

[host."https://r.test:5000"]
  capabilities = ["pull", "resolve"]
  [host."https://r.test:5000".header]
    Authorization = "Basic c2VjcmV0OnNlY3JldA=="
    X-Other = [
      "Bearer abc.def",
    ]

[host."https://m.test".header.x-custom]
  value = "hidden"

[host."https://n.test"]
  header = { Authorization = "Bearer inline" }

[host."https://o.test"]
  header.Authorization = "Bearer dotted"
"#;
        let out = secrets(text);
        for secret in ["c2VjcmV0", "abc.def", "hidden", "inline", "dotted"] {
            assert!(!out.contains(secret), "{secret} leaked:\n{out}");
        }
        assert!(
            out.contains("Authorization = \"(secret, 28 bytes)\"\n"),
            "{out}"
        );
        assert!(
            out.contains("capabilities = [\"pull\", \"resolve\"]"),
            "{out}"
        );
        assert!(out.contains("server = \"https://r.test:5000\""), "{out}");
        // The redacted text still parses: a diff of it reads like the file.
        toml_edit::DocumentMut::from_str(&out).expect("still TOML");
    }

    #[test]
    fn credentials_in_config_toml_are_hidden_and_the_rest_stays() {
        let text = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"r.test\".auth]\n  username = \"robot\"\n  password = 'hunter2'\n  auth = \"cm9ib3Q6aHVudGVyMg==\"\n  identitytoken = \"\"\"\neyJ-token\n\"\"\"\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n";
        let out = secrets(text);
        for secret in ["hunter2", "cm9ib3Q6", "eyJ-token"] {
            assert!(!out.contains(secret), "{secret} leaked:\n{out}");
        }
        assert!(out.contains("username = \"robot\""), "{out}");
        assert!(
            out.contains("config_path = \"/etc/containerd/certs.d\""),
            "{out}"
        );
        toml_edit::DocumentMut::from_str(&out).expect("still TOML");
    }

    #[test]
    fn docker_config_secrets_are_hidden_and_the_rest_stays() {
        let text = "{\n\t\"auths\": {\n\t\t\"r.test:5000\": {\n\t\t\t\"auth\": \"cm9ib3Q6aHVudGVy\",\n\t\t\t\"identitytoken\": \"eyJhbGci\"\n\t\t}\n\t},\n\t\"credsStore\": \"desktop\"\n}\n";
        let out = secrets(text);
        for secret in ["cm9ib3Q6", "eyJhbGci"] {
            assert!(!out.contains(secret), "{secret} leaked:\n{out}");
        }
        assert!(
            out.contains("\"r.test:5000\"") && out.contains("desktop"),
            "{out}"
        );
        assert!(
            out.contains("\t\t\t\"auth\": \"(secret, 18 bytes)\",\n"),
            "{out}"
        );
    }

    #[test]
    fn one_line_json_and_escaped_quotes_are_read_whole() {
        let text = r#"{"auths":{"r.test":{"registrytoken" : "eyJ\"zzq\"en","auth":"c2Vj"}},"HttpHeaders":{"Authorization":"Bearer x1"}}"#;
        let out = secrets(text);
        for secret in ["eyJ", "zzq", "c2Vj", "x1"] {
            assert!(!out.contains(secret), "{secret} leaked:\n{out}");
        }
        assert_eq!(
            out,
            r#"{"auths":{"r.test":{"registrytoken" : "(secret, 14 bytes)","auth":"(secret, 6 bytes)"}},"HttpHeaders":{"Authorization":"(secret, 11 bytes)"}}"#
        );
        serde_json::from_str::<serde_json::Value>(&out).expect("still JSON");
        // An unclosed quote does not swallow the next line's secret.
        let broken = "{\"a\": \"open\n\"auth\": \"c2Vj\"\n";
        assert!(!secrets(broken).contains("c2Vj"), "{}", secrets(broken));
    }

    #[test]
    fn text_without_secrets_is_unchanged() {
        let text = "# a comment = with equals\nversion = 3\n[plugins.\"io.containerd.cri.v1.images\".registry]\n  config_path = \"/x\"\n";
        assert_eq!(secrets(text), text);
    }

    use std::str::FromStr;
}
