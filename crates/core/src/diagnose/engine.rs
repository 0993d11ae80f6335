//! Turns facts (a test pull's error, a probe of the registry, containerd's
//! configuration) into findings: a cause code, a one-line summary, the evidence, and
//! remedies ranked best first. Where the probe and containerd disagree, that
//! disagreement is a finding of its own. Pure: no I/O.

use serde::Serialize;

use super::classify::{Classification, classify};
use crate::cause::{CauseCode, Severity};
use crate::ctrconfig::Finding as ConfigFinding;
use crate::ctrconfig::HostTrust;
use crate::loaded::LoadedFinding;
use crate::probe::{Fact, ProbeReport, Verdict};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Remedy {
    pub text: String,
    /// A command that applies it, when ctrdiag can.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub cause: CauseCode,
    pub severity: Severity,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    pub remedies: Vec<Remedy>,
}

/// A test pull through CRI, as the engine needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullResult {
    Ok,
    Failed {
        message: String,
    },
    /// The pull ran past the daemon's `pull_timeout_secs`.
    TimedOut {
        limit_secs: u64,
    },
}

/// Everything known about one target.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// `host[:port]`.
    pub host: String,
    /// The image pulled (or to suggest in commands); `None` for a bare host.
    pub image: Option<String>,
    pub pull: Option<PullResult>,
    pub probe: Option<&'a ProbeReport>,
    pub config: &'a [ConfigFinding],
    /// What containerd is configured to do for this host (CA files, skip_verify,
    /// plain HTTP, and the file that says so).
    pub trust: HostTrust,
    /// The ctrdiag change that turned an insecure setting on for this host, if one did.
    pub insecure_change: Option<InsecureChange>,
    /// containerd itself could not be asked (down, or its CRI plugin not loaded).
    pub containerd_problem: Option<(CauseCode, String)>,
    /// What containerd's Introspection reports (empty when it did not answer).
    pub loaded: &'a [LoadedFinding],
    /// When to warn of a certificate that still works but expires soon.
    pub expiry_warning: Option<ExpiryWarning>,
    /// Who owns containerd's configuration when it is not containerd's own (k3s,
    /// RKE2, Bottlerocket): a `config_managed` finding says so, with the change to
    /// make in the owner's format.
    pub owner: Option<crate::managed::Owned<'a>>,
}

/// "Now" and the warning window, for certificates that expire soon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryWarning {
    pub now_unix: i64,
    pub window_secs: i64,
}

impl ExpiryWarning {
    /// The seconds left on a certificate valid until `not_after`, when that is inside
    /// the window and not yet over (an expired one is `tls_expired`, not a warning).
    pub fn left(&self, not_after: i64) -> Option<i64> {
        let left = not_after - self.now_unix;
        (left > 0 && left <= self.window_secs).then_some(left)
    }
}

/// A ctrdiag change that keeps an insecure setting on for the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsecureChange {
    pub id: String,
    /// When its time to live ends (Unix seconds); `None`: it has none.
    pub expires_unix: Option<u64>,
}

impl InsecureChange {
    /// `change ID, until 2026-12-02T10:00:00Z` (or `with no time to live`).
    fn describe(&self) -> String {
        match self.expires_unix {
            Some(at) => format!(
                "change {}, until {}",
                self.id,
                crate::probe::Timestamp::from_unix(at as i64).rfc3339
            ),
            None => format!("change {}, with no time to live", self.id),
        }
    }
}

fn ev(label: &str, value: impl Into<String>) -> Evidence {
    Evidence {
        label: label.to_string(),
        value: value.into(),
    }
}

fn remedy(text: impl Into<String>, command: Option<String>) -> Remedy {
    Remedy {
        text: text.into(),
        command,
    }
}

/// The findings for `facts`, most severe first; empty means healthy.
pub fn diagnose(facts: &Facts<'_>) -> Vec<Finding> {
    let mut out: Vec<Finding> = facts.config.iter().map(config_finding).collect();
    let target = facts.image.clone().unwrap_or_else(|| facts.host.clone());
    if let Some((cause, message)) = &facts.containerd_problem {
        out.push(containerd_finding(*cause, message));
    }
    for f in facts.loaded {
        add_loaded(&mut out, f);
    }
    let pull_cause = match &facts.pull {
        Some(PullResult::Failed { message }) => {
            let c = classify(message);
            out.push(pull_finding(&c, facts, &target));
            Some(c.cause)
        }
        Some(PullResult::TimedOut { limit_secs }) => {
            out.push(pull_timeout_finding(*limit_secs, &target));
            Some(CauseCode::Timeout)
        }
        _ => None,
    };
    if let (Some(o), Ok(host)) = (&facts.owner, facts.host.parse()) {
        out.extend(crate::managed::finding(
            o.owner,
            &target,
            &host,
            pull_cause,
            o.registries_file,
        ));
    }
    if let (Some(probe), Some(w)) = (facts.probe, facts.expiry_warning) {
        out.extend(expiring_finding(probe, w, &facts.host));
    }
    if let Some(probe) = facts.probe {
        let (observations, disagreements) = probe_findings(probe, facts, &target, pull_cause);
        for f in observations {
            // The probe explaining the pull's own failure: its chain is more evidence
            // for that finding, not a second one.
            match out
                .iter_mut()
                .find(|p| p.cause == f.cause && Some(f.cause) == pull_cause)
            {
                Some(pull) => pull.evidence.extend(f.evidence),
                None => out.push(f),
            }
        }
        out.extend(disagreements);
    }
    // One finding per cause: the pull's own wording comes first and carries the most.
    let mut seen = Vec::new();
    out.retain(|f| {
        let dup = seen.contains(&(f.cause, f.summary.clone()));
        seen.push((f.cause, f.summary.clone()));
        !dup
    });
    out.sort_by_key(|f| std::cmp::Reverse(f.severity));
    out
}

/// The registry's own certificate (the leaf) works now but expires within the window.
fn expiring_finding(probe: &ProbeReport, w: ExpiryWarning, host: &str) -> Option<Finding> {
    let leaf = probe.chain.first()?.info.as_ref()?;
    let left = w.left(leaf.not_after.unix)?;
    let days = left / 86_400;
    Some(Finding {
        cause: CauseCode::TlsExpiringSoon,
        severity: Severity::Warning,
        summary: format!(
            "{host}'s certificate expires in {} (at {}): pulls will fail with tls_expired then",
            if days >= 1 {
                format!("{days} day(s)")
            } else {
                format!("{} hour(s)", left / 3600)
            },
            leaf.not_after.rfc3339
        ),
        evidence: vec![
            ev(
                "certificate",
                format!(
                    "{} (SHA-256 {})",
                    leaf.subject, probe.chain[0].sha256_fingerprint
                ),
            ),
            ev("not after", &leaf.not_after.rfc3339),
        ],
        remedies: vec![Remedy {
            text: format!(
                "renew {host}'s certificate before {}; `ctrdiag events --cause tls_expiring_soon` shows the warnings, and the daemon's probes see the renewal",
                leaf.not_after.rfc3339
            ),
            command: None,
        }],
    })
}

/// Whether the findings leave the target working.
pub fn healthy(findings: &[Finding]) -> bool {
    findings.iter().all(|f| f.severity != Severity::Error)
}

fn containerd_finding(cause: CauseCode, message: &str) -> Finding {
    let summary = match cause {
        CauseCode::CriUnavailable => {
            "containerd's CRI plugin is not loaded: the kubelet cannot pull anything"
        }
        _ => "containerd does not answer: nothing can be pulled",
    };
    Finding {
        cause,
        severity: Severity::Error,
        summary: summary.to_string(),
        evidence: vec![ev("containerd", message)],
        remedies: vec![remedy(
            "read `journalctl -u containerd`; a CRI plugin that refused its config names the reason there",
            None,
        )],
    }
}

/// containerd's own word on what it loaded: more evidence for the finding that
/// inferred the same (CRI missing, legacy tables deprecated), or a finding of its own.
fn add_loaded(out: &mut Vec<Finding>, f: &LoadedFinding) {
    let said = ev("containerd's Introspection", f.to_string());
    let same = out.iter_mut().find(|o| match f {
        LoadedFinding::CriFailed { .. } | LoadedFinding::CriMissing => {
            o.cause == CauseCode::CriUnavailable
        }
        LoadedFinding::Deprecated(d) => {
            d.registry_setting().is_some()
                && o.cause == CauseCode::ConfigDeprecated
                && o.summary.starts_with("registry ")
        }
    });
    match same {
        Some(o) => {
            o.evidence.push(said);
            if o.cause == CauseCode::CriUnavailable {
                o.summary = f.to_string();
                o.remedies.insert(0, remedy(f.remedy(), None));
            }
        }
        None => out.push(Finding {
            cause: f.cause(),
            severity: match f {
                LoadedFinding::Deprecated(_) => Severity::Warning,
                _ => Severity::Error,
            },
            summary: f.to_string(),
            evidence: vec![said],
            remedies: vec![remedy(f.remedy(), None)],
        }),
    }
}

fn config_finding(f: &ConfigFinding) -> Finding {
    let cause = f.cause();
    let severity = match f {
        ConfigFinding::DeprecatedLegacyRegistry { .. }
        | ConfigFinding::ConfigVersion1
        // What it breaks shows as the pull's own finding; this says why.
        | ConfigFinding::DiffersFromEffective { .. }
        | ConfigFinding::HostsTomlShadowed {
            expected: false, ..
        } => Severity::Warning,
        ConfigFinding::HostsTomlShadowed { expected: true, .. } => Severity::Info,
        _ => Severity::Error,
    };
    let remedies = match f {
        ConfigFinding::ConfigConflict { .. } | ConfigFinding::ConfigIgnored { .. } => vec![
            remedy(
                "a CA fix moves the legacy registry tables into hosts.toml in the same change",
                Some("ctrdiag fix REGISTRY --ca /path/to/ca.crt".into()),
            ),
            remedy(
                "or drop the legacy registry tables",
                Some("ctrdiag fix REGISTRY --remove-overrides --all-hosts".into()),
            ),
        ],
        ConfigFinding::DiffersFromEffective { .. } => vec![remedy(
            "edit the file that decides the setting (named above), or merge its CRI registry section into config.toml; ctrdiag's fix does not edit config.toml while an import sets registry settings",
            None,
        )],
        ConfigFinding::MultiRootIgnored { .. } => vec![remedy(
            "a fix sets a single config_path root in the same change",
            Some("ctrdiag fix REGISTRY --ca /path/to/ca.crt --dry-run".into()),
        )],
        ConfigFinding::HostsTomlInvalid { .. } => vec![remedy(
            "correct the named line, or let ctrdiag write a usable hosts.toml for the registry",
            Some("ctrdiag fix REGISTRY --ca /path/to/ca.crt --dry-run".into()),
        )],
        ConfigFinding::HostsTomlShadowed { expected: true, .. } => Vec::new(),
        ConfigFinding::HostsTomlShadowed {
            host,
            expected: false,
            ..
        } => vec![remedy(
            "or let ctrdiag write the host's hosts.toml into the directory containerd reads",
            Some(format!("ctrdiag fix {host} --ca /path/to/ca.crt --dry-run")),
        )],
        ConfigFinding::DeprecatedLegacyRegistry { .. } => vec![remedy(
            "move the registry settings to hosts.toml; a CA fix does it for one registry",
            Some("ctrdiag fix REGISTRY --ca /path/to/ca.crt --dry-run".into()),
        )],
        ConfigFinding::ConfigVersion1 | ConfigFinding::ConfigVersionUnreadable { .. } => {
            vec![remedy(
                "rewrite config.toml in this containerd's layout (`containerd config migrate` on 2.x prints it), review it, then replace the file",
                None,
            )]
        }
    };
    let evidence = match f {
        ConfigFinding::HostsTomlShadowed { path, by, .. } => {
            vec![ev("ignored", path.clone()), ev("read instead", by.clone())]
        }
        _ => Vec::new(),
    };
    Finding {
        cause,
        severity,
        summary: f.to_string(),
        evidence,
        remedies,
    }
}

fn trust_remedies(facts: &Facts<'_>, target: &str) -> Vec<Remedy> {
    let mut r = vec![remedy(
        "trust the registry's CA through hosts.toml (no restart on containerd with config_path)",
        Some(format!("ctrdiag fix {target} --ca /path/to/ca.crt")),
    )];
    if let Some(probe) = facts.probe
        && let Some(top) = probe.chain.last()
    {
        r.push(remedy(
            format!(
                "or trust the certificate the registry presents, after confirming its SHA-256 fingerprint {} with the registry's operator",
                top.sha256_fingerprint
            ),
            Some(format!(
                "ctrdiag fix {target} --ca-from-server --sha256 {}",
                top.sha256_fingerprint
            )),
        ));
    }
    r.push(remedy(
        "test environments only: skip verification for a limited time",
        Some(format!(
            "ctrdiag fix {target} --insecure-skip-verify --ttl 2h"
        )),
    ));
    r
}

fn pull_timeout_finding(limit_secs: u64, target: &str) -> Finding {
    Finding {
        cause: CauseCode::Timeout,
        severity: Severity::Error,
        summary: format!(
            "the test pull of {target} did not finish within {limit_secs}s (the daemon's pull_timeout_secs)"
        ),
        evidence: vec![ev("pull_timeout_secs", limit_secs.to_string())],
        remedies: vec![
            remedy(
                "check that the registry answers (a server that accepts connections and never replies looks like this), and firewalls or proxies in between",
                None,
            ),
            remedy(
                "for a very large image on a slow link, raise pull_timeout_secs in ctrdiagd's settings",
                None,
            ),
        ],
    }
}

fn pull_finding(c: &Classification, facts: &Facts<'_>, target: &str) -> Finding {
    let f = &c.facts;
    let host = f.host.clone().unwrap_or_else(|| facts.host.clone());
    let mut evidence = vec![ev("containerd said", c.raw.clone())];
    if let Some(url) = &f.url {
        evidence.push(ev("request", url.clone()));
    }
    let (severity, summary, remedies) = match c.cause {
        CauseCode::TlsUnknownAuthority => (
            Severity::Error,
            format!("{host}'s certificate is signed by a CA containerd does not trust"),
            trust_remedies(facts, target),
        ),
        CauseCode::TlsExpired => {
            let when = f
                .certificate_bound
                .clone()
                .unwrap_or_else(|| "in the past".into());
            evidence.push(ev("certificate expired", when.clone()));
            (
                Severity::Error,
                format!("{host}'s certificate expired on {when}"),
                vec![remedy(
                    "renew the certificate on the registry; nothing on the node can make an expired certificate valid",
                    None,
                )],
            )
        }
        CauseCode::TlsNotYetValid => {
            let from = f.certificate_bound.clone().unwrap_or_default();
            let now = f.current_time.clone().unwrap_or_default();
            evidence.push(ev("certificate valid from", from.clone()));
            evidence.push(ev("node clock", now.clone()));
            (
                Severity::Error,
                format!(
                    "{host}'s certificate is not valid before {from} (the node's clock says {now})"
                ),
                vec![remedy(
                    "check the node's clock (NTP), or the certificate's start date on the registry",
                    None,
                )],
            )
        }
        CauseCode::TlsHostnameMismatch => {
            let names = f.certificate_names.join(", ");
            let wanted = f.wanted_name.clone().unwrap_or_else(|| host.clone());
            if !names.is_empty() {
                evidence.push(ev("certificate names", names.clone()));
            }
            (
                Severity::Error,
                format!(
                    "{host}'s certificate is not valid for {wanted}{}",
                    if names.is_empty() {
                        String::new()
                    } else {
                        format!(" (it names {names})")
                    }
                ),
                vec![
                    remedy(
                        format!(
                            "reissue the registry's certificate with {wanted} in its subjectAltName"
                        ),
                        None,
                    ),
                    remedy("or pull through a name the certificate carries", None),
                ],
            )
        }
        CauseCode::TlsLegacyCommonName => (
            Severity::Error,
            format!(
                "{host}'s certificate names the host only in its Common Name, which Go ignores"
            ),
            vec![remedy(
                "reissue the certificate with a subjectAltName (SAN) for the host",
                None,
            )],
        ),
        CauseCode::HttpResponseToHttps => (
            Severity::Error,
            format!(
                "{host} speaks plain HTTP, and containerd talks HTTPS to it (skip-verify would not help)"
            ),
            vec![remedy(
                "tell containerd to use http:// for this registry",
                Some(format!("ctrdiag fix {target} --plain-http")),
            )],
        ),
        CauseCode::PlainHttpToHttpsPort => (
            Severity::Error,
            format!("containerd talked plain HTTP to {host}, which speaks TLS"),
            vec![remedy(
                "use a registry name that is not localhost or a loopback IP (containerd uses HTTP for those), or set server = \"https://...\" in its hosts.toml",
                None,
            )],
        ),
        CauseCode::TlsClientCertRequired => (
            Severity::Error,
            format!("{host} requires a client certificate"),
            vec![remedy(
                "configure the client certificate and key in the registry's hosts.toml, in its [host.\"https://...\"] table: client = [[\"/path/client.cert\", \"/path/client.key\"]] (a pair in an array of pairs; a flat list is read as certificates with no key)",
                None,
            )],
        ),
        CauseCode::AuthRequired => (
            Severity::Error,
            format!("{host} requires credentials for this image"),
            vec![remedy(
                "give the pod an imagePullSecret for this registry (CRI pulls do not read ~/.docker/config.json)",
                None,
            )],
        ),
        CauseCode::AccessDenied => (
            Severity::Error,
            format!("{host} refused access to the image"),
            vec![remedy(
                "check the repository name and that the pull secret's account may read it",
                None,
            )],
        ),
        CauseCode::NotFound => (
            Severity::Error,
            format!("the image does not exist on {host}"),
            vec![remedy("check the repository and tag (or digest)", None)],
        ),
        CauseCode::DnsFailure => (
            Severity::Error,
            format!("{host} does not resolve"),
            vec![remedy(
                "check the name, the node's DNS (/etc/resolv.conf) and /etc/hosts",
                None,
            )],
        ),
        CauseCode::ConnectionRefused => (
            Severity::Error,
            format!("nothing listens on {host}"),
            vec![remedy(
                "check that the registry runs and the port is right",
                None,
            )],
        ),
        CauseCode::Timeout => (
            Severity::Error,
            format!("{host} did not answer in time"),
            vec![remedy(
                "check firewalls and proxies between the node and the registry",
                None,
            )],
        ),
        CauseCode::CriUnavailable => (
            Severity::Error,
            "containerd's CRI plugin is not loaded: the kubelet cannot pull anything".to_string(),
            vec![remedy(
                "look for `failed to load plugin io.containerd.grpc.v1.cri` in `journalctl -u containerd`; remove conflicting legacy registry tables",
                Some("ctrdiag fix REGISTRY --remove-overrides --all-hosts".into()),
            )],
        ),
        cause => (
            Severity::Error,
            format!("the pull of {target} failed ({cause})"),
            vec![remedy(
                "read containerd's message above; `journalctl -u containerd` has more",
                None,
            )],
        ),
    };
    Finding {
        cause: c.cause,
        severity,
        summary,
        evidence,
        remedies,
    }
}

/// Facts about the TLS handshake, meaningless for a registry containerd talks HTTP to.
fn is_tls_fact(fact: &Fact) -> bool {
    matches!(
        fact,
        Fact::TlsHandshake { .. }
            | Fact::TlsClientCertRequired { .. }
            | Fact::TlsClientCertRejected { .. }
            | Fact::PlainHttpToHttpsPort { .. }
    )
}

/// Plain HTTP configured and working: healthy, with a note.
fn plain_http_note(facts: &Facts<'_>) -> Finding {
    let mut evidence = Vec::new();
    if let Some(source) = &facts.trust.source {
        evidence.push(ev("http:// set in", source.clone()));
    }
    if let Some(change) = &facts.insecure_change {
        evidence.push(ev("made by", change.describe()));
    }
    Finding {
        cause: CauseCode::PlainHttpInUse,
        severity: Severity::Info,
        summary: format!(
            "pulls from {} use plain HTTP, as containerd is configured to: nothing is encrypted or verified",
            facts.host
        ),
        evidence,
        remedies: vec![remedy(
            "serve the registry over TLS and trust its CA when you can",
            Some(format!("ctrdiag fix {} --ca /path/to/ca.crt", facts.host)),
        )],
    }
}

/// Verification is off and pulls work: what the certificate's real problem is, what
/// fixes it, and which change keeps verification off until when.
fn skip_verify_warning(facts: &Facts<'_>, verdict: &Verdict, target: &str) -> Finding {
    let host = &facts.host;
    let mut evidence = Vec::new();
    if let Some(source) = &facts.trust.source {
        evidence.push(ev("skip_verify set in", source.clone()));
    }
    if let Some(change) = &facts.insecure_change {
        evidence.push(ev("made by", change.describe()));
    }
    evidence.push(ev("the certificate, checked anyway", verdict.to_string()));
    let mut remedies = match verdict_cause(verdict) {
        Some(CauseCode::TlsExpired) => vec![remedy(
            "renew the registry's certificate; no change on the node makes an expired certificate valid",
            None,
        )],
        Some(CauseCode::TlsNotYetValid) => vec![remedy(
            "check the node's clock (NTP), or the certificate's start date on the registry",
            None,
        )],
        Some(CauseCode::TlsHostnameMismatch) | Some(CauseCode::TlsLegacyCommonName) => {
            vec![remedy(
                format!("reissue the registry's certificate with {host} in its subjectAltName"),
                None,
            )]
        }
        Some(CauseCode::TlsUnknownAuthority) => vec![remedy(
            "trust the registry's CA instead: a CA fix turns verification back on",
            Some(format!("ctrdiag fix {target} --ca /path/to/ca.crt")),
        )],
        Some(_) => Vec::new(),
        None => vec![remedy(
            "the certificate is valid: turn verification back on",
            facts
                .insecure_change
                .as_ref()
                .map(|c| format!("ctrdiag rollback {}", c.id)),
        )],
    };
    if let Some(change) = &facts.insecure_change
        && verdict_cause(verdict).is_some()
    {
        remedies.push(remedy(
            format!("then end the insecure setting ({})", change.describe()),
            Some(format!("ctrdiag rollback {}", change.id)),
        ));
    }
    let (cause, summary) = match verdict_cause(verdict) {
        Some(cause) => (
            cause,
            format!(
                "pulls from {host} work only because certificate verification is skipped: the certificate is {verdict}"
            ),
        ),
        None => (
            CauseCode::VerificationSkipped,
            format!(
                "certificate verification for {host} is off, although its certificate is valid"
            ),
        ),
    };
    Finding {
        cause,
        severity: Severity::Warning,
        summary,
        evidence,
        remedies,
    }
}

fn verdict_cause(v: &Verdict) -> Option<CauseCode> {
    match v {
        Verdict::Trusted => None,
        Verdict::UnknownIssuer | Verdict::MissingIntermediate { .. } => {
            Some(CauseCode::TlsUnknownAuthority)
        }
        Verdict::Expired { .. } => Some(CauseCode::TlsExpired),
        Verdict::NotYetValid { .. } => Some(CauseCode::TlsNotYetValid),
        Verdict::NotValidForName { .. } => Some(CauseCode::TlsHostnameMismatch),
        Verdict::CnOnly { .. } => Some(CauseCode::TlsLegacyCommonName),
        Verdict::Other(_) => Some(CauseCode::TlsHandshake),
    }
}

fn chain_evidence(probe: &ProbeReport) -> Vec<Evidence> {
    probe
        .chain
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let value = match &c.info {
                Some(info) => format!(
                    "subject {}; issuer {}; names [{}]; valid {} to {}; {}{}; SHA-256 {}",
                    info.subject,
                    info.issuer,
                    info.dns_names
                        .iter()
                        .chain(&info.ip_addresses)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                    info.not_before.rfc3339,
                    info.not_after.rfc3339,
                    info.key,
                    if info.self_signed {
                        "; self-signed"
                    } else {
                        ""
                    },
                    c.sha256_fingerprint
                ),
                None => format!(
                    "unparsable ({}); SHA-256 {}",
                    c.parse_error.clone().unwrap_or_default(),
                    c.sha256_fingerprint
                ),
            };
            ev(&format!("certificate {i}"), value)
        })
        .collect()
}

/// What the probe observed, and where it disagrees with containerd's pull (kept as
/// findings of their own: the disagreement is the news).
fn probe_findings(
    probe: &ProbeReport,
    facts: &Facts<'_>,
    target: &str,
    pull_cause: Option<CauseCode>,
) -> (Vec<Finding>, Vec<Finding>) {
    let host = &facts.host;
    let mut out = Vec::new();
    // containerd speaks plain HTTP to this registry: what TLS did is beside the point.
    let plain = facts.trust.plain_http;
    for fact in &probe.facts {
        if plain && is_tls_fact(fact) {
            continue;
        }
        let (cause, severity, summary) = match fact {
            Fact::DnsFailure { error } => (
                CauseCode::DnsFailure,
                Severity::Error,
                format!("{host} does not resolve: {error}"),
            ),
            Fact::ConnectionRefused { address } => (
                CauseCode::ConnectionRefused,
                Severity::Error,
                format!("nothing listens on {address}"),
            ),
            Fact::PlainHttpToHttpsPort { .. } => (
                CauseCode::HttpResponseToHttps,
                Severity::Error,
                format!("{host} answers plain HTTP on its port, not TLS"),
            ),
            Fact::AuthRequired { realm, .. } => (
                CauseCode::AuthRequired,
                // /v2/ asking for auth is normal for token registries; only the pull says
                // whether this image needs credentials.
                Severity::Info,
                format!(
                    "{host} asks for authentication{}",
                    realm
                        .as_deref()
                        .map(|r| format!(" (realm {r})"))
                        .unwrap_or_default()
                ),
            ),
            Fact::TlsClientCertRequired { .. } => (
                CauseCode::TlsClientCertRequired,
                Severity::Error,
                format!("{host} requires a client certificate"),
            ),
            Fact::Timeout { step, .. } => (
                CauseCode::Timeout,
                Severity::Error,
                format!("{host} did not answer in time ({step:?})"),
            ),
            _ => continue,
        };
        let mut remedies = Vec::new();
        if cause == CauseCode::HttpResponseToHttps {
            remedies.push(remedy(
                "tell containerd to use http:// for this registry",
                Some(format!("ctrdiag fix {target} --plain-http")),
            ));
        }
        out.push(Finding {
            cause,
            severity,
            summary,
            evidence: vec![ev("probe", fact.code())],
            remedies,
        });
    }
    let mut disagreements = Vec::new();
    if plain {
        if pull_cause.is_none() {
            out.push(plain_http_note(facts));
        }
        return (out, disagreements);
    }
    let Some(trust) = &probe.trust else {
        return (out, disagreements);
    };
    // containerd's view: system roots plus the hosts.toml CA, if one is configured.
    let effective = trust.with_ca_files.as_ref().unwrap_or(&trust.system);
    let mut evidence = chain_evidence(probe);
    evidence.push(ev("system roots", trust.system.to_string()));
    if let Some(with) = &trust.with_ca_files {
        let files: Vec<String> = trust
            .ca_files
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        evidence.push(ev(
            "with containerd's CA files",
            format!("{with} ({})", files.join(", ")),
        ));
    }
    if let Some(cause) = verdict_cause(effective) {
        let remedies = if cause == CauseCode::TlsUnknownAuthority {
            trust_remedies(facts, target)
        } else {
            Vec::new()
        };
        out.push(Finding {
            cause,
            severity: Severity::Error,
            summary: format!("{host}'s certificate chain is not trusted the way containerd would check it: {effective}"),
            evidence: evidence.clone(),
            remedies,
        });
    } else if pull_cause.is_some_and(|c| {
        verdict_cause(&Verdict::UnknownIssuer) == Some(c) || c == CauseCode::TlsHostnameMismatch
    }) {
        // The probe trusts the chain but containerd's pull does not.
        let (summary, remedies) = if trust.with_ca_files.is_none()
            && trust.system == Verdict::Trusted
        {
            (
                format!(
                    "the system trust store accepts {host}'s certificate, but containerd's pull does not: containerd reads the system store only when it starts"
                ),
                vec![remedy(
                    "restart containerd so it loads the updated system trust store",
                    Some("ctrdiag restart-containerd".into()),
                )],
            )
        } else {
            (
                format!(
                    "the CA configured for {host} accepts its certificate, but containerd's pull does not: containerd is not reading that configuration"
                ),
                vec![remedy(
                    "check config_path and the hosts directory name (`host:port`); `ctrdiag status` lists config findings",
                    Some(format!(
                        "ctrdiag fix {target} --ca /path/to/ca.crt --dry-run"
                    )),
                )],
            )
        };
        disagreements.push(Finding {
            cause: pull_cause.unwrap_or(CauseCode::Unknown),
            severity: Severity::Error,
            summary,
            evidence: evidence.clone(),
            remedies,
        });
    }
    // containerd pulls (or, verification off, would): what the probe saw is a warning.
    let pulls =
        facts.pull == Some(PullResult::Ok) || (facts.pull.is_none() && facts.trust.skip_verify);
    if pulls && pull_cause.is_none() {
        out.retain(|f| {
            !(f.severity == Severity::Error && verdict_cause(effective) == Some(f.cause))
        });
        if facts.trust.skip_verify {
            out.push(skip_verify_warning(facts, effective, target));
        } else if let Some(cause) = verdict_cause(effective) {
            // containerd trusts what the probe does not: a CA the probe could not load,
            // or one it reads from elsewhere.
            disagreements.push(Finding {
                cause,
                severity: Severity::Warning,
                summary: format!(
                    "containerd's pull from {host} works, but the probe does not trust its certificate ({effective}): containerd trusts something the probe was not told about"
                ),
                evidence: evidence.clone(),
                remedies: vec![remedy(
                    "check which CA files containerd uses for the host (`ctrdiag diagnose` lists them under What was tried)",
                    None,
                )],
            });
        }
    }
    (out, disagreements)
}
