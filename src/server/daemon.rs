//! The daemon's life: take or bind the socket, build the controller over the live
//! ports, undo interrupted changes, tell systemd we are ready, serve until told to
//! stop, let in-flight changes finish, and only then tell systemd we are stopping.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use super::authz::Policy;
use super::socket::{self, BoundSocket, SocketError};
use super::supervisor::{Drained, Supervisor};
use super::{DiagnosticsService, SHUTDOWN_GRACE, ServeError, serve};
use crate::clock::Clock;
use crate::containerd::ContainerdClient;
use crate::controller::ports::NetProber;
use crate::controller::{Controller, LiveController, NodeConfig};
use crate::settings::Settings;
use crate::systemd::SystemdClient;

/// Longest the expiry task sleeps before it looks at the wall clock again, so a
/// suspend or a clock step cannot stretch a time to live.
const EXPIRY_RECHECK: Duration = Duration::from_secs(60);
/// Longest a metrics scrape waits for containerd (Prometheus' default scrape timeout is
/// 10 s).
const SCRAPE_CONTAINERD_TIMEOUT: Duration = Duration::from_secs(2);

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

/// The controller of the node `settings` describe.
pub fn controller_for(settings: &Settings, clock: Arc<dyn Clock>) -> LiveController {
    let containerd = ContainerdClient::new(&settings.containerd_socket, settings.namespace.clone())
        .with_pull_timeout(settings.pull_timeout);
    Controller::new(
        containerd,
        SystemdClient::new(settings.dbus_address.clone()),
        NetProber,
        clock,
        NodeConfig {
            containerd_config: settings.containerd_config.clone(),
            certs_dir: settings.certs_dir.clone(),
            containerd_unit: settings.containerd_unit.clone(),
            containerd_bin: settings.containerd_bin.clone(),
            credential_files: settings.credential_files.clone(),
            credential_provider_config: settings.credential_provider_config.clone(),
            cert_expiry_warning: settings.cert_expiry_warning,
            node_manager_registries: settings.node_manager_registries.clone(),
            os_release: settings.os_release.clone(),
            manual_restart: crate::plan::ManualRestart {
                command: settings.manual_restart_command.clone(),
                wait_secs: settings.manual_restart_wait.as_secs(),
            },
        },
        settings.state_dir.clone(),
    )
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

    let metrics = crate::metrics::Metrics::new();
    let events = crate::detection::EventHub::open(&settings.state_dir, metrics.clone());
    let controller = Arc::new(controller_for(&settings, clock).with_events(Arc::clone(&events)));
    // Readiness means "calls will be answered", which needs containerd's state known;
    // a containerd that is down is reported, not waited for: diagnosing that is our job.
    let containerd = controller.containerd_state().await;
    let ready = if containerd.reachable {
        tracing::info!(version = containerd.version, socket = %settings.containerd_socket.display(), "containerd answers");
        format!("serving; containerd {}", containerd.version)
    } else {
        tracing::warn!(
            error = containerd.error,
            "containerd is not usable at start"
        );
        "serving; containerd unreachable".to_string()
    };
    // A change a crash interrupted is undone before any new call can start another;
    // one that cannot be undone blocks changes (read-only calls are still served).
    let recovery = controller.recover().await;
    if !recovery.undone.is_empty() {
        let ids: Vec<String> = recovery.undone.iter().map(|i| i.to_string()).collect();
        tracing::warn!(changes = ?ids, "undid changes interrupted by the last stop");
    }
    for (id, reason) in &recovery.failed {
        tracing::error!(change = %id, %reason, "could not undo an interrupted change: changes are refused until it is; inspect it with `ctrdiag changes`");
    }

    let supervisor = Supervisor::new();
    if let Some(addr) = settings.metrics_address {
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DaemonError::Metrics { addr, source })?;
        tracing::info!(%addr, "serving Prometheus metrics on /metrics");
        let controller = Arc::clone(&controller);
        let gauges = move || {
            let controller = Arc::clone(&controller);
            async move { gauges_of(&controller).await }
        };
        supervisor.spawn_service(
            "metrics",
            crate::metrics::serve(tcp, metrics.clone(), gauges),
        );
    }
    let expiry_changed = Arc::new(tokio::sync::Notify::new());
    supervisor.spawn_service(
        "expiry",
        end_times_to_live(Arc::clone(&controller), Arc::clone(&expiry_changed)),
    );
    if let Some(source) = log_source(&settings) {
        tracing::info!(%source, "following containerd's log for failed pulls");
        supervisor.spawn_service(
            "log follower",
            crate::detection::follower::run(source, Arc::clone(&events), events.closing()),
        );
    }
    if !settings.auto_fix_ca.is_empty() {
        supervisor.spawn_service(
            "auto-fix",
            crate::detection::auto_fix::run(
                Arc::clone(&controller),
                supervisor.clone(),
                settings.auto_fix_ca.clone(),
                metrics.clone(),
            ),
        );
    }
    if !settings.probe_images.is_empty() {
        supervisor.spawn_service(
            "probes",
            crate::detection::schedule::run(
                Arc::clone(&controller),
                settings.probe_images.clone(),
                settings.probe_interval,
                settings.containerd_log != crate::settings::ContainerdLog::Off,
                metrics.clone(),
            ),
        );
    }
    notify(&[NotifyState::Ready, NotifyState::Status(&ready)]);

    let service = DiagnosticsService::new(
        controller,
        supervisor.clone(),
        Policy::new(settings.socket_group.clone()),
        settings.max_concurrent_pulls,
        expiry_changed,
        metrics,
    );
    // Watch streams never end by themselves: they are ended as the shutdown starts,
    // or the server's graceful stop would wait for them forever.
    let shutdown = {
        let events = Arc::clone(&events);
        async move {
            shutdown.await;
            events.close();
        }
    };
    let result = serve(listener, service, settings.rpc_timeout(), shutdown).await;
    // No new changes from here; those running finish (or the next start undoes them).
    match supervisor.shutdown(SHUTDOWN_GRACE).await {
        Drained::All => {}
        Drained::TimedOut { still_running } => tracing::error!(
            still_running,
            "changes still running after the grace: the next start finishes or undoes them"
        ),
    }
    events.save();
    notify(&[NotifyState::Stopping]);
    tracing::info!("stopped");
    Ok(result?)
}

/// Ends insecure settings whose time to live is over, now and whenever one falls
/// due, looking at the wall clock at least every minute; forever (the supervisor stops
/// it).
async fn end_times_to_live(controller: Arc<LiveController>, changed: Arc<tokio::sync::Notify>) {
    loop {
        let report = controller.end_due().await;
        let until = report.next_due.unwrap_or(u64::MAX);
        tokio::select! {
            () = controller.clock().wait_until(until, EXPIRY_RECHECK) => {}
            () = changed.notified() => {}
        }
    }
}

/// The log the settings name, as a source to follow; `None` when it is off.
fn log_source(settings: &Settings) -> Option<crate::logsource::Source> {
    use crate::logsource::{JournalSource, Source};
    use crate::settings::ContainerdLog;
    match &settings.containerd_log {
        ContainerdLog::Off => None,
        ContainerdLog::File(path) => Some(Source::File(path.clone())),
        ContainerdLog::Journal => {
            let mut journal = JournalSource::new(&settings.containerd_unit);
            if let Some(dir) = &settings.journal_directory {
                journal = journal.with_directory(dir);
            }
            Some(Source::Journal(journal))
        }
    }
}

/// What the metrics gauges say, read at scrape time.
/// containerd's state is asked with a bound: a hung containerd must not hang the
/// scrape (Prometheus would report the whole target down instead of containerd).
async fn gauges_of(controller: &LiveController) -> crate::metrics::Gauges {
    let containerd = tokio::time::timeout(SCRAPE_CONTAINERD_TIMEOUT, controller.containerd_state())
        .await
        .unwrap_or_default();
    let changes = controller.changes_summary();
    crate::metrics::Gauges {
        containerd_up: containerd.reachable,
        cri_ready: containerd.cri_ready,
        insecure_settings: changes.insecure.len() as u64,
        insecure_overdue: changes.insecure.iter().filter(|i| i.overdue).count() as u64,
        damaged_changes: changes.damaged.len() as u64,
        recovery_pending: changes.pending_recovery.is_some(),
        detection: controller.events().gauges(),
    }
}

/// sd_notify is advisory: outside systemd there is no socket and nothing to do.
fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}
