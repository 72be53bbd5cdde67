//! Loading example scenarios and reading rendered files back.

#![allow(dead_code)]

use lab_deploy::{Mode, Options, Rendered};
use lab_scenario::Scenario;
use serde_json::Value;
use std::path::PathBuf;

pub fn scenarios_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// An example scenario, loaded and checked as `lab deploy` loads it.
pub fn example(name: &str, overrides: &[&str]) -> Scenario {
    let path = scenarios_dir().join(format!("{name}.toml"));
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    lab_scenario::load_checked(&path, &overrides).unwrap_or_else(|e| panic!("{name}: {e}"))
}

pub fn render_example(
    name: &str,
    mode: Mode,
    overrides: &[&str],
    storage: &[(&str, &str)],
) -> Rendered {
    let sc = example(name, overrides);
    let mut opts = Options::new(mode, "lab:0.1.0-test-cpu");
    for (s, u) in storage {
        opts.storage_uris.insert(s.to_string(), u.to_string());
    }
    lab_deploy::render(&sc, &opts).unwrap_or_else(|e| panic!("{name} in {mode:?}: {e:?}"))
}

/// The objects of one rendered file.
pub fn docs(r: &Rendered, file: &str) -> Vec<Value> {
    let text = r
        .files
        .get(file)
        .unwrap_or_else(|| panic!("no {file} among {:?}", r.files.keys().collect::<Vec<_>>()));
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_else(|e| panic!("{file} does not read back: {e}\n{text}"))
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

/// The files holding objects (the kustomization's resources).
pub fn kinds(r: &Rendered) -> Vec<String> {
    r.files
        .keys()
        .filter(|f| !f.contains('/') && *f != "kustomization.yaml")
        .cloned()
        .collect()
}

/// Every example scenario with the modes it renders in.
pub fn renderable_examples() -> Vec<(&'static str, Mode)> {
    vec![
        ("spike", Mode::Raw),
        ("scale-to-zero", Mode::Serverless),
        ("steady-10k", Mode::Serverless),
        ("steady-10k", Mode::Raw),
        ("timeslice-vs-mig", Mode::Serverless),
        ("timeslice-vs-mig", Mode::Raw),
        ("diurnal-cost", Mode::Raw),
        ("fidelity-steady", Mode::Serverless),
        ("fidelity-steady", Mode::Raw),
        ("plan-10k", Mode::Serverless),
        ("plan-10k", Mode::Raw),
    ]
}

/// Writes the rendered files under `dir`, as `lab deploy` does.
pub fn write(r: &Rendered, dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (name, text) in &r.files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        out.push(path);
    }
    out
}

/// keda-queue's trigger as a `prometheus` one, which a cluster can run.
pub const KEDA_PROMETHEUS: &str = r#"services.embedder.autoscaler.keda.triggers=[{ type = "prometheus", signal = "queue_depth", metadata = { serverAddress = "http://127.0.0.1:9090", query = "sum(lab_predictor_queue_depth{model=\"embedder\"})", threshold = "2", activationThreshold = "1" } }]"#;
