//! A restart done by the operator (`fix --restart=manual`), against real containerd
//! 1.6 / 1.7 / 2.1 on a node where ctrdiag has no unit manager (its `dbus_address`
//! points at nothing): ctrdiag writes the files, says what to run and waits; the test
//! restarts the lab containerd as the operator would; ctrdiag sees the new instance,
//! proves the change with its pull, or undoes it and says what containerd still runs.
//! Also: giving up when no restart comes, and `ctrdiag rollback ID` ending the wait.

#[macro_use]
mod lab;

use std::time::Duration;

use serde_json::Value;

use lab::certs::CertKind;
use lab::containerd::{LabConfig, LabContainerd, Version};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind};

per_version!(
    a_manual_restart_is_awaited_then_the_fix_is_proven,
    a_manual_restart_whose_pull_fails_is_undone_and_says_containerd_must_restart_again,
);

/// The lab: a registry with a private CA, a containerd without `config_path` (so the
/// CA fix must edit config.toml and restart containerd), and a daemon with no bus.
struct Node {
    registry: Registry,
    ctr: LabContainerd,
    daemon: Daemon,
    _no_bus: tempfile::TempDir,
}

async fn node(version: Version, settings: &str) -> Node {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start_with(
        version,
        LabConfig {
            config_path: false,
            ..Default::default()
        },
    )
    .await;
    let no_bus = lab::scratch_dir("no-bus");
    let settings = format!(
        "dbus_address = \"unix:path={}\"\n{settings}",
        no_bus.path().join("system_bus_socket").display()
    );
    let daemon = Daemon::start_with(&ctr, &settings).await;
    Node {
        registry,
        ctr,
        daemon,
        _no_bus: no_bus,
    }
}

impl Node {
    /// `ctrdiag -o json fix IMAGE --ca CA --restart manual`, running in the background.
    fn start_fix(&self) -> tokio::task::JoinHandle<(i32, Value, String)> {
        let ca = self.registry.tls.as_ref().unwrap().ca_path.clone();
        let mut cmd = tokio::process::Command::new(lab::daemon::CLI);
        cmd.arg("--socket")
            .arg(&self.daemon.socket)
            .args(["-o", "json", "fix", &self.registry.image_ref(), "--ca"])
            .arg(ca)
            .args(["--restart", "manual"]);
        tokio::spawn(async move {
            let out = cmd.output().await.expect("run ctrdiag fix");
            let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            (out.status.code().unwrap_or(-1), json, stderr)
        })
    }

    async fn changes(&self) -> Value {
        self.daemon.cli(&["-o", "json", "changes"]).await.json()["changes"].clone()
    }

    /// Waits until `ctrdiag changes` shows a change waiting for the restart; returns it.
    async fn awaiting(&self) -> Value {
        lab::wait_for(
            "the change to wait for the restart",
            Duration::from_secs(60),
            || async {
                let changes = self.changes().await;
                changes
                    .as_array()?
                    .iter()
                    .find(|c| c["state"] == "awaiting_restart")
                    .cloned()
            },
        )
        .await
    }

    fn config(&self) -> String {
        std::fs::read_to_string(&self.ctr.config_file).unwrap()
    }

    /// Every directory and file under certs.d.
    fn certs_d(&self) -> Vec<std::path::PathBuf> {
        walk(&self.ctr.certs_d)
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        found.push(entry.path());
        if entry.path().is_dir() {
            found.extend(walk(&entry.path()));
        }
    }
    found.sort();
    found
}

fn state_of<'a>(change: &'a Value, file_suffix: &str) -> &'a str {
    change["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"].as_str().unwrap().ends_with(file_suffix))
        .and_then(|f| f["state"].as_str())
        .unwrap_or_else(|| panic!("no file {file_suffix} in {change:#}"))
}

async fn a_manual_restart_is_awaited_then_the_fix_is_proven(version: Version) {
    let mut node = node(version, "").await;
    let config_before = node.config();
    let pid_before = node.ctr.pid();
    let fix = node.start_fix();

    let waiting = node.awaiting().await;
    assert_eq!(
        waiting["restart_command"], "systemctl restart containerd.service",
        "{waiting:#}"
    );
    assert!(waiting["waiting_until"].is_string(), "{waiting:#}");
    assert_ne!(node.config(), config_before, "the files are written first");
    assert_eq!(state_of(&waiting, "config.toml"), "changed", "{waiting:#}");
    assert_eq!(
        node.ctr.pid(),
        pid_before,
        "ctrdiag restarted nothing itself"
    );
    assert!(!fix.is_finished(), "the fix waits for the restart");

    node.ctr.restart().await;
    let (code, result, stderr) = fix.await.unwrap();
    assert_eq!(code, 0, "{result:#}\n{stderr}\n{}", node.daemon.log());
    assert_eq!(
        (&result["executed"], &result["ok"]),
        (&true.into(), &true.into()),
        "{result:#}"
    );
    assert_eq!(result["verify"]["ok"], true, "{result:#}");
    assert_eq!(
        result["awaited_restart"]["command"], "systemctl restart containerd.service",
        "{result:#}"
    );
    let changes = node.changes().await;
    assert_eq!(changes[0]["state"], "applied", "{changes:#}");
    node.ctr
        .cri_pull(&node.registry.image_ref())
        .await
        .expect("the node pulls through CRI after the fix");
}

async fn a_manual_restart_whose_pull_fails_is_undone_and_says_containerd_must_restart_again(
    version: Version,
) {
    let mut node = node(version, "").await;
    let config_before = node.config();
    let fix = node.start_fix();
    node.awaiting().await;

    // The registry goes away before the operator restarts: the verifying pull fails.
    node.registry.stop();
    node.ctr.restart().await;
    let (code, result, stderr) = fix.await.unwrap();
    assert_eq!(code, 1, "{result:#}\n{stderr}");
    assert_eq!(
        (&result["executed"], &result["ok"]),
        (&true.into(), &false.into()),
        "{result:#}"
    );
    let reason = result["reason"].as_str().unwrap();
    assert!(
        reason.contains("the verification pull still fails")
            && reason.contains("the files are back to their previous bytes")
            && reason.contains("run `systemctl restart containerd.service`"),
        "{reason}"
    );
    assert_eq!(
        node.config(),
        config_before,
        "config.toml has its old bytes"
    );
    assert_eq!(
        node.certs_d(),
        Vec::<std::path::PathBuf>::new(),
        "no hosts directory left"
    );
    let changes = node.changes().await;
    assert_eq!(changes[0]["state"], "rolled_back", "{changes:#}");
    assert_eq!(state_of(&changes[0], "config.toml"), "previous");
}

#[tokio::test]
async fn without_a_restart_the_change_is_undone_when_the_wait_ends() {
    let node = node(Version::V2_1, "manual_restart_wait_secs = 2\n").await;
    let config_before = node.config();
    let pid_before = node.ctr.pid();
    let (code, result, stderr) = node.start_fix().await.unwrap();
    assert_eq!(code, 1, "{result:#}\n{stderr}");
    let reason = result["reason"].as_str().unwrap();
    assert!(
        reason.contains("did not restart within 2s")
            && reason.contains("containerd was not restarted: it never loaded the change"),
        "{reason}"
    );
    assert_eq!(node.config(), config_before);
    assert_eq!(node.certs_d(), Vec::<std::path::PathBuf>::new());
    assert_eq!(node.ctr.pid(), pid_before);
}

#[tokio::test]
async fn rollback_of_a_waiting_change_ends_the_wait_and_undoes_it() {
    let node = node(Version::V1_7, "").await;
    let config_before = node.config();
    let fix = node.start_fix();
    let waiting = node.awaiting().await;
    let id = waiting["id"].as_str().unwrap();

    let rollback = node.daemon.cli(&["-o", "json", "rollback", id]).await;
    assert_eq!(rollback.code, 0, "{rollback:?}");
    let r = rollback.json();
    assert_eq!(r["finished_undo"], true, "{r:#}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("ended by `ctrdiag rollback`"),
        "{r:#}"
    );
    let (code, result, _) = fix.await.unwrap();
    assert_eq!((code, &result["ok"]), (1, &false.into()), "{result:#}");
    assert_eq!(node.config(), config_before);
    assert_eq!(node.certs_d(), Vec::<std::path::PathBuf>::new());
    assert_eq!(node.changes().await[0]["state"], "rolled_back");
}
