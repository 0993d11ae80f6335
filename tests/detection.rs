//! Detection end to end: a pull made straight to containerd's CRI (as the kubelet makes
//! it, not through ctrdiag) fails against a real TLS registry signed by a private CA;
//! ctrdiagd finds it in the real containerd's real log and it shows up in `watch`,
//! `events`, `/metrics` and `check`; `fix --ca` without an image proves itself with
//! that failed pull's image, and the problem ends. containerd 1.6 / 1.7 / 2.1.

#[macro_use]
mod lab;

use std::time::Duration;

use lab::certs::CertKind;
use lab::containerd::{LabConfig, LabContainerd, Version};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind};
use lab::systemd::{Bus, FakeSystemd};
use lab::{free_port, scrape, wait_for};

const SOON: Duration = Duration::from_secs(20);

async fn failed_pull_is_detected_explained_fixed_and_recovered(version: Version) {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start_with(version, LabConfig::default()).await;
    let bus = Bus::start();
    let metrics = format!("127.0.0.1:{}", free_port());
    let daemon = Daemon::start_with(
        &ctr,
        &format!(
            "dbus_address = \"{}\"\nmetrics_address = \"{metrics}\"\n",
            bus.address
        ),
    )
    .await;
    let fake = FakeSystemd::serve(&bus, ctr).await;
    let image = registry.image_ref();
    let host = image.split('/').next().unwrap().to_string();
    let ca = registry.tls.as_ref().unwrap().ca_path.clone();

    let check = daemon.cli(&["check"]).await;
    assert_eq!(check.code, 0, "healthy before anything failed: {check:?}");
    let mut watch = daemon.watch(&[]).await;

    let err = fake
        .containerd
        .lock()
        .await
        .cri_pull(&image)
        .await
        .expect_err("containerd does not trust the registry's CA yet");
    assert!(err.contains("x509"), "{err}");

    let e = watch.next_of_kind("pull_failed", SOON).await;
    assert_eq!(e["cause"], "tls_unknown_authority", "{e}");
    assert_eq!(e["host"], host.as_str());
    assert_eq!(e["image"], image.as_str());
    assert!(
        e["text"].as_str().unwrap().contains("unknown authority"),
        "{e}"
    );

    let events = daemon
        .cli(&["-o", "json", "events", "--since", "10m"])
        .await;
    assert_eq!(events.code, 1, "a live problem: {events:?}");
    let v = events.json();
    assert!(
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == e["id"]),
        "{v}"
    );
    assert_eq!(v["problems"][0]["host"], host.as_str());
    assert_eq!(v["problems"][0]["cause"], "tls_unknown_authority");
    let only_dns = daemon
        .cli(&["-o", "json", "events", "--cause", "dns_failure"])
        .await;
    assert!(only_dns.json()["events"].as_array().unwrap().is_empty());

    let exposition = scrape(&metrics).await;
    for line in [
        format!(
            "ctrdiag_detected_events_total{{kind=\"pull_failed\",cause=\"tls_unknown_authority\",registry=\"{host}\"}} 1"
        ),
        format!(
            "ctrdiag_registry_problem{{registry=\"{host}\",area=\"pulls\",cause=\"tls_unknown_authority\"}} 1"
        ),
        "ctrdiag_log_follower_up 1".to_string(),
    ] {
        assert!(exposition.contains(&line), "{line} missing:\n{exposition}");
    }

    let check = daemon.cli(&["check"]).await;
    assert_eq!(check.code, 1, "{check:?}");
    assert!(
        check
            .stdout
            .starts_with(&format!("RegistryTLSProblem: {host} tls_unknown_authority")),
        "{check:?}"
    );
    assert!(check.stdout.trim_end().len() <= 80, "{check:?}");

    // No image named: the fix proves itself with the pull that failed.
    let ca_arg = ca.display().to_string();
    let fix = daemon
        .cli(&["-o", "json", "fix", &host, "--ca", &ca_arg])
        .await;
    assert_eq!(fix.code, 0, "{fix:?}");
    assert!(
        fix.stdout.contains(&image),
        "the verifying pull is the failed one: {fix:?}"
    );

    let recovered = watch.next_of_kind("pulls_recovered", SOON).await;
    assert_eq!(recovered["host"], host.as_str(), "{recovered}");
    let check = wait_for("check to turn OK", SOON, || async {
        let c = daemon.cli(&["check"]).await;
        (c.code == 0).then_some(c)
    })
    .await;
    assert!(check.stdout.starts_with("RegistryTLSOK"), "{check:?}");
}

per_version!(failed_pull_is_detected_explained_fixed_and_recovered);

/// containerd's own wording of a failed CRI pull (2.1.9), for image `n`.
fn failed_line(n: u32) -> String {
    let image = format!("registry.ctrdiag.test:5443/app:{n}");
    format!(
        "time=\"2026-12-02T10:00:00.000000000Z\" level=error msg=\"PullImage \\\"{image}\\\" failed\" error=\"rpc error: code = Unknown desc = failed to pull and unpack image \\\"{image}\\\": failed to resolve image: failed to do request: Head \\\"https://registry.ctrdiag.test:5443/v2/app/manifests/{n}\\\": tls: failed to verify certificate: x509: certificate signed by unknown authority\"\n"
    )
}

fn append(path: &std::path::Path, lines: impl IntoIterator<Item = u32>) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for n in lines {
        f.write_all(failed_line(n).as_bytes()).unwrap();
    }
    f.sync_all().unwrap();
}

/// The images of the pull_failed events the daemon lists, once `want` of them are.
async fn images_once(daemon: &Daemon, want: usize) -> Vec<(String, u64)> {
    wait_for(&format!("{want} events"), SOON, || async {
        let v = daemon.cli(&["-o", "json", "events"]).await.json();
        let got: Vec<(String, u64)> = v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["image"].as_str().unwrap().to_string(),
                    e["count"].as_u64().unwrap(),
                )
            })
            .collect();
        (got.len() >= want).then_some(got)
    })
    .await
}

fn expected(range: std::ops::RangeInclusive<u32>) -> Vec<(String, u64)> {
    range
        .map(|n| (format!("registry.ctrdiag.test:5443/app:{n}"), 1))
        .collect()
}

#[tokio::test]
async fn crashes_rotation_and_truncation_lose_nothing_and_repeat_nothing() {
    let ctr = LabContainerd::start(Version::V2_1).await;
    let dir = lab::scratch_dir("containerd-log-");
    let log = dir.path().join("containerd.log");
    append(&log, [0]); // history from before the daemon: not replayed
    let setting = format!("containerd_log = \"{}\"\n", log.display());
    let mut daemon = Daemon::start_with(&ctr, &setting).await;
    wait_for("the log to be followed", SOON, || async {
        let s = daemon.cli(&["-o", "json", "status"]).await.json();
        (s["detection"]["following"] == true).then_some(())
    })
    .await;

    append(&log, 1..=5);
    assert_eq!(images_once(&daemon, 5).await, expected(1..=5));
    // Killed (no chance to save) with lines it may or may not have read yet.
    append(&log, 6..=10);
    daemon.restart().await;
    append(&log, 11..=13);
    assert_eq!(images_once(&daemon, 13).await, expected(1..=13));

    // Rotation by rename: the last lines went to the old file just before it moved.
    append(&log, 14..=16);
    std::fs::rename(&log, dir.path().join("containerd.log.1")).unwrap();
    append(&log, 17..=20);
    assert_eq!(images_once(&daemon, 20).await, expected(1..=20));

    // Truncation in place (logrotate's copytruncate), then a crash and more lines.
    std::fs::copy(&log, dir.path().join("containerd.log.2")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&log)
        .unwrap();
    append(&log, 21..=25);
    assert_eq!(images_once(&daemon, 25).await, expected(1..=25));
    daemon.restart().await;
    append(&log, 26..=30);
    assert_eq!(images_once(&daemon, 30).await, expected(1..=30));
}

#[tokio::test]
async fn check_says_unknown_when_the_daemon_is_down_or_hangs() {
    let ctr = LabContainerd::start(Version::V2_1).await;
    let mut daemon = Daemon::start(&ctr).await;
    // node-problem-detector kills a plugin after 5 s: the answer must come first.
    let npd_timeout = Duration::from_secs(5);
    let pid = nix::unistd::Pid::from_raw(daemon.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let hung = tokio::time::timeout(npd_timeout, daemon.cli(&["check"]))
        .await
        .expect("check answered before NPD's timeout");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    assert_eq!(hung.code, 3, "{hung:?}");
    assert!(
        hung.stdout.starts_with("Unknown: ctrdiagd did not answer"),
        "{hung:?}"
    );
    assert_eq!(hung.stdout.lines().count(), 1);

    daemon.terminate();
    let down = tokio::time::timeout(npd_timeout, daemon.cli(&["check"]))
        .await
        .expect("check answered before NPD's timeout");
    assert_eq!(down.code, 3, "{down:?}");
    assert!(
        down.stdout
            .starts_with("Unknown: ctrdiagd is not reachable"),
        "{down:?}"
    );
    assert!(down.stderr.contains("is ctrdiagd running?"), "{down:?}");
}

#[tokio::test]
async fn the_default_source_is_the_journal_and_a_restart_resumes_from_its_cursor() {
    let ctr = LabContainerd::start(Version::V2_1).await;
    let mut journal = lab::journal::LabJournal::start("detection-journal");
    journal.containerd("level=info msg=\"starting containerd\"");
    journal.wait_written().await;
    let setting = format!(
        "containerd_log = \"journal\"\njournal_directory = \"{}\"\n",
        journal.dir().display()
    );
    let mut daemon = Daemon::start_with(&ctr, &setting).await;
    wait_for("the journal to be followed", SOON, || async {
        let s = daemon.cli(&["-o", "json", "status"]).await.json();
        (s["detection"]["following"] == true).then_some(())
    })
    .await;
    let status = daemon.cli(&["-o", "json", "status"]).await.json();
    assert_eq!(
        status["detection"]["source"], "journal (unit containerd.service)",
        "{status}"
    );
    for n in 1..=3 {
        journal.containerd(failed_line(n).trim_end());
    }
    assert_eq!(images_once(&daemon, 3).await, expected(1..=3));
    daemon.restart().await;
    for n in 4..=6 {
        journal.containerd(failed_line(n).trim_end());
    }
    assert_eq!(images_once(&daemon, 6).await, expected(1..=6));
}

#[tokio::test]
async fn an_open_watch_does_not_hold_up_the_daemons_stop() {
    let ctr = LabContainerd::start(Version::V2_1).await;
    let mut daemon = Daemon::start(&ctr).await;
    let mut watch = daemon.watch(&[]).await;
    daemon.send_sigterm();
    assert!(
        watch.ends_within(SOON).await,
        "the watch stream ends when the daemon starts to stop"
    );
    let status = daemon.wait_exit().expect("ctrdiagd exit status");
    assert!(status.success(), "SIGTERM with a watch open: {status}");
}
