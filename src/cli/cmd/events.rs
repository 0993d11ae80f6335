//! `ctrdiag events` and `ctrdiag watch`

use crate::cli::stdout::{out, outln};

use std::time::Duration;

use serde_json::json;

use super::{Client, print_json};
use crate::api::v1 as pb;
use crate::cli::render::table;
use crate::cli::{Exit, Failure, Output};

pub async fn list(
    mut client: Client,
    since: Option<Duration>,
    cause: Option<String>,
    output: Output,
) -> Result<Exit, Failure> {
    let resp = client
        .list_events(pb::ListEventsRequest {
            since_secs: since.map_or(0, |d| d.as_secs().max(1)),
            cause: cause.unwrap_or_default(),
        })
        .await
        .map_err(|s| Failure::from_status(&s))?
        .into_inner();
    let detection = resp.detection.unwrap_or_default();
    match output {
        Output::Json => print_json(&json!({
            "events": resp.events.iter().map(event_json).collect::<Vec<_>>(),
            "problems": resp.problems.iter().map(problem_json).collect::<Vec<_>>(),
            "detection": detection_json(&detection),
        })),
        Output::Table => {
            if !detection.error.is_empty() {
                eprintln!(
                    "ctrdiag: containerd's log is not followed now ({}): {}",
                    detection.source, detection.error
                );
            } else if detection.source.is_empty() {
                eprintln!(
                    "ctrdiag: detection from containerd's log is off (containerd_log = \"off\"); probe results only"
                );
            }
            if resp.events.is_empty() {
                outln!("no events");
            } else {
                let rows: Vec<Vec<String>> = resp
                    .events
                    .iter()
                    .map(|e| {
                        vec![
                            time_ms(e.last_unix_ms),
                            e.kind.clone(),
                            e.cause.clone(),
                            dash(&e.host),
                            dash(&e.image),
                            e.count.to_string(),
                            first_line(&e.text),
                        ]
                    })
                    .collect();
                out!(
                    "{}",
                    table(
                        &[
                            "LAST SEEN",
                            "KIND",
                            "CAUSE",
                            "REGISTRY",
                            "IMAGE",
                            "COUNT",
                            "TEXT"
                        ],
                        &rows
                    )
                );
            }
            for p in &resp.problems {
                outln!(
                    "PROBLEM {} ({}): {} since {}, {} failure(s); `ctrdiag diagnose {}` explains it",
                    p.host,
                    p.area,
                    p.cause,
                    time_ms(p.since_unix_ms),
                    p.failures,
                    if p.image.is_empty() {
                        &p.host
                    } else {
                        &p.image
                    }
                );
            }
        }
    }
    Ok(if resp.problems.is_empty() {
        Exit::Ok
    } else {
        Exit::Problem
    })
}

pub async fn watch(
    mut client: Client,
    cause: Option<String>,
    output: Output,
) -> Result<Exit, Failure> {
    let mut stream = client
        .watch(pb::WatchRequest {
            cause: cause.unwrap_or_default(),
        })
        .await
        .map_err(|s| Failure::from_status(&s))?
        .into_inner();
    loop {
        let msg = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => {
                return Err(Failure::new(
                    Exit::Problem,
                    "ctrdiagd ended the stream (it is stopping); run `ctrdiag watch` again once it is back",
                ));
            }
            Err(s) => return Err(Failure::from_status(&s)),
        };
        use pb::watch_message::Message;
        match (msg.message, output) {
            (Some(Message::Subscribed(_)), Output::Json) => {
                print_line(&json!({"subscribed": true}))
            }
            (Some(Message::Subscribed(_)), Output::Table) => {
                eprintln!("watching for events (Ctrl-C to stop)");
            }
            (Some(Message::Event(e)), Output::Json) => print_line(&event_json(&e)),
            (Some(Message::Event(e)), Output::Table) => outln!(
                "{} {} {} {} {}{}: {}",
                time_ms(e.last_unix_ms),
                e.kind,
                e.cause,
                dash(&e.host),
                dash(&e.image),
                if e.count > 1 {
                    format!(" (x{})", e.count)
                } else {
                    String::new()
                },
                first_line(&e.text)
            ),
            (Some(Message::Missed(n)), Output::Json) => print_line(&json!({"missed": n})),
            (Some(Message::Missed(n)), Output::Table) => {
                eprintln!(
                    "ctrdiag: fell behind; {n} events were not shown (`ctrdiag events` lists them)"
                );
            }
            (None, _) => {}
        }
    }
}

/// One JSON object per line, flushed, so a pipe reader sees each at once.
fn print_line(v: &serde_json::Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

pub fn event_json(e: &pb::Event) -> serde_json::Value {
    json!({
        "id": e.id,
        "kind": e.kind,
        "cause": e.cause,
        "host": e.host,
        "image": e.image,
        "text": e.text,
        "count": e.count,
        "first_seen": time_ms(e.first_unix_ms),
        "last_seen": time_ms(e.last_unix_ms),
        "first_seen_unix_ms": e.first_unix_ms,
        "last_seen_unix_ms": e.last_unix_ms,
    })
}

pub fn problem_json(p: &pb::Problem) -> serde_json::Value {
    json!({
        "host": p.host,
        "area": p.area,
        "cause": p.cause,
        "image": p.image,
        "since": time_ms(p.since_unix_ms),
        "last_seen": time_ms(p.last_unix_ms),
        "failures": p.failures,
    })
}

pub fn detection_json(d: &pb::Detection) -> serde_json::Value {
    json!({
        "source": d.source,
        "following": d.following,
        "error": d.error,
        "lines_read": d.lines_read,
        "events": d.events,
    })
}

/// RFC 3339 in UTC to the millisecond.
fn time_ms(unix_ms: i64) -> String {
    match u64::try_from(unix_ms) {
        Ok(ms) if ms > 0 => {
            humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_millis(ms))
                .to_string()
        }
        _ => "-".into(),
    }
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}
