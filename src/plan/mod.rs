//! Plans run on the node: the executor (journal, atomic writes, backups, verification,
//! undo, recovery), its file operations and the change journal on disk. What a plan
//! and a change record are is the core's ([`ctrdiag_core::plan`]).

pub mod executor;
pub mod fsops;
mod iofault;
pub mod journal;

pub use ctrdiag_core::plan::*;
pub use executor::{ApplyError, ApplyOutcome, Executor, Progress, ProgressSink};
pub use executor::{PendingRecovery, RecoveryReport};
