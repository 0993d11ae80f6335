//! ctrdiag: diagnose and safely fix containerd image-pull failures.
//!
//! # Layout
//! The pure core is its own crate, [`ctrdiag_core`] (no tokio, tonic, zbus or file
//! system): cause codes, diagnosis, the containerd config model and planner, fix plans,
//! change records, TTL rules, redaction. Its modules are re-exported here under their
//! usual names ([`diagnose`], [`ctrconfig`], [`fix`], [`redact`], [`ttl`]).
//!
//! Adapters (I/O, nothing clever):
//! - [`containerd`]: containerd's gRPC API and the CRI services on its socket.
//! - [`registry::probe`]: the direct registry probe (DNS, TCP, TLS chain, `/v2/`).
//! - [`nodefiles`]: reads containerd's configuration files from the node.
//! - [`systemd`]: restarts and unit state over D-Bus.
//! - [`plan`]: the executor that applies plans (journal, atomic writes, backups, undo).
//! - [`clock`]: wall-clock time for deadlines, injected so tests move it.
//! - [`k8s`]: the Kubernetes API for `ctrdiag k8s` (the CLI only, with the operator's
//!   kubeconfig; the daemon never talks to Kubernetes).
//!
//! Flows:
//! - [`controller`]: status, diagnose, fix, changes, rollback, the end of times to
//!   live and recovery, over narrow ports (containerd, unit manager, prober, clock).
//!
//! The daemon and its clients:
//! - [`api`]: ctrdiag's own gRPC API (generated from `proto/ctrdiag/v1`) and conversions.
//! - [`server`]: the daemon: socket, caller authorization, the service, shutdown.
//! - [`metrics`]: Prometheus counters and the `/metrics` endpoint.
//! - [`settings`]: the daemon's settings file.
//! - [`cli`]: the `ctrdiag` command line client.

pub use ctrdiag_core::{
    cache, cause, change, creds, ctrconfig, detect, diagnose, explain, fix, loaded, managed,
    redact, trial, ttl,
};

pub mod api;
pub mod cli;
pub mod clock;
pub mod containerd;
pub mod controller;
pub mod detection;
pub mod k8s;
pub mod logsource;
pub mod metrics;
pub mod nodefiles;
pub mod plan;
pub mod registry;
pub mod server;
pub mod settings;
pub mod systemd;
