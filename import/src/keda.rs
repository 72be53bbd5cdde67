//! KEDA ScaledObject -> `[services.autoscaler.keda]`.

use crate::crds::ScaledObject;
use crate::hpa::non_negative;
use crate::yaml::{key, Document, Seg};
use crate::{convert, schema_problem, ImportError, Imported};
use lab_autoscale::spec::{
    AuthenticationRef, Behavior, FallbackBehavior, KedaAdvanced, KedaFallback, KedaHpaConfig,
    KedaSpec, KedaTrigger, TargetType,
};
use lab_autoscale::{AutoscalerSpec, Bounds};
use lab_units::Dur;

fn secs(x: Option<i32>) -> Option<Dur> {
    x.map(|s| Dur::from_secs(s.max(0) as u64))
}

const KIND: &str = "ScaledObject";

pub fn import(doc: &Document) -> Result<Imported, ImportError> {
    let so: ScaledObject = doc.typed(KIND)?;
    let s = &so.spec;
    let mut notes = Vec::new();
    let fallback = match &s.fallback {
        None => None,
        Some(f) => {
            let behavior = match f.behavior.as_deref() {
                None | Some("static") => FallbackBehavior::Static,
                Some("currentReplicas") => FallbackBehavior::CurrentReplicas,
                Some("currentReplicasIfHigher") => FallbackBehavior::CurrentReplicasIfHigher,
                Some("currentReplicasIfLower") => FallbackBehavior::CurrentReplicasIfLower,
                Some(other) => {
                    return Err(doc.error_at(
                        &[key("spec"), key("fallback"), key("behavior")],
                        schema_problem(KIND, format!("`{other}` is not static, currentReplicas, currentReplicasIfHigher or currentReplicasIfLower")),
                    ))
                }
            };
            Some(KedaFallback {
                failure_threshold: non_negative(f.failure_threshold),
                replicas: non_negative(f.replicas),
                behavior: Some(behavior),
            })
        }
    };
    let advanced = match &s.advanced {
        None => None,
        Some(a) => {
            if a.scaling_modifiers.is_some() {
                notes.push(
                    "advanced.scalingModifiers is not simulated; each trigger scales on its own"
                        .into(),
                );
            }
            let behavior: Option<Behavior> = match a
                .horizontal_pod_autoscaler_config
                .as_ref()
                .and_then(|h| h.behavior.as_ref())
            {
                Some(b) => Some(convert(
                    doc,
                    KIND,
                    &[
                        key("spec"),
                        key("advanced"),
                        key("horizontalPodAutoscalerConfig"),
                        key("behavior"),
                    ],
                    b,
                )?),
                None => None,
            };
            Some(KedaAdvanced {
                horizontal_pod_autoscaler_config: a.horizontal_pod_autoscaler_config.as_ref().map(
                    |h| KedaHpaConfig {
                        name: h.name.clone(),
                        behavior,
                    },
                ),
                restore_to_original_replica_count: a.restore_to_original_replica_count,
            })
        }
    };
    let mut triggers = Vec::new();
    for (i, t) in s.triggers.iter().enumerate() {
        let metric_type = match t.metric_type.as_deref() {
            None => None,
            Some("AverageValue") => Some(TargetType::AverageValue),
            Some("Value") => Some(TargetType::Value),
            Some("Utilization") => Some(TargetType::Utilization),
            Some(other) => {
                return Err(doc.error_at(
                    &[
                        key("spec"),
                        key("triggers"),
                        Seg::Index(i),
                        key("metricType"),
                    ],
                    schema_problem(
                        KIND,
                        format!("`{other}` is not AverageValue, Value or Utilization"),
                    ),
                ))
            }
        };
        triggers.push(KedaTrigger {
            type_: t.type_.clone(),
            name: t.name.clone(),
            metadata: t.metadata.clone(),
            metric_type,
            use_cached_metrics: t.use_cached_metrics,
            authentication_ref: t.authentication_ref.as_ref().map(|a| AuthenticationRef {
                name: a.name.clone(),
                kind: a.kind.clone(),
            }),
            signal: None,
        });
    }
    Ok(Imported {
        source: format!(
            "ScaledObject {}/{}",
            so.metadata.namespace.as_deref().unwrap_or("default"),
            so.metadata.name.as_deref().unwrap_or("?")
        ),
        autoscaler: AutoscalerSpec {
            keda: Some(KedaSpec {
                polling_interval: secs(s.polling_interval),
                cooldown_period: secs(s.cooldown_period),
                initial_cooldown_period: secs(s.initial_cooldown_period),
                idle_replica_count: s.idle_replica_count.map(non_negative),
                fallback,
                advanced,
                triggers,
                controller: None,
            }),
            ..AutoscalerSpec::default()
        },
        bounds: Bounds {
            min: non_negative(s.min_replica_count.unwrap_or(0)),
            max: non_negative(s.max_replica_count.unwrap_or(100)),
        },
        container_concurrency: None,
        notes,
        problems: Vec::new(),
    })
}
