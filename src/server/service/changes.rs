//! The change-history RPCs: listing changes and rolling one back, and the summary of
//! what changes leave on the node that status reports.

use crate::api::v1 as pb;
use crate::plan::{ApplyOutcome, ChangeId, ChangeState, Listed, journal};

use super::{DiagnosticsService, ServiceError};

impl DiagnosticsService {
    pub(super) fn changes(&self) -> Result<pb::ListChangesResponse, ServiceError> {
        let now = self.executor.clock().now_unix();
        let listed = journal::list(self.executor.state_dir())?;
        Ok(pb::ListChangesResponse {
            changes: listed
                .iter()
                .map(|l| crate::api::change_view(l, now))
                .collect(),
        })
    }

    /// Insecure settings in effect, damaged records and a blocked recovery.
    pub(super) fn changes_summary(&self) -> pb::ChangesSummary {
        let now = self.executor.clock().now_unix();
        let mut summary = pb::ChangesSummary::default();
        match journal::list(self.executor.state_dir()) {
            Ok(listed) => {
                for l in &listed {
                    match l {
                        Listed::Damaged(d) => summary.damaged.push(d.id.to_string()),
                        Listed::Change(c) if c.state == ChangeState::Applied => {
                            if let Some(view) = crate::api::insecure_view(c, now) {
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
            id.parse()?
        };
        let mut resp = pb::RollbackResponse {
            target_id: target.to_string(),
            ..Default::default()
        };
        if dry_run {
            resp.plan = Some((&self.executor.rollback_plan(&target)?).into());
            return Ok(resp);
        }
        let (plan, outcome) = self.executor.rollback(&target).await?;
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
