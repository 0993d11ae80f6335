//! Every error an RPC can return, and the one exhaustive mapping onto gRPC status
//! codes: adding a variant anywhere below forces a decision here (no wildcard arm).

use tonic::{Code, Status};

use crate::containerd::{ContainerdError, NamespaceError};

use super::authz::Denied;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Denied(#[from] Denied),
    #[error("invalid {field}: {message}")]
    InvalidArgument {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Namespace(#[from] NamespaceError),
    #[error(transparent)]
    Containerd(#[from] ContainerdError),
}

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Status {
        let code = match &err {
            ServiceError::Denied(_) => Code::PermissionDenied,
            ServiceError::InvalidArgument { .. } | ServiceError::Namespace(_) => {
                Code::InvalidArgument
            }
            ServiceError::Containerd(c) => match c {
                ContainerdError::SocketMissing { .. }
                | ContainerdError::Unreachable { .. }
                | ContainerdError::CriUnavailable { .. } => Code::Unavailable,
                ContainerdError::ImageNotFound { .. }
                | ContainerdError::NamespaceNotFound { .. } => Code::NotFound,
                ContainerdError::Timeout { .. } => Code::DeadlineExceeded,
                // containerd already chose a code for what it refused; keep it.
                ContainerdError::Rpc { code, .. } => *code,
            },
        };
        Status::new(code, err.to_string())
    }
}
