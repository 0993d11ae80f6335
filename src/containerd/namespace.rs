//! containerd namespaces: validated once so requests never carry an invalid header.

use std::fmt;
use std::str::FromStr;

/// The kubelet's namespace, where CRI keeps its images.
pub const K8S_NAMESPACE: &str = "k8s.io";

/// containerd's own limit on a namespace name (`namespaces.Validate`).
const MAX_LEN: usize = 76;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid containerd namespace {0:?}: use letters and digits separated by single `.`, `_` or `-` (at most 76 characters), e.g. `k8s.io`"
)]
pub struct NamespaceError(pub String);

/// A containerd namespace name that containerd itself would accept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace(String);

impl Namespace {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether CRI owns images here (so removals go through CRI to keep the kubelet's view).
    pub fn is_cri(&self) -> bool {
        self.0 == K8S_NAMESPACE
    }
}

impl Default for Namespace {
    fn default() -> Self {
        Namespace(K8S_NAMESPACE.to_string())
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Namespace {
    type Err = NamespaceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || NamespaceError(s.chars().take(80).collect());
        if s.is_empty() || s.len() > MAX_LEN {
            return Err(err());
        }
        // Alphanumeric runs separated by exactly one separator, no separator at the ends.
        let mut prev_sep = true;
        for c in s.chars() {
            let sep = matches!(c, '.' | '_' | '-');
            if !(sep || c.is_ascii_alphanumeric()) || (sep && prev_sep) {
                return Err(err());
            }
            prev_sep = sep;
        }
        if prev_sep {
            return Err(err());
        }
        Ok(Namespace(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_containerd_names() {
        for ok in ["k8s.io", "default", "moby", "a-b_c.d9"] {
            assert_eq!(ok.parse::<Namespace>().unwrap().as_str(), ok);
        }
        assert!(Namespace::default().is_cri());
    }

    #[test]
    fn refuses_what_containerd_refuses() {
        for bad in ["", ".a", "a.", "a..b", "a/b", "a b", "ü", &"a".repeat(77)] {
            assert!(bad.parse::<Namespace>().is_err(), "{bad:?}");
        }
    }
}
