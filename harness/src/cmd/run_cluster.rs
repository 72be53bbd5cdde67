//! `lab run --level cluster`: what `lab deploy` renders, applied to the
//! kubeconfig's cluster by lab-cluster; load from an Indexed Job of `lab load`
//! shards started at one instant; the cluster sampled while they run; their
//! results read from their logs and merged exactly; everything applied torn
//! down again (unless `--keep`), on errors and Ctrl-C too.

use crate::exit;
use crate::summary;
use anyhow::Context;
use lab_cluster::observe::{Observation, Target};
use lab_cluster::{Applied, Cluster, ClusterError, ShardJob};
use lab_results::Results;
use lab_scenario::Scenario;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::run::Args;

/// Peak offered rate one load shard is given by default (its pod asks for
/// one CPU, which sends about this many requests per second with room).
const RPS_PER_SHARD: f64 = 1000.0;
/// The instant all shards start at is this far after the last one listens,
/// so the start request reaches every one of them before it.
const START_LEAD: Duration = Duration::from_secs(2);
/// How long the load Job's pods may take to be scheduled and listen.
const SHARDS_TIMEOUT: Duration = Duration::from_secs(300);
/// Past the scenario's end, how long shards may take to drain and exit.
const DRAIN_ALLOWANCE: Duration = Duration::from_secs(300);
/// The longest one sample of the cluster (or of Prometheus) may take.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(5);
/// kube-prometheus-stack's Prometheus, as `deploy/install-stack.sh` installs it.
const CLUSTER_PROMETHEUS: (&str, &str, u16) =
    ("monitoring", "kube-prometheus-stack-prometheus", 9090);
/// DCGM's GPU utilisation (percent) per node.
const DCGM_QUERY: &str = "avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL)";

pub fn run(args: Args, scenario: Scenario) -> anyhow::Result<i32> {
    if args.time_scale != 1.0 || args.compare_sim {
        return Err(exit::bad_input(
            "--time-scale and --compare-sim belong to --level local: a cluster runs at the \
             scenario's own pace; compare it with the simulator by `lab compare sim.json results.json`",
        ));
    }
    let (mode, opts) = super::deploy::options(
        &scenario,
        args.mode.as_deref(),
        &args.image,
        args.namespace.clone(),
        &args.storage_uris,
    )?;
    let rendered = lab_deploy::render(&scenario, &opts)
        .map_err(|r| super::deploy::refused(&args.scenario, mode, args.mode.is_none(), &r))?;
    let toml = std::fs::read_to_string(&args.scenario)
        .map_err(|e| exit::bad_input(format!("{}: {e}", args.scenario.display())))?;
    let shards = match args.shards {
        Some(0) => {
            return Err(exit::bad_input(
                "--shards 0: a load needs at least one shard",
            ))
        }
        Some(n) => n,
        None => default_shards(&scenario),
    };
    let mut overrides = args.overrides.clone();
    if let Some(seed) = args.seed {
        overrides.push(format!("run.seed={seed}"));
    }
    let load = lab_deploy::load_job(
        &scenario,
        &opts,
        &rendered.namespace,
        shards,
        &toml,
        &overrides,
    )
    .map_err(|refusals| {
        for r in &refusals {
            eprintln!("error: {}: {r}", args.scenario.display());
        }
        exit::bad_input(format!(
            "{} setting(s) of {} cannot run at the cluster level's load Job",
            refusals.len(),
            args.scenario.display()
        ))
    })?;

    let started = SystemTime::now();
    let dir = match &args.out {
        Some(dir) => super::named_dir(dir, "results.json", args.force)?,
        None => super::fresh_dir(&PathBuf::from("runs").join(format!(
            "{}-cluster-{}",
            scenario.name,
            super::run::compact_stamp(started)
        )))?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let interrupt = crate::interrupt::Interrupt::install(
        "stopping the load and deleting what was applied, partial results will be written",
    )?;
    let plan = Plan {
        scenario: &scenario,
        namespace: rendered.namespace.clone(),
        objects: &rendered.objects,
        cluster_objects: if args.apply_cluster_config {
            &rendered.cluster_objects
        } else {
            &[]
        },
        load: &load,
        services: rendered.inference_services(),
        targets: targets(&scenario),
        shards,
        ready_timeout: Duration::from_secs_f64(args.ready_timeout.map_or(600.0, |d| d.secs_f64())),
        prometheus: args.prometheus.clone(),
        dir: &dir,
    };
    let wall = Instant::now();
    let mut notes = rendered.notes.clone();
    if !rendered.cluster_objects.is_empty() && !args.apply_cluster_config {
        notes.push(format!(
            "cluster-wide settings were not applied ({} object(s) of cluster-config/: {}); the \
             cluster's own values decided them (--apply-cluster-config applies them)",
            rendered.cluster_objects.len(),
            describe(&rendered.cluster_objects)
        ));
    }
    let outcome = runtime.block_on(async {
        let cluster = match Cluster::connect(args.context.as_deref()).await {
            Ok(c) => c,
            Err(ClusterError::BadInput(m)) => {
                return Err(Failure::BadInput(format!(
                    "{m}; the cluster level uses the kubeconfig's current context ($KUBECONFIG or \
                     ~/.kube/config, or --context NAME); `lab cluster up --kind` makes a kind cluster"
                )))
            }
            Err(e) => return Err(Failure::Run(e.to_string())),
        };
        let driven = drive(&cluster, &plan, &interrupt).await;
        let applied = match &driven {
            Ok(d) => d.applied.clone(),
            Err((applied, _)) => applied.clone(),
        };
        let leftovers = if args.keep {
            eprintln!(
                "  kept: {} object(s) (--keep); delete them with `{}`",
                applied.len(),
                delete_hint(&plan.namespace, &scenario.name)
            );
            Vec::new()
        } else {
            eprintln!("  tearing down {} object(s)", applied.len());
            cluster.teardown(&applied).await
        };
        Ok((driven, leftovers))
    });
    let (driven, leftovers) = match outcome {
        Ok(x) => x,
        Err(Failure::BadInput(m)) => return Err(exit::bad_input(m)),
        Err(e) => anyhow::bail!("{e}"),
    };
    for l in &leftovers {
        eprintln!("lab: could not delete {}: {}", l.object, l.error);
        notes.push(format!("left in the cluster: {} ({})", l.object, l.error));
    }
    if !leftovers.is_empty() {
        eprintln!(
            "lab: {} object(s) are left in the cluster; delete them with `{}`",
            leftovers.len(),
            delete_hint(&plan.namespace, &scenario.name)
        );
    }
    let done = match driven {
        Ok(d) => d,
        Err((_, Failure::Interrupted(partial))) => {
            eprintln!("lab: interrupted: the load shards were stopped before they reported");
            if let Some(obs) = partial {
                let mut r = empty_results(&scenario, &args)?;
                r.complete = false;
                r.run.notes = notes;
                r.run.notes.push(
                    "interrupted: the load shards were deleted before they reported, so no \
                     request figures are in these results; replicas, nodes and cost are the \
                     cluster's up to the stop"
                        .into(),
                );
                let end = obs.samples.last().map_or(0, |s| s.t_ns);
                let pulls = std::collections::BTreeMap::new();
                let extra = lab_cluster::assemble::lay_into(&mut r, &scenario, &obs, &pulls, end);
                r.run.notes.extend(extra);
                write_results(&r, &dir, &args, started, wall)?;
            }
            return Ok(interrupt.exit_code());
        }
        Err((_, Failure::NotReady(report))) => {
            eprintln!("{report}");
            anyhow::bail!("the InferenceServices were not ready in time (see above)");
        }
        Err((_, Failure::BadInput(m))) => return Err(exit::bad_input(m)),
        Err((_, Failure::Run(m))) => anyhow::bail!("the cluster run failed: {m}"),
    };

    let mut results = done.results;
    results.seed = args.seed.unwrap_or(scenario.run.seed);
    results.scenario = lab_results::ScenarioInfo {
        name: scenario.name.clone(),
        file: args.scenario.display().to_string(),
        overrides: args.overrides.clone(),
        config: serde_json::to_value(&scenario).context("echoing the scenario")?,
    };
    let kept_up = super::run_local::kept_up(&results, args.max_send_lag.map(|d| d.secs_f64()));
    let pulls = lab_cluster::observe::image_pulls(&done.events);
    let end = (results.run.end_seconds * 1e9) as u64;
    notes.extend(lab_cluster::assemble::lay_into(
        &mut results,
        &scenario,
        &done.observation,
        &pulls,
        end,
    ));
    notes.push(format!(
        "load from {} shard(s) of Job {}/{} started at {}, merged exactly",
        plan.shards,
        plan.namespace,
        lab_deploy::LOAD_NAME,
        lab_results::rfc3339(done.start)
    ));
    if let Some(why) = &done.gpu_note {
        notes.push(why.clone());
    }
    results.run.notes = notes;
    super::run_local::judge(&mut results, &scenario, &kept_up, args.allow_warnings);
    write_results(&results, &dir, &args, started, wall)?;
    if let Err(why) = &kept_up {
        eprintln!("lab: {why}");
    }
    Ok(if !leftovers.is_empty() || kept_up.is_err() {
        exit::RUN_FAILED
    } else if results.passed() {
        exit::PASS
    } else {
        exit::SLO_FAILED
    })
}

/// What the run applies and waits on.
struct Plan<'a> {
    scenario: &'a Scenario,
    namespace: String,
    objects: &'a [serde_json::Value],
    cluster_objects: &'a [serde_json::Value],
    load: &'a [serde_json::Value],
    services: Vec<String>,
    targets: Vec<Target>,
    shards: u32,
    ready_timeout: Duration,
    prometheus: Option<String>,
    dir: &'a Path,
}

/// A finished load: the merged shards, what was seen of the cluster, and
/// what must be torn down.
struct Done {
    applied: Vec<Applied>,
    results: Results,
    observation: Observation,
    events: Vec<k8s_openapi::api::core::v1::Event>,
    start: SystemTime,
    gpu_note: Option<String>,
}

enum Failure {
    BadInput(String),
    Run(String),
    NotReady(String),
    /// Stopped by a signal, with what was observed of the cluster by then.
    Interrupted(Option<Observation>),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::BadInput(m) | Failure::Run(m) | Failure::NotReady(m) => f.write_str(m),
            Failure::Interrupted(_) => f.write_str("interrupted"),
        }
    }
}

fn failure(e: ClusterError) -> Failure {
    match e {
        ClusterError::BadInput(m) => Failure::Run(m),
        ClusterError::Api(e) => Failure::Run(format!("the Kubernetes API: {e}")),
        ClusterError::NotReady(r) => Failure::NotReady(r.to_string()),
        ClusterError::Interrupted => Failure::Interrupted(None),
    }
}

/// Apply, wait, load, observe, collect. On failure returns what was applied
/// so far, for the teardown.
async fn drive(
    cluster: &Cluster,
    plan: &Plan<'_>,
    interrupt: &crate::interrupt::Interrupt,
) -> Result<Done, (Vec<Applied>, Failure)> {
    let ns = plan.namespace.as_str();
    if !plan.cluster_objects.is_empty() {
        eprintln!(
            "  applying {} cluster-wide object(s) of cluster-config/ (never torn down)",
            plan.cluster_objects.len()
        );
        if let Err((_, e)) = cluster.apply(plan.cluster_objects).await {
            return Err((Vec::new(), failure(e)));
        }
    }
    eprintln!(
        "  applying {} object(s) to namespace {ns} (server-side apply, field manager {})",
        plan.objects.len(),
        lab_cluster::FIELD_MANAGER
    );
    let mut applied = match cluster.apply(plan.objects).await {
        Ok(a) => a,
        Err((a, e)) => return Err((a, failure(e))),
    };
    let waited = cluster
        .wait_ready(
            ns,
            &plan.services,
            plan.ready_timeout,
            |ready, total| eprintln!("  InferenceServices ready: {ready}/{total}"),
            interrupt.stopped(),
        )
        .await;
    if let Err(e) = waited {
        return Err((applied, failure(e)));
    }
    eprintln!(
        "  starting the load: Job {ns}/{} of {} shard(s)",
        lab_deploy::LOAD_NAME,
        plan.shards
    );
    match cluster.apply(plan.load).await {
        Ok(a) => applied.extend(a),
        Err((a, e)) => {
            applied.extend(a);
            return Err((applied, failure(e)));
        }
    }
    let job = ShardJob {
        namespace: ns,
        job: lab_deploy::LOAD_NAME,
        count: plan.shards,
        port: lab_deploy::START_PORT,
    };
    let shards = match cluster
        .start_shards(job, SHARDS_TIMEOUT, START_LEAD, interrupt.stopped())
        .await
    {
        Ok(s) => s,
        Err(e) => return Err((applied, failure(e))),
    };
    eprintln!(
        "  all {} shard(s) listening; the load starts at {}",
        plan.shards,
        lab_results::rfc3339(shards.start)
    );

    // Sample the cluster on a task of its own until the shards are done, so a
    // slow API answer never delays reading the shards or a Ctrl-C.
    let observation = Arc::new(Mutex::new(Observation::new(
        unix_ns(shards.start),
        plan.targets.clone(),
        plan.scenario.services.len(),
        plan.scenario
            .node_pools
            .iter()
            .map(|p| p.name.clone())
            .collect(),
    )));
    let (stop_sampling, sampling_stopped) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn(sample(
        cluster.clone(),
        Sampling {
            namespace: ns.to_string(),
            interval: Duration::from_nanos(plan.scenario.run.interval.nanos())
                .clamp(Duration::from_secs(1), Duration::from_secs(15)),
            start: shards.start,
            end: Duration::from_nanos(plan.scenario.duration().nanos()),
            services: plan
                .scenario
                .services
                .iter()
                .map(|s| s.name.clone())
                .collect(),
            prometheus: plan.prometheus.clone(),
        },
        observation.clone(),
        sampling_stopped,
    ));
    let timeout = Duration::from_nanos(plan.scenario.duration().nanos()) + DRAIN_ALLOWANCE;
    let logs = cluster
        .collect_shards(
            ns,
            &shards,
            lab_deploy::LOG_LIMIT_BYTES,
            timeout,
            interrupt.stopped(),
        )
        .await;
    let _ = stop_sampling.send(true);
    let (gpu_note, sample_errors) = match tokio::time::timeout(SAMPLE_TIMEOUT * 2, sampler).await {
        Ok(Ok(done)) => done,
        _ => (
            Some("GPU use not read: the last sample did not finish".into()),
            0,
        ),
    };
    let take = |o: &Arc<Mutex<Observation>>| {
        o.lock()
            .map(|g| g.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    };
    let logs = match logs {
        Ok(l) => l,
        Err(ClusterError::Interrupted) => {
            return Err((applied, Failure::Interrupted(Some(take(&observation)))))
        }
        Err(e) => return Err((applied, failure(e))),
    };
    let mut observation = take(&observation);
    // One last look, for the state at the end.
    if let Ok(Ok(snap)) = tokio::time::timeout(
        SAMPLE_TIMEOUT,
        cluster.snapshot(ns, unix_ns(SystemTime::now())),
    )
    .await
    {
        observation.record(&snap);
    }
    let events = cluster.events(ns).await.unwrap_or_default();
    let shard_dir = plan.dir.join("shards");
    let mut parts = Vec::new();
    for (i, log) in logs.iter().enumerate() {
        let _ = std::fs::create_dir_all(&shard_dir);
        let _ = std::fs::write(shard_dir.join(format!("shard-{i}.log")), log);
        match results_in_log(log) {
            Ok(r) => parts.push(r),
            Err(why) => {
                return Err((
                    applied,
                    Failure::Run(format!(
                        "load shard {i} ({}): {why}; its log is in {}",
                        shards.pods[i],
                        shard_dir.join(format!("shard-{i}.log")).display()
                    )),
                ))
            }
        }
    }
    let results = match lab_loadgen::merge(&parts) {
        Ok(r) => r,
        Err(e) => return Err((applied, Failure::Run(format!("merging the shards: {e}")))),
    };
    if sample_errors > 0 {
        eprintln!("lab: {sample_errors} sample(s) of the cluster failed and are missing");
    }
    Ok(Done {
        applied,
        results,
        observation,
        events,
        start: shards.start,
        gpu_note,
    })
}

/// What the sampler needs to know, owned (it runs on a task of its own).
struct Sampling {
    namespace: String,
    interval: Duration,
    start: SystemTime,
    end: Duration,
    services: Vec<String>,
    prometheus: Option<String>,
}

/// Takes a snapshot of the cluster every interval into `observation`, with
/// DCGM's GPU use where Prometheus has it, and prints the progress line,
/// until `stop` turns true. Returns the GPU note and how many samples failed.
async fn sample(
    cluster: Cluster,
    s: Sampling,
    observation: Arc<Mutex<Observation>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (Option<String>, u32) {
    let mut tick = tokio::time::interval(s.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut gpu = GpuReader::new(s.prometheus.clone());
    let mut errors = 0u32;
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            _ = tick.tick() => {}
        }
        let now = SystemTime::now();
        let snap =
            tokio::time::timeout(SAMPLE_TIMEOUT, cluster.snapshot(&s.namespace, unix_ns(now)));
        let mut snap = match snap.await {
            Ok(Ok(snap)) => snap,
            Ok(Err(e)) => {
                errors += 1;
                if errors <= 3 {
                    eprintln!("lab: reading the cluster failed (the load goes on): {e}");
                }
                continue;
            }
            Err(_) => {
                errors += 1;
                continue;
            }
        };
        snap.gpu_busy = gpu.read(&cluster).await;
        let Ok(mut o) = observation.lock() else { break };
        o.record(&snap);
        let Some(last) = o.samples.last() else {
            continue;
        };
        let replicas: Vec<String> = s
            .services
            .iter()
            .zip(&last.services)
            .map(|(name, (desired, ready))| format!("{name} {ready}/{desired}"))
            .collect();
        let nodes: u32 = last.pools.iter().map(|p| p.0).sum();
        let t = now.duration_since(s.start).unwrap_or_default();
        eprintln!(
            "  load {} / {}, replicas ready/desired: {}, nodes {nodes}",
            lab_units::Dur::from_secs_f64(t.as_secs_f64().floor()),
            lab_units::Dur::from_secs_f64(s.end.as_secs_f64()),
            replicas.join(", ")
        );
    }
    (gpu.note(), errors)
}

/// GPU use from DCGM: through `--prometheus URL`, else the cluster's
/// Prometheus through the API server's service proxy; once neither answers
/// it stops asking.
struct GpuReader {
    url: Option<String>,
    failed: Option<String>,
    found: bool,
}

impl GpuReader {
    fn new(url: Option<String>) -> GpuReader {
        GpuReader {
            url,
            failed: None,
            found: false,
        }
    }

    async fn read(&mut self, cluster: &Cluster) -> std::collections::BTreeMap<String, f64> {
        if self.failed.is_some() {
            return Default::default();
        }
        let query = async {
            match &self.url {
                Some(url) => lab_local::Prometheus::external(url.clone(), None)
                    .client()
                    .query(DCGM_QUERY)
                    .await
                    .map_err(|e| e.to_string()),
                None => {
                    let (ns, svc, port) = CLUSTER_PROMETHEUS;
                    let path = format!(
                        "/api/v1/query?query={}",
                        lab_local::encode_query_value(DCGM_QUERY)
                    );
                    match cluster.service_get(ns, svc, port, &path).await {
                        Ok(body) => lab_local::parse_response(DCGM_QUERY, 200, body.as_bytes())
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(format!("{ns}/{svc} through the service proxy: {e}")),
                    }
                }
            }
        };
        // The API server's 503 for a service without endpoints is retried
        // by the client for minutes: an answer this late is no answer.
        let series = match tokio::time::timeout(SAMPLE_TIMEOUT, query).await {
            Ok(s) => s,
            Err(_) => Err(format!("no answer within {} s", SAMPLE_TIMEOUT.as_secs())),
        };
        match series {
            Ok(s) => {
                let out: std::collections::BTreeMap<String, f64> = s
                    .into_iter()
                    .filter_map(|x| {
                        let host = x.labels.iter().find(|(k, _)| k == "Hostname")?.1.clone();
                        Some((host, (x.value / 100.0).clamp(0.0, 1.0)))
                    })
                    .collect();
                self.found |= !out.is_empty();
                out
            }
            Err(e) => {
                self.failed = Some(e);
                Default::default()
            }
        }
    }

    fn note(&self) -> Option<String> {
        match (&self.failed, self.found) {
            (Some(why), _) => Some(format!(
                "GPU use not read: Prometheus did not answer ({why})"
            )),
            (None, false) => Some(format!(
                "GPU use not read: Prometheus has no DCGM series (`{DCGM_QUERY}` was empty): \
                 emulated GPUs, or no dcgm-exporter"
            )),
            (None, true) => None,
        }
    }
}

/// A shard's results: the one line of JSON `lab load -o -` prints, among
/// the stderr lines the kubelet interleaves.
fn results_in_log(log: &str) -> Result<Results, String> {
    let line = log
        .lines()
        .rev()
        .find(|l| l.starts_with('{') && l.contains("\"schema_version\""))
        .ok_or_else(|| {
            if log.len() as u64 >= lab_deploy::LOG_LIMIT_BYTES {
                format!(
                    "its log reached the {} MiB read limit before its results",
                    lab_deploy::LOG_LIMIT_BYTES >> 20
                )
            } else {
                let tail: Vec<&str> = log.lines().rev().take(3).collect();
                format!(
                    "no results line in its log (last lines: {})",
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )
            }
        })?;
    serde_json::from_str(line).map_err(|e| format!("its results line does not parse: {e}"))
}

/// The InferenceServices of the scenario and what each stands for.
fn targets(sc: &Scenario) -> Vec<Target> {
    let mut out = Vec::new();
    for (i, s) in sc.services.iter().enumerate() {
        let names = lab_deploy::isvc_names(s);
        for (k, isvc) in names.into_iter().enumerate() {
            out.push(Target {
                isvc,
                service: i,
                name: match s.versions.get(k) {
                    Some(v) => format!("{}/{}", s.name, v.name),
                    None => s.name.clone(),
                },
                autoscaler: s.autoscaler.kind().to_string(),
            });
        }
    }
    out
}

/// One shard per [`RPS_PER_SHARD`] of the peak offered rate (all streams
/// together, sampled every second of the run), at least one.
pub(super) fn default_shards(sc: &Scenario) -> u32 {
    let schedules: Vec<lab_traffic::Schedule> = sc
        .traffic
        .iter()
        .enumerate()
        .map(|(i, t)| lab_traffic::Schedule::new(t, sc.run.seed, i as u32))
        .collect();
    let end = sc.duration().nanos();
    let step = 1_000_000_000u64;
    let mut peak = 0.0f64;
    let mut t = 0;
    while t <= end {
        peak = peak.max(schedules.iter().map(|s| s.rate_at(t)).sum());
        t += step;
    }
    ((peak / RPS_PER_SHARD).ceil() as u32).max(1)
}

fn unix_ns(t: SystemTime) -> i128 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as i128
}

/// The kubectl commands that delete what a run applied: the namespace, and
/// the PriorityClass, which lives outside it.
fn delete_hint(namespace: &str, scenario: &str) -> String {
    format!(
        "kubectl delete namespace {namespace} && kubectl delete priorityclass -l \
         app.kubernetes.io/part-of=lab,lab.dev/scenario={}",
        lab_deploy::label_value(scenario)
    )
}

/// `ConfigMap knative-serving/config-autoscaler (stable-window, ...)`: the
/// objects with the keys they set.
fn describe(objects: &[serde_json::Value]) -> String {
    objects
        .iter()
        .map(|o| {
            let keys: Vec<&str> = o["data"]
                .as_object()
                .map(|d| d.keys().map(String::as_str).collect())
                .unwrap_or_default();
            format!(
                "{} {}/{}{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["namespace"].as_str().unwrap_or("-"),
                o["metadata"]["name"].as_str().unwrap_or("?"),
                if keys.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", keys.join(", "))
                }
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Results with no request in them (a run stopped before the shards
/// reported): the simulator stopped before its first event writes every
/// section of the schema, empty.
fn empty_results(sc: &Scenario, args: &Args) -> anyhow::Result<Results> {
    let mut r = lab_sim::simulate(sc, 0, &mut |_| lab_sim::Control::Stop).results;
    r.level = lab_results::Level::Cluster;
    r.seed = args.seed.unwrap_or(sc.run.seed);
    r.scenario = lab_results::ScenarioInfo {
        name: sc.name.clone(),
        file: args.scenario.display().to_string(),
        overrides: args.overrides.clone(),
        config: serde_json::to_value(sc).context("echoing the scenario")?,
    };
    Ok(r)
}

fn write_results(
    results: &Results,
    dir: &Path,
    args: &Args,
    started: SystemTime,
    wall: Instant,
) -> anyhow::Result<()> {
    let mut results = results.clone();
    results.wall_clock.started_at = lab_results::rfc3339(started);
    results.wall_clock.elapsed_seconds = wall.elapsed().as_secs_f64();
    results.wall_clock.tool = format!("lab {}", env!("CARGO_PKG_VERSION"));
    let path = dir.join("results.json");
    let text = serde_json::to_string_pretty(&results)?;
    super::write_atomically(&path, &text)?;
    if !args.no_report {
        super::run::write_report(&results, dir)?;
    }
    if args.json {
        println!("{text}");
    } else {
        print!("{}", summary::human(&results, dir));
    }
    Ok(())
}
