//! The classifier reads text from containerd and its logs: any bytes must classify
//! without panicking, and the raw text must always be kept whole.
#![no_main]

use ctrdiag_core::diagnose::{classify, logscan};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let c = classify(&text);
    assert_eq!(c.raw, text);
    logscan::scan(data, |f| assert!(f.line >= 1));
});
