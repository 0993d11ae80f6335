//! The credential flows: where the node holds registry credentials (the runbook's
//! `crictl info | grep auth`, done right), and a plan that removes one registry's.

use std::path::Path;

use super::fix::PreparedFix;
use super::ports::{ContainerdPort, Prober, UnitManager};
use super::{Controller, ControllerError};
use crate::creds::{
    CredEntry, config_toml_entries, docker_config_entries, hosts_toml_entries, plan_clean,
    provider_config_entries,
};
use crate::ctrconfig::{ContainerdVersion, NodeFiles};
use crate::managed::refuse_rendered_credentials;
use crate::plan::{ChangeMeta, Step, fsops};
use crate::registry::host::RegistryHost;

/// Credential files larger than this are not credential files.
const MAX_CREDENTIAL_FILE: usize = 1 << 20;

/// What a scan found: the entries (never their values), and the files it could not read.
#[derive(Debug, Clone, Default)]
pub struct CredsScan {
    pub entries: Vec<CredEntry>,
    /// `file: what is wrong` for files left as they are.
    pub problems: Vec<String>,
}

impl<C: ContainerdPort, U: UnitManager, P: Prober> Controller<C, U, P> {
    /// Every place on the node that holds registry credentials the kubelet or
    /// containerd may use, for `registry` (all when `None`).
    pub async fn creds_scan(
        &self,
        registry: Option<&RegistryHost>,
    ) -> Result<CredsScan, ControllerError> {
        let files = self.node_files().await?;
        let mut scan = CredsScan::default();
        scan.entries.extend(config_toml_entries(&files.facts));
        scan.entries.extend(hosts_toml_entries(&files.facts));
        for (path, text) in self.docker_configs(&mut scan.problems) {
            match docker_config_entries(&path, &text) {
                Ok(entries) => scan.entries.extend(entries),
                Err(e) => scan.problems.push(e.to_string()),
            }
        }
        if let Some(path) = &self.node.credential_provider_config {
            match read_text(path) {
                Ok(Some(text)) => scan
                    .entries
                    .extend(provider_config_entries(&path.display().to_string(), &text)),
                Ok(None) => scan.problems.push(format!(
                    "{}: the credential provider config does not exist",
                    path.display()
                )),
                Err(e) => scan.problems.push(e),
            }
        }
        scan.entries.retain(|e| e.is_for(registry));
        Ok(scan)
    }

    /// The plan that removes the credentials of `registry` (every credential when
    /// `None`) and proves the result with `verify_image`, if given.
    pub async fn prepare_creds_clean(
        &self,
        registry: Option<&RegistryHost>,
        verify_image: Option<String>,
        dry_run: bool,
    ) -> Result<PreparedFix, ControllerError> {
        self.check_recovery(dry_run).await?;
        let files = self.node_files().await?;
        let mut problems = Vec::new();
        // A file that does not parse is left as it is (and said so by the scan).
        let docker: Vec<(String, String)> = self
            .docker_configs(&mut problems)
            .into_iter()
            .filter(|(path, text)| docker_config_entries(path, text).is_ok())
            .collect();
        let plan = plan_clean(
            &files,
            &docker,
            registry,
            &self.node.containerd_unit,
            verify_image,
        )?;
        // config.toml's `auth` and hosts.toml's `header`s on a node k3s or Bottlerocket
        // owns come from the owner's configuration: removed there, not here.
        let owner = self.owner_files(&files.facts.hosts_dirs)?;
        let containerds: Vec<String> = plan
            .steps
            .iter()
            .filter_map(|s| match s {
                Step::WriteFile { path, .. } | Step::MoveToBackup { path, .. } => Some(path),
                Step::RemoveImage { .. } | Step::RestartUnit { .. } => None,
            })
            .filter(|p| !self.node.credential_files.contains(p))
            .map(|p| p.display().to_string())
            .collect();
        refuse_rendered_credentials(&owner.owner, containerds, &owner.registries_file)?;
        Ok(PreparedFix {
            preflight: self.preflight(&plan, false).await,
            plan,
            meta: ChangeMeta::plain(),
            trial: None,
        })
    }

    /// containerd's configuration files as the running version reads them (as 2.x
    /// when containerd does not answer: only a missing file's defaults depend on it).
    pub(super) async fn node_files(&self) -> Result<NodeFiles, ControllerError> {
        let version = match self.containerd_version().await {
            Ok(v) => v,
            Err(_) => ContainerdVersion::ASSUMED_WHEN_UNKNOWN,
        };
        Ok(crate::nodefiles::read(
            &self.node.containerd_config,
            &version,
        )?)
    }

    /// The docker-style credential files that exist, as `(path, text)`; unreadable
    /// ones go to `problems`.
    fn docker_configs(&self, problems: &mut Vec<String>) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for path in &self.node.credential_files {
            match read_text(path) {
                Ok(Some(text)) => out.push((path.display().to_string(), text)),
                Ok(None) => {}
                Err(e) => problems.push(e),
            }
        }
        out
    }
}

/// A small text file, read without following symlinks; `None` if absent.
fn read_text(path: &Path) -> Result<Option<String>, String> {
    let shown = path.display();
    match fsops::read_regular(path) {
        Ok(None) => Ok(None),
        Ok(Some((bytes, _))) if bytes.len() > MAX_CREDENTIAL_FILE => Err(format!(
            "{shown}: {} bytes, too large for a credential file; left as it is",
            bytes.len()
        )),
        Ok(Some((bytes, _))) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| format!("{shown}: not UTF-8 text; left as it is")),
        Err(e) => Err(e.to_string()),
    }
}
