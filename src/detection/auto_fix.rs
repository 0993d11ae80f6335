//! Optional automatic remediation, off unless `[auto_fix_ca]` names registries: a
//! detected `tls_unknown_authority` of a listed registry runs the same `fix --ca` plan
//! an operator would (trust that CA bundle through hosts.toml; never skip-verify),
//! under the supervisor, journaled, proven by a pull and undone if the pull fails, and
//! listed by `ctrdiag changes` like any change. A registry is tried at most once per
//! [`RETRY_AFTER`], so a wrong bundle cannot make the daemon rewrite the node in a loop.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;

use crate::cause::CauseCode;
use crate::controller::LiveController;
use crate::controller::fix::{FixRequest, RequestedMode};
use crate::detect::{Event, EventKind};
use crate::metrics::Metrics;
use crate::plan::ApplyOutcome;
use crate::registry::host::RegistryHost;
use crate::server::supervisor::Supervisor;

/// The shortest time between two automatic fixes of one registry.
pub const RETRY_AFTER: Duration = Duration::from_secs(600);

/// The registry an event asks to fix, if it is one the settings list.
pub fn wanted(e: &Event, listed: &BTreeMap<RegistryHost, PathBuf>) -> Option<RegistryHost> {
    if !matches!(e.kind, EventKind::PullFailed | EventKind::ProbeFailed)
        || e.cause != CauseCode::TlsUnknownAuthority
    {
        return None;
    }
    let host: RegistryHost = e.host.as_deref()?.parse().ok()?;
    listed.contains_key(&host).then_some(host)
}

/// Watches detection for the listed registries until the supervisor stops it.
pub async fn run(
    controller: Arc<LiveController>,
    supervisor: Supervisor,
    listed: BTreeMap<RegistryHost, PathBuf>,
    metrics: Arc<Metrics>,
) {
    let mut rx = controller.events().subscribe();
    let mut tried: HashMap<RegistryHost, Instant> = HashMap::new();
    loop {
        let e = match rx.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "auto-fix fell behind the event stream");
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        let Some(host) = wanted(&e, &listed) else {
            continue;
        };
        if tried.get(&host).is_some_and(|t| t.elapsed() < RETRY_AFTER) {
            continue;
        }
        tried.insert(host.clone(), Instant::now());
        let ca = &listed[&host];
        // The failed pull's own image proves the fix.
        let verify = e
            .image
            .as_deref()
            .and_then(|i| i.parse::<crate::registry::reference::ImageRef>().ok())
            .map(|i| i.to_string());
        fix(&controller, &supervisor, &host, ca, verify, &metrics).await;
    }
}

async fn fix(
    controller: &Arc<LiveController>,
    supervisor: &Supervisor,
    host: &RegistryHost,
    ca: &std::path::Path,
    verify_image: Option<String>,
    metrics: &Metrics,
) {
    let pem = match crate::plan::fsops::read_regular(ca) {
        Ok(Some((bytes, _))) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(None) => {
            tracing::error!(%host, ca = %ca.display(), "auto-fix: the CA bundle named in [auto_fix_ca] does not exist");
            return;
        }
        Err(e) => {
            tracing::error!(%host, ca = %ca.display(), error = %e, "auto-fix: cannot read the CA bundle");
            return;
        }
    };
    let request = FixRequest {
        target: host.to_string(),
        mode: RequestedMode::Ca { pem },
        ttl_secs: 0,
        verify_image,
        legacy: false,
        dry_run: false,
        ca_file: Some(ca.to_path_buf()),
        manual_restart: false,
    };
    let prepared = match controller.prepare_fix(request).await {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(%host, error = %e, "auto-fix: cannot plan `fix --ca`");
            return;
        }
    };
    tracing::warn!(%host, ca = %ca.display(), plan = prepared.plan.title, "auto-fix: tls_unknown_authority detected; applying `fix --ca`");
    let apply = {
        let controller = Arc::clone(controller);
        supervisor.spawn_apply(async move { controller.apply_fix(prepared, &None).await })
    };
    let outcome = match apply {
        Ok(handle) => handle.await,
        Err(stopping) => {
            tracing::info!(%host, "auto-fix: {stopping}");
            return;
        }
    };
    match outcome {
        Ok(Ok(o)) => {
            metrics.change(matches!(o, ApplyOutcome::Applied { .. }));
            match o {
                ApplyOutcome::Applied { id, .. } => {
                    tracing::warn!(%host, change = %id, "auto-fix applied and proven by a pull; `ctrdiag rollback {id}` undoes it")
                }
                ApplyOutcome::RolledBack { id, reason, .. } => {
                    tracing::error!(%host, change = %id, reason, "auto-fix did not work and was undone")
                }
            }
        }
        Ok(Err(e)) => tracing::error!(%host, error = %e, "auto-fix failed"),
        Err(e) => tracing::error!(%host, error = %e, "auto-fix task failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unknown_authority_of_a_listed_registry_is_fixed() {
        let listed: BTreeMap<RegistryHost, PathBuf> =
            [("r.test:5000".parse().unwrap(), PathBuf::from("/ca.pem"))].into();
        let event = |kind, cause, host: &str| Event {
            id: 1,
            kind,
            image: None,
            host: Some(host.into()),
            cause,
            text: String::new(),
            first_ms: 0,
            last_ms: 0,
            count: 1,
        };
        let unknown = CauseCode::TlsUnknownAuthority;
        assert!(
            wanted(
                &event(EventKind::PullFailed, unknown, "r.test:5000"),
                &listed
            )
            .is_some()
        );
        assert!(
            wanted(
                &event(EventKind::ProbeFailed, unknown, "r.test:5000"),
                &listed
            )
            .is_some()
        );
        assert!(wanted(&event(EventKind::PullFailed, unknown, "q.test"), &listed).is_none());
        assert!(
            wanted(
                &event(EventKind::PullFailed, CauseCode::TlsExpired, "r.test:5000"),
                &listed
            )
            .is_none(),
            "an expired certificate is not fixed by trusting a CA"
        );
        assert!(
            wanted(
                &event(EventKind::PullsRecovered, unknown, "r.test:5000"),
                &listed
            )
            .is_none()
        );
    }
}
