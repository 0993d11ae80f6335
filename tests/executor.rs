//! The plan executor against real containerd (through the stand-in systemd on a real
//! dbus-daemon) and a real TLS registry: fixes that hold are kept, fixes that do not
//! are undone to the exact previous bytes, and a kill -9 at any step is recovered.

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

/// Env vars through which the crash test hands its child process the node.
const CHILD_PLAN: &str = "CTRDIAG_TEST_CHILD_PLAN";
const CHILD_STATE: &str = "CTRDIAG_TEST_CHILD_STATE";
const CHILD_SOCKET: &str = "CTRDIAG_TEST_CHILD_SOCKET";
const CHILD_BUS: &str = "CTRDIAG_TEST_CHILD_BUS";

/// Not a test of its own: the crash test runs this in a child process, which the
/// failpoint kills with SIGKILL in the middle of the apply.
#[tokio::test]
#[ignore = "run by kill_9_at_any_step_is_recovered_to_the_old_config in a child process"]
async fn recovery_child() {
    let var = |k| std::env::var(k).unwrap_or_else(|_| panic!("{k} is set by the parent test"));
    let plan: Plan =
        serde_json::from_str(&std::fs::read_to_string(var(CHILD_PLAN)).unwrap()).unwrap();
    let client = ContainerdClient::new(var(CHILD_SOCKET), Default::default());
    let executor = executor_at(var(CHILD_STATE).into(), client, &var(CHILD_BUS));
    let outcome = apply(&executor, &plan).await;
    panic!("the failpoint should have killed this process; the apply ended with {outcome:?}");
}

/// Not a test of its own: a daemon start that recovers, killed mid-undo.
#[tokio::test]
#[ignore = "run by kill_9_at_any_step_is_recovered_to_the_old_config in a child process"]
async fn recovering_child() {
    let var = |k| std::env::var(k).unwrap_or_else(|_| panic!("{k} is set by the parent test"));
    let client = ContainerdClient::new(var(CHILD_SOCKET), Default::default());
    let executor = executor_at(var(CHILD_STATE).into(), client, &var(CHILD_BUS));
    let report = executor.recover().await;
    panic!("the failpoint should have killed this process; recovery ended with {report:?}");
}

/// Runs test `name` of this binary as a child with `failpoint`, which must kill it.
async fn run_child(name: &str, failpoint: &str, env: &[(&str, &std::path::Path)]) {
    use std::os::unix::process::ExitStatusExt;
    let status = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--ignored", "--nocapture"])
        .env("CTRDIAG_FAILPOINT", failpoint)
        .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "{name} at {failpoint}: the child must die by SIGKILL ({status:?})"
    );
}

#[tokio::test]
#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs --features failpoints (scripts/test.sh sets it)"
)]
async fn kill_9_at_any_step_is_recovered_to_the_old_config() {
    let version = Version::V1_7;
    let node = node(version, LabConfig::default()).await;
    let ca_pem = node.registry.tls.as_ref().unwrap().ca_pem.clone();
    let before = std::fs::read_to_string(&node.config_file).unwrap();
    let after = format!("{before}\n[debug]\n  level = \"info\"\n");
    let mut plan = trust_plan(&node, &ca_pem);
    plan.steps.push(Step::WriteFile {
        path: node.config_file.clone(),
        before: Some(before.clone()),
        after: after.clone(),
        mode: 0o644,
        why: "a config.toml edit".into(),
    });
    plan.steps.push(Step::RestartUnit {
        unit: UNIT.into(),
        why: "config.toml is read at start".into(),
    });
    let plan_file = node.executor.state_dir().join("plan-under-test.json");
    std::fs::write(&plan_file, serde_json::to_string(&plan).unwrap()).unwrap();
    let socket = node.fake.containerd.lock().await.socket.clone();
    let bus_address = node._bus.address.clone();

    // Every instant of the apply: right after the change's first record, around each
    // step, and after the verifying pull but before "applied".
    let last = plan.steps.len() - 1;
    let mut points = vec![("created:0".to_string(), None)];
    for (n, step) in plan.steps.iter().enumerate() {
        if !matches!(step, Step::RestartUnit { .. }) {
            points.push((format!("backup:{n}"), n.checked_sub(1)));
        }
        points.push((format!("started:{n}"), Some(n)));
        points.push((format!("done:{n}"), Some(n)));
    }
    points.push(("verified:0".to_string(), Some(last)));
    let socket_path = std::path::PathBuf::from(&socket);
    let bus_path = std::path::PathBuf::from(&bus_address);
    for (point, last_started) in points {
        let state = node.executor.state_dir().join(point.replace(':', "-"));
        let env = [
            (CHILD_PLAN, plan_file.as_path()),
            (CHILD_STATE, state.as_path()),
            (CHILD_SOCKET, socket_path.as_path()),
            (CHILD_BUS, bus_path.as_path()),
        ];
        run_child("recovery_child", &point, &env).await;

        // At the instant of the crash the config is whole: old or new, and parses.
        let on_disk = std::fs::read_to_string(&node.config_file).unwrap();
        assert!(
            on_disk == before || on_disk == after,
            "{point}: a mixed config.toml"
        );
        toml::from_str::<toml::Table>(&on_disk).unwrap_or_else(|e| panic!("{point}: {e}"));

        // The next start dies too, in the middle of its undo; the one after finishes.
        if let Some(n) = last_started {
            run_child("recovering_child", &format!("undo:{n}"), &env).await;
            let on_disk = std::fs::read_to_string(&node.config_file).unwrap();
            assert!(
                on_disk == before || on_disk == after,
                "{point}, then undo:{n}: a mixed config.toml"
            );
        }
        let recovering = executor_at(
            state.clone(),
            node.fake.containerd.lock().await.client(),
            &bus_address,
        );
        let report = recovering.recover().await;
        assert!(report.failed.is_empty(), "{point}: {report:?}");
        assert_eq!(report.undone.len(), 1, "{point}");
        assert_eq!(
            std::fs::read_to_string(&node.config_file).unwrap(),
            before,
            "{point}"
        );
        assert!(
            listing(&node.certs_d).is_empty(),
            "{point}: {:?}",
            listing(&node.certs_d)
        );
        let records = journal::changes(&state).unwrap();
        assert!(
            matches!(&records[0].state, ChangeState::RolledBack { reason } if reason.contains("interrupted")),
            "{point}: {:?}",
            records[0].state
        );
    }
    let ctr = node.fake.containerd.lock().await;
    assert!(
        ctr.client()
            .runtime_status()
            .await
            .expect("CRI at the end")
            .runtime_ready
    );
}
