//! `ctrdiag status`

use crate::cli::stdout::out;

use serde_json::json;

use super::{Client, print_json};
use crate::api::v1 as pb;
use crate::cli::render::{table, timestamp};
use crate::cli::{Exit, Failure, Output};

pub async fn run(mut client: Client, output: Output) -> Result<Exit, Failure> {
    let resp = client
        .get_status(pb::GetStatusRequest {})
        .await
        .map_err(|s| Failure::from_status(&s))?
        .into_inner();
    let c = resp.containerd.unwrap_or_default();
    let cfg = resp.config.unwrap_or_default();
    let unit = resp.unit.unwrap_or_default();
    let changes = resp.changes.unwrap_or_default();
    let detection = resp.detection.unwrap_or_default();
    let overdue = changes.insecure.iter().any(|i| i.overdue);
    let healthy = c.reachable
        && c.cri_ready
        && !overdue
        && changes.damaged.is_empty()
        && changes.recovery_pending_change.is_empty();
    let mut detection_json = super::events::detection_json(&detection);
    detection_json["problems"] = detection
        .problems
        .iter()
        .map(super::events::problem_json)
        .collect();
    match output {
        Output::Json => print_json(&json!({
            "daemon_version": resp.daemon_version,
            "healthy": healthy,
            "containerd": {
                "socket": c.socket,
                "reachable": c.reachable,
                "version": c.version,
                "cri_ready": c.cri_ready,
                "cri_problems": c.cri_problems,
                "error": c.error,
                "loaded": c.loaded.iter().map(|f| json!({"cause": f.cause, "message": f.message, "remedy": f.remedy})).collect::<Vec<_>>(),
            },
            "config": {
                "file": cfg.file,
                "exists": cfg.exists,
                "config_version": cfg.config_version,
                "registry_mechanism": cfg.registry_mechanism,
                "config_path": cfg.config_path,
                "error": cfg.error,
                "imports": cfg.imports,
                "imports_with_registry_settings": cfg.imports_with_registry_settings,
                "findings": cfg.findings.iter().map(|f| json!({"cause": f.cause, "message": f.message})).collect::<Vec<_>>(),
            },
            "unit": super::unit_json(&unit),
            "detection": detection_json,
            "changes": {
                "insecure": changes.insecure.iter().map(|i| json!({
                    "change_id": i.change_id,
                    "host": i.host,
                    "mode": i.mode,
                    "expires": (i.expires_unix > 0).then(|| timestamp(i.expires_unix)),
                    "overdue": i.overdue,
                    "error": i.error,
                })).collect::<Vec<_>>(),
                "damaged": changes.damaged,
                "recovery_pending": (!changes.recovery_pending_change.is_empty()).then(|| json!({
                    "change_id": changes.recovery_pending_change,
                    "reason": changes.recovery_pending_reason,
                })),
            },
        })),
        Output::Table => {
            let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
            let dash = |s: &str| {
                if s.is_empty() {
                    "-".to_string()
                } else {
                    s.to_string()
                }
            };
            let mut rows = vec![
                vec!["ctrdiagd".into(), resp.daemon_version],
                vec!["containerd socket".into(), c.socket],
                vec!["containerd reachable".into(), yes_no(c.reachable)],
                vec!["containerd version".into(), dash(&c.version)],
                vec!["CRI ready".into(), yes_no(c.cri_ready)],
                vec![
                    "config file".into(),
                    format!("{}{}", cfg.file, if cfg.exists { "" } else { " (absent)" }),
                ],
                vec![
                    "config version".into(),
                    if cfg.config_version == 0 {
                        "-".into()
                    } else {
                        cfg.config_version.to_string()
                    },
                ],
                vec!["registry mechanism".into(), dash(&cfg.registry_mechanism)],
                vec!["config_path".into(), dash(&cfg.config_path)],
            ];
            rows.push(vec![
                "unit".into(),
                if unit.error.is_empty() {
                    format!(
                        "{} {} ({}), {} automatic restarts",
                        unit.name, unit.active_state, unit.sub_state, unit.n_restarts
                    )
                } else {
                    format!("{}: {}", unit.name, unit.error)
                },
            ]);
            for p in &c.cri_problems {
                rows.push(vec!["CRI condition".into(), p.clone()]);
            }
            for f in &c.loaded {
                rows.push(vec![
                    format!("containerd: {}", f.cause),
                    format!("{} (do: {})", f.message, f.remedy),
                ]);
            }
            for i in &cfg.imports {
                let note = if cfg.imports_with_registry_settings.contains(i) {
                    " (sets registry settings)"
                } else {
                    ""
                };
                rows.push(vec!["config import".into(), format!("{i}{note}")]);
            }
            for f in &cfg.findings {
                let cause = if f.cause.is_empty() {
                    "advice"
                } else {
                    f.cause.as_str()
                };
                rows.push(vec![format!("config: {cause}"), f.message.clone()]);
            }
            if !cfg.error.is_empty() {
                rows.push(vec!["config problem".into(), cfg.error]);
            }
            rows.push(vec![
                "detection".into(),
                match (detection.source.is_empty(), detection.following) {
                    (true, _) => "off (containerd_log = \"off\")".to_string(),
                    (false, true) => format!(
                        "following {}: {} lines, {} events",
                        detection.source, detection.lines_read, detection.events
                    ),
                    (false, false) => format!(
                        "NOT following {}: {}",
                        detection.source,
                        dash(&detection.error)
                    ),
                },
            ]);
            for p in &detection.problems {
                rows.push(vec![
                    "registry problem".into(),
                    format!(
                        "{} ({}): {}, {} failure(s)",
                        p.host, p.area, p.cause, p.failures
                    ),
                ]);
            }
            for i in &changes.insecure {
                let until = if i.expires_unix > 0 {
                    format!("until {}", timestamp(i.expires_unix))
                } else {
                    "with no time to live".to_string()
                };
                let state = if i.overdue {
                    format!(
                        "OVERDUE: its time to live is over and it is still on ({})",
                        dash(&i.error)
                    )
                } else {
                    until
                };
                rows.push(vec![
                    "insecure setting".into(),
                    format!(
                        "{} for {} by change {}, {state}",
                        i.mode, i.host, i.change_id
                    ),
                ]);
            }
            for d in &changes.damaged {
                rows.push(vec![
                    "damaged change".into(),
                    format!("{d}: its records cannot be read (see `ctrdiag changes`)"),
                ]);
            }
            if !changes.recovery_pending_change.is_empty() {
                rows.push(vec![
                    "CHANGES BLOCKED".into(),
                    format!(
                        "change {} was interrupted and could not be undone: {}",
                        changes.recovery_pending_change, changes.recovery_pending_reason
                    ),
                ]);
            }
            out!(
                "{}",
                table(&["", ""], &rows)
                    .split_once('\n')
                    .map(|x| x.1)
                    .unwrap_or("")
            );
            if !c.error.is_empty() {
                eprintln!("ctrdiag: {}", c.error);
            }
        }
    }
    Ok(if healthy { Exit::Ok } else { Exit::Problem })
}
