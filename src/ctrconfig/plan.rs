//! Planning trust changes as pure file edits (DESIGN.md "Choosing the mechanism").
//!
//! Order of preference, each rule measured on real containerd (LAB.md):
//! 1. hosts.toml under an existing single-root `config_path`: works on 1.6–2.x with
//!    no restart.
//! 2. No `config_path`: set it (restart) and write hosts.toml, unless legacy
//!    `mirrors` (any version) or `configs.tls` (1.x) are present, which would make
//!    the CRI plugin refuse to load.
//! 3. Multi-root `config_path` on 2.1+ in Transfer mode is ignored: plan a single root.
//! 4. Legacy `configs.<host>.tls` only on 1.x, without `config_path`, and only when
//!    the caller asks: it is ignored on 2.x and fatal next to `config_path`.
//!
//! Edits are descriptions; the executor backs up, writes atomically and verifies.

use super::config_toml::{ConfigError, ConfigToml, LegacyTlsSetting};
use super::facts::{DEFAULT_CERTS_DIR, NodeFacts};
use super::hosts_dir::{DEFAULT_DIR, hosts_dir_name_for, join, own_dir_names};
use super::hosts_toml::{HostsProblemKind, HostsToml, HostsTomlError, server_url};
use super::version::ContainerdVersion;
use crate::registry::host::RegistryHost;

/// How the registry's certificate should be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustMode {
    /// Trust this CA file (absolute path, installed by another step). The real fix.
    Ca(String),
    /// Do not verify the certificate. For test environments only.
    SkipVerify,
    /// The registry speaks plain HTTP: `skip_verify` would not help.
    PlainHttp,
}

/// Caller's choices that the facts cannot decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// Use legacy `configs.<host>.tls` / `mirrors` instead of adding `config_path`
    /// (only possible on 1.x without `config_path`).
    pub legacy: bool,
    /// Root to set as `config_path` when the config has none.
    pub certs_dir: String,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            legacy: false,
            certs_dir: DEFAULT_CERTS_DIR.to_string(),
        }
    }
}

/// Which file an edit touches, so the executor knows whether a restart follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    ConfigToml,
    HostsToml,
    /// A certificate or key file in a hosts directory.
    HostsDirFile,
}

/// One planned change to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// Create or replace `path`; `before` is `None` when the file does not exist yet.
    WriteFile {
        path: String,
        kind: FileKind,
        before: Option<String>,
        after: String,
        /// containerd reads config.toml only at start; hosts.toml is read per pull.
        needs_restart: bool,
        reason: String,
    },
    /// Take `path` out of service (the executor moves it to a backup; nothing is
    /// deleted). `before` is its text when known.
    RemoveFile {
        path: String,
        kind: FileKind,
        before: Option<String>,
        needs_restart: bool,
        reason: String,
    },
}

impl Edit {
    pub fn path(&self) -> &str {
        match self {
            Edit::WriteFile { path, .. } | Edit::RemoveFile { path, .. } => path,
        }
    }

    pub fn needs_restart(&self) -> bool {
        match self {
            Edit::WriteFile { needs_restart, .. } | Edit::RemoveFile { needs_restart, .. } => {
                *needs_restart
            }
        }
    }
}

/// Whether applying `edits` requires restarting containerd.
pub fn needs_restart(edits: &[Edit]) -> bool {
    edits.iter().any(Edit::needs_restart)
}

/// Why no safe plan exists; each message says what to do instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    HostsToml(#[from] HostsTomlError),
    #[error(
        "config.toml is a version {file} file but containerd {containerd} does not read that \
         version; on 2.x run `containerd config migrate`, on 1.x use a version 2 file"
    )]
    ConfigVersionUnreadable {
        file: u32,
        containerd: ContainerdVersion,
    },
    #[error(
        "containerd {containerd} has no hosts.toml support (added in 1.5): ask for the legacy \
         `configs.<host>.tls` mechanism, or upgrade containerd"
    )]
    HostsDirUnsupported { containerd: ContainerdVersion },
    #[error(
        "containerd {containerd} ignores legacy `configs.<host>.tls`: use hosts.toml (plan without \
         the legacy option)"
    )]
    LegacyIgnored { containerd: ContainerdVersion },
    #[error(
        "config.toml sets `config_path = {config_path:?}`: legacy registry settings next to it stop \
         the CRI plugin from loading; use hosts.toml (plan without the legacy option)"
    )]
    LegacyWithConfigPath { config_path: String },
    #[error(
        "config.toml has {entries:?}, which cannot coexist with `config_path` on containerd \
         {containerd} (the CRI plugin would refuse to load): remove them first (remove-overrides \
         plan) and plan again, or ask for the legacy mechanism"
    )]
    LegacyBlocksConfigPath {
        entries: Vec<String>,
        containerd: ContainerdVersion,
    },
    #[error("{what} {path:?} must be an absolute path without control characters")]
    BadPath { what: &'static str, path: String },
}

/// Plans the edits that make containerd trust `host` as `mode` says.
pub fn plan_trust(
    facts: &NodeFacts,
    version: &ContainerdVersion,
    host: &RegistryHost,
    mode: &TrustMode,
    options: &PlanOptions,
) -> Result<Vec<Edit>, PlanError> {
    check_version(&facts.config, version)?;
    if let TrustMode::Ca(ca) = mode {
        check_path("CA file", ca)?;
    }
    let cf = facts.config.facts();
    if options.legacy {
        return plan_legacy(facts, version, host, mode);
    }
    if !version.supports_hosts_dir() {
        return Err(PlanError::HostsDirUnsupported {
            containerd: *version,
        });
    }
    let conflicts = conflicting_entries(&facts.config, version);
    let mut config_edit = None;
    let root = match &cf.config_path {
        Some(cp) => {
            if !conflicts.is_empty() {
                return Err(PlanError::LegacyBlocksConfigPath {
                    entries: conflicts,
                    containerd: *version,
                });
            }
            let roots = cp.roots();
            let first = roots
                .first()
                .copied()
                .unwrap_or(DEFAULT_CERTS_DIR)
                .to_string();
            if multi_root_ignored(facts, version) {
                config_edit = Some((
                    first.clone(),
                    format!(
                        "containerd {version} ignores the multi-root config_path {:?} for CRI pulls: \
                         use the single root {first:?}",
                        cp.raw
                    ),
                ));
            }
            first
        }
        None => {
            if !conflicts.is_empty() {
                return Err(PlanError::LegacyBlocksConfigPath {
                    entries: conflicts,
                    containerd: *version,
                });
            }
            check_path("certs.d directory", &options.certs_dir)?;
            let root = options.certs_dir.clone();
            config_edit = Some((
                root.clone(),
                format!(
                    "config_path is not set: point it at {root:?} so containerd reads hosts.toml"
                ),
            ));
            root
        }
    };

    let mut edits = vec![hosts_edit(facts, version, &root, host, mode)?];
    if let Some((value, reason)) = config_edit {
        edits.push(Edit::WriteFile {
            path: facts.config_file.clone(),
            kind: FileKind::ConfigToml,
            before: Some(facts.config.to_string()),
            after: facts.config.with_config_path(&value)?,
            needs_restart: true,
            reason,
        });
    }
    Ok(edits)
}

/// Plans taking legacy overrides out of config.toml (`configs.<host>.tls`,
/// `mirrors.<host>`) and the hosts directories' files out of service, for `host`
/// or for every host. Credentials (`configs.<host>.auth`) stay.
pub fn plan_remove_overrides(
    facts: &NodeFacts,
    host: Option<&RegistryHost>,
) -> Result<Vec<Edit>, PlanError> {
    let mut edits = Vec::new();
    let (after, removed) = facts.config.without_overrides(host)?;
    if !removed.is_empty() {
        edits.push(Edit::WriteFile {
            path: facts.config_file.clone(),
            kind: FileKind::ConfigToml,
            before: Some(facts.config.to_string()),
            after,
            needs_restart: true,
            reason: format!("remove legacy registry overrides {}", removed.join(", ")),
        });
    }
    // `_default` belongs to every host: only a removal for all hosts touches it.
    let wanted: Option<Vec<String>> = host.map(own_dir_names);
    for dir in &facts.hosts_dirs {
        if let Some(names) = &wanted
            && !names.contains(&dir.name)
        {
            continue;
        }
        let base = join(&dir.root, &dir.name);
        if let Some(text) = &dir.hosts_toml {
            edits.push(Edit::RemoveFile {
                path: join(&base, "hosts.toml"),
                kind: FileKind::HostsToml,
                before: Some(text.clone()),
                needs_restart: false,
                reason: format!("take the hosts.toml of {} out of service", dir.name),
            });
        }
        for f in &dir.other_files {
            edits.push(Edit::RemoveFile {
                path: join(&base, f),
                kind: FileKind::HostsDirFile,
                before: None,
                needs_restart: false,
                reason: format!("take {f} of {} out of service", dir.name),
            });
        }
    }
    Ok(edits)
}

/// Legacy entries that make the CRI plugin refuse to load next to `config_path`
/// on this version, as dotted keys.
pub(crate) fn conflicting_entries(config: &ConfigToml, version: &ContainerdVersion) -> Vec<String> {
    let f = config.facts();
    let reg = super::tree::dotted(f.version.registry_table());
    let mut out = Vec::new();
    if version.mirrors_conflict_with_config_path() {
        out.extend(
            f.mirrors
                .iter()
                .map(|m| format!("{reg}.mirrors.{:?}", m.host)),
        );
    }
    if version.legacy_tls_conflicts_with_config_path() {
        out.extend(
            f.legacy_tls
                .iter()
                .map(|t| format!("{reg}.configs.{:?}.tls", t.host)),
        );
    }
    out
}

/// Multi-root `config_path` that this containerd silently ignores for CRI pulls:
/// 2.1+ and Transfer mode (no legacy registry settings switching CRI to local pulls).
pub(crate) fn multi_root_ignored(facts: &NodeFacts, version: &ContainerdVersion) -> bool {
    let cf = facts.config.facts();
    cf.config_path.as_ref().is_some_and(|cp| cp.is_multi_root())
        && version.ignores_multi_root_in_transfer_mode()
        && version.cri_uses_transfer_service()
        && !cf.has_legacy_registry()
}

fn check_version(config: &ConfigToml, version: &ContainerdVersion) -> Result<(), PlanError> {
    let file = config.version().number();
    if version.reads_config_version(file) {
        Ok(())
    } else {
        Err(PlanError::ConfigVersionUnreadable {
            file,
            containerd: *version,
        })
    }
}

fn check_path(what: &'static str, path: &str) -> Result<(), PlanError> {
    if path.starts_with('/') && !path.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(PlanError::BadPath {
            what,
            path: path.chars().take(200).collect(),
        })
    }
}

fn hosts_edit(
    facts: &NodeFacts,
    version: &ContainerdVersion,
    root: &str,
    host: &RegistryHost,
    mode: &TrustMode,
) -> Result<Edit, PlanError> {
    let existing = facts.dir_names(root);
    let name = hosts_dir_name_for(host, &existing);
    let dir = join(root, &name);
    let before = facts.dir(root, &name).and_then(|d| d.hosts_toml.clone());
    // Keep a usable existing file (mirrors, headers, comments); replace one that
    // containerd cannot use anyway.
    let after = match before.as_deref().map(HostsToml::parse) {
        Some(Ok(current))
            if current
                .problems(version)
                .iter()
                .all(|p| matches!(p.kind, HostsProblemKind::NoHostTable)) =>
        {
            current.with_trust(host, mode)?
        }
        _ => HostsToml::recommended(host, mode),
    };
    let mut reason = format!(
        "trust {host} through {} ({})",
        server_url(host, mode),
        match mode {
            TrustMode::Ca(ca) => format!("CA {ca}"),
            TrustMode::SkipVerify => "skip_verify: test environments only".to_string(),
            TrustMode::PlainHttp => "plain HTTP".to_string(),
        }
    );
    if before.is_none() && existing.contains(DEFAULT_DIR) {
        reason.push_str("; this directory takes precedence over _default, whose settings no longer apply to this host");
    }
    Ok(Edit::WriteFile {
        path: join(&dir, "hosts.toml"),
        kind: FileKind::HostsToml,
        before,
        after,
        needs_restart: false,
        reason,
    })
}

fn plan_legacy(
    facts: &NodeFacts,
    version: &ContainerdVersion,
    host: &RegistryHost,
    mode: &TrustMode,
) -> Result<Vec<Edit>, PlanError> {
    if !version.honours_legacy_tls() {
        return Err(PlanError::LegacyIgnored {
            containerd: *version,
        });
    }
    if let Some(cp) = &facts.config.facts().config_path {
        return Err(PlanError::LegacyWithConfigPath {
            config_path: cp.raw.clone(),
        });
    }
    let config = &facts.config;
    let (after, what) = match mode {
        TrustMode::Ca(ca) => (
            config.with_legacy_tls(host, &LegacyTlsSetting::CaFile(ca.clone()))?,
            format!("configs.\"{host}\".tls.ca_file"),
        ),
        TrustMode::SkipVerify => (
            config.with_legacy_tls(host, &LegacyTlsSetting::InsecureSkipVerify)?,
            format!("configs.\"{host}\".tls.insecure_skip_verify"),
        ),
        TrustMode::PlainHttp => (
            config.with_legacy_mirror(host, &[server_url(host, mode)])?,
            format!("mirrors.\"{host}\".endpoint"),
        ),
    };
    Ok(vec![Edit::WriteFile {
        path: facts.config_file.clone(),
        kind: FileKind::ConfigToml,
        before: Some(config.to_string()),
        after,
        needs_restart: true,
        reason: format!(
            "legacy {what} (deprecated; works on containerd 1.x without config_path only)"
        ),
    }])
}
