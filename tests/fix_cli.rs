//! `ctrdiag fix`, `changes` and `rollback` end to end: the real daemon and CLI, real
//! containerd 1.6 / 1.7 / 2.1 restarted through the stand-in systemd on a real
//! dbus-daemon, and a real TLS registry signed by a private CA.

#[macro_use]
mod lab;

use lab::certs::CertKind;
use lab::containerd::{LabConfig, LabContainerd, Version};
use lab::daemon::{CliRun, Daemon};
use lab::registry::{Registry, RegistryKind};
use lab::systemd::{Bus, FakeSystemd};

struct Node {
    registry: Registry,
    daemon: Daemon,
    fake: FakeSystemd,
    config_file: std::path::PathBuf,
    certs_d: std::path::PathBuf,
    ca_file: std::path::PathBuf,
    _bus: Bus,
}

async fn node(version: Version, config: LabConfig) -> Node {
    node_with(version, config, CertKind::PrivateCa, "").await
}

async fn node_with(version: Version, config: LabConfig, cert: CertKind, settings: &str) -> Node {
    let registry = Registry::start(RegistryKind::Tls(cert)).await;
    let ctr = LabContainerd::start_with(version, config).await;
    let bus = Bus::start();
    let daemon = Daemon::start_with(
        &ctr,
        &format!("dbus_address = \"{}\"\n{settings}", bus.address),
    )
    .await;
    let (config_file, certs_d) = (ctr.config_file.clone(), ctr.certs_d.clone());
    let fake = FakeSystemd::serve(&bus, ctr).await;
    let ca_file = registry.tls.as_ref().unwrap().ca_path.clone();
    Node {
        registry,
        daemon,
        fake,
        config_file,
        certs_d,
        ca_file,
        _bus: bus,
    }
}

impl Node {
    async fn pull(&self) -> CliRun {
        self.daemon
            .cli(&["-o", "json", "pull", &self.registry.image_ref()])
            .await
    }

    async fn fix(&self, extra: &[&str]) -> CliRun {
        let image = self.registry.image_ref();
        let mut args = vec!["-o", "json", "fix", image.as_str()];
        args.extend_from_slice(extra);
        self.daemon.cli(&args).await
    }

    fn restarts(&self) -> u32 {
        self.fake.restarts.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn cri_ready(&self) -> bool {
        let ctr = self.fake.containerd.lock().await;
        ctr.client()
            .runtime_status()
            .await
            .map(|s| s.runtime_ready)
            .unwrap_or(false)
    }
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path().display().to_string());
        }
    }
    out
}

/// config_path already set: CA + hosts.toml, no restart, the pull works; rollback
/// takes the files out again and the pull fails as before.
async fn fix_ca_with_config_path_needs_no_restart(version: Version) {
    let node = node(version, LabConfig::default()).await;
    assert_eq!(node.pull().await.code, 1);
    let ca = node.ca_file.display().to_string();

    let dry = node
        .daemon
        .cli(&["fix", &node.registry.image_ref(), "--ca", &ca, "--dry-run"])
        .await;
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(dry.stdout.contains("+[host.\"https://"), "{dry:?}");
    assert!(
        dry.stdout.contains("(dry run: nothing was changed)"),
        "{dry:?}"
    );
    assert!(
        files_under(&node.certs_d).is_empty(),
        "a dry run writes nothing"
    );

    let fix = node.fix(&["--ca", &ca]).await;
    assert_eq!(fix.code, 0, "{fix:?}\n{}", node.daemon.log());
    let f = fix.json();
    assert_eq!(f["ok"], true, "{f}");
    assert_eq!(
        f["verify"]["image_id"],
        node.registry.image.config_digest.as_str()
    );
    assert_eq!(f["plan"]["restarts_containerd"], false);
    assert_eq!(node.restarts(), 0);
    assert_eq!(node.pull().await.code, 0);

    let changes = node.daemon.cli(&["-o", "json", "changes"]).await.json();
    let id = f["change_id"].as_str().unwrap();
    assert_eq!(changes["changes"][0]["id"], id);
    assert_eq!(changes["changes"][0]["state"], "applied");

    let rollback = node.daemon.cli(&["rollback", id]).await;
    assert_eq!(rollback.code, 0, "{rollback:?}");
    assert!(
        files_under(&node.certs_d).is_empty(),
        "{:?}",
        files_under(&node.certs_d)
    );
    assert_eq!(
        node.pull().await.code,
        1,
        "the rollback really undid the fix"
    );
}

/// No config_path: it is set in config.toml (restart through systemd), the pull works,
/// CRI still answers; rolling back restores config.toml byte for byte.
async fn fix_ca_without_config_path_sets_it_and_restarts(version: Version) {
    let node = node(
        version,
        LabConfig {
            config_path: false,
            ..Default::default()
        },
    )
    .await;
    let original = std::fs::read(&node.config_file).unwrap();
    let fix = node
        .fix(&["--ca", &node.ca_file.display().to_string()])
        .await;
    assert_eq!(fix.code, 0, "{fix:?}\n{}", node.daemon.log());
    let f = fix.json();
    assert_eq!(f["plan"]["restarts_containerd"], true, "{f}");
    assert!(
        f["plan"]["diff"].as_str().unwrap().contains("config_path"),
        "{f}"
    );
    assert_eq!(node.restarts(), 1);
    assert!(node.cri_ready().await);
    assert_eq!(node.pull().await.code, 0);

    let rollback = node.daemon.cli(&["-o", "json", "rollback"]).await;
    assert_eq!(rollback.code, 0, "{rollback:?}");
    assert_eq!(
        std::fs::read(&node.config_file).unwrap(),
        original,
        "exact previous bytes"
    );
    assert_eq!(node.restarts(), 2);
    assert!(node.cri_ready().await);
}

per_version!(
    fix_ca_with_config_path_needs_no_restart,
    fix_ca_without_config_path_sets_it_and_restarts,
);

/// The runbook's broken node: someone added `configs."<host>".tls` next to
/// `config_path` on 1.x, and the CRI plugin refused to load. One `fix --ca` moves the
/// blocking table into hosts.toml, restarts containerd and proves the pull; the
/// registry credentials beside it stay in config.toml and are never printed.
async fn the_runbooks_broken_node_is_repaired_by_one_fix(version: Version) {
    let table = lab::containerd::cri_registry_table(version);
    let secret = "hunter2-not-for-logs";
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let extra = format!(
        "[{table}.configs.\"{host}\".tls]\n  insecure_skip_verify = true\n[{table}.configs.\"{host}\".auth]\n  username = \"robot\"\n  password = \"{secret}\"\n",
        host = registry.host
    );
    let ctr = LabContainerd::start_with(
        version,
        LabConfig {
            extra,
            wait_for_cri: false,
            ..Default::default()
        },
    )
    .await;
    let bus = Bus::start();
    let daemon = Daemon::start_with(&ctr, &format!("dbus_address = \"{}\"\n", bus.address)).await;
    let config_file = ctr.config_file.clone();
    let fake = FakeSystemd::serve(&bus, ctr).await;
    let status = daemon.cli(&["-o", "json", "status"]).await.json();
    assert_eq!(
        status["containerd"]["cri_ready"], false,
        "the trap: {status}"
    );

    let image = registry.image_ref();
    let ca = registry.tls.as_ref().unwrap().ca_path.display().to_string();
    let dry = daemon.cli(&["fix", &image, "--ca", &ca, "--dry-run"]).await;
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout.contains("insecure_skip_verify = true"),
        "{dry:?}"
    );
    assert!(dry.stdout.contains("hosts.toml"), "{dry:?}");
    assert!(dry.stdout.contains("restart"), "{dry:?}");

    let fix = daemon
        .cli(&["-o", "json", "fix", &image, "--ca", &ca])
        .await;
    assert_eq!(fix.code, 0, "{fix:?}\n{}", daemon.log());
    let after = std::fs::read_to_string(&config_file).unwrap();
    assert!(!after.contains(".tls]"), "{after}");
    assert!(after.contains(secret), "the credentials stay: {after}");
    assert_eq!(fake.restarts.load(std::sync::atomic::Ordering::SeqCst), 1);
    let status = daemon.cli(&["-o", "json", "status"]).await.json();
    assert_eq!(status["containerd"]["cri_ready"], true, "{status}");
    let pull = daemon.cli(&["-o", "json", "pull", &image]).await;
    assert_eq!(pull.code, 0, "{pull:?}");

    for (what, text) in [
        ("dry run", format!("{}{}", dry.stdout, dry.stderr)),
        ("fix", format!("{}{}", fix.stdout, fix.stderr)),
        ("daemon log", daemon.log()),
    ] {
        assert!(
            !text.contains(secret),
            "the password is in the {what}:\n{text}"
        );
    }
}

/// Without config_path, a legacy table that would block it is moved the same way.
async fn legacy_tables_move_to_hosts_toml_when_config_path_is_added(version: Version) {
    let table = lab::containerd::cri_registry_table(version);
    let old_host = "old-registry.ctrdiag.test:5000";
    let node = node(
        version,
        LabConfig {
            config_path: false,
            extra: format!(
                "[{table}.configs.\"{old_host}\".tls]\n  insecure_skip_verify = false\n"
            ),
            ..Default::default()
        },
    )
    .await;
    let fix = node
        .fix(&["--ca", &node.ca_file.display().to_string()])
        .await;
    assert_eq!(fix.code, 0, "{fix:?}\n{}", node.daemon.log());
    let config = std::fs::read_to_string(&node.config_file).unwrap();
    assert!(!config.contains(".configs."), "{config}");
    assert!(config.contains("config_path"), "{config}");
    let moved = std::fs::read_to_string(node.certs_d.join(old_host).join("hosts.toml")).unwrap();
    assert!(moved.contains("skip_verify = false"), "{moved}");
    assert!(node.cri_ready().await);
    assert_eq!(node.pull().await.code, 0);
}

mod legacy {
    #[tokio::test]
    async fn broken_node_on_1_6() {
        super::the_runbooks_broken_node_is_repaired_by_one_fix(super::Version::V1_6).await
    }
    #[tokio::test]
    async fn broken_node_on_1_7() {
        super::the_runbooks_broken_node_is_repaired_by_one_fix(super::Version::V1_7).await
    }
    #[tokio::test]
    async fn moved_on_1_6() {
        super::legacy_tables_move_to_hosts_toml_when_config_path_is_added(super::Version::V1_6)
            .await
    }
    #[tokio::test]
    async fn moved_on_1_7() {
        super::legacy_tables_move_to_hosts_toml_when_config_path_is_added(super::Version::V1_7)
            .await
    }
}

#[tokio::test]
async fn a_version_2_file_on_containerd_2_1_is_fixed_in_its_own_layout() {
    let node = node(
        Version::V2_1,
        LabConfig {
            config_path: false,
            version_2_file: true,
            ..Default::default()
        },
    )
    .await;
    let fix = node
        .fix(&["--ca", &node.ca_file.display().to_string()])
        .await;
    assert_eq!(fix.code, 0, "{fix:?}\n{}", node.daemon.log());
    let config = std::fs::read_to_string(&node.config_file).unwrap();
    assert!(config.starts_with("version = 2"), "{config}");
    assert!(config.contains("io.containerd.grpc.v1.cri"), "{config}");
    assert_eq!(node.pull().await.code, 0);
}

#[tokio::test]
async fn ca_from_server_needs_the_confirmed_fingerprint() {
    let node = node_with(
        Version::V1_7,
        LabConfig::default(),
        CertKind::SelfSigned,
        "",
    )
    .await;
    let pem = &node.registry.tls.as_ref().unwrap().ca_pem;
    let der = pem_to_der(pem);
    let fingerprint = {
        use sha2::Digest;
        sha2::Sha256::digest(&der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    let wrong = node
        .fix(&["--ca-from-server", "--sha256", &"ab".repeat(32)])
        .await;
    assert_eq!(wrong.code, 1, "{wrong:?}");
    assert!(
        wrong
            .stderr
            .contains("no certificate with that SHA-256 fingerprint"),
        "{wrong:?}"
    );
    assert!(
        wrong.stderr.contains(&fingerprint),
        "the error lists what is presented: {wrong:?}"
    );
    assert!(files_under(&node.certs_d).is_empty());

    let fix = node
        .fix(&["--ca-from-server", "--sha256", &fingerprint])
        .await;
    assert_eq!(fix.code, 0, "{fix:?}\n{}", node.daemon.log());
    assert_eq!(node.pull().await.code, 0);
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

#[tokio::test]
async fn a_wrong_ca_is_undone_and_bad_requests_are_refused() {
    let node = node(Version::V2_1, LabConfig::default()).await;
    // Another CA: the plan applies, the pull still fails, everything is undone.
    let other = lab::scratch_dir("other-ca-");
    let other_ca = lab::certs::make(CertKind::PrivateCa, "x.test", other.path()).ca_path;
    let fix = node.fix(&["--ca", &other_ca.display().to_string()]).await;
    assert_eq!(fix.code, 1, "{fix:?}");
    let f = fix.json();
    assert_eq!(f["ok"], false);
    assert!(
        f["reason"].as_str().unwrap().contains("unknown authority"),
        "{f}"
    );
    assert!(
        files_under(&node.certs_d).is_empty(),
        "{:?}",
        files_under(&node.certs_d)
    );

    let key = other.path().join("server.key");
    let out = node.fix(&["--ca", &key.display().to_string()]).await;
    assert_eq!(out.code, 2, "a private key is refused: {out:?}");
    assert!(out.stderr.contains("private key"), "{out:?}");
    let out = node
        .daemon
        .cli(&["fix", "registry.ctrdiag.test:1", "--insecure-skip-verify"])
        .await;
    assert_eq!(out.code, 2, "no image to prove the fix: {out:?}");
    let out = node
        .daemon
        .cli(&["fix", "../../etc", "--insecure-skip-verify"])
        .await;
    assert_eq!(out.code, 2, "{out:?}");
    let out = node
        .fix(&["--ca", &node.ca_file.display().to_string(), "--ttl", "1h"])
        .await;
    assert_eq!(out.code, 2, "a TTL only for insecure modes: {out:?}");
    let (uid, gid) = (65534, 65534);
    let out = node
        .daemon
        .cli_as(
            uid,
            gid,
            &[
                "fix",
                &node.registry.image_ref(),
                "--insecure-skip-verify",
                "--dry-run",
            ],
        )
        .await;
    assert_eq!(out.code, 3, "{out:?}");
}

/// ctrdiagd is killed with SIGKILL in the middle of a fix (after config.toml is written,
/// before the restart); the next start undoes the change, so the node is as it was.
#[tokio::test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (scripts/test.sh sets it)"
)]
async fn a_daemon_killed_mid_fix_undoes_it_at_the_next_start() {
    use std::os::unix::process::ExitStatusExt;

    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start_with(
        Version::V1_7,
        LabConfig {
            config_path: false,
            ..Default::default()
        },
    )
    .await;
    let bus = Bus::start();
    // Steps: CA file, hosts.toml, config.toml, restart. Die once config.toml is written.
    let mut daemon = Daemon::start_with_env(
        &ctr,
        &format!("dbus_address = \"{}\"\n", bus.address),
        &[("CTRDIAG_FAILPOINT", "done:2")],
    )
    .await;
    let (config_file, certs_d) = (ctr.config_file.clone(), ctr.certs_d.clone());
    let fake = FakeSystemd::serve(&bus, ctr).await;
    let original = std::fs::read_to_string(&config_file).unwrap();
    let ca = registry.tls.as_ref().unwrap().ca_path.display().to_string();

    let fix = daemon
        .cli(&["fix", &registry.image_ref(), "--ca", &ca])
        .await;
    assert_ne!(fix.code, 0, "{fix:?}");
    let status = daemon.wait_exit().expect("the daemon exited");
    assert_eq!(
        status.signal(),
        Some(9),
        "killed by the failpoint: {status:?}"
    );
    let on_disk = std::fs::read_to_string(&config_file).unwrap();
    assert_ne!(
        on_disk, original,
        "config.toml was written before the crash"
    );
    toml::from_str::<toml::Table>(&on_disk).expect("a whole config.toml");

    daemon.restart().await;
    assert_eq!(
        std::fs::read_to_string(&config_file).unwrap(),
        original,
        "undone at start"
    );
    assert!(
        files_under(&certs_d).is_empty(),
        "{:?}",
        files_under(&certs_d)
    );
    let changes = daemon.cli(&["-o", "json", "changes"]).await.json();
    assert_eq!(changes["changes"][0]["state"], "rolled_back", "{changes:#}");
    assert!(
        changes["changes"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );
    assert_eq!(
        fake.restarts.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "containerd never restarted"
    );
    // And the fix works when tried again.
    let again = daemon
        .cli(&["fix", &registry.image_ref(), "--ca", &ca])
        .await;
    assert_eq!(again.code, 0, "{again:?}\n{}", daemon.log());
}

/// Registry settings in a file pulled in by `imports`: containerd merges it, so adding
/// config_path to config.toml could break CRI; the fix refuses and names the file.
#[tokio::test]
async fn registry_settings_in_an_imported_file_are_not_edited_around() {
    let conf_d = lab::scratch_dir("conf-d-");
    std::fs::write(
        conf_d.path().join("10-registry.toml"),
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"old.ctrdiag.test:5000\".tls]\n  insecure_skip_verify = true\n",
    )
    .unwrap();
    let imports = format!("imports = [\"{}/*.toml\"]\n", conf_d.path().display());
    let node = node(
        Version::V1_7,
        LabConfig {
            config_path: false,
            top_level: imports,
            ..Default::default()
        },
    )
    .await;
    let imported = conf_d.path().join("10-registry.toml").display().to_string();
    let status = node.daemon.cli(&["-o", "json", "status"]).await.json();
    assert_eq!(
        status["config"]["imports"][0],
        imported.as_str(),
        "{status:#}"
    );
    assert_eq!(
        status["config"]["imports_with_registry_settings"][0],
        imported.as_str()
    );

    let original = std::fs::read(&node.config_file).unwrap();
    let fix = node
        .fix(&["--ca", &node.ca_file.display().to_string()])
        .await;
    assert_eq!(fix.code, 1, "{fix:?}");
    assert!(
        fix.stderr.contains(&imported),
        "the message names the file: {fix:?}"
    );
    assert_eq!(std::fs::read(&node.config_file).unwrap(), original);
    assert!(node.cri_ready().await);
}

/// containerd 2.1 after the runbook's edit: the legacy tls table is ignored there (the
/// pull still fails), and the fix adds config_path + hosts.toml, which works.
#[tokio::test]
async fn after_the_runbooks_ignored_edit_on_2_1_the_fix_works() {
    let table = lab::containerd::cri_registry_table(Version::V2_1);
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let extra = format!(
        "[{table}.configs.\"{}\".tls]\n  insecure_skip_verify = true\n",
        registry.host
    );
    let ctr = LabContainerd::start_with(
        Version::V2_1,
        LabConfig {
            config_path: false,
            extra,
            ..Default::default()
        },
    )
    .await;
    let bus = Bus::start();
    let daemon = Daemon::start_with(&ctr, &format!("dbus_address = \"{}\"\n", bus.address)).await;
    let fake = FakeSystemd::serve(&bus, ctr).await;
    let image = registry.image_ref();
    assert_eq!(
        daemon.cli(&["pull", &image]).await.code,
        1,
        "2.x ignores the legacy table"
    );

    let ca = registry.tls.as_ref().unwrap().ca_path.display().to_string();
    let fix = daemon
        .cli(&["-o", "json", "fix", &image, "--ca", &ca])
        .await;
    assert_eq!(fix.code, 0, "{fix:?}\n{}", daemon.log());
    assert_eq!(fake.restarts.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(daemon.cli(&["pull", &image]).await.code, 0);
}
