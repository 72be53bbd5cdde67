//! A comparison held against a scenario's `[fidelity]` bounds.
//!
//! Each declared bound, times `slack`, is the limit. Figures of the request
//! path (latency, throughput, goodput, error rate) are judged for the whole
//! run and for every service; replica bounds per service, on the worse of the
//! ready and desired timelines; cold starts, scaling events and cost for the
//! whole run. A relative bound whose baseline (`a`) is 0 while `b` is not has
//! nothing to divide by and fails, saying so.

use crate::{Comparison, Delta, Figures};
use lab_scenario::FidelitySpec;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BoundResult {
    /// The `[fidelity]` key.
    pub key: String,
    /// The service judged; absent for the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The bound as declared.
    pub declared: f64,
    pub slack: f64,
    /// `declared * slack`: what `observed` must not exceed.
    pub limit: f64,
    /// Absent when there is nothing to measure (see `detail`).
    pub observed: Option<f64>,
    /// `relative`, `ratio`, `replicas`, `periods`, `cold starts`, `events`.
    pub unit: String,
    pub passed: bool,
    /// What was compared, in words: both values, or why nothing was observed.
    pub detail: String,
}

impl BoundResult {
    /// `p99 (resnet50)`, or `p99` for the whole run.
    pub fn name(&self) -> String {
        match &self.service {
            Some(s) => format!("{} ({s})", self.key),
            None => self.key.clone(),
        }
    }
}

/// True when every bound held (and when none was declared).
pub fn all_hold(results: &[BoundResult]) -> bool {
    results.iter().all(|r| r.passed)
}

struct Judge<'a> {
    spec: &'a FidelitySpec,
    out: Vec<BoundResult>,
}

impl Judge<'_> {
    fn push(
        &mut self,
        key: &str,
        service: Option<&str>,
        observed: Option<f64>,
        unit: &str,
        detail: String,
        // What a missing observation means: a pass (nothing to align) or a fail.
        missing_passes: bool,
    ) {
        let Some(declared) = self
            .spec
            .bounds()
            .into_iter()
            .find(|b| b.0 == key)
            .map(|b| b.1)
        else {
            return;
        };
        let limit = declared * self.spec.slack;
        let passed = match observed {
            Some(o) => o <= limit + limit.abs() * 1e-12,
            None => missing_passes,
        };
        self.out.push(BoundResult {
            key: key.to_string(),
            service: service.map(str::to_string),
            declared,
            slack: self.spec.slack,
            limit,
            observed,
            unit: unit.to_string(),
            passed,
            detail,
        });
    }

    fn relative(&mut self, key: &str, service: Option<&str>, d: &Delta) {
        let detail = match d.relative {
            Some(_) => format!("a {} vs b {}", num(d.a), num(d.b)),
            None => format!("a is 0 and b is {}: no relative error to measure", num(d.b)),
        };
        self.push(key, service, d.relative_abs, "relative", detail, false);
    }

    fn figures(&mut self, service: Option<&str>, f: &Figures) {
        self.relative("p50", service, &f.p50_seconds);
        self.relative("p95", service, &f.p95_seconds);
        self.relative("p99", service, &f.p99_seconds);
        self.relative("mean", service, &f.mean_seconds);
        self.relative("throughput", service, &f.throughput_rps);
        self.relative("goodput", service, &f.goodput_rps);
        let e = &f.error_rate;
        self.push(
            "error_rate",
            service,
            Some(e.difference.abs()),
            "ratio",
            format!("a {} vs b {}", num(e.a), num(e.b)),
            false,
        );
    }
}

fn num(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
    }
}

impl Comparison {
    /// Every declared bound, judged; empty when `spec` declares none.
    pub fn judge(&self, spec: &FidelitySpec) -> Vec<BoundResult> {
        let mut j = Judge {
            spec,
            out: Vec::new(),
        };
        j.figures(None, &self.overall);
        for s in &self.services {
            j.figures(Some(&s.name), &s.figures);
        }
        for s in &self.services {
            let (r, d) = (&s.replicas.ready, &s.replicas.desired);
            j.push(
                "replicas",
                Some(&s.name),
                Some(f64::from(r.max_gap_aligned.max(d.max_gap_aligned))),
                "replicas",
                format!(
                    "largest gap once aligned: {} ready, {} desired ({} and {} at the same instant)",
                    r.max_gap_aligned, d.max_gap_aligned, r.max_gap, d.max_gap
                ),
                false,
            );
            let lags: Vec<f64> = [r, d]
                .iter()
                .filter(|f| f.correlation.is_some())
                .map(|f| f.lag_seconds)
                .collect();
            let worst = lags.iter().copied().map(f64::abs).reduce(f64::max);
            let (observed, detail, missing_passes) = match (worst, s.replicas.sync_period_seconds) {
                (None, _) => (
                    None,
                    "the replica timelines are flat: no lag to measure".to_string(),
                    true,
                ),
                (Some(l), Some(p)) => (
                    Some(l / p),
                    format!(
                        "lag {} s (ready {} s, desired {} s) against a {} s period",
                        num(l),
                        num(r.lag_seconds),
                        num(d.lag_seconds),
                        num(p)
                    ),
                    false,
                ),
                (Some(l), None) => (
                    None,
                    format!(
                        "lag {} s, but the service's autoscaler has no sync period to count it in",
                        num(l)
                    ),
                    false,
                ),
            };
            j.push(
                "replica_lag_periods",
                Some(&s.name),
                observed,
                "periods",
                detail,
                missing_passes,
            );
        }
        let c = &self.cold_starts;
        j.push(
            "cold_start_count",
            None,
            Some(c.count.difference.abs()),
            "cold starts",
            format!("a {} vs b {}", num(c.count.a), num(c.count.b)),
            false,
        );
        j.relative("cold_start_mean", None, &c.mean_seconds);
        j.relative("requests_delayed", None, &c.requests_delayed);
        let unmatched: usize = self.scaling_events.iter().map(|t| t.unmatched()).sum();
        let matched: usize = self.scaling_events.iter().map(|t| t.matched.len()).sum();
        j.push(
            "unmatched_scaling_events",
            None,
            Some(unmatched as f64),
            "events",
            format!("{matched} matched, {unmatched} without a partner"),
            false,
        );
        j.relative("cost", None, &self.cost.total_usd);
        j.out
    }
}
