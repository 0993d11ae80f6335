//! Registry credentials on a node: where they are, never what they are, and the edits
//! that take one registry's (or every registry's) out. The kubelet reads docker-style
//! config files (`config.json`, legacy `.dockercfg`); containerd's CRI reads the
//! `auths` and `configs.<host>.auth` tables of config.toml; hosts.toml `header` tables
//! send their values (an `Authorization` header) with every request; and a kubelet
//! credential provider config names plugins that hand out credentials on demand.
//! Pure: file texts in, entries and plans out. No secret value is ever kept.

use serde_json::{Map, Value};

use crate::ctrconfig::hosts_dir::{DEFAULT_DIR, join, own_dir_names};
use crate::ctrconfig::{ConfigError, HostsToml, HostsTomlError, NodeFacts, NodeFiles, Removal};
use crate::plan::{Plan, Step};
use crate::registry::host::{RegistryHost, registry_of_key};

/// What kind of credential an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CredKind {
    /// A user name and password (or their base64 `auth`).
    BasicAuth,
    /// An OAuth identity (refresh) token.
    IdentityToken,
    /// A bearer token for the registry.
    RegistryToken,
    /// `credHelpers`: a helper program asked per registry.
    CredentialHelper,
    /// `credsStore`: a helper program asked for every registry.
    CredentialStore,
    /// A hosts.toml `header` sent with every request.
    Header,
    /// A kubelet credential provider plugin matching the registry.
    CredentialProvider,
}

impl CredKind {
    /// The stable name the API uses.
    pub fn as_str(self) -> &'static str {
        match self {
            CredKind::BasicAuth => "basic_auth",
            CredKind::IdentityToken => "identity_token",
            CredKind::RegistryToken => "registry_token",
            CredKind::CredentialHelper => "credential_helper",
            CredKind::CredentialStore => "credential_store",
            CredKind::Header => "header",
            CredKind::CredentialProvider => "credential_provider",
        }
    }
}

/// One place that holds credentials for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredEntry {
    pub file: String,
    /// `host[:port]`, or `*` for every registry (a credential store, `_default`), or a
    /// credential provider's image pattern.
    pub registry: String,
    pub kind: CredKind,
    /// Where in the file, for people: `auths."r.test:5000"`, `header.Authorization`.
    pub key: String,
}

impl CredEntry {
    /// Whether the entry is for `host` (`None`: every entry is).
    pub fn is_for(&self, host: Option<&RegistryHost>) -> bool {
        match host {
            None => true,
            Some(h) => self.registry == h.to_string() || self.registry == "*",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredsError {
    #[error(
        "{file} is not valid JSON (line {line}, column {column}: {message}); it was left as it is: fix it by hand"
    )]
    Json {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file} is not a docker config file: {what}; it was left as it is")]
    Shape { file: String, what: String },
    #[error("{file}: {source}")]
    Config { file: String, source: ConfigError },
    #[error("{file}: {source}")]
    HostsToml {
        file: String,
        source: HostsTomlError,
    },
    #[error("nothing to clean: no registry credentials{} on this node", .host.as_ref().map(|h| format!(" for {h}")).unwrap_or_default())]
    NothingToClean { host: Option<RegistryHost> },
}

fn json(file: &str, text: &str) -> Result<Map<String, Value>, CredsError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(CredsError::Shape {
            file: file.to_string(),
            what: "the top level is not an object".into(),
        }),
        Err(e) => Err(CredsError::Json {
            file: file.to_string(),
            line: e.line(),
            column: e.column(),
            message: e
                .to_string()
                .split(" at line")
                .next()
                .unwrap_or_default()
                .to_string(),
        }),
    }
}

/// The registry a docker config key names, for people (`*` when it names none).
fn registry_name(key: &str) -> String {
    registry_of_key(key).map_or_else(|| key.to_string(), |h| h.to_string())
}

/// The kinds of credential an `auths` entry holds.
fn auth_kinds(entry: &Value) -> Vec<CredKind> {
    let has = |k: &str| {
        entry
            .get(k)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
    };
    let mut kinds = Vec::new();
    if has("auth") || has("password") {
        kinds.push(CredKind::BasicAuth);
    }
    if has("identitytoken") {
        kinds.push(CredKind::IdentityToken);
    }
    if has("registrytoken") {
        kinds.push(CredKind::RegistryToken);
    }
    kinds
}

/// Whether a docker config is in the legacy `.dockercfg` form: registries at the top
/// level, each with an `auth`.
fn is_legacy_dockercfg(m: &Map<String, Value>) -> bool {
    !m.is_empty()
        && !m.contains_key("auths")
        && m.values()
            .all(|v| v.get("auth").is_some() || v.get("email").is_some())
}

/// The credentials a docker-style config file (`config.json`, `.dockercfg`) holds.
pub fn docker_config_entries(file: &str, text: &str) -> Result<Vec<CredEntry>, CredsError> {
    let m = json(file, text)?;
    let entry = |registry: String, kind, key: String| CredEntry {
        file: file.to_string(),
        registry,
        kind,
        key,
    };
    let mut out = Vec::new();
    let auths = if is_legacy_dockercfg(&m) {
        Some((&m, ""))
    } else {
        m.get("auths")
            .and_then(Value::as_object)
            .map(|a| (a, "auths."))
    };
    if let Some((auths, prefix)) = auths {
        for (key, value) in auths {
            for kind in auth_kinds(value) {
                out.push(entry(registry_name(key), kind, format!("{prefix}{key:?}")));
            }
        }
    }
    if let Some(helpers) = m.get("credHelpers").and_then(Value::as_object) {
        for key in helpers.keys() {
            out.push(entry(
                registry_name(key),
                CredKind::CredentialHelper,
                format!("credHelpers.{key:?}"),
            ));
        }
    }
    if m.get("credsStore")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        out.push(entry(
            "*".into(),
            CredKind::CredentialStore,
            "credsStore".into(),
        ));
    }
    Ok(out)
}

/// The docker config without the credentials of `host` (or without every credential):
/// other registries and keys stay in their order, written in the file's own indent.
pub fn docker_config_without(
    file: &str,
    text: &str,
    host: Option<&RegistryHost>,
) -> Result<Removal, CredsError> {
    let mut m = json(file, text)?;
    let matches = |key: &str| host.is_none_or(|h| registry_of_key(key).as_ref() == Some(h));
    let before = m.clone();
    if is_legacy_dockercfg(&m) {
        m.retain(|k, _| !matches(k));
    } else {
        for table in ["auths", "credHelpers"] {
            if let Some(t) = m.get_mut(table).and_then(Value::as_object_mut) {
                t.retain(|k, _| !matches(k));
                if t.is_empty() {
                    m.remove(table);
                }
            }
        }
        if host.is_none() {
            m.remove("credsStore");
        }
    }
    if m == before {
        return Ok(Removal::Unchanged);
    }
    if m.is_empty() {
        return Ok(Removal::NothingLeft);
    }
    Ok(Removal::Edited(pretty(&Value::Object(m), text)))
}

/// `value` as pretty JSON in the indent `original` uses (docker writes tabs), with a
/// final newline when it had one.
fn pretty(value: &Value, original: &str) -> String {
    let indent = original
        .lines()
        .skip(1)
        .find_map(|l| {
            let ws: String = l.chars().take_while(|c| *c == ' ' || *c == '\t').collect();
            (!ws.is_empty()).then_some(ws)
        })
        .unwrap_or_else(|| "\t".to_string());
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(value, &mut ser).expect("a JSON value serializes");
    let mut text = String::from_utf8(out).expect("serde_json writes UTF-8");
    if original.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// The credentials in containerd's config.toml (`auths`, `configs.<host>.auth`).
pub fn config_toml_entries(facts: &NodeFacts) -> Vec<CredEntry> {
    let cf = facts.config.facts();
    let reg = crate::ctrconfig::ConfigVersion::registry_table(cf.version).join(".");
    let mut out = Vec::new();
    for a in &cf.legacy_auth {
        let has = |k: &str| a.fields.iter().any(|f| f == k);
        let mut kinds = Vec::new();
        if has("username") || has("password") || has("auth") {
            kinds.push(CredKind::BasicAuth);
        }
        if has("identitytoken") {
            kinds.push(CredKind::IdentityToken);
        }
        for kind in kinds {
            out.push(CredEntry {
                file: facts.config_file.clone(),
                registry: registry_name(&a.host),
                kind,
                key: format!("{reg}.configs.{:?}.auth", a.host),
            });
        }
    }
    for key in &cf.auths {
        out.push(CredEntry {
            file: facts.config_file.clone(),
            registry: registry_name(key),
            kind: CredKind::BasicAuth,
            key: format!("{reg}.auths.{key:?}"),
        });
    }
    out
}

/// The registry a hosts directory belongs to (`_default`: every registry).
fn registry_of_dir(name: &str) -> String {
    if name == DEFAULT_DIR {
        return "*".into();
    }
    // `host_port_` is containerd's spelling of `host:port`.
    let plain = name
        .strip_suffix('_')
        .and_then(|n| n.rsplit_once('_'))
        .filter(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        .map(|(host, port)| format!("{host}:{port}"));
    plain.unwrap_or_else(|| name.to_string())
}

/// The `header` entries of every hosts.toml (names only: the values may be secrets).
pub fn hosts_toml_entries(facts: &NodeFacts) -> Vec<CredEntry> {
    let mut out = Vec::new();
    for d in &facts.hosts_dirs {
        let Some(text) = &d.hosts_toml else { continue };
        let Ok(h) = HostsToml::parse(text) else {
            continue;
        };
        let file = join(&join(&d.root, &d.name), "hosts.toml");
        let registry = registry_of_dir(&d.name);
        let tables = std::iter::once((String::new(), h.top_level())).chain(
            h.hosts()
                .iter()
                .map(|e| (format!("host.{:?}.", e.url), &e.settings)),
        );
        for (prefix, settings) in tables {
            for name in &settings.headers {
                out.push(CredEntry {
                    file: file.clone(),
                    registry: registry.clone(),
                    kind: CredKind::Header,
                    key: format!("{prefix}header.{name}"),
                });
            }
        }
    }
    out
}

/// The registries a kubelet credential provider config (`--image-credential-provider-config`)
/// hands credentials out for: each provider's `matchImages` patterns. JSON, or the YAML
/// shape the kubelet documents (`providers:` with `- name:` and a `matchImages:` list).
pub fn provider_config_entries(file: &str, text: &str) -> Vec<CredEntry> {
    let entry = |provider: &str, pattern: &str| CredEntry {
        file: file.to_string(),
        registry: pattern.to_string(),
        kind: CredKind::CredentialProvider,
        key: format!("providers.{provider:?}"),
    };
    if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(text) {
        return m
            .get("providers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|p| {
                let name = p
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("?")
                    .to_string();
                p.get("matchImages")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|pattern| entry(&name, pattern))
                    .collect::<Vec<_>>()
            })
            .collect();
    }
    let unquote = |s: &str| s.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
    let mut out = Vec::new();
    let mut provider = String::from("?");
    let mut in_match = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some(name) = t
            .strip_prefix("- name:")
            .or_else(|| t.strip_prefix("name:"))
        {
            provider = unquote(name);
            in_match = false;
        } else if let Some(rest) = t.strip_prefix("matchImages:") {
            let rest = rest.trim();
            if let Some(list) = rest.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                out.extend(list.split(',').map(|p| entry(&provider, &unquote(p))));
                in_match = false;
            } else {
                in_match = true;
            }
        } else if in_match && let Some(pattern) = t.strip_prefix("- ") {
            out.push(entry(&provider, &unquote(pattern)));
        } else if in_match && !t.is_empty() && !t.starts_with('#') {
            in_match = false;
        }
    }
    out
}

/// Builds the plan that removes the credentials of `host` (or every credential) from
/// the docker config files (`(path, text)`), the hosts.toml headers of its own
/// directories (every directory for all) and config.toml (then containerd restarts:
/// CRI reads it only at start). `verify_pull` proves the result. Files left without
/// anything are moved to the backup area, never deleted.
pub fn plan_clean(
    files: &NodeFiles,
    docker_configs: &[(String, String)],
    host: Option<&RegistryHost>,
    unit: &str,
    verify_pull: Option<String>,
) -> Result<Plan, CredsError> {
    let mut steps = Vec::new();
    let why = match host {
        Some(h) => format!("remove the credentials of {h}"),
        None => "remove every registry credential".to_string(),
    };
    let mut add = |path: &str, text: &str, removal: Removal| {
        steps.extend(Step::for_removal(path.into(), text, removal, why.clone()));
    };
    for (path, text) in docker_configs {
        add(path, text, docker_config_without(path, text, host)?);
    }
    let wanted: Option<Vec<String>> = host.map(own_dir_names);
    for d in &files.facts.hosts_dirs {
        let Some(text) = &d.hosts_toml else { continue };
        if wanted.as_ref().is_some_and(|w| !w.contains(&d.name)) {
            continue;
        }
        let path = join(&join(&d.root, &d.name), "hosts.toml");
        let removal = HostsToml::parse(text)
            .and_then(|h| h.without_headers())
            .map_err(|source| CredsError::HostsToml {
                file: path.clone(),
                source,
            })?;
        add(&path, text, removal);
    }
    let config = &files.facts.config;
    let (after, removed) =
        config
            .without_credentials(host)
            .map_err(|source| CredsError::Config {
                file: files.facts.config_file.clone(),
                source,
            })?;
    if !removed.is_empty() {
        let why = format!("remove {}", removed.join(", "));
        steps.extend(Step::config_toml_rewrite(&files.facts, after, why, unit));
    }
    if steps.is_empty() {
        return Err(CredsError::NothingToClean {
            host: host.cloned(),
        });
    }
    Ok(Plan {
        title: match host {
            Some(h) => format!("remove the registry credentials of {h}"),
            None => "remove every registry credential on the node".to_string(),
        },
        steps,
        verify_pull,
    })
}

#[cfg(test)]
mod tests;
