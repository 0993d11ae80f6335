//! Runs a [`Plan`] so the node is never left worse than it was: each step is journaled
//! (fsynced) before it acts, every replaced or moved file is backed up first, files are
//! replaced atomically, and after the steps a real pull through CRI must succeed. If a
//! step fails, containerd's CRI does not come back, or the pull fails, everything is
//! undone. A change interrupted by a crash is undone at the next start ([`Executor::recover`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::fsops::{self, FileMeta, FsError};
use super::journal::{self, ChangeId, ChangeRecord, ChangeState, Event, Journal, JournalError};
use super::{Plan, Step};
use crate::containerd::{ContainerdClient, ContainerdError, PullOutcome};
use crate::systemd::{Systemd, SystemdError};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{} changed since the plan was made: review the new plan (run the command again) before applying", .path.display())]
    Stale { path: PathBuf },
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error(transparent)]
    Systemd(#[from] SystemdError),
    #[error(transparent)]
    Containerd(#[from] ContainerdError),
    #[error("containerd's CRI did not answer within {}s after the restart: {detail}", .timeout.as_secs())]
    CriDown { timeout: Duration, detail: String },
    #[error("change {id} is {state}, not applied: only an applied change can be rolled back")]
    NotApplied { id: ChangeId, state: String },
    #[error("backup {} of change {id} is not text; restore it by hand from that file", .path.display())]
    BinaryBackup { id: ChangeId, path: PathBuf },
    #[error("UNDO FAILED for change {id} ({reason}): {source}; the backups are in {}", .backups.display())]
    UndoFailed {
        id: ChangeId,
        reason: String,
        backups: PathBuf,
        source: Box<ApplyError>,
    },
}

/// How an apply ended, when it ended in a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// Every step ran and the verification pull (if any) succeeded.
    Applied {
        id: ChangeId,
        verify: Option<PullOutcome>,
    },
    /// Something did not hold; every step was undone.
    RolledBack {
        id: ChangeId,
        reason: String,
        verify: Option<PullOutcome>,
    },
}

/// What the executor is doing, for callers that show progress as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    StepStarted { index: usize, description: String },
    StepDone { index: usize },
    Verifying { image: String },
    Undoing { reason: String },
}

/// Where progress goes; `None` when nobody listens.
pub type ProgressSink = Option<tokio::sync::mpsc::UnboundedSender<Progress>>;

fn report(sink: &ProgressSink, p: Progress) {
    if let Some(tx) = sink {
        // A caller that went away does not stop the apply: it must finish or undo.
        let _ = tx.send(p);
    }
}

/// The executor and the parts of the node it acts on.
#[derive(Clone)]
pub struct Executor {
    state_dir: PathBuf,
    containerd: ContainerdClient,
    dbus_address: Option<String>,
    health_timeout: Duration,
}

impl Executor {
    /// `containerd` must be a client in CRI's namespace; `dbus_address` `None` means
    /// the system bus.
    pub fn new(
        state_dir: PathBuf,
        containerd: ContainerdClient,
        dbus_address: Option<String>,
    ) -> Self {
        Executor {
            state_dir,
            containerd,
            dbus_address,
            health_timeout: Duration::from_secs(60),
        }
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Runs `plan`. `Err` means the executor could not decide (e.g. the plan is stale,
    /// nothing was done) or an undo itself failed (the error names the backups).
    pub async fn apply(&self, plan: &Plan) -> Result<ApplyOutcome, ApplyError> {
        self.apply_as(plan, None, &None).await
    }

    /// [`Executor::apply`], telling `progress` about each step as it runs.
    pub async fn apply_reporting(
        &self,
        plan: &Plan,
        progress: &ProgressSink,
    ) -> Result<ApplyOutcome, ApplyError> {
        self.apply_as(plan, None, progress).await
    }

    async fn apply_as(
        &self,
        plan: &Plan,
        rollback_of: Option<ChangeId>,
        progress: &ProgressSink,
    ) -> Result<ApplyOutcome, ApplyError> {
        check_fresh(plan)?;
        let mut journal = Journal::create(&self.state_dir, plan, rollback_of)?;
        let id = journal.id.clone();
        tracing::info!(change = %id, title = plan.title, "applying plan");
        for (n, step) in plan.steps.iter().enumerate() {
            report(
                progress,
                Progress::StepStarted {
                    index: n,
                    description: step.describe(),
                },
            );
            if let Err(e) = self.run_step(&mut journal, n, step).await {
                let reason = format!("step {} failed: {e}", n + 1);
                report(
                    progress,
                    Progress::Undoing {
                        reason: reason.clone(),
                    },
                );
                return self.undo(&mut journal, reason, None).await;
            }
            report(progress, Progress::StepDone { index: n });
        }
        let verify = match &plan.verify_pull {
            None => None,
            Some(image) => {
                report(
                    progress,
                    Progress::Verifying {
                        image: image.clone(),
                    },
                );
                match self
                    .containerd
                    .pull_leaving_store_as_found(image, false)
                    .await
                {
                    Ok(pull) => Some(pull.outcome),
                    Err(e) => {
                        let reason = format!("the verification pull could not run: {e}");
                        report(
                            progress,
                            Progress::Undoing {
                                reason: reason.clone(),
                            },
                        );
                        return self.undo(&mut journal, reason, None).await;
                    }
                }
            }
        };
        let failure = match &verify {
            Some(PullOutcome::Failed { message, .. }) => Some(message.clone()),
            Some(PullOutcome::TimedOut { limit }) => Some(format!(
                "it did not finish within {}s (pull_timeout_secs)",
                limit.as_secs()
            )),
            Some(PullOutcome::Pulled { .. }) | None => None,
        };
        if let Some(message) = failure {
            let reason = format!("the verification pull still fails: {message}");
            report(
                progress,
                Progress::Undoing {
                    reason: reason.clone(),
                },
            );
            return self.undo(&mut journal, reason, verify).await;
        }
        journal.append(&Event::Applied)?;
        tracing::info!(change = %id, "plan applied");
        Ok(ApplyOutcome::Applied { id, verify })
    }

    async fn run_step(
        &self,
        journal: &mut Journal,
        n: usize,
        step: &Step,
    ) -> Result<(), ApplyError> {
        match step {
            Step::WriteFile {
                path, after, mode, ..
            } => {
                let current = fsops::read_regular(path)?;
                let meta = match &current {
                    Some((bytes, meta)) => {
                        fsops::atomic_write(&journal.backup_path(n), bytes, FileMeta::private())?;
                        *meta
                    }
                    None => FileMeta::new_file(*mode),
                };
                journal.append(&Event::Backup {
                    step: n,
                    existed: current.is_some(),
                    meta: Some(meta),
                })?;
                failpoint("backup", n);
                journal.append(&Event::Started { step: n })?;
                failpoint("started", n);
                fsops::atomic_write(path, after.as_bytes(), meta)?;
            }
            Step::MoveToBackup { path, .. } => {
                let meta = fsops::read_regular(path)?.map(|(_, m)| m);
                journal.append(&Event::Backup {
                    step: n,
                    existed: meta.is_some(),
                    meta,
                })?;
                failpoint("backup", n);
                journal.append(&Event::Started { step: n })?;
                failpoint("started", n);
                if meta.is_some() {
                    fsops::move_file(path, &journal.backup_path(n))?;
                }
            }
            Step::RemoveImage { image, .. } => {
                journal.append(&Event::Started { step: n })?;
                failpoint("started", n);
                match self.containerd.remove_image(image).await {
                    Ok(()) | Err(ContainerdError::ImageNotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Step::RestartUnit { unit, .. } => {
                journal.append(&Event::Started { step: n })?;
                failpoint("started", n);
                self.restart(unit).await?;
            }
        }
        failpoint("done", n);
        journal.append(&Event::Done { step: n })?;
        Ok(())
    }

    /// Restarts `unit` over D-Bus and waits until containerd's CRI answers again:
    /// a containerd that starts without its CRI plugin cannot serve the kubelet.
    pub async fn restart(&self, unit: &str) -> Result<(), ApplyError> {
        let systemd = Systemd::connect(self.dbus_address.as_deref()).await?;
        systemd.restart_unit(unit, self.health_timeout).await?;
        let deadline = tokio::time::Instant::now() + self.health_timeout;
        loop {
            match self.containerd.runtime_status().await {
                Ok(_) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(ApplyError::CriDown {
                        timeout: self.health_timeout,
                        detail: e.to_string(),
                    });
                }
                // CRI refusing its config will not fix itself: no point waiting.
                Err(e @ ContainerdError::CriUnavailable { .. }) => {
                    return Err(ApplyError::CriDown {
                        timeout: self.health_timeout,
                        detail: e.to_string(),
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Undoes every started step of `journal`'s change in reverse and records why.
    async fn undo(
        &self,
        journal: &mut Journal,
        reason: String,
        verify: Option<PullOutcome>,
    ) -> Result<ApplyOutcome, ApplyError> {
        let id = journal.id.clone();
        tracing::warn!(change = %id, reason, "undoing change");
        let record = journal::load(&self.state_dir, &id)?;
        match self.undo_steps(journal, &record).await {
            Ok(()) => {
                journal.append(&Event::RolledBack {
                    reason: reason.clone(),
                })?;
                Ok(ApplyOutcome::RolledBack { id, reason, verify })
            }
            Err(source) => Err(ApplyError::UndoFailed {
                backups: journal
                    .backup_path(0)
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                id,
                reason,
                source: Box::new(source),
            }),
        }
    }

    async fn undo_steps(&self, journal: &Journal, record: &ChangeRecord) -> Result<(), ApplyError> {
        let mut restart_unit = None;
        for n in record.started_steps().into_iter().rev() {
            let Some(step) = record.plan.steps.get(n) else {
                continue;
            };
            match step {
                Step::WriteFile { path, .. } => {
                    match record.backup_of(n) {
                        Some((true, Some(meta))) => {
                            let (bytes, _) = fsops::read_regular(&journal.backup_path(n))?
                                .ok_or_else(|| FsError::NotRegular {
                                    path: journal.backup_path(n),
                                })?;
                            fsops::atomic_write(path, &bytes, meta)?;
                        }
                        // The step created the file: take it out of use (kept, not deleted).
                        _ => {
                            if fsops::read_regular(path)?.is_some() {
                                let parked = journal.backup_path(n).with_extension("created");
                                fsops::move_file(path, &parked)?;
                            }
                        }
                    }
                }
                Step::MoveToBackup { path, .. } => {
                    let backup = journal.backup_path(n);
                    if fsops::read_regular(&backup)?.is_some() {
                        fsops::move_file(&backup, path)?;
                    }
                }
                Step::RemoveImage { image, .. } => {
                    tracing::info!(
                        image,
                        "a removed image is not restored; the next pull fetches it again"
                    );
                }
                Step::RestartUnit { unit, .. } => restart_unit = Some(unit.clone()),
            }
        }
        // containerd read the changed config at its restart: restart it on the old one.
        if let Some(unit) = restart_unit {
            self.restart(&unit).await?;
        }
        Ok(())
    }

    /// Records that applied change `id` is to be rolled back at `unix` (insecure
    /// settings with a TTL); [`Executor::roll_back_expired`] does it.
    pub fn set_expiry(&self, id: &ChangeId, unix: u64) -> Result<(), ApplyError> {
        Journal::open(&self.state_dir, id)?.append(&Event::Expires { unix })?;
        Ok(())
    }

    /// Rolls back every applied change whose expiry is at or before `now_unix`, and
    /// returns the earliest expiry still ahead (for the caller's next wake-up).
    pub async fn roll_back_expired(&self, now_unix: u64) -> Result<Option<u64>, ApplyError> {
        let mut next = None;
        for record in journal::list(&self.state_dir)? {
            let (ChangeState::Applied, Some(at)) = (&record.state, record.expires_unix()) else {
                continue;
            };
            if at <= now_unix {
                tracing::warn!(change = %record.id, "the change's time to live is over: rolling it back");
                self.rollback(&record.id).await?;
            } else {
                next = Some(next.map_or(at, |n: u64| n.min(at)));
            }
        }
        Ok(next)
    }

    /// Undoes changes a crash interrupted; run once at start, before serving.
    pub async fn recover(&self) -> Result<Vec<ChangeId>, ApplyError> {
        let mut undone = Vec::new();
        for record in journal::list(&self.state_dir)? {
            if record.state != ChangeState::Interrupted {
                continue;
            }
            let mut j = Journal::open(&self.state_dir, &record.id)?;
            tracing::warn!(change = %record.id, "undoing a change interrupted by a stop or crash");
            self.undo(
                &mut j,
                "interrupted: ctrdiagd stopped during apply".into(),
                None,
            )
            .await?;
            undone.push(record.id);
        }
        Ok(undone)
    }

    /// Undoes an applied change, itself as a new change (journaled, backed up). Returns
    /// the plan that was run and its outcome.
    pub async fn rollback(&self, id: &ChangeId) -> Result<(Plan, ApplyOutcome), ApplyError> {
        let plan = self.rollback_plan(id)?;
        let outcome = self.apply_as(&plan, Some(id.clone()), &None).await?;
        if let ApplyOutcome::Applied { id: by, .. } = &outcome {
            Journal::open(&self.state_dir, id)?.append(&Event::Reverted { by: by.clone() })?;
        }
        Ok((plan, outcome))
    }

    /// The plan that restores what change `id` replaced, moved or created.
    pub fn rollback_plan(&self, id: &ChangeId) -> Result<Plan, ApplyError> {
        let record = journal::load(&self.state_dir, id)?;
        if record.state != ChangeState::Applied {
            return Err(ApplyError::NotApplied {
                id: id.clone(),
                state: format!("{:?}", record.state).to_lowercase(),
            });
        }
        let backup = |n: usize| {
            changes_dir_of(&self.state_dir, id)
                .join("backup")
                .join(n.to_string())
        };
        let backup_text = |n: usize| -> Result<String, ApplyError> {
            let path = backup(n);
            let (bytes, _) = fsops::read_regular(&path)?
                .ok_or_else(|| FsError::NotRegular { path: path.clone() })?;
            String::from_utf8(bytes).map_err(|_| ApplyError::BinaryBackup {
                id: id.clone(),
                path,
            })
        };
        let mut steps = Vec::new();
        let mut restart = None;
        for (n, step) in record.plan.steps.iter().enumerate().rev() {
            match step {
                Step::WriteFile {
                    path, after, mode, ..
                } => match record.backup_of(n) {
                    Some((true, _)) => steps.push(Step::WriteFile {
                        path: path.clone(),
                        before: Some(after.clone()),
                        after: backup_text(n)?,
                        mode: *mode,
                        why: format!("restore the content before change {id}"),
                    }),
                    _ => steps.push(Step::MoveToBackup {
                        path: path.clone(),
                        why: format!("change {id} created it"),
                    }),
                },
                Step::MoveToBackup { path, .. } => {
                    if let Some((true, meta)) = record.backup_of(n) {
                        steps.push(Step::WriteFile {
                            path: path.clone(),
                            before: None,
                            after: backup_text(n)?,
                            mode: meta.map(|m| m.mode).unwrap_or(0o600),
                            why: format!("put back what change {id} moved away"),
                        });
                    }
                }
                Step::RemoveImage { .. } => {}
                Step::RestartUnit { unit, .. } => restart = Some(unit.clone()),
            }
        }
        if let Some(unit) = restart {
            steps.push(Step::RestartUnit {
                unit,
                why: "containerd reads config.toml only at start".into(),
            });
        }
        Ok(Plan {
            title: format!("roll back change {id} ({})", record.plan.title),
            steps,
            verify_pull: None,
        })
    }
}

fn changes_dir_of(state_dir: &Path, id: &ChangeId) -> PathBuf {
    state_dir.join("changes").join(id.as_str())
}

/// Refuses a plan whose files no longer hold what it was made from.
fn check_fresh(plan: &Plan) -> Result<(), ApplyError> {
    for step in &plan.steps {
        if let Step::WriteFile { path, before, .. } = step {
            let current = fsops::read_regular(path)?.map(|(b, _)| b);
            if current.as_deref() != before.as_ref().map(|s| s.as_bytes()) {
                return Err(ApplyError::Stale { path: path.clone() });
            }
        }
    }
    Ok(())
}

/// Crash injection for tests of recovery (`--features failpoints`):
/// `CTRDIAG_FAILPOINT=<phase>:<step>` kills the process with SIGKILL at that point,
/// as `kill -9` would. Compiled out of normal builds.
#[cfg(feature = "failpoints")]
fn failpoint(phase: &str, step: usize) {
    if std::env::var("CTRDIAG_FAILPOINT").ok().as_deref() == Some(&format!("{phase}:{step}")) {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

#[cfg(not(feature = "failpoints"))]
fn failpoint(_phase: &str, _step: usize) {}
