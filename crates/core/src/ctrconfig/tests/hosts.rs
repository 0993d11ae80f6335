use super::*;
use crate::ctrconfig::hosts_toml::ClientPair;
use crate::ctrconfig::hosts_toml::{MovedEntry, MovedSettings};
use crate::ctrconfig::{
    HostsProblemKind, HostsToml, HostsTomlError, InsecureMode, Removal, TrustMode,
};

const FULL: &str = r#"# mirror first, then the registry itself
server = "https://reg.test:5443"

[host."https://mirror.local:5000"]
  capabilities = ["pull", "resolve"]
  ca = ["/etc/ssl/mirror.pem", "mirror-extra.pem"]
  client = [["/etc/ssl/c.cert", "/etc/ssl/c.key"], "/etc/ssl/both.pem"]
  override_path = true
  [host."https://mirror.local:5000".header]
    x-custom = "1"

[host."https://reg.test:5443"]
  skip_verify = true
  client = "/etc/ssl/one.pem"
"#;

#[test]
fn reads_every_field_and_keeps_order() {
    let h = HostsToml::parse(FULL).unwrap();
    assert_eq!(h.to_string(), FULL);
    assert_eq!(h.server(), Some("https://reg.test:5443"));
    let urls: Vec<_> = h.hosts().iter().map(|e| e.url.as_str()).collect();
    assert_eq!(urls, ["https://mirror.local:5000", "https://reg.test:5443"]);
    let m = &h.hosts()[0];
    assert_eq!(m.position.map(|p| p.line), Some(4));
    assert_eq!(
        m.settings.capabilities.as_deref(),
        Some(&["pull".to_string(), "resolve".to_string()][..])
    );
    assert_eq!(m.settings.ca, ["/etc/ssl/mirror.pem", "mirror-extra.pem"]);
    assert_eq!(
        m.settings.client,
        [
            ClientPair {
                cert: "/etc/ssl/c.cert".into(),
                key: Some("/etc/ssl/c.key".into())
            },
            ClientPair {
                cert: "/etc/ssl/both.pem".into(),
                key: None
            },
        ]
    );
    assert!(m.settings.override_path);
    let r = &h.hosts()[1];
    assert_eq!(r.settings.skip_verify, Some(true));
    assert_eq!(r.settings.client[0].cert, "/etc/ssl/one.pem");
    assert!(h.problems(&ver("1.6.20")).is_empty());
}

#[test]
fn top_level_only_file_is_invalid_on_old_1x_only() {
    let text = "server = \"https://reg.test:5443\"\nca = \"/etc/ssl/ca.pem\"\n";
    let h = HostsToml::parse(text).unwrap();
    assert_eq!(h.top_level().ca, ["/etc/ssl/ca.pem"]);
    for v in ["1.5.18", "1.6.20", "1.7.24", "1.7.31"] {
        let p = h.problems(&ver(v));
        assert_eq!(p.len(), 1, "{v}");
        assert_eq!(p[0].kind, HostsProblemKind::NoHostTable);
        assert!(p[0].to_string().contains("invalid `host` tree"));
    }
    assert!(h.problems(&ver("2.1.9")).is_empty());
}

#[test]
fn wrong_types_are_reported_with_their_line() {
    let text = "server = \"https://r\"\n[host.\"https://r\"]\nskip_verify = \"true\"\ncapabilities = [\"pull\", \"fetch\"]\nca = 5\nclient = [[\"only-one\"]]\n";
    let h = HostsToml::parse(text).unwrap();
    let p = h.problems(&ver("2.1.9"));
    let lines: Vec<_> = p.iter().map(|p| p.position.map(|x| x.line)).collect();
    assert_eq!(lines, [Some(3), Some(4), Some(5), Some(6)], "{p:?}");
    assert!(
        matches!(&p[1].kind, HostsProblemKind::UnknownCapability { value } if value == "fetch")
    );
    assert!(
        matches!(&p[0].kind, HostsProblemKind::WrongType { key, expected: "a boolean", .. } if key == "host.\"https://r\".skip_verify")
    );
    assert!(matches!(&p[3].kind, HostsProblemKind::BadClientPair { .. }));
    assert!(p[0].to_string().starts_with("line 3, column"));
}

#[test]
fn host_must_be_a_table() {
    let p = HostsToml::parse("host = \"x\"\n")
        .unwrap()
        .problems(&ver("2.1.9"));
    assert!(matches!(&p[0].kind, HostsProblemKind::WrongType { key, .. } if key == "host"));
}

#[test]
fn syntax_errors_name_line_and_column() {
    match HostsToml::parse("server = \"https://r\"\n[host.\"https://r\"\nca = 1\n") {
        Err(HostsTomlError::Syntax(s)) => {
            let p = s.position.expect("position");
            assert_eq!(p.line, 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn recommended_documents() {
    let h = host("reg.test:5443");
    let ca = HostsToml::recommended(
        &h,
        &TrustMode::Ca("/etc/containerd/certs.d/reg.test:5443/ca.crt".into()),
    );
    assert_eq!(
        ca,
        "# Registry settings for reg.test:5443, written by ctrdiag.\n\
         server = \"https://reg.test:5443\"\n\n\
         [host.\"https://reg.test:5443\"]\n\
         capabilities = [\"pull\", \"resolve\"]\n\
         ca = \"/etc/containerd/certs.d/reg.test:5443/ca.crt\"\n"
    );
    let skip = HostsToml::recommended(&h, &TrustMode::SkipVerify);
    assert!(skip.contains("skip_verify = true\n"));
    let http = HostsToml::recommended(&host("plain.test:5000"), &TrustMode::PlainHttp);
    assert!(http.contains("server = \"http://plain.test:5000\"\n"));
    assert!(http.contains("[host.\"http://plain.test:5000\"]\n"));
    assert!(!http.contains("skip_verify"));
    for text in [ca, skip, http] {
        let parsed = HostsToml::parse(&text).unwrap();
        assert!(parsed.problems(&ver("1.6.20")).is_empty(), "{text}");
        assert_eq!(parsed.hosts().len(), 1);
    }
}

#[test]
fn with_trust_keeps_the_rest_of_an_existing_file() {
    let h = host("reg.test:5443");
    let after = HostsToml::parse(FULL)
        .unwrap()
        .with_trust(&h, &TrustMode::Ca("/ca.pem".into()))
        .unwrap();
    // The CA fix also takes the entry's `skip_verify` out; the rest is untouched.
    let expected = format!(
        "{}  capabilities = [\"pull\", \"resolve\"]\n  ca = \"/ca.pem\"\n",
        FULL.replace("  skip_verify = true\n", "")
    );
    assert_eq!(after, expected);

    // A top-level-only file gains the [host] table it needs on 1.x.
    let old = "server = \"https://reg.test:5443\"\n";
    let after = HostsToml::parse(old)
        .unwrap()
        .with_trust(&h, &TrustMode::SkipVerify)
        .unwrap();
    let parsed = HostsToml::parse(&after).unwrap();
    assert!(parsed.problems(&ver("1.6.20")).is_empty(), "{after}");
    assert_eq!(parsed.hosts()[0].settings.skip_verify, Some(true));

    // An existing `ca` array gets the new CA appended once.
    let arr =
        "server = \"https://reg.test:5443\"\n[host.\"https://reg.test:5443\"]\nca = [\"/a.pem\"]\n";
    let once = HostsToml::parse(arr)
        .unwrap()
        .with_trust(&h, &TrustMode::Ca("/b.pem".into()))
        .unwrap();
    let twice = HostsToml::parse(&once)
        .unwrap()
        .with_trust(&h, &TrustMode::Ca("/b.pem".into()))
        .unwrap();
    assert_eq!(once, twice);
    assert_eq!(
        HostsToml::parse(&once).unwrap().hosts()[0].settings.ca,
        ["/a.pem", "/b.pem"]
    );
}

/// skip_verify at the top level, in a mirror entry (false) and in the registry's entry.
const SKIPPING: &str = r#"# test registry
server = "https://reg.test:5443"
skip_verify = true # top level applies to server

[host."https://mirror.local"]
  capabilities = ["pull"]
  skip_verify = false

[host."https://reg.test:5443"]
  capabilities = ["pull", "resolve"]
  skip_verify = true
"#;

#[test]
fn a_ca_fix_removes_every_skip_verify_in_the_file() {
    let after = HostsToml::parse(SKIPPING)
        .unwrap()
        .with_trust(&host("reg.test:5443"), &TrustMode::Ca("/ca.pem".into()))
        .unwrap();
    assert_eq!(
        after,
        "# test registry\nserver = \"https://reg.test:5443\"\n\n[host.\"https://mirror.local\"]\n  capabilities = [\"pull\"]\n\n[host.\"https://reg.test:5443\"]\n  capabilities = [\"pull\", \"resolve\"]\n  ca = \"/ca.pem\"\n"
    );
    let parsed = HostsToml::parse(&after).unwrap();
    assert_eq!(parsed.top_level().skip_verify, None);
    assert!(
        parsed
            .hosts()
            .iter()
            .all(|e| e.settings.skip_verify.is_none())
    );
}

#[test]
fn a_second_ca_is_added_next_to_the_entrys_own() {
    let one = "server = \"https://reg.test:5443\"\n[host.\"https://reg.test:5443\"]\nca = \"/a.pem\" # ours\n";
    let after = HostsToml::parse(one)
        .unwrap()
        .with_trust(&host("reg.test:5443"), &TrustMode::Ca("/b.pem".into()))
        .unwrap();
    assert_eq!(
        HostsToml::parse(&after).unwrap().hosts()[0].settings.ca,
        ["/a.pem", "/b.pem"]
    );
    assert!(
        after.contains("\nca = [\"/a.pem\", \"/b.pem\"] # ours\n"),
        "{after}"
    );
}

#[test]
fn removing_skip_verify_takes_only_the_true_ones() {
    let h = host("reg.test:5443");
    let parsed = HostsToml::parse(SKIPPING).unwrap();
    let Removal::Edited(after) = parsed
        .without_insecure(&h, &InsecureMode::SkipVerify)
        .unwrap()
    else {
        panic!("expected an edit");
    };
    assert_eq!(
        after,
        SKIPPING
            .replace("skip_verify = true # top level applies to server\n", "")
            .replace(
                "  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n",
                "  capabilities = [\"pull\", \"resolve\"]\n"
            )
    );
    assert!(
        after.contains("skip_verify = false"),
        "a false value is not insecure"
    );
    assert_eq!(
        HostsToml::parse(&after)
            .unwrap()
            .without_insecure(&h, &InsecureMode::SkipVerify)
            .unwrap(),
        Removal::Unchanged
    );
    // A file that only said skip_verify leaves nothing behind.
    let only = "host.\"https://reg.test:5443\".skip_verify = true\n";
    assert_eq!(
        HostsToml::parse(only)
            .unwrap()
            .without_insecure(&h, &InsecureMode::SkipVerify)
            .unwrap(),
        Removal::NothingLeft
    );
}

#[test]
fn removing_plain_http_restores_https_or_leaves_nothing() {
    let h = host("plain.test:5000");
    let own = HostsToml::recommended(&h, &TrustMode::PlainHttp);
    let parsed = HostsToml::parse(&own).unwrap();
    assert_eq!(
        parsed
            .without_insecure(&h, &InsecureMode::PlainHttp)
            .unwrap(),
        Removal::NothingLeft
    );
    // skip_verify is not plain HTTP, and another host's http entry is not this one's.
    assert_eq!(
        parsed
            .without_insecure(&host("other.test:5000"), &InsecureMode::PlainHttp)
            .unwrap(),
        Removal::Unchanged
    );
    assert_eq!(
        parsed
            .without_insecure(&h, &InsecureMode::SkipVerify)
            .unwrap(),
        Removal::Unchanged
    );

    // Someone added a mirror since: it stays, with the registry itself (https) as the
    // fallback containerd tries last.
    let edited = format!("{own}\n[host.\"https://mirror.local\"]\n  capabilities = [\"pull\"]\n");
    let Removal::Edited(after) = HostsToml::parse(&edited)
        .unwrap()
        .without_insecure(&h, &InsecureMode::PlainHttp)
        .unwrap()
    else {
        panic!("expected an edit");
    };
    assert_eq!(
        after,
        "# Registry settings for plain.test:5000, written by ctrdiag.\nserver = \"https://plain.test:5000\"\n\n[host.\"https://mirror.local\"]\n  capabilities = [\"pull\"]\n"
    );
}

fn moved(url: &str, ca: Option<&str>, skip_verify: Option<bool>) -> MovedEntry {
    MovedEntry {
        url: url.into(),
        ca: ca.map(str::to_string),
        skip_verify,
        client: None,
        override_path: false,
    }
}

#[test]
fn moved_settings_merge_into_a_file_or_conflict() {
    let settings = MovedSettings {
        server: Some("https://reg.test:5443".into()),
        entries: vec![
            moved("https://new.mirror", Some("/etc/ssl/m.pem"), None),
            moved("https://reg.test:5443", None, Some(true)),
        ],
    };
    // FULL already has the server and the registry's skip_verify: only the new mirror
    // entry is appended, after the file's own entries, and the registry's entry keeps
    // its (default) capabilities.
    let after = HostsToml::parse(FULL)
        .unwrap()
        .with_moved(&settings)
        .unwrap();
    assert_eq!(
        after,
        format!(
            "{FULL}\n[host.\"https://new.mirror\"]\ncapabilities = [\"pull\", \"resolve\"]\nca = \"/etc/ssl/m.pem\"\n"
        )
    );
    // A different value for a key the file sets is refused.
    let clash = MovedSettings {
        server: None,
        entries: vec![moved("https://reg.test:5443", None, Some(false))],
    };
    match HostsToml::parse(FULL).unwrap().with_moved(&clash) {
        Err(e @ HostsTomlError::Conflict { .. }) => {
            assert!(
                e.to_string()
                    .contains("host.\"https://reg.test:5443\".skip_verify"),
                "{e}"
            )
        }
        other => panic!("{other:?}"),
    }
    // A CA the entry already lists in an array is the same value.
    let listed = MovedSettings {
        server: None,
        entries: vec![moved(
            "https://mirror.local:5000",
            Some("mirror-extra.pem"),
            None,
        )],
    };
    assert_eq!(
        HostsToml::parse(FULL).unwrap().with_moved(&listed).unwrap(),
        FULL
    );
}
