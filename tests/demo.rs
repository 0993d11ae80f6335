//! `scripts/demo.sh`: a lab containerd 2.1.9 and a TLS registry signed by a private
//! CA, ctrdiagd in front of it, and the ctrdiag commands an operator would type, with
//! their real output. Not part of `cargo test` (the target has `test = false`).

#[macro_use]
mod lab;

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
        "ctrdiag demo: containerd 2.1.9 (a lab instance), a registry whose TLS certificate\nis signed by a private CA, and ctrdiagd talking to that containerd through a\nstand-in systemd on a private D-Bus (systemd itself cannot run here).",
    );
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    let bus = lab::systemd::Bus::start();
    let daemon = Daemon::start_with(&ctr, &format!("dbus_address = \"{}\"\n", bus.address)).await;
    let _systemd = lab::systemd::FakeSystemd::serve(&bus, ctr).await;
    let image = registry.image_ref();
    let ca = registry
        .tls
        .as_ref()
        .expect("TLS registry")
        .ca_path
        .display()
        .to_string();

    show(&daemon, &["status"]).await;
    say("The kubelet's pull fails; ctrdiag pulls through CRI exactly as the kubelet does:");
    let failed = show(&daemon, &["pull", &image]).await;
    assert_eq!(failed, 1, "the pull must fail before the CA is trusted");

    say("Why? diagnose probes the registry, reads containerd's config and test-pulls:");
    show(&daemon, &["diagnose", &image]).await;

    say(
        "The runbook would edit config.toml to skip verification, which containerd 2.x\nignores. The real fix is the CA in hosts.toml; first the plan, changing nothing:",
    );
    show(&daemon, &["fix", &image, "--ca", &ca, "--dry-run"]).await;
    say("Then the fix itself, proven by a real pull through CRI:");
    let fixed = show(&daemon, &["fix", &image, "--ca", &ca]).await;
    assert_eq!(fixed, 0, "the fix must hold");
    show(&daemon, &["pull", &image]).await;
    show(&daemon, &["changes"]).await;

    say("Every change can be undone; the rollback is itself a recorded change:");
    show(&daemon, &["rollback"]).await;
    show(&daemon, &["changes"]).await;
    say("Done. Everything above ran against real processes, which stop now.");
}
