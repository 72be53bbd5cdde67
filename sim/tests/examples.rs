//! Snapshots of the example scenarios' key figures, so a change in behaviour
//! shows up in review as a diff of `sim/tests/snapshots/*.txt`. After a deliberate
//! change: `UPDATE_SNAPSHOTS=1 cargo test -p lab-sim --test examples`.

use std::fmt::Write;
use std::path::Path;

fn sig(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    format!("{:.4}", x)
        .parse::<f64>()
        .map(|v| format!("{:.3e}", v))
        .unwrap()
}

fn key_figures(file: &str, overrides: &[&str]) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let s = lab_scenario::load(&root.join(file), &overrides).unwrap_or_else(|e| panic!("{e}"));
    let r = lab_sim::simulate(&s, s.run.seed, &mut |_| lab_sim::Control::Continue).results;
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

fn check(name: &str, file: &str, overrides: &[&str]) {
    let got = key_figures(file, overrides);
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
    check("spike", "scenarios/spike.toml", &[]);
}

#[test]
fn steady_10k() {
    // A shorter run keeps the test quick; the figures are steady after a minute.
    check(
        "steady-10k",
        "scenarios/steady-10k.toml",
        &["run.duration=\"3m\"", "traffic.0.phases.0.duration=\"3m\""],
    );
}

#[test]
fn scale_to_zero() {
    check("scale-to-zero", "scenarios/scale-to-zero.toml", &[]);
}

#[test]
fn timeslice_and_mig() {
    check("timeslice", "scenarios/timeslice-vs-mig.toml", &[]);
    check(
        "mig",
        "scenarios/timeslice-vs-mig.toml",
        &["node_pools.a100.sharing={ strategy = \"mig\", layout = [\"3g.20gb\", \"3g.20gb\"] }"],
    );
}

#[test]
fn keda_queue() {
    check("keda-queue", "scenarios/keda-queue.toml", &[]);
}

#[test]
fn diurnal_cost() {
    check("diurnal-cost", "scenarios/diurnal-cost.toml", &[]);
}

#[test]
fn mmc_oracle() {
    check("mmc", "scenarios/oracles/mmc.toml", &[]);
}
