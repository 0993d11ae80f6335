//! `ctrdiag rmi`

use crate::cli::stdout::outln;

use serde_json::json;

use super::{Client, print_json};
use crate::api::v1 as pb;
use crate::cli::{Exit, Failure, Output};

/// Removes each image in turn; one failure does not stop the others, but the worst
/// failure decides the exit code.
pub async fn run(
    mut client: Client,
    images: Vec<String>,
    namespace: Option<String>,
    output: Output,
) -> Result<Exit, Failure> {
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    let mut exit = Exit::Ok;
    for image in images {
        let req = pb::RemoveImageRequest {
            image: image.clone(),
            namespace: namespace.clone().unwrap_or_default(),
        };
        match client.remove_image(req).await {
            Ok(_) => removed.push(image),
            Err(status) => {
                let f = Failure::from_status(&status);
                if exit == Exit::Ok || f.exit as u8 > exit as u8 {
                    exit = f.exit;
                }
                failed.push((image, f.message));
            }
        }
    }
    match output {
        Output::Json => print_json(&json!({
            "removed": removed,
            "failed": failed.iter().map(|(i, e)| json!({"image": i, "error": e})).collect::<Vec<_>>(),
        })),
        Output::Table => {
            for image in &removed {
                outln!("Deleted: {image}");
            }
            for (_, error) in &failed {
                eprintln!("ctrdiag: {error}");
            }
        }
    }
    Ok(exit)
}
