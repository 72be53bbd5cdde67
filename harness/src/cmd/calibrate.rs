//! `lab calibrate`: measure a model's service time per batch size with ONNX Runtime.

/// Measure service time per batch size (warm-up, repetitions, mean/p50/p99) and
/// write a `lab-calibration/v1` profile that scenarios and `lab serve --emulate` read.
#[derive(clap::Args)]
#[command(after_help = crate::exit::CALIBRATE_HELP)]
pub struct Args {
    #[command(flatten)]
    pub options: lab_predictor::CalibrateOptions,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    lab_predictor::calibrate::run(args.options).map_err(super::serve::to_exit)
}
