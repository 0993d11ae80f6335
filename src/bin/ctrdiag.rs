//! `ctrdiag`: the command line client of ctrdiagd.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    quiet_on_closed_pipe();
    ctrdiag::cli::run(ctrdiag::cli::Cli::parse()).await.into()
}

/// `ctrdiag ... | head` closes the pipe early; like every Unix tool, the CLI then ends
/// quietly (SIGPIPE's default action) instead of panicking in `println!` ("Broken
/// pipe"). Rust starts programs with SIGPIPE ignored.
fn quiet_on_closed_pipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: restores the default disposition before any other thread exists; no
    // handler function is installed.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}
