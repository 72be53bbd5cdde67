//! Realistic `Results` values for tests and sample reports (feature
//! `fixtures`): a steady load with a spike, an HPA-like autoscaler that reacts
//! late, cold starts, a GPU pool that grows behind it, and the costs that
//! follow. Not a simulator: the figures are shaped to look like a run, and the
//! SLO verdicts are judged from them with `lab_results::evaluate_slos`.
#![allow(dead_code)]

use lab_results::*;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
pub struct Spike {
    pub name: String,
    pub level: Level,
    pub seed: u64,
    pub duration_seconds: f64,
    pub interval_seconds: f64,
    pub base_rps: f64,
    pub spike_factor: f64,
    /// Requests per second one ready replica serves.
    pub replica_rps: f64,
    /// Replicas per GPU node (time-slicing packs more, MIG fewer but steadier).
    pub replicas_per_node: u32,
    pub node_usd_per_hour: f64,
    pub cold_start_seconds: f64,
    pub p99_slo_seconds: f64,
    pub overrides: Vec<String>,
}

impl Default for Spike {
    fn default() -> Spike {
        Spike {
            name: "resnet-spike".into(),
            level: Level::Sim,
            seed: 42,
            duration_seconds: 3600.0,
            interval_seconds: 10.0,
            base_rps: 200.0,
            spike_factor: 4.0,
            replica_rps: 60.0,
            replicas_per_node: 4,
            node_usd_per_hour: 4.10,
            cold_start_seconds: 90.0,
            p99_slo_seconds: 0.25,
            overrides: vec![],
        }
    }
}

/// Deterministic jitter in [-1, 1).
struct Jitter(u64);
impl Jitter {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

fn lat(p50: f64, p99: f64, count: u64) -> LatencySummary {
    LatencySummary {
        count,
        mean: p50 * 1.1,
        p50,
        p90: p50 + (p99 - p50) * 0.5,
        p95: p50 + (p99 - p50) * 0.7,
        p99,
        p999: p99 * 1.4,
        max: p99 * 2.0,
    }
}

pub fn spike_run(s: &Spike) -> Results {
    let mut j = Jitter(s.seed ^ 0x9e37_79b9);
    let dt = s.interval_seconds;
    let n = (s.duration_seconds / dt).round() as usize;
    let spike_from = s.duration_seconds / 3.0;
    let spike_to = spike_from + s.duration_seconds / 12.0;
    let svc_time = 0.035;

    let (mut desired, mut ready) = (4u32, 4u32);
    let mut pending: Vec<(f64, u32)> = Vec::new(); // (ready at, count)
                                                   // Start with room for the initial replicas.
    let (mut nodes, mut ready_nodes) = (
        4u32.div_ceil(s.replicas_per_node),
        4u32.div_ceil(s.replicas_per_node),
    );
    let mut node_pending: Vec<f64> = Vec::new();
    let mut queue = 0.0f64;
    let mut cost = 0.0;
    let mut timeseries = Vec::with_capacity(n);
    let mut events = Vec::new();
    let (mut arrived, mut completed, mut failed) = (0.0f64, 0.0f64, 0.0f64);
    let mut p99s = Vec::new();
    let mut cold = 0u64;
    let mut delayed = 0u64;
    let mut ready_sum = 0.0;
    let (mut min_ready, mut max_ready, mut max_desired) = (u32::MAX, 0u32, 0u32);
    let mut gpu_hours = 0.0;
    let mut busy_gpu_hours = 0.0;
    let bert_rps = 30.0;

    for i in 0..n {
        let t = i as f64 * dt;
        let mut rate =
            s.base_rps * (1.0 + 0.15 * libm::sin(t / s.duration_seconds * std::f64::consts::TAU));
        if (spike_from..spike_to).contains(&t) {
            rate *= s.spike_factor;
        }
        rate *= 1.0 + 0.04 * j.next();

        // HPA every 15 s-ish: target 80 % of a replica's capacity.
        if i % 2 == 0 {
            let want = ((rate + queue / 30.0) / (s.replica_rps * 0.8))
                .ceil()
                .clamp(2.0, 60.0) as u32;
            if want != desired && (want > desired || t > spike_to + 300.0) {
                events.push(ScalingEvent {
                    t_seconds: t,
                    target: "resnet50".into(),
                    autoscaler: "hpa".into(),
                    from: desired,
                    to: want,
                    reason: format!(
                        "arrival {:.0} req/s against {:.0} per replica",
                        rate,
                        s.replica_rps * 0.8
                    ),
                });
                if want > desired {
                    pending.push((t + s.cold_start_seconds, want - desired));
                } else {
                    ready = ready.min(want);
                    pending.clear();
                }
                desired = want;
            }
        }
        let mut became = 0;
        pending.retain(|&(at, k)| {
            if at <= t {
                became += k;
                false
            } else {
                true
            }
        });
        // Pods wait for room on a node.
        let room = ready_nodes * s.replicas_per_node;
        let target_ready = (ready + became).min(room).min(desired);
        if target_ready > ready {
            cold += u64::from(target_ready - ready);
        }
        if ready + became > room {
            pending.push((t + dt, ready + became - room));
        }
        ready = target_ready;

        // Cluster autoscaler: nodes for the desired pods, two minutes to boot.
        let need = desired.div_ceil(s.replicas_per_node).max(1);
        if need > nodes {
            events.push(ScalingEvent {
                t_seconds: t,
                target: "pool:gpu-a100".into(),
                autoscaler: "cluster-autoscaler".into(),
                from: nodes,
                to: need,
                reason: "unschedulable pods".into(),
            });
            for _ in nodes..need {
                node_pending.push(t + 120.0);
            }
            nodes = need;
        } else if need < nodes && t > spike_to + 600.0 && i % 60 == 0 {
            events.push(ScalingEvent {
                t_seconds: t,
                target: "pool:gpu-a100".into(),
                autoscaler: "cluster-autoscaler".into(),
                from: nodes,
                to: need,
                reason: "nodes underused for 10 minutes".into(),
            });
            nodes = need;
            ready_nodes = ready_nodes.min(nodes);
        }
        let before = node_pending.len();
        node_pending.retain(|&at| at > t);
        ready_nodes = (ready_nodes + (before - node_pending.len()) as u32).min(nodes);

        let capacity = f64::from(ready) * s.replica_rps;
        let offered = rate + queue / dt;
        let done = offered.min(capacity);
        queue = (queue + (rate - done) * dt).max(0.0);
        let mut fail = 0.0;
        if queue > 1200.0 {
            fail = (queue - 1200.0) / dt;
            queue = 1200.0;
        }
        if ready < desired {
            delayed += (queue * 0.1) as u64;
        }
        let wait = if capacity > 0.0 {
            queue / capacity
        } else {
            5.0
        };
        let util = (done / capacity.max(1e-9)).min(1.0);
        let p50 = svc_time * (1.0 + util) + wait * 0.5;
        let p99 = svc_time * (2.0 + 4.0 * ((util * util) * (util * util)))
            + wait * 1.2
            + 0.01 * j.next().abs();
        p99s.push(p99);

        let gpus = f64::from(nodes);
        let busy = (done * 0.012 / (gpus * 4.0)).min(1.0);
        let step_usd = (f64::from(nodes) * s.node_usd_per_hour + 2.0 * 0.19) * dt / 3600.0;
        cost += step_usd;
        gpu_hours += gpus * dt / 3600.0;
        busy_gpu_hours += busy * gpus * dt / 3600.0;
        arrived += (rate + bert_rps) * dt;
        completed += (done + bert_rps) * dt;
        failed += fail * dt;
        ready_sum += f64::from(ready);
        min_ready = min_ready.min(ready);
        max_ready = max_ready.max(ready);
        max_desired = max_desired.max(desired);

        timeseries.push(TimePoint {
            t_seconds: t,
            arrival_rps: rate + bert_rps,
            completion_rps: done + bert_rps,
            failure_rps: fail,
            latency_seconds: IntervalLatency {
                p50,
                p95: p50 + (p99 - p50) * 0.6,
                p99,
                max: p99 * 1.8,
            },
            queue_depth: queue as u64,
            gpu_busy_fraction: busy,
            cost_usd: cost,
            services: vec![
                ServicePoint {
                    name: "resnet50".into(),
                    desired_replicas: desired,
                    ready_replicas: ready,
                    arrival_rps: rate,
                    completion_rps: done,
                    queue_depth: queue as u64,
                    latency_p99_seconds: p99,
                    batch_fill_fraction: Some((0.15 + 0.8 * busy).min(1.0)),
                },
                ServicePoint {
                    name: "bert-small".into(),
                    desired_replicas: 2,
                    ready_replicas: 2,
                    arrival_rps: bert_rps,
                    completion_rps: bert_rps,
                    queue_depth: 0,
                    latency_p99_seconds: 0.06,
                    batch_fill_fraction: None,
                },
            ],
            node_pools: vec![
                PoolPoint {
                    name: "gpu-a100".into(),
                    nodes,
                    ready_nodes,
                    gpu_busy_fraction: busy,
                },
                PoolPoint {
                    name: "cpu-system".into(),
                    nodes: 2,
                    ready_nodes: 2,
                    gpu_busy_fraction: 0.0,
                },
            ],
        });
    }

    p99s.sort_by(f64::total_cmp);
    let p99 = p99s[(p99s.len() as f64 * 0.99) as usize - 1];
    let p50 = p99s[p99s.len() / 2] * 0.55;
    let in_flight = queue as u64;
    let failed_n = failed.round() as u64;
    let arrived_n = arrived.round() as u64;
    let completed_n = arrived_n - failed_n - in_flight;
    let _ = completed;
    let throughput = completed_n as f64 / s.duration_seconds;
    let error_rate = failed_n as f64 / arrived_n as f64;
    let hours = s.duration_seconds / 3600.0;
    let monthly = cost / hours * 730.0;
    let idle = cost * (1.0 - busy_gpu_hours / gpu_hours.max(1e-9)) * 0.35;
    let svc_share = cost - idle;
    let mut reasons = BTreeMap::new();
    reasons.insert("queue_full".to_string(), failed_n);

    let bert_n = (bert_rps * s.duration_seconds) as u64;
    let resnet_completed = completed_n - bert_n;
    let mut r = Results {
        schema_version: SCHEMA_VERSION,
        level: s.level,
        complete: true,
        seed: s.seed,
        scenario: ScenarioInfo {
            name: s.name.clone(),
            file: format!("scenarios/{}.toml", s.name),
            overrides: s.overrides.clone(),
            config: serde_json::json!({"traffic": {"base_rps": s.base_rps, "spike_factor": s.spike_factor}}),
        },
        run: RunInfo {
            duration_seconds: s.duration_seconds,
            warmup_seconds: 120.0,
            interval_seconds: dt,
            end_seconds: s.duration_seconds,
            time_scale: 1.0,
            notes: Vec::new(),
        },
        summary: Summary {
            requests: RequestCounts {
                arrived: arrived_n,
                completed: completed_n,
                failed: failed_n,
                in_flight,
                failed_by_reason: reasons.clone(),
            },
            goodput_rps: throughput * 0.97,
            throughput_rps: throughput,
            error_rate,
            latency_seconds: lat(p50, p99, completed_n),
            queue_seconds: lat(p50 * 0.2, p99 * 0.6, completed_n),
        },
        services: vec![
            ServiceSummary {
                name: "resnet50".into(),
                requests: RequestCounts {
                    arrived: arrived_n - (bert_rps * s.duration_seconds) as u64,
                    completed: resnet_completed,
                    failed: failed_n,
                    in_flight,
                    failed_by_reason: reasons,
                },
                goodput_rps: throughput * 0.97 - bert_rps,
                throughput_rps: throughput - bert_rps,
                error_rate,
                latency_seconds: lat(p50, p99, resnet_completed),
                queue_seconds: lat(p50 * 0.2, p99 * 0.6, resnet_completed),
                replicas: ReplicaSummary {
                    min_ready,
                    max_ready,
                    mean_ready: ready_sum / n as f64,
                    max_desired,
                    restarts: 0,
                },
                versions: vec![],
                batching: Some(BatchingSummary {
                    batches: (completed_n as f64 / 11.5) as u64,
                    mean_rows: 11.5,
                    max_batch_size: 32,
                    fill_fraction: 11.5 / 32.0,
                }),
            },
            ServiceSummary {
                name: "bert-small".into(),
                requests: RequestCounts {
                    arrived: bert_n,
                    completed: bert_n,
                    ..Default::default()
                },
                goodput_rps: bert_rps,
                throughput_rps: bert_rps,
                error_rate: 0.0,
                latency_seconds: lat(0.03, 0.06, bert_n),
                queue_seconds: lat(0.001, 0.004, bert_n),
                replicas: ReplicaSummary {
                    min_ready: 2,
                    max_ready: 2,
                    mean_ready: 2.0,
                    max_desired: 2,
                    restarts: 0,
                },
                versions: vec![],
                batching: None,
            },
        ],
        timeseries,
        scaling_events: events,
        cold_starts: ColdStarts {
            count: cold,
            duration_seconds: lat(s.cold_start_seconds, s.cold_start_seconds * 1.9, cold),
            requests_delayed: delayed,
            phases_seconds: ColdStartPhases {
                node_provisioning: 40.0,
                image_pull: 18.0,
                model_load: s.cold_start_seconds - 66.0,
                readiness: 8.0,
            },
        },
        cost: Cost {
            total_usd: cost,
            monthly_usd: monthly,
            by_pool: vec![
                PoolCost {
                    name: "gpu-a100".into(),
                    usd: cost - 2.0 * 0.19 * hours,
                    node_hours: gpu_hours,
                    gpu_hours,
                    monthly_usd: (cost - 2.0 * 0.19 * hours) / hours * 730.0,
                },
                PoolCost {
                    name: "cpu-system".into(),
                    usd: 2.0 * 0.19 * hours,
                    node_hours: 2.0 * hours,
                    gpu_hours: 0.0,
                    monthly_usd: 2.0 * 0.19 * 730.0,
                },
            ],
            by_service: vec![
                ServiceCost {
                    name: "resnet50".into(),
                    usd: svc_share * 0.85,
                    monthly_usd: svc_share * 0.85 / hours * 730.0,
                },
                ServiceCost {
                    name: "bert-small".into(),
                    usd: svc_share * 0.15,
                    monthly_usd: svc_share * 0.15 / hours * 730.0,
                },
            ],
            idle_usd: idle,
        },
        slo: vec![],
        warnings: vec![],
        histograms: Histograms::default(),
        wall_clock: WallClock {
            started_at: "2026-11-24T15:00:00Z".into(),
            elapsed_seconds: 1.7,
            events: 2_000_000,
            events_per_second: 1.2e6,
            tool: "lab 0.1.0".into(),
            host: "ci-runner-3".into(),
        },
        load: None,
    };
    let specs = vec![
        SloSpec {
            name: None,
            metric: SloMetric::P99,
            service: None,
            max: Some(BoundValue::Number(s.p99_slo_seconds)),
            min: None,
        },
        SloSpec {
            name: None,
            metric: SloMetric::ErrorRate,
            service: None,
            max: Some(BoundValue::Text("1%".into())),
            min: None,
        },
        SloSpec {
            name: None,
            metric: SloMetric::MonthlyCostUsd,
            service: None,
            max: Some(BoundValue::Text("$20,000".into())),
            min: None,
        },
        SloSpec {
            name: None,
            metric: SloMetric::P95,
            service: Some("bert-small".into()),
            max: Some(BoundValue::Text("100ms".into())),
            min: None,
        },
    ];
    evaluate_slos(&specs, &mut r, lab_results::Judging::default());
    r
}
