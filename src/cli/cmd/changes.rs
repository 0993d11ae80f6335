//! `ctrdiag changes`

use crate::cli::stdout::{out, outln};

use serde_json::json;

use super::{Client, print_json};
use crate::api::v1 as pb;
use crate::cli::render::{table, timestamp};
use crate::cli::{Exit, Failure, Output};

pub async fn run(mut client: Client, output: Output) -> Result<Exit, Failure> {
    let resp = client
        .list_changes(pb::ListChangesRequest {})
        .await
        .map_err(|s| Failure::from_status(&s))?
        .into_inner();
    match output {
        Output::Json => print_json(&json!({
            "changes": resp.changes.iter().map(|c| json!({
                "id": c.id,
                "title": c.title,
                "created": timestamp(c.created_unix),
                "state": c.state,
                "reason": c.reason,
                "reverted_by": c.reverted_by,
                "rollback_of": c.rollback_of,
                "reverts": c.reverts,
                "insecure": c.insecure,
                "expires": (c.expires_unix > 0).then(|| timestamp(c.expires_unix)),
                "overdue": c.overdue,
                "expiry_error": c.expiry_error,
                "steps": c.steps,
                "files": c.files.iter().map(|f| json!({"path": f.path, "state": f.state})).collect::<Vec<_>>(),
                "restart_command": (!c.restart_command.is_empty()).then_some(&c.restart_command),
                "waiting_until": (c.waiting_until_unix > 0).then(|| timestamp(c.waiting_until_unix)),
            })).collect::<Vec<_>>(),
        })),
        Output::Table => {
            let rows: Vec<Vec<String>> = resp
                .changes
                .iter()
                .map(|c| {
                    let mut state = match c.state.as_str() {
                        "reverted" => format!("reverted by {}", c.reverted_by),
                        "rolled_back" => format!("rolled back: {}", c.reason),
                        "damaged" => format!("DAMAGED: {}", c.reason),
                        "awaiting_restart" => format!(
                            "waiting until {} for `{}`",
                            timestamp(c.waiting_until_unix),
                            c.restart_command
                        ),
                        s => s.to_string(),
                    };
                    if c.overdue {
                        state += &format!(", OVERDUE since {}", timestamp(c.expires_unix));
                    } else if c.expires_unix > 0 && c.state == "applied" {
                        state += &format!(", until {}", timestamp(c.expires_unix));
                    }
                    vec![
                        c.id.clone(),
                        timestamp(c.created_unix),
                        state,
                        c.title.clone(),
                    ]
                })
                .collect();
            out!("{}", table(&["ID", "CREATED", "STATE", "TITLE"], &rows));
            for c in resp.changes.iter().filter(|c| c.state == "interrupted") {
                outln!(
                    "\nchange {} is interrupted; `ctrdiag rollback {}` finishes its undo. Its files now:",
                    c.id,
                    c.id
                );
                for f in &c.files {
                    outln!("  {:<9} {}", f.state, f.path);
                }
            }
        }
    }
    Ok(Exit::Ok)
}
