//! Detection: containerd's log lines, probe results and certificate checks become
//! events and live problems. Pure: the daemon's log follower feeds lines in and keeps
//! the [`EventLog`]; nothing here reads a file or a clock.

pub mod certificate;
pub mod events;
mod fields;
pub mod line;

pub use certificate::certificate_event;
pub use events::{Area, Event, EventKind, EventLog, Observation, Problem};
pub use line::{LineEvent, read_line};
