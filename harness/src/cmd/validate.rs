//! `lab validate`: check a scenario without running it; `--json` prints the
//! diagnostics for editors and CI annotations.

use crate::exit;
use lab_scenario::Diagnostic;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(after_help = crate::exit::VALIDATE_HELP)]
pub struct Args {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// Overrides to check along with the file (see `lab run --set`).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub overrides: Vec<String>,
    /// Print the result as one JSON object on standard output: `ok`, and a
    /// `diagnostics` list of {file, line, column, key, message, hint, severity}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    // Also checks that the pools at max_nodes hold every minReplicas.
    let s = match lab_scenario::load_checked(&args.scenario, &args.overrides) {
        Ok(s) => s,
        Err(e) if args.json => {
            let diagnostics: Vec<_> = e.diagnostics.iter().map(diagnostic_json).collect();
            print_json(&serde_json::json!({
                "file": args.scenario.display().to_string(),
                "ok": false,
                "diagnostics": diagnostics,
            }));
            return Ok(exit::BAD_INPUT);
        }
        Err(e) => return Err(exit::bad_input(e.to_string())),
    };
    if args.json {
        print_json(&serde_json::json!({
            "file": args.scenario.display().to_string(),
            "ok": true,
            "diagnostics": [],
            "services": s.services.len(),
            "node_pools": s.node_pools.len(),
            "traffic_streams": s.traffic.len(),
            "slos": s.slo.len(),
            "duration": s.duration().to_string(),
        }));
        return Ok(exit::PASS);
    }
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

fn print_json(v: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(v).expect("JSON values serialize")
    );
}

/// One diagnostic as editors and CI annotations read it. Every problem
/// `lab validate` finds stops the scenario, so each is an error; a "did you mean"
/// suggestion is split out as the `hint`.
fn diagnostic_json(d: &Diagnostic) -> serde_json::Value {
    let (message, hint) = match d.message.split_once("; did you mean ") {
        Some((m, h)) => (m.to_string(), Some(format!("did you mean {h}"))),
        None => (d.message.clone(), None),
    };
    serde_json::json!({
        "file": d.file,
        "line": d.line,
        "column": d.column,
        "key": d.key,
        "message": message,
        "hint": hint,
        "severity": "error",
    })
}
