//! A minimal `GET /v2/`: the registry API's ping, which says whether this is a registry
//! (`Docker-Distribution-Api-Version`) and whether it wants credentials (401 plus
//! `WWW-Authenticate`). Only the status line and headers are read, at most 16 KiB, so a
//! hostile or confused server cannot make the probe buffer without bound.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::report::{AuthChallenge, HttpFacts};

/// Upper bound on the response head we are willing to read.
pub(super) const MAX_HEAD: usize = 16 * 1024;

/// Why the exchange produced no `HttpFacts`.
#[derive(Debug)]
pub(super) enum ExchangeError {
    /// The transport failed; kept as `io::Error` so TLS alerts can be inspected.
    Io(io::Error),
    /// The peer answered, but not with an HTTP/1.x response head.
    Malformed(String),
}

impl std::fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExchangeError::Io(e) => write!(f, "{e}"),
            ExchangeError::Malformed(m) => f.write_str(m),
        }
    }
}

/// Sends `GET /v2/` with `Host: host_header` and parses the response head.
pub(super) async fn get_v2<S>(
    stream: &mut S,
    host_header: &str,
    scheme: &str,
) -> Result<HttpFacts, ExchangeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = format!(
        "GET /v2/ HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: ctrdiag-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(ExchangeError::Io)?;
    stream.flush().await.map_err(ExchangeError::Io)?;
    let head = read_head(stream).await?;
    parse_head(&head, scheme)
}

/// Reads until the blank line that ends the head, EOF, or `MAX_HEAD` bytes.
async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Vec<u8>, ExchangeError> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find_head_end(&head) {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() >= MAX_HEAD {
            return Err(ExchangeError::Malformed(format!(
                "response head longer than {MAX_HEAD} bytes"
            )));
        }
        let want = chunk.len().min(MAX_HEAD - head.len());
        match stream.read(&mut chunk[..want]).await {
            Ok(0) if head.is_empty() => {
                return Err(ExchangeError::Malformed(
                    "connection closed without a response".to_string(),
                ));
            }
            Ok(0) => return Ok(head),
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            // A TLS peer that closes without close_notify after a complete head is fine.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !head.is_empty() => {
                return Ok(head);
            }
            Err(e) => return Err(ExchangeError::Io(e)),
        }
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Parses the status line and the two headers we care about.
pub(super) fn parse_head(head: &[u8], scheme: &str) -> Result<HttpFacts, ExchangeError> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let status_line = lines.next().unwrap_or_default();
    let malformed =
        || ExchangeError::Malformed(format!("not an HTTP status line: {status_line:.80?}"));
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(malformed());
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..1000).contains(s))
        .ok_or_else(malformed)?;
    let reason = parts.next().unwrap_or_default().to_string();
    let mut api_version = None;
    let mut auth = None;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("docker-distribution-api-version") {
            api_version = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("www-authenticate") && auth.is_none() {
            auth = parse_challenge(value);
        }
    }
    Ok(HttpFacts {
        scheme: scheme.to_string(),
        status,
        reason,
        api_version,
        auth,
    })
}

/// Keeps the scheme, `realm` and `service` of a challenge; every other parameter
/// (`scope`, `error`, ...) is dropped on purpose.
fn parse_challenge(value: &str) -> Option<AuthChallenge> {
    let (scheme, params) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.is_empty() {
        return None;
    }
    let mut challenge = AuthChallenge {
        scheme: scheme.to_string(),
        realm: None,
        service: None,
    };
    for (key, val) in auth_params(params) {
        if key.eq_ignore_ascii_case("realm") {
            challenge.realm = Some(val);
        } else if key.eq_ignore_ascii_case("service") {
            challenge.service = Some(val);
        }
    }
    Some(challenge)
}

/// Splits `k="v", k2=v2` (RFC 7235 auth-params), honouring quotes and backslash escapes.
fn auth_params(input: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars
            .by_ref()
            .take_while(|c| *c != '=')
            .collect::<String>()
            .trim()
            .to_string();
        if key.is_empty() {
            return out;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => val.extend(chars.next()),
                    c => val.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                val.push(c);
            }
            val = val.trim().to_string();
        }
        out.push((key, val));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_version_and_bearer_challenge() {
        let head = b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n\
            docker-distribution-api-version: registry/2.0\r\n\
            Www-Authenticate: Bearer realm=\"https://auth.example/token\",service=\"reg\\\"istry\",scope=\"x\"";
        let facts = parse_head(head, "https").expect("valid head");
        assert_eq!(facts.status, 401);
        assert_eq!(facts.reason, "Unauthorized");
        assert_eq!(facts.api_version.as_deref(), Some("registry/2.0"));
        let auth = facts.auth.expect("challenge");
        assert_eq!(auth.scheme, "Bearer");
        assert_eq!(auth.realm.as_deref(), Some("https://auth.example/token"));
        assert_eq!(auth.service.as_deref(), Some("reg\"istry"));
    }

    #[test]
    fn basic_challenge_with_unquoted_values() {
        let auth = parse_challenge("Basic realm=Registry , charset=UTF-8").expect("challenge");
        assert_eq!(auth.scheme, "Basic");
        assert_eq!(auth.realm.as_deref(), Some("Registry"));
        assert_eq!(auth.service, None);
    }

    #[test]
    fn rejects_non_http_answers() {
        assert!(parse_head(b"\x15\x03\x01\x00\x02\x02\x46", "http").is_err());
        assert!(parse_head(b"HTTP/1.1 abc Nope", "http").is_err());
        assert!(parse_head(b"", "http").is_err());
    }

    #[tokio::test]
    async fn head_reading_is_bounded() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let writer = tokio::spawn(async move {
            let mut sink = [0u8; 256];
            let _ = server.read(&mut sink).await;
            let mut huge = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
            huge.resize(40 * 1024, b'a');
            let _ = server.write_all(&huge).await;
        });
        let result = get_v2(&mut client, "registry.ctrdiag.test", "http").await;
        assert!(matches!(result, Err(ExchangeError::Malformed(m)) if m.contains("longer than")));
        writer.await.expect("writer task");
    }
}
