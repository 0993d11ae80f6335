//! The change-history flows: the list of changes, and rolling one back.

use std::collections::BTreeSet;

use super::ports::{ContainerdPort, Prober, UnitManager};
use super::{Controller, ControllerError};
use crate::plan::{ApplyOutcome, ChangeId, ChangeState, Listed, Plan, journal};

/// A change as listed, with whether its insecure setting is overdue.
#[derive(Debug, Clone)]
pub struct ListedChange {
    pub entry: Listed,
    pub overdue: bool,
}

/// What a rollback did, or would do.
#[derive(Debug, Clone)]
pub struct Rollback {
    pub target: ChangeId,
    pub plan: Plan,
    /// `None` for a dry run.
    pub outcome: Option<ApplyOutcome>,
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
        Ok(listed
            .into_iter()
            .map(|entry| ListedChange {
                overdue: overdue.contains(entry.id()),
                entry,
            })
            .collect())
    }

    /// Rolls back change `id`, or when `None` the latest applied change that is
    /// neither a rollback nor the end of a time to live: undoing one of those would
    /// turn an insecure setting back on, which only an explicit id may ask for.
    pub async fn rollback(
        &self,
        id: Option<ChangeId>,
        dry_run: bool,
    ) -> Result<Rollback, ControllerError> {
        let target = match id {
            Some(id) => id,
            None => journal::changes(self.executor.state_dir())?
                .into_iter()
                .rev()
                .find(|c| {
                    c.state == ChangeState::Applied
                        && c.meta.rollback_of.is_none()
                        && c.meta.reverts.is_empty()
                })
                .map(|c| c.id)
                .ok_or(ControllerError::NothingToRollBack)?,
        };
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
            outcome: Some(outcome),
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
