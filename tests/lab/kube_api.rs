//! A stand-in Kubernetes API server: no real one can run here (LAB.md), so this one
//! speaks the protocol kubectl and kube-rs speak, over HTTPS on 127.0.0.1 with a
//! certificate made per test, and holds ServiceAccounts and Secrets in their real JSON
//! shape. `tests/k8s_pull_secrets.rs` drives it with the real kubectl first, to show it
//! answers the way kubectl expects, and then with ctrdiag.
//!
//! What it serves, as the API server does:
//! - discovery: `/api`, `/apis`, `/api/v1` (an `APIResourceList` with `serviceaccounts`,
//!   short name `sa`, and `secrets`), plain `application/json`, which kubectl takes in
//!   place of aggregated discovery;
//! - `GET` and `PATCH` on `/api/v1/namespaces/{ns}/{serviceaccounts|secrets}/{name}`;
//!   PATCH as `application/json-patch+json` (RFC 6902 with the API server's library's
//!   reading of `test` with `null`: an absent member passes), `application/merge-patch+json`
//!   and `application/strategic-merge-patch+json` (`imagePullSecrets` is an atomic list,
//!   so both merges replace it whole); each change bumps `resourceVersion`, and empty
//!   lists and maps are dropped as Go's `omitempty` drops them;
//! - `Status` objects with the real codes and wordings: 401 for an unknown token, 403
//!   for a token marked forbidden, 404 for an unknown object, 422 for a patch that does
//!   not apply (apimachinery's `NewGenericServerResponse`).
//!
//! It does not implement what ctrdiag and the runbook never send (move/copy operations,
//! strategic-merge directives and merge keys, watches, lists, server-side apply) and
//! answers 500 to them, so a test that strays there fails loudly.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::certs::{self, CertKind};

/// The token of the user the tests act as, allowed everything.
pub const ALICE_TOKEN: &str = "alice-token-8f3b2c";
/// A token the API server knows, for a user RBAC allows nothing on ServiceAccounts.
pub const BOB_TOKEN: &str = "bob-token-51d7e0";

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: String,
}

type Edit = Box<dyn FnOnce(&mut Value) + Send>;

#[derive(Default)]
struct State {
    /// (resource, namespace, name) → the object as the API server would serialize it.
    objects: BTreeMap<(String, String, String), Value>,
    last_rv: u64,
    /// Applied to a ServiceAccount right after its next GET is answered: the concurrent
    /// edit that lands between a client's read and its patch.
    after_get: BTreeMap<(String, String), Edit>,
    seen: Vec<Seen>,
}

impl State {
    fn next_rv(&mut self) -> String {
        self.last_rv += 1;
        self.last_rv.to_string()
    }
}

pub struct KubeApi {
    pub server: String,
    pub ca_pem: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KubeApi {
    pub async fn start() -> KubeApi {
        let dir = super::scratch_dir("kube-api-");
        let tls = certs::make(CertKind::PrivateCa, "127.0.0.1", dir.path());
        let chain = vec![CertificateDer::from_pem_file(&tls.cert_path).expect("server.crt")];
        let key = PrivateKeyDer::from_pem_file(&tls.key_path).expect("server.key");
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate");
        // HTTP/1.1 only: kubectl (Go) and kube-rs both fall back to it.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, state) = (acceptor.clone(), Arc::clone(&shared));
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, std::convert::Infallible>(handle(&state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        KubeApi {
            server: format!("https://{addr}"),
            ca_pem: tls.ca_pem,
            state,
            task,
            _dir: dir,
        }
    }

    /// Creates or replaces a ServiceAccount with these `imagePullSecrets` names.
    pub fn put_service_account(&self, namespace: &str, name: &str, secrets: &[&str]) {
        let mut st = self.state.lock().unwrap();
        let rv = st.next_rv();
        let mut sa = json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": format!("0b5c7d1e-{rv:0>4}-4e4f-9a1b-5c2d3e4f5a6b"),
                "resourceVersion": rv,
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "annotations": {"owner": "platform-team"},
            },
            "imagePullSecrets": secrets.iter().map(|s| json!({"name": s})).collect::<Vec<_>>(),
        });
        omit_empty(&mut sa);
        st.objects
            .insert(key("serviceaccounts", namespace, name), sa);
    }

    /// Creates a `kubernetes.io/dockerconfigjson` Secret holding `config_json`.
    pub fn put_pull_secret(&self, namespace: &str, name: &str, config_json: &str) {
        let mut st = self.state.lock().unwrap();
        let rv = st.next_rv();
        let data = base64::engine::general_purpose::STANDARD.encode(config_json);
        st.objects.insert(
            key("secrets", namespace, name),
            json!({
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv},
                "type": "kubernetes.io/dockerconfigjson",
                "data": {".dockerconfigjson": data},
            }),
        );
    }

    /// The ServiceAccount as stored now.
    pub fn service_account(&self, namespace: &str, name: &str) -> Value {
        self.state.lock().unwrap().objects[&key("serviceaccounts", namespace, name)].clone()
    }

    /// Changes the ServiceAccount right after the next GET of it is answered.
    pub fn edit_after_next_get(
        &self,
        namespace: &str,
        name: &str,
        edit: impl FnOnce(&mut Value) + Send + 'static,
    ) {
        self.state
            .lock()
            .unwrap()
            .after_get
            .insert((namespace.to_string(), name.to_string()), Box::new(edit));
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Writes a kubeconfig for this server (CA inline, a bearer token) in `dir`, with
    /// the context `stand-in` for user `user` as the current context.
    pub fn kubeconfig(&self, dir: &Path, user: &str, token: &str) -> PathBuf {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        let path = dir.join(format!("kubeconfig-{user}"));
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: stand-in\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: stand-in\n  context:\n    cluster: stand-in\n    user: {user}\ncurrent-context: stand-in\n",
                server = self.server
            ),
        )
        .expect("write kubeconfig");
        path
    }
}

fn key(resource: &str, namespace: &str, name: &str) -> (String, String, String) {
    (resource.into(), namespace.into(), name.into())
}

type Reply = Response<Full<Bytes>>;

async fn handle(state: &Mutex<State>, req: Request<Incoming>) -> Reply {
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let content_type = header("content-type");
    let token = header("authorization")
        .strip_prefix("Bearer ")
        .unwrap_or("")
        .to_string();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let mut st = state.lock().unwrap();
    st.seen.push(Seen {
        method: method.clone(),
        path: path.clone(),
        query,
        content_type: content_type.clone(),
    });
    let user = match token.as_str() {
        ALICE_TOKEN => "alice",
        BOB_TOKEN => "bob",
        _ => {
            return reply(
                StatusCode::UNAUTHORIZED,
                status(401, "Unauthorized", "Unauthorized", None),
            );
        }
    };
    match (method.as_str(), path.as_str()) {
        ("GET", "/api") => reply(
            StatusCode::OK,
            json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        ),
        ("GET", "/apis") => reply(
            StatusCode::OK,
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
        ),
        ("GET", "/api/v1") => reply(StatusCode::OK, resource_list()),
        _ => match object_path(&path) {
            Some((resource, ns, name)) => {
                if user == "bob" {
                    let verb = if method == "PATCH" { "patch" } else { "get" };
                    return reply(
                        StatusCode::FORBIDDEN,
                        status(
                            403,
                            "Forbidden",
                            &format!(
                                "{resource} \"{name}\" is forbidden: User \"bob\" cannot {verb} resource \"{resource}\" in API group \"\" in the namespace \"{ns}\""
                            ),
                            Some(json!({"name": name, "kind": resource})),
                        ),
                    );
                }
                object(&mut st, &method, &content_type, &body, resource, ns, name)
            }
            None => reply(
                StatusCode::NOT_FOUND,
                status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                    Some(json!({})),
                ),
            ),
        },
    }
}

/// `/api/v1/namespaces/{ns}/{resource}/{name}` for the resources the stand-in holds.
fn object_path(path: &str) -> Option<(&str, &str, &str)> {
    let rest = path.strip_prefix("/api/v1/namespaces/")?;
    let mut parts = rest.split('/');
    let (ns, resource, name) = (parts.next()?, parts.next()?, parts.next()?);
    (parts.next().is_none() && matches!(resource, "serviceaccounts" | "secrets"))
        .then_some((resource, ns, name))
}

fn object(
    st: &mut State,
    method: &str,
    content_type: &str,
    body: &[u8],
    resource: &str,
    ns: &str,
    name: &str,
) -> Reply {
    let k = key(resource, ns, name);
    let Some(current) = st.objects.get(&k).cloned() else {
        return reply(
            StatusCode::NOT_FOUND,
            status(
                404,
                "NotFound",
                &format!("{resource} \"{name}\" not found"),
                Some(json!({"name": name, "kind": resource})),
            ),
        );
    };
    match method {
        "GET" => {
            if let Some(edit) = st.after_get.remove(&(ns.to_string(), name.to_string())) {
                let mut changed = current.clone();
                edit(&mut changed);
                omit_empty(&mut changed);
                changed["metadata"]["resourceVersion"] = json!(st.next_rv());
                st.objects.insert(k, changed);
            }
            reply(StatusCode::OK, current)
        }
        "PATCH" => {
            let patch: Value = match serde_json::from_slice(body) {
                Ok(p) => p,
                Err(e) => {
                    return reply(
                        StatusCode::BAD_REQUEST,
                        status(400, "BadRequest", &e.to_string(), Some(json!({}))),
                    );
                }
            };
            let mut patched = current.clone();
            let applied = match content_type.split(';').next().unwrap_or("").trim() {
                "application/json-patch+json" => json_patch(&mut patched, &patch),
                "application/merge-patch+json" => {
                    merge(&mut patched, &patch);
                    Ok(())
                }
                "application/strategic-merge-patch+json" => {
                    if let Some(unsupported) = strategic_unsupported(&patch) {
                        return reply(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            status(500, "InternalError", unsupported, None),
                        );
                    }
                    merge(&mut patched, &patch);
                    Ok(())
                }
                other => {
                    return reply(
                        StatusCode::UNSUPPORTED_MEDIA_TYPE,
                        status(
                            415,
                            "UnsupportedMediaType",
                            &format!(
                                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})"
                            ),
                            None,
                        ),
                    );
                }
            };
            if let Err(reason) = applied {
                return match reason {
                    PatchFailure::DoesNotApply(_) => reply(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        status(
                            422,
                            "Invalid",
                            "the server rejected our request due to an error in our request",
                            Some(json!({})),
                        ),
                    ),
                    PatchFailure::NotImplemented(what) => reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        status(500, "InternalError", &what, None),
                    ),
                };
            }
            if resource == "serviceaccounts" {
                keep_service_account_fields(&mut patched);
            }
            omit_empty(&mut patched);
            let mut unchanged = patched.clone();
            unchanged["metadata"]["resourceVersion"] =
                current["metadata"]["resourceVersion"].clone();
            if unchanged != current {
                patched["metadata"]["resourceVersion"] = json!(st.next_rv());
                st.objects.insert(k, patched.clone());
            } else {
                patched = current;
            }
            reply(StatusCode::OK, patched)
        }
        _ => reply(
            StatusCode::METHOD_NOT_ALLOWED,
            status(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
                Some(json!({})),
            ),
        ),
    }
}

fn resource_list() -> Value {
    let verbs = json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ]);
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            {"name": "secrets", "singularName": "secret", "namespaced": true, "kind": "Secret", "verbs": verbs, "storageVersionHash": "S6u1pOWzb84="},
            {"name": "serviceaccounts", "singularName": "serviceaccount", "namespaced": true, "kind": "ServiceAccount", "verbs": verbs, "shortNames": ["sa"], "storageVersionHash": "pbx9ZvyFpBE="},
        ],
    })
}

/// A `metav1.Status` failure as the API server writes it.
fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut s = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(d) = details {
        s["details"] = d;
    }
    s
}

fn reply(code: StatusCode, body: Value) -> Reply {
    Response::builder()
        .status(code)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

/// Go's `omitempty`: an empty `imagePullSecrets` list or annotations map is not written,
/// and neither is an empty name in a reference.
fn omit_empty(obj: &mut Value) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    if let Some(list) = map
        .get_mut("imagePullSecrets")
        .and_then(Value::as_array_mut)
    {
        for entry in list.iter_mut() {
            if entry.get("name").and_then(Value::as_str) == Some("") {
                *entry = json!({});
            }
        }
    }
    if map
        .get("imagePullSecrets")
        .is_some_and(|v| v.is_null() || v.as_array().is_some_and(Vec::is_empty))
    {
        map.remove("imagePullSecrets");
    }
    if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut)
        && meta
            .get("annotations")
            .is_some_and(|v| v.is_null() || v.as_object().is_some_and(|m| m.is_empty()))
    {
        meta.remove("annotations");
    }
}

/// What decoding into the Go type keeps: unknown fields are dropped, not refused.
fn keep_service_account_fields(sa: &mut Value) {
    if let Some(map) = sa.as_object_mut() {
        map.retain(|k, _| {
            matches!(
                k.as_str(),
                "apiVersion"
                    | "kind"
                    | "metadata"
                    | "secrets"
                    | "imagePullSecrets"
                    | "automountServiceAccountToken"
            )
        });
        if let Some(list) = map
            .get_mut("imagePullSecrets")
            .and_then(Value::as_array_mut)
        {
            for entry in list.iter_mut().filter_map(Value::as_object_mut) {
                entry.retain(|k, _| k == "name");
            }
        }
    }
}

enum PatchFailure {
    /// The API server's 422.
    DoesNotApply(String),
    /// Outside what the stand-in implements.
    NotImplemented(String),
}

/// RFC 6902 as the API server applies it (gopkg.in/evanphx/json-patch.v4), stricter
/// where that is safe for the tests (`replace` needs the member to exist), and with its
/// reading of `test`: an absent or `null` member equals the value `null`.
fn json_patch(doc: &mut Value, patch: &Value) -> Result<(), PatchFailure> {
    let ops = patch
        .as_array()
        .ok_or_else(|| PatchFailure::DoesNotApply("a JSON patch is an array".into()))?;
    let mut work = doc.clone();
    for op in ops {
        let path = op["path"].as_str().unwrap_or("");
        let kind = op["op"].as_str().unwrap_or("");
        let (parent, last) = split_pointer(path)
            .ok_or_else(|| PatchFailure::DoesNotApply(format!("bad path {path:?}")))?;
        let value = op.get("value").cloned();
        let missing = || PatchFailure::DoesNotApply(format!("doc is missing path: {path}"));
        let target = resolve(&mut work, &parent).ok_or_else(missing)?;
        match (kind, target) {
            ("test", Value::Object(m)) => {
                let expected = value.ok_or_else(missing)?;
                let actual = m.get(&last).cloned().unwrap_or(Value::Null);
                if actual != expected {
                    return Err(PatchFailure::DoesNotApply(format!(
                        "testing value {path} failed"
                    )));
                }
            }
            ("test", Value::Array(a)) => {
                let i = index(&last, a.len()).ok_or_else(missing)?;
                if Some(&a[i]) != value.as_ref() {
                    return Err(PatchFailure::DoesNotApply(format!(
                        "testing value {path} failed"
                    )));
                }
            }
            ("add", Value::Object(m)) => {
                m.insert(last, value.ok_or_else(missing)?);
            }
            ("add", Value::Array(a)) => {
                let v = value.ok_or_else(missing)?;
                if last == "-" {
                    a.push(v);
                } else {
                    let i = index(&last, a.len() + 1).ok_or_else(missing)?;
                    a.insert(i, v);
                }
            }
            ("remove", Value::Object(m)) => {
                m.remove(&last).ok_or_else(missing)?;
            }
            ("remove", Value::Array(a)) => {
                let i = index(&last, a.len()).ok_or_else(missing)?;
                a.remove(i);
            }
            ("replace", Value::Object(m)) => {
                let slot = m.get_mut(&last).ok_or_else(missing)?;
                *slot = value.ok_or_else(missing)?;
            }
            ("replace", Value::Array(a)) => {
                let i = index(&last, a.len()).ok_or_else(missing)?;
                a[i] = value.ok_or_else(missing)?;
            }
            ("add" | "remove" | "replace" | "test", _) => return Err(missing()),
            (other, _) => {
                return Err(PatchFailure::NotImplemented(format!(
                    "the stand-in does not implement the JSON patch operation {other:?}"
                )));
            }
        }
    }
    *doc = work;
    Ok(())
}

/// A JSON pointer as its parent's tokens and the last token, unescaped (`~1` is `/`).
fn split_pointer(path: &str) -> Option<(Vec<String>, String)> {
    let rest = path.strip_prefix('/')?;
    let mut tokens: Vec<String> = rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect();
    let last = tokens.pop()?;
    Some((tokens, last))
}

/// The container at `tokens`; `None` if any step is absent or `null`.
fn resolve<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    let mut cur = doc;
    for t in tokens {
        cur = match cur {
            Value::Object(m) => m.get_mut(t)?,
            Value::Array(a) => {
                let i = index(t, a.len())?;
                &mut a[i]
            }
            _ => return None,
        };
        if cur.is_null() {
            return None;
        }
    }
    Some(cur)
}

fn index(token: &str, len: usize) -> Option<usize> {
    token.parse::<usize>().ok().filter(|i| *i < len)
}

/// RFC 7386: objects merge, `null` removes a member, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let t = target.as_object_mut().unwrap();
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Strategic merge parts the stand-in does not do: `$` directives, and `secrets`,
/// whose merge key (`name`) would merge the list instead of replacing it.
fn strategic_unsupported(patch: &Value) -> Option<&'static str> {
    fn has_directive(v: &Value) -> bool {
        match v {
            Value::Object(m) => m
                .iter()
                .any(|(k, v)| k.starts_with('$') || has_directive(v)),
            Value::Array(a) => a.iter().any(has_directive),
            _ => false,
        }
    }
    if has_directive(patch) {
        Some("the stand-in does not implement strategic-merge directives")
    } else if patch.get("secrets").is_some() {
        Some("the stand-in does not implement merging `secrets` by name")
    } else {
        None
    }
}
