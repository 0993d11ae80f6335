//! The daemon's listening socket: taken from systemd (socket activation), or bound
//! by the daemon with its final permissions already in place.
//!
//! Binding happens under a temporary name that is then renamed over the final path,
//! so the socket never exists at its public path with the wrong owner or mode. A
//! leftover socket from a crashed daemon is removed only when nothing answers on it;
//! anything at that path that is not a socket is left alone.

use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, chown};
use tokio::net::UnixListener;

/// The first file descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("another ctrdiagd is already serving {}: stop it first", .path.display())]
    InUse { path: PathBuf },
    #[error(
        "{} exists and is not a socket: refusing to replace it; move it away or choose another `listen_socket`",
        .path.display()
    )]
    NotASocket { path: PathBuf },
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("systemd passed {count} sockets; ctrdiagd expects exactly one (check ctrdiagd.socket)")]
    UnexpectedFds { count: String },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SocketError {
    let path = path.to_path_buf();
    move |source| SocketError::Io {
        action,
        path,
        source,
    }
}

/// The socket systemd passed to this process, if it was socket-activated
/// (`LISTEN_PID` is ours and `LISTEN_FDS` is 1).
pub fn from_systemd() -> Result<Option<UnixListener>, SocketError> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        == Some(std::process::id());
    let count = std::env::var("LISTEN_FDS").unwrap_or_default();
    if !for_us || count.is_empty() {
        return Ok(None);
    }
    if count != "1" {
        return Err(SocketError::UnexpectedFds { count });
    }
    // SAFETY: systemd hands fd 3 to this process (LISTEN_PID matched) as a listening
    // socket, and nothing else in the process owns it.
    let std_listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(LISTEN_FDS_START) };
    std_listener
        .set_nonblocking(true)
        .map_err(io("use the socket passed by systemd", Path::new("fd 3")))?;
    UnixListener::from_std(std_listener)
        .map(Some)
        .map_err(io("use the socket passed by systemd", Path::new("fd 3")))
}

/// A socket the daemon bound itself.
pub struct BoundSocket {
    pub listener: UnixListener,
    pub file: SocketFile,
}

/// The socket's path, removed from the file system when this is dropped, so a clean
/// stop leaves nothing behind.
pub struct SocketFile {
    path: PathBuf,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `path` with mode 0660, owned by root and `group` (or 0600 when the group
/// does not exist: root only, and a warning, rather than a socket open to all).
pub fn bind(path: &Path, group: &str) -> Result<BoundSocket, SocketError> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    // 0755 whatever the umask: group members must traverse it to reach the socket.
    crate::plan::fsops::create_dirs(dir, 0o755).map_err(|e| SocketError::Io {
        action: "create directory",
        path: dir.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })?;
    remove_stale(path)?;

    let gid = match Group::from_name(group) {
        Ok(Some(g)) => Some(g.gid),
        _ => {
            tracing::warn!(
                group,
                "socket group does not exist: the socket is for root only (create the group, e.g. with systemd-sysusers, to let its members read)"
            );
            None
        }
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "ctrdiag.sock".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp).map_err(io("bind", &tmp))?;
    let prepared = (|| {
        let mode = if gid.is_some() { 0o660 } else { 0o600 };
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
            .map_err(io("set permissions on", &tmp))?;
        chown(
            &tmp,
            Some(Uid::from_raw(0)),
            Some(gid.unwrap_or(Gid::from_raw(0))),
        )
        .map_err(|e| SocketError::Io {
            action: "chown",
            path: tmp.clone(),
            source: e.into(),
        })?;
        std::fs::rename(&tmp, path).map_err(io("rename socket to", path))
    })();
    if let Err(e) = prepared {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(BoundSocket {
        listener,
        file: SocketFile {
            path: path.to_path_buf(),
        },
    })
}

/// Removes a socket left by a daemon that died, after proving nothing listens on it.
fn remove_stale(path: &Path) -> Result<(), SocketError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io("inspect", path)(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(SocketError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(SocketError::InUse {
            path: path.to_path_buf(),
        }),
        Err(_) => {
            tracing::info!(path = %path.display(), "removing stale socket");
            std::fs::remove_file(path).map_err(io("remove stale socket", path))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_0660_and_replaces_only_stale_sockets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let first = bind(&path, "root").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        assert!(matches!(
            bind(&path, "root"),
            Err(SocketError::InUse { .. })
        ));

        drop(first);
        assert!(!path.exists(), "a clean stop removes the socket");

        // A crashed daemon leaves its socket file behind with nobody listening.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let _second = bind(&path, "root").unwrap();
    }

    #[tokio::test]
    async fn never_replaces_what_is_not_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        std::fs::write(&path, "precious").unwrap();
        assert!(matches!(
            bind(&path, "root"),
            Err(SocketError::NotASocket { .. })
        ));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
        let link = dir.path().join("l.sock");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        assert!(matches!(
            bind(&link, "root"),
            Err(SocketError::NotASocket { .. })
        ));
    }

    #[tokio::test]
    async fn a_missing_group_means_root_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let _s = bind(&path, "no-such-group-here").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
