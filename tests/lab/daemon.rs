//! The real `ctrdiagd` binary against a lab containerd, and the real `ctrdiag` CLI
//! against it. Readiness is taken from the daemon's own sd_notify `READY=1`, sent
//! to a datagram socket the test binds, exactly as systemd would receive it.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::containerd::LabContainerd;
use super::process::ChildGuard;
use super::scratch_dir;
use tokio::io::AsyncBufReadExt;

pub const DAEMON: &str = env!("CARGO_BIN_EXE_ctrdiagd");
pub const CLI: &str = env!("CARGO_BIN_EXE_ctrdiag");

pub struct Daemon {
    pub socket: PathBuf,
    pub settings_file: PathBuf,
    process: ChildGuard,
    notify: tokio::net::UnixDatagram,
    dir: tempfile::TempDir,
}

/// What one CLI run produced.
#[derive(Debug)]
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CliRun {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

impl From<Output> for CliRun {
    fn from(o: Output) -> Self {
        CliRun {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Daemon {
    /// Starts ctrdiagd for the lab containerd `ctr` (its socket, config.toml and
    /// certs.d) with socket group `nogroup`, so tests can call it as the unprivileged
    /// `nobody:nogroup`.
    pub async fn start(ctr: &LabContainerd) -> Daemon {
        Self::start_with(ctr, "").await
    }

    /// Like [`Daemon::start`], with extra lines for the settings file.
    pub async fn start_with(ctr: &LabContainerd, extra_settings: &str) -> Daemon {
        Self::launch(ctr, extra_settings, false, &[], None).await
    }

    /// Like [`Daemon::start_with`], with extra environment variables for the daemon
    /// (e.g. `CTRDIAG_FAILPOINT` for crash injection).
    pub async fn start_with_env(
        ctr: &LabContainerd,
        extra_settings: &str,
        env: &[(&str, &str)],
    ) -> Daemon {
        Self::launch(ctr, extra_settings, false, env, None).await
    }

    /// Like [`Daemon::start_with`], with the process umask set to `umask` (as a unit's
    /// `UMask=` would), to prove ctrdiag sets the modes it means itself.
    pub async fn start_under_umask(
        ctr: &LabContainerd,
        extra_settings: &str,
        umask: u32,
    ) -> Daemon {
        Self::launch(ctr, extra_settings, false, &[], Some(umask)).await
    }

    /// Starts ctrdiagd the way `ctrdiagd.socket` does: the test binds the socket and
    /// passes it as fd 3 with `LISTEN_FDS=1` and `LISTEN_PID` set to the daemon's pid.
    pub async fn start_socket_activated(ctr: &LabContainerd) -> Daemon {
        Self::launch(ctr, "", true, &[], None).await
    }

    async fn launch(
        ctr: &LabContainerd,
        extra_settings: &str,
        activated: bool,
        extra_env: &[(&str, &str)],
        umask: Option<u32>,
    ) -> Daemon {
        let dir = scratch_dir("ctrdiagd-");
        // Unprivileged test callers must be able to reach the socket's directory.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod daemon dir");
        let socket = dir.path().join("run/ctrdiag.sock");
        let settings_file = dir.path().join("ctrdiagd.toml");
        let d = dir.path().display();
        // Detection follows the lab containerd's own log unless a test says otherwise.
        let log_setting = if extra_settings.contains("containerd_log") {
            String::new()
        } else {
            format!("containerd_log = \"{}\"\n", ctr.log_file().display())
        };
        std::fs::write(
            &settings_file,
            format!(
                "listen_socket = \"{}\"\nsocket_group = \"nogroup\"\ncontainerd_socket = \"{}\"\ncontainerd_config = \"{}\"\ncerts_dir = \"{}\"\nstate_dir = \"{d}/state\"\n{log_setting}{extra_settings}",
                socket.display(),
                ctr.socket.display(),
                ctr.config_file.display(),
                ctr.certs_d.display(),
            ),
        )
        .expect("write settings");
        let notify_path = dir.path().join("notify.sock");
        let notify = tokio::net::UnixDatagram::bind(&notify_path).expect("bind notify socket");
        // The socket passed to an activated daemon; the parent's copy is closed once the
        // child has it, as systemd's is not (systemd keeps it: so does the file).
        let mut passed = None;
        let cmd = if activated {
            std::fs::create_dir_all(socket.parent().expect("socket dir")).expect("mkdir run");
            let listener = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
            let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
            passed = Some(listener);
            // `$$` is the shell's pid, which `exec` hands on to ctrdiagd.
            let mut cmd = Command::new("/bin/sh");
            cmd.args([
                "-c",
                "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"",
                DAEMON,
            ]);
            // SAFETY: async-signal-safe dup2/fcntl in the forked child before exec, on
            // a descriptor this process owns; fd 3 must survive exec (no CLOEXEC).
            unsafe {
                cmd.pre_exec(move || {
                    use nix::libc;
                    let ok = if fd == 3 {
                        libc::fcntl(3, libc::F_SETFD, 0)
                    } else {
                        libc::dup2(fd, 3)
                    };
                    if ok < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            cmd
        } else {
            Command::new(DAEMON)
        };
        let mut cmd = cmd;
        if let Some(mask) = umask {
            // SAFETY: umask(2) is async-signal-safe and only affects the child.
            unsafe {
                cmd.pre_exec(move || {
                    nix::libc::umask(mask as nix::libc::mode_t);
                    Ok(())
                });
            }
        }
        let process = spawn_daemon(cmd, &settings_file, dir.path(), extra_env);
        drop(passed);
        let mut daemon = Daemon {
            socket,
            settings_file,
            process,
            notify,
            dir,
        };
        daemon.wait_ready().await;
        daemon
    }

    async fn wait_ready(&mut self) {
        let ready = self.next_notification(Duration::from_secs(30)).await;
        assert!(
            ready.lines().any(|l| l == "READY=1"),
            "first notification: {ready:?}"
        );
    }

    /// Starts ctrdiagd again on the same settings and state (after a crash, say),
    /// without the environment of the first start; its earlier log is kept aside.
    pub async fn restart(&mut self) {
        self.restart_with_env(&[]).await
    }

    /// [`Daemon::restart`] with `env` for the new process (a test clock, say).
    pub async fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        self.respawn(env);
        self.wait_ready().await;
    }

    /// Kills the running process, if any, keeps its log aside and starts a new one.
    fn respawn(&mut self, env: &[(&str, &str)]) {
        self.process.kill();
        // What the old process sent and nobody read (a start killed before READY=1).
        let mut buf = [0u8; 4096];
        while self.notify.try_recv(&mut buf).is_ok() {}
        let old = self.dir.path().join("ctrdiagd.log");
        let previous = self.dir.path().join("ctrdiagd.previous.log");
        let mut kept = std::fs::read_to_string(&previous).unwrap_or_default();
        kept += &std::fs::read_to_string(&old).unwrap_or_default();
        let _ = std::fs::write(&previous, kept);
        self.process = spawn_daemon(
            Command::new(DAEMON),
            &self.settings_file,
            self.dir.path(),
            env,
        );
    }

    /// Starts ctrdiagd again with `env` for a start that must die before it is ready
    /// (a failpoint in its start-up recovery); how it ended. Panics if it gets ready.
    pub async fn restart_expecting_death(
        &mut self,
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> std::process::ExitStatus {
        self.respawn(env);
        self.wait_death(timeout).await
    }

    /// Waits up to `timeout` for the daemon process to end (a failpoint's SIGKILL, say)
    /// and returns how it ended; panics with its log if it is still running then.
    pub async fn wait_death(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.exit_status() {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "ctrdiagd still runs after {timeout:?}; its log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything every process of this daemon logged so far (restarts included).
    pub fn all_logs(&self) -> String {
        let previous = std::fs::read_to_string(self.dir.path().join("ctrdiagd.previous.log"))
            .unwrap_or_default();
        previous + &self.log()
    }

    /// Waits for the daemon process to exit and returns how it ended.
    pub fn wait_exit(&mut self) -> Option<std::process::ExitStatus> {
        self.process.wait()
    }

    /// The next sd_notify datagram the daemon sent.
    pub async fn next_notification(&mut self, timeout: Duration) -> String {
        let mut buf = vec![0u8; 4096];
        match tokio::time::timeout(timeout, self.notify.recv(&mut buf)).await {
            Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
            Ok(Err(e)) => panic!("notify socket: {e}"),
            Err(_) => {
                self.process.assert_running();
                panic!(
                    "no sd_notify message within {timeout:?}; log:\n{}",
                    self.log()
                )
            }
        }
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn assert_running(&mut self) {
        self.process.assert_running();
    }

    /// Sends SIGTERM and returns at once (the daemon drains on its own time).
    pub fn send_sigterm(&self) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("signal ctrdiagd");
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        self.process.terminate()
    }

    /// A client of the daemon's gRPC API on a connection of its own (the generated
    /// Rust client, as any program calls the API), as root.
    pub async fn api(
        &self,
    ) -> ctrdiag::api::v1::diagnostics_client::DiagnosticsClient<tonic::transport::Channel> {
        let channel = super::unix_channel(&self.socket)
            .await
            .unwrap_or_else(|e| panic!("connect to ctrdiagd at {}: {e}", self.socket.display()));
        ctrdiag::api::v1::diagnostics_client::DiagnosticsClient::new(channel)
    }

    /// The daemon's resident memory now, in KiB.
    pub fn rss_kib(&self) -> u64 {
        super::process::rss_kib(self.pid())
    }

    /// Runs `ctrdiag --socket SOCKET ARGS...` as root.
    pub async fn cli(&self, args: &[&str]) -> CliRun {
        run(self.command(args)).await
    }

    /// Runs the CLI as an unprivileged `uid:gid`, as a real non-root operator would
    /// (std drops root's supplementary groups before setuid in the child).
    pub async fn cli_as(&self, uid: u32, gid: u32, args: &[&str]) -> CliRun {
        let mut cmd = self.command(args);
        cmd.uid(uid).gid(gid);
        run(cmd).await
    }

    /// Starts `ctrdiag --socket SOCKET ARGS...` as root without waiting for it, so a
    /// test can kill it mid-call (a client that goes away).
    pub fn spawn_cli(&self, args: &[&str]) -> std::process::Child {
        self.command(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start ctrdiag")
    }

    /// `ctrdiag -o json watch [ARGS]`, once it says it is subscribed: from then on no
    /// event is missed.
    pub async fn watch(&self, args: &[&str]) -> Watcher {
        let mut cmd =
            tokio::process::Command::from(self.command(&[&["-o", "json", "watch"], args].concat()));
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("start ctrdiag watch");
        let stdout = child.stdout.take().expect("watch stdout");
        let mut w = Watcher {
            _child: child,
            lines: tokio::io::BufReader::new(stdout).lines(),
        };
        let first = w.next_json(Duration::from_secs(10)).await;
        assert_eq!(first, serde_json::json!({"subscribed": true}));
        w
    }

    /// Whether `ctrdiag images` (k8s.io) lists `image`.
    pub async fn lists_image(&self, image: &str) -> bool {
        let run = self.cli(&["-o", "json", "images"]).await;
        assert_eq!(run.code, 0, "{run:?}");
        run.json()["images"]
            .as_array()
            .expect("images array")
            .iter()
            .any(|i| i["name"] == image)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(CLI);
        cmd.arg("--socket").arg(&self.socket).args(args);
        cmd.env_remove("CTRDIAG_SOCKET");
        cmd
    }
}

/// A running `ctrdiag watch -o json`.
pub struct Watcher {
    _child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Watcher {
    /// The next object the stream prints, within `timeout`.
    pub async fn next_json(&mut self, timeout: Duration) -> serde_json::Value {
        let line = tokio::time::timeout(timeout, self.lines.next_line())
            .await
            .expect("no event on the watch stream in time")
            .expect("read watch")
            .expect("the watch stream ended");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("watch printed {line:?}: {e}"))
    }

    /// Whether the stream ends (the CLI's stdout closes) within `timeout`, skipping any
    /// event still printed before it does.
    pub async fn ends_within(&mut self, timeout: Duration) -> bool {
        let until = tokio::time::Instant::now() + timeout;
        while let Ok(line) = tokio::time::timeout_at(until, self.lines.next_line()).await {
            if line.expect("read watch").is_none() {
                return true;
            }
        }
        false
    }

    /// The next event of `kind`, skipping others, within `timeout` in all.
    pub async fn next_of_kind(&mut self, kind: &str, timeout: Duration) -> serde_json::Value {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            let e = self.next_json(left).await;
            if e["kind"] == kind {
                return e;
            }
        }
    }
}

/// Starts `cmd` (ctrdiagd, possibly through a socket-activation shell) with the lab's
/// settings file, notify socket and log level.
fn spawn_daemon(mut cmd: Command, settings: &Path, dir: &Path, env: &[(&str, &str)]) -> ChildGuard {
    cmd.arg("--config")
        .arg(settings)
        .env("NOTIFY_SOCKET", dir.join("notify.sock"))
        .env("CTRDIAG_LOG", "info,ctrdiag=debug")
        .envs(env.iter().copied());
    ChildGuard::spawn("ctrdiagd", cmd, &dir.join("ctrdiagd.log"))
}

async fn run(cmd: Command) -> CliRun {
    let mut cmd = tokio::process::Command::from(cmd);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("ctrdiag did not finish within 120 s")
        .expect("run ctrdiag");
    out.into()
}
