//! `lab merge`: merge the results files of load-generator shards exactly
//! (histograms bucket by bucket, counts summed), as the cluster level does with
//! its N load Jobs.

use crate::exit::{bad_input, PASS};
use anyhow::Context;
use lab_results::Results;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = "\
Example:
  lab merge s0.json s1.json s2.json s3.json -o results.json

The parts must come from one schedule (same scenario, seed, level and interval),
e.g. `lab load ... --shard I/4` for I in 0..4. Percentiles of the merged file are
those of the union of all requests, not averages of the parts' percentiles.

Exit codes:
  0    merged
  2    a part is missing, unreadable, not a results file, or from another schedule
  3    the merged file could not be written")]
pub struct Args {
    /// Results files of the shards.
    #[arg(value_name = "RESULTS", required = true, num_args = 1..)]
    pub inputs: Vec<PathBuf>,

    /// Where to write the merged results.json.
    #[arg(short = 'o', long = "output", alias = "out", value_name = "FILE")]
    pub out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let mut parts = Vec::with_capacity(args.inputs.len());
    for path in &args.inputs {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
        let r: Results = serde_json::from_str(&text)
            .map_err(|e| bad_input(format!("{}: not a results file: {e}", path.display())))?;
        parts.push(r);
    }
    let merged = lab_loadgen::merge(&parts).map_err(bad_input)?;
    let text = serde_json::to_string_pretty(&merged).context("serializing results")?;
    super::write_atomically(&args.out, &(text + "\n"))?;
    let s = &merged.summary;
    println!(
        "merged {} parts: {} arrived, {} completed, {} failed; latency p50 {:.2}ms p99 {:.2}ms max {:.2}ms -> {}",
        parts.len(),
        s.requests.arrived,
        s.requests.completed,
        s.requests.failed,
        s.latency_seconds.p50 * 1e3,
        s.latency_seconds.p99 * 1e3,
        s.latency_seconds.max * 1e3,
        args.out.display()
    );
    Ok(PASS)
}
