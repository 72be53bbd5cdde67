//! `lab compare A.json B.json`: its outputs and every exit code it promises.

mod common;

use common::{repo, stderr};
use lab_reports::fixtures::{spike_run, Spike};
use lab_results::{Level, Results};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn lab(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("lab runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A spike-shaped run whose echoed scenario has an HPA for resnet50.
fn sim() -> Results {
    let mut r = spike_run(&Spike {
        duration_seconds: 900.0,
        ..Spike::default()
    });
    r.scenario.config = serde_json::json!({
        "name": r.scenario.name,
        "services": [
            {"name": "resnet50", "autoscaler": {"hpa": {"controller": {"syncPeriod": "15s"}}}},
            {"name": "bert-small", "autoscaler": {}}
        ]
    });
    r
}

fn local(a: &Results) -> Results {
    let mut b = a.clone();
    b.level = Level::Local;
    b
}

fn write(dir: &Path, name: &str, r: &Results) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string(r).unwrap()).unwrap();
    p
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

#[test]
fn equal_runs_without_bounds_exit_0_with_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let a = sim();
    write(dir.path(), "a.json", &a);
    write(dir.path(), "b.json", &local(&a));
    let o = lab(&["compare", "a.json", "b.json"], dir.path());
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "a: resnet-spike at level sim",
        "b: resnet-spike at level local",
        "p99 latency",
        "ready replicas, lag of b",
        "scaling events",
    ] {
        assert!(out.contains(want), "missing {want:?}:\n{out}");
    }
    assert!(!out.contains("fidelity bounds"), "no bounds declared");
}

#[test]
fn a_broken_bound_exits_1_and_one_that_holds_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = sim();
    a.scenario.config["fidelity"] = serde_json::json!({"p99": 0.10, "cold_start_count": 0});
    let mut b = local(&a);
    b.summary.latency_seconds.p99 *= 1.3;
    write(dir.path(), "a.json", &a);
    write(dir.path(), "b.json", &b);
    let o = lab(&["compare", "a.json", "b.json"], dir.path());
    assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("FAIL: 1 of 4 fidelity bounds broken"),
        "{}",
        stdout(&o)
    );

    let o = lab(&["compare", "--json", "a.json", "b.json"], dir.path());
    assert_eq!(code(&o), 1);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["passed"], false);
    let p99 = v["bounds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["key"] == "p99" && b.get("service").is_none())
        .unwrap();
    assert_eq!(p99["passed"], false);
    assert!((p99["observed"].as_f64().unwrap() - 0.3).abs() < 1e-9);
    assert!(
        (v["comparison"]["overall"]["p99_seconds"]["relative"]
            .as_f64()
            .unwrap()
            - 0.3)
            .abs()
            < 1e-9
    );

    // The slack the machine needs, stated in the scenario, lets it hold.
    a.scenario.config["fidelity"]["slack"] = 3.0.into();
    write(dir.path(), "a.json", &a);
    let o = lab(&["compare", "a.json", "b.json"], dir.path());
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("PASS: every fidelity bound holds (4)"));
}

#[test]
fn runs_of_different_scenarios_are_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let a = sim();
    let mut b = local(&a);
    b.scenario.name = "another".into();
    write(dir.path(), "a.json", &a);
    write(dir.path(), "b.json", &b);
    let o = lab(&["compare", "a.json", "b.json"], dir.path());
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("different scenarios"), "{}", stderr(&o));
    assert!(o.stdout.is_empty());

    let mut b = local(&a);
    b.scenario.config["services"][0]["autoscaler"]["hpa"]["controller"]["syncPeriod"] =
        "30s".into();
    write(dir.path(), "b.json", &b);
    let o = lab(&["compare", "a.json", "b.json"], dir.path());
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("services[resnet50].autoscaler.hpa.controller.syncPeriod"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_input_exits_2_and_an_unwritable_page_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let a = sim();
    write(dir.path(), "a.json", &a);
    write(dir.path(), "b.json", &local(&a));
    std::fs::write(dir.path().join("broken.json"), "{\"schema_version\": 2,").unwrap();

    let o = lab(&["compare", "a.json", "missing.json"], dir.path());
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("missing.json"), "{}", stderr(&o));
    let o = lab(&["compare", "a.json", "broken.json"], dir.path());
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("not valid JSON"), "{}", stderr(&o));
    let o = lab(&["compare", "a.json"], dir.path());
    assert_eq!(code(&o), 2, "a missing argument");
    let o = lab(
        &["compare", "a.json", "b.json", "--event-window", "soon"],
        dir.path(),
    );
    assert_eq!(code(&o), 2);

    // Bounds that do not read as bounds.
    let mut bad = a.clone();
    bad.scenario.config["fidelity"] = serde_json::json!({"p90": 0.1});
    write(dir.path(), "bad.json", &bad);
    let o = lab(&["compare", "bad.json", "b.json"], dir.path());
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("unknown field `p90`"), "{}", stderr(&o));

    let o = lab(
        &["compare", "a.json", "b.json", "-o", "no/such/folder/c.html"],
        dir.path(),
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no/such/folder/c.html"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_page_overlays_both_runs_and_adds_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = sim();
    a.scenario.config["fidelity"] = serde_json::json!({"p99": 0.10});
    let mut b = local(&a);
    b.summary.latency_seconds.p99 *= 1.3;
    write(dir.path(), "a.json", &a);
    write(dir.path(), "b.json", &b);
    let o = lab(&["compare", "a.json", "b.json", "-o", "c.html"], dir.path());
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let html = std::fs::read_to_string(dir.path().join("c.html")).unwrap();
    for want in [
        "Over time, overlaid",
        "<section id=\"fidelity\">",
        "Error per metric",
        "<section id=\"fidelity-bounds\">",
        "FAIL: 1 of 3 bounds broken.",
        "a · sim",
        "b · local",
        "+30.0 %",
    ] {
        assert!(html.contains(want), "missing {want:?}");
    }
}

#[test]
fn help_lists_the_exit_codes() {
    let o = lab(&["compare", "--help"], &repo());
    assert_eq!(code(&o), 0);
    let h = stdout(&o);
    for want in [
        "Exit codes:",
        "1    a fidelity bound is broken",
        "--event-window",
    ] {
        assert!(h.contains(want), "missing {want:?}:\n{h}");
    }
}

/// Two real simulator runs of one scenario, one with a --set the other lacks
/// and a different seed: compared (the override and the seed are allowed),
/// every figure present.
#[test]
fn two_real_runs_differing_by_an_override_compare() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = repo().join("scenarios/timeslice-vs-mig.toml");
    let run = |out: &str, extra: &[&str]| {
        let o = Command::new(env!("CARGO_BIN_EXE_lab"))
            .arg("run")
            .arg(&scenario)
            .args(["--no-report", "--out", out])
            .args([
                "--set",
                "run.duration=\"30s\"",
                "--set",
                "run.warmup=\"5s\"",
            ])
            .args(extra)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "lab run: {}",
            stderr(&o)
        );
    };
    run("a", &[]);
    run(
        "b",
        &["--seed", "9", "--set", "services[ranker].maxReplicas=5"],
    );
    let o = lab(
        &["compare", "--json", "a/results.json", "b/results.json"],
        dir.path(),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &v["comparison"];
    let names: Vec<&str> = c["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["classifier", "ranker"]);
    assert!(c["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("seeds differ")));

    // Without the override on the command line, the same difference refuses.
    let mut b: Results =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("b/results.json")).unwrap())
            .unwrap();
    b.scenario.overrides.retain(|o| !o.contains("maxReplicas"));
    write(dir.path(), "b2.json", &b);
    let o = lab(&["compare", "a/results.json", "b2.json"], dir.path());
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    assert!(
        stderr(&o).contains("services[ranker].maxReplicas"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn lab_check_judges_a_comparison_by_its_bounds_with_a_junit_testcase_each() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = sim();
    a.scenario.config["fidelity"] = serde_json::json!({"p99": 0.10, "cost": 0.02});
    let mut b = local(&a);
    b.summary.latency_seconds.p99 *= 1.3;
    write(dir.path(), "a.json", &a);
    write(dir.path(), "b.json", &b);
    let o = lab(&["compare", "--json", "a.json", "b.json"], dir.path());
    std::fs::write(dir.path().join("comparison.json"), &o.stdout).unwrap();

    let o = lab(
        &["check", "comparison.json", "--junit", "junit.xml"],
        dir.path(),
    );
    assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("FAIL p99 (overall)"), "{}", stdout(&o));
    assert!(stdout(&o).contains("PASS cost (overall)"), "{}", stdout(&o));
    let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    let cases = xml.matches("<testcase ").count();
    let bounds: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("comparison.json")).unwrap())
            .unwrap();
    assert_eq!(cases, bounds["bounds"].as_array().unwrap().len(), "{xml}");
    assert!(xml.contains("package=\"lab.fidelity\""), "{xml}");
    assert!(
        xml.contains("<failure type=\"fidelity\" message=\"p99 overall: observed 0.3"),
        "{xml}"
    );

    // A comparison whose bounds hold passes; beside a results file whose own
    // SLOs fail (the fixture's do), the check still fails.
    a.scenario.config["fidelity"]["slack"] = 4.0.into();
    write(dir.path(), "a.json", &a);
    let o = lab(&["compare", "--json", "a.json", "b.json"], dir.path());
    std::fs::write(dir.path().join("comparison.json"), &o.stdout).unwrap();
    let o = lab(&["check", "comparison.json"], dir.path());
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let o = lab(&["check", "comparison.json", "a.json"], dir.path());
    assert_eq!(code(&o), 1, "{}\n{}", stdout(&o), stderr(&o));
}
