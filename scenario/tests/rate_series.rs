//! A `kind = "series"` phase through the scenario loader: its CSV file is read
//! relative to the scenario, a bad file is reported at the phase's `file` key,
//! and `time_scaled` plays the recording K times faster.

use lab_scenario::{load, time_scaled};
use lab_traffic::{Phase, Schedule};
use lab_units::Dur;
use std::path::Path;

const SCENARIO: &str = r#"
name = "series"
[run]
duration = "3m"
[[node_pools]]
name = "t4"
gpu = "T4"
gpus_per_node = 1
cpu = "8"
memory = "32Gi"
price_per_hour = 0.5
min_nodes = 1
max_nodes = 1
[[services]]
name = "ranker"
minReplicas = 1
maxReplicas = 1
resources = { cpu = "1", memory = "1Gi", "nvidia.com/gpu" = 1 }
[[services.latency]]
gpu = "T4"
batch_latency = { "1" = "10ms" }
[[traffic]]
phases = [{ kind = "series", file = "rates/ranker.csv", scale = 2 }]
"#;

fn write(dir: &Path, csv: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("rates")).unwrap();
    std::fs::write(dir.join("rates/ranker.csv"), csv).unwrap();
    let path = dir.join("s.toml");
    std::fs::write(&path, SCENARIO).unwrap();
    path
}

#[test]
fn the_file_is_read_beside_the_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "# query: sum(rate(x[5m]))\nt_seconds,rate\n0,10\n60,20\n180,20\n",
    );
    let sc = load(&path, &[]).unwrap();
    let phase = &sc.traffic[0].phases[0];
    assert_eq!(
        phase.series_samples(),
        &[[0.0, 10.0], [60.0, 20.0], [180.0, 20.0]]
    );
    assert_eq!(phase.duration(), Dur::from_secs(180));
    // scale = 2: (15 * 60 + 20 * 120) * 2 requests.
    let s = Schedule::new(&sc.traffic[0], 0, 0);
    assert!(
        (s.expected_count() - 6600.0).abs() < 1e-6,
        "{}",
        s.expected_count()
    );

    // Ten times faster: the same requests in a tenth of the time.
    let fast = time_scaled(&sc, 10.0).unwrap();
    let f = Schedule::new(&fast.traffic[0], 0, 0);
    assert_eq!(fast.traffic[0].phases[0].duration(), Dur::from_secs(18));
    assert!((f.expected_count() - 6600.0).abs() < 1e-6);
    assert!(matches!(fast.traffic[0].phases[0], Phase::Series { speedup, .. } if speedup == 10.0));
}

#[test]
fn a_bad_file_is_reported_at_the_phase() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "t_seconds,rate\n0,10\n60,-3\n");
    let e = load(&path, &[]).unwrap_err().to_string();
    assert!(e.contains("traffic[0].phases[0].file"), "{e}");
    assert!(e.contains("line 3") && e.contains("non-negative"), "{e}");

    std::fs::remove_file(dir.path().join("rates/ranker.csv")).unwrap();
    let e = load(&path, &[]).unwrap_err().to_string();
    assert!(e.contains("cannot read") && e.contains("ranker.csv"), "{e}");
}

#[test]
fn set_can_transform_the_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "0,10\n60,10\n");
    let sc = load(
        &path,
        &[
            "traffic.0.phases.0.repeat=3".into(),
            "traffic.0.phases.0.time_shift=\"90s\"".into(),
        ],
    );
    let e = sc.unwrap_err().to_string();
    // The recording lasts 60 s: a 90 s shift is refused, naming the --set.
    assert!(
        e.contains("time_shift") && e.contains("shorter than the recording"),
        "{e}"
    );
    assert!(e.contains("--set traffic.0.phases.0.time_shift"), "{e}");
    let sc = load(&path, &["traffic.0.phases.0.repeat=3".into()]).unwrap();
    assert_eq!(sc.traffic[0].duration(), Dur::from_secs(180));
}
