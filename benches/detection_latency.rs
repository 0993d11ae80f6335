//! Detection latency: from a line reaching containerd's log to its event on the
//! `ctrdiag watch` stream, while the log grows at 1,000 lines/s (one in twenty a failed
//! pull, the rest the info lines a busy node writes). The peer, in the same run on the
//! same file: `tail -F | grep --line-buffered`, the operator's way of watching for the
//! same lines (it finds them; it does not parse, classify or fold them). Also the
//! daemon's RSS and CPU while following, and its CPU when the log is idle.
//!
//! `cargo bench --bench detection_latency` follows for 20 s; under `cargo test` (no
//! `--bench` argument) for 1 s as a smoke test.

#[path = "../tests/lab/mod.rs"]
#[macro_use]
mod lab;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lab::containerd::{LabContainerd, Version};
use lab::daemon::Daemon;
use lab::process::{cpu_time, rss_kib};
use tokio::io::AsyncBufReadExt;

const LINES_PER_SEC: u64 = 1000;
const FAILURE_EVERY: u64 = 20;
/// The image of the line that tells the bench its peer is reading.
const MARKER: &str = "bench-ready-marker";

type Written = Arc<Mutex<HashMap<u64, Instant>>>;

fn failed_line(n: u64) -> String {
    let image = format!("registry.ctrdiag.test:5443/bench/app:{n}");
    format!(
        "time=\"2026-12-02T10:00:00.000000000Z\" level=error msg=\"PullImage \\\"{image}\\\" failed\" error=\"rpc error: code = Unknown desc = failed to pull and unpack image \\\"{image}\\\": failed to resolve image: failed to do request: Head \\\"https://registry.ctrdiag.test:5443/v2/bench/app/manifests/{n}\\\": tls: failed to verify certificate: x509: certificate signed by unknown authority\"\n"
    )
}

fn info_line(n: u64) -> String {
    format!(
        "time=\"2026-12-02T10:00:00.000000000Z\" level=info msg=\"ImageCreate event name:\\\"sha256:{n:064x}\\\" labels:{{key:\\\"io.cri-containerd.image\\\" value:\\\"managed\\\"}}\"\n"
    )
}

/// The tag number of a bench image in `text`, if any.
fn tag_in(text: &str) -> Option<u64> {
    let at = text.find("bench/app:")? + "bench/app:".len();
    let digits: String = text[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Writes the log at [`LINES_PER_SEC`] for `run`, in 10 ms ticks; returns the failures.
async fn write_log(path: std::path::PathBuf, run: Duration, written: Written) -> u64 {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("log");
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    let per_tick = LINES_PER_SEC / 100;
    let started = Instant::now();
    let (mut n, mut failures) = (0u64, 0u64);
    while started.elapsed() < run {
        tick.tick().await;
        for _ in 0..per_tick {
            n += 1;
            if n % FAILURE_EVERY == 0 {
                failures += 1;
                let line = failed_line(n);
                written.lock().unwrap().insert(n, Instant::now());
                f.write_all(line.as_bytes()).expect("write");
            } else {
                f.write_all(info_line(n).as_bytes()).expect("write");
            }
        }
    }
    failures
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn report(name: &str, mut l: Vec<Duration>, expected: u64) -> Duration {
    l.sort();
    let (p50, p99) = (percentile(&l, 0.5), percentile(&l, 0.99));
    println!(
        "{name:<34} {:>5}/{expected:<5} p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
        l.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        l.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    p99
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (run, idle) = if full {
        (Duration::from_secs(20), Duration::from_secs(10))
    } else {
        (Duration::from_secs(1), Duration::from_secs(1))
    };
    let ctr = LabContainerd::start(Version::V2_1).await;
    let dir = lab::scratch_dir("detection-bench-");
    let log = dir.path().join("containerd.log");
    std::fs::write(&log, "").unwrap();
    let daemon =
        Daemon::start_with(&ctr, &format!("containerd_log = \"{}\"\n", log.display())).await;
    lab::wait_for(
        "the log to be followed",
        Duration::from_secs(10),
        || async {
            let s = daemon.cli(&["-o", "json", "status"]).await.json();
            (s["detection"]["following"] == true).then_some(())
        },
    )
    .await;
    let pid = daemon.pid();

    let cpu0 = cpu_time(pid);
    tokio::time::sleep(idle).await;
    let idle_cpu = (cpu_time(pid) - cpu0).as_secs_f64() / idle.as_secs_f64();
    let idle_rss = rss_kib(pid);

    let written: Written = Arc::default();
    let mut watch = daemon.watch(&[]).await;
    let ours = {
        let written = Arc::clone(&written);
        tokio::spawn(async move {
            let mut got = Vec::new();
            let end = Instant::now() + run + Duration::from_secs(5);
            while Instant::now() < end {
                let left = end.saturating_duration_since(Instant::now());
                let Ok(e) =
                    tokio::time::timeout(left, watch.next_json(left + Duration::from_secs(1)))
                        .await
                else {
                    break;
                };
                if let Some(n) = e["image"].as_str().and_then(tag_in)
                    && let Some(at) = written.lock().unwrap().get(&n)
                {
                    got.push(at.elapsed());
                }
                if got.len() as u64 == run.as_secs() * LINES_PER_SEC / FAILURE_EVERY {
                    break;
                }
            }
            got
        })
    };
    let (peer_ready_tx, mut peer_ready) = tokio::sync::oneshot::channel();
    let peer = {
        let written = Arc::clone(&written);
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "exec tail -F -n0 '{}' | grep --line-buffered 'PullImage.*failed'",
                log.display()
            ))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            // Its own process group, so the whole pipeline (tail too) is stopped at the end.
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("tail | grep");
        let group = nix::unistd::Pid::from_raw(child.id().expect("pid") as i32);
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            let _child = child;
            // tail opens the file in its own time: measuring starts once it has shown
            // the marker line.
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains(MARKER) {
                    let _ = peer_ready_tx.send(());
                    break;
                }
            }
            let mut got = Vec::new();
            let end = tokio::time::Instant::now() + run + Duration::from_secs(5);
            while let Ok(Ok(Some(line))) = tokio::time::timeout_at(end, lines.next_line()).await {
                if let Some(at) =
                    tag_in(&line).and_then(|n| written.lock().unwrap().get(&n).copied())
                {
                    got.push(at.elapsed());
                }
                if got.len() as u64 == run.as_secs() * LINES_PER_SEC / FAILURE_EVERY {
                    break;
                }
            }
            let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
            got
        })
    };
    let marker = format!(
        "level=error msg=\"PullImage \\\"{MARKER}\\\" failed\" error=\"not a bench line\"\n"
    );
    lab::wait_for(
        "tail | grep to show the marker",
        Duration::from_secs(10),
        || {
            std::fs::OpenOptions::new()
                .append(true)
                .open(&log)
                .and_then(|mut f| f.write_all(marker.as_bytes()))
                .expect("write marker");
            let ready = peer_ready.try_recv().is_ok();
            async move { ready.then_some(()) }
        },
    )
    .await;
    let cpu1 = cpu_time(pid);
    let writing = Instant::now();
    let failures = write_log(log.clone(), run, Arc::clone(&written)).await;
    let busy_cpu = (cpu_time(pid) - cpu1).as_secs_f64() / writing.elapsed().as_secs_f64();
    let busy_rss = rss_kib(pid);
    let (ours, peer) = (ours.await.unwrap(), peer.await.unwrap());

    println!(
        "\ndetection latency, {} lines/s for {:?} ({failures} failed pulls), containerd 2.1.9 log file",
        LINES_PER_SEC, run
    );
    let ours_p99 = report("ctrdiagd -> ctrdiag watch (event)", ours.clone(), failures);
    let peer_p99 = report("tail -F | grep --line-buffered", peer, failures);
    println!(
        "p99 ratio ctrdiag / tail|grep: {:.2}",
        ours_p99.as_secs_f64() / peer_p99.as_secs_f64().max(1e-6)
    );
    println!(
        "ctrdiagd RSS idle {:.1} MiB, following {:.1} MiB; CPU idle {:.2}% of a core, following {:.1}%",
        idle_rss as f64 / 1024.0,
        busy_rss as f64 / 1024.0,
        idle_cpu * 100.0,
        busy_cpu * 100.0
    );
    assert_eq!(
        ours.len() as u64,
        failures,
        "every failed pull reached the watch stream"
    );
}
