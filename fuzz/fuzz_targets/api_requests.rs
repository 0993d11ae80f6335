//! Any bytes a client sends as a request message: decoded and checked the way the
//! daemon does before any work, for every method; a refusal is a status, never a
//! panic, and an accepted image is already in its normal form.
#![no_main]

use ctrdiag::server::service::check_request;
use libfuzzer_sys::fuzz_target;

const METHODS: &[&str] = &[
    "ListImages",
    "RemoveImage",
    "TestPull",
    "Rollback",
    "Fix",
    "ScanCredentials",
    "CleanCredentials",
    "PurgeCache",
    "ListEvents",
    "Watch",
];

fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else { return };
    let method = METHODS[*first as usize % METHODS.len()];
    if let Err(status) = check_request(method, body) {
        assert!(!status.message().is_empty(), "{method}: a refusal says why");
    }
});
