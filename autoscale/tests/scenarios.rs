//! Each policy driven through time against a synthetic load (see `common`): the
//! behaviours users meet in practice, checked end to end through the public API.

mod common;

use common::{secs, Load, World};
use lab_autoscale::{Autoscaler, AutoscalerSpec, Bounds};

fn autoscaler(toml_text: &str, min: u32, max: u32) -> Autoscaler {
    let spec: AutoscalerSpec = toml::from_str(toml_text).expect("spec parses");
    Autoscaler::new(&spec, Bounds { min, max }, 0, secs(0)).expect("spec is valid")
}

fn cpu(m: f64) -> Load {
    Load {
        cpu_milli: m,
        ..Load::default()
    }
}

fn conc(c: f64) -> Load {
    Load {
        concurrency: c,
        ..Load::default()
    }
}

const HPA_CPU_50: &str = r#"
[hpa]
metrics = [{ type = "Resource", resource = { name = "cpu", target = { type = "Utilization", averageUtilization = 50 } } }]
"#;

#[test]
fn hpa_spike_without_behavior_doubles_per_sync_and_holds_for_five_minutes() {
    let mut a = autoscaler(HPA_CPU_50, 1, 20);
    let mut w = World::new(2, secs(20));
    // 2 pods at 40% for a minute, then 6 cores of demand (12 pods at 50%) for 4 minutes.
    let load = |s: u64| {
        if (60..300).contains(&s) {
            cpu(6000.0)
        } else {
            cpu(800.0)
        }
    };
    w.run(&mut a, 0, 1200, load);
    // Legacy path: at most max(2 x current, 4) per 15 s sync.
    let ups: Vec<(u32, u32)> = w
        .log
        .windows(2)
        .map(|p| (p[0].1, p[1].1))
        .filter(|(a, b)| b > a)
        .collect();
    assert!(!ups.is_empty());
    for (from, to) in &ups {
        assert!(
            *to <= (2 * from).max(4),
            "{from} -> {to} exceeds the legacy scale-up limit"
        );
    }
    assert_eq!(w.replicas_at(299), 12, "reaches the demand of 12 pods");
    // No scale-down within 300 s of the last high recommendation (load drops at 300 s).
    assert!(
        (300..=590).all(|s| w.replicas_at(s) == 12),
        "held during the stabilization window"
    );
    // After it, the legacy path drops in one step (no scale-down rate limit).
    assert_eq!(w.replicas_at(1199), 2);
    let downs: Vec<_> = w.log.windows(2).filter(|p| p[1].1 < p[0].1).collect();
    assert_eq!(downs.len(), 1, "one step down: {downs:?}");
}

#[test]
fn hpa_spike_with_behavior_follows_the_policies() {
    let spec = format!(
        "{HPA_CPU_50}\n[hpa.behavior.scaleUp]\npolicies = [{{ type = \"Pods\", value = 2, periodSeconds = 60 }}]\n\
         [hpa.behavior.scaleDown]\nstabilizationWindowSeconds = 60\npolicies = [{{ type = \"Percent\", value = 50, periodSeconds = 30 }}]\n"
    );
    let mut a = autoscaler(&spec, 1, 20);
    let mut w = World::new(2, secs(20));
    let load = |s: u64| {
        if (60..600).contains(&s) {
            cpu(6000.0)
        } else {
            cpu(800.0)
        }
    };
    w.run(&mut a, 0, 1200, load);
    // At most 2 pods added in any 60 s.
    for s in 60..600 {
        assert!(
            w.replicas_at(s + 60) <= w.replicas_at(s) + 2,
            "more than 2 pods added between {s}s and {}s",
            s + 60
        );
    }
    assert_eq!(w.replicas_at(599), 12);
    // Down: held for the 60 s window, then at most halved per 30 s.
    // The last high proposal came at the last sync before 600 s (syncs every 15 s).
    assert!((600..645).all(|s| w.replicas_at(s) == 12));
    for s in 600..1170 {
        assert!(
            2 * w.replicas_at(s + 30) >= w.replicas_at(s),
            "more than halved between {s}s and {}s",
            s + 30
        );
    }
    assert_eq!(w.replicas_at(1199), 2);
}

#[test]
fn kpa_panics_on_a_burst_and_leaves_a_stable_window_later() {
    let mut a = autoscaler(
        "[kpa]\ntarget = 10\ntarget-utilization-percentage = 100\n",
        1,
        50,
    );
    let mut w = World::new(1, secs(4));
    // 10 in flight (one pod's worth), a burst of 100 from 30 s to 50 s, then back to 10.
    let load = |s: u64| {
        if (30..50).contains(&s) {
            conc(100.0)
        } else {
            conc(10.0)
        }
    };
    w.run(&mut a, 0, 200, load);
    let panic_from = w
        .log
        .iter()
        .find(|(_, _, d)| d.reason.contains("panicking"))
        .map(|(t, _, _)| t.as_secs())
        .expect("panics");
    assert!(
        (30..=34).contains(&panic_from),
        "panic started at {panic_from}s"
    );
    // Panic sizes from the 6 s window: 10 pods within a few ticks of the burst.
    assert!(w.replicas_at(40) >= 10, "{} pods at 40s", w.replicas_at(40));
    // No scale-down while panicking (until a stable window after the last burst tick).
    let panic_to = w
        .log
        .iter()
        .rev()
        .find(|(_, _, d)| d.reason.contains("panicking"))
        .map(|(t, _, _)| t.as_secs())
        .unwrap();
    for s in panic_from..=panic_to {
        assert!(
            w.replicas_at(s + 1) >= w.replicas_at(s),
            "scaled down in panic at {s}s"
        );
    }
    // Panic is extended only while the burst exceeds twice the *ready* pods, i.e. until
    // the new pods are up; it ends a stable window after that.
    assert!(
        panic_to >= panic_from + 60 - 2 && panic_to <= 50 + 60 + 2,
        "panic from {panic_from}s to {panic_to}s"
    );
    // Then down, by at most half per tick.
    assert_eq!(w.replicas_at(199), 1);
}

#[test]
fn kpa_scales_to_zero_after_the_stable_window_and_grace_period() {
    // Default target-burst-capacity keeps the activator in path at low scale, so the
    // last pod goes right after the stable window of zero demand.
    let mut a = autoscaler("[kpa]\n", 0, 10);
    let mut w = World::new(1, secs(4));
    w.run(
        &mut a,
        0,
        300,
        |s| if s < 30 { conc(5.0) } else { conc(0.0) },
    );
    let zero_at = (0..300)
        .find(|&s| w.replicas_at(s) == 0)
        .expect("reaches zero");
    assert!(
        (30 + 60..=30 + 60 + 8).contains(&zero_at),
        "zero at {zero_at}s"
    );
    assert!(w.log.iter().any(|(_, _, d)| d.activator_in_path));

    // With burst capacity 0 the activator only steps in once the revision is idle, so
    // the grace period has to pass with it in path first.
    let mut a = autoscaler("[kpa]\ntarget-burst-capacity = 0\n", 0, 10);
    let mut w = World::new(1, secs(4));
    w.run(
        &mut a,
        0,
        300,
        |s| if s < 30 { conc(5.0) } else { conc(0.0) },
    );
    let zero_at2 = (0..300)
        .find(|&s| w.replicas_at(s) == 0)
        .expect("reaches zero");
    assert!(
        zero_at2 >= 30 + 60 + 30,
        "zero at {zero_at2}s, before the grace period"
    );
    assert!(zero_at2 <= 30 + 60 + 30 + 8, "zero at {zero_at2}s");
}

#[test]
fn kpa_wakes_from_zero_when_requests_reach_the_activator() {
    let mut a = autoscaler("[kpa]\n", 0, 10);
    let mut w = World::new(1, secs(4));
    w.run(&mut a, 0, 200, |s| {
        if !(10..150).contains(&s) {
            conc(3.0)
        } else {
            conc(0.0)
        }
    });
    assert_eq!(w.replicas_at(149), 0);
    // The poke decides at once, not at the next 2 s tick.
    assert_eq!(w.replicas_at(150), 1);
}

const KEDA_QUEUE: &str = r#"
[keda]
pollingInterval = "30s"
cooldownPeriod = "300s"
triggers = [{ type = "prometheus", metadata = { serverAddress = "http://prometheus:9090", query = "sum(lab_predictor_queue_depth)", threshold = "10", activationThreshold = "5" } }]
"#;

#[test]
fn keda_activates_from_zero_only_above_the_activation_threshold() {
    let mut a = autoscaler(KEDA_QUEUE, 0, 20);
    assert_eq!(a.initial_replicas(), 1);
    let mut w = World::new(1, secs(10));
    let queue = |q: f64| Load {
        queue: q,
        ..Load::default()
    };
    // Nothing queued: the first poll drops the Deployment's replica to 0 (no cooldown
    // without a last active time).
    // 5 queued is not above the activation threshold of 5: stays at 0.
    // 45 queued from 100 s: activates at the next poll, then the HPA sizes to 5.
    w.run(&mut a, 0, 400, |s| {
        if s < 60 {
            queue(0.0)
        } else if s < 100 {
            queue(5.0)
        } else {
            queue(45.0)
        }
    });
    // The first poll at 0 s sees creation + cooldown not yet *before* now; the next does.
    assert_eq!(w.replicas_at(29), 1);
    assert!((30..120).all(|s| w.replicas_at(s) == 0));
    assert_eq!(
        w.replicas_at(99),
        0,
        "activation is strictly greater than the threshold"
    );
    let active_at = (100..400).find(|&s| w.replicas_at(s) >= 1).unwrap();
    assert_eq!(
        active_at, 120,
        "activated at the first poll after the queue grew"
    );
    assert_eq!(w.replicas_at(399), 5, "the HPA sizes 1..N: ceil(45 / 10)");
}

#[test]
fn keda_goes_from_n_to_zero_after_the_cooldown_past_the_hpa() {
    let mut a = autoscaler(KEDA_QUEUE, 0, 20);
    let mut w = World::new(1, secs(10));
    let queue = |q: f64| Load {
        queue: q,
        ..Load::default()
    };
    w.run(&mut a, 0, 1000, |s| {
        if s < 200 {
            queue(80.0)
        } else {
            queue(0.0)
        }
    });
    assert_eq!(w.replicas_at(199), 8);
    // The last active poll was at 180 s; the HPA alone could not go below 1, and with its
    // 300 s stabilization it holds 8 until KEDA's cooldown ends.
    let zero_at = (200..1000).find(|&s| w.replicas_at(s) == 0).unwrap();
    assert!(
        zero_at > 180 + 300 && zero_at <= 180 + 300 + 30,
        "zero at {zero_at}s"
    );
    assert_eq!(w.replicas_at(zero_at - 1), 8, "straight from 8 to 0");
}
