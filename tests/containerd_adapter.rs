//! The containerd adapter against real containerd 1.6, 1.7 and 2.1 and a real TLS
//! registry: what `ctrdiagd` will rely on for every later feature.

#[macro_use]
mod lab;

use std::time::Duration;

use ctrdiag::containerd::{ContainerdError, Namespace, PullOutcome};
use lab::certs::CertKind;
use lab::containerd::{LabContainerd, Version};
use lab::registry::{Registry, RegistryKind};

async fn pull_from_trusted_registry_returns_the_image_id(version: Version) {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(version).await;
    ctr.trust_registry_ca(&registry);
    let client = ctr.client();

    let v = client.version().await.expect("version");
    assert!(
        v.version
            .trim_start_matches('v')
            .starts_with(version.expected_version_prefix()),
        "{v:?}"
    );

    match client.test_pull(&registry.image_ref()).await.expect("pull") {
        PullOutcome::Pulled { image_id, duration } => {
            assert_eq!(image_id, registry.image.config_digest);
            assert!(duration > Duration::ZERO);
        }
        other => panic!("pull failed: {other:?}\n{}", ctr.log()),
    }

    let images = client.list_images().await.expect("list");
    let tagged = images
        .iter()
        .find(|i| i.name == registry.image_ref())
        .unwrap_or_else(|| panic!("pulled image not listed: {images:?}"));
    assert_eq!(tagged.digest, registry.image.manifest_digest);
    assert_eq!(tagged.size, Some(registry.image.total_size()));
    assert!(tagged.created_unix.is_some());
    // CRI also records the image under its id.
    assert!(
        images
            .iter()
            .any(|i| i.name.contains(&registry.image.config_digest))
    );

    client
        .remove_image(&registry.image_ref())
        .await
        .expect("remove");
    let after = client.list_images().await.expect("list after remove");
    assert!(
        after
            .iter()
            .all(|i| i.digest != registry.image.manifest_digest),
        "CRI removal must drop every ref of the image: {after:?}"
    );
    match client.remove_image(&registry.image_ref()).await {
        Err(ContainerdError::ImageNotFound { image, namespace }) => {
            assert_eq!(image, registry.image_ref());
            assert_eq!(namespace, "k8s.io");
        }
        other => panic!("second removal: {other:?}"),
    }
}

async fn pull_from_untrusted_registry_returns_the_x509_text(version: Version) {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(version).await;
    match ctr
        .client()
        .test_pull(&registry.image_ref())
        .await
        .expect("pull")
    {
        PullOutcome::Failed { message, code, .. } => {
            assert!(
                message.contains("x509: certificate signed by unknown authority"),
                "{message}"
            );
            assert!(message.contains(&registry.host), "{message}");
            assert_eq!(code, tonic::Code::Unknown);
            // 2.x wraps Go's newer wording; 1.6 does not.
            if version.is_2x() {
                assert!(
                    message.contains("tls: failed to verify certificate"),
                    "{message}"
                );
            }
            // `ctrdiag explain` labels the text with the versions that word it so.
            let origin = ctrdiag::explain::origin(&message);
            let expected = match version {
                Version::V1_6 | Version::V1_7 => "containerd 1.6, 1.7",
                Version::V2_1 => "containerd 2.x",
            };
            assert_eq!(origin.containerd, Some(expected), "{message}");
        }
        ok => panic!("an untrusted registry must fail: {ok:?}"),
    }
}

async fn stopped_containerd_gives_typed_errors_and_recovers(version: Version) {
    let mut ctr = LabContainerd::start(version).await;
    let client = ctr.client();
    client.version().await.expect("version while running");

    ctr.kill();
    let err = client.version().await.expect_err("containerd is down");
    assert!(err.is_unreachable(), "{err:?}");
    assert!(
        matches!(err, ContainerdError::Unreachable { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("is it running?"), "{err}");
    let err = client.runtime_status().await.expect_err("CRI is down");
    assert!(err.is_unreachable(), "{err:?}");

    std::fs::remove_file(&ctr.socket).expect("remove stale socket");
    let err = client
        .test_pull("docker.io/library/busybox:latest")
        .await
        .expect_err("no socket");
    assert!(
        matches!(err, ContainerdError::SocketMissing { .. }),
        "{err:?}"
    );

    // Same client object: the lazy channel reconnects once containerd is back.
    ctr.restart().await;
    assert!(client.version().await.is_ok());
    assert!(client.runtime_status().await.expect("status").runtime_ready);
}

async fn cri_plugin_refusing_its_config_is_cri_unavailable(version: Version) {
    // The runbook's edit on a node that has config_path: CRI refuses to load (LAB.md).
    let table = lab::containerd::cri_registry_table(version);
    let ctr = LabContainerd::start_with(
        version,
        lab::containerd::LabConfig {
            extra: format!(
                "[{table}.configs.\"registry.ctrdiag.test:5443\".tls]\n  insecure_skip_verify = true\n"
            ),
            wait_for_cri: false,
            ..Default::default()
        },
    )
    .await;
    let err = ctr
        .client()
        .runtime_status()
        .await
        .expect_err("CRI must be down");
    assert!(
        matches!(err, ContainerdError::CriUnavailable { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("unknown service runtime.v1.ImageService")
    );
}

async fn listing_an_unknown_namespace_is_not_found(version: Version) {
    let ctr = LabContainerd::start(version).await;
    let client = ctr
        .client()
        .in_namespace("no-such-ns".parse::<Namespace>().unwrap());
    match client.list_images().await {
        Err(ContainerdError::NamespaceNotFound { namespace }) => {
            assert_eq!(namespace, "no-such-ns")
        }
        other => panic!("{other:?}"),
    }
}

per_version!(
    pull_from_trusted_registry_returns_the_image_id,
    pull_from_untrusted_registry_returns_the_x509_text,
    stopped_containerd_gives_typed_errors_and_recovers,
    listing_an_unknown_namespace_is_not_found,
);

// The config trap exists on 1.x only: 2.x ignores `configs.tls` instead (issue 4 covers that).
mod config_trap {
    #[tokio::test]
    async fn on_1_6() {
        super::cri_plugin_refusing_its_config_is_cri_unavailable(super::Version::V1_6).await
    }
    #[tokio::test]
    async fn on_1_7() {
        super::cri_plugin_refusing_its_config_is_cri_unavailable(super::Version::V1_7).await
    }
}
