//! Round trip: `lab import` of what `lab deploy` rendered gives back the
//! scenario's autoscaler settings, so the two directions agree on every key.

mod common;

use common::{docs, example, render_example, KEDA_PROMETHEUS};
use lab_deploy::Mode;

fn import(r: &lab_deploy::Rendered, file: &str) -> lab_import::Imported {
    let text = &r.files[file];
    lab_import::import_yaml(text).unwrap_or_else(|e| panic!("{file} does not import: {e}\n{text}"))
}

/// The scenario's spec without lab's own `signal` hints, which no manifest carries.
fn without_signals(mut v: serde_json::Value) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("signal");
                m.values_mut().for_each(walk);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

#[test]
fn the_rendered_hpa_imports_as_the_scenario_hpa() {
    for name in ["spike", "diurnal-cost"] {
        let sc = example(name, &[]);
        let r = render_example(name, Mode::Raw, &[], &[]);
        let back = import(&r, "horizontalpodautoscaler.yaml");
        assert_eq!(
            without_signals(serde_json::to_value(&back.autoscaler.hpa).unwrap()),
            without_signals(serde_json::to_value(&sc.services[0].autoscaler.hpa).unwrap()),
            "{name}"
        );
        assert_eq!(
            (back.bounds.min, back.bounds.max),
            (sc.services[0].min_replicas, sc.services[0].max_replicas)
        );
    }
}

#[test]
fn the_rendered_scaled_object_imports_as_the_scenario_keda_table() {
    let sc = example("keda-queue", &[KEDA_PROMETHEUS]);
    let r = render_example("keda-queue", Mode::Raw, &[KEDA_PROMETHEUS], &[]);
    let back = import(&r, "scaledobject.yaml");
    let mut want = sc.services[0].autoscaler.keda.clone().unwrap();
    // The one deliberate change: the trigger asks the cluster's Prometheus.
    want.triggers[0].metadata.insert(
        "serverAddress".into(),
        lab_deploy::DEFAULT_PROMETHEUS_URL.into(),
    );
    assert_eq!(
        without_signals(serde_json::to_value(back.autoscaler.keda.as_ref().unwrap()).unwrap()),
        without_signals(serde_json::to_value(&want).unwrap())
    );
    assert_eq!(
        (back.bounds.min, back.bounds.max),
        (0, sc.services[0].max_replicas)
    );
    assert_eq!(
        docs(&r, "scaledobject.yaml")[0]["spec"]["scaleTargetRef"]["name"],
        "embedder-predictor"
    );
}

#[test]
fn the_rendered_inference_service_imports_as_the_scenario_kpa_table() {
    let tuned = [
        r#"services.sentiment.autoscaler.kpa={ target = 5, window = "30s", panic-window-percentage = 20, scale-down-delay = "15s", target-burst-capacity = 50, initial-scale = 1, activation-scale = 2, metric = "rps" }"#,
    ];
    for overrides in [&[][..], &tuned[..]] {
        let sc = example("scale-to-zero", overrides);
        let r = render_example("scale-to-zero", Mode::Serverless, overrides, &[]);
        let back = import(&r, "inferenceservice.yaml");
        let mut want = sc.services[0].autoscaler.kpa.clone().unwrap();
        want.metric
            .get_or_insert(lab_autoscale::spec::KpaMetric::Concurrency);
        assert_eq!(
            back.autoscaler.kpa,
            Some(want),
            "{overrides:?}: {:?}",
            back.notes
        );
        assert_eq!(
            (back.bounds.min, back.bounds.max),
            (0, sc.services[0].max_replicas)
        );
        assert_eq!(back.container_concurrency, Some(10));
    }
}
