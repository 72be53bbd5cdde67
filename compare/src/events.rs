//! Scaling events of the two runs matched one to one.
//!
//! Per target, in time order: each event of `a` takes the nearest event of
//! `b` in the same direction (up or down) within the window that comes after
//! `b`'s last matched event (so matches never cross), the earlier one on a
//! tie. Greedy, not optimal: it follows the order the decisions were made in.

use crate::scenario;
use lab_results::{Results, ScalingEvent};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventAt {
    pub t_seconds: f64,
    pub from: u32,
    pub to: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchedEvent {
    pub a: EventAt,
    pub b: EventAt,
    /// `b`'s time minus `a`'s: positive when `b` decided later.
    pub offset_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetEvents {
    /// A service, `service/version`, or `pool:NAME`.
    pub target: String,
    pub window_seconds: f64,
    pub matched: Vec<MatchedEvent>,
    pub unmatched_a: Vec<EventAt>,
    pub unmatched_b: Vec<EventAt>,
}

impl TargetEvents {
    pub fn mean_offset_seconds(&self) -> Option<f64> {
        (!self.matched.is_empty()).then(|| {
            self.matched.iter().map(|m| m.offset_seconds).sum::<f64>() / self.matched.len() as f64
        })
    }

    pub fn max_abs_offset_seconds(&self) -> Option<f64> {
        self.matched
            .iter()
            .map(|m| m.offset_seconds.abs())
            .reduce(f64::max)
    }

    pub fn unmatched(&self) -> usize {
        self.unmatched_a.len() + self.unmatched_b.len()
    }
}

fn at(e: &ScalingEvent) -> EventAt {
    EventAt {
        t_seconds: e.t_seconds,
        from: e.from,
        to: e.to,
    }
}

fn direction(e: &ScalingEvent) -> std::cmp::Ordering {
    e.to.cmp(&e.from)
}

/// The window for a target: `fixed` if given, else four periods of what
/// decides it, and at least two time-series intervals.
fn window(a: &Results, b: &Results, target: &str, fixed: Option<f64>) -> f64 {
    if let Some(w) = fixed {
        return w;
    }
    let period = match target.strip_prefix("pool:") {
        Some(_) => Some(scenario::scan_interval(a)),
        None => {
            let service = target.split('/').next().unwrap_or(target);
            scenario::sync_period(a, service).or(scenario::sync_period(b, service))
        }
    };
    let interval = a.run.interval_seconds.max(b.run.interval_seconds);
    (4.0 * period.unwrap_or(0.0)).max(2.0 * interval)
}

pub(crate) fn match_all(a: &Results, b: &Results, fixed: Option<f64>) -> Vec<TargetEvents> {
    let targets: BTreeSet<&str> = a
        .scaling_events
        .iter()
        .chain(&b.scaling_events)
        .map(|e| e.target.as_str())
        .collect();
    targets
        .into_iter()
        .map(|target| {
            let of = |r: &'_ Results| -> Vec<ScalingEvent> {
                let mut v: Vec<ScalingEvent> = r
                    .scaling_events
                    .iter()
                    .filter(|e| e.target == target)
                    .cloned()
                    .collect();
                v.sort_by(|x, y| x.t_seconds.total_cmp(&y.t_seconds));
                v
            };
            let w = window(a, b, target, fixed);
            let (ea, eb) = (of(a), of(b));
            let mut taken = vec![false; eb.len()];
            let (mut matched, mut unmatched_a) = (Vec::new(), Vec::new());
            let mut next = 0;
            for x in &ea {
                let pick = (next..eb.len())
                    .filter(|&j| {
                        direction(&eb[j]) == direction(x)
                            && (eb[j].t_seconds - x.t_seconds).abs() <= w
                    })
                    .min_by(|&i, &j| {
                        let d = |k: usize| (eb[k].t_seconds - x.t_seconds).abs();
                        d(i).total_cmp(&d(j)).then(i.cmp(&j))
                    });
                match pick {
                    Some(j) => {
                        taken[j] = true;
                        next = j + 1;
                        matched.push(MatchedEvent {
                            a: at(x),
                            b: at(&eb[j]),
                            offset_seconds: eb[j].t_seconds - x.t_seconds,
                        });
                    }
                    None => unmatched_a.push(at(x)),
                }
            }
            let unmatched_b = eb
                .iter()
                .zip(&taken)
                .filter(|(_, t)| !**t)
                .map(|(e, _)| at(e))
                .collect();
            TargetEvents {
                target: target.to_string(),
                window_seconds: w,
                matched,
                unmatched_a,
                unmatched_b,
            }
        })
        .collect()
}
