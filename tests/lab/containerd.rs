//! A real containerd of a chosen version, as a child process with its own root,
//! state, sockets and config file under a scratch directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ctrdiag::containerd::{ContainerdClient, Namespace};

use super::process::ChildGuard;
use super::registry::Registry;
use super::{scratch_dir, wait_for};

/// Where `scripts/install-deps.sh` unpacks the newer containerd builds.
const LAB_DIR_DEFAULT: &str = "/opt/ctrdiag-lab";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// 1.6.20, Debian 12's package.
    V1_6,
    /// 1.7.24, from Debian 13.
    V1_7,
    /// 2.1.9, from Debian 13/14.
    V2_1,
}

impl Version {
    pub const ALL: [Version; 3] = [Version::V1_6, Version::V1_7, Version::V2_1];

    /// The binary of this version; panics (never skips) when it is missing, so a CI
    /// machine without it fails loudly.
    pub fn binary(self) -> PathBuf {
        let lab = std::env::var("CTRDIAG_LAB_DIR").unwrap_or_else(|_| LAB_DIR_DEFAULT.into());
        let path = match self {
            Version::V1_6 => PathBuf::from("/usr/bin/containerd"),
            Version::V1_7 => Path::new(&lab).join("containerd-1.7/usr/bin/containerd"),
            Version::V2_1 => Path::new(&lab).join("containerd-2.1/usr/bin/containerd"),
        };
        assert!(
            path.is_file(),
            "containerd {self:?} is not installed at {}: run scripts/install-deps.sh",
            path.display()
        );
        path
    }

    /// The version string containerd reports, as tests expect it.
    pub fn expected_version_prefix(self) -> &'static str {
        match self {
            Version::V1_6 => "1.6.20",
            Version::V1_7 => "1.7.24",
            Version::V2_1 => "2.1.9",
        }
    }

    pub fn is_2x(self) -> bool {
        self == Version::V2_1
    }
}

/// How the lab writes containerd's config.toml.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// Set the CRI registry `config_path` to the instance's certs.d directory.
    pub config_path: bool,
    /// TOML appended verbatim (e.g. legacy `configs` tables for the config traps).
    pub extra: String,
    /// Wait for CRI `Status` to answer before returning (off for configs that break CRI).
    pub wait_for_cri: bool,
    /// Write a `version = 2` file even for containerd 2.x (a node upgraded from 1.x).
    pub version_2_file: bool,
    /// Top-level keys (before any table), e.g. `imports = [...]`.
    pub top_level: String,
    /// Lines before everything else, e.g. the header k3s writes into the file it generates.
    pub header: String,
}

impl Default for LabConfig {
    fn default() -> Self {
        LabConfig {
            config_path: true,
            extra: String::new(),
            wait_for_cri: true,
            version_2_file: false,
            top_level: String::new(),
            header: String::new(),
        }
    }
}

pub struct LabContainerd {
    pub version: Version,
    pub socket: PathBuf,
    pub config_file: PathBuf,
    pub certs_d: PathBuf,
    config: LabConfig,
    process: Option<ChildGuard>,
    /// config.toml's bytes when the running process was started: what it loaded.
    loaded: Vec<u8>,
    dir: tempfile::TempDir,
}

impl LabContainerd {
    pub async fn start(version: Version) -> LabContainerd {
        Self::start_with(version, LabConfig::default()).await
    }

    pub async fn start_with(version: Version, config: LabConfig) -> LabContainerd {
        let dir = scratch_dir("containerd-");
        let socket = dir.path().join("containerd.sock");
        let certs_d = dir.path().join("certs.d");
        std::fs::create_dir_all(&certs_d).expect("certs.d");
        let config_file = dir.path().join("config.toml");
        std::fs::write(&config_file, config_toml(version, dir.path(), &config))
            .expect("write containerd config");
        let mut lab = LabContainerd {
            version,
            socket,
            config_file,
            certs_d,
            config,
            process: None,
            loaded: Vec::new(),
            dir,
        };
        let wait_cri = lab.config.wait_for_cri;
        lab.spawn(wait_cri).await;
        lab
    }

    /// The CRI registry table of this instance's config file.
    pub fn cri_registry_table(&self) -> &'static str {
        if self.config.version_2_file {
            cri_registry_table(Version::V1_7)
        } else {
            cri_registry_table(self.version)
        }
    }

    /// Starts the process and waits until containerd answers (and CRI, if `wait_cri`).
    async fn spawn(&mut self, wait_cri: bool) {
        let mut cmd = Command::new(self.version.binary());
        cmd.arg("--config").arg(&self.config_file);
        let log = self.dir.path().join("containerd.log");
        // Keep earlier runs' output: restarts append a marker rather than truncating.
        let previous = std::fs::read_to_string(&log).unwrap_or_default();
        std::fs::write(self.dir.path().join("containerd.previous.log"), previous).ok();
        self.loaded = std::fs::read(&self.config_file).expect("read containerd config");
        self.process = Some(ChildGuard::spawn("containerd", cmd, &log));
        let client = self.client();
        let log_path = log.display().to_string();
        wait_for(
            &format!("containerd {:?} to answer (log: {log_path})", self.version),
            Duration::from_secs(60),
            || {
                let client = client.clone();
                async move {
                    client.version().await.ok()?;
                    if wait_cri {
                        client.runtime_status().await.ok()?;
                    }
                    Some(())
                }
            },
        )
        .await;
        if let Some(p) = self.process.as_mut() {
            p.assert_running();
        }
    }

    /// A ctrdiag client for this instance in the kubelet's namespace.
    pub fn client(&self) -> ContainerdClient {
        ContainerdClient::new(&self.socket, Namespace::default())
    }

    /// Kills containerd (SIGKILL), as a crash would. Its socket file stays behind.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// Starts containerd again on the same config, root and socket, and waits for it
    /// and its CRI plugin to answer.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn(true).await;
    }

    /// Stops containerd with SIGTERM, as `systemctl stop` does, and reaps it.
    pub fn terminate(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.terminate();
        }
    }

    /// Starts containerd again after [`LabContainerd::kill`] or
    /// [`LabContainerd::terminate`], on the same config, root and socket, and waits for
    /// it and its CRI plugin to answer.
    pub async fn start_again(&mut self) {
        assert!(self.process.is_none(), "containerd is still running");
        self.spawn(true).await;
    }

    /// Freezes containerd (SIGSTOP): its socket still accepts connections, nothing
    /// answers, as a hung containerd behaves.
    pub fn freeze(&self) {
        self.signal(nix::sys::signal::Signal::SIGSTOP);
    }

    /// Lets a frozen containerd go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = self.pid().expect("containerd is running");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)
            .expect("signal containerd");
    }

    /// Restarts as systemd would for a notify service: done once containerd answers,
    /// whether or not its CRI plugin loaded (the config may have broken it).
    pub async fn restart_process(&mut self) {
        self.kill();
        self.spawn(false).await;
    }

    /// The config.toml bytes the running containerd read at its start (containerd
    /// reads the file only then): whether it runs what the file says now.
    pub fn loaded_config(&self) -> &[u8] {
        &self.loaded
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|p| p.pid())
    }

    pub fn log(&self) -> String {
        self.process.as_ref().map(|p| p.log()).unwrap_or_default()
    }

    /// The file containerd's output (its log) goes to.
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("containerd.log")
    }

    /// A pull through CRI made the way the kubelet makes it, straight to containerd's
    /// socket (not through ctrdiag): `Ok(image id)` or containerd's error text.
    pub async fn cri_pull(&self, image: &str) -> Result<String, String> {
        use k8s_cri::v1::image_service_client::ImageServiceClient;
        let channel = super::unix_channel(&self.socket)
            .await
            .map_err(|e| format!("cannot reach containerd: {e}"))?;
        let req = k8s_cri::v1::PullImageRequest {
            image: Some(k8s_cri::v1::ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        };
        ImageServiceClient::new(channel)
            .pull_image(req)
            .await
            .map(|r| r.into_inner().image_ref)
            .map_err(|s| s.message().to_string())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Trusts `registry`'s CA the recommended way: `<certs.d>/<host:port>/hosts.toml`
    /// with a `[host."https://..."]` table naming the CA file (no restart needed).
    pub fn trust_registry_ca(&self, registry: &Registry) {
        let tls = registry.tls.as_ref().expect("a TLS registry");
        let dir = self.certs_d.join(&registry.host);
        std::fs::create_dir_all(&dir).expect("hosts dir");
        let ca = dir.join("ca.crt");
        std::fs::write(&ca, &tls.ca_pem).expect("write CA");
        let url = format!("https://{}", registry.host);
        std::fs::write(
            dir.join("hosts.toml"),
            format!(
                "server = \"{url}\"\n\n[host.\"{url}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"{}\"\n",
                ca.display()
            ),
        )
        .expect("write hosts.toml");
    }
}

pub fn cri_registry_table(version: Version) -> &'static str {
    if version.is_2x() {
        "plugins.\"io.containerd.cri.v1.images\".registry"
    } else {
        "plugins.\"io.containerd.grpc.v1.cri\".registry"
    }
}

/// A config that keeps every path of this instance under `dir`, so several
/// containerds run side by side; NRI is off because its socket path is global.
fn config_toml(version: Version, dir: &Path, config: &LabConfig) -> String {
    let d = dir.display();
    let v3 = version.is_2x() && !config.version_2_file;
    let mut toml = format!(
        "{}version = {}\n{}root = \"{d}/root\"\nstate = \"{d}/state\"\n\n[grpc]\n  address = \"{d}/containerd.sock\"\n\n[ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\n",
        config.header,
        if v3 { 3 } else { 2 },
        config.top_level
    );
    if version != Version::V1_6 {
        toml += "[plugins.\"io.containerd.nri.v1.nri\"]\n  disable = true\n\n";
    }
    if config.config_path {
        toml += &format!(
            "[{}]\n  config_path = \"{d}/certs.d\"\n\n",
            cri_registry_table(if v3 { Version::V2_1 } else { Version::V1_7 })
        );
    }
    toml += &config.extra;
    toml
}
