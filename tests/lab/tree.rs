//! What a directory holds, to prove a refused call wrote nothing: every entry under
//! a root with its kind and content (files), target (symlinks) or mode.

use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// Every entry under `root` (not following symlinks) → what it is; empty if absent.
pub fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let kind = meta.file_type();
        let mode = meta.mode() & 0o7777;
        let what = if kind.is_symlink() {
            format!("link -> {}", std::fs::read_link(&path).unwrap().display())
        } else if kind.is_dir() {
            walk(root, &path, out);
            format!("dir {mode:o}")
        } else if kind.is_fifo() {
            format!("fifo {mode:o}")
        } else if kind.is_file() && meta.len() <= 1 << 20 {
            let bytes = std::fs::read(&path).unwrap_or_default();
            format!("file {mode:o} {}", String::from_utf8_lossy(&bytes))
        } else {
            format!(
                "other {mode:o} {} bytes, mtime {}",
                meta.len(),
                meta.mtime()
            )
        };
        out.insert(name, what);
    }
}

/// What a daemon for `ctr` manages: certs.d, config.toml and the change records and
/// backups under its state directory (`detection.json` beside them is the log
/// follower's own position, saved as it reads, so it is left out).
pub fn managed_state(
    ctr: &super::containerd::LabContainerd,
    daemon: &super::daemon::Daemon,
) -> String {
    format!(
        "{:?}\n{:?}\n{:?}",
        snapshot(&ctr.certs_d),
        std::fs::read_to_string(&ctr.config_file).unwrap_or_default(),
        snapshot(&daemon.dir().join("state/changes")),
    )
}
