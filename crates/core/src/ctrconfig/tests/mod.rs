//! Tests of the whole module against realistic files (`containerd config default`
//! of 1.6 and 2.1, files seen on real nodes) and property tests.

mod config;
mod findings;
mod hosts;
mod lookup;
mod plan;
mod props;
mod real_defaults;

use crate::ctrconfig::{ConfigToml, ContainerdVersion, HostsDirFacts, NodeFacts};
use crate::registry::host::RegistryHost;

pub(super) const DEFAULT_16: &str = include_str!("fixtures/containerd-1.6-default.toml");
pub(super) const DEFAULT_21: &str = include_str!("fixtures/containerd-2.1-default.toml");

pub(super) fn host(s: &str) -> RegistryHost {
    s.parse().expect("test host")
}

pub(super) fn ver(s: &str) -> ContainerdVersion {
    ContainerdVersion::parse(s).expect("test version")
}

pub(super) fn cfg(text: &str) -> ConfigToml {
    ConfigToml::parse(text).expect("test config parses")
}

pub(super) fn node(text: &str, dirs: Vec<HostsDirFacts>) -> NodeFacts {
    NodeFacts {
        config_file: "/etc/containerd/config.toml".to_string(),
        config: cfg(text),
        hosts_dirs: dirs,
        named_files: Default::default(),
    }
}

pub(super) fn dir(root: &str, name: &str, hosts_toml: Option<&str>) -> HostsDirFacts {
    HostsDirFacts {
        root: root.to_string(),
        name: name.to_string(),
        hosts_toml: hosts_toml.map(str::to_string),
        other_files: Vec::new(),
    }
}

/// The lines that differ between `a` and `b` after trimming the common prefix and
/// suffix: (removed, added). Enough to prove a single-hunk edit touched only the
/// intended lines.
pub(super) fn line_diff(a: &str, b: &str) -> (Vec<String>, Vec<String>) {
    let a: Vec<&str> = a.split_inclusive('\n').collect();
    let b: Vec<&str> = b.split_inclusive('\n').collect();
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let cut = |v: &[&str]| -> Vec<String> {
        v[prefix..v.len() - suffix]
            .iter()
            .map(|s| s.trim_end_matches('\n').to_string())
            .collect()
    };
    (cut(&a), cut(&b))
}
