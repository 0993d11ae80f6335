//! Finds pull failures and configuration problems in containerd's log (its own file,
//! or `journalctl -u containerd` output) at the speed of reading it.
//!
//! Only lines with a `level=error` / `level=warning` marker (logfmt or JSON) can carry
//! them. Every line has a `level=`, so the scan looks for the markers' rarer tails
//! (`=error`, `:"warning"`, ...) with a SIMD multi-pattern search and checks the head
//! in place; `level=info` lines cost nothing but that search. A marked line is then
//! read once by the classifier's automaton, and only a line it finds a trigger in is
//! turned into text and classified: most warnings are dropped without allocating.
//!
//! A finding says where its line starts as a byte offset, not a line number: counting
//! every newline of a log read in pieces is a second pass over all of it, which cost
//! about 40% of the scan (measured), and byte offsets are what file positions and
//! `grep -b` use anyway.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind, packed};

use super::classify::{Classification, Triggers, classify_with};
use crate::cause::CauseCode;

/// What a scan found: a classified line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFinding {
    /// The byte offset of the line's first byte, from the start of the log (of the first
    /// piece, for [`LogScanner`]).
    pub offset: usize,
    pub classification: Classification,
}

/// The markers of a line worth reading, each split into the head checked in place and
/// the tail searched for: `level=error` is `level` + `=error`.
const MARKERS: [(&[u8], &[u8]); 4] = [
    (b"level", b"=error"),
    (b"level", b"=warning"),
    (b"\"level\"", b":\"error\""),
    (b"\"level\"", b":\"warning\""),
];

/// Finds the markers' tails. No tail can start inside another's match, so searching on
/// after a match misses none.
enum TailSearch {
    /// Teddy (what ripgrep uses for a few literals): SSSE3/AVX2 or NEON.
    Simd(packed::Searcher),
    /// Where Teddy cannot run: an automaton over the same tails.
    Automaton(AhoCorasick),
}

static TAILS: LazyLock<TailSearch> = LazyLock::new(TailSearch::new);

impl TailSearch {
    fn new() -> Self {
        packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(MARKERS.iter().map(|(_, tail)| tail))
            .build()
            .map_or_else(Self::automaton, TailSearch::Simd)
    }

    fn automaton() -> Self {
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(MARKERS.iter().map(|(_, tail)| tail))
            .expect("four short literals build an automaton");
        TailSearch::Automaton(automaton)
    }

    /// The start of the next tail at or after `from` (`from < log.len()`), and whose.
    fn find(&self, log: &[u8], from: usize) -> Option<(usize, usize)> {
        let m = match self {
            TailSearch::Simd(s) => s.find_in(log, aho_corasick::Span::from(from..log.len()))?,
            TailSearch::Automaton(a) => a.find(aho_corasick::Input::new(log).range(from..))?,
        };
        Some((m.start(), m.pattern().as_usize()))
    }

    /// The next line at or after `from` that holds a marker, as its byte range.
    fn next_marked_line(&self, log: &[u8], mut from: usize) -> Option<(usize, usize)> {
        while from < log.len() {
            let (at, marker) = self.find(log, from)?;
            if log[..at].ends_with(MARKERS[marker].0) {
                let start = memchr::memrchr(b'\n', &log[..at]).map_or(0, |i| i + 1);
                let end = memchr::memchr(b'\n', &log[at..]).map_or(log.len(), |i| at + i);
                return Some((start, end));
            }
            from = at + 1;
        }
        None
    }
}

/// Scans `log`, calling `found` for every error or warning line that classifies to a
/// known cause or is a failed PullImage (so an unknown pull failure is not dropped).
pub fn scan(log: &[u8], found: impl FnMut(LogFinding)) {
    scan_with(&TAILS, log, 0, found);
}

/// Scans a log that arrives in pieces (a file read in chunks, a follower's batches of
/// lines) as [`scan`] would scan it whole, with offsets counted across the pieces.
#[derive(Debug, Default)]
pub struct LogScanner {
    bytes_before: usize,
}

impl LogScanner {
    /// Scans the next piece: whole lines, the last of which may lack its `\n` (the next
    /// piece then starts a new line).
    pub fn scan(&mut self, lines: &[u8], found: impl FnMut(LogFinding)) {
        scan_with(&TAILS, lines, self.bytes_before, found);
        self.bytes_before += lines.len();
    }
}

/// Scans `log`, which starts `base` bytes into the whole log.
fn scan_with(tails: &TailSearch, log: &[u8], base: usize, mut found: impl FnMut(LogFinding)) {
    let mut from = 0;
    while let Some((start, end)) = tails.next_marked_line(log, from) {
        from = end + 1;
        let line = &log[start..end];
        let triggers = Triggers::of(line);
        let pull = triggers.mention_pull_image();
        if !(pull || triggers.may_know_cause()) {
            continue;
        }
        let classification = classify_with(&String::from_utf8_lossy(line), triggers);
        if classification.cause != CauseCode::Unknown || pull {
            found(LogFinding {
                offset: base + start,
                classification,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;

    use crate::diagnose::classify::classify;

    /// The scan as its contract says, one line at a time with no shortcut: a line with a
    /// marker anywhere, classified, kept when its cause is known or it is a PullImage.
    fn naive(log: &[u8]) -> Vec<LogFinding> {
        const MARKERS: [&str; 4] = [
            "level=error",
            "level=warning",
            "\"level\":\"error\"",
            "\"level\":\"warning\"",
        ];
        let mut offset = 0;
        log.split(|&b| b == b'\n')
            .filter_map(|line| {
                let start = offset;
                offset += line.len() + 1;
                let text = String::from_utf8_lossy(line);
                let classification = classify(&text);
                let keep = classification.cause != CauseCode::Unknown || text.contains("PullImage");
                (MARKERS.iter().any(|m| text.contains(m)) && keep).then_some(LogFinding {
                    offset: start,
                    classification,
                })
            })
            .collect()
    }

    /// Pieces of lines that, glued in any order, make the cases the shortcuts could get
    /// wrong: heads and tails of markers apart, markers inside quoted text, JSON, CRLF,
    /// invalid UTF-8, triggers on unmarked lines, a 400 from a loopback registry.
    const PIECES: &[&[u8]] = &[
        b"",
        b"Nov 28 10:00:00 node-1 containerd[812]: time=\"2026-11-28T10:00:00Z\" ",
        b"level",
        b"\"level\"",
        b"=error",
        b":\"warning\"",
        b"level=info msg=\"PullImage \\\"r.test/a:1\\\" returns image reference\"",
        b"level=error msg=\"PullImage \\\"r.test:5000/a:1\\\" failed\" error=\"failed to do request: Head \\\"https://r.test:5000/v2/a/manifests/1\\\": tls: failed to verify certificate: x509: certificate signed by unknown authority\"",
        b"level=warning msg=\"Ignoring unknown key in TOML for plugin\" key=\"registry configs r.test:5000 tls\"",
        b"level=info msg=\"trying next host\" error=\"dial tcp: lookup r.test: no such host\"",
        b"level=info msg=\"a quoted level=error in the text\" error=\"connection refused\"",
        b"level=warning msg=\"cleanup warnings time=\\\"t\\\" level=info\"",
        b"loglevel=error remote error: tls: bad certificate",
        b"{\"level\":\"error\",\"msg\":\"PullImage failed\",\"error\":\"pulling from host 127.0.0.1:5000 failed with status code [manifests 1]: 400 Bad Request\"}",
        b"{\"level\":\"warning\",\"msg\":\"cleanup\"}",
        b"{\"msg\":\"x\",\"level\":\"info\",\"note\":\"\\\"level\\\":\\\"error\\\" x509: expired\"}",
        b"level=error msg=\"\xff\xfe\xc3 broken bytes\" error=\"i/o timeout\"",
        b"level=error msg=\"something new\"",
        b"x509: certificate has expired or is not yet valid: current time 2026-11-28T10:00:00Z is before 2027-01-01T00:00:00Z",
        b"level=warn msg=\"not a marker\" error=\"401 Unauthorized\"",
    ];
    const ENDINGS: &[&[u8]] = &[b"\n", b"\r\n", b"", b"\n\n"];

    fn log_of(parts: &[(usize, usize, usize)]) -> Vec<u8> {
        let mut log = Vec::new();
        for &(a, b, end) in parts {
            log.extend_from_slice(PIECES[a]);
            log.extend_from_slice(PIECES[b]);
            log.extend_from_slice(ENDINGS[end]);
        }
        log
    }

    proptest! {
        #[test]
        fn the_fast_path_finds_exactly_what_a_line_by_line_classify_finds(
            parts in prop::collection::vec(
                (0..PIECES.len(), 0..PIECES.len(), 0..ENDINGS.len()), 0..30),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        ) {
            let log = log_of(&parts);
            let want = naive(&log);
            let mut got = Vec::new();
            scan(&log, |f| got.push(f));
            prop_assert_eq!(&got, &want);

            let mut fallback = Vec::new();
            scan_with(&TailSearch::automaton(), &log, 0, |f| fallback.push(f));
            prop_assert_eq!(&fallback, &want, "the search without SIMD");

            // In pieces cut at line ends, as a follower or a chunked reader feeds it.
            let ends: Vec<usize> = memchr::memchr_iter(b'\n', &log).map(|i| i + 1).collect();
            let mut at: Vec<usize> = cuts.iter().filter(|_| !ends.is_empty()).map(|c| ends[c.index(ends.len())]).collect();
            at.sort();
            at.dedup();
            let (mut scanner, mut pieces, mut start) = (LogScanner::default(), Vec::new(), 0);
            for end in at.into_iter().chain([log.len()]) {
                scanner.scan(&log[start..end], |f| pieces.push(f));
                start = end;
            }
            prop_assert_eq!(&pieces, &want, "scanned in pieces");
        }
    }

    #[test]
    fn offsets_count_across_pieces_and_a_piece_may_end_without_its_newline() {
        let mut scanner = LogScanner::default();
        let mut offsets = Vec::new();
        scanner.scan(b"level=info a\nlevel=info b", |_| {});
        scanner.scan(
            b"level=error x509: certificate signed by unknown authority\n",
            |f| offsets.push(f.offset),
        );
        assert_eq!(offsets, [25]);
    }

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
            let line = 1 + log.as_bytes()[..f.offset]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            assert!(
                f.offset == 0 || log.as_bytes()[f.offset - 1] == b'\n',
                "a line's start"
            );
            got.push((line, f.classification.cause))
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
