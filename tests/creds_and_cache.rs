//! The rest of the runbook done safely: credentials found (never shown), one
//! registry's removed as a change that rollback undoes to the byte, owner and mode,
//! and a registry's cached images purged without pulling one out from under a
//! container. Real files in a sandboxed root, real containerd 1.6 / 1.7 / 2.1, a real
//! registry, the stand-in systemd on a real dbus-daemon where a restart is needed.

#[macro_use]
mod lab;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use lab::certs::CertKind;
use lab::containerd::{LabConfig, LabContainerd, Version};
use lab::daemon::{CliRun, Daemon};
use lab::registry::{Registry, RegistryKind};
use lab::systemd::{Bus, FakeSystemd};
use serde_json::Value;

const REG: &str = "r.ctrdiag.test:5000";
const OTHER: &str = "q.ctrdiag.test";
const SECRET: &str = "c2VjcmV0LXBhc3N3b3Jk";
const TOKEN: &str = "eyJpZGVudGl0eXRva2Vu";

/// Docker writes its config with tabs; other registries' lines must come back as they were.
fn docker_config() -> String {
    format!(
        "{{\n\t\"auths\": {{\n\t\t\"{REG}\": {{\n\t\t\t\"auth\": \"{SECRET}\"\n\t\t}},\n\t\t\"{OTHER}\": {{\n\t\t\t\"identitytoken\": \"{TOKEN}\"\n\t\t}}\n\t}},\n\t\"credHelpers\": {{\n\t\t\"gcr.io\": \"gcloud\"\n\t}},\n\t\"credsStore\": \"desktop\"\n}}\n"
    )
}

struct Node {
    daemon: Daemon,
    fake: FakeSystemd,
    root: tempfile::TempDir,
    config_file: PathBuf,
    certs_d: PathBuf,
    _bus: Bus,
}

impl Node {
    fn path(&self, rel: &str) -> PathBuf {
        std::fs::canonicalize(self.root.path()).unwrap().join(rel)
    }

    async fn run(&self, args: &[&str]) -> CliRun {
        self.daemon.cli(args).await
    }

    fn restarts(&self) -> u32 {
        self.fake.restarts.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A 1.7 node whose credential files live in a sandbox, with credentials for `REG` and
/// `OTHER` in every place the kubelet and containerd read.
async fn node() -> Node {
    node_trusting(None).await
}

/// [`node`], with containerd also trusting `registry`'s CA, for a verifying pull.
async fn node_trusting(registry: Option<&Registry>) -> Node {
    let root = lab::scratch_dir("creds-root-");
    let base = std::fs::canonicalize(root.path()).unwrap();
    let table = lab::containerd::cri_registry_table(Version::V1_7);
    let ctr = LabContainerd::start_with(
        Version::V1_7,
        LabConfig {
            extra: format!(
                "[{table}.configs.\"{REG}\".auth]\n  username = \"robot\"\n  password = \"{SECRET}\"\n[{table}.configs.\"{OTHER}\".auth]\n  username = \"other\"\n  password = \"{SECRET}\"\n"
            ),
            ..Default::default()
        },
    )
    .await;
    if let Some(r) = registry {
        ctr.trust_registry_ca(r);
    }
    for (dir, host) in [(REG, REG), (OTHER, OTHER)] {
        let d = ctr.certs_d.join(dir);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("hosts.toml"),
            format!("server = \"https://{host}\"\n\n[host.\"https://{host}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  [host.\"https://{host}\".header]\n    Authorization = \"Basic {SECRET}\"\n"),
        )
        .unwrap();
    }
    let files = [
        ("kubelet/config.json", format!("{{\"auths\": {{\"{REG}\": {{\"registrytoken\": \"{TOKEN}\"}}}}}}\n")),
        ("root/.docker/config.json", docker_config()),
        ("dockercfg", format!("{{\"{OTHER}\": {{\"auth\": \"{SECRET}\", \"email\": \"x@y\"}}}}\n")),
        ("broken/config.json", "{\n  \"auths\": {\n    oops\n".to_string()),
        (
            "credential-providers.yaml",
            "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: ecr-credential-provider\n    matchImages:\n      - \"*.dkr.ecr.*.amazonaws.com\"\n".to_string(),
        ),
    ];
    for (rel, text) in &files {
        let p = base.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    let docker = base.join("root/.docker/config.json");
    std::os::unix::fs::chown(&docker, Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(&docker, std::fs::Permissions::from_mode(0o640)).unwrap();
    let bus = Bus::start();
    let list: Vec<String> = [
        "kubelet/config.json",
        "root/.docker/config.json",
        "dockercfg",
        "broken/config.json",
        "missing/config.json",
    ]
    .iter()
    .map(|r| format!("\"{}\"", base.join(r).display()))
    .collect();
    let settings = format!(
        "dbus_address = \"{}\"\ncredential_files = [{}]\ncredential_provider_config = \"{}\"\n",
        bus.address,
        list.join(", "),
        base.join("credential-providers.yaml").display()
    );
    let daemon = Daemon::start_with(&ctr, &settings).await;
    let (config_file, certs_d) = (ctr.config_file.clone(), ctr.certs_d.clone());
    let fake = FakeSystemd::serve(&bus, ctr).await;
    Node {
        daemon,
        fake,
        root,
        config_file,
        certs_d,
        _bus: bus,
    }
}

fn entries(scan: &Value) -> Vec<(String, String)> {
    scan["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["registry"].as_str().unwrap().to_string(),
                e["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_scan_finds_every_kind_and_shows_no_secret() {
    let node = node().await;
    let run = node.run(&["-o", "json", "creds", "scan"]).await;
    assert_eq!(run.code, 1, "a malformed file is a problem: {run:?}");
    let scan = run.json();
    let found = entries(&scan);
    for (registry, kind) in [
        (REG, "basic_auth"),
        (REG, "registry_token"),
        (OTHER, "identity_token"),
        (OTHER, "basic_auth"),
        ("gcr.io", "credential_helper"),
        ("*", "credential_store"),
        (REG, "header"),
        ("*.dkr.ecr.*.amazonaws.com", "credential_provider"),
    ] {
        assert!(
            found.contains(&(registry.to_string(), kind.to_string())),
            "{registry} {kind} missing: {found:?}"
        );
    }
    let problems = scan["problems"].to_string();
    assert!(
        problems.contains("broken/config.json") && problems.contains("line 3"),
        "{problems}"
    );
    let only = node.run(&["-o", "json", "creds", "scan", REG]).await.json();
    assert!(
        entries(&only).iter().all(|(r, _)| r == REG || r == "*"),
        "{only}"
    );
    let table = node.run(&["creds", "scan"]).await;
    for out in [
        run.stdout,
        table.stdout,
        table.stderr,
        node.daemon.all_logs(),
    ] {
        assert!(
            !out.contains(SECRET) && !out.contains(TOKEN),
            "a secret is shown:\n{out}"
        );
    }
}

#[tokio::test]
async fn cleaning_one_registry_keeps_the_others_and_rollback_restores_bytes_owner_and_mode() {
    let node = node().await;
    let docker = node.path("root/.docker/config.json");
    let config_before = std::fs::read_to_string(&node.config_file).unwrap();
    let other_hosts = std::fs::read_to_string(node.certs_d.join(OTHER).join("hosts.toml")).unwrap();

    let dry = node.run(&["creds", "clean", REG, "--dry-run"]).await;
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout.contains("config.json") && dry.stdout.contains("restart"),
        "{dry:?}"
    );
    assert_eq!(
        std::fs::read_to_string(&docker).unwrap(),
        docker_config(),
        "a dry run changes nothing"
    );

    let run = node.run(&["-o", "json", "creds", "clean", REG]).await;
    assert_eq!(run.code, 0, "{run:?}\n{}", node.daemon.log());
    let id = run.json()["change_id"].as_str().unwrap().to_string();
    assert_eq!(
        node.restarts(),
        1,
        "config.toml changed: containerd restarted once"
    );

    let after = std::fs::read_to_string(&docker).unwrap();
    assert!(!after.contains(REG) && !after.contains(SECRET), "{after}");
    let other_entry =
        format!("\t\t\"{OTHER}\": {{\n\t\t\t\"identitytoken\": \"{TOKEN}\"\n\t\t}}\n");
    assert!(
        after.contains(&other_entry),
        "the other registry's lines are unchanged: {after}"
    );
    assert!(
        after.contains("gcloud") && after.contains("desktop"),
        "{after}"
    );
    let meta = std::fs::metadata(&docker).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (1000, 1000, 0o640)
    );
    let config = std::fs::read_to_string(&node.config_file).unwrap();
    assert!(
        !config.contains(&format!("configs.\"{REG}\".auth")),
        "{config}"
    );
    assert!(
        config.contains(&format!(
            "configs.\"{OTHER}\".auth]\n  username = \"other\""
        )),
        "{config}"
    );
    assert_eq!(
        std::fs::read_to_string(node.certs_d.join(OTHER).join("hosts.toml")).unwrap(),
        other_hosts
    );
    assert!(
        !std::fs::read_to_string(node.certs_d.join(REG).join("hosts.toml"))
            .unwrap()
            .contains("Authorization")
    );
    // A file holding only that registry's credentials is moved away, not deleted.
    let kubelet = node.path("kubelet/config.json");
    assert!(
        !kubelet.exists(),
        "left without credentials: moved to the backup area"
    );
    assert!(
        node.path("broken/config.json").exists(),
        "a malformed file is left alone"
    );

    let rollback = node.run(&["rollback", &id]).await;
    assert_eq!(rollback.code, 0, "{rollback:?}");
    assert_eq!(std::fs::read_to_string(&docker).unwrap(), docker_config());
    let meta = std::fs::metadata(&docker).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o777),
        (1000, 1000, 0o640)
    );
    assert_eq!(
        std::fs::read_to_string(&node.config_file).unwrap(),
        config_before
    );
    assert!(kubelet.exists(), "put back");
    for out in [
        dry.stdout,
        run.stdout,
        rollback.stdout,
        node.daemon.all_logs(),
    ] {
        assert!(
            !out.contains(SECRET) && !out.contains(TOKEN),
            "a secret is shown:\n{out}"
        );
    }
}

#[tokio::test]
async fn cleaning_everything_is_proven_by_a_pull_and_leaves_no_credential() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let node = node_trusting(Some(&registry)).await;
    let image = registry.image_ref();
    let run = node
        .run(&[
            "-o",
            "json",
            "creds",
            "clean",
            "--all",
            "--verify-image",
            &image,
        ])
        .await;
    assert_eq!(run.code, 0, "{run:?}\n{}", node.daemon.log());
    let result = run.json();
    assert_eq!(result["verify"]["image"], image.as_str(), "{result}");
    assert_eq!(
        result["verify"]["ok"], true,
        "the pull after the clean is the proof: {result}"
    );
    assert_eq!(node.restarts(), 1, "{result}");

    let scan = node.run(&["-o", "json", "creds", "scan"]).await.json();
    let left = entries(&scan);
    assert_eq!(
        left,
        vec![(
            "*.dkr.ecr.*.amazonaws.com".to_string(),
            "credential_provider".to_string()
        )],
        "only the kubelet's provider plugin, which ctrdiag reports and never edits: {scan}"
    );
    assert!(
        !node.path("root/.docker/config.json").exists(),
        "moved to the backup area"
    );
    assert!(
        node.path("broken/config.json").exists(),
        "a malformed file is left alone"
    );
    let again = node.run(&["creds", "clean", "--all"]).await;
    assert_eq!(again.code, 1, "{again:?}");
    assert!(
        again.stderr.contains("no registry credentials"),
        "{again:?}"
    );
}

/// Creates a container record naming `image` in containerd's `namespace`, as any
/// client (the kubelet through CRI, ctr, nerdctl) does before running it.
async fn create_container(socket: &Path, namespace: &str, id: &str, image: &str) {
    use containerd_client::services::v1::container::Runtime;
    use containerd_client::services::v1::containers_client::ContainersClient;
    use containerd_client::services::v1::{Container, CreateContainerRequest};
    let channel = containerd_client::connect(socket).await.expect("connect");
    let mut req = tonic::Request::new(CreateContainerRequest {
        container: Some(Container {
            id: id.into(),
            image: image.into(),
            runtime: Some(Runtime {
                name: "io.containerd.runc.v2".into(),
                options: None,
            }),
            spec: Some(prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                value: b"{}".to_vec(),
            }),
            ..Default::default()
        }),
    });
    req.metadata_mut()
        .insert("containerd-namespace", namespace.parse().unwrap());
    ContainersClient::new(channel)
        .create(req)
        .await
        .expect("create a container record");
}

async fn a_purge_removes_exactly_the_registrys_images_and_spares_those_containers_use(
    version: Version,
) {
    let a = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let b = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(version).await;
    ctr.trust_registry_ca(&a);
    ctr.trust_registry_ca(&b);
    let daemon = Daemon::start(&ctr).await;
    let client = ctr.client();
    for image in [a.image_ref(), a.image_ref_tagged("latest"), b.image_ref()] {
        let run = daemon.cli(&["pull", "--keep", &image]).await;
        assert_eq!(run.code, 0, "{run:?}");
    }
    create_container(&ctr.socket, "k8s.io", "web-1", &a.image_ref()).await;

    let refused = daemon.cli(&["cache", "purge", &a.host]).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("web-1") && refused.stderr.contains("--force"),
        "{refused:?}"
    );
    assert!(
        client.cri_image_present(&a.image_ref()).await.unwrap(),
        "nothing removed"
    );

    let dry = daemon
        .cli(&["cache", "purge", &a.host, "--force", "--dry-run"])
        .await;
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(
        dry.stdout.contains(&a.image_ref_tagged("latest")),
        "{dry:?}"
    );
    let purge = daemon
        .cli(&["-o", "json", "cache", "purge", &a.host, "--force"])
        .await;
    assert_eq!(purge.code, 0, "{purge:?}\n{}", daemon.log());
    for image in [a.image_ref(), a.image_ref_tagged("latest")] {
        assert!(
            !client.cri_image_present(&image).await.unwrap(),
            "{image} stays"
        );
    }
    assert!(
        client.cri_image_present(&b.image_ref()).await.unwrap(),
        "another registry's image went"
    );
    let names: Vec<String> = client.image_records().await.unwrap().into_keys().collect();
    assert!(names.iter().all(|n| !n.starts_with(&a.host)), "{names:?}");
    let changes = daemon.cli(&["-o", "json", "changes"]).await.json();
    assert!(
        changes.to_string().contains("purge the cached images of"),
        "{changes}"
    );
}

per_version!(a_purge_removes_exactly_the_registrys_images_and_spares_those_containers_use);
