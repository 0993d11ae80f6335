//! `ctrdiag`, the command line client of ctrdiagd. One command a file under `cmd/`;
//! the clap definition here is also the source of the man page and completions.

mod client;
mod cmd;
pub mod exit;
mod render;

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

pub use exit::{Exit, Failure};

use crate::settings::DEFAULT_LISTEN_SOCKET;

#[derive(Debug, Parser)]
#[command(
    name = "ctrdiag",
    version,
    about = "Diagnose and fix containerd image-pull failures (talks to ctrdiagd)",
    after_help = "Exit codes: 0 ok, 1 a problem was found (e.g. the pull failed), 2 usage error, 3 ctrdiagd unreachable or permission denied."
)]
pub struct Cli {
    /// ctrdiagd's socket.
    #[arg(long, global = true, env = "CTRDIAG_SOCKET", default_value = DEFAULT_LISTEN_SOCKET, value_name = "PATH")]
    pub socket: PathBuf,
    /// Output format: aligned tables for people, JSON for scripts.
    #[arg(short, long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// containerd's reachability, version, CRI state and registry configuration.
    Status,
    /// List images in a containerd namespace.
    Images {
        /// containerd namespace (default: the daemon's, normally k8s.io).
        #[arg(short, long)]
        namespace: Option<String>,
    },
    /// Remove images (through CRI in k8s.io, like `crictl rmi`). Needs root.
    Rmi {
        #[arg(required = true, value_name = "IMAGE")]
        images: Vec<String>,
        /// containerd namespace (default: the daemon's, normally k8s.io).
        #[arg(short, long)]
        namespace: Option<String>,
    },
    /// Test-pull an image through CRI, exactly as the kubelet would.
    Pull {
        image: String,
        /// Keep the image if the pull added it (needs root); by default it is removed again.
        #[arg(long)]
        keep: bool,
    },
    /// List the changes ctrdiag made to this node.
    Changes,
    /// Undo a change (the latest applied one by default), itself as a recorded change. Needs root.
    Rollback {
        /// The change id from `ctrdiag changes`.
        id: Option<String>,
        /// Show the plan without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Restart containerd through systemd and wait until its CRI answers. Needs root.
    RestartContainerd,
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff).
    Man,
}

/// Runs the parsed command line, printing results to stdout and failures to stderr.
pub async fn run(cli: Cli) -> Exit {
    let result = match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "ctrdiag",
                &mut std::io::stdout(),
            );
            Ok(Exit::Ok)
        }
        Command::Man => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout())
            .map(|()| Exit::Ok)
            .map_err(|e| Failure::new(Exit::Problem, format!("cannot write the man page: {e}"))),
        command => match client::connect(&cli.socket).await {
            Ok(client) => cmd::run(client, command, cli.output).await,
            Err(f) => Err(f),
        },
    };
    match result {
        Ok(exit) => exit,
        Err(f) => {
            eprintln!("ctrdiag: {}", f.message);
            f.exit
        }
    }
}
