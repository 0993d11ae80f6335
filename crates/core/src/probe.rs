//! What a probe of a registry found, as plain serializable data: the contract between
//! the probe adapter (DNS, TCP, TLS, HTTP) and the pure diagnosis. Network outcomes are
//! facts here (with stable snake_case codes that match DESIGN.md's cause codes where they
//! share a name), never errors. Nothing in it is secret: certificates are public, and no
//! token or key material is ever captured. Pure: the adapter fills it in.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Serialize;

/// Everything one probe of one registry host observed, in the order it happened.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// The host as containerd names it (`host[:port]`).
    pub host: String,
    /// The name sent as SNI and checked against the certificate.
    pub server_name: String,
    /// The port probed (443 when the host has none).
    pub port: u16,
    /// Each step with its outcome and duration.
    pub steps: Vec<Step>,
    /// Notable outcomes the diagnosis core classifies.
    pub facts: Vec<Fact>,
    /// Addresses the name resolved to (or the override).
    pub addresses: Vec<SocketAddr>,
    /// The address the TCP connection was made to.
    pub connected_to: Option<SocketAddr>,
    /// The negotiated TLS session, when the handshake completed.
    pub tls: Option<TlsSession>,
    /// The certificates the server presented, leaf first.
    pub chain: Vec<PresentedCert>,
    /// How the presented chain fares against the trust containerd would use.
    pub trust: Option<TrustReport>,
    /// The answer to `GET /v2/`, over HTTPS or (for a plain-HTTP registry) HTTP.
    pub http: Option<HttpFacts>,
    /// Wall-clock time of the whole probe.
    pub total_ms: f64,
}

impl ProbeReport {
    pub fn new(host: String, server_name: String, port: u16) -> Self {
        ProbeReport {
            host,
            server_name,
            port,
            steps: Vec::new(),
            facts: Vec::new(),
            addresses: Vec::new(),
            connected_to: None,
            tls: None,
            chain: Vec::new(),
            trust: None,
            http: None,
            total_ms: 0.0,
        }
    }

    /// Appends a step that took `duration_ms`.
    pub fn record(
        &mut self,
        step: StepKind,
        outcome: Outcome,
        duration_ms: f64,
        detail: impl Into<String>,
    ) {
        self.steps.push(Step {
            step,
            outcome,
            duration_ms,
            detail: detail.into(),
        });
    }

    pub fn fact(&mut self, fact: Fact) {
        self.facts.push(fact);
    }

    /// Whether any fact has the given stable code (`"auth_required"`, ...).
    pub fn has_fact(&self, code: &str) -> bool {
        self.facts.iter().any(|f| f.code() == code)
    }
}

/// One step of the probe.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: StepKind,
    pub outcome: Outcome,
    pub duration_ms: f64,
    /// A one-line human explanation (addresses, negotiated version, error text).
    pub detail: String,
}

/// The probe's steps, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Dns,
    Connect,
    TlsHandshake,
    VerifyChain,
    HttpsGet,
    HttpGet,
}

impl StepKind {
    /// The step's name for people ("What was tried").
    pub fn label(self) -> &'static str {
        match self {
            StepKind::Dns => "DNS lookup",
            StepKind::Connect => "TCP connect",
            StepKind::TlsHandshake => "TLS handshake",
            StepKind::VerifyChain => "certificate chain",
            StepKind::HttpsGet => "GET /v2/ over HTTPS",
            StepKind::HttpGet => "GET /v2/ over HTTP",
        }
    }
}

impl Step {
    /// One line for people: `TLS handshake: ok (3 ms) TLSv1_3`.
    pub fn describe(&self) -> String {
        let outcome = match self.outcome {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed out",
            Outcome::Skipped => "skipped",
        };
        format!(
            "{}: {outcome} ({:.0} ms) {}",
            self.step.label(),
            self.duration_ms,
            self.detail
        )
        .trim_end()
        .to_string()
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed,
    TimedOut,
    /// Not run, for the reason in `detail` (e.g. DNS with an address override).
    Skipped,
}

/// A notable network outcome. `code` is stable: the diagnosis core matches on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Fact {
    /// The name did not resolve; `error` is the resolver's text.
    DnsFailure { error: String },
    /// Nothing listens on the port (TCP RST).
    ConnectionRefused { address: SocketAddr },
    /// Any other connect error (unreachable network, ...).
    ConnectFailed { address: SocketAddr, error: String },
    /// A step did not finish within the per-step timeout.
    Timeout { step: StepKind, after_ms: u64 },
    /// The TLS handshake failed for a reason not covered by a more precise fact.
    TlsHandshake { error: String },
    /// The server demanded a client certificate and none was configured.
    TlsClientCertRequired { alert: String },
    /// The server refused the client certificate that was sent.
    TlsClientCertRejected { alert: String },
    /// The server answered the TLS ClientHello with plain HTTP.
    PlainHttpToHttpsPort { first_bytes: String },
    /// `GET /v2/` answered 401: the registry wants credentials.
    AuthRequired {
        scheme: String,
        realm: Option<String>,
        service: Option<String>,
    },
    /// The HTTP exchange failed after the connection was up (reset, garbage, too large).
    HttpExchangeFailed { error: String },
}

impl Fact {
    /// The stable code, as it appears in JSON.
    pub fn code(&self) -> &'static str {
        match self {
            Fact::DnsFailure { .. } => "dns_failure",
            Fact::ConnectionRefused { .. } => "connection_refused",
            Fact::ConnectFailed { .. } => "connect_failed",
            Fact::Timeout { .. } => "timeout",
            Fact::TlsHandshake { .. } => "tls_handshake",
            Fact::TlsClientCertRequired { .. } => "tls_client_cert_required",
            Fact::TlsClientCertRejected { .. } => "tls_client_cert_rejected",
            Fact::PlainHttpToHttpsPort { .. } => "plain_http_to_https_port",
            Fact::AuthRequired { .. } => "auth_required",
            Fact::HttpExchangeFailed { .. } => "http_exchange_failed",
        }
    }
}

/// The negotiated TLS parameters.
#[derive(Debug, Clone, Serialize)]
pub struct TlsSession {
    /// e.g. `TLSv1_3`.
    pub protocol_version: String,
    /// e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher_suite: String,
    /// The server sent a CertificateRequest.
    pub client_cert_requested: bool,
    /// A client certificate was configured and offered.
    pub client_cert_sent: bool,
}

/// Chain verification against what containerd would trust.
#[derive(Debug, Clone, Serialize)]
pub struct TrustReport {
    /// Certificates loaded from the system store (containerd's base pool).
    pub system_roots: usize,
    /// Problems reading the system store (unreadable files, ...).
    pub system_root_errors: Vec<String>,
    /// Verdict against the system roots alone.
    pub system: Verdict,
    /// The extra CA files (hosts.toml `ca`) added on top of the system roots.
    pub ca_files: Vec<PathBuf>,
    /// Verdict against system roots plus `ca_files`; `None` when no CA file is configured.
    pub with_ca_files: Option<Verdict>,
}

/// What `GET /v2/` answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HttpFacts {
    /// `https`, or `http` for a plain-HTTP registry.
    pub scheme: String,
    pub status: u16,
    pub reason: String,
    /// `Docker-Distribution-Api-Version` (`registry/2.0` for a registry).
    pub api_version: Option<String>,
    /// The `WWW-Authenticate` challenge, if any.
    pub auth: Option<AuthChallenge>,
}

/// A `WWW-Authenticate` challenge reduced to what an operator needs (no other parameters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuthChallenge {
    /// `Bearer` or `Basic`.
    pub scheme: String,
    pub realm: Option<String>,
    pub service: Option<String>,
}

/// A certificate time, in both forms operators and scripts want.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timestamp {
    /// RFC 3339 in UTC, e.g. `2024-01-31T12:00:00Z`.
    pub rfc3339: String,
    /// Seconds since the Unix epoch.
    pub unix: i64,
}

impl Timestamp {
    pub fn from_unix(unix: i64) -> Self {
        let rfc3339 = match time::OffsetDateTime::from_unix_timestamp(unix) {
            Ok(t) => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            ),
            Err(_) => format!("@{unix}"),
        };
        Timestamp { rfc3339, unix }
    }
}

/// One certificate as the server presented it.
#[derive(Debug, Clone, Serialize)]
pub struct PresentedCert {
    /// SHA-256 of the DER, colon-separated upper-case hex (as `openssl x509 -fingerprint`).
    pub sha256_fingerprint: String,
    /// Parsed details; `None` when the DER could not be parsed (see `parse_error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<CertInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    /// The certificate itself (public), so a confirmed CA can be installed from it.
    #[serde(skip)]
    pub der: Vec<u8>,
}

impl PresentedCert {
    /// The certificate in PEM, as containerd's `ca` files hold it.
    pub fn pem(&self) -> String {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.der);
        let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
        out
    }
}

/// The fields of a certificate that explain TLS failures.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// The subject's Common Name, which Go ignores for host names since 1.15.
    pub common_name: Option<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<String>,
    pub not_before: Timestamp,
    pub not_after: Timestamp,
    /// Issuer equals subject and the certificate's own key verifies its signature.
    pub self_signed: bool,
    pub is_ca: bool,
    /// e.g. `ECDSA P-256`, `RSA 2048`, `Ed25519`.
    pub key: String,
    /// Serial number, colon-separated upper-case hex.
    pub serial: String,
    /// Authority Information Access `caIssuers` URLs: where the issuer's certificate lives.
    pub ca_issuers: Vec<String>,
}

/// SHA-256 over the DER, formatted like openssl (`AB:CD:...`).
pub fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether a chain would be trusted for the host, and if not, the most useful reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", content = "detail", rename_all = "snake_case")]
pub enum Verdict {
    Trusted,
    /// No path to a trusted root (Go: `certificate signed by unknown authority`).
    UnknownIssuer,
    /// A certificate in the chain expired at `not_after`.
    Expired {
        not_after: Timestamp,
    },
    /// A certificate in the chain is valid only from `not_before`.
    NotYetValid {
        not_before: Timestamp,
    },
    /// The leaf does not name the host; `presented` are the names it does carry.
    NotValidForName {
        presented: Vec<String>,
    },
    /// The leaf names the host only in its Common Name, without SANs (Go rejects it since 1.15).
    CnOnly {
        common_name: String,
    },
    /// Best effort: the chain stops at `issuer`, which is neither sent nor trusted, while
    /// something says an intermediate is expected (an AIA `caIssuers` URL, or a CA file
    /// configured for the host). It can also mean the CA file belongs to another chain:
    /// compare fingerprints.
    MissingIntermediate {
        issuer: String,
    },
    /// Any other rejection, with rustls's words.
    Other(String),
}

/// One line for humans (step details, CLI tables); JSON uses the structured form.
impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Trusted => f.write_str("trusted"),
            Verdict::UnknownIssuer => f.write_str("signed by an unknown authority"),
            Verdict::Expired { not_after } => write!(f, "expired at {}", not_after.rfc3339),
            Verdict::NotYetValid { not_before } => {
                write!(f, "not valid before {}", not_before.rfc3339)
            }
            Verdict::NotValidForName { presented } => {
                write!(
                    f,
                    "not valid for this name (valid for: {})",
                    presented.join(", ")
                )
            }
            Verdict::CnOnly { common_name } => {
                write!(
                    f,
                    "names {common_name} only in the legacy Common Name, no SANs"
                )
            }
            Verdict::MissingIntermediate { issuer } => {
                write!(
                    f,
                    "chain incomplete: issuer {issuer} not sent by the server"
                )
            }
            Verdict::Other(reason) => write!(f, "rejected: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_render_as_utc_rfc3339() {
        assert_eq!(Timestamp::from_unix(0).rfc3339, "1970-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_unix(1_706_702_400).rfc3339,
            "2024-01-31T12:00:00Z"
        );
        assert_eq!(
            Timestamp::from_unix(-86_400).rfc3339,
            "1969-12-31T00:00:00Z"
        );
    }

    #[test]
    fn fact_codes_match_their_json_tag() {
        let fact = Fact::Timeout {
            step: StepKind::Connect,
            after_ms: 5,
        };
        let json = serde_json::to_value(&fact).expect("serializable");
        assert_eq!(json["code"], fact.code());
        assert_eq!(json["step"], "connect");
    }
}
