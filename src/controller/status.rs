//! The status flow: what the daemon sees of the node.

use std::path::PathBuf;
use std::time::Duration;

use super::Controller;
use super::ports::{ContainerdPort, Prober, UnitManager};
use crate::ctrconfig::{ContainerdVersion, Finding, NodeFiles, findings};
use crate::loaded::{LoadedFinding, loaded_findings};
use crate::plan::{ChangeRecord, ChangeState, InsecureSetting, Listed, PendingRecovery, journal};
use crate::systemd::UnitState;

/// Longest status waits for the unit manager's view of containerd's unit.
const UNIT_STATE_TIMEOUT: Duration = Duration::from_secs(3);

/// containerd as the daemon reaches it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerdState {
    pub socket: PathBuf,
    pub reachable: bool,
    /// Its own version string (empty when it did not answer).
    pub version: String,
    pub cri_ready: bool,
    /// CRI conditions that are not true.
    pub cri_problems: Vec<String>,
    /// What went wrong reaching containerd or CRI, for people.
    pub error: Option<String>,
    /// What containerd's Introspection reports (failed CRI plugins, deprecations);
    /// empty when it did not answer.
    pub loaded: Vec<LoadedFinding>,
}

/// containerd's configuration as read, and what is wrong with it for the running
/// version (no findings when the version is not known).
#[derive(Debug, Clone)]
pub struct ConfigState {
    pub file: PathBuf,
    pub read: Result<NodeFiles, String>,
    pub findings: Vec<Finding>,
}

/// An insecure setting an applied change keeps in effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsecureInEffect {
    pub change: ChangeRecord,
    pub setting: InsecureSetting,
    /// Its time to live is over and it is still on.
    pub overdue: bool,
}

/// What ctrdiag's own changes leave on the node that an operator must know about.
#[derive(Debug, Clone, Default)]
pub struct ChangesSummary {
    pub insecure: Vec<InsecureInEffect>,
    pub damaged: Vec<crate::plan::ChangeId>,
    pub pending_recovery: Option<PendingRecovery>,
    /// The change journal itself could not be read.
    pub journal_error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Status {
    pub containerd: ContainerdState,
    pub config: ConfigState,
    pub unit_name: String,
    pub unit: Result<UnitState, String>,
    pub changes: ChangesSummary,
    pub detection: crate::detection::DetectionStatus,
    pub problems: Vec<crate::detect::Problem>,
}

impl Status {
    /// containerd and CRI answer, and nothing ctrdiag did needs attention.
    pub fn healthy(&self) -> bool {
        self.containerd.reachable
            && self.containerd.cri_ready
            && !self.changes.insecure.iter().any(|i| i.overdue)
            && self.changes.damaged.is_empty()
            && self.changes.pending_recovery.is_none()
    }
}

impl<C: ContainerdPort, U: UnitManager, P: Prober> Controller<C, U, P> {
    pub async fn status(&self) -> Status {
        let (containerd, unit) = tokio::join!(self.containerd_state(), self.unit_state());
        Status {
            config: self.config_state(&containerd.version),
            containerd,
            unit_name: self.node.containerd_unit.clone(),
            unit,
            changes: self.changes_summary(),
            detection: self.events.status(),
            problems: self.events.problems(),
        }
    }

    /// Whether containerd and its CRI plugin answer, asked now.
    pub async fn containerd_state(&self) -> ContainerdState {
        let (version, runtime, loaded) = tokio::join!(
            self.containerd.version(),
            self.containerd.runtime_status(),
            self.containerd.loaded()
        );
        let mut containerd = ContainerdState {
            socket: self.containerd.socket().to_path_buf(),
            ..Default::default()
        };
        match version {
            Ok(v) => {
                containerd.reachable = true;
                containerd.version = v.version;
            }
            Err(e) => containerd.error = Some(e.to_string()),
        }
        match runtime {
            Ok(r) => {
                containerd.cri_ready = r.runtime_ready;
                containerd.cri_problems = r.problems;
            }
            Err(e) if containerd.error.is_none() => containerd.error = Some(e.to_string()),
            Err(_) => {}
        }
        containerd.loaded = loaded.map(|l| loaded_findings(&l)).unwrap_or_default();
        // containerd's own reason beats the inference from `unknown service`.
        if !containerd.cri_ready
            && let Some(failed) = containerd
                .loaded
                .iter()
                .find(|f| f.cause() == crate::cause::CauseCode::CriUnavailable)
        {
            containerd.error = Some(failed.to_string());
        }
        containerd
    }

    /// config.toml's facts and, when containerd's version is known, its findings.
    fn config_state(&self, reported_version: &str) -> ConfigState {
        let file = self.node.containerd_config.clone();
        let version = ContainerdVersion::parse(reported_version).ok();
        // The version only matters for a missing file (whose defaults it decides).
        let assumed = version.unwrap_or(ContainerdVersion::ASSUMED_WHEN_UNKNOWN);
        match crate::nodefiles::read(&file, &assumed) {
            Ok(files) => ConfigState {
                findings: version
                    .map(|v| findings(&files.facts, &v))
                    .unwrap_or_default(),
                read: Ok(files),
                file,
            },
            Err(e) => ConfigState {
                read: Err(e.to_string()),
                findings: Vec::new(),
                file,
            },
        }
    }

    /// The name of containerd's unit.
    pub fn unit_name(&self) -> &str {
        &self.node.containerd_unit
    }

    /// containerd's unit as the unit manager sees it; why not, when it cannot say.
    pub async fn unit_state(&self) -> Result<UnitState, String> {
        let unit = &self.node.containerd_unit;
        match tokio::time::timeout(UNIT_STATE_TIMEOUT, self.units.state(unit)).await {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "systemd did not answer within {}s",
                UNIT_STATE_TIMEOUT.as_secs()
            )),
        }
    }

    /// Insecure settings in effect (and which are overdue), damaged records, and an
    /// interrupted change that blocks changes.
    pub fn changes_summary(&self) -> ChangesSummary {
        let mut summary = ChangesSummary {
            pending_recovery: self.executor.pending_recovery(),
            ..Default::default()
        };
        let listed = match journal::list(self.executor.state_dir()) {
            Ok(l) => l,
            Err(e) => {
                summary.journal_error = Some(e.to_string());
                return summary;
            }
        };
        let mut readable = Vec::new();
        for l in listed {
            match l {
                Listed::Damaged(d) => summary.damaged.push(d.id),
                Listed::Change(c) => readable.push(*c),
            }
        }
        let overdue = crate::ttl::overdue(&readable, self.clock.now_unix());
        summary.insecure = readable
            .into_iter()
            .filter(|c| c.state == ChangeState::Applied)
            .filter_map(|c| {
                let setting = c.meta.insecure.clone()?;
                Some(InsecureInEffect {
                    overdue: overdue.contains(&c.id),
                    setting,
                    change: c,
                })
            })
            .collect();
        summary
    }
}
