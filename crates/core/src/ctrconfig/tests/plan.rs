use super::*;
use crate::ctrconfig::config_toml::LegacyTlsSetting;
use crate::ctrconfig::plan::needs_restart;
use crate::ctrconfig::{
    Edit, FileKind, HostsToml, HostsTomlError, PlanError, PlanOptions, TrustMode, Unmovable,
    plan_remove_overrides, plan_trust,
};

const CERTS: &str = "/etc/containerd/certs.d";

fn with_config_path(base: &str, value: &str) -> String {
    cfg(base).with_config_path(value).unwrap()
}

fn ca() -> TrustMode {
    TrustMode::Ca("/etc/containerd/certs.d/reg.test:5443/ca.crt".into())
}

fn write_of(e: &Edit) -> (&str, FileKind, Option<&str>, &str, bool) {
    match e {
        Edit::WriteFile {
            path,
            kind,
            before,
            after,
            needs_restart,
            ..
        } => (path, *kind, before.as_deref(), after, *needs_restart),
        other => panic!("expected a write, got {other:?}"),
    }
}

#[test]
fn existing_config_path_means_hosts_toml_only_and_no_restart() {
    let h = host("reg.test:5443");
    for (base, v) in [
        (DEFAULT_16, "1.6.20"),
        (DEFAULT_16, "1.7.24"),
        (DEFAULT_16, "2.1.9"),
        (DEFAULT_21, "2.1.9"),
    ] {
        let facts = node(&with_config_path(base, CERTS), vec![]);
        let edits = plan_trust(&facts, &ver(v), &h, &ca(), &PlanOptions::default()).unwrap();
        assert_eq!(edits.len(), 1, "{v}");
        let (path, kind, before, after, restart) = write_of(&edits[0]);
        assert_eq!(path, "/etc/containerd/certs.d/reg.test:5443/hosts.toml");
        assert_eq!(kind, FileKind::HostsToml);
        assert_eq!(before, None);
        assert!(!restart && !needs_restart(&edits));
        assert_eq!(after, HostsToml::recommended(&h, &ca()));
    }
}

#[test]
fn missing_config_path_is_set_under_the_right_plugin_and_restarts() {
    let h = host("reg.test:5443");
    for (base, v, table) in [
        (
            DEFAULT_16,
            "1.6.20",
            "[plugins.\"io.containerd.grpc.v1.cri\".registry]",
        ),
        (
            DEFAULT_16,
            "2.1.9",
            "[plugins.\"io.containerd.grpc.v1.cri\".registry]",
        ),
        (
            DEFAULT_21,
            "2.1.9",
            "[plugins.'io.containerd.cri.v1.images'.registry]",
        ),
    ] {
        let facts = node(base, vec![]);
        let edits = plan_trust(
            &facts,
            &ver(v),
            &h,
            &TrustMode::SkipVerify,
            &PlanOptions::default(),
        )
        .unwrap();
        assert_eq!(edits.len(), 2);
        assert_eq!(
            write_of(&edits[0]).1,
            FileKind::HostsToml,
            "hosts.toml is written before the restart"
        );
        let (path, kind, before, after, restart) = write_of(&edits[1]);
        assert_eq!(
            (path, kind, restart),
            ("/etc/containerd/config.toml", FileKind::ConfigToml, true)
        );
        assert_eq!(before, Some(base));
        let (removed, added) = line_diff(base, after);
        assert_eq!(removed.len(), 1);
        assert_eq!(added, [format!("      config_path = \"{CERTS}\"")]);
        let line_of_table = after.lines().position(|l| l.trim() == table).unwrap();
        let line_of_change = after.lines().position(|l| l.contains(CERTS)).unwrap();
        assert_eq!(line_of_change, line_of_table + 1, "{v}");
    }
}

#[test]
fn custom_certs_dir_is_used_and_checked() {
    let facts = node(DEFAULT_21, vec![]);
    let opts = PlanOptions {
        certs_dir: "/srv/certs.d".into(),
        ..PlanOptions::default()
    };
    let edits = plan_trust(
        &facts,
        &ver("2.1.9"),
        &host("r.test"),
        &TrustMode::PlainHttp,
        &opts,
    )
    .unwrap();
    assert_eq!(edits[0].path(), "/srv/certs.d/r.test/hosts.toml");
    let bad = PlanOptions {
        certs_dir: "relative/dir".into(),
        ..PlanOptions::default()
    };
    assert!(matches!(
        plan_trust(
            &facts,
            &ver("2.1.9"),
            &host("r.test"),
            &TrustMode::PlainHttp,
            &bad
        ),
        Err(PlanError::BadPath { .. })
    ));
    assert!(matches!(
        plan_trust(
            &facts,
            &ver("2.1.9"),
            &host("r.test"),
            &TrustMode::Ca("ca.crt".into()),
            &PlanOptions::default()
        ),
        Err(PlanError::BadPath { .. })
    ));
}

#[test]
fn multi_root_on_21_is_replaced_by_its_first_root() {
    let text = with_config_path(DEFAULT_21, "/etc/containerd/certs.d:/etc/docker/certs.d");
    let facts = node(&text, vec![]);
    let edits = plan_trust(
        &facts,
        &ver("2.1.9"),
        &host("reg.test:5443"),
        &ca(),
        &PlanOptions::default(),
    )
    .unwrap();
    assert_eq!(edits.len(), 2);
    assert_eq!(
        edits[0].path(),
        "/etc/containerd/certs.d/reg.test:5443/hosts.toml"
    );
    let (_, _, _, after, restart) = write_of(&edits[1]);
    assert!(restart);
    assert_eq!(cfg(after).facts().config_path.as_ref().unwrap().raw, CERTS);
    // 1.7 honours multi-root: write into the first root, nothing else.
    let v2 = with_config_path(DEFAULT_16, "/etc/containerd/certs.d:/etc/docker/certs.d");
    let edits = plan_trust(
        &node(&v2, vec![]),
        &ver("1.7.24"),
        &host("reg.test:5443"),
        &ca(),
        &PlanOptions::default(),
    )
    .unwrap();
    assert_eq!(edits.len(), 1);
}

#[test]
fn existing_directories_decide_where_the_file_goes() {
    let text = with_config_path(DEFAULT_21, CERTS);
    let h = host("reg.test:5443");
    // host_port_ shadows host:port, so it is the one to edit.
    let facts = node(
        &text,
        vec![
            dir(CERTS, "reg.test_5443_", None),
            dir(CERTS, "_default", Some("server = \"https://x\"\n")),
        ],
    );
    let edits = plan_trust(&facts, &ver("2.1.9"), &h, &ca(), &PlanOptions::default()).unwrap();
    assert_eq!(
        edits[0].path(),
        "/etc/containerd/certs.d/reg.test_5443_/hosts.toml"
    );
    // Only _default and host/: a host:port directory is created, never _default edited.
    let facts = node(
        &text,
        vec![
            dir(CERTS, "reg.test", None),
            dir(CERTS, "_default", Some("server = \"https://x\"\n")),
        ],
    );
    let edits = plan_trust(&facts, &ver("2.1.9"), &h, &ca(), &PlanOptions::default()).unwrap();
    assert_eq!(
        edits[0].path(),
        "/etc/containerd/certs.d/reg.test:5443/hosts.toml"
    );
    match &edits[0] {
        Edit::WriteFile { reason, .. } => assert!(reason.contains("_default"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_existing_hosts_toml_is_edited_or_replaced() {
    let text = with_config_path(DEFAULT_21, CERTS);
    let h = host("reg.test:5443");
    let mirror = "server = \"https://reg.test:5443\"\n\n[host.\"https://mirror.local\"]\n  capabilities = [\"pull\"]\n";
    let facts = node(&text, vec![dir(CERTS, "reg.test:5443", Some(mirror))]);
    let edits = plan_trust(&facts, &ver("2.1.9"), &h, &ca(), &PlanOptions::default()).unwrap();
    let (_, _, before, after, _) = write_of(&edits[0]);
    assert_eq!(before, Some(mirror));
    assert!(after.starts_with(mirror), "mirror entry kept: {after}");
    // A file containerd rejects anyway is replaced by the recommended one.
    let broken = "server = \"https://reg.test:5443\"\n[host.\"https://reg.test:5443\"]\nskip_verify = \"yes\"\n";
    let facts = node(&text, vec![dir(CERTS, "reg.test:5443", Some(broken))]);
    let edits = plan_trust(&facts, &ver("2.1.9"), &h, &ca(), &PlanOptions::default()).unwrap();
    let (_, _, before, after, _) = write_of(&edits[0]);
    assert_eq!(before, Some(broken));
    assert_eq!(after, HostsToml::recommended(&h, &ca()));
}

#[test]
fn legacy_entries_are_moved_out_when_config_path_is_added() {
    let with_tls = cfg(DEFAULT_16)
        .with_legacy_tls(&host("old.test"), &LegacyTlsSetting::InsecureSkipVerify)
        .unwrap();
    let facts = node(&with_tls, vec![]);
    let h = host("reg.test:5443");
    let edits = plan_trust(&facts, &ver("1.6.20"), &h, &ca(), &PlanOptions::default()).unwrap();
    let paths: Vec<_> = edits.iter().map(Edit::path).collect();
    assert_eq!(
        paths,
        [
            "/etc/containerd/certs.d/reg.test:5443/hosts.toml",
            "/etc/containerd/certs.d/old.test/hosts.toml",
            "/etc/containerd/config.toml"
        ]
    );
    let (_, _, _, moved, _) = write_of(&edits[1]);
    let moved = HostsToml::parse(moved).unwrap();
    assert_eq!(moved.hosts()[0].url, "https://old.test");
    assert_eq!(moved.hosts()[0].settings.skip_verify, Some(true));
    let (_, _, _, after, _) = write_of(&edits[2]);
    assert_eq!(
        after,
        with_config_path(DEFAULT_16, CERTS),
        "tls out, config_path in"
    );
    // On 2.x the ignored tls entry neither blocks config_path nor moves.
    let edits = plan_trust(&facts, &ver("2.1.9"), &h, &ca(), &PlanOptions::default()).unwrap();
    assert_eq!(edits.len(), 2);
    let (_, _, _, after, _) = write_of(&edits[1]);
    assert_eq!(cfg(after).facts().legacy_tls.len(), 1);
    // Mirrors block it everywhere, and move everywhere.
    let with_mirror = cfg(DEFAULT_16)
        .with_legacy_mirror(&host("m.test"), &["http://m.test".into()])
        .unwrap();
    let facts = node(&with_mirror, vec![]);
    let edits = plan_trust(&facts, &ver("2.1.9"), &h, &ca(), &PlanOptions::default()).unwrap();
    assert_eq!(edits[1].path(), "/etc/containerd/certs.d/m.test/hosts.toml");
    let (_, _, _, after, _) = write_of(&edits[2]);
    assert_eq!(after, with_config_path(DEFAULT_16, CERTS));
}

/// The runbook's broken node: `config_path` plus legacy tls and mirrors on 1.7, so
/// the CRI plugin is not loaded and every pull fails.
const RUNBOOK: &str = r#"version = 2
root = "/var/lib/containerd"

# kept by the operator
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"

[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"

[plugins."io.containerd.grpc.v1.cri".registry.configs."r.test:5000".tls]
  ca_file = "/etc/ssl/r.pem"

[plugins."io.containerd.grpc.v1.cri".registry.configs."r.test:5000".auth]
  username = "bot"
  password = "s3cret"

[plugins."io.containerd.grpc.v1.cri".registry.mirrors."m.test"]
  endpoint = ["https://mirror.local:5000", "http://m.test"]

[plugins."io.containerd.grpc.v1.cri".registry.headers]
  X-Team = ["infra"]
"#;

const R_CA: &str = "/etc/containerd/certs.d/r.test:5000/ctrdiag-ca.crt";

/// RUNBOOK without the two blocking tables: what config.toml must become.
fn runbook_cleaned(text: &str) -> String {
    text.replace(
        "[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"r.test:5000\".tls]\n  ca_file = \"/etc/ssl/r.pem\"\n\n",
        "",
    )
    .replace(
        "[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"m.test\"]\n  endpoint = [\"https://mirror.local:5000\", \"http://m.test\"]\n\n",
        "",
    )
}

/// Checks the two hosts.toml edits of a runbook plan.
fn assert_runbook_hosts_files(edits: &[Edit]) {
    let (path, kind, before, target, restart) = write_of(&edits[0]);
    assert_eq!(path, "/etc/containerd/certs.d/r.test:5000/hosts.toml");
    assert_eq!((kind, before, restart), (FileKind::HostsToml, None, false));
    assert_eq!(
        target,
        format!(
            "# Registry settings for r.test:5000, moved from config.toml by ctrdiag.\n\
             server = \"https://r.test:5000\"\n\n\
             [host.\"https://r.test:5000\"]\n\
             capabilities = [\"pull\", \"resolve\"]\n\
             ca = [\"/etc/ssl/r.pem\", \"{R_CA}\"]\n"
        ),
        "the legacy CA moved, the requested one added"
    );
    let (path, _, before, mirror, restart) = write_of(&edits[1]);
    assert_eq!(path, "/etc/containerd/certs.d/m.test/hosts.toml");
    assert_eq!((before, restart), (None, false));
    assert_eq!(
        mirror,
        "# Registry settings for m.test, moved from config.toml by ctrdiag.\n\
         server = \"https://m.test\"\n\n\
         [host.\"https://mirror.local:5000\"]\n\
         capabilities = [\"pull\", \"resolve\"]\n\n\
         [host.\"http://m.test\"]\n\
         capabilities = [\"pull\", \"resolve\"]\n"
    );
    for e in &edits[..2] {
        match e {
            Edit::WriteFile { reason, .. } => assert!(reason.contains("config.toml"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
    let ready = HostsToml::parse(target).unwrap();
    assert!(ready.problems(&ver("1.7.24")).is_empty());
}

#[test]
fn the_runbooks_broken_node_is_repaired_in_one_plan() {
    let facts = node(RUNBOOK, vec![]);
    let h = host("r.test:5000");
    let mode = TrustMode::Ca(R_CA.into());
    let edits = plan_trust(&facts, &ver("1.7.24"), &h, &mode, &PlanOptions::default()).unwrap();
    assert_eq!(edits.len(), 3, "{edits:?}");
    assert_runbook_hosts_files(&edits);
    let (path, kind, before, after, restart) = write_of(&edits[2]);
    assert_eq!(
        (path, kind, before, restart),
        (
            "/etc/containerd/config.toml",
            FileKind::ConfigToml,
            Some(RUNBOOK),
            true
        )
    );
    assert_eq!(after, runbook_cleaned(RUNBOOK), "only the two tables go");
    let f = cfg(after).facts().clone();
    assert!(f.legacy_tls.is_empty() && f.mirrors.is_empty());
    assert_eq!(f.legacy_auth[0].host, "r.test:5000", "credentials stay");
    assert_eq!(edits.iter().filter(|e| e.needs_restart()).count(), 1);
    match &edits[2] {
        Edit::WriteFile { reason, .. } => {
            assert!(reason.contains("configs.\"r.test:5000\".tls"), "{reason}");
            assert!(reason.contains("mirrors.\"m.test\""), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Findings still see the broken state in the file as it is.
    assert!(
        crate::ctrconfig::findings(&facts, &ver("1.7.24"))
            .iter()
            .any(|f| matches!(f, crate::ctrconfig::Finding::ConfigConflict { entries, .. } if entries.len() == 2))
    );
}

#[test]
fn the_runbooks_node_without_config_path_gets_it_with_the_move() {
    let without = RUNBOOK.replace(
        "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n\n",
        "",
    );
    let facts = node(&without, vec![]);
    let mode = TrustMode::Ca(R_CA.into());
    let edits = plan_trust(
        &facts,
        &ver("1.7.24"),
        &host("r.test:5000"),
        &mode,
        &PlanOptions::default(),
    )
    .unwrap();
    assert_eq!(edits.len(), 3, "{edits:?}");
    assert_runbook_hosts_files(&edits);
    let (_, _, _, after, restart) = write_of(&edits[2]);
    assert!(restart);
    let expected = cfg(&runbook_cleaned(&without))
        .with_config_path(CERTS)
        .unwrap();
    assert_eq!(after, expected);
    assert_eq!(cfg(after).facts().config_path.as_ref().unwrap().raw, CERTS);
}

#[test]
fn legacy_settings_merge_into_existing_hosts_files_and_mirrors_star_into_default() {
    let text = r#"version = 2
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d"
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."*"]
  endpoint = ["cache.local:5000/v2/proxy"]
[plugins."io.containerd.grpc.v1.cri".registry.configs."cache.local:5000".tls]
  cert_file = "/etc/ssl/c.cert"
  key_file = "/etc/ssl/c.key"
  insecure_skip_verify = true
"#;
    let existing = "server = \"https://cache.local:5000\"\n[host.\"https://cache.local:5000\"]\n  capabilities = [\"pull\"]\n";
    let facts = node(text, vec![dir(CERTS, "cache.local_5000_", Some(existing))]);
    let edits = plan_trust(
        &facts,
        &ver("1.7.24"),
        &host("reg.test:5443"),
        &TrustMode::SkipVerify,
        &PlanOptions::default(),
    )
    .unwrap();
    let paths: Vec<_> = edits.iter().map(Edit::path).collect();
    assert_eq!(
        paths,
        [
            "/etc/containerd/certs.d/reg.test:5443/hosts.toml",
            "/etc/containerd/certs.d/cache.local_5000_/hosts.toml",
            "/etc/containerd/certs.d/_default/hosts.toml",
            "/etc/containerd/config.toml"
        ]
    );
    // The target's own directory hides _default, so it keeps the "*" mirror first.
    let (_, _, _, target, _) = write_of(&edits[0]);
    let target = HostsToml::parse(target).unwrap();
    let urls: Vec<_> = target.hosts().iter().map(|e| e.url.as_str()).collect();
    assert_eq!(
        urls,
        ["https://cache.local:5000/v2/proxy", "https://reg.test:5443"]
    );
    let proxy = &target.hosts()[0].settings;
    assert!(
        proxy.override_path,
        "legacy paths are the API root as written"
    );
    assert_eq!(proxy.skip_verify, Some(true));
    assert_eq!(proxy.client[0].key.as_deref(), Some("/etc/ssl/c.key"));
    // The tls host has no mirror of its own, so its directory (an existing one: merged
    // into, its own entry kept first) gets the "*" endpoint. That endpoint is on the
    // host itself, so 1.x added no fallback, and the TLS settings go on it.
    let (_, _, before, merged, _) = write_of(&edits[1]);
    assert_eq!(before, Some(existing));
    assert_eq!(
        merged,
        format!(
            "{existing}\n[host.\"https://cache.local:5000/v2/proxy\"]\ncapabilities = [\"pull\", \"resolve\"]\n\
             skip_verify = true\nclient = [[\"/etc/ssl/c.cert\", \"/etc/ssl/c.key\"]]\noverride_path = true\n"
        )
    );
    let (_, _, _, default, _) = write_of(&edits[2]);
    let default = HostsToml::parse(default).unwrap();
    assert_eq!(
        default.server(),
        None,
        "containerd fills in the host pulled from"
    );
    assert_eq!(default.hosts().len(), 1);
    let (_, _, _, after, _) = write_of(&edits[3]);
    assert!(cfg(after).facts().mirrors.is_empty() && cfg(after).facts().legacy_tls.is_empty());
}

#[test]
fn legacy_tables_that_cannot_move_are_refused_with_what_to_do() {
    let h = host("reg.test:5443");
    let plan = |text: &str, v: &str, dirs| {
        plan_trust(
            &node(text, dirs),
            &ver(v),
            &h,
            &ca(),
            &PlanOptions::default(),
        )
    };
    let tls = |key: &str, body: &str| {
        format!(
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"{CERTS}\"\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"{key}\".tls]\n{body}"
        )
    };
    let problem = |r: Result<Vec<Edit>, PlanError>| match r {
        Err(e @ PlanError::LegacyBlocksConfigPath { .. }) => {
            assert!(e.to_string().contains("move them by hand"), "{e}");
            match e {
                PlanError::LegacyBlocksConfigPath {
                    problem, entries, ..
                } => {
                    assert!(!entries.is_empty());
                    *problem
                }
                _ => unreachable!(),
            }
        }
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        problem(plan(&tls("a.test", "ca_dir = \"/d\"\n"), "1.7.24", vec![])),
        Unmovable::UnknownKeys { keys, .. } if keys == ["ca_dir"]
    ));
    assert!(matches!(
        problem(plan(
            &tls("https://a.test", "ca_file = \"/a\"\n"),
            "1.7.24",
            vec![]
        )),
        Unmovable::BadHostKey { .. }
    ));
    assert!(matches!(
        problem(plan(
            &tls("a.test", "key_file = \"/k\"\n"),
            "1.6.20",
            vec![]
        )),
        Unmovable::KeyWithoutCert { .. }
    ));
    // The hosts.toml already there says the opposite.
    let clash = "server = \"https://a.test\"\n[host.\"https://a.test\"]\nskip_verify = false\n";
    let err = plan(
        &tls("a.test", "insecure_skip_verify = true\n"),
        "1.7.24",
        vec![dir(CERTS, "a.test", Some(clash))],
    );
    match problem(err) {
        Unmovable::Existing { path, error } => {
            assert_eq!(path, "/etc/containerd/certs.d/a.test/hosts.toml");
            assert!(matches!(error, HostsTomlError::Conflict { .. }));
        }
        other => panic!("{other:?}"),
    }
    // "*" needs _default, which 1.6.16 does not read.
    let star = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"*\"]\nendpoint = [\"https://m\"]\n";
    assert!(matches!(
        problem(plan(star, "1.6.16", vec![])),
        Unmovable::NoDefaultDir { .. }
    ));
    assert!(plan(star, "1.6.17", vec![]).is_ok());
}

#[test]
fn legacy_is_only_planned_on_1x_without_config_path_when_asked() {
    let legacy = PlanOptions {
        legacy: true,
        ..PlanOptions::default()
    };
    let h = host("reg.test:5443");
    let facts = node(DEFAULT_16, vec![]);
    let edits = plan_trust(&facts, &ver("1.7.24"), &h, &ca(), &legacy).unwrap();
    assert_eq!(edits.len(), 1);
    let (path, kind, _, after, restart) = write_of(&edits[0]);
    assert_eq!(
        (path, kind, restart),
        ("/etc/containerd/config.toml", FileKind::ConfigToml, true)
    );
    let f = cfg(after).facts().clone();
    assert_eq!(
        f.legacy_tls[0].ca_file.as_deref(),
        Some("/etc/containerd/certs.d/reg.test:5443/ca.crt")
    );
    assert_eq!(f.config_path, None);
    let edits = plan_trust(&facts, &ver("1.6.20"), &h, &TrustMode::PlainHttp, &legacy).unwrap();
    let (_, _, _, after, _) = write_of(&edits[0]);
    assert_eq!(
        cfg(after).facts().mirrors[0].endpoints,
        ["http://reg.test:5443"]
    );

    assert!(matches!(
        plan_trust(&facts, &ver("2.1.9"), &h, &ca(), &legacy),
        Err(PlanError::LegacyIgnored { .. })
    ));
    let with_cp = node(&with_config_path(DEFAULT_16, CERTS), vec![]);
    assert!(matches!(
        plan_trust(&with_cp, &ver("1.6.20"), &h, &ca(), &legacy),
        Err(PlanError::LegacyWithConfigPath { .. })
    ));
    // Without the option, 1.x without config_path gets config_path, not legacy.
    let edits = plan_trust(&facts, &ver("1.6.20"), &h, &ca(), &PlanOptions::default()).unwrap();
    assert!(
        edits
            .iter()
            .all(|e| !write_of(e).3.contains("configs.\"reg"))
    );
}

#[test]
fn versions_without_hosts_dirs_or_reading_the_file_are_refused() {
    let facts = node(DEFAULT_16, vec![]);
    assert!(matches!(
        plan_trust(
            &facts,
            &ver("1.4.13"),
            &host("r.test"),
            &ca(),
            &PlanOptions::default()
        ),
        Err(PlanError::HostsDirUnsupported { .. })
    ));
    assert!(matches!(
        plan_trust(
            &node(DEFAULT_21, vec![]),
            &ver("1.7.24"),
            &host("r.test"),
            &ca(),
            &PlanOptions::default()
        ),
        Err(PlanError::ConfigVersionUnreadable { file: 3, .. })
    ));
    assert!(matches!(
        plan_trust(
            &node("", vec![]),
            &ver("2.1.9"),
            &host("r.test"),
            &ca(),
            &PlanOptions::default()
        ),
        Err(PlanError::ConfigVersionUnreadable { file: 1, .. })
    ));
}

#[test]
fn remove_overrides_for_one_host_or_all() {
    let mut text = cfg(DEFAULT_16)
        .with_legacy_tls(&host("a.test:5000"), &LegacyTlsSetting::InsecureSkipVerify)
        .unwrap();
    text = cfg(&text)
        .with_legacy_mirror(&host("b.test"), &["http://b.test".into()])
        .unwrap();
    let mut a_dir = dir(
        CERTS,
        "a.test:5000",
        Some("server = \"https://a.test:5000\"\n"),
    );
    a_dir.other_files = vec!["ca.crt".into()];
    let dirs = vec![
        a_dir,
        dir(CERTS, "a.test_5000_", None),
        dir(CERTS, "b.test", Some("server = \"http://b.test\"\n")),
        dir(CERTS, "_default", Some("server = \"https://d\"\n")),
    ];
    let facts = node(&text, dirs);
    let edits = plan_remove_overrides(&facts, Some(&host("a.test:5000"))).unwrap();
    let paths: Vec<_> = edits.iter().map(Edit::path).collect();
    assert_eq!(
        paths,
        [
            "/etc/containerd/config.toml",
            "/etc/containerd/certs.d/a.test:5000/hosts.toml",
            "/etc/containerd/certs.d/a.test:5000/ca.crt"
        ]
    );
    assert!(edits[0].needs_restart() && !edits[1].needs_restart());
    let (_, _, _, after, _) = write_of(&edits[0]);
    let f = cfg(after).facts().clone();
    assert!(f.legacy_tls.is_empty() && f.mirrors.len() == 1);
    match &edits[1] {
        Edit::RemoveFile { before, kind, .. } => {
            assert_eq!(
                before.as_deref(),
                Some("server = \"https://a.test:5000\"\n")
            );
            assert_eq!(*kind, FileKind::HostsToml);
        }
        other => panic!("{other:?}"),
    }
    let all = plan_remove_overrides(&facts, None).unwrap();
    assert_eq!(all.len(), 5, "{all:?}");
    let (_, _, _, after, _) = write_of(&all[0]);
    assert_eq!(after, DEFAULT_16);
    // Nothing to remove: no edits at all.
    assert!(
        plan_remove_overrides(&node(DEFAULT_21, vec![]), None)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn docker_hub_mirrors_fall_back_to_its_api_host() {
    let text = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"https://mirror.gcr.io\"]\n";
    let edits = plan_trust(
        &node(text, vec![]),
        &ver("2.1.9"),
        &host("reg.test:5443"),
        &ca(),
        &PlanOptions::default(),
    )
    .unwrap();
    assert_eq!(
        edits[1].path(),
        "/etc/containerd/certs.d/docker.io/hosts.toml"
    );
    let (_, _, _, hub, _) = write_of(&edits[1]);
    let hub = HostsToml::parse(hub).unwrap();
    assert_eq!(hub.server(), Some("https://registry-1.docker.io"));
    assert_eq!(hub.hosts()[0].url, "https://mirror.gcr.io");
}
