//! `lab compare`: two runs of one scenario (normally the simulator as `a` and
//! the local level as `b`) side by side, metric by metric: how far `b` is from
//! `a`, signed and absolute; how the replica timelines line up (the largest gap
//! and the lag that best aligns them, by cross-correlation); cold starts;
//! scaling events matched one to one; cost. [`Comparison::judge`] holds the
//! result against a scenario's `[fidelity]` bounds.
//!
//! Entry points: [`compare`] (or [`compare_with`] for a chosen event window),
//! [`declared_fidelity`] for the bounds the runs' scenario declares,
//! [`Comparison::judge`], [`Comparison::table`] and [`Comparison::to_text`].
//!
//! Architecture invariant: pure; no I/O, no clock. Reading the files and
//! printing are the caller's business.

mod events;
mod judge;
mod scenario;
mod table;
mod timeline;

pub use events::{EventAt, MatchedEvent, TargetEvents};
pub use judge::{all_hold, BoundResult};
pub use scenario::{Refusal, NOT_COMPARED};
pub use table::{bounds_table, Table};
pub use timeline::{ReplicaComparison, TimelineFit};

use lab_results::{LatencySummary, Level, Results};
use lab_scenario::FidelitySpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One figure in both runs: `b` against `a`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    pub a: f64,
    pub b: f64,
    /// `b - a`.
    pub difference: f64,
    /// `(b - a) / a`; 0 when both are equal, absent when only `a` is 0 (no
    /// relative error to speak of).
    pub relative: Option<f64>,
    /// `|b - a| / a`, absent with `relative`.
    pub relative_abs: Option<f64>,
}

impl Delta {
    pub fn new(a: f64, b: f64) -> Delta {
        let relative = if a == b {
            Some(0.0)
        } else if a == 0.0 || !a.is_finite() || !b.is_finite() {
            None
        } else {
            Some((b - a) / a.abs())
        };
        Delta {
            a,
            b,
            difference: b - a,
            relative,
            relative_abs: relative.map(f64::abs),
        }
    }

    fn counts(a: u64, b: u64) -> Delta {
        Delta::new(a as f64, b as f64)
    }
}

/// The request-path figures of a service or of the whole run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    pub p50_seconds: Delta,
    pub p95_seconds: Delta,
    pub p99_seconds: Delta,
    pub mean_seconds: Delta,
    pub throughput_rps: Delta,
    pub goodput_rps: Delta,
    pub error_rate: Delta,
}

impl Figures {
    fn new(
        (la, lb): (&LatencySummary, &LatencySummary),
        throughput: (f64, f64),
        goodput: (f64, f64),
        error_rate: (f64, f64),
    ) -> Figures {
        Figures {
            p50_seconds: Delta::new(la.p50, lb.p50),
            p95_seconds: Delta::new(la.p95, lb.p95),
            p99_seconds: Delta::new(la.p99, lb.p99),
            mean_seconds: Delta::new(la.mean, lb.mean),
            throughput_rps: Delta::new(throughput.0, throughput.1),
            goodput_rps: Delta::new(goodput.0, goodput.1),
            error_rate: Delta::new(error_rate.0, error_rate.1),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceComparison {
    pub name: String,
    pub figures: Figures,
    pub replicas: ReplicaComparison,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColdStartPhasesDelta {
    pub node_provisioning: Delta,
    pub image_pull: Delta,
    pub model_load: Delta,
    pub readiness: Delta,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColdStartComparison {
    pub count: Delta,
    /// Mean time from pod creation to ready.
    pub mean_seconds: Delta,
    /// Each phase's mean.
    pub phases_seconds: ColdStartPhasesDelta,
    /// Requests that waited for a pod to start.
    pub requests_delayed: Delta,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolCostDelta {
    pub name: String,
    pub usd: Delta,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostComparison {
    pub total_usd: Delta,
    /// Every pool of either run; a pool missing from one costs 0 there.
    pub by_pool: Vec<PoolCostDelta>,
}

/// Which run a side of the comparison is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRef {
    pub scenario: String,
    pub level: Level,
    pub seed: u64,
    pub overrides: Vec<String>,
    pub time_scale: f64,
    pub complete: bool,
    pub end_seconds: f64,
}

impl RunRef {
    fn of(r: &Results) -> RunRef {
        RunRef {
            scenario: r.scenario.name.clone(),
            level: r.level,
            seed: r.seed,
            overrides: r.scenario.overrides.clone(),
            time_scale: r.run.time_scale,
            complete: r.complete,
            end_seconds: r.run.end_seconds,
        }
    }
}

/// `b` measured against `a`, figure by figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub a: RunRef,
    pub b: RunRef,
    /// What a reader should know before trusting the figures (different
    /// seeds, an incomplete run, figures the two levels count differently).
    pub notes: Vec<String>,
    pub overall: Figures,
    /// Services in `a`'s order.
    pub services: Vec<ServiceComparison>,
    pub cold_starts: ColdStartComparison,
    /// One entry per target of either run, in target order.
    pub scaling_events: Vec<TargetEvents>,
    pub cost: CostComparison,
}

/// Choices the comparison leaves open.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CompareOptions {
    /// How far apart two scaling events may be and still be matched. Default:
    /// per target, four periods of its autoscaler (the cluster autoscaler's
    /// scan interval for a pool) and at least two time-series intervals.
    pub event_window_seconds: Option<f64>,
}

/// Compares `b` against `a` with the default options; refuses runs of
/// different scenarios (see [`Refusal`] for what counts as different).
pub fn compare(a: &Results, b: &Results) -> Result<Comparison, Refusal> {
    compare_with(a, b, &CompareOptions::default())
}

pub fn compare_with(
    a: &Results,
    b: &Results,
    options: &CompareOptions,
) -> Result<Comparison, Refusal> {
    if let Some(w) = options.event_window_seconds {
        if !(w.is_finite() && w >= 0.0) {
            return Err(Refusal::Options(format!(
                "the event window must be a finite number of seconds of at least 0, got {w}"
            )));
        }
    }
    scenario::same_scenario(a, b)?;
    let mut notes = scenario::notes(a, b);

    let overall = Figures::new(
        (&a.summary.latency_seconds, &b.summary.latency_seconds),
        (a.summary.throughput_rps, b.summary.throughput_rps),
        (a.summary.goodput_rps, b.summary.goodput_rps),
        (a.summary.error_rate, b.summary.error_rate),
    );
    let services = a
        .services
        .iter()
        .filter_map(|sa| {
            let sb = b.service(&sa.name)?;
            let period = scenario::sync_period(a, &sa.name).or(scenario::sync_period(b, &sa.name));
            Some(ServiceComparison {
                name: sa.name.clone(),
                figures: Figures::new(
                    (&sa.latency_seconds, &sb.latency_seconds),
                    (sa.throughput_rps, sb.throughput_rps),
                    (sa.goodput_rps, sb.goodput_rps),
                    (sa.error_rate, sb.error_rate),
                ),
                replicas: timeline::compare(a, b, &sa.name, period),
            })
        })
        .collect();

    let (ca, cb) = (&a.cold_starts, &b.cold_starts);
    let (pa, pb) = (&ca.phases_seconds, &cb.phases_seconds);
    let cold_starts = ColdStartComparison {
        count: Delta::counts(ca.count, cb.count),
        mean_seconds: Delta::new(ca.duration_seconds.mean, cb.duration_seconds.mean),
        phases_seconds: ColdStartPhasesDelta {
            node_provisioning: Delta::new(pa.node_provisioning, pb.node_provisioning),
            image_pull: Delta::new(pa.image_pull, pb.image_pull),
            model_load: Delta::new(pa.model_load, pb.model_load),
            readiness: Delta::new(pa.readiness, pb.readiness),
        },
        requests_delayed: Delta::counts(ca.requests_delayed, cb.requests_delayed),
    };

    let scaling_events = events::match_all(a, b, options.event_window_seconds);

    let pools: BTreeSet<&str> = a
        .cost
        .by_pool
        .iter()
        .chain(&b.cost.by_pool)
        .map(|p| p.name.as_str())
        .collect();
    let pool_usd = |r: &Results, name: &str| {
        r.cost
            .by_pool
            .iter()
            .find(|p| p.name == name)
            .map_or(0.0, |p| p.usd)
    };
    let cost = CostComparison {
        total_usd: Delta::new(a.cost.total_usd, b.cost.total_usd),
        by_pool: pools
            .into_iter()
            .map(|name| PoolCostDelta {
                name: name.to_string(),
                usd: Delta::new(pool_usd(a, name), pool_usd(b, name)),
            })
            .collect(),
    };

    if a.cold_starts.count != b.cold_starts.count {
        notes.push(format!(
            "cold starts: {} in a, {} in b, so their mean durations average different pods",
            a.cold_starts.count, b.cold_starts.count
        ));
    }
    Ok(Comparison {
        a: RunRef::of(a),
        b: RunRef::of(b),
        notes,
        overall,
        services,
        cold_starts,
        scaling_events,
        cost,
    })
}

/// The `[fidelity]` bounds of the runs' scenario, read from the scenario each
/// results file echoes (`scenario.config.fidelity`): `a`'s, else `b`'s. An
/// error when the table is there but does not read as bounds.
pub fn declared_fidelity(a: &Results, b: &Results) -> Result<Option<FidelitySpec>, String> {
    for r in [a, b] {
        if let Some(v) = r.scenario.config.get("fidelity").filter(|v| !v.is_null()) {
            return serde_json::from_value(v.clone()).map(Some).map_err(|e| {
                format!(
                    "the [fidelity] table echoed in the {} run's results does not read as bounds: {e}",
                    r.level.as_str()
                )
            });
        }
    }
    Ok(None)
}
