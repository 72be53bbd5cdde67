//! `lab import` on example manifests: each kind converts, the TOML it prints reads back
//! as the same autoscaler spec and builds a working autoscaler, and bad input gives an
//! error that says what to do.

use lab_autoscale::spec::{KpaMetric, SelectPolicy, TargetType};
use lab_autoscale::{Autoscaler, AutoscalerSpec, Time};
use lab_import::{import_yaml, ImportError, Imported, Problem};
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
    match import_yaml(&manifest("configmap.yaml")).map_err(|e| e.problem) {
        Err(Problem::UnsupportedKind { kind, .. }) => assert_eq!(kind, "ConfigMap"),
        other => panic!("{other:?}"),
    }
    let e = import_yaml(&manifest("hpa-bad-target.yaml")).unwrap_err();
    assert!(matches!(e.problem, Problem::Schema { .. }), "{e}");
    assert!(e.to_string().contains("HorizontalPodAutoscaler"), "{e}");
    let e = import_yaml("kind: [").unwrap_err();
    assert!(matches!(e.problem, Problem::Yaml(_)), "{e}");
    assert_eq!(e.position.map(|p| p.line), Some(1), "{e}");
    let e = import_yaml("apiVersion: v1\n").unwrap_err();
    assert_eq!(e.problem, Problem::NoKind);
    let e = import_yaml("apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\n").unwrap_err();
    assert!(e.to_string().contains("autoscaling/v2"), "{e}");
    assert_eq!(e.to_string().split(": ").next(), Some("1:13"), "{e}");
}

/// `line:column: key path: message`, with the line counted in the whole file.
fn at(e: &ImportError) -> (u64, u64, &str) {
    let p = e.position.unwrap_or_else(|| panic!("no position: {e}"));
    (p.line, p.column, e.path.as_deref().unwrap_or(""))
}

#[test]
fn schema_errors_name_line_column_and_key_path() {
    let e = import_yaml(&manifest("hpa-bad-target.yaml")).unwrap_err();
    assert_eq!(at(&e), (10, 16, "spec.maxReplicas"), "{e}");
    assert!(e.to_string().contains("`\"lots\"`"), "{e}");
    assert!(
        e.in_file("hpa-bad-target.yaml")
            .starts_with("hpa-bad-target.yaml:10:16: spec.maxReplicas: "),
        "{}",
        e.in_file("hpa-bad-target.yaml")
    );

    // Deep inside a list, and in the second document: lines count from the file's top.
    let text = format!(
        "{}---\n{}",
        manifest("configmap.yaml"),
        manifest("hpa.yaml").replace("averageUtilization: 60", "averageUtilization: \"x\"")
    );
    let line = text
        .lines()
        .position(|l| l.contains("averageUtilization"))
        .unwrap() as u64
        + 1;
    let e = import_yaml(&text).unwrap_err();
    assert_eq!(
        at(&e),
        (
            line,
            31,
            "spec.metrics[0].resource.target.averageUtilization"
        ),
        "{e}"
    );

    let e = import_yaml(&manifest("hpa.yaml").replace("  maxReplicas: 12\n", "")).unwrap_err();
    assert_eq!(e.path.as_deref(), Some("spec"), "{e}");
    assert!(e.to_string().contains("maxReplicas"), "{e}");
}

/// `kubectl get hpa -o yaml` without a name prints a List: say how to get one object.
#[test]
fn a_list_asks_for_one_object() {
    let indented: String = manifest("hpa.yaml")
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    let text = format!("apiVersion: v1\nkind: List\nitems:\n  -\n{indented}");
    let e = import_yaml(&text).unwrap_err();
    assert_eq!(at(&e), (2, 7, "kind"), "{e}");
    assert!(
        e.to_string().contains("kubectl get hpa NAME -o yaml"),
        "{e}"
    );
}

#[test]
fn errors_found_after_parsing_point_at_their_key() {
    let text = manifest("isvc-serverless.yaml").replace(
        "target-burst-capacity: \"50\"",
        "target-burst-capacity: \"lots\"",
    );
    let e = import_yaml(&text).unwrap_err();
    assert_eq!(
        at(&e),
        (
            9,
            52,
            "metadata.annotations[\"autoscaling.knative.dev/target-burst-capacity\"]"
        ),
        "{e}"
    );
    let text = manifest("scaledobject.yaml").replace(
        "    - type: prometheus\n",
        "    - type: prometheus\n      metricType: Average\n",
    );
    let e = import_yaml(&text).unwrap_err();
    let line = text.lines().position(|l| l.contains("metricType")).unwrap() as u64 + 1;
    assert_eq!(at(&e), (line, 19, "spec.triggers[0].metricType"), "{e}");
    assert!(e.to_string().contains("AverageValue"), "{e}");
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
