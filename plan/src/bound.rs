//! What can be said about a candidate without simulating it: a lower bound on
//! its monthly cost, and whether its capacity is below the offered load (then
//! it cannot hold a latency or error SLO over a run, and is not simulated).

use lab_gpu::Sharing;
use lab_scenario::{profile_for, GpuRequest, Scenario, ServiceSpec};
use lab_traffic::Schedule;

/// Hours in the month the simulator projects costs to.
const MONTH_HOURS: f64 = 730.0;

/// Pods that exist for the whole run: a fixed count, else `minReplicas`.
fn steady_pods(svc: &ServiceSpec) -> u32 {
    match &svc.autoscaler.fixed {
        Some(f) if svc.autoscaler.kind() == "fixed" => f.replicas.unwrap_or(svc.min_replicas),
        _ => svc.min_replicas,
    }
}

/// The most pods a service can have.
fn max_pods(svc: &ServiceSpec) -> u32 {
    if svc.autoscaler.kind() == "fixed" {
        steady_pods(svc)
    } else {
        svc.max_replicas
    }
}

/// GPU slots of one node a pod with `req` can use (MIG instances of its profile,
/// time-slicing or MPS replicas, whole GPUs).
fn slots_per_node(pool: &lab_scenario::NodePoolSpec, req: &GpuRequest) -> f64 {
    let per_gpu = match (&pool.sharing, req) {
        (Sharing::Mig { layout }, GpuRequest::Mig(p)) => {
            layout.iter().filter(|l| *l == p).count() as f64
        }
        (s, _) => f64::from(s.slots_per_gpu()),
    };
    per_gpu * f64::from(pool.gpus_per_node)
}

/// A lower bound on the monthly cost the simulator will report: every pool's
/// `min_nodes`, plus the nodes that the steady pods need by CPU, memory and GPU
/// slots (a bound for any packing), billed from the cluster autoscaler's first
/// scan at the latest.
pub fn cost_lower_bound(s: &Scenario) -> f64 {
    let duration = s.duration().secs_f64().max(1e-9);
    let ca = &s.cluster_autoscaler;
    // Nodes the autoscaler adds are billed from creation, at most one scan (plus
    // a second of slack) after the start.
    let billed = if ca.enabled {
        ((duration - 2.0 * ca.scan_interval.secs_f64() - 1.0) / duration).max(0.0)
    } else {
        0.0
    };
    let mut total = 0.0;
    for pool in &s.node_pools {
        let (mut cpu, mut mem, mut slots) = (0.0, 0.0, 0.0);
        let mut slot_cap = f64::INFINITY;
        for svc in &s.services {
            if !svc.versions.is_empty() || s.pool_for(svc).map(|p| &p.name) != Some(&pool.name) {
                continue;
            }
            let pods = f64::from(steady_pods(svc));
            cpu += pods * svc.cpu_request();
            mem += pods * svc.memory_request();
            let req = svc.gpu_request();
            let per_pod = match req {
                GpuRequest::None => 0.0,
                GpuRequest::Devices(n) => f64::from(n),
                GpuRequest::Mig(_) => 1.0,
            };
            if per_pod > 0.0 {
                slots += pods * per_pod;
                slot_cap = slot_cap.min(slots_per_node(pool, &req));
            }
        }
        let mut need: f64 = 0.0;
        if pool.cpu.0 > 0.0 {
            need = need.max((cpu / pool.cpu.0 - 1e-9).ceil());
        }
        if pool.memory.0 > 0.0 {
            need = need.max((mem / pool.memory.0 - 1e-9).ceil());
        }
        if slots > 0.0 && slot_cap.is_finite() && slot_cap > 0.0 {
            need = need.max((slots / slot_cap - 1e-9).ceil());
        }
        let need = need.min(f64::from(pool.max_nodes));
        // The autoscaler never goes below min_nodes, so those are billed throughout.
        let base = f64::from(pool.min_nodes);
        let extra = (need - base).max(0.0);
        total += pool.price_per_hour * MONTH_HOURS * (base + extra * billed);
    }
    total
}

/// Requests per second a service's pods can serve at most, from the latency
/// profile at the best batch size, the pod count and how the pool shares GPUs.
fn capacity_rps(s: &Scenario, svc: &ServiceSpec) -> Option<f64> {
    let pool = s.pool_for(svc)?;
    let req = svc.gpu_request();
    let profile = profile_for(&svc.latency, pool, &req)?;
    let max_batch = svc
        .batching
        .as_ref()
        .map_or(1, |b| b.max_batch_size.max(1))
        .min(profile.max_batch_size().max(1));
    // Service time is piecewise linear in the batch size, so rows per second
    // peaks at a profile point or at the largest batch allowed.
    let mut per_exec: f64 = 0.0;
    let sizes = profile
        .points
        .iter()
        .map(|p| p.batch_size)
        .filter(|b| *b <= max_batch)
        .chain(std::iter::once(max_batch));
    for b in sizes {
        if let Some(t) = profile.mean_seconds(b).filter(|t| *t > 0.0) {
            per_exec = per_exec.max(f64::from(b) / t);
        }
    }
    let pods = f64::from(max_pods(svc));
    let instances = f64::from(svc.batching.as_ref().map_or(1, |b| b.instances.max(1)));
    let gpu_type = pool.gpu.as_deref().and_then(lab_gpu::gpu_type);
    let cap = match (&req, &pool.sharing) {
        (GpuRequest::None, _) => pods * instances * per_exec,
        // A MIG slice runs at its share of the SMs unless the profile was
        // measured on the slice itself.
        (_, Sharing::Mig { layout }) => {
            let slice = match &req {
                GpuRequest::Mig(p) => Some(p.as_str()),
                _ => layout.first().map(String::as_str),
            };
            let measured_on_slice = profile.gpu.contains('/');
            let speed = match (gpu_type, slice) {
                (Some(gt), Some(p)) if !measured_on_slice => {
                    gt.mig_profile(p).map_or(1.0, |m| m.speed_fraction(gt))
                }
                _ => 1.0,
            };
            pods * per_exec * speed
        }
        // Pods sharing a GPU split it (time-slicing, MPS): capacity is per
        // physical GPU, and at best each pod has a GPU to itself.
        (GpuRequest::Devices(n), _) => {
            let gpus = f64::from(gpus_at_most(s, pool)) * f64::from(pool.gpus_per_node);
            (pods * f64::from(*n)).min(gpus) * per_exec
        }
        (GpuRequest::Mig(_), _) => return None,
    };
    Some(cap)
}

/// Pods of `svc` one node of `pool` holds, by CPU, memory and GPU slots.
fn pods_per_node(pool: &lab_scenario::NodePoolSpec, svc: &ServiceSpec) -> u32 {
    let mut n = f64::INFINITY;
    let fits = |have: f64, want: f64| {
        if want > 0.0 {
            (have / want + 1e-9).floor()
        } else {
            f64::INFINITY
        }
    };
    n = n.min(fits(pool.cpu.0, svc.cpu_request()));
    n = n.min(fits(pool.memory.0, svc.memory_request()));
    let req = svc.gpu_request();
    let per_pod = match req {
        GpuRequest::None => 0.0,
        GpuRequest::Devices(d) => f64::from(d),
        GpuRequest::Mig(_) => 1.0,
    };
    n = n.min(fits(slots_per_node(pool, &req), per_pod));
    if n.is_finite() {
        n.max(0.0) as u32
    } else {
        u32::MAX
    }
}

/// Nodes a pool can have while serving. When the pool's only tenant is a
/// service with a fixed replica count, the cluster autoscaler adds nodes for
/// its pending pods only, packed `pods_per_node` to a node, so the pool never
/// holds more than that (or its starting nodes); otherwise `max_nodes`.
fn gpus_at_most(s: &Scenario, pool: &lab_scenario::NodePoolSpec) -> u32 {
    let tenants: Vec<&ServiceSpec> = s
        .services
        .iter()
        .filter(|svc| s.pool_for(svc).map(|p| &p.name) == Some(&pool.name))
        .collect();
    if let [svc] = tenants.as_slice() {
        if svc.autoscaler.kind() == "fixed" && svc.versions.is_empty() {
            let per = pods_per_node(pool, svc).max(1);
            let start = pool
                .initial_nodes
                .unwrap_or(pool.min_nodes)
                .max(pool.min_nodes);
            return steady_pods(svc)
                .div_ceil(per)
                .max(start)
                .min(pool.max_nodes);
        }
    }
    pool.max_nodes
}

/// Mean offered load per service over the run.
fn offered_rps(s: &Scenario) -> Vec<f64> {
    let mut out = vec![0.0; s.services.len()];
    let duration = s.duration().secs_f64().max(1e-9);
    for (i, stream) in s.traffic.iter().enumerate() {
        if let Some(svc) = s.stream_service(i) {
            out[svc] += Schedule::new(stream, 0, i as u32).expected_count() / duration;
        }
    }
    out
}

/// `Some(reason)` when a service's mean offered load exceeds its capacity: the
/// backlog then grows for the whole run and a latency or error-rate SLO cannot
/// hold. `None` when the scenario has no such SLO or capacity is enough.
pub fn overloaded(s: &Scenario) -> Option<String> {
    let guards = s
        .slo
        .iter()
        .any(|slo| slo.metric.is_latency() || slo.metric == lab_results::SloMetric::ErrorRate);
    if !guards {
        return None;
    }
    let offered = offered_rps(s);
    for (svc, load) in s.services.iter().zip(offered) {
        if let Some(cap) = capacity_rps(s, svc) {
            if load > cap {
                return Some(format!(
                    "`{}` is offered {load:.0} req/s on average but can serve at most {cap:.0}",
                    svc.name
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_10k(overrides: &[&str]) -> Scenario {
        let text = include_str!("../../scenarios/plan-10k.toml");
        let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        lab_scenario::parse(text, "plan-10k.toml", std::path::Path::new("."), &o).unwrap()
    }

    fn replicas(n: u32) -> String {
        format!("services.0.autoscaler.fixed.replicas={n}")
    }

    #[test]
    fn capacity_follows_the_profile_and_the_sharing_mode() {
        // L4 at batch 32: 32 rows / 39 ms = 820 req/s per GPU.
        assert!(overloaded(&plan_10k(&[&replicas(12)])).is_some());
        assert!(overloaded(&plan_10k(&[&replicas(13)])).is_none());
        // Time-sliced two to a GPU: 24 pods pack onto 12 GPUs.
        let ts = r#"node_pools.l4.sharing={ strategy = "time-slicing", replicas = 2 }"#;
        assert!(overloaded(&plan_10k(&[ts, &replicas(24)])).is_some());
        assert!(overloaded(&plan_10k(&[ts, &replicas(26)])).is_none());
        // A 3g.20gb slice has 42 of the A100's 108 SMs: 2286 * 42/108 = 889 req/s.
        let mig = [
            r#"services.0.nodePool="a100""#,
            r#"node_pools.a100.sharing={ strategy = "mig", layout = ["3g.20gb", "3g.20gb"] }"#,
        ];
        assert!(overloaded(&plan_10k(&[mig[0], mig[1], &replicas(11)])).is_some());
        assert!(overloaded(&plan_10k(&[mig[0], mig[1], &replicas(12)])).is_none());
    }

    #[test]
    fn cost_bound_counts_nodes_the_pods_need() {
        let month = |price: f64, nodes: f64| price * MONTH_HOURS * nodes;
        // One L4 pod per node (one GPU each); billed from the first scan on.
        let b = cost_lower_bound(&plan_10k(&[&replicas(13)]));
        assert!(
            b <= month(0.8048, 13.0) && b > 0.98 * month(0.8048, 13.0),
            "{b}"
        );
        // Two MIG slices per A100 node: 11 pods need 6 nodes.
        let b = cost_lower_bound(&plan_10k(&[
            r#"services.0.nodePool="a100""#,
            r#"node_pools.a100.sharing={ strategy = "mig", layout = ["3g.20gb", "3g.20gb"] }"#,
            &replicas(11),
        ]));
        assert!(
            b <= month(3.673, 6.0) && b > 0.98 * month(3.673, 6.0),
            "{b}"
        );
    }
}
