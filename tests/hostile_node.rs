//! Hostile files on the node: config.toml replaced by a FIFO, a 1 GiB file, bytes that
//! are not UTF-8, TOML nested beyond reason, or a symlink; hosts.toml a directory, a
//! FIFO or a symlink; symlinks planted in certs.d, the backup area and the state
//! directory; journal records cut short or planted as links and FIFOs. Every call
//! (status, diagnose, fix --dry-run, fix, changes, rollback) ends by a deadline with
//! the file and the reason, and nothing outside the managed directories changes.

#[macro_use]
mod lab;

use std::path::{Path, PathBuf};
use std::time::Duration;

use lab::certs::CertKind;
use lab::containerd::{LabContainerd, Version};
use lab::daemon::{CliRun, Daemon};
use lab::registry::{Registry, RegistryKind};

/// No call may take longer than this on any of these files (a hang fails the test).
/// A damage to the journal: what it is, how to make it, what the report says.
type Case<'a> = (&'static str, Box<dyn Fn() + 'a>, &'static str);

const DEADLINE: Duration = Duration::from_secs(60);
/// An image, so a fix has its verifying pull without more flags.
const TARGET: &str = "registry.ctrdiag.test:5443/hostile/app:latest";

async fn bounded(daemon: &Daemon, args: &[&str]) -> CliRun {
    tokio::time::timeout(DEADLINE, daemon.cli(args))
        .await
        .unwrap_or_else(|_| panic!("`ctrdiag {}` hung for {DEADLINE:?}", args.join(" ")))
}

fn text(run: &CliRun) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
}

fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

/// A file outside every managed directory that planted links point at.
struct Outside {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

impl Outside {
    fn new() -> Outside {
        let dir = lab::scratch_dir("outside-");
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::write(root.join("precious"), "version = 2\n# not ctrdiag's\n").unwrap();
        std::fs::create_dir(root.join("dir")).unwrap();
        Outside { _dir: dir, root }
    }
    fn file(&self) -> PathBuf {
        self.root.join("precious")
    }
    fn dir(&self) -> PathBuf {
        self.root.join("dir")
    }
    fn state(&self) -> String {
        format!("{:?}", lab::tree::snapshot(&self.root))
    }
}

/// Runs the calls that read containerd's files; each names `file` and `reason`, and
/// the two fixes are refused.
async fn every_reader_names(daemon: &Daemon, file: &Path, reason: &str, tried: &mut usize) {
    let f = file.display().to_string();
    let status = bounded(daemon, &["-o", "json", "status"]).await;
    assert!(
        text(&status).contains(&f) && text(&status).contains(reason),
        "status: {status:?}"
    );
    let diagnose = bounded(daemon, &["-o", "json", "diagnose", TARGET, "--skip-pull"]).await;
    assert!(
        text(&diagnose).contains(&f) && text(&diagnose).contains(reason),
        "diagnose: {diagnose:?}"
    );
    for dry in [true, false] {
        let mut args = vec!["fix", TARGET, "--insecure-skip-verify", "--ttl", "10m"];
        if dry {
            args.push("--dry-run");
        }
        let fix = bounded(daemon, &args).await;
        assert_ne!(fix.code, 0, "{args:?}: {fix:?}");
        assert!(
            fix.stderr.contains(&f) && fix.stderr.contains(reason),
            "{args:?}: {fix:?}"
        );
    }
    *tried += 4;
}

#[tokio::test]
async fn hostile_config_toml_is_refused_by_name_without_hanging() {
    lab::ensure_hosts_entry();
    let ctr = LabContainerd::start(Version::V2_1).await;
    let daemon = Daemon::start(&ctr).await;
    let outside = Outside::new();
    let (outside_before, certs_before) = (outside.state(), lab::tree::snapshot(&ctr.certs_d));
    let config = ctr.config_file.clone();
    let original = std::fs::read(&config).unwrap();
    let mut tried = 0;

    let plant = |what: &str| {
        std::fs::remove_file(&config).unwrap();
        match what {
            "fifo" => mkfifo(&config),
            "1 GiB" => std::fs::File::create(&config)
                .unwrap()
                .set_len(1 << 30)
                .unwrap(),
            "not UTF-8" => std::fs::write(&config, b"version = 3\n# \xff\xfe\xc3\x28\n").unwrap(),
            "nested arrays" => std::fs::write(
                &config,
                format!(
                    "version = 3\nx = {}{}\n",
                    "[".repeat(100_000),
                    "]".repeat(100_000)
                ),
            )
            .unwrap(),
            "nested tables" => std::fs::write(
                &config,
                format!(
                    "version = 3\nx = {}1{}\n",
                    "{a = ".repeat(50_000),
                    "}".repeat(50_000)
                ),
            )
            .unwrap(),
            "symlink" => std::os::unix::fs::symlink(outside.file(), &config).unwrap(),
            other => panic!("{other}"),
        }
    };
    for (what, reason) in [
        ("fifo", "not a regular file"),
        ("1 GiB", "1073741824 bytes"),
        ("not UTF-8", "not UTF-8"),
        ("nested arrays", "TOML"),
        ("nested tables", "TOML"),
        ("symlink", "symlink"),
    ] {
        plant(what);
        every_reader_names(&daemon, &config, reason, &mut tried).await;
        std::fs::remove_file(&config).unwrap();
        std::fs::write(&config, &original).unwrap();
    }
    assert_eq!(outside.state(), outside_before, "nothing outside changed");
    assert_eq!(
        lab::tree::snapshot(&ctr.certs_d),
        certs_before,
        "nothing written"
    );
    let status = bounded(&daemon, &["status"]).await;
    assert_eq!(status.code, 0, "the daemon still answers: {status:?}");
    println!("hostile config.toml calls: {tried}");
}

#[tokio::test]
async fn hostile_certs_d_entries_are_named_and_nothing_is_written_through_them() {
    lab::ensure_hosts_entry();
    let ctr = LabContainerd::start(Version::V2_1).await;
    let daemon = Daemon::start(&ctr).await;
    let outside = Outside::new();
    let outside_before = outside.state();
    let host_dir = ctr.certs_d.join("registry.ctrdiag.test:5443");
    let hosts_toml = host_dir.join("hosts.toml");
    let mut tried = 0;

    // hosts.toml that containerd could not read as a file either.
    std::fs::create_dir_all(&host_dir).unwrap();
    for what in ["directory", "fifo", "symlink"] {
        match what {
            "directory" => std::fs::create_dir(&hosts_toml).unwrap(),
            "fifo" => mkfifo(&hosts_toml),
            _ => std::os::unix::fs::symlink(outside.file(), &hosts_toml).unwrap(),
        }
        let before = lab::tree::snapshot(&ctr.certs_d);
        every_reader_names(&daemon, &hosts_toml, "not a regular file", &mut tried).await;
        assert_eq!(
            lab::tree::snapshot(&ctr.certs_d),
            before,
            "{what}: nothing written"
        );
        if what == "directory" {
            std::fs::remove_dir(&hosts_toml).unwrap();
        } else {
            std::fs::remove_file(&hosts_toml).unwrap();
        }
    }
    std::fs::remove_dir(&host_dir).unwrap();

    // The host's directory itself a link out of certs.d: a fix must not write there.
    std::os::unix::fs::symlink(outside.dir(), &host_dir).unwrap();
    for dry in [true, false] {
        let mut args = vec!["fix", TARGET, "--insecure-skip-verify", "--ttl", "10m"];
        if dry {
            args.push("--dry-run");
        }
        let fix = bounded(&daemon, &args).await;
        tried += 1;
        if dry {
            continue; // a plan only: nothing is written either way
        }
        assert_ne!(fix.code, 0, "{fix:?}");
        assert!(
            fix.stderr.contains(&host_dir.display().to_string()) && fix.stderr.contains("symlink"),
            "{fix:?}"
        );
    }
    std::fs::remove_file(&host_dir).unwrap();

    // The CA file a fix --ca writes, planted as a link to a file outside.
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let dir = ctr.certs_d.join(&registry.host);
    std::fs::create_dir_all(&dir).unwrap();
    let ca_link = dir.join("ctrdiag-ca.crt");
    std::os::unix::fs::symlink(outside.file(), &ca_link).unwrap();
    let ca = registry.tls.as_ref().unwrap().ca_path.display().to_string();
    let before = lab::tree::snapshot(&ctr.certs_d);
    let fix = bounded(&daemon, &["fix", &registry.image_ref(), "--ca", &ca]).await;
    tried += 1;
    assert_ne!(fix.code, 0, "{fix:?}");
    assert!(
        fix.stderr.contains(&ca_link.display().to_string()) && fix.stderr.contains("symlink"),
        "{fix:?}"
    );
    assert_eq!(lab::tree::snapshot(&ctr.certs_d), before, "nothing written");

    assert_eq!(outside.state(), outside_before, "nothing outside changed");
    let status = bounded(&daemon, &["status"]).await;
    assert_eq!(status.code, 0, "the daemon still answers: {status:?}");
    println!("hostile certs.d calls: {tried}");
}

#[tokio::test]
async fn hostile_state_dir_entries_are_reported_and_nothing_outside_is_touched() {
    lab::ensure_hosts_entry();
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    let daemon = Daemon::start(&ctr).await;
    let outside = Outside::new();
    let outside_before = outside.state();
    let ca = registry.tls.as_ref().unwrap().ca_path.display().to_string();
    let mut tried = 0;
    // A real change to damage: a CA fix (config_path is set: no restart) that replaces
    // the operator's hosts.toml, so the change has a backup to plant a link for.
    let url = format!("https://{}", registry.host);
    let operators = ctr.certs_d.join(&registry.host);
    std::fs::create_dir_all(&operators).unwrap();
    std::fs::write(
        operators.join("hosts.toml"),
        format!(
            "server = \"{url}\"\n\n[host.\"{url}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
        ),
    )
    .unwrap();
    let fix = bounded(
        &daemon,
        &["-o", "json", "fix", &registry.image_ref(), "--ca", &ca],
    )
    .await;
    assert_eq!(fix.code, 0, "{fix:?}");
    let id = fix.json()["change_id"].as_str().unwrap().to_string();
    let changes = daemon.dir().join("state/changes");
    let change = changes.join(&id);
    let journal = change.join("journal.jsonl");
    let good = std::fs::read(&journal).unwrap();
    let certs_before = lab::tree::snapshot(&ctr.certs_d);

    // A record cut short in the middle of the journal (not a torn last line).
    let cut: Vec<u8> = {
        let mut lines: Vec<&[u8]> = good.split_inclusive(|b| *b == b'\n').collect();
        assert!(lines.len() >= 3, "{}", String::from_utf8_lossy(&good));
        let half = &lines[1][..lines[1].len() / 2];
        lines[1] = half;
        lines.concat()
    };
    let cases: Vec<Case> = vec![
        (
            "a record cut short",
            Box::new(|| std::fs::write(&journal, &cut).unwrap()),
            "damaged at line 2",
        ),
        (
            "garbage",
            Box::new(|| std::fs::write(&journal, b"\x00\x01garbage\n{\"x\":\n").unwrap()),
            "damaged at line 1",
        ),
        (
            "not UTF-8",
            Box::new(|| std::fs::write(&journal, b"{\"a\xff\":1}\n").unwrap()),
            "not UTF-8",
        ),
        (
            "a symlink",
            Box::new(|| {
                std::fs::remove_file(&journal).unwrap();
                std::os::unix::fs::symlink(outside.file(), &journal).unwrap();
            }),
            "not a regular file",
        ),
        (
            "a FIFO",
            Box::new(|| {
                std::fs::remove_file(&journal).unwrap();
                mkfifo(&journal);
            }),
            "not a regular file",
        ),
    ];
    for (what, plant, reason) in &cases {
        plant();
        let state_before = lab::tree::snapshot(&changes);
        let listed = bounded(&daemon, &["-o", "json", "changes"]).await;
        assert_eq!(listed.code, 0, "{what}: {listed:?}");
        let entry = listed.json()["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("{what}: {listed:?}"));
        assert_eq!(entry["state"], "damaged", "{what}: {entry}");
        let shown = entry.to_string();
        assert!(
            shown.contains("journal.jsonl") && shown.contains(reason),
            "{what}: {shown}"
        );
        for args in [
            vec!["rollback", id.as_str(), "--dry-run"],
            vec!["rollback", id.as_str()],
        ] {
            let run = bounded(&daemon, &args).await;
            assert_ne!(run.code, 0, "{what} {args:?}: {run:?}");
            // `changes` names the file and the reason; a rollback says why it will not.
            assert!(
                run.stderr.contains("is damaged"),
                "{what} {args:?}: {run:?}"
            );
        }
        tried += 3;
        assert_eq!(
            lab::tree::snapshot(&changes),
            state_before,
            "{what}: state unchanged"
        );
        assert_eq!(
            lab::tree::snapshot(&ctr.certs_d),
            certs_before,
            "{what}: certs.d unchanged"
        );
        let _ = std::fs::remove_file(&journal);
        std::fs::write(&journal, &good).unwrap();
    }

    // The backup a rollback restores from, planted as a link out of the state dir.
    let backups = change.join("backup");
    let planted: Vec<PathBuf> = std::fs::read_dir(&backups)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    for b in &planted {
        std::fs::remove_file(b).unwrap();
        std::os::unix::fs::symlink(outside.file(), b).unwrap();
    }
    assert!(
        !planted.is_empty(),
        "the fix replaced the operator's hosts.toml"
    );
    let certs_before = lab::tree::snapshot(&ctr.certs_d);
    let run = bounded(&daemon, &["rollback", &id]).await;
    tried += 1;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("backup") && run.stderr.contains("symlink"),
        "{run:?}"
    );
    assert_eq!(
        lab::tree::snapshot(&ctr.certs_d),
        certs_before,
        "nothing restored from outside"
    );

    // The whole changes directory a link elsewhere: the next change is refused
    // before its record is written there.
    std::fs::rename(&changes, daemon.dir().join("state/changes.real")).unwrap();
    std::os::unix::fs::symlink(outside.dir(), &changes).unwrap();
    // (A second registry: a fix that would otherwise apply, trial pull and all.)
    let second = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let second_ca = second.tls.as_ref().unwrap().ca_path.display().to_string();
    let certs_before = lab::tree::snapshot(&ctr.certs_d);
    let run = bounded(&daemon, &["fix", &second.image_ref(), "--ca", &second_ca]).await;
    assert_eq!(
        lab::tree::snapshot(&ctr.certs_d),
        certs_before,
        "nothing written"
    );
    tried += 1;
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("symlink") && run.stderr.contains("changes"),
        "{run:?}"
    );

    assert_eq!(outside.state(), outside_before, "nothing outside changed");
    let status = bounded(&daemon, &["status"]).await;
    assert_eq!(status.code, 0, "the daemon still answers: {status:?}");
    println!(
        "hostile state dir calls: {tried}; planted backups: {}",
        planted.len()
    );
}
