//! Reports of real simulator runs of the example scenarios (the quick ones; a
//! simulated day takes minutes in a debug build).

use lab_results::Results;
use std::path::Path;

fn simulate(name: &str, overrides: &[&str]) -> Results {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../scenarios/{name}.toml"));
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let scenario = lab_scenario::load(&path, &overrides).unwrap_or_else(|e| panic!("{name}: {e}"));
    let out = lab_sim::simulate(&scenario, scenario.run.seed, &mut |_| {
        lab_sim::Control::Continue
    });
    let mut r = out.results;
    r.scenario.name = scenario.name.clone();
    r.scenario.overrides = overrides;
    r
}

fn chart<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"chart-{id}\""))
        .unwrap_or_else(|| panic!("chart `{id}` missing"));
    &html[start..start + html[start..].find("</figure>").unwrap()]
}

fn check_report(name: &str, r: &Results) {
    let html = lab_reports::render_html(&[r]).unwrap();
    assert!(!html.contains("<script") && !html.contains("NaN"), "{name}");
    let verdict = if r.passed() { "pass" } else { "fail" };
    assert!(
        html.contains(&format!("data-verdict=\"{verdict}\"")),
        "{name}: verdict {verdict}"
    );
    assert_eq!(
        lab_reports::RunVerdict::judge(name, r).passed,
        r.passed(),
        "{name}: lab check agrees with the simulator"
    );
    let mut ids = vec![
        "traffic".to_string(),
        "latency".into(),
        "queue".into(),
        "nodes".into(),
        "gpu".into(),
        "cost".into(),
    ];
    ids.extend(r.services.iter().map(|s| format!("replicas-{}", s.name)));
    for id in &ids {
        let fig = chart(&html, id);
        assert!(
            fig.contains("<svg class=\"chart\""),
            "{name}: chart `{id}` drawn"
        );
        assert!(fig.contains("<polyline"), "{name}: chart `{id}` has lines");
    }
    assert!(html.len() < 1_000_000, "{name}: {} bytes", html.len());
}

#[test]
fn example_scenarios_render() {
    for name in ["spike", "scale-to-zero", "keda-queue"] {
        let r = simulate(name, &[]);
        assert!(!r.timeseries.is_empty(), "{name} has a time series");
        check_report(name, &r);
    }
}

#[test]
fn time_slicing_against_mig_compares() {
    let sliced = simulate("timeslice-vs-mig", &[]);
    let mig = simulate(
        "timeslice-vs-mig",
        &["node_pools.a100.sharing={ strategy = \"mig\", layout = [\"3g.20gb\", \"3g.20gb\"] }"],
    );
    check_report("timeslice-vs-mig", &sliced);
    let labels = lab_reports::auto_labels(&[&sliced, &mig]);
    assert_eq!(labels[0], "no overrides");
    assert!(
        labels[1].starts_with("node_pools.a100.sharing="),
        "{labels:?}"
    );
    let html = lab_reports::render_html(&[&sliced, &mig]).unwrap();
    assert!(html.contains("id=\"differences\""));
    for id in [
        "traffic",
        "latency",
        "replicas-classifier",
        "replicas-ranker",
        "queue",
        "nodes",
        "gpu",
        "cost",
    ] {
        assert!(
            chart(&html, id).matches("<polyline").count() >= 2,
            "`{id}` overlays both runs"
        );
    }
}
