//! Exit codes that mean something, and the one mapping from gRPC status to them.

use std::process::ExitCode;

/// What `ctrdiag` exits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything asked for worked and nothing is wrong.
    Ok = 0,
    /// The command ran and found a problem (a pull failed, containerd is down, ...).
    Problem = 1,
    /// The command line or its input was wrong.
    Usage = 2,
    /// ctrdiagd could not be reached, or refused the caller.
    Unreachable = 3,
    /// Nothing was applied because another system owns containerd's configuration
    /// (k3s, RKE2, Bottlerocket): the command printed the change to make there.
    NotApplied = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// An error ending a command: what to print and how to exit.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
}

impl Failure {
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Failure {
            exit,
            message: message.into(),
        }
    }

    /// Maps an error status from ctrdiagd. No wildcard: each code is decided.
    pub fn from_status(status: &tonic::Status) -> Self {
        use tonic::Code;
        let exit = match status.code() {
            Code::PermissionDenied | Code::Unauthenticated => Exit::Unreachable,
            Code::InvalidArgument | Code::OutOfRange => Exit::Usage,
            Code::Ok
            | Code::Cancelled
            | Code::Unknown
            | Code::DeadlineExceeded
            | Code::NotFound
            | Code::AlreadyExists
            | Code::ResourceExhausted
            | Code::FailedPrecondition
            | Code::Aborted
            | Code::Unimplemented
            | Code::Internal
            | Code::Unavailable
            | Code::DataLoss => Exit::Problem,
        };
        Failure::new(exit, status.message().to_string())
    }
}
