//! `[gateway] ingress_overhead` and `queue_proxy_overhead`: the data plane's
//! time per request outside the model server. Both are in the client's
//! latency; only the queue-proxy's share is in the concurrency the KPA sees,
//! so only it moves the replicas (Knative's queue-proxy counts a request from
//! its arrival at the pod to the response, the hop before it not at all).

mod common;
use common::*;

/// 50 req/s, evenly spaced, 10 ms each on a KPA targeting one request in
/// flight per pod: 0.5 concurrent without overhead, one pod.
fn scenario_with(gateway: &str) -> String {
    format!(
        r#"
name = "overhead"
[run]
duration = "4m"
interval = "10s"
{CPU_POOL}
[gateway]
{gateway}
[[services]]
name = "s"
minReplicas = 1
maxReplicas = 10
resources = {{ cpu = "1" }}
coldStart = {{ pod_start = "1s", model_load = "1s", readiness_probe_period = "1s" }}
[services.autoscaler.kpa]
target = 1
target-utilization-percentage = 100
[[services.latency]]
gpu = "cpu"
batch_latency = {{ "1" = "10ms" }}
distribution = {{ kind = "deterministic" }}
[[traffic]]
arrivals = {{ process = "uniform" }}
phases = [{{ kind = "constant", rate = 50, duration = "4m" }}]
"#
    )
}

/// Desired replicas over the last two minutes (the stable window is full).
fn settled_desired(r: &lab_results::Results) -> Vec<u32> {
    r.timeseries
        .iter()
        .filter(|p| p.t_seconds >= 120.0)
        .map(|p| p.services[0].desired_replicas)
        .collect()
}

fn close(got: f64, want: f64) -> bool {
    // HdrHistogram keeps 3 significant digits.
    (got - want).abs() <= want * 2e-3
}

#[test]
fn both_overheads_are_in_the_latency_and_only_the_queue_proxys_moves_the_kpa() {
    let none = run(&scenario_with(""), 1);
    let ingress = run(&scenario_with(r#"ingress_overhead = "20ms""#), 1);
    let proxy = run(&scenario_with(r#"queue_proxy_overhead = "25ms""#), 1);
    let both = run(
        &scenario_with("ingress_overhead = \"20ms\"\nqueue_proxy_overhead = \"25ms\""),
        1,
    );
    for (r, want, name) in [
        (&none, 0.010, "none"),
        (&ingress, 0.030, "ingress"),
        (&proxy, 0.035, "queue-proxy"),
        (&both, 0.055, "both"),
    ] {
        let l = &r.summary.latency_seconds;
        assert!(close(l.p50, want), "{name}: p50 {} s, want {want} s", l.p50);
        assert!(close(l.max, want), "{name}: max {} s, want {want} s", l.max);
        assert_eq!(r.summary.requests.failed, 0, "{name}");
    }
    // 0.5 in flight per pod either way without the queue-proxy's share; with
    // it 50 req/s × 35 ms = 1.75, two pods at a target of 1.
    assert!(
        settled_desired(&none).iter().all(|&n| n == 1),
        "{:?}",
        settled_desired(&none)
    );
    assert_eq!(settled_desired(&ingress), settled_desired(&none));
    assert!(
        settled_desired(&proxy).iter().all(|&n| n == 2),
        "{:?}",
        settled_desired(&proxy)
    );
    assert_eq!(settled_desired(&both), settled_desired(&proxy));
}

#[test]
fn a_zero_overhead_changes_nothing_and_a_seed_gives_the_same_run() {
    let json = |r: &lab_results::Results| serde_json::to_string(r).unwrap();
    let absent = run(&scenario_with(""), 7);
    let zero = run(
        &scenario_with("ingress_overhead = \"0s\"\nqueue_proxy_overhead = \"0ms\""),
        7,
    );
    assert_eq!(json(&absent), json(&zero));
    let text = scenario_with("ingress_overhead = \"1.2ms\"\nqueue_proxy_overhead = \"3ms\"");
    assert_eq!(json(&run(&text, 7)), json(&run(&text, 7)));
    // A zero key is left out of the echoed scenario, as if never written.
    let echoed =
        serde_json::to_value(scenario(&scenario_with("ingress_overhead = \"0s\""))).unwrap();
    assert!(
        echoed["gateway"].get("ingress_overhead").is_none(),
        "{}",
        echoed["gateway"]
    );
}

#[test]
fn a_bad_overhead_is_refused_with_its_key() {
    let text = scenario_with(r#"queue_proxy_overhead = "fast""#);
    let e = lab_scenario::parse(&text, "test.toml", std::path::Path::new("."), &[]).unwrap_err();
    assert!(e.to_string().contains("queue_proxy_overhead"), "{e}");
}
