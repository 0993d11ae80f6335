//! Every flow of the controller with in-memory ports and a manual clock: no containerd,
//! no registry, no systemd, no sleeping. The files a flow reads and writes live in a
//! temporary directory. (The lab's end-to-end tests prove the adapters honest.)

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::changes::RollbackDone;
use super::fakes::{FakeContainerd, FakeProber, FakeUnits, pulled, unknown_authority};
use super::fix::{FixRequest, RequestedMode};
use super::{Controller, ControllerError, NodeConfig};
use crate::clock::ManualClock;
use crate::containerd::PullOutcome;
use crate::ctrconfig::Finding as ConfigFinding;
use crate::diagnose::CauseCode;
use crate::fix::FixError;
use crate::plan::{ApplyError, ApplyOutcome, ChangeMeta, ChangeState, Event, Listed, Plan, Step};
use crate::registry::probe::{PresentedCert, ProbeReport, TrustReport, Verdict};

const HOST: &str = "r.test:5000";
const IMAGE: &str = "r.test:5000/app:1";
const PEM: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const NOW: u64 = 1_800_000_000;
const HOUR: u64 = 3600;

struct Lab {
    _dir: tempfile::TempDir,
    config: PathBuf,
    certs: PathBuf,
    containerd: FakeContainerd,
    units: FakeUnits,
    prober: FakeProber,
    clock: ManualClock,
    controller: Controller<FakeContainerd, FakeUnits, FakeProber>,
}

/// A node running containerd `version` whose config.toml is `config` (`{certs}` is
/// replaced by the certs.d directory).
fn lab(version: &str, config: &str) -> Lab {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    let certs = root.join("certs.d");
    std::fs::create_dir_all(&certs).unwrap();
    let config_file = root.join("config.toml");
    std::fs::write(
        &config_file,
        config.replace("{certs}", &certs.display().to_string()),
    )
    .unwrap();
    let containerd = FakeContainerd::new(version);
    let units = FakeUnits::new(&containerd);
    let prober = FakeProber::new(untrusted_report());
    let clock = ManualClock::at(NOW);
    let controller = Controller::new(
        containerd.clone(),
        units.clone(),
        prober.clone(),
        Arc::new(clock.clone()),
        NodeConfig {
            containerd_config: config_file.clone(),
            certs_dir: certs.clone(),
            containerd_unit: "containerd.service".into(),
            containerd_bin: None,
            credential_files: vec![
                root.join("docker/config.json"),
                root.join("kubelet/config.json"),
            ],
            credential_provider_config: None,
            cert_expiry_warning: std::time::Duration::from_secs(14 * 86_400),
            node_manager_registries: Some(root.join("registries.yaml")),
            os_release: root.join("os-release"),
            manual_restart: crate::plan::ManualRestart {
                command: "systemctl restart containerd.service".into(),
                wait_secs: 600,
            },
        },
        root.join("state"),
    );
    Lab {
        _dir: dir,
        config: config_file,
        certs,
        containerd,
        units,
        prober,
        clock,
        controller,
    }
}

const WITH_CONFIG_PATH: &str =
    "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"{certs}\"\n";

/// A registry with a self-signed certificate (its own CA), the only one it presents.
fn untrusted_report() -> ProbeReport {
    let mut r = ProbeReport::new(HOST.into(), "r.test".into(), 5000);
    let der = b"a certificate".to_vec();
    let t = crate::registry::probe::Timestamp::from_unix(NOW as i64);
    r.chain.push(PresentedCert {
        sha256_fingerprint: crate::registry::probe::fingerprint(&der),
        info: Some(crate::registry::probe::CertInfo {
            subject: "CN=r.test".into(),
            issuer: "CN=r.test".into(),
            common_name: Some("r.test".into()),
            dns_names: vec!["r.test".into()],
            ip_addresses: Vec::new(),
            not_before: t.clone(),
            not_after: t,
            self_signed: true,
            is_ca: false,
            key: "ECDSA P-256".into(),
            serial: "01".into(),
            ca_issuers: Vec::new(),
        }),
        parse_error: None,
        der,
    });
    r.trust = Some(TrustReport {
        system_roots: 140,
        system_root_errors: Vec::new(),
        system: Verdict::UnknownIssuer,
        ca_files: Vec::new(),
        with_ca_files: None,
    });
    r
}

fn request(mode: RequestedMode) -> FixRequest {
    FixRequest {
        target: IMAGE.into(),
        mode,
        ttl_secs: 0,
        verify_image: None,
        legacy: false,
        dry_run: false,
        ca_file: None,
        manual_restart: false,
    }
}

impl Lab {
    fn hosts_toml(&self) -> PathBuf {
        self.certs.join(HOST).join("hosts.toml")
    }

    async fn fix(&self, req: FixRequest) -> Result<ApplyOutcome, ControllerError> {
        let prepared = self.controller.prepare_fix(req).await?;
        self.controller.apply_fix(prepared, &None).await
    }

    /// A CA fix for the registry, which must be applied.
    async fn ca_fix_applies(&self) {
        let outcome = self
            .fix(request(RequestedMode::Ca { pem: PEM.into() }))
            .await
            .unwrap();
        assert!(
            matches!(outcome, ApplyOutcome::Applied { .. }),
            "{outcome:?}"
        );
    }

    /// Applies an insecure skip-verify fix with `ttl` seconds; its change id.
    async fn insecure_for(&self, ttl: u64) -> crate::plan::ChangeId {
        let mut req = request(RequestedMode::InsecureSkipVerify);
        req.ttl_secs = ttl;
        match self.fix(req).await.unwrap() {
            ApplyOutcome::Applied { id, .. } => id,
            other => panic!("{other:?}"),
        }
    }

    fn state_of(&self, id: &crate::plan::ChangeId) -> ChangeState {
        self.controller
            .changes()
            .unwrap()
            .into_iter()
            .find_map(|c| match c.entry {
                Listed::Change(r) if &r.id == id => Some(r.state),
                _ => None,
            })
            .expect("listed")
    }
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

// ---- status

#[tokio::test]
async fn status_tells_what_containerd_and_its_config_say() {
    let lab = lab(
        "2.1.9",
        "version = 3\n[plugins.\"io.containerd.cri.v1.images\".registry.configs.\"r.test:5000\".tls]\n  insecure_skip_verify = true\n",
    );
    let s = lab.controller.status().await;
    assert!(s.containerd.reachable && s.containerd.cri_ready);
    assert_eq!(s.containerd.version, "2.1.9");
    assert!(
        s.config
            .findings
            .iter()
            .any(|f| matches!(f, ConfigFinding::ConfigIgnored { .. })),
        "{:?}",
        s.config.findings
    );
    assert!(s.unit.is_ok());
    assert!(s.healthy());
}

#[tokio::test]
async fn status_with_containerd_down_makes_no_version_findings() {
    let lab = lab("2.1.9", "version = 3\n");
    lab.containerd.set_down();
    let s = lab.controller.status().await;
    assert!(!s.containerd.reachable);
    assert!(
        s.containerd
            .error
            .as_deref()
            .unwrap()
            .contains("not answering")
    );
    assert!(s.config.read.is_ok(), "the file is still read");
    assert!(s.config.findings.is_empty());
    assert!(!s.healthy());
}

// ---- test pulls

#[tokio::test]
async fn a_failed_test_pull_carries_its_cause() {
    let lab = lab("2.1.9", "version = 3\n");
    lab.containerd.set_pull(unknown_authority(IMAGE));
    let r = lab.controller.test_pull(IMAGE, false).await.unwrap();
    assert_eq!(r.cause, Some(CauseCode::TlsUnknownAuthority));
    assert!(r.message().contains("unknown authority"));
    lab.containerd.set_pull(PullOutcome::TimedOut {
        limit: Duration::from_secs(7),
    });
    let r = lab.controller.test_pull(IMAGE, false).await.unwrap();
    assert_eq!(r.cause, Some(CauseCode::Timeout));
    assert!(r.message().contains("within 7s"), "{}", r.message());
}

// ---- diagnose

#[tokio::test]
async fn diagnose_probes_with_containerds_ca_and_names_the_untrusted_ca() {
    let lab = lab("1.7.24", WITH_CONFIG_PATH);
    std::fs::create_dir_all(lab.certs.join(HOST)).unwrap();
    std::fs::write(
        lab.hosts_toml(),
        "server = \"https://r.test:5000\"\n[host.\"https://r.test:5000\"]\n  ca = \"ca.crt\"\n",
    )
    .unwrap();
    lab.containerd.set_pull(unknown_authority(IMAGE));
    let d = lab.controller.diagnose(IMAGE, false).await.unwrap();
    assert!(!d.healthy);
    assert!(
        d.findings
            .iter()
            .any(|f| f.cause == CauseCode::TlsUnknownAuthority)
    );
    let asked = lab.prober.asked_with.lock().unwrap().clone();
    let ca = lab.certs.join(HOST).join("ca.crt").display().to_string();
    assert_eq!(asked, [vec![ca]]);
    assert_eq!(lab.containerd.pulls(), [IMAGE]);
    assert!(
        d.tried
            .iter()
            .any(|t| t.starts_with("pull r.test:5000/app:1 through CRI: failed"))
    );
}

#[tokio::test]
async fn diagnose_shows_where_containerd_looks_and_what_its_own_directory_shadows() {
    use crate::ctrconfig::{PlaceKind, PlaceState};
    let lab = lab("1.7.24", WITH_CONFIG_PATH);
    let default = lab.certs.join("_default");
    std::fs::create_dir_all(&default).unwrap();
    std::fs::write(default.join("right.crt"), PEM).unwrap();
    std::fs::write(
        default.join("hosts.toml"),
        "[host.\"https://r.test:5000\"]\n  ca = \"right.crt\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(lab.certs.join(HOST)).unwrap();
    std::fs::write(
        lab.hosts_toml(),
        "[host.\"https://r.test:5000\"]\n  ca = \"missing.crt\"\n",
    )
    .unwrap();
    let d = lab.controller.diagnose(HOST, true).await.unwrap();
    let l = d.lookup.expect("a lookup");
    let states: Vec<_> = l
        .places
        .iter()
        .map(|p| (p.kind, p.state.as_str()))
        .collect();
    assert_eq!(
        states,
        [
            (PlaceKind::PortDir, "absent"),
            (PlaceKind::HostDir, "wins"),
            (PlaceKind::DefaultDir, "shadowed"),
            (PlaceKind::SystemPool, "also_used"),
        ]
    );
    let own = &l.places[1];
    assert_eq!(own.ca_files[0].exists, Some(false), "{own:?}");
    assert_eq!(l.places[2].ca_files[0].exists, Some(true));
    assert_eq!(l.places[2].files, ["hosts.toml", "right.crt"]);
    assert!(
        matches!(&l.places[2].state, PlaceState::Shadowed { by } if by.ends_with("r.test:5000/"))
    );
    // The probe checks what containerd uses: the host's own CA, not _default's.
    let asked = lab.prober.asked_with.lock().unwrap().clone();
    assert_eq!(
        asked,
        [vec![
            lab.certs
                .join(HOST)
                .join("missing.crt")
                .display()
                .to_string()
        ]]
    );
    let shadowed = d
        .findings
        .iter()
        .find(|f| {
            f.summary
                .contains("_default/hosts.toml does not apply to r.test:5000")
        })
        .unwrap_or_else(|| panic!("{:#?}", d.findings));
    assert_eq!(shadowed.cause, CauseCode::ConfigIgnored);
    assert_eq!(shadowed.severity, crate::diagnose::Severity::Info);
}

#[tokio::test]
async fn diagnose_without_containerd_says_so_and_does_not_pull() {
    let lab = lab("2.1.9", "version = 3\n");
    lab.containerd.set_down();
    let d = lab.controller.diagnose(IMAGE, false).await.unwrap();
    assert!(
        d.findings
            .iter()
            .any(|f| f.cause == CauseCode::ContainerdUnreachable)
    );
    assert!(lab.containerd.pulls().is_empty());
    assert!(d.pull.is_none());
}

#[tokio::test]
async fn a_target_that_is_no_registry_is_refused() {
    let lab = lab("2.1.9", "version = 3\n");
    for target in ["../etc", "_default", "reg_5000_"] {
        assert!(matches!(
            lab.controller.diagnose(target, true).await,
            Err(ControllerError::Target(_))
        ));
    }
}

// ---- fix

#[tokio::test]
async fn a_ca_fix_with_config_path_writes_two_files_and_needs_no_restart() {
    let lab = lab("1.7.24", WITH_CONFIG_PATH);
    let prepared = lab
        .controller
        .prepare_fix(request(RequestedMode::Ca { pem: PEM.into() }))
        .await
        .unwrap();
    assert_eq!(prepared.plan.steps.len(), 2, "{:#?}", prepared.plan);
    assert!(!prepared.plan.restarts());
    assert_eq!(prepared.plan.verify_pull.as_deref(), Some(IMAGE));
    assert_eq!(prepared.meta, ChangeMeta::plain());
    let outcome = lab.controller.apply_fix(prepared, &None).await.unwrap();
    assert!(
        matches!(outcome, ApplyOutcome::Applied { .. }),
        "{outcome:?}"
    );
    assert!(read(&lab.hosts_toml()).unwrap().contains("ctrdiag-ca.crt"));
    assert_eq!(lab.units.restarts(), 0);
    assert_eq!(lab.containerd.pulls(), [IMAGE]);
}

#[tokio::test]
async fn a_fix_whose_verifying_pull_fails_is_undone() {
    let lab = lab("1.7.24", WITH_CONFIG_PATH);
    lab.containerd.set_pull(unknown_authority(IMAGE));
    let outcome = lab
        .fix(request(RequestedMode::Ca { pem: PEM.into() }))
        .await
        .unwrap();
    match outcome {
        ApplyOutcome::RolledBack { reason, .. } => {
            assert!(reason.contains("still fails"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        read(&lab.hosts_toml()),
        None,
        "the created file is taken out"
    );
}

#[tokio::test]
async fn without_config_path_a_fix_sets_it_and_restarts_containerd() {
    let lab = lab("1.7.24", "version = 2\n");
    lab.ca_fix_applies().await;
    assert_eq!(lab.units.restarts(), 1);
    assert!(read(&lab.config).unwrap().contains("config_path"));
}

#[tokio::test]
async fn a_time_to_live_is_for_insecure_settings_and_bounded() {
    let lab = lab("1.7.24", WITH_CONFIG_PATH);
    let mut req = request(RequestedMode::Ca { pem: PEM.into() });
    req.ttl_secs = HOUR;
    assert!(matches!(
        lab.controller.prepare_fix(req).await,
        Err(ControllerError::Fix(FixError::TtlNotInsecure))
    ));
    let mut req = request(RequestedMode::InsecureSkipVerify);
    req.ttl_secs = 31 * 24 * HOUR;
    assert!(matches!(
        lab.controller.prepare_fix(req).await,
        Err(ControllerError::Fix(FixError::TtlTooLong))
    ));
    let mut req = request(RequestedMode::InsecureSkipVerify);
    req.ttl_secs = HOUR;
    let prepared = lab.controller.prepare_fix(req).await.unwrap();
    assert_eq!(
        prepared.meta.expires_unix,
        Some(NOW + HOUR),
        "counted from the request"
    );
    assert_eq!(prepared.meta.insecure.unwrap().host, HOST);
}

#[tokio::test]
async fn ca_from_server_installs_only_the_certificate_with_the_confirmed_fingerprint() {
    let lab = lab("1.7.24", WITH_CONFIG_PATH);
    let presented = untrusted_report().chain[0].clone();
    let prepared = lab
        .controller
        .prepare_fix(request(RequestedMode::CaFromServer {
            sha256: presented.sha256_fingerprint.clone(),
        }))
        .await
        .unwrap();
    let ca = prepared.plan.steps.iter().find_map(|s| match s {
        Step::WriteFile { path, after, .. } if path.ends_with("ctrdiag-ca.crt") => Some(after),
        _ => None,
    });
    assert_eq!(ca, Some(&presented.pem()));
    let wrong = lab
        .controller
        .prepare_fix(request(RequestedMode::CaFromServer {
            sha256: "ab".repeat(32),
        }))
        .await;
    assert!(matches!(
        wrong,
        Err(ControllerError::Fix(FixError::FingerprintMismatch { .. }))
    ));
}

// ---- changes and rollback

#[tokio::test]
async fn rollback_without_an_id_never_undoes_a_rollback() {
    let lab = lab("1.7.24", WITH_CONFIG_PATH);
    let id = lab.insecure_for(0).await;
    let r = lab.controller.rollback(None, false).await.unwrap();
    assert_eq!(r.target, id);
    assert!(matches!(
        r.outcome,
        Some(RollbackDone::Ran(ApplyOutcome::Applied { .. }))
    ));
    assert!(matches!(
        lab.controller.rollback(None, false).await,
        Err(ControllerError::NothingToRollBack)
    ));
    assert!(matches!(lab.state_of(&id), ChangeState::Reverted { .. }));
}

// ---- the end of times to live

#[tokio::test]
async fn a_time_to_live_ends_when_the_clock_passes_it() {
    let lab = lab("1.7.24", WITH_CONFIG_PATH);
    let id = lab.insecure_for(HOUR).await;
    let report = lab.controller.end_due().await;
    assert!(report.ended.is_empty());
    assert_eq!(report.next_due, Some(NOW + HOUR));
    assert!(
        read(&lab.hosts_toml())
            .unwrap()
            .contains("skip_verify = true")
    );

    lab.clock.advance(HOUR + 1);
    let report = lab.controller.end_due().await;
    assert_eq!(report.ended, std::slice::from_ref(&id));
    assert!(
        !read(&lab.hosts_toml())
            .unwrap_or_default()
            .contains("skip_verify")
    );
    assert!(matches!(lab.state_of(&id), ChangeState::Reverted { .. }));
    assert_eq!(lab.controller.end_due().await.next_due, None);
}

#[tokio::test]
async fn two_changes_of_one_setting_end_with_the_later_time_to_live() {
    let lab = lab("1.7.24", WITH_CONFIG_PATH);
    let first = lab.insecure_for(HOUR).await;
    let second = lab.insecure_for(2 * HOUR).await;
    lab.clock.advance(HOUR + 1);
    let report = lab.controller.end_due().await;
    assert!(report.ended.is_empty(), "the second keeps it: {report:?}");
    assert_eq!(report.next_due, Some(NOW + 2 * HOUR));
    assert!(
        lab.controller
            .changes_summary()
            .insecure
            .iter()
            .all(|i| !i.overdue)
    );
    lab.clock.advance(HOUR);
    let mut ended = lab.controller.end_due().await.ended;
    ended.sort();
    assert_eq!(ended, [first, second]);
}

#[tokio::test]
async fn an_end_that_fails_is_shown_overdue_and_retried_after_a_pause() {
    let lab = lab("1.7.24", WITH_CONFIG_PATH);
    let id = lab.insecure_for(HOUR).await;
    let good = read(&lab.hosts_toml()).unwrap();
    std::fs::write(lab.hosts_toml(), format!("{good}[[[ broken\n")).unwrap();
    lab.clock.advance(HOUR + 1);
    let report = lab.controller.end_due().await;
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.next_due, Some(NOW + HOUR + 1 + 30));
    let summary = lab.controller.changes_summary();
    assert!(summary.insecure[0].overdue);
    assert!(summary.insecure[0].change.last_expiry_failure().is_some());

    std::fs::write(lab.hosts_toml(), &good).unwrap();
    assert!(
        lab.controller.end_due().await.ended.is_empty(),
        "not before the pause"
    );
    lab.clock.advance(30);
    assert_eq!(lab.controller.end_due().await.ended, [id]);
}

// ---- recovery

/// A change that a crash cut short after it created `path` with `text`.
fn interrupted(lab: &Lab, path: &Path, text: &str) {
    let plan = Plan {
        title: "interrupted".into(),
        steps: vec![Step::WriteFile {
            path: path.to_path_buf(),
            before: None,
            after: text.into(),
            mode: 0o644,
            why: "test".into(),
        }],
        verify_pull: None,
    };
    let state = lab.controller.executor().state_dir().to_path_buf();
    let mut j = crate::plan::journal::Journal::create(&state, &plan, ChangeMeta::plain()).unwrap();
    j.append(&Event::Backup {
        step: 0,
        existed: false,
        meta: Some(crate::plan::fsops::new_file_meta(0o644)),
    })
    .unwrap();
    j.append(&Event::Started { step: 0 }).unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

#[tokio::test]
async fn recovery_undoes_an_interrupted_change() {
    let lab = lab("1.7.24", WITH_CONFIG_PATH);
    interrupted(
        &lab,
        &lab.hosts_toml(),
        "server = \"https://r.test:5000\"\n",
    );
    let report = lab.controller.recover().await;
    assert_eq!(report.undone.len(), 1, "{report:?}");
    assert_eq!(read(&lab.hosts_toml()), None);
}

#[tokio::test]
async fn a_recovery_that_cannot_finish_blocks_changes_until_it_can() {
    let lab = lab("1.7.24", WITH_CONFIG_PATH);
    interrupted(
        &lab,
        &lab.hosts_toml(),
        "server = \"https://r.test:5000\"\n",
    );
    std::fs::write(lab.hosts_toml(), "# someone else's now\n").unwrap();
    let report = lab.controller.recover().await;
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(lab.controller.changes_summary().pending_recovery.is_some());
    for dry_run in [true, false] {
        let mut req = request(RequestedMode::Ca { pem: PEM.into() });
        req.dry_run = dry_run;
        assert!(matches!(
            lab.controller.prepare_fix(req).await,
            Err(ControllerError::Apply(ApplyError::RecoveryPending { .. }))
        ));
    }
    assert_eq!(
        read(&lab.hosts_toml()).as_deref(),
        Some("# someone else's now\n")
    );
    assert!(
        lab.controller.status().await.containerd.reachable,
        "reads go on"
    );

    std::fs::remove_file(lab.hosts_toml()).unwrap();
    lab.ca_fix_applies().await;
    assert!(lab.controller.changes_summary().pending_recovery.is_none());
}

#[tokio::test]
async fn a_pulled_outcome_keeps_the_image_id() {
    let lab = lab("2.1.9", "version = 3\n");
    lab.containerd.set_pull(pulled());
    let r = lab.controller.test_pull(IMAGE, true).await.unwrap();
    assert_eq!(r.cause, None);
    assert!(!r.removed_after, "kept");
}

#[tokio::test]
async fn restart_goes_through_the_unit_manager_and_waits_for_cri() {
    let lab = lab("2.1.9", "version = 3\n");
    lab.containerd.set_cri_ready(false);
    lab.controller.restart_containerd().await.unwrap();
    assert_eq!(lab.units.restarts(), 1);
    assert!(lab.controller.containerd_state().await.cri_ready);
}

#[tokio::test]
async fn images_are_listed_in_the_default_namespace_unless_one_is_named() {
    let lab = lab("2.1.9", "version = 3\n");
    let (ns, images) = lab.controller.images(None).await.unwrap();
    assert_eq!(ns.as_str(), "k8s.io");
    assert!(images.is_empty());
    let other: crate::containerd::Namespace = "default".parse().unwrap();
    assert_eq!(
        lab.controller.images(Some(other)).await.unwrap().0.as_str(),
        "default"
    );
    lab.containerd.set_down();
    assert!(matches!(
        lab.controller.images(None).await,
        Err(ControllerError::Containerd(_))
    ));
}

// ---- credentials and the image cache

const DOCKER: &str = "{\n\t\"auths\": {\n\t\t\"r.test:5000\": {\n\t\t\t\"auth\": \"cm9ib3Q6c2VjcmV0\"\n\t\t},\n\t\t\"q.test\": {\n\t\t\t\"auth\": \"cTpx\"\n\t\t}\n\t}\n}\n";

impl Lab {
    fn docker_config(&self) -> PathBuf {
        self.config.parent().unwrap().join("docker/config.json")
    }
}

#[tokio::test]
async fn a_scan_finds_every_place_and_no_secret() {
    let lab = lab(
        "1.7.24",
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"{certs}\"\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"r.test:5000\".auth]\n  password = \"hunter2\"\n",
    );
    std::fs::create_dir_all(lab.docker_config().parent().unwrap()).unwrap();
    std::fs::write(lab.docker_config(), DOCKER).unwrap();
    let kubelet = lab.config.parent().unwrap().join("kubelet/config.json");
    std::fs::create_dir_all(kubelet.parent().unwrap()).unwrap();
    std::fs::write(&kubelet, "{ not json").unwrap();
    let host: crate::registry::host::RegistryHost = HOST.parse().unwrap();
    let scan = lab.controller.creds_scan(Some(&host)).await.unwrap();
    let files: Vec<&str> = scan.entries.iter().map(|e| e.file.as_str()).collect();
    assert_eq!(scan.entries.len(), 2, "{scan:?}");
    assert!(files.iter().any(|f| f.ends_with("config.toml")));
    assert!(files.iter().any(|f| f.ends_with("docker/config.json")));
    assert_eq!(scan.problems.len(), 1, "{scan:?}");
    assert!(
        scan.problems[0].contains("kubelet/config.json") && scan.problems[0].contains("line 1")
    );
    assert!(!format!("{scan:?}").contains("hunter2") && !format!("{scan:?}").contains("cm9ib3Q6"));
}

#[tokio::test]
async fn a_clean_for_one_registry_is_a_change_that_rollback_undoes() {
    let lab = lab("1.7.24", WITH_CONFIG_PATH);
    std::fs::create_dir_all(lab.docker_config().parent().unwrap()).unwrap();
    std::fs::write(lab.docker_config(), DOCKER).unwrap();
    let host: crate::registry::host::RegistryHost = HOST.parse().unwrap();
    let prepared = lab
        .controller
        .prepare_creds_clean(Some(&host), None, false)
        .await
        .unwrap();
    assert!(!prepared.plan.restarts(), "config.toml is not touched");
    let outcome = lab.controller.apply_fix(prepared, &None).await.unwrap();
    let ApplyOutcome::Applied { id, .. } = outcome else {
        panic!("{outcome:?}");
    };
    let after = read(&lab.docker_config()).unwrap();
    assert!(
        !after.contains("r.test:5000") && after.contains("\"q.test\""),
        "{after}"
    );
    lab.controller.rollback(Some(id), false).await.unwrap();
    assert_eq!(
        read(&lab.docker_config()).unwrap(),
        DOCKER,
        "every byte back"
    );
}

#[tokio::test]
async fn a_purge_refuses_images_containers_use_and_names_them() {
    let lab = lab("2.1.9", "version = 3\n");
    let a = format!("sha256:{}", "a".repeat(64));
    let b = format!("sha256:{}", "b".repeat(64));
    lab.containerd.set_images(&[
        ("r.test:5000/app:1", &a),
        ("sha256:ida", &a),
        ("q.test/other:1", &b),
    ]);
    lab.containerd
        .set_containers(vec![crate::cache::ContainerRef {
            namespace: "k8s.io".into(),
            id: "web-1".into(),
            image: "sha256:ida".into(),
        }]);
    let host: crate::registry::host::RegistryHost = HOST.parse().unwrap();
    let refused = lab.controller.prepare_purge(&host, false, false).await;
    match refused {
        Err(ControllerError::Purge(e)) => assert!(e.to_string().contains("web-1"), "{e}"),
        other => panic!("{other:?}"),
    }
    let prepared = lab
        .controller
        .prepare_purge(&host, true, false)
        .await
        .unwrap();
    lab.controller.apply_fix(prepared, &None).await.unwrap();
    assert_eq!(lab.containerd.removed(), ["r.test:5000/app:1"]);
}

#[tokio::test]
async fn status_says_why_cri_did_not_load_in_containerds_words() {
    let lab = lab("2.1.9", "version = 3\n");
    lab.containerd.set_cri_ready(false);
    lab.containerd.set_loaded(crate::loaded::Loaded {
        plugins: vec![crate::loaded::PluginState {
            kind: "io.containerd.cri.v1".into(),
            id: "images".into(),
            init_error: Some("invalid cri image config".into()),
        }],
        deprecations: vec![],
        pid: None,
    });
    let state = lab.controller.containerd_state().await;
    assert!(!state.cri_ready);
    assert_eq!(
        state.error.as_deref(),
        Some(
            "containerd's plugin io.containerd.cri.v1.images failed to load: invalid cri image config"
        )
    );
    assert_eq!(state.loaded.len(), 1);
    // Once CRI answers, its error is no longer containerd's error.
    lab.containerd.set_cri_ready(true);
    lab.containerd.set_loaded(crate::loaded::Loaded::default());
    let state = lab.controller.containerd_state().await;
    assert_eq!((state.error, state.loaded.len()), (None, 0));
}

// ---- nodes whose configuration k3s or Bottlerocket owns

const K3S_CONFIG: &str = "# File generated by k3s. DO NOT EDIT. Use config.toml.tmpl instead.\nversion = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"{certs}\"\n";

/// Every file under `dir` with its bytes, to prove nothing changed.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            out.extend(snapshot(&e.path()));
        } else {
            out.push((e.path(), std::fs::read(e.path()).unwrap()));
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn a_fix_on_a_k3s_node_plans_nothing_and_says_what_to_put_in_registries_yaml() {
    let lab = lab("1.7.24", K3S_CONFIG);
    let root = lab.config.parent().unwrap().to_path_buf();
    std::fs::write(root.join("config.toml.tmpl"), "{{ template \"base\" . }}\n").unwrap();
    let before = snapshot(&root);
    let mut req = request(RequestedMode::Ca { pem: PEM.into() });
    req.ca_file = Some("/root/ca.crt".into());
    let change = match lab.controller.prepare_fix(req).await {
        Err(ControllerError::Managed(c)) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(change.owner, "k3s");
    assert_eq!(change.evidence.len(), 2, "{:?}", change.evidence);
    let edit = change.edit.as_ref().unwrap();
    assert_eq!(
        edit.path,
        root.join("registries.yaml").display().to_string()
    );
    assert!(
        edit.text.contains("ca_file: \"/root/ca.crt\""),
        "{}",
        edit.text
    );
    assert_eq!(change.commands, ["systemctl restart k3s"]);
    assert_eq!(snapshot(&root), before, "nothing was written");
    assert!(lab.containerd.pulls().is_empty());
    assert_eq!(lab.units.restarts(), 0);
    assert!(lab.controller.changes().unwrap().is_empty());

    lab.containerd.set_pull(unknown_authority(IMAGE));
    let d = lab.controller.diagnose(IMAGE, false).await.unwrap();
    let f = d
        .findings
        .iter()
        .find(|f| f.cause == CauseCode::ConfigManaged)
        .expect("config_managed");
    assert!(
        f.remedies[0].text.contains("ca_file: \"/path/to/ca.crt\""),
        "{f:?}"
    );
    assert!(
        d.tried
            .iter()
            .any(|t| t.starts_with("containerd's configuration is owned by k3s")),
        "{:?}",
        d.tried
    );
    assert_eq!(snapshot(&root), before, "diagnose writes nothing either");
}

#[tokio::test]
async fn a_fix_on_bottlerocket_is_an_apiclient_command_and_skip_verify_has_none() {
    let lab = lab("1.7.24", WITH_CONFIG_PATH);
    let root = lab.config.parent().unwrap().to_path_buf();
    std::fs::write(
        root.join("os-release"),
        "NAME=Bottlerocket\nID=bottlerocket\n",
    )
    .unwrap();
    let change = match lab
        .controller
        .prepare_fix(request(RequestedMode::Ca { pem: PEM.into() }))
        .await
    {
        Err(ControllerError::Managed(c)) => c,
        other => panic!("{other:?}"),
    };
    assert!(change.commands[0].starts_with("apiclient set pki.ctrdiag-r-test-5000.data="));
    assert!(matches!(
        lab.controller
            .prepare_fix(request(RequestedMode::InsecureSkipVerify))
            .await,
        Err(ControllerError::ManagedRefused(
            crate::managed::ManagedError::NoSkipVerify { .. }
        ))
    ));
    assert!(!lab.hosts_toml().exists());
}

#[tokio::test]
async fn cleaning_credentials_k3s_renders_into_config_toml_is_refused() {
    let lab = lab(
        "1.7.24",
        "# File generated by k3s. DO NOT EDIT. Use config.toml.tmpl instead.\nversion = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"r.test:5000\".auth]\n  username = \"u\"\n  password = \"p\"\n",
    );
    let host: crate::registry::host::RegistryHost = HOST.parse().unwrap();
    let err = lab
        .controller
        .prepare_creds_clean(Some(&host), None, true)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            ControllerError::ManagedRefused(
                crate::managed::ManagedError::RenderedCredentials { .. }
            )
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("restart k3s"), "{err}");
}

#[tokio::test]
async fn a_failed_trial_stops_the_fix_before_anything_is_written() {
    let lab = lab("2.1.9", WITH_CONFIG_PATH);
    lab.containerd.set_trial(Some(unknown_authority(IMAGE)));
    let prepared = lab
        .controller
        .prepare_fix(request(RequestedMode::Ca { pem: PEM.into() }))
        .await
        .unwrap();
    let trial = prepared.trial.clone().unwrap();
    assert!(trial.failed(), "{trial:?}");
    // containerd saw the candidate hosts.toml, pointing at the staged CA.
    let seen = lab.containerd.trials();
    assert_eq!(seen.len(), 1);
    let (path, text) = &seen[0][0];
    assert_eq!(path, &format!("{HOST}/hosts.toml"));
    assert!(
        text.contains("/trial-") && text.contains("ctrdiag-ca.crt"),
        "{text}"
    );
    let err = lab.controller.apply_fix(prepared, &None).await.unwrap_err();
    assert!(
        matches!(err, ControllerError::TrialFailed { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("nothing was written"), "{err}");
    assert!(read(&lab.hosts_toml()).is_none(), "certs.d untouched");
    assert!(lab.containerd.pulls().is_empty(), "no CRI pull either");
    let stages: Vec<_> = std::fs::read_dir(lab.controller.executor.state_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("trial-"))
        .collect();
    assert!(stages.is_empty(), "the stage is removed after the trial");
}

#[tokio::test]
async fn a_trial_that_works_lets_the_fix_go_on_and_1_7_says_why_it_has_none() {
    let on_2_1 = lab("2.1.9", WITH_CONFIG_PATH);
    on_2_1.containerd.set_trial(Some(pulled()));
    on_2_1.ca_fix_applies().await;

    let on_1_7 = lab("1.7.24", WITH_CONFIG_PATH);
    let prepared = on_1_7
        .controller
        .prepare_fix(request(RequestedMode::Ca { pem: PEM.into() }))
        .await
        .unwrap();
    match prepared.trial {
        Some(crate::trial::Trial::Skipped { reason }) => {
            assert!(
                reason.contains("ignores a staged hosts directory"),
                "{reason}"
            )
        }
        other => panic!("{other:?}"),
    }
}
