//! HorizontalPodAutoscaler (autoscaling/v2) -> `[services.autoscaler.hpa]`.

use crate::yaml::{key, Document};
use crate::{convert, ImportError, Imported};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use lab_autoscale::spec::{Behavior, HpaSpec, MetricSpec};
use lab_autoscale::{AutoscalerSpec, Bounds};
use serde::de::IgnoredAny;
use serde::Deserialize;

const KIND: &str = "HorizontalPodAutoscaler";

/// The fields k8s-openapi fills with zeros when they are missing: a manifest without
/// them is a mistake to report, not an HPA that scales to nothing.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Required {
    #[allow(dead_code)]
    spec: RequiredSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequiredSpec {
    #[allow(dead_code)]
    scale_target_ref: IgnoredAny,
    #[allow(dead_code)]
    max_replicas: IgnoredAny,
}

pub fn import(doc: &Document) -> Result<Imported, ImportError> {
    doc.typed::<Required>(KIND)?;
    let hpa: HorizontalPodAutoscaler = doc.typed(KIND)?;
    let spec = hpa.spec;
    let metrics: Vec<MetricSpec> = match &spec.metrics {
        Some(m) => convert(doc, KIND, &[key("spec"), key("metrics")], m)?,
        None => Vec::new(),
    };
    let behavior: Option<Behavior> = match &spec.behavior {
        Some(b) => Some(convert(doc, KIND, &[key("spec"), key("behavior")], b)?),
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
