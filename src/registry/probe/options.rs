//! What the caller tells the probe, loaded and checked before any network I/O.
//!
//! Files named in hosts.toml (`ca`, `client`) are read here so that a wrong path or a
//! non-PEM file is a typed error naming the file, raised before probing, instead of a
//! confusing network "fact". Once loaded, the probe itself cannot fail.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::report::fingerprint;

/// Per-step timeout when the caller does not choose one.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// How to probe one host.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// CA files containerd would add for this host (hosts.toml `ca`), on top of system roots.
    pub ca_files: Vec<CaFile>,
    /// The client certificate containerd would present (hosts.toml `client`).
    pub client_identity: Option<ClientIdentity>,
    /// Upper bound for each step (DNS, connect, handshake, HTTP).
    pub step_timeout: Duration,
    /// Connect here instead of resolving the name; SNI and verification still use the name.
    pub connect_to: Option<SocketAddr>,
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions {
            ca_files: Vec::new(),
            client_identity: None,
            step_timeout: DEFAULT_STEP_TIMEOUT,
            connect_to: None,
        }
    }
}

/// Misuse of the probe: files that cannot be used. Network outcomes are never errors.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error(
        "cannot read {what} file {}: {source}; check the path in hosts.toml and that root can read it",
        path.display()
    )]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{what} file {} holds no usable PEM block ({reason}); containerd expects PEM (`-----BEGIN ...-----`), convert DER with `openssl x509 -inform der`/`openssl pkey -inform der`",
        path.display()
    )]
    NoPem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "CA file {}: certificate #{index} cannot be a trust anchor ({reason}); give the CA certificate, not a key or a request",
        path.display()
    )]
    BadCaCert {
        path: PathBuf,
        index: usize,
        reason: String,
    },
    #[error(
        "client key {} does not fit certificate {} ({reason}); hosts.toml `client` needs the matching pair",
        key.display(),
        cert.display()
    )]
    BadClientKey {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// A PEM file of CA certificates, read and checked.
#[derive(Clone)]
pub struct CaFile {
    path: PathBuf,
    certs: Vec<CertificateDer<'static>>,
}

impl CaFile {
    /// Reads every certificate of a PEM file and checks each can be a trust anchor.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ProbeError> {
        let path = path.as_ref().to_path_buf();
        let bytes = read("CA", &path)?;
        let certs = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| no_pem("CA", &path, e.to_string()))?;
        if certs.is_empty() {
            return Err(no_pem("CA", &path, "no CERTIFICATE block".to_string()));
        }
        for (index, cert) in certs.iter().enumerate() {
            RootCertStore::empty()
                .add(cert.clone())
                .map_err(|e| ProbeError::BadCaCert {
                    path: path.clone(),
                    index,
                    reason: e.to_string(),
                })?;
        }
        Ok(CaFile { path, certs })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }
}

/// The path and fingerprints: what an operator compares, not pages of DER bytes.
impl fmt::Debug for CaFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fingerprints: Vec<String> = self.certs.iter().map(|c| fingerprint(c)).collect();
        f.debug_struct("CaFile")
            .field("path", &self.path)
            .field("sha256", &fingerprints)
            .finish()
    }
}

/// A client certificate chain and its key, ready for the handshake.
#[derive(Clone)]
pub struct ClientIdentity {
    cert_path: PathBuf,
    key_path: PathBuf,
    key: Arc<CertifiedKey>,
}

impl ClientIdentity {
    /// Reads a PEM certificate chain and a PEM private key and checks that they match.
    pub fn load(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, ProbeError> {
        let cert_path = cert.as_ref().to_path_buf();
        let key_path = key.as_ref().to_path_buf();
        let cert_bytes = read("client certificate", &cert_path)?;
        let chain = CertificateDer::pem_slice_iter(&cert_bytes)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| no_pem("client certificate", &cert_path, e.to_string()))?;
        if chain.is_empty() {
            return Err(no_pem(
                "client certificate",
                &cert_path,
                "no CERTIFICATE block".to_string(),
            ));
        }
        let key_bytes = read("client key", &key_path)?;
        let private = PrivateKeyDer::from_pem_slice(&key_bytes)
            .map_err(|e| no_pem("client key", &key_path, e.to_string()))?;
        let provider = rustls::crypto::ring::default_provider();
        let certified = CertifiedKey::from_der(chain, private, &provider).map_err(|e| {
            ProbeError::BadClientKey {
                cert: cert_path.clone(),
                key: key_path.clone(),
                reason: e.to_string(),
            }
        })?;
        Ok(ClientIdentity {
            cert_path,
            key_path,
            key: Arc::new(certified),
        })
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    pub(super) fn certified_key(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.key)
    }
}

/// Only the paths: the key must never reach logs or debug output.
impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .field("key", &"<redacted>")
            .finish()
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, ProbeError> {
    std::fs::read(path).map_err(|source| ProbeError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn no_pem(what: &'static str, path: &Path, reason: String) -> ProbeError {
    ProbeError::NoPem {
        what,
        path: path.to_path_buf(),
        reason,
    }
}
