//! `lab validate`: check a scenario without running it.

use crate::exit;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = crate::exit::VALIDATE_HELP)]
pub struct Args {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// Overrides to check along with the file (see `lab run --set`).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub overrides: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    // Also checks that the pools at max_nodes hold every minReplicas.
    let s = lab_scenario::load_checked(&args.scenario, &args.overrides)
        .map_err(|e| exit::bad_input(e.to_string()))?;
    println!(
        "ok: {} ({} service(s), {} node pool(s), {} traffic stream(s), {} SLO(s), {} simulated)",
        args.scenario.display(),
        s.services.len(),
        s.node_pools.len(),
        s.traffic.len(),
        s.slo.len(),
        s.duration()
    );
    Ok(exit::PASS)
}
