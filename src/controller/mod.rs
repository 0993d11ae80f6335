//! The flows: status, images, test pulls, diagnose, fix, changes, rollback, restart,
//! the end of insecure settings' times to live, and recovery. Transport-free: it knows
//! nothing of gRPC; the service authorizes, parses, calls a flow here and converts the
//! answer. The decisions are the core's ([`ctrdiag_core`]); the outside world comes in
//! through narrow [`ports`], so every flow is unit-tested with in-memory ports.

pub mod cache;
pub mod changes;
pub mod creds;
pub mod diagnose;
pub mod expiry;
pub mod fix;
pub mod owner;
pub mod ports;
mod preflight;
pub mod probes;
pub mod status;
mod trial;

#[cfg(test)]
mod fakes;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::containerd::{ContainerdError, ImageSummary, Namespace, PullOutcome, TestPull};
use crate::ctrconfig::ContainerdVersion;
use crate::detection::EventHub;
use crate::diagnose::CauseCode;
use crate::fix::{FixError, TargetError};
use crate::nodefiles::NodeFilesError;
use crate::plan::journal::JournalError;
use crate::plan::{ApplyError, Executor};
use crate::systemd::SystemdError;

use ports::{ContainerdPort, Prober, UnitManager};

/// Where the node keeps what the flows read and write.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// containerd's config.toml.
    pub containerd_config: PathBuf,
    /// The hosts.toml root to set as `config_path` when there is none.
    pub certs_dir: PathBuf,
    /// containerd's unit, restarted through the unit manager.
    pub containerd_unit: String,
    /// The containerd binary for `config dump` (`None`: diagnose does not ask it).
    pub containerd_bin: Option<PathBuf>,
    /// Docker-style credential files the kubelet may read.
    pub credential_files: Vec<PathBuf>,
    /// The kubelet's credential provider config, if it has one.
    pub credential_provider_config: Option<PathBuf>,
    /// A registry certificate expiring within this is warned of.
    pub cert_expiry_warning: Duration,
    /// The registries file of the node manager that generates containerd's
    /// configuration, when the settings name one (else the manager's own).
    pub node_manager_registries: Option<PathBuf>,
    /// The os-release file that tells a Bottlerocket node.
    pub os_release: PathBuf,
    /// What the operator runs, and how long ctrdiag waits, when the operator restarts
    /// containerd (a fix with `manual_restart`).
    pub manual_restart: crate::plan::ManualRestart,
}

/// Why a flow could not give its answer. Each variant keeps its source's own words.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("invalid target: {0}")]
    Target(#[from] TargetError),
    #[error(transparent)]
    Containerd(#[from] ContainerdError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    #[error(transparent)]
    Fix(#[from] FixError),
    #[error(transparent)]
    NodeFiles(#[from] NodeFilesError),
    #[error(transparent)]
    Creds(#[from] crate::creds::CredsError),
    #[error(transparent)]
    Purge(#[from] crate::cache::PurgeError),
    /// containerd's configuration is owned by k3s, RKE2 or Bottlerocket: nothing is
    /// planned; this is the change to make there.
    #[error("{}", .0.summary())]
    Managed(Box<crate::managed::ManagedChange>),
    #[error(transparent)]
    ManagedRefused(#[from] crate::managed::ManagedError),
    #[error(
        "containerd reports version {reported:?}, which ctrdiag cannot read: it cannot choose a safe mechanism"
    )]
    ContainerdVersionUnknown { reported: String },
    #[error(
        "{trial}: nothing was written; the plan above is what would have been applied (check the CA file, or run `ctrdiag diagnose IMAGE`)"
    )]
    TrialFailed { trial: String },
    #[error("this change cannot finish, so nothing was written: {problems}")]
    Preflight { problems: String },
    #[error("there is no applied change to roll back: see `ctrdiag changes`")]
    NothingToRollBack,
    #[error("ctrdiagd failed internally ({0}); see `journalctl -u ctrdiagd`")]
    Internal(String),
}

/// A test pull and what it means: the outcome, its stable cause when it failed, and
/// whether the image store was left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullReport {
    /// The normalised reference pulled.
    pub image: String,
    pub outcome: PullOutcome,
    /// Why it failed, as a stable code; `None` when it worked.
    pub cause: Option<CauseCode>,
    pub removed_after: bool,
}

impl PullReport {
    pub fn new(image: &str, pull: TestPull) -> PullReport {
        PullReport::from_outcome(image, pull.outcome, pull.removed_after)
    }

    /// The report of `outcome`: a failure's cause is what the core's classifier makes
    /// of containerd's text.
    pub fn from_outcome(image: &str, outcome: PullOutcome, removed_after: bool) -> PullReport {
        let cause = match &outcome {
            PullOutcome::Pulled { .. } => None,
            PullOutcome::Failed { message, .. } => Some(crate::diagnose::classify(message).cause),
            PullOutcome::TimedOut { .. } => Some(CauseCode::Timeout),
        };
        PullReport {
            image: image.to_string(),
            outcome,
            cause,
            removed_after,
        }
    }

    /// How long the pull took (the limit, for one that timed out).
    pub fn duration(&self) -> Duration {
        match &self.outcome {
            PullOutcome::Pulled { duration, .. } | PullOutcome::Failed { duration, .. } => {
                *duration
            }
            PullOutcome::TimedOut { limit } => *limit,
        }
    }

    /// containerd's own text for a failure (or the limit for a timeout); empty when ok.
    pub fn message(&self) -> String {
        match &self.outcome {
            PullOutcome::Pulled { .. } => String::new(),
            PullOutcome::Failed { message, .. } => message.clone(),
            PullOutcome::TimedOut { limit } => format!(
                "the pull did not finish within {}s (the daemon's pull_timeout_secs)",
                limit.as_secs()
            ),
        }
    }
}

/// The flows over the ports `C` (containerd), `U` (unit manager) and `P` (prober).
pub struct Controller<C, U, P> {
    containerd: C,
    units: U,
    prober: P,
    executor: Executor<C, U>,
    expiry: expiry::Expiry<C, U>,
    node: NodeConfig,
    clock: Arc<dyn Clock>,
    events: Arc<EventHub>,
}

/// The controller of a real node.
pub type LiveController = Controller<
    crate::containerd::ContainerdClient,
    crate::systemd::SystemdClient,
    ports::NetProber,
>;

impl<C: ContainerdPort, U: UnitManager, P: Prober> Controller<C, U, P> {
    /// The flows for one node. `state_dir` holds the change journal.
    pub fn new(
        containerd: C,
        units: U,
        prober: P,
        clock: Arc<dyn Clock>,
        node: NodeConfig,
        state_dir: PathBuf,
    ) -> Self {
        let executor = Executor::new(
            state_dir,
            containerd.clone(),
            units.clone(),
            Arc::clone(&clock),
        );
        let expiry = expiry::Expiry::new(
            executor.clone(),
            containerd.clone(),
            node.containerd_config.clone(),
            node.containerd_unit.clone(),
        );
        Controller {
            containerd,
            units,
            prober,
            executor,
            expiry,
            node,
            clock,
            events: EventHub::in_memory(crate::metrics::Metrics::new()),
        }
    }

    /// The same flows sharing the daemon's detection state (fix uses the latest failed
    /// pull of a host; status shows detection).
    pub fn with_events(self, events: Arc<EventHub>) -> Self {
        Controller { events, ..self }
    }

    pub fn events(&self) -> &Arc<EventHub> {
        &self.events
    }

    pub fn executor(&self) -> &Executor<C, U> {
        &self.executor
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Images of `namespace` (the daemon's default when `None`).
    pub async fn images(
        &self,
        namespace: Option<Namespace>,
    ) -> Result<(Namespace, Vec<ImageSummary>), ControllerError> {
        let ns = namespace.unwrap_or_else(|| self.containerd.default_namespace().clone());
        let images = self.containerd.list_images(&ns).await?;
        Ok((ns, images))
    }

    /// Removes an image (through CRI in CRI's namespace, as `crictl rmi` does).
    pub async fn remove_image(
        &self,
        namespace: Option<Namespace>,
        image: &str,
    ) -> Result<Namespace, ControllerError> {
        let ns = namespace.unwrap_or_else(|| self.containerd.default_namespace().clone());
        self.containerd.remove_image(&ns, image).await?;
        tracing::info!(image, namespace = %ns, "removed image");
        Ok(ns)
    }

    /// A test pull through CRI (the kubelet's path), leaving the store as it was
    /// unless `keep`.
    pub async fn test_pull(&self, image: &str, keep: bool) -> Result<PullReport, ControllerError> {
        let pull = self.containerd.test_pull(image, keep).await?;
        let report = PullReport::new(image, pull);
        tracing::info!(
            image,
            ok = report.cause.is_none(),
            cause = report.cause.map(|c| c.as_str()),
            "test pull"
        );
        Ok(report)
    }

    /// Restarts containerd's unit and waits for CRI; the time it took.
    pub async fn restart_containerd(&self) -> Result<Duration, ControllerError> {
        let started = std::time::Instant::now();
        self.executor.restart(&self.node.containerd_unit).await?;
        let took = started.elapsed();
        tracing::info!(
            unit = self.node.containerd_unit,
            duration_ms = took.as_millis() as u64,
            "restarted containerd"
        );
        Ok(took)
    }

    /// containerd's version, asked now: it decides which mechanism works.
    async fn containerd_version(&self) -> Result<ContainerdVersion, ControllerError> {
        let v = self.containerd.version().await?;
        ContainerdVersion::parse(&v.version).map_err(|_| {
            ControllerError::ContainerdVersionUnknown {
                reported: v.version,
            }
        })
    }
}
