//! A tiny but real OCI image (one gzip tar layer, a config, a manifest), pushed
//! over the registry HTTP API (`POST`/`PUT` blob uploads, `PUT` manifest).

use std::io::Write;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};

pub const REPOSITORY: &str = "ctrdiag/hello";
pub const TAG: &str = "v1";

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// The blobs of a built image and the digests tests assert on.
pub struct TestImage {
    pub layer: Vec<u8>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    /// `sha256:` digest of the config: the image id CRI reports after a pull.
    pub config_digest: String,
    pub manifest_digest: String,
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// Builds an image whose only file holds `content` (distinct content, distinct ids).
pub fn build(content: &str) -> TestImage {
    let mut tar_bytes = Vec::new();
    {
        let mut tar = tar::Builder::new(&mut tar_bytes);
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, "hello.txt", content.as_bytes())
            .expect("tar entry");
        tar.finish().expect("tar finish");
    }
    let diff_id = sha256(&tar_bytes);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar_bytes).expect("gzip");
    let layer = gz.finish().expect("gzip finish");

    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .expect("config json");
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": sha256(&layer),
            "size": layer.len(),
        }],
    }))
    .expect("manifest json");
    TestImage {
        config_digest: sha256(&config),
        manifest_digest: sha256(&manifest),
        layer,
        config,
        manifest,
    }
}

impl TestImage {
    /// Bytes `ctr images ls` / our list report: manifest + config + layer.
    pub fn total_size(&self) -> u64 {
        (self.manifest.len() + self.config.len() + self.layer.len()) as u64
    }
}

/// Pushes `image` as `repository:tag` to the plain-HTTP registry at `base`
/// (`http://127.0.0.1:PORT`).
pub async fn push(base: &str, repository: &str, tag: &str, image: &TestImage) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    for blob in [&image.layer, &image.config] {
        let (status, headers, body) = send(
            &client,
            Method::POST,
            &format!("{base}/v2/{repository}/blobs/uploads/"),
            None,
            Vec::new(),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "start upload: {body}");
        let location = headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .expect("upload Location header")
            .to_string();
        let location = if location.starts_with("http") {
            location
        } else {
            format!("{base}{location}")
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={}", sha256(blob));
        let (status, _, body) = send(
            &client,
            Method::PUT,
            &url,
            Some("application/octet-stream"),
            blob.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "finish upload: {body}");
    }
    let (status, _, body) = send(
        &client,
        Method::PUT,
        &format!("{base}/v2/{repository}/manifests/{tag}"),
        Some(MANIFEST_TYPE),
        image.manifest.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "put manifest: {body}");
}

async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    method: Method,
    url: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, hyper::HeaderMap, String) {
    let mut req = Request::builder().method(method).uri(url);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let req = req.body(Full::new(Bytes::from(body))).expect("request");
    let resp = client
        .request(req)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}
