//! `lab-predictor`: the predictor on its own (the same code as `lab serve` and
//! `lab calibrate`), for container images and tests.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "lab-predictor",
    version,
    about = "Serve ONNX models over the Open Inference Protocol, or calibrate their service time"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve ONNX models over OIP V2 (REST, gRPC) and KServe V1.
    Serve(lab_predictor::ServeOptions),
    /// Measure service time per batch size and write a calibration profile.
    Calibrate(lab_predictor::CalibrateOptions),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(o) => lab_predictor::server::run(o),
        Command::Calibrate(o) => lab_predictor::calibrate::run(o),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            // Same exit codes as `lab`: 2 bad input, 3 anything else.
            if e.chain().any(|c| c.is::<lab_predictor::BadInput>()) {
                ExitCode::from(2)
            } else {
                ExitCode::from(3)
            }
        }
    }
}
