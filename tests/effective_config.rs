//! `diagnose` with `containerd_bin`: the configuration the real containerd binary
//! computes (`config dump`) against config.toml, on 1.6 / 1.7 / 2.1. An import that sets
//! a mirror is named; on 1.x it also wipes config.toml's `config_path` (1.x merges an
//! import per plugin section), which only containerd's own merge shows.

#[macro_use]
mod lab;

use lab::containerd::{LabConfig, LabContainerd, Version};
use lab::daemon::Daemon;

per_version!(an_import_that_sets_a_mirror_is_named_and_what_it_replaces_is_shown);

async fn an_import_that_sets_a_mirror_is_named_and_what_it_replaces_is_shown(version: Version) {
    let dir = lab::scratch_dir("imports");
    let import = dir.path().join("mirror.toml");
    let (file_version, table) = if version.is_2x() {
        (3, lab::containerd::cri_registry_table(Version::V2_1))
    } else {
        (2, lab::containerd::cri_registry_table(Version::V1_7))
    };
    std::fs::write(
        &import,
        format!(
            "version = {file_version}\n[{table}.mirrors.\"mirror-me.test:5000\"]\n  endpoint = [\"https://m.test\"]\n"
        ),
    )
    .unwrap();
    let ctr = LabContainerd::start_with(
        version,
        LabConfig {
            top_level: format!("imports = [\"{}\"]\n", import.display()),
            // 2.x refuses mirrors next to config_path; 1.x never sees the config_path.
            wait_for_cri: false,
            ..Default::default()
        },
    )
    .await;
    let daemon = Daemon::start_with(
        &ctr,
        &format!("containerd_bin = \"{}\"\n", version.binary().display()),
    )
    .await;
    let d = daemon
        .cli(&["-o", "json", "diagnose", "mirror-me.test:5000"])
        .await
        .json();
    let summaries: Vec<&str> = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["cause"] == "config_ignored")
        .map(|f| f["summary"].as_str().unwrap())
        .collect();
    let import_name = import.display().to_string();
    let mirror = summaries
        .iter()
        .find(|s| s.contains("mirrors.\"mirror-me.test:5000\""))
        .unwrap_or_else(|| panic!("{d:#}"));
    assert!(
        mirror.contains("which config.toml does not set") && mirror.contains(&import_name),
        "{mirror}"
    );
    let lost = summaries
        .iter()
        .find(|s| s.starts_with("config.toml sets config_path"));
    if version.is_2x() {
        assert_eq!(lost, None, "2.x merges the import: {summaries:#?}");
    } else {
        let lost = lost.unwrap_or_else(|| panic!("{summaries:#?}"));
        assert!(
            lost.contains("containerd does not use it") && lost.contains(&import_name),
            "{lost}"
        );
    }
    assert!(
        d["tried"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().contains("config dump`")),
        "{d:#}"
    );
}
