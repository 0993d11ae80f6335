//! The plan executor against real containerd (through the stand-in systemd on a real
//! dbus-daemon) and a real TLS registry: fixes that hold are kept, fixes that do not
//! are undone to the exact previous bytes (kills at every step: tests/crash_matrix.rs).

#[macro_use]
mod lab;

use std::path::{Path, PathBuf};

use std::sync::Arc;

use ctrdiag::clock::SystemClock;
use ctrdiag::containerd::{ContainerdClient, PullOutcome};
use ctrdiag::plan::{ApplyOutcome, ChangeMeta, ChangeState, Plan, Step, journal};
use ctrdiag::systemd::SystemdClient;

/// The executor of a real node: containerd's CRI and systemd over D-Bus.
type Executor = ctrdiag::plan::Executor<ContainerdClient, SystemdClient>;
use lab::certs::CertKind;
use lab::containerd::{LabConfig, LabContainerd, Version};
use lab::registry::{Registry, RegistryKind};
use lab::systemd::{Bus, FakeSystemd, UNIT};

struct Node {
    registry: Registry,
    fake: FakeSystemd,
    executor: Executor,
    certs_d: PathBuf,
    config_file: PathBuf,
    _bus: Bus,
    _state: tempfile::TempDir,
}

async fn node(version: Version, config: LabConfig) -> Node {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start_with(version, config).await;
    let bus = Bus::start();
    let (certs_d, config_file, client) =
        (ctr.certs_d.clone(), ctr.config_file.clone(), ctr.client());
    let fake = FakeSystemd::serve(&bus, ctr).await;
    let state = lab::scratch_dir("state-");
    let executor = executor_at(state.path().to_path_buf(), client, &bus.address);
    Node {
        registry,
        fake,
        executor,
        certs_d,
        config_file,
        _bus: bus,
        _state: state,
    }
}

/// The executor a daemon on this node would have.
fn executor_at(state: PathBuf, client: ContainerdClient, bus: &str) -> Executor {
    Executor::new(
        state,
        client,
        SystemdClient::new(Some(bus.to_string())),
        Arc::new(SystemClock),
    )
}

async fn apply(
    executor: &Executor,
    plan: &Plan,
) -> Result<ApplyOutcome, ctrdiag::plan::ApplyError> {
    executor.apply(plan, ChangeMeta::plain(), &None).await
}

/// The recommended fix written by hand: CA file + hosts.toml under config_path.
fn trust_plan(node: &Node, ca_pem: &str) -> Plan {
    let dir = node.certs_d.join(&node.registry.host);
    let ca = dir.join("ca.crt");
    let url = format!("https://{}", node.registry.host);
    Plan {
        title: format!("trust the CA of {}", node.registry.host),
        steps: vec![
            Step::WriteFile {
                path: ca.clone(),
                before: None,
                after: ca_pem.to_string(),
                mode: 0o644,
                why: "the registry's CA".into(),
            },
            Step::WriteFile {
                path: dir.join("hosts.toml"),
                before: None,
                after: format!(
                    "server = \"{url}\"\n\n[host.\"{url}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"{}\"\n",
                    ca.display()
                ),
                mode: 0o644,
                why: "hosts.toml naming the CA".into(),
            },
        ],
        verify_pull: Some(node.registry.image_ref()),
    }
}

fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(listing(&p));
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

async fn a_fix_that_works_is_kept_and_rollback_restores_the_exact_bytes(version: Version) {
    let node = node(version, LabConfig::default()).await;
    let ca_pem = node.registry.tls.as_ref().unwrap().ca_pem.clone();
    let plan = trust_plan(&node, &ca_pem);

    let id = match apply(&node.executor, &plan).await.expect("apply") {
        ApplyOutcome::Applied {
            id,
            verify: Some(PullOutcome::Pulled { image_id, .. }),
        } => {
            assert_eq!(image_id, node.registry.image.config_digest);
            id
        }
        other => panic!("{other:?}"),
    };
    let record = journal::changes(node.executor.state_dir()).unwrap()[0].clone();
    assert_eq!(record.id, id);
    assert_eq!(record.state, ChangeState::Applied);

    let (rollback_plan, outcome) = node.executor.rollback(&id).await.expect("rollback");
    assert!(rollback_plan.title.contains(id.as_str()));
    assert!(
        matches!(outcome, ApplyOutcome::Applied { .. }),
        "{outcome:?}"
    );
    assert!(
        listing(&node.certs_d).is_empty(),
        "the created files are moved out of certs.d: {:?}",
        listing(&node.certs_d)
    );
    assert!(
        !node.certs_d.join(&node.registry.host).exists(),
        "the directory the fix made for them is gone too"
    );
    let records = journal::changes(node.executor.state_dir()).unwrap();
    assert!(
        matches!(records[0].state, ChangeState::Reverted { .. }),
        "{:?}",
        records[0].state
    );
    drop(node.fake);
}

async fn a_fix_that_does_not_hold_is_undone(version: Version) {
    let node = node(version, LabConfig::default()).await;
    // Pre-existing hosts.toml for the host: its bytes must survive exactly.
    let dir = node.certs_d.join(&node.registry.host);
    std::fs::create_dir_all(&dir).unwrap();
    let original = "# hand-written, keep me\nserver = \"https://elsewhere.invalid\"\n";
    std::fs::write(dir.join("hosts.toml"), original).unwrap();
    let mut plan = trust_plan(
        &node,
        "-----BEGIN CERTIFICATE-----\nnot a CA\n-----END CERTIFICATE-----\n",
    );
    if let Step::WriteFile { before, .. } = &mut plan.steps[1] {
        *before = Some(original.to_string());
    }
    match apply(&node.executor, &plan).await.expect("apply") {
        ApplyOutcome::RolledBack { reason, .. } => {
            assert!(reason.contains("verification pull still fails"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("hosts.toml")).unwrap(),
        original
    );
    assert!(!dir.join("ca.crt").exists());
}

async fn a_restart_into_a_broken_cri_is_undone(version: Version) {
    // The runbook's edit on a node with config_path: containerd 1.x starts without CRI.
    let node = node(version, LabConfig::default()).await;
    let before = std::fs::read_to_string(&node.config_file).unwrap();
    let table = lab::containerd::cri_registry_table(version);
    let after = format!(
        "{before}[{table}.configs.\"{}\".tls]\n  insecure_skip_verify = true\n",
        node.registry.host
    );
    let plan = Plan {
        title: "the runbook's edit".into(),
        steps: vec![
            Step::WriteFile {
                path: node.config_file.clone(),
                before: Some(before.clone()),
                after,
                mode: 0o644,
                why: "skip verification (legacy table)".into(),
            },
            Step::RestartUnit {
                unit: UNIT.into(),
                why: "config.toml is read at start".into(),
            },
        ],
        verify_pull: Some(node.registry.image_ref()),
    };
    match apply(&node.executor, &plan).await.expect("apply") {
        ApplyOutcome::RolledBack { reason, .. } => {
            assert!(reason.contains("CRI"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read_to_string(&node.config_file).unwrap(), before);
    // Restarted again on the old config: CRI answers.
    let ctr = node.fake.containerd.lock().await;
    assert!(
        ctr.client()
            .runtime_status()
            .await
            .expect("CRI back")
            .runtime_ready
    );
    assert_eq!(
        node.fake.restarts.load(std::sync::atomic::Ordering::SeqCst),
        2
    );
}

#[tokio::test]
async fn a_stale_plan_is_refused_before_anything_changes() {
    let node = node(Version::V2_1, LabConfig::default()).await;
    let ca_pem = node.registry.tls.as_ref().unwrap().ca_pem.clone();
    let plan = trust_plan(&node, &ca_pem);
    let dir = node.certs_d.join(&node.registry.host);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hosts.toml"), "# appeared after planning\n").unwrap();
    let err = apply(&node.executor, &plan).await.expect_err("stale");
    assert!(
        err.to_string().contains("changed since the plan was made"),
        "{err}"
    );
    assert!(
        journal::changes(node.executor.state_dir())
            .unwrap()
            .is_empty()
    );
    assert!(!dir.join("ca.crt").exists());
}

/// Moving a file to the backup area is checked like a write: a plan made when the
/// file held one thing is refused once it holds another.
#[tokio::test]
async fn a_stale_move_to_backup_is_refused_and_the_file_stays() {
    let node = node(Version::V1_7, LabConfig::default()).await;
    let dir = node.certs_d.join(&node.registry.host);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ca.crt");
    std::fs::write(&path, "as planned\n").unwrap();
    let plan = Plan {
        title: "take the CA out".into(),
        steps: vec![Step::MoveToBackup {
            path: path.clone(),
            why: "test".into(),
            sha256: Some(ctrdiag::plan::sha256_hex(b"as planned\n")),
        }],
        verify_pull: None,
    };
    std::fs::write(&path, "replaced by someone\n").unwrap();
    let err = apply(&node.executor, &plan).await.expect_err("stale");
    assert!(
        matches!(err, ctrdiag::plan::ApplyError::Stale { .. }),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "replaced by someone\n"
    );

    std::fs::write(&path, "as planned\n").unwrap();
    let outcome = apply(&node.executor, &plan).await.expect("fresh");
    assert!(
        matches!(outcome, ApplyOutcome::Applied { .. }),
        "{outcome:?}"
    );
    assert!(!path.exists(), "moved to the backup area");
}

per_version!(
    a_fix_that_works_is_kept_and_rollback_restores_the_exact_bytes,
    a_fix_that_does_not_hold_is_undone,
);

mod broken_cri {
    #[tokio::test]
    async fn on_1_6() {
        super::a_restart_into_a_broken_cri_is_undone(super::Version::V1_6).await
    }
    #[tokio::test]
    async fn on_1_7() {
        super::a_restart_into_a_broken_cri_is_undone(super::Version::V1_7).await
    }
}
