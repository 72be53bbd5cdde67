//! The search against answers known by construction: Erlang C for an M/M/c
//! queue, and the exhaustive grid for a small GPU space.

use lab_plan::{exhaustive, search, Outcome, Problem, Settings, Space};
use std::path::PathBuf;

fn problem(text: &str, seed: u64) -> Problem {
    Problem {
        text: text.to_string(),
        file: "test.toml".into(),
        base_dir: PathBuf::from("."),
        seed,
    }
}

fn settings(seeds: u32) -> Settings {
    Settings {
        seeds,
        finalists: 2,
        budget: None,
        round: 3,
        nearest_failures: 3,
    }
}

// ------------------------------------------------------------- M/M/c

/// Erlang C: probability that an arrival waits, c servers, offered load a = λ/μ.
fn erlang_c(c: u32, a: f64) -> f64 {
    let mut term = 1.0; // a^k / k!
    let mut sum = 0.0;
    for k in 0..c {
        sum += term;
        term *= a / f64::from(k + 1);
    }
    let top = term * f64::from(c) / (f64::from(c) - a);
    top / (sum + top)
}

/// Mean time in system of M/M/c.
fn mmc_mean(c: u32, lambda: f64, mu: f64) -> f64 {
    let a = lambda / mu;
    if f64::from(c) <= a {
        return f64::INFINITY;
    }
    erlang_c(c, a) / (f64::from(c) * mu - lambda) + 1.0 / mu
}

const MMC: &str = r#"
name = "mmc-plan"
[run]
duration = "3m"
warmup = "10s"
seed = 3
interval = "10s"

[[node_pools]]
name = "cpu"
cpu = "64"
memory = "256Gi"
price_per_hour = 1.0
min_nodes = 1
max_nodes = 1

[[services]]
name = "q"
minReplicas = 1
maxReplicas = 1
resources = { cpu = "1", memory = "1Gi" }
batching = { max_batch_size = 1, instances = 1 }
autoscaler.fixed = {}

[[services.latency]]
gpu = "cpu"
batch_latency = { "1" = "10ms" }
distribution = { kind = "exponential" }

[[traffic]]
arrivals = { process = "poisson" }
phases = [{ kind = "constant", rate = 200, duration = "3m" }]

[[slo]]
metric = "mean_latency"
max = "10.5ms"
"#;

#[test]
fn mmc_plan_finds_the_erlang_c_server_count() {
    let (lambda, mu, bound) = (200.0, 100.0, 0.0105);
    // The answer by construction, and a check that the bound is not so close
    // to either neighbour that simulation noise could decide it.
    let best = (1..20).find(|&c| mmc_mean(c, lambda, mu) <= bound).unwrap();
    assert!(mmc_mean(best, lambda, mu) < bound * 0.98);
    assert!(mmc_mean(best - 1, lambda, mu) > bound * 1.02);

    // One pod with c execution instances is one queue with c servers; the
    // node price grows with c so that fewer servers are cheaper.
    let text = (1..=8)
        .map(|c| {
            format!(
                "{{ label = \"{c}\", set = {{ \"services.0.batching.instances\" = {c}, \"node_pools.0.price_per_hour\" = {}.0 }} }}",
                c
            )
        })
        .collect::<Vec<_>>()
        .join(",\n  ");
    let search_file = format!(
        "[plan]\nseeds = 2\nfinalists = 1\n\n[[knobs]]\nname = \"servers\"\nmonotone = true\noptions = [\n  {text}\n]\n"
    );
    let space = lab_plan::parse_search_file(&search_file, "mmc.search.toml").unwrap();
    let p = problem(MMC, 3);
    let out = search(&p, &space, &mut |_| true);
    let w = out.get(out.winner.expect("a server count passes")).unwrap();
    assert_eq!(w.label, format!("servers={best}"), "{out:#?}");
    assert_eq!(w.runs.len(), 2, "the winner is re-run with a second seed");
    // One server (capacity 100/s for 200/s offered) is never simulated.
    assert_eq!(out.overloaded.len(), 1, "{:?}", out.overloaded);
    assert!(out.get(0).is_none());
    // Bisection needs fewer simulations than the grid's 8 (plus the re-run).
    assert!(out.evaluated.len() < 6, "{}", out.evaluated.len());
}

// ------------------------------------------------------------- exhaustive

const GPU: &str = r#"
name = "small-gpu-plan"
[run]
duration = "45s"
warmup = "15s"
seed = 9
interval = "10s"

[[node_pools]]
name = "slow"
gpu = "T4"
gpus_per_node = 1
cpu = "4"
memory = "16Gi"
price_per_hour = 0.5
max_nodes = 10
provisioning_time = "1s"

[[node_pools]]
name = "fast"
gpu = "L4"
gpus_per_node = 1
cpu = "4"
memory = "16Gi"
price_per_hour = 0.8
max_nodes = 10
provisioning_time = "1s"

[[services]]
name = "m"
minReplicas = 1
maxReplicas = 8
nodePool = "slow"
resources = { cpu = "3", memory = "8Gi", "nvidia.com/gpu" = 1 }
batching = { max_batch_size = 8, max_queue_delay_microseconds = 2000 }
autoscaler.fixed = { replicas = 1 }
coldStart = { image_pull = "1s", model_load = "1s", readiness_probe_period = "1s", pod_start = "1s" }

[[services.latency]]
gpu = "T4"
batch_latency = { "1" = "8ms", "4" = "20ms", "8" = "36ms" }
distribution = { kind = "lognormal", cv = 0.1 }

[[services.latency]]
gpu = "L4"
batch_latency = { "1" = "4ms", "4" = "9ms", "8" = "15ms" }
distribution = { kind = "lognormal", cv = 0.1 }

[[traffic]]
arrivals = { process = "poisson" }
phases = [{ kind = "constant", rate = 400, duration = "45s" }]

[[slo]]
metric = "p99"
max = "60ms"

[[slo]]
metric = "error_rate"
max = "1%"
"#;

fn gpu_space(seeds: u32) -> Space {
    lab_plan::from_vary(
        &[
            r#"services.0.nodePool="slow","fast""#.into(),
            "services.0.batching.max_batch_size=4,8".into(),
            "services.0.autoscaler.fixed.replicas=1,2,3,4,5,6,7,8".into(),
        ],
        settings(seeds),
    )
    .unwrap()
}

fn winner_key(o: &Outcome) -> Option<(usize, String)> {
    o.winner.map(|id| (id, o.get(id).unwrap().label.clone()))
}

#[test]
fn search_matches_the_exhaustive_grid_with_fewer_simulations() {
    let space = gpu_space(1);
    assert!(space.knobs[2].monotone);
    let p = problem(GPU, 9);
    let all = exhaustive(&p, &space, &mut |_| true);
    let found = search(&p, &space, &mut |_| true);
    assert_eq!(all.evaluated.len(), space.grid_size());
    assert!(
        all.winner.is_some(),
        "the space has a passing configuration"
    );
    let failing = all.evaluated.iter().filter(|e| !e.passed()).count();
    assert!(
        failing >= 4 && failing + 4 <= all.evaluated.len(),
        "a space worth searching: {failing} of {} fail",
        all.evaluated.len()
    );
    assert_eq!(winner_key(&found), winner_key(&all));
    assert!(
        found.simulations < all.simulations / 2,
        "search {} vs grid {}",
        found.simulations,
        all.simulations
    );

    // The assumptions the pruning rests on hold on the full grid: passing is
    // monotone in replicas, the cost bound is below the cost, and every
    // candidate ruled over capacity does fail.
    for e in &all.evaluated {
        assert!(
            e.cost_lower_bound_usd <= e.monthly_cost_usd() + 1e-6,
            "{}: bound {} > cost {}",
            e.label,
            e.cost_lower_bound_usd,
            e.monthly_cost_usd()
        );
        let c = space.candidate(e.id);
        if e.passed() && c.choice[2] + 1 < 8 {
            let mut up = c.choice.clone();
            up[2] += 1;
            assert!(all.get(space.id_of(&up)).unwrap().passed(), "{}", e.label);
        }
    }
    for (id, _) in &found.overloaded {
        assert!(!all.get(*id).unwrap().passed());
    }
}

#[test]
fn same_plan_with_one_thread_or_two() {
    let space = gpu_space(2);
    let p = problem(GPU, 9);
    let run = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let o = pool.install(|| search(&p, &space, &mut |_| true));
        let r = lab_plan::rank(&o, 3);
        lab_plan::output::json(&o, &r, &p)
    };
    assert_eq!(run(1), run(2));
}

#[test]
fn budget_stops_the_search_and_says_so() {
    let mut space = gpu_space(2);
    space.settings.budget = Some(2);
    let o = search(&problem(GPU, 9), &space, &mut |_| true);
    assert!(o.simulations <= 2);
    assert!(o.budget_exhausted);
}

#[test]
fn invalid_candidates_are_counted_not_fatal() {
    // maxReplicas is 8: 12 replicas is rejected by the scenario.
    let space = lab_plan::from_vary(
        &[
            r#"services.0.nodePool="fast""#.into(),
            "services.0.autoscaler.fixed.replicas=4,12".into(),
        ],
        settings(1),
    )
    .unwrap();
    let o = search(&problem(GPU, 9), &space, &mut |_| true);
    let w = o
        .winner
        .and_then(|id| o.get(id))
        .expect("4 fast replicas pass");
    assert_eq!(
        w.label,
        "services.0.nodePool=fast services.0.autoscaler.fixed.replicas=4"
    );
    let all = exhaustive(&problem(GPU, 9), &space, &mut |_| true);
    for out in [&o, &all] {
        assert_eq!(out.invalid.len(), 1);
        assert_eq!(out.invalid[0].0, 1);
        assert!(
            out.invalid[0].1.contains("maxReplicas"),
            "{}",
            out.invalid[0].1
        );
        assert!(out.get(1).is_none());
    }
}

#[test]
fn winner_file_is_the_scenario_with_the_overrides() {
    let space = gpu_space(1);
    let p = problem(GPU, 9);
    let o = search(&p, &space, &mut |_| true);
    let w = o.get(o.winner.unwrap()).unwrap();
    let text = lab_plan::output::winner_toml(&p, w).unwrap();
    let written = lab_scenario::parse(&text, "winner.toml", &p.base_dir, &[]).unwrap();
    let expected = p.parse(&w.overrides).unwrap();
    assert_eq!(written, expected);
    assert!(text.starts_with("# Written by `lab plan`"));

    let dir = tempfile::tempdir().unwrap();
    let r = lab_plan::rank(&o, 3);
    lab_plan::write_outputs(dir.path(), &p, &o, &r, Some(0.06)).unwrap();
    let html = std::fs::read_to_string(dir.path().join("plan.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("Pareto front"));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("plan.json")).unwrap())
            .unwrap();
    assert_eq!(json["winner"]["id"], o.winner.unwrap());
    assert!(dir.path().join("winner.toml").exists());
}

#[test]
fn autoscaler_target_is_a_knob_like_any_other() {
    // The GPU scenario under an HPA on in-flight requests per pod: the target
    // and minReplicas are searched, and the search agrees with the grid.
    // Under an autoscaler, cost is not monotone in minReplicas (a low floor
    // can make the HPA overshoot), so that knob is not bisected.
    let text = GPU.replace(
        "autoscaler.fixed = { replicas = 1 }",
        r#"autoscaler.hpa = { metrics = [{ type = "Pods", pods = { metric = { name = "lab_predictor_inflight_requests" }, target = { type = "AverageValue", averageValue = "4" } } }] }"#,
    );
    assert_ne!(text, GPU);
    let space = lab_plan::from_vary(
        &[
            r#"services.0.autoscaler.hpa.metrics.0.pods.target.averageValue="2","8""#.into(),
            r#"services.0.nodePool="slow","fast""#.into(),
            "services.0.minReplicas=1,2,3,4,6".into(),
        ],
        settings(1),
    )
    .unwrap();
    assert!(!space.knobs[2].monotone);
    let p = problem(&text, 9);
    let all = exhaustive(&p, &space, &mut |_| true);
    let found = search(&p, &space, &mut |_| true);
    assert!(all.winner.is_some());
    assert_eq!(all.invalid.len(), 0, "{:?}", all.invalid);
    assert_eq!(winner_key(&found), winner_key(&all));
    assert!(found.simulations < all.simulations);
    for e in &all.evaluated {
        assert!(
            e.cost_lower_bound_usd <= e.monthly_cost_usd() + 1e-6,
            "{}",
            e.label
        );
    }
}

#[test]
fn time_sliced_pods_are_ruled_out_only_when_they_do_fail() {
    // Two pods per L4 by time-slicing: capacity is per physical GPU, so the
    // rule drops counts whose packed nodes cannot carry 1200 req/s. Every
    // candidate it drops must fail when simulated anyway.
    let text = GPU.replace("rate = 400", "rate = 1200").replace(
        r#"cpu = "3", memory = "8Gi""#,
        r#"cpu = "1.5", memory = "6Gi""#,
    );
    assert!(text.contains(r#"cpu = "1.5""#));
    let space = lab_plan::parse_search_file(
        r#"
[plan]
seeds = 1
[[knobs]]
name = "sharing"
options = [
  { label = "whole", set = { "services.0.nodePool" = "fast" } },
  { label = "ts2", set = { "services.0.nodePool" = "fast", "node_pools.fast.sharing" = { strategy = "time-slicing", replicas = 2 } } },
]
[[knobs]]
name = "replicas"
key = "services.0.autoscaler.fixed.replicas"
values = [1, 2, 3, 4, 5, 6, 7, 8]
monotone = true
"#,
        "ts.search.toml",
    )
    .unwrap();
    let p = problem(&text, 9);
    let all = exhaustive(&p, &space, &mut |_| true);
    let found = search(&p, &space, &mut |_| true);
    assert_eq!(winner_key(&found), winner_key(&all));
    let ts_dropped: Vec<usize> = found
        .overloaded
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| space.candidate(*id).choice[0] == 1)
        .collect();
    assert!(ts_dropped.len() >= 4, "{:?}", found.overloaded);
    for id in ts_dropped {
        let e = all.get(id).unwrap();
        assert!(!e.passed(), "{} was ruled out but passes", e.label);
    }
}

#[test]
fn stopping_after_a_round_keeps_what_was_found() {
    let space = gpu_space(2);
    let mut rounds = 0;
    let o = search(&problem(GPU, 9), &space, &mut |_| {
        rounds += 1;
        false
    });
    assert_eq!(rounds, 1);
    assert!(o.interrupted);
    assert_eq!(o.simulations, space.settings.round);
}
