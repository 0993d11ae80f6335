//! Prometheus metrics: what the daemon counts, and an HTTP endpoint serving them in
//! the text exposition format (version 0.0.4) on `GET /metrics`.
//!
//! The endpoint is a deliberately small HTTP/1.1 responder (one request per
//! connection, bounded request size, read timeout): a scrape target needs no more, and
//! a root daemon should not parse more than it must.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Longest request head accepted from a scraper.
const MAX_REQUEST: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A counter's name and its label pairs, sorted by label name.
type SeriesKey = (&'static str, Vec<(&'static str, String)>);

/// Counters with sorted label sets, so the exposition is stable.
#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<SeriesKey, u64>>,
}

/// What the exposition needs to know at scrape time (gauges).
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    pub containerd_up: bool,
    pub cri_ready: bool,
    /// Insecure settings ctrdiag turned on that are in effect, and those of them
    /// whose time to live is over.
    pub insecure_settings: u64,
    pub insecure_overdue: u64,
    /// Change records that cannot be read.
    pub damaged_changes: u64,
    /// An interrupted change could not be undone: changes are refused.
    pub recovery_pending: bool,
}

/// Most scrapes served at once; more wait for a turn.
const MAX_CONNECTIONS: usize = 16;

const HELP: &[(&str, &str, &str)] = &[
    (
        "ctrdiag_test_pulls_total",
        "counter",
        "Test pulls through CRI, by result and cause code.",
    ),
    (
        "ctrdiag_changes_total",
        "counter",
        "Changes applied to the node, by outcome (applied, rolled_back).",
    ),
    (
        "ctrdiag_diagnoses_total",
        "counter",
        "Diagnoses run, by health.",
    ),
];

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// Adds one to counter `name` with `labels`.
    pub fn inc(&self, name: &'static str, labels: &[(&'static str, &str)]) {
        let mut key: Vec<(&'static str, String)> =
            labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        key.sort();
        if let Ok(mut c) = self.counters.lock() {
            *c.entry((name, key)).or_default() += 1;
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP ctrdiag_build_info ctrdiag's version.\n# TYPE ctrdiag_build_info gauge"
        );
        let _ = writeln!(
            out,
            "ctrdiag_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        for (name, help, value) in [
            (
                "ctrdiag_containerd_up",
                "Whether containerd answers on its socket.",
                u64::from(gauges.containerd_up),
            ),
            (
                "ctrdiag_cri_ready",
                "Whether containerd's CRI plugin answers (what the kubelet needs).",
                u64::from(gauges.cri_ready),
            ),
            (
                "ctrdiag_insecure_settings",
                "Insecure registry settings (skip-verify, plain HTTP) ctrdiag turned on that are in effect.",
                gauges.insecure_settings,
            ),
            (
                "ctrdiag_insecure_settings_overdue",
                "Of those, the ones whose time to live is over (ending them failed; it is retried).",
                gauges.insecure_overdue,
            ),
            (
                "ctrdiag_damaged_changes",
                "Change records that cannot be read.",
                gauges.damaged_changes,
            ),
            (
                "ctrdiag_recovery_pending",
                "1 while an interrupted change cannot be undone and changes are refused.",
                u64::from(gauges.recovery_pending),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        let counters = self.counters.lock().map(|c| c.clone()).unwrap_or_default();
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for ((n, labels), v) in counters.iter().filter(|((n, _), _)| n == name) {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                    .collect();
                let _ = writeln!(out, "{n}{{{}}} {v}", labels.join(","));
            }
        }
        out
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `GET /metrics` on `listener` forever; `gauges` is asked at each scrape. At
/// most [`MAX_CONNECTIONS`] scrapes run at once, and a failing `accept` (out of file
/// descriptors, say) is retried after a growing pause instead of spinning.
pub async fn serve<F, Fut>(listener: TcpListener, metrics: Arc<Metrics>, gauges: F)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Gauges> + Send,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = Duration::from_millis(10);
    loop {
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let mut stream = match listener.accept().await {
            Ok((stream, _)) => {
                backoff = Duration::from_millis(10);
                stream
            }
            Err(e) => {
                tracing::warn!(error = %e, pause_ms = backoff.as_millis() as u64, "metrics listener cannot accept");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        let gauges = gauges.clone();
        tokio::spawn(async move {
            let _slot = slot;
            answer(&mut stream, &metrics, gauges).await;
        });
    }
}

/// Reads one request head (bounded, with a timeout) and answers it.
async fn answer<F, Fut>(stream: &mut tokio::net::TcpStream, metrics: &Metrics, gauges: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Gauges>,
{
    let mut buf = Vec::with_capacity(1024);
    let head = tokio::time::timeout(READ_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < MAX_REQUEST {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        Some(())
    })
    .await;
    if !matches!(head, Ok(Some(()))) {
        return;
    }
    let line = buf.split(|b| *b == b'\r').next().unwrap_or_default();
    let (status, ctype, body) = if line.starts_with(b"GET /metrics ") || line == b"GET /metrics" {
        (
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            metrics.render(gauges().await),
        )
    } else {
        (
            "404 Not Found",
            "text/plain",
            "only /metrics is served here\n".to_string(),
        )
    };
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(resp.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_is_stable_and_escaped() {
        let m = Metrics::new();
        m.inc(
            "ctrdiag_test_pulls_total",
            &[("result", "failed"), ("cause", "tls_expired")],
        );
        m.inc(
            "ctrdiag_test_pulls_total",
            &[("cause", "tls_expired"), ("result", "failed")],
        );
        m.inc("ctrdiag_changes_total", &[("outcome", "a\"b")]);
        let text = m.render(Gauges {
            containerd_up: true,
            cri_ready: false,
            insecure_settings: 2,
            insecure_overdue: 1,
            ..Gauges::default()
        });
        assert!(text.contains("ctrdiag_insecure_settings 2\n"), "{text}");
        assert!(
            text.contains("ctrdiag_insecure_settings_overdue 1\n"),
            "{text}"
        );
        assert!(text.contains("ctrdiag_recovery_pending 0\n"), "{text}");
        assert!(
            text.contains("ctrdiag_test_pulls_total{cause=\"tls_expired\",result=\"failed\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("ctrdiag_changes_total{outcome=\"a\\\"b\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("ctrdiag_containerd_up 1\n"), "{text}");
        assert!(text.contains("ctrdiag_cri_ready 0\n"), "{text}");
        assert!(
            text.contains("# TYPE ctrdiag_test_pulls_total counter\n"),
            "{text}"
        );
    }
}
