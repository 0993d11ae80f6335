//! `ctrdiagd`: the ctrdiag node daemon. Reads its settings, sets up logging, and runs
//! the server until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use ctrdiag::settings::{DEFAULT_SETTINGS_FILE, Settings};
use tokio::signal::unix::{SignalKind, signal};

/// sysexits' EX_USAGE / EX_CONFIG: bad settings are not worth a restart loop.
const EX_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(
    name = "ctrdiagd",
    version,
    about = "ctrdiag daemon: diagnoses and fixes containerd image-pull failures",
    after_long_help = "Files: /etc/ctrdiag/ctrdiagd.toml (the settings; every key is \
        documented there at its default), /run/ctrdiag/ctrdiag.sock (the API socket, \
        root and group ctrdiag), /var/lib/ctrdiag (journal, backups, change records). \
        Units: ctrdiagd.service and ctrdiagd.socket. Exit status 78: bad settings \
        (the message names the file and key). The command line is ctrdiag(1)."
)]
struct Args {
    /// Settings file (TOML; every key optional). Defaults apply when the default file is absent.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print this manual page (roff, section 8) and exit: scripts/package.sh ships it.
    #[arg(long, hide = true)]
    man: bool,
}

fn init_logging() {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("CTRDIAG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Under systemd, journald adds timestamps and keeps the structured fields.
    if std::env::var_os("JOURNAL_STREAM").is_some()
        && let Ok(journald) = tracing_journald::layer()
    {
        tracing_subscriber::registry()
            .with(filter)
            .with(journald)
            .init();
        return;
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    if args.man {
        return print_man_page();
    }
    init_logging();
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| DEFAULT_SETTINGS_FILE.into());
    let settings = match Settings::load(&path, args.config.is_some()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "bad settings");
            eprintln!("ctrdiagd: {e}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    let shutdown = match shutdown_signal() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("ctrdiagd: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    match ctrdiag::server::run(settings, clock(), shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "ctrdiagd failed");
            eprintln!("ctrdiagd: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_man_page() -> ExitCode {
    use clap::CommandFactory;
    let mut page = Vec::new();
    let rendered = clap_mangen::Man::new(Args::command())
        .section("8")
        .render(&mut page)
        .and_then(|()| std::io::Write::write_all(&mut std::io::stdout(), &page));
    match rendered {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ctrdiagd: cannot print the man page: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The wall clock; test builds (`--features failpoints`) read it from the file named
/// by `CTRDIAG_TEST_CLOCK`, so tests move time instead of waiting for it.
fn clock() -> std::sync::Arc<dyn ctrdiag::clock::Clock> {
    #[cfg(feature = "failpoints")]
    if let Some(path) = std::env::var_os("CTRDIAG_TEST_CLOCK") {
        return std::sync::Arc::new(ctrdiag::clock::FileClock::new(path));
    }
    std::sync::Arc::new(ctrdiag::clock::SystemClock)
}

/// Installs the SIGTERM and SIGINT handlers now, before the daemon reports ready, and
/// returns a future that completes on the first of them, logging which.
fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let which = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = which, "shutting down; finishing in-flight calls");
    })
}
