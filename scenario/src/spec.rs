//! The scenario file's types. Key names follow the upstream object each section
//! mirrors, so values can be copied from manifests: KServe's InferenceService
//! (`minReplicas`, `containerConcurrency`, `canaryTrafficPercent`), Kubernetes
//! resource names (`nvidia.com/gpu`, `nvidia.com/mig-1g.10gb`), Triton's dynamic
//! batching (`max_batch_size`, `max_queue_delay_microseconds`), the NVIDIA device
//! plugin's sharing config, and the autoscalers' own spellings. Sections that are
//! ours alone use snake_case.

use lab_autoscale::AutoscalerSpec;
use lab_gpu::{ContentionParams, LatencyProfile, ServiceDistribution, Sharing};
use lab_results::SloSpec;
use lab_traffic::TrafficSpec;
use lab_units::{Dur, Quantity};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub run: RunSpec,
    pub services: Vec<ServiceSpec>,
    #[serde(default)]
    pub node_pools: Vec<NodePoolSpec>,
    #[serde(default)]
    pub cluster_autoscaler: ClusterAutoscalerSpec,
    #[serde(default)]
    pub gateway: GatewaySpec,
    #[serde(default)]
    pub metrics: MetricsSpec,
    pub traffic: Vec<TrafficSpec>,
    #[serde(default)]
    pub slo: Vec<SloSpec>,
    /// How close a run at another level must come to this one (`lab compare`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fidelity: Option<FidelitySpec>,
}

/// `[run]`: how long, which seed, how finely to record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RunSpec {
    /// Simulated time; defaults to the length of the longest traffic stream.
    pub duration: Option<Dur>,
    /// Requests arriving before this are left out of latency and SLO figures.
    pub warmup: Dur,
    pub seed: u64,
    /// Time-series interval.
    pub interval: Dur,
}

impl Default for RunSpec {
    fn default() -> Self {
        RunSpec {
            duration: None,
            warmup: Dur::ZERO,
            seed: 1,
            interval: Dur::from_secs(10),
        }
    }
}

/// `[[services]]`: one InferenceService.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceSpec {
    pub name: String,
    /// Model name as clients address it; defaults to the service name.
    #[serde(default)]
    pub model: Option<String>,
    /// An ONNX model file (`.onnx`), relative to the scenario file. The local
    /// level serves it with ONNX Runtime on the CPU instead of emulating the
    /// GPU from `latency`. The simulator ignores it: its service times come
    /// from `latency` alone.
    #[serde(default)]
    pub model_file: Option<String>,
    /// The file `modelFile` resolves to, filled in by the loader.
    #[serde(skip)]
    pub model_path: Option<std::path::PathBuf>,
    #[serde(default = "one")]
    pub min_replicas: u32,
    #[serde(default = "one")]
    pub max_replicas: u32,
    /// Requests one pod admits at once; 0 means unlimited (KServe's default).
    #[serde(default)]
    pub container_concurrency: u32,
    /// Request timeout (KServe component `timeout`).
    #[serde(default = "default_timeout")]
    pub timeout: Dur,
    /// Pod requests by Kubernetes resource name: `cpu`, `memory`,
    /// `nvidia.com/gpu`, `nvidia.com/mig-<profile>`.
    #[serde(default)]
    pub resources: BTreeMap<String, Quantity>,
    /// Node pool the pods run on (a nodeSelector); defaults to the first pool
    /// that offers the requested GPU resource.
    #[serde(default)]
    pub node_pool: Option<String>,
    #[serde(default)]
    pub batching: Option<BatchingSpec>,
    /// Service time per batch size on each GPU type the service may run on.
    pub latency: Vec<LatencySpec>,
    /// GPU memory the loaded model occupies.
    #[serde(default)]
    pub model_memory: Quantity,
    #[serde(default)]
    pub cold_start: ColdStartSpec,
    #[serde(default)]
    pub autoscaler: AutoscalerSpec,
    /// Canary split between versions (revisions); absent means one version.
    #[serde(default)]
    pub versions: Vec<VersionSpec>,
}

fn one() -> u32 {
    1
}

fn default_timeout() -> Dur {
    Dur::from_secs(60)
}

/// Triton's `dynamic_batching` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchingSpec {
    pub max_batch_size: u32,
    #[serde(default)]
    pub max_queue_delay_microseconds: u64,
    #[serde(default)]
    pub preferred_batch_size: Vec<u32>,
    /// Bounded queue per pod (rows); 0 = unbounded.
    #[serde(default)]
    pub max_queue_size: u32,
    /// Concurrent model executions per pod (Triton `instance_group.count`).
    #[serde(default = "one")]
    pub instances: u32,
}

/// Latency on one GPU type: inline points or a calibration file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    /// GPU type (`T4`, `A100-40GB`, ...) or `cpu`. Taken from the profile when a
    /// profile file is given.
    #[serde(default)]
    pub gpu: Option<String>,
    /// Mean service time by batch size, e.g. `{ "1" = "4ms", "8" = "11ms" }`.
    #[serde(default)]
    pub batch_latency: BTreeMap<String, Dur>,
    /// A calibration profile written by `lab calibrate`, relative to the scenario file.
    #[serde(default)]
    pub profile: Option<String>,
    /// Spread of individual executions; defaults to deterministic for inline
    /// points and to a lognormal fitted to the measured p50/p99 for profiles.
    #[serde(default)]
    pub distribution: Option<ServiceDistribution>,
    /// The profile this entry resolves to, filled in by the loader.
    #[serde(skip)]
    pub resolved: Option<LatencyProfile>,
}

/// Phases of a pod's start, from creation to ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ColdStartSpec {
    /// Container image size; pulled once per node at `image_pull_bandwidth`.
    pub image_size: Quantity,
    /// Bytes per second.
    pub image_pull_bandwidth: Quantity,
    /// A fixed pull time instead of size / bandwidth.
    pub image_pull: Option<Dur>,
    /// Model download and session creation, including warm-up.
    pub model_load: Dur,
    /// Readiness probe `periodSeconds`: readiness is seen at the next probe.
    pub readiness_probe_period: Dur,
    /// Scheduling, container creation and queue-proxy start (Knative's own share).
    pub pod_start: Dur,
    /// `terminationGracePeriodSeconds`: in-flight requests get this long to drain.
    pub termination_grace_period: Dur,
}

impl Default for ColdStartSpec {
    fn default() -> Self {
        ColdStartSpec {
            image_size: Quantity(2.0 * 1024.0 * 1024.0 * 1024.0),
            image_pull_bandwidth: Quantity(100.0 * 1024.0 * 1024.0),
            image_pull: None,
            model_load: Dur::from_secs(10),
            readiness_probe_period: Dur::from_secs(10),
            pod_start: Dur::from_secs(2),
            termination_grace_period: Dur::from_secs(30),
        }
    }
}

/// One version of a canary split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VersionSpec {
    pub name: String,
    pub traffic_percent: f64,
    /// Overrides the service's latency profile for this version.
    #[serde(default)]
    pub latency: Option<Vec<LatencySpec>>,
    #[serde(default)]
    pub model_memory: Option<Quantity>,
}

/// `[[node_pools]]`: a node group the cluster autoscaler manages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodePoolSpec {
    pub name: String,
    /// GPU product; absent for a CPU-only pool.
    #[serde(default)]
    pub gpu: Option<String>,
    #[serde(default)]
    pub gpus_per_node: u32,
    /// Allocatable CPU and memory per node.
    #[serde(default = "default_cpu")]
    pub cpu: Quantity,
    #[serde(default = "default_memory")]
    pub memory: Quantity,
    #[serde(default)]
    pub sharing: Sharing,
    #[serde(default)]
    pub contention: ContentionParams,
    #[serde(default)]
    pub capacity_type: CapacityType,
    /// Mean spot interruptions per node-hour.
    #[serde(default)]
    pub spot_interruptions_per_hour: f64,
    /// Warning before a spot node is reclaimed (AWS gives two minutes).
    #[serde(default = "two_minutes")]
    pub interruption_notice: Dur,
    /// Price of one node per hour, USD.
    pub price_per_hour: f64,
    #[serde(default)]
    pub min_nodes: u32,
    pub max_nodes: u32,
    /// Nodes at the start; defaults to `min_nodes`.
    #[serde(default)]
    pub initial_nodes: Option<u32>,
    /// From the cluster autoscaler's request to allocatable GPUs.
    #[serde(default = "five_minutes")]
    pub provisioning_time: Dur,
}

fn default_cpu() -> Quantity {
    Quantity(32.0)
}
fn default_memory() -> Quantity {
    Quantity(128.0 * 1024.0 * 1024.0 * 1024.0)
}
fn two_minutes() -> Dur {
    Dur::from_secs(120)
}
fn five_minutes() -> Dur {
    Dur::from_secs(300)
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum CapacityType {
    #[default]
    OnDemand,
    Spot,
}

/// `[cluster_autoscaler]`, with the Kubernetes cluster-autoscaler's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterAutoscalerSpec {
    pub enabled: bool,
    /// `--scan-interval`.
    pub scan_interval: Dur,
    /// `--scale-down-unneeded-time`: how long a node must be empty before removal.
    pub scale_down_unneeded_time: Dur,
}

impl Default for ClusterAutoscalerSpec {
    fn default() -> Self {
        ClusterAutoscalerSpec {
            enabled: true,
            scan_interval: Dur::from_secs(10),
            scale_down_unneeded_time: Dur::from_secs(600),
        }
    }
}

/// `[gateway]`: routing, the Knative activator's buffer, and what the data
/// plane adds to every request outside the model server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GatewaySpec {
    pub routing: Routing,
    /// Requests the activator buffers while a service has no ready pod.
    pub activator_queue_limit: u32,
    /// Time per request between the client and the pod's queue-proxy, there
    /// and back: the ingress gateway, the activator's hop, the network. In the
    /// client's latency, not in the concurrency the queue-proxy reports.
    #[serde(skip_serializing_if = "is_zero")]
    pub ingress_overhead: Dur,
    /// Time per request inside the pod outside the model server's queue and
    /// execution: queue-proxy to the container and back, request and response
    /// (de)serialisation. In the client's latency and in the concurrency the
    /// queue-proxy reports to the KPA and the pod metrics KEDA and HPA read.
    #[serde(skip_serializing_if = "is_zero")]
    pub queue_proxy_overhead: Dur,
}

impl Default for GatewaySpec {
    fn default() -> Self {
        GatewaySpec {
            routing: Routing::LeastRequest,
            activator_queue_limit: 10_000,
            ingress_overhead: Dur::ZERO,
            queue_proxy_overhead: Dur::ZERO,
        }
    }
}

// Left out of the echoed scenario at zero, so results written before these
// keys existed stay byte for byte the same.
fn is_zero(d: &Dur) -> bool {
    *d == Dur::ZERO
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Routing {
    /// Least outstanding requests across ready pods (Envoy's LEAST_REQUEST).
    LeastRequest,
    RoundRobin,
}

/// `[metrics]`: how metrics reach the autoscalers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSpec {
    /// Prometheus / metrics-server scrape interval seen by HPA and KEDA.
    pub scrape_interval: Dur,
    /// Window of `rate(...)` for request-rate metrics.
    pub rate_window: Dur,
    /// Extra delay from scrape to availability in the metrics API.
    pub delay: Dur,
}

impl Default for MetricsSpec {
    fn default() -> Self {
        MetricsSpec {
            scrape_interval: Dur::from_secs(15),
            rate_window: Dur::from_secs(60),
            delay: Dur::ZERO,
        }
    }
}

/// `[fidelity]`: how far two runs of this scenario at different levels (the
/// simulator and the local level) may be apart, judged by `lab compare`.
/// Relative bounds are `|b - a| / a` (0.10 is 10 %); bounds on counts are
/// absolute. Every bound is multiplied by `slack`, the allowance the machine
/// that runs the real level needs (2 cores shared with the load generator
/// measure latency less exactly than an idle server); state why in a comment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FidelitySpec {
    /// Relative error of median latency, overall and per service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p95: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
    /// Relative error of mean latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Relative error of completed requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goodput: Option<f64>,
    /// Absolute difference of the error rates (a ratio: 0.01 is one point),
    /// since a relative error of rates near zero says little.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Largest gap in replicas per service (the worse of the ready and the
    /// desired timelines), once the timelines are aligned by their best lag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<f64>,
    /// That lag (the larger of the two timelines'), in sync periods of the
    /// service's autoscaler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_lag_periods: Option<f64>,
    /// Difference in the number of cold starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_start_count: Option<f64>,
    /// Relative error of the mean cold-start duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cold_start_mean: Option<f64>,
    /// Relative error of the requests that waited on a cold start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_delayed: Option<f64>,
    /// Scaling events of either run left without a partner in the other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched_scaling_events: Option<f64>,
    /// Relative error of the run's total cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// Factor applied to every bound (at least 1).
    #[serde(default = "unit_slack")]
    pub slack: f64,
}

fn unit_slack() -> f64 {
    1.0
}

impl FidelitySpec {
    /// The declared bounds as (key, value), in the order of the table.
    pub fn bounds(&self) -> Vec<(&'static str, f64)> {
        [
            ("p50", self.p50),
            ("p95", self.p95),
            ("p99", self.p99),
            ("mean", self.mean),
            ("throughput", self.throughput),
            ("goodput", self.goodput),
            ("error_rate", self.error_rate),
            ("replicas", self.replicas),
            ("replica_lag_periods", self.replica_lag_periods),
            ("cold_start_count", self.cold_start_count),
            ("cold_start_mean", self.cold_start_mean),
            ("requests_delayed", self.requests_delayed),
            ("unmatched_scaling_events", self.unmatched_scaling_events),
            ("cost", self.cost),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
    }
}
