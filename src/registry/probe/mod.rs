//! Direct registry probe: DNS, TCP, TLS chain and `GET /v2/`, done the way containerd
//! would reach the registry, so that a pull failure can be explained with facts instead
//! of guessed from an error string.
//!
//! The probe never fails and never panics: every network outcome, good or bad, is a step
//! and possibly a fact in the [`ProbeReport`]. Only unusable inputs (CA or client files)
//! are errors, raised when [`ProbeOptions`] are built.

mod cert;
mod http;
mod net;
mod options;
mod report;
mod tls;
mod verify;

/// The probe's parsers of what a registry sends, for the fuzz targets (fuzz/).
#[cfg(feature = "fuzzing")]
pub mod fuzzing {
    /// The status and reason of a `GET /v2/` response head, or why it is not one.
    pub fn parse_head(head: &[u8]) -> Result<(u16, String), String> {
        super::http::parse_head(head, "https")
            .map(|f| (f.status, f.reason))
            .map_err(|e| e.to_string())
    }

    /// Describes a certificate a server presented: `Ok` with its subject when it
    /// parses, `Err` with the parse error otherwise.
    pub fn describe_certificate(der: &[u8]) -> Result<String, String> {
        let presented = super::cert::describe(&rustls_pki_types::CertificateDer::from(der));
        assert_eq!(presented.der, der, "the presented bytes are kept whole");
        match (presented.info, presented.parse_error) {
            (Some(info), None) => Ok(format!("{info:?}")),
            (None, Some(e)) => Err(e),
            other => panic!("a certificate is described or its error given: {other:?}"),
        }
    }
}

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::registry::host::RegistryHost;

pub use ctrdiag_core::probe::{
    AuthChallenge, CertInfo, Fact, HttpFacts, Outcome, PresentedCert, ProbeReport, Step, StepKind,
    Timestamp, TlsSession, TrustReport, Verdict, fingerprint,
};
pub use options::{CaFile, ClientIdentity, DEFAULT_STEP_TIMEOUT, ProbeError, ProbeOptions};

use report::{RecordSince, millis_since};
use tls::{HandshakeEnd, TlsProbe};

/// containerd's port for a registry host written without one.
const DEFAULT_PORT: u16 = 443;

/// Probes `host` step by step and reports what happened; see the module docs.
pub async fn probe(host: &RegistryHost, opts: &ProbeOptions) -> ProbeReport {
    let started = Instant::now();
    let port = host.port().unwrap_or(DEFAULT_PORT);
    // IPv6 literals keep their brackets in RegistryHost; resolvers and SNI want them bare.
    let name = host.name().trim_start_matches('[').trim_end_matches(']');
    let mut report = ProbeReport::new(host.to_string(), name.to_string(), port);
    run(host, name, port, opts, &mut report).await;
    report.total_ms = millis_since(started);
    report
}

async fn run(
    host: &RegistryHost,
    name: &str,
    port: u16,
    opts: &ProbeOptions,
    report: &mut ProbeReport,
) {
    let limit = opts.step_timeout;
    let addrs = match opts.connect_to {
        Some(addr) => {
            let detail = format!("address override {addr}");
            report.record_since(StepKind::Dns, Outcome::Skipped, Instant::now(), detail);
            vec![addr]
        }
        None => net::resolve(name, port, limit, report).await,
    };
    report.addresses.clone_from(&addrs);
    if addrs.is_empty() {
        return;
    }
    let Some((tcp, addr)) = net::connect(&addrs, limit, report).await else {
        return;
    };
    report.connected_to = Some(addr);

    let started = Instant::now();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let prepared = ServerName::try_from(name.to_string())
        .map_err(|e| format!("{name:?} cannot be a TLS server name: {e}"))
        .and_then(|server_name| {
            TlsProbe::new(Arc::clone(&provider), opts.client_identity.as_ref())
                .map(|tls| (server_name, tls))
                .map_err(|e| format!("TLS client setup failed: {e}"))
        });
    let (server_name, tls) = match prepared {
        Ok(ready) => ready,
        Err(error) => {
            report.record_since(
                StepKind::TlsHandshake,
                Outcome::Failed,
                started,
                error.clone(),
            );
            report.fact(Fact::TlsHandshake { error });
            return;
        }
    };
    let end = tls.handshake(server_name.clone(), tcp, limit, report).await;

    let chain = tls.presented_chain();
    if !chain.is_empty() {
        let started = Instant::now();
        report.chain = chain.iter().map(cert::describe).collect();
        let trust = verify::assess(&chain, &server_name, &opts.ca_files, &provider).await;
        let effective = trust.with_ca_files.as_ref().unwrap_or(&trust.system);
        let outcome = match effective {
            Verdict::Trusted => Outcome::Ok,
            _ => Outcome::Failed,
        };
        report.record_since(
            StepKind::VerifyChain,
            outcome,
            started,
            effective.to_string(),
        );
        report.trust = Some(trust);
    }

    let host_header = host.to_string();
    match end {
        HandshakeEnd::Done(mut stream) => {
            let classify = |e: &io::Error| tls.failure_fact(e);
            let exchange = Exchange {
                step: StepKind::HttpsGet,
                scheme: "https",
                host_header: &host_header,
                limit,
            };
            exchange.run(&mut *stream, report, classify).await;
        }
        HandshakeEnd::PlainHttp => plain_http(addr, &host_header, limit, report).await,
        HandshakeEnd::Failed => {}
    }
}

/// The server speaks HTTP on this port: ask it `GET /v2/` the way it understands.
async fn plain_http(
    addr: std::net::SocketAddr,
    host_header: &str,
    limit: Duration,
    report: &mut ProbeReport,
) {
    let started = Instant::now();
    let exchange = Exchange {
        step: StepKind::HttpGet,
        scheme: "http",
        host_header,
        limit,
    };
    match timeout(limit, TcpStream::connect(addr)).await {
        Ok(Ok(mut tcp)) => exchange.run(&mut tcp, report, |_| None).await,
        Ok(Err(e)) => {
            let error = format!("reconnecting to {addr} for plain HTTP: {e}");
            report.record_since(StepKind::HttpGet, Outcome::Failed, started, error.clone());
            report.fact(Fact::HttpExchangeFailed { error });
        }
        Err(_) => net::timed_out(StepKind::HttpGet, limit, started, report),
    }
}

/// One `GET /v2/` step over an established stream.
struct Exchange<'a> {
    step: StepKind,
    scheme: &'static str,
    host_header: &'a str,
    limit: Duration,
}

impl Exchange<'_> {
    /// Runs the request; `classify` turns transport errors into sharper facts (TLS alerts).
    async fn run<S>(
        &self,
        stream: &mut S,
        report: &mut ProbeReport,
        classify: impl Fn(&io::Error) -> Option<Fact>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let started = Instant::now();
        let answer = timeout(
            self.limit,
            http::get_v2(stream, self.host_header, self.scheme),
        )
        .await;
        match answer {
            Err(_) => net::timed_out(self.step, self.limit, started, report),
            Ok(Ok(facts)) => {
                let detail = format!("{} {}", facts.status, facts.reason);
                report.record_since(self.step, Outcome::Ok, started, detail);
                if facts.status == 401 {
                    let challenge = facts.auth.clone();
                    report.fact(Fact::AuthRequired {
                        scheme: challenge
                            .as_ref()
                            .map_or_else(String::new, |c| c.scheme.clone()),
                        realm: challenge.as_ref().and_then(|c| c.realm.clone()),
                        service: challenge.and_then(|c| c.service),
                    });
                }
                report.http = Some(facts);
            }
            Ok(Err(e)) => {
                let error = e.to_string();
                report.record_since(self.step, Outcome::Failed, started, error.clone());
                let fact = match &e {
                    http::ExchangeError::Io(io) => classify(io),
                    http::ExchangeError::Malformed(_) => None,
                };
                report.fact(fact.unwrap_or(Fact::HttpExchangeFailed { error }));
            }
        }
    }
}
