//! ctrdiag's own gRPC API: code generated from `proto/ctrdiag/v1` at build time, and
//! the conversions between it and the library's domain types.

pub(crate) mod convert;

/// Where ctrdiagd serves this API and the CLI calls it unless told otherwise: server
/// and client share the one constant.
pub const DEFAULT_SOCKET: &str = "/run/ctrdiag/ctrdiag.sock";

pub use convert::{fix_result, unit_status};

#[allow(
    clippy::all,
    missing_docs,
    rustdoc::invalid_html_tags,
    rustdoc::broken_intra_doc_links
)]
pub mod v1 {
    tonic::include_proto!("ctrdiag.v1");
}
