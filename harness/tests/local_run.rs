//! `lab run --level local` end to end: real `lab serve` pods, the gateway,
//! the live controller, the load generator and (where a query needs it) a
//! real Prometheus, on small scenarios played faster with `--time-scale`.
//! Each test asserts what the run did, read back from its results.json.

mod common;

use common::{repo, stderr};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const POOL: &str = r#"
[[node_pools]]
name = "t4"
gpu = "T4"
gpus_per_node = 1
cpu = "8"
memory = "32Gi"
price_per_hour = 0.5
min_nodes = 1
max_nodes = 4
provisioning_time = "20s"
"#;

/// The send lag a loaded CI machine may show before a run fails for it.
const SEND_LAG_SLACK: &str = "250ms";

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run_local(scenario: &Path, out: &Path, k: &str, extra: &[&str]) -> (Output, Value) {
    let mut args = vec![
        "run".to_string(),
        scenario.display().to_string(),
        "--level".into(),
        "local".into(),
        "--time-scale".into(),
        k.into(),
        "--out".into(),
        out.display().to_string(),
        "--no-report".into(),
        "--progress".into(),
        "never".into(),
    ];
    if !extra.contains(&"--max-send-lag") {
        // These tests are about behaviour, not the machine's timing: CI runs
        // them in parallel on two cores with a debug build.
        args.extend(["--max-send-lag".into(), SEND_LAG_SLACK.into()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(&args)
        .current_dir(repo())
        .output()
        .expect("lab runs");
    let text = std::fs::read_to_string(out.join("results.json")).unwrap_or_else(|_| {
        panic!(
            "no results.json (exit {:?}):\n{}\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            stderr(&o)
        )
    });
    (o, serde_json::from_str(&text).unwrap())
}

fn events<'a>(r: &'a Value, autoscaler: &str) -> Vec<&'a Value> {
    r["scaling_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["autoscaler"] == autoscaler)
        .collect()
}

fn steps(evs: &[&Value]) -> Vec<(u64, u64)> {
    evs.iter()
        .map(|e| (e["from"].as_u64().unwrap(), e["to"].as_u64().unwrap()))
        .collect()
}

fn conserved(r: &Value) {
    let q = &r["summary"]["requests"];
    let n = |k: &str| q[k].as_u64().unwrap();
    assert!(n("arrived") > 0, "{q}");
    assert_eq!(
        n("arrived"),
        n("completed") + n("failed") + n("in_flight"),
        "every request is accounted for: {q}"
    );
}

#[test]
fn kpa_at_zero_holds_a_request_through_a_real_cold_start_and_returns_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        &format!(
            r#"
name = "kpa-zero"
[run]
duration = "210s"
interval = "5s"
seed = 7
{POOL}
[[services]]
name = "sentiment"
minReplicas = 0
maxReplicas = 1
containerConcurrency = 4
timeout = "60s"
resources = {{ cpu = "1", memory = "1Gi", "nvidia.com/gpu" = 1 }}
coldStart = {{ image_pull = "6s", model_load = "4s", readiness_probe_period = "1s", pod_start = "1s" }}
[[services.latency]]
gpu = "T4"
batch_latency = {{ "1" = "20ms" }}
[services.autoscaler.kpa]
target = 5
window = "30s"
scale-to-zero-grace-period = "30s"
[[traffic]]
arrivals = {{ process = "uniform" }}
phases = [
  {{ kind = "idle", duration = "100s" }},
  {{ kind = "constant", rate = 2, duration = "10s" }},
  {{ kind = "idle", duration = "100s" }},
]
"#
        ),
    );
    let out = dir.path().join("out");
    let (o, r) = run_local(&scenario, &out, "5", &[]);
    assert_eq!(r["level"], "local");
    assert_eq!(r["run"]["time_scale"], 5.0);
    conserved(&r);
    let q = &r["summary"]["requests"];
    assert_eq!(
        q["failed"],
        0,
        "the activator held every request: {q}\n{}",
        stderr(&o)
    );
    let kpa = steps(&events(&r, "kpa"));
    // Warm at one, down to zero in the idle start, up for the burst, down again.
    assert!(
        kpa.len() >= 3 && kpa[0] == (1, 0) && kpa[1].0 == 0 && kpa.last().unwrap().1 == 0,
        "KPA steps {kpa:?}"
    );
    let up = events(&r, "kpa")[1]["t_seconds"].as_f64().unwrap();
    assert!(
        (100.0..106.0).contains(&up),
        "the poke scales up at the first request: {up}"
    );
    let cold = &r["cold_starts"];
    assert!(cold["count"].as_u64().unwrap() >= 1, "{cold}");
    assert!(cold["requests_delayed"].as_u64().unwrap() >= 1, "{cold}");
    // The node kept the image from the warm pod, so no pull; container
    // start, model load and the probe are waited for real: at least their
    // 5 s of scenario time, and not four times that even on a loaded one.
    let mean = cold["duration_seconds"]["mean"].as_f64().unwrap();
    assert!((5.0..20.0).contains(&mean), "cold start {mean} s: {cold}");
    let phases = &cold["phases_seconds"];
    let phase = |k: &str| phases[k].as_f64().unwrap();
    assert!(phase("image_pull") < 0.1, "{cold}");
    assert!((phase("model_load") - 4.0).abs() < 0.01, "{cold}");
    assert!(
        phase("readiness") >= 1.0,
        "container start and probe: {cold}"
    );
    let max = r["summary"]["latency_seconds"]["max"].as_f64().unwrap();
    assert!(
        max >= 5.0,
        "the first request waited for the cold start: max {max}"
    );
}

#[test]
fn hpa_adds_pods_under_a_ramp_within_its_behavior() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        &format!(
            r#"
name = "hpa-ramp"
[run]
duration = "180s"
interval = "10s"
seed = 3
[metrics]
scrape_interval = "5s"
rate_window = "20s"
{POOL}
[[services]]
name = "ranker"
minReplicas = 1
maxReplicas = 4
resources = {{ cpu = "1", memory = "1Gi", "nvidia.com/gpu" = 1 }}
coldStart = {{ image_pull = "2s", model_load = "2s", readiness_probe_period = "1s", pod_start = "1s" }}
[[services.latency]]
gpu = "T4"
batch_latency = {{ "1" = "50ms" }}
[services.autoscaler.hpa]
metrics = [
  {{ type = "Pods", pods = {{ metric = {{ name = "lab_predictor_inflight_requests" }}, target = {{ type = "AverageValue", averageValue = "1" }} }} }},
]
controller = {{ syncPeriod = "10s" }}
behavior = {{ scaleUp = {{ stabilizationWindowSeconds = 0, policies = [{{ type = "Pods", value = 1, periodSeconds = 30 }}] }} }}
[[traffic]]
arrivals = {{ process = "poisson" }}
phases = [{{ kind = "ramp", from = 5, to = 60, duration = "180s" }}]
"#
        ),
    );
    let out = dir.path().join("out");
    let (o, r) = run_local(&scenario, &out, "5", &[]);
    conserved(&r);
    let hpa = events(&r, "hpa");
    let s = steps(&hpa);
    assert!(
        s.iter().any(|(from, to)| to > from),
        "the ramp adds pods: {s:?}\n{}",
        stderr(&o)
    );
    // One pod per 30 s at most: each step adds one, 30 s or more apart.
    let ups: Vec<f64> = hpa
        .iter()
        .filter(|e| e["to"].as_u64() > e["from"].as_u64())
        .map(|e| {
            assert_eq!(
                e["to"].as_u64().unwrap() - e["from"].as_u64().unwrap(),
                1,
                "{e}"
            );
            e["t_seconds"].as_f64().unwrap()
        })
        .collect();
    for w in ups.windows(2) {
        assert!(
            w[1] - w[0] >= 29.0,
            "scale-ups {ups:?} closer than the policy's 30 s"
        );
    }
    let max = r["services"][0]["replicas"]["max_ready"].as_u64().unwrap();
    assert!(max >= 2, "added pods became ready: {max}");
    // The Pods metric came from Prometheus, as a prometheus-adapter serves it.
    let reason = hpa[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains(
            r#"promql: sum by (pod) (lab_predictor_inflight_requests{service="ranker",revision="default"})"#
        ),
        "{reason}"
    );
}

#[test]
fn keda_prometheus_trigger_activates_from_zero_on_a_real_query() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        &format!(
            r#"
name = "keda-prom"
[run]
duration = "120s"
interval = "5s"
seed = 5
[metrics]
scrape_interval = "2s"
{POOL}
[[services]]
name = "embedder"
minReplicas = 0
maxReplicas = 2
timeout = "120s"
resources = {{ cpu = "1", memory = "1Gi", "nvidia.com/gpu" = 1 }}
coldStart = {{ image_pull = "2s", model_load = "2s", readiness_probe_period = "1s", pod_start = "1s" }}
[[services.latency]]
gpu = "T4"
batch_latency = {{ "1" = "20ms" }}
[services.autoscaler.keda]
pollingInterval = "5s"
cooldownPeriod = "30s"
[[services.autoscaler.keda.triggers]]
type = "prometheus"
signal = "queue_depth"
metadata = {{ serverAddress = "http://prometheus:9090", query = 'sum(kn_revision_request_queued{{service="embedder"}})', threshold = "5", activationThreshold = "0" }}
[[traffic]]
arrivals = {{ process = "uniform" }}
phases = [
  {{ kind = "idle", duration = "30s" }},
  {{ kind = "constant", rate = 2, duration = "20s" }},
  {{ kind = "idle", duration = "70s" }},
]
"#
        ),
    );
    let out = dir.path().join("out");
    let (o, r) = run_local(&scenario, &out, "5", &[]);
    conserved(&r);
    let keda = events(&r, "keda");
    let s = steps(&keda);
    let activation = keda
        .iter()
        .find(|e| e["from"] == 0 && e["to"].as_u64() >= Some(1))
        .unwrap_or_else(|| panic!("KEDA activates from zero: {s:?}\n{}", stderr(&o)));
    let reason = activation["reason"].as_str().unwrap();
    let recorded = reason
        .split("promql: ")
        .nth(1)
        .unwrap_or_else(|| panic!("the reason records the query: {reason}"));
    assert!(
        recorded.starts_with(r#"sum(kn_revision_request_queued{service="embedder"}) = "#),
        "{reason}"
    );
    let value: f64 = recorded
        .split(" = ")
        .nth(1)
        .and_then(|v| v.trim_end_matches(']').split(';').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("a value in {reason}"));
    assert!(
        value > 0.0,
        "activation rested on a queued request: {reason}"
    );
    let t = activation["t_seconds"].as_f64().unwrap();
    assert!(t >= 30.0, "no activation before the first request: {t}");
    assert_eq!(r["summary"]["requests"]["failed"], 0, "{}", stderr(&o));
    // And back to zero after the cooldown.
    assert_eq!(s.last().unwrap().1, 0, "{s:?}");
}

#[test]
fn a_canary_split_of_80_20_lands_within_two_points() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        &format!(
            r#"
name = "canary"
[run]
duration = "20s"
interval = "5s"
seed = 11
{POOL}
[[services]]
name = "ranker"
minReplicas = 1
maxReplicas = 1
resources = {{ cpu = "1", memory = "1Gi", "nvidia.com/gpu" = 1 }}
[[services.latency]]
gpu = "T4"
batch_latency = {{ "1" = "2ms" }}
[[services.versions]]
name = "stable"
trafficPercent = 80
[[services.versions]]
name = "canary"
trafficPercent = 20
[[traffic]]
arrivals = {{ process = "poisson" }}
phases = [{{ kind = "constant", rate = 200, duration = "20s" }}]
"#
        ),
    );
    let out = dir.path().join("out");
    let (o, r) = run_local(&scenario, &out, "1", &[]);
    conserved(&r);
    assert_eq!(r["summary"]["requests"]["failed"], 0, "{}", stderr(&o));
    let versions = r["services"][0]["versions"].as_array().unwrap();
    let share = |name: &str| {
        versions
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("{versions:?}"))["traffic_percent"]
            .as_f64()
            .unwrap()
    };
    let arrived: u64 = versions
        .iter()
        .map(|v| v["requests"]["arrived"].as_u64().unwrap())
        .sum();
    assert!(arrived >= 3500, "{arrived}");
    assert!((share("stable") - 80.0).abs() <= 2.0, "{versions:?}");
    assert!((share("canary") - 20.0).abs() <= 2.0, "{versions:?}");
}

/// The `lab serve` children of `parent`, from /proc.
fn children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The fields after the command name, which may hold spaces.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let ppid: u32 = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let state = rest.split_whitespace().next().unwrap_or("");
        if ppid == parent && state != "Z" && String::from_utf8_lossy(&cmd).contains("serve") {
            out.push(pid);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// `lab run SCENARIO --level local` in the background, its stderr kept.
fn spawn_local(scenario: &Path, out: impl AsRef<Path>) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .args([
            "run",
            scenario.to_str().unwrap(),
            "--level",
            "local",
            "--out",
        ])
        .arg(out.as_ref())
        .args(["--no-report", "--progress", "never"])
        .args(["--max-send-lag", SEND_LAG_SLACK])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Polls `f` until it holds: the only way to see another process's state.
fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn steady(duration: &str, replicas: u32) -> String {
    format!(
        r#"
name = "steady"
[run]
duration = "{duration}"
interval = "5s"
seed = 2
{POOL}
[[services]]
name = "ranker"
minReplicas = {replicas}
maxReplicas = {replicas}
resources = {{ cpu = "1", memory = "1Gi", "nvidia.com/gpu" = 1 }}
coldStart = {{ image_pull = "1s", model_load = "1s", readiness_probe_period = "1s", pod_start = "1s" }}
[[services.latency]]
gpu = "T4"
batch_latency = {{ "1" = "5ms" }}
[[traffic]]
arrivals = {{ process = "poisson" }}
phases = [{{ kind = "constant", rate = 50, duration = "{duration}" }}]
"#
    )
}

#[test]
fn a_pod_killed_mid_run_is_restarted_and_no_request_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), &steady("30s", 2));
    let out = dir.path().join("out");
    let child = spawn_local(&scenario, &out);
    let lab = child.id();
    wait_until("two pods", Duration::from_secs(60), || {
        children(lab).len() == 2
    });
    // Some traffic first, then a crash as the kubelet would see it.
    std::thread::sleep(Duration::from_secs(5));
    let victim = children(lab)[0];
    unsafe_kill(victim, 9);
    let o = child.wait_with_output().unwrap();
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    conserved(&r);
    assert_eq!(r["complete"], true, "{}", stderr(&o));
    let restarts = r["services"][0]["replicas"]["restarts"]
        .as_u64()
        .unwrap_or(0);
    assert_eq!(
        restarts, 1,
        "the crash is counted: {}",
        r["services"][0]["replicas"]
    );
    let q = &r["summary"]["requests"];
    assert!(q["completed"].as_u64().unwrap() > 1000, "{q}");
    // At most the requests the killed pod held fail; the rest completed.
    assert!(q["failed"].as_u64().unwrap() <= 10, "{q}");
}

fn unsafe_kill(pid: u32, sig: i32) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn ctrl_c_writes_partial_results_and_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), &steady("10m", 2));
    let out = dir.path().join("out");
    let child = spawn_local(&scenario, &out);
    let lab = child.id();
    wait_until("two pods", Duration::from_secs(60), || {
        children(lab).len() == 2
    });
    let pods = children(lab);
    std::thread::sleep(Duration::from_secs(2));
    unsafe_kill(lab, 2);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    for p in &pods {
        assert!(!alive(*p), "pod process {p} outlived lab");
    }
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(r["complete"], false);
    conserved(&r);
}

#[test]
fn sigkill_of_lab_takes_its_pods_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), &steady("10m", 2));
    let mut child = spawn_local(&scenario, dir.path().join("out"));
    let lab = child.id();
    wait_until("two pods", Duration::from_secs(60), || {
        children(lab).len() == 2
    });
    let pods = children(lab);
    unsafe_kill(lab, 9);
    child.wait().unwrap();
    wait_until("the pods to die with lab", Duration::from_secs(10), || {
        pods.iter().all(|p| !alive(*p))
    });
}

#[test]
fn a_model_file_runs_onnx_runtime_and_the_hpa_scales_on_its_real_cpu() {
    // ONNX Runtime comes from where scripts/install-test-deps.sh put it, found
    // by `lab serve` as the predictor's own tests find it (ORT_DYLIB_PATH, or
    // the onnxruntime Python package).
    let dir = tempfile::tempdir().unwrap();
    let model = repo().join("predictor/models/mlp.onnx");
    let scenario = write(
        dir.path(),
        &format!(
            r#"
name = "onnx-cpu"
[run]
duration = "40s"
interval = "5s"
seed = 11
[metrics]
scrape_interval = "5s"
rate_window = "10s"
[[node_pools]]
name = "cpu"
cpu = "8"
memory = "32Gi"
price_per_hour = 0.2
min_nodes = 1
max_nodes = 2
provisioning_time = "5s"
[[services]]
name = "mlp"
modelFile = "{model}"
minReplicas = 1
maxReplicas = 3
resources = {{ cpu = "100m", memory = "512Mi" }}
coldStart = {{ image_pull = "1s", model_load = "1s", readiness_probe_period = "1s", pod_start = "1s" }}
[[services.latency]]
gpu = "cpu"
batch_latency = {{ "1" = "2ms" }}
[services.autoscaler.hpa]
metrics = [
  {{ type = "Resource", resource = {{ name = "cpu", target = {{ type = "Utilization", averageUtilization = 2 }} }} }},
]
controller = {{ syncPeriod = "10s" }}
[[traffic]]
arrivals = {{ process = "poisson" }}
phases = [{{ kind = "constant", rate = 30, duration = "40s" }}]
"#,
            model = model.display()
        ),
    );
    let out = dir.path().join("out");
    let (o, r) = run_local(&scenario, &out, "1", &[]);
    conserved(&r);
    let q = &r["summary"]["requests"];
    assert_eq!(
        q["completed"],
        q["arrived"],
        "every request completed: mlp's real inputs (FP32 [-1, 32]) were sent: {q}\n{}",
        stderr(&o)
    );
    let notes: Vec<&str> = r["run"]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.contains("`mlp`") && n.contains("ONNX Runtime") && n.contains("real CPU")),
        "the results say the service ran ONNX Runtime: {notes:?}"
    );
    let hpa = events(&r, "hpa");
    assert!(
        hpa.iter().any(|e| e["to"].as_u64() > e["from"].as_u64()
            && e["reason"].as_str().unwrap().contains("cpu")),
        "the HPA saw the pod's real CPU above 2 % of 100m and scaled up: {hpa:?}\n{}",
        stderr(&o)
    );
    // The reason carries the utilization the HPA read: "cpu utilization N%".
    let seen: Vec<f64> = hpa
        .iter()
        .filter_map(|e| {
            let reason = e["reason"].as_str()?;
            let rest = reason.split("cpu utilization ").nth(1)?;
            rest.split('%').next()?.trim().parse().ok()
        })
        .collect();
    assert!(
        !seen.is_empty() && seen.iter().all(|u| *u > 0.0),
        "nonzero CPU utilization in the HPA's reasons: {seen:?} {hpa:?}"
    );
}

#[test]
fn compare_sim_judges_the_fidelity_bounds_the_scenario_declares() {
    let dir = tempfile::tempdir().unwrap();
    // Slack 3: a debug build on two shared cores adds a few milliseconds per
    // request (gateway, JSON, the generator) to the 100 ms service time.
    let scenario = write(
        dir.path(),
        &format!(
            r#"
name = "fidelity-steady"
[run]
duration = "30s"
interval = "10s"
warmup = "5s"
seed = 4
{POOL}
[[services]]
name = "ranker"
minReplicas = 2
maxReplicas = 2
resources = {{ cpu = "1", memory = "1Gi", "nvidia.com/gpu" = 1 }}
[[services.latency]]
gpu = "T4"
batch_latency = {{ "1" = "100ms" }}
[[traffic]]
arrivals = {{ process = "poisson" }}
phases = [{{ kind = "constant", rate = 10, duration = "30s" }}]
[fidelity]
p50 = 0.10
p99 = 0.10
throughput = 0.02
cost = 0.02
replicas = 0
slack = 3
"#
        ),
    );
    let out = dir.path().join("out");
    let (o, r) = run_local(&scenario, &out, "1", &["--compare-sim"]);
    conserved(&r);
    // Two pods throughout: the mean is over the scenario's 30 s, not the
    // drain after it.
    let mean_ready = r["services"][0]["replicas"]["mean_ready"].as_f64().unwrap();
    assert!((mean_ready - 2.0).abs() < 1e-6, "mean ready {mean_ready}");
    let sim: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("sim.json")).unwrap()).unwrap();
    assert_eq!(sim["level"], "sim");
    assert_eq!(sim["seed"], r["seed"]);
    let cmp: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("comparison.json")).unwrap())
            .unwrap();
    let bounds = cmp["bounds"].as_array().unwrap();
    let names: Vec<&str> = bounds.iter().filter_map(|b| b["key"].as_str()).collect();
    for want in ["p50", "p99", "throughput", "cost", "replicas"] {
        assert!(names.contains(&want), "{want} judged: {names:?}");
    }
    assert!(out.join("comparison.html").is_file());
    overhead_reached_the_simulator(&scenario, &cmp, &sim, dir.path());
    let broken: Vec<&Value> = bounds.iter().filter(|b| b["passed"] != true).collect();
    assert_eq!(
        o.status.code(),
        Some(if broken.is_empty() { 0 } else { 1 }),
        "the exit code follows the bounds: {broken:?}"
    );
    assert!(
        broken.is_empty(),
        "fidelity within the declared slack: {broken:#?}\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// The overhead `--compare-sim` measured is what the simulator was given,
/// and it is in the simulated latency: every request longer by that much than
/// in a plain simulation of the same file and seed.
fn overhead_reached_the_simulator(scenario: &Path, cmp: &Value, sim: &Value, dir: &Path) {
    let o = &cmp["overhead"];
    let measured = |k: &str| o["measured"]["scenario_time_ms"][k].as_f64();
    let ingress = measured("ingress").unwrap_or_else(|| panic!("ingress measured: {o:#}"));
    assert!(
        ingress > 0.0 && ingress < 50.0,
        "a loopback hop costs well under 50 ms: {o:#}"
    );
    let proxy = match measured("queue_proxy") {
        Some(ms) => ms,
        None => {
            // Only without Prometheus, and then the run says why.
            let why = o["measured"]["missing"].to_string();
            assert!(why.contains("Prometheus"), "{o:#}");
            0.0
        }
    };
    for (key, ms) in [("ingress", ingress), ("queue_proxy", proxy)] {
        let given = o["simulator_given"][key].as_f64().unwrap();
        let own = o["scenario"][key].as_f64().unwrap();
        assert!((given - own - ms).abs() < 1e-6, "{key}: {o:#}");
    }
    let plain_dir = dir.join("plain");
    let plain = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args([
            "run",
            &scenario.display().to_string(),
            "--no-report",
            "--out",
        ])
        .arg(&plain_dir)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(plain.status.success(), "{}", stderr(&plain));
    let plain: Value =
        serde_json::from_str(&std::fs::read_to_string(plain_dir.join("results.json")).unwrap())
            .unwrap();
    let mean = |r: &Value| r["summary"]["latency_seconds"]["mean"].as_f64().unwrap() * 1e3;
    let shift = mean(sim) - mean(&plain);
    let total = ingress + proxy;
    // The histogram keeps three significant digits of a ~100 ms mean.
    assert!(
        (shift - total).abs() <= 0.25 * total + 0.3,
        "the simulated mean moved {shift:.3} ms for {total:.3} ms of measured overhead"
    );
}

/// Processes whose command line mentions `needle` (a test's own temp dir).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(needle) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn a_pod_that_never_becomes_ready_fails_the_run_and_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    // Not a model: every start of the pod exits at once, so it crash-loops.
    std::fs::write(dir.path().join("broken.onnx"), "not an ONNX model").unwrap();
    let scenario = write(
        dir.path(),
        &format!(
            r#"
name = "broken"
[run]
duration = "10s"
{POOL}
[[services]]
name = "ranker"
modelFile = "broken.onnx"
minReplicas = 1
maxReplicas = 1
resources = {{ cpu = "1", memory = "1Gi" }}
[[services.latency]]
gpu = "T4"
batch_latency = {{ "1" = "5ms" }}
[[traffic]]
phases = [{{ kind = "constant", rate = 5, duration = "10s" }}]
"#
        ),
    );
    let o = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(["run", scenario.to_str().unwrap(), "--level", "local"])
        .args([
            "--ready-timeout",
            "3s",
            "--no-report",
            "--progress",
            "never",
            "--out",
        ])
        .arg(dir.path().join("out"))
        .current_dir(repo())
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(
        err.contains("not ready within 3s") && err.contains("ranker-0") && err.contains("log: "),
        "names the pod and its log: {err}"
    );
    let left = processes_mentioning(&dir.path().display().to_string());
    assert!(
        left.is_empty(),
        "processes outlived the failed run: {left:?}"
    );
}

#[test]
fn a_run_whose_generator_fell_behind_says_so_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), &steady("10s", 1));
    let out = dir.path().join("out");
    // No generator sends within a microsecond of every deadline.
    let (o, r) = run_local(&scenario, &out, "2", &["--max-send-lag", "1us"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("fell behind its schedule"),
        "{}",
        stderr(&o)
    );
    let kinds: Vec<&Value> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| &w["kind"])
        .collect();
    assert!(kinds.iter().any(|k| *k == "load_fell_behind"), "{kinds:?}");
    conserved(&r);
}
