//! `scripts/demo.sh`: a lab containerd 2.1.9 and a TLS registry signed by a private
//! CA, ctrdiagd in front of it, and the ctrdiag commands an operator would type, with
//! their real output. Not part of `cargo test` (the target has `test = false`).

#[macro_use]
mod lab;

use std::time::Duration;

use lab::certs::CertKind;
use lab::containerd::{LabContainerd, Version};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind};

/// Prints a command as typed and its output, and returns its exit code.
async fn show(daemon: &Daemon, args: &[&str]) -> i32 {
    println!("\n$ ctrdiag {}", args.join(" "));
    let run = daemon.cli(args).await;
    print!("{}", run.stdout);
    for line in run.stderr.lines() {
        println!("{line}");
    }
    println!("[exit code {}]", run.code);
    run.code
}

fn say(text: &str) {
    println!("\n# {}", text.replace('\n', "\n# "));
}

#[tokio::main]
async fn main() {
    say(
        "ctrdiag demo: containerd 2.1.9 (a lab instance), a registry whose TLS certificate\nis signed by a private CA, and ctrdiagd following containerd's log and talking to\nit through a stand-in systemd on a private D-Bus (systemd itself cannot run here).",
    );
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    let bus = lab::systemd::Bus::start();
    let daemon = Daemon::start_with(&ctr, &format!("dbus_address = \"{}\"\n", bus.address)).await;
    let systemd = lab::systemd::FakeSystemd::serve(&bus, ctr).await;
    let image = registry.image_ref();
    let host = registry.host.clone();
    let ca = registry
        .tls
        .as_ref()
        .expect("TLS registry")
        .ca_path
        .display()
        .to_string();

    show(&daemon, &["status"]).await;
    show(&daemon, &["check"]).await;
    say(&format!(
        "The kubelet pulls {image} through CRI (this demo makes that call itself,\nstraight to containerd's socket, not through ctrdiag), and it fails:"
    ));
    let err = systemd
        .containerd
        .lock()
        .await
        .cri_pull(&image)
        .await
        .expect_err("the pull must fail before the CA is trusted");
    println!("  {err}");

    say("ctrdiagd saw it in containerd's log; nobody had to report a stuck Pod:");
    lab::wait_for(
        "the failed pull to be detected",
        Duration::from_secs(20),
        || async {
            let run = daemon.cli(&["-o", "json", "events"]).await;
            (run.json()["events"]
                .as_array()
                .is_some_and(|e| !e.is_empty()))
            .then_some(())
        },
    )
    .await;
    show(&daemon, &["events"]).await;
    say("node-problem-detector's plugin reports it (exit 1, one line):");
    show(&daemon, &["check"]).await;

    say("Why? diagnose probes the registry, reads containerd's config and test-pulls:");
    show(&daemon, &["diagnose", &image]).await;

    say(
        "The runbook would edit config.toml to skip verification, which containerd 2.x\nignores. The real fix is the CA in hosts.toml. No image is named: the fix proves\nitself with the pull that failed. First the plan, changing nothing:",
    );
    show(&daemon, &["fix", &host, "--ca", &ca, "--dry-run"]).await;
    say("Then the fix itself, proven by a real pull through CRI:");
    let fixed = show(&daemon, &["fix", &host, "--ca", &ca]).await;
    assert_eq!(fixed, 0, "the fix must hold");
    say("The pull works again, so the problem is over and the plugin says OK:");
    lab::wait_for("check to turn OK", Duration::from_secs(20), || async {
        (daemon.cli(&["check"]).await.code == 0).then_some(())
    })
    .await;
    show(&daemon, &["check"]).await;
    show(&daemon, &["events"]).await;
    show(&daemon, &["changes"]).await;

    say("Every change can be undone; the rollback is itself a recorded change:");
    show(&daemon, &["rollback"]).await;
    show(&daemon, &["changes"]).await;
    say("Done. Everything above ran against real processes, which stop now.");
}
