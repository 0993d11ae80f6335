//! Classifying a containerd log against `grep -E -c`, `rg -c` with the same trigger
//! words, and `wc -l` (the floor: reading the file and counting its lines).
//!
//! `cargo bench --bench logscan_vs_grep` writes a realistic containerd log of
//! 3,000,000 lines (info chatter, debug lines, warnings, and failed pulls with every
//! TLS wording), then times, alternating in the same run, ctrdiag's scanner (reading
//! the file in chunks and producing full structured findings), `LC_ALL=C grep -E -c`,
//! `rg -c` and `wc -l` over the same file, and prints the median of 7 runs of each with
//! MB/s and speed relative to `rg -c`. Under `cargo test` it checks the findings on
//! 30,000 lines and runs each tool once.

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ctrdiag::diagnose::CauseCode;
use ctrdiag::diagnose::logscan::{self, LogScanner};

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
/// Returns each failure written: the byte offset of its line and its cause.
fn write_log(path: &Path, lines: usize) -> Vec<(usize, CauseCode)> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create log"));
    let (mut expected, mut written) = (Vec::new(), 0);
    for i in 0..lines {
        let body = if i % 500 == 499 {
            let (line, cause) = FAILURES[(i / 500) % FAILURES.len()];
            expected.push((written, cause));
            line
        } else if i % 97 == 0 {
            NOISE_WARNING
        } else {
            INFO[i % INFO.len()]
        };
        let line = format!(
            "Nov 28 10:00:{:02} node-{} containerd[812]: time=\"2026-11-28T10:00:{:02}.{:06}Z\" {body}\n",
            i % 60,
            i % 7,
            i % 60,
            i % 1_000_000
        );
        out.write_all(line.as_bytes()).expect("write");
        written += line.len();
    }
    out.flush().expect("flush");
    expected
}

/// Reads `path` in chunks of whole lines into one reused 64 KiB buffer, as the
/// daemon's file source reads (the file is never held whole: on this machine
/// first-touching 560 MB of fresh memory costs more than the scan; and a buffer that
/// stays in the CPU's cache measured 5-10% faster than a 1 MiB one) and scans each chunk.
fn scan_file(path: &Path) -> Vec<(usize, CauseCode)> {
    let mut file = std::fs::File::open(path).expect("open log");
    let mut buf = vec![0; 64 << 10];
    let (mut filled, mut scanner, mut found) = (0, LogScanner::default(), Vec::new());
    let mut keep = |f: logscan::LogFinding| found.push((f.offset, f.classification.cause));
    loop {
        if filled == buf.len() {
            // A line longer than the buffer.
            buf.resize(buf.len() * 2, 0);
        }
        let n = file.read(&mut buf[filled..]).expect("read log");
        if n == 0 {
            scanner.scan(&buf[..filled], &mut keep);
            return found;
        }
        filled += n;
        if let Some(last) = memchr::memrchr(b'\n', &buf[..filled]) {
            scanner.scan(&buf[..=last], &mut keep);
            buf.copy_within(last + 1..filled, 0);
            filled -= last + 1;
        }
    }
}

/// Maps `path` read-only (as rg does) and scans it whole: the scan without the copy
/// that `read` makes.
fn scan_mapped(path: &Path) -> Vec<(usize, CauseCode)> {
    use nix::sys::mman::{MapFlags, ProtFlags, mmap, munmap};
    let file = std::fs::File::open(path).expect("open log");
    let len = file.metadata().expect("size").len() as usize;
    let Some(size) = std::num::NonZeroUsize::new(len) else {
        return Vec::new();
    };
    // SAFETY: a private read-only mapping of a file nothing writes while it is mapped;
    // the slice does not outlive the mapping, which is unmapped below.
    unsafe {
        let at = mmap(
            None,
            size,
            ProtFlags::PROT_READ,
            MapFlags::MAP_PRIVATE,
            &file,
            0,
        )
        .expect("mmap log");
        let log = std::slice::from_raw_parts(at.as_ptr().cast::<u8>(), len);
        let mut found = Vec::new();
        logscan::scan(log, |f| found.push((f.offset, f.classification.cause)));
        munmap(at, len).expect("munmap log");
        found
    }
}

/// Runs a command over the log and returns the first number it prints (a count).
fn count_with(program: &str, args: &[&str], path: &Path) -> usize {
    let out = Command::new(program)
        .env("LC_ALL", "C")
        .env_remove("RIPGREP_CONFIG_PATH")
        .args(args)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} failed: {out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.split_whitespace().next().unwrap_or_default();
    first
        .parse()
        .unwrap_or_else(|_| panic!("{program} printed {text:?}"))
}

fn timed<T>(run: impl Fn() -> T) -> Duration {
    let started = Instant::now();
    run();
    started.elapsed()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let lines = if full { 3_000_000 } else { 30_000 };
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tmp");
    let path = dir.path().join("containerd.log");
    let expected = write_log(&path, lines);
    let size = std::fs::metadata(&path).expect("size").len() as f64;

    // Correctness first: every injected failure is found, with its cause and offset, in
    // order, read in chunks as when read whole; the tools count what they should.
    assert_eq!(
        scan_file(&path),
        expected,
        "the scanner must find exactly the injected failures"
    );
    assert_eq!(
        scan_mapped(&path),
        expected,
        "scanning the log whole (mapped) finds the same"
    );
    let grep = || count_with("grep", &["-E", "-c", TRIGGERS], &path);
    let rg = || count_with("rg", &["-c", TRIGGERS], &path);
    let wc = || count_with("wc", &["-l"], &path);
    let grep_count = grep();
    assert!(
        grep_count >= expected.len(),
        "grep matched {grep_count} lines"
    );
    assert_eq!(rg(), grep_count, "rg and grep match the same lines");
    assert_eq!(wc(), lines);

    let rounds = if full { 7 } else { 1 };
    let mut times = [(); 5].map(|_| Vec::new());
    for _ in 0..rounds {
        times[0].push(timed(|| scan_file(&path)));
        times[1].push(timed(|| scan_mapped(&path)));
        times[2].push(timed(grep));
        times[3].push(timed(rg));
        times[4].push(timed(wc));
    }
    let [ours, mapped, grep_t, rg_t, wc_t] = times.map(median);
    let mb = size / 1e6;
    println!(
        "logscan_vs_grep: {lines} lines, {mb:.0} MB, {} failures, median of {rounds}",
        expected.len()
    );
    println!("  {:<36} {:>8} {:>8} {:>9}", "", "MB/s", "ms", "vs rg -c");
    for (name, t) in [
        ("ctrdiag scan (read + classify)", ours),
        ("ctrdiag scan (mmap + classify)", mapped),
        ("LC_ALL=C grep -E -c (same triggers)", grep_t),
        ("rg -c (same triggers)", rg_t),
        ("wc -l (read and count lines)", wc_t),
    ] {
        println!(
            "  {name:<36} {:>8.0} {:>8.0} {:>8.2}x",
            mb / t.as_secs_f64(),
            t.as_secs_f64() * 1e3,
            rg_t.as_secs_f64() / t.as_secs_f64()
        );
    }
}
