//! Output to stdout that ends the CLI the Unix way when the reader has gone
//! (`ctrdiag images | head`): by SIGPIPE's default action, after the fact.
//!
//! SIGPIPE itself stays ignored, as Rust starts programs: with its default action,
//! a write to the daemon's socket after the daemon closed it (a daemon stopping
//! mid-call) would kill the CLI silently before it could say what happened.

use std::io::Write as _;

/// Writes `args` to stdout; if the pipe's reader has gone, ends the process as if
/// SIGPIPE had been delivered on that write (the shell sees 141, nothing on stderr).
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => die_of_sigpipe(),
        // Another failure (a full disk behind a redirect) has nowhere to be reported
        // better than stderr; the command's exit code still says how it went.
        Err(e) => eprintln!("ctrdiag: cannot write the output: {e}"),
        Ok(()) => {}
    }
}

fn die_of_sigpipe() -> ! {
    use nix::sys::signal::{SigHandler, Signal, raise, signal};
    // SAFETY: sets the default disposition; no handler function is installed.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
    let _ = raise(Signal::SIGPIPE);
    // Not reached unless SIGPIPE is blocked: the conventional exit code instead.
    std::process::exit(141)
}

/// `print!` through [`write`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::stdout::write(format_args!($($arg)*)) };
}

/// `println!` through [`write`].
macro_rules! outln {
    () => { $crate::cli::stdout::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::stdout::write(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {out, outln};
