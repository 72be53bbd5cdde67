//! The load Job of the cluster level: N shards of `lab load`, an Indexed Job
//! in the scenario's namespace, each sending its part (`--shard I/N`) of the
//! scenario's one schedule to the service's in-cluster address. Every shard
//! waits paused (`--await-start`, its readiness probe on `GET /ready`) until
//! the harness gives all of them one start instant, and prints its results as
//! its log (`-o -`), which the harness merges exactly.

use crate::policy::{container_security_context, pod_security_context};
use crate::serving::isvc_names;
use crate::{dns_label, Options, Refusal};
use lab_scenario::Scenario;
use serde_json::{json, Value};

/// The port a paused shard listens on for its start instant.
pub const START_PORT: u16 = 9000;
/// The Job and its ServiceAccount.
pub const LOAD_NAME: &str = "lab-load";
/// Where the scenario is mounted in a shard.
const SCENARIO_DIR: &str = "/etc/lab/scenario";
/// A shard's results are its log; the kubelet keeps at least this much per
/// container (its default `containerLogMaxSize` is 10Mi), far above what a
/// results file of one shard takes.
pub const LOG_LIMIT_BYTES: u64 = 10 << 20;

/// The objects of a load of `shards` shards: a ServiceAccount with no API
/// rights, the scenario file as a ConfigMap, and the Indexed Job.
/// `scenario_toml` is the scenario file's text; `overrides` the `--set`
/// arguments it was loaded with, passed on to every shard.
pub fn load_job(
    sc: &Scenario,
    opts: &Options,
    namespace: &str,
    shards: u32,
    scenario_toml: &str,
    overrides: &[String],
) -> Result<Vec<Value>, Vec<Refusal>> {
    let mut refusals = Vec::new();
    if shards == 0 {
        refusals.push(Refusal {
            key: "--shards".into(),
            message: "a load needs at least one shard".into(),
        });
    }
    let [svc] = sc.services.as_slice() else {
        refusals.push(Refusal {
            key: "services".into(),
            message: format!(
                "one load Job sends to one service and this scenario has {}; run it service by service",
                sc.services.len()
            ),
        });
        return Err(refusals);
    };
    if !refusals.is_empty() {
        return Err(refusals);
    }
    // The predictor's Service, or the InferenceGraph's router for a split.
    let host = if svc.versions.is_empty() {
        format!("{}-predictor", isvc_names(svc)[0])
    } else {
        dns_label(&svc.name)
    };
    let target = format!("http://{host}.{namespace}.svc.cluster.local");
    let labels = json!({
        "app.kubernetes.io/part-of": "lab",
        "app.kubernetes.io/managed-by": "lab-deploy",
        "app.kubernetes.io/component": LOAD_NAME,
        "lab.dev/scenario": crate::label_value(&sc.name),
    });
    let mut args: Vec<String> = vec![
        "load".into(),
        format!("{SCENARIO_DIR}/scenario.toml"),
        "--target".into(),
        target,
        "--shard".into(),
        format!("$(SHARD_INDEX)/{shards}"),
        "--await-start".into(),
        format!("0.0.0.0:{START_PORT}"),
        "--level".into(),
        "cluster".into(),
        "-o".into(),
        "-".into(),
    ];
    for o in overrides {
        args.extend(["--set".into(), o.clone()]);
    }
    let account = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": { "name": LOAD_NAME, "namespace": namespace, "labels": labels },
        // The shards call the service, never the API server.
        "automountServiceAccountToken": false,
    });
    let config = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": LOAD_NAME, "namespace": namespace, "labels": labels },
        "data": { "scenario.toml": scenario_toml },
    });
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": LOAD_NAME, "namespace": namespace, "labels": labels },
        "spec": {
            "completionMode": "Indexed",
            "completions": shards,
            "parallelism": shards,
            // A failed shard is a failed run, not one to retry behind the others' backs.
            "backoffLimit": 0,
            "template": {
                "metadata": { "labels": labels },
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": LOAD_NAME,
                    "automountServiceAccountToken": false,
                    "securityContext": pod_security_context(),
                    "containers": [{
                        "name": "load",
                        "image": opts.image,
                        "args": args,
                        "env": [{
                            "name": "SHARD_INDEX",
                            "valueFrom": { "fieldRef": {
                                "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']",
                            } },
                        }],
                        "ports": [{ "name": "start", "containerPort": START_PORT, "protocol": "TCP" }],
                        "readinessProbe": {
                            "httpGet": { "path": "/ready", "port": START_PORT },
                            "periodSeconds": 1,
                            "failureThreshold": 1,
                        },
                        "resources": {
                            "requests": { "cpu": "1", "memory": "256Mi" },
                            "limits": { "memory": "1Gi" },
                        },
                        "securityContext": container_security_context(),
                        "volumeMounts": [
                            { "name": "scenario", "mountPath": SCENARIO_DIR, "readOnly": true },
                            { "name": "tmp", "mountPath": "/tmp" },
                        ],
                    }],
                    "volumes": [
                        { "name": "scenario", "configMap": { "name": LOAD_NAME } },
                        { "name": "tmp", "emptyDir": { "sizeLimit": "64Mi" } },
                    ],
                },
            },
        },
    });
    Ok(vec![account, config, job])
}
