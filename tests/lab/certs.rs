//! Certificates made per test with rcgen: a private CA and the leaves signed by it,
//! plus the broken variants the diagnosis must recognise.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use time::{Duration, OffsetDateTime};

/// Which certificate a TLS registry presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertKind {
    /// Leaf for the registry name, signed by a private CA (trusted only via hosts.toml).
    PrivateCa,
    /// Leaf for the registry name, signed by itself.
    SelfSigned,
    /// Leaf signed by the private CA whose validity ended a year ago.
    Expired,
    /// Leaf signed by the private CA, valid only from next year.
    NotYetValid,
    /// Leaf signed by the private CA for `localhost` and another name, not the registry's.
    WrongHost,
}

/// A registry's TLS files, written to disk for `docker-registry` and containerd.
pub struct TlsFiles {
    /// The CA that signed the leaf (for SelfSigned: the leaf itself).
    pub ca_pem: String,
    pub ca_path: PathBuf,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// Names in the leaf's SAN.
    pub names: Vec<String>,
    pub not_after: OffsetDateTime,
}

const WRONG_NAMES: [&str; 2] = ["localhost", "other.ctrdiag.test"];

fn ca() -> (CertificateParams, KeyPair, String) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params
        .distinguished_name
        .push(DnType::CommonName, "ctrdiag lab CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = KeyPair::generate().expect("CA key");
    let pem = params.self_signed(&key).expect("self-sign CA").pem();
    (params, key, pem)
}

/// Makes the certificate of `kind` for `host` and writes ca.crt, server.crt, server.key.
pub fn make(kind: CertKind, host: &str, dir: &Path) -> TlsFiles {
    let names: Vec<String> = match kind {
        CertKind::WrongHost => WRONG_NAMES.iter().map(|s| s.to_string()).collect(),
        _ => vec![host.to_string()],
    };
    let mut leaf = CertificateParams::new(names.clone()).expect("leaf params");
    leaf.distinguished_name
        .push(DnType::CommonName, names[0].clone());
    let now = OffsetDateTime::now_utc();
    match kind {
        CertKind::Expired => {
            leaf.not_before = now - Duration::days(400);
            leaf.not_after = now - Duration::days(365);
        }
        CertKind::NotYetValid => {
            leaf.not_before = now + Duration::days(365);
            leaf.not_after = now + Duration::days(730);
        }
        _ => {
            leaf.not_before = now - Duration::days(1);
            leaf.not_after = now + Duration::days(30);
        }
    }
    // rcgen encodes with second precision; keep the exact value the certificate carries.
    let not_after = leaf.not_after.replace_nanosecond(0).expect("whole seconds");
    let leaf_key = KeyPair::generate().expect("leaf key");
    let (cert_pem, ca_pem) = if kind == CertKind::SelfSigned {
        let pem = leaf.self_signed(&leaf_key).expect("self-sign leaf").pem();
        (pem.clone(), pem)
    } else {
        let (ca_params, ca_key, ca_pem) = ca();
        let issuer = Issuer::new(ca_params, ca_key);
        let pem = leaf.signed_by(&leaf_key, &issuer).expect("sign leaf").pem();
        (pem, ca_pem)
    };
    let files = TlsFiles {
        ca_path: dir.join("ca.crt"),
        cert_path: dir.join("server.crt"),
        key_path: dir.join("server.key"),
        ca_pem,
        names,
        not_after,
    };
    std::fs::write(&files.ca_path, &files.ca_pem).expect("write ca.crt");
    std::fs::write(&files.cert_path, cert_pem).expect("write server.crt");
    std::fs::write(&files.key_path, leaf_key.serialize_pem()).expect("write server.key");
    files
}
