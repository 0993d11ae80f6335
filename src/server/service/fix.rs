//! The Fix RPC: parse the request, let the controller check and plan it, stream the
//! plan, and (unless a dry run) run the apply under the supervisor, streaming each
//! step, the verifying pull and the result.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::api::v1 as pb;
use crate::api::v1::fix_request::Mode;
use crate::controller::ControllerError;
use crate::controller::fix::{FixRequest, PreparedFix, RequestedMode};
use crate::managed::ManagedChange;
use crate::plan::Progress;

use super::{DiagnosticsService, ServiceError, parse_image};

pub type FixStream = ReceiverStream<Result<pb::FixEvent, Status>>;

fn event(e: pb::fix_event::Event) -> Result<pb::FixEvent, Status> {
    Ok(pb::FixEvent { event: Some(e) })
}

/// The request's mode, as the operator chose it.
pub(super) fn requested_mode(req: &pb::FixRequest) -> Result<RequestedMode, ServiceError> {
    let invalid = |message: &str| ServiceError::InvalidArgument {
        field: "mode",
        message: message.to_string(),
    };
    match &req.mode {
        None => Err(invalid(
            "say how to fix: --ca FILE, --ca-from-server --sha256 FINGERPRINT, --pin-server-certificate --sha256 FINGERPRINT, --insecure-skip-verify, --plain-http or --remove-overrides",
        )),
        Some(Mode::CaPem(pem)) => Ok(RequestedMode::Ca { pem: pem.clone() }),
        Some(Mode::CaFromServerSha256(fp)) => {
            Ok(RequestedMode::CaFromServer { sha256: fp.clone() })
        }
        Some(Mode::PinServerCertificateSha256(fp)) => {
            Ok(RequestedMode::PinServerCertificate { sha256: fp.clone() })
        }
        Some(Mode::InsecureSkipVerify(true)) => Ok(RequestedMode::InsecureSkipVerify),
        Some(Mode::PlainHttp(true)) => Ok(RequestedMode::PlainHttp),
        Some(Mode::RemoveOverrides(true)) => Ok(RequestedMode::RemoveOverrides {
            all_hosts: req.all_hosts,
        }),
        Some(
            Mode::InsecureSkipVerify(false) | Mode::PlainHttp(false) | Mode::RemoveOverrides(false),
        ) => Err(invalid("the chosen mode must be true")),
    }
}

/// The stream of a fix on a node another system owns: the change to make there, then
/// a result saying nothing was applied.
async fn managed_stream(change: &ManagedChange) -> FixStream {
    let (tx, rx) = mpsc::channel(2);
    let _ = tx
        .send(event(pb::fix_event::Event::Managed(change.into())))
        .await;
    let _ = tx
        .send(event(pb::fix_event::Event::Result(pb::FixResult {
            reason: change.summary(),
            ..Default::default()
        })))
        .await;
    ReceiverStream::new(rx)
}

/// Progress of the executor as stream events (undoing is told by the result).
fn progress_event(p: Progress) -> Option<pb::fix_event::Event> {
    match p {
        Progress::StepStarted { index, description } => {
            Some(pb::fix_event::Event::Step(pb::StepProgress {
                index: index as u32,
                description,
                done: false,
            }))
        }
        Progress::StepDone { index } => Some(pb::fix_event::Event::Step(pb::StepProgress {
            index: index as u32,
            description: String::new(),
            done: true,
        })),
        Progress::Verifying { image } => Some(pb::fix_event::Event::Verifying(image)),
        Progress::AwaitingRestart {
            change,
            command,
            until_unix,
        } => Some(pb::fix_event::Event::AwaitingRestart(pb::AwaitingRestart {
            command,
            until_unix: until_unix as i64,
            change_id: change.to_string(),
        })),
        Progress::Undoing { .. } => None,
    }
}

impl DiagnosticsService {
    pub(super) async fn start_fix(&self, req: pb::FixRequest) -> Result<FixStream, ServiceError> {
        let verify_image = match req.verify_image.as_str() {
            "" => None,
            i => Some(parse_image(i)?),
        };
        let ca_file = match req.ca_file.as_str() {
            "" => None,
            p if std::path::Path::new(p).is_absolute() => Some(p.into()),
            p => {
                return Err(ServiceError::InvalidArgument {
                    field: "ca_file",
                    message: format!(
                        "{p:?} is not an absolute path: name the CA file by its full path"
                    ),
                });
            }
        };
        let request = FixRequest {
            mode: requested_mode(&req)?,
            target: req.target,
            ttl_secs: req.ttl_seconds,
            verify_image,
            legacy: req.legacy,
            dry_run: req.dry_run,
            ca_file,
            manual_restart: req.manual_restart,
        };
        let prepared = match self.controller.prepare_fix(request).await {
            Err(ControllerError::Managed(change)) => return Ok(managed_stream(&change).await),
            other => other?,
        };
        self.stream_change(prepared, req.dry_run).await
    }

    /// Streams a prepared change: its plan, then (unless a dry run) each step, the
    /// verifying pull and the result, with the apply running under the supervisor.
    pub(super) async fn stream_change(
        &self,
        prepared: PreparedFix,
        dry_run: bool,
    ) -> Result<FixStream, ServiceError> {
        let (tx, rx) = mpsc::channel(64);
        let mut plan = pb::PlanView::from(&prepared.plan);
        plan.trial = prepared.trial.as_ref().map(Into::into);
        plan.preflight = prepared.preflight.clone();
        let _ = tx.send(event(pb::fix_event::Event::Plan(plan))).await;
        let refusal = prepared.refusal().filter(|_| !dry_run);
        if dry_run || refusal.is_some() {
            let reason = refusal.map(|r| r.to_string()).unwrap_or_default();
            let result = pb::FixResult {
                reason,
                ..Default::default()
            };
            let _ = tx.send(event(pb::fix_event::Event::Result(result))).await;
            return Ok(ReceiverStream::new(rx));
        }
        let controller = Arc::clone(&self.controller);
        let expiry = Arc::clone(&self.expiry_changed);
        let metrics = Arc::clone(&self.metrics);
        self.supervisor.spawn_apply(async move {
            let (ptx, mut prx) = mpsc::unbounded_channel();
            let forward = {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while let Some(p) = prx.recv().await {
                        if let Some(e) = progress_event(p) {
                            let _ = tx.send(event(e)).await;
                        }
                    }
                })
            };
            let expires_unix = prepared.meta.expires_unix;
            let plan = prepared.plan.clone();
            let outcome = controller.apply_fix(prepared, &Some(ptx)).await;
            let _ = forward.await;
            let result = match outcome {
                Ok(o) => {
                    metrics.change(matches!(o, crate::plan::ApplyOutcome::Applied { .. }));
                    if expires_unix.is_some() {
                        expiry.notify_one();
                    }
                    Ok(crate::api::fix_result(&plan, &o, expires_unix))
                }
                Err(e) => Err(Status::from(ServiceError::from(e))),
            };
            let _ = tx
                .send(result.map(|r| pb::FixEvent {
                    event: Some(pb::fix_event::Event::Result(r)),
                }))
                .await;
        })?;
        Ok(ReceiverStream::new(rx))
    }
}
