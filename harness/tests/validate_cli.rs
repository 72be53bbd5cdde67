//! `lab validate --json`: the diagnostics as one JSON object for editors and CI
//! annotations, with the same exit codes as the text form.

mod common;

use common::{lab, repo, stderr};
use serde_json::Value;

fn json_of(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            stderr(o)
        )
    })
}

/// The 1-based line of the first line of `text` that starts with `prefix`.
fn line_of(text: &str, prefix: &str) -> u64 {
    text.lines().position(|l| l.starts_with(prefix)).unwrap() as u64 + 1
}

#[test]
fn every_problem_is_a_json_diagnostic_with_its_place_and_hint() {
    let good = std::fs::read_to_string(repo().join("scenarios/spike.toml")).unwrap();
    let bad = good.replacen("[run]\n", "[run]\nsed = 3\n", 1).replacen(
        "minReplicas = 2",
        "minReplicas = \"two\"",
        1,
    );
    assert_ne!(good, bad);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("two.toml");
    std::fs::write(&f, &bad).unwrap();
    let file = f.to_str().unwrap();

    let o = lab(&["validate", file, "--json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let v = json_of(&o);
    assert_eq!(v["ok"], false);
    assert_eq!(v["file"], file);
    let d = v["diagnostics"].as_array().unwrap();
    assert_eq!(d.len(), 2, "{v:#}");

    let sed = d.iter().find(|x| x["key"] == "run.sed").expect("run.sed");
    assert_eq!(sed["file"], file);
    assert_eq!(sed["line"], line_of(&bad, "sed = 3"));
    assert_eq!(sed["column"], 1);
    assert_eq!(sed["severity"], "error");
    assert_eq!(sed["hint"], "did you mean `seed`?");
    assert!(
        sed["message"]
            .as_str()
            .unwrap()
            .starts_with("unknown field `sed`"),
        "{sed}"
    );
    assert!(!sed["message"].as_str().unwrap().contains("did you mean"));

    let min = d
        .iter()
        .find(|x| x["key"] == "services[0].minReplicas")
        .expect("services[0].minReplicas");
    assert_eq!(min["line"], line_of(&bad, "minReplicas = \"two\""));
    assert_eq!(min["column"], "minReplicas = ".len() as u64 + 1);
    assert_eq!(min["hint"], Value::Null);

    // The text form reports the same problems, on standard error.
    let text = lab(&["validate", file]);
    assert_eq!(text.status.code(), Some(2));
    assert!(stderr(&text).contains("2 problems in the scenario"));
    assert!(text.stdout.is_empty());
}

#[test]
fn a_valid_scenario_is_ok_with_no_diagnostics() {
    let o = lab(&["validate", "scenarios/spike.toml", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json_of(&o);
    assert_eq!(v["ok"], true);
    assert_eq!(v["diagnostics"], serde_json::json!([]));
    assert_eq!(v["services"], 1);
}

#[test]
fn an_unreadable_file_and_a_bad_set_are_diagnostics_too() {
    let o = lab(&["validate", "scenarios/no-such-file.toml", "--json"]);
    assert_eq!(o.status.code(), Some(2));
    let d = &json_of(&o)["diagnostics"][0];
    assert_eq!(d["line"], Value::Null);
    assert!(
        d["message"].as_str().unwrap().contains("cannot read"),
        "{d}"
    );

    let o = lab(&[
        "validate",
        "scenarios/spike.toml",
        "--set",
        "services.0.minReplicas=lots",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let v = json_of(&o);
    let d = &v["diagnostics"][0];
    assert_eq!(d["severity"], "error");
    // A --set has no line in the file: the diagnostic names the override instead.
    assert_eq!(d["file"], "--set services.0.minReplicas=lots", "{v:#}");
    assert!(d["message"].as_str().unwrap().contains("integer"), "{v:#}");
}
