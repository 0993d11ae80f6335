//! `ctrdiag images`

use crate::cli::stdout::out;

use serde_json::json;

use super::{Client, print_json};
use crate::api::v1 as pb;
use crate::cli::render::{short_digest, size, table, timestamp};
use crate::cli::{Exit, Failure, Output};

pub async fn run(
    mut client: Client,
    namespace: Option<String>,
    output: Output,
) -> Result<Exit, Failure> {
    let resp = client
        .list_images(pb::ListImagesRequest {
            namespace: namespace.unwrap_or_default(),
        })
        .await
        .map_err(|s| Failure::from_status(&s))?
        .into_inner();
    match output {
        Output::Json => print_json(&json!({
            "namespace": resp.namespace,
            "images": resp.images.iter().map(|i| json!({
                "name": i.name,
                "digest": i.digest,
                "media_type": i.media_type,
                "size": i.size_known.then_some(i.size),
                "created": (i.created_unix > 0).then(|| timestamp(i.created_unix)),
            })).collect::<Vec<_>>(),
        })),
        Output::Table => {
            let rows: Vec<Vec<String>> = resp
                .images
                .iter()
                .map(|i| {
                    vec![
                        i.name.clone(),
                        short_digest(&i.digest),
                        if i.size_known {
                            size(i.size)
                        } else {
                            "-".into()
                        },
                        timestamp(i.created_unix),
                    ]
                })
                .collect();
            out!("{}", table(&["NAME", "DIGEST", "SIZE", "CREATED"], &rows));
        }
    }
    Ok(Exit::Ok)
}
