//! Compiles proto/inference.proto with protox (pure Rust), so building needs no protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/inference.proto");
    let fds = protox::compile(["proto/inference.proto"], ["proto"])?;
    tonic_prost_build::configure()
        // The client is for the crate's own tests of the gRPC front end.
        .build_client(true)
        .bytes(".inference.ModelInferRequest.raw_input_contents")
        .compile_fds(fds)?;
    Ok(())
}
