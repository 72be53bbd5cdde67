//! The first draws of a fixed seed, bit for bit, against committed values.
//! Results must be the same on every machine, so the arrival instants and the
//! service-time draws must not depend on the platform's libm or the Rust
//! version: any change here changes every result and must be deliberate.
//!
//! To regenerate after an intended change: `LAB_BLESS=1 cargo test -p
//! lab-traffic --test golden`, then review and commit the diff.

use lab_gpu::{lognormal_from_quantiles, sample_service_seconds, ServiceDistribution};
use lab_traffic::{exp1, rng_for, uniform, Arrivals, Phase, Schedule, TrafficSpec};
use lab_units::Dur;
use std::fmt::Write;

const SEED: u64 = 42;
const N: usize = 64;
const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/first-draws.txt");

fn spec(arrivals: Arrivals, phase: Phase) -> TrafficSpec {
    TrafficSpec {
        service: None,
        arrivals,
        rows_per_request: 1,
        phases: vec![phase],
    }
}

fn constant(rate: f64) -> Phase {
    Phase::Constant {
        rate,
        duration: Dur::from_secs(600),
    }
}

/// The arrival instants of one schedule, in nanoseconds.
fn arrivals(out: &mut String, name: &str, spec: &TrafficSpec) {
    let got: Vec<u64> = Schedule::new(spec, SEED, 0)
        .iter()
        .take(N)
        .map(|a| a.at_ns)
        .collect();
    assert_eq!(got.len(), N, "{name}: fewer than {N} arrivals");
    for (i, at) in got.iter().enumerate() {
        writeln!(out, "arrival {name} {i} {at:016x}").unwrap();
    }
}

/// Service-time draws as the simulator's engine makes them (its service
/// stream is purpose 1): the ziggurat for exponential, two uniforms otherwise.
fn services(out: &mut String, name: &str, mean: f64, dist: ServiceDistribution) {
    let mut rng = rng_for(SEED, 1);
    for i in 0..N {
        let x = match dist {
            ServiceDistribution::Exponential => mean * exp1(&mut rng),
            dist => {
                let u1 = uniform(&mut rng);
                let u2 = uniform(&mut rng);
                sample_service_seconds(mean, dist, u1, u2)
            }
        };
        writeln!(out, "service {name} {i} {:016x}", x.to_bits()).unwrap();
    }
}

fn draws() -> String {
    let mut out = String::new();
    arrivals(
        &mut out,
        "poisson",
        &spec(Arrivals::Poisson, constant(100.0)),
    );
    // cv > 1: shape below 1, the boosted gamma (a power); cv < 1: Marsaglia-Tsang alone.
    arrivals(
        &mut out,
        "bursty-cv3",
        &spec(Arrivals::Gamma { cv: 3.0 }, constant(100.0)),
    );
    arrivals(
        &mut out,
        "gamma-cv0.5",
        &spec(Arrivals::Gamma { cv: 0.5 }, constant(100.0)),
    );
    // A diurnal rate is a cosine of the time of day.
    arrivals(
        &mut out,
        "diurnal",
        &spec(
            Arrivals::Poisson,
            Phase::Diurnal {
                peak: 200.0,
                trough: 20.0,
                period: Dur::from_secs(3600),
                peak_at: Dur::from_secs(900),
                duration: Dur::from_secs(3600),
            },
        ),
    );
    services(
        &mut out,
        "exponential",
        0.02,
        ServiceDistribution::Exponential,
    );
    services(
        &mut out,
        "lognormal-cv0.5",
        0.02,
        ServiceDistribution::Lognormal { cv: 0.5 },
    );
    services(
        &mut out,
        "deterministic",
        0.02,
        ServiceDistribution::Deterministic,
    );
    // The predictor's emulation draws exponential times through the logarithm.
    let mut rng = rng_for(SEED, 1);
    for i in 0..N {
        let (u1, u2) = (uniform(&mut rng), uniform(&mut rng));
        let x = sample_service_seconds(0.02, ServiceDistribution::Exponential, u1, u2);
        writeln!(out, "service exponential-by-log {i} {:016x}", x.to_bits()).unwrap();
    }
    // A calibration's p50/p99 become a lognormal's cv (a logarithm and an exp).
    for (p50, p99) in [(0.009, 0.02), (0.1, 0.13), (1.0, 9.0)] {
        let ServiceDistribution::Lognormal { cv } = lognormal_from_quantiles(p50, p99) else {
            panic!("no lognormal fit for {p50} {p99}");
        };
        writeln!(out, "fit lognormal {p50} {p99} {:016x}", cv.to_bits()).unwrap();
    }
    // Spot interruptions: an exponential wait through the logarithm.
    let mut rng = rng_for(SEED, 3);
    for i in 0..N {
        let at = lab_decide::spot::next_interruption_ns(0, 0.5, || uniform(&mut rng));
        writeln!(out, "spot 0.5/h {i} {:016x}", at.unwrap()).unwrap();
    }
    out
}

#[test]
fn first_draws_of_a_fixed_seed_match_the_committed_bits() {
    let got = draws();
    if std::env::var_os("LAB_BLESS").is_some() {
        std::fs::write(FILE, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(FILE).expect("golden file (LAB_BLESS=1 writes it)");
    let differ: Vec<(&str, &str)> = want
        .lines()
        .zip(got.lines())
        .filter(|(w, g)| w != g)
        .collect();
    assert!(
        differ.is_empty() && want.lines().count() == got.lines().count(),
        "{} of {} draws differ from {FILE} (lines: {} committed, {} now); first: {:?}",
        differ.len(),
        want.lines().count(),
        want.lines().count(),
        got.lines().count(),
        differ.first()
    );
}
