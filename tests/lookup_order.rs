//! The lookup order `diagnose` shows is the one containerd really follows, on real
//! containerd 1.6 / 1.7 / 2.1 with a registry behind a private CA. Each step puts the
//! right CA in exactly one place and a wrong CA (another lab CA with the same name) or
//! nothing in the others, so a real pull through CRI can only succeed through the place
//! that holds the right one: every "X wins" diagnose prints is proved by that pull.

#[macro_use]
mod lab;

use std::path::{Path, PathBuf};

use lab::certs::{self, CertKind};
use lab::containerd::{LabConfig, LabContainerd, Version, cri_registry_table};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind};
use serde_json::Value;

struct Node {
    registry: Registry,
    ctr: LabContainerd,
    daemon: Daemon,
    right_ca: String,
    wrong_ca: String,
    _wrong_dir: tempfile::TempDir,
}

impl Node {
    async fn start(version: Version) -> Node {
        Self::start_with(version, LabConfig::default()).await
    }

    async fn start_with(version: Version, config: LabConfig) -> Node {
        let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
        let ctr = LabContainerd::start_with(version, config).await;
        let daemon = Daemon::start(&ctr).await;
        let wrong_dir = lab::scratch_dir("wrong-ca-");
        let wrong_ca =
            certs::make(CertKind::PrivateCa, lab::REGISTRY_NAME, wrong_dir.path()).ca_pem;
        let right_ca = registry.tls.as_ref().expect("TLS").ca_pem.clone();
        Node {
            registry,
            ctr,
            daemon,
            right_ca,
            wrong_ca,
            _wrong_dir: wrong_dir,
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.ctr.certs_d.join(name)
    }

    /// The second `config_path` root of [`several_roots_are_searched_root_by_root`].
    fn second_root(&self) -> PathBuf {
        self.ctr.dir().join("certs-b.d")
    }

    /// `host_port_`: containerd's spelling of `host:port` with underscores.
    fn port_dir(&self) -> String {
        self.registry.host.replacen(':', "_", 1) + "_"
    }

    /// `<name>/hosts.toml` naming `ca.crt` (relative: containerd resolves it in the
    /// directory) holding `ca_pem`.
    fn write_hosts(&self, name: &str, ca_pem: &str) {
        self.write_hosts_in(&self.ctr.certs_d, name, ca_pem);
    }

    fn write_hosts_in(&self, root: &Path, name: &str, ca_pem: &str) {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.crt"), ca_pem).unwrap();
        let url = format!("https://{}", self.registry.host);
        std::fs::write(
            dir.join("hosts.toml"),
            format!("server = \"{url}\"\n\n[host.\"{url}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"ca.crt\"\n"),
        )
        .unwrap();
    }

    fn remove(&self, name: &str) {
        std::fs::remove_dir_all(self.dir(name)).unwrap();
    }

    /// A new image under `tag` (its own content, so nothing is cached), pulled through
    /// CRI the way the kubelet pulls, straight from containerd.
    async fn pull(&self, tag: &str) -> (String, Result<String, String>) {
        self.registry
            .push_tag(tag, &format!("lookup order step {tag}"))
            .await;
        let image = self.registry.image_ref_tagged(tag);
        let result = self.ctr.cri_pull(&image).await;
        (image, result)
    }

    /// `diagnose -o json IMAGE`, exiting `exit`.
    async fn diagnose(&self, image: &str, exit: i32) -> Value {
        let run = self.daemon.cli(&["-o", "json", "diagnose", image]).await;
        assert_eq!(run.code, exit, "{run:?}\n{}", self.daemon.log());
        run.json()
    }
}

/// `(directory name or kind, state)` of each place diagnose shows.
fn order(d: &Value, certs_d: &Path) -> Vec<(String, String)> {
    let root = format!("{}/", certs_d.display());
    d["lookup"]
        .as_array()
        .unwrap_or_else(|| panic!("no lookup in {d:#}"))
        .iter()
        .map(|p| {
            let path = p["path"].as_str().unwrap();
            let name = match path.strip_prefix(&root) {
                Some(dir) => dir.trim_end_matches('/').to_string(),
                None => p["kind"].as_str().unwrap().to_string(),
            };
            (name, p["state"].as_str().unwrap().to_string())
        })
        .collect()
}

/// The places diagnose shows are `want`, `(directory name or kind, state)`, in order.
fn assert_order(d: &Value, certs_d: &Path, want: &[(&str, &str)]) {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(order(d, certs_d), want, "{d:#}");
}

fn shadow_finding<'a>(d: &'a Value, path_end: &str) -> &'a Value {
    d["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["cause"] == "config_ignored"
                && f["evidence"].as_array().unwrap().iter().any(|e| {
                    e["label"] == "ignored" && e["value"].as_str().unwrap().ends_with(path_end)
                })
        })
        .unwrap_or_else(|| panic!("no finding that {path_end} is shadowed in {d:#}"))
}

fn assert_unknown_authority(result: &Result<String, String>, what: &str) {
    match result {
        Err(e) => assert!(e.contains("unknown authority"), "{what}: {e}"),
        Ok(id) => panic!("{what}: the pull worked ({id})"),
    }
}

async fn containerd_follows_the_lookup_order_diagnose_shows(version: Version) {
    let node = Node::start(version).await;
    let host = node.registry.host.clone();
    let port_dir = node.port_dir();
    let certs_d = node.ctr.certs_d.clone();

    // (a) The right CA in _default, a wrong one in host:port: containerd takes
    // host:port alone (nothing merged), so the pull fails.
    node.write_hosts("_default", &node.right_ca);
    node.write_hosts(&host, &node.wrong_ca);
    let (image, pulled) = node.pull("a").await;
    assert_unknown_authority(&pulled, "host:port wins over _default");
    let d = node.diagnose(&image, 1).await;
    assert_order(
        &d,
        &certs_d,
        &[
            (&port_dir, "absent"),
            (&host, "wins"),
            ("_default", "shadowed"),
            ("system_pool", "also_used"),
        ],
    );
    assert_eq!(
        d["lookup"][1]["files"],
        serde_json::json!(["hosts.toml", "ca.crt"])
    );
    assert_eq!(d["lookup"][1]["ca_files"][0]["exists"], true);
    assert_eq!(
        shadow_finding(&d, "/_default/hosts.toml")["severity"],
        "info"
    );
    let human = node.daemon.cli(&["diagnose", &image]).await;
    assert!(
        human.stdout.contains(&format!(
            "Where containerd {}",
            version.expected_version_prefix()
        )),
        "{}",
        human.stdout
    );
    let place = |n: &str| {
        human
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with(n))
            .unwrap_or_else(|| panic!("no place {n} in\n{}", human.stdout))
    };
    assert!(
        place("2. ").contains(&format!("/{host}/ ")),
        "{}",
        human.stdout
    );
    assert!(
        place("2. ").ends_with("WINS: hosts.toml, ca.crt"),
        "{}",
        human.stdout
    );
    assert!(
        place("3. ").ends_with("shadowed (ignored: hosts.toml, ca.crt)"),
        "{}",
        human.stdout
    );

    // (b) Without host:port, _default is what containerd reads: the pull works.
    node.remove(&host);
    let (image, pulled) = node.pull("b").await;
    assert!(pulled.is_ok(), "through _default: {pulled:?}");
    let d = node.diagnose(&image, 0).await;
    assert_order(
        &d,
        &certs_d,
        &[
            (&port_dir, "absent"),
            (&host, "absent"),
            ("_default", "wins"),
            ("system_pool", "also_used"),
        ],
    );

    // (c) An empty host:port directory configures nothing and still hides _default.
    std::fs::create_dir_all(node.dir(&host)).unwrap();
    let (image, pulled) = node.pull("c").await;
    assert_unknown_authority(&pulled, "an empty host:port hides _default");
    let d = node.diagnose(&image, 1).await;
    assert_eq!(d["lookup"][1]["state"], "wins", "{d:#}");
    assert!(
        d["lookup"][1]["detail"]
            .as_str()
            .unwrap()
            .contains("configures nothing"),
        "{d:#}"
    );
    assert_eq!(
        shadow_finding(&d, "/_default/hosts.toml")["severity"],
        "warning"
    );

    // (d) A ca.crt alone in host:port (no hosts.toml) is used: Docker's layout.
    std::fs::write(node.dir(&host).join("ca.crt"), &node.right_ca).unwrap();
    let (image, pulled) = node.pull("d").await;
    assert!(
        pulled.is_ok(),
        "host:port/ca.crt without hosts.toml: {pulled:?}"
    );
    let d = node.diagnose(&image, 0).await;
    assert_eq!(d["lookup"][1]["state"], "wins", "{d:#}");
    assert_eq!(d["lookup"][1]["files"], serde_json::json!(["ca.crt"]));

    // (e) host_port_ before host:port: the right CA only in host_port_ (host:port and
    // _default wrong) and the pull works...
    node.write_hosts(&host, &node.wrong_ca);
    node.write_hosts("_default", &node.wrong_ca);
    node.write_hosts(&port_dir, &node.right_ca);
    let (image, pulled) = node.pull("e").await;
    assert!(pulled.is_ok(), "host_port_ wins: {pulled:?}");
    let d = node.diagnose(&image, 0).await;
    assert_order(
        &d,
        &certs_d,
        &[
            (&port_dir, "wins"),
            (&host, "shadowed"),
            ("_default", "shadowed"),
            ("system_pool", "also_used"),
        ],
    );
    let f = shadow_finding(&d, &format!("/{host}/hosts.toml"));
    assert_eq!(f["severity"], "warning");
    assert!(f["summary"].as_str().unwrap().contains(&port_dir), "{f:#}");

    // (f) ...and the right CA only in host:port fails while host_port_ exists.
    node.write_hosts(&host, &node.right_ca);
    node.write_hosts(&port_dir, &node.wrong_ca);
    let (image, pulled) = node.pull("f").await;
    assert_unknown_authority(&pulled, "host_port_ wins over host:port");
    let d = node.diagnose(&image, 1).await;
    assert_eq!(d["lookup"][0]["state"], "wins", "{d:#}");
    assert_eq!(d["pull"]["cause"], "tls_unknown_authority");
}

/// `config_path = "A:B"`: containerd 1.x tries every candidate of A (its `_default`
/// too) before B; 2.1 in Transfer mode reads neither (LAB.md), and diagnose says so.
async fn several_roots_are_searched_root_by_root(version: Version) {
    // The lab writes no config_path here: the two roots are added, then containerd restarts.
    let config = LabConfig {
        config_path: false,
        ..LabConfig::default()
    };
    let mut node = Node::start_with(version, config).await;
    let a = node.ctr.certs_d.clone();
    let b = node.second_root();
    std::fs::create_dir_all(&b).unwrap();
    let text = std::fs::read_to_string(&node.ctr.config_file).unwrap();
    std::fs::write(
        &node.ctr.config_file,
        format!(
            "{text}[{}]\n  config_path = \"{}:{}\"\n",
            cri_registry_table(version),
            a.display(),
            b.display()
        ),
    )
    .unwrap();
    node.ctr.restart().await;
    let host = node.registry.host.clone();

    // The right CA in A/_default, a wrong one in B/host:port.
    node.write_hosts_in(&a, "_default", &node.right_ca);
    node.write_hosts_in(&b, &host, &node.wrong_ca);
    let (image, pulled) = node.pull("roots-a").await;
    let d = node
        .diagnose(&image, if version.is_2x() { 1 } else { 0 })
        .await;
    let state_of = |path: &Path| {
        let want = format!("{}/", path.display());
        d["lookup"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["path"] == want.as_str())
            .unwrap_or_else(|| panic!("no place {want} in {d:#}"))["state"]
            .as_str()
            .unwrap()
            .to_string()
    };
    if version.is_2x() {
        assert_unknown_authority(&pulled, "2.1 ignores a multi-root config_path");
        assert_eq!(state_of(&a.join("_default")), "not_read", "{d:#}");
        assert_eq!(state_of(&b.join(&host)), "not_read", "{d:#}");
        assert_eq!(
            d["lookup"].as_array().unwrap().last().unwrap()["state"],
            "wins"
        );
        // The right CA everywhere: still nothing read.
        node.write_hosts_in(&a, &host, &node.right_ca);
        node.write_hosts_in(&b, &host, &node.right_ca);
        let (_, pulled) = node.pull("roots-b").await;
        assert_unknown_authority(&pulled, "2.1 reads no root of a multi-root config_path");
    } else {
        assert!(pulled.is_ok(), "A/_default before B/host:port: {pulled:?}");
        assert_eq!(state_of(&a.join("_default")), "wins", "{d:#}");
        assert_eq!(state_of(&b.join(&host)), "shadowed", "{d:#}");
        assert_eq!(
            shadow_finding(&d, &format!("certs-b.d/{host}/hosts.toml"))["severity"],
            "warning"
        );
    }
}

per_version!(
    containerd_follows_the_lookup_order_diagnose_shows,
    several_roots_are_searched_root_by_root,
);
