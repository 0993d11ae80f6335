//! Classifying a containerd log against `grep -E` with the same trigger words.
//!
//! `cargo bench --bench logscan_vs_grep` writes a realistic containerd log of
//! 3,000,000 lines (info chatter, debug lines, warnings, and failed pulls with every
//! TLS wording), then reports MB/s for ctrdiag's scanner (reading the file and producing
//! full structured findings) and for `LC_ALL=C grep -E -c` over the same file, best of
//! 5 runs each, alternating. Under `cargo test` it checks the findings on 30,000 lines.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use ctrdiag::diagnose::{CauseCode, logscan};

const TRIGGERS: &str = "x509|tls:|PullImage|failed to load plugin|Ignoring unknown key|cannot be set when|invalid .host. tree|no such host|connection refused|HTTP response";

const INFO: &[&str] = &[
    r#"level=info msg="loading plugin \"io.containerd.snapshotter.v1.overlayfs\"..." type=io.containerd.snapshotter.v1"#,
    r#"level=info msg="StartContainer for \"3f1c2a\" returns successfully""#,
    r#"level=info msg="ImageCreate event name:\"registry.k8s.io/pause:3.9\" labels:{key:\"io.cri-containerd.image\" value:\"managed\"}""#,
    r#"level=info msg="RunPodSandbox for &PodSandboxMetadata{Name:web-7d9f,Uid:12ab,Namespace:default,Attempt:0,} returns sandbox id \"8e2f\"""#,
    r#"level=info msg="PullImage \"registry.k8s.io/pause:3.9\" returns image reference \"sha256:e6f1816883972d4be47bd48879a08919b96afcd344132622e4d444987919323c\"""#,
    r#"level=debug msg="garbage collected" d=1.2ms"#,
    r#"level=info msg="CreateContainer within sandbox \"8e2f\" for &ContainerMetadata{Name:app,Attempt:0,} returns container id \"77aa\"""#,
];

const FAILURES: &[(&str, CauseCode)] = &[
    (
        r#"level=error msg="PullImage \"registry.corp.example:5000/team/app:1.4\" failed" error="rpc error: code = Unknown desc = failed to pull and unpack image \"registry.corp.example:5000/team/app:1.4\": failed to resolve reference \"registry.corp.example:5000/team/app:1.4\": failed to do request: Head \"https://registry.corp.example:5000/v2/team/app/manifests/1.4\": tls: failed to verify certificate: x509: certificate signed by unknown authority""#,
        CauseCode::TlsUnknownAuthority,
    ),
    (
        r#"level=error msg="PullImage \"registry.corp.example:5000/team/app:1.4\" failed" error="rpc error: code = Unknown desc = failed to pull and unpack image \"registry.corp.example:5000/team/app:1.4\": failed to resolve reference \"registry.corp.example:5000/team/app:1.4\": failed to do request: Head \"https://registry.corp.example:5000/v2/team/app/manifests/1.4\": x509: certificate has expired or is not yet valid: current time 2026-11-28T10:00:00Z is after 2026-10-01T00:00:00Z""#,
        CauseCode::TlsExpired,
    ),
    (
        r#"level=error msg="PullImage \"registry.corp.example:5000/team/app:1.4\" failed" error="rpc error: code = Unknown desc = failed to pull and unpack image \"registry.corp.example:5000/team/app:1.4\": failed to resolve reference \"registry.corp.example:5000/team/app:1.4\": failed to do request: Head \"https://registry.corp.example:5000/v2/team/app/manifests/1.4\": x509: certificate is valid for registry.other.example, not registry.corp.example""#,
        CauseCode::TlsHostnameMismatch,
    ),
    (
        r#"level=error msg="PullImage \"plain.corp.example:5000/app:1\" failed" error="rpc error: code = Unknown desc = failed to pull and unpack image \"plain.corp.example:5000/app:1\": failed to resolve reference \"plain.corp.example:5000/app:1\": failed to do request: Head \"https://plain.corp.example:5000/v2/app/manifests/1\": http: server gave HTTP response to HTTPS client""#,
        CauseCode::HttpResponseToHttps,
    ),
    (
        r#"level=warning msg="Ignoring unknown key in TOML for plugin" error="strict mode: fields in the document are missing in the target struct" key="registry configs registry.corp.example:5000 tls" plugin=io.containerd.cri.v1.images"#,
        CauseCode::ConfigIgnored,
    ),
];

const NOISE_WARNING: &str = r#"level=warning msg="cleanup warnings time=\"2026-11-28T10:00:00Z\" level=info msg=\"starting signal loop\" namespace=k8s.io" namespace=k8s.io"#;

/// Writes `lines` lines; every 500th is a failure, every 97th an unrelated warning.
/// Returns the number of failures of each cause written.
fn write_log(path: &std::path::Path, lines: usize) -> Vec<CauseCode> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create log"));
    let mut expected = Vec::new();
    for i in 0..lines {
        let body = if i % 500 == 499 {
            let (line, cause) = FAILURES[(i / 500) % FAILURES.len()];
            expected.push(cause);
            line
        } else if i % 97 == 0 {
            NOISE_WARNING
        } else {
            INFO[i % INFO.len()]
        };
        writeln!(out, "Nov 28 10:00:{:02} node-{} containerd[812]: time=\"2026-11-28T10:00:{:02}.{:06}Z\" {body}", i % 60, i % 7, i % 60, i % 1_000_000).expect("write");
    }
    out.flush().expect("flush");
    expected
}

fn best(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[0]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let lines = if full { 3_000_000 } else { 30_000 };
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tmp");
    let path = dir.path().join("containerd.log");
    let expected = write_log(&path, lines);
    let size = std::fs::metadata(&path).expect("size").len() as f64;

    let scan = || {
        let started = Instant::now();
        let bytes = std::fs::read(&path).expect("read log");
        let mut found = Vec::new();
        logscan::scan(&bytes, |f| found.push(f.classification.cause));
        (started.elapsed(), found)
    };
    let grep = || {
        let started = Instant::now();
        let out = Command::new("grep")
            .env("LC_ALL", "C")
            .args(["-E", "-c", TRIGGERS])
            .arg(&path)
            .output()
            .expect("grep");
        let count: usize = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("grep -c");
        (started.elapsed(), count)
    };

    // Correctness first: every injected failure is found, with its cause, in order.
    let (_, found) = scan();
    assert_eq!(
        found, expected,
        "the scanner must find exactly the injected failures"
    );
    let (_, grep_count) = grep();
    assert!(
        grep_count >= expected.len(),
        "grep matched {grep_count} lines"
    );

    let rounds = if full { 5 } else { 1 };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        ours.push(scan().0);
        theirs.push(grep().0);
    }
    let mb = size / 1e6;
    let (o, g) = (best(ours), best(theirs));
    println!(
        "logscan_vs_grep: {lines} lines, {mb:.0} MB, {} failures, best of {rounds}",
        expected.len()
    );
    println!(
        "  ctrdiag scan (read + classify)  {:>8.0} MB/s  ({:.0} ms)",
        mb / o.as_secs_f64(),
        o.as_secs_f64() * 1e3
    );
    println!(
        "  grep -E -c (same triggers)      {:>8.0} MB/s  ({:.0} ms)",
        mb / g.as_secs_f64(),
        g.as_secs_f64() * 1e3
    );
    println!(
        "  ctrdiag speed / grep speed      {:>8.2}",
        g.as_secs_f64() / o.as_secs_f64()
    );
}
