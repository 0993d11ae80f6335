//! Every change ctrdiag makes to a node is a [`Plan`]: an ordered list of typed steps
//! that can be shown (`--dry-run`, as unified diffs) before anything happens, then run
//! by the daemon's executor, which journals, backs up, verifies and rolls back.
//!
//! Pure: building and printing plans touches nothing.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::change::{
    BadChangeId, ChangeId, ChangeMeta, ChangeRecord, ChangeState, DamagedChange, Event, FileState,
    Listed, ManualRestart,
};

/// Owner and mode of a file, kept when it is replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// Replace (or create, when `before` is `None`) a text file. The executor refuses
    /// when the file no longer holds `before`: someone edited it since the plan was made.
    WriteFile {
        path: PathBuf,
        before: Option<String>,
        after: String,
        /// Mode for a new file (an existing file keeps its own mode and owner).
        mode: u32,
        why: String,
    },
    /// Take a file out of use by moving it into the change's backup area (restorable;
    /// nothing is ever deleted outright). The executor refuses when the file no longer
    /// holds the bytes whose SHA-256 is `sha256` (someone changed it since the plan).
    MoveToBackup {
        path: PathBuf,
        why: String,
        #[serde(default)]
        sha256: Option<String>,
    },
    /// Remove an image through CRI so the next pull fetches it again.
    RemoveImage { image: String, why: String },
    /// Restart a systemd unit and wait for it (and containerd's CRI) to come back.
    RestartUnit { unit: String, why: String },
}

impl Step {
    /// The step that carries out `removal` from the file at `path` (which holds
    /// `text`): an edit, a move to the backup area when nothing else is left in it (a
    /// file is never deleted), or nothing.
    pub fn for_removal(path: PathBuf, text: &str, removal: Removal, why: String) -> Option<Step> {
        match removal {
            Removal::Unchanged => None,
            Removal::Edited(after) => Some(Step::WriteFile {
                path,
                before: Some(text.to_string()),
                after,
                mode: 0o600,
                why,
            }),
            Removal::NothingLeft => Some(Step::MoveToBackup {
                path,
                why: format!("{why}; nothing else is left in it"),
                sha256: Some(sha256_hex(text.as_bytes())),
            }),
        }
    }

    /// Rewriting containerd's config.toml to `after`, then restarting `unit`: CRI
    /// reads config.toml only at start.
    pub fn config_toml_rewrite(
        facts: &NodeFacts,
        after: String,
        why: String,
        unit: &str,
    ) -> [Step; 2] {
        [
            Step::WriteFile {
                path: facts.config_file.clone().into(),
                before: Some(facts.config.to_string()),
                after,
                mode: 0o644,
                why,
            },
            Step::RestartUnit {
                unit: unit.to_string(),
                why: "containerd's CRI reads config.toml only at start".into(),
            },
        ]
    }

    /// The file the step writes or moves, if it has one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Step::WriteFile { path, .. } | Step::MoveToBackup { path, .. } => Some(path),
            Step::RemoveImage { .. } | Step::RestartUnit { .. } => None,
        }
    }

    /// One line for people: what the step does and why.
    pub fn describe(&self) -> String {
        match self {
            Step::WriteFile {
                path, before, why, ..
            } => {
                let verb = if before.is_some() { "edit" } else { "create" };
                format!("{verb} {}: {why}", path.display())
            }
            Step::MoveToBackup { path, why, .. } => {
                format!("move {} to the backup area: {why}", path.display())
            }
            Step::RemoveImage { image, why } => format!("remove image {image}: {why}"),
            Step::RestartUnit { unit, why } => format!("restart {unit}: {why}"),
        }
    }
}

/// An insecure registry setting a change turns on: what its time to live ends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InsecureSetting {
    /// The registry, `host[:port]`.
    pub host: String,
    pub mode: InsecureMode,
}

pub use crate::ctrconfig::InsecureMode;
use crate::ctrconfig::{NodeFacts, Removal};

/// A reviewed, printable list of changes, and how to prove they worked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// What the plan is for, e.g. "trust the CA of registry.example.com:5000".
    pub title: String,
    pub steps: Vec<Step>,
    /// An image to pull through CRI afterwards; the change is kept only if it works.
    pub verify_pull: Option<String>,
}

impl Plan {
    /// The plan as a numbered list followed by unified diffs of every file it writes:
    /// what `--dry-run` prints.
    pub fn render(&self) -> String {
        let steps: Vec<String> = self.steps.iter().map(Step::describe).collect();
        render_plan(
            &self.title,
            &steps,
            self.verify_pull.as_deref(),
            &self.diffs(),
        )
    }

    /// Unified diffs of every file the plan writes, one after the other.
    pub fn diffs(&self) -> String {
        let diffs: Vec<String> = self
            .steps
            .iter()
            .filter_map(|step| match step {
                Step::WriteFile {
                    path,
                    before,
                    after,
                    ..
                } => Some(unified_diff(path, before.as_deref(), after)),
                _ => None,
            })
            .collect();
        diffs.join("\n")
    }

    /// Whether the plan restarts anything (a restart interrupts running pulls).
    pub fn restarts(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s, Step::RestartUnit { .. }))
    }
}

/// A plan for people from its parts: the numbered steps, the verifying pull, then the
/// diffs. The one renderer: [`Plan::render`] and the CLI (from the API's plan view)
/// both print through it.
pub fn render_plan(
    title: &str,
    steps: &[String],
    verify_pull: Option<&str>,
    diffs: &str,
) -> String {
    let mut out = format!("Plan: {title}\n");
    for (i, step) in steps.iter().enumerate() {
        let _ = writeln!(out, "  {}. {step}", i + 1);
    }
    if let Some(image) = verify_pull.filter(|i| !i.is_empty()) {
        let _ = writeln!(
            out,
            "  {}. verify: pull {image} through CRI; undo everything if it fails",
            steps.len() + 1
        );
    }
    if !diffs.is_empty() {
        out.push('\n');
        out += diffs;
    }
    out
}

/// The SHA-256 of `bytes` in hex: how a plan names the content it expects to move.
pub fn sha256_hex(bytes: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `diff -u` style output for one file; a new file diffs against /dev/null. Secrets
/// in either side are shown as placeholders ([`crate::redact`]): diffs are for people.
pub fn unified_diff(path: &std::path::Path, before: Option<&str>, after: &str) -> String {
    let before = before.map(crate::redact::secrets);
    let after = crate::redact::secrets(after);
    let (before, after) = (before.as_deref(), after.as_str());
    let name = path.display().to_string();
    let old_name = if before.is_some() {
        format!("a{name}")
    } else {
        "/dev/null".to_string()
    };
    similar::TextDiff::from_lines(before.unwrap_or(""), after)
        .unified_diff()
        .context_radius(3)
        .header(&old_name, &format!("b{name}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_prints_as_steps_and_diffs() {
        let plan = Plan {
            title: "trust the CA of r.test:5000".into(),
            steps: vec![
                Step::WriteFile {
                    path: "/etc/containerd/certs.d/r.test:5000/hosts.toml".into(),
                    before: None,
                    after: "server = \"https://r.test:5000\"\n".into(),
                    mode: 0o644,
                    why: "hosts.toml naming the CA".into(),
                },
                Step::WriteFile {
                    path: "/etc/containerd/config.toml".into(),
                    before: Some("version = 2\n".into()),
                    after: "version = 2\nx = 1\n".into(),
                    mode: 0o644,
                    why: "set config_path".into(),
                },
                Step::RestartUnit {
                    unit: "containerd.service".into(),
                    why: "config.toml is read at start only".into(),
                },
            ],
            verify_pull: Some("r.test:5000/app:1".into()),
        };
        let text = plan.render();
        assert!(
            text.contains("1. create /etc/containerd/certs.d/r.test:5000/hosts.toml"),
            "{text}"
        );
        assert!(text.contains("3. restart containerd.service"), "{text}");
        assert!(text.contains("4. verify: pull r.test:5000/app:1"), "{text}");
        assert!(
            text.contains("--- /dev/null\n+++ b/etc/containerd/certs.d/r.test:5000/hosts.toml"),
            "{text}"
        );
        assert!(text.contains("--- a/etc/containerd/config.toml"), "{text}");
        assert!(text.contains("+x = 1"), "{text}");
        assert!(plan.restarts());
    }
}
