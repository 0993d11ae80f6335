//! Conversions between the library's domain types and the wire types, in one place.

use std::path::Path;

use super::v1 as pb;
use crate::containerd::{ImageSummary, PullOutcome};
use crate::plan::{ChangeRecord, ChangeState, Plan};

impl From<ImageSummary> for pb::Image {
    fn from(i: ImageSummary) -> Self {
        pb::Image {
            name: i.name,
            digest: i.digest,
            media_type: i.media_type,
            size: i.size.unwrap_or(0),
            size_known: i.size.is_some(),
            created_unix: i.created_unix.unwrap_or(0),
        }
    }
}

impl pb::TestPullResponse {
    pub fn from_outcome(image: &str, outcome: &PullOutcome) -> Self {
        match outcome {
            PullOutcome::Pulled { image_id, duration } => pb::TestPullResponse {
                image: image.to_string(),
                ok: true,
                image_id: image_id.clone(),
                duration_ms: duration.as_millis() as u64,
                ..Default::default()
            },
            PullOutcome::Failed {
                message, duration, ..
            } => pb::TestPullResponse {
                image: image.to_string(),
                ok: false,
                message: message.clone(),
                duration_ms: duration.as_millis() as u64,
                ..Default::default()
            },
        }
    }
}

/// What containerd's config.toml at `path` says about registries.
pub fn config_status(path: &Path) -> pb::ContainerdConfig {
    pb::ContainerdConfig {
        file: path.display().to_string(),
        exists: path.exists(),
        ..Default::default()
    }
}

impl From<&Plan> for pb::PlanView {
    fn from(plan: &Plan) -> Self {
        let rendered = plan.render();
        pb::PlanView {
            title: plan.title.clone(),
            steps: plan.steps.iter().map(|s| s.describe()).collect(),
            verify_pull: plan.verify_pull.clone().unwrap_or_default(),
            // The diffs follow the numbered list in the rendering.
            diff: rendered
                .split_once("\n\n")
                .map(|(_, d)| d.to_string())
                .unwrap_or_default(),
            restarts_containerd: plan.restarts(),
        }
    }
}

impl From<&ChangeRecord> for pb::Change {
    fn from(c: &ChangeRecord) -> Self {
        let (state, reason, reverted_by) = match &c.state {
            ChangeState::Applied => ("applied", String::new(), String::new()),
            ChangeState::Interrupted => ("interrupted", String::new(), String::new()),
            ChangeState::RolledBack { reason } => ("rolled_back", reason.clone(), String::new()),
            ChangeState::Reverted { by } => ("reverted", String::new(), by.to_string()),
        };
        pb::Change {
            id: c.id.to_string(),
            title: c.plan.title.clone(),
            created_unix: c.created_unix as i64,
            state: state.to_string(),
            reason,
            reverted_by,
            rollback_of: c
                .rollback_of
                .as_ref()
                .map(|i| i.to_string())
                .unwrap_or_default(),
            steps: c.plan.steps.iter().map(|s| s.describe()).collect(),
        }
    }
}
