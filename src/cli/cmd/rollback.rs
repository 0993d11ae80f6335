//! `ctrdiag rollback [ID] [--dry-run]`

use crate::cli::stdout::outln;

use serde_json::json;

use super::{Client, plan_json, print_json, print_plan};
use crate::api::v1 as pb;
use crate::cli::{Exit, Failure, Output};

pub async fn run(
    mut client: Client,
    id: Option<String>,
    dry_run: bool,
    output: Output,
) -> Result<Exit, Failure> {
    let r = client
        .rollback(pb::RollbackRequest {
            id: id.unwrap_or_default(),
            dry_run,
        })
        .await
        .map_err(|s| Failure::from_status(&s))?
        .into_inner();
    let plan = r.plan.unwrap_or_default();
    match output {
        Output::Json => print_json(&json!({
            "target_id": r.target_id,
            "plan": plan_json(&plan),
            "executed": r.executed,
            "change_id": r.change_id,
            "ok": r.ok,
            "reason": r.reason,
            "finished_undo": r.finished_undo,
        })),
        Output::Table => {
            print_plan(&plan);
            if !r.executed {
                outln!("\n(dry run: nothing was changed)");
            } else if r.finished_undo {
                outln!(
                    "\nfinished the undo of change {}: {}",
                    r.target_id,
                    r.reason
                );
            } else if r.ok {
                outln!(
                    "\nrolled back change {}; this rollback is change {}",
                    r.target_id,
                    r.change_id
                );
            } else {
                outln!("\nthe rollback did not hold and was undone: {}", r.reason);
            }
        }
    }
    Ok(if !r.executed || r.ok {
        Exit::Ok
    } else {
        Exit::Problem
    })
}
