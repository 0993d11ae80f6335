//! Runs the probes of `probe_images` every `probe_interval_secs`, each round shifted by
//! up to a tenth of the interval (so a fleet of nodes does not probe a registry in the
//! same second), one image at a time.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use crate::controller::LiveController;
use crate::metrics::Metrics;
use crate::registry::reference::ImageRef;

/// Probes forever (the supervisor stops it).
pub async fn run(
    controller: Arc<LiveController>,
    images: Vec<ImageRef>,
    interval: Duration,
    log_followed: bool,
    metrics: Arc<Metrics>,
) {
    loop {
        for image in &images {
            match controller.probe_image(image, log_followed).await {
                Ok(o) => metrics.probe(&o.host, o.ok),
                Err(e) => {
                    metrics.probe(&image.host().to_string(), false);
                    tracing::warn!(image = %image, error = %e, "probe could not run");
                }
            }
        }
        tokio::time::sleep(with_jitter(interval, random())).await;
    }
}

/// `interval` plus up to a tenth of it, as `r` (uniform over u64) says.
pub fn with_jitter(interval: Duration, r: u64) -> Duration {
    let tenth = interval.as_millis() as u64 / 10;
    interval + Duration::from_millis(if tenth == 0 { 0 } else { r % tenth })
}

/// A random number from the standard library's per-process random hash keys: enough
/// to spread probes, and no dependency for it.
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(crate::detection::hub::now_ms() as u64);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_a_tenth() {
        let i = Duration::from_secs(300);
        assert_eq!(with_jitter(i, 0), i);
        for r in [1, 29_999, 30_000, u64::MAX] {
            let d = with_jitter(i, r);
            assert!(d >= i && d < i + Duration::from_secs(30), "{d:?}");
        }
        assert_eq!(
            with_jitter(Duration::from_millis(5), 7),
            Duration::from_millis(5)
        );
    }
}
