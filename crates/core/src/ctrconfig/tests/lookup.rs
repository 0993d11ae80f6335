//! containerd's lookup for one host: every combination of the host's own directories,
//! `_default`, several roots, versions before `_default`, the legacy tables, and the
//! directories without a usable hosts.toml.

use super::*;
use crate::ctrconfig::lookup::named_ca_files;
use crate::ctrconfig::{Finding, NotRead, PlaceKind, PlaceState, lookup};

const ROOT: &str = "/etc/containerd/certs.d";
const CP: &str = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n";
const HOST: &str = "reg.test:5443";

fn hosts_toml(ca: &str) -> String {
    format!(
        "server = \"https://reg.test:5443\"\n[host.\"https://reg.test:5443\"]\n  ca = \"{ca}\"\n"
    )
}

fn with_ca(root: &str, name: &str, ca: &str) -> HostsDirFacts {
    dir(root, name, Some(&hosts_toml(ca)))
}

/// `(kind, path, state)` of each place, paths relative to [`ROOT`] where they are in it.
fn order(l: &crate::ctrconfig::Lookup) -> Vec<(&'static str, String, &'static str)> {
    l.places
        .iter()
        .map(|p| {
            (
                p.kind.as_str(),
                p.path.trim_start_matches(ROOT).to_string(),
                p.state.as_str(),
            )
        })
        .collect()
}

fn winner_detail(l: &crate::ctrconfig::Lookup) -> &str {
    l.winner().detail.as_deref().unwrap_or_default()
}

fn at(version: &str, dirs: Vec<HostsDirFacts>) -> crate::ctrconfig::Lookup {
    lookup(&node(CP, dirs), &host(HOST), &ver(version))
}

#[test]
fn no_directory_the_system_pool_wins() {
    let l = at("2.1.9", vec![dir(ROOT, "other.test", Some("x = 1"))]);
    assert_eq!(
        order(&l),
        [
            ("host_port_dir", "/reg.test_5443_/".into(), "absent"),
            ("host_dir", "/reg.test:5443/".into(), "absent"),
            ("default_dir", "/_default/".into(), "absent"),
            ("system_pool", "system trust store".into(), "wins"),
        ]
    );
    assert!(!l.trust.is_configured());
    assert!(l.findings().is_empty());
    assert!(l.notes.is_empty());
}

#[test]
fn the_hosts_own_directory_wins_and_its_cas_go_on_top_of_the_system_pool() {
    let mut d = with_ca(ROOT, HOST, "ca.crt");
    d.other_files = vec!["ca.crt".into()];
    let l = at("1.7.24", vec![d]);
    let w = l.winner();
    assert_eq!(w.kind, PlaceKind::HostDir);
    assert_eq!(w.files, ["hosts.toml", "ca.crt"]);
    assert_eq!(
        w.ca_files[0].path,
        "/etc/containerd/certs.d/reg.test:5443/ca.crt"
    );
    assert_eq!(w.detail, None);
    let system = l.places.last().unwrap();
    assert_eq!(system.state, PlaceState::AlsoUsed);
    assert!(
        system
            .detail
            .as_deref()
            .unwrap()
            .contains("CAs of /etc/containerd/certs.d/reg.test:5443/")
    );
    assert_eq!(
        l.trust.ca_files,
        ["/etc/containerd/certs.d/reg.test:5443/ca.crt"]
    );
}

#[test]
fn host_port_underscore_shadows_host_colon_port_and_that_is_a_warning() {
    let l = at(
        "2.1.9",
        vec![
            with_ca(ROOT, HOST, "/wrong.crt"),
            with_ca(ROOT, "reg.test_5443_", "/right.crt"),
        ],
    );
    assert_eq!(
        order(&l)[..3],
        [
            ("host_port_dir", "/reg.test_5443_/".into(), "wins"),
            ("host_dir", "/reg.test:5443/".into(), "shadowed"),
            ("default_dir", "/_default/".into(), "absent"),
        ]
    );
    assert_eq!(l.trust.ca_files, ["/right.crt"], "nothing is merged");
    assert_eq!(
        l.findings(),
        [Finding::HostsTomlShadowed {
            host: HOST.into(),
            path: "/etc/containerd/certs.d/reg.test:5443/hosts.toml".into(),
            by: "/etc/containerd/certs.d/reg.test_5443_/".into(),
            expected: false,
        }]
    );
}

#[test]
fn default_alone_wins() {
    let l = at("1.6.20", vec![with_ca(ROOT, "_default", "/default.crt")]);
    assert_eq!(l.winner().kind, PlaceKind::DefaultDir);
    assert_eq!(l.trust.ca_files, ["/default.crt"]);
    assert!(l.findings().is_empty());
}

#[test]
fn an_own_directory_shadows_default_quietly_when_it_configures_the_host() {
    let l = at(
        "1.7.24",
        vec![
            with_ca(ROOT, "_default", "/default.crt"),
            with_ca(ROOT, HOST, "/own.crt"),
        ],
    );
    assert_eq!(l.winner().kind, PlaceKind::HostDir);
    assert_eq!(
        l.places[2].state,
        PlaceState::Shadowed {
            by: "/etc/containerd/certs.d/reg.test:5443/".into()
        }
    );
    assert_eq!(l.trust.ca_files, ["/own.crt"]);
    assert!(matches!(
        &l.findings()[..],
        [Finding::HostsTomlShadowed { expected: true, .. }]
    ));
}

#[test]
fn an_empty_own_directory_still_hides_default() {
    let l = at(
        "2.1.9",
        vec![
            with_ca(ROOT, "_default", "/default.crt"),
            dir(ROOT, HOST, None),
        ],
    );
    let w = l.winner();
    assert_eq!(w.kind, PlaceKind::HostDir);
    assert!(
        winner_detail(&l).contains("configures nothing, and still hides"),
        "{w:?}"
    );
    assert!(!l.trust.is_configured());
    assert!(matches!(
        &l.findings()[..],
        [Finding::HostsTomlShadowed {
            expected: false,
            ..
        }]
    ));
}

#[test]
fn without_a_usable_hosts_toml_containerd_takes_the_crt_files() {
    let mut d = dir(ROOT, HOST, None);
    d.other_files = vec!["ca.crt".into(), "client.cert".into(), "client.key".into()];
    let l = at("2.1.9", vec![d.clone()]);
    assert_eq!(
        l.trust.ca_files,
        ["/etc/containerd/certs.d/reg.test:5443/ca.crt"]
    );
    assert!(winner_detail(&l).starts_with("no hosts.toml: containerd uses its *.crt"));
    // 1.7.24 drops a hosts.toml without a [host] table and falls back the same way.
    d.hosts_toml = Some("server = \"https://reg.test:5443\"\nca = \"/top.crt\"\n".into());
    let l = at("1.7.24", vec![d.clone()]);
    assert_eq!(
        l.trust.ca_files,
        ["/etc/containerd/certs.d/reg.test:5443/ca.crt"]
    );
    assert!(winner_detail(&l).contains("drops its hosts.toml"));
    // 2.1 reads the same file.
    assert_eq!(at("2.1.9", vec![d]).trust.ca_files, ["/top.crt"]);
}

#[test]
fn every_candidate_of_the_first_root_comes_before_the_second_root() {
    let text = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/a:/b\"\n";
    let facts = node(
        text,
        vec![
            with_ca("/a", "_default", "/a-default.crt"),
            with_ca("/b", HOST, "/b-own.crt"),
        ],
    );
    let l = lookup(&facts, &host(HOST), &ver("1.7.24"));
    let paths: Vec<_> = l
        .places
        .iter()
        .map(|p| (p.path.as_str(), p.state.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            ("/a/reg.test_5443_/", "absent"),
            ("/a/reg.test:5443/", "absent"),
            ("/a/_default/", "wins"),
            ("/b/reg.test_5443_/", "absent"),
            ("/b/reg.test:5443/", "shadowed"),
            ("/b/_default/", "absent"),
            ("system trust store", "also_used"),
        ]
    );
    assert_eq!(l.trust.ca_files, ["/a-default.crt"]);
    assert!(matches!(
        &l.findings()[..],
        [Finding::HostsTomlShadowed { expected: false, path, .. }] if path == "/b/reg.test:5443/hosts.toml"
    ));
    // 2.1 in Transfer mode reads none of them.
    let text = "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = \"/a:/b\"\n";
    let l = lookup(
        &node(text, facts.hosts_dirs.clone()),
        &host(HOST),
        &ver("2.1.9"),
    );
    assert!(
        l.places[..6]
            .iter()
            .all(|p| p.state == PlaceState::NotRead(NotRead::MultiRootIgnored)),
        "{l:#?}"
    );
    assert_eq!(l.winner().kind, PlaceKind::SystemPool);
    assert!(l.findings().is_empty());
}

#[test]
fn before_1_6_17_default_is_not_read() {
    let l = at("1.6.16", vec![with_ca(ROOT, "_default", "/default.crt")]);
    assert_eq!(
        l.places[2].state,
        PlaceState::NotRead(NotRead::NoDefaultDir)
    );
    assert_eq!(
        l.places[2].files,
        ["hosts.toml"],
        "it is there all the same"
    );
    assert_eq!(l.winner().kind, PlaceKind::SystemPool);
    assert_eq!(
        at("1.6.17", vec![with_ca(ROOT, "_default", "/d.crt")])
            .winner()
            .kind,
        PlaceKind::DefaultDir
    );
}

#[test]
fn a_host_without_a_port_has_one_own_directory() {
    let l = lookup(&node(CP, vec![]), &host("reg.test"), &ver("2.1.9"));
    assert_eq!(
        order(&l),
        [
            ("host_dir", "/reg.test/".into(), "absent"),
            ("default_dir", "/_default/".into(), "absent"),
            ("system_pool", "system trust store".into(), "wins"),
        ]
    );
}

const LEGACY: &str = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"reg.test:5443\".tls]\n  ca_file = \"/legacy.crt\"\n";

#[test]
fn the_legacy_table_wins_on_1x_without_config_path_only() {
    let l = lookup(&node(LEGACY, vec![]), &host(HOST), &ver("1.7.24"));
    assert_eq!(
        order(&l),
        [
            (
                "legacy_table",
                "/etc/containerd/config.toml [registry.configs.\"reg.test:5443\".tls]".into(),
                "wins"
            ),
            ("system_pool", "system trust store".into(), "also_used"),
        ]
    );
    assert_eq!(l.trust.ca_files, ["/legacy.crt"]);
    assert!(
        l.notes[0].contains("config_path is not set"),
        "{:?}",
        l.notes
    );
    // 2.x ignores it.
    let l = lookup(&node(LEGACY, vec![]), &host(HOST), &ver("2.1.9"));
    assert_eq!(
        l.places[0].state,
        PlaceState::NotRead(NotRead::LegacyIgnored)
    );
    assert_eq!(l.winner().kind, PlaceKind::SystemPool);
    // Together with config_path on 1.x, the CRI plugin does not load at all.
    let text = format!(
        "{LEGACY}[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"{ROOT}\"\n"
    );
    let l = lookup(&node(&text, vec![]), &host(HOST), &ver("1.6.20"));
    assert_eq!(
        l.places[3].state,
        PlaceState::NotRead(NotRead::LegacyConflict)
    );
    assert!(
        l.notes[0].contains("CRI plugin does not load"),
        "{:?}",
        l.notes
    );
    // Another host's table is not this host's place.
    let l = lookup(&node(CP, vec![]), &host("other.test"), &ver("1.7.24"));
    assert!(!l.places.iter().any(|p| p.kind == PlaceKind::LegacyTable));
}

#[test]
fn the_named_ca_files_are_listed_for_the_adapter_and_their_existence_shown() {
    let mut facts = node(
        LEGACY,
        vec![
            with_ca(ROOT, HOST, "ca.crt"),
            with_ca(ROOT, "_default", "/etc/ssl/private-ca.pem"),
            dir(ROOT, "broken", Some("[[[")),
        ],
    );
    assert_eq!(
        named_ca_files(&facts),
        [
            "/etc/containerd/certs.d/reg.test:5443/ca.crt",
            "/etc/ssl/private-ca.pem",
            "/legacy.crt"
        ]
    );
    facts
        .named_files
        .insert("/etc/containerd/certs.d/reg.test:5443/ca.crt".into(), false);
    let text = format!(
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"{ROOT}\"\n"
    );
    facts.config = cfg(&text);
    let l = lookup(&facts, &host(HOST), &ver("2.1.9"));
    assert_eq!(l.winner().ca_files[0].exists, Some(false));
    assert_eq!(l.places[2].ca_files[0].exists, None, "not looked at");
}
