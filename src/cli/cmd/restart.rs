//! `ctrdiag restart-containerd`

use crate::cli::stdout::outln;

use serde_json::json;

use super::{Client, print_json};
use crate::api::v1 as pb;
use crate::cli::{Exit, Failure, Output};

pub async fn run(mut client: Client, output: Output) -> Result<Exit, Failure> {
    let r = client
        .restart_containerd(pb::RestartContainerdRequest {})
        .await
        .map_err(|s| Failure::from_status(&s))?
        .into_inner();
    let unit = r.unit.unwrap_or_default();
    match output {
        Output::Json => print_json(&json!({
            "unit": super::unit_json(&unit),
            "duration_ms": r.duration_ms,
        })),
        Output::Table => outln!(
            "restarted {} in {} ms; CRI answers ({} / {})",
            unit.name,
            r.duration_ms,
            unit.active_state,
            unit.sub_state
        ),
    }
    Ok(Exit::Ok)
}
