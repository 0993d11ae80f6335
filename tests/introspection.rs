//! What containerd really loaded, from its Introspection service, against real
//! containerd 1.6 / 1.7 / 2.1: a CRI plugin stopped by the runbook's edit is reported
//! with containerd's own init error (status, diagnose, and the restart ctrdiag makes),
//! and deprecated registry settings appear as findings on the versions that report
//! deprecations (1.6.25+, 1.7.9+, 2.x; the lab's 1.6.20 does not).

#[macro_use]
mod lab;

use lab::certs::CertKind;
use lab::containerd::{LabConfig, LabContainerd, Version};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind};
use lab::systemd::{Bus, FakeSystemd};

per_version!(
    a_cri_plugin_stopped_by_the_runbooks_edit_is_reported_with_its_init_error,
    legacy_mirrors_are_reported_as_containerd_reports_them,
);

/// containerd's CRI refuses `mirrors` next to `config_path` on every version (LAB.md).
fn runbook_mirror(version: Version, host: &str) -> String {
    let table = lab::containerd::cri_registry_table(version);
    format!("[{table}.mirrors.\"{host}\"]\n  endpoint = [\"https://{host}\"]\n")
}

/// The entry of `list` (findings, `loaded`) with `cause`, or a panic showing `all`.
fn with_cause<'a>(
    list: &'a serde_json::Value,
    cause: &str,
    all: &serde_json::Value,
) -> &'a serde_json::Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|f| f["cause"] == cause)
        .unwrap_or_else(|| panic!("no {cause} in {all:#}"))
}

/// The `loaded` entries of `status -o json`.
async fn loaded(daemon: &Daemon) -> Vec<serde_json::Value> {
    let status = daemon.cli(&["-o", "json", "status"]).await.json();
    status["containerd"]["loaded"].as_array().unwrap().clone()
}

async fn a_cri_plugin_stopped_by_the_runbooks_edit_is_reported_with_its_init_error(
    version: Version,
) {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start_with(
        version,
        LabConfig {
            extra: runbook_mirror(version, &registry.host),
            wait_for_cri: false,
            ..Default::default()
        },
    )
    .await;
    let daemon = Daemon::start(&ctr).await;

    let status = daemon.cli(&["-o", "json", "status"]).await;
    assert_eq!(status.code, 1, "unhealthy: {status:?}");
    let status = status.json();
    let c = &status["containerd"];
    assert_eq!(c["cri_ready"], false, "{c:#}");
    let error = c["error"].as_str().unwrap();
    assert!(
        error.contains("failed to load") && error.contains("config_path"),
        "containerd's own reason, not `unknown service`: {error}"
    );
    let cri = with_cause(&c["loaded"], "cri_unavailable", c);
    assert!(
        cri["message"].as_str().unwrap().contains("mirrors"),
        "{cri:#}"
    );

    let d = daemon
        .cli(&["-o", "json", "diagnose", &registry.image_ref()])
        .await;
    assert_eq!(d.code, 1, "{d:?}");
    let d = d.json();
    let finding = with_cause(&d["findings"], "cri_unavailable", &d);
    assert!(
        finding["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["label"] == "containerd's Introspection"
                && e["value"].as_str().unwrap().contains("config_path")),
        "{finding:#}"
    );
}

async fn legacy_mirrors_are_reported_as_containerd_reports_them(version: Version) {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start_with(
        version,
        LabConfig {
            config_path: false,
            extra: runbook_mirror(version, &registry.host),
            ..Default::default()
        },
    )
    .await;
    let daemon = Daemon::start(&ctr).await;
    let loaded = loaded(&daemon).await;
    let mirrors = loaded.iter().find(|f| {
        f["message"]
            .as_str()
            .unwrap()
            .contains("cri-registry-mirrors")
    });
    if version == Version::V1_6 {
        assert!(
            loaded.is_empty(),
            "1.6.20 reports no deprecations (they came in 1.6.25): {loaded:#?}"
        );
        return;
    }
    let mirrors = mirrors.unwrap_or_else(|| panic!("{loaded:#?}"));
    assert_eq!(mirrors["cause"], "config_deprecated");
    assert!(
        mirrors["remedy"]
            .as_str()
            .unwrap()
            .contains("ctrdiag fix REGISTRY --ca FILE"),
        "{mirrors:#}"
    );
    // diagnose adds containerd's word to the finding read from config.toml.
    let d = daemon
        .cli(&["-o", "json", "diagnose", &registry.host])
        .await
        .json();
    let legacy = with_cause(&d["findings"], "config_deprecated", &d);
    assert!(
        legacy.to_string().contains("cri-registry-mirrors"),
        "{legacy:#}"
    );
}

#[tokio::test]
async fn a_restart_into_a_config_cri_refuses_fails_with_containerds_reason() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    let bus = Bus::start();
    let daemon = Daemon::start_with(&ctr, &format!("dbus_address = \"{}\"\n", bus.address)).await;
    // The operator's edit, made by hand while containerd runs.
    let mut config = std::fs::read_to_string(&ctr.config_file).unwrap();
    config.push_str(&runbook_mirror(Version::V2_1, &registry.host));
    std::fs::write(&ctr.config_file, config).unwrap();
    let _fake = FakeSystemd::serve(&bus, ctr).await;

    let run = daemon.cli(&["restart-containerd"]).await;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("restarted without its CRI plugin")
            && run
                .stderr
                .contains("io.containerd.cri.v1.images failed to load")
            && run
                .stderr
                .contains("`mirrors` cannot be set when `config_path` is provided"),
        "containerd's reason, at once rather than after the health timeout: {run:?}"
    );
}
