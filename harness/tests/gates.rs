//! CI gates through the `lab` binary: what was not measured never passes.

mod common;
use common::lab;

use std::path::Path;

const MIG_7G: &str = r#"node_pools.a100.sharing={ strategy = "mig", layout = ["7g.40gb"] }"#;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn short_mig_run(out: &Path) -> std::process::Output {
    lab(&[
        "run",
        "scenarios/timeslice-vs-mig.toml",
        "--set",
        MIG_7G,
        "--set",
        "run.duration=3m",
        "--set",
        "traffic.0.phases.0.duration=3m",
        "--set",
        "traffic.1.phases.0.duration=3m",
        "--no-report",
        "--out",
        out.to_str().unwrap(),
    ])
}

#[test]
fn a_service_with_no_schedulable_pod_fails_its_slo_with_no_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mig");
    let o = short_mig_run(&out);
    let text = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("NO DATA p99 latency <= 50ms (ranker)"),
        "{text}"
    );
    assert!(
        text.contains("[unschedulable]") && text.contains("`ranker`"),
        "{text}"
    );

    let results = out.join("results.json").display().to_string();
    let junit = dir.path().join("junit.xml").display().to_string();
    let o = lab(&["check", &results, "--junit", &junit]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("NO DATA"), "{}", stdout(&o));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<failure type=\"no_data\""), "{xml}");
    // Warnings may be allowed; missing data may not.
    let o = lab(&["check", &results, "--allow-warnings"]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
}

#[test]
fn check_fails_an_incomplete_run_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = lab(&[
        "run",
        "scenarios/oracles/mmc.toml",
        "--set",
        "run.duration=2m",
        "--set",
        "traffic.0.phases.0.duration=2m",
        "--no-report",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let path = out.join("results.json");
    // As an interrupted run writes it.
    let mut r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    r["complete"] = false.into();
    r["run"]["end_seconds"] = 61.0.into();
    std::fs::write(&path, serde_json::to_string(&r).unwrap()).unwrap();
    let file = path.display().to_string();

    let o = lab(&["check", &file]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("verdict: FAIL: the run is incomplete"),
        "{}",
        stdout(&o)
    );
    let o = lab(&["check", &file, "--allow-incomplete"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}
