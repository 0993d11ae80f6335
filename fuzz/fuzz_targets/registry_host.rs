//! Registry host names come from users and config files: parsing must never panic,
//! and whatever is accepted must print back to a value that parses to itself.
#![no_main]

use ctrdiag_core::registry::host::RegistryHost;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(host) = text.parse::<RegistryHost>() {
        let printed = host.to_string();
        assert!(!printed.contains('/') && !printed.contains(".."));
        assert_eq!(printed.parse::<RegistryHost>().as_ref(), Ok(&host));
    }
});
