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

/// An undo killed half-way, then a hand edit that makes the undo at the next start
/// refuse: the change stays interrupted, `changes` says what each file holds, a new
/// fix is refused naming it, and once the operator has dealt with the edited file
/// `ctrdiag rollback ID` finishes the undo, leaving no empty directory.
#[tokio::test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (scripts/test.sh sets it)"
)]
async fn an_interrupted_undo_is_finished_by_rollback_id() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = without_config_path(Version::V2_1).await;
    let bus = Bus::start();
    // Steps: 0 the CA, 1 hosts.toml, 2 config.toml, 3 the restart; the undo runs
    // 3, 2, 1, 0 and is killed once config.toml is back.
    let mut daemon = Daemon::start_with_env(
        &ctr,
        &format!("dbus_address = \"{}\"\n", bus.address),
        &[("CTRDIAG_FAILPOINT", "fix:undo:2")],
    )
    .await;
    let (config_file, certs_d) = (ctr.config_file.clone(), ctr.certs_d.clone());
    let config_before = std::fs::read(&config_file).unwrap();
    let fake = FakeSystemd::serve(&bus, ctr).await;
    fake.set_behaviour(RestartBehaviour::Refuse).await;

    let run = fix(&daemon, &registry, &[]).await;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(daemon.wait_exit().is_some(), "killed inside the undo");
    let host_dir = certs_d.join(&registry.host);
    let hosts_toml = host_dir.join("hosts.toml");
    let mut edited = std::fs::read_to_string(&hosts_toml).expect("hosts.toml not undone yet");
    edited.push_str("# an operator's edit\n");
    std::fs::write(&hosts_toml, &edited).unwrap();

    daemon.restart().await;
    let changes = daemon.cli(&["-o", "json", "changes"]).await.json();
    let change = &changes["changes"][0];
    assert_eq!(change["state"], "interrupted", "{changes:#}");
    let id = change["id"].as_str().unwrap().to_string();
    let state_of = |suffix: &str| {
        change["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"].as_str().unwrap().ends_with(suffix))
            .map(|f| f["state"].as_str().unwrap().to_string())
    };
    assert_eq!(state_of("config.toml").as_deref(), Some("previous"));
    assert_eq!(state_of("hosts.toml").as_deref(), Some("other"));
    assert_eq!(state_of("ctrdiag-ca.crt").as_deref(), Some("changed"));
    let table = daemon.cli(&["changes"]).await;
    assert!(
        table
            .stdout
            .contains(&format!("`ctrdiag rollback {id}` finishes its undo")),
        "{}",
        table.stdout
    );

    let again = fix(&daemon, &registry, &[]).await;
    assert_ne!(again.code, 0, "{again:?}");
    assert!(
        again
            .stderr
            .contains(&format!("while change {id} is interrupted")),
        "names the change in the way: {again:?}"
    );
    assert_eq!(
        daemon.cli(&["-o", "json", "changes"]).await.json()["changes"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "no second change recorded"
    );

    // The operator decides their edit is not needed and removes the file.
    std::fs::remove_file(&hosts_toml).unwrap();
    let rollback = daemon.cli(&["-o", "json", "rollback", &id]).await;
    assert_eq!(rollback.code, 0, "{rollback:?}\n{}", daemon.log());
    let r = rollback.json();
    assert_eq!(
        (&r["executed"], &r["ok"], &r["finished_undo"]),
        (&true.into(), &true.into(), &true.into()),
        "{r:#}"
    );
    assert_eq!(std::fs::read(&config_file).unwrap(), config_before);
    assert_eq!(
        entries(&certs_d),
        Vec::<std::path::PathBuf>::new(),
        "the CA is in the backup area and the host's directory is gone"
    );
    let changes = daemon.cli(&["-o", "json", "changes"]).await.json();
    assert_eq!(changes["changes"][0]["state"], "rolled_back", "{changes:#}");
    assert_eq!(fake.restarts.load(std::sync::atomic::Ordering::SeqCst), 0);
}
