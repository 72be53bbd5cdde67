//! The per-metric replica calculation of the HPA controller (upstream
//! `replica_calculator.go`): pod grouping, usage ratios, and the fill-in of missing and
//! unready pods. Values are integer milli-units as upstream keeps them.

use crate::{PodPhase, PodSample, Time};

/// The band around a ratio of 1 inside which nothing changes (inclusive at both ends).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerances {
    pub down: f64,
    pub up: f64,
}

impl Tolerances {
    pub fn both(t: f64) -> Tolerances {
        Tolerances { down: t, up: t }
    }
    pub fn within(&self, ratio: f64) -> bool {
        (1.0 - self.down) <= ratio && ratio <= (1.0 + self.up)
    }
}

/// The controller settings the calculation depends on, and the instant it runs at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalcContext {
    pub now: Time,
    pub tolerances: Tolerances,
    pub cpu_initialization_period: Time,
    pub initial_readiness_delay: Time,
    /// When the metric samples were taken, and the window each one covers.
    pub sample_time: Time,
    pub metric_window: Time,
}

/// How the pods of a target split for one metric.
#[derive(Debug, Default, PartialEq)]
struct Groups {
    ready_count: usize,
    unready: Vec<usize>,
    missing: Vec<usize>,
    ignored: Vec<usize>,
}

/// Splits pods as upstream's `groupPods`; the readiness rules apply to CPU only.
fn group_pods(ctx: &CalcContext, pods: &[PodSample], values: &[Option<i64>], cpu: bool) -> Groups {
    let mut g = Groups::default();
    for (i, pod) in pods.iter().enumerate() {
        if pod.deleting || pod.phase == PodPhase::Failed {
            g.ignored.push(i);
            continue;
        }
        if pod.phase == PodPhase::Pending {
            g.unready.push(i);
            continue;
        }
        if values[i].is_none() {
            g.missing.push(i);
            continue;
        }
        if cpu {
            let (Some(start), Some(transition)) = (pod.start, pod.ready_transition) else {
                g.unready.push(i);
                continue;
            };
            let unready = if start + ctx.cpu_initialization_period > ctx.now {
                // Still initializing: its CPU counts only once a sample lies wholly
                // after it turned ready.
                !pod.ready || ctx.sample_time < transition + ctx.metric_window
            } else {
                // Past initialization: only a pod that has never been ready is unready.
                !pod.ready && start + ctx.initial_readiness_delay > transition
            };
            if unready {
                g.unready.push(i);
                continue;
            }
        }
        g.ready_count += 1;
    }
    g
}

/// What a calculation produced: the proposal and the usage it saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Proposal {
    pub replicas: u32,
    /// Utilization percent (Resource Utilization) or average/total milli-value.
    pub usage: i64,
}

fn clamp_i32(x: f64) -> u32 {
    if x.is_nan() || x <= 0.0 {
        0
    } else if x >= i32::MAX as f64 {
        i32::MAX as u32
    } else {
        x as u32
    }
}

/// Utilization of the pods that have both a value and a request, truncated to a whole
/// percent: (ratio to target, percent, raw average milli-value).
fn utilization_ratio(
    values: &[Option<i64>],
    requests: &[i64],
    target_percent: i32,
) -> Result<(f64, i64, i64), String> {
    let (mut used, mut requested, mut n) = (0i64, 0i64, 0i64);
    for (v, r) in values.iter().zip(requests) {
        if let Some(v) = v {
            used += v;
            requested += r;
            n += 1;
        }
    }
    if requested == 0 {
        return Err("no metrics returned matched known pods".into());
    }
    let percent = (used * 100 / requested) as i32 as i64;
    Ok((percent as f64 / target_percent as f64, percent, used / n))
}

/// Average of the values present, truncated: (ratio to target, average).
fn plain_ratio(values: &[Option<i64>], target: i64) -> (f64, i64) {
    let present: Vec<i64> = values.iter().flatten().copied().collect();
    let avg = if present.is_empty() {
        0
    } else {
        present.iter().sum::<i64>() / present.len() as i64
    };
    (avg as f64 / target as f64, avg)
}

/// Usage ratio to target and the usage itself, for a set of per-pod values.
type RatioFn<'a> = &'a dyn Fn(&[Option<i64>]) -> Result<(f64, i64), String>;

/// The shared core of the Resource and Pods paths. `ratio_of` computes the usage ratio
/// of a set of values; `fill_low` is what a missing pod is assumed to use when usage is
/// below target.
fn replicas_with_fill(
    ctx: &CalcContext,
    current: u32,
    pods: &[PodSample],
    values: &[Option<i64>],
    cpu: bool,
    fill_low: &dyn Fn(usize) -> i64,
    ratio_of: RatioFn,
) -> Result<Proposal, String> {
    if pods.is_empty() {
        return Err("no pods returned by selector while calculating replica count".into());
    }
    let g = group_pods(ctx, pods, values, cpu);
    let mut vals = values.to_vec();
    for &i in g.ignored.iter().chain(&g.unready) {
        vals[i] = None;
    }
    if vals.iter().all(Option::is_none) {
        return Err("did not receive metrics for targeted pods (pods might be unready)".into());
    }
    let (ratio, usage) = ratio_of(&vals)?;
    let up_with_unready = !g.unready.is_empty() && ratio > 1.0;
    if !up_with_unready && g.missing.is_empty() {
        if ctx.tolerances.within(ratio) {
            return Ok(Proposal {
                replicas: current,
                usage,
            });
        }
        // Sized from the pods that reported, not from spec.replicas.
        let replicas = clamp_i32((ratio * g.ready_count as f64).ceil());
        return Ok(Proposal { replicas, usage });
    }
    // Assume the least favourable usage for pods without data, so that their absence
    // can only damp a change, never cause one.
    if ratio < 1.0 {
        for &i in &g.missing {
            vals[i] = Some(fill_low(i));
        }
    } else if ratio > 1.0 {
        for &i in &g.missing {
            vals[i] = Some(0);
        }
    }
    if up_with_unready {
        for &i in &g.unready {
            vals[i] = Some(0);
        }
    }
    let (new_ratio, _) = ratio_of(&vals)?;
    let flipped = (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0);
    if ctx.tolerances.within(new_ratio) || flipped {
        return Ok(Proposal {
            replicas: current,
            usage,
        });
    }
    let counted = vals.iter().filter(|v| v.is_some()).count();
    let replicas = clamp_i32((new_ratio * counted as f64).ceil());
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(Proposal {
            replicas: current,
            usage,
        });
    }
    Ok(Proposal { replicas, usage })
}

/// Resource metric with a Utilization target (`GetResourceReplicas`). `requests` are
/// per-pod requests in the same milli-units as `values`; 0 means no request set.
pub fn resource_utilization_replicas(
    ctx: &CalcContext,
    current: u32,
    target_percent: i32,
    cpu: bool,
    pods: &[PodSample],
    values: &[Option<i64>],
    requests: &[i64],
) -> Result<Proposal, String> {
    if target_percent <= 0 {
        return Err("target utilization must be positive".into());
    }
    let resource = if cpu { "cpu" } else { "memory" };
    // Only pods that count need a request; ignored ones are dropped before this matters
    // upstream too, but a missing request anywhere is an error there.
    if pods
        .iter()
        .zip(requests)
        .any(|(p, &r)| r == 0 && !(p.deleting || p.phase == PodPhase::Failed))
    {
        return Err(format!(
            "missing request for {resource}: set the container's {resource} request to use a Utilization target"
        ));
    }
    let fill = |i: usize| requests[i] * (target_percent.max(100) as i64) / 100;
    let ratio = |v: &[Option<i64>]| {
        utilization_ratio(v, requests, target_percent).map(|(r, pct, _)| (r, pct))
    };
    replicas_with_fill(ctx, current, pods, values, cpu, &fill, &ratio)
}

/// Pods metrics and Resource AverageValue (`GetMetricReplicas`, `GetRawResourceReplicas`).
pub fn plain_metric_replicas(
    ctx: &CalcContext,
    current: u32,
    target_milli: i64,
    cpu: bool,
    pods: &[PodSample],
    values: &[Option<i64>],
) -> Result<Proposal, String> {
    if target_milli <= 0 {
        return Err("target average value must be positive".into());
    }
    let fill = |_| target_milli;
    let ratio = |v: &[Option<i64>]| Ok(plain_ratio(v, target_milli));
    replicas_with_fill(ctx, current, pods, values, cpu, &fill, &ratio)
}

/// Pods in phase Running with Ready=True, as `getReadyPodsCount` counts them.
pub fn running_ready(pods: &[PodSample]) -> u32 {
    pods.iter()
        .filter(|p| p.phase == PodPhase::Running && p.ready)
        .count() as u32
}

/// Object and External metrics with a Value target (`getUsageRatioReplicaCount`).
pub fn value_replicas(
    tolerances: Tolerances,
    current: u32,
    usage_milli: i64,
    target_milli: i64,
    pods: &[PodSample],
) -> Result<Proposal, String> {
    if target_milli <= 0 {
        return Err("target value must be positive".into());
    }
    let ratio = usage_milli as f64 / target_milli as f64;
    let replicas = if current != 0 {
        if tolerances.within(ratio) {
            current
        } else {
            if pods.is_empty() {
                return Err("no pods returned by selector while calculating replica count".into());
            }
            clamp_i32((ratio * running_ready(pods) as f64).ceil())
        }
    } else {
        // Only reachable with minReplicas 0: no tolerance here.
        clamp_i32(ratio.ceil())
    };
    Ok(Proposal {
        replicas,
        usage: usage_milli,
    })
}

/// Object and External metrics with an AverageValue target: sized from the total,
/// tolerance judged against `status.replicas` (`GetExternalPerPodMetricReplicas`).
pub fn per_pod_replicas(
    tolerances: Tolerances,
    status_replicas: u32,
    usage_milli: i64,
    target_milli: i64,
) -> Result<Proposal, String> {
    if target_milli <= 0 {
        return Err("target average value must be positive".into());
    }
    let ratio = usage_milli as f64 / (target_milli as f64 * status_replicas as f64);
    let replicas = if tolerances.within(ratio) {
        status_replicas
    } else {
        clamp_i32((usage_milli as f64 / target_milli as f64).ceil())
    };
    let avg = if status_replicas == 0 {
        usage_milli
    } else {
        (usage_milli as f64 / status_replicas as f64).ceil() as i64
    };
    Ok(Proposal {
        replicas,
        usage: avg,
    })
}

/// A value in milli-units, rounded up as `Quantity.MilliValue` does, but without letting
/// float noise (0.1 * 1000 = 100.00000000000001) add a unit.
pub fn milli(x: f64) -> i64 {
    let m = x * 1000.0;
    let r = m.round();
    if (m - r).abs() < 1e-6 {
        r as i64
    } else {
        m.ceil() as i64
    }
}
