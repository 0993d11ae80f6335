//! The fix flow: a request is checked and turned into a plan (the core decides how),
//! shown, and unless it is a dry run applied by the executor, which proves it by a
//! real pull or undoes it.

use super::ports::{ContainerdPort, Prober, UnitManager};
use super::{Controller, ControllerError};
use crate::fix::{
    FixMode, FixSpec, Wanted, ca_path, check_ttl, insecure_setting, pick_presented, plan_fix,
    split_target, verify_image,
};
use crate::plan::{ApplyOutcome, ChangeMeta, Plan, ProgressSink, fsops};
use crate::trial::Trial;

/// How the operator asks for a fix, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestedMode {
    /// Trust this CA (PEM certificates).
    Ca {
        pem: String,
    },
    /// Trust the CA certificate the registry presents whose SHA-256 fingerprint is this.
    CaFromServer {
        sha256: String,
    },
    /// Pin the registry's own certificate whose SHA-256 fingerprint is this.
    PinServerCertificate {
        sha256: String,
    },
    InsecureSkipVerify,
    PlainHttp,
    RemoveOverrides {
        all_hosts: bool,
    },
}

/// A fix request as the service hands it over: strings parsed, nothing decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixRequest {
    /// An image reference or a registry `host[:port]`.
    pub target: String,
    pub mode: RequestedMode,
    /// Seconds; 0 for none.
    pub ttl_secs: u64,
    /// A normalised image reference to prove the fix with, if the operator named one.
    pub verify_image: Option<String>,
    /// Use the legacy `configs.<host>.tls` table (1.x without config_path only).
    pub legacy: bool,
    /// Only plan: nothing is written, a pending recovery is not tried.
    pub dry_run: bool,
    /// With a CA: its absolute path as the operator named it, for the change printed
    /// where a node manager's registries.yaml names the file (see `owner`).
    pub ca_file: Option<std::path::PathBuf>,
    /// The operator restarts containerd, not ctrdiag: the change waits for that.
    pub manual_restart: bool,
}

/// A checked change (a fix, a credential clean, a cache purge): its plan, the record
/// it will have, why it could not finish if it could not (preflight), and the trial
/// that proved it before anything was written (`None`: nothing to try).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedFix {
    pub plan: Plan,
    pub meta: ChangeMeta,
    pub preflight: Vec<String>,
    pub trial: Option<Trial>,
}

impl PreparedFix {
    /// Why the change must not start: preflight problems, or a trial that failed.
    pub fn refusal(&self) -> Option<ControllerError> {
        if !self.preflight.is_empty() {
            return Some(ControllerError::Preflight {
                problems: self.preflight.join("; "),
            });
        }
        let trial = self.trial.as_ref().filter(|t| t.failed())?;
        Some(ControllerError::TrialFailed {
            trial: trial.describe(),
        })
    }
}

impl<C: ContainerdPort, U: UnitManager, P: Prober> Controller<C, U, P> {
    /// Checks `req` and plans it from the node as it is now (after undoing an
    /// interrupted change, unless a dry run, which only says a change would be refused).
    pub async fn prepare_fix(&self, req: FixRequest) -> Result<PreparedFix, ControllerError> {
        self.check_recovery(req.dry_run).await?;
        let (host, image) = split_target(&req.target)?;
        let removing = matches!(req.mode, RequestedMode::RemoveOverrides { .. });
        let recent_failure = self.events.latest_failed_image(&host.to_string());
        let verify_image = verify_image(req.verify_image, image.as_ref(), recent_failure, removing);
        let insecure = matches!(
            req.mode,
            RequestedMode::InsecureSkipVerify | RequestedMode::PlainHttp
        );
        let ttl = check_ttl(req.ttl_secs, insecure)?;
        let mode = match req.mode {
            RequestedMode::Ca { pem } => FixMode::Ca { pem },
            RequestedMode::CaFromServer { sha256 } => {
                let (report, _) = self.prober.probe(&host, &[]).await;
                let cert = pick_presented(&host, &report.chain, &sha256, Wanted::Ca)?;
                FixMode::Ca { pem: cert.pem() }
            }
            RequestedMode::PinServerCertificate { sha256 } => {
                let (report, _) = self.prober.probe(&host, &[]).await;
                let cert = pick_presented(&host, &report.chain, &sha256, Wanted::Leaf)?;
                tracing::warn!(%host, "pinning the registry's own certificate: renewing it breaks pulls");
                FixMode::PinCertificate { pem: cert.pem() }
            }
            RequestedMode::InsecureSkipVerify => FixMode::InsecureSkipVerify,
            RequestedMode::PlainHttp => FixMode::PlainHttp,
            RequestedMode::RemoveOverrides { all_hosts } => FixMode::RemoveOverrides { all_hosts },
        };
        if insecure {
            tracing::warn!(%host, ttl_secs = ttl.map(|t| t.as_secs()), "insecure setting requested: for test environments only");
        }
        // The time to live counts from the request, and is in the change's first record.
        let mut meta = ChangeMeta {
            insecure: insecure_setting(&host, &mode),
            expires_unix: crate::ttl::expires_at(self.clock.now_unix(), ttl),
            ttl_secs: ttl.map(|t| t.as_secs()),
            ..ChangeMeta::plain()
        };
        let spec = FixSpec {
            host,
            mode,
            verify_image,
            legacy: req.legacy,
        };
        self.refuse_if_managed(&spec, req.ca_file.as_deref())
            .await?;
        let plan = self.plan_for(&spec).await?;
        if req.manual_restart && plan.restarts() {
            meta.manual_restart = Some(self.node.manual_restart.clone());
        }
        let preflight = self.preflight(&plan, meta.manual_restart.is_some()).await;
        // A plan that cannot finish is not worth a trial pull.
        let trial = match preflight.is_empty() {
            true => self.trial(&plan).await,
            false => None,
        };
        Ok(PreparedFix {
            plan,
            meta,
            preflight,
            trial,
        })
    }

    /// Before planning a change: an interrupted change is undone first (a dry run
    /// writes nothing, so it only says that a change would be refused).
    pub(super) async fn check_recovery(&self, dry_run: bool) -> Result<(), ControllerError> {
        if dry_run {
            self.executor.refuse_while_pending()?;
        } else {
            self.executor.resume_recovery().await?;
        }
        Ok(())
    }

    /// Applies a prepared fix: every step journaled, proven by a pull, or undone.
    pub async fn apply_fix(
        &self,
        fix: PreparedFix,
        progress: &ProgressSink,
    ) -> Result<ApplyOutcome, ControllerError> {
        if let Some(refusal) = fix.refusal() {
            return Err(refusal);
        }
        let outcome = self.executor.apply(&fix.plan, fix.meta, progress).await?;
        match &outcome {
            ApplyOutcome::Applied { id, .. } => {
                tracing::info!(change = %id, title = fix.plan.title, "fix applied and proven by a pull")
            }
            ApplyOutcome::RolledBack { id, reason, .. } => {
                tracing::warn!(change = %id, reason, "fix did not hold and was undone")
            }
        }
        Ok(outcome)
    }

    /// Reads containerd's version and configuration and plans `spec`.
    async fn plan_for(&self, spec: &FixSpec) -> Result<Plan, ControllerError> {
        let version = self.containerd_version().await?;
        let files = crate::nodefiles::read(&self.node.containerd_config, &version)?;
        let certs_dir = self.node.certs_dir.display().to_string();
        let ca = ca_path(&files.facts, &spec.host, &certs_dir);
        let existing_ca = fsops::read_regular(std::path::Path::new(&ca))
            .map_err(crate::plan::ApplyError::from)?
            .map(|(b, _)| String::from_utf8_lossy(&b).into_owned());
        Ok(plan_fix(
            &files,
            &version,
            spec,
            existing_ca,
            &certs_dir,
            &self.node.containerd_unit,
        )?)
    }
}
