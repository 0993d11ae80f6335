//! Conversions between the library's domain types and the wire types, in one place.

use std::path::Path;

use super::v1 as pb;
use crate::containerd::{ImageSummary, PullOutcome};

impl From<ImageSummary> for pb::Image {
    fn from(i: ImageSummary) -> Self {
        pb::Image {
            name: i.name,
            digest: i.digest,
            media_type: i.media_type,
            size: i.size.unwrap_or(0),
            size_known: i.size.is_some(),
            created_unix: i.created_unix.unwrap_or(0),
        }
    }
}

impl pb::TestPullResponse {
    pub fn from_outcome(image: &str, outcome: &PullOutcome) -> Self {
        match outcome {
            PullOutcome::Pulled { image_id, duration } => pb::TestPullResponse {
                image: image.to_string(),
                ok: true,
                image_id: image_id.clone(),
                duration_ms: duration.as_millis() as u64,
                ..Default::default()
            },
            PullOutcome::Failed {
                message, duration, ..
            } => pb::TestPullResponse {
                image: image.to_string(),
                ok: false,
                message: message.clone(),
                duration_ms: duration.as_millis() as u64,
                ..Default::default()
            },
        }
    }
}

/// What containerd's config.toml at `path` says about registries.
pub fn config_status(path: &Path) -> pb::ContainerdConfig {
    pb::ContainerdConfig {
        file: path.display().to_string(),
        exists: path.exists(),
        ..Default::default()
    }
}
