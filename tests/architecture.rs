//! The shape of the code, kept by tests: the core crate does no I/O and knows no
//! transport or runtime, so the compiler keeps diagnosis and planning pure.

/// What the core may depend on: parsing, formatting and hashing, nothing that talks.
const CORE_MAY_USE: &[&str] = &[
    // Multi-literal search (the log scanner, the classifier): pure computation on bytes.
    "aho-corasick",
    "base64",
    "memchr",
    "ring",
    "serde",
    "serde_json",
    "similar",
    "thiserror",
    "time",
    "toml_edit",
];

#[test]
fn the_core_crate_depends_on_nothing_that_does_io() {
    let manifest: toml::Table = std::fs::read_to_string("crates/core/Cargo.toml")
        .unwrap()
        .parse()
        .unwrap();
    let deps = manifest["dependencies"].as_table().unwrap();
    for name in deps.keys() {
        assert!(
            CORE_MAY_USE.contains(&name.as_str()),
            "the core must stay pure: `{name}` is not on its list (ARCHITECTURE.md)"
        );
    }
}

/// Calls that read the outside world; the core gets their results as facts.
const IO_CALLS: &[&str] = &[
    "std::fs",
    "std::net::TcpStream",
    "std::process",
    "std::env",
    "Instant::now",
    "SystemTime::now",
    "tokio",
];

/// Every `.rs` file under `dir` with its text.
fn rust_files(dir: &str) -> Vec<(std::path::PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(dir)];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    out
}

#[test]
fn the_core_sources_make_no_io_calls() {
    let mut offenders = Vec::new();
    for (path, text) in rust_files("crates/core/src") {
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if let Some(call) = IO_CALLS.iter().find(|c| code.contains(*c)) {
                offenders.push(format!("{}:{}: {call}", path.display(), n + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "I/O in the core:\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_cli_knows_only_the_api_the_core_and_its_kubernetes_adapter() {
    let mut offenders = Vec::new();
    for (path, text) in rust_files("src/cli") {
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + 7..];
                let module = rest
                    .split(|c: char| !c.is_alphanumeric() && c != '_')
                    .next();
                // `k8s`: the Kubernetes step runs in the CLI with the operator's own
                // kubeconfig (DESIGN.md, second round), so the CLI owns that adapter.
                if !matches!(module, Some("cli" | "api" | "k8s")) {
                    offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the CLI reaches past the API:\n{}",
        offenders.join("\n")
    );
}

/// A node agent must not hold rights to patch ServiceAccounts (DESIGN.md, second
/// round): nothing the daemon runs may reach the Kubernetes adapter or the kube crates.
#[test]
fn the_daemon_never_talks_to_kubernetes() {
    let mut offenders = Vec::new();
    let daemon_dirs = [
        "src/server",
        "src/controller",
        "src/plan",
        "src/containerd",
        "src/systemd",
        "src/registry",
    ];
    let mut files: Vec<_> = daemon_dirs.iter().flat_map(|d| rust_files(d)).collect();
    let bin = "src/bin/ctrdiagd.rs";
    files.push((bin.into(), std::fs::read_to_string(bin).unwrap()));
    for (path, text) in files {
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if ["crate::k8s", "ctrdiag::k8s", "kube::", "k8s_openapi"]
                .iter()
                .any(|c| code.contains(c))
            {
                offenders.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "the daemon reaches Kubernetes:\n{}",
        offenders.join("\n")
    );
}
