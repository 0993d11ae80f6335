//! Moving the legacy registry tables that block `config_path` into hosts.toml.
//!
//! containerd 1.6/1.7 stop the CRI plugin when `configs.<host>.tls` sits next to
//! `config_path`, and every version that knows `config_path` does so for `mirrors`
//! (LAB.md): such a node cannot pull at all, and one without `config_path` gets there
//! the moment ctrdiag sets it. So the planner moves those tables into the hosts.toml
//! files containerd reads instead, saying there what containerd 1.x's CRI did with
//! them:
//! - for an image on host H it tried `mirrors.H.endpoint` in order (`mirrors."*"` when
//!   H has no entry), pull and resolve only, then H itself unless an endpoint already
//!   was H: one `[host."<endpoint>"]` per endpoint, and `server` for H;
//! - each endpoint E used the TLS settings of `configs.E.tls`: they go into E's entry,
//!   and H's own ones into an entry for H after the mirrors;
//! - `mirrors."*"` becomes the `_default` directory, and hosts that get a directory of
//!   their own also get its endpoints, since their directory hides `_default`.
//!
//! hosts.toml always tries `server` last, so an endpoint list that already ends in H
//! gains a second try of H; nothing else changes. What hosts.toml cannot say is
//! refused with [`Unmovable`]. Credentials (`configs.<host>.auth`) do not block
//! `config_path` and stay where they are.

use std::collections::BTreeSet;

use super::config_toml::{ConfigToml, LegacyMirror, LegacyTls};
use super::endpoint::Endpoint;
use super::hosts_dir::{DEFAULT_DIR, hosts_dir_name_for};
use super::hosts_toml::{ClientPair, HostsTomlError, MovedEntry, MovedSettings};
use super::tree;
use super::version::ContainerdVersion;
use crate::registry::host::{HostError, RegistryHost};

/// Why legacy tables cannot be moved to hosts.toml without losing something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unmovable {
    #[error("`{table}` is not keyed by a registry host ({error})")]
    BadHostKey { table: String, error: HostError },
    #[error("`{table}` sets {keys:?}, which hosts.toml has no equivalent for")]
    UnknownKeys { table: String, keys: Vec<String> },
    #[error("`{table}` sets `key_file` without `cert_file`, which no client certificate can use")]
    KeyWithoutCert { table: String },
    #[error(
        "`{table}` lists the endpoint {endpoint:?}, which is not an http(s)://host[:port][/path] URL"
    )]
    BadEndpoint { table: String, endpoint: String },
    #[error("`{first}` and `{second}` name the same registry, and only one can move")]
    SameHost { first: String, second: String },
    #[error(
        "`{table}` applies to every registry, which hosts.toml says with a `_default` directory, \
         and containerd {containerd} reads none (1.6.17 and 1.7.0 on do)"
    )]
    NoDefaultDir {
        table: String,
        containerd: ContainerdVersion,
    },
    #[error("{path}: {error}")]
    Existing { path: String, error: HostsTomlError },
}

/// The blocking legacy tables and what moving them writes, per hosts directory.
#[derive(Debug, Clone, Default)]
pub(crate) struct Migration {
    tls_keys: Vec<String>,
    mirror_keys: Vec<String>,
    /// In the order their hosts first appear in config.toml.
    pub dirs: Vec<MovedDir>,
}

/// What one hosts directory under the root gets.
#[derive(Debug, Clone)]
pub(crate) struct MovedDir {
    /// `host:port`, an existing `host_port_`, or `_default`.
    pub name: String,
    pub settings: MovedSettings,
    /// Dotted keys of the tables whose settings land here.
    pub sources: Vec<String>,
}

/// A blocking `configs.<host>.tls` table, checked.
struct Tls {
    host: RegistryHost,
    source: String,
    ca: Option<String>,
    skip_verify: Option<bool>,
    client: Option<ClientPair>,
}

/// A blocking `mirrors.<host>` table, checked; no host for `"*"`.
struct Mirror {
    host: Option<RegistryHost>,
    source: String,
    endpoints: Vec<Endpoint>,
}

impl Migration {
    /// The tables that stop the CRI plugin of `version` next to `config_path`, and
    /// where their settings go. `target` (the host being fixed) is included so that
    /// its new directory keeps `mirrors."*"`; `existing` names the directories under
    /// the root.
    pub(crate) fn plan(
        config: &ConfigToml,
        version: &ContainerdVersion,
        target: &RegistryHost,
        existing: &BTreeSet<String>,
    ) -> Result<Migration, Unmovable> {
        let f = config.facts();
        let reg = f.version.registry_table();
        let tls_blocks = version.legacy_tls_conflicts_with_config_path();
        let mirrors_block = version.mirrors_conflict_with_config_path();
        let tls_tables: &[LegacyTls] = if tls_blocks { &f.legacy_tls } else { &[] };
        let mirror_tables: &[LegacyMirror] = if mirrors_block { &f.mirrors } else { &[] };
        let tls = tls_tables
            .iter()
            .map(|t| read_tls(t, reg))
            .collect::<Result<Vec<_>, _>>()?;
        let mirrors = mirror_tables
            .iter()
            .map(|m| read_mirror(m, reg))
            .collect::<Result<Vec<_>, _>>()?;
        one_table_per_host(&tls, |t| (t.host.to_string(), t.source.clone()))?;
        one_table_per_host(&mirrors, |m| (mirror_key(m), m.source.clone()))?;
        let moved = Moved {
            tls: &tls,
            mirrors: &mirrors,
            wildcard: mirrors.iter().find(|m| m.host.is_none()),
        };
        if let Some(w) = moved.wildcard
            && !version.has_default_hosts_dir()
        {
            return Err(Unmovable::NoDefaultDir {
                table: w.source.clone(),
                containerd: *version,
            });
        }
        let mut dirs: Vec<MovedDir> = hosts_in_order(&mirrors, &tls, target)
            .into_iter()
            .filter_map(|h| moved.for_host(h, existing))
            .collect();
        dirs.extend(moved.for_default());
        Ok(Migration {
            tls_keys: tls_tables.iter().map(|t| t.host.clone()).collect(),
            mirror_keys: mirror_tables.iter().map(|m| m.host.clone()).collect(),
            dirs,
        })
    }

    /// Key paths, below the registry table, of the tables to take out of config.toml.
    pub(crate) fn tails(&self) -> Vec<Vec<&str>> {
        let tls = self
            .tls_keys
            .iter()
            .map(|k| vec!["configs", k.as_str(), "tls"]);
        let mirrors = self.mirror_keys.iter().map(|k| vec!["mirrors", k.as_str()]);
        tls.chain(mirrors).collect()
    }

    /// The moved settings of directory `name`, if any land there.
    pub(crate) fn dir(&self, name: &str) -> Option<&MovedDir> {
        self.dirs.iter().find(|d| d.name == name)
    }
}

/// The checked tables, and how 1.x's CRI combined them.
struct Moved<'a> {
    tls: &'a [Tls],
    mirrors: &'a [Mirror],
    wildcard: Option<&'a Mirror>,
}

impl Moved<'_> {
    /// The directory of `host`, if anything lands there.
    fn for_host(&self, host: &RegistryHost, existing: &BTreeSet<String>) -> Option<MovedDir> {
        let own = self.mirrors.iter().find(|m| m.host.as_ref() == Some(host));
        let list = own.or(self.wildcard);
        let mut sources = Vec::new();
        let mut entries = Vec::new();
        if let Some(m) = list {
            sources.push(m.source.clone());
            entries.extend(m.endpoints.iter().map(|e| self.entry(e, &mut sources)));
        }
        let itself = default_endpoint(host);
        let reaches_itself = list.is_some_and(|m| m.endpoints.iter().any(|e| &e.host == host));
        if !reaches_itself && self.tls_of(&itself.host).is_some() {
            entries.push(self.entry(&itself, &mut sources));
        }
        if entries.is_empty() {
            return None;
        }
        Some(MovedDir {
            name: hosts_dir_name_for(host, existing),
            settings: MovedSettings {
                server: Some(itself.url()),
                entries,
            },
            sources,
        })
    }

    /// `_default` from `mirrors."*"`. No `server`: containerd fills in the host
    /// being pulled from, as 1.x did.
    fn for_default(&self) -> Option<MovedDir> {
        let w = self.wildcard.filter(|w| !w.endpoints.is_empty())?;
        let mut sources = vec![w.source.clone()];
        let entries = w
            .endpoints
            .iter()
            .map(|e| self.entry(e, &mut sources))
            .collect();
        Some(MovedDir {
            name: DEFAULT_DIR.to_string(),
            settings: MovedSettings {
                server: None,
                entries,
            },
            sources,
        })
    }

    /// The entry for endpoint `e`, with the TLS settings 1.x used for its host.
    fn entry(&self, e: &Endpoint, sources: &mut Vec<String>) -> MovedEntry {
        let tls = self.tls_of(&e.host);
        if let Some(t) = tls
            && !sources.contains(&t.source)
        {
            sources.push(t.source.clone());
        }
        MovedEntry {
            url: e.url(),
            ca: tls.and_then(|t| t.ca.clone()),
            skip_verify: tls.and_then(|t| t.skip_verify),
            client: tls.and_then(|t| t.client.clone()),
            override_path: e.needs_override_path(),
        }
    }

    /// The tls table of `host` that has anything to move.
    fn tls_of(&self, host: &RegistryHost) -> Option<&Tls> {
        self.tls.iter().find(|t| {
            &t.host == host && (t.ca.is_some() || t.skip_verify.is_some() || t.client.is_some())
        })
    }
}

/// The endpoint 1.x appended for `host`: containerd's default host (Docker Hub's API
/// is on registry-1.docker.io) with its default scheme (plain HTTP for loopback).
fn default_endpoint(host: &RegistryHost) -> Endpoint {
    let hub = (host.name() == "docker.io" && host.port().is_none())
        .then(|| "registry-1.docker.io".parse().ok())
        .flatten();
    Endpoint {
        plain_http: host.is_loopback(),
        host: hub.unwrap_or_else(|| host.clone()),
        path: String::new(),
    }
}

fn read_tls(t: &LegacyTls, reg: &[&str]) -> Result<Tls, Unmovable> {
    let table = tree::dotted(&[reg, &["configs", t.host.as_str(), "tls"]].concat());
    let host = t.host.parse().map_err(|error| Unmovable::BadHostKey {
        table: table.clone(),
        error,
    })?;
    if !t.other_keys.is_empty() {
        return Err(Unmovable::UnknownKeys {
            table,
            keys: t.other_keys.clone(),
        });
    }
    // containerd treats an empty path as unset.
    let set = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
    let client = match (set(&t.cert_file), set(&t.key_file)) {
        (Some(cert), key) => Some(ClientPair { cert, key }),
        (None, Some(_)) => return Err(Unmovable::KeyWithoutCert { table }),
        (None, None) => None,
    };
    Ok(Tls {
        host,
        source: table,
        ca: set(&t.ca_file),
        skip_verify: t.insecure_skip_verify,
        client,
    })
}

fn read_mirror(m: &LegacyMirror, reg: &[&str]) -> Result<Mirror, Unmovable> {
    let table = tree::dotted(&[reg, &["mirrors", m.host.as_str()]].concat());
    let host = match m.host.as_str() {
        "*" => None,
        key => Some(key.parse().map_err(|error| Unmovable::BadHostKey {
            table: table.clone(),
            error,
        })?),
    };
    if !m.other_keys.is_empty() {
        return Err(Unmovable::UnknownKeys {
            table,
            keys: m.other_keys.clone(),
        });
    }
    let endpoints = m
        .endpoints
        .iter()
        .map(|e| {
            Endpoint::parse_legacy(e).ok_or_else(|| Unmovable::BadEndpoint {
                table: table.clone(),
                endpoint: e.clone(),
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Mirror {
        host,
        source: table,
        endpoints,
    })
}

/// Every host that may get a directory, once each: mirrored ones, then those with
/// TLS settings, then the target, in file order.
fn hosts_in_order<'a>(
    mirrors: &'a [Mirror],
    tls: &'a [Tls],
    target: &'a RegistryHost,
) -> Vec<&'a RegistryHost> {
    let named = mirrors.iter().filter_map(|m| m.host.as_ref());
    let mut hosts: Vec<&RegistryHost> = Vec::new();
    for h in named.chain(tls.iter().map(|t| &t.host)).chain([target]) {
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    hosts
}

fn mirror_key(m: &Mirror) -> String {
    m.host
        .as_ref()
        .map_or_else(|| "*".to_string(), RegistryHost::to_string)
}

/// Refuses two tables for one registry (`Reg.Test` and `reg.test`): both would land in
/// one entry and one of them would be lost. `part` gives an item's host and table.
fn one_table_per_host<T>(
    items: &[T],
    part: impl Fn(&T) -> (String, String),
) -> Result<(), Unmovable> {
    for (i, a) in items.iter().enumerate() {
        let (host, first) = part(a);
        if let Some(b) = items[i + 1..].iter().find(|b| part(b).0 == host) {
            return Err(Unmovable::SameHost {
                first,
                second: part(b).1,
            });
        }
    }
    Ok(())
}
