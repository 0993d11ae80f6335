//! In-memory ports for the controller's unit tests: a containerd whose answers the
//! test sets, a unit manager that counts restarts, and a prober that returns a report
//! the test built. No processes, no network; files live in a temporary directory.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::ports::{ContainerdPort, Prober, UnitManager};
use crate::cache::ContainerRef;
use crate::containerd::{
    ContainerdError, ImageSummary, Namespace, PullOutcome, RuntimeStatus, ServerVersion, TestPull,
};
use crate::loaded::Loaded;
use crate::registry::host::RegistryHost;
use crate::registry::probe::ProbeReport;
use crate::systemd::{SystemdError, UnitState};

#[derive(Debug)]
struct ContainerdState {
    /// `None`: containerd does not answer.
    version: Option<String>,
    cri_ready: bool,
    loaded: Loaded,
    /// What trial pulls end with; `None`: no Transfer service (as on 1.6).
    trial: Option<PullOutcome>,
    /// Each trial's hosts.toml files as staged: path under the stage, text.
    trials: Vec<Vec<(String, String)>>,
    pull: PullOutcome,
    pulls: Vec<String>,
    images: Vec<ImageSummary>,
    containers: Vec<ContainerRef>,
    removed: Vec<String>,
}

#[derive(Clone)]
pub struct FakeContainerd {
    socket: PathBuf,
    namespace: Namespace,
    state: Arc<Mutex<ContainerdState>>,
}

impl FakeContainerd {
    /// A containerd of `version` whose pulls work.
    pub fn new(version: &str) -> FakeContainerd {
        FakeContainerd {
            socket: "/run/containerd/containerd.sock".into(),
            namespace: Namespace::default(),
            state: Arc::new(Mutex::new(ContainerdState {
                version: Some(version.to_string()),
                cri_ready: true,
                loaded: Loaded::default(),
                trial: None,
                trials: Vec::new(),
                pull: pulled(),
                pulls: Vec::new(),
                images: Vec::new(),
                containers: Vec::new(),
                removed: Vec::new(),
            })),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut ContainerdState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// What every pull from now on ends with.
    pub fn set_pull(&self, outcome: PullOutcome) {
        self.with(|s| s.pull = outcome);
    }

    pub fn set_down(&self) {
        self.with(|s| s.version = None);
    }

    pub fn set_cri_ready(&self, ready: bool) {
        self.with(|s| s.cri_ready = ready);
    }

    /// What trial pulls end with from now on (`None`: no Transfer service).
    pub fn set_trial(&self, outcome: Option<PullOutcome>) {
        self.with(|s| s.trial = outcome);
    }

    /// The hosts.toml files each trial saw, as (path under the stage, text).
    pub fn trials(&self) -> Vec<Vec<(String, String)>> {
        self.with(|s| s.trials.clone())
    }

    /// What Introspection answers from now on.
    pub fn set_loaded(&self, loaded: Loaded) {
        self.with(|s| s.loaded = loaded);
    }

    /// Image records (name, target digest) in CRI's namespace.
    pub fn set_images(&self, images: &[(&str, &str)]) {
        let images = images
            .iter()
            .map(|(name, digest)| ImageSummary {
                name: name.to_string(),
                digest: digest.to_string(),
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                size: None,
                created_unix: None,
            })
            .collect();
        self.with(|s| s.images = images);
    }

    pub fn set_containers(&self, containers: Vec<ContainerRef>) {
        self.with(|s| s.containers = containers);
    }

    /// Every image removed so far, in order.
    pub fn removed(&self) -> Vec<String> {
        self.with(|s| s.removed.clone())
    }

    /// Every image pulled so far, in order.
    pub fn pulls(&self) -> Vec<String> {
        self.with(|s| s.pulls.clone())
    }

    fn unreachable(&self) -> ContainerdError {
        ContainerdError::Unreachable {
            path: self.socket.clone(),
            detail: "connection refused".into(),
        }
    }
}

/// A successful pull's outcome.
pub fn pulled() -> PullOutcome {
    PullOutcome::Pulled {
        image_id: "sha256:1d".into(),
        duration: Duration::from_millis(60),
    }
}

/// containerd's words for an untrusted CA.
pub fn unknown_authority(image: &str) -> PullOutcome {
    PullOutcome::Failed {
        code: tonic::Code::Unknown,
        message: format!(
            "failed to pull and unpack image \"{image}\": failed to resolve image: failed to do request: Head \"https://r.test:5000/v2/app/manifests/1\": tls: failed to verify certificate: x509: certificate signed by unknown authority"
        ),
        duration: Duration::from_millis(12),
    }
}

impl ContainerdPort for FakeContainerd {
    fn socket(&self) -> &Path {
        &self.socket
    }

    fn default_namespace(&self) -> &Namespace {
        &self.namespace
    }

    async fn version(&self) -> Result<ServerVersion, ContainerdError> {
        match self.with(|s| s.version.clone()) {
            Some(version) => Ok(ServerVersion {
                version,
                revision: "test".into(),
            }),
            None => Err(self.unreachable()),
        }
    }

    async fn loaded(&self) -> Result<Loaded, ContainerdError> {
        match self.with(|s| s.version.is_some().then(|| s.loaded.clone())) {
            Some(loaded) => Ok(loaded),
            None => Err(self.unreachable()),
        }
    }

    async fn runtime_status(&self) -> Result<RuntimeStatus, ContainerdError> {
        let (up, ready) = self.with(|s| (s.version.is_some(), s.cri_ready));
        if !up {
            return Err(self.unreachable());
        }
        if !ready {
            return Err(ContainerdError::CriUnavailable {
                path: self.socket.clone(),
            });
        }
        Ok(RuntimeStatus {
            runtime_ready: true,
            network_ready: false,
            problems: vec!["NetworkReady: NetworkPluginNotReady".into()],
        })
    }

    async fn test_pull(&self, image: &str, keep: bool) -> Result<TestPull, ContainerdError> {
        self.runtime_status().await?;
        let outcome = self.with(|s| {
            s.pulls.push(image.to_string());
            s.pull.clone()
        });
        Ok(TestPull {
            removed_after: outcome.pulled() && !keep,
            outcome,
            left_for_others: Vec::new(),
        })
    }

    async fn trial_pull(
        &self,
        _image: &str,
        host_dir: &std::path::Path,
    ) -> Result<PullOutcome, ContainerdError> {
        self.version().await?;
        let Some(outcome) = self.with(|s| s.trial.clone()) else {
            return Err(ContainerdError::Rpc {
                rpc: "Transfer",
                code: tonic::Code::Unimplemented,
                message: "unknown service containerd.services.transfer.v1.Transfer".into(),
            });
        };
        let mut seen = Vec::new();
        for dir in std::fs::read_dir(host_dir).expect("the stage exists during the trial") {
            let dir = dir.unwrap().path();
            if let Ok(text) = std::fs::read_to_string(dir.join("hosts.toml")) {
                let name = dir.file_name().unwrap().to_string_lossy().into_owned();
                seen.push((format!("{name}/hosts.toml"), text));
            }
        }
        self.with(|s| s.trials.push(seen));
        Ok(outcome)
    }

    async fn list_images(&self, _: &Namespace) -> Result<Vec<ImageSummary>, ContainerdError> {
        self.version().await?;
        Ok(self.with(|s| s.images.clone()))
    }

    async fn remove_image(&self, _: &Namespace, image: &str) -> Result<(), ContainerdError> {
        self.version().await?;
        self.with(|s| s.removed.push(image.to_string()));
        Ok(())
    }

    async fn list_containers(&self) -> Result<Vec<ContainerRef>, ContainerdError> {
        self.version().await?;
        Ok(self.with(|s| s.containers.clone()))
    }
}

/// A unit manager whose restarts bring containerd back with its CRI plugin.
#[derive(Clone)]
pub struct FakeUnits {
    containerd: FakeContainerd,
    restarts: Arc<Mutex<u32>>,
}

impl FakeUnits {
    pub fn new(containerd: &FakeContainerd) -> FakeUnits {
        FakeUnits {
            containerd: containerd.clone(),
            restarts: Arc::default(),
        }
    }

    pub fn restarts(&self) -> u32 {
        *self.restarts.lock().unwrap()
    }
}

impl UnitManager for FakeUnits {
    async fn restart(&self, _: &str, _: Duration) -> Result<(), SystemdError> {
        *self.restarts.lock().unwrap() += 1;
        self.containerd.set_cri_ready(true);
        Ok(())
    }

    async fn state(&self, _: &str) -> Result<UnitState, SystemdError> {
        Ok(UnitState {
            load_state: "loaded".into(),
            active_state: "active".into(),
            sub_state: "running".into(),
            n_restarts: 0,
            exec_main_status: 0,
        })
    }
}

#[derive(Clone)]
pub struct FakeProber {
    report: Arc<Mutex<ProbeReport>>,
    /// The CA files each probe was asked to trust.
    pub asked_with: Arc<Mutex<Vec<Vec<String>>>>,
}

impl FakeProber {
    pub fn new(report: ProbeReport) -> FakeProber {
        FakeProber {
            report: Arc::new(Mutex::new(report)),
            asked_with: Arc::default(),
        }
    }
}

impl Prober for FakeProber {
    async fn probe(&self, _: &RegistryHost, ca_files: &[String]) -> (ProbeReport, Vec<String>) {
        self.asked_with.lock().unwrap().push(ca_files.to_vec());
        (self.report.lock().unwrap().clone(), Vec::new())
    }
}
