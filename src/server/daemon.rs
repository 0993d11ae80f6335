//! The daemon's life: take or bind the socket, probe containerd, tell systemd we are
//! ready, serve until told to stop, and tell systemd we are stopping.

use std::future::Future;

use sd_notify::NotifyState;

use std::sync::Arc;

use super::service::NodeParts;
use super::socket::{self, BoundSocket, SocketError};
use super::{DiagnosticsService, ServeError, serve};
use crate::clock::Clock;
use crate::containerd::ContainerdClient;
use crate::settings::Settings;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error("cannot serve metrics on {addr}: {source}; choose another `metrics_address`")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Runs the daemon until `shutdown` completes.
pub async fn run(
    settings: Settings,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    // The socket file guard lives for the whole run: its drop removes the file.
    let (listener, _socket_file) = match socket::from_systemd()? {
        Some(l) => {
            tracing::info!("using the socket passed by systemd");
            (l, None)
        }
        None => {
            let BoundSocket { listener, file } =
                socket::bind(&settings.listen_socket, &settings.socket_group)?;
            (listener, Some(file))
        }
    };
    tracing::info!(socket = %settings.listen_socket.display(), "listening");

    // Readiness means "calls will be answered", which needs containerd's state known;
    // a containerd that is down is reported, not waited for: diagnosing that is our job.
    let probe = ContainerdClient::new(&settings.containerd_socket, settings.namespace.clone());
    let status = match probe.version().await {
        Ok(v) => {
            tracing::info!(version = v.version, socket = %settings.containerd_socket.display(), "containerd answers");
            format!("serving; containerd {}", v.version)
        }
        Err(e) => {
            tracing::warn!(error = %e, "containerd is not usable at start");
            "serving; containerd unreachable".to_string()
        }
    };
    // A change a crash interrupted is undone before any new call can start another;
    // one that cannot be undone blocks changes (read-only calls are still served).
    let parts = NodeParts::new(&settings, clock);
    let recovery = parts.executor.recover().await;
    if !recovery.undone.is_empty() {
        let ids: Vec<String> = recovery.undone.iter().map(|i| i.to_string()).collect();
        tracing::warn!(changes = ?ids, "undid changes interrupted by the last stop");
    }
    for (id, reason) in &recovery.failed {
        tracing::error!(change = %id, %reason, "could not undo an interrupted change: changes are refused until it is; inspect it with `ctrdiag changes`");
    }
    let metrics = crate::metrics::Metrics::new();
    let metrics_task = match settings.metrics_address {
        None => None,
        Some(addr) => {
            let tcp = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| DaemonError::Metrics { addr, source })?;
            tracing::info!(%addr, "serving Prometheus metrics on /metrics");
            let client = probe.clone();
            let executor = parts.executor.clone();
            let gauges = move || {
                let client = client.clone();
                let executor = executor.clone();
                async move {
                    let (up, cri) = tokio::join!(client.version(), client.runtime_status());
                    let mut g = crate::metrics::Gauges {
                        containerd_up: up.is_ok(),
                        cri_ready: cri.map(|s| s.runtime_ready).unwrap_or(false),
                        recovery_pending: executor.pending_recovery().is_some(),
                        ..Default::default()
                    };
                    let listed =
                        crate::plan::journal::list(executor.state_dir()).unwrap_or_default();
                    let mut applied = Vec::new();
                    for l in listed {
                        match l {
                            crate::plan::Listed::Damaged(_) => g.damaged_changes += 1,
                            crate::plan::Listed::Change(c) => applied.push(*c),
                        }
                    }
                    applied.retain(|c| {
                        c.state == crate::plan::ChangeState::Applied && c.meta.insecure.is_some()
                    });
                    g.insecure_settings = applied.len() as u64;
                    g.insecure_overdue =
                        crate::ttl::overdue(&applied, executor.clock().now_unix()).len() as u64;
                    g
                }
            };
            Some(tokio::spawn(crate::metrics::serve(
                tcp,
                metrics.clone(),
                gauges,
            )))
        }
    };
    notify(&[NotifyState::Ready, NotifyState::Status(&status)]);

    let rpc_timeout = settings.rpc_timeout();
    let service = DiagnosticsService::new(settings, parts, metrics);
    let expiry = service.spawn_expiry_task();
    let result = serve(listener, service, rpc_timeout, shutdown).await;
    expiry.abort();
    if let Some(t) = metrics_task {
        t.abort();
    }
    notify(&[NotifyState::Stopping]);
    tracing::info!("stopped");
    Ok(result?)
}

/// sd_notify is advisory: outside systemd there is no socket and nothing to do.
fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}
