//! A rate-series phase gives the load generator and the simulator the same
//! arrivals for a seed: `lab load`'s plan for scenarios/azure-conv-replay.toml
//! is the schedule the simulator iterates, instant for instant, and the
//! simulator counts as many arrivals; `--rate-scale 2` is `scale = 2`.

use lab_loadgen::{LoadConfig, Protocol, Stream};
use lab_traffic::Schedule;
use std::path::Path;

fn scenario(overrides: &[&str]) -> lab_scenario::Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/azure-conv-replay.toml");
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    lab_scenario::load(&path, &overrides).unwrap_or_else(|e| panic!("{e}"))
}

fn planned(sc: &lab_scenario::Scenario, rate_scale: f64) -> Vec<u64> {
    let stream = Stream {
        spec: sc.traffic[0].clone(),
        index: 0,
        service: "chat".into(),
        model: "chat".into(),
    };
    let mut config = LoadConfig::new("http://127.0.0.1:1", Protocol::V2Rest, vec![stream]);
    config.seed = sc.run.seed;
    config.rate_scale = rate_scale;
    lab_loadgen::arrivals(&config)
        .map(|p| p.arrival.at_ns)
        .collect()
}

#[test]
fn load_generator_and_simulator_share_the_series_arrivals() {
    let sc = scenario(&[]);
    let schedule: Vec<u64> = Schedule::new(&sc.traffic[0], sc.run.seed, 0)
        .iter()
        .map(|a| a.at_ns)
        .collect();
    let load = planned(&sc, 1.0);
    assert!(load.len() > 10_000, "{}", load.len());
    assert_eq!(load, schedule);

    let sim = lab_sim::simulate(&sc, sc.run.seed, &mut |_| lab_sim::Control::Continue).results;
    assert_eq!(sim.summary.requests.arrived, load.len() as u64);

    // --rate-scale 2 on the recording is the recording with scale = 2.
    let doubled = scenario(&["traffic.0.phases.0.scale=2"]);
    let want: Vec<u64> = Schedule::new(&doubled.traffic[0], sc.run.seed, 0)
        .iter()
        .map(|a| a.at_ns)
        .collect();
    assert_eq!(planned(&sc, 2.0), want);
    let ratio = want.len() as f64 / load.len() as f64;
    assert!((ratio - 2.0).abs() < 0.05, "{ratio}");
}
