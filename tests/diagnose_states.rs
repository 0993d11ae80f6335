//! Diagnose tells the truth in every state of the node, also the states ctrdiag's own
//! fixes lead to: real containerd 1.6 / 1.7 / 2.1, real registries with real
//! certificates, the stand-in systemd on a real dbus-daemon. (The whole table of
//! registry faults × node states is a unit test of the core: diagnose/engine_tests.rs.)

#[macro_use]
mod lab;

use lab::certs::CertKind;
use lab::containerd::{LabConfig, LabContainerd, Version};
use lab::daemon::{CliRun, Daemon};
use lab::registry::{Registry, RegistryKind};
use lab::systemd::{Bus, FakeSystemd};
use serde_json::Value;

struct Node {
    registry: Registry,
    daemon: Daemon,
    _fake: FakeSystemd,
    _bus: Bus,
}

async fn node(version: Version, kind: RegistryKind) -> Node {
    let registry = Registry::start(kind).await;
    let ctr = LabContainerd::start_with(version, LabConfig::default()).await;
    let bus = Bus::start();
    let daemon = Daemon::start_with(&ctr, &format!("dbus_address = \"{}\"\n", bus.address)).await;
    let fake = FakeSystemd::serve(&bus, ctr).await;
    Node {
        registry,
        daemon,
        _fake: fake,
        _bus: bus,
    }
}

impl Node {
    async fn run(&self, args: &[&str]) -> CliRun {
        self.daemon.cli(args).await
    }

    /// `diagnose -o json IMAGE`, exiting `exit`.
    async fn diagnose(&self, exit: i32) -> Value {
        let run = self
            .run(&["-o", "json", "diagnose", &self.registry.image_ref()])
            .await;
        assert_eq!(run.code, exit, "{run:?}\n{}", self.daemon.log());
        run.json()
    }
}

fn findings(d: &Value) -> &Vec<Value> {
    d["findings"].as_array().expect("findings")
}

/// SHA-256 of the first certificate in a PEM file, as openssl prints it.
fn fingerprint_of(pem: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest;
    let b64: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    sha2::Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

async fn after_a_plain_http_fix_the_registry_is_healthy_with_a_note(version: Version) {
    let node = node(version, RegistryKind::PlainHttp).await;
    let before = node.diagnose(1).await;
    assert!(
        findings(&before)
            .iter()
            .any(|f| f["cause"] == "http_response_to_https"),
        "{before:#}"
    );
    let fix = node
        .run(&["fix", &node.registry.image_ref(), "--plain-http"])
        .await;
    assert_eq!(fix.code, 0, "{fix:?}");

    let after = node.diagnose(0).await;
    assert_eq!(after["healthy"], true, "{after:#}");
    let f = findings(&after);
    assert!(
        !f.iter().any(|x| x["severity"] == "error"),
        "no error once HTTP is configured: {after:#}"
    );
    let note = f
        .iter()
        .find(|x| x["cause"] == "plain_http_in_use")
        .unwrap_or_else(|| panic!("{after:#}"));
    assert_eq!(note["severity"], "info");
    assert!(
        !note.to_string().contains("--plain-http"),
        "not the fix in place again: {note}"
    );
}

async fn skip_verify_on_an_expired_certificate_names_the_expiry_and_the_change(version: Version) {
    let node = node(version, RegistryKind::Tls(CertKind::Expired)).await;
    let fix = node
        .run(&[
            "-o",
            "json",
            "fix",
            &node.registry.image_ref(),
            "--insecure-skip-verify",
            "--ttl",
            "1h",
        ])
        .await;
    assert_eq!(fix.code, 0, "{fix:?}");
    let change = fix.json()["change_id"].as_str().unwrap().to_string();

    let d = node.diagnose(0).await;
    let w = findings(&d)
        .iter()
        .find(|x| x["severity"] == "warning")
        .unwrap_or_else(|| panic!("{d:#}"));
    assert_eq!(w["cause"], "tls_expired", "the real problem: {w:#}");
    let text = w.to_string();
    assert!(text.contains("renew"), "{text}");
    assert!(
        !text.contains("--ca /"),
        "a CA cannot help an expired certificate: {text}"
    );
    assert!(text.contains(&change) && text.contains("until"), "{text}");
    assert!(
        !text.contains("capabilities"),
        "not the whole hosts.toml: {text}"
    );
}

async fn skip_verify_on_an_unknown_ca_points_at_the_ca_fix(version: Version) {
    let node = node(version, RegistryKind::Tls(CertKind::PrivateCa)).await;
    let fix = node
        .run(&["fix", &node.registry.image_ref(), "--insecure-skip-verify"])
        .await;
    assert_eq!(fix.code, 0, "{fix:?}");
    let d = node.diagnose(0).await;
    let w = findings(&d)
        .iter()
        .find(|x| x["severity"] == "warning")
        .unwrap_or_else(|| panic!("{d:#}"));
    assert_eq!(w["cause"], "tls_unknown_authority", "{w:#}");
    assert!(w.to_string().contains("--ca /path/to/ca.crt"), "{w:#}");
}

/// The lab's registries send only their own certificate, as most do: the CA is not
/// there to take, the error says so and offers both ways out, and pinning the
/// registry's own certificate makes the pull work.
async fn a_registry_that_does_not_send_its_ca_can_be_pinned(version: Version) {
    let node = node(version, RegistryKind::Tls(CertKind::PrivateCa)).await;
    let tls = node.registry.tls.as_ref().unwrap();
    let ca_fp = fingerprint_of(&tls.ca_pem);
    let leaf_fp = fingerprint_of(&std::fs::read_to_string(&tls.cert_path).unwrap());
    let image = node.registry.image_ref();

    let wrong = node
        .run(&["fix", &image, "--ca-from-server", "--sha256", &ca_fp])
        .await;
    assert_eq!(wrong.code, 1, "{wrong:?}");
    for words in [
        "leaf (the registry's own certificate)",
        "not sent",
        "--pin-server-certificate",
        "--ca ca.crt",
        &leaf_fp,
    ] {
        assert!(wrong.stderr.contains(words), "{words:?}: {wrong:?}");
    }
    let not_a_ca = node
        .run(&["fix", &image, "--ca-from-server", "--sha256", &leaf_fp])
        .await;
    assert_eq!(not_a_ca.code, 1, "{not_a_ca:?}");
    assert!(not_a_ca.stderr.contains("not a CA"), "{not_a_ca:?}");

    let pin = node
        .run(&[
            "-o",
            "json",
            "fix",
            &image,
            "--pin-server-certificate",
            "--sha256",
            &leaf_fp,
        ])
        .await;
    assert_eq!(pin.code, 0, "{pin:?}\n{}", node.daemon.log());
    assert!(
        pin.json()["plan"]["title"]
            .as_str()
            .unwrap()
            .contains("until it is renewed")
    );
    let pull = node.run(&["pull", &image]).await;
    assert_eq!(pull.code, 0, "a pinned certificate is trusted: {pull:?}");
    node.diagnose(0).await;
}

per_version!(
    after_a_plain_http_fix_the_registry_is_healthy_with_a_note,
    skip_verify_on_an_expired_certificate_names_the_expiry_and_the_change,
    skip_verify_on_an_unknown_ca_points_at_the_ca_fix,
    a_registry_that_does_not_send_its_ca_can_be_pinned,
);
