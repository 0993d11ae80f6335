//! The change journal under the state directory: one directory per change holding
//! the plan, an append-only log of what the executor did (fsynced before each
//! action), and backups of everything it replaced or moved away.
//!
//! ```text
//! <state_dir>/changes/<id>/plan.json      the plan and when it was made
//! <state_dir>/changes/<id>/journal.jsonl  one JSON event a line
//! <state_dir>/changes/<id>/backup/<step>  the bytes a step replaced or moved
//! ```

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Plan;
use super::fsops::{self, FileMeta, FsError};

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
    /// The change is to be rolled back at this Unix time (insecure settings' TTL).
    Expires {
        unix: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PlanFile {
    id: ChangeId,
    created_unix: u64,
    plan: Plan,
    /// Set when this change is the rollback of another.
    rollback_of: Option<ChangeId>,
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
}

/// A change as `ctrdiag changes` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeRecord {
    pub id: ChangeId,
    pub created_unix: u64,
    pub plan: Plan,
    pub rollback_of: Option<ChangeId>,
    pub state: ChangeState,
    pub events: Vec<Event>,
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

    /// When the change is due to be rolled back, if it has a time to live.
    pub fn expires_unix(&self) -> Option<u64> {
        self.events.iter().rev().find_map(|e| match e {
            Event::Expires { unix } => Some(*unix),
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
    /// Creates a new change for `plan`; the plan is durable before anything runs.
    pub fn create(
        state_dir: &Path,
        plan: &Plan,
        rollback_of: Option<ChangeId>,
    ) -> Result<Journal, JournalError> {
        let base = changes_dir(state_dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&base)
            .map_err(io("create", &base))?;
        let id = ChangeId::generate();
        let dir = base.join(id.as_str());
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io("create", &dir))?;
        let file = PlanFile {
            id: id.clone(),
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            plan: plan.clone(),
            rollback_of,
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
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(io("open", &path))?;
        fsops::sync_dir(&dir)?;
        Ok(Journal { id, dir, log })
    }

    /// Appends one event and fsyncs it: when this returns, the event survives a crash.
    pub fn append(&mut self, event: &Event) -> Result<(), JournalError> {
        let path = self.dir.join("journal.jsonl");
        let mut line = serde_json::to_vec(event).map_err(|e| io("encode", &path)(e.into()))?;
        line.push(b'\n');
        self.log.write_all(&line).map_err(io("append to", &path))?;
        self.log.sync_data().map_err(io("fsync", &path))
    }

    /// Where step `step`'s backup lives.
    pub fn backup_path(&self, step: usize) -> PathBuf {
        self.dir.join("backup").join(step.to_string())
    }
}

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
            _ => None,
        })
        .unwrap_or(ChangeState::Interrupted);
    Ok(ChangeRecord {
        id: file.id,
        created_unix: file.created_unix,
        plan: file.plan,
        rollback_of: file.rollback_of,
        state,
        events,
    })
}

/// Every change, oldest first.
pub fn list(state_dir: &Path) -> Result<Vec<ChangeRecord>, JournalError> {
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
    ids.iter().map(|id| load(state_dir, id)).collect()
}
