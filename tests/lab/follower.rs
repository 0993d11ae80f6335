//! A log source followed as the daemon does it: `logsource::follow` in its own task with a
//! bounded channel, read by the test with timeouts, stopped by cancelling.

use std::time::Duration;

use ctrdiag::logsource::{self, LogSourceError, Position, Source, SourceEvent};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long any one event may take to arrive.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the consumer saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    Following(Option<Position>),
    Line(String),
}

pub fn line(text: &str) -> Seen {
    Seen::Line(text.to_string())
}

pub struct Follower {
    rx: mpsc::Receiver<SourceEvent>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), LogSourceError>>,
    /// The position after the last line seen: what a daemon would save.
    pub last: Option<Position>,
    /// Every line seen, with its position and time.
    pub lines: Vec<logsource::LogLine>,
}

impl Follower {
    pub fn start(source: Source, from: Option<Position>) -> Follower {
        let (tx, rx) = mpsc::channel(8);
        let cancel = CancellationToken::new();
        let token = cancel.clone();
        let task = tokio::spawn(async move { logsource::follow(&source, from, tx, token).await });
        Follower {
            rx,
            cancel,
            task,
            last: None,
            lines: Vec::new(),
        }
    }

    /// The next event; fails the test if the source ends or is silent too long.
    pub async fn next(&mut self) -> SourceEvent {
        match tokio::time::timeout(EVENT_TIMEOUT, self.rx.recv()).await {
            Ok(Some(event)) => event,
            Ok(None) => panic!("the source ended: {:?}", (&mut self.task).await),
            Err(_) => panic!("no event from the source within {EVENT_TIMEOUT:?}"),
        }
    }

    /// The first event, which must say where the source started.
    pub async fn following(&mut self) -> Option<Position> {
        match self.next().await {
            SourceEvent::Following { from } => from,
            other => panic!("expected Following first, got {other:?}"),
        }
    }

    /// Everything seen up to and including the line `last`.
    pub async fn until(&mut self, last: &str) -> Vec<Seen> {
        let mut seen = Vec::new();
        loop {
            match self.next().await {
                SourceEvent::Following { from } => seen.push(Seen::Following(from)),
                SourceEvent::Lines(lines) => {
                    assert!(!lines.is_empty(), "a Lines event is never empty");
                    assert!(lines.len() <= logsource::MAX_BATCH, "batches are bounded");
                    for l in lines {
                        seen.push(Seen::Line(l.text.clone()));
                        self.last = Some(l.position.clone());
                        let done = l.text == last;
                        self.lines.push(l);
                        if done {
                            return seen;
                        }
                    }
                }
            }
        }
    }

    /// Cancels the source and returns how it ended.
    pub async fn stop(self) -> Result<(), LogSourceError> {
        self.cancel.cancel();
        tokio::time::timeout(EVENT_TIMEOUT, self.task)
            .await
            .expect("the source stops when cancelled")
            .expect("the source task does not panic")
    }

    /// Waits for the source to end by itself (a failure) and returns how it ended.
    pub async fn ended(self) -> Result<(), LogSourceError> {
        tokio::time::timeout(EVENT_TIMEOUT, self.task)
            .await
            .expect("the source ends by itself")
            .expect("the source task does not panic")
    }
}
