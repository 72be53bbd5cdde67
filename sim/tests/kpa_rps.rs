//! A KPA on `metric = "rps"` reads the requests per second of each metric bucket,
//! as Knative's queue-proxy reports them, so at a steady rate it holds
//! ceil(rate / (target × utilization)) replicas.

mod common;
use common::*;

/// 100 req/s for 3 minutes, then 200 req/s for 4, uniform arrivals, 10 ms per
/// request, on a KPA targeting 12 rps per pod at 100 % utilization.
const SCENARIO: &str = r#"
name = "kpa-rps"
[run]
duration = "7m"
warmup = "0s"
interval = "10s"
[[node_pools]]
name = "cpu"
cpu = "64"
memory = "64Gi"
price_per_hour = 1
min_nodes = 1
max_nodes = 1
[[services]]
name = "s"
minReplicas = 1
maxReplicas = 40
resources = { cpu = "1" }
batching = { max_batch_size = 1 }
coldStart = { pod_start = "1s", model_load = "1s", readiness_probe_period = "1s" }
[services.autoscaler.kpa]
metric = "rps"
target = 12
target-utilization-percentage = 100
[[services.latency]]
gpu = "cpu"
batch_latency = { "1" = "10ms" }
distribution = { kind = "deterministic" }
[[traffic]]
arrivals = { process = "uniform" }
phases = [
  { kind = "constant", rate = 100, duration = "3m" },
  { kind = "constant", rate = 200, duration = "4m" },
]
"#;

#[test]
fn a_kpa_on_rps_holds_rate_over_target_replicas_at_a_steady_rate() {
    let r = run(SCENARIO, 1);
    let desired = |from: f64, to: f64| {
        r.timeseries
            .iter()
            .filter(|p| p.t_seconds >= from && p.t_seconds < to)
            .map(|p| (p.t_seconds, p.services[0].desired_replicas))
            .collect::<Vec<_>>()
    };
    // A full stable window (60 s) after each change of rate.
    for (from, to, rate) in [(90.0, 180.0, 100.0), (270.0, 420.0, 200.0)] {
        let want = (rate / 12.0_f64).ceil() as u32;
        let got = desired(from, to);
        assert!(!got.is_empty());
        assert!(
            got.iter().all(|&(_, n)| n == want),
            "at {rate} req/s the KPA should want {want} replicas, got {got:?}"
        );
    }
}
