//! `lab deploy`: the manifests a cluster runs, rendered from one scenario file,
//! so the configuration that was simulated and replayed locally is exactly the
//! one applied (never written a second time by hand).
//!
//! [`render`] is pure: a checked [`Scenario`] and [`Options`] in, a set of YAML
//! files out (one per object kind, plus a `kustomization.yaml`), or every
//! setting that the chosen mode cannot express, at once. The harness writes the
//! files; the cluster level applies them.
//!
//! Two modes, as KServe has them:
//! - **serverless**: Knative Serving under KServe; autoscaling by the KPA from
//!   the scenario's `kpa` table (revision annotations, and the cluster-wide
//!   `config-autoscaler` keys as a ConfigMap patch), or Knative's HPA class for
//!   CPU and memory targets;
//! - **raw**: KServe's RawDeployment (a Deployment per predictor); KServe's own
//!   autoscaler is switched off (`autoscalerClass: external`) and an
//!   autoscaling/v2 HPA or a KEDA ScaledObject rendered from the scenario
//!   targets the predictor's Deployment.

mod autoscaling;
mod gpu;
mod load;
mod monitoring;
mod policy;
mod serving;
mod yaml;

use lab_scenario::Scenario;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

pub use gpu::gfd_product;
pub use load::{load_job, LOAD_NAME, LOG_LIMIT_BYTES, START_PORT};
pub use serving::isvc_names;

/// How the InferenceServices are deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Knative Serving under KServe (scale to zero, the KPA, the activator).
    Serverless,
    /// KServe Standard (formerly RawDeployment) mode: Deployments scaled by an HPA or KEDA.
    Raw,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Serverless => "serverless",
            Mode::Raw => "raw",
        }
    }

    /// The mode a scenario's autoscalers need: serverless if any service uses
    /// the KPA, raw if any uses KEDA or an HPA on Pods, Object or External
    /// metrics, serverless otherwise (KServe's default).
    pub fn natural_for(sc: &Scenario) -> Mode {
        let raw = sc.services.iter().any(|s| {
            s.autoscaler.keda.is_some()
                || s.autoscaler
                    .hpa
                    .as_ref()
                    .is_some_and(|h| !autoscaling::hpa_fits_knative(h))
        });
        if raw {
            Mode::Raw
        } else {
            Mode::Serverless
        }
    }
}

/// Where the rendered objects go and what they run.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// The `lab` image (`lab:0.1.0-<commit>-cpu`); pods run `lab serve` from it.
    pub image: String,
    /// Namespace of every namespaced object; defaults to `lab-<scenario name>`.
    pub namespace: Option<String>,
    /// Model storage per service (`storageUri`, holding `model.onnx`). A
    /// service given one serves the real model with ONNX Runtime; one without
    /// emulates its GPU from the scenario's latency profile, which needs no GPU
    /// on the node (kind).
    pub storage_uris: BTreeMap<String, String>,
    /// The cluster's Prometheus as KEDA reaches it: replaces the `serverAddress`
    /// of the scenario's `prometheus` triggers, which name a local server.
    pub prometheus_url: String,
    /// Namespace Prometheus runs in (NetworkPolicy lets it scrape the pods).
    pub prometheus_namespace: String,
    /// The address block model storage is reached at (NetworkPolicy egress);
    /// storage is on the internet for most clusters.
    pub storage_cidr: String,
}

impl Options {
    pub fn new(mode: Mode, image: impl Into<String>) -> Options {
        Options {
            mode,
            image: image.into(),
            namespace: None,
            storage_uris: BTreeMap::new(),
            prometheus_url: DEFAULT_PROMETHEUS_URL.into(),
            prometheus_namespace: "monitoring".into(),
            storage_cidr: "0.0.0.0/0".into(),
        }
    }
}

/// kube-prometheus-stack's Prometheus service as `deploy/install-stack.sh` installs it.
pub const DEFAULT_PROMETHEUS_URL: &str =
    "http://kube-prometheus-stack-prometheus.monitoring.svc:9090";

/// A setting the chosen mode cannot express; every one is reported at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// Key path in the scenario, e.g. `services.resnet.autoscaler.kpa.tick-interval`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// The rendered manifests.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// File name → YAML text, `kustomization.yaml` included.
    pub files: BTreeMap<String, String>,
    /// What a reader must know: settings that live outside these objects
    /// (controller flags, node labels), and substitutions made on purpose.
    pub notes: Vec<String>,
    /// The namespace the objects went into.
    pub namespace: String,
    /// The scenario's own objects in the order they are applied (the
    /// kustomization's), for the cluster level's server-side apply.
    pub objects: Vec<Value>,
    /// The cluster-wide settings of `cluster-config/`, in order.
    pub cluster_objects: Vec<Value>,
}

impl Rendered {
    /// The InferenceServices' names, for waiting on them.
    pub fn inference_services(&self) -> Vec<String> {
        self.objects
            .iter()
            .filter(|o| o["kind"] == "InferenceService")
            .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_string))
            .collect()
    }
}

/// One Kubernetes object with the file it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Object {
    pub value: Value,
    pub group: Group,
}

/// Which kustomization an object belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Group {
    /// The scenario's own objects, in its namespace (and its PriorityClass):
    /// applied and deleted with the run.
    Main,
    /// Settings shared with everything on the cluster (Knative's
    /// `config-autoscaler`, the GPU operator's device plugin and MIG
    /// layouts): applied on purpose, never deleted by a teardown.
    ClusterConfig,
}

impl Group {
    fn dir(self) -> &'static str {
        match self {
            Group::Main => "",
            Group::ClusterConfig => "cluster-config/",
        }
    }
}

impl Object {
    pub fn new(value: Value) -> Object {
        Object {
            value,
            group: Group::Main,
        }
    }

    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("Unknown")
    }

    fn sort_key(&self) -> (String, String) {
        let m = &self.value["metadata"];
        (
            m["namespace"].as_str().unwrap_or("").to_string(),
            m["name"].as_str().unwrap_or("").to_string(),
        )
    }
}

/// What the builders share while rendering.
pub(crate) struct Ctx<'a> {
    pub sc: &'a Scenario,
    pub opts: &'a Options,
    pub ns: String,
    pub refusals: Vec<Refusal>,
    pub notes: Vec<String>,
    pub objects: Vec<Object>,
}

impl Ctx<'_> {
    pub fn refuse(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.refusals.push(Refusal {
            key: key.into(),
            message: message.into(),
        });
    }

    pub fn push(&mut self, value: Value) {
        self.objects.push(Object::new(value));
    }

    pub fn push_to(&mut self, group: Group, value: Value) {
        self.objects.push(Object { value, group });
    }

    /// Labels every object carries, so the cluster level finds (and deletes)
    /// exactly what it applied.
    pub fn labels(&self, component: &str) -> Value {
        serde_json::json!({
            "app.kubernetes.io/part-of": "lab",
            "app.kubernetes.io/managed-by": "lab-deploy",
            "app.kubernetes.io/component": component,
            "lab.dev/scenario": label_value(&self.sc.name),
        })
    }

    /// Labels of one service's objects.
    pub fn service_labels(&self, component: &str, service: &str) -> Value {
        let mut l = self.labels(component);
        l["lab.dev/service"] = Value::String(label_value(service));
        l
    }
}

/// The order objects are applied in: what others refer to comes first.
const KIND_ORDER: &[(&str, &str)] = &[
    ("Namespace", "namespace.yaml"),
    ("PriorityClass", "priorityclass.yaml"),
    ("ServiceAccount", "serviceaccount.yaml"),
    ("ConfigMap", "configmap.yaml"),
    ("ServingRuntime", "servingruntime.yaml"),
    ("InferenceService", "inferenceservice.yaml"),
    ("InferenceGraph", "inferencegraph.yaml"),
    ("HorizontalPodAutoscaler", "horizontalpodautoscaler.yaml"),
    ("ScaledObject", "scaledobject.yaml"),
    ("PodDisruptionBudget", "poddisruptionbudget.yaml"),
    ("NetworkPolicy", "networkpolicy.yaml"),
    ("PodMonitor", "podmonitor.yaml"),
    ("PrometheusRule", "prometheusrule.yaml"),
];

/// Renders `sc` (loaded and checked with `lab_scenario::load_checked`, so
/// latency profiles are resolved) for `opts.mode`.
pub fn render(sc: &Scenario, opts: &Options) -> Result<Rendered, Vec<Refusal>> {
    let ns = opts
        .namespace
        .clone()
        .unwrap_or_else(|| format!("lab-{}", dns_label(&sc.name)));
    let mut cx = Ctx {
        sc,
        opts,
        ns,
        refusals: Vec::new(),
        notes: Vec::new(),
        objects: Vec::new(),
    };
    if let Some(bad) = opts
        .storage_uris
        .keys()
        .find(|k| !sc.services.iter().any(|s| &s.name == *k))
    {
        cx.refuse(
            format!("--storage-uri {bad}=..."),
            format!(
                "the scenario has no service `{bad}`; services are {}",
                sc.services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    policy::namespace(&mut cx);
    policy::priority_class(&mut cx);
    policy::service_account(&mut cx);
    gpu::device_plugin(&mut cx);
    for s in 0..sc.services.len() {
        serving::service(&mut cx, s);
        autoscaling::service(&mut cx, s);
        policy::disruption_budget(&mut cx, s);
        policy::network_policy(&mut cx, s);
    }
    autoscaling::knative_cluster_config(&mut cx);
    monitoring::pod_monitor(&mut cx);
    monitoring::rules(&mut cx);
    monitoring::dashboard(&mut cx);
    if opts.mode == Mode::Serverless {
        cx.notes.push(
            "serverless mode exposes the predictor's HTTP port only (Knative allows one port per \
             container); gRPC clients need --mode raw"
                .into(),
        );
    }
    if !cx.refusals.is_empty() {
        return Err(cx.refusals);
    }
    let mut files = BTreeMap::new();
    let (mut objects, mut cluster_objects) = (Vec::new(), Vec::new());
    for group in [Group::Main, Group::ClusterConfig] {
        let mut by_file: BTreeMap<&str, Vec<&Object>> = BTreeMap::new();
        for o in cx.objects.iter().filter(|o| o.group == group) {
            let file = KIND_ORDER
                .iter()
                .find(|(k, _)| *k == o.kind())
                .map(|(_, f)| *f)
                .expect("every kind rendered has a file");
            by_file.entry(file).or_default().push(o);
        }
        if by_file.is_empty() {
            continue;
        }
        let mut resources = Vec::new();
        for (_, file) in KIND_ORDER {
            let Some(objs) = by_file.get_mut(file) else {
                continue;
            };
            objs.sort_by_key(|o| o.sort_key());
            let values: Vec<&Value> = objs.iter().map(|o| &o.value).collect();
            match group {
                Group::Main => objects.extend(values.iter().map(|v| (*v).clone())),
                Group::ClusterConfig => cluster_objects.extend(values.iter().map(|v| (*v).clone())),
            }
            files.insert(
                format!("{}{file}", group.dir()),
                yaml::documents(&values, &header(sc, opts)),
            );
            resources.push(Value::String(file.to_string()));
        }
        let kustomization = serde_json::json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": resources,
        });
        files.insert(
            format!("{}kustomization.yaml", group.dir()),
            yaml::documents(&[&kustomization], &header(sc, opts)),
        );
    }
    Ok(Rendered {
        files,
        notes: cx.notes,
        namespace: cx.ns,
        objects,
        cluster_objects,
    })
}

fn header(sc: &Scenario, opts: &Options) -> String {
    format!(
        "# Rendered by `lab deploy` from scenario `{}` ({} mode). Edit the scenario and render again.\n",
        sc.name,
        opts.mode.as_str()
    )
}

/// A DNS-1123 label (lowercase alphanumerics and `-`, at most 63, starting and
/// ending alphanumeric), for object names made from scenario names.
pub fn dns_label(name: &str) -> String {
    let mut out: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while out.contains("--") {
        out = out.replace("--", "-");
    }
    let out = out.trim_matches('-');
    let mut out: String = out.chars().take(63).collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        "lab".into()
    } else {
        out
    }
}

/// A label value (at most 63 of alphanumerics, `-`, `_`, `.`, alphanumeric at both ends).
pub fn label_value(v: &str) -> String {
    let s: String = v
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    s.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(dns_label("timeslice-vs-mig"), "timeslice-vs-mig");
        assert_eq!(dns_label("My Model_v2"), "my-model-v2");
        assert_eq!(dns_label("--"), "lab");
        assert_eq!(dns_label(&"a".repeat(80)).len(), 63);
        assert_eq!(label_value("spike test!"), "spike-test");
    }
}
