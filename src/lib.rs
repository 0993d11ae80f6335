//! ctrdiag: diagnose and safely fix containerd image-pull failures.
//!
//! # Layout
//! - [`containerd`]: adapter for containerd's gRPC API and the CRI services on its socket.
//! - [`registry`]: registry host names and (later) the direct registry probe.
//! - [`api`]: code generated from `proto/ctrdiag/v1`, ctrdiag's own gRPC API.

pub mod api;
pub mod containerd;
pub mod registry;
