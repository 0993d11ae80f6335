//! The change journal is read back from the state directory after crashes, full disks
//! and hands that edit it: any plan.json and any journal line must load or fail
//! cleanly, what loads must encode back to itself, and the record derived from any
//! list of events must be built without panicking.
#![no_main]

use ctrdiag_core::change::{ChangeId, ChangeMeta, ChangeRecord, Event};
use ctrdiag_core::plan::Plan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line is read as a plan file, the others as journal events.
    let mut lines = data.split(|b| *b == b'\n');
    let plan = lines
        .next()
        .and_then(|l| serde_json::from_slice::<Plan>(l).ok())
        .map(|p| {
            let again: Plan = serde_json::from_slice(&serde_json::to_vec(&p).unwrap()).unwrap();
            assert_eq!(again, p);
            p
        });
    let mut events = Vec::new();
    for line in lines {
        if let Ok(e) = serde_json::from_slice::<Event>(line) {
            let again: Event = serde_json::from_slice(&serde_json::to_vec(&e).unwrap()).unwrap();
            assert_eq!(again, e);
            events.push(e);
        }
    }
    if let Ok(meta) = serde_json::from_slice::<ChangeMeta>(data) {
        let _ = serde_json::to_vec(&meta).unwrap();
    }
    let plan = plan.unwrap_or(Plan {
        title: String::new(),
        steps: Vec::new(),
        verify_pull: None,
    });
    let _ = ChangeRecord::from_journal(ChangeId::at(1, 0), 1, plan, ChangeMeta::plain(), events);
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(id) = text.parse::<ChangeId>()
    {
        assert_eq!(id.as_str().parse::<ChangeId>().as_ref(), Ok(&id));
        assert!(!id.as_str().contains('/') && !id.as_str().contains(".."));
    }
});
