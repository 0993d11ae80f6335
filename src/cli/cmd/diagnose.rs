//! `ctrdiag diagnose TARGET`

use crate::cli::stdout::outln;

use ctrdiag_core::cause::CauseCode;
use serde_json::json;

use super::{Client, print_json};
use crate::api::v1 as pb;
use crate::cli::{Exit, Failure, Output};

pub async fn run(
    mut client: Client,
    target: String,
    skip_pull: bool,
    output: Output,
) -> Result<Exit, Failure> {
    let r = client
        .diagnose(pb::DiagnoseRequest { target, skip_pull })
        .await
        .map_err(|s| Failure::from_status(&s))?
        .into_inner();
    match output {
        Output::Json => print_json(&json!({
            "target": r.target,
            "host": r.host,
            "healthy": r.healthy,
            "containerd_version": r.containerd_version,
            "findings": r.findings.iter().map(|f| json!({
                "cause": f.cause,
                "severity": f.severity,
                "summary": f.summary,
                "evidence": f.evidence.iter().map(|e| json!({"label": e.label, "value": e.value})).collect::<Vec<_>>(),
                "remedies": f.remedies.iter().map(|m| json!({"text": m.text, "command": m.command})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "tried": r.tried,
            "lookup": r.lookup.iter().map(|p| json!({
                "kind": p.kind, "path": p.path, "state": p.state, "detail": p.detail, "files": p.files,
                "ca_files": p.ca_files.iter().map(|c| json!({"path": c.path, "exists": c.exists})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "lookup_notes": r.lookup_notes,
            "pull": r.pull.as_ref().map(|p| json!({
                "ok": p.ok, "image_id": p.image_id, "cause": p.cause, "message": p.message, "duration_ms": p.duration_ms,
            })),
            "probe": serde_json::from_str::<serde_json::Value>(&r.probe_json).unwrap_or(serde_json::Value::Null),
        })),
        Output::Table => print_report(&r),
    }
    Ok(if r.healthy { Exit::Ok } else { Exit::Problem })
}

fn print_report(r: &pb::DiagnoseResponse) {
    let version = if r.containerd_version.is_empty() {
        String::new()
    } else {
        format!(" (containerd {})", r.containerd_version)
    };
    outln!("Diagnosis of {}{version}\n", r.target);
    outln!("What was tried:");
    for t in &r.tried {
        outln!("  {t}");
    }
    outln!();
    print_lookup(r);
    if r.findings.is_empty() {
        outln!("No problem found.");
    } else {
        outln!("Findings:");
    }
    for f in &r.findings {
        outln!("  {} {}: {}", f.severity.to_uppercase(), f.cause, f.summary);
        for e in &f.evidence {
            outln!("      {}: {}", e.label, e.value);
        }
        if !f.remedies.is_empty() {
            outln!("    what to do:");
            for (i, m) in f.remedies.iter().enumerate() {
                // A remedy may carry a snippet (a registries.yaml part): keep it indented.
                outln!("      {}. {}", i + 1, m.text.replace('\n', "\n           "));
                if !m.command.is_empty() {
                    outln!("         $ {}", m.command);
                }
            }
        }
        // A daemon newer than this CLI may name a code it has no explanation of.
        if f.cause.parse::<CauseCode>().is_ok() {
            outln!("    more: ctrdiag explain {}", f.cause);
        }
    }
    let errors = r.findings.iter().filter(|f| f.severity == "error").count();
    outln!(
        "\nResult: {}",
        if r.healthy {
            "healthy".to_string()
        } else {
            format!(
                "NOT HEALTHY ({errors} error{})",
                if errors == 1 { "" } else { "s" }
            )
        }
    );
}

/// containerd's lookup for the host, one line a place: the operator's "why is my
/// hosts.toml ignored?" answered by the order and the one place that wins.
fn print_lookup(r: &pb::DiagnoseResponse) {
    if r.lookup.is_empty() {
        return;
    }
    let who = if r.containerd_version.is_empty() {
        "containerd".to_string()
    } else {
        format!("containerd {}", r.containerd_version)
    };
    outln!(
        "Where {who} looks for {} (the first place that exists wins; nothing is merged):",
        r.host
    );
    for note in &r.lookup_notes {
        outln!("  note: {note}");
    }
    let width = r.lookup.iter().map(|p| p.path.len()).max().unwrap_or(0);
    for (i, p) in r.lookup.iter().enumerate() {
        let state = match p.state.as_str() {
            "wins" => "WINS".to_string(),
            other => other.replace('_', " "),
        };
        let files = if p.files.is_empty() {
            String::new()
        } else if p.state == "shadowed" {
            format!(" (ignored: {})", p.files.join(", "))
        } else {
            format!(": {}", p.files.join(", "))
        };
        outln!("  {}. {:width$}  {state}{files}", i + 1, p.path);
        if !p.detail.is_empty() {
            outln!("     {}", p.detail);
        }
        for ca in &p.ca_files {
            let there = match ca.exists {
                Some(true) => "",
                Some(false) => " (MISSING)",
                None => " (not checked)",
            };
            outln!("     CA {}{there}", ca.path);
        }
    }
    outln!();
}
