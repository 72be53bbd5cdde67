//! The autoscaler table as users write it: typos are errors, semantic problems come back
//! with the key path and the fix, and every kind builds.

use lab_autoscale::{
    Autoscaler, AutoscalerSpec, Bounds, Decision, MetricError, Observation, SignalValues, Time,
};

fn parse(text: &str) -> Result<AutoscalerSpec, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

const B: Bounds = Bounds { min: 1, max: 10 };

#[test]
fn misspelled_keys_are_rejected() {
    let e = parse("[hpa]\nbehaviour = {}\n").unwrap_err();
    assert!(e.contains("behaviour"), "{e}");
    let e = parse("[kpa]\npanic-window = 10\n").unwrap_err();
    assert!(e.contains("panic-window"), "{e}");
    let e = parse("[keda]\npollingIntervall = 10\ntriggers = []\n").unwrap_err();
    assert!(e.contains("pollingIntervall"), "{e}");
    let e = parse("[hpa]\n[hpa.behavior.scaleUp]\nselectPolicy = \"Maximum\"\n").unwrap_err();
    assert!(e.contains("Maximum"), "{e}");
    let e = parse("[hpa]\nmetrics = [{ type = \"Resource\", resource = { name = \"cpu\", target = { type = \"Utilization\", averageUtilisation = 50 } } }]\n").unwrap_err();
    assert!(e.contains("averageUtilisation"), "{e}");
}

#[test]
fn kind_names_the_table_and_defaults_to_fixed() {
    assert_eq!(parse("[kpa]\n").unwrap().kind(), "kpa");
    assert_eq!(parse("").unwrap().kind(), "fixed");
    let a = Autoscaler::new(
        &parse("").unwrap(),
        Bounds { min: 3, max: 5 },
        0,
        Time::ZERO,
    )
    .unwrap();
    assert_eq!((a.kind(), a.initial_replicas()), ("fixed", 3));
}

#[test]
fn problems_name_the_key_and_the_fix() {
    let spec = parse(
        "[kpa]\nwindow = \"3s\"\nmax-scale-down-rate = 1\ntarget-burst-capacity = -5\n[fixed]\nreplicas = 2\n",
    )
    .unwrap();
    let p = spec.problems(B);
    let keys: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
    assert!(keys.contains(&""), "two tables set: {p:?}");
    assert!(keys.contains(&"kpa.window"), "{p:?}");
    assert!(keys.contains(&"kpa.max-scale-down-rate"), "{p:?}");
    assert!(keys.contains(&"kpa.target-burst-capacity"), "{p:?}");
    let window = &p.iter().find(|(k, _)| k == "kpa.window").unwrap().1;
    assert!(window.contains("6s"), "{window}");
}

#[test]
fn hpa_problems_cover_targets_metric_names_and_policies() {
    let spec = parse(
        r#"[hpa]
metrics = [
  { type = "Resource", resource = { name = "gpu", target = { type = "Utilization", averageUtilization = 50 } } },
  { type = "Pods", pods = { metric = { name = "my_custom_metric" }, target = { type = "AverageValue", averageValue = "5" } } },
  { type = "External", external = { metric = { name = "queue" }, target = { type = "Value" } } },
  { type = "Pods", external = { metric = { name = "rps" }, target = { type = "AverageValue", averageValue = 1 } } },
]
[hpa.behavior.scaleUp]
policies = [{ type = "Pods", value = 0, periodSeconds = 4000 }]
"#,
    )
    .unwrap();
    let p = spec.problems(B);
    let has = |k: &str| p.iter().any(|(key, _)| key == k);
    assert!(has("hpa.metrics[0].resource.name"), "{p:?}");
    assert!(has("hpa.metrics[1].pods.metric.name"), "{p:?}");
    assert!(has("hpa.metrics[2].external.target.value"), "{p:?}");
    assert!(has("hpa.metrics[3].external"), "{p:?}");
    assert!(has("hpa.behavior.scaleUp.policies[0].value"), "{p:?}");
    assert!(
        has("hpa.behavior.scaleUp.policies[0].periodSeconds"),
        "{p:?}"
    );
    let unknown = &p
        .iter()
        .find(|(k, _)| k == "hpa.metrics[1].pods.metric.name")
        .unwrap()
        .1;
    assert!(
        unknown.contains("lab_predictor_inflight_requests") && unknown.contains("signal"),
        "{unknown}"
    );
    // The `signal` key resolves a custom name.
    let ok = parse("[hpa]\nmetrics = [{ type = \"Pods\", pods = { metric = { name = \"my_custom_metric\", signal = \"concurrency\" }, target = { type = \"AverageValue\", averageValue = \"5\" } } }]\n").unwrap();
    assert!(ok.problems(B).is_empty(), "{:?}", ok.problems(B));
}

#[test]
fn hpa_needs_min_one_without_object_or_external_metrics() {
    let spec = parse("[hpa]\n").unwrap();
    assert!(spec.problems(Bounds { min: 1, max: 3 }).is_empty());
    let p = spec.problems(Bounds { min: 0, max: 3 });
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].1.contains("kpa or keda"), "{p:?}");
    let e = Autoscaler::new(&spec, Bounds { min: 0, max: 3 }, 0, Time::ZERO).unwrap_err();
    assert!(e[0].starts_with("hpa: "), "{e:?}");
}

#[test]
fn keda_problems_cover_triggers_and_idle_replicas() {
    let spec = parse(
        r#"[keda]
idleReplicaCount = 2
triggers = [
  { type = "graphite", metadata = {} },
  { type = "prometheus", metadata = { query = "sum(x)", threshold = "ten", activationTreshold = 1 } },
  { type = "redis", metadata = { listName = "jobs" } },
]
"#,
    )
    .unwrap();
    let p = spec.problems(Bounds { min: 1, max: 5 });
    let has = |k: &str| p.iter().any(|(key, _)| key == k);
    assert!(has("keda.idleReplicaCount"), "{p:?}");
    assert!(has("keda.triggers[0].type"), "{p:?}");
    assert!(has("keda.triggers[1].metadata.threshold"), "{p:?}");
    assert!(has("keda.triggers[1].metadata.activationTreshold"), "{p:?}");
    assert!(has("keda.triggers[1].metadata.query"), "{p:?}");
    // redis has a default listLength and reads the queue depth: fine.
    assert!(
        !p.iter().any(|(k, _)| k.starts_with("keda.triggers[2]")),
        "{p:?}"
    );
}

fn obs(spec: u32, totals: Result<SignalValues, MetricError>) -> Observation<'static> {
    Observation {
        spec_replicas: spec,
        status_replicas: spec,
        pods: &[],
        totals,
        activator_queue: 0,
    }
}

#[test]
fn keda_generated_hpa_has_min_one_and_falls_back_on_failures() {
    let spec = parse(
        r#"[keda]
pollingInterval = 30
fallback = { failureThreshold = 2, replicas = 6 }
triggers = [{ type = "prometheus", metadata = { query = "lab_predictor_queue_depth", threshold = "10" } }]
"#,
    )
    .unwrap();
    let cfg = lab_autoscale::keda::KedaConfig::compile(
        spec.keda.as_ref().unwrap(),
        Bounds { min: 0, max: 20 },
    )
    .unwrap();
    assert_eq!((cfg.hpa.min, cfg.hpa.max), (1, 20));

    let mut a = Autoscaler::new(&spec, Bounds { min: 0, max: 20 }, 0, Time::ZERO).unwrap();
    let q = |v: f64| {
        Ok(SignalValues {
            queue_depth: v,
            ..SignalValues::default()
        })
    };
    let d = a.decide(Time::ZERO, &obs(1, q(30.0)));
    assert_eq!(d.desired, 3, "{}", d.reason);
    // The metric source fails: the HPA holds (an invalid metric cannot scale down) for
    // failureThreshold syncs, then lands on the fallback replicas.
    let fail = || Err(MetricError("connection refused".into()));
    let mut spec_replicas = d.desired;
    let mut seen: Vec<Decision> = vec![];
    let mut t = Time::from_secs(15);
    while t <= Time::from_secs(60) {
        if t >= a.next_decision() {
            let d = a.decide(t, &obs(spec_replicas, fail()));
            spec_replicas = d.desired;
            seen.push(d);
        }
        t += Time::from_secs(1);
    }
    let counts: Vec<u32> = seen.iter().map(|d| d.desired).collect();
    assert_eq!(
        counts,
        vec![3, 3, 6, 6],
        "{:?}",
        seen.iter().map(|d| &d.reason).collect::<Vec<_>>()
    );
    assert!(seen[2].reason.contains("fallback"), "{}", seen[2].reason);
}

#[test]
fn kpa_keeps_the_activator_in_path_while_burst_capacity_is_short() {
    // Target 100 per pod, TBC 211: EBC = 100·pods − 211 − panic needs 3 idle pods.
    let spec = parse("[kpa]\n").unwrap();
    let mut a = Autoscaler::new(&spec, Bounds { min: 1, max: 10 }, 0, Time::ZERO).unwrap();
    let pod = |ready: bool| lab_autoscale::PodSample {
        phase: lab_autoscale::PodPhase::Running,
        ready,
        deleting: false,
        start: Some(Time::ZERO),
        ready_transition: Some(Time::ZERO),
        cpu_request_milli: 1000,
        memory_request_bytes: 0,
        metrics: Some(SignalValues::default()),
    };
    for (pods, in_path) in [(1usize, true), (2, true), (3, false)] {
        let ps = vec![pod(true); pods];
        let o = Observation {
            spec_replicas: pods as u32,
            status_replicas: pods as u32,
            pods: &ps,
            totals: Ok(SignalValues {
                concurrency: 5.0,
                ..SignalValues::default()
            }),
            activator_queue: 0,
        };
        let d = a.decide(Time::from_secs(2 * pods as u64), &o);
        assert_eq!(d.activator_in_path, in_path, "{pods} pods: {}", d.reason);
    }
}

#[test]
fn queue_triggers_read_the_queue_with_their_own_threshold_keys() {
    use lab_autoscale::keda::KedaConfig;
    use lab_autoscale::Signal;
    let spec = parse(
        r#"[keda]
triggers = [
  { type = "redis", metadata = { listName = "jobs", activationListLength = 3 } },
  { type = "rabbitmq", metadata = { queueName = "q", mode = "QueueLength", value = 50 } },
  { type = "rabbitmq", metadata = { queueName = "q", mode = "MessageRate", value = 100 } },
]
"#,
    )
    .unwrap();
    let cfg = KedaConfig::compile(spec.keda.as_ref().unwrap(), Bounds { min: 0, max: 5 }).unwrap();
    let t = &cfg.triggers;
    // redis defaults listLength to 5.
    assert_eq!((t[0].threshold, t[0].activation_threshold), (5.0, 3.0));
    assert_eq!(t[0].reading.unwrap().signal, Signal::QueueDepth);
    assert_eq!(
        (t[1].threshold, t[1].reading.unwrap().signal),
        (50.0, Signal::QueueDepth)
    );
    assert_eq!(t[2].reading.unwrap().signal, Signal::RequestsPerSecond);
}
