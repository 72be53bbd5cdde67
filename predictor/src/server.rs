//! `serve`: flags, start-up (listen, load, warm up, wait out any emulated model
//! load, ready) and shutdown (SIGTERM: not ready, refuse new requests, finish
//! in-flight ones within the grace period).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::App;
use crate::batcher::{BatchConfig, Batcher};
use crate::conn;
use crate::emulate::{parse_sharing, EmulateConfig, Emulator};
use crate::error::bad_input;
use crate::metrics::Metrics;
use crate::model::{Device, LoadOptions, Model};

#[derive(Debug, Clone, clap::Args)]
pub struct ServeOptions {
    /// An ONNX model to serve, as NAME=PATH.onnx (or PATH.onnx, named after the file).
    /// Repeat for several models. At least one --model or --emulated-model is needed.
    #[arg(long = "model", value_name = "NAME=PATH")]
    pub models: Vec<String>,

    /// Serve NAME as the built-in stand-in model, with no .onnx file and without
    /// loading ONNX Runtime: input `input` FP32 [-1, 4], output `output` FP32
    /// [-1, 1], the sum of each row. It batches, holds the emulated GPU and counts
    /// in metrics like an ONNX model. Repeat for several; needs --emulate.
    #[arg(long = "emulated-model", value_name = "NAME", requires = "emulate")]
    pub emulated_models: Vec<String>,

    /// Address to listen on. Loopback unless told otherwise: a pod (or any host
    /// reachable from outside) passes `--host 0.0.0.0` on purpose.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// REST port (Open Inference Protocol V2, KServe V1, /metrics). 0 picks a free port.
    #[arg(long, default_value_t = 8080)]
    pub http_port: u16,

    /// gRPC port (inference.GRPCInferenceService). 0 picks a free port.
    #[arg(long, default_value_t = 8081)]
    pub grpc_port: u16,

    /// Do not serve gRPC.
    #[arg(long)]
    pub no_grpc: bool,

    /// Execution device: cpu, or cuda through ONNX Runtime's CUDA execution
    /// provider (needs the onnxruntime-gpu build).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    pub device: String,

    /// CUDA device ordinal for --device cuda.
    #[arg(long, default_value_t = 0)]
    pub cuda_device: i32,

    /// ONNX Runtime intra-op threads per model execution (0 = ONNX Runtime's default, all cores).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,

    /// Model executions that may run at once, per model (Triton's instance count).
    #[arg(long, default_value_t = 1)]
    pub instances: usize,

    /// Most rows in one batch; 1 turns dynamic batching off. Requests with more rows are refused (400).
    #[arg(long, default_value_t = 32)]
    pub max_batch_size: u32,

    /// Batch sizes sent as soon as they are reached, comma-separated (Triton's preferred_batch_size).
    #[arg(long, value_delimiter = ',', value_name = "N,N,...")]
    pub preferred_batch_sizes: Vec<u32>,

    /// How long the oldest queued request may wait for its batch to fill, in microseconds
    /// (Triton's max_queue_delay_microseconds; 0 = send whatever is queued).
    #[arg(long, default_value_t = 0)]
    pub max_queue_delay_us: u64,

    /// Most rows waiting per model; beyond it requests are refused with 503 (gRPC UNAVAILABLE).
    #[arg(long, default_value_t = 1024)]
    pub max_queue_rows: u32,

    /// Largest request body (REST) or message (gRPC) in bytes; larger gets 413 (RESOURCE_EXHAUSTED).
    #[arg(long, default_value_t = 64 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Longest a client may take to send a request's head (request line and
    /// headers), in seconds; past it the server answers 408 and closes.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    pub header_timeout_secs: f64,

    /// Longest a client may take to send a request's body, in seconds; past it
    /// the server answers 408 and closes.
    #[arg(long, default_value_t = 60.0, value_name = "SECS")]
    pub body_timeout_secs: f64,

    /// How long a keep-alive connection may sit idle between requests before
    /// the server closes it, in seconds (above the 90 s idle pools of common
    /// clients, so they close first).
    #[arg(long, default_value_t = 120.0, value_name = "SECS")]
    pub idle_timeout_secs: f64,

    /// Most REST connections open at once; more wait in the listen backlog. It
    /// is lowered to the descriptor limit (ulimit -n) minus 64, so accepting
    /// never runs out of descriptors.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,

    /// Listen backlog of the REST and gRPC sockets (default: the system's
    /// /proc/sys/net/core/somaxconn, 4096 where it cannot be read).
    #[arg(long, value_name = "N")]
    pub listen_backlog: Option<u32>,

    /// After SIGTERM, how long in-flight requests may take before the process exits, in seconds.
    #[arg(long, default_value_t = 30.0)]
    pub grace_period_secs: f64,

    /// Emulated model load (a real pod's model download): stay not ready until this
    /// many seconds after the process started, as well as until the models have
    /// loaded and warmed up. Liveness answers at once.
    #[arg(long, default_value_t = 0.0, value_name = "SECS")]
    pub model_load_secs: f64,

    /// Emulate a GPU: compute on CPU, but hold each batch for the service time this
    /// calibration profile (lab-calibration/v1 JSON) gives for its batch size.
    #[arg(long, value_name = "PROFILE.json")]
    pub emulate: Option<PathBuf>,

    /// GPU type the emulated profile stands for (default: the profile's `gpu`), e.g. A100-40GB; needed for MIG.
    #[arg(long, requires = "emulate")]
    pub gpu_type: Option<String>,

    /// How the emulated GPU is shared: none, time-slicing:N, mps:N or mig:PROFILE (e.g. mig:1g.10gb).
    #[arg(long, default_value = "none", requires = "emulate")]
    pub sharing: String,

    /// Name of the emulated physical GPU: predictors with the same id contend for it
    /// (through /dev/shm/lab-gpu-ID).
    #[arg(long, default_value = "0", requires = "emulate")]
    pub gpu_id: String,

    /// Seed for the emulated service-time draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Letters, digits, '-', '_' or '.': safe in URLs, metric labels and file names.
fn valid_model_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

/// What one served model is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// An ONNX file, loaded into ONNX Runtime.
    Onnx(PathBuf),
    /// The built-in stand-in (`--emulated-model`).
    StandIn,
}

/// Every `--model` and `--emulated-model`, checked: at least one, names valid and
/// distinct, ONNX files present. In flag order, `--model`s first.
pub fn model_sources(opts: &ServeOptions) -> anyhow::Result<Vec<(String, ModelSource)>> {
    let mut models: Vec<(String, ModelSource)> = Vec::new();
    let mut add = |name: String, source: ModelSource, flag: &str| {
        if models.iter().any(|(n, _)| n == &name) {
            return Err(bad_input(format!(
                "{flag} {name}: the name '{name}' is used twice"
            )));
        }
        models.push((name, source));
        Ok(())
    };
    for m in &opts.models {
        let (name, path) = parse_model_arg(m)?;
        if !path.is_file() {
            return Err(bad_input(format!(
                "--model {m}: {} is not a file",
                path.display()
            )));
        }
        add(name, ModelSource::Onnx(path), "--model")?;
    }
    for name in &opts.emulated_models {
        if !valid_model_name(name) {
            return Err(bad_input(format!(
                "--emulated-model {name}: the name must be letters, digits, '-', '_' or '.'"
            )));
        }
        add(name.clone(), ModelSource::StandIn, "--emulated-model")?;
    }
    if models.is_empty() {
        return Err(bad_input(
            "nothing to serve: give --model NAME=PATH.onnx, or --emulated-model NAME with --emulate",
        ));
    }
    Ok(models)
}

/// Parses `NAME=PATH` or `PATH`.
pub fn parse_model_arg(arg: &str) -> anyhow::Result<(String, PathBuf)> {
    let (name, path) = match arg.split_once('=') {
        Some((n, p)) => (n.to_string(), PathBuf::from(p)),
        None => {
            let p = PathBuf::from(arg);
            let stem = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            (stem, p)
        }
    };
    if !valid_model_name(&name) {
        return Err(bad_input(format!(
            "--model {arg}: the name must be letters, digits, '-', '_' or '.'"
        )));
    }
    Ok((name, path))
}

pub fn device(name: &str, ordinal: i32) -> Device {
    if name == "cuda" {
        Device::Cuda(ordinal)
    } else {
        Device::Cpu
    }
}

/// Runs the server until SIGTERM or SIGINT; returns the exit code.
pub fn run(opts: ServeOptions) -> anyhow::Result<i32> {
    // The emulated model load counts from here, as a pod's does from its start.
    let started = Instant::now();
    let models = model_sources(&opts)?;
    if opts.emulate.is_none() && !opts.emulated_models.is_empty() {
        // clap's `requires` says so first; this guards callers that build the options.
        return Err(bad_input("--emulated-model needs --emulate PROFILE.json"));
    }
    if opts.max_batch_size == 0 || opts.instances == 0 {
        return Err(bad_input(
            "--max-batch-size and --instances must be at least 1",
        ));
    }
    if let Some(p) = opts
        .preferred_batch_sizes
        .iter()
        .find(|p| **p == 0 || **p > opts.max_batch_size)
    {
        return Err(bad_input(format!(
            "--preferred-batch-sizes: {p} is not between 1 and --max-batch-size {}",
            opts.max_batch_size
        )));
    }
    if opts.max_queue_rows < opts.max_batch_size {
        return Err(bad_input(
            "--max-queue-rows must be at least --max-batch-size",
        ));
    }
    if !(opts.grace_period_secs >= 0.0 && opts.grace_period_secs.is_finite()) {
        return Err(bad_input(
            "--grace-period-secs must be a non-negative number",
        ));
    }
    for (flag, v) in [
        ("--header-timeout-secs", opts.header_timeout_secs),
        ("--body-timeout-secs", opts.body_timeout_secs),
        ("--idle-timeout-secs", opts.idle_timeout_secs),
    ] {
        if !(v > 0.0 && v.is_finite() && v < 1e9) {
            return Err(bad_input(format!(
                "{flag} must be a positive number of seconds"
            )));
        }
    }
    if opts.max_connections == 0 || opts.listen_backlog == Some(0) {
        return Err(bad_input(
            "--max-connections and --listen-backlog must be at least 1",
        ));
    }
    let model_load = Duration::try_from_secs_f64(opts.model_load_secs)
        .map_err(|_| bad_input("--model-load-secs must be a non-negative number of seconds"))?;
    let emulate = match &opts.emulate {
        None => None,
        Some(profile) => Some(EmulateConfig {
            profile: profile.clone(),
            gpu_type: opts.gpu_type.clone(),
            sharing: parse_sharing(&opts.sharing).map_err(bad_input)?,
            gpu_id: opts.gpu_id.clone(),
            seed: opts.seed,
        }),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("predictor")
        .build()?;
    let ready_at = started + model_load;
    let result = runtime.block_on(serve(opts, models, emulate, ready_at));
    // Executions still running after the grace period must not hold the exit up.
    runtime.shutdown_timeout(Duration::from_millis(100));
    result
}

async fn serve(
    opts: ServeOptions,
    models: Vec<(String, ModelSource)>,
    emulate: Option<EmulateConfig>,
    ready_at: Instant,
) -> anyhow::Result<i32> {
    let emulator = match &emulate {
        Some(cfg) => {
            let em = Emulator::load(cfg)?;
            if em.max_batch_size() < opts.max_batch_size {
                return Err(bad_input(format!(
                    "--max-batch-size {} is past the profile's largest batch size {}; lower it or calibrate larger batches",
                    opts.max_batch_size,
                    em.max_batch_size()
                )));
            }
            eprintln!("lab-predictor: {}", em.description);
            Some(Arc::new(em))
        }
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    let configured = models.iter().map(|(n, _)| n.clone()).collect();
    let body_timeout = Duration::from_secs_f64(opts.body_timeout_secs);
    let app = Arc::new(App::new(
        metrics.clone(),
        opts.max_body_bytes,
        body_timeout,
        configured,
    ));
    let backlog = opts.listen_backlog.unwrap_or_else(conn::system_somaxconn);
    let max_connections = conn::connection_cap(opts.max_connections);
    if max_connections < opts.max_connections {
        eprintln!(
            "lab-predictor: at most {max_connections} REST connections (the descriptor limit {} less {} kept for the rest)",
            conn::descriptor_limit().unwrap_or(0),
            conn::RESERVED_DESCRIPTORS
        );
    }
    let limits = conn::Limits {
        header_timeout: Duration::from_secs_f64(opts.header_timeout_secs),
        body_timeout,
        idle_timeout: Duration::from_secs_f64(opts.idle_timeout_secs),
        max_connections,
        linger: body_timeout.min(Duration::from_secs(10)),
    };

    // Listen first: liveness answers while models load, readiness says not yet.
    let http = conn::bind(&opts.host, opts.http_port, backlog)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}:{}: {e}", opts.host, opts.http_port))?;
    let http_addr = http.local_addr()?;
    let grpc = if opts.no_grpc {
        None
    } else {
        let l = conn::bind(&opts.host, opts.grpc_port, backlog)
            .await
            .map_err(|e| {
                anyhow::anyhow!("cannot listen on {}:{}: {e}", opts.host, opts.grpc_port)
            })?;
        Some(l)
    };
    let grpc_addr: Option<SocketAddr> = grpc.as_ref().map(|l| l.local_addr()).transpose()?;
    // Machine-readable line for scripts and tests that asked for port 0.
    println!(
        "lab-predictor listening http={http_addr} grpc={}",
        grpc_addr.map_or("off".to_string(), |a| a.to_string())
    );

    let stop_rx = app.stop.subscribe();
    let report = Arc::new(conn::ShutdownReport::default());
    let http_task = {
        let router = crate::http::router(app.clone());
        tokio::spawn(conn::serve(
            http,
            router,
            limits,
            stop_rx.clone(),
            report.clone(),
        ))
    };
    let grpc_task = grpc.map(|listener| {
        let mut rx = stop_rx.clone();
        let svc = crate::grpc::server(app.clone(), opts.max_body_bytes);
        let incoming = conn::capped_incoming(listener, max_connections, stop_rx.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .tcp_nodelay(true)
                // Peers that vanished without a FIN are found and dropped.
                .http2_keepalive_interval(Some(Duration::from_secs(30)))
                .http2_keepalive_timeout(Some(Duration::from_secs(20)))
                .add_service(svc)
                .serve_with_incoming_shutdown(incoming, async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
        })
    });

    let load = LoadOptions {
        device: device(&opts.device, opts.cuda_device),
        intra_threads: opts.threads,
        instances: opts.instances,
    };
    let cfg = BatchConfig {
        max_batch_size: opts.max_batch_size,
        preferred: opts.preferred_batch_sizes.clone(),
        max_queue_delay: Duration::from_micros(opts.max_queue_delay_us),
        max_queue_rows: opts.max_queue_rows,
        instances: opts.instances,
    };
    let mut signals = Signals::new()?;
    let mut shutdown = Box::pin(signals.next());
    for (name, source) in models {
        let load = load.clone();
        let loading = tokio::task::spawn_blocking(move || -> anyhow::Result<Model> {
            let model = match source {
                ModelSource::Onnx(path) => Model::load(&name, &path, &load)?,
                ModelSource::StandIn => Model::stand_in(&name),
            };
            // Warm-up: the first run allocates and optimises; do it before ready.
            model
                .run(model.zero_inputs(1))
                .map_err(|e| anyhow::anyhow!("model {name}: warm-up inference failed: {e}"))?;
            Ok(model)
        });
        let model = tokio::select! {
            r = loading => r??,
            _ = &mut shutdown => return Ok(0),
        };
        eprintln!(
            "lab-predictor: loaded {} ({}, {} inputs, {} outputs, {})",
            model.name,
            model.platform,
            model.inputs.len(),
            model.outputs.len(),
            if model.batchable {
                "batchable"
            } else {
                "not batchable: one request per execution"
            }
        );
        let name = model.name.clone();
        let batcher = Batcher::start(
            Arc::new(model),
            cfg.clone(),
            metrics.clone(),
            emulator.clone(),
        );
        app.models
            .write()
            .map_err(|_| anyhow::anyhow!("model table poisoned"))?
            .insert(name, batcher);
    }
    // The emulated model load: a timer to its end, which a signal cuts short.
    if Instant::now() < ready_at {
        eprintln!(
            "lab-predictor: models loaded; emulated model load until {:.3}s after start",
            opts.model_load_secs
        );
        tokio::select! {
            _ = tokio::time::sleep_until(ready_at.into()) => {}
            _ = &mut shutdown => return Ok(0),
        }
    }
    app.ready.store(true, Ordering::SeqCst);
    println!("lab-predictor ready");

    shutdown.await;
    eprintln!(
        "lab-predictor: shutting down; in-flight requests have {}s to finish \
         (a second SIGTERM or Ctrl-C exits at once)",
        opts.grace_period_secs
    );
    // A second signal cuts the drain short: the process exits with 128 + its number.
    tokio::spawn(async move {
        let again = signals.next().await;
        eprintln!("lab-predictor: second signal during the drain; exiting at once");
        std::process::exit(128 + again);
    });
    app.draining.store(true, Ordering::SeqCst);
    app.ready.store(false, Ordering::SeqCst);
    let inflight_at_signal = metrics.inflight_total();
    let _ = app.stop.send(true);
    let grace = Duration::from_secs_f64(opts.grace_period_secs);
    let drain_started = Instant::now();
    // Let every connection see the signal before reading what they did with it.
    tokio::task::yield_now().await;
    let drained = tokio::time::timeout(grace, async {
        let _ = http_task.await;
        if let Some(t) = grpc_task {
            let _ = t.await;
        }
    })
    .await;
    let closed_idle = report.closed_idle.load(Ordering::Relaxed);
    let closed_partial = report.closed_partial.load(Ordering::Relaxed);
    let draining = report.draining.load(Ordering::Relaxed);
    let summary = format!(
        "{inflight_at_signal} inference requests were in flight at the signal; REST connections: \
         {closed_idle} idle and {closed_partial} with a request head still arriving closed at once, \
         {draining} left to finish their request"
    );
    match drained {
        Ok(()) => eprintln!(
            "lab-predictor: drained in {:.3}s ({summary}); exiting",
            drain_started.elapsed().as_secs_f64()
        ),
        Err(_) => eprintln!(
            "lab-predictor: grace period of {}s over with {} inference requests still in flight ({summary}); exiting",
            opts.grace_period_secs,
            metrics.inflight_total()
        ),
    }
    Ok(0)
}

/// SIGTERM and SIGINT, listened to from start-up to exit so none is missed
/// between the first (the drain) and a second (exit at once).
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        let term = signal(SignalKind::terminate())
            .map_err(|e| anyhow::anyhow!("listening for SIGTERM: {e}"))?;
        let int = signal(SignalKind::interrupt())
            .map_err(|e| anyhow::anyhow!("listening for SIGINT: {e}"))?;
        Ok(Self { term, int })
    }

    /// The number of the next signal: 15 (SIGTERM) or 2 (SIGINT).
    async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.term.recv() => 15,
            _ = self.int.recv() => 2,
        }
    }
}
