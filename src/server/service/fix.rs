//! The Fix RPC: validate the request, gather the node's facts, plan, and (unless a
//! dry run) apply under the daemon's apply lock, streaming progress to the caller.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::api::v1 as pb;
use crate::api::v1::fix_request::Mode;
use crate::ctrconfig::ContainerdVersion;
use crate::fix::{self, FixMode, FixSpec, MAX_TTL};
use crate::plan::{ApplyOutcome, ChangeMeta, InsecureMode, InsecureSetting, Plan, Progress, fsops};
use crate::registry::probe::{ProbeOptions, probe};

use super::{DiagnosticsService, ServiceError, parse_image};

pub type FixStream = ReceiverStream<Result<pb::FixEvent, Status>>;

fn invalid(field: &'static str, message: impl Into<String>) -> ServiceError {
    ServiceError::InvalidArgument {
        field,
        message: message.into(),
    }
}

fn event(e: pb::fix_event::Event) -> Result<pb::FixEvent, Status> {
    Ok(pb::FixEvent { event: Some(e) })
}

impl DiagnosticsService {
    pub(super) async fn start_fix(&self, req: pb::FixRequest) -> Result<FixStream, ServiceError> {
        // An interrupted change is undone before the node is read for the plan; a dry
        // run writes nothing, so it only says that a change would be refused.
        if req.dry_run {
            self.executor.refuse_while_pending()?;
        } else {
            self.executor.resume_recovery().await?;
        }
        let (host, image) =
            fix::split_target(&req.target).map_err(|e| invalid("target", e.to_string()))?;
        // Removing overrides may rightly make the target's pull fail; it is verified
        // only against an image the operator names.
        let removing = matches!(req.mode, Some(Mode::RemoveOverrides(_)));
        let verify_image = match (req.verify_image.as_str(), image) {
            ("", Some(i)) if !removing => Some(i.to_string()),
            ("", _) => None,
            (i, _) => Some(parse_image(i)?),
        };
        let ttl = match req.ttl_seconds {
            0 => None,
            s if Duration::from_secs(s) > MAX_TTL => {
                return Err(invalid(
                    "ttl",
                    format!("at most {} days", MAX_TTL.as_secs() / 86400),
                ));
            }
            s => Some(Duration::from_secs(s)),
        };
        let mode = match req.mode {
            None => {
                return Err(invalid(
                    "mode",
                    "say how to fix: --ca FILE, --ca-from-server --sha256 FINGERPRINT, --insecure-skip-verify, --plain-http or --remove-overrides",
                ));
            }
            Some(Mode::CaPem(pem)) => FixMode::Ca { pem },
            Some(Mode::CaFromServerSha256(fp)) => FixMode::Ca {
                pem: self.ca_from_server(&host, &fp).await?,
            },
            Some(Mode::InsecureSkipVerify(true)) => FixMode::InsecureSkipVerify,
            Some(Mode::PlainHttp(true)) => FixMode::PlainHttp,
            Some(Mode::RemoveOverrides(true)) => FixMode::RemoveOverrides {
                all_hosts: req.all_hosts,
            },
            Some(
                Mode::InsecureSkipVerify(false)
                | Mode::PlainHttp(false)
                | Mode::RemoveOverrides(false),
            ) => {
                return Err(invalid("mode", "the chosen mode must be true"));
            }
        };
        if ttl.is_some() && !matches!(mode, FixMode::InsecureSkipVerify | FixMode::PlainHttp) {
            return Err(invalid(
                "ttl",
                "a time to live is for --insecure-skip-verify and --plain-http only",
            ));
        }
        if mode == FixMode::InsecureSkipVerify {
            tracing::warn!(%host, ttl_secs = ttl.map(|t| t.as_secs()), "insecure skip-verify requested: for test environments only");
        }
        // The time to live counts from the request, and is in the change's first record.
        let insecure = match mode {
            FixMode::InsecureSkipVerify => Some(InsecureMode::SkipVerify),
            FixMode::PlainHttp => Some(InsecureMode::PlainHttp),
            FixMode::Ca { .. } | FixMode::RemoveOverrides { .. } => None,
        };
        let meta = ChangeMeta {
            insecure: insecure.map(|mode| InsecureSetting {
                host: host.to_string(),
                mode,
            }),
            expires_unix: ttl.map(|t| self.executor.clock().now_unix() + t.as_secs()),
            ttl_secs: ttl.map(|t| t.as_secs()),
            ..ChangeMeta::plain()
        };
        let spec = FixSpec {
            host,
            mode,
            verify_image,
            legacy: req.legacy,
        };
        let plan = self.plan_for(&spec).await?;

        let (tx, rx) = mpsc::channel(64);
        let _ = tx
            .send(event(pb::fix_event::Event::Plan((&plan).into())))
            .await;
        if req.dry_run {
            let _ = tx
                .send(event(
                    pb::fix_event::Event::Result(pb::FixResult::default()),
                ))
                .await;
            return Ok(ReceiverStream::new(rx));
        }
        let executor = self.executor.clone();
        let expiry = Arc::clone(&self.expiry_changed);
        let metrics = Arc::clone(&self.metrics);
        // Its own task: a caller that goes away does not stop an apply half-way.
        tokio::spawn(async move {
            let (ptx, mut prx) = mpsc::unbounded_channel();
            let forward = {
                let tx = tx.clone();
                tokio::spawn(async move {
                    while let Some(p) = prx.recv().await {
                        let e = match p {
                            Progress::StepStarted { index, description } => {
                                pb::fix_event::Event::Step(pb::StepProgress {
                                    index: index as u32,
                                    description,
                                    done: false,
                                })
                            }
                            Progress::StepDone { index } => {
                                pb::fix_event::Event::Step(pb::StepProgress {
                                    index: index as u32,
                                    description: String::new(),
                                    done: true,
                                })
                            }
                            Progress::Verifying { image } => pb::fix_event::Event::Verifying(image),
                            Progress::Undoing { .. } => continue,
                        };
                        let _ = tx.send(event(e)).await;
                    }
                })
            };
            let expires_unix = meta.expires_unix;
            let outcome = executor.apply(&plan, meta, &Some(ptx)).await;
            let _ = forward.await;
            if let Ok(o) = &outcome {
                let label = match o {
                    ApplyOutcome::Applied { .. } => "applied",
                    ApplyOutcome::RolledBack { .. } => "rolled_back",
                };
                metrics.inc("ctrdiag_changes_total", &[("outcome", label)]);
                if expires_unix.is_some() {
                    expiry.notify_one();
                }
            }
            let result = match outcome {
                Ok(o) => Ok(fix_result(&plan, o, expires_unix)),
                Err(e) => Err(Status::from(ServiceError::from(e))),
            };
            let _ = tx
                .send(result.map(|r| pb::FixEvent {
                    event: Some(pb::fix_event::Event::Result(r)),
                }))
                .await;
        });
        Ok(ReceiverStream::new(rx))
    }

    /// Reads containerd's version and configuration and plans `spec`.
    async fn plan_for(&self, spec: &FixSpec) -> Result<Plan, ServiceError> {
        let version = self.containerd_version().await?;
        let files = crate::nodefiles::read(&self.settings.containerd_config, &version)?;
        let certs_dir = self.settings.certs_dir.display().to_string();
        let ca = fix::ca_path(&files.facts, &spec.host, &certs_dir);
        let existing_ca = fsops::read_regular(std::path::Path::new(&ca))
            .map_err(crate::plan::ApplyError::from)?
            .map(|(b, _)| String::from_utf8_lossy(&b).into_owned());
        Ok(fix::plan_fix(
            &files,
            &version,
            spec,
            existing_ca,
            &certs_dir,
            &self.settings.containerd_unit,
        )?)
    }

    /// containerd's version, asked now: it decides which mechanism works.
    pub(super) async fn containerd_version(&self) -> Result<ContainerdVersion, ServiceError> {
        let v = self.containerd.version().await?;
        ContainerdVersion::parse(&v.version).map_err(|_| ServiceError::ContainerdVersionUnknown {
            reported: v.version,
        })
    }

    /// The certificate the registry presents whose fingerprint the operator confirmed.
    async fn ca_from_server(
        &self,
        host: &crate::registry::host::RegistryHost,
        sha256: &str,
    ) -> Result<String, ServiceError> {
        let want = normalize_fingerprint(sha256);
        if want.len() != 64 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid(
                "sha256",
                "a SHA-256 fingerprint is 64 hex digits (colons optional), as `openssl x509 -noout -fingerprint -sha256` prints it",
            ));
        }
        let report = probe(host, &ProbeOptions::default()).await;
        let presented: Vec<String> = report
            .chain
            .iter()
            .map(|c| {
                let subject = c
                    .info
                    .as_ref()
                    .map(|i| i.subject.clone())
                    .unwrap_or_default();
                format!("{subject} {}", c.sha256_fingerprint)
            })
            .collect();
        report
            .chain
            .iter()
            .find(|c| normalize_fingerprint(&c.sha256_fingerprint) == want)
            .map(|c| c.pem())
            .ok_or(ServiceError::FingerprintMismatch {
                host: host.to_string(),
                presented,
            })
    }
}

fn normalize_fingerprint(s: &str) -> String {
    s.trim()
        .trim_start_matches("sha256:")
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase()
}

fn fix_result(plan: &Plan, outcome: ApplyOutcome, expires_unix: Option<u64>) -> pb::FixResult {
    let verify_of = |v: &Option<crate::containerd::PullOutcome>| {
        v.as_ref().map(|o| {
            pb::TestPullResponse::from_outcome(plan.verify_pull.as_deref().unwrap_or(""), o)
        })
    };
    match outcome {
        ApplyOutcome::Applied { id, verify } => {
            tracing::info!(change = %id, title = plan.title, "fix applied and proven by a pull");
            pb::FixResult {
                executed: true,
                ok: true,
                change_id: id.to_string(),
                verify: verify_of(&verify),
                expires_unix: expires_unix.unwrap_or(0) as i64,
                ..Default::default()
            }
        }
        ApplyOutcome::RolledBack { id, reason, verify } => {
            tracing::warn!(change = %id, reason, "fix did not hold and was undone");
            pb::FixResult {
                executed: true,
                ok: false,
                change_id: id.to_string(),
                reason,
                verify: verify_of(&verify),
                ..Default::default()
            }
        }
    }
}
