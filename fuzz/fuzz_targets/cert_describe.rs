//! The probe describes every certificate a server presents, whatever its bytes: a
//! description or a parse error, never a panic, and the bytes kept whole.
#![no_main]

use ctrdiag::registry::probe::fuzzing::describe_certificate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = describe_certificate(data);
});
