use super::*;
use crate::cause::CauseCode;
use crate::ctrconfig::{Finding, findings};

const TLS_V2: &str = r#"version = 2
[plugins."io.containerd.grpc.v1.cri".registry.configs."reg.test:5443".tls]
  insecure_skip_verify = true
"#;

#[test]
fn legacy_tls_is_ignored_on_2x_whatever_the_file_version() {
    let f = findings(&node(TLS_V2, vec![]), &ver("2.1.9"));
    assert!(
        f.contains(&Finding::ConfigIgnored {
            host: "reg.test:5443".into()
        }),
        "{f:?}"
    );
    assert_eq!(f[0].cause(), CauseCode::ConfigIgnored);
    let f = findings(&node(TLS_V2, vec![]), &ver("1.7.24"));
    assert!(!f.iter().any(|x| matches!(x, Finding::ConfigIgnored { .. })));
    assert!(f.contains(&Finding::DeprecatedLegacyRegistry {
        sections: vec!["configs"]
    }));
}

#[test]
fn legacy_tls_or_mirrors_next_to_config_path_conflict() {
    let text =
        format!("{TLS_V2}[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/c\"\n");
    // 1.x: tls + config_path kills the CRI plugin.
    let f = findings(&node(&text, vec![]), &ver("1.6.20"));
    assert!(
        matches!(&f[..], [Finding::ConfigConflict { entries, .. }, ..] if entries.len() == 1),
        "{f:?}"
    );
    assert_eq!(f[0].cause(), CauseCode::ConfigConflict);
    // 2.x: tls is merely ignored, no conflict.
    let f = findings(&node(&text, vec![]), &ver("2.1.9"));
    assert!(
        !f.iter()
            .any(|x| matches!(x, Finding::ConfigConflict { .. })),
        "{f:?}"
    );
    // mirrors + config_path conflict everywhere.
    let m = "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = \"/c\"\n[plugins.'io.containerd.cri.v1.images'.registry.mirrors.\"docker.io\"]\nendpoint = [\"https://m\"]\n";
    let f = findings(&node(m, vec![]), &ver("2.1.9"));
    assert!(
        f.iter()
            .any(|x| matches!(x, Finding::ConfigConflict { .. })),
        "{f:?}"
    );
}

#[test]
fn multi_root_is_reported_on_21_in_transfer_mode_only() {
    let text =
        "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\nconfig_path = \"/a:/b\"\n";
    let f = findings(&node(text, vec![]), &ver("2.1.9"));
    assert_eq!(
        f,
        [Finding::MultiRootIgnored {
            config_path: "/a:/b".into()
        }]
    );
    assert!(findings(&node(text, vec![]), &ver("2.0.4")).is_empty());
    let v2 =
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/a:/b\"\n";
    assert!(findings(&node(v2, vec![]), &ver("1.7.24")).is_empty());
    // Legacy auth switches CRI to local pull mode, where multi-root works.
    let local = format!(
        "{text}[plugins.'io.containerd.cri.v1.images'.registry.configs.\"r\".auth]\nusername = \"u\"\n"
    );
    let f = findings(&node(&local, vec![]), &ver("2.1.9"));
    assert!(
        !f.iter()
            .any(|x| matches!(x, Finding::MultiRootIgnored { .. })),
        "{f:?}"
    );
}

#[test]
fn invalid_hosts_toml_files_are_named() {
    let dirs = vec![
        dir(
            "/etc/containerd/certs.d",
            "reg.test:5443",
            Some("server = \"https://reg.test:5443\"\n"),
        ),
        dir("/etc/containerd/certs.d", "bad.test", Some("[host.\"x\"\n")),
        dir("/etc/containerd/certs.d", "ok.test", Some(&ok_hosts_toml())),
        dir("/etc/containerd/certs.d", "certs-only", None),
    ];
    let text = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n";
    let f = findings(&node(text, dirs.clone()), &ver("1.6.20"));
    let paths: Vec<_> = f
        .iter()
        .filter_map(|x| match x {
            Finding::HostsTomlInvalid { path, problems } => {
                assert!(!problems.is_empty());
                Some(path.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        paths,
        [
            "/etc/containerd/certs.d/reg.test:5443/hosts.toml",
            "/etc/containerd/certs.d/bad.test/hosts.toml"
        ]
    );
    // On 2.x only the syntax error remains.
    let f = findings(&node(text, dirs), &ver("2.1.9"));
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].cause(), CauseCode::HostsTomlInvalid);
}

fn ok_hosts_toml() -> String {
    crate::ctrconfig::HostsToml::recommended(
        &host("ok.test"),
        &crate::ctrconfig::TrustMode::SkipVerify,
    )
}

#[test]
fn version_1_files_and_unreadable_versions_are_reported() {
    let f = findings(&node("[plugins.cri]\n", vec![]), &ver("1.6.20"));
    assert_eq!(f, [Finding::ConfigVersion1]);
    let f = findings(&node("[plugins.cri]\n", vec![]), &ver("2.1.9"));
    assert_eq!(
        f,
        [
            Finding::ConfigVersionUnreadable { file: 1 },
            Finding::ConfigVersion1
        ]
    );
    let f = findings(&node(DEFAULT_21, vec![]), &ver("1.7.24"));
    assert_eq!(f, [Finding::ConfigVersionUnreadable { file: 3 }]);
    assert_eq!(f[0].cause(), CauseCode::ConfigUnreadable);
    assert_eq!(Finding::ConfigVersion1.cause(), CauseCode::ConfigDeprecated);
    assert!(findings(&node(DEFAULT_16, vec![]), &ver("1.6.20")).is_empty());
    assert!(findings(&node(DEFAULT_16, vec![]), &ver("2.1.9")).is_empty());
}
