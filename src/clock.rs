//! Wall-clock time for deadlines that must hold across suspends and clock steps (an
//! insecure setting's time to live): callers ask `now` again after every wait, and no
//! single wait is longer than they allow, so a sleeping laptop or an NTP step cannot
//! stretch a deadline. Injected, so tests move time instead of waiting for it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A future a clock returns; boxed so `Clock` stays object-safe.
pub type Wait = Pin<Box<dyn Future<Output = ()> + Send>>;

pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch, now.
    fn now_unix(&self) -> u64;

    /// Completes at `unix` or after `at_most` of real time, whichever comes first; the
    /// caller then asks [`Clock::now_unix`] again.
    fn wait_until(&self, unix: u64, at_most: Duration) -> Wait;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_unix(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn wait_until(&self, unix: u64, at_most: Duration) -> Wait {
        let left = Duration::from_secs(unix.saturating_sub(self.now_unix()));
        Box::pin(tokio::time::sleep(left.min(at_most)))
    }
}

/// A clock that moves only when told to: for unit tests of time-driven flows.
#[derive(Debug, Clone, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
    moved: Arc<tokio::sync::Notify>,
}

impl ManualClock {
    pub fn at(unix: u64) -> ManualClock {
        let c = ManualClock::default();
        c.now.store(unix, Ordering::SeqCst);
        c
    }

    /// Moves the clock forward by `secs` and wakes every waiter.
    pub fn advance(&self, secs: u64) {
        self.now.fetch_add(secs, Ordering::SeqCst);
        self.moved.notify_waiters();
    }
}

impl Clock for ManualClock {
    fn now_unix(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    fn wait_until(&self, unix: u64, at_most: Duration) -> Wait {
        let now = Arc::clone(&self.now);
        let moved = Arc::clone(&self.moved);
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + at_most;
            loop {
                // Registered before the check, so an `advance` in between is not missed.
                let notified = moved.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if now.load(Ordering::SeqCst) >= unix {
                    return;
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    return;
                }
            }
        })
    }
}

/// A clock read from a file holding Unix seconds, for end-to-end tests of the real
/// daemon (`--features failpoints`, `CTRDIAG_TEST_CLOCK=FILE`): the test writes a later
/// time into the file instead of waiting. A file that cannot be read means "now".
#[cfg(feature = "failpoints")]
#[derive(Debug, Clone)]
pub struct FileClock {
    path: std::path::PathBuf,
}

#[cfg(feature = "failpoints")]
impl FileClock {
    pub fn new(path: impl Into<std::path::PathBuf>) -> FileClock {
        FileClock { path: path.into() }
    }
}

#[cfg(feature = "failpoints")]
impl Clock for FileClock {
    fn now_unix(&self) -> u64 {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or_else(|| SystemClock.now_unix())
    }

    fn wait_until(&self, unix: u64, at_most: Duration) -> Wait {
        let clock = self.clone();
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + at_most;
            while clock.now_unix() < unix && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_wait_ends_when_the_clock_gets_there() {
        let clock = ManualClock::at(100);
        let waiting = tokio::spawn(clock.wait_until(160, Duration::from_secs(3600)));
        tokio::task::yield_now().await;
        clock.advance(30);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "only at 130 of 160");
        clock.advance(30);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken at 160")
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn no_wait_is_longer_than_allowed() {
        // A deadline a day away is checked again after at most a minute.
        let started = tokio::time::Instant::now();
        SystemClock
            .wait_until(SystemClock.now_unix() + 86_400, Duration::from_secs(60))
            .await;
        assert_eq!(started.elapsed(), Duration::from_secs(60));
        let manual = ManualClock::at(0);
        let started = tokio::time::Instant::now();
        manual.wait_until(86_400, Duration::from_secs(60)).await;
        assert_eq!(started.elapsed(), Duration::from_secs(60));
    }
}
