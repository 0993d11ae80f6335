//! A real journal file without systemd: `systemd-journal-remote` reads journal export
//! format on its stdin and writes each entry as it arrives, so `journalctl --file` (and
//! `-f`) reads a growing journal exactly as on a node (LAB.md, second round).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::process::ChildGuard;

pub const JOURNAL_REMOTE: &str =
    "/opt/ctrdiag-lab/systemd-journal-remote/lib/systemd/systemd-journal-remote";
/// The unit ctrdiag follows by default.
pub const CONTAINERD_UNIT: &str = "containerd.service";
const BOOT_ID: &str = "0123456789abcdef0123456789abcdef";
const MACHINE_ID: &str = "fedcba9876543210fedcba9876543210";

/// Fields drop in order: the writer's stdin closes, then the writer is killed, then the
/// directory goes.
pub struct LabJournal {
    input: Option<ChildStdin>,
    writer: ChildGuard,
    file: PathBuf,
    written: usize,
    last_micros: u64,
    _dir: tempfile::TempDir,
}

impl LabJournal {
    /// An empty journal file `x.journal` in a fresh directory, and its writer.
    pub fn start(prefix: &str) -> LabJournal {
        let dir = super::scratch_dir(prefix);
        let file = dir.path().join("x.journal");
        let log = dir.path().join("journal-remote.log");
        let out = std::fs::File::create(&log).expect("create journal-remote log");
        let err = out.try_clone().expect("clone log handle");
        let mut child = Command::new(JOURNAL_REMOTE)
            .arg(format!("--output={}", file.display()))
            .arg("-")
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {JOURNAL_REMOTE} (scripts/install-deps.sh installs it): {e}")
            });
        let input = child.stdin.take();
        LabJournal {
            input,
            writer: ChildGuard::adopt("systemd-journal-remote", child, &log),
            file,
            written: 0,
            last_micros: 0,
            _dir: dir,
        }
    }

    /// The journal file (for `journalctl --file`).
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The directory that holds it (for `journalctl --directory`).
    pub fn dir(&self) -> &Path {
        self.file
            .parent()
            .expect("the journal file is in its directory")
    }

    /// Appends an entry of `unit` whose MESSAGE is `message`, in the export format's
    /// binary form when it is not printable UTF-8 text on one line.
    pub fn write(&mut self, unit: &str, message: &[u8]) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        self.last_micros = (now.as_micros() as u64).max(self.last_micros + 1);
        let mut entry = format!(
            "__REALTIME_TIMESTAMP={}\n_SYSTEMD_UNIT={unit}\nSYSLOG_IDENTIFIER=containerd\n_BOOT_ID={BOOT_ID}\n_MACHINE_ID={MACHINE_ID}\n_HOSTNAME=lab\n",
            self.last_micros
        )
        .into_bytes();
        match std::str::from_utf8(message) {
            Ok(text) if !text.contains('\n') => {
                entry.extend_from_slice(b"MESSAGE=");
                entry.extend_from_slice(message);
            }
            _ => {
                entry.extend_from_slice(b"MESSAGE\n");
                entry.extend_from_slice(&(message.len() as u64).to_le_bytes());
                entry.extend_from_slice(message);
            }
        }
        entry.extend_from_slice(b"\n\n");
        let input = self.input.as_mut().expect("the writer's stdin is open");
        input
            .write_all(&entry)
            .and_then(|()| input.flush())
            .unwrap_or_else(|e| {
                panic!(
                    "systemd-journal-remote stopped reading: {e}\n{}",
                    self.writer.log()
                )
            });
        self.written += 1;
    }

    /// Appends a containerd entry with a text message.
    pub fn containerd(&mut self, message: &str) {
        self.write(CONTAINERD_UNIT, message.as_bytes());
    }

    /// Waits until journalctl reads every entry written so far from the file.
    pub async fn wait_written(&mut self) {
        let expected = self.written;
        let file = self.file.clone();
        self.writer.assert_running();
        super::wait_for(
            &format!("{expected} entries in {}", file.display()),
            Duration::from_secs(10),
            || {
                let file = file.clone();
                async move {
                    let out = tokio::process::Command::new("journalctl")
                        .arg("--file")
                        .arg(&file)
                        .args(["-o", "json", "--no-pager", "-q"])
                        .output()
                        .await
                        .ok()?;
                    let seen = out
                        .stdout
                        .split(|b| *b == b'\n')
                        .filter(|l| !l.is_empty())
                        .count();
                    (seen >= expected).then_some(())
                }
            },
        )
        .await
    }
}
