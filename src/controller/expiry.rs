//! Ends insecure settings whose time to live is over. Flow, not policy: when a setting
//! ends is [`crate::ttl`]'s business, which edits end it
//! [`crate::fix::plan_insecure_end`]'s, running them the executor's.
//!
//! Changes turning on the same setting for the same registry end together, when the
//! last of their times to live is over (two `--insecure-skip-verify --ttl` fixes keep
//! verification off until the later one ends), and never while one of them has no time
//! to live at all. The end edits the files as they are now, removing only the setting
//! (a later, unrelated edit of the same file stays), as a change of its own that a
//! rollback can undo. One setting that cannot be ended does not hold up the others; it
//! is retried with backoff, and status shows it as overdue meanwhile.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;

use super::ports::{ContainerdPort, UnitManager};
use crate::ctrconfig::ContainerdVersion;
use crate::plan::{
    ApplyOutcome, ChangeId, ChangeMeta, ChangeRecord, Event, Executor, InsecureSetting, journal,
};

use ctrdiag_core::ttl::{FIRST_RETRY_SECS, due_at, groups, retry_delay};

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpiryReport {
    /// When the next setting falls due (or the next retry), Unix seconds.
    pub next_due: Option<u64>,
    /// Changes whose setting was ended (or found already gone) in this pass.
    pub ended: Vec<ChangeId>,
    /// Settings whose end failed, and why.
    pub failed: Vec<(InsecureSetting, String)>,
}

#[derive(Debug, Clone, Copy)]
struct Retry {
    failures: u32,
    not_before: u64,
}

pub struct Expiry<C, U> {
    executor: Executor<C, U>,
    containerd: C,
    config_file: PathBuf,
    unit: String,
    retries: Mutex<HashMap<InsecureSetting, Retry>>,
}

impl<C: ContainerdPort, U: UnitManager> Expiry<C, U> {
    pub fn new(
        executor: Executor<C, U>,
        containerd: C,
        config_file: PathBuf,
        unit: String,
    ) -> Expiry<C, U> {
        Expiry {
            executor,
            containerd,
            config_file,
            unit,
            retries: Mutex::new(HashMap::new()),
        }
    }

    /// Ends every setting that is due now; returns when to look again.
    pub async fn end_due(&self) -> ExpiryReport {
        let now = self.executor.clock().now_unix();
        let mut report = ExpiryReport::default();
        let changes = match journal::changes(self.executor.state_dir()) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the change journal to end times to live");
                report.next_due = Some(now + FIRST_RETRY_SECS);
                return report;
            }
        };
        for (setting, group) in groups(&changes) {
            let Some(due) = due_at(&group) else { continue };
            let retry = self.retry_of(&setting);
            let not_before = retry.map_or(due, |r| r.not_before.max(due));
            if not_before > now {
                report.next_due = Some(report.next_due.map_or(not_before, |n| n.min(not_before)));
                continue;
            }
            match self.end(&setting, &group).await {
                Ok(()) => {
                    self.forget_retry(&setting);
                    report.ended.extend(group.iter().map(|c| c.id.clone()));
                }
                Err(reason) => {
                    tracing::error!(host = setting.host, %reason, "could not end an expired insecure setting; retrying later");
                    for c in &group {
                        let note = Event::ExpiryFailed {
                            reason: reason.clone(),
                            unix: now,
                        };
                        if let Err(e) = self.executor.note(&c.id, &note).await {
                            tracing::error!(change = %c.id, error = %e, "cannot record the failed end");
                        }
                    }
                    let next = self.record_failure(&setting, now);
                    report.next_due = Some(report.next_due.map_or(next, |n| n.min(next)));
                    report.failed.push((setting, reason));
                }
            }
        }
        report
    }

    /// Ends `setting`, which every change of `group` turned on.
    async fn end(&self, setting: &InsecureSetting, group: &[&ChangeRecord]) -> Result<(), String> {
        let ids: Vec<String> = group.iter().map(|c| c.id.to_string()).collect();
        tracing::warn!(host = setting.host, changes = ?ids, "time to live over: ending the insecure setting");
        let version = self.containerd.version().await.map_err(|e| e.to_string())?;
        let version = ContainerdVersion::parse(&version.version)
            .map_err(|_| format!("containerd reports version {:?}", version.version))?;
        let files =
            crate::nodefiles::read(&self.config_file, &version).map_err(|e| e.to_string())?;
        let plan = crate::fix::plan_insecure_end(&files, setting, &self.unit)
            .map_err(|e| e.to_string())?;
        let Some(plan) = plan else {
            for c in group {
                self.executor
                    .note(&c.id, &Event::Expired)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            return Ok(());
        };
        let meta = ChangeMeta {
            reverts: group.iter().map(|c| c.id.clone()).collect(),
            restores_insecure: Some((
                setting.clone(),
                group.iter().filter_map(|c| c.meta.ttl_secs).max(),
            )),
            ..ChangeMeta::plain()
        };
        match self.executor.apply(&plan, meta, &None).await {
            Ok(ApplyOutcome::Applied { id, .. }) => {
                for c in group {
                    let note = Event::Reverted { by: id.clone() };
                    if let Err(e) = self.executor.note(&c.id, &note).await {
                        // The journal derives it from the ending change anyway.
                        tracing::warn!(change = %c.id, error = %e, "cannot note the end");
                    }
                }
                Ok(())
            }
            Ok(ApplyOutcome::RolledBack { reason, .. }) => {
                Err(format!("the end was undone: {reason}"))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn retry_of(&self, setting: &InsecureSetting) -> Option<Retry> {
        self.retries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(setting)
            .copied()
    }

    fn forget_retry(&self, setting: &InsecureSetting) {
        self.retries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(setting);
    }

    /// Notes one more failure and returns when to try again.
    fn record_failure(&self, setting: &InsecureSetting, now: u64) -> u64 {
        let mut retries = self.retries.lock().unwrap_or_else(|p| p.into_inner());
        let failures = retries.get(setting).map_or(1, |r| r.failures + 1);
        let not_before = now + retry_delay(failures);
        retries.insert(
            setting.clone(),
            Retry {
                failures,
                not_before,
            },
        );
        not_before
    }
}
