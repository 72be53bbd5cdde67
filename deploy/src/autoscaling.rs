//! Autoscaling as the scenario says, in the objects each mode has: Knative
//! annotations (and the cluster-wide `config-autoscaler` keys) in serverless
//! mode; an autoscaling/v2 HorizontalPodAutoscaler or a KEDA ScaledObject
//! aimed at the predictor's Deployment in raw mode. What a mode cannot hold is
//! refused, key by key.

use crate::serving::isvc_names;
use crate::{Ctx, Group, Mode};
use lab_autoscale::spec::{
    HpaControllerFlags, HpaSpec, KedaSpec, KpaSpec, MetricSourceType, TargetType,
};
use lab_scenario::ServiceSpec;
use lab_units::Dur;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

const KNATIVE: &str = "autoscaling.knative.dev/";
/// Knative's namespace, where its cluster-wide configuration lives.
const KNATIVE_NAMESPACE: &str = "knative-serving";

/// Whether Knative's HPA class can run this HPA: one CPU utilization or memory
/// average-value target and no `behavior` (Knative creates the HPA itself and
/// sets none).
pub fn hpa_fits_knative(h: &HpaSpec) -> bool {
    knative_hpa_target(h).is_some() && h.behavior.is_none()
}

/// (metric, target) for Knative's HPA class.
fn knative_hpa_target(h: &HpaSpec) -> Option<(&'static str, String)> {
    let [m] = h.metrics.as_slice() else {
        return None;
    };
    if m.type_ != MetricSourceType::Resource {
        return None;
    }
    let r = m.resource.as_ref()?;
    match (r.name.as_str(), r.target.type_) {
        ("cpu", TargetType::Utilization) => {
            Some(("cpu", r.target.average_utilization?.to_string()))
        }
        // Knative reads a memory target in Mi.
        ("memory", TargetType::AverageValue) => {
            let mi = r.target.average_value?.0 / (1u64 << 20) as f64;
            Some(("memory", quantity(mi.round())))
        }
        _ => None,
    }
}

/// The replica bounds the InferenceService carries.
pub fn replica_bounds(svc: &ServiceSpec) -> (u32, u32) {
    match &svc.autoscaler.fixed {
        Some(f) if svc.autoscaler.kind() == "fixed" => {
            let n = f.replicas.unwrap_or(svc.min_replicas);
            (n, n)
        }
        _ => (svc.min_replicas, svc.max_replicas),
    }
}

/// A Kubernetes quantity string for a plain number.
fn quantity(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else if (v * 1000.0).fract().abs() < 1e-9 {
        format!("{}m", (v * 1000.0).round() as i64)
    } else {
        format!("{v}")
    }
}

/// Whole seconds, or a refusal naming the key.
fn whole_seconds(cx: &mut Ctx, key: String, d: Dur) -> Option<u64> {
    if d.nanos().is_multiple_of(1_000_000_000) {
        Some(d.nanos() / 1_000_000_000)
    } else {
        cx.refuse(
            key,
            format!("the field takes whole seconds; `{d}` is not: round it"),
        );
        None
    }
}

/// Annotations on the InferenceService: KServe's autoscaler class and, in
/// serverless mode, Knative's per-revision keys.
pub fn isvc_annotations(cx: &mut Ctx, svc: &ServiceSpec, ann: &mut Map<String, Value>) {
    let key = |k: &str| format!("services.{}.autoscaler.{k}", svc.name);
    let a = &svc.autoscaler;
    match (cx.opts.mode, a.kind()) {
        (Mode::Serverless, "kpa") => {
            let k = a.kpa.as_ref().expect("kind says kpa");
            ann.insert(format!("{KNATIVE}class"), json!("kpa.autoscaling.knative.dev"));
            kpa_annotations(cx, svc, k, ann);
        }
        (Mode::Serverless, "hpa") => {
            let h = a.hpa.as_ref().expect("kind says hpa");
            match knative_hpa_target(h) {
                Some((metric, target)) if h.behavior.is_none() => {
                    ann.insert(format!("{KNATIVE}class"), json!("hpa.autoscaling.knative.dev"));
                    ann.insert(format!("{KNATIVE}metric"), json!(metric));
                    ann.insert(format!("{KNATIVE}target"), json!(target));
                    controller_flags_note(cx, svc, h.controller.as_ref());
                }
                Some(_) => cx.refuse(
                    key("hpa.behavior"),
                    "Knative's HPA class creates the HPA without a behavior: render with --mode raw, \
                     where lab deploy writes the HPA itself",
                ),
                None => cx.refuse(
                    key("hpa.metrics"),
                    "serverless mode scales on one CPU utilization or memory average-value target \
                     (Knative's HPA class); render with --mode raw for Pods, Object or External metrics",
                ),
            }
        }
        (Mode::Serverless, "keda") => cx.refuse(
            key("keda"),
            "KEDA scales KServe's raw Deployments, not Knative revisions: render with --mode raw",
        ),
        (Mode::Serverless, _) => {
            // Fixed: min-scale = max-scale through KServe's bounds; no scale to zero.
            ann.insert(format!("{KNATIVE}class"), json!("kpa.autoscaling.knative.dev"));
        }
        (Mode::Raw, "kpa") => cx.refuse(
            key("kpa"),
            "the KPA is Knative's autoscaler and raw mode has no Knative: render with --mode serverless",
        ),
        (Mode::Raw, _) => {
            // lab deploy writes the HPA or ScaledObject itself, with the
            // scenario's behavior and metrics; KServe must not add its own.
            ann.insert("serving.kserve.io/autoscalerClass".into(), json!("external"));
        }
    }
}

fn kpa_annotations(cx: &mut Ctx, svc: &ServiceSpec, k: &KpaSpec, ann: &mut Map<String, Value>) {
    let key = |f: &str| format!("services.{}.autoscaler.kpa.{f}", svc.name);
    let mut put = |name: &str, v: String| {
        ann.insert(format!("{KNATIVE}{name}"), json!(v));
    };
    // Explicit, though concurrency is Knative's default: the manifest says what is scaled on.
    put(
        "metric",
        match k
            .metric
            .unwrap_or(lab_autoscale::spec::KpaMetric::Concurrency)
        {
            lab_autoscale::spec::KpaMetric::Concurrency => "concurrency".into(),
            lab_autoscale::spec::KpaMetric::Rps => "rps".into(),
        },
    );
    let num = |v: f64| quantity(v);
    if let Some(v) = k.target {
        put("target", num(v));
    }
    if let Some(v) = k.target_utilization_percentage {
        put("target-utilization-percentage", num(v));
    }
    if let Some(v) = k.window {
        put("window", v.to_string());
    }
    if let Some(v) = k.panic_window_percentage {
        put("panic-window-percentage", num(v));
    }
    if let Some(v) = k.panic_threshold_percentage {
        put("panic-threshold-percentage", num(v));
    }
    if let Some(v) = k.initial_scale {
        put("initial-scale", v.to_string());
    }
    if let Some(v) = k.activation_scale {
        put("activation-scale", v.to_string());
    }
    if let Some(v) = k.scale_down_delay {
        put("scale-down-delay", v.to_string());
    }
    if let Some(v) = k.target_burst_capacity {
        put("target-burst-capacity", num(v));
    }
    if let Some(v) = k.scale_to_zero_pod_retention_period {
        put("scale-to-zero-pod-retention-period", v.to_string());
    }
    if let Some(b) = k.metric_bucket {
        if b != Dur::from_secs(1) {
            cx.refuse(
                key("metric-bucket"),
                "metric-bucket is a lab extension for time-scaled runs; Knative's buckets are 1s and \
                 fixed: remove it to deploy",
            );
        }
    }
}

/// Knative's keys that exist only cluster-wide (`config-autoscaler`), per
/// service; services that disagree cannot share one cluster.
fn cluster_wide_kpa_keys(k: &KpaSpec) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let num = |v: f64| quantity(v);
    if let Some(v) = k.max_scale_up_rate {
        out.push(("max-scale-up-rate", num(v)));
    }
    if let Some(v) = k.max_scale_down_rate {
        out.push(("max-scale-down-rate", num(v)));
    }
    if let Some(v) = k.scale_to_zero_grace_period {
        out.push(("scale-to-zero-grace-period", v.to_string()));
    }
    if let Some(v) = k.enable_scale_to_zero {
        out.push(("enable-scale-to-zero", v.to_string()));
    }
    if let Some(v) = k.allow_zero_initial_scale {
        out.push(("allow-zero-initial-scale", v.to_string()));
    }
    if let Some(v) = k.activator_capacity {
        out.push(("activator-capacity", num(v)));
    }
    if let Some(v) = k.tick_interval {
        out.push(("tick-interval", v.to_string()));
    }
    out
}

/// In serverless mode: the `config-autoscaler` keys the scenario sets, and
/// Knative's features the restricted Pod Security profile needs
/// (`secure-pod-defaults` gives the queue-proxy a RuntimeDefault seccomp
/// profile; emptyDir volumes hold the predictor's scratch space).
pub fn knative_cluster_config(cx: &mut Ctx) {
    if cx.opts.mode != Mode::Serverless {
        return;
    }
    let mut keys: BTreeMap<&'static str, (String, String)> = BTreeMap::new();
    let services = cx.sc.services.clone();
    for svc in &services {
        let Some(k) = &svc.autoscaler.kpa else {
            continue;
        };
        for (name, value) in cluster_wide_kpa_keys(k) {
            match keys.get(name) {
                Some((v, other)) if *v != value => cx.refuse(
                    format!("services.{}.autoscaler.kpa.{name}", svc.name),
                    format!(
                        "`{name}` is one setting for the whole cluster (config-autoscaler); service `{other}` \
                         sets {v}, this one {value}: make them agree"
                    ),
                ),
                Some(_) => {}
                None => {
                    keys.insert(name, (value, svc.name.clone()));
                }
            }
        }
    }
    if !keys.is_empty() {
        let data: BTreeMap<&str, String> = keys.iter().map(|(k, (v, _))| (*k, v.clone())).collect();
        let v = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": "config-autoscaler", "namespace": KNATIVE_NAMESPACE },
            "data": data,
        });
        cx.push_to(Group::ClusterConfig, v);
        cx.notes.push(format!(
            "config-autoscaler keys {} apply to every Knative service on the cluster (cluster-config/)",
            keys.keys().copied().collect::<Vec<_>>().join(", ")
        ));
    }
    let v = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": "config-features", "namespace": KNATIVE_NAMESPACE },
        "data": {
            "secure-pod-defaults": "enabled",
            "kubernetes.podspec-emptydir": "enabled",
            "kubernetes.podspec-securitycontext": "enabled",
            "kubernetes.podspec-priorityclassname": "enabled",
            "kubernetes.podspec-nodeselector": "enabled",
            "kubernetes.podspec-tolerations": "enabled",
        },
    });
    cx.push_to(Group::ClusterConfig, v);
}

fn controller_flags_note(cx: &mut Ctx, svc: &ServiceSpec, flags: Option<&HpaControllerFlags>) {
    let Some(f) = flags else { return };
    let mut set = Vec::new();
    if let Some(v) = f.sync_period {
        set.push(format!("--horizontal-pod-autoscaler-sync-period={v}"));
    }
    if let Some(v) = f.tolerance {
        set.push(format!("--horizontal-pod-autoscaler-tolerance={v}"));
    }
    if let Some(v) = f.downscale_stabilization {
        set.push(format!(
            "--horizontal-pod-autoscaler-downscale-stabilization={v}"
        ));
    }
    if let Some(v) = f.cpu_initialization_period {
        set.push(format!(
            "--horizontal-pod-autoscaler-cpu-initialization-period={v}"
        ));
    }
    if let Some(v) = f.initial_readiness_delay {
        set.push(format!(
            "--horizontal-pod-autoscaler-initial-readiness-delay={v}"
        ));
    }
    if let Some(v) = f.metric_window {
        cx.refuse(
            format!("services.{}.autoscaler.controller.metric-window", svc.name),
            format!("metric-window ({v}) is the metrics pipeline's averaging window, not a kube-controller-manager flag; remove it to deploy"),
        );
    }
    if !set.is_empty() {
        cx.notes.push(format!(
            "service `{}` assumes kube-controller-manager flags {}: set them on the control plane \
             (kind: deploy/kind/cluster.yaml's controllerManager extraArgs); no object can",
            svc.name,
            set.join(" ")
        ));
    }
}

/// The HPA or ScaledObject of each of a service's InferenceServices, in raw mode.
pub fn service(cx: &mut Ctx, s: usize) {
    if cx.opts.mode != Mode::Raw {
        return;
    }
    let svc = cx.sc.services[s].clone();
    for name in isvc_names(&svc) {
        if let Some(h) = &svc.autoscaler.hpa {
            hpa(cx, &svc, &name, h);
        }
        if let Some(k) = &svc.autoscaler.keda {
            scaled_object(cx, &svc, &name, k);
        }
    }
}

/// KServe's RawDeployment names the predictor's Deployment `<isvc>-predictor`.
fn target_ref(name: &str) -> Value {
    json!({ "apiVersion": "apps/v1", "kind": "Deployment", "name": format!("{name}-predictor") })
}

/// Lab-only fields removed and quantities spelled as strings, as the API takes them.
fn to_api(mut v: Value) -> Value {
    fn walk(v: &mut Value, parent: &str) {
        match v {
            Value::Object(m) => {
                m.remove("signal");
                for (k, child) in m.iter_mut() {
                    let quantity_field = (parent == "target"
                        && (k == "value" || k == "averageValue"))
                        || k == "tolerance";
                    if quantity_field {
                        if let Some(f) = child.as_f64() {
                            *child = json!(quantity(f));
                            continue;
                        }
                    }
                    walk(child, k);
                }
            }
            Value::Array(a) => a.iter_mut().for_each(|c| walk(c, parent)),
            _ => {}
        }
    }
    walk(&mut v, "");
    v
}

fn hpa(cx: &mut Ctx, svc: &ServiceSpec, name: &str, h: &HpaSpec) {
    let key = |k: &str| format!("services.{}.autoscaler.hpa.{k}", svc.name);
    if svc.min_replicas == 0 {
        // The scenario allows it only with Object or External metrics, as upstream does.
        cx.notes.push(format!(
            "service `{}`: an HPA with minReplicas 0 needs the HPAScaleToZero feature gate (alpha) on the \
             API server and kube-controller-manager (kind: deploy/kind/cluster.yaml's featureGates)",
            svc.name
        ));
    }
    for (i, m) in h.metrics.iter().enumerate() {
        if m.type_ == MetricSourceType::Object
            && m.object
                .as_ref()
                .is_some_and(|o| o.described_object.is_none())
        {
            cx.refuse(
                key(&format!("metrics[{i}].object.describedObject")),
                "an Object metric on a cluster names the object it describes (apiVersion, kind, name): add it",
            );
        }
    }
    controller_flags_note(cx, svc, h.controller.as_ref());
    let mut spec = json!({
        "scaleTargetRef": target_ref(name),
        "minReplicas": svc.min_replicas,
        "maxReplicas": svc.max_replicas,
        "metrics": to_api(serde_json::to_value(&h.metrics).expect("metrics serialize")),
    });
    if let Some(b) = &h.behavior {
        spec["behavior"] = to_api(serde_json::to_value(b).expect("behavior serializes"));
    }
    let v = json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": name, "namespace": cx.ns, "labels": cx.service_labels("autoscaler", &svc.name) },
        "spec": spec,
    });
    cx.push(v);
}

fn scaled_object(cx: &mut Ctx, svc: &ServiceSpec, name: &str, k: &KedaSpec) {
    let key = |f: &str| format!("services.{}.autoscaler.keda.{f}", svc.name);
    let mut spec = json!({
        "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": format!("{name}-predictor") },
        "minReplicaCount": svc.min_replicas,
        "maxReplicaCount": svc.max_replicas,
    });
    for (field, d) in [
        ("pollingInterval", k.polling_interval),
        ("cooldownPeriod", k.cooldown_period),
        ("initialCooldownPeriod", k.initial_cooldown_period),
    ] {
        if let Some(d) = d {
            if let Some(s) = whole_seconds(cx, key(field), d) {
                spec[field] = json!(s);
            }
        }
    }
    if let Some(n) = k.idle_replica_count {
        spec["idleReplicaCount"] = json!(n);
    }
    if let Some(f) = &k.fallback {
        spec["fallback"] = to_api(serde_json::to_value(f).expect("fallback serializes"));
    }
    if let Some(a) = &k.advanced {
        spec["advanced"] = to_api(serde_json::to_value(a).expect("advanced serializes"));
    }
    if let Some(f) = &k.controller {
        controller_flags_note(cx, svc, Some(f));
    }
    let mut triggers = Vec::new();
    for (i, t) in k.triggers.iter().enumerate() {
        let mut meta = t.metadata.clone();
        match t.type_.as_str() {
            "prometheus" => {
                let was = meta.insert("serverAddress".into(), cx.opts.prometheus_url.clone());
                if was.as_deref() != Some(cx.opts.prometheus_url.as_str()) {
                    cx.notes.push(format!(
                        "service `{}`: the prometheus trigger queries the cluster's Prometheus at {} (the scenario's serverAddress {} is the local level's)",
                        svc.name,
                        cx.opts.prometheus_url,
                        was.unwrap_or_else(|| "(unset)".into())
                    ));
                }
            }
            "cpu" | "memory" | "cron" => {}
            other => {
                let connects = [
                    "host",
                    "hostFromEnv",
                    "bootstrapServers",
                    "serverAddress",
                    "connectionFromEnv",
                    "address",
                ]
                .iter()
                .any(|k| meta.contains_key(*k));
                if !connects && t.authentication_ref.is_none() {
                    cx.refuse(
                        key(&format!("triggers[{i}]")),
                        format!(
                            "a `{other}` trigger on a cluster connects to its source, and this one names none \
                             (metadata.host or an authenticationRef); requests reach the pods over HTTP, so \
                             a `prometheus` trigger on the predictor's metrics (lab_predictor_queue_depth, \
                             lab_predictor_inflight_requests) measures the same load"
                        ),
                    );
                }
            }
        }
        let mut tv = to_api(serde_json::to_value(t).expect("trigger serializes"));
        tv["metadata"] = json!(meta);
        triggers.push(tv);
    }
    spec["triggers"] = json!(triggers);
    let v = json!({
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": { "name": name, "namespace": cx.ns, "labels": cx.service_labels("autoscaler", &svc.name) },
        "spec": spec,
    });
    cx.push(v);
}
