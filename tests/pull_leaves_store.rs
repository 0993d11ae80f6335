//! A test pull is read-only: after it, containerd's image store holds exactly the
//! records it held before, with the same targets, whoever asked and however the call
//! ended. Real containerd 1.6 / 1.7 / 2.1, a real TLS registry, the real daemon and CLI.

#[macro_use]
mod lab;

use std::collections::BTreeMap;
use std::time::Duration;

use ctrdiag::containerd::ContainerdClient;
use lab::certs::CertKind;
use lab::containerd::{LabContainerd, Version};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind, SilentRegistry};
use lab::wait_for;

/// `nobody:nogroup`, a member of the lab daemon's socket group: a read-only caller.
const READER: (u32, u32) = (65534, 65534);

/// Name → target digest of every record in CRI's namespace.
async fn store(client: &ContainerdClient) -> BTreeMap<String, String> {
    client
        .image_records()
        .await
        .expect("list image records")
        .into_iter()
        .map(|(name, r)| (name, r.target_digest))
        .collect()
}

async fn cri_knows(client: &ContainerdClient, image: &str) -> bool {
    client.cri_image_present(image).await.expect("ImageStatus")
}

async fn lab(version: Version, env: &[(&str, &str)]) -> (Registry, LabContainerd, Daemon) {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(version).await;
    ctr.trust_registry_ca(&registry);
    let daemon = Daemon::start_with_env(&ctr, "", env).await;
    (registry, ctr, daemon)
}

/// Waits until the daemon (started with the `pause:test_pull_cleanup:DIR` failpoint)
/// has pulled and waits before its cleanup.
async fn wait_until_paused(dir: &std::path::Path) {
    let paused = dir.join("test_pull_cleanup.paused");
    wait_for(
        "the daemon to reach its cleanup",
        Duration::from_secs(30),
        || {
            let p = paused.clone();
            async move { p.exists().then_some(()) }
        },
    )
    .await;
}

/// Lets the paused daemon go on with its cleanup.
fn release(dir: &std::path::Path) {
    std::fs::write(dir.join("test_pull_cleanup.go"), b"").expect("release the daemon");
}

async fn a_test_pull_keeps_every_other_name_of_the_image(version: Version) {
    let (registry, ctr, daemon) = lab(version, &[]).await;
    let client = ctr.client();
    // The node already runs v1; `latest` is the same image under another name.
    let v1 = registry.image_ref();
    let run = daemon.cli(&["pull", "--keep", &v1]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let before = store(&client).await;
    assert_eq!(before.len(), 3, "tag, digest and id records: {before:?}");

    let latest = registry.image_ref_tagged("latest");
    let run = daemon
        .cli_as(READER.0, READER.1, &["-o", "json", "pull", &latest])
        .await;
    assert_eq!(run.code, 0, "{run:?}\n{}", daemon.log());
    assert_eq!(run.json()["ok"], true);
    assert_eq!(run.json()["removed_after"], true);

    assert_eq!(store(&client).await, before, "the store changed");
    assert!(cri_knows(&client, &v1).await, "v1 is gone for the kubelet");
    assert!(!cri_knows(&client, &latest).await, "latest was left behind");
}

async fn a_test_pull_of_a_moved_tag_puts_the_old_target_back(version: Version) {
    let (registry, ctr, daemon) = lab(version, &[]).await;
    let client = ctr.client();
    let latest = registry.image_ref_tagged("latest");
    let run = daemon.cli(&["pull", "--keep", &latest]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let before = store(&client).await;
    // A new build is pushed as `latest`: a pull now moves the node's tag.
    let next = registry.push_tag("latest", "the next build").await;

    let run = daemon.cli(&["-o", "json", "pull", &latest]).await;
    assert_eq!(run.code, 0, "{run:?}\n{}", daemon.log());
    assert_eq!(run.json()["image_id"], next.config_digest.as_str());
    assert_eq!(run.json()["removed_after"], false);

    assert_eq!(store(&client).await, before, "the tag was not put back");
    let status = daemon.cli(&["-o", "json", "images"]).await;
    assert!(
        !status.stdout.contains(&next.manifest_digest),
        "the new build's records stayed: {status:?}"
    );
}

async fn a_name_the_kubelet_pulls_during_the_test_pull_stays(version: Version) {
    let pause_dir = lab::scratch_dir("pause-");
    let failpoint = format!("pause:test_pull_cleanup:{}", pause_dir.path().display());
    let (registry, ctr, daemon) = lab(version, &[("CTRDIAG_FAILPOINT", &failpoint)]).await;
    let client = ctr.client();
    let image = registry.image_ref();

    let call = {
        let args = ["-o", "json", "pull", image.as_str()].map(String::from);
        let socket = daemon.socket.clone();
        tokio::spawn(async move {
            let out = tokio::process::Command::new(lab::daemon::CLI)
                .arg("--socket")
                .arg(socket)
                .args(&args)
                .output()
                .await
                .expect("run ctrdiag");
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
    };
    wait_until_paused(pause_dir.path()).await;
    // Meanwhile the kubelet pulls the same name for a Pod.
    assert!(
        client
            .test_pull(&image)
            .await
            .expect("kubelet pull")
            .pulled()
    );
    release(pause_dir.path());

    let out: serde_json::Value = serde_json::from_str(&call.await.unwrap()).expect("JSON");
    assert_eq!(out["ok"], true, "{out}");
    assert_eq!(out["removed_after"], false, "{out}\n{}", daemon.log());
    assert!(
        cri_knows(&client, &image).await,
        "the kubelet's image was removed"
    );
}

async fn the_cleanup_finishes_when_the_caller_goes_away(version: Version) {
    let pause_dir = lab::scratch_dir("pause-");
    let failpoint = format!("pause:test_pull_cleanup:{}", pause_dir.path().display());
    let (registry, ctr, mut daemon) = lab(version, &[("CTRDIAG_FAILPOINT", &failpoint)]).await;
    let client = ctr.client();
    let image = registry.image_ref();
    let before = store(&client).await;

    let mut caller = daemon.spawn_cli(&["pull", &image]);
    wait_until_paused(pause_dir.path()).await;
    caller.kill().expect("kill the CLI");
    caller.wait().expect("reap the CLI");
    release(pause_dir.path());

    wait_for("the store to be as it was", Duration::from_secs(30), || {
        let client = client.clone();
        let before = before.clone();
        async move { (store(&client).await == before).then_some(()) }
    })
    .await;
    daemon.assert_running();
}

#[tokio::test]
async fn a_cleanup_cut_off_by_a_containerd_crash_is_finished_once_containerd_is_back() {
    let pause_dir = lab::scratch_dir("pause-");
    let failpoint = format!("pause:test_pull_cleanup:{}", pause_dir.path().display());
    let (registry, mut ctr, mut daemon) =
        lab(Version::V2_1, &[("CTRDIAG_FAILPOINT", &failpoint)]).await;
    let client = ctr.client();
    let before = store(&client).await;
    let mut api = daemon.api().await;
    let image = registry.image_ref();
    let call = tokio::spawn(async move {
        api.test_pull(ctrdiag::api::v1::TestPullRequest { image, keep: false })
            .await
    });

    // containerd crashes after the pull, before the cleanup has removed anything.
    wait_until_paused(pause_dir.path()).await;
    ctr.kill();
    release(pause_dir.path());
    let refused = call
        .await
        .unwrap()
        .expect_err("the caller hears containerd is gone");
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("is it running?"), "{refused:?}");

    ctr.start_again().await;
    wait_for(
        "the cleanup to finish once containerd is back",
        Duration::from_secs(30),
        || {
            let client = client.clone();
            let before = before.clone();
            async move { (store(&client).await == before).then_some(()) }
        },
    )
    .await;
    daemon.assert_running();
}

per_version!(
    a_test_pull_keeps_every_other_name_of_the_image,
    a_test_pull_of_a_moved_tag_puts_the_old_target_back,
    a_name_the_kubelet_pulls_during_the_test_pull_stays,
    the_cleanup_finishes_when_the_caller_goes_away,
);

#[tokio::test]
async fn a_pull_past_the_limit_is_a_timeout_with_the_limit_named() {
    let registry = SilentRegistry::start().await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    let mut daemon = Daemon::start_with(&ctr, "pull_timeout_secs = 2\n").await;
    let image = registry.image_ref("app:1");

    let run = daemon.cli(&["-o", "json", "pull", &image]).await;
    assert_eq!(run.code, 1, "{run:?}");
    let p = run.json();
    assert_eq!(p["cause"], "timeout", "{p}");
    assert!(p["message"].as_str().unwrap().contains("within 2s"), "{p}");

    let run = daemon.cli(&["-o", "json", "diagnose", &image]).await;
    let d = run.json();
    let finding = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cause"] == "timeout")
        .unwrap_or_else(|| panic!("no timeout finding: {d}"));
    assert!(
        finding["summary"].as_str().unwrap().contains("2s"),
        "{finding}"
    );
    assert!(
        !d.to_string().contains("containerd_unreachable"),
        "a slow registry is not a containerd problem: {d}"
    );
    daemon.assert_running();
}
