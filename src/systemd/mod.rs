//! systemd over D-Bus (zbus): restart a unit and wait for the job to finish, and read a
//! unit's state. The bus is the system bus unless an address is configured, which is
//! how tests point the same code at a private `dbus-daemon` with a stand-in systemd.
//!
//! The daemon uses [`SystemdClient`]: one connection, made on first use and made again
//! after a failure, and a deadline on every call, so a hung bus can never hold a
//! request (or the node lock) for longer than that.

mod proxies;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use zbus::Connection;

use proxies::{ManagerProxy, ServiceProxy, UnitProxy};

#[derive(Debug, thiserror::Error)]
pub enum SystemdError {
    #[error(
        "cannot connect to D-Bus ({bus}): {source}; is dbus running? (check `systemctl status dbus`)"
    )]
    Connect { bus: String, source: zbus::Error },
    #[error("systemd refused to {action} {unit}: {source}")]
    Call {
        action: &'static str,
        unit: String,
        source: zbus::Error,
    },
    #[error("restarting {unit} ended with job result {result:?}: check `journalctl -u {unit}`")]
    JobFailed { unit: String, result: String },
    #[error("restarting {unit} did not finish within {}s: check `systemctl status {unit}`", .timeout.as_secs())]
    Timeout { unit: String, timeout: Duration },
    #[error("systemd did not answer within {}s ({action} {unit}): is the bus or systemd hung? (check `busctl status`)", .timeout.as_secs())]
    CallTimeout {
        action: &'static str,
        unit: String,
        timeout: Duration,
    },
}

/// How long one D-Bus call may take; systemd answers in milliseconds when healthy.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs one D-Bus call under `timeout`.
async fn bounded<T>(
    timeout: Duration,
    action: &'static str,
    unit: &str,
    call: impl Future<Output = Result<T, SystemdError>>,
) -> Result<T, SystemdError> {
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| SystemdError::CallTimeout {
            action,
            unit: unit.to_string(),
            timeout,
        })?
}

/// Maps a failed D-Bus call about `unit` to [`SystemdError::Call`].
fn call_error(action: &'static str, unit: &str) -> impl FnOnce(zbus::Error) -> SystemdError {
    let unit = unit.to_string();
    move |source| SystemdError::Call {
        action,
        unit,
        source,
    }
}

/// A unit's state as `systemctl status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitState {
    /// `loaded`, or `not-found` / `masked` / `error` for a unit systemd cannot run.
    pub load_state: String,
    pub active_state: String,
    pub sub_state: String,
    /// How often systemd restarted the service automatically.
    pub n_restarts: u32,
    /// The main process's last exit status.
    pub exec_main_status: i32,
}

/// A client for systemd's Manager over one connection.
#[derive(Clone)]
pub struct Systemd {
    conn: Connection,
    call_timeout: Duration,
}

impl Systemd {
    /// Connects to `address` (a D-Bus address such as `unix:path=/run/bus`), or to the
    /// system bus when `None`.
    pub async fn connect(address: Option<&str>) -> Result<Systemd, SystemdError> {
        Self::connect_within(address, CALL_TIMEOUT).await
    }

    /// [`Systemd::connect`] with `call_timeout` for the connection and every call.
    pub async fn connect_within(
        address: Option<&str>,
        call_timeout: Duration,
    ) -> Result<Systemd, SystemdError> {
        let bus = address.unwrap_or("system bus").to_string();
        let connect = async {
            match address {
                None => Connection::system().await,
                Some(a) => zbus::connection::Builder::address(a).build().await,
            }
            .map_err(|source| SystemdError::Connect {
                bus: bus.clone(),
                source,
            })
        };
        let conn = bounded(call_timeout, "connect to the bus for", &bus, connect).await?;
        Ok(Systemd { conn, call_timeout })
    }

    /// Restarts `unit` (`RestartUnit(unit, "replace")`) and waits for its job's
    /// `JobRemoved` signal. Subscribes before calling, so a fast job cannot be missed.
    pub async fn restart_unit(&self, unit: &str, timeout: Duration) -> Result<(), SystemdError> {
        let call_err = |action| call_error(action, unit);
        let start = async {
            let manager = ManagerProxy::new(&self.conn)
                .await
                .map_err(call_err("reach the manager for"))?;
            // systemd only emits JobRemoved to subscribed clients.
            manager
                .subscribe()
                .await
                .map_err(call_err("subscribe for"))?;
            let removed = manager
                .receive_job_removed()
                .await
                .map_err(call_err("watch jobs of"))?;
            let job = manager
                .restart_unit(unit, "replace")
                .await
                .map_err(call_err("restart"))?;
            Ok((removed, job))
        };
        let (mut removed, job) = bounded(self.call_timeout, "restart", unit, start).await?;
        let wait = async {
            while let Some(signal) = removed.next().await {
                let Ok(args) = signal.args() else { continue };
                if args.job.as_str() == job.as_str() {
                    return Some(args.result.to_string());
                }
            }
            None
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(Some(result)) if result == "done" => Ok(()),
            Ok(Some(result)) => Err(SystemdError::JobFailed {
                unit: unit.to_string(),
                result,
            }),
            Ok(None) => Err(SystemdError::JobFailed {
                unit: unit.to_string(),
                result: "bus closed before the job ended".into(),
            }),
            Err(_) => Err(SystemdError::Timeout {
                unit: unit.to_string(),
                timeout,
            }),
        }
    }

    /// The unit's ActiveState and SubState, and for services NRestarts and
    /// ExecMainStatus, read fresh (no property cache: states change under us).
    pub async fn unit_state(&self, unit: &str) -> Result<UnitState, SystemdError> {
        bounded(
            self.call_timeout,
            "read the state of",
            unit,
            self.read_state(unit),
        )
        .await
    }

    async fn read_state(&self, unit: &str) -> Result<UnitState, SystemdError> {
        let err = |action| call_error(action, unit);
        let manager = ManagerProxy::new(&self.conn)
            .await
            .map_err(err("reach the manager for"))?;
        let path = manager.load_unit(unit).await.map_err(err("load"))?;
        let unit_proxy = UnitProxy::builder(&self.conn)
            .path(path.clone())
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(err("read"))?;
        let service = ServiceProxy::builder(&self.conn)
            .path(path)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await
            .map_err(err("read"))?;
        Ok(UnitState {
            load_state: unit_proxy
                .load_state()
                .await
                .map_err(err("read LoadState of"))?,
            active_state: unit_proxy
                .active_state()
                .await
                .map_err(err("read ActiveState of"))?,
            sub_state: unit_proxy
                .sub_state()
                .await
                .map_err(err("read SubState of"))?,
            n_restarts: service.n_restarts().await.unwrap_or(0),
            exec_main_status: service.exec_main_status().await.unwrap_or(0),
        })
    }
}

/// The daemon's way to systemd: one connection shared by every caller, made on first
/// use and made again after any failure (systemd restarted, the bus went away), with a
/// deadline on every call.
#[derive(Clone)]
pub struct SystemdClient {
    address: Option<String>,
    call_timeout: Duration,
    conn: Arc<tokio::sync::Mutex<Option<Systemd>>>,
}

impl SystemdClient {
    /// Nothing is dialled until the first call; `None` is the system bus.
    pub fn new(address: Option<String>) -> SystemdClient {
        Self::with_call_timeout(address, CALL_TIMEOUT)
    }

    pub fn with_call_timeout(address: Option<String>, call_timeout: Duration) -> SystemdClient {
        SystemdClient {
            address,
            call_timeout,
            conn: Default::default(),
        }
    }

    /// The shared connection, dialled now if there is none.
    async fn connection(&self) -> Result<Systemd, SystemdError> {
        let mut slot = self.conn.lock().await;
        if let Some(s) = slot.as_ref() {
            return Ok(s.clone());
        }
        let s = Systemd::connect_within(self.address.as_deref(), self.call_timeout).await?;
        *slot = Some(s.clone());
        Ok(s)
    }

    /// Forgets the connection after a failure, so the next call dials afresh.
    async fn on_result<T>(&self, r: Result<T, SystemdError>) -> Result<T, SystemdError> {
        if r.is_err() {
            *self.conn.lock().await = None;
        }
        r
    }

    /// [`Systemd::restart_unit`] on the shared connection.
    pub async fn restart_unit(&self, unit: &str, timeout: Duration) -> Result<(), SystemdError> {
        let r = match self.connection().await {
            Ok(s) => s.restart_unit(unit, timeout).await,
            Err(e) => Err(e),
        };
        self.on_result(r).await
    }

    /// [`Systemd::unit_state`] on the shared connection.
    pub async fn unit_state(&self, unit: &str) -> Result<UnitState, SystemdError> {
        let r = match self.connection().await {
            Ok(s) => s.unit_state(unit).await,
            Err(e) => Err(e),
        };
        self.on_result(r).await
    }
}
