//! Changes interrupted by SIGKILL, damaged change records, and an interrupted change
//! that cannot be undone: the real daemon never loses track, never blocks on one bad
//! record, and refuses changes (not reads) while the node's state is uncertain.

#[macro_use]
mod lab;

use std::os::unix::process::ExitStatusExt;

use lab::certs::CertKind;
use lab::containerd::{LabConfig, LabContainerd, Version};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind};
use lab::systemd::{Bus, FakeSystemd};
use serde_json::Value;

/// `nobody:nogroup`: a read-only caller.
const READER: (u32, u32) = (65534, 65534);

struct Node {
    registry: Registry,
    daemon: Daemon,
    certs_d: std::path::PathBuf,
    _fake: FakeSystemd,
    _bus: Bus,
}

async fn node(env: &[(&str, &str)]) -> Node {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start_with(Version::V2_1, LabConfig::default()).await;
    let bus = Bus::start();
    let settings = format!("dbus_address = \"{}\"\n", bus.address);
    let daemon = Daemon::start_with_env(&ctr, &settings, env).await;
    let certs_d = ctr.certs_d.clone();
    let fake = FakeSystemd::serve(&bus, ctr).await;
    Node {
        registry,
        daemon,
        certs_d,
        _fake: fake,
        _bus: bus,
    }
}

impl Node {
    fn ca(&self) -> String {
        self.registry
            .tls
            .as_ref()
            .unwrap()
            .ca_path
            .display()
            .to_string()
    }

    async fn changes(&self) -> Vec<Value> {
        let run = self.daemon.cli(&["-o", "json", "changes"]).await;
        assert_eq!(run.code, 0, "{run:?}");
        run.json()["changes"].as_array().unwrap().clone()
    }

    async fn pulls(&self) -> bool {
        let run = self
            .daemon
            .cli(&["-o", "json", "pull", &self.registry.image_ref()])
            .await;
        run.code == 0
    }

    fn hosts_toml(&self) -> std::path::PathBuf {
        self.certs_d.join(&self.registry.host).join("hosts.toml")
    }

    fn change_dir(&self, id: &str) -> std::path::PathBuf {
        self.daemon.dir().join("state/changes").join(id)
    }
}

#[tokio::test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (scripts/test.sh sets it)"
)]
async fn a_kill_inside_a_rollback_is_undone_and_the_change_stays_applied() {
    let mut node = node(&[("CTRDIAG_FAILPOINT", "rollback:done:0")]).await;
    let image = node.registry.image_ref();
    let fix = node
        .daemon
        .cli(&["-o", "json", "fix", &image, "--ca", &node.ca()])
        .await;
    assert_eq!(fix.code, 0, "{fix:?}");
    let id = fix.json()["change_id"].as_str().unwrap().to_string();
    let fixed = std::fs::read_to_string(node.hosts_toml()).unwrap();

    let rollback = node.daemon.cli(&["rollback", &id]).await;
    assert_ne!(rollback.code, 0, "{rollback:?}");
    let status = node.daemon.wait_exit().expect("killed");
    assert_eq!(status.signal(), Some(9), "{status:?}");

    node.daemon.restart().await;
    let changes = node.changes().await;
    assert_eq!(changes[0]["id"], id.as_str());
    assert_eq!(changes[0]["state"], "applied", "{changes:#?}");
    assert_eq!(changes[1]["state"], "rolled_back", "{changes:#?}");
    assert!(
        changes[1]["reason"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );
    assert_eq!(std::fs::read_to_string(node.hosts_toml()).unwrap(), fixed);
    assert!(node.pulls().await, "the fix is in place again");
    // And the rollback can simply be asked for again.
    let again = node.daemon.cli(&["rollback", &id]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(!node.pulls().await);
}

#[tokio::test]
async fn a_damaged_record_is_listed_and_stops_nothing_else() {
    let mut node = node(&[]).await;
    let image = node.registry.image_ref();
    let first = node
        .daemon
        .cli(&["-o", "json", "fix", &image, "--ca", &node.ca()])
        .await;
    assert_eq!(first.code, 0, "{first:?}");
    let damaged = first.json()["change_id"].as_str().unwrap().to_string();
    let second = node
        .daemon
        .cli(&["-o", "json", "fix", &image, "--insecure-skip-verify"])
        .await;
    assert_eq!(second.code, 0, "{second:?}");
    let good = second.json()["change_id"].as_str().unwrap().to_string();
    // A disk error (or a hand edit) garbles the first change's journal mid-file.
    let journal = node.change_dir(&damaged).join("journal.jsonl");
    let text = std::fs::read_to_string(&journal).unwrap();
    std::fs::write(&journal, format!("{{\"event\":\"bac\u{0}\n{text}")).unwrap();

    node.daemon.restart().await;
    let changes = node.changes().await;
    let entry = changes
        .iter()
        .find(|c| c["id"] == damaged.as_str())
        .unwrap();
    assert_eq!(entry["state"], "damaged", "{changes:#?}");
    assert!(
        entry["reason"].as_str().unwrap().contains("line 1"),
        "{entry}"
    );
    let table = node.daemon.cli(&["changes"]).await;
    assert!(table.stdout.contains("DAMAGED"), "{table:?}");
    let status = node.daemon.cli(&["-o", "json", "status"]).await;
    assert_eq!(
        status.json()["changes"]["damaged"],
        serde_json::json!([damaged])
    );

    let refused = node.daemon.cli(&["rollback", &damaged]).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("damaged"), "{refused:?}");
    let rollback = node.daemon.cli(&["-o", "json", "rollback"]).await;
    assert_eq!(rollback.code, 0, "{rollback:?}");
    assert_eq!(rollback.json()["target_id"], good.as_str());
}

/// Killed after writing hosts.toml; then someone edits that file before the next
/// start, so the undo would overwrite their edit: it refuses, and every change waits
/// (reads go on) until the file is dealt with.
#[tokio::test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (scripts/test.sh sets it)"
)]
async fn an_interrupted_change_that_cannot_be_undone_blocks_changes_but_not_reads() {
    let mut node = node(&[("CTRDIAG_FAILPOINT", "fix:done:1")]).await;
    let image = node.registry.image_ref();
    let fix = node.daemon.cli(&["fix", &image, "--ca", &node.ca()]).await;
    assert_ne!(fix.code, 0, "{fix:?}");
    assert_eq!(node.daemon.wait_exit().and_then(|s| s.signal()), Some(9));
    let hosts = node.hosts_toml();
    let theirs = format!(
        "{}# edited by someone\n",
        std::fs::read_to_string(&hosts).unwrap()
    );
    std::fs::write(&hosts, &theirs).unwrap();

    node.daemon.restart().await;
    let status = node.daemon.cli(&["-o", "json", "status"]).await;
    let pending = &status.json()["changes"]["recovery_pending"];
    let id = pending["change_id"]
        .as_str()
        .expect("a pending change")
        .to_string();
    assert!(
        pending["reason"]
            .as_str()
            .unwrap()
            .contains("no longer holds"),
        "{pending}"
    );
    let table = node.daemon.cli(&["status"]).await;
    assert!(table.stdout.contains("CHANGES BLOCKED"), "{table:?}");

    let dry = node
        .daemon
        .cli(&["fix", &image, "--ca", &node.ca(), "--dry-run"])
        .await;
    assert_eq!(dry.code, 1, "a dry run says it would be refused: {dry:?}");
    assert!(dry.stderr.contains(&id), "{dry:?}");
    let refused = node.daemon.cli(&["fix", &image, "--ca", &node.ca()]).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains(&id),
        "names the change: {refused:?}"
    );
    assert!(
        refused.stderr.contains("by hand"),
        "says what to do: {refused:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&hosts).unwrap(),
        theirs,
        "their edit stays"
    );
    let read = node
        .daemon
        .cli_as(READER.0, READER.1, &["-o", "json", "pull", &image])
        .await;
    // Reads still answer (and the half-applied CA is what makes this pull work).
    assert_eq!(read.code, 0, "{read:?}");

    // They take their file away; the next change undoes the old one first, then runs.
    std::fs::remove_file(&hosts).unwrap();
    let fix = node
        .daemon
        .cli(&["-o", "json", "fix", &image, "--ca", &node.ca()])
        .await;
    assert_eq!(fix.code, 0, "{fix:?}\n{}", node.daemon.log());
    let changes = node.changes().await;
    assert_eq!(changes[0]["state"], "rolled_back", "{changes:#?}");
    assert!(node.pulls().await);
    let status = node.daemon.cli(&["-o", "json", "status"]).await;
    assert!(status.json()["changes"]["recovery_pending"].is_null());
}

/// SIGTERM while a fix is in its verifying pull: the daemon takes no new work, lets
/// the change finish (it is recorded as applied, not interrupted), and only then
/// reports STOPPING and exits cleanly.
#[tokio::test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (scripts/test.sh sets it)"
)]
async fn sigterm_lets_an_apply_in_flight_finish_before_stopping() {
    let pause = lab::scratch_dir("pause-");
    let failpoint = format!("pause:test_pull_cleanup:{}", pause.path().display());
    let mut node = node(&[("CTRDIAG_FAILPOINT", &failpoint)]).await;
    let image = node.registry.image_ref();
    let ca = node.ca();
    let fix = {
        let args = ["-o", "json", "fix", image.as_str(), "--ca", ca.as_str()].map(String::from);
        let socket = node.daemon.socket.clone();
        tokio::spawn(async move {
            tokio::process::Command::new(lab::daemon::CLI)
                .arg("--socket")
                .arg(socket)
                .args(&args)
                .output()
                .await
                .expect("run ctrdiag")
        })
    };
    let paused = pause.path().join("test_pull_cleanup.paused");
    lab::wait_for(
        "the fix to reach its verifying pull",
        std::time::Duration::from_secs(30),
        || {
            let p = paused.clone();
            async move { p.exists().then_some(()) }
        },
    )
    .await;
    node.daemon.send_sigterm();
    std::fs::write(pause.path().join("test_pull_cleanup.go"), b"").unwrap();

    let out = fix.await.unwrap();
    let result: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the fix answered ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            node.daemon.log()
        )
    });
    assert_eq!(result["ok"], true, "{result}");
    let id = result["change_id"].as_str().unwrap().to_string();
    let stopping = node
        .daemon
        .next_notification(std::time::Duration::from_secs(30))
        .await;
    assert!(stopping.contains("STOPPING=1"), "{stopping}");
    let status = node.daemon.wait_exit().expect("exited");
    assert!(status.success(), "{status:?}\n{}", node.daemon.log());
    let journal = std::fs::read_to_string(node.change_dir(&id).join("journal.jsonl")).unwrap();
    assert!(
        journal.trim_end().ends_with("{\"event\":\"applied\"}"),
        "the change finished: {journal}"
    );
}
