//! Insecure settings with a time to live always end: against the real daemon, real
//! containerd, a real TLS registry and the stand-in systemd, with the daemon's clock
//! moved by the test (`CTRDIAG_TEST_CLOCK`), never waited for.

#[macro_use]
mod lab;

use std::time::Duration;

use lab::certs::CertKind;
use lab::clock::TestClock;
use lab::containerd::{LabConfig, LabContainerd, Version};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind};
use lab::systemd::{Bus, FakeSystemd};
use serde_json::Value;

const HOUR: u64 = 3600;

struct Node {
    registry: Registry,
    daemon: Daemon,
    clock: TestClock,
    certs_d: std::path::PathBuf,
    _fake: FakeSystemd,
    _bus: Bus,
}

async fn node(version: Version, failpoint: Option<&str>) -> Node {
    node_with(version, failpoint, "").await
}

async fn node_with(version: Version, failpoint: Option<&str>, settings: &str) -> Node {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start_with(version, LabConfig::default()).await;
    let bus = Bus::start();
    let clock = TestClock::new();
    let mut env = vec![clock.env()];
    if let Some(f) = failpoint {
        env.push(("CTRDIAG_FAILPOINT", f));
    }
    let settings = format!("dbus_address = \"{}\"\n{settings}", bus.address);
    let daemon = Daemon::start_with_env(&ctr, &settings, &env).await;
    let certs_d = ctr.certs_d.clone();
    let fake = FakeSystemd::serve(&bus, ctr).await;
    Node {
        registry,
        daemon,
        clock,
        certs_d,
        _fake: fake,
        _bus: bus,
    }
}

impl Node {
    /// `ctrdiag -o json fix IMAGE ARGS...`, which must succeed; the change id.
    async fn fix(&self, image: &str, args: &[&str]) -> String {
        let mut all = vec!["-o", "json", "fix", image];
        all.extend_from_slice(args);
        let run = self.daemon.cli(&all).await;
        assert_eq!(run.code, 0, "{run:?}\n{}", self.daemon.log());
        run.json()["change_id"].as_str().unwrap().to_string()
    }

    async fn pulls(&self, image: &str) -> bool {
        let run = self.daemon.cli(&["-o", "json", "pull", image]).await;
        assert!(run.code == 0 || run.code == 1, "{run:?}");
        run.code == 0
    }

    async fn changes(&self) -> Vec<Value> {
        let run = self.daemon.cli(&["-o", "json", "changes"]).await;
        assert_eq!(run.code, 0, "{run:?}");
        run.json()["changes"].as_array().unwrap().clone()
    }

    async fn change(&self, id: &str) -> Value {
        self.changes()
            .await
            .into_iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no change {id}"))
    }

    async fn status(&self) -> Value {
        self.daemon.cli(&["-o", "json", "status"]).await.json()
    }

    /// Waits until change `id` is in `state`.
    async fn wait_state(&self, id: &str, state: &str) {
        let what = format!("change {id} to be {state}");
        lab::wait_for(&what, Duration::from_secs(30), || async {
            (self.change(id).await["state"] == state).then_some(())
        })
        .await;
    }

    fn hosts_toml(&self, registry: &Registry) -> String {
        std::fs::read_to_string(self.certs_d.join(&registry.host).join("hosts.toml"))
            .unwrap_or_default()
    }
}

async fn a_time_to_live_ends_when_the_clock_passes_it(version: Version) {
    let node = node(version, None).await;
    let image = node.registry.image_ref();
    assert!(
        !node.pulls(&image).await,
        "the registry's CA is not trusted"
    );
    let id = node
        .fix(&image, &["--insecure-skip-verify", "--ttl", "1h"])
        .await;
    assert!(node.pulls(&image).await);
    let status = node.status().await;
    let insecure = &status["changes"]["insecure"];
    assert_eq!(insecure[0]["change_id"], id.as_str(), "{status}");
    assert_eq!(insecure[0]["overdue"], false, "{status}");

    node.clock.advance(HOUR + 1);
    node.wait_state(&id, "reverted").await;
    assert!(!node.pulls(&image).await, "verification is back on");
    let status = node.status().await;
    assert_eq!(
        status["changes"]["insecure"],
        serde_json::json!([]),
        "{status}"
    );
}

per_version!(a_time_to_live_ends_when_the_clock_passes_it);

#[tokio::test]
async fn the_same_insecure_fix_twice_ends_with_the_later_time_to_live() {
    let node = node(Version::V2_1, None).await;
    let image = node.registry.image_ref();
    let first = node
        .fix(&image, &["--insecure-skip-verify", "--ttl", "1h"])
        .await;
    let second = node
        .fix(&image, &["--insecure-skip-verify", "--ttl", "2h"])
        .await;
    node.clock.advance(HOUR + 1);
    // The first one's time is over, but the second keeps the setting: not overdue.
    let status = node.status().await;
    let insecure = status["changes"]["insecure"].as_array().unwrap();
    assert_eq!(insecure.len(), 2, "{status}");
    assert!(insecure.iter().all(|i| i["overdue"] == false), "{status}");

    node.clock.advance(HOUR);
    node.wait_state(&first, "reverted").await;
    node.wait_state(&second, "reverted").await;
    assert!(!node.pulls(&image).await, "verification is back on");
    assert!(
        !node
            .hosts_toml(&node.registry)
            .contains("skip_verify = true")
    );
}

#[tokio::test]
async fn a_ca_fix_after_an_insecure_fix_leaves_verification_on() {
    let node = node(Version::V2_1, None).await;
    let image = node.registry.image_ref();
    let insecure = node
        .fix(&image, &["--insecure-skip-verify", "--ttl", "1h"])
        .await;
    let ca = node
        .registry
        .tls
        .as_ref()
        .unwrap()
        .ca_path
        .display()
        .to_string();
    node.fix(&image, &["--ca", &ca]).await;
    let hosts = node.hosts_toml(&node.registry);
    assert!(!hosts.contains("skip_verify"), "{hosts}");
    assert!(node.pulls(&image).await, "the CA makes it pull");

    node.clock.advance(HOUR + 1);
    node.wait_state(&insecure, "expired").await;
    assert!(node.pulls(&image).await, "the CA fix stays");
}

#[tokio::test]
async fn the_end_of_a_time_to_live_keeps_a_later_edit_of_the_same_file() {
    let node = node(Version::V2_1, None).await;
    let image = node.registry.image_ref();
    let id = node
        .fix(&image, &["--insecure-skip-verify", "--ttl", "1h"])
        .await;
    let path = node.certs_d.join(&node.registry.host).join("hosts.toml");
    let edited = format!(
        "{}\n# an operator's note, kept\n",
        std::fs::read_to_string(&path).unwrap()
    );
    std::fs::write(&path, &edited).unwrap();

    node.clock.advance(HOUR + 1);
    node.wait_state(&id, "reverted").await;
    let now = std::fs::read_to_string(&path).unwrap();
    assert!(now.contains("# an operator's note, kept"), "{now}");
    assert!(!now.contains("skip_verify"), "{now}");
    let change = node.change(&id).await;
    let by = change["reverted_by"].as_str().unwrap().to_string();
    let end = node.change(&by).await;
    assert_eq!(end["reverts"], serde_json::json!([id]), "{end}");
    assert!(!node.pulls(&image).await);
}

#[tokio::test]
async fn rollback_never_turns_it_back_on_unasked_and_an_undone_end_gets_its_ttl_back() {
    let node = node(Version::V2_1, None).await;
    let image = node.registry.image_ref();
    let id = node
        .fix(&image, &["--insecure-skip-verify", "--ttl", "1h"])
        .await;
    let run = node.daemon.cli(&["-o", "json", "rollback"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(run.json()["target_id"], id.as_str());
    let rollback = run.json()["change_id"].as_str().unwrap().to_string();
    assert!(!node.pulls(&image).await);

    // Rolling back "the latest change" again must not undo the rollback.
    let again = node.daemon.cli(&["rollback"]).await;
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("no applied change"), "{again:?}");
    assert!(!node.pulls(&image).await);

    // Asked by id, it is re-applied, with its time to live again.
    node.clock.advance(600);
    let run = node
        .daemon
        .cli(&["-o", "json", "rollback", &rollback])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let reapplied = run.json()["change_id"].as_str().unwrap().to_string();
    assert!(node.pulls(&image).await);
    let change = node.change(&reapplied).await;
    assert!(change["expires"].is_string(), "{change}");
    assert!(
        change["insecure"]
            .as_str()
            .unwrap()
            .starts_with("skip_verify"),
        "{change}"
    );

    node.clock.advance(HOUR + 1);
    node.wait_state(&reapplied, "reverted").await;
    assert!(!node.pulls(&image).await);
}

#[tokio::test]
async fn one_setting_that_cannot_end_does_not_hold_up_another() {
    let metrics = format!("127.0.0.1:{}", lab::free_port());
    let node = node_with(
        Version::V2_1,
        None,
        &format!("metrics_address = \"{metrics}\"\n"),
    )
    .await;
    let other = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let broken_id = node
        .fix(
            &node.registry.image_ref(),
            &["--insecure-skip-verify", "--ttl", "1h"],
        )
        .await;
    let fine_id = node
        .fix(
            &other.image_ref(),
            &["--insecure-skip-verify", "--ttl", "1h"],
        )
        .await;
    // Someone breaks the first registry's hosts.toml: ctrdiag cannot edit it.
    let path = node.certs_d.join(&node.registry.host).join("hosts.toml");
    let good = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{good}\n[[[ not toml\n")).unwrap();

    node.clock.advance(HOUR + 1);
    node.wait_state(&fine_id, "reverted").await;
    assert!(!node.pulls(&other.image_ref()).await);
    let overdue = lab::wait_for(
        "the failed end to show",
        Duration::from_secs(30),
        || async {
            let status = node.status().await;
            let insecure = status["changes"]["insecure"].as_array()?.clone();
            let entry = insecure
                .into_iter()
                .find(|i| i["change_id"] == broken_id.as_str())?;
            (entry["overdue"] == true && entry["error"] != "").then_some(entry)
        },
    )
    .await;
    assert!(
        overdue["error"].as_str().unwrap().contains("hosts.toml"),
        "{overdue}"
    );
    let table = node.daemon.cli(&["status"]).await;
    assert_eq!(table.code, 1, "an overdue setting is a problem: {table:?}");
    assert!(table.stdout.contains("OVERDUE"), "{table:?}");
    let exposition = lab::scrape(&metrics).await;
    assert!(
        exposition.contains("ctrdiag_insecure_settings 1\n"),
        "{exposition}"
    );
    assert!(
        exposition.contains("ctrdiag_insecure_settings_overdue 1\n"),
        "{exposition}"
    );

    // Repaired: the next try (after the backoff) ends it.
    std::fs::write(&path, &good).unwrap();
    node.clock.advance(60);
    node.wait_state(&broken_id, "reverted").await;
    assert!(!node.pulls(&node.registry.image_ref()).await);
}

/// SIGKILL in the middle of ending a time to live: the next start undoes the half
/// ending, and the setting is ended again.
#[tokio::test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (scripts/test.sh sets it)"
)]
async fn a_kill_inside_the_end_of_a_time_to_live_is_undone_and_the_end_done_again() {
    use std::os::unix::process::ExitStatusExt;
    let mut node = node(Version::V2_1, Some("expiry:done:0")).await;
    let image = node.registry.image_ref();
    let id = node
        .fix(&image, &["--insecure-skip-verify", "--ttl", "1h"])
        .await;
    node.clock.advance(HOUR + 1);
    let status = node.daemon.wait_exit().expect("killed by the failpoint");
    assert_eq!(status.signal(), Some(9), "{status:?}");

    let clock_env = [node.clock.env()];
    node.daemon.restart_with_env(&clock_env).await;
    node.wait_state(&id, "reverted").await;
    assert!(!node.pulls(&image).await, "verification is back on");
    let changes = node.changes().await;
    let interrupted: Vec<&Value> = changes
        .iter()
        .filter(|c| c["state"] == "rolled_back")
        .collect();
    assert_eq!(interrupted.len(), 1, "{changes:#?}");
    assert!(
        interrupted[0]["reason"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );
    assert_eq!(interrupted[0]["reverts"], serde_json::json!([id]));
}
