//! Human facts about each presented certificate.
//!
//! Operators confirm a CA by its SHA-256 fingerprint and read names and dates to see why a
//! chain fails, so these are computed from the DER itself, independently of the verifier.

use rustls_pki_types::CertificateDer;
use x509_parser::asn1_rs::Oid;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS, OID_SIG_ED25519};
use x509_parser::prelude::FromDer;
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::report::{CertInfo, PresentedCert, Timestamp, fingerprint};

/// Describes one certificate; parse failures become a field, never a panic.
pub(super) fn describe(der: &CertificateDer<'_>) -> PresentedCert {
    let sha256_fingerprint = fingerprint(der);
    match X509Certificate::from_der(der.as_ref()) {
        Ok((_, cert)) => PresentedCert {
            sha256_fingerprint,
            info: Some(info(&cert)),
            parse_error: None,
            der: der.to_vec(),
        },
        Err(e) => PresentedCert {
            sha256_fingerprint,
            info: None,
            parse_error: Some(e.to_string()),
            der: der.to_vec(),
        },
    }
}

fn info(cert: &X509Certificate<'_>) -> CertInfo {
    let (dns_names, ip_addresses) = subject_alt_names(cert);
    let validity = cert.validity();
    CertInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        common_name: common_name(cert),
        dns_names,
        ip_addresses,
        not_before: Timestamp::from_unix(validity.not_before.timestamp()),
        not_after: Timestamp::from_unix(validity.not_after.timestamp()),
        self_signed: is_self_signed(cert),
        is_ca: cert.is_ca(),
        key: key_description(cert.public_key()),
        serial: cert.raw_serial_as_string().to_ascii_uppercase(),
        ca_issuers: ca_issuer_urls(cert),
    }
}

/// Self-issued is not enough: a leaf can name itself as issuer without being its own signer.
pub(super) fn is_self_signed(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw() && cert.verify_signature(None).is_ok()
}

pub(super) fn common_name(cert: &X509Certificate<'_>) -> Option<String> {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}

pub(super) fn subject_alt_names(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<String>) {
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(n) => dns.push((*n).to_string()),
                GeneralName::IPAddress(bytes) => ips.push(ip_to_string(bytes)),
                _ => {}
            }
        }
    }
    (dns, ips)
}

fn ip_to_string(bytes: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        std::net::Ipv4Addr::from(v4).to_string()
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        std::net::Ipv6Addr::from(v6).to_string()
    } else {
        format!("invalid IP ({} bytes)", bytes.len())
    }
}

pub(super) fn ca_issuer_urls(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut urls = Vec::new();
    for ext in cert.iter_extensions() {
        if let ParsedExtension::AuthorityInfoAccess(aia) = ext.parsed_extension() {
            for desc in aia.iter() {
                if desc.access_method == OID_PKIX_ACCESS_DESCRIPTOR_CA_ISSUERS
                    && let GeneralName::URI(uri) = desc.access_location
                {
                    urls.push(uri.to_string());
                }
            }
        }
    }
    urls
}

/// Names the key the way operators compare it with `openssl x509 -text`.
fn key_description(spki: &SubjectPublicKeyInfo<'_>) -> String {
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => format!("RSA {}", significant_bits(rsa.modulus)),
        Ok(PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| Oid::try_from(p).ok())
                .map(|oid| oid.to_id_string());
            match curve.as_deref() {
                Some("1.2.840.10045.3.1.7") => "ECDSA P-256".to_string(),
                Some("1.3.132.0.34") => "ECDSA P-384".to_string(),
                Some("1.3.132.0.35") => "ECDSA P-521".to_string(),
                Some(other) => format!("ECDSA curve {other}"),
                None => "ECDSA (unnamed curve)".to_string(),
            }
        }
        _ if spki.algorithm.algorithm == OID_SIG_ED25519 => "Ed25519".to_string(),
        _ => format!("unknown ({})", spki.algorithm.algorithm.to_id_string()),
    }
}

/// Bit length of a big-endian unsigned integer (DER may prepend a zero byte).
fn significant_bits(be: &[u8]) -> usize {
    let trimmed: &[u8] = match be.iter().position(|b| *b != 0) {
        Some(i) => &be[i..],
        None => return 0,
    };
    let top = trimmed[0];
    (trimmed.len() - 1) * 8 + (8 - top.leading_zeros() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_length_ignores_der_sign_byte() {
        assert_eq!(significant_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(significant_bits(&[0x01, 0x00]), 9);
        assert_eq!(significant_bits(&[0x00]), 0);
    }

    #[test]
    fn fingerprint_matches_openssl_format() {
        // SHA-256 of the empty input.
        assert!(fingerprint(b"").starts_with("E3:B0:C4:42:98:FC:1C:14"));
        assert_eq!(fingerprint(b"").len(), 32 * 3 - 1);
    }

    #[test]
    fn garbage_is_reported_not_panicked() {
        let cert = describe(&CertificateDer::from(vec![0x30, 0x03, 0x01]));
        assert!(cert.info.is_none());
        assert!(cert.parse_error.is_some());
    }
}
