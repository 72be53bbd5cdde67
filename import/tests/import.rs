//! `lab import` on example manifests: each kind converts, the TOML it prints reads back
//! as the same autoscaler spec and builds a working autoscaler, and bad input gives an
//! error that says what to do.

use lab_autoscale::spec::{KpaMetric, SelectPolicy, TargetType};
use lab_autoscale::{Autoscaler, AutoscalerSpec, Time};
use lab_import::{import_yaml, ImportError, Imported};
use serde::Deserialize;

fn manifest(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/manifests/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[derive(Deserialize)]
struct Doc {
    services: Services,
}
#[derive(Deserialize)]
struct Services {
    autoscaler: AutoscalerSpec,
}

/// The printed TOML parses back to the same spec, and the spec builds.
fn round_trip(i: &Imported) {
    let text = i.to_toml();
    let doc: Doc = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(doc.services.autoscaler, i.autoscaler, "{text}");
    assert!(i.problems.is_empty(), "{:?}", i.problems);
    Autoscaler::new(
        &i.autoscaler,
        i.bounds,
        i.container_concurrency.unwrap_or(0),
        Time::ZERO,
    )
    .unwrap();
}

#[test]
fn hpa_v2_carries_metrics_behavior_and_bounds() {
    let i = import_yaml(&manifest("hpa.yaml")).unwrap();
    assert_eq!((i.bounds.min, i.bounds.max), (2, 12));
    let h = i.autoscaler.hpa.as_ref().unwrap();
    assert_eq!(h.metrics.len(), 2);
    let r = h.metrics[0].resource.as_ref().unwrap();
    assert_eq!(
        (
            r.name.as_str(),
            r.target.type_,
            r.target.average_utilization
        ),
        ("cpu", TargetType::Utilization, Some(60))
    );
    assert_eq!(
        h.metrics[1]
            .pods
            .as_ref()
            .unwrap()
            .target
            .average_value
            .unwrap()
            .0,
        8.0
    );
    let b = h.behavior.as_ref().unwrap();
    assert_eq!(
        b.scale_down.as_ref().unwrap().stabilization_window_seconds,
        Some(120)
    );
    assert_eq!(
        b.scale_up.as_ref().unwrap().select_policy,
        Some(SelectPolicy::Max)
    );
    round_trip(&i);
    let text = i.to_toml();
    assert!(
        text.contains("[services.autoscaler.hpa]\nmetrics = [\n    { type = \"Resource\""),
        "{text}"
    );
}

#[test]
fn scaled_object_skips_other_documents_and_keeps_triggers() {
    let i = import_yaml(&manifest("scaledobject.yaml")).unwrap();
    assert_eq!((i.bounds.min, i.bounds.max), (0, 8));
    let k = i.autoscaler.keda.as_ref().unwrap();
    assert_eq!(k.polling_interval.unwrap().secs_f64(), 15.0);
    assert_eq!(k.cooldown_period.unwrap().secs_f64(), 120.0);
    assert_eq!(k.triggers[0].metadata["activationThreshold"], "2");
    assert_eq!(k.fallback.as_ref().unwrap().replicas, 2);
    let behavior = k
        .advanced
        .as_ref()
        .unwrap()
        .horizontal_pod_autoscaler_config
        .as_ref()
        .unwrap()
        .behavior
        .as_ref()
        .unwrap();
    assert_eq!(
        behavior
            .scale_down
            .as_ref()
            .unwrap()
            .stabilization_window_seconds,
        Some(60)
    );
    round_trip(&i);
}

#[test]
fn serverless_inference_service_becomes_a_kpa() {
    let i = import_yaml(&manifest("isvc-serverless.yaml")).unwrap();
    assert_eq!(
        (i.bounds.min, i.bounds.max, i.container_concurrency),
        (0, 6, Some(8))
    );
    let k = i.autoscaler.kpa.as_ref().unwrap();
    assert_eq!(k.metric, Some(KpaMetric::Concurrency));
    assert_eq!(k.target, Some(4.0));
    assert_eq!(k.window.unwrap().secs_f64(), 30.0);
    assert_eq!(k.panic_threshold_percentage, Some(300.0));
    assert_eq!(k.target_burst_capacity, Some(50.0));
    assert_eq!(k.scale_down_delay.unwrap().secs_f64(), 60.0);
    assert_eq!(k.initial_scale, Some(2));
    round_trip(&i);
}

#[test]
fn raw_deployment_inference_service_becomes_a_cpu_hpa() {
    let i = import_yaml(&manifest("isvc-raw.yaml")).unwrap();
    assert_eq!((i.bounds.min, i.bounds.max), (1, 4));
    let r = i.autoscaler.hpa.as_ref().unwrap().metrics[0]
        .resource
        .clone()
        .unwrap();
    assert_eq!(
        (r.name.as_str(), r.target.average_utilization),
        ("cpu", Some(70))
    );
    round_trip(&i);
}

#[test]
fn other_kinds_and_broken_manifests_say_what_is_wrong() {
    match import_yaml(&manifest("configmap.yaml")) {
        Err(ImportError::UnsupportedKind { kind, .. }) => assert_eq!(kind, "ConfigMap"),
        other => panic!("{other:?}"),
    }
    let e = import_yaml(&manifest("hpa-bad-target.yaml")).unwrap_err();
    assert!(matches!(e, ImportError::Schema { .. }), "{e}");
    assert!(e.to_string().contains("HorizontalPodAutoscaler"), "{e}");
    assert!(matches!(
        import_yaml("kind: [").unwrap_err(),
        ImportError::Yaml(_)
    ));
    assert!(matches!(
        import_yaml("apiVersion: v1\n").unwrap_err(),
        ImportError::NoKind
    ));
    let e = import_yaml("apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\n").unwrap_err();
    assert!(e.to_string().contains("autoscaling/v2"), "{e}");
}

#[test]
fn unknown_metric_names_are_imported_with_a_note_to_fix() {
    let text =
        manifest("hpa.yaml").replace("lab_predictor_inflight_requests", "http_requests_in_flight");
    let i = import_yaml(&text).unwrap();
    assert_eq!(i.problems.len(), 1, "{:?}", i.problems);
    assert!(i.problems[0].0.ends_with("pods.metric.name"));
    let toml = i.to_toml();
    assert!(
        toml.contains("# Needs attention: autoscaler.hpa.metrics[1].pods.metric.name"),
        "{toml}"
    );
}
