//! Turns the engine's counters into results.json's shape.

use crate::engine::Engine;
use crate::world::{NodeState, PodState};
use lab_decide::cost;
use lab_results::*;

const NS: f64 = 1e9;

/// Closes one time-series interval.
pub fn interval_point(e: &mut Engine) {
    let start = e.interval_start();
    let len = (e.now - start).max(1) as f64 / NS;
    let single_service = e.svc_stats.len() == 1;
    let mut overall = IntervalLatency::default();
    let mut services = Vec::new();
    // Per-service counts sum to the run's; completions are the interval
    // buffer's count, so the hot path keeps no counter for them.
    let (mut arrivals, mut completions) = (0u64, 0u64);
    for (si, svc) in e.sc.services.iter().enumerate() {
        let deps: Vec<usize> = (0..e.deployments.len())
            .filter(|d| e.deployments[*d].service == si)
            .collect();
        let desired: u32 = deps.iter().map(|d| e.deployments[*d].desired).sum();
        let ready: u32 = deps
            .iter()
            .map(|d| e.deployments[*d].ready.len() as u32)
            .sum();
        let queue: u64 = deps.iter().map(|d| queue_depth(e, *d)).sum();
        let st = &mut e.svc_stats[si];
        let bc = &mut e.batch_counts[si];
        st.queue_buf.flush_into(&mut st.queue);
        // The interval's figures come from the buffer itself (only the buckets
        // it touched), then it folds into the run's histogram or is dropped.
        let done = st.interval_buf.count();
        arrivals += st.interval_arrivals;
        completions += done;
        if single_service {
            overall = interval_latency(&st.interval_buf);
        } else {
            e.run.interval_all.add(&st.interval_buf);
        }
        services.push(ServicePoint {
            name: svc.name.clone(),
            desired_replicas: desired,
            ready_replicas: ready,
            arrival_rps: st.interval_arrivals as f64 / len,
            completion_rps: done as f64 / len,
            queue_depth: queue,
            latency_p99_seconds: st.interval_buf.quantile_seconds(0.99),
            batch_fill_fraction: batches_of_several(svc).map(|b| {
                ratio(bc.interval_rows, bc.interval_batches) / f64::from(b.max_batch_size.max(1))
            }),
        });
        st.min_ready = st.min_ready.min(ready);
        st.max_ready = st.max_ready.max(ready);
        st.max_desired = st.max_desired.max(desired);
        st.ready_area += f64::from(ready) * len;
        if start >= e.warmup {
            bc.batches += bc.interval_batches;
            bc.rows += bc.interval_rows;
            st.interval_buf.flush_into(&mut st.latency);
        } else {
            // Measured requests of an interval that straddles warm-up were
            // recorded into `latency` one by one.
            st.interval_buf.clear();
        }
        st.interval_arrivals = 0;
        bc.interval_batches = 0;
        bc.interval_rows = 0;
    }
    if !single_service {
        overall = interval_latency(&e.run.interval_all);
        e.run.interval_all.clear();
    }
    let mut pools = Vec::new();
    let mut busy_total = 0.0;
    let mut gpu_total = 0.0;
    for pi in 0..e.pools.len() {
        e.pool_level_change(pi);
        let nodes = e
            .nodes
            .iter()
            .filter(|n| n.pool == pi && n.state != NodeState::Gone)
            .count() as u32;
        let ready_nodes = e
            .nodes
            .iter()
            .filter(|n| n.pool == pi && n.state == NodeState::Ready)
            .count() as u32;
        let gpus = f64::from(ready_nodes * e.pools[pi].gpus_per_node);
        let busy = e.pools[pi].interval_busy_area / NS;
        let frac = if gpus > 0.0 {
            (busy / (gpus * len)).min(1.0)
        } else {
            0.0
        };
        busy_total += busy;
        gpu_total += gpus * len;
        e.pools[pi].interval_busy_area = 0.0;
        pools.push(PoolPoint {
            name: e.pools[pi].name.clone(),
            nodes,
            ready_nodes,
            gpu_busy_fraction: frac,
        });
    }
    let queue: u64 = (0..e.deployments.len()).map(|d| queue_depth(e, d)).sum();
    let point = TimePoint {
        t_seconds: start as f64 / NS,
        arrival_rps: arrivals as f64 / len,
        completion_rps: completions as f64 / len,
        failure_rps: e.run.interval_failures as f64 / len,
        latency_seconds: overall,
        queue_depth: queue,
        gpu_busy_fraction: if gpu_total > 0.0 {
            (busy_total / gpu_total).min(1.0)
        } else {
            0.0
        },
        cost_usd: cost_so_far(e),
        services,
        node_pools: pools,
    };
    e.timeseries.push(point);
    e.run.interval_failures = 0;
}

/// The batcher's settings of a service whose batches can hold more than one
/// row: the ones whose fill means something.
fn batches_of_several(svc: &lab_scenario::ServiceSpec) -> Option<&lab_scenario::BatchingSpec> {
    svc.batching.as_ref().filter(|b| b.max_batch_size > 1)
}

fn interval_latency(h: &HistogramBuffer) -> IntervalLatency {
    IntervalLatency {
        p50: h.quantile_seconds(0.5),
        p95: h.quantile_seconds(0.95),
        p99: h.quantile_seconds(0.99),
        max: h.max_seconds(),
    }
}

/// Requests waiting (not executing) for a deployment: activator plus pod queues.
fn queue_depth(e: &Engine, d: usize) -> u64 {
    let dep = &e.deployments[d];
    dep.activator.len() as u64
        + dep
            .pods
            .iter()
            .map(|p| e.pods[*p as usize].queue.len() as u64)
            .sum::<u64>()
}

/// Requests still inside the system: buffered, queued or executing.
fn in_flight(e: &Engine, d: usize) -> u64 {
    let dep = &e.deployments[d];
    dep.activator.len() as u64
        + dep
            .pods
            .iter()
            .map(|p| {
                let pod = &e.pods[*p as usize];
                pod.queue.len() as u64 + u64::from(pod.executing_reqs)
            })
            .sum::<u64>()
}

/// A pool's cost up to `now`: its removed nodes' time plus its live nodes'.
fn pool_usage(e: &Engine, pool: usize, now: u64) -> cost::PoolUsage {
    let live = e
        .nodes
        .iter()
        .filter(|n| n.pool == pool && n.state != NodeState::Gone)
        .map(|n| n.created);
    let node_ns = cost::node_ns(e.pools[pool].node_ns, live, now);
    cost::pool_usage(node_ns, e.pools[pool].price_per_hour)
}

fn cost_so_far(e: &Engine) -> f64 {
    (0..e.pools.len())
        .map(|p| pool_usage(e, p, e.now).usd)
        .sum()
}

/// Everything but the wall clock and the scenario echo, which the caller fills in.
pub fn results(e: &Engine) -> Results {
    let now = e.now;
    let measured_s = (now.saturating_sub(e.warmup)).max(1) as f64 / NS;
    let mut services = Vec::new();
    let mut total = RequestCounts::default();
    let mut measured_total = RequestCounts::default();
    let mut latency = LatencyHistogram::new();
    let mut queue = LatencyHistogram::new();
    let mut goodput = 0u64;
    let mut hist_by_service = std::collections::BTreeMap::new();
    for (si, svc) in e.sc.services.iter().enumerate() {
        let st = &e.svc_stats[si];
        let deps: Vec<usize> = (0..e.deployments.len())
            .filter(|d| e.deployments[*d].service == si)
            .collect();
        let mut counts = st.counts.clone();
        counts.in_flight = deps.iter().map(|d| in_flight(e, *d)).sum();
        let mut measured = st.measured.clone();
        measured.in_flight = measured
            .arrived
            .saturating_sub(measured.completed + measured.failed);
        total.add(&counts);
        measured_total.add(&measured);
        latency.merge(&st.latency);
        queue.merge(&st.queue);
        goodput += st.goodput;
        hist_by_service.insert(svc.name.clone(), st.latency.to_base64());
        let versions = if svc.versions.is_empty() {
            Vec::new()
        } else {
            deps.iter()
                .map(|d| {
                    let ds = &e.dep_stats[*d];
                    let mut c = ds.counts.clone();
                    c.in_flight = in_flight(e, *d);
                    VersionSummary {
                        name: e.deployments[*d].name.clone(),
                        traffic_percent: e.deployments[*d].traffic_percent,
                        requests: c,
                        latency_seconds: ds.latency.summary(),
                    }
                })
                .collect()
        };
        let run_s = now.max(1) as f64 / NS;
        services.push(ServiceSummary {
            name: svc.name.clone(),
            requests: counts,
            goodput_rps: st.goodput as f64 / measured_s,
            throughput_rps: st.measured.completed as f64 / measured_s,
            error_rate: ratio(st.measured.failed, st.measured.arrived),
            latency_seconds: st.latency.summary(),
            queue_seconds: st.queue.summary(),
            replicas: ReplicaSummary {
                min_ready: if st.min_ready == u32::MAX {
                    0
                } else {
                    st.min_ready
                },
                max_ready: st.max_ready,
                mean_ready: st.ready_area / run_s,
                max_desired: st.max_desired,
                restarts: 0,
            },
            versions,
            batching: batches_of_several(svc).map(|b| {
                let bc = &e.batch_counts[si];
                let mean_rows = ratio(bc.rows, bc.batches);
                BatchingSummary {
                    batches: bc.batches,
                    mean_rows,
                    max_batch_size: b.max_batch_size,
                    fill_fraction: mean_rows / f64::from(b.max_batch_size.max(1)),
                }
            }),
        });
    }
    let hours = cost::hours(u128::from(now));
    let mut by_pool = Vec::new();
    let mut total_usd = 0.0;
    for pi in 0..e.pools.len() {
        let usage = pool_usage(e, pi, now);
        total_usd += usage.usd;
        by_pool.push(PoolCost {
            name: e.pools[pi].name.clone(),
            usd: usage.usd,
            node_hours: usage.node_hours,
            gpu_hours: cost::gpu_hours(usage.node_hours, e.pools[pi].gpus_per_node),
            monthly_usd: cost::monthly(usage.usd, hours),
        });
    }
    let mut by_service: Vec<ServiceCost> =
        e.sc.services
            .iter()
            .map(|s| ServiceCost {
                name: s.name.clone(),
                usd: 0.0,
                monthly_usd: 0.0,
            })
            .collect();
    for pod in &e.pods {
        if pod.node.is_none() || (pod.state == PodState::Pending && pod.ended.is_none()) {
            continue;
        }
        let dep = &e.deployments[pod.deployment as usize];
        let end = pod.ended.unwrap_or(now);
        by_service[dep.service].usd += cost::pod_usd(
            pod.bound,
            end,
            dep.node_share,
            e.pools[dep.pool].price_per_hour,
        );
    }
    let attributed: f64 = by_service.iter().map(|s| s.usd).sum();
    for s in &mut by_service {
        s.monthly_usd = cost::monthly(s.usd, hours);
    }
    let cold = &e.run;
    let n = cold.cold_count.max(1) as f64;
    Results {
        schema_version: SCHEMA_VERSION,
        level: Level::Sim,
        complete: !e.stopped_early,
        seed: 0,
        scenario: ScenarioInfo {
            name: e.sc.name.clone(),
            file: String::new(),
            overrides: Vec::new(),
            config: serde_json::Value::Null,
        },
        run: RunInfo {
            duration_seconds: e.end as f64 / NS,
            warmup_seconds: e.warmup as f64 / NS,
            interval_seconds: e.sc.run.interval.secs_f64(),
            end_seconds: now as f64 / NS,
            time_scale: 1.0,
            notes: Vec::new(),
        },
        summary: Summary {
            requests: total,
            goodput_rps: goodput as f64 / measured_s,
            throughput_rps: measured_total.completed as f64 / measured_s,
            error_rate: ratio(measured_total.failed, measured_total.arrived),
            latency_seconds: latency.summary(),
            queue_seconds: queue.summary(),
        },
        services,
        timeseries: e.timeseries.clone(),
        scaling_events: e.scaling_events.clone(),
        cold_starts: ColdStarts {
            count: cold.cold_count,
            duration_seconds: cold.cold_start_ns.summary(),
            requests_delayed: cold.requests_delayed,
            phases_seconds: ColdStartPhases {
                node_provisioning: cold.cold_phase_sum[0] / n,
                image_pull: cold.cold_phase_sum[1] / n,
                model_load: cold.cold_phase_sum[2] / n,
                readiness: cold.cold_phase_sum[3] / n,
            },
        },
        cost: Cost {
            total_usd,
            monthly_usd: cost::monthly(total_usd, hours),
            by_pool,
            by_service,
            idle_usd: cost::idle_usd(total_usd, attributed),
        },
        slo: Vec::new(),
        warnings: Vec::new(),
        histograms: Histograms {
            overall: latency.to_base64(),
            services: hist_by_service,
        },
        wall_clock: WallClock::default(),
        load: None,
    }
}

/// What makes this run's answer suspect, found in the engine's end state.
pub fn warnings(e: &Engine, r: &mut Results) {
    let now = e.now;
    for d in 0..e.deployments.len() {
        let dep = &e.deployments[d];
        let svc = &e.sc.services[dep.service];
        let pool = dep.pool;
        let pool_name = &e.pools[pool].name;
        let pending: Vec<u64> = dep
            .pods
            .iter()
            .map(|p| &e.pods[*p as usize])
            .filter(|p| p.state == PodState::Pending && p.ended.is_none())
            .map(|p| p.created)
            .collect();
        if let Some(since) = pending.iter().min() {
            let fit = e.node_fit(d, pool);
            let provisioning = e
                .nodes
                .iter()
                .any(|n| n.pool == pool && n.state == NodeState::Provisioning);
            let live = e.live_nodes(pool);
            let max = e.pools[pool].max_nodes;
            let since = match *since / 1_000_000_000 {
                0 => "since the start".to_string(),
                s => format!("since {}", lab_units::Dur(s * 1_000_000_000)),
            };
            let who = format!(
                "{} pod(s) of `{}` never scheduled ({since}, still pending at the end)",
                pending.len(),
                e.target_name(d),
            );
            let why = if fit.per_node == 0 {
                Some(format!(
                    "no node of pool `{pool_name}` can ever hold one: {}",
                    fit.limit
                ))
            } else if live >= max && !provisioning {
                Some(format!(
                    "pool `{pool_name}` is at max_nodes = {max} and a node holds {} such pod(s) ({}); raise max_nodes, change the pool's sharing, or lower the replicas of the services on it",
                    fit.per_node, fit.limit
                ))
            } else if !e.sc.cluster_autoscaler.enabled && !provisioning {
                Some(format!(
                    "pool `{pool_name}` has no room and the cluster autoscaler is disabled"
                ))
            } else {
                // Waiting for nodes that are being provisioned: ordinary.
                None
            };
            if let Some(why) = why {
                r.warn(
                    WarningKind::Unschedulable,
                    Some(&svc.name),
                    format!("{who}: {why}"),
                );
            }
        }
        let target = e.target_name(d);
        let ooms = e
            .scaling_events
            .iter()
            .filter(|ev| ev.autoscaler == "kubelet" && ev.target == target)
            .count();
        if ooms > 0 {
            r.warn(
                WarningKind::OomKilled,
                Some(&svc.name),
                format!(
                    "{ooms} pod start(s) of `{target}` were OOMKilled: modelMemory {:.1} GiB does not fit the GPU memory its co-tenants leave on pool `{pool_name}`",
                    dep.model_memory / crate::engine::GIB
                ),
            );
        }
    }
    // The initial replicas start warm, so a GPU whose tenants' models do not
    // fit its memory is only seen here.
    for node in e.nodes.iter().filter(|n| n.state == NodeState::Ready) {
        for gpu in &node.gpus {
            if !lab_decide::binding::gpu_memory_overflows(gpu.memory_used, gpu.memory_total) {
                continue;
            }
            let mut tenants: Vec<usize> = gpu
                .slots
                .iter()
                .flatten()
                .map(|p| e.deployments[e.pods[*p as usize].deployment as usize].service)
                .collect();
            tenants.sort_unstable();
            tenants.dedup();
            let names: Vec<&str> = tenants
                .iter()
                .map(|s| e.sc.services[*s].name.as_str())
                .collect();
            for s in &tenants {
                r.warn(
                    WarningKind::OomKilled,
                    Some(&e.sc.services[*s].name),
                    format!(
                        "`{}` shares a GPU of pool `{}` whose tenants ({}) need {:.1} GiB of model memory and it has {:.1} GiB: a real node would OOM-kill one of them",
                        e.sc.services[*s].name,
                        e.pools[node.pool].name,
                        names.join(", "),
                        gpu.memory_used / crate::engine::GIB,
                        gpu.memory_total / crate::engine::GIB
                    ),
                );
            }
        }
    }
    for (si, svc) in e.sc.services.iter().enumerate() {
        let arrived = e.svc_stats[si].measured.arrived;
        let measured: Vec<u32> = e
            .timeseries
            .iter()
            .filter(|p| p.t_seconds * NS >= e.warmup as f64)
            .filter_map(|p| p.services.get(si).map(|s| s.ready_replicas))
            .collect();
        if arrived > 0 && !measured.is_empty() && measured.iter().all(|r| *r == 0) {
            r.warn(
                WarningKind::NoReadyReplica,
                Some(&svc.name),
                format!(
                    "`{}` received {arrived} request(s) after warm-up but had no ready replica during the whole measured period",
                    svc.name
                ),
            );
        }
    }
    if let Some(duration) = e.sc.run.duration {
        let traffic_end =
            e.sc.traffic
                .iter()
                .map(|t| t.duration())
                .max()
                .unwrap_or_default();
        if traffic_end < duration && now > traffic_end.nanos() {
            r.warn(
                WarningKind::TrafficEndsEarly,
                None,
                format!(
                    "the traffic ends at {traffic_end} but run.duration is {duration}: the last {} have no arrivals, and rates and cost are averaged over them; shorten run.duration or add an `idle` phase if the quiet tail is meant",
                    lab_units::Dur(duration.nanos() - traffic_end.nanos())
                ),
            );
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}
