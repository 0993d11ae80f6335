//! Turning an operator's fix request into a [`Plan`]: which files change, what is
//! installed, whether containerd restarts, and which pull proves it. Pure: the node's
//! facts come in, a plan goes out; [`crate::plan::Executor`] runs it.

use std::time::Duration;

use crate::ctrconfig::hosts_dir::own_dir_names;
use crate::ctrconfig::{
    ContainerdVersion, Edit, HostsToml, NodeFacts, NodeFiles, PlanError, PlanOptions, TrustMode,
    plan_remove_overrides, plan_trust,
};
use crate::plan::{InsecureMode, InsecureSetting, Plan, Step, sha256_hex};
use crate::probe::PresentedCert;
use crate::registry::host::{HostError, RegistryHost};
use crate::registry::reference::{ImageRef, ReferenceError};

/// Name of the CA file ctrdiag installs next to hosts.toml.
pub const CA_FILE_NAME: &str = "ctrdiag-ca.crt";
/// PEM bundles larger than this are not a registry's CA.
const MAX_CA_BYTES: usize = 1 << 20;
/// Longest an insecure setting may stay.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// What the operator asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixMode {
    /// Trust this CA (PEM): the right fix for a private CA.
    Ca { pem: String },
    /// Trust exactly this server certificate (PEM), pinned as the host's CA: works
    /// until the certificate is renewed.
    PinCertificate { pem: String },
    /// Skip certificate verification: test environments only.
    InsecureSkipVerify,
    /// The registry speaks plain HTTP.
    PlainHttp,
    /// Remove registry overrides for the host (or for every host).
    RemoveOverrides { all_hosts: bool },
}

/// A validated fix request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixSpec {
    pub host: RegistryHost,
    pub mode: FixMode,
    /// The image pulled through CRI to prove the fix.
    pub verify_image: Option<String>,
    /// Use the legacy `configs.<host>.tls` table (1.x without config_path only).
    pub legacy: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum FixError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(
        "the CA is not a PEM certificate: {0}; pass the registry's CA certificate (`-----BEGIN CERTIFICATE-----`)"
    )]
    BadCa(&'static str),
    #[error("nothing to do: there are no registry overrides{} to remove", .host.as_ref().map(|h| format!(" for {h}")).unwrap_or_default())]
    NothingToRemove { host: Option<RegistryHost> },
    #[error(
        "a fix is proven by a real pull: give an image on {host} to pull (e.g. `{host}/app:tag`)"
    )]
    NeedsVerifyImage { host: RegistryHost },
    #[error("a change record names {0}: it cannot be acted on; see `ctrdiag changes`")]
    BadRecord(String),
    #[error("registry settings also come from imported file(s) {}: containerd merges them with config.toml, and ctrdiag will not edit around them; move those settings into config.toml (or drop them), then run the fix again", .files.join(", "))]
    ImportedRegistrySettings { files: Vec<String> },
    #[error("a time to live is at most {} days", MAX_TTL.as_secs() / 86400)]
    TtlTooLong,
    #[error("a time to live is for --insecure-skip-verify and --plain-http only")]
    TtlNotInsecure,
    #[error(
        "a SHA-256 fingerprint is 64 hex digits (colons optional), as `openssl x509 -noout -fingerprint -sha256` prints it"
    )]
    BadFingerprint,
    #[error("{host} presents no certificate with that SHA-256 fingerprint. It sends: {}.{} Check the fingerprint with the registry's operator", .presented.join("; "), choices(.ca_sent, host, .leaf_sha256))]
    FingerprintMismatch {
        host: String,
        /// Each certificate sent, with its role and fingerprint.
        presented: Vec<String>,
        /// Whether a CA certificate is among them.
        ca_sent: bool,
        leaf_sha256: Option<String>,
    },
    #[error("the certificate with that fingerprint is {host}'s own certificate ({subject}), not a CA: it was signed by a CA the registry does not send.{} ", choices(&false, host, &Some(.sha256.clone())))]
    NotACa {
        host: String,
        subject: String,
        sha256: String,
    },
}

/// What the operator can do when the CA they want is not in what the registry sends.
fn choices(ca_sent: &bool, host: &str, leaf: &Option<String>) -> String {
    if *ca_sent {
        return String::new();
    }
    let pin = leaf
        .as_ref()
        .map(|fp| {
            format!(
                " Or pin the registry's own certificate: `ctrdiag fix {host} --pin-server-certificate --sha256 {fp}` (it stops working when that certificate is renewed)."
            )
        })
        .unwrap_or_default();
    format!(
        " The CA that signed it is not sent (most registries send only their own certificate): get the CA certificate from the registry's operator and run `ctrdiag fix {host} --ca ca.crt`.{pin}"
    )
}

/// What a presented certificate is in the chain, for people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertRole {
    /// The registry's own certificate (first in the chain).
    Leaf,
    /// The leaf, signed by itself: it is its own CA.
    SelfSignedLeaf,
    /// A CA certificate signed by another.
    Intermediate,
    /// A self-signed CA certificate.
    Root,
    /// Anything else the server sent along.
    Other,
}

impl CertRole {
    /// Whether installing this certificate as a CA file makes sense.
    pub fn is_ca(self) -> bool {
        matches!(
            self,
            CertRole::SelfSignedLeaf | CertRole::Intermediate | CertRole::Root
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CertRole::Leaf => "leaf (the registry's own certificate)",
            CertRole::SelfSignedLeaf => "self-signed leaf (its own CA)",
            CertRole::Intermediate => "intermediate CA",
            CertRole::Root => "root CA",
            CertRole::Other => "certificate",
        }
    }
}

/// The role of the certificate at `index` of a presented chain.
pub fn cert_role(index: usize, cert: &PresentedCert) -> CertRole {
    let (is_ca, self_signed) = cert
        .info
        .as_ref()
        .map_or((false, false), |i| (i.is_ca, i.self_signed));
    match (index, is_ca, self_signed) {
        (0, _, true) => CertRole::SelfSignedLeaf,
        (0, _, false) => CertRole::Leaf,
        (_, true, true) => CertRole::Root,
        (_, true, false) => CertRole::Intermediate,
        (_, false, _) => CertRole::Other,
    }
}

/// Which certificate of the chain a fix asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    /// A CA (`--ca-from-server`): an intermediate, a root, or a self-signed leaf.
    Ca,
    /// The registry's own certificate, pinned (`--pin-server-certificate`).
    Leaf,
}

/// The time to live of a fix, checked: at most [`MAX_TTL`], and only for a setting
/// that turns something insecure on. `0` means none.
pub fn check_ttl(ttl_secs: u64, insecure: bool) -> Result<Option<Duration>, FixError> {
    match ttl_secs {
        0 => Ok(None),
        s if Duration::from_secs(s) > MAX_TTL => Err(FixError::TtlTooLong),
        _ if !insecure => Err(FixError::TtlNotInsecure),
        s => Ok(Some(Duration::from_secs(s))),
    }
}

/// The insecure setting a fix of `mode` turns on for `host`, if it does.
pub fn insecure_setting(host: &RegistryHost, mode: &FixMode) -> Option<InsecureSetting> {
    let mode = match mode {
        FixMode::InsecureSkipVerify => InsecureMode::SkipVerify,
        FixMode::PlainHttp => InsecureMode::PlainHttp,
        FixMode::Ca { .. } | FixMode::PinCertificate { .. } | FixMode::RemoveOverrides { .. } => {
            return None;
        }
    };
    Some(InsecureSetting {
        host: host.to_string(),
        mode,
    })
}

/// The image a fix is proven with: the one the operator names, else the target's own
/// image, else the image of the host's most recent failed pull that detection saw (the
/// pull the fix is for), except when removing overrides (which may rightly make such
/// a pull fail: only a named image proves that).
pub fn verify_image(
    requested: Option<String>,
    target_image: Option<&ImageRef>,
    recent_failure: Option<String>,
    removing_overrides: bool,
) -> Option<String> {
    match (requested, target_image) {
        (Some(i), _) => Some(i),
        (None, _) if removing_overrides => None,
        (None, Some(i)) => Some(i.to_string()),
        (None, None) => recent_failure,
    }
}

/// `AB:CD:...`, `sha256:abcd...` and `abcd...` all name the same fingerprint: 64 lower
/// case hex digits, or an error saying what a fingerprint looks like.
pub fn normalize_fingerprint(s: &str) -> Result<String, FixError> {
    let hex: String = s
        .trim()
        .trim_start_matches("sha256:")
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(FixError::BadFingerprint)
    }
}

/// The certificate in `chain` whose SHA-256 fingerprint is `sha256` (as the operator
/// confirmed it), if it is what `wanted` asks for; otherwise an error listing what the
/// registry does send, each with its role, and what the choices are.
pub fn pick_presented<'a>(
    host: &RegistryHost,
    chain: &'a [PresentedCert],
    sha256: &str,
    wanted: Wanted,
) -> Result<&'a PresentedCert, FixError> {
    let want = normalize_fingerprint(sha256)?;
    let same = |c: &PresentedCert| {
        normalize_fingerprint(&c.sha256_fingerprint).ok().as_deref() == Some(want.as_str())
    };
    let leaf_sha256 = chain.first().map(|c| c.sha256_fingerprint.clone());
    let found = chain.iter().enumerate().find(|(_, c)| same(c));
    match (found, wanted) {
        (Some((i, c)), Wanted::Ca) if cert_role(i, c).is_ca() => Ok(c),
        (Some((0, c)), Wanted::Ca) => Err(FixError::NotACa {
            host: host.to_string(),
            subject: c
                .info
                .as_ref()
                .map(|i| i.subject.clone())
                .unwrap_or_default(),
            sha256: c.sha256_fingerprint.clone(),
        }),
        (Some((0, c)), Wanted::Leaf) => Ok(c),
        _ => Err(FixError::FingerprintMismatch {
            host: host.to_string(),
            presented: chain
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let subject = c
                        .info
                        .as_ref()
                        .map(|x| x.subject.clone())
                        .unwrap_or_default();
                    format!(
                        "{} {subject} (SHA-256 {})",
                        cert_role(i, c).as_str(),
                        c.sha256_fingerprint
                    )
                })
                .collect(),
            ca_sent: chain
                .iter()
                .enumerate()
                .any(|(i, c)| cert_role(i, c).is_ca()),
            leaf_sha256,
        }),
    }
}

/// Why a fix target is neither a registry host nor an image reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error(transparent)]
    Image(#[from] ReferenceError),
}

/// The registry and, if given, the image of a fix target: `host[:port]` alone (no
/// `/`), or an image reference (normalised; its registry is the host).
pub fn split_target(target: &str) -> Result<(RegistryHost, Option<ImageRef>), TargetError> {
    let target = target.trim();
    if target.contains('/') {
        let image: ImageRef = target.parse()?;
        Ok((image.host().clone(), Some(image)))
    } else {
        Ok((target.parse()?, None))
    }
}

/// Checks that `pem` holds only certificates: a private key must never be installed
/// (or echoed in a plan) by mistake.
pub fn check_ca_pem(pem: &str) -> Result<(), FixError> {
    if pem.len() > MAX_CA_BYTES {
        return Err(FixError::BadCa("it is larger than 1 MiB"));
    }
    if pem.contains("PRIVATE KEY") {
        return Err(FixError::BadCa(
            "it contains a private key, which must stay on the registry",
        ));
    }
    let begins = pem.matches("-----BEGIN CERTIFICATE-----").count();
    let ends = pem.matches("-----END CERTIFICATE-----").count();
    if begins == 0 || begins != ends {
        return Err(FixError::BadCa("no complete certificate block"));
    }
    Ok(())
}

/// The hosts.toml root a trust plan writes under: the first `config_path` root, or
/// `certs_dir` when the config has none (the planner sets it then).
fn hosts_root(facts: &NodeFacts, certs_dir: &str) -> String {
    facts
        .config
        .facts()
        .config_path
        .as_ref()
        .and_then(|cp| cp.roots().first().map(|r| r.to_string()))
        .unwrap_or_else(|| certs_dir.to_string())
}

/// Where the CA file of `host` goes.
pub fn ca_path(facts: &NodeFacts, host: &RegistryHost, certs_dir: &str) -> String {
    let root = hosts_root(facts, certs_dir);
    let dir = crate::ctrconfig::hosts_dir_for(&root, host, &facts.dir_names(&root));
    format!("{dir}/{CA_FILE_NAME}")
}

/// Builds the plan for `spec`. `existing_ca` is the current content of the CA file at
/// [`ca_path`], if any; `unit` is the containerd unit a restart goes through.
pub fn plan_fix(
    files: &NodeFiles,
    version: &ContainerdVersion,
    spec: &FixSpec,
    existing_ca: Option<String>,
    certs_dir: &str,
    unit: &str,
) -> Result<Plan, FixError> {
    let facts = &files.facts;
    if !files.imported_registry.is_empty() {
        return Err(FixError::ImportedRegistrySettings {
            files: files.imported_registry.clone(),
        });
    }
    let options = PlanOptions {
        legacy: spec.legacy,
        certs_dir: certs_dir.to_string(),
    };
    let mut steps = Vec::new();
    let (title, edits) = match &spec.mode {
        FixMode::Ca { pem } | FixMode::PinCertificate { pem } => {
            check_ca_pem(pem)?;
            let pinned = matches!(spec.mode, FixMode::PinCertificate { .. });
            let path = ca_path(facts, &spec.host, certs_dir);
            let edits = plan_trust(
                facts,
                version,
                &spec.host,
                &TrustMode::Ca(path.clone()),
                &options,
            )?;
            if existing_ca.as_deref() != Some(pem.as_str()) {
                steps.push(Step::WriteFile {
                    path: path.into(),
                    before: existing_ca,
                    after: pem.clone(),
                    mode: 0o644,
                    why: if pinned {
                        format!("{}'s own certificate, pinned: renewing it breaks pulls until it is pinned again", spec.host)
                    } else {
                        format!("the CA that signed {}'s certificate", spec.host)
                    },
                });
            }
            let title = if pinned {
                format!(
                    "pin the certificate of {} (hosts.toml; until it is renewed)",
                    spec.host
                )
            } else {
                format!("trust the CA of {} (hosts.toml)", spec.host)
            };
            (title, edits)
        }
        FixMode::InsecureSkipVerify => (
            format!(
                "skip TLS verification for {} (test environments only)",
                spec.host
            ),
            plan_trust(facts, version, &spec.host, &TrustMode::SkipVerify, &options)?,
        ),
        FixMode::PlainHttp => (
            format!("pull from {} over plain HTTP", spec.host),
            plan_trust(facts, version, &spec.host, &TrustMode::PlainHttp, &options)?,
        ),
        FixMode::RemoveOverrides { all_hosts } => {
            let host = (!*all_hosts).then_some(&spec.host);
            let edits = plan_remove_overrides(facts, host)?;
            if edits.is_empty() {
                return Err(FixError::NothingToRemove {
                    host: host.cloned(),
                });
            }
            let title = match host {
                Some(h) => format!("remove the registry overrides of {h}"),
                None => "remove every registry override".to_string(),
            };
            (title, edits)
        }
    };
    let restart = edits.iter().any(Edit::needs_restart);
    steps.extend(edits.into_iter().map(|e| step_for(e, files)));
    if restart {
        steps.push(Step::RestartUnit {
            unit: unit.to_string(),
            why: "containerd reads config.toml only at start".into(),
        });
    }
    let verify_pull = match (&spec.mode, &spec.verify_image) {
        (_, Some(image)) => Some(image.clone()),
        // Removing overrides may rightly make a pull fail (that can be the point).
        (FixMode::RemoveOverrides { .. }, None) => None,
        (_, None) => {
            return Err(FixError::NeedsVerifyImage {
                host: spec.host.clone(),
            });
        }
    };
    Ok(Plan {
        title,
        steps,
        verify_pull,
    })
}

/// One planner edit as an executor step. A config.toml that does not exist yet is
/// created, so its `before` is no file at all.
fn step_for(edit: Edit, files: &NodeFiles) -> Step {
    match edit {
        Edit::WriteFile {
            path,
            before,
            after,
            reason,
            ..
        } => {
            let is_absent_config = !files.config_exists && path == files.facts.config_file;
            Step::WriteFile {
                path: path.into(),
                before: if is_absent_config { None } else { before },
                after,
                mode: 0o644,
                why: reason,
            }
        }
        Edit::RemoveFile {
            path,
            reason,
            before,
            ..
        } => Step::MoveToBackup {
            sha256: match &before {
                Some(text) => Some(sha256_hex(text.as_bytes())),
                None => files.other_files_sha256.get(&path).cloned(),
            },
            path: path.into(),
            why: reason,
        },
    }
}

/// The edits that end `setting` on the node as its files are now: `skip_verify` (or
/// the `http://` endpoint) removed from the host's own hosts.toml files under every
/// `config_path` root, and from config.toml's legacy table (then containerd restarts).
/// A hosts.toml left with nothing in it is moved to the backup area. Everything else
/// in the files stays. `None`: the setting is already gone.
pub fn plan_insecure_end(
    files: &NodeFiles,
    setting: &InsecureSetting,
    unit: &str,
) -> Result<Option<Plan>, FixError> {
    let host: RegistryHost = setting
        .host
        .parse()
        .map_err(|e| FixError::BadRecord(format!("{e}")))?;
    let mode = setting.mode;
    let facts = &files.facts;
    let mut steps = Vec::new();
    let roots: Vec<String> = facts
        .config
        .facts()
        .config_path
        .as_ref()
        .map(|cp| cp.roots().iter().map(|r| r.to_string()).collect())
        .unwrap_or_default();
    for root in &roots {
        for name in own_dir_names(&host) {
            let Some(text) = facts.dir(root, &name).and_then(|d| d.hosts_toml.as_ref()) else {
                continue;
            };
            let path = std::path::Path::new(root).join(&name).join("hosts.toml");
            let why = format!(
                "the time to live of {} for {host} is over",
                mode_label(setting.mode)
            );
            let removal = HostsToml::parse(text)
                .and_then(|h| h.without_insecure(&host, &mode))
                .map_err(PlanError::from)?;
            steps.extend(Step::for_removal(path, text, removal, why));
        }
    }
    let (after, removed) = facts
        .config
        .without_legacy_insecure(&host, &mode)
        .map_err(PlanError::from)?;
    if !removed.is_empty() {
        let why = format!("remove {}: its time to live is over", removed.join(", "));
        steps.extend(Step::config_toml_rewrite(facts, after, why, unit));
    }
    if steps.is_empty() {
        return Ok(None);
    }
    Ok(Some(Plan {
        title: format!(
            "end {} for {host}: its time to live is over",
            mode_label(setting.mode)
        ),
        steps,
        verify_pull: None,
    }))
}

fn mode_label(mode: InsecureMode) -> &'static str {
    match mode {
        InsecureMode::SkipVerify => "skipped TLS verification",
        InsecureMode::PlainHttp => "plain HTTP",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctrconfig::ConfigToml;

    fn files(config: &str, exists: bool) -> NodeFiles {
        NodeFiles {
            facts: NodeFacts {
                config_file: "/etc/containerd/config.toml".into(),
                config: ConfigToml::parse(config).unwrap(),
                hosts_dirs: Vec::new(),
                named_files: Default::default(),
            },
            config_exists: exists,
            imported: Vec::new(),
            imported_registry: Vec::new(),
            other_files_sha256: Default::default(),
        }
    }

    const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    fn spec(mode: FixMode) -> FixSpec {
        FixSpec {
            host: "r.test:5000".parse().unwrap(),
            mode,
            verify_image: Some("r.test:5000/app:1".into()),
            legacy: false,
        }
    }

    fn plan_ca(f: &NodeFiles, v: &ContainerdVersion) -> Plan {
        let s = spec(FixMode::Ca { pem: PEM.into() });
        plan_fix(
            f,
            v,
            &s,
            None,
            "/etc/containerd/certs.d",
            "containerd.service",
        )
        .unwrap()
    }

    #[test]
    fn a_ca_with_config_path_is_two_files_and_no_restart() {
        let f = files(
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n",
            true,
        );
        let v = ContainerdVersion::parse("1.7.24").unwrap();
        let plan = plan_ca(&f, &v);
        assert!(!plan.restarts());
        assert_eq!(plan.steps.len(), 2, "{plan:#?}");
        let text = plan.render();
        assert!(
            text.contains("/etc/containerd/certs.d/r.test:5000/ctrdiag-ca.crt"),
            "{text}"
        );
        assert!(
            text.contains("/etc/containerd/certs.d/r.test:5000/hosts.toml"),
            "{text}"
        );
        assert_eq!(plan.verify_pull.as_deref(), Some("r.test:5000/app:1"));
    }

    #[test]
    fn a_missing_config_is_created_and_containerd_restarted() {
        let f = files("version = 3\n", false);
        let v = ContainerdVersion::parse("2.1.9").unwrap();
        let plan = plan_ca(&f, &v);
        assert!(plan.restarts());
        let config_step = plan
            .steps
            .iter()
            .find(|s| matches!(s, Step::WriteFile { path, .. } if path.ends_with("config.toml")))
            .expect("config step");
        assert!(matches!(config_step, Step::WriteFile { before: None, .. }));
    }

    #[test]
    fn targets_name_a_registry_and_maybe_an_image() {
        let (h, i) = split_target("r.test:5000/app/x:1").unwrap();
        assert_eq!(
            (h.to_string(), i.map(|i| i.to_string())),
            ("r.test:5000".into(), Some("r.test:5000/app/x:1".into()))
        );
        let (h, i) = split_target("r.test:5000").unwrap();
        assert_eq!((h.to_string(), i), ("r.test:5000".into(), None));
        assert_eq!(
            split_target("library/busybox").unwrap().0.to_string(),
            "docker.io"
        );
        assert!(split_target("../etc/x").is_err());
        assert!(split_target("r.test/UPPER").is_err());
        assert!(split_target("").is_err());
    }

    #[test]
    fn a_ttl_is_bounded_and_only_for_insecure_settings() {
        assert_eq!(check_ttl(0, false).unwrap(), None);
        assert_eq!(
            check_ttl(3600, true).unwrap(),
            Some(Duration::from_secs(3600))
        );
        assert!(matches!(
            check_ttl(3600, false),
            Err(FixError::TtlNotInsecure)
        ));
        assert!(matches!(
            check_ttl(MAX_TTL.as_secs() + 1, true),
            Err(FixError::TtlTooLong)
        ));
    }

    #[test]
    fn the_verify_image_is_the_named_one_the_target_or_the_failed_pull_but_not_when_removing() {
        let target: ImageRef = "r.test:5000/app:1".parse().unwrap();
        let failed = || Some("r.test:5000/seen:3".to_string());
        assert_eq!(
            verify_image(None, Some(&target), failed(), false).as_deref(),
            Some("r.test:5000/app:1")
        );
        assert_eq!(verify_image(None, Some(&target), None, true), None);
        assert_eq!(
            verify_image(Some("r.test:5000/x:2".into()), None, failed(), true).as_deref(),
            Some("r.test:5000/x:2")
        );
        assert_eq!(
            verify_image(None, None, failed(), false).as_deref(),
            Some("r.test:5000/seen:3")
        );
        assert_eq!(verify_image(None, None, failed(), true), None);
        assert_eq!(verify_image(None, None, None, false), None);
    }

    #[test]
    fn fingerprints_are_matched_whatever_their_spelling() {
        let cert = PresentedCert {
            sha256_fingerprint: ["AB"; 32].join(":"),
            info: None,
            parse_error: None,
            der: Vec::new(),
        };
        let host: RegistryHost = "r.test:5000".parse().unwrap();
        let chain = [cert];
        for spelling in [
            "ab".repeat(32),
            format!("sha256:{}", "AB".repeat(32)),
            ["ab"; 32].join(":"),
        ] {
            assert!(
                pick_presented(&host, &chain, &spelling, Wanted::Leaf).is_ok(),
                "{spelling}"
            );
        }
        assert!(matches!(
            pick_presented(&host, &chain, &"cd".repeat(32), Wanted::Leaf),
            Err(FixError::FingerprintMismatch { .. })
        ));
        assert!(matches!(
            pick_presented(&host, &chain, "abc", Wanted::Ca),
            Err(FixError::BadFingerprint)
        ));
    }

    fn cert(fp: &str, is_ca: bool, self_signed: bool) -> PresentedCert {
        let t = crate::probe::Timestamp::from_unix(0);
        PresentedCert {
            sha256_fingerprint: fp.repeat(32),
            info: Some(crate::probe::CertInfo {
                subject: format!("CN={fp}"),
                issuer: "CN=ca".into(),
                common_name: None,
                dns_names: Vec::new(),
                ip_addresses: Vec::new(),
                not_before: t.clone(),
                not_after: t,
                self_signed,
                is_ca,
                key: "ECDSA P-256".into(),
                serial: "01".into(),
                ca_issuers: Vec::new(),
            }),
            parse_error: None,
            der: Vec::new(),
        }
    }

    #[test]
    fn a_leaf_alone_is_no_ca_and_the_error_says_what_to_do_instead() {
        let host: RegistryHost = "r.test:5000".parse().unwrap();
        let leaf_only = [cert("aa", false, false)];
        let err = pick_presented(&host, &leaf_only, &"aa".repeat(32), Wanted::Ca).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, FixError::NotACa { .. }), "{text}");
        assert!(
            text.contains("not a CA") && text.contains("--pin-server-certificate"),
            "{text}"
        );
        assert!(text.contains("--ca ca.crt"), "{text}");
        assert!(pick_presented(&host, &leaf_only, &"aa".repeat(32), Wanted::Leaf).is_ok());

        let err = pick_presented(&host, &leaf_only, &"bb".repeat(32), Wanted::Ca).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("leaf (the registry's own certificate) CN=aa"),
            "{text}"
        );
        assert!(text.contains("The CA that signed it is not sent"), "{text}");

        // With the chain: the intermediate is a CA, and nothing more is suggested.
        let chain = [cert("aa", false, false), cert("bb", true, false)];
        assert!(pick_presented(&host, &chain, &"bb".repeat(32), Wanted::Ca).is_ok());
        let text = pick_presented(&host, &chain, &"cc".repeat(32), Wanted::Ca)
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("intermediate CA CN=bb") && !text.contains("not sent"),
            "{text}"
        );
        // A self-signed leaf is its own CA.
        let own = [cert("dd", false, true)];
        assert!(pick_presented(&host, &own, &"dd".repeat(32), Wanted::Ca).is_ok());
    }

    #[test]
    fn private_keys_and_non_certificates_are_refused() {
        assert!(check_ca_pem(PEM).is_ok());
        assert!(check_ca_pem("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n").is_err());
        assert!(check_ca_pem(&format!("{PEM}-----BEGIN EC PRIVATE KEY-----\n")).is_err());
        assert!(check_ca_pem("hello").is_err());
    }

    #[test]
    fn a_trust_fix_without_an_image_to_prove_it_is_refused() {
        let f = files("version = 2\n", true);
        let v = ContainerdVersion::parse("1.6.20").unwrap();
        let mut s = spec(FixMode::InsecureSkipVerify);
        s.verify_image = None;
        assert!(matches!(
            plan_fix(
                &f,
                &v,
                &s,
                None,
                "/etc/containerd/certs.d",
                "containerd.service"
            ),
            Err(FixError::NeedsVerifyImage { .. })
        ));
    }
}
