//! results.json from a run's recorder, the load generator's own figures (send
//! lag, service time, refusals) and the compact text summary.

use crate::recorder::{count_above, fraction_above, Recorder, Stats, REFUSED};
use lab_results::{
    ColdStarts, Cost, Histograms, LatencyHistogram, LatencySummary, Level, LoadFigures,
    LoadHistograms, ReplicaSummary, RequestCounts, Results, RunInfo, ScenarioInfo, ServiceSummary,
    Summary, WallClock, SCHEMA_VERSION,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// A request is "late" when it left more than this after its intended instant.
pub const LATE_NS: u64 = 1_000_000;

/// What results.json needs beyond the recorder.
#[derive(Debug, Clone)]
pub struct RunMeta {
    pub level: Level,
    pub complete: bool,
    pub seed: u64,
    pub scenario: ScenarioInfo,
    /// Planned length of the replay.
    pub duration_seconds: f64,
    /// Where the replay stopped (the planned length unless interrupted).
    pub end_seconds: f64,
    pub warmup_seconds: f64,
    pub started_at: SystemTime,
    pub elapsed_seconds: f64,
}

/// The run's figures for a terminal or `--json` (results.json holds them under
/// `summary` and `load`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    pub mode: &'static str,
    pub shard: String,
    pub complete: bool,
    /// Arrivals reached by the pacer (sent or refused) per second of replay.
    pub offered_rps: f64,
    pub throughput_rps: f64,
    pub arrived: u64,
    pub sent: u64,
    /// Arrivals refused by the in-flight cap.
    pub refused: u64,
    pub completed: u64,
    pub failed: u64,
    pub failed_by_reason: BTreeMap<String, u64>,
    /// From intended send to answer, completed requests.
    pub latency_seconds: LatencySummary,
    /// From actual send to answer, the same requests.
    pub service_time_seconds: LatencySummary,
    /// From intended to actual send, every sent request.
    pub send_lag_seconds: LatencySummary,
    /// Requests sent more than 1 ms after their intended instant.
    pub late_over_1ms: u64,
    pub late_over_1ms_fraction: f64,
}

impl LoadReport {
    pub fn new(rec: &Recorder, mode: &'static str, shard: String, meta: &RunMeta) -> LoadReport {
        let st = &rec.overall;
        let c = &st.counts;
        let refused = c.failed_by_reason.get(REFUSED).copied().unwrap_or(0);
        let secs = meta.end_seconds.max(1e-9);
        LoadReport {
            mode,
            shard,
            complete: meta.complete,
            offered_rps: c.arrived as f64 / secs,
            throughput_rps: c.completed as f64 / secs,
            arrived: c.arrived,
            sent: c.arrived - refused,
            refused,
            completed: c.completed,
            failed: c.failed,
            failed_by_reason: c.failed_by_reason.clone(),
            latency_seconds: st.latency.summary(),
            service_time_seconds: st.service.summary(),
            send_lag_seconds: st.lag.summary(),
            late_over_1ms: count_above(&st.lag, LATE_NS),
            late_over_1ms_fraction: fraction_above(&st.lag, LATE_NS),
        }
    }

    /// A few lines for a terminal.
    pub fn text(&self) -> String {
        let ms = |s: f64| format!("{:.2}ms", s * 1e3);
        let l = &self.latency_seconds;
        let sv = &self.service_time_seconds;
        let g = &self.send_lag_seconds;
        let mut out =
            format!(
            "{} loop{}{}: {} arrived, {} completed, {} failed ({} refused by the in-flight cap)\n\
             rate: offered {:.1} req/s, completed {:.1} req/s\n\
             latency (from intended send): p50 {} p90 {} p99 {} p99.9 {} max {}\n\
             service time (from actual send): p50 {} p90 {} p99 {} p99.9 {} max {}\n\
             send lag: p50 {} p99 {} max {}; {} sent more than 1 ms late ({:.3}%)\n",
            self.mode,
            if self.shard == "0/1" { String::new() } else { format!(", shard {}", self.shard) },
            if self.complete { "" } else { " (interrupted: partial)" },
            self.arrived,
            self.completed,
            self.failed,
            self.refused,
            self.offered_rps,
            self.throughput_rps,
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p999),
            ms(l.max),
            ms(sv.p50),
            ms(sv.p90),
            ms(sv.p99),
            ms(sv.p999),
            ms(sv.max),
            ms(g.p50),
            ms(g.p99),
            ms(g.max),
            self.late_over_1ms,
            self.late_over_1ms_fraction * 100.0,
        );
        if !self.failed_by_reason.is_empty() {
            let reasons: Vec<String> = self
                .failed_by_reason
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect();
            out.push_str(&format!("failures: {}\n", reasons.join(", ")));
        }
        out
    }
}

/// The summary block of a group, from its counts and histograms.
pub fn summary_of(
    counts: &RequestCounts,
    latency: &LatencyHistogram,
    queue: LatencySummary,
    end_seconds: f64,
) -> Summary {
    let secs = end_seconds.max(1e-9);
    let throughput = counts.completed as f64 / secs;
    Summary {
        requests: counts.clone(),
        // No SLOs are judged here: every completed request counts as good.
        goodput_rps: throughput,
        throughput_rps: throughput,
        error_rate: if counts.arrived == 0 {
            0.0
        } else {
            counts.failed as f64 / counts.arrived as f64
        },
        latency_seconds: latency.summary(),
        queue_seconds: queue,
    }
}

/// One `services[]` entry.
pub fn service_summary(name: &str, s: &Summary) -> ServiceSummary {
    ServiceSummary {
        name: name.to_string(),
        requests: s.requests.clone(),
        goodput_rps: s.goodput_rps,
        throughput_rps: s.throughput_rps,
        error_rate: s.error_rate,
        latency_seconds: s.latency_seconds,
        queue_seconds: s.queue_seconds,
        replicas: ReplicaSummary::default(),
        versions: Vec::new(),
        batching: None,
    }
}

fn group(st: &Stats, end_seconds: f64) -> Summary {
    // The load generator cannot see the server's queues: `queue_seconds` stays
    // zero and the client-side figures go to `Results::load`.
    summary_of(
        &st.counts,
        &st.latency,
        LatencySummary::default(),
        end_seconds,
    )
}

/// `Results::load` from the send-lag and service-time histograms and the
/// refusal count; `lab merge` calls it again on merged histograms.
pub fn load_figures(
    lag: &LatencyHistogram,
    service: &LatencyHistogram,
    counts: &RequestCounts,
) -> LoadFigures {
    LoadFigures {
        send_lag_seconds: lag.summary(),
        service_seconds: service.summary(),
        late_over_1ms: count_above(lag, LATE_NS),
        refused_in_flight_cap: counts.failed_by_reason.get(REFUSED).copied().unwrap_or(0),
        histograms: LoadHistograms {
            send_lag: lag.to_base64(),
            service: service.to_base64(),
        },
        shards: Vec::new(),
    }
}

/// results.json for a finished (or interrupted) run.
pub fn results(rec: &mut Recorder, meta: &RunMeta) -> Results {
    let end_ns = (meta.end_seconds * 1e9) as u64;
    let timeseries = rec.timeseries(end_ns);
    let services = rec
        .services
        .iter()
        .zip(&rec.per_service)
        .map(|(name, st)| service_summary(name, &group(st, meta.end_seconds)))
        .collect();
    Results {
        schema_version: SCHEMA_VERSION,
        level: meta.level,
        complete: meta.complete,
        seed: meta.seed,
        scenario: meta.scenario.clone(),
        run: RunInfo {
            duration_seconds: meta.duration_seconds,
            warmup_seconds: meta.warmup_seconds,
            interval_seconds: rec.interval_ns() as f64 / 1e9,
            end_seconds: meta.end_seconds,
            time_scale: 1.0,
            notes: Vec::new(),
        },
        summary: group(&rec.overall, meta.end_seconds),
        services,
        timeseries,
        scaling_events: Vec::new(),
        cold_starts: ColdStarts::default(),
        cost: Cost::default(),
        slo: Vec::new(),
        warnings: Vec::new(),
        histograms: Histograms {
            overall: rec.overall.latency.to_base64(),
            services: rec
                .services
                .iter()
                .zip(&rec.per_service)
                .map(|(n, st)| (n.clone(), st.latency.to_base64()))
                .collect(),
        },
        wall_clock: WallClock {
            started_at: rfc3339(meta.started_at),
            elapsed_seconds: meta.elapsed_seconds,
            events: 0,
            events_per_second: 0.0,
            tool: format!("lab-loadgen {}", env!("CARGO_PKG_VERSION")),
            host: host_name(),
        },
        load: Some(load_figures(
            &rec.overall.lag,
            &rec.overall.service,
            &rec.overall.counts,
        )),
    }
}

fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

pub use lab_results::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_of_known_instants() {
        let at = |s: u64| rfc3339(SystemTime::UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00.000Z");
        assert_eq!(at(1_795_000_000), "2026-11-18T11:06:40.000Z");
    }
}
