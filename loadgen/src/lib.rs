//! `lab-loadgen`: replays a scenario's arrival schedule against a V2 (REST or
//! gRPC), KServe V1 or plain HTTP endpoint, open loop, and writes results.json.
//!
//! The schedule is `lab-traffic`'s, the same instants the simulator uses. Each
//! request is due at an absolute instant; latency is measured from that instant,
//! so a stalled server shows in the tail instead of slowing the generator down
//! (coordinated omission). The send lag is recorded beside it, and arrivals the
//! in-flight cap refuses are counted as failures, never skipped.
//!
//! ```no_run
//! # async fn demo() -> Result<(), lab_loadgen::LoadError> {
//! use lab_loadgen::{constant_rate, LoadConfig, Protocol, Stream};
//! use std::time::Duration;
//! let stream = Stream {
//!     spec: constant_rate(100.0, Duration::from_secs(10), lab_traffic::Arrivals::Poisson),
//!     index: 0,
//!     service: "resnet".into(),
//!     model: "resnet".into(),
//! };
//! let config = LoadConfig::new("http://127.0.0.1:8080", Protocol::V2Rest, vec![stream]);
//! let out = lab_loadgen::run(config, std::future::pending()).await?;
//! println!("{}", out.report.text());
//! # Ok(()) }
//! ```

mod client;
mod closed;
mod config;
mod error;
mod grpc;
mod merge;
mod open;
mod output;
mod pacer;
mod payload;
mod plan;
mod pool;
mod recorder;
mod slots;
mod start;
mod timer;
mod workers;

pub use client::{Failure, SEQ_HEADER};
pub use config::{
    constant_rate, default_threads, scale_spec, Fill, LoadConfig, Mode, Payload, Protocol, Shard,
    Stream,
};
pub use error::LoadError;
pub use merge::merge;
pub use output::{LoadReport, LATE_NS};
pub use payload::TensorSpec;
pub use plan::{arrivals, end_ns, Planned};
pub use recorder::REFUSED;
pub use start::{await_start, parse_instant};

/// gRPC messages of the Open Inference Protocol, for servers in tests and tools.
pub mod proto {
    pub use crate::grpc::*;
}

use lab_results::Results;
use output::RunMeta;
use recorder::Recorder;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// What a run produced.
#[derive(Debug, Clone)]
pub struct LoadOutput {
    /// results.json; `complete` is false when `stop` fired first.
    pub results: Results,
    /// Counts, latency, service time, send lag and refusals, for `--json` and
    /// the text summary.
    pub report: LoadReport,
}

/// Shared by a pacing loop and its request tasks. Each open-loop thread has its
/// own (its client's connections belong to its runtime); the recorder is one
/// for the whole run.
pub(crate) struct Shared {
    pub client: client::Client,
    pub templates: Vec<client::Template>,
    pub recorder: Arc<Mutex<Recorder>>,
    pub start: Instant,
    pub timeout: Duration,
}

impl Shared {
    pub fn since_start(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_nanos() as u64
    }

    /// Records one request sent at `sent` and answered (or failed) now.
    pub fn record(&self, p: &plan::Planned, sent: Instant, result: Result<(), client::Failure>) {
        let outcome = recorder::Outcome {
            stream: p.stream,
            intended_ns: p.arrival.at_ns,
            sent_ns: self.since_start(sent),
            done_ns: self.since_start(Instant::now()),
            result,
        };
        self.recorder().finished(&outcome);
    }

    pub fn recorder(&self) -> std::sync::MutexGuard<'_, Recorder> {
        // A panic elsewhere cannot leave the counters half-updated in a way that
        // matters more than losing the run, so recover the data.
        self.recorder.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Pause before the first deadline, so pacing starts from a settled clock.
const LEAD: Duration = Duration::from_millis(10);

/// Runs the load described by `config` until its schedule ends or `stop`
/// completes (then in-flight requests get up to the timeout to finish and the
/// results are marked incomplete). Must be called inside a tokio runtime.
pub async fn run(
    config: LoadConfig,
    stop: impl Future<Output = ()>,
) -> Result<LoadOutput, LoadError> {
    config.validate()?;
    let client = client::Client::new(&config)?;
    let templates = client.templates(&config).await?;
    let names: Vec<String> = config.streams.iter().map(|s| s.service.clone()).collect();
    let end = end_ns(&config);
    let (started_at, start) = match config.start_at {
        None => (SystemTime::now(), Instant::now() + LEAD),
        Some(at) => {
            let wait = at.duration_since(SystemTime::now()).map_err(|late| {
                LoadError::BadInput(format!(
                    "the start time passed {:.3} s ago, before the target's metadata was read; \
                     give the shards a later start",
                    late.duration().as_secs_f64()
                ))
            })?;
            (at, Instant::now() + wait)
        }
    };
    let shared = Arc::new(Shared {
        client,
        templates,
        recorder: Arc::new(Mutex::new(Recorder::new(
            &names,
            config.interval.as_nanos() as u64,
            config.warmup.as_nanos() as u64,
        ))),
        start,
        timeout: config.timeout,
    });
    let (stopped_at, mode) = match config.mode {
        Mode::Open => (open::run(&config, shared.clone(), stop).await?, "open"),
        Mode::Closed { users, think } => (
            closed::run(users, think, end, shared.clone(), stop).await,
            "closed",
        ),
    };
    let meta = RunMeta {
        level: config.level,
        complete: stopped_at.is_none(),
        seed: config.seed,
        scenario: config.scenario.clone(),
        duration_seconds: end as f64 / 1e9,
        end_seconds: stopped_at.unwrap_or(end).min(end) as f64 / 1e9,
        warmup_seconds: config.warmup.as_secs_f64(),
        started_at,
        elapsed_seconds: shared.start.elapsed().as_secs_f64(),
    };
    let mut rec = shared.recorder();
    let shard = format!("{}/{}", config.shard.index, config.shard.count);
    let report = LoadReport::new(&rec, mode, shard, &meta);
    let results = output::results(&mut rec, &meta);
    Ok(LoadOutput { results, report })
}
