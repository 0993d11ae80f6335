//! `ctrdiagd`'s gRPC server: the socket, caller authorization, the service, and a
//! shutdown that lets in-flight calls finish.

pub mod authz;
mod daemon;
mod error;
pub mod service;
pub mod socket;
pub mod supervisor;

use std::future::Future;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

pub use daemon::{DaemonError, run};
pub use error::ServiceError;
pub use service::DiagnosticsService;

use crate::api::v1::diagnostics_server::DiagnosticsServer;

/// How long in-flight calls may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("in-flight calls did not finish within {}s of the shutdown signal", SHUTDOWN_GRACE.as_secs())]
    GraceExpired,
}

/// Serves `service` on an already-bound `listener` until `shutdown` completes, then
/// stops accepting and waits (up to [`SHUTDOWN_GRACE`]) for in-flight calls. Each call
/// ends by `rpc_timeout` at the latest.
pub async fn serve(
    listener: UnixListener,
    service: DiagnosticsService,
    rpc_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // A deadline on every call: a hung containerd or registry cannot hold one forever.
    // Work that changes the node runs in tasks of its own, so it is never cut off.
    let server = tonic::transport::Server::builder()
        .timeout(rpc_timeout)
        .add_service(DiagnosticsServer::new(service))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async move {
            let _ = stop_rx.await;
        });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return Ok(result?),
        () = shutdown => { let _ = stop_tx.send(()); }
    }
    match tokio::time::timeout(SHUTDOWN_GRACE, server).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(ServeError::GraceExpired),
    }
}
