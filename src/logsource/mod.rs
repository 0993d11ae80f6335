//! containerd's log as a stream of lines for the daemon's detectors: from the journal
//! (`journalctl -u <unit> -f -o json`, the default on real nodes) or from a plain file
//! (`containerd_log = "/path"`, the test lab's containerd writes one).
//!
//! Every line carries the position just after it, so a restarted daemon resumes where it
//! stopped and neither loses nor repeats lines. The sources only read and report; what a
//! line means is the consumer's business. Backpressure is the caller's bounded channel:
//! a source waits on a full channel and never drops a line.

mod error;
mod file;
mod journal;
mod journal_json;
mod lines;
mod tail;
mod wakeup;

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use tokio::sync::mpsc::Sender;
use tokio_util::sync::CancellationToken;

pub use error::LogSourceError;
pub use journal::{DEFAULT_JOURNALCTL, JournalSource};

/// The most lines one [`SourceEvent::Lines`] carries, so a consumer's work per event stays
/// bounded however far behind it is.
pub const MAX_BATCH: usize = 256;

/// Where a line came from, as a resume point: the position AFTER this line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Position {
    /// `__CURSOR` of the line's journal entry.
    Journal { cursor: String },
    /// The file's inode and the byte offset just past the line's `\n`.
    File { inode: u64, offset: u64 },
}

/// One line of containerd's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The message (journal: `MESSAGE`; file: the line without `\n`), lossy UTF-8.
    pub text: String,
    pub position: Position,
    /// journal: `__REALTIME_TIMESTAMP`; file: `None`.
    pub time: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    /// The source is reading; `from` is where it (re)started, as a resume point: the one
    /// it was given if that was usable, otherwise the real start (the file's end or top,
    /// the journal's last entry), so the consumer can save it before any line arrives
    /// and a restart in between loses nothing. `None` only when there is no position yet
    /// (a missing file, an empty journal). Sent once at start and again whenever the file
    /// source switches file (rotation, truncation, a missing file appearing).
    Following { from: Option<Position> },
    /// In order, never empty, at most [`MAX_BATCH`] lines.
    Lines(Vec<LogLine>),
}

/// Which log to follow.
#[derive(Debug, Clone)]
pub enum Source {
    Journal(JournalSource),
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Journal(j) => write!(f, "journal (unit {})", j.unit()),
            Source::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// Follows `source` from `from` (`None`: from its current end) until `cancel` fires
/// (`Ok(())`) or the source fails (`Err`). The caller restarts with backoff, passing the
/// last position it has processed. A position of the other kind (the configuration
/// switched between journal and file) counts as none.
pub async fn follow(
    source: &Source,
    from: Option<Position>,
    tx: Sender<SourceEvent>,
    cancel: CancellationToken,
) -> Result<(), LogSourceError> {
    let out = Outlet { tx, cancel };
    match source {
        Source::Journal(j) => journal::follow(j, from, &out).await,
        Source::File(path) => file::follow(path, from, &out).await,
    }
}

/// The consumer's end, with the cancellation every wait must honour.
struct Outlet {
    tx: Sender<SourceEvent>,
    cancel: CancellationToken,
}

/// The source must stop without an error of its own: `cancel` fired, or the receiver is
/// gone and nobody is listening any more.
struct Stopped;

impl Outlet {
    /// Sends one event, waiting while the channel is full, unless cancelled first.
    async fn send(&self, event: SourceEvent) -> Result<(), Stopped> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(Stopped),
            sent = self.tx.send(event) => sent.map_err(|_| Stopped),
        }
    }

    /// Sends `lines` in batches of at most [`MAX_BATCH`], in order.
    async fn send_lines(&self, mut lines: Vec<LogLine>) -> Result<(), Stopped> {
        while !lines.is_empty() {
            let rest = lines.split_off(lines.len().min(MAX_BATCH));
            self.send(SourceEvent::Lines(lines)).await?;
            lines = rest;
        }
        Ok(())
    }
}
