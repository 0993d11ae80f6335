//! `ctrdiag diagnose` against the lab's real registries (each way a certificate or a
//! registry can be wrong) and real containerd 1.6 / 1.7 / 2.1: the right cause code
//! and the facts an operator needs (dates, names, fingerprints).

#[macro_use]
mod lab;

use lab::certs::CertKind;
use lab::containerd::{LabConfig, LabContainerd, Version};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind};

/// Runs `ctrdiag -o json diagnose TARGET`, expecting `exit`.
async fn diagnose(daemon: &Daemon, target: &str, exit: i32) -> serde_json::Value {
    let run = daemon.cli(&["-o", "json", "diagnose", target]).await;
    assert_eq!(run.code, exit, "{run:?}\n{}", daemon.log());
    run.json()
}

/// The finding with `cause`, or a panic listing what was found.
fn finding<'a>(d: &'a serde_json::Value, cause: &str) -> &'a serde_json::Value {
    d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["cause"] == cause)
        .unwrap_or_else(|| panic!("no {cause} finding in {d:#}"))
}

fn all_text(f: &serde_json::Value) -> String {
    f.to_string()
}

async fn lab(version: Version, kind: RegistryKind) -> (Registry, LabContainerd, Daemon) {
    let registry = Registry::start(kind).await;
    let ctr = LabContainerd::start(version).await;
    let daemon = Daemon::start(&ctr).await;
    (registry, ctr, daemon)
}

async fn untrusted_private_ca(version: Version) {
    let (registry, _ctr, daemon) = lab(version, RegistryKind::Tls(CertKind::PrivateCa)).await;
    let d = diagnose(&daemon, &registry.image_ref(), 1).await;
    assert_eq!(d["healthy"], false);
    let f = finding(&d, "tls_unknown_authority");
    assert_eq!(f["severity"], "error");
    let text = all_text(f);
    assert!(text.contains("containerd said"), "{text}");
    assert!(
        text.contains("issuer CN=ctrdiag lab CA"),
        "the probe's chain is evidence: {text}"
    );
    let commands: Vec<&str> = f["remedies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["command"].as_str())
        .collect();
    assert!(commands[0].contains("--ca /path/to/ca.crt"), "{commands:?}");
    assert!(
        commands
            .iter()
            .any(|c| c.contains("--ca-from-server --sha256")),
        "{commands:?}"
    );
    assert_eq!(d["pull"]["cause"], "tls_unknown_authority");
    assert!(
        d["tried"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t.as_str().unwrap().starts_with("pull "))
    );

    // The human report says what to run next and exits 1.
    let human = daemon.cli(&["diagnose", &registry.image_ref()]).await;
    assert_eq!(human.code, 1);
    assert!(human.stdout.contains("What was tried:"), "{human:?}");
    assert!(human.stdout.contains("$ ctrdiag fix"), "{human:?}");
    assert!(human.stdout.contains("NOT HEALTHY"), "{human:?}");
    // ...and where each finding is explained.
    assert!(
        human
            .stdout
            .contains("    more: ctrdiag explain tls_unknown_authority\n"),
        "{human:?}"
    );
}

async fn self_signed(version: Version) {
    let (registry, _ctr, daemon) = lab(version, RegistryKind::Tls(CertKind::SelfSigned)).await;
    let d = diagnose(&daemon, &registry.image_ref(), 1).await;
    assert!(
        all_text(finding(&d, "tls_unknown_authority")).contains("self-signed"),
        "{d:#}"
    );
}

async fn expired(version: Version) {
    let (registry, _ctr, daemon) = lab(version, RegistryKind::Tls(CertKind::Expired)).await;
    let d = diagnose(&daemon, &registry.image_ref(), 1).await;
    let f = finding(&d, "tls_expired");
    let date = registry.tls.as_ref().unwrap().not_after.date().to_string();
    assert!(
        f["summary"].as_str().unwrap().contains(&date),
        "expiry date {date} in {f:#}"
    );
}

async fn not_yet_valid(version: Version) {
    let (registry, _ctr, daemon) = lab(version, RegistryKind::Tls(CertKind::NotYetValid)).await;
    let d = diagnose(&daemon, &registry.image_ref(), 1).await;
    let f = finding(&d, "tls_not_yet_valid");
    assert!(f["summary"].as_str().unwrap().contains("clock"), "{f:#}");
}

async fn wrong_host_name(version: Version) {
    let (registry, _ctr, daemon) = lab(version, RegistryKind::Tls(CertKind::WrongHost)).await;
    let d = diagnose(&daemon, &registry.image_ref(), 1).await;
    let f = finding(&d, "tls_hostname_mismatch");
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary.contains("localhost, other.ctrdiag.test"),
        "{summary}"
    );
    assert!(
        summary.contains("not valid for registry.ctrdiag.test"),
        "{summary}"
    );
}

async fn plain_http_registry(version: Version) {
    let (registry, _ctr, daemon) = lab(version, RegistryKind::PlainHttp).await;
    let d = diagnose(&daemon, &registry.image_ref(), 1).await;
    let f = finding(&d, "http_response_to_https");
    assert!(all_text(f).contains("--plain-http"), "{f:#}");
}

async fn auth_required(version: Version) {
    let registry =
        Registry::start_with_auth(RegistryKind::Tls(CertKind::PrivateCa), "alice", "s3cret-pw")
            .await;
    let ctr = LabContainerd::start(version).await;
    ctr.trust_registry_ca(&registry);
    let daemon = Daemon::start(&ctr).await;
    let d = diagnose(&daemon, &registry.image_ref(), 1).await;
    let f = finding(&d, "auth_required");
    assert_eq!(f["severity"], "error");
    assert!(!d.to_string().contains("s3cret-pw"), "no secret in output");
    // With the CA trusted, TLS itself is fine: no TLS finding.
    assert!(
        d["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| !f["cause"].as_str().unwrap().starts_with("tls_")),
        "{d:#}"
    );
}

async fn name_that_does_not_resolve(version: Version) {
    let ctr = LabContainerd::start(version).await;
    let daemon = Daemon::start(&ctr).await;
    let d = diagnose(&daemon, "nonexistent.invalid/app:1", 1).await;
    finding(&d, "dns_failure");
}

async fn closed_port(version: Version) {
    let ctr = LabContainerd::start(version).await;
    let daemon = Daemon::start(&ctr).await;
    lab::ensure_hosts_entry();
    let port = lab::free_port();
    let d = diagnose(&daemon, &format!("{}:{port}/app:1", lab::REGISTRY_NAME), 1).await;
    finding(&d, "connection_refused");
}

async fn healthy_after_trusting_the_ca(version: Version) {
    let (registry, ctr, daemon) = lab(version, RegistryKind::Tls(CertKind::PrivateCa)).await;
    ctr.trust_registry_ca(&registry);
    let d = diagnose(&daemon, &registry.image_ref(), 0).await;
    assert_eq!(d["healthy"], true, "{d:#}");
    assert_eq!(d["pull"]["ok"], true);
    // The probe checked the chain with containerd's CA from hosts.toml.
    assert_eq!(
        d["probe"]["trust"]["with_ca_files"]["verdict"], "trusted",
        "{d:#}"
    );
}

per_version!(
    untrusted_private_ca,
    self_signed,
    expired,
    not_yet_valid,
    wrong_host_name,
    plain_http_registry,
    auth_required,
    name_that_does_not_resolve,
    closed_port,
    healthy_after_trusting_the_ca,
);

#[tokio::test]
async fn legacy_tls_table_on_2_1_is_reported_as_ignored() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let table = lab::containerd::cri_registry_table(Version::V2_1);
    let ctr = LabContainerd::start_with(
        Version::V2_1,
        LabConfig {
            config_path: false,
            extra: format!(
                "[{table}.configs.\"{}\".tls]\n  insecure_skip_verify = true\n",
                registry.host
            ),
            ..Default::default()
        },
    )
    .await;
    let daemon = Daemon::start(&ctr).await;
    let d = diagnose(&daemon, &registry.image_ref(), 1).await;
    let f = finding(&d, "config_ignored");
    assert!(
        f["summary"].as_str().unwrap().contains(&registry.host),
        "{f:#}"
    );
    // ...which is why the pull still fails with the x509 error.
    finding(&d, "tls_unknown_authority");
}

#[tokio::test]
async fn legacy_tls_table_with_config_path_on_1_7_is_reported_as_conflict() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let table = lab::containerd::cri_registry_table(Version::V1_7);
    let ctr = LabContainerd::start_with(
        Version::V1_7,
        LabConfig {
            extra: format!(
                "[{table}.configs.\"{}\".tls]\n  insecure_skip_verify = true\n",
                registry.host
            ),
            wait_for_cri: false,
            ..Default::default()
        },
    )
    .await;
    let daemon = Daemon::start(&ctr).await;
    let d = diagnose(&daemon, &registry.image_ref(), 1).await;
    let conflict = finding(&d, "config_conflict");
    assert!(
        conflict["summary"]
            .as_str()
            .unwrap()
            .contains("CRI plugin refuses to load"),
        "{conflict:#}"
    );
    // The test pull cannot even start: CRI is not there.
    finding(&d, "cri_unavailable");
    let cri = daemon.cli(&["-o", "json", "status"]).await.json();
    assert_eq!(cri["containerd"]["cri_ready"], false, "{cri:#}");
}

#[tokio::test]
async fn a_bare_host_is_probed_without_a_pull() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::Expired)).await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    let daemon = Daemon::start(&ctr).await;
    let d = diagnose(&daemon, &registry.host, 1).await;
    assert!(d["pull"].is_null());
    let f = finding(&d, "tls_expired");
    assert!(
        all_text(f).contains("certificate 0"),
        "the chain is the evidence: {f:#}"
    );
}

#[tokio::test]
async fn a_legacy_ca_file_on_1_7_is_the_ca_the_probe_checks_with() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let table = lab::containerd::cri_registry_table(Version::V1_7);
    let ca = registry.tls.as_ref().unwrap().ca_path.display().to_string();
    let ctr = LabContainerd::start_with(
        Version::V1_7,
        LabConfig {
            config_path: false,
            extra: format!(
                "[{table}.configs.\"{}\".tls]\n  ca_file = \"{ca}\"\n",
                registry.host
            ),
            ..Default::default()
        },
    )
    .await;
    let daemon = Daemon::start(&ctr).await;
    let d = diagnose(&daemon, &registry.image_ref(), 0).await;
    assert_eq!(
        d["pull"]["ok"], true,
        "1.7 honours the legacy table without config_path: {d:#}"
    );
    assert_eq!(
        d["probe"]["trust"]["with_ca_files"]["verdict"], "trusted",
        "{d:#}"
    );
    // Working, but deprecated: advice, not an error.
    let f = finding(&d, "config_deprecated");
    assert_eq!(f["severity"], "warning", "{f:#}");
}

/// The CA is in the trust store ctrdiagd sees (SSL_CERT_FILE, as after
/// update-ca-certificates) but containerd, started before, still fails: that
/// disagreement is a finding, and the remedy is a restart.
#[tokio::test]
async fn a_ca_added_to_the_system_store_after_containerd_started_is_explained() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    let ca = registry.tls.as_ref().unwrap().ca_path.display().to_string();
    let daemon = Daemon::start_with_env(&ctr, "", &[("SSL_CERT_FILE", ca.as_str())]).await;
    let d = diagnose(&daemon, &registry.image_ref(), 1).await;
    assert_eq!(d["probe"]["trust"]["system"]["verdict"], "trusted", "{d:#}");
    let disagreement = d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["summary"]
                .as_str()
                .unwrap()
                .contains("only when it starts")
        })
        .unwrap_or_else(|| panic!("no disagreement finding: {d:#}"));
    assert_eq!(disagreement["cause"], "tls_unknown_authority");
    assert_eq!(
        disagreement["remedies"][0]["command"],
        "ctrdiag restart-containerd"
    );
}

/// A config.toml version the running containerd cannot read has one cause code,
/// whether status or diagnose reports it.
#[tokio::test]
async fn an_unreadable_config_version_has_one_cause_code_everywhere() {
    let ctr = LabContainerd::start(Version::V1_7).await;
    // containerd read its config at start; the file on disk now says version 3.
    std::fs::write(&ctr.config_file, "version = 3\n").unwrap();
    let daemon = Daemon::start(&ctr).await;
    let status = daemon.cli(&["-o", "json", "status"]).await.json();
    let causes: Vec<&str> = status["config"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["cause"].as_str().unwrap())
        .collect();
    assert!(causes.contains(&"config_unreadable"), "{status}");
    let d = diagnose(&daemon, "registry.ctrdiag.test:5000", 1).await;
    finding(&d, "config_unreadable");
}
