//! The scripts of deploy/ that need no Docker or cluster: install-stack.sh's
//! --dry-run prints every command, pinned, and runs none; the scripts refuse
//! `latest` and bad flags with exit 2; the kind config pins its node image and
//! has a GPU-like pool.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("deploy/ sits in the workspace")
        .to_path_buf()
}

/// Runs a script of deploy/ with stand-ins for kind, kubectl and helm first on
/// PATH, each of which leaves a mark if it is ever run.
fn run_script(script: &str, args: &[&str]) -> (std::process::Output, PathBuf, tempfile::TempDir) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("ran");
    for tool in ["kind", "kubectl", "helm", "docker", "cargo"] {
        let p = dir.path().join(tool);
        std::fs::write(
            &p,
            format!("#!/bin/sh\necho {tool} \"$@\" >> '{}'\n", mark.display()),
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(repo().join(script))
        .args(args)
        .env("PATH", path)
        .output()
        .expect("running the script");
    (out, mark, dir)
}

#[test]
fn install_stack_dry_run_prints_every_pinned_command_and_runs_none() {
    let image = "lab:0.1.0-0123456789ab-cpu";
    let (out, mark, _dir) = run_script(
        "deploy/install-stack.sh",
        &[
            "--dry-run",
            "--create-cluster",
            "--image",
            image,
            "--gpu",
            "operator",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !mark.exists(),
        "--dry-run ran: {}",
        std::fs::read_to_string(&mark).unwrap_or_default()
    );
    let commands: Vec<&str> = text.lines().filter(|l| l.starts_with("+ ")).collect();
    assert!(commands.len() >= 15, "{text}");
    let has = |needle: &str| commands.iter().any(|c| c.contains(needle));
    assert!(has("kind create cluster --name lab --config "), "{text}");
    assert!(
        has(&format!("kind load docker-image {image} --name lab")),
        "{text}"
    );
    for needle in [
        "cert-manager/releases/download/v",
        "knative/serving/releases/download/knative-v",
        "net-kourier/releases/download/knative-v",
        "kserve.controller.deploymentMode=Knative",
        "kedacore/keda --version ",
        "kube-prometheus-stack --version ",
        "nvidia/gpu-operator --version ",
    ] {
        assert!(has(needle), "no command with `{needle}`:\n{text}");
    }
    // Every chart and manifest is pinned, and nothing floats.
    for c in &commands {
        if c.contains(" upgrade --install ") {
            assert!(c.contains(" --version "), "unpinned chart: {c}");
        }
        assert!(!c.contains("latest"), "unpinned: {c}");
        if c.contains("kubectl") {
            assert!(
                c.contains("--context kind-lab"),
                "not aimed at the kind cluster: {c}"
            );
        }
    }

    let (out, _, _dir) = run_script("deploy/install-stack.sh", &["--dry-run", "--mode", "raw"]);
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success());
    assert!(
        !raw.contains("knative/serving") && !raw.contains("kourier.yaml"),
        "{raw}"
    );
    assert!(
        raw.contains("kserve.controller.deploymentMode=Standard"),
        "{raw}"
    );
    assert!(
        !raw.contains("gpu-operator --version"),
        "GPU parts without --gpu: {raw}"
    );
}

#[test]
fn scripts_refuse_latest_and_bad_flags_with_exit_2() {
    let cases: [(&str, &[&str], &str); 4] = [
        (
            "deploy/install-stack.sh",
            &["--dry-run", "--image", "lab:latest"],
            "never latest",
        ),
        (
            "deploy/install-stack.sh",
            &["--dry-run", "--mode", "fast"],
            "--mode",
        ),
        (
            "deploy/image/build.sh",
            &["--repo", "lab:latest"],
            "without a tag",
        ),
        ("deploy/image/build.sh", &["--variant", "gpu"], "--variant"),
    ];
    for (script, args, says) in cases {
        let (out, mark, _dir) = run_script(script, args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{script} {args:?}: {err}");
        assert!(err.contains(says), "{script} {args:?}: {err}");
        assert!(
            !mark.exists(),
            "{script} {args:?} ran a tool before refusing"
        );
    }
}

#[test]
fn kind_config_pins_its_node_image_and_has_a_gpu_like_pool() {
    let text = std::fs::read_to_string(repo().join("deploy/kind/cluster.yaml")).unwrap();
    let cfg: serde_json::Value = serde_saphyr::from_str(&text).expect("cluster.yaml parses");
    assert_eq!(cfg["kind"], "Cluster");
    let nodes = cfg["nodes"].as_array().expect("nodes");
    assert!(nodes
        .iter()
        .all(|n| n["image"].as_str().is_some_and(|i| i.contains("@sha256:"))));
    let gpu = nodes
        .iter()
        .find(|n| n["labels"]["nvidia.com/gpu.present"] == "true")
        .expect("a GPU-like worker");
    assert!(gpu["labels"]["lab.dev/node-pool"].is_string());
    assert!(gpu["kubeadmConfigPatches"][0]
        .as_str()
        .unwrap_or("")
        .contains("nvidia.com/gpu"));
}
