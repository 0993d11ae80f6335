//! Hostile input through the API itself (not the CLI, which checks much of it before
//! sending): invalid references and host names, broken and oversized messages, huge CA
//! PEMs, floods of connections and watch subscribers. Each case gets a clear status
//! that names the problem, nothing is written, and the daemon answers afterwards.

#[macro_use]
mod lab;

use std::time::Duration;

use ctrdiag::api::v1 as pb;
use lab::containerd::{LabContainerd, Version};
use lab::daemon::Daemon;
use lab::grpc::{Client, Creds};
use pb::fix_request::Mode;
use tonic::Code;

/// Names and references a client could send: traversal, NUL and other control
/// characters, non-ASCII, over-long, empty, names containerd's lookup would confuse.
fn hostile_names() -> Vec<String> {
    let long_label = "a".repeat(64);
    vec![
        "../../etc/passwd".into(),
        "registry.ctrdiag.test/../../../etc".into(),
        "..".into(),
        "/etc/containerd".into(),
        "registry.ctrdiag.test\0evil".into(),
        "registry.ctrdiag.test\n:5000".into(),
        "registry.ctrdiag.test\u{7f}".into(),
        "régistry.ctrdiag.test".into(),
        "registry.ctrdiag.test\u{202e}".into(),
        "\u{ff0e}\u{ff0e}/etc".into(),
        format!("{}.test", "a.".repeat(200)),
        format!("{long_label}.test"),
        "x".repeat(70_000),
        " ".into(),
        "registry.ctrdiag.test:99999".into(),
        "registry.ctrdiag.test:-1".into(),
        "_default".into(),
        "host_5000_".into(),
        "-leading.test".into(),
        "a b.test".into(),
        "user:pass@registry.ctrdiag.test".into(),
        "https://registry.ctrdiag.test/v2/".into(),
    ]
}

/// Every request field that takes a host or an image, with the hostile value in it.
async fn send_hostile(c: &mut Client, field: &str, v: &str) -> Result<(), tonic::Status> {
    let host_fix = |target: &str, dry_run| pb::FixRequest {
        target: target.into(),
        mode: Some(Mode::InsecureSkipVerify(true)),
        ttl_seconds: 600,
        dry_run,
        ..Default::default()
    };
    match field {
        "TestPull.image" => c
            .test_pull(pb::TestPullRequest {
                image: v.into(),
                keep: false,
            })
            .await
            .map(drop),
        "Diagnose.target" => c
            .diagnose(pb::DiagnoseRequest {
                target: v.into(),
                skip_pull: true,
            })
            .await
            .map(drop),
        "Fix.target (dry run)" => c.fix(host_fix(v, true)).await.map(drop),
        "Fix.target" => c.fix(host_fix(v, false)).await.map(drop),
        "Fix.verify_image" => c
            .fix(pb::FixRequest {
                verify_image: v.into(),
                ..host_fix("registry.ctrdiag.test:5000", true)
            })
            .await
            .map(drop),
        "ScanCredentials.registry" => c
            .scan_credentials(pb::ScanCredentialsRequest { registry: v.into() })
            .await
            .map(drop),
        "CleanCredentials.registry" => c
            .clean_credentials(pb::CleanCredentialsRequest {
                registry: v.into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "CleanCredentials.verify_image" => c
            .clean_credentials(pb::CleanCredentialsRequest {
                registry: "registry.ctrdiag.test:5000".into(),
                verify_image: v.into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "PurgeCache.registry" => c
            .purge_cache(pb::PurgeCacheRequest {
                registry: v.into(),
                ..Default::default()
            })
            .await
            .map(drop),
        "ListImages.namespace" => c
            .list_images(pb::ListImagesRequest {
                namespace: v.into(),
            })
            .await
            .map(drop),
        "Rollback.id" => c
            .rollback(pb::RollbackRequest {
                id: v.into(),
                dry_run: false,
            })
            .await
            .map(drop),
        "ListEvents.cause" => c
            .list_events(pb::ListEventsRequest {
                cause: v.into(),
                since_secs: 0,
            })
            .await
            .map(drop),
        "Watch.cause" => c
            .watch(pb::WatchRequest { cause: v.into() })
            .await
            .map(drop),
        other => panic!("no field {other}"),
    }
}

const FIELDS: &[&str] = &[
    "TestPull.image",
    "Diagnose.target",
    "Fix.target (dry run)",
    "Fix.target",
    "Fix.verify_image",
    "ScanCredentials.registry",
    "CleanCredentials.registry",
    "CleanCredentials.verify_image",
    "PurgeCache.registry",
    "ListImages.namespace",
    "Rollback.id",
    "ListEvents.cause",
    "Watch.cause",
];

async fn status_answers(daemon: &Daemon) {
    let mut c = lab::grpc::connect(&daemon.socket).await;
    tokio::time::timeout(
        Duration::from_secs(30),
        c.get_status(pb::GetStatusRequest {}),
    )
    .await
    .expect("status answers within 30 s")
    .expect("status answers");
}

#[tokio::test]
async fn hostile_names_and_references_are_invalid_arguments_and_write_nothing() {
    lab::ensure_hosts_entry();
    let ctr = LabContainerd::start(Version::V2_1).await;
    let daemon = Daemon::start(&ctr).await;
    let before = lab::tree::managed_state(&ctr, &daemon);
    let mut c = lab::grpc::connect(&daemon.socket).await;
    let mut tried = 0;
    let mut wrong = Vec::new();
    for field in FIELDS {
        for v in hostile_names() {
            if valid_there(field, &v) {
                continue;
            }
            tried += 1;
            match send_hostile(&mut c, field, &v).await {
                // The message says what was wrong, never an empty or internal text.
                Err(s)
                    if s.code() == Code::InvalidArgument
                        && (s.message().contains("invalid") || s.message().contains("not")) => {}
                other => wrong.push(format!(
                    "{field} = {:?}: {:?}",
                    shorten(&v),
                    other.map_err(|s| (s.code(), s.message().to_string()))
                )),
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {tried} hostile values were not refused as invalid:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert_eq!(
        lab::tree::managed_state(&ctr, &daemon),
        before,
        "nothing was written"
    );
    status_answers(&daemon).await;
    println!("hostile names tried through the API: {tried}");
}

/// Values that are hostile as host names but legal where `field` takes them: as an
/// image, `name:99999` is repository `name` with tag `99999`, and a 64-character
/// path component is allowed (a host label is not); a containerd namespace may be
/// 76 characters long.
fn valid_there(field: &str, v: &str) -> bool {
    let long_label = v.len() == 69 && v.ends_with(".test");
    let image = field.ends_with(".image") || field.ends_with("verify_image");
    (image && (long_label || v == "registry.ctrdiag.test:99999"))
        || (field == "ListImages.namespace" && long_label)
}

fn shorten(v: &str) -> String {
    if v.len() > 80 {
        format!("{}... ({} bytes)", &v[..40], v.len())
    } else {
        v.to_string()
    }
}

#[tokio::test]
async fn broken_oversized_and_contradictory_requests_are_refused_clearly() {
    let ctr = LabContainerd::start(Version::V2_1).await;
    let daemon = Daemon::start(&ctr).await;
    let before = lab::tree::managed_state(&ctr, &daemon);
    let mut c = lab::grpc::connect(&daemon.socket).await;
    let target = "registry.ctrdiag.test:5000";
    let fix = |mode, dry_run| pb::FixRequest {
        target: target.into(),
        mode,
        dry_run,
        ..Default::default()
    };
    let mut tried = 0;
    // (request, the code, words the message must hold)
    let huge_pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        "QUFB".repeat(600_000)
    );
    let fixes: Vec<(pb::FixRequest, Code, &str)> = vec![
        (fix(None, true), Code::InvalidArgument, "say how to fix"),
        (
            fix(Some(Mode::InsecureSkipVerify(false)), false),
            Code::InvalidArgument,
            "must be true",
        ),
        (
            fix(Some(Mode::CaPem(huge_pem.clone())), true),
            Code::InvalidArgument,
            "CA",
        ),
        (
            fix(Some(Mode::CaPem(huge_pem)), false),
            Code::InvalidArgument,
            "CA",
        ),
        (
            fix(Some(Mode::CaPem("not a certificate\0\u{1}".into())), false),
            Code::InvalidArgument,
            "CA",
        ),
        (
            fix(Some(Mode::CaPem(String::new())), false),
            Code::InvalidArgument,
            "CA",
        ),
        (
            fix(Some(Mode::CaFromServerSha256("zz".repeat(40))), false),
            Code::InvalidArgument,
            "SHA-256",
        ),
        (
            fix(Some(Mode::PinServerCertificateSha256("0".into())), false),
            Code::InvalidArgument,
            "SHA-256",
        ),
        (
            pb::FixRequest {
                ttl_seconds: u64::MAX,
                ..fix(Some(Mode::InsecureSkipVerify(true)), false)
            },
            Code::InvalidArgument,
            "time to live",
        ),
        (
            pb::FixRequest {
                ca_file: "../ca.pem".into(),
                ..fix(Some(Mode::CaPem("x".into())), false)
            },
            Code::InvalidArgument,
            "absolute path",
        ),
    ];
    for (req, code, words) in fixes {
        tried += 1;
        let shown = format!("{:?}", req.mode)
            .chars()
            .take(80)
            .collect::<String>();
        let s = c.fix(req).await.expect_err(&shown);
        assert_eq!(s.code(), code, "{shown}: {s:?}");
        assert!(
            s.message().to_lowercase().contains(&words.to_lowercase()),
            "{shown}: {:?}",
            s.message()
        );
    }
    // Both a registry and "all", or neither.
    for (registry, all) in [(target, true), ("", false)] {
        tried += 1;
        let s = c
            .clean_credentials(pb::CleanCredentialsRequest {
                registry: registry.into(),
                all,
                dry_run: true,
                ..Default::default()
            })
            .await
            .expect_err("contradictory clean");
        assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
        assert!(s.message().contains("registry"), "{s:?}");
    }
    tried += 1;
    let s = c
        .purge_cache(pb::PurgeCacheRequest::default())
        .await
        .expect_err("purge of no registry");
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    for name in ["", "a\0b", &"n".repeat(5000)] {
        tried += 1;
        let s = c
            .remove_image(pb::RemoveImageRequest {
                image: name.into(),
                namespace: String::new(),
            })
            .await
            .expect_err("a bad image name");
        assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
        assert!(s.message().contains("image name"), "{s:?}");
    }

    // A message over the server's limit is refused before it is decoded.
    tried += 1;
    let s = c
        .fix(fix(Some(Mode::CaPem("A".repeat(5 << 20))), true))
        .await
        .expect_err("an oversized message");
    assert_eq!(s.code(), Code::OutOfRange, "{s:?}");
    assert!(s.message().contains("too large"), "{s:?}");

    // Bytes that are not the message they claim to be, sent raw.
    let root = Creds::ROOT;
    let channel = || lab::grpc::channel_as(&daemon.socket, &root);
    let raw: Vec<(&str, Vec<u8>)> = vec![
        ("TestPull", vec![0xff; 64]),
        // Field 1 (image) declared 100 bytes long, 3 present.
        ("TestPull", vec![0x0a, 100, b'a', b'b', b'c']),
        // Field 1 (image) as bytes that are not UTF-8.
        ("TestPull", vec![0x0a, 2, 0xc3, 0x28]),
        (
            "Fix",
            vec![
                0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
            ],
        ),
        // Field 2 (skip_pull) with a varint longer than any varint can be.
        ("Diagnose", [vec![0x10], vec![0x80; 64]].concat()),
        // A group start tag with no end.
        ("Rollback", vec![0x0b]),
        // Deeply nested unknown groups.
        ("GetStatus", [vec![0x0b; 200], vec![0x0c; 200]].concat()),
    ];
    for (method, body) in raw {
        tried += 1;
        let s = lab::grpc::raw_call(channel().await.unwrap(), method, body.clone())
            .await
            .expect_err("malformed bytes");
        // tonic answers a request it cannot decode with INTERNAL, as the gRPC status
        // code table says for a message that fails to parse; the text says so.
        assert!(
            matches!(s.code(), Code::Internal | Code::InvalidArgument),
            "{method} {:?}: {s:?}",
            &body[..body.len().min(16)]
        );
        assert!(s.message().contains("decode"), "{method}: {s:?}");
    }
    // An empty message is a valid, all-default request: refused for what it lacks.
    tried += 1;
    let s = lab::grpc::raw_call(channel().await.unwrap(), "Fix", Vec::new())
        .await
        .expect_err("an empty fix");
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");

    assert_eq!(
        lab::tree::managed_state(&ctr, &daemon),
        before,
        "nothing was written"
    );
    status_answers(&daemon).await;
    println!("malformed, oversized and contradictory requests tried: {tried}");
}

#[tokio::test]
async fn floods_of_connections_and_watchers_are_bounded_and_status_answers() {
    let ctr = LabContainerd::start(Version::V2_1).await;
    let daemon = Daemon::start(&ctr).await;
    let before = lab::tree::managed_state(&ctr, &daemon);

    // Connections that never speak, and ones that send garbage instead of HTTP/2.
    let mut idle = Vec::new();
    for i in 0..400 {
        let mut s = tokio::net::UnixStream::connect(&daemon.socket)
            .await
            .expect("connect");
        if i % 2 == 0 {
            use tokio::io::AsyncWriteExt;
            let _ = s
                .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\xff\xfe")
                .await;
        }
        idle.push(s);
    }
    status_answers(&daemon).await;

    // Watch streams up to the bound, then a clear RESOURCE_EXHAUSTED.
    let mut c = lab::grpc::connect(&daemon.socket).await;
    let mut watches = Vec::new();
    for _ in 0..32 {
        let mut s = c
            .watch(pb::WatchRequest::default())
            .await
            .expect("a watch within the bound")
            .into_inner();
        let first = s.message().await.unwrap().unwrap();
        assert!(matches!(
            first.message,
            Some(pb::watch_message::Message::Subscribed(_))
        ));
        watches.push(s);
    }
    let s = c
        .watch(pb::WatchRequest::default())
        .await
        .expect_err("one watch more than the bound");
    assert_eq!(s.code(), Code::ResourceExhausted, "{s:?}");
    assert!(
        s.message().contains("32 watch streams") && !s.message().contains("test pulls"),
        "{s:?}"
    );
    status_answers(&daemon).await;
    // A closed stream gives its slot back.
    drop(watches.pop());
    lab::wait_for(
        "a watch slot to be free again",
        Duration::from_secs(10),
        || {
            let mut c = c.clone();
            async move { c.watch(pb::WatchRequest::default()).await.ok() }
        },
    )
    .await;
    drop(idle);
    drop(watches);
    status_answers(&daemon).await;
    assert_eq!(
        lab::tree::managed_state(&ctr, &daemon),
        before,
        "nothing was written"
    );
}
