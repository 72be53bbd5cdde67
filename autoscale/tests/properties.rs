//! Invariants that must hold for any load: decisions stay within bounds, a load exactly
//! at target is left alone, the HPA does not scale down inside its stabilization window,
//! and the KPA decider never lowers its count while panicking.

mod common;

use common::{secs, Load, World};
use lab_autoscale::kpa::{KpaConfig, Scaler};
use lab_autoscale::spec::KpaSpec;
use lab_autoscale::{Autoscaler, AutoscalerSpec, Bounds};
use proptest::prelude::*;

const HPA_LEGACY: &str = "[hpa]\nmetrics = [{ type = \"Resource\", resource = { name = \"cpu\", target = { type = \"Utilization\", averageUtilization = 50 } } }]\n";
const HPA_BEHAVIOR: &str = "[hpa]\nmetrics = [{ type = \"Resource\", resource = { name = \"cpu\", target = { type = \"Utilization\", averageUtilization = 50 } } }]\n[hpa.behavior.scaleDown]\npolicies = [{ type = \"Pods\", value = 1, periodSeconds = 15 }]\n";
const KPA: &str = "[kpa]\ntarget = 10\ntarget-utilization-percentage = 100\n";
const KEDA: &str = "[keda]\npollingInterval = 15\ncooldownPeriod = 60\ntriggers = [{ type = \"prometheus\", metadata = { query = \"concurrency\", threshold = \"10\" } }]\n";

fn build(text: &str, b: Bounds) -> Autoscaler {
    let spec: AutoscalerSpec = toml::from_str(text).unwrap();
    Autoscaler::new(&spec, b, 0, secs(0)).unwrap()
}

/// A piecewise-constant load: (segment length in s, level).
fn loads() -> impl Strategy<Value = Vec<(u64, f64)>> {
    prop::collection::vec((5u64..120, 0.0f64..400.0), 1..12)
}

fn level_at(segments: &[(u64, f64)], s: u64) -> f64 {
    let mut t = 0;
    for &(len, v) in segments {
        t += len;
        if s < t {
            return v;
        }
    }
    segments.last().map_or(0.0, |x| x.1)
}

fn total(segments: &[(u64, f64)]) -> u64 {
    segments.iter().map(|x| x.0).sum::<u64>() + 60
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn decisions_stay_within_bounds(segs in loads(), kind in 0usize..4, min in 0u32..3, extra in 1u32..15) {
        let max = min + extra;
        let text = [HPA_LEGACY, HPA_BEHAVIOR, KPA, KEDA][kind];
        // HPA needs minReplicas >= 1 without an Object/External metric.
        let min = if kind < 2 { min.max(1) } else { min };
        let mut a = build(text, Bounds { min, max });
        let mut w = World::new(a.initial_replicas(), secs(5));
        // CPU: 10 millicores per unit of level; concurrency and queue: the level / 10.
        w.run(&mut a, 0, total(&segs), |s| {
            let l = level_at(&segs, s);
            Load { cpu_milli: l * 10.0, concurrency: l / 10.0, queue: l / 10.0 }
        });
        for (t, r, d) in &w.log {
            prop_assert!(*r <= max && (*r >= min || *r == 0 && min == 0), "{r} outside [{min}, {max}] at {t:?}: {}", d.reason);
        }
    }

    #[test]
    fn hpa_load_exactly_at_target_is_stable(n in 1u32..12, behavior in any::<bool>()) {
        let mut a = build(if behavior { HPA_BEHAVIOR } else { HPA_LEGACY }, Bounds { min: 1, max: 20 });
        let mut w = World::new(n, secs(5));
        // Each pod at exactly 50% of its 1000m request.
        w.run(&mut a, 0, 600, |_| Load { cpu_milli: 500.0 * n as f64, ..Load::default() });
        prop_assert!(w.log.iter().all(|(_, r, _)| *r == n));
    }

    #[test]
    fn kpa_load_exactly_at_target_is_stable(n in 1u32..12) {
        let mut a = build(KPA, Bounds { min: 1, max: 20 });
        let mut w = World::new(n, secs(5));
        w.run(&mut a, 0, 300, |_| Load { concurrency: 10.0 * n as f64, ..Load::default() });
        prop_assert!(w.log.iter().all(|(_, r, _)| *r == n), "{:?}", w.log.iter().map(|x| x.1).collect::<Vec<_>>());
    }

    #[test]
    fn hpa_never_scales_down_inside_the_stabilization_window(segs in loads(), behavior in any::<bool>()) {
        let mut a = build(if behavior { HPA_BEHAVIOR } else { HPA_LEGACY }, Bounds { min: 1, max: 30 });
        let mut w = World::new(2, secs(10));
        w.run(&mut a, 0, total(&segs) + 300, |s| Load { cpu_milli: level_at(&segs, s) * 10.0, ..Load::default() });
        // Once the count reaches U at time s (or starts there), it stays at least U until
        // the 300 s window after s has passed.
        let mut marks = vec![(secs(0), w.initial)];
        let mut prev = w.initial;
        for (t, r, _) in &w.log {
            if *r > prev {
                marks.push((*t, *r));
            }
            for &(s, u) in &marks {
                if *t > s && *t < s + secs(300) {
                    prop_assert!(*r >= u, "down to {r} at {t:?}, within 300 s of reaching {u} at {s:?}");
                }
            }
            prev = *r;
        }
    }

    #[test]
    fn kpa_never_lowers_its_count_while_panicking(
        steps in prop::collection::vec((0u32..40, 0.0f64..500.0, 0.0f64..500.0), 1..80)
    ) {
        let cfg = KpaConfig::compile(&KpaSpec { target: Some(10.0), ..KpaSpec::default() }, Bounds { min: 0, max: 0 }, 0).unwrap();
        let mut s = Scaler::new(0, secs(0));
        let mut last: Option<u32> = None;
        for (i, (ready, stable, panic)) in steps.into_iter().enumerate() {
            let r = s.scale(&cfg, secs(2 * i as u64), ready, stable, panic);
            if s.in_panic() {
                if let Some(prev) = last {
                    prop_assert!(r.desired >= prev, "panicking decider went {prev} -> {}", r.desired);
                }
                last = Some(r.desired);
            } else {
                last = None;
            }
        }
    }
}

fn pod_strategy() -> impl Strategy<Value = lab_autoscale::PodSample> {
    use lab_autoscale::{PodPhase, PodSample, SignalValues};
    (
        0u8..3,
        any::<bool>(),
        any::<bool>(),
        prop::option::of(0u64..2000),
        prop::option::of(0u64..2000),
        0u64..4000,
        prop::option::of((0.0f64..1e6, 0.0f64..1e4)),
    )
        .prop_map(|(phase, ready, deleting, start, tr, req, m)| PodSample {
            phase: [PodPhase::Pending, PodPhase::Running, PodPhase::Failed][phase as usize],
            ready,
            deleting,
            start: start.map(secs),
            ready_transition: tr.map(secs),
            cpu_request_milli: req,
            memory_request_bytes: req * 1_000_000,
            metrics: m.map(|(cpu, c)| SignalValues {
                cpu_milli: cpu,
                memory_bytes: cpu * 1e6,
                concurrency: c,
                rps: c,
                queue_depth: c,
                gpu_utilization: 50.0,
            }),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the cluster looks like, a due decision comes back (no panic) within bounds
    /// and schedules the next one in the future.
    #[test]
    fn any_observation_gets_a_decision(
        kind in 0usize..4,
        steps in prop::collection::vec(
            (prop::collection::vec(pod_strategy(), 0..8), 0u32..12, prop::option::of(0.0f64..1e4), 0u32..50, 1u64..40),
            1..25,
        ),
    ) {
        use lab_autoscale::{MetricError, Observation, SignalValues};
        let text = [HPA_LEGACY, HPA_BEHAVIOR, KPA, KEDA][kind];
        let b = Bounds { min: if kind < 2 { 1 } else { 0 }, max: 10 };
        let mut a = build(text, b);
        let mut now = secs(0);
        for (pods, spec, total, queue, dt) in steps {
            let totals = match total {
                Some(v) => Ok(SignalValues { cpu_milli: v, concurrency: v, rps: v, queue_depth: v, ..SignalValues::default() }),
                None => Err(MetricError("down".into())),
            };
            let obs = Observation { spec_replicas: spec, status_replicas: pods.len() as u32, pods: &pods, totals, activator_queue: queue };
            if let Ok(t) = &obs.totals {
                a.record(now, t, obs.ready_pods());
            }
            // Decide when due, as callers do.
            if now >= a.next_decision() || a.wants_poke(&obs) {
                let d = a.decide(now, &obs);
                // Out-of-range spec replicas are brought back in range.
                prop_assert!(d.desired <= b.max, "{} from {spec}: {}", d.desired, d.reason);
                prop_assert!(!d.reason.is_empty());
                prop_assert!(a.next_decision() > now, "{:?} not after {now:?}", a.next_decision());
            }
            now += secs(dt);
        }
    }
}
