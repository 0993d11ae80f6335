//! Registries as containerd addresses them.

pub mod host;
