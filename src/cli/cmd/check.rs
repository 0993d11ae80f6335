//! `ctrdiag check`: node-problem-detector's custom plugin protocol. NPD reads exit 0
//! as OK, 1 as a problem and anything else as unknown, keeps the first 80 bytes of
//! stdout as the condition's message, and kills a plugin after 5 s. So: one short line
//! on stdout, details on stderr, and the whole check (connect included) bounded at 4 s,
//! answering "unknown" when ctrdiagd is down or hangs rather than letting NPD time out.

use crate::cli::stdout::outln;

use std::path::Path;
use std::time::Duration;

use crate::api::v1 as pb;
use crate::cli::Exit;

/// NPD's default `max_output_length`.
pub const MAX_LINE: usize = 80;
/// Inside NPD's default 5 s plugin timeout, with room for process start-up.
pub const BUDGET: Duration = Duration::from_secs(4);

pub async fn run(socket: &Path) -> Exit {
    let asked = tokio::time::timeout(BUDGET, async {
        let mut client = crate::cli::client::connect(socket)
            .await
            .map_err(|f| f.message)?;
        client
            .list_events(pb::ListEventsRequest::default())
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| format!("ctrdiagd refused the check: {}", s.message()))
    })
    .await;
    let (exit, line, details) = match asked {
        Err(_) => (
            Exit::Unreachable,
            "Unknown: ctrdiagd did not answer within 4s".to_string(),
            format!(
                "ctrdiagd at {} accepted no call within {BUDGET:?}: is it hung? `systemctl status ctrdiagd`",
                socket.display()
            ),
        ),
        Ok(Err(message)) => (
            Exit::Unreachable,
            "Unknown: ctrdiagd is not reachable".to_string(),
            message,
        ),
        Ok(Ok(resp)) => verdict(&resp),
    };
    outln!("{}", cut(&line, MAX_LINE));
    if !details.is_empty() {
        eprintln!("{details}");
    }
    exit
}

/// The plugin's answer from what ctrdiagd says.
pub fn verdict(resp: &pb::ListEventsResponse) -> (Exit, String, String) {
    let detection = resp.detection.clone().unwrap_or_default();
    if let Some(first) = resp.problems.first() {
        let more = match resp.problems.len() - 1 {
            0 => String::new(),
            n => format!(" +{n} more"),
        };
        let line = format!(
            "RegistryTLSProblem: {} {} ({} failures){more}",
            first.host, first.cause, first.failures
        );
        let details = resp
            .problems
            .iter()
            .map(|p| {
                format!(
                    "{} ({}): {}, {} failure(s), latest image {}; run `ctrdiag diagnose {}`",
                    p.host,
                    p.area,
                    p.cause,
                    p.failures,
                    if p.image.is_empty() { "-" } else { &p.image },
                    if p.image.is_empty() {
                        &p.host
                    } else {
                        &p.image
                    },
                )
            })
            .collect::<Vec<_>>()
            .join("\n");
        return (Exit::Problem, line, details);
    }
    if !detection.source.is_empty() && !detection.following {
        return (
            Exit::Unreachable,
            "Unknown: ctrdiagd cannot read containerd's log".to_string(),
            format!("{}: {}", detection.source, detection.error),
        );
    }
    (
        Exit::Ok,
        "RegistryTLSOK: no registry problem detected".to_string(),
        String::new(),
    )
}

/// `s` cut to at most `max` bytes, on a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(host: &str) -> pb::Problem {
        pb::Problem {
            host: host.into(),
            area: "pulls".into(),
            cause: "tls_unknown_authority".into(),
            failures: 3,
            ..Default::default()
        }
    }

    #[test]
    fn problems_healthy_and_a_log_that_cannot_be_read() {
        let following = pb::Detection {
            source: "journal (unit containerd.service)".into(),
            following: true,
            ..Default::default()
        };
        let ok = pb::ListEventsResponse {
            detection: Some(following.clone()),
            ..Default::default()
        };
        assert_eq!(verdict(&ok).0, Exit::Ok);
        let bad = pb::ListEventsResponse {
            problems: vec![problem("r.test:5000"), problem("q.test")],
            detection: Some(following),
            ..Default::default()
        };
        let (exit, line, details) = verdict(&bad);
        assert_eq!(exit, Exit::Problem);
        assert_eq!(
            line,
            "RegistryTLSProblem: r.test:5000 tls_unknown_authority (3 failures) +1 more"
        );
        assert!(details.contains("q.test"), "{details}");
        let blind = pb::ListEventsResponse {
            detection: Some(pb::Detection {
                source: "file /x".into(),
                following: false,
                error: "unreadable".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(verdict(&blind).0, Exit::Unreachable);
    }

    #[test]
    fn the_line_fits_npd_on_a_character_boundary() {
        let long = format!("RegistryTLSProblem: {}é", "a".repeat(78));
        assert!(cut(&long, MAX_LINE).len() <= MAX_LINE);
        let host = "r".repeat(200);
        let (_, line, _) = verdict(&pb::ListEventsResponse {
            problems: vec![problem(&host)],
            ..Default::default()
        });
        assert_eq!(cut(&line, MAX_LINE).len(), MAX_LINE);
        assert_eq!(cut("short", MAX_LINE), "short");
    }
}
