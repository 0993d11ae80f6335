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
use super::endpoint::Endpoint;
use super::error::{Position, SyntaxError, position_of};
use super::plan::{InsecureMode, TrustMode};
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
    #[error(
        "hosts.toml already sets `{key}` to another value than the one to move there from \
         config.toml; merging would drop one of them: merge the two by hand"
    )]
    Conflict { key: String },
}

/// What taking an insecure setting out of a hosts.toml leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// The file holds no such setting for the host: nothing to do.
    Unchanged,
    /// The new text; bytes unrelated to the setting are unchanged.
    Edited(String),
    /// Nothing would be left (no host entry, no server, no other setting): the caller
    /// takes the whole file out of service instead of leaving an empty one.
    NothingLeft,
}

/// Settings moved from config.toml's legacy tables into one hosts.toml.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MovedSettings {
    pub server: Option<String>,
    /// In the order containerd is to try them.
    pub entries: Vec<MovedEntry>,
}

/// One `[host."URL"]` entry made from a legacy mirror endpoint and/or tls table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MovedEntry {
    pub url: String,
    pub ca: Option<String>,
    pub skip_verify: Option<bool>,
    pub client: Option<ClientPair>,
    pub override_path: bool,
}

impl MovedEntry {
    /// The keys this entry sets, as hosts.toml spells them.
    fn values(&self) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        if let Some(ca) = &self.ca {
            out.push(("ca", Value::from(ca.as_str())));
        }
        if let Some(skip) = self.skip_verify {
            out.push(("skip_verify", Value::from(skip)));
        }
        match &self.client {
            Some(ClientPair {
                cert,
                key: Some(key),
            }) => {
                let pair = Array::from_iter([cert.as_str(), key.as_str()]);
                out.push(("client", Value::Array(Array::from_iter([pair]))));
            }
            Some(ClientPair { cert, key: None }) => {
                out.push(("client", Value::from(cert.as_str())));
            }
            None => {}
        }
        if self.override_path {
            out.push(("override_path", Value::from(true)));
        }
        out
    }
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
    /// Names of the `header` entries (their values may be credentials: never kept).
    pub headers: Vec<String>,
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
    /// none). Everything else (mirrors, headers, comments) is kept. A CA is added to the
    /// entry's own ones (an extra trust anchor costs nothing, dropping one can break a
    /// mirror), and a CA fix removes every `skip_verify` in the file: any one of them
    /// would keep verification off for this registry.
    pub fn with_trust(
        &self,
        host: &RegistryHost,
        mode: &TrustMode,
    ) -> Result<String, HostsTomlError> {
        let url = server_url(host, mode);
        let mut doc = self.doc.clone();
        if let TrustMode::Ca(_) = mode {
            remove_skip_verify(&mut doc, |_| true)?;
        }
        tree::set_value(doc.as_item_mut(), "server", Value::from(url.as_str()), &[])
            .map_err(not_table)?;
        let path = ["host", url.as_str()];
        let entry = tree::ensure_table(doc.as_item_mut(), &path).map_err(not_table)?;
        if entry.get("capabilities").is_none() {
            tree::set_value(entry, "capabilities", pull_resolve(), &path).map_err(not_table)?;
        }
        match mode {
            TrustMode::Ca(ca) => {
                let value = with_ca(entry.get("ca").and_then(Item::as_value), ca);
                tree::set_value(entry, "ca", value, &path).map_err(not_table)?;
            }
            TrustMode::SkipVerify => {
                tree::set_value(entry, "skip_verify", Value::from(true), &path)
                    .map_err(not_table)?
            }
            TrustMode::PlainHttp => {}
        }
        self.finish(&doc)
    }

    /// This file without the insecure setting `mode` for `host`, for when an insecure
    /// change's time is up but the file changed since ctrdiag wrote it.
    ///
    /// `SkipVerify` removes every `skip_verify = true` (top level and every entry).
    /// `PlainHttp` removes the `[host."http://<host>"]` table and handles a
    /// `server = "http://<host>"`: containerd always tries `server` last, and with no
    /// `server` it uses `https://<host>` there. So when other entries remain, `server`
    /// becomes `https://<host>`, which keeps the registry itself named as their
    /// fallback; when none remain it is removed, back to containerd's own default.
    /// This file without its `header` tables (top level and every host entry): the
    /// headers sent with every request, `Authorization` among them.
    pub fn without_headers(&self) -> Result<Removal, HostsTomlError> {
        let mut doc = self.doc.clone();
        if !remove_everywhere(&mut doc, "header", |_| true)? {
            Ok(Removal::Unchanged)
        } else if holds_nothing(&doc) {
            Ok(Removal::NothingLeft)
        } else {
            Ok(Removal::Edited(self.finish(&doc)?))
        }
    }

    pub fn without_insecure(
        &self,
        host: &RegistryHost,
        mode: &InsecureMode,
    ) -> Result<Removal, HostsTomlError> {
        let mut doc = self.doc.clone();
        let changed = match mode {
            InsecureMode::SkipVerify => {
                remove_skip_verify(&mut doc, |i| i.as_bool() == Some(true))?
            }
            InsecureMode::PlainHttp => self.remove_plain_http(&mut doc, host)?,
        };
        if !changed {
            Ok(Removal::Unchanged)
        } else if holds_nothing(&doc) {
            Ok(Removal::NothingLeft)
        } else {
            Ok(Removal::Edited(self.finish(&doc)?))
        }
    }

    /// This file with settings moved from config.toml merged in: `server` and each
    /// `[host."URL"]` entry with the moved keys. Missing entries are appended in order
    /// with pull/resolve, what legacy mirrors allowed; existing ones keep their
    /// capabilities. A key the file already sets to another value is a
    /// [`HostsTomlError::Conflict`]: merging would lose one of them.
    pub(crate) fn with_moved(&self, moved: &MovedSettings) -> Result<String, HostsTomlError> {
        let mut doc = self.doc.clone();
        if let Some(server) = &moved.server {
            merge_value(
                doc.as_item_mut(),
                "server",
                Value::from(server.as_str()),
                &[],
            )?;
        }
        for e in &moved.entries {
            let path = ["host", e.url.as_str()];
            let is_new = !self.hosts.iter().any(|h| h.url == e.url);
            let entry = tree::ensure_table(doc.as_item_mut(), &path).map_err(not_table)?;
            if is_new {
                tree::set_value(entry, "capabilities", pull_resolve(), &path).map_err(not_table)?;
            }
            for (key, value) in e.values() {
                merge_value(entry, key, value, &path)?;
            }
        }
        self.finish(&doc)
    }

    /// Removes `[host."http://<host>"]` and rewrites a `server = "http://<host>"` (see
    /// [`HostsToml::without_insecure`]); whether anything changed.
    fn remove_plain_http(
        &self,
        doc: &mut DocumentMut,
        host: &RegistryHost,
    ) -> Result<bool, HostsTomlError> {
        let (plain, others): (Vec<&HostEntry>, Vec<&HostEntry>) = self
            .hosts
            .iter()
            .partition(|e| Endpoint::is_plain_http_of(&e.url, host));
        for e in &plain {
            tree::remove_and_prune(doc.as_item_mut(), &["host", e.url.as_str()])
                .map_err(not_table)?;
        }
        let plain_server = self
            .server
            .as_deref()
            .is_some_and(|s| Endpoint::is_plain_http_of(s, host));
        if plain_server && others.is_empty() {
            tree::remove_and_prune(doc.as_item_mut(), &["server"]).map_err(not_table)?;
        } else if plain_server {
            let https = format!("https://{host}");
            tree::set_value(doc.as_item_mut(), "server", Value::from(https), &[])
                .map_err(not_table)?;
        }
        Ok(plain_server || !plain.is_empty())
    }

    /// The edited tree as text: the original bytes with only the edited lines changed.
    fn finish(&self, edited: &DocumentMut) -> Result<String, HostsTomlError> {
        carry_edit(&self.text, &self.doc, edited).ok_or(HostsTomlError::LayoutNotPreserved)
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

fn not_table(e: tree::NotATable) -> HostsTomlError {
    HostsTomlError::NotATable {
        key: e.path,
        found: e.found,
    }
}

/// Removes `skip_verify` from the top level and from every `[host."..."]` entry where
/// `pick` accepts its value; whether any was removed.
fn remove_skip_verify(
    doc: &mut DocumentMut,
    pick: impl Fn(&Item) -> bool,
) -> Result<bool, HostsTomlError> {
    remove_everywhere(doc, "skip_verify", pick)
}

/// Removes `key` from the top level and from every `[host."..."]` entry where `pick`
/// accepts its value; whether any was removed.
fn remove_everywhere(
    doc: &mut DocumentMut,
    key: &str,
    pick: impl Fn(&Item) -> bool,
) -> Result<bool, HostsTomlError> {
    let mut paths = Vec::new();
    if doc.get(key).is_some_and(&pick) {
        paths.push(vec![key.to_string()]);
    }
    if let Some(hosts) = doc.get("host").and_then(Item::as_table_like) {
        for (url, entry) in hosts.iter() {
            if entry.get(key).is_some_and(&pick) {
                paths.push(vec!["host".into(), url.to_string(), key.into()]);
            }
        }
    }
    for path in &paths {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        tree::remove_and_prune(doc.as_item_mut(), &path).map_err(not_table)?;
    }
    Ok(!paths.is_empty())
}

/// Whether a document says nothing at all: no key, at most empty tables.
fn holds_nothing(doc: &DocumentMut) -> bool {
    doc.iter()
        .all(|(_, item)| item.as_table_like().is_some_and(|t| t.is_empty()))
}

/// `ca` with `ca` added: a string when it is the only one, else an array of all.
fn with_ca(existing: Option<&Value>, ca: &str) -> Value {
    let mut all = match existing {
        Some(Value::Array(arr)) => arr.clone(),
        Some(Value::String(one)) if one.value() != ca => Array::from_iter([one.value().as_str()]),
        _ => return Value::from(ca),
    };
    if !all.iter().any(|v| v.as_str() == Some(ca)) {
        all.push(ca);
    }
    Value::Array(all)
}

/// Sets `key` unless the table already has it: the same value is kept, another one
/// is a conflict.
fn merge_value(
    table: &mut Item,
    key: &str,
    wanted: Value,
    path: &[&str],
) -> Result<(), HostsTomlError> {
    match table.get(key) {
        None => tree::set_value(table, key, wanted, path).map_err(not_table),
        Some(Item::Value(have)) if holds(have, &wanted) => Ok(()),
        Some(_) => Err(HostsTomlError::Conflict {
            key: tree::dotted(&[path, &[key]].concat()),
        }),
    }
}

/// Whether `have` already says `wanted`: the same value, or an array holding it.
fn holds(have: &Value, wanted: &Value) -> bool {
    same(have, wanted)
        || have
            .as_array()
            .is_some_and(|a| a.iter().any(|v| same(v, wanted)))
}

/// The same TOML value, whatever its spelling (quotes, spaces, comments).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.value() == y.value(),
        (Value::Boolean(x), Value::Boolean(y)) => x.value() == y.value(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| same(a, b))
        }
        _ => false,
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
        if let Some(i) = table.get("header") {
            match i.as_table_like() {
                Some(t) => s.headers = t.iter().map(|(k, _)| k.to_string()).collect(),
                None => self.wrong(i, &key("header"), "a table"),
            }
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
