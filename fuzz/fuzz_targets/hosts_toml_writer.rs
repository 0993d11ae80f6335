//! ctrdiag writes hosts.toml into directories operators edit too: for any existing
//! file that parses, each trust edit must give a file that parses again and names the
//! registry's server, and the recommended file for any valid host must parse.
#![no_main]

use ctrdiag_core::ctrconfig::{HostsToml, Removal, TrustMode};
use ctrdiag_core::registry::host::RegistryHost;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line is a host name, the rest an existing hosts.toml.
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let host: RegistryHost = first
        .parse()
        .unwrap_or_else(|_| "reg.test:5000".parse().unwrap());
    let modes = [
        TrustMode::Ca("/etc/containerd/certs.d/reg/ctrdiag-ca.crt".into()),
        TrustMode::SkipVerify,
        TrustMode::PlainHttp,
    ];
    for mode in &modes {
        let fresh = HostsToml::recommended(&host, mode);
        let parsed = HostsToml::parse(&fresh).expect("the recommended file parses");
        assert!(
            parsed.server().is_some_and(|s| s.contains(host.name())),
            "{fresh}"
        );
    }
    let Ok(existing) = HostsToml::parse(rest) else {
        return;
    };
    for mode in &modes {
        if let Ok(after) = existing.with_trust(&host, mode) {
            let parsed = HostsToml::parse(&after).expect("an edited hosts.toml parses");
            assert!(
                parsed.server().is_some_and(|s| s.contains(host.name())),
                "{after}"
            );
        }
    }
    if let Ok(Removal::Edited(after)) = existing.without_headers() {
        HostsToml::parse(&after).expect("a hosts.toml without headers parses");
    }
});
