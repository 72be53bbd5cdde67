//! KServe's controller and the scheduler, as far as lab sees them: an
//! applied InferenceService gets its predictor Deployment and that many
//! pods bound to the first node, and then its Ready conditions and URL; or,
//! for a service the test marks never ready, pods Pending as unschedulable
//! for want of GPUs, with the scheduler's FailedScheduling warning event.
//! The pods are not run: the InferenceService's traffic is the test's to
//! route (`FakeApi::route_host`).

use super::store::{self, name_suffix, now_rfc3339, owner_ref, path_of};
use super::{FakeApi, State};
use serde_json::{json, Value};

/// KServe's label on an InferenceService's pods.
const ISVC_LABEL: &str = "serving.kserve.io/inferenceservice";

pub fn isvc_applied(api: &FakeApi, st: &mut State, path: &str) {
    if !st.opts.controller {
        return;
    }
    let delay = st.opts.isvc_delay;
    if delay.is_zero() {
        reconcile(st, path);
        return;
    }
    let weak = api.weak();
    let path = path.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        if let Some(api) = FakeApi::from_weak(&weak) {
            reconcile(&mut api.lock(), &path);
        }
    });
}

/// The nodes' names, in order; pods are bound to the first.
fn nodes(st: &State) -> Vec<String> {
    st.store
        .paths_under("/api/v1/nodes")
        .iter()
        .filter_map(|p| p.rsplit('/').next().map(str::to_string))
        .collect()
}

fn reconcile(st: &mut State, path: &str) {
    let Some(isvc) = st.store.get(path).cloned() else {
        return;
    };
    let name = isvc["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some(ns) = isvc["metadata"]["namespace"]
        .as_str()
        .map(str::to_string)
        .or_else(|| store::ApiPath::parse(path).and_then(|p| p.namespace))
    else {
        return;
    };
    let nodes = nodes(st);
    let schedulable = !st.opts.never_ready.contains(&name) && !nodes.is_empty();
    let replicas = isvc["spec"]["predictor"]["minReplicas"]
        .as_u64()
        .unwrap_or(1)
        .max(1);
    let ready = if schedulable { replicas } else { 0 };
    let now = now_rfc3339();
    let labels = json!({
        ISVC_LABEL: name,
        "component": "predictor",
        "app": format!("{name}-predictor"),
    });
    let container = isvc["spec"]["predictor"]["containers"][0]
        .as_object()
        .map(|c| Value::Object(c.clone()))
        .unwrap_or_else(|| json!({ "name": "kserve-container", "image": "kserve/predictor" }));
    let deployment_name = format!("{name}-predictor");
    let available = if schedulable {
        json!({ "type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                "message": "Deployment has minimum availability.", "lastTransitionTime": now })
    } else {
        json!({ "type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                "message": "Deployment does not have minimum availability.", "lastTransitionTime": now })
    };
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name, "namespace": ns, "labels": labels,
            "ownerReferences": [owner_ref(&isvc)],
        },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": labels },
            "template": { "metadata": { "labels": labels }, "spec": { "containers": [container] } },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": [available],
        },
    });
    let deployment_path = path_of("apps/v1", "deployments", Some(&ns), &deployment_name);
    let deployment = st.store.upsert(&deployment_path, deployment, false);

    // The ReplicaSet's template hash, stable for one InferenceService.
    let uid = isvc["metadata"]["uid"].as_str().unwrap_or_default();
    let hash = name_suffix(fnv1a(uid), 10);
    let wanted: Vec<String> = (0..replicas)
        .map(|n| format!("{deployment_name}-{hash}-{n}"))
        .collect();
    let pods_of_isvc: Vec<String> = st
        .store
        .paths_under(&format!("/api/v1/namespaces/{ns}/pods"))
        .into_iter()
        .filter(|p| {
            st.store.get(p).is_some_and(|o| {
                o["metadata"]["labels"][ISVC_LABEL] == name.as_str()
                    && o["metadata"]["ownerReferences"][0]["uid"] == deployment["metadata"]["uid"]
            })
        })
        .collect();
    for p in &pods_of_isvc {
        if !wanted.iter().any(|w| p.ends_with(&format!("/{w}"))) {
            store::delete(st, p);
        }
    }
    for pod_name in &wanted {
        let pod_path = path_of("v1", "pods", Some(&ns), pod_name);
        if st.store.get(&pod_path).is_some() {
            continue;
        }
        let mut pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod_name, "namespace": ns, "labels": labels,
                "ownerReferences": [owner_ref(&deployment)],
            },
            "spec": { "containers": [container] },
        });
        let container_name = container["name"].clone();
        if schedulable {
            pod["spec"]["nodeName"] = json!(nodes[0]);
            let cond = |t: &str| json!({ "type": t, "status": "True", "lastTransitionTime": now });
            pod["status"] = json!({
                "phase": "Running",
                "hostIP": "127.0.0.1",
                "podIP": "127.0.0.1",
                "startTime": now,
                "conditions": [cond("PodScheduled"), cond("Initialized"), cond("ContainersReady"), cond("Ready")],
                "containerStatuses": [{
                    "name": container_name,
                    "image": container["image"],
                    "ready": true,
                    "started": true,
                    "restartCount": 0,
                    "state": { "running": { "startedAt": now } },
                }],
            });
            st.store.upsert(&pod_path, pod, false);
        } else {
            let message = if nodes.is_empty() {
                "no nodes available to schedule pods".to_string()
            } else {
                let n = nodes.len();
                format!("0/{n} nodes are available: {n} Insufficient nvidia.com/gpu.")
            };
            pod["status"] = json!({
                "phase": "Pending",
                "conditions": [{
                    "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": message, "lastTransitionTime": now,
                }],
            });
            let pod = st.store.upsert(&pod_path, pod, false);
            let event_name = format!("{pod_name}.{}", name_suffix(st.store.next_id(), 16));
            let event = json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": { "name": event_name, "namespace": ns },
                "involvedObject": {
                    "apiVersion": "v1", "kind": "Pod", "name": pod_name, "namespace": ns,
                    "uid": pod["metadata"]["uid"],
                },
                "type": "Warning",
                "reason": "FailedScheduling",
                "message": message,
                "source": { "component": "default-scheduler" },
                "reportingComponent": "default-scheduler",
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            });
            st.store.upsert(
                &path_of("v1", "events", Some(&ns), &event_name),
                event,
                false,
            );
        }
    }

    let mut isvc = isvc;
    isvc["status"] = if schedulable {
        let cond = |t: &str| json!({ "type": t, "status": "True", "lastTransitionTime": now });
        json!({
            "observedGeneration": isvc["metadata"]["generation"],
            "conditions": [cond("IngressReady"), cond("PredictorReady"), cond("Ready")],
            "url": format!("http://{name}.{ns}.example.com"),
            "address": { "url": format!("http://{name}-predictor.{ns}.svc.cluster.local") },
        })
    } else {
        let cond = |t: &str| {
            json!({ "type": t, "status": "False", "reason": "MinimumReplicasUnavailable",
                    "message": "Deployment does not have minimum availability.", "lastTransitionTime": now })
        };
        json!({
            "observedGeneration": isvc["metadata"]["generation"],
            "conditions": [cond("PredictorReady"), cond("Ready")],
        })
    };
    st.store.upsert(path, isvc, false);
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
