//! The simulator: a deterministic discrete-event model of one scenario.
//!
//! Architecture invariants: no I/O, no threads, no wall clock. Time is integer
//! nanoseconds; events pop in (time, sequence) order; every random draw comes from
//! a seeded PCG stream with a fixed algorithm. The same scenario and seed give the
//! same results on any machine.

mod engine;
mod output;
mod queue;
mod stats;
mod world;

pub use engine::{Control, Progress};
use lab_results::{evaluate_slos, Judging, Results};
use lab_scenario::Scenario;

/// Simulates `scenario` with `seed`, calling `progress` every million events or so;
/// returning [`Control::Stop`] ends the run early with partial results
/// (`complete: false`). The caller fills in `scenario` echo and `wall_clock`.
pub fn simulate(
    scenario: &Scenario,
    seed: u64,
    progress: &mut dyn FnMut(Progress) -> Control,
) -> SimOutput {
    let mut engine = engine::Engine::new(scenario, seed);
    engine.run(progress);
    let mut results = output::results(&engine);
    results.seed = seed;
    output::warnings(&engine, &mut results);
    evaluate_slos(&scenario.slo, &mut results, Judging::default());
    SimOutput {
        results,
        events: engine.run.events,
    }
}

pub struct SimOutput {
    pub results: Results,
    pub events: u64,
}
