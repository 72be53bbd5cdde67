//! Every rendered manifest of every example scenario, in each mode it
//! renders in, against the upstream schemas: the custom resources (KServe,
//! KEDA, Prometheus Operator) against their CRDs with unknown fields refused
//! (`../shared/crds/validate.py`), the built-in kinds against Kubernetes' own
//! OpenAPI schemas in strict mode (`kubernetes-validate`). Every object must
//! be checked by one of the two. Needs scripts/install-test-deps.sh.

mod common;

use common::{render_example, renderable_examples, write};
use lab_deploy::Mode;
use std::path::{Path, PathBuf};

use std::process::Command;

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// (file, kind, name) of every object in the files.
fn objects(files: &[PathBuf]) -> Vec<(PathBuf, String, String)> {
    let mut out = Vec::new();
    for f in files.iter().filter(|f| !f.ends_with("kustomization.yaml")) {
        let text = std::fs::read_to_string(f).unwrap();
        for d in serde_saphyr::from_multiple::<serde_json::Value>(&text).unwrap() {
            if d.is_null() {
                continue;
            }
            out.push((
                f.clone(),
                d["kind"].as_str().unwrap().to_string(),
                d["metadata"]["name"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}; run scripts/install-test-deps.sh"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("No module named"),
        "{what} is missing (scripts/install-test-deps.sh installs it):\n{text}"
    );
    text
}

/// Both validators, once each over every file (they take seconds to start).
fn validate(files: &[PathBuf]) {
    let manifests: Vec<&PathBuf> = files
        .iter()
        .filter(|f| !f.ends_with("kustomization.yaml"))
        .collect();
    let validator = validator();
    let crds = match &validator {
        Some(v) => run(
            Command::new(python()).arg(v).args(&manifests),
            "the CRD validator (python3 with jsonschema and pyyaml)",
        ),
        None => String::new(),
    };
    assert!(
        !crds.contains("INVALID"),
        "custom resources do not match their CRDs:\n{crds}"
    );
    let builtins = run(
        Command::new(python())
            .args(["-m", "kubernetes_validate", "--strict"])
            .args(&manifests),
        "kubernetes-validate",
    );
    assert!(
        !builtins.contains("ERROR"),
        "built-in objects do not match Kubernetes' schemas:\n{builtins}"
    );
    for (file, kind, name) in objects(files) {
        let shown = file.display().to_string();
        let by_crd = crds.lines().any(|l| {
            l.starts_with("ok ") && l.contains(&shown) && l.contains(&format!("{kind} {name}"))
        });
        let by_k8s = builtins.lines().any(|l| {
            l.contains(&shown)
                && l.contains("passed")
                && l.contains(&format!("{}/{name} ", kind.to_lowercase()))
        });
        let checkable = validator.is_some() || BUILT_IN.contains(&kind.as_str());
        assert!(
            by_crd || by_k8s || !checkable,
            "{kind} {name} in {shown} was checked by neither validator:\n{crds}\n{builtins}"
        );
    }
}

#[test]
fn every_rendered_manifest_matches_the_upstream_schemas() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cases: Vec<(String, lab_deploy::Rendered)> = renderable_examples()
        .into_iter()
        .map(|(name, mode)| {
            (
                format!("{name}-{}", mode.as_str()),
                render_example(name, mode, &[], &[]),
            )
        })
        .collect();
    // The real-GPU forms: time-slicing, MIG single and mixed, a canary graph.
    let storage = [("classifier", "s3://m/c"), ("ranker", "s3://m/r")];
    let mig = r#"node_pools.a100.sharing={ strategy = "mig", layout = ["3g.20gb", "3g.20gb"] }"#;
    cases.push((
        "ts-real".into(),
        render_example("timeslice-vs-mig", Mode::Raw, &[], &storage),
    ));
    cases.push((
        "mig-single".into(),
        render_example("timeslice-vs-mig", Mode::Serverless, &[mig], &storage),
    ));
    cases.push((
        "mig-mixed".into(),
        render_example(
            "timeslice-vs-mig",
            Mode::Raw,
            &[
                mig,
                r#"services.classifier.resources={ cpu = "4", memory = "16Gi", "nvidia.com/mig-3g.20gb" = 1 }"#,
                r#"services.ranker.resources={ cpu = "4", memory = "16Gi", "nvidia.com/mig-3g.20gb" = 1 }"#,
            ],
            &storage,
        ),
    ));
    cases.push((
        "canary".into(),
        render_example(
            "steady-10k",
            Mode::Serverless,
            &[r#"services.detector.versions=[{ name = "v1", trafficPercent = 80 }, { name = "v2", trafficPercent = 20 }]"#],
            &[("detector", "gs://m/d")],
        ),
    ));
    cases.push((
        "keda".into(),
        render_example("keda-queue", Mode::Raw, &[common::KEDA_PROMETHEUS], &[]),
    ));
    cases.push((
        "kpa-cluster-keys".into(),
        render_example(
            "scale-to-zero",
            Mode::Serverless,
            &[r#"services.sentiment.autoscaler.kpa.scale-to-zero-grace-period="45s""#],
            &[],
        ),
    ));
    let mut files = Vec::new();
    for (name, r) in &cases {
        files.extend(write(r, &tmp.path().join(name)));
    }
    // The cluster level's load Job.
    let spike = common::example("spike", &[]);
    let job = lab_deploy::load_job(
        &spike,
        &lab_deploy::Options::new(Mode::Raw, "lab:t"),
        "lab-spike",
        3,
        "name = \"spike\"\n",
        &[],
    )
    .unwrap();
    let refs: Vec<&serde_json::Value> = job.iter().collect();
    let path = tmp.path().join("load-job.yaml");
    let text: String = refs
        .iter()
        .map(|v| format!("---\n{}", serde_saphyr::to_string(v).unwrap()))
        .collect();
    std::fs::write(&path, text).unwrap();
    files.push(path);
    // The rights the harness asks for.
    files.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("rbac/lab-harness.yaml"));
    let seen: std::collections::BTreeSet<String> =
        objects(&files).into_iter().map(|(_, k, _)| k).collect();
    for kind in [
        "Namespace",
        "PriorityClass",
        "ServiceAccount",
        "ConfigMap",
        "ServingRuntime",
        "InferenceService",
        "InferenceGraph",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "PodMonitor",
        "PrometheusRule",
        "Job",
    ] {
        assert!(seen.contains(kind), "no {kind} was rendered: {seen:?}");
    }
    validate(&files);
}

/// The validators catch what they are here for: a field the schema does not
/// have, in a custom and in a built-in kind.
#[test]
fn the_validators_refuse_an_unknown_field() {
    let tmp = tempfile::tempdir().unwrap();
    let r = render_example("spike", Mode::Raw, &[], &[]);
    for (file, from, to) in [
        (
            "inferenceservice.yaml",
            "    minReplicas: 2",
            "    minReplicas: 2\n    minReplica: 2",
        ),
        (
            "poddisruptionbudget.yaml",
            "  maxUnavailable: 1",
            "  maxUnavailable: 1\n  maxUnavailabel: 1",
        ),
    ] {
        let text = r.files[file].replacen(from, to, 1);
        assert_ne!(text, r.files[file], "{file} did not hold `{from}`");
        let path = tmp.path().join(file);
        std::fs::write(&path, text).unwrap();
        let crds = match validator() {
            Some(v) => run(
                Command::new(python()).arg(v).arg(&path),
                "the CRD validator",
            ),
            // Without the CRDs only the built-in kind's case can be judged.
            None if file == "inferenceservice.yaml" => continue,
            None => String::new(),
        };
        let builtins = run(
            Command::new(python())
                .args(["-m", "kubernetes_validate", "--strict"])
                .arg(&path),
            "kubernetes-validate",
        );
        assert!(
            crds.contains("INVALID") || builtins.contains("ERROR"),
            "{file}:\n{crds}\n{builtins}"
        );
    }
}

/// `../shared/crds/validate.py` beside the repository, where developers and CI
/// have the reference material; None (and the CRD half of the check skipped,
/// loudly) where it is absent.
fn validator() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/crds/validate.py");
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED the check against the upstream CRDs: {} is not there",
            path.display()
        );
        None
    }
}

/// Kinds Kubernetes' own schemas know; the rest are custom resources.
const BUILT_IN: &[&str] = &[
    "Namespace",
    "PriorityClass",
    "ServiceAccount",
    "ConfigMap",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "Job",
    "ClusterRole",
];
