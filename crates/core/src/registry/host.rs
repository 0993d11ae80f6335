//! A registry host as containerd names it: `host` or `host:port`.
//!
//! The type exists so that everything downstream (hosts.toml directories under
//! certs.d, config tables, metrics labels) can trust that the value cannot escape a
//! directory or smuggle TOML syntax: it is parsed once, at the boundary. Pure: no I/O.

use std::fmt;
use std::str::FromStr;

/// Longest host name DNS allows (RFC 1035), plus room for `:65535`.
const MAX_LEN: usize = 253 + 6;

/// Why a string is not a registry host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("registry host is empty: give a name like `registry.example.com:5000`")]
    Empty,
    #[error("registry host is {len} bytes long; at most {MAX_LEN} are allowed")]
    TooLong { len: usize },
    #[error(
        "registry host {host:?} contains {found:?}: only letters, digits, `.`, `-`, `_` and one `:port` are allowed"
    )]
    BadCharacter { host: String, found: char },
    #[error("registry host {host:?} has an empty or `..` label")]
    BadLabel { host: String },
    #[error(
        "registry host {host:?} has the label {label:?}: a DNS label is 1 to 63 characters and neither starts nor ends with `-`"
    )]
    LabelForm { host: String, label: String },
    #[error("registry host {host:?} has port {port:?}: a port is a number from 1 to 65535")]
    BadPort { host: String, port: String },
    #[error(
        "`_default` is containerd's fallback hosts directory, not a registry: name the registry \
         itself (e.g. `registry.example.com:5000`)"
    )]
    DefaultDirName,
    #[error(
        "registry host {host:?} looks like containerd's directory name for `{name}:{port}` \
         (certs.d writes the port as `_{port}_`), so its hosts directory would be confused with \
         that registry's: use the registry's real name, with `:{port}` if that is what you meant"
    )]
    PortDirName {
        host: String,
        name: String,
        port: String,
    },
}

/// A validated `host[:port]` (IPv6 literals in brackets, `[::1]:5000`, are accepted).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistryHost {
    name: String,
    port: Option<u16>,
}

impl RegistryHost {
    /// The host name or IP literal without the port (brackets kept for IPv6).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The explicit port, if one was given.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether containerd treats this host as plain HTTP by default
    /// (`localhost` and loopback addresses, see LAB.md).
    pub fn is_loopback(&self) -> bool {
        let n = self.name.trim_start_matches('[').trim_end_matches(']');
        n == "localhost"
            || n.parse::<std::net::IpAddr>()
                .map(|ip| ip.is_loopback())
                .unwrap_or(false)
    }
}

impl fmt::Display for RegistryHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

impl FromStr for RegistryHost {
    type Err = HostError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(HostError::Empty);
        }
        if s.len() > MAX_LEN {
            return Err(HostError::TooLong { len: s.len() });
        }
        let (name, port) = split_port(s)?;
        if let Some(inner) = name.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or_else(|| HostError::BadLabel {
                host: s.to_string(),
            })?;
            if inner.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(HostError::BadLabel {
                    host: s.to_string(),
                });
            }
        } else {
            if let Some(found) = name
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
            {
                return Err(HostError::BadCharacter {
                    host: s.to_string(),
                    found,
                });
            }
            if name.split('.').any(|l| l.is_empty()) {
                return Err(HostError::BadLabel {
                    host: s.to_string(),
                });
            }
            // No resolver takes these, and a leading `-` makes a certs.d directory
            // name that tools read as an option.
            if let Some(label) = name
                .split('.')
                .find(|l| l.len() > 63 || l.starts_with('-') || l.ends_with('-'))
            {
                return Err(HostError::LabelForm {
                    host: s.to_string(),
                    label: label.to_string(),
                });
            }
        }
        let name = name.to_ascii_lowercase();
        check_dir_lookup(s, &name)?;
        Ok(RegistryHost { name, port })
    }
}

/// Refuses names that containerd's certs.d lookup would take for another directory:
/// `_default` (the fallback for every host) and `<name>_<digits>_` (its spelling of
/// `<name>:<digits>`). Checked on the lowercased name, the form directories get.
fn check_dir_lookup(input: &str, name: &str) -> Result<(), HostError> {
    if name == "_default" {
        return Err(HostError::DefaultDirName);
    }
    let mangled = name
        .strip_suffix('_')
        .and_then(|n| n.rsplit_once('_'))
        .filter(|(n, p)| !n.is_empty() && !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    match mangled {
        Some((n, p)) => Err(HostError::PortDirName {
            host: input.to_string(),
            name: n.to_string(),
            port: p.to_string(),
        }),
        None => Ok(()),
    }
}

/// The registry a credential or config key names: `r.test:5000`, or a URL such as
/// `https://index.docker.io/v1/` (scheme and path dropped). `None` for anything else.
pub fn registry_of_key(key: &str) -> Option<RegistryHost> {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest);
    host.parse().ok()
}

fn split_port(s: &str) -> Result<(&str, Option<u16>), HostError> {
    let bad_port = |p: &str| HostError::BadPort {
        host: s.to_string(),
        port: p.to_string(),
    };
    let (name, port) = if s.starts_with('[') {
        match s.rfind("]:") {
            Some(i) => (&s[..=i], Some(&s[i + 2..])),
            None => (s, None),
        }
    } else {
        match s.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err(bad_port(p)),
        },
    };
    Ok((name, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_ports_and_ipv6() {
        let h: RegistryHost = "Registry.ctrdiag.test:5443".parse().unwrap();
        assert_eq!(h.to_string(), "registry.ctrdiag.test:5443");
        assert_eq!(h.port(), Some(5443));
        let h: RegistryHost = "[::1]:5000".parse().unwrap();
        assert_eq!(h.name(), "[::1]");
        assert!(h.is_loopback());
        assert!(
            "docker.io"
                .parse::<RegistryHost>()
                .unwrap()
                .port()
                .is_none()
        );
    }

    #[test]
    fn keys_and_urls_name_their_registry() {
        let h = |s: &str| registry_of_key(s).map(|h| h.to_string());
        assert_eq!(
            h("https://index.docker.io/v1/").as_deref(),
            Some("index.docker.io")
        );
        assert_eq!(h("r.test:5000").as_deref(), Some("r.test:5000"));
        assert_eq!(h("http://R.test:5000/path").as_deref(), Some("r.test:5000"));
        assert_eq!(h("not a host"), None);
    }

    #[test]
    fn refuses_what_could_escape_a_directory_or_break_toml() {
        for bad in [
            "", "..", "../etc", "a/b", "a\0b", "a..b", ".a", "a:", "a:0", "a:99999", "a:+5",
            "a\"b", "a b", "[::1", "[zz]:5", "-a.test", "a-.test", "a.-b",
        ] {
            assert!(bad.parse::<RegistryHost>().is_err(), "{bad:?} was accepted");
        }
        // Names containerd's certs.d lookup would confuse with another directory.
        for bad in [
            "_default",
            "_DEFAULT:5000",
            "reg_5000_",
            "reg_5000_:443",
            "my.reg_1_",
        ] {
            assert!(bad.parse::<RegistryHost>().is_err(), "{bad:?} was accepted");
        }
        assert!(matches!(
            format!("{}.test", "a".repeat(64)).parse::<RegistryHost>(),
            Err(HostError::LabelForm { .. })
        ));
        assert!(
            format!("{}.test", "a".repeat(63))
                .parse::<RegistryHost>()
                .is_ok()
        );
        assert!(matches!(
            "a".repeat(300).parse::<RegistryHost>(),
            Err(HostError::TooLong { .. })
        ));
        assert_eq!(
            "_default".parse::<RegistryHost>(),
            Err(HostError::DefaultDirName)
        );
        let err = "Reg_5000_".parse::<RegistryHost>().unwrap_err();
        assert!(
            matches!(&err, HostError::PortDirName { name, port, .. } if name == "reg" && port == "5000"),
            "{err:?}"
        );
        assert!(err.to_string().contains("`reg:5000`"), "{err}");
        // Underscores elsewhere stay legal: only the `_<digits>_` ending is containerd's.
        for ok in ["my_reg", "reg_5000", "reg_x_", "_default.example", "a_1_b"] {
            assert!(ok.parse::<RegistryHost>().is_ok(), "{ok:?} was refused");
        }
    }
}
