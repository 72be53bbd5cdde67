//! `lab plan`: search the simulator for the cheapest configuration that holds a
//! scenario's SLOs.
//!
//! A search space ([`space`]) lists knobs whose choices are `--set`-style
//! overrides. The search ([`search`]) simulates candidates best-first by a cost
//! lower bound ([`bound`]), bisects the monotone knob (replica counts), skips
//! what cannot beat the best passing candidate or cannot carry the load, and
//! re-runs the finalists with more seeds. [`rank`], [`pareto`] and [`output`]
//! turn the outcome into the table, plan.json, winner.toml and plan.html.
//!
//! What the pruning assumes, and the tests check against the full grid: along
//! a `monotone` knob (a fixed replica count) passing and cost never decrease;
//! the cost bound never exceeds the simulated cost; a service whose capacity
//! is below its mean offered load fails a latency or error-rate SLO. With
//! `--exhaustive` nothing is assumed.
//!
//! Architecture invariant: no I/O here except through the caller's paths in
//! [`write_outputs`]; the same seed gives the same plan on any machine.

pub mod bound;
mod chart;
pub mod output;
pub mod pareto;
pub mod rank;
pub mod search;
pub mod space;

pub use lab_scenario::apply_overrides;
pub use rank::{rank, Ranking};
pub use search::{exhaustive, search, Evaluation, Outcome, Problem, Progress, RunFigures};
pub use space::{from_vary, parse_search_file, Candidate, Choice, Knob, Settings, Space};

use std::path::Path;

/// The bound of the scenario's run-wide p99 SLO, in seconds, if it has one
/// (drawn on the chart).
pub fn p99_bound(s: &lab_scenario::Scenario) -> Option<f64> {
    s.slo
        .iter()
        .filter(|x| x.metric == lab_results::SloMetric::P99 && x.service.is_none())
        .find_map(|x| match x.bound() {
            Ok((lab_results::SloThreshold::Max, v)) => Some(v),
            _ => None,
        })
}

/// Writes plan.json, plan.html and (when something passed) winner.toml into `dir`.
pub fn write_outputs(
    dir: &Path,
    problem: &Problem,
    outcome: &Outcome,
    ranking: &Ranking,
    p99_bound: Option<f64>,
) -> Result<(), String> {
    let io = |p: &Path, e: std::io::Error| format!("writing {}: {e}", p.display());
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let json = output::json(outcome, ranking, problem);
    let p = dir.join("plan.json");
    let text = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
    std::fs::write(&p, text).map_err(|e| io(&p, e))?;
    let p = dir.join("plan.html");
    std::fs::write(&p, output::html(outcome, ranking, problem, p99_bound))
        .map_err(|e| io(&p, e))?;
    let p = dir.join("winner.toml");
    match outcome.winner.and_then(|id| outcome.get(id)) {
        Some(w) => {
            let text = output::winner_toml(problem, w)?;
            std::fs::write(&p, text).map_err(|e| io(&p, e))?;
        }
        // A stale winner from an earlier plan in the same folder would mislead.
        None => {
            let _ = std::fs::remove_file(&p);
        }
    }
    Ok(())
}
