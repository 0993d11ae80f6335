//! Finds pull failures and configuration problems in containerd's log (its own file,
//! or `journalctl -u containerd` output) at close to the speed of reading it.
//!
//! Only `level=error` / `level=warning` lines (logfmt or JSON) can carry them, so the
//! scan jumps from one such marker to the next with SIMD substring search and
//! classifies just those lines; everything else is skipped without being examined.

use memchr::memmem;

use super::classify::{Classification, classify};
use crate::cause::CauseCode;

/// What a scan found: classified lines, with their 1-based line numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFinding {
    pub line: usize,
    pub classification: Classification,
}

const MARKERS: [&[u8]; 4] = [
    b"level=error",
    b"level=warning",
    b"\"level\":\"error\"",
    b"\"level\":\"warning\"",
];

/// Scans `log`, calling `found` for every error or warning line that classifies to a
/// known cause or is a failed PullImage (so an unknown pull failure is not dropped).
pub fn scan(log: &[u8], mut found: impl FnMut(LogFinding)) {
    let finders: Vec<memmem::Finder<'_>> = MARKERS.iter().map(memmem::Finder::new).collect();
    // The next occurrence of each marker at or after `pos` (None: no more). Each
    // finder searches again only once `pos` has passed its last hit, so the whole scan
    // reads the log a bounded number of times, however rare a marker is.
    let mut next: Vec<Option<usize>> = finders.iter().map(|f| f.find(log)).collect();
    let mut pos = 0;
    let mut line_no = 1;
    let mut counted_to = 0;
    while pos < log.len() {
        for (slot, f) in next.iter_mut().zip(&finders) {
            if let Some(at) = *slot
                && at < pos
            {
                *slot = f.find(&log[pos..]).map(|i| pos + i);
            }
        }
        // The nearest marker of any kind from `pos`.
        let Some(at) = next.iter().flatten().copied().min() else {
            break;
        };
        let start = memchr::memrchr(b'\n', &log[..at]).map_or(0, |i| i + 1);
        let end = memchr::memchr(b'\n', &log[at..]).map_or(log.len(), |i| at + i);
        line_no += memchr::memchr_iter(b'\n', &log[counted_to..start]).count();
        counted_to = start;
        let line = String::from_utf8_lossy(&log[start..end]);
        let c = classify(&line);
        if c.cause != CauseCode::Unknown || line.contains("PullImage") {
            found(LogFinding {
                line: line_no,
                classification: c,
            });
        }
        pos = end + 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_failures_in_a_realistic_mix_with_line_numbers() {
        let log = concat!(
            "time=\"t\" level=info msg=\"starting containerd\" revision= version=2.1.9\n",
            "time=\"t\" level=info msg=\"PullImage \\\"r.test:5000/a:1\\\"\"\n",
            "time=\"t\" level=info msg=\"trying next host\" error=\"failed to do request: x509: certificate signed by unknown authority\"\n",
            "time=\"t\" level=error msg=\"PullImage \\\"r.test:5000/a:1\\\" failed\" error=\"rpc error: code = Unknown desc = failed to pull and unpack image \\\"r.test:5000/a:1\\\": failed to resolve reference \\\"r.test:5000/a:1\\\": failed to do request: Head \\\"https://r.test:5000/v2/a/manifests/1\\\": tls: failed to verify certificate: x509: certificate signed by unknown authority\"\n",
            "time=\"t\" level=warning msg=\"Ignoring unknown key in TOML for plugin\" key=\"registry configs r.test:5000 tls\"\n",
            "time=\"t\" level=error msg=\"PullImage \\\"x/y:1\\\" failed\" error=\"something new\"\n",
            "time=\"t\" level=warning msg=\"cleanup failed\"\n",
            "{\"level\":\"error\",\"msg\":\"PullImage failed\",\"error\":\"dial tcp: lookup r.test: no such host\"}\n",
        );
        let mut got = Vec::new();
        scan(log.as_bytes(), |f| {
            got.push((f.line, f.classification.cause))
        });
        assert_eq!(
            got,
            [
                (4, CauseCode::TlsUnknownAuthority),
                (5, CauseCode::ConfigIgnored),
                (6, CauseCode::Unknown),
                (8, CauseCode::DnsFailure),
            ]
        );
    }

    #[test]
    fn empty_and_marker_only_input() {
        scan(b"", |_| panic!("nothing to find"));
        let mut n = 0;
        scan(b"level=error", |_| n += 1);
        scan(b"\n\nlevel=warning\n", |_| n += 1);
        assert_eq!(n, 0, "unclassifiable non-pull lines are not findings");
    }
}
