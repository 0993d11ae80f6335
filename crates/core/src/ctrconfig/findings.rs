//! Problems in the existing configuration, found without touching anything.
//!
//! Each finding is a state that LAB.md measured to break or silently defeat
//! registry settings, so ctrdiag reports it even before a pull fails.

use std::fmt;

use crate::cause::CauseCode;

use super::config_toml::ConfigVersion;
use super::facts::NodeFacts;
use super::hosts_dir::join;
use super::hosts_toml::{HostsProblem, HostsToml};
use super::plan::{conflicting_entries, multi_root_ignored};
use super::version::ContainerdVersion;

/// A configuration state worth reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// Legacy `configs.<host>.tls` on 2.x: ignored ("Ignoring unknown key in TOML").
    ConfigIgnored { host: String },
    /// Legacy entries next to `config_path`: the CRI plugin refuses to load and every
    /// CRI call fails with `unknown service runtime.v1.ImageService`.
    ConfigConflict {
        entries: Vec<String>,
        config_path: String,
    },
    /// Multi-root `config_path` on 2.1+ in Transfer mode: silently ignored.
    MultiRootIgnored { config_path: String },
    /// A hosts.toml containerd drops (and falls back to `*.crt` files).
    HostsTomlInvalid { path: String, problems: Vec<String> },
    /// A hosts.toml containerd ignores for `host` because the directory `by` comes first
    /// in its lookup (it merges nothing). `expected`: it is `_default` behind the host's
    /// own configured directory, which is how `_default` is meant to work.
    HostsTomlShadowed {
        host: String,
        path: String,
        by: String,
        expected: bool,
    },
    /// `mirrors`, `configs` or `auths` in use: deprecated since 1.5.
    DeprecatedLegacyRegistry { sections: Vec<&'static str> },
    /// The file has no `version` key and is read with the old version 1 layout.
    ConfigVersion1,
    /// A file version this containerd cannot read.
    ConfigVersionUnreadable { file: u32 },
    /// containerd's own merge (`config dump`) uses a registry setting differently from
    /// config.toml: an import, or 1.x replacing the CRI section wholesale.
    DiffersFromEffective { description: String },
}

impl fmt::Display for Finding {
    /// What is wrong, what containerd does about it, and what to do.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::ConfigIgnored { host } => write!(
                f,
                "registry.configs.\"{host}\".tls is ignored by containerd 2.x; put the CA in \
                 <config_path>/{host}/hosts.toml instead"
            ),
            Finding::ConfigConflict {
                entries,
                config_path,
            } => write!(
                f,
                "{} set together with config_path = {config_path:?}: the CRI plugin refuses to load \
                 and every CRI call fails; move them to hosts.toml and remove them",
                entries.join(", ")
            ),
            Finding::MultiRootIgnored { config_path } => write!(
                f,
                "config_path = {config_path:?} has several roots, which containerd 2.1+ ignores for \
                 CRI pulls; use a single directory"
            ),
            Finding::HostsTomlInvalid { path, problems } => write!(
                f,
                "{path} is not used by containerd: {}",
                problems.join("; ")
            ),
            Finding::HostsTomlShadowed {
                host,
                path,
                by,
                expected: true,
            } => write!(
                f,
                "{path} does not apply to {host}: containerd reads {by} instead and merges nothing"
            ),
            Finding::HostsTomlShadowed {
                host,
                path,
                by,
                expected: false,
            } => write!(
                f,
                "{path} is ignored for {host}: containerd reads {by} first and merges nothing; \
                 put the settings there, or remove that directory"
            ),
            Finding::DeprecatedLegacyRegistry { sections } => write!(
                f,
                "registry {} in config.toml are deprecated since containerd 1.5 (and switch 2.x CRI \
                 pulls to local mode); use config_path and hosts.toml",
                sections.join(", ")
            ),
            Finding::ConfigVersion1 => f.write_str(
                "config.toml has no `version` and is read with the version 1 layout, which \
                 containerd 2.x no longer reads; add `version = 2` with the long plugin names",
            ),
            Finding::DiffersFromEffective { description } => f.write_str(description),
            Finding::ConfigVersionUnreadable { file } => write!(
                f,
                "config.toml is a version {file} file, which this containerd cannot read; migrate \
                 it (`containerd config migrate` on 2.x)"
            ),
        }
    }
}

impl Finding {
    /// The stable cause code (DESIGN.md) this finding is reported under.
    pub fn cause(&self) -> CauseCode {
        match self {
            Finding::ConfigIgnored { .. }
            | Finding::MultiRootIgnored { .. }
            | Finding::HostsTomlShadowed { .. }
            | Finding::DiffersFromEffective { .. } => CauseCode::ConfigIgnored,
            Finding::ConfigConflict { .. } => CauseCode::ConfigConflict,
            Finding::HostsTomlInvalid { .. } => CauseCode::HostsTomlInvalid,
            Finding::ConfigVersionUnreadable { .. } => CauseCode::ConfigUnreadable,
            Finding::DeprecatedLegacyRegistry { .. } | Finding::ConfigVersion1 => {
                CauseCode::ConfigDeprecated
            }
        }
    }
}

/// Everything worth reporting about `facts` on containerd `version`.
pub fn findings(facts: &NodeFacts, version: &ContainerdVersion) -> Vec<Finding> {
    let cf = facts.config.facts();
    let mut out = Vec::new();
    if !version.reads_config_version(cf.version.number()) {
        out.push(Finding::ConfigVersionUnreadable {
            file: cf.version.number(),
        });
    }
    if cf.version == ConfigVersion::V1 {
        out.push(Finding::ConfigVersion1);
    }
    if !version.honours_legacy_tls() {
        out.extend(cf.legacy_tls.iter().map(|t| Finding::ConfigIgnored {
            host: t.host.clone(),
        }));
    }
    if let Some(cp) = &cf.config_path {
        let entries = conflicting_entries(&facts.config, version);
        if !entries.is_empty() {
            out.push(Finding::ConfigConflict {
                entries,
                config_path: cp.raw.clone(),
            });
        }
        if multi_root_ignored(&facts.config, version) {
            out.push(Finding::MultiRootIgnored {
                config_path: cp.raw.clone(),
            });
        }
    }
    let mut sections = Vec::new();
    if !cf.mirrors.is_empty() {
        sections.push("mirrors");
    }
    if !cf.legacy_tls.is_empty() || !cf.legacy_auth.is_empty() {
        sections.push("configs");
    }
    if !cf.auths.is_empty() {
        sections.push("auths");
    }
    if !sections.is_empty() {
        out.push(Finding::DeprecatedLegacyRegistry { sections });
    }
    for dir in &facts.hosts_dirs {
        let Some(text) = &dir.hosts_toml else {
            continue;
        };
        let problems: Vec<String> = match HostsToml::parse(text) {
            Ok(h) => h
                .problems(version)
                .iter()
                .map(HostsProblem::to_string)
                .collect(),
            Err(e) => vec![e.to_string()],
        };
        if !problems.is_empty() {
            out.push(Finding::HostsTomlInvalid {
                path: join(&join(&dir.root, &dir.name), "hosts.toml"),
                problems,
            });
        }
    }
    out
}
