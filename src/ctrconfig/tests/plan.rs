use super::*;
use crate::ctrconfig::plan::needs_restart;
use crate::ctrconfig::{
    Edit, FileKind, HostsToml, PlanError, PlanOptions, TrustMode, plan_remove_overrides, plan_trust,
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
fn legacy_entries_block_adding_config_path() {
    let with_tls = cfg(DEFAULT_16)
        .with_legacy_tls(
            &host("old.test"),
            &crate::ctrconfig::config_toml::LegacyTlsSetting::InsecureSkipVerify,
        )
        .unwrap();
    let facts = node(&with_tls, vec![]);
    let err = plan_trust(
        &facts,
        &ver("1.6.20"),
        &host("reg.test:5443"),
        &ca(),
        &PlanOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(&err, PlanError::LegacyBlocksConfigPath { entries, .. } if entries.len() == 1),
        "{err:?}"
    );
    assert!(err.to_string().contains("remove them first"));
    // On 2.x the ignored tls entry does not block config_path.
    assert!(
        plan_trust(
            &facts,
            &ver("2.1.9"),
            &host("reg.test:5443"),
            &ca(),
            &PlanOptions::default()
        )
        .is_ok()
    );
    // Mirrors block it everywhere.
    let with_mirror = cfg(DEFAULT_16)
        .with_legacy_mirror(&host("m.test"), &["http://m.test".into()])
        .unwrap();
    let facts = node(&with_mirror, vec![]);
    assert!(matches!(
        plan_trust(
            &facts,
            &ver("2.1.9"),
            &host("reg.test:5443"),
            &ca(),
            &PlanOptions::default()
        ),
        Err(PlanError::LegacyBlocksConfigPath { .. })
    ));
    // The remove-overrides plan, applied, unblocks it.
    let removal = plan_remove_overrides(&facts, None).unwrap();
    let (_, _, _, cleaned, _) = write_of(&removal[0]);
    assert_eq!(cleaned, DEFAULT_16);
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
        .with_legacy_tls(
            &host("a.test:5000"),
            &crate::ctrconfig::config_toml::LegacyTlsSetting::InsecureSkipVerify,
        )
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
