//! Reliability: hangs (issue 13). A containerd that stops answering (SIGSTOP: its
//! socket still accepts connections) and a registry that accepts connections and never
//! answers: every RPC through the real ctrdiagd ends by its deadline with a message
//! that says what hangs and what to check, and RPCs that do not need the hung party
//! keep answering meanwhile. The figures (how long each call took) are printed as one
//! `RELIABILITY {...}` line per test (run with `--nocapture`).

mod lab;

use std::time::{Duration, Instant};

use ctrdiag::api::v1 as pb;
use ctrdiag::api::v1::diagnostics_client::DiagnosticsClient;
use lab::certs::CertKind;
use lab::containerd::{LabContainerd, Version};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind, SilentRegistry};
use lab::reliability::{self, Latencies};
use lab::wait_for;
use tonic::transport::Channel;

/// The daemon's deadline of every RPC with `pull_timeout_secs = 10`: max(10, 120) + 60.
const RPC_DEADLINE: Duration = Duration::from_secs(180);

/// Calls `ListChanges` and `ListEvents` until `done` says stop, each within `limit`;
/// returns their latencies. Neither needs containerd or a registry.
async fn unrelated_calls_keep_answering(
    mut client: DiagnosticsClient<Channel>,
    limit: Duration,
    done: tokio::sync::watch::Receiver<bool>,
) -> Latencies {
    let mut latencies = Latencies::default();
    while !*done.borrow() {
        let t = Instant::now();
        let changes = tokio::time::timeout(limit, client.list_changes(pb::ListChangesRequest {}))
            .await
            .expect("ListChanges answered while another party hangs");
        changes.expect("ListChanges succeeds");
        let events =
            tokio::time::timeout(limit, client.list_events(pb::ListEventsRequest::default()))
                .await
                .expect("ListEvents answered while another party hangs");
        events.expect("ListEvents succeeds");
        latencies.push(t.elapsed());
        // Paces the loop: a few answers a second are enough to show they keep coming.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    latencies
}

/// Runs `call`, failing the test if it is still running past `deadline` plus a margin;
/// returns its result and how long it took.
async fn timed<T>(deadline: Duration, call: impl std::future::Future<Output = T>) -> (T, Duration) {
    let t = Instant::now();
    let out = tokio::time::timeout(deadline + Duration::from_secs(15), call)
        .await
        .unwrap_or_else(|_| panic!("a call was still running {deadline:?} after it started"));
    (out, t.elapsed())
}

type Timed<T> = (Result<tonic::Response<T>, tonic::Status>, Duration);

/// A test pull and a diagnosis of `image` at once, each on its own connection, timed.
async fn pull_and_diagnose(
    daemon: &Daemon,
    image: &str,
) -> (Timed<pb::TestPullResponse>, Timed<pb::DiagnoseResponse>) {
    let (mut a, mut b) = (daemon.api().await, daemon.api().await);
    let pull = pb::TestPullRequest {
        image: image.to_string(),
        keep: false,
    };
    let diagnose = pb::DiagnoseRequest {
        target: image.to_string(),
        skip_pull: false,
    };
    tokio::join!(
        timed(RPC_DEADLINE, a.test_pull(pull)),
        timed(RPC_DEADLINE, b.diagnose(diagnose)),
    )
}

/// The diagnosis's finding of `cause`; fails the test without one.
fn finding<'a>(diag: &'a pb::DiagnoseResponse, cause: &str) -> &'a pb::Finding {
    diag.findings
        .iter()
        .find(|f| f.cause == cause)
        .unwrap_or_else(|| panic!("no {cause} finding: {diag:?}"))
}

fn says_containerd_hangs(message: &str) -> bool {
    message.contains("is not answering") && message.contains("journalctl -u containerd")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_containerd_ends_every_call_by_its_deadline_and_others_keep_answering() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    ctr.trust_registry_ca(&registry);
    let mut daemon = Daemon::start_with(&ctr, "pull_timeout_secs = 10\n").await;
    let image = registry.image_ref();

    ctr.freeze();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let unrelated = tokio::spawn(unrelated_calls_keep_answering(
        daemon.api().await,
        Duration::from_secs(10),
        rx,
    ));
    let (mut a, mut b) = (daemon.api().await, daemon.api().await);
    let ((status, status_took), (images, images_took), ((pull, pull_took), (diag, diag_took))) = tokio::join!(
        timed(RPC_DEADLINE, a.get_status(pb::GetStatusRequest {})),
        timed(
            RPC_DEADLINE,
            b.list_images(pb::ListImagesRequest::default())
        ),
        pull_and_diagnose(&daemon, &image),
    );
    tx.send(true).unwrap();
    let unrelated = unrelated.await.expect("unrelated calls");
    ctr.thaw();

    let status = status.expect("GetStatus answers").into_inner();
    let c = status.containerd.unwrap_or_default();
    assert!(!c.reachable, "{c:?}");
    assert!(says_containerd_hangs(&c.error), "{c:?}");
    let images = images.expect_err("ListImages cannot list from a frozen containerd");
    assert_eq!(images.code(), tonic::Code::Unavailable, "{images:?}");
    assert!(says_containerd_hangs(images.message()), "{images:?}");
    let pull = pull.expect_err("TestPull cannot pull through a frozen containerd");
    assert_eq!(pull.code(), tonic::Code::Unavailable, "{pull:?}");
    assert!(says_containerd_hangs(pull.message()), "{pull:?}");
    let diag = diag.expect("Diagnose answers").into_inner();
    let unreachable = finding(&diag, "containerd_unreachable");
    assert!(
        unreachable.summary.contains("containerd does not answer"),
        "{unreachable:?}"
    );
    assert!(
        unrelated.len() >= 2,
        "unrelated calls answered {} times during the hang",
        unrelated.len()
    );

    // Thawed, containerd answers through ctrdiagd again.
    let client = daemon.api().await;
    wait_for(
        "status to say containerd answers again",
        Duration::from_secs(30),
        || {
            let mut client = client.clone();
            async move {
                let s = client.get_status(pb::GetStatusRequest {}).await.ok()?;
                s.into_inner()
                    .containerd
                    .is_some_and(|c| c.reachable && c.cri_ready)
                    .then_some(())
            }
        },
    )
    .await;
    daemon.assert_running();
    let ms = |d: Duration| d.as_millis() as u64;
    reliability::report(
        "hang_containerd",
        serde_json::json!({
            "containerd": "2.1.9 (SIGSTOP)",
            "rpc_deadline_ms": ms(RPC_DEADLINE),
            "status_ms": ms(status_took),
            "images_ms": ms(images_took),
            "test_pull_ms": ms(pull_took),
            "diagnose_ms": ms(diag_took),
            "unrelated_calls_during_hang": unrelated.figures(),
            "wrong": 0,
        }),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_never_answers_ends_pulls_by_the_limit_and_others_keep_answering() {
    let silent = SilentRegistry::start().await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    let mut daemon = Daemon::start_with(&ctr, "pull_timeout_secs = 3\n").await;
    let image = silent.image_ref("app:1");

    let (tx, rx) = tokio::sync::watch::channel(false);
    let unrelated = tokio::spawn(unrelated_calls_keep_answering(
        daemon.api().await,
        Duration::from_secs(10),
        rx,
    ));
    let mut status_client = daemon.api().await;
    let status_during = tokio::spawn(async move {
        // Status needs containerd, which is fine: it must answer while pulls hang.
        let mut answered = Latencies::default();
        for _ in 0..5 {
            let t = Instant::now();
            let s = status_client.get_status(pb::GetStatusRequest {}).await;
            let c = s
                .expect("GetStatus answers")
                .into_inner()
                .containerd
                .unwrap();
            assert!(c.reachable && c.cri_ready, "{c:?}");
            answered.push(t.elapsed());
        }
        answered
    });
    let ((pull, pull_took), (diag, diag_took)) = pull_and_diagnose(&daemon, &image).await;
    tx.send(true).unwrap();
    let unrelated = unrelated.await.expect("unrelated calls");
    let status_during = status_during.await.expect("status during the hang");

    assert!(
        silent.accepted() >= 1,
        "the pulls reached the silent registry"
    );
    let pull = pull.expect("TestPull answers").into_inner();
    assert!(!pull.ok, "{pull:?}");
    assert_eq!(pull.cause, "timeout", "{pull:?}");
    assert!(pull.message.contains("within 3s"), "{pull:?}");
    let diag = diag.expect("Diagnose answers").into_inner();
    let timeout = finding(&diag, "timeout");
    assert!(timeout.summary.contains("3s"), "{timeout:?}");
    assert!(
        !diag
            .findings
            .iter()
            .any(|f| f.cause == "containerd_unreachable"),
        "a silent registry is not a containerd problem: {diag:?}"
    );
    assert!(unrelated.len() >= 2, "{}", unrelated.len());
    daemon.assert_running();
    let ms = |d: Duration| d.as_millis() as u64;
    reliability::report(
        "hang_registry",
        serde_json::json!({
            "registry": "accepts TCP, never answers",
            "pull_timeout_ms": 3000,
            "test_pull_ms": ms(pull_took),
            "diagnose_ms": ms(diag_took),
            "status_during_hang": status_during.figures(),
            "unrelated_calls_during_hang": unrelated.figures(),
            "wrong": 0,
        }),
    );
}
