//! Property tests: edits touch only their own bytes, and no input panics.

use proptest::prelude::*;

use super::*;
use crate::ctrconfig::config_toml::LegacyTlsSetting;
use crate::ctrconfig::{ConfigToml, HostsToml};

/// A bare or quoted key made of characters TOML accepts in either form.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_-]{0,8}".prop_map(|s| s),
        "[a-z][a-z0-9.:]{0,10}".prop_map(|s| format!("\"{s}\"")),
    ]
}

fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i32>().prop_map(|i| i.to_string()),
        any::<bool>().prop_map(|b| b.to_string()),
        "[ -~&&[^\"\\\\]]{0,12}".prop_map(|s| format!("\"{s}\"")),
        "[a-z ]{0,8}".prop_map(|s| format!("'{s}'")),
        prop::collection::vec(0u8..100, 0..4).prop_map(|v| format!("{v:?}")),
    ]
}

/// A plugin table path prefix of any schema version, quoted the ways people write it.
fn plugin() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "plugins.\"io.containerd.grpc.v1.cri\"",
        "plugins.'io.containerd.grpc.v1.cri'",
        "plugins.\"io.containerd.cri.v1.images\"",
        "plugins.'io.containerd.cri.v1.images'",
        "plugins.cri",
        "plugins.\"io.containerd.gc.v1.scheduler\"",
    ])
}

fn key_value() -> impl Strategy<Value = String> {
    (
        key(),
        scalar(),
        "[ \t]{0,4}",
        prop::option::of("# [a-z ]{0,10}"),
    )
        .prop_map(|(k, v, ind, c)| {
            format!(
                "{ind}{k} = {v}{}\n",
                c.map(|c| format!(" {c}")).unwrap_or_default()
            )
        })
}

/// One chunk of an unrelated document: a table (anywhere, including next to the
/// registry tables), a comment, blank lines, or dotted keys, with varied indentation.
fn chunk() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            prop::collection::vec(key(), 1..3),
            prop::collection::vec(key_value(), 0..3)
        )
            .prop_map(|(path, kvs)| format!(
                "[unrelated.{}]\n{}",
                path.join("."),
                kvs.concat()
            )),
        (plugin(), key(), prop::collection::vec(key_value(), 0..3))
            .prop_map(|(p, k, kvs)| format!("  [{p}.{k}]\n{}", kvs.concat())),
        (
            plugin(),
            prop::sample::select(vec!["auths", "headers", "configs", "mirrors"])
        )
            .prop_map(|(p, k)| format!("\n    [{p}.registry.{k}]\n")),
        (plugin(), scalar())
            .prop_map(|(p, v)| format!("[{p}.registry]\n  config_path = \"\"\n  other = {v}\n")),
        (plugin(), scalar()).prop_map(|(p, v)| format!("{p}.registry.headers.x = {v}\n")),
        (plugin(), scalar()).prop_map(|(p, v)| format!("[{p}]\nregistry.headers.x = {v}\n")),
        "# [ -~]{0,20}\n".prop_map(|s| s),
        "\n{1,2}".prop_map(|s| s),
    ]
}

fn document() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec![
            "",
            "version = 2\n",
            "version = 3\n",
            "# header\nversion = 2\n",
        ]),
        prop::collection::vec(chunk(), 0..8),
        0..3usize,
    )
        .prop_map(|(head, chunks, base)| {
            let mut s = match base {
                1 if head.contains("version = 2") => DEFAULT_16.to_string(),
                2 if head.contains("version = 3") => DEFAULT_21.to_string(),
                _ => head.to_string(),
            };
            s.push_str(&chunks.concat());
            s
        })
        .prop_filter("must be a valid config", |s| ConfigToml::parse(s).is_ok())
}

fn registry_host() -> impl Strategy<Value = crate::registry::host::RegistryHost> {
    (
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9]{0,5}){0,2}",
        prop::option::of(1u16..),
    )
        .prop_filter_map("valid host", |(name, port)| {
            let s = match port {
                Some(p) => format!("{name}:{p}"),
                None => name,
            };
            s.parse().ok()
        })
}

proptest! {

    #[test]
    fn add_then_remove_returns_the_original_bytes(doc in document(), h in registry_host(), skip in any::<bool>(), mirror in any::<bool>()) {
        let c = ConfigToml::parse(&doc).expect("generated valid TOML");
        prop_assert_eq!(c.to_string(), doc.clone());
        // Only documents without an entry for this host: removal would take it too.
        prop_assume!(c.facts().legacy_tls.is_empty() && c.facts().mirrors.is_empty());
        let added = if mirror {
            c.with_legacy_mirror(&h, &[format!("http://{h}")]).expect("add mirror")
        } else if skip {
            c.with_legacy_tls(&h, &LegacyTlsSetting::InsecureSkipVerify).expect("add tls")
        } else {
            c.with_legacy_tls(&h, &LegacyTlsSetting::CaFile("/etc/x \"y\".pem".into())).expect("add tls")
        };
        let again = ConfigToml::parse(&added).expect("edit keeps the file valid");
        prop_assert!(again.facts().legacy_tls.len() + again.facts().mirrors.len() == 1);
        let (back, removed) = again.without_overrides(Some(&h)).expect("remove");
        prop_assert_eq!(removed.len(), 1);
        prop_assert_eq!(back, doc);
    }

    #[test]
    fn setting_config_path_keeps_everything_else(doc in document(), path in "/[a-z/._-]{0,20}") {
        let c = ConfigToml::parse(&doc).expect("valid");
        let after = c.with_config_path(&path).expect("set");
        let again = ConfigToml::parse(&after).expect("still valid");
        let got = again.facts().config_path.as_ref().map(|p| p.raw.clone());
        prop_assert_eq!(got.as_deref(), Some(path.as_str()).filter(|p| !p.is_empty()));
        let (removed, _added) = line_diff(&doc, &after);
        prop_assert!(removed.len() <= 1, "{:?}", removed);
    }

    #[test]
    fn parsers_never_panic(text in ".{0,200}") {
        let _ = ConfigToml::parse(&text);
        if let Ok(h) = HostsToml::parse(&text) {
            let _ = h.problems(&ver("1.6.20"));
        }
        let _ = crate::ctrconfig::ContainerdVersion::parse(&text);
    }

    #[test]
    fn parsers_never_panic_on_toml_like_text(text in "[a-z\\[\\]\\.\"'= \n0-9{},#:/_-]{0,200}") {
        if let Ok(c) = ConfigToml::parse(&text) {
            prop_assert_eq!(c.to_string(), text.clone());
            let _ = c.with_config_path("/c");
            let _ = c.without_overrides(None);
        }
        if let Ok(h) = HostsToml::parse(&text) {
            prop_assert_eq!(h.to_string(), text.clone());
            let _ = h.problems(&ver("1.6.20"));
            let _ = h.with_trust(&host("r.test:1"), &crate::ctrconfig::TrustMode::SkipVerify);
        }
    }
}
