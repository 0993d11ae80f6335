//! The `ctrdiag.v1.Diagnostics` service: authorizes each call by the caller's kernel
//! credentials, parses and bounds its input, calls the controller's flow, and converts
//! the answer. Decisions live in the controller and the core; work that changes the
//! node runs under the supervisor, so a caller that goes away cannot cut it short.

use std::sync::Arc;

use tonic::{Request, Response, Status};

mod events;
mod fix;

use crate::api::v1 as pb;
use crate::api::v1::diagnostics_server::Diagnostics;
use crate::containerd::Namespace;
use crate::controller::LiveController;
use crate::registry::reference::ImageRef;

use super::authz::{Access, Caller, Policy};
use super::error::ServiceError;
use super::supervisor::Supervisor;

pub struct DiagnosticsService {
    controller: Arc<LiveController>,
    supervisor: Supervisor,
    policy: Policy,
    /// Woken when a change gets a time to live, so the expiry task re-plans its wait.
    expiry_changed: Arc<tokio::sync::Notify>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Test pulls and diagnoses running now, at most `max_concurrent_pulls`.
    pull_slots: Arc<tokio::sync::Semaphore>,
    max_concurrent_pulls: usize,
    /// Watch streams open now, at most [`events::MAX_WATCHERS`].
    watch_slots: Arc<tokio::sync::Semaphore>,
}

impl DiagnosticsService {
    pub fn new(
        controller: Arc<LiveController>,
        supervisor: Supervisor,
        policy: Policy,
        max_concurrent_pulls: usize,
        expiry_changed: Arc<tokio::sync::Notify>,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        DiagnosticsService {
            controller,
            supervisor,
            policy,
            expiry_changed,
            metrics,
            pull_slots: Arc::new(tokio::sync::Semaphore::new(max_concurrent_pulls)),
            max_concurrent_pulls,
            watch_slots: Arc::new(tokio::sync::Semaphore::new(events::MAX_WATCHERS)),
        }
    }

    /// Checks the caller of `req` against the policy; refusals are logged with the uid.
    /// The group lookup (NSS: files, LDAP, ...) runs on a blocking thread, never on
    /// the async workers that serve everyone else.
    async fn authorize<T>(
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
        let policy = self.policy.clone();
        let decision = tokio::task::spawn_blocking(move || policy.authorize(caller, rpc, access))
            .await
            .map_err(|e| ServiceError::Internal(format!("authorization task failed: {e}")))?;
        decision.inspect_err(|denied| {
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

    /// A slot for a test pull or a diagnosis, or `ResourceExhausted` when all
    /// `max_concurrent_pulls` are taken: a burst of callers cannot pile pulls onto
    /// containerd or the registry, and status keeps answering.
    fn pull_slot(
        &self,
        rpc: &'static str,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, ServiceError> {
        Arc::clone(&self.pull_slots)
            .try_acquire_owned()
            .map_err(|_| ServiceError::Busy {
                rpc,
                limit: self.max_concurrent_pulls,
            })
    }

    /// Runs work that changes the node under the supervisor and waits for it: the
    /// work goes on to its end even if this call is dropped.
    async fn supervised<T, F>(&self, work: F) -> Result<T, ServiceError>
    where
        F: std::future::Future<Output = Result<T, crate::controller::ControllerError>>
            + Send
            + 'static,
        T: Send + 'static,
    {
        let task = self.supervisor.spawn_apply(work)?;
        task.await
            .map_err(|e| ServiceError::Internal(format!("a change task failed: {e}")))?
            .map_err(ServiceError::from)
    }
}

/// A namespace named in a request; empty means the daemon's default.
fn parse_namespace(namespace: &str) -> Result<Option<Namespace>, ServiceError> {
    if namespace.is_empty() {
        return Ok(None);
    }
    Ok(Some(namespace.parse()?))
}

/// A registry host named in a request; empty means none.
fn parse_registry(
    registry: &str,
) -> Result<Option<crate::registry::host::RegistryHost>, ServiceError> {
    if registry.is_empty() {
        return Ok(None);
    }
    registry
        .parse()
        .map(Some)
        .map_err(
            |e: crate::registry::host::HostError| ServiceError::InvalidArgument {
                field: "registry",
                message: e.to_string(),
            },
        )
}

/// Validates an image reference at the boundary and returns it normalised the way
/// containerd reads it (`busybox` is `docker.io/library/busybox:latest`).
fn parse_image(image: &str) -> Result<String, ServiceError> {
    image
        .parse::<ImageRef>()
        .map(|r| r.to_string())
        .map_err(|e| ServiceError::InvalidArgument {
            field: "image",
            message: e.to_string(),
        })
}

/// Checks an image name to remove: any name containerd stores (CRI's `sha256:` id refs
/// included), but never empty, enormous or with control characters.
fn check_image_name(name: &str) -> Result<String, ServiceError> {
    let invalid = |message: &str| ServiceError::InvalidArgument {
        field: "image",
        message: message.to_string(),
    };
    if name.trim().is_empty() {
        return Err(invalid("the image name is empty"));
    }
    if name.len() > 4096 {
        return Err(invalid("the image name is longer than 4096 bytes"));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid("the image name contains control characters"));
    }
    Ok(name.to_string())
}

/// Decodes `body` as the request of `method` and runs the checks that request's
/// fields get before any work, for the API's fuzz target (fuzz/): a request either
/// passes or is refused with a status, and an accepted image name is already normal.
#[cfg(feature = "fuzzing")]
pub fn check_request(method: &str, body: &[u8]) -> Result<(), Status> {
    use prost::Message;
    let decode = |e: prost::DecodeError| Status::invalid_argument(e.to_string());
    let image = |i: &str| -> Result<(), Status> {
        let normal = parse_image(i)?;
        assert_eq!(parse_image(&normal).ok().as_ref(), Some(&normal), "{i:?}");
        Ok(())
    };
    match method {
        "ListImages" => {
            parse_namespace(
                &pb::ListImagesRequest::decode(body)
                    .map_err(decode)?
                    .namespace,
            )?;
        }
        "RemoveImage" => {
            let r = pb::RemoveImageRequest::decode(body).map_err(decode)?;
            parse_namespace(&r.namespace)?;
            check_image_name(&r.image)?;
        }
        "TestPull" => image(&pb::TestPullRequest::decode(body).map_err(decode)?.image)?,
        "Rollback" => {
            let r = pb::RollbackRequest::decode(body).map_err(decode)?;
            if !r.id.is_empty() {
                r.id.parse::<crate::change::ChangeId>()
                    .map_err(|e| Status::invalid_argument(e.to_string()))?;
            }
        }
        "Fix" => {
            let r = pb::FixRequest::decode(body).map_err(decode)?;
            fix::requested_mode(&r)?;
            if !r.verify_image.is_empty() {
                image(&r.verify_image)?;
            }
        }
        "ScanCredentials" => {
            parse_registry(
                &pb::ScanCredentialsRequest::decode(body)
                    .map_err(decode)?
                    .registry,
            )?;
        }
        "CleanCredentials" => {
            let r = pb::CleanCredentialsRequest::decode(body).map_err(decode)?;
            parse_registry(&r.registry)?;
            if !r.verify_image.is_empty() {
                image(&r.verify_image)?;
            }
        }
        "PurgeCache" => {
            parse_registry(
                &pb::PurgeCacheRequest::decode(body)
                    .map_err(decode)?
                    .registry,
            )?;
        }
        "ListEvents" => {
            events::parse_cause(&pb::ListEventsRequest::decode(body).map_err(decode)?.cause)?;
        }
        "Watch" => {
            events::parse_cause(&pb::WatchRequest::decode(body).map_err(decode)?.cause)?;
        }
        _ => {}
    }
    Ok(())
}

#[tonic::async_trait]
impl Diagnostics for DiagnosticsService {
    async fn get_status(
        &self,
        req: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        self.authorize(&req, "GetStatus", Access::Read).await?;
        let status = self.controller.status().await;
        Ok(Response::new((&status).into()))
    }

    async fn list_images(
        &self,
        req: Request<pb::ListImagesRequest>,
    ) -> Result<Response<pb::ListImagesResponse>, Status> {
        self.authorize(&req, "ListImages", Access::Read).await?;
        let ns = parse_namespace(&req.get_ref().namespace)?;
        let (ns, images) = self
            .controller
            .images(ns)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(pb::ListImagesResponse {
            namespace: ns.to_string(),
            images: images.into_iter().map(pb::Image::from).collect(),
        }))
    }

    async fn remove_image(
        &self,
        req: Request<pb::RemoveImageRequest>,
    ) -> Result<Response<pb::RemoveImageResponse>, Status> {
        self.authorize(&req, "RemoveImage", Access::Mutate).await?;
        let r = req.get_ref();
        let ns = parse_namespace(&r.namespace)?;
        let image = check_image_name(&r.image)?;
        self.controller
            .remove_image(ns, &image)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(pb::RemoveImageResponse {}))
    }

    async fn test_pull(
        &self,
        req: Request<pb::TestPullRequest>,
    ) -> Result<Response<pb::TestPullResponse>, Status> {
        let keep = req.get_ref().keep;
        let access = if keep { Access::Mutate } else { Access::Read };
        self.authorize(&req, "TestPull", access).await?;
        let image = parse_image(&req.get_ref().image)?;
        let _slot = self.pull_slot("TestPull")?;
        let report = self
            .controller
            .test_pull(&image, keep)
            .await
            .map_err(ServiceError::from)?;
        self.metrics.test_pull(report.cause);
        Ok(Response::new(pb::TestPullResponse::from(&report)))
    }

    async fn list_changes(
        &self,
        req: Request<pb::ListChangesRequest>,
    ) -> Result<Response<pb::ListChangesResponse>, Status> {
        self.authorize(&req, "ListChanges", Access::Read).await?;
        let changes = self.controller.changes().map_err(ServiceError::from)?;
        Ok(Response::new(pb::ListChangesResponse {
            changes: changes.iter().map(pb::Change::from).collect(),
        }))
    }

    async fn rollback(
        &self,
        req: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::RollbackResponse>, Status> {
        self.authorize(&req, "Rollback", Access::Mutate).await?;
        let r = req.into_inner();
        let id = if r.id.is_empty() {
            None
        } else {
            Some(
                r.id.parse()
                    .map_err(crate::plan::journal::JournalError::from)
                    .map_err(crate::controller::ControllerError::from)
                    .map_err(ServiceError::from)?,
            )
        };
        let controller = Arc::clone(&self.controller);
        let dry_run = r.dry_run;
        let rollback = self
            .supervised(async move { controller.rollback(id, dry_run).await })
            .await?;
        Ok(Response::new((&rollback).into()))
    }

    async fn diagnose(
        &self,
        req: Request<pb::DiagnoseRequest>,
    ) -> Result<Response<pb::DiagnoseResponse>, Status> {
        self.authorize(&req, "Diagnose", Access::Read).await?;
        let _slot = self.pull_slot("Diagnose")?;
        let r = req.into_inner();
        let diagnosis = self
            .controller
            .diagnose(&r.target, r.skip_pull)
            .await
            .map_err(ServiceError::from)?;
        self.metrics.diagnosis(diagnosis.healthy);
        Ok(Response::new((&diagnosis).into()))
    }

    async fn list_events(
        &self,
        req: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        self.authorize(&req, "ListEvents", Access::Read).await?;
        Ok(Response::new(events::list(
            self.controller.events(),
            req.get_ref(),
        )?))
    }

    type WatchStream = events::WatchStream;

    async fn watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        self.authorize(&req, "Watch", Access::Read).await?;
        let slot = Arc::clone(&self.watch_slots)
            .try_acquire_owned()
            .map_err(|_| ServiceError::TooManyWatchers {
                limit: events::MAX_WATCHERS,
            })?;
        Ok(Response::new(events::watch(
            self.controller.events(),
            req.get_ref(),
            slot,
        )?))
    }

    type FixStream = fix::FixStream;

    async fn fix(&self, req: Request<pb::FixRequest>) -> Result<Response<Self::FixStream>, Status> {
        self.authorize(&req, "Fix", Access::Mutate).await?;
        Ok(Response::new(self.start_fix(req.into_inner()).await?))
    }

    async fn scan_credentials(
        &self,
        req: Request<pb::ScanCredentialsRequest>,
    ) -> Result<Response<pb::ScanCredentialsResponse>, Status> {
        self.authorize(&req, "ScanCredentials", Access::Read)
            .await?;
        let registry = parse_registry(&req.get_ref().registry)?;
        let scan = self
            .controller
            .creds_scan(registry.as_ref())
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new((&scan).into()))
    }

    type CleanCredentialsStream = fix::FixStream;

    async fn clean_credentials(
        &self,
        req: Request<pb::CleanCredentialsRequest>,
    ) -> Result<Response<Self::CleanCredentialsStream>, Status> {
        self.authorize(&req, "CleanCredentials", Access::Mutate)
            .await?;
        let r = req.into_inner();
        let registry = match (parse_registry(&r.registry)?, r.all) {
            (Some(h), false) => Some(h),
            (None, true) => None,
            _ => {
                return Err(ServiceError::InvalidArgument {
                    field: "registry",
                    message: "name one registry, or ask for all of them (not both)".into(),
                }
                .into());
            }
        };
        let verify_image = match r.verify_image.as_str() {
            "" => None,
            i => Some(parse_image(i)?),
        };
        let prepared = self
            .controller
            .prepare_creds_clean(registry.as_ref(), verify_image, r.dry_run)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(
            self.stream_change(prepared, r.dry_run).await?,
        ))
    }

    type PurgeCacheStream = fix::FixStream;

    async fn purge_cache(
        &self,
        req: Request<pb::PurgeCacheRequest>,
    ) -> Result<Response<Self::PurgeCacheStream>, Status> {
        self.authorize(&req, "PurgeCache", Access::Mutate).await?;
        let r = req.into_inner();
        let registry =
            parse_registry(&r.registry)?.ok_or_else(|| ServiceError::InvalidArgument {
                field: "registry",
                message: "name the registry whose cached images to purge".into(),
            })?;
        let prepared = self
            .controller
            .prepare_purge(&registry, r.force, r.dry_run)
            .await
            .map_err(ServiceError::from)?;
        Ok(Response::new(
            self.stream_change(prepared, r.dry_run).await?,
        ))
    }

    async fn restart_containerd(
        &self,
        req: Request<pb::RestartContainerdRequest>,
    ) -> Result<Response<pb::RestartContainerdResponse>, Status> {
        self.authorize(&req, "RestartContainerd", Access::Mutate)
            .await?;
        let controller = Arc::clone(&self.controller);
        let took = self
            .supervised(async move { controller.restart_containerd().await })
            .await?;
        let unit = self.controller.unit_state().await;
        Ok(Response::new(pb::RestartContainerdResponse {
            unit: Some(crate::api::unit_status(self.controller.unit_name(), &unit)),
            duration_ms: took.as_millis() as u64,
        }))
    }
}
