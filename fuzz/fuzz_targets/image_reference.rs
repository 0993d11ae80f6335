//! Image references come from users over the API: parsing must never panic, and an
//! accepted reference prints to one that parses back to the same value.
#![no_main]

use ctrdiag_core::registry::reference::ImageRef;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = text.parse::<ImageRef>() {
        let printed = r.to_string();
        assert_eq!(printed.parse::<ImageRef>().as_ref(), Ok(&r), "{printed}");
    }
});
