//! ctrdiag: diagnose and safely fix containerd image-pull failures.
//!
//! # Layout
//! - [`containerd`]: adapter for containerd's gRPC API and the CRI services on its socket.
//! - [`registry`]: registry host names and image references.
//! - [`api`]: ctrdiag's own gRPC API (generated from `proto/ctrdiag/v1`) and conversions.
//! - [`server`]: the daemon's gRPC server, socket handling and caller authorization.
//! - [`settings`]: the daemon's settings file.
//! - [`cli`]: the `ctrdiag` command line client.

pub mod api;
pub mod cli;
pub mod containerd;
pub mod ctrconfig;
pub mod diagnose;
pub mod fix;
pub mod metrics;
pub mod nodefiles;
pub mod plan;
pub mod registry;
pub mod server;
pub mod settings;
pub mod systemd;
