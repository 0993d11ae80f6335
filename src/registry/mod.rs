//! Registries as containerd addresses them: host names and references are the core's;
//! the probe (DNS, TCP, TLS, HTTP) is this crate's adapter.

pub use ctrdiag_core::registry::{host, reference};

pub mod probe;
