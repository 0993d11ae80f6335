//! The Diagnose RPC: gathers the facts (containerd's version and configuration, a probe
//! of the registry with the CA containerd would use, a test pull) and hands them to the
//! pure engine.

use std::path::Path;

use crate::api::v1 as pb;
use crate::containerd::{ContainerdError, PullOutcome, TestPull};
use crate::ctrconfig::{HostsToml, effective_hosts_dir, findings};
use crate::diagnose::{CauseCode, Facts, PullResult, diagnose, healthy};
use crate::fix;
use crate::registry::host::RegistryHost;
use crate::registry::probe::{CaFile, Outcome, ProbeOptions, StepKind, probe};

use super::{DiagnosticsService, ServiceError};

impl DiagnosticsService {
    pub(super) async fn run_diagnosis(
        &self,
        req: pb::DiagnoseRequest,
    ) -> Result<pb::DiagnoseResponse, ServiceError> {
        let (host, image) =
            fix::split_target(&req.target).map_err(|e| ServiceError::InvalidArgument {
                field: "target",
                message: e.to_string(),
            })?;
        let image = image.map(|i| i.to_string());
        let mut tried = Vec::new();
        let mut resp = pb::DiagnoseResponse {
            target: req.target.clone(),
            host: host.to_string(),
            ..Default::default()
        };

        // containerd's version decides which configuration it reads.
        let version = match self.containerd_version().await {
            Ok(v) => {
                resp.containerd_version = v.to_string();
                tried.push(format!("containerd {v}: answers"));
                Some(v)
            }
            Err(e) => {
                tried.push(format!("containerd: {e}"));
                None
            }
        };
        let (config_findings, ca_files, hosts_toml) = match &version {
            Some(v) => match crate::nodefiles::read(&self.settings.containerd_config, v) {
                Ok(files) => {
                    let (cas, hosts_toml) = containerd_cas_for(&files.facts, &host, v);
                    tried.push(format!(
                        "read {}",
                        self.settings.containerd_config.display()
                    ));
                    (findings(&files.facts, v), cas, hosts_toml)
                }
                Err(e) => {
                    tried.push(format!(
                        "read {}: {e}",
                        self.settings.containerd_config.display()
                    ));
                    (Vec::new(), Vec::new(), None)
                }
            },
            None => (Vec::new(), Vec::new(), None),
        };

        let mut opts = ProbeOptions::default();
        for path in &ca_files {
            match CaFile::load(path) {
                Ok(ca) => opts.ca_files.push(ca),
                Err(e) => tried.push(format!("CA file {path}: {e}")),
            }
        }
        let report = probe(&host, &opts).await;
        for step in &report.steps {
            let outcome = match step.outcome {
                Outcome::Ok => "ok",
                Outcome::Failed => "failed",
                Outcome::TimedOut => "timed out",
                Outcome::Skipped => "skipped",
            };
            let name = match step.step {
                StepKind::Dns => "DNS lookup",
                StepKind::Connect => "TCP connect",
                StepKind::TlsHandshake => "TLS handshake",
                StepKind::VerifyChain => "certificate chain",
                StepKind::HttpsGet => "GET /v2/ over HTTPS",
                StepKind::HttpGet => "GET /v2/ over HTTP",
            };
            tried.push(
                format!(
                    "{name}: {outcome} ({:.0} ms) {}",
                    step.duration_ms, step.detail
                )
                .trim_end()
                .to_string(),
            );
        }
        resp.probe_json = serde_json::to_string(&report).unwrap_or_default();

        let mut containerd_problem = version.is_none().then(|| {
            (
                CauseCode::ContainerdUnreachable,
                "containerd did not answer its Version call".to_string(),
            )
        });
        let mut pull = None;
        if let (Some(image), false, Some(_)) = (&image, req.skip_pull, &version) {
            match self
                .containerd
                .pull_leaving_store_as_found(image, false)
                .await
            {
                Ok(TestPull { outcome, .. }) => {
                    let r = pb::TestPullResponse::from_outcome(image, &outcome);
                    tried.push(format!(
                        "pull {image} through CRI: {} ({} ms)",
                        if r.ok {
                            "ok".to_string()
                        } else {
                            format!("failed, {}", r.cause)
                        },
                        r.duration_ms
                    ));
                    resp.pull = Some(r);
                    pull = Some(match outcome {
                        PullOutcome::Pulled { .. } => PullResult::Ok,
                        PullOutcome::Failed { message, .. } => PullResult::Failed { message },
                        PullOutcome::TimedOut { limit } => PullResult::TimedOut {
                            limit_secs: limit.as_secs(),
                        },
                    });
                }
                Err(e) => {
                    tried.push(format!("pull {image} through CRI: {e}"));
                    containerd_problem = Some(problem_of(&e));
                }
            }
        }

        let found = diagnose(&Facts {
            host: host.to_string(),
            image,
            pull,
            probe: Some(&report),
            config: &config_findings,
            hosts_toml,
            containerd_problem,
        });
        resp.healthy = healthy(&found);
        resp.findings = found.iter().map(pb::Finding::from).collect();
        resp.tried = tried;
        Ok(resp)
    }
}

/// containerd's own failure as a cause: it could not be asked at all, or its CRI
/// plugin is missing.
fn problem_of(e: &ContainerdError) -> (CauseCode, String) {
    let cause = match e {
        ContainerdError::CriUnavailable { .. } => CauseCode::CriUnavailable,
        ContainerdError::SocketMissing { .. }
        | ContainerdError::Unreachable { .. }
        | ContainerdError::Timeout { .. } => CauseCode::ContainerdUnreachable,
        ContainerdError::Cleanup { .. } => CauseCode::Unknown,
        ContainerdError::ImageNotFound { .. }
        | ContainerdError::NamespaceNotFound { .. }
        | ContainerdError::Rpc { .. } => CauseCode::Unknown,
    };
    (cause, e.to_string())
}

/// The CA files containerd would use for `host` (hosts.toml `ca` of the directory it
/// reads; on 1.x without config_path, the legacy `configs.<host>.tls.ca_file`), and
/// that hosts.toml's text.
fn containerd_cas_for(
    facts: &crate::ctrconfig::NodeFacts,
    host: &RegistryHost,
    version: &crate::ctrconfig::ContainerdVersion,
) -> (Vec<String>, Option<String>) {
    let cf = facts.config.facts();
    let Some(cp) = &cf.config_path else {
        let legacy = cf
            .legacy_tls
            .iter()
            .filter(|t| version.honours_legacy_tls() && t.host == host.to_string())
            .filter_map(|t| t.ca_file.clone())
            .collect();
        return (legacy, None);
    };
    for root in cp.roots() {
        let Some(dir) = effective_hosts_dir(host, version, &facts.dir_names(root)) else {
            continue;
        };
        let Some(d) = facts.dir(root, &dir) else {
            continue;
        };
        let Some(text) = &d.hosts_toml else {
            return (Vec::new(), None);
        };
        let cas = HostsToml::parse(text)
            .map(|h| {
                h.hosts()
                    .iter()
                    .flat_map(|e| e.settings.ca.clone())
                    .chain(h.top_level().ca.clone())
                    .map(|ca| {
                        if Path::new(&ca).is_absolute() {
                            ca
                        } else {
                            format!("{root}/{dir}/{ca}")
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        return (cas, Some(text.clone()));
    }
    (Vec::new(), None)
}
