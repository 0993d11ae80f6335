//! ctrdiag's own gRPC API, generated from `proto/ctrdiag/v1` at build time.

#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("ctrdiag.v1");
}
