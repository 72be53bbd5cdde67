//! Snapshots of the example scenarios' key figures, so a change in behaviour
//! shows up in review as a diff of `sim/tests/snapshots/*.txt`, and the figures
//! `scenarios/README.md` quotes, computed from the same runs. After a deliberate
//! change: `UPDATE_SNAPSHOTS=1 UPDATE_README=1 cargo test -p lab-sim --test examples`,
//! then review both diffs and the README's prose around the figures.

mod readme;

use lab_results::{Results, ScalingEvent};
use lab_scenario::Scenario;
use readme::{Figure, Format};
use std::fmt::Write;
use std::path::Path;
use std::sync::OnceLock;

/// The example runs: a name (the snapshot file), the scenario and its overrides.
const EXAMPLES: &[(&str, &str, &[&str])] = &[
    ("spike", "scenarios/spike.toml", &[]),
    ("steady-10k", "scenarios/steady-10k.toml", &[]),
    ("scale-to-zero", "scenarios/scale-to-zero.toml", &[]),
    ("timeslice", "scenarios/timeslice-vs-mig.toml", &[]),
    (
        "mig",
        "scenarios/timeslice-vs-mig.toml",
        &["node_pools.a100.sharing={ strategy = \"mig\", layout = [\"3g.20gb\", \"3g.20gb\"] }"],
    ),
    ("keda-queue", "scenarios/keda-queue.toml", &[]),
    (
        "keda-queue-target-20",
        "scenarios/keda-queue.toml",
        &["services.0.autoscaler.keda.triggers.0.metadata.value=\"20\""],
    ),
    ("diurnal-cost", "scenarios/diurnal-cost.toml", &[]),
    ("mmc", "scenarios/oracles/mmc.toml", &[]),
    ("azure-conv", "scenarios/azure-conv-replay.toml", &[]),
    (
        "azure-conv-2x",
        "scenarios/azure-conv-replay.toml",
        &["traffic.0.phases.0.scale=2"],
    ),
];

struct Run {
    scenario: Scenario,
    results: Results,
}

/// Each example is simulated once per test binary: its snapshot test and the
/// README check read the same run.
fn run(name: &str) -> &'static Run {
    static RUNS: [OnceLock<Run>; EXAMPLES.len()] = [const { OnceLock::new() }; EXAMPLES.len()];
    let i = EXAMPLES
        .iter()
        .position(|(n, _, _)| *n == name)
        .unwrap_or_else(|| panic!("no example named {name}"));
    RUNS[i].get_or_init(|| {
        let (_, file, overrides) = EXAMPLES[i];
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let scenario =
            lab_scenario::load(&root.join(file), &overrides).unwrap_or_else(|e| panic!("{e}"));
        let results = lab_sim::simulate(&scenario, scenario.run.seed, &mut |_| {
            lab_sim::Control::Continue
        })
        .results;
        Run { scenario, results }
    })
}

fn sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    format!("{:.4}", x)
        .parse::<f64>()
        .map(|v| format!("{:.3e}", v))
        .unwrap()
}

fn key_figures(r: &Results) -> String {
    let mut o = String::new();
    let q = &r.summary.requests;
    let _ = writeln!(
        o,
        "requests arrived={} completed={} failed={:?} in_flight={}",
        q.arrived, q.completed, q.failed_by_reason, q.in_flight
    );
    let l = &r.summary.latency_seconds;
    let _ = writeln!(
        o,
        "latency p50={} p99={} max={}",
        sig(l.p50),
        sig(l.p99),
        sig(l.max)
    );
    let _ = writeln!(o, "goodput_rps={}", sig(r.summary.goodput_rps));
    for svc in &r.services {
        let _ = writeln!(
            o,
            "service {} ready={}..{} max_desired={} p99={}",
            svc.name,
            svc.replicas.min_ready,
            svc.replicas.max_ready,
            svc.replicas.max_desired,
            sig(svc.latency_seconds.p99)
        );
    }
    let c = &r.cold_starts;
    let _ = writeln!(
        o,
        "cold_starts count={} mean={} delayed={}",
        c.count,
        sig(c.duration_seconds.mean),
        c.requests_delayed
    );
    let _ = writeln!(
        o,
        "cost monthly_usd={} idle_usd={}",
        sig(r.cost.monthly_usd),
        sig(r.cost.idle_usd)
    );
    let _ = writeln!(o, "scaling_events={}", r.scaling_events.len());
    for slo in &r.slo {
        let _ = writeln!(
            o,
            "slo {:?} passed={} observed={}",
            slo.name,
            slo.passed,
            sig(slo.observed.unwrap_or(f64::NAN))
        );
    }
    o
}

fn check(name: &str) {
    let got = key_figures(&run(name).results);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(got == want, "{name} changed; review and rerun with UPDATE_SNAPSHOTS=1\n--- committed\n{want}\n+++ now\n{got}");
}

#[test]
fn spike() {
    check("spike");
}

#[test]
fn steady_10k() {
    check("steady-10k");
}

#[test]
fn scale_to_zero() {
    check("scale-to-zero");
}

#[test]
fn timeslice_and_mig() {
    check("timeslice");
    check("mig");
}

#[test]
fn keda_queue() {
    check("keda-queue");
    check("keda-queue-target-20");
}

#[test]
fn diurnal_cost() {
    check("diurnal-cost");
}

#[test]
fn mmc_oracle() {
    check("mmc");
}

#[test]
fn azure_conv_replay() {
    check("azure-conv");
    check("azure-conv-2x");
}

// ------------------------------------------------------------ README figures

#[test]
fn readme_figures() {
    // The plan's figures are plan/tests/readme_figures.rs's.
    readme::check(&figures(), |key| !key.starts_with("plan-10k."));
}

fn events<'a>(r: &'a Results, target: &'a str) -> impl Iterator<Item = &'a ScalingEvent> {
    r.scaling_events.iter().filter(move |e| e.target == target)
}

/// Start and end, in seconds, of phase `i` of the first traffic stream, which
/// must be of `kind`.
fn phase(s: &Scenario, i: usize, kind: &str) -> (f64, f64) {
    let phases = &s.traffic[0].phases;
    assert_eq!(phases[i].kind(), kind, "{}: phase {i}", s.name);
    let start: f64 = phases[..i].iter().map(|p| p.duration().secs_f64()).sum();
    (start, start + phases[i].duration().secs_f64())
}

/// Every figure of scenarios/README.md's example table, from the runs above.
fn figures() -> Vec<Figure> {
    use Format::*;
    let fig = Figure::new;
    let mut out = Vec::new();

    let Run {
        scenario,
        results: r,
    } = run("spike");
    let resnet = &r.services[0].replicas;
    let lab_traffic::Phase::Spike { at, .. } = &scenario.traffic[0].phases[0] else {
        panic!("spike.toml's first phase is no longer a spike");
    };
    let all_asked = events(r, "resnet")
        .find(|e| e.to == resnet.max_desired)
        .expect("the HPA never asks for its most replicas")
        .t_seconds;
    let (c, ph) = (&r.cold_starts, &r.cold_starts.phases_seconds);
    let max_queue = r
        .timeseries
        .iter()
        .map(|p| p.queue_depth)
        .max()
        .unwrap_or(0);
    out.extend([
        fig("spike.max_desired", resnet.max_desired.into(), Count),
        fig("spike.asked_after", all_asked - at.secs_f64(), Seconds(0)),
        fig(
            "spike.pod_start",
            ph.image_pull + ph.model_load + ph.readiness,
            Seconds(0),
        ),
        fig("spike.image_pull", ph.image_pull, Seconds(0)),
        fig("spike.model_load", ph.model_load, Seconds(0)),
        fig("spike.readiness", ph.readiness, Seconds(0)),
        fig("spike.cold_start_mean", c.duration_seconds.mean, Seconds(0)),
        fig("spike.node_provisioning", ph.node_provisioning, Seconds(0)),
        fig("spike.max_queue", max_queue as f64, Thousands),
        fig("spike.p99", r.summary.latency_seconds.p99, Seconds(0)),
        fig("spike.error_rate", r.summary.error_rate, Percent(0)),
    ]);

    let r = &run("steady-10k").results;
    out.extend([
        fig("steady-10k.p99", r.summary.latency_seconds.p99, Millis(0)),
        fig("steady-10k.monthly", r.cost.monthly_usd, UsdPerMonth),
    ]);

    let r = &run("scale-to-zero").results;
    let c = &r.cold_starts;
    out.extend([
        fig("scale-to-zero.cold_starts", c.count as f64, Count),
        fig(
            "scale-to-zero.cold_start_mean",
            c.duration_seconds.mean,
            Seconds(0),
        ),
        fig("scale-to-zero.waited", c.requests_delayed as f64, Count),
        fig(
            "scale-to-zero.p99",
            r.summary.latency_seconds.p99,
            Seconds(1),
        ),
        fig(
            "scale-to-zero.failed",
            r.summary.requests.failed as f64,
            CountOrNo,
        ),
    ]);

    for (name, decimals) in [("timeslice", 1), ("mig", 0)] {
        for svc in &run(name).results.services {
            out.push(fig(
                &format!("{name}.{}.p99", svc.name),
                svc.latency_seconds.p99,
                Millis(decimals),
            ));
        }
    }

    let Run {
        scenario,
        results: r,
    } = run("keda-queue");
    let (from, to) = phase(scenario, 2, "constant");
    let settled: Vec<u32> = r
        .timeseries
        .iter()
        .filter(|p| p.t_seconds >= from && p.t_seconds < to)
        .map(|p| p.services[0].desired_replicas)
        .collect();
    let to_zero = events(r, "embedder")
        .last()
        .filter(|e| e.to == 0)
        .expect("keda-queue no longer ends at zero replicas");
    out.extend([
        fig(
            "keda-queue.max_desired",
            r.services[0].replicas.max_desired.into(),
            Count,
        ),
        fig(
            "keda-queue.settled_min",
            settled.iter().copied().min().unwrap().into(),
            Count,
        ),
        fig(
            "keda-queue.settled_max",
            settled.iter().copied().max().unwrap().into(),
            Count,
        ),
        fig("keda-queue.to_zero_from", to_zero.from.into(), Count),
        fig(
            "keda-queue.to_zero_after",
            to_zero.t_seconds - to,
            Seconds(0),
        ),
        fig(
            "keda-queue.waited",
            r.cold_starts.requests_delayed as f64,
            Count,
        ),
        fig("keda-queue.p99", r.summary.latency_seconds.p99, Seconds(1)),
        fig(
            "keda-queue.cold_start_mean",
            r.cold_starts.duration_seconds.mean,
            Seconds(0),
        ),
    ]);

    let r = &run("keda-queue-target-20").results;
    let scaled: Vec<&ScalingEvent> = events(r, "embedder").filter(|e| e.to > 0).collect();
    let low = scaled.iter().map(|e| e.to).min().unwrap();
    let high = scaled.iter().map(|e| e.to).max().unwrap();
    let swings = scaled
        .iter()
        .filter(|e| e.from == high && e.to == low)
        .count();
    out.extend([
        fig("keda-queue-target-20.low", low.into(), Count),
        fig("keda-queue-target-20.high", high.into(), Count),
        fig("keda-queue-target-20.swings", swings as f64, Count),
        fig(
            "keda-queue-target-20.p99",
            r.summary.latency_seconds.p99,
            Seconds(0),
        ),
    ]);

    let r = &run("diurnal-cost").results;
    let ts = &r.timeseries;
    let first_failure = ts.iter().position(|p| p.failure_rps > 0.0).unwrap_or(0);
    let calm = ts[first_failure..]
        .iter()
        .position(|p| p.failure_rps == 0.0)
        .map_or(ts.len(), |i| first_failure + i);
    let later: f64 = ts[calm..]
        .iter()
        .map(|p| p.failure_rps * r.run.interval_seconds)
        .sum();
    let ocr = &r.services[0].replicas;
    // The first hour is the cold start at midnight's rate, not the cycle.
    let cycle: Vec<u32> = ts
        .iter()
        .filter(|p| p.t_seconds >= 3600.0)
        .map(|p| p.services[0].ready_replicas)
        .collect();
    out.extend([
        fig("diurnal-cost.total", r.cost.total_usd, Usd(2)),
        fig("diurnal-cost.monthly", r.cost.monthly_usd, UsdPerMonth),
        fig(
            "diurnal-cost.cycle_min",
            cycle.iter().copied().min().unwrap().into(),
            Count,
        ),
        fig(
            "diurnal-cost.cycle_max",
            cycle.iter().copied().max().unwrap().into(),
            Count,
        ),
        fig("diurnal-cost.max_ready", ocr.max_ready.into(), Count),
        fig("diurnal-cost.mean_ready", ocr.mean_ready, Plain(1)),
        fig("diurnal-cost.error_rate", r.summary.error_rate, Percent(2)),
        fig(
            "diurnal-cost.failing_until",
            ts.get(calm).map_or(r.run.end_seconds, |p| p.t_seconds),
            Minutes(0),
        ),
        fig("diurnal-cost.later_failures", later.round(), CountOrNo),
        fig(
            "diurnal-cost.spot_interruptions",
            r.scaling_events
                .iter()
                .filter(|e| e.autoscaler == "spot")
                .count() as f64,
            Count,
        ),
        fig("diurnal-cost.p99", r.summary.latency_seconds.p99, Millis(0)),
    ]);

    let r = &run("mmc").results;
    out.push(fig("mmc.mean", r.summary.latency_seconds.mean, Millis(2)));

    for name in ["azure-conv", "azure-conv-2x"] {
        let r = &run(name).results;
        let chat = &r.services[0].replicas;
        out.extend([
            fig(
                &format!("{name}.arrived"),
                r.summary.requests.arrived as f64,
                Count,
            ),
            fig(
                &format!("{name}.p99"),
                r.summary.latency_seconds.p99,
                if name == "azure-conv" {
                    Millis(0)
                } else {
                    Seconds(2)
                },
            ),
            fig(&format!("{name}.max_ready"), chat.max_ready.into(), Count),
            fig(&format!("{name}.mean_ready"), chat.mean_ready, Plain(1)),
            fig(
                &format!("{name}.cold_starts"),
                r.cold_starts.count as f64,
                Count,
            ),
            fig(&format!("{name}.monthly"), r.cost.monthly_usd, UsdPerMonth),
        ]);
    }
    out
}
