use super::*;
use crate::ctrconfig::config_toml::LegacyTlsSetting;
use crate::ctrconfig::{ConfigError, ConfigVersion, InsecureMode};

#[test]
fn default_configs_round_trip_byte_for_byte() {
    for text in [DEFAULT_16, DEFAULT_21] {
        assert_eq!(cfg(text).to_string(), text);
    }
}

#[test]
fn default_configs_have_no_config_path_and_no_legacy_entries() {
    let c16 = cfg(DEFAULT_16);
    let f = c16.facts();
    assert_eq!(f.version, ConfigVersion::V2);
    assert!(f.version_declared);
    assert_eq!(f.config_path, None, "empty config_path means unset");
    assert!(!f.has_legacy_registry());
    assert!(f.imports.is_empty());
    let c21 = cfg(DEFAULT_21);
    assert_eq!(c21.version(), ConfigVersion::V3);
    assert_eq!(c21.facts().config_path, None);
}

#[test]
fn reads_legacy_entries_written_as_nested_tables() {
    let text = r#"version = 2
imports = ["/etc/containerd/conf.d/*.toml"]
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/certs.d:/etc/docker/certs.d"
  [plugins."io.containerd.grpc.v1.cri".registry.configs."reg.test:5443".tls]
    ca_file = "/etc/ssl/reg.pem"
    insecure_skip_verify = false
  [plugins."io.containerd.grpc.v1.cri".registry.configs."reg.test:5443".auth]
    username = "bob"
    password = "hunter2"
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = ["https://mirror.local", "https://registry-1.docker.io"]
  [plugins."io.containerd.grpc.v1.cri".registry.auths."https://gcr.io"]
    username = "x"
"#;
    let c = cfg(text);
    let f = c.facts();
    assert_eq!(f.imports, ["/etc/containerd/conf.d/*.toml"]);
    let cp = f.config_path.as_ref().expect("config_path");
    assert!(cp.is_multi_root());
    assert_eq!(
        cp.roots(),
        ["/etc/containerd/certs.d", "/etc/docker/certs.d"]
    );
    assert_eq!(cp.position.map(|p| p.line), Some(4));
    assert_eq!(f.legacy_tls.len(), 1);
    let t = &f.legacy_tls[0];
    assert_eq!(t.host, "reg.test:5443");
    assert_eq!(t.ca_file.as_deref(), Some("/etc/ssl/reg.pem"));
    assert_eq!(t.insecure_skip_verify, Some(false));
    assert_eq!(t.position.map(|p| p.line), Some(5));
    assert_eq!(f.legacy_auth[0].fields, ["username", "password"]);
    assert_eq!(f.mirrors[0].host, "docker.io");
    assert_eq!(f.mirrors[0].endpoints.len(), 2);
    assert_eq!(f.auths, ["https://gcr.io"]);
    assert!(f.has_legacy_registry());
}

#[test]
fn debug_output_never_shows_credentials() {
    let text = r#"version = 2
[plugins."io.containerd.grpc.v1.cri".registry.configs."reg.test".auth]
password = "hunter2"
auth = "c2VjcmV0"
"#;
    let c = cfg(text);
    let shown = format!("{c:?} {:?}", c.facts().legacy_auth);
    assert!(
        !shown.contains("hunter2") && !shown.contains("c2VjcmV0"),
        "{shown}"
    );
    assert!(shown.contains("<redacted>"));
}

#[test]
fn reads_dotted_keys_and_inline_tables() {
    let dotted = r#"version = 3
plugins."io.containerd.cri.v1.images".registry.config_path = "/etc/containerd/certs.d"
plugins."io.containerd.cri.v1.images".registry.configs."a.test".tls.insecure_skip_verify = true
"#;
    let f = cfg(dotted).facts().clone();
    assert_eq!(
        f.config_path.map(|c| c.raw).as_deref(),
        Some("/etc/containerd/certs.d")
    );
    assert_eq!(f.legacy_tls[0].insecure_skip_verify, Some(true));

    let inline = r#"version = 2
[plugins."io.containerd.grpc.v1.cri"]
registry = { config_path = "/certs", mirrors = { "b.test" = { endpoint = ["http://b.test"] } } }
"#;
    let f = cfg(inline).facts().clone();
    assert_eq!(f.config_path.map(|c| c.raw).as_deref(), Some("/certs"));
    assert_eq!(f.mirrors[0].endpoints, ["http://b.test"]);
}

#[test]
fn missing_version_is_read_as_version_1_layout() {
    let text = "[plugins.cri.registry.mirrors.\"docker.io\"]\nendpoint = [\"https://m\"]\n";
    let c = cfg(text);
    assert_eq!(c.version(), ConfigVersion::V1);
    assert!(!c.facts().version_declared);
    assert_eq!(c.facts().mirrors[0].host, "docker.io");
}

#[test]
fn refuses_unknown_versions_and_wrong_types_with_a_line() {
    match ConfigToml::parse("# x\nversion = 4\n") {
        Err(ConfigError::UnknownVersion { found, position }) => {
            assert_eq!(found, "4");
            assert_eq!(position.map(|p| p.line), Some(2));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ConfigToml::parse("version = \"2\"\n"),
        Err(ConfigError::WrongType {
            expected: "an integer",
            ..
        })
    ));
    let e = ConfigToml::parse("version = 2\n[plugins]\n\"io.containerd.grpc.v1.cri\" = 5\n")
        .unwrap_err();
    assert!(
        matches!(
            &e,
            ConfigError::WrongType {
                expected: "a table",
                ..
            }
        ),
        "{e:?}"
    );
    let e = ConfigToml::parse(
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = 1\n",
    )
    .unwrap_err();
    match &e {
        ConfigError::WrongType {
            key,
            expected,
            position,
            ..
        } => {
            assert!(key.ends_with("registry.config_path"), "{key}");
            assert_eq!(*expected, "a string");
            assert_eq!(position.map(|p| p.line), Some(3));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("line 3"), "{e}");
}

#[test]
fn syntax_errors_carry_line_and_column() {
    let e = ConfigToml::parse("version = 2\n[plugins\nx = 1\n").unwrap_err();
    match &e {
        ConfigError::Syntax(s) => assert_eq!(s.position.map(|p| p.line), Some(2)),
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("line 2"), "{e}");
}

#[test]
fn setting_config_path_changes_only_its_line() {
    for text in [DEFAULT_16, DEFAULT_21] {
        let after = cfg(text)
            .with_config_path("/etc/containerd/certs.d")
            .unwrap();
        let (removed, added) = line_diff(text, &after);
        assert_eq!(removed.len(), 1, "{removed:?}");
        assert!(removed[0].trim_start().starts_with("config_path = "));
        assert_eq!(added.len(), 1, "{added:?}");
        // Indentation and quoting style of the line around the value are kept.
        assert!(added[0].starts_with("      config_path = "), "{added:?}");
        assert!(
            added[0].ends_with("\"/etc/containerd/certs.d\""),
            "{added:?}"
        );
        let re = cfg(&after);
        assert_eq!(
            re.facts().config_path.as_ref().map(|c| c.raw.as_str()),
            Some("/etc/containerd/certs.d")
        );
    }
}

#[test]
fn setting_config_path_creates_only_the_leaf_header() {
    let text = "version = 2\n\n# our runtime\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n  snapshotter = \"overlayfs\"\n";
    let after = cfg(text).with_config_path("/certs").unwrap();
    assert!(after.starts_with(text), "{after}");
    let added = &after[text.len()..];
    assert_eq!(
        added,
        "\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/certs\"\n"
    );
    assert_eq!(
        cfg(&after).facts().config_path.as_ref().unwrap().raw,
        "/certs"
    );

    // A file with no plugins at all, version 3.
    let after = cfg("version = 3\n").with_config_path("/certs").unwrap();
    assert_eq!(
        after,
        "version = 3\n\n[plugins.\"io.containerd.cri.v1.images\".registry]\nconfig_path = \"/certs\"\n"
    );
}

#[test]
fn setting_config_path_into_dotted_and_inline_tables() {
    let dotted = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nregistry.mirrors = {}\n";
    let after = cfg(dotted).with_config_path("/c").unwrap();
    assert_eq!(cfg(&after).facts().config_path.as_ref().unwrap().raw, "/c");
    let inline =
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nregistry = { config_path = \"\" }\n";
    let after = cfg(inline).with_config_path("/c").unwrap();
    assert_eq!(
        after,
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\nregistry = { config_path = \"/c\" }\n"
    );
}

#[test]
fn config_path_with_a_wrong_typed_parent_is_an_error() {
    let text = "version = 2\n[plugins]\n\"io.containerd.grpc.v1.cri\" = { registry = [1] }\n";
    assert!(ConfigToml::parse(text).is_err());
}

#[test]
fn values_needing_escapes_are_written_as_valid_toml() {
    let c = cfg(DEFAULT_16);
    let odd = "/etc/certs \"quoted\"\\dir";
    let after = c.with_config_path(odd).unwrap();
    assert_eq!(cfg(&after).facts().config_path.as_ref().unwrap().raw, odd);
}

#[test]
fn legacy_tls_add_then_remove_restores_the_original() {
    let h = host("reg.test:5443");
    for text in [
        DEFAULT_16,
        DEFAULT_21,
        "version = 2\n",
        "",
        "# only a comment\n",
    ] {
        for setting in [
            LegacyTlsSetting::CaFile("/etc/ssl/ca.pem".into()),
            LegacyTlsSetting::InsecureSkipVerify,
        ] {
            let added = cfg(text).with_legacy_tls(&h, &setting).unwrap();
            let parsed = cfg(&added);
            assert_eq!(parsed.facts().legacy_tls.len(), 1, "{added}");
            let (removed_text, removed) = parsed.without_overrides(Some(&h)).unwrap();
            assert_eq!(removed.len(), 1);
            assert_eq!(
                removed_text, text,
                "add+remove changed bytes for {setting:?}"
            );
        }
    }
}

#[test]
fn legacy_tls_lands_under_the_existing_configs_header() {
    let added = cfg(DEFAULT_16)
        .with_legacy_tls(
            &host("reg.test:5443"),
            &LegacyTlsSetting::InsecureSkipVerify,
        )
        .unwrap();
    let (removed, new_lines) = line_diff(DEFAULT_16, &added);
    assert!(removed.is_empty(), "{removed:?}");
    assert_eq!(
        new_lines,
        [
            "[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"reg.test:5443\".tls]",
            "insecure_skip_verify = true",
            "",
        ]
    );
    let at = added.find("registry.configs.\"reg").unwrap();
    assert!(added[..at].contains("registry.configs]"));
    assert!(added[at..].contains("registry.headers]"));
}

#[test]
fn legacy_mirror_add_then_remove_restores_the_original() {
    let h = host("plain.test:5000");
    let added = cfg(DEFAULT_16)
        .with_legacy_mirror(&h, &["http://plain.test:5000".to_string()])
        .unwrap();
    let parsed = cfg(&added);
    assert_eq!(
        parsed.facts().mirrors[0].endpoints,
        ["http://plain.test:5000"]
    );
    assert_eq!(parsed.without_overrides(Some(&h)).unwrap().0, DEFAULT_16);
}

#[test]
fn removal_keeps_auth_other_hosts_and_explicit_headers() {
    let text = r#"version = 2
[plugins."io.containerd.grpc.v1.cri".registry.configs]
[plugins."io.containerd.grpc.v1.cri".registry.configs."a.test".tls]
  insecure_skip_verify = true
[plugins."io.containerd.grpc.v1.cri".registry.configs."a.test".auth]
  username = "u"
[plugins."io.containerd.grpc.v1.cri".registry.configs."b.test".tls]
  ca_file = "/b.pem"
"#;
    let (after, removed) = cfg(text).without_overrides(Some(&host("A.test"))).unwrap();
    assert_eq!(removed.len(), 1);
    let f = cfg(&after).facts().clone();
    assert_eq!(f.legacy_tls.len(), 1);
    assert_eq!(f.legacy_tls[0].host, "b.test");
    assert_eq!(f.legacy_auth.len(), 1, "auth stays");
    let (after_all, removed_all) = cfg(text).without_overrides(None).unwrap();
    assert_eq!(removed_all.len(), 2);
    assert_eq!(
        after_all,
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs]\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"a.test\".auth]\n  username = \"u\"\n"
    );
}

#[test]
fn removal_of_dotted_entries_prunes_their_empty_parents() {
    let text = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"p\"\n  registry.configs.\"a.test\".tls.insecure_skip_verify = true\n";
    let (after, removed) = cfg(text).without_overrides(None).unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(
        after,
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"p\"\n"
    );
}

#[test]
fn removal_with_nothing_to_remove_is_a_no_op() {
    let (after, removed) = cfg(DEFAULT_21).without_overrides(None).unwrap();
    assert!(removed.is_empty());
    assert_eq!(after, DEFAULT_21);
}

/// A 2.x default config (single-quoted plugin names) with a snippet pasted from the
/// documentation (double-quoted): toml_edit alone would re-quote the pasted headers.
const MIXED_QUOTES: &str = "version = 3\n[plugins]\n  [plugins.'io.containerd.cri.v1.images']\n    snapshotter = 'overlayfs'\n\n    [plugins.'io.containerd.cri.v1.images'.registry]\n      config_path = ''\n\n[plugins.\"io.containerd.cri.v1.images\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"https://mirror.local\"]\n\n[plugins.\"io.containerd.cri.v1.images\".registry.configs.\"r.test\".auth]\n  username = \"u\"\n";

#[test]
fn edits_keep_the_spelling_of_headers_they_do_not_touch() {
    let c = cfg(MIXED_QUOTES);
    assert_eq!(c.to_string(), MIXED_QUOTES);
    let after = c.with_config_path("/certs").unwrap();
    let (removed, added) = line_diff(MIXED_QUOTES, &after);
    assert_eq!(removed, ["      config_path = ''"]);
    assert_eq!(added, ["      config_path = \"/certs\""]);
    let (cleaned, gone) = c.without_overrides(None).unwrap();
    assert_eq!(gone.len(), 1);
    let (removed, added) = line_diff(MIXED_QUOTES, &cleaned);
    assert!(added.is_empty(), "{added:?}");
    assert_eq!(
        removed,
        [
            "[plugins.\"io.containerd.cri.v1.images\".registry.mirrors.\"docker.io\"]",
            "  endpoint = [\"https://mirror.local\"]",
            "",
        ]
    );
    assert!(
        cleaned
            .contains("[plugins.\"io.containerd.cri.v1.images\".registry.configs.\"r.test\".auth]")
    );
}

#[test]
fn a_legacy_ca_file_takes_insecure_skip_verify_out() {
    let h = host("reg.test:5443");
    let insecure = cfg(DEFAULT_16)
        .with_legacy_tls(&h, &LegacyTlsSetting::InsecureSkipVerify)
        .unwrap();
    let fixed = cfg(&insecure)
        .with_legacy_tls(&h, &LegacyTlsSetting::CaFile("/etc/ssl/ca.pem".into()))
        .unwrap();
    let (removed, added) = line_diff(&insecure, &fixed);
    assert_eq!(removed, ["insecure_skip_verify = true"]);
    assert_eq!(added, ["ca_file = \"/etc/ssl/ca.pem\""]);
    assert_eq!(cfg(&fixed).facts().legacy_tls[0].insecure_skip_verify, None);
}

#[test]
fn removing_legacy_skip_verify_prunes_only_what_it_empties() {
    let h = host("reg.test:5443");
    let added = cfg(DEFAULT_16)
        .with_legacy_tls(&h, &LegacyTlsSetting::InsecureSkipVerify)
        .unwrap();
    let (after, removed) = cfg(&added)
        .without_legacy_insecure(&h, &InsecureMode::SkipVerify)
        .unwrap();
    assert_eq!(after, DEFAULT_16, "the emptied tls table goes too");
    assert_eq!(
        removed,
        [
            "plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"reg.test:5443\".tls.insecure_skip_verify"
        ]
    );
    // Edited by hand since: a CA and credentials stay, and so does a `false`.
    let text = r#"version = 2
[plugins."io.containerd.grpc.v1.cri".registry.configs."reg.test:5443".tls]
  ca_file = "/ca.pem"
  insecure_skip_verify = true
[plugins."io.containerd.grpc.v1.cri".registry.configs."reg.test:5443".auth]
  username = "u"
[plugins."io.containerd.grpc.v1.cri".registry.configs."other.test".tls]
  insecure_skip_verify = true
"#;
    let (after, removed) = cfg(text)
        .without_legacy_insecure(&h, &InsecureMode::SkipVerify)
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(
        after,
        text.replacen("  insecure_skip_verify = true\n", "", 1)
    );
    let safe = text.replacen(
        "insecure_skip_verify = true",
        "insecure_skip_verify = false",
        1,
    );
    let (after, removed) = cfg(&safe)
        .without_legacy_insecure(&h, &InsecureMode::SkipVerify)
        .unwrap();
    assert!(removed.is_empty());
    assert_eq!(after, safe);
}

#[test]
fn removing_a_legacy_plain_http_endpoint_keeps_the_others() {
    let h = host("plain.test:5000");
    let only = cfg(DEFAULT_16)
        .with_legacy_mirror(&h, &["http://plain.test:5000".to_string()])
        .unwrap();
    let (after, removed) = cfg(&only)
        .without_legacy_insecure(&h, &InsecureMode::PlainHttp)
        .unwrap();
    assert_eq!(after, DEFAULT_16, "the emptied mirror entry goes too");
    assert_eq!(
        removed,
        ["plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"plain.test:5000\""]
    );
    let two = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"plain.test:5000\"]\n  endpoint = [\"http://plain.test:5000\", \"https://mirror.local\"] # edited\n";
    let (after, removed) = cfg(two)
        .without_legacy_insecure(&h, &InsecureMode::PlainHttp)
        .unwrap();
    assert_eq!(
        after,
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"plain.test:5000\"]\n  endpoint = [\"https://mirror.local\"] # edited\n"
    );
    assert_eq!(
        removed,
        ["plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"plain.test:5000\".endpoint"]
    );
    let (after, removed) = cfg(&after)
        .without_legacy_insecure(&h, &InsecureMode::PlainHttp)
        .unwrap();
    assert!(removed.is_empty());
    assert!(after.contains("mirror.local"));
}

#[test]
fn unknown_legacy_keys_are_recorded() {
    let text = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"a.test\".tls]\n  ca_file = \"/a\"\n  ca_dir = \"/d\"\n[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"a.test\"]\n  endpoint = []\n  rewrite = {}\n";
    let f = cfg(text).facts().clone();
    assert_eq!(f.legacy_tls[0].other_keys, ["ca_dir"]);
    assert_eq!(f.mirrors[0].other_keys, ["rewrite"]);
}
