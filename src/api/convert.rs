//! Conversions from the controller's answers to the wire types, in one place. No
//! decisions here: causes, health and overdue settings arrive decided.

use super::v1 as pb;
use crate::containerd::{ImageSummary, PullOutcome};
use crate::controller::PullReport;
use crate::controller::changes::{ListedChange, Rollback, RollbackDone};
use crate::controller::diagnose::Diagnosis;
use crate::controller::status::{ChangesSummary, ConfigState, InsecureInEffect, Status};
use crate::managed::{EditAction, FileEdit, ManagedChange};
use crate::plan::executor::state_name;
use crate::plan::{ApplyOutcome, ChangeRecord, ChangeState, InsecureMode, Listed, Plan};
use crate::systemd::UnitState;
use crate::trial::Trial;

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

impl From<&PullReport> for pb::TestPullResponse {
    fn from(r: &PullReport) -> Self {
        pb::TestPullResponse {
            image: r.image.clone(),
            ok: r.cause.is_none(),
            image_id: match &r.outcome {
                PullOutcome::Pulled { image_id, .. } => image_id.clone(),
                PullOutcome::Failed { .. } | PullOutcome::TimedOut { .. } => String::new(),
            },
            cause: r.cause.map(|c| c.to_string()).unwrap_or_default(),
            message: r.message(),
            duration_ms: r.duration().as_millis() as u64,
            removed_after: r.removed_after,
        }
    }
}

impl From<&Status> for pb::GetStatusResponse {
    fn from(s: &Status) -> Self {
        let c = &s.containerd;
        pb::GetStatusResponse {
            daemon_version: env!("CARGO_PKG_VERSION").to_string(),
            containerd: Some(pb::ContainerdStatus {
                socket: c.socket.display().to_string(),
                reachable: c.reachable,
                version: c.version.clone(),
                cri_ready: c.cri_ready,
                error: c.error.clone().unwrap_or_default(),
                cri_problems: c.cri_problems.clone(),
                loaded: c
                    .loaded
                    .iter()
                    .map(|f| pb::ConfigFinding {
                        cause: f.cause().to_string(),
                        message: f.to_string(),
                        remedy: f.remedy(),
                    })
                    .collect(),
            }),
            config: Some(config_status(&s.config)),
            unit: Some(unit_status(&s.unit_name, &s.unit)),
            changes: Some((&s.changes).into()),
            detection: Some(detection(&s.detection, &s.problems)),
        }
    }
}

/// Detection's state for `status` and `events`.
pub fn detection(
    d: &crate::detection::DetectionStatus,
    problems: &[crate::detect::Problem],
) -> pb::Detection {
    pb::Detection {
        source: d.source.clone(),
        following: d.following,
        error: d.error.clone(),
        lines_read: d.lines_read,
        events: u32::try_from(d.events).unwrap_or(u32::MAX),
        problems: problems.iter().map(Into::into).collect(),
    }
}

impl From<&crate::detect::Event> for pb::Event {
    fn from(e: &crate::detect::Event) -> Self {
        pb::Event {
            id: e.id,
            kind: e.kind.as_str().to_string(),
            image: e.image.clone().unwrap_or_default(),
            host: e.host.clone().unwrap_or_default(),
            cause: e.cause.to_string(),
            text: e.text.clone(),
            first_unix_ms: e.first_ms,
            last_unix_ms: e.last_ms,
            count: e.count,
        }
    }
}

impl From<&crate::detect::Problem> for pb::Problem {
    fn from(p: &crate::detect::Problem) -> Self {
        pb::Problem {
            host: p.host.clone(),
            area: p.area.as_str().to_string(),
            cause: p.cause.to_string(),
            image: p.image.clone().unwrap_or_default(),
            since_unix_ms: p.since_ms,
            last_unix_ms: p.last_ms,
            failures: p.failures,
        }
    }
}

/// containerd's unit as systemd reports it, or why it could not.
pub fn unit_status(name: &str, state: &Result<UnitState, String>) -> pb::UnitStatus {
    let mut out = pb::UnitStatus {
        name: name.to_string(),
        ..Default::default()
    };
    match state {
        Ok(s) => {
            out.active_state = s.active_state.clone();
            out.sub_state = s.sub_state.clone();
            out.n_restarts = s.n_restarts;
            out.exec_main_status = s.exec_main_status;
        }
        Err(e) => out.error = e.clone(),
    }
    out
}

/// What containerd's configuration says about registries.
fn config_status(c: &ConfigState) -> pb::ContainerdConfig {
    let mut out = pb::ContainerdConfig {
        file: c.file.display().to_string(),
        ..Default::default()
    };
    match &c.read {
        Err(e) => out.error = e.clone(),
        Ok(files) => {
            let f = files.facts.config.facts();
            out.exists = files.config_exists;
            out.config_version = f.version.number() as i32;
            out.config_path = f
                .config_path
                .as_ref()
                .map(|c| c.raw.clone())
                .unwrap_or_default();
            out.registry_mechanism = f.mechanism().as_str().to_string();
            out.imports = files.imported.clone();
            out.imports_with_registry_settings = files.imported_registry.clone();
            out.findings = c
                .findings
                .iter()
                .map(|x| pb::ConfigFinding {
                    cause: x.cause().to_string(),
                    message: x.to_string(),
                    remedy: String::new(),
                })
                .collect();
        }
    }
    out
}

impl From<&ChangesSummary> for pb::ChangesSummary {
    fn from(s: &ChangesSummary) -> Self {
        let (pending_change, pending_reason) = match (&s.pending_recovery, &s.journal_error) {
            (Some(p), _) => (p.id.to_string(), p.reason.clone()),
            (None, Some(e)) => (String::new(), e.clone()),
            (None, None) => (String::new(), String::new()),
        };
        pb::ChangesSummary {
            insecure: s.insecure.iter().map(insecure_view).collect(),
            damaged: s.damaged.iter().map(|d| d.to_string()).collect(),
            recovery_pending_change: pending_change,
            recovery_pending_reason: pending_reason,
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

/// Why ending an overdue setting failed last time; nothing for one not overdue.
fn overdue_error(c: &ChangeRecord, overdue: bool) -> String {
    match (overdue, c.last_expiry_failure()) {
        (true, Some(reason)) => reason.to_string(),
        _ => String::new(),
    }
}

fn insecure_view(i: &InsecureInEffect) -> pb::InsecureSettingView {
    pb::InsecureSettingView {
        change_id: i.change.id.to_string(),
        host: i.setting.host.clone(),
        mode: mode_name(i.setting.mode).to_string(),
        expires_unix: i.change.expires_unix().unwrap_or(0) as i64,
        overdue: i.overdue,
        error: overdue_error(&i.change, i.overdue),
    }
}

impl From<&ListedChange> for pb::Change {
    fn from(l: &ListedChange) -> Self {
        let c = match &l.entry {
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
            ChangeState::Applied
            | ChangeState::Interrupted
            | ChangeState::Expired
            | ChangeState::AwaitingRestart { .. } => (String::new(), String::new()),
        };
        let (restart_command, waiting_until_unix) = match &c.state {
            ChangeState::AwaitingRestart {
                command,
                until_unix,
            } => (command.clone(), *until_unix as i64),
            _ => (String::new(), 0),
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
            overdue: l.overdue,
            expiry_error: overdue_error(c, l.overdue),
            reverts: c.meta.reverts.iter().map(|i| i.to_string()).collect(),
            files: l
                .files
                .iter()
                .map(|(path, state)| pb::ChangeFile {
                    path: path.display().to_string(),
                    state: state.name().to_string(),
                })
                .collect(),
            restart_command,
            waiting_until_unix,
        }
    }
}

impl From<&Plan> for pb::PlanView {
    fn from(plan: &Plan) -> Self {
        pb::PlanView {
            title: plan.title.clone(),
            steps: plan.steps.iter().map(|s| s.describe()).collect(),
            verify_pull: plan.verify_pull.clone().unwrap_or_default(),
            diff: plan.diffs(),
            restarts_containerd: plan.restarts(),
            trial: None,
            preflight: Vec::new(),
        }
    }
}

impl From<&Trial> for pb::Trial {
    fn from(t: &Trial) -> Self {
        match t {
            Trial::Ran {
                ok,
                cause,
                message,
                duration_ms,
            } => pb::Trial {
                ran: true,
                ok: *ok,
                cause: cause.map(|c| c.to_string()).unwrap_or_default(),
                message: message.clone(),
                duration_ms: *duration_ms,
                skipped_reason: String::new(),
            },
            Trial::Skipped { reason } => pb::Trial {
                skipped_reason: reason.clone(),
                ..Default::default()
            },
        }
    }
}

impl From<&ManagedChange> for pb::ManagedChange {
    fn from(c: &ManagedChange) -> Self {
        let (file, file_action, file_text) = match &c.edit {
            Some(e) => (
                e.path.clone(),
                e.action.as_str().to_string(),
                e.text.clone(),
            ),
            None => Default::default(),
        };
        pb::ManagedChange {
            owner: c.owner.clone(),
            evidence: c.evidence.clone(),
            title: c.title.clone(),
            file,
            file_action,
            file_text,
            commands: c.commands.clone(),
            notes: c.notes.clone(),
            verify: c.verify.clone(),
        }
    }
}

/// The CLI's side: the core's change again, so it prints through the core's renderer.
impl From<&pb::ManagedChange> for ManagedChange {
    fn from(c: &pb::ManagedChange) -> Self {
        ManagedChange {
            owner: c.owner.clone(),
            evidence: c.evidence.clone(),
            title: c.title.clone(),
            edit: (!c.file.is_empty()).then(|| FileEdit {
                path: c.file.clone(),
                action: EditAction::parse(&c.file_action),
                text: c.file_text.clone(),
            }),
            commands: c.commands.clone(),
            notes: c.notes.clone(),
            verify: c.verify.clone(),
        }
    }
}

impl From<&Rollback> for pb::RollbackResponse {
    fn from(r: &Rollback) -> Self {
        let mut resp = pb::RollbackResponse {
            target_id: r.target.to_string(),
            plan: Some((&r.plan).into()),
            ..Default::default()
        };
        match &r.outcome {
            None => {}
            Some(RollbackDone::Ran(ApplyOutcome::Applied { id, .. })) => {
                resp.executed = true;
                resp.change_id = id.to_string();
                resp.ok = true;
            }
            Some(RollbackDone::Ran(ApplyOutcome::RolledBack { id, reason, .. })) => {
                resp.executed = true;
                resp.change_id = id.to_string();
                resp.reason = reason.clone();
            }
            Some(RollbackDone::UndoFinished { what }) => {
                resp.executed = true;
                resp.ok = true;
                resp.finished_undo = true;
                resp.reason = what.clone();
            }
        }
        resp
    }
}

/// The result of an applied fix, as the last event of its stream.
pub fn fix_result(plan: &Plan, outcome: &ApplyOutcome, expires_unix: Option<u64>) -> pb::FixResult {
    let image = plan.verify_pull.as_deref().unwrap_or("");
    let verify_of = |v: &Option<PullOutcome>| {
        v.as_ref()
            .map(|o| pb::TestPullResponse::from(&PullReport::from_outcome(image, o.clone(), false)))
    };
    match outcome {
        ApplyOutcome::Applied { id, verify } => pb::FixResult {
            executed: true,
            ok: true,
            change_id: id.to_string(),
            verify: verify_of(verify),
            expires_unix: expires_unix.unwrap_or(0) as i64,
            ..Default::default()
        },
        ApplyOutcome::RolledBack { id, reason, verify } => pb::FixResult {
            executed: true,
            ok: false,
            change_id: id.to_string(),
            reason: reason.clone(),
            verify: verify_of(verify),
            ..Default::default()
        },
    }
}

impl From<&Diagnosis> for pb::DiagnoseResponse {
    fn from(d: &Diagnosis) -> Self {
        pb::DiagnoseResponse {
            target: d.target.clone(),
            host: d.host.clone(),
            healthy: d.healthy,
            findings: d.findings.iter().map(pb::Finding::from).collect(),
            tried: d.tried.clone(),
            pull: d.pull.as_ref().map(pb::TestPullResponse::from),
            probe_json: serde_json::to_string(&d.probe).unwrap_or_default(),
            containerd_version: d.containerd_version.clone().unwrap_or_default(),
            lookup: d
                .lookup
                .iter()
                .flat_map(|l| &l.places)
                .map(pb::LookupPlace::from)
                .collect(),
            lookup_notes: d.lookup.iter().flat_map(|l| l.notes.clone()).collect(),
        }
    }
}

impl From<&crate::ctrconfig::Place> for pb::LookupPlace {
    fn from(p: &crate::ctrconfig::Place) -> Self {
        use crate::ctrconfig::PlaceState;
        let why = match &p.state {
            PlaceState::Shadowed { by } => Some(format!("shadowed by {by}")),
            PlaceState::NotRead(why) => Some(why.to_string()),
            PlaceState::Wins | PlaceState::Absent | PlaceState::AlsoUsed => None,
        };
        pb::LookupPlace {
            kind: p.kind.as_str().to_string(),
            path: p.path.clone(),
            state: p.state.as_str().to_string(),
            detail: why
                .into_iter()
                .chain(p.detail.clone())
                .collect::<Vec<_>>()
                .join("; "),
            files: p.files.clone(),
            ca_files: p
                .ca_files
                .iter()
                .map(|c| pb::LookupCaFile {
                    path: c.path.clone(),
                    exists: c.exists,
                })
                .collect(),
        }
    }
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

impl From<&crate::controller::creds::CredsScan> for pb::ScanCredentialsResponse {
    fn from(s: &crate::controller::creds::CredsScan) -> Self {
        pb::ScanCredentialsResponse {
            entries: s
                .entries
                .iter()
                .map(|e| pb::CredentialEntry {
                    file: e.file.clone(),
                    registry: e.registry.clone(),
                    kind: e.kind.as_str().to_string(),
                    key: e.key.clone(),
                })
                .collect(),
            problems: s.problems.clone(),
        }
    }
}
