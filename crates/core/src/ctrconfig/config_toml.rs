//! containerd's config.toml: the facts ctrdiag needs, and byte-preserving edits.
//!
//! Operators keep comments and layout in this file, and the executor shows every
//! change as a diff, so it is edited with toml_edit and never re-serialised: an
//! untouched document prints back byte for byte. Facts are read from the file as it
//! is written (dotted keys, nested or inline tables alike); what containerd makes of
//! `imports` is for `containerd config dump` to tell, not this parser.

use std::fmt;

use toml_edit::{Document, DocumentMut, Item, Value};

use super::endpoint::Endpoint;
use super::error::{Position, SyntaxError, position_of};
use super::plan::InsecureMode;
use super::textpatch;
use super::tree::{self, NotATable};
use crate::registry::host::RegistryHost;

/// Why a config.toml could not be read or edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "config.toml is not valid TOML ({0}); containerd cannot load it either: fix the file, \
         or restore it from a backup, before asking for a plan"
    )]
    Syntax(SyntaxError),
    #[error(
        "config.toml declares `version = {found}`{at}; ctrdiag understands versions 1, 2 and 3: \
         check the file, or use a ctrdiag that knows this containerd",
        at = fmt_at(.position)
    )]
    UnknownVersion {
        found: String,
        position: Option<Position>,
    },
    #[error(
        "config.toml cannot be edited without rewriting unrelated lines (toml_edit re-prints \
         some of its table headers differently); make the change by hand"
    )]
    LayoutNotPreserved,
    #[error(
        "config.toml has {found} at `{key}`{at} where {expected} is expected; containerd would \
         reject it too: correct that entry by hand",
        at = fmt_at(.position)
    )]
    WrongType {
        key: String,
        expected: &'static str,
        found: &'static str,
        position: Option<Position>,
    },
}

fn fmt_at(p: &Option<Position>) -> String {
    p.map(|p| format!(" at {p}")).unwrap_or_default()
}

impl From<NotATable> for ConfigError {
    fn from(e: NotATable) -> Self {
        ConfigError::WrongType {
            key: e.path,
            expected: "a table",
            found: e.found,
            position: None,
        }
    }
}

/// The config file's schema version (its `version` key; absent means 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ConfigVersion {
    V1,
    V2,
    V3,
}

impl ConfigVersion {
    pub fn number(self) -> u32 {
        match self {
            ConfigVersion::V1 => 1,
            ConfigVersion::V2 => 2,
            ConfigVersion::V3 => 3,
        }
    }

    /// Where the CRI registry settings live in this schema: `plugins.cri` (1),
    /// `plugins."io.containerd.grpc.v1.cri"` (2), `plugins."io.containerd.cri.v1.images"` (3).
    pub fn registry_table(self) -> &'static [&'static str] {
        match self {
            ConfigVersion::V1 => &["plugins", "cri", "registry"],
            ConfigVersion::V2 => &["plugins", "io.containerd.grpc.v1.cri", "registry"],
            ConfigVersion::V3 => &["plugins", "io.containerd.cri.v1.images", "registry"],
        }
    }
}

/// `config_path` as written: one directory, or several separated by `:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPath {
    pub raw: String,
    pub position: Option<Position>,
}

impl ConfigPath {
    /// The non-empty roots in the order containerd searches them.
    pub fn roots(&self) -> Vec<&str> {
        self.raw.split(':').filter(|r| !r.is_empty()).collect()
    }

    /// Several roots: silently ignored by 2.1+ when CRI pulls through Transfer.
    pub fn is_multi_root(&self) -> bool {
        self.roots().len() > 1
    }
}

/// A legacy `registry.configs.<host>.tls` table (deprecated since 1.5, ignored by 2.x).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyTls {
    /// The table key as written (usually `host[:port]`).
    pub host: String,
    pub ca_file: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub insecure_skip_verify: Option<bool>,
    /// Keys besides those four, which containerd does not read either: kept so that a
    /// move to hosts.toml refuses rather than drops them.
    pub other_keys: Vec<String>,
    pub position: Option<Position>,
}

/// A legacy `registry.configs.<host>.auth` table. Only the names of its keys are kept:
/// the values are credentials and must never reach a log, a plan or an API answer.
#[derive(Clone, PartialEq, Eq)]
pub struct LegacyAuth {
    pub host: String,
    pub fields: Vec<String>,
    pub position: Option<Position>,
}

impl fmt::Debug for LegacyAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegacyAuth")
            .field("host", &self.host)
            .field("fields", &self.fields)
            .field("values", &"<redacted>")
            .finish()
    }
}

/// A legacy `registry.mirrors.<host>` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyMirror {
    pub host: String,
    pub endpoints: Vec<String>,
    /// Keys besides `endpoint`, which no containerd reads.
    pub other_keys: Vec<String>,
    pub position: Option<Position>,
}

/// What a config.toml says about registries, as written in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFacts {
    pub version: ConfigVersion,
    /// False when the file has no `version` key (then it is read as version 1).
    pub version_declared: bool,
    /// `config_path`, absent when missing or empty (containerd's default is empty).
    pub config_path: Option<ConfigPath>,
    pub legacy_tls: Vec<LegacyTls>,
    pub legacy_auth: Vec<LegacyAuth>,
    pub mirrors: Vec<LegacyMirror>,
    /// Hosts under the deprecated `registry.auths` table.
    pub auths: Vec<String>,
    /// `imports`: other files merged into this one; settings there are invisible here.
    pub imports: Vec<String>,
}

/// How config.toml tells CRI about registries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryMechanism {
    /// `config_path` and hosts.toml.
    HostsDir,
    /// The deprecated `mirrors` / `configs` / `auths` tables.
    Legacy,
    /// Both (on 1.x a trap when the legacy side is `mirrors` or `configs.tls`).
    Both,
    None,
}

impl RegistryMechanism {
    /// The stable name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryMechanism::HostsDir => "hosts_dir",
            RegistryMechanism::Legacy => "legacy",
            RegistryMechanism::Both => "both",
            RegistryMechanism::None => "none",
        }
    }
}

impl ConfigFacts {
    /// Which mechanism the file uses for registries.
    pub fn mechanism(&self) -> RegistryMechanism {
        match (self.config_path.is_some(), self.has_legacy_registry()) {
            (true, true) => RegistryMechanism::Both,
            (true, false) => RegistryMechanism::HostsDir,
            (false, true) => RegistryMechanism::Legacy,
            (false, false) => RegistryMechanism::None,
        }
    }

    /// Any `mirrors`, `configs` or `auths`: deprecated, and on 2.x enough to switch CRI
    /// pulls from the Transfer service to local pull mode.
    pub fn has_legacy_registry(&self) -> bool {
        !self.legacy_tls.is_empty()
            || !self.legacy_auth.is_empty()
            || !self.mirrors.is_empty()
            || !self.auths.is_empty()
    }
}

/// A parsed config.toml that prints back exactly as it was read.
///
/// `Debug` shows the facts only: the text may hold registry passwords.
#[derive(Clone)]
pub struct ConfigToml {
    /// The text as read: what `Display` prints and what edits are applied to.
    text: String,
    doc: DocumentMut,
    facts: ConfigFacts,
}

impl fmt::Debug for ConfigToml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigToml")
            .field("facts", &self.facts)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ConfigToml {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Settings for a legacy `configs.<host>.tls` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyTlsSetting {
    CaFile(String),
    InsecureSkipVerify,
}

impl ConfigToml {
    /// Parses a config.toml. Fails on TOML syntax errors, an unknown `version`, or a
    /// registry setting of the wrong type, each with its line.
    pub fn parse(text: &str) -> Result<ConfigToml, ConfigError> {
        let spanned = Document::parse(text)
            .map_err(|e| ConfigError::Syntax(SyntaxError::from_toml(text, &e)))?;
        let facts = read_facts(text, spanned.as_item())?;
        Ok(ConfigToml {
            text: text.to_string(),
            doc: spanned.into_mut(),
            facts,
        })
    }

    pub fn facts(&self) -> &ConfigFacts {
        &self.facts
    }

    pub fn version(&self) -> ConfigVersion {
        self.facts.version
    }

    /// The file with `config_path` set to `value` (created under the registry table of
    /// this file's schema, with implicit parents, if missing).
    pub fn with_config_path(&self, value: &str) -> Result<String, ConfigError> {
        let reg = self.facts.version.registry_table();
        let mut doc = self.doc.clone();
        let table = tree::ensure_table(doc.as_item_mut(), reg)?;
        tree::set_value(table, "config_path", Value::from(value), reg)?;
        self.finish(&doc)
    }

    /// The file with a legacy `configs.<host>.tls` setting added. Only meaningful on
    /// 1.x without `config_path`; the planner enforces that. A CA file also takes that
    /// table's `insecure_skip_verify` out: it would keep verification off.
    pub fn with_legacy_tls(
        &self,
        host: &RegistryHost,
        setting: &LegacyTlsSetting,
    ) -> Result<String, ConfigError> {
        let host = host.to_string();
        let path = [
            self.facts.version.registry_table(),
            &["configs", &host, "tls"],
        ]
        .concat();
        let mut doc = self.doc.clone();
        let table = tree::ensure_table(doc.as_item_mut(), &path)?;
        match setting {
            LegacyTlsSetting::CaFile(ca) => {
                tree::set_value(table, "ca_file", Value::from(ca.as_str()), &path)?;
                // A CA fix never leaves verification off.
                tree::remove_and_prune(table, &["insecure_skip_verify"])?;
            }
            LegacyTlsSetting::InsecureSkipVerify => {
                tree::set_value(table, "insecure_skip_verify", Value::from(true), &path)?
            }
        }
        self.finish(&doc)
    }

    /// The file with a legacy `mirrors.<host>.endpoint` list: how 1.x without
    /// `config_path` reaches a plain-HTTP registry.
    pub fn with_legacy_mirror(
        &self,
        host: &RegistryHost,
        endpoints: &[String],
    ) -> Result<String, ConfigError> {
        let host = host.to_string();
        let path = [self.facts.version.registry_table(), &["mirrors", &host]].concat();
        let mut doc = self.doc.clone();
        let table = tree::ensure_table(doc.as_item_mut(), &path)?;
        let list: toml_edit::Array = endpoints.iter().map(String::as_str).collect();
        tree::set_value(table, "endpoint", Value::Array(list), &path)?;
        self.finish(&doc)
    }

    /// The file without the registry credentials of `host` (or of every host): its
    /// `configs.<host>.auth` table and its `auths.<host>` entry, with the dotted keys
    /// removed. Everything else stays byte for byte.
    pub fn without_credentials(
        &self,
        host: Option<&RegistryHost>,
    ) -> Result<(String, Vec<String>), ConfigError> {
        let tails: Vec<Vec<&str>> = self
            .facts
            .legacy_auth
            .iter()
            .filter(|a| key_matches(&a.host, host))
            .map(|a| vec!["configs", a.host.as_str(), "auth"])
            .chain(
                self.facts
                    .auths
                    .iter()
                    .filter(|k| {
                        host.is_none_or(|h| {
                            crate::registry::host::registry_of_key(k).as_ref() == Some(h)
                        })
                    })
                    .map(|k| vec!["auths", k.as_str()]),
            )
            .collect();
        self.without_tables(&tails)
    }

    /// The file without legacy `configs.<host>.tls` and `mirrors.<host>` entries for
    /// `host` (or for every host), and the dotted keys of what was removed. `auth`
    /// tables stay: credentials are another step's business.
    pub fn without_overrides(
        &self,
        host: Option<&RegistryHost>,
    ) -> Result<(String, Vec<String>), ConfigError> {
        let tails: Vec<Vec<&str>> = self
            .facts
            .legacy_tls
            .iter()
            .filter(|t| t.host_matches(host))
            .map(|t| vec!["configs", t.host.as_str(), "tls"])
            .chain(
                self.facts
                    .mirrors
                    .iter()
                    .filter(|m| key_matches(&m.host, host))
                    .map(|m| vec!["mirrors", m.host.as_str()]),
            )
            .collect();
        self.without_tables(&tails)
    }

    /// The file without the tables at `tails` (key paths below this schema's registry
    /// table), each pruned with the parents it leaves empty, and the dotted keys of
    /// what was removed.
    pub(crate) fn without_tables(
        &self,
        tails: &[Vec<&str>],
    ) -> Result<(String, Vec<String>), ConfigError> {
        let reg = self.facts.version.registry_table();
        let mut doc = self.doc.clone();
        let mut removed = Vec::new();
        for tail in tails {
            let path = [reg, tail.as_slice()].concat();
            if tree::remove_and_prune(doc.as_item_mut(), &path)? {
                removed.push(tree::dotted(&path));
            }
        }
        if removed.is_empty() {
            return Ok((self.text.clone(), removed));
        }
        Ok((self.finish(&doc)?, removed))
    }

    /// The file without the legacy insecure setting `mode` for `host`, for when an
    /// insecure change's time is up but the file changed since ctrdiag wrote it; and
    /// the dotted keys removed (empty: the file is returned unchanged).
    ///
    /// `SkipVerify` removes `configs.<host>.tls.insecure_skip_verify = true` and the
    /// tls table when that leaves it empty. `PlainHttp` removes the `http://<host>`
    /// endpoint from `mirrors.<host>`, and the mirror entry when no endpoint is left
    /// (reported as the entry; otherwise as its `endpoint` key).
    pub fn without_legacy_insecure(
        &self,
        host: &RegistryHost,
        mode: &InsecureMode,
    ) -> Result<(String, Vec<String>), ConfigError> {
        let mut doc = self.doc.clone();
        let removed = match mode {
            InsecureMode::SkipVerify => self.remove_legacy_skip_verify(&mut doc, host)?,
            InsecureMode::PlainHttp => self.remove_legacy_plain_http(&mut doc, host)?,
        };
        if removed.is_empty() {
            return Ok((self.text.clone(), removed));
        }
        Ok((self.finish(&doc)?, removed))
    }

    /// Removes `insecure_skip_verify = true` from `host`'s tls tables, and each table
    /// that leaves empty; the dotted keys removed.
    fn remove_legacy_skip_verify(
        &self,
        doc: &mut DocumentMut,
        host: &RegistryHost,
    ) -> Result<Vec<String>, ConfigError> {
        let reg = self.facts.version.registry_table();
        let mut removed = Vec::new();
        let insecure = self
            .facts
            .legacy_tls
            .iter()
            .filter(|t| t.host_matches(Some(host)) && t.insecure_skip_verify == Some(true));
        for t in insecure {
            let tls = [reg, &["configs", t.host.as_str(), "tls"]].concat();
            let key = [tls.as_slice(), &["insecure_skip_verify"]].concat();
            tree::remove_and_prune(doc.as_item_mut(), &key)?;
            let emptied = tree::lookup(doc.as_item(), &tls)?
                .and_then(Item::as_table_like)
                .is_some_and(|t| t.is_empty());
            if emptied {
                tree::remove_and_prune(doc.as_item_mut(), &tls)?;
            }
            removed.push(tree::dotted(&key));
        }
        Ok(removed)
    }

    /// Removes `http://<host>` from `host`'s mirror endpoint lists, and each mirror
    /// entry that leaves without endpoints; the dotted keys changed or removed.
    fn remove_legacy_plain_http(
        &self,
        doc: &mut DocumentMut,
        host: &RegistryHost,
    ) -> Result<Vec<String>, ConfigError> {
        let reg = self.facts.version.registry_table();
        let mut removed = Vec::new();
        let plain = |v: &Value| {
            v.as_str()
                .is_some_and(|e| Endpoint::is_plain_http_of(e, host))
        };
        let mirrors = self.facts.mirrors.iter();
        for m in mirrors.filter(|m| key_matches(&m.host, Some(host))) {
            let entry = [reg, &["mirrors", m.host.as_str()]].concat();
            let key = [entry.as_slice(), &["endpoint"]].concat();
            let list = tree::lookup_mut(doc.as_item_mut(), &key)?.and_then(Item::as_array_mut);
            let Some(list) = list else { continue };
            if tree::remove_elements(list, plain) == 0 {
                continue;
            }
            if list.is_empty() {
                tree::remove_and_prune(doc.as_item_mut(), &entry)?;
                removed.push(tree::dotted(&entry));
            } else {
                removed.push(tree::dotted(&key));
            }
        }
        Ok(removed)
    }

    /// The edited tree as text: the original bytes with only the edited lines changed.
    fn finish(&self, edited: &DocumentMut) -> Result<String, ConfigError> {
        carry_edit(&self.text, &self.doc, edited).ok_or(ConfigError::LayoutNotPreserved)
    }
}

/// Applies the difference between `before` and `edited` (both toml_edit trees) to
/// `text`, the source of `before`, and checks the result means exactly `edited`.
pub(crate) fn carry_edit(text: &str, before: &DocumentMut, edited: &DocumentMut) -> Option<String> {
    let after = edited.to_string();
    let out = textpatch::carry_over(text, &before.to_string(), &after)?;
    let same_meaning = out
        .parse::<DocumentMut>()
        .ok()
        .zip(after.parse::<DocumentMut>().ok())
        .is_some_and(|(a, b)| a.to_string() == b.to_string());
    same_meaning.then_some(out)
}

impl LegacyTls {
    fn host_matches(&self, host: Option<&RegistryHost>) -> bool {
        key_matches(&self.host, host)
    }
}

/// Whether a legacy table key names `host` (`None` matches every key). Keys are
/// compared as registry hosts, so `Registry.Example:5000` matches too.
pub(crate) fn key_matches(key: &str, host: Option<&RegistryHost>) -> bool {
    match host {
        None => true,
        Some(h) => key
            .parse::<RegistryHost>()
            .map(|k| &k == h)
            .unwrap_or(false),
    }
}

fn read_facts(text: &str, root: &Item) -> Result<ConfigFacts, ConfigError> {
    let (version, version_declared) = read_version(text, root)?;
    let reg_path = version.registry_table();
    let registry = tree::lookup(root, reg_path)?;
    let mut facts = ConfigFacts {
        version,
        version_declared,
        config_path: None,
        legacy_tls: Vec::new(),
        legacy_auth: Vec::new(),
        mirrors: Vec::new(),
        auths: Vec::new(),
        imports: string_list(text, root, &[], "imports")?.unwrap_or_default(),
    };
    let Some(registry) = registry else {
        return Ok(facts);
    };
    let registry = as_table(text, registry, reg_path)?;
    if let Some(item) = registry.get("config_path") {
        let path = [reg_path, &["config_path"]].concat();
        let raw = expect_str(text, item, &path)?;
        if !raw.is_empty() {
            facts.config_path = Some(ConfigPath {
                raw: raw.to_string(),
                position: position_of(text, item.span()),
            });
        }
    }
    if let Some(configs) = registry.get("configs") {
        let cpath = [reg_path, &["configs"]].concat();
        for (host, entry) in as_table(text, configs, &cpath)?.iter() {
            let epath = [cpath.as_slice(), &[host]].concat();
            let entry = as_table(text, entry, &epath)?;
            let position = position_of(text, entry_key_span(configs, host));
            if let Some(tls) = entry.get("tls") {
                let tpath = [epath.as_slice(), &["tls"]].concat();
                let tls = as_table(text, tls, &tpath)?;
                let s = |k: &str| -> Result<Option<String>, ConfigError> {
                    tls.get(k)
                        .map(|i| {
                            expect_str(text, i, &[tpath.as_slice(), &[k]].concat())
                                .map(str::to_string)
                        })
                        .transpose()
                };
                let insecure = match tls.get("insecure_skip_verify") {
                    None => None,
                    Some(i) => Some(i.as_bool().ok_or_else(|| {
                        wrong(
                            text,
                            i,
                            &[tpath.as_slice(), &["insecure_skip_verify"]].concat(),
                            "a boolean",
                        )
                    })?),
                };
                facts.legacy_tls.push(LegacyTls {
                    host: host.to_string(),
                    ca_file: s("ca_file")?,
                    cert_file: s("cert_file")?,
                    key_file: s("key_file")?,
                    insecure_skip_verify: insecure,
                    other_keys: other_keys(tls, &TLS_KEYS),
                    position,
                });
            }
            if let Some(auth) = entry.get("auth") {
                let apath = [epath.as_slice(), &["auth"]].concat();
                let auth = as_table(text, auth, &apath)?;
                facts.legacy_auth.push(LegacyAuth {
                    host: host.to_string(),
                    fields: auth.iter().map(|(k, _)| k.to_string()).collect(),
                    position,
                });
            }
        }
    }
    if let Some(mirrors) = registry.get("mirrors") {
        let mpath = [reg_path, &["mirrors"]].concat();
        for (host, entry) in as_table(text, mirrors, &mpath)?.iter() {
            let epath = [mpath.as_slice(), &[host]].concat();
            let table = as_table(text, entry, &epath)?;
            facts.mirrors.push(LegacyMirror {
                host: host.to_string(),
                endpoints: string_list(text, entry, &epath, "endpoint")?.unwrap_or_default(),
                other_keys: other_keys(table, &["endpoint"]),
                position: position_of(text, entry_key_span(mirrors, host)),
            });
        }
    }
    if let Some(auths) = registry.get("auths") {
        let apath = [reg_path, &["auths"]].concat();
        facts.auths = as_table(text, auths, &apath)?
            .iter()
            .map(|(k, _)| k.to_string())
            .collect();
    }
    Ok(facts)
}

/// The keys of a legacy `configs.<host>.tls` table that ctrdiag reads.
const TLS_KEYS: [&str; 4] = ["ca_file", "cert_file", "key_file", "insecure_skip_verify"];

/// Keys of `table` other than `known`, in file order.
fn other_keys(table: &dyn toml_edit::TableLike, known: &[&str]) -> Vec<String> {
    table
        .iter()
        .map(|(k, _)| k)
        .filter(|k| !known.contains(k))
        .map(str::to_string)
        .collect()
}

fn read_version(text: &str, root: &Item) -> Result<(ConfigVersion, bool), ConfigError> {
    let Some(item) = root.get("version") else {
        return Ok((ConfigVersion::V1, false));
    };
    let n = item
        .as_integer()
        .ok_or_else(|| wrong(text, item, &["version"], "an integer"))?;
    let version = match n {
        1 => ConfigVersion::V1,
        2 => ConfigVersion::V2,
        3 => ConfigVersion::V3,
        other => {
            return Err(ConfigError::UnknownVersion {
                found: other.to_string(),
                position: position_of(text, item.span()),
            });
        }
    };
    Ok((version, true))
}

/// The span of `key` inside a table-like item, for pointing at a legacy entry.
fn entry_key_span(parent: &Item, key: &str) -> Option<std::ops::Range<usize>> {
    let tl = parent.as_table_like()?;
    let (k, item) = tl.get_key_value(key)?;
    k.span().or_else(|| item.span())
}

fn as_table<'a>(
    text: &str,
    item: &'a Item,
    path: &[&str],
) -> Result<&'a dyn toml_edit::TableLike, ConfigError> {
    item.as_table_like()
        .ok_or_else(|| wrong(text, item, path, "a table"))
}

fn expect_str<'a>(text: &str, item: &'a Item, path: &[&str]) -> Result<&'a str, ConfigError> {
    item.as_str()
        .ok_or_else(|| wrong(text, item, path, "a string"))
}

fn string_list(
    text: &str,
    parent: &Item,
    parent_path: &[&str],
    key: &str,
) -> Result<Option<Vec<String>>, ConfigError> {
    let Some(item) = parent.get(key) else {
        return Ok(None);
    };
    let path = [parent_path, &[key]].concat();
    let arr = item
        .as_array()
        .ok_or_else(|| wrong(text, item, &path, "an array of strings"))?;
    arr.iter()
        .map(|v| {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| ConfigError::WrongType {
                    key: tree::dotted(&path),
                    expected: "an array of strings",
                    found: "an array with a non-string element",
                    position: position_of(text, v.span()),
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn wrong(text: &str, item: &Item, path: &[&str], expected: &'static str) -> ConfigError {
    ConfigError::WrongType {
        key: tree::dotted(path),
        expected,
        found: tree::kind(item),
        position: position_of(text, item.span()),
    }
}
