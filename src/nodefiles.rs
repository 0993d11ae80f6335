//! Reads containerd's configuration from the node into [`NodeFacts`]: config.toml and
//! every directory under its `config_path` roots. An adapter: it reads, never writes,
//! never follows symlinks, and bounds what it reads.

use std::path::{Path, PathBuf};

use crate::ctrconfig::{ConfigError, ConfigToml, ContainerdVersion, HostsDirFacts, NodeFacts};
use crate::plan::fsops::{self, FsError};

/// Larger "config files" are not containerd's: refuse rather than buffer them.
const MAX_FILE_BYTES: usize = 4 << 20;
/// More directories than this under a certs.d root means something else lives there.
const MAX_HOSTS_DIRS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum NodeFilesError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("{} is {len} bytes: too large for a containerd configuration file", .path.display())]
    TooLarge { path: PathBuf, len: usize },
    #[error("{} is not UTF-8 text", .path.display())]
    NotText { path: PathBuf },
    #[error("{}: {source}; fix the file (containerd would refuse it too)", .path.display())]
    Config { path: PathBuf, source: ConfigError },
    #[error("cannot list {}: {source}", .path.display())]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What was read, and whether config.toml exists at all (containerd then runs on its
/// defaults, and a plan creates the file).
#[derive(Debug, Clone)]
pub struct NodeFiles {
    pub facts: NodeFacts,
    pub config_exists: bool,
}

/// Reads config.toml at `config_file` and the hosts directories it points at. For a
/// missing file, the facts are those of an empty config of the version `containerd`
/// reads (2 for 1.x, 3 for 2.x).
pub fn read(
    config_file: &Path,
    containerd: &ContainerdVersion,
) -> Result<NodeFiles, NodeFilesError> {
    let (text, config_exists) = match read_text(config_file)? {
        Some(t) => (t, true),
        None => (empty_config(containerd), false),
    };
    let config = ConfigToml::parse(&text).map_err(|source| NodeFilesError::Config {
        path: config_file.to_path_buf(),
        source,
    })?;
    let mut hosts_dirs = Vec::new();
    if let Some(cp) = &config.facts().config_path {
        for root in cp.roots() {
            hosts_dirs.extend(read_hosts_root(Path::new(root))?);
        }
    }
    Ok(NodeFiles {
        facts: NodeFacts {
            config_file: config_file.display().to_string(),
            config,
            hosts_dirs,
        },
        config_exists,
    })
}

/// The smallest config containerd of this version reads as its own format.
pub fn empty_config(containerd: &ContainerdVersion) -> String {
    if containerd.major >= 2 {
        "version = 3\n".into()
    } else {
        "version = 2\n".into()
    }
}

fn read_text(path: &Path) -> Result<Option<String>, NodeFilesError> {
    let Some((bytes, _)) = fsops::read_regular(path)? else {
        return Ok(None);
    };
    if bytes.len() > MAX_FILE_BYTES {
        return Err(NodeFilesError::TooLarge {
            path: path.to_path_buf(),
            len: bytes.len(),
        });
    }
    String::from_utf8(bytes)
        .map(Some)
        .map_err(|_| NodeFilesError::NotText {
            path: path.to_path_buf(),
        })
}

/// Every real directory (not a symlink) under `root`, with its hosts.toml and the
/// names of its other regular files. A missing root has none.
fn read_hosts_root(root: &Path) -> Result<Vec<HostsDirFacts>, NodeFilesError> {
    let list = |path: &Path| -> Result<Option<std::fs::ReadDir>, NodeFilesError> {
        match std::fs::read_dir(path) {
            Ok(r) => Ok(Some(r)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(NodeFilesError::List {
                path: path.to_path_buf(),
                source,
            }),
        }
    };
    let Some(entries) = list(root)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for entry in entries.flatten().take(MAX_HOSTS_DIRS) {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !kind.is_dir() {
            continue;
        }
        let dir = root.join(&name);
        let mut hosts_toml = None;
        let mut other_files = Vec::new();
        for file in list(&dir)?.into_iter().flatten().flatten() {
            let Ok(kind) = file.file_type() else { continue };
            let Some(fname) = file.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !kind.is_file() {
                continue;
            }
            if fname == "hosts.toml" {
                hosts_toml = read_text(&dir.join(&fname))?;
            } else {
                other_files.push(fname);
            }
        }
        other_files.sort();
        out.push(HostsDirFacts {
            root: root.display().to_string(),
            name,
            hosts_toml,
            other_files,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
