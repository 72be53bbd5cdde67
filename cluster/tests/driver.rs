//! The cluster driver against an API server double at the HTTP level: the
//! requests it sends to apply what `lab deploy` renders (verbs, paths, field
//! manager, bodies), waiting on watches until Ready, a Pending pod reported
//! with the scheduler's reason, and teardown after success, after an error and
//! on Ctrl-C.

use lab_cluster::fake::{isvc, isvc_path, shard_pod, FakeApi};
use lab_cluster::{Cluster, ClusterError, FIELD_MANAGER};
use serde_json::json;
use std::time::Duration;

fn spike() -> lab_deploy::Rendered {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/spike.toml");
    let sc = lab_scenario::load_checked(&path, &[]).unwrap();
    lab_deploy::render(
        &sc,
        &lab_deploy::Options::new(lab_deploy::Mode::Raw, "lab:0.1.0-test-cpu"),
    )
    .unwrap()
}

#[tokio::test]
async fn apply_is_server_side_under_one_field_manager_in_order() {
    let api = FakeApi::default();
    let cluster = Cluster::new(api.client());
    let r = spike();
    let applied = cluster.apply(&r.objects).await.unwrap();
    assert_eq!(applied.len(), r.objects.len());
    let reqs = api.requests();
    assert_eq!(reqs.len(), r.objects.len(), "one request per object");
    for (req, obj) in reqs.iter().zip(&r.objects) {
        assert_eq!(req.method, "PATCH");
        assert_eq!(
            req.query.get("fieldManager").map(String::as_str),
            Some(FIELD_MANAGER)
        );
        assert_eq!(req.query.get("force").map(String::as_str), Some("true"));
        assert_eq!(
            req.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
        assert_eq!(
            req.body.as_ref(),
            Some(obj),
            "the body is the rendered object itself"
        );
    }
    // The namespace first, at its cluster-scoped path; namespaced kinds under it.
    assert_eq!(reqs[0].path, "/api/v1/namespaces/lab-spike");
    assert!(reqs
        .iter()
        .any(|q| q.path == "/apis/scheduling.k8s.io/v1/priorityclasses/lab-spike-inference"));
    assert!(reqs
        .iter()
        .any(|q| q.path == isvc_path("lab-spike", "resnet")));
    assert!(reqs
        .iter()
        .any(|q| q.path
            == "/apis/autoscaling/v2/namespaces/lab-spike/horizontalpodautoscalers/resnet"));
    let isvc_at = reqs
        .iter()
        .position(|q| q.path.contains("/inferenceservices/"))
        .unwrap();
    let runtime_at = reqs
        .iter()
        .position(|q| q.path.contains("/servingruntimes/"))
        .unwrap();
    assert!(
        runtime_at < isvc_at,
        "the runtime an InferenceService names exists before it"
    );
}

#[tokio::test]
async fn waits_on_the_watch_until_every_inference_service_is_ready() {
    let api = FakeApi::default();
    api.put(&isvc_path("ns", "a"), isvc("ns", "a", false));
    api.put(&isvc_path("ns", "b"), isvc("ns", "b", true));
    api.script_watch(vec![
        json!({"type": "MODIFIED", "object": isvc("ns", "a", false)}),
        json!({"type": "MODIFIED", "object": isvc("ns", "a", true)}),
    ]);
    let cluster = Cluster::new(api.client());
    let mut seen = Vec::new();
    cluster
        .wait_ready(
            "ns",
            &["a".into(), "b".into()],
            Duration::from_secs(20),
            |n, of| seen.push((n, of)),
            std::future::pending(),
        )
        .await
        .unwrap();
    assert_eq!(seen, vec![(1, 2), (2, 2)], "progress on each change");
    let reqs = api.requests();
    let watch = reqs
        .iter()
        .find(|q| q.query.contains_key("watch"))
        .expect("a watch was opened");
    assert_eq!(
        watch.path,
        "/apis/serving.kserve.io/v1beta1/namespaces/ns/inferenceservices"
    );
    // Nothing changed after the list, so its version is the store's.
    assert_eq!(
        watch.query["resourceVersion"],
        api.resource_version().to_string(),
        "the watch starts from the list's version"
    );
}

#[tokio::test]
async fn a_pending_pod_is_reported_with_the_scheduler_reason() {
    let api = FakeApi::default();
    api.put(&isvc_path("ns", "resnet"), isvc("ns", "resnet", false));
    api.put(
        "/api/v1/namespaces/ns/pods/resnet-predictor-7d9f",
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "resnet-predictor-7d9f", "namespace": "ns", "labels": { "serving.kserve.io/inferenceservice": "resnet" } },
            "spec": { "containers": [{ "name": "kserve-container" }] },
            "status": { "phase": "Pending", "conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            }] },
        }),
    );
    api.put(
        "/api/v1/namespaces/ns/events/resnet-predictor-7d9f.1",
        json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": { "name": "resnet-predictor-7d9f.1", "namespace": "ns" },
            "involvedObject": { "kind": "Pod", "name": "resnet-predictor-7d9f", "namespace": "ns" },
            "type": "Warning", "reason": "FailedScheduling",
            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
        }),
    );
    let cluster = Cluster::new(api.client());
    let err = cluster
        .wait_ready(
            "ns",
            &["resnet".into()],
            Duration::from_millis(300),
            |_, _| {},
            std::future::pending(),
        )
        .await
        .unwrap_err();
    let ClusterError::NotReady(report) = err else {
        panic!("{err}")
    };
    let text = report.to_string();
    assert!(text.contains("resnet"), "{text}");
    assert!(text.contains("condition Ready=False"), "{text}");
    assert!(
        text.contains(
            "not scheduled (Unschedulable): 0/3 nodes are available: 3 Insufficient nvidia.com/gpu"
        ),
        "{text}"
    );
    assert!(text.contains("event FailedScheduling"), "{text}");
    let reqs = api.requests();
    assert!(reqs.iter().any(|q| q.path == "/api/v1/namespaces/ns/pods"
        && q.query.get("labelSelector").map(String::as_str)
            == Some("serving.kserve.io/inferenceservice=resnet")));
}

#[tokio::test]
async fn ctrl_c_while_waiting_stops_the_wait() {
    let api = FakeApi::default();
    api.put(&isvc_path("ns", "a"), isvc("ns", "a", false));
    // A watch that never ends: the double answers it with no events, so the
    // driver lists again; the stop must still win.
    let cluster = Cluster::new(api.client());
    let stop = tokio::time::sleep(Duration::from_millis(200));
    let err = cluster
        .wait_ready(
            "ns",
            &["a".into()],
            Duration::from_secs(30),
            |_, _| {},
            stop,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ClusterError::Interrupted), "{err}");
}

#[tokio::test]
async fn teardown_deletes_last_applied_first_and_reports_what_it_could_not() {
    let api = FakeApi::default();
    let cluster = Cluster::new(api.client());
    let r = spike();
    let applied = cluster.apply(&r.objects).await.unwrap();
    // One object is already gone (404 counts as deleted), one refuses (403).
    let gone = "/api/v1/namespaces/lab-spike/serviceaccounts/lab-predictor";
    api.remove(gone);
    let pdb = "/apis/policy/v1/namespaces/lab-spike/poddisruptionbudgets/resnet";
    api.fail(pdb, 403);
    let before = api.requests().len();
    let left = cluster.teardown(&applied).await;
    let deletes: Vec<_> = api.requests()[before..].to_vec();
    assert!(deletes.iter().all(|q| q.method == "DELETE"));
    assert_eq!(
        deletes.len(),
        applied.len(),
        "every applied object is deleted once"
    );
    assert_eq!(
        deletes.last().unwrap().path,
        "/api/v1/namespaces/lab-spike",
        "the namespace goes last"
    );
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0].object.kind, "PodDisruptionBudget");
    assert!(
        left[0].error.contains("403") || left[0].error.contains("refused"),
        "{}",
        left[0].error
    );
}

#[tokio::test]
async fn an_apply_the_server_refuses_returns_what_was_applied_to_tear_down() {
    let api = FakeApi::default();
    let r = spike();
    let isvc_at = r
        .objects
        .iter()
        .position(|o| o["kind"] == "InferenceService")
        .unwrap();
    api.fail(&isvc_path("lab-spike", "resnet"), 422);
    let cluster = Cluster::new(api.client());
    let (done, err) = cluster.apply(&r.objects).await.unwrap_err();
    assert_eq!(
        done.len(),
        isvc_at,
        "everything before the refused object was applied"
    );
    assert!(err.to_string().contains("refused by the test"), "{err}");
    let left = cluster.teardown(&done).await;
    assert!(left.is_empty(), "{left:?}");
    assert!(
        api.applied_paths().iter().all(|p| api.get(p).is_none()),
        "nothing is left behind"
    );
}

/// The load Job's shards: started together once every one listens, through
/// the pod proxy (the shards have no API rights), and read back from their
/// logs once the Job is done, by completion index.
#[tokio::test]
async fn shards_start_together_and_their_logs_come_back_by_index() {
    let api = FakeApi::default();
    let ns = "lab-spike";
    let pod_path = |i: u32| format!("/api/v1/namespaces/{ns}/pods/lab-load-{i}-x{i}");
    // The shards' own answer to their start (these pods run no process).
    for i in 0..3 {
        api.script_answer(
            &format!("{}:9000/proxy/start", pod_path(i)),
            202,
            "application/json",
            "{\"starting\":true}",
        );
    }
    // Index 1 is listed first and index 2 is not Ready yet.
    api.put(&pod_path(1), shard_pod(ns, "lab-load", 1, true, "Running"));
    api.put(&pod_path(0), shard_pod(ns, "lab-load", 0, true, "Running"));
    api.put(&pod_path(2), shard_pod(ns, "lab-load", 2, false, "Running"));
    let cluster = Cluster::new(api.client());
    let becomes_ready = {
        let api = api.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            api.put(&pod_path(2), shard_pod(ns, "lab-load", 2, true, "Running"));
        }
    };
    let (shards, ()) = tokio::join!(
        cluster.start_shards(
            lab_cluster::ShardJob {
                namespace: ns,
                job: "lab-load",
                count: 3,
                port: 9000
            },
            Duration::from_secs(10),
            Duration::from_secs(5),
            std::future::pending()
        ),
        becomes_ready
    );
    let shards = shards.unwrap();
    assert_eq!(
        shards.pods,
        vec!["lab-load-0-x0", "lab-load-1-x1", "lab-load-2-x2"],
        "by completion index"
    );
    let starts: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|q| q.method == "POST")
        .collect();
    assert_eq!(
        starts.len(),
        3,
        "one start per shard, none before all listened"
    );
    let secs = shards
        .start
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for (i, q) in starts.iter().enumerate() {
        assert_eq!(
            q.path,
            format!("/api/v1/namespaces/{ns}/pods/lab-load-{i}-x{i}:9000/proxy/start")
        );
        assert_eq!(
            q.body,
            Some(json!(format!("{secs:.3}").parse::<f64>().unwrap())),
            "one instant for all"
        );
    }

    // The Job ends; each shard's log is its results.
    for i in 0..3 {
        api.put(
            &pod_path(i),
            shard_pod(ns, "lab-load", i, false, "Succeeded"),
        );
        api.put_text(
            &format!("{}/log", pod_path(i)),
            &format!("{{\"shard\": \"{i}/3\"}}\n"),
        );
    }
    let logs = cluster
        .collect_shards(
            ns,
            &shards,
            lab_deploy::LOG_LIMIT_BYTES,
            Duration::from_secs(10),
            std::future::pending(),
        )
        .await
        .unwrap();
    assert_eq!(logs.len(), 3);
    assert!(logs[2].contains("\"2/3\""));
    let log_req = api
        .requests()
        .into_iter()
        .find(|q| q.path.ends_with("/log"))
        .unwrap();
    assert_eq!(
        log_req.query.get("container").map(String::as_str),
        Some("load")
    );
    assert_eq!(
        log_req.query.get("limitBytes").map(String::as_str),
        Some("10485760"),
        "a bounded log"
    );
}

#[tokio::test]
async fn a_failed_shard_fails_the_collection_with_its_log() {
    let api = FakeApi::default();
    let path = "/api/v1/namespaces/ns/pods/lab-load-0-x0";
    api.put(path, shard_pod("ns", "lab-load", 0, false, "Failed"));
    api.put_text(
        &format!("{path}/log"),
        "error: model metadata: connection refused\n",
    );
    let cluster = Cluster::new(api.client());
    let shards = lab_cluster::Shards {
        pods: vec!["lab-load-0-x0".into()],
        start: std::time::SystemTime::now(),
    };
    let err = cluster
        .collect_shards(
            "ns",
            &shards,
            1 << 20,
            Duration::from_secs(5),
            std::future::pending(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("connection refused"), "{err}");
}

/// The ClusterRole in deploy/rbac/lab-harness.yaml allows every request a
/// whole run makes (apply, wait, shards started and read, teardown), and
/// each of its rules is used: the documented rights are the needed ones.
#[tokio::test]
async fn every_request_of_a_run_is_allowed_by_the_documented_role_and_every_rule_is_used() {
    let api = FakeApi::default();
    let cluster = Cluster::new(api.client());
    let r = spike();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/spike.toml");
    let sc = lab_scenario::load_checked(&path, &[]).unwrap();
    let job = lab_deploy::load_job(
        &sc,
        &lab_deploy::Options::new(lab_deploy::Mode::Raw, "lab:t"),
        "lab-spike",
        1,
        "",
        &[],
    )
    .unwrap();
    let mut applied = cluster.apply(&r.objects).await.unwrap();
    api.put(
        &isvc_path("lab-spike", "resnet"),
        isvc("lab-spike", "resnet", false),
    );
    api.script_watch(vec![
        json!({"type": "MODIFIED", "object": isvc("lab-spike", "resnet", true)}),
    ]);
    cluster
        .wait_ready(
            "lab-spike",
            &r.inference_services(),
            Duration::from_secs(10),
            |_, _| {},
            std::future::pending(),
        )
        .await
        .unwrap();
    // A second wait that times out reads pods and events.
    api.put(
        &isvc_path("lab-spike", "resnet"),
        isvc("lab-spike", "resnet", false),
    );
    api.put(
        "/api/v1/namespaces/lab-spike/pods/resnet-predictor-1",
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "resnet-predictor-1", "namespace": "lab-spike",
                            "labels": {"serving.kserve.io/inferenceservice": "resnet"}},
               "status": {"phase": "Pending"}}),
    );
    let e = cluster
        .wait_ready(
            "lab-spike",
            &["resnet".into()],
            Duration::from_millis(100),
            |_, _| {},
            std::future::pending(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("resnet-predictor-1: Pending"), "{e}");
    applied.extend(cluster.apply(&job).await.unwrap());
    let pod = "/api/v1/namespaces/lab-spike/pods/lab-load-0-x0";
    api.put(pod, shard_pod("lab-spike", "lab-load", 0, true, "Running"));
    api.script_answer(
        &format!("{pod}:9000/proxy/start"),
        202,
        "application/json",
        "{\"starting\":true}",
    );
    let shards = cluster
        .start_shards(
            lab_cluster::ShardJob {
                namespace: "lab-spike",
                job: "lab-load",
                count: 1,
                port: 9000,
            },
            Duration::from_secs(5),
            Duration::from_secs(1),
            std::future::pending(),
        )
        .await
        .unwrap();
    api.put(
        pod,
        shard_pod("lab-spike", "lab-load", 0, false, "Succeeded"),
    );
    api.put_text(&format!("{pod}/log"), "{}");
    cluster
        .collect_shards(
            "lab-spike",
            &shards,
            1 << 20,
            Duration::from_secs(5),
            std::future::pending(),
        )
        .await
        .unwrap();
    // The samples taken while the load runs, and the GPU query through the
    // service proxy (no Prometheus here: refused, which is what it reads as).
    cluster.snapshot("lab-spike", 0).await.unwrap();
    cluster.events("lab-spike").await.unwrap();
    let proxied = cluster
        .service_get(
            "monitoring",
            "kube-prometheus-stack-prometheus",
            9090,
            "/api/v1/query?query=up",
        )
        .await;
    assert!(proxied.is_err(), "no route to a Prometheus in this test");
    assert!(cluster.teardown(&applied).await.is_empty());

    let role_text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/rbac/lab-harness.yaml"),
    )
    .unwrap();
    let role: serde_json::Value = serde_saphyr::from_str(&role_text).unwrap();
    let allowed = lab_cluster::fake::rbac_rights(&role);
    let used: std::collections::BTreeSet<_> = api
        .requests()
        .iter()
        .map(lab_cluster::fake::rbac_of)
        .collect();
    let missing: Vec<_> = used.difference(&allowed).collect();
    assert!(
        missing.is_empty(),
        "requests the role does not allow: {missing:?}"
    );
    let unused: Vec<_> = allowed.difference(&used).collect();
    // InferenceGraphs and ScaledObjects are not in spike's manifests.
    let unused: Vec<_> = unused
        .into_iter()
        .filter(|(_, r, _)| r != "inferencegraphs" && r != "scaledobjects")
        .collect();
    assert!(
        unused.is_empty(),
        "rights the role grants and no request uses: {unused:?}"
    );
}
