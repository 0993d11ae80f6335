//! Pure diagnosis: error texts and probe facts in, causes, evidence and remedies out.
//! No I/O here; the daemon gathers the facts.

pub mod classify;
pub mod engine;
pub mod logscan;

pub use crate::cause::{self, CauseCode, Severity};
pub use classify::{Classification, ErrorFacts, classify};
pub use engine::{
    Evidence, ExpiryWarning, Facts, Finding, InsecureChange, PullResult, Remedy, diagnose, healthy,
};
#[cfg(test)]
mod engine_tests;
pub(crate) mod wordings;
