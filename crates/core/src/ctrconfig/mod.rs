//! containerd configuration: config.toml and hosts.toml models, version rules,
//! findings and planned edits. Pure: text and facts in, results out; no I/O.

pub mod config_toml;
pub mod effective;
mod endpoint;
pub mod error;
pub mod facts;
pub mod findings;
pub mod hosts_dir;
pub mod hosts_toml;
pub mod lookup;
mod migrate;
pub mod owner;
pub mod plan;
pub mod trust;
pub mod version;

mod textpatch;
mod tree;

#[cfg(test)]
mod tests;

pub use config_toml::{
    ConfigError, ConfigFacts, ConfigPath, ConfigToml, ConfigVersion, RegistryMechanism,
};
pub use error::{Position, SyntaxError};
pub use facts::{DEFAULT_CERTS_DIR, HostsDirFacts, NodeFacts, NodeFiles};
pub use findings::{Finding, findings};
pub use hosts_dir::{effective_hosts_dir, hosts_dir_candidates, hosts_dir_for};
pub use hosts_toml::{HostsProblem, HostsProblemKind, HostsToml, HostsTomlError, Removal};
pub use lookup::{Lookup, NamedFile, NotRead, Place, PlaceKind, PlaceState, lookup};
pub use migrate::Unmovable;
pub use owner::{Generator, Owner, OwnerFacts};
pub use plan::{
    Edit, FileKind, InsecureMode, PlanError, PlanOptions, TrustMode, plan_remove_overrides,
    plan_trust,
};
pub use trust::{HostTrust, host_trust};
pub use version::{ContainerdVersion, VersionError};
