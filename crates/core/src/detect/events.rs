//! The daemon's memory of what it detected: a bounded ring of events, identical repeats
//! folded within a window into one event with a count, and the problems that are live
//! per registry (a failing pull until a pull of that registry works again; a
//! certificate about to expire until it is renewed). Serialisable, so the daemon keeps
//! it across restarts; every text is passed through [`redact::secrets`] before it is
//! kept, so nothing secret is stored or shown.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::line::LineEvent;
use crate::cause::CauseCode;
use crate::redact;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    PullFailed,
    PullsRecovered,
    PluginFailed,
    ConfigWarning,
    ProbeFailed,
    CertificateExpiring,
    CertificateRenewed,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::PullFailed,
        EventKind::PullsRecovered,
        EventKind::PluginFailed,
        EventKind::ConfigWarning,
        EventKind::ProbeFailed,
        EventKind::CertificateExpiring,
        EventKind::CertificateRenewed,
    ];

    /// The stable name (API, JSON, metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PullFailed => "pull_failed",
            EventKind::PullsRecovered => "pulls_recovered",
            EventKind::PluginFailed => "plugin_failed",
            EventKind::ConfigWarning => "config_warning",
            EventKind::ProbeFailed => "probe_failed",
            EventKind::CertificateExpiring => "certificate_expiring",
            EventKind::CertificateRenewed => "certificate_renewed",
        }
    }
}

/// Something seen, before folding: from a log line, a probe or a certificate check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub kind: EventKind,
    pub image: Option<String>,
    pub host: Option<String>,
    pub cause: CauseCode,
    pub text: String,
    /// Unix time in milliseconds.
    pub at_ms: i64,
}

/// One event as listed and streamed; `count` identical observations folded into it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub id: u64,
    pub kind: EventKind,
    pub image: Option<String>,
    pub host: Option<String>,
    pub cause: CauseCode,
    pub text: String,
    pub first_ms: i64,
    pub last_ms: i64,
    pub count: u64,
}

/// What a live problem is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    /// Pulls (or probes) of the registry fail.
    Pulls,
    /// The registry's certificate expires soon.
    Certificate,
}

impl Area {
    pub fn as_str(self) -> &'static str {
        match self {
            Area::Pulls => "pulls",
            Area::Certificate => "certificate",
        }
    }
}

/// A registry that has a problem now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub host: String,
    pub area: Area,
    pub cause: CauseCode,
    /// The image of the latest failure (a fix's verifying pull uses it).
    pub image: Option<String>,
    pub since_ms: i64,
    pub last_ms: i64,
    pub failures: u64,
}

/// The bounded ring and the live problems.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventLog {
    capacity: usize,
    fold_window_ms: i64,
    next_id: u64,
    events: VecDeque<Event>,
    problems: BTreeMap<String, Vec<Problem>>,
}

impl EventLog {
    /// Keeps at most `capacity` events; repeats within `fold_window_ms` of an event's
    /// last sighting fold into it.
    pub fn new(capacity: usize, fold_window_ms: i64) -> EventLog {
        EventLog {
            capacity: capacity.max(1),
            fold_window_ms,
            next_id: 1,
            events: VecDeque::new(),
            problems: BTreeMap::new(),
        }
    }

    /// The same log with new bounds (settings changed across a restart).
    pub fn with_bounds(mut self, capacity: usize, fold_window_ms: i64) -> EventLog {
        self.capacity = capacity.max(1);
        self.fold_window_ms = fold_window_ms;
        while self.events.len() > self.capacity {
            self.events.pop_front();
        }
        self
    }

    /// Records a log line's meaning at `at_ms`; returns the events it created or updated.
    pub fn observe_line(&mut self, line: LineEvent, at_ms: i64) -> Vec<Event> {
        match line {
            LineEvent::PullFailed {
                image,
                host,
                cause,
                text,
            } => self.record(Observation {
                kind: EventKind::PullFailed,
                image: Some(image),
                host,
                cause,
                text,
                at_ms,
            }),
            LineEvent::PullSucceeded { image, host } => match host {
                Some(host) => self.recovered(&host, Area::Pulls, Some(image), at_ms),
                None => Vec::new(),
            },
            LineEvent::PluginFailed { cause, text } => self.record(Observation {
                kind: EventKind::PluginFailed,
                image: None,
                host: None,
                cause,
                text,
                at_ms,
            }),
            LineEvent::ConfigWarning { cause, text } => self.record(Observation {
                kind: EventKind::ConfigWarning,
                image: None,
                host: None,
                cause,
                text,
                at_ms,
            }),
        }
    }

    /// Records an observation; returns the events it created or updated. A failure
    /// opens (or extends) the registry's problem; a renewal closes a certificate one.
    pub fn record(&mut self, mut o: Observation) -> Vec<Event> {
        o.text = redact::secrets(&o.text);
        let area = match o.kind {
            EventKind::PullFailed | EventKind::ProbeFailed => Some(Area::Pulls),
            EventKind::CertificateExpiring => Some(Area::Certificate),
            EventKind::CertificateRenewed => {
                if let Some(host) = &o.host {
                    self.clear(host, Area::Certificate);
                }
                None
            }
            _ => None,
        };
        if let (Some(area), Some(host)) = (area, &o.host) {
            self.open(host, area, &o);
        }
        vec![self.fold_or_push(o)]
    }

    /// A pull or probe of `host` worked: its problem (if any) ends with an event.
    pub fn recovered(
        &mut self,
        host: &str,
        area: Area,
        image: Option<String>,
        at_ms: i64,
    ) -> Vec<Event> {
        let Some(p) = self.clear(host, area) else {
            return Vec::new();
        };
        let text = format!(
            "{} from {host} work again after {} failure{} ({})",
            if area == Area::Pulls {
                "pulls"
            } else {
                "checks"
            },
            p.failures,
            if p.failures == 1 { "" } else { "s" },
            p.cause
        );
        vec![self.fold_or_push(Observation {
            kind: EventKind::PullsRecovered,
            image,
            host: Some(host.to_string()),
            cause: p.cause,
            text,
            at_ms,
        })]
    }

    fn open(&mut self, host: &str, area: Area, o: &Observation) {
        let list = self.problems.entry(host.to_string()).or_default();
        match list.iter_mut().find(|p| p.area == area) {
            Some(p) => {
                p.cause = o.cause;
                p.last_ms = p.last_ms.max(o.at_ms);
                p.failures += 1;
                if o.image.is_some() {
                    p.image.clone_from(&o.image);
                }
            }
            None => list.push(Problem {
                host: host.to_string(),
                area,
                cause: o.cause,
                image: o.image.clone(),
                since_ms: o.at_ms,
                last_ms: o.at_ms,
                failures: 1,
            }),
        }
    }

    fn clear(&mut self, host: &str, area: Area) -> Option<Problem> {
        let list = self.problems.get_mut(host)?;
        let at = list.iter().position(|p| p.area == area)?;
        let p = list.remove(at);
        if list.is_empty() {
            self.problems.remove(host);
        }
        Some(p)
    }

    fn fold_or_push(&mut self, o: Observation) -> Event {
        let window = self.fold_window_ms;
        if let Some(e) = self.events.iter_mut().rev().find(|e| {
            e.kind == o.kind
                && e.cause == o.cause
                && e.host == o.host
                && e.image == o.image
                && e.text == o.text
                && (o.at_ms - e.last_ms).abs() <= window
        }) {
            e.count += 1;
            e.last_ms = e.last_ms.max(o.at_ms);
            return e.clone();
        }
        let event = Event {
            id: self.next_id,
            kind: o.kind,
            image: o.image,
            host: o.host,
            cause: o.cause,
            text: o.text,
            first_ms: o.at_ms,
            last_ms: o.at_ms,
            count: 1,
        };
        self.next_id += 1;
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.events.push_back(event.clone());
        event
    }

    /// Events last seen at or after `since_ms`, oldest first, optionally of one cause.
    pub fn events_since(
        &self,
        since_ms: i64,
        cause: Option<CauseCode>,
    ) -> impl Iterator<Item = &Event> {
        self.events
            .iter()
            .filter(move |e| e.last_ms >= since_ms && cause.is_none_or(|c| e.cause == c))
    }

    /// Live problems, by registry.
    pub fn problems(&self) -> impl Iterator<Item = &Problem> {
        self.problems.values().flatten()
    }

    /// The image of the most recent failed pull from `host`, for a fix's verifying pull.
    pub fn latest_failed_image(&self, host: &str) -> Option<&str> {
        self.events
            .iter()
            .rev()
            .filter(|e| e.kind == EventKind::PullFailed && e.host.as_deref() == Some(host))
            .max_by_key(|e| e.last_ms)
            .and_then(|e| e.image.as_deref())
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(host: &str, image: &str, cause: CauseCode) -> LineEvent {
        LineEvent::PullFailed {
            image: image.into(),
            host: Some(host.into()),
            cause,
            text: format!("failed to pull {image}: {cause}"),
        }
    }

    #[test]
    fn repeats_fold_within_the_window_and_not_beyond() {
        let mut log = EventLog::new(100, 60_000);
        let h = "r.test:5000";
        let first = log.observe_line(failed(h, "r.test:5000/a:1", CauseCode::TlsExpired), 1_000);
        let again = log.observe_line(failed(h, "r.test:5000/a:1", CauseCode::TlsExpired), 30_000);
        assert_eq!(first[0].id, again[0].id);
        assert_eq!(again[0].count, 2);
        assert_eq!((again[0].first_ms, again[0].last_ms), (1_000, 30_000));
        // 60 s after the last sighting is still inside; beyond it is a new event.
        let inside = log.observe_line(failed(h, "r.test:5000/a:1", CauseCode::TlsExpired), 90_000);
        assert_eq!((inside[0].id, inside[0].count), (first[0].id, 3));
        let later = log.observe_line(failed(h, "r.test:5000/a:1", CauseCode::TlsExpired), 150_001);
        assert_ne!(later[0].id, first[0].id);
        // Another image is another event even at the same moment.
        let other = log.observe_line(failed(h, "r.test:5000/b:1", CauseCode::TlsExpired), 150_001);
        assert_ne!(other[0].id, later[0].id);
        assert_eq!(log.len(), 3);
        let p: Vec<_> = log.problems().collect();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].failures, 5);
        assert_eq!(p[0].image.as_deref(), Some("r.test:5000/b:1"));
    }

    #[test]
    fn the_ring_is_bounded_and_keeps_the_newest() {
        let mut log = EventLog::new(3, 0);
        for i in 0..10 {
            log.observe_line(
                failed("r", &format!("r/a:{i}"), CauseCode::NotFound),
                i * 10,
            );
        }
        let images: Vec<_> = log
            .events_since(0, None)
            .map(|e| e.image.clone().unwrap())
            .collect();
        assert_eq!(images, ["r/a:7", "r/a:8", "r/a:9"]);
        assert_eq!(log.events_since(0, None).last().unwrap().id, 10);
    }

    #[test]
    fn a_working_pull_ends_the_problem_with_a_recovery_event() {
        let mut log = EventLog::new(100, 60_000);
        log.observe_line(failed("r", "r/a:1", CauseCode::TlsUnknownAuthority), 10);
        assert_eq!(log.latest_failed_image("r"), Some("r/a:1"));
        let none = log.observe_line(
            LineEvent::PullSucceeded {
                image: "q/a:1".into(),
                host: Some("q".into()),
            },
            20,
        );
        assert!(
            none.is_empty(),
            "another registry's success changes nothing"
        );
        let rec = log.observe_line(
            LineEvent::PullSucceeded {
                image: "r/a:1".into(),
                host: Some("r".into()),
            },
            30,
        );
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].kind, EventKind::PullsRecovered);
        assert_eq!(rec[0].cause, CauseCode::TlsUnknownAuthority);
        assert!(rec[0].text.contains("after 1 failure "), "{}", rec[0].text);
        assert_eq!(log.problems().count(), 0);
        let again = log.observe_line(
            LineEvent::PullSucceeded {
                image: "r/a:1".into(),
                host: Some("r".into()),
            },
            40,
        );
        assert!(again.is_empty(), "a second success is not news");
    }

    #[test]
    fn certificate_problems_are_their_own_and_end_on_renewal() {
        let mut log = EventLog::new(100, 60_000);
        let obs = |kind, at_ms| Observation {
            kind,
            image: None,
            host: Some("r".into()),
            cause: CauseCode::TlsExpired,
            text: "expires in 3 days".into(),
            at_ms,
        };
        log.record(obs(EventKind::CertificateExpiring, 1));
        log.observe_line(failed("r", "r/a:1", CauseCode::NotFound), 2);
        let areas: Vec<_> = log.problems().map(|p| p.area).collect();
        assert_eq!(areas, [Area::Certificate, Area::Pulls]);
        log.record(obs(EventKind::CertificateRenewed, 3));
        let areas: Vec<_> = log.problems().map(|p| p.area).collect();
        assert_eq!(areas, [Area::Pulls]);
    }

    #[test]
    fn filters_by_time_and_cause_and_keeps_no_secret() {
        let mut log = EventLog::new(100, 0);
        log.observe_line(failed("r", "r/a:1", CauseCode::NotFound), 10);
        log.observe_line(
            LineEvent::ConfigWarning {
                cause: CauseCode::ConfigIgnored,
                text: "invalid hosts.toml:\n[header]\nAuthorization = \"Basic hunter2\"\npassword = \"hunter2\"".into(),
            },
            20,
        );
        assert_eq!(log.events_since(15, None).count(), 1);
        assert_eq!(log.events_since(0, Some(CauseCode::NotFound)).count(), 1);
        let saved = serde_json::to_string(&log).unwrap();
        assert!(!saved.contains("hunter2"), "{saved}");
        let back: EventLog = serde_json::from_str(&saved).unwrap();
        assert_eq!(back, log);
    }
}
