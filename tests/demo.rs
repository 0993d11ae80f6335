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
        "ctrdiag demo: containerd 2.1.9 (a lab instance), a registry whose TLS certificate\nis signed by a private CA, and ctrdiagd talking to that containerd.",
    );
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    let daemon = Daemon::start(&ctr).await;
    let image = registry.image_ref();

    show(&daemon, &["status"]).await;
    say("The kubelet's pull fails; ctrdiag pulls through CRI exactly as the kubelet does:");
    let failed = show(&daemon, &["pull", &image]).await;
    assert_eq!(failed, 1, "the pull must fail before the CA is trusted");

    say(&format!(
        "The right fix is not skip-verify in config.toml (containerd 2.x ignores that table):\nit is the CA in {}/{}/hosts.toml, which containerd reads without a restart.",
        ctr.certs_d.display(),
        registry.host
    ));
    ctr.trust_registry_ca(&registry);
    let ok = show(&daemon, &["pull", &image]).await;
    assert_eq!(ok, 0, "the pull must work once the CA is trusted");
    show(&daemon, &["-o", "json", "pull", "--keep", &image]).await;
    show(&daemon, &["images"]).await;
    say("Done. Everything above ran against real processes, which stop now.");
}
