//! What containerd is configured to do for one registry host, read from the
//! configuration the way containerd reads it (version-aware): the hosts.toml in the
//! directory it picks (or, on 1.x without `config_path`, the legacy tables), with the
//! CA files it adds to the system pool, whether it skips verification, and whether it
//! speaks plain HTTP. The findings engine reasons with this; it is also where
//! containerd looks that diagnose shows.

use super::facts::NodeFacts;
use super::hosts_dir::{effective_hosts_dir, join};
use super::hosts_toml::HostsToml;
use super::version::ContainerdVersion;
use crate::registry::host::RegistryHost;

/// containerd's configuration for one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostTrust {
    /// CA files added to the system pool (absolute paths).
    pub ca_files: Vec<String>,
    /// Certificate verification is off (`skip_verify`, `insecure_skip_verify`).
    pub skip_verify: bool,
    /// containerd talks plain HTTP to the registry itself (`http://host`).
    pub plain_http: bool,
    /// The file that says so: a hosts.toml, or config.toml for the legacy tables.
    pub source: Option<String>,
    /// That hosts.toml's text, when it is one.
    pub hosts_toml: Option<String>,
}

impl HostTrust {
    /// Whether anything is configured for the host at all.
    pub fn is_configured(&self) -> bool {
        !self.ca_files.is_empty() || self.skip_verify || self.plain_http
    }
}

/// What containerd `version` does for `host` with the configuration in `facts`.
pub fn host_trust(
    facts: &NodeFacts,
    host: &RegistryHost,
    version: &ContainerdVersion,
) -> HostTrust {
    let cf = facts.config.facts();
    let Some(cp) = &cf.config_path else {
        return legacy_trust(facts, host, version);
    };
    for root in cp.roots() {
        let Some(dir) = effective_hosts_dir(host, version, &facts.dir_names(root)) else {
            continue;
        };
        let Some(d) = facts.dir(root, &dir) else {
            continue;
        };
        let base = join(root, &dir);
        let Some(text) = &d.hosts_toml else {
            return HostTrust::default();
        };
        let mut trust = HostTrust {
            source: Some(join(&base, "hosts.toml")),
            hosts_toml: Some(text.clone()),
            ..HostTrust::default()
        };
        // A file containerd cannot parse is ignored by it: nothing is configured.
        let Ok(h) = HostsToml::parse(text) else {
            return trust;
        };
        let http_self = format!("http://{host}");
        let is_self_http = |url: &str| url.trim_end_matches('/') == http_self;
        trust.plain_http =
            h.server().is_some_and(is_self_http) || h.hosts().iter().any(|e| is_self_http(&e.url));
        trust.skip_verify = h.top_level().skip_verify == Some(true)
            || h.hosts()
                .iter()
                .any(|e| e.settings.skip_verify == Some(true));
        trust.ca_files = h
            .hosts()
            .iter()
            .flat_map(|e| e.settings.ca.clone())
            .chain(h.top_level().ca.clone())
            .map(|ca| {
                if ca.starts_with('/') {
                    ca
                } else {
                    join(&base, &ca)
                }
            })
            .collect();
        return trust;
    }
    HostTrust::default()
}

/// The legacy `configs.<host>.tls` and `mirrors.<host>` tables, where this version
/// reads them (1.x without `config_path`; 2.x ignores `configs.<host>.tls`).
fn legacy_trust(facts: &NodeFacts, host: &RegistryHost, version: &ContainerdVersion) -> HostTrust {
    let cf = facts.config.facts();
    let mut trust = HostTrust::default();
    let names_host = |key: &str| key.parse::<RegistryHost>().is_ok_and(|k| &k == host);
    if version.honours_legacy_tls() {
        for t in cf.legacy_tls.iter().filter(|t| names_host(&t.host)) {
            trust.ca_files.extend(t.ca_file.clone());
            trust.skip_verify |= t.insecure_skip_verify == Some(true);
        }
    }
    let http_self = format!("http://{host}");
    trust.plain_http = cf.mirrors.iter().filter(|m| names_host(&m.host)).any(|m| {
        m.endpoints
            .first()
            .is_some_and(|e| e.trim_end_matches('/') == http_self)
    });
    if trust.is_configured() {
        trust.source = Some(facts.config_file.clone());
    }
    trust
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

    fn host() -> RegistryHost {
        "r.test:5000".parse().unwrap()
    }

    const CP: &str = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n";

    #[test]
    fn the_ca_of_the_directory_containerd_picks_relative_ones_resolved() {
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
        let t = host_trust(&f, &host(), &ContainerdVersion::new(1, 7, 24));
        assert_eq!(t.ca_files, ["/etc/containerd/certs.d/r.test:5000/ca.crt"]);
        assert_eq!(
            t.source.as_deref(),
            Some("/etc/containerd/certs.d/r.test:5000/hosts.toml")
        );
        assert!(!t.skip_verify && !t.plain_http);
    }

    #[test]
    fn skip_verify_and_plain_http_are_seen_where_containerd_sees_them() {
        let f = facts(
            CP,
            vec![dir(
                "r.test:5000",
                "server = \"http://r.test:5000\"\n[host.\"http://r.test:5000\"]\n  capabilities = [\"pull\"]\n",
            )],
        );
        assert!(host_trust(&f, &host(), &ContainerdVersion::new(2, 1, 9)).plain_http);
        let f = facts(
            CP,
            vec![dir(
                "r.test:5000",
                "[host.\"https://r.test:5000\"]\n  skip_verify = true\n",
            )],
        );
        assert!(host_trust(&f, &host(), &ContainerdVersion::new(2, 1, 9)).skip_verify);
        // A broken file is ignored by containerd: nothing is in effect.
        let f = facts(CP, vec![dir("r.test:5000", "skip_verify = [[[")]);
        assert!(!host_trust(&f, &host(), &ContainerdVersion::new(2, 1, 9)).is_configured());
    }

    #[test]
    fn the_legacy_table_counts_only_where_containerd_reads_it() {
        let config = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"r.test:5000\".tls]\n  ca_file = \"/ca.crt\"\n  insecure_skip_verify = true\n";
        let f = facts(config, Vec::new());
        let t = host_trust(&f, &host(), &ContainerdVersion::new(1, 7, 24));
        assert_eq!(t.ca_files, ["/ca.crt"]);
        assert!(t.skip_verify);
        assert_eq!(t.source.as_deref(), Some("/etc/containerd/config.toml"));
        assert!(!host_trust(&f, &host(), &ContainerdVersion::new(2, 1, 9)).is_configured());
    }
}
