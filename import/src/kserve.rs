//! KServe InferenceService -> KPA (Serverless mode, Knative annotations) or HPA
//! (RawDeployment/Standard mode), with minReplicas/maxReplicas/containerConcurrency as
//! service settings.

use crate::crds::InferenceService;
use crate::hpa::non_negative;
use crate::yaml::{key, Document};
use crate::{schema_problem, ImportError, Imported, Problem};
use lab_autoscale::spec::{
    HpaSpec, KpaSpec, MetricSourceType, MetricSpec, MetricTarget, ResourceMetricSource, TargetType,
};
use lab_autoscale::{AutoscalerSpec, Bounds, FixedSpec};
use std::collections::BTreeMap;

const KNATIVE: &str = "autoscaling.knative.dev/";

/// Knative annotation keys that take a number, and those that take a duration.
const NUMERIC: &[&str] = &[
    "target",
    "target-utilization-percentage",
    "panic-window-percentage",
    "panic-threshold-percentage",
    "max-scale-up-rate",
    "max-scale-down-rate",
    "initial-scale",
    "activation-scale",
    "target-burst-capacity",
];
const DURATIONS: &[&str] = &[
    "window",
    "scale-to-zero-pod-retention-period",
    "scale-down-delay",
];
/// Keys handled elsewhere (bounds and class) or not scaling-related.
const HANDLED: &[&str] = &[
    "metric",
    "class",
    "min-scale",
    "max-scale",
    "minScale",
    "maxScale",
    "initialScale",
    "metric-aggregation-algorithm",
];

const KIND: &str = "InferenceService";

/// Where an annotation sits: `metadata.annotations["..."]`.
fn annotation(full: &str) -> [crate::yaml::Seg; 3] {
    [key("metadata"), key("annotations"), key(full)]
}

pub fn import(doc: &Document) -> Result<Imported, ImportError> {
    let isvc: InferenceService = doc.typed(KIND)?;
    let ann: BTreeMap<String, String> = isvc.metadata.annotations.clone().unwrap_or_default();
    let p = &isvc.spec.predictor;
    let mut notes = Vec::new();
    let source = format!(
        "InferenceService {}/{}",
        isvc.metadata.namespace.as_deref().unwrap_or("default"),
        isvc.metadata.name.as_deref().unwrap_or("?")
    );
    let knative = |k: &str| ann.get(&format!("{KNATIVE}{k}")).map(String::as_str);
    let mode = ann
        .get("serving.kserve.io/deploymentMode")
        .map(String::as_str)
        .unwrap_or("Serverless");
    let serverless = match mode {
        // KServe 0.16 renamed the modes; the old names still work there.
        "Serverless" | "Knative" => true,
        "RawDeployment" | "Standard" => false,
        other => {
            return Err(doc.error_at(
                &annotation("serving.kserve.io/deploymentMode"),
                Problem::Unsupported(format!(
                    "deploymentMode `{other}` is not simulated; use Knative (Serverless) or Standard (RawDeployment)"
                )),
            ))
        }
    };
    // KServe's default minReplicas is 1; Knative's min-scale annotation wins if set.
    let either = |a: &'static str, b: &'static str| {
        [a, b]
            .into_iter()
            .find_map(|k| knative(k).map(|v| (format!("{KNATIVE}{k}"), v)))
    };
    let min = match either("min-scale", "minScale") {
        Some((full, v)) => parse_u32(doc, &full, v)?,
        None => non_negative(p.min_replicas.unwrap_or(1)),
    };
    let max_given = match either("max-scale", "maxScale") {
        Some((full, v)) => Some(parse_u32(doc, &full, v)?),
        None => p.max_replicas.map(non_negative),
    };
    let max = match max_given {
        Some(m) if m > 0 => m.max(min),
        _ if serverless => {
            notes.push("maxReplicas is unset (unbounded in Knative); lab needs a bound, so 100 is used: set the service's maxReplicas".into());
            100.max(min)
        }
        _ => min.max(1),
    };
    let metric = p
        .scale_metric
        .clone()
        .or_else(|| knative("metric").map(str::to_string))
        .unwrap_or_else(|| {
            if serverless {
                "concurrency".into()
            } else {
                "cpu".into()
            }
        });
    // Where the metric was set, for an error about it.
    let metric_at = if p.scale_metric.is_some() {
        vec![key("spec"), key("predictor"), key("scaleMetric")]
    } else if knative("metric").is_some() {
        annotation(&format!("{KNATIVE}metric")).to_vec()
    } else {
        vec![key("spec"), key("predictor")]
    };
    let cc = p.container_concurrency.map(|c| non_negative(c.max(0)));
    let class = ann
        .get("serving.kserve.io/autoscalerClass")
        .map(String::as_str);
    let knative_class = knative("class").unwrap_or("kpa.autoscaling.knative.dev");
    let autoscaler = match (serverless, metric.as_str(), class) {
        (_, _, Some("external") | Some("none")) => {
            notes.push("autoscalerClass is external/none: replicas stay at minReplicas".into());
            AutoscalerSpec { fixed: Some(FixedSpec { replicas: None }), ..AutoscalerSpec::default() }
        }
        (_, _, Some("keda")) => {
            return Err(doc.error_at(&annotation("serving.kserve.io/autoscalerClass"), Problem::Unsupported(
                "KServe's KEDA mode generates a ScaledObject; import that instead (kubectl get scaledobject NAME -o yaml)".into(),
            )))
        }
        (true, "concurrency" | "rps", _) if knative_class == "kpa.autoscaling.knative.dev" => {
            AutoscalerSpec { kpa: Some(kpa_spec(doc, &ann, &metric, p.scale_target, &mut notes)?), ..AutoscalerSpec::default() }
        }
        (_, "cpu" | "memory", _) => AutoscalerSpec { hpa: Some(resource_hpa(doc, &metric, p)?), ..AutoscalerSpec::default() },
        (true, m, _) => {
            return Err(doc.error_at(&metric_at, Problem::Unsupported(format!(
                "metric `{m}` with autoscaling class `{knative_class}` is not supported; use concurrency or rps with the KPA, or cpu or memory"
            ))))
        }
        (false, m, _) => {
            return Err(doc.error_at(&metric_at, Problem::Unsupported(format!(
                "RawDeployment mode scales on cpu or memory with the HPA, not `{m}`; use KEDA (autoscalerClass: keda) for request metrics"
            ))))
        }
    };
    for k in ann.keys().filter_map(|k| k.strip_prefix(KNATIVE)) {
        if autoscaler.kpa.is_none() && !HANDLED.contains(&k) {
            notes.push(format!(
                "annotation {KNATIVE}{k} applies to the KPA only and was not carried over"
            ));
        }
    }
    Ok(Imported {
        source,
        autoscaler,
        bounds: Bounds { min, max },
        container_concurrency: cc,
        notes,
        problems: Vec::new(),
    })
}

fn parse_u32(doc: &Document, full: &str, v: &str) -> Result<u32, ImportError> {
    v.trim().parse().map_err(|_| {
        doc.error_at(
            &annotation(full),
            schema_problem(KIND, format!("`{v}` is not a whole number")),
        )
    })
}

/// Knative annotations (plus KServe's scaleTarget/scaleMetric) as a KPA table.
fn kpa_spec(
    doc: &Document,
    ann: &BTreeMap<String, String>,
    metric: &str,
    scale_target: Option<i32>,
    notes: &mut Vec<String>,
) -> Result<KpaSpec, ImportError> {
    let mut map = serde_json::Map::new();
    map.insert("metric".into(), metric.into());
    if let Some(t) = scale_target {
        map.insert("target".into(), (t as f64).into());
    }
    for (full, v) in ann {
        let Some(k) = full.strip_prefix(KNATIVE) else {
            continue;
        };
        if NUMERIC.contains(&k) {
            let n: f64 = v.trim().parse().map_err(|_| {
                doc.error_at(
                    &annotation(full),
                    schema_problem(KIND, format!("`{v}` is not a number")),
                )
            })?;
            // KServe's scaleTarget field wins over the annotation, as KServe writes it.
            if k == "target" && scale_target.is_some() {
                continue;
            }
            let value = if matches!(k, "initial-scale" | "activation-scale") {
                serde_json::Value::from(n as u64)
            } else {
                serde_json::Value::from(n)
            };
            map.insert(k.into(), value);
        } else if DURATIONS.contains(&k) {
            map.insert(k.into(), v.clone().into());
        } else if !HANDLED.contains(&k) {
            notes.push(format!(
                "annotation {full} is not simulated and was left out"
            ));
        }
    }
    serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| {
        doc.error_at(
            &[key("metadata"), key("annotations")],
            schema_problem(
                KIND,
                format!("the Knative annotations do not make a KPA: {e}"),
            ),
        )
    })
}

/// KServe's HPA for RawDeployment (or Knative's HPA class): one Resource metric.
fn resource_hpa(
    doc: &Document,
    metric: &str,
    p: &crate::crds::PredictorSpec,
) -> Result<HpaSpec, ImportError> {
    let kind = match p.scale_metric_type.as_deref() {
        None | Some("Utilization") => TargetType::Utilization,
        Some("AverageValue") => TargetType::AverageValue,
        Some(other) => {
            return Err(doc.error_at(
                &[key("spec"), key("predictor"), key("scaleMetricType")],
                schema_problem(
                    KIND,
                    format!(
                        "`{other}` does not apply to {metric}; use Utilization or AverageValue"
                    ),
                ),
            ))
        }
    };
    // KServe's default target is 80 (percent for Utilization).
    let target = p.scale_target.unwrap_or(80).max(0) as u32;
    let t = match kind {
        TargetType::Utilization => MetricTarget {
            type_: kind,
            value: None,
            average_value: None,
            average_utilization: Some(target),
        },
        _ => MetricTarget {
            type_: kind,
            value: None,
            average_value: Some(lab_units::Quantity(target as f64)),
            average_utilization: None,
        },
    };
    Ok(HpaSpec {
        metrics: vec![MetricSpec {
            type_: MetricSourceType::Resource,
            resource: Some(ResourceMetricSource {
                name: metric.into(),
                target: t,
            }),
            container_resource: None,
            pods: None,
            object: None,
            external: None,
        }],
        behavior: None,
        controller: None,
    })
}
