//! Counts, histograms and the per-interval time series of one run, and their
//! rendering as results.json.
//!
//! Every request is timed three ways: latency from the intended send (what a
//! user of the service would see; immune to coordinated omission), service time
//! from the actual send, and the send lag between the two.

use crate::client::Failure;
use lab_results::{IntervalLatency, LatencyHistogram, RequestCounts, ServicePoint, TimePoint};

/// Reason key of arrivals refused because `max_in_flight` requests were pending.
pub const REFUSED: &str = "in_flight_cap";

/// Latency, service time and send lag of one group of requests.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub counts: RequestCounts,
    /// From intended send to the end of the answer, completed requests after warm-up.
    pub latency: LatencyHistogram,
    /// From actual send to the end of the answer, same requests.
    pub service: LatencyHistogram,
    /// From intended to actual send, every request that was sent.
    pub lag: LatencyHistogram,
}

/// How one sent request went, in nanoseconds from the start of the run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub stream: usize,
    pub intended_ns: u64,
    pub sent_ns: u64,
    pub done_ns: u64,
    pub result: Result<(), Failure>,
}

#[derive(Debug, Clone, Default)]
struct Point {
    arrivals: u64,
    completions: u64,
    failures: u64,
    latency: IntervalLatency,
    queue_depth: u64,
    services: Vec<ServiceCounts>,
}

#[derive(Debug, Clone, Default)]
struct ServiceCounts {
    arrivals: u64,
    completions: u64,
    queue_depth: u64,
    p99: f64,
}

/// Everything recorded during a run.
#[derive(Debug, Clone)]
pub struct Recorder {
    interval_ns: u64,
    warmup_ns: u64,
    /// Distinct service names, in order of first stream.
    pub services: Vec<String>,
    stream_service: Vec<usize>,
    pub overall: Stats,
    pub per_service: Vec<Stats>,
    points: Vec<Point>,
    /// The interval whose completions go into the live histograms.
    live: usize,
    live_overall: LatencyHistogram,
    live_services: Vec<LatencyHistogram>,
}

impl Recorder {
    /// `stream_services[i]` is the service name of stream `i`.
    pub fn new(stream_services: &[String], interval_ns: u64, warmup_ns: u64) -> Recorder {
        let mut services: Vec<String> = Vec::new();
        let stream_service = stream_services
            .iter()
            .map(|name| match services.iter().position(|s| s == name) {
                Some(i) => i,
                None => {
                    services.push(name.clone());
                    services.len() - 1
                }
            })
            .collect();
        let n = services.len();
        Recorder {
            interval_ns: interval_ns.max(1),
            warmup_ns,
            services,
            stream_service,
            overall: Stats::default(),
            per_service: vec![Stats::default(); n],
            points: Vec::new(),
            live: 0,
            live_overall: LatencyHistogram::new(),
            live_services: vec![LatencyHistogram::new(); n],
        }
    }

    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    fn point(&mut self, t_ns: u64) -> &mut Point {
        let i = (t_ns / self.interval_ns) as usize;
        let n = self.services.len();
        if self.points.len() <= i {
            self.points.resize_with(i + 1, || Point {
                services: vec![ServiceCounts::default(); n],
                ..Point::default()
            });
        }
        &mut self.points[i]
    }

    /// An arrival handed to the client at its due time.
    pub fn dispatched(&mut self, stream: usize, intended_ns: u64) {
        let s = self.stream_service[stream];
        for st in [&mut self.overall, &mut self.per_service[s]] {
            st.counts.arrived += 1;
            st.counts.in_flight += 1;
        }
        let p = self.point(intended_ns);
        p.arrivals += 1;
        p.services[s].arrivals += 1;
    }

    /// An arrival refused because the in-flight cap was reached: it counts as
    /// arrived and failed, so the schedule's total is always accounted for.
    pub fn refused(&mut self, stream: usize, intended_ns: u64) {
        let s = self.stream_service[stream];
        for st in [&mut self.overall, &mut self.per_service[s]] {
            st.counts.arrived += 1;
            st.counts.failed += 1;
            bump(&mut st.counts.failed_by_reason, REFUSED);
        }
        let p = self.point(intended_ns);
        p.arrivals += 1;
        p.failures += 1;
        p.services[s].arrivals += 1;
    }

    /// A dispatched request that ended (answered, failed or timed out).
    pub fn finished(&mut self, o: &Outcome) {
        let s = self.stream_service[o.stream];
        self.roll_to(o.done_ns);
        let latency = o.done_ns.saturating_sub(o.intended_ns);
        let service = o.done_ns.saturating_sub(o.sent_ns);
        let lag = o.sent_ns.saturating_sub(o.intended_ns);
        let measured = o.intended_ns >= self.warmup_ns;
        for st in [&mut self.overall, &mut self.per_service[s]] {
            st.counts.in_flight -= 1;
            st.lag.record_ns(lag);
            match &o.result {
                Ok(()) => {
                    st.counts.completed += 1;
                    if measured {
                        st.latency.record_ns(latency);
                        st.service.record_ns(service);
                    }
                }
                Err(f) => {
                    st.counts.failed += 1;
                    bump(&mut st.counts.failed_by_reason, &f.key());
                }
            }
        }
        let ok = o.result.is_ok();
        if ok && measured {
            self.live_overall.record_ns(latency);
            self.live_services[s].record_ns(latency);
        }
        let p = self.point(o.done_ns);
        if ok {
            p.completions += 1;
            p.services[s].completions += 1;
        } else {
            p.failures += 1;
        }
    }

    /// Closes the live interval(s) before `t_ns`'s: their latency percentiles and
    /// the queue depth (requests in flight) at their end are fixed now.
    fn roll_to(&mut self, t_ns: u64) {
        let target = (t_ns / self.interval_ns) as usize;
        if target > self.live {
            self.close_live();
            let depth = self.overall.counts.in_flight;
            let depths: Vec<u64> = self
                .per_service
                .iter()
                .map(|s| s.counts.in_flight)
                .collect();
            for i in self.live + 1..target {
                let p = self.point(i as u64 * self.interval_ns);
                p.queue_depth = depth;
                for (sp, d) in p.services.iter_mut().zip(&depths) {
                    sp.queue_depth = *d;
                }
            }
            self.live = target;
        }
    }

    fn close_live(&mut self) {
        let at = self.live as u64 * self.interval_ns;
        let depth = self.overall.counts.in_flight;
        let depths: Vec<u64> = self
            .per_service
            .iter()
            .map(|s| s.counts.in_flight)
            .collect();
        let lat = IntervalLatency {
            p50: self.live_overall.quantile_seconds(0.50),
            p95: self.live_overall.quantile_seconds(0.95),
            p99: self.live_overall.quantile_seconds(0.99),
            max: self.live_overall.max_seconds(),
        };
        let p99s: Vec<f64> = self
            .live_services
            .iter()
            .map(|h| h.quantile_seconds(0.99))
            .collect();
        let p = self.point(at);
        p.latency = lat;
        p.queue_depth = depth;
        for ((sp, d), q) in p.services.iter_mut().zip(&depths).zip(&p99s) {
            sp.queue_depth = *d;
            sp.p99 = *q;
        }
        self.live_overall.reset();
        self.live_services
            .iter_mut()
            .for_each(LatencyHistogram::reset);
    }

    /// The time series up to `end_ns` (or the last activity, if later).
    pub fn timeseries(&mut self, end_ns: u64) -> Vec<TimePoint> {
        self.close_live();
        let n_end = end_ns.div_ceil(self.interval_ns) as usize;
        if self.points.len() < n_end {
            self.point((n_end as u64 - 1) * self.interval_ns);
        }
        let secs = self.interval_ns as f64 / 1e9;
        self.points
            .iter()
            .enumerate()
            .map(|(i, p)| TimePoint {
                t_seconds: i as f64 * secs,
                arrival_rps: p.arrivals as f64 / secs,
                completion_rps: p.completions as f64 / secs,
                failure_rps: p.failures as f64 / secs,
                latency_seconds: p.latency,
                queue_depth: p.queue_depth,
                gpu_busy_fraction: 0.0,
                cost_usd: 0.0,
                services: p
                    .services
                    .iter()
                    .zip(&self.services)
                    .map(|(s, name)| ServicePoint {
                        name: name.clone(),
                        desired_replicas: 0,
                        ready_replicas: 0,
                        arrival_rps: s.arrivals as f64 / secs,
                        completion_rps: s.completions as f64 / secs,
                        queue_depth: s.queue_depth,
                        latency_p99_seconds: s.p99,
                        batch_fill_fraction: None,
                    })
                    .collect(),
                node_pools: Vec::new(),
            })
            .collect()
    }
}

/// Adds one to a reason's count without allocating its key after the first time
/// (refusals can come by the hundred thousand a second).
fn bump(reasons: &mut std::collections::BTreeMap<String, u64>, key: &str) {
    match reasons.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            reasons.insert(key.to_string(), 1);
        }
    }
}

/// Fraction of `h`'s values above `ns`.
pub fn fraction_above(h: &LatencyHistogram, ns: u64) -> f64 {
    if h.count() == 0 {
        0.0
    } else {
        1.0 - h.fraction_at_or_below(ns)
    }
}

/// Count of `h`'s values above `ns`.
pub fn count_above(h: &LatencyHistogram, ns: u64) -> u64 {
    (fraction_above(h, ns) * h.count() as f64).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(stream: usize, intended_ms: u64, sent_ms: u64, done_ms: u64) -> Outcome {
        Outcome {
            stream,
            intended_ns: intended_ms * 1_000_000,
            sent_ns: sent_ms * 1_000_000,
            done_ns: done_ms * 1_000_000,
            result: Ok(()),
        }
    }

    #[test]
    fn counts_are_conserved_and_timed_three_ways() {
        let mut r = Recorder::new(&["a".into(), "b".into(), "a".into()], 1_000_000_000, 0);
        r.dispatched(0, 0);
        r.dispatched(1, 10_000_000);
        r.refused(2, 20_000_000);
        r.dispatched(2, 30_000_000);
        r.finished(&ok(0, 0, 2, 52));
        r.finished(&Outcome {
            result: Err(Failure::Http(503)),
            ..ok(1, 10, 10, 1500)
        });
        assert_eq!(r.services, vec!["a", "b"]);
        let c = &r.overall.counts;
        assert_eq!(
            (c.arrived, c.completed, c.failed, c.in_flight),
            (4, 1, 2, 1)
        );
        assert!(c.is_conserved());
        assert_eq!(c.failed_by_reason[REFUSED], 1);
        assert_eq!(c.failed_by_reason["http_503"], 1);
        assert!(r.per_service[0].counts.is_conserved());
        let lat = r.overall.latency.summary();
        assert!(
            (lat.max - 0.052).abs() < 1e-4,
            "latency from intended send: {lat:?}"
        );
        assert!((r.overall.service.max_seconds() - 0.050).abs() < 1e-4);
        assert!((r.overall.lag.max_seconds() - 0.002).abs() < 1e-5);

        let ts = r.timeseries(2_000_000_000);
        assert_eq!(ts.len(), 2);
        assert_eq!(ts[0].arrival_rps, 4.0);
        assert_eq!(ts[0].completion_rps, 1.0);
        assert_eq!(ts[0].failure_rps, 1.0, "the refusal fails in its interval");
        assert_eq!(ts[1].failure_rps, 1.0, "the 503 came back after 1.5 s");
        assert!((ts[0].latency_seconds.max - 0.052).abs() < 1e-4);
        assert_eq!(
            ts[0].queue_depth, 2,
            "in flight when the first interval closed"
        );
        assert_eq!(ts[0].services[0].arrival_rps, 3.0);
    }

    #[test]
    fn warmup_requests_count_but_stay_out_of_latency() {
        let mut r = Recorder::new(&["a".into()], 1_000_000_000, 100_000_000);
        r.dispatched(0, 50_000_000);
        r.dispatched(0, 150_000_000);
        r.finished(&ok(0, 50, 50, 900));
        r.finished(&ok(0, 150, 150, 160));
        assert_eq!(r.overall.counts.completed, 2);
        assert_eq!(r.overall.latency.count(), 1);
        assert!(r.overall.latency.max_seconds() < 0.02);
    }
}
