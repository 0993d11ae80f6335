//! The trial pull before a fix writes anything: the plan's hosts directory is staged
//! under the state directory and containerd pulls the verifying image through it
//! (Transfer service, 1.7+). Only a trial that worked, or none at all (1.6, a plan that
//! writes no hosts.toml, no image to pull), lets the fix go on; the CRI pull after the
//! write stays the proof that counts, since CRI is the kubelet's path.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::ports::{ContainerdPort, Prober, UnitManager};
use super::{Controller, PullReport};
use crate::containerd::ContainerdError;
use crate::plan::{Plan, fsops};
use crate::trial::{Staging, Trial, stage};

/// Tells stages of the same process apart.
static STAGES: AtomicU64 = AtomicU64::new(0);

impl<C: ContainerdPort, U: UnitManager, P: Prober> Controller<C, U, P> {
    /// Runs the trial of `plan`, or says why none ran; `None` when there is nothing to
    /// try (no image to pull, or the plan writes no hosts.toml).
    pub(super) async fn trial(&self, plan: &Plan) -> Option<Trial> {
        let image = plan.verify_pull.as_deref()?;
        let version = match self.containerd_version().await {
            Ok(v) => v,
            Err(e) => {
                return Some(Trial::Skipped {
                    reason: e.to_string(),
                });
            }
        };
        if !version.has_transfer_service() {
            return Some(Trial::Skipped {
                reason: format!("containerd {version} has no Transfer service (it came in 1.7)"),
            });
        }
        if !version.transfer_takes_hosts_dir() {
            return Some(Trial::Skipped {
                reason: format!(
                    "containerd {version}'s Transfer service ignores a staged hosts directory (1.7.24 measured), so a trial would prove nothing"
                ),
            });
        }
        let n = STAGES.fetch_add(1, Ordering::Relaxed);
        let dir = self
            .executor
            .state_dir()
            .join(format!("trial-{}-{n}", std::process::id()));
        let staging = stage(plan, &dir)?;
        let not_staged = |e: std::io::Error| {
            Some(Trial::Skipped {
                reason: format!(
                    "the hosts directory could not be staged in {}: {e}",
                    dir.display()
                ),
            })
        };
        // Something already at that path is not ours: it is neither used nor removed.
        if let Err(e) = create_stage(&dir) {
            return not_staged(e);
        }
        if let Err(e) = fill_stage(&dir, &staging) {
            remove_stage(&dir);
            return not_staged(e);
        }
        let result = self.containerd.trial_pull(image, &dir).await;
        remove_stage(&dir);
        Some(match result {
            Ok(outcome) => {
                let report = PullReport::from_outcome(image, outcome, false);
                Trial::Ran {
                    ok: report.cause.is_none(),
                    cause: report.cause,
                    message: crate::redact::secrets(&report.message()),
                    duration_ms: report.duration().as_millis() as u64,
                }
            }
            Err(ContainerdError::Rpc {
                code: tonic::Code::Unimplemented,
                ..
            }) => Trial::Skipped {
                reason: "this containerd has no Transfer service (it came in 1.7)".into(),
            },
            Err(e) => Trial::Skipped {
                reason: e.to_string(),
            },
        })
    }
}

/// Creates the stage as a fresh private directory: never one that exists, so nothing
/// planted there is followed, and nothing that was there is removed afterwards.
fn create_stage(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.mode(0o700);
    if let Some(state_dir) = dir.parent() {
        // The state directory of a daemon that has made no change yet.
        builder.recursive(true).create(state_dir)?;
    }
    builder.recursive(false).create(dir)
}

/// Writes the plan's files into the stage, and copies of the CA files it keeps, read
/// without following symlinks.
fn fill_stage(dir: &Path, staging: &Staging) -> std::io::Result<()> {
    let ensure_parent = |path: &Path| -> std::io::Result<()> {
        let parent = path.parent().unwrap_or(dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(parent)
    };
    for (path, text) in &staging.writes {
        ensure_parent(path)?;
        std::fs::write(path, text)?;
    }
    for (from, to) in &staging.copies {
        let Some((bytes, _)) = fsops::read_regular(from).map_err(std::io::Error::other)? else {
            // A CA that is not there: containerd will say so in the trial.
            continue;
        };
        ensure_parent(to)?;
        std::fs::write(to, bytes)?;
    }
    Ok(())
}

/// Removes a stage: ctrdiag's own temporary files, never the node's.
fn remove_stage(dir: &PathBuf) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a trial stage");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_that_exists_is_not_taken_as_a_stage() {
        let state = tempfile::tempdir().unwrap();
        let planted = state.path().join("trial-1-0");
        std::fs::create_dir(&planted).unwrap();
        std::fs::write(planted.join("keep"), "someone's").unwrap();
        assert!(create_stage(&planted).is_err());
        assert_eq!(
            std::fs::read_to_string(planted.join("keep")).unwrap(),
            "someone's"
        );
        let fresh = state.path().join("trial-1-1");
        create_stage(&fresh).unwrap();
        assert!(fresh.is_dir());
    }
}
