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
    /// A recorded request rate, e.g. a Prometheus range query (`lab import
    /// --prometheus`): `[t_seconds, rate]` samples, piecewise-linear between
    /// them, inline (`points`) or in a CSV of `t_seconds,rate` rows (`file`,
    /// relative to the scenario). Replayed `repeat` times, starting `time_shift`
    /// into the recording (wrapping around to its start), `speedup` times
    /// faster (as a trace: the same requests in less time, so rates times
    /// `speedup`), with every rate multiplied by `scale`.
    Series {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        points: Option<Vec<[f64; 2]>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<String>,
        #[serde(default = "unit_speed")]
        scale: f64,
        #[serde(default = "unit_speed")]
        speedup: f64,
        #[serde(default)]
        time_shift: Dur,
        #[serde(default = "one")]
        repeat: u32,
        /// The samples of `file`, filled in by the scenario loader.
        #[serde(skip)]
        loaded: RateSamples,
    },
}

fn day() -> Dur {
    Dur::from_secs(86_400)
}

fn unit_speed() -> f64 {
    1.0
}

/// `secs` of a recording played `speedup` times faster, in whole nanoseconds
/// from the phase's start. Every piece boundary of a series is placed with
/// this, so the pieces tile the phase's duration exactly.
pub(crate) fn series_instant_ns(secs: f64, speedup: f64) -> u64 {
    let ns = secs / speedup.max(1e-9) * 1e9;
    if ns.is_finite() && ns > 0.0 {
        ns.round() as u64
    } else {
        0
    }
}

/// Arrival offsets of a loaded trace, in nanoseconds from its first request, before
/// `speedup` is applied. Shared, since a scenario may be cloned for every sweep point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceOffsets(pub Arc<Vec<u64>>);

/// The `[t_seconds, rate]` samples of a series phase's file. Shared, since a
/// scenario may be cloned for every sweep point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateSamples(pub Arc<Vec<[f64; 2]>>);

/// More series pieces than this (samples times `repeat`) would hold the
/// schedule's memory hostage; a longer replay is better a longer recording.
pub const MAX_SERIES_PIECES: u64 = 5_000_000;

/// Checks `[t_seconds, rate]` samples: at least two, times finite and rising,
/// rates finite and non-negative. On a problem, the sample's index and why.
pub fn check_rate_samples(points: &[[f64; 2]]) -> Result<(), (usize, String)> {
    if points.len() < 2 {
        return Err((
            points.len().saturating_sub(1),
            format!(
                "a rate series needs at least two samples, got {}",
                points.len()
            ),
        ));
    }
    for (i, [t, r]) in points.iter().enumerate() {
        if !t.is_finite() {
            return Err((i, format!("time {t} is not a number of seconds")));
        }
        if i > 0 && *t <= points[i - 1][0] {
            return Err((
                i,
                format!(
                    "time {t} s is not after the previous sample's {} s; samples must be in time order, one per instant",
                    points[i - 1][0]
                ),
            ));
        }
        if !r.is_finite() || *r < 0.0 {
            return Err((
                i,
                format!("rate {r} must be a non-negative number of req/s"),
            ));
        }
    }
    Ok(())
}

impl Phase {
    /// A series phase's samples: inline, or loaded from its file (empty
    /// until the loader has read it). Empty for other kinds.
    pub fn series_samples(&self) -> &[[f64; 2]] {
        match self {
            Phase::Series { points, loaded, .. } => points.as_deref().unwrap_or(&loaded.0),
            _ => &[],
        }
    }

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
            Phase::Series {
                speedup, repeat, ..
            } => {
                let samples = self.series_samples();
                let length = match (samples.first(), samples.last()) {
                    (Some(a), Some(b)) => (b[0] - a[0]).max(0.0),
                    _ => 0.0,
                };
                // As the schedule places it: whole repetitions of whole nanoseconds.
                Dur(series_instant_ns(length, *speedup) * u64::from(*repeat))
            }
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
            Phase::Series { .. } => "series",
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
            Phase::Series {
                points,
                file,
                scale,
                speedup,
                time_shift,
                repeat,
                ..
            } => {
                match (points, file) {
                    (Some(_), Some(_)) => out.push((
                        "file",
                        "give the samples once: either `points` or `file`, not both".into(),
                    )),
                    (None, None) => out.push((
                        "points",
                        "a series needs its samples: points = [[0, 5.0], [60, 7.5]] ([t_seconds, rate] pairs) or file = \"rates.csv\" (t_seconds,rate rows)".into(),
                    )),
                    (Some(p), None) => {
                        if let Err((i, msg)) = check_rate_samples(p) {
                            out.push(("points", format!("sample {i}: {msg}")));
                        }
                    }
                    // The loader checks the file's samples as it reads them.
                    (None, Some(_)) => {}
                }
                if !scale.is_finite() || *scale < 0.0 {
                    out.push(("scale", format!("must be non-negative, got {scale}")));
                }
                if !(speedup.is_finite() && *speedup > 0.0) {
                    out.push(("speedup", format!("must be positive, got {speedup}")));
                }
                if *repeat == 0 {
                    out.push(("repeat", "must be at least 1".into()));
                }
                let samples = self.series_samples();
                if check_rate_samples(samples).is_ok() {
                    let length = samples[samples.len() - 1][0] - samples[0][0];
                    if length.is_finite() && time_shift.0 as f64 / 1e9 >= length {
                        out.push((
                            "time_shift",
                            format!(
                                "is {time_shift} but the recording lasts {}; the shift must be shorter than the recording",
                                Dur((length * 1e9) as u64)
                            ),
                        ));
                    }
                    if samples.len() as u64 * u64::from(*repeat) > MAX_SERIES_PIECES {
                        out.push((
                            "repeat",
                            format!(
                                "{repeat} repeats of {} samples are more than the {MAX_SERIES_PIECES} pieces lab plays; repeat fewer times or resample the series",
                                samples.len()
                            ),
                        ));
                    }
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
