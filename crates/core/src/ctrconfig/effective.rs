//! config.toml as written against the configuration containerd really computes from it
//! (`containerd --config FILE config dump`: defaults and `imports` merged, nothing
//! started). The two differ where an import changes a registry setting, and on 1.x
//! they can differ badly: 1.x merges an import per plugin section, so an import that
//! touches the CRI plugin at all replaces the main file's whole CRI section (measured on
//! 1.6.20 and 1.7.24: `config_path` set in config.toml came out empty once an import set
//! a mirror; 2.1.9 merged the two).

use std::collections::BTreeSet;

use super::config_toml::ConfigFacts;

/// A registry setting containerd uses differently from what config.toml says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    /// `config_path`, `mirrors."r:5000"`, `configs."r:5000".tls`, `auths."r:5000"`.
    pub setting: String,
    /// In config.toml (`None`: not there).
    pub in_file: Option<String>,
    /// What containerd computed (`None`: gone).
    pub effective: Option<String>,
}

impl Difference {
    /// Says what differs and which files are behind it.
    pub fn describe(&self, imports: &[String]) -> String {
        let from = if imports.is_empty() {
            "containerd's defaults".to_string()
        } else {
            format!("the imported {}", imports.join(", "))
        };
        match (&self.in_file, &self.effective) {
            (Some(file), Some(effective)) => format!(
                "config.toml sets {} = {file}, but containerd uses {effective}: {from} decides it",
                self.setting
            ),
            (Some(file), None) => format!(
                "config.toml sets {} = {file}, but containerd does not use it: {from} replaced \
                 it (containerd 1.x merges an import per plugin section, so an import that \
                 touches the CRI plugin replaces config.toml's whole CRI section)",
                self.setting
            ),
            (None, Some(effective)) => format!(
                "containerd uses {} = {effective}, which config.toml does not set: it comes from {from}",
                self.setting
            ),
            (None, None) => format!("{} differs", self.setting),
        }
    }
}

/// The keys of one registry table in a config's facts.
type TableKeys = fn(&ConfigFacts) -> BTreeSet<String>;

/// The registry settings whose value containerd computed differs from config.toml's.
pub fn differences(file: &ConfigFacts, effective: &ConfigFacts) -> Vec<Difference> {
    let mut out = Vec::new();
    let path = |f: &ConfigFacts| f.config_path.as_ref().map(|c| format!("{:?}", c.raw));
    if path(file) != path(effective) {
        out.push(Difference {
            setting: "config_path".into(),
            in_file: path(file),
            effective: path(effective),
        });
    }
    // Each table's keys as config.toml writes them (`"host"`, `"host".tls`).
    let tables: [(&str, TableKeys); 3] = [
        ("mirrors", |f| {
            f.mirrors.iter().map(|m| quoted(&m.host)).collect()
        }),
        ("configs", |f| {
            f.legacy_tls
                .iter()
                .map(|t| format!("{}.tls", quoted(&t.host)))
                .chain(
                    f.legacy_auth
                        .iter()
                        .map(|a| format!("{}.auth", quoted(&a.host))),
                )
                .collect()
        }),
        ("auths", |f| f.auths.iter().map(|h| quoted(h)).collect()),
    ];
    for (table, keys) in tables {
        let (in_file, in_effect) = (keys(file), keys(effective));
        for key in in_file.symmetric_difference(&in_effect) {
            let set = || Some("set".to_string());
            out.push(Difference {
                setting: format!("{table}.{key}"),
                in_file: in_file.contains(key).then(set).flatten(),
                effective: in_effect.contains(key).then(set).flatten(),
            });
        }
    }
    out
}

fn quoted(host: &str) -> String {
    format!("\"{host}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctrconfig::ConfigToml;

    fn facts(text: &str) -> ConfigFacts {
        ConfigToml::parse(text).unwrap().facts().clone()
    }

    const CRI: &str = "plugins.\"io.containerd.grpc.v1.cri\".registry";

    #[test]
    fn a_1x_import_that_replaces_the_cri_section_loses_config_path() {
        let file = facts(&format!(
            "version = 2\nimports = [\"/etc/containerd/conf.d/mirror.toml\"]\n[{CRI}]\n  config_path = \"/etc/containerd/certs.d\"\n"
        ));
        let dumped = facts(&format!(
            "version = 2\n[{CRI}]\n  config_path = \"\"\n[{CRI}.mirrors.\"r.test:5000\"]\n  endpoint = [\"https://m.test\"]\n"
        ));
        let d = differences(&file, &dumped);
        assert_eq!(d.len(), 2, "{d:#?}");
        assert_eq!(d[0].setting, "config_path");
        assert_eq!(d[0].effective, None);
        let imports = ["/etc/containerd/conf.d/mirror.toml".to_string()];
        assert!(
            d[0].describe(&imports).contains("containerd does not use it: the imported /etc/containerd/conf.d/mirror.toml replaced it"),
            "{}",
            d[0].describe(&imports)
        );
        assert_eq!(d[1].setting, "mirrors.\"r.test:5000\"");
        assert_eq!(
            (d[1].in_file.as_deref(), d[1].effective.as_deref()),
            (None, Some("set"))
        );
        assert!(
            d[1].describe(&imports)
                .contains("which config.toml does not set")
        );
    }

    #[test]
    fn the_same_settings_written_differently_do_not_differ() {
        let file = facts(&format!("version = 2\n[{CRI}]\n  config_path = \"/c\"\n"));
        let dumped = facts(&format!(
            "version = 2\nroot = \"/var/lib/containerd\"\n[{CRI}]\n  config_path = '/c'\n  [{CRI}.mirrors]\n"
        ));
        assert_eq!(differences(&file, &dumped), []);
    }
}
