//! The `ctrdiag.v1.Diagnostics` service: authorizes each call, validates its input,
//! asks the adapters, and converts the answer. No policy of its own beyond that.

use tonic::{Request, Response, Status};

mod changes;
mod diagnose;
mod fix;

use std::sync::Arc;

use crate::api::v1 as pb;
use crate::api::v1::diagnostics_server::Diagnostics;
use crate::clock::Clock;
use crate::containerd::{ContainerdClient, Namespace};
use crate::expiry::Expiry;
use crate::plan::Executor;
use crate::registry::reference::ImageRef;
use crate::settings::Settings;
use crate::systemd::SystemdClient;

use super::authz::{Access, Caller, Policy};
use super::error::ServiceError;

/// Longest GetStatus waits for systemd's view of the unit.
const UNIT_STATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Longest the expiry task sleeps before it looks at the wall clock again, so a
/// suspend or a clock step cannot stretch a time to live.
const EXPIRY_RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

pub struct DiagnosticsService {
    containerd: ContainerdClient,
    systemd: SystemdClient,
    executor: Executor,
    expiry: Arc<Expiry>,
    policy: Policy,
    settings: Settings,
    /// Woken when a change gets a time to live, so the expiry task re-plans its wait.
    expiry_changed: Arc<tokio::sync::Notify>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Test pulls and diagnoses running now, at most `max_concurrent_pulls`.
    pull_slots: Arc<tokio::sync::Semaphore>,
}

/// The parts of the node every flow shares: one containerd client (its per-image pull
/// locks are shared by test pulls and verifying pulls), one systemd connection, and
/// the executor with its node lock.
#[derive(Clone)]
pub struct NodeParts {
    pub containerd: ContainerdClient,
    pub systemd: SystemdClient,
    pub executor: Executor,
}

impl NodeParts {
    /// The node described by `settings`; CRI pulls and removals happen in CRI's
    /// namespace whatever the daemon's default namespace is.
    pub fn new(settings: &Settings, clock: Arc<dyn Clock>) -> NodeParts {
        let containerd =
            ContainerdClient::new(&settings.containerd_socket, settings.namespace.clone())
                .with_pull_timeout(settings.pull_timeout);
        let systemd = SystemdClient::new(settings.dbus_address.clone());
        let executor = Executor::new(
            settings.state_dir.clone(),
            containerd.in_namespace(Namespace::default()),
            systemd.clone(),
            clock,
        );
        NodeParts {
            containerd,
            systemd,
            executor,
        }
    }
}

impl DiagnosticsService {
    pub fn new(
        settings: Settings,
        parts: NodeParts,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        let expiry = Arc::new(Expiry::new(
            parts.executor.clone(),
            parts.containerd.clone(),
            settings.containerd_config.clone(),
            settings.containerd_unit.clone(),
        ));
        DiagnosticsService {
            pull_slots: Arc::new(tokio::sync::Semaphore::new(settings.max_concurrent_pulls)),
            containerd: parts.containerd,
            systemd: parts.systemd,
            executor: parts.executor,
            expiry,
            policy: Policy::new(settings.socket_group.clone()),
            settings,
            expiry_changed: Default::default(),
            metrics,
        }
    }

    /// Ends insecure settings whose time to live is over, now and whenever one falls
    /// due (looking at the wall clock at least every minute), until the returned task
    /// is dropped or aborted. Each setting ends on its own; a failed end is retried.
    pub fn spawn_expiry_task(&self) -> tokio::task::JoinHandle<()> {
        let expiry = Arc::clone(&self.expiry);
        let executor = self.executor.clone();
        let changed = Arc::clone(&self.expiry_changed);
        tokio::spawn(async move {
            loop {
                let report = expiry.end_due().await;
                let until = report.next_due.unwrap_or(u64::MAX);
                tokio::select! {
                    () = executor.clock().wait_until(until, EXPIRY_RECHECK) => {}
                    () = changed.notified() => {}
                }
            }
        })
    }

    /// config.toml's facts and, when containerd's version is known, its findings.
    fn config_status(&self, reported_version: &str) -> pb::ContainerdConfig {
        let path = &self.settings.containerd_config;
        let version = crate::ctrconfig::ContainerdVersion::parse(reported_version).ok();
        // The version only matters for a missing file (whose defaults it decides).
        let assumed = version.unwrap_or(crate::ctrconfig::ContainerdVersion {
            major: 2,
            minor: 0,
            patch: 0,
        });
        match crate::nodefiles::read(path, &assumed) {
            Ok(files) => {
                let found = version
                    .map(|v| crate::ctrconfig::findings(&files.facts, &v))
                    .unwrap_or_default();
                crate::api::config_status(path, Ok(&files), &found)
            }
            Err(e) => crate::api::config_status(path, Err(e.to_string()), &[]),
        }
    }

    /// containerd's unit as systemd sees it; an error string when there is no systemd.
    async fn unit_status(&self) -> pb::UnitStatus {
        let unit = &self.settings.containerd_unit;
        let mut status = pb::UnitStatus {
            name: unit.clone(),
            ..Default::default()
        };
        match tokio::time::timeout(UNIT_STATE_TIMEOUT, self.systemd.unit_state(unit)).await {
            Ok(Ok(s)) => {
                status.active_state = s.active_state;
                status.sub_state = s.sub_state;
                status.n_restarts = s.n_restarts;
                status.exec_main_status = s.exec_main_status;
            }
            Ok(Err(e)) => status.error = e.to_string(),
            Err(_) => {
                status.error = format!(
                    "systemd did not answer within {}s",
                    UNIT_STATE_TIMEOUT.as_secs()
                )
            }
        }
        status
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
                limit: self.settings.max_concurrent_pulls,
            })
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

#[tonic::async_trait]
impl Diagnostics for DiagnosticsService {
    async fn get_status(
        &self,
        req: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::GetStatusResponse>, Status> {
        self.authorize(&req, "GetStatus", Access::Read).await?;
        let (version, runtime, unit) = tokio::join!(
            self.containerd.version(),
            self.containerd.runtime_status(),
            self.unit_status(),
        );
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
            config: Some(self.config_status(containerd.version.as_str())),
            containerd: Some(containerd),
            unit: Some(unit),
            changes: Some(self.changes_summary()),
        }))
    }

    async fn list_images(
        &self,
        req: Request<pb::ListImagesRequest>,
    ) -> Result<Response<pb::ListImagesResponse>, Status> {
        self.authorize(&req, "ListImages", Access::Read).await?;
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
        self.authorize(&req, "RemoveImage", Access::Mutate).await?;
        let r = req.get_ref();
        let client = self.client_for(&r.namespace)?;
        let image = check_image_name(&r.image)?;
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
        self.authorize(&req, "TestPull", access).await?;
        let image = parse_image(&req.get_ref().image)?;
        let _slot = self.pull_slot("TestPull")?;
        let pull = self
            .containerd
            .pull_leaving_store_as_found(&image, keep)
            .await
            .map_err(ServiceError::from)?;
        let mut resp = pb::TestPullResponse::from_outcome(&image, &pull.outcome);
        resp.removed_after = pull.removed_after;
        self.metrics.inc(
            "ctrdiag_test_pulls_total",
            &[
                ("result", if resp.ok { "ok" } else { "failed" }),
                ("cause", &resp.cause),
            ],
        );
        tracing::info!(
            image,
            ok = resp.ok,
            cause = resp.cause,
            duration_ms = resp.duration_ms,
            "test pull"
        );
        Ok(Response::new(resp))
    }

    async fn list_changes(
        &self,
        req: Request<pb::ListChangesRequest>,
    ) -> Result<Response<pb::ListChangesResponse>, Status> {
        self.authorize(&req, "ListChanges", Access::Read).await?;
        Ok(Response::new(self.changes()?))
    }

    async fn rollback(
        &self,
        req: Request<pb::RollbackRequest>,
    ) -> Result<Response<pb::RollbackResponse>, Status> {
        self.authorize(&req, "Rollback", Access::Mutate).await?;
        let r = req.into_inner();
        Ok(Response::new(self.roll_back(&r.id, r.dry_run).await?))
    }

    async fn diagnose(
        &self,
        req: Request<pb::DiagnoseRequest>,
    ) -> Result<Response<pb::DiagnoseResponse>, Status> {
        self.authorize(&req, "Diagnose", Access::Read).await?;
        let _slot = self.pull_slot("Diagnose")?;
        let resp = self.run_diagnosis(req.into_inner()).await?;
        self.metrics.inc(
            "ctrdiag_diagnoses_total",
            &[("healthy", if resp.healthy { "true" } else { "false" })],
        );
        Ok(Response::new(resp))
    }

    type FixStream = fix::FixStream;

    async fn fix(&self, req: Request<pb::FixRequest>) -> Result<Response<Self::FixStream>, Status> {
        self.authorize(&req, "Fix", Access::Mutate).await?;
        Ok(Response::new(self.start_fix(req.into_inner()).await?))
    }

    async fn restart_containerd(
        &self,
        req: Request<pb::RestartContainerdRequest>,
    ) -> Result<Response<pb::RestartContainerdResponse>, Status> {
        self.authorize(&req, "RestartContainerd", Access::Mutate)
            .await?;
        let started = std::time::Instant::now();
        let executor = self.executor.clone();
        let unit = self.settings.containerd_unit.clone();
        // Its own task: a caller that goes away must not stop a restart half-way.
        tokio::spawn(async move { executor.restart(&unit).await })
            .await
            .map_err(|e| ServiceError::Internal(format!("restart task failed: {e}")))?
            .map_err(ServiceError::from)?;
        let duration_ms = started.elapsed().as_millis() as u64;
        tracing::info!(
            unit = self.settings.containerd_unit,
            duration_ms,
            "restarted containerd"
        );
        Ok(Response::new(pb::RestartContainerdResponse {
            unit: Some(self.unit_status().await),
            duration_ms,
        }))
    }
}
