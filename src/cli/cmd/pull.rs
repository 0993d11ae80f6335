//! `ctrdiag pull`

use crate::cli::stdout::outln;

use serde_json::json;

use super::{Client, print_json};
use crate::api::v1 as pb;
use crate::cli::{Exit, Failure, Output};

pub async fn run(
    mut client: Client,
    image: String,
    keep: bool,
    output: Output,
) -> Result<Exit, Failure> {
    let r = client
        .test_pull(pb::TestPullRequest { image, keep })
        .await
        .map_err(|s| Failure::from_status(&s))?
        .into_inner();
    match output {
        Output::Json => print_json(&json!({
            "image": r.image,
            "ok": r.ok,
            "image_id": r.image_id,
            "cause": r.cause,
            "message": r.message,
            "duration_ms": r.duration_ms,
            "removed_after": r.removed_after,
        })),
        Output::Table if r.ok => {
            outln!(
                "pulled {} through CRI in {} ms: {}",
                r.image,
                r.duration_ms,
                r.image_id
            );
            if r.removed_after {
                outln!(
                    "(the image was not on the node before, so it was removed again; --keep keeps it)"
                );
            }
        }
        Output::Table => {
            outln!(
                "pull of {} through CRI failed after {} ms",
                r.image,
                r.duration_ms
            );
            if !r.cause.is_empty() {
                outln!("cause: {}", r.cause);
            }
            outln!("containerd said: {}", r.message);
        }
    }
    Ok(if r.ok { Exit::Ok } else { Exit::Problem })
}
