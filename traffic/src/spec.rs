//! The `[[traffic]]` section of a scenario.

use lab_units::Dur;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// One stream of requests to one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TrafficSpec {
    /// The service (InferenceService name) this stream targets; may be left out
    /// when the scenario has a single service.
    #[serde(default)]
    pub service: Option<String>,
    /// Inter-arrival process.
    #[serde(default)]
    pub arrivals: Arrivals,
    /// Rows (instances) each request carries.
    #[serde(default = "one")]
    pub rows_per_request: u32,
    /// Phases played one after the other.
    pub phases: Vec<Phase>,
}

fn one() -> u32 {
    1
}

/// Inter-arrival process, shaped by the phases' rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(
    tag = "process",
    rename_all = "lowercase",
    deny_unknown_fields,
    try_from = "ArrivalsAsWritten"
)]
#[schemars(with = "ArrivalsSchema")]
pub enum Arrivals {
    /// Exponential gaps (CV 1).
    #[default]
    Poisson,
    /// Gamma gaps with the given coefficient of variation: `cv > 1` is bursty.
    Gamma { cv: f64 },
    /// Evenly spaced arrivals (CV 0), as fixed-rate load tools send.
    Uniform,
}

/// `arrivals` as written. serde lets an internally tagged unit variant
/// ignore extra keys, so `{ process = "poisson", cv = 2 }` would pass in
/// silence; reading the keys first lets a misplaced `cv` be refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArrivalsAsWritten {
    process: ProcessName,
    #[serde(default)]
    cv: Option<f64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ProcessName {
    Poisson,
    Gamma,
    Uniform,
}

/// The JSON Schema of `arrivals`: what `ArrivalsAsWritten` accepts once its
/// check has run, one shape per process (`cv` with gamma only).
#[derive(schemars::JsonSchema)]
#[serde(tag = "process", rename_all = "lowercase", deny_unknown_fields)]
#[allow(dead_code)] // only its schema is used
enum ArrivalsSchema {
    /// Exponential gaps (CV 1).
    Poisson,
    /// Gamma gaps with the given coefficient of variation: `cv > 1` is bursty.
    Gamma { cv: f64 },
    /// Evenly spaced arrivals (CV 0), as fixed-rate load tools send.
    Uniform,
}

impl TryFrom<ArrivalsAsWritten> for Arrivals {
    type Error = String;

    fn try_from(a: ArrivalsAsWritten) -> Result<Arrivals, String> {
        match (a.process, a.cv) {
            (ProcessName::Gamma, Some(cv)) => Ok(Arrivals::Gamma { cv }),
            (ProcessName::Gamma, None) => {
                Err("missing field `cv`: process = \"gamma\" needs it, e.g. { process = \"gamma\", cv = 2.0 }".into())
            }
            (ProcessName::Poisson, None) => Ok(Arrivals::Poisson),
            (ProcessName::Uniform, None) => Ok(Arrivals::Uniform),
            (p, Some(_)) => Err(format!(
                "`cv` applies only to process = \"gamma\" ({} gaps have a CV of {}); \
                 write {{ process = \"gamma\", cv = ... }} for bursty arrivals",
                if matches!(p, ProcessName::Poisson) {
                    "poisson"
                } else {
                    "uniform"
                },
                if matches!(p, ProcessName::Poisson) {
                    1
                } else {
                    0
                },
            )),
        }
    }
}

/// One phase of a traffic stream. Rates are requests per second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Phase {
    Constant {
        rate: f64,
        duration: Dur,
    },
    /// A linear ramp from `from` to `to` req/s.
    Ramp {
        from: f64,
        to: f64,
        duration: Dur,
    },
    /// `base` req/s, then at `at` the rate rises linearly over `rise` to
    /// `base * multiplier`, holds for `hold`, decays over `decay` back to `base`,
    /// and stays there until the phase's `duration` ends.
    Spike {
        base: f64,
        multiplier: f64,
        at: Dur,
        #[serde(default)]
        rise: Dur,
        hold: Dur,
        #[serde(default)]
        decay: Dur,
        duration: Dur,
    },
    /// A daily cycle: the rate moves along a cosine between `trough` and `peak`,
    /// reaching `peak` at `peak_at` into each `period`.
    Diurnal {
        peak: f64,
        trough: f64,
        #[serde(default = "day")]
        period: Dur,
        #[serde(default)]
        peak_at: Dur,
        duration: Dur,
    },
    /// No requests at all.
    Idle {
        duration: Dur,
    },
    /// Replay of a CSV trace of timestamps (first column, or the column named
    /// `TIMESTAMP`), played `speedup` times faster and clipped to `duration` if set.
    Trace {
        file: String,
        #[serde(default = "unit_speed")]
        speedup: f64,
        #[serde(default)]
        duration: Option<Dur>,
        /// Offsets from the trace's first request, filled in by the scenario loader.
        #[serde(skip)]
        offsets: TraceOffsets,
    },
}

fn day() -> Dur {
    Dur::from_secs(86_400)
}

fn unit_speed() -> f64 {
    1.0
}

/// Arrival offsets of a loaded trace, in nanoseconds from its first request, before
/// `speedup` is applied. Shared, since a scenario may be cloned for every sweep point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceOffsets(pub Arc<Vec<u64>>);

impl Phase {
    /// How long the phase lasts.
    pub fn duration(&self) -> Dur {
        match self {
            Phase::Constant { duration, .. }
            | Phase::Ramp { duration, .. }
            | Phase::Spike { duration, .. }
            | Phase::Diurnal { duration, .. }
            | Phase::Idle { duration } => *duration,
            Phase::Trace {
                speedup,
                duration,
                offsets,
                ..
            } => duration.unwrap_or_else(|| {
                let last = offsets.0.last().copied().unwrap_or(0);
                Dur((last as f64 / speedup.max(1e-9)).ceil() as u64 + 1)
            }),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Phase::Constant { .. } => "constant",
            Phase::Ramp { .. } => "ramp",
            Phase::Spike { .. } => "spike",
            Phase::Diurnal { .. } => "diurnal",
            Phase::Idle { .. } => "idle",
            Phase::Trace { .. } => "trace",
        }
    }

    /// Problems with the phase's own numbers, as `(field, message)` pairs.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut rate = |field: &'static str, v: f64| {
            if !v.is_finite() || v < 0.0 {
                out.push((field, format!("must be a non-negative rate, got {v}")));
            }
        };
        match self {
            Phase::Constant { rate: r, .. } => rate("rate", *r),
            Phase::Ramp { from, to, .. } => {
                rate("from", *from);
                rate("to", *to);
            }
            Phase::Spike {
                base,
                multiplier,
                at,
                rise,
                hold,
                decay,
                duration,
            } => {
                rate("base", *base);
                if !multiplier.is_finite() || *multiplier < 0.0 {
                    out.push((
                        "multiplier",
                        format!("must be non-negative, got {multiplier}"),
                    ));
                }
                let end = at.0 + rise.0 + hold.0 + decay.0;
                if end > duration.0 {
                    out.push((
                        "duration",
                        format!(
                            "is {duration} but the spike ends at {} (at + rise + hold + decay)",
                            Dur(end)
                        ),
                    ));
                }
            }
            Phase::Diurnal {
                peak,
                trough,
                period,
                ..
            } => {
                rate("peak", *peak);
                rate("trough", *trough);
                if trough > peak {
                    out.push(("trough", format!("{trough} is above the peak {peak}")));
                }
                if period.0 == 0 {
                    out.push(("period", "must be longer than zero".into()));
                }
            }
            Phase::Idle { .. } => {}
            Phase::Trace { speedup, .. } => {
                if !(speedup.is_finite() && *speedup > 0.0) {
                    out.push(("speedup", format!("must be positive, got {speedup}")));
                }
            }
        }
        out
    }
}

impl TrafficSpec {
    pub fn duration(&self) -> Dur {
        Dur(self.phases.iter().map(|p| p.duration().0).sum())
    }
}
