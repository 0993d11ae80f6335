//! DNS and TCP: the first two steps, whose failures explain most "registry unreachable"
//! pulls before TLS is even involved.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::time::timeout;

use super::report::{Fact, Outcome, ProbeReport, RecordSince, StepKind};

/// Addresses tried before giving up: bounds the connect step to a few timeouts.
const MAX_ADDRESSES: usize = 3;

/// Resolves `name:port`; records the step and, on failure, a `dns_failure` or `timeout` fact.
pub(super) async fn resolve(
    name: &str,
    port: u16,
    limit: Duration,
    report: &mut ProbeReport,
) -> Vec<SocketAddr> {
    let started = Instant::now();
    match timeout(limit, tokio::net::lookup_host((name, port))).await {
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                let error = format!("{name} resolved to no address");
                report.record_since(StepKind::Dns, Outcome::Failed, started, error.clone());
                report.fact(Fact::DnsFailure { error });
            } else {
                report.record_since(StepKind::Dns, Outcome::Ok, started, join(&addrs));
            }
            addrs
        }
        Ok(Err(e)) => {
            let error = e.to_string();
            report.record_since(StepKind::Dns, Outcome::Failed, started, error.clone());
            report.fact(Fact::DnsFailure { error });
            Vec::new()
        }
        Err(_) => {
            timed_out(StepKind::Dns, limit, started, report);
            Vec::new()
        }
    }
}

/// Connects to the first address that accepts. Facts are recorded only when all fail,
/// since an unreachable IPv6 address before a working IPv4 one is not a problem.
pub(super) async fn connect(
    addrs: &[SocketAddr],
    limit: Duration,
    report: &mut ProbeReport,
) -> Option<(TcpStream, SocketAddr)> {
    let started = Instant::now();
    let mut notes = Vec::new();
    let mut facts = Vec::new();
    for &addr in addrs.iter().take(MAX_ADDRESSES) {
        match timeout(limit, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                notes.push(format!("connected to {addr}"));
                report.record_since(StepKind::Connect, Outcome::Ok, started, notes.join("; "));
                return Some((stream, addr));
            }
            Ok(Err(e)) => {
                notes.push(format!("{addr}: {e}"));
                facts.push(if e.kind() == ErrorKind::ConnectionRefused {
                    Fact::ConnectionRefused { address: addr }
                } else {
                    Fact::ConnectFailed {
                        address: addr,
                        error: e.to_string(),
                    }
                });
            }
            Err(_) => {
                notes.push(format!("{addr}: no answer within {limit:?}"));
                facts.push(timeout_fact(StepKind::Connect, limit));
            }
        }
    }
    let all_timed_out = facts.iter().all(|f| matches!(f, Fact::Timeout { .. }));
    let outcome = if all_timed_out && !facts.is_empty() {
        Outcome::TimedOut
    } else {
        Outcome::Failed
    };
    report.record_since(StepKind::Connect, outcome, started, notes.join("; "));
    for fact in facts {
        report.fact(fact);
    }
    None
}

/// Records a step that hit the per-step timeout, with its `timeout` fact.
pub(super) fn timed_out(
    step: StepKind,
    limit: Duration,
    started: Instant,
    report: &mut ProbeReport,
) {
    report.record_since(
        step,
        Outcome::TimedOut,
        started,
        format!("no answer within {limit:?}"),
    );
    report.fact(timeout_fact(step, limit));
}

fn timeout_fact(step: StepKind, limit: Duration) -> Fact {
    Fact::Timeout {
        step,
        after_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
    }
}

fn join(addrs: &[SocketAddr]) -> String {
    addrs
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
