//! Decides whether the captured chain would be trusted, the way containerd decides it.
//!
//! containerd (Go) verifies against the system pool plus hosts.toml `ca` files, so the chain
//! is checked twice: system roots alone, and system roots plus the CA files. The rustls
//! error is then mapped to a verdict an operator can act on; the parsed certificates fill in
//! what rustls does not say (the leaf's dates, its Common Name, the missing issuer).

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{CertificateError, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use super::cert::{ca_issuer_urls, common_name, subject_alt_names};
use super::options::CaFile;
use super::report::{Timestamp, TrustReport, Verdict};

/// Verifies `chain` against the system roots and, when CA files are configured, against
/// system roots plus those files.
pub(super) async fn assess(
    chain: &[CertificateDer<'static>],
    name: &ServerName<'static>,
    ca_files: &[CaFile],
    provider: &Arc<CryptoProvider>,
) -> TrustReport {
    let (system_certs, system_root_errors) = load_system_roots().await;
    let mut store = RootCertStore::empty();
    let (system_roots, _unusable) = store.add_parsable_certificates(system_certs);
    let system = verdict(chain, name, store.clone(), &[], provider);
    let with_ca_files = if ca_files.is_empty() {
        None
    } else {
        let extra: Vec<CertificateDer<'static>> = ca_files
            .iter()
            .flat_map(|f| f.certificates().iter().cloned())
            .collect();
        // CaFile::load already proved each one is a usable anchor.
        store.add_parsable_certificates(extra.iter().cloned());
        Some(verdict(chain, name, store, &extra, provider))
    };
    TrustReport {
        system_roots,
        system_root_errors,
        system,
        ca_files: ca_files.iter().map(|f| f.path().to_path_buf()).collect(),
        with_ca_files,
    }
}

/// Reads the system store off the async runtime: it is a directory of files.
async fn load_system_roots() -> (Vec<CertificateDer<'static>>, Vec<String>) {
    match tokio::task::spawn_blocking(rustls_native_certs::load_native_certs).await {
        Ok(result) => (
            result.certs,
            result.errors.iter().map(ToString::to_string).collect(),
        ),
        Err(e) => (
            Vec::new(),
            vec![format!("loading system roots failed: {e}")],
        ),
    }
}

fn verdict(
    chain: &[CertificateDer<'static>],
    name: &ServerName<'static>,
    store: RootCertStore,
    extra_cas: &[CertificateDer<'static>],
    provider: &Arc<CryptoProvider>,
) -> Verdict {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Verdict::Other("the server presented no certificate".to_string());
    };
    if store.is_empty() {
        // Nothing can be trusted; rustls refuses to build a verifier without anchors.
        return unknown_issuer(chain, extra_cas);
    }
    let verifier =
        match WebPkiServerVerifier::builder_with_provider(Arc::new(store), Arc::clone(provider))
            .build()
        {
            Ok(v) => v,
            Err(e) => return Verdict::Other(e.to_string()),
        };
    match verifier.verify_server_cert(leaf, intermediates, name, &[], UnixTime::now()) {
        Ok(_) => Verdict::Trusted,
        Err(rustls::Error::InvalidCertificate(e)) => {
            from_certificate_error(e, chain, name, extra_cas)
        }
        Err(e) => Verdict::Other(e.to_string()),
    }
}

fn from_certificate_error(
    error: CertificateError,
    chain: &[CertificateDer<'static>],
    name: &ServerName<'static>,
    extra_cas: &[CertificateDer<'static>],
) -> Verdict {
    let leaf = chain
        .first()
        .and_then(|der| X509Certificate::from_der(der.as_ref()).ok())
        .map(|(_, cert)| cert);
    match error {
        CertificateError::UnknownIssuer => unknown_issuer(chain, extra_cas),
        // A CA with the issuer's name but another key (a re-made CA, a copy of the
        // wrong file): no trusted authority signed the chain. Go and so containerd say
        // "signed by unknown authority (possibly because of ... verification error)".
        CertificateError::BadSignature => Verdict::UnknownIssuer,
        CertificateError::ExpiredContext { not_after, .. } => Verdict::Expired {
            not_after: Timestamp::from_unix(secs(not_after)),
        },
        CertificateError::NotValidYetContext { not_before, .. } => Verdict::NotYetValid {
            not_before: Timestamp::from_unix(secs(not_before)),
        },
        CertificateError::Expired if leaf.is_some() => Verdict::Expired {
            not_after: leaf_time(leaf.as_ref(), false),
        },
        CertificateError::NotValidYet if leaf.is_some() => Verdict::NotYetValid {
            not_before: leaf_time(leaf.as_ref(), true),
        },
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            name_verdict(leaf.as_ref(), name)
        }
        other => Verdict::Other(rustls::Error::InvalidCertificate(other).to_string()),
    }
}

fn secs(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

fn leaf_time(leaf: Option<&X509Certificate<'_>>, start: bool) -> Timestamp {
    let unix = leaf.map_or(0, |c| {
        let v = c.validity();
        if start { v.not_before } else { v.not_after }.timestamp()
    });
    Timestamp::from_unix(unix)
}

/// Tells a legacy CN-only certificate (right name, wrong place) from a wrong name. The
/// names come from the parsed leaf (rustls only offers them in debug notation), in the
/// order Go prints them: DNS names, then IP addresses.
fn name_verdict(leaf: Option<&X509Certificate<'_>>, name: &ServerName<'static>) -> Verdict {
    let has_san = leaf.is_some_and(|c| matches!(c.subject_alternative_name(), Ok(Some(_))));
    if !has_san
        && let Some(cn) = leaf.and_then(common_name)
        && cn.eq_ignore_ascii_case(&name.to_str())
    {
        return Verdict::CnOnly { common_name: cn };
    }
    let presented = leaf.map_or_else(Vec::new, |c| {
        let (mut dns, ips) = subject_alt_names(c);
        dns.extend(ips);
        dns
    });
    Verdict::NotValidForName { presented }
}

/// `UnknownIssuer`, sharpened to `MissingIntermediate` when the evidence supports it.
fn unknown_issuer(
    chain: &[CertificateDer<'static>],
    extra_cas: &[CertificateDer<'static>],
) -> Verdict {
    let parsed: Vec<X509Certificate<'_>> = chain
        .iter()
        .filter_map(|der| X509Certificate::from_der(der.as_ref()).ok())
        .map(|(_, cert)| cert)
        .collect();
    let Some(mut top) = parsed.first() else {
        return Verdict::UnknownIssuer;
    };
    // Follow issuer links through what the server sent; bounded against loops.
    for _ in 0..parsed.len() {
        let issuer = top.issuer().as_raw();
        match parsed.iter().find(|c| {
            c.subject().as_raw() == issuer && c.subject().as_raw() != top.subject().as_raw()
        }) {
            Some(next) => top = next,
            None => break,
        }
    }
    let issuer = top.issuer().as_raw();
    if issuer == top.subject().as_raw() {
        // The chain ends in a root; that root is simply not trusted.
        return Verdict::UnknownIssuer;
    }
    let cas: Vec<X509Certificate<'_>> = extra_cas
        .iter()
        .filter_map(|der| X509Certificate::from_der(der.as_ref()).ok())
        .map(|(_, cert)| cert)
        .collect();
    if cas.iter().any(|ca| ca.subject().as_raw() == issuer) {
        // The issuer is configured yet did not verify: not a missing certificate.
        return Verdict::UnknownIssuer;
    }
    if !ca_issuer_urls(top).is_empty() || !cas.is_empty() {
        Verdict::MissingIntermediate {
            issuer: top.issuer().to_string(),
        }
    } else {
        Verdict::UnknownIssuer
    }
}
