//! What can go wrong talking to containerd, told apart so that callers (and users)
//! know whether containerd is down, its CRI plugin is broken, or a request was wrong.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ContainerdError {
    #[error(
        "containerd socket {} does not exist: is containerd running? (check `systemctl status containerd`)",
        .path.display()
    )]
    SocketMissing { path: PathBuf },

    #[error(
        "containerd at {} is not answering ({detail}): is it running? (check `journalctl -u containerd`)",
        .path.display()
    )]
    Unreachable { path: PathBuf, detail: String },

    #[error(
        "containerd at {} answers, but its CRI plugin is not loaded (`unknown service runtime.v1.ImageService`): the kubelet cannot pull; look for `failed to load plugin io.containerd.grpc.v1.cri` in `journalctl -u containerd`",
        .path.display()
    )]
    CriUnavailable { path: PathBuf },

    #[error(
        "containerd at {} is starting: its CRI plugin is not initialized yet (`server is not initialized yet`); try again in a few seconds",
        .path.display()
    )]
    CriStarting { path: PathBuf },

    #[error(
        "image {image:?} not found in containerd namespace {namespace}: list images with `ctrdiag images`"
    )]
    ImageNotFound { image: String, namespace: String },

    #[error(
        "containerd namespace {namespace} does not exist: list namespaces with `ctr namespaces ls`"
    )]
    NamespaceNotFound { namespace: String },

    #[error(
        "containerd did not finish {rpc} within {seconds}s: is it overloaded? (check `journalctl -u containerd`)"
    )]
    Timeout { rpc: &'static str, seconds: u64 },

    #[error(
        "the cleanup after the test pull of {image} did not finish ({detail}): compare `ctrdiag images` with what the node should have"
    )]
    Cleanup { image: String, detail: String },

    #[error("containerd refused {rpc} ({code:?}): {message}")]
    Rpc {
        rpc: &'static str,
        code: tonic::Code,
        message: String,
    },
}

impl ContainerdError {
    /// Sorts a gRPC status from containerd into the errors above.
    pub(crate) fn from_status(
        rpc: &'static str,
        socket: &std::path::Path,
        status: tonic::Status,
    ) -> Self {
        let message = status.message().to_string();
        match status.code() {
            tonic::Code::Unimplemented if message.contains("unknown service runtime.v1") => {
                ContainerdError::CriUnavailable {
                    path: socket.to_path_buf(),
                }
            }
            // containerd 1.6 answers CRI calls so (code Unknown) while its CRI plugin
            // is still starting, just after containerd itself began to answer.
            _ if message.contains("server is not initialized yet") => {
                ContainerdError::CriStarting {
                    path: socket.to_path_buf(),
                }
            }
            _ if is_transport_failure(&status) && !socket.exists() => {
                ContainerdError::SocketMissing {
                    path: socket.to_path_buf(),
                }
            }
            _ if is_transport_failure(&status) => ContainerdError::Unreachable {
                path: socket.to_path_buf(),
                detail: transport_detail(&status),
            },
            code => ContainerdError::Rpc { rpc, code, message },
        }
    }

    /// True when containerd itself could not be reached (as opposed to refusing a request).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ContainerdError::SocketMissing { .. } | ContainerdError::Unreachable { .. }
        )
    }
}

/// Whether the call never reached containerd: tonic reports a refused or dropped
/// connection as `Unavailable`, or as `Unknown: transport error` with the
/// transport error as its source, depending on where the connection failed.
fn is_transport_failure(status: &tonic::Status) -> bool {
    status.code() == tonic::Code::Unavailable
        || std::error::Error::source(status)
            .is_some_and(|e| e.downcast_ref::<tonic::transport::Error>().is_some())
}

/// The innermost cause of a transport failure ("Connection refused"), which is what
/// tells an operator whether the socket is stale or the daemon is hung.
fn transport_detail(status: &tonic::Status) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    let mut last = None;
    while let Some(err) = source {
        last = Some(err.to_string());
        source = err.source();
    }
    last.unwrap_or_else(|| status.message().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cri_plugin_still_starting_is_told_apart_and_says_to_try_again() {
        let socket = std::path::Path::new("/run/containerd/containerd.sock");
        let status = tonic::Status::unknown("server is not initialized yet");
        let err = ContainerdError::from_status("Status", socket, status);
        assert!(
            matches!(err, ContainerdError::CriStarting { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("try again"), "{err}");
    }
}
