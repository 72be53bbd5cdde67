//! results.json of a cluster run: the merged load shards' figures (what
//! clients saw) with what the cluster was seen doing (replicas, scaling,
//! cold starts, nodes, GPU use) and its cost from observed node-hours at the
//! scenario's prices, laid into the schema every level writes. Pure: the
//! observation is passed in.

use crate::observe::{Observation, PodLife};
use lab_decide::cost;
use lab_results::{
    ColdStartPhases, ColdStarts, Cost, LatencyHistogram, PoolPoint, ReplicaSummary, Results,
    ScalingEvent, ServicePoint, Warning, WarningKind,
};
use lab_scenario::Scenario;
use std::collections::BTreeMap;

const NS: f64 = 1e9;

/// Lays the observation into `r` (the merged shards' results) for a run that
/// ended `end_ns` after the load's start. `pulls` are image pull seconds per
/// pod name (from events). Returns notes on how figures were made.
pub fn lay_into(
    r: &mut Results,
    sc: &Scenario,
    obs: &Observation,
    pulls: &BTreeMap<String, f64>,
    end_ns: u64,
) -> Vec<String> {
    let mut notes = Vec::new();
    r.level = lab_results::Level::Cluster;
    r.run.duration_seconds = sc.duration().nanos() as f64 / NS;
    r.run.end_seconds = end_ns as f64 / NS;
    lay_timeseries(r, sc, obs, end_ns);
    lay_replicas(r, sc, obs, end_ns);
    r.scaling_events = obs
        .scalings
        .iter()
        .filter(|s| s.t_ns <= end_ns)
        .map(|s| {
            let t = &obs.targets[s.target];
            ScalingEvent {
                t_seconds: s.t_ns as f64 / NS,
                target: t.name.clone(),
                autoscaler: t.autoscaler.clone(),
                from: s.from,
                to: s.to,
                reason: format!(
                    "observed: spec.replicas of {} went {} -> {}",
                    s.deployments.join(", "),
                    s.from,
                    s.to
                ),
            }
        })
        .collect();
    r.cold_starts = cold_starts(r, obs, pulls, end_ns);
    r.cost = cost_of(sc, obs, end_ns);
    r.warnings.extend(warnings(sc, obs, r));
    notes.push(
        "cluster level: replicas, nodes and pod lifecycles were sampled from the Kubernetes API once \
         per interval; pod condition times have one-second resolution"
            .to_string(),
    );
    notes.push(
        "cold-start phases at the cluster level: node_provisioning is creation to PodScheduled, \
         image_pull is the kubelet's Pulled events, readiness is the rest up to the container's \
         start, and model_load is the container's start to Ready (so it includes the wait for \
         the first passing readiness probe)"
            .to_string(),
    );
    notes.push(
        "requests_delayed by cold starts is estimated at interval resolution: arrivals in the \
         intervals where their service had no ready replica"
            .to_string(),
    );
    if obs.unpooled_nodes > 0 {
        notes.push(format!(
            "{} node(s) are in none of the scenario's pools (no `{}` label naming one, and \
             no pod of the scenario ran there): they are not counted in any pool nor in the cost",
            obs.unpooled_nodes,
            crate::observe::POOL_LABEL
        ));
    }
    if obs.samples.iter().all(|s| s.gpu_busy.is_none()) {
        notes.push(
            "GPU use is not reported: no DCGM series (DCGM_FI_DEV_GPU_UTIL) was found".to_string(),
        );
    }
    notes
}

/// The last sample taken at or before `at` (the state at an interval's end,
/// as the other levels report it), else the first.
fn sample_at(obs: &Observation, at: u64) -> Option<&crate::observe::Sample> {
    obs.samples
        .iter()
        .rev()
        .find(|s| s.t_ns <= at)
        .or(obs.samples.first())
}

fn lay_timeseries(r: &mut Results, sc: &Scenario, obs: &Observation, end_ns: u64) {
    let interval = sc.run.interval.nanos().max(1);
    let points = end_ns.div_ceil(interval).max(1) as usize;
    while r.timeseries.len() < points {
        let t = r.timeseries.len() as f64 * interval as f64 / NS;
        r.timeseries.push(lab_results::TimePoint::empty(
            t,
            sc.services.iter().map(|s| s.name.as_str()),
        ));
    }
    r.timeseries.truncate(points);
    for (i, p) in r.timeseries.iter_mut().enumerate() {
        let at = ((i as u64 + 1) * interval).min(end_ns);
        for (si, spec) in sc.services.iter().enumerate() {
            if !p.services.iter().any(|s| s.name == spec.name) {
                p.services.push(ServicePoint::empty(&spec.name));
            }
            let Some(sample) = sample_at(obs, at) else {
                continue;
            };
            if let (Some(sp), Some((desired, ready))) = (
                p.services.iter_mut().find(|s| s.name == spec.name),
                sample.services.get(si),
            ) {
                sp.desired_replicas = *desired;
                sp.ready_replicas = *ready;
            }
        }
        if let Some(sample) = sample_at(obs, at) {
            p.node_pools = obs
                .pools
                .iter()
                .zip(&sample.pools)
                .zip(&sample.pool_gpu_busy)
                .map(|((name, (nodes, ready)), busy)| PoolPoint {
                    name: name.clone(),
                    nodes: *nodes,
                    ready_nodes: *ready,
                    gpu_busy_fraction: busy.unwrap_or(0.0),
                })
                .collect();
            p.gpu_busy_fraction = sample.gpu_busy.unwrap_or(0.0);
        }
        p.cost_usd = node_usd(sc, obs, at);
    }
}

/// Per service: ready replicas' least, most and time-weighted mean over the
/// run (each sample holds until the next), the most desired, and restarts.
fn lay_replicas(r: &mut Results, sc: &Scenario, obs: &Observation, end_ns: u64) {
    for summary in r.services.iter_mut() {
        let Some(si) = sc.services.iter().position(|s| s.name == summary.name) else {
            continue;
        };
        let mut area = 0.0;
        let mut rep = ReplicaSummary {
            min_ready: u32::MAX,
            ..Default::default()
        };
        let within: Vec<&crate::observe::Sample> =
            obs.samples.iter().filter(|s| s.t_ns <= end_ns).collect();
        for (k, s) in within.iter().enumerate() {
            let (desired, ready) = s.services[si];
            let until = within.get(k + 1).map_or(end_ns, |n| n.t_ns);
            area += f64::from(ready) * until.saturating_sub(s.t_ns) as f64 / NS;
            rep.min_ready = rep.min_ready.min(ready);
            rep.max_ready = rep.max_ready.max(ready);
            rep.max_desired = rep.max_desired.max(desired);
        }
        if rep.min_ready == u32::MAX {
            rep.min_ready = 0;
        }
        rep.mean_ready = area / (end_ns as f64 / NS).max(1e-9);
        rep.restarts = obs
            .pods
            .values()
            .filter(|p| obs.targets[p.target].service == si)
            .map(|p| u64::from(p.restarts))
            .sum();
        summary.replicas = rep;
    }
}

/// Pods that became ready after the load started, with their phases.
fn cold_starts(
    r: &Results,
    obs: &Observation,
    pulls: &BTreeMap<String, f64>,
    end_ns: u64,
) -> ColdStarts {
    let mut durations = LatencyHistogram::new();
    let mut phases = [0.0f64; 4];
    let mut count = 0u64;
    let cold = |p: &&PodLife| p.created >= 0 && p.ready.is_some_and(|t| t <= end_ns as i64);
    for p in obs.pods.values().filter(cold) {
        let ready = p.ready.unwrap_or(p.created);
        count += 1;
        durations.record_ns((ready - p.created).max(1) as u64);
        let scheduled = p.scheduled.unwrap_or(p.created).clamp(p.created, ready);
        let started = p.started.unwrap_or(scheduled).clamp(scheduled, ready);
        let pull = pulls.get(&p.name).copied().unwrap_or(0.0);
        let to_start = (started - scheduled) as f64 / NS;
        phases[0] += (scheduled - p.created) as f64 / NS;
        phases[1] += pull.min(to_start);
        phases[2] += (ready - started) as f64 / NS;
        phases[3] += (to_start - pull).max(0.0);
    }
    let n = count.max(1) as f64;
    // Arrivals of the intervals in which their service had no ready replica.
    let secs = r.run.interval_seconds.max(1e-9);
    let delayed: f64 = r
        .timeseries
        .iter()
        .flat_map(|p| p.services.iter())
        .filter(|s| s.ready_replicas == 0)
        .map(|s| (s.arrival_rps * secs).round())
        .sum();
    ColdStarts {
        count,
        duration_seconds: durations.summary(),
        requests_delayed: delayed as u64,
        phases_seconds: ColdStartPhases {
            node_provisioning: phases[0] / n,
            image_pull: phases[1] / n,
            model_load: phases[2] / n,
            readiness: phases[3] / n,
        },
    }
}

/// Nanoseconds a node was up within `[0, until]`.
fn up_ns(created: i64, gone: Option<i64>, until: u64) -> u128 {
    let from = created.max(0) as i128;
    let to = gone.map_or(until as i128, |g| (g.max(0) as i128).min(until as i128));
    (to - from).max(0) as u128
}

/// What the pools' nodes cost from the load's start to `until`.
fn node_usd(sc: &Scenario, obs: &Observation, until: u64) -> f64 {
    obs.nodes
        .values()
        .filter_map(|n| {
            let pool = &sc.node_pools[n.pool?];
            Some(cost::pool_usage(up_ns(n.created, n.gone, until), pool.price_per_hour).usd)
        })
        .sum()
}

/// Observed node-hours at the scenario's prices, and each pod charged its
/// share of a node while it was bound, by lab-decide's rule (the other
/// levels' allocation).
fn cost_of(sc: &Scenario, obs: &Observation, end_ns: u64) -> Cost {
    let pools = sc
        .node_pools
        .iter()
        .enumerate()
        .map(|(i, p)| cost::PoolTime {
            name: &p.name,
            node_ns: obs
                .nodes
                .values()
                .filter(|n| n.pool == Some(i))
                .map(|n| up_ns(n.created, n.gone, end_ns))
                .sum(),
            price_per_hour: p.price_per_hour,
            gpus_per_node: p.gpus_per_node,
        });
    let mut charged = vec![0.0; sc.services.len()];
    for p in obs.pods.values() {
        let si = obs.targets[p.target].service;
        let spec = &sc.services[si];
        let Some(pool) = sc.pool_for(spec) else {
            continue;
        };
        let Some(bound) = p.scheduled else { continue };
        let gpu = spec.gpu_request();
        let share = cost::node_share(
            cost::Requested {
                cpu: spec.cpu_request(),
                memory_bytes: spec.memory_request(),
                gpu: &gpu,
            },
            pool.node_shape(),
            pool.gpu.as_deref().and_then(lab_gpu::gpu_type),
        );
        let from = bound.max(0) as u64;
        let until = p.ended.map_or(end_ns, |e| (e.max(0) as u64).min(end_ns));
        charged[si] += cost::pod_usd(from, until, share, pool.price_per_hour);
    }
    let services = sc.services.iter().map(|s| s.name.clone()).zip(charged);
    cost::tally(pools, services, end_ns)
}

fn warnings(sc: &Scenario, obs: &Observation, r: &Results) -> Vec<Warning> {
    let mut out = Vec::new();
    for (si, spec) in sc.services.iter().enumerate() {
        let stuck: Vec<&PodLife> = obs
            .pods
            .values()
            .filter(|p| {
                obs.targets[p.target].service == si && p.ended.is_none() && p.scheduled.is_none()
            })
            .collect();
        if let Some(first) = stuck.first() {
            out.push(Warning {
                kind: WarningKind::Unschedulable,
                service: Some(spec.name.clone()),
                message: format!(
                    "{} pod(s) of `{}` were still not scheduled at the end{}",
                    stuck.len(),
                    spec.name,
                    first
                        .unschedulable
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
            });
        }
        let arrived = r
            .services
            .iter()
            .find(|s| s.name == spec.name)
            .map_or(0, |s| s.requests.arrived);
        let ever_ready = obs
            .samples
            .iter()
            .any(|s| s.services.get(si).is_some_and(|(_, ready)| *ready > 0));
        if arrived > 0 && !ever_ready {
            out.push(Warning {
                kind: WarningKind::NoReadyReplica,
                service: Some(spec.name.clone()),
                message: format!(
                    "`{}` received {arrived} request(s) but no ready replica was seen during the run",
                    spec.name
                ),
            });
        }
    }
    out
}
