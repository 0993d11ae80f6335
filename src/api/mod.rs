//! ctrdiag's own gRPC API: code generated from `proto/ctrdiag/v1` at build time, and
//! the conversions between it and the library's domain types.

mod convert;

pub use convert::{change_view, config_status, insecure_view};

#[allow(
    clippy::all,
    missing_docs,
    rustdoc::invalid_html_tags,
    rustdoc::broken_intra_doc_links
)]
pub mod v1 {
    tonic::include_proto!("ctrdiag.v1");
}
