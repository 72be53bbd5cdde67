//! The `[services.autoscaler]` table of a scenario. Field names follow upstream so that
//! users can copy values from manifests: the HPA table mirrors `HorizontalPodAutoscalerSpec`
//! (camelCase), the KPA table uses Knative's annotation and config-autoscaler keys
//! (kebab-case), the KEDA table mirrors the ScaledObject spec (camelCase).
//!
//! Deserialization only checks shapes; [`AutoscalerSpec::problems`] checks meaning.

use crate::Signal;
use lab_units::{Dur, Quantity};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// Exactly one sub-table is set; none set means fixed at the service's minReplicas.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoscalerSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<HpaSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kpa: Option<KpaSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keda: Option<KedaSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed: Option<FixedSpec>,
    /// Set by `lab_scenario::time_scaled` on the copy it plays K times faster: the
    /// durations above are already divided by K, so upstream's limits on them
    /// are too. Never read from nor written to a file (1 there).
    #[serde(skip)]
    pub played_faster: PlaySpeed,
}

/// How many times faster than scenario time an autoscaler spec is played: 1 for a
/// scenario as written, K under `--time-scale K`. Compilation divides upstream's
/// duration limits by it (a 6 s minimum window becomes 0.6 s at K = 10), and
/// converts the HPA behavior's whole-second fields, which a played copy keeps in
/// scenario time because they cannot hold a fraction of a second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlaySpeed(f64);

impl Default for PlaySpeed {
    fn default() -> Self {
        PlaySpeed::AT_PACE
    }
}

impl PlaySpeed {
    /// Scenario time itself.
    pub const AT_PACE: PlaySpeed = PlaySpeed(1.0);

    /// K times faster; None unless `k` is finite and above 0.
    pub fn new(k: f64) -> Option<PlaySpeed> {
        (k.is_finite() && k > 0.0).then_some(PlaySpeed(k))
    }

    /// K.
    pub fn factor(self) -> f64 {
        self.0
    }

    /// A scenario-time duration as it is played: divided by K, rounded to the
    /// nanosecond (the rounding `time_scaled` uses for every duration).
    pub fn played(self, scenario: crate::Time) -> crate::Time {
        if self.0 == 1.0 {
            return scenario;
        }
        crate::Time::from_nanos((scenario.as_nanos() as f64 / self.0).round() as u64)
    }
}

/// The service's replica bounds (KServe `minReplicas` / `maxReplicas`). KEDA takes them
/// as `minReplicaCount` / `maxReplicaCount`, KPA as min-scale / max-scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub min: u32,
    pub max: u32,
}

impl AutoscalerSpec {
    /// Every semantic problem as (key path relative to the autoscaler table, message
    /// naming the fix). Empty when the spec can be built.
    pub fn problems(&self, bounds: Bounds) -> Vec<(String, String)> {
        let set: Vec<&str> = [
            self.hpa.as_ref().map(|_| "hpa"),
            self.kpa.as_ref().map(|_| "kpa"),
            self.keda.as_ref().map(|_| "keda"),
            self.fixed.as_ref().map(|_| "fixed"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut out = Vec::new();
        if set.len() > 1 {
            out.push((
                String::new(),
                format!(
                    "{} are all set; keep exactly one of hpa, kpa, keda, fixed",
                    set.join(" and ")
                ),
            ));
        }
        if bounds.max < bounds.min {
            out.push((
                String::new(),
                format!(
                    "the service's maxReplicas ({}) is below its minReplicas ({}); raise maxReplicas",
                    bounds.max, bounds.min
                ),
            ));
        }
        if let Some(h) = &self.hpa {
            if let Err(p) =
                crate::hpa::HpaConfig::compile_played(h, bounds, "hpa", self.played_faster)
            {
                out.extend(p);
            }
        }
        if let Some(k) = &self.kpa {
            if let Err(p) = crate::kpa::KpaConfig::compile_played(k, bounds, 0, self.played_faster)
            {
                out.extend(p);
            }
        }
        if let Some(k) = &self.keda {
            if let Err(p) = crate::keda::KedaConfig::compile_played(k, bounds, self.played_faster) {
                out.extend(p);
            }
        }
        if let Some(f) = &self.fixed {
            if let Some(r) = f.replicas {
                if r > bounds.max {
                    out.push((
                        "fixed.replicas".into(),
                        format!("{r} exceeds the service's maxReplicas ({}); lower it or raise maxReplicas", bounds.max),
                    ));
                }
            }
        }
        out
    }

    /// "hpa", "kpa", "keda" or "fixed".
    pub fn kind(&self) -> &'static str {
        if self.hpa.is_some() {
            "hpa"
        } else if self.kpa.is_some() {
            "kpa"
        } else if self.keda.is_some() {
            "keda"
        } else {
            "fixed"
        }
    }
}

/// A constant replica count.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FixedSpec {
    /// Defaults to the service's minReplicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
}

// ---------------------------------------------------------------- HPA

/// `HorizontalPodAutoscalerSpec` without scaleTargetRef, minReplicas and maxReplicas
/// (those come from the service), plus the controller's flags under `controller`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpaSpec {
    /// Empty = CPU at 80% average utilization, as upstream defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<Behavior>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<HpaControllerFlags>,
}

/// kube-controller-manager's `--horizontal-pod-autoscaler-*` flags.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpaControllerFlags {
    /// Default 15s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_period: Option<Dur>,
    /// Default 0.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    /// Default 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downscale_stabilization: Option<Dur>,
    /// Default 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_initialization_period: Option<Dur>,
    /// Default 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_readiness_delay: Option<Dur>,
    /// How far back a metrics-server sample reaches (its window). Default 15s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_window: Option<Dur>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum MetricSourceType {
    Resource,
    ContainerResource,
    Pods,
    Object,
    External,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricSpec {
    #[serde(rename = "type")]
    pub type_: MetricSourceType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ResourceMetricSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_resource: Option<ContainerResourceMetricSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<PodsMetricSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectMetricSource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalMetricSource>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceMetricSource {
    /// `cpu` or `memory`.
    pub name: String,
    pub target: MetricTarget,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerResourceMetricSource {
    pub name: String,
    pub container: String,
    pub target: MetricTarget,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodsMetricSource {
    pub metric: MetricIdentifier,
    pub target: MetricTarget,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMetricSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub described_object: Option<ObjectReference>,
    pub metric: MetricIdentifier,
    pub target: MetricTarget,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExternalMetricSource {
    pub metric: MetricIdentifier,
    pub target: MetricTarget,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A metric's name; `signal` (a lab extension) says which simulated signal it reads
/// when the name is not one of [`crate::KNOWN_METRIC_NAMES`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricIdentifier {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<Signal>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelectorRequirement {
    pub key: String,
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum TargetType {
    Utilization,
    Value,
    AverageValue,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MetricTarget {
    #[serde(rename = "type")]
    pub type_: TargetType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_value: Option<Quantity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_utilization: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Behavior {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingRules>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingRules>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stabilization_window_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<SelectPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<ScalingPolicy>>,
    /// Per-direction tolerance (feature gate HPAConfigurableTolerance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<Quantity>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum SelectPolicy {
    Max,
    Min,
    Disabled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum PolicyType {
    Pods,
    Percent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingPolicy {
    #[serde(rename = "type")]
    pub type_: PolicyType,
    pub value: u32,
    pub period_seconds: u32,
}

// ---------------------------------------------------------------- KPA

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KpaMetric {
    Concurrency,
    Rps,
}

/// Knative's autoscaling annotations / config-autoscaler keys. Unset = Knative's default.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[schemars(transform = stable_window_alias)]
pub struct KpaSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<KpaMetric>,
    /// Per-pod target before utilization (default: containerConcurrency, else 100; rps 200).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_utilization_percentage: Option<f64>,
    /// The stable window (annotation `window`, config key `stable-window`).
    #[serde(
        default,
        alias = "stable-window",
        skip_serializing_if = "Option::is_none"
    )]
    pub window: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic_window_percentage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic_threshold_percentage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_scale_up_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_scale_down_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_to_zero_grace_period: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_to_zero_pod_retention_period: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_scale: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_zero_initial_scale: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_scale: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_burst_capacity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_scale_to_zero: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activator_capacity: Option<f64>,
    /// How often the decider runs (config-autoscaler `tick-interval`). Default 2s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tick_interval: Option<Dur>,
    /// Lab extension: the width of the buckets the autoscaler aggregates scraped
    /// stats into, 1 s in Knative and fixed there; the stable and panic windows are
    /// counted in these buckets. Lets `--time-scale` shrink them with the rest of the
    /// clock. At most the tick interval. Default 1s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_bucket: Option<Dur>,
}

// ---------------------------------------------------------------- KEDA

/// The ScaledObject spec without scaleTargetRef and min/maxReplicaCount (those come
/// from the service).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KedaSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polling_interval: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_period: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_cooldown_period: Option<Dur>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_replica_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<KedaFallback>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced: Option<KedaAdvanced>,
    #[serde(default)]
    pub triggers: Vec<KedaTrigger>,
    /// Lab extension: the kube-controller-manager flags of the cluster the generated
    /// HPA runs in, as under `hpa.controller`. Unset = upstream's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<HpaControllerFlags>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KedaFallback {
    pub failure_threshold: u32,
    pub replicas: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<FallbackBehavior>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum FallbackBehavior {
    Static,
    CurrentReplicas,
    CurrentReplicasIfHigher,
    CurrentReplicasIfLower,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KedaAdvanced {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizontal_pod_autoscaler_config: Option<KedaHpaConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_to_original_replica_count: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KedaHpaConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<Behavior>,
}

/// One ScaledObject trigger. `metadata` values may be written as strings (as in YAML
/// manifests) or as TOML numbers and booleans.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KedaTrigger {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "string_map")]
    #[schemars(schema_with = "string_map_schema")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<TargetType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_cached_metrics: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication_ref: Option<AuthenticationRef>,
    /// Lab extension: which simulated signal the trigger reads, when its query or
    /// metric name is not recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<Signal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthenticationRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// What [`string_map`] accepts, for the scenario's JSON Schema.
fn string_map_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": { "type": ["string", "number", "boolean"] }
    })
}

/// `stable-window`, the config-autoscaler spelling serde accepts as an alias of
/// `window`, in the schema too (schemars leaves aliases out).
fn stable_window_alias(schema: &mut schemars::Schema) {
    let window = schema
        .get("properties")
        .and_then(|p| p.get("window"))
        .cloned();
    if let (Some(w), Some(props)) = (
        window,
        schema.get_mut("properties").and_then(|p| p.as_object_mut()),
    ) {
        props.insert("stable-window".into(), w);
    }
}

/// A map whose values may be strings, numbers or booleans, all kept as text.
fn string_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        I(i64),
        F(f64),
        B(bool),
    }
    let raw = BTreeMap::<String, Scalar>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let s = match v {
                Scalar::S(s) => s,
                Scalar::I(i) => i.to_string(),
                Scalar::F(f) => f.to_string(),
                Scalar::B(b) => b.to_string(),
            };
            (k, s)
        })
        .collect())
}
