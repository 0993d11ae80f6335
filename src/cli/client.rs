//! Connecting to ctrdiagd's socket, with errors that say what to do.

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint};

use super::exit::{Exit, Failure};
use crate::api::v1::diagnostics_client::DiagnosticsClient;

/// Connects to the daemon at `socket`, failing with [`Exit::Unreachable`] and a hint.
pub async fn connect(socket: &Path) -> Result<DiagnosticsClient<Channel>, Failure> {
    let path: PathBuf = socket.to_path_buf();
    let dial = path.clone();
    let channel = Endpoint::from_static("http://[::]")
        .connect_with_connector(tower::service_fn(move |_| {
            let dial = dial.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(dial).await?))
            }
        }))
        .await
        .map_err(|e| unreachable(&path, &e))?;
    Ok(DiagnosticsClient::new(channel))
}

fn unreachable(path: &Path, err: &tonic::transport::Error) -> Failure {
    let io_kind = std::iter::successors(Some(err as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
    .find_map(|e| e.downcast_ref::<std::io::Error>())
    .map(|e| e.kind());
    let p = path.display();
    let message = match io_kind {
        Some(std::io::ErrorKind::NotFound) => {
            format!(
                "is ctrdiagd running? socket {p} not found (start it with `systemctl start ctrdiagd`, or pass --socket)"
            )
        }
        Some(std::io::ErrorKind::PermissionDenied) => {
            format!("permission denied on {p}: run as root or as a member of the ctrdiag group")
        }
        Some(std::io::ErrorKind::ConnectionRefused) => format!(
            "nothing answers on {p}: ctrdiagd is not running (check `systemctl status ctrdiagd`)"
        ),
        _ => format!("cannot connect to ctrdiagd at {p}: {err}"),
    };
    Failure::new(Exit::Unreachable, message)
}
