//! The scheduled probe of one image's registry: diagnose without a pull (containerd's
//! configuration, and the direct TLS probe with the CA files containerd would use),
//! then a test pull through CRI that leaves the store as it was. What it finds goes to
//! the detection hub as events: a TLS failure, a certificate that expires soon or was
//! renewed, a working registry (which ends its pull problem).

use super::ports::{ContainerdPort, Prober, UnitManager};
use super::{Controller, ControllerError};
use crate::detect::{EventKind, Observation, certificate_event};
use crate::diagnose::{CauseCode, ExpiryWarning, Severity};
use crate::registry::reference::ImageRef;

/// What one probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    pub host: String,
    pub image: String,
    /// The registry works: no error finding and the test pull succeeded.
    pub ok: bool,
    /// The cause of the first problem found, when there was one.
    pub cause: Option<CauseCode>,
}

impl<C: ContainerdPort, U: UnitManager, P: Prober> Controller<C, U, P> {
    /// Probes `image`'s registry. A failed test pull becomes a `probe_failed` event
    /// only when `log_followed` is false: otherwise containerd's own log line of the
    /// same pull is the event, and counting it twice would double the problem.
    pub async fn probe_image(
        &self,
        image: &ImageRef,
        log_followed: bool,
    ) -> Result<ProbeOutcome, ControllerError> {
        let host = image.host().to_string();
        let reference = image.to_string();
        let d = self.diagnose(&host, true).await?;
        let at_ms = crate::detection::hub::now_ms();
        let observe = |kind, cause, text: String| Observation {
            kind,
            image: Some(reference.clone()),
            host: Some(host.clone()),
            cause,
            text,
            at_ms,
        };
        let w = ExpiryWarning {
            now_unix: self.clock.now_unix() as i64,
            window_secs: self.node.cert_expiry_warning.as_secs() as i64,
        };
        if let Some(not_after) = d
            .probe
            .chain
            .first()
            .and_then(|c| c.info.as_ref())
            .map(|i| i.not_after.unix)
        {
            let previous = self.events.certificate_seen(&host, not_after);
            if let Some((kind, text)) = certificate_event(&host, previous, not_after, w) {
                let cause = match kind {
                    EventKind::CertificateExpiring => CauseCode::TlsExpiringSoon,
                    _ => CauseCode::Unknown,
                };
                self.events.record(observe(kind, cause, text));
            }
        }
        let mut cause = None;
        if let Some(f) = d.findings.iter().find(|f| f.severity == Severity::Error) {
            cause = Some(f.cause);
            self.events
                .record(observe(EventKind::ProbeFailed, f.cause, f.summary.clone()));
        }
        let pull = self.test_pull(&reference, false).await?;
        if let Some(c) = pull.cause {
            if !log_followed {
                self.events
                    .record(observe(EventKind::ProbeFailed, c, pull.message()));
            }
            cause = cause.or(Some(c));
        }
        let ok = cause.is_none();
        if ok {
            self.events.probe_ok(&host, Some(reference.clone()));
        }
        tracing::info!(
            host,
            image = reference,
            ok,
            cause = cause.map(CauseCode::as_str),
            "probed"
        );
        Ok(ProbeOutcome {
            host,
            image: reference,
            ok,
            cause,
        })
    }
}
