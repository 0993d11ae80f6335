//! The stable cause codes (DESIGN.md): API fields, JSON values and metrics labels.
//! Codes may be added; none is ever renamed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

macro_rules! causes {
    ($($variant:ident => $code:literal,)*) => {
        /// Why a pull failed, or what is wrong with containerd's configuration.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum CauseCode { $($variant,)* }

        impl CauseCode {
            pub const ALL: &'static [CauseCode] = &[$(CauseCode::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(CauseCode::$variant => $code,)* }
            }
        }

        impl FromStr for CauseCode {
            type Err = UnknownCause;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($code => Ok(CauseCode::$variant),)* _ => Err(UnknownCause(s.chars().take(64).collect())) }
            }
        }
    };
}

causes! {
    TlsUnknownAuthority => "tls_unknown_authority",
    TlsExpired => "tls_expired",
    TlsNotYetValid => "tls_not_yet_valid",
    TlsHostnameMismatch => "tls_hostname_mismatch",
    TlsLegacyCommonName => "tls_legacy_common_name",
    TlsHandshake => "tls_handshake",
    HttpResponseToHttps => "http_response_to_https",
    PlainHttpToHttpsPort => "plain_http_to_https_port",
    AuthRequired => "auth_required",
    AccessDenied => "access_denied",
    NotFound => "not_found",
    DnsFailure => "dns_failure",
    ConnectionRefused => "connection_refused",
    Timeout => "timeout",
    TlsClientCertRequired => "tls_client_cert_required",
    HostsTomlInvalid => "hosts_toml_invalid",
    CriUnavailable => "cri_unavailable",
    ContainerdUnreachable => "containerd_unreachable",
    ConfigIgnored => "config_ignored",
    ConfigConflict => "config_conflict",
    // Added after DESIGN.md's list: deprecated settings that still work, and a
    // config.toml version the running containerd cannot read.
    ConfigDeprecated => "config_deprecated",
    ConfigUnreadable => "config_unreadable",
    // What is configured and works, but insecurely: plain HTTP, and verification off
    // although the certificate is valid.
    PlainHttpInUse => "plain_http_in_use",
    VerificationSkipped => "verification_skipped",
    // Works today, fails soon: the registry's certificate expires within the warning
    // window (`cert_expiry_warning_days`).
    TlsExpiringSoon => "tls_expiring_soon",
    Unknown => "unknown",
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown cause code {0:?}")]
pub struct UnknownCause(pub String);

impl fmt::Display for CauseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_match_design_md() {
        assert_eq!(CauseCode::ALL.len(), 26);
        for c in CauseCode::ALL {
            assert_eq!(c.as_str().parse::<CauseCode>(), Ok(*c));
            assert_eq!(serde_json::to_string(c).unwrap(), format!("\"{c}\""));
        }
        assert!("tls_whatever".parse::<CauseCode>().is_err());
    }
}
