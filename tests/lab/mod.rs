//! The test lab: real containerd processes of three versions, real `docker-registry`
//! servers with certificates made per test, a test image pushed over the registry's
//! HTTP API, a real journal file written by systemd-journal-remote, and a stand-in
//! Kubernetes API server. Shared by every integration test (`mod lab;`).
//!
//! Everything listens on loopback; every process is killed when its handle drops.
#![allow(dead_code)] // each test binary uses a different part of the lab

/// Defines one `#[tokio::test]` per containerd version for each scenario function
/// `async fn scenario(version: Version)`, in modules `containerd_1_6`, `_1_7`, `_2_1`.
#[allow(unused_macros)] // the benches use the lab without it
macro_rules! per_version {
    ($($scenario:ident),* $(,)?) => {
        mod containerd_1_6 { $( #[tokio::test] async fn $scenario() { super::$scenario(super::Version::V1_6).await } )* }
        mod containerd_1_7 { $( #[tokio::test] async fn $scenario() { super::$scenario(super::Version::V1_7).await } )* }
        mod containerd_2_1 { $( #[tokio::test] async fn $scenario() { super::$scenario(super::Version::V2_1).await } )* }
    };
}

pub mod certs;
pub mod clock;
pub mod containerd;
pub mod daemon;
pub mod follower;
pub mod grpc;
pub mod image;
pub mod journal;
pub mod kube_api;
pub mod process;
pub mod registry;
pub mod reliability;
pub mod systemd;
pub mod tree;

use std::path::PathBuf;
use std::time::Duration;

/// The registry name tests use; `/etc/hosts` maps it to 127.0.0.1 because containerd
/// treats `localhost` and loopback IPs as plain-HTTP registries (LAB.md).
pub const REGISTRY_NAME: &str = "registry.ctrdiag.test";

/// Where lab files go: under the target dir, so a crashed test leaves no litter in /tmp.
pub fn scratch_dir(prefix: &str) -> tempfile::TempDir {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lab");
    std::fs::create_dir_all(&base).expect("create lab scratch base");
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(base)
        .expect("create lab scratch dir")
}

/// Waits for `check` to return `Some`, polling every few ms, failing the test with
/// `what` after `timeout`. The lab's only way to wait: never a bare sleep.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Maps [`REGISTRY_NAME`] to 127.0.0.1 in /etc/hosts unless it already is.
/// Appends one line with O_APPEND, so concurrent test processes cannot corrupt the file.
pub fn ensure_hosts_entry() {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let present = hosts.lines().any(|l| {
        let mut f = l.split_whitespace();
        f.next() == Some("127.0.0.1") && f.any(|n| n == REGISTRY_NAME)
    });
    if !present {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open("/etc/hosts")
            .expect("tests run as root and must be able to add the registry name to /etc/hosts");
        writeln!(f, "127.0.0.1 {REGISTRY_NAME}").expect("append to /etc/hosts");
    }
}

/// A free TCP port on 127.0.0.1 (the OS picks; the small window before the server
/// binds it is acceptable in tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// `GET /metrics` on `addr` as a scraper would, over plain HTTP/1.1: the response.
pub async fn scrape(addr: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to metrics");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// A gRPC channel over its own connection to the Unix socket `path`, as any client
/// program would open one (tonic; the URI is required but unused).
pub async fn unix_channel(
    path: &std::path::Path,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let path = path.to_path_buf();
    tonic::transport::Endpoint::from_static("http://[::]")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
}
