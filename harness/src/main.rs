//! `lab`: capacity answers for ONNX models on Kubernetes, from one scenario file.
//! This binary is the CLI definition and glue; the work lives in library crates.

mod cmd;
mod exit;
mod interrupt;
mod summary;

use clap::{CommandFactory, Parser, Subcommand};
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
    after_help = exit::HELP,
    // Our own `help` subcommand, so that `lab help --help` is help too.
    disable_help_subcommand = true
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
    #[command(after_help = exit::CHECK_HELP)]
    Check(cmd::check::Args),
    /// Turn HPA, KEDA ScaledObject or InferenceService manifests into a scenario's autoscaler section, or a Prometheus request rate (--prometheus) into its traffic.
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
    /// Measure one run of a scenario against another (local vs sim), metric by metric, and judge its [fidelity] bounds.
    Compare(cmd::compare::Args),
    /// Create a kind cluster with the stack the cluster level runs on (`up --kind`), or delete it (`down`).
    Cluster(cmd::cluster::Args),
    /// Render the Kubernetes manifests (KServe, KEDA/HPA/Knative, Prometheus, GPU sharing) a cluster runs for a scenario.
    Deploy(cmd::deploy::Args),
    /// Search the simulator for the cheapest configuration that holds the SLOs.
    Plan(cmd::plan::Args),
    /// Print this message or the help of the given subcommand (as `lab COMMAND --help`).
    #[command(after_help = "Exit codes:\n  0    help was printed\n  2    no such subcommand")]
    Help {
        /// The subcommand whose help to print.
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },
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
        Command::Compare(a) => cmd::compare::run(a),
        Command::Plan(a) => cmd::plan::run(a),
        Command::Deploy(a) => cmd::deploy::run(a),
        Command::Cluster(a) => cmd::cluster::run(a),
        Command::Help { command } => help(command.as_deref()),
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

/// `lab help [COMMAND]`: the long help of `lab` or of one subcommand.
fn help(command: Option<&str>) -> anyhow::Result<i32> {
    let mut lab = Cli::command();
    // Building names each subcommand `lab NAME` in its usage line.
    lab.build();
    let page = match command {
        None => lab.render_long_help(),
        Some(name) => {
            let names: Vec<String> = lab
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect();
            match lab.find_subcommand_mut(name) {
                Some(sub) => sub.render_long_help(),
                None => {
                    return Err(exit::bad_input(format!(
                        "no subcommand `{name}`; the subcommands are {}",
                        names.join(", ")
                    )))
                }
            }
        }
    };
    // A closed pipe (`lab help run | head`) is not an error worth a panic.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), page.to_string().as_bytes());
    Ok(exit::PASS)
}
