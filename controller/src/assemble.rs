//! results.json of a local run: the load generator's figures (what clients
//! saw) with the controller's (replicas, nodes, scaling, cold starts, cost)
//! laid into the same schema the simulator writes.

use lab_results::{
    ColdStartPhases, ColdStarts, Cost, LatencyHistogram, PoolPoint, ReplicaSummary, RequestCounts,
    Results, VersionSummary, Warning, WarningKind,
};

use crate::controller::{PodState, State};

const NS: f64 = 1e9;

pub(crate) fn results(st: &State, mut r: Results, end: u64, complete: bool) -> Results {
    let sc = st.sc;
    r.level = lab_results::Level::Local;
    r.complete &= complete;
    r.seed = st.seed;
    r.run.duration_seconds = sc.duration().nanos() as f64 / NS;
    r.run.end_seconds = end as f64 / NS;

    // Time series: the load generator's points, with replicas, nodes and
    // cost from the controller's sample at each point's start.
    let interval = sc.run.interval.nanos().max(1);
    let points = end.div_ceil(interval) as usize;
    while r.timeseries.len() < points {
        let t = r.timeseries.len() as f64 * interval as f64 / NS;
        let mut p = r.timeseries.last().cloned().unwrap_or_else(|| {
            lab_results::TimePoint::empty(0.0, sc.services.iter().map(|s| s.name.as_str()))
        });
        p.t_seconds = t;
        p.arrival_rps = 0.0;
        p.completion_rps = 0.0;
        p.failure_rps = 0.0;
        p.latency_seconds = Default::default();
        p.queue_depth = 0;
        for s in &mut p.services {
            s.arrival_rps = 0.0;
            s.completion_rps = 0.0;
            s.queue_depth = 0;
            s.latency_p99_seconds = 0.0;
        }
        r.timeseries.push(p);
    }
    r.timeseries.truncate(points.max(1));
    for (i, p) in r.timeseries.iter_mut().enumerate() {
        // The state at the end of the interval, as the simulator reports it.
        let at = ((i as u64 + 1) * interval).min(end);
        let sample = st
            .samples
            .iter()
            .rev()
            .find(|s| s.t_ns <= at)
            .or(st.samples.first());
        let Some(sample) = sample else { continue };
        for (si, sp) in p.services.iter_mut().enumerate() {
            if let Some((desired, ready)) = sample.services.get(si) {
                sp.desired_replicas = *desired;
                sp.ready_replicas = *ready;
            }
        }
        p.node_pools = sc
            .node_pools
            .iter()
            .zip(&sample.pools)
            .map(|(spec, (nodes, ready))| PoolPoint {
                name: spec.name.clone(),
                nodes: *nodes,
                ready_nodes: *ready,
                gpu_busy_fraction: 0.0,
            })
            .collect();
        p.cost_usd = sample.cost_usd;
    }

    // Replicas and the canary's split per service.
    let measured = (end as f64 / NS).max(1e-9);
    for (si, s) in r.services.iter_mut().enumerate() {
        let track = &st.tracks[si];
        s.replicas = ReplicaSummary {
            min_ready: track.min_ready.unwrap_or(0),
            max_ready: track.max_ready,
            mean_ready: track.ready_area / measured,
            max_desired: st
                .deps
                .iter()
                .filter(|d| d.service == si)
                .map(|d| d.max_desired)
                .sum(),
            restarts: st
                .pods
                .iter()
                .filter(|p| st.deps[p.dep].service == si)
                .map(|p| u64::from(p.restarts))
                .sum(),
        };
        let spec = &sc.services[si];
        if !spec.versions.is_empty() {
            let total: u64 = st
                .deps
                .iter()
                .filter(|d| d.service == si)
                .map(|d| d.requests_total)
                .sum();
            s.versions = st
                .deps
                .iter()
                .filter(|d| d.service == si)
                .map(|d| VersionSummary {
                    name: d.version.clone(),
                    // What the gateway actually sent this version (the
                    // scenario's weight is in the scenario echo).
                    traffic_percent: if total > 0 {
                        100.0 * d.requests_total as f64 / total as f64
                    } else {
                        0.0
                    },
                    requests: RequestCounts {
                        arrived: d.requests_total,
                        ..Default::default()
                    },
                    latency_seconds: LatencyHistogram::new().summary(),
                })
                .collect();
        }
    }

    r.scaling_events = st.events.clone();
    r.scaling_events
        .sort_by(|a, b| a.t_seconds.total_cmp(&b.t_seconds));

    // Cold starts: pods that became ready after the start, with the phases
    // as they were waited (node, pull) and measured (process start to ready).
    let mut cold = LatencyHistogram::new();
    let mut phases = [0.0f64; 4];
    let mut count = 0u64;
    let supervised = st.supervisor.records();
    for pod in st.pods.iter().filter(|p| !p.warm) {
        let Some(ready) = pod.ready_at else { continue };
        let Some(bound) = pod.bound else { continue };
        count += 1;
        cold.record_ns(ready.saturating_sub(pod.created).max(1));
        let rec = supervised.iter().find(|r| r.name == pod.name);
        let pull = rec.map_or(0.0, |r| r.image_pull.as_secs_f64());
        let start_to_ready = rec
            .and_then(|r| r.start_to_ready())
            .map_or(0.0, |d| d.as_secs_f64());
        // The phases as lab-decide's start-up names them: the container's
        // start belongs to readiness, not to the pull waited before the spawn.
        let times = st.deps[pod.dep].times;
        let load = times.model_load_ns as f64 / NS;
        let pod_start = times.pod_start_ns as f64 / NS;
        phases[0] += bound.saturating_sub(pod.created) as f64 / NS;
        phases[1] += (pull - pod_start).max(0.0);
        phases[2] += load.min(start_to_ready);
        phases[3] += (start_to_ready - load).max(0.0) + pod_start.min(pull);
    }
    let n = count.max(1) as f64;
    r.cold_starts = ColdStarts {
        count,
        duration_seconds: cold.summary(),
        requests_delayed: st.deps.iter().map(|d| *d.buffered.borrow()).sum(),
        phases_seconds: ColdStartPhases {
            node_provisioning: phases[0] / n,
            image_pull: phases[1] / n,
            model_load: phases[2] / n,
            readiness: phases[3] / n,
        },
    };

    r.cost = cost(st, end);
    r.warnings.extend(warnings(st, &r));
    r
}

/// Cost from the emulated node-hours by lab-decide's arithmetic, the
/// simulator's: nodes are billed from their request to their removal, a pod
/// is charged its deployment's share of a node while bound.
fn cost(st: &State, end: u64) -> Cost {
    use lab_decide::cost;
    let pools = st
        .nodes
        .pools
        .iter()
        .enumerate()
        .map(|(i, p)| cost::PoolTime {
            name: &p.name,
            node_ns: st.nodes.node_ns(i, end),
            price_per_hour: p.price_per_hour,
            gpus_per_node: p.gpus_per_node,
        });
    let mut charged = vec![0.0; st.sc.services.len()];
    for pod in &st.pods {
        let Some(bound) = pod.bound else { continue };
        let dep = &st.deps[pod.dep];
        let until = pod.ended.unwrap_or(end).min(end);
        charged[dep.service] += cost::pod_usd(
            bound,
            until,
            dep.node_share,
            st.nodes.pools[dep.pool].price_per_hour,
        );
    }
    let services = st.sc.services.iter().map(|s| s.name.clone()).zip(charged);
    cost::tally(pools, services, end)
}

fn warnings(st: &State, r: &Results) -> Vec<Warning> {
    let mut out = Vec::new();
    for (si, s) in st.sc.services.iter().enumerate() {
        let stuck = st
            .pods
            .iter()
            .filter(|p| p.state == PodState::Pending && st.deps[p.dep].service == si)
            .count();
        if stuck > 0 {
            let dep = st.deps.iter().find(|d| d.service == si);
            let pool = dep
                .map(|d| st.nodes.pools[d.pool].name.clone())
                .unwrap_or_default();
            out.push(Warning {
                kind: WarningKind::Unschedulable,
                service: Some(s.name.clone()),
                message: format!(
                    "{stuck} pod(s) of `{}` were still unschedulable at the end: pool `{pool}` had no node with room",
                    s.name
                ),
            });
        }
        let arrived = r
            .services
            .iter()
            .find(|x| x.name == s.name)
            .map_or(0, |x| x.requests.arrived);
        if arrived > 0 && !st.tracks[si].ever_ready_measured {
            out.push(Warning {
                kind: WarningKind::NoReadyReplica,
                service: Some(s.name.clone()),
                message: format!(
                    "`{}` received {arrived} request(s) but had no ready replica during the measured period",
                    s.name
                ),
            });
        }
    }
    out
}
