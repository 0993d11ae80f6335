//! Every error an RPC can return, and the one exhaustive mapping onto gRPC status
//! codes: adding a variant anywhere below forces a decision here (no wildcard arm).

use tonic::{Code, Status};

use crate::containerd::{ContainerdError, NamespaceError};
use crate::ctrconfig::PlanError;
use crate::fix::FixError;
use crate::nodefiles::NodeFilesError;
use crate::plan::ApplyError;
use crate::plan::fsops::FsError;
use crate::plan::journal::JournalError;
use crate::systemd::SystemdError;

use super::authz::Denied;
use super::supervisor::Stopping;
use crate::controller::ControllerError;

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
    #[error(
        "{rpc} refused: {limit} test pulls or diagnoses are already running (max_concurrent_pulls); try again when they finish"
    )]
    Busy { rpc: &'static str, limit: usize },
    #[error(
        "Watch refused: {limit} watch streams are already open, the most ctrdiagd serves at once; close one (a `ctrdiag watch` or an exporter) and try again"
    )]
    TooManyWatchers { limit: usize },
    #[error(transparent)]
    Stopping(#[from] Stopping),
    #[error("ctrdiagd failed internally ({0}); see `journalctl -u ctrdiagd`")]
    Internal(String),
    #[error(transparent)]
    Controller(#[from] ControllerError),
}

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Status {
        let code = match &err {
            ServiceError::Denied(_) => Code::PermissionDenied,
            ServiceError::InvalidArgument { .. } | ServiceError::Namespace(_) => {
                Code::InvalidArgument
            }
            ServiceError::Busy { .. } | ServiceError::TooManyWatchers { .. } => {
                Code::ResourceExhausted
            }
            ServiceError::Stopping(_) => Code::Unavailable,
            ServiceError::Internal(_) => Code::Internal,
            ServiceError::Controller(c) => controller_code(c),
        };
        Status::new(code, err.to_string())
    }
}

fn controller_code(err: &ControllerError) -> Code {
    match err {
        ControllerError::Target(_) => Code::InvalidArgument,
        ControllerError::Containerd(c) => containerd_code(c),
        ControllerError::Apply(a) => apply_code(a),
        ControllerError::Journal(j) => journal_code(j),
        ControllerError::Systemd(s) => systemd_code(s),
        ControllerError::Fix(f) => fix_code(f),
        ControllerError::NodeFiles(n) => node_files_code(n),
        ControllerError::ContainerdVersionUnknown { .. }
        | ControllerError::NothingToRollBack
        | ControllerError::TrialFailed { .. }
        | ControllerError::Preflight { .. } => Code::FailedPrecondition,
        ControllerError::Internal(_) => Code::Internal,
        ControllerError::Creds(c) => creds_code(c),
        ControllerError::Purge(p) => match p {
            crate::cache::PurgeError::NothingCached { .. } => Code::NotFound,
            crate::cache::PurgeError::InUse { .. } => Code::FailedPrecondition,
        },
        // The Fix RPC streams a managed change instead; other callers are refused.
        ControllerError::Managed(_) => Code::FailedPrecondition,
        ControllerError::ManagedRefused(m) => match m {
            crate::managed::ManagedError::NoSkipVerify { .. }
            | crate::managed::ManagedError::NothingToRemove { .. }
            | crate::managed::ManagedError::RenderedCredentials { .. } => Code::FailedPrecondition,
        },
    }
}

fn creds_code(err: &crate::creds::CredsError) -> Code {
    use crate::creds::CredsError;
    match err {
        CredsError::Json { .. }
        | CredsError::Shape { .. }
        | CredsError::Config { .. }
        | CredsError::HostsToml { .. } => Code::FailedPrecondition,
        CredsError::NothingToClean { .. } => Code::NotFound,
    }
}

fn containerd_code(err: &ContainerdError) -> Code {
    match err {
        ContainerdError::SocketMissing { .. }
        | ContainerdError::Unreachable { .. }
        | ContainerdError::CriUnavailable { .. }
        | ContainerdError::CriStarting { .. } => Code::Unavailable,
        ContainerdError::ImageNotFound { .. } | ContainerdError::NamespaceNotFound { .. } => {
            Code::NotFound
        }
        ContainerdError::Timeout { .. } => Code::DeadlineExceeded,
        ContainerdError::Cleanup { .. } => Code::Internal,
        // containerd already chose a code for what it refused; keep it.
        ContainerdError::Rpc { code, .. } => *code,
    }
}

fn apply_code(err: &ApplyError) -> Code {
    match err {
        ApplyError::Stale { .. }
        | ApplyError::NotApplied { .. }
        | ApplyError::BinaryBackup { .. } => Code::FailedPrecondition,
        ApplyError::Journal(j) => journal_code(j),
        ApplyError::Fs(f) => fs_code(f),
        ApplyError::Systemd(s) => systemd_code(s),
        ApplyError::Containerd(c) => containerd_code(c),
        ApplyError::CriDown { .. } | ApplyError::CriRefused { .. } => Code::Unavailable,
        ApplyError::NoRestart { .. } => Code::DeadlineExceeded,
        ApplyError::WaitCancelled => Code::Aborted,
        ApplyError::InstanceUnknown => Code::FailedPrecondition,
        // Someone else's edit is in the way: the operator decides.
        ApplyError::UndoRefused { .. } => Code::FailedPrecondition,
        ApplyError::RecoveryPending { .. } | ApplyError::PlannedBeforeRecovery => {
            Code::FailedPrecondition
        }
        // The node may be in neither state: the loudest code there is.
        ApplyError::UndoFailed { .. } => Code::DataLoss,
    }
}

fn journal_code(err: &JournalError) -> Code {
    match err {
        JournalError::NotFound { .. } => Code::NotFound,
        JournalError::BadId(_) => Code::InvalidArgument,
        JournalError::Damaged { .. } => Code::DataLoss,
        JournalError::Fs(f) => fs_code(f),
        JournalError::Io { .. } => Code::Internal,
    }
}

fn fs_code(err: &FsError) -> Code {
    match err {
        FsError::NotRegular { .. } | FsError::SymlinkedDir { .. } | FsError::TooLarge { .. } => {
            Code::FailedPrecondition
        }
        FsError::Relative { .. } => Code::InvalidArgument,
        FsError::Io { .. } => Code::Internal,
    }
}

fn systemd_code(err: &SystemdError) -> Code {
    match err {
        SystemdError::Connect { .. } => Code::Unavailable,
        SystemdError::Call { .. } => Code::FailedPrecondition,
        SystemdError::JobFailed { .. } => Code::Aborted,
        SystemdError::Timeout { .. } | SystemdError::CallTimeout { .. } => Code::DeadlineExceeded,
    }
}

fn fix_code(err: &FixError) -> Code {
    match err {
        FixError::Plan(p) => plan_code(p),
        FixError::BadCa(_) | FixError::NeedsVerifyImage { .. } => Code::InvalidArgument,
        FixError::BadRecord(_) => Code::DataLoss,
        FixError::TtlTooLong | FixError::TtlNotInsecure | FixError::BadFingerprint => {
            Code::InvalidArgument
        }
        FixError::FingerprintMismatch { .. } | FixError::NotACa { .. } => Code::FailedPrecondition,
        FixError::NothingToRemove { .. } | FixError::ImportedRegistrySettings { .. } => {
            Code::FailedPrecondition
        }
    }
}

fn plan_code(err: &PlanError) -> Code {
    match err {
        PlanError::BadPath { .. } => Code::InvalidArgument,
        PlanError::Config(_)
        | PlanError::HostsToml(_)
        | PlanError::ConfigVersionUnreadable { .. }
        | PlanError::HostsDirUnsupported { .. }
        | PlanError::LegacyIgnored { .. }
        | PlanError::LegacyWithConfigPath { .. }
        | PlanError::LegacyBlocksConfigPath { .. } => Code::FailedPrecondition,
    }
}

fn node_files_code(err: &NodeFilesError) -> Code {
    match err {
        NodeFilesError::Fs(f) => fs_code(f),
        NodeFilesError::TooLarge { .. }
        | NodeFilesError::NotText { .. }
        | NodeFilesError::Config { .. } => Code::FailedPrecondition,
        NodeFilesError::List { .. } | NodeFilesError::Inspect { .. } => Code::Internal,
    }
}
