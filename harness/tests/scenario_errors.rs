//! What `lab validate` and `lab run` print for a wrong scenario, as a new user
//! meets it: the override named, every problem at once, and pools too small
//! for the services' minReplicas refused before a run.

mod common;
use common::{lab, stderr};

const MIG: &str = r#"node_pools.a100.sharing={ strategy = "mig", layout = ["7g.40gb"] }"#;

#[test]
fn a_layout_without_room_for_every_min_replica_fails_validation() {
    let o = lab(&["validate", "scenarios/timeslice-vs-mig.toml", "--set", MIG]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    for part in [
        "`ranker`",
        "nvidia.com/mig-7g.40gb",
        "pool `a100`",
        "max_nodes = 1",
    ] {
        assert!(e.contains(part), "{part}: {e}");
    }
    insta::assert_snapshot!("validate_mig_no_room", e);
}

#[test]
fn every_example_still_validates() {
    for f in [
        "scenarios/spike.toml",
        "scenarios/steady-10k.toml",
        "scenarios/scale-to-zero.toml",
        "scenarios/timeslice-vs-mig.toml",
        "scenarios/keda-queue.toml",
        "scenarios/diurnal-cost.toml",
        "scenarios/plan-10k.toml",
        "scenarios/oracles/mmc.toml",
    ] {
        let o = lab(&["validate", f]);
        assert_eq!(o.status.code(), Some(0), "{f}: {}", stderr(&o));
    }
}

#[test]
fn a_bad_override_is_named_and_has_no_line_of_the_file() {
    let o = lab(&[
        "validate",
        "scenarios/spike.toml",
        "--set",
        "services.0.maxReplicas=lots",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("--set services.0.maxReplicas=lots: expected an integer, got a string"),
        "{e}"
    );
    assert!(!e.contains("spike.toml:"), "{e}");
    insta::assert_snapshot!("set_max_replicas_lots", e);
}

#[test]
fn three_bad_overrides_are_reported_together() {
    let o = lab(&[
        "validate",
        "scenarios/spike.toml",
        "--set",
        "services[0].maxReplicas=lots",
        "--set",
        r#"gateway.routing="random""#,
        "--set",
        "services.resnet.minReplica=2",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("3 problems in the scenario"), "{e}");
    insta::assert_snapshot!("three_bad_sets", e);
}

#[test]
fn a_file_with_four_mistakes_reports_all_four() {
    let good = std::fs::read_to_string(common::repo().join("scenarios/spike.toml")).unwrap();
    let bad = good
        .replacen("maxReplicas", "maxReplica", 1)
        .replacen("[run]\n", "[run]\nsed = 3\n", 1)
        .replacen("minReplicas = 2", "minReplicas = \"two\"", 1)
        .replacen("base = ", "base = -", 1);
    assert_ne!(good, bad);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("four.toml");
    std::fs::write(&f, &bad).unwrap();
    let o = lab(&["validate", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o).replace(&dir.path().display().to_string(), "[dir]");
    assert!(e.contains("4 problems in the scenario"), "{e}");
    insta::assert_snapshot!("four_mistakes", e);
}

#[test]
fn a_missing_traffic_section_says_what_to_add() {
    let good = std::fs::read_to_string(common::repo().join("scenarios/oracles/mmc.toml")).unwrap();
    let cut = &good[..good.find("[[traffic]]").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("no-traffic.toml");
    std::fs::write(&f, cut).unwrap();
    let o = lab(&["validate", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o).replace(&dir.path().display().to_string(), "[dir]");
    insta::assert_snapshot!("missing_traffic", e);
}
