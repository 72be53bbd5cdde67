//! The clock a scenario can set: the KPA's `tick-interval` and `metric-bucket` and
//! the controller flags of the HPA that KEDA generates. Left out they are upstream's
//! defaults; divided by K they make the same decisions K times sooner.

use lab_autoscale::keda::KedaConfig;
use lab_autoscale::kpa::{KpaConfig, WindowBuckets};
use lab_autoscale::{
    Autoscaler, AutoscalerSpec, Bounds, KpaSpec, Observation, PodPhase, PodSample, SignalValues,
    Time,
};

fn parse(text: &str) -> AutoscalerSpec {
    toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
}

fn problem_keys(text: &str) -> Vec<(String, String)> {
    parse(text).problems(Bounds { min: 1, max: 10 })
}

fn message<'a>(p: &'a [(String, String)], key: &str) -> &'a str {
    &p.iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no problem at {key}: {p:?}"))
        .1
}

#[test]
fn kpa_tick_and_bucket_are_checked() {
    let p = problem_keys("[kpa]\ntick-interval = \"0s\"\nmetric-bucket = \"0s\"\n");
    assert!(
        message(&p, "kpa.tick-interval").contains("above 0"),
        "{p:?}"
    );
    assert!(
        message(&p, "kpa.metric-bucket").contains("above 0"),
        "{p:?}"
    );
    let p = problem_keys("[kpa]\ntick-interval = \"1s\"\nmetric-bucket = \"2s\"\n");
    let m = message(&p, "kpa.metric-bucket");
    assert!(m.contains("tick-interval") && m.contains("2s"), "{m}");
    let p = problem_keys("[kpa]\ntick-interval = \"2m\"\nmetric-bucket = \"90s\"\n");
    assert!(
        message(&p, "kpa.metric-bucket").contains("stable window"),
        "{p:?}"
    );
    assert!(
        problem_keys("[kpa]\ntick-interval = \"200ms\"\nmetric-bucket = \"100ms\"\n").is_empty()
    );
}

#[test]
fn kpa_defaults_are_knatives_clock() {
    let b = Bounds { min: 1, max: 10 };
    let default = KpaConfig::compile(&KpaSpec::default(), b, 0).unwrap();
    assert_eq!(default.tick_interval, Time::from_secs(2));
    assert_eq!(default.metric_bucket, Time::from_secs(1));
    assert_eq!(default.panic_window, Time::from_secs(6));
    let explicit = parse("[kpa]\ntick-interval = \"2s\"\nmetric-bucket = \"1s\"\n");
    assert_eq!(
        KpaConfig::compile(explicit.kpa.as_ref().unwrap(), b, 0).unwrap(),
        default
    );
    let a = Autoscaler::new(&parse("[kpa]\n"), b, 0, Time::ZERO).unwrap();
    assert_eq!(a.metric_interval(), Some(Time::from_secs(1)));
}

#[test]
fn the_panic_window_is_whole_buckets() {
    let b = Bounds { min: 1, max: 10 };
    let cfg = |text: &str| KpaConfig::compile(parse(text).kpa.as_ref().unwrap(), b, 0).unwrap();
    // 10% of 6 s over 100 ms buckets: 6 buckets, where 1 s buckets give 1 (at least one).
    let fast =
        cfg("[kpa]\nwindow = \"6s\"\ntick-interval = \"200ms\"\nmetric-bucket = \"100ms\"\n");
    assert_eq!(fast.panic_window, Time::from_millis(600));
    assert_eq!(
        cfg("[kpa]\nwindow = \"6s\"\n").panic_window,
        Time::from_secs(1)
    );
    let a = Autoscaler::new(
        &parse("[kpa]\ntick-interval = \"200ms\"\nmetric-bucket = \"100ms\"\n"),
        b,
        0,
        Time::ZERO,
    )
    .unwrap();
    assert_eq!(a.metric_interval(), Some(Time::from_millis(100)));
}

/// Upstream's bucketing case (see `upstream_kpa.rs`), on a clock ten times faster.
#[test]
fn narrow_buckets_average_like_one_second_buckets_on_a_faster_clock() {
    let t0 = Time::from_secs(1000);
    let writes: &[(u64, f64)] = &[(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0), (4, 5.0), (6, 91.0)];
    let reads = [0u64, 4, 5, 6, 7, 10];
    let mut slow = WindowBuckets::new(Time::from_secs(5));
    let mut fast = WindowBuckets::with_bucket(Time::from_millis(500), Time::from_millis(100));
    for (i, &(s, v)) in writes.iter().enumerate() {
        slow.record(t0 + Time::from_secs(s), v);
        // Anywhere inside the bucket counts.
        fast.record(t0 / 10 + Time::from_millis(100 * s + 37), v);
        for &r in &reads {
            let (a, b) = (
                slow.average(t0 + Time::from_secs(r)),
                fast.average(t0 / 10 + Time::from_millis(100 * r)),
            );
            assert_eq!(a, b, "after write {i}, read at bucket {r}");
        }
    }
}

fn pods(n: u32) -> Vec<PodSample> {
    (0..n)
        .map(|_| PodSample {
            phase: PodPhase::Running,
            ready: true,
            deleting: false,
            start: Some(Time::ZERO),
            ready_transition: Some(Time::ZERO),
            cpu_request_milli: 1000,
            memory_request_bytes: 0,
            metrics: None,
        })
        .collect()
}

/// Drives a KPA with one sample per bucket of a concurrency that depends on the
/// bucket's index, pods ready at once; returns (bucket index, desired) per decision.
fn drive(spec: &str, bucket: Time, buckets: u64, load: impl Fn(u64) -> f64) -> Vec<(u64, u32)> {
    let b = Bounds { min: 0, max: 50 };
    let mut a = Autoscaler::new(&parse(spec), b, 0, Time::ZERO).unwrap();
    let mut spec_replicas = a.initial_replicas();
    let mut out = Vec::new();
    for i in 0..buckets {
        let now = bucket * i as u32;
        let totals = SignalValues {
            concurrency: load(i),
            ..SignalValues::default()
        };
        let ready = pods(spec_replicas);
        a.record(now, &totals, spec_replicas);
        let obs = Observation {
            spec_replicas,
            status_replicas: spec_replicas,
            pods: &ready,
            totals: Ok(totals),
            activator_queue: if spec_replicas == 0 {
                load(i).ceil() as u32
            } else {
                0
            },
        };
        if now >= a.next_decision() || a.wants_poke(&obs) {
            spec_replicas = a.decide(now, &obs).desired;
            out.push((i, spec_replicas));
        }
    }
    out
}

#[test]
fn a_kpa_on_a_clock_ten_times_faster_decides_the_same() {
    // A ramp, a surge that panics, then idle long enough to reach zero.
    let load = |i: u64| match i {
        0..60 => 2.0,
        60..120 => 2.0 + (i - 60) as f64,
        120..180 => 80.0,
        _ => 0.0,
    };
    let slow = drive(
        "[kpa]\ntarget = 5\nwindow = \"60s\"\nscale-to-zero-grace-period = \"60s\"\n",
        Time::from_secs(1),
        600,
        load,
    );
    let fast = drive(
        "[kpa]\ntarget = 5\nwindow = \"6s\"\nscale-to-zero-grace-period = \"6s\"\n\
         tick-interval = \"200ms\"\nmetric-bucket = \"100ms\"\n",
        Time::from_millis(100),
        600,
        load,
    );
    assert!(
        slow.iter().any(|&(_, n)| n > 10),
        "the surge should scale out: {slow:?}"
    );
    assert_eq!(
        slow.last().map(|d| d.1),
        Some(0),
        "idle should reach zero: {slow:?}"
    );
    // Decisions at the same buckets, to the same counts.
    assert_eq!(fast, slow);
}

#[test]
fn keda_takes_its_hpa_flags_from_the_scenario() {
    let b = Bounds { min: 1, max: 10 };
    let triggers = "triggers = [{ type = \"prometheus\", metadata = { query = \"sum(lab_predictor_queue_depth)\", threshold = \"5\" } }]\n";
    let compile = |extra: &str| {
        let spec = parse(&format!("[keda]\n{triggers}{extra}"));
        KedaConfig::compile(spec.keda.as_ref().unwrap(), b)
    };
    let default = compile("").unwrap();
    assert_eq!(default.hpa.flags.sync_period, Time::from_secs(15));
    assert_eq!(compile("controller = {}\n").unwrap(), default);
    let set = compile(
        "controller = { syncPeriod = \"3s\", tolerance = 0.05, downscaleStabilization = \"1m\" }\n",
    )
    .unwrap();
    assert_eq!(set.hpa.flags.sync_period, Time::from_secs(3));
    assert_eq!(set.hpa.flags.tolerance, 0.05);
    assert_eq!(set.hpa.flags.downscale_stabilization, Time::from_secs(60));
    assert_eq!(set.hpa.flags.metric_window, default.hpa.flags.metric_window);
    let p = compile("controller = { syncPeriod = \"0s\", tolerance = 1.5 }\n").unwrap_err();
    assert!(
        message(&p, "keda.controller.syncPeriod").contains("above 0"),
        "{p:?}"
    );
    assert!(
        message(&p, "keda.controller.tolerance").contains("1.5"),
        "{p:?}"
    );
}

#[test]
fn a_spec_played_faster_is_judged_against_limits_divided_by_its_speed() {
    use lab_autoscale::spec::PlaySpeed;
    for bad in [0.0, -2.0, f64::NAN, f64::INFINITY] {
        assert_eq!(PlaySpeed::new(bad), None, "{bad}");
    }
    assert_eq!(PlaySpeed::default(), PlaySpeed::AT_PACE);
    let ten = PlaySpeed::new(10.0).unwrap();
    // Knative's 6 s minimum window is 600 ms played ten times faster; 500 ms is
    // below it, and at pace 600 ms is refused as in a scenario file.
    let with = |window: &str, speed| {
        let mut spec = parse(&format!(
            "[kpa]\nwindow = \"{window}\"\nscale-to-zero-grace-period = \"600ms\"\n\
             tick-interval = \"200ms\"\nmetric-bucket = \"100ms\"\n"
        ));
        spec.played_faster = speed;
        spec.problems(Bounds { min: 0, max: 10 })
    };
    assert_eq!(with("600ms", ten), vec![]);
    let p = with("500ms", ten);
    assert!(
        message(&p, "kpa.window").contains("played 10 times faster"),
        "{p:?}"
    );
    let p = with("600ms", PlaySpeed::AT_PACE);
    message(&p, "kpa.window");
    message(&p, "kpa.scale-to-zero-grace-period");
    // The played flag is never read from a file.
    assert!(toml::from_str::<AutoscalerSpec>("played_faster = 10.0\n[kpa]\n").is_err());
    // The HPA behavior's whole seconds are divided as they compile.
    let mut hpa = parse(
        "[hpa]\nbehavior = { scaleDown = { stabilizationWindowSeconds = 15, policies = [{ type = \"Pods\", value = 1, periodSeconds = 15 }] } }\n",
    );
    hpa.played_faster = ten;
    let a = Autoscaler::new(&hpa, Bounds { min: 1, max: 10 }, 0, Time::ZERO);
    assert!(a.is_ok());
    let c = lab_autoscale::hpa::HpaConfig::compile_played(
        hpa.hpa.as_ref().unwrap(),
        Bounds { min: 1, max: 10 },
        "hpa",
        ten,
    )
    .unwrap();
    let (up, down) = c.behavior.unwrap();
    assert_eq!(down.window, Time::from_millis(1_500));
    assert_eq!(down.policies[0].period, Time::from_millis(1_500));
    assert!(up
        .policies
        .iter()
        .all(|p| p.period == Time::from_millis(1_500)));
}
