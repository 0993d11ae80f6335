//! Docker-style credential files and the kubelet's credential provider config are read
//! from the node as they are: any text must parse or fail cleanly, an edit that removes
//! a registry's credentials must leave a file that parses again and no longer holds
//! them, and nothing may panic.
#![no_main]

use ctrdiag_core::creds::{docker_config_entries, docker_config_without, provider_config_entries};
use ctrdiag_core::ctrconfig::Removal;
use ctrdiag_core::registry::host::RegistryHost;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = provider_config_entries("/etc/kubernetes/provider.yaml", text);
    let Ok(entries) = docker_config_entries("/root/.docker/config.json", text) else {
        return;
    };
    let host: Option<RegistryHost> = entries.iter().find_map(|e| e.registry.parse().ok());
    for target in [host.as_ref(), None] {
        match docker_config_without("/root/.docker/config.json", text, target) {
            Ok(Removal::Edited(after)) => {
                let left = docker_config_entries("/root/.docker/config.json", &after)
                    .expect("an edited credential file parses");
                assert!(
                    left.iter().all(|e| !e.is_for(target)),
                    "credentials for {target:?} are left in {after:?}"
                );
            }
            Ok(Removal::Unchanged | Removal::NothingLeft) | Err(_) => {}
        }
    }
});
