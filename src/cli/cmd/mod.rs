//! The commands that talk to ctrdiagd.

mod images;
mod pull;
mod rmi;
mod status;

use tonic::transport::Channel;

use super::{Command, Exit, Failure, Output};
use crate::api::v1::diagnostics_client::DiagnosticsClient;

pub type Client = DiagnosticsClient<Channel>;

pub async fn run(client: Client, command: Command, output: Output) -> Result<Exit, Failure> {
    match command {
        Command::Status => status::run(client, output).await,
        Command::Images { namespace } => images::run(client, namespace, output).await,
        Command::Rmi { images, namespace } => rmi::run(client, images, namespace, output).await,
        Command::Pull { image, keep } => pull::run(client, image, keep, output).await,
        Command::Completions { .. } | Command::Man => {
            unreachable!("handled without a daemon connection")
        }
    }
}

/// Prints a JSON document followed by a newline.
fn print_json(value: &serde_json::Value) {
    println!("{value:#}");
}
