//! The Kubernetes API as `ctrdiag k8s` needs it: the operator's kubeconfig found the way
//! kubectl finds it, one typed `Api<ServiceAccount>`, a GET and a guarded JSON patch.
//! I/O and error mapping only; what to patch is decided in [`super::pull_secrets`].
//! It never reads a Secret: the names in `imagePullSecrets` are all it handles.

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};

use super::pull_secrets::{SAVED_ANNOTATION, SavedBy, SecretRef, ServiceAccountState};

/// How long one API call may take before ctrdiag gives up (kubectl has no limit; a CLI
/// that hangs on a dead API server helps nobody).
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The field manager the API server records for ctrdiag's patches.
const FIELD_MANAGER: &str = "ctrdiag";

/// Which kubeconfig and context to use (`None`: as kubectl would choose).
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot use the kubeconfig {}: {source}; pass the right file with --kubeconfig", .path.as_deref().map_or("(KUBECONFIG or ~/.kube/config)".into(), |p| p.display().to_string()))]
    Kubeconfig {
        path: Option<PathBuf>,
        source: KubeconfigError,
    },
    #[error(
        "no kubeconfig found (KUBECONFIG, ~/.kube/config) and not running in a Pod: pass --kubeconfig FILE"
    )]
    NoConfig,
    #[error("--context {context} needs a kubeconfig, and none was found: pass --kubeconfig FILE")]
    ContextWithoutKubeconfig { context: String },
    #[error(
        "the kubeconfig has no context {context:?}; list them with `kubectl config get-contexts`"
    )]
    UnknownContext { context: String },
    #[error("the kubeconfig names no current context: pass --context NAME")]
    NoContext,
    #[error("cannot set up the Kubernetes client: {}", chain(.0))]
    Client(kube::Error),
    #[error("cannot reach the Kubernetes API server at {server}: {}; check the cluster address and CA in the kubeconfig", chain(.source))]
    Unreachable { server: String, source: kube::Error },
    #[error(
        "the API server at {server} did not accept the kubeconfig's credentials (401 Unauthorized): log in again or pick another --context"
    )]
    Unauthorized { server: String },
    #[error(
        "the API server refused: {message} (403 Forbidden); use a kubeconfig user allowed to get and patch this ServiceAccount"
    )]
    Forbidden { message: String },
    #[error(
        "ServiceAccount {namespace}/{name} does not exist (404 Not Found); check --namespace, --service-account and --context"
    )]
    NotFound { namespace: String, name: String },
    #[error(
        "ServiceAccount {namespace}/{name} changed after ctrdiag read it, so the guarded patch was refused (422) and nothing was changed; run the command again"
    )]
    Changed { namespace: String, name: String },
    #[error("the API server answered {code}: {message}")]
    Rejected { code: u16, message: String },
    #[error("unexpected answer from the API server: {}", chain(.0))]
    Protocol(kube::Error),
}

impl ClusterError {
    /// The API server answered and refused: the request certainly changed nothing.
    /// (A lost connection or an unreadable answer leaves that open.)
    pub fn refused_by_server(&self) -> bool {
        match self {
            ClusterError::Unauthorized { .. }
            | ClusterError::Forbidden { .. }
            | ClusterError::NotFound { .. }
            | ClusterError::Changed { .. }
            | ClusterError::Rejected { .. } => true,
            ClusterError::Kubeconfig { .. }
            | ClusterError::NoConfig
            | ClusterError::ContextWithoutKubeconfig { .. }
            | ClusterError::UnknownContext { .. }
            | ClusterError::NoContext
            | ClusterError::Client(_)
            | ClusterError::Unreachable { .. }
            | ClusterError::Protocol(_) => false,
        }
    }
}

/// A connection to one namespace's ServiceAccounts, and who is using it.
pub struct Cluster {
    api: Api<ServiceAccount>,
    namespace: String,
    server: String,
    saved_by: SavedBy,
}

impl Cluster {
    /// Loads the kubeconfig like kubectl (`--kubeconfig`, else KUBECONFIG, else
    /// ~/.kube/config, else the in-cluster service account) and builds the client.
    pub async fn connect(target: &Target, namespace: &str) -> Result<Self, ClusterError> {
        let (mut config, saved_by) = load_config(target).await?;
        config.read_timeout = Some(READ_TIMEOUT);
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config).map_err(ClusterError::Client)?;
        Ok(Cluster {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            server,
            saved_by,
        })
    }

    /// The API server's URL, as the kubeconfig names it.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The kubeconfig context and user in use, recorded with a saved list.
    pub fn saved_by(&self) -> &SavedBy {
        &self.saved_by
    }

    pub async fn read(&self, name: &str) -> Result<ServiceAccountState, ClusterError> {
        let sa = self
            .api
            .get(name)
            .await
            .map_err(|e| self.error(name, e, false))?;
        Ok(self.state(name, sa))
    }

    /// Sends one JSON patch (`application/json-patch+json`); a failed `test` in it is
    /// [`ClusterError::Changed`].
    pub async fn patch(
        &self,
        name: &str,
        patch: &json_patch::Patch,
    ) -> Result<ServiceAccountState, ClusterError> {
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        let sa = self
            .api
            .patch(name, &params, &Patch::<()>::Json(patch.clone()))
            .await
            .map_err(|e| self.error(name, e, true))?;
        Ok(self.state(name, sa))
    }

    fn state(&self, name: &str, sa: ServiceAccount) -> ServiceAccountState {
        let annotations = sa.metadata.annotations;
        ServiceAccountState {
            namespace: self.namespace.clone(),
            name: name.to_string(),
            pull_secrets: sa
                .image_pull_secrets
                .unwrap_or_default()
                .into_iter()
                .map(|r| SecretRef::new(r.name))
                .collect(),
            has_annotations: annotations.is_some(),
            saved: annotations.and_then(|mut a| a.remove(SAVED_ANNOTATION)),
        }
    }

    fn error(&self, name: &str, err: kube::Error, patching: bool) -> ClusterError {
        let (namespace, name) = (self.namespace.clone(), name.to_string());
        match err {
            kube::Error::Api(status) => match status.code {
                401 => ClusterError::Unauthorized {
                    server: self.server.clone(),
                },
                403 => ClusterError::Forbidden {
                    message: status.message,
                },
                404 => ClusterError::NotFound { namespace, name },
                422 if patching => ClusterError::Changed { namespace, name },
                code => ClusterError::Rejected {
                    code,
                    message: status.message,
                },
            },
            e @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => {
                ClusterError::Unreachable {
                    server: self.server.clone(),
                    source: e,
                }
            }
            // Decoding, request building, auth plugins: kube's other failures all mean
            // the exchange itself went wrong.
            other => ClusterError::Protocol(other),
        }
    }
}

/// The client configuration and the names of who uses it.
async fn load_config(target: &Target) -> Result<(Config, SavedBy), ClusterError> {
    let kubeconfig = match &target.kubeconfig {
        Some(path) => {
            Some(
                Kubeconfig::read_from(path).map_err(|source| ClusterError::Kubeconfig {
                    path: Some(path.clone()),
                    source,
                })?,
            )
        }
        None => match Kubeconfig::read() {
            Ok(k) => Some(k),
            Err(e) if no_default_kubeconfig(&e) => None,
            Err(source) => return Err(ClusterError::Kubeconfig { path: None, source }),
        },
    };
    let Some(kubeconfig) = kubeconfig else {
        if let Some(context) = &target.context {
            return Err(ClusterError::ContextWithoutKubeconfig {
                context: context.clone(),
            });
        }
        let config = Config::incluster().map_err(|_| ClusterError::NoConfig)?;
        return Ok((config, SavedBy::default()));
    };
    let context = target
        .context
        .clone()
        .or_else(|| kubeconfig.current_context.clone())
        .ok_or(ClusterError::NoContext)?;
    let named = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context)
        .ok_or_else(|| ClusterError::UnknownContext {
            context: context.clone(),
        })?;
    let user = named.context.as_ref().and_then(|c| c.user.clone());
    let options = KubeConfigOptions {
        context: target.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .map_err(|source| ClusterError::Kubeconfig {
            path: target.kubeconfig.clone(),
            source,
        })?;
    Ok((
        config,
        SavedBy {
            context: Some(context),
            user,
        },
    ))
}

/// No KUBECONFIG and no ~/.kube/config: kubectl then tries the in-cluster account.
fn no_default_kubeconfig(err: &KubeconfigError) -> bool {
    match err {
        KubeconfigError::FindPath => true,
        KubeconfigError::ReadConfig(e, _) => {
            e.kind() == std::io::ErrorKind::NotFound && std::env::var_os("KUBECONFIG").is_none()
        }
        _ => false,
    }
}

/// An error and its causes on one line: kube's top-level messages ("ServiceError:
/// client error (Connect)") hide the part that says what to fix.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = e.source();
    }
    parts.join(": ")
}
