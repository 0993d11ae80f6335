//! Real servers on 127.0.0.1 for the probe tests: TLS (tokio-rustls) with rcgen-made
//! certificates, plain HTTP, and a silent listener. Only loopback is used; the name the
//! probe checks stays `registry.ctrdiag.test` through `ProbeOptions::connect_to`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ctrdiag::registry::host::RegistryHost;
use ctrdiag::registry::probe::{ProbeOptions, ProbeReport, probe};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The name every TLS test registry answers to.
pub const NAME: &str = "registry.ctrdiag.test";

/// What distribution answers to an anonymous `GET /v2/` when auth is on.
pub const REPLY_401: &str = "HTTP/1.1 401 Unauthorized\r\n\
    Content-Type: application/json\r\n\
    Docker-Distribution-Api-Version: registry/2.0\r\n\
    Www-Authenticate: Bearer realm=\"https://auth.ctrdiag.test/token\",service=\"registry.ctrdiag.test\"\r\n\
    Content-Length: 2\r\nConnection: close\r\n\r\n{}";

/// What an open registry answers.
pub const REPLY_200: &str = "HTTP/1.1 200 OK\r\n\
    Docker-Distribution-Api-Version: registry/2.0\r\n\
    Content-Length: 2\r\nConnection: close\r\n\r\n{}";

/// A certificate authority (root or intermediate) that can issue certificates.
pub struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pub cert: Certificate,
}

impl Ca {
    pub fn root(common_name: &str) -> Ca {
        let params = ca_params(common_name);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed CA");
        Ca { params, key, cert }
    }

    pub fn intermediate(&self, common_name: &str) -> Ca {
        let params = ca_params(common_name);
        let key = KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.issuer())
            .expect("intermediate");
        Ca { params, key, cert }
    }

    /// Issues a leaf from `params` (see [`leaf_params`]).
    pub fn issue(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer()).expect("leaf");
        Leaf { cert, key }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    pub fn write_pem(&self, dir: &Path, file: &str) -> PathBuf {
        write(dir, file, &self.cert.pem())
    }

    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

/// A leaf certificate and its key.
pub struct Leaf {
    pub cert: Certificate,
    pub key: KeyPair,
}

impl Leaf {
    pub fn self_signed(params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed leaf");
        Leaf { cert, key }
    }

    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivatePkcs8KeyDer::from(self.key.serialize_der()).into()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// Writes `NAME.crt` and `NAME.key` and returns both paths.
    pub fn write_pem(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        (
            write(dir, &format!("{name}.crt"), &self.cert.pem()),
            write(dir, &format!("{name}.key"), &self.key.serialize_pem()),
        )
    }
}

fn ca_params(common_name: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

/// Leaf parameters with these SANs (none: a CN-only certificate) and Common Name.
pub fn leaf_params(sans: &[&str], common_name: &str) -> CertificateParams {
    let sans: Vec<String> = sans.iter().map(|s| (*s).to_string()).collect();
    let mut params = CertificateParams::new(sans).expect("SANs");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params
}

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::write(&path, text).expect("write test file");
    path
}

/// How a test TLS server is set up.
pub struct TlsServer {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// Require a client certificate issued by this CA.
    pub client_ca: Option<CertificateDer<'static>>,
    pub versions: &'static [&'static SupportedProtocolVersion],
    pub reply: &'static str,
}

impl TlsServer {
    pub fn new(chain: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> TlsServer {
        TlsServer {
            chain,
            key,
            client_ca: None,
            versions: rustls::DEFAULT_VERSIONS,
            reply: REPLY_401,
        }
    }

    /// Starts serving on an ephemeral loopback port; the task ends with the test runtime.
    pub async fn start(self) -> SocketAddr {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(self.versions)
            .expect("versions");
        let builder = match self.client_ca {
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                roots.add(ca).expect("client CA");
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .expect("client verifier");
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let config = builder
            .with_single_cert(self.chain, self.key)
            .expect("server cert");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let reply = self.reply;
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(tcp).await {
                        answer(&mut tls, reply).await;
                    }
                });
            }
        });
        addr
    }
}

/// A plain-HTTP registry: 200 to `GET /v2/`, 400 to anything else (such as a ClientHello).
pub async fn plain_http_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let n = tcp.read(&mut buf).await.unwrap_or(0);
                let reply = if buf[..n].starts_with(b"GET /v2/ ") {
                    REPLY_200
                } else {
                    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = tcp.write_all(reply.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    addr
}

/// Accepts connections and never says a word.
pub async fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    addr
}

/// A loopback port nobody listens on.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(s: &mut S, reply: &str) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = s.write_all(reply.as_bytes()).await;
    let _ = s.shutdown().await;
}

/// Probes `registry.ctrdiag.test:<port>` at `addr` with the given options.
pub async fn probe_at(addr: SocketAddr, mut opts: ProbeOptions) -> ProbeReport {
    let host: RegistryHost = format!("{NAME}:{}", addr.port()).parse().expect("host");
    opts.connect_to = Some(addr);
    probe(&host, &opts).await
}
