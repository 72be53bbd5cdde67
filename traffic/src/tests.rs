use super::*;
use lab_units::Dur;
use proptest::prelude::*;

fn constant(rate: f64, secs: u64, arrivals: Arrivals) -> TrafficSpec {
    TrafficSpec {
        service: None,
        arrivals,
        rows_per_request: 1,
        phases: vec![Phase::Constant {
            rate,
            duration: Dur::from_secs(secs),
        }],
    }
}

#[test]
fn same_seed_same_instants_other_seed_other_instants() {
    let spec = constant(500.0, 20, Arrivals::Poisson);
    let a: Vec<_> = Schedule::new(&spec, 7, 0).iter().collect();
    let b: Vec<_> = Schedule::new(&spec, 7, 0).iter().collect();
    let c: Vec<_> = Schedule::new(&spec, 8, 0).iter().collect();
    let d: Vec<_> = Schedule::new(&spec, 7, 1).iter().collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, d);
}

#[test]
fn poisson_count_and_gap_cv_match_theory() {
    let spec = constant(1000.0, 200, Arrivals::Poisson);
    let xs: Vec<u64> = Schedule::new(&spec, 1, 0).iter().map(|a| a.at_ns).collect();
    let n = xs.len() as f64;
    // Count ~ Poisson(200000): 4 sigma is about 1800.
    assert!((n - 200_000.0).abs() < 1800.0, "count {n}");
    let gaps: Vec<f64> = xs.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let sd = (gaps.iter().map(|g| (g - mean) * (g - mean)).sum::<f64>() / gaps.len() as f64).sqrt();
    assert!((sd / mean - 1.0).abs() < 0.02, "cv {}", sd / mean);
}

#[test]
fn gamma_arrivals_have_the_requested_cv() {
    let spec = constant(1000.0, 200, Arrivals::Gamma { cv: 3.0 });
    let xs: Vec<u64> = Schedule::new(&spec, 3, 0).iter().map(|a| a.at_ns).collect();
    let gaps: Vec<f64> = xs.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let sd = (gaps.iter().map(|g| (g - mean) * (g - mean)).sum::<f64>() / gaps.len() as f64).sqrt();
    assert!((sd / mean - 3.0).abs() < 0.25, "cv {}", sd / mean);
    assert!((mean - 1e6).abs() / 1e6 < 0.05, "mean gap {mean}");
}

#[test]
fn uniform_arrivals_are_evenly_spaced() {
    let spec = constant(100.0, 1, Arrivals::Uniform);
    let xs: Vec<u64> = Schedule::new(&spec, 0, 0).iter().map(|a| a.at_ns).collect();
    assert_eq!(xs.len(), 100);
    assert_eq!(xs[0], 10_000_000);
    assert!(xs
        .windows(2)
        .all(|w| (w[1] - w[0]).abs_diff(10_000_000) <= 1));
}

#[test]
fn spike_puts_ten_times_the_rate_in_the_hold() {
    let spec = TrafficSpec {
        service: None,
        arrivals: Arrivals::Uniform,
        rows_per_request: 2,
        phases: vec![Phase::Spike {
            base: 100.0,
            multiplier: 10.0,
            at: Dur::from_secs(60),
            rise: Dur::from_secs(10),
            hold: Dur::from_secs(60),
            decay: Dur::from_secs(10),
            duration: Dur::from_secs(200),
        }],
    };
    let s = Schedule::new(&spec, 0, 0);
    let count_in = |a: u64, b: u64| {
        s.iter()
            .filter(|x| x.at_ns >= a * 1_000_000_000 && x.at_ns < b * 1_000_000_000)
            .count()
    };
    assert_eq!(count_in(0, 60), 6000);
    assert!((count_in(70, 130) as i64 - 60_000).abs() <= 1);
    // Ramps carry the average of their ends: 10 s at 550 req/s.
    assert!((count_in(60, 70) as i64 - 5500).abs() <= 1);
    assert!(s.iter().all(|a| a.rows == 2));
    assert!((s.expected_count() - (100.0 * 120.0 + 5500.0 * 2.0 + 60_000.0)).abs() < 1e-6);
    assert_eq!(s.rate_at(100_000_000_000), 1000.0);
}

#[test]
fn idle_phase_sends_nothing() {
    let spec = TrafficSpec {
        service: None,
        arrivals: Arrivals::Poisson,
        rows_per_request: 1,
        phases: vec![
            Phase::Constant {
                rate: 50.0,
                duration: Dur::from_secs(10),
            },
            Phase::Idle {
                duration: Dur::from_secs(100),
            },
            Phase::Constant {
                rate: 50.0,
                duration: Dur::from_secs(10),
            },
        ],
    };
    let xs: Vec<_> = Schedule::new(&spec, 5, 0).iter().collect();
    assert!(xs
        .iter()
        .all(|a| a.at_ns < 10_000_000_000 || a.at_ns >= 110_000_000_000));
    assert!(xs.iter().any(|a| a.at_ns >= 110_000_000_000));
}

#[test]
fn diurnal_peaks_where_asked() {
    let spec = TrafficSpec {
        service: None,
        arrivals: Arrivals::Uniform,
        rows_per_request: 1,
        phases: vec![Phase::Diurnal {
            peak: 1000.0,
            trough: 100.0,
            period: Dur::from_secs(86_400),
            peak_at: Dur::from_secs(43_200),
            duration: Dur::from_secs(86_400),
        }],
    };
    let s = Schedule::new(&spec, 0, 0);
    assert!((s.rate_at(43_200_000_000_000) - 1000.0).abs() < 1.0);
    assert!((s.rate_at(0) - 100.0).abs() < 1.0);
    // Mean of the cosine is the midpoint.
    assert!((s.expected_count() / 86_400.0 - 550.0).abs() < 0.5);
}

#[test]
fn trace_replay_keeps_instants_and_speedup_compresses() {
    let csv = "TIMESTAMP,ContextTokens\n2023-11-16 23:59:59.5,1\n2023-11-17 00:00:00.5,2\n2023-11-17 00:00:02.5,3\n";
    let offsets = parse_trace_csv(csv).unwrap();
    assert_eq!(offsets, vec![0, 1_000_000_000, 3_000_000_000]);
    let spec = TrafficSpec {
        service: None,
        arrivals: Arrivals::Poisson,
        rows_per_request: 1,
        phases: vec![Phase::Trace {
            file: "x.csv".into(),
            speedup: 2.0,
            duration: None,
            offsets: TraceOffsets(std::sync::Arc::new(offsets)),
        }],
    };
    let xs: Vec<u64> = Schedule::new(&spec, 0, 0).iter().map(|a| a.at_ns).collect();
    assert_eq!(xs, vec![0, 500_000_000, 1_500_000_000]);
    assert!(parse_trace_csv("TIMESTAMP\nnot-a-time\n")
        .unwrap_err()
        .contains("line 2"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arrivals_are_ordered_and_inside_the_schedule(
        seed in any::<u64>(),
        from in 0.0f64..2000.0,
        to in 0.0f64..2000.0,
        secs in 1u64..5,
        cv in 0.1f64..4.0,
    ) {
        let spec = TrafficSpec {
            service: None,
            arrivals: Arrivals::Gamma { cv },
            rows_per_request: 1,
            phases: vec![Phase::Ramp { from, to, duration: Dur::from_secs(secs) }],
        };
        let s = Schedule::new(&spec, seed, 0);
        let xs: Vec<Arrival> = s.iter().collect();
        prop_assert!(xs.windows(2).all(|w| w[0].at_ns <= w[1].at_ns && w[0].seq + 1 == w[1].seq));
        prop_assert!(xs.iter().all(|a| a.at_ns < s.end_ns()));
    }

    #[test]
    fn shards_partition_the_schedule(seed in any::<u64>(), n in 1u32..6) {
        let spec = constant(300.0, 2, Arrivals::Poisson);
        let s = Schedule::new(&spec, seed, 0);
        let all: Vec<Arrival> = s.iter().collect();
        let mut merged: Vec<Arrival> = (0..n).flat_map(|i| s.iter_shard(i, n).collect::<Vec<_>>()).collect();
        merged.sort_by_key(|a| a.seq);
        prop_assert_eq!(all, merged);
    }
}
