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
    /// Requests buffered at the activator while no pod was ready, over the
    /// whole run (warm-up included).
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

    pub fn label(self) -> &'static str {
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum BoundValue {
    Number(f64),
    Text(String),
}

/// One `[[slo]]` entry of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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

/// How warnings weigh on a verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Judging {
    /// `--allow-warnings`: a warning about an SLO's service no longer fails it.
    pub allow_warnings: bool,
}

/// The verdict on one SLO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SloVerdict {
    Pass,
    Fail,
    /// Nothing to judge (no completed request, nothing arrived): fails.
    NoData,
}

impl SloVerdict {
    /// `PASS`, `FAIL`, `NO DATA`, as summaries print it.
    pub fn label(self) -> &'static str {
        match self {
            SloVerdict::Pass => "PASS",
            SloVerdict::Fail => "FAIL",
            SloVerdict::NoData => "NO DATA",
        }
    }
}

/// The observed value of `metric` in a results file, overall or for one
/// service, or why there is none to judge.
pub fn observe(r: &Results, metric: SloMetric, service: Option<&str>) -> Result<f64, String> {
    let (lat, err, goodput, requests, who) = match service {
        None => (
            &r.summary.latency_seconds,
            r.summary.error_rate,
            r.summary.goodput_rps,
            &r.summary.requests,
            "the run".to_string(),
        ),
        Some(name) => {
            let s = r
                .service(name)
                .ok_or_else(|| format!("the results have no service `{name}`"))?;
            (
                &s.latency_seconds,
                s.error_rate,
                s.goodput_rps,
                &s.requests,
                format!("`{name}`"),
            )
        }
    };
    if metric.is_latency() && lat.count == 0 {
        return Err(if requests.arrived == 0 {
            format!("{who} received no request")
        } else {
            format!(
                "no request of {who} completed after warm-up ({} arrived, {} failed)",
                requests.arrived, requests.failed
            )
        });
    }
    let no_traffic = || format!("{who} received no request");
    Ok(match metric {
        SloMetric::P50 => lat.p50,
        SloMetric::P90 => lat.p90,
        SloMetric::P95 => lat.p95,
        SloMetric::P99 => lat.p99,
        SloMetric::P999 => lat.p999,
        SloMetric::MeanLatency => lat.mean,
        SloMetric::MaxLatency => lat.max,
        SloMetric::ErrorRate | SloMetric::GoodputRps | SloMetric::ColdStartRequests
            if requests.arrived == 0 =>
        {
            return Err(no_traffic())
        }
        SloMetric::ErrorRate => err,
        SloMetric::GoodputRps => goodput,
        SloMetric::ColdStartRequests => r.cold_starts.requests_delayed as f64,
        SloMetric::MonthlyCostUsd => match service {
            None => r.cost.monthly_usd,
            Some(name) => {
                r.cost
                    .by_service
                    .iter()
                    .find(|c| c.name == name)
                    .ok_or_else(|| format!("the results have no cost for `{name}`"))?
                    .monthly_usd
            }
        },
    })
}

/// Requests a percentile needs before it is more than the sample's maximum:
/// `1 / (1 - q)` (100 for p99, 1,000 for p99.9). None for metrics that any
/// number of requests answers (mean, max).
pub fn min_samples(metric: SloMetric) -> Option<u64> {
    match metric {
        SloMetric::MaxLatency => None,
        m => m.quantile().map(|q| (1.0 / (1.0 - q)).round() as u64),
    }
}

fn judge(bound: SloThreshold, observed: f64, threshold: f64) -> bool {
    match bound {
        SloThreshold::Max => observed <= threshold,
        SloThreshold::Min => observed >= threshold,
    }
}

struct Judged {
    verdict: SloVerdict,
    observed: Option<f64>,
    reason: Option<String>,
    /// The too-few-samples warning, to record in `warnings`.
    sample_warning: Option<String>,
}

fn judge_one(
    r: &Results,
    metric: SloMetric,
    service: Option<&str>,
    bound: SloThreshold,
    threshold: f64,
    judging: Judging,
) -> Judged {
    let observed = match observe(r, metric, service) {
        Ok(v) if v.is_finite() && threshold.is_finite() => v,
        Ok(v) => {
            return Judged {
                verdict: SloVerdict::Fail,
                observed: v.is_finite().then_some(v),
                reason: Some("the bound or the observed value is not a number".into()),
                sample_warning: None,
            }
        }
        Err(why) => {
            return Judged {
                verdict: SloVerdict::NoData,
                observed: None,
                reason: Some(why),
                sample_warning: None,
            }
        }
    };
    let within = judge(bound, observed, threshold);
    let sample_warning = min_samples(metric).and_then(|need| {
        let count = match service {
            None => r.summary.latency_seconds.count,
            Some(s) => r.service(s).map_or(0, |s| s.latency_seconds.count),
        };
        (count < need).then(|| {
            format!(
                "{} judged on {count} completed request(s){}: the percentile needs at \
                 least {need}, so it is no more than their maximum; lengthen the run or \
                 raise the rate",
                metric.label(),
                service.map(|s| format!(" of `{s}`")).unwrap_or_default(),
            )
        })
    });
    // Warnings about this SLO's service (or, for a run-wide SLO, any service).
    let concerning: Vec<&crate::Warning> = r
        .warnings
        .iter()
        .filter(|w| w.kind != crate::WarningKind::TooFewSamples)
        .filter(|w| match (service, &w.service) {
            (Some(s), Some(ws)) => s == ws,
            _ => true,
        })
        .collect();
    let (verdict, reason) = if !within {
        (SloVerdict::Fail, None)
    } else if judging.allow_warnings {
        (SloVerdict::Pass, None)
    } else if let Some(w) = &sample_warning {
        (SloVerdict::Fail, Some(w.clone()))
    } else if let Some(w) = concerning.first() {
        let more = match concerning.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        (
            SloVerdict::Fail,
            Some(format!(
                "within bounds, but failed by a warning{more}: {} (--allow-warnings accepts it)",
                w.message
            )),
        )
    } else {
        (SloVerdict::Pass, None)
    };
    Judged {
        verdict,
        observed: Some(observed),
        reason,
        sample_warning,
    }
}

/// Judges a results file against SLO specs (validated beforehand: a spec whose
/// bound does not parse is reported as failed), sets `r.slo`, and records a
/// warning for each percentile judged on too few requests.
pub fn evaluate_slos(specs: &[SloSpec], r: &mut Results, judging: Judging) {
    let mut slo = Vec::with_capacity(specs.len());
    for spec in specs {
        let (bound, threshold) = spec.bound().unwrap_or((SloThreshold::Max, f64::NAN));
        let j = judge_one(
            r,
            spec.metric,
            spec.service.as_deref(),
            bound,
            threshold,
            judging,
        );
        if let Some(w) = j.sample_warning {
            r.warn(
                crate::WarningKind::TooFewSamples,
                spec.service.as_deref(),
                w,
            );
        }
        slo.push(SloResult {
            name: spec.display_name(threshold, bound),
            metric: spec.metric,
            service: spec.service.clone(),
            passed: j.verdict == SloVerdict::Pass,
            verdict: Some(j.verdict),
            reason: j.reason,
            observed: j.observed,
            threshold,
            bound,
            unit: spec.metric.unit().to_string(),
        });
    }
    r.slo = slo;
}

/// Re-judges the SLOs recorded in a results file from its own figures and
/// warnings, as `lab check` does: a hand-edited or stale verdict does not survive.
pub fn recheck(r: &Results, judging: Judging) -> Vec<SloResult> {
    r.slo
        .iter()
        .map(|s| {
            let j = judge_one(
                r,
                s.metric,
                s.service.as_deref(),
                s.bound,
                s.threshold,
                judging,
            );
            SloResult {
                observed: j.observed,
                passed: j.verdict == SloVerdict::Pass,
                verdict: Some(j.verdict),
                reason: j.reason,
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
