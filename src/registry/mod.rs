//! Registries as containerd addresses them.

pub mod host;
pub mod probe;
pub mod reference;
