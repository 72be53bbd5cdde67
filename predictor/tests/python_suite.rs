//! Runs the Python suite (predictor/tests/py) against the built `lab-predictor`:
//! conformance with the official tritonclient over HTTP and gRPC, KServe V1,
//! error cases, batching, readiness, SIGTERM drain, metrics and GPU emulation,
//! and hostile input (urllib's error cases, timeouts, limits, promtool).
//! Needs `scripts/install-test-deps.sh` (onnxruntime, tritonclient, pytest).

use std::process::Command;
use std::sync::Mutex;

/// The suites time things against running servers: one at a time keeps them from
/// competing for the CPU with each other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn pytest(file: &str) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = env!("CARGO_MANIFEST_DIR");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", file])
        .current_dir(format!("{dir}/tests/py"))
        .env("LAB_PREDICTOR_BIN", env!("CARGO_BIN_EXE_lab-predictor"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}; run scripts/install-test-deps.sh"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(
        out.status.success(),
        "pytest {file} failed (needs scripts/install-test-deps.sh):\n{text}"
    );
}

#[test]
fn oip_conformance_with_tritonclient() {
    pytest("test_conformance.py");
}

#[test]
fn dynamic_batching_and_bounded_queue() {
    pytest("test_batching.py");
}

#[test]
fn readiness_drain_and_metrics() {
    pytest("test_lifecycle.py");
}

#[test]
fn gpu_emulation_cuda_error_and_calibration() {
    pytest("test_emulation.py");
}

#[test]
fn hostile_input_errors_timeouts_and_limits() {
    pytest("test_hostile.py");
}

#[test]
fn openapi_description_holds_under_schemathesis() {
    pytest("test_openapi.py");
}
