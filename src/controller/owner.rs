//! Who owns containerd's configuration on this node, asked before a fix is planned:
//! where k3s or RKE2 generate it, or Bottlerocket renders it from its settings, no plan
//! is made (an edit would be overwritten at the owner's next start, or never read) and
//! the fix ends with the change to make in the owner's format instead.

use std::path::Path;

use super::ports::{ContainerdPort, Prober, UnitManager};
use super::{Controller, ControllerError};
use crate::ctrconfig::HostsDirFacts;
use crate::fix::FixSpec;
use crate::managed::{ManagedRequest, change};
use crate::nodefiles::{OwnerFiles, read_owner};

impl<C: ContainerdPort, U: UnitManager, P: Prober> Controller<C, U, P> {
    /// Who owns containerd's configuration, given the hosts directories already read.
    pub(super) fn owner_files(
        &self,
        hosts_dirs: &[HostsDirFacts],
    ) -> Result<OwnerFiles, ControllerError> {
        Ok(read_owner(
            &self.node.containerd_config,
            hosts_dirs,
            self.node.node_manager_registries.as_deref(),
            &self.node.os_release,
        )?)
    }

    /// Stops a fix on a node another system owns with the change to make there
    /// ([`ControllerError::Managed`]); nothing is planned or written. `ca_file` is the
    /// CA's path as the operator named it.
    pub(super) async fn refuse_if_managed(
        &self,
        spec: &FixSpec,
        ca_file: Option<&Path>,
    ) -> Result<(), ControllerError> {
        // The hosts.toml headers are evidence too; without containerd's version (or
        // with a config.toml ctrdiag cannot read) the other signs still decide.
        let hosts_dirs = match self.containerd_version().await {
            Ok(v) => crate::nodefiles::read(&self.node.containerd_config, &v)
                .map(|f| f.facts.hosts_dirs)
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let files = self.owner_files(&hosts_dirs)?;
        let ca_file = ca_file.map(|p| p.display().to_string());
        let req = ManagedRequest {
            host: &spec.host,
            mode: &spec.mode,
            ca_file: ca_file.as_deref(),
            registries_file: &files.registries_file,
            registries_text: files.registries_text.as_deref(),
            unit: &self.node.containerd_unit,
            verify_image: spec.verify_image.as_deref(),
        };
        match change(&files.owner, &req)? {
            None => Ok(()),
            Some(c) => {
                tracing::warn!(
                    owner = c.owner,
                    host = %spec.host,
                    "fix not planned: containerd's configuration is owned by {}; the change to make there is shown instead",
                    c.owner
                );
                Err(ControllerError::Managed(Box::new(c)))
            }
        }
    }
}
