//! Planning trust changes as pure file edits (DESIGN.md "Choosing the mechanism").
//!
//! Order of preference, each rule measured on real containerd (LAB.md):
//! 1. hosts.toml under an existing single-root `config_path`: works on 1.6–2.x with
//!    no restart.
//! 2. No `config_path`: set it (restart) and write hosts.toml.
//! 3. Legacy `mirrors` (any version) or `configs.<host>.tls` (1.x) next to
//!    `config_path`, or next to the one about to be set, stop the CRI plugin (on
//!    1.6/1.7 every CRI call then fails). The same plan moves them into hosts.toml
//!    (see `migrate`) and takes them out of config.toml (restart), for every host that
//!    has them, since any one is enough. What cannot move without losing something is
//!    refused with [`PlanError::LegacyBlocksConfigPath`], for the operator to move.
//! 4. Multi-root `config_path` on 2.1+ in Transfer mode is ignored: plan a single root.
//! 5. Legacy `configs.<host>.tls` only on 1.x, without `config_path`, and only when
//!    the caller asks: it is ignored on 2.x and fatal next to `config_path`.
//!
//! Edits are descriptions; the executor backs up, writes atomically and verifies.
//! hosts.toml edits come before the config.toml one, so they are in place when
//! containerd restarts.

use super::config_toml::{ConfigError, ConfigToml, LegacyTlsSetting};
use super::facts::{DEFAULT_CERTS_DIR, NodeFacts};
use super::hosts_dir::{DEFAULT_DIR, hosts_dir_name_for, join, own_dir_names};
use super::hosts_toml::{HostsProblemKind, HostsToml, HostsTomlError, server_url};
use super::migrate::{Migration, MovedDir, Unmovable};
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

/// An insecure setting: what a change turns on, and what the end of its time to live
/// takes back out. Its serde names are stable (they are in change records).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum InsecureMode {
    /// `skip_verify = true` (hosts.toml) / `insecure_skip_verify = true` (config.toml).
    SkipVerify,
    /// The registry's `http://` endpoint.
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
        "config.toml has {entries:?}, which stop the CRI plugin of containerd {containerd} from \
         loading next to `config_path`, and ctrdiag cannot move them to hosts.toml: {problem}; \
         move them by hand into <config_path>/<host>/hosts.toml (containerd's docs/hosts.md), \
         delete them from config.toml, and plan again"
    )]
    LegacyBlocksConfigPath {
        entries: Vec<String>,
        containerd: ContainerdVersion,
        /// Boxed: it can hold a whole hosts.toml error, and every plan result carries the size.
        problem: Box<Unmovable>,
    },
    #[error("{what} {path:?} must be an absolute path without control characters")]
    BadPath { what: &'static str, path: String },
}

/// Plans the edits that make containerd trust `host` as `mode` says, moving legacy
/// tables that would stop the CRI plugin into hosts.toml on the way.
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
    if options.legacy {
        return plan_legacy(facts, version, host, mode);
    }
    if !version.supports_hosts_dir() {
        return Err(PlanError::HostsDirUnsupported {
            containerd: *version,
        });
    }
    let root = hosts_root(facts, options)?;
    let existing = facts.dir_names(&root);
    let migration = Migration::plan(&facts.config, version, host, &existing)
        .map_err(|problem| blocked(&facts.config, version, problem))?;
    let target = hosts_dir_name_for(host, &existing);
    let mut edits = vec![target_edit(facts, version, &root, host, mode, &migration)?];
    for moved in migration.dirs.iter().filter(|d| d.name != target) {
        edits.extend(moved_edit(facts, version, &root, moved)?);
    }
    edits.extend(config_edit(facts, version, &root, &migration)?);
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
pub(crate) fn multi_root_ignored(config: &ConfigToml, version: &ContainerdVersion) -> bool {
    let cf = config.facts();
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

/// The root hosts.toml files go under: the first `config_path` root, or the one the
/// plan sets.
fn hosts_root(facts: &NodeFacts, options: &PlanOptions) -> Result<String, PlanError> {
    match &facts.config.facts().config_path {
        Some(cp) => Ok(cp
            .roots()
            .first()
            .copied()
            .unwrap_or(DEFAULT_CERTS_DIR)
            .to_string()),
        None => {
            check_path("certs.d directory", &options.certs_dir)?;
            Ok(options.certs_dir.clone())
        }
    }
}

/// The refusal for legacy tables that block `config_path` but cannot move.
fn blocked(config: &ConfigToml, version: &ContainerdVersion, problem: Unmovable) -> PlanError {
    PlanError::LegacyBlocksConfigPath {
        entries: conflicting_entries(config, version),
        containerd: *version,
        problem: Box::new(problem),
    }
}

/// The hosts.toml of the host being fixed: the requested trust on top of the file
/// there and of the settings moved to it from config.toml.
fn target_edit(
    facts: &NodeFacts,
    version: &ContainerdVersion,
    root: &str,
    host: &RegistryHost,
    mode: &TrustMode,
    migration: &Migration,
) -> Result<Edit, PlanError> {
    let existing = facts.dir_names(root);
    let name = hosts_dir_name_for(host, &existing);
    let path = join(&join(root, &name), "hosts.toml");
    let before = facts.dir(root, &name).and_then(|d| d.hosts_toml.clone());
    let moved = migration.dir(&name);
    let current = match moved {
        Some(m) => Some(merged(&facts.config, version, &path, before.as_deref(), m)?),
        None => before.as_deref().and_then(|t| usable(t, version)),
    };
    let after = match current {
        Some(current) => current.with_trust(host, mode)?,
        None => HostsToml::recommended(host, mode),
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
    if let Some(m) = moved {
        reason.push_str(&format!(
            "; with the settings of {} moved here from config.toml",
            m.sources.join(", ")
        ));
    }
    if before.is_none() && existing.contains(DEFAULT_DIR) {
        reason.push_str("; this directory takes precedence over _default, whose settings no longer apply to this host");
    }
    Ok(Edit::WriteFile {
        path,
        kind: FileKind::HostsToml,
        before,
        after,
        needs_restart: false,
        reason,
    })
}

/// The hosts.toml of another directory that settings move to; none when the file
/// already says all of it.
fn moved_edit(
    facts: &NodeFacts,
    version: &ContainerdVersion,
    root: &str,
    moved: &MovedDir,
) -> Result<Option<Edit>, PlanError> {
    let path = join(&join(root, &moved.name), "hosts.toml");
    let before = facts
        .dir(root, &moved.name)
        .and_then(|d| d.hosts_toml.clone());
    let after = merged(&facts.config, version, &path, before.as_deref(), moved)?.to_string();
    if before.as_ref() == Some(&after) {
        return Ok(None);
    }
    Ok(Some(Edit::WriteFile {
        path,
        kind: FileKind::HostsToml,
        before,
        after,
        needs_restart: false,
        reason: format!("move {} here from config.toml", moved.sources.join(", ")),
    }))
}

/// The file at `path` (`before`, when containerd can use it; else a new one) with
/// `moved` merged in. A value the existing file sets differently is refused.
fn merged(
    config: &ConfigToml,
    version: &ContainerdVersion,
    path: &str,
    before: Option<&str>,
    moved: &MovedDir,
) -> Result<HostsToml, PlanError> {
    let text = match before.and_then(|t| usable(t, version)) {
        Some(current) => current.with_moved(&moved.settings).map_err(|error| {
            let path = path.to_string();
            blocked(config, version, Unmovable::Existing { path, error })
        })?,
        None => format!(
            "# Registry settings for {}, moved from config.toml by ctrdiag.\n{}",
            moved.name,
            HostsToml::parse("")?.with_moved(&moved.settings)?
        ),
    };
    Ok(HostsToml::parse(&text)?)
}

/// `text` parsed, if containerd can use it as it is or once it has a `[host]` table
/// (which every edit adds). A file containerd drops anyway is replaced instead.
fn usable(text: &str, version: &ContainerdVersion) -> Option<HostsToml> {
    HostsToml::parse(text).ok().filter(|h| {
        h.problems(version)
            .iter()
            .all(|p| matches!(p.kind, HostsProblemKind::NoHostTable))
    })
}

/// The config.toml edit, if one is needed: the blocking legacy tables out, and
/// `config_path` set when missing or when this containerd ignores its several roots
/// (judged on the file without those tables: they kept CRI in local pull mode).
fn config_edit(
    facts: &NodeFacts,
    version: &ContainerdVersion,
    root: &str,
    migration: &Migration,
) -> Result<Option<Edit>, PlanError> {
    let (cleaned, removed) = facts.config.without_tables(&migration.tails())?;
    let cleaned = ConfigToml::parse(&cleaned)?;
    let mut reasons = Vec::new();
    if !removed.is_empty() {
        reasons.push(format!(
            "remove {} (moved to hosts.toml under {root:?}): next to config_path they stop the \
             CRI plugin from loading",
            removed.join(", ")
        ));
    }
    let config_path = match &cleaned.facts().config_path {
        None => Some(format!(
            "config_path is not set: point it at {root:?} so containerd reads hosts.toml"
        )),
        Some(cp) if multi_root_ignored(&cleaned, version) => Some(format!(
            "containerd {version} ignores the multi-root config_path {:?} for CRI pulls: use the \
             single root {root:?}",
            cp.raw
        )),
        Some(_) => None,
    };
    let after = match config_path {
        Some(reason) => {
            reasons.push(reason);
            cleaned.with_config_path(root)?
        }
        None => cleaned.to_string(),
    };
    if reasons.is_empty() {
        return Ok(None);
    }
    Ok(Some(Edit::WriteFile {
        path: facts.config_file.clone(),
        kind: FileKind::ConfigToml,
        before: Some(facts.config.to_string()),
        after,
        needs_restart: true,
        reason: reasons.join("; "),
    }))
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
