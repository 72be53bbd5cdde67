//! The namespace and what keeps the pods safe and available: Pod Security
//! "restricted", a ServiceAccount without API rights, a PriorityClass,
//! PodDisruptionBudgets and NetworkPolicies.

use crate::serving::isvc_names;
use crate::{Ctx, Mode};
use serde_json::{json, Value};

/// The UID and GID `lab serve` runs as in the image (`deploy/Dockerfile`).
pub const RUN_AS: u32 = 65532;

/// The ServiceAccount the predictor pods use.
pub const SERVICE_ACCOUNT: &str = "lab-predictor";

/// The Pod Security profile the namespace enforces.
pub const POD_SECURITY_LEVEL: &str = "restricted";

pub fn namespace(cx: &mut Ctx) {
    let mut labels = cx.labels("namespace");
    for mode in ["enforce", "audit", "warn"] {
        labels[format!("pod-security.kubernetes.io/{mode}")] = json!(POD_SECURITY_LEVEL);
    }
    let v = json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": { "name": cx.ns, "labels": labels },
    });
    cx.push(v);
}

pub fn priority_class(cx: &mut Ctx) {
    let v = json!({
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": { "name": priority_class_name(cx), "labels": cx.labels("scheduling") },
        // Above the default of 0, so batch work yields to serving under GPU
        // pressure; far below system-cluster-critical (2000000000).
        "value": 100000,
        "globalDefault": false,
        "preemptionPolicy": "PreemptLowerPriority",
        "description": format!("Inference pods of lab scenario {}", cx.sc.name),
    });
    cx.push(v);
}

/// Cluster-scoped, so named after the namespace to keep scenarios apart.
pub fn priority_class_name(cx: &Ctx) -> String {
    format!("{}-inference", cx.ns)
}

pub fn service_account(cx: &mut Ctx) {
    let v = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": { "name": SERVICE_ACCOUNT, "namespace": cx.ns, "labels": cx.labels("predictor") },
        // The predictor never calls the API server.
        "automountServiceAccountToken": false,
    });
    cx.push(v);
}

/// The pod-level security context of the "restricted" profile.
pub fn pod_security_context() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": { "type": "RuntimeDefault" },
    })
}

/// The container-level security context of the "restricted" profile, with a
/// read-only root filesystem on top.
pub fn container_security_context() -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": RUN_AS,
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": { "drop": ["ALL"] },
        "seccompProfile": { "type": "RuntimeDefault" },
    })
}

/// Voluntary disruptions (node drains, upgrades) take one pod at a time, so a
/// drain never empties a service at once and never blocks forever either.
pub fn disruption_budget(cx: &mut Ctx, s: usize) {
    let svc = &cx.sc.services[s];
    for name in isvc_names(svc) {
        let v = json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": { "name": name, "namespace": cx.ns, "labels": cx.service_labels("predictor", &svc.name) },
            "spec": {
                "maxUnavailable": 1,
                "selector": { "matchLabels": { "serving.kserve.io/inferenceservice": name } },
            },
        });
        cx.push(v);
    }
}

/// Ingress only from the serving data path (Knative's activator and gateway in
/// serverless mode; the load generator's pods in the namespace in either mode)
/// and from Prometheus; egress only to DNS and model storage, and none at all
/// when the service emulates its GPU (no model to download).
pub fn network_policy(cx: &mut Ctx, s: usize) {
    let svc = &cx.sc.services[s];
    let names = isvc_names(svc);
    let mut from = vec![
        json!({ "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": cx.opts.prometheus_namespace } } }),
        // The cluster level's load shards run in this namespace with this label.
        json!({ "podSelector": { "matchLabels": { "app.kubernetes.io/component": "lab-load" } } }),
    ];
    if cx.opts.mode == Mode::Serverless {
        for ns in ["knative-serving", "kourier-system"] {
            from.push(json!({ "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": ns } } }));
        }
    }
    if svc.versions.len() > 1 {
        // The InferenceGraph's router pods call the versions.
        from.push(json!({ "podSelector": { "matchLabels": { "serving.kserve.io/inferencegraph": crate::dns_label(&svc.name) } } }));
    }
    let egress = if cx.opts.storage_uris.contains_key(&svc.name) {
        json!([
            {
                "to": [{ "namespaceSelector": { "matchLabels": { "kubernetes.io/metadata.name": "kube-system" } } }],
                "ports": [{ "protocol": "UDP", "port": 53 }, { "protocol": "TCP", "port": 53 }],
            },
            {
                "to": [{ "ipBlock": { "cidr": cx.opts.storage_cidr } }],
                "ports": [{ "protocol": "TCP", "port": 443 }],
            },
        ])
    } else {
        json!([])
    };
    let v = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": { "name": crate::dns_label(&svc.name), "namespace": cx.ns, "labels": cx.service_labels("predictor", &svc.name) },
        "spec": {
            "podSelector": { "matchExpressions": [{
                "key": "serving.kserve.io/inferenceservice", "operator": "In", "values": names,
            }] },
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{ "from": from }],
            "egress": egress,
        },
    });
    cx.push(v);
}
