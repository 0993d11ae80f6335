//! The probe reads a registry's `GET /v2/` response head from any server on the
//! network: any bytes must give a status in 100..=999 or a refusal, never a panic.
#![no_main]

use ctrdiag::registry::probe::fuzzing::parse_head;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((status, _reason)) = parse_head(data) {
        assert!((100..1000).contains(&status));
        assert!(data.starts_with(b"HTTP/1."));
    }
});
