//! The classifier reads text from containerd and its logs: any bytes must classify
//! without panicking, and the raw text must always be kept whole.
#![no_main]

use ctrdiag_core::diagnose::{classify, logscan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let c = classify(&text);
    assert_eq!(c.raw, text);
    logscan::scan(data, |f| {
        assert!(f.offset < data.len().max(1));
        assert!(f.offset == 0 || data[f.offset - 1] == b'\n', "a finding starts a line");
    });
});
