//! More wordings, gathered from containerd's `remotes/docker` and CRI config sources,
//! Go's `crypto/x509`, `crypto/tls`, `net` and `net/http` error strings, the log
//! formats of containerd (logfmt, JSON, journald) and the kubelet, and measured on the
//! lab's real containerd: each must classify to its cause. A wording that stops
//! matching is a regression. [`crate::explain`] shows them to people, so what the
//! documentation quotes is what ctrdiag recognises.

use crate::cause::CauseCode;

pub(crate) const WORDINGS: &[(&str, CauseCode)] = &[
    ("", CauseCode::Unknown),
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/aegis/aegis-hc-install:latest": failed to resolve image: failed to do request: Head "https://registry.ctrdiag.test:5443/v2/aegis/aegis-hc-install/manifests/latest": tls: failed to verify certificate: x509: certificate signed by unknown authority"#,
        CauseCode::TlsUnknownAuthority,
    ),
    (
        r#"rpc error: code = Unknown desc = failed to pull and unpack image "registry.ctrdiag.test:5443/aegis/aegis-hc-install:latest": failed to resolve image: failed to do request: Head "https://registry.ctrdiag.test:5443/v2/aegis/aegis-hc-install/manifests/latest": tls: failed to verify certificate: x509: certificate signed by unknown authority"#,
        CauseCode::TlsUnknownAuthority,
    ),
    (
        r#"rpc error: code = Unknown desc = failed to pull and unpack image "docker.io/library/busybox:latest": failed to resolve reference "docker.io/library/busybox:latest": failed to do request: Head "https://registry-1.docker.io/v2/library/busybox/manifests/latest": x509: certificate signed by unknown authority"#,
        CauseCode::TlsUnknownAuthority,
    ),
    (
        r#"failed to copy: httpReadSeeker: failed open: failed to do request: Get https://r.example:5000/v2/a/blobs/sha256:0123: x509: certificate signed by unknown authority"#,
        CauseCode::TlsUnknownAuthority,
    ),
    (
        r#"tls: failed to verify certificate: x509: certificate signed by unknown authority (possibly because of "crypto/rsa: verification error" while trying to verify candidate authority certificate "ctrdiag test CA")"#,
        CauseCode::TlsUnknownAuthority,
    ),
    (
        r#"x509: certificate signed by unknown authority (possibly because of "x509: ECDSA verification failure" while trying to verify candidate authority certificate "Corp Root CA 2")"#,
        CauseCode::TlsUnknownAuthority,
    ),
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/aegis/app:1": failed to resolve reference "registry.ctrdiag.test:5443/aegis/app:1": failed to do request: Head "https://registry.ctrdiag.test:5443/v2/aegis/app/manifests/1": x509: certificate is valid for localhost, not registry.ctrdiag.test"#,
        CauseCode::TlsHostnameMismatch,
    ),
    (
        "tls: failed to verify certificate: x509: certificate is valid for *.example.com, example.com, 10.0.0.5, not registry.internal",
        CauseCode::TlsHostnameMismatch,
    ),
    (
        "x509: certificate is not valid for any names, but wanted to match registry.ctrdiag.test",
        CauseCode::TlsHostnameMismatch,
    ),
    (
        r#"failed to do request: Head "https://10.0.0.5:5000/v2/app/manifests/latest": tls: failed to verify certificate: x509: cannot validate certificate for 10.0.0.5 because it doesn't contain any IP SANs"#,
        CauseCode::TlsHostnameMismatch,
    ),
    (
        r#"failed to do request: Head "https://reg.corp/v2/a/manifests/b": tls: failed to verify certificate: x509: certificate relies on legacy Common Name field, use SANs instead"#,
        CauseCode::TlsLegacyCommonName,
    ),
    (
        "x509: certificate relies on legacy Common Name field, use SANs or temporarily enable Common Name matching with GODEBUG=x509ignoreCN=0",
        CauseCode::TlsLegacyCommonName,
    ),
    (
        r#"failed to do request: Head "https://reg.corp/v2/a/manifests/b": tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2026-11-29T01:19:18Z is after 2025-06-30T12:00:00Z"#,
        CauseCode::TlsExpired,
    ),
    (
        "x509: certificate has expired or is not yet valid: current time 2026-11-29T01:19:18+01:00 is before 2027-01-01T00:00:00Z",
        CauseCode::TlsNotYetValid,
    ),
    (
        "x509: certificate has expired or is not yet valid",
        CauseCode::TlsExpired,
    ),
    (
        r#"failed to do request: Head "https://mtls.corp/v2/a/manifests/b": remote error: tls: certificate required"#,
        CauseCode::TlsClientCertRequired,
    ),
    (
        r#"failed to do request: Head "https://mtls.corp/v2/a/manifests/b": remote error: tls: bad certificate"#,
        CauseCode::TlsClientCertRequired,
    ),
    (
        "http: TLS handshake error from 192.168.203.139:52882: tls: client didn't provide a certificate",
        CauseCode::TlsClientCertRequired,
    ),
    (
        r#"failed to do request: Head "https://old.corp/v2/a/manifests/b": remote error: tls: handshake failure"#,
        CauseCode::TlsHandshake,
    ),
    (
        "remote error: tls: protocol version not supported",
        CauseCode::TlsHandshake,
    ),
    (
        "tls: failed to verify certificate: x509: certificate specifies an incompatible key usage",
        CauseCode::TlsHandshake,
    ),
    (
        r#"failed to pull and unpack image "10.1.2.3:5000/app:latest": failed to resolve reference "10.1.2.3:5000/app:latest": failed to do request: Head "https://10.1.2.3:5000/v2/app/manifests/latest": http: server gave HTTP response to HTTPS client"#,
        CauseCode::HttpResponseToHttps,
    ),
    (
        r#"Get "https://plain.corp:5000/v2/": tls: first record does not look like a TLS handshake"#,
        CauseCode::HttpResponseToHttps,
    ),
    (
        r#"failed to do request: Head "http://registry.ctrdiag.test:5443/v2/app/manifests/latest": net/http: HTTP/1.x transport connection broken: malformed HTTP response "\x15\x03\x01\x00\x02\x02""#,
        CauseCode::PlainHttpToHttpsPort,
    ),
    (
        r#"Get http://192.168.203.139:5858/v2/: malformed HTTP response "\x15\x03\x01\x00\x02\x02""#,
        CauseCode::PlainHttpToHttpsPort,
    ),
    (
        r#"failed to pull and unpack image "127.0.0.1:5443/aegis/app:latest": failed to resolve reference "127.0.0.1:5443/aegis/app:latest": pulling from host 127.0.0.1:5443 failed with status code [manifests latest]: 400 Bad Request"#,
        CauseCode::PlainHttpToHttpsPort,
    ),
    (
        "Client sent an HTTP request to an HTTPS server.",
        CauseCode::PlainHttpToHttpsPort,
    ),
    (
        r#"failed to do request: Head "https://nope.example/v2/a/manifests/b": dial tcp: lookup nope.example on 10.96.0.10:53: no such host"#,
        CauseCode::DnsFailure,
    ),
    (
        "dial tcp: lookup registry.corp on 127.0.0.53:53: server misbehaving",
        CauseCode::DnsFailure,
    ),
    (
        "dial tcp: lookup registry.corp on 10.0.0.2:53: read udp 10.0.0.9:41234->10.0.0.2:53: i/o timeout",
        CauseCode::DnsFailure,
    ),
    (
        "dial tcp: lookup registry.corp: Temporary failure in name resolution",
        CauseCode::DnsFailure,
    ),
    (
        "dial tcp: lookup registry.corp: no such host",
        CauseCode::DnsFailure,
    ),
    (
        r#"failed to do request: Head "https://registry.ctrdiag.test:5443/v2/a/manifests/b": dial tcp 127.0.0.1:5443: connect: connection refused"#,
        CauseCode::ConnectionRefused,
    ),
    (
        "dial tcp 10.0.0.7:443: connect: no route to host",
        CauseCode::ConnectionRefused,
    ),
    (
        "dial tcp 10.0.0.7:443: connect: network is unreachable",
        CauseCode::ConnectionRefused,
    ),
    (
        r#"failed to do request: Head "https://slow.corp/v2/a/manifests/b": dial tcp 203.0.113.9:443: i/o timeout"#,
        CauseCode::Timeout,
    ),
    (
        r#"failed to do request: Head "https://slow.corp/v2/a/manifests/b": net/http: TLS handshake timeout"#,
        CauseCode::Timeout,
    ),
    (
        "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
        CauseCode::Timeout,
    ),
    (
        r#"Get "https://slow.corp/v2/": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)"#,
        CauseCode::Timeout,
    ),
    (
        "net/http: timeout awaiting response headers",
        CauseCode::Timeout,
    ),
    (
        r#"failed to pull and unpack image "r.example/team/app:1": failed to resolve reference "r.example/team/app:1": pulling from host r.example failed with status code [manifests 1]: 401 Unauthorized"#,
        CauseCode::AuthRequired,
    ),
    (
        r#"failed to resolve reference "r.example/team/app:1": unexpected status from HEAD request to https://r.example/v2/team/app/manifests/1: 401 Unauthorized"#,
        CauseCode::AuthRequired,
    ),
    (
        r#"failed to resolve reference "ghcr.io/o/p:1": failed to authorize: failed to fetch anonymous token: unexpected status: 401 Unauthorized"#,
        CauseCode::AuthRequired,
    ),
    (
        "failed to authorize: failed to fetch oauth token: unexpected status from POST request to https://auth.example/token: 401 Unauthorized",
        CauseCode::AuthRequired,
    ),
    (
        "unauthorized: authentication required",
        CauseCode::AuthRequired,
    ),
    ("no basic auth credentials", CauseCode::AuthRequired),
    (
        r#"failed to pull and unpack image "docker.io/library/snj:latest": failed to resolve reference "docker.io/library/snj:latest": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed"#,
        CauseCode::AccessDenied,
    ),
    (
        r#"failed to resolve reference "ghcr.io/o/p:v1": unexpected status from HEAD request to https://ghcr.io/v2/o/p/manifests/v1: 403 Forbidden"#,
        CauseCode::AccessDenied,
    ),
    (
        "failed to copy: httpReadSeeker: failed open: unexpected status code https://r.example/v2/a/blobs/sha256:abc: 403 Forbidden",
        CauseCode::AccessDenied,
    ),
    (
        "denied: requested access to the resource is denied",
        CauseCode::AccessDenied,
    ),
    (
        "server message: insufficient_scope: authorization failed",
        CauseCode::AccessDenied,
    ),
    (
        r#"failed to pull and unpack image "docker.io/library/nosuch:1": failed to resolve reference "docker.io/library/nosuch:1": docker.io/library/nosuch:1: not found"#,
        CauseCode::NotFound,
    ),
    (
        r#"rpc error: code = NotFound desc = failed to pull and unpack image "registry.example/team/app:v9": failed to resolve reference "registry.example/team/app:v9": registry.example/team/app:v9: not found"#,
        CauseCode::NotFound,
    ),
    (
        "unexpected status from HEAD request to https://r.example/v2/a/manifests/x: 404 Not Found",
        CauseCode::NotFound,
    ),
    ("manifest unknown: manifest unknown", CauseCode::NotFound),
    (
        "failed to copy: httpReadSeeker: failed open: could not fetch content descriptor sha256:0123 (application/vnd.oci.image.layer.v1.tar+gzip) from remote: not found",
        CauseCode::NotFound,
    ),
    ("invalid `host` tree", CauseCode::HostsTomlInvalid),
    (
        r#"failed to parse TOML: (3, 8): was expecting token =, but got "g" instead"#,
        CauseCode::HostsTomlInvalid,
    ),
    (
        r#"unable to read CA cert "/etc/containerd/certs.d/r.example/ca.crt": open /etc/containerd/certs.d/r.example/ca.crt: no such file or directory"#,
        CauseCode::HostsTomlInvalid,
    ),
    (
        "failed to load X509 key pair: tls: failed to find any PEM data in certificate input",
        CauseCode::HostsTomlInvalid,
    ),
    (
        "failed to load host config: unknown capability fetch",
        CauseCode::HostsTomlInvalid,
    ),
    (
        "rpc error: code = Unimplemented desc = unknown service runtime.v1.ImageService",
        CauseCode::CriUnavailable,
    ),
    (
        "rpc error: code = Unimplemented desc = unknown service runtime.v1.RuntimeService",
        CauseCode::CriUnavailable,
    ),
    (
        r#"validate service connection: validate CRI v1 image API for endpoint "unix:///run/containerd/containerd.sock": rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial unix /run/containerd/containerd.sock: connect: no such file or directory""#,
        CauseCode::ContainerdUnreachable,
    ),
    (
        r#"connection error: desc = "transport: Error while dialing: dial unix /run/k3s/containerd/containerd.sock: connect: connection refused""#,
        CauseCode::ContainerdUnreachable,
    ),
    (
        "dial unix /run/containerd/containerd.sock: connect: permission denied",
        CauseCode::ContainerdUnreachable,
    ),
    (
        "invalid plugin config: `configs.tls` cannot be set when `config_path` is provided",
        CauseCode::ConfigConflict,
    ),
    (
        "invalid plugin config: `mirrors` cannot be set when `config_path` is provided",
        CauseCode::ConfigConflict,
    ),
    (
        "unable to load CRI image service plugin dependency: invalid cri image config: `mirrors` cannot be set when `config_path` is provided",
        CauseCode::ConfigConflict,
    ),
    (
        "unexpected status from HEAD request to https://registry-1.docker.io/v2/library/python/manifests/3.13-slim: 429 Too Many Requests",
        CauseCode::Unknown,
    ),
    (
        "unknown: unexpected status from HEAD request to https://us-central1-docker.pkg.dev/v2/p/r/manifests/latest: 400 Bad Request",
        CauseCode::Unknown,
    ),
    (
        r#"failed to pull and unpack image "docker.io/library/busybox:latest": no unpack platforms defined"#,
        CauseCode::Unknown,
    ),
    ("something nobody has seen before", CauseCode::Unknown),
    (
        r#"time="2026-11-29T01:02:03.123456789Z" level=error msg="PullImage \"registry.ctrdiag.test:5443/aegis/aegis-hc-install:latest\" failed" error="rpc error: code = Unknown desc = failed to pull and unpack image \"registry.ctrdiag.test:5443/aegis/aegis-hc-install:latest\": failed to resolve image: failed to do request: Head \"https://registry.ctrdiag.test:5443/v2/aegis/aegis-hc-install/manifests/latest\": tls: failed to verify certificate: x509: certificate signed by unknown authority""#,
        CauseCode::TlsUnknownAuthority,
    ),
    (
        r#"Nov 29 01:02:03 node-1 containerd[812]: time="2026-11-29T01:02:03.1Z" level=error msg="PullImage \"registry.ctrdiag.test:5443/aegis/app:1\" failed" error="failed to pull and unpack image \"registry.ctrdiag.test:5443/aegis/app:1\": failed to resolve reference \"registry.ctrdiag.test:5443/aegis/app:1\": failed to do request: Head \"https://registry.ctrdiag.test:5443/v2/aegis/app/manifests/1\": x509: certificate is valid for localhost, not registry.ctrdiag.test""#,
        CauseCode::TlsHostnameMismatch,
    ),
    (
        r#"{"error":"rpc error: code = Unknown desc = failed to pull and unpack image \"reg.corp/a:1\": failed to resolve reference \"reg.corp/a:1\": failed to do request: Head \"https://reg.corp/v2/a/manifests/1\": tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2026-11-29T01:19:18Z is after 2025-06-30T12:00:00Z","level":"error","msg":"PullImage \"reg.corp/a:1\" failed","time":"2026-11-29T01:19:18Z"}"#,
        CauseCode::TlsExpired,
    ),
    (
        r#"time="2026-11-29T01:02:03Z" level=error msg="PullImage \"registry.ctrdiag.test:5443/app:latest\" failed" error="rpc error: code = Unknown desc = failed to pull and unpack image \"registry.ctrdiag.test:5443/app:latest\": failed to resolve reference \"registry.ctrdiag.test:5443/app:latest\": failed to do request: Head \"http://registry.ctrdiag.test:5443/v2/app/manifests/latest\": net/http: HTTP/1.x transport connection broken: malformed HTTP response \"\\x15\\x03\\x01\\x00\\x02\\x02\"""#,
        CauseCode::PlainHttpToHttpsPort,
    ),
    (
        r#"time="2026-11-29T01:02:03Z" level=error msg="PullImage \"x.corp/a:1\" failed" error="rpc error: code = Unknown desc = failed to pull and unpack image \"x.corp/a:1\": failed to resolve reference \"x.corp/a:1\": failed to do request: Head \"https://x.corp/v2/a/manifests/1\": tls: failed to verify certificate: x509: certificate signed by unknown authority (possibly because of \"crypto/rsa: verification error\" while trying to verify candidate authority certificate \"x CA\")""#,
        CauseCode::TlsUnknownAuthority,
    ),
    (
        r#"time="2026-11-29T01:00:00Z" level=warning msg="Ignoring unknown key in TOML for plugin" error="strict mode: fields in the document are missing in the target struct" key="registry configs registry.ctrdiag.test:5443 tls" plugin=io.containerd.cri.v1.images"#,
        CauseCode::ConfigIgnored,
    ),
    (
        r#"time="2026-11-29T01:00:00Z" level=warning msg="failed to load plugin io.containerd.grpc.v1.cri" error="invalid plugin config: `configs.tls` cannot be set when `config_path` is provided""#,
        CauseCode::ConfigConflict,
    ),
    (
        r#"time="2026-11-29T01:00:00Z" level=warning msg="failed to load plugin" error="unable to load CRI image service plugin dependency: invalid cri image config: `mirrors` cannot be set when `config_path` is provided" id=io.containerd.grpc.v1.cri type=io.containerd.grpc.v1"#,
        CauseCode::ConfigConflict,
    ),
    (
        r#"time="2026-11-29T01:00:00Z" level=warning msg="failed to load plugin io.containerd.grpc.v1.cri" error="failed to create CRI service: failed to find snapshotter \"zfs\"""#,
        CauseCode::CriUnavailable,
    ),
    (
        r#"time="2026-11-29T01:00:00Z" level=error msg="failed to decode hosts.toml" error="invalid `host` tree""#,
        CauseCode::HostsTomlInvalid,
    ),
    (
        r#"time="2026-11-29T01:00:00Z" level=error msg="failed to decode hosts.toml" error="failed to parse TOML: (2, 1): unexpected token""#,
        CauseCode::HostsTomlInvalid,
    ),
    (
        r#"time="2026-11-29T01:00:00Z" level=info msg="trying next host" error="failed to do request: Head \"https://mirror.corp:5000/v2/library/busybox/manifests/latest?ns=docker.io\": dial tcp 10.0.0.8:5000: connect: connection refused" host="mirror.corp:5000""#,
        CauseCode::ConnectionRefused,
    ),
    (
        r#"E1129 01:02:03.456789    1234 log.go:32] "PullImage from image service failed" err="rpc error: code = Unknown desc = failed to pull and unpack image \"docker.io/library/nosuch:latest\": failed to resolve reference \"docker.io/library/nosuch:latest\": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed" image="nosuch:latest""#,
        CauseCode::AccessDenied,
    ),
    (
        r#"E1129 01:02:03.000000    1234 remote_runtime.go:100] "Version from runtime service failed" err="rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial unix /run/containerd/containerd.sock: connect: no such file or directory\"""#,
        CauseCode::ContainerdUnreachable,
    ),
    (
        r#"E1129 01:02:03.000000    1234 remote_image.go:100] "ListImages with filter from image service failed" err="rpc error: code = Unimplemented desc = unknown service runtime.v1.ImageService" filter="nil""#,
        CauseCode::CriUnavailable,
    ),
    (
        r#"E1129 01:02:03.000000    1234 kuberuntime_image.go:53] "Failed to pull image" err="rpc error: code = Unknown desc = failed to pull and unpack image \"docker.io/library/busybox:latest\": failed to resolve reference \"docker.io/library/busybox:latest\": failed to do request: Head \"https://registry-1.docker.io/v2/library/busybox/manifests/latest\": dial tcp: lookup registry-1.docker.io on 10.96.0.10:53: server misbehaving" image="busybox""#,
        CauseCode::DnsFailure,
    ),
    (
        r#"E1129 01:02:03.000000    1234 pod_workers.go:1301] "Error syncing pod, skipping" err="failed to \"StartContainer\" for \"app\" with ErrImagePull: \"failed to pull and unpack image \\\"registry.ctrdiag.test:5443/aegis/app:1\\\": failed to resolve reference \\\"registry.ctrdiag.test:5443/aegis/app:1\\\": failed to do request: Head \\\"https://registry.ctrdiag.test:5443/v2/aegis/app/manifests/1\\\": tls: failed to verify certificate: x509: certificate signed by unknown authority\"" pod="default/app" podUID="0f0e""#,
        CauseCode::TlsUnknownAuthority,
    ),
    // Measured in the lab: CRI PullImage errors of containerd 1.6.20 (Debian 12, built
    // with Go 1.19.8), 1.7.24 (Debian 13, Go 1.24.4) and 2.1.9, as the kubelet gets them.
    // 1.6: unknown_authority
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve reference "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to do request: Head "https://registry.ctrdiag.test:5443/v2/ctrdiag/hello/manifests/v1": x509: certificate signed by unknown authority"#,
        CauseCode::TlsUnknownAuthority,
    ),
    // 1.6: expired
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve reference "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to do request: Head "https://registry.ctrdiag.test:5443/v2/ctrdiag/hello/manifests/v1": x509: certificate has expired or is not yet valid: current time 2026-12-03T11:39:56Z is after 2025-12-03T11:39:56Z"#,
        CauseCode::TlsExpired,
    ),
    // 1.6: not_yet_valid
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve reference "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to do request: Head "https://registry.ctrdiag.test:5443/v2/ctrdiag/hello/manifests/v1": x509: certificate has expired or is not yet valid: current time 2026-12-03T11:39:56Z is before 2027-12-03T11:39:56Z"#,
        CauseCode::TlsNotYetValid,
    ),
    // 1.6: wrong_host
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve reference "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to do request: Head "https://registry.ctrdiag.test:5443/v2/ctrdiag/hello/manifests/v1": x509: certificate is valid for localhost, other.ctrdiag.test, not registry.ctrdiag.test"#,
        CauseCode::TlsHostnameMismatch,
    ),
    // 1.6: http_response_to_https
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve reference "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to do request: Head "https://registry.ctrdiag.test:5443/v2/ctrdiag/hello/manifests/v1": http: server gave HTTP response to HTTPS client"#,
        CauseCode::HttpResponseToHttps,
    ),
    // 1.6: auth_required
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve reference "registry.ctrdiag.test:5443/ctrdiag/hello:v1": pulling from host registry.ctrdiag.test:5443 failed with status code [manifests v1]: 401 Unauthorized"#,
        CauseCode::AuthRequired,
    ),
    // 1.6: dns
    (
        r#"failed to pull and unpack image "nosuch.ctrdiag.invalid/a/b:1": failed to resolve reference "nosuch.ctrdiag.invalid/a/b:1": failed to do request: Head "https://nosuch.ctrdiag.invalid/v2/a/b/manifests/1": dial tcp: lookup nosuch.ctrdiag.invalid on 10.255.255.53:53: no such host"#,
        CauseCode::DnsFailure,
    ),
    // 1.6: refused
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:9/a/b:1": failed to resolve reference "registry.ctrdiag.test:9/a/b:1": failed to do request: Head "https://registry.ctrdiag.test:9/v2/a/b/manifests/1": dial tcp 127.0.0.1:9: connect: connection refused"#,
        CauseCode::ConnectionRefused,
    ),
    // 1.7: unknown_authority
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve reference "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to do request: Head "https://registry.ctrdiag.test:5443/v2/ctrdiag/hello/manifests/v1": tls: failed to verify certificate: x509: certificate signed by unknown authority"#,
        CauseCode::TlsUnknownAuthority,
    ),
    // 1.7: expired
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve reference "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to do request: Head "https://registry.ctrdiag.test:5443/v2/ctrdiag/hello/manifests/v1": tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2026-12-03T11:39:57Z is after 2025-12-03T11:39:57Z"#,
        CauseCode::TlsExpired,
    ),
    // 1.7: not_yet_valid
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve reference "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to do request: Head "https://registry.ctrdiag.test:5443/v2/ctrdiag/hello/manifests/v1": tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2026-12-03T11:39:57Z is before 2027-12-03T11:39:57Z"#,
        CauseCode::TlsNotYetValid,
    ),
    // 1.7: wrong_host
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve reference "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to do request: Head "https://registry.ctrdiag.test:5443/v2/ctrdiag/hello/manifests/v1": tls: failed to verify certificate: x509: certificate is valid for localhost, other.ctrdiag.test, not registry.ctrdiag.test"#,
        CauseCode::TlsHostnameMismatch,
    ),
    // 1.7: auth_required
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve reference "registry.ctrdiag.test:5443/ctrdiag/hello:v1": pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials"#,
        CauseCode::AuthRequired,
    ),
    // 1.7: plain_http_to_https_port
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve reference "registry.ctrdiag.test:5443/ctrdiag/hello:v1": unexpected status from HEAD request to http://registry.ctrdiag.test:5443/v2/ctrdiag/hello/manifests/v1: 400 Bad Request"#,
        CauseCode::PlainHttpToHttpsPort,
    ),
    // 2.1: expired
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve image: failed to do request: Head "https://registry.ctrdiag.test:5443/v2/ctrdiag/hello/manifests/v1": tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2026-12-03T11:39:58Z is after 2025-12-03T11:39:58Z"#,
        CauseCode::TlsExpired,
    ),
    // 2.1: not_yet_valid
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve image: failed to do request: Head "https://registry.ctrdiag.test:5443/v2/ctrdiag/hello/manifests/v1": tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2026-12-03T11:39:59Z is before 2027-12-03T11:39:59Z"#,
        CauseCode::TlsNotYetValid,
    ),
    // 2.1: wrong_host
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve image: failed to do request: Head "https://registry.ctrdiag.test:5443/v2/ctrdiag/hello/manifests/v1": tls: failed to verify certificate: x509: certificate is valid for localhost, other.ctrdiag.test, not registry.ctrdiag.test"#,
        CauseCode::TlsHostnameMismatch,
    ),
    // 2.1: not_found
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:nosuch": failed to resolve image: registry.ctrdiag.test:5443/ctrdiag/hello:nosuch: not found"#,
        CauseCode::NotFound,
    ),
    // 2.1: http_response_to_https
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve image: failed to do request: Head "https://registry.ctrdiag.test:5443/v2/ctrdiag/hello/manifests/v1": http: server gave HTTP response to HTTPS client"#,
        CauseCode::HttpResponseToHttps,
    ),
    // 2.1: auth_required
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve image: pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials"#,
        CauseCode::AuthRequired,
    ),
    // 2.1: dns
    (
        r#"failed to pull and unpack image "nosuch.ctrdiag.invalid/a/b:1": failed to resolve image: failed to do request: Head "https://nosuch.ctrdiag.invalid/v2/a/b/manifests/1": dial tcp: lookup nosuch.ctrdiag.invalid on 10.255.255.53:53: no such host"#,
        CauseCode::DnsFailure,
    ),
    // 2.1: refused
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:9/a/b:1": failed to resolve image: failed to do request: Head "https://registry.ctrdiag.test:9/v2/a/b/manifests/1": dial tcp 127.0.0.1:9: connect: connection refused"#,
        CauseCode::ConnectionRefused,
    ),
    // 2.1: plain_http_to_https_port
    (
        r#"failed to pull and unpack image "registry.ctrdiag.test:5443/ctrdiag/hello:v1": failed to resolve image: unexpected status from HEAD request to http://registry.ctrdiag.test:5443/v2/ctrdiag/hello/manifests/v1: 400 Bad Request"#,
        CauseCode::PlainHttpToHttpsPort,
    ),
    // The same lab, containerd's own log: 1.7.24, then 2.1.9 (which names the file).
    (
        r#"time="2026-12-03T11:39:58.422760594Z" level=error msg="failed to decode hosts.toml" error="failed to parse TOML: unhandled token: \"[[\"""#,
        CauseCode::HostsTomlInvalid,
    ),
    (
        r#"time="2026-12-03T11:39:59.623149444Z" level=error msg="failed to decode /etc/containerd/certs.d/registry.ctrdiag.test:5443/hosts.toml" error="toml: unexpected character U+000A at start of value""#,
        CauseCode::HostsTomlInvalid,
    ),
    (
        r#"time="2026-12-03T11:39:59.153152672Z" level=error msg="PullImage \"registry.ctrdiag.test:5443/ctrdiag/hello:nosuch\" failed" error="rpc error: code = NotFound desc = failed to pull and unpack image \"registry.ctrdiag.test:5443/ctrdiag/hello:nosuch\": failed to resolve image: registry.ctrdiag.test:5443/ctrdiag/hello:nosuch: not found""#,
        CauseCode::NotFound,
    ),
    // containerd's deprecation warnings: 2.1.9 with a legacy `configs` table (LAB.md),
    // and the DEPRECATION line containerd prints for `mirrors`.
    (
        r#"time="2026-11-28T10:00:00Z" level=warning msg="`configs` is deprecated, please use `config_path` instead""#,
        CauseCode::ConfigDeprecated,
    ),
    (
        r#"time="2026-11-28T10:00:00Z" level=warning msg="DEPRECATION: The `mirrors` property of `[plugins.\"io.containerd.grpc.v1.cri\".registry]` is deprecated since containerd v1.5 and will be removed in containerd v2.1. Use `config_path` instead.""#,
        CauseCode::ConfigDeprecated,
    ),
];

#[cfg(test)]
mod tests {
    use super::WORDINGS;
    use crate::cause::CauseCode;
    use crate::diagnose::classify::classify;

    #[test]
    fn every_gathered_wording_classifies_to_its_cause() {
        let wrong: Vec<String> = WORDINGS
            .iter()
            .filter(|(text, cause)| classify(text).cause != *cause)
            .map(|(text, cause)| format!("want {cause}, got {}: {text}", classify(text).cause))
            .collect();
        assert!(
            wrong.is_empty(),
            "{} of {} wordings misclassified:\n{}",
            wrong.len(),
            WORDINGS.len(),
            wrong.join("\n")
        );
    }

    #[test]
    fn every_cause_but_the_config_ones_has_a_wording() {
        for cause in CauseCode::ALL {
            // Config states and working-but-insecure setups: no pull failure says them.
            let config_only = matches!(
                cause,
                CauseCode::ConfigUnreadable
                    | CauseCode::PlainHttpInUse
                    | CauseCode::VerificationSkipped
                    | CauseCode::TlsExpiringSoon
                    | CauseCode::ConfigManaged
            );
            assert!(
                config_only || WORDINGS.iter().any(|(_, c)| c == cause),
                "no wording for {cause}"
            );
        }
    }
}
