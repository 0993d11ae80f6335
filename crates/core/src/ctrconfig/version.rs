//! The containerd version and the behaviour that depends on it.
//!
//! What decides whether a registry setting works is the running containerd's version,
//! not the config file's `version` (LAB.md: 2.1.9 ignores `configs.<host>.tls` even in a
//! migrated `version = 2` file). Every version-dependent rule of the planner is one
//! predicate here, so the rules are named and tested in one place.

use std::fmt;
use std::str::FromStr;

/// Why a version string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error(
        "no containerd version found in {input:?}: expected output of `containerd --version` \
         (e.g. `containerd github.com/containerd/containerd/v2 2.1.9`) or a version like `1.7.24`"
    )]
    NotFound { input: String },
}

/// A containerd release as `major.minor.patch`; distribution suffixes (`~ds1`,
/// `+unknown`, `-rc.1`) are dropped because no rule here depends on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContainerdVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl ContainerdVersion {
    /// What to read a missing config.toml as when containerd does not say its version
    /// (it is down): the current major's layout. Only a missing file's defaults depend
    /// on it; findings are never made for a version that was not reported.
    pub const ASSUMED_WHEN_UNKNOWN: ContainerdVersion = ContainerdVersion {
        major: 2,
        minor: 0,
        patch: 0,
    };

    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        ContainerdVersion {
            major,
            minor,
            patch,
        }
    }

    /// Reads `containerd --version` output, a Version RPC string (`v1.7.24`) or a plain
    /// version. The first word that starts with a digit (after an optional `v`) wins,
    /// which skips the `containerd` and module-path words and ignores Debian's trailing
    /// package revision.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        text.split_whitespace()
            .find_map(parse_word)
            .ok_or_else(|| VersionError::NotFound {
                input: text.chars().take(200).collect(),
            })
    }

    fn at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        *self >= ContainerdVersion::new(major, minor, patch)
    }

    /// CRI reads `config_path` and hosts.toml directories (added in 1.5).
    pub fn supports_hosts_dir(&self) -> bool {
        self.at_least(1, 5, 0)
    }

    /// `<root>/_default/` is consulted when no host directory exists (1.6.17 and 1.7.0 on).
    pub fn has_default_hosts_dir(&self) -> bool {
        self.at_least(1, 7, 0) || (self.major == 1 && self.minor == 6 && self.patch >= 17)
    }

    /// `registry.configs.<host>.tls` has an effect only on 1.x; 2.x drops it with a
    /// "Ignoring unknown key" warning (measured on 2.1.9).
    pub fn honours_legacy_tls(&self) -> bool {
        self.major == 1
    }

    /// On 1.5–1.7 `configs.<host>.tls` next to `config_path` makes the CRI plugin refuse
    /// to load, which breaks every CRI call (measured on 1.6.20 and 1.7.24).
    pub fn legacy_tls_conflicts_with_config_path(&self) -> bool {
        self.major == 1 && self.supports_hosts_dir()
    }

    /// `mirrors` next to `config_path` is refused by every version that knows
    /// `config_path` (1.x CRI plugin and 2.x CRI images plugin alike).
    pub fn mirrors_conflict_with_config_path(&self) -> bool {
        self.supports_hosts_dir()
    }

    /// 2.1+ silently ignores a colon-separated `config_path` when CRI pulls through the
    /// Transfer service (LAB.md, containerd #12808/#12636/#12415).
    pub fn ignores_multi_root_in_transfer_mode(&self) -> bool {
        self.at_least(2, 1, 0)
    }

    /// CRI pulls go through the Transfer service on 2.x unless legacy registry settings
    /// switch them to local pull mode.
    pub fn cri_uses_transfer_service(&self) -> bool {
        self.major >= 2
    }

    /// The Transfer service exists from 1.7: a candidate hosts.toml can then be tried in
    /// a temporary directory with a real pull before certs.d changes.
    pub fn has_transfer_service(&self) -> bool {
        self.at_least(1, 7, 0)
    }

    /// The Transfer service pulls through the hosts directory a request names
    /// (`RegistryResolver.host_dir`), so a staged hosts.toml can be tried. Measured:
    /// 2.1.9 does; 1.7.24 pulls with its default resolver whatever the request says (a
    /// trial with the right CA failed with "unknown authority"), so a trial there would
    /// prove nothing.
    pub fn transfer_takes_hosts_dir(&self) -> bool {
        self.major >= 2
    }

    /// 1.x up to 1.7.31 reject a hosts.toml without any `[host."..."]` table with
    /// ``invalid `host` tree`` and fall back to certificate files (LAB.md).
    pub fn requires_host_table(&self) -> bool {
        self.major == 1 && !self.at_least(1, 7, 32)
    }

    /// Introspection's `Server()` lists deprecations in use on 1.6.25+, 1.7.9+ and 2.x.
    pub fn reports_deprecations(&self) -> bool {
        self.major >= 2
            || self.at_least(1, 7, 9)
            || (self.major == 1 && self.minor == 6 && self.patch >= 25)
    }

    /// Config file versions this containerd reads. 1.x knows 1 and 2; 2.x knows 2 and 3
    /// (version 1 files must be migrated with `containerd config migrate` first).
    pub fn reads_config_version(&self, version: u32) -> bool {
        match self.major {
            0 | 1 => version == 1 || version == 2,
            _ => version == 2 || version == 3,
        }
    }
}

fn parse_word(word: &str) -> Option<ContainerdVersion> {
    let w = word.strip_prefix('v').unwrap_or(word);
    if !w.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let core = w
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .next()?;
    let mut parts = core.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = match parts.next() {
        Some(p) if !p.is_empty() => p.parse().ok()?,
        _ => 0,
    };
    Some(ContainerdVersion::new(major, minor, patch))
}

impl FromStr for ContainerdVersion {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ContainerdVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> ContainerdVersion {
        ContainerdVersion::parse(s).expect("version")
    }

    #[test]
    fn parses_real_version_outputs() {
        assert_eq!(
            v("containerd github.com/containerd/containerd/v2 2.1.9+unknown"),
            ContainerdVersion::new(2, 1, 9)
        );
        assert_eq!(
            v("containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n"),
            ContainerdVersion::new(1, 6, 20)
        );
        assert_eq!(v("1.7.24"), ContainerdVersion::new(1, 7, 24));
        assert_eq!(v("v1.7.24"), ContainerdVersion::new(1, 7, 24));
        assert_eq!(
            v("containerd containerd.io 1.7.27 05044ec0a9a75232cad458027ca83437aae3f4da"),
            ContainerdVersion::new(1, 7, 27)
        );
        assert_eq!(v("2.0.0-rc.3"), ContainerdVersion::new(2, 0, 0));
        assert_eq!(v("1.7"), ContainerdVersion::new(1, 7, 0));
        assert_eq!(v("1.7.24").to_string(), "1.7.24");
    }

    #[test]
    fn refuses_text_without_a_version() {
        for bad in [
            "",
            "containerd",
            "containerd github.com/containerd/containerd/v2",
            "vx.y",
            "1",
            "99999999999.1.1",
        ] {
            assert!(ContainerdVersion::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn predicates_follow_the_measured_versions() {
        let (v15, v1616, v1617, v1620, v170, v1724, v2_0, v219) = (
            v("1.5.0"),
            v("1.6.16"),
            v("1.6.17"),
            v("1.6.20"),
            v("1.7.0"),
            v("1.7.24"),
            v("2.0.5"),
            v("2.1.9"),
        );
        assert!(!v("1.4.13").supports_hosts_dir() && v15.supports_hosts_dir());
        assert!(!v1616.has_default_hosts_dir() && v1617.has_default_hosts_dir());
        assert!(!v1724.transfer_takes_hosts_dir() && v219.transfer_takes_hosts_dir());
        assert!(v170.has_default_hosts_dir() && v219.has_default_hosts_dir());
        assert!(v1620.honours_legacy_tls() && v1724.honours_legacy_tls());
        assert!(!v2_0.honours_legacy_tls() && !v219.honours_legacy_tls());
        assert!(v1620.legacy_tls_conflicts_with_config_path());
        assert!(!v219.legacy_tls_conflicts_with_config_path());
        assert!(v219.mirrors_conflict_with_config_path());
        assert!(!v2_0.ignores_multi_root_in_transfer_mode());
        assert!(v219.ignores_multi_root_in_transfer_mode());
        assert!(!v1620.has_transfer_service() && v1724.has_transfer_service());
        assert!(v1620.requires_host_table() && v1724.requires_host_table());
        assert!(!v("1.7.32").requires_host_table() && !v219.requires_host_table());
        assert!(!v("1.6.24").reports_deprecations() && v("1.6.25").reports_deprecations());
        assert!(!v("1.7.8").reports_deprecations() && v("1.7.9").reports_deprecations());
        assert!(v1620.reads_config_version(2) && !v1620.reads_config_version(3));
        assert!(v219.reads_config_version(3) && !v219.reads_config_version(1));
    }
}
