//! The real Prometheus server scrapes a lab ctrdiagd with deploy/prometheus/alerts.yaml
//! loaded: it sees the daemon up and containerd up, then containerd's crash and the
//! alert it raises, then the daemon's own end. `promtool check metrics` judges the
//! exposition as the Prometheus project's own linter.

mod lab;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use lab::containerd::{LabContainerd, Version};
use lab::daemon::Daemon;
use lab::process::ChildGuard;

/// Long enough for Prometheus to start, scrape and evaluate on a busy 2-core machine.
const WAIT: Duration = Duration::from_secs(60);

fn prometheus_binary(name: &str) -> PathBuf {
    let lab = std::env::var("CTRDIAG_LAB_DIR").unwrap_or_else(|_| "/opt/ctrdiag-lab".into());
    let path = Path::new(&lab).join("prometheus/usr/bin").join(name);
    assert!(
        path.is_file(),
        "{name} is not installed at {}: run scripts/install-deps.sh",
        path.display()
    );
    path
}

/// A Prometheus server scraping `target` every second as job `ctrdiag` (the name the
/// alerts select), evaluating the deploy/ alert rules every second.
struct Prometheus {
    address: String,
    _process: ChildGuard,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = lab::scratch_dir("prometheus-");
        let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/alerts.yaml");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: ctrdiag\n    static_configs:\n      - targets: ['{target}']\n",
                rules.display()
            ),
        )
        .unwrap();
        let address = format!("127.0.0.1:{}", lab::free_port());
        let mut cmd = Command::new(prometheus_binary("prometheus"));
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"));
        let process = ChildGuard::spawn("prometheus", cmd, &dir.path().join("prometheus.log"));
        Prometheus {
            address,
            _process: process,
            _dir: dir,
        }
    }

    /// `GET path` on Prometheus' HTTP API: its `data`, or `None` while it does not
    /// answer yet (HTTP/1.0, so the body is neither chunked nor kept open).
    async fn api(&self, path: &str) -> Option<Value> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(&self.address).await.ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: prometheus\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        let (head, body) = out.split_once("\r\n\r\n")?;
        if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
            return None;
        }
        let v: Value = serde_json::from_str(body).ok()?;
        (v["status"] == "success").then(|| v["data"].clone())
    }

    /// The value of the instant query `query` if it returns exactly one sample.
    async fn value(&self, query: &str) -> Option<String> {
        let data = self
            .api(&format!("/api/v1/query?query={}", percent_encode(query)))
            .await?;
        match data["result"].as_array()?.as_slice() {
            [one] => one["value"][1].as_str().map(str::to_string),
            _ => None,
        }
    }

    /// Waits until `query` has the single value `want`.
    async fn wait_value(&self, query: &str, want: &str) {
        lab::wait_for(&format!("{query} to be {want}"), WAIT, || async {
            (self.value(query).await.as_deref() == Some(want)).then_some(())
        })
        .await
    }

    /// The state (`pending`, `firing`) of alert `name`, if it is active.
    async fn alert_state(&self, name: &str) -> Option<String> {
        let data = self.api("/api/v1/alerts").await?;
        data["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == name)
            .and_then(|a| a["state"].as_str().map(str::to_string))
    }

    /// Waits until alert `name` is active (pending or firing).
    async fn wait_alert(&self, name: &str) -> String {
        lab::wait_for(&format!("alert {name}"), WAIT, || self.alert_state(name)).await
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn prometheus_sees_containerd_stop_and_raises_the_alert() {
    let mut ctr = LabContainerd::start(Version::V2_1).await;
    let metrics = format!("127.0.0.1:{}", lab::free_port());
    let mut daemon = Daemon::start_with(&ctr, &format!("metrics_address = \"{metrics}\"\n")).await;
    let prometheus = Prometheus::start(&metrics);

    prometheus.wait_value("up{job=\"ctrdiag\"}", "1").await;
    prometheus.wait_value("ctrdiag_containerd_up", "1").await;
    prometheus.wait_value("ctrdiag_cri_ready", "1").await;
    // Rules are evaluated (the group ran), and nothing is wrong on a healthy node.
    lab::wait_for("the rule groups to run", WAIT, || async {
        let data = prometheus.api("/api/v1/rules").await?;
        let groups = data["groups"].as_array()?;
        (groups.len() == 3
            && groups
                .iter()
                .all(|g| g["lastEvaluation"] != "0001-01-01T00:00:00Z"))
        .then_some(())
    })
    .await;
    assert_eq!(prometheus.alert_state("CtrdiagContainerdDown").await, None);
    assert_eq!(prometheus.alert_state("CtrdiagDown").await, None);

    ctr.kill();
    prometheus.wait_value("ctrdiag_containerd_up", "0").await;
    // `for: 2m` keeps it pending for the length of this test: pending is the rule's
    // expression holding, which is what this proves.
    let state = prometheus.wait_alert("CtrdiagContainerdDown").await;
    assert!(["pending", "firing"].contains(&state.as_str()), "{state}");
    // One cause, one alert: the CRI rule stays quiet while containerd is down.
    assert_eq!(prometheus.alert_state("CtrdiagCRINotReady").await, None);

    daemon.terminate();
    prometheus.wait_value("up{job=\"ctrdiag\"}", "0").await;
    prometheus.wait_alert("CtrdiagDown").await;
}

#[tokio::test]
async fn promtool_finds_no_problem_in_the_exposition() {
    let ctr = LabContainerd::start(Version::V2_1).await;
    let metrics = format!("127.0.0.1:{}", lab::free_port());
    let daemon = Daemon::start_with(&ctr, &format!("metrics_address = \"{metrics}\"\n")).await;
    // Counters with samples, not only their descriptions.
    assert_eq!(
        daemon.cli(&["pull", "registry.invalid/none:1"]).await.code,
        1
    );
    let scrape = lab::scrape(&metrics).await;
    let body = scrape.split_once("\r\n\r\n").expect("an HTTP response").1;
    assert!(body.contains("ctrdiag_test_pulls_total{"), "{body}");

    let mut child = Command::new(prometheus_binary("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // promtool 2.42 reads the exposition as the classic text format, where a
    // counter's HELP must name its `_total` samples; OpenMetrics names the family
    // without the suffix. It then reports exactly `NAME_total no help text`, and that
    // is the only complaint allowed here.
    let others: Vec<&str> = report
        .lines()
        .filter(|l| {
            let known = l
                .strip_suffix("_total no help text")
                .is_some_and(|family| body.contains(&format!("# TYPE {family} counter\n")));
            !known && !l.trim().is_empty()
        })
        .collect();
    assert!(
        others.is_empty(),
        "promtool check metrics (exit {:?}) reports:\n{report}\n{body}",
        out.status.code()
    );
    assert!(
        out.status.success() || report.contains("no help text"),
        "promtool failed without saying why: {report}"
    );
}
