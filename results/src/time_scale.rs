//! Results of a run played K times faster (`lab_scenario::time_scaled`), read
//! back in the scenario's time: every time × K, every rate ÷ K, counts,
//! ratios, replica counts and utilizations as they are.
//!
//! Cost: the scaled scenario keeps its prices per hour, so what accumulates
//! over the run (USD, node-hours, GPU-hours) is 1/K of the scenario's and is
//! multiplied by K here; monthly projections are cost rates and stay.
//!
//! Histograms are rescaled bucket by bucket: a value moves by at most one
//! HdrHistogram bucket (0.1%) beyond the factor itself. Latency summaries are
//! multiplied directly, so they are exactly K times the run's.
//!
//! Left as they are: `scenario` (the caller echoes the scenario it was asked
//! to play there), `wall_clock`, the scaling events' `reason` text (its metric
//! values are the scaled run's) and `load.late_over_1ms` (1 ms of the scaled
//! run's clock).

use crate::{
    recheck, ColdStartPhases, Histograms, IntervalLatency, Judging, LatencyHistogram,
    LatencySummary, LoadFigures, LoadHistograms, Results,
};

/// Converts `r`, produced by a run `k` times faster than its scenario, to
/// scenario time, records `k` in `run.time_scale`, and re-judges the SLOs
/// with default judging (call `recheck` again for `--allow-warnings`). The
/// SLO thresholds are already in scenario time: `time_scaled` names each
/// scaled SLO by its scenario-time bound and this converts the thresholds
/// back. Fails, leaving `r` unchanged, for a `k` that is not finite and
/// positive, for results already converted, or for a histogram that does not
/// decode.
pub fn to_scenario_time(r: &mut Results, k: f64) -> Result<(), String> {
    if !(k.is_finite() && k > 0.0) {
        return Err(format!(
            "the time scale must be a positive finite number, got {k}"
        ));
    }
    if r.run.time_scale != 1.0 {
        return Err(format!(
            "these results are already in scenario time (time_scale {})",
            r.run.time_scale
        ));
    }
    if k == 1.0 {
        return Ok(());
    }
    // Histograms first: the only step that can fail.
    let histograms = scaled_histograms(&r.histograms, k)?;
    let load_histograms = match &r.load {
        Some(l) => Some(LoadHistograms {
            send_lag: scaled_text(&l.histograms.send_lag, k)?,
            service: scaled_text(&l.histograms.service, k)?,
        }),
        None => None,
    };
    r.histograms = histograms;
    let time = |x: &mut f64| *x *= k;
    let rate = |x: &mut f64| *x /= k;

    let run = &mut r.run;
    for x in [
        &mut run.duration_seconds,
        &mut run.warmup_seconds,
        &mut run.interval_seconds,
        &mut run.end_seconds,
    ] {
        time(x);
    }
    run.time_scale = k;

    let s = &mut r.summary;
    rate(&mut s.goodput_rps);
    rate(&mut s.throughput_rps);
    latency(&mut s.latency_seconds, k);
    latency(&mut s.queue_seconds, k);

    for svc in &mut r.services {
        rate(&mut svc.goodput_rps);
        rate(&mut svc.throughput_rps);
        latency(&mut svc.latency_seconds, k);
        latency(&mut svc.queue_seconds, k);
        // Replica counts and their time-weighted mean do not depend on the clock.
        for v in &mut svc.versions {
            latency(&mut v.latency_seconds, k);
        }
    }

    for p in &mut r.timeseries {
        time(&mut p.t_seconds);
        rate(&mut p.arrival_rps);
        rate(&mut p.completion_rps);
        rate(&mut p.failure_rps);
        let IntervalLatency { p50, p95, p99, max } = &mut p.latency_seconds;
        for x in [p50, p95, p99, max] {
            time(x);
        }
        time(&mut p.cost_usd);
        for s in &mut p.services {
            rate(&mut s.arrival_rps);
            rate(&mut s.completion_rps);
            time(&mut s.latency_p99_seconds);
        }
    }

    for e in &mut r.scaling_events {
        time(&mut e.t_seconds);
        e.reason = scaled_reason(&e.reason, k);
    }

    let c = &mut r.cold_starts;
    latency(&mut c.duration_seconds, k);
    let ColdStartPhases {
        node_provisioning,
        image_pull,
        model_load,
        readiness,
    } = &mut c.phases_seconds;
    for x in [node_provisioning, image_pull, model_load, readiness] {
        time(x);
    }

    let cost = &mut r.cost;
    time(&mut cost.total_usd);
    time(&mut cost.idle_usd);
    for p in &mut cost.by_pool {
        time(&mut p.usd);
        time(&mut p.node_hours);
        time(&mut p.gpu_hours);
    }
    for s in &mut cost.by_service {
        time(&mut s.usd);
    }

    if let (
        Some(LoadFigures {
            send_lag_seconds,
            service_seconds,
            histograms,
            shards,
            ..
        }),
        Some(h),
    ) = (&mut r.load, load_histograms)
    {
        latency(send_lag_seconds, k);
        latency(service_seconds, k);
        *histograms = h;
        for s in shards {
            rate(&mut s.requested_rps);
            rate(&mut s.achieved_rps);
            rate(&mut s.answered_rps);
            time(&mut s.send_lag_p99_seconds);
        }
    }

    for slo in &mut r.slo {
        let factor = match slo.unit.as_str() {
            "seconds" => k,
            "rps" => 1.0 / k,
            _ => 1.0,
        };
        slo.threshold *= factor;
        slo.observed = slo.observed.map(|x| x * factor);
    }
    r.slo = recheck(r, Judging::default());
    Ok(())
}

fn latency(l: &mut LatencySummary, k: f64) {
    let LatencySummary {
        count: _,
        mean,
        p50,
        p90,
        p95,
        p99,
        p999,
        max,
    } = l;
    for x in [mean, p50, p90, p95, p99, p999, max] {
        *x *= k;
    }
}

fn scaled_histograms(h: &Histograms, k: f64) -> Result<Histograms, String> {
    Ok(Histograms {
        overall: scaled_text(&h.overall, k)?,
        services: h
            .services
            .iter()
            .map(|(name, text)| {
                scaled_text(text, k)
                    .map(|t| (name.clone(), t))
                    .map_err(|e| format!("histogram of `{name}`: {e}"))
            })
            .collect::<Result<_, _>>()?,
    })
}

/// A serialized histogram rescaled; empty text (no histogram) stays empty.
fn scaled_text(text: &str, k: f64) -> Result<String, String> {
    if text.is_empty() {
        return Ok(String::new());
    }
    Ok(LatencyHistogram::from_base64(text)?.scaled(k).to_base64())
}

/// A scaling event's reason with its durations in scenario time. The shared
/// decisions ran on the played clock and write how long a state lasted as
/// "for DURATION" ("inactive for 6s", "node 3 empty for 1m"); those, and only
/// those, are K times longer in the scenario.
fn scaled_reason(reason: &str, k: f64) -> String {
    let mut out = String::with_capacity(reason.len());
    let mut rest = reason;
    while let Some(at) = rest.find("for ") {
        let (head, tail) = rest.split_at(at + 4);
        out.push_str(head);
        // The word "for", not the end of another one ("therefor ").
        let word = out[..out.len() - 4]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        if !word {
            rest = tail;
            continue;
        }
        let end = tail
            .find(|c: char| c == ',' || c == ';' || c == ')' || c.is_whitespace())
            .unwrap_or(tail.len());
        let token = &tail[..end];
        let has_unit = token.ends_with(|c: char| c.is_ascii_alphabetic());
        match lab_units::parse_duration(token) {
            Ok(d) if has_unit => {
                out.push_str(&lab_units::Dur::from_secs_f64(d.secs_f64() * k).to_string())
            }
            _ => out.push_str(token),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;
    use std::collections::BTreeMap;

    fn summary(base: f64) -> LatencySummary {
        LatencySummary {
            count: 1000,
            mean: base,
            p50: base,
            p90: 2.0 * base,
            p95: 3.0 * base,
            p99: 4.0 * base,
            p999: 5.0 * base,
            max: 6.0 * base,
        }
    }

    fn histogram(values_ns: &[u64]) -> LatencyHistogram {
        let mut h = LatencyHistogram::new();
        for v in values_ns {
            h.record_ns(*v);
        }
        h
    }

    fn counts() -> RequestCounts {
        RequestCounts {
            arrived: 1000,
            completed: 990,
            failed: 10,
            in_flight: 0,
            failed_by_reason: BTreeMap::from([("timeout".to_string(), 10)]),
        }
    }

    /// A results file of a run 10 times faster than its scenario.
    fn scaled_run() -> Results {
        let h = histogram(&(1..=1000).map(|i| i * 10_000).collect::<Vec<_>>());
        Results {
            schema_version: SCHEMA_VERSION,
            level: Level::Local,
            complete: true,
            seed: 3,
            scenario: ScenarioInfo {
                name: "s".into(),
                file: "s.toml".into(),
                overrides: vec![],
                config: serde_json::Value::Null,
            },
            run: RunInfo {
                duration_seconds: 60.0,
                warmup_seconds: 6.0,
                interval_seconds: 1.0,
                end_seconds: 60.0,
                time_scale: 1.0,
                notes: Vec::new(),
            },
            summary: Summary {
                requests: counts(),
                goodput_rps: 100.0,
                throughput_rps: 110.0,
                error_rate: 0.01,
                latency_seconds: summary(0.001),
                queue_seconds: summary(0.0001),
            },
            services: vec![ServiceSummary {
                name: "a".into(),
                requests: counts(),
                goodput_rps: 100.0,
                throughput_rps: 110.0,
                error_rate: 0.01,
                latency_seconds: summary(0.001),
                queue_seconds: summary(0.0001),
                replicas: ReplicaSummary {
                    min_ready: 1,
                    max_ready: 4,
                    mean_ready: 2.5,
                    max_desired: 5,
                    restarts: 0,
                },
                versions: vec![VersionSummary {
                    name: "v1".into(),
                    traffic_percent: 100.0,
                    requests: counts(),
                    latency_seconds: summary(0.001),
                }],
                batching: None,
            }],
            timeseries: vec![TimePoint {
                t_seconds: 2.0,
                arrival_rps: 120.0,
                completion_rps: 110.0,
                failure_rps: 10.0,
                latency_seconds: IntervalLatency {
                    p50: 0.001,
                    p95: 0.002,
                    p99: 0.003,
                    max: 0.004,
                },
                queue_depth: 7,
                gpu_busy_fraction: 0.5,
                cost_usd: 0.01,
                services: vec![ServicePoint {
                    name: "a".into(),
                    desired_replicas: 3,
                    ready_replicas: 2,
                    arrival_rps: 120.0,
                    completion_rps: 110.0,
                    queue_depth: 7,
                    latency_p99_seconds: 0.003,
                    batch_fill_fraction: Some(0.5),
                }],
                node_pools: vec![],
            }],
            scaling_events: vec![ScalingEvent {
                t_seconds: 1.5,
                target: "a".into(),
                autoscaler: "hpa".into(),
                from: 1,
                to: 3,
                reason: "r".into(),
            }],
            cold_starts: ColdStarts {
                count: 2,
                duration_seconds: summary(3.0),
                requests_delayed: 4,
                phases_seconds: ColdStartPhases {
                    node_provisioning: 1.0,
                    image_pull: 2.0,
                    model_load: 3.0,
                    readiness: 0.5,
                },
            },
            cost: Cost {
                total_usd: 0.1,
                monthly_usd: 500.0,
                by_pool: vec![PoolCost {
                    name: "p".into(),
                    usd: 0.1,
                    node_hours: 0.05,
                    gpu_hours: 0.05,
                    monthly_usd: 500.0,
                }],
                by_service: vec![ServiceCost {
                    name: "a".into(),
                    usd: 0.08,
                    monthly_usd: 400.0,
                }],
                idle_usd: 0.02,
            },
            slo: vec![],
            warnings: vec![],
            histograms: Histograms {
                overall: h.to_base64(),
                services: BTreeMap::from([("a".to_string(), h.to_base64())]),
            },
            wall_clock: WallClock::default(),
            load: Some(LoadFigures {
                send_lag_seconds: summary(0.0001),
                service_seconds: summary(0.001),
                late_over_1ms: 5,
                refused_in_flight_cap: 1,
                histograms: LoadHistograms {
                    send_lag: h.to_base64(),
                    service: String::new(),
                },
                shards: vec![],
            }),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
    }

    #[test]
    fn times_grow_rates_shrink_and_counts_stay() {
        let before = scaled_run();
        let mut r = before.clone();
        to_scenario_time(&mut r, 10.0).unwrap();
        assert_eq!(r.run.time_scale, 10.0);
        assert!(close(r.run.duration_seconds, 600.0));
        assert!(close(r.run.warmup_seconds, 60.0));
        assert!(close(r.run.interval_seconds, 10.0));
        assert!(close(r.run.end_seconds, 600.0));
        assert_eq!(r.summary.requests, before.summary.requests);
        assert_eq!(r.summary.error_rate, 0.01);
        assert!(close(r.summary.throughput_rps, 11.0));
        assert!(close(r.summary.goodput_rps, 10.0));
        assert!(close(r.summary.latency_seconds.p99, 0.04));
        assert!(close(r.summary.queue_seconds.max, 0.006));
        assert_eq!(r.summary.latency_seconds.count, 1000);
        let s = &r.services[0];
        assert_eq!(s.replicas, before.services[0].replicas);
        assert!(close(s.versions[0].latency_seconds.p50, 0.01));
        assert!(close(s.throughput_rps, 11.0));
        let p = &r.timeseries[0];
        assert!(close(p.t_seconds, 20.0));
        assert!(close(p.arrival_rps, 12.0));
        assert!(close(p.failure_rps, 1.0));
        assert!(close(p.latency_seconds.max, 0.04));
        assert!(close(p.cost_usd, 0.1));
        assert_eq!(p.queue_depth, 7);
        assert_eq!(p.gpu_busy_fraction, 0.5);
        assert!(close(p.services[0].completion_rps, 11.0));
        assert!(close(p.services[0].latency_p99_seconds, 0.03));
        assert_eq!(p.services[0].batch_fill_fraction, Some(0.5));
        assert!(close(r.scaling_events[0].t_seconds, 15.0));
        assert_eq!(r.scaling_events[0].to, 3);
        assert!(close(r.cold_starts.duration_seconds.mean, 30.0));
        assert!(close(r.cold_starts.phases_seconds.readiness, 5.0));
        assert_eq!(r.cold_starts.requests_delayed, 4);
        // Prices per hour of the played run: accumulated cost grows, the monthly rate stays.
        assert!(close(r.cost.total_usd, 1.0));
        assert!(close(r.cost.by_pool[0].node_hours, 0.5));
        assert!(close(r.cost.by_service[0].usd, 0.8));
        assert!(close(r.cost.idle_usd, 0.2));
        assert_eq!(r.cost.monthly_usd, 500.0);
        assert_eq!(r.cost.by_pool[0].monthly_usd, 500.0);
        let load = r.load.as_ref().unwrap();
        assert!(close(load.send_lag_seconds.p50, 0.001));
        assert_eq!(load.late_over_1ms, 5);
        assert_eq!(load.histograms.service, "");
    }

    #[test]
    fn histograms_are_rescaled_within_a_bucket() {
        let before = scaled_run();
        let mut r = before.clone();
        to_scenario_time(&mut r, 10.0).unwrap();
        let old = LatencyHistogram::from_base64(&before.histograms.overall).unwrap();
        let new = LatencyHistogram::from_base64(&r.histograms.overall).unwrap();
        assert_eq!(new.count(), old.count());
        // The exact sum rides along, so the mean scales exactly.
        assert!(close(new.mean_seconds(), 10.0 * old.mean_seconds()));
        for q in [0.5, 0.9, 0.99, 1.0] {
            let (a, b) = (new.quantile_seconds(q), 10.0 * old.quantile_seconds(q));
            assert!((a - b).abs() <= 0.002 * b, "q {q}: {a} against {b}");
        }
        let svc = LatencyHistogram::from_base64(&r.histograms.services["a"]).unwrap();
        assert_eq!(svc.summary(), new.summary());
        let lag = LatencyHistogram::from_base64(&r.load.unwrap().histograms.send_lag).unwrap();
        assert_eq!(lag.summary(), new.summary());
    }

    #[test]
    fn slos_are_judged_again_in_scenario_time() {
        let mut r = scaled_run();
        // As the scaled run judged them: p99 4 ms against the scaled 5 ms bound,
        // goodput 100 req/s against the scaled 50.
        r.slo = vec![
            SloResult {
                name: "p99 latency <= 50ms".into(),
                metric: SloMetric::P99,
                service: None,
                passed: true,
                verdict: Some(SloVerdict::Pass),
                reason: None,
                observed: Some(0.004),
                threshold: 0.005,
                bound: SloThreshold::Max,
                unit: "seconds".into(),
            },
            SloResult {
                name: "goodput >= 5 req/s".into(),
                metric: SloMetric::GoodputRps,
                service: None,
                passed: true,
                verdict: Some(SloVerdict::Pass),
                reason: None,
                observed: Some(100.0),
                threshold: 50.0,
                bound: SloThreshold::Min,
                unit: "rps".into(),
            },
        ];
        to_scenario_time(&mut r, 10.0).unwrap();
        assert!(close(r.slo[0].threshold, 0.05));
        assert!(close(r.slo[0].observed.unwrap(), 0.04));
        assert!(close(r.slo[1].threshold, 5.0));
        assert!(close(r.slo[1].observed.unwrap(), 10.0));
        assert!(r.passed());
        // A bound tightened by hand is judged on the converted figures.
        r.slo[0].threshold = 0.039;
        assert_eq!(
            recheck(&r, Judging::default())[0].verdict,
            Some(SloVerdict::Fail)
        );
    }

    #[test]
    fn bad_factors_and_double_conversion_are_refused() {
        let mut r = scaled_run();
        for k in [0.0, -2.0, f64::NAN, f64::INFINITY] {
            assert!(to_scenario_time(&mut r, k).is_err(), "k = {k}");
        }
        assert_eq!(r, scaled_run(), "a refused conversion changes nothing");
        to_scenario_time(&mut r, 4.0).unwrap();
        let once = r.clone();
        let e = to_scenario_time(&mut r, 4.0).unwrap_err();
        assert!(e.contains("already"), "{e}");
        assert_eq!(r, once);
        let mut same = scaled_run();
        to_scenario_time(&mut same, 1.0).unwrap();
        assert_eq!(same, scaled_run(), "k = 1 changes nothing");
    }

    #[test]
    fn a_broken_histogram_leaves_the_results_unchanged() {
        let mut r = scaled_run();
        r.histograms.services.insert("b".into(), "1:???".into());
        let before = r.clone();
        let e = to_scenario_time(&mut r, 10.0).unwrap_err();
        assert!(e.contains("`b`"), "{e}");
        assert_eq!(r, before);
    }

    #[test]
    fn the_factor_is_written_only_when_it_is_not_one() {
        let r = scaled_run();
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("time_scale"));
        let mut scaled = r.clone();
        to_scenario_time(&mut scaled, 2.5).unwrap();
        let text = serde_json::to_string(&scaled).unwrap();
        assert!(text.contains("\"time_scale\":2.5"));
        let back: Results = serde_json::from_str(&text).unwrap();
        assert_eq!(back.run.time_scale, 2.5);
        let plain: Results = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(plain.run.time_scale, 1.0);
    }

    #[test]
    fn durations_in_reasons_are_read_back_and_nothing_else() {
        let k = 10.0;
        assert_eq!(
            scaled_reason(
                "kpa: 1 ready -> 0; activator in path for 36.216691946s, scaling to 0",
                k
            ),
            "kpa: 1 ready -> 0; activator in path for 362.166919s, scaling to 0"
        );
        assert_eq!(
            scaled_reason("node 5 empty for 1m", k),
            "node 5 empty for 10m"
        );
        assert_eq!(
            scaled_reason("inactive for 600ms, scaling to 0", k),
            "inactive for 6s, scaling to 0"
        );
        // Counts and values stay as they are, "for" or not.
        let plain = "kpa: stable concurrency 0.92, panic 9.15 for 3 pods (target 3.50/pod)";
        assert_eq!(scaled_reason(plain, k), plain);
        assert_eq!(
            scaled_reason("waiting for capacity", k),
            "waiting for capacity"
        );
        assert_eq!(scaled_reason("xfor 5s", k), "xfor 5s");
    }
}
