//! containerd's config.toml and hosts.toml are read from the node as they are: any
//! text must parse or fail cleanly, an untouched document must print back exactly, and
//! an edit must leave a document that parses again.
#![no_main]

use ctrdiag_core::ctrconfig::{ConfigToml, HostsToml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = ConfigToml::parse(text) {
        assert_eq!(config.to_string(), text);
        if let Ok(edited) = config.with_config_path("/etc/containerd/certs.d") {
            ConfigToml::parse(&edited).expect("an edited config parses");
        }
        if let Ok((after, _)) = config.without_overrides(None) {
            ConfigToml::parse(&after).expect("a config without overrides parses");
        }
    }
    let _ = HostsToml::parse(text);
});
