//! The cache flow: a plan that purges a registry's cached images (every name),
//! refusing images that containers use unless forced.

use super::fix::PreparedFix;
use super::ports::{ContainerdPort, Prober, UnitManager};
use super::{Controller, ControllerError};
use crate::cache::{CachedImage, plan_purge};
use crate::containerd::Namespace;
use crate::plan::ChangeMeta;
use crate::registry::host::RegistryHost;

impl<C: ContainerdPort, U: UnitManager, P: Prober> Controller<C, U, P> {
    /// The plan that removes every cached image of `registry` through CRI.
    pub async fn prepare_purge(
        &self,
        registry: &RegistryHost,
        force: bool,
        dry_run: bool,
    ) -> Result<PreparedFix, ControllerError> {
        self.check_recovery(dry_run).await?;
        let images: Vec<CachedImage> = self
            .containerd
            .list_images(&Namespace::default())
            .await?
            .into_iter()
            .map(|i| CachedImage {
                name: i.name,
                digest: i.digest,
            })
            .collect();
        let containers = self.containerd.list_containers().await?;
        let plan = plan_purge(registry, &images, &containers, force)?;
        Ok(PreparedFix {
            preflight: self.preflight(&plan, false).await,
            plan,
            meta: ChangeMeta::plain(),
            trial: None,
        })
    }
}
