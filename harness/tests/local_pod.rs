//! The real predictor as a pod of the local level: `lab serve`, started by
//! lab-local's supervisor, becomes ready through its real readiness probe and
//! drains within its grace period on SIGTERM, exiting 0 as a Kubernetes pod
//! should. Here because only this package's tests know where `lab` is built.

use lab_local::{free_port, BackOffPolicy, Lifecycle, PodEvent, PodSpec, Supervisor};
use std::time::Duration;

#[tokio::test]
async fn lab_serve_becomes_ready_and_drains_on_sigterm() {
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/../predictor/models/iris.onnx");
    let (sup, mut events) = Supervisor::new(BackOffPolicy::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spec = PodSpec {
        log: Some(dir.path().join("iris-0.log")),
        ..PodSpec::lab_serve(
            "iris-0",
            env!("CARGO_BIN_EXE_lab"),
            free_port().unwrap(),
            None,
            [
                format!("--model=iris={model}"),
                "--grace-period-secs=5".into(),
            ],
        )
    };
    let lifecycle = Lifecycle {
        provisioning: Duration::ZERO,
        image_pull: Duration::ZERO,
        readiness_period: Duration::from_millis(100),
        probe_timeout: Duration::from_secs(1),
        failure_threshold: 3,
        grace_period: Duration::from_secs(10),
    };
    let mut pod = sup.start(spec, lifecycle).unwrap();
    let first = tokio::time::timeout(Duration::from_secs(60), events.recv())
        .await
        .expect("an event within a minute")
        .expect("the supervisor is alive");
    let PodEvent::Ready { .. } = first else {
        let log = std::fs::read_to_string(dir.path().join("iris-0.log")).unwrap_or_default();
        panic!("the first event is Ready, got {first:?}\n{log}")
    };
    assert_eq!(pod.record().restarts, 0);
    sup.terminate("iris-0").unwrap();
    let t = tokio::time::timeout(Duration::from_secs(30), pod.terminated())
        .await
        .expect("terminated within the grace period")
        .unwrap();
    assert!(
        !t.killed,
        "lab serve drains and exits within its grace period"
    );
    assert_eq!(t.exit.as_deref(), Some("exit status: 0"));
    let log = std::fs::read_to_string(dir.path().join("iris-0.log")).unwrap();
    assert!(log.contains("shutting down"), "{log}");
}
