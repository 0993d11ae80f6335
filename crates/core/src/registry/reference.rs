//! Image references, normalised the way containerd (and the kubelet) read them:
//! `busybox` is `docker.io/library/busybox:latest`, `index.docker.io` is `docker.io`,
//! the first component is a registry only if it holds `.` or `:` or is `localhost`.
//! Pure: no I/O.

use std::fmt;
use std::str::FromStr;

use super::host::{HostError, RegistryHost};

/// distribution's limit on the name part.
const MAX_NAME: usize = 255;
const DEFAULT_REGISTRY: &str = "docker.io";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("the image reference is empty: give one like `registry.example.com:5000/team/app:1.0`")]
    Empty,
    #[error("image reference {reference:?}: {problem}")]
    Invalid { reference: String, problem: String },
    #[error("image reference {reference:?}: {source}")]
    Registry {
        reference: String,
        source: HostError,
    },
}

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    host: RegistryHost,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    pub fn host(&self) -> &RegistryHost {
        &self.host
    }

    /// `library/busybox`, `team/app`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.host, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let invalid = |problem: &str| ReferenceError::Invalid {
            reference: s.chars().take(300).collect(),
            problem: problem.to_string(),
        };
        if s.len() > 4096 {
            return Err(invalid("longer than 4096 bytes"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(parse_digest(d).ok_or_else(|| {
                    invalid("the digest must look like sha256:<64 lowercase hex digits>")
                })?),
            ),
            None => (s, None),
        };
        // A tag is after the last ':' that comes after the last '/' (a port's ':' is not).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(invalid(
                "a tag is 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`",
            ));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first, remainder.to_string())
            }
            _ => (DEFAULT_REGISTRY, name.to_string()),
        };
        // Host names are case-insensitive: compare (and keep) them lowercased, so
        // `Index.Docker.IO/x` normalises like `index.docker.io/x` (found by fuzzing).
        let registry = registry.to_ascii_lowercase();
        let registry = if registry == "index.docker.io" {
            DEFAULT_REGISTRY
        } else {
            registry.as_str()
        };
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid("repository names must be lowercase"));
        }
        if repository.is_empty() || !repository.split('/').all(valid_path_component) {
            return Err(invalid(
                "each path component is lowercase letters and digits, separated by `.`, `_`, `__` or dashes",
            ));
        }
        if registry.len() + 1 + repository.len() > MAX_NAME {
            return Err(invalid("the name is longer than 255 characters"));
        }
        let host = registry
            .parse()
            .map_err(|source| ReferenceError::Registry {
                reference: s.chars().take(300).collect(),
                source,
            })?;
        Ok(ImageRef {
            host,
            repository,
            tag: match (tag, &digest) {
                (Some(t), _) => Some(t.to_string()),
                (None, None) => Some("latest".to_string()),
                (None, Some(_)) => None,
            },
            digest,
        })
    }
}

fn parse_digest(d: &str) -> Option<String> {
    let (algo, hex) = d.split_once(':')?;
    let ok = match algo {
        "sha256" => hex.len() == 64,
        "sha512" => hex.len() == 128,
        _ => false,
    } && hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then(|| d.to_string())
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or one or more `-`.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_lowercase() || b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let sep_start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[sep_start..i];
        let ok =
            matches!(sep, "." | "_" | "__") || (!sep.is_empty() && sep.bytes().all(|x| x == b'-'));
        if !ok || i == sep_start {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(s: &str) -> String {
        s.parse::<ImageRef>()
            .unwrap_or_else(|e| panic!("{s}: {e}"))
            .to_string()
    }

    #[test]
    fn normalises_like_containerd() {
        assert_eq!(norm("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(
            norm("library/busybox:1.36"),
            "docker.io/library/busybox:1.36"
        );
        assert_eq!(
            norm("index.docker.io/team/app"),
            "docker.io/team/app:latest"
        );
        assert_eq!(
            norm("registry.ctrdiag.test:5443/ctrdiag/hello:v1"),
            "registry.ctrdiag.test:5443/ctrdiag/hello:v1"
        );
        assert_eq!(norm("localhost/app"), "localhost/app:latest");
        assert_eq!(norm("localhost:5000/a/b/c:x"), "localhost:5000/a/b/c:x");
        assert_eq!(norm("team/app"), "docker.io/team/app:latest");
        assert_eq!(norm("index.docker.Io/2"), "docker.io/library/2:latest");
        assert_eq!(norm("R.Test:5000/app"), "r.test:5000/app:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(norm(&format!("r.test/app@{d}")), format!("r.test/app@{d}"));
        assert_eq!(
            norm(&format!("r.test/app:1@{d}")),
            format!("r.test/app:1@{d}")
        );
        let r: ImageRef = "r.test:5000/a_b/c-d.e__f:tag".parse().unwrap();
        assert_eq!(r.host().to_string(), "r.test:5000");
        assert_eq!(r.repository(), "a_b/c-d.e__f");
        assert_eq!(r.tag(), Some("tag"));
    }

    #[test]
    fn refuses_malformed_references_with_a_reason() {
        for bad in [
            "",
            "UPPER/case",
            "r.test/App",
            "r.test/app:",
            "r.test/app:-x",
            "r.test/app@sha256:abc",
            "r.test/app@md5:0123",
            "r.test//app",
            "r.test/app/",
            "r.test/-app",
            "r.test/a..b",
            "../etc/passwd",
            "r.test:0/app",
            "r.test:99999/a",
            "a b",
            "r.test/app:t@g",
            &format!("r.test/{}", "a".repeat(300)),
            &format!("r.test/a:{}", "t".repeat(129)),
        ] {
            assert!(bad.parse::<ImageRef>().is_err(), "{bad:?} was accepted");
        }
        let e = "Team/App".parse::<ImageRef>().unwrap_err().to_string();
        assert!(e.contains("lowercase"), "{e}");
    }

    #[test]
    fn no_input_panics_and_accepted_ones_round_trip() {
        let mut x: u32 = 1;
        let alphabet = b"ab:/@._-A9sha256:0f";
        for _ in 0..5000 {
            let s: String = (0..(x % 40))
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    alphabet[(x >> 16) as usize % alphabet.len()] as char
                })
                .collect();
            if let Ok(r) = s.parse::<ImageRef>() {
                assert_eq!(r.to_string().parse::<ImageRef>().as_ref(), Ok(&r), "{s}");
            }
        }
    }
}
