//! Proof before writing: the hosts directory a plan would leave, staged in a private
//! place, so containerd can pull through it (its Transfer service takes a hosts
//! directory per request) before anything under the real one changes.
//!
//! Only what containerd reads for the pull is staged: every file the plan writes under
//! the hosts root it writes a hosts.toml into, with paths into that root pointed at the
//! stage, and every CA file those hosts.toml files name there that the plan leaves as
//! it is (copied, so the stage is complete).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cause::CauseCode;
use crate::ctrconfig::HostsToml;
use crate::ctrconfig::trust::hosts_toml_cas;
use crate::plan::{Plan, Step};

/// The files to create under the stage, as the pure part decides them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staging {
    /// The hosts root of the node the stage stands in for (`/etc/containerd/certs.d`).
    pub root: PathBuf,
    /// Files to write: path under the stage, text.
    pub writes: Vec<(PathBuf, String)>,
    /// Files to copy from the node into the stage: from, to (both absolute).
    pub copies: Vec<(PathBuf, PathBuf)>,
}

/// What the trial pull found, as the plan output reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Trial {
    /// The pull ran through the staged hosts directory.
    Ran {
        ok: bool,
        /// The cause code of a failure.
        cause: Option<CauseCode>,
        /// containerd's own text of a failure; empty when it worked.
        message: String,
        duration_ms: u64,
    },
    /// No trial was possible; the fix goes on as before, proven by its CRI pull.
    Skipped { reason: String },
}

impl Trial {
    /// Whether the trial stops the fix: it ran and the pull failed.
    pub fn failed(&self) -> bool {
        matches!(self, Trial::Ran { ok: false, .. })
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        match self {
            Trial::Ran {
                ok: true,
                duration_ms,
                ..
            } => format!("trial pull through the staged hosts directory: ok ({duration_ms} ms)"),
            Trial::Ran {
                cause,
                message,
                duration_ms,
                ..
            } => format!(
                "trial pull through the staged hosts directory: failed, {} ({duration_ms} ms): {message}",
                cause.unwrap_or(CauseCode::Unknown)
            ),
            Trial::Skipped { reason } => format!("trial pull: not run ({reason})"),
        }
    }
}

/// The stage for `plan` at `stage`, or `None` when the plan writes no hosts.toml (a
/// legacy table, removing overrides: containerd's hosts directory is not what changes).
pub fn stage(plan: &Plan, stage: &Path) -> Option<Staging> {
    let writes: Vec<(&PathBuf, &String)> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::WriteFile { path, after, .. } => Some((path, after)),
            _ => None,
        })
        .collect();
    let root = writes
        .iter()
        .find(|(p, _)| p.file_name().is_some_and(|n| n == "hosts.toml"))
        .and_then(|(p, _)| p.parent()?.parent())?
        .to_path_buf();
    let root_prefix = format!("{}/", root.display());
    let stage_prefix = format!("{}/", stage.display());
    let into_stage = |p: &Path| Some(stage.join(p.strip_prefix(&root).ok()?));

    let mut staged = Vec::new();
    let mut written = BTreeSet::new();
    let mut named_cas = BTreeSet::new();
    for (path, text) in writes {
        let Some(to) = into_stage(path) else {
            continue;
        };
        written.insert(path.clone());
        let text = if path.file_name().is_some_and(|n| n == "hosts.toml") {
            named_cas.extend(ca_files(text, path.parent().unwrap_or(&root)));
            text.replace(&root_prefix, &stage_prefix)
        } else {
            text.clone()
        };
        staged.push((to, text));
    }
    let copies = named_cas
        .into_iter()
        .map(PathBuf::from)
        .filter(|ca| !written.contains(ca))
        .filter_map(|ca| into_stage(&ca).map(|to| (ca, to)))
        .collect();
    Some(Staging {
        root,
        writes: staged,
        copies,
    })
}

/// The CA files a hosts.toml in `dir` names (nothing for one that does not parse: the
/// trial then fails as containerd would fail with it).
fn ca_files(text: &str, dir: &Path) -> Vec<String> {
    HostsToml::parse(text)
        .map(|h| hosts_toml_cas(&h, &dir.display().to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = "/etc/containerd/certs.d";

    fn write(path: &str, after: &str) -> Step {
        Step::WriteFile {
            path: path.into(),
            before: None,
            after: after.into(),
            mode: 0o644,
            why: "test".into(),
        }
    }

    fn plan(steps: Vec<Step>) -> Plan {
        Plan {
            title: "t".into(),
            steps,
            verify_pull: Some("r.test:5000/a:1".into()),
        }
    }

    #[test]
    fn the_plans_hosts_files_go_to_the_stage_with_their_paths_pointed_there() {
        let hosts = format!(
            "server = \"https://r.test:5000\"\n\n[host.\"https://r.test:5000\"]\n  ca = \"{ROOT}/r.test:5000/ca.crt\"\n"
        );
        let p = plan(vec![
            write(&format!("{ROOT}/r.test:5000/ca.crt"), "PEM"),
            write(&format!("{ROOT}/r.test:5000/hosts.toml"), &hosts),
            write("/etc/containerd/config.toml", "version = 3\n"),
            Step::RestartUnit {
                unit: "containerd.service".into(),
                why: "t".into(),
            },
        ]);
        let s = stage(&p, Path::new("/var/lib/ctrdiag/trial-1")).unwrap();
        assert_eq!(s.root, Path::new(ROOT));
        assert_eq!(
            s.writes,
            [
                (
                    PathBuf::from("/var/lib/ctrdiag/trial-1/r.test:5000/ca.crt"),
                    "PEM".to_string()
                ),
                (
                    PathBuf::from("/var/lib/ctrdiag/trial-1/r.test:5000/hosts.toml"),
                    hosts.replace(ROOT, "/var/lib/ctrdiag/trial-1")
                ),
            ],
            "config.toml is not containerd's hosts directory: not staged"
        );
        assert!(
            s.copies.is_empty(),
            "the CA it names is written by the plan"
        );
    }

    #[test]
    fn a_ca_the_plan_keeps_is_copied_and_one_outside_the_root_is_left_where_it_is() {
        let hosts = format!(
            "[host.\"https://r.test:5000\"]\n  ca = [\"{ROOT}/r.test:5000/ca.crt\", \"/opt/corp/root.pem\"]\n"
        );
        let p = plan(vec![write(
            &format!("{ROOT}/r.test:5000/hosts.toml"),
            &hosts,
        )]);
        let s = stage(&p, Path::new("/s")).unwrap();
        assert_eq!(
            s.copies,
            [(
                PathBuf::from(format!("{ROOT}/r.test:5000/ca.crt")),
                PathBuf::from("/s/r.test:5000/ca.crt")
            )]
        );
        assert!(s.writes[0].1.contains("\"/opt/corp/root.pem\""));
    }

    #[test]
    fn a_plan_without_a_hosts_toml_has_no_stage() {
        let p = plan(vec![write(
            "/etc/containerd/config.toml",
            "[plugins.x.registry.configs.\"r\".tls]\n",
        )]);
        assert_eq!(stage(&p, Path::new("/s")), None);
    }

    #[test]
    fn only_a_pull_that_ran_and_failed_stops_the_fix() {
        let failed = Trial::Ran {
            ok: false,
            cause: Some(CauseCode::TlsUnknownAuthority),
            message: "x509: certificate signed by unknown authority".into(),
            duration_ms: 12,
        };
        assert!(failed.failed());
        assert!(
            failed
                .describe()
                .contains("failed, tls_unknown_authority (12 ms): x509")
        );
        let skipped = Trial::Skipped {
            reason: "containerd 1.6 has no Transfer service".into(),
        };
        assert!(!skipped.failed());
        assert_eq!(
            skipped.describe(),
            "trial pull: not run (containerd 1.6 has no Transfer service)"
        );
    }
}
