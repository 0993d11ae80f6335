//! `containerd --config FILE config dump`: the configuration the containerd binary
//! computes from a file (defaults and `imports` merged) without starting anything. The
//! binary must be the one the node runs, so its answer is checked against the running
//! version by the caller.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// A dump is a few hundred lines; more is not containerd's config.
const MAX_DUMP_BYTES: u64 = 4 << 20;
/// containerd answers in tens of milliseconds; a binary that hangs is given up on.
const DUMP_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("cannot run {}: {source}; check the `containerd_bin` setting", .bin.display())]
    Spawn {
        bin: PathBuf,
        source: std::io::Error,
    },
    #[error("`{} config dump` did not finish within {}s", .bin.display(), DUMP_TIMEOUT.as_secs())]
    Timeout { bin: PathBuf },
    #[error("`{} config dump` failed: {stderr}", .bin.display())]
    Failed { bin: PathBuf, stderr: String },
    #[error("`{} config dump` printed more than {MAX_DUMP_BYTES} bytes or no text", .bin.display())]
    Output { bin: PathBuf },
}

/// The effective configuration of `config` as `bin` computes it.
pub async fn config_dump(bin: &Path, config: &Path) -> Result<String, DumpError> {
    let mut child = tokio::process::Command::new(bin)
        .arg("--config")
        .arg(config)
        .args(["config", "dump"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| DumpError::Spawn {
            bin: bin.to_path_buf(),
            source,
        })?;
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let run = async {
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let read_out = async {
            match out.as_mut() {
                Some(o) => o.take(MAX_DUMP_BYTES + 1).read_to_end(&mut stdout).await,
                None => Ok(0),
            }
        };
        let read_err = async {
            match err.as_mut() {
                Some(e) => e.take(64 << 10).read_to_end(&mut stderr).await,
                None => Ok(0),
            }
        };
        let (o, e, status) = tokio::join!(read_out, read_err, child.wait());
        (o.and(e).and(status), stdout, stderr)
    };
    let Ok((status, stdout, stderr)) = tokio::time::timeout(DUMP_TIMEOUT, run).await else {
        return Err(DumpError::Timeout {
            bin: bin.to_path_buf(),
        });
    };
    let output_error = || DumpError::Output {
        bin: bin.to_path_buf(),
    };
    match status {
        Ok(s) if s.success() => {
            if stdout.len() as u64 > MAX_DUMP_BYTES {
                return Err(output_error());
            }
            String::from_utf8(stdout).map_err(|_| output_error())
        }
        Ok(_) => Err(DumpError::Failed {
            bin: bin.to_path_buf(),
            stderr: String::from_utf8_lossy(&stderr)
                .trim()
                .chars()
                .take(2000)
                .collect(),
        }),
        Err(source) => Err(DumpError::Spawn {
            bin: bin.to_path_buf(),
            source,
        }),
    }
}
