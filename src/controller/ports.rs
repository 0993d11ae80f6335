//! The narrow ports the flows need from the outside world: containerd, the unit
//! manager (systemd), and the registry prober. The live adapters implement them here;
//! the controller's unit tests use in-memory ones (`fakes`). The node's files are read
//! and written through real file operations (tests give them a temporary directory),
//! and time comes from [`crate::clock::Clock`].

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use crate::cache::ContainerRef;
use crate::containerd::{
    ContainerdClient, ContainerdError, ImageSummary, Namespace, PullOutcome, RuntimeStatus,
    ServerVersion, TestPull,
};
use crate::loaded::Loaded;
use crate::registry::host::RegistryHost;
use crate::registry::probe::{CaFile, ProbeOptions, ProbeReport};
use crate::systemd::{SystemdClient, SystemdError, UnitState};

/// What the flows ask of containerd.
pub trait ContainerdPort: Clone + Send + Sync + 'static {
    /// The socket it is asked on, for people.
    fn socket(&self) -> &Path;
    /// The namespace image commands use when none is named.
    fn default_namespace(&self) -> &Namespace;
    fn version(&self) -> impl Future<Output = Result<ServerVersion, ContainerdError>> + Send;
    /// What containerd's Introspection says it loaded (plugins with their init errors,
    /// deprecations in use).
    fn loaded(&self) -> impl Future<Output = Result<Loaded, ContainerdError>> + Send;
    /// CRI `Status`: answers only when the CRI plugin is loaded.
    fn runtime_status(&self)
    -> impl Future<Output = Result<RuntimeStatus, ContainerdError>> + Send;
    /// A pull through CRI that, unless `keep`, leaves the image store as it was.
    fn test_pull(
        &self,
        image: &str,
        keep: bool,
    ) -> impl Future<Output = Result<TestPull, ContainerdError>> + Send;
    /// A pull through the Transfer service with `host_dir` as the hosts directory,
    /// leaving nothing behind (`Unimplemented` before 1.7).
    fn trial_pull(
        &self,
        image: &str,
        host_dir: &Path,
    ) -> impl Future<Output = Result<PullOutcome, ContainerdError>> + Send;
    fn list_images(
        &self,
        namespace: &Namespace,
    ) -> impl Future<Output = Result<Vec<ImageSummary>, ContainerdError>> + Send;
    fn remove_image(
        &self,
        namespace: &Namespace,
        image: &str,
    ) -> impl Future<Output = Result<(), ContainerdError>> + Send;
    /// Every container of every namespace, with the image record it names.
    fn list_containers(
        &self,
    ) -> impl Future<Output = Result<Vec<ContainerRef>, ContainerdError>> + Send;
}

/// What the flows ask of the unit manager that runs containerd.
pub trait UnitManager: Clone + Send + Sync + 'static {
    /// Restarts `unit` and waits (up to `timeout`) for the job to finish.
    fn restart(
        &self,
        unit: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), SystemdError>> + Send;
    fn state(&self, unit: &str) -> impl Future<Output = Result<UnitState, SystemdError>> + Send;
}

/// What the flows ask of a registry.
pub trait Prober: Clone + Send + Sync + 'static {
    /// Probes `host` (DNS, TCP, TLS chain, `GET /v2/`), checking the chain against the
    /// system roots plus `ca_files`; CA files that cannot be used are reported, each as
    /// a line for people, next to the report.
    fn probe(
        &self,
        host: &RegistryHost,
        ca_files: &[String],
    ) -> impl Future<Output = (ProbeReport, Vec<String>)> + Send;
}

impl ContainerdPort for ContainerdClient {
    fn socket(&self) -> &Path {
        ContainerdClient::socket(self)
    }

    fn default_namespace(&self) -> &Namespace {
        self.namespace()
    }

    fn version(&self) -> impl Future<Output = Result<ServerVersion, ContainerdError>> + Send {
        ContainerdClient::version(self)
    }

    fn loaded(&self) -> impl Future<Output = Result<Loaded, ContainerdError>> + Send {
        ContainerdClient::loaded(self)
    }

    fn runtime_status(
        &self,
    ) -> impl Future<Output = Result<RuntimeStatus, ContainerdError>> + Send {
        ContainerdClient::runtime_status(self)
    }

    fn test_pull(
        &self,
        image: &str,
        keep: bool,
    ) -> impl Future<Output = Result<TestPull, ContainerdError>> + Send {
        self.pull_leaving_store_as_found(image, keep)
    }

    fn trial_pull(
        &self,
        image: &str,
        host_dir: &Path,
    ) -> impl Future<Output = Result<PullOutcome, ContainerdError>> + Send {
        ContainerdClient::trial_pull(self, image, host_dir)
    }

    async fn list_images(
        &self,
        namespace: &Namespace,
    ) -> Result<Vec<ImageSummary>, ContainerdError> {
        self.in_namespace(namespace.clone()).list_images().await
    }

    async fn remove_image(
        &self,
        namespace: &Namespace,
        image: &str,
    ) -> Result<(), ContainerdError> {
        self.in_namespace(namespace.clone())
            .remove_image(image)
            .await
    }

    fn list_containers(
        &self,
    ) -> impl Future<Output = Result<Vec<ContainerRef>, ContainerdError>> + Send {
        ContainerdClient::list_containers(self)
    }
}

impl UnitManager for SystemdClient {
    fn restart(
        &self,
        unit: &str,
        timeout: Duration,
    ) -> impl Future<Output = Result<(), SystemdError>> + Send {
        self.restart_unit(unit, timeout)
    }

    fn state(&self, unit: &str) -> impl Future<Output = Result<UnitState, SystemdError>> + Send {
        self.unit_state(unit)
    }
}

/// The real registry probe over the network.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetProber;

impl Prober for NetProber {
    async fn probe(&self, host: &RegistryHost, ca_files: &[String]) -> (ProbeReport, Vec<String>) {
        let mut opts = ProbeOptions::default();
        let mut problems = Vec::new();
        for path in ca_files {
            match CaFile::load(path) {
                Ok(ca) => opts.ca_files.push(ca),
                Err(e) => problems.push(format!("CA file {path}: {e}")),
            }
        }
        (crate::registry::probe::probe(host, &opts).await, problems)
    }
}
