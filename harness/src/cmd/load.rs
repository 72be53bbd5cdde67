//! `lab load`: replay traffic (open loop) against a V2/V1/HTTP/gRPC endpoint
//! and write results.json. A thin layer over `lab-loadgen`.

use crate::exit::{bad_input, PASS, SLO_FAILED};
use anyhow::Context;
use clap::ValueEnum;
use lab_loadgen::{
    constant_rate, Fill, LoadConfig, LoadError, Mode, Payload, Protocol, Shard, Stream,
};
use lab_results::Level;
use lab_traffic::Arrivals;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  lab load --target http://127.0.0.1:8080 --model resnet --rate 200 --duration 30s
  lab load --target http://10.0.0.7:8081 --model resnet --protocol v2-grpc --rate 50 --duration 1m
  lab load --target http://svc/predict --protocol http --body req.json --rate 100 --duration 10s
  lab load --target http://127.0.0.1:8080 --model m --rate 100 --duration 60s --shard 0/4 -o s0.json

Latency is measured from each request's intended send instant, so a slow server
shows in the tail instead of slowing the generator down; the send lag and the
service time (from the actual send) are reported beside it.

Exit codes:
  0    every SLO passed (or there are none)
  1    an SLO failed, or had no data to judge
  2    bad input (scenario, --set, flags)
  3    the run itself failed (the target's metadata, I/O)
  130  interrupted (Ctrl-C): in-flight requests drained (up to --timeout),
       partial results written, \"complete\": false
  143  stopped by SIGTERM: the same, as when a Kubernetes Job is stopped
A second Ctrl-C or SIGTERM exits at once (130 or 143) without waiting for the
drain, writing nothing.")]
pub struct Args {
    /// Scenario file whose `[[traffic]]` streams are replayed (one stream per
    /// service). Without it, `--rate` and `--duration` make a constant-rate stream.
    #[arg(value_name = "SCENARIO")]
    pub scenario: Option<PathBuf>,

    /// Base URL of the endpoint (`http://host:port`); with `--protocol http`, the full URL.
    #[arg(long, value_name = "URL")]
    pub target: String,

    /// Model name in the request path or message [default: the scenario's service name].
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,

    /// Wire protocol of the target.
    #[arg(long, value_enum, default_value_t = ProtocolArg::V2Rest)]
    pub protocol: ProtocolArg,

    /// File sent as the body of every request, unchanged, instead of a tensor
    /// built from the model's metadata (`GET /v2/models/NAME`).
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,

    /// Values of tensors built from metadata.
    #[arg(long, value_enum, default_value_t = FillArg::Random)]
    pub fill: FillArg,

    /// Seed of the arrival schedule and tensor values [default: the scenario's, else 1].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Override a scenario value, e.g. `--set traffic.0.phases.0.rate=50` (repeatable).
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub set: Vec<String>,

    /// Send only shard I of N: the arrivals whose sequence number is I modulo N.
    /// Shards of one schedule merge exactly with `lab merge`.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,

    /// Start the schedule at this wall-clock instant, after the target's model
    /// metadata was read: Unix seconds (`1767225600.25`) or `+DUR` from now
    /// (`+5s`). Shards started apart (on several machines, or as the pods of a
    /// Job) and given one instant send their parts of one schedule together.
    #[arg(long, value_name = "UNIX_SECONDS|+DUR")]
    pub start_at: Option<String>,

    /// Wait for the start instant on this address: `POST /start` with Unix
    /// seconds (`GET /ready` answers meanwhile, for a readiness probe). The
    /// cluster level starts its load shards this way, once all of them listen.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "start_at")]
    pub await_start: Option<std::net::SocketAddr>,

    /// Requests allowed in flight at once; arrivals beyond it are refused and
    /// counted as failures (`in_flight_cap`), never silently skipped.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_in_flight: u32,

    /// Per-request timeout, from the actual send (`500ms`, `30s`).
    #[arg(long, value_name = "DUR", default_value = "30s")]
    pub timeout: String,

    /// Open loop: threads sending the schedule, each a single-threaded runtime
    /// with its own part of the arrivals and its own connections [default: half
    /// the cores this process may use (taskset honoured), at least one].
    #[arg(long, value_name = "N")]
    pub threads: Option<u32>,

    /// Use HTTP/2 (cleartext, prior knowledge) instead of an HTTP/1.1 keep-alive pool.
    #[arg(long)]
    pub http2: bool,

    /// Multiply every rate of the schedule (traces: their speed-up), e.g. 0.1 for a
    /// reduced-rate replay.
    #[arg(long, value_name = "X", default_value_t = 1.0)]
    pub rate_scale: f64,

    /// Stop the schedule after this long; with `--rate`, the length of the run.
    #[arg(long, value_name = "DUR")]
    pub duration: Option<String>,

    /// Constant arrival rate in req/s, used when no scenario file is given.
    #[arg(long, value_name = "REQ/S", conflicts_with = "scenario")]
    pub rate: Option<f64>,

    /// Inter-arrival process of the `--rate` stream.
    #[arg(long, value_enum, default_value_t = ArrivalsArg::Uniform, requires = "rate")]
    pub arrivals: ArrivalsArg,

    /// Rows (instances) per request of the `--rate` stream.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "rate")]
    pub rows: u32,

    /// Closed loop instead: USERS virtual users each send, wait for the answer and
    /// think. Latency is then from the actual send and hides server stalls.
    #[arg(long, value_name = "USERS")]
    pub closed_loop: Option<u32>,

    /// Pause of each closed-loop user between an answer and its next request.
    #[arg(
        long,
        value_name = "DUR",
        default_value = "0s",
        requires = "closed_loop"
    )]
    pub think_time: String,

    /// Width of one point of the results' time series [default: the scenario's, else 1s].
    #[arg(long, value_name = "DUR")]
    pub interval: Option<String>,

    /// Leave requests intended before this out of latency figures [default: the
    /// scenario's `run.warmup`, else 0s].
    #[arg(long, value_name = "DUR")]
    pub warmup: Option<String>,

    /// Where to write the results file; `-` prints it on standard output (and
    /// the report on standard error), as a load Job's shard does.
    #[arg(
        short = 'o',
        long = "output",
        alias = "out",
        value_name = "FILE",
        default_value = "results.json"
    )]
    pub out: PathBuf,

    /// Let an SLO pass whose service has a warning (pods that could never be
    /// scheduled, no ready replica, traffic ending before the run, too few
    /// requests for a percentile). Warnings are still recorded and printed.
    #[arg(long)]
    pub allow_warnings: bool,
    /// Print the summary as JSON (counts, latency, service time, send lag) instead of text.
    #[arg(long)]
    pub json: bool,

    /// The `level` written into results.json.
    #[arg(long, value_enum, default_value_t = LevelArg::Local)]
    pub level: LevelArg,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ProtocolArg {
    /// Open Inference Protocol REST, JSON tensors
    #[value(name = "v2-rest")]
    V2Rest,
    /// V2 REST with the binary tensor data extension
    #[value(name = "v2-rest-binary")]
    V2RestBinary,
    /// V2 gRPC, inference.GRPCInferenceService/ModelInfer
    #[value(name = "v2-grpc")]
    V2Grpc,
    /// KServe V1 :predict with instances
    V1,
    /// Plain HTTP to the URL: POST --body, or GET without one
    Http,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum FillArg {
    Random,
    Zero,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ArrivalsArg {
    /// Evenly spaced, as fixed-rate tools send
    Uniform,
    /// Exponential gaps
    Poisson,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LevelArg {
    Local,
    Cluster,
}

fn duration(flag: &str, text: &str) -> anyhow::Result<Duration> {
    lab_units::parse_duration(text)
        .map(|d| d.as_std())
        .map_err(|e| bad_input(format!("--{flag}: {e}")))
}

/// `--start-at`: Unix seconds, or `+DUR` from now.
fn start_instant(text: &str) -> anyhow::Result<std::time::SystemTime> {
    let at = match text.strip_prefix('+') {
        Some(d) => std::time::SystemTime::now() + duration("start-at", d)?,
        None => {
            let secs: f64 = text
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .ok_or_else(|| {
                    bad_input(format!(
                    "--start-at {text}: give Unix seconds (1767225600.25) or a delay from now (+5s)"
                ))
                })?;
            std::time::UNIX_EPOCH + Duration::from_secs_f64(secs)
        }
    };
    if at < std::time::SystemTime::now() {
        return Err(bad_input(format!(
            "--start-at {text} has passed; give a later instant"
        )));
    }
    Ok(at)
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let (config, slo) = build_config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let interrupt = crate::interrupt::Interrupt::install(
        "stopping, in-flight requests drain and partial results will be written",
    )?;
    let mut config = config;
    if let Some(addr) = args.await_start {
        let started = runtime.block_on(lab_loadgen::await_start(
            addr,
            |bound| {
                eprintln!(
                    "waiting for the start instant: POST http://{bound}/start with Unix seconds"
                )
            },
            interrupt.stopped(),
        ));
        match started {
            Ok(Some(at)) => config.start_at = Some(at),
            // Stopped before the start: nothing was sent, nothing to write.
            Ok(None) => return Ok(interrupt.exit_code()),
            Err(LoadError::BadInput(msg)) => return Err(bad_input(msg)),
            Err(e) => return Err(anyhow::Error::new(e)),
        }
    }
    let output = runtime.block_on(lab_loadgen::run(config, interrupt.stopped()));
    let mut output = match output {
        Ok(o) => o,
        Err(LoadError::BadInput(msg)) => return Err(bad_input(msg)),
        Err(e) => return Err(anyhow::Error::new(e)),
    };
    lab_results::evaluate_slos(
        &slo,
        &mut output.results,
        lab_results::Judging {
            allow_warnings: args.allow_warnings,
        },
    );
    if args.out.as_os_str() == "-" {
        // The results are the output (a load Job's log, where the container
        // runtime interleaves stderr line by line and splits long lines): one
        // line of JSON, written last and in one piece once the report has gone
        // aside to stderr, so nothing can land inside it.
        let line = serde_json::to_string(&output.results).context("serializing results")?;
        {
            let mut err = std::io::stderr().lock();
            err.write_all(output.report.text().as_bytes())?;
            err.flush()?;
        }
        {
            let mut out = std::io::stdout().lock();
            out.write_all((line + "\n").as_bytes())?;
            out.flush()?;
        }
    } else {
        let text = serde_json::to_string_pretty(&output.results).context("serializing results")?;
        super::write_atomically(&args.out, &(text + "\n"))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&output.report)?);
        } else {
            print!("{}", output.report.text());
            println!("results: {}", args.out.display());
        }
    }
    // Leave requests still hanging after the drain behind instead of waiting on them.
    runtime.shutdown_background();
    for s in output.results.slo.iter().filter(|s| !s.passed) {
        match s.observed {
            Some(v) => println!("SLO failed: {} (observed {v} {})", s.name, s.unit),
            None => println!("SLO failed: {} (no data)", s.name),
        }
        if let Some(why) = &s.reason {
            println!("  {why}");
        }
    }
    Ok(if !output.results.complete {
        interrupt.exit_code()
    } else if output.results.passed() {
        PASS
    } else {
        SLO_FAILED
    })
}

fn build_config(args: &Args) -> anyhow::Result<(LoadConfig, Vec<lab_results::SloSpec>)> {
    let protocol = match args.protocol {
        ProtocolArg::V2Rest => Protocol::V2Rest,
        ProtocolArg::V2RestBinary => Protocol::V2RestBinary,
        ProtocolArg::V2Grpc => Protocol::V2Grpc,
        ProtocolArg::V1 => Protocol::V1,
        ProtocolArg::Http => Protocol::Http,
    };
    let cut = args
        .duration
        .as_deref()
        .map(|d| duration("duration", d))
        .transpose()?;
    let parts = match &args.scenario {
        Some(path) => scenario_streams(path, args)?,
        None => {
            let rate = args.rate.ok_or_else(|| {
                bad_input("give a SCENARIO file, or --rate R and --duration D for a constant rate")
            })?;
            if !(rate.is_finite() && rate > 0.0) {
                return Err(bad_input(format!("--rate must be positive, got {rate}")));
            }
            let length = cut.ok_or_else(|| bad_input("--rate needs --duration"))?;
            if !args.set.is_empty() {
                return Err(bad_input("--set changes a scenario file: give one"));
            }
            let model = match (&args.model, protocol) {
                (Some(m), _) => m.clone(),
                (None, Protocol::Http) => "http".into(),
                (None, _) => return Err(bad_input("--model is needed without a scenario file")),
            };
            let arrivals = match args.arrivals {
                ArrivalsArg::Uniform => Arrivals::Uniform,
                ArrivalsArg::Poisson => Arrivals::Poisson,
            };
            let mut spec = constant_rate(rate, length, arrivals);
            spec.rows_per_request = args.rows.max(1);
            let stream = Stream {
                spec,
                index: 0,
                service: model.clone(),
                model,
            };
            let info = lab_results::ScenarioInfo {
                name: format!("constant-{rate}rps"),
                file: String::new(),
                overrides: Vec::new(),
                config: serde_json::json!({"rate": rate, "duration_seconds": length.as_secs_f64()}),
            };
            ScenarioParts {
                streams: vec![stream],
                seed: 1,
                interval: Duration::from_secs(1),
                warmup: Duration::ZERO,
                length: None,
                info,
                slo: Vec::new(),
            }
        }
    };
    let mut c = LoadConfig::new(args.target.clone(), protocol, parts.streams);
    c.seed = args.seed.unwrap_or(parts.seed);
    c.payload = match &args.body {
        Some(p) => Payload::File(p.clone()),
        None => Payload::FromMetadata(match args.fill {
            FillArg::Random => Fill::Random,
            FillArg::Zero => Fill::Zero,
        }),
    };
    c.shard = match &args.shard {
        Some(s) => Shard::parse(s).map_err(|e| bad_input(format!("--shard: {e}")))?,
        None => Shard::WHOLE,
    };
    c.max_in_flight = args.max_in_flight;
    c.timeout = duration("timeout", &args.timeout)?;
    c.http2 = args.http2;
    if let Some(t) = args.threads {
        c.threads = t;
    }
    c.rate_scale = args.rate_scale;
    c.duration = cut.or(parts.length);
    c.mode = match args.closed_loop {
        Some(users) => Mode::Closed {
            users,
            think: duration("think-time", &args.think_time)?,
        },
        None => Mode::Open,
    };
    c.level = match args.level {
        LevelArg::Local => Level::Local,
        LevelArg::Cluster => Level::Cluster,
    };
    c.interval = match &args.interval {
        Some(i) => duration("interval", i)?,
        None => parts.interval,
    };
    c.warmup = match &args.warmup {
        Some(w) => duration("warmup", w)?,
        None => parts.warmup,
    };
    let length = lab_loadgen::end_ns(&c);
    if c.warmup.as_nanos() as u64 >= length && length > 0 {
        return Err(bad_input(format!(
            "the warm-up ({:?}) covers the whole replay ({:?}), so no latency would be measured; \
             shorten it with --warmup",
            c.warmup,
            Duration::from_nanos(length)
        )));
    }
    c.scenario = parts.info;
    if let Some(at) = &args.start_at {
        c.start_at = Some(start_instant(at)?);
    }
    c.validate().map_err(|e| bad_input(e.to_string()))?;
    Ok((c, parts.slo))
}

/// Streams, seed, interval, warm-up, run length, echo and SLOs of a scenario file.
struct ScenarioParts {
    streams: Vec<Stream>,
    seed: u64,
    interval: Duration,
    warmup: Duration,
    length: Option<Duration>,
    info: lab_results::ScenarioInfo,
    slo: Vec<lab_results::SloSpec>,
}

fn scenario_streams(path: &std::path::Path, args: &Args) -> anyhow::Result<ScenarioParts> {
    let sc = lab_scenario::load(path, &args.set).map_err(|e| bad_input(e.to_string()))?;
    let first = sc.services.first().map(|s| s.name.clone());
    let mut streams = Vec::with_capacity(sc.traffic.len());
    for (i, t) in sc.traffic.iter().enumerate() {
        let service = t.service.clone().or_else(|| first.clone()).ok_or_else(|| {
            bad_input(format!(
                "{}: traffic[{i}] names no service and the scenario has none",
                path.display()
            ))
        })?;
        let declared = sc.services.iter().find(|s| s.name == service);
        let model = match &args.model {
            Some(m) => m.clone(),
            None => declared
                .and_then(|s| s.model.clone())
                .unwrap_or_else(|| service.clone()),
        };
        streams.push(Stream {
            spec: t.clone(),
            index: i as u32,
            service,
            model,
        });
    }
    let services: std::collections::BTreeSet<&str> =
        streams.iter().map(|s| s.service.as_str()).collect();
    if args.model.is_some() && services.len() > 1 {
        return Err(bad_input(
            "--model would send every stream to one model, but the scenario's traffic targets several services",
        ));
    }
    let config = serde_json::to_value(&sc).context("echoing the scenario")?;
    Ok(ScenarioParts {
        streams,
        seed: sc.run.seed,
        interval: sc.run.interval.as_std(),
        warmup: sc.run.warmup.as_std(),
        length: sc.run.duration.map(|d| d.as_std()),
        info: lab_results::ScenarioInfo {
            name: sc.name.clone(),
            file: path.display().to_string(),
            overrides: args.set.clone(),
            config,
        },
        slo: sc.slo.clone(),
    })
}
