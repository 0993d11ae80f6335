//! Which CA files containerd uses for a registry host, read from the configuration
//! the way containerd does (version-aware): the `ca` entries of the hosts.toml in the
//! directory it picks, or on 1.x without `config_path` the legacy `ca_file`.

use super::facts::NodeFacts;
use super::hosts_dir::{effective_hosts_dir, join};
use super::hosts_toml::HostsToml;
use super::version::ContainerdVersion;
use crate::registry::host::RegistryHost;

/// The CA files containerd would add to the system pool for `host`, and the text of
/// the hosts.toml it reads for it (if any). Relative `ca` paths are resolved against
/// the hosts directory, as containerd resolves them.
pub fn ca_files_for(
    facts: &NodeFacts,
    host: &RegistryHost,
    version: &ContainerdVersion,
) -> (Vec<String>, Option<String>) {
    let cf = facts.config.facts();
    let Some(cp) = &cf.config_path else {
        let legacy = cf
            .legacy_tls
            .iter()
            .filter(|t| version.honours_legacy_tls() && t.host == host.to_string())
            .filter_map(|t| t.ca_file.clone())
            .collect();
        return (legacy, None);
    };
    for root in cp.roots() {
        let Some(dir) = effective_hosts_dir(host, version, &facts.dir_names(root)) else {
            continue;
        };
        let Some(d) = facts.dir(root, &dir) else {
            continue;
        };
        let Some(text) = &d.hosts_toml else {
            return (Vec::new(), None);
        };
        let cas = HostsToml::parse(text)
            .map(|h| {
                h.hosts()
                    .iter()
                    .flat_map(|e| e.settings.ca.clone())
                    .chain(h.top_level().ca.clone())
                    .map(|ca| {
                        if ca.starts_with('/') {
                            ca
                        } else {
                            join(&join(root, &dir), &ca)
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        return (cas, Some(text.clone()));
    }
    (Vec::new(), None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctrconfig::{ConfigToml, HostsDirFacts};

    fn facts(config: &str, dirs: Vec<HostsDirFacts>) -> NodeFacts {
        NodeFacts {
            config_file: "/etc/containerd/config.toml".into(),
            config: ConfigToml::parse(config).unwrap(),
            hosts_dirs: dirs,
        }
    }

    fn dir(name: &str, hosts_toml: &str) -> HostsDirFacts {
        HostsDirFacts {
            root: "/etc/containerd/certs.d".into(),
            name: name.into(),
            hosts_toml: Some(hosts_toml.into()),
            other_files: Vec::new(),
        }
    }

    const CP: &str = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n";

    #[test]
    fn the_ca_of_the_directory_containerd_picks_relative_ones_resolved() {
        let host: RegistryHost = "r.test:5000".parse().unwrap();
        let f = facts(
            CP,
            vec![
                dir("_default", "[host.\"https://x\"]\n  ca = \"/other.crt\"\n"),
                dir(
                    "r.test:5000",
                    "[host.\"https://r.test:5000\"]\n  ca = \"ca.crt\"\n",
                ),
            ],
        );
        let (cas, text) = ca_files_for(&f, &host, &ContainerdVersion::new(1, 7, 24));
        assert_eq!(cas, ["/etc/containerd/certs.d/r.test:5000/ca.crt"]);
        assert!(text.unwrap().contains("ca.crt"));
    }

    #[test]
    fn the_legacy_ca_file_counts_only_where_containerd_reads_it() {
        let host: RegistryHost = "r.test:5000".parse().unwrap();
        let config = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"r.test:5000\".tls]\n  ca_file = \"/ca.crt\"\n";
        let f = facts(config, Vec::new());
        assert_eq!(
            ca_files_for(&f, &host, &ContainerdVersion::new(1, 7, 24)).0,
            ["/ca.crt"]
        );
        assert!(
            ca_files_for(&f, &host, &ContainerdVersion::new(2, 1, 9))
                .0
                .is_empty()
        );
    }
}
