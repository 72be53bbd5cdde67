//! `--time-scale K` with the simulator as the engine: a scenario played K times
//! faster (`lab_scenario::time_scaled`) and read back in scenario time
//! (`lab_results::to_scenario_time`) tells the same story as the scenario
//! played at its own pace.

mod common;
use common::*;
use lab_results::Results;

const K: f64 = 10.0;

/// Uniform arrivals and deterministic service times: 50 req/s for 4 minutes,
/// then 200 req/s for 8, on pods that serve one request at a time in 20 ms,
/// with a cold start of 34 s (2 s start, 10 s pull, 20 s load, 5 s probes).
fn scenario_with(autoscaler: &str) -> String {
    format!(
        r#"
name = "ts"
[run]
duration = "12m"
warmup = "1m"
interval = "10s"
{CPU_POOL}
[[services]]
name = "ts"
minReplicas = 1
maxReplicas = 20
timeout = "30s"
resources = {{ cpu = "1" }}
batching = {{ max_batch_size = 1 }}
coldStart = {{ image_pull = "10s", model_load = "20s", pod_start = "2s", readiness_probe_period = "5s", termination_grace_period = "20s" }}
{autoscaler}
[[services.latency]]
gpu = "cpu"
batch_latency = {{ "1" = "20ms" }}
[[traffic]]
arrivals = {{ process = "uniform" }}
phases = [
  {{ kind = "constant", rate = 50, duration = "4m" }},
  {{ kind = "constant", rate = 200, duration = "8m" }},
]
[[slo]]
metric = "p99"
max = "200ms"
[[slo]]
metric = "goodput_rps"
min = 100
"#
    )
}

/// An HPA on requests per second per pod (a rate target, so scaled by K), with
/// a behavior whose periods divide by K.
const HPA: &str = r#"
[services.autoscaler.hpa]
metrics = [
  { type = "Pods", pods = { metric = { name = "requests_per_second" }, target = { type = "AverageValue", averageValue = "30" } } },
]
behavior = { scaleUp = { policies = [{ type = "Pods", value = 2, periodSeconds = 30 }] }, scaleDown = { stabilizationWindowSeconds = 120, policies = [{ type = "Percent", value = 50, periodSeconds = 60 }] } }
"#;

/// A KPA on concurrency, with a window and grace period that stay within
/// Knative's limits once divided by K.
const KPA: &str = r#"
[services.autoscaler.kpa]
target = 1
window = "60s"
scale-to-zero-grace-period = "60s"
"#;

/// KEDA on requests per second (a rate threshold, so scaled by K), its
/// generated HPA on the controller's default flags: the 15 s sync and the 5 min
/// downscale stabilization of the legacy path are written out and scaled too.
const KEDA: &str = r#"
[services.autoscaler.keda]
triggers = [
  { type = "prometheus", metadata = { query = "sum(rate(lab_predictor_requests_total[1m]))", threshold = "30" } },
]
"#;

/// A KPA on Knative's defaults (60 s window, 30 s grace period), which played
/// ten times faster are 6 s and 3 s: within Knative's limits divided by K.
const KPA_DEFAULTS: &str = r#"
[services.autoscaler.kpa]
target = 1
"#;

/// The HPA above with upstream's default policies (15 s periods, 1.5 s played
/// ten times faster), which whole seconds cannot carry.
const HPA_DEFAULT_POLICIES: &str = r#"
[services.autoscaler.hpa]
metrics = [
  { type = "Pods", pods = { metric = { name = "requests_per_second" }, target = { type = "AverageValue", averageValue = "30" } } },
]
behavior = { scaleDown = { stabilizationWindowSeconds = 120 } }
"#;

fn simulate(sc: &lab_scenario::Scenario) -> Results {
    lab_sim::simulate(sc, 1, &mut |_| lab_sim::Control::Continue).results
}

/// The scenario played at its pace, and played K times faster read back.
fn both(autoscaler: &str) -> (Results, Results) {
    let sc = scenario(&scenario_with(autoscaler));
    let plain = simulate(&sc);
    let fast_sc = lab_scenario::time_scaled(&sc, K).unwrap_or_else(|e| panic!("{e}"));
    let mut fast = simulate(&fast_sc);
    lab_results::to_scenario_time(&mut fast, K).unwrap();
    (plain, fast)
}

fn within(a: f64, b: f64, rel: f64, what: &str) {
    assert!(
        (a - b).abs() <= rel * b.abs().max(1e-12),
        "{what}: {a} played fast against {b} at pace (allowed {}%)",
        rel * 100.0
    );
}

fn within_counts(a: u64, b: u64, what: &str) {
    within(a as f64, b as f64, 0.005, what);
}

/// `sync`: how far apart in scenario time the two runs' decisions may fall.
fn assert_same_story(plain: &Results, fast: &Results, sync: f64) {
    if std::env::var_os("TS_DEBUG").is_some() {
        for r in [plain, fast] {
            eprintln!("{:?}", r.summary.requests);
            for e in &r.scaling_events {
                eprintln!("  {:.1} {} -> {} {}", e.t_seconds, e.from, e.to, e.reason);
            }
        }
    }
    assert_eq!(fast.run.time_scale, K);
    within(
        fast.run.duration_seconds,
        plain.run.duration_seconds,
        1e-9,
        "duration",
    );
    let (p, f) = (&plain.summary, &fast.summary);
    within_counts(f.requests.arrived, p.requests.arrived, "arrived");
    within_counts(f.requests.completed, p.requests.completed, "completed");
    within_counts(f.requests.failed, p.requests.failed, "failed");
    within(f.throughput_rps, p.throughput_rps, 0.005, "throughput");
    within(f.goodput_rps, p.goodput_rps, 0.005, "goodput");
    within(f.latency_seconds.p50, p.latency_seconds.p50, 0.02, "p50");
    within(f.latency_seconds.p99, p.latency_seconds.p99, 0.02, "p99");
    within(fast.cost.total_usd, plain.cost.total_usd, 0.01, "cost");
    within(
        fast.cost.monthly_usd,
        plain.cost.monthly_usd,
        0.01,
        "monthly cost",
    );
    let steps = |r: &Results| {
        r.scaling_events
            .iter()
            .map(|e| (e.t_seconds, e.from, e.to))
            .collect::<Vec<_>>()
    };
    let (ps, fs) = (steps(plain), steps(fast));
    assert!(!ps.is_empty(), "the scenario should scale");
    assert_eq!(
        fs.iter().map(|s| (s.1, s.2)).collect::<Vec<_>>(),
        ps.iter().map(|s| (s.1, s.2)).collect::<Vec<_>>(),
        "replica steps: fast {fs:?}, at pace {ps:?}"
    );
    for (a, b) in fs.iter().zip(&ps) {
        assert!(
            (a.0 - b.0).abs() <= sync,
            "a step at {} s played fast, at {} s at pace",
            a.0,
            b.0
        );
    }
    assert_eq!(fast.cold_starts.count, plain.cold_starts.count);
    within(
        fast.cold_starts.duration_seconds.mean,
        plain.cold_starts.duration_seconds.mean,
        0.01,
        "cold start",
    );
    let verdicts = |r: &Results| {
        r.slo
            .iter()
            .map(|s| (s.name.clone(), s.verdict()))
            .collect::<Vec<_>>()
    };
    assert_eq!(verdicts(fast), verdicts(plain));
    for (a, b) in fast.slo.iter().zip(&plain.slo) {
        within(a.threshold, b.threshold, 1e-9, "SLO threshold");
        within(
            a.observed.unwrap(),
            b.observed.unwrap(),
            0.02,
            "SLO observed",
        );
    }
}

#[test]
fn an_hpa_scenario_played_ten_times_faster_reads_back_the_same() {
    let (plain, fast) = both(HPA);
    // The HPA syncs every 15 s of scenario time in both runs.
    assert_same_story(&plain, &fast, 15.0);
}

/// The KPA decides every 2 s over 1 s buckets at pace and, with its
/// `tick-interval` and `metric-bucket` scaled, every 0.2 s over 0.1 s buckets
/// played fast: the same ticks of scenario time.
#[test]
fn a_kpa_scenario_played_ten_times_faster_reads_back_the_same() {
    let (plain, fast) = both(KPA);
    assert_same_story(&plain, &fast, 2.0);
}

#[test]
fn a_kpa_on_knatives_defaults_played_ten_times_faster_reads_back_the_same() {
    let (plain, fast) = both(KPA_DEFAULTS);
    assert_same_story(&plain, &fast, 2.0);
}

#[test]
fn an_hpa_on_upstreams_default_policies_played_ten_times_faster_reads_back_the_same() {
    let (plain, fast) = both(HPA_DEFAULT_POLICIES);
    assert_same_story(&plain, &fast, 15.0);
}

#[test]
fn a_keda_scenario_played_ten_times_faster_reads_back_the_same() {
    let (plain, fast) = both(KEDA);
    // KEDA polls every 30 s and its HPA syncs every 15 s of scenario time in both runs.
    assert_same_story(&plain, &fast, 15.0);
}

#[test]
fn only_the_kpa_activation_timeout_is_left_unscaled() {
    let sc = scenario(&scenario_with(KPA));
    let caveats = lab_scenario::time_scale_caveats(&sc, K);
    assert_eq!(caveats.len(), 1, "{caveats:?}");
    assert!(
        caveats[0].contains("KPA") && caveats[0].contains("6300s"),
        "{caveats:?}"
    );
    for other in [HPA, KEDA] {
        assert!(lab_scenario::time_scale_caveats(&scenario(&scenario_with(other)), K).is_empty());
    }
}
