//! Invariants over random scenarios: conservation, bounds, determinism.

mod common;
use common::*;
use proptest::prelude::*;

fn autoscaled(rate: f64, spike: f64, min: u32, max: u32, cc: u32, queue: u32, kpa: bool) -> String {
    let autoscaler = if kpa {
        "[services.autoscaler.kpa]\ntarget = 4\n".to_string()
    } else {
        "[services.autoscaler.hpa]\nmetrics = [{ type = \"Pods\", pods = { metric = { name = \"concurrency\" }, target = { type = \"AverageValue\", averageValue = \"4\" } } }]\n".to_string()
    };
    format!(
        r#"
name = "prop"
[run]
duration = "6m"
interval = "5s"
[[node_pools]]
name = "t4"
gpu = "T4"
gpus_per_node = 1
cpu = "4"
memory = "16Gi"
price_per_hour = 0.5
min_nodes = 0
max_nodes = 6
provisioning_time = "40s"
capacity_type = "spot"
spot_interruptions_per_hour = 20
interruption_notice = "20s"
[[services]]
name = "svc"
minReplicas = {min}
maxReplicas = {max}
containerConcurrency = {cc}
timeout = "20s"
resources = {{ cpu = "1", "nvidia.com/gpu" = 1 }}
batching = {{ max_batch_size = 4, max_queue_delay_microseconds = 2000, max_queue_size = {queue} }}
coldStart = {{ image_pull = "10s", model_load = "5s", readiness_probe_period = "2s" }}
[[services.latency]]
gpu = "T4"
batch_latency = {{ "1" = "10ms", "4" = "25ms" }}
distribution = {{ kind = "lognormal", cv = 0.5 }}
{autoscaler}
[[traffic]]
arrivals = {{ process = "gamma", cv = 2.0 }}
phases = [
  {{ kind = "spike", base = {rate}, multiplier = {spike}, at = "1m", rise = "10s", hold = "1m", decay = "10s", duration = "4m" }},
  {{ kind = "idle", duration = "2m" }},
]
"#
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn requests_are_conserved_and_replicas_stay_in_bounds(
        seed in any::<u64>(),
        rate in 5.0f64..150.0,
        spike in 1.0f64..12.0,
        min in 0u32..3,
        extra in 1u32..5,
        cc in 0u32..6,
        queue in prop_oneof![Just(0u32), 5u32..50],
        kpa in any::<bool>(),
    ) {
        let min = if kpa { min } else { min.max(1) };
        let max = min + extra;
        let r = run(&autoscaled(rate, spike, min, max, cc, queue, kpa), seed);
        let q = &r.summary.requests;
        prop_assert!(q.is_conserved(), "{q:?}");
        prop_assert_eq!(q.arrived, q.completed + q.failed + q.in_flight);
        for p in &r.timeseries {
            for s in &p.services {
                prop_assert!(s.desired_replicas <= max, "desired {} > max {max}", s.desired_replicas);
                prop_assert!(s.ready_replicas <= max, "ready {} > max {max}", s.ready_replicas);
            }
        }
        for e in r.scaling_events.iter().filter(|e| e.autoscaler == "hpa" || e.autoscaler == "kpa") {
            prop_assert!(e.to <= max && e.to >= min.min(e.to), "{e:?}");
        }
        prop_assert!(r.summary.latency_seconds.p50 >= 0.0);
        prop_assert!(r.cost.total_usd >= r.cost.idle_usd);
    }
}

#[test]
fn same_scenario_and_seed_give_identical_results() {
    let text = autoscaled(80.0, 8.0, 1, 4, 2, 20, false);
    let a = serde_json::to_value(run(&text, 99)).unwrap();
    let b = serde_json::to_value(run(&text, 99)).unwrap();
    let c = serde_json::to_value(run(&text, 100)).unwrap();
    assert_eq!(a, b);
    assert_ne!(a["summary"], c["summary"]);
}

#[test]
fn a_stop_request_yields_partial_results() {
    let s = scenario(&queue_scenario(2000.0, 1.0, 4, "exponential", 30));
    let mut calls = 0;
    let out = lab_sim::simulate(&s, 1, &mut |_| {
        calls += 1;
        if calls >= 2 {
            lab_sim::Control::Stop
        } else {
            lab_sim::Control::Continue
        }
    });
    assert!(!out.results.complete);
    assert!(out.results.run.end_seconds < out.results.run.duration_seconds);
    assert!(out.results.summary.requests.is_conserved());
}

#[test]
fn canary_split_sends_the_declared_share_to_each_version() {
    let text = r#"
name = "canary"
[run]
duration = "5m"
[[node_pools]]
name = "cpu"
cpu = "64"
memory = "64Gi"
price_per_hour = 1
min_nodes = 1
max_nodes = 1
[[services]]
name = "m"
minReplicas = 2
maxReplicas = 2
resources = { cpu = "1" }
autoscaler.fixed = {}
versions = [
  { name = "stable", trafficPercent = 80 },
  { name = "canary", trafficPercent = 20, latency = [{ gpu = "cpu", batch_latency = { "1" = "3ms" } }] },
]
[[services.latency]]
gpu = "cpu"
batch_latency = { "1" = "1ms" }
[[traffic]]
phases = [{ kind = "constant", rate = 200, duration = "5m" }]
"#;
    let r = run(text, 4);
    let versions = &r.services[0].versions;
    assert_eq!(versions.len(), 2);
    let total = r.summary.requests.arrived as f64;
    let canary = versions.iter().find(|v| v.name == "canary").unwrap();
    let share = canary.requests.arrived as f64 / total;
    // Binomial(60000, 0.2): 5 sigma is under 0.01.
    assert!((share - 0.2).abs() < 0.01, "canary share {share}");
    // Each version is served with its own latency profile.
    let stable = versions.iter().find(|v| v.name == "stable").unwrap();
    assert!(
        canary.latency_seconds.p50 > 2.5 * stable.latency_seconds.p50,
        "{canary:?} {stable:?}"
    );
    assert_eq!(
        versions.iter().map(|v| v.requests.arrived).sum::<u64>(),
        r.summary.requests.arrived
    );
}

fn batched(rate: f64) -> String {
    format!(
        r#"
name = "batched"
[run]
duration = "2m"
{CPU_POOL}
[[services]]
name = "b"
resources = {{ cpu = "1" }}
batching = {{ max_batch_size = 16, max_queue_delay_microseconds = 5000, instances = 2 }}
timeout = "1h"
autoscaler.fixed = {{}}
[[services.latency]]
gpu = "cpu"
batch_latency = {{ "1" = "2ms", "16" = "8ms" }}
[[traffic]]
phases = [{{ kind = "constant", rate = {rate}, duration = "2m" }}]
"#
    )
}

#[test]
fn batch_fill_grows_with_load_and_accounts_for_every_started_request() {
    let fill = |rate: f64| {
        let r = run(&batched(rate), 3);
        let s = &r.services[0];
        let b = s.batching.expect("a batching service reports its batches");
        assert!(b.batches > 0);
        assert!((1.0..=16.0).contains(&b.mean_rows), "{b:?}");
        assert_eq!(b.max_batch_size, 16);
        assert!((b.fill_fraction - b.mean_rows / 16.0).abs() < 1e-12);
        // No warm-up and no timeouts: the rows of all batches are the requests
        // that started, between those completed and those completed or in flight.
        let rows = (b.mean_rows * b.batches as f64).round() as u64;
        let c = &s.requests;
        assert!(
            c.completed <= rows && rows <= c.completed + c.in_flight,
            "{rows} rows, {c:?}"
        );
        b.mean_rows
    };
    let light = fill(20.0);
    let heavy = fill(2000.0);
    // At 20 req/s a 5 ms window rarely holds a second request; at 2000 req/s
    // it holds about ten.
    assert!(light < 1.5, "light load: {light} rows per batch");
    assert!(heavy > 4.0 * light, "heavy {heavy} vs light {light}");
}

#[test]
fn batch_fill_per_interval_and_after_warm_up() {
    // Intervals of 7 s, so the 60 s warm-up falls inside one (56..63 s).
    let text = batched(2000.0).replace(
        "duration = \"2m\"\n[[node_pools]]",
        "duration = \"2m\"\ninterval = \"7s\"\n[[node_pools]]",
    );
    let whole = run(&text, 5);
    let warmed = run(
        &text.replace("interval = ", "warmup = \"60s\"\ninterval = "),
        5,
    );
    assert_eq!(warmed.run.warmup_seconds, 60.0);
    let (a, b) = (
        whole.services[0].batching.unwrap(),
        warmed.services[0].batching.unwrap(),
    );
    // Same seed, same batches: the warmed run counts those of the second minute.
    let share = b.batches as f64 / a.batches as f64;
    assert!((share - 0.5).abs() < 0.02, "{b:?} of {a:?}");
    assert!((b.mean_rows - a.mean_rows).abs() < 0.5, "{b:?} vs {a:?}");
    // Every interval says how full its batches were.
    assert!(whole.timeseries.len() >= 17);
    for p in &whole.timeseries {
        let f = p.services[0]
            .batch_fill_fraction
            .expect("a batching service");
        assert!(f > 4.0 / 16.0 && f <= 1.0, "at {} s: {f}", p.t_seconds);
    }
}

#[test]
fn a_service_without_batching_reports_no_batch_fill() {
    let text = batched(100.0).replace(
        "batching = { max_batch_size = 16, max_queue_delay_microseconds = 5000, instances = 2 }\n",
        "",
    );
    let r = run(&text, 3);
    assert!(r.services[0].batching.is_none());
    assert!(r
        .timeseries
        .iter()
        .all(|p| p.services[0].batch_fill_fraction.is_none()));
    // Batches of one row (a batching table only for its execution instances)
    // are full by definition: no fill either.
    let ones = batched(100.0).replace("max_batch_size = 16", "max_batch_size = 1");
    let r = run(&ones, 3);
    assert!(r.services[0].batching.is_none());
    assert!(r.summary.requests.completed > 0);
    assert!(r.summary.requests.completed > 0);
}
