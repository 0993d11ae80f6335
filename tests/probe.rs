//! The probe against real in-process servers on loopback, one failure mode per test.

mod probe_servers;

use std::time::Duration;

use ctrdiag::registry::host::RegistryHost;
use ctrdiag::registry::probe::{
    CaFile, ClientIdentity, Fact, Outcome, ProbeError, ProbeOptions, ProbeReport, StepKind,
    Verdict, fingerprint, probe,
};
use probe_servers::{Ca, Leaf, NAME, TlsServer, leaf_params, probe_at};
use rcgen::date_time_ymd;

fn with_ca(ca: &CaFile) -> ProbeOptions {
    ProbeOptions {
        ca_files: vec![ca.clone()],
        ..ProbeOptions::default()
    }
}

fn verdicts(report: &ProbeReport) -> (Verdict, Option<Verdict>) {
    let trust = report.trust.as_ref().expect("chain was verified");
    (trust.system.clone(), trust.with_ca_files.clone())
}

fn outcome(report: &ProbeReport, step: StepKind) -> Option<Outcome> {
    report
        .steps
        .iter()
        .find(|s| s.step == step)
        .map(|s| s.outcome)
}

/// A registry with a certificate from a private CA, served leaf-only (the common setup).
async fn private_ca_registry(dir: &std::path::Path) -> (std::net::SocketAddr, CaFile, Ca) {
    let ca = Ca::root("ctrdiag test root");
    let leaf = ca.issue(leaf_params(&[NAME], NAME));
    let addr = TlsServer::new(vec![leaf.der()], leaf.key_der())
        .start()
        .await;
    let ca_file = CaFile::load(ca.write_pem(dir, "ca.crt")).expect("CA file");
    (addr, ca_file, ca)
}

/// Probes a registry whose leaf (from `params`) is signed by a private CA, checking
/// the chain with that CA as containerd's CA file.
async fn probe_leaf_signed_by_private_ca(params: rcgen::CertificateParams) -> ProbeReport {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = Ca::root("ctrdiag test root");
    let leaf = ca.issue(params);
    let addr = TlsServer::new(vec![leaf.der()], leaf.key_der())
        .start()
        .await;
    let ca_file = CaFile::load(ca.write_pem(dir.path(), "ca.crt")).expect("CA file");
    probe_at(addr, with_ca(&ca_file)).await
}

#[tokio::test]
async fn private_ca_is_unknown_to_the_system_and_trusted_with_its_ca_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addr, ca_file, ca) = private_ca_registry(dir.path()).await;

    let report = probe_at(addr, with_ca(&ca_file)).await;

    assert_eq!(
        verdicts(&report),
        (Verdict::UnknownIssuer, Some(Verdict::Trusted))
    );
    assert_eq!(outcome(&report, StepKind::Dns), Some(Outcome::Skipped));
    assert_eq!(outcome(&report, StepKind::VerifyChain), Some(Outcome::Ok));
    let tls = report.tls.as_ref().expect("handshake completed");
    assert_eq!(tls.protocol_version, "TLSv1_3");
    assert!(
        tls.cipher_suite.starts_with("TLS13_"),
        "{}",
        tls.cipher_suite
    );
    let leaf = report.chain[0].info.as_ref().expect("parsed leaf");
    assert_eq!(leaf.dns_names, [NAME]);
    assert_eq!(leaf.key, "ECDSA P-256");
    assert!(!leaf.self_signed && !leaf.is_ca);
    assert!(leaf.issuer.contains("ctrdiag test root"));
    // The operator checks the CA by the fingerprint openssl prints for the CA file.
    assert_eq!(fingerprint(&ca.der()).len(), 95);
    assert!(
        report.trust.as_ref().expect("trust").system_roots > 0,
        "system store"
    );
}

#[tokio::test]
async fn self_signed_certificate_is_flagged_and_trusted_only_as_its_own_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leaf = Leaf::self_signed(leaf_params(&[NAME], NAME));
    let addr = TlsServer::new(vec![leaf.der()], leaf.key_der())
        .start()
        .await;
    let (cert_path, _) = leaf.write_pem(dir.path(), "self");
    let own = CaFile::load(cert_path).expect("CA file");

    let report = probe_at(addr, with_ca(&own)).await;

    assert_eq!(
        verdicts(&report),
        (Verdict::UnknownIssuer, Some(Verdict::Trusted))
    );
    let info = report.chain[0].info.as_ref().expect("parsed");
    assert!(info.self_signed);
    assert_eq!(report.chain[0].sha256_fingerprint, fingerprint(&leaf.der()));
}

#[tokio::test]
async fn expired_certificate_reports_its_end_date() {
    let mut params = leaf_params(&[NAME], NAME);
    params.not_before = date_time_ymd(2019, 1, 1);
    params.not_after = date_time_ymd(2020, 1, 1);
    let report = probe_leaf_signed_by_private_ca(params).await;

    let Some(Verdict::Expired { not_after }) = verdicts(&report).1 else {
        panic!("expected expired: {:?}", report.trust);
    };
    assert_eq!(not_after.rfc3339, "2020-01-01T00:00:00Z");
    assert_eq!(not_after.unix, 1_577_836_800);
    let info = report.chain[0].info.as_ref().expect("parsed");
    assert_eq!(info.not_after, not_after);
    assert_eq!(
        outcome(&report, StepKind::VerifyChain),
        Some(Outcome::Failed)
    );
}

#[tokio::test]
async fn not_yet_valid_certificate_reports_its_start_date() {
    let mut params = leaf_params(&[NAME], NAME);
    params.not_before = date_time_ymd(2090, 6, 1);
    let report = probe_leaf_signed_by_private_ca(params).await;

    let Some(Verdict::NotYetValid { not_before }) = verdicts(&report).1 else {
        panic!("expected not yet valid: {:?}", report.trust);
    };
    assert_eq!(not_before.rfc3339, "2090-06-01T00:00:00Z");
}

#[tokio::test]
async fn wrong_host_name_lists_the_names_the_certificate_has() {
    let report = probe_leaf_signed_by_private_ca(leaf_params(
        &["localhost", "other.ctrdiag.test", "127.0.0.1"],
        "x",
    ))
    .await;

    assert_eq!(
        verdicts(&report).1,
        Some(Verdict::NotValidForName {
            presented: vec![
                "localhost".to_string(),
                "other.ctrdiag.test".to_string(),
                "127.0.0.1".to_string()
            ]
        })
    );
    let info = report.chain[0].info.as_ref().expect("parsed");
    assert_eq!(info.ip_addresses, ["127.0.0.1"]);
}

#[tokio::test]
async fn common_name_only_certificate_is_called_legacy() {
    let report = probe_leaf_signed_by_private_ca(leaf_params(&[], NAME)).await;

    assert_eq!(
        verdicts(&report).1,
        Some(Verdict::CnOnly {
            common_name: NAME.to_string()
        })
    );
    let info = report.chain[0].info.as_ref().expect("parsed");
    assert!(info.dns_names.is_empty());
    assert_eq!(info.common_name.as_deref(), Some(NAME));
}

#[tokio::test]
async fn leaf_without_its_intermediate_is_a_missing_intermediate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = Ca::root("ctrdiag test root");
    let intermediate = root.intermediate("ctrdiag test intermediate");
    let leaf = intermediate.issue(leaf_params(&[NAME], NAME));
    let ca_file = CaFile::load(root.write_pem(dir.path(), "ca.crt")).expect("CA file");

    let leaf_only = TlsServer::new(vec![leaf.der()], leaf.key_der())
        .start()
        .await;
    let report = probe_at(leaf_only, with_ca(&ca_file)).await;
    let (system, configured) = verdicts(&report);
    assert_eq!(system, Verdict::UnknownIssuer);
    let Some(Verdict::MissingIntermediate { issuer }) = configured else {
        panic!("expected missing intermediate: {configured:?}");
    };
    assert!(issuer.contains("ctrdiag test intermediate"), "{issuer}");

    // The same certificates with the intermediate sent: the fix is confirmed.
    let full = TlsServer::new(vec![leaf.der(), intermediate.der()], leaf.key_der())
        .start()
        .await;
    let report = probe_at(full, with_ca(&ca_file)).await;
    assert_eq!(verdicts(&report).1, Some(Verdict::Trusted));
    assert_eq!(report.chain.len(), 2);
    assert!(report.chain[1].info.as_ref().expect("parsed").is_ca);
}

/// A registry that requires a client certificate from `client_ca`, over the given versions.
async fn mtls_registry(
    client_ca: &Ca,
    versions: &'static [&'static rustls::SupportedProtocolVersion],
) -> std::net::SocketAddr {
    let server_ca = Ca::root("ctrdiag server root");
    let leaf = server_ca.issue(leaf_params(&[NAME], NAME));
    let mut server = TlsServer::new(vec![leaf.der()], leaf.key_der());
    server.client_ca = Some(client_ca.der());
    server.versions = versions;
    server.reply = probe_servers::REPLY_200;
    server.start().await
}

#[tokio::test]
async fn client_certificate_required_is_recognised_in_tls13_and_tls12() {
    let client_ca = Ca::root("ctrdiag client root");
    static TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
    static TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
    for versions in [TLS13, TLS12] {
        let addr = mtls_registry(&client_ca, versions).await;
        let report = probe_at(addr, ProbeOptions::default()).await;
        assert!(
            report.has_fact("tls_client_cert_required"),
            "{versions:?}: {:#?}",
            report.facts
        );
        assert!(report.http.is_none());
        // The server's chain is still captured before the refusal.
        assert_eq!(report.chain.len(), 1);
    }
}

#[tokio::test]
async fn configured_client_certificate_is_sent_and_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let client_ca = Ca::root("ctrdiag client root");
    let addr = mtls_registry(&client_ca, rustls::DEFAULT_VERSIONS).await;
    let client = client_ca.issue(leaf_params(&["node-1"], "node-1"));
    let (cert, key) = client.write_pem(dir.path(), "client");
    let opts = ProbeOptions {
        client_identity: Some(ClientIdentity::load(&cert, &key).expect("client identity")),
        ..ProbeOptions::default()
    };

    let report = probe_at(addr, opts).await;

    let tls = report.tls.as_ref().expect("handshake");
    assert!(tls.client_cert_requested && tls.client_cert_sent);
    assert_eq!(report.http.as_ref().map(|h| h.status), Some(200));
    assert!(report.facts.is_empty(), "{:?}", report.facts);

    // A certificate from another CA is refused, and said so.
    let stranger = Ca::root("someone else").issue(leaf_params(&["node-1"], "node-1"));
    let (cert, key) = stranger.write_pem(dir.path(), "stranger");
    let opts = ProbeOptions {
        client_identity: Some(ClientIdentity::load(&cert, &key).expect("client identity")),
        ..ProbeOptions::default()
    };
    let report = probe_at(addr, opts).await;
    assert!(
        report.has_fact("tls_client_cert_rejected"),
        "{:?}",
        report.facts
    );
}

#[tokio::test]
async fn plain_http_registry_on_the_port_is_reported_and_probed_over_http() {
    let addr = probe_servers::plain_http_server().await;

    let report = probe_at(addr, ProbeOptions::default()).await;

    let Some(Fact::PlainHttpToHttpsPort { first_bytes }) = report.facts.first() else {
        panic!("{:?}", report.facts);
    };
    assert!(first_bytes.starts_with("HTTP/1.1 400"));
    assert_eq!(report.facts.len(), 1, "{:?}", report.facts);
    let http = report.http.as_ref().expect("plain GET");
    assert_eq!(
        (
            http.scheme.as_str(),
            http.status,
            http.api_version.as_deref()
        ),
        ("http", 200, Some("registry/2.0"))
    );
    assert_eq!(outcome(&report, StepKind::HttpGet), Some(Outcome::Ok));
    assert!(report.trust.is_none());
}

#[tokio::test]
async fn unauthorized_registry_reports_its_challenge_without_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (addr, ca_file, _) = private_ca_registry(dir.path()).await;

    let report = probe_at(addr, with_ca(&ca_file)).await;

    assert_eq!(
        report.facts,
        vec![Fact::AuthRequired {
            scheme: "Bearer".to_string(),
            realm: Some("https://auth.ctrdiag.test/token".to_string()),
            service: Some("registry.ctrdiag.test".to_string()),
        }]
    );
    let http = report.http.as_ref().expect("GET /v2/");
    assert_eq!((http.scheme.as_str(), http.status), ("https", 401));
    assert_eq!(http.api_version.as_deref(), Some("registry/2.0"));
    let json = serde_json::to_string(&report).expect("serializable");
    assert!(json.contains("\"code\":\"auth_required\""));
    assert!(json.contains("\"verdict\":\"unknown_issuer\""));
}

#[tokio::test]
async fn closed_port_is_connection_refused() {
    let addr = probe_servers::closed_port().await;

    let report = probe_at(addr, ProbeOptions::default()).await;

    assert_eq!(
        report.facts,
        vec![Fact::ConnectionRefused { address: addr }]
    );
    assert_eq!(outcome(&report, StepKind::Connect), Some(Outcome::Failed));
    assert!(outcome(&report, StepKind::TlsHandshake).is_none());
}

#[tokio::test]
async fn silent_server_times_out_in_the_handshake() {
    let addr = probe_servers::silent_server().await;
    let opts = ProbeOptions {
        step_timeout: Duration::from_millis(300),
        ..ProbeOptions::default()
    };

    let report = probe_at(addr, opts).await;

    assert_eq!(
        report.facts,
        vec![Fact::Timeout {
            step: StepKind::TlsHandshake,
            after_ms: 300
        }]
    );
    assert!(report.total_ms < 3000.0, "{}", report.total_ms);
}

#[tokio::test]
async fn unresolvable_name_is_a_dns_failure() {
    let host: RegistryHost = "nonexistent.invalid:5000".parse().expect("host");

    let report = probe(&host, &ProbeOptions::default()).await;

    assert_eq!(report.facts.len(), 1, "{:?}", report.facts);
    assert!(report.has_fact("dns_failure"));
    assert_eq!(outcome(&report, StepKind::Dns), Some(Outcome::Failed));
    assert_eq!(report.steps.len(), 1);
    assert_eq!(
        (report.port, report.server_name.as_str()),
        (5000, "nonexistent.invalid")
    );
}

#[test]
fn unusable_files_are_errors_that_name_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing-ca.crt");
    let err = CaFile::load(&missing).expect_err("missing file");
    assert!(matches!(err, ProbeError::Read { .. }));
    assert!(err.to_string().contains("missing-ca.crt"), "{err}");

    let der = dir.path().join("ca.der");
    std::fs::write(&der, Ca::root("r").der().as_ref()).expect("write");
    let err = CaFile::load(&der).expect_err("DER is not PEM");
    assert!(matches!(err, ProbeError::NoPem { .. }), "{err}");
    assert!(err.to_string().contains("ca.der"));

    let ca = Ca::root("r");
    let one = ca.issue(leaf_params(&["a"], "a"));
    let other = ca.issue(leaf_params(&["b"], "b"));
    let (cert, _) = one.write_pem(dir.path(), "one");
    let (_, key) = other.write_pem(dir.path(), "other");
    let err = ClientIdentity::load(&cert, &key).expect_err("mismatched pair");
    assert!(matches!(err, ProbeError::BadClientKey { .. }), "{err}");
}

#[test]
fn debug_output_never_shows_the_client_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let leaf = Ca::root("r").issue(leaf_params(&["node"], "node"));
    let (cert, key) = leaf.write_pem(dir.path(), "client");
    let identity = ClientIdentity::load(&cert, &key).expect("identity");
    let opts = ProbeOptions {
        client_identity: Some(identity),
        ..ProbeOptions::default()
    };
    let shown = format!("{opts:?}");
    assert!(shown.contains("<redacted>"));
    let key_pem = std::fs::read_to_string(&key).expect("key");
    let body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!shown.contains(&body[..24]));
    assert!(!shown.contains("PRIVATE"));
}

/// DER of an Authority Information Access extension value with one `caIssuers` URI.
fn aia_ca_issuers(uri: &str) -> Vec<u8> {
    let oid = [0x06, 0x08, 0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x02];
    let mut location = vec![0x86, u8::try_from(uri.len()).expect("short URI")];
    location.extend_from_slice(uri.as_bytes());
    let mut desc = vec![
        0x30,
        u8::try_from(oid.len() + location.len()).expect("short"),
    ];
    desc.extend_from_slice(&oid);
    desc.extend_from_slice(&location);
    let mut seq = vec![0x30, u8::try_from(desc.len()).expect("short")];
    seq.extend_from_slice(&desc);
    seq
}

#[tokio::test]
async fn ca_issuers_url_points_at_a_missing_intermediate_without_any_ca_file() {
    let root = Ca::root("ctrdiag test root");
    let intermediate = root.intermediate("ctrdiag test intermediate");
    let url = "http://ca.ctrdiag.test/intermediate.crt";
    let mut params = leaf_params(&[NAME], NAME);
    params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 1],
            aia_ca_issuers(url),
        ));
    let leaf = intermediate.issue(params);
    let addr = TlsServer::new(vec![leaf.der()], leaf.key_der())
        .start()
        .await;

    let report = probe_at(addr, ProbeOptions::default()).await;

    let (system, configured) = verdicts(&report);
    assert!(
        matches!(&system, Verdict::MissingIntermediate { issuer } if issuer.contains("intermediate")),
        "{system:?}"
    );
    assert_eq!(configured, None);
    let info = report.chain[0].info.as_ref().expect("parsed");
    assert_eq!(info.ca_issuers, [url]);
}

#[tokio::test]
async fn a_ca_with_the_issuers_name_but_another_key_is_an_unknown_authority() {
    // Two CAs of the same name: the registry's, and a re-made one the operator has.
    let dir = tempfile::tempdir().expect("tempdir");
    let (addr, _, _) = private_ca_registry(dir.path()).await;
    let other = tempfile::tempdir().expect("tempdir");
    let same_name = Ca::root("ctrdiag test root");
    let wrong = CaFile::load(same_name.write_pem(other.path(), "ca.crt")).expect("CA file");

    let report = probe_at(addr, with_ca(&wrong)).await;

    assert_eq!(
        verdicts(&report),
        (Verdict::UnknownIssuer, Some(Verdict::UnknownIssuer)),
        "as containerd words it: signed by unknown authority"
    );
}
