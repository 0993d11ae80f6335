//! The shape of the code, kept by tests: the core crate does no I/O and knows no
//! transport or runtime, so the compiler keeps diagnosis and planning pure.

/// What the core may depend on: parsing, formatting and hashing, nothing that talks.
const CORE_MAY_USE: &[&str] = &[
    "base64",
    "memchr",
    "ring",
    "serde",
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

#[test]
fn the_core_sources_make_no_io_calls() {
    let mut offenders = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("crates/core/src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (n, line) in text.lines().enumerate() {
                    let code = line.split("//").next().unwrap_or("");
                    if let Some(call) = IO_CALLS.iter().find(|c| code.contains(*c)) {
                        offenders.push(format!("{}:{}: {call}", path.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "I/O in the core:\n{}",
        offenders.join("\n")
    );
}
