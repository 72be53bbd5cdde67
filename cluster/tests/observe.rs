//! What the cluster level reads back from the API: replicas, scaling,
//! cold-start phases, nodes and cost, from snapshots built as the API server
//! writes its objects (RFC 3339 times to the second).

use lab_cluster::assemble::lay_into;
use lab_cluster::observe::{go_duration, image_pulls, Observation, Snapshot, Target};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The load starts at this instant: 2026-12-02T10:00:00Z.
const START: i128 = 1_796_205_600 * 1_000_000_000;

fn at(secs: i64) -> String {
    let t = k8s_openapi::jiff::Timestamp::from_second(1_796_205_600 + secs).unwrap();
    t.to_string()
}

fn pod(
    name: &str,
    created: i64,
    scheduled: Option<i64>,
    started: Option<i64>,
    ready: Option<i64>,
) -> Value {
    let mut conditions = vec![];
    match scheduled {
        Some(s) => conditions
            .push(json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": at(s)})),
        None => conditions.push(json!({
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu.",
            "lastTransitionTime": at(created),
        })),
    }
    if let Some(r) = ready {
        conditions.push(json!({"type": "Ready", "status": "True", "lastTransitionTime": at(r)}));
    } else {
        conditions
            .push(json!({"type": "Ready", "status": "False", "lastTransitionTime": at(created)}));
    }
    let mut status = json!({ "phase": if ready.is_some() { "Running" } else { "Pending" }, "conditions": conditions });
    if let Some(s) = started {
        status["containerStatuses"] = json!([{
            "name": "kserve-container", "image": "lab:x", "imageID": "", "ready": ready.is_some(),
            "restartCount": 0, "state": { "running": { "startedAt": at(s) } },
        }]);
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "uid": format!("uid-{name}"), "namespace": "lab",
            "creationTimestamp": at(created),
            "labels": { "serving.kserve.io/inferenceservice": "sentiment" },
        },
        "spec": { "containers": [{ "name": "kserve-container" }], "nodeName": if scheduled.is_some() { "node-a" } else { "" } },
        "status": status,
    })
}

fn deployment(replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "sentiment-predictor-00001-deployment", "namespace": "lab",
                      "labels": { "serving.kserve.io/inferenceservice": "sentiment" } },
        "spec": { "replicas": replicas, "selector": {}, "template": {} },
    })
}

fn node(name: &str, created: i64, ready: bool) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": { "name": name, "creationTimestamp": at(created), "labels": { "lab.dev/node-pool": "t4" } },
        "status": { "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }] },
    })
}

fn snap(t: i64, pods: Vec<Value>, replicas: i32, nodes: Vec<Value>) -> Snapshot {
    Snapshot {
        at_unix_ns: START + i128::from(t) * 1_000_000_000,
        pods: pods
            .into_iter()
            .map(|p| serde_json::from_value(p).unwrap())
            .collect(),
        deployments: vec![serde_json::from_value(deployment(replicas)).unwrap()],
        nodes: nodes
            .into_iter()
            .map(|n| serde_json::from_value(n).unwrap())
            .collect(),
        gpu_busy: BTreeMap::new(),
    }
}

fn target() -> Target {
    Target {
        isvc: "sentiment".into(),
        service: 0,
        name: "sentiment".into(),
        autoscaler: "kpa".into(),
    }
}

/// A warm pod on node-a; at 10 s the KPA asks for 3; one new pod lands on
/// node-a (pull 4 s, start at 16 s, ready at 30 s), one waits for node-b
/// (created at 20 s, ready at 24 s), which takes it at 40 s; at 120 s the
/// KPA goes back to 1, the two new pods go, and node-b is removed at 150 s.
fn observation() -> Observation {
    let mut o = Observation::new(START, vec![target()], 1, vec!["t4".into()]);
    let warm = || pod("warm", -600, Some(-600), Some(-590), Some(-560));
    let a = |ready| pod("cold-a", 10, Some(11), Some(16), ready);
    let b = |s, st, r| pod("cold-b", 10, s, st, r);
    let n_a = || node("node-a", -3600, true);
    o.record(&snap(-2, vec![warm()], 1, vec![n_a()]));
    o.record(&snap(
        10,
        vec![warm(), a(None), b(None, None, None)],
        3,
        vec![n_a()],
    ));
    o.record(&snap(
        25,
        vec![warm(), a(None), b(None, None, None)],
        3,
        vec![n_a(), node("node-b", 20, false)],
    ));
    o.record(&snap(
        30,
        vec![warm(), a(Some(30)), b(None, None, None)],
        3,
        vec![n_a(), node("node-b", 20, true)],
    ));
    o.record(&snap(
        60,
        vec![warm(), a(Some(30)), b(Some(40), Some(41), Some(55))],
        3,
        vec![n_a(), node("node-b", 20, true)],
    ));
    o.record(&snap(
        120,
        vec![warm()],
        1,
        vec![n_a(), node("node-b", 20, true)],
    ));
    o.record(&snap(150, vec![warm()], 1, vec![n_a()]));
    o
}

#[test]
fn replicas_scaling_and_pod_lives_come_from_the_snapshots() {
    let o = observation();
    let ready: Vec<u32> = o.samples.iter().map(|s| s.services[0].1).collect();
    let desired: Vec<u32> = o.samples.iter().map(|s| s.services[0].0).collect();
    assert_eq!(ready, [1, 1, 1, 2, 3, 1, 1]);
    assert_eq!(desired, [1, 3, 3, 3, 3, 1, 1]);
    assert_eq!(
        o.samples[0].t_ns, 0,
        "a sample before the start counts at 0"
    );
    let nodes: Vec<(u32, u32)> = o.samples.iter().map(|s| s.pools[0]).collect();
    assert_eq!(
        nodes,
        [(1, 1), (1, 1), (2, 1), (2, 2), (2, 2), (2, 2), (1, 1)]
    );

    let scalings: Vec<(u64, u32, u32)> = o
        .scalings
        .iter()
        .map(|s| (s.t_ns / 1_000_000_000, s.from, s.to))
        .collect();
    assert_eq!(scalings, [(10, 1, 3), (120, 3, 1)]);

    let b = &o.pods["uid-cold-b"];
    assert_eq!(b.created, 10_000_000_000);
    assert_eq!(b.scheduled, Some(40_000_000_000));
    assert_eq!(b.started, Some(41_000_000_000));
    assert_eq!(b.ready, Some(55_000_000_000));
    assert_eq!(
        b.ended,
        Some(120_000_000_000),
        "gone from the listing at 120 s"
    );
    assert_eq!(o.pods["uid-warm"].ended, None);
    let node_b = &o.nodes["node-b"];
    assert_eq!(
        (node_b.created, node_b.gone),
        (20_000_000_000, Some(150_000_000_000))
    );
}

#[test]
fn an_unscheduled_pod_keeps_the_schedulers_reason_until_it_is_placed() {
    let mut o = Observation::new(START, vec![target()], 1, vec!["t4".into()]);
    o.record(&snap(
        5,
        vec![pod("stuck", 1, None, None, None)],
        1,
        vec![node("node-a", -60, true)],
    ));
    let p = &o.pods["uid-stuck"];
    assert_eq!(
        p.unschedulable.as_deref(),
        Some("0/1 nodes are available: 1 Insufficient nvidia.com/gpu.")
    );
    o.record(&snap(
        9,
        vec![pod("stuck", 1, Some(8), Some(9), None)],
        1,
        vec![node("node-a", -60, true)],
    ));
    assert_eq!(o.pods["uid-stuck"].unschedulable, None);
}

#[test]
fn pulls_are_read_from_the_kubelets_events() {
    assert_eq!(go_duration("1.5s"), Some(1.5));
    assert_eq!(go_duration("1m2.5s"), Some(62.5));
    assert_eq!(go_duration("532ms"), Some(0.532));
    assert_eq!(go_duration("fast"), None);
    assert_eq!(go_duration(""), None);
    let event = |pod: &str, reason: &str, message: &str| -> k8s_openapi::api::core::v1::Event {
        serde_json::from_value(json!({
            "metadata": { "name": format!("{pod}.1") },
            "involvedObject": { "kind": "Pod", "name": pod },
            "reason": reason, "message": message,
        }))
        .unwrap()
    };
    let pulls = image_pulls(&[
        event("cold-a", "Pulling", "Pulling image \"lab:x\""),
        event("cold-a", "Pulled", "Successfully pulled image \"lab:x\" in 4s (4.2s including waiting). Image size: 1 bytes."),
        event("cold-b", "Pulled", "Container image \"lab:x\" already present on machine"),
        event("cold-c", "Pulled", "garbled"),
    ]);
    assert_eq!(pulls.get("cold-a"), Some(&4.0));
    assert_eq!(pulls.get("cold-b"), Some(&0.0));
    assert_eq!(
        pulls.get("cold-c"),
        None,
        "an unreadable message adds nothing"
    );
}

fn scenario() -> lab_scenario::Scenario {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/scale-to-zero.toml");
    // 180 s at 5 s intervals; the price is the file's ($0.526 per node-hour),
    // with four GPUs a node so that the pods fit where the snapshots put them.
    lab_scenario::load(
        &path,
        &[
            "run.duration=\"180s\"".into(),
            "node_pools.0.gpus_per_node=4".into(),
        ],
    )
    .unwrap()
}

fn skeleton(sc: &lab_scenario::Scenario) -> lab_results::Results {
    lab_sim::simulate(sc, 0, &mut |_| lab_sim::Control::Stop).results
}

#[test]
fn results_carry_what_the_cluster_did_and_its_cost() {
    let sc = scenario();
    let o = observation();
    let mut r = skeleton(&sc);
    let pulls = BTreeMap::from([("cold-a".to_string(), 4.0), ("cold-b".to_string(), 0.0)]);
    let end = 180_000_000_000;
    let notes = lay_into(&mut r, &sc, &o, &pulls, end);
    assert_eq!(r.level, lab_results::Level::Cluster);
    assert!(
        notes.iter().any(|n| n.contains("GPU use is not reported")),
        "{notes:?}"
    );

    // One point per 5 s interval, each with the state at its end.
    assert_eq!(r.timeseries.len(), 36);
    let ready: Vec<u32> = r
        .timeseries
        .iter()
        .map(|p| p.services[0].ready_replicas)
        .collect();
    assert_eq!(
        &ready[..7],
        &[1, 1, 1, 1, 1, 2, 2],
        "2 ready from the 30 s sample"
    );
    assert_eq!(ready[11], 3);
    assert_eq!(r.timeseries[3].node_pools[0].nodes, 1);
    assert_eq!(
        r.timeseries[4].node_pools[0].nodes, 2,
        "node-b exists from the 25 s sample"
    );
    assert_eq!(r.timeseries[4].node_pools[0].ready_nodes, 1);

    let rep = r.services[0].replicas;
    assert_eq!((rep.min_ready, rep.max_ready, rep.max_desired), (1, 3, 3));
    // 1 for 30 s, 2 for 30 s, 3 for 60 s, 1 for 60 s, over 180 s.
    let mean = (30.0 + 60.0 + 180.0 + 60.0) / 180.0;
    assert!((rep.mean_ready - mean).abs() < 1e-9, "{}", rep.mean_ready);

    let events: Vec<(f64, &str, u32, u32)> = r
        .scaling_events
        .iter()
        .map(|e| (e.t_seconds, e.autoscaler.as_str(), e.from, e.to))
        .collect();
    assert_eq!(events, [(10.0, "kpa", 1, 3), (120.0, "kpa", 3, 1)]);
    assert!(r.scaling_events[0]
        .reason
        .contains("sentiment-predictor-00001-deployment"));

    // Two cold starts (the warm pod predates the load): a took 20 s (1 s
    // scheduling, 4 s pull, 1 s start, 14 s to ready), b 45 s (30 s waiting
    // for node-b, no pull, 1 s start, 14 s to ready).
    let cs = &r.cold_starts;
    assert_eq!(cs.count, 2);
    assert!(
        (cs.duration_seconds.mean - 32.5).abs() < 0.05,
        "{}",
        cs.duration_seconds.mean
    );
    let ph = cs.phases_seconds;
    assert!((ph.node_provisioning - 15.5).abs() < 1e-9, "{ph:?}");
    assert!((ph.image_pull - 2.0).abs() < 1e-9, "{ph:?}");
    assert!((ph.readiness - 1.0).abs() < 1e-9, "{ph:?}");
    assert!((ph.model_load - 14.0).abs() < 1e-9, "{ph:?}");
    let sum = ph.node_provisioning + ph.image_pull + ph.readiness + ph.model_load;
    assert!(
        (sum - 32.5).abs() < 1e-9,
        "the phases add up to the mean cold start"
    );

    // Node-hours: node-a all 180 s, node-b from 20 s to 150 s.
    let hours = (180.0 + 130.0) / 3600.0;
    let pool = &r.cost.by_pool[0];
    assert!(
        (pool.node_hours - hours).abs() < 1e-12,
        "{}",
        pool.node_hours
    );
    assert!((r.cost.total_usd - hours * 0.526).abs() < 1e-12);
    // Each pod takes one of the node's four GPUs, so it pays a quarter of the
    // node while bound: warm 180 s, a 11..120 s, b 40..120 s.
    let pods = (180.0 + 109.0 + 80.0) / 4.0 / 3600.0 * 0.526;
    assert!(
        (r.cost.by_service[0].usd - pods).abs() < 1e-9,
        "{}",
        r.cost.by_service[0].usd
    );
    assert!((r.cost.idle_usd - (r.cost.total_usd - pods)).abs() < 1e-9);
    let last = r.timeseries.last().unwrap().cost_usd;
    assert!(
        (last - r.cost.total_usd).abs() < 1e-12,
        "the cost series ends at the total"
    );
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn a_pod_still_unscheduled_at_the_end_is_a_warning_with_the_reason() {
    let sc = scenario();
    let mut o = Observation::new(START, vec![target()], 1, vec!["t4".into()]);
    o.record(&snap(
        5,
        vec![pod("stuck", 1, None, None, None)],
        1,
        vec![node("node-a", -60, true)],
    ));
    let mut r = skeleton(&sc);
    r.services[0].requests.arrived = 10;
    lay_into(&mut r, &sc, &o, &BTreeMap::new(), 10_000_000_000);
    let kinds: Vec<&str> = r.warnings.iter().map(|w| w.kind.as_str()).collect();
    assert_eq!(kinds, ["unschedulable", "no_ready_replica"]);
    assert!(
        r.warnings[0]
            .message
            .contains("Insufficient nvidia.com/gpu"),
        "{}",
        r.warnings[0].message
    );
    assert_eq!(r.cold_starts.count, 0);
}

#[test]
fn without_pool_labels_the_nodes_that_ran_the_pods_are_the_pool() {
    let unlabelled = |name: &str| {
        let mut n = node(name, -60, true);
        n["metadata"]["labels"] = json!({ "node-role.kubernetes.io/control-plane": "" });
        n
    };
    let mut o = Observation::new(START, vec![target()], 1, vec!["t4".into()]);
    // node-a runs the pod (see `pod`); the control plane runs none of them.
    let nodes = vec![unlabelled("node-a"), unlabelled("control-plane")];
    o.record(&snap(
        5,
        vec![pod("p", -30, Some(-30), Some(-29), Some(-20))],
        1,
        nodes.clone(),
    ));
    assert_eq!(o.nodes["node-a"].pool, Some(0));
    assert_eq!(o.nodes["control-plane"].pool, None);
    assert_eq!(o.samples[0].pools, [(1, 1)]);
    assert_eq!(o.unpooled_nodes, 1);
    // Once any node is labelled, the labels alone decide.
    let mut o = Observation::new(START, vec![target()], 1, vec!["t4".into()]);
    let nodes = vec![unlabelled("node-a"), node("node-b", -60, true)];
    o.record(&snap(
        5,
        vec![pod("p", -30, Some(-30), Some(-29), Some(-20))],
        1,
        nodes,
    ));
    assert_eq!(o.nodes["node-a"].pool, None);
    assert_eq!(o.nodes["node-b"].pool, Some(0));
}
