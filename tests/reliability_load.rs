//! Reliability: load (issue 13). Many concurrent clients, each on a connection of its
//! own, call the real ctrdiagd through its gRPC API (status, images, changes) while test
//! pulls run within `max_concurrent_pulls`: no call may fail. Then a burst of test pulls
//! beyond the limit (against a registry that never answers, so the admitted ones hold
//! their slots): exactly the excess is refused with `ResourceExhausted`, and status keeps
//! answering throughout. The daemon's resident memory is taken before and after each
//! round: repeated rounds must not make it grow.
//!
//! Sizes: `RELIABILITY_CLIENTS` (short 50, long 200), `RELIABILITY_CALLS` per round
//! (short 2,000, long 20,000), `RELIABILITY_ROUNDS` (short 2, long 3),
//! `RELIABILITY_PULLS` per round (short 6, long 40), `RELIABILITY_BURST` pulls (short
//! 12, long 40); `CTRDIAG_RELIABILITY=long` for the report. Latencies are figures for
//! the report, not assertions. The figures are printed as one `RELIABILITY {...}` line
//! (run with `--nocapture`).

mod lab;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ctrdiag::api::v1 as pb;
use ctrdiag::api::v1::diagnostics_client::DiagnosticsClient;
use lab::certs::CertKind;
use lab::containerd::{LabContainerd, Version};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind, SilentRegistry};
use lab::reliability::{self, Latencies};
use tonic::transport::Channel;

/// The daemon's default `max_concurrent_pulls`.
const PULL_LIMIT: usize = 4;
/// Clients making test pulls during the load: within the limit.
const PULLERS: usize = 2;
/// Generous bound on RSS growth between the first and the last round.
const RSS_GROWTH_BOUND_KIB: u64 = 16 * 1024;

const KINDS: [&str; 3] = ["status", "images", "changes"];

/// One read call of kind `k`; `Err` says what was wrong with its answer.
async fn read_call(client: &mut DiagnosticsClient<Channel>, k: usize) -> Result<(), String> {
    match k {
        0 => {
            let s = client
                .get_status(pb::GetStatusRequest {})
                .await
                .map_err(|s| format!("GetStatus: {:?} {}", s.code(), s.message()))?;
            let c = s.into_inner().containerd.unwrap_or_default();
            if c.reachable && c.cri_ready {
                Ok(())
            } else {
                Err(format!("GetStatus: containerd not usable: {c:?}"))
            }
        }
        1 => {
            let i = client
                .list_images(pb::ListImagesRequest::default())
                .await
                .map_err(|s| format!("ListImages: {:?} {}", s.code(), s.message()))?;
            if i.get_ref().images.is_empty() {
                Err("ListImages: the kept image is not listed".into())
            } else {
                Ok(())
            }
        }
        _ => client
            .list_changes(pb::ListChangesRequest {})
            .await
            .map(|_| ())
            .map_err(|s| format!("ListChanges: {:?} {}", s.code(), s.message())),
    }
}

async fn test_pull(client: &mut DiagnosticsClient<Channel>, image: &str) -> Result<(), String> {
    let req = pb::TestPullRequest {
        image: image.to_string(),
        keep: false,
    };
    match client.test_pull(req).await {
        Ok(r) if r.get_ref().ok && r.get_ref().removed_after => Ok(()),
        Ok(r) => Err(format!("TestPull: {:?}", r.get_ref())),
        Err(s) => Err(format!("TestPull: {:?} {}", s.code(), s.message())),
    }
}

/// What one round of load measured.
#[derive(Default)]
struct Round {
    latencies: [Latencies; 3],
    pulls: Latencies,
    errors: Vec<String>,
    wall: Duration,
}

/// `clients` connections share `calls` read calls; `PULLERS` more make `pulls` test
/// pulls of `image`. Everyone connects first and starts together.
async fn load_round(
    daemon: &Daemon,
    clients: usize,
    calls: usize,
    pulls: usize,
    image: &str,
) -> Round {
    let start = Arc::new(tokio::sync::Barrier::new(clients + PULLERS + 1));
    let mut readers = Vec::new();
    for c in 0..clients {
        let mut client = daemon.api().await;
        let share = calls / clients + usize::from(c < calls % clients);
        let start = Arc::clone(&start);
        readers.push(tokio::spawn(async move {
            start.wait().await;
            let mut out: ([Latencies; 3], Vec<String>) = Default::default();
            for i in 0..share {
                let k = (c + i) % KINDS.len();
                let t = Instant::now();
                let result = read_call(&mut client, k).await;
                out.0[k].push(t.elapsed());
                if let Err(e) = result {
                    out.1.push(e);
                }
            }
            out
        }));
    }
    let mut pullers = Vec::new();
    for p in 0..PULLERS {
        let mut client = daemon.api().await;
        let share = pulls / PULLERS + usize::from(p < pulls % PULLERS);
        let (start, image) = (Arc::clone(&start), image.to_string());
        pullers.push(tokio::spawn(async move {
            start.wait().await;
            let mut out: (Latencies, Vec<String>) = Default::default();
            for _ in 0..share {
                let t = Instant::now();
                let result = test_pull(&mut client, &image).await;
                out.0.push(t.elapsed());
                if let Err(e) = result {
                    out.1.push(e);
                }
            }
            out
        }));
    }
    start.wait().await;
    let began = Instant::now();
    let mut round = Round::default();
    for r in readers {
        let (latencies, errors) = r.await.expect("reader task");
        for (all, mine) in round.latencies.iter_mut().zip(latencies) {
            all.extend(mine);
        }
        round.errors.extend(errors);
    }
    for p in pullers {
        let (latencies, errors) = p.await.expect("puller task");
        round.pulls.extend(latencies);
        round.errors.extend(errors);
    }
    round.wall = began.elapsed();
    round
}

/// What the burst of test pulls beyond the limit got.
struct Burst {
    held: usize,
    refused: usize,
    wrong: Vec<String>,
    status: Latencies,
}

/// Fires `n` test pulls at once at a registry that never answers, and calls status
/// until they have all ended.
async fn burst(daemon: &Daemon, n: usize) -> Burst {
    let silent = SilentRegistry::start().await;
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(daemon.api().await);
    }
    let done = Arc::new(AtomicBool::new(false));
    let mut status_client = daemon.api().await;
    let status_done = Arc::clone(&done);
    let status = tokio::spawn(async move {
        let mut answered = Latencies::default();
        let mut wrong = Vec::new();
        while !status_done.load(Ordering::SeqCst) {
            let t = Instant::now();
            if let Err(e) = read_call(&mut status_client, 0).await {
                wrong.push(e);
            }
            answered.push(t.elapsed());
        }
        (answered, wrong)
    });
    let pulls = clients.into_iter().enumerate().map(|(i, mut client)| {
        // Distinct names: one name's pulls are serialised inside the daemon.
        let image = silent.image_ref(&format!("burst/app:{i}"));
        async move {
            client
                .test_pull(pb::TestPullRequest { image, keep: false })
                .await
        }
    });
    let results = futures_join_all(pulls).await;
    done.store(true, Ordering::SeqCst);
    let (status, mut wrong) = status.await.expect("status task");
    let (mut held, mut refused) = (0, 0);
    for r in results {
        match r {
            Ok(p) if !p.get_ref().ok && p.get_ref().cause == "timeout" => held += 1,
            Err(s)
                if s.code() == tonic::Code::ResourceExhausted
                    && s.message().contains("max_concurrent_pulls")
                    && s.message().contains("try again") =>
            {
                refused += 1
            }
            other => wrong.push(format!("burst TestPull: {other:?}")),
        }
    }
    Burst {
        held,
        refused,
        wrong,
        status,
    }
}

/// Awaits every future at once (the lab has no `futures` crate).
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_within_the_limits_has_no_errors_and_a_burst_beyond_them_is_refused_cleanly() {
    let clients = reliability::size("RELIABILITY_CLIENTS", 50, 200);
    let calls = reliability::size("RELIABILITY_CALLS", 2_000, 20_000);
    let rounds = reliability::size("RELIABILITY_ROUNDS", 2, 3);
    let pulls = reliability::size("RELIABILITY_PULLS", 6, 40);
    let burst_size = reliability::size("RELIABILITY_BURST", 12, 40).max(PULL_LIMIT + 1);

    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    ctr.trust_registry_ca(&registry);
    let mut daemon = Daemon::start_with(&ctr, "pull_timeout_secs = 5\n").await;
    // One image on the node, so images has something to list.
    let kept = daemon
        .api()
        .await
        .test_pull(pb::TestPullRequest {
            image: registry.image_ref(),
            keep: true,
        })
        .await
        .expect("keep one image");
    assert!(kept.get_ref().ok, "{kept:?}");
    let pull_image = registry.image_ref_tagged("latest");

    let rss_start = daemon.rss_kib();
    let mut rss_after = Vec::new();
    let mut latencies: [Latencies; 3] = Default::default();
    let mut pull_latencies = Latencies::default();
    let mut errors = Vec::new();
    let mut per_round = Vec::new();
    for _ in 0..rounds {
        let round = load_round(&daemon, clients, calls, pulls, &pull_image).await;
        rss_after.push(daemon.rss_kib());
        let n: usize = round.latencies.iter().map(Latencies::len).sum();
        per_round.push(serde_json::json!({
            "calls": n,
            "test_pulls": round.pulls.len(),
            "errors": round.errors.len(),
            "seconds": (round.wall.as_secs_f64() * 100.0).round() / 100.0,
            "calls_per_second": (n as f64 / round.wall.as_secs_f64()).round(),
        }));
        for (all, mine) in latencies.iter_mut().zip(round.latencies) {
            all.extend(mine);
        }
        pull_latencies.extend(round.pulls);
        errors.extend(round.errors);
    }
    let burst = burst(&daemon, burst_size).await;
    let rss_end = daemon.rss_kib();

    daemon.assert_running();
    let log = daemon.log();
    assert!(!log.contains("panicked"), "ctrdiagd panicked:\n{log}");
    let mut all_reads = Latencies::default();
    let mut by_kind = serde_json::Map::new();
    for (kind, l) in KINDS.iter().zip(&latencies) {
        by_kind.insert(kind.to_string(), l.figures());
        all_reads.extend(l.clone());
    }
    let growth = rss_after.last().unwrap().saturating_sub(rss_after[0]);
    reliability::report(
        "load",
        serde_json::json!({
            "containerd": "2.1.9",
            "clients": clients,
            "calls_per_round": calls,
            "rounds": per_round,
            "errors": errors.len(),
            "reads": all_reads.figures(),
            "reads_by_kind": by_kind,
            "test_pulls": pull_latencies.figures(),
            "max_concurrent_pulls": PULL_LIMIT,
            "burst": {
                "pulls": burst_size,
                "admitted_and_timed_out": burst.held,
                "refused_resource_exhausted": burst.refused,
                "wrong": burst.wrong.len(),
                "status_during_burst": burst.status.figures(),
            },
            "rss_kib": {
                "start": rss_start,
                "after_each_round": rss_after,
                "after_burst": rss_end,
                "growth_first_to_last_round": growth,
            },
        }),
    );
    assert!(
        errors.is_empty(),
        "{} calls failed under load, e.g. {:#?}",
        errors.len(),
        &errors[..errors.len().min(10)]
    );
    assert!(burst.wrong.is_empty(), "{:#?}", burst.wrong);
    assert_eq!(
        (burst.held, burst.refused),
        (PULL_LIMIT, burst_size - PULL_LIMIT),
        "the limit admits exactly max_concurrent_pulls pulls and refuses the rest"
    );
    assert!(
        !burst.status.is_empty(),
        "status answered while the burst held every pull slot"
    );
    if rounds > 1 {
        assert!(
            growth <= RSS_GROWTH_BOUND_KIB,
            "ctrdiagd's RSS grew by {growth} KiB from the first to the last round: {rss_after:?}"
        );
    }
}
