//! `ctrdiag`, the command line client of ctrdiagd. One command a file under `cmd/`;
//! the clap definition here is also the source of the man page and completions.

mod client;
mod cmd;
pub mod exit;
mod render;
mod stdout;

use std::path::PathBuf;

use clap::builder::TypedValueParser as _;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use ctrdiag_core::cause::CauseCode;

pub use exit::{Exit, Failure};

use crate::api::DEFAULT_SOCKET;

#[derive(Debug, Parser)]
#[command(
    name = "ctrdiag",
    version,
    about = "Diagnose and fix containerd image-pull failures (talks to ctrdiagd)",
    after_help = "Exit codes: 0 ok, 1 a problem was found (e.g. the pull failed), 2 usage error, 3 ctrdiagd (for `k8s`: the API server) unreachable or permission denied."
)]
pub struct Cli {
    /// ctrdiagd's socket.
    #[arg(long, global = true, env = "CTRDIAG_SOCKET", default_value = DEFAULT_SOCKET, value_name = "PATH")]
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
    /// Explain why pulls fail: probe the registry, read containerd's config, test-pull.
    Diagnose {
        /// An image reference, or a registry `host[:port]`.
        target: String,
        /// Do not test-pull the image (probe and configuration only).
        #[arg(long)]
        skip_pull: bool,
    },
    /// Fix a registry's trust: plan, apply, prove by a real pull, or undo. Needs root.
    Fix(FixArgs),
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
    /// Registry credentials on the node: where they are, and removing them.
    #[command(subcommand)]
    Creds(CredsCommand),
    /// The node's image cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Kubernetes steps, with your own kubeconfig (ctrdiagd is not involved).
    K8s {
        #[command(subcommand)]
        command: K8sCommand,
    },
    /// Recent events detected in containerd's log and by probes, and the registries with
    /// a problem now. Exits 1 while a registry has a problem.
    Events {
        /// Only events seen within this long (`10m`, `2h`, `1d`).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        since: Option<std::time::Duration>,
        /// Only events of this cause code (`tls_unknown_authority`, ...).
        #[arg(long, value_name = "CODE")]
        cause: Option<String>,
    },
    /// Stream events as they are detected (with -o json, one object per line).
    Watch {
        /// Only events of this cause code.
        #[arg(long, value_name = "CODE")]
        cause: Option<String>,
    },
    /// A node-problem-detector custom plugin: one line on stdout (at most 80 bytes),
    /// details on stderr; exit 0 OK, 1 a registry has a problem, 3 unknown (ctrdiagd
    /// down or not answering, containerd's log not followed). Answers within 4 s.
    Check,
    /// What a cause code means, how containerd words it on each version, what to do, and
    /// what `fix` does about it (no daemon needed). Without CAUSE: every code.
    Explain {
        /// A cause code, as `diagnose`, `pull` and `events` print it.
        #[arg(
            value_name = "CAUSE",
            hide_possible_values = true,
            value_parser = cause_code_parser(),
        )]
        cause: Option<CauseCode>,
        /// List every cause code with its title (the same as giving none).
        #[arg(long, conflicts_with = "cause")]
        list: bool,
    },
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff).
    Man,
}

/// Cause codes as values clap knows, so an unknown one is a usage error (exit 2) that
/// lists the valid codes, and shells complete them.
fn cause_code_parser() -> impl clap::builder::TypedValueParser<Value = CauseCode> {
    clap::builder::PossibleValuesParser::new(CauseCode::ALL.iter().map(|c| c.as_str()))
        .try_map(|code| code.parse::<CauseCode>())
}

#[derive(Debug, Subcommand)]
pub enum CredsCommand {
    /// Every place that holds registry credentials the kubelet or containerd may use
    /// (never the secrets themselves): what `crictl info | grep auth` tries to tell.
    Scan {
        /// Only this registry's (`host[:port]`).
        registry: Option<String>,
    },
    /// Remove one registry's credentials (or all) as a change: shown first, proven by a
    /// pull when an image is given, undone by `ctrdiag rollback`. Needs root.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["registry", "all"])))]
    Clean {
        registry: Option<String>,
        /// Every registry's credentials.
        #[arg(long)]
        all: bool,
        /// Pull this image through CRI afterwards; undo everything if it fails.
        #[arg(long, value_name = "IMAGE")]
        verify_image: Option<String>,
        /// Show the plan and diffs without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove every cached image of a registry (all its names, through CRI) so the next
    /// pull fetches it again; refuses images containers use. Needs root.
    Purge {
        registry: String,
        /// Remove images containers use too.
        #[arg(long)]
        force: bool,
        /// Show the plan without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum K8sCommand {
    /// A ServiceAccount's `imagePullSecrets`: show them, detach them (saved in an
    /// annotation on the ServiceAccount) and restore them.
    #[command(subcommand)]
    PullSecrets(PullSecretsAction),
}

#[derive(Debug, Subcommand)]
pub enum PullSecretsAction {
    /// Print the current list and any list saved by `detach`.
    Show(K8sTarget),
    /// Save the list in an annotation (and a local copy) and empty it, in one guarded patch.
    /// Every Pod created afterwards with this ServiceAccount gets no pull credentials from it.
    Detach {
        #[command(flatten)]
        target: K8sTarget,
        /// Print the JSON patch (secret names only) without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
    /// Put the saved list back from the annotation and remove the annotation.
    Restore {
        #[command(flatten)]
        target: K8sTarget,
        /// Print the JSON patch (secret names only) without changing anything.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Which ServiceAccount, through which kubeconfig (found as kubectl finds it by default).
#[derive(Debug, Clone, clap::Args)]
pub struct K8sTarget {
    /// The ServiceAccount's namespace.
    #[arg(short, long, default_value = "default")]
    pub namespace: String,
    /// The ServiceAccount.
    #[arg(long, default_value = "default", value_name = "NAME")]
    pub service_account: String,
    /// The kubeconfig file (default: KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// How `ctrdiag fix` should fix the registry: exactly one mode.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["ca", "ca_from_server", "pin_server_certificate", "insecure_skip_verify", "plain_http", "remove_overrides"])))]
pub struct FixArgs {
    /// An image reference (it is pulled to prove the fix) or a registry `host[:port]`.
    pub target: String,
    /// Trust this CA certificate (PEM): the right fix for a private CA.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Trust the CA certificate the registry presents, if its fingerprint is --sha256.
    #[arg(long, requires = "sha256")]
    pub ca_from_server: bool,
    /// Trust exactly the registry's own certificate, if its fingerprint is --sha256:
    /// for a registry that does not send its CA. Renewing the certificate breaks it.
    #[arg(long, requires = "sha256")]
    pub pin_server_certificate: bool,
    /// SHA-256 fingerprint of that certificate, as confirmed with the registry's operator.
    #[arg(long, value_name = "FINGERPRINT")]
    pub sha256: Option<String>,
    /// Skip certificate verification. For test environments only; see --ttl.
    #[arg(long)]
    pub insecure_skip_verify: bool,
    /// The registry speaks plain HTTP.
    #[arg(long)]
    pub plain_http: bool,
    /// Remove the registry overrides of this host (what the runbook's sed attempts).
    #[arg(long)]
    pub remove_overrides: bool,
    /// With --remove-overrides: for every registry, not only TARGET's.
    #[arg(long, requires = "remove_overrides")]
    pub all_hosts: bool,
    /// Roll an insecure change back automatically after this long (e.g. 2h, 30m).
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub ttl: Option<std::time::Duration>,
    /// The image to pull to prove the fix, when TARGET is a host.
    #[arg(long, value_name = "IMAGE")]
    pub verify_image: Option<String>,
    /// Use the legacy `configs.<host>.tls` table (containerd 1.x without config_path only).
    #[arg(long)]
    pub legacy: bool,
    /// Who restarts containerd when the plan needs it: ctrdiag through systemd, or
    /// you (`manual`: ctrdiag writes the files, says what to run, waits for containerd
    /// to restart, then proves the change with its pull or undoes it).
    #[arg(long, value_enum, default_value_t = RestartBy::Auto, value_name = "WHO")]
    pub restart: RestartBy,
    /// Show the plan as a list and unified diffs without changing anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// Who restarts containerd for a fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RestartBy {
    /// ctrdiag, through systemd's D-Bus API.
    Auto,
    /// The operator (no unit manager ctrdiag can reach: k3s, OpenRC, a pod without
    /// the host's bus).
    Manual,
}

/// Runs the parsed command line, printing results to stdout and failures to stderr.
pub async fn run(cli: Cli) -> Exit {
    let result = match cli.command {
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ctrdiag", &mut script);
            stdout::out!("{}", String::from_utf8_lossy(&script));
            Ok(Exit::Ok)
        }
        Command::Man => {
            let mut page = Vec::new();
            match clap_mangen::Man::new(Cli::command()).render(&mut page) {
                Ok(()) => {
                    stdout::out!("{}", String::from_utf8_lossy(&page));
                    Ok(Exit::Ok)
                }
                Err(e) => Err(Failure::new(
                    Exit::Problem,
                    format!("cannot render the man page: {e}"),
                )),
            }
        }
        Command::K8s {
            command: K8sCommand::PullSecrets(action),
        } => cmd::pull_secrets::run(action, cli.output).await,
        Command::Check => Ok(cmd::check::run(&cli.socket).await),
        Command::Explain { cause, list: _ } => Ok(cmd::explain::run(cause, cli.output)),
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
