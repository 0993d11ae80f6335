//! A node where ctrdiag cannot reach systemd's bus (a pod without the host's bus, k3s,
//! OpenRC): a fix that needs a restart fails at the restart, and its undo puts the
//! files back without trying a restart that never happened (containerd kept running on
//! the old files), so the change ends rolled back, not "UNDO FAILED".

#[macro_use]
mod lab;

use lab::certs::CertKind;
use lab::containerd::{LabConfig, LabContainerd, Version};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind};

per_version!(a_restart_that_never_happened_is_not_repeated_by_the_undo);

async fn a_restart_that_never_happened_is_not_repeated_by_the_undo(version: Version) {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    // No config_path: the fix must set it, which needs a restart.
    let ctr = LabContainerd::start_with(
        version,
        LabConfig {
            config_path: false,
            ..Default::default()
        },
    )
    .await;
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
    let pid_before = ctr.pid();
    let ca = registry.tls.as_ref().unwrap().ca_path.display().to_string();

    let fix = daemon
        .cli(&["-o", "json", "fix", &registry.image_ref(), "--ca", &ca])
        .await;
    assert_eq!(fix.code, 1, "{fix:?}\n{}", daemon.log());
    let f = fix.json();
    assert_eq!(
        (&f["executed"], &f["ok"]),
        (&true.into(), &false.into()),
        "{f}"
    );
    assert!(
        f["reason"]
            .as_str()
            .unwrap()
            .contains("cannot connect to D-Bus"),
        "the restart is what failed: {f}"
    );
    assert_eq!(
        std::fs::read(&ctr.config_file).unwrap(),
        config_before,
        "config.toml has its previous bytes again"
    );
    assert_eq!(ctr.pid(), pid_before, "containerd was never restarted");
    let left: Vec<_> = std::fs::read_dir(&ctr.certs_d)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "the directories the change made are gone: {left:?}"
    );
    let changes = daemon.cli(&["-o", "json", "changes"]).await.json();
    assert_eq!(changes["changes"][0]["state"], "rolled_back", "{changes:#}");
}
