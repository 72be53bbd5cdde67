//! `results.json`: the one results format written by every level (sim, local,
//! cluster) and read by `lab check`, `lab report`, `lab merge` and `lab plan`.
//!
//! Units are in the key names (`_seconds`, `_usd`, `_rps`). Fields that record the
//! wall clock live under `wall_clock` alone, so two runs of the same scenario and
//! seed compare equal once that key is removed.
//!
//! Architecture invariant: pure data and arithmetic; reading and writing files is
//! the caller's business.

mod histogram;
mod slo;
mod time_scale;

pub use histogram::{HistogramBuffer, LatencyHistogram, HISTOGRAM_MAX_NS};
pub use slo::{
    evaluate_slos, min_samples, observe, recheck, BoundValue, Judging, SloMetric, SloSpec,
    SloThreshold, SloVerdict,
};
pub use time_scale::to_scenario_time;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped on any change that an older reader would misread. Version 2 added
/// `warnings` and the SLO `verdict` (with `no_data`); files of version 1 still
/// read, their verdicts taken from `passed`.
pub const SCHEMA_VERSION: u32 = 2;
/// The oldest schema version readers still accept.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Sim,
    Local,
    Cluster,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Sim => "sim",
            Level::Local => "local",
            Level::Cluster => "cluster",
        }
    }
}

/// The whole results file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Results {
    pub schema_version: u32,
    pub level: Level,
    /// False when the run was interrupted (Ctrl-C) or cut short: figures cover
    /// only the simulated or replayed time up to `run.end_seconds`.
    pub complete: bool,
    pub seed: u64,
    pub scenario: ScenarioInfo,
    pub run: RunInfo,
    pub summary: Summary,
    pub services: Vec<ServiceSummary>,
    pub timeseries: Vec<TimePoint>,
    pub scaling_events: Vec<ScalingEvent>,
    pub cold_starts: ColdStarts,
    pub cost: Cost,
    pub slo: Vec<SloResult>,
    /// What makes the answer suspect: pods that could never be scheduled, a
    /// service with traffic and no ready replica, traffic that ends before the
    /// run, an SLO percentile with too few samples. A warning about a service
    /// with an SLO fails that SLO unless the run allowed warnings.
    #[serde(default)]
    pub warnings: Vec<Warning>,
    /// Serialized latency histograms (HdrHistogram V2, base64) so shards and runs
    /// merge exactly: `overall` and one per service name.
    pub histograms: Histograms,
    /// Everything that depends on the wall clock or the machine.
    pub wall_clock: WallClock,
    /// The load generator's own figures (`lab load`, levels `local` and
    /// `cluster`); absent for the simulator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadFigures>,
}

/// What the load generator measures about itself, beside the latency from the
/// intended send instant in `summary.latency_seconds`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadFigures {
    /// From the intended to the actual send, every request that was sent
    /// (warm-up included). Large values mean the generator, not the server, fell behind.
    pub send_lag_seconds: LatencySummary,
    /// From the actual send to the end of the answer, completed requests after
    /// warm-up.
    pub service_seconds: LatencySummary,
    /// Requests sent more than 1 ms after their intended instant.
    pub late_over_1ms: u64,
    /// Arrivals refused because `--max-in-flight` requests were already in
    /// flight (also counted in `failed_by_reason.in_flight_cap`).
    pub refused_in_flight_cap: u64,
    /// Serialized histograms (HdrHistogram V2, base64) of `send_lag_seconds`
    /// and `service_seconds`, so shards merge exactly.
    pub histograms: LoadHistograms,
    /// Each load shard's own figures, by shard index, in a merged file (the
    /// cluster level's Job, `lab merge`); absent for one generator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardFigures>,
}

/// What one shard of a merged load was asked to send and what it did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShardFigures {
    /// `I/N` as given to `lab load --shard`, or the part's position.
    pub shard: String,
    /// Where it ran (a pod's host name).
    pub host: String,
    /// Arrivals of its part of the schedule per second of the run.
    pub requested_rps: f64,
    /// Requests it actually sent per second of the run (arrivals refused at
    /// its in-flight cap are not sent).
    pub achieved_rps: f64,
    /// Answered (completed or failed) per second of the run.
    pub answered_rps: f64,
    pub arrived: u64,
    pub completed: u64,
    pub failed: u64,
    /// Its send lag's p99 (wall time): above a few milliseconds the shard, not
    /// the service, set the pace.
    pub send_lag_p99_seconds: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadHistograms {
    pub send_lag: String,
    pub service: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioInfo {
    pub name: String,
    /// Path of the scenario file as given on the command line.
    pub file: String,
    /// `--set` overrides applied, in order.
    pub overrides: Vec<String>,
    /// The resolved scenario (defaults filled in, overrides applied).
    pub config: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunInfo {
    pub duration_seconds: f64,
    /// Requests that arrived before this are left out of latency and SLO figures.
    pub warmup_seconds: f64,
    pub interval_seconds: f64,
    /// Where the run stopped: `duration_seconds` when complete.
    pub end_seconds: f64,
    /// How many times faster than the scenario the run was played
    /// (`--time-scale`); its figures are read back in scenario time. 1, and
    /// left out of the file, for a run at the scenario's own pace.
    #[serde(
        default = "unit_time_scale",
        skip_serializing_if = "is_unit_time_scale"
    )]
    pub time_scale: f64,
    /// What a reader of a real-level run should know about how it was made
    /// (what was emulated, what was not available). Absent at the sim level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

fn unit_time_scale() -> f64 {
    1.0
}

fn is_unit_time_scale(k: &f64) -> bool {
    *k == 1.0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub requests: RequestCounts,
    /// Completed requests per second that met every latency SLO that applies to them.
    pub goodput_rps: f64,
    /// Completed requests per second.
    pub throughput_rps: f64,
    /// Failed / arrived, over the measured window.
    pub error_rate: f64,
    /// End-to-end latency of completed requests, after warm-up.
    pub latency_seconds: LatencySummary,
    /// Time from arrival to the start of the batch that served the request.
    /// Only the simulator sees the server's queues: the load generator (levels
    /// `local` and `cluster`) leaves this at zero and reports its own client-side
    /// figures (send lag, service time) under `load`.
    pub queue_seconds: LatencySummary,
}

/// Requests by outcome. `arrived = completed + failed + in_flight` always holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestCounts {
    pub arrived: u64,
    pub completed: u64,
    pub failed: u64,
    /// Still queued or executing when the run ended.
    pub in_flight: u64,
    /// Failures by reason (`timeout`, `queue_full`, `activator_timeout`,
    /// `activator_overflow`, `pod_killed`, `connect`, `http_503`, ...).
    pub failed_by_reason: BTreeMap<String, u64>,
}

impl RequestCounts {
    pub fn add(&mut self, other: &RequestCounts) {
        self.arrived += other.arrived;
        self.completed += other.completed;
        self.failed += other.failed;
        self.in_flight += other.in_flight;
        for (k, v) in &other.failed_by_reason {
            *self.failed_by_reason.entry(k.clone()).or_default() += v;
        }
    }

    pub fn is_conserved(&self) -> bool {
        self.arrived == self.completed + self.failed + self.in_flight
            && self.failed == self.failed_by_reason.values().sum::<u64>()
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencySummary {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSummary {
    pub name: String,
    pub requests: RequestCounts,
    pub goodput_rps: f64,
    pub throughput_rps: f64,
    pub error_rate: f64,
    pub latency_seconds: LatencySummary,
    pub queue_seconds: LatencySummary,
    pub replicas: ReplicaSummary,
    /// Versions (canary split) with their share of traffic.
    pub versions: Vec<VersionSummary>,
    /// How full the dynamic batcher's batches were, for a service whose
    /// `max_batch_size` is above 1 (the simulator sees them; absent from
    /// load-generator runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batching: Option<BatchingSummary>,
}

/// Batches started after warm-up. A GPU busy with batches of 2 rows out of 32
/// reads as busy as one running full batches: `fill_fraction` tells them apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchingSummary {
    pub batches: u64,
    /// Rows (the requests' batch dimension summed) per batch.
    pub mean_rows: f64,
    pub max_batch_size: u32,
    /// `mean_rows / max_batch_size`.
    pub fill_fraction: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplicaSummary {
    pub min_ready: u32,
    pub max_ready: u32,
    /// Time-weighted mean of ready replicas.
    pub mean_ready: f64,
    pub max_desired: u32,
    /// Containers restarted after an unexpected exit (Kubernetes'
    /// `restartCount`, summed over the service's pods; real levels only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restarts: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionSummary {
    pub name: String,
    pub traffic_percent: f64,
    pub requests: RequestCounts,
    pub latency_seconds: LatencySummary,
}

/// One interval of the time series; figures are over `[t_seconds, t_seconds + interval)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimePoint {
    pub t_seconds: f64,
    pub arrival_rps: f64,
    pub completion_rps: f64,
    pub failure_rps: f64,
    /// Latency of requests completed in the interval (0 when none).
    pub latency_seconds: IntervalLatency,
    /// Requests waiting (activator, pod queues, batchers) at the interval's end.
    pub queue_depth: u64,
    /// Mean busy fraction over all GPUs that exist (0..1).
    pub gpu_busy_fraction: f64,
    /// Cost accumulated since the start of the run.
    pub cost_usd: f64,
    pub services: Vec<ServicePoint>,
    pub node_pools: Vec<PoolPoint>,
}

impl TimePoint {
    /// An interval at `t_seconds` with nothing in it, one empty point per
    /// service: what a real level starts from before laying in what it saw.
    pub fn empty<'a>(t_seconds: f64, services: impl IntoIterator<Item = &'a str>) -> TimePoint {
        TimePoint {
            t_seconds,
            arrival_rps: 0.0,
            completion_rps: 0.0,
            failure_rps: 0.0,
            latency_seconds: IntervalLatency::default(),
            queue_depth: 0,
            gpu_busy_fraction: 0.0,
            cost_usd: 0.0,
            services: services.into_iter().map(ServicePoint::empty).collect(),
            node_pools: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IntervalLatency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServicePoint {
    pub name: String,
    pub desired_replicas: u32,
    pub ready_replicas: u32,
    pub arrival_rps: f64,
    pub completion_rps: f64,
    pub queue_depth: u64,
    pub latency_p99_seconds: f64,
    /// Mean rows of the batches started in the interval over `max_batch_size`
    /// (0 when none started). Absent for a service without batches of more
    /// than one row, and at the real levels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_fill_fraction: Option<f64>,
}

impl ServicePoint {
    /// A service's point with nothing in it.
    pub fn empty(name: &str) -> ServicePoint {
        ServicePoint {
            name: name.to_string(),
            desired_replicas: 0,
            ready_replicas: 0,
            arrival_rps: 0.0,
            completion_rps: 0.0,
            queue_depth: 0,
            latency_p99_seconds: 0.0,
            batch_fill_fraction: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolPoint {
    pub name: String,
    /// Nodes that exist (provisioning or ready) at the interval's end.
    pub nodes: u32,
    pub ready_nodes: u32,
    pub gpu_busy_fraction: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScalingEvent {
    pub t_seconds: f64,
    /// Service, or `service/version` for a canary's own deployment; `pool:NAME`
    /// for node pool changes by the cluster autoscaler.
    pub target: String,
    /// `hpa`, `kpa`, `keda`, `fixed` or `cluster-autoscaler`.
    pub autoscaler: String,
    pub from: u32,
    pub to: u32,
    /// What the decision rested on, in words (metric values, limits applied).
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColdStarts {
    /// Pods that became ready after the start of the run.
    pub count: u64,
    /// From pod creation to ready.
    pub duration_seconds: LatencySummary,
    /// Requests that waited for a pod to start (buffered at the activator while
    /// no pod was ready).
    pub requests_delayed: u64,
    /// Mean breakdown of a cold start.
    pub phases_seconds: ColdStartPhases,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ColdStartPhases {
    pub node_provisioning: f64,
    pub image_pull: f64,
    pub model_load: f64,
    pub readiness: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cost {
    /// Node-hours times price over the run.
    pub total_usd: f64,
    /// The run's cost rate projected to a 730-hour month.
    pub monthly_usd: f64,
    pub by_pool: Vec<PoolCost>,
    /// Cost attributed to services by requested resources (as OpenCost does).
    pub by_service: Vec<ServiceCost>,
    /// Node cost not requested by any pod.
    pub idle_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolCost {
    pub name: String,
    pub usd: f64,
    pub node_hours: f64,
    pub gpu_hours: f64,
    pub monthly_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceCost {
    pub name: String,
    pub usd: f64,
    pub monthly_usd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SloResult {
    pub name: String,
    pub metric: SloMetric,
    /// The service it applies to; absent for the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// True only for `verdict: pass`.
    pub passed: bool,
    /// `pass`, `fail`, or `no_data` (nothing to judge: no completed request
    /// for a latency SLO, no arrival for an error rate), which fails too.
    /// Files of schema version 1 have none; it follows `passed` there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<SloVerdict>,
    /// Why the SLO has no data, or why a value within bounds still failed
    /// (a warning about its service, too few samples for the percentile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Absent (null) when there was nothing to observe.
    pub observed: Option<f64>,
    pub threshold: f64,
    /// `max` (observed must not exceed) or `min`.
    pub bound: SloThreshold,
    /// Unit of `observed` and `threshold`: `seconds`, `ratio`, `requests`, `usd`, `rps`.
    pub unit: String,
}

impl SloResult {
    /// The verdict, for files that predate `verdict` too.
    pub fn verdict(&self) -> SloVerdict {
        self.verdict.unwrap_or(if self.passed {
            SloVerdict::Pass
        } else {
            SloVerdict::Fail
        })
    }
}

/// Something that makes a run's answer suspect, found while it ran or judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Warning {
    pub kind: WarningKind,
    /// The service it concerns; absent when it concerns the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// What happened and what to change, in words.
    pub message: String,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// Pods that could not be bound to any node of their pool (no MIG
    /// instance of the profile, not enough GPUs, CPU or memory on a node, the
    /// pool at `max_nodes`).
    Unschedulable,
    /// Pods killed at start-up for lack of GPU memory, again and again.
    OomKilled,
    /// The service received traffic but had no ready replica during the
    /// whole measured period.
    NoReadyReplica,
    /// The traffic ends before `run.duration`: rates and cost are averaged
    /// over time without arrivals.
    TrafficEndsEarly,
    /// An SLO percentile judged on fewer requests than it needs (p99.9 of
    /// 500 requests is their maximum).
    TooFewSamples,
    /// The load generator fell behind its schedule (a real level): this
    /// machine could not keep up, so latency figures describe it as much as
    /// the system under test.
    LoadFellBehind,
}

impl WarningKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WarningKind::Unschedulable => "unschedulable",
            WarningKind::OomKilled => "oom_killed",
            WarningKind::NoReadyReplica => "no_ready_replica",
            WarningKind::TrafficEndsEarly => "traffic_ends_early",
            WarningKind::TooFewSamples => "too_few_samples",
            WarningKind::LoadFellBehind => "load_fell_behind",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Histograms {
    pub overall: String,
    pub services: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WallClock {
    /// RFC 3339 start time.
    pub started_at: String,
    pub elapsed_seconds: f64,
    /// Simulator events processed (0 for real levels).
    pub events: u64,
    pub events_per_second: f64,
    /// Program and version that wrote the file.
    pub tool: String,
    pub host: String,
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for a wall-clock instant the caller read (this
/// crate never reads the clock itself), without a date library.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let d = t
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01, proleptic Gregorian.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

impl Results {
    /// True when every SLO passed.
    pub fn passed(&self) -> bool {
        self.slo.iter().all(|s| s.passed)
    }

    /// Adds a warning unless the same one is already there.
    pub fn warn(&mut self, kind: WarningKind, service: Option<&str>, message: String) {
        let w = Warning {
            kind,
            service: service.map(str::to_string),
            message,
        };
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    /// The JSON Schema of the file, as committed in `results/results.schema.json`.
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(Results)).expect("schema serializes")
    }

    pub fn service(&self, name: &str) -> Option<&ServiceSummary> {
        self.services.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod schema_tests {
    /// The committed schema is what the types generate: regenerate with
    /// `UPDATE_SCHEMA=1 cargo test -p lab-results` after a deliberate change.
    #[test]
    fn committed_schema_matches_the_types() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/results.schema.json");
        let generated =
            serde_json::to_string_pretty(&super::Results::json_schema()).unwrap() + "\n";
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "results.schema.json is stale: rerun with UPDATE_SCHEMA=1"
        );
    }
}
