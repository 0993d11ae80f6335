//! What a change to the node is, as recorded: its id, the events of its journal, how
//! it relates to other changes, and the state all that adds up to. Pure: the daemon's
//! journal reads and writes the records; the rules for reading them are here.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::plan::{FileMeta, InsecureSetting, Plan};

/// Why a string is not a change id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("change id {0:?} is not valid: ids look like 20261129T001500-123456789")]
pub struct BadChangeId(pub String);

/// A change's id: UTC time of creation plus a few hex digits, so ids sort by age and
/// are safe as directory names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChangeId(String);

impl ChangeId {
    /// The id of a change made at `unix` seconds and `nanos` (`20261129T001500-123456789`):
    /// nanoseconds keep ids of the same second apart and in order.
    pub fn at(unix: u64, nanos: u32) -> ChangeId {
        let stamp = crate::probe::Timestamp::from_unix(unix as i64)
            .rfc3339
            .replace(['-', ':'], "")
            .trim_end_matches('Z')
            .to_string();
        ChangeId(format!("{stamp}-{nanos:09}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChangeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ChangeId {
    type Err = BadChangeId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !s.starts_with('-');
        if ok {
            Ok(ChangeId(s.to_string()))
        } else {
            Err(BadChangeId(s.chars().take(80).collect()))
        }
    }
}

impl TryFrom<String> for ChangeId {
    type Error = BadChangeId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<ChangeId> for String {
    fn from(id: ChangeId) -> String {
        id.0
    }
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The original of step `step`'s file is saved (or it did not exist).
    Backup {
        step: usize,
        existed: bool,
        meta: Option<FileMeta>,
    },
    /// Step `step` is about to change the node.
    Started {
        step: usize,
    },
    Done {
        step: usize,
    },
    /// Step `step` is about to create these directories (outermost first) to hold its
    /// new file; its undo removes them again when they are empty.
    CreatedDirs {
        step: usize,
        dirs: Vec<std::path::PathBuf>,
    },
    /// Step `step`'s restart never reached the unit manager (no bus, or it refused the
    /// call): containerd went on running as it was, as the instance `containerd` names
    /// (its pid, or its socket's inode; `None` when neither could be read). An undo
    /// then restarts it only if it has restarted since.
    NotRestarted {
        step: usize,
        containerd: Option<String>,
    },
    /// Step `step`'s restart is left to the operator ([`ChangeMeta::manual_restart`]):
    /// ctrdiag waits until `until_unix` for containerd to be another instance than
    /// `containerd` (its pid, or its socket's inode and change time, when the wait began).
    AwaitingRestart {
        step: usize,
        containerd: Option<String>,
        until_unix: u64,
    },
    /// Every step ran and the verification held.
    Applied,
    /// Everything was undone; why.
    RolledBack {
        reason: String,
    },
    /// A later change (`by`) undid this one.
    Reverted {
        by: ChangeId,
    },
    /// Read from journals of earlier versions only: the expiry now lives in
    /// plan.json from the first write ([`ChangeMeta::expires_unix`]).
    Expires {
        unix: u64,
    },
    /// The time to live ended and the insecure setting was already gone (a CA fix or
    /// an edit had removed it): nothing was left to revert.
    Expired,
    /// Reverting the expired setting failed this time; it is retried with backoff.
    ExpiryFailed {
        reason: String,
        unix: u64,
    },
}

/// What a change is besides its plan: how it relates to other changes, and whether
/// it turns an insecure setting on (or back on) and for how long.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeMeta {
    /// Set when this change is the rollback of another.
    #[serde(default)]
    pub rollback_of: Option<ChangeId>,
    /// Changes whose expired insecure setting this change turned off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reverts: Vec<ChangeId>,
    /// The insecure setting this change turns on, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<InsecureSetting>,
    /// When the insecure setting must end (Unix seconds), counted from the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_unix: Option<u64>,
    /// The time to live it was given, so undoing its removal can give it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
    /// Undoing this change would turn this insecure setting back on (it is the
    /// rollback or the expiry of one); the undo then gets `ttl_secs` again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restores_insecure: Option<(InsecureSetting, Option<u64>)>,
    /// Set when the operator restarts containerd, not ctrdiag (`--restart=manual`: no
    /// unit manager ctrdiag can reach).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_restart: Option<ManualRestart>,
}

/// A restart done by someone else: what they are told to run, and how long ctrdiag
/// waits for it before it undoes the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManualRestart {
    /// The command for the operator, e.g. `systemctl restart k3s.service`.
    pub command: String,
    pub wait_secs: u64,
}

impl ChangeMeta {
    /// A change with no relation to others and no insecure setting.
    pub fn plain() -> ChangeMeta {
        ChangeMeta::default()
    }
}

/// Where a change stands, from its journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ChangeState {
    /// Started and never finished: the daemon stopped in the middle.
    Interrupted,
    /// Its files are written and ctrdiag waits for the operator to restart
    /// containerd (`command`) until `until_unix`, then proves or undoes it.
    AwaitingRestart {
        command: String,
        until_unix: u64,
    },
    Applied,
    RolledBack {
        reason: String,
    },
    Reverted {
        by: ChangeId,
    },
    /// Its time to live ended with nothing left to revert.
    Expired,
}

/// A change as `ctrdiag changes` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeRecord {
    pub id: ChangeId,
    pub created_unix: u64,
    pub plan: Plan,
    pub meta: ChangeMeta,
    pub state: ChangeState,
    pub events: Vec<Event>,
}

/// A change directory whose records cannot be read (a disk error, a hand edit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedChange {
    pub id: ChangeId,
    pub problem: String,
}

/// One entry of the change directory: a readable change or a damaged one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listed {
    Change(Box<ChangeRecord>),
    Damaged(DamagedChange),
}

impl Listed {
    pub fn id(&self) -> &ChangeId {
        match self {
            Listed::Change(c) => &c.id,
            Listed::Damaged(d) => &d.id,
        }
    }
}

impl ChangeRecord {
    /// Steps that were started (and so may have changed the node), in order.
    /// The directories step `step` created, outermost first.
    pub fn created_dirs(&self, step: usize) -> &[std::path::PathBuf] {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::CreatedDirs { step: s, dirs } if *s == step => Some(dirs.as_slice()),
                _ => None,
            })
            .unwrap_or_default()
    }

    /// The containerd instance that kept running when restart step `step` never
    /// reached the unit manager (`Some(None)`: it could not be named); `None` when
    /// that restart was requested (or may have been).
    /// The same for a restart left to the operator: the instance when the wait began.
    pub fn not_restarted(&self, step: usize) -> Option<Option<&str>> {
        self.events.iter().find_map(|e| match e {
            Event::NotRestarted {
                step: s,
                containerd,
            }
            | Event::AwaitingRestart {
                step: s,
                containerd,
                ..
            } if *s == step => Some(containerd.as_deref()),
            _ => None,
        })
    }

    pub fn started_steps(&self) -> Vec<usize> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Started { step } => Some(*step),
                _ => None,
            })
            .collect()
    }

    /// When the change's insecure setting must end, if it has a time to live.
    pub fn expires_unix(&self) -> Option<u64> {
        self.meta.expires_unix.or_else(|| {
            self.events.iter().rev().find_map(|e| match e {
                Event::Expires { unix } => Some(*unix),
                _ => None,
            })
        })
    }

    /// The last failed attempt to end the time to live, if any since it was applied.
    pub fn last_expiry_failure(&self) -> Option<&str> {
        self.events.iter().rev().find_map(|e| match e {
            Event::ExpiryFailed { reason, .. } => Some(reason.as_str()),
            _ => None,
        })
    }

    /// The backup record of `step`, if one was taken.
    pub fn backup_of(&self, step: usize) -> Option<(bool, Option<FileMeta>)> {
        self.events.iter().find_map(|e| match e {
            Event::Backup {
                step: s,
                existed,
                meta,
            } if *s == step => Some((*existed, *meta)),
            _ => None,
        })
    }
}

impl ChangeRecord {
    /// A change from its record and journal events; the state is what the last
    /// deciding event says (none: it was interrupted).
    pub fn from_journal(
        id: ChangeId,
        created_unix: u64,
        plan: Plan,
        meta: ChangeMeta,
        events: Vec<Event>,
    ) -> ChangeRecord {
        let state = events
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::Applied => Some(ChangeState::Applied),
                Event::RolledBack { reason } => Some(ChangeState::RolledBack {
                    reason: reason.clone(),
                }),
                Event::Reverted { by } => Some(ChangeState::Reverted { by: by.clone() }),
                Event::Expired => Some(ChangeState::Expired),
                _ => None,
            })
            .unwrap_or_else(|| awaiting_restart(&meta, &events));
        ChangeRecord {
            id,
            created_unix,
            plan,
            meta,
            state,
            events,
        }
    }
}

/// The state of a change with no deciding event: waiting for the operator's restart
/// when its last event says so, else interrupted.
fn awaiting_restart(meta: &ChangeMeta, events: &[Event]) -> ChangeState {
    match (events.last(), &meta.manual_restart) {
        (Some(Event::AwaitingRestart { until_unix, .. }), Some(manual)) => {
            ChangeState::AwaitingRestart {
                command: manual.command.clone(),
                until_unix: *until_unix,
            }
        }
        _ => ChangeState::Interrupted,
    }
}

impl ChangeState {
    /// Started and not decided: interrupted, or waiting for a restart (which, once
    /// the daemon that waited is gone, is interrupted too).
    pub fn is_unfinished(&self) -> bool {
        matches!(
            self,
            ChangeState::Interrupted | ChangeState::AwaitingRestart { .. }
        )
    }
}

/// Marks as reverted every applied change that an applied rollback or expiry undid,
/// whether or not its own journal says so (a crash may have come in between).
pub fn derive_reverted(listed: &mut [Listed]) {
    let undone: Vec<(ChangeId, ChangeId)> = listed
        .iter()
        .filter_map(|l| match l {
            Listed::Change(c) if c.state == ChangeState::Applied => Some(c),
            _ => None,
        })
        .flat_map(|c| {
            c.meta
                .rollback_of
                .iter()
                .chain(&c.meta.reverts)
                .map(|target| (target.clone(), c.id.clone()))
        })
        .collect();
    for (target, by) in undone {
        for l in listed.iter_mut() {
            if let Listed::Change(c) = l
                && c.id == target
                && c.state == ChangeState::Applied
            {
                c.state = ChangeState::Reverted { by: by.clone() };
            }
        }
    }
}

/// What a file of a change holds now, compared with the change's records: what
/// `ctrdiag changes` says of each file, so an interrupted change can be judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileState {
    /// The step never ran: the change did not touch it.
    Untouched,
    /// Its bytes from before the change (or absent, as before).
    Previous,
    /// What the change wrote (or moved away, for a move to the backup area).
    Changed,
    /// Neither: someone changed it since, or it is missing.
    Other,
}

impl FileState {
    pub fn name(self) -> &'static str {
        match self {
            FileState::Untouched => "untouched",
            FileState::Previous => "previous",
            FileState::Changed => "changed",
            FileState::Other => "other",
        }
    }
}

impl ChangeRecord {
    /// The state of step `step`'s file (`None`: the step has no file). `backup` is the
    /// saved original's bytes, `current` the file's bytes now (`None`: absent).
    pub fn file_state(
        &self,
        step: usize,
        backup: Option<&[u8]>,
        current: Option<&[u8]>,
    ) -> Option<(&std::path::Path, FileState)> {
        let started = self.started_steps().contains(&step);
        let existed = self.backup_of(step).map(|(existed, _)| existed);
        let (path, changed, previous) = match self.plan.steps.get(step)? {
            crate::plan::Step::WriteFile { path, after, .. } => {
                let previous = match existed {
                    Some(true) => backup.is_some() && current == backup,
                    _ => current.is_none(),
                };
                (path, current == Some(after.as_bytes()), previous)
            }
            crate::plan::Step::MoveToBackup { path, .. } => (
                path,
                current.is_none() && backup.is_some(),
                (current.is_some() && backup.is_none())
                    || (existed == Some(false) && current.is_none()),
            ),
            crate::plan::Step::RemoveImage { .. } | crate::plan::Step::RestartUnit { .. } => {
                return None;
            }
        };
        let state = match (started, changed, previous) {
            (false, _, _) => FileState::Untouched,
            (true, true, _) => FileState::Changed,
            (true, false, true) => FileState::Previous,
            (true, false, false) => FileState::Other,
        };
        Some((path.as_path(), state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Step;

    fn record(steps: Vec<Step>, events: Vec<Event>, meta: ChangeMeta) -> ChangeRecord {
        let plan = Plan {
            title: "t".into(),
            steps,
            verify_pull: None,
        };
        ChangeRecord::from_journal(ChangeId::at(0, 0), 0, plan, meta, events)
    }

    fn write(before: Option<&str>) -> Step {
        Step::WriteFile {
            path: "/etc/containerd/config.toml".into(),
            before: before.map(String::from),
            after: "new".into(),
            mode: 0o644,
            why: "w".into(),
        }
    }

    fn started(step: usize, existed: bool) -> Vec<Event> {
        vec![
            Event::Backup {
                step,
                existed,
                meta: None,
            },
            Event::Started { step },
        ]
    }

    #[test]
    fn a_file_is_previous_changed_or_other_by_its_bytes() {
        let r = record(
            vec![write(Some("old"))],
            started(0, true),
            ChangeMeta::plain(),
        );
        let of = |current: Option<&[u8]>| r.file_state(0, Some(b"old"), current).unwrap().1;
        assert_eq!(of(Some(b"old")), FileState::Previous);
        assert_eq!(of(Some(b"new")), FileState::Changed);
        assert_eq!(of(Some(b"edited by hand")), FileState::Other);
        assert_eq!(of(None), FileState::Other, "missing");
    }

    #[test]
    fn a_created_file_is_previous_while_absent_and_a_step_never_started_untouched() {
        let r = record(
            vec![write(None), write(None)],
            started(0, false),
            ChangeMeta::plain(),
        );
        assert_eq!(r.file_state(0, None, None).unwrap().1, FileState::Previous);
        assert_eq!(
            r.file_state(0, None, Some(b"new")).unwrap().1,
            FileState::Changed
        );
        assert_eq!(
            r.file_state(1, None, Some(b"x")).unwrap().1,
            FileState::Untouched
        );
    }

    #[test]
    fn a_moved_file_is_changed_while_only_its_backup_exists() {
        let step = Step::MoveToBackup {
            path: "/root/.docker/config.json".into(),
            why: "m".into(),
            sha256: None,
        };
        let r = record(vec![step], started(0, true), ChangeMeta::plain());
        assert_eq!(
            r.file_state(0, Some(b"c"), None).unwrap().1,
            FileState::Changed
        );
        assert_eq!(
            r.file_state(0, None, Some(b"c")).unwrap().1,
            FileState::Previous
        );
        assert_eq!(
            r.file_state(0, Some(b"c"), Some(b"d")).unwrap().1,
            FileState::Other
        );
    }

    #[test]
    fn a_change_waits_for_a_restart_only_while_that_is_its_last_event() {
        let meta = ChangeMeta {
            manual_restart: Some(ManualRestart {
                command: "systemctl restart k3s.service".into(),
                wait_secs: 600,
            }),
            ..ChangeMeta::plain()
        };
        let mut events = started(0, true);
        events.push(Event::Started { step: 1 });
        events.push(Event::AwaitingRestart {
            step: 1,
            containerd: Some("pid 7".into()),
            until_unix: 900,
        });
        let steps = vec![
            write(Some("old")),
            Step::RestartUnit {
                unit: "k3s.service".into(),
                why: "r".into(),
            },
        ];
        let waiting = record(steps.clone(), events.clone(), meta.clone());
        assert_eq!(
            waiting.state,
            ChangeState::AwaitingRestart {
                command: "systemctl restart k3s.service".into(),
                until_unix: 900
            }
        );
        assert!(waiting.state.is_unfinished());
        assert_eq!(waiting.not_restarted(1), Some(Some("pid 7")));
        events.push(Event::Done { step: 1 });
        assert_eq!(record(steps, events, meta).state, ChangeState::Interrupted);
    }
}
