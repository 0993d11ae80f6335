//! Containers in every namespace (CRI's in k8s.io, and those of ctr, nerdctl or any
//! other client), with the image record each names: what a cache purge must not pull
//! out from under them.

use containerd_client::services::v1::ListContainersRequest;
use containerd_client::services::v1::containers_client::ContainersClient;

use super::{ContainerdClient, Namespace, Result};
use crate::cache::ContainerRef;

impl ContainerdClient {
    /// Every container of every namespace.
    pub async fn list_containers(&self) -> Result<Vec<ContainerRef>> {
        self.check_socket()?;
        let mut out = Vec::new();
        for name in self.namespace_names().await? {
            let Ok(namespace) = name.parse::<Namespace>() else {
                continue;
            };
            let client = self.in_namespace(namespace);
            let containers = ContainersClient::new(client.channel.clone())
                .list(client.request(ListContainersRequest::default()))
                .await
                .map_err(|s| client.status_error("ListContainers", s))?
                .into_inner()
                .containers;
            out.extend(containers.into_iter().map(|c| ContainerRef {
                namespace: name.clone(),
                id: c.id,
                image: c.image,
            }));
        }
        Ok(out)
    }
}
