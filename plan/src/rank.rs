//! Ordering the simulated candidates for the table and the front.

use crate::pareto;
use crate::search::{Evaluation, Outcome};

/// The ranked view of an outcome.
#[derive(Debug, Clone)]
pub struct Ranking<'a> {
    /// Passing with every seed they ran, cheapest first.
    pub passing: Vec<&'a Evaluation>,
    /// Failing candidates closest to passing (largest SLO margin) first.
    pub nearest_failures: Vec<&'a Evaluation>,
    /// The Pareto front of cost against p99 over all simulated candidates,
    /// cheapest first.
    pub front: Vec<&'a Evaluation>,
}

pub fn rank(outcome: &Outcome, nearest: usize) -> Ranking<'_> {
    let mut passing: Vec<&Evaluation> = outcome.evaluated.iter().filter(|e| e.passed()).collect();
    passing.sort_by(|a, b| {
        let (ka, kb) = (a.key(), b.key());
        ka.0.cmp(&kb.0)
            .then(ka.1.total_cmp(&kb.1))
            .then(ka.2.cmp(&kb.2))
    });
    let mut failing: Vec<&Evaluation> = outcome.evaluated.iter().filter(|e| !e.passed()).collect();
    failing.sort_by(|a, b| {
        let (ma, mb) = (
            a.slo_margin().unwrap_or(f64::NEG_INFINITY),
            b.slo_margin().unwrap_or(f64::NEG_INFINITY),
        );
        mb.total_cmp(&ma).then(a.id.cmp(&b.id))
    });
    failing.truncate(nearest);
    let points: Vec<(f64, f64)> = outcome
        .evaluated
        .iter()
        .map(|e| (e.monthly_cost_usd(), e.p99_seconds()))
        .collect();
    let front = pareto::front(&points)
        .into_iter()
        .map(|i| &outcome.evaluated[i])
        .collect();
    Ranking {
        passing,
        nearest_failures: failing,
        front,
    }
}
