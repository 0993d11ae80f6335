//! `ctrdiag`: the command line client of ctrdiagd.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    ctrdiag::cli::run(ctrdiag::cli::Cli::parse()).await.into()
}
