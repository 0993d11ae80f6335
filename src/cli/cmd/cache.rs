//! `ctrdiag cache purge REGISTRY [--force] [--dry-run]`

use super::Client;
use crate::api::v1 as pb;
use crate::cli::{CacheCommand, Exit, Failure, Output};

pub async fn run(
    mut client: Client,
    command: CacheCommand,
    output: Output,
) -> Result<Exit, Failure> {
    let CacheCommand::Purge {
        registry,
        force,
        dry_run,
    } = command;
    let stream = client
        .purge_cache(pb::PurgeCacheRequest {
            registry,
            force,
            dry_run,
        })
        .await
        .map_err(|s| Failure::from_status(&s))?
        .into_inner();
    super::fix::follow(stream, output).await
}
