//! Merging the results of load-generator shards. Counts add up and latency
//! histograms merge bucket by bucket, so the merged percentiles are those of one
//! process that had sent every shard's requests; nothing is averaged.

use crate::output::{load_figures, service_summary, summary_of};
use lab_results::{
    IntervalLatency, LatencyHistogram, LatencySummary, LoadFigures, RequestCounts, Results,
    ServicePoint, ShardFigures, TimePoint,
};

/// Merges shard results of one run into one. Fails when the parts do not come
/// from the same scenario, seed, level and interval.
pub fn merge(parts: &[Results]) -> Result<Results, String> {
    let first = parts.first().ok_or("nothing to merge")?;
    for (i, p) in parts.iter().enumerate().skip(1) {
        let mut diffs = Vec::new();
        if p.schema_version != first.schema_version {
            diffs.push(format!(
                "schema_version {} vs {}",
                p.schema_version, first.schema_version
            ));
        }
        if p.level != first.level {
            diffs.push(format!(
                "level {} vs {}",
                p.level.as_str(),
                first.level.as_str()
            ));
        }
        if p.seed != first.seed {
            diffs.push(format!("seed {} vs {}", p.seed, first.seed));
        }
        if p.scenario.name != first.scenario.name {
            diffs.push(format!(
                "scenario `{}` vs `{}`",
                p.scenario.name, first.scenario.name
            ));
        }
        if p.run.interval_seconds != first.run.interval_seconds {
            diffs.push(format!(
                "interval {} s vs {} s",
                p.run.interval_seconds, first.run.interval_seconds
            ));
        }
        if !diffs.is_empty() {
            return Err(format!(
                "part {} is not a shard of the same run as part 1: {}",
                i + 1,
                diffs.join(", ")
            ));
        }
    }
    let end = parts.iter().map(|p| p.run.end_seconds).fold(0.0, f64::max);

    let mut counts = RequestCounts::default();
    let mut hist = LatencyHistogram::new();
    for (i, p) in parts.iter().enumerate() {
        counts.add(&p.summary.requests);
        hist.merge(&decode(&p.histograms.overall, i, "overall")?);
    }

    let mut names: Vec<String> = Vec::new();
    for p in parts {
        for s in &p.services {
            if !names.contains(&s.name) {
                names.push(s.name.clone());
            }
        }
    }
    let mut services = Vec::new();
    let mut service_hists = std::collections::BTreeMap::new();
    for name in &names {
        let mut c = RequestCounts::default();
        let mut h = LatencyHistogram::new();
        let mut queues = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            if let Some(s) = p.service(name) {
                c.add(&s.requests);
                queues.push(s.queue_seconds);
            }
            if let Some(text) = p.histograms.services.get(name) {
                h.merge(&decode(text, i, name)?);
            }
        }
        let summary = summary_of(&c, &h, merge_queue(&queues), end);
        services.push(service_summary(name, &summary));
        service_hists.insert(name.clone(), h.to_base64());
    }

    let queues: Vec<LatencySummary> = parts.iter().map(|p| p.summary.queue_seconds).collect();
    let mut out = first.clone();
    out.complete = parts.iter().all(|p| p.complete);
    out.run.end_seconds = end;
    out.run.duration_seconds = parts
        .iter()
        .map(|p| p.run.duration_seconds)
        .fold(0.0, f64::max);
    out.summary = summary_of(&counts, &hist, merge_queue(&queues), end);
    out.services = services;
    out.timeseries = merge_series(parts, &names);
    out.slo = Vec::new();
    out.histograms.overall = hist.to_base64();
    out.histograms.services = service_hists;
    out.load = merge_load(parts, &counts)?;
    out.wall_clock.started_at = parts
        .iter()
        .map(|p| p.wall_clock.started_at.clone())
        .min()
        .unwrap_or_default();
    out.wall_clock.elapsed_seconds = parts
        .iter()
        .map(|p| p.wall_clock.elapsed_seconds)
        .fold(0.0, f64::max);
    let mut hosts: Vec<&str> = parts.iter().map(|p| p.wall_clock.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    out.wall_clock.host = hosts.join(",");
    Ok(out)
}

fn decode(text: &str, part: usize, which: &str) -> Result<LatencyHistogram, String> {
    LatencyHistogram::from_base64(text)
        .map_err(|e| format!("part {}: histogram `{which}`: {e}", part + 1))
}

/// The load generator's own figures: send-lag and service-time histograms
/// merge bucket by bucket like the latency ones, so their percentiles and the
/// late count are those of the whole run. Parts written without them (the
/// simulator) merge to none; a mix is refused.
fn merge_load(parts: &[Results], counts: &RequestCounts) -> Result<Option<LoadFigures>, String> {
    let with = parts.iter().filter(|p| p.load.is_some()).count();
    if with == 0 {
        return Ok(None);
    }
    if with != parts.len() {
        let i = parts.iter().position(|p| p.load.is_none()).unwrap_or(0);
        return Err(format!(
            "part {} has no `load` figures while other parts do",
            i + 1
        ));
    }
    let mut lag = LatencyHistogram::new();
    let mut service = LatencyHistogram::new();
    for (i, p) in parts.iter().enumerate() {
        let h = &p.load.as_ref().expect("checked above").histograms;
        lag.merge(&decode(&h.send_lag, i, "load.send_lag")?);
        service.merge(&decode(&h.service, i, "load.service")?);
    }
    let mut figures = load_figures(&lag, &service, counts);
    figures.shards = parts
        .iter()
        .enumerate()
        .map(|(i, p)| shard_figures(p, i, parts.len()))
        .collect();
    Ok(Some(figures))
}

/// One part's requested against achieved rate, over its run's length.
fn shard_figures(p: &Results, i: usize, n: usize) -> ShardFigures {
    let load = p.load.as_ref();
    let secs = p.run.end_seconds.max(1e-9);
    let r = &p.summary.requests;
    // Every request that ended was sent (its lag recorded), and so was every
    // one still in flight at the end.
    let sent = load.map_or(0, |l| l.send_lag_seconds.count) + r.in_flight;
    ShardFigures {
        shard: format!("{i}/{n}"),
        host: p.wall_clock.host.clone(),
        requested_rps: r.arrived as f64 / secs,
        achieved_rps: sent as f64 / secs,
        answered_rps: (r.completed + r.failed) as f64 / secs,
        arrived: r.arrived,
        completed: r.completed,
        failed: r.failed,
        send_lag_p99_seconds: load.map_or(0.0, |l| l.send_lag_seconds.p99),
    }
}

/// Files written before `load` existed kept the send lag here as a summary;
/// its merge is an upper bound: so its merge is an upper bound:
/// percentiles and max take the worst shard, the mean is weighted by count.
fn merge_queue(parts: &[LatencySummary]) -> LatencySummary {
    let count: u64 = parts.iter().map(|q| q.count).sum();
    let worst = |f: fn(&LatencySummary) -> f64| parts.iter().map(f).fold(0.0, f64::max);
    LatencySummary {
        count,
        mean: if count == 0 {
            0.0
        } else {
            parts.iter().map(|q| q.mean * q.count as f64).sum::<f64>() / count as f64
        },
        p50: worst(|q| q.p50),
        p90: worst(|q| q.p90),
        p95: worst(|q| q.p95),
        p99: worst(|q| q.p99),
        p999: worst(|q| q.p999),
        max: worst(|q| q.max),
    }
}

/// Rates are per-interval counts, so they add exactly once turned back into
/// counts; per-interval latency percentiles have no histogram behind them, so
/// they take the worst shard (exact for `max`).
fn merge_series(parts: &[Results], names: &[String]) -> Vec<TimePoint> {
    let secs = parts[0].run.interval_seconds.max(1e-9);
    let len = parts.iter().map(|p| p.timeseries.len()).max().unwrap_or(0);
    let count = |rps: f64| (rps * secs).round();
    (0..len)
        .map(|i| {
            let points: Vec<&TimePoint> =
                parts.iter().filter_map(|p| p.timeseries.get(i)).collect();
            let sum =
                |f: fn(&TimePoint) -> f64| points.iter().map(|p| count(f(p))).sum::<f64>() / secs;
            let worst = |f: fn(&IntervalLatency) -> f64| {
                points
                    .iter()
                    .map(|p| f(&p.latency_seconds))
                    .fold(0.0, f64::max)
            };
            TimePoint {
                t_seconds: i as f64 * secs,
                arrival_rps: sum(|p| p.arrival_rps),
                completion_rps: sum(|p| p.completion_rps),
                failure_rps: sum(|p| p.failure_rps),
                latency_seconds: IntervalLatency {
                    p50: worst(|l| l.p50),
                    p95: worst(|l| l.p95),
                    p99: worst(|l| l.p99),
                    max: worst(|l| l.max),
                },
                queue_depth: points.iter().map(|p| p.queue_depth).sum(),
                gpu_busy_fraction: 0.0,
                cost_usd: 0.0,
                services: names
                    .iter()
                    .map(|name| {
                        let sps: Vec<&ServicePoint> = points
                            .iter()
                            .filter_map(|p| p.services.iter().find(|s| &s.name == name))
                            .collect();
                        ServicePoint {
                            name: name.clone(),
                            desired_replicas: 0,
                            ready_replicas: 0,
                            arrival_rps: sps.iter().map(|s| count(s.arrival_rps)).sum::<f64>()
                                / secs,
                            completion_rps: sps
                                .iter()
                                .map(|s| count(s.completion_rps))
                                .sum::<f64>()
                                / secs,
                            queue_depth: sps.iter().map(|s| s.queue_depth).sum(),
                            latency_p99_seconds: sps
                                .iter()
                                .map(|s| s.latency_p99_seconds)
                                .fold(0.0, f64::max),
                            batch_fill_fraction: None,
                        }
                    })
                    .collect(),
                node_pools: Vec::new(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Failure;
    use crate::output::{results, RunMeta};
    use crate::recorder::{Outcome, Recorder};
    use lab_results::Level;
    use std::time::SystemTime;

    const INTERVAL: u64 = 1_000_000_000;

    /// 3000 requests over 3 s on two streams, with varied latencies and failures.
    fn outcomes() -> Vec<(u64, Outcome)> {
        let mut rng = lab_traffic::rng_for(5, 1);
        (0..3000u64)
            .map(|seq| {
                let intended = seq * 1_000_000;
                let sent = intended + (lab_traffic::uniform(&mut rng) * 200_000.0) as u64;
                let done = sent + (lab_traffic::uniform(&mut rng) * 80e6) as u64;
                let result = match seq % 17 {
                    3 => Err(Failure::Http(503)),
                    5 => Err(Failure::Timeout),
                    _ => Ok(()),
                };
                let o = Outcome {
                    stream: (seq % 3 == 0) as usize,
                    intended_ns: intended,
                    sent_ns: sent,
                    done_ns: done,
                    result,
                };
                (seq, o)
            })
            .collect()
    }

    fn record(events: &[(u64, Outcome)], keep: impl Fn(u64) -> bool) -> Results {
        let mut rec = Recorder::new(&["a".into(), "b".into()], INTERVAL, 0);
        let mine: Vec<&Outcome> = events
            .iter()
            .filter(|(s, _)| keep(*s))
            .map(|(_, o)| o)
            .collect();
        for o in &mine {
            rec.dispatched(o.stream, o.intended_ns);
        }
        let mut by_done = mine.clone();
        by_done.sort_by_key(|o| o.done_ns);
        for o in by_done {
            rec.finished(o);
        }
        let meta = RunMeta {
            level: Level::Cluster,
            complete: true,
            seed: 5,
            scenario: lab_results::ScenarioInfo {
                name: "t".into(),
                file: String::new(),
                overrides: vec![],
                config: serde_json::Value::Null,
            },
            duration_seconds: 3.0,
            end_seconds: 3.0,
            warmup_seconds: 0.0,
            started_at: SystemTime::UNIX_EPOCH,
            elapsed_seconds: 3.1,
        };
        results(&mut rec, &meta)
    }

    #[test]
    fn merged_shards_equal_the_whole_run_exactly() {
        let events = outcomes();
        let whole = record(&events, |_| true);
        let parts: Vec<Results> = (0..3)
            .map(|i| record(&events, move |s| s % 3 == i))
            .collect();
        let merged = merge(&parts).unwrap();

        assert_eq!(merged.summary.requests, whole.summary.requests);
        assert_eq!(
            merged.summary.latency_seconds,
            whole.summary.latency_seconds
        );
        assert_eq!(merged.summary.throughput_rps, whole.summary.throughput_rps);
        assert_eq!(merged.summary.error_rate, whole.summary.error_rate);
        assert_eq!(merged.histograms, whole.histograms);
        // Send lag, service time, late count and refusals merge exactly too.
        let (mut ml, wl) = (merged.load.unwrap(), whole.load.unwrap());
        // Each shard's requested and achieved rate, in shard order.
        let shards = std::mem::take(&mut ml.shards);
        assert_eq!(ml, wl);
        assert_eq!(shards.len(), 3);
        for (i, (sh, p)) in shards.iter().zip(&parts).enumerate() {
            assert_eq!(sh.shard, format!("{i}/3"));
            assert_eq!(sh.arrived, p.summary.requests.arrived);
            assert_eq!(sh.requested_rps, p.summary.requests.arrived as f64 / 3.0);
            assert_eq!(sh.achieved_rps, sh.requested_rps, "every arrival was sent");
            assert_eq!(
                sh.send_lag_p99_seconds,
                p.load.as_ref().unwrap().send_lag_seconds.p99
            );
        }
        assert_eq!(shards.iter().map(|s| s.arrived).sum::<u64>(), 3000);
        assert!(wl.send_lag_seconds.count == 3000 && wl.send_lag_seconds.max > 1e-4);
        assert!(wl.service_seconds.count > 0 && wl.late_over_1ms == 0);
        assert_eq!(merged.summary.queue_seconds, LatencySummary::default());
        for (m, w) in merged.services.iter().zip(&whole.services) {
            assert_eq!(m.name, w.name);
            assert_eq!(m.requests, w.requests);
            assert_eq!(m.latency_seconds, w.latency_seconds);
        }
        assert_eq!(merged.timeseries.len(), whole.timeseries.len());
        for (m, w) in merged.timeseries.iter().zip(&whole.timeseries) {
            assert_eq!(m.arrival_rps, w.arrival_rps);
            assert_eq!(m.completion_rps, w.completion_rps);
            assert_eq!(m.failure_rps, w.failure_rps);
            assert_eq!(m.latency_seconds.max, w.latency_seconds.max);
            assert_eq!(m.services[0].arrival_rps, w.services[0].arrival_rps);
        }
        // Averaging the parts' p99 would not be the whole's p99 in general; the
        // merge does not average, it re-reads the merged histogram.
        assert_eq!(
            merged.summary.latency_seconds.p99,
            whole.summary.latency_seconds.p99
        );
    }

    #[test]
    fn parts_of_different_runs_do_not_merge() {
        let events = outcomes();
        let a = record(&events, |s| s % 2 == 0);
        let mut b = record(&events, |s| s % 2 == 1);
        b.seed = 6;
        let err = merge(&[a.clone(), b]).unwrap_err();
        assert!(err.contains("seed 6 vs 5"), "{err}");
        let mut c = a.clone();
        c.histograms.overall = "garbage".into();
        assert!(merge(&[a, c]).unwrap_err().contains("histogram"));
        assert!(merge(&[]).is_err());
        let mut d = record(&events, |s| s % 2 == 1);
        d.load = None;
        let a = record(&events, |s| s % 2 == 0);
        assert!(merge(&[a.clone(), d]).unwrap_err().contains("no `load`"));
        let mut e = a.clone();
        e.load.as_mut().unwrap().histograms.send_lag = "garbage".into();
        assert!(merge(&[a, e]).unwrap_err().contains("load.send_lag"));
    }
}
