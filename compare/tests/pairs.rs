//! `lab compare` on constructed pairs of runs whose differences are known.

use lab_compare::{compare, compare_with, declared_fidelity, CompareOptions, Refusal};
use lab_reports::fixtures::{spike_run, Spike};
use lab_results::{Level, Results, ScalingEvent};
use lab_scenario::FidelitySpec;

/// A spike-shaped simulator run whose echoed scenario names the autoscalers
/// (HPA every 15 s for resnet50, a fixed bert-small, a 10 s cluster
/// autoscaler scan).
fn sim() -> Results {
    let mut r = spike_run(&Spike {
        duration_seconds: 1200.0,
        ..Spike::default()
    });
    r.scenario.config = serde_json::json!({
        "name": r.scenario.name,
        "description": "a spike",
        "services": [
            {"name": "resnet50", "minReplicas": 2, "maxReplicas": 60,
             "autoscaler": {"hpa": {"controller": {"syncPeriod": "15s"}}}},
            {"name": "bert-small", "minReplicas": 2, "maxReplicas": 2, "autoscaler": {}}
        ],
        "cluster_autoscaler": {"enabled": true, "scan_interval": "10s"},
        "traffic": [{"phases": []}]
    });
    r
}

fn local_twin(a: &Results) -> Results {
    let mut b = a.clone();
    b.level = Level::Local;
    b
}

fn no_bounds() -> FidelitySpec {
    serde_json::from_value(serde_json::json!({})).unwrap()
}

fn bounds(v: serde_json::Value) -> FidelitySpec {
    serde_json::from_value(v).unwrap()
}

fn event(t: f64, target: &str, from: u32, to: u32) -> ScalingEvent {
    ScalingEvent {
        t_seconds: t,
        target: target.into(),
        autoscaler: "hpa".into(),
        from,
        to,
        reason: String::new(),
    }
}

#[test]
fn identical_runs_agree_on_every_figure() {
    let a = sim();
    let c = compare(&a, &local_twin(&a)).unwrap();
    let f = &c.overall;
    for d in [
        f.p50_seconds,
        f.p99_seconds,
        f.mean_seconds,
        f.throughput_rps,
        f.error_rate,
    ] {
        assert_eq!((d.difference, d.relative), (0.0, Some(0.0)));
    }
    let resnet = &c.services[0];
    assert_eq!(resnet.name, "resnet50");
    assert_eq!(resnet.replicas.sync_period_seconds, Some(15.0));
    assert_eq!(resnet.replicas.ready.lag_seconds, 0.0);
    assert_eq!(resnet.replicas.ready.max_gap, 0);
    assert!(resnet.replicas.ready.correlation.unwrap() > 0.999);
    assert!(!a.scaling_events.is_empty());
    for t in &c.scaling_events {
        assert!(
            t.unmatched_a.is_empty() && t.unmatched_b.is_empty(),
            "{t:?}"
        );
        assert!(t.matched.iter().all(|m| m.offset_seconds == 0.0));
    }
    // The strictest bounds hold.
    let strict = bounds(serde_json::json!({
        "p50": 0.0, "p95": 0.0, "p99": 0.0, "mean": 0.0, "throughput": 0.0, "goodput": 0.0,
        "error_rate": 0.0, "replicas": 0, "replica_lag_periods": 0, "cold_start_count": 0,
        "cold_start_mean": 0.0, "requests_delayed": 0.0, "unmatched_scaling_events": 0,
        "cost": 0.0
    }));
    let judged = c.judge(&strict);
    assert!(judged.iter().all(|b| b.passed), "{judged:#?}");
    // Every key is judged: 7 request figures for the run and each of 2
    // services, 2 replica bounds per service, 5 for the whole run.
    assert_eq!(judged.len(), 7 * 3 + 2 * 2 + 5);
    assert!(c.judge(&no_bounds()).is_empty());
    // bert-small never scales: its lag is not measured, and that passes.
    let lag = judged
        .iter()
        .find(|b| b.key == "replica_lag_periods" && b.service.as_deref() == Some("bert-small"))
        .unwrap();
    assert_eq!((lag.observed, lag.passed), (None, true));
}

#[test]
fn latency_and_cost_errors_are_measured_and_judged_with_slack() {
    let a = sim();
    let mut b = local_twin(&a);
    b.summary.latency_seconds.p99 *= 1.2;
    b.summary.latency_seconds.p50 *= 0.95;
    b.services[0].latency_seconds.p99 *= 1.2;
    b.summary.error_rate += 0.004;
    b.cost.total_usd *= 1.01;
    b.cost.by_pool[0].usd *= 1.02;
    let c = compare(&a, &b).unwrap();
    let p99 = c.overall.p99_seconds;
    assert!((p99.relative.unwrap() - 0.2).abs() < 1e-12, "{p99:?}");
    assert!((c.overall.p50_seconds.relative.unwrap() + 0.05).abs() < 1e-12);
    assert!((c.overall.p50_seconds.relative_abs.unwrap() - 0.05).abs() < 1e-12);
    assert!((c.cost.total_usd.relative.unwrap() - 0.01).abs() < 1e-12);
    let pool = &c
        .cost
        .by_pool
        .iter()
        .find(|p| p.name == "gpu-a100")
        .unwrap()
        .usd;
    assert!((pool.relative.unwrap() - 0.02).abs() < 1e-12);

    let spec =
        bounds(serde_json::json!({"p50": 0.10, "p99": 0.10, "error_rate": 0.01, "cost": 0.02}));
    let judged = c.judge(&spec);
    let find = |key: &str, svc: Option<&str>| {
        judged
            .iter()
            .find(|b| b.key == key && b.service.as_deref() == svc)
            .unwrap()
            .clone()
    };
    let p99_all = find("p99", None);
    assert!(!p99_all.passed);
    assert!((p99_all.observed.unwrap() - 0.2).abs() < 1e-12);
    assert!(!find("p99", Some("resnet50")).passed);
    assert!(find("p99", Some("bert-small")).passed);
    assert!(find("p50", None).passed);
    assert!(find("cost", None).passed);
    let e = find("error_rate", None);
    assert!(e.passed && (e.observed.unwrap() - 0.004).abs() < 1e-12);

    // The machine's slack widens every bound.
    let slack = bounds(serde_json::json!({"p99": 0.10, "slack": 2.5}));
    let judged = c.judge(&slack);
    assert!(judged.iter().all(|b| b.passed), "{judged:#?}");
    assert!((judged[0].limit - 0.25).abs() < 1e-12);
}

/// Every service point of `service` takes the replica counts it had `k`
/// intervals earlier: the same timeline, `k` intervals late.
fn shift_replicas(r: &mut Results, service: &str, k: usize) {
    let old: Vec<(u32, u32)> = r
        .timeseries
        .iter()
        .map(|p| {
            let s = p.services.iter().find(|s| s.name == service).unwrap();
            (s.ready_replicas, s.desired_replicas)
        })
        .collect();
    for (i, p) in r.timeseries.iter_mut().enumerate() {
        let s = p.services.iter_mut().find(|s| s.name == service).unwrap();
        (s.ready_replicas, s.desired_replicas) = old[i.saturating_sub(k)];
    }
}

#[test]
fn a_replica_timeline_shifted_by_a_known_lag_is_found() {
    let a = sim();
    for k in [1usize, 3, 5] {
        let mut b = local_twin(&a);
        shift_replicas(&mut b, "resnet50", k);
        let c = compare(&a, &b).unwrap();
        let r = &c.services[0].replicas;
        let want = k as f64 * a.run.interval_seconds;
        assert_eq!(r.ready.lag_seconds, want, "k = {k}");
        assert_eq!(r.desired.lag_seconds, want, "k = {k}");
        assert_eq!(r.ready.lag_periods, Some(want / 15.0));
        assert_eq!(r.ready.max_gap_aligned, 0);
        assert!(r.ready.max_gap > 0, "unaligned, the spike shows a gap");

        let judged = c.judge(&bounds(
            serde_json::json!({"replicas": 0, "replica_lag_periods": 1}),
        ));
        let lag = judged
            .iter()
            .find(|b| b.key == "replica_lag_periods" && b.service.as_deref() == Some("resnet50"))
            .unwrap();
        assert_eq!(lag.observed, Some(want / 15.0));
        assert_eq!(lag.passed, want <= 15.0, "k = {k}: {lag:?}");
        let gap = judged
            .iter()
            .find(|b| b.key == "replicas" && b.service.as_deref() == Some("resnet50"))
            .unwrap();
        assert!(gap.passed, "{gap:?}");
    }
    // b ahead of a reads as a negative lag.
    let mut early = local_twin(&a);
    shift_replicas(&mut early, "resnet50", 0);
    let mut late = a.clone();
    shift_replicas(&mut late, "resnet50", 2);
    let c = compare(&late, &early).unwrap();
    assert_eq!(c.services[0].replicas.ready.lag_seconds, -20.0);
}

#[test]
fn scaling_events_are_matched_one_to_one_with_their_offsets() {
    let mut a = sim();
    a.scaling_events = vec![
        event(100.0, "resnet50", 2, 4),
        event(130.0, "resnet50", 4, 8),
        event(600.0, "resnet50", 8, 4),
        event(110.0, "pool:gpu-a100", 1, 2),
    ];
    let mut b = local_twin(&a);
    b.scaling_events = vec![
        event(107.0, "resnet50", 2, 4),
        event(141.0, "resnet50", 4, 7),
        event(590.0, "resnet50", 7, 4),
        // A decision the simulator did not make.
        event(900.0, "resnet50", 4, 3),
        event(140.0, "pool:gpu-a100", 1, 2),
    ];
    let c = compare(&a, &b).unwrap();
    let by = |t: &str| c.scaling_events.iter().find(|e| e.target == t).unwrap();
    let resnet = by("resnet50");
    // Four HPA periods.
    assert_eq!(resnet.window_seconds, 60.0);
    let offsets: Vec<f64> = resnet.matched.iter().map(|m| m.offset_seconds).collect();
    assert_eq!(offsets, [7.0, 11.0, -10.0]);
    assert_eq!(resnet.matched[1].b.to, 7);
    assert!(resnet.unmatched_a.is_empty());
    assert_eq!(resnet.unmatched_b.len(), 1);
    assert_eq!(resnet.unmatched_b[0].t_seconds, 900.0);
    assert_eq!(resnet.mean_offset_seconds(), Some(8.0 / 3.0));
    assert_eq!(resnet.max_abs_offset_seconds(), Some(11.0));
    let pool = by("pool:gpu-a100");
    // Four scan intervals, 40 s, covers the 30 s offset.
    assert_eq!(pool.window_seconds, 40.0);
    assert_eq!(pool.matched[0].offset_seconds, 30.0);

    let judged = c.judge(&bounds(serde_json::json!({"unmatched_scaling_events": 0})));
    assert_eq!((judged[0].observed, judged[0].passed), (Some(1.0), false));
    assert!(c
        .unmatched_lines()
        .iter()
        .any(|l| l.contains("resnet50: 4 → 3 at 900 s, only in b")));

    // A narrower window leaves the farther ones unmatched.
    let narrow = compare_with(
        &a,
        &b,
        &CompareOptions {
            event_window_seconds: Some(8.0),
        },
    )
    .unwrap();
    let resnet = narrow
        .scaling_events
        .iter()
        .find(|e| e.target == "resnet50")
        .unwrap();
    assert_eq!(resnet.matched.len(), 1);
    assert_eq!(resnet.unmatched_a.len(), 2);
    assert_eq!(resnet.unmatched_b.len(), 3);
}

#[test]
fn events_match_only_in_their_direction_and_never_cross() {
    let mut a = sim();
    a.scaling_events = vec![
        event(100.0, "resnet50", 2, 4),
        event(105.0, "resnet50", 4, 6),
        event(200.0, "resnet50", 6, 5),
    ];
    let mut b = local_twin(&a);
    b.scaling_events = vec![
        event(104.0, "resnet50", 2, 5),
        event(199.0, "resnet50", 5, 6),
    ];
    let c = compare(&a, &b).unwrap();
    let e = &c.scaling_events[c
        .scaling_events
        .iter()
        .position(|e| e.target == "resnet50")
        .unwrap()];
    // a@100 takes b@104; a@105 finds nothing left; the scale-down at 200 does
    // not take b's scale-up at 199.
    assert_eq!(e.matched.len(), 1);
    assert_eq!(e.matched[0].offset_seconds, 4.0);
    assert_eq!(
        e.unmatched_a
            .iter()
            .map(|x| x.t_seconds)
            .collect::<Vec<_>>(),
        [105.0, 200.0]
    );
    assert_eq!(e.unmatched_b[0].t_seconds, 199.0);
}

#[test]
fn cold_starts_by_count_duration_phase_and_delayed_requests() {
    let a = sim();
    let mut b = local_twin(&a);
    b.cold_starts.count = a.cold_starts.count + 2;
    b.cold_starts.duration_seconds.mean = a.cold_starts.duration_seconds.mean * 1.05;
    b.cold_starts.phases_seconds.model_load = a.cold_starts.phases_seconds.model_load + 3.0;
    b.cold_starts.requests_delayed = a.cold_starts.requests_delayed * 2;
    let c = compare(&a, &b).unwrap();
    let cs = &c.cold_starts;
    assert_eq!(cs.count.difference, 2.0);
    assert!((cs.mean_seconds.relative.unwrap() - 0.05).abs() < 1e-12);
    assert_eq!(cs.phases_seconds.model_load.difference, 3.0);
    assert_eq!(cs.phases_seconds.image_pull.relative, Some(0.0));
    assert!(c.notes.iter().any(|n| n.contains("cold starts")));

    let judged = c.judge(&bounds(serde_json::json!({
        "cold_start_count": 0, "cold_start_mean": 0.10, "requests_delayed": 0.10
    })));
    let verdicts: Vec<(String, bool)> = judged.iter().map(|b| (b.key.clone(), b.passed)).collect();
    assert_eq!(
        verdicts,
        [
            ("cold_start_count".to_string(), false),
            ("cold_start_mean".to_string(), true),
            ("requests_delayed".to_string(), false)
        ]
    );
    let judged = c.judge(&bounds(
        serde_json::json!({"cold_start_count": 1, "slack": 2}),
    ));
    assert!(judged[0].passed, "2 within 1 × 2");

    // Nothing to divide by: a delayed nothing, b delayed some.
    let mut zero = a.clone();
    zero.cold_starts.requests_delayed = 0;
    let c = compare(&zero, &b).unwrap();
    let judged = c.judge(&bounds(serde_json::json!({"requests_delayed": 0.5})));
    assert_eq!(judged[0].observed, None);
    assert!(!judged[0].passed);
    assert!(judged[0].detail.contains("a is 0"), "{}", judged[0].detail);
}

#[test]
fn runs_of_different_scenarios_are_refused() {
    let a = sim();
    let mut b = local_twin(&a);
    b.scenario.name = "other".into();
    assert!(matches!(compare(&a, &b), Err(Refusal::Names { .. })));

    let mut b = local_twin(&a);
    b.services.retain(|s| s.name != "bert-small");
    match compare(&a, &b) {
        Err(Refusal::Services { only_a, only_b }) => {
            assert_eq!((only_a, only_b), (vec!["bert-small".to_string()], vec![]))
        }
        other => panic!("{other:?}"),
    }

    let mut b = local_twin(&a);
    b.scenario.config["services"][0]["maxReplicas"] = 8.into();
    let e = compare(&a, &b).unwrap_err();
    assert!(
        e.to_string()
            .contains("services[resnet50].maxReplicas: 60 vs 8"),
        "{e}"
    );

    // The same difference made with --set on one run is compared.
    b.scenario.overrides = vec!["services[resnet50].maxReplicas=8".into()];
    assert!(compare(&a, &b).is_ok());
    b.scenario.overrides = vec!["services.0.maxReplicas=8".into()];
    assert!(compare(&a, &b).is_ok());
    // ... but only that key.
    b.scenario.config["cluster_autoscaler"]["scan_interval"] = "20s".into();
    let e = compare(&a, &b).unwrap_err();
    assert!(
        matches!(&e, Refusal::Config { differences, more: 0 } if differences.len() == 1),
        "{e}"
    );

    // Prose, bounds and seeds do not make another scenario.
    let mut b = local_twin(&a);
    b.scenario.config["description"] = "the local run".into();
    b.scenario.config["fidelity"] = serde_json::json!({"p99": 0.1});
    b.seed = 7;
    let c = compare(&a, &b).unwrap();
    assert!(
        c.notes.iter().any(|n| n.contains("seeds differ")),
        "{:?}",
        c.notes
    );
}

#[test]
fn bounds_come_from_the_scenario_the_results_echo() {
    let mut a = sim();
    let b = local_twin(&a);
    assert_eq!(declared_fidelity(&a, &b).unwrap(), None);
    a.scenario.config["fidelity"] = serde_json::json!({"p99": 0.1, "slack": 1.5});
    let f = declared_fidelity(&a, &b).unwrap().unwrap();
    assert_eq!((f.p99, f.slack), (Some(0.1), 1.5));
    a.scenario.config["fidelity"] = serde_json::json!({"p99.9": 0.1});
    let e = declared_fidelity(&a, &b).unwrap_err();
    assert!(e.contains("unknown field `p99.9`"), "{e}");
}

const SCENARIO: &str = r#"name = "f"
[[node_pools]]
name = "cpu"
price_per_hour = 0.2
max_nodes = 1
[[services]]
name = "mlp"
resources = { cpu = "1" }
[[services.latency]]
gpu = "cpu"
batch_latency = { "1" = "5ms" }
[[traffic]]
phases = [{ kind = "constant", rate = 1, duration = "10s" }]
"#;

#[test]
fn a_scenario_declares_fidelity_bounds_and_bad_ones_are_named() {
    let dir = std::path::Path::new(".");
    let text = format!("{SCENARIO}[fidelity]\np50 = 0.10\np99 = 0.10\nreplicas = 1\ncold_start_count = 0\nslack = 1.5\n");
    let s = lab_scenario::parse(&text, "f.toml", dir, &[]).unwrap();
    let f = s.fidelity.unwrap();
    assert_eq!((f.p50, f.replicas, f.slack), (Some(0.10), Some(1.0), 1.5));
    assert_eq!(f.bounds().len(), 4);

    let text = format!("{SCENARIO}[fidelity]\np90 = 0.1\n");
    let e = lab_scenario::parse(&text, "f.toml", dir, &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("fidelity.p90") && e.contains("unknown field"),
        "{e}"
    );

    let text = format!("{SCENARIO}[fidelity]\np99 = -0.1\nslack = 0.5\n");
    let e = lab_scenario::parse(&text, "f.toml", dir, &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("fidelity.p99") && e.contains("at least 0"),
        "{e}"
    );
    assert!(
        e.contains("fidelity.slack") && e.contains("at least 1"),
        "{e}"
    );

    // Without the table the echoed scenario has no `fidelity` key, so results
    // written before it existed still compare equal.
    let s = lab_scenario::parse(SCENARIO, "f.toml", dir, &[]).unwrap();
    assert!(serde_json::to_value(&s).unwrap().get("fidelity").is_none());
}

#[test]
fn the_table_and_the_json_carry_every_section() {
    let a = sim();
    let mut b = local_twin(&a);
    b.summary.latency_seconds.p99 *= 1.2;
    shift_replicas(&mut b, "resnet50", 2);
    let c = compare(&a, &b).unwrap();
    let t = c.table();
    assert!(t.rows.iter().all(|r| r.len() == t.header.len()));
    let text = c.to_text(&c.judge(&bounds(serde_json::json!({"p99": 0.1}))));
    if std::env::var_os("SHOW_TABLE").is_some() {
        println!("{text}");
    }
    for want in [
        "p99 latency",
        "+20.0 %",
        "ready replicas, lag of b",
        "+20 s",
        "cold starts",
        "scaling events",
        "pool gpu-a100",
        "FAIL: 1 of 3 fidelity bounds broken",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let json = serde_json::to_value(&c).unwrap();
    for key in [
        "overall",
        "services",
        "cold_starts",
        "scaling_events",
        "cost",
        "notes",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
    let back: lab_compare::Comparison = serde_json::from_value(json).unwrap();
    assert_eq!(back, c);
}
