//! `ctrdiag images` against `ctr images ls`, same containerd, same images.
//!
//! `cargo bench --bench images_vs_ctr` seeds 2,000 distinct images (content written
//! through containerd's content service, images created through its images service),
//! then times both tools alternately and reports medians, their ratio, and the
//! daemon's resident memory idle and after listing. Under `cargo test` (no `--bench`
//! argument) it runs the same steps on 20 images as a smoke test.

#[path = "../tests/lab/mod.rs"]
#[macro_use]
mod lab;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::{
    CreateImageRequest, CreateRequest, Image, WriteAction, WriteContentRequest,
};
use containerd_client::types::Descriptor;
use futures_util::StreamExt;
use lab::containerd::{LabContainerd, Version};
use lab::daemon::Daemon;
use lab::process::rss_kib;
use sha2::{Digest, Sha256};
use tonic::Request;

/// Not k8s.io: CRI would add `sha256:` id refs of its own while the bench counts.
const NAMESPACE: &str = "bench";

fn sha256(b: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(b))
}

/// The lease that keeps seeded content from garbage collection until the images
/// referencing it exist (as `ctr` and the CRI plugin do for their pulls).
const LEASE: &str = "ctrdiag-bench-seed";

fn namespaced<T>(msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("containerd-namespace", NAMESPACE.parse().expect("ascii"));
    r.metadata_mut()
        .insert("containerd-lease", LEASE.parse().expect("ascii"));
    r
}

/// Writes one blob through the content service (WRITE then COMMIT on one stream).
async fn write_blob(
    channel: tonic::transport::Channel,
    data: Vec<u8>,
    labels: HashMap<String, String>,
) -> String {
    let digest = sha256(&data);
    let total = data.len() as i64;
    let reference = format!("bench-{digest}");
    let reqs = vec![
        WriteContentRequest {
            action: WriteAction::Write as i32,
            r#ref: reference.clone(),
            total,
            expected: digest.clone(),
            offset: 0,
            data,
            labels: HashMap::new(),
        },
        WriteContentRequest {
            action: WriteAction::Commit as i32,
            r#ref: reference,
            total,
            expected: digest.clone(),
            offset: total,
            data: Vec::new(),
            labels,
        },
    ];
    let mut responses = ContentClient::new(channel)
        .write(namespaced(futures_util::stream::iter(reqs)))
        .await
        .expect("content write")
        .into_inner();
    while let Some(r) = responses.next().await {
        r.expect("content write response");
    }
    digest
}

/// Creates image `i`: a layer, a config and a manifest, all distinct per image.
async fn seed_image(channel: tonic::transport::Channel, i: usize) {
    let layer = format!("layer of bench image {i}").repeat(64).into_bytes();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
    }))
    .expect("json");
    let layer_digest = write_blob(channel.clone(), layer.clone(), HashMap::new()).await;
    let config_digest = write_blob(channel.clone(), config.clone(), HashMap::new()).await;
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer.len()}],
    }))
    .expect("json");
    // GC labels keep the children alive as long as the manifest is referenced.
    let labels = HashMap::from([
        (
            "containerd.io/gc.ref.content.config".to_string(),
            config_digest,
        ),
        ("containerd.io/gc.ref.content.l.0".to_string(), layer_digest),
    ]);
    let manifest_len = manifest.len() as i64;
    let manifest_digest = write_blob(channel.clone(), manifest, labels).await;
    ImagesClient::new(channel)
        .create(namespaced(CreateImageRequest {
            image: Some(Image {
                name: format!("registry.ctrdiag.test:5000/bench/app-{i:05}:v1"),
                target: Some(Descriptor {
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    digest: manifest_digest,
                    size: manifest_len,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            source_date_epoch: None,
        }))
        .await
        .expect("create image");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Runs `cmd` to completion with output discarded (as a terminal would render it,
/// the full table is produced), returning the wall time; panics on failure.
fn timed(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .expect("spawn");
    let elapsed = start.elapsed();
    assert!(status.success(), "{cmd:?} failed: {status}");
    elapsed
}

#[tokio::main]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (images, rounds) = if full { (2000, 15) } else { (20, 2) };

    let ctr_lab = LabContainerd::start(Version::V2_1).await;
    let ctr_bin = Version::V2_1.binary().with_file_name("ctr");
    let channel = tonic::transport::Endpoint::from_static("http://[::]")
        .connect_with_connector({
            let path = ctr_lab.socket.clone();
            tower::service_fn(move |_| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            })
        })
        .await
        .expect("connect containerd");
    LeasesClient::new(channel.clone())
        .create(namespaced(CreateRequest {
            id: LEASE.into(),
            labels: HashMap::new(),
        }))
        .await
        .expect("create lease");
    let seeding = Instant::now();
    futures_util::stream::iter(0..images)
        .for_each_concurrent(16, |i| seed_image(channel.clone(), i))
        .await;
    eprintln!("seeded {images} images in {:.1?}", seeding.elapsed());

    let daemon = Daemon::start(&ctr_lab).await;
    let idle_rss = rss_kib(daemon.pid());

    // Both tools must see every image before their times mean anything.
    let ours = daemon
        .cli(&["-o", "json", "images", "--namespace", NAMESPACE])
        .await;
    assert_eq!(ours.code, 0, "{ours:?}");
    let listed = ours.json()["images"].as_array().cloned().expect("images");
    assert_eq!(listed.len(), images);
    assert!(
        listed.iter().all(|i| i["size"].is_u64()),
        "every image must be sized, as ctr sizes it"
    );
    // The peer tool, exactly as timed below.
    let ctr_ls = || {
        let mut cmd = Command::new(&ctr_bin);
        cmd.arg("-a")
            .arg(&ctr_lab.socket)
            .args(["-n", NAMESPACE, "images", "ls"]);
        cmd
    };
    let ctr_out = ctr_ls().output().expect("ctr");
    assert!(ctr_out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&ctr_out.stdout).lines().count(),
        images + 1
    );

    let mut ours_t = Vec::new();
    let mut ctr_t = Vec::new();
    for _ in 0..rounds {
        ours_t.push(timed(Command::new(lab::daemon::CLI).args([
            "--socket",
            daemon.socket.to_str().expect("utf-8"),
            "images",
            "--namespace",
            NAMESPACE,
        ])));
        ctr_t.push(timed(&mut ctr_ls()));
    }
    let busy_rss = rss_kib(daemon.pid());
    let (o, c) = (median(ours_t), median(ctr_t));
    println!(
        "images_vs_ctr: {images} images, containerd 2.1.9, {rounds} alternating rounds, medians"
    );
    println!(
        "  ctrdiag images           {:>8.1} ms",
        o.as_secs_f64() * 1e3
    );
    println!(
        "  ctr -n bench images ls   {:>8.1} ms",
        c.as_secs_f64() * 1e3
    );
    println!(
        "  ratio ctrdiag/ctr        {:>8.2}",
        o.as_secs_f64() / c.as_secs_f64()
    );
    println!(
        "  ctrdiagd RSS idle        {:>8.1} MiB",
        idle_rss as f64 / 1024.0
    );
    println!(
        "  ctrdiagd RSS after lists {:>8.1} MiB",
        busy_rss as f64 / 1024.0
    );
}
