//! Conversions between the library's domain types and the wire types, in one place.

use std::path::Path;

use super::v1 as pb;
use crate::containerd::{ImageSummary, PullOutcome};
use crate::ctrconfig::Finding;
use crate::nodefiles::NodeFiles;
use crate::plan::executor::state_name;
use crate::plan::{ChangeRecord, ChangeState, InsecureMode, Listed, Plan};

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
                cause: crate::diagnose::classify(message).cause.to_string(),
                message: message.clone(),
                duration_ms: duration.as_millis() as u64,
                ..Default::default()
            },
            PullOutcome::TimedOut { limit } => pb::TestPullResponse {
                image: image.to_string(),
                ok: false,
                cause: crate::diagnose::CauseCode::Timeout.to_string(),
                message: format!(
                    "the pull did not finish within {}s (the daemon's pull_timeout_secs)",
                    limit.as_secs()
                ),
                duration_ms: limit.as_millis() as u64,
                ..Default::default()
            },
        }
    }
}

/// What containerd's configuration says about registries, for GetStatus; `findings`
/// are those for the running containerd's version (none when it is unknown).
pub fn config_status(
    file: &Path,
    read: Result<&NodeFiles, String>,
    findings: &[Finding],
) -> pb::ContainerdConfig {
    let mut out = pb::ContainerdConfig {
        file: file.display().to_string(),
        ..Default::default()
    };
    match read {
        Err(e) => out.error = e,
        Ok(files) => {
            let f = files.facts.config.facts();
            out.exists = files.config_exists;
            out.config_version = f.version.number() as i32;
            out.config_path = f
                .config_path
                .as_ref()
                .map(|c| c.raw.clone())
                .unwrap_or_default();
            out.registry_mechanism = match (f.config_path.is_some(), f.has_legacy_registry()) {
                (true, true) => "both",
                (true, false) => "hosts_dir",
                (false, true) => "legacy",
                (false, false) => "none",
            }
            .to_string();
            out.imports = files.imported.clone();
            out.imports_with_registry_settings = files.imported_registry.clone();
            out.findings = findings
                .iter()
                .map(|x| pb::ConfigFinding {
                    cause: x.cause().to_string(),
                    message: x.to_string(),
                })
                .collect();
        }
    }
    out
}

impl From<&Plan> for pb::PlanView {
    fn from(plan: &Plan) -> Self {
        pb::PlanView {
            title: plan.title.clone(),
            steps: plan.steps.iter().map(|s| s.describe()).collect(),
            verify_pull: plan.verify_pull.clone().unwrap_or_default(),
            diff: plan.diffs(),
            restarts_containerd: plan.restarts(),
        }
    }
}

/// How the API names an insecure setting's mode.
fn mode_name(mode: InsecureMode) -> &'static str {
    match mode {
        InsecureMode::SkipVerify => "skip_verify",
        InsecureMode::PlainHttp => "plain_http",
    }
}

/// One entry of the change directory as `ListChanges` shows it; `overdue`: its
/// insecure setting should have ended and has not ([`crate::expiry::overdue`]).
pub fn change_view(listed: &Listed, overdue: bool) -> pb::Change {
    let c = match listed {
        Listed::Change(c) => c,
        Listed::Damaged(d) => {
            return pb::Change {
                id: d.id.to_string(),
                state: "damaged".into(),
                reason: d.problem.clone(),
                ..Default::default()
            };
        }
    };
    let (reason, reverted_by) = match &c.state {
        ChangeState::RolledBack { reason } => (reason.clone(), String::new()),
        ChangeState::Reverted { by } => (String::new(), by.to_string()),
        ChangeState::Applied | ChangeState::Interrupted | ChangeState::Expired => {
            (String::new(), String::new())
        }
    };
    pb::Change {
        id: c.id.to_string(),
        title: c.plan.title.clone(),
        created_unix: c.created_unix as i64,
        state: state_name(&c.state).to_string(),
        reason,
        reverted_by,
        rollback_of: c
            .meta
            .rollback_of
            .as_ref()
            .map(|i| i.to_string())
            .unwrap_or_default(),
        steps: c.plan.steps.iter().map(|s| s.describe()).collect(),
        insecure: c
            .meta
            .insecure
            .as_ref()
            .map(|i| format!("{} for {}", mode_name(i.mode), i.host))
            .unwrap_or_default(),
        expires_unix: c.expires_unix().unwrap_or(0) as i64,
        overdue,
        expiry_error: overdue_error(c, overdue),
        reverts: c.meta.reverts.iter().map(|i| i.to_string()).collect(),
    }
}

/// Why ending an overdue setting failed last time; nothing for one not overdue.
fn overdue_error(c: &ChangeRecord, overdue: bool) -> String {
    match (overdue, c.last_expiry_failure()) {
        (true, Some(reason)) => reason.to_string(),
        _ => String::new(),
    }
}

/// The insecure setting an applied change keeps in effect, if it turns one on.
pub fn insecure_view(c: &ChangeRecord, overdue: bool) -> Option<pb::InsecureSettingView> {
    let setting = c.meta.insecure.as_ref()?;
    Some(pb::InsecureSettingView {
        change_id: c.id.to_string(),
        host: setting.host.clone(),
        mode: mode_name(setting.mode).to_string(),
        expires_unix: c.expires_unix().unwrap_or(0) as i64,
        overdue,
        error: overdue_error(c, overdue),
    })
}

impl From<&crate::diagnose::Finding> for pb::Finding {
    fn from(f: &crate::diagnose::Finding) -> Self {
        pb::Finding {
            cause: f.cause.to_string(),
            severity: f.severity.as_str().to_string(),
            summary: f.summary.clone(),
            evidence: f
                .evidence
                .iter()
                .map(|e| pb::Evidence {
                    label: e.label.clone(),
                    value: e.value.clone(),
                })
                .collect(),
            remedies: f
                .remedies
                .iter()
                .map(|r| pb::Remedy {
                    text: r.text.clone(),
                    command: r.command.clone().unwrap_or_default(),
                })
                .collect(),
        }
    }
}
