//! The change journal under the state directory: one directory per change holding
//! the plan, an append-only log of what the executor did (fsynced before each
//! action), and backups of everything it replaced or moved away.
//!
//! ```text
//! <state_dir>/changes/<id>/plan.json      the plan and when it was made
//! <state_dir>/changes/<id>/journal.jsonl  one JSON event a line
//! <state_dir>/changes/<id>/backup/<step>  the bytes a step replaced or moved
//! ```
//!
//! Each journal line is written whole, newline-terminated and fsynced; a line a crash
//! or a full disk cut short is cut off before the next append, so later events never
//! glue onto it. A change whose files cannot be read is listed as damaged and never
//! stops the reading of the others.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::fsops::{self, FileMeta, FsError};
use super::{InsecureSetting, Plan};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("no change {id} in {}: list changes with `ctrdiag changes`", .dir.display())]
    NotFound { id: String, dir: PathBuf },
    #[error("change id {0:?} is not valid: ids look like 20261129T001500-123456789")]
    BadId(String),
    #[error("journal {} is damaged at line {line}: {message}; move the change directory away to continue", .path.display())]
    Damaged {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error(transparent)]
    Fs(#[from] FsError),
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> JournalError {
    let path = path.to_path_buf();
    move |source| JournalError::Io {
        action,
        path,
        source,
    }
}

/// A change's id: UTC time of creation plus a few hex digits, so ids sort by age and
/// are safe as directory names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChangeId(String);

impl ChangeId {
    fn generate() -> ChangeId {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let stamp = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + now)
            .to_string()
            .replace(['-', ':'], "")
            .trim_end_matches('Z')
            .to_string();
        // Nanoseconds keep ids of the same second apart and in order.
        ChangeId(format!("{stamp}-{:09}", now.subsec_nanos()))
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
    type Err = JournalError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !s.starts_with('-');
        if ok {
            Ok(ChangeId(s.to_string()))
        } else {
            Err(JournalError::BadId(s.chars().take(80).collect()))
        }
    }
}

impl TryFrom<String> for ChangeId {
    type Error = JournalError;
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
}

impl ChangeMeta {
    /// A change with no relation to others and no insecure setting.
    pub fn plain() -> ChangeMeta {
        ChangeMeta::default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PlanFile {
    id: ChangeId,
    created_unix: u64,
    plan: Plan,
    #[serde(flatten)]
    meta: ChangeMeta,
}

/// Where a change stands, from its journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ChangeState {
    /// Started and never finished: the daemon stopped in the middle.
    Interrupted,
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

fn changes_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("changes")
}

/// An open change directory the executor appends to.
pub struct Journal {
    pub id: ChangeId,
    dir: PathBuf,
    log: std::fs::File,
}

impl Journal {
    /// Creates a new change for `plan`; the plan and `meta` (with the expiry of an
    /// insecure setting) are durable before anything runs.
    pub fn create(
        state_dir: &Path,
        plan: &Plan,
        meta: ChangeMeta,
    ) -> Result<Journal, JournalError> {
        let base = changes_dir(state_dir);
        fsops::create_dirs(&base, 0o700)?;
        let id = ChangeId::generate();
        let dir = base.join(id.as_str());
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io("create", &dir))?;
        fsops::sync_dir(&base)?;
        let file = PlanFile {
            id: id.clone(),
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            plan: plan.clone(),
            meta,
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| io("encode", &dir)(e.into()))?;
        fsops::atomic_write(&dir.join("plan.json"), &json, FileMeta::private())?;
        Self::open_dir(id, dir)
    }

    /// Reopens an existing change to append to it (recovery, rollback).
    pub fn open(state_dir: &Path, id: &ChangeId) -> Result<Journal, JournalError> {
        let dir = changes_dir(state_dir).join(id.as_str());
        if !dir.join("plan.json").is_file() {
            return Err(JournalError::NotFound {
                id: id.to_string(),
                dir: changes_dir(state_dir),
            });
        }
        Self::open_dir(id.clone(), dir)
    }

    fn open_dir(id: ChangeId, dir: PathBuf) -> Result<Journal, JournalError> {
        let path = dir.join("journal.jsonl");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io("open", &path))?;
        let mut journal = Journal { id, dir, log };
        journal.cut_torn_tail()?;
        fsops::sync_dir(&journal.dir)?;
        Ok(journal)
    }

    /// Cuts a last line that a crash left without its newline, so the next event
    /// starts a line of its own (the reader already ignores such a tail).
    fn cut_torn_tail(&mut self) -> Result<(), JournalError> {
        let path = self.dir.join("journal.jsonl");
        let text = std::fs::read(&path).map_err(io("read", &path))?;
        if text.is_empty() || text.ends_with(b"\n") {
            return Ok(());
        }
        let keep = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        self.truncate(keep as u64)
    }

    fn truncate(&mut self, len: u64) -> Result<(), JournalError> {
        let path = self.dir.join("journal.jsonl");
        self.log.set_len(len).map_err(io("truncate", &path))?;
        self.log.sync_data().map_err(io("fsync", &path))
    }

    /// Appends one event as one whole line and fsyncs it: when this returns, the
    /// event survives a crash. A write that fails half-way (ENOSPC, EIO) is cut off
    /// again, so the journal never holds half a line followed by more events.
    pub fn append(&mut self, event: &Event) -> Result<(), JournalError> {
        let path = self.dir.join("journal.jsonl");
        let mut line = serde_json::to_vec(event).map_err(|e| io("encode", &path)(e.into()))?;
        line.push(b'\n');
        let len = self.log.metadata().map_err(io("inspect", &path))?.len();
        let written = self
            .log
            .write_all(&line)
            .map_err(io("append to", &path))
            .and_then(|()| self.log.sync_data().map_err(io("fsync", &path)));
        if written.is_err() {
            let _ = self.truncate(len);
        }
        written
    }

    /// Where step `step`'s backup lives.
    pub fn backup_path(&self, step: usize) -> PathBuf {
        self.backup_dir().join(step.to_string())
    }

    /// Where this change keeps what it replaced or moved away.
    pub fn backup_dir(&self) -> PathBuf {
        self.dir.join("backup")
    }
}

/// Where change `id` keeps what it replaced or moved away.
pub fn backup_dir_of(state_dir: &Path, id: &ChangeId) -> PathBuf {
    changes_dir(state_dir).join(id.as_str()).join("backup")
}

/// One change as [`list`] sees it (its state derived from the others too).
pub fn find(state_dir: &Path, id: &ChangeId) -> Result<Listed, JournalError> {
    list(state_dir)?
        .into_iter()
        .find(|l| l.id() == id)
        .ok_or_else(|| JournalError::NotFound {
            id: id.to_string(),
            dir: changes_dir(state_dir),
        })
}

impl Journal {}

/// Reads one change.
pub fn load(state_dir: &Path, id: &ChangeId) -> Result<ChangeRecord, JournalError> {
    let dir = changes_dir(state_dir).join(id.as_str());
    let plan_path = dir.join("plan.json");
    let text = match std::fs::read(&plan_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(JournalError::NotFound {
                id: id.to_string(),
                dir: changes_dir(state_dir),
            });
        }
        Err(e) => return Err(io("read", &plan_path)(e)),
    };
    let file: PlanFile = serde_json::from_slice(&text).map_err(|e| JournalError::Damaged {
        path: plan_path.clone(),
        line: e.line(),
        message: e.to_string(),
    })?;
    let log_path = dir.join("journal.jsonl");
    let log = match std::fs::read_to_string(&log_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io("read", &log_path)(e)),
    };
    let mut events = Vec::new();
    let lines: Vec<&str> = log.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str::<Event>(line) {
            Ok(e) => events.push(e),
            // A crash can cut the last line short; the events before it still hold.
            Err(_) if i + 1 == lines.len() && !log.ends_with('\n') => break,
            Err(e) => {
                return Err(JournalError::Damaged {
                    path: log_path,
                    line: i + 1,
                    message: e.to_string(),
                });
            }
        }
    }
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
        .unwrap_or(ChangeState::Interrupted);
    Ok(ChangeRecord {
        id: file.id,
        created_unix: file.created_unix,
        plan: file.plan,
        state,
        meta: file.meta,
        events,
    })
}

/// Every change, oldest first; a change that cannot be read is listed as damaged
/// rather than failing the listing. A change that an applied rollback or expiry undid
/// is reverted even if the crash came before that was noted in its own journal.
pub fn list(state_dir: &Path) -> Result<Vec<Listed>, JournalError> {
    let base = changes_dir(state_dir);
    let entries = match std::fs::read_dir(&base) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("list", &base)(e)),
    };
    let mut ids: Vec<ChangeId> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    ids.sort();
    // A directory without plan.json is a change being created right now (or one a crash
    // cut short before anything ran): nothing to list yet.
    ids.retain(|id| base.join(id.as_str()).join("plan.json").is_file());
    let mut listed: Vec<Listed> = ids
        .into_iter()
        .map(|id| match load(state_dir, &id) {
            Ok(c) => Listed::Change(Box::new(c)),
            Err(e) => Listed::Damaged(DamagedChange {
                id,
                problem: e.to_string(),
            }),
        })
        .collect();
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
        for l in &mut listed {
            if let Listed::Change(c) = l
                && c.id == target
                && c.state == ChangeState::Applied
            {
                c.state = ChangeState::Reverted { by: by.clone() };
            }
        }
    }
    Ok(listed)
}

/// The readable changes of [`list`], oldest first.
pub fn changes(state_dir: &Path) -> Result<Vec<ChangeRecord>, JournalError> {
    Ok(list(state_dir)?
        .into_iter()
        .filter_map(|l| match l {
            Listed::Change(c) => Some(*c),
            Listed::Damaged(_) => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            title: "t".into(),
            steps: Vec::new(),
            verify_pull: None,
        }
    }

    fn state_dir() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = std::fs::canonicalize(dir.path()).unwrap();
        (dir, path)
    }

    #[test]
    fn a_torn_last_line_is_cut_before_the_next_event() {
        let (_d, state) = state_dir();
        let mut j = Journal::create(&state, &plan(), ChangeMeta::plain()).unwrap();
        j.append(&Event::Started { step: 0 }).unwrap();
        let log = j.dir.join("journal.jsonl");
        drop(j);
        // A crash in the middle of writing the next line.
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        f.write_all(b"{\"event\":\"do").unwrap();
        let id = list(&state).unwrap()[0].id().clone();
        let mut j = Journal::open(&state, &id).unwrap();
        j.append(&Event::Applied).unwrap();
        let c = load(&state, &id).unwrap();
        assert_eq!(c.events, [Event::Started { step: 0 }, Event::Applied]);
        assert_eq!(c.state, ChangeState::Applied);
    }

    #[test]
    fn a_damaged_change_is_listed_and_the_others_still_read() {
        let (_d, state) = state_dir();
        let good = Journal::create(&state, &plan(), ChangeMeta::plain())
            .unwrap()
            .id;
        let bad = Journal::create(&state, &plan(), ChangeMeta::plain()).unwrap();
        std::fs::write(
            bad.dir.join("journal.jsonl"),
            "garbage\n{\"event\":\"applied\"}\n",
        )
        .unwrap();
        let listed = list(&state).unwrap();
        assert_eq!(listed.len(), 2);
        assert!(matches!(&listed[0], Listed::Change(c) if c.id == good));
        match &listed[1] {
            Listed::Damaged(d) => {
                assert_eq!(d.id, bad.id);
                assert!(d.problem.contains("line 1"), "{}", d.problem);
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(bad.dir.join("plan.json"), "{").unwrap();
        assert!(matches!(&list(&state).unwrap()[1], Listed::Damaged(_)));
    }

    #[test]
    fn the_expiry_is_in_the_first_record() {
        let (_d, state) = state_dir();
        let meta = ChangeMeta {
            expires_unix: Some(1234),
            ..ChangeMeta::plain()
        };
        let id = Journal::create(&state, &plan(), meta).unwrap().id;
        // Nothing appended yet (a crash right after creation): the expiry is known.
        assert_eq!(load(&state, &id).unwrap().expires_unix(), Some(1234));
    }

    #[test]
    fn an_applied_rollback_reverts_its_target_even_without_the_note() {
        let (_d, state) = state_dir();
        let mut target = Journal::create(&state, &plan(), ChangeMeta::plain()).unwrap();
        target.append(&Event::Applied).unwrap();
        let meta = ChangeMeta {
            rollback_of: Some(target.id.clone()),
            ..ChangeMeta::plain()
        };
        let mut rollback = Journal::create(&state, &plan(), meta).unwrap();
        rollback.append(&Event::Applied).unwrap();
        // The crash came before `Reverted` reached the target's own journal.
        let c = changes(&state).unwrap();
        assert_eq!(
            c[0].state,
            ChangeState::Reverted {
                by: rollback.id.clone()
            }
        );
    }
}
