//! `lab check`'s building blocks: loading with clear errors, re-judging, and
//! the JUnit, Markdown and JSON outputs (JUnit checked by real consumers).

mod common;

use common::{spike_run, Spike};
use lab_reports::{junit, load_results, markdown, parse_results, verdict, ReportError, RunVerdict};
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn bad_files_are_named_with_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let e = load_results(&missing).unwrap_err();
    assert!(matches!(e, ReportError::Read { .. }));
    assert!(
        e.to_string().contains("nope.json") && e.to_string().contains("cannot read"),
        "{e}"
    );

    let truncated = write(
        dir.path(),
        "cut.json",
        "{\n  \"schema_version\": 1,\n  \"level\": ",
    );
    let e = load_results(&truncated).unwrap_err().to_string();
    assert!(
        e.contains("cut.json: not valid JSON") && e.contains("line 3, column"),
        "{e}"
    );

    let e = parse_results(Path::new("a.json"), "[1, 2]")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("a.json: not a lab results file: expected a JSON object"),
        "{e}"
    );

    let e = parse_results(Path::new("k6.json"), "{\"metrics\": {}}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("no `schema_version`"), "{e}");

    let e = parse_results(Path::new("new.json"), "{\"schema_version\": 99}").unwrap_err();
    assert!(matches!(e, ReportError::Version { found: 99, .. }), "{e}");

    // A real file with one field broken: the key path and the line are named.
    let good = serde_json::to_string_pretty(&spike_run(&Spike {
        duration_seconds: 60.0,
        ..Spike::default()
    }))
    .unwrap();
    let broken = good.replacen("\"arrived\":", "\"arrivd\":", 1);
    let e = parse_results(Path::new("r.json"), &broken)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("r.json: not a lab results file: at `summary.requests"),
        "{e}"
    );
    assert!(e.contains("arrivd") && e.contains("line "), "{e}");
    let r = parse_results(Path::new("r.json"), &good).unwrap();
    assert_eq!(r.scenario.name, "resnet-spike");
}

#[test]
fn verdict_is_rejudged_and_stale_ones_are_reported() {
    let mut r = spike_run(&Spike::default());
    let v = RunVerdict::judge("results.json", &r);
    assert!(!v.passed);
    assert_eq!(v.failures(), 2, "p99 and error rate: {:?}", r.slo);
    assert_eq!(v.changed().count(), 0);
    let text = v.to_text();
    assert!(text.contains("FAIL  p99 latency <= 250ms"), "{text}");
    assert!(text.contains("threshold ≤ 250 ms"), "{text}");
    assert!(text.contains("verdict: FAIL: 2 of 4 SLOs missed"), "{text}");

    // The file claims success; its own figures disagree.
    r.slo.iter_mut().for_each(|s| s.passed = true);
    let v = RunVerdict::judge("results.json", &r);
    assert!(!v.passed);
    assert_eq!(v.changed().count(), 2);
    assert!(v
        .to_text()
        .contains("was recorded as passed but its figures say failed"));

    // An SLO on a service the run does not have cannot pass.
    r.slo[3].service = Some("gone".into());
    let v = RunVerdict::judge("results.json", &r);
    assert_eq!(v.slos[3].observed_text(), "no data");
    assert_eq!(
        v.slos[3].slo.reason.as_deref(),
        Some("the results have no service `gone`")
    );
    assert!(!v.slos[3].slo.passed);

    let json = verdict::to_json(&[v]);
    assert_eq!(json["passed"], false);
    assert_eq!(json["runs"][0]["slos"][0]["metric"], "p99");
    assert_eq!(json["runs"][0]["slos"][0]["recorded_passed"], true);
}

#[test]
fn markdown_summary_is_a_table_per_run() {
    let fail = RunVerdict::judge("a|b.json", &spike_run(&Spike::default()));
    let pass = RunVerdict::judge(
        "ok.json",
        &spike_run(&Spike {
            spike_factor: 1.0,
            p99_slo_seconds: 2.0,
            ..Spike::default()
        }),
    );
    let md = markdown::render(&[fail, pass]);
    assert!(
        md.contains("### ❌ resnet-spike (sim): FAIL: 2 of 4 SLOs missed"),
        "{md}"
    );
    assert!(
        md.contains("### ✅ resnet-spike (sim): PASS: all 4 SLOs met"),
        "{md}"
    );
    assert!(
        md.contains("| ❌ **fail** | p99 latency <= 250ms | overall |"),
        "{md}"
    );
    assert!(md.contains("a\\|b.json"), "pipes escaped: {md}");
    // Every table row has the same number of cells as the header.
    for line in md.lines().filter(|l| l.starts_with('|')) {
        assert_eq!(line.replace("\\|", "").matches('|').count(), 6, "{line}");
    }
}

#[test]
fn junit_is_schema_valid_and_read_by_junitparser() {
    let fail = spike_run(&Spike::default());
    let mut pass = spike_run(&Spike {
        spike_factor: 1.0,
        p99_slo_seconds: 2.0,
        name: "steady & calm <ok>".into(),
        ..Spike::default()
    });
    pass.wall_clock.host = String::new();
    let runs = [
        RunVerdict::judge("runs/spike.json", &fail),
        RunVerdict::judge("runs/steady.json", &pass),
    ];
    let xml = junit::render(&runs);
    assert!(
        xml.contains("<failure type=\"slo\" message=\"observed "),
        "{xml}"
    );

    let seen = common::junit_as_ci_reads_it(&xml);
    let suites = seen["suites"].as_array().unwrap();
    assert_eq!(suites.len(), 2, "one testsuite per run");
    assert_eq!(suites[0]["name"], "resnet-spike (sim)");
    assert_eq!(suites[0]["tests"], 4);
    assert_eq!(suites[0]["failures"], 2);
    assert_eq!(suites[1]["name"], "steady & calm <ok> (sim)");
    assert_eq!(suites[1]["failures"], 0);
    let cases = suites[0]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4, "one testcase per SLO");
    let p99 = &cases[0];
    assert_eq!(p99["name"], "p99 latency <= 250ms");
    assert_eq!(p99["passed"], false);
    assert_eq!(p99["type"], "slo");
    let msg = p99["message"].as_str().unwrap();
    assert!(
        msg.starts_with("observed ") && msg.ends_with("threshold <= 250 ms"),
        "{msg}"
    );
    assert!(
        msg.contains(" s,") || msg.contains(" ms,"),
        "observed has a unit: {msg}"
    );
    assert_eq!(cases[2]["passed"], true, "monthly cost passes");
    assert!(cases
        .iter()
        .all(|c| c["classname"] == "lab.slo.resnet-spike.sim"));
}
