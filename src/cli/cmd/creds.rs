//! `ctrdiag creds scan [REGISTRY]` and `ctrdiag creds clean REGISTRY|--all`

use crate::cli::stdout::{out, outln};

use serde_json::json;

use super::{Client, print_json};
use crate::api::v1 as pb;
use crate::cli::render::table;
use crate::cli::{CredsCommand, Exit, Failure, Output};

pub async fn run(
    mut client: Client,
    command: CredsCommand,
    output: Output,
) -> Result<Exit, Failure> {
    match command {
        CredsCommand::Scan { registry } => {
            let r = client
                .scan_credentials(pb::ScanCredentialsRequest {
                    registry: registry.unwrap_or_default(),
                })
                .await
                .map_err(|s| Failure::from_status(&s))?
                .into_inner();
            match output {
                Output::Json => print_json(&json!({
                    "entries": r.entries.iter().map(|e| json!({
                        "file": e.file, "registry": e.registry, "kind": e.kind, "key": e.key,
                    })).collect::<Vec<_>>(),
                    "problems": r.problems,
                })),
                Output::Table if r.entries.is_empty() => outln!("no registry credentials found"),
                Output::Table => {
                    let rows: Vec<Vec<String>> = r
                        .entries
                        .iter()
                        .map(|e| {
                            vec![
                                e.registry.clone(),
                                e.kind.clone(),
                                e.file.clone(),
                                e.key.clone(),
                            ]
                        })
                        .collect();
                    out!("{}", table(&["REGISTRY", "KIND", "FILE", "WHERE"], &rows));
                }
            }
            for p in &r.problems {
                eprintln!("ctrdiag: {p}");
            }
            Ok(if r.problems.is_empty() {
                Exit::Ok
            } else {
                Exit::Problem
            })
        }
        CredsCommand::Clean {
            registry,
            all,
            verify_image,
            dry_run,
        } => {
            let stream = client
                .clean_credentials(pb::CleanCredentialsRequest {
                    registry: registry.unwrap_or_default(),
                    all,
                    verify_image: verify_image.unwrap_or_default(),
                    dry_run,
                })
                .await
                .map_err(|s| Failure::from_status(&s))?
                .into_inner();
            super::fix::follow(stream, output).await
        }
    }
}
