//! ListEvents and Watch: what detection found, listed or streamed. Read-only (the
//! socket's group may call them); a watch holds a slot, so a caller cannot open
//! unbounded streams, and every stream ends when the daemon starts to stop.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::api::v1 as pb;
use crate::cause::CauseCode;
use crate::detection::EventHub;

use super::ServiceError;

pub type WatchStream = ReceiverStream<Result<pb::WatchMessage, Status>>;

/// Streams open at once; more are refused with RESOURCE_EXHAUSTED.
pub const MAX_WATCHERS: usize = 32;

/// A cause code named in a request; empty means any.
pub fn parse_cause(cause: &str) -> Result<Option<CauseCode>, ServiceError> {
    if cause.is_empty() {
        return Ok(None);
    }
    cause.parse().map(Some).map_err(
        |e: crate::cause::UnknownCause| ServiceError::InvalidArgument {
            field: "cause",
            message: format!("{e}; `ctrdiag events` lists the codes seen"),
        },
    )
}

pub fn list(
    hub: &EventHub,
    req: &pb::ListEventsRequest,
) -> Result<pb::ListEventsResponse, ServiceError> {
    let cause = parse_cause(&req.cause)?;
    let since = (req.since_secs > 0).then(|| Duration::from_secs(req.since_secs));
    let problems = hub.problems();
    Ok(pb::ListEventsResponse {
        events: hub.events(since, cause).iter().map(Into::into).collect(),
        detection: Some(crate::api::convert::detection(&hub.status(), &problems)),
        problems: problems.iter().map(Into::into).collect(),
    })
}

/// Subscribes now (so nothing detected after this call is missed), says so first, then
/// forwards events until the client goes away or the daemon stops.
pub fn watch(
    hub: &Arc<EventHub>,
    req: &pb::WatchRequest,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> Result<WatchStream, ServiceError> {
    let cause = parse_cause(&req.cause)?;
    let mut rx = hub.subscribe();
    let closing = hub.closing();
    let (tx, out) = mpsc::channel(16);
    tokio::spawn(async move {
        let _slot = slot;
        let msg = |m| Ok(pb::WatchMessage { message: Some(m) });
        // tonic sends no response headers before the first message: this one tells
        // the client the subscription is in place.
        if tx
            .send(msg(pb::watch_message::Message::Subscribed(
                pb::Subscribed {},
            )))
            .await
            .is_err()
        {
            return;
        }
        loop {
            let next = tokio::select! {
                () = closing.cancelled() => return,
                () = tx.closed() => return,
                next = rx.recv() => next,
            };
            let m = match next {
                Ok(e) if cause.is_none_or(|c| c == e.cause) => {
                    pb::watch_message::Message::Event((&e).into())
                }
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    pb::watch_message::Message::Missed(n)
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if tx.send(msg(m)).await.is_err() {
                return;
            }
        }
    });
    Ok(ReceiverStream::new(out))
}
