//! Prometheus metrics: each one a typed handle declared once in [`Metrics`] and
//! registered with the Prometheus project's Rust client (`prometheus-client`), and an
//! HTTP endpoint serving them in the OpenMetrics text format on `GET /metrics`.
//! Callers record through typed methods (`test_pull`, `diagnosis`, `change`): a metric
//! name cannot be mistyped at a call site.
//!
//! The endpoint is a deliberately small HTTP/1.1 responder (one request per
//! connection, bounded request size, read timeout): a scrape target needs no more, and
//! a root daemon should not parse more than it must.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::diagnose::CauseCode;

/// Longest request head accepted from a scraper.
const MAX_REQUEST: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// What the exposition is, as a scraper's content negotiation expects it.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PullLabels {
    cause: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HealthyLabels {
    healthy: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    version: String,
}

/// Every metric ctrdiagd exposes, registered once.
pub struct Metrics {
    registry: Registry,
    test_pulls: Family<PullLabels, Counter>,
    diagnoses: Family<HealthyLabels, Counter>,
    changes: Family<OutcomeLabels, Counter>,
    containerd_up: Gauge,
    cri_ready: Gauge,
    insecure_settings: Gauge,
    insecure_overdue: Gauge,
    damaged_changes: Gauge,
    recovery_pending: Gauge,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::default();
        let build_info = Family::<VersionLabels, Gauge>::default();
        build_info
            .get_or_create(&VersionLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        registry.register("ctrdiag_build_info", "ctrdiag's version.", build_info);
        let m = Metrics {
            test_pulls: Family::default(),
            diagnoses: Family::default(),
            changes: Family::default(),
            containerd_up: Gauge::default(),
            cri_ready: Gauge::default(),
            insecure_settings: Gauge::default(),
            insecure_overdue: Gauge::default(),
            damaged_changes: Gauge::default(),
            recovery_pending: Gauge::default(),
            registry,
        };
        let mut registry = m.registry;
        registry.register(
            "ctrdiag_test_pulls",
            "Test pulls through CRI, by result and cause code.",
            m.test_pulls.clone(),
        );
        registry.register(
            "ctrdiag_diagnoses",
            "Diagnoses run, by health.",
            m.diagnoses.clone(),
        );
        registry.register(
            "ctrdiag_changes",
            "Changes applied to the node, by outcome (applied, rolled_back).",
            m.changes.clone(),
        );
        for (name, help, gauge) in [
            (
                "ctrdiag_containerd_up",
                "Whether containerd answers on its socket.",
                &m.containerd_up,
            ),
            (
                "ctrdiag_cri_ready",
                "Whether containerd's CRI plugin answers (what the kubelet needs).",
                &m.cri_ready,
            ),
            (
                "ctrdiag_insecure_settings",
                "Insecure registry settings (skip-verify, plain HTTP) ctrdiag turned on that are in effect.",
                &m.insecure_settings,
            ),
            (
                "ctrdiag_insecure_settings_overdue",
                "Of those, the ones whose time to live is over (ending them failed; it is retried).",
                &m.insecure_overdue,
            ),
            (
                "ctrdiag_damaged_changes",
                "Change records that cannot be read.",
                &m.damaged_changes,
            ),
            (
                "ctrdiag_recovery_pending",
                "1 while an interrupted change cannot be undone and changes are refused.",
                &m.recovery_pending,
            ),
        ] {
            registry.register(name, help, gauge.clone());
        }
        Arc::new(Metrics { registry, ..m })
    }

    /// A test pull ended: ok, or failed with `cause`.
    pub fn test_pull(&self, cause: Option<CauseCode>) {
        self.test_pulls
            .get_or_create(&PullLabels {
                cause: cause.map(|c| c.to_string()).unwrap_or_default(),
                result: if cause.is_none() { "ok" } else { "failed" }.into(),
            })
            .inc();
    }

    /// A diagnosis ended, healthy or not.
    pub fn diagnosis(&self, healthy: bool) {
        self.diagnoses
            .get_or_create(&HealthyLabels {
                healthy: healthy.to_string(),
            })
            .inc();
    }

    /// A change ended: applied, or rolled back (undone during its apply).
    pub fn change(&self, applied: bool) {
        self.changes
            .get_or_create(&OutcomeLabels {
                outcome: if applied { "applied" } else { "rolled_back" }.into(),
            })
            .inc();
    }

    /// The exposition of every metric, with the gauges as `gauges` says.
    pub fn render(&self, gauges: Gauges) -> String {
        let set = |g: &Gauge, v: u64| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        set(&self.containerd_up, u64::from(gauges.containerd_up));
        set(&self.cri_ready, u64::from(gauges.cri_ready));
        set(&self.insecure_settings, gauges.insecure_settings);
        set(&self.insecure_overdue, gauges.insecure_overdue);
        set(&self.damaged_changes, gauges.damaged_changes);
        set(&self.recovery_pending, u64::from(gauges.recovery_pending));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
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
        ("200 OK", CONTENT_TYPE, metrics.render(gauges().await))
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
    fn the_exposition_names_every_metric_with_its_labels() {
        let m = Metrics::new();
        m.test_pull(Some(CauseCode::TlsExpired));
        m.test_pull(Some(CauseCode::TlsExpired));
        m.test_pull(None);
        m.change(false);
        m.diagnosis(true);
        let text = m.render(Gauges {
            containerd_up: true,
            cri_ready: false,
            insecure_settings: 2,
            insecure_overdue: 1,
            ..Gauges::default()
        });
        for line in [
            "ctrdiag_test_pulls_total{cause=\"tls_expired\",result=\"failed\"} 2\n",
            "ctrdiag_test_pulls_total{cause=\"\",result=\"ok\"} 1\n",
            "ctrdiag_changes_total{outcome=\"rolled_back\"} 1\n",
            "ctrdiag_diagnoses_total{healthy=\"true\"} 1\n",
            "ctrdiag_containerd_up 1\n",
            "ctrdiag_cri_ready 0\n",
            "ctrdiag_insecure_settings 2\n",
            "ctrdiag_insecure_settings_overdue 1\n",
            "ctrdiag_recovery_pending 0\n",
            "# TYPE ctrdiag_test_pulls counter\n",
            "# EOF\n",
        ] {
            assert!(text.contains(line), "{line:?} missing:\n{text}");
        }
        assert!(text.contains("ctrdiag_build_info{version=\""), "{text}");
    }
}
