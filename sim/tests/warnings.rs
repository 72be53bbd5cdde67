//! What makes a simulated answer suspect is recorded in `warnings` and fails
//! the SLOs it concerns: a gate never passes on figures the run did not have.

use lab_results::{Results, SloVerdict, WarningKind};
use std::path::Path;

fn run(file: &str, overrides: &[&str]) -> Results {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let s = lab_scenario::load(&root.join(file), &overrides).unwrap_or_else(|e| panic!("{e}"));
    lab_sim::simulate(&s, s.run.seed, &mut |_| lab_sim::Control::Continue).results
}

fn of_kind(r: &Results, kind: WarningKind) -> Vec<&lab_results::Warning> {
    r.warnings.iter().filter(|w| w.kind == kind).collect()
}

/// Shorter runs of the time-slicing example, same shape.
const SHORT: [&str; 3] = [
    "run.duration=4m",
    "traffic.0.phases.0.duration=4m",
    "traffic.1.phases.0.duration=4m",
];

#[test]
fn a_mig_layout_with_no_room_for_a_service_fails_it_with_no_data() {
    let mut o = SHORT.to_vec();
    o.push(r#"node_pools.a100.sharing={ strategy = "mig", layout = ["7g.40gb"] }"#);
    let r = run("scenarios/timeslice-vs-mig.toml", &o);
    let ranker = r
        .slo
        .iter()
        .find(|s| s.service.as_deref() == Some("ranker"));
    let ranker = ranker.expect("the example has a ranker SLO");
    assert_eq!(ranker.verdict(), SloVerdict::NoData, "{ranker:?}");
    assert!(!r.passed());
    let w = of_kind(&r, WarningKind::Unschedulable);
    assert_eq!(w.len(), 1, "{:?}", r.warnings);
    assert_eq!(w[0].service.as_deref(), Some("ranker"));
    for part in [
        "`ranker`",
        "pool `a100`",
        "max_nodes = 1",
        "7g.40gb",
        "nvidia.com/gpu",
    ] {
        assert!(w[0].message.contains(part), "{part}: {}", w[0].message);
    }
    assert_eq!(of_kind(&r, WarningKind::NoReadyReplica).len(), 1);
}

#[test]
fn the_examples_as_committed_have_no_warnings() {
    let r = run("scenarios/timeslice-vs-mig.toml", &SHORT);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert!(r.slo.iter().all(|s| s.verdict() != SloVerdict::NoData));
}

#[test]
fn traffic_that_ends_before_the_run_is_a_warning_that_fails_the_slos() {
    let mut o = SHORT.to_vec();
    o[0] = "run.duration=1h";
    let r = run("scenarios/timeslice-vs-mig.toml", &o);
    let w = of_kind(&r, WarningKind::TrafficEndsEarly);
    assert_eq!(w.len(), 1, "{:?}", r.warnings);
    assert!(w[0].message.contains("ends at 4m"), "{}", w[0].message);
    assert!(w[0].service.is_none());
    // The classifier's p99 is within its bound; the warning still fails it.
    let classifier = r
        .slo
        .iter()
        .find(|s| s.service.as_deref() == Some("classifier"))
        .unwrap();
    assert!(classifier.observed.unwrap() <= classifier.threshold);
    assert_eq!(classifier.verdict(), SloVerdict::Fail);
    assert!(classifier
        .reason
        .as_deref()
        .unwrap()
        .contains("--allow-warnings"));
}

#[test]
fn tenants_whose_models_overflow_a_shared_gpu_are_warned_about() {
    let mut o = SHORT.to_vec();
    o.push("services.ranker.modelMemory=36Gi");
    let r = run("scenarios/timeslice-vs-mig.toml", &o);
    let w = of_kind(&r, WarningKind::OomKilled);
    let services: Vec<_> = w.iter().filter_map(|w| w.service.as_deref()).collect();
    assert_eq!(services, ["classifier", "ranker"], "{:?}", r.warnings);
    assert!(w[0].message.contains("42.0 GiB") && w[0].message.contains("40.0 GiB"));
}

#[test]
fn a_percentile_judged_on_few_requests_fails() {
    let mut o = SHORT.to_vec();
    o.extend([
        "traffic.1.phases.0.rate=2",
        r#"slo.1.metric="p999""#,
        r#"slo.1.max="10s""#,
    ]);
    let r = run("scenarios/timeslice-vs-mig.toml", &o);
    let ranker = r
        .slo
        .iter()
        .find(|s| s.service.as_deref() == Some("ranker"))
        .unwrap();
    assert_eq!(ranker.verdict(), SloVerdict::Fail, "{ranker:?}");
    let w = of_kind(&r, WarningKind::TooFewSamples);
    assert_eq!(w.len(), 1, "{:?}", r.warnings);
    assert!(
        w[0].message.contains("needs at least 1000"),
        "{}",
        w[0].message
    );
}
