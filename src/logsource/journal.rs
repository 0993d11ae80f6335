//! The journal source: `journalctl -u UNIT -f -o json` as a child process, killed when the
//! source stops. journalctl finds the position: a saved cursor is checked first (a
//! cursor it refuses, from a journal rotated or vacuumed away, falls back to the end);
//! "the end" is the cursor of the unit's last entry, so an entry written while journalctl
//! starts is still delivered and none from before is replayed.

use std::path::PathBuf;
use std::process::{Output, Stdio};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;

use super::journal_json::{Skip, entry_cursor, parse_entry};
use super::{LogSourceError, MAX_BATCH, Outlet, Position, SourceEvent, Stopped};

/// The journalctl run unless [`JournalSource::with_program`] says otherwise (found on `PATH`).
pub const DEFAULT_JOURNALCTL: &str = "journalctl";

/// How much of journalctl's stderr an error quotes (its last bytes: the reason).
const STDERR_KEPT: usize = 4096;

/// A unit's log in the journal: the system journal by default, or a directory or single
/// file of journal files (as `journalctl --directory` / `--file` read them).
#[derive(Debug, Clone)]
pub struct JournalSource {
    unit: String,
    location: Location,
    program: PathBuf,
}

#[derive(Debug, Clone)]
enum Location {
    System,
    Directory(PathBuf),
    File(PathBuf),
}

/// Where journalctl starts reading.
enum Start {
    /// After the entry with this cursor.
    AfterCursor(String),
    /// From the first entry: the unit had none when the source started.
    Everything,
}

impl JournalSource {
    /// The unit's log in the system journal, read with `journalctl` from `PATH`.
    pub fn new(unit: impl Into<String>) -> Self {
        JournalSource {
            unit: unit.into(),
            location: Location::System,
            program: PathBuf::from(DEFAULT_JOURNALCTL),
        }
    }

    /// Reads the journal files in `dir` instead of the system journal.
    pub fn with_directory(mut self, dir: impl Into<PathBuf>) -> Self {
        self.location = Location::Directory(dir.into());
        self
    }

    /// Reads one journal file instead of the system journal.
    pub fn with_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.location = Location::File(path.into());
        self
    }

    /// Runs this journalctl instead of the one on `PATH`.
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    pub fn unit(&self) -> &str {
        &self.unit
    }

    /// journalctl on this unit and location with `args`, as JSON, quiet, never paged.
    /// `--all` keeps long messages (journalctl prints `null` for fields over 4 KiB without it).
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.program);
        match &self.location {
            Location::System => {}
            Location::Directory(dir) => {
                cmd.arg("--directory").arg(dir);
            }
            Location::File(path) => {
                cmd.arg("--file").arg(path);
            }
        }
        cmd.args(["-u", &self.unit, "-o", "json", "--all", "--no-pager", "-q"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// A journalctl run that ends by itself; a failure to start it is the only error.
    async fn run(&self, args: &[&str]) -> Result<Output, LogSourceError> {
        self.command(args)
            .output()
            .await
            .map_err(|e| self.spawn_error(e))
    }

    fn spawn_error(&self, source: std::io::Error) -> LogSourceError {
        if source.kind() == std::io::ErrorKind::NotFound {
            LogSourceError::JournalctlMissing {
                program: self.program.clone(),
            }
        } else {
            LogSourceError::JournalctlSpawn {
                program: self.program.clone(),
                source,
            }
        }
    }

    fn failed(&self, task: &'static str, output: &Output) -> LogSourceError {
        LogSourceError::JournalctlFailed {
            task,
            unit: self.unit.clone(),
            status: output.status.to_string(),
            stderr: stderr_text(&output.stderr),
        }
    }

    /// Where to start for `from`, and the start to report in [`SourceEvent::Following`].
    async fn start(
        &self,
        from: Option<Position>,
    ) -> Result<(Start, Option<Position>), LogSourceError> {
        if let Some(Position::Journal { cursor }) = from {
            let check = self.run(&["--after-cursor", &cursor, "-n", "0"]).await?;
            if check.status.success() {
                let start = Start::AfterCursor(cursor.clone());
                return Ok((start, Some(Position::Journal { cursor })));
            }
            let stderr = stderr_text(&check.stderr);
            if !stderr.contains("cursor") {
                return Err(self.failed("check the saved cursor", &check));
            }
            tracing::warn!(
                unit = %self.unit, %cursor, %stderr,
                "journalctl refused the saved cursor (journal rotated or vacuumed?); following from the end"
            );
        }
        let last = self.run(&["-n", "1"]).await?;
        if !last.status.success() {
            return Err(self.failed("find the end of the journal", &last));
        }
        // The real start is reported, so the consumer can save it before any line comes:
        // a restart in between then resumes here instead of at a later end.
        Ok(
            match last.stdout.rsplit(|b| *b == b'\n').find_map(entry_cursor) {
                Some(cursor) => (
                    Start::AfterCursor(cursor.clone()),
                    Some(Position::Journal { cursor }),
                ),
                None => (Start::Everything, None),
            },
        )
    }
}

pub(super) async fn follow(
    source: &JournalSource,
    from: Option<Position>,
    out: &Outlet,
) -> Result<(), LogSourceError> {
    let (start, from) = source.start(from).await?;
    let mut cmd = match &start {
        Start::AfterCursor(cursor) => source.command(&["-f", "--after-cursor", cursor]),
        Start::Everything => source.command(&["-f", "-n", "all"]),
    };
    let mut child = cmd.spawn().map_err(|e| source.spawn_error(e))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = tokio::spawn(last_bytes(child.stderr.take().expect("stderr is piped")));
    if out.send(SourceEvent::Following { from }).await.is_err() {
        return Ok(());
    }
    let read = forward(stdout, out).await;
    if let Ok(Ended::Stopped) | Err(_) = read {
        // Stopping: journalctl is killed and reaped here, not left to the runtime.
        let _ = child.kill().await;
        return read.map(|_| ());
    }
    let status = child.wait().await;
    if out.cancel.is_cancelled() {
        return Ok(());
    }
    let stderr = stderr.await.unwrap_or_default();
    Err(LogSourceError::JournalctlExited {
        unit: source.unit.clone(),
        status: status.map_or_else(|e| e.to_string(), |s| s.to_string()),
        stderr: stderr_text(&stderr),
    })
}

/// How reading journalctl's output ended.
enum Ended {
    /// journalctl closed its output: it exited.
    Eof,
    /// Cancelled, or nobody listens any more.
    Stopped,
}

/// Forwards journalctl's entries as batches: whatever is already buffered, up to
/// [`MAX_BATCH`] lines, goes in one event.
async fn forward(stdout: impl AsyncRead + Unpin, out: &Outlet) -> Result<Ended, LogSourceError> {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = Vec::new();
    let mut batch = Vec::new();
    loop {
        line.clear();
        let n = tokio::select! {
            _ = out.cancel.cancelled() => return Ok(Ended::Stopped),
            read = reader.read_until(b'\n', &mut line) => {
                read.map_err(|source| LogSourceError::JournalctlOutput { source })?
            }
        };
        if n > 0 {
            match parse_entry(&line) {
                Ok(entry) => batch.push(entry),
                Err(Skip::NoMessage) => {}
                Err(skip) => {
                    tracing::warn!(?skip, line = %String::from_utf8_lossy(&line), "journalctl printed a line that is not a usable entry")
                }
            }
        }
        let complete_line_buffered = reader.buffer().contains(&b'\n');
        if n == 0 || batch.len() >= MAX_BATCH || (!batch.is_empty() && !complete_line_buffered) {
            let send = out.send_lines(std::mem::take(&mut batch)).await;
            if let Err(Stopped) = send {
                return Ok(Ended::Stopped);
            }
        }
        if n == 0 {
            return Ok(Ended::Eof);
        }
    }
}

/// The last [`STDERR_KEPT`] bytes journalctl wrote to stderr.
async fn last_bytes(mut stderr: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0; 4096];
    while let Ok(n) = stderr.read(&mut buf).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        kept.drain(..kept.len().saturating_sub(STDERR_KEPT));
    }
    kept
}

fn stderr_text(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr).trim().to_string()
}
