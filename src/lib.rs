//! ctrdiag: diagnose and safely fix containerd image-pull failures.
//!
//! # Layout
//! Pure core (text and facts in, results out; no I/O):
//! - [`diagnose`]: cause codes, the error classifier, the log scanner, the findings engine.
//! - [`ctrconfig`]: containerd's config.toml / hosts.toml model, version rules, planner.
//! - [`fix`]: an operator's fix request to a [`plan::Plan`].
//! - [`registry`]: host names and image references (pure), and the registry probe (I/O).
//! - [`redact`]: secrets out of every text shown to people (pure).
//!
//! Adapters (I/O, nothing clever):
//! - [`containerd`]: containerd's gRPC API and the CRI services on its socket.
//! - [`nodefiles`]: reads containerd's configuration files from the node.
//! - [`systemd`]: restarts and unit state over D-Bus.
//! - [`plan`]: the executor that applies plans (journal, atomic writes, backups, undo).
//! - [`expiry`]: ends insecure settings whose time to live is over.
//!
//! The daemon and its clients:
//! - [`api`]: ctrdiag's own gRPC API (generated from `proto/ctrdiag/v1`) and conversions.
//! - [`server`]: the daemon: socket, caller authorization, the service, shutdown.
//! - [`metrics`]: Prometheus counters and the `/metrics` endpoint.
//! - [`settings`]: the daemon's settings file.
//! - [`clock`]: wall-clock time for deadlines, injected so tests move it.
//! - [`cli`]: the `ctrdiag` command line client.

pub mod api;
pub mod cli;
pub mod clock;
pub mod containerd;
pub mod ctrconfig;
pub mod diagnose;
pub mod expiry;
pub mod fix;
pub mod metrics;
pub mod nodefiles;
pub mod plan;
pub mod redact;
pub mod registry;
pub mod server;
pub mod settings;
pub mod systemd;
