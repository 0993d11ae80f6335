//! Compiles the project's own gRPC API (`proto/ctrdiag/v1`) with tonic-prost-build.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    tonic_prost_build::configure()
        .compile_protos(&["proto/ctrdiag/v1/diagnostics.proto"], &["proto"])?;
    Ok(())
}
