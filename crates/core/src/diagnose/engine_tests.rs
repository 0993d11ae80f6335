//! The findings engine: what users read. One case per cause code, and the rules that
//! combine the pull, the probe and the configuration.

use super::engine::{Facts, PullResult, diagnose, healthy};
use super::wordings::WORDINGS;
use crate::cause::{CauseCode, Severity};
use crate::ctrconfig::Finding as ConfigFinding;
use crate::probe::{Fact, PresentedCert, ProbeReport, TrustReport, Verdict};

const HOST: &str = "r.test:5000";

fn facts<'a>(config: &'a [ConfigFinding]) -> Facts<'a> {
    Facts {
        host: HOST.into(),
        image: Some(format!("{HOST}/app:1")),
        pull: None,
        probe: None,
        config,
        hosts_toml: None,
        containerd_problem: None,
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

/// Facts that should yield a finding of `cause` (with `config` from [`config_for`]).
fn facts_for(cause: CauseCode, config: &[ConfigFinding]) -> Facts<'_> {
    let mut f = facts(config);
    if !config.is_empty() {
        return f;
    }
    match cause {
        CauseCode::CriUnavailable | CauseCode::ContainerdUnreachable => {
            f.containerd_problem = Some((cause, "containerd said no".into()));
        }
        CauseCode::Timeout => f.pull = Some(PullResult::TimedOut { limit_secs: 300 }),
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

#[test]
fn every_cause_code_has_a_finding_that_says_what_to_do() {
    for cause in CauseCode::ALL {
        let config = config_for(*cause);
        let found = diagnose(&facts_for(*cause, &config));
        let f = found
            .iter()
            .find(|f| f.cause == *cause)
            .unwrap_or_else(|| panic!("no {cause} finding in {found:#?}"));
        assert!(!f.summary.trim().is_empty(), "{cause}: no summary");
        assert!(!f.remedies.is_empty(), "{cause}: no remedy: {f:#?}");
        let expected = match cause {
            CauseCode::ConfigDeprecated => Severity::Warning,
            _ => Severity::Error,
        };
        assert_eq!(f.severity, expected, "{cause}");
        assert!(!healthy(&found) || expected != Severity::Error, "{cause}");
    }
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
        info: None,
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
fn a_pull_that_works_only_because_verification_is_off_is_a_warning_with_redacted_evidence() {
    let probe = probe_with(Verdict::UnknownIssuer, None);
    let mut f = facts(&[]);
    f.probe = Some(&probe);
    f.pull = Some(PullResult::Ok);
    f.hosts_toml = Some(
        "[host.\"https://r.test:5000\"]\n  skip_verify = true\n  [host.\"https://r.test:5000\".header]\n    Authorization = \"Basic c2VjcmV0\"\n".into(),
    );
    let found = diagnose(&f);
    assert!(healthy(&found), "{found:#?}");
    let w = found
        .iter()
        .find(|f| f.severity == Severity::Warning)
        .expect("a warning");
    assert!(
        w.summary.contains("verification is skipped"),
        "{}",
        w.summary
    );
    let evidence = &w.evidence[0].value;
    assert!(evidence.contains("skip_verify"), "{evidence}");
    assert!(
        !evidence.contains("c2VjcmV0"),
        "a secret in the evidence: {evidence}"
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
