//! `containerd config default` as the lab's real containerd 1.6.20, 1.7.24 and 2.1.9
//! print it (captured from those binaries): read exactly, no registry settings seen,
//! and `config_path` set in the CRI registry table only, not in the transfer plugin's
//! table of the same key name.

use crate::ctrconfig::{ConfigToml, ConfigVersion};

const REAL: [(&str, &str, ConfigVersion); 3] = [
    (
        "1.6.20",
        include_str!("fixtures/real-1.6-config-default.toml"),
        ConfigVersion::V2,
    ),
    (
        "1.7.24",
        include_str!("fixtures/real-1.7-config-default.toml"),
        ConfigVersion::V2,
    ),
    (
        "2.1.9",
        include_str!("fixtures/real-2.1-config-default.toml"),
        ConfigVersion::V3,
    ),
];

#[test]
fn real_defaults_round_trip_and_have_no_registry_settings() {
    for (version, text, file_version) in REAL {
        let config = ConfigToml::parse(text).unwrap_or_else(|e| panic!("{version}: {e}"));
        assert_eq!(config.to_string(), text, "{version}: printed differently");
        assert_eq!(config.version(), file_version, "{version}");
        let facts = config.facts();
        assert!(
            facts.config_path.is_none(),
            "{version}: an empty config_path is unset"
        );
        assert!(!facts.has_legacy_registry(), "{version}");
    }
}

#[test]
fn config_path_goes_into_the_cri_registry_table_only() {
    for (version, text, _) in REAL {
        let config = ConfigToml::parse(text).unwrap();
        let edited = config.with_config_path("/etc/containerd/certs.d").unwrap();
        let changed: Vec<(&str, &str)> = text
            .lines()
            .zip(edited.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(
            changed.len(),
            1,
            "{version}: exactly one line changes: {changed:?}"
        );
        assert_eq!(text.lines().count(), edited.lines().count(), "{version}");
        let reread = ConfigToml::parse(&edited).unwrap();
        assert_eq!(
            reread.facts().config_path.as_ref().map(|c| c.raw.as_str()),
            Some("/etc/containerd/certs.d"),
            "{version}"
        );
        // The transfer plugin's own config_path keeps its empty value.
        let empties = edited
            .lines()
            .filter(|l| {
                l.trim().starts_with("config_path") && (l.contains("\"\"") || l.contains("''"))
            })
            .count();
        let before = text
            .lines()
            .filter(|l| l.trim().starts_with("config_path"))
            .count();
        assert_eq!(empties, before - 1, "{version}");
    }
}
