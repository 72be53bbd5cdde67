//! The rate-series phase: its integral is the expected arrival count, its
//! transforms (scale, speedup, time_shift, repeat) do what they say, and its
//! CSV form parses and refuses as documented.

use super::*;
use lab_units::Dur;
use proptest::prelude::*;

fn series(points: Vec<[f64; 2]>) -> Phase {
    Phase::Series {
        points: Some(points),
        file: None,
        scale: 1.0,
        speedup: 1.0,
        time_shift: Dur(0),
        repeat: 1,
        loaded: RateSamples::default(),
    }
}

fn stream(arrivals: Arrivals, phases: Vec<Phase>) -> TrafficSpec {
    TrafficSpec {
        service: None,
        arrivals,
        rows_per_request: 1,
        phases,
    }
}

/// The trapezoid integral of a polyline, written independently of the schedule.
fn trapezoid(points: &[[f64; 2]]) -> f64 {
    points
        .windows(2)
        .map(|w| (w[0][1] + w[1][1]) / 2.0 * (w[1][0] - w[0][0]))
        .sum()
}

/// The recording's rate at `t` seconds from its first sample, by linear search.
fn recorded_rate(points: &[[f64; 2]], t: f64) -> f64 {
    let t = t + points[0][0];
    for w in points.windows(2) {
        if t >= w[0][0] && t <= w[1][0] {
            let f = (t - w[0][0]) / (w[1][0] - w[0][0]);
            return w[0][1] + f * (w[1][1] - w[0][1]);
        }
    }
    panic!("{t} outside the recording");
}

#[test]
fn the_polyline_between_samples_and_its_integral() {
    // 0..60 s from 10 to 20 req/s (900 requests), 60..120 s from 20 to 0 (600).
    let spec = stream(
        Arrivals::Uniform,
        vec![series(vec![[0.0, 10.0], [60.0, 20.0], [120.0, 0.0]])],
    );
    let s = Schedule::new(&spec, 0, 0);
    assert_eq!(spec.duration(), Dur::from_secs(120));
    assert_eq!(s.end_ns(), 120_000_000_000);
    assert!((s.expected_count() - 1500.0).abs() < 1e-9);
    assert!((s.rate_at(30_000_000_000) - 15.0).abs() < 1e-9);
    assert!((s.rate_at(90_000_000_000) - 10.0).abs() < 1e-9);
    // Evenly spaced unit work: the count is the integral, to the request.
    let xs: Vec<u64> = s.iter().map(|a| a.at_ns).collect();
    assert!((xs.len() as i64 - 1500).abs() <= 1, "{}", xs.len());
    let first_minute = xs.iter().filter(|t| **t < 60_000_000_000).count();
    assert!((first_minute as i64 - 900).abs() <= 1, "{first_minute}");
}

#[test]
fn samples_need_not_start_at_zero_nor_be_evenly_spaced() {
    // Unix-time stamps with a longer step in the middle (a gap the importer bridged).
    let points = vec![
        [1_700_000_000.0, 4.0],
        [1_700_000_060.0, 4.0],
        [1_700_000_660.0, 8.0],
        [1_700_000_720.0, 8.0],
    ];
    let spec = stream(Arrivals::Poisson, vec![series(points.clone())]);
    assert_eq!(spec.duration(), Dur::from_secs(720));
    let s = Schedule::new(&spec, 1, 0);
    assert!((s.expected_count() - trapezoid(&points)).abs() < 1e-6);
    assert!((s.rate_at(360_000_000_000) - 6.0).abs() < 1e-9);
}

#[test]
fn scale_multiplies_the_rate_and_the_count() {
    let points = vec![[0.0, 50.0], [100.0, 150.0], [200.0, 50.0]];
    let one = stream(Arrivals::Poisson, vec![series(points.clone())]);
    let mut two = one.clone();
    if let Phase::Series { scale, .. } = &mut two.phases[0] {
        *scale = 2.0;
    }
    let (a, b) = (Schedule::new(&one, 9, 0), Schedule::new(&two, 9, 0));
    assert!((b.expected_count() - 2.0 * a.expected_count()).abs() < 1e-6);
    assert_eq!(b.rate_at(100_000_000_000), 300.0);
    assert_eq!(one.duration(), two.duration());
    // Poisson counts: 40,000 expected at 2x, 4 sigma is 800.
    let n = b.iter().count() as f64;
    assert!((n - 40_000.0).abs() < 800.0, "{n}");
}

#[test]
fn speedup_compresses_time_and_keeps_the_requests() {
    let points = vec![[0.0, 10.0], [600.0, 30.0]];
    let mut spec = stream(Arrivals::Uniform, vec![series(points)]);
    if let Phase::Series { speedup, .. } = &mut spec.phases[0] {
        *speedup = 4.0;
    }
    let s = Schedule::new(&spec, 0, 0);
    assert_eq!(spec.duration(), Dur::from_secs(150));
    assert!((s.expected_count() - 12_000.0).abs() < 1e-6);
    // Four times the recorded rate, a quarter of the way in at 75 s.
    assert!((s.rate_at(75_000_000_000) - 80.0).abs() < 1e-9);
}

#[test]
fn time_shift_starts_into_the_recording_and_wraps_around() {
    let points = vec![[0.0, 0.0], [100.0, 100.0], [200.0, 0.0]];
    let mut spec = stream(Arrivals::Uniform, vec![series(points)]);
    if let Phase::Series { time_shift, .. } = &mut spec.phases[0] {
        *time_shift = Dur::from_secs(100);
    }
    let s = Schedule::new(&spec, 0, 0);
    assert_eq!(spec.duration(), Dur::from_secs(200));
    // The peak at 100 s is now the start; the start (0 req/s) is now the middle.
    assert!((s.rate_at(0) - 100.0).abs() < 1e-9);
    assert!(s.rate_at(100_000_000_000).abs() < 1e-9);
    assert!((s.rate_at(150_000_000_000) - 50.0).abs() < 1e-9);
    assert!((s.expected_count() - 10_000.0).abs() < 1e-6);
}

#[test]
fn repeat_plays_the_recording_again() {
    let points = vec![[0.0, 5.0], [30.0, 15.0]];
    let mut spec = stream(Arrivals::Uniform, vec![series(points)]);
    if let Phase::Series { repeat, .. } = &mut spec.phases[0] {
        *repeat = 3;
    }
    let s = Schedule::new(&spec, 0, 0);
    assert_eq!(spec.duration(), Dur::from_secs(90));
    assert!((s.expected_count() - 900.0).abs() < 1e-9);
    assert!((s.rate_at(31_000_000_000) - s.rate_at(1_000_000_000)).abs() < 1e-9);
    assert!((s.rate_at(61_000_000_000) - s.rate_at(1_000_000_000)).abs() < 1e-9);
}

#[test]
fn bursty_arrivals_within_a_series() {
    let points = vec![[0.0, 800.0], [300.0, 1200.0]];
    let spec = stream(Arrivals::Gamma { cv: 3.0 }, vec![series(points)]);
    let xs: Vec<u64> = Schedule::new(&spec, 4, 0).iter().map(|a| a.at_ns).collect();
    let n = xs.len() as f64;
    // 300,000 expected; gamma gaps of CV 3 widen the count's spread to about 3 sqrt(n).
    assert!((n - 300_000.0).abs() < 4.0 * 3.0 * 548.0, "{n}");
    // Over the first 10 s the rate barely moves: the gaps' CV is the process's.
    let early: Vec<f64> = xs
        .windows(2)
        .filter(|w| w[1] < 10_000_000_000)
        .map(|w| (w[1] - w[0]) as f64)
        .collect();
    let mean = early.iter().sum::<f64>() / early.len() as f64;
    let sd =
        (early.iter().map(|g| (g - mean) * (g - mean)).sum::<f64>() / early.len() as f64).sqrt();
    assert!((sd / mean - 3.0).abs() < 0.4, "cv {}", sd / mean);
}

#[test]
fn a_series_after_another_phase_starts_where_it_ends() {
    let spec = stream(
        Arrivals::Uniform,
        vec![
            Phase::Constant {
                rate: 10.0,
                duration: Dur::from_secs(10),
            },
            series(vec![[0.0, 100.0], [10.0, 100.0]]),
        ],
    );
    let xs: Vec<u64> = Schedule::new(&spec, 0, 0).iter().map(|a| a.at_ns).collect();
    assert_eq!(xs.iter().filter(|t| **t < 10_000_000_000).count(), 100);
    assert!((xs.len() as i64 - 1100).abs() <= 1);
    assert!(xs.iter().all(|t| *t < 20_000_000_000));
}

#[test]
fn problems_name_the_field() {
    let fields = |p: Phase| p.problems().into_iter().map(|(f, _)| f).collect::<Vec<_>>();
    let mut p = series(vec![[0.0, 1.0], [10.0, 1.0]]);
    assert!(p.problems().is_empty(), "{:?}", p.problems());
    if let Phase::Series { file, .. } = &mut p {
        *file = Some("x.csv".into());
    }
    assert_eq!(fields(p), ["file"]);
    assert_eq!(fields(series(vec![[0.0, 1.0]])), ["points"]);
    assert_eq!(fields(series(vec![[0.0, 1.0], [0.0, 2.0]])), ["points"]);
    assert_eq!(fields(series(vec![[0.0, 1.0], [5.0, -2.0]])), ["points"]);
    let mut p = series(vec![[0.0, 1.0], [10.0, 1.0]]);
    if let Phase::Series {
        time_shift,
        scale,
        speedup,
        repeat,
        ..
    } = &mut p
    {
        *time_shift = Dur::from_secs(10);
        *scale = -1.0;
        *speedup = 0.0;
        *repeat = 0;
    }
    let mut f = fields(p);
    f.sort();
    assert_eq!(f, ["repeat", "scale", "speedup", "time_shift"]);
    let none = Phase::Series {
        points: None,
        file: None,
        scale: 1.0,
        speedup: 1.0,
        time_shift: Dur(0),
        repeat: 1,
        loaded: RateSamples::default(),
    };
    assert_eq!(fields(none), ["points"]);
}

#[test]
fn rate_csv_reads_comments_header_and_rows() {
    let csv = "# query: sum(rate(x[5m]))\n# source: test\nt_seconds,rate\n0,1.5\n60,2.5\n\n120,0\n";
    assert_eq!(
        parse_rate_csv(csv).unwrap(),
        vec![[0.0, 1.5], [60.0, 2.5], [120.0, 0.0]]
    );
    // Without a header.
    assert_eq!(parse_rate_csv("0,1\n1,2\n").unwrap().len(), 2);
    let e = parse_rate_csv("t_seconds,rate\n0,1\n60,lots\n").unwrap_err();
    assert!(e.contains("line 3") && e.contains("lots"), "{e}");
    let e = parse_rate_csv("t_seconds,rate\n0,1\n60,2\n30,2\n").unwrap_err();
    assert!(e.contains("line 4") && e.contains("not after"), "{e}");
    let e = parse_rate_csv("t_seconds,rate\n0,1\n").unwrap_err();
    assert!(e.contains("at least two"), "{e}");
}

#[test]
fn the_toml_form_parses() {
    #[derive(serde::Deserialize)]
    struct Wrap {
        phases: Vec<Phase>,
    }
    let w: Wrap = toml::from_str(
        r#"phases = [
            { kind = "series", points = [[0, 1.0], [60, 2]], scale = 2, time_shift = "30s", repeat = 2 },
            { kind = "series", file = "rates.csv" },
        ]"#,
    )
    .unwrap();
    assert_eq!(w.phases[0].series_samples(), &[[0.0, 1.0], [60.0, 2.0]]);
    assert_eq!(w.phases[0].duration(), Dur::from_secs(120));
    assert!(matches!(
        &w.phases[1],
        Phase::Series { file: Some(f), scale, speedup, repeat: 1, .. } if f == "rates.csv" && *scale == 1.0 && *speedup == 1.0
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Expected arrivals are `scale * repeat` times the recording's integral,
    /// whatever the speedup and shift; the phase lasts `repeat * length / speedup`.
    #[test]
    fn integral_of_the_rate_is_the_expected_count(
        steps in proptest::collection::vec((0.5f64..300.0, 0.0f64..500.0), 2..40),
        scale in 0.0f64..10.0,
        speedup in 0.1f64..20.0,
        shift_frac in 0.0f64..1.0,
        repeat in 1u32..4,
    ) {
        let mut t = 0.0;
        let points: Vec<[f64; 2]> = steps.iter().map(|(dt, r)| { t += dt; [t, *r] }).collect();
        let length = points[points.len() - 1][0] - points[0][0];
        let shift = Dur((shift_frac * length * 1e9) as u64);
        let phase = Phase::Series {
            points: Some(points.clone()), file: None, scale, speedup,
            time_shift: shift, repeat, loaded: RateSamples::default(),
        };
        prop_assert!(phase.problems().is_empty(), "{:?}", phase.problems());
        let spec = stream(Arrivals::Poisson, vec![phase]);
        let s = Schedule::new(&spec, 0, 0);
        let want = scale * f64::from(repeat) * trapezoid(&points);
        // Piece boundaries land on whole nanoseconds: a relative error of about 1e-9.
        prop_assert!((s.expected_count() - want).abs() <= 1e-6 * want.max(1.0),
            "{} vs {want}", s.expected_count());
        let played = length / speedup * f64::from(repeat) * 1e9;
        prop_assert!((spec.duration().0 as f64 - played).abs() <= f64::from(repeat), "{:?} vs {played}", spec.duration());
        prop_assert_eq!(s.end_ns(), spec.duration().0);
    }

    /// The rate at any instant is the recording's, `time_shift` later (wrapping
    /// around), `speedup` times faster, times `scale * speedup`.
    #[test]
    fn shifted_scaled_rate_is_the_recording_moved(
        steps in proptest::collection::vec((1.0f64..100.0, 0.0f64..100.0), 2..20),
        scale in 0.1f64..5.0,
        speedup in 0.5f64..4.0,
        shift_frac in 0.0f64..1.0,
        at_frac in 0.0f64..1.0,
    ) {
        let mut t = 0.0;
        let points: Vec<[f64; 2]> = steps.iter().map(|(dt, r)| { t += dt; [t, *r] }).collect();
        let length = points[points.len() - 1][0] - points[0][0];
        let shift_s = (shift_frac * length).floor();
        let phase = Phase::Series {
            points: Some(points.clone()), file: None, scale, speedup,
            time_shift: Dur::from_secs(shift_s as u64), repeat: 1, loaded: RateSamples::default(),
        };
        let spec = stream(Arrivals::Poisson, vec![phase]);
        let s = Schedule::new(&spec, 0, 0);
        let at_ns = (at_frac * spec.duration().0 as f64) as u64;
        let recording_t = (at_ns as f64 / 1e9 * speedup + shift_s) % length;
        let want = scale * speedup * recorded_rate(&points, recording_t);
        // Nanosecond rounding of the boundaries moves a rate by at most its slope times a few ns.
        let tolerance = 1e-6 * (1.0 + want) + scale * speedup * 100.0 * 1e-7 * speedup;
        prop_assert!((s.rate_at(at_ns) - want).abs() <= tolerance, "{} vs {want}", s.rate_at(at_ns));
    }
}
