//! Cases ported from KEDA's pkg/scaling/executor/scale_scaledobjects_test.go: the
//! executor's step alone (`Keda::poll`), given whether triggers are active or failing
//! and the target's current replicas. Each test names the upstream test.

use lab_autoscale::keda::{Keda, KedaConfig};
use lab_autoscale::spec::{KedaSpec, KedaTrigger};
use lab_autoscale::{Bounds, Time};
use std::collections::BTreeMap;

fn spec(idle: Option<u32>) -> KedaSpec {
    let metadata: BTreeMap<String, String> = [
        ("query", "sum(lab_predictor_queue_depth)"),
        ("threshold", "10"),
        ("serverAddress", "http://prometheus:9090"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    KedaSpec {
        idle_replica_count: idle,
        triggers: vec![KedaTrigger {
            type_: "prometheus".into(),
            name: None,
            metadata,
            metric_type: None,
            use_cached_metrics: None,
            authentication_ref: None,
            signal: None,
        }],
        ..KedaSpec::default()
    }
}

fn keda(min: u32, idle: Option<u32>) -> Keda {
    let cfg = KedaConfig::compile(&spec(idle), Bounds { min, max: 100 }).unwrap();
    Keda::new(cfg, Time::ZERO)
}

fn active() -> [Result<f64, String>; 1] {
    [Ok(5.0)]
}
fn inactive() -> [Result<f64, String>; 1] {
    [Ok(0.0)]
}
const NOW: Time = Time::from_secs(1);

#[test]
fn test_scale_to_min_replicas_when_not_active() {
    // No lastActiveTime and initialCooldownPeriod 0: straight to 0.
    assert_eq!(keda(0, None).poll(NOW, 10, &inactive()).0, Some(0));
}

#[test]
fn test_scale_to_min_replicas_from_lower_initial_replica_count() {
    assert_eq!(keda(5, None).poll(NOW, 1, &inactive()).0, Some(5));
}

#[test]
fn test_scale_from_min_replicas_when_active() {
    let mut k = keda(0, None);
    assert_eq!(k.poll(NOW, 0, &active()).0, Some(1));
    assert_eq!(k.last_active(), Some(NOW));
}

#[test]
fn test_scale_to_idle_replicas_when_not_active() {
    assert_eq!(keda(5, Some(0)).poll(NOW, 10, &inactive()).0, Some(0));
}

#[test]
fn test_scale_from_idle_to_min_replicas_when_active() {
    let mut k = keda(5, Some(0));
    assert_eq!(k.poll(NOW, 0, &active()).0, Some(5));
    assert_eq!(k.last_active(), Some(NOW));
}

#[test]
fn test_event_wit_trigger_info() {
    // Idle mode and below min while active: raised to min (2 -> 5).
    assert_eq!(keda(5, Some(0)).poll(NOW, 2, &active()).0, Some(5));
}

#[test]
fn test_request_scale_scaler_error_hpa_healthy() {
    // Inactive with a failing trigger and no fallback: nothing changes.
    let mut k = keda(1, None);
    assert_eq!(k.poll(NOW, 1, &[Err("prometheus down".into())]).0, None);
}

#[test]
fn test_request_scale_all_healthy_hpa_healthy() {
    // Active at minReplicas: no scaling, lastActiveTime refreshed.
    let mut k = keda(1, None);
    assert_eq!(k.poll(NOW, 1, &active()).0, None);
    assert_eq!(k.last_active(), Some(NOW));
}
