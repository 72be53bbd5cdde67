//! Pods as processes: each pod is a child (normally `lab serve`) on its own
//! loopback port, taken through the lifecycle a kubelet would give it.
//!
//! Per pod: wait the node provisioning and image pull the caller passes in
//! (they cannot happen on one machine), spawn, probe `readiness_path` every
//! readiness period from the spawn on (probes at spawn + k * period, as the
//! simulator places them) and report the instant it answered 2xx/3xx; restart an
//! unexpected exit with CrashLoopBackOff; on `terminate`, SIGTERM, wait up to the
//! grace period, then SIGKILL. Every child of one supervisor shares one process
//! group that the supervisor kills when dropped (see `process` for the guards).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command as StdCommand, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::process::Child;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::backoff::{BackOffPolicy, CrashLoop};
use crate::http::HttpClient;
use crate::process::{self, Group, Spawner};

/// What to run for one pod: a plain value, like a container spec.
#[derive(Clone, Debug)]
pub struct PodSpec {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    /// The loopback port the pod serves HTTP on (its readiness probe's port).
    pub port: u16,
    /// The readiness probe's `httpGet.path`.
    pub readiness_path: String,
    /// Where the pod's stdout and stderr go (appended, across restarts, like
    /// `kubectl logs --previous` would want); `None` inherits `lab`'s.
    pub log: Option<PathBuf>,
}

impl PodSpec {
    /// A `lab serve` pod listening on 127.0.0.1:`http_port` (and `grpc_port`,
    /// or no gRPC), probed on the predictor's `/v2/health/ready`. `serve_args`
    /// are the predictor's own flags: `--model`, `--emulate`, `--sharing`,
    /// `--gpu-id`, `--grace-period-secs`, ...
    pub fn lab_serve(
        name: impl Into<String>,
        lab: impl Into<PathBuf>,
        http_port: u16,
        grpc_port: Option<u16>,
        serve_args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> PodSpec {
        let mut args: Vec<OsString> = vec![
            "serve".into(),
            "--host".into(),
            "127.0.0.1".into(),
            "--http-port".into(),
            http_port.to_string().into(),
        ];
        match grpc_port {
            Some(p) => args.extend(["--grpc-port".into(), p.to_string().into()]),
            None => args.push("--no-grpc".into()),
        }
        args.extend(serve_args.into_iter().map(Into::into));
        PodSpec {
            name: name.into(),
            program: lab.into(),
            args,
            env: Vec::new(),
            port: http_port,
            readiness_path: "/v2/health/ready".into(),
            log: None,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// The lifecycle's durations for one pod, from the scenario.
#[derive(Clone, Copy, Debug)]
pub struct Lifecycle {
    /// Waited before the spawn: the node this pod needs coming up (zero when
    /// the node already exists).
    pub provisioning: Duration,
    /// Waited after provisioning: the image pull (zero when the node has it).
    pub image_pull: Duration,
    /// The readiness probe's `periodSeconds`.
    pub readiness_period: Duration,
    /// The readiness probe's `timeoutSeconds` (Kubernetes' default is 1 s).
    pub probe_timeout: Duration,
    /// The readiness probe's `failureThreshold`: consecutive failures before a
    /// ready pod is marked not ready (Kubernetes' default is 3).
    pub failure_threshold: u32,
    /// `terminationGracePeriodSeconds`: SIGTERM, then SIGKILL this much later.
    pub grace_period: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Provisioning,
    PullingImage,
    /// Spawned, not yet ready (model load, then the next probe).
    Starting,
    Ready,
    /// Crashed; waiting out CrashLoopBackOff before the restart.
    BackOff,
    Terminating,
    Terminated,
    /// Could not be spawned (no restart: the spec itself is wrong).
    Failed,
}

/// One run of the pod's process.
#[derive(Clone, Debug)]
pub struct Start {
    pub pid: u32,
    pub spawned: Instant,
    pub ready: Option<Instant>,
    pub exited: Option<Instant>,
    /// How it ended: `exit status: 1`, `signal: 9 (SIGKILL)`.
    pub exit: Option<String>,
}

impl Start {
    /// Process start to first ready probe: model load plus readiness.
    pub fn start_to_ready(&self) -> Option<Duration> {
        self.ready.map(|r| r - self.spawned)
    }
}

/// How a scale-down went.
#[derive(Clone, Debug)]
pub struct Termination {
    pub signalled: Instant,
    pub exited: Instant,
    pub grace_period: Duration,
    /// SIGKILL was needed: the process outlived its grace period.
    pub killed: bool,
    /// None when there was no process yet (stopped while waiting).
    pub exit: Option<String>,
}

/// What the supervisor measured for one pod.
#[derive(Clone, Debug)]
pub struct PodRecord {
    pub name: String,
    pub phase: Phase,
    pub created: Instant,
    /// Waited for node provisioning and image pull (as measured, so a pod
    /// stopped during a wait shows how much of it elapsed).
    pub provisioning: Duration,
    pub image_pull: Duration,
    pub starts: Vec<Start>,
    /// Restarts after unexpected exits (Kubernetes' `restartCount`).
    pub restarts: u32,
    pub termination: Option<Termination>,
    pub error: Option<String>,
}

impl PodRecord {
    /// The first start's process start to ready: the cold start's model load
    /// plus readiness.
    pub fn start_to_ready(&self) -> Option<Duration> {
        self.starts.first().and_then(Start::start_to_ready)
    }

    pub fn pid(&self) -> Option<u32> {
        self.starts
            .last()
            .filter(|s| s.exited.is_none())
            .map(|s| s.pid)
    }
}

/// What the controller awaits.
#[derive(Clone, Debug)]
pub enum PodEvent {
    Ready {
        pod: String,
        at: Instant,
    },
    /// A ready pod's probe failed.
    NotReady {
        pod: String,
        at: Instant,
    },
    /// The process exited without being asked; it restarts after `restart_in`.
    Crashed {
        pod: String,
        at: Instant,
        exit: String,
        restarts: u32,
        restart_in: Duration,
    },
    Terminated {
        pod: String,
        termination: Termination,
    },
    Failed {
        pod: String,
        error: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("pod {0} already exists")]
    Duplicate(String),
    #[error("no pod named {0}")]
    NoSuchPod(String),
    #[error("pod {pod} failed: {error}")]
    PodFailed { pod: String, error: String },
    #[error("pod {pod} was terminated before it became ready")]
    TerminatedBeforeReady { pod: String },
    #[error("the supervisor stopped")]
    Stopped,
}

/// A pod's live record; await readiness or termination on it.
#[derive(Clone)]
pub struct PodHandle {
    record: watch::Receiver<PodRecord>,
}

impl PodHandle {
    pub fn record(&self) -> PodRecord {
        self.record.borrow().clone()
    }

    /// Waits for the pod's (next) ready instant.
    pub async fn ready(&mut self) -> Result<Instant, SupervisorError> {
        let r = self
            .record
            .wait_for(|r| {
                matches!(
                    r.phase,
                    Phase::Ready | Phase::Failed | Phase::Terminating | Phase::Terminated
                )
            })
            .await
            .map_err(|_| SupervisorError::Stopped)?;
        match r.phase {
            Phase::Ready => Ok(r.starts.last().and_then(|s| s.ready).expect("ready")),
            Phase::Failed => Err(SupervisorError::PodFailed {
                pod: r.name.clone(),
                error: r.error.clone().unwrap_or_default(),
            }),
            _ => Err(SupervisorError::TerminatedBeforeReady {
                pod: r.name.clone(),
            }),
        }
    }

    /// Waits until the pod is terminated (after `Supervisor::terminate`).
    pub async fn terminated(&mut self) -> Result<Termination, SupervisorError> {
        let r = self
            .record
            .wait_for(|r| matches!(r.phase, Phase::Terminated | Phase::Failed))
            .await
            .map_err(|_| SupervisorError::Stopped)?;
        match &r.termination {
            Some(t) => Ok(t.clone()),
            None => Err(SupervisorError::PodFailed {
                pod: r.name.clone(),
                error: r.error.clone().unwrap_or_default(),
            }),
        }
    }
}

struct PodEntry {
    handle: PodHandle,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The process group all children share. `live` counts spawned, unreaped
/// children: while it is above zero the group exists (a zombie keeps its pgid),
/// so joining it is safe and `killpg` cannot hit a stranger's group.
#[derive(Default)]
struct GroupState {
    pgid: Option<i32>,
    live: usize,
}

struct Shared {
    spawner: Spawner,
    /// Serialises spawns so two first pods do not found two groups.
    spawn_lock: tokio::sync::Mutex<()>,
    group: Mutex<GroupState>,
    backoff: BackOffPolicy,
    http: HttpClient,
    events: mpsc::UnboundedSender<PodEvent>,
}

pub struct Supervisor {
    shared: Arc<Shared>,
    pods: Mutex<BTreeMap<String, PodEntry>>,
}

impl Supervisor {
    /// A supervisor and the stream of its pods' events. Call inside a tokio
    /// runtime.
    pub fn new(
        backoff: BackOffPolicy,
    ) -> std::io::Result<(Supervisor, mpsc::UnboundedReceiver<PodEvent>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            spawner: Spawner::new("supervisor")?,
            spawn_lock: tokio::sync::Mutex::new(()),
            group: Mutex::new(GroupState::default()),
            backoff,
            http: HttpClient::default(),
            events: tx,
        });
        Ok((
            Supervisor {
                shared,
                pods: Mutex::new(BTreeMap::new()),
            },
            rx,
        ))
    }

    /// Creates the pod; its lifecycle runs in the background.
    pub fn start(&self, spec: PodSpec, lifecycle: Lifecycle) -> Result<PodHandle, SupervisorError> {
        let mut pods = self.pods.lock().expect("pods lock");
        if pods.contains_key(&spec.name) {
            return Err(SupervisorError::Duplicate(spec.name));
        }
        let (rec_tx, rec_rx) = watch::channel(PodRecord {
            name: spec.name.clone(),
            phase: Phase::Provisioning,
            created: Instant::now(),
            provisioning: Duration::ZERO,
            image_pull: Duration::ZERO,
            starts: Vec::new(),
            restarts: 0,
            termination: None,
            error: None,
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let name = spec.name.clone();
        let task = tokio::spawn(run_pod(
            self.shared.clone(),
            spec,
            lifecycle,
            stop_rx,
            rec_tx,
        ));
        let handle = PodHandle { record: rec_rx };
        pods.insert(
            name,
            PodEntry {
                handle: handle.clone(),
                stop: stop_tx,
                task,
            },
        );
        Ok(handle)
    }

    /// Scale-down of one pod: SIGTERM, the grace period, SIGKILL. Returns at
    /// once; await `PodHandle::terminated` or the `Terminated` event.
    pub fn terminate(&self, name: &str) -> Result<PodHandle, SupervisorError> {
        let pods = self.pods.lock().expect("pods lock");
        let entry = pods
            .get(name)
            .ok_or_else(|| SupervisorError::NoSuchPod(name.to_string()))?;
        entry.stop.send_replace(true);
        Ok(entry.handle.clone())
    }

    pub fn handle(&self, name: &str) -> Option<PodHandle> {
        let pods = self.pods.lock().expect("pods lock");
        pods.get(name).map(|e| e.handle.clone())
    }

    pub fn records(&self) -> Vec<PodRecord> {
        let pods = self.pods.lock().expect("pods lock");
        pods.values().map(|e| e.handle.record()).collect()
    }

    /// The children's process group, while any child is alive.
    pub fn pgid(&self) -> Option<i32> {
        let g = self.shared.group.lock().expect("group lock");
        g.pgid.filter(|_| g.live > 0)
    }

    /// Terminates every pod (each with its grace period) and waits for them.
    pub async fn shutdown(&self) {
        let handles: Vec<PodHandle> = {
            let pods = self.pods.lock().expect("pods lock");
            pods.values()
                .map(|e| {
                    e.stop.send_replace(true);
                    e.handle.clone()
                })
                .collect()
        };
        for mut h in handles {
            let _ = h.terminated().await;
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid() {
            let _ = process::signal_group(pgid, libc::SIGKILL);
        }
        if let Ok(pods) = self.pods.get_mut() {
            for e in pods.values() {
                e.task.abort();
            }
        }
    }
}

async fn run_pod(
    shared: Arc<Shared>,
    spec: PodSpec,
    lc: Lifecycle,
    mut stop: watch::Receiver<bool>,
    rec: watch::Sender<PodRecord>,
) {
    let set_phase = |p: Phase| rec.send_modify(|r| r.phase = p);
    // Recorded and announced the same way whether the pod ran or not.
    let terminated = |rec: &watch::Sender<PodRecord>, t: Termination| {
        rec.send_modify(|r| {
            r.phase = Phase::Terminated;
            r.termination = Some(t.clone());
        });
        let _ = shared.events.send(PodEvent::Terminated {
            pod: spec.name.clone(),
            termination: t,
        });
    };
    let stopped_while_waiting = |rec: &watch::Sender<PodRecord>| {
        let now = Instant::now();
        terminated(
            rec,
            Termination {
                signalled: now,
                exited: now,
                grace_period: lc.grace_period,
                killed: false,
                exit: None,
            },
        )
    };

    let waited = Instant::now();
    let interrupted = wait_or_stop(lc.provisioning, &mut stop).await;
    rec.send_modify(|r| r.provisioning = waited.elapsed());
    if interrupted {
        return stopped_while_waiting(&rec);
    }
    set_phase(Phase::PullingImage);
    let waited = Instant::now();
    let interrupted = wait_or_stop(lc.image_pull, &mut stop).await;
    rec.send_modify(|r| r.image_pull = waited.elapsed());
    if interrupted {
        return stopped_while_waiting(&rec);
    }

    let mut crash_loop = CrashLoop::new(shared.backoff);
    loop {
        set_phase(Phase::Starting);
        let child = match shared.spawn(&spec).await {
            Ok(c) => c,
            Err(e) => {
                let error = format!("could not start {}: {e}", spec.program.display());
                rec.send_modify(|r| {
                    r.phase = Phase::Failed;
                    r.error = Some(error.clone());
                });
                let _ = shared.events.send(PodEvent::Failed {
                    pod: spec.name.clone(),
                    error,
                });
                return;
            }
        };
        let spawned = Instant::now();
        let pid = child.id().unwrap_or(0);
        rec.send_modify(|r| {
            r.starts.push(Start {
                pid,
                spawned,
                ready: None,
                exited: None,
                exit: None,
            })
        });
        match supervise(&shared, &spec, &lc, child, &mut stop, &rec).await {
            Outcome::Terminated(t) => {
                terminated(&rec, t);
                return;
            }
            Outcome::Crashed(status) => {
                let at = Instant::now();
                let delay = crash_loop.on_crash(at - spawned);
                let exit = status.to_string();
                rec.send_modify(|r| {
                    r.phase = Phase::BackOff;
                    r.restarts += 1;
                });
                let _ = shared.events.send(PodEvent::Crashed {
                    pod: spec.name.clone(),
                    at,
                    exit,
                    restarts: rec.borrow().restarts,
                    restart_in: delay,
                });
                if wait_or_stop(delay, &mut stop).await {
                    return stopped_while_waiting(&rec);
                }
            }
        }
    }
}

enum Outcome {
    Crashed(ExitStatus),
    Terminated(Termination),
}

/// One run of the process: probe until it exits or is asked to stop.
async fn supervise(
    shared: &Shared,
    spec: &PodSpec,
    lc: &Lifecycle,
    mut child: Child,
    stop: &mut watch::Receiver<bool>,
    rec: &watch::Sender<PodRecord>,
) -> Outcome {
    let url = format!("{}{}", spec.url(), spec.readiness_path);
    let mut probes = tokio::time::interval(lc.readiness_period.max(Duration::from_millis(1)));
    probes.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ready = false;
    let mut failures = 0u32;
    let record_exit = |status: &std::io::Result<ExitStatus>| {
        let exit = match status {
            Ok(s) => s.to_string(),
            Err(e) => format!("wait failed: {e}"),
        };
        rec.send_modify(|r| {
            if let Some(s) = r.starts.last_mut() {
                s.exited = Some(Instant::now());
                s.exit = Some(exit);
            }
        });
    };
    loop {
        tokio::select! {
            status = child.wait() => {
                shared.reaped();
                record_exit(&status);
                // A failed wait(2) leaves nothing to supervise: report it as a crash.
                let status = status.unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(-1));
                return Outcome::Crashed(status);
            }
            _ = stopped(stop) => {
                rec.send_modify(|r| r.phase = Phase::Terminating);
                let signalled = Instant::now();
                if let Some(pid) = child.id() {
                    let _ = process::signal(pid, libc::SIGTERM);
                }
                let (status, killed) =
                    match tokio::time::timeout(lc.grace_period, child.wait()).await {
                        Ok(s) => (s, false),
                        Err(_) => {
                            let _ = child.start_kill();
                            (child.wait().await, true)
                        }
                    };
                shared.reaped();
                record_exit(&status);
                return Outcome::Terminated(Termination {
                    signalled,
                    exited: Instant::now(),
                    grace_period: lc.grace_period,
                    killed,
                    exit: rec.borrow().starts.last().and_then(|s| s.exit.clone()),
                });
            }
            _ = probes.tick() => {
                let ok = matches!(
                    shared.http.get(&url, lc.probe_timeout).await,
                    Ok((code, _)) if (200..400).contains(&code)
                );
                failures = if ok { 0 } else { failures + 1 };
                let flips = if ready { failures >= lc.failure_threshold.max(1) } else { ok };
                if flips {
                    ready = ok;
                    let at = Instant::now();
                    rec.send_modify(|r| {
                        r.phase = if ok { Phase::Ready } else { Phase::Starting };
                        if ok {
                            if let Some(s) = r.starts.last_mut() {
                                s.ready.get_or_insert(at);
                            }
                        }
                    });
                    let pod = spec.name.clone();
                    let _ = shared.events.send(if ok {
                        PodEvent::Ready { pod, at }
                    } else {
                        PodEvent::NotReady { pod, at }
                    });
                }
            }
        }
    }
}

/// Sleeps `d` unless told to stop first; true when stopped.
async fn wait_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = stopped(stop) => true,
    }
}

/// Resolves once the pod is told to stop, or its supervisor is gone. (The
/// borrow `wait_for` returns is not `Send`: drop it here.)
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

impl Shared {
    async fn spawn(&self, spec: &PodSpec) -> std::io::Result<Child> {
        let _one_at_a_time = self.spawn_lock.lock().await;
        let mut cmd = StdCommand::new(&spec.program);
        cmd.args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null());
        if let Some(log) = &spec.log {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| {
                    std::io::Error::new(e.kind(), format!("its log {}: {e}", log.display()))
                })?;
            cmd.stdout(f.try_clone()?).stderr(f);
        }
        let group = {
            let g = self.group.lock().expect("group lock");
            match g.pgid {
                Some(p) if g.live > 0 => Group::Join(p),
                _ => Group::New,
            }
        };
        let child = self.spawner.spawn(cmd, group).await?;
        let mut g = self.group.lock().expect("group lock");
        if group == Group::New {
            g.pgid = child.id().map(|p| p as i32);
        }
        g.live += 1;
        Ok(child)
    }

    fn reaped(&self) {
        let mut g = self.group.lock().expect("group lock");
        g.live = g.live.saturating_sub(1);
    }
}
