//! What stops a log source, worded so an operator knows what to check.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LogSourceError {
    #[error(
        "journalctl not found at {}: install systemd's journalctl, or set `containerd_log` to containerd's log file",
        .program.display()
    )]
    JournalctlMissing { program: PathBuf },

    #[error("cannot start journalctl ({}): {source}", .program.display())]
    JournalctlSpawn {
        program: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "journalctl failed to {task} ({status}): {stderr} (check the journal location and `journalctl -u {unit}`)"
    )]
    JournalctlFailed {
        task: &'static str,
        unit: String,
        status: String,
        stderr: String,
    },

    #[error(
        "journalctl stopped following unit {unit} ({status}): {stderr} (the daemon restarts it from the last line it read)"
    )]
    JournalctlExited {
        unit: String,
        status: String,
        stderr: String,
    },

    #[error("cannot read journalctl's output: {source}")]
    JournalctlOutput { source: std::io::Error },

    #[error(
        "containerd log {} is not a regular file: set `containerd_log` to the file containerd writes",
        .path.display()
    )]
    NotAFile { path: PathBuf },

    #[error("cannot read containerd log {}: {source} (check its permissions)", .path.display())]
    FileUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
}
