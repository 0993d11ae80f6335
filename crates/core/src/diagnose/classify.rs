//! Classifies containerd / CRI error text into a [`CauseCode`] and the facts inside it.
//! Pure: text in, classification out. The wordings come from containerd 1.6, 1.7 and
//! 2.x and from both Go generations (`x509: ...` and the newer
//! `tls: failed to verify certificate: x509: ...`); each is a test fixture below.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, packed};
use serde::Serialize;

use crate::cause::CauseCode;

/// Facts found in an error text; every field is optional because wordings differ.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ErrorFacts {
    /// The image reference containerd was pulling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Registry `host[:port]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The URL of the failed request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Names the certificate is valid for (`certificate is valid for a, b, not c`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificate_names: Vec<String>,
    /// The name (or IP) the client wanted the certificate to match.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wanted_name: Option<String>,
    /// `current time T is after|before T2`: the clock and the certificate's bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_bound: Option<String>,
    /// `while trying to verify candidate authority certificate "NAME"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate_authority: Option<String>,
    /// HTTP status code in the text (401, 403, 404, 400, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
}

/// A classified error text; `raw` keeps the text exactly, so nothing is lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    pub cause: CauseCode,
    pub facts: ErrorFacts,
    pub raw: String,
}

/// Ordered rules: the first whose trigger appears wins. Specific wordings (an x509
/// error inside a PullImage failure) come before generic ones ("not found").
const RULES: &[(&str, CauseCode)] = &[
    ("unknown service runtime.v1", CauseCode::CriUnavailable),
    (
        "unknown service runtime.v1alpha2",
        CauseCode::CriUnavailable,
    ),
    (
        "cannot be set when `config_path` is provided",
        CauseCode::ConfigConflict,
    ),
    (
        "cannot be set when config_path is provided",
        CauseCode::ConfigConflict,
    ),
    (
        "failed to load plugin io.containerd.grpc.v1.cri",
        CauseCode::CriUnavailable,
    ),
    ("invalid `host` tree", CauseCode::HostsTomlInvalid),
    ("failed to load host config", CauseCode::HostsTomlInvalid),
    ("failed to decode hosts.toml", CauseCode::HostsTomlInvalid),
    ("failed to parse TOML", CauseCode::HostsTomlInvalid),
    ("unable to read CA cert", CauseCode::HostsTomlInvalid),
    ("failed to load X509 key pair", CauseCode::HostsTomlInvalid),
    (
        "x509: certificate signed by unknown authority",
        CauseCode::TlsUnknownAuthority,
    ),
    (
        "x509: certificate has expired or is not yet valid",
        CauseCode::TlsExpired,
    ),
    (
        "x509: certificate relies on legacy Common Name field",
        CauseCode::TlsLegacyCommonName,
    ),
    (
        "x509: certificate is valid for",
        CauseCode::TlsHostnameMismatch,
    ),
    (
        "x509: certificate is not valid for any names",
        CauseCode::TlsHostnameMismatch,
    ),
    (
        "x509: cannot validate certificate for",
        CauseCode::TlsHostnameMismatch,
    ),
    (
        "tls: certificate required",
        CauseCode::TlsClientCertRequired,
    ),
    (
        "remote error: tls: bad certificate",
        CauseCode::TlsClientCertRequired,
    ),
    (
        "server gave HTTP response to HTTPS client",
        CauseCode::HttpResponseToHttps,
    ),
    (
        "first record does not look like a TLS handshake",
        CauseCode::HttpResponseToHttps,
    ),
    (
        // `\x15\x03` (a TLS alert) follows; containerd's log doubles the backslashes.
        "malformed HTTP response",
        CauseCode::PlainHttpToHttpsPort,
    ),
    ("TLS handshake timeout", CauseCode::Timeout),
    ("remote error: tls:", CauseCode::TlsHandshake),
    ("tls: handshake failure", CauseCode::TlsHandshake),
    ("x509: ", CauseCode::TlsHandshake),
    ("401 Unauthorized", CauseCode::AuthRequired),
    ("no basic auth credentials", CauseCode::AuthRequired),
    ("authentication required", CauseCode::AuthRequired),
    ("pull access denied", CauseCode::AccessDenied),
    (
        "requested access to the resource is denied",
        CauseCode::AccessDenied,
    ),
    ("403 Forbidden", CauseCode::AccessDenied),
    ("insufficient_scope", CauseCode::AccessDenied),
    ("authorization failed", CauseCode::AccessDenied),
    ("dial unix", CauseCode::ContainerdUnreachable),
    ("no such host", CauseCode::DnsFailure),
    ("server misbehaving", CauseCode::DnsFailure),
    (
        "Temporary failure in name resolution",
        CauseCode::DnsFailure,
    ),
    (
        "client didn't provide a certificate",
        CauseCode::TlsClientCertRequired,
    ),
    (
        "Client sent an HTTP request to an HTTPS server",
        CauseCode::PlainHttpToHttpsPort,
    ),
    // A lookup that times out is still a DNS problem.
    ("dial tcp: lookup ", CauseCode::DnsFailure),
    ("connection refused", CauseCode::ConnectionRefused),
    ("no route to host", CauseCode::ConnectionRefused),
    ("network is unreachable", CauseCode::ConnectionRefused),
    ("timeout awaiting response headers", CauseCode::Timeout),
    ("i/o timeout", CauseCode::Timeout),
    ("context deadline exceeded", CauseCode::Timeout),
    ("Client.Timeout exceeded", CauseCode::Timeout),
    ("manifest unknown", CauseCode::NotFound),
    ("404 Not Found", CauseCode::NotFound),
    (": not found", CauseCode::NotFound),
    // containerd's warnings of settings that still work but will not: last, so a pull
    // error that happens to mention a deprecation keeps its own cause.
    ("is deprecated", CauseCode::ConfigDeprecated),
    ("DEPRECATION", CauseCode::ConfigDeprecated),
];

/// Words the classification needs besides the rules' triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Word {
    /// With [`Word::RegistryConfigs`]: containerd 2.x ignoring a legacy `configs` table.
    IgnoringUnknownKey,
    RegistryConfigs,
    /// A CRI pull: the log scanner keeps such a line even when its cause is unknown.
    PullImage,
    /// A 400 answer can make an otherwise unknown text a plain-HTTP case ([`classify`]).
    Status400,
    /// With [`Word::HostsToml`]: containerd 2.x's `failed to decode <path>/hosts.toml`,
    /// which puts the file's path between the words the 1.x rule looks for.
    FailedToDecode,
    HostsToml,
}

impl Word {
    const ALL: [Word; 6] = [
        Word::IgnoringUnknownKey,
        Word::RegistryConfigs,
        Word::PullImage,
        Word::Status400,
        Word::FailedToDecode,
        Word::HostsToml,
    ];

    fn text(self) -> &'static str {
        match self {
            Word::IgnoringUnknownKey => "Ignoring unknown key in TOML",
            Word::RegistryConfigs => "registry configs",
            Word::PullImage => "PullImage",
            Word::Status400 => "400 ",
            Word::FailedToDecode => "failed to decode ",
            Word::HostsToml => "hosts.toml",
        }
    }
}

/// One automaton over every rule's trigger (pattern `i` is `RULES[i]`) and then every
/// [`Word`], so a text is read once however many rules there are.
static TRIGGERS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .kind(Some(AhoCorasickKind::DFA))
        .build(trigger_patterns())
        .expect("the rules' triggers are a small set of literals")
});

/// The same patterns for Teddy (SIMD, up to 64 literals), which only says whether any
/// occurs; `None` where Teddy cannot run (no SSSE3/AVX2 or NEON).
static TRIGGER_SEARCH: LazyLock<Option<packed::Searcher>> = LazyLock::new(|| {
    packed::Config::new()
        .builder()
        .extend(trigger_patterns())
        .build()
});

/// Every rule's trigger (pattern `i` is `RULES[i]`), then every [`Word`].
fn trigger_patterns() -> impl Iterator<Item = &'static str> {
    RULES
        .iter()
        .map(|(trigger, _)| *trigger)
        .chain(Word::ALL.iter().map(|w| w.text()))
}

/// What one pass over a text found: the first rule, in the rules' order (not the
/// text's), whose trigger occurs, and which [`Word`]s occur.
///
/// Every pattern is ASCII without `"` or `\`, so the raw bytes of a log line, their
/// lossy UTF-8 and the unescaped text (`\"` → `"`) all give the same answer: the log
/// scanner can ask before it allocates anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Triggers {
    rule: Option<usize>,
    words: u8,
}

impl Triggers {
    pub(crate) fn of(text: &[u8]) -> Self {
        let mut found = Triggers {
            rule: None,
            words: 0,
        };
        // Most lines hold no trigger at all: Teddy says so many times faster than the
        // overlapping walk, which reads every byte through the automaton (measured: the
        // walk took a third as long as the scan's whole-log search, for 2% of its bytes).
        if TRIGGER_SEARCH
            .as_ref()
            .is_some_and(|teddy| teddy.find(text).is_none())
        {
            return found;
        }
        for m in TRIGGERS.find_overlapping_iter(text) {
            let i = m.pattern().as_usize();
            match i.checked_sub(RULES.len()) {
                None => found.rule = Some(found.rule.map_or(i, |r| r.min(i))),
                Some(w) => found.words |= 1 << Word::ALL[w] as u8,
            }
        }
        found
    }

    fn has(self, word: Word) -> bool {
        self.words & (1 << word as u8) != 0
    }

    /// False when the text is sure to classify as [`CauseCode::Unknown`].
    pub(crate) fn may_know_cause(self) -> bool {
        self.rule.is_some()
            || self.config_ignored()
            || self.hosts_toml_undecodable()
            || self.has(Word::Status400)
    }

    pub(crate) fn mention_pull_image(self) -> bool {
        self.has(Word::PullImage)
    }

    fn config_ignored(self) -> bool {
        self.has(Word::IgnoringUnknownKey) && self.has(Word::RegistryConfigs)
    }

    fn hosts_toml_undecodable(self) -> bool {
        self.has(Word::FailedToDecode) && self.has(Word::HostsToml)
    }
}

/// Classifies one error text (a CRI PullImage error, or a containerd log line).
pub fn classify(text: &str) -> Classification {
    classify_with(text, Triggers::of(text.as_bytes()))
}

/// [`classify`] for a caller that already looked for the triggers in `text`.
pub(crate) fn classify_with(text: &str, triggers: Triggers) -> Classification {
    // containerd's log quotes the error again: `error="... \"image\" ..."`.
    let unescaped;
    let t: &str = if text.contains("\\\"") {
        unescaped = text.replace("\\\"", "\"");
        &unescaped
    } else {
        text
    };
    let mut cause = if triggers.config_ignored() {
        CauseCode::ConfigIgnored
    } else {
        match triggers.rule {
            Some(i) => RULES[i].1,
            None if triggers.hosts_toml_undecodable() => CauseCode::HostsTomlInvalid,
            None => CauseCode::Unknown,
        }
    };
    let mut facts = extract(t);
    match cause {
        CauseCode::TlsExpired if t.contains(" is before ") => cause = CauseCode::TlsNotYetValid,
        // containerd pulls loopback registries over plain HTTP: a TLS registry there
        // answers 400 (LAB.md).
        CauseCode::Unknown
            if facts.http_status == Some(400)
                && (is_loopback_host(facts.host.as_deref())
                    || facts
                        .url
                        .as_deref()
                        .is_some_and(|u| u.starts_with("http://"))) =>
        {
            cause = CauseCode::PlainHttpToHttpsPort
        }
        _ => {}
    }
    if facts.host.is_none() {
        facts.host = facts.image.as_deref().and_then(registry_of);
    }
    Classification {
        cause,
        facts,
        raw: text.to_string(),
    }
}

fn is_loopback_host(host: Option<&str>) -> bool {
    let Some(h) = host else { return false };
    let name = h.rsplit_once(':').map(|(n, _)| n).unwrap_or(h);
    name == "localhost" || name.starts_with("127.") || name == "[::1]"
}

/// The registry part of an image reference, as containerd reads it.
fn registry_of(image: &str) -> Option<String> {
    let (first, _) = image.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then(|| first.to_string())
}

/// The text between `start` and the next `end`, after the first `start`.
fn between<'a>(t: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = t.find(start)? + start.len();
    let rest = &t[i..];
    Some(&rest[..rest.find(end)?])
}

fn extract(t: &str) -> ErrorFacts {
    let mut f = ErrorFacts {
        image: between(t, "image \"", "\"")
            .or_else(|| between(t, "reference \"", "\""))
            .or_else(|| between(t, "PullImage \"", "\""))
            .map(str::to_string),
        ..Default::default()
    };
    // Go's `Head "URL"`; else containerd 1.7's and 2.x's `unexpected status from HEAD
    // request to URL: 400 Bad Request` (LAB: 1.7.24, 2.1.9), but not POST: that is the
    // token endpoint, often another host than the registry.
    f.url = ["Head \"", "Get \"", "Post \"", "Put \""]
        .iter()
        .find_map(|verb| between(t, verb, "\""))
        .or_else(|| {
            ["HEAD request to ", "GET request to "]
                .iter()
                .find_map(|verb| between(t, verb, ": "))
        })
        .map(str::to_string);
    f.host = f.url.as_deref().and_then(|url| {
        url.split_once("://")
            .map(|(_, rest)| rest.split('/').next().unwrap_or(rest).to_string())
    });
    if f.host.is_none() {
        f.host = between(t, "pulling from host ", " ")
            .or_else(|| between(t, "dial tcp: lookup ", " "))
            .map(str::to_string);
    }
    if let Some(list) = between(t, "certificate is valid for ", ", not ") {
        f.certificate_names = list.split(", ").map(str::to_string).collect();
        f.wanted_name = between(t, &format!("{list}, not "), "\"")
            .or_else(|| t.split(&format!("{list}, not ")).nth(1))
            .map(|w| w.trim_end_matches(['"', '.', '\n']).to_string());
    }
    if let Some(w) = t.split("but wanted to match ").nth(1) {
        f.wanted_name = Some(w.split(['"', ' ']).next().unwrap_or(w).to_string());
    }
    if let Some(ip) = between(t, "cannot validate certificate for ", " because") {
        f.wanted_name = Some(ip.to_string());
    }
    if let Some(now) = between(t, "current time ", " is ") {
        f.current_time = Some(now.to_string());
        let rest = t
            .split(&format!("current time {now} is "))
            .nth(1)
            .unwrap_or("");
        let bound = rest
            .trim_start_matches("after ")
            .trim_start_matches("before ");
        f.certificate_bound = bound.split(['"', ' ', ',']).next().map(str::to_string);
    }
    f.candidate_authority =
        between(t, "candidate authority certificate \"", "\"").map(str::to_string);
    f.http_status = http_status(t);
    f
}

/// The first `NNN Reason` HTTP status in the text (`401 Unauthorized`).
fn http_status(t: &str) -> Option<u16> {
    let b = t.as_bytes();
    (0..b.len().saturating_sub(4)).find_map(|i| {
        let digits = &b[i..i + 3];
        let boundary = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let reason = b[i + 3] == b' ' && b.get(i + 4).is_some_and(|c| c.is_ascii_uppercase());
        if boundary
            && reason
            && digits.iter().all(u8::is_ascii_digit)
            && (b'1'..=b'5').contains(&digits[0])
        {
            std::str::from_utf8(digits).ok()?.parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, cause: CauseCode) -> Classification {
        let c = classify(text);
        assert_eq!(c.cause, cause, "{text}");
        assert_eq!(c.raw, text);
        c
    }

    #[test]
    fn lab_texts_of_containerd_2_1_1_6_and_1_7() {
        let c = check(
            "failed to pull and unpack image \"registry.ctrdiag.test:5443/aegis/aegis-hc-install:latest\": failed to resolve image: failed to do request: Head \"https://registry.ctrdiag.test:5443/v2/aegis/aegis-hc-install/manifests/latest\": tls: failed to verify certificate: x509: certificate signed by unknown authority",
            CauseCode::TlsUnknownAuthority,
        );
        assert_eq!(
            c.facts.image.as_deref(),
            Some("registry.ctrdiag.test:5443/aegis/aegis-hc-install:latest")
        );
        assert_eq!(c.facts.host.as_deref(), Some("registry.ctrdiag.test:5443"));
        assert!(c.facts.url.unwrap().ends_with("/manifests/latest"));

        let c = check(
            "failed to pull and unpack image \"registry.ctrdiag.test:5443/a:1\": failed to resolve reference \"registry.ctrdiag.test:5443/a:1\": failed to do request: Head \"https://registry.ctrdiag.test:5443/v2/a/manifests/1\": x509: certificate is valid for localhost, other.ctrdiag.test, not registry.ctrdiag.test",
            CauseCode::TlsHostnameMismatch,
        );
        assert_eq!(
            c.facts.certificate_names,
            ["localhost", "other.ctrdiag.test"]
        );
        assert_eq!(
            c.facts.wanted_name.as_deref(),
            Some("registry.ctrdiag.test")
        );

        let c = check(
            "failed to pull and unpack image \"127.0.0.1:5443/a:latest\": failed to resolve reference \"127.0.0.1:5443/a:latest\": pulling from host 127.0.0.1:5443 failed with status code [manifests latest]: 400 Bad Request",
            CauseCode::PlainHttpToHttpsPort,
        );
        assert_eq!(c.facts.http_status, Some(400));
        assert_eq!(c.facts.host.as_deref(), Some("127.0.0.1:5443"));
    }

    #[test]
    fn containerd_log_lines_with_escaped_quotes() {
        let c = check(
            r#"time="2026-11-28T10:00:00Z" level=error msg="PullImage \"r.test:5000/app:1\" failed" error="rpc error: code = Unknown desc = failed to pull and unpack image \"r.test:5000/app:1\": failed to resolve reference \"r.test:5000/app:1\": failed to do request: Head \"https://r.test:5000/v2/app/manifests/1\": tls: failed to verify certificate: x509: certificate signed by unknown authority""#,
            CauseCode::TlsUnknownAuthority,
        );
        assert_eq!(c.facts.image.as_deref(), Some("r.test:5000/app:1"));
        assert_eq!(c.facts.host.as_deref(), Some("r.test:5000"));
        check(
            r#"time="2026-11-28T10:00:00Z" level=warning msg="Ignoring unknown key in TOML for plugin" error="strict mode: fields in the document are missing in the target struct" key="registry configs registry.ctrdiag.test:5443 tls" plugin=io.containerd.cri.v1.images"#,
            CauseCode::ConfigIgnored,
        );
        check(
            r#"time="2026-11-28T10:00:00Z" level=warning msg="failed to load plugin io.containerd.grpc.v1.cri" error="invalid plugin config: `configs.tls` cannot be set when `config_path` is provided""#,
            CauseCode::ConfigConflict,
        );
        check(
            "failed to load plugin: invalid plugin config: `mirrors` cannot be set when `config_path` is provided",
            CauseCode::ConfigConflict,
        );
    }

    #[test]
    fn go_x509_wordings_old_and_new() {
        for prefix in ["", "tls: failed to verify certificate: "] {
            let c = check(
                &format!(
                    "Get \"https://r.test/v2/\": {prefix}x509: certificate has expired or is not yet valid: current time 2026-11-28T10:00:00Z is after 2025-11-28T10:00:00Z"
                ),
                CauseCode::TlsExpired,
            );
            assert_eq!(
                c.facts.current_time.as_deref(),
                Some("2026-11-28T10:00:00Z")
            );
            assert_eq!(
                c.facts.certificate_bound.as_deref(),
                Some("2025-11-28T10:00:00Z")
            );
            let c = check(
                &format!(
                    "Head \"https://r.test/v2/\": {prefix}x509: certificate has expired or is not yet valid: current time 2026-11-28T10:00:00Z is before 2027-11-28T10:00:00Z"
                ),
                CauseCode::TlsNotYetValid,
            );
            assert_eq!(
                c.facts.certificate_bound.as_deref(),
                Some("2027-11-28T10:00:00Z")
            );
            let c = check(
                &format!(
                    "{prefix}x509: certificate signed by unknown authority (possibly because of \"x509: ECDSA verification failure\" while trying to verify candidate authority certificate \"ctrdiag lab CA\")"
                ),
                CauseCode::TlsUnknownAuthority,
            );
            assert_eq!(
                c.facts.candidate_authority.as_deref(),
                Some("ctrdiag lab CA")
            );
            check(
                &format!(
                    "{prefix}x509: certificate relies on legacy Common Name field, use SANs instead"
                ),
                CauseCode::TlsLegacyCommonName,
            );
            check(
                &format!(
                    "{prefix}x509: certificate relies on legacy Common Name field, use SANs or temporarily enable Common Name matching with GODEBUG=x509ignoreCN=0"
                ),
                CauseCode::TlsLegacyCommonName,
            );
            let c = check(
                &format!(
                    "{prefix}x509: cannot validate certificate for 10.0.0.5 because it doesn't contain any IP SANs"
                ),
                CauseCode::TlsHostnameMismatch,
            );
            assert_eq!(c.facts.wanted_name.as_deref(), Some("10.0.0.5"));
            let c = check(
                &format!(
                    "{prefix}x509: certificate is not valid for any names, but wanted to match r.test"
                ),
                CauseCode::TlsHostnameMismatch,
            );
            assert_eq!(c.facts.wanted_name.as_deref(), Some("r.test"));
        }
    }

    #[test]
    fn transport_and_http_wordings() {
        check(
            "failed to do request: Head \"https://r.test:5000/v2/a/manifests/1\": http: server gave HTTP response to HTTPS client",
            CauseCode::HttpResponseToHttps,
        );
        check(
            "Get \"https://r.test/v2/\": tls: first record does not look like a TLS handshake",
            CauseCode::HttpResponseToHttps,
        );
        check(
            "failed to do request: Head \"http://r.test:5443/v2/a/manifests/1\": net/http: HTTP/1.x transport connection broken: malformed HTTP response \"\\x15\\x03\\x01\\x00\\x02\\x02\"",
            CauseCode::PlainHttpToHttpsPort,
        );
        check(
            "failed to do request: Head \"https://r.test/v2/a/manifests/1\": remote error: tls: certificate required",
            CauseCode::TlsClientCertRequired,
        );
        check(
            "Head \"https://r.test/v2/\": remote error: tls: bad certificate",
            CauseCode::TlsClientCertRequired,
        );
        check(
            "Head \"https://r.test/v2/\": remote error: tls: handshake failure",
            CauseCode::TlsHandshake,
        );
        check(
            "Head \"https://r.test/v2/\": net/http: TLS handshake timeout",
            CauseCode::Timeout,
        );
        let c = check(
            "failed to do request: Head \"https://nope.invalid/v2/a/manifests/1\": dial tcp: lookup nope.invalid on 10.0.0.2:53: no such host",
            CauseCode::DnsFailure,
        );
        assert_eq!(c.facts.host.as_deref(), Some("nope.invalid"));
        check(
            "dial tcp: lookup r.test on 127.0.0.53:53: server misbehaving",
            CauseCode::DnsFailure,
        );
        check(
            "dial tcp: lookup r.test: Temporary failure in name resolution",
            CauseCode::DnsFailure,
        );
        check(
            "failed to do request: Head \"https://r.test:5000/v2/a/manifests/1\": dial tcp 127.0.0.1:5000: connect: connection refused",
            CauseCode::ConnectionRefused,
        );
        check("dial tcp 10.1.1.1:443: i/o timeout", CauseCode::Timeout);
        check(
            "failed to resolve reference \"r.test/a:1\": context deadline exceeded",
            CauseCode::Timeout,
        );
        check(
            "net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)",
            CauseCode::Timeout,
        );
    }

    #[test]
    fn registry_answers() {
        let c = check(
            "failed to resolve reference \"r.test/a:1\": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed",
            CauseCode::AccessDenied,
        );
        assert_eq!(c.facts.host.as_deref(), Some("r.test"));
        let c = check(
            "failed to resolve reference \"r.test/a:1\": unexpected status from HEAD request to https://r.test/v2/a/manifests/1: 401 Unauthorized",
            CauseCode::AuthRequired,
        );
        assert_eq!(c.facts.http_status, Some(401));
        check(
            "failed to authorize: failed to fetch anonymous token: unexpected status: 403 Forbidden",
            CauseCode::AccessDenied,
        );
        check(
            "failed to resolve reference \"r.test/a:nope\": r.test/a:nope: not found",
            CauseCode::NotFound,
        );
        check(
            "failed to copy: httpReadSeeker: failed open: unexpected status code https://r.test/v2/a/manifests/sha256:abc: 404 Not Found",
            CauseCode::NotFound,
        );
        check(
            "GET https://r.test/v2/a/manifests/1: MANIFEST_UNKNOWN: manifest unknown",
            CauseCode::NotFound,
        );
    }

    #[test]
    fn containerd_and_config_wordings() {
        check(
            "rpc error: code = Unimplemented desc = unknown service runtime.v1.ImageService",
            CauseCode::CriUnavailable,
        );
        check(
            "connection error: desc = \"transport: Error while dialing: dial unix /run/containerd/containerd.sock: connect: no such file or directory\"",
            CauseCode::ContainerdUnreachable,
        );
        check(
            "failed to load host config for r.test:5000: invalid `host` tree",
            CauseCode::HostsTomlInvalid,
        );
        check(
            "failed to decode hosts.toml: toml: line 3 (last key \"server\"): expected value",
            CauseCode::HostsTomlInvalid,
        );
    }

    #[test]
    fn unknown_text_keeps_everything() {
        let c = check("something nobody has seen before", CauseCode::Unknown);
        assert_eq!(c.facts, ErrorFacts::default());
        // A 400 from a real, non-loopback registry is not our plain-HTTP case.
        assert_eq!(
            classify("pulling from host r.test:5000 failed with status code: 400 Bad Request")
                .cause,
            CauseCode::Unknown
        );
    }

    #[test]
    fn every_pattern_reads_the_same_in_raw_lossy_and_unescaped_text() {
        // The log scanner looks for the triggers in raw bytes, before it makes text.
        let patterns = RULES.iter().map(|(t, _)| *t);
        for p in patterns.chain(Word::ALL.map(Word::text)) {
            assert!(
                p.bytes().all(|b| b.is_ascii() && b != b'"' && b != b'\\'),
                "{p}"
            );
        }
    }

    #[test]
    fn no_input_panics() {
        let samples = [
            "",
            "\"",
            "\\\"",
            "image \"",
            "Head \"",
            "current time ",
            "current time x is ",
            "certificate is valid for , not ",
            "but wanted to match ",
            "999 Zzz",
            "5",
            "éé\u{0}x509: ",
            "cannot validate certificate for  because",
        ];
        for s in samples {
            let _ = classify(s);
        }
        let mut x: u32 = 7;
        for _ in 0..2000 {
            let s: String = (0..(x % 80))
                .map(|i| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345 + i);
                    char::from_u32(x % 0x250).unwrap_or('?')
                })
                .collect();
            let _ = classify(&s);
        }
    }
}
