//! What an operator relies on in `deploy/`: the DaemonSet mounts only the documented
//! host paths, at the paths containerd sees; node-problem-detector reaches ctrdiagd's
//! socket and runs `ctrdiag check` within its limits; the fleet's settings pass the
//! daemon's own parser and name only paths the pod can see; the scrape job, the
//! ServiceMonitor and the alerts fit together, pass the real `promtool`, and use only
//! metric names the daemon exposes (checked against a lab daemon's real /metrics).

mod lab;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ctrdiag::settings::Settings;
use serde::Deserialize;
use serde_yaml_ng::Value;

use lab::containerd::{LabContainerd, Version};
use lab::daemon::Daemon;

/// Every host path the DaemonSets may mount (README, "Monitoring and fleets"), and
/// whether ctrdiagd may write there. A new mount needs a line here and a reason.
const DOCUMENTED_HOST_PATHS: &[(&str, bool, &str)] = &[
    ("/run/containerd", false, "containerd's socket"),
    (
        "/etc/containerd",
        true,
        "config.toml and certs.d, which ctrdiag fixes",
    ),
    ("/var/lib/ctrdiag", true, "journal, backups, change records"),
    ("/run/ctrdiag", true, "ctrdiagd's socket, shared with NPD"),
    (
        "/var/log",
        false,
        "the persistent journal (/var/log/journal)",
    ),
    ("/run/log/journal", false, "the volatile journal"),
    ("/run/dbus", false, "the system bus: restarting containerd"),
    (
        "/etc/ssl/certs",
        false,
        "the node's trust store, for probes",
    ),
    (
        "/root/.docker",
        true,
        "root's credentials, which the kubelet reads",
    ),
    (
        "/etc/rancher",
        false,
        "k3s / RKE2 registries.yaml: owner detection, the change fix prints",
    ),
    (
        "/etc/os-release",
        false,
        "the host's os-release: Bottlerocket detection",
    ),
];

/// Host files mounted at another path in the pod: (host path, path in the pod). Only
/// read-only facts about the host that containerd never reads, kept apart from the
/// image's own file of that name (the pod's settings name the pod's path).
const HOST_FILES: &[(&str, &str)] = &[("/etc/os-release", "/host/etc/os-release")];

/// Metrics ctrdiagd exposes today (src/metrics), checked against a real scrape.
const EXPOSED: &[&str] = &[
    "ctrdiag_build_info",
    "ctrdiag_test_pulls_total",
    "ctrdiag_diagnoses_total",
    "ctrdiag_changes_total",
    "ctrdiag_containerd_up",
    "ctrdiag_cri_ready",
    "ctrdiag_insecure_settings",
    "ctrdiag_insecure_settings_overdue",
    "ctrdiag_damaged_changes",
    "ctrdiag_recovery_pending",
    "ctrdiag_detected_events_total",
    "ctrdiag_registry_problem",
    "ctrdiag_probes_total",
    "ctrdiag_registry_certificate_expiry_timestamp_seconds",
    "ctrdiag_last_successful_probe_timestamp_seconds",
    "ctrdiag_log_follower_up",
    "ctrdiag_log_lines_total",
];

/// The scrape job's name: the alerts select `job="ctrdiag"`, and the Prometheus
/// Operator names the job after the Service.
const JOB: &str = "ctrdiag";

fn deploy(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(rel)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every document of a (multi-document) YAML file.
fn yaml_documents(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| {
            Value::deserialize(d).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn str_of<'a>(v: &'a Value, what: &str) -> &'a str {
    v.as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v:?}"))
}

fn seq<'a>(v: &'a Value, what: &str) -> &'a [Value] {
    v.as_sequence()
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("{what} is not a list: {v:?}"))
}

/// The Kubernetes objects of the deploy/ manifests.
struct Objects(Vec<Value>);

impl Objects {
    fn load(files: &[&str]) -> Objects {
        Objects(
            files
                .iter()
                .flat_map(|f| yaml_documents(&deploy(f)))
                .collect(),
        )
    }

    fn get(&self, kind: &str, name: &str) -> &Value {
        self.0
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    fn all(&self, kind: &str) -> impl Iterator<Item = &Value> {
        self.0.iter().filter(move |o| o["kind"] == kind)
    }

    fn config_data(&self, configmap: &str, key: &str) -> &str {
        str_of(
            &self.get("ConfigMap", configmap)["data"][key],
            &format!("ConfigMap {configmap} key {key}"),
        )
    }
}

fn manifests() -> Objects {
    Objects::load(&[
        "kubernetes/daemonset.yaml",
        "prometheus/servicemonitor.yaml",
    ])
}

/// A container of a workload's pod template, by name.
fn container<'a>(workload: &'a Value, name: &str) -> &'a Value {
    let spec = &workload["spec"]["template"]["spec"];
    spec["containers"]
        .as_sequence()
        .into_iter()
        .chain(spec["initContainers"].as_sequence())
        .flatten()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// A mount of `container`: the volume behind it, and whether it is read-only.
struct Mount<'a> {
    path: &'a str,
    read_only: bool,
    volume: &'a Value,
}

fn mounts<'a>(workload: &'a Value, container: &'a Value) -> Vec<Mount<'a>> {
    let volumes = seq(&workload["spec"]["template"]["spec"]["volumes"], "volumes");
    seq(&container["volumeMounts"], "volumeMounts")
        .iter()
        .map(|m| Mount {
            path: str_of(&m["mountPath"], "mountPath"),
            read_only: m["readOnly"].as_bool().unwrap_or(false),
            volume: volumes
                .iter()
                .find(|v| v["name"] == m["name"])
                .unwrap_or_else(|| panic!("mount of an undeclared volume: {m:?}")),
        })
        .collect()
}

/// The mount of `container` that holds `path`, the longest such.
fn mount_holding<'a>(mounts: &'a [Mount<'a>], path: &Path) -> Option<&'a Mount<'a>> {
    mounts
        .iter()
        .filter(|m| path.starts_with(m.path))
        .max_by_key(|m| m.path.len())
}

fn pod_labels(workload: &Value) -> &serde_yaml_ng::Mapping {
    workload["spec"]["template"]["metadata"]["labels"]
        .as_mapping()
        .expect("pod template labels")
}

/// Whether every `key: value` of `selector` is among `labels`.
fn selects(selector: &Value, labels: &serde_yaml_ng::Mapping) -> bool {
    let selector = selector.as_mapping().expect("a label selector");
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn daemon(objects: &Objects) -> &Value {
    objects.get("DaemonSet", "ctrdiagd")
}

fn npd(objects: &Objects) -> &Value {
    objects.get("DaemonSet", "ctrdiag-npd")
}

fn promtool() -> PathBuf {
    let lab = std::env::var("CTRDIAG_LAB_DIR").unwrap_or_else(|_| "/opt/ctrdiag-lab".into());
    let path = Path::new(&lab).join("prometheus/usr/bin/promtool");
    assert!(
        path.is_file(),
        "promtool is not installed at {}: run scripts/install-deps.sh",
        path.display()
    );
    path
}

/// Runs promtool with `args` in `dir`, failing the test unless it succeeds; its output.
fn run_promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new(promtool())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn every_file_under_deploy_parses() {
    let mut seen = 0;
    let mut stack = vec![deploy("")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.display().to_string();
            match path.extension().and_then(|e| e.to_str()) {
                None if path.is_dir() => stack.push(path),
                Some("yaml" | "yml") => {
                    let docs = yaml_documents(&path);
                    assert!(!docs.is_empty(), "{name} holds no document");
                    seen += 1;
                }
                Some("json") => {
                    serde_json::from_str::<serde_json::Value>(&read(&path))
                        .unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
                    seen += 1;
                }
                Some("toml") => {
                    Settings::parse(&path, &read(&path)).unwrap_or_else(|e| panic!("{name}: {e}"));
                    seen += 1;
                }
                _ => panic!("{name}: what is this file? Teach this test to check it"),
            }
        }
    }
    // At least ctrdiagd.toml, daemonset.yaml, ctrdiag-monitor.json and the four
    // Prometheus files: the walk did reach them.
    assert!(seen >= 7, "only {seen} files found under deploy/");
}

#[test]
fn host_paths_are_the_documented_ones_at_the_paths_containerd_sees() {
    let objects = manifests();
    let mut used = Vec::new();
    for workload in objects.all("DaemonSet") {
        let name = str_of(&workload["metadata"]["name"], "name");
        for container in seq(
            &workload["spec"]["template"]["spec"]["containers"],
            "containers",
        ) {
            for m in mounts(workload, container) {
                let host = &m.volume["hostPath"];
                if host.is_null() {
                    continue;
                }
                let path = str_of(&host["path"], "hostPath.path");
                let Some((_, writable, _)) =
                    DOCUMENTED_HOST_PATHS.iter().find(|(p, _, _)| *p == path)
                else {
                    panic!("{name} mounts undocumented host path {path}");
                };
                // An unset type creates what is missing without saying so; each
                // mount chooses (Directory: must exist; DirectoryOrCreate: harmless).
                let kind = str_of(&host["type"], &format!("{name}: type of {path}"));
                if let Some((_, in_pod)) = HOST_FILES.iter().find(|(p, _)| *p == path) {
                    assert_eq!(kind, "File", "{name}: {path}");
                    assert_eq!(m.path, *in_pod, "{name} mounts {path} elsewhere");
                    assert!(!writable && m.read_only, "{name} may not write {path}");
                    used.push(path);
                    continue;
                }
                assert!(
                    ["Directory", "DirectoryOrCreate"].contains(&kind),
                    "{name}: {path} has type {kind}: mount directories, never sockets or files (they are replaced, or cannot be moved)"
                );
                // containerd, on the host, reads what ctrdiag writes (hosts.toml names
                // its CA by absolute path): a path must mean the same on both sides.
                assert_eq!(m.path, path, "{name} mounts {path} elsewhere");
                if name == "ctrdiagd" {
                    assert_eq!(m.read_only, !writable, "{name}: {path} read-only?");
                } else {
                    assert!(m.read_only, "{name} may not write {path}");
                }
                used.push(path);
            }
        }
    }
    for (path, _, why) in DOCUMENTED_HOST_PATHS {
        assert!(
            used.contains(path),
            "{path} ({why}) is documented but not mounted: drop it from the list"
        );
    }
}

#[test]
fn daemon_pod_is_unprivileged_tokenless_and_on_every_node() {
    let objects = manifests();
    let ds = daemon(&objects);
    let spec = &ds["spec"]["template"]["spec"];
    let sa = objects.get(
        "ServiceAccount",
        str_of(&spec["serviceAccountName"], "serviceAccountName"),
    );
    assert_eq!(sa["automountServiceAccountToken"], false);
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert!(
        seq(&spec["tolerations"], "tolerations")
            .iter()
            .any(|t| t["operator"] == "Exists" && t["key"].is_null()),
        "ctrdiagd must tolerate every taint"
    );
    let c = container(ds, "ctrdiagd");
    let sc = &c["securityContext"];
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(
        seq(&sc["capabilities"]["drop"], "drop"),
        [Value::from("ALL")]
    );
    let added: Vec<&str> = seq(&sc["capabilities"]["add"], "add")
        .iter()
        .map(|c| str_of(c, "capability"))
        .collect();
    assert_eq!(added, ["CHOWN", "FOWNER"]);
    assert!(!c["livenessProbe"].is_null(), "no liveness probe");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/metrics");
}

#[test]
fn node_problem_detector_reaches_the_daemons_socket() {
    let objects = manifests();
    let settings = fleet_settings(&objects);
    // `ctrdiag check` runs without --socket: the daemon must listen at the CLI's
    // default, in the directory both pods mount from the host.
    assert_eq!(
        settings.listen_socket,
        Path::new(ctrdiag::api::DEFAULT_SOCKET)
    );
    let socket_dir = settings.listen_socket.parent().unwrap();
    let ds = daemon(&objects);
    let npd = npd(&objects);
    let daemon_mounts = mounts(ds, container(ds, "ctrdiagd"));
    let npd_mounts = mounts(npd, container(npd, "node-problem-detector"));
    let on_daemon = mount_holding(&daemon_mounts, &settings.listen_socket).expect("daemon");
    let on_npd = mount_holding(&npd_mounts, &settings.listen_socket).expect("NPD");
    assert_eq!(on_daemon.path, socket_dir.to_str().unwrap());
    assert_eq!(on_npd.path, on_daemon.path);
    assert!(!on_daemon.read_only);
    assert!(on_npd.read_only);
    assert_eq!(
        on_npd.volume["hostPath"]["path"],
        on_daemon.volume["hostPath"]["path"]
    );
}

#[test]
fn node_problem_detector_runs_ctrdiag_check_within_its_limits() {
    let file: serde_json::Value =
        serde_json::from_str(&read(&deploy("node-problem-detector/ctrdiag-monitor.json"))).unwrap();
    assert_eq!(file["plugin"], "custom");
    let config = &file["pluginConfig"];
    assert_eq!(config["invoke_interval"], "30s");
    let timeout = |v: &serde_json::Value| {
        humantime::parse_duration(v.as_str().expect("a duration")).expect("a duration")
    };
    // `ctrdiag check` answers within 4 s; NPD kills a plugin at its timeout.
    assert!(timeout(&config["timeout"]) <= Duration::from_secs(5));
    assert!(timeout(&config["timeout"]) >= Duration::from_secs(4));
    assert_eq!(config["max_output_length"], 80);
    let condition = &file["conditions"][0];
    assert_eq!(condition["type"], "RegistryTLSProblem");
    assert_eq!(condition["reason"], "RegistryTLSOK");
    let rules = file["rules"].as_array().unwrap();
    let permanent = rules
        .iter()
        .find(|r| r["type"] == "permanent")
        .expect("a permanent rule");
    assert_eq!(permanent["condition"], "RegistryTLSProblem");
    for rule in rules {
        assert!(
            timeout(&rule["timeout"]) <= Duration::from_secs(5),
            "{rule}"
        );
        assert_eq!(rule["args"], serde_json::json!(["check"]), "{rule}");
        assert!(rule["path"].as_str().unwrap().ends_with("/ctrdiag"));
    }

    // The DaemonSet carries this very file, and NPD runs the binary the init
    // container put at the rule's path.
    let objects = manifests();
    let embedded: serde_json::Value =
        serde_json::from_str(objects.config_data("ctrdiag-npd-config", "ctrdiag-monitor.json"))
            .unwrap();
    assert_eq!(
        embedded, file,
        "the ConfigMap differs from ctrdiag-monitor.json"
    );
    let npd = npd(&objects);
    let detector = container(npd, "node-problem-detector");
    let config_mount = mounts(npd, detector)
        .into_iter()
        .find(|m| m.volume["configMap"]["name"] == "ctrdiag-npd-config")
        .expect("NPD mounts its config");
    let flag = format!(
        "--config.custom-plugin-monitor={}/ctrdiag-monitor.json",
        config_mount.path
    );
    assert!(
        seq(&detector["command"], "command").contains(&Value::from(flag.as_str())),
        "NPD is not started with {flag}"
    );
    let path = permanent["path"].as_str().unwrap();
    let install = container(npd, "install-ctrdiag");
    assert_eq!(
        seq(&install["command"], "command").last(),
        Some(&Value::from(path))
    );
    let bin = Path::new(path).parent().unwrap();
    for c in [install, detector] {
        assert!(
            mounts(npd, c)
                .iter()
                .any(|m| Path::new(m.path) == bin && !m.volume["emptyDir"].is_null()),
            "{:?} does not mount the binary's directory",
            c["name"]
        );
    }
}

/// The fleet's ctrdiagd.toml through the daemon's own parser.
fn fleet_settings(objects: &Objects) -> Settings {
    let text = objects.config_data("ctrdiagd-config", "ctrdiagd.toml");
    Settings::parse(Path::new("/etc/ctrdiag/ctrdiagd.toml"), text)
        .unwrap_or_else(|e| panic!("the fleet's ctrdiagd.toml is refused: {e}"))
}

#[test]
fn fleet_settings_are_accepted_and_name_only_paths_the_pod_sees() {
    let objects = manifests();
    let settings = fleet_settings(&objects);
    let ds = daemon(&objects);
    let c = container(ds, "ctrdiagd");
    let mounts = mounts(ds, c);
    let settings_mount = mounts
        .iter()
        .find(|m| m.volume["configMap"]["name"] == "ctrdiagd-config")
        .expect("the settings are mounted");
    assert!(
        seq(&c["command"], "command").contains(&Value::from(format!(
            "{}/ctrdiagd.toml",
            settings_mount.path
        ))),
        "ctrdiagd is not started with the mounted settings"
    );
    let raw: toml::Table =
        toml::from_str(objects.config_data("ctrdiagd-config", "ctrdiagd.toml")).unwrap();
    let journal = PathBuf::from(raw["journal_directory"].as_str().unwrap());
    let mut paths = vec![
        (settings.containerd_socket.clone(), false),
        (journal, false),
        (settings.listen_socket.clone(), true),
        (settings.containerd_config.clone(), true),
        (settings.certs_dir.clone(), true),
        (settings.state_dir.clone(), true),
    ];
    paths.extend(settings.credential_files.iter().map(|p| (p.clone(), true)));
    // Owner detection: the registries.yaml k3s and RKE2 read (node_manager_registries
    // is left at the owner's own), and the os-release file.
    assert_eq!(settings.node_manager_registries, None);
    paths.push(("/etc/rancher/k3s/registries.yaml".into(), false));
    paths.push(("/etc/rancher/rke2/registries.yaml".into(), false));
    paths.push((settings.os_release.clone(), false));
    for (path, write) in paths {
        let m = mount_holding(&mounts, &path)
            .unwrap_or_else(|| panic!("{} is not mounted in ctrdiagd", path.display()));
        assert!(
            !write || !m.read_only,
            "{} is read-only in the pod",
            path.display()
        );
    }
    // os_release names the host's file, not the image's own.
    let os_release = mount_holding(&mounts, &settings.os_release).unwrap();
    assert_eq!(Path::new(os_release.path), settings.os_release);
    assert_eq!(os_release.volume["hostPath"]["path"], "/etc/os-release");
    // The daemon's own socket directory, containerd's socket and the system bus,
    // mounted as directories (each daemon makes a new socket when it restarts).
    let dbus = Path::new("/run/dbus/system_bus_socket");
    for socket in [settings.containerd_socket.as_path(), dbus] {
        let m = mount_holding(&mounts, socket)
            .unwrap_or_else(|| panic!("{} is not mounted in ctrdiagd", socket.display()));
        assert_eq!(Path::new(m.path), socket.parent().unwrap());
    }
    assert_eq!(
        settings.dbus_address, None,
        "the system bus at its default path"
    );
    // Prometheus finds the port by the container's port declaration.
    let addr = settings.metrics_address.expect("metrics are served");
    assert!(addr.ip().is_unspecified(), "other nodes must reach {addr}");
    let port = seq(&c["ports"], "ports")
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("a metrics port");
    assert_eq!(port["containerPort"], Value::from(addr.port()));
}

#[test]
fn the_service_monitor_and_the_scrape_job_select_only_the_daemons_pods() {
    let objects = manifests();
    let ds = daemon(&objects);
    let service = objects.get("Service", JOB);
    assert_eq!(service["spec"]["clusterIP"], "None");
    assert!(selects(&service["spec"]["selector"], pod_labels(ds)));
    assert!(!selects(
        &service["spec"]["selector"],
        pod_labels(npd(&objects))
    ));
    let service_port = &service["spec"]["ports"][0];
    assert_eq!(service_port["targetPort"], "metrics");
    let monitor = objects.get("ServiceMonitor", JOB);
    let service_labels = service["metadata"]["labels"].as_mapping().unwrap();
    assert!(selects(
        &monitor["spec"]["selector"]["matchLabels"],
        service_labels
    ));
    let namespace = &ds["metadata"]["namespace"];
    assert_eq!(&service["metadata"]["namespace"], namespace);
    assert_eq!(
        monitor["spec"]["namespaceSelector"]["matchNames"][0],
        *namespace
    );
    assert_eq!(
        monitor["spec"]["endpoints"][0]["port"],
        service_port["name"]
    );

    let config = &yaml_documents(&deploy("prometheus/scrape.yaml"))[0];
    let job = &config["scrape_configs"][0];
    assert_eq!(job["job_name"], JOB);
    let sd = &job["kubernetes_sd_configs"][0];
    assert_eq!(sd["role"], "pod");
    assert_eq!(sd["namespaces"]["names"][0], *namespace);
    // Apply the `keep` rules on pod labels as Prometheus would (their regexes are
    // literals): ctrdiagd's pods pass, node-problem-detector's do not.
    let keeps = |labels: &serde_yaml_ng::Mapping| {
        seq(&job["relabel_configs"], "relabel_configs")
            .iter()
            .filter(|r| r["action"] == "keep")
            .all(|r| {
                let values: Vec<String> = seq(&r["source_labels"], "source_labels")
                    .iter()
                    .map(|l| {
                        match str_of(l, "label").strip_prefix("__meta_kubernetes_pod_label_") {
                            Some(label) => labels
                                .iter()
                                .find(|(k, _)| {
                                    k.as_str().unwrap().replace(['.', '/', '-'], "_") == label
                                })
                                .map(|(_, v)| str_of(v, "label").to_string())
                                .unwrap_or_default(),
                            // The container port's name.
                            None => "metrics".to_string(),
                        }
                    })
                    .collect();
                values.join(";") == str_of(&r["regex"], "regex")
            })
    };
    assert!(keeps(pod_labels(ds)));
    assert!(!keeps(pod_labels(npd(&objects))));
}

#[test]
fn promtool_accepts_the_scrape_config_rules_and_rule_tests() {
    let dir = deploy("prometheus");
    run_promtool(&["check", "rules", "alerts.yaml"], &dir);
    let tests = run_promtool(&["test", "rules", "alerts_test.yaml"], &dir);
    assert!(tests.contains("SUCCESS"), "{tests}");
    // Debian's Prometheus is built without Kubernetes discovery ("field
    // kubernetes_sd_configs not found"): check a copy that finds the same target
    // statically, so promtool still checks the relabelling and the rule files.
    let copy = lab::scratch_dir("scrape-config-");
    let mut config: Value = yaml_documents(&dir.join("scrape.yaml")).remove(0);
    let job = config["scrape_configs"][0].as_mapping_mut().unwrap();
    job.remove("kubernetes_sd_configs")
        .expect("kubernetes discovery");
    job.insert(
        "static_configs".into(),
        serde_yaml_ng::from_str("[{targets: ['127.0.0.1:9456']}]").unwrap(),
    );
    std::fs::write(
        copy.path().join("scrape.yaml"),
        serde_yaml_ng::to_string(&config).unwrap(),
    )
    .unwrap();
    std::fs::copy(dir.join("alerts.yaml"), copy.path().join("alerts.yaml")).unwrap();
    let checked = run_promtool(&["check", "config", "scrape.yaml"], copy.path());
    assert!(checked.contains("SUCCESS: 8 rules found"), "{checked}");
}

/// The rules of alerts.yaml, each a (name, rule) pair.
fn alert_rules() -> Vec<(String, Value)> {
    let file = &yaml_documents(&deploy("prometheus/alerts.yaml"))[0];
    seq(&file["groups"], "groups")
        .iter()
        .flat_map(|g| seq(&g["rules"], "rules").iter().cloned())
        .map(|r| (str_of(&r["alert"], "alert").to_string(), r))
        .collect()
}

#[test]
fn every_alert_says_how_bad_and_what_to_run() {
    let rules = alert_rules();
    let names: Vec<&str> = rules.iter().map(|(n, _)| n.as_str()).collect();
    for wanted in [
        "CtrdiagRegistryPullsFailing",
        "CtrdiagCertificateExpiringSoon",
        "CtrdiagInsecureSettingOverdue",
        "CtrdiagContainerdDown",
        "CtrdiagCRINotReady",
        "CtrdiagLogFollowerDown",
        "CtrdiagDown",
    ] {
        assert!(names.contains(&wanted), "no alert {wanted}");
    }
    for (name, rule) in &rules {
        let severity = str_of(&rule["labels"]["severity"], "severity");
        assert!(["warning", "critical"].contains(&severity), "{name}");
        assert!(!str_of(&rule["annotations"]["summary"], "summary").is_empty());
        let description = str_of(&rule["annotations"]["description"], "description");
        assert!(
            description.contains("`ctrdiag "),
            "{name}: the description names no ctrdiag command"
        );
        let expr = str_of(&rule["expr"], "expr");
        assert!(expr.contains(&format!("job=\"{JOB}\"")), "{name}: {expr}");
    }
}

/// The `ctrdiag_` metric names a PromQL expression uses.
fn metric_names(expr: &str) -> Vec<&str> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("ctrdiag_"))
        .collect()
}

#[test]
fn alerts_use_only_metrics_the_daemon_exposes() {
    for (name, rule) in alert_rules() {
        for metric in metric_names(str_of(&rule["expr"], "expr")) {
            assert!(
                EXPOSED.contains(&metric),
                "{name} uses {metric}, which ctrdiagd does not expose"
            );
        }
    }
}

/// The metric names of an OpenMetrics exposition, from its `# TYPE` lines (a
/// counter's samples carry `_total`).
fn exposed_names(exposition: &str) -> Vec<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| match l.split_once(' ') {
            Some((name, "counter")) => format!("{name}_total"),
            Some((name, _)) => name.to_string(),
            None => panic!("bad TYPE line {l:?}"),
        })
        .collect()
}

#[tokio::test]
async fn the_metric_lists_match_a_real_daemons_metrics_and_memory_limit() {
    let ctr = LabContainerd::start(Version::V2_1).await;
    let addr = format!("127.0.0.1:{}", lab::free_port());
    let lab_daemon = Daemon::start_with(&ctr, &format!("metrics_address = \"{addr}\"\n")).await;
    let scrape = lab::scrape(&addr).await;
    let body = scrape.split_once("\r\n\r\n").expect("an HTTP response").1;
    let names = exposed_names(body);
    for name in EXPOSED {
        assert!(names.iter().any(|n| n == name), "{name} missing:\n{body}");
    }
    for name in &names {
        assert!(
            EXPOSED.contains(&name.as_str()),
            "ctrdiagd exposes {name}, which the lists here do not know:\n{body}"
        );
    }

    // The memory limit leaves room above what the daemon really uses.
    let status = std::fs::read_to_string(format!("/proc/{}/status", lab_daemon.pid())).unwrap();
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    let objects = manifests();
    let limit = str_of(
        &container(daemon(&objects), "ctrdiagd")["resources"]["limits"]["memory"],
        "memory limit",
    );
    let limit_kib: u64 = limit.strip_suffix("Mi").unwrap().parse::<u64>().unwrap() * 1024;
    eprintln!("ctrdiagd VmRSS {rss_kib} KiB, limit {limit_kib} KiB");
    assert!(
        rss_kib * 2 < limit_kib,
        "RSS {rss_kib} KiB vs limit {limit}"
    );
}
