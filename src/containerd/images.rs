//! Images in a containerd namespace: listing with sizes, and removal that keeps the
//! kubelet's view consistent (CRI `RemoveImage` for CRI's namespace).

use std::collections::HashMap;

use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::namespaces_client::NamespacesClient;
use containerd_client::services::v1::{
    DeleteImageRequest, Image, ListImagesRequest, ListNamespacesRequest, ReadContentRequest,
    UpdateImageRequest,
};
use containerd_client::types::Descriptor;
use futures_util::{StreamExt, TryStreamExt};
use k8s_cri::v1::image_service_client::ImageServiceClient;
use serde::Deserialize;

use super::store_diff::{ImageRecord, StoreSnapshot};
use super::{ContainerdClient, ContainerdError, Result, image_spec};

/// How many images are sized at once: enough to hide round trips, few enough not to
/// load a busy node's containerd.
const SIZE_CONCURRENCY: usize = 16;

/// Refuses to buffer a "manifest" larger than this: real ones are a few KiB.
const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// One image reference as containerd stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSummary {
    /// The reference, e.g. `registry.example.com/app:1.0` or CRI's `sha256:...` id ref.
    pub name: String,
    /// Digest of the target (manifest or index).
    pub digest: String,
    pub media_type: String,
    /// Bytes of the index, the host platform's manifest, config and layers (what
    /// `ctr images ls` shows); `None` when content is missing (e.g. a partial pull).
    pub size: Option<u64>,
    /// Seconds since the Unix epoch.
    pub created_unix: Option<i64>,
}

impl ContainerdClient {
    /// Fails with [`ContainerdError::NamespaceNotFound`] for a namespace containerd does
    /// not know: listing it would otherwise just look empty. CRI's namespace always
    /// counts as known: containerd creates it on the first CRI pull.
    pub async fn ensure_namespace(&self) -> Result<()> {
        self.check_socket()?;
        if self.namespace.is_cri() {
            return Ok(());
        }
        // `Get` answers OK with no labels for a namespace that does not exist; only
        // `List` tells.
        let names = self.namespace_names().await?;
        if names.iter().any(|n| n == self.namespace.as_str()) {
            Ok(())
        } else {
            Err(ContainerdError::NamespaceNotFound {
                namespace: self.namespace.to_string(),
            })
        }
    }

    /// The names of every namespace containerd knows.
    pub(crate) async fn namespace_names(&self) -> Result<Vec<String>> {
        Ok(NamespacesClient::new(self.channel.clone())
            .list(self.request(ListNamespacesRequest::default()))
            .await
            .map_err(|s| self.status_error("ListNamespaces", s))?
            .into_inner()
            .namespaces
            .into_iter()
            .map(|n| n.name)
            .collect())
    }

    /// Lists every image reference in the namespace, sorted by name.
    pub async fn list_images(&self) -> Result<Vec<ImageSummary>> {
        self.ensure_namespace().await?;
        let images = self.list_raw().await?;

        // Tag, digest and id refs of one image share a target: size each target once.
        let mut targets: Vec<(String, String, i64)> = images
            .iter()
            .filter_map(|i| i.target.as_ref())
            .map(|t| (t.digest.clone(), t.media_type.clone(), t.size))
            .collect();
        targets.sort();
        targets.dedup_by(|a, b| a.0 == b.0);
        let sizes: HashMap<String, Option<u64>> = futures_util::stream::iter(targets)
            .map(|(digest, media_type, size)| async move {
                let total = self.target_size(&digest, &media_type, size).await?;
                Ok::<_, ContainerdError>((digest, total))
            })
            .buffer_unordered(SIZE_CONCURRENCY)
            .try_collect()
            .await?;

        let mut out: Vec<ImageSummary> = images
            .into_iter()
            .map(|i| {
                let target = i.target.unwrap_or_default();
                ImageSummary {
                    size: sizes.get(&target.digest).copied().flatten(),
                    name: i.name,
                    digest: target.digest,
                    media_type: target.media_type,
                    created_unix: i.created_at.map(|t| t.seconds),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The images service's records of this namespace, as containerd returns them.
    pub(super) async fn list_raw(&self) -> Result<Vec<Image>> {
        Ok(ImagesClient::new(self.channel.clone())
            .list(self.request(ListImagesRequest::default()))
            .await
            .map_err(|s| self.status_error("ListImages", s))?
            .into_inner()
            .images)
    }

    /// Whether CRI knows `name` (the kubelet's view; independent of this client's
    /// namespace because CRI always works in `k8s.io`).
    pub async fn cri_image_present(&self, name: &str) -> Result<bool> {
        self.check_socket()?;
        let status = ImageServiceClient::new(self.channel.clone())
            .image_status(self.request(k8s_cri::v1::ImageStatusRequest {
                image: Some(image_spec(name)),
                verbose: false,
            }))
            .await
            .map_err(|s| self.status_error("ImageStatus", s))?
            .into_inner();
        Ok(status.image.is_some())
    }

    /// Removes one image reference. In CRI's namespace this goes through CRI
    /// `RemoveImage`, which drops every ref of the image, as `crictl rmi` does; deleting
    /// only the tag would leave CRI's `sha256:` ref listed behind it.
    pub async fn remove_image(&self, name: &str) -> Result<()> {
        self.check_socket()?;
        let not_found = || ContainerdError::ImageNotFound {
            image: name.to_string(),
            namespace: self.namespace.to_string(),
        };
        if self.namespace.is_cri() {
            if !self.cri_image_present(name).await? {
                return Err(not_found());
            }
            ImageServiceClient::new(self.channel.clone())
                .remove_image(self.request(k8s_cri::v1::RemoveImageRequest {
                    image: Some(image_spec(name)),
                }))
                .await
                .map_err(|s| self.status_error("RemoveImage", s))?;
            return Ok(());
        }
        let req = self.request(DeleteImageRequest {
            name: name.to_string(),
            sync: true,
            target: None,
        });
        match ImagesClient::new(self.channel.clone()).delete(req).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Err(not_found()),
            Err(s) => Err(self.status_error("DeleteImage", s)),
        }
    }

    /// Every image record of the namespace as containerd's images service stores it
    /// (no sizes): the snapshot a test pull compares against.
    pub async fn image_records(&self) -> Result<StoreSnapshot> {
        self.check_socket()?;
        let images = self.list_raw().await?;
        Ok(images
            .into_iter()
            .map(|i| {
                let target = i.target.unwrap_or_default();
                let updated = i.updated_at.map(|t| (t.seconds, t.nanos)).unwrap_or((0, 0));
                let record = ImageRecord {
                    name: i.name,
                    target_digest: target.digest,
                    target_media_type: target.media_type,
                    target_size: target.size,
                    labels: i.labels.into_iter().collect(),
                    updated,
                };
                (record.name.clone(), record)
            })
            .collect())
    }

    /// Deletes one record through the images service, and only while it still points
    /// at `record`'s target (containerd 2.x checks that itself; on 1.x the check just
    /// made is what holds). Every other name of the image stays, unlike CRI
    /// `RemoveImage`. A record already gone is not an error.
    pub async fn delete_record(&self, record: &ImageRecord) -> Result<()> {
        let req = self.request(DeleteImageRequest {
            name: record.name.clone(),
            sync: false,
            target: Some(descriptor(record)),
        });
        match ImagesClient::new(self.channel.clone()).delete(req).await {
            Ok(_) => Ok(()),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
            Err(s) => Err(self.status_error("DeleteImage", s)),
        }
    }

    /// Puts a record back as `record` has it (target and labels), through the images
    /// service: CRI follows image events, so the kubelet sees the old target again.
    pub async fn restore_record(&self, record: &ImageRecord) -> Result<()> {
        let image = Image {
            name: record.name.clone(),
            labels: record.labels.clone().into_iter().collect(),
            target: Some(descriptor(record)),
            created_at: None,
            updated_at: None,
        };
        let req = self.request(UpdateImageRequest {
            image: Some(image),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["target".into(), "labels".into()],
            }),
            source_date_epoch: None,
        });
        ImagesClient::new(self.channel.clone())
            .update(req)
            .await
            .map_err(|s| self.status_error("UpdateImage", s))?;
        Ok(())
    }

    /// Sums the descriptors containerd's `images.Size` walks: the target, and for an
    /// index the host platform's manifest, then its config and layers.
    async fn target_size(&self, digest: &str, media_type: &str, size: i64) -> Result<Option<u64>> {
        let mut total = u64::try_from(size).unwrap_or(0);
        let Some(mut doc) = self.read_manifest(digest).await? else {
            return Ok(None);
        };
        if is_index(media_type) || !doc.manifests.is_empty() {
            let Some(child) = doc.manifests.iter().find(|m| m.matches_host()).cloned() else {
                return Ok(Some(total));
            };
            total += child.size;
            doc = match self.read_manifest(&child.digest).await? {
                Some(d) => d,
                None => return Ok(None),
            };
        }
        total += doc.config.map(|c| c.size).unwrap_or(0);
        total += doc.layers.iter().map(|l| l.size).sum::<u64>();
        Ok(Some(total))
    }

    /// Reads and parses a manifest or index blob; `None` when the blob is absent.
    async fn read_manifest(&self, digest: &str) -> Result<Option<ManifestDoc>> {
        let req = self.request(ReadContentRequest {
            digest: digest.to_string(),
            offset: 0,
            size: 0,
        });
        let mut stream = match ContentClient::new(self.channel.clone()).read(req).await {
            Ok(r) => r.into_inner(),
            Err(s) if s.code() == tonic::Code::NotFound => return Ok(None),
            Err(s) => return Err(self.status_error("ReadContent", s)),
        };
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => bytes.extend_from_slice(&c.data),
                Err(s) if s.code() == tonic::Code::NotFound => return Ok(None),
                Err(s) => return Err(self.status_error("ReadContent", s)),
            }
            if bytes.len() > MAX_MANIFEST_BYTES {
                return Ok(None);
            }
        }
        Ok(serde_json::from_slice(&bytes).ok())
    }
}

fn descriptor(record: &ImageRecord) -> Descriptor {
    Descriptor {
        media_type: record.target_media_type.clone(),
        digest: record.target_digest.clone(),
        size: record.target_size,
        annotations: Default::default(),
    }
}

fn is_index(media_type: &str) -> bool {
    media_type.ends_with("image.index.v1+json") || media_type.ends_with("manifest.list.v2+json")
}

/// The fields of an OCI/Docker manifest or index that sizing needs.
#[derive(Debug, Default, Deserialize)]
struct ManifestDoc {
    #[serde(default)]
    manifests: Vec<ChildManifest>,
    config: Option<Blob>,
    #[serde(default)]
    layers: Vec<Blob>,
}

#[derive(Debug, Deserialize)]
struct Blob {
    size: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct ChildManifest {
    digest: String,
    size: u64,
    platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
struct Platform {
    os: String,
    architecture: String,
}

impl ChildManifest {
    fn matches_host(&self) -> bool {
        self.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == host_arch())
    }
}

/// The host architecture in OCI's spelling.
fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}
