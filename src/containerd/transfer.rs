//! A trial pull through containerd's Transfer service (1.7+), which takes the hosts
//! directory per request: the candidate hosts.toml is tried by containerd itself, with
//! its own resolver and TLS code, before anything under the node's hosts directory
//! changes.
//!
//! The pull goes into a namespace of ctrdiag's own ([`TRIAL_NAMESPACE`]), so CRI's
//! `k8s.io` store (what the kubelet sees) is never touched; the namespace is emptied and
//! removed again afterwards, whatever the outcome. Content only, no unpack: the trial
//! proves the registry conversation (resolve, manifests, blobs), not a snapshotter.

use std::path::Path;
use std::time::Instant;

use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::namespaces_client::NamespacesClient;
use containerd_client::services::v1::transfer_client::TransferClient;
use containerd_client::services::v1::{
    DeleteImageRequest, DeleteNamespaceRequest, TransferRequest,
};
use containerd_client::to_any;
use containerd_client::types::Platform;
use containerd_client::types::transfer::{ImageStore, OciRegistry, RegistryResolver};

use super::{ContainerdClient, ContainerdError, Namespace, PullOutcome, Result};

/// Where trial pulls land: ctrdiag's alone, emptied after each trial.
pub const TRIAL_NAMESPACE: &str = "ctrdiag.trial";

impl ContainerdClient {
    /// Pulls `image` through the Transfer service with `host_dir` as containerd's hosts
    /// directory, then removes what it pulled. `Unimplemented` (containerd 1.6 has no
    /// Transfer service) comes back as [`ContainerdError::Rpc`] with that code.
    pub async fn trial_pull(&self, image: &str, host_dir: &Path) -> Result<PullOutcome> {
        self.check_socket()?;
        let ns: Namespace = TRIAL_NAMESPACE.parse().expect("a valid namespace name");
        let trial = self.in_namespace(ns);
        let source = OciRegistry {
            reference: image.to_string(),
            resolver: Some(RegistryResolver {
                host_dir: host_dir.display().to_string(),
                ..Default::default()
            }),
        };
        let destination = ImageStore {
            name: image.to_string(),
            platforms: vec![host_platform()],
            ..Default::default()
        };
        let mut req = trial.request(TransferRequest {
            source: Some(to_any(&source)),
            destination: Some(to_any(&destination)),
            options: None,
        });
        req.set_timeout(self.pull_timeout);
        let started = Instant::now();
        let result = tokio::time::timeout(
            self.pull_timeout,
            TransferClient::new(self.channel.clone()).transfer(req),
        )
        .await;
        let duration = started.elapsed();
        // Cleaned up whatever happened: a failed pull may have stored some content.
        trial.remove_trial_namespace().await;
        let outcome = match result {
            Err(_) => PullOutcome::TimedOut {
                limit: self.pull_timeout,
            },
            Ok(Ok(_)) => PullOutcome::Pulled {
                image_id: String::new(),
                duration,
            },
            Ok(Err(status)) if status.code() == tonic::Code::DeadlineExceeded => {
                PullOutcome::TimedOut {
                    limit: self.pull_timeout,
                }
            }
            Ok(Err(status)) => match self.status_error("Transfer", status) {
                ContainerdError::Rpc { code, message, .. }
                    if code != tonic::Code::Unimplemented =>
                {
                    PullOutcome::Failed {
                        code,
                        message,
                        duration,
                    }
                }
                other => return Err(other),
            },
        };
        Ok(outcome)
    }

    /// Deletes every image record of this client's namespace (waiting for containerd's
    /// garbage collection, so the content goes too) and then the namespace. Best
    /// effort: a leftover is logged and emptied by the next trial.
    async fn remove_trial_namespace(&self) {
        let images = match self.list_raw().await {
            Ok(images) => images,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the trial namespace to empty it");
                return;
            }
        };
        for image in images {
            let req = self.request(DeleteImageRequest {
                name: image.name.clone(),
                sync: true,
                target: None,
            });
            if let Err(e) = ImagesClient::new(self.channel.clone()).delete(req).await {
                tracing::warn!(image = image.name, error = %e, "cannot remove a trial image");
            }
        }
        let req = self.request(DeleteNamespaceRequest {
            name: self.namespace.as_str().to_string(),
        });
        if let Err(e) = NamespacesClient::new(self.channel.clone())
            .delete(req)
            .await
        {
            tracing::info!(error = %e, "the trial namespace stays until its content is collected");
        }
    }
}

/// The platform CRI would pull for here.
fn host_platform() -> Platform {
    let architecture = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    Platform {
        os: "linux".into(),
        architecture: architecture.into(),
        variant: String::new(),
        os_version: String::new(),
    }
}
