//! When insecure settings end. Changes turning on the same setting for the same
//! registry end together, when the last of their times to live is over (two
//! `--insecure-skip-verify --ttl` fixes keep verification off until the later one
//! ends), and never while one of them has no time to live at all. A failed end is
//! tried again after a growing pause. Pure: the daemon's expiry flow asks these rules
//! with the clock's "now".

use std::collections::{BTreeMap, BTreeSet};

use crate::change::{ChangeId, ChangeRecord, ChangeState};
use crate::plan::InsecureSetting;

/// First wait after a failed end, doubled after each further failure.
pub const FIRST_RETRY_SECS: u64 = 30;
/// Longest wait between two tries.
pub const MAX_RETRY_SECS: u64 = 15 * 60;

/// When a setting given `ttl` at `now` (Unix seconds) must end: the time to live
/// counts from the request.
pub fn expires_at(now: u64, ttl: Option<std::time::Duration>) -> Option<u64> {
    ttl.map(|t| now + t.as_secs())
}

/// The applied changes whose insecure setting should have ended by `now` and has not:
/// the ones an operator must hear about. A change whose own time to live is over
/// while a later change keeps the same setting on is not among them.
pub fn overdue(changes: &[ChangeRecord], now: u64) -> BTreeSet<ChangeId> {
    groups(changes)
        .into_values()
        .filter(|group| due_at(group).is_some_and(|due| due <= now))
        .flatten()
        .map(|c| c.id.clone())
        .collect()
}

/// The applied changes that turn each insecure setting on.
pub fn groups(changes: &[ChangeRecord]) -> BTreeMap<InsecureSetting, Vec<&ChangeRecord>> {
    let mut out: BTreeMap<InsecureSetting, Vec<&ChangeRecord>> = BTreeMap::new();
    for c in changes {
        if c.state != ChangeState::Applied {
            continue;
        }
        if let Some(setting) = &c.meta.insecure {
            out.entry(setting.clone()).or_default().push(c);
        }
    }
    out
}

/// When a setting ends: at the last of its changes' times to live; never while one of
/// them has none.
pub fn due_at(group: &[&ChangeRecord]) -> Option<u64> {
    group
        .iter()
        .map(|c| c.expires_unix())
        .collect::<Option<Vec<u64>>>()?
        .into_iter()
        .max()
}

/// 30 s, 60 s, 120 s, ... up to 15 minutes.
pub fn retry_delay(failures: u32) -> u64 {
    FIRST_RETRY_SECS
        .saturating_mul(1u64 << failures.saturating_sub(1).min(10))
        .min(MAX_RETRY_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{ChangeMeta, ChangeState, InsecureMode, InsecureSetting, Plan};

    fn change(id: &str, host: &str, expires: Option<u64>) -> ChangeRecord {
        ChangeRecord {
            id: id.parse().unwrap(),
            created_unix: 0,
            plan: Plan {
                title: "t".into(),
                steps: Vec::new(),
                verify_pull: None,
            },
            meta: ChangeMeta {
                insecure: Some(InsecureSetting {
                    host: host.into(),
                    mode: InsecureMode::SkipVerify,
                }),
                expires_unix: expires,
                ..ChangeMeta::plain()
            },
            state: ChangeState::Applied,
            events: Vec::new(),
        }
    }

    #[test]
    fn a_setting_ends_with_the_last_time_to_live_and_never_without_one() {
        let a = change("a1", "r:5000", Some(100));
        let b = change("b1", "r:5000", Some(300));
        let other = change("c1", "q:5000", Some(50));
        let all = [a.clone(), b.clone(), other];
        let g = groups(&all);
        assert_eq!(g.len(), 2);
        let r = g.iter().find(|(s, _)| s.host == "r:5000").unwrap().1;
        assert_eq!(due_at(r), Some(300));
        let forever = change("d1", "r:5000", None);
        assert_eq!(due_at(&[&a, &forever]), None);
    }

    #[test]
    fn a_change_is_overdue_only_when_its_setting_should_have_ended() {
        let a = change("a1", "r:5000", Some(100));
        let b = change("b1", "r:5000", Some(300));
        let all = [a, b];
        assert!(
            overdue(&all, 200).is_empty(),
            "b keeps the setting until 300"
        );
        assert_eq!(overdue(&all, 300).len(), 2);
    }

    #[test]
    fn only_applied_changes_keep_a_setting() {
        let mut undone = change("a1", "r:5000", Some(100));
        undone.state = ChangeState::RolledBack { reason: "x".into() };
        assert!(groups(&[undone]).is_empty());
    }

    #[test]
    fn retries_back_off_to_a_ceiling() {
        assert_eq!(retry_delay(1), 30);
        assert_eq!(retry_delay(2), 60);
        assert_eq!(retry_delay(4), 240);
        assert_eq!(retry_delay(40), MAX_RETRY_SECS);
    }
}
