//! `lab deploy` as people call it: the files it writes and says it wrote,
//! refusals with exit 2 and the key, re-rendering into the same folder, and
//! never overwriting a file it did not write.

mod common;

use common::{lab, stderr};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn renders_one_file_per_kind_with_a_kustomization() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("spike");
    let o = lab(&[
        "deploy",
        "scenarios/spike.toml",
        "--render",
        out_dir.to_str().unwrap(),
        "--image",
        "lab:9.9.9-abc-cpu",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("raw mode"),
        "spike's HPA on a Pods metric needs raw mode:\n{text}"
    );
    assert!(text.contains("kubectl apply -k"), "{text}");
    for f in [
        "kustomization.yaml",
        "inferenceservice.yaml",
        "horizontalpodautoscaler.yaml",
        "servingruntime.yaml",
    ] {
        assert!(out_dir.join(f).is_file(), "{f} missing; stdout:\n{text}");
        assert!(text.contains(f), "{f} not listed:\n{text}");
    }
    let rt = std::fs::read_to_string(out_dir.join("servingruntime.yaml")).unwrap();
    assert!(rt.contains("image: lab:9.9.9-abc-cpu"), "{rt}");
}

#[test]
fn a_setting_the_mode_cannot_hold_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let o = lab(&[
        "deploy",
        "scenarios/spike.toml",
        "--render",
        dir.path().to_str().unwrap(),
        "--mode",
        "serverless",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("services.resnet.autoscaler.hpa.metrics"),
        "{err}"
    );
    assert!(err.contains("--mode raw"), "the fix is named:\n{err}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing is written on refusal"
    );
}

#[test]
fn latest_is_refused_as_an_image_tag() {
    let dir = tempfile::tempdir().unwrap();
    let o = lab(&[
        "deploy",
        "scenarios/spike.toml",
        "--render",
        dir.path().to_str().unwrap(),
        "--image",
        "lab:latest",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("latest"));
}

#[test]
fn rendering_again_replaces_its_own_files_and_keeps_others() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    // With a canary split there is an InferenceGraph; without, there must not be one left.
    let split = r#"services.detector.versions=[{ name = "v1", trafficPercent = 90 }, { name = "v2", trafficPercent = 10 }]"#;
    let o = lab(&[
        "deploy",
        "scenarios/steady-10k.toml",
        "--render",
        d,
        "--set",
        split,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(dir.path().join("inferencegraph.yaml").is_file());
    std::fs::write(dir.path().join("README.md"), "mine").unwrap();
    let o = lab(&["deploy", "scenarios/steady-10k.toml", "--render", d]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        !dir.path().join("inferencegraph.yaml").exists(),
        "a stale rendered file is removed"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("README.md")).unwrap(),
        "mine"
    );
    // A file of the same name that lab deploy did not write is never overwritten.
    std::fs::write(
        dir.path().join("namespace.yaml"),
        "apiVersion: v1\nkind: Namespace\n",
    )
    .unwrap();
    let o = lab(&["deploy", "scenarios/steady-10k.toml", "--render", d]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("was not written by lab deploy"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn json_output_lists_files_and_notes() {
    let dir = tempfile::tempdir().unwrap();
    let o = lab(&[
        "deploy",
        "scenarios/timeslice-vs-mig.toml",
        "--render",
        dir.path().to_str().unwrap(),
        "--json",
        "--storage-uri",
        "classifier=s3://m/c",
        "--storage-uri",
        "ranker=s3://m/r",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["namespace"], "lab-timeslice-vs-mig");
    let files: Vec<&str> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"cluster-config/configmap.yaml"),
        "{files:?}"
    );
    assert!(v["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("device-plugin.config")));
    let o = lab(&[
        "deploy",
        "scenarios/timeslice-vs-mig.toml",
        "--render",
        dir.path().to_str().unwrap(),
        "--storage-uri",
        "nosuch=s3://x",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no service `nosuch`"), "{}", stderr(&o));
}
