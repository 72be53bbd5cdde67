//! Cases ported from Knative Serving's pkg/autoscaler/scaling/autoscaler_test.go: each
//! test names the upstream test and asserts the same desired pod count (and excess
//! burst capacity, within the ±1 upstream allows). Upstream's fixture: panic threshold
//! 2, max scale up/down rates 10, stable window 60 s, total value = target / 0.75,
//! reachable, one ready pod unless the test says otherwise.

use lab_autoscale::kpa::{KpaConfig, ScaleResult, Scaler};
use lab_autoscale::spec::KpaMetric;
use lab_autoscale::Time;

const T0: Time = Time::from_secs(10_000);

fn cfg(target: f64, tbc: f64) -> KpaConfig {
    KpaConfig {
        metric: KpaMetric::Concurrency,
        target_value: target,
        total_value: target / 0.75,
        stable_window: Time::from_secs(60),
        panic_window: Time::from_secs(6),
        tick_interval: Time::from_secs(2),
        metric_bucket: Time::from_secs(1),
        panic_threshold: 2.0,
        max_scale_up_rate: 10.0,
        max_scale_down_rate: 10.0,
        activation_scale: 1,
        scale_down_delay: Time::ZERO,
        target_burst_capacity: tbc,
        grace_period: Time::from_secs(30),
        pod_retention: Time::ZERO,
        initial_scale: 1,
        enable_scale_to_zero: true,
        activator_capacity: 150.0,
        min: 0,
        max: 0,
        reachable: true,
    }
}

/// Upstream's `expectedEBC`.
fn ebc(target: f64, tbc: f64, panic: f64, pods: f64) -> i64 {
    (target / 0.75 * pods - tbc - panic).floor() as i64
}

#[track_caller]
fn expect(r: ScaleResult, pods: u32, want_ebc: i64) {
    assert_eq!(r.desired, pods, "desired pods");
    assert!(
        (r.excess_burst_capacity - want_ebc).abs() <= 1,
        "ebc {} want {want_ebc}",
        r.excess_burst_capacity
    );
}

fn at(secs: u64) -> Time {
    T0 + Time::from_secs(secs)
}

#[test]
fn test_autoscaler_scale_down_delay() {
    let mut c = cfg(10.0, 0.0);
    c.panic_threshold = 100.0;
    c.stable_window = Time::ZERO;
    c.scale_down_delay = Time::from_secs(300);
    let mut s = Scaler::new(0, Time::ZERO);
    let t = |secs| Time::from_secs(secs);
    // "simple"
    assert_eq!(s.scale(&c, t(2), 0, 40.0, 40.0).desired, 4);
    assert_eq!(s.scale(&c, t(300), 0, 0.0, 0.0).desired, 4);
    assert_eq!(s.scale(&c, t(302), 0, 0.0, 0.0).desired, 0);
    // "gradual"
    assert_eq!(s.scale(&c, t(540), 0, 40.0, 40.0).desired, 4);
    assert_eq!(s.scale(&c, t(600), 0, 30.0, 30.0).desired, 4);
    assert_eq!(s.scale(&c, t(660), 0, 0.0, 0.0).desired, 4);
    assert_eq!(s.scale(&c, t(840), 0, 0.0, 0.0).desired, 3);
    assert_eq!(s.scale(&c, t(900), 0, 0.0, 0.0).desired, 0);
}

#[test]
fn test_autoscaler_scale_down_delay_not_reachable() {
    let mut c = cfg(10.0, 0.0);
    c.panic_threshold = 100.0;
    c.scale_down_delay = Time::from_secs(300);
    let mut s = Scaler::new(0, Time::ZERO);
    assert_eq!(s.scale(&c, Time::from_secs(2), 0, 40.0, 40.0).desired, 4);
    assert_eq!(s.scale(&c, Time::from_secs(60), 0, 0.0, 0.0).desired, 4);
    // Another revision takes the traffic: the delay no longer holds pods.
    c.reachable = false;
    assert_eq!(s.scale(&c, Time::from_secs(62), 0, 0.0, 0.0).desired, 0);
}

#[test]
fn test_autoscaler_scale_down_delay_zero() {
    let mut c = cfg(10.0, 0.0);
    c.panic_threshold = 100.0;
    let mut s = Scaler::new(0, Time::ZERO);
    assert_eq!(s.scale(&c, Time::ZERO, 0, 40.0, 40.0).desired, 4);
    assert_eq!(
        s.scale(&c, Time::from_millis(500), 0, 20.0, 20.0).desired,
        2
    );
}

#[test]
fn test_autoscaler_metrics() {
    let mut s = Scaler::new(1, T0);
    expect(
        s.scale(&cfg(10.0, 100.0), T0, 1, 50.0, 50.0),
        5,
        ebc(10.0, 100.0, 50.0, 1.0),
    );
}

#[test]
fn test_autoscaler_metrics_with_rps() {
    let mut c = cfg(10.0, 100.0);
    c.metric = KpaMetric::Rps;
    let mut s = Scaler::new(1, T0);
    expect(
        s.scale(&c, at(61), 1, 100.0, 99.0),
        10,
        ebc(10.0, 100.0, 99.0, 1.0),
    );
    assert!(s.in_panic());
}

#[test]
fn test_autoscaler_stable_mode_increase_with_concurrency_default() {
    let c = cfg(10.0, 101.0);
    let mut s = Scaler::new(1, T0);
    expect(
        s.scale(&c, T0, 1, 50.0, 10.0),
        5,
        ebc(10.0, 101.0, 10.0, 1.0),
    );
    expect(
        s.scale(&c, T0, 1, 100.0, 10.0),
        10,
        ebc(10.0, 101.0, 10.0, 1.0),
    );
}

#[test]
fn test_autoscaler_stable_mode_increase_with_rps() {
    let mut c = cfg(10.0, 101.0);
    c.metric = KpaMetric::Rps;
    let mut s = Scaler::new(1, T0);
    expect(
        s.scale(&c, T0, 1, 50.0, 50.0),
        5,
        ebc(10.0, 101.0, 50.0, 1.0),
    );
    expect(
        s.scale(&c, T0, 1, 100.0, 99.0),
        10,
        ebc(10.0, 101.0, 99.0, 1.0),
    );
}

#[test]
fn test_autoscaler_unpanic_after_slow_increase() {
    let c = cfg(1.0, 98.0);
    let mut s = Scaler::new(1, T0);
    expect(
        s.scale(&c, T0, 10, 11.0, 25.0),
        25,
        ebc(1.0, 98.0, 25.0, 10.0),
    );
    assert_eq!(s.panic_since(), Some(T0));
    // Half a stable window later, one pod added per tick.
    expect(
        s.scale(&c, at(30), 40, 30.0, 41.0),
        41,
        ebc(1.0, 98.0, 41.0, 40.0),
    );
    assert_eq!(s.panic_since(), Some(T0), "panic time must not move");
    // A full window plus a tick: panic ends and the stable count rules.
    expect(
        s.scale(&c, at(62), 55, 50.0, 56.0),
        50,
        ebc(1.0, 98.0, 56.0, 55.0),
    );
    assert_eq!(s.panic_since(), None);
}

#[test]
fn test_autoscaler_extend_panic_window() {
    let c = cfg(1.0, 98.0);
    let mut s = Scaler::new(1, T0);
    expect(
        s.scale(&c, T0, 10, 11.0, 25.0),
        25,
        ebc(1.0, 98.0, 25.0, 10.0),
    );
    expect(
        s.scale(&c, at(30), 40, 30.0, 80.0),
        80,
        ebc(1.0, 98.0, 80.0, 40.0),
    );
    assert_eq!(s.panic_since(), Some(at(30)));
}

#[test]
fn test_autoscaler_stable_mode_decrease() {
    let c = cfg(10.0, 98.0);
    let mut s = Scaler::new(1, T0);
    expect(
        s.scale(&c, T0, 8, 100.0, 100.0),
        10,
        ebc(10.0, 98.0, 100.0, 8.0),
    );
    expect(
        s.scale(&c, T0, 8, 50.0, 50.0),
        5,
        ebc(10.0, 98.0, 50.0, 8.0),
    );
}

#[test]
fn test_autoscaler_stable_mode_no_traffic_scale_to_zero() {
    let c = cfg(10.0, 75.0);
    let mut s = Scaler::new(1, T0);
    expect(s.scale(&c, T0, 1, 1.0, 0.0), 1, ebc(10.0, 75.0, 0.0, 1.0));
    expect(s.scale(&c, T0, 1, 0.0, 0.0), 0, ebc(10.0, 75.0, 0.0, 1.0));
}

#[test]
fn test_autoscaler_activation_scale() {
    let mut c = cfg(10.0, 75.0);
    c.activation_scale = 2;
    let mut s = Scaler::new(1, T0);
    expect(s.scale(&c, T0, 1, 0.0, 0.0), 0, ebc(10.0, 75.0, 0.0, 1.0));
    expect(s.scale(&c, T0, 1, 1.0, 0.0), 2, ebc(10.0, 75.0, 0.0, 1.0));
}

#[test]
fn test_autoscaler_panic_mode_exponential_track_and_stabilize() {
    let c = cfg(1.0, 101.0);
    let mut s = Scaler::new(1, T0);
    expect(s.scale(&c, T0, 1, 6.0, 6.0), 6, ebc(1.0, 101.0, 6.0, 1.0));
    expect(
        s.scale(&c, T0, 6, 36.0, 36.0),
        36,
        ebc(1.0, 101.0, 36.0, 6.0),
    );
    expect(
        s.scale(&c, at(1), 36, 216.0, 216.0),
        216,
        ebc(1.0, 101.0, 216.0, 36.0),
    );
    expect(
        s.scale(&c, at(1), 216, 1296.0, 1296.0),
        1296,
        ebc(1.0, 101.0, 1296.0, 216.0),
    );
    assert_eq!(s.panic_since(), Some(at(1)));
    expect(
        s.scale(&c, at(2), 1296, 1296.0, 1296.0),
        1296,
        ebc(1.0, 101.0, 1296.0, 1296.0),
    );
}

#[test]
fn test_autoscaler_scale_table() {
    // (label, target, tbc, ready, stable, panic, want pods, want ebc)
    type Row = (&'static str, f64, f64, u32, f64, f64, u32, i64);
    let cases: &[Row] = &[
        (
            "AutoscalerNoDataAtZeroNoAutoscale",
            10.0,
            100.0,
            1,
            0.0,
            0.0,
            0,
            ebc(10.0, 100.0, 0.0, 1.0),
        ),
        (
            "AutoscalerStableModeUnlimitedTBC",
            181.0,
            -1.0,
            1,
            21.0,
            26.0,
            1,
            -1,
        ),
        ("Autoscaler0TBC", 10.0, 0.0, 1, 50.0, 49.0, 5, 0),
        (
            "AutoscalerStableModeNoChange",
            10.0,
            100.0,
            1,
            50.0,
            50.0,
            5,
            ebc(10.0, 100.0, 50.0, 1.0),
        ),
        (
            "AutoscalerStableModeNoChangeAlreadyScaled",
            10.0,
            100.0,
            5,
            50.0,
            50.0,
            5,
            ebc(10.0, 100.0, 50.0, 5.0),
        ),
        (
            "AutoscalerPanicModeDoublePodCount",
            10.0,
            84.0,
            1,
            50.0,
            100.0,
            10,
            ebc(10.0, 84.0, 100.0, 1.0),
        ),
    ];
    for &(label, target, tbc, ready, stable, panic, pods, want_ebc) in cases {
        let mut s = Scaler::new(1, T0);
        let r = s.scale(&cfg(target, tbc), T0, ready, stable, panic);
        assert_eq!(r.desired, pods, "{label}");
        assert!(
            (r.excess_burst_capacity - want_ebc).abs() <= 1,
            "{label}: ebc {}",
            r.excess_burst_capacity
        );
    }
}

#[test]
fn test_autoscaler_scale_table_panicking() {
    // "AutoscalerPanicStableLargerThanPanic": the stable value wins when larger.
    let mut s = Scaler::panicking(T0 - Time::from_secs(5), 5);
    expect(
        s.scale(&cfg(1.0, 100.0), T0, 5, 50.0, 30.0),
        50,
        ebc(1.0, 100.0, 30.0, 5.0),
    );
    // "AutoscalerPanicStableLessThanPanic"
    let mut s = Scaler::panicking(T0 - Time::from_secs(5), 5);
    expect(
        s.scale(&cfg(1.0, 100.0), T0, 5, 20.0, 30.0),
        30,
        ebc(1.0, 100.0, 30.0, 5.0),
    );
}

#[test]
fn test_autoscaler_scale_table_rates_and_reachability() {
    // "AutoscalerStableModeIncreaseWithSmallScaleUpRate"
    let mut c = cfg(1.0, 1982.0);
    c.max_scale_up_rate = 1.1;
    expect(
        Scaler::new(1, T0).scale(&c, T0, 2, 3.0, 3.1),
        3,
        ebc(1.0, 1982.0, 3.1, 2.0),
    );
    // "AutoscalerStableModeDecreaseWithSmallScaleDownRate"
    let mut c = cfg(10.0, 1982.0);
    c.max_scale_down_rate = 1.1;
    expect(
        Scaler::new(1, T0).scale(&c, T0, 100, 1.0, 1.0),
        90,
        ebc(10.0, 1982.0, 1.0, 100.0),
    );
    // "AutoscalerStableModeDecreaseNonReachable"
    c.reachable = false;
    expect(
        Scaler::new(1, T0).scale(&c, T0, 100, 1.0, 1.0),
        1,
        ebc(10.0, 1982.0, 1.0, 100.0),
    );
}

#[test]
fn test_autoscaler_panic_then_un_panic_scale_down() {
    let c = cfg(10.0, 93.0);
    let mut s = Scaler::new(1, T0);
    expect(
        s.scale(&c, T0, 1, 100.0, 100.0),
        10,
        ebc(10.0, 93.0, 100.0, 1.0),
    );
    let p = at(1);
    expect(
        s.scale(&c, p, 10, 100.0, 1000.0),
        100,
        ebc(10.0, 93.0, 1000.0, 10.0),
    );
    // Traffic gone, but still panicking: no scale-down.
    expect(
        s.scale(&c, p + Time::from_secs(30), 10, 1.0, 1.0),
        100,
        ebc(10.0, 93.0, 1.0, 10.0),
    );
    // A stable window after the last surge: scale down (by at most 10x).
    expect(
        s.scale(&c, p + Time::from_secs(61), 10, 1.0, 1.0),
        1,
        ebc(10.0, 93.0, 1.0, 10.0),
    );
}

#[test]
fn test_autoscaler_rate_limit_scale_up() {
    let c = cfg(10.0, 61.0);
    let mut s = Scaler::new(1, T0);
    expect(
        s.scale(&c, T0, 1, 1000.0, 1001.0),
        10,
        ebc(10.0, 61.0, 1001.0, 1.0),
    );
    expect(
        s.scale(&c, T0, 10, 1000.0, 1001.0),
        100,
        ebc(10.0, 61.0, 1001.0, 10.0),
    );
}

#[test]
fn test_autoscaler_rate_limit_scale_down() {
    let c = cfg(10.0, 61.0);
    let mut s = Scaler::new(1, T0);
    expect(
        s.scale(&c, T0, 100, 1.0, 1.0),
        10,
        ebc(10.0, 61.0, 1.0, 100.0),
    );
    expect(s.scale(&c, T0, 10, 1.0, 1.0), 1, ebc(10.0, 61.0, 1.0, 10.0));
}

#[test]
fn test_autoscaler_use_one_pod_as_minimum_if_endpoints_not_found() {
    let mut s = Scaler::new(1, T0);
    expect(
        s.scale(&cfg(10.0, 81.0), T0, 0, 1000.0, 888.0),
        10,
        ebc(10.0, 81.0, 888.0, 0.0),
    );
}

#[test]
fn test_autoscaler_update_target() {
    let mut c = cfg(10.0, 77.0);
    let mut s = Scaler::new(1, T0);
    expect(
        s.scale(&c, T0, 1, 100.0, 101.0),
        10,
        ebc(10.0, 77.0, 101.0, 1.0),
    );
    c.target_value = 1.0;
    c.total_value = 1.0 / 0.75;
    c.target_burst_capacity = 71.0;
    expect(
        s.scale(&c, T0, 10, 100.0, 101.0),
        100,
        ebc(1.0, 71.0, 101.0, 10.0),
    );
}

#[test]
fn test_start_in_panic_mode() {
    for ready in 0..2 {
        let s = Scaler::new(ready, T0);
        assert!(!s.in_panic(), "created at scale {ready} in panic");
        assert_eq!(s.max_panic_pods(), ready);
    }
    let s = Scaler::new(2, T0);
    assert!(s.in_panic());
    assert_eq!(s.max_panic_pods(), 2);
}

// ---------------------------------------------------------------- aggregation/bucketing_test.go

use lab_autoscale::kpa::WindowBuckets;

#[test]
fn test_timed_float64_buckets_window_average() {
    let s = |x: u64| T0 + Time::from_secs(x);
    let mut b = WindowBuckets::new(Time::from_secs(5));
    // A first write alone averages over itself, not the whole window.
    b.record(s(0), 1.0);
    assert_eq!(b.average(s(0)), 1.0);
    for i in 1..5 {
        b.record(s(i), (i + 1) as f64);
    }
    assert_eq!(b.average(s(4)), 15.0 / 5.0);
    // `now` lagging behind the last write.
    assert_eq!(b.average(T0 + Time::from_millis(3600)), 15.0 / 5.0);
    // A short hole: the seconds since the last write fall out of the window.
    assert_eq!(b.average(s(6)), (15.0 - 1.0 - 2.0) / (5.0 - 2.0));
    // A long hole reads as 0.
    assert_eq!(b.average(s(10)), 0.0);
    // Writing after a hole.
    b.record(s(6), 91.0);
    assert_eq!(b.average(s(6)), (15.0 - 1.0 - 2.0 + 91.0) / 5.0);
    // Much later: the window starts over.
    let n = s(60);
    b.record(n, 1984.0);
    assert_eq!(b.average(n), 1984.0);
    // An earlier second within the window moves the first write back.
    b.record(n - Time::from_secs(3), 4.0);
    assert_eq!(b.average(n), (4.0 + 1984.0) / 4.0);
    let n = n + Time::from_secs(1);
    b.record(n, 5.0);
    assert_eq!(b.average(n), (4.0 + 1984.0 + 5.0) / 5.0);
    b.record(n - Time::from_secs(3), 10.0);
    assert_eq!(b.average(n), (4.0 + 10.0 + 1984.0 + 5.0) / 5.0);
    // Too early for the window: ignored.
    b.record(n - Time::from_secs(6), 10.0);
    assert_eq!(b.average(n), (4.0 + 10.0 + 1984.0 + 5.0) / 5.0);
}

#[test]
fn test_descending_record() {
    let mut b = WindowBuckets::new(Time::from_secs(5));
    for i in (0..=8).rev() {
        b.record(T0 + Time::from_secs(i), 5.0);
    }
    assert_eq!(b.average(T0 + Time::from_secs(5)), 5.0);
}
