//! Runs a [`Plan`] so the node is never left worse than it was: each step is journaled
//! (fsynced) before it acts, every replaced or moved file is backed up first, files are
//! replaced atomically, and after the steps a real pull through CRI must succeed. If a
//! step fails, containerd's CRI does not come back, or the pull fails, everything is
//! undone. A change interrupted by a crash is undone at the next start ([`Executor::recover`]).
//!
//! One node lock serialises everything that writes or restarts (apply, rollback,
//! restart, the end of a time to live, recovery), whoever asks. An undo restores a
//! file only while it still holds what the change wrote (or already holds the
//! original again, so a second undo after a crash is harmless); a file someone changed
//! since is left alone and reported. While an interrupted change cannot be undone,
//! every new change is refused with what to do, and each request tries the undo again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::fsops::{self, FsError};
use super::journal::{
    self, ChangeId, ChangeMeta, ChangeRecord, ChangeState, Event, Journal, JournalError, Listed,
};
use super::{ManualRestart, Plan, Step, sha256_hex};
use crate::clock::Clock;
use crate::containerd::{ContainerdError, Namespace, PullOutcome};
use crate::controller::ports::{ContainerdPort, UnitManager};
use crate::systemd::SystemdError;

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
    #[error(
        "containerd restarted without its CRI plugin, so the kubelet cannot use it: {detail}; correct that setting (`ctrdiag status` shows containerd's reason)"
    )]
    CriRefused { detail: String },
    #[error("change {id} is {state}, not applied: only an applied change can be rolled back")]
    NotApplied { id: ChangeId, state: String },
    #[error("backup {} of change {id} is not text; restore it by hand from that file", .path.display())]
    BinaryBackup { id: ChangeId, path: PathBuf },
    #[error("{} no longer holds what change {id} wrote (it was changed since): ctrdiag will not overwrite it; compare it with the backup in {} and restore by hand if needed", .path.display(), .backups.display())]
    UndoRefused {
        id: ChangeId,
        path: PathBuf,
        backups: PathBuf,
    },
    #[error("change {id} could not be undone ({reason}): {source}. Its backups are in {}; `ctrdiag changes` says what each file holds now and `ctrdiag rollback {id}` tries the undo again; ctrdiag makes no other change until it is undone", .backups.display())]
    UndoFailed {
        id: ChangeId,
        reason: String,
        backups: PathBuf,
        source: Box<ApplyError>,
    },
    #[error(
        "containerd did not restart within {}s of the files being written (nobody ran `{command}`): the change was not proven",
        .waited.as_secs()
    )]
    NoRestart { command: String, waited: Duration },
    #[error("the wait for containerd's restart was ended by `ctrdiag rollback`")]
    WaitCancelled,
    #[error(
        "ctrdiag cannot tell when containerd restarts (neither its pid nor its socket can be read): restart it through the unit manager instead"
    )]
    InstanceUnknown,
    #[error(
        "an interrupted change was undone just before this one ran, so its plan no longer describes the node: run the command again"
    )]
    PlannedBeforeRecovery,
    #[error("ctrdiag makes no change while change {id} is interrupted and not undone ({reason}). Fix that cause and run the command again (ctrdiagd tries the undo first), or restore the files from {} by hand and move that change's directory out of the state directory", .backups.display())]
    RecoveryPending {
        id: ChangeId,
        reason: String,
        backups: PathBuf,
    },
}

/// How often a wait for the operator's restart looks at containerd.
const RESTART_LOOK_INTERVAL: Duration = Duration::from_millis(250);

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
    StepStarted {
        index: usize,
        description: String,
    },
    StepDone {
        index: usize,
    },
    Verifying {
        image: String,
    },
    Undoing {
        reason: String,
    },
    /// The files are written; the operator must restart containerd (`command`), and
    /// ctrdiag waits for that until `until_unix`.
    AwaitingRestart {
        change: ChangeId,
        command: String,
        until_unix: u64,
    },
}

/// Where progress goes; `None` when nobody listens.
pub type ProgressSink = Option<tokio::sync::mpsc::UnboundedSender<Progress>>;

fn report(sink: &ProgressSink, p: Progress) {
    if let Some(tx) = sink {
        // A caller that went away does not stop the apply: it must finish or undo.
        let _ = tx.send(p);
    }
}

/// An interrupted change that could not be undone: changes wait until it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRecovery {
    pub id: ChangeId,
    pub reason: String,
    pub backups: PathBuf,
}

/// What a recovery did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub undone: Vec<ChangeId>,
    /// Interrupted changes whose undo failed, and why.
    pub failed: Vec<(ChangeId, String)>,
    /// Changes whose records cannot be read (listed as damaged, never undone blindly).
    pub damaged: Vec<ChangeId>,
}

/// The executor and the parts of the node it acts on (containerd's CRI and the unit
/// manager, through their ports). Clones share one node lock.
pub struct Executor<C, U> {
    inner: Arc<Inner<C, U>>,
}

impl<C, U> Clone for Executor<C, U> {
    fn clone(&self) -> Self {
        Executor {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<C, U> {
    state_dir: PathBuf,
    containerd: C,
    systemd: U,
    clock: Arc<dyn Clock>,
    health_timeout: Duration,
    node: tokio::sync::Mutex<()>,
    pending: std::sync::Mutex<Option<PendingRecovery>>,
    /// Ends a wait for the operator's restart (`ctrdiag rollback` of that change).
    cancel_wait: tokio::sync::Notify,
}

/// What kind of change runs, for crash-injection points.
fn kind(meta: &ChangeMeta) -> &'static str {
    if !meta.reverts.is_empty() {
        "expiry"
    } else if meta.rollback_of.is_some() {
        "rollback"
    } else {
        "fix"
    }
}

impl<C: ContainerdPort, U: UnitManager> Executor<C, U> {
    /// Pulls go through CRI, whatever namespace `containerd` defaults to.
    pub fn new(state_dir: PathBuf, containerd: C, systemd: U, clock: Arc<dyn Clock>) -> Self {
        Executor {
            inner: Arc::new(Inner {
                state_dir,
                containerd,
                systemd,
                clock,
                health_timeout: Duration::from_secs(60),
                node: tokio::sync::Mutex::new(()),
                pending: std::sync::Mutex::new(None),
                cancel_wait: tokio::sync::Notify::new(),
            }),
        }
    }

    pub fn state_dir(&self) -> &Path {
        &self.inner.state_dir
    }

    /// The clock deadlines are measured with.
    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    /// The interrupted change that blocks new changes, if any.
    pub fn pending_recovery(&self) -> Option<PendingRecovery> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_pending(&self, pending: Option<PendingRecovery>) {
        *self.inner.pending.lock().unwrap_or_else(|p| p.into_inner()) = pending;
    }

    /// Takes the node lock for a change; first retries a pending recovery, and refuses
    /// while it still fails. Says whether that recovery undid something just now.
    async fn lock_for_change(&self) -> Result<(tokio::sync::MutexGuard<'_, ()>, bool), ApplyError> {
        let guard = self.inner.node.lock().await;
        if self.pending_recovery().is_none() {
            return Ok((guard, false));
        }
        let report = self.recover_locked().await;
        if let Err(refused) = self.refuse_while_pending() {
            tracing::warn!(
                failed = report.failed.len(),
                "an interrupted change still cannot be undone: refusing the new change"
            );
            return Err(refused);
        }
        Ok((guard, !report.undone.is_empty()))
    }

    /// The refusal a change would get now, without trying the undo again.
    pub fn refuse_while_pending(&self) -> Result<(), ApplyError> {
        match self.pending_recovery() {
            Some(p) => Err(ApplyError::RecoveryPending {
                id: p.id,
                reason: p.reason,
                backups: p.backups,
            }),
            None => Ok(()),
        }
    }

    /// Finishes a pending recovery before a caller plans a change, so the plan is made
    /// from the node as it is after the undo; refuses while it cannot finish.
    pub async fn resume_recovery(&self) -> Result<(), ApplyError> {
        self.lock_for_change().await.map(|_| ())
    }

    /// Runs `plan` as a change described by `meta` (its expiry is part of its first
    /// record). `Err` means the executor could not decide (the plan is stale, nothing
    /// was done) or an undo itself failed (the error names the backups).
    pub async fn apply(
        &self,
        plan: &Plan,
        meta: ChangeMeta,
        progress: &ProgressSink,
    ) -> Result<ApplyOutcome, ApplyError> {
        let (_node, recovered_now) = self.lock_for_change().await?;
        if recovered_now {
            // The plan was made before that undo: the node it describes is gone.
            return Err(ApplyError::PlannedBeforeRecovery);
        }
        self.run(plan, meta, progress).await
    }

    async fn run(
        &self,
        plan: &Plan,
        meta: ChangeMeta,
        progress: &ProgressSink,
    ) -> Result<ApplyOutcome, ApplyError> {
        check_fresh(plan)?;
        let kind = kind(&meta);
        let manual = meta.manual_restart.clone();
        let mut journal = Journal::create(self.state_dir(), plan, meta)?;
        failpoint(kind, "created", 0);
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
            let ran = self
                .run_step(kind, &mut journal, n, step, manual.as_ref(), progress)
                .await;
            if let Err(e) = ran {
                let reason = format!("step {} failed: {e}", n + 1);
                return self
                    .undo_reporting(&mut journal, reason, None, progress)
                    .await;
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
                match self.inner.containerd.test_pull(image, false).await {
                    Ok(pull) => Some(pull.outcome),
                    Err(e) => {
                        let reason = format!("the verification pull could not run: {e}");
                        return self
                            .undo_reporting(&mut journal, reason, None, progress)
                            .await;
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
            return self
                .undo_reporting(&mut journal, reason, verify, progress)
                .await;
        }
        failpoint(kind, "verified", 0);
        if let Err(e) = journal.append(&Event::Applied) {
            let reason = format!("the change could not be recorded as applied: {e}");
            return self
                .undo_reporting(&mut journal, reason, verify, progress)
                .await;
        }
        tracing::info!(change = %id, "plan applied");
        Ok(ApplyOutcome::Applied { id, verify })
    }

    async fn run_step(
        &self,
        kind: &str,
        journal: &mut Journal,
        n: usize,
        step: &Step,
        manual: Option<&ManualRestart>,
        progress: &ProgressSink,
    ) -> Result<(), ApplyError> {
        match step {
            Step::WriteFile {
                path, after, mode, ..
            } => {
                let current = fsops::read_regular(path)?;
                let meta = match &current {
                    Some((bytes, meta)) => {
                        fsops::atomic_write(&journal.backup_path(n), bytes, fsops::private_meta())?;
                        *meta
                    }
                    None => fsops::new_file_meta(*mode),
                };
                journal.append(&Event::Backup {
                    step: n,
                    existed: current.is_some(),
                    meta: Some(meta),
                })?;
                failpoint(kind, "backup", n);
                let dirs = fsops::missing_parents(path);
                if !dirs.is_empty() {
                    journal.append(&Event::CreatedDirs { step: n, dirs })?;
                }
                journal.append(&Event::Started { step: n })?;
                failpoint(kind, "started", n);
                fsops::atomic_write(path, after.as_bytes(), meta)?;
            }
            Step::MoveToBackup { path, .. } => {
                let meta = fsops::read_regular(path)?.map(|(_, m)| m);
                journal.append(&Event::Backup {
                    step: n,
                    existed: meta.is_some(),
                    meta,
                })?;
                failpoint(kind, "backup", n);
                journal.append(&Event::Started { step: n })?;
                failpoint(kind, "started", n);
                if meta.is_some() {
                    fsops::move_file(path, &journal.backup_path(n))?;
                }
            }
            Step::RemoveImage { image, .. } => {
                journal.append(&Event::Started { step: n })?;
                failpoint(kind, "started", n);
                match self
                    .inner
                    .containerd
                    .remove_image(&Namespace::default(), image)
                    .await
                {
                    Ok(()) | Err(ContainerdError::ImageNotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Step::RestartUnit { .. } if manual.is_some() => {
                journal.append(&Event::Started { step: n })?;
                failpoint(kind, "started", n);
                let manual = manual.expect("matched");
                self.await_restart(journal, n, manual, progress).await?;
            }
            Step::RestartUnit { unit, .. } => {
                journal.append(&Event::Started { step: n })?;
                failpoint(kind, "started", n);
                if let Err(e) = self.restart_unlocked(unit).await {
                    if let ApplyError::Systemd(
                        SystemdError::Connect { .. } | SystemdError::Call { .. },
                    ) = &e
                    {
                        journal.append(&Event::NotRestarted {
                            step: n,
                            containerd: self.containerd_instance().await,
                        })?;
                    }
                    return Err(e);
                }
            }
        }
        failpoint(kind, "done", n);
        journal.append(&Event::Done { step: n })?;
        Ok(())
    }

    /// Restarts `unit` through systemd and waits until containerd's CRI answers again,
    /// holding the node lock (no change runs meanwhile).
    pub async fn restart(&self, unit: &str) -> Result<(), ApplyError> {
        let _node = self.lock_for_change().await?;
        self.restart_unlocked(unit).await
    }

    /// A containerd that starts without its CRI plugin cannot serve the kubelet, so a
    /// restart is done only when CRI answers.
    async fn restart_unlocked(&self, unit: &str) -> Result<(), ApplyError> {
        self.inner
            .systemd
            .restart(unit, self.inner.health_timeout)
            .await?;
        self.wait_for_cri().await
    }

    /// Waits for someone else to restart containerd (another instance answers: see
    /// [`Self::containerd_instance`]), then for its CRI as after a restart of ours;
    /// gives up after `manual.wait_secs`, or when `ctrdiag rollback` ends the wait.
    async fn await_restart(
        &self,
        journal: &mut Journal,
        step: usize,
        manual: &ManualRestart,
        progress: &ProgressSink,
    ) -> Result<(), ApplyError> {
        let cancelled = self.inner.cancel_wait.notified();
        tokio::pin!(cancelled);
        cancelled.as_mut().enable();
        let before = self.containerd_instance().await;
        let waited = Duration::from_secs(manual.wait_secs);
        let until_unix = self.clock().now_unix() + manual.wait_secs;
        journal.append(&Event::AwaitingRestart {
            step,
            containerd: before.clone(),
            until_unix,
        })?;
        tracing::warn!(change = %journal.id, command = manual.command, "waiting for the operator to restart containerd");
        report(
            progress,
            Progress::AwaitingRestart {
                change: journal.id.clone(),
                command: manual.command.clone(),
                until_unix,
            },
        );
        let deadline = tokio::time::Instant::now() + waited;
        loop {
            let now = self.containerd_instance().await;
            if now.is_some() && now != before {
                tracing::info!(change = %journal.id, before, now, "containerd restarted");
                return self.wait_for_cri().await;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ApplyError::NoRestart {
                    command: manual.command.clone(),
                    waited,
                });
            }
            let next = deadline.min(tokio::time::Instant::now() + RESTART_LOOK_INTERVAL);
            tokio::select! {
                () = &mut cancelled => return Err(ApplyError::WaitCancelled),
                () = tokio::time::sleep_until(next) => {}
            }
        }
    }

    /// After a restart: containerd's CRI must answer (within the health timeout), or
    /// the restart failed; CRI refusing its configuration fails it at once.
    async fn wait_for_cri(&self) -> Result<(), ApplyError> {
        let timeout = self.inner.health_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.inner.containerd.runtime_status().await {
                Ok(_) => return Ok(()),
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(ApplyError::CriDown {
                        timeout,
                        detail: e.to_string(),
                    });
                }
                // CRI refusing its config will not fix itself: no point waiting. Its
                // own init error says why, where the CRI API only says "unknown service".
                Err(e @ ContainerdError::CriUnavailable { .. }) => {
                    return Err(ApplyError::CriRefused {
                        detail: self.cri_init_error().await.unwrap_or_else(|| e.to_string()),
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Whether ctrdiag can tell containerd instances apart (a manual restart needs it).
    pub async fn can_see_restarts(&self) -> Result<(), ApplyError> {
        match self.containerd_instance().await {
            Some(_) => Ok(()),
            None => Err(ApplyError::InstanceUnknown),
        }
    }

    /// Names the running containerd so a restart shows: its pid (Introspection, 1.7+),
    /// else its socket's inode and change time (containerd binds a new socket at every
    /// start; the inode alone is not enough: a file system reuses a freed inode number
    /// at once, as measured with 1.6.20 here).
    async fn containerd_instance(&self) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        if let Some(pid) = self
            .inner
            .containerd
            .loaded()
            .await
            .ok()
            .and_then(|l| l.pid)
        {
            return Some(format!("pid {pid}"));
        }
        let socket = std::fs::metadata(self.inner.containerd.socket()).ok()?;
        Some(format!(
            "socket inode {} changed {}.{:09}",
            socket.ino(),
            socket.ctime(),
            socket.ctime_nsec()
        ))
    }

    /// Whether containerd may be running on the files restart step `step` of `record`
    /// led to: the restart was requested (or may have been), or containerd restarted
    /// since on its own. Only then does an undo restart it again.
    async fn restarted_since(&self, record: &ChangeRecord, step: usize) -> bool {
        match record.not_restarted(step) {
            None => true,
            Some(before) => {
                let now = self.containerd_instance().await;
                before.is_none() || now.is_none() || before != now.as_deref()
            }
        }
    }

    /// Why containerd's CRI plugin did not load, in containerd's words (Introspection).
    async fn cri_init_error(&self) -> Option<String> {
        let loaded = self.inner.containerd.loaded().await.ok()?;
        crate::loaded::loaded_findings(&loaded)
            .into_iter()
            .find(|f| f.cause() == crate::cause::CauseCode::CriUnavailable)
            .map(|f| f.to_string())
    }

    async fn undo_reporting(
        &self,
        journal: &mut Journal,
        reason: String,
        verify: Option<PullOutcome>,
        progress: &ProgressSink,
    ) -> Result<ApplyOutcome, ApplyError> {
        report(
            progress,
            Progress::Undoing {
                reason: reason.clone(),
            },
        );
        let id = journal.id.clone();
        let reason = self.undo(journal, reason).await?;
        Ok(ApplyOutcome::RolledBack { id, reason, verify })
    }

    /// Undoes every started step of `journal`'s change in reverse and records why,
    /// with what the undo did; returns that record.
    async fn undo(&self, journal: &mut Journal, reason: String) -> Result<String, ApplyError> {
        let id = journal.id.clone();
        tracing::warn!(change = %id, reason, "undoing change");
        let record = journal::load(self.state_dir(), &id)?;
        let backups = journal.backup_dir();
        match self.undo_steps(journal, &record).await {
            Ok(undone) => {
                let reason = format!("{reason}; {undone}");
                journal.append(&Event::RolledBack {
                    reason: reason.clone(),
                })?;
                Ok(reason)
            }
            Err(source) => {
                // Until it is undone, no other change may start (each tries it again).
                if self.pending_recovery().is_none() {
                    self.set_pending(Some(PendingRecovery {
                        id: id.clone(),
                        reason: source.to_string(),
                        backups: backups.clone(),
                    }));
                }
                Err(ApplyError::UndoFailed {
                    id,
                    reason,
                    backups,
                    source: Box::new(source),
                })
            }
        }
    }

    /// Returns what the undo did, in plain words for the record and the operator.
    async fn undo_steps(
        &self,
        journal: &Journal,
        record: &ChangeRecord,
    ) -> Result<String, ApplyError> {
        let kind = kind(&record.meta);
        let refuse = |path: &Path| ApplyError::UndoRefused {
            id: record.id.clone(),
            path: path.to_path_buf(),
            backups: journal.backup_dir(),
        };
        let mut restart_unit = None;
        let mut restart_step = false;
        let mut files = 0;
        for n in record.started_steps().into_iter().rev() {
            let Some(step) = record.plan.steps.get(n) else {
                continue;
            };
            match step {
                Step::WriteFile { path, after, .. } => {
                    files += 1;
                    let current = fsops::read_regular(path)?.map(|(b, _)| b);
                    match record.backup_of(n) {
                        Some((true, Some(meta))) => {
                            let backup = journal.backup_path(n);
                            let (original, _) = fsops::read_regular(&backup)?
                                .ok_or(FsError::NotRegular { path: backup })?;
                            if current.as_deref() == Some(original.as_slice()) {
                                // Never written, or already undone by an earlier try.
                            } else if current.as_deref() == Some(after.as_bytes()) {
                                fsops::atomic_write(path, &original, meta)?;
                            } else {
                                return Err(refuse(path));
                            }
                        }
                        // The step created the file: take it out of use (kept, not deleted),
                        // and the directories it made for it when nothing else is in them.
                        _ => {
                            match current {
                                None => {}
                                Some(bytes) if bytes == after.as_bytes() => {
                                    let parked = journal.backup_path(n).with_extension("created");
                                    fsops::move_file(path, &parked)?;
                                }
                                Some(_) => return Err(refuse(path)),
                            }
                            for dir in record.created_dirs(n).iter().rev() {
                                fsops::remove_empty_dir(dir)?;
                            }
                        }
                    }
                }
                Step::MoveToBackup { path, .. } => {
                    files += 1;
                    let backup = journal.backup_path(n);
                    if fsops::read_regular(&backup)?.is_some() {
                        if fsops::read_regular(path)?.is_some() {
                            // A new file took its place since: keep both, say so.
                            return Err(refuse(path));
                        }
                        fsops::move_file(&backup, path)?;
                    }
                }
                Step::RemoveImage { image, .. } => {
                    tracing::info!(
                        image,
                        "a removed image is not restored; the next pull fetches it again"
                    );
                }
                Step::RestartUnit { unit, .. } => {
                    restart_step = true;
                    if self.restarted_since(record, n).await {
                        restart_unit = Some(unit.clone());
                    }
                }
            }
            failpoint(kind, "undo", n);
        }
        let files = match files {
            0 => String::new(),
            _ => "the files are back to their previous bytes".to_string(),
        };
        // containerd read the changed config at its restart: restart it on the old one.
        let containerd = match (restart_unit, &record.meta.manual_restart) {
            (None, _) if restart_step => {
                "containerd was not restarted: it never loaded the change".to_string()
            }
            (None, _) => String::new(),
            (Some(_), Some(manual)) => format!(
                "containerd runs the changed settings until it restarts: run `{}` so it loads the previous ones",
                manual.command
            ),
            (Some(unit), None) => match self.restart_unlocked(&unit).await {
                Ok(()) => format!("{unit} was restarted onto them"),
                Err(e) => format!(
                    "restarting {unit} onto them failed ({e}): containerd may run the changed settings until `systemctl restart {unit}`"
                ),
            },
        };
        let said: Vec<String> = [files, containerd]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        Ok(match said.is_empty() {
            true => "nothing had been changed yet".to_string(),
            false => said.join("; "),
        })
    }

    /// Appends `event` to change `id`'s journal under the node lock (expiry notes).
    pub async fn note(&self, id: &ChangeId, event: &Event) -> Result<(), ApplyError> {
        let _node = self.inner.node.lock().await;
        Journal::open(self.state_dir(), id)?.append(event)?;
        Ok(())
    }

    /// Undoes the changes a crash interrupted; run at start before serving, and again
    /// before any change while one of them could not be undone. Never stops at the
    /// first failure: each interrupted change is tried.
    pub async fn recover(&self) -> RecoveryReport {
        let _node = self.inner.node.lock().await;
        self.recover_locked().await
    }

    async fn recover_locked(&self) -> RecoveryReport {
        let mut report = RecoveryReport::default();
        let listed = match journal::list(self.state_dir()) {
            Ok(l) => l,
            Err(e) => {
                // The state directory itself cannot be read: nothing may change.
                let id: ChangeId = "state-dir".parse().expect("a valid id");
                self.set_pending(Some(PendingRecovery {
                    id: id.clone(),
                    reason: e.to_string(),
                    backups: self.state_dir().to_path_buf(),
                }));
                report.failed.push((id, e.to_string()));
                return report;
            }
        };
        let mut first_failure = None;
        for entry in listed {
            let record = match entry {
                Listed::Damaged(d) => {
                    tracing::error!(change = %d.id, problem = d.problem, "a damaged change record is skipped; inspect it with `ctrdiag changes`");
                    report.damaged.push(d.id);
                    continue;
                }
                // Under the node lock nobody waits for a restart: those are stale too.
                Listed::Change(c) if c.state.is_unfinished() => *c,
                Listed::Change(_) => continue,
            };
            tracing::warn!(change = %record.id, "undoing a change interrupted by a stop or crash");
            let result = match Journal::open(self.state_dir(), &record.id) {
                Ok(mut j) => {
                    let reason = "interrupted: ctrdiagd stopped during apply".to_string();
                    self.undo(&mut j, reason).await.map(|_| ())
                }
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(()) => report.undone.push(record.id),
                Err(e) => {
                    tracing::error!(change = %record.id, error = %e, "could not undo an interrupted change");
                    first_failure.get_or_insert_with(|| PendingRecovery {
                        id: record.id.clone(),
                        reason: e.to_string(),
                        backups: journal::backup_dir_of(self.state_dir(), &record.id),
                    });
                    report.failed.push((record.id, e.to_string()));
                }
            }
        }
        self.set_pending(first_failure);
        report
    }

    /// Undoes an applied change, itself as a new change (journaled, backed up). Undoing
    /// the removal of an insecure setting (a rollback or an expiry) gives that setting
    /// its time to live again, counted from now. Returns the plan that was run.
    pub async fn rollback(&self, id: &ChangeId) -> Result<(Plan, ApplyOutcome), ApplyError> {
        let _node = self.lock_for_change().await?;
        let (plan, target) = self.rollback_plan_of(id)?;
        let mut meta = ChangeMeta {
            rollback_of: Some(id.clone()),
            ..ChangeMeta::plain()
        };
        if let Some((setting, ttl)) = &target.meta.restores_insecure {
            meta.insecure = Some(setting.clone());
            meta.ttl_secs = *ttl;
            meta.expires_unix = ttl.map(|t| self.clock().now_unix() + t);
        }
        if let Some(setting) = &target.meta.insecure {
            meta.restores_insecure = Some((setting.clone(), target.meta.ttl_secs));
        }
        let outcome = self.run(&plan, meta, &None).await?;
        if let ApplyOutcome::Applied { id: by, .. } = &outcome {
            Journal::open(self.state_dir(), id)?.append(&Event::Reverted { by: by.clone() })?;
            remove_created_dirs(&target);
        }
        Ok((plan, outcome))
    }

    /// The plan that restores what change `id` replaced, moved or created.
    pub fn rollback_plan(&self, id: &ChangeId) -> Result<Plan, ApplyError> {
        Ok(self.rollback_plan_of(id)?.0)
    }

    /// Finishes the undo of change `id`, which a stop interrupted or whose undo
    /// failed (`ctrdiag rollback ID`); a change waiting for the operator's restart
    /// stops waiting and its own apply undoes it. Returns what the undo did.
    pub async fn finish_undo(&self, id: &ChangeId) -> Result<String, ApplyError> {
        if let ChangeState::AwaitingRestart { .. } = self.record(id)?.state {
            self.inner.cancel_wait.notify_waiters();
        }
        let _node = self.inner.node.lock().await;
        let record = self.record(id)?;
        match &record.state {
            // The wait just ended, and the apply undid its change.
            ChangeState::RolledBack { reason } => return Ok(reason.clone()),
            s if s.is_unfinished() => {}
            s => {
                return Err(ApplyError::NotApplied {
                    id: id.clone(),
                    state: state_name(s).into(),
                });
            }
        }
        let mut journal = Journal::open(self.state_dir(), id)?;
        let reason = "interrupted; the undo was finished by `ctrdiag rollback`".to_string();
        let reason = self.undo(&mut journal, reason).await?;
        // What still blocks changes, now that this one is undone.
        self.recover_locked().await;
        Ok(reason)
    }

    /// The steps that would undo unfinished change `id` (what `rollback --dry-run`
    /// shows for it): the inverse of each step it started.
    pub fn undo_plan(&self, id: &ChangeId) -> Result<Plan, ApplyError> {
        let record = self.record(id)?;
        let started = record.started_steps();
        let steps = self.inverse_steps(&record, |n| started.contains(&n))?;
        Ok(Plan {
            title: format!("finish the undo of change {id} ({})", record.plan.title),
            steps,
            verify_pull: None,
        })
    }

    fn record(&self, id: &ChangeId) -> Result<ChangeRecord, ApplyError> {
        match journal::find(self.state_dir(), id)? {
            Listed::Change(c) => Ok(*c),
            Listed::Damaged(_) => Err(ApplyError::NotApplied {
                id: id.clone(),
                state: "damaged".into(),
            }),
        }
    }

    fn rollback_plan_of(&self, id: &ChangeId) -> Result<(Plan, ChangeRecord), ApplyError> {
        let record = self.record(id)?;
        if record.state != ChangeState::Applied {
            return Err(ApplyError::NotApplied {
                id: id.clone(),
                state: state_name(&record.state).into(),
            });
        }
        let steps = self.inverse_steps(&record, |_| true)?;
        let plan = Plan {
            title: format!("roll back change {id} ({})", record.plan.title),
            steps,
            verify_pull: None,
        };
        Ok((plan, record))
    }

    /// The steps that restore what `record`'s steps (those `include` keeps) replaced,
    /// moved or created, last first; a restart at the end if any of them restarted.
    fn inverse_steps(
        &self,
        record: &ChangeRecord,
        include: impl Fn(usize) -> bool,
    ) -> Result<Vec<Step>, ApplyError> {
        let id = &record.id;
        let backups = journal::backup_dir_of(self.state_dir(), id);
        let backup_text = |n: usize| -> Result<String, ApplyError> {
            let path = backups.join(n.to_string());
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
            if !include(n) {
                continue;
            }
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
                        sha256: Some(sha256_hex(after.as_bytes())),
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
        Ok(steps)
    }
}

/// The state's name as the API and CLI spell it.
pub fn state_name(state: &ChangeState) -> &'static str {
    match state {
        ChangeState::Interrupted => "interrupted",
        ChangeState::AwaitingRestart { .. } => "awaiting_restart",
        ChangeState::Applied => "applied",
        ChangeState::RolledBack { .. } => "rolled_back",
        ChangeState::Reverted { .. } => "reverted",
        ChangeState::Expired => "expired",
    }
}

/// Refuses a plan whose files no longer hold what it was made from.
fn check_fresh(plan: &Plan) -> Result<(), ApplyError> {
    for step in &plan.steps {
        let (path, fresh) = match step {
            Step::WriteFile { path, before, .. } => {
                let current = fsops::read_regular(path)?.map(|(b, _)| b);
                (
                    path,
                    current.as_deref() == before.as_ref().map(|s| s.as_bytes()),
                )
            }
            Step::MoveToBackup {
                path,
                sha256: Some(want),
                ..
            } => {
                let current = fsops::read_regular(path)?.map(|(b, _)| sha256_hex(&b));
                (path, current.as_deref() == Some(want.as_str()))
            }
            Step::MoveToBackup { sha256: None, .. }
            | Step::RemoveImage { .. }
            | Step::RestartUnit { .. } => continue,
        };
        if !fresh {
            return Err(ApplyError::Stale { path: path.clone() });
        }
    }
    Ok(())
}

/// After a rollback of `target`: the directories it created for its files, deepest
/// first, when they are empty again (its rollback moved those files away). A directory
/// that cannot be removed is only logged: the rollback is done, and an empty
/// directory under certs.d changes nothing for containerd.
fn remove_created_dirs(target: &ChangeRecord) {
    for n in (0..target.plan.steps.len()).rev() {
        for dir in target.created_dirs(n).iter().rev() {
            if let Err(e) = fsops::remove_empty_dir(dir) {
                tracing::warn!(change = %target.id, dir = %dir.display(), "{e}");
            }
        }
    }
}

/// Crash injection for tests of recovery (`--features failpoints`):
/// `CTRDIAG_FAILPOINT=[<kind>:]<phase>:<step>` kills the process with SIGKILL at that
/// point, as `kill -9` would. Kinds: `fix`, `rollback`, `expiry` (any when left out);
/// phases: `created`, `backup`, `started`, `done`, `verified`, `undo`. Compiled out
/// of normal builds.
#[cfg(feature = "failpoints")]
fn failpoint(kind: &str, phase: &str, step: usize) {
    let Ok(spec) = std::env::var("CTRDIAG_FAILPOINT") else {
        return;
    };
    let here = format!("{phase}:{step}");
    if spec == here || spec == format!("{kind}:{here}") {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
    }
}

#[cfg(not(feature = "failpoints"))]
fn failpoint(_kind: &str, _phase: &str, _step: usize) {}
