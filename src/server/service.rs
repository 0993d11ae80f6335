//! The `ctrdiag.v1.Diagnostics` service: authorizes each call, validates its input,
//! asks the adapters, and converts the answer. No policy of its own beyond that.

use tonic::{Request, Response, Status};

use crate::api::v1 as pb;
use crate::api::v1::diagnostics_server::Diagnostics;
use crate::containerd::{ContainerdClient, Namespace, PullOutcome};
use crate::settings::Settings;

use super::authz::{Access, Caller, Policy};
use super::error::ServiceError;

/// Longest image reference accepted (containerd's own limit on names is far lower).
const MAX_IMAGE_LEN: usize = 4096;

pub struct DiagnosticsService {
    containerd: ContainerdClient,
    policy: Policy,
    settings: Settings,
}

impl DiagnosticsService {
    pub fn new(settings: Settings) -> Self {
        let containerd =
            ContainerdClient::new(&settings.containerd_socket, settings.namespace.clone())
                .with_pull_timeout(settings.pull_timeout);
        DiagnosticsService {
            containerd,
            policy: Policy::new(settings.socket_group.clone()),
            settings,
        }
    }

    /// Checks the caller of `req` against the policy; refusals are logged with the uid.
    fn authorize<T>(
        &self,
        req: &Request<T>,
        rpc: &'static str,
        access: Access,
    ) -> Result<(), ServiceError> {
        let caller = req
            .extensions()
            .get::<tonic::transport::server::UdsConnectInfo>()
            .and_then(|info| info.peer_cred)
            .map(|cred| Caller {
                uid: cred.uid(),
                gid: cred.gid(),
                pid: cred.pid(),
            });
        self.policy
            .authorize(caller, rpc, access)
            .inspect_err(|denied| {
                tracing::warn!(
                    rpc,
                    uid = caller.map(|c| c.uid),
                    pid = caller.and_then(|c| c.pid),
                    %denied,
                    "refused call"
                );
            })?;
        Ok(())
    }

    /// The namespace a request names, or the daemon's default.
    fn client_for(&self, namespace: &str) -> Result<ContainerdClient, ServiceError> {
        if namespace.is_empty() {
            return Ok(self.containerd.clone());
        }
        let ns: Namespace = namespace.parse()?;
        Ok(self.containerd.in_namespace(ns))
    }
}

/// Validates an image reference at the boundary.
fn parse_image(image: &str) -> Result<String, ServiceError> {
    let invalid = |message: String| ServiceError::InvalidArgument {
        field: "image",
        message,
    };
    if image.trim().is_empty() {
        return Err(invalid("the image reference is empty".into()));
    }
    if image.len() > MAX_IMAGE_LEN {
        return Err(invalid(format!(
            "the image reference is {} bytes long; at most {MAX_IMAGE_LEN} are allowed",
            image.len()
        )));
    }
    Ok(image.to_string())
}

#[tonic::async_trait]
impl Diagnostics for DiagnosticsService {
    async fn get_status(
        &self,
        req: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        self.authorize(&req, "GetStatus", Access::Read)?;
        let (version, runtime) =
            tokio::join!(self.containerd.version(), self.containerd.runtime_status());
        let mut containerd = pb::ContainerdStatus {
            socket: self.containerd.socket().display().to_string(),
            ..Default::default()
        };
        match version {
            Ok(v) => {
                containerd.reachable = true;
                containerd.version = v.version;
            }
            Err(e) => containerd.error = e.to_string(),
        }
        match runtime {
            Ok(r) => {
                containerd.cri_ready = r.runtime_ready;
                containerd.cri_problems = r.problems;
            }
            Err(e) if containerd.error.is_empty() => containerd.error = e.to_string(),
            Err(_) => {}
        }
        Ok(Response::new(pb::GetStatusResponse {
            daemon_version: env!("CARGO_PKG_VERSION").to_string(),
            containerd: Some(containerd),
            config: Some(crate::api::config_status(&self.settings.containerd_config)),
        }))
    }

    async fn list_images(
        &self,
        req: Request<pb::ListImagesRequest>,
    ) -> Result<Response<pb::ListImagesResponse>, Status> {
        self.authorize(&req, "ListImages", Access::Read)?;
        let client = self.client_for(&req.get_ref().namespace)?;
        let images = client.list_images().await.map_err(ServiceError::from)?;
        Ok(Response::new(pb::ListImagesResponse {
            namespace: client.namespace().to_string(),
            images: images.into_iter().map(pb::Image::from).collect(),
        }))
    }

    async fn remove_image(
        &self,
        req: Request<pb::RemoveImageRequest>,
    ) -> Result<Response<pb::RemoveImageResponse>, Status> {
        self.authorize(&req, "RemoveImage", Access::Mutate)?;
        let r = req.get_ref();
        let client = self.client_for(&r.namespace)?;
        let image = parse_image(&r.image)?;
        client
            .remove_image(&image)
            .await
            .map_err(ServiceError::from)?;
        tracing::info!(image, namespace = %client.namespace(), "removed image");
        Ok(Response::new(pb::RemoveImageResponse {}))
    }

    async fn test_pull(
        &self,
        req: Request<pb::TestPullRequest>,
    ) -> Result<Response<pb::TestPullResponse>, Status> {
        let keep = req.get_ref().keep;
        let access = if keep { Access::Mutate } else { Access::Read };
        self.authorize(&req, "TestPull", access)?;
        let image = parse_image(&req.get_ref().image)?;
        // CRI pulls land in k8s.io whatever the daemon's default namespace is.
        let cri = self.containerd.in_namespace(Namespace::default());
        let present_before = cri
            .cri_image_present(&image)
            .await
            .map_err(ServiceError::from)?;
        let outcome = cri.test_pull(&image).await.map_err(ServiceError::from)?;
        let mut resp = pb::TestPullResponse::from_outcome(&image, &outcome);
        if matches!(outcome, PullOutcome::Pulled { .. }) && !present_before && !keep {
            cri.remove_image(&image).await.map_err(ServiceError::from)?;
            resp.removed_after = true;
        }
        tracing::info!(
            image,
            ok = resp.ok,
            cause = resp.cause,
            duration_ms = resp.duration_ms,
            "test pull"
        );
        Ok(Response::new(resp))
    }
}
