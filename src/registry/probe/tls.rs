//! The TLS handshake, made to learn rather than to trust.
//!
//! The verifier accepts any certificate so that the handshake goes far enough to show us
//! the chain, the negotiated parameters and whether the server wants a client certificate;
//! handshake signatures are still checked with the provider's real algorithms, so what we
//! see really comes from the key holder. Trust is decided afterwards, in `verify`.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::{AlertDescription, ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::net::timed_out;
use super::options::ClientIdentity;
use super::report::{Fact, Outcome, ProbeReport, RecordSince, StepKind, TlsSession};

/// Enough of the peer's first answer to recognise `HTTP/1.x`.
const FIRST_BYTES: usize = 16;

/// The TLS stream the HTTPS step continues on.
pub(super) type ProbeStream = TlsStream<FirstBytes<TcpStream>>;

/// How the handshake step ended.
pub(super) enum HandshakeEnd {
    Done(Box<ProbeStream>),
    /// The server answered the ClientHello with HTTP: probe it as a plain-HTTP registry.
    PlainHttp,
    /// Failed or timed out; the facts are in the report.
    Failed,
}

/// One handshake's configuration plus what it observed.
pub(super) struct TlsProbe {
    verifier: Arc<CapturingVerifier>,
    client_auth: Arc<ClientAuthProbe>,
    connector: TlsConnector,
}

impl TlsProbe {
    pub(super) fn new(
        provider: Arc<CryptoProvider>,
        identity: Option<&ClientIdentity>,
    ) -> Result<Self, rustls::Error> {
        let verifier = Arc::new(CapturingVerifier {
            provider: Arc::clone(&provider),
            chain: Mutex::new(Vec::new()),
        });
        let client_auth = Arc::new(ClientAuthProbe {
            identity: identity.map(ClientIdentity::certified_key),
            requested: AtomicBool::new(false),
        });
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::ALL_VERSIONS)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::clone(&verifier) as Arc<dyn ServerCertVerifier>)
            .with_client_cert_resolver(Arc::clone(&client_auth) as Arc<dyn ResolvesClientCert>);
        Ok(TlsProbe {
            verifier,
            client_auth,
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// Runs the handshake step and records its outcome and facts.
    pub(super) async fn handshake(
        &self,
        name: ServerName<'static>,
        tcp: TcpStream,
        limit: Duration,
        report: &mut ProbeReport,
    ) -> HandshakeEnd {
        let started = Instant::now();
        let connect = self.connector.connect(name, FirstBytes::new(tcp));
        match timeout(limit, connect.into_fallible()).await {
            Err(_) => {
                timed_out(StepKind::TlsHandshake, limit, started, report);
                HandshakeEnd::Failed
            }
            Ok(Ok(stream)) => {
                let session = self.session(stream.get_ref().1);
                let detail = format!("{} {}", session.protocol_version, session.cipher_suite);
                report.record_since(StepKind::TlsHandshake, Outcome::Ok, started, detail);
                report.tls = Some(session);
                HandshakeEnd::Done(Box::new(stream))
            }
            Ok(Err((err, io))) => {
                report.record_since(
                    StepKind::TlsHandshake,
                    Outcome::Failed,
                    started,
                    err.to_string(),
                );
                if io.first.starts_with(b"HTTP/") {
                    report.fact(Fact::PlainHttpToHttpsPort {
                        first_bytes: String::from_utf8_lossy(&io.first).into_owned(),
                    });
                    return HandshakeEnd::PlainHttp;
                }
                report.fact(self.failure_fact(&err).unwrap_or(Fact::TlsHandshake {
                    error: err.to_string(),
                }));
                HandshakeEnd::Failed
            }
        }
    }

    /// The certificates the server presented, leaf first (empty if it never got that far).
    pub(super) fn presented_chain(&self) -> Vec<CertificateDer<'static>> {
        self.verifier
            .chain
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Explains a TLS error as a client-certificate problem when it is one.
    ///
    /// Used after the handshake too: in TLS 1.3 the client finishes its side before the
    /// server has checked the client certificate, so the refusal arrives on the first read.
    pub(super) fn failure_fact(&self, err: &io::Error) -> Option<Fact> {
        let rustls::Error::AlertReceived(alert) = err
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())?
        else {
            return None;
        };
        let requested = self.client_auth.requested.load(Ordering::Relaxed);
        let about_client_cert = *alert == AlertDescription::CertificateRequired
            || (requested
                && matches!(
                    alert,
                    AlertDescription::HandshakeFailure
                        | AlertDescription::BadCertificate
                        | AlertDescription::UnsupportedCertificate
                        | AlertDescription::CertificateUnknown
                        | AlertDescription::UnknownCA
                        | AlertDescription::AccessDenied
                        | AlertDescription::DecryptError
                ));
        if !about_client_cert {
            return None;
        }
        let alert = format!("{alert:?}");
        Some(if self.client_cert_sent() {
            Fact::TlsClientCertRejected { alert }
        } else {
            Fact::TlsClientCertRequired { alert }
        })
    }

    fn client_cert_sent(&self) -> bool {
        self.client_auth.requested.load(Ordering::Relaxed) && self.client_auth.identity.is_some()
    }

    fn session(&self, conn: &rustls::ClientConnection) -> TlsSession {
        TlsSession {
            protocol_version: conn
                .protocol_version()
                .map_or_else(|| "unknown".to_string(), |v| format!("{v:?}")),
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map_or_else(|| "unknown".to_string(), |s| format!("{:?}", s.suite())),
            client_cert_requested: self.client_auth.requested.load(Ordering::Relaxed),
            client_cert_sent: self.client_cert_sent(),
        }
    }
}

/// Accepts any server certificate but keeps a copy of the chain.
#[derive(Debug)]
struct CapturingVerifier {
    provider: Arc<CryptoProvider>,
    chain: Mutex<Vec<CertificateDer<'static>>>,
}

impl ServerCertVerifier for CapturingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        *self.chain.lock().unwrap_or_else(PoisonError::into_inner) = chain;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Offers the configured client certificate and notes whether the server asked for one.
#[derive(Debug)]
struct ClientAuthProbe {
    identity: Option<Arc<CertifiedKey>>,
    requested: AtomicBool,
}

impl ResolvesClientCert for ClientAuthProbe {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.requested.store(true, Ordering::Relaxed);
        self.identity.clone()
    }

    fn has_certs(&self) -> bool {
        self.identity.is_some()
    }
}

/// A transparent stream wrapper that remembers the first bytes the peer sent, so a failed
/// handshake can tell "this is an HTTP server" from a real TLS error.
pub(super) struct FirstBytes<S> {
    inner: S,
    first: Vec<u8>,
}

impl<S> FirstBytes<S> {
    fn new(inner: S) -> Self {
        FirstBytes {
            inner,
            first: Vec::with_capacity(FIRST_BYTES),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FirstBytes<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            let fresh = &buf.filled()[before..];
            let room = FIRST_BYTES.saturating_sub(this.first.len());
            this.first
                .extend_from_slice(&fresh[..fresh.len().min(room)]);
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FirstBytes<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
