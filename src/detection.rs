//! Detection in the daemon: containerd's log followed into the [`hub::EventHub`] (the
//! core decides what each line means), scheduled probes, and the optional automatic
//! `fix --ca` for registries the settings name.

pub mod auto_fix;
pub mod follower;
pub mod hub;
pub mod schedule;

pub use hub::{DetectionStatus, EventHub};
