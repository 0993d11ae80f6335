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
#[derive(Debug, Clone, Default)]
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
    /// Detection's view: live problems, certificates, probes, the log follower.
    pub detection: DetectionGauges,
}

/// Detection's gauges, per registry.
#[derive(Debug, Clone, Default)]
pub struct DetectionGauges {
    /// The kind of log followed (`journal`, `file`) and whether it is followed now;
    /// `None` when detection from the log is off.
    pub log_follower: Option<(&'static str, bool)>,
    /// Live problems: registry, area (`pulls`, `certificate`), cause.
    pub problems: Vec<(String, &'static str, CauseCode)>,
    /// The registry certificate's `notAfter`, Unix seconds.
    pub certificate_expiry: Vec<(String, i64)>,
    /// The last probe of the registry that worked, Unix seconds.
    pub last_successful_probe: Vec<(String, i64)>,
}

/// At most this many registries get a label of their own; the rest share
/// [`OTHER_REGISTRY`], so a node pulling from many registries cannot blow up a
/// Prometheus server's series count.
pub const MAX_REGISTRIES: usize = 64;
pub const OTHER_REGISTRY: &str = "other";

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
struct DetectedLabels {
    kind: String,
    cause: String,
    registry: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProblemLabels {
    registry: String,
    area: String,
    cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    registry: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RegistryLabels {
    registry: String,
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
    detected: Family<DetectedLabels, Counter>,
    probes: Family<ProbeLabels, Counter>,
    log_lines: Counter,
    log_follower_up: Family<SourceLabels, Gauge>,
    registry_problem: Family<ProblemLabels, Gauge>,
    certificate_expiry: Family<RegistryLabels, Gauge>,
    last_successful_probe: Family<RegistryLabels, Gauge>,
    /// Registries that have a label of their own (at most [`MAX_REGISTRIES`]).
    registries: std::sync::Mutex<std::collections::BTreeSet<String>>,
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
        registry.register("ctrdiag_build_info", "ctrdiag's version", build_info);
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
            detected: Family::default(),
            probes: Family::default(),
            log_lines: Counter::default(),
            log_follower_up: Family::default(),
            registry_problem: Family::default(),
            certificate_expiry: Family::default(),
            last_successful_probe: Family::default(),
            registries: Default::default(),
            registry,
        };
        let mut registry = m.registry;
        registry.register(
            "ctrdiag_test_pulls",
            "Test pulls through CRI, by result and cause code",
            m.test_pulls.clone(),
        );
        registry.register(
            "ctrdiag_diagnoses",
            "Diagnoses run, by health",
            m.diagnoses.clone(),
        );
        registry.register(
            "ctrdiag_changes",
            "Changes applied to the node, by outcome (applied, rolled_back)",
            m.changes.clone(),
        );
        for (name, help, gauge) in [
            (
                "ctrdiag_containerd_up",
                "Whether containerd answers on its socket",
                &m.containerd_up,
            ),
            (
                "ctrdiag_cri_ready",
                "Whether containerd's CRI plugin answers (what the kubelet needs)",
                &m.cri_ready,
            ),
            (
                "ctrdiag_insecure_settings",
                "Insecure registry settings (skip-verify, plain HTTP) ctrdiag turned on that are in effect",
                &m.insecure_settings,
            ),
            (
                "ctrdiag_insecure_settings_overdue",
                "Of those, the ones whose time to live is over (ending them failed; it is retried)",
                &m.insecure_overdue,
            ),
            (
                "ctrdiag_damaged_changes",
                "Change records that cannot be read",
                &m.damaged_changes,
            ),
            (
                "ctrdiag_recovery_pending",
                "1 while an interrupted change cannot be undone and changes are refused",
                &m.recovery_pending,
            ),
        ] {
            registry.register(name, help, gauge.clone());
        }
        registry.register(
            "ctrdiag_log_follower_up",
            "1 while containerd's log is being followed for detection, by source (journal, file); absent when detection from the log is off",
            m.log_follower_up.clone(),
        );
        registry.register(
            "ctrdiag_detected_events",
            "Events detected in containerd's log and by probes, by kind, cause code and registry",
            m.detected.clone(),
        );
        registry.register(
            "ctrdiag_probes",
            "Scheduled probes of registries (test pull and TLS probe), by registry and result",
            m.probes.clone(),
        );
        registry.register(
            "ctrdiag_log_lines",
            "Lines of containerd's log read for detection",
            m.log_lines.clone(),
        );
        registry.register(
            "ctrdiag_registry_problem",
            "1 for each registry with a live problem: failing pulls or a certificate expiring soon",
            m.registry_problem.clone(),
        );
        registry.register(
            "ctrdiag_registry_certificate_expiry_timestamp_seconds",
            "When the registry's certificate expires (notAfter), as a Unix time",
            m.certificate_expiry.clone(),
        );
        registry.register(
            "ctrdiag_last_successful_probe_timestamp_seconds",
            "When a probe of the registry last worked, as a Unix time",
            m.last_successful_probe.clone(),
        );
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

    /// An event was detected (counted once per sighting, folded or not).
    pub fn detected(&self, kind: &str, cause: CauseCode, registry: Option<&str>) {
        self.detected
            .get_or_create(&DetectedLabels {
                kind: kind.into(),
                cause: cause.to_string(),
                registry: self.registry_label(registry.unwrap_or("")),
            })
            .inc();
    }

    /// A scheduled probe of `registry` ended.
    pub fn probe(&self, registry: &str, ok: bool) {
        self.probes
            .get_or_create(&ProbeLabels {
                registry: self.registry_label(registry),
                result: if ok { "ok" } else { "failed" }.into(),
            })
            .inc();
    }

    /// `n` more lines of containerd's log were read.
    pub fn log_lines(&self, n: u64) {
        self.log_lines.inc_by(n);
    }

    /// The label for `registry`: itself while fewer than [`MAX_REGISTRIES`] have one.
    fn registry_label(&self, registry: &str) -> String {
        let mut seen = self
            .registries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.contains(registry) {
            return registry.to_string();
        }
        if seen.len() < MAX_REGISTRIES {
            seen.insert(registry.to_string());
            return registry.to_string();
        }
        OTHER_REGISTRY.to_string()
    }

    fn render_detection(&self, d: &DetectionGauges) {
        self.log_follower_up.clear();
        if let Some((source, up)) = d.log_follower {
            self.log_follower_up
                .get_or_create(&SourceLabels {
                    source: source.into(),
                })
                .set(i64::from(up));
        }
        self.registry_problem.clear();
        for (registry, area, cause) in &d.problems {
            self.registry_problem
                .get_or_create(&ProblemLabels {
                    registry: self.registry_label(registry),
                    area: (*area).into(),
                    cause: cause.to_string(),
                })
                .set(1);
        }
        for (family, values) in [
            (&self.certificate_expiry, &d.certificate_expiry),
            (&self.last_successful_probe, &d.last_successful_probe),
        ] {
            family.clear();
            for (registry, at) in values {
                family
                    .get_or_create(&RegistryLabels {
                        registry: self.registry_label(registry),
                    })
                    .set(*at);
            }
        }
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
        self.render_detection(&gauges.detection);
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

    #[test]
    fn detection_metrics_are_labelled_by_registry_and_bounded() {
        let m = Metrics::new();
        m.detected(
            "pull_failed",
            CauseCode::TlsUnknownAuthority,
            Some("r.test:5000"),
        );
        m.probe("r.test:5000", true);
        m.log_lines(3);
        for i in 0..MAX_REGISTRIES + 5 {
            m.detected(
                "pull_failed",
                CauseCode::NotFound,
                Some(&format!("r{i}.test")),
            );
        }
        let gauges = |problems| Gauges {
            detection: DetectionGauges {
                log_follower: Some(("file", true)),
                problems,
                certificate_expiry: vec![("r.test:5000".into(), 1_800_000_000)],
                last_successful_probe: vec![("r.test:5000".into(), 1_700_000_000)],
            },
            ..Gauges::default()
        };
        let text = m.render(gauges(vec![(
            "r.test:5000".into(),
            "pulls",
            CauseCode::TlsUnknownAuthority,
        )]));
        for line in [
            "ctrdiag_detected_events_total{kind=\"pull_failed\",cause=\"tls_unknown_authority\",registry=\"r.test:5000\"} 1\n",
            "ctrdiag_detected_events_total{kind=\"pull_failed\",cause=\"not_found\",registry=\"other\"} 6\n",
            "ctrdiag_probes_total{registry=\"r.test:5000\",result=\"ok\"} 1\n",
            "ctrdiag_log_lines_total 3\n",
            "ctrdiag_log_follower_up{source=\"file\"} 1\n",
            "ctrdiag_registry_problem{registry=\"r.test:5000\",area=\"pulls\",cause=\"tls_unknown_authority\"} 1\n",
            "ctrdiag_registry_certificate_expiry_timestamp_seconds{registry=\"r.test:5000\"} 1800000000\n",
            "ctrdiag_last_successful_probe_timestamp_seconds{registry=\"r.test:5000\"} 1700000000\n",
        ] {
            assert!(text.contains(line), "{line:?} missing:\n{text}");
        }
        // A problem that ended is gone from the next scrape, not stuck at 1.
        let text = m.render(gauges(Vec::new()));
        assert!(!text.contains("ctrdiag_registry_problem{"), "{text}");
    }
}
