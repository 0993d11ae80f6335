//! ctrdiag's core: what is true about containerd, registries and changes, decided from
//! facts, without touching anything. Text and facts in; findings, plans and records
//! out. The daemon's adapters gather the facts and carry out the plans.
//!
//! # Layout
//! - [`cause`]: the stable cause codes (the one leaf type everything else uses).
//! - [`diagnose`]: the classifier of containerd's error texts, the log scanner, and the
//!   findings engine.
//! - [`ctrconfig`]: containerd's config.toml / hosts.toml model, version rules, findings
//!   and the planner of edits.
//! - [`registry`]: registry host names and image references.
//! - [`probe`]: what a probe of a registry found (data; the probe itself is an adapter).
//! - [`fix`]: an operator's fix request to a [`plan::Plan`], and the end of an insecure
//!   setting's time to live.
//! - [`creds`]: where a node holds registry credentials, and plans to remove them.
//! - [`cache`]: plans to purge a registry's cached images.
//! - [`plan`], [`change`]: plans, and changes as their journal records them.
//! - [`explain`]: each cause code explained for people (`ctrdiag explain`, docs/causes/).
//! - [`loaded`]: what containerd's Introspection says it loaded, as findings.
//! - [`managed`]: a fix on a node whose configuration k3s, RKE2 or Bottlerocket owns,
//!   as the change to make in the owner's format.
//! - [`detect`]: containerd's log lines and probe results as events and live problems.
//! - [`trial`]: the hosts directory a plan would leave, staged for a trial pull.
//! - [`ttl`]: when insecure settings end.
//! - [`redact`]: secrets out of every text shown to people.

pub mod cache;
pub mod cause;
pub mod change;
pub mod creds;
pub mod ctrconfig;
pub mod detect;
pub mod diagnose;
pub mod explain;
pub mod fix;
pub mod loaded;
pub mod managed;
pub mod plan;
pub mod probe;
pub mod redact;
pub mod registry;
pub mod trial;
pub mod ttl;
