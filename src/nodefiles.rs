//! Reads containerd's configuration from the node into [`NodeFacts`]: config.toml and
//! every directory under its `config_path` roots, and whether the CA files they name
//! exist; and what tells who owns it (k3s's templates and registries.yaml,
//! /etc/os-release). An adapter: it reads, never writes, never follows symlinks to read
//! (only to see whether a named CA file is there, and for os-release, which is one by
//! design), and bounds what it reads.

use std::path::{Path, PathBuf};

pub use crate::ctrconfig::NodeFiles;
use crate::ctrconfig::owner::{CONFIG_TEMPLATES, OwnerFacts, decide};
use crate::ctrconfig::{
    ConfigError, ConfigToml, ContainerdVersion, Generator, HostsDirFacts, NodeFacts, Owner,
};
use crate::plan::fsops::{self, FsError};
use crate::plan::sha256_hex;

/// Larger "config files" are not containerd's: refuse rather than buffer them.
const MAX_FILE_BYTES: usize = 4 << 20;
/// More directories than this under a certs.d root means something else lives there.
const MAX_HOSTS_DIRS: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum NodeFilesError {
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("{} is {len} bytes: too large for a configuration file (containerd's, a registries.yaml, an os-release); check what the file is", .path.display())]
    TooLarge { path: PathBuf, len: usize },
    #[error("{} is not UTF-8 text", .path.display())]
    NotText { path: PathBuf },
    #[error("{}: {source}; fix the file (containerd would refuse it too)", .path.display())]
    Config { path: PathBuf, source: ConfigError },
    #[error("cannot inspect {}: {source}", .path.display())]
    Inspect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot list {}: {source}", .path.display())]
    List {
        path: PathBuf,
        source: std::io::Error,
    },
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
    let mut other_files_sha256 = std::collections::BTreeMap::new();
    if let Some(cp) = &config.facts().config_path {
        for root in cp.roots() {
            hosts_dirs.extend(read_hosts_root(Path::new(root), &mut other_files_sha256)?);
        }
    }
    let imported = expand_imports(config_file, &config.facts().imports)?;
    let mut imported_registry = Vec::new();
    for path in &imported {
        let Some(text) = read_text(Path::new(path))? else {
            continue;
        };
        let sets_registry = ConfigToml::parse(&text)
            .map(|c| c.facts().config_path.is_some() || c.facts().has_legacy_registry())
            // A file containerd cannot parse either: report it rather than guess.
            .unwrap_or(true);
        if sets_registry {
            imported_registry.push(path.clone());
        }
    }
    let mut facts = NodeFacts {
        config_file: config_file.display().to_string(),
        config,
        hosts_dirs,
        named_files: Default::default(),
    };
    for path in crate::ctrconfig::lookup::named_ca_files(&facts) {
        let exists = is_file(Path::new(&path))?;
        facts.named_files.insert(path, exists);
    }
    Ok(NodeFiles {
        facts,
        config_exists,
        imported,
        imported_registry,
        other_files_sha256,
    })
}

/// The files `imports` names: paths relative to config.toml's directory are resolved
/// against it, and a `*` in the file name matches like containerd's glob (sorted).
fn expand_imports(config_file: &Path, imports: &[String]) -> Result<Vec<String>, NodeFilesError> {
    let base = config_file.parent().unwrap_or(Path::new("/"));
    let mut out = Vec::new();
    for pattern in imports {
        let path = base.join(pattern);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !name.contains('*') {
            out.push(path.display().to_string());
            continue;
        }
        let dir = path.parent().unwrap_or(Path::new("/"));
        let (prefix, suffix) = name.split_once('*').unwrap_or((&name, ""));
        let mut matched: Vec<String> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .flatten()
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| {
                    n.starts_with(prefix)
                        && n.ends_with(suffix)
                        && n.len() >= prefix.len() + suffix.len()
                })
                .map(|n| dir.join(n).display().to_string())
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(NodeFilesError::List {
                    path: dir.to_path_buf(),
                    source,
                });
            }
        };
        matched.sort();
        out.extend(matched);
    }
    Ok(out)
}

/// Who owns containerd's configuration, and the owner's registries file (k3s, RKE2)
/// with its text when it exists.
#[derive(Debug, Clone)]
pub struct OwnerFiles {
    pub owner: Owner,
    pub registries_file: String,
    pub registries_text: Option<String>,
}

/// os-release is a few hundred bytes; anything larger is not one.
const MAX_OS_RELEASE_BYTES: u64 = 64 << 10;

/// Reads what decides who owns containerd's configuration at `config_file` (its first
/// line, the config templates next to it, the `hosts_dirs` already read, `os_release`),
/// and then the owner's registries file: `registries` when the settings name one,
/// else the one the owner reads (`/etc/rancher/k3s/registries.yaml`).
pub fn read_owner(
    config_file: &Path,
    hosts_dirs: &[HostsDirFacts],
    registries: Option<&Path>,
    os_release: &Path,
) -> Result<OwnerFiles, NodeFilesError> {
    let config_text = read_text(config_file)?;
    let dir = config_file.parent().unwrap_or(Path::new("/"));
    let mut templates = Vec::new();
    for name in CONFIG_TEMPLATES {
        // Present is enough (k3s reads it through a link too); its text is not needed.
        if std::fs::symlink_metadata(dir.join(name)).is_ok() {
            templates.push(name.to_string());
        }
    }
    let os_release_text = read_os_release(os_release)?;
    let config = config_file.display().to_string();
    let os = os_release.display().to_string();
    let owner = decide(&OwnerFacts {
        config_file: &config,
        config_text: config_text.as_deref(),
        templates: &templates,
        hosts_dirs,
        os_release_file: &os,
        os_release: os_release_text.as_deref(),
    });
    let registries_file = match (registries, &owner) {
        (Some(path), _) => path.to_path_buf(),
        (None, Owner::Generated { by, .. }) => by.registries_file().into(),
        (None, _) => Generator::K3s.registries_file().into(),
    };
    let registries_text = match &owner {
        Owner::Generated { .. } => read_text(&registries_file)?,
        Owner::Containerd | Owner::Bottlerocket { .. } => None,
    };
    Ok(OwnerFiles {
        owner,
        registries_file: registries_file.display().to_string(),
        registries_text,
    })
}

/// The os-release file, followed if it is a link (`/etc/os-release` usually points at
/// `/usr/lib/os-release`): it is only read, never edited. `None` if absent.
fn read_os_release(path: &Path) -> Result<Option<String>, NodeFilesError> {
    use std::io::Read as _;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(NodeFilesError::Fs(FsError::Io {
                action: "open",
                path: path.to_path_buf(),
                source,
            }));
        }
    };
    let mut bytes = Vec::new();
    file.take(MAX_OS_RELEASE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| {
            NodeFilesError::Fs(FsError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            })
        })?;
    text_of(path, bytes, MAX_OS_RELEASE_BYTES as usize).map(Some)
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
    let Some((bytes, _)) = fsops::read_regular_max(path, MAX_FILE_BYTES as u64)? else {
        return Ok(None);
    };
    text_of(path, bytes, MAX_FILE_BYTES).map(Some)
}

/// The text of the file at `path`, which read as `bytes`: at most `max` of them, UTF-8.
fn text_of(path: &Path, bytes: Vec<u8>, max: usize) -> Result<String, NodeFilesError> {
    if bytes.len() > max {
        return Err(NodeFilesError::TooLarge {
            path: path.to_path_buf(),
            len: bytes.len(),
        });
    }
    String::from_utf8(bytes).map_err(|_| NodeFilesError::NotText {
        path: path.to_path_buf(),
    })
}

/// Whether `path` is a file, following symlinks as containerd does when it opens a CA
/// (only its metadata is read, so following cannot make ctrdiag read or write elsewhere).
fn is_file(path: &Path) -> Result<bool, NodeFilesError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.is_file()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(false)
        }
        Err(source) => Err(NodeFilesError::Inspect {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Every real directory (not a symlink) under `root`, with its hosts.toml and the
/// names of its other regular files (their digests go into `digests`). A missing root
/// has none.
fn read_hosts_root(
    root: &Path,
    digests: &mut std::collections::BTreeMap<String, String>,
) -> Result<Vec<HostsDirFacts>, NodeFilesError> {
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
            let path = dir.join(&fname);
            if fname == "hosts.toml" {
                // containerd reads whatever is there (and fails on a directory): a
                // hosts.toml ctrdiag cannot read as a file is named, not skipped.
                if !kind.is_file() {
                    return Err(FsError::NotRegular { path }.into());
                }
                hosts_toml = read_text(&path)?;
            } else if kind.is_file() {
                // A huge file there is not a certificate: listed, not digested.
                match fsops::read_regular_max(&path, MAX_FILE_BYTES as u64) {
                    Ok(Some((bytes, _))) => {
                        digests.insert(path.display().to_string(), sha256_hex(&bytes));
                    }
                    Ok(None) | Err(FsError::TooLarge { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
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
