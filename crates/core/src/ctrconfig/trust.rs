//! What containerd is configured to do for one registry host, read from the
//! configuration the way containerd reads it (version-aware): the hosts.toml in the
//! directory it picks (or, on 1.x without `config_path`, the legacy tables), with the
//! CA files it adds to the system pool, whether it skips verification, and whether it
//! speaks plain HTTP. Which place containerd picks is [`super::lookup`]'s to say; this
//! module reads one place. The findings engine reasons with the result.

use super::facts::{HostsDirFacts, NodeFacts};
use super::hosts_dir::join;
use super::hosts_toml::HostsToml;
use super::lookup::lookup;
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
    /// The file that says so: a hosts.toml, or config.toml for the legacy tables (for
    /// a directory without a usable hosts.toml, the directory whose `*.crt` it loads).
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

/// What containerd `version` does for `host` with the configuration in `facts`: the
/// settings of the place that wins containerd's lookup.
pub fn host_trust(
    facts: &NodeFacts,
    host: &RegistryHost,
    version: &ContainerdVersion,
) -> HostTrust {
    lookup(facts, host, version).trust
}

/// How containerd reads one hosts directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DirReading {
    /// Its hosts.toml.
    HostsToml,
    /// No usable hosts.toml: containerd takes Docker's layout instead (`*.crt` are CAs,
    /// `*.cert` with a matching `.key` are client pairs). `problem` says why a
    /// hosts.toml that is there was dropped.
    CertFiles { problem: Option<String> },
}

/// What the hosts directory `d` configures for `host` on containerd `version`, and
/// how containerd reads it (containerd's `loadHostDir`: an empty, unparsable or
/// rejected hosts.toml falls back to the certificate files, without saying so).
pub(crate) fn dir_trust(
    d: &HostsDirFacts,
    host: &RegistryHost,
    version: &ContainerdVersion,
) -> (HostTrust, DirReading) {
    let base = join(&d.root, &d.name);
    let parsed = match d.hosts_toml.as_deref() {
        None | Some("") => Err(None),
        Some(text) => match HostsToml::parse(text) {
            Err(e) => Err(Some(e.to_string())),
            Ok(h) => match h.problems(version).first() {
                Some(p) => Err(Some(p.to_string())),
                None => Ok(h),
            },
        },
    };
    let h = match parsed {
        Ok(h) => h,
        Err(problem) => {
            let trust = HostTrust {
                ca_files: d
                    .other_files
                    .iter()
                    .filter(|f| f.ends_with(".crt"))
                    .map(|f| join(&base, f))
                    .collect(),
                source: Some(base),
                ..HostTrust::default()
            };
            return (trust, DirReading::CertFiles { problem });
        }
    };
    let http_self = format!("http://{host}");
    let is_self_http = |url: &str| url.trim_end_matches('/') == http_self;
    let trust = HostTrust {
        plain_http: h.server().is_some_and(is_self_http)
            || h.hosts().iter().any(|e| is_self_http(&e.url)),
        skip_verify: h.top_level().skip_verify == Some(true)
            || h.hosts()
                .iter()
                .any(|e| e.settings.skip_verify == Some(true)),
        ca_files: hosts_toml_cas(&h, &base),
        source: Some(join(&base, "hosts.toml")),
        hosts_toml: d.hosts_toml.clone(),
    };
    (trust, DirReading::HostsToml)
}

/// The CA files a hosts.toml in directory `base` names, relative ones resolved against
/// `base` as containerd does (`makeAbsPath`).
pub(crate) fn hosts_toml_cas(h: &HostsToml, base: &str) -> Vec<String> {
    h.hosts()
        .iter()
        .flat_map(|e| e.settings.ca.iter())
        .chain(h.top_level().ca.iter())
        .map(|ca| {
            if ca.starts_with('/') {
                ca.clone()
            } else {
                join(base, ca)
            }
        })
        .collect()
}

/// The legacy `configs.<host>.tls` and `mirrors.<host>` tables, where this version
/// reads them (1.x without `config_path`; 2.x ignores `configs.<host>.tls`).
pub(crate) fn legacy_trust(
    facts: &NodeFacts,
    host: &RegistryHost,
    version: &ContainerdVersion,
) -> HostTrust {
    let cf = facts.config.facts();
    let mut trust = HostTrust::default();
    if version.honours_legacy_tls() {
        for t in cf.legacy_tls.iter().filter(|t| names_host(&t.host, host)) {
            trust.ca_files.extend(t.ca_file.clone());
            trust.skip_verify |= t.insecure_skip_verify == Some(true);
        }
    }
    let http_self = format!("http://{host}");
    trust.plain_http = cf
        .mirrors
        .iter()
        .filter(|m| names_host(&m.host, host))
        .any(|m| {
            m.endpoints
                .first()
                .is_some_and(|e| e.trim_end_matches('/') == http_self)
        });
    if trust.is_configured() {
        trust.source = Some(facts.config_file.clone());
    }
    trust
}

/// Whether a legacy table key (`"host:port"` as written) is `host`'s.
pub(crate) fn names_host(key: &str, host: &RegistryHost) -> bool {
    key.parse::<RegistryHost>().is_ok_and(|k| &k == host)
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
            named_files: Default::default(),
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
