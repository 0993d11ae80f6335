//! Registry endpoint URLs as config.toml mirrors and hosts.toml entries name them.
//!
//! Both files key settings by URL strings that people write by hand (`http://reg:5000`,
//! `mirror.local/v2/proxy`, `HTTPS://Reg.Test/`). Matching them as text would miss
//! spellings of the same endpoint, and moving them between the two files must keep
//! what containerd does with each, so they are read once into scheme, host and path.

use crate::registry::host::RegistryHost;

/// `http(s)://host[:port][/path]`; anything else (user info, query, other schemes) is
/// not something ctrdiag edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub plain_http: bool,
    pub host: RegistryHost,
    /// Empty or starting with `/`, without a trailing `/`.
    pub path: String,
}

impl Endpoint {
    /// Reads a URL with an explicit `http://` or `https://` scheme.
    pub(crate) fn parse(url: &str) -> Option<Endpoint> {
        let (scheme, rest) = url.split_once("://")?;
        let plain_http = if scheme.eq_ignore_ascii_case("http") {
            true
        } else if scheme.eq_ignore_ascii_case("https") {
            false
        } else {
            return None;
        };
        Self::from_parts(plain_http, rest)
    }

    /// Reads a legacy `mirrors.<host>.endpoint` entry: containerd 1.x's CRI lets the
    /// scheme out and then uses `http` for loopback hosts and `https` for the rest.
    pub(crate) fn parse_legacy(raw: &str) -> Option<Endpoint> {
        if raw.contains("://") {
            return Self::parse(raw);
        }
        let (authority, _) = raw.split_once('/').unwrap_or((raw, ""));
        let loopback = authority.parse::<RegistryHost>().ok()?.is_loopback();
        Self::from_parts(loopback, raw)
    }

    /// Whether `url` is the plain-HTTP endpoint of `host` itself (`http://host`).
    pub(crate) fn is_plain_http_of(url: &str, host: &RegistryHost) -> bool {
        Self::parse(url).is_some_and(|e| e.plain_http && &e.host == host && e.path.is_empty())
    }

    /// The URL in its normal spelling.
    pub(crate) fn url(&self) -> String {
        let scheme = if self.plain_http { "http" } else { "https" };
        format!("{scheme}://{}{}", self.host, self.path)
    }

    /// A legacy mirror uses its path as the API root as written, while hosts.toml
    /// appends `/v2` unless the path ends with it or `override_path` is set.
    pub(crate) fn needs_override_path(&self) -> bool {
        !self.path.is_empty() && !self.path.ends_with("/v2")
    }

    fn from_parts(plain_http: bool, rest: &str) -> Option<Endpoint> {
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if path.contains(['?', '#']) {
            return None;
        }
        Some(Endpoint {
            plain_http,
            host: authority.parse().ok()?,
            path: path.trim_end_matches('/').to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(s: &str) -> RegistryHost {
        s.parse().expect("host")
    }

    #[test]
    fn reads_scheme_host_and_path() {
        let e = Endpoint::parse("HTTPS://Mirror.Local:5000/v2/proxy/").unwrap();
        assert!(!e.plain_http);
        assert_eq!(e.host, host("mirror.local:5000"));
        assert_eq!(e.path, "/v2/proxy");
        assert_eq!(e.url(), "https://mirror.local:5000/v2/proxy");
        assert!(e.needs_override_path());
        assert!(
            !Endpoint::parse("https://m/v2")
                .unwrap()
                .needs_override_path()
        );
        assert!(!Endpoint::parse("https://m/").unwrap().needs_override_path());
        for bad in [
            "ftp://m",
            "m.test",
            "https://user@m",
            "https://m/x?y",
            "https://",
            "https://m/#x",
        ] {
            assert_eq!(Endpoint::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn legacy_endpoints_get_containerds_default_scheme() {
        assert_eq!(
            Endpoint::parse_legacy("m.test:5000/x").unwrap().url(),
            "https://m.test:5000/x"
        );
        assert_eq!(
            Endpoint::parse_legacy("localhost:5000").unwrap().url(),
            "http://localhost:5000"
        );
        assert_eq!(
            Endpoint::parse_legacy("http://m.test").unwrap().url(),
            "http://m.test"
        );
        assert_eq!(Endpoint::parse_legacy("a b"), None);
    }

    #[test]
    fn plain_http_of_a_host_ignores_spelling_but_not_path_or_host() {
        let h = host("reg.test:5000");
        assert!(Endpoint::is_plain_http_of("http://Reg.Test:5000/", &h));
        assert!(!Endpoint::is_plain_http_of("https://reg.test:5000", &h));
        assert!(!Endpoint::is_plain_http_of("http://reg.test:5000/x", &h));
        assert!(!Endpoint::is_plain_http_of("http://reg.test", &h));
    }
}
