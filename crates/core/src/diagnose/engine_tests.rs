//! The findings engine: what users read. One case per cause code, and the rules that
//! combine the pull, the probe and the configuration.

use super::engine::{ExpiryWarning, Facts, InsecureChange, PullResult, diagnose, healthy};
use super::wordings::WORDINGS;
use crate::cause::{CauseCode, Severity};
use crate::ctrconfig::{Finding as ConfigFinding, HostTrust};
use crate::loaded::{Deprecation, LoadedFinding};
use crate::probe::{CertInfo, Fact, PresentedCert, ProbeReport, Timestamp, TrustReport, Verdict};

const HOST: &str = "r.test:5000";

fn facts<'a>(config: &'a [ConfigFinding]) -> Facts<'a> {
    Facts {
        host: HOST.into(),
        image: Some(format!("{HOST}/app:1")),
        pull: None,
        probe: None,
        config,
        trust: HostTrust::default(),
        insecure_change: None,
        containerd_problem: None,
        loaded: &[],
        expiry_warning: None,
    }
}

/// The configuration finding of `cause`, for the causes that come from config.toml.
fn config_for(cause: CauseCode) -> Vec<ConfigFinding> {
    let finding = match cause {
        CauseCode::ConfigIgnored => ConfigFinding::ConfigIgnored { host: HOST.into() },
        CauseCode::ConfigConflict => ConfigFinding::ConfigConflict {
            entries: vec!["configs.\"r.test:5000\".tls".into()],
            config_path: "/etc/containerd/certs.d".into(),
        },
        CauseCode::HostsTomlInvalid => ConfigFinding::HostsTomlInvalid {
            path: "/etc/containerd/certs.d/r.test:5000/hosts.toml".into(),
            problems: vec!["line 1, column 1: no [host] table".into()],
        },
        CauseCode::ConfigDeprecated => ConfigFinding::DeprecatedLegacyRegistry {
            sections: vec!["mirrors"],
        },
        CauseCode::ConfigUnreadable => ConfigFinding::ConfigVersionUnreadable { file: 3 },
        _ => return Vec::new(),
    };
    vec![finding]
}

/// Facts that should yield a finding of `cause` (with `config` from [`config_for`],
/// and `valid` the probe of a registry whose certificate is fine).
fn facts_for<'a>(
    cause: CauseCode,
    config: &'a [ConfigFinding],
    valid: &'a ProbeReport,
) -> Facts<'a> {
    let mut f = facts(config);
    if !config.is_empty() {
        return f;
    }
    match cause {
        CauseCode::PlainHttpInUse | CauseCode::VerificationSkipped => {
            f.probe = Some(valid);
            f.pull = Some(PullResult::Ok);
            f.trust.plain_http = cause == CauseCode::PlainHttpInUse;
            f.trust.skip_verify = cause == CauseCode::VerificationSkipped;
        }
        CauseCode::CriUnavailable | CauseCode::ContainerdUnreachable => {
            f.containerd_problem = Some((cause, "containerd said no".into()));
        }
        CauseCode::Timeout => f.pull = Some(PullResult::TimedOut { limit_secs: 300 }),
        CauseCode::TlsExpiringSoon => {
            f.probe = Some(valid);
            f.pull = Some(PullResult::Ok);
            let not_after = valid.chain[0].info.as_ref().unwrap().not_after.unix;
            f.expiry_warning = Some(ExpiryWarning {
                now_unix: not_after - 3 * 86_400,
                window_secs: 14 * 86_400,
            });
        }
        _ => {
            let (text, _) = WORDINGS
                .iter()
                .find(|(_, c)| *c == cause)
                .unwrap_or_else(|| panic!("no wording for {cause}"));
            f.pull = Some(PullResult::Failed {
                message: (*text).to_string(),
            });
        }
    }
    f
}

/// The findings of the facts that should yield `cause` ([`facts_for`]).
fn findings_for(cause: CauseCode) -> Vec<super::Finding> {
    let config = config_for(cause);
    let valid = probe_with(Verdict::Trusted, None);
    diagnose(&facts_for(cause, &config, &valid))
}

#[test]
fn every_cause_code_has_a_finding_that_says_what_to_do() {
    for cause in CauseCode::ALL {
        let found = findings_for(*cause);
        let f = found
            .iter()
            .find(|f| f.cause == *cause)
            .unwrap_or_else(|| panic!("no {cause} finding in {found:#?}"));
        assert!(!f.summary.trim().is_empty(), "{cause}: no summary");
        assert!(!f.remedies.is_empty(), "{cause}: no remedy: {f:#?}");
        let expected = match cause {
            CauseCode::ConfigDeprecated
            | CauseCode::VerificationSkipped
            | CauseCode::TlsExpiringSoon => Severity::Warning,
            CauseCode::PlainHttpInUse => Severity::Info,
            _ => Severity::Error,
        };
        assert_eq!(f.severity, expected, "{cause}");
        assert!(!healthy(&found) || expected != Severity::Error, "{cause}");
    }
}

#[test]
fn a_certificate_is_warned_of_inside_the_window_only() {
    let probe = probe_with(Verdict::Trusted, None);
    let not_after = 1_900_000_000;
    let at = |now_unix| {
        let mut f = facts(&[]);
        f.probe = Some(&probe);
        f.pull = Some(PullResult::Ok);
        f.expiry_warning = Some(ExpiryWarning {
            now_unix,
            window_secs: 14 * 86_400,
        });
        diagnose(&f)
    };
    let soon = at(not_after - 3 * 86_400);
    assert_eq!(soon.len(), 1, "{soon:#?}");
    assert!(soon[0].summary.contains("expires in 3 day(s)"), "{soon:#?}");
    assert!(healthy(&soon), "a warning: pulls still work");
    assert!(at(not_after - 15 * 86_400).is_empty(), "outside the window");
    assert!(
        at(not_after + 1).is_empty(),
        "expired is tls_expired, not a warning"
    );
}

#[test]
fn nothing_wrong_is_healthy_and_says_nothing() {
    let mut f = facts(&[]);
    f.pull = Some(PullResult::Ok);
    let found = diagnose(&f);
    assert!(found.is_empty(), "{found:#?}");
    assert!(healthy(&found));
}

fn probe_with(system: Verdict, with_ca_files: Option<Verdict>) -> ProbeReport {
    let mut r = ProbeReport::new(HOST.into(), "r.test".into(), 5000);
    r.chain.push(PresentedCert {
        sha256_fingerprint: "AB:CD".into(),
        info: Some(CertInfo {
            subject: "CN=r.test".into(),
            issuer: "CN=lab CA".into(),
            common_name: Some("r.test".into()),
            dns_names: vec!["r.test".into()],
            ip_addresses: Vec::new(),
            not_before: Timestamp::from_unix(1_700_000_000),
            not_after: Timestamp::from_unix(1_900_000_000),
            self_signed: false,
            is_ca: false,
            key: "ECDSA P-256".into(),
            serial: "01".into(),
            ca_issuers: Vec::new(),
        }),
        parse_error: None,
        der: Vec::new(),
    });
    r.trust = Some(TrustReport {
        system_roots: 140,
        system_root_errors: Vec::new(),
        system,
        ca_files: with_ca_files.iter().map(|_| "/ca.crt".into()).collect(),
        with_ca_files,
    });
    r
}

#[test]
fn the_probe_adds_its_chain_to_the_pulls_finding_instead_of_a_second_one() {
    let probe = probe_with(Verdict::UnknownIssuer, None);
    let mut f = facts(&[]);
    f.probe = Some(&probe);
    f.pull = Some(PullResult::Failed {
        message: "x509: certificate signed by unknown authority".into(),
    });
    let found = diagnose(&f);
    let unknown: Vec<_> = found
        .iter()
        .filter(|f| f.cause == CauseCode::TlsUnknownAuthority)
        .collect();
    assert_eq!(unknown.len(), 1, "{found:#?}");
    assert!(
        unknown[0]
            .evidence
            .iter()
            .any(|e| e.label == "certificate 0")
    );
    assert!(unknown[0].remedies.iter().any(|r| {
        r.command
            .as_deref()
            .is_some_and(|c| c.contains("--ca-from-server --sha256 AB:CD"))
    }));
}

#[test]
fn verification_off_names_the_real_problem_the_change_and_its_end() {
    let probe = probe_with(
        Verdict::Expired {
            not_after: crate::probe::Timestamp::from_unix(1_700_000_000),
        },
        None,
    );
    let mut f = facts(&[]);
    f.probe = Some(&probe);
    f.pull = Some(PullResult::Ok);
    f.trust = HostTrust {
        skip_verify: true,
        source: Some("/etc/containerd/certs.d/r.test:5000/hosts.toml".into()),
        hosts_toml: Some(
            "[host.\"https://r.test:5000\".header]\n  Authorization = \"Basic c2VjcmV0\"\n".into(),
        ),
        ..HostTrust::default()
    };
    f.insecure_change = Some(InsecureChange {
        id: "20261202T063200-1".into(),
        expires_unix: Some(1_800_000_000),
    });
    let found = diagnose(&f);
    assert!(healthy(&found), "{found:#?}");
    let w = found
        .iter()
        .find(|f| f.severity == Severity::Warning)
        .expect("a warning");
    assert_eq!(
        w.cause,
        CauseCode::TlsExpired,
        "the real problem, not the CA"
    );
    assert!(w.summary.contains("expired"), "{}", w.summary);
    let text = format!("{w:?}");
    assert!(text.contains("renew"), "{text}");
    assert!(
        !text.contains("--ca "),
        "a CA cannot help an expired certificate: {text}"
    );
    assert!(
        text.contains("20261202T063200-1") && text.contains("2027-01-15T08:00:00Z"),
        "{text}"
    );
    assert!(
        text.contains("ctrdiag rollback 20261202T063200-1"),
        "{text}"
    );
    assert!(
        !text.contains("Authorization"),
        "the whole hosts.toml is not evidence: {text}"
    );
}

#[test]
fn a_ca_the_system_store_trusts_but_containerd_does_not_is_its_own_finding() {
    let probe = probe_with(Verdict::Trusted, None);
    let mut f = facts(&[]);
    f.probe = Some(&probe);
    f.pull = Some(PullResult::Failed {
        message: "x509: certificate signed by unknown authority".into(),
    });
    let found = diagnose(&f);
    assert!(
        found.iter().any(|f| f
            .summary
            .contains("reads the system store only when it starts")),
        "{found:#?}"
    );
    assert!(found.iter().any(|f| {
        f.remedies
            .iter()
            .any(|r| r.command.as_deref() == Some("ctrdiag restart-containerd"))
    }));
}

#[test]
fn probe_facts_become_findings_and_errors_come_first() {
    let mut probe = ProbeReport::new(HOST.into(), "r.test".into(), 5000);
    probe.facts.push(Fact::AuthRequired {
        scheme: "Bearer".into(),
        realm: Some("https://auth".into()),
        service: None,
    });
    probe.facts.push(Fact::DnsFailure {
        error: "no such host".into(),
    });
    let config = [ConfigFinding::DeprecatedLegacyRegistry {
        sections: vec!["configs"],
    }];
    let mut f = facts(&config);
    f.probe = Some(&probe);
    let found = diagnose(&f);
    let severities: Vec<Severity> = found.iter().map(|f| f.severity).collect();
    let mut sorted = severities.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(severities, sorted, "most severe first");
    assert_eq!(found[0].cause, CauseCode::DnsFailure);
    assert!(
        found
            .iter()
            .any(|f| f.cause == CauseCode::AuthRequired && f.severity == Severity::Info)
    );
}

// ---- the table: registry faults × what containerd is configured to do

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    UnknownCa,
    Expired,
    NotYetValid,
    WrongHost,
    CnOnly,
    SelfSigned,
    PlainHttpRegistry,
    ClientCertRequired,
    Unreachable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing configured for the host.
    Nothing,
    /// hosts.toml names the registry's CA.
    RightCa,
    /// Verification off (hosts.toml, or the legacy table on 1.x).
    SkipVerify,
    /// `http://` for the registry.
    PlainHttp,
    /// The legacy `configs.<host>.tls.ca_file` (1.x without config_path).
    LegacyCa,
    /// The legacy `configs.<host>.tls.insecure_skip_verify` (1.x without config_path).
    LegacySkipVerify,
    /// A multi-root config_path 2.1 ignores: in effect, nothing.
    MultiRootIgnored,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict3 {
    Healthy,
    Warning(CauseCode),
    Error(CauseCode),
}

const FAULTS: [Fault; 9] = [
    Fault::UnknownCa,
    Fault::Expired,
    Fault::NotYetValid,
    Fault::WrongHost,
    Fault::CnOnly,
    Fault::SelfSigned,
    Fault::PlainHttpRegistry,
    Fault::ClientCertRequired,
    Fault::Unreachable,
];

const STATES: [State; 7] = [
    State::Nothing,
    State::RightCa,
    State::SkipVerify,
    State::PlainHttp,
    State::MultiRootIgnored,
    State::LegacyCa,
    State::LegacySkipVerify,
];

/// The state as containerd acts on it: a legacy table acts like its hosts.toml twin.
fn acting_as(state: State) -> State {
    match state {
        State::LegacyCa => State::RightCa,
        State::LegacySkipVerify => State::SkipVerify,
        other => other,
    }
}

/// The cause a fault shows as when nothing hides it.
fn fault_cause(fault: Fault) -> CauseCode {
    match fault {
        Fault::UnknownCa | Fault::SelfSigned => CauseCode::TlsUnknownAuthority,
        Fault::Expired => CauseCode::TlsExpired,
        Fault::NotYetValid => CauseCode::TlsNotYetValid,
        Fault::WrongHost => CauseCode::TlsHostnameMismatch,
        Fault::CnOnly => CauseCode::TlsLegacyCommonName,
        Fault::PlainHttpRegistry => CauseCode::HttpResponseToHttps,
        Fault::ClientCertRequired => CauseCode::TlsClientCertRequired,
        Fault::Unreachable => CauseCode::ConnectionRefused,
    }
}

fn is_certificate_fault(fault: Fault) -> bool {
    !matches!(
        fault,
        Fault::PlainHttpRegistry | Fault::ClientCertRequired | Fault::Unreachable
    )
}

/// The probe's verdict on a certificate fault, against `trust`.
fn verdict_of(fault: Fault, with_right_ca: bool) -> Verdict {
    let t = crate::probe::Timestamp::from_unix(1_700_000_000);
    match fault {
        Fault::UnknownCa | Fault::SelfSigned if with_right_ca => Verdict::Trusted,
        Fault::UnknownCa | Fault::SelfSigned => Verdict::UnknownIssuer,
        Fault::Expired => Verdict::Expired { not_after: t },
        Fault::NotYetValid => Verdict::NotYetValid { not_before: t },
        Fault::WrongHost => Verdict::NotValidForName {
            presented: vec!["other.test".into()],
        },
        Fault::CnOnly => Verdict::CnOnly {
            common_name: "r.test".into(),
        },
        Fault::PlainHttpRegistry | Fault::ClientCertRequired | Fault::Unreachable => {
            Verdict::Trusted
        }
    }
}

/// What the probe sees of `fault` with containerd's `state` for the CA files.
fn probe_of(fault: Fault, state: State) -> ProbeReport {
    let state = acting_as(state);
    let mut r = ProbeReport::new(HOST.into(), "r.test".into(), 5000);
    match fault {
        Fault::PlainHttpRegistry => r.facts.push(Fact::PlainHttpToHttpsPort {
            first_bytes: "HTTP/1.1 400".into(),
        }),
        Fault::ClientCertRequired => r.facts.push(Fact::TlsClientCertRequired {
            alert: "certificate required".into(),
        }),
        Fault::Unreachable => r.facts.push(Fact::ConnectionRefused {
            address: "127.0.0.1:5000".parse().unwrap(),
        }),
        _ => {
            let right_ca = state == State::RightCa;
            r.trust = Some(TrustReport {
                system_roots: 140,
                system_root_errors: Vec::new(),
                system: verdict_of(fault, false),
                ca_files: if right_ca {
                    vec!["/ca.crt".into()]
                } else {
                    Vec::new()
                },
                with_ca_files: right_ca.then(|| verdict_of(fault, true)),
            });
        }
    }
    r
}

/// What containerd's CRI pull does with `fault` in `state` (as measured in the lab).
fn pull_of(fault: Fault, state: State) -> PullResult {
    let cause = match (acting_as(state), fault) {
        (State::PlainHttp, Fault::PlainHttpRegistry) => return PullResult::Ok,
        (State::PlainHttp, Fault::Unreachable) => CauseCode::ConnectionRefused,
        (State::PlainHttp, _) => CauseCode::PlainHttpToHttpsPort,
        (State::SkipVerify, f) if is_certificate_fault(f) => return PullResult::Ok,
        (State::RightCa, Fault::UnknownCa | Fault::SelfSigned) => return PullResult::Ok,
        (_, f) => fault_cause(f),
    };
    let (text, _) = WORDINGS
        .iter()
        .find(|(_, c)| *c == cause)
        .unwrap_or_else(|| panic!("no wording for {cause}"));
    PullResult::Failed {
        message: (*text).to_string(),
    }
}

fn trust_of(state: State) -> HostTrust {
    let source = Some(match state {
        State::LegacyCa | State::LegacySkipVerify => "/etc/containerd/config.toml".to_string(),
        _ => "/etc/containerd/certs.d/r.test:5000/hosts.toml".to_string(),
    });
    match acting_as(state) {
        State::Nothing | State::MultiRootIgnored => HostTrust::default(),
        State::RightCa => HostTrust {
            ca_files: vec!["/ca.crt".into()],
            source,
            ..HostTrust::default()
        },
        State::SkipVerify => HostTrust {
            skip_verify: true,
            source,
            ..HostTrust::default()
        },
        State::PlainHttp => HostTrust {
            plain_http: true,
            source,
            ..HostTrust::default()
        },
        State::LegacyCa | State::LegacySkipVerify => unreachable!("acting_as maps them"),
    }
}

/// What diagnose must say for `fault` in `state`.
fn expected(fault: Fault, state: State) -> Verdict3 {
    match (acting_as(state), fault) {
        (State::RightCa, Fault::UnknownCa | Fault::SelfSigned) => Verdict3::Healthy,
        (State::SkipVerify, f) if is_certificate_fault(f) => Verdict3::Warning(fault_cause(f)),
        (State::PlainHttp, Fault::PlainHttpRegistry) => Verdict3::Healthy,
        (State::PlainHttp, Fault::Unreachable) => Verdict3::Error(CauseCode::ConnectionRefused),
        (State::PlainHttp, _) => Verdict3::Error(CauseCode::PlainHttpToHttpsPort),
        (_, f) => Verdict3::Error(fault_cause(f)),
    }
}

#[test]
fn every_registry_fault_in_every_node_state_gets_the_right_verdict() {
    let multi_root = [ConfigFinding::MultiRootIgnored {
        config_path: "/a:/b".into(),
    }];
    let mut wrong = Vec::new();
    for fault in FAULTS {
        for state in STATES {
            let probe = probe_of(fault, state);
            let config: &[ConfigFinding] = if state == State::MultiRootIgnored {
                &multi_root
            } else {
                &[]
            };
            let mut f = facts(config);
            f.probe = Some(&probe);
            f.pull = Some(pull_of(fault, state));
            f.trust = trust_of(state);
            let found = diagnose(&f);
            let got = if !healthy(&found) {
                let cause = found
                    .iter()
                    .find(|x| x.severity == Severity::Error && x.cause != CauseCode::ConfigIgnored)
                    .map(|x| x.cause)
                    .unwrap_or(CauseCode::ConfigIgnored);
                Verdict3::Error(cause)
            } else if let Some(w) = found.iter().find(|x| x.severity == Severity::Warning) {
                Verdict3::Warning(w.cause)
            } else {
                Verdict3::Healthy
            };
            let want = expected(fault, state);
            if got != want {
                wrong.push(format!(
                    "{fault:?} × {state:?}: want {want:?}, got {got:?}: {found:#?}"
                ));
            }
            if state == State::MultiRootIgnored {
                assert!(found.iter().any(|x| x.cause == CauseCode::ConfigIgnored));
            }
            if state == State::PlainHttp && fault == Fault::PlainHttpRegistry {
                assert!(
                    found
                        .iter()
                        .any(|x| x.cause == CauseCode::PlainHttpInUse
                            && x.severity == Severity::Info)
                );
            }
            for x in &found {
                assert!(
                    !(x.severity == Severity::Error && x.remedies.is_empty()),
                    "{fault:?} × {state:?}: an error without a remedy: {x:#?}"
                );
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} rows wrong:\n{}",
        wrong.len(),
        FAULTS.len() * STATES.len(),
        wrong.join("\n\n")
    );
}

#[test]
fn containerds_own_init_error_replaces_the_inference_from_unknown_service() {
    let loaded = [LoadedFinding::CriFailed {
        plugin: "io.containerd.grpc.v1.cri".into(),
        error: "invalid plugin config: `mirrors` cannot be set when `config_path` is provided"
            .into(),
    }];
    let mut f = facts(&[]);
    f.containerd_problem = Some((CauseCode::CriUnavailable, "unknown service".into()));
    f.loaded = &loaded;
    let found = diagnose(&f);
    assert_eq!(found.len(), 1, "one finding, not two: {found:#?}");
    let cri = &found[0];
    assert_eq!(cri.cause, CauseCode::CriUnavailable);
    assert!(
        cri.summary.contains("cannot be set when `config_path`"),
        "{cri:#?}"
    );
    assert!(
        cri.evidence
            .iter()
            .any(|e| e.label == "containerd" && e.value == "unknown service"),
        "the CRI call's own answer stays as evidence: {cri:#?}"
    );
    // Without a pull (a bare host) the init error is still a finding of its own.
    let mut bare = facts(&[]);
    bare.loaded = &loaded;
    let found = diagnose(&bare);
    assert_eq!(found[0].cause, CauseCode::CriUnavailable);
    assert!(!healthy(&found));
}

#[test]
fn a_registry_deprecation_is_evidence_for_the_legacy_table_finding_others_stand_alone() {
    let deprecation = |id: &str| {
        LoadedFinding::Deprecated(Deprecation {
            id: format!("io.containerd.deprecation/{id}"),
            message: format!("{id} is deprecated"),
        })
    };
    let loaded = [
        deprecation("cri-registry-mirrors"),
        deprecation("pull-schema-1-image"),
    ];
    let config = [ConfigFinding::DeprecatedLegacyRegistry {
        sections: vec!["mirrors"],
    }];
    let mut f = facts(&config);
    f.loaded = &loaded;
    let found = diagnose(&f);
    assert_eq!(found.len(), 2, "{found:#?}");
    let legacy = found
        .iter()
        .find(|x| x.summary.starts_with("registry mirrors"))
        .unwrap();
    assert!(
        legacy
            .evidence
            .iter()
            .any(|e| e.value.contains("cri-registry-mirrors is deprecated")),
        "{legacy:#?}"
    );
    let other = found
        .iter()
        .find(|x| x.summary.contains("pull-schema-1-image"))
        .unwrap();
    assert_eq!(
        (other.cause, other.severity),
        (CauseCode::ConfigDeprecated, Severity::Warning)
    );
    assert!(healthy(&found), "deprecations are warnings");
}

/// A ctrdiag command line's shape: its command and its `--options`, without values.
fn command_shape(command: &str) -> (String, Vec<String>) {
    let mut words = command.split_whitespace().skip(1);
    let name = words.next().unwrap_or_default().to_string();
    let options = words
        .filter(|w| w.starts_with("--"))
        .map(str::to_string)
        .collect();
    (name, options)
}

/// The engine's remedies for `found`'s findings of `cause` that run a command, each as
/// the index of the first remedy in `ctrdiag explain`'s list with the same command and
/// options: `explain` must offer each, in the engine's order.
fn explained_at(cause: CauseCode, found: &[super::Finding]) -> Vec<usize> {
    let explained = crate::explain::explain(cause).remedies;
    let shapes: Vec<_> = explained
        .iter()
        .map(|r| r.command.map(command_shape))
        .collect();
    found
        .iter()
        .filter(|f| f.cause == cause)
        .flat_map(|f| &f.remedies)
        .filter_map(|r| r.command.as_deref())
        .map(|command| {
            let (name, options) = command_shape(command);
            shapes
                .iter()
                .position(|s| {
                    s.as_ref().is_some_and(|(n, o)| {
                        *n == name && options.iter().all(|opt| o.contains(opt))
                    })
                })
                .unwrap_or_else(|| panic!("{cause}: `ctrdiag explain` lacks `{command}`"))
        })
        .collect()
}

#[test]
fn explain_offers_every_command_the_engine_proposes_in_its_order() {
    for cause in CauseCode::ALL {
        let at = explained_at(*cause, &findings_for(*cause));
        assert!(at.is_sorted(), "{cause}: explain's order differs: {at:?}");
    }
    // With the chain the probe saw, the engine also offers the certificate it sends.
    let probe = probe_with(Verdict::UnknownIssuer, None);
    let mut f = facts(&[]);
    f.probe = Some(&probe);
    f.pull = Some(PullResult::Failed {
        message: "x509: certificate signed by unknown authority".into(),
    });
    let at = explained_at(CauseCode::TlsUnknownAuthority, &diagnose(&f));
    assert_eq!(
        at.len(),
        3,
        "--ca, --ca-from-server, --insecure-skip-verify"
    );
    assert!(at.is_sorted(), "{at:?}");
}
