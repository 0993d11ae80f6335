//! Keeps containerd's log followed for the daemon's whole life: the source is
//! (re)started from the hub's saved position, its lines go to the hub, and a source
//! that fails is restarted after a pause that grows from half a second to 30 s (a
//! missing journalctl or an unreadable file is reported in `status`, not fatal).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::hub::EventHub;
use crate::logsource::{self, Source, SourceEvent};

const FIRST_PAUSE: Duration = Duration::from_millis(500);
const LONGEST_PAUSE: Duration = Duration::from_secs(30);
/// Batches in flight between the source and the hub.
const CHANNEL: usize = 16;

/// Follows `source` until `cancel` fires.
pub async fn run(source: Source, hub: Arc<EventHub>, cancel: CancellationToken) {
    let name = source.to_string();
    let mut pause = FIRST_PAUSE;
    loop {
        let (tx, mut rx) = mpsc::channel(CHANNEL);
        let from = hub.position();
        let follow = logsource::follow(&source, from, tx, cancel.clone());
        let consume = async {
            let mut got_lines = false;
            while let Some(event) = rx.recv().await {
                match event {
                    SourceEvent::Following { from } => hub.following(&name, from),
                    SourceEvent::Lines(lines) => {
                        got_lines = true;
                        hub.lines(lines);
                    }
                }
            }
            got_lines
        };
        let (result, got_lines) = tokio::join!(follow, consume);
        match result {
            Ok(()) => return,
            Err(e) => {
                let error = e.to_string();
                tracing::warn!(
                    source = name,
                    error,
                    pause_ms = pause.as_millis() as u64,
                    "containerd's log cannot be followed; retrying"
                );
                hub.follower_down(&name, &error);
                if got_lines {
                    pause = FIRST_PAUSE;
                }
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(LONGEST_PAUSE);
            }
        }
    }
}
