//! Crash consistency for every kind of change ctrdiagd makes, against the real daemon,
//! real containerd, a real TLS registry and the stand-in systemd: a hosts.toml fix,
//! a fix that adds `config_path` and restarts containerd, the legacy `configs` table,
//! the removal of registry overrides, a credential clean, a cache purge, a rollback and
//! the end of an insecure setting's time to live.
//!
//! Each change is first made once without a crash, which gives its plan and the bytes
//! it writes. Then, for every instant the executor has a failpoint for (after the
//! change's first record, before and after each step, after the verifying pull), the
//! daemon is killed there with SIGKILL; the next start is killed again half-way
//! through its undo (after the first step it undoes); the start after that recovers.
//! After each kill, config.toml, every hosts.toml and every credential file hold either
//! their old or their new bytes and parse; after the recovery, the node is exactly as
//! before the change (files, directories, what a pull does, which images are cached)
//! and `ctrdiag changes` says so.

#[macro_use]
mod lab;

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ctrdiag::plan::{ChangeRecord, Step, journal};
use lab::certs::CertKind;
use lab::clock::TestClock;
use lab::containerd::{LabConfig, LabContainerd, Version};
use lab::daemon::{CliRun, Daemon};
use lab::registry::{Registry, RegistryKind};
use lab::systemd::{Bus, FakeSystemd};
use serde_json::Value;

const HOUR: u64 = 3600;
/// Long enough for a fix with its trial pull, a containerd restart and the verifying
/// pull on a loaded machine; a kill that does not come fails the test with the log.
const DEATH: Duration = Duration::from_secs(90);

/// How the change under test is made.
enum Start {
    /// This command makes it (`fix`, `creds clean`, `cache purge`).
    Command(Vec<String>),
    /// `rollback ID` of the change this command made.
    RollbackOf(Vec<String>),
    /// The end of the time to live of the insecure fix this command makes (`--ttl 1h`).
    ExpiryOf(Vec<String>),
}

impl Start {
    /// The executor's name for the change's kind, as failpoints name it.
    fn kind(&self) -> &'static str {
        match self {
            Start::Command(_) => "fix",
            Start::RollbackOf(_) => "rollback",
            Start::ExpiryOf(_) => "expiry",
        }
    }
}

/// A file or directory the change may touch.
#[derive(Clone, PartialEq, Eq)]
enum Entry {
    Dir,
    File(Vec<u8>),
}

/// A failed comparison shows the files' text.
impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entry::Dir => f.write_str("a directory"),
            Entry::File(bytes) => write!(f, "{:?}", String::from_utf8_lossy(bytes)),
        }
    }
}

/// config.toml, everything under certs.d and the credential files, by path.
type Snapshot = BTreeMap<PathBuf, Entry>;

struct Node {
    registry: Registry,
    daemon: Daemon,
    clock: TestClock,
    config_file: PathBuf,
    certs_d: PathBuf,
    /// Credential files the change may write or move, outside containerd's files.
    cred_files: Vec<PathBuf>,
    fake: FakeSystemd,
    _bus: Bus,
    _creds: tempfile::TempDir,
}

/// What a node is set up with: containerd's version and config, credential files
/// (name, text) and whether containerd trusts the registry's CA to begin with.
struct Setup {
    version: Version,
    config: LabConfig,
    creds: Vec<(&'static str, String)>,
    trusted: bool,
}

impl Setup {
    fn on(version: Version) -> Setup {
        Setup {
            version,
            config: LabConfig::default(),
            creds: Vec::new(),
            trusted: false,
        }
    }
}

async fn node(registry: Registry, setup: Setup) -> Node {
    let ctr = LabContainerd::start_with(setup.version, setup.config).await;
    if setup.trusted {
        ctr.trust_registry_ca(&registry);
    }
    let creds = lab::scratch_dir("creds-");
    let cred_files: Vec<PathBuf> = setup
        .creds
        .iter()
        .map(|(name, text)| {
            let path = creds.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    let list: Vec<String> = cred_files
        .iter()
        .map(|p| format!("\"{}\"", p.display()))
        .collect();
    let bus = Bus::start();
    let clock = TestClock::new();
    let settings = format!(
        "dbus_address = \"{}\"\ncredential_files = [{}]\n",
        bus.address,
        list.join(", ")
    );
    let daemon = Daemon::start_with_env(&ctr, &settings, &[clock.env()]).await;
    let (config_file, certs_d) = (ctr.config_file.clone(), ctr.certs_d.clone());
    let fake = FakeSystemd::serve(&bus, ctr).await;
    Node {
        registry,
        daemon,
        clock,
        config_file,
        certs_d,
        cred_files,
        fake,
        _bus: bus,
        _creds: creds,
    }
}

fn walk(dir: &Path, into: &mut Snapshot) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            into.insert(path.clone(), Entry::Dir);
            walk(&path, into);
        } else {
            into.insert(path.clone(), Entry::File(std::fs::read(&path).unwrap()));
        }
    }
}

impl Node {
    fn snapshot(&self) -> Snapshot {
        let mut s = Snapshot::new();
        walk(&self.certs_d, &mut s);
        for f in std::iter::once(&self.config_file).chain(&self.cred_files) {
            if let Ok(bytes) = std::fs::read(f) {
                s.insert(f.clone(), Entry::File(bytes));
            }
        }
        s
    }

    async fn cli(&self, args: &[String]) -> CliRun {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.daemon.cli(&args).await
    }

    /// `ctrdiag -o json ARGS...`, which must succeed: its JSON.
    async fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["-o", "json"];
        all.extend_from_slice(args);
        let run = self.daemon.cli(&all).await;
        assert_eq!(run.code, 0, "{run:?}\n{}", self.daemon.log());
        run.json()
    }

    /// Makes a change with `args` (without `-o json`), which must succeed: its id.
    async fn change(&self, args: &[String]) -> String {
        let mut all = vec!["-o".to_string(), "json".to_string()];
        all.extend_from_slice(args);
        let run = self.cli(&all).await;
        assert_eq!(run.code, 0, "{run:?}\n{}", self.daemon.log());
        run.json()["change_id"].as_str().unwrap().to_string()
    }

    async fn listed(&self, id: &str) -> Value {
        let changes = self.json(&["changes"]).await;
        changes["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("no change {id}: {changes:#}"))
            .clone()
    }

    async fn wait_state(&self, id: &str, state: &str) {
        lab::wait_for(
            &format!("change {id} to be {state}"),
            Duration::from_secs(30),
            || async { (self.listed(id).await["state"] == state).then_some(()) },
        )
        .await;
    }

    async fn pulls(&self) -> bool {
        let run = self
            .daemon
            .cli(&["-o", "json", "pull", &self.registry.image_ref()])
            .await;
        assert!(run.code == 0 || run.code == 1, "{run:?}");
        run.code == 0
    }

    /// The cached images (`ctrdiag images`): name to digest.
    async fn images(&self) -> BTreeMap<String, String> {
        let listed = self.json(&["images"]).await;
        listed["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let field = |k: &str| i[k].as_str().unwrap().to_string();
                (field("name"), field("digest"))
            })
            .collect()
    }

    /// Whether containerd runs the config.toml on disk (it reads it only at start).
    async fn runs_config_on_disk(&self) -> bool {
        let on_disk = std::fs::read(&self.config_file).unwrap();
        self.fake.containerd.lock().await.loaded_config() == on_disk
    }

    async fn cri_ready(&self) -> bool {
        self.json(&["status"]).await["containerd"]["cri_ready"] == true
    }

    /// Caches `images` again (a purge's removals are not undone).
    async fn cache(&self, images: &[String]) {
        for image in images {
            let run = self.daemon.cli(&["pull", "--keep", image]).await;
            assert_eq!(run.code, 0, "{run:?}");
        }
    }

    /// The ids of every change recorded so far.
    fn ids(&self) -> BTreeSet<String> {
        self.records().iter().map(|r| r.id.to_string()).collect()
    }

    /// The change records, read from the state directory (the daemon may be dead).
    fn records(&self) -> Vec<ChangeRecord> {
        journal::changes(&self.daemon.dir().join("state")).unwrap()
    }

    /// The one change of `kind` recorded since the ids `before` were.
    fn made_since(&self, before: &BTreeSet<String>, kind: &str) -> ChangeRecord {
        let mut new: Vec<ChangeRecord> = self
            .records()
            .into_iter()
            .filter(|r| !before.contains(r.id.as_str()) && kind_of(r) == kind)
            .collect();
        assert_eq!(new.len(), 1, "one new {kind} change: {new:#?}");
        new.pop().unwrap()
    }
}

/// The executor's kind of a change, as failpoints name it.
fn kind_of(record: &ChangeRecord) -> &'static str {
    if !record.meta.reverts.is_empty() {
        "expiry"
    } else if record.meta.rollback_of.is_some() {
        "rollback"
    } else {
        "fix"
    }
}

/// Every instant the executor can be killed at while it runs `steps`, with the last
/// step that had started then (the one an undo begins with).
fn crash_points(kind: &str, steps: &[Step]) -> Vec<(String, Option<usize>)> {
    let mut points = vec![(format!("{kind}:created:0"), None)];
    for (n, step) in steps.iter().enumerate() {
        if matches!(step, Step::WriteFile { .. } | Step::MoveToBackup { .. }) {
            points.push((format!("{kind}:backup:{n}"), n.checked_sub(1)));
        }
        points.push((format!("{kind}:started:{n}"), Some(n)));
        points.push((format!("{kind}:done:{n}"), Some(n)));
    }
    points.push((format!("{kind}:verified:0"), steps.len().checked_sub(1)));
    points
}

/// Each file of `now` holds the bytes of `old` or of `new` (or is absent where one of
/// them has no file), and config.toml, hosts.toml and JSON files parse.
fn assert_whole(at: &str, now: &Snapshot, old: &Snapshot, new: &Snapshot) {
    let files = |s: &Snapshot| -> Vec<PathBuf> {
        s.iter()
            .filter(|(_, e)| matches!(e, Entry::File(_)))
            .map(|(p, _)| p.clone())
            .collect()
    };
    let mut paths = files(now);
    paths.extend(files(old));
    paths.extend(files(new));
    paths.sort();
    paths.dedup();
    for path in paths {
        let (n, o, w) = (now.get(&path), old.get(&path), new.get(&path));
        assert!(
            n == o || n == w,
            "{at}: {} is neither its old nor its new self: {n:?}",
            path.display(),
        );
        let Some(Entry::File(bytes)) = n else {
            continue;
        };
        let text = String::from_utf8_lossy(bytes);
        let name = path.file_name().unwrap().to_string_lossy();
        if name.ends_with(".toml") {
            toml::from_str::<toml::Table>(&text)
                .unwrap_or_else(|e| panic!("{at}: {} does not parse: {e}", path.display()));
        } else if name.ends_with(".json") {
            serde_json::from_str::<Value>(&text)
                .unwrap_or_else(|e| panic!("{at}: {} does not parse: {e}", path.display()));
        }
    }
}

/// What `ctrdiag changes` says of each file of `change`: (path, state).
fn file_states(change: &Value) -> Vec<(String, String)> {
    change["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The interrupted change as `changes` lists it after the recovery: undone at start,
/// every file of it back to its previous bytes (or never touched) when `files_undone`
/// (not for an expiry: the recovered daemon ends the setting again at once, with the
/// same bytes, so its files may already hold them again).
async fn assert_recovered(at: &str, node: &Node, id: &str, files_undone: bool) -> Value {
    let change = node.listed(id).await;
    assert_eq!(change["state"], "rolled_back", "{at}: {change:#}");
    assert!(
        change["reason"].as_str().unwrap().contains("interrupted"),
        "{at}: {change:#}"
    );
    for (path, state) in file_states(&change).into_iter().filter(|_| files_undone) {
        assert!(
            state == "previous" || state == "untouched",
            "{at}: changes says {path} is {state}: {change:#}"
        );
    }
    change
}

/// The matrix for one kind of change on `node`, named `change` in the figures it
/// reports (`RELIABILITY {...}`, collected by scripts/reliability.sh).
async fn crash_matrix(change: &str, mut node: Node, start: Start) {
    let kind = start.kind();
    let before_pull = node.pulls().await;
    let before_cri = node.cri_ready().await;
    let initial = node.snapshot();
    let images_before = node.images().await;

    // The change once, uncrashed: its plan and the bytes on each side of it.
    let (old, new, steps, subject) = match &start {
        Start::Command(args) => {
            let known = node.ids();
            let id = node.change(args).await;
            let new = node.snapshot();
            let record = node.made_since(&known, kind);
            assert_eq!(record.id.as_str(), id);
            let steps = record.plan.steps;
            node.json(&["rollback", &id]).await;
            (initial.clone(), new, steps, None)
        }
        Start::RollbackOf(args) => {
            let first = node.change(args).await;
            let applied = node.snapshot();
            let known = node.ids();
            node.json(&["rollback", &first]).await;
            let rolled_back = node.snapshot();
            let steps = node.made_since(&known, kind).plan.steps;
            let id = node.change(args).await;
            assert_eq!(
                node.snapshot(),
                applied,
                "the same fix writes the same bytes"
            );
            (applied, rolled_back, steps, Some(id))
        }
        Start::ExpiryOf(args) => {
            let id = node.change(args).await;
            let applied = node.snapshot();
            let known = node.ids();
            node.clock.advance(HOUR + 1);
            node.wait_state(&id, "reverted").await;
            let steps = node.made_since(&known, kind).plan.steps;
            (applied, node.snapshot(), steps, None)
        }
    };
    assert!(!steps.is_empty(), "the change has no steps");
    if steps.iter().any(|s| s.path().is_some()) {
        assert_ne!(old, new, "the change changes no file");
    }
    // A purge's removals are not undone: the images go back into the cache by a pull.
    let removed: Vec<String> = steps
        .iter()
        .filter_map(|s| match s {
            Step::RemoveImage { image, .. } => Some(image.clone()),
            _ => None,
        })
        .collect();
    node.cache(&removed).await;
    // Where each crash starts from: the node before the change (an expiry's starts
    // from the reverted node, and its fix is made again first).
    let start_from = match &start {
        Start::ExpiryOf(_) => &new,
        _ => &old,
    };
    assert_eq!(
        &node.snapshot(),
        start_from,
        "the uncrashed run left the node changed"
    );

    let points = crash_points(kind, &steps);
    for (point, last_started) in &points {
        let point = point.as_str();
        let crash_env = [("CTRDIAG_FAILPOINT", point), node.clock.env()];
        node.daemon.restart_with_env(&crash_env).await;
        let known = node.ids();
        let expiring = match &start {
            Start::Command(args) => {
                let run = node.cli(args).await;
                assert_ne!(run.code, 0, "{point}: {run:?}");
                None
            }
            Start::RollbackOf(_) => {
                let id = subject.as_ref().unwrap();
                let run = node.daemon.cli(&["rollback", id]).await;
                assert_ne!(run.code, 0, "{point}: {run:?}");
                None
            }
            Start::ExpiryOf(args) => {
                let id = node.change(args).await;
                node.clock.advance(HOUR + 1);
                Some(id)
            }
        };
        let status = node.daemon.wait_death(DEATH).await;
        assert_eq!(status.signal(), Some(9), "{point}: {status:?}");
        assert_whole(point, &node.snapshot(), &old, &new);
        let interrupted = node.made_since(&known, kind).id.to_string();

        // The next start dies too, after undoing one step; the one after recovers.
        if let Some(n) = last_started {
            let undo = format!("undo:{n}");
            let env = [("CTRDIAG_FAILPOINT", undo.as_str()), node.clock.env()];
            let status = node.daemon.restart_expecting_death(&env, DEATH).await;
            assert_eq!(status.signal(), Some(9), "{point}, then {undo}: {status:?}");
            assert_whole(
                &format!("{point}, then {undo}"),
                &node.snapshot(),
                &old,
                &new,
            );
        }
        let clock_env = [node.clock.env()];
        node.daemon.restart_with_env(&clock_env).await;
        let expiring_again = matches!(start, Start::ExpiryOf(_));
        let recovered = assert_recovered(point, &node, &interrupted, !expiring_again).await;

        match (&start, &subject, &expiring) {
            (Start::RollbackOf(_), Some(id), _) => {
                assert_eq!(recovered["rollback_of"], id.as_str(), "{point}");
                let fix = node.listed(id).await;
                assert_eq!(fix["state"], "applied", "{point}: {fix:#}");
                for (path, state) in file_states(&fix) {
                    assert_eq!(state, "changed", "{point}: {path}");
                }
            }
            (Start::ExpiryOf(_), _, Some(id)) => {
                assert_eq!(recovered["reverts"], serde_json::json!([id]), "{point}");
                // The end is due still: the recovered daemon ends it again.
                node.wait_state(id, "reverted").await;
            }
            _ => {}
        }
        assert_eq!(
            &node.snapshot(),
            start_from,
            "{point}: the node is not as before (files and directories)"
        );
        let (pull, cri) = match &start {
            Start::Command(_) => (before_pull, before_cri),
            Start::RollbackOf(_) => (true, true),
            Start::ExpiryOf(_) => (false, true),
        };
        assert!(
            node.runs_config_on_disk().await,
            "{point}: containerd runs another config.toml than the file's"
        );
        assert_eq!(node.cri_ready().await, cri, "{point}: CRI");
        assert_eq!(node.pulls().await, pull, "{point}: what a pull does");
        // A removal that ran is not undone (CRI removed the image under all its names);
        // one that did not run removed nothing.
        let killed_at = points.iter().position(|(p, _)| p == point).unwrap();
        let gone: BTreeSet<&str> = steps
            .iter()
            .enumerate()
            .filter_map(|(n, s)| match s {
                Step::RemoveImage { image, .. } => Some((n, image)),
                _ => None,
            })
            .filter(|(n, _)| {
                let started = format!("{kind}:started:{n}");
                killed_at > points.iter().position(|(p, _)| *p == started).unwrap()
            })
            .map(|(_, image)| images_before[image].as_str())
            .collect();
        let expected: BTreeMap<String, String> = images_before
            .iter()
            .filter(|(_, digest)| !gone.contains(digest.as_str()))
            .map(|(n, d)| (n.clone(), d.clone()))
            .collect();
        assert_eq!(node.images().await, expected, "{point}: the cached images");
        node.cache(&removed).await;
    }
    assert_eq!(node.images().await, images_before);
    let second = points.iter().filter(|(_, last)| last.is_some()).count();
    lab::reliability::report(
        "crash",
        serde_json::json!({
            "change": change,
            "containerd": node.json(&["status"]).await["containerd"]["version"],
            "steps": steps.len(),
            "kills_in_apply": points.len(),
            "kills_in_recovery": second,
        }),
    );
}

/// One test per kind of change; each needs the executor's failpoints.
macro_rules! crash_tests {
    ($($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test]
            #[cfg_attr(
                not(feature = "failpoints"),
                ignore = "needs --features failpoints (scripts/test.sh sets it)"
            )]
            async fn $scenario() {
                scenarios::$scenario().await
            }
        )*
    };
}

crash_tests!(
    a_hosts_toml_fix,
    a_fix_that_adds_config_path_and_restarts,
    a_legacy_table_fix,
    the_removal_of_registry_overrides,
    a_credential_clean,
    a_cache_purge,
    a_rollback_of_a_fix_that_restarted,
    the_end_of_a_time_to_live,
);

mod scenarios {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    /// A TLS registry with a private CA, and `fix IMAGE --ca CA EXTRA...` for it.
    async fn registry_and_ca_fix(extra: &[&str]) -> (Registry, Vec<String>) {
        let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
        let ca = registry.tls.as_ref().unwrap().ca_path.display().to_string();
        let mut fix = args(&["fix", &registry.image_ref(), "--ca", &ca]);
        fix.extend(args(extra));
        (registry, fix)
    }

    /// A node whose config.toml has no `config_path` (Debian's default file).
    fn without_config_path(version: Version) -> Setup {
        let mut setup = Setup::on(version);
        setup.config.config_path = false;
        setup
    }

    pub async fn a_hosts_toml_fix() {
        let (registry, fix) = registry_and_ca_fix(&[]).await;
        let node = node(registry, Setup::on(Version::V2_1)).await;
        let what = "a hosts.toml fix (CA + hosts.toml)";
        crash_matrix(what, node, Start::Command(fix)).await;
    }

    pub async fn a_fix_that_adds_config_path_and_restarts() {
        let (registry, fix) = registry_and_ca_fix(&[]).await;
        let node = node(registry, without_config_path(Version::V1_6)).await;
        let what = "a fix adding config_path (CA, hosts.toml, config.toml, restart)";
        crash_matrix(what, node, Start::Command(fix)).await;
    }

    pub async fn a_legacy_table_fix() {
        let (registry, fix) = registry_and_ca_fix(&["--legacy"]).await;
        let node = node(registry, without_config_path(Version::V1_7)).await;
        let what = "a legacy-table fix (CA, config.toml, restart)";
        crash_matrix(what, node, Start::Command(fix)).await;
    }

    pub async fn the_removal_of_registry_overrides() {
        let (registry, _) = registry_and_ca_fix(&[]).await;
        let table = lab::containerd::cri_registry_table(Version::V1_7);
        let mut setup = without_config_path(Version::V1_7);
        setup.config.extra = format!(
            "[{table}.configs.\"{}\".tls]\n  insecure_skip_verify = true\n",
            registry.host
        );
        let remove = args(&["fix", &registry.host, "--remove-overrides"]);
        let node = node(registry, setup).await;
        assert!(node.pulls().await, "the override skips verification");
        let what = "the removal of overrides (config.toml, restart)";
        crash_matrix(what, node, Start::Command(remove)).await;
    }

    pub async fn a_credential_clean() {
        let (registry, _) = registry_and_ca_fix(&[]).await;
        let host = registry.host.clone();
        let table = lab::containerd::cri_registry_table(Version::V1_7);
        let mut setup = Setup::on(Version::V1_7);
        setup.trusted = true;
        setup.config.extra = format!(
            "[{table}.configs.\"{host}\".auth]\n  username = \"robot\"\n  password = \"s3cret\"\n"
        );
        let entry = format!("\"{host}\": {{\"auth\": \"cm9ib3Q6czNjcmV0\"}}");
        setup.creds = vec![
            // Edited: another registry's entry stays.
            (
                "docker.json",
                format!(
                    "{{\"auths\": {{{entry}, \"other.example:5000\": {{\"auth\": \"eDp5\"}}}}}}\n"
                ),
            ),
            // Moved to the backup area: nothing else is in it.
            ("kubelet.json", format!("{{\"auths\": {{{entry}}}}}\n")),
        ];
        let image = registry.image_ref();
        let clean = args(&["creds", "clean", &host, "--verify-image", &image]);
        let node = node(registry, setup).await;
        let what = "a credential clean (edit, move to backup, config.toml, restart)";
        crash_matrix(what, node, Start::Command(clean)).await;
    }

    pub async fn a_cache_purge() {
        let (registry, _) = registry_and_ca_fix(&[]).await;
        let images = vec![registry.image_ref(), registry.image_ref_tagged("latest")];
        let purge = args(&["cache", "purge", &registry.host]);
        let mut setup = Setup::on(Version::V2_1);
        setup.trusted = true;
        let node = node(registry, setup).await;
        node.cache(&images).await;
        let what = "a cache purge (image removals)";
        crash_matrix(what, node, Start::Command(purge)).await;
    }

    pub async fn a_rollback_of_a_fix_that_restarted() {
        let (registry, fix) = registry_and_ca_fix(&[]).await;
        let node = node(registry, without_config_path(Version::V1_6)).await;
        let what = "a rollback of a fix that restarted containerd";
        crash_matrix(what, node, Start::RollbackOf(fix)).await;
    }

    pub async fn the_end_of_a_time_to_live() {
        let (registry, _) = registry_and_ca_fix(&[]).await;
        let image = registry.image_ref();
        let fix = args(&["fix", &image, "--insecure-skip-verify", "--ttl", "1h"]);
        let node = node(registry, Setup::on(Version::V2_1)).await;
        let what = "the end of a time to live";
        crash_matrix(what, node, Start::ExpiryOf(fix)).await;
    }
}
