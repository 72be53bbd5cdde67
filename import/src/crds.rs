//! The custom resources we read, declared with `kube`'s derive. Only the fields that
//! bear on autoscaling are typed; the rest is kept as loose JSON.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// KEDA's ScaledObject spec (keda.sh/v1alpha1).
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "keda.sh",
    version = "v1alpha1",
    kind = "ScaledObject",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct ScaledObjectSpec {
    pub scale_target_ref: ScaleTarget,
    pub polling_interval: Option<i32>,
    pub cooldown_period: Option<i32>,
    pub initial_cooldown_period: Option<i32>,
    pub idle_replica_count: Option<i32>,
    pub min_replica_count: Option<i32>,
    pub max_replica_count: Option<i32>,
    pub fallback: Option<Fallback>,
    pub advanced: Option<Advanced>,
    pub triggers: Vec<ScaleTriggers>,
}

#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTarget {
    pub name: String,
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub env_source_container_name: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Fallback {
    pub failure_threshold: i32,
    pub replicas: i32,
    pub behavior: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Advanced {
    pub horizontal_pod_autoscaler_config: Option<HpaConfig>,
    pub restore_to_original_replica_count: Option<bool>,
    pub scaling_modifiers: Option<serde_json::Value>,
}

#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HpaConfig {
    pub name: Option<String>,
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
}

#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleTriggers {
    #[serde(rename = "type")]
    pub type_: String,
    pub name: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub metric_type: Option<String>,
    pub use_cached_metrics: Option<bool>,
    pub authentication_ref: Option<AuthenticationRef>,
}

#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationRef {
    pub name: String,
    pub kind: Option<String>,
}

/// KServe's InferenceService (serving.kserve.io/v1beta1): the predictor's scaling
/// fields; the model and container settings are kept untyped.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "serving.kserve.io",
    version = "v1beta1",
    kind = "InferenceService",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct InferenceServiceSpec {
    pub predictor: PredictorSpec,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize, Serialize, Clone, Debug, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PredictorSpec {
    pub min_replicas: Option<i32>,
    pub max_replicas: Option<i32>,
    pub scale_target: Option<i32>,
    pub scale_metric: Option<String>,
    pub scale_metric_type: Option<String>,
    pub container_concurrency: Option<i64>,
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}
