//! SLOs: how a scenario states them and how a results file is judged against them.

use crate::{Results, SloResult};
use lab_units::parse_duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What an SLO bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SloMetric {
    P50,
    P90,
    P95,
    P99,
    P999,
    MeanLatency,
    MaxLatency,
    /// Failed / arrived.
    ErrorRate,
    /// Requests that waited on a cold start.
    ColdStartRequests,
    MonthlyCostUsd,
    GoodputRps,
}

impl SloMetric {
    pub const ALL: [&'static str; 11] = [
        "p50",
        "p90",
        "p95",
        "p99",
        "p999",
        "mean_latency",
        "max_latency",
        "error_rate",
        "cold_start_requests",
        "monthly_cost_usd",
        "goodput_rps",
    ];

    pub fn is_latency(self) -> bool {
        matches!(
            self,
            SloMetric::P50
                | SloMetric::P90
                | SloMetric::P95
                | SloMetric::P99
                | SloMetric::P999
                | SloMetric::MeanLatency
                | SloMetric::MaxLatency
        )
    }

    pub fn unit(self) -> &'static str {
        match self {
            m if m.is_latency() => "seconds",
            SloMetric::ErrorRate => "ratio",
            SloMetric::ColdStartRequests => "requests",
            SloMetric::MonthlyCostUsd => "usd",
            _ => "rps",
        }
    }

    fn label(self) -> &'static str {
        match self {
            SloMetric::P50 => "p50 latency",
            SloMetric::P90 => "p90 latency",
            SloMetric::P95 => "p95 latency",
            SloMetric::P99 => "p99 latency",
            SloMetric::P999 => "p99.9 latency",
            SloMetric::MeanLatency => "mean latency",
            SloMetric::MaxLatency => "max latency",
            SloMetric::ErrorRate => "error rate",
            SloMetric::ColdStartRequests => "cold-start requests",
            SloMetric::MonthlyCostUsd => "monthly cost",
            SloMetric::GoodputRps => "goodput",
        }
    }

    /// The percentile as a quantile, for per-request goodput checks.
    pub fn quantile(self) -> Option<f64> {
        match self {
            SloMetric::P50 => Some(0.5),
            SloMetric::P90 => Some(0.9),
            SloMetric::P95 => Some(0.95),
            SloMetric::P99 => Some(0.99),
            SloMetric::P999 => Some(0.999),
            SloMetric::MaxLatency => Some(1.0),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SloThreshold {
    Max,
    Min,
}

/// A bound as written: a number, or text with a unit (`250ms`, `1%`, `$5000`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BoundValue {
    Number(f64),
    Text(String),
}

/// One `[[slo]]` entry of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloSpec {
    #[serde(default)]
    pub name: Option<String>,
    pub metric: SloMetric,
    #[serde(default)]
    pub service: Option<String>,
    /// Upper bound (latency, error rate, cold-start requests, cost).
    #[serde(default)]
    pub max: Option<BoundValue>,
    /// Lower bound (goodput).
    #[serde(default)]
    pub min: Option<BoundValue>,
}

impl SloSpec {
    /// The bound in canonical units (seconds, ratio, requests, USD, req/s).
    pub fn bound(&self) -> Result<(SloThreshold, f64), String> {
        let (kind, raw) = match (&self.max, &self.min) {
            (Some(v), None) => (SloThreshold::Max, v),
            (None, Some(v)) => (SloThreshold::Min, v),
            (Some(_), Some(_)) => return Err("give either `max` or `min`, not both".into()),
            (None, None) => {
                return Err(format!(
                    "needs a bound: `max = ...`{}",
                    if self.metric == SloMetric::GoodputRps {
                        " or, for goodput, `min = ...`"
                    } else {
                        ""
                    }
                ))
            }
        };
        let value = match (self.metric, raw) {
            (m, BoundValue::Text(t)) if m.is_latency() => parse_duration(t)
                .map_err(|e| format!("bound {e}"))?
                .secs_f64(),
            (SloMetric::ErrorRate, BoundValue::Text(t)) => {
                let pct = t
                    .trim()
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .ok_or_else(|| format!("`{t}` is not a rate (write `0.01` or `1%`)"))?;
                pct / 100.0
            }
            (SloMetric::MonthlyCostUsd, BoundValue::Text(t)) => t
                .trim()
                .trim_start_matches('$')
                .replace(',', "")
                .parse()
                .map_err(|_| format!("`{t}` is not an amount of USD (write `5000` or `$5,000`)"))?,
            (_, BoundValue::Text(t)) => t
                .trim()
                .parse()
                .map_err(|_| format!("`{t}` is not a number"))?,
            (_, BoundValue::Number(n)) => *n,
        };
        if !value.is_finite() || value < 0.0 {
            return Err(format!("bound must be a non-negative number, got {value}"));
        }
        if self.metric == SloMetric::ErrorRate && value > 1.0 {
            return Err(format!(
                "error rate bound {value} is above 1 (write `0.01` or `1%`)"
            ));
        }
        if kind == SloThreshold::Min && self.metric != SloMetric::GoodputRps {
            return Err(format!(
                "`min` only makes sense for goodput_rps; {} needs `max`",
                self.metric.label()
            ));
        }
        Ok((kind, value))
    }

    /// The name shown in summaries and JUnit: the given one, or e.g.
    /// `p99 latency <= 0.25 s (resnet)`.
    pub fn display_name(&self, threshold: f64, bound: SloThreshold) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        default_name(self.metric, self.service.as_deref(), threshold, bound)
    }
}

fn default_name(
    metric: SloMetric,
    service: Option<&str>,
    threshold: f64,
    bound: SloThreshold,
) -> String {
    let op = match bound {
        SloThreshold::Max => "<=",
        SloThreshold::Min => ">=",
    };
    let value = match metric.unit() {
        "seconds" => format!("{}", lab_units::Dur::from_secs_f64(threshold)),
        "ratio" => format!("{}%", threshold * 100.0),
        "usd" => format!("${threshold:.0}"),
        "rps" => format!("{threshold} req/s"),
        _ => format!("{threshold}"),
    };
    match service {
        Some(s) => format!("{} {op} {value} ({s})", metric.label()),
        None => format!("{} {op} {value}", metric.label()),
    }
}

/// The observed value of `metric` in a results file, overall or for one service.
pub fn observe(r: &Results, metric: SloMetric, service: Option<&str>) -> Option<f64> {
    let (lat, err, goodput) = match service {
        None => (
            &r.summary.latency_seconds,
            r.summary.error_rate,
            r.summary.goodput_rps,
        ),
        Some(name) => {
            let s = r.service(name)?;
            (&s.latency_seconds, s.error_rate, s.goodput_rps)
        }
    };
    Some(match metric {
        SloMetric::P50 => lat.p50,
        SloMetric::P90 => lat.p90,
        SloMetric::P95 => lat.p95,
        SloMetric::P99 => lat.p99,
        SloMetric::P999 => lat.p999,
        SloMetric::MeanLatency => lat.mean,
        SloMetric::MaxLatency => lat.max,
        SloMetric::ErrorRate => err,
        SloMetric::GoodputRps => goodput,
        SloMetric::ColdStartRequests => r.cold_starts.requests_delayed as f64,
        SloMetric::MonthlyCostUsd => match service {
            None => r.cost.monthly_usd,
            Some(name) => {
                r.cost
                    .by_service
                    .iter()
                    .find(|c| c.name == name)?
                    .monthly_usd
            }
        },
    })
}

fn judge(bound: SloThreshold, observed: f64, threshold: f64) -> bool {
    match bound {
        SloThreshold::Max => observed <= threshold,
        SloThreshold::Min => observed >= threshold,
    }
}

/// Judges a results file against SLO specs (validated beforehand: a spec whose
/// bound does not parse is reported as failed with the reason as its name).
pub fn evaluate_slos(specs: &[SloSpec], r: &Results) -> Vec<SloResult> {
    specs
        .iter()
        .map(|spec| {
            let (bound, threshold) = spec.bound().unwrap_or((SloThreshold::Max, f64::NAN));
            let observed = observe(r, spec.metric, spec.service.as_deref()).unwrap_or(f64::NAN);
            SloResult {
                name: spec.display_name(threshold, bound),
                metric: spec.metric,
                service: spec.service.clone(),
                passed: judge(bound, observed, threshold),
                observed,
                threshold,
                bound,
                unit: spec.metric.unit().to_string(),
            }
        })
        .collect()
}

/// Re-judges the SLOs recorded in a results file from its own figures, as
/// `lab check` does: a hand-edited or stale verdict does not survive.
pub fn recheck(r: &Results) -> Vec<SloResult> {
    r.slo
        .iter()
        .map(|s| {
            let observed = observe(r, s.metric, s.service.as_deref()).unwrap_or(f64::NAN);
            SloResult {
                observed,
                passed: judge(s.bound, observed, s.threshold),
                ..s.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(metric: SloMetric, max: BoundValue) -> SloSpec {
        SloSpec {
            name: None,
            metric,
            service: None,
            max: Some(max),
            min: None,
        }
    }

    #[test]
    fn bounds_parse_in_their_units() {
        let s = spec(SloMetric::P99, BoundValue::Text("250ms".into()));
        assert_eq!(s.bound().unwrap(), (SloThreshold::Max, 0.25));
        assert_eq!(
            s.display_name(0.25, SloThreshold::Max),
            "p99 latency <= 250ms"
        );
        let e = spec(SloMetric::ErrorRate, BoundValue::Text("1%".into()));
        assert!((e.bound().unwrap().1 - 0.01).abs() < 1e-15);
        let c = spec(
            SloMetric::MonthlyCostUsd,
            BoundValue::Text("$12,500".into()),
        );
        assert_eq!(c.bound().unwrap().1, 12_500.0);
        let bad = spec(SloMetric::ErrorRate, BoundValue::Number(5.0));
        assert!(bad.bound().unwrap_err().contains("above 1"));
        let lat = spec(SloMetric::P99, BoundValue::Text("fast".into()));
        assert!(lat.bound().unwrap_err().contains("fast"));
    }
}
