//! The commands: those that talk to ctrdiagd, and `k8s pull-secrets`, which talks to the
//! Kubernetes API server instead.

use crate::cli::stdout::outln;

mod cache;
mod changes;
pub mod check;
mod creds;
mod diagnose;
mod events;
pub mod explain;
mod fix;
mod images;
mod pull;
pub mod pull_secrets;
mod restart;
mod rmi;
mod rollback;
mod status;

use serde_json::json;
use tonic::transport::Channel;

use super::{Command, Exit, Failure, Output};
use crate::api::v1 as pb;
use crate::api::v1::diagnostics_client::DiagnosticsClient;

pub type Client = DiagnosticsClient<Channel>;

pub async fn run(client: Client, command: Command, output: Output) -> Result<Exit, Failure> {
    match command {
        Command::Status => status::run(client, output).await,
        Command::Images { namespace } => images::run(client, namespace, output).await,
        Command::Rmi { images, namespace } => rmi::run(client, images, namespace, output).await,
        Command::Pull { image, keep } => pull::run(client, image, keep, output).await,
        Command::Diagnose { target, skip_pull } => {
            diagnose::run(client, target, skip_pull, output).await
        }
        Command::Fix(args) => fix::run(client, args, output).await,
        Command::Changes => changes::run(client, output).await,
        Command::Rollback { id, dry_run } => rollback::run(client, id, dry_run, output).await,
        Command::RestartContainerd => restart::run(client, output).await,
        Command::Creds(c) => creds::run(client, c, output).await,
        Command::Cache(c) => cache::run(client, c, output).await,
        Command::Events { since, cause } => events::list(client, since, cause, output).await,
        Command::Watch { cause } => events::watch(client, cause, output).await,
        Command::Completions { .. }
        | Command::Man
        | Command::K8s { .. }
        | Command::Check
        | Command::Explain { .. } => {
            unreachable!("handled without a daemon connection")
        }
    }
}

/// Prints a JSON document followed by a newline.
fn print_json(value: &serde_json::Value) {
    outln!("{value:#}");
}

/// A plan for people, printed by the library's one plan renderer.
fn print_plan(plan: &pb::PlanView) {
    let text = ctrdiag_core::plan::render_plan(
        &plan.title,
        &plan.steps,
        Some(plan.verify_pull.as_str()),
        &plan.diff,
    );
    outln!("{}", text.trim_end());
    for p in &plan.preflight {
        outln!("preflight: cannot finish: {p}");
    }
    if let Some(t) = &plan.trial {
        outln!("{}", trial_line(t));
    }
}

/// The trial as the plan output shows it.
fn trial_line(t: &pb::Trial) -> String {
    match (t.ran, t.ok) {
        (false, _) => format!("trial pull: not run ({})", t.skipped_reason),
        (true, true) => format!(
            "trial pull through the staged hosts directory (Transfer service): ok ({} ms)",
            t.duration_ms
        ),
        (true, false) => format!(
            "trial pull through the staged hosts directory (Transfer service): FAILED, {} ({} ms): {}",
            t.cause, t.duration_ms, t.message
        ),
    }
}

/// Whether the plan is refused before its first write: its preflight found a step
/// that cannot finish, or its trial ran and failed.
fn refused(plan: &pb::PlanView) -> bool {
    !plan.preflight.is_empty() || plan.trial.as_ref().is_some_and(|t| t.ran && !t.ok)
}

fn plan_json(plan: &pb::PlanView) -> serde_json::Value {
    json!({
        "title": plan.title,
        "steps": plan.steps,
        "verify_pull": plan.verify_pull,
        "diff": plan.diff,
        "restarts_containerd": plan.restarts_containerd,
        "preflight": plan.preflight,
        "trial": plan.trial.as_ref().map(|t| json!({
            "ran": t.ran,
            "ok": t.ok,
            "cause": (!t.cause.is_empty()).then_some(&t.cause),
            "message": t.message,
            "duration_ms": t.duration_ms,
            "skipped_reason": (!t.ran).then_some(&t.skipped_reason),
        })),
    })
}

fn unit_json(unit: &pb::UnitStatus) -> serde_json::Value {
    json!({
        "name": unit.name,
        "active_state": unit.active_state,
        "sub_state": unit.sub_state,
        "n_restarts": unit.n_restarts,
        "exec_main_status": unit.exec_main_status,
        "error": unit.error,
    })
}
