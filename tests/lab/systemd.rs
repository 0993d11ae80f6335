//! A private `dbus-daemon` and a stand-in for `org.freedesktop.systemd1` on it.
//!
//! systemd cannot run on these machines (LAB.md), so this serves the slice of its
//! D-Bus API ctrdiag uses (Manager.Subscribe/RestartUnit/LoadUnit, the JobRemoved
//! signal, Unit.ActiveState/SubState, Service.NRestarts/ExecMainStatus) and really
//! stops and starts the lab's containerd on RestartUnit. ctrdiag's zbus client is the
//! production code; only the bus address differs.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, OwnedObjectPath, interface};

use super::containerd::LabContainerd;
use super::process::ChildGuard;
use super::scratch_dir;

pub const UNIT: &str = "containerd.service";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const UNIT_PATH: &str = "/org/freedesktop/systemd1/unit/containerd_2eservice";
/// Where real systemd's LoadUnit puts a unit it has no file for: an object with
/// `LoadState` "not-found" (one for every other name, here).
const NOT_FOUND_PATH: &str = "/org/freedesktop/systemd1/unit/not_2dfound";

/// A private session bus; the address goes into ctrdiagd's `dbus_address`.
pub struct Bus {
    pub address: String,
    _process: ChildGuard,
    _dir: tempfile::TempDir,
}

impl Bus {
    pub fn start() -> Bus {
        let dir = scratch_dir("dbus-");
        let socket = dir.path().join("bus");
        let log = dir.path().join("dbus.log");
        let mut cmd = Command::new("dbus-daemon");
        cmd.arg("--session")
            .arg(format!("--address=unix:path={}", socket.display()))
            .args(["--nofork", "--print-address=1"]);
        // Read the address the daemon prints once it listens: that is the readiness.
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("dbus log"))
            .spawn()
            .expect("dbus-daemon (package dbus) must be installed");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read dbus-daemon address");
        let address = line.trim().to_string();
        assert!(
            address.starts_with("unix:"),
            "dbus-daemon printed {address:?}"
        );
        // Hand the still-running child to a guard so it dies with the test.
        let process = ChildGuard::adopt("dbus-daemon", child, &log);
        Bus {
            address,
            _process: process,
            _dir: dir,
        }
    }
}

/// What RestartUnit does to the lab containerd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartBehaviour {
    /// Kill, start again, wait until it answers: job result "done".
    Restart,
    /// Leave containerd as it is and report job result "failed".
    Fail,
    /// Refuse the call itself (as polkit or a unit that may not be restarted would):
    /// no job, containerd untouched.
    Refuse,
}

struct UnitData {
    active_state: String,
    sub_state: String,
    n_restarts: u32,
    exec_main_status: i32,
}

/// The stand-in systemd, holding the containerd it manages.
pub struct FakeSystemd {
    pub containerd: Arc<Mutex<LabContainerd>>,
    pub restarts: Arc<AtomicU32>,
    behaviour: Arc<Mutex<RestartBehaviour>>,
    _conn: Connection,
}

impl FakeSystemd {
    pub async fn serve(bus: &Bus, containerd: LabContainerd) -> FakeSystemd {
        let containerd = Arc::new(Mutex::new(containerd));
        let restarts = Arc::new(AtomicU32::new(0));
        let behaviour = Arc::new(Mutex::new(RestartBehaviour::Restart));
        let unit = Arc::new(Mutex::new(UnitData {
            active_state: "active".into(),
            sub_state: "running".into(),
            n_restarts: 0,
            exec_main_status: 0,
        }));
        let manager = Manager {
            containerd: containerd.clone(),
            restarts: restarts.clone(),
            behaviour: behaviour.clone(),
            unit: unit.clone(),
            jobs: Arc::new(AtomicU32::new(0)),
        };
        let conn = zbus::connection::Builder::address(bus.address.as_str())
            .name("org.freedesktop.systemd1")
            .serve_at(MANAGER_PATH, manager)
            .serve_at(UNIT_PATH, UnitIface { unit: unit.clone() })
            .serve_at(UNIT_PATH, ServiceIface { unit })
            .serve_at(NOT_FOUND_PATH, NotFoundUnit)
            .build()
            .await
            .expect("serve the stand-in systemd");
        FakeSystemd {
            containerd,
            restarts,
            behaviour,
            _conn: conn,
        }
    }

    pub async fn set_behaviour(&self, b: RestartBehaviour) {
        *self.behaviour.lock().await = b;
    }
}

struct Manager {
    containerd: Arc<Mutex<LabContainerd>>,
    restarts: Arc<AtomicU32>,
    behaviour: Arc<Mutex<RestartBehaviour>>,
    unit: Arc<Mutex<UnitData>>,
    jobs: Arc<AtomicU32>,
}

#[interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    async fn subscribe(&self) {}

    async fn load_unit(&self, name: &str) -> zbus::fdo::Result<OwnedObjectPath> {
        if name != UNIT {
            return OwnedObjectPath::try_from(NOT_FOUND_PATH)
                .map_err(|e| zbus::fdo::Error::Failed(e.to_string()));
        }
        unit_path(name)
    }

    async fn get_unit(&self, name: &str) -> zbus::fdo::Result<OwnedObjectPath> {
        unit_path(name)
    }

    /// Returns the job at once and emits JobRemoved when the restart is over, as
    /// systemd does.
    async fn restart_unit(
        &self,
        name: String,
        mode: String,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<OwnedObjectPath> {
        unit_path(&name)?;
        if mode != "replace" {
            return Err(zbus::fdo::Error::InvalidArgs(format!(
                "unexpected mode {mode}"
            )));
        }
        if let RestartBehaviour::Refuse = *self.behaviour.lock().await {
            return Err(zbus::fdo::Error::AccessDenied(format!(
                "Access denied to restart {name}"
            )));
        }
        let id = self.jobs.fetch_add(1, Ordering::SeqCst) + 1;
        let job = OwnedObjectPath::try_from(format!("{MANAGER_PATH}/job/{id}"))
            .map_err(|e| zbus::fdo::Error::Failed(e.to_string()))?;
        let emitter = emitter.into_owned();
        let (containerd, restarts, behaviour, unit) = (
            self.containerd.clone(),
            self.restarts.clone(),
            self.behaviour.clone(),
            self.unit.clone(),
        );
        let job_path = job.clone();
        tokio::spawn(async move {
            let result = match *behaviour.lock().await {
                RestartBehaviour::Restart => {
                    {
                        let mut u = unit.lock().await;
                        u.active_state = "activating".into();
                        u.sub_state = "start".into();
                    }
                    containerd.lock().await.restart_process().await;
                    restarts.fetch_add(1, Ordering::SeqCst);
                    let mut u = unit.lock().await;
                    u.active_state = "active".into();
                    u.sub_state = "running".into();
                    "done"
                }
                RestartBehaviour::Fail | RestartBehaviour::Refuse => "failed",
            };
            let _ = Manager::job_removed(&emitter, id, job_path, name, result.to_string()).await;
        });
        Ok(job)
    }

    #[zbus(signal)]
    async fn job_removed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        job: OwnedObjectPath,
        unit: String,
        result: String,
    ) -> zbus::Result<()>;
}

fn unit_path(name: &str) -> zbus::fdo::Result<OwnedObjectPath> {
    if name != UNIT {
        return Err(zbus::fdo::Error::Failed(format!("Unit {name} not found.")));
    }
    OwnedObjectPath::try_from(UNIT_PATH).map_err(|e| zbus::fdo::Error::Failed(e.to_string()))
}

struct UnitIface {
    unit: Arc<Mutex<UnitData>>,
}

/// A unit systemd has no file for, as LoadUnit returns it.
struct NotFoundUnit;

#[interface(name = "org.freedesktop.systemd1.Unit")]
impl NotFoundUnit {
    #[zbus(property)]
    async fn load_state(&self) -> String {
        "not-found".into()
    }
    #[zbus(property)]
    async fn active_state(&self) -> String {
        "inactive".into()
    }
    #[zbus(property)]
    async fn sub_state(&self) -> String {
        "dead".into()
    }
}

#[interface(name = "org.freedesktop.systemd1.Unit")]
impl UnitIface {
    #[zbus(property)]
    async fn load_state(&self) -> String {
        "loaded".into()
    }
    #[zbus(property)]
    async fn active_state(&self) -> String {
        self.unit.lock().await.active_state.clone()
    }
    #[zbus(property)]
    async fn sub_state(&self) -> String {
        self.unit.lock().await.sub_state.clone()
    }
}

struct ServiceIface {
    unit: Arc<Mutex<UnitData>>,
}

#[interface(name = "org.freedesktop.systemd1.Service")]
impl ServiceIface {
    #[zbus(property, name = "NRestarts")]
    async fn n_restarts(&self) -> u32 {
        self.unit.lock().await.n_restarts
    }
    #[zbus(property)]
    async fn exec_main_status(&self) -> i32 {
        self.unit.lock().await.exec_main_status
    }
}

/// How long tests give a restart through the stand-in.
pub const RESTART_TIMEOUT: Duration = Duration::from_secs(60);
