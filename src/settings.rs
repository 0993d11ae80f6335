//! The daemon's settings: a TOML file where every key is optional, validated into
//! typed values before anything binds. Defaults are those of a standard node.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::containerd::{DEFAULT_SOCKET, Namespace};
use crate::registry::host::RegistryHost;
use crate::registry::reference::ImageRef;

/// Where `ctrdiagd` listens unless told otherwise (the API's own default).
pub const DEFAULT_LISTEN_SOCKET: &str = crate::api::DEFAULT_SOCKET;
/// The default location of the daemon's settings file.
pub const DEFAULT_SETTINGS_FILE: &str = "/etc/ctrdiag/ctrdiagd.toml";

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read settings file {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("settings file {} is not valid: {message}", .path.display())]
    Parse { path: PathBuf, message: String },
    #[error("settings file {}: `{key}` {problem}", .path.display())]
    Invalid {
        path: PathBuf,
        key: &'static str,
        problem: String,
    },
}

/// The file as written: every key optional, unknown keys refused (a typo must not be
/// silently ignored on a root daemon).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SettingsFile {
    listen_socket: Option<PathBuf>,
    socket_group: Option<String>,
    containerd_socket: Option<PathBuf>,
    namespace: Option<String>,
    containerd_config: Option<PathBuf>,
    certs_dir: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    pull_timeout_secs: Option<u64>,
    containerd_unit: Option<String>,
    containerd_bin: Option<PathBuf>,
    dbus_address: Option<String>,
    metrics_address: Option<String>,
    max_concurrent_pulls: Option<usize>,
    credential_files: Option<Vec<PathBuf>>,
    credential_provider_config: Option<PathBuf>,
    containerd_log: Option<String>,
    journal_directory: Option<PathBuf>,
    probe_images: Option<Vec<String>>,
    probe_interval_secs: Option<u64>,
    cert_expiry_warning_days: Option<u64>,
    auto_fix_ca: Option<BTreeMap<String, PathBuf>>,
    node_manager_registries: Option<PathBuf>,
    os_release: Option<PathBuf>,
    manual_restart_command: Option<String>,
    manual_restart_wait_secs: Option<u64>,
}

/// Where containerd's log is read from for detection (`containerd_log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerdLog {
    /// `journalctl -u <containerd_unit>` (the default: containerd under systemd).
    Journal,
    /// A plain file containerd writes to (a `--log-file`, or stderr redirected).
    File(PathBuf),
    /// Detection from the log is off; probes still run.
    Off,
}

/// The shortest probe interval: a probe is a pull and a TLS handshake per registry.
pub const MIN_PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// Where the kubelet looks for docker-style credential files (its root directory, its
/// working directory `/`, root's and `/`'s `.docker`, and the legacy `.dockercfg`).
pub const DEFAULT_CREDENTIAL_FILES: &[&str] = &[
    "/var/lib/kubelet/config.json",
    "/config.json",
    "/root/.docker/config.json",
    "/.docker/config.json",
    "/var/lib/kubelet/.dockercfg",
    "/.dockercfg",
    "/root/.dockercfg",
];

/// Validated settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Unix socket of the daemon's gRPC API (`listen_socket`).
    pub listen_socket: PathBuf,
    /// Group that owns the socket and may call read-only RPCs (`socket_group`).
    pub socket_group: String,
    /// containerd's gRPC socket (`containerd_socket`).
    pub containerd_socket: PathBuf,
    /// Default containerd namespace for image RPCs (`namespace`).
    pub namespace: Namespace,
    /// containerd's config.toml (`containerd_config`).
    pub containerd_config: PathBuf,
    /// Directory for hosts.toml trees when ctrdiag sets `config_path` (`certs_dir`).
    pub certs_dir: PathBuf,
    /// Journal, backups and change records (`state_dir`).
    pub state_dir: PathBuf,
    /// Longest a test pull may take (`pull_timeout_secs`).
    pub pull_timeout: Duration,
    /// containerd's systemd unit (`containerd_unit`).
    pub containerd_unit: String,
    /// The containerd binary the node runs (`containerd_bin`), for `config dump`: the
    /// configuration containerd computes with defaults and imports; `None`: not asked.
    pub containerd_bin: Option<PathBuf>,
    /// D-Bus address of systemd's bus; `None` is the system bus (`dbus_address`).
    pub dbus_address: Option<String>,
    /// Where Prometheus metrics are served (`metrics_address`); `None`: not served.
    pub metrics_address: Option<std::net::SocketAddr>,
    /// Test pulls and diagnoses that may run at once; more are refused with
    /// `ResourceExhausted` (`max_concurrent_pulls`).
    pub max_concurrent_pulls: usize,
    /// Docker-style credential files to scan and clean (`credential_files`; replaces
    /// [`DEFAULT_CREDENTIAL_FILES`]).
    pub credential_files: Vec<PathBuf>,
    /// The kubelet's `--image-credential-provider-config`, if it has one
    /// (`credential_provider_config`).
    pub credential_provider_config: Option<PathBuf>,
    /// containerd's log, followed for failed pulls (`containerd_log`).
    pub containerd_log: ContainerdLog,
    /// The journal directory journalctl reads (`journal_directory`; `None`: the
    /// system's). A daemon in a container reads the host's `/var/log/journal`.
    pub journal_directory: Option<PathBuf>,
    /// Images pulled on a schedule to prove their registries work (`probe_images`).
    pub probe_images: Vec<ImageRef>,
    /// How often probes run, before jitter (`probe_interval_secs`).
    pub probe_interval: Duration,
    /// A registry certificate expiring within this raises a warning
    /// (`cert_expiry_warning_days`).
    pub cert_expiry_warning: Duration,
    /// Registries whose detected `tls_unknown_authority` runs `fix --ca` with this CA
    /// bundle on its own (`[auto_fix_ca]`; empty: never).
    pub auto_fix_ca: BTreeMap<RegistryHost, PathBuf>,
    /// The registries file of the node manager that generates containerd's
    /// configuration (`node_manager_registries`; `None`: the manager's own,
    /// `/etc/rancher/k3s/registries.yaml` or `/etc/rancher/rke2/registries.yaml`).
    pub node_manager_registries: Option<PathBuf>,
    /// The os-release file that tells a Bottlerocket node (`os_release`). A daemon in a
    /// container names the host's.
    pub os_release: PathBuf,
    /// What an operator is told to run to restart containerd when ctrdiag does not
    /// restart it itself (`manual_restart_command`; default `systemctl restart
    /// <containerd_unit>`; `rc-service containerd restart` on OpenRC).
    pub manual_restart_command: String,
    /// How long a fix with a manual restart waits for it before undoing the change
    /// (`manual_restart_wait_secs`).
    pub manual_restart_wait: Duration,
}

/// Longest a change may wait for the operator's restart: a day, so that a forgotten
/// change cannot hold the node's lock for ever.
pub const MAX_MANUAL_RESTART_WAIT: Duration = Duration::from_secs(86_400);

impl Settings {
    /// The deadline of every RPC: long enough for a test pull (`pull_timeout`) or a
    /// restart (two minutes) plus the registry probe, and no longer.
    pub fn rpc_timeout(&self) -> Duration {
        self.pull_timeout.max(Duration::from_secs(120)) + Duration::from_secs(60)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen_socket: DEFAULT_LISTEN_SOCKET.into(),
            socket_group: "ctrdiag".into(),
            containerd_socket: DEFAULT_SOCKET.into(),
            namespace: Namespace::default(),
            containerd_config: "/etc/containerd/config.toml".into(),
            certs_dir: "/etc/containerd/certs.d".into(),
            state_dir: "/var/lib/ctrdiag".into(),
            pull_timeout: crate::containerd::DEFAULT_PULL_TIMEOUT,
            containerd_unit: "containerd.service".into(),
            containerd_bin: None,
            dbus_address: None,
            metrics_address: None,
            max_concurrent_pulls: 4,
            credential_files: DEFAULT_CREDENTIAL_FILES.iter().map(PathBuf::from).collect(),
            credential_provider_config: None,
            containerd_log: ContainerdLog::Journal,
            journal_directory: None,
            probe_images: Vec::new(),
            probe_interval: Duration::from_secs(300),
            cert_expiry_warning: Duration::from_secs(14 * 86_400),
            auto_fix_ca: BTreeMap::new(),
            node_manager_registries: None,
            os_release: "/etc/os-release".into(),
            manual_restart_command: "systemctl restart containerd.service".into(),
            manual_restart_wait: Duration::from_secs(600),
        }
    }
}

impl Settings {
    /// Reads `path`; a missing file is an error only when `required` (an explicit
    /// `--config`), so a node without a settings file runs on defaults.
    pub fn load(path: &Path, required: bool) -> Result<Settings, SettingsError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Settings::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(Settings::default())
            }
            Err(source) => Err(SettingsError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses settings text; `path` only names the file in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Settings, SettingsError> {
        let file: SettingsFile = toml::from_str(text).map_err(|e| SettingsError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let invalid = |key, problem: String| SettingsError::Invalid {
            path: path.to_path_buf(),
            key,
            problem,
        };
        let d = Settings::default();
        let absolute = |key, value: Option<PathBuf>, default: PathBuf| match value {
            None => Ok(default),
            Some(p) if p.is_absolute() => Ok(p),
            Some(p) => Err(invalid(key, format!("must be an absolute path, not {p:?}"))),
        };
        let namespace = match file.namespace {
            None => d.namespace,
            Some(ns) => ns
                .parse()
                .map_err(|e| invalid("namespace", format!("{e}")))?,
        };
        let pull_timeout = match file.pull_timeout_secs {
            None => d.pull_timeout,
            Some(0) => return Err(invalid("pull_timeout_secs", "must be at least 1".into())),
            Some(s) => Duration::from_secs(s),
        };
        let containerd_unit = file.containerd_unit.unwrap_or(d.containerd_unit);
        if !containerd_unit.ends_with(".service") || containerd_unit.contains('/') {
            return Err(invalid(
                "containerd_unit",
                format!("must be a unit name like `containerd.service`, not {containerd_unit:?}"),
            ));
        }
        if file.dbus_address.as_deref() == Some("") {
            return Err(invalid(
                "dbus_address",
                "must be a D-Bus address such as `unix:path=/run/dbus/system_bus_socket`; leave it out for the system bus".into(),
            ));
        }
        let metrics_address = match file.metrics_address {
            None => None,
            Some(a) => Some(a.parse().map_err(|_| {
                invalid(
                    "metrics_address",
                    format!("must be an address and port such as `127.0.0.1:9420`, not {a:?}"),
                )
            })?),
        };
        let max_concurrent_pulls = match file.max_concurrent_pulls {
            None => d.max_concurrent_pulls,
            Some(0) => return Err(invalid("max_concurrent_pulls", "must be at least 1".into())),
            Some(n) => n,
        };
        let credential_files = match file.credential_files {
            None => d.credential_files,
            Some(list) => {
                if let Some(p) = list.iter().find(|p| !p.is_absolute()) {
                    return Err(invalid(
                        "credential_files",
                        format!("must hold absolute paths, not {p:?}"),
                    ));
                }
                list
            }
        };
        let socket_group = file.socket_group.unwrap_or(d.socket_group);
        if socket_group.is_empty() {
            return Err(invalid("socket_group", "must name a group".into()));
        }
        let containerd_log = match file.containerd_log.as_deref() {
            None | Some("journal") => ContainerdLog::Journal,
            Some("off") => ContainerdLog::Off,
            Some(p) if Path::new(p).is_absolute() => ContainerdLog::File(p.into()),
            Some(other) => {
                return Err(invalid(
                    "containerd_log",
                    format!("must be \"journal\", \"off\" or an absolute file path, not {other:?}"),
                ));
            }
        };
        let probe_images = file
            .probe_images
            .unwrap_or_default()
            .iter()
            .map(|i| {
                i.parse::<ImageRef>()
                    .map_err(|e| invalid("probe_images", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let probe_interval = match file.probe_interval_secs {
            None => d.probe_interval,
            Some(s) if Duration::from_secs(s) < MIN_PROBE_INTERVAL => {
                return Err(invalid(
                    "probe_interval_secs",
                    format!("must be at least {}", MIN_PROBE_INTERVAL.as_secs()),
                ));
            }
            Some(s) => Duration::from_secs(s),
        };
        let cert_expiry_warning = match file.cert_expiry_warning_days {
            None => d.cert_expiry_warning,
            Some(days) if days > 3650 => {
                return Err(invalid(
                    "cert_expiry_warning_days",
                    "must be at most 3650".into(),
                ));
            }
            Some(days) => Duration::from_secs(days * 86_400),
        };
        let manual_restart_command = match file.manual_restart_command {
            None => format!("systemctl restart {containerd_unit}"),
            Some(c) if c.trim().is_empty() || c.len() > 256 || c.contains(['\n', '\0']) => {
                return Err(invalid(
                    "manual_restart_command",
                    "must be one line of at most 256 bytes, the command an operator runs".into(),
                ));
            }
            Some(c) => c,
        };
        let manual_restart_wait = match file.manual_restart_wait_secs {
            None => d.manual_restart_wait,
            Some(s) if s == 0 || Duration::from_secs(s) > MAX_MANUAL_RESTART_WAIT => {
                return Err(invalid(
                    "manual_restart_wait_secs",
                    format!(
                        "must be between 1 and {}",
                        MAX_MANUAL_RESTART_WAIT.as_secs()
                    ),
                ));
            }
            Some(s) => Duration::from_secs(s),
        };
        let mut auto_fix_ca = BTreeMap::new();
        for (host, ca) in file.auto_fix_ca.unwrap_or_default() {
            let host: RegistryHost = host
                .parse()
                .map_err(|e| invalid("auto_fix_ca", format!("{e}")))?;
            if !ca.is_absolute() {
                return Err(invalid(
                    "auto_fix_ca",
                    format!("{host}: the CA bundle must be an absolute path, not {ca:?}"),
                ));
            }
            auto_fix_ca.insert(host, ca);
        }
        Ok(Settings {
            node_manager_registries: match file.node_manager_registries {
                None => None,
                Some(p) => Some(absolute(
                    "node_manager_registries",
                    Some(p),
                    PathBuf::new(),
                )?),
            },
            os_release: absolute("os_release", file.os_release, d.os_release)?,
            manual_restart_command,
            manual_restart_wait,
            containerd_log,
            journal_directory: match file.journal_directory {
                None => None,
                Some(p) => Some(absolute("journal_directory", Some(p), PathBuf::new())?),
            },
            containerd_bin: match file.containerd_bin {
                None => None,
                Some(p) => Some(absolute("containerd_bin", Some(p), PathBuf::new())?),
            },
            probe_images,
            probe_interval,
            cert_expiry_warning,
            auto_fix_ca,
            listen_socket: absolute("listen_socket", file.listen_socket, d.listen_socket)?,
            socket_group,
            containerd_socket: absolute(
                "containerd_socket",
                file.containerd_socket,
                d.containerd_socket,
            )?,
            namespace,
            containerd_config: absolute(
                "containerd_config",
                file.containerd_config,
                d.containerd_config,
            )?,
            certs_dir: absolute("certs_dir", file.certs_dir, d.certs_dir)?,
            state_dir: absolute("state_dir", file.state_dir, d.state_dir)?,
            pull_timeout,
            containerd_unit,
            dbus_address: file.dbus_address,
            metrics_address,
            max_concurrent_pulls,
            credential_files,
            credential_provider_config: match file.credential_provider_config {
                None => None,
                Some(p) => Some(absolute(
                    "credential_provider_config",
                    Some(p),
                    PathBuf::new(),
                )?),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, SettingsError> {
        Settings::parse(Path::new("/etc/ctrdiag/ctrdiagd.toml"), text)
    }

    #[test]
    fn empty_file_gives_documented_defaults() {
        let s = parse("").unwrap();
        assert_eq!(s.listen_socket, Path::new("/run/ctrdiag/ctrdiag.sock"));
        assert_eq!(
            s.containerd_socket,
            Path::new("/run/containerd/containerd.sock")
        );
        assert_eq!(s.namespace.as_str(), "k8s.io");
        assert_eq!(s.socket_group, "ctrdiag");
        assert_eq!(s.state_dir, Path::new("/var/lib/ctrdiag"));
    }

    #[test]
    fn every_key_can_be_overridden() {
        let s = parse(
            "listen_socket = \"/tmp/x/d.sock\"\nsocket_group = \"nogroup\"\ncontainerd_socket = \"/tmp/c.sock\"\nnamespace = \"default\"\ncontainerd_config = \"/tmp/c.toml\"\ncerts_dir = \"/tmp/certs.d\"\nstate_dir = \"/tmp/state\"\npull_timeout_secs = 9\ncontainerd_unit = \"k3s.service\"\ndbus_address = \"unix:path=/tmp/bus\"\n",
        )
        .unwrap();
        assert_eq!(s.listen_socket, Path::new("/tmp/x/d.sock"));
        assert_eq!(s.namespace.as_str(), "default");
        assert_eq!(s.pull_timeout, Duration::from_secs(9));
        assert_eq!(s.certs_dir, Path::new("/tmp/certs.d"));
        assert_eq!(s.containerd_unit, "k3s.service");
        assert_eq!(s.manual_restart_command, "systemctl restart k3s.service");
        assert_eq!(s.dbus_address.as_deref(), Some("unix:path=/tmp/bus"));
    }

    #[test]
    fn typos_and_bad_values_are_refused_with_the_key_named() {
        let e = parse("listen_sockt = \"/x\"").unwrap_err().to_string();
        assert!(e.contains("listen_sockt"), "{e}");
        let e = parse("state_dir = \"relative\"").unwrap_err().to_string();
        assert!(e.contains("`state_dir` must be an absolute path"), "{e}");
        let e = parse("namespace = \"a/b\"").unwrap_err().to_string();
        assert!(e.contains("`namespace`"), "{e}");
        assert!(parse("pull_timeout_secs = 0").is_err());
        assert!(parse("max_concurrent_pulls = 0").is_err());
        assert!(parse("credential_files = [\"relative.json\"]").is_err());
        let s = parse("credential_files = [\"/x/config.json\"]\ncredential_provider_config = \"/etc/kubernetes/cp.yaml\"\n").unwrap();
        assert_eq!(s.credential_files, [PathBuf::from("/x/config.json")]);
        assert_eq!(
            s.credential_provider_config,
            Some(PathBuf::from("/etc/kubernetes/cp.yaml"))
        );
        assert_eq!(
            parse("").unwrap().credential_files.len(),
            DEFAULT_CREDENTIAL_FILES.len()
        );
        assert_eq!(
            parse("max_concurrent_pulls = 2")
                .unwrap()
                .max_concurrent_pulls,
            2
        );
        assert!(parse("containerd_unit = \"../x\"").is_err());
        assert!(parse("dbus_address = \"\"").is_err());
        assert!(parse("metrics_address = \"localhost\"").is_err());
        assert_eq!(
            parse("metrics_address = \"127.0.0.1:9420\"")
                .unwrap()
                .metrics_address,
            Some("127.0.0.1:9420".parse().unwrap())
        );
    }

    #[test]
    fn detection_and_probe_settings() {
        let d = parse("").unwrap();
        assert_eq!(d.containerd_log, ContainerdLog::Journal);
        assert_eq!(d.probe_interval, Duration::from_secs(300));
        assert_eq!(d.cert_expiry_warning, Duration::from_secs(14 * 86_400));
        assert!(d.probe_images.is_empty() && d.auto_fix_ca.is_empty());
        let s = parse(concat!(
            "containerd_log = \"/var/log/containerd.log\"\n",
            "journal_directory = \"/host/var/log/journal\"\n",
            "probe_images = [\"r.test:5000/app:1\", \"busybox\"]\n",
            "probe_interval_secs = 60\n",
            "cert_expiry_warning_days = 30\n",
            "[auto_fix_ca]\n\"r.test:5000\" = \"/etc/ctrdiag/ca/r.pem\"\n",
        ))
        .unwrap();
        assert_eq!(
            s.containerd_log,
            ContainerdLog::File("/var/log/containerd.log".into())
        );
        assert_eq!(
            s.probe_images
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["r.test:5000/app:1", "docker.io/library/busybox:latest"]
        );
        assert_eq!(s.cert_expiry_warning, Duration::from_secs(30 * 86_400));
        assert_eq!(s.auto_fix_ca.len(), 1);
        assert_eq!(
            parse("containerd_log = \"off\"").unwrap().containerd_log,
            ContainerdLog::Off
        );
        for (bad, key) in [
            ("containerd_log = \"containerd.log\"", "`containerd_log`"),
            (
                "probe_interval_secs = 9",
                "`probe_interval_secs` must be at least 10",
            ),
            ("probe_images = [\"Bad Name\"]", "`probe_images`"),
            (
                "cert_expiry_warning_days = 99999",
                "`cert_expiry_warning_days`",
            ),
            ("journal_directory = \"j\"", "`journal_directory`"),
            ("[auto_fix_ca]\n\"r.test\" = \"ca.pem\"", "absolute path"),
            ("[auto_fix_ca]\n\"_default\" = \"/ca.pem\"", "`auto_fix_ca`"),
            ("manual_restart_wait_secs = 0", "`manual_restart_wait_secs`"),
            ("manual_restart_wait_secs = 86401", "between 1 and 86400"),
            (
                "manual_restart_command = \"a\\nb\"",
                "`manual_restart_command`",
            ),
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn node_owner_settings_default_to_the_nodes_own_files() {
        let d = parse("").unwrap();
        assert_eq!(d.node_manager_registries, None);
        assert_eq!(d.os_release, Path::new("/etc/os-release"));
        let s = parse("node_manager_registries = \"/host/etc/rancher/k3s/registries.yaml\"\nos_release = \"/host/etc/os-release\"\n").unwrap();
        assert_eq!(
            s.node_manager_registries.as_deref(),
            Some(Path::new("/host/etc/rancher/k3s/registries.yaml"))
        );
        assert_eq!(s.os_release, Path::new("/host/etc/os-release"));
        for bad in [
            "node_manager_registries = \"r.yaml\"",
            "os_release = \"os-release\"",
        ] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("must be an absolute path"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_missing_default_file_means_defaults_but_a_named_one_must_exist() {
        let missing = Path::new("/nonexistent/ctrdiagd.toml");
        assert!(Settings::load(missing, false).is_ok());
        assert!(matches!(
            Settings::load(missing, true),
            Err(SettingsError::Read { .. })
        ));
    }
}
