//! `ctrdiag changes`

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
                "steps": c.steps,
            })).collect::<Vec<_>>(),
        })),
        Output::Table => {
            let rows: Vec<Vec<String>> = resp
                .changes
                .iter()
                .map(|c| {
                    let state = match c.state.as_str() {
                        "reverted" => format!("reverted by {}", c.reverted_by),
                        "rolled_back" => format!("rolled back: {}", c.reason),
                        s => s.to_string(),
                    };
                    vec![
                        c.id.clone(),
                        timestamp(c.created_unix),
                        state,
                        c.title.clone(),
                    ]
                })
                .collect();
            print!("{}", table(&["ID", "CREATED", "STATE", "TITLE"], &rows));
        }
    }
    Ok(Exit::Ok)
}
