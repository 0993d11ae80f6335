//! One owner for the daemon's background work: applies (fix, rollback, restart) that
//! must finish even when their caller goes away, and the long-running tasks (the end
//! of times to live, the metrics server). On shutdown it stops taking new work, stops
//! the long-running tasks, and waits (bounded) for in-flight applies, so a SIGTERM
//! never cuts a change half-way and STOPPING is reported only after.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Work refused because the daemon is stopping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ctrdiagd is stopping and takes no new changes: run the command again once it is back")]
pub struct Stopping;

/// How a shutdown ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// Every task finished.
    All,
    /// The grace ran out with this many still running (their changes are finished or
    /// undone at the next start).
    TimedOut { still_running: usize },
}

#[derive(Clone, Default)]
pub struct Supervisor {
    tasks: TaskTracker,
    stopping: CancellationToken,
}

impl Supervisor {
    pub fn new() -> Supervisor {
        Supervisor::default()
    }

    /// Runs an apply to its end in a task of its own, or refuses while stopping.
    pub fn spawn_apply<F>(&self, apply: F) -> Result<tokio::task::JoinHandle<F::Output>, Stopping>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        if self.stopping.is_cancelled() {
            return Err(Stopping);
        }
        Ok(self.tasks.spawn(apply))
    }

    /// Runs a long-running task until the shutdown stops it.
    pub fn spawn_service<F>(&self, name: &'static str, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stopping.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = work => tracing::warn!(task = name, "background task ended by itself"),
                () = stop.cancelled() => tracing::debug!(task = name, "background task stopped"),
            }
        });
    }

    /// Whether the shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    /// Stops taking work and stops the long-running tasks, then waits up to `grace` for
    /// the applies still running.
    pub async fn shutdown(&self, grace: Duration) -> Drained {
        self.stopping.cancel();
        self.tasks.close();
        match tokio::time::timeout(grace, self.tasks.wait()).await {
            Ok(()) => Drained::All,
            Err(_) => Drained::TimedOut {
                still_running: self.tasks.len(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_waits_for_applies_and_refuses_new_ones() {
        let s = Supervisor::new();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
        let apply = s
            .spawn_apply(async move {
                let _ = released.await;
                let _ = done_tx.send("applied");
            })
            .unwrap();
        s.spawn_service("forever", std::future::pending());
        let shutdown = {
            let s = s.clone();
            tokio::spawn(async move { s.shutdown(Duration::from_secs(30)).await })
        };
        tokio::task::yield_now().await;
        assert!(s.is_stopping());
        assert!(
            s.spawn_apply(async {}).is_err(),
            "no new work while stopping"
        );
        assert!(!shutdown.is_finished(), "the apply is still running");
        release.send(()).unwrap();
        assert_eq!(shutdown.await.unwrap(), Drained::All);
        assert_eq!(done_rx.recv().await, Some("applied"));
        apply.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn the_grace_bounds_the_wait() {
        let s = Supervisor::new();
        s.spawn_apply(std::future::pending::<()>()).unwrap();
        assert_eq!(
            s.shutdown(Duration::from_secs(5)).await,
            Drained::TimedOut { still_running: 1 }
        );
    }
}
