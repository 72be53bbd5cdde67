//! What the HPA controller does with a metric proposal: stabilization over past
//! recommendations, then either the legacy clamp (no `behavior`) or the behavior's
//! scaling policies (upstream `horizontal.go`).

use crate::spec::{PolicyType, SelectPolicy};
use crate::Time;

/// One direction of `behavior` with upstream's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    pub window: Time,
    pub select: SelectPolicy,
    pub policies: Vec<Policy>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    pub kind: PolicyType,
    pub value: u32,
    pub period: Time,
}

impl Rules {
    /// `GenerateHPAScaleUpRules` defaults: no window, Max of 4 pods or 100% per 15 s.
    pub fn default_up() -> Rules {
        Rules {
            window: Time::ZERO,
            select: SelectPolicy::Max,
            policies: vec![
                Policy {
                    kind: PolicyType::Pods,
                    value: 4,
                    period: Time::from_secs(15),
                },
                Policy {
                    kind: PolicyType::Percent,
                    value: 100,
                    period: Time::from_secs(15),
                },
            ],
        }
    }
    /// `GenerateHPAScaleDownRules` defaults: the controller's window, 100% per 15 s.
    pub fn default_down(window: Time) -> Rules {
        Rules {
            window,
            select: SelectPolicy::Max,
            policies: vec![Policy {
                kind: PolicyType::Percent,
                value: 100,
                period: Time::from_secs(15),
            }],
        }
    }
    fn longest_period(&self) -> Time {
        self.policies
            .iter()
            .map(|p| p.period)
            .max()
            .unwrap_or(Time::ZERO)
    }
}

/// `t` lies strictly after `now - span` (saturating at the start of time).
fn after_cutoff(t: Time, now: Time, span: Time) -> bool {
    t + span > now
}

/// Past recommendations and scale events of one HPA.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    recommendations: Vec<(u32, Time)>,
    up_events: Vec<(u32, Time)>,
    down_events: Vec<(u32, Time)>,
}

impl History {
    /// A history with given recommendations and scale events, e.g. to replay a
    /// controller's state: each entry is (replicas or change, when).
    pub fn from_parts(
        recommendations: Vec<(u32, Time)>,
        up_events: Vec<(u32, Time)>,
        down_events: Vec<(u32, Time)>,
    ) -> History {
        History {
            recommendations,
            up_events,
            down_events,
        }
    }

    pub fn recommendations(&self) -> &[(u32, Time)] {
        &self.recommendations
    }

    pub fn is_seeded(&self) -> bool {
        !self.recommendations.is_empty()
    }

    /// The first reconcile records the current replicas, so a restarted controller
    /// cannot scale down before a full window has passed.
    pub fn seed(&mut self, current: u32, now: Time) {
        if self.recommendations.is_empty() {
            self.recommendations.push((current, now));
        }
    }

    fn store(&mut self, proposal: u32, now: Time, keep: Time) {
        self.recommendations.retain(|&(_, t)| t + keep >= now);
        self.recommendations.push((proposal, now));
    }

    /// Legacy `stabilizeRecommendation`: the highest proposal inside the downscale window.
    pub fn stabilize_legacy(&mut self, proposal: u32, now: Time, window: Time) -> u32 {
        let mut best = proposal;
        for &(r, t) in &self.recommendations {
            if t + window >= now {
                best = best.max(r);
            }
        }
        self.store(proposal, now, window);
        best
    }

    /// `stabilizeRecommendationWithBehaviors`: rise no higher than the lowest recent
    /// proposal of the up window, fall no lower than the highest of the down window.
    pub fn stabilize(
        &mut self,
        current: u32,
        proposal: u32,
        now: Time,
        up: &Rules,
        down: &Rules,
    ) -> u32 {
        let (mut up_rec, mut down_rec) = (proposal, proposal);
        for &(r, t) in &self.recommendations {
            if after_cutoff(t, now, up.window) {
                up_rec = up_rec.min(r);
            }
            if after_cutoff(t, now, down.window) {
                down_rec = down_rec.max(r);
            }
        }
        self.store(proposal, now, up.window.max(down.window));
        current.max(up_rec).min(down_rec)
    }

    fn change_in(events: &[(u32, Time)], now: Time, period: Time) -> i64 {
        events
            .iter()
            .filter(|&&(_, t)| after_cutoff(t, now, period))
            .map(|&(c, _)| c as i64)
            .sum()
    }

    /// Replicas at the start of a policy period: current minus what was added in it plus
    /// what was removed in it.
    fn period_start(&self, current: u32, now: Time, period: Time) -> i64 {
        current as i64 - Self::change_in(&self.up_events, now, period)
            + Self::change_in(&self.down_events, now, period)
    }

    /// `calculateScaleUpLimitWithScalingRules`.
    pub fn scale_up_limit(&self, current: u32, now: Time, rules: &Rules) -> i64 {
        let pick: fn(i64, i64) -> i64 = match rules.select {
            SelectPolicy::Disabled => return current as i64,
            SelectPolicy::Min => i64::min,
            SelectPolicy::Max => i64::max,
        };
        let mut result: Option<i64> = None;
        for p in &rules.policies {
            let start = self.period_start(current, now, p.period);
            let proposed = match p.kind {
                PolicyType::Pods => start + p.value as i64,
                PolicyType::Percent => {
                    (start as f64 * (1.0 + p.value as f64 / 100.0)).ceil() as i64
                }
            };
            result = Some(result.map_or(proposed, |r| pick(r, proposed)));
        }
        result.unwrap_or(current as i64)
    }

    /// `calculateScaleDownLimitWithBehaviors`.
    pub fn scale_down_limit(&self, current: u32, now: Time, rules: &Rules) -> i64 {
        // Max selects the largest change, i.e. the lowest replica count.
        let pick: fn(i64, i64) -> i64 = match rules.select {
            SelectPolicy::Disabled => return current as i64,
            SelectPolicy::Min => i64::max,
            SelectPolicy::Max => i64::min,
        };
        let mut result: Option<i64> = None;
        for p in &rules.policies {
            let start = self.period_start(current, now, p.period);
            let proposed = match p.kind {
                PolicyType::Pods => start - p.value as i64,
                PolicyType::Percent => (start as f64 * (1.0 - p.value as f64 / 100.0)) as i64,
            };
            result = Some(result.map_or(proposed, |r| pick(r, proposed)));
        }
        result.unwrap_or(current as i64)
    }

    /// `storeScaleEvent`: remembers a change, dropping events older than any period.
    pub fn store_event(&mut self, prev: u32, new: u32, now: Time, up: &Rules, down: &Rules) {
        if new > prev {
            let keep = up.longest_period();
            self.up_events.retain(|&(_, t)| t + keep >= now);
            self.up_events.push((new - prev, now));
        } else if new < prev {
            let keep = down.longest_period();
            self.down_events.retain(|&(_, t)| t + keep >= now);
            self.down_events.push((prev - new, now));
        }
    }
}

/// Why the final number differs from the stabilized one, for the decision's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    None,
    TooFewReplicas,
    TooManyReplicas,
    ScaleUpLimit,
    ScaleDownLimit,
}

/// `convertDesiredReplicasWithBehaviorRate`: `bounds` are (minReplicas, maxReplicas),
/// `rules` the (scaleUp, scaleDown) rules.
pub fn apply_rate(
    hist: &History,
    current: u32,
    desired: u32,
    bounds: (u32, u32),
    now: Time,
    rules: (&Rules, &Rules),
) -> (u32, Limit) {
    let ((min, max), (up, down)) = (bounds, rules);
    if desired > current {
        let limit = hist.scale_up_limit(current, now, up).max(current as i64);
        let (allowed, why) = if (max as i64) > limit {
            (limit as u32, Limit::ScaleUpLimit)
        } else {
            (max, Limit::TooManyReplicas)
        };
        if desired > allowed {
            return (allowed, why);
        }
    } else if desired < current {
        let limit = hist
            .scale_down_limit(current, now, down)
            .min(current as i64);
        let (allowed, why) = if (min as i64) < limit {
            (limit.max(0) as u32, Limit::ScaleDownLimit)
        } else {
            (min, Limit::TooFewReplicas)
        };
        if desired < allowed {
            return (allowed, why);
        }
    }
    (desired, Limit::None)
}

/// Legacy `convertDesiredReplicasWithRules`: clamp to [min, min(max, max(2 x current, 4))].
pub fn apply_legacy(current: u32, desired: u32, min: u32, max: u32) -> (u32, Limit) {
    let up_limit = ((2.0 * current as f64).max(4.0)) as u32;
    let (allowed, why) = if max > up_limit {
        (up_limit, Limit::ScaleUpLimit)
    } else {
        (max, Limit::TooManyReplicas)
    };
    if desired < min {
        (min, Limit::TooFewReplicas)
    } else if desired > allowed {
        (allowed, why)
    } else {
        (desired, Limit::None)
    }
}
