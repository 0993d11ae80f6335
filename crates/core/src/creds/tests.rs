use super::*;
use crate::ctrconfig::{ConfigToml, HostsDirFacts};

const DOCKER: &str = "{\n\t\"auths\": {\n\t\t\"r.test:5000\": {\n\t\t\t\"auth\": \"cm9ib3Q6c2VjcmV0\"\n\t\t},\n\t\t\"https://index.docker.io/v1/\": {\n\t\t\t\"identitytoken\": \"tok-1\"\n\t\t}\n\t},\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcloud\"\n\t},\n\t\"credsStore\": \"desktop\",\n\t\"psFormat\": \"table\"\n}\n";

fn host(s: &str) -> RegistryHost {
    s.parse().unwrap()
}

fn kinds(entries: &[CredEntry]) -> Vec<(String, CredKind)> {
    entries
        .iter()
        .map(|e| (e.registry.clone(), e.kind))
        .collect()
}

#[test]
fn a_docker_config_lists_each_registry_and_kind_never_the_secret() {
    let e = docker_config_entries("/root/.docker/config.json", DOCKER).unwrap();
    assert_eq!(
        kinds(&e),
        [
            ("r.test:5000".to_string(), CredKind::BasicAuth),
            ("index.docker.io".to_string(), CredKind::IdentityToken),
            ("gcr.io".to_string(), CredKind::CredentialHelper),
            ("*".to_string(), CredKind::CredentialStore),
        ]
    );
    let text = format!("{e:?}");
    assert!(
        !text.contains("cm9ib3Q6") && !text.contains("tok-1"),
        "{text}"
    );
}

#[test]
fn a_legacy_dockercfg_is_read_too() {
    let e = docker_config_entries(
        "/root/.dockercfg",
        "{\"r.test:5000\": {\"auth\": \"eA==\", \"email\": \"x@y\"}}",
    )
    .unwrap();
    assert_eq!(
        kinds(&e),
        [("r.test:5000".to_string(), CredKind::BasicAuth)]
    );
}

#[test]
fn malformed_json_names_file_and_line() {
    let err = docker_config_entries("/root/.docker/config.json", "{\n  \"auths\": {\n    x\n")
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("/root/.docker/config.json") && text.contains("line 3"),
        "{text}"
    );
}

#[test]
fn one_registry_goes_and_everything_else_stays_in_order_and_indent() {
    let Removal::Edited(after) =
        docker_config_without("/c.json", DOCKER, Some(&host("r.test:5000"))).unwrap()
    else {
        panic!("edited");
    };
    assert!(
        !after.contains("r.test:5000") && !after.contains("cm9ib3Q6"),
        "{after}"
    );
    for kept in ["index.docker.io", "tok-1", "gcloud", "desktop", "psFormat"] {
        assert!(after.contains(kept), "{kept}: {after}");
    }
    assert!(after.starts_with("{\n\t\"auths\""), "tabs kept: {after:?}");
    assert!(after.ends_with("}\n"));
    assert!(
        after.find("auths") < after.find("credHelpers"),
        "order kept"
    );
    assert_eq!(
        docker_config_without("/c.json", DOCKER, Some(&host("other.test"))).unwrap(),
        Removal::Unchanged
    );
}

#[test]
fn a_file_left_without_anything_is_nothing_left() {
    let only = "{\n  \"auths\": {\n    \"r.test:5000\": {\"auth\": \"eA==\"}\n  }\n}\n";
    assert_eq!(
        docker_config_without("/c.json", only, Some(&host("r.test:5000"))).unwrap(),
        Removal::NothingLeft
    );
    let Removal::Edited(all) = docker_config_without("/c.json", DOCKER, None).unwrap() else {
        panic!("edited");
    };
    assert_eq!(
        all, "{\n\t\"psFormat\": \"table\"\n}\n",
        "every credential goes, other settings stay"
    );
}

fn facts(config: &str, dirs: Vec<HostsDirFacts>) -> NodeFiles {
    NodeFiles {
        facts: NodeFacts {
            config_file: "/etc/containerd/config.toml".into(),
            config: ConfigToml::parse(config).unwrap(),
            hosts_dirs: dirs,
            named_files: Default::default(),
        },
        config_exists: true,
        imported: Vec::new(),
        imported_registry: Vec::new(),
        other_files_sha256: Default::default(),
    }
}

const CONFIG: &str = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"r.test:5000\".auth]\n  username = \"robot\"\n  password = \"hunter2\"\n[plugins.\"io.containerd.grpc.v1.cri\".registry.auths.\"https://q.test\"]\n  auth = \"eA==\"\n";

fn header_dir(name: &str) -> HostsDirFacts {
    HostsDirFacts {
        root: "/etc/containerd/certs.d".into(),
        name: name.into(),
        hosts_toml: Some(
            "server = \"https://r.test:5000\"\n[host.\"https://r.test:5000\"]\n  capabilities = [\"pull\"]\n  [host.\"https://r.test:5000\".header]\n    Authorization = \"Bearer s3cr3t\"\n"
                .to_string(),
        ),
        other_files: Vec::new(),
    }
}

#[test]
fn containerds_config_and_hosts_toml_headers_are_found() {
    let files = facts(CONFIG, vec![header_dir("r.test_5000_")]);
    let c = config_toml_entries(&files.facts);
    assert_eq!(
        kinds(&c),
        [
            ("r.test:5000".to_string(), CredKind::BasicAuth),
            ("q.test".to_string(), CredKind::BasicAuth),
        ]
    );
    let h = hosts_toml_entries(&files.facts);
    assert_eq!(kinds(&h), [("r.test:5000".to_string(), CredKind::Header)]);
    assert_eq!(
        h[0].key,
        "host.\"https://r.test:5000\".header.Authorization"
    );
    assert!(!format!("{c:?}{h:?}").contains("hunter2") && !format!("{h:?}").contains("s3cr3t"));
}

#[test]
fn credential_providers_are_read_from_json_and_yaml() {
    let yaml = "apiVersion: kubelet.config.k8s.io/v1\nkind: CredentialProviderConfig\nproviders:\n  - name: ecr-credential-provider\n    matchImages:\n      - \"*.dkr.ecr.*.amazonaws.com\"\n      - '*.dkr.ecr.*.amazonaws.com.cn'\n    defaultCacheDuration: \"12h\"\n  - name: gcp\n    matchImages: [\"gcr.io\", \"*.pkg.dev\"]\n";
    let y = provider_config_entries("/etc/kubernetes/credential-providers.yaml", yaml);
    let patterns: Vec<&str> = y.iter().map(|e| e.registry.as_str()).collect();
    assert_eq!(
        patterns,
        [
            "*.dkr.ecr.*.amazonaws.com",
            "*.dkr.ecr.*.amazonaws.com.cn",
            "gcr.io",
            "*.pkg.dev"
        ]
    );
    assert_eq!(y[3].key, "providers.\"gcp\"");
    let json = "{\"providers\": [{\"name\": \"p\", \"matchImages\": [\"r.test\"]}]}";
    assert_eq!(
        provider_config_entries("/p.json", json)[0].registry,
        "r.test"
    );
}

#[test]
fn a_clean_plan_touches_only_the_registrys_entries_and_restarts_only_for_config_toml() {
    let files = facts(
        CONFIG,
        vec![header_dir("r.test:5000"), header_dir("other.test:5000")],
    );
    let docker = vec![("/root/.docker/config.json".to_string(), DOCKER.to_string())];
    let plan = plan_clean(
        &files,
        &docker,
        Some(&host("r.test:5000")),
        "containerd.service",
        None,
    )
    .unwrap();
    let paths: Vec<String> = plan
        .steps
        .iter()
        .map(|s| match s {
            Step::WriteFile { path, .. } | Step::MoveToBackup { path, .. } => {
                path.display().to_string()
            }
            Step::RestartUnit { unit, .. } => unit.clone(),
            Step::RemoveImage { image, .. } => image.clone(),
        })
        .collect();
    assert_eq!(
        paths,
        [
            "/root/.docker/config.json",
            "/etc/containerd/certs.d/r.test:5000/hosts.toml",
            "/etc/containerd/config.toml",
            "containerd.service",
        ]
    );
    let config_after = plan
        .steps
        .iter()
        .find_map(|s| match s {
            Step::WriteFile { path, after, .. } if path.ends_with("config.toml") => Some(after),
            _ => None,
        })
        .unwrap();
    assert!(
        !config_after.contains("hunter2") && config_after.contains("q.test"),
        "{config_after}"
    );
    assert!(config_after.contains("config_path"), "{config_after}");

    // Only a docker file to clean: no restart.
    let plan = plan_clean(
        &files,
        &docker,
        Some(&host("gcr.io")),
        "containerd.service",
        None,
    )
    .unwrap();
    assert!(!plan.restarts());
    assert!(matches!(
        plan_clean(&files, &[], Some(&host("nothing.test")), "c", None),
        Err(CredsError::NothingToClean { .. })
    ));
}
