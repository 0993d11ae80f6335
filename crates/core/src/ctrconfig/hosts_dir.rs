//! Which directory under a `config_path` root containerd reads for a registry host.
//!
//! containerd (remotes/docker/config, `hostPaths`) tries, in order: `host_port_`
//! (the port with `_` around it, from `hostDirectory`), then `host:port`, then
//! `_default` (1.6.17 / 1.7.0 on). The first directory that exists wins and nothing is
//! merged, so a file written into a directory that a higher-priority one shadows does
//! nothing. `host/` never applies to `host:port`. Pure: the caller lists the
//! directories that exist.

use std::collections::BTreeSet;

use super::version::ContainerdVersion;
use crate::registry::host::RegistryHost;

/// The fallback directory for every host without its own.
pub const DEFAULT_DIR: &str = "_default";

/// containerd's `hostDirectory`: the last `:` becomes `_` and a `_` is appended
/// (`reg:5000` → `reg_5000_`); a name without `:` is unchanged.
pub fn port_dir_name(host: &RegistryHost) -> String {
    let h = host.to_string();
    match h.rfind(':') {
        Some(i) if i > 0 => format!("{}_{}_", &h[..i], &h[i + 1..]),
        _ => h,
    }
}

/// The directories that belong to `host` alone (`host_port_`, `host:port`).
pub fn own_dir_names(host: &RegistryHost) -> Vec<String> {
    let plain = host.to_string();
    let mangled = port_dir_name(host);
    if mangled == plain {
        vec![plain]
    } else {
        vec![mangled, plain]
    }
}

/// Directory names containerd tries for `host`, most specific first.
pub fn hosts_dir_candidates(host: &RegistryHost, version: &ContainerdVersion) -> Vec<String> {
    let mut out = own_dir_names(host);
    if version.has_default_hosts_dir() {
        out.push(DEFAULT_DIR.to_string());
    }
    out
}

/// The directory containerd reads for `host` today, if any exists.
pub fn effective_hosts_dir(
    host: &RegistryHost,
    version: &ContainerdVersion,
    existing: &BTreeSet<String>,
) -> Option<String> {
    hosts_dir_candidates(host, version)
        .into_iter()
        .find(|d| existing.contains(d))
}

/// The directory name to write `host`'s hosts.toml into: an existing `host_port_`
/// (it would shadow anything else), else `host:port` (created if missing; it takes
/// precedence over `_default`, which is shared by all hosts and never written).
pub fn hosts_dir_name_for(host: &RegistryHost, existing: &BTreeSet<String>) -> String {
    let mangled = port_dir_name(host);
    if existing.contains(&mangled) {
        mangled
    } else {
        host.to_string()
    }
}

/// `root/<dir>` for [`hosts_dir_name_for`].
pub fn hosts_dir_for(root: &str, host: &RegistryHost, existing: &BTreeSet<String>) -> String {
    join(root, &hosts_dir_name_for(host, existing))
}

/// Joins path parts with exactly one `/`.
pub(crate) fn join(root: &str, name: &str) -> String {
    let root = root.trim_end_matches('/');
    if root.is_empty() {
        format!("/{name}")
    } else {
        format!("{root}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> RegistryHost {
        s.parse().expect("host")
    }

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn candidates_follow_containerd_order() {
        let v2 = ContainerdVersion::new(2, 1, 9);
        assert_eq!(
            hosts_dir_candidates(&h("reg.test:5443"), &v2),
            ["reg.test_5443_", "reg.test:5443", "_default"]
        );
        assert_eq!(
            hosts_dir_candidates(&h("reg.test"), &v2),
            ["reg.test", "_default"]
        );
        assert_eq!(
            hosts_dir_candidates(&h("reg.test:5443"), &ContainerdVersion::new(1, 6, 16)),
            ["reg.test_5443_", "reg.test:5443"]
        );
        assert_eq!(port_dir_name(&h("[::1]:5000")), "[::1]_5000_");
    }

    #[test]
    fn first_existing_directory_wins_and_host_without_port_never_applies() {
        let v = ContainerdVersion::new(1, 7, 24);
        let host = h("reg.test:5443");
        assert_eq!(effective_hosts_dir(&host, &v, &set(&["reg.test"])), None);
        assert_eq!(
            effective_hosts_dir(&host, &v, &set(&["reg.test", "_default"])).as_deref(),
            Some("_default")
        );
        assert_eq!(
            effective_hosts_dir(&host, &v, &set(&["reg.test:5443", "reg.test_5443_"])).as_deref(),
            Some("reg.test_5443_")
        );
        assert_eq!(
            effective_hosts_dir(
                &host,
                &ContainerdVersion::new(1, 6, 16),
                &set(&["_default"])
            ),
            None
        );
    }

    #[test]
    fn writes_go_where_containerd_will_look() {
        let host = h("reg.test:5443");
        assert_eq!(
            hosts_dir_for(
                "/etc/containerd/certs.d/",
                &host,
                &set(&["_default", "reg.test"])
            ),
            "/etc/containerd/certs.d/reg.test:5443"
        );
        assert_eq!(
            hosts_dir_for("/etc/containerd/certs.d", &host, &set(&["reg.test_5443_"])),
            "/etc/containerd/certs.d/reg.test_5443_"
        );
        assert_eq!(hosts_dir_for("/", &h("docker.io"), &set(&[])), "/docker.io");
    }
}
