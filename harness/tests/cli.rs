//! The `lab` binary as users meet it: exit codes, error messages, files written.

mod common;
use common::{lab, repo, stderr};

use std::path::Path;
use std::process::Command;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

const GOOD: &str = include_str!("../../scenarios/oracles/mmc.toml");

#[test]
fn every_example_scenario_validates() {
    for f in [
        "scenarios/spike.toml",
        "scenarios/steady-10k.toml",
        "scenarios/scale-to-zero.toml",
        "scenarios/timeslice-vs-mig.toml",
        "scenarios/keda-queue.toml",
        "scenarios/diurnal-cost.toml",
        "scenarios/oracles/mmc.toml",
    ] {
        let o = lab(&["validate", f]);
        assert_eq!(o.status.code(), Some(0), "{f}: {}", stderr(&o));
    }
}

#[test]
fn misspelled_key_names_file_line_key_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "typo.toml",
        &GOOD.replace("maxReplicas = 1", "maxReplica = 1"),
    );
    let o = lab(&["validate", &f]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    let line = GOOD
        .lines()
        .position(|l| l.starts_with("maxReplicas"))
        .unwrap()
        + 1;
    assert!(e.contains(&format!("typo.toml:{line}:")), "{e}");
    assert!(e.contains("services[0].maxReplica"), "{e}");
    assert!(e.contains("did you mean `maxReplicas`?"), "{e}");
}

#[test]
fn wrong_value_type_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "t.toml",
        &GOOD.replace(
            "duration = \"10m\"\nwarmup",
            "duration = \"ten minutes\"\nwarmup",
        ),
    );
    let o = lab(&["validate", &f]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("t.toml:10:12") && e.contains("run.duration") && e.contains("is not a duration"),
        "{e}"
    );
}

#[test]
fn semantic_problems_are_reported_together() {
    let text = r#"
name = "bad"
[[node_pools]]
name = "a100"
gpu = "A100-40GB"
gpus_per_node = 1
price_per_hour = 3
max_nodes = 2
sharing = { strategy = "mig", layout = ["4g.20gb", "4g.20gb"] }
[[services]]
name = "m"
minReplicas = 5
maxReplicas = 2
resources = { "nvidia.com/mig-1g.5gb" = 1 }
batching = { max_batch_size = 64 }
versions = [{ name = "v1", trafficPercent = 80 }, { name = "v2", trafficPercent = 30 }]
[[services.latency]]
gpu = "A100-40GB"
batch_latency = { "1" = "2ms", "8" = "6ms" }
[[traffic]]
phases = [{ kind = "constant", rate = 10, duration = "1m" }]
"#;
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "bad.toml", text);
    let o = lab(&["validate", &f]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    for expected in [
        "maxReplicas 2 is below minReplicas 5",
        "holds at most 1 instance(s) of 4g.20gb",
        "sums to 110, not 100",
        "no node pool offers nvidia.com/mig-1g.5gb",
    ] {
        assert!(e.contains(expected), "missing `{expected}` in:\n{e}");
    }
    assert!(e.contains("problems in the scenario"), "{e}");
}

#[test]
fn batch_larger_than_the_profile_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "b.toml",
        &GOOD.replace("max_batch_size = 1", "max_batch_size = 4"),
    );
    let o = lab(&["validate", &f]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("exceed the profile"), "{}", stderr(&o));
}

#[test]
fn missing_file_and_bad_set_are_bad_input() {
    let o = lab(&["run", "no/such.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no/such.toml"), "{}", stderr(&o));
    let o = lab(&[
        "validate",
        "scenarios/oracles/mmc.toml",
        "--set",
        "services.9.minReplicas=1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("none is `9`"), "{}", stderr(&o));
    let o = lab(&["run", "scenarios/oracles/mmc.toml", "--frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn run_writes_results_and_exit_code_follows_the_slos() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pass");
    let shorter = [
        "--set",
        "run.duration=\"1m\"",
        "--set",
        "traffic.0.phases.0.duration=\"1m\"",
    ];
    let mut args = vec![
        "run",
        "scenarios/oracles/mmc.toml",
        "--out",
        out.to_str().unwrap(),
        "--no-report",
    ];
    args.extend(shorter);
    args.extend(["--set", "slo=[{ metric = \"p99\", max = \"1s\" }]"]);
    let o = lab(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(out.join("results.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["level"], "sim");
    assert_eq!(v["complete"], true);
    assert_eq!(v["slo"][0]["passed"], true);
    assert!(String::from_utf8_lossy(&o.stdout).contains("PASS p99 latency <= 1s"));

    let fail = dir.path().join("fail");
    let mut args = vec![
        "run",
        "scenarios/oracles/mmc.toml",
        "--out",
        fail.to_str().unwrap(),
        "--json",
        "--no-report",
    ];
    args.extend(shorter);
    args.extend(["--set", "slo=[{ metric = \"p99\", max = \"1ms\" }]"]);
    let o = lab(&args);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("--json prints JSON");
    assert_eq!(v["slo"][0]["passed"], false);
}

#[test]
fn results_validate_against_the_committed_schema() {
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("results/results.schema.json")).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r");
    let o = lab(&[
        "run",
        "scenarios/scale-to-zero.toml",
        "--out",
        out.to_str().unwrap(),
        "--no-report",
    ]);
    assert!(
        matches!(o.status.code(), Some(0) | Some(1)),
        "{}",
        stderr(&o)
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[test]
fn ctrl_c_writes_partial_results_and_exits_130() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("partial");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args([
            "run",
            "scenarios/diurnal-cost.toml",
            "--no-report",
            "--progress",
            "always",
            "--out",
        ])
        .arg(&out)
        .current_dir(repo())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The first progress line means the run is under way with its handler installed.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().expect("a progress line").unwrap();
    assert!(first.contains("simulated"), "{first}");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(130));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(v["complete"], false);
    assert!(
        v["run"]["end_seconds"].as_f64().unwrap() < v["run"]["duration_seconds"].as_f64().unwrap()
    );
    let req = &v["summary"]["requests"];
    assert_eq!(
        req["arrived"].as_u64().unwrap(),
        req["completed"].as_u64().unwrap()
            + req["failed"].as_u64().unwrap()
            + req["in_flight"].as_u64().unwrap()
    );
}

#[test]
fn run_writes_a_report_beside_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("with-report");
    let o = lab(&[
        "run",
        "scenarios/oracles/mmc.toml",
        "--out",
        out.to_str().unwrap(),
        "--set",
        "run.duration=\"30s\"",
        "--set",
        "traffic.0.phases.0.duration=\"30s\"",
        "--set",
        "run.warmup=\"5s\"",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html written");
    assert!(
        html.contains("<svg") && html.contains("mmc"),
        "report lacks charts"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("report.html"));
}
