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

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use ctrdiag_core::change::{
    BadChangeId, ChangeId, ChangeMeta, ChangeRecord, ChangeState, DamagedChange, Event, Listed,
    derive_reverted,
};

use super::Plan;
use super::fsops::{self, FsError};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("no change {id} in {}: list changes with `ctrdiag changes`", .dir.display())]
    NotFound { id: String, dir: PathBuf },
    #[error(transparent)]
    BadId(#[from] BadChangeId),
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct PlanFile {
    id: ChangeId,
    created_unix: u64,
    plan: Plan,
    #[serde(flatten)]
    meta: ChangeMeta,
}

/// A new change's id from the wall clock now.
fn new_change_id() -> ChangeId {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ChangeId::at(now.as_secs(), now.subsec_nanos())
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
        let id = new_change_id();
        let dir = base.join(id.as_str());
        // A symlink planted for the changes directory must not take the journal elsewhere.
        fsops::check_dir(&dir.join("plan.json"))?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(io("create", &dir))?;
        let created = Self::fill(&base, dir.clone(), id, plan, meta);
        if created.is_err() {
            // A record that could not be made whole (a full disk) is not left behind
            // to be listed as an interrupted change: nothing of the node was touched,
            // and everything in it was made just now by this call.
            let _ = std::fs::remove_dir_all(&dir);
        }
        created
    }

    /// Makes the new change directory `dir` durable with its plan, then opens its log.
    fn fill(
        base: &Path,
        dir: PathBuf,
        id: ChangeId,
        plan: &Plan,
        meta: ChangeMeta,
    ) -> Result<Journal, JournalError> {
        fsops::sync_dir(base)?;
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
        fsops::atomic_write(&dir.join("plan.json"), &json, fsops::private_meta())?;
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
        fsops::check_dir(&path)?;
        // Never through a symlink, never waiting on a FIFO: only a regular file is
        // appended to, so a planted link cannot make the journal write outside.
        let not_regular = || FsError::NotRegular { path: path.clone() };
        let log = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(&path)
            .map_err(|e| match e.raw_os_error() {
                Some(nix::libc::ELOOP) => not_regular().into(),
                _ => io("open", &path)(e),
            })?;
        if !log.metadata().map_err(io("inspect", &path))?.is_file() {
            return Err(not_regular().into());
        }
        let mut journal = Journal { id, dir, log };
        journal.cut_torn_tail()?;
        fsops::sync_dir(&journal.dir)?;
        Ok(journal)
    }

    /// Cuts a last line that a crash left without its newline, so the next event
    /// starts a line of its own (the reader already ignores such a tail).
    fn cut_torn_tail(&mut self) -> Result<(), JournalError> {
        let path = self.dir.join("journal.jsonl");
        let text = fsops::read_regular(&path)?
            .map(|(b, _)| b)
            .unwrap_or_default();
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
        let written = super::iofault::write_all("journal", &mut self.log, &line)
            .map_err(io("append to", &path))
            .and_then(|()| {
                super::iofault::inject("journal-fsync")
                    .and_then(|()| self.log.sync_data())
                    .map_err(io("fsync", &path))
            });
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

/// Reads one change.
pub fn load(state_dir: &Path, id: &ChangeId) -> Result<ChangeRecord, JournalError> {
    let dir = changes_dir(state_dir).join(id.as_str());
    let plan_path = dir.join("plan.json");
    // Read like any managed file: not through a symlink, not from a FIFO, bounded.
    let Some((text, _)) = fsops::read_regular(&plan_path)? else {
        return Err(JournalError::NotFound {
            id: id.to_string(),
            dir: changes_dir(state_dir),
        });
    };
    let file: PlanFile = serde_json::from_slice(&text).map_err(|e| JournalError::Damaged {
        path: plan_path.clone(),
        line: e.line(),
        message: e.to_string(),
    })?;
    let log_path = dir.join("journal.jsonl");
    let log = match fsops::read_regular(&log_path)? {
        None => String::new(),
        Some((bytes, _)) => String::from_utf8(bytes).map_err(|e| JournalError::Damaged {
            path: log_path.clone(),
            line: 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count(),
            message: "not UTF-8 text".into(),
        })?,
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
    Ok(ChangeRecord::from_journal(
        file.id,
        file.created_unix,
        file.plan,
        file.meta,
        events,
    ))
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
    derive_reverted(&mut listed);
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
    fn a_journal_planted_as_a_symlink_or_fifo_is_refused_and_nothing_outside_changes() {
        let (_d, state) = state_dir();
        let j = Journal::create(&state, &plan(), ChangeMeta::plain()).unwrap();
        let id = j.id.clone();
        let log = j.dir.join("journal.jsonl");
        drop(j);
        let outside = state.join("outside");
        std::fs::write(&outside, "precious\n").unwrap();
        std::fs::remove_file(&log).unwrap();
        std::os::unix::fs::symlink(&outside, &log).unwrap();
        assert!(matches!(
            Journal::open(&state, &id),
            Err(JournalError::Fs(FsError::NotRegular { .. }))
        ));
        assert!(matches!(
            load(&state, &id),
            Err(JournalError::Fs(FsError::NotRegular { .. }))
        ));
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious\n");
        std::fs::remove_file(&log).unwrap();
        nix::unistd::mkfifo(&log, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // No writer: reading a FIFO would wait forever.
        assert!(matches!(
            Journal::open(&state, &id),
            Err(JournalError::Fs(FsError::NotRegular { .. }))
        ));
        let listed = list(&state).unwrap();
        assert!(
            matches!(&listed[..], [Listed::Damaged(d)] if d.problem.contains("journal.jsonl")),
            "{listed:?}"
        );
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
        std::io::Write::write_all(&mut f, b"{\"event\":\"do").unwrap();
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
