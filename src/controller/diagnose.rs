//! The diagnose flow: gathers the facts (containerd's version and configuration, a
//! probe of the registry with the CA files containerd would use, a test pull) and hands
//! them to the core's findings engine.

use super::ports::{ContainerdPort, Prober, UnitManager};
use super::{Controller, ControllerError, PullReport};
use crate::containerd::{ContainerdError, PullOutcome};
use crate::ctrconfig::effective::differences;
use crate::ctrconfig::{HostTrust, Lookup, findings, lookup};
use crate::diagnose::{
    CauseCode, ExpiryWarning, Facts, Finding, InsecureChange, PullResult, diagnose, healthy,
};
use crate::fix::split_target;
use crate::loaded::loaded_findings;
use crate::plan::{ChangeState, journal};
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
    /// Where containerd looks for the host's settings and CAs, and which place wins;
    /// `None` when containerd's version or configuration could not be read.
    pub lookup: Option<Lookup>,
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
        // containerd's own word on its plugins and deprecations, when it answers.
        let loaded = match &version {
            Some(_) => match self.containerd.loaded().await {
                Ok(l) => loaded_findings(&l),
                Err(e) => {
                    tried.push(format!("containerd's Introspection: {e}"));
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let config_file = self.node.containerd_config.display().to_string();
        let mut hosts_dirs = Vec::new();
        let (config_findings, found_lookup) = match &version {
            Some(v) => match crate::nodefiles::read(&self.node.containerd_config, v) {
                Ok(files) => {
                    tried.push(format!("read {config_file}"));
                    let l = lookup(&files.facts, &host, v);
                    tried.push(describe_trust(&host, &l.trust));
                    hosts_dirs = files.facts.hosts_dirs.clone();
                    let mut config_findings = findings(&files.facts, v);
                    config_findings.extend(l.findings());
                    config_findings.extend(self.effective_findings(&files, &mut tried).await);
                    (config_findings, Some(l))
                }
                Err(e) => {
                    tried.push(format!("read {config_file}: {e}"));
                    (Vec::new(), None)
                }
            },
            None => (Vec::new(), None),
        };
        let trust = found_lookup
            .as_ref()
            .map(|l| l.trust.clone())
            .unwrap_or_default();
        // A node manager's or Bottlerocket's configuration: said, and changes go there.
        let owner = match self.owner_files(&hosts_dirs) {
            Ok(o) if o.owner.is_containerd() => None,
            Ok(o) => {
                tried.push(format!(
                    "containerd's configuration is owned by {} ({})",
                    o.owner.name(),
                    o.owner.evidence().join("; ")
                ));
                Some(o)
            }
            Err(e) => {
                tried.push(format!("who owns containerd's configuration: {e}"));
                None
            }
        };

        let (report, ca_problems) = self.prober.probe(&host, &trust.ca_files).await;
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
            insecure_change: self.insecure_change_for(&host.to_string()),
            trust,
            containerd_problem,
            loaded: &loaded,
            expiry_warning: Some(ExpiryWarning {
                now_unix: self.clock.now_unix() as i64,
                window_secs: self.node.cert_expiry_warning.as_secs() as i64,
            }),
            owner: owner.as_ref().map(|o| crate::managed::Owned {
                owner: &o.owner,
                registries_file: &o.registries_file,
            }),
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
            lookup: found_lookup,
        })
    }
}

impl<C: ContainerdPort, U: UnitManager, P: Prober> Controller<C, U, P> {
    /// The latest applied ctrdiag change that keeps an insecure setting on for `host`.
    fn insecure_change_for(&self, host: &str) -> Option<InsecureChange> {
        journal::changes(self.executor.state_dir())
            .ok()?
            .into_iter()
            .rev()
            .find(|c| {
                c.state == ChangeState::Applied
                    && c.meta.insecure.as_ref().is_some_and(|i| i.host == host)
            })
            .map(|c| InsecureChange {
                expires_unix: c.expires_unix(),
                id: c.id.to_string(),
            })
    }
}

impl<C: ContainerdPort, U: UnitManager, P: Prober> Controller<C, U, P> {
    /// Where containerd's own merge (`containerd_bin config dump`) uses a registry
    /// setting differently from config.toml; nothing when no binary is configured.
    async fn effective_findings(
        &self,
        files: &crate::ctrconfig::NodeFiles,
        tried: &mut Vec<String>,
    ) -> Vec<crate::ctrconfig::Finding> {
        let Some(bin) = &self.node.containerd_bin else {
            return Vec::new();
        };
        let dumped = crate::containerd::config_dump::config_dump(bin, &self.node.containerd_config)
            .await
            .map_err(|e| e.to_string())
            .and_then(|text| crate::ctrconfig::ConfigToml::parse(&text).map_err(|e| e.to_string()));
        let dumped = match dumped {
            Ok(d) => d,
            Err(e) => {
                tried.push(format!("containerd's effective configuration: {e}"));
                return Vec::new();
            }
        };
        let differences = differences(files.facts.config.facts(), dumped.facts());
        tried.push(format!(
            "`{} config dump`: {} registry setting(s) differ from {}",
            bin.display(),
            differences.len(),
            self.node.containerd_config.display()
        ));
        differences
            .iter()
            .map(|d| crate::ctrconfig::Finding::DiffersFromEffective {
                description: d.describe(&files.imported_registry),
            })
            .collect()
    }
}

/// One line for "What was tried": what containerd is configured to do for `host`.
fn describe_trust(host: &crate::registry::host::RegistryHost, t: &HostTrust) -> String {
    let source = t.source.as_deref().unwrap_or("no file");
    let mut what = Vec::new();
    if t.plain_http {
        what.push("plain HTTP".to_string());
    }
    if t.skip_verify {
        what.push("skip_verify".to_string());
    }
    if !t.ca_files.is_empty() {
        what.push(format!("CA {}", t.ca_files.join(", ")));
    }
    if what.is_empty() {
        format!(
            "containerd's configuration for {host}: nothing ({source}); system trust store only"
        )
    } else {
        format!(
            "containerd's configuration for {host}: {} ({source})",
            what.join(", ")
        )
    }
}

/// containerd's own failure as a cause: it could not be asked at all, or its CRI
/// plugin is missing.
pub(super) fn problem_of(e: &ContainerdError) -> (CauseCode, String) {
    let cause = match e {
        ContainerdError::CriUnavailable { .. } => CauseCode::CriUnavailable,
        ContainerdError::SocketMissing { .. }
        | ContainerdError::Unreachable { .. }
        | ContainerdError::CriStarting { .. }
        | ContainerdError::Timeout { .. } => CauseCode::ContainerdUnreachable,
        ContainerdError::ImageNotFound { .. }
        | ContainerdError::NamespaceNotFound { .. }
        | ContainerdError::Cleanup { .. }
        | ContainerdError::Rpc { .. } => CauseCode::Unknown,
    };
    (cause, e.to_string())
}
