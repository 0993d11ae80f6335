//! `ctrdiag explain`: the real binary, with no daemon anywhere, and every command the
//! explanations tell people to run checked against the CLI's own definition.

use std::process::{Command, Output};

use clap::{CommandFactory, Parser};
use ctrdiag::cause::CauseCode;
use ctrdiag::cli::Cli;
use ctrdiag::explain::explain;

/// Runs `ctrdiag ARGS` with a socket nothing listens on: explain must not need one.
fn ctrdiag(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ctrdiag"))
        .args(args)
        .env("CTRDIAG_SOCKET", "/nonexistent/ctrdiag.sock")
        .output()
        .expect("run ctrdiag")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn explain_prints_a_cause_offline() {
    let out = ctrdiag(&["explain", "tls_unknown_authority"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = stdout(&out);
    assert!(
        text.starts_with("tls_unknown_authority: The registry's certificate is signed by a CA"),
        "{text}"
    );
    for part in [
        "What it means",
        "How containerd words it",
        "x509: certificate signed by unknown authority",
        "containerd 2.x · Go 1.20+",
        "What to do, in order",
        "  1. trust the registry's CA",
        "$ ctrdiag fix TARGET --ca /path/to/ca.crt",
        "What `ctrdiag fix` does",
        "More: docs/causes/tls_unknown_authority.md",
    ] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
}

#[test]
fn explain_json_is_the_whole_explanation() {
    let out = ctrdiag(&["-o", "json", "explain", "http_response_to_https"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(j["cause"], "http_response_to_https");
    assert_eq!(j["doc"], "docs/causes/http_response_to_https.md");
    assert_eq!(
        j["remedies"][0]["command"],
        "ctrdiag fix TARGET --plain-http"
    );
    let wordings = j["wordings"].as_array().unwrap();
    assert!(!wordings.is_empty(), "{j:#}");
    assert!(
        wordings
            .iter()
            .all(|w| w["text"].is_string() && w["origin"]["seen_in"].is_string())
    );
    for key in ["title", "meaning", "versions", "fix"] {
        assert!(!j[key].as_str().unwrap().is_empty(), "{key}");
    }
}

#[test]
fn explain_lists_every_code_without_one_or_with_list() {
    for args in [&["explain"][..], &["explain", "--list"]] {
        let out = ctrdiag(args);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let text = stdout(&out);
        assert_eq!(text.lines().count(), CauseCode::ALL.len(), "{text}");
        for c in CauseCode::ALL {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{c} "))),
                "{c}: {text}"
            );
        }
    }
    let out = ctrdiag(&["-o", "json", "explain", "--list"]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(j["causes"].as_array().unwrap().len(), CauseCode::ALL.len());
    assert_eq!(j["causes"][0]["cause"], "tls_unknown_authority");
}

#[test]
fn an_unknown_code_is_a_usage_error_that_lists_the_codes() {
    let out = ctrdiag(&["explain", "tls_whatever"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    for c in CauseCode::ALL {
        assert!(err.contains(c.as_str()), "{c} not listed: {err}");
    }
}

/// Every text of every explanation, with its cause.
fn texts() -> Vec<(CauseCode, &'static str)> {
    CauseCode::ALL
        .iter()
        .flat_map(|c| {
            let e = explain(*c);
            [e.meaning, e.versions, e.fix]
                .into_iter()
                .chain(e.remedies.iter().map(|r| r.text))
                .map(|t| (*c, t))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The command line of every remedy that has one, with its cause.
fn commands() -> Vec<(CauseCode, &'static str)> {
    CauseCode::ALL
        .iter()
        .flat_map(|c| {
            explain(*c)
                .remedies
                .iter()
                .filter_map(|r| r.command)
                .map(|m| (*c, m))
        })
        .collect()
}

/// The `code spans` of a Markdown text.
fn code_spans(text: &str) -> impl Iterator<Item = &str> {
    text.split('`').skip(1).step_by(2)
}

/// The subcommand a span like `ctrdiag creds scan REGISTRY --x` names, and its options.
fn subcommand(span: &str) -> (clap::Command, Vec<&str>) {
    let mut cmd = Cli::command();
    let mut words = span.split_whitespace().skip(1).peekable();
    while let Some(next) = words.peek().and_then(|w| cmd.find_subcommand(w)).cloned() {
        cmd = next;
        words.next();
    }
    (cmd, words.filter(|w| w.starts_with("--")).collect())
}

fn has_option(cmd: &clap::Command, option: &str) -> bool {
    let long = option.trim_start_matches("--");
    cmd.get_arguments()
        .chain(Cli::command().get_arguments())
        .any(|a| a.get_long() == Some(long))
}

#[test]
fn every_command_an_explanation_names_exists_with_its_options() {
    // Remedy commands are whole command lines: the CLI must accept them as they are.
    for (c, command) in commands() {
        Cli::try_parse_from(command.split_whitespace())
            .unwrap_or_else(|e| panic!("{c}: `{command}` does not parse: {e}"));
    }
    let fix = Cli::command().find_subcommand("fix").unwrap().clone();
    let mut checked = 0;
    for (c, text) in texts() {
        for span in code_spans(text) {
            if span.starts_with("ctrdiag ") {
                let (cmd, options) = subcommand(span);
                assert_ne!(cmd.get_name(), "ctrdiag", "{c}: no such command: `{span}`");
                for o in options {
                    assert!(has_option(&cmd, o), "{c}: `{span}`: no option {o}");
                }
                checked += 1;
            } else if span.starts_with("--") {
                // Options on their own are `fix`'s.
                for o in span.split_whitespace().filter(|w| w.starts_with("--")) {
                    assert!(has_option(&fix, o), "{c}: `{span}`: fix has no {o}");
                }
                checked += 1;
            }
        }
    }
    assert!(
        checked > 40,
        "only {checked} spans checked: the parsing broke"
    );
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_as_unix_tools_do() {
    use std::os::unix::process::ExitStatusExt;
    // `ctrdiag explain --list | head -0`: the reader is gone before the first line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ctrdiag"))
        .args(["explain", "--list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ctrdiag");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait for ctrdiag");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.signal() == Some(13) || out.status.code() == Some(0),
        "ended by SIGPIPE (or done before the pipe closed): {:?}",
        out.status
    );
}
