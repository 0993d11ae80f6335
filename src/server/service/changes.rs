//! The change-history RPCs: listing changes and rolling one back.

use crate::api::v1 as pb;
use crate::plan::{ApplyOutcome, ChangeId, ChangeState, journal_list};

use super::{DiagnosticsService, ServiceError};

impl DiagnosticsService {
    pub(super) fn changes(&self) -> Result<pb::ListChangesResponse, ServiceError> {
        let records = journal_list(self.executor.state_dir())?;
        Ok(pb::ListChangesResponse {
            changes: records.iter().map(pb::Change::from).collect(),
        })
    }

    /// Rolls back change `id`, or the latest applied change when `id` is empty.
    pub(super) async fn roll_back(
        &self,
        id: &str,
        dry_run: bool,
    ) -> Result<pb::RollbackResponse, ServiceError> {
        let target: ChangeId = if id.is_empty() {
            journal_list(self.executor.state_dir())?
                .into_iter()
                .rev()
                .find(|c| c.state == ChangeState::Applied)
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
