//! The API is plain gRPC: Python's grpcio, with stubs generated from our .proto files,
//! calls the real daemon over its Unix socket and gets the same answers as the CLI.

#[macro_use]
mod lab;

use lab::certs::CertKind;
use lab::containerd::{LabContainerd, Version};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind};

#[tokio::test]
async fn python_grpcio_calls_the_daemon() {
    let registry = Registry::start(RegistryKind::Tls(CertKind::Expired)).await;
    let ctr = LabContainerd::start(Version::V2_1).await;
    let daemon = Daemon::start(&ctr).await;
    let out = tokio::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/python/get_status.py"
        ))
        .arg(&daemon.socket)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/proto"))
        .arg(registry.image_ref())
        .output()
        .await
        .expect("python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python client failed (grpcio-tools is installed by scripts/install-deps.sh): {stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from python");
    assert_eq!(v["status"]["containerd"]["reachable"], true, "{v:#}");
    assert_eq!(v["status"]["containerd"]["cri_ready"], true);
    assert!(
        v["diagnosis"]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["cause"] == "tls_expired"),
        "{v:#}"
    );
    assert_eq!(v["empty_image_error"], "INVALID_ARGUMENT");
}
