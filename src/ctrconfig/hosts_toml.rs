//! hosts.toml: reading it the way containerd does, reporting what containerd would
//! trip over, and writing the recommended form.
//!
//! containerd logs a hosts.toml it cannot use (without the path on 1.x) and silently
//! falls back to `*.crt` files in the directory, so a broken file looks like "my CA is
//! ignored". ctrdiag names the problem with its line. Any wrong type, unknown
//! capability or malformed client pair makes containerd drop the whole file.

use std::fmt;

use toml_edit::{Array, Document, DocumentMut, Item, Table, Value};

use super::config_toml::carry_edit;
use super::error::{Position, SyntaxError, position_of};
use super::plan::TrustMode;
use super::tree;
use super::version::ContainerdVersion;
use crate::registry::host::RegistryHost;

/// Why a hosts.toml could not be read or edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostsTomlError {
    #[error(
        "hosts.toml is not valid TOML ({0}); containerd ignores it and falls back to *.crt files \
         in the same directory: fix the file or let ctrdiag rewrite it"
    )]
    Syntax(SyntaxError),
    #[error(
        "hosts.toml has {found} at `{key}` where a table is expected: correct that entry or let \
         ctrdiag rewrite the file"
    )]
    NotATable { key: String, found: &'static str },
    #[error(
        "hosts.toml cannot be edited without rewriting unrelated lines; let ctrdiag replace the \
         whole file, or make the change by hand"
    )]
    LayoutNotPreserved,
}

/// A client certificate and its key; no key means the key is in the certificate file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPair {
    pub cert: String,
    pub key: Option<String>,
}

/// Settings of one endpoint (a `[host."URL"]` table, or the top level for `server`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSettings {
    /// `None` means containerd's default: pull, resolve and push.
    pub capabilities: Option<Vec<String>>,
    pub ca: Vec<String>,
    pub skip_verify: Option<bool>,
    pub client: Vec<ClientPair>,
    pub override_path: bool,
}

/// A `[host."URL"]` entry, in file order (containerd tries them in that order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub url: String,
    pub settings: HostSettings,
    pub position: Option<Position>,
}

/// Something that makes containerd drop the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostsProblemKind {
    /// No `[host."..."]` table: ``invalid `host` tree`` on 1.x up to 1.7.31.
    NoHostTable,
    WrongType {
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    UnknownCapability {
        value: String,
    },
    /// A `client` pair that is not exactly `[cert, key]`.
    BadClientPair {
        key: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsProblem {
    pub kind: HostsProblemKind,
    pub position: Option<Position>,
}

impl fmt::Display for HostsProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.position {
            write!(f, "{p}: ")?;
        }
        match &self.kind {
            HostsProblemKind::NoHostTable => f.write_str(
                "no [host.\"https://...\"] table: containerd 1.x before 1.7.32 rejects the file with \
                 \"invalid `host` tree\"; add a [host.\"<server URL>\"] table",
            ),
            HostsProblemKind::WrongType {
                key,
                expected,
                found,
            } => write!(
                f,
                "`{key}` is {found}, containerd expects {expected}; the whole file is ignored"
            ),
            HostsProblemKind::UnknownCapability { value } => write!(
                f,
                "unknown capability {value:?}: only \"pull\", \"resolve\" and \"push\" exist; the whole file is ignored"
            ),
            HostsProblemKind::BadClientPair { key } => write!(
                f,
                "`{key}` must be a certificate path or a [cert, key] pair; the whole file is ignored"
            ),
        }
    }
}

/// A parsed hosts.toml that prints back exactly as read.
#[derive(Debug, Clone)]
pub struct HostsToml {
    /// The text as read: what `Display` prints and what edits are applied to.
    text: String,
    doc: DocumentMut,
    server: Option<String>,
    top: HostSettings,
    hosts: Vec<HostEntry>,
    has_host_table: bool,
    problems: Vec<HostsProblem>,
}

impl fmt::Display for HostsToml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

const CAPABILITIES: [&str; 3] = ["pull", "resolve", "push"];

impl HostsToml {
    /// Parses a hosts.toml. Only TOML syntax errors fail; what containerd would reject
    /// is reported by [`HostsToml::problems`].
    pub fn parse(text: &str) -> Result<HostsToml, HostsTomlError> {
        let spanned = Document::parse(text)
            .map_err(|e| HostsTomlError::Syntax(SyntaxError::from_toml(text, &e)))?;
        let mut r = Reader {
            text,
            problems: Vec::new(),
        };
        let root = spanned.as_item();
        let server = root.get("server").and_then(|i| r.string(i, "server"));
        let top = r.settings(root, "");
        let mut hosts = Vec::new();
        let mut has_host_table = false;
        if let Some(h) = root.get("host") {
            match h.as_table_like() {
                Some(t) => {
                    has_host_table = true;
                    for (url, entry) in t.iter() {
                        let prefix = format!("host.{:?}.", url);
                        if !entry.is_table_like() {
                            r.wrong(entry, &format!("host.{url:?}"), "a table");
                            continue;
                        }
                        let key_span = t.key(url).and_then(|k| k.span());
                        hosts.push(HostEntry {
                            url: url.to_string(),
                            settings: r.settings(entry, &prefix),
                            position: position_of(text, key_span.or_else(|| entry.span())),
                        });
                    }
                }
                None => r.wrong(h, "host", "a table"),
            }
        }
        let mut problems = r.problems;
        // File order, so the first problem reported is the first an editor shows.
        problems.sort_by_key(|p| (p.position.is_none(), p.position));
        Ok(HostsToml {
            text: text.to_string(),
            doc: spanned.into_mut(),
            server,
            top,
            hosts,
            has_host_table,
            problems,
        })
    }

    /// The document ctrdiag recommends for `host`: `server` plus a `[host."URL"]` table
    /// (which every version accepts) with pull/resolve only (never push), and `ca`,
    /// `skip_verify = true`, or an `http://` URL for a plain-HTTP registry.
    pub fn recommended(host: &RegistryHost, mode: &TrustMode) -> String {
        let url = server_url(host, mode);
        let mut doc = DocumentMut::new();
        doc.insert("server", Item::Value(Value::from(url.as_str())));
        if let Some(mut k) = doc.key_mut("server") {
            k.leaf_decor_mut().set_prefix(format!(
                "# Registry settings for {host}, written by ctrdiag.\n"
            ));
        }
        let mut entry = Table::new();
        apply_trust(&mut entry, mode);
        let mut hosts = Table::new();
        hosts.set_implicit(true);
        hosts.insert(&url, Item::Table(entry));
        doc.insert("host", Item::Table(hosts));
        doc.to_string()
    }

    /// This file changed so that `host` is trusted as `mode` says: `server` is set, and
    /// the `[host."URL"]` table gets `ca` / `skip_verify` (and `capabilities` if it had
    /// none). Everything else (mirrors, headers, comments) is kept.
    pub fn with_trust(
        &self,
        host: &RegistryHost,
        mode: &TrustMode,
    ) -> Result<String, HostsTomlError> {
        let url = server_url(host, mode);
        let mut doc = self.doc.clone();
        let not_table = |e: tree::NotATable| HostsTomlError::NotATable {
            key: e.path,
            found: e.found,
        };
        tree::set_value(doc.as_item_mut(), "server", Value::from(url.as_str()), &[])
            .map_err(not_table)?;
        let path = ["host", url.as_str()];
        let entry = tree::ensure_table(doc.as_item_mut(), &path).map_err(not_table)?;
        let tl = entry.as_table_like().map(|t| {
            (
                t.contains_key("capabilities"),
                t.get("ca").and_then(Item::as_array).cloned(),
            )
        });
        let (has_caps, ca_array) = tl.unwrap_or((false, None));
        if !has_caps {
            tree::set_value(entry, "capabilities", pull_resolve(), &path).map_err(not_table)?;
        }
        match mode {
            TrustMode::Ca(ca) => {
                let value = match ca_array {
                    Some(mut arr) if !arr.iter().any(|v| v.as_str() == Some(ca)) => {
                        arr.push(ca.as_str());
                        Value::Array(arr)
                    }
                    Some(arr) => Value::Array(arr),
                    None => Value::from(ca.as_str()),
                };
                tree::set_value(entry, "ca", value, &path).map_err(not_table)?;
            }
            TrustMode::SkipVerify => {
                tree::set_value(entry, "skip_verify", Value::from(true), &path)
                    .map_err(not_table)?
            }
            TrustMode::PlainHttp => {}
        }
        carry_edit(&self.text, &self.doc, &doc).ok_or(HostsTomlError::LayoutNotPreserved)
    }

    pub fn server(&self) -> Option<&str> {
        self.server.as_deref()
    }

    /// Top-level settings (they apply to `server`).
    pub fn top_level(&self) -> &HostSettings {
        &self.top
    }

    pub fn hosts(&self) -> &[HostEntry] {
        &self.hosts
    }

    /// What makes `version` drop this file. Empty means containerd uses it.
    pub fn problems(&self, version: &ContainerdVersion) -> Vec<HostsProblem> {
        let mut out = Vec::new();
        if !self.has_host_table && version.requires_host_table() {
            out.push(HostsProblem {
                kind: HostsProblemKind::NoHostTable,
                position: None,
            });
        }
        out.extend(self.problems.iter().cloned());
        out
    }
}

/// `https://host[:port]`, or `http://` for a plain-HTTP registry.
pub fn server_url(host: &RegistryHost, mode: &TrustMode) -> String {
    match mode {
        TrustMode::PlainHttp => format!("http://{host}"),
        TrustMode::Ca(_) | TrustMode::SkipVerify => format!("https://{host}"),
    }
}

fn pull_resolve() -> Value {
    Value::Array(Array::from_iter(["pull", "resolve"]))
}

fn apply_trust(entry: &mut Table, mode: &TrustMode) {
    entry.insert("capabilities", Item::Value(pull_resolve()));
    match mode {
        TrustMode::Ca(ca) => {
            entry.insert("ca", Item::Value(Value::from(ca.as_str())));
        }
        TrustMode::SkipVerify => {
            entry.insert("skip_verify", Item::Value(Value::from(true)));
        }
        TrustMode::PlainHttp => {}
    }
}

/// Collects problems while reading, with positions in the original text.
struct Reader<'t> {
    text: &'t str,
    problems: Vec<HostsProblem>,
}

impl Reader<'_> {
    fn wrong(&mut self, item: &Item, key: &str, expected: &'static str) {
        self.problems.push(HostsProblem {
            kind: HostsProblemKind::WrongType {
                key: key.to_string(),
                expected,
                found: tree::kind(item),
            },
            position: position_of(self.text, item.span()),
        });
    }

    fn string(&mut self, item: &Item, key: &str) -> Option<String> {
        match item.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.wrong(item, key, "a string");
                None
            }
        }
    }

    fn bool(&mut self, item: &Item, key: &str) -> Option<bool> {
        match item.as_bool() {
            Some(b) => Some(b),
            None => {
                self.wrong(item, key, "a boolean");
                None
            }
        }
    }

    /// Strings of an array value, reporting non-strings.
    fn strings(&mut self, item: &Item, key: &str, expected: &'static str) -> Vec<String> {
        let Some(arr) = item.as_array() else {
            self.wrong(item, key, expected);
            return Vec::new();
        };
        let mut out = Vec::new();
        for v in arr.iter() {
            match v.as_str() {
                Some(s) => out.push(s.to_string()),
                None => self.problems.push(HostsProblem {
                    kind: HostsProblemKind::WrongType {
                        key: key.to_string(),
                        expected,
                        found: "an array with a non-string element",
                    },
                    position: position_of(self.text, v.span()),
                }),
            }
        }
        out
    }

    fn settings(&mut self, table: &Item, prefix: &str) -> HostSettings {
        let mut s = HostSettings::default();
        let key = |k: &str| format!("{prefix}{k}");
        if let Some(i) = table.get("capabilities") {
            let caps = self.strings(i, &key("capabilities"), "an array of strings");
            for c in &caps {
                if !CAPABILITIES.contains(&c.to_ascii_lowercase().as_str()) {
                    self.problems.push(HostsProblem {
                        kind: HostsProblemKind::UnknownCapability { value: c.clone() },
                        position: position_of(self.text, i.span()),
                    });
                }
            }
            s.capabilities = Some(caps);
        }
        if let Some(i) = table.get("ca") {
            s.ca = match i.as_str() {
                Some(one) => vec![one.to_string()],
                None => self.strings(i, &key("ca"), "a string or an array of strings"),
            };
        }
        if let Some(i) = table.get("skip_verify") {
            s.skip_verify = self.bool(i, &key("skip_verify"));
        }
        if let Some(i) = table.get("override_path") {
            s.override_path = self.bool(i, &key("override_path")).unwrap_or(false);
        }
        if let Some(i) = table.get("dial_timeout") {
            self.string(i, &key("dial_timeout"));
        }
        if let Some(i) = table.get("header")
            && !i.is_table_like()
        {
            self.wrong(i, &key("header"), "a table");
        }
        if let Some(i) = table.get("client") {
            s.client = self.client(i, &key("client"));
        }
        s
    }

    /// `client`: a path, an array of paths, or an array of `[cert, key]` pairs.
    fn client(&mut self, item: &Item, key: &str) -> Vec<ClientPair> {
        if let Some(one) = item.as_str() {
            return vec![ClientPair {
                cert: one.to_string(),
                key: None,
            }];
        }
        let Some(arr) = item.as_array() else {
            self.wrong(item, key, "a string or an array");
            return Vec::new();
        };
        let mut out = Vec::new();
        for v in arr.iter() {
            if let Some(cert) = v.as_str() {
                out.push(ClientPair {
                    cert: cert.to_string(),
                    key: None,
                });
                continue;
            }
            let pair: Option<Vec<&str>> = v
                .as_array()
                .and_then(|a| a.iter().map(Value::as_str).collect());
            match pair.as_deref() {
                Some([cert, k]) => out.push(ClientPair {
                    cert: cert.to_string(),
                    key: Some(k.to_string()),
                }),
                _ => self.problems.push(HostsProblem {
                    kind: HostsProblemKind::BadClientPair {
                        key: key.to_string(),
                    },
                    position: position_of(self.text, v.span()),
                }),
            }
        }
        out
    }
}
