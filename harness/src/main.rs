//! `lab`: capacity answers for ONNX models on Kubernetes, from one scenario file.
//! This binary is the CLI definition and glue; the work lives in library crates.

mod cmd;
mod exit;
mod summary;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "lab",
    version,
    about = "Simulate, replay and check ML serving capacity on Kubernetes from one scenario file",
    long_about = "lab answers capacity questions for ONNX models served behind KServe, KEDA and \
Prometheus on shared GPU nodes: replicas and GPUs needed for an SLO, what a spike does to p99, \
scale-to-zero cold starts, time-slicing vs MIG, and the monthly bill.\n\n\
Every level (sim, local, cluster) writes the same results.json.",
    after_help = exit::HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a scenario and write results.json (and report.html).
    Run(cmd::run::Args),
    /// Check a scenario file without running it.
    Validate(cmd::validate::Args),
    /// Re-judge the SLOs of a results file; write JUnit XML or a Markdown summary.
    Check(cmd::check::Args),
    /// Turn HPA, KEDA ScaledObject or InferenceService manifests into a scenario's autoscaler section.
    Import(cmd::import::Args),
    /// Serve ONNX models over the Open Inference Protocol (REST and gRPC) and KServe V1.
    Serve(cmd::serve::Args),
    /// Measure a model's service time per batch size and write a calibration profile.
    Calibrate(cmd::calibrate::Args),
    /// Replay a scenario's traffic (open loop) against a V2/V1 endpoint.
    Load(cmd::load::Args),
    /// Merge results files of load-generator shards exactly.
    Merge(cmd::merge::Args),
    /// Render an HTML report of one or several results files.
    Report(cmd::report::Args),
    /// Search the simulator for the cheapest configuration that holds the SLOs.
    Plan(cmd::plan::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::BAD_INPUT
            } else {
                exit::PASS
            };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    let result = match cli.command {
        Command::Run(a) => cmd::run::run(a),
        Command::Validate(a) => cmd::validate::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Import(a) => cmd::import::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Calibrate(a) => cmd::calibrate::run(a),
        Command::Load(a) => cmd::load::run(a),
        Command::Merge(a) => cmd::merge::run(a),
        Command::Report(a) => cmd::report::run(a),
        Command::Plan(a) => cmd::plan::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            let code = if e.chain().any(|c| c.is::<exit::BadInput>()) {
                exit::BAD_INPUT
            } else {
                exit::RUN_FAILED
            };
            ExitCode::from(code as u8)
        }
    }
}
