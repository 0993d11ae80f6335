//! The Debian package as a user gets it. `scripts/package.sh` builds it once for this
//! file, unpacked with `dpkg -x` (no maintainer script ever runs on these machines), and
//! each test checks one thing a user relies on: the binaries run, the units pass
//! `systemd-analyze verify` from their installed paths with their man pages, the man
//! pages render, the completions load, the sysusers file makes the socket's group
//! before the units start, the settings file is a conffile, lintian is clean.
//!
//! Which binaries: the debug ones this `cargo test` built (`package.sh --profile dev
//! --no-build`), because a release build takes several minutes more on 2 cores. The
//! first test proves it by their ELF build ids; everything else in the package is the
//! same for every profile (the same Cargo.toml metadata, the same script).

mod lab;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use ctrdiag::settings::{DEFAULT_SETTINGS_FILE, Settings};

/// The built package: the .deb, where it is unpacked, its control files.
struct Package {
    deb: PathBuf,
    /// `dpkg -x`: the files as dpkg would install them.
    root: PathBuf,
    /// `dpkg-deb -e`: control, conffiles, maintainer scripts.
    control: PathBuf,
    /// Every path the package holds (`dpkg-deb -c`), as `/usr/bin/ctrdiag`.
    files: Vec<String>,
    /// What package.sh printed on stderr (cargo-deb's and lintian's output).
    log: String,
}

impl Package {
    fn path(&self, installed: &str) -> PathBuf {
        self.root.join(installed.trim_start_matches('/'))
    }

    fn read(&self, installed: &str) -> String {
        assert!(
            self.files.iter().any(|f| f == installed),
            "the package has no {installed}:\n{}",
            self.files.join("\n")
        );
        read(&self.path(installed))
    }

    fn control_file(&self, name: &str) -> String {
        read(&self.control.join(name))
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// stdout of a command that must succeed.
fn stdout_of(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The package, built on first use by whichever test comes first; a failed build fails
/// every test with the script's output.
fn package() -> &'static Package {
    static PACKAGE: OnceLock<Result<Package, String>> = OnceLock::new();
    match PACKAGE.get_or_init(build) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn build() -> Result<Package, String> {
    // A fixed place under the target dir (no TempDir: a static is never dropped), made
    // anew by each run.
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("packaging");
    let _ = std::fs::remove_dir_all(&base);
    let (out_dir, root, control) = (base.join("out"), base.join("root"), base.join("control"));
    std::fs::create_dir_all(&out_dir).unwrap();
    let started = std::time::Instant::now();
    let out = run(Command::new("bash")
        .arg("scripts/package.sh")
        .args(["--profile", "dev", "--no-build", "--output"])
        .arg(&out_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR")));
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        return Err(format!(
            "scripts/package.sh failed ({}):\n{log}",
            out.status
        ));
    }
    eprintln!("package.sh took {:?}", started.elapsed());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let deb = PathBuf::from(stdout.lines().last().unwrap_or_default());
    if !deb.starts_with(&out_dir) || !deb.is_file() {
        return Err(format!(
            "package.sh printed no .deb in {}: {stdout}",
            out_dir.display()
        ));
    }
    stdout_of(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    stdout_of(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    let listing = stdout_of(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let files = listing
        .lines()
        .filter(|l| !l.starts_with('d'))
        .filter_map(|l| l.split_whitespace().nth(5))
        .map(|p| p.trim_start_matches('.').to_string())
        .collect();
    Ok(Package {
        deb,
        root,
        control,
        files,
        log,
    })
}

/// The GNU build id of an ELF file (`readelf -n`), which stripping keeps.
fn build_id(binary: &Path) -> String {
    let notes = stdout_of(Command::new("readelf").arg("-n").arg(binary));
    notes
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .unwrap_or_else(|| panic!("{} has no build id:\n{notes}", binary.display()))
        .to_string()
}

#[test]
fn the_package_holds_the_binaries_this_test_built_and_they_run() {
    let pkg = package();
    for (installed, built) in [
        ("/usr/bin/ctrdiag", lab::daemon::CLI),
        ("/usr/bin/ctrdiagd", lab::daemon::DAEMON),
    ] {
        assert!(pkg.files.iter().any(|f| f == installed), "no {installed}");
        assert_eq!(
            build_id(&pkg.path(installed)),
            build_id(Path::new(built)),
            "{installed} is not the {built} this test run built"
        );
    }
    let version = env!("CARGO_PKG_VERSION");
    let cli = pkg.path("/usr/bin/ctrdiag");
    let daemon = pkg.path("/usr/bin/ctrdiagd");
    assert_eq!(
        stdout_of(Command::new(&cli).arg("--version")),
        format!("ctrdiag {version}\n")
    );
    assert_eq!(
        stdout_of(Command::new(&daemon).arg("--version")),
        format!("ctrdiagd {version}\n")
    );
    assert!(stdout_of(Command::new(&daemon).arg("--help")).contains("--config <FILE>"));
    // A command that needs no daemon does its work.
    let causes = stdout_of(Command::new(&cli).args(["explain", "--list"]));
    assert!(causes.contains("tls_unknown_authority"), "{causes}");

    // What dpkg records: the version of the crate and of debian/changelog's newest
    // entry, and what the binaries need.
    let control = pkg.control_file("control");
    assert!(
        control.contains(&format!("\nVersion: {version}-1\n")),
        "{control}"
    );
    let changelog = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("debian/changelog"));
    assert!(
        changelog.starts_with(&format!("ctrdiag ({version}-1) ")),
        "debian/changelog's newest entry is not {version}-1"
    );
    assert!(control.contains("libc6"), "{control}");
    assert!(pkg.deb.ends_with(format!("ctrdiag_{version}-1_amd64.deb")));
}

/// A root for `systemd-analyze verify --root`: the unpacked package (hard links) plus
/// the host's own units (sysinit.target, sockets.target...), which the package's refer
/// to, in lib/systemd/system where a package's units are not.
fn verify_root(pkg: &Package) -> tempfile::TempDir {
    let dir = lab::scratch_dir("verify-root-");
    let root = dir.path().join("root");
    stdout_of(Command::new("cp").arg("-al").arg(&pkg.root).arg(&root));
    let host_units = root.join("lib/systemd/system");
    std::fs::create_dir_all(&host_units).unwrap();
    for entry in std::fs::read_dir("/lib/systemd/system").unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        // A ctrdiag installed on this machine must not stand in for the package's.
        if name.to_string_lossy().starts_with("ctrdiagd.") {
            continue;
        }
        stdout_of(
            Command::new("cp")
                .arg("-a")
                .arg(entry.path())
                .arg(host_units.join(name)),
        );
    }
    dir
}

/// `systemd-analyze verify` of the installed units inside `root`, man pages looked up in
/// `manpath`.
fn verify(root: &Path, manpath: &Path) -> Output {
    run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(format!("--root={}", root.display()))
        .args(["ctrdiagd.service", "ctrdiagd.socket"])
        .env("MANPATH", manpath))
}

#[test]
fn the_units_pass_systemd_analyze_verify_from_their_installed_paths() {
    let pkg = package();
    let service = pkg.read("/usr/lib/systemd/system/ctrdiagd.service");
    pkg.read("/usr/lib/systemd/system/ctrdiagd.socket");
    // The daemon and the settings file the unit starts it with are both in the package.
    let exec_start = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart=");
    assert_eq!(
        exec_start,
        format!("/usr/bin/ctrdiagd --config {DEFAULT_SETTINGS_FILE}")
    );
    assert!(pkg.files.iter().any(|f| f == DEFAULT_SETTINGS_FILE));

    let dir = verify_root(pkg);
    let root = dir.path().join("root");
    // verify resolves ExecStart= inside --root, and runs `man` for Documentation=.
    let out = verify(&root, &root.join("usr/share/man"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.trim().is_empty(), "warnings: {stderr}");

    // The man check is real: without the package's pages, verify fails on them.
    let empty = dir.path().join("no-man");
    std::fs::create_dir_all(&empty).unwrap();
    let out = verify(&root, &empty);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "verify passed without man pages");
    assert!(stderr.contains("man ctrdiagd(8)"), "{stderr}");
    // ...and so is the ExecStart= check: without the binary, it fails.
    std::fs::remove_file(root.join("usr/bin/ctrdiagd")).unwrap();
    let out = verify(&root, &root.join("usr/share/man"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "verify passed without the binary");
    assert!(stderr.contains("/usr/bin/ctrdiagd"), "{stderr}");
}

/// A man page as `man -l` renders it for a terminal of `MANWIDTH` columns.
fn render_man(page: &Path) -> String {
    let out = run(Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "200")
        .env("MAN_KEEP_FORMATTING", "")
        .env_remove("PAGER")
        .env_remove("MANPAGER"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "man -l {}: {stderr}", page.display());
    assert!(
        stderr.trim().is_empty(),
        "man -l {}: {stderr}",
        page.display()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The subcommands `ctrdiag --help` lists (its "Commands:" block), without `help`.
fn subcommands(cli: &Path) -> Vec<String> {
    let help = stdout_of(Command::new(cli).arg("--help"));
    let commands: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect();
    assert!(commands.len() >= 10, "{help}");
    commands
}

#[test]
fn the_man_pages_render_and_name_every_command() {
    let pkg = package();
    assert!(
        pkg.files
            .iter()
            .any(|f| f == "/usr/share/man/man1/ctrdiag.1.gz")
    );
    assert!(
        pkg.files
            .iter()
            .any(|f| f == "/usr/share/man/man8/ctrdiagd.8.gz")
    );
    let cli = render_man(&pkg.path("/usr/share/man/man1/ctrdiag.1.gz"));
    assert!(cli.contains("ctrdiag - "), "{cli}");
    for command in subcommands(&pkg.path("/usr/bin/ctrdiag")) {
        assert!(
            cli.contains(&format!("ctrdiag-{command}(1)")),
            "the man page does not name `ctrdiag {command}`:\n{cli}"
        );
    }
    let daemon = render_man(&pkg.path("/usr/share/man/man8/ctrdiagd.8.gz"));
    for wanted in [
        "ctrdiagd - ",
        "--config",
        DEFAULT_SETTINGS_FILE,
        "ctrdiag(1)",
    ] {
        assert!(
            daemon.contains(wanted),
            "no {wanted:?} in ctrdiagd(8):\n{daemon}"
        );
    }
}

#[test]
fn completions_are_where_the_shells_look_and_bash_completes_subcommands() {
    let pkg = package();
    let bash = "/usr/share/bash-completion/completions/ctrdiag";
    let zsh = pkg.read("/usr/share/zsh/vendor-completions/_ctrdiag");
    assert!(zsh.starts_with("#compdef ctrdiag"), "{zsh}");
    let fish = pkg.read("/usr/share/fish/vendor_completions.d/ctrdiag.fish");
    assert!(fish.contains("complete -c ctrdiag "), "{fish}");
    pkg.read(bash);
    // What bash-completion does on TAB after `ctrdiag dia`.
    let script = format!(
        "set -e; source '{}'; complete -p ctrdiag; \
         COMP_WORDS=(ctrdiag dia); COMP_CWORD=1; COMP_LINE='ctrdiag dia'; COMP_POINT=11; \
         _ctrdiag ctrdiag dia ctrdiag; printf 'reply: %s\\n' \"${{COMPREPLY[@]}}\"",
        pkg.path(bash).display()
    );
    let out = stdout_of(Command::new("bash").args(["--norc", "--noprofile", "-c", &script]));
    assert!(out.contains(" -F _ctrdiag ctrdiag\n"), "{out}");
    assert!(out.contains("reply: diagnose\n"), "{out}");
}

/// The non-comment `key=value` values of a unit file for `key`.
fn directive<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn sysusers_makes_the_sockets_group_before_the_units_start() {
    let pkg = package();
    let sysusers = pkg.read("/usr/lib/sysusers.d/ctrdiag.conf");
    let groups: Vec<Vec<&str>> = sysusers
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(groups, [vec!["g", "ctrdiag", "-"]], "{sysusers}");
    let socket = pkg.read("/usr/lib/systemd/system/ctrdiagd.socket");
    assert_eq!(directive(&socket, "SocketGroup"), ["ctrdiag"]);
    assert_eq!(Settings::default().socket_group, "ctrdiag");

    // postinst creates the group from the file the package ships, and before it starts
    // the units (the socket's group must exist when systemd creates it).
    let postinst = pkg.control_file("postinst");
    let sysusers_at = postinst
        .find("systemd-sysusers ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} ctrdiag.conf")
        .unwrap_or_else(|| panic!("postinst does not run sysusers on ctrdiag.conf:\n{postinst}"));
    let start_at = postinst
        .find("deb-systemd-invoke $_dh_action ctrdiagd.service ctrdiagd.socket")
        .unwrap_or_else(|| panic!("postinst does not start the units:\n{postinst}"));
    assert!(sysusers_at < start_at, "{postinst}");
    // ...which needs systemd-sysusers.
    let control = pkg.control_file("control");
    assert!(
        control.contains("systemd | systemd-standalone-sysusers | systemd-sysusers"),
        "{control}"
    );
}

#[test]
fn the_settings_file_is_a_conffile_at_the_daemons_default_path() {
    let pkg = package();
    let conffiles = pkg.control_file("conffiles");
    assert_eq!(
        conffiles.lines().collect::<Vec<_>>(),
        [DEFAULT_SETTINGS_FILE],
        "conffiles"
    );
    let text = pkg.read(DEFAULT_SETTINGS_FILE);
    assert_eq!(
        text,
        read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ctrdiagd.toml"))
    );
    Settings::parse(Path::new(DEFAULT_SETTINGS_FILE), &text)
        .unwrap_or_else(|e| panic!("the shipped settings are refused: {e}"));
}

#[test]
fn lintian_finds_no_error_or_warning_and_every_override_says_why() {
    let pkg = package();
    // package.sh ran lintian with --fail-on error,warning (the build above failed
    // otherwise); here: it really ran.
    assert!(
        run(Command::new("lintian").arg("--version"))
            .status
            .success(),
        "lintian is not installed: run scripts/install-deps.sh"
    );
    assert!(
        pkg.log
            .contains("package.sh: lintian: no errors or warnings"),
        "{}",
        pkg.log
    );
    let overrides = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("debian/lintian-overrides"));
    let mut commented = false;
    for line in overrides.lines() {
        if line.starts_with('#') {
            commented = true;
        } else if line.trim().is_empty() {
            commented = false;
        } else {
            assert!(
                commented,
                "lintian override `{line}` has no comment saying why"
            );
        }
    }
    assert!(
        pkg.files
            .iter()
            .any(|f| f == "/usr/share/lintian/overrides/ctrdiag"),
        "the overrides are not installed where lintian reads them"
    );
}
