//! A real `docker-registry` (distribution 2.8) per test: TLS with a chosen certificate
//! or plain HTTP, optionally behind htpasswd auth, holding the lab's test image.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::certs::{self, CertKind, TlsFiles};
use super::image::{self, TestImage};
use super::process::ChildGuard;
use super::{REGISTRY_NAME, ensure_hosts_entry, free_port, scratch_dir, wait_for};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryKind {
    Tls(CertKind),
    PlainHttp,
}

pub struct Registry {
    /// `registry.ctrdiag.test:PORT`: what image references and certs.d use.
    pub host: String,
    pub port: u16,
    pub kind: RegistryKind,
    pub tls: Option<TlsFiles>,
    /// Served as `ctrdiag/hello:v1` and `:latest` (one image, two names).
    pub image: TestImage,
    /// Credentials the registry demands, if any.
    pub auth: Option<(String, String)>,
    process: ChildGuard,
    dir: tempfile::TempDir,
}

impl Registry {
    /// Stops serving (the registry went away); its certificates stay readable.
    pub fn stop(&mut self) {
        self.process.kill();
    }

    pub async fn start(kind: RegistryKind) -> Registry {
        Self::start_with(kind, None).await
    }

    /// Starts a registry that demands `user`/`password` (htpasswd, bcrypt).
    pub async fn start_with_auth(kind: RegistryKind, user: &str, password: &str) -> Registry {
        Self::start_with(kind, Some((user.to_string(), password.to_string()))).await
    }

    async fn start_with(kind: RegistryKind, auth: Option<(String, String)>) -> Registry {
        ensure_hosts_entry();
        let dir = scratch_dir("registry-");
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).expect("storage dir");
        let image = image::build(&format!("hello from {}", dir.path().display()));

        // Seed the storage through a plain-HTTP registry on the same directory, so the
        // push is a real HTTP push even when the registry under test speaks TLS or
        // demands auth.
        {
            let (_seeder, port) =
                start_listening(&dir.path().join("seed.yml"), &storage, None, None).await;
            let base = format!("http://127.0.0.1:{port}");
            image::push(&base, image::REPOSITORY, image::TAG, &image).await;
            image::push(&base, image::REPOSITORY, "latest", &image).await;
        }

        let tls = match kind {
            RegistryKind::Tls(cert) => Some(certs::make(cert, REGISTRY_NAME, dir.path())),
            RegistryKind::PlainHttp => None,
        };
        let htpasswd = auth.as_ref().map(|(user, password)| {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("htpasswd (apache2-utils) must be installed: run .ci/run or scripts/install-deps.sh");
            assert!(out.status.success(), "htpasswd failed");
            let path = dir.path().join("htpasswd");
            std::fs::write(&path, out.stdout).expect("write htpasswd");
            path
        });
        let (process, port) = start_listening(
            &dir.path().join("registry.yml"),
            &storage,
            tls.as_ref(),
            htpasswd.as_ref(),
        )
        .await;
        Registry {
            host: format!("{REGISTRY_NAME}:{port}"),
            port,
            kind,
            tls,
            image,
            auth,
            process,
            dir,
        }
    }

    /// `registry.ctrdiag.test:PORT/ctrdiag/hello:v1`
    pub fn image_ref(&self) -> String {
        format!("{}/{}:{}", self.host, image::REPOSITORY, image::TAG)
    }

    /// `registry.ctrdiag.test:PORT/ctrdiag/hello:TAG`
    pub fn image_ref_tagged(&self, tag: &str) -> String {
        format!("{}/{}:{tag}", self.host, image::REPOSITORY)
    }

    /// Points `tag` at a new image (built from `content`), pushed through a plain-HTTP
    /// registry on the same storage, as a CI pipeline pushing a new build would.
    pub async fn push_tag(&self, tag: &str, content: &str) -> TestImage {
        let image = image::build(content);
        let storage = self.dir.path().join("storage");
        let (_seeder, port) =
            start_listening(&self.dir.path().join("push.yml"), &storage, None, None).await;
        image::push(
            &format!("http://127.0.0.1:{port}"),
            image::REPOSITORY,
            tag,
            &image,
        )
        .await;
        image
    }

    pub fn log(&self) -> String {
        self.process.log()
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// A registry that accepts TCP connections and never answers (a hung registry or a
/// middlebox that swallows traffic): each connection is held until the value drops.
pub struct SilentRegistry {
    /// `registry.ctrdiag.test:PORT`.
    pub host: String,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl SilentRegistry {
    pub async fn start() -> SilentRegistry {
        ensure_hosts_entry();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the silent registry");
        let port = listener.local_addr().expect("local address").port();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = std::sync::Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(tcp);
            }
        });
        SilentRegistry {
            host: format!("{REGISTRY_NAME}:{port}"),
            accepted,
            task,
        }
    }

    /// An image reference on this registry.
    pub fn image_ref(&self, repository_and_tag: &str) -> String {
        format!("{}/{repository_and_tag}", self.host)
    }

    /// How many connections it has accepted (and holds).
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for SilentRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn spawn(
    config: &PathBuf,
    storage: &std::path::Path,
    port: u16,
    tls: Option<&TlsFiles>,
    htpasswd: Option<&PathBuf>,
) -> ChildGuard {
    let mut yml = format!(
        "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
        storage.display()
    );
    if let Some(t) = tls {
        yml += &format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            t.cert_path.display(),
            t.key_path.display()
        );
    }
    if let Some(h) = htpasswd {
        yml += &format!(
            "auth:\n  htpasswd:\n    realm: ctrdiag-lab\n    path: {}\n",
            h.display()
        );
    }
    std::fs::write(config, yml).expect("write registry config");
    let mut cmd = Command::new("docker-registry");
    cmd.arg("serve").arg(config);
    ChildGuard::spawn("docker-registry", cmd, &config.with_extension("log"))
}

/// Starts a registry on a free port and waits for its own "listening on" log line.
/// A port taken in the meantime (another test, or an outgoing connection's
/// ephemeral port) makes the registry exit: then it is tried on another port.
async fn start_listening(
    config: &PathBuf,
    storage: &std::path::Path,
    tls: Option<&TlsFiles>,
    htpasswd: Option<&PathBuf>,
) -> (ChildGuard, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut process = spawn(config, storage, port, tls, htpasswd);
        let listening = format!("listening on 127.0.0.1:{port}");
        let what = format!(
            "docker-registry on port {port} (log: {})",
            process.log_path().display()
        );
        let ready = wait_for(&what, Duration::from_secs(20), || {
            let answer = if process.log().contains(&listening) {
                Some(true)
            } else if process.has_exited() {
                Some(false)
            } else {
                None
            };
            async move { answer }
        })
        .await;
        if ready {
            return (process, port);
        }
        assert!(
            process.log().contains("address already in use"),
            "docker-registry exited: {}",
            process.log()
        );
    }
    panic!("no free port for docker-registry after 5 tries");
}
