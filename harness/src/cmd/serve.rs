//! `lab serve`: the ONNX predictor (crate `lab-predictor`) in the `lab` binary.

/// Serve ONNX models over the Open Inference Protocol V2 (REST with the binary
/// tensor extension, and gRPC) and KServe V1, with dynamic batching, readiness
/// and SIGTERM drain for Kubernetes, Prometheus metrics on /metrics, and optional
/// GPU emulation from a calibration profile.
#[derive(clap::Args)]
#[command(after_help = crate::exit::SERVE_HELP)]
pub struct Args {
    #[command(flatten)]
    pub options: lab_predictor::ServeOptions,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    lab_predictor::server::run(args.options).map_err(to_exit)
}

/// The predictor's bad-input errors become `lab`'s (exit 2); the rest stay exit 3.
pub(crate) fn to_exit(e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<lab_predictor::BadInput>() {
        Some(b) => crate::exit::bad_input(b.0.clone()),
        None => e,
    }
}
