//! HorizontalPodAutoscaler (autoscaling/v2) -> `[services.autoscaler.hpa]`.

use crate::{convert, schema_error, ImportError, Imported};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use lab_autoscale::spec::{Behavior, HpaSpec, MetricSpec};
use lab_autoscale::{AutoscalerSpec, Bounds};

pub fn import(value: serde_yaml::Value) -> Result<Imported, ImportError> {
    // k8s-openapi fills a missing spec or maxReplicas with zeros; a manifest without
    // them is a mistake to report, not an HPA that scales to nothing.
    let spec_value = value
        .get("spec")
        .ok_or_else(|| schema_error("HorizontalPodAutoscaler", "it has no spec"))?;
    if spec_value.get("maxReplicas").is_none() {
        return Err(schema_error(
            "HorizontalPodAutoscaler",
            "spec.maxReplicas is missing",
        ));
    }
    let hpa: HorizontalPodAutoscaler =
        serde_yaml::from_value(value).map_err(|e| schema_error("HorizontalPodAutoscaler", e))?;
    let spec = hpa.spec;
    let metrics: Vec<MetricSpec> = match &spec.metrics {
        Some(m) => convert("HorizontalPodAutoscaler spec.metrics", m)?,
        None => Vec::new(),
    };
    let behavior: Option<Behavior> = match &spec.behavior {
        Some(b) => Some(convert("HorizontalPodAutoscaler spec.behavior", b)?),
        None => None,
    };
    let min = spec.min_replicas.unwrap_or(1);
    let mut notes = Vec::new();
    if spec.scale_target_ref.kind != "Deployment" {
        notes.push(format!(
            "the target is a {} ({}); lab scales the service's Deployment",
            spec.scale_target_ref.kind, spec.scale_target_ref.name
        ));
    }
    Ok(Imported {
        source: format!(
            "HorizontalPodAutoscaler {}/{}",
            hpa.metadata.namespace.as_deref().unwrap_or("default"),
            hpa.metadata.name.as_deref().unwrap_or("?")
        ),
        autoscaler: AutoscalerSpec {
            hpa: Some(HpaSpec {
                metrics,
                behavior,
                controller: None,
            }),
            ..AutoscalerSpec::default()
        },
        bounds: Bounds {
            min: non_negative(min),
            max: non_negative(spec.max_replicas),
        },
        container_concurrency: None,
        notes,
        problems: Vec::new(),
    })
}

pub fn non_negative(x: impl Into<i64>) -> u32 {
    x.into().clamp(0, u32::MAX as i64) as u32
}
