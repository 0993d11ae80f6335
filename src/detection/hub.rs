//! The daemon's detection state: the core's [`EventLog`] behind a lock, a broadcast of
//! every new or updated event for `Watch` streams, the metrics, and the state file
//! that lets a restarted daemon resume the log where it stopped.
//!
//! The state file (`<state_dir>/detection.json`, root-only) holds the log position and
//! the events *together*, written atomically: after a crash the daemon re-reads exactly
//! the lines after the saved position, whose events are not in the saved log, so
//! nothing is lost and nothing is counted twice. It is written at most once a second
//! while lines arrive, at once when the source starts somewhere new, and at shutdown.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::cause::CauseCode;
use crate::detect::{Area, Event, EventLog, Observation, Problem, read_line};
use crate::logsource::{LogLine, Position};
use crate::metrics::{DetectionGauges, Metrics};
use crate::plan::fsops;

/// Events kept in memory (and in the state file).
pub const CAPACITY: usize = 1000;
/// Identical events within this window fold into one with a count.
pub const FOLD_WINDOW: Duration = Duration::from_secs(300);
/// Events a slow `Watch` client may fall behind before it is told it missed some.
const WATCH_BUFFER: usize = 256;
const SAVE_EVERY: Duration = Duration::from_secs(1);
const STATE_FILE: &str = "detection.json";

/// What `status` says of detection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetectionStatus {
    /// The log followed, as people read it (`journal (unit containerd.service)`), or
    /// empty when detection from the log is off.
    pub source: String,
    pub following: bool,
    /// Why the source stopped, while it is down (it is restarted with backoff).
    pub error: String,
    pub lines_read: u64,
    pub events: usize,
}

/// A registry certificate's expiry as the last probe saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateSeen {
    pub host: String,
    pub not_after_unix: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    position: Option<Position>,
    log: Option<EventLog>,
    #[serde(default)]
    certificates: Vec<CertificateSeen>,
    #[serde(default)]
    last_probe_ok: Vec<(String, i64)>,
}

struct State {
    log: EventLog,
    position: Option<Position>,
    certificates: Vec<CertificateSeen>,
    last_probe_ok: Vec<(String, i64)>,
    status: DetectionStatus,
    dirty: bool,
    saved_at: Instant,
}

/// Shared by the follower, the probes, the controller and the service.
pub struct EventHub {
    state: Mutex<State>,
    tx: broadcast::Sender<Event>,
    metrics: Arc<Metrics>,
    state_file: Option<PathBuf>,
    closing: CancellationToken,
}

impl EventHub {
    /// A hub that keeps nothing on disk (controller unit tests, `containerd_log = "off"`
    /// still uses the file).
    pub fn in_memory(metrics: Arc<Metrics>) -> Arc<EventHub> {
        Arc::new(EventHub::build(None, Saved::default(), metrics))
    }

    /// The hub of a daemon whose state lives in `state_dir`. A state file that cannot
    /// be read is moved aside (never deleted) and detection starts fresh.
    pub fn open(state_dir: &Path, metrics: Arc<Metrics>) -> Arc<EventHub> {
        let path = state_dir.join(STATE_FILE);
        let saved = match fsops::read_regular(&path) {
            Ok(None) => Saved::default(),
            Ok(Some((bytes, _))) => match serde_json::from_slice::<Saved>(&bytes) {
                Ok(saved) => saved,
                Err(e) => {
                    let aside = state_dir.join(format!("{STATE_FILE}.damaged-{}", now_ms()));
                    tracing::error!(file = %path.display(), error = %e, moved_to = %aside.display(),
                        "detection state is damaged; starting from the log's end");
                    let _ = fsops::move_file(&path, &aside);
                    Saved::default()
                }
            },
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "cannot read detection state; starting from the log's end");
                Saved::default()
            }
        };
        Arc::new(EventHub::build(Some(path), saved, metrics))
    }

    fn build(state_file: Option<PathBuf>, saved: Saved, metrics: Arc<Metrics>) -> EventHub {
        let log = saved
            .log
            .map(|l| l.with_bounds(CAPACITY, FOLD_WINDOW.as_millis() as i64))
            .unwrap_or_else(|| EventLog::new(CAPACITY, FOLD_WINDOW.as_millis() as i64));
        EventHub {
            state: Mutex::new(State {
                log,
                position: saved.position,
                certificates: saved.certificates,
                last_probe_ok: saved.last_probe_ok,
                status: DetectionStatus::default(),
                dirty: false,
                saved_at: Instant::now(),
            }),
            tx: broadcast::channel(WATCH_BUFFER).0,
            metrics,
            state_file,
            closing: CancellationToken::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where the follower should resume: just after the last line processed.
    pub fn position(&self) -> Option<Position> {
        self.lock().position.clone()
    }

    /// The follower started reading `source` at `from` (`None`: its current end).
    pub fn following(&self, source: &str, from: Option<Position>) {
        let mut s = self.lock();
        s.status.source = source.to_string();
        s.status.following = true;
        s.status.error.clear();
        let moved = s.position != from;
        s.position = from;
        if moved {
            s.dirty = true;
            self.save_locked(&mut s);
        }
    }

    /// The follower's source failed; it is retried.
    pub fn follower_down(&self, source: &str, error: &str) {
        let mut s = self.lock();
        s.status.source = source.to_string();
        s.status.following = false;
        s.status.error = error.to_string();
    }

    /// Lines read from the log, in order: each one that means something becomes (or
    /// updates) an event, and the position moves past them.
    pub fn lines(&self, lines: Vec<LogLine>) {
        let Some(last) = lines.last().map(|l| l.position.clone()) else {
            return;
        };
        self.metrics.log_lines(lines.len() as u64);
        let candidates = candidates(&lines);
        let mut s = self.lock();
        s.status.lines_read += lines.len() as u64;
        for i in candidates {
            let line = &lines[i];
            if let Some(meaning) = read_line(&line.text) {
                let at = line.time.map_or_else(now_ms, unix_ms);
                for e in s.log.observe_line(meaning, at) {
                    self.announce(&e);
                }
            }
        }
        s.position = Some(last);
        s.dirty = true;
        if s.saved_at.elapsed() >= SAVE_EVERY {
            self.save_locked(&mut s);
        }
    }

    /// A probe's or a certificate check's observation.
    pub fn record(&self, o: Observation) -> Vec<Event> {
        let mut s = self.lock();
        let events = s.log.record(o);
        for e in &events {
            self.announce(e);
        }
        s.dirty = true;
        events
    }

    /// A probe of `host` worked: a pull problem ends, and the time is kept.
    pub fn probe_ok(&self, host: &str, image: Option<String>) -> Vec<Event> {
        let mut s = self.lock();
        let at = now_ms();
        let events = s.log.recovered(host, Area::Pulls, image, at);
        for e in &events {
            self.announce(e);
        }
        s.last_probe_ok.retain(|(h, _)| h != host);
        s.last_probe_ok.push((host.to_string(), at / 1000));
        s.dirty = true;
        events
    }

    /// The registry certificate's expiry as a probe saw it; the previous value.
    pub fn certificate_seen(&self, host: &str, not_after_unix: i64) -> Option<i64> {
        let mut s = self.lock();
        let before = s
            .certificates
            .iter()
            .position(|c| c.host == host)
            .map(|i| s.certificates.remove(i).not_after_unix);
        s.certificates.push(CertificateSeen {
            host: host.to_string(),
            not_after_unix,
        });
        s.dirty = true;
        before
    }

    pub fn certificates(&self) -> Vec<CertificateSeen> {
        self.lock().certificates.clone()
    }

    fn announce(&self, e: &Event) {
        self.metrics
            .detected(e.kind.as_str(), e.cause, e.host.as_deref());
        // No receiver is fine: nobody is watching.
        let _ = self.tx.send(e.clone());
        tracing::info!(kind = e.kind.as_str(), cause = %e.cause, host = e.host, image = e.image, count = e.count, "detected");
    }

    /// New and updated events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Completes when the daemon starts to stop: `Watch` streams end then, so they
    /// cannot hold the shutdown.
    pub fn closing(&self) -> CancellationToken {
        self.closing.clone()
    }

    /// Events last seen within `since` (all when `None`), optionally of one cause.
    pub fn events(&self, since: Option<Duration>, cause: Option<CauseCode>) -> Vec<Event> {
        let from = since.map_or(i64::MIN, |d| now_ms() - d.as_millis() as i64);
        self.lock().log.events_since(from, cause).cloned().collect()
    }

    pub fn problems(&self) -> Vec<Problem> {
        self.lock().log.problems().cloned().collect()
    }

    pub fn status(&self) -> DetectionStatus {
        let s = self.lock();
        DetectionStatus {
            events: s.log.len(),
            ..s.status.clone()
        }
    }

    /// The image of the most recent failed pull from `host`.
    pub fn latest_failed_image(&self, host: &str) -> Option<String> {
        self.lock()
            .log
            .latest_failed_image(host)
            .map(str::to_string)
    }

    /// The gauges of a scrape.
    pub fn gauges(&self) -> DetectionGauges {
        let s = self.lock();
        DetectionGauges {
            log_follower: ["journal", "file"]
                .into_iter()
                .find(|kind| s.status.source.starts_with(kind))
                .map(|kind| (kind, s.status.following)),
            problems: s
                .log
                .problems()
                .map(|p| (p.host.clone(), p.area.as_str(), p.cause))
                .collect(),
            certificate_expiry: s
                .certificates
                .iter()
                .map(|c| (c.host.clone(), c.not_after_unix))
                .collect(),
            last_successful_probe: s.last_probe_ok.clone(),
        }
    }

    /// Starts the shutdown: streams end, and the state is written.
    pub fn close(&self) {
        self.closing.cancel();
        let mut s = self.lock();
        self.save_locked(&mut s);
    }

    /// Writes the state if anything changed since the last write.
    pub fn save(&self) {
        let mut s = self.lock();
        self.save_locked(&mut s);
    }

    fn save_locked(&self, s: &mut State) {
        let Some(path) = &self.state_file else {
            return;
        };
        if !s.dirty {
            return;
        }
        let saved = SavedRef {
            position: &s.position,
            log: &s.log,
            certificates: &s.certificates,
            last_probe_ok: &s.last_probe_ok,
        };
        let result = serde_json::to_vec(&saved)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                fsops::atomic_write(path, &bytes, fsops::private_meta()).map_err(|e| e.to_string())
            });
        match result {
            Ok(()) => s.dirty = false,
            // Kept dirty: the next batch tries again. The file on disk still holds an
            // older position with its own events, so a crash now repeats nothing.
            Err(e) => {
                tracing::error!(file = %path.display(), error = e, "cannot save detection state")
            }
        }
        s.saved_at = Instant::now();
    }
}

/// The lines of a batch that may mean something, in order: those the log scanner
/// finds (an error or warning line with a known cause, or a failed pull: the scanner
/// `logscan_vs_grep` measures), and the few info lines of a successful pull, which end
/// a registry's problem. Everything else is skipped without being read field by field.
fn candidates(lines: &[LogLine]) -> Vec<usize> {
    use memchr::memmem;
    let mut text = Vec::with_capacity(lines.iter().map(|l| l.text.len() + 1).sum());
    let mut starts = Vec::with_capacity(lines.len());
    for l in lines {
        starts.push(text.len());
        text.extend_from_slice(l.text.as_bytes());
        text.push(b'\n');
    }
    let line_at = |at: usize| starts.partition_point(|&s| s <= at) - 1;
    let mut found = Vec::new();
    crate::diagnose::logscan::scan(&text, |f| found.push(line_at(f.offset)));
    for needle in [&b"returns image reference"[..], b"Pulled image "] {
        found.extend(memmem::find_iter(&text, needle).map(line_at));
    }
    found.sort_unstable();
    found.dedup();
    found
}

/// [`Saved`] by reference, so a save does not copy the ring.
#[derive(Serialize)]
struct SavedRef<'a> {
    position: &'a Option<Position>,
    log: &'a EventLog,
    certificates: &'a Vec<CertificateSeen>,
    last_probe_ok: &'a Vec<(String, i64)>,
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Detection keeps real time in milliseconds (log lines carry no injected clock).
pub fn now_ms() -> i64 {
    unix_ms(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::EventKind;

    fn batch(texts: &[&str]) -> Vec<LogLine> {
        texts
            .iter()
            .enumerate()
            .map(|(i, t)| LogLine {
                text: (*t).to_string(),
                position: Position::File {
                    inode: 1,
                    offset: i as u64 + 1,
                },
                time: None,
            })
            .collect()
    }

    #[test]
    fn the_scanner_path_finds_every_kind_of_line_in_a_busy_batch() {
        let hub = EventHub::in_memory(Metrics::new());
        hub.lines(batch(&[
            r#"time="t" level=info msg="ImageCreate event name:\"sha256:0\"""#,
            r#"time="t" level=error msg="PullImage \"r.test:5000/a:1\" failed" error="rpc error: code = Unknown desc = failed to pull and unpack image \"r.test:5000/a:1\": failed to resolve reference \"r.test:5000/a:1\": failed to do request: Head \"https://r.test:5000/v2/a/manifests/1\": tls: failed to verify certificate: x509: certificate signed by unknown authority""#,
            r#"time="t" level=warning msg="failed to load plugin io.containerd.grpc.v1.cri" error="invalid plugin config: `configs.tls` cannot be set when `config_path` is provided""#,
            r#"time="t" level=warning msg="Ignoring unknown key in TOML for plugin" error="strict mode disabled" key="registry configs r.test:5000 tls" plugin=io.containerd.cri.v1.images"#,
            r#"time="t" level=warning msg="`configs` is deprecated, please use `config_path` instead""#,
            r#"time="t" level=warning msg="cleanup failed""#,
            r#"time="t" level=info msg="PullImage \"r.test:5000/a:1\" returns image reference \"sha256:0123\"""#,
        ]));
        let kinds: Vec<EventKind> = hub.events(None, None).iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::PullFailed,
                EventKind::PluginFailed,
                EventKind::ConfigWarning,
                EventKind::ConfigWarning,
                EventKind::PullsRecovered,
            ]
        );
        assert_eq!(
            hub.position(),
            Some(Position::File {
                inode: 1,
                offset: 7
            })
        );
        assert_eq!(hub.status().lines_read, 7);
    }
}
