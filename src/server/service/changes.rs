//! The change-history RPCs: listing changes and rolling one back, and the summary of
//! what changes leave on the node that status reports.

use crate::api::v1 as pb;
use crate::plan::{ApplyOutcome, ChangeId, ChangeState, Listed, journal};

use super::{DiagnosticsService, ServiceError};

impl DiagnosticsService {
    pub(super) fn changes(&self) -> Result<pb::ListChangesResponse, ServiceError> {
        let listed = journal::list(self.executor.state_dir())?;
        let overdue = self.overdue(&listed);
        Ok(pb::ListChangesResponse {
            changes: listed
                .iter()
                .map(|l| crate::api::change_view(l, overdue.contains(l.id())))
                .collect(),
        })
    }

    /// The changes whose insecure setting should have ended by now and has not.
    fn overdue(&self, listed: &[Listed]) -> std::collections::BTreeSet<ChangeId> {
        let readable: Vec<_> = listed
            .iter()
            .filter_map(|l| match l {
                Listed::Change(c) => Some((**c).clone()),
                Listed::Damaged(_) => None,
            })
            .collect();
        crate::ttl::overdue(&readable, self.executor.clock().now_unix())
    }

    /// Insecure settings in effect, damaged records and a blocked recovery.
    pub(super) fn changes_summary(&self) -> pb::ChangesSummary {
        let mut summary = pb::ChangesSummary::default();
        match journal::list(self.executor.state_dir()) {
            Ok(listed) => {
                let overdue = self.overdue(&listed);
                for l in &listed {
                    match l {
                        Listed::Damaged(d) => summary.damaged.push(d.id.to_string()),
                        Listed::Change(c) if c.state == ChangeState::Applied => {
                            if let Some(view) =
                                crate::api::insecure_view(c, overdue.contains(&c.id))
                            {
                                summary.insecure.push(view);
                            }
                        }
                        Listed::Change(_) => {}
                    }
                }
            }
            Err(e) => summary.recovery_pending_reason = e.to_string(),
        }
        if let Some(p) = self.executor.pending_recovery() {
            summary.recovery_pending_change = p.id.to_string();
            summary.recovery_pending_reason = p.reason;
        }
        summary
    }

    /// Rolls back change `id`, or when `id` is empty the latest applied change that is
    /// neither a rollback nor the end of a time to live: undoing one of those would
    /// turn an insecure setting back on, which only an explicit id may ask for.
    pub(super) async fn roll_back(
        &self,
        id: &str,
        dry_run: bool,
    ) -> Result<pb::RollbackResponse, ServiceError> {
        let target: ChangeId = if id.is_empty() {
            journal::changes(self.executor.state_dir())?
                .into_iter()
                .rev()
                .find(|c| {
                    c.state == ChangeState::Applied
                        && c.meta.rollback_of.is_none()
                        && c.meta.reverts.is_empty()
                })
                .map(|c| c.id)
                .ok_or(ServiceError::NothingToRollBack)?
        } else {
            id.parse()
                .map_err(crate::plan::journal::JournalError::from)?
        };
        let mut resp = pb::RollbackResponse {
            target_id: target.to_string(),
            ..Default::default()
        };
        if dry_run {
            resp.plan = Some((&self.executor.rollback_plan(&target)?).into());
            return Ok(resp);
        }
        let executor = self.executor.clone();
        let id = target.clone();
        // Its own task: a caller that goes away must not stop a rollback half-way.
        let (plan, outcome) = tokio::spawn(async move { executor.rollback(&id).await })
            .await
            .map_err(|e| ServiceError::Internal(format!("rollback task failed: {e}")))??;
        resp.plan = Some((&plan).into());
        resp.executed = true;
        match outcome {
            ApplyOutcome::Applied { id, .. } => {
                tracing::info!(change = %target, by = %id, "rolled back");
                resp.change_id = id.to_string();
                resp.ok = true;
            }
            ApplyOutcome::RolledBack { id, reason, .. } => {
                tracing::warn!(change = %target, rollback = %id, reason, "rollback did not hold and was undone");
                resp.change_id = id.to_string();
                resp.reason = reason;
            }
        }
        Ok(resp)
    }
}
