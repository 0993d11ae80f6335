//! Where containerd looks for one registry host's settings and CAs, in its order, and
//! which place wins: per `config_path` root `host_port_/`, `host:port/`, `_default/`
//! (containerd's `hostPaths`, see hosts_dir.rs; every candidate of a root before the
//! next root), then config.toml's legacy tables where this version reads them, then the
//! system trust store. containerd takes the first hosts directory that exists and merges
//! nothing, so every file in a later place is ignored: the answer to "why is my
//! hosts.toml ignored?". Pure: the adapters say which directories and files exist.

use std::fmt;

use super::facts::{HostsDirFacts, NodeFacts};
use super::findings::Finding;
use super::hosts_dir::{DEFAULT_DIR, hosts_dir_candidates, join, own_dir_names};
use super::hosts_toml::HostsToml;
use super::plan::{conflicting_entries, multi_root_ignored};
use super::trust::{DirReading, HostTrust, dir_trust, hosts_toml_cas, legacy_trust, names_host};
use super::version::ContainerdVersion;
use crate::registry::host::RegistryHost;

/// What kind of place a [`Place`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceKind {
    /// `<root>/host_port_/`: the port spelled with underscores (checked first).
    PortDir,
    /// `<root>/host:port/` (or `<root>/host/` for a host without a port).
    HostDir,
    /// `<root>/_default/`: the fallback for hosts without a directory of their own.
    DefaultDir,
    /// config.toml's `registry.configs."host".tls` and `registry.mirrors."host"`.
    LegacyTable,
    /// The system trust store, which containerd loads when it starts.
    SystemPool,
}

impl PlaceKind {
    /// The stable name in the API and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PlaceKind::PortDir => "host_port_dir",
            PlaceKind::HostDir => "host_dir",
            PlaceKind::DefaultDir => "default_dir",
            PlaceKind::LegacyTable => "legacy_table",
            PlaceKind::SystemPool => "system_pool",
        }
    }
}

/// Why containerd does not look at a place at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRead {
    /// `_default` came with 1.6.17 / 1.7.0.
    NoDefaultDir,
    /// A colon-separated `config_path` on 2.1+ in Transfer mode (LAB.md).
    MultiRootIgnored,
    /// containerd before 1.5 has no hosts directories.
    NoHostsDirs,
    /// `configs."host".tls` on 2.x, or any legacy table once `config_path` is set.
    LegacyIgnored,
    /// Legacy tables next to `config_path`: the CRI plugin refuses to load.
    LegacyConflict,
}

impl fmt::Display for NotRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NotRead::NoDefaultDir => "this containerd has no _default fallback (1.6.17 / 1.7.0 on)",
            NotRead::MultiRootIgnored => {
                "containerd 2.1+ ignores a config_path with several roots for CRI pulls"
            }
            NotRead::NoHostsDirs => "containerd before 1.5 reads no hosts directories",
            NotRead::LegacyIgnored => {
                "this containerd does not read the legacy table here (2.x, or config_path is set)"
            }
            NotRead::LegacyConflict => {
                "set together with config_path, it makes the CRI plugin refuse to load"
            }
        })
    }
}

/// What containerd makes of a place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceState {
    /// containerd takes this place's settings and nothing from the places after it.
    Wins,
    /// It exists, but the place `by` (a path) comes first and wins: ignored.
    Shadowed {
        by: String,
    },
    Absent,
    /// containerd of this version, with this configuration, never looks here.
    NotRead(NotRead),
    /// The system trust store under a winning place: its CAs are added to it.
    AlsoUsed,
}

impl PlaceState {
    /// The stable name in the API and JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            PlaceState::Wins => "wins",
            PlaceState::Shadowed { .. } => "shadowed",
            PlaceState::Absent => "absent",
            PlaceState::NotRead(_) => "not_read",
            PlaceState::AlsoUsed => "also_used",
        }
    }
}

/// A CA file a place names, and whether the node has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedFile {
    pub path: String,
    /// `None`: the adapters did not look.
    pub exists: Option<bool>,
}

/// One place in containerd's lookup order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub kind: PlaceKind,
    /// A directory (ending in `/`), `config.toml [registry.configs."host".tls]`, or
    /// `system trust store`.
    pub path: String,
    pub state: PlaceState,
    /// Files found there (hosts.toml first), or the legacy tables' names.
    pub files: Vec<String>,
    /// The CA files containerd would add from here.
    pub ca_files: Vec<NamedFile>,
    /// How containerd reads the place, when that is not plain (a hosts.toml it drops, a
    /// directory that configures nothing and still hides those after it, ...).
    pub detail: Option<String>,
}

/// containerd's lookup for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub host: RegistryHost,
    /// In containerd's order; exactly one has state [`PlaceState::Wins`].
    pub places: Vec<Place>,
    /// What holds for the whole lookup (no `config_path`, a CRI plugin that does not load).
    pub notes: Vec<String>,
    /// The settings of the winning place.
    pub trust: HostTrust,
}

impl Lookup {
    pub fn winner(&self) -> &Place {
        self.places
            .iter()
            .find(|p| p.state == PlaceState::Wins)
            .expect("the system trust store wins when nothing else does")
    }

    /// A hosts.toml in a shadowed place: containerd ignores it for this host.
    pub fn findings(&self) -> Vec<Finding> {
        let winner = self.winner();
        self.places
            .iter()
            .filter(|p| matches!(p.state, PlaceState::Shadowed { .. }))
            .filter(|p| p.files.first().is_some_and(|f| f == "hosts.toml"))
            .map(|p| Finding::HostsTomlShadowed {
                host: self.host.to_string(),
                path: format!("{}hosts.toml", p.path),
                by: winner.path.clone(),
                // `_default` behind a host's own working directory is how it is meant to work.
                expected: p.kind == PlaceKind::DefaultDir && self.trust.is_configured(),
            })
            .collect()
    }
}

/// Where containerd `version` looks for `host`'s settings with the configuration in
/// `facts`, in order, and what it makes of each place.
pub fn lookup(facts: &NodeFacts, host: &RegistryHost, version: &ContainerdVersion) -> Lookup {
    let cf = facts.config.facts();
    let mut places = Vec::new();
    let mut notes = Vec::new();
    let mut trust = None;
    let dirs_read = cf.config_path.is_some() && version.supports_hosts_dir();
    if let Some(cp) = &cf.config_path {
        let not_read = if !version.supports_hosts_dir() {
            Some(NotRead::NoHostsDirs)
        } else if multi_root_ignored(&facts.config, version) {
            Some(NotRead::MultiRootIgnored)
        } else {
            None
        };
        let candidates = hosts_dir_candidates(host, version);
        for root in cp.roots() {
            let mut names = own_dir_names(host);
            names.push(DEFAULT_DIR.to_string());
            for name in names {
                let dir = facts.dir(root, &name);
                let state = if let Some(why) = not_read {
                    PlaceState::NotRead(why)
                } else if !candidates.contains(&name) {
                    PlaceState::NotRead(NotRead::NoDefaultDir)
                } else if dir.is_none() {
                    PlaceState::Absent
                } else if trust.is_none() {
                    PlaceState::Wins
                } else {
                    PlaceState::Shadowed {
                        by: winner_path(&places),
                    }
                };
                if state == PlaceState::Wins
                    && let Some(d) = dir
                {
                    trust = Some(dir_trust(d, host, version).0);
                }
                places.push(dir_place(dir, root, &name, host, version, facts, state));
            }
        }
        if !conflicting_entries(&facts.config, version).is_empty() {
            notes.push(format!(
                "config.toml sets legacy registry tables together with config_path: containerd's CRI plugin does not load, so nothing here is read until that is fixed ({})",
                facts.config_file
            ));
        }
    } else {
        notes.push(format!(
            "config_path is not set in {}: containerd reads no hosts directory (a hosts.toml in /etc/containerd/certs.d is ignored)",
            facts.config_file
        ));
    }
    if let Some(place) = legacy_place(facts, host, version, dirs_read) {
        if place.state == PlaceState::Wins {
            trust = Some(legacy_trust(facts, host, version));
        }
        places.push(place);
    }
    let winner = winner_path(&places);
    places.push(Place {
        kind: PlaceKind::SystemPool,
        path: "system trust store".to_string(),
        state: if trust.is_some() {
            PlaceState::AlsoUsed
        } else {
            PlaceState::Wins
        },
        files: Vec::new(),
        ca_files: Vec::new(),
        detail: Some(match &trust {
            None => "nothing else configures the host: only the roots containerd loaded when it started are trusted".to_string(),
            Some(t) if t.skip_verify => format!("verification is skipped ({winner})"),
            Some(t) if t.plain_http => format!("plain HTTP: no TLS at all ({winner})"),
            Some(t) if t.ca_files.is_empty() => {
                format!("{winner} adds no CA: only these roots are trusted")
            }
            Some(_) => format!("the CAs of {winner} are added to it"),
        }),
    });
    Lookup {
        host: host.clone(),
        places,
        notes,
        trust: trust.unwrap_or_default(),
    }
}

fn winner_path(places: &[Place]) -> String {
    places
        .iter()
        .find(|p| p.state == PlaceState::Wins)
        .map(|p| p.path.clone())
        .unwrap_or_default()
}

fn dir_place(
    dir: Option<&HostsDirFacts>,
    root: &str,
    name: &str,
    host: &RegistryHost,
    version: &ContainerdVersion,
    facts: &NodeFacts,
    state: PlaceState,
) -> Place {
    let kind = if name == DEFAULT_DIR {
        PlaceKind::DefaultDir
    } else if name == host.to_string() {
        PlaceKind::HostDir
    } else {
        PlaceKind::PortDir
    };
    let mut place = Place {
        kind,
        path: format!("{}/", join(root, name)),
        state,
        files: Vec::new(),
        ca_files: Vec::new(),
        detail: None,
    };
    let Some(d) = dir else {
        return place;
    };
    place.files = d
        .hosts_toml
        .as_ref()
        .map(|_| "hosts.toml".to_string())
        .into_iter()
        .chain(d.other_files.iter().cloned())
        .collect();
    let (trust, reading) = dir_trust(d, host, version);
    place.ca_files = named(facts, &trust.ca_files);
    place.detail = match reading {
        DirReading::HostsToml => None,
        DirReading::CertFiles { problem } => {
            let why = match problem {
                Some(p) => format!("containerd drops its hosts.toml ({p})"),
                None => "no hosts.toml".to_string(),
            };
            let certs = d
                .other_files
                .iter()
                .any(|f| f.ends_with(".crt") || f.ends_with(".cert"));
            Some(if certs {
                format!("{why}: containerd uses its *.crt (CA) and *.cert/*.key (client) files")
            } else {
                format!(
                    "{why} and no *.crt or *.cert file: it configures nothing, and still hides every place after it"
                )
            })
        }
    };
    place
}

/// The legacy tables' place, when containerd reads them (`dirs_read` false: no hosts
/// directory can win before them) or they exist for `host`.
fn legacy_place(
    facts: &NodeFacts,
    host: &RegistryHost,
    version: &ContainerdVersion,
    dirs_read: bool,
) -> Option<Place> {
    let cf = facts.config.facts();
    let tls: Vec<_> = cf
        .legacy_tls
        .iter()
        .filter(|t| names_host(&t.host, host))
        .collect();
    let mut files: Vec<String> = tls
        .iter()
        .map(|t| format!("registry.configs.{:?}.tls", t.host))
        .collect();
    files.extend(
        cf.mirrors
            .iter()
            .filter(|m| names_host(&m.host, host))
            .map(|m| format!("registry.mirrors.{:?}", m.host)),
    );
    let exists = !files.is_empty();
    let state = if dirs_read {
        if !exists {
            return None;
        }
        if conflicting_entries(&facts.config, version).is_empty() {
            PlaceState::NotRead(NotRead::LegacyIgnored)
        } else {
            PlaceState::NotRead(NotRead::LegacyConflict)
        }
    } else if legacy_trust(facts, host, version).is_configured() {
        PlaceState::Wins
    } else if !tls.is_empty() {
        PlaceState::NotRead(NotRead::LegacyIgnored)
    } else {
        PlaceState::Absent
    };
    let ca_files: Vec<String> = tls.iter().filter_map(|t| t.ca_file.clone()).collect();
    Some(Place {
        kind: PlaceKind::LegacyTable,
        path: format!("{} [registry.configs.\"{host}\".tls]", facts.config_file),
        state,
        files,
        ca_files: named(facts, &ca_files),
        detail: None,
    })
}

fn named(facts: &NodeFacts, paths: &[String]) -> Vec<NamedFile> {
    paths
        .iter()
        .map(|p| NamedFile {
            path: p.clone(),
            exists: facts.named_files.get(p).copied(),
        })
        .collect()
}

/// Every CA file the hosts.toml files in `facts` and config.toml's legacy tables name
/// (resolved as containerd resolves them): what the node-files adapter checks for
/// [`NodeFacts::named_files`].
pub fn named_ca_files(facts: &NodeFacts) -> Vec<String> {
    let mut out: Vec<String> = facts
        .hosts_dirs
        .iter()
        .filter_map(|d| {
            let h = HostsToml::parse(d.hosts_toml.as_deref()?).ok()?;
            Some(hosts_toml_cas(&h, &join(&d.root, &d.name)))
        })
        .flatten()
        .chain(
            facts
                .config
                .facts()
                .legacy_tls
                .iter()
                .filter_map(|t| t.ca_file.clone()),
        )
        .collect();
    out.sort();
    out.dedup();
    out
}
