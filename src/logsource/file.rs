//! The plain-file source: looks at the file when [`Wakeup`] says it may have changed and
//! hands every step of the blocking [`Tail`] to the blocking pool, so a slow disk never
//! stalls the runtime.

use std::path::Path;

use super::tail::Tail;
use super::wakeup::Wakeup;
use super::{LogSourceError, Outlet, Position, SourceEvent};

pub(super) async fn follow(
    path: &Path,
    from: Option<Position>,
    out: &Outlet,
) -> Result<(), LogSourceError> {
    let mut wakeup = Wakeup::new(path);
    let opened = path.to_path_buf();
    let Some(started) = blocking(move || Tail::start(opened, from)).await else {
        return Ok(());
    };
    let (mut tail, from) = started?;
    wakeup.watch_file(path);
    if out.send(SourceEvent::Following { from }).await.is_err() {
        return Ok(());
    }
    loop {
        let Some((back, step)) = blocking(move || {
            let step = tail.step();
            (tail, step)
        })
        .await
        else {
            return Ok(());
        };
        tail = back;
        let step = step?;
        if step.switched() {
            wakeup.watch_file(path);
        }
        for event in step.events {
            let sent = match event {
                SourceEvent::Lines(lines) => out.send_lines(lines).await,
                following => out.send(following).await,
            };
            if sent.is_err() {
                return Ok(());
            }
        }
        if out.cancel.is_cancelled() {
            return Ok(());
        }
        if !step.more {
            tokio::select! {
                _ = out.cancel.cancelled() => return Ok(()),
                _ = wakeup.wait() => {}
            }
        }
    }
}

/// Runs `work` on the blocking pool; `None` when the runtime is shutting down.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Some(value),
        Err(e) => match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => None,
        },
    }
}
