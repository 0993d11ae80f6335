//! `ctrdiag fix TARGET --ca FILE | --ca-from-server --sha256 FP | --pin-server-certificate
//! --sha256 FP | --insecure-skip-verify
//! | --plain-http | --remove-overrides [--dry-run]`

use crate::cli::stdout::{out, outln};

use serde_json::json;
use tokio_stream::StreamExt;

use super::refused;
use super::{Client, plan_json, print_json, print_plan};
use crate::api::v1 as pb;
use crate::api::v1::fix_event::Event;
use crate::cli::render::timestamp;
use crate::cli::{Exit, Failure, FixArgs, Output};

/// The request for `args`; the CA file is read here, with the caller's own rights.
fn request(args: &FixArgs) -> Result<pb::FixRequest, Failure> {
    use pb::fix_request::Mode;
    let mode = if let Some(path) = &args.ca {
        let pem = std::fs::read_to_string(path).map_err(|e| {
            Failure::new(
                crate::cli::Exit::Usage,
                format!("cannot read CA file {}: {e}", path.display()),
            )
        })?;
        Mode::CaPem(pem)
    } else if args.ca_from_server || args.pin_server_certificate {
        let fp = args.sha256.clone().ok_or_else(|| {
            Failure::new(
                Exit::Usage,
                "--ca-from-server and --pin-server-certificate need --sha256 FINGERPRINT: confirm the fingerprint with the registry's operator first (see `ctrdiag diagnose`)",
            )
        })?;
        if args.pin_server_certificate {
            Mode::PinServerCertificateSha256(fp)
        } else {
            Mode::CaFromServerSha256(fp)
        }
    } else if args.insecure_skip_verify {
        Mode::InsecureSkipVerify(true)
    } else if args.plain_http {
        Mode::PlainHttp(true)
    } else {
        Mode::RemoveOverrides(true)
    };
    Ok(pb::FixRequest {
        target: args.target.clone(),
        mode: Some(mode),
        ttl_seconds: args.ttl.map(|d| d.as_secs()).unwrap_or(0),
        dry_run: args.dry_run,
        verify_image: args.verify_image.clone().unwrap_or_default(),
        all_hosts: args.all_hosts,
        legacy: args.legacy,
        manual_restart: args.restart == crate::cli::RestartBy::Manual,
        // Where k3s owns containerd's configuration, its registries.yaml names the file.
        ca_file: match &args.ca {
            Some(path) => std::path::absolute(path)
                .map_err(|e| {
                    Failure::new(
                        Exit::Usage,
                        format!("cannot resolve CA file {}: {e}", path.display()),
                    )
                })?
                .display()
                .to_string(),
            None => String::new(),
        },
    })
}

pub async fn run(mut client: Client, args: FixArgs, output: Output) -> Result<Exit, Failure> {
    let req = request(&args)?;
    let stream = client
        .fix(req)
        .await
        .map_err(|s| Failure::from_status(&s))?
        .into_inner();
    follow(stream, output).await
}

/// A fix on a node another system owns: the change to make there, printed; nothing
/// was applied, which the exit code says.
fn print_managed(m: &pb::ManagedChange, r: &pb::FixResult, output: Output) -> Exit {
    match output {
        Output::Json => print_json(&json!({
            "executed": false,
            "ok": false,
            "reason": r.reason,
            "managed": {
                "owner": m.owner, "evidence": m.evidence, "title": m.title,
                "file": (!m.file.is_empty()).then(|| json!({
                    "path": m.file, "action": m.file_action, "text": m.file_text,
                })),
                "commands": m.commands, "notes": m.notes, "verify": m.verify,
            },
        })),
        Output::Table => out!("{}", ctrdiag_core::managed::ManagedChange::from(m).render()),
    }
    Exit::NotApplied
}

/// Follows a change's event stream (a fix, a credential clean, a cache purge): the
/// plan, each step, the verifying pull and the result; the exit code says how it ended.
pub async fn follow(
    mut stream: tonic::Streaming<pb::FixEvent>,
    output: Output,
) -> Result<Exit, Failure> {
    let mut plan = pb::PlanView::default();
    let mut steps = Vec::new();
    let mut result = None;
    let mut managed = None;
    let mut awaited = None;
    while let Some(msg) = stream.next().await {
        let Some(event) = msg.map_err(|s| Failure::from_status(&s))?.event else {
            continue;
        };
        match event {
            Event::Plan(p) => {
                if output == Output::Table {
                    print_plan(&p);
                    outln!();
                }
                plan = p;
            }
            Event::Step(s) => {
                if output == Output::Table {
                    if s.done {
                        outln!("      done");
                    } else {
                        outln!("[{}/{}] {}", s.index + 1, plan.steps.len(), s.description);
                    }
                }
                steps.push(s);
            }
            Event::Verifying(image) => {
                if output == Output::Table {
                    outln!("verifying: pull {image} through CRI ...");
                }
            }
            Event::Result(r) => result = Some(r),
            Event::Managed(m) => managed = Some(m),
            Event::AwaitingRestart(w) => {
                if output == Output::Table {
                    outln!(
                        "      the files are written: restart containerd now with\n\n          {}\n\n      ctrdiag waits until {}, then proves the change with its pull, or undoes it\n      (Ctrl-C stops watching; the change keeps waiting: `ctrdiag changes`, `ctrdiag rollback {}` ends it)",
                        w.command,
                        timestamp(w.until_unix),
                        w.change_id
                    );
                }
                awaited = Some(w);
            }
        }
    }
    let r = result.ok_or_else(|| Failure::new(Exit::Problem, "ctrdiagd ended the change without a result: check `journalctl -u ctrdiagd` and `ctrdiag changes`"))?;
    if let Some(m) = managed {
        return Ok(print_managed(&m, &r, output));
    }
    match output {
        Output::Json => print_json(&json!({
            "plan": plan_json(&plan),
            "executed": r.executed,
            "ok": r.ok,
            "change_id": r.change_id,
            "reason": r.reason,
            "verify": r.verify.as_ref().map(|v| json!({
                "image": v.image, "ok": v.ok, "image_id": v.image_id, "cause": v.cause,
                "message": v.message, "duration_ms": v.duration_ms,
            })),
            "expires": (r.expires_unix > 0).then(|| timestamp(r.expires_unix)),
            "awaited_restart": awaited.as_ref().map(|w| json!({
                "command": w.command, "until": timestamp(w.until_unix),
            })),
        })),
        Output::Table if !r.executed && refused(&plan) && r.reason.is_empty() => {
            outln!("(dry run: nothing was changed; the change would be refused, see above)")
        }
        Output::Table if !r.executed && refused(&plan) => outln!("stopped: {}", r.reason),
        Output::Table if !r.executed => outln!("(dry run: nothing was changed)"),
        Output::Table if r.ok => {
            if let Some(v) = &r.verify {
                outln!("      ok: {} ({} ms)", v.image_id, v.duration_ms);
            }
            outln!(
                "applied: change {} (undo with `ctrdiag rollback {}`)",
                r.change_id,
                r.change_id
            );
            if r.expires_unix > 0 {
                outln!(
                    "it will be rolled back automatically at {}",
                    timestamp(r.expires_unix)
                );
            }
        }
        Output::Table => match &r.verify {
            Some(v) => {
                outln!("      still failing: {}", v.message);
                outln!(
                    "undone: change {} did not fix the pull and was rolled back: {}",
                    r.change_id,
                    r.reason
                );
            }
            None => outln!("undone: change {} stopped: {}", r.change_id, r.reason),
        },
    }
    Ok(if (!r.executed && !refused(&plan)) || r.ok {
        Exit::Ok
    } else {
        Exit::Problem
    })
}
