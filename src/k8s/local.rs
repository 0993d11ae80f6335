//! The operator's own copy of every list `detach` saved, in a private file under the
//! XDG state directory (`$XDG_STATE_HOME/ctrdiag/`, else `~/.local/state/ctrdiag/`).
//!
//! The annotation on the ServiceAccount is the record `restore` uses; this copy is for
//! the day the annotation is gone with the object (a deleted `default` ServiceAccount is
//! recreated empty by the controller manager), so the names are still somewhere.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::pull_secrets::SavedList;
use crate::plan::fsops::{self, FsError};

const FILE_NAME: &str = "saved-image-pull-secrets.json";

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(
        "neither XDG_STATE_HOME nor HOME is set, so ctrdiag has nowhere to keep its local copy; set one of them"
    )]
    NoStateDir,
    #[error("{0}")]
    Fs(#[from] FsError),
    #[error(
        "{} is not a file ctrdiag wrote ({source}); move it away and run the command again",
        .path.display()
    )]
    Unreadable {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// Which ServiceAccount a copy belongs to: the API server's URL, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyKey {
    pub server: String,
    pub namespace: String,
    pub service_account: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalCopy {
    #[serde(flatten)]
    pub key: CopyKey,
    pub saved: SavedList,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CopyFile {
    copies: Vec<LocalCopy>,
}

/// The copies file. Each write replaces the whole file atomically, mode 0600, in a
/// directory of mode 0700.
#[derive(Debug, Clone)]
pub struct LocalCopies {
    dir: PathBuf,
}

impl LocalCopies {
    /// `$XDG_STATE_HOME/ctrdiag`, else `$HOME/.local/state/ctrdiag` (the XDG default).
    pub fn from_env() -> Result<Self, LocalError> {
        let base = match (std::env::var_os("XDG_STATE_HOME"), std::env::var_os("HOME")) {
            (Some(state), _) if Path::new(&state).is_absolute() => PathBuf::from(state),
            (_, Some(home)) if !home.is_empty() => Path::new(&home).join(".local/state"),
            _ => return Err(LocalError::NoStateDir),
        };
        Ok(LocalCopies::at(base.join("ctrdiag")))
    }

    pub fn at(dir: PathBuf) -> Self {
        LocalCopies { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    pub fn find(&self, key: &CopyKey) -> Result<Option<LocalCopy>, LocalError> {
        Ok(self.load()?.copies.into_iter().find(|c| &c.key == key))
    }

    /// Stores `copy`, replacing an older copy for the same ServiceAccount.
    pub fn put(&self, copy: LocalCopy) -> Result<(), LocalError> {
        let mut file = self.load()?;
        file.copies.retain(|c| c.key != copy.key);
        file.copies.push(copy);
        self.store(&file)
    }

    /// Forgets the copy for `key` (after a restore, or a detach the server refused).
    pub fn remove(&self, key: &CopyKey) -> Result<(), LocalError> {
        let mut file = self.load()?;
        let before = file.copies.len();
        file.copies.retain(|c| &c.key != key);
        if file.copies.len() == before {
            return Ok(());
        }
        self.store(&file)
    }

    fn load(&self) -> Result<CopyFile, LocalError> {
        let path = self.path();
        match fsops::read_regular(&self.real_dir().join(FILE_NAME))? {
            None => Ok(CopyFile::default()),
            Some((bytes, _)) => serde_json::from_slice(&bytes)
                .map_err(|source| LocalError::Unreadable { path, source }),
        }
    }

    fn store(&self, file: &CopyFile) -> Result<(), LocalError> {
        fsops::create_dirs(&self.dir, 0o700)?;
        let json = serde_json::to_vec_pretty(file).expect("local copies always serialize");
        fsops::atomic_write(
            &self.real_dir().join(FILE_NAME),
            &json,
            fsops::private_meta(),
        )?;
        Ok(())
    }

    /// The directory with symlinks above it resolved (a home directory may well be a
    /// link), so the file itself is still never written through a link.
    fn real_dir(&self) -> PathBuf {
        std::fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::k8s::pull_secrets::{SavedBy, SecretRef};

    fn copy(name: &str, secret: &str) -> LocalCopy {
        LocalCopy {
            key: CopyKey {
                server: "https://127.0.0.1:6443/".into(),
                namespace: "default".into(),
                service_account: name.into(),
            },
            saved: SavedList {
                image_pull_secrets: vec![SecretRef::new(secret)],
                saved_at: "2026-05-01T07:00:00Z".into(),
                saved_by: SavedBy::default(),
            },
        }
    }

    #[test]
    fn copies_are_kept_per_service_account_in_a_private_file() {
        let tmp = tempfile::tempdir().unwrap();
        let copies = LocalCopies::at(tmp.path().join("state/ctrdiag"));
        assert_eq!(copies.find(&copy("a", "x").key).unwrap(), None);
        copies.put(copy("a", "x")).unwrap();
        copies.put(copy("b", "y")).unwrap();
        copies.put(copy("a", "z")).unwrap();
        assert_eq!(
            copies.find(&copy("a", "-").key).unwrap(),
            Some(copy("a", "z"))
        );
        assert_eq!(
            copies.find(&copy("b", "-").key).unwrap(),
            Some(copy("b", "y"))
        );
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&copies.path()), 0o600);
        assert_eq!(mode(&tmp.path().join("state/ctrdiag")), 0o700);
        copies.remove(&copy("a", "-").key).unwrap();
        assert_eq!(copies.find(&copy("a", "-").key).unwrap(), None);
        assert_eq!(
            copies.find(&copy("b", "-").key).unwrap(),
            Some(copy("b", "y"))
        );
    }

    #[test]
    fn a_file_ctrdiag_did_not_write_is_reported_not_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let copies = LocalCopies::at(tmp.path().to_path_buf());
        std::fs::write(copies.path(), "not json").unwrap();
        let err = copies.put(copy("a", "x")).unwrap_err();
        assert!(matches!(err, LocalError::Unreadable { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(copies.path()).unwrap(), "not json");
    }
}
