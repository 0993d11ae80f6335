//! Sizes and figures of the reliability suite (`tests/reliability_*.rs`): the same
//! tests run short in CI and long for RELIABILITY.md (`scripts/reliability.sh` sets
//! `CTRDIAG_RELIABILITY=long`); each prints its figures as one line
//! `RELIABILITY {json}` that the script collects.

use std::time::Duration;

/// Whether the long (report) mode was asked for: `CTRDIAG_RELIABILITY=long`.
pub fn long_mode() -> bool {
    std::env::var("CTRDIAG_RELIABILITY").is_ok_and(|m| m == "long")
}

/// A size of the run: the environment variable `var` if set, else `short` or `long`
/// by the mode. A value that is not a positive number fails the test.
pub fn size(var: &str, short: usize, long: usize) -> usize {
    match std::env::var(var) {
        Ok(v) => match v.parse() {
            Ok(n) if n > 0 => n,
            _ => panic!("{var}={v:?}: expected a positive number"),
        },
        Err(_) if long_mode() => long,
        Err(_) => short,
    }
}

/// The containerd a suite runs against: `RELIABILITY_CONTAINERD` (`1.6`, `1.7`, `2.1`),
/// 2.1 when unset.
pub fn containerd_version() -> super::containerd::Version {
    use super::containerd::Version;
    match std::env::var("RELIABILITY_CONTAINERD").as_deref() {
        Err(_) | Ok("2.1") => Version::V2_1,
        Ok("1.7") => Version::V1_7,
        Ok("1.6") => Version::V1_6,
        Ok(other) => panic!("RELIABILITY_CONTAINERD={other:?}: expected 1.6, 1.7 or 2.1"),
    }
}

/// The mode's name, as the figures record it.
pub fn mode() -> &'static str {
    if long_mode() { "long" } else { "short" }
}

/// Prints one suite's figures as the line the report script collects.
pub fn report(suite: &str, mut figures: serde_json::Value) {
    figures["suite"] = suite.into();
    figures["mode"] = mode().into();
    println!("RELIABILITY {figures}");
}

/// Durations with their percentiles, in milliseconds for the report.
#[derive(Debug, Default, Clone)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `p`-th percentile (nearest rank), `p` in 0..=100; zero when empty.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.0.clone();
        sorted.sort();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    pub fn max(&self) -> Duration {
        self.0.iter().max().copied().unwrap_or_default()
    }

    /// How many took longer than `limit`.
    pub fn count_over(&self, limit: Duration) -> usize {
        self.0.iter().filter(|d| **d > limit).count()
    }

    /// `{"n", "p50_ms", "p99_ms", "max_ms"}`.
    pub fn figures(&self) -> serde_json::Value {
        let ms = |d: Duration| (d.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
        serde_json::json!({
            "n": self.len(),
            "p50_ms": ms(self.percentile(50.0)),
            "p99_ms": ms(self.percentile(99.0)),
            "max_ms": ms(self.max()),
        })
    }
}
