//! What each cause code means, for people: the one source of `ctrdiag explain CAUSE`
//! and of the pages under `docs/causes/` (which a test regenerates from here, so they
//! cannot drift). Each explanation says what the cause means, how containerd words it
//! on each version (the classifier's own test wordings, so the pages quote only texts
//! ctrdiag recognises), the remedies in the order the findings engine proposes them,
//! and what `ctrdiag fix` does about it.
//!
//! Pure: static text in, Markdown and terminal text out.

use serde::Serialize;

use crate::cause::CauseCode;
use crate::diagnose::wordings::WORDINGS;

/// Where the committed pages live, relative to the repository's root.
pub const DOCS_DIR: &str = "docs/causes";

/// What an operator can do, best first; `command` is a ctrdiag command line where
/// ctrdiag does it (`TARGET`: the failing image or registry `host[:port]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Remedy {
    pub text: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<&'static str>,
}

/// One cause, explained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub cause: CauseCode,
    /// One line, for lists.
    pub title: &'static str,
    pub meaning: &'static str,
    /// How the versions of containerd (and Go) differ in saying it, or why containerd
    /// never says it: it comes before the examples.
    pub versions: &'static str,
    /// containerd's own texts for this cause, each with where it comes from.
    pub wordings: Vec<Wording>,
    pub remedies: &'static [Remedy],
    /// What `ctrdiag fix` does about it, or what to do when it cannot help.
    pub fix: &'static str,
    /// This cause's page, relative to the repository's root.
    pub doc: String,
}

/// A text containerd (or the kubelet) writes for a cause, as the classifier's tests
/// hold it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Wording {
    pub text: &'static str,
    pub origin: Origin,
}

/// Where a wording comes from, read off the text itself by markers measured on the
/// lab's containerd 1.6.20 (Go 1.19.8), 1.7.24 (Go 1.24.4) and 2.1.9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Origin {
    /// The containerd versions that word it so, when the text shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub containerd: Option<&'static str>,
    /// The Go generation whose error strings it carries, when the text shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go: Option<&'static str>,
    /// Where the text is seen: a CRI error, containerd's log, the kubelet's log.
    pub seen_in: &'static str,
}

impl Origin {
    /// `containerd 2.x · Go 1.20+ · CRI PullImage error`.
    pub fn label(&self) -> String {
        [self.containerd, self.go, Some(self.seen_in)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

/// What the labels of [`Origin`] rest on, for the pages.
pub const ORIGIN_NOTE: &str = "Each example is labelled with the containerd versions that word it so (phrases measured in ctrdiag's lab, pulling from the same faulty registries with containerd 1.6.20, 1.7.24 and 2.1.9), the Go generation whose error strings it carries (Go 1.20 and later wrap x509 errors in `tls: failed to verify certificate:`; Debian 12's containerd 1.6.20 is built with Go 1.19.8, the lab's 1.7.24 with Go 1.24.4), and where it is seen. A label says only what the text shows; containerd 2.x pulling in local mode (with legacy registry tables in config.toml) was not measured.";

const V1_6: u8 = 1;
const V1_7: u8 = 2;
const V2_X: u8 = 4;

/// Phrases that only some containerd versions write, and which: measured in the lab
/// (tests/ pulls against 1.6.20, 1.7.24 and 2.1.9) for the same registry faults.
const CONTAINERD_MARKERS: &[(&str, u8)] = &[
    ("failed to resolve image: ", V2_X),
    ("failed to resolve reference ", V1_6 | V1_7),
    ("pulling from host ", V1_6),
    ("unexpected status from HEAD request to ", V1_7 | V2_X),
    (
        "authorization failed: no basic auth credentials",
        V1_7 | V2_X,
    ),
];

/// The containerd versions `text` is worded like, if its markers say.
fn containerd_of(text: &str) -> Option<&'static str> {
    let versions = CONTAINERD_MARKERS
        .iter()
        .filter(|(marker, _)| text.contains(marker))
        .fold(V1_6 | V1_7 | V2_X, |set, (_, of)| set & of);
    match versions {
        V1_6 => Some("containerd 1.6"),
        V1_7 => Some("containerd 1.7"),
        V2_X => Some("containerd 2.x"),
        x if x == V1_6 | V1_7 => Some("containerd 1.6, 1.7"),
        x if x == V1_7 | V2_X => Some("containerd 1.7, 2.x"),
        // Every version, or markers that contradict each other: the text does not say.
        _ => None,
    }
}

/// The Go generation whose error strings `text` carries, if they tell.
fn go_of(text: &str) -> Option<&'static str> {
    let in_request = text.contains("failed to do request: ");
    if text.contains("tls: failed to verify certificate: ") {
        Some("Go 1.20+")
    } else if text.contains("GODEBUG=x509ignoreCN=0") {
        Some("Go 1.15/1.16")
    } else if text.contains("legacy Common Name field, use SANs instead") {
        Some("Go 1.17+")
    } else if [": Get http", ": Head http"]
        .iter()
        .any(|m| text.contains(m))
    {
        Some("Go 1.13 or older (URL unquoted)")
    } else if in_request && text.contains("x509: ") {
        Some("Go 1.19 or older (bare `x509:`)")
    } else {
        None
    }
}

/// Where a text like `text` is read.
fn seen_in(text: &str) -> &'static str {
    let klog = text.len() > 5
        && text.as_bytes()[0].is_ascii_uppercase()
        && text.as_bytes()[1..5].iter().all(u8::is_ascii_digit);
    if text.contains(" containerd[") {
        "containerd's log via journald"
    } else if text.starts_with("time=\"") {
        "containerd's log (logfmt)"
    } else if text.starts_with("{\"") {
        "containerd's log (JSON)"
    } else if klog {
        "the kubelet's log (klog)"
    } else if text.starts_with("rpc error: code = ") {
        "CRI error as crictl and the kubelet get it"
    } else if text.starts_with("failed to pull and unpack image ") {
        "CRI PullImage error"
    } else {
        "error text (or its telling part)"
    }
}

/// Where `text` comes from, as far as the text itself tells.
pub fn origin(text: &str) -> Origin {
    Origin {
        containerd: containerd_of(text),
        go: go_of(text),
        seen_in: seen_in(text),
    }
}

/// containerd's wordings of `cause`, from the classifier's test wordings.
pub fn wordings(cause: CauseCode) -> Vec<Wording> {
    WORDINGS
        .iter()
        .filter(|(text, c)| *c == cause && !text.is_empty())
        .map(|(text, _)| Wording {
            text,
            origin: origin(text),
        })
        .collect()
}

/// The explanation of `cause`.
pub fn explain(cause: CauseCode) -> Explanation {
    let e = entry(cause);
    Explanation {
        cause,
        title: e.title,
        meaning: e.meaning,
        versions: e.versions,
        wordings: wordings(cause),
        remedies: e.remedies,
        fix: e.fix,
        doc: format!("{DOCS_DIR}/{cause}.md"),
    }
}

/// The hand-written part of an explanation.
struct Entry {
    title: &'static str,
    meaning: &'static str,
    versions: &'static str,
    remedies: &'static [Remedy],
    fix: &'static str,
}

// Struct literals, not `const fn` calls: only literals are promoted to the `'static`
// slices the entries hold.
macro_rules! run {
    ($text:expr, $command:expr $(,)?) => {
        Remedy {
            text: $text,
            command: Some($command),
        }
    };
}

macro_rules! say {
    ($text:expr $(,)?) => {
        Remedy {
            text: $text,
            command: None,
        }
    };
}

/// What `fix --ca` does: its own explanation, and part of `tls_unknown_authority`'s.
macro_rules! ca_fix {
    () => {
        "`ctrdiag fix TARGET --ca FILE` writes the CA as `ctrdiag-ca.crt` next to the registry's hosts.toml under containerd's `config_path` and names it there (`ca = ...`), keeping everything else in that file. With a single-root `config_path` already set, containerd reads it at the next pull: no restart. Without one, the same change sets `config_path` in config.toml and restarts containerd through systemd; legacy `mirrors` / `configs.<host>.tls` tables that would stop the CRI plugin next to `config_path` are moved into hosts.toml in the same change. The plan is shown first (`--dry-run` shows only the plan and diffs). On containerd 2.x a trial comes before any write: the daemon stages the hosts.toml and CA in a private directory and pulls through containerd's Transfer service with it, and a trial that fails stops the fix with nothing written (1.x has no Transfer service that honours it: the trial is reported as not run). Every file is backed up, and a real pull through CRI proves the change; if that pull still fails, the change is rolled back. `ctrdiag rollback` undoes it later."
    };
}
const CA_FIX: &str = ca_fix!();

/// What ctrdiag cannot change on the node for a certificate the registry must fix.
const CERT_ON_REGISTRY: &str = "Nothing on the node makes this certificate valid, so `ctrdiag fix` has no mode for it: the registry's operator must act. Verification could be switched off (`ctrdiag fix TARGET --insecure-skip-verify --ttl 2h`, test environments only), but then `ctrdiag diagnose` keeps warning that pulls work only because verification is skipped, and names this cause as the real problem.";

/// For causes no file on the node can change.
const NO_FIX: &str = "Nothing: no setting of containerd's changes this, so `ctrdiag fix` has no mode for it. The remedies above are for the registry, the network or the pod.";

/// The explanations. No wildcard arm: a new cause code does not compile without one.
fn entry(cause: CauseCode) -> Entry {
    match cause {
        CauseCode::TlsUnknownAuthority => Entry {
            title: "The registry's certificate is signed by a CA containerd does not trust",
            meaning: "containerd checks the registry's certificate chain against the system's trust store (read once, when containerd starts) and the `ca` files of the registry's hosts.toml. Neither holds the CA that signed it: a private or corporate CA, a self-signed certificate, a registry that does not send its intermediate certificate, or a proxy that intercepts TLS.\n\n`(possibly because of \"crypto/rsa: verification error\" while trying to verify candidate authority certificate \"NAME\")` means a CA of that name is trusted, but it did not sign this certificate: the CA was reissued, or two CAs share a name.",
            versions: "The same x509 error on every version; what differs is the wrapping. containerd 2.x says `failed to resolve image:`, 1.6 and 1.7 `failed to resolve reference \"IMAGE\":`; containerd built with Go 1.20 or later puts `tls: failed to verify certificate:` before `x509:`.",
            remedies: &[
                run!(
                    "trust the registry's CA through hosts.toml (no restart on a containerd with config_path)",
                    "ctrdiag fix TARGET --ca /path/to/ca.crt",
                ),
                run!(
                    "or trust the CA certificate the registry itself sends, after confirming its SHA-256 fingerprint (`ctrdiag diagnose` prints it) with the registry's operator",
                    "ctrdiag fix TARGET --ca-from-server --sha256 FINGERPRINT",
                ),
                run!(
                    "if the registry sends only its own certificate: pin it (pulls fail again when it is renewed)",
                    "ctrdiag fix TARGET --pin-server-certificate --sha256 FINGERPRINT",
                ),
                run!(
                    "if the CA was added to the system trust store after containerd started, `diagnose` says the system store trusts it: restart containerd so it reads the store again",
                    "ctrdiag restart-containerd",
                ),
                run!(
                    "test environments only: skip verification for a limited time",
                    "ctrdiag fix TARGET --insecure-skip-verify --ttl 2h",
                ),
            ],
            fix: concat!(
                "This is what `ctrdiag fix` is for. `--ca FILE` is the fix (below). `--ca-from-server --sha256 FP` installs the CA certificate the registry presents, and only if its fingerprint is the one given; `--pin-server-certificate --sha256 FP` does the same with the registry's own certificate. `--insecure-skip-verify --ttl D` writes `skip_verify = true` instead, a change ctrdiag lists as insecure in `ctrdiag status` and ends by itself when the time to live is over.\n\n",
                ca_fix!(),
                " A CA fix also removes every `skip_verify` for the host. ctrdiagd's `[auto_fix_ca]` setting runs this fix by itself when it detects this cause for a registry it names.",
            ),
        },
        CauseCode::TlsExpired => Entry {
            title: "The registry's certificate has expired",
            meaning: "The certificate's `notAfter` is before the node's clock. The message carries both: `current time NOW is after NOT_AFTER`. If NOW is wrong (a node clock far ahead), the clock is the problem, not the certificate.",
            versions: "Go's one text for both ends of the validity period; ctrdiag tells them apart by `is after` (expired) or `is before` (not yet valid). Older Go versions print only `x509: certificate has expired or is not yet valid`, which ctrdiag reads as expired.",
            remedies: &[
                say!(
                    "renew the certificate on the registry; nothing on the node can make an expired certificate valid",
                ),
                say!("if the current time in the message is wrong, correct the node's clock (NTP)"),
            ],
            fix: CERT_ON_REGISTRY,
        },
        CauseCode::TlsNotYetValid => Entry {
            title: "The registry's certificate is not valid yet, by the node's clock",
            meaning: "The certificate's `notBefore` is after the node's clock: `current time NOW is before NOT_BEFORE`. Usually the node's clock is behind (no NTP yet on a fresh machine, a dead RTC battery, a restored VM snapshot); sometimes the certificate was issued with a start date in the future.",
            versions: "The same Go text as for an expired certificate, with `is before` instead of `is after`.",
            remedies: &[say!(
                "check the node's clock (`timedatectl`, NTP), or the certificate's start date on the registry",
            )],
            fix: "Nothing on the node but its clock: `ctrdiag fix` has no mode for it. Correct the clock (NTP) and pull again; if the clock is right, the registry's operator must reissue the certificate.",
        },
        CauseCode::TlsHostnameMismatch => Entry {
            title: "The registry's certificate is not valid for the name containerd connects to",
            meaning: "The certificate's subjectAltName lists other names than the one in the image reference (`certificate is valid for A, B, not NAME`), or it has no names at all, or the registry is reached by IP address and the certificate carries no IP SAN (`cannot validate certificate for IP because it doesn't contain any IP SANs`). Trusting a CA does not help: the name is checked after the chain.",
            versions: "Go's texts, the same on every containerd; with Go 1.20 or later wrapped in `tls: failed to verify certificate:`.",
            remedies: &[
                say!(
                    "reissue the registry's certificate with the name (or IP) it is pulled by in its subjectAltName",
                ),
                say!("or pull through a name the certificate carries"),
            ],
            fix: "`ctrdiag fix` cannot change which names a certificate carries, and `--ca` would not help: the CA may well be trusted already. Reissue the certificate, or change the image references to a name it carries.",
        },
        CauseCode::TlsLegacyCommonName => Entry {
            title: "The registry's certificate names the host only in its Common Name",
            meaning: "The certificate has no subjectAltName, only a Common Name (CN). Go stopped reading host names from the CN in Go 1.15, and since Go 1.17 nothing can turn that back on; every containerd in use is built with a newer Go.",
            versions: "The text tells the Go generation: `use SANs or temporarily enable Common Name matching with GODEBUG=x509ignoreCN=0` is Go 1.15 and 1.16, `use SANs instead` Go 1.17 and later.",
            remedies: &[say!(
                "reissue the certificate with a subjectAltName (SAN) for the host",
            )],
            fix: CERT_ON_REGISTRY,
        },
        CauseCode::TlsHandshake => Entry {
            title: "The TLS handshake failed for a reason other than trust",
            meaning: "The registry and containerd could not agree on TLS, or the certificate is unusable for other reasons than its CA, names or dates: the server offers only TLS 1.0/1.1 or ciphers Go no longer accepts (`remote error: tls: protocol version not supported`, `handshake failure`), the certificate's key usage does not allow serving TLS (`incompatible key usage`), or another x509 error.",
            versions: "Go's texts, the same on every containerd. `remote error:` means the registry ended the handshake and said why.",
            remedies: &[
                say!("read containerd's message; `journalctl -u containerd` has more"),
                say!(
                    "check the registry's TLS settings: TLS 1.2 or later, current ciphers, and a certificate with the serverAuth extended key usage (`openssl s_client -connect HOST:PORT` from the node shows what it offers)",
                ),
            ],
            fix: NO_FIX,
        },
        CauseCode::HttpResponseToHttps => Entry {
            title: "The registry speaks plain HTTP, and containerd talks HTTPS to it",
            meaning: "containerd used HTTPS, as it does for every registry except localhost and loopback addresses, and the registry answered in plain HTTP. Skipping verification does not help: there is no TLS to verify.",
            versions: "Go's text, the same on every containerd; `first record does not look like a TLS handshake` is the same situation seen from another Go code path.",
            remedies: &[
                run!(
                    "tell containerd to use http:// for this registry",
                    "ctrdiag fix TARGET --plain-http",
                ),
                say!("better: serve the registry over TLS and trust its CA"),
            ],
            fix: "`ctrdiag fix TARGET --plain-http` writes the registry's hosts.toml with `server = \"http://HOST\"` (under `config_path`, which it sets if missing), proves it with a real pull and records it as an insecure change: `ctrdiag status` lists it, and with `--ttl 2h` ctrdiagd ends it by itself. `ctrdiag rollback` undoes it.",
        },
        CauseCode::PlainHttpToHttpsPort => Entry {
            title: "containerd talked plain HTTP to a registry that speaks TLS",
            meaning: "containerd uses plain HTTP for `localhost` and loopback addresses (127.0.0.0/8, ::1) unless told otherwise, and for any registry whose hosts.toml says `http://`. A TLS registry answers such a request with a TLS alert (`malformed HTTP response \"\\x15\\x03...\"`) or with `400 Bad Request` (`Client sent an HTTP request to an HTTPS server`).",
            versions: "containerd 1.7 and 2.x name the URL: `unexpected status from HEAD request to http://...: 400 Bad Request`. containerd 1.6 says only `pulling from host HOST failed with status code [manifests TAG]: 400 Bad Request`, without the scheme: ctrdiag reads that as this cause only for a loopback registry, where HTTP is containerd's default.",
            remedies: &[
                say!(
                    "use a registry name that is not localhost or a loopback IP (containerd uses HTTP for those), or set server = \"https://...\" in its hosts.toml",
                ),
                say!(
                    "if a ctrdiag change turned plain HTTP on for it (`ctrdiag changes`), roll that change back with `ctrdiag rollback ID`",
                ),
            ],
            fix: "`ctrdiag fix TARGET --ca FILE` writes a hosts.toml whose `server` is `https://HOST` together with the registry's CA, which is the hosts.toml this needs when the registry's CA is a private one; `--dry-run` shows it first. `ctrdiag rollback ID` undoes a `--plain-http` change that caused it.",
        },
        CauseCode::AuthRequired => Entry {
            title: "The registry wants credentials for this image",
            meaning: "The registry answered 401: it needs credentials and got none, or none it accepts. CRI pulls use the pod's imagePullSecrets, the kubelet's credential providers and docker-style files the kubelet reads (`/var/lib/kubelet/config.json`), plus containerd's own `registry.configs.\"HOST\".auth`; never `~/.docker/config.json` of a user. A 401 on `/v2/` alone is normal for registries that hand out tokens; only the pull says whether this image needs credentials.",
            versions: "containerd 1.6 says `pulling from host HOST failed with status code [...]: 401 Unauthorized`; 1.7 and 2.x, against a registry with basic authentication, say `pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials`. Token registries give `failed to fetch anonymous token: ... 401 Unauthorized`.",
            remedies: &[
                say!(
                    "give the pod an imagePullSecret for this registry (CRI pulls do not read ~/.docker/config.json)",
                ),
                run!(
                    "see which credentials the node holds for the registry (never the secrets themselves)",
                    "ctrdiag creds scan REGISTRY",
                ),
            ],
            fix: "`ctrdiag fix` does not handle credentials. `ctrdiag creds scan REGISTRY` lists every credential the node holds for the registry, and `ctrdiag creds clean REGISTRY` removes stale ones as a change that `ctrdiag rollback` undoes; a pod's imagePullSecrets are Kubernetes objects (`ctrdiag k8s pull-secrets show`).",
        },
        CauseCode::AccessDenied => Entry {
            title: "The registry refused access to the image",
            meaning: "The registry answered 403 or `insufficient_scope`: the credentials were accepted but may not read this repository. Docker Hub gives the same answer (`pull access denied, repository does not exist or may require authorization`) for a repository that does not exist, so a typo in the name looks like this too.",
            versions: "The registry's words, passed on by every containerd version alike.",
            remedies: &[
                say!("check the repository name and that the pull secret's account may read it"),
                run!(
                    "see which credentials the node sends for the registry",
                    "ctrdiag creds scan REGISTRY",
                ),
            ],
            fix: "`ctrdiag fix` does not handle credentials or registry permissions. `ctrdiag creds scan REGISTRY` shows which credentials the node holds for the registry; `ctrdiag creds clean REGISTRY` removes wrong ones as a change that `ctrdiag rollback` undoes.",
        },
        CauseCode::NotFound => Entry {
            title: "The image does not exist on the registry",
            meaning: "The registry has no manifest for this repository and tag (or digest), or a blob the manifest names is missing (`could not fetch content descriptor ... not found`). CRI returns it with gRPC code NotFound.",
            versions: "containerd 2.x says `failed to resolve image: IMAGE: not found`, 1.6 and 1.7 `failed to resolve reference \"IMAGE\": IMAGE: not found`; registries add their own `manifest unknown`.",
            remedies: &[say!("check the repository and tag (or digest)")],
            fix: NO_FIX,
        },
        CauseCode::DnsFailure => Entry {
            title: "The registry's name does not resolve",
            meaning: "containerd runs on the node and resolves with the node's resolver (`/etc/resolv.conf`, `/etc/hosts`), not with the cluster's DNS unless the node is set up to use it. `no such host` means the name does not exist there; `server misbehaving`, `i/o timeout` or `Temporary failure in name resolution` mean the DNS server did not answer properly.",
            versions: "Go's resolver texts, the same on every containerd. The message names the DNS server asked (`lookup NAME on 10.96.0.10:53`).",
            remedies: &[say!(
                "check the name, the node's DNS (/etc/resolv.conf) and /etc/hosts",
            )],
            fix: NO_FIX,
        },
        CauseCode::ConnectionRefused => Entry {
            title: "Nothing listens on the registry's address",
            meaning: "The name resolved, but the connection was refused (nothing listens on that port, or a firewall rejects it), or there is no route to the address. In containerd's log, `trying next host` with this error means one of several hosts in hosts.toml (a mirror) is down and containerd tried the next.",
            versions: "Go's texts, the same on every containerd: `connect: connection refused`, `no route to host`, `network is unreachable`.",
            remedies: &[say!("check that the registry runs and the port is right")],
            fix: NO_FIX,
        },
        CauseCode::Timeout => Entry {
            title: "The registry did not answer in time",
            meaning: "A connection, TLS handshake or response took too long: a firewall that drops packets instead of refusing them, a proxy, an overloaded registry. When ctrdiagd's own limit ends a test pull (`pull_timeout_secs`), the finding says so: a very large image on a slow link can take longer.",
            versions: "Go's texts, the same on every containerd: `i/o timeout`, `TLS handshake timeout`, `Client.Timeout exceeded`, gRPC's `context deadline exceeded`.",
            remedies: &[
                say!("check firewalls and proxies between the node and the registry"),
                say!(
                    "for a very large image on a slow link, raise pull_timeout_secs in ctrdiagd's settings",
                ),
            ],
            fix: NO_FIX,
        },
        CauseCode::TlsClientCertRequired => Entry {
            title: "The registry requires a client certificate (mutual TLS)",
            meaning: "The registry asks for a client certificate and containerd sent none, or one it rejects (`remote error: tls: certificate required`, or `bad certificate` from older servers). The registry's own log says `tls: client didn't provide a certificate`.",
            versions: "Go's texts; `certificate required` is TLS 1.3's alert, `bad certificate` TLS 1.2's.",
            remedies: &[say!(
                "configure the client certificate and key in the registry's hosts.toml, in its [host.\"https://...\"] table: client = [[\"/path/client.cert\", \"/path/client.key\"]] (a pair in an array of pairs; a flat list is read as certificates with no key)",
            )],
            fix: "`ctrdiag fix` does not install client certificates. A `--ca` fix keeps a `client` line already in the registry's hosts.toml, and `ctrdiag diagnose` probes with the client certificate hosts.toml names, so it shows whether the registry accepts it.",
        },
        CauseCode::HostsTomlInvalid => Entry {
            title: "containerd does not use the registry's hosts.toml",
            meaning: "containerd drops a hosts.toml it cannot parse or that names files it cannot read, and pulls as if it were not there (falling back to `*.crt` files in the directory). The pull then fails with whatever the file was meant to fix, often `x509: certificate signed by unknown authority`, and only containerd's log says why. containerd 1.x up to 1.7.31 also drops a hosts.toml without any `[host.\"...\"]` table (its log says invalid `host` tree).",
            versions: "In containerd's log: 1.6 and 1.7 say `failed to decode hosts.toml` with the TOML error, 2.x `failed to decode /etc/containerd/certs.d/HOST/hosts.toml` with the path. A missing CA file gives `unable to read CA cert`, a bad client pair `failed to load X509 key pair`.",
            remedies: &[run!(
                "correct the named line, or let ctrdiag write a usable hosts.toml for the registry",
                "ctrdiag fix REGISTRY --ca /path/to/ca.crt --dry-run",
            )],
            fix: "`ctrdiag fix REGISTRY --ca FILE` replaces a hosts.toml that containerd drops with a usable one for the registry (the old file is backed up, and `ctrdiag rollback` puts it back); a file containerd can read is edited in place, keeping its other settings. `--remove-overrides` takes the registry's hosts.toml out of service instead.",
        },
        CauseCode::CriUnavailable => Entry {
            title: "containerd's CRI plugin is not loaded: the kubelet cannot pull anything",
            meaning: "containerd runs, but its CRI service does not answer (`unknown service runtime.v1.ImageService`): the CRI plugin failed to load, or it is disabled. Common reasons: legacy registry tables next to `config_path` (`config_conflict`), `disabled_plugins = [\"cri\"]` (as Docker's `containerd.io` package ships it), a snapshotter that is not there.",
            versions: "The kubelet and crictl see `unknown service runtime.v1.ImageService`; containerd's log says `failed to load plugin io.containerd.grpc.v1.cri` with the reason. containerd 1.6.25+, 1.7.9+ and 2.x also report the plugin's init error through their Introspection service, which `ctrdiag status` and `diagnose` show.",
            remedies: &[
                say!(
                    "read the plugin's own init error in `ctrdiag status` (containerd's Introspection), or look for `failed to load plugin io.containerd.grpc.v1.cri` in `journalctl -u containerd`",
                ),
                run!(
                    "remove conflicting legacy registry tables",
                    "ctrdiag fix REGISTRY --remove-overrides --all-hosts",
                ),
                run!(
                    "if `disabled_plugins` names \"cri\", remove it from config.toml and restart containerd",
                    "ctrdiag restart-containerd",
                ),
            ],
            fix: "When legacy registry tables stop the plugin, `ctrdiag fix REGISTRY --remove-overrides --all-hosts` takes them out of config.toml (credentials in `configs.<host>.auth` stay) and restarts containerd, or `ctrdiag fix REGISTRY --ca FILE` moves them into hosts.toml in the same change. Other reasons (`disabled_plugins`, a missing snapshotter) are not registry settings: edit config.toml and run `ctrdiag restart-containerd`.",
        },
        CauseCode::ContainerdUnreachable => Entry {
            title: "containerd does not answer on its socket",
            meaning: "Nothing answers on containerd's socket: containerd is not running, is restarting, or listens elsewhere (k3s uses `/run/k3s/containerd/containerd.sock`); `permission denied` means the caller may not open the socket.",
            versions: "gRPC's texts: `dial unix SOCKET: connect: no such file or directory`, `connection refused` or `permission denied`.",
            remedies: &[
                say!(
                    "read `journalctl -u containerd`; a CRI plugin that refused its config names the reason there",
                ),
                say!(
                    "check ctrdiagd's `containerd_socket` setting against the socket containerd really uses",
                ),
                run!(
                    "restart containerd through systemd and wait for CRI",
                    "ctrdiag restart-containerd",
                ),
            ],
            fix: "`ctrdiag fix` needs a running containerd to prove a change, so it does nothing here. `ctrdiag restart-containerd` restarts the unit through systemd and waits until CRI answers; why containerd stopped is in its journal.",
        },
        CauseCode::ConfigIgnored => Entry {
            title: "containerd ignores a registry setting",
            meaning: "A registry setting is in a file and has no effect. containerd 2.x ignores the legacy `registry.configs.\"HOST\".tls` table (its CA, client certificate and skip-verify). containerd 2.1 and later ignore a `config_path` with several roots (`a:b`) for CRI pulls through the Transfer service. A hosts.toml is ignored when another directory comes first in containerd's lookup for the host (containerd reads the first it finds and merges nothing): a `_default` behind the host's own directory is meant to be, anything else is a trap. And with ctrdiagd's `containerd_bin` set, `diagnose` compares config.toml with the configuration containerd computes from it (`config dump`, imports merged) and reports each registry setting containerd uses differently.",
            versions: "containerd 2.x says it once, at start, in its log: `Ignoring unknown key in TOML for plugin` with `key=\"registry configs HOST tls\"`; 1.6 and 1.7 honour that table (without `config_path`), so they say nothing. The other cases are silent on every version. Measured with an import that sets a mirror: 1.6.20 and 1.7.24 compute `config_path = \"\"` (1.x lets an import's CRI section replace config.toml's whole), 2.1.9 keeps both.",
            remedies: &[
                run!(
                    "a CA fix moves the legacy registry tables into hosts.toml in the same change",
                    "ctrdiag fix REGISTRY --ca /path/to/ca.crt",
                ),
                run!(
                    "or drop the legacy registry tables",
                    "ctrdiag fix REGISTRY --remove-overrides --all-hosts",
                ),
                run!(
                    "for several config_path roots, or a hosts.toml another directory shadows: a fix writes the host's hosts.toml into the single directory containerd reads",
                    "ctrdiag fix REGISTRY --ca /path/to/ca.crt --dry-run",
                ),
                say!(
                    "for a setting containerd computes differently (an import): edit the file that decides it (the finding names it), or merge its CRI registry section into config.toml",
                ),
            ],
            fix: concat!(
                ca_fix!(),
                " `ctrdiag fix` does not edit config.toml while an imported file sets registry settings: it names those files, to be merged into config.toml (or dropped) first.",
            ),
        },
        CauseCode::ConfigConflict => Entry {
            title: "Legacy registry tables next to config_path stop the CRI plugin",
            meaning: "config.toml sets `config_path` and also the legacy `mirrors` or `configs.\"HOST\".tls` tables. containerd refuses that combination and does not load its CRI plugin: every CRI call, and so every pull the kubelet makes, fails with `cri_unavailable`. This is what hand-editing config.toml from an old runbook often leads to.",
            versions: "containerd 1.6 and 1.7 log `failed to load plugin io.containerd.grpc.v1.cri` with `invalid plugin config: ... cannot be set when config_path is provided`; 2.x words it `unable to load CRI image service plugin dependency: invalid cri image config: ...` (`mirrors`; it ignores `configs.tls` instead, see `config_ignored`).",
            remedies: &[
                run!(
                    "a CA fix moves the legacy registry tables into hosts.toml in the same change",
                    "ctrdiag fix REGISTRY --ca /path/to/ca.crt",
                ),
                run!(
                    "or drop the legacy registry tables",
                    "ctrdiag fix REGISTRY --remove-overrides --all-hosts",
                ),
            ],
            fix: CA_FIX,
        },
        CauseCode::ConfigDeprecated => Entry {
            title: "A registry setting or config layout containerd has deprecated",
            meaning: "config.toml uses settings that still work but are on their way out: the registry `mirrors`, `configs` and `auths` tables (deprecated since containerd 1.5; on 2.x they also switch CRI pulls from the Transfer service to local mode), or a file without `version`, read with the version 1 layout that containerd 2.x no longer reads.",
            versions: "containerd warns in its log (`... is deprecated, please use config_path instead`, `DEPRECATION: The mirrors property ...`); containerd 1.6.25+, 1.7.9+ and 2.x also list the deprecations they have seen in use through Introspection, which `ctrdiag status` and `diagnose` show.",
            remedies: &[
                run!(
                    "move the registry settings to hosts.toml; a CA fix does it for one registry",
                    "ctrdiag fix REGISTRY --ca /path/to/ca.crt --dry-run",
                ),
                run!(
                    "for `auths`: see where each registry's credentials are before moving them",
                    "ctrdiag creds scan",
                ),
                say!(
                    "for a version 1 file: add `version = 2` with the long plugin names (`containerd config migrate` on 2.x prints the current layout)",
                ),
            ],
            fix: CA_FIX,
        },
        CauseCode::ConfigManaged => Entry {
            title: "containerd's configuration belongs to a node manager (k3s, RKE2, Bottlerocket)",
            meaning: "config.toml and the hosts.toml files are generated: k3s and RKE2 write them at every start from `config.toml.tmpl` (or `config-v3.toml.tmpl`) and `registries.yaml`, and Bottlerocket renders them from its settings API. An edit of containerd's files would be overwritten, so the change belongs in the owner's format. An information finding, not an error.",
            versions: "containerd says nothing. ctrdiag knows the owner from the files' `# File generated by k3s. DO NOT EDIT.` (or rke2) headers, a template next to config.toml, the k3s/RKE2 paths, or `ID=bottlerocket` in os-release.",
            remedies: &[
                say!(
                    "change registries.yaml (or the config template) and restart k3s / RKE2, or use `apiclient set` on Bottlerocket: not config.toml or certs.d",
                ),
                run!(
                    "ctrdiag prints that change for your node (merged into the file as it is) and applies nothing",
                    "ctrdiag fix TARGET --ca /path/to/ca.crt --dry-run",
                ),
                run!(
                    "after applying it and restarting the owner, prove it with a pull",
                    "ctrdiag pull IMAGE"
                ),
            ],
            fix: "`ctrdiag fix` writes nothing on such a node: it prints the change in the owner's format (a registries.yaml diff and `systemctl restart k3s`, or the `apiclient set` command) and exits 4 (nothing applied).",
        },
        CauseCode::ConfigUnreadable => Entry {
            title: "config.toml is in a layout this containerd cannot read",
            meaning: "config.toml declares a `version` the running containerd does not read: a version 3 file (containerd 2.x) on containerd 1.x after a downgrade or a copied file, or a layout newer than this containerd.",
            versions: "containerd refuses to start with such a file, or starts without the settings; ctrdiag finds it by comparing the file's `version` with containerd's.",
            remedies: &[say!(
                "rewrite config.toml in this containerd's layout (`containerd config migrate` on 2.x prints it), review it, then replace the file",
            )],
            fix: "`ctrdiag fix` refuses to plan edits to a file containerd cannot read: rewrite it first (on 2.x, `containerd config migrate`; on 1.x, a version 2 file), restart containerd (`ctrdiag restart-containerd`), then run the fix.",
        },
        CauseCode::PlainHttpInUse => Entry {
            title: "Pulls from the registry use plain HTTP, as configured",
            meaning: "Pulls work, over plain HTTP, because containerd is configured to use `http://` for this registry: nothing is encrypted or verified, so anyone on the path can read or change the images. An information finding, not an error.",
            versions: "containerd says nothing: no pull fails. ctrdiag finds it in the registry's hosts.toml (`server = \"http://...\"`).",
            remedies: &[run!(
                "serve the registry over TLS and trust its CA when you can",
                "ctrdiag fix TARGET --ca /path/to/ca.crt",
            )],
            fix: "`ctrdiag fix TARGET --plain-http` is what turns this on (an insecure change, ended by `--ttl` or `ctrdiag rollback`). Once the registry serves TLS, `ctrdiag fix TARGET --ca FILE` switches the hosts.toml to `https://` with the CA.",
        },
        CauseCode::VerificationSkipped => Entry {
            title: "Certificate verification is off although the certificate is valid",
            meaning: "The registry's hosts.toml (or config.toml) sets `skip_verify`, yet the probe finds the certificate valid for containerd's trust: the insecure setting is no longer needed. When the certificate is not valid, `diagnose` reports its real cause instead (such as `tls_unknown_authority`), as a warning.",
            versions: "containerd says nothing: pulls work. ctrdiag finds the setting in the files and checks the certificate itself.",
            remedies: &[run!(
                "the certificate is valid: turn verification back on (undo the change that turned it off, named in the finding)",
                "ctrdiag rollback ID",
            )],
            fix: "`ctrdiag fix TARGET --insecure-skip-verify` is what turns this on, and `--ttl` ends it by itself. `ctrdiag rollback ID` ends it now; a `ctrdiag fix TARGET --ca FILE` also removes every `skip_verify` for the host.",
        },
        CauseCode::TlsExpiringSoon => Entry {
            title: "The registry's certificate expires soon",
            meaning: "Pulls work today, but the registry's own certificate expires within ctrdiagd's warning window (`cert_expiry_warning_days`, 14 days by default); after that, every pull fails with `tls_expired`.",
            versions: "containerd says nothing until the certificate has expired. ctrdiag's probes read the certificate's `notAfter` and raise a `certificate_expiring` event.",
            remedies: &[run!(
                "renew the registry's certificate before it expires; the daemon's probes see the renewal",
                "ctrdiag events --cause tls_expiring_soon",
            )],
            fix: "Nothing to do on the node: the registry's operator renews the certificate. If it was pinned (`--pin-server-certificate`), pin the renewed one: `ctrdiag fix TARGET --pin-server-certificate --sha256 FINGERPRINT`.",
        },
        CauseCode::Unknown => Entry {
            title: "A failure ctrdiag does not recognise",
            meaning: "containerd's message matches none of ctrdiag's rules: a registry's rate limit (`429 Too Many Requests`), an image without the node's platform (`no unpack platforms defined`), an error from a registry's own API, or a wording ctrdiag has not seen yet. The message is kept exactly as containerd wrote it.",
            versions: "Any text ctrdiag's classifier does not know. Texts that classify as a cause are listed on that cause's page.",
            remedies: &[say!(
                "read containerd's message; `journalctl -u containerd` has more",
            )],
            fix: "Nothing, until the cause is known. If the text is a TLS or registry problem ctrdiag should recognise, report it with the message: a new wording is a test fixture and a rule in ctrdiag's classifier.",
        },
    }
}

/// Breaks `text` into lines of at most `width` columns (longer words stay whole): the
/// first starts with `first`, the others with `rest` (of the same width).
fn wrap(text: &str, first: &str, rest: &str, width: usize) -> String {
    let mut out = String::new();
    let mut indent = first;
    for paragraph in text.split("\n\n") {
        if !out.is_empty() {
            out.push('\n');
        }
        let mut line = String::from(indent);
        for word in paragraph.split_whitespace() {
            if line.len() > indent.len() && line.len() + 1 + word.len() > width {
                out.push_str(line.trim_end());
                out.push('\n');
                indent = rest;
                line = String::from(indent);
            }
            if line.len() > indent.len() {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push_str(&line);
        out.push('\n');
        indent = rest;
    }
    out
}

/// The wordings a terminal shows: one per containerd and Go generation, preferring CRI
/// errors to the same text in a log.
fn examples(wordings: &[Wording]) -> Vec<&Wording> {
    let in_a_log = |w: &&Wording| w.origin.seen_in.contains("log");
    let mut seen = Vec::new();
    let mut first = |w: &&Wording| {
        let key = (w.origin.containerd, w.origin.go);
        let new = !seen.contains(&key);
        seen.push(key);
        new
    };
    let errors: Vec<&Wording> = wordings.iter().filter(|w| !in_a_log(w)).collect();
    let pool = if errors.is_empty() {
        wordings.iter().collect()
    } else {
        errors
    };
    pool.into_iter().filter(|w| first(w)).collect()
}

/// `e` for a terminal, 80 columns.
pub fn render_text(e: &Explanation) -> String {
    const W: usize = 80;
    let mut s = format!("{}: {}\n\nWhat it means\n", e.cause, e.title);
    s += &wrap(e.meaning, "  ", "  ", W);
    s += "\nHow containerd words it\n";
    s += &wrap(e.versions, "  ", "  ", W);
    let examples = examples(&e.wordings);
    for w in &examples {
        s += &wrap(&format!("{}:", w.origin.label()), "  - ", "    ", W);
        s += &format!("      {}\n", w.text);
    }
    if examples.len() < e.wordings.len() {
        s += &format!(
            "  ({} more in {})\n",
            e.wordings.len() - examples.len(),
            e.doc
        );
    }
    s += "\nWhat to do, in order\n";
    for (i, r) in e.remedies.iter().enumerate() {
        s += &wrap(r.text, &format!("  {}. ", i + 1), "     ", W);
        if let Some(c) = r.command {
            s += &format!("     $ {c}\n");
        }
    }
    s += "\nWhat `ctrdiag fix` does\n";
    s += &wrap(e.fix, "  ", "  ", W);
    s += &format!("\nMore: {}\n", e.doc);
    s
}

/// The note that starts every generated page.
const GENERATED: &str = "<!-- Generated from crates/core/src/explain.rs by `CTRDIAG_BLESS=1 cargo test --test cause_docs`: edit that file, not this one. -->";

/// `e` as its page under `docs/causes/`.
pub fn render_markdown(e: &Explanation) -> String {
    let mut s = format!("# `{}`: {}\n\n{GENERATED}\n\n", e.cause, e.title);
    s += &format!("## What it means\n\n{}\n\n", e.meaning);
    s += &format!("## How containerd words it\n\n{}\n\n", e.versions);
    if !e.wordings.is_empty() {
        s += &format!("{ORIGIN_NOTE}\n\n");
    }
    for w in &e.wordings {
        s += &format!(
            "- {}:\n\n  ```text\n  {}\n  ```\n\n",
            w.origin.label(),
            w.text
        );
    }
    s += "## What to do, in order\n\n`TARGET` is the image (or registry `host[:port]`) that fails to pull, `REGISTRY` the registry's `host[:port]`.\n\n";
    for (i, r) in e.remedies.iter().enumerate() {
        s += &format!("{}. {}\n", i + 1, r.text);
        if let Some(c) = r.command {
            s += &format!("\n   ```sh\n   {c}\n   ```\n");
        }
        s += "\n";
    }
    s += &format!("## What `ctrdiag fix` does\n\n{}\n\n", e.fix);
    s += &format!(
        "---\n\n`ctrdiag explain {}` prints this page. [All cause codes](README.md)\n",
        e.cause
    );
    s
}

/// `docs/causes/README.md`: every code with its title.
pub fn render_index_markdown() -> String {
    let mut s = format!(
        "# Cause codes\n\n{GENERATED}\n\nThe stable codes of `ctrdiag diagnose`, `pull`, `events` and the metrics' `cause` label. `ctrdiag explain CODE` prints a page in the terminal.\n\n| code | what it means |\n|---|---|\n"
    );
    for c in CauseCode::ALL {
        s += &format!("| [`{c}`]({c}.md) | {} |\n", entry(*c).title);
    }
    s
}

/// `ctrdiag explain --list`: every code and its title, aligned.
pub fn render_list() -> String {
    let width = CauseCode::ALL
        .iter()
        .map(|c| c.as_str().len())
        .max()
        .unwrap_or(0);
    CauseCode::ALL
        .iter()
        .map(|c| format!("{:width$}  {}\n", c.as_str(), entry(*c).title))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::classify;

    #[test]
    fn every_code_has_every_section() {
        for c in CauseCode::ALL {
            let e = explain(*c);
            for (what, text) in [
                ("title", e.title),
                ("meaning", e.meaning),
                ("versions", e.versions),
                ("fix", e.fix),
            ] {
                assert!(!text.trim().is_empty(), "{c}: no {what}");
            }
            assert!(!e.remedies.is_empty(), "{c}: no remedy");
            assert!(
                e.remedies.iter().all(|r| !r.text.trim().is_empty()),
                "{c}: an empty remedy"
            );
            assert!(!e.title.contains('\n') && !e.title.ends_with('.'), "{c}");
        }
    }

    #[test]
    fn every_wording_shown_classifies_to_its_code() {
        for c in CauseCode::ALL {
            for w in explain(*c).wordings {
                assert_eq!(classify(w.text).cause, *c, "{}", w.text);
            }
        }
    }

    #[test]
    fn every_cause_a_pull_can_fail_with_shows_a_wording() {
        // Config states and working-but-insecure setups: no failure says them.
        let silent = [
            CauseCode::ConfigUnreadable,
            CauseCode::PlainHttpInUse,
            CauseCode::VerificationSkipped,
            CauseCode::TlsExpiringSoon,
            CauseCode::ConfigManaged,
        ];
        for c in CauseCode::ALL.iter().filter(|c| !silent.contains(c)) {
            assert!(!wordings(*c).is_empty(), "{c}");
        }
    }

    #[test]
    fn origins_name_what_the_lab_measured() {
        // The lab's pull errors of one untrusted registry on 1.6.20 and on 2.1.9.
        let o = origin(
            "failed to pull and unpack image \"r.test:5443/a:1\": failed to resolve reference \"r.test:5443/a:1\": failed to do request: Head \"https://r.test:5443/v2/a/manifests/1\": x509: certificate signed by unknown authority",
        );
        assert_eq!(o.containerd, Some("containerd 1.6, 1.7"));
        assert_eq!(o.go, Some("Go 1.19 or older (bare `x509:`)"));
        let o = origin(
            "failed to pull and unpack image \"r.test:5443/a:1\": failed to resolve image: failed to do request: Head \"https://r.test:5443/v2/a/manifests/1\": tls: failed to verify certificate: x509: certificate signed by unknown authority",
        );
        assert_eq!(o.label(), "containerd 2.x · Go 1.20+ · CRI PullImage error");
        // 1.6/1.7's wrapping and 1.7/2.x's status wording: only 1.7 says both.
        let o = origin(
            "failed to resolve reference \"r/a:1\": unexpected status from HEAD request to https://r/v2/a/manifests/1: 401 Unauthorized",
        );
        assert_eq!(o.containerd, Some("containerd 1.7"));
        assert_eq!(origin("no basic auth credentials").containerd, None);
        assert_eq!(
            origin(r#"time="t" level=error msg="x""#).seen_in,
            "containerd's log (logfmt)"
        );
        assert_eq!(
            origin("E1129 01:02:03.000000    1234 x.go:1] \"y\"").seen_in,
            "the kubelet's log (klog)"
        );
    }

    #[test]
    fn markdown_and_text_carry_every_part() {
        for c in CauseCode::ALL {
            let e = explain(*c);
            let md = render_markdown(&e);
            let text = render_text(&e);
            assert!(md.starts_with(&format!("# `{c}`: ")), "{md}");
            for w in &e.wordings {
                assert!(md.contains(w.text), "{c}: {}", w.text);
            }
            for r in e.remedies {
                assert!(md.contains(r.text), "{c}");
                if let Some(cmd) = r.command {
                    assert!(
                        md.contains(cmd) && text.contains(&format!("$ {cmd}")),
                        "{c}"
                    );
                }
            }
            assert!(text.starts_with(&format!("{c}: {}", e.title)), "{text}");
            // Wrapped prose stays within 80 columns; the heading and quoted wordings are
            // as they are.
            for line in text.lines().skip(1) {
                let quoted = e.wordings.iter().any(|w| line.trim() == w.text);
                let one_word = !line.trim().contains(' ');
                assert!(line.len() <= 80 || quoted || one_word, "{c}: {line}");
            }
        }
    }

    #[test]
    fn the_list_and_the_index_name_every_code_once() {
        let list = render_list();
        let index = render_index_markdown();
        assert_eq!(list.lines().count(), CauseCode::ALL.len());
        for c in CauseCode::ALL {
            assert_eq!(
                list.lines()
                    .filter(|l| l.starts_with(&format!("{c} ")))
                    .count(),
                1,
                "{c}"
            );
            assert!(index.contains(&format!("[`{c}`]({c}.md)")), "{c}");
        }
    }
}
