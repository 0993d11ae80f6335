//! The authorization matrix: every RPC (dry runs and streams included) called by root,
//! by a member of the daemon's group, by a user who reaches the socket through a
//! supplementary group the daemon does not recognise, and by any other user. The
//! callers are real kernel credentials on real connections (lab::grpc), so what is
//! checked is what the socket's mode and SO_PEERCRED really let through.

#[macro_use]
mod lab;

use std::time::Duration;

use ctrdiag::api::v1 as pb;
use lab::containerd::{LabContainerd, Version};
use lab::daemon::Daemon;
use lab::grpc::{Client, Creds};
use tonic::Code;

/// The lab daemon's `socket_group` is `nogroup`.
const NOGROUP: u32 = 65534;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Mutate,
}

/// Every RPC, in each form whose access differs or that a user could try to slip
/// through (a dry run, `--keep`).
const CALLS: &[(&str, Access)] = &[
    ("GetStatus", Access::Read),
    ("ListImages", Access::Read),
    ("TestPull", Access::Read),
    ("TestPull --keep", Access::Mutate),
    ("RemoveImage", Access::Mutate),
    ("ListChanges", Access::Read),
    ("Rollback --dry-run", Access::Mutate),
    ("Rollback", Access::Mutate),
    ("RestartContainerd", Access::Mutate),
    ("Fix --dry-run (stream)", Access::Mutate),
    ("Fix (stream)", Access::Mutate),
    ("Diagnose", Access::Read),
    ("ScanCredentials", Access::Read),
    ("CleanCredentials --dry-run (stream)", Access::Mutate),
    ("CleanCredentials (stream)", Access::Mutate),
    ("PurgeCache --dry-run (stream)", Access::Mutate),
    ("PurgeCache (stream)", Access::Mutate),
    ("ListEvents", Access::Read),
    ("Watch (stream)", Access::Read),
];

/// Makes one call; a stream counts as answered once its first message arrives (its
/// authorization is decided before any message).
async fn call(c: &mut Client, name: &str) -> Result<(), tonic::Status> {
    let host = "nothing.ctrdiag.test:1";
    let image = format!("{host}/none:latest");
    let fix = |dry_run| pb::FixRequest {
        target: host.into(),
        mode: Some(pb::fix_request::Mode::InsecureSkipVerify(true)),
        ttl_seconds: 600,
        dry_run,
        verify_image: image.clone(),
        ..Default::default()
    };
    let clean = |dry_run| pb::CleanCredentialsRequest {
        registry: host.into(),
        dry_run,
        ..Default::default()
    };
    let purge = |dry_run| pb::PurgeCacheRequest {
        registry: host.into(),
        dry_run,
        ..Default::default()
    };
    async fn first<T>(
        s: Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>,
    ) -> Result<(), tonic::Status> {
        let mut s = s?.into_inner();
        tokio::time::timeout(Duration::from_secs(60), s.message())
            .await
            .expect("a stream's first message within 60 s")?;
        Ok(())
    }
    match name {
        "GetStatus" => c.get_status(pb::GetStatusRequest {}).await.map(drop),
        "ListImages" => c
            .list_images(pb::ListImagesRequest::default())
            .await
            .map(drop),
        "TestPull" | "TestPull --keep" => c
            .test_pull(pb::TestPullRequest {
                image: image.clone(),
                keep: name.ends_with("--keep"),
            })
            .await
            .map(drop),
        "RemoveImage" => c
            .remove_image(pb::RemoveImageRequest {
                image: image.clone(),
                namespace: String::new(),
            })
            .await
            .map(drop),
        "ListChanges" => c.list_changes(pb::ListChangesRequest {}).await.map(drop),
        "Rollback --dry-run" | "Rollback" => c
            .rollback(pb::RollbackRequest {
                id: String::new(),
                dry_run: name.ends_with("--dry-run"),
            })
            .await
            .map(drop),
        "RestartContainerd" => c
            .restart_containerd(pb::RestartContainerdRequest {})
            .await
            .map(drop),
        "Fix --dry-run (stream)" => first(c.fix(fix(true)).await).await,
        "Fix (stream)" => first(c.fix(fix(false)).await).await,
        "Diagnose" => c
            .diagnose(pb::DiagnoseRequest {
                target: host.into(),
                skip_pull: true,
            })
            .await
            .map(drop),
        "ScanCredentials" => c
            .scan_credentials(pb::ScanCredentialsRequest::default())
            .await
            .map(drop),
        "CleanCredentials --dry-run (stream)" => {
            first(c.clean_credentials(clean(true)).await).await
        }
        "CleanCredentials (stream)" => first(c.clean_credentials(clean(false)).await).await,
        "PurgeCache --dry-run (stream)" => first(c.purge_cache(purge(true)).await).await,
        "PurgeCache (stream)" => first(c.purge_cache(purge(false)).await).await,
        "ListEvents" => c
            .list_events(pb::ListEventsRequest::default())
            .await
            .map(drop),
        "Watch (stream)" => first(c.watch(pb::WatchRequest::default()).await).await,
        other => panic!("no call {other}"),
    }
}

#[tokio::test]
async fn every_rpc_by_root_group_member_and_other_users() {
    lab::ensure_hosts_entry();
    let ctr = LabContainerd::start(Version::V2_1).await;
    // Credential files of the lab's own, never the machine's.
    let creds = lab::scratch_dir("creds-");
    let daemon = Daemon::start_with(
        &ctr,
        &format!(
            "credential_files = [\"{}/config.json\"]\n",
            creds.path().display()
        ),
    )
    .await;
    let before = lab::tree::managed_state(&ctr, &daemon);
    let mut cells = 0;

    // A member (primary group nogroup, as SO_PEERCRED reports it): reads are served,
    // every change (dry runs too) needs root.
    let member = Creds {
        uid: 4711,
        gid: NOGROUP,
        groups: vec![],
    };
    let mut c = lab::grpc::connect_as(&daemon.socket, &member)
        .await
        .expect("a member reaches the socket (0660 root:nogroup)");
    for &(name, access) in CALLS {
        let got = call(&mut c, name).await;
        match access {
            Access::Read => {
                if let Err(s) = &got {
                    assert_ne!(s.code(), Code::PermissionDenied, "member: {name}: {s:?}");
                }
            }
            Access::Mutate => {
                let s = got.expect_err(name);
                assert_eq!(s.code(), Code::PermissionDenied, "member: {name}: {s:?}");
                assert!(
                    s.message().contains("needs root") && s.message().contains("uid 4711"),
                    "member: {name}: {s:?}"
                );
            }
        }
        cells += 1;
    }

    // In the socket's group only as a supplementary group of a user the group
    // database does not list: the socket lets the connection in, the policy does not.
    let listed_nowhere = Creds {
        uid: 4712,
        gid: 4712,
        groups: vec![NOGROUP],
    };
    let mut c = lab::grpc::connect_as(&daemon.socket, &listed_nowhere)
        .await
        .expect("the socket's group mode lets a supplementary member connect");
    for &(name, access) in CALLS {
        let s = call(&mut c, name).await.expect_err(name);
        assert_eq!(s.code(), Code::PermissionDenied, "{name}: {s:?}");
        // A change is refused for not being root before membership is even asked.
        let says = match access {
            Access::Read => "\"nogroup\"",
            Access::Mutate => "needs root",
        };
        assert!(
            s.message().contains("uid 4712") && s.message().contains(says),
            "{name}: {s:?}"
        );
        cells += 1;
    }

    // Anyone else: the socket's 0660 refuses the connection itself, for every RPC.
    let other = Creds {
        uid: 4713,
        gid: 4713,
        groups: vec![],
    };
    let refused = lab::grpc::connect_as(&daemon.socket, &other)
        .await
        .expect_err("another user cannot connect");
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::PermissionDenied,
        "{refused}"
    );
    cells += CALLS.len();

    assert_eq!(
        lab::tree::managed_state(&ctr, &daemon),
        before,
        "refused calls wrote nothing"
    );
    let log = daemon.log();
    for uid in ["uid=4711", "uid=4712"] {
        assert!(
            log.contains("refused call") && log.contains(uid),
            "refusals are logged with the uid ({uid}):\n{log}"
        );
    }

    // Root may make every call: whatever each answers, it is not a refusal.
    let mut c = lab::grpc::connect(&daemon.socket).await;
    for &(name, _) in CALLS {
        if let Err(s) = call(&mut c, name).await {
            assert_ne!(s.code(), Code::PermissionDenied, "root: {name}: {s:?}");
        }
        cells += 1;
    }
    assert_eq!(cells, 4 * CALLS.len());
    println!(
        "authorization cells checked: {cells} ({} calls x 4 callers)",
        CALLS.len()
    );
    let status = daemon.cli(&["status"]).await;
    assert_eq!(status.code, 0, "{status:?}");
}
