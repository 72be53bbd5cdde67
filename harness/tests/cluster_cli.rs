//! `lab cluster up --kind --dry-run` and `lab cluster down --dry-run`: every
//! command printed, pinned, none run (stand-ins for kind, kubectl and helm
//! first on PATH leave a mark if they ever are).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn lab_with_stand_ins(args: &[&str]) -> (std::process::Output, bool) {
    let dir = tempfile::tempdir().unwrap();
    let mark = dir.path().join("ran");
    for tool in ["kind", "kubectl", "helm"] {
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
    let out = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .env("PATH", path)
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    (out, mark.exists())
}

#[test]
fn up_dry_run_prints_the_kind_cluster_and_the_pinned_stack_and_runs_nothing() {
    let (out, ran) = lab_with_stand_ins(&[
        "cluster",
        "up",
        "--kind",
        "--name",
        "t1",
        "--image",
        "lab:0.1.0-abc-cpu",
        "--dry-run",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!ran, "a dry run ran a tool");
    assert!(
        text.contains("+ kind create cluster --name t1 --config "),
        "{text}"
    );
    assert!(text.contains("deploy/kind/cluster.yaml"), "{text}");
    assert!(
        text.contains("+ kind load docker-image lab:0.1.0-abc-cpu --name t1"),
        "{text}"
    );
    for part in [
        "kserve",
        "keda",
        "kube-prometheus-stack",
        "serving-core.yaml",
    ] {
        assert!(text.contains(part), "{part} missing:\n{text}");
    }
    for line in text
        .lines()
        .filter(|l| l.contains("helm") && l.contains("upgrade --install"))
    {
        assert!(line.contains("--version"), "unpinned: {line}");
    }
}

#[test]
fn up_needs_kind_and_down_prints_its_command() {
    let (out, ran) = lab_with_stand_ins(&["cluster", "up", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kind"));
    assert!(!ran);
    let (out, ran) = lab_with_stand_ins(&["cluster", "down", "--name", "t1", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "+ kind delete cluster --name t1"
    );
    assert!(!ran);
    // Without --dry-run the stand-in kind is the one called.
    let (out, ran) = lab_with_stand_ins(&["cluster", "down", "--name", "t1"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(ran, "kind delete cluster was run");
}
