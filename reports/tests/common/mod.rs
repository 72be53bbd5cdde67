//! The fixtures module compiled into each test, so tests need no feature flag.
#![allow(dead_code)]

#[path = "../../src/fixtures.rs"]
mod fixtures;
pub use fixtures::*;

/// JUnit XML as CI reads it: validated against the Ant schema and parsed by
/// junitparser (`junit_consumer.py`), which prints what it saw as JSON.
pub fn junit_as_ci_reads_it(xml: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("junit.xml");
    std::fs::write(&report, xml).unwrap();
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let out =
        std::process::Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
            .arg(here.join("junit_consumer.py"))
            .arg(&report)
            .arg(here.join("data/junit-ant.xsd"))
            .output()
            .expect("python3 runs (install the test tools: scripts/install-test-deps.sh)");
    assert!(
        out.status.success(),
        "JUnit XML rejected (or xmlschema/junitparser missing: scripts/install-test-deps.sh):\n{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Two runs labelled by their default `--set` labels, the two MIG layouts of
/// the README's comparison (60-80 characters each).
pub fn mig_layout_runs() -> (lab_results::Results, lab_results::Results) {
    let layout = |l: &str| {
        spike_run(&Spike {
            name: "timeslice-vs-mig".into(),
            overrides: vec![format!(
                "node_pools.a100.sharing={{ strategy = \"mig\", layout = [{l}] }}"
            )],
            ..Spike::default()
        })
    };
    (layout("\"3g.20gb\", \"3g.20gb\""), layout("\"7g.40gb\""))
}
