//! What the adapters read from the node, handed to the pure planner and findings.

use std::collections::{BTreeMap, BTreeSet};

use super::config_toml::ConfigToml;

/// Default `config_path` root that ctrdiag sets when a config has none: the
/// directory containerd's documentation and most distributions use.
pub const DEFAULT_CERTS_DIR: &str = "/etc/containerd/certs.d";

/// One directory under a `config_path` root, as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsDirFacts {
    /// The `config_path` root it lives in, e.g. `/etc/containerd/certs.d`.
    pub root: String,
    /// The directory name, e.g. `registry.example:5000` or `_default`.
    pub name: String,
    /// The text of its hosts.toml, if the file exists.
    pub hosts_toml: Option<String>,
    /// Other files in it (`ca.crt`, `client.cert`, ...), by name.
    pub other_files: Vec<String>,
}

/// containerd's configuration as the adapters found it.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    /// Path of the config.toml, e.g. `/etc/containerd/config.toml`.
    pub config_file: String,
    pub config: ConfigToml,
    /// Every directory under every `config_path` root (empty when there is none).
    pub hosts_dirs: Vec<HostsDirFacts>,
    /// The CA files the hosts.toml files and legacy tables name ([`super::lookup::named_ca_files`]),
    /// and whether each exists as a file: a CA that is missing is the next thing an
    /// operator asks about once they know which hosts.toml containerd reads.
    pub named_files: BTreeMap<String, bool>,
}

impl NodeFacts {
    /// Names of the directories that exist under `root`.
    pub fn dir_names(&self, root: &str) -> BTreeSet<String> {
        let root = root.trim_end_matches('/');
        self.hosts_dirs
            .iter()
            .filter(|d| d.root.trim_end_matches('/') == root)
            .map(|d| d.name.clone())
            .collect()
    }

    /// The facts of directory `name` under `root`.
    pub fn dir(&self, root: &str, name: &str) -> Option<&HostsDirFacts> {
        let root = root.trim_end_matches('/');
        self.hosts_dirs
            .iter()
            .find(|d| d.root.trim_end_matches('/') == root && d.name == name)
    }
}

/// What the node-files adapter read, and whether config.toml exists at all (containerd
/// then runs on its defaults, and a plan creates the file).
#[derive(Debug, Clone)]
pub struct NodeFiles {
    pub facts: NodeFacts,
    pub config_exists: bool,
    /// Files pulled in by `imports` (globs expanded), in order.
    pub imported: Vec<String>,
    /// Those of them that set CRI registry settings (`config_path`, `configs`,
    /// `mirrors`, `auths`): containerd merges them with config.toml, so an edit of
    /// config.toml alone could contradict them.
    pub imported_registry: Vec<String>,
    /// SHA-256 of every other file in the hosts directories (certificates, keys), by
    /// path: a plan that moves one away refuses if it changed since it was read.
    pub other_files_sha256: std::collections::BTreeMap<String, String>,
}
