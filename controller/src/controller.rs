//! The live controller and the run around it. One task owns every decision:
//! it sleeps until the next thing is due (an autoscaler's sync, a KPA
//! bucket, a scrape, a cluster-autoscaler scan, a node coming up, a time
//! series point) or until something happens (a pod event from the
//! supervisor, the activator's poke), then acts through `lab-decide` and
//! `lab-autoscale` as the simulator's engine does, with the wall clock's
//! nanoseconds since the start of the load as `now`.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use lab_autoscale::{
    reading_for, Autoscaler, Bounds, MetricError, Observation, PodPhase, PodSample, Reading,
    Signal, SignalValues, Time,
};
use lab_decide::binding::{self, PodRequest};
use lab_decide::lifecycle::{self, StartupTimes};
use lab_decide::metrics::{clamp_replicas, cpu_usage_milli, with_activator, RateWindow};
use lab_decide::reconcile::{self, LivePhase, LivePod, Reconcile};
use lab_gateway::{EndpointId, Gateway, GatewayConfig, GatewayHandle, ServiceConfig};
use lab_local::{
    BackOffPolicy, Lifecycle, PodEvent, PodSpec, PodTarget, PromClient, Prometheus,
    PrometheusConfig, StaticJob, Supervisor,
};
use lab_results::{Results, ScalingEvent};
use lab_scenario::Scenario;
use tokio::sync::mpsc;

use crate::nodes::{NodeState, Nodes, Placement};
use crate::LocalError;

const NS: f64 = 1e9;

/// Where the run's Prometheus comes from.
#[derive(Debug, Clone)]
pub enum PrometheusChoice {
    /// Start Debian's `prometheus` (this binary, or the one on PATH) when it
    /// is found; required only when a query needs it.
    Start { binary: Option<PathBuf> },
    /// Use one already running; it must scrape what the run tells it
    /// through its file_sd file, if any.
    External(String),
}

/// How to run.
pub struct Options {
    /// The `lab` binary the pods run (`lab serve`).
    pub lab: PathBuf,
    /// The run folder: pod logs, profiles, Prometheus' config and TSDB.
    pub run_dir: PathBuf,
    pub seed: u64,
    /// The factor the caller divided the scenario's durations by (for the
    /// results' notes and the back-off of crashed pods).
    pub time_scale: f64,
    pub prometheus: PrometheusChoice,
    /// Called about once a second of wall time.
    pub progress: Option<ProgressFn>,
    /// How long the warm initial pods may take to become ready.
    pub ready_timeout: Duration,
}

/// The progress callback.
pub type ProgressFn = Box<dyn FnMut(&Progress) + Send>;

/// What the progress line shows.
#[derive(Debug, Clone)]
pub struct Progress {
    pub phase: &'static str,
    pub t_seconds: f64,
    pub end_seconds: f64,
    /// (service, ready, desired)
    pub replicas: Vec<(String, u32, u32)>,
    /// Requests per second the pods received over the last second.
    pub achieved_rps: f64,
}

/// What a local run produced.
pub struct LocalOutput {
    /// In run time (the caller converts with `to_scenario_time`), SLOs not
    /// yet judged.
    pub results: Results,
    /// Facts about this run a reader should know (what was emulated, what
    /// was not available).
    pub notes: Vec<String>,
    /// What the stack added to every request beyond the predictor's own
    /// time, in run time (`--compare-sim` gives it to the simulator).
    pub overhead: crate::MeasuredOverhead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PodState {
    /// Waiting for a node with room.
    Pending,
    /// Bound; waiting, spawned or loading, not ready.
    Starting,
    Ready,
    /// Crashed, waiting out CrashLoopBackOff.
    BackOff,
    Draining,
    Terminated,
    Failed,
}

pub(crate) struct Pod {
    pub name: String,
    pub dep: usize,
    pub state: PodState,
    pub created: u64,
    pub bound: Option<u64>,
    pub ready_at: Option<u64>,
    pub placement: Option<Placement>,
    pub endpoint: Option<EndpointId>,
    pub http_port: u16,
    /// Part of the initial, warm replicas: not a cold start.
    pub warm: bool,
    /// lab-decide's start-up timeline, as planned at binding.
    pub restarts: u32,
    /// When it stopped holding its node (for cost).
    pub ended: Option<u64>,
    // Scrape window: Σ concurrency·s and requests since the last scrape.
    pub window_area: f64,
    pub window_requests: u64,
    /// Waiting at its queue-proxy at the last stats report.
    pub queue_depth: usize,
    pub last_scrape: u64,
    pub scraped: Option<SignalValues>,
    /// A real pod's CPU time at the start of its scrape window.
    pub cpu_mark: Option<CpuMark>,
}

/// A process's CPU time at one instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuMark {
    pub pid: u32,
    pub cpu_seconds: f64,
    pub at: Instant,
}

/// A KEDA `prometheus` trigger, queried for real.
pub(crate) struct PromTrigger {
    pub query: String,
    pub reading: Reading,
}

pub(crate) struct Deployment {
    pub service: usize,
    /// `service` or `service/version`.
    pub target: String,
    pub version: String,
    pub autoscaler: Autoscaler,
    pub min: u32,
    pub max: u32,
    pub desired: u32,
    pub max_desired: u32,
    pub pods: Vec<usize>,
    pub request: PodRequest,
    pub pool: usize,
    /// Share of a node's price one pod is charged (OpenCost-style).
    pub node_share: f64,
    pub serving: Serving,
    pub times: StartupTimes,
    pub grace: Duration,
    pub next_decide: u64,
    pub next_record: Option<u64>,
    pub record_every: Option<u64>,
    pub rate: RateWindow,
    pub requests_total: u64,
    pub last_totals: SignalValues,
    pub prom_triggers: Vec<PromTrigger>,
    /// The HPA's Pods, Object and External metrics that this run's
    /// Prometheus has, queried as a prometheus-adapter would serve them.
    pub hpa_queries: Vec<crate::promql::HpaQuery>,
    /// The profile was measured on the MIG slice itself: no slice speed-down.
    pub measured_on_slice: bool,
    /// Requests ever buffered at the activator (the gateway's count).
    pub buffered: tokio::sync::watch::Receiver<u64>,
}

/// What a deployment's pods serve.
#[derive(Debug, Clone)]
pub(crate) enum Serving {
    /// The built-in stand-in model on a GPU emulated from this calibration
    /// profile (the scenario's latency).
    Emulated { profile: PathBuf },
    /// The service's model file with ONNX Runtime on the CPU.
    Onnx { model_file: PathBuf },
}

/// Per service, what the time series and summary need.
#[derive(Default, Clone)]
pub(crate) struct ServiceTrack {
    pub min_ready: Option<u32>,
    pub max_ready: u32,
    pub ready_area: f64,
    pub ever_ready_measured: bool,
}

pub(crate) struct Sample {
    pub t_ns: u64,
    /// (desired, ready) per service.
    pub services: Vec<(u32, u32)>,
    /// (nodes, ready) per pool.
    pub pools: Vec<(u32, u32)>,
    pub cost_usd: f64,
}

pub(crate) struct State<'s> {
    pub sc: &'s Scenario,
    pub t0: Instant,
    pub lab: PathBuf,
    pub run_dir: PathBuf,
    pub seed: u64,
    pub gpu_prefix: String,
    pub nodes: Nodes,
    pub pods: Vec<Pod>,
    pub deps: Vec<Deployment>,
    pub supervisor: Supervisor,
    pub gateway: GatewayHandle,
    pub prometheus: Option<Prometheus>,
    pub prom: Option<PromClient>,
    pub events: Vec<ScalingEvent>,
    pub samples: Vec<Sample>,
    pub tracks: Vec<ServiceTrack>,
    pub last_track: u64,
    pub pending: Vec<usize>,
    pub notes: Vec<String>,
    /// Spot interruptions' own stream, as the simulator keeps one.
    pub rng_spot: lab_traffic::Rng,
    /// Σ time the gateway held requests at pods (request·seconds), and the
    /// requests, over the run: its mean is the time at a pod per request.
    pub at_pod_seconds: f64,
    pub at_pod_requests: u64,
}

fn t(ns: u64) -> Time {
    Duration::from_nanos(ns)
}

impl State<'_> {
    pub fn now(&self) -> u64 {
        self.t0.elapsed().as_nanos() as u64
    }

    // ----- pods -------------------------------------------------------------

    fn create_pod(&mut self, d: usize, now: u64, warm: bool) -> usize {
        let id = self.pods.len();
        let name = format!(
            "{}-{}",
            self.deps[d].target.replace('/', "-"),
            self.deps[d].pods.len()
        );
        self.pods.push(Pod {
            name,
            dep: d,
            state: PodState::Pending,
            created: now,
            bound: None,
            ready_at: None,
            placement: None,
            endpoint: None,
            http_port: 0,
            warm,
            restarts: 0,
            ended: None,
            window_area: 0.0,
            window_requests: 0,
            queue_depth: 0,
            last_scrape: now,
            scraped: None,
            cpu_mark: None,
        });
        self.deps[d].pods.push(id);
        self.pending.push(id);
        id
    }

    /// Binds pending pods in creation order where a node has room.
    fn bind_pending(&mut self, now: u64) -> Result<(), LocalError> {
        let pending = std::mem::take(&mut self.pending);
        for p in pending {
            if self.pods[p].state != PodState::Pending {
                continue;
            }
            let d = self.pods[p].dep;
            let (pool, req) = (self.deps[d].pool, self.deps[d].request.clone());
            match self.nodes.bind(pool, p as u64, &req) {
                Some(place) => self.start_pod(p, place, now)?,
                None => self.pending.push(p),
            }
        }
        Ok(())
    }

    fn start_pod(&mut self, p: usize, place: Placement, now: u64) -> Result<(), LocalError> {
        let d = self.pods[p].dep;
        let svc = self.deps[d].service;
        let warm = self.pods[p].warm;
        let image = self.nodes.image_ready(place.node, svc);
        let times = self.deps[d].times;
        let up = lifecycle::startup(self.pods[p].created, now, image, times);
        if let Some(done) = up.node_image_ready {
            self.nodes.record_image(place.node, svc, done);
        }
        let spec = &self.sc.services[svc];
        let http = lab_local::free_port().map_err(|e| fail("a free port for a pod", e))?;
        let grpc = lab_local::free_port().map_err(|e| fail("a free port for a pod", e))?;
        let mut args = serve_args(
            spec,
            &self.deps[d],
            self.seed ^ (p as u64).wrapping_mul(0x9e37_79b9),
        );
        // A real model runs on the CPU: no GPU to emulate or share.
        if matches!(self.deps[d].serving, Serving::Emulated { .. }) {
            let gpu_type = self.nodes.pools[self.deps[d].pool].gpu.clone();
            match self.nodes.sharing_arg(&place, &self.deps[d].request.gpu) {
                Some((sharing, gpu))
                    if !(self.deps[d].measured_on_slice && sharing.starts_with("mig:")) =>
                {
                    args.extend(["--sharing".into(), sharing]);
                    args.extend(["--gpu-id".into(), format!("{}-{gpu}", self.gpu_prefix)]);
                }
                _ => {
                    args.extend(["--gpu-id".into(), format!("{}-pod{p}", self.gpu_prefix)]);
                }
            }
            if let Some(g) = gpu_type {
                args.extend(["--gpu-type".into(), g]);
            }
        }
        let (pull, load, probe) = if warm {
            (Duration::ZERO, 0.0, Duration::from_millis(20))
        } else {
            (
                Duration::from_nanos(up.image_pulled.saturating_sub(now)),
                times.model_load_ns as f64 / NS,
                Duration::from_nanos(times.probe_period_ns.max(1_000_000)),
            )
        };
        args.extend(["--model-load-secs".into(), format!("{load}")]);
        let mut pod_spec =
            PodSpec::lab_serve(&self.pods[p].name, &self.lab, http, Some(grpc), args);
        pod_spec.log = Some(
            self.run_dir
                .join("pods")
                .join(format!("{}.log", self.pods[p].name)),
        );
        let life = Lifecycle {
            provisioning: Duration::ZERO,
            image_pull: pull,
            readiness_period: probe,
            probe_timeout: Duration::from_secs(1),
            failure_threshold: 3,
            grace_period: self.deps[d].grace,
        };
        self.supervisor
            .start(pod_spec, life)
            .map_err(|e| LocalError::Failed(e.to_string()))?;
        let dep = &self.deps[d];
        let ep = self
            .gateway
            .add_endpoint_with_grpc(
                &self.sc.services[svc].name,
                &dep.version,
                &self.pods[p].name,
                ([127, 0, 0, 1], http).into(),
                ([127, 0, 0, 1], grpc).into(),
            )
            .map_err(|e| LocalError::Failed(e.to_string()))?;
        let pod = &mut self.pods[p];
        pod.state = PodState::Starting;
        pod.bound = Some(now);
        pod.placement = Some(place);
        pod.endpoint = Some(ep);
        pod.http_port = http;
        self.write_targets();
        Ok(())
    }

    /// Tells Prometheus which pods to scrape (file_sd).
    fn write_targets(&mut self) {
        let Some(prom) = &self.prometheus else {
            return;
        };
        let targets: Vec<PodTarget> = self
            .pods
            .iter()
            .filter(|p| {
                matches!(
                    p.state,
                    PodState::Starting | PodState::Ready | PodState::BackOff | PodState::Draining
                )
            })
            .map(|p| {
                let d = &self.deps[p.dep];
                PodTarget {
                    address: format!("127.0.0.1:{}", p.http_port),
                    labels: vec![
                        ("pod".into(), p.name.clone()),
                        ("service".into(), self.sc.services[d.service].name.clone()),
                        ("revision".into(), d.version.clone()),
                    ],
                }
            })
            .collect();
        if let Err(e) = prom.set_pod_targets(&targets) {
            let note = format!("Prometheus targets could not be written: {e}");
            if !self.notes.contains(&note) {
                self.notes.push(note);
            }
        }
    }

    fn pod_by_name(&self, name: &str) -> Option<usize> {
        self.pods.iter().position(|p| p.name == name)
    }

    fn on_event(&mut self, ev: PodEvent) -> Result<(), LocalError> {
        let now = self.now();
        match ev {
            PodEvent::Ready { pod, .. } => {
                let Some(p) = self.pod_by_name(&pod) else {
                    return Ok(());
                };
                if !matches!(self.pods[p].state, PodState::Starting | PodState::BackOff) {
                    return Ok(());
                }
                self.track(now);
                self.pods[p].state = PodState::Ready;
                if self.pods[p].ready_at.is_none() {
                    self.pods[p].ready_at = Some(now);
                }
                // A real pod's first scrape window starts at readiness.
                self.pods[p].cpu_mark = self.cpu_mark(p);
                if let Some(ep) = self.pods[p].endpoint {
                    let _ = self.gateway.set_ready(ep, true);
                }
            }
            PodEvent::NotReady { pod, .. } => {
                if let Some(p) = self.pod_by_name(&pod) {
                    if self.pods[p].state == PodState::Ready {
                        self.track(now);
                        self.pods[p].state = PodState::Starting;
                        if let Some(ep) = self.pods[p].endpoint {
                            let _ = self.gateway.set_ready(ep, false);
                        }
                    }
                }
            }
            PodEvent::Crashed { pod, restarts, .. } => {
                if let Some(p) = self.pod_by_name(&pod) {
                    self.track(now);
                    self.pods[p].restarts = restarts;
                    if self.pods[p].state != PodState::Draining {
                        self.pods[p].state = PodState::BackOff;
                    }
                    if let Some(ep) = self.pods[p].endpoint {
                        let _ = self.gateway.set_ready(ep, false);
                    }
                }
            }
            PodEvent::Terminated { pod, .. } => {
                if let Some(p) = self.pod_by_name(&pod) {
                    self.finish_pod(p, PodState::Terminated, now);
                }
            }
            // The spec itself cannot run (no restart helps): replacing the pod
            // would fail the same way, so the run stops and says why.
            PodEvent::Failed { pod, error } => {
                if let Some(p) = self.pod_by_name(&pod) {
                    self.finish_pod(p, PodState::Failed, now);
                }
                return Err(fail(&format!("pod {pod} could not be started"), error));
            }
        }
        Ok(())
    }

    fn finish_pod(&mut self, p: usize, state: PodState, now: u64) {
        self.track(now);
        let d = self.pods[p].dep;
        if let Some(place) = self.pods[p].placement.take() {
            let req = self.deps[d].request.clone();
            self.nodes.release(&place, &req, now);
        }
        if let Some(ep) = self.pods[p].endpoint.take() {
            let _ = self.gateway.remove_endpoint(ep);
        }
        self.pods[p].state = state;
        self.pods[p].ended = Some(now);
        self.write_targets();
    }

    fn delete_pod(&mut self, p: usize, now: u64) {
        match self.pods[p].state {
            PodState::Pending => {
                self.pods[p].state = PodState::Terminated;
                self.pending.retain(|x| *x != p);
            }
            PodState::Terminated | PodState::Failed | PodState::Draining => {}
            _ => {
                self.track(now);
                self.pods[p].state = PodState::Draining;
                if let Some(ep) = self.pods[p].endpoint {
                    let _ = self.gateway.set_draining(ep);
                }
                // The supervisor sends SIGTERM, waits the grace period, then SIGKILL.
                let _ = self.supervisor.terminate(&self.pods[p].name);
            }
        }
    }

    fn reconcile(&mut self, d: usize, now: u64) -> Result<(), LocalError> {
        let live: Vec<LivePod<usize>> = self.deps[d]
            .pods
            .iter()
            .filter_map(|&p| {
                let pod = &self.pods[p];
                let phase = match pod.state {
                    PodState::Draining | PodState::Terminated | PodState::Failed => return None,
                    PodState::Pending => LivePhase::Unscheduled,
                    PodState::Starting => LivePhase::Starting,
                    PodState::BackOff => LivePhase::Failed,
                    PodState::Ready => LivePhase::Ready,
                };
                let outstanding = pod
                    .endpoint
                    .and_then(|e| self.gateway.outstanding(e).ok())
                    .unwrap_or(0) as u64;
                Some(LivePod {
                    id: p,
                    phase,
                    outstanding,
                    created: pod.created,
                })
            })
            .collect();
        match reconcile::reconcile(&live, self.deps[d].desired as usize) {
            Reconcile::Create(n) => {
                for _ in 0..n {
                    self.create_pod(d, now, false);
                }
                self.bind_pending(now)?;
            }
            Reconcile::Delete(pods) => {
                for p in pods {
                    self.delete_pod(p, now);
                }
            }
            Reconcile::Nothing => {}
        }
        Ok(())
    }

    // ----- metrics ------------------------------------------------------------

    /// Closes the gateway's per-pod stats windows (the queue-proxy's report)
    /// and feeds each KPA its bucket, as Knative's autoscaler scrapes them.
    fn report_stats(&mut self, now: u64) {
        let stats = self.gateway.report_stats();
        let mut per_dep: Vec<(f64, f64, u64)> = vec![(0.0, 0.0, 0); self.deps.len()];
        for s in &stats {
            let Some(p) = self
                .pods
                .iter()
                .position(|p| p.endpoint == Some(s.endpoint))
            else {
                continue;
            };
            self.at_pod_seconds += s.concurrency_seconds;
            self.at_pod_requests += s.requests;
            let pod = &mut self.pods[p];
            pod.window_area += s.concurrency_seconds;
            pod.window_requests += s.requests;
            pod.queue_depth = s.queue_depth;
            let e = &mut per_dep[pod.dep];
            e.0 += s.average_concurrent_requests;
            e.1 += s.request_count;
            e.2 += s.requests;
        }
        for (d, (conc, rps, requests)) in per_dep.into_iter().enumerate() {
            let dep = &mut self.deps[d];
            dep.requests_total += requests;
            let Some(next) = dep.next_record else {
                continue;
            };
            if now + 1_000_000 < next {
                continue;
            }
            let every = dep.record_every.unwrap_or(1_000_000_000);
            dep.next_record = Some(next.max(now) + every);
            let svc = &self.sc.services[dep.service].name;
            let queued = self
                .gateway
                .activator_queue_depth(svc, &dep.version)
                .unwrap_or(0) as f64;
            let totals = SignalValues {
                concurrency: conc + queued,
                rps,
                queue_depth: queued,
                ..dep.last_totals
            };
            let ready = dep
                .pods
                .iter()
                .filter(|p| self.pods[**p].state == PodState::Ready)
                .count() as u32;
            dep.autoscaler.record(t(now), &totals, ready);
        }
    }

    /// A scrape of every pod and the services' totals, as metrics-server and
    /// Prometheus see them at the scrape interval.
    fn scrape(&mut self, now: u64) {
        let window = self.sc.metrics.rate_window.nanos();
        for p in 0..self.pods.len() {
            if !matches!(self.pods[p].state, PodState::Ready | PodState::Draining) {
                continue;
            }
            let real = matches!(self.deps[self.pods[p].dep].serving, Serving::Onnx { .. });
            let measured = if real { self.measure_cpu(p) } else { None };
            let pod = &mut self.pods[p];
            let elapsed = (now.saturating_sub(pod.last_scrape)).max(1) as f64 / NS;
            let concurrency = pod.window_area / elapsed;
            let busy = concurrency.min(1.0);
            let dep = &self.deps[pod.dep];
            let cpu_milli = if real {
                // metrics-server's figure: CPU time used over the window. A
                // window the process did not live through whole reads as 0.
                measured.unwrap_or(0.0)
            } else {
                // The emulated GPU burns no CPU: the figure follows the
                // simulator's model of a pod's CPU (see the results' notes).
                cpu_usage_milli(dep.request.cpu_milli as f64, busy)
            };
            pod.scraped = Some(SignalValues {
                cpu_milli,
                memory_bytes: dep.request.memory_bytes as f64,
                concurrency,
                rps: pod.window_requests as f64 / elapsed,
                queue_depth: pod.queue_depth as f64,
                gpu_utilization: 100.0 * busy,
            });
            pod.window_area = 0.0;
            pod.window_requests = 0;
            pod.last_scrape = now;
        }
        for d in 0..self.deps.len() {
            let total = self.deps[d].requests_total;
            let interval = self.sc.metrics.scrape_interval.nanos().max(1);
            let rps = self.deps[d].rate.scrape(now, total, window.max(interval));
            let mut totals = SignalValues {
                rps,
                ..Default::default()
            };
            for &p in &self.deps[d].pods {
                let pod = &self.pods[p];
                if let (Some(v), PodState::Ready | PodState::Draining) = (pod.scraped, pod.state) {
                    totals.cpu_milli += v.cpu_milli;
                    totals.memory_bytes += v.memory_bytes;
                    totals.concurrency += v.concurrency;
                    totals.queue_depth += v.queue_depth;
                    totals.gpu_utilization += v.gpu_utilization;
                }
            }
            let buffered = self.activator_queue(d) as f64;
            totals.concurrency += buffered;
            totals.queue_depth += buffered;
            self.deps[d].last_totals = totals;
        }
    }

    /// A real pod's CPU use since its last mark, in millicores of scenario
    /// time, and a new mark; `None` without a mark of the same process.
    fn measure_cpu(&mut self, p: usize) -> Option<f64> {
        let previous = self.pods[p].cpu_mark.take();
        let mark = self.cpu_mark(p);
        self.pods[p].cpu_mark = mark;
        let (old, new) = (previous?, mark?);
        if old.pid != new.pid {
            return None;
        }
        let milli = cpu_millicores(old.cpu_seconds, new.cpu_seconds, new.at - old.at)?;
        // Real models run at their own pace only (`run` refuses a time scale).
        Some(milli)
    }

    /// The pod's process CPU time now, read from /proc.
    fn cpu_mark(&self, p: usize) -> Option<CpuMark> {
        let pid = self.supervisor.handle(&self.pods[p].name)?.record().pid()?;
        Some(CpuMark {
            pid,
            cpu_seconds: process_cpu_seconds(pid)?,
            at: Instant::now(),
        })
    }

    fn activator_queue(&self, d: usize) -> usize {
        let dep = &self.deps[d];
        self.gateway
            .activator_queue_depth(&self.sc.services[dep.service].name, &dep.version)
            .unwrap_or(0)
    }

    fn pod_samples(&self, d: usize) -> Vec<PodSample> {
        let dep = &self.deps[d];
        dep.pods
            .iter()
            .filter(|p| !matches!(self.pods[**p].state, PodState::Terminated))
            .map(|&p| {
                let pod = &self.pods[p];
                PodSample {
                    phase: match pod.state {
                        PodState::Pending => PodPhase::Pending,
                        PodState::Failed => PodPhase::Failed,
                        _ => PodPhase::Running,
                    },
                    ready: pod.state == PodState::Ready,
                    deleting: pod.state == PodState::Draining,
                    start: pod.bound.map(t),
                    ready_transition: (pod.state == PodState::Ready)
                        .then(|| pod.ready_at.map(t))
                        .flatten(),
                    cpu_request_milli: dep.request.cpu_milli,
                    memory_request_bytes: dep.request.memory_bytes,
                    metrics: pod.scraped,
                }
            })
            .collect()
    }

    /// The service totals with KEDA's `prometheus` triggers answered by a
    /// real instant query (KEDA's semantics: no series is 0, NaN is 0, more
    /// than one series is an error).
    async fn totals(&mut self, d: usize) -> (Result<SignalValues, MetricError>, Vec<String>) {
        let queued = self.activator_queue(d);
        let last = self.deps[d].last_totals;
        let mut totals = SignalValues {
            concurrency: with_activator(last.concurrency, queued),
            queue_depth: with_activator(last.queue_depth, queued),
            ..last
        };
        let mut shown = Vec::new();
        for i in 0..self.deps[d].prom_triggers.len() {
            let (query, reading) = {
                let tr = &self.deps[d].prom_triggers[i];
                (tr.query.clone(), tr.reading)
            };
            let Some(client) = &self.prom else {
                return (
                    Err(MetricError("no Prometheus is running for this run".into())),
                    shown,
                );
            };
            match client.query_value_with(&query, true, None).await {
                Ok(v) => {
                    let v = if v.is_nan() { 0.0 } else { v };
                    shown.push(format!("{query} = {v}"));
                    set_signal(&mut totals, reading.signal, v / reading.scale);
                }
                Err(e) => return (Err(MetricError(e.to_string())), shown),
            }
        }
        (Ok(totals), shown)
    }

    /// Answers an HPA's Pods, Object and External metrics from Prometheus:
    /// per-pod values into the pods' samples (a pod without a series has no
    /// metrics, as the HPA sees a pod the adapter does not know), service
    /// values as overrides of the totals. Returns what was asked and
    /// answered, and the first error.
    async fn hpa_prometheus(
        &mut self,
        d: usize,
    ) -> (Vec<String>, Vec<(Signal, f64)>, Option<String>) {
        let queries = self.deps[d].hpa_queries.clone();
        let (mut shown, mut totals) = (Vec::new(), Vec::new());
        if queries.is_empty() {
            return (shown, totals, None);
        }
        let Some(client) = self.prom.clone() else {
            return (
                shown,
                totals,
                Some("no Prometheus is running for this run".into()),
            );
        };
        for q in &queries {
            let samples = match client.query(&q.query).await {
                Ok(s) => s,
                Err(e) => return (shown, totals, Some(e.to_string())),
            };
            let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
            if q.per_pod {
                let pods = self.deps[d].pods.clone();
                let mut found = 0;
                for p in pods {
                    let pod = &mut self.pods[p];
                    if !matches!(pod.state, PodState::Ready | PodState::Draining) {
                        continue;
                    }
                    let value = samples
                        .iter()
                        .find(|x| x.labels.iter().any(|(k, v)| k == "pod" && *v == pod.name))
                        .map(|x| finite(x.value));
                    match value {
                        Some(v) => {
                            found += 1;
                            let mut m = pod.scraped.unwrap_or_default();
                            set_signal(&mut m, q.reading.signal, v / q.reading.scale);
                            pod.scraped = Some(m);
                        }
                        None => pod.scraped = None,
                    }
                }
                shown.push(format!("{} ({found} pod(s))", q.query));
            } else {
                let v: f64 = samples.iter().map(|x| finite(x.value)).sum();
                shown.push(format!("{} = {v}", q.query));
                totals.push((q.reading.signal, v / q.reading.scale));
            }
        }
        (shown, totals, None)
    }

    async fn decide(&mut self, d: usize, now: u64) -> Result<(), LocalError> {
        let (hpa_shown, hpa_totals, hpa_error) = self.hpa_prometheus(d).await;
        let samples = self.pod_samples(d);
        let (mut totals, mut queries) = self.totals(d).await;
        if let Ok(t) = totals.as_mut() {
            for (signal, v) in hpa_totals {
                set_signal(t, signal, v);
            }
        }
        if let Some(e) = hpa_error {
            totals = Err(MetricError(e));
        }
        queries.extend(hpa_shown);
        let status = self.deps[d]
            .pods
            .iter()
            .filter(|p| {
                !matches!(
                    self.pods[**p].state,
                    PodState::Draining | PodState::Terminated | PodState::Failed
                )
            })
            .count() as u32;
        let activator = self.activator_queue(d) as u32;
        let dep = &mut self.deps[d];
        let obs = Observation {
            spec_replicas: dep.desired,
            status_replicas: status,
            pods: &samples,
            totals,
            activator_queue: activator,
        };
        let decision = dep.autoscaler.decide(t(now), &obs);
        let mode = if decision.activator_in_path {
            lab_gateway::ActivatorMode::Proxy
        } else {
            lab_gateway::ActivatorMode::Serve
        };
        let _ = self.gateway.set_activator_mode(
            &self.sc.services[dep.service].name,
            &dep.version,
            mode,
        );
        let next = (dep.autoscaler.next_decision().as_nanos() as u64).max(now + 1);
        dep.next_decide = next;
        let (min, max) = (dep.min, dep.max);
        let from = dep.desired;
        let to = clamp_replicas(decision.desired, min, max);
        if to != from {
            let dep = &mut self.deps[d];
            dep.desired = to;
            dep.max_desired = dep.max_desired.max(to);
            let mut reason = decision.reason;
            if !queries.is_empty() {
                reason = format!("{reason} [promql: {}]", queries.join("; "));
            }
            self.events.push(ScalingEvent {
                t_seconds: now as f64 / NS,
                target: dep.target.clone(),
                autoscaler: dep.autoscaler.kind().to_string(),
                from,
                to,
                reason,
            });
            self.track(now);
            self.reconcile(d, now)?;
        }
        Ok(())
    }

    /// Draws the interruption notice of spot nodes that just became ready.
    fn arm_spot(&mut self, nodes: &[usize], now: u64) {
        for &n in nodes {
            let pool = &self.nodes.pools[self.nodes.nodes[n].pool];
            if pool.capacity_type != lab_scenario::CapacityType::Spot {
                continue;
            }
            let rng = &mut self.rng_spot;
            self.nodes.nodes[n].notice_at = lab_decide::spot::next_interruption_ns(
                now,
                pool.spot_interruptions_per_hour,
                || lab_traffic::uniform(rng),
            );
        }
    }

    /// Spot notices and reclaims that are due: at the notice the node takes
    /// no new pods and its pods are deleted (they drain with their grace
    /// period while their ReplicaSets replace them); at the reclaim it is gone.
    fn spot(&mut self, now: u64) -> Result<(), LocalError> {
        for n in 0..self.nodes.nodes.len() {
            let node = &self.nodes.nodes[n];
            match node.state {
                NodeState::Ready if node.notice_at.is_some_and(|t| t <= now) => {
                    let pool = node.pool;
                    let notice = self.nodes.pools[pool].interruption_notice.nanos();
                    let Some(at) = lab_decide::spot::reclaim_at(true, now, notice) else {
                        continue;
                    };
                    let before = self.nodes.live(pool);
                    self.nodes.nodes[n].state = NodeState::Doomed { at };
                    self.events.push(ScalingEvent {
                        t_seconds: now as f64 / NS,
                        target: format!("pool:{}", self.nodes.pools[pool].name),
                        autoscaler: "spot".into(),
                        from: before,
                        to: before.saturating_sub(1),
                        reason: lab_decide::spot::notice_reason(n, notice),
                    });
                    let on_node: Vec<usize> = (0..self.pods.len())
                        .filter(|p| {
                            self.pods[*p]
                                .placement
                                .as_ref()
                                .is_some_and(|pl| pl.node == n)
                        })
                        .collect();
                    let mut touched: Vec<usize> =
                        on_node.iter().map(|p| self.pods[*p].dep).collect();
                    for p in on_node {
                        self.delete_pod(p, now);
                    }
                    touched.sort_unstable();
                    touched.dedup();
                    for d in touched {
                        self.reconcile(d, now)?;
                    }
                }
                NodeState::Doomed { at } if at <= now => self.nodes.remove(n, now),
                _ => {}
            }
        }
        Ok(())
    }

    fn ca_scan(&mut self, now: u64) {
        let unneeded = self.sc.cluster_autoscaler.scale_down_unneeded_time.nanos();
        for pool in 0..self.nodes.pools.len() {
            let pending: Vec<usize> = self
                .pending
                .iter()
                .copied()
                .filter(|p| {
                    self.pods[*p].state == PodState::Pending
                        && self.deps[self.pods[*p].dep].pool == pool
                })
                .collect();
            let per_node = pending.first().map_or(1, |p| {
                binding::node_fit(
                    self.nodes.pools[pool].node_shape(),
                    &self.deps[self.pods[*p].dep].request,
                )
                .per_node
                .clamp(1, 10_000)
            });
            let changes = self
                .nodes
                .scan(pool, pending.len() as u32, per_node, unneeded, now);
            for c in changes {
                self.events.push(ScalingEvent {
                    t_seconds: now as f64 / NS,
                    target: format!("pool:{}", self.nodes.pools[c.pool].name),
                    autoscaler: "cluster-autoscaler".into(),
                    from: c.from,
                    to: c.to,
                    reason: c.reason,
                });
            }
        }
    }

    /// Integrates ready replicas per service up to `now` (before a change).
    /// A service's (desired, ready) replicas, summed over its versions.
    fn replicas(&self, s: usize) -> (u32, u32) {
        let desired = self
            .deps
            .iter()
            .filter(|d| d.service == s)
            .map(|d| d.desired)
            .sum();
        let ready = self
            .pods
            .iter()
            .filter(|p| p.state == PodState::Ready && self.deps[p.dep].service == s)
            .count() as u32;
        (desired, ready)
    }

    pub fn track(&mut self, now: u64) {
        // The mean is over the scenario's duration: the drain after it (requests
        // still in flight until their timeout) does not count.
        let end = self.sc.duration().nanos();
        let dt = now.min(end).saturating_sub(self.last_track.min(end)) as f64 / NS;
        let warmup = self.sc.run.warmup.nanos();
        for s in 0..self.tracks.len() {
            let (_, ready) = self.replicas(s);
            let tr = &mut self.tracks[s];
            tr.ready_area += ready as f64 * dt;
            tr.max_ready = tr.max_ready.max(ready);
            tr.min_ready = Some(tr.min_ready.map_or(ready, |m| m.min(ready)));
            if ready > 0 && now >= warmup {
                tr.ever_ready_measured = true;
            }
        }
        self.last_track = now;
    }

    fn sample(&mut self, at: u64) {
        let services = (0..self.sc.services.len())
            .map(|s| self.replicas(s))
            .collect();
        let pools = (0..self.nodes.pools.len())
            .map(|p| (self.nodes.live(p), self.nodes.ready(p)))
            .collect();
        let cost_usd = self.cost_so_far(at);
        self.samples.push(Sample {
            t_ns: at,
            services,
            pools,
            cost_usd,
        });
    }

    pub fn cost_so_far(&self, now: u64) -> f64 {
        (0..self.nodes.pools.len())
            .map(|p| {
                lab_decide::cost::pool_usage(
                    self.nodes.node_ns(p, now),
                    self.nodes.pools[p].price_per_hour,
                )
                .usd
            })
            .sum()
    }

    fn progress(&self, phase: &'static str, now: u64, end: u64, rps: f64) -> Progress {
        Progress {
            phase,
            t_seconds: now as f64 / NS,
            end_seconds: end as f64 / NS,
            replicas: self
                .sc
                .services
                .iter()
                .enumerate()
                .map(|(s, spec)| {
                    let (desired, ready) = self.replicas(s);
                    (spec.name.clone(), ready, desired)
                })
                .collect(),
            achieved_rps: rps,
        }
    }
}

/// `lab serve`'s arguments for a pod of `dep`, less the emulated GPU's
/// placement and the model load: the stand-in model on the emulated GPU, or
/// the model file with ONNX Runtime on the CPU; batching as the scenario says.
fn serve_args(spec: &lab_scenario::ServiceSpec, dep: &Deployment, seed: u64) -> Vec<String> {
    let mut args: Vec<String> = match &dep.serving {
        Serving::Onnx { model_file } => vec![
            "--model".into(),
            format!("{}={}", spec.model_name(), model_file.display()),
        ],
        Serving::Emulated { profile } => vec![
            "--emulate".into(),
            profile.display().to_string(),
            "--emulated-model".into(),
            spec.model_name().to_string(),
        ],
    };
    args.extend([
        "--seed".into(),
        seed.to_string(),
        "--grace-period-secs".into(),
        format!("{}", dep.grace.as_secs_f64()),
    ]);
    args.extend(spec.serve_batching_flags());
    args
}

/// CPU time a process has used (user and system), from `/proc/PID/stat`.
pub(crate) fn process_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields count from
    // the last `)`. utime and stime are fields 14 and 15 of the line.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / clock_ticks_per_second() as f64)
}

/// Millicores between two CPU-time readings `wall` apart, as metrics-server
/// reports a pod's usage.
pub(crate) fn cpu_millicores(before: f64, after: f64, wall: Duration) -> Option<f64> {
    let secs = wall.as_secs_f64();
    (secs > 0.0 && after >= before).then(|| (after - before) / secs * 1000.0)
}

/// The kernel's clock ticks per second for /proc times (`sysconf(_SC_CLK_TCK)`),
/// read from the auxiliary vector's AT_CLKTCK; 100, the usual USER_HZ, if absent.
fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        const AT_CLKTCK: u64 = 17;
        let word = std::mem::size_of::<usize>();
        let auxv = std::fs::read("/proc/self/auxv").unwrap_or_default();
        let read = |b: &[u8]| -> u64 {
            let mut buf = [0u8; 8];
            buf[..word].copy_from_slice(b);
            if word == 8 {
                u64::from_ne_bytes(buf)
            } else {
                u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as u64
            }
        };
        auxv.chunks_exact(2 * word)
            .map(|pair| (read(&pair[..word]), read(&pair[word..])))
            .find(|(key, _)| *key == AT_CLKTCK)
            .map(|(_, v)| v)
            .filter(|v| *v > 0)
            .unwrap_or(100)
    })
}

/// What the results should say about how each service's pods ran.
fn serving_notes(sc: &Scenario) -> Vec<String> {
    let (real, emulated): (Vec<&lab_scenario::ServiceSpec>, Vec<_>) =
        sc.services.iter().partition(|s| s.model_file.is_some());
    let names = |v: &[&lab_scenario::ServiceSpec]| {
        v.iter()
            .map(|s| format!("`{}`", s.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut notes = Vec::new();
    if !emulated.is_empty() {
        notes.push(format!(
            "services {}: pods are `lab serve` processes with GPUs emulated from the scenario's latency profiles; \
             HPA CPU figures follow the simulator's model of a pod's CPU (10 % idle, 100 % busy), \
             since an emulated GPU burns none",
            names(&emulated)
        ));
    }
    if !real.is_empty() {
        notes.push(format!(
            "services {}: pods serve their modelFile with ONNX Runtime on this machine's CPU \
             (`lab serve --model`), so service times are measured, not taken from the latency profiles; \
             HPA CPU figures are the pods' real CPU use between scrapes (user and system time from /proc), \
             as metrics-server reports it",
            names(&real)
        ));
    }
    notes
}

/// The inputs a model-file service's model declares (`GET /v2/models/NAME`
/// of a pod), without a request through the gateway that would wake a
/// service at zero: asked of a warm pod, or of a probe pod started outside
/// the gateway and stopped again when none is warm (minReplicas 0). The
/// probe runs the same `lab serve` as the pods, so the tensors are the ones
/// they will check requests against; reading the .onnx file here instead
/// would load ONNX Runtime into this process for one answer.
async fn model_inputs(
    st: &State<'_>,
    s: usize,
    timeout: Duration,
) -> Result<Vec<lab_loadgen::TensorSpec>, LocalError> {
    let spec = &st.sc.services[s];
    let path = format!("/v2/models/{}", spec.model_name());
    let warm = st
        .pods
        .iter()
        .find(|p| p.state == PodState::Ready && st.deps[p.dep].service == s);
    let body = match warm {
        Some(pod) => get_json(pod.http_port, &path, timeout)
            .await
            .map_err(|e| fail(&format!("pod {}", pod.name), e))?,
        None => {
            let Some(dep) = st.deps.iter().find(|d| d.service == s) else {
                return Err(bad(format!("service `{}` has no deployment", spec.name)));
            };
            let name = format!("{}-probe", spec.name);
            let http = lab_local::free_port().map_err(|e| fail("a free port for a pod", e))?;
            let mut args = serve_args(spec, dep, st.seed);
            args.extend(["--model-load-secs".into(), "0".into()]);
            let mut pod_spec = PodSpec::lab_serve(&name, &st.lab, http, None, args);
            let log = st.run_dir.join("pods").join(format!("{name}.log"));
            pod_spec.log = Some(log.clone());
            let life = Lifecycle {
                provisioning: Duration::ZERO,
                image_pull: Duration::ZERO,
                readiness_period: Duration::from_millis(20),
                probe_timeout: Duration::from_secs(1),
                failure_threshold: 3,
                grace_period: Duration::from_secs(1),
            };
            let mut handle = st
                .supervisor
                .start(pod_spec, life)
                .map_err(|e| LocalError::Failed(e.to_string()))?;
            let probe = async {
                match tokio::time::timeout(timeout, handle.ready()).await {
                    Ok(Ok(_)) => get_json(http, &path, timeout).await,
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("not ready within {timeout:?}")),
                }
            }
            .await;
            if let Ok(mut h) = st.supervisor.terminate(&name) {
                let _ = tokio::time::timeout(timeout, h.terminated()).await;
            }
            probe.map_err(|e| {
                fail(
                    &format!(
                        "the probe pod reading the inputs of `{}` (log: {})",
                        spec.name,
                        log.display()
                    ),
                    e,
                )
            })?
        }
    };
    let inputs: Vec<lab_loadgen::TensorSpec> = serde_json::from_value(body["inputs"].clone())
        .map_err(|e| fail(&format!("the metadata of model `{}`", spec.model_name()), e))?;
    if inputs.is_empty() {
        return Err(bad(format!(
            "service `{}`: model file {} declares no inputs",
            spec.name,
            spec.model_file.as_deref().unwrap_or_default()
        )));
    }
    Ok(inputs)
}

/// One GET of a pod's JSON over HTTP/1.1 with `Connection: close`.
async fn get_json(port: u16, path: &str, timeout: Duration) -> Result<serde_json::Value, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fetch = async {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connecting to 127.0.0.1:{port}: {e}"))?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
        conn.write_all(request.as_bytes())
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw)
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("GET {path}: not an HTTP response"))?;
        let status = head.split_whitespace().nth(1).unwrap_or_default();
        if status != "200" {
            return Err(format!("GET {path} answered {status}: {body}"));
        }
        if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            return Err(format!(
                "GET {path}: a chunked answer, which this reader does not take"
            ));
        }
        serde_json::from_str(body).map_err(|e| format!("GET {path}: {e}"))
    };
    tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| format!("GET {path}: no answer within {timeout:?}"))?
}

fn set_signal(v: &mut SignalValues, s: Signal, x: f64) {
    match s {
        Signal::Cpu => v.cpu_milli = x,
        Signal::Memory => v.memory_bytes = x,
        Signal::Concurrency => v.concurrency = x,
        Signal::RequestsPerSecond => v.rps = x,
        Signal::QueueDepth => v.queue_depth = x,
        Signal::GpuUtilization => v.gpu_utilization = x,
    }
}

/// The share of a node one pod is charged: lab-decide's rule, the simulator's.
fn node_share(
    req: &PodRequest,
    s: &lab_scenario::ServiceSpec,
    pool: &lab_scenario::NodePoolSpec,
) -> f64 {
    lab_decide::cost::node_share(
        lab_decide::cost::Requested {
            cpu: s.cpu_request(),
            memory_bytes: s.memory_request(),
            gpu: &req.gpu,
        },
        pool.node_shape(),
        pool.gpu.as_deref().and_then(lab_gpu::gpu_type),
    )
}

fn autoscaler_first(a: &Autoscaler) -> u64 {
    a.next_decision().as_nanos() as u64
}

fn fail(what: &str, e: impl std::fmt::Display) -> LocalError {
    LocalError::Failed(format!("{what}: {e}"))
}

fn bad(msg: impl Into<String>) -> LocalError {
    LocalError::BadInput(msg.into())
}

/// The deployments of a scenario: one per service, or one per version of a
/// canary split, each with its autoscaler, as the simulator builds them.
fn deployments(
    sc: &Scenario,
    gateway: &GatewayHandle,
    profiles: &std::path::Path,
) -> Result<Vec<Deployment>, LocalError> {
    let mut out = Vec::new();
    for (si, s) in sc.services.iter().enumerate() {
        let pool = match &s.node_pool {
            Some(name) => sc.node_pools.iter().position(|p| &p.name == name),
            None => sc.pool_for(s).and_then(|p| sc.node_pools.iter().position(|q| q.name == p.name)),
        }
        .ok_or_else(|| {
            bad(format!(
                "service `{}` has no node pool to run on: the local level emulates the scenario's node pools, so it needs one",
                s.name
            ))
        })?;
        let gpu = sc.node_pools[pool]
            .gpu
            .clone()
            .unwrap_or_else(|| "cpu".into());
        let versions: Vec<(String, Option<&Vec<lab_scenario::LatencySpec>>, f64)> =
            if s.versions.is_empty() {
                vec![(lab_gateway::DEFAULT_VERSION.to_string(), None, 100.0)]
            } else {
                s.versions
                    .iter()
                    .map(|v| (v.name.clone(), v.latency.as_ref(), v.traffic_percent))
                    .collect()
            };
        let split = !s.versions.is_empty();
        for (vname, latency, share) in versions {
            let specs = latency.unwrap_or(&s.latency);
            let req = s.pod_request();
            let (serving, measured_on_slice) = match (&s.model_file, &s.model_path) {
                (Some(_), Some(path)) => (
                    Serving::Onnx {
                        model_file: path.clone(),
                    },
                    false,
                ),
                (Some(file), None) => {
                    return Err(bad(format!(
                        "service `{}`: modelFile `{file}` was not resolved; load the scenario with lab_scenario::load",
                        s.name
                    )))
                }
                (None, _) => {
                    let profile =
                        lab_scenario::profile_for(specs, &sc.node_pools[pool], &req.gpu)
                            .ok_or_else(|| {
                                bad(format!(
                                    "service `{}`: no latency profile for GPU type `{gpu}` of pool `{}`",
                                    s.name, sc.node_pools[pool].name
                                ))
                            })?;
                    let file = profiles.join(format!("{}-{}.json", s.name, vname));
                    let cal = lab_gpu::CalibrationProfile::reproducing(
                        s.model_name(),
                        profile,
                        "written by lab run --level local from the scenario's latency profile",
                    );
                    let text =
                        serde_json::to_string_pretty(&cal).map_err(|e| fail("a profile", e))?;
                    std::fs::write(&file, text)
                        .map_err(|e| fail(&format!("writing {}", file.display()), e))?;
                    (
                        Serving::Emulated { profile: file },
                        profile.gpu.contains('/'),
                    )
                }
            };
            // A canary's versions split the service's replica bounds as the
            // simulator does: each version is its own Deployment.
            // Each version is a Deployment of its own with the service's
            // bounds, as in the simulator.
            let _ = share;
            let (min, max) = (s.min_replicas, s.max_replicas);
            let autoscaler = Autoscaler::new(
                &s.autoscaler,
                Bounds { min, max },
                s.container_concurrency,
                Duration::ZERO,
            )
            .map_err(|p| bad(format!("service `{}`: {}", s.name, p.join("; "))))?;
            let record_every = autoscaler.metric_interval().map(|i| i.as_nanos() as u64);
            let hpa_queries = match &s.autoscaler.hpa {
                Some(h) => crate::promql::hpa_queries(
                    h,
                    &s.name,
                    &vname,
                    sc.metrics.rate_window.secs_f64(),
                )
                .map_err(|e| bad(format!("service `{}`: {e}", s.name)))?,
                None => Vec::new(),
            };
            let mut prom_triggers = Vec::new();
            if let Some(k) = &s.autoscaler.keda {
                for tr in &k.triggers {
                    if tr.type_ == "prometheus" {
                        if let Some(q) = tr.metadata.get("query") {
                            let reading = reading_for(q, tr.signal)
                                .map_err(|e| bad(format!("service `{}`: {e}", s.name)))?;
                            prom_triggers.push(PromTrigger {
                                query: q.clone(),
                                reading,
                            });
                        }
                    }
                }
            }
            let cs = &s.cold_start;
            let pull = cs.image_pull.map(|d| d.nanos()).unwrap_or_else(|| {
                if cs.image_pull_bandwidth.0 > 0.0 {
                    (cs.image_size.0 / cs.image_pull_bandwidth.0 * NS) as u64
                } else {
                    0
                }
            });
            let desired = clamp_replicas(autoscaler.initial_replicas(), min, max);
            let first_decide = autoscaler_first(&autoscaler);
            out.push(Deployment {
                service: si,
                target: if split {
                    format!("{}/{vname}", s.name)
                } else {
                    s.name.clone()
                },
                buffered: gateway
                    .activator_demand(&s.name, &vname)
                    .map_err(|e| fail("the gateway", e))?,
                version: vname,
                autoscaler,
                min,
                max,
                desired,
                max_desired: desired,
                pods: Vec::new(),
                node_share: node_share(&req, s, &sc.node_pools[pool]),
                request: req,
                pool,
                serving,
                times: StartupTimes {
                    pod_start_ns: cs.pod_start.nanos(),
                    image_pull_ns: pull,
                    model_load_ns: cs.model_load.nanos(),
                    probe_period_ns: cs.readiness_probe_period.nanos(),
                },
                grace: Duration::from_nanos(cs.termination_grace_period.nanos()),
                next_decide: first_decide,
                next_record: record_every,
                measured_on_slice,
                record_every,
                rate: RateWindow::new(),
                requests_total: 0,
                last_totals: SignalValues::default(),
                prom_triggers,
                hpa_queries,
            });
        }
    }
    Ok(out)
}

/// Runs the scenario on this machine until its duration has passed and the
/// load has finished, or `stop` completes (then the results are marked
/// incomplete). Every child process is stopped before this returns, and
/// by the supervisor's process group if this future is dropped.
pub async fn run(
    sc: &Scenario,
    mut opts: Options,
    stop: impl Future<Output = ()>,
) -> Result<LocalOutput, LocalError> {
    if opts.time_scale != 1.0 {
        if let Some(s) = sc.services.iter().find(|s| s.model_file.is_some()) {
            return Err(bad(format!(
                "--time-scale {} needs emulated GPUs: service `{}` names a modelFile, whose \
                 real ONNX Runtime service times cannot be played faster; drop --time-scale \
                 or the modelFile",
                opts.time_scale, s.name
            )));
        }
    }
    tokio::pin!(stop);
    let mut notes = serving_notes(sc);
    if opts.time_scale != 1.0 {
        notes.push(format!(
            "run {}x faster than the scenario (--time-scale {}): durations divided, rates multiplied, results reported in scenario time",
            opts.time_scale, opts.time_scale
        ));
    }
    for dir in ["pods", "profiles"] {
        let p = opts.run_dir.join(dir);
        std::fs::create_dir_all(&p).map_err(|e| fail(&format!("creating {}", p.display()), e))?;
    }
    let backoff = BackOffPolicy::default().scaled(opts.time_scale.max(1.0));
    let (supervisor, mut pod_events) =
        Supervisor::new(backoff).map_err(|e| fail("starting the supervisor", e))?;

    let mut gw_cfg = GatewayConfig::new(ServiceConfig::from_scenario(sc));
    gw_cfg.seed = opts.seed;
    // The controller closes the stats windows itself, at the KPA's bucket period.
    gw_cfg.stats_period = None;
    let gateway = Gateway::start(gw_cfg)
        .await
        .map_err(|e| fail("starting the gateway", e))?;
    let gw = gateway.handle();
    let gw_addr = gateway.local_addr();

    let deps = deployments(sc, &gw, &opts.run_dir.join("profiles"))?;
    let needs_prometheus = deps
        .iter()
        .any(|d| !d.prom_triggers.is_empty() || !d.hpa_queries.is_empty());
    let prometheus = match &opts.prometheus {
        PrometheusChoice::External(url) => Some(Prometheus::external(url.clone(), None)),
        PrometheusChoice::Start { binary } => match lab_local::locate_prometheus(binary.as_deref()) {
            Ok(bin) => {
                let cfg = PrometheusConfig {
                    scrape_interval: Duration::from_nanos(sc.metrics.scrape_interval.nanos().max(1_000_000)),
                    static_jobs: vec![StaticJob {
                        job: "lab-gateway".into(),
                        targets: vec![gw_addr.to_string()],
                    }],
                    pods_job: "lab-pods".into(),
                    run_dir: opts.run_dir.clone(),
                };
                Some(
                    Prometheus::start(&bin, &cfg)
                        .await
                        .map_err(|e| fail("starting Prometheus", e))?,
                )
            }
            Err(e) if needs_prometheus => {
                return Err(bad(format!(
                    "{e}; a KEDA `prometheus` trigger needs it (Debian: apt-get install prometheus), or pass --prometheus URL"
                )))
            }
            Err(_) => {
                notes.push("Prometheus was not found, so none was started; no query of this scenario needs it".into());
                None
            }
        },
    };
    let prom = prometheus.as_ref().map(|p| p.client());

    let mut st = State {
        sc,
        t0: Instant::now(),
        lab: opts.lab.clone(),
        run_dir: opts.run_dir.clone(),
        seed: opts.seed,
        gpu_prefix: format!("lab{}", std::process::id()),
        nodes: Nodes::new(&sc.node_pools, 0),
        pods: Vec::new(),
        deps,
        supervisor,
        gateway: gw.clone(),
        prometheus,
        prom,
        events: Vec::new(),
        samples: Vec::new(),
        tracks: vec![ServiceTrack::default(); sc.services.len()],
        last_track: 0,
        pending: Vec::new(),
        notes,
        rng_spot: lab_traffic::rng_for(opts.seed, 3),
        at_pod_seconds: 0.0,
        at_pod_requests: 0,
    };

    // The run starts in steady state, as the simulator's does: the initial
    // replicas are started warm (no pull, no model load) and awaited before
    // the clock starts.
    let outcome = async {
        for d in 0..st.deps.len() {
            for _ in 0..st.deps[d].desired {
                st.create_pod(d, 0, true);
            }
        }
        for p in st.pending.clone() {
            let d = st.pods[p].dep;
            let pool = st.deps[d].pool;
            let req = st.deps[d].request.clone();
            let place = match st.nodes.bind(pool, p as u64, &req) {
                Some(x) => Some(x),
                None if st.nodes.live(pool) < st.nodes.pools[pool].max_nodes => {
                    // As the simulator does for warm pods: the node they need exists.
                    st.nodes.add_ready(pool, 0);
                    st.nodes.bind(pool, p as u64, &req)
                }
                None => None,
            };
            if let Some(place) = place {
                st.pending.retain(|x| *x != p);
                st.start_pod(p, place, 0)?;
            }
        }
        let deadline = tokio::time::sleep(opts.ready_timeout);
        tokio::pin!(deadline);
        // A crashed pod waits out its back-off and is still not ready.
        let not_ready =
            |p: &Pod| p.warm && matches!(p.state, PodState::Starting | PodState::BackOff);
        while st.pods.iter().any(not_ready) {
            if let Some(cb) = opts.progress.as_mut() {
                cb(&st.progress("starting the initial pods", 0, sc.duration().nanos(), 0.0));
            }
            tokio::select! {
                ev = pod_events.recv() => match ev {
                    Some(PodEvent::Failed { pod, error }) => {
                        return Err(fail(&format!("pod {pod}"), error));
                    }
                    Some(ev) => st.on_event(ev)?,
                    None => return Err(LocalError::Failed("the supervisor stopped".into())),
                },
                _ = &mut stop => return Err(LocalError::Interrupted),
                _ = &mut deadline => {
                    let waiting: Vec<String> = st
                        .pods
                        .iter()
                        .filter(|p| not_ready(p))
                        .map(|p| {
                            let log = st.run_dir.join("pods").join(format!("{}.log", p.name));
                            let crashed = if p.restarts > 0 {
                                format!(", restarted {} time(s)", p.restarts)
                            } else {
                                String::new()
                            };
                            format!("{}{crashed} (log: {})", p.name, log.display())
                        })
                        .collect();
                    return Err(LocalError::Failed(format!(
                        "the initial pods were not ready within {}: {}",
                        lab_units::Dur::from_secs_f64(opts.ready_timeout.as_secs_f64()),
                        waiting.join(", ")
                    )));
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = outcome {
        st.supervisor.shutdown().await;
        if let Some(p) = st.prometheus.as_mut() {
            p.stop().await;
        }
        return Err(e);
    }

    // Each stream's tensors: the stand-in's input, or what the model file's
    // pods declare.
    let mut inputs_by_service = Vec::with_capacity(sc.services.len());
    for s in 0..sc.services.len() {
        let inputs = if sc.services[s].model_file.is_some() {
            match model_inputs(&st, s, opts.ready_timeout).await {
                Ok(i) => i,
                Err(e) => {
                    st.supervisor.shutdown().await;
                    if let Some(p) = st.prometheus.as_mut() {
                        p.stop().await;
                    }
                    return Err(e);
                }
            }
        } else {
            vec![lab_loadgen::TensorSpec {
                name: "input".into(),
                datatype: "FP32".into(),
                shape: vec![-1, 4],
            }]
        };
        inputs_by_service.push(inputs);
    }
    let stream_inputs: Vec<Vec<lab_loadgen::TensorSpec>> = (0..sc.traffic.len())
        .map(|i| inputs_by_service[sc.stream_service(i).unwrap_or(0)].clone())
        .collect();
    // The load and the clock start together.
    let streams: Vec<lab_loadgen::Stream> = sc
        .traffic
        .iter()
        .enumerate()
        .map(|(i, tr)| {
            let s = sc.stream_service(i).unwrap_or(0);
            lab_loadgen::Stream {
                spec: tr.clone(),
                index: i as u32,
                service: sc.services[s].name.clone(),
                model: sc.services[s].model_name().to_string(),
            }
        })
        .collect();
    let mut load = lab_loadgen::LoadConfig::new(
        format!("http://{gw_addr}"),
        lab_loadgen::Protocol::V2Rest,
        streams,
    );
    load.payload = lab_loadgen::Payload::Inputs(stream_inputs, lab_loadgen::Fill::Random);
    load.seed = opts.seed;
    load.level = lab_results::Level::Local;
    load.interval = Duration::from_nanos(sc.run.interval.nanos().max(1_000_000));
    load.warmup = Duration::from_nanos(sc.run.warmup.nanos());
    load.duration = Some(Duration::from_nanos(sc.duration().nanos()));
    load.timeout = sc
        .services
        .iter()
        .map(|s| Duration::from_nanos(s.timeout.nanos()))
        .max()
        .unwrap_or(Duration::from_secs(60))
        + Duration::from_secs(1);
    load.max_in_flight = 100_000;
    load.threads = 1;
    let (stop_load, load_stopped) = tokio::sync::oneshot::channel::<()>();
    let mut load_task = tokio::spawn(lab_loadgen::run(load, async move {
        let _ = load_stopped.await;
    }));
    st.t0 = Instant::now();
    // Real pods' CPU is measured from the start of the load, not from their
    // model load before it.
    for p in 0..st.pods.len() {
        if st.pods[p].state == PodState::Ready {
            st.pods[p].cpu_mark = st.cpu_mark(p);
        }
    }
    let initial: Vec<usize> = (0..st.nodes.nodes.len()).collect();
    st.arm_spot(&initial, 0);
    // What happened during the warm start is not part of the run.
    st.tracks = vec![ServiceTrack::default(); sc.services.len()];
    st.last_track = 0;
    let end = sc.duration().nanos();
    let interval = sc.run.interval.nanos().max(1_000_000);
    let scrape_every = sc.metrics.scrape_interval.nanos().max(1_000_000);
    let scan_every = sc.cluster_autoscaler.scan_interval.nanos().max(1_000_000);
    let stats_every = st
        .deps
        .iter()
        .filter_map(|d| d.record_every)
        .min()
        .unwrap_or(1_000_000_000 / opts.time_scale.max(1.0) as u64)
        .max(1_000_000);
    // First firings as in the simulator: one period after the start.
    let (mut next_scrape, mut next_scan, mut next_stats, mut next_sample) =
        (scrape_every, scan_every, stats_every, 0u64);
    let (poke_tx, mut pokes) = mpsc::unbounded_channel::<usize>();
    for (d, dep) in st.deps.iter().enumerate() {
        let mut rx = dep.buffered.clone();
        let tx = poke_tx.clone();
        tokio::spawn(async move {
            while rx.changed().await.is_ok() {
                if tx.send(d).is_err() {
                    break;
                }
            }
        });
    }
    drop(poke_tx);
    let mut load_out = None;
    let mut stopped = false;
    let mut last_progress = Instant::now();
    let mut last_requests = 0u64;
    let mut error = None;
    loop {
        let now = st.now();
        let ready = st.nodes.advance(now);
        if !ready.is_empty() {
            st.arm_spot(&ready, now);
            if let Err(e) = st.bind_pending(now) {
                error = Some(e);
                break;
            }
        }
        if let Err(e) = st.spot(now) {
            error = Some(e);
            break;
        }
        if now >= next_stats {
            st.report_stats(now);
            next_stats = now.max(next_stats) + stats_every;
        }
        if now >= next_scrape {
            st.scrape(now);
            next_scrape += scrape_every;
        }
        for d in 0..st.deps.len() {
            if now >= st.deps[d].next_decide {
                if let Err(e) = st.decide(d, now).await {
                    error = Some(e);
                    break;
                }
            }
        }
        if now >= next_scan {
            if sc.cluster_autoscaler.enabled {
                st.ca_scan(now);
                if let Err(e) = st.bind_pending(now) {
                    error = Some(e);
                    break;
                }
            }
            next_scan += scan_every;
        }
        while next_sample <= now.min(end) {
            st.sample(next_sample);
            next_sample += interval;
        }
        if last_progress.elapsed() >= Duration::from_secs(1) {
            let total: u64 = st.deps.iter().map(|d| d.requests_total).sum();
            let rps = (total - last_requests) as f64 / last_progress.elapsed().as_secs_f64();
            last_requests = total;
            last_progress = Instant::now();
            let p = st.progress("running", now, end, rps);
            if let Some(cb) = opts.progress.as_mut() {
                cb(&p);
            }
        }
        if now >= end && load_out.is_some() {
            break;
        }
        let mut due = [next_stats, next_scrape, next_scan, next_sample, end]
            .into_iter()
            .chain(st.deps.iter().map(|d| d.next_decide))
            .chain(st.nodes.next_ready())
            .chain(st.nodes.next_spot())
            .min()
            .unwrap_or(end);
        due = due.max(now + 100_000).min(now + 250_000_000);
        let sleep = tokio::time::sleep_until((st.t0 + Duration::from_nanos(due)).into());
        tokio::select! {
            _ = sleep => {}
            ev = pod_events.recv() => {
                if let Some(ev) = ev {
                    if let Err(e) = st.on_event(ev) {
                        error = Some(e);
                        break;
                    }
                }
            }
            Some(d) = pokes.recv() => {
                let now = st.now();
                let samples = st.pod_samples(d);
                let activator = st.activator_queue(d) as u32;
                let wants = {
                    let dep = &st.deps[d];
                    let obs = Observation {
                        spec_replicas: dep.desired,
                        status_replicas: dep.desired,
                        pods: &samples,
                        totals: Ok(dep.last_totals),
                        activator_queue: activator.max(1),
                    };
                    dep.autoscaler.wants_poke(&obs)
                };
                if wants {
                    if let Err(e) = st.decide(d, now).await {
                        error = Some(e);
                        break;
                    }
                }
            }
            out = &mut load_task, if load_out.is_none() => {
                load_out = Some(out);
            }
            _ = &mut stop, if !stopped => {
                stopped = true;
                let _ = stop_load.send(());
                break;
            }
        }
    }
    let now = st.now();
    st.track(now);
    if (stopped || error.is_some()) && load_out.is_none() {
        load_out = Some(load_task.await);
    }
    if now < end && !stopped && error.is_none() {
        st.sample(now);
    }
    st.report_stats(now);
    let (request, compute, batch_size) = tokio::join!(
        predictor_histogram_mean(&st, now, "lab_predictor_request_duration_seconds"),
        predictor_histogram_mean(&st, now, "lab_predictor_compute_duration_seconds"),
        predictor_histogram_mean(&st, now, "lab_predictor_batch_size"),
    );
    let predictor = PredictorMeans {
        request,
        compute,
        batch_size,
    };
    // Pods and Prometheus are stopped before the results are written.
    st.supervisor.shutdown().await;
    if let Some(p) = st.prometheus.as_mut() {
        p.stop().await;
    }
    gateway.shutdown().await;
    crate::profile::remove_shm(&st.gpu_prefix);
    if let Some(e) = error {
        return Err(e);
    }
    let load = match load_out {
        Some(Ok(Ok(out))) => out,
        Some(Ok(Err(e))) => return Err(fail("the load generator", e)),
        Some(Err(e)) => return Err(fail("the load generator", e)),
        None => {
            return Err(LocalError::Failed(
                "the load generator did not finish".into(),
            ))
        }
    };
    let end_at = if stopped { now.min(end) } else { end };
    let overhead = measured_overhead(&st, &load.results, predictor);
    let results = crate::assemble::results(&st, load.results, end_at, !stopped);
    Ok(LocalOutput {
        results,
        notes: st.notes.clone(),
        overhead,
    })
}

/// The predictors' means over the run, read back from Prometheus.
struct PredictorMeans {
    request: Option<f64>,
    compute: Option<f64>,
    batch_size: Option<f64>,
}

/// The mean of the predictor's histogram `name` over every pod Prometheus
/// scraped in the run (deleted ones too: each pod is a series of its own, and
/// its last value is its total), or `None` without Prometheus or samples.
async fn predictor_histogram_mean(st: &State<'_>, now: u64, name: &str) -> Option<f64> {
    let prom = st.prom.as_ref()?;
    // The whole run and the warm start before it.
    let range = now / 1_000_000_000 + 600;
    let total =
        |part: &str| format!("sum(max_over_time({name}_{part}{{job=\"lab-pods\"}}[{range}s]))");
    let sum = prom.query_value(&total("sum")).await.ok();
    let count = prom.query_value(&total("count")).await.ok();
    crate::overhead::mean(sum, count)
}

/// The overhead per request the run paid beyond the predictor's own time
/// (see `overhead.rs`), from the load generator's, the gateway's and the
/// predictor's clocks.
fn measured_overhead(
    st: &State<'_>,
    client: &Results,
    predictor: PredictorMeans,
) -> crate::MeasuredOverhead {
    use crate::overhead::{mean, sum_of, Means, MeasuredOverhead};
    let text = st.gateway.metrics_text();
    let name = "lab_gateway_request_duration_seconds";
    let counts = &client.summary.requests;
    let answered = counts.completed + counts.failed;
    MeasuredOverhead::measure(Means {
        client: (counts.completed > 0).then_some(client.summary.latency_seconds.mean),
        failed_share: if answered > 0 {
            counts.failed as f64 / answered as f64
        } else {
            0.0
        },
        gateway: mean(
            sum_of(&text, &format!("{name}_sum")),
            sum_of(&text, &format!("{name}_count")),
        ),
        // Time waiting for a `containerConcurrency` slot is the pod queue the
        // simulator models, and the predictor's clock has not started yet.
        at_pod: (st.at_pod_requests > 0).then(|| {
            let waited = sum_of(&text, "lab_gateway_breaker_wait_seconds_total").unwrap_or(0.0);
            (st.at_pod_seconds - waited) / st.at_pod_requests as f64
        }),
        predictor: predictor.request,
        compute: predictor.compute,
        batch_size: predictor.batch_size,
    })
}

#[cfg(test)]
mod cpu_tests {
    use super::*;

    #[test]
    fn proc_cpu_of_a_busy_process_is_positive_and_below_its_cores() {
        let pid = std::process::id();
        let (before, start) = (
            process_cpu_seconds(pid).expect("/proc/self/stat"),
            Instant::now(),
        );
        // Burn CPU on this thread for 300 ms: tens of clock ticks.
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let (after, wall) = (process_cpu_seconds(pid).unwrap(), start.elapsed());
        let milli = cpu_millicores(before, after, wall).expect("CPU time only grows");
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        assert!(milli > 0.0, "{milli} millicores after burning {wall:?}");
        assert!(
            milli < cores * 1000.0 + 1.0,
            "{milli} millicores on {cores} cores"
        );
    }

    #[test]
    fn clock_ticks_come_from_the_auxiliary_vector() {
        let t = clock_ticks_per_second();
        assert!((1..=10_000).contains(&t), "{t}");
        assert_eq!(cpu_millicores(1.0, 0.5, Duration::from_secs(1)), None);
        assert_eq!(cpu_millicores(1.0, 1.5, Duration::ZERO), None);
        assert_eq!(
            cpu_millicores(1.0, 1.5, Duration::from_secs(2)),
            Some(250.0)
        );
    }

    #[test]
    fn a_missing_process_has_no_cpu_figure() {
        assert_eq!(process_cpu_seconds(u32::MAX), None);
    }
}
