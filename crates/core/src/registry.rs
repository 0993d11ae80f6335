//! Registries as containerd names them: hosts (`host[:port]`) and image references.

pub mod host;
pub mod reference;
