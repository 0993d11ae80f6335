//! The Kubernetes step of the runbook, done safely: detaching and restoring the default
//! ServiceAccount's `imagePullSecrets` (`ctrdiag k8s pull-secrets`).
//!
//! It runs in the CLI with the operator's own kubeconfig, never in ctrdiagd: a node
//! agent must not hold rights to patch ServiceAccounts (DESIGN.md, second round).
//! - [`pull_secrets`]: pure decisions and the guarded JSON patches.
//! - [`cluster`]: the API server (kubeconfig, GET, PATCH, errors that say what to do).
//! - [`local`]: the operator's private copy of every saved list.

pub mod cluster;
pub mod local;
pub mod pull_secrets;
