//! What the daemon lets out and lets in: no secret from the node's files in any output
//! or log, a bound on concurrent test pulls, host names containerd's lookup would
//! confuse refused, and the modes of what a fix writes whatever the umask.

#[macro_use]
mod lab;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use lab::certs::CertKind;
use lab::containerd::{LabConfig, LabContainerd, Version};
use lab::daemon::{CliRun, Daemon};
use lab::registry::{Registry, RegistryKind};
use lab::systemd::{Bus, FakeSystemd};

const HEADER_SECRET: &str = "Basic c2VjcmV0LWhlYWRlcg==";
const PASSWORD: &str = "pa55-never-printed";

fn text(run: &CliRun) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
}

#[tokio::test]
async fn no_output_and_no_log_line_holds_a_secret() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let table = lab::containerd::cri_registry_table(Version::V2_1);
    let ctr = LabContainerd::start_with(
        Version::V2_1,
        LabConfig {
            extra: format!(
                "[{table}.configs.\"other.ctrdiag.test\".auth]\n  username = \"robot\"\n  password = \"{PASSWORD}\"\n"
            ),
            ..Default::default()
        },
    )
    .await;
    let tls = registry.tls.as_ref().unwrap();
    let key_pem = std::fs::read_to_string(&tls.key_path).unwrap();
    let key_body: String = key_pem.lines().nth(1).unwrap().to_string();
    // The operator's hosts.toml: verification off, and an Authorization header.
    let dir = ctr.certs_d.join(&registry.host);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("client.key"), &key_pem).unwrap();
    let url = format!("https://{}", registry.host);
    std::fs::write(
        dir.join("hosts.toml"),
        format!(
            "server = \"{url}\"\n\n[host.\"{url}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n  [host.\"{url}\".header]\n    Authorization = \"{HEADER_SECRET}\"\n"
        ),
    )
    .unwrap();
    let bus = Bus::start();
    let daemon = Daemon::start_with(&ctr, &format!("dbus_address = \"{}\"\n", bus.address)).await;
    let _fake = FakeSystemd::serve(&bus, ctr).await;
    let image = registry.image_ref();
    let ca = tls.ca_path.display().to_string();
    let bundle = daemon.dir().join("bundle.pem");
    std::fs::write(&bundle, format!("{}{key_pem}", tls.ca_pem)).unwrap();

    let mut outputs = Vec::new();
    for args in [
        vec!["diagnose", image.as_str()],
        vec!["-o", "json", "diagnose", image.as_str()],
        vec!["fix", image.as_str(), "--ca", ca.as_str(), "--dry-run"],
        vec![
            "-o",
            "json",
            "fix",
            image.as_str(),
            "--ca",
            ca.as_str(),
            "--dry-run",
        ],
        vec!["fix", image.as_str(), "--ca", bundle.to_str().unwrap()],
        vec!["-o", "json", "fix", image.as_str(), "--ca", ca.as_str()],
        vec!["rollback", "--dry-run"],
        vec!["-o", "json", "rollback", "--dry-run"],
        vec!["-o", "json", "changes"],
        vec!["-o", "json", "status"],
        vec!["status"],
    ] {
        let run = daemon.cli(&args).await;
        outputs.push((args.join(" "), text(&run)));
    }
    // The outputs really show the files around the secrets (or the test proves nothing):
    // diagnose names the setting and its file, the diffs show the file itself.
    let diagnose = &outputs[1].1;
    assert!(diagnose.contains("skip_verify"), "{diagnose}");
    assert!(outputs[2].1.contains("[host."), "{}", outputs[2].1);
    assert!(outputs[2].1.contains("Authorization"), "{}", outputs[2].1);
    assert!(
        outputs[4].1.contains("private key"),
        "the bundle is refused: {}",
        outputs[4].1
    );
    assert!(outputs[6].1.contains("Authorization"), "{}", outputs[6].1);
    outputs.push(("the daemon's log".into(), daemon.all_logs()));
    for (what, out) in &outputs {
        for secret in [
            HEADER_SECRET,
            "c2VjcmV0LWhlYWRlcg",
            PASSWORD,
            key_body.as_str(),
        ] {
            assert!(
                !out.contains(secret),
                "`{what}` shows a secret ({secret}):\n{out}"
            );
        }
    }
}

#[tokio::test]
async fn test_pulls_beyond_the_limit_are_refused_while_status_answers() {
    let pause = lab::scratch_dir("pause-");
    let failpoint = format!("pause:test_pull_cleanup:{}", pause.path().display());
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(Version::V1_7).await;
    ctr.trust_registry_ca(&registry);
    let daemon = Daemon::start_with_env(
        &ctr,
        "max_concurrent_pulls = 1\n",
        &[("CTRDIAG_FAILPOINT", &failpoint)],
    )
    .await;
    let image = registry.image_ref();
    let mut first = daemon.spawn_cli(&["pull", &image]);
    let paused = pause.path().join("test_pull_cleanup.paused");
    lab::wait_for(
        "the first pull to hold its slot",
        Duration::from_secs(30),
        || {
            let p = paused.clone();
            async move { p.exists().then_some(()) }
        },
    )
    .await;

    let second = daemon.cli(&["pull", &image]).await;
    assert_eq!(second.code, 1, "{second:?}");
    assert!(second.stderr.contains("max_concurrent_pulls"), "{second:?}");
    let diagnose = daemon.cli(&["diagnose", &image]).await;
    assert!(
        diagnose.stderr.contains("max_concurrent_pulls"),
        "{diagnose:?}"
    );
    let status = daemon.cli(&["status"]).await;
    assert_eq!(status.code, 0, "status keeps answering: {status:?}");

    std::fs::write(pause.path().join("test_pull_cleanup.go"), b"").unwrap();
    assert!(first.wait().unwrap().success());
    let third = daemon.cli(&["pull", &image]).await;
    assert_eq!(third.code, 0, "the slot is free again: {third:?}");
}

#[tokio::test]
async fn host_names_containerds_lookup_would_confuse_are_refused() {
    let ctr = LabContainerd::start(Version::V2_1).await;
    let daemon = Daemon::start(&ctr).await;
    for target in ["_default", "reg_5000_", "_default:5000"] {
        for args in [
            vec!["fix", target, "--insecure-skip-verify"],
            vec!["diagnose", target],
        ] {
            let run = daemon.cli(&args).await;
            assert_eq!(run.code, 2, "{args:?}: {run:?}");
            assert!(run.stderr.contains("invalid target"), "{run:?}");
        }
    }
    assert!(
        std::fs::read_dir(&ctr.certs_d).unwrap().next().is_none(),
        "nothing was written"
    );
}

/// A unit's `UMask=0077` (or an operator's shell) must not make what a fix writes
/// unreadable: certs.d directories are 0755, hosts.toml and CA files 0644.
#[tokio::test]
async fn a_fix_under_a_narrow_umask_gives_certs_d_its_modes() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    let bus = Bus::start();
    let daemon = Daemon::start_under_umask(
        &ctr,
        &format!("dbus_address = \"{}\"\n", bus.address),
        0o077,
    )
    .await;
    let certs_d = ctr.certs_d.clone();
    let _fake = FakeSystemd::serve(&bus, ctr).await;
    let ca = registry.tls.as_ref().unwrap().ca_path.display().to_string();
    let run = daemon
        .cli(&["fix", &registry.image_ref(), "--ca", &ca])
        .await;
    assert_eq!(run.code, 0, "{run:?}");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = certs_d.join(&registry.host);
    assert_eq!(mode(&dir), 0o755, "{}", dir.display());
    assert_eq!(mode(&dir.join("hosts.toml")), 0o644);
    assert_eq!(mode(&dir.join("ctrdiag-ca.crt")), 0o644);
}
