//! Nodes where ctrdiag cannot restart containerd, against real containerd 1.6 / 1.7 /
//! 2.1: with systemd's bus out of reach (a pod without the host's bus, k3s, OpenRC) a
//! fix that needs a restart is refused before its first write, in the dry run too;
//! when the unit manager answers but refuses the restart itself, the undo puts the
//! files back without repeating a restart that never happened, and removes the
//! directories the change made.

#[macro_use]
mod lab;

use lab::certs::CertKind;
use lab::containerd::{LabConfig, LabContainerd, Version};
use lab::daemon::{CliRun, Daemon};
use lab::registry::{Registry, RegistryKind};
use lab::systemd::{Bus, FakeSystemd, RestartBehaviour};

per_version!(
    a_fix_needing_a_restart_is_refused_before_writing_without_the_bus,
    a_restart_the_unit_manager_refused_is_not_repeated_by_the_undo,
);

/// A lab containerd without `config_path`: a CA fix must set it, which needs a restart.
async fn without_config_path(version: Version) -> LabContainerd {
    LabContainerd::start_with(
        version,
        LabConfig {
            config_path: false,
            ..Default::default()
        },
    )
    .await
}

async fn fix(daemon: &Daemon, registry: &Registry, extra: &[&str]) -> CliRun {
    let ca = registry.tls.as_ref().unwrap().ca_path.display().to_string();
    let image = registry.image_ref();
    let mut args = vec!["-o", "json", "fix", image.as_str(), "--ca", ca.as_str()];
    args.extend_from_slice(extra);
    daemon.cli(&args).await
}

/// Nothing under `dir` (or no `dir` at all).
fn entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

async fn a_fix_needing_a_restart_is_refused_before_writing_without_the_bus(version: Version) {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = without_config_path(version).await;
    let nowhere = lab::scratch_dir("no-bus");
    let daemon = Daemon::start_with(
        &ctr,
        &format!(
            "dbus_address = \"unix:path={}\"\n",
            nowhere.path().join("system_bus_socket").display()
        ),
    )
    .await;
    let config_before = std::fs::read(&ctr.config_file).unwrap();

    for extra in [&["--dry-run"][..], &[]] {
        let run = fix(&daemon, &registry, extra).await;
        assert_eq!(run.code, 1, "{extra:?}: {run:?}");
        let f = run.json();
        assert_eq!(f["executed"], false, "{f}");
        let preflight = f["plan"]["preflight"].to_string();
        assert!(
            preflight.contains("restarts containerd.service")
                && preflight.contains("cannot connect to D-Bus"),
            "{f}"
        );
        assert!(
            f["plan"]["trial"].is_null(),
            "no trial for a plan that cannot finish: {f}"
        );
    }
    assert_eq!(std::fs::read(&ctr.config_file).unwrap(), config_before);
    assert_eq!(entries(&ctr.certs_d), Vec::<std::path::PathBuf>::new());
    let changes = daemon.cli(&["-o", "json", "changes"]).await.json();
    assert_eq!(
        changes["changes"],
        serde_json::json!([]),
        "no change recorded"
    );
}

async fn a_restart_the_unit_manager_refused_is_not_repeated_by_the_undo(version: Version) {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = without_config_path(version).await;
    let bus = Bus::start();
    let daemon = Daemon::start_with(&ctr, &format!("dbus_address = \"{}\"\n", bus.address)).await;
    let (config_file, certs_d, pid_before) =
        (ctr.config_file.clone(), ctr.certs_d.clone(), ctr.pid());
    let config_before = std::fs::read(&config_file).unwrap();
    let fake = FakeSystemd::serve(&bus, ctr).await;
    fake.set_behaviour(RestartBehaviour::Refuse).await;

    let run = fix(&daemon, &registry, &[]).await;
    assert_eq!(run.code, 1, "{run:?}\n{}", daemon.log());
    let f = run.json();
    assert_eq!(
        (&f["executed"], &f["ok"]),
        (&true.into(), &false.into()),
        "{f}"
    );
    assert!(
        f["reason"].as_str().unwrap().contains("Access denied"),
        "{f}"
    );
    assert_eq!(
        std::fs::read(&config_file).unwrap(),
        config_before,
        "config.toml has its previous bytes again"
    );
    assert_eq!(
        fake.containerd.lock().await.pid(),
        pid_before,
        "never restarted"
    );
    assert_eq!(fake.restarts.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(
        entries(&certs_d),
        Vec::<std::path::PathBuf>::new(),
        "no empty directory left"
    );
    let changes = daemon.cli(&["-o", "json", "changes"]).await.json();
    assert_eq!(changes["changes"][0]["state"], "rolled_back", "{changes:#}");
}

#[tokio::test]
async fn a_unit_systemd_does_not_have_is_refused_before_writing_and_named() {
    // containerd runs inside k3s.service on a k3s node; this node has no such unit.
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = without_config_path(Version::V2_1).await;
    let bus = Bus::start();
    let daemon = Daemon::start_with(
        &ctr,
        &format!(
            "dbus_address = \"{}\"\ncontainerd_unit = \"k3s.service\"\n",
            bus.address
        ),
    )
    .await;
    let (config_file, certs_d) = (ctr.config_file.clone(), ctr.certs_d.clone());
    let config_before = std::fs::read(&config_file).unwrap();
    let _fake = FakeSystemd::serve(&bus, ctr).await;

    let run = fix(&daemon, &registry, &[]).await;
    assert_eq!(run.code, 1, "{run:?}");
    let f = run.json();
    assert_eq!(f["executed"], false, "{f}");
    assert!(
        f["plan"]["preflight"]
            .to_string()
            .contains("k3s.service, which systemd has as \\\"not-found\\\""),
        "{f}"
    );
    assert_eq!(std::fs::read(&config_file).unwrap(), config_before);
    assert_eq!(entries(&certs_d), Vec::<std::path::PathBuf>::new());
}
