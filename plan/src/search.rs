//! The search: best-first by cost lower bound, bisection along the monotone
//! knob, pruning of candidates that cannot beat the best passing one, and
//! re-runs of the finalists with more seeds.
//!
//! Determinism: each round's candidates are chosen from state that only
//! depends on earlier rounds, simulated in parallel, collected in input order,
//! and applied in (lower bound, id) order. The round width is a setting, not
//! the core count, so the same candidates are simulated on any machine.

use crate::bound;
use crate::space::Space;
use lab_results::{Results, SloThreshold};
use lab_scenario::Scenario;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The base scenario as text, so each candidate is the file plus overrides.
#[derive(Debug, Clone)]
pub struct Problem {
    pub text: String,
    pub file: String,
    pub base_dir: PathBuf,
    /// Primary seed; the finalists also run `seed + 1`, `seed + 2`, ...
    pub seed: u64,
}

impl Problem {
    pub fn parse(&self, overrides: &[String]) -> Result<Scenario, String> {
        lab_scenario::parse(&self.text, &self.file, &self.base_dir, overrides)
            .map_err(|e| e.to_string().trim().to_string())
    }
}

/// The figures of one simulation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunFigures {
    pub seed: u64,
    pub passed: bool,
    pub monthly_cost_usd: f64,
    pub p99_seconds: f64,
    /// Smallest relative distance to an SLO bound (negative: violated); `None`
    /// when the scenario states no SLO.
    pub slo_margin: Option<f64>,
    pub cold_starts: u64,
    /// Mean GPU busy fraction after warm-up.
    pub gpu_utilization: f64,
    /// Names of the SLOs that failed.
    pub failed: Vec<String>,
}

impl RunFigures {
    pub fn from_results(r: &Results) -> RunFigures {
        let margins: Vec<f64> = r
            .slo
            .iter()
            .map(|s| {
                // No data is as far from passing as a run can be.
                let Some(observed) = s.observed else {
                    return -1.0;
                };
                let signed = match s.bound {
                    SloThreshold::Max => s.threshold - observed,
                    SloThreshold::Min => observed - s.threshold,
                };
                if s.threshold.abs() > 0.0 {
                    signed / s.threshold.abs()
                } else {
                    signed
                }
            })
            .collect();
        let after: Vec<f64> = r
            .timeseries
            .iter()
            .filter(|p| p.t_seconds >= r.run.warmup_seconds)
            .map(|p| p.gpu_busy_fraction)
            .collect();
        RunFigures {
            seed: r.seed,
            passed: r.complete && r.passed(),
            monthly_cost_usd: r.cost.monthly_usd,
            p99_seconds: r.summary.latency_seconds.p99,
            slo_margin: margins.into_iter().reduce(f64::min),
            cold_starts: r.cold_starts.count,
            gpu_utilization: if after.is_empty() {
                0.0
            } else {
                after.iter().sum::<f64>() / after.len() as f64
            },
            failed: r
                .slo
                .iter()
                .filter(|s| !s.passed)
                .map(|s| s.name.clone())
                .collect(),
        }
    }
}

/// A simulated candidate, over every seed it ran with (the primary first).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evaluation {
    pub id: usize,
    pub label: String,
    pub overrides: Vec<String>,
    pub cost_lower_bound_usd: f64,
    pub runs: Vec<RunFigures>,
}

impl Evaluation {
    /// Passed with every seed it ran.
    pub fn passed(&self) -> bool {
        self.runs.iter().all(|r| r.passed)
    }
    pub fn monthly_cost_usd(&self) -> f64 {
        self.runs.iter().map(|r| r.monthly_cost_usd).sum::<f64>() / self.runs.len() as f64
    }
    /// Worst seed.
    pub fn p99_seconds(&self) -> f64 {
        self.runs.iter().map(|r| r.p99_seconds).fold(0.0, f64::max)
    }
    /// Worst seed.
    pub fn slo_margin(&self) -> Option<f64> {
        self.runs
            .iter()
            .filter_map(|r| r.slo_margin)
            .reduce(f64::min)
    }
    pub fn cold_starts(&self) -> u64 {
        self.runs.iter().map(|r| r.cold_starts).max().unwrap_or(0)
    }
    pub fn gpu_utilization(&self) -> f64 {
        self.runs.iter().map(|r| r.gpu_utilization).sum::<f64>() / self.runs.len() as f64
    }
    pub fn failed(&self) -> Vec<String> {
        let mut out: Vec<String> = self.runs.iter().flat_map(|r| r.failed.clone()).collect();
        out.sort();
        out.dedup();
        out
    }
    /// Ranking key: cheaper (to the cent) first, then lower p99, then grid
    /// position. Whole-node prices make exact cost ties common.
    pub fn key(&self) -> (i64, f64, usize) {
        (cents(self.monthly_cost_usd()), self.p99_seconds(), self.id)
    }
}

fn cents(usd: f64) -> i64 {
    (usd * 100.0).round() as i64
}

fn by_key(a: &Evaluation, b: &Evaluation) -> std::cmp::Ordering {
    let (ka, kb) = (a.key(), b.key());
    ka.0.cmp(&kb.0)
        .then(ka.1.total_cmp(&kb.1))
        .then(ka.2.cmp(&kb.2))
}

/// Everything the search found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub grid_size: usize,
    pub simulations: usize,
    /// Candidates that were simulated, by id.
    pub evaluated: Vec<Evaluation>,
    /// Candidates the scenario rejects (id, first error line).
    pub invalid: Vec<(usize, String)>,
    /// Candidates not simulated because their capacity is below the load.
    pub overloaded: Vec<(usize, String)>,
    pub seeds: Vec<u64>,
    pub budget_exhausted: bool,
    /// Stopped by the caller (Ctrl-C) before the search settled.
    pub interrupted: bool,
    /// Cheapest candidate that passed with every seed.
    pub winner: Option<usize>,
}

impl Outcome {
    pub fn get(&self, id: usize) -> Option<&Evaluation> {
        self.evaluated
            .binary_search_by_key(&id, |e| e.id)
            .ok()
            .map(|i| &self.evaluated[i])
    }
}

/// Reported after each round.
#[derive(Debug, Clone)]
pub struct Progress {
    pub simulations: usize,
    pub grid_size: usize,
    /// (label, monthly cost) of the cheapest passing candidate so far.
    pub best: Option<(String, f64)>,
}

enum Static {
    Invalid(String),
    Overloaded(String),
    Ready { scenario: Box<Scenario>, lb: f64 },
}

struct State<'a> {
    problem: &'a Problem,
    space: &'a Space,
    statics: BTreeMap<usize, Static>,
    evals: BTreeMap<usize, Evaluation>,
    simulations: usize,
}

impl<'a> State<'a> {
    fn static_of(&mut self, id: usize) -> &Static {
        let (problem, space) = (self.problem, self.space);
        self.statics.entry(id).or_insert_with(|| {
            let c = space.candidate(id);
            match problem.parse(&space.overrides(&c)) {
                Err(e) => Static::Invalid(e.lines().next().unwrap_or("").to_string()),
                Ok(s) => match bound::overloaded(&s) {
                    Some(why) => Static::Overloaded(why),
                    None => Static::Ready {
                        lb: bound::cost_lower_bound(&s),
                        scenario: Box::new(s),
                    },
                },
            }
        })
    }

    fn best(&self) -> Option<&Evaluation> {
        self.evals
            .values()
            .filter(|e| e.passed())
            .min_by(|a, b| by_key(a, b))
    }

    /// Simulates `jobs` (candidate id, seed) in parallel; results in input order.
    fn simulate(&mut self, jobs: &[(usize, u64)]) {
        let inputs: Vec<(usize, u64, &Scenario)> = jobs
            .iter()
            .map(|&(id, seed)| match self.statics.get(&id) {
                Some(Static::Ready { scenario, .. }) => (id, seed, scenario.as_ref()),
                _ => unreachable!("only ready candidates are simulated"),
            })
            .collect();
        let figures: Vec<(usize, RunFigures)> = inputs
            .par_iter()
            .map(|&(id, seed, s)| {
                let out = lab_sim::simulate(s, seed, &mut |_| lab_sim::Control::Continue);
                (id, RunFigures::from_results(&out.results))
            })
            .collect();
        self.simulations += figures.len();
        for (id, f) in figures {
            let lb = match self.statics.get(&id) {
                Some(Static::Ready { lb, .. }) => *lb,
                _ => 0.0,
            };
            let space = self.space;
            self.evals
                .entry(id)
                .or_insert_with(|| {
                    let c = space.candidate(id);
                    Evaluation {
                        id,
                        label: space.label(&c),
                        overrides: space.overrides(&c),
                        cost_lower_bound_usd: lb,
                        runs: Vec::new(),
                    }
                })
                .runs
                .push(f);
        }
    }

    /// The next candidate worth simulating in one group (the other knobs fixed,
    /// `ids` along the monotone knob), or `None` when the group is settled.
    fn next_probe(&mut self, ids: &[usize], best: Option<i64>) -> Option<(f64, usize)> {
        let monotone = ids.len() > 1;
        let mut cut = ids.len();
        loop {
            // Monotone inference: below a failure everything fails, above a pass
            // everything passes and costs at least as much.
            let mut lo = 0;
            let mut hi = cut;
            let mut fails = 0u32;
            let mut pass_known = false;
            for (p, id) in ids.iter().enumerate() {
                let failed = match self.evals.get(id) {
                    Some(e) if e.passed() => {
                        if monotone {
                            hi = hi.min(p);
                            pass_known = true;
                        }
                        false
                    }
                    Some(_) => {
                        fails += 1;
                        true
                    }
                    None => matches!(self.statics.get(id), Some(Static::Overloaded(_))),
                };
                if failed && monotone {
                    lo = lo.max(p + 1);
                }
            }
            let open: Vec<usize> = (lo..hi.max(lo))
                .filter(|&p| {
                    !self.evals.contains_key(&ids[p])
                        && !matches!(
                            self.statics.get(&ids[p]),
                            Some(Static::Invalid(_) | Static::Overloaded(_))
                        )
                })
                .collect();
            if open.is_empty() {
                // Above the lowest pass everything passes and costs at least as
                // much; only those that may cost the same (several pods per
                // node) can still win, on p99.
                return if monotone && pass_known {
                    self.tie_probe(ids, hi, cut)
                        .filter(|(lb, _)| best.is_none_or(|b| cents(*lb) <= b))
                } else {
                    None
                };
            }
            // Gallop up from the cheapest open position until something passes,
            // then bisect between the last failure and the first pass.
            let k = if pass_known {
                (open.len() - 1) / 2
            } else {
                ((1usize << fails.min(20)) - 1).min(open.len() - 1)
            };
            let p = open[k];
            let id = ids[p];
            match self.static_of(id) {
                Static::Invalid(_) | Static::Overloaded(_) => continue,
                Static::Ready { lb, .. } => {
                    let lb = *lb;
                    // Cannot beat or tie the best: neither can anything above it.
                    if best.is_some_and(|b| cents(lb) > b) {
                        cut = p;
                        continue;
                    }
                    return Some((lb, id));
                }
            }
        }
    }
}

impl State<'_> {
    /// The first unsimulated position above the lowest pass `first_pass` whose
    /// cost bound does not exceed that pass's cost.
    fn tie_probe(&mut self, ids: &[usize], first_pass: usize, cut: usize) -> Option<(f64, usize)> {
        let pass_cost = cents(self.evals.get(&ids[first_pass])?.monthly_cost_usd());
        for &id in &ids[first_pass + 1..cut.max(first_pass + 1)] {
            if let Some(e) = self.evals.get(&id) {
                if e.passed() {
                    continue;
                }
                return None;
            }
            match self.static_of(id) {
                Static::Invalid(_) => continue,
                Static::Overloaded(_) => return None,
                Static::Ready { lb, .. } => {
                    let lb = *lb;
                    return (cents(lb) <= pass_cost).then_some((lb, id));
                }
            }
        }
        None
    }
}

/// The groups: for each combination of the other knobs, the candidate ids
/// along the monotone knob (one id per group when there is none).
fn groups(space: &Space) -> Vec<Vec<usize>> {
    let m = space.monotone_knob();
    let size = space.grid_size();
    let mut out = Vec::new();
    for id in 0..size {
        let c = space.candidate(id);
        match m {
            Some(k) if c.choice[k] != 0 => continue,
            Some(k) => {
                let mut choice = c.choice.clone();
                out.push(
                    (0..space.knobs[k].choices.len())
                        .map(|i| {
                            choice[k] = i;
                            space.id_of(&choice)
                        })
                        .collect(),
                );
            }
            None => out.push(vec![id]),
        }
    }
    out
}

/// Runs the search. `progress` is called on this thread after every round;
/// returning `false` stops the search there (Ctrl-C), with what it has so far.
pub fn search(
    problem: &Problem,
    space: &Space,
    progress: &mut dyn FnMut(&Progress) -> bool,
) -> Outcome {
    let settings = &space.settings;
    let seeds: Vec<u64> = (0..u64::from(settings.seeds))
        .map(|k| problem.seed.wrapping_add(k))
        .collect();
    let mut st = State {
        problem,
        space,
        statics: BTreeMap::new(),
        evals: BTreeMap::new(),
        simulations: 0,
    };
    let groups = groups(space);
    let budget = settings.budget.unwrap_or(usize::MAX);
    let mut budget_exhausted = false;
    let mut interrupted = false;
    loop {
        let best = st.best().map(|e| cents(e.monthly_cost_usd()));
        let mut probes: Vec<(f64, usize)> = Vec::new();
        for g in &groups {
            if let Some(p) = st.next_probe(g, best) {
                probes.push(p);
            }
        }
        probes.sort_by(|a, b| a.partial_cmp(b).expect("finite bounds"));
        let left = budget.saturating_sub(st.simulations);
        let jobs: Vec<(usize, u64)> = if probes.is_empty() {
            // Settled on one seed: re-run the cheapest passing candidates with
            // the other seeds so a lucky seed does not win.
            let mut passing: Vec<&Evaluation> = st.evals.values().filter(|e| e.passed()).collect();
            passing.sort_by(|a, b| by_key(a, b));
            passing
                .iter()
                .take(settings.finalists)
                .flat_map(|e| seeds[e.runs.len()..].iter().map(move |&s| (e.id, s)))
                .collect()
        } else {
            probes
                .iter()
                .take(settings.round)
                .map(|&(_, id)| (id, seeds[0]))
                .collect()
        };
        if jobs.is_empty() {
            break;
        }
        if left == 0 {
            budget_exhausted = true;
            break;
        }
        let jobs: Vec<(usize, u64)> = jobs.into_iter().take(left).collect();
        st.simulate(&jobs);
        let go_on = progress(&Progress {
            simulations: st.simulations,
            grid_size: space.grid_size(),
            best: st.best().map(|e| (e.label.clone(), e.monthly_cost_usd())),
        });
        if !go_on {
            interrupted = true;
            break;
        }
    }
    finish(st, seeds, budget_exhausted, interrupted)
}

/// Simulates every valid candidate with the primary seed: the reference the
/// search is checked against, and `--exhaustive`.
pub fn exhaustive(
    problem: &Problem,
    space: &Space,
    progress: &mut dyn FnMut(&Progress) -> bool,
) -> Outcome {
    let mut st = State {
        problem,
        space,
        statics: BTreeMap::new(),
        evals: BTreeMap::new(),
        simulations: 0,
    };
    let size = space.grid_size();
    // Parsing is cheap next to simulating; do it for every candidate first.
    let ready: Vec<usize> = (0..size)
        .filter(|&id| {
            // Overloaded candidates are simulated too: the reference makes no
            // assumptions.
            match st.static_of(id) {
                Static::Invalid(_) => false,
                Static::Overloaded(_) => true,
                Static::Ready { .. } => true,
            }
        })
        .collect();
    for id in &ready {
        if let Some(Static::Overloaded(_)) = st.statics.get(id) {
            let c = space.candidate(*id);
            let s = problem
                .parse(&space.overrides(&c))
                .expect("parsed once already");
            st.statics.insert(
                *id,
                Static::Ready {
                    lb: bound::cost_lower_bound(&s),
                    scenario: Box::new(s),
                },
            );
        }
    }
    let chunk = space.settings.round.max(1) * 4;
    for jobs in ready.chunks(chunk) {
        let jobs: Vec<(usize, u64)> = jobs.iter().map(|&id| (id, problem.seed)).collect();
        st.simulate(&jobs);
        let go_on = progress(&Progress {
            simulations: st.simulations,
            grid_size: size,
            best: st.best().map(|e| (e.label.clone(), e.monthly_cost_usd())),
        });
        if !go_on {
            return finish(st, vec![problem.seed], false, true);
        }
    }
    finish(st, vec![problem.seed], false, false)
}

fn finish(st: State, seeds: Vec<u64>, budget_exhausted: bool, interrupted: bool) -> Outcome {
    let n = seeds.len();
    let winner = st
        .evals
        .values()
        .filter(|e| e.passed() && e.runs.len() == n)
        .min_by(|a, b| by_key(a, b))
        .map(|e| e.id);
    let mut invalid = Vec::new();
    let mut overloaded = Vec::new();
    for (id, s) in &st.statics {
        match s {
            Static::Invalid(e) => invalid.push((*id, e.clone())),
            Static::Overloaded(e) => overloaded.push((*id, e.clone())),
            Static::Ready { .. } => {}
        }
    }
    Outcome {
        grid_size: st.space.grid_size(),
        simulations: st.simulations,
        evaluated: st.evals.into_values().collect(),
        invalid,
        overloaded,
        seeds,
        budget_exhausted,
        interrupted,
        winner,
    }
}
