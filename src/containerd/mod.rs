//! Adapter for containerd's gRPC API on its Unix socket: containerd's own services
//! (version, images, content) and the CRI `runtime.v1` services that containerd serves
//! on the same socket, which is the path the kubelet pulls through.
//!
//! Thin by design: requests out, typed results and [`ContainerdError`]s back; no policy.
//! The channel is lazy, so a containerd that is down now is simply retried on the
//! next call (tonic reconnects), and the daemon never has to be restarted with it.

pub mod config_dump;
mod containers;
mod error;
mod images;
mod introspection;
mod namespace;
mod pull_locks;
pub mod store_diff;
mod transfer;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use containerd_client::services::v1::version_client::VersionClient;
use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint};

pub use error::ContainerdError;
pub use images::ImageSummary;
pub use namespace::{K8S_NAMESPACE, Namespace, NamespaceError};
pub use store_diff::{ImageRecord, StoreSnapshot};

use pull_locks::PullLocks;

/// Where containerd listens on a standard node.
pub const DEFAULT_SOCKET: &str = "/run/containerd/containerd.sock";

/// How long a test pull may take before it is reported as a timeout.
pub const DEFAULT_PULL_TIMEOUT: Duration = Duration::from_secs(300);

/// How long any other call may take: containerd answers these in milliseconds when healthy.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub type Result<T, E = ContainerdError> = std::result::Result<T, E>;

/// containerd's answer to the Version RPC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerVersion {
    /// e.g. `v2.1.9` or `1.6.20~ds1`.
    pub version: String,
    pub revision: String,
}

/// What CRI `Status` says about the runtime: RuntimeReady / NetworkReady conditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeStatus {
    pub runtime_ready: bool,
    pub network_ready: bool,
    /// Reasons and messages of the conditions that are not true, for people.
    pub problems: Vec<String>,
}

/// The result of a test pull through CRI: either the image id or containerd's own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullOutcome {
    Pulled {
        /// The image id CRI returns (`sha256:...`).
        image_id: String,
        duration: Duration,
    },
    Failed {
        code: tonic::Code,
        /// containerd's error text, unchanged: the diagnosis engine reads it.
        message: String,
        duration: Duration,
    },
    /// The pull did not finish within the configured limit (`pull_timeout_secs`): a
    /// registry that accepts and never answers, or one too slow for the limit.
    TimedOut { limit: Duration },
}

impl PullOutcome {
    /// Whether the image was pulled.
    pub fn pulled(&self) -> bool {
        matches!(self, PullOutcome::Pulled { .. })
    }
}

/// A client for one containerd socket and namespace.
#[derive(Clone)]
pub struct ContainerdClient {
    socket: PathBuf,
    namespace: Namespace,
    channel: Channel,
    pull_timeout: Duration,
    /// Shared by every clone: two ctrdiag pulls of one name never overlap, so one's
    /// cleanup cannot remove what the other (say `pull --keep`) just pulled.
    pull_locks: std::sync::Arc<PullLocks>,
}

impl ContainerdClient {
    /// Prepares a client; nothing is dialled until the first call.
    pub fn new(socket: impl Into<PathBuf>, namespace: Namespace) -> Self {
        let socket = socket.into();
        let path = socket.clone();
        // The URI is required by tonic but unused: the connector dials the socket.
        let channel = Endpoint::from_static("http://[::]")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector_lazy(tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }));
        ContainerdClient {
            socket,
            namespace,
            channel,
            pull_timeout: DEFAULT_PULL_TIMEOUT,
            pull_locks: Default::default(),
        }
    }

    /// The limit a test pull runs under.
    pub fn pull_timeout(&self) -> Duration {
        self.pull_timeout
    }

    pub fn with_pull_timeout(mut self, timeout: Duration) -> Self {
        self.pull_timeout = timeout;
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The same socket in another namespace (CRI always works in `k8s.io`).
    pub fn in_namespace(&self, namespace: Namespace) -> Self {
        ContainerdClient {
            namespace,
            ..self.clone()
        }
    }

    /// Wraps a message with the namespace header every containerd call needs.
    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(CALL_TIMEOUT);
        if let Ok(value) = self.namespace.as_str().parse() {
            req.metadata_mut().insert("containerd-namespace", value);
        }
        req
    }

    fn status_error(&self, rpc: &'static str, status: tonic::Status) -> ContainerdError {
        ContainerdError::from_status(rpc, &self.socket, status)
    }

    /// Fails fast with [`ContainerdError::SocketMissing`] instead of a transport error.
    fn check_socket(&self) -> Result<()> {
        if self.socket.exists() {
            Ok(())
        } else {
            Err(ContainerdError::SocketMissing {
                path: self.socket.clone(),
            })
        }
    }

    /// containerd's version (Version service).
    pub async fn version(&self) -> Result<ServerVersion> {
        self.check_socket()?;
        let resp = VersionClient::new(self.channel.clone())
            .version(self.request(()))
            .await
            .map_err(|s| self.status_error("Version", s))?
            .into_inner();
        Ok(ServerVersion {
            version: resp.version,
            revision: resp.revision,
        })
    }

    /// CRI `Status`: answers only when the CRI plugin is loaded, so this doubles as
    /// the check that the kubelet can talk to containerd at all.
    pub async fn runtime_status(&self) -> Result<RuntimeStatus> {
        self.check_socket()?;
        let resp = RuntimeServiceClient::new(self.channel.clone())
            .status(self.request(k8s_cri::v1::StatusRequest { verbose: false }))
            .await
            .map_err(|s| self.status_error("Status", s))?
            .into_inner();
        let conditions = resp.status.map(|s| s.conditions).unwrap_or_default();
        let is_true = |kind: &str| conditions.iter().any(|c| c.r#type == kind && c.status);
        Ok(RuntimeStatus {
            runtime_ready: is_true("RuntimeReady"),
            network_ready: is_true("NetworkReady"),
            problems: conditions
                .iter()
                .filter(|c| !c.status)
                .map(|c| {
                    format!("{}: {} {}", c.r#type, c.reason, c.message)
                        .trim_end()
                        .to_string()
                })
                .collect(),
        })
    }

    /// Pulls `image` through CRI `PullImage`, exactly as the kubelet would, so the
    /// result honours containerd's registry configuration (hosts.toml, legacy tables).
    /// A registry error or a pull past `pull_timeout` is a [`PullOutcome`], not an
    /// `Err`: `Err` means containerd itself could not be asked. The image stays on the
    /// node; [`ContainerdClient::pull_leaving_store_as_found`] is the read-only pull.
    pub async fn test_pull(&self, image: &str) -> Result<PullOutcome> {
        self.check_socket()?;
        let request = k8s_cri::v1::PullImageRequest {
            image: Some(image_spec(image)),
            auth: None,
            sandbox_config: None,
        };
        let mut req = tonic::Request::new(request);
        // containerd sees the deadline too and stops pulling when it passes.
        req.set_timeout(self.pull_timeout);
        let started = Instant::now();
        let mut client = ImageServiceClient::new(self.channel.clone());
        let result = tokio::time::timeout(self.pull_timeout, client.pull_image(req)).await;
        let duration = started.elapsed();
        let timed_out = PullOutcome::TimedOut {
            limit: self.pull_timeout,
        };
        match result {
            Err(_) => Ok(timed_out),
            Ok(Ok(resp)) => Ok(PullOutcome::Pulled {
                image_id: resp.into_inner().image_ref,
                duration,
            }),
            // containerd's own deadline, or tonic's client-side one ("Timeout expired",
            // reported like a transport failure): the limit was reached either way.
            Ok(Err(status))
                if status.code() == tonic::Code::DeadlineExceeded
                    || duration >= self.pull_timeout =>
            {
                Ok(timed_out)
            }
            Ok(Err(status)) => match self.status_error("PullImage", status) {
                ContainerdError::Rpc { code, message, .. } => Ok(PullOutcome::Failed {
                    code,
                    message,
                    duration,
                }),
                other => Err(other),
            },
        }
    }
}

/// A test pull and what was done to leave the image store as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestPull {
    pub outcome: PullOutcome,
    /// The name pulled was not on the node before and was removed again.
    pub removed_after: bool,
    /// Records the pull wrote that someone else wrote again before the cleanup (the
    /// kubelet pulling the same name): left on the node.
    pub left_for_others: Vec<String>,
}

impl ContainerdClient {
    /// A test pull through CRI that, unless `keep`, leaves containerd's image store
    /// exactly as it was (see [`store_diff`]): only records this pull wrote are deleted
    /// or put back, through the images service, never through a call that drops other
    /// names of the image. The cleanup runs in a task of its own, so it completes even
    /// when the caller goes away or its deadline passes mid-way, and when containerd is
    /// killed or restarted mid-pull it is done once containerd answers again.
    pub async fn pull_leaving_store_as_found(&self, image: &str, keep: bool) -> Result<TestPull> {
        // CRI pulls land in k8s.io whatever namespace this client is for.
        let cri = self.in_namespace(Namespace::default());
        let guard = self.pull_locks.lock(image).await;
        let before = cri.image_records().await?;
        let name = image.to_string();
        let (outcome, image_id) = match cri.test_pull(image).await {
            Ok(outcome) => match &outcome {
                PullOutcome::Pulled { image_id, .. } if !keep => {
                    let id = image_id.clone();
                    (outcome, id)
                }
                _ => {
                    return Ok(TestPull {
                        outcome,
                        removed_after: false,
                        left_for_others: Vec::new(),
                    });
                }
            },
            // containerd went away mid-pull (killed, restarted): the pull may have
            // landed before it did. Undo it once containerd answers again, in the
            // background; the caller hears at once that containerd is not answering.
            Err(e) if e.is_unreachable() && !keep => {
                tokio::spawn(async move {
                    let _serialised = guard;
                    let undo = UndoPull {
                        name: &name,
                        image_id: None,
                        before: &before,
                        after_pull: None,
                    };
                    let _ = cri.undo_until_answering(undo, None).await;
                });
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        // The store right after the pull; if containerd is gone already, the store as
        // the cleanup finds it stands in.
        let after_pull = cri.image_records().await.ok();
        let (first_tx, first_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let _serialised = guard;
            failpoint_pause("test_pull_cleanup");
            let undo = UndoPull {
                name: &name,
                image_id: Some(&image_id),
                before: &before,
                after_pull: after_pull.as_ref(),
            };
            cri.undo_until_answering(undo, Some(first_tx)).await;
        });
        let (removed_after, left_for_others) = match first_rx.await {
            Ok(result) => result?,
            Err(_) => {
                return Err(ContainerdError::Cleanup {
                    image: image.to_string(),
                    detail: "the cleanup task ended without a result".into(),
                });
            }
        };
        Ok(TestPull {
            outcome,
            removed_after,
            left_for_others,
        })
    }

    /// Undoes a test pull, trying again while containerd does not answer (for up to
    /// [`CLEANUP_RETRY_FOR`]), so a containerd killed or restarted mid-pull still ends
    /// with the store as it was. The first attempt's result goes to `first` (the
    /// caller, who is not kept waiting for containerd to come back); what later
    /// attempts do is logged.
    async fn undo_until_answering(
        &self,
        undo: UndoPull<'_>,
        mut first: Option<tokio::sync::oneshot::Sender<Result<Undone>>>,
    ) {
        let started = Instant::now();
        let mut wait = Duration::from_millis(50);
        let mut retried = false;
        loop {
            let result = self.undo_pull_once(&undo).await;
            match result {
                Err(e) if e.is_unreachable() && started.elapsed() < CLEANUP_RETRY_FOR => {
                    if let Some(tx) = first.take() {
                        let _ = tx.send(Err(e));
                    }
                    retried = true;
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                }
                result => {
                    match (&result, retried) {
                        (Ok((removed, _)), true) => tracing::info!(
                            image = undo.name,
                            removed,
                            "finished the cleanup of a test pull once containerd answered again"
                        ),
                        (Err(e), true) => tracing::warn!(
                            image = undo.name,
                            error = %e,
                            "gave up the cleanup of a test pull: the records it wrote may still be there (compare `ctrdiag images`)"
                        ),
                        _ => {}
                    }
                    if let Some(tx) = first.take() {
                        let _ = tx.send(result);
                    }
                    return;
                }
            }
        }
    }

    /// One attempt at [`UndoPull`]: what was removed, and what others wrote since.
    async fn undo_pull_once(&self, undo: &UndoPull<'_>) -> Result<Undone> {
        let now = self.image_records().await?;
        let after_pull = undo.after_pull.unwrap_or(&now);
        let image_id = match undo.image_id {
            Some(id) => id.to_string(),
            None => match store_diff::image_id_in(undo.name, &now) {
                Some(id) => id,
                None => return Ok((false, Vec::new())),
            },
        };
        let plan = store_diff::undo_pull(undo.name, &image_id, undo.before, after_pull, &now);
        for record in &plan.restore {
            self.restore_record(record).await?;
        }
        for record in &plan.delete {
            self.delete_record(record).await?;
        }
        if !plan.left.is_empty() {
            tracing::info!(image = undo.name, records = ?plan.left, "left records another client wrote during the test pull");
        }
        Ok((plan.delete.iter().any(|r| r.name == undo.name), plan.left))
    }
}

/// What a test pull's cleanup did: whether the name pulled was removed again, and the
/// records another client wrote since (left as they are).
type Undone = (bool, Vec<String>);

/// How long the cleanup of a test pull keeps trying while containerd does not answer
/// (killed or restarted mid-pull) before it gives up and logs what may be left.
const CLEANUP_RETRY_FOR: Duration = Duration::from_secs(120);

/// What undoing one test pull needs: the name, CRI's image id (unknown when
/// containerd went away before answering the pull), and the store before and right
/// after the pull (unknown when containerd went away right after it).
struct UndoPull<'a> {
    name: &'a str,
    image_id: Option<&'a str>,
    before: &'a StoreSnapshot,
    after_pull: Option<&'a StoreSnapshot>,
}

/// Test hook (`--features failpoints`): `CTRDIAG_FAILPOINT=pause:<name>:<dir>` makes
/// the process create `<dir>/<name>.paused` and wait until `<dir>/<name>.go` exists,
/// so a test can act in a window that is otherwise milliseconds wide. Compiled out of
/// normal builds.
#[cfg(feature = "failpoints")]
fn failpoint_pause(name: &str) {
    let Ok(spec) = std::env::var("CTRDIAG_FAILPOINT") else {
        return;
    };
    let Some(dir) = spec.strip_prefix(&format!("pause:{name}:")) else {
        return;
    };
    let dir = std::path::Path::new(dir);
    let _ = std::fs::write(dir.join(format!("{name}.paused")), b"");
    let go = dir.join(format!("{name}.go"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !go.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(not(feature = "failpoints"))]
fn failpoint_pause(_name: &str) {}

fn image_spec(image: &str) -> k8s_cri::v1::ImageSpec {
    k8s_cri::v1::ImageSpec {
        image: image.to_string(),
        ..Default::default()
    }
}
