//! `lab import` as people call it: from a file, from a pipe (`kubectl get hpa web -o
//! yaml | lab import -f -`), and with manifest errors that name the file, line,
//! column and key.

mod common;

use common::{lab, repo, stderr};
use std::io::Write;
use std::process::{Command, Output, Stdio};

const HPA: &str = "import/tests/manifests/hpa.yaml";
const BAD_HPA: &str = "import/tests/manifests/hpa-bad-target.yaml";

/// Runs `lab ARGS` with `input` written to its standard input through a pipe.
fn lab_with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .current_dir(repo())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lab starts");
    // Closing our end (the drop at the end of this block) is the end of the file.
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap()
}

#[test]
fn a_manifest_piped_to_dash_f_dash_imports_like_the_file() {
    let from_file = lab(&["import", HPA]);
    assert_eq!(from_file.status.code(), Some(0), "{}", stderr(&from_file));
    let piped = lab_with_stdin(&["import", "-f", "-"], &read(HPA));
    assert_eq!(piped.status.code(), Some(0), "{}", stderr(&piped));
    let toml = String::from_utf8(piped.stdout).unwrap();
    assert!(toml.contains("[services.autoscaler.hpa]"), "{toml}");
    assert!(toml.contains("minReplicas = 2, maxReplicas = 12"), "{toml}");
    assert_eq!(toml, String::from_utf8(from_file.stdout).unwrap());
    // `-f FILE` is the same as the positional argument.
    let dash_f = lab(&["import", "-f", HPA]);
    assert_eq!(dash_f.status.code(), Some(0), "{}", stderr(&dash_f));
    assert_eq!(String::from_utf8(dash_f.stdout).unwrap(), toml);
}

/// What `kubectl get hpa web -o yaml` prints: status, managedFields, timestamps.
#[test]
fn kubectl_output_with_status_and_managed_fields_imports_from_a_pipe() {
    let piped = lab_with_stdin(
        &["import", "-f", "-"],
        &read("import/tests/manifests/hpa-kubectl.yaml"),
    );
    assert_eq!(piped.status.code(), Some(0), "{}", stderr(&piped));
    let toml = String::from_utf8(piped.stdout).unwrap();
    assert!(
        toml.contains("# Imported from HorizontalPodAutoscaler default/web."),
        "{toml}"
    );
    assert!(toml.contains("averageUtilization = 50"), "{toml}");
}

#[test]
fn a_manifest_error_names_file_line_column_and_key() {
    let out = lab(&["import", BAD_HPA]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!("error: {BAD_HPA}:10:16: spec.maxReplicas: ")),
        "{err}"
    );
    assert!(err.contains("\"lots\""), "{err}");

    let piped = lab_with_stdin(&["import", "-f", "-"], &read(BAD_HPA));
    assert_eq!(piped.status.code(), Some(2), "{}", stderr(&piped));
    let err = stderr(&piped);
    assert!(
        err.starts_with("error: <stdin>:10:16: spec.maxReplicas: "),
        "{err}"
    );
}

#[test]
fn broken_yaml_on_stdin_is_bad_input_with_a_position() {
    let piped = lab_with_stdin(&["import", "-f", "-"], "apiVersion: v1\nkind: [\n");
    assert_eq!(piped.status.code(), Some(2), "{}", stderr(&piped));
    let err = stderr(&piped);
    assert!(err.starts_with("error: <stdin>:"), "{err}");
    assert!(err.contains("not valid YAML"), "{err}");
    let empty = lab_with_stdin(&["import", "-f", "-"], "");
    assert_eq!(empty.status.code(), Some(2), "{}", stderr(&empty));
    assert!(
        stderr(&empty).contains("holds no HorizontalPodAutoscaler"),
        "{}",
        stderr(&empty)
    );
}
