//! File operations the executor needs, done so that a crash at any instant leaves
//! either the old or the new file, never a mix, and nothing outside the managed
//! directories can be reached through a symlink.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::iofault;

#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{} is a symlink or not a regular file: ctrdiag does not follow links out of the directories it manages; replace it with a regular file", .path.display())]
    NotRegular { path: PathBuf },
    #[error("the directory of {} is reached through a symlink ({} resolves elsewhere): refusing to write there", .path.display(), .dir.display())]
    SymlinkedDir { path: PathBuf, dir: PathBuf },
    #[error("{} must be an absolute path", .path.display())]
    Relative { path: PathBuf },
    #[error("{} is {len} bytes, more than the {max} ctrdiag reads from a file of this kind: it is not what it should be; check what the file is", .path.display())]
    TooLarge { path: PathBuf, len: u64, max: u64 },
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FsError {
    let path = path.to_path_buf();
    move |source| FsError::Io {
        action,
        path,
        source,
    }
}

pub use ctrdiag_core::plan::FileMeta;

/// `mode`, owned by the running process (root in production).
pub fn new_file_meta(mode: u32) -> FileMeta {
    FileMeta {
        mode,
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
    }
}

/// For the daemon's own records and backups: readable by root only.
pub fn private_meta() -> FileMeta {
    new_file_meta(0o600)
}

/// The most ctrdiag reads from any one file it manages (config files, CA bundles,
/// credential files, backups of them): a 1 GiB "config.toml" is refused, not buffered.
pub const MAX_READ_BYTES: u64 = 64 << 20;

/// Reads a file that must be regular (never through a symlink); `None` if absent.
/// At most [`MAX_READ_BYTES`].
pub fn read_regular(path: &Path) -> Result<Option<(Vec<u8>, FileMeta)>, FsError> {
    read_regular_max(path, MAX_READ_BYTES)
}

/// [`read_regular`] with a smaller bound: a file longer than `max` bytes is refused
/// with [`FsError::TooLarge`] before any of it is read. The file is opened without
/// following a symlink and without blocking (a FIFO planted where a file should be
/// opens at once and is refused by its type, so no reader waits for a writer).
pub fn read_regular_max(path: &Path, max: u64) -> Result<Option<(Vec<u8>, FileMeta)>, FsError> {
    check_dir(path)?;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("inspect", path)(e)),
        Ok(m) if !m.file_type().is_file() => {
            return Err(FsError::NotRegular {
                path: path.to_path_buf(),
            });
        }
        Ok(_) => {}
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // Swapped for a symlink since the check above.
            Some(nix::libc::ELOOP) => FsError::NotRegular {
                path: path.to_path_buf(),
            },
            _ => io("open", path)(e),
        })?;
    // What was opened decides, not what the path showed a moment before.
    let meta = file.metadata().map_err(io("inspect", path))?;
    if !meta.file_type().is_file() {
        return Err(FsError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    let too_large = |len| FsError::TooLarge {
        path: path.to_path_buf(),
        len,
        max,
    };
    if meta.len() > max {
        return Err(too_large(meta.len()));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // A file that grows while it is read stops at the bound too.
    std::io::Read::read_to_end(&mut std::io::Read::take(&file, max + 1), &mut bytes)
        .map_err(io("read", path))?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(Some((
        bytes,
        FileMeta {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        },
    )))
}

/// Refuses paths whose existing directories resolve somewhere else (a symlink in the
/// chain), so a write cannot land outside the directory the operator configured.
pub fn check_dir(path: &Path) -> Result<(), FsError> {
    if !path.is_absolute() {
        return Err(FsError::Relative {
            path: path.to_path_buf(),
        });
    }
    // The deepest existing ancestor must canonicalize to itself.
    let mut dir = path.parent();
    while let Some(d) = dir {
        match std::fs::canonicalize(d) {
            Ok(real) if real == d => return Ok(()),
            Ok(_) => {
                return Err(FsError::SymlinkedDir {
                    path: path.to_path_buf(),
                    dir: d.to_path_buf(),
                });
            }
            Err(_) => dir = d.parent(),
        }
    }
    Ok(())
}

/// Creates the missing directories of `path` with mode 0755 (what containerd's
/// certs.d expects, set explicitly so a process umask cannot narrow it), fsyncing each
/// new directory's parent so the entry survives a crash.
/// The directories writing `path` would create, outermost first.
pub fn missing_parents(path: &Path) -> Vec<PathBuf> {
    let mut missing: Vec<PathBuf> = path
        .ancestors()
        .skip(1)
        .take_while(|d| !d.as_os_str().is_empty() && std::fs::symlink_metadata(d).is_err())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    missing
}

/// Removes `dir` if it is an empty directory (not a symlink); anything else, or a
/// directory that holds something, stays as it is.
pub fn remove_empty_dir(dir: &Path) -> Result<(), FsError> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        _ => return Ok(()),
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => sync_dir(dir.parent().unwrap_or(Path::new("/"))),
        Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io("remove directory", dir)(e)),
    }
}

fn create_parents(path: &Path) -> Result<(), FsError> {
    create_dirs(path.parent().unwrap_or(Path::new("/")), 0o755)
}

/// Creates `dir` and its missing ancestors with `mode` (chmod after mkdir, so the
/// umask does not decide), and fsyncs the parent of every directory it creates.
pub fn create_dirs(dir: &Path, mode: u32) -> Result<(), FsError> {
    let mut missing = Vec::new();
    let mut cur = Some(dir);
    while let Some(d) = cur {
        if d.exists() {
            break;
        }
        missing.push(d);
        cur = d.parent();
    }
    for d in missing.into_iter().rev() {
        match std::fs::DirBuilder::new().mode(mode).create(d) {
            Ok(()) => {}
            // Another writer made it meanwhile: its mode is its own business.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io("create directory", d)(e)),
        }
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode))
            .map_err(io("set permissions on", d))?;
        sync_dir(d.parent().unwrap_or(Path::new("/")))?;
    }
    Ok(())
}

/// Replaces `path` with `bytes`: a temporary file in the same directory, fsync,
/// rename over the target, fsync the directory. The new file gets `meta` (the old
/// file's owner and mode, or the mode chosen for a new file).
pub fn atomic_write(path: &Path, bytes: &[u8], meta: FileMeta) -> Result<(), FsError> {
    check_dir(path)?;
    if let Ok(m) = std::fs::symlink_metadata(path)
        && !m.file_type().is_file()
    {
        return Err(FsError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    create_parents(path)?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.ctrdiag-{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(meta.mode)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(io("create", &tmp))?;
        iofault::write_all("write", &mut file, bytes).map_err(io("write", &tmp))?;
        std::os::unix::fs::fchown(&file, Some(meta.uid), Some(meta.gid))
            .map_err(io("chown", &tmp))?;
        file.set_permissions(std::fs::Permissions::from_mode(meta.mode))
            .map_err(io("chmod", &tmp))?;
        iofault::inject("fsync")
            .and_then(|()| file.sync_all())
            .map_err(io("fsync", &tmp))?;
        iofault::inject("rename")
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(io("rename into place", path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Moves `from` to `to` (same or another file system), never leaving neither behind:
/// a cross-device move copies and syncs the copy before removing the original.
pub fn move_file(from: &Path, to: &Path) -> Result<(), FsError> {
    check_dir(from)?;
    // The backup area (or wherever `to` is) must not lead out through a symlink either.
    check_dir(to)?;
    let meta = std::fs::symlink_metadata(from).map_err(io("inspect", from))?;
    if !meta.file_type().is_file() {
        return Err(FsError::NotRegular {
            path: from.to_path_buf(),
        });
    }
    create_parents(to)?;
    match iofault::inject("rename").and_then(|()| std::fs::rename(from, to)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
            let (bytes, m) = read_regular(from)?.ok_or_else(|| FsError::NotRegular {
                path: from.to_path_buf(),
            })?;
            atomic_write(to, &bytes, m)?;
            std::fs::remove_file(from).map_err(io("remove the moved original", from))?;
        }
        Err(e) => return Err(io("move", from)(e)),
    }
    sync_dir(to.parent().unwrap_or(Path::new("/")))?;
    sync_dir(from.parent().unwrap_or(Path::new("/")))
}

/// Makes a rename or create durable: the directory entry itself must reach the disk.
pub fn sync_dir(dir: &Path) -> Result<(), FsError> {
    iofault::inject("dirsync")
        .and_then(|()| File::open(dir))
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(mode: u32) -> FileMeta {
        new_file_meta(mode)
    }

    #[test]
    fn atomic_write_replaces_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        let path = dir.join("sub/config.toml");
        atomic_write(&path, b"one", meta(0o600)).unwrap();
        atomic_write(&path, b"two", meta(0o600)).unwrap();
        let (bytes, m) = read_regular(&path).unwrap().unwrap();
        assert_eq!(bytes, b"two");
        assert_eq!(m.mode, 0o600);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.join("sub")).unwrap().count(), 1);
    }

    #[test]
    fn symlinks_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        let outside = dir.join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("secret"), "keep").unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), dir.join("link")).unwrap();
        assert!(matches!(
            read_regular(&dir.join("link")),
            Err(FsError::NotRegular { .. })
        ));
        assert!(matches!(
            atomic_write(&dir.join("link"), b"x", meta(0o644)),
            Err(FsError::NotRegular { .. })
        ));
        std::os::unix::fs::symlink(&outside, dir.join("dirlink")).unwrap();
        assert!(matches!(
            atomic_write(&dir.join("dirlink/secret"), b"x", meta(0o644)),
            Err(FsError::SymlinkedDir { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(outside.join("secret")).unwrap(),
            "keep"
        );
    }

    #[test]
    fn fifos_and_oversized_files_are_refused_without_blocking_or_buffering() {
        let dir = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        let fifo = dir.join("config.toml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // No writer ever opens it: a blocking open would hang this test.
        assert!(matches!(
            read_regular(&fifo),
            Err(FsError::NotRegular { .. })
        ));
        let big = dir.join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_READ_BYTES + 1)
            .unwrap();
        let err = read_regular(&big).unwrap_err();
        assert!(
            matches!(err, FsError::TooLarge { len, .. } if len == MAX_READ_BYTES + 1),
            "{err}"
        );
        assert!(err.to_string().contains("big"), "{err}");
        std::fs::write(&big, b"12345").unwrap();
        assert!(matches!(
            read_regular_max(&big, 4),
            Err(FsError::TooLarge { len: 5, max: 4, .. })
        ));
        assert_eq!(read_regular_max(&big, 5).unwrap().unwrap().0, b"12345");
    }

    #[test]
    fn a_move_into_a_symlinked_backup_area_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        let outside = dir.join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("backup")).unwrap();
        std::fs::write(dir.join("creds.json"), b"{}").unwrap();
        assert!(matches!(
            move_file(&dir.join("creds.json"), &dir.join("backup/0")),
            Err(FsError::SymlinkedDir { .. })
        ));
        assert!(dir.join("creds.json").exists());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn new_directories_are_0755_and_files_keep_their_mode() {
        // (Under a narrow umask too: tests/daemon_cli.rs runs the daemon with 077.)
        let dir = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        atomic_write(&dir.join("a/b/hosts.toml"), b"x", meta(0o644)).unwrap();
        for d in ["a", "a/b"] {
            let mode = std::fs::metadata(dir.join(d)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o755, "{d}");
        }
        let mode = std::fs::metadata(dir.join("a/b/hosts.toml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn move_file_moves_and_refuses_links() {
        let dir = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::write(dir.join("a"), "data").unwrap();
        move_file(&dir.join("a"), &dir.join("backup/a")).unwrap();
        assert!(!dir.join("a").exists());
        assert_eq!(
            std::fs::read_to_string(dir.join("backup/a")).unwrap(),
            "data"
        );
        std::os::unix::fs::symlink("/etc/hostname", dir.join("l")).unwrap();
        assert!(move_file(&dir.join("l"), &dir.join("backup/l")).is_err());
    }
}
