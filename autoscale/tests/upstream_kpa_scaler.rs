//! Cases ported from Knative Serving's pkg/reconciler/autoscaling/kpa/scaler_test.go
//! (`TestScaler`, `TestDisableScaleToZero`): what the PodAutoscaler reconciler does with
//! the decider's desired scale given the PA's Active condition, how long the activator has
//! been in the request path, and the bounds. Each case keeps upstream's label. Upstream's
//! fixture durations are expressed relative to ours (stable window 60 s, grace 30 s).

use lab_autoscale::kpa::{Activity, Kpa, KpaConfig};
use lab_autoscale::spec::KpaSpec;
use lab_autoscale::{Bounds, Time};
use lab_units::Dur;

const NOW: Time = Time::from_secs(100_000);
const SW: Time = Time::from_secs(60);
const GRACE: Time = Time::from_secs(30);
const SEC: Time = Time::from_secs(1);
const ACTIVATION_TIMEOUT: Time = Time::from_secs(630);

struct Case {
    label: &'static str,
    start: u32,
    scale_to: i64,
    min: u32,
    max: u32,
    spec: KpaSpec,
    activity: Activity,
    proxy_since: Option<Time>,
    initialized: bool,
    want: i64,
    want_scaling: bool,
}

fn base(label: &'static str, start: u32, scale_to: i64, want: i64, want_scaling: bool) -> Case {
    Case {
        label,
        start,
        scale_to,
        min: 0,
        max: 0,
        spec: KpaSpec::default(),
        activity: Activity::Active(NOW - Time::from_secs(3600)),
        // Upstream's fake activator probe succeeds: the activator is in the path.
        proxy_since: Some(NOW),
        initialized: true,
        want,
        want_scaling,
    }
}

fn run(c: Case) {
    let cfg = KpaConfig::compile(
        &c.spec,
        Bounds {
            min: c.min,
            max: c.max,
        },
        0,
    )
    .unwrap();
    let mut k = Kpa::new(cfg, Time::ZERO);
    k.set_status(c.activity, c.proxy_since, c.initialized);
    let (want, apply, note) = k.apply_scale(NOW, c.scale_to);
    assert_eq!(want, c.want, "{}: want ({note})", c.label);
    let scaled = apply.is_some_and(|r| r != c.start);
    assert_eq!(scaled, c.want_scaling, "{}: scaling ({note})", c.label);
    if c.want_scaling {
        assert_eq!(apply.map(i64::from), Some(c.want), "{}", c.label);
    }
}

fn retention(d: Time) -> KpaSpec {
    KpaSpec {
        scale_to_zero_pod_retention_period: Some(Dur::from(d)),
        ..KpaSpec::default()
    }
}

#[test]
fn test_scaler_idle_period() {
    run(Case {
        activity: Activity::Active(NOW - SW + SEC),
        ..base(
            "waits to scale to zero (just before idle period)",
            1,
            0,
            1,
            false,
        )
    });
    run(Case {
        activity: Activity::Active(NOW - SW + SEC),
        ..base("scale to 1 waiting for idle expires", 10, 0, 1, true)
    });
    run(Case {
        activity: Activity::Active(NOW - SW),
        ..base("waits to scale to zero after idle period", 1, 0, 0, false)
    });
    run(Case {
        activity: Activity::Active(NOW - SW / 2),
        spec: KpaSpec {
            initial_scale: Some(2),
            ..KpaSpec::default()
        },
        ..base(
            "initial scale attained, but now time to scale down",
            2,
            0,
            1,
            true,
        )
    });
}

#[test]
fn test_scaler_pod_retention() {
    run(Case {
        activity: Activity::Inactive(NOW - GRACE),
        spec: retention(GRACE * 2),
        ..base(
            "can't scale to zero after grace period, but before last pod retention",
            1,
            0,
            0,
            false,
        )
    });
    run(Case {
        activity: Activity::Inactive(NOW - GRACE),
        spec: retention(GRACE),
        ..base(
            "scale to zero after grace period, and after last pod retention",
            1,
            0,
            0,
            true,
        )
    });
    run(Case {
        activity: Activity::Inactive(NOW - GRACE + SEC),
        proxy_since: Some(NOW - GRACE),
        spec: retention(Time::from_secs(20)),
        ..base("waits to scale to zero (just before grace period, sks in proxy long) and last pod timeout positive", 1, 0, 0, true)
    });
}

#[test]
fn test_scaler_grace_period() {
    run(Case {
        activity: Activity::Inactive(NOW - GRACE),
        ..base("scale to zero after grace period", 1, 0, 0, true)
    });
    run(Case {
        activity: Activity::Inactive(NOW - GRACE + SEC),
        ..base(
            "waits to scale to zero (just before grace period)",
            1,
            0,
            0,
            false,
        )
    });
    run(Case {
        activity: Activity::Inactive(NOW - GRACE + SEC),
        proxy_since: Some(NOW - GRACE + SEC),
        ..base(
            "waits to scale to zero (just before grace period, sks short)",
            1,
            0,
            0,
            false,
        )
    });
    run(Case {
        activity: Activity::Inactive(NOW - GRACE + SEC),
        proxy_since: Some(NOW - GRACE),
        ..base(
            "waits to scale to zero (just before grace period, sks in proxy long)",
            1,
            0,
            0,
            true,
        )
    });
    run(Case {
        activity: Activity::Inactive(NOW - GRACE),
        proxy_since: None,
        spec: KpaSpec {
            target_burst_capacity: Some(-1.0),
            ..KpaSpec::default()
        },
        ..base("scale to zero with TBC=-1", 1, 0, 0, true)
    });
    run(Case {
        activity: Activity::Inactive(NOW - GRACE),
        proxy_since: None,
        ..base(
            "scale to zero after grace period, but fail prober",
            1,
            0,
            0,
            false,
        )
    });
}

#[test]
fn test_scaler_activation() {
    run(Case {
        activity: Activity::Activating(NOW - ACTIVATION_TIMEOUT / 2),
        ..base(
            "waits to scale to zero while activating until after deadline exceeded",
            1,
            0,
            -1,
            false,
        )
    });
    run(Case {
        activity: Activity::Activating(NOW - ACTIVATION_TIMEOUT - SEC),
        ..base(
            "scale to zero while activating after deadline exceeded",
            1,
            0,
            0,
            true,
        )
    });
}

#[test]
fn test_scaler_bounds_and_scale_up() {
    run(Case {
        min: 2,
        activity: Activity::Inactive(NOW - GRACE + SEC),
        ..base("scale down to minScale before grace period", 10, 0, 2, true)
    });
    run(Case {
        min: 2,
        activity: Activity::Inactive(NOW - GRACE),
        ..base("scale down to minScale after grace period", 10, 0, 2, true)
    });
    run(base("scales up", 1, 10, 10, true));
    run(Case {
        max: 8,
        ..base("scales up to maxScale", 1, 10, 8, true)
    });
    run(Case {
        activity: Activity::Inactive(NOW - GRACE / 2),
        ..base("scale up inactive revision", 1, 10, 10, true)
    });
    run(Case {
        activity: Activity::Inactive(NOW),
        ..base(
            "does not scale up from zero with no metrics",
            0,
            -1,
            -1,
            false,
        )
    });
    run(base("scales up from zero to desired one", 0, 1, 1, true));
    run(base(
        "scales up from zero to desired high scale",
        0,
        10,
        10,
        true,
    ));
    run(Case {
        activity: Activity::Active(NOW),
        ..base("negative scale does not scale", 12, -1, -1, false)
    });
}

#[test]
fn test_scaler_initial_scale() {
    run(Case {
        activity: Activity::Activating(NOW),
        initialized: false,
        spec: KpaSpec {
            initial_scale: Some(2),
            ..KpaSpec::default()
        },
        ..base(
            "haven't scaled to initial scale, override desired scale with initial scale",
            0,
            1,
            2,
            true,
        )
    });
    run(Case {
        activity: Activity::Activating(NOW),
        initialized: false,
        spec: KpaSpec {
            initial_scale: Some(5),
            ..KpaSpec::default()
        },
        ..base("initial scale reached for the first time", 5, 1, 5, false)
    });
    run(Case {
        activity: Activity::Inactive(NOW),
        initialized: false,
        spec: KpaSpec {
            initial_scale: Some(0),
            allow_zero_initial_scale: Some(true),
            ..KpaSpec::default()
        },
        ..base("reaching initial scale zero", 0, 0, 0, false)
    });
}

#[test]
fn test_disable_scale_to_zero() {
    let off = || KpaSpec {
        enable_scale_to_zero: Some(false),
        ..KpaSpec::default()
    };
    run(Case {
        spec: off(),
        ..base(
            "EnableScaleToZero == false and minScale == 0",
            10,
            0,
            1,
            true,
        )
    });
    run(Case {
        spec: off(),
        min: 2,
        ..base(
            "EnableScaleToZero == false and minScale == 2",
            10,
            0,
            2,
            true,
        )
    });
    run(Case {
        spec: off(),
        ..base(
            "EnableScaleToZero == false and desire pod is -1(initial value)",
            10,
            -1,
            -1,
            false,
        )
    });
}
