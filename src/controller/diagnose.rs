//! The diagnose flow: gathers the facts (containerd's version and configuration, a
//! probe of the registry with the CA files containerd would use, a test pull) and hands
//! them to the core's findings engine.

use super::ports::{ContainerdPort, Prober, UnitManager};
use super::{Controller, ControllerError, PullReport};
use crate::containerd::{ContainerdError, PullOutcome};
use crate::ctrconfig::{ca_files_for, findings};
use crate::diagnose::{CauseCode, Facts, Finding, PullResult, diagnose, healthy};
use crate::fix::split_target;
use crate::registry::probe::ProbeReport;

/// What diagnose found about one target.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub target: String,
    pub host: String,
    pub healthy: bool,
    /// containerd's version, when it answered.
    pub containerd_version: Option<String>,
    pub findings: Vec<Finding>,
    /// What was tried, in order, one line each.
    pub tried: Vec<String>,
    pub pull: Option<PullReport>,
    pub probe: ProbeReport,
}

impl<C: ContainerdPort, U: UnitManager, P: Prober> Controller<C, U, P> {
    /// Why pulls of `target` (an image, or a registry host) fail, or that they work.
    pub async fn diagnose(
        &self,
        target: &str,
        skip_pull: bool,
    ) -> Result<Diagnosis, ControllerError> {
        let (host, image) = split_target(target)?;
        let image = image.map(|i| i.to_string());
        let mut tried = Vec::new();

        // containerd's version decides which configuration it reads.
        let version = match self.containerd_version().await {
            Ok(v) => {
                tried.push(format!("containerd {v}: answers"));
                Some(v)
            }
            Err(e) => {
                tried.push(format!("containerd: {e}"));
                None
            }
        };
        let config_file = self.node.containerd_config.display().to_string();
        let (config_findings, ca_files, hosts_toml) = match &version {
            Some(v) => match crate::nodefiles::read(&self.node.containerd_config, v) {
                Ok(files) => {
                    tried.push(format!("read {config_file}"));
                    let (cas, hosts_toml) = ca_files_for(&files.facts, &host, v);
                    (findings(&files.facts, v), cas, hosts_toml)
                }
                Err(e) => {
                    tried.push(format!("read {config_file}: {e}"));
                    (Vec::new(), Vec::new(), None)
                }
            },
            None => (Vec::new(), Vec::new(), None),
        };

        let (report, ca_problems) = self.prober.probe(&host, &ca_files).await;
        tried.extend(ca_problems);
        tried.extend(report.steps.iter().map(|s| s.describe()));

        let mut containerd_problem = version.is_none().then(|| {
            (
                CauseCode::ContainerdUnreachable,
                "containerd did not answer its Version call".to_string(),
            )
        });
        let mut pull = None;
        let mut pull_result = None;
        if let (Some(image), false, Some(_)) = (&image, skip_pull, &version) {
            match self.containerd.test_pull(image, false).await {
                Ok(p) => {
                    let r = PullReport::new(image, p);
                    let how = match r.cause {
                        None => "ok".to_string(),
                        Some(cause) => format!("failed, {cause}"),
                    };
                    tried.push(format!(
                        "pull {image} through CRI: {how} ({} ms)",
                        r.duration().as_millis()
                    ));
                    pull_result = Some(match &r.outcome {
                        PullOutcome::Pulled { .. } => PullResult::Ok,
                        PullOutcome::Failed { message, .. } => PullResult::Failed {
                            message: message.clone(),
                        },
                        PullOutcome::TimedOut { limit } => PullResult::TimedOut {
                            limit_secs: limit.as_secs(),
                        },
                    });
                    pull = Some(r);
                }
                Err(e) => {
                    tried.push(format!("pull {image} through CRI: {e}"));
                    containerd_problem = Some(problem_of(&e));
                }
            }
        }

        let found = diagnose(&Facts {
            host: host.to_string(),
            image,
            pull: pull_result,
            probe: Some(&report),
            config: &config_findings,
            hosts_toml,
            containerd_problem,
        });
        Ok(Diagnosis {
            target: target.to_string(),
            host: host.to_string(),
            healthy: healthy(&found),
            containerd_version: version.map(|v| v.to_string()),
            findings: found,
            tried,
            pull,
            probe: report,
        })
    }
}

/// containerd's own failure as a cause: it could not be asked at all, or its CRI
/// plugin is missing.
pub(super) fn problem_of(e: &ContainerdError) -> (CauseCode, String) {
    let cause = match e {
        ContainerdError::CriUnavailable { .. } => CauseCode::CriUnavailable,
        ContainerdError::SocketMissing { .. }
        | ContainerdError::Unreachable { .. }
        | ContainerdError::Timeout { .. } => CauseCode::ContainerdUnreachable,
        ContainerdError::ImageNotFound { .. }
        | ContainerdError::NamespaceNotFound { .. }
        | ContainerdError::Cleanup { .. }
        | ContainerdError::Rpc { .. } => CauseCode::Unknown,
    };
    (cause, e.to_string())
}
