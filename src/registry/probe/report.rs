//! How the probe adapter fills in the core's report: step durations measured here, on
//! the monotonic clock, so the core never reads a clock.

use std::time::Instant;

pub use ctrdiag_core::probe::*;

/// Milliseconds with microsecond resolution: loopback steps take well under 1 ms.
pub(super) fn millis_since(started: Instant) -> f64 {
    (started.elapsed().as_micros() as f64) / 1000.0
}

/// Records steps timed from an `Instant`.
pub(super) trait RecordSince {
    /// Appends a step that began at `started` and ends now.
    fn record_since(
        &mut self,
        step: StepKind,
        outcome: Outcome,
        started: Instant,
        detail: impl Into<String>,
    );
}

impl RecordSince for ProbeReport {
    fn record_since(
        &mut self,
        step: StepKind,
        outcome: Outcome,
        started: Instant,
        detail: impl Into<String>,
    ) {
        self.record(step, outcome, millis_since(started), detail);
    }
}
