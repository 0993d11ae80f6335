//! What one containerd log line means for detection: a failed or a successful CRI
//! pull, a CRI plugin that did not load, or a configuration warning (an ignored key, a
//! deprecated setting). Everything else is not an event.

use super::fields::{self, LogFields};
use crate::cause::CauseCode;
use crate::diagnose::classify::classify;
use crate::registry::reference::ImageRef;

/// A log line that matters, with what the daemon records of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineEvent {
    /// `PullImage "IMAGE" failed` with containerd's error text.
    PullFailed {
        image: String,
        host: Option<String>,
        cause: CauseCode,
        text: String,
    },
    /// `PullImage "IMAGE" returns image reference ...` (1.6/1.7) or
    /// `Pulled image "IMAGE" with image id ...` (2.x).
    PullSucceeded { image: String, host: Option<String> },
    /// `failed to load plugin ...` for a CRI plugin: every CRI call will fail.
    PluginFailed { cause: CauseCode, text: String },
    /// `Ignoring unknown key in TOML` or a deprecation warning.
    ConfigWarning { cause: CauseCode, text: String },
}

/// Reads one line of containerd's log (logfmt or JSON).
pub fn read_line(line: &str) -> Option<LineEvent> {
    // Cheap refusal first: nearly every line of a busy node's log is none of these.
    if !["PullImage", "Pulled image", "plugin", "TOML", "deprecat"]
        .iter()
        .any(|m| line.contains(m))
    {
        return None;
    }
    let f = fields::read(line)?;
    if let Some(image) = quoted_after(&f.msg, "PullImage ") {
        if f.msg.ends_with(" failed") {
            let text = if f.error.is_empty() { &f.msg } else { &f.error };
            let c = classify(text);
            return Some(LineEvent::PullFailed {
                host: host_of(&image).or(c.facts.host),
                image,
                cause: c.cause,
                text: text.clone(),
            });
        }
        if f.msg.contains("returns image reference") {
            return Some(succeeded(image));
        }
        return None;
    }
    if let Some(image) = quoted_after(&f.msg, "Pulled image ") {
        return Some(succeeded(image));
    }
    if f.msg.starts_with("failed to load plugin") && is_cri_plugin(line) {
        let text = joined(&f);
        let cause = match classify(&text).cause {
            CauseCode::Unknown => CauseCode::CriUnavailable,
            cause => cause,
        };
        return Some(LineEvent::PluginFailed { cause, text });
    }
    config_warning(&f)
}

fn config_warning(f: &LogFields) -> Option<LineEvent> {
    if !matches!(f.level.as_str(), "warning" | "warn" | "error") {
        return None;
    }
    let cause = if f.msg.contains("Ignoring unknown key in TOML") {
        CauseCode::ConfigIgnored
    } else if f.msg.to_ascii_lowercase().contains("deprecat") {
        CauseCode::ConfigDeprecated
    } else {
        return None;
    };
    Some(LineEvent::ConfigWarning {
        cause,
        text: joined(f),
    })
}

fn succeeded(image: String) -> LineEvent {
    LineEvent::PullSucceeded {
        host: host_of(&image),
        image,
    }
}

/// The CRI plugins by id: 1.x `io.containerd.grpc.v1.cri`, 2.x `io.containerd.cri.v1.*`.
fn is_cri_plugin(line: &str) -> bool {
    line.contains("io.containerd.grpc.v1.cri") || line.contains("io.containerd.cri.v1.")
}

/// The message and its error (and named key) as one text, as people read them.
fn joined(f: &LogFields) -> String {
    let mut text = f.msg.clone();
    for (label, value) in [("error", &f.error), ("key", &f.key)] {
        if !value.is_empty() {
            text.push_str(&format!(" ({label}: {value})"));
        }
    }
    text
}

/// The double-quoted word right after `prefix` in `msg`.
fn quoted_after(msg: &str, prefix: &str) -> Option<String> {
    let rest = msg.split_once(prefix)?.1.strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(rest[..end].to_string()).filter(|s| !s.is_empty())
}

/// The registry host of an image reference as containerd normalises it; `sha256:` ids
/// and unparsable names have none.
fn host_of(image: &str) -> Option<String> {
    image.parse::<ImageRef>().ok().map(|r| r.host().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAILED_21: &str = r#"time="2026-12-02T10:00:00.1Z" level=error msg="PullImage \"registry.ctrdiag.test:5443/aegis/app:latest\" failed" error="rpc error: code = Unknown desc = failed to pull and unpack image \"registry.ctrdiag.test:5443/aegis/app:latest\": failed to resolve image: failed to do request: Head \"https://registry.ctrdiag.test:5443/v2/aegis/app/manifests/latest\": tls: failed to verify certificate: x509: certificate signed by unknown authority""#;

    #[test]
    fn failed_pull_has_image_host_cause_and_containerds_text() {
        let Some(LineEvent::PullFailed {
            image,
            host,
            cause,
            text,
        }) = read_line(FAILED_21)
        else {
            panic!("not a failed pull")
        };
        assert_eq!(image, "registry.ctrdiag.test:5443/aegis/app:latest");
        assert_eq!(host.as_deref(), Some("registry.ctrdiag.test:5443"));
        assert_eq!(cause, CauseCode::TlsUnknownAuthority);
        assert!(text.starts_with("rpc error: code = Unknown desc = failed to pull"));
        assert!(!text.contains('\\'), "unescaped: {text}");
    }

    #[test]
    fn short_names_normalise_like_containerd() {
        let line = r#"level=error msg="PullImage \"busybox\" failed" error="dial tcp: lookup registry-1.docker.io: no such host""#;
        let Some(LineEvent::PullFailed { host, cause, .. }) = read_line(line) else {
            panic!()
        };
        assert_eq!(host.as_deref(), Some("docker.io"));
        assert_eq!(cause, CauseCode::DnsFailure);
    }

    #[test]
    fn successes_in_both_generations() {
        for line in [
            r#"time="t" level=info msg="PullImage \"r.test:5000/a:1\" returns image reference \"sha256:0123\"""#,
            r#"time="t" level=info msg="Pulled image \"r.test:5000/a:1\" with image id \"sha256:0123\", repo tag \"r.test:5000/a:1\", size \"2\" in 1.2s""#,
        ] {
            assert_eq!(
                read_line(line),
                Some(LineEvent::PullSucceeded {
                    image: "r.test:5000/a:1".into(),
                    host: Some("r.test:5000".into())
                }),
                "{line}"
            );
        }
        // The request line itself is neither.
        assert_eq!(
            read_line(r#"level=info msg="PullImage \"r.test:5000/a:1\"""#),
            None
        );
    }

    #[test]
    fn cri_plugin_failures_of_both_generations() {
        let v1 = r#"time="t" level=warning msg="failed to load plugin io.containerd.grpc.v1.cri" error="invalid plugin config: `configs.tls` cannot be set when `config_path` is provided""#;
        let Some(LineEvent::PluginFailed { cause, text }) = read_line(v1) else {
            panic!()
        };
        assert_eq!(cause, CauseCode::ConfigConflict);
        assert!(text.contains("cannot be set when `config_path`"), "{text}");
        let v2 = r#"level=warning msg="failed to load plugin" error="failed to create CRI service: failed to find snapshotter \"zfs\"" id=io.containerd.cri.v1.runtime type=io.containerd.cri.v1"#;
        assert!(matches!(
            read_line(v2),
            Some(LineEvent::PluginFailed {
                cause: CauseCode::CriUnavailable,
                ..
            })
        ));
        let other = r#"level=info msg="failed to load plugin" error="skip plugin: no btrfs" id=io.containerd.snapshotter.v1.btrfs"#;
        assert_eq!(read_line(other), None, "a skipped snapshotter is normal");
    }

    #[test]
    fn ignored_keys_and_deprecations_are_config_warnings() {
        let ignored = r#"time="t" level=warning msg="Ignoring unknown key in TOML for plugin" error="strict mode disabled" key="registry configs r.test:5000 tls" plugin=io.containerd.cri.v1.images"#;
        let Some(LineEvent::ConfigWarning { cause, text }) = read_line(ignored) else {
            panic!()
        };
        assert_eq!(cause, CauseCode::ConfigIgnored);
        assert!(
            text.contains("key: registry configs r.test:5000 tls"),
            "{text}"
        );
        let deprecated = r#"time="t" level=warning msg="`configs` is deprecated, please use `config_path` instead""#;
        assert!(matches!(
            read_line(deprecated),
            Some(LineEvent::ConfigWarning {
                cause: CauseCode::ConfigDeprecated,
                ..
            })
        ));
        assert_eq!(
            read_line(r#"level=info msg="loading plugin" id=io.containerd.cri.v1.images"#),
            None
        );
    }

    #[test]
    fn json_format_lines() {
        let line = r#"{"error":"failed to pull and unpack image \"r.test/a:1\": x509: certificate has expired or is not yet valid: current time 2026-12-02T10:00:00Z is after 2026-01-01T00:00:00Z","level":"error","msg":"PullImage \"r.test/a:1\" failed","time":"t"}"#;
        assert!(matches!(
            read_line(line),
            Some(LineEvent::PullFailed {
                cause: CauseCode::TlsExpired,
                ..
            })
        ));
    }
}
