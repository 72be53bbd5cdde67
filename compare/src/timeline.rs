//! Replica timelines side by side: both runs' time series read on one grid,
//! the largest gap, and the lag that best aligns them.
//!
//! The lag is the shift of `b` that maximises the Pearson correlation of the
//! overlapping samples (a normalised cross-correlation), searched up to a third
//! of the run either way so the overlap always holds two thirds of it, and at
//! most [`MAX_LAG_STEPS`] grid steps (a day at 10 s stays quick). Its
//! resolution is the grid step, the finer of the two runs' time-series
//! intervals. Positive: `b` changes later than `a`. Ties go to the smaller
//! shift, so two timelines equal at several shifts (a flat stretch) read as
//! not lagging.

use lab_results::Results;
use serde::{Deserialize, Serialize};

/// The largest shift tried, in grid steps.
pub const MAX_LAG_STEPS: usize = 1000;

/// How one timeline (ready or desired replicas) of `b` lines up with `a`'s.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TimelineFit {
    /// Largest `|b - a|` at the same instant.
    pub max_gap: u32,
    /// The lag of `b` behind `a` that best aligns the two.
    pub lag_seconds: f64,
    /// `lag_seconds` in periods of the service's autoscaler.
    pub lag_periods: Option<f64>,
    /// The correlation at that lag; absent when either timeline is flat over
    /// every shift tried (nothing to align: the lag is then 0).
    pub correlation: Option<f64>,
    /// Largest `|b - a|` once `b` is shifted back by the lag.
    pub max_gap_aligned: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicaComparison {
    /// The period at which the autoscaler can change the count (HPA sync
    /// period, KPA tick); absent for a fixed count.
    pub sync_period_seconds: Option<f64>,
    /// Grid step both timelines were read on.
    pub step_seconds: f64,
    /// Grid points in the span both runs cover.
    pub samples: usize,
    pub ready: TimelineFit,
    pub desired: TimelineFit,
}

pub(crate) fn compare(
    a: &Results,
    b: &Results,
    service: &str,
    period: Option<f64>,
) -> ReplicaComparison {
    let (sa, sb) = (series(a, service), series(b, service));
    let step = [a.run.interval_seconds, b.run.interval_seconds]
        .into_iter()
        .filter(|i| i.is_finite() && *i > 0.0)
        .fold(f64::INFINITY, f64::min);
    let grid = match (sa.first(), sa.last(), sb.first(), sb.last()) {
        (Some(fa), Some(la), Some(fb), Some(lb)) if step.is_finite() => {
            let (t0, t1) = (fa.0.max(fb.0), la.0.min(lb.0));
            let n = if t1 >= t0 {
                ((t1 - t0) / step + 1e-9).floor() as usize + 1
            } else {
                0
            };
            (0..n).map(|i| t0 + i as f64 * step).collect()
        }
        _ => Vec::new(),
    };
    let read = |s: &[(f64, u32, u32)], pick: fn(&(f64, u32, u32)) -> u32| -> Vec<f64> {
        grid.iter()
            .map(|&t| f64::from(pick(at(s, t, step))))
            .collect()
    };
    let fit = |pick: fn(&(f64, u32, u32)) -> u32| {
        best_fit(&read(&sa, pick), &read(&sb, pick), step, period)
    };
    ReplicaComparison {
        sync_period_seconds: period,
        step_seconds: if step.is_finite() { step } else { 0.0 },
        samples: grid.len(),
        ready: fit(|p| p.1),
        desired: fit(|p| p.2),
    }
}

/// (t, ready, desired) of one service, in time order.
fn series(r: &Results, service: &str) -> Vec<(f64, u32, u32)> {
    let mut out: Vec<(f64, u32, u32)> = r
        .timeseries
        .iter()
        .filter_map(|p| {
            let s = p.services.iter().find(|s| s.name == service)?;
            Some((p.t_seconds, s.ready_replicas, s.desired_replicas))
        })
        .collect();
    out.sort_by(|x, y| x.0.total_cmp(&y.0));
    out
}

/// The point in force at `t`: the last at or before it (the first before any).
/// Only called with a non-empty series (the grid is empty otherwise).
fn at(s: &[(f64, u32, u32)], t: f64, step: f64) -> &(f64, u32, u32) {
    let i = s.partition_point(|p| p.0 <= t + step * 1e-6);
    &s[i.saturating_sub(1)]
}

fn gap(a: &[f64], b: &[f64], lag: isize) -> u32 {
    pairs(a, b, lag)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max) as u32
}

/// `(a[i], b[i + lag])` over the overlap.
fn pairs<'s>(a: &'s [f64], b: &'s [f64], lag: isize) -> impl Iterator<Item = (f64, f64)> + 's {
    let n = a.len().min(b.len()) as isize;
    let from = (-lag).max(0);
    let to = (n - lag).min(n);
    (from..to.max(from)).map(move |i| (a[i as usize], b[(i + lag) as usize]))
}

fn pearson(a: &[f64], b: &[f64], lag: isize) -> Option<f64> {
    let (mut n, mut sx, mut sy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs(a, b, lag) {
        n += 1.0;
        sx += x;
        sy += y;
    }
    if n < 2.0 {
        return None;
    }
    let (mx, my) = (sx / n, sy / n);
    let (mut cov, mut vx, mut vy) = (0.0, 0.0, 0.0);
    for (x, y) in pairs(a, b, lag) {
        cov += (x - mx) * (y - my);
        vx += (x - mx) * (x - mx);
        vy += (y - my) * (y - my);
    }
    (vx > 0.0 && vy > 0.0).then(|| cov / (vx * vy).sqrt())
}

fn best_fit(a: &[f64], b: &[f64], step: f64, period: Option<f64>) -> TimelineFit {
    let n = a.len().min(b.len());
    let max_lag = (n / 3).min(MAX_LAG_STEPS) as isize;
    let mut best: Option<(isize, f64)> = None;
    // Shifts in order of size (0, 1, -1, 2, -2, ...), so only a clearly
    // better correlation moves the answer away from a smaller shift.
    for k in 0..=max_lag {
        for lag in if k == 0 { vec![0] } else { vec![k, -k] } {
            if let Some(c) = pearson(a, b, lag) {
                if best.is_none_or(|(_, bc)| c > bc + 1e-9) {
                    best = Some((lag, c));
                }
            }
        }
    }
    let (lag, correlation) = match best {
        Some((l, c)) => (l, Some(c)),
        None => (0, None),
    };
    let lag_seconds = lag as f64 * step;
    TimelineFit {
        max_gap: gap(a, b, 0),
        lag_seconds,
        lag_periods: period.map(|p| lag_seconds / p),
        correlation,
        max_gap_aligned: gap(a, b, lag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(n: usize, up_at: usize, down_at: usize, low: f64, high: f64) -> Vec<f64> {
        (0..n)
            .map(|i| {
                if (up_at..down_at).contains(&i) {
                    high
                } else {
                    low
                }
            })
            .collect()
    }

    #[test]
    fn finds_a_known_shift_either_way() {
        let a = steps(60, 20, 35, 2.0, 6.0);
        for shift in [-4isize, 0, 3, 7] {
            let b = steps(60, (20 + shift) as usize, (35 + shift) as usize, 2.0, 6.0);
            let f = best_fit(&a, &b, 10.0, Some(15.0));
            assert_eq!(f.lag_seconds, shift as f64 * 10.0, "shift {shift}");
            assert_eq!(f.lag_periods, Some(shift as f64 * 10.0 / 15.0));
            assert_eq!(f.max_gap_aligned, 0);
            assert_eq!(f.max_gap, if shift == 0 { 0 } else { 4 });
        }
    }

    #[test]
    fn flat_timelines_have_nothing_to_align() {
        let a = vec![3.0; 30];
        let b = vec![4.0; 30];
        let f = best_fit(&a, &b, 10.0, None);
        assert_eq!((f.lag_seconds, f.correlation, f.max_gap), (0.0, None, 1));
    }
}
