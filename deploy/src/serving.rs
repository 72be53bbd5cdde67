//! What serves a model: a ServingRuntime per service running `lab serve` from
//! the image, an InferenceService per service (or per version of a canary
//! split, joined by an InferenceGraph), and the ConfigMap with the emulated
//! GPUs' calibration profiles.

use crate::gpu;
use crate::policy::{
    container_security_context, pod_security_context, priority_class_name, SERVICE_ACCOUNT,
};
use crate::{dns_label, Ctx, Mode};
use lab_gpu::CalibrationProfile;
use lab_scenario::{LatencySpec, ServiceSpec, GPU_RESOURCE};
use serde_json::{json, Map, Value};

pub const HTTP_PORT: u16 = 8080;
pub const GRPC_PORT: u16 = 8081;
/// Where the profiles ConfigMap is mounted in emulating pods.
const PROFILE_DIR: &str = "/etc/lab/profiles";
/// Where KServe's storage initializer puts the model.
const MODEL_DIR: &str = "/mnt/models";
/// The ConfigMap of calibration profiles.
pub const PROFILES_CONFIGMAP: &str = "lab-emulated-gpu-profiles";

/// The InferenceService names of a service: its own name, or one per version.
pub fn isvc_names(svc: &ServiceSpec) -> Vec<String> {
    if svc.versions.is_empty() {
        vec![dns_label(&svc.name)]
    } else {
        svc.versions
            .iter()
            .map(|v| dns_label(&format!("{}-{}", svc.name, v.name)))
            .collect()
    }
}

/// The ServingRuntime of a service.
pub fn runtime_name(svc: &ServiceSpec) -> String {
    dns_label(&format!("lab-serve-{}", svc.name))
}

/// Whether a service serves its real model (given storage) rather than
/// emulating the GPU from its latency profile.
pub fn serves_real_model(cx: &Ctx, svc: &ServiceSpec) -> bool {
    cx.opts.storage_uris.contains_key(&svc.name)
}

pub fn service(cx: &mut Ctx, s: usize) {
    let svc = cx.sc.services[s].clone();
    let key = |k: &str| format!("services.{}.{k}", svc.name);
    let real = serves_real_model(cx, &svc);
    let pool = cx.sc.pool_for(&svc).cloned();
    if !svc.timeout.nanos().is_multiple_of(1_000_000_000) {
        cx.refuse(
            key("timeout"),
            format!(
                "KServe's `timeout` is whole seconds; `{}` is not: round it",
                svc.timeout
            ),
        );
    }
    if cx.opts.mode == Mode::Raw && svc.container_concurrency > 0 {
        cx.refuse(
            key("containerConcurrency"),
            "containerConcurrency is enforced by Knative's queue-proxy, which raw mode does not have: \
             render with --mode serverless, or set containerConcurrency = 0",
        );
    }
    runtime(cx, &svc, real);
    let names = isvc_names(&svc);
    let versions: Vec<(String, &Vec<LatencySpec>)> = if svc.versions.is_empty() {
        vec![(names[0].clone(), &svc.latency)]
    } else {
        svc.versions
            .iter()
            .zip(&names)
            .map(|(v, n)| (n.clone(), v.latency.as_ref().unwrap_or(&svc.latency)))
            .collect()
    };
    for (name, specs) in versions {
        let mut model_args: Vec<String> = Vec::new();
        if real {
            model_args.extend([
                "--model".into(),
                format!("{}={MODEL_DIR}/model.onnx", svc.model_name()),
            ]);
            if pool.as_ref().is_some_and(|p| p.gpu.is_some()) {
                model_args.extend(["--device".into(), "cuda".into()]);
            }
        } else {
            match pool
                .as_ref()
                .and_then(|p| lab_scenario::profile_for(specs, p, &svc.gpu_request()))
            {
                Some(profile) => {
                    let cal = CalibrationProfile::reproducing(
                        svc.model_name(),
                        profile,
                        "written by lab deploy from the scenario's latency profile",
                    );
                    add_profile(cx, &name, &cal);
                    model_args.extend([
                        "--emulate".into(),
                        format!("{PROFILE_DIR}/{name}.json"),
                        "--emulated-model".into(),
                        svc.model_name().to_string(),
                    ]);
                    if let Some(g) = pool.as_ref().and_then(|p| p.gpu.clone()) {
                        model_args.extend(["--gpu-type".into(), g]);
                    }
                }
                None => cx.refuse(
                    key("latency"),
                    "no latency profile for the GPU type of the service's node pool, so its GPU cannot be \
                     emulated: add one, or give the model with --storage-uri",
                ),
            }
        }
        let v = inference_service(cx, &svc, &name, real, pool.as_ref(), model_args);
        cx.push(v);
    }
    if !svc.versions.is_empty() {
        graph(cx, &svc, &names);
    }
}

fn runtime(cx: &mut Ctx, svc: &ServiceSpec, real: bool) {
    let grace = grace_seconds(svc);
    let mut args: Vec<String> = vec![
        "serve".into(),
        "--host".into(),
        "0.0.0.0".into(),
        "--http-port".into(),
        HTTP_PORT.to_string(),
        "--grpc-port".into(),
        GRPC_PORT.to_string(),
        "--seed".into(),
        cx.sc.run.seed.to_string(),
        "--grace-period-secs".into(),
        grace.to_string(),
    ];
    args.extend(svc.serve_batching_flags());
    let probe_period = (svc.cold_start.readiness_probe_period.secs_f64().ceil() as u64).max(1);
    // Knative allows one port per container, named for its protocol; raw mode
    // exposes gRPC beside HTTP.
    let mut ports = vec![json!({ "name": "http1", "containerPort": HTTP_PORT, "protocol": "TCP" })];
    if cx.opts.mode == Mode::Raw {
        ports.push(json!({ "name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP" }));
    }
    let mut mounts = vec![
        json!({ "name": "tmp", "mountPath": "/tmp" }),
        // The emulated GPU's lock and clock files live in /dev/shm.
        json!({ "name": "shm", "mountPath": "/dev/shm" }),
    ];
    let mut volumes = vec![
        json!({ "name": "tmp", "emptyDir": { "sizeLimit": "64Mi" } }),
        json!({ "name": "shm", "emptyDir": { "medium": "Memory", "sizeLimit": "16Mi" } }),
    ];
    if !real {
        mounts.push(json!({ "name": "profiles", "mountPath": PROFILE_DIR, "readOnly": true }));
        volumes.push(json!({ "name": "profiles", "configMap": { "name": PROFILES_CONFIGMAP } }));
    }
    let v = json!({
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ServingRuntime",
        "metadata": {
            "name": runtime_name(svc),
            "namespace": cx.ns,
            "labels": cx.service_labels("runtime", &svc.name),
        },
        "spec": {
            "supportedModelFormats": [{ "name": "onnx", "version": "1", "autoSelect": false }],
            "protocolVersions": ["v2", "grpc-v2"],
            "multiModel": false,
            "containers": [{
                "name": "kserve-container",
                "image": cx.opts.image,
                "args": args,
                "ports": ports,
                "readinessProbe": {
                    "httpGet": { "path": "/v2/health/ready", "port": HTTP_PORT },
                    "periodSeconds": probe_period,
                    "failureThreshold": 3,
                    "timeoutSeconds": 1,
                },
                "livenessProbe": {
                    "httpGet": { "path": "/v2/health/live", "port": HTTP_PORT },
                    "periodSeconds": 10,
                    "failureThreshold": 3,
                    "timeoutSeconds": 1,
                },
                "securityContext": container_security_context(),
                "volumeMounts": mounts,
            }],
            "volumes": volumes,
        },
    });
    cx.push(v);
}

/// `terminationGracePeriodSeconds`, whole seconds rounded up.
fn grace_seconds(svc: &ServiceSpec) -> u64 {
    svc.cold_start.termination_grace_period.secs_f64().ceil() as u64
}

fn inference_service(
    cx: &mut Ctx,
    svc: &ServiceSpec,
    name: &str,
    real: bool,
    pool: Option<&lab_scenario::NodePoolSpec>,
    model_args: Vec<String>,
) -> Value {
    let mut annotations = Map::new();
    annotations.insert(
        "serving.kserve.io/deploymentMode".into(),
        // KServe 0.16's names (deploy/install-stack.sh pins 0.17); the
        // older `Serverless` and `RawDeployment` are deprecated aliases.
        json!(match cx.opts.mode {
            Mode::Serverless => "Knative",
            Mode::Raw => "Standard",
        }),
    );
    crate::autoscaling::isvc_annotations(cx, svc, &mut annotations);
    let (bounds_min, bounds_max) = crate::autoscaling::replica_bounds(svc);
    let mut requests = Map::new();
    let mut limits = Map::new();
    for (res, q) in &svc.resources {
        let gpu_like = res == GPU_RESOURCE || res.starts_with(lab_scenario::MIG_RESOURCE_PREFIX);
        if gpu_like && !real {
            // An emulated GPU needs no device: the pod runs on any node (kind).
            continue;
        }
        let text = quantity(res, q.0);
        if gpu_like {
            limits.insert(res.clone(), json!(text));
        } else {
            requests.insert(res.clone(), json!(text));
            if res == "memory" {
                limits.insert(res.clone(), json!(text));
            }
        }
    }
    let mut predictor = json!({
        "minReplicas": bounds_min,
        "maxReplicas": bounds_max,
        "serviceAccountName": SERVICE_ACCOUNT,
        "priorityClassName": priority_class_name(cx),
        "terminationGracePeriodSeconds": grace_seconds(svc),
        "securityContext": pod_security_context(),
        "model": {
            "modelFormat": { "name": "onnx" },
            "runtime": runtime_name(svc),
            "protocolVersion": "v2",
            "args": model_args,
            "resources": { "requests": requests, "limits": limits },
        },
    });
    if svc.container_concurrency > 0 {
        predictor["containerConcurrency"] = json!(svc.container_concurrency);
    }
    if svc.timeout.nanos().is_multiple_of(1_000_000_000) {
        predictor["timeout"] = json!(svc.timeout.nanos() / 1_000_000_000);
    }
    if let Some(uri) = cx.opts.storage_uris.get(&svc.name) {
        predictor["model"]["storageUri"] = json!(uri);
        let note = "KServe adds its storage-initializer init container to pods with a storageUri; the \
                    namespace enforces Pod Security `restricted`, so that container needs a restricted \
                    securityContext in KServe's inferenceservice-config (storageInitializer), or the pods \
                    are refused with `violates PodSecurity`";
        if !cx.notes.iter().any(|n| n == note) {
            cx.notes.push(note.into());
        }
    }
    if real {
        if let Some(pool) = pool {
            gpu::place(cx, pool, &mut predictor);
        }
    } else if cx.sc.node_pools.len() > 1 {
        if let Some(pool) = pool {
            predictor["nodeSelector"] = json!({ gpu::POOL_LABEL: pool.name });
        }
    }
    json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": cx.ns,
            "labels": cx.service_labels("predictor", &svc.name),
            "annotations": annotations,
        },
        "spec": { "predictor": predictor },
    })
}

/// A canary split: an InferenceGraph whose Splitter sends each version its share.
fn graph(cx: &mut Ctx, svc: &ServiceSpec, names: &[String]) {
    let mut steps = Vec::new();
    let mut total = 0.0;
    for (v, name) in svc.versions.iter().zip(names) {
        total += v.traffic_percent;
        if v.traffic_percent.fract() != 0.0 {
            cx.refuse(
                format!("services.{}.versions.{}.trafficPercent", svc.name, v.name),
                format!(
                    "an InferenceGraph Splitter takes whole-number weights; {} is not: round it",
                    v.traffic_percent
                ),
            );
        }
        steps.push(json!({
            "name": dns_label(&v.name),
            "serviceName": name,
            "weight": v.traffic_percent.round() as i64,
        }));
    }
    if (total - 100.0).abs() > 1e-9 {
        cx.refuse(
            format!("services.{}.versions", svc.name),
            format!("the Splitter's weights must sum to 100; these sum to {total}"),
        );
    }
    let v = json!({
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "InferenceGraph",
        "metadata": {
            "name": dns_label(&svc.name),
            "namespace": cx.ns,
            "labels": cx.service_labels("router", &svc.name),
        },
        "spec": {
            "nodes": { "root": { "routerType": "Splitter", "steps": steps } },
        },
    });
    cx.push(v);
}

fn add_profile(cx: &mut Ctx, name: &str, cal: &CalibrationProfile) {
    let text = serde_json::to_string_pretty(cal).expect("a calibration profile serializes");
    let existing = cx.objects.iter_mut().find(|o| {
        o.value["kind"] == "ConfigMap" && o.value["metadata"]["name"] == PROFILES_CONFIGMAP
    });
    match existing {
        Some(o) => {
            o.value["data"][format!("{name}.json")] = json!(text);
        }
        None => {
            let v = json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": PROFILES_CONFIGMAP,
                    "namespace": cx.ns,
                    "labels": cx.labels("emulated-gpu"),
                },
                "data": { format!("{name}.json"): text },
            });
            cx.push(v);
        }
    }
}

/// A resource quantity as Kubernetes spells it: cores (or millicores), bytes
/// with a binary suffix where it divides evenly, devices as a count.
pub fn quantity(resource: &str, v: f64) -> String {
    if resource == "cpu" {
        let milli = (v * 1000.0).round() as u64;
        return if milli.is_multiple_of(1000) {
            (milli / 1000).to_string()
        } else {
            format!("{milli}m")
        };
    }
    if resource == "memory" || resource == "ephemeral-storage" {
        let bytes = v.round() as u64;
        for (suffix, unit) in [
            ("Ti", 1u64 << 40),
            ("Gi", 1 << 30),
            ("Mi", 1 << 20),
            ("Ki", 1 << 10),
        ] {
            if bytes >= unit && bytes.is_multiple_of(unit) {
                return format!("{}{suffix}", bytes / unit);
            }
        }
        return bytes.to_string();
    }
    format!("{}", v.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_spelled_as_kubernetes_does() {
        assert_eq!(quantity("cpu", 3.0), "3");
        assert_eq!(quantity("cpu", 0.5), "500m");
        assert_eq!(quantity("memory", 12.0 * (1u64 << 30) as f64), "12Gi");
        assert_eq!(quantity("memory", 1536.0 * (1u64 << 20) as f64), "1536Mi");
        assert_eq!(quantity("memory", 1000.0), "1000");
        assert_eq!(quantity("nvidia.com/gpu", 1.0), "1");
    }
}
