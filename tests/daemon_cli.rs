//! The real `ctrdiagd` and `ctrdiag` binaries against real containerd and registries:
//! what an operator sees at the terminal, including exit codes and JSON.

#[macro_use]
mod lab;

use lab::certs::CertKind;
use lab::containerd::{LabContainerd, Version};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind};

/// `nobody:nogroup`: the lab daemon's socket group is `nogroup`.
const READER: (u32, u32) = (65534, 65534);
/// `daemon:daemon`: not in the socket's group at all.
const STRANGER: (u32, u32) = (1, 1);

async fn status_images_pull_and_rmi_work_end_to_end(version: Version) {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(version).await;
    ctr.trust_registry_ca(&registry);
    let daemon = Daemon::start(&ctr).await;

    let status = daemon.cli(&["-o", "json", "status"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    let s = status.json();
    assert_eq!(s["containerd"]["reachable"], true);
    assert_eq!(s["containerd"]["cri_ready"], true);
    assert!(
        s["containerd"]["version"]
            .as_str()
            .unwrap()
            .trim_start_matches('v')
            .starts_with(version.expected_version_prefix()),
        "{s}"
    );
    assert_eq!(s["config"]["exists"], true);
    assert_eq!(s["config"]["registry_mechanism"], "hosts_dir");
    assert_eq!(
        s["config"]["config_path"],
        ctr.certs_d.display().to_string()
    );
    assert_eq!(
        s["config"]["config_version"],
        if version.is_2x() { 3 } else { 2 }
    );
    let table = daemon.cli(&["status"]).await;
    assert!(
        table.stdout.contains("containerd reachable   yes"),
        "{table:?}"
    );

    // A test pull without --keep leaves the node as it was.
    let image = registry.image_ref();
    let pull = daemon.cli(&["-o", "json", "pull", &image]).await;
    assert_eq!(pull.code, 0, "{pull:?}\n{}", daemon.log());
    let p = pull.json();
    assert_eq!(p["ok"], true);
    assert_eq!(p["image_id"], registry.image.config_digest.as_str());
    assert_eq!(p["removed_after"], true);
    assert!(
        !daemon.lists_image(&image).await,
        "the test pull left the image behind"
    );

    // --keep keeps it; images shows it with its real digest and size.
    let pull = daemon.cli(&["pull", "--keep", &image]).await;
    assert_eq!(pull.code, 0, "{pull:?}");
    assert!(
        pull.stdout.contains(&registry.image.config_digest),
        "{pull:?}"
    );
    let images = daemon.cli(&["-o", "json", "images"]).await;
    assert_eq!(images.code, 0);
    let listed = images.json()["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == image.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("not listed: {images:?}"));
    assert_eq!(listed["digest"], registry.image.manifest_digest.as_str());
    assert_eq!(listed["size"], registry.image.total_size());
    let table = daemon.cli(&["images"]).await;
    assert!(table.stdout.starts_with("NAME"), "{table:?}");
    assert!(table.stdout.contains(&image), "{table:?}");

    let rmi = daemon.cli(&["rmi", &image]).await;
    assert_eq!(rmi.code, 0, "{rmi:?}");
    assert_eq!(rmi.stdout.trim(), format!("Deleted: {image}"));
    let again = daemon.cli(&["rmi", &image]).await;
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("not found"), "{again:?}");
}

async fn failing_pull_exits_1_with_containerds_x509_text(version: Version) {
    let registry = Registry::start(RegistryKind::Tls(CertKind::SelfSigned)).await;
    let ctr = LabContainerd::start(version).await;
    let daemon = Daemon::start(&ctr).await;
    let pull = daemon
        .cli(&["-o", "json", "pull", &registry.image_ref()])
        .await;
    assert_eq!(pull.code, 1, "{pull:?}");
    let p = pull.json();
    assert_eq!(p["ok"], false);
    assert_eq!(p["cause"], "tls_unknown_authority");
    assert!(
        p["message"]
            .as_str()
            .unwrap()
            .contains("x509: certificate signed by unknown authority"),
        "{p}"
    );
    let human = daemon.cli(&["pull", &registry.image_ref()]).await;
    assert_eq!(human.code, 1);
    assert!(human.stdout.contains("failed"), "{human:?}");
    assert!(
        human.stdout.contains("cause: tls_unknown_authority"),
        "{human:?}"
    );
}

per_version!(
    status_images_pull_and_rmi_work_end_to_end,
    failing_pull_exits_1_with_containerds_x509_text,
);

#[tokio::test]
async fn group_members_may_read_but_only_root_may_change_the_node() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    ctr.trust_registry_ca(&registry);
    let daemon = Daemon::start(&ctr).await;
    let image = registry.image_ref();
    let (uid, gid) = READER;

    let status = daemon.cli_as(uid, gid, &["-o", "json", "status"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    let images = daemon.cli_as(uid, gid, &["images"]).await;
    assert_eq!(images.code, 0, "{images:?}");
    // A test pull that leaves nothing behind is a read.
    let pull = daemon
        .cli_as(uid, gid, &["-o", "json", "pull", &image])
        .await;
    assert_eq!(pull.code, 0, "{pull:?}");

    let keep = daemon.cli_as(uid, gid, &["pull", "--keep", &image]).await;
    assert_eq!(keep.code, 3, "{keep:?}");
    assert!(keep.stderr.contains("needs root"), "{keep:?}");
    assert_eq!(daemon.cli(&["pull", "--keep", &image]).await.code, 0);
    let rmi = daemon.cli_as(uid, gid, &["rmi", &image]).await;
    assert_eq!(rmi.code, 3, "{rmi:?}");
    assert!(rmi.stderr.contains("permission denied"), "{rmi:?}");
    assert!(
        daemon.log().contains("refused call") && daemon.log().contains("uid=65534"),
        "refusals are logged with the uid:\n{}",
        daemon.log()
    );
    // Nothing was removed by the refused call.
    assert!(daemon.lists_image(&image).await);

    // Outside the group, the socket's 0660 mode keeps the caller out entirely.
    let (uid, gid) = STRANGER;
    let out = daemon.cli_as(uid, gid, &["status"]).await;
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stderr.contains("permission denied on"), "{out:?}");
}

#[tokio::test]
async fn daemon_survives_containerd_going_away_and_reports_recovery() {
    let mut ctr = LabContainerd::start(Version::V1_7).await;
    let mut daemon = Daemon::start(&ctr).await;
    assert_eq!(daemon.cli(&["status"]).await.code, 0);

    ctr.kill();
    let down = daemon.cli(&["-o", "json", "status"]).await;
    assert_eq!(down.code, 1, "{down:?}");
    let s = down.json();
    assert_eq!(s["containerd"]["reachable"], false);
    assert!(
        s["containerd"]["error"]
            .as_str()
            .unwrap()
            .contains("is it running?"),
        "{s}"
    );
    let images = daemon.cli(&["images"]).await;
    assert_eq!(images.code, 1, "{images:?}");
    assert!(images.stderr.contains("containerd"), "{images:?}");
    daemon.assert_running();

    ctr.restart().await;
    let up = daemon.cli(&["-o", "json", "status"]).await;
    assert_eq!(up.code, 0, "{up:?}");
    assert_eq!(up.json()["containerd"]["cri_ready"], true);
}

#[tokio::test]
async fn bad_input_is_refused_with_usage_errors_never_a_crash() {
    let ctr = LabContainerd::start(Version::V2_1).await;
    let mut daemon = Daemon::start(&ctr).await;

    let empty = daemon.cli(&["pull", ""]).await;
    assert_eq!(empty.code, 2, "{empty:?}");
    assert!(empty.stderr.contains("empty"), "{empty:?}");
    let upper = daemon.cli(&["pull", "Team/App:1"]).await;
    assert_eq!(upper.code, 2, "{upper:?}");
    assert!(upper.stderr.contains("lowercase"), "{upper:?}");
    let huge = "a".repeat(100_000);
    let out = daemon.cli(&["pull", &huge]).await;
    assert_eq!(out.code, 2, "{out:?}");
    let out = daemon.cli(&["rmi", "--namespace", "bad/ns", "x"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("invalid containerd namespace"),
        "{out:?}"
    );
    let out = daemon
        .cli(&["images", "--namespace", "no-such-namespace"])
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("does not exist"), "{out:?}");
    let out = daemon
        .cli(&["rmi", "registry.ctrdiag.test:1/never/pulled:v1"])
        .await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("not found"), "{out:?}");
    let out = daemon.cli(&["frobnicate"]).await;
    assert_eq!(out.code, 2, "{out:?}");
    daemon.assert_running();
}

#[tokio::test]
async fn unreachable_daemon_exits_3_with_a_hint() {
    let dir = lab::scratch_dir("nodaemon-");
    let socket = dir.path().join("missing.sock");
    let out = tokio::process::Command::new(lab::daemon::CLI)
        .args(["--socket", socket.to_str().unwrap(), "status"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is ctrdiagd running?"), "{stderr}");
    assert!(stderr.contains("missing.sock"), "{stderr}");
}

#[tokio::test]
async fn sigterm_stops_cleanly_and_removes_the_socket() {
    let ctr = LabContainerd::start(Version::V1_6).await;
    let mut daemon = Daemon::start(&ctr).await;
    assert!(daemon.socket.exists());
    let status = daemon.terminate().expect("exit status");
    assert!(status.success(), "{status:?}\n{}", daemon.log());
    let stopping = daemon
        .next_notification(std::time::Duration::from_secs(5))
        .await;
    assert!(stopping.contains("STOPPING=1"), "{stopping}");
    assert!(!daemon.socket.exists(), "socket left behind");
    assert!(daemon.log().contains("signal=\"SIGTERM\"") || daemon.log().contains("SIGTERM"));
}

#[test]
fn systemd_units_pass_systemd_analyze_verify() {
    let dir = lab::scratch_dir("units-");
    let unit = std::fs::read_to_string("systemd/ctrdiagd.service").unwrap();
    // Verify checks that ExecStart exists: point it at the binary under test.
    std::fs::write(
        dir.path().join("ctrdiagd.service"),
        unit.replace("/usr/bin/ctrdiagd", lab::daemon::DAEMON),
    )
    .unwrap();
    std::fs::copy(
        "systemd/ctrdiagd.socket",
        dir.path().join("ctrdiagd.socket"),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        // The Documentation= man pages are not installed here: tests/packaging.rs
        // verifies the units with them, from the unpacked Debian package.
        .arg("--man=no")
        .arg(dir.path().join("ctrdiagd.service"))
        .arg(dir.path().join("ctrdiagd.socket"))
        .output()
        .expect("systemd-analyze (package systemd) must be installed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.trim().is_empty(), "warnings: {stderr}");
}

/// `key=value` directives of a unit file, in order (comments and sections dropped).
fn directives(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('[') && l.contains('='))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// What the shipped units promise an operator, read from the files (systemd cannot
/// run on these machines, LAB.md): group members can traverse /run/ctrdiag to reach
/// the 0660 socket, the socket outlives a restart of the service, the umask keeps
/// certs.d readable, and every directive says why it is there.
#[test]
fn the_units_let_the_group_in_and_keep_the_socket_across_restarts() {
    let service = std::fs::read_to_string("systemd/ctrdiagd.service").unwrap();
    let socket = std::fs::read_to_string("systemd/ctrdiagd.socket").unwrap();
    let svc = directives(&service);
    let sock = directives(&socket);
    let get = |d: &[(String, String)], k: &str| {
        d.iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(get(&svc, "RuntimeDirectory"), ["ctrdiag"]);
    assert_eq!(get(&svc, "RuntimeDirectoryMode"), ["0755"]);
    assert_eq!(get(&svc, "RuntimeDirectoryPreserve"), ["yes"]);
    assert_eq!(get(&svc, "UMask"), ["0022"]);
    assert_eq!(get(&sock, "DirectoryMode"), ["0755"]);
    assert_eq!(get(&sock, "SocketMode"), ["0660"]);
    assert_eq!(get(&sock, "SocketGroup"), ["ctrdiag"]);
    for (name, text) in [("ctrdiagd.service", &service), ("ctrdiagd.socket", &socket)] {
        let mut commented = false;
        for line in text.lines() {
            if line.starts_with('#') {
                commented = true;
            } else if line.trim().is_empty() || line.starts_with('[') {
                commented = false;
            } else {
                assert!(commented, "{name}: `{line}` has no comment saying why");
            }
        }
    }
}

/// Under `UMask=0077` (or any narrow umask) the daemon still creates its socket
/// directory traversable for the group, and a reader gets in.
#[tokio::test]
async fn a_narrow_umask_does_not_lock_the_group_out() {
    use std::os::unix::fs::PermissionsExt;
    let ctr = LabContainerd::start(Version::V1_7).await;
    let daemon = Daemon::start_under_umask(&ctr, "", 0o077).await;
    let dir = daemon.socket.parent().unwrap();
    let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755, "{}", dir.display());
    let run = daemon.cli_as(READER.0, READER.1, &["status"]).await;
    assert_eq!(run.code, 0, "{run:?}");
}

#[test]
fn man_page_and_completions_are_generated_from_the_cli() {
    let man = std::process::Command::new(lab::daemon::CLI)
        .arg("man")
        .output()
        .unwrap();
    assert!(man.status.success());
    let man = String::from_utf8_lossy(&man.stdout);
    assert!(man.contains(".TH ctrdiag"), "{man}");
    assert!(man.contains("status"), "{man}");
    let bash = std::process::Command::new(lab::daemon::CLI)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(bash.status.success());
    assert!(String::from_utf8_lossy(&bash.stdout).contains("complete -F"));
}

#[tokio::test]
async fn serves_the_socket_systemd_passes() {
    let ctr = LabContainerd::start(Version::V2_1).await;
    let mut daemon = Daemon::start_socket_activated(&ctr).await;
    assert!(
        daemon.log().contains("using the socket passed by systemd"),
        "{}",
        daemon.log()
    );
    let status = daemon.cli(&["-o", "json", "status"]).await;
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(status.json()["containerd"]["reachable"], true);
    // systemd owns that socket: the daemon must not delete it when it stops.
    assert!(daemon.terminate().expect("exit").success());
    assert!(daemon.socket.exists());
}

#[tokio::test]
async fn restart_containerd_goes_through_systemd_and_status_shows_the_unit() {
    let bus = lab::systemd::Bus::start();
    let ctr = LabContainerd::start(Version::V1_7).await;
    let daemon = Daemon::start_with(&ctr, &format!("dbus_address = \"{}\"\n", bus.address)).await;
    let fake = lab::systemd::FakeSystemd::serve(&bus, ctr).await;

    let status = daemon.cli(&["-o", "json", "status"]).await.json();
    assert_eq!(status["unit"]["name"], "containerd.service");
    assert_eq!(status["unit"]["active_state"], "active");
    assert_eq!(status["unit"]["error"], "");

    let (uid, gid) = READER;
    let refused = daemon.cli_as(uid, gid, &["restart-containerd"]).await;
    assert_eq!(refused.code, 3, "{refused:?}");
    assert_eq!(fake.restarts.load(std::sync::atomic::Ordering::SeqCst), 0);

    let restart = daemon.cli(&["-o", "json", "restart-containerd"]).await;
    assert_eq!(restart.code, 0, "{restart:?}");
    assert_eq!(restart.json()["unit"]["sub_state"], "running");
    assert_eq!(fake.restarts.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(daemon.cli(&["status"]).await.code, 0);
}

#[tokio::test]
async fn without_systemd_status_says_so_and_there_is_nothing_to_roll_back() {
    let ctr = LabContainerd::start(Version::V2_1).await;
    let dir = lab::scratch_dir("nobus-");
    let daemon = Daemon::start_with(
        &ctr,
        &format!(
            "dbus_address = \"unix:path={}/bus\"\n",
            dir.path().display()
        ),
    )
    .await;
    let status = daemon.cli(&["-o", "json", "status"]).await;
    assert_eq!(status.code, 0, "containerd itself is healthy: {status:?}");
    assert!(
        status.json()["unit"]["error"]
            .as_str()
            .unwrap()
            .contains("cannot connect to D-Bus"),
        "{status:?}"
    );
    let changes = daemon.cli(&["changes"]).await;
    assert_eq!(changes.code, 0);
    assert_eq!(changes.stdout.trim(), "ID   CREATED   STATE   TITLE");
    let rollback = daemon.cli(&["rollback"]).await;
    assert_eq!(rollback.code, 1, "{rollback:?}");
    assert!(
        rollback.stderr.contains("no applied change"),
        "{rollback:?}"
    );
    let bad = daemon.cli(&["rollback", "../../etc"]).await;
    assert_eq!(bad.code, 2, "{bad:?}");
}

#[tokio::test]
async fn status_reports_the_ignored_legacy_table_on_2_1() {
    let table = lab::containerd::cri_registry_table(Version::V2_1);
    let ctr = LabContainerd::start_with(
        Version::V2_1,
        lab::containerd::LabConfig {
            config_path: false,
            extra: format!("[{table}.configs.\"registry.ctrdiag.test:5443\".tls]\n  insecure_skip_verify = true\n"),
            ..Default::default()
        },
    )
    .await;
    let daemon = Daemon::start(&ctr).await;
    let s = daemon.cli(&["-o", "json", "status"]).await.json();
    assert_eq!(s["config"]["registry_mechanism"], "legacy");
    let findings = s["config"]["findings"].as_array().unwrap();
    assert!(
        findings.iter().any(|f| f["cause"] == "config_ignored"
            && f["message"]
                .as_str()
                .unwrap()
                .contains("registry.ctrdiag.test:5443")),
        "{s}"
    );
    let human = daemon.cli(&["status"]).await;
    assert!(human.stdout.contains("config: config_ignored"), "{human:?}");
}

#[tokio::test]
async fn prometheus_metrics_count_pulls_by_cause() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    let addr = format!("127.0.0.1:{}", lab::free_port());
    let daemon = Daemon::start_with(&ctr, &format!("metrics_address = \"{addr}\"\n")).await;
    assert_eq!(daemon.cli(&["pull", &registry.image_ref()]).await.code, 1);
    assert_eq!(daemon.cli(&["pull", &registry.image_ref()]).await.code, 1);

    let resp = lab::scrape(&addr).await;
    assert!(resp.starts_with("HTTP/1.1 200 OK"), "{resp}");
    assert!(
        resp.contains("application/openmetrics-text; version=1.0.0"),
        "{resp}"
    );
    assert!(
        resp.contains(
            "ctrdiag_test_pulls_total{cause=\"tls_unknown_authority\",result=\"failed\"} 2"
        ),
        "{resp}"
    );
    assert!(resp.contains("ctrdiag_containerd_up 1"), "{resp}");
    assert!(resp.contains("ctrdiag_cri_ready 1"), "{resp}");
}
