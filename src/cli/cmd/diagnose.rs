//! `ctrdiag diagnose TARGET`

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
    println!("Diagnosis of {}{version}\n", r.target);
    println!("What was tried:");
    for t in &r.tried {
        println!("  {t}");
    }
    println!();
    if r.findings.is_empty() {
        println!("No problem found.");
    } else {
        println!("Findings:");
    }
    for f in &r.findings {
        println!("  {} {}: {}", f.severity.to_uppercase(), f.cause, f.summary);
        for e in &f.evidence {
            println!("      {}: {}", e.label, e.value);
        }
        if !f.remedies.is_empty() {
            println!("    what to do:");
            for (i, m) in f.remedies.iter().enumerate() {
                // A remedy may carry a snippet (a registries.yaml part): keep it indented.
                println!("      {}. {}", i + 1, m.text.replace('\n', "\n           "));
                if !m.command.is_empty() {
                    println!("         $ {}", m.command);
                }
            }
        }
    }
    let errors = r.findings.iter().filter(|f| f.severity == "error").count();
    println!(
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
