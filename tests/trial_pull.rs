//! Proof before writing, against real containerd 1.6 / 1.7 / 2.1 and a real TLS
//! registry: `fix --ca` first pulls through containerd's Transfer service with the
//! candidate hosts.toml staged privately. A wrong CA stops the fix with the trial's
//! own error while certs.d stays byte-identical; the right one passes the trial (and
//! the dry run shows it); the trial leaves CRI's image store and containerd's
//! namespaces as they were. containerd 1.6 has no Transfer service and 1.7's ignores
//! the staged hosts directory (measured: a trial with the right CA failed there): the
//! trial is reported as not run and the fix goes on as before.

#[macro_use]
mod lab;

use std::collections::BTreeMap;
use std::path::Path;

use containerd_client::services::v1::ListNamespacesRequest;
use containerd_client::services::v1::namespaces_client::NamespacesClient;
use lab::certs::CertKind;
use lab::containerd::{LabContainerd, Version};
use lab::daemon::Daemon;
use lab::registry::{Registry, RegistryKind};

per_version!(the_trial_proves_the_candidate_before_certs_d_is_written);

/// Every file under `dir` with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(tree(&path));
        } else {
            out.insert(path.display().to_string(), std::fs::read(&path).unwrap());
        }
    }
    out
}

async fn namespaces(ctr: &LabContainerd) -> Vec<String> {
    let channel = containerd_client::connect(&ctr.socket).await.unwrap();
    let mut names: Vec<String> = NamespacesClient::new(channel)
        .list(ListNamespacesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .namespaces
        .into_iter()
        .map(|n| n.name)
        .collect();
    names.sort();
    names
}

async fn cri_images(daemon: &Daemon) -> serde_json::Value {
    daemon.cli(&["-o", "json", "images"]).await.json()["images"].clone()
}

async fn the_trial_proves_the_candidate_before_certs_d_is_written(version: Version) {
    let registry = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    // A CA of its own, which did not sign `registry`'s certificate.
    let other = Registry::start(RegistryKind::Tls(CertKind::PrivateCa)).await;
    let ctr = LabContainerd::start(version).await;
    let daemon = Daemon::start(&ctr).await;
    let image = registry.image_ref();
    let ca = registry.tls.as_ref().unwrap().ca_path.display().to_string();
    let wrong_ca = other.tls.as_ref().unwrap().ca_path.display().to_string();
    let has_transfer = version.is_2x();
    let (certs_before, namespaces_before, images_before) = (
        tree(&ctr.certs_d),
        namespaces(&ctr).await,
        cri_images(&daemon).await,
    );

    let dry = daemon
        .cli(&["-o", "json", "fix", &image, "--ca", &wrong_ca, "--dry-run"])
        .await;
    let trial = &dry.json()["plan"]["trial"];
    if has_transfer {
        assert_eq!(dry.code, 1, "a dry run whose trial fails says so: {dry:?}");
        assert_eq!(
            (&trial["ran"], &trial["ok"]),
            (&true.into(), &false.into()),
            "{trial}"
        );
        assert_eq!(trial["cause"], "tls_unknown_authority", "{trial}");
        assert!(
            trial["message"]
                .as_str()
                .unwrap()
                .contains("unknown authority"),
            "containerd's own text: {trial}"
        );
    } else {
        assert_eq!(trial["ran"], false, "{trial}");
        assert!(
            trial["skipped_reason"]
                .as_str()
                .unwrap()
                .contains(match version {
                    Version::V1_6 => "has no Transfer service",
                    _ => "ignores a staged hosts directory",
                }),
            "{trial}"
        );
    }

    if has_transfer {
        let wrong = daemon.cli(&["fix", &image, "--ca", &wrong_ca]).await;
        assert_ne!(wrong.code, 0, "{wrong:?}");
        assert!(
            wrong.stdout.contains("FAILED, tls_unknown_authority"),
            "the plan shows the trial: {wrong:?}"
        );
        assert!(
            wrong.stdout.contains("stopped: ") && wrong.stdout.contains("nothing was written"),
            "{wrong:?}\n{}",
            daemon.log()
        );
        assert_eq!(tree(&ctr.certs_d), certs_before, "certs.d byte-identical");
        let changes = daemon.cli(&["-o", "json", "changes"]).await.json();
        assert_eq!(
            changes["changes"],
            serde_json::json!([]),
            "no change recorded"
        );
    }

    let dry = daemon
        .cli(&["-o", "json", "fix", &image, "--ca", &ca, "--dry-run"])
        .await;
    assert_eq!(dry.code, 0, "{dry:?}");
    let trial = &dry.json()["plan"]["trial"];
    assert_eq!(trial["ok"], has_transfer, "{trial}");
    assert_eq!(tree(&ctr.certs_d), certs_before, "a dry run writes nothing");
    assert_eq!(
        namespaces(&ctr).await,
        namespaces_before,
        "the trial's namespace is gone again"
    );
    assert_eq!(
        cri_images(&daemon).await,
        images_before,
        "CRI's store as it was"
    );

    let fix = daemon
        .cli(&["-o", "json", "fix", &image, "--ca", &ca])
        .await;
    assert_eq!(fix.code, 0, "{fix:?}\n{}", daemon.log());
    let f = fix.json();
    assert_eq!(
        (&f["ok"], &f["plan"]["trial"]["ok"]),
        (&true.into(), &has_transfer.into()),
        "{f}"
    );
}
