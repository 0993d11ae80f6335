//! Reliability: containerd churn (issue 13). The lab containerd (2.1, or
//! `RELIABILITY_CONTAINERD` = 1.6 / 1.7) is stopped again and
//! again, by SIGKILL (a crash) and SIGTERM (`systemctl restart`) in turn, while clients
//! call the real ctrdiagd through its gRPC API: status, images, changes and test pulls.
//! ctrdiagd must never crash, every call must get an answer or a clear `Unavailable`
//! naming containerd, and calls must succeed again once containerd answers.
//!
//! Sizes: `RELIABILITY_RESTARTS` (short 10, long 100), `RELIABILITY_CHURN_CLIENTS`
//! (short 8, long 16); `CTRDIAG_RELIABILITY=long` for the report. The figures are
//! printed as one `RELIABILITY {...}` line (run with `--nocapture`).

mod lab;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ctrdiag::api::v1 as pb;
use ctrdiag::api::v1::diagnostics_client::DiagnosticsClient;
use lab::certs::CertKind;
use lab::containerd::LabContainerd;
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind};
use lab::reliability::{self, Latencies};
use lab::wait_for;
use tonic::transport::Channel;

/// Clients that also make test pulls: no more than the default `max_concurrent_pulls`
/// (4), so a pull is never refused as over the limit.
const PULLING_CLIENTS: usize = 2;

/// What one call got while containerd came and went.
enum Answer {
    /// A full answer from a containerd that was up.
    Up,
    /// An answer (or `Unavailable`) that says containerd cannot be reached.
    Down,
    /// Anything else: a crash, a transport error, a code or message that misleads.
    Wrong(String),
}

#[derive(Default)]
struct Tally {
    up: AtomicU64,
    down: AtomicU64,
    wrong: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn record(&self, answer: Answer) {
        match answer {
            Answer::Up => self.up.fetch_add(1, Ordering::SeqCst),
            Answer::Down => self.down.fetch_add(1, Ordering::SeqCst),
            Answer::Wrong(what) => {
                self.wrong.lock().unwrap().push(what);
                0
            }
        };
    }

    fn wrong(&self) -> Vec<String> {
        self.wrong.lock().unwrap().clone()
    }
}

/// containerd down (or still starting), said clearly: the message names containerd and
/// what to check or do.
fn says_containerd_is_down(message: &str) -> bool {
    message.contains("containerd")
        && (message.contains("running")
            || message.contains("answer")
            || message.contains("is starting"))
}

fn unavailable_or_wrong(rpc: &str, status: &tonic::Status) -> Answer {
    if status.code() == tonic::Code::Unavailable && says_containerd_is_down(status.message()) {
        Answer::Down
    } else {
        Answer::Wrong(format!("{rpc}: {:?} {:?}", status.code(), status.message()))
    }
}

/// One call of the `n`-th kind, classified.
async fn call(client: &mut DiagnosticsClient<Channel>, n: usize, image: &str) -> Answer {
    match n {
        0 => match client.get_status(pb::GetStatusRequest {}).await {
            Ok(r) => {
                let c = r.into_inner().containerd.unwrap_or_default();
                if c.reachable && c.cri_ready {
                    Answer::Up
                } else if says_containerd_is_down(&c.error) {
                    Answer::Down
                } else {
                    Answer::Wrong(format!("GetStatus: containerd not usable but {c:?}"))
                }
            }
            Err(s) => Answer::Wrong(format!("GetStatus: {:?} {:?}", s.code(), s.message())),
        },
        1 => match client.list_images(pb::ListImagesRequest::default()).await {
            Ok(_) => Answer::Up,
            Err(s) => unavailable_or_wrong("ListImages", &s),
        },
        2 => match client.list_changes(pb::ListChangesRequest {}).await {
            Ok(r) if r.get_ref().changes.is_empty() => Answer::Up,
            Ok(r) => Answer::Wrong(format!("ListChanges: unexpected changes {:?}", r.get_ref())),
            Err(s) => Answer::Wrong(format!("ListChanges: {:?} {:?}", s.code(), s.message())),
        },
        _ => {
            let req = pb::TestPullRequest {
                image: image.to_string(),
                keep: false,
            };
            match client.test_pull(req).await {
                Ok(r) if r.get_ref().ok => Answer::Up,
                Ok(r)
                    if r.get_ref().cause == "containerd_unreachable"
                        && says_containerd_is_down(&r.get_ref().message) =>
                {
                    Answer::Down
                }
                Ok(r) => Answer::Wrong(format!("TestPull failed: {:?}", r.get_ref())),
                Err(s) => unavailable_or_wrong("TestPull", &s),
            }
        }
    }
}

/// Whether a fresh round of calls through ctrdiagd works: images listed and status
/// saying containerd and CRI answer.
async fn calls_succeed(client: &mut DiagnosticsClient<Channel>) -> bool {
    let images = client.list_images(pb::ListImagesRequest::default()).await;
    let status = client.get_status(pb::GetStatusRequest {}).await;
    images.is_ok()
        && status.is_ok_and(|s| {
            let c = s.into_inner().containerd.unwrap_or_default();
            c.reachable && c.cri_ready
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrdiagd_survives_containerd_restarts_and_kills_under_calls() {
    let restarts = reliability::size("RELIABILITY_RESTARTS", 10, 100);
    let clients = reliability::size("RELIABILITY_CHURN_CLIENTS", 8, 16);
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let version = reliability::containerd_version();
    let mut ctr = LabContainerd::start(version).await;
    ctr.trust_registry_ca(&registry);
    let mut daemon = Daemon::start(&ctr).await;
    let daemon_pid = daemon.pid();
    let image = registry.image_ref();
    let before = daemon
        .api()
        .await
        .list_images(pb::ListImagesRequest::default())
        .await;
    let images_before = before.expect("images before the churn").into_inner().images;

    let tally = Arc::new(Tally::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client = daemon.api().await;
        let (tally, stop, image) = (Arc::clone(&tally), Arc::clone(&stop), image.clone());
        let kinds = if c < PULLING_CLIENTS { 4 } else { 3 };
        tasks.push(tokio::spawn(async move {
            let mut n = c;
            while !stop.load(Ordering::SeqCst) {
                tally.record(call(&mut client, n % kinds, &image).await);
                n += 1;
            }
        }));
    }

    let probe = daemon.api().await;
    let mut recovery = Latencies::default();
    let (mut kills, mut terms) = (0, 0);
    let started = Instant::now();
    for round in 0..restarts {
        if round % 2 == 0 {
            ctr.kill();
            kills += 1;
        } else {
            ctr.terminate();
            terms += 1;
        }
        let seen = tally.down.load(Ordering::SeqCst);
        wait_for(
            "a call to be told containerd is down",
            Duration::from_secs(30),
            || {
                let tally = Arc::clone(&tally);
                async move { (tally.down.load(Ordering::SeqCst) > seen).then_some(()) }
            },
        )
        .await;
        ctr.start_again().await;
        // containerd answers its Version and CRI Status now: from here, through ctrdiagd.
        let answering = Instant::now();
        wait_for(
            &format!("round {round}: calls through ctrdiagd to succeed once containerd answers"),
            Duration::from_secs(10),
            || {
                let mut probe = probe.clone();
                async move { calls_succeed(&mut probe).await.then_some(()) }
            },
        )
        .await;
        recovery.push(answering.elapsed());
        daemon.assert_running();
    }
    let churn_time = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.expect("client task");
    }

    daemon.assert_running();
    assert_eq!(daemon.pid(), daemon_pid, "ctrdiagd was never restarted");
    let log = daemon.all_logs();
    assert!(!log.contains("panicked"), "ctrdiagd panicked:\n{log}");
    let wrong = tally.wrong();
    let after = probe
        .clone()
        .list_images(pb::ListImagesRequest::default())
        .await;
    let images_after = after.expect("images after the churn").into_inner().images;
    let names = |images: &[pb::Image]| {
        let mut n: Vec<String> = images.iter().map(|i| i.name.clone()).collect();
        n.sort();
        n
    };
    let left_behind: Vec<String> = names(&images_after)
        .into_iter()
        .filter(|n| !names(&images_before).contains(n))
        .collect();
    reliability::report(
        "churn",
        serde_json::json!({
            "containerd": version.expected_version_prefix(),
            "restarts": restarts,
            "sigkill": kills,
            "sigterm": terms,
            "clients": clients,
            "seconds": churn_time.as_secs_f64().round(),
            "calls": tally.up.load(Ordering::SeqCst) + tally.down.load(Ordering::SeqCst) + wrong.len() as u64,
            "answered_up": tally.up.load(Ordering::SeqCst),
            "answered_unavailable": tally.down.load(Ordering::SeqCst),
            "wrong": wrong.len(),
            "daemon_crashes": 0,
            "recovery_after_containerd_answers": recovery.figures(),
            "recoveries_over_1s": recovery.count_over(Duration::from_secs(1)),
            "test_pull_images_left_behind": left_behind.len(),
        }),
    );
    assert!(
        wrong.is_empty(),
        "{} calls got a wrong answer, e.g. {:#?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
    assert!(
        tally.up.load(Ordering::SeqCst) > 0,
        "no call ever saw containerd up"
    );
    assert_eq!(
        left_behind,
        Vec::<String>::new(),
        "test pulls left images behind"
    );
}
