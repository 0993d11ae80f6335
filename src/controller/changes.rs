//! The change-history flows: the list of changes, and rolling one back.

use std::collections::BTreeSet;

use super::ports::{ContainerdPort, Prober, UnitManager};
use super::{Controller, ControllerError};
use crate::plan::{
    ApplyOutcome, ChangeId, ChangeRecord, ChangeState, FileState, Listed, Plan, fsops, journal,
};

/// A change as listed, with whether its insecure setting is overdue and what each of
/// its files holds now.
#[derive(Debug, Clone)]
pub struct ListedChange {
    pub entry: Listed,
    pub overdue: bool,
    pub files: Vec<(std::path::PathBuf, FileState)>,
}

/// What a rollback did, or would do.
#[derive(Debug, Clone)]
pub struct Rollback {
    pub target: ChangeId,
    pub plan: Plan,
    /// `None` for a dry run.
    pub outcome: Option<RollbackDone>,
}

/// How an executed rollback ended.
#[derive(Debug, Clone)]
pub enum RollbackDone {
    /// An applied change was undone by a new change (or that change was itself undone).
    Ran(ApplyOutcome),
    /// An unfinished change (interrupted, or waiting for a restart) was undone in its
    /// own record; what the undo did.
    UndoFinished { what: String },
}

/// What each file of `change` holds now; a file that cannot be read is `Other`.
fn file_states(
    state_dir: &std::path::Path,
    change: &ChangeRecord,
) -> Vec<(std::path::PathBuf, FileState)> {
    let backups = journal::backup_dir_of(state_dir, &change.id);
    let bytes = |path: &std::path::Path| fsops::read_regular(path).map(|f| f.map(|(b, _)| b));
    (0..change.plan.steps.len())
        .filter_map(|n| {
            let backup = bytes(&backups.join(n.to_string()));
            let current = bytes(change.plan.steps[n].path()?);
            let (path, state) = match (backup, current) {
                (Ok(backup), Ok(current)) => {
                    change.file_state(n, backup.as_deref(), current.as_deref())?
                }
                _ => (change.plan.steps[n].path()?, FileState::Other),
            };
            Some((path.to_path_buf(), state))
        })
        .collect()
}

impl<C: ContainerdPort, U: UnitManager, P: Prober> Controller<C, U, P> {
    /// Every change, oldest first (damaged ones too).
    pub fn changes(&self) -> Result<Vec<ListedChange>, ControllerError> {
        let listed = journal::list(self.executor.state_dir())?;
        let readable: Vec<_> = listed
            .iter()
            .filter_map(|l| match l {
                Listed::Change(c) => Some((**c).clone()),
                Listed::Damaged(_) => None,
            })
            .collect();
        let overdue: BTreeSet<ChangeId> = crate::ttl::overdue(&readable, self.clock.now_unix());
        let state_dir = self.executor.state_dir();
        Ok(listed
            .into_iter()
            .map(|entry| ListedChange {
                overdue: overdue.contains(entry.id()),
                files: match &entry {
                    Listed::Change(c) => file_states(state_dir, c),
                    Listed::Damaged(_) => Vec::new(),
                },
                entry,
            })
            .collect())
    }

    /// Rolls back change `id`, or when `None` the latest unfinished change, else the
    /// latest applied change that is neither a rollback nor the end of a time to live:
    /// undoing one of those would turn an insecure setting back on, which only an
    /// explicit id may ask for. An unfinished change (interrupted, or waiting for a
    /// restart) has its undo finished instead.
    pub async fn rollback(
        &self,
        id: Option<ChangeId>,
        dry_run: bool,
    ) -> Result<Rollback, ControllerError> {
        let changes = journal::changes(self.executor.state_dir())?;
        let target = match id {
            Some(id) => id,
            None => changes
                .iter()
                .rev()
                .find(|c| c.state.is_unfinished())
                .or_else(|| {
                    changes.iter().rev().find(|c| {
                        c.state == ChangeState::Applied
                            && c.meta.rollback_of.is_none()
                            && c.meta.reverts.is_empty()
                    })
                })
                .map(|c| c.id.clone())
                .ok_or(ControllerError::NothingToRollBack)?,
        };
        if changes
            .iter()
            .any(|c| c.id == target && c.state.is_unfinished())
        {
            let plan = self.executor.undo_plan(&target)?;
            let outcome = match dry_run {
                true => None,
                false => {
                    let what = self.executor.finish_undo(&target).await?;
                    tracing::info!(change = %target, what, "finished the undo of an unfinished change");
                    Some(RollbackDone::UndoFinished { what })
                }
            };
            return Ok(Rollback {
                target,
                plan,
                outcome,
            });
        }
        if dry_run {
            return Ok(Rollback {
                plan: self.executor.rollback_plan(&target)?,
                target,
                outcome: None,
            });
        }
        let (plan, outcome) = self.executor.rollback(&target).await?;
        match &outcome {
            ApplyOutcome::Applied { id, .. } => {
                tracing::info!(change = %target, by = %id, "rolled back")
            }
            ApplyOutcome::RolledBack { id, reason, .. } => {
                tracing::warn!(change = %target, rollback = %id, reason, "rollback did not hold and was undone")
            }
        }
        Ok(Rollback {
            target,
            plan,
            outcome: Some(RollbackDone::Ran(outcome)),
        })
    }

    /// Ends the insecure settings whose time to live is over (see [`super::expiry`]).
    pub async fn end_due(&self) -> super::expiry::ExpiryReport {
        self.expiry.end_due().await
    }

    /// Undoes changes a crash interrupted (at start, before serving).
    pub async fn recover(&self) -> crate::plan::RecoveryReport {
        self.executor.recover().await
    }
}
