//! What a load run is asked to do, and the checks that make bad input an error
//! instead of a panic halfway through a run.

use crate::error::LoadError;
use lab_results::{Level, ScenarioInfo};
use lab_traffic::{Phase, TrafficSpec};
use std::path::PathBuf;
use std::time::Duration;

/// The wire protocol of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Open Inference Protocol (V2) REST with JSON tensors.
    V2Rest,
    /// V2 REST with the binary tensor data extension.
    V2RestBinary,
    /// V2 gRPC: `inference.GRPCInferenceService/ModelInfer`.
    V2Grpc,
    /// KServe V1 `:predict` with `instances`.
    V1,
    /// Plain HTTP to the target URL as given: POST of `--body`, or GET without one.
    Http,
}

impl Protocol {
    pub const NAMES: [&'static str; 5] = ["v2-rest", "v2-rest-binary", "v2-grpc", "v1", "http"];

    pub fn parse(text: &str) -> Result<Protocol, String> {
        Ok(match text {
            "v2-rest" => Protocol::V2Rest,
            "v2-rest-binary" => Protocol::V2RestBinary,
            "v2-grpc" => Protocol::V2Grpc,
            "v1" => Protocol::V1,
            "http" => Protocol::Http,
            other => {
                return Err(format!(
                    "unknown protocol `{other}` (one of {})",
                    Protocol::NAMES.join(", ")
                ))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Protocol::V2Rest => "v2-rest",
            Protocol::V2RestBinary => "v2-rest-binary",
            Protocol::V2Grpc => "v2-grpc",
            Protocol::V1 => "v1",
            Protocol::Http => "http",
        }
    }
}

/// Where request bodies come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// Built from the model's metadata (`GET /v2/models/{m}` or gRPC `ModelMetadata`).
    FromMetadata(Fill),
    /// A file sent as the body of every request, unchanged.
    File(PathBuf),
    /// Tensors built for inputs known in advance, one list per entry of
    /// `streams` in order (streams to different models need different
    /// tensors), without asking the target for metadata: the local level
    /// knows its pods' inputs, and a metadata request through an activator
    /// would wake a service scaled to zero before the schedule starts.
    Inputs(Vec<Vec<crate::TensorSpec>>, Fill),
}

/// What a tensor built from metadata holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    Zero,
    /// Seeded pseudo-random values, so two runs send the same bytes.
    Random,
}

/// Open loop replays the schedule; closed loop keeps `users` requests going.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    Open,
    /// N virtual users, each sending, waiting for the answer, then thinking.
    /// Latency is from the actual send: this mode cannot see coordinated omission.
    Closed {
        users: u32,
        think: Duration,
    },
}

/// A deterministic part of the schedule: arrivals with `seq % count == index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `I/N` with `0 <= I < N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let err = || format!("`{text}` is not a shard: write I/N with 0 <= I < N, e.g. 0/4");
        let (i, n) = text.split_once('/').ok_or_else(err)?;
        let index: u32 = i.trim().parse().map_err(|_| err())?;
        let count: u32 = n.trim().parse().map_err(|_| err())?;
        if count == 0 || index >= count {
            return Err(err());
        }
        Ok(Shard { index, count })
    }
}

/// One traffic stream and the model it is sent to.
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub spec: TrafficSpec,
    /// Position among the scenario's streams: picks the stream's RNG.
    pub index: u32,
    /// Service name used in results (`services[].name`).
    pub service: String,
    /// Model name in the request path or message.
    pub model: String,
}

#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Base URL (`http://host:port`) for V1/V2; the full URL for `Http`.
    pub target: String,
    pub protocol: Protocol,
    pub payload: Payload,
    pub streams: Vec<Stream>,
    pub seed: u64,
    pub shard: Shard,
    /// Requests allowed in flight at once; arrivals beyond it are refused and counted.
    pub max_in_flight: u32,
    /// Per-request timeout, from the actual send.
    pub timeout: Duration,
    /// HTTP/2 with prior knowledge instead of HTTP/1.1 keep-alive.
    pub http2: bool,
    /// Multiplies every rate of the schedule (trace phases: their speed-up).
    pub rate_scale: f64,
    /// Cuts the schedule (or the closed-loop run) after this long.
    pub duration: Option<Duration>,
    pub mode: Mode,
    /// Open loop: pacing threads, each a single-threaded runtime sending its own
    /// part of the schedule (`seq` modulo the count). The closed loop runs on the
    /// caller's runtime and ignores it.
    pub threads: u32,
    pub level: Level,
    /// Width of one `timeseries` point.
    pub interval: Duration,
    /// Requests intended before this are left out of latency figures.
    pub warmup: Duration,
    /// Echoed into results.json.
    pub scenario: ScenarioInfo,
    /// The wall-clock instant the schedule starts at, after the model's
    /// metadata was read: shards started apart (pods of a Job) send their
    /// parts of one schedule from one instant. None: at once.
    pub start_at: Option<std::time::SystemTime>,
}

impl LoadConfig {
    /// A config for `streams` with the defaults of `lab load`.
    pub fn new(target: impl Into<String>, protocol: Protocol, streams: Vec<Stream>) -> LoadConfig {
        LoadConfig {
            target: target.into(),
            protocol,
            payload: Payload::FromMetadata(Fill::Random),
            streams,
            seed: 0,
            shard: Shard::WHOLE,
            max_in_flight: 1024,
            timeout: Duration::from_secs(30),
            http2: false,
            rate_scale: 1.0,
            duration: None,
            mode: Mode::Open,
            threads: default_threads(),
            level: Level::Local,
            interval: Duration::from_secs(1),
            warmup: Duration::ZERO,
            scenario: ScenarioInfo {
                name: "load".into(),
                file: String::new(),
                overrides: Vec::new(),
                config: serde_json::Value::Null,
            },
            start_at: None,
        }
    }

    /// Every problem with the config at once, as one bad-input error.
    pub fn validate(&self) -> Result<(), LoadError> {
        let mut problems = Vec::new();
        if self.streams.is_empty() {
            problems.push("no traffic stream to replay".to_string());
        }
        if !(self.target.starts_with("http://") || self.target.starts_with("https://")) {
            problems.push(format!(
                "target `{}` must start with http:// (https is not supported)",
                self.target
            ));
        } else if self.target.starts_with("https://") {
            problems.push(format!(
                "target `{}`: https is not supported; use the cluster-internal http address",
                self.target
            ));
        } else if self.target.parse::<http::Uri>().is_err() {
            problems.push(format!("target `{}` is not a valid URL", self.target));
        }
        if self.threads == 0 {
            problems.push("threads must be at least 1".into());
        } else if self.shard.count.checked_mul(self.threads).is_none() {
            problems.push(format!(
                "{} threads times {} shards is too many parts",
                self.threads, self.shard.count
            ));
        }
        if self.max_in_flight == 0 {
            problems.push("max in flight must be at least 1".into());
        }
        if self.timeout.is_zero() {
            problems.push("timeout must be longer than zero".into());
        }
        if !(self.rate_scale.is_finite() && self.rate_scale > 0.0) {
            problems.push(format!(
                "rate scale must be positive, got {}",
                self.rate_scale
            ));
        }
        if self.interval.is_zero() {
            problems.push("interval must be longer than zero".into());
        }
        if self.shard.count == 0 || self.shard.index >= self.shard.count {
            problems.push(format!(
                "shard {}/{} is out of range",
                self.shard.index, self.shard.count
            ));
        }
        if let Mode::Closed { users, .. } = self.mode {
            if users == 0 {
                problems.push("closed loop needs at least one user".into());
            }
            if self.shard.count > 1 {
                problems.push("closed loop cannot be sharded: give each job its own users".into());
            }
        }
        if self.protocol == Protocol::V2Grpc && matches!(self.payload, Payload::File(_)) {
            problems.push(
                "v2-grpc builds its message from the model metadata; --body is for REST and http"
                    .into(),
            );
        }
        if let Payload::Inputs(inputs, _) = &self.payload {
            if inputs.len() != self.streams.len() {
                problems.push(format!(
                    "{} input lists for {} traffic streams: give one per stream",
                    inputs.len(),
                    self.streams.len()
                ));
            }
        }
        if self.protocol == Protocol::Http && self.streams.len() > 1 {
            problems.push("plain http sends to one URL: use one traffic stream".into());
        }
        for s in &self.streams {
            for (i, p) in s.spec.phases.iter().enumerate() {
                for (field, msg) in p.problems() {
                    problems.push(format!(
                        "traffic[{}].phases[{i}] ({}): {field} {msg}",
                        s.index,
                        p.kind()
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(LoadError::BadInput(problems.join("; ")))
        }
    }
}

/// Half the cores this process may run on (at least one). The available
/// parallelism honours the CPU affinity (`taskset`) and cgroup CPU quotas. Half,
/// because the server under test usually shares the machine (the local level
/// runs the predictors beside the generator) and one pacing thread already
/// sends more than oha's maximum: on a 2-core machine shared with the server,
/// one thread reached 1.12x oha's maximum and two threads 0.84x
/// (BENCHMARKS.md, "Load generator").
pub fn default_threads() -> u32 {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get() as u32)
        .unwrap_or(1);
    (cores / 2).max(1)
}

/// The same stream with every rate multiplied by `x` (and traces sped up by `x`),
/// so `--rate-scale 0.1` replays a production shape at a tenth of its load.
pub fn scale_spec(spec: &TrafficSpec, x: f64) -> TrafficSpec {
    let mut out = spec.clone();
    for p in &mut out.phases {
        match p {
            Phase::Constant { rate, .. } => *rate *= x,
            Phase::Ramp { from, to, .. } => {
                *from *= x;
                *to *= x;
            }
            // The multiplier is relative to the base, so scaling the base scales the peak.
            Phase::Spike { base, .. } => *base *= x,
            Phase::Diurnal { peak, trough, .. } => {
                *peak *= x;
                *trough *= x;
            }
            Phase::Idle { .. } => {}
            Phase::Trace { speedup, .. } => *speedup *= x,
            Phase::Series { scale, .. } => *scale *= x,
        }
    }
    out
}

/// A constant-rate stream for `--rate R --duration D` without a scenario file.
pub fn constant_rate(
    rate: f64,
    duration: Duration,
    arrivals: lab_traffic::Arrivals,
) -> TrafficSpec {
    TrafficSpec {
        service: None,
        arrivals,
        rows_per_request: 1,
        phases: vec![Phase::Constant {
            rate,
            duration: duration.into(),
        }],
    }
}
