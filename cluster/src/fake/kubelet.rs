//! The Job controller and a kubelet on this machine. An Indexed Job gets
//! one pod per completion index (as many at once as its parallelism), and
//! each pod's first container runs as a local process in a process group of
//! its own:
//!
//! - the program is the container's `command`, or the one the test gave for
//!   its image (the image's entrypoint); `$(VAR)` in command, args and env is
//!   expanded from the container's env as the kubelet does (plain values,
//!   `fieldRef`, `configMapKeyRef`);
//! - a configMap volume is written into a temporary folder, an emptyDir is an
//!   empty one, and their mount paths in the arguments and env point there;
//! - a listen address `0.0.0.0:PORT` becomes `127.0.0.1:LOCAL` on a free
//!   port (remembered per pod, for probes and the pod proxy), and a URL to an
//!   in-cluster host goes where the test routed it;
//! - the readiness probe (httpGet or tcpSocket) is polled at its period,
//!   as a kubelet does, and the pod's Ready condition follows it;
//! - the process inherits the test's environment (PATH, ORT_DYLIB_PATH, ...)
//!   under the container's env, and runs in the pod's temporary folder;
//! - stdout and stderr go to one log a whole line at a time, in arrival
//!   order, as a container runtime writes them (a line is never cut by a
//!   line of the other stream); the exit code is the
//!   pod's phase, and the Job counts it (backoffLimit, Complete, Failed).
//!
//! A deleted pod gets SIGTERM on its group, then SIGKILL after its grace
//! period; when the double goes, every group is killed at once. Only the
//! first container runs; init containers and restartPolicy OnFailure are
//! not played (a failed pod is replaced by the Job, as with Never).

use super::http::{self as fhttp, request_local, status, Body};
use super::store::{self, name_suffix, now_rfc3339, owner_ref, ApiPath};
use super::{FakeApi, Inner, State};
use bytes::Bytes;
use http::Response;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// The completion index annotation (and label) of a Job's pods.
const INDEX_KEY: &str = "batch.kubernetes.io/job-completion-index";
/// The probe period when a probe names none (the kubelet's is 10 s; tests
/// should not wait that long for a default).
const DEFAULT_PROBE_PERIOD: Duration = Duration::from_millis(100);

/// A running container's process group.
struct Group {
    pgid: i32,
    alive: AtomicBool,
    exited: tokio::sync::watch::Sender<bool>,
}

impl Group {
    fn signal(&self, sig: i32) {
        if self.alive.load(Ordering::SeqCst) {
            // SAFETY: killpg(2) on the group whose leader this kubelet
            // spawned and has not reaped (alive), so the id is not reused.
            unsafe {
                libc::killpg(self.pgid, sig);
            }
        }
    }
}

/// What the kubelet keeps about one pod it runs.
pub struct PodRuntime {
    /// Container port → the local port the process was given instead.
    pub ports: BTreeMap<u16, u16>,
    /// Named container ports.
    named: BTreeMap<String, u16>,
    containers: Vec<String>,
    log: Arc<Mutex<Vec<u8>>>,
    /// Why the container has not started, while it has not.
    waiting: Option<String>,
    group: Option<Arc<Group>>,
    tasks: Vec<tokio::task::AbortHandle>,
    grace: Duration,
    _dir: Option<tempfile::TempDir>,
}

impl PodRuntime {
    pub fn pid(&self) -> Option<u32> {
        self.group
            .as_ref()
            .filter(|g| g.alive.load(Ordering::SeqCst))
            .map(|g| g.pgid as u32)
    }
}

impl Drop for PodRuntime {
    fn drop(&mut self) {
        if let Some(g) = &self.group {
            g.signal(libc::SIGKILL);
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The pod at `path` was deleted: its process gets SIGTERM now and SIGKILL
/// after the grace period, unless it exits first.
pub fn forget_pod(st: &mut State, path: &str) {
    let Some(rt) = st.pods.remove(path) else {
        return;
    };
    let Some(group) = rt.group.clone().filter(|g| g.alive.load(Ordering::SeqCst)) else {
        return;
    };
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return; // no runtime to wait in: dropping `rt` kills the group now
    };
    group.signal(libc::SIGTERM);
    let mut exited = group.exited.subscribe();
    handle.spawn(async move {
        let _ = tokio::time::timeout(rt.grace, exited.wait_for(|e| *e)).await;
        drop(rt);
    });
}

pub fn job_applied(api: &FakeApi, st: &mut State, path: &str) {
    if !st.opts.kubelet {
        return;
    }
    let indexed = st
        .store
        .get(path)
        .is_some_and(|j| j["spec"]["completionMode"] == "Indexed");
    if indexed {
        sync_job(api, st, path);
    }
}

fn condition_true(o: &Value, t: &str) -> bool {
    o["status"]["conditions"]
        .as_array()
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == t && c["status"] == "True"))
}

/// The Job controller's pass over one Job: counts its pods by index and
/// phase, replaces failed indexes within the backoff limit, starts indexes
/// up to the parallelism, and writes the Job's status.
fn sync_job(api: &FakeApi, st: &mut State, job_path: &str) {
    let Some(job) = st.store.get(job_path).cloned() else {
        return;
    };
    if condition_true(&job, "Complete") || condition_true(&job, "Failed") {
        return;
    }
    let spec = &job["spec"];
    let completions = spec["completions"].as_u64().unwrap_or(1);
    let parallelism = spec["parallelism"].as_u64().unwrap_or(1);
    let backoff = spec["backoffLimit"].as_u64().unwrap_or(6);
    let Some(ns) = ApiPath::parse(job_path).and_then(|p| p.namespace) else {
        return;
    };
    let uid = job["metadata"]["uid"].clone();
    let pods: Vec<(String, Value)> = st
        .store
        .paths_under(&format!("/api/v1/namespaces/{ns}/pods"))
        .into_iter()
        .filter_map(|p| st.store.get(&p).cloned().map(|o| (p, o)))
        .filter(|(_, o)| o["metadata"]["ownerReferences"][0]["uid"] == uid)
        .collect();
    let (mut succeeded, mut active) = (BTreeSet::new(), BTreeSet::new());
    let (mut failed, mut ready) = (0u64, 0u64);
    for (_, p) in &pods {
        let index: u64 = p["metadata"]["annotations"][INDEX_KEY]
            .as_str()
            .and_then(|i| i.parse().ok())
            .unwrap_or(0);
        match p["status"]["phase"].as_str() {
            Some("Succeeded") => {
                succeeded.insert(index);
            }
            Some("Failed") => failed += 1,
            _ => {
                active.insert(index);
                ready += u64::from(condition_true(p, "Ready"));
            }
        }
    }
    let now = now_rfc3339();
    let mut conditions = Vec::new();
    if failed > backoff {
        conditions.push(json!({
            "type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
            "message": "Job has reached the specified backoff limit",
            "lastProbeTime": now, "lastTransitionTime": now,
        }));
        for (p, o) in &pods {
            if !matches!(o["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
                store::delete(st, p);
            }
        }
        active.clear();
        ready = 0;
    } else if succeeded.len() as u64 >= completions {
        conditions.push(json!({
            "type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now,
        }));
    } else {
        for index in 0..completions {
            if active.len() as u64 >= parallelism {
                break;
            }
            if !succeeded.contains(&index) && !active.contains(&index) {
                create_pod(api, st, &job, &ns, index);
                active.insert(index);
            }
        }
    }
    let Some(mut job) = st.store.get(job_path).cloned() else {
        return;
    };
    let mut status = json!({
        "active": active.len(),
        "ready": ready,
        "succeeded": succeeded.len(),
        "failed": failed,
        "terminating": 0,
        "completedIndexes": index_ranges(&succeeded),
        "startTime": job["status"]["startTime"].as_str().map(str::to_string).unwrap_or(now.clone()),
    });
    if !conditions.is_empty() {
        if condition_true(
            &json!({ "status": { "conditions": conditions } }),
            "Complete",
        ) {
            status["completionTime"] = json!(now);
        }
        status["conditions"] = json!(conditions);
    }
    if job["status"] != status {
        job["status"] = status;
        st.store.upsert(job_path, job, false);
    }
}

/// `0-2,5`, as the Job controller writes completed indexes.
fn index_ranges(set: &BTreeSet<u64>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end = it.next().unwrap_or(end);
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    out.join(",")
}

fn create_pod(api: &FakeApi, st: &mut State, job: &Value, ns: &str, index: u64) {
    let job_name = job["metadata"]["name"].as_str().unwrap_or_default();
    let uid = job["metadata"]["uid"].clone();
    let template = &job["spec"]["template"];
    let pod_name = format!("{job_name}-{index}-{}", name_suffix(st.store.next_id(), 5));
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels["job-name"] = json!(job_name);
    labels["batch.kubernetes.io/job-name"] = json!(job_name);
    labels["controller-uid"] = uid.clone();
    labels["batch.kubernetes.io/controller-uid"] = uid.clone();
    labels[INDEX_KEY] = json!(index.to_string());
    let mut annotations = template["metadata"]["annotations"].clone();
    if !annotations.is_object() {
        annotations = json!({});
    }
    annotations[INDEX_KEY] = json!(index.to_string());
    let mut spec = template["spec"].clone();
    let node = st
        .store
        .paths_under("/api/v1/nodes")
        .first()
        .and_then(|p| p.rsplit('/').next().map(str::to_string));
    let now = now_rfc3339();
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    let first = containers.first().cloned().unwrap_or(json!({}));
    let status = match &node {
        Some(n) => {
            spec["nodeName"] = json!(n);
            json!({
                "phase": "Pending",
                "hostIP": "127.0.0.1",
                "conditions": [{ "type": "PodScheduled", "status": "True", "lastTransitionTime": now }],
                "containerStatuses": [{
                    "name": first["name"], "image": first["image"], "ready": false, "started": false,
                    "restartCount": 0, "state": { "waiting": { "reason": "ContainerCreating" } },
                }],
            })
        }
        None => json!({
            "phase": "Pending",
            "conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "no nodes available to schedule pods", "lastTransitionTime": now,
            }],
        }),
    };
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name, "namespace": ns, "labels": labels, "annotations": annotations,
            "ownerReferences": [owner_ref(job)],
        },
        "spec": spec,
        "status": status,
    });
    let path = super::pod_path(ns, &pod_name);
    let pod = st.store.upsert(&path, pod, false);
    if node.is_none() {
        return;
    }
    let grace = pod["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap_or(30);
    let mut rt = PodRuntime {
        ports: BTreeMap::new(),
        named: BTreeMap::new(),
        containers: containers
            .iter()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect(),
        log: Arc::new(Mutex::new(Vec::new())),
        waiting: Some("ContainerCreating".into()),
        group: None,
        tasks: Vec::new(),
        grace: Duration::from_secs(grace),
        _dir: None,
    };
    for p in first["ports"].as_array().into_iter().flatten() {
        if let (Some(n), Some(port)) = (p["name"].as_str(), p["containerPort"].as_u64()) {
            rt.named.insert(n.to_string(), port as u16);
        }
    }
    let task = tokio::spawn(run_pod(api.weak(), path.clone()));
    rt.tasks.push(task.abort_handle());
    st.pods.insert(path, rt);
}

/// Why a container cannot start yet, in the kubelet's words.
struct Waiting {
    reason: &'static str,
    message: String,
    /// Whether a later change (a ConfigMap applied) may let it start.
    retry: bool,
}

struct Launch {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
    ports: BTreeMap<u16, u16>,
    probe: Option<Probe>,
}

#[derive(Clone)]
struct Probe {
    /// Some(path) for httpGet, None for tcpSocket.
    http_path: Option<String>,
    port: u16,
    initial_delay: Duration,
    period: Duration,
    timeout: Duration,
    success_threshold: u32,
    failure_threshold: u32,
}

async fn run_pod(weak: Weak<Inner>, path: String) {
    let Some(mut changes) = FakeApi::from_weak(&weak).map(|a| a.lock().store.subscribe()) else {
        return;
    };
    let mut said = None;
    let launch = loop {
        let prepared = {
            let Some(api) = FakeApi::from_weak(&weak) else {
                return;
            };
            let mut st = api.lock();
            let Some(pod) = st.store.get(&path).cloned() else {
                return;
            };
            let p = prepare(&st, &pod);
            if let Err(w) = &p {
                if said.as_deref() != Some(w.message.as_str()) {
                    said = Some(w.message.clone());
                    set_waiting(&mut st, &path, w);
                }
            }
            p
        };
        match prepared {
            Ok(l) => break l,
            Err(w) if w.retry => {
                if changes.changed().await.is_err() {
                    return;
                }
            }
            Err(_) => return,
        }
    };
    let mut cmd = tokio::process::Command::new(&launch.program);
    cmd.args(&launch.args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(launch.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let spawned = cmd.spawn();
    let Some(api) = FakeApi::from_weak(&weak) else {
        return;
    };
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            let mut st = api.lock();
            let msg = format!("failed to start {}: {e}", launch.program.display());
            terminate(
                &api,
                &mut st,
                &path,
                128,
                "StartError",
                Some(&msg),
                &now_rfc3339(),
            );
            return;
        }
    };
    let started_at = now_rfc3339();
    let (group, log, mut readers) = {
        let mut st = api.lock();
        let Some(rt) = st.pods.get_mut(&path) else {
            return;
        };
        let group = Arc::new(Group {
            pgid: child.id().unwrap_or(0) as i32,
            alive: AtomicBool::new(true),
            exited: tokio::sync::watch::Sender::new(false),
        });
        rt.group = Some(group.clone());
        rt.waiting = None;
        rt.ports = launch.ports.clone();
        rt._dir = Some(launch.dir);
        let log = rt.log.clone();
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(collect(out, log.clone())));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(collect(err, log.clone())));
        }
        for r in &readers {
            rt.tasks.push(r.abort_handle());
        }
        if let Some(probe) = launch.probe.clone() {
            let t = tokio::spawn(probe_loop(weak.clone(), path.clone(), probe));
            rt.tasks.push(t.abort_handle());
        }
        set_running(&mut st, &path, &started_at, launch.probe.is_none());
        (group, log, std::mem::take(&mut readers))
    };
    drop(api);
    drop(log);
    let exit = child.wait().await;
    // The container is its process tree: what the program left behind goes with it.
    group.signal(libc::SIGKILL);
    group.alive.store(false, Ordering::SeqCst);
    group.exited.send_replace(true);
    for r in readers.drain(..) {
        let _ = r.await;
    }
    let code = match exit {
        Ok(s) => s.code().unwrap_or_else(|| {
            128 + std::os::unix::process::ExitStatusExt::signal(&s).unwrap_or(0)
        }),
        Err(_) => 128,
    };
    let Some(api) = FakeApi::from_weak(&weak) else {
        return;
    };
    let mut st = api.lock();
    let reason = if code == 0 { "Completed" } else { "Error" };
    terminate(&api, &mut st, &path, code, reason, None, &now_rfc3339());
}

async fn collect(mut from: impl tokio::io::AsyncRead + Unpin, log: Arc<Mutex<Vec<u8>>>) {
    let append = |bytes: &[u8]| {
        log.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes)
    };
    let mut buf = [0u8; 8192];
    // The stream's unfinished line, held back until its newline arrives.
    let mut pending = Vec::new();
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                if let Some(end) = pending.iter().rposition(|&b| b == b'\n') {
                    append(&pending[..=end]);
                    pending.drain(..=end);
                }
            }
        }
    }
    if !pending.is_empty() {
        append(&pending);
    }
}

/// Resolves the first container of `pod` into a process to start.
fn prepare(st: &State, pod: &Value) -> Result<Launch, Waiting> {
    let c = &pod["spec"]["containers"][0];
    let ns = pod["metadata"]["namespace"].as_str().unwrap_or_default();
    let config_error = |message: String| Waiting {
        reason: "CreateContainerConfigError",
        message,
        retry: true,
    };
    let dir = tempfile::Builder::new()
        .prefix("fake-pod-")
        .tempdir()
        .map_err(|e| Waiting {
            reason: "CreateContainerError",
            message: format!("a folder for the pod's volumes: {e}"),
            retry: false,
        })?;
    // Volumes: each a folder under `dir`, found by its mount path.
    let mut mounts: Vec<(String, PathBuf)> = Vec::new();
    let mut env_extra = Vec::new();
    for m in c["volumeMounts"].as_array().into_iter().flatten() {
        let (Some(vname), Some(mount)) = (m["name"].as_str(), m["mountPath"].as_str()) else {
            continue;
        };
        let vol = pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| v["name"] == vname);
        let Some(vol) = vol else {
            return Err(config_error(format!(
                "volume {vname:?} is not in the pod's volumes"
            )));
        };
        let local = dir.path().join(vname);
        std::fs::create_dir_all(&local).map_err(|e| config_error(e.to_string()))?;
        if let Some(cm) = vol["configMap"]["name"].as_str() {
            let Some(cmo) = st
                .store
                .get(&store::path_of("v1", "configmaps", Some(ns), cm))
            else {
                return Err(Waiting {
                    reason: "ContainerCreating",
                    message: format!("MountVolume.SetUp failed for volume \"{vname}\" : configmap \"{cm}\" not found"),
                    retry: true,
                });
            };
            for (k, v) in cmo["data"].as_object().into_iter().flatten() {
                std::fs::write(local.join(k), v.as_str().unwrap_or_default())
                    .map_err(|e| config_error(format!("writing {k} of configmap {cm}: {e}")))?;
            }
        }
        if mount == "/tmp" {
            env_extra.push(("TMPDIR".to_string(), local.display().to_string()));
        }
        mounts.push((mount.trim_end_matches('/').to_string(), local));
    }
    // Longest first, so /a/b is not rewritten as /a.
    mounts.sort_by_key(|(m, _)| std::cmp::Reverse(m.len()));
    let mut ports = BTreeMap::new();
    let routes = &st.opts.routes;
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let mut env = Vec::new();
    for e in c["env"].as_array().into_iter().flatten() {
        let Some(name) = e["name"].as_str() else {
            continue;
        };
        let value = if let Some(v) = e["value"].as_str() {
            expand(v, &vars)
        } else if let Some(f) = e["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            field_value(pod, f)
                .ok_or_else(|| config_error(format!("unsupported fieldPath {f:?}")))?
        } else if let Some(r) = e["valueFrom"]["configMapKeyRef"].as_object() {
            let (cm, key) = (
                r["name"].as_str().unwrap_or(""),
                r["key"].as_str().unwrap_or(""),
            );
            st.store
                .get(&store::path_of("v1", "configmaps", Some(ns), cm))
                .and_then(|o| o["data"][key].as_str().map(str::to_string))
                .ok_or_else(|| {
                    config_error(format!("couldn't find key {key} in ConfigMap {ns}/{cm}"))
                })?
        } else if e["valueFrom"].is_object() {
            return Err(config_error(format!(
                "env {name}: only value, fieldRef and configMapKeyRef are played"
            )));
        } else {
            String::new()
        };
        let value = rewrite(&value, &mounts, &mut ports, routes);
        vars.insert(name.to_string(), value.clone());
        env.push((name.to_string(), value));
    }
    env.extend(env_extra);
    env.push((
        "HOSTNAME".into(),
        pod["metadata"]["name"].as_str().unwrap_or_default().into(),
    ));
    let words = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|s| expand(s, &vars))
            .collect()
    };
    let (command, args) = (words(&c["command"]), words(&c["args"]));
    let (program, mut argv) = match command.split_first() {
        Some((p, rest)) => (PathBuf::from(p), rest.to_vec()),
        None => {
            let image = c["image"].as_str().unwrap_or_default();
            let Some(p) = st.opts.images.get(image) else {
                return Err(Waiting {
                    reason: "ErrImagePull",
                    message: format!(
                        "the fake kubelet has no program for image {image:?} (FakeApi::run_image) and the container names no command"
                    ),
                    retry: false,
                });
            };
            (p.clone(), Vec::new())
        }
    };
    argv.extend(args);
    let argv: Vec<String> = argv
        .iter()
        .map(|a| rewrite(a, &mounts, &mut ports, routes))
        .collect();
    let probe = probe_of(&c["readinessProbe"], |p| port_number(c, p));
    Ok(Launch {
        program,
        args: argv,
        env,
        dir,
        ports,
        probe,
    })
}

/// A probe port: a number, or the name of one of the container's ports.
fn port_number(c: &Value, p: &Value) -> Option<u16> {
    if let Some(n) = p.as_u64() {
        return u16::try_from(n).ok();
    }
    let name = p.as_str()?;
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    c["ports"]
        .as_array()?
        .iter()
        .find(|cp| cp["name"] == name)
        .and_then(|cp| cp["containerPort"].as_u64())
        .and_then(|n| u16::try_from(n).ok())
}

fn probe_of(p: &Value, port: impl Fn(&Value) -> Option<u16>) -> Option<Probe> {
    let secs = |k: &str, default: u64| Duration::from_secs(p[k].as_u64().unwrap_or(default));
    let (http_path, port) = if p["httpGet"].is_object() {
        (
            Some(p["httpGet"]["path"].as_str().unwrap_or("/").to_string()),
            port(&p["httpGet"]["port"])?,
        )
    } else if p["tcpSocket"].is_object() {
        (None, port(&p["tcpSocket"]["port"])?)
    } else {
        return None;
    };
    Some(Probe {
        http_path,
        port,
        initial_delay: secs("initialDelaySeconds", 0),
        period: p["periodSeconds"]
            .as_u64()
            .map_or(DEFAULT_PROBE_PERIOD, Duration::from_secs),
        timeout: secs("timeoutSeconds", 1),
        success_threshold: p["successThreshold"].as_u64().unwrap_or(1).max(1) as u32,
        failure_threshold: p["failureThreshold"].as_u64().unwrap_or(3).max(1) as u32,
    })
}

/// The value a `fieldRef` names.
fn field_value(pod: &Value, f: &str) -> Option<String> {
    let m = &pod["metadata"];
    let keyed = |prefix: &str, map: &Value| -> Option<Option<String>> {
        let key = f.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(Some(map[key].as_str().unwrap_or_default().to_string()))
    };
    if let Some(v) = keyed("metadata.annotations['", &m["annotations"]) {
        return v;
    }
    if let Some(v) = keyed("metadata.labels['", &m["labels"]) {
        return v;
    }
    let v = match f {
        "metadata.name" => &m["name"],
        "metadata.namespace" => &m["namespace"],
        "metadata.uid" => &m["uid"],
        "spec.nodeName" => &pod["spec"]["nodeName"],
        "spec.serviceAccountName" => &pod["spec"]["serviceAccountName"],
        "status.podIP" | "status.hostIP" => return Some("127.0.0.1".into()),
        _ => return None,
    };
    Some(v.as_str().unwrap_or_default().to_string())
}

/// `$(VAR)` replaced by VAR's value where VAR is defined, `$$` by `$`, as
/// the kubelet expands command, args and env.
pub fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(inner) = after.strip_prefix('(') {
            match inner.find(')') {
                Some(j) => {
                    let name = &inner[..j];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &inner[j + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = inner;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Maps a container's view of the world onto this machine: mount paths to
/// the pod's folders, `0.0.0.0:PORT` to `127.0.0.1:LOCAL`, and in-cluster
/// URLs to where the test routed them.
pub fn rewrite(
    text: &str,
    mounts: &[(String, PathBuf)],
    ports: &mut BTreeMap<u16, u16>,
    routes: &BTreeMap<String, String>,
) -> String {
    let mut s = replace_paths(text, mounts);
    s = replace_listen(&s, ports);
    replace_urls(&s, routes)
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')
}

/// One pass over `s`, so a path already pointed at the pod's folder is not
/// rewritten again by a shorter mount (`/tmp` inside `/tmp/fake-pod-…`);
/// `mounts` come longest first.
fn replace_paths(s: &str, mounts: &[(String, PathBuf)]) -> String {
    let mut out = String::new();
    let mut i = 0;
    'scan: while i < s.len() {
        let before_ok = s[..i].chars().next_back().is_none_or(|c| !is_path_char(c));
        if before_ok {
            for (mount, local) in mounts {
                let end = i + mount.len();
                if !s[i..].starts_with(mount.as_str()) {
                    continue;
                }
                let after_ok = s[end..]
                    .chars()
                    .next()
                    .is_none_or(|c| c == '/' || !is_path_char(c));
                if after_ok {
                    out.push_str(&local.display().to_string());
                    i = end;
                    continue 'scan;
                }
            }
        }
        let c = s[i..].chars().next().unwrap_or_default();
        out.push(c);
        i += c.len_utf8().max(1);
    }
    out
}

fn replace_listen(s: &str, ports: &mut BTreeMap<u16, u16>) -> String {
    const ANY: &str = "0.0.0.0:";
    let mut out = String::new();
    let mut i = 0;
    while let Some(j) = s[i..].find(ANY) {
        let at = i + j;
        let digits: String = s[at + ANY.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        let before_ok = s[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_digit() && c != '.');
        out.push_str(&s[i..at]);
        match digits.parse::<u16>() {
            Ok(port) if before_ok => match local_port(ports, port) {
                Some(local) => out.push_str(&format!("127.0.0.1:{local}")),
                None => out.push_str(&format!("{ANY}{digits}")),
            },
            _ => out.push_str(&format!("{ANY}{digits}")),
        }
        i = at + ANY.len() + digits.len();
    }
    out.push_str(&s[i..]);
    out
}

/// The local port standing for container port `port`, chosen once per pod.
fn local_port(ports: &mut BTreeMap<u16, u16>, port: u16) -> Option<u16> {
    if let Some(p) = ports.get(&port) {
        return Some(*p);
    }
    // A port the system hands out and nobody holds; the process binds it
    // moments later.
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).ok()?;
    let local = l.local_addr().ok()?.port();
    ports.insert(port, local);
    Some(local)
}

fn in_cluster(host: &str) -> bool {
    host.ends_with(".svc.cluster.local") || host.ends_with(".svc")
}

fn replace_urls(s: &str, routes: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut i = 0;
    while let Some(j) = s[i..].find("://") {
        let start = i + j + 3;
        let len = s[start..]
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '"' || c == '\''
            })
            .unwrap_or(s.len() - start);
        let authority = &s[start..start + len];
        let host = authority.split(':').next().unwrap_or(authority);
        out.push_str(&s[i..start]);
        let routed = routes
            .get(authority)
            .or_else(|| routes.get(host))
            .filter(|_| in_cluster(host) || routes.contains_key(authority));
        out.push_str(routed.map_or(authority, String::as_str));
        i = start + len;
    }
    out.push_str(&s[i..]);
    out
}

async fn probe_loop(weak: Weak<Inner>, path: String, probe: Probe) {
    tokio::time::sleep(probe.initial_delay).await;
    let (mut ok_run, mut fail_run, mut ready) = (0u32, 0u32, false);
    let mut ticks = tokio::time::interval(probe.period);
    loop {
        ticks.tick().await;
        let addr = {
            let Some(api) = FakeApi::from_weak(&weak) else {
                return;
            };
            let st = api.lock();
            let Some(rt) = st.pods.get(&path) else { return };
            let port = rt.ports.get(&probe.port).copied().unwrap_or(probe.port);
            SocketAddr::from(([127, 0, 0, 1], port))
        };
        let ok = match &probe.http_path {
            Some(p) => request_local(addr, "GET", p, None, Bytes::new(), Some(probe.timeout))
                .await
                .is_ok_and(|(code, _, _)| (200..400).contains(&code)),
            None => tokio::time::timeout(probe.timeout, tokio::net::TcpStream::connect(addr))
                .await
                .is_ok_and(|r| r.is_ok()),
        };
        if ok {
            ok_run += 1;
            fail_run = 0;
        } else {
            fail_run += 1;
            ok_run = 0;
        }
        let now_ready = if ready {
            fail_run < probe.failure_threshold
        } else {
            ok_run >= probe.success_threshold
        };
        if now_ready != ready {
            ready = now_ready;
            let Some(api) = FakeApi::from_weak(&weak) else {
                return;
            };
            let mut st = api.lock();
            set_ready(&mut st, &path, ready);
        }
    }
}

fn update_pod(st: &mut State, path: &str, f: impl FnOnce(&mut Value)) -> Option<Value> {
    let mut pod = st.store.get(path)?.clone();
    f(&mut pod);
    Some(st.store.upsert(path, pod, false))
}

fn condition(t: &str, ok: bool, now: &str) -> Value {
    json!({ "type": t, "status": if ok { "True" } else { "False" }, "lastTransitionTime": now })
}

fn set_waiting(st: &mut State, path: &str, w: &Waiting) {
    if let Some(rt) = st.pods.get_mut(path) {
        rt.waiting = Some(w.reason.to_string());
    }
    let Some(pod) = update_pod(st, path, |p| {
        p["status"]["containerStatuses"][0]["state"] =
            json!({ "waiting": { "reason": w.reason, "message": w.message } });
    }) else {
        return;
    };
    let ns = pod["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let event_name = format!("{name}.{}", name_suffix(st.store.next_id(), 16));
    let now = now_rfc3339();
    let reason = if w.reason == "ContainerCreating" {
        "FailedMount"
    } else {
        "Failed"
    };
    let event = json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": { "name": event_name, "namespace": ns },
        "involvedObject": { "apiVersion": "v1", "kind": "Pod", "name": name, "namespace": ns, "uid": pod["metadata"]["uid"] },
        "type": "Warning", "reason": reason, "message": w.message,
        "source": { "component": "kubelet", "host": pod["spec"]["nodeName"] },
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    });
    st.store.upsert(
        &store::path_of("v1", "events", Some(&ns), &event_name),
        event,
        false,
    );
}

fn set_running(st: &mut State, path: &str, started_at: &str, ready: bool) {
    update_pod(st, path, |p| {
        let s = &mut p["status"];
        s["phase"] = json!("Running");
        s["podIP"] = json!("127.0.0.1");
        s["startTime"] = json!(started_at);
        s["conditions"] = json!([
            condition("PodScheduled", true, started_at),
            condition("Initialized", true, started_at),
            condition("ContainersReady", ready, started_at),
            condition("Ready", ready, started_at),
        ]);
        let cs = &mut s["containerStatuses"][0];
        cs["ready"] = json!(ready);
        cs["started"] = json!(true);
        cs["state"] = json!({ "running": { "startedAt": started_at } });
    });
}

fn set_ready(st: &mut State, path: &str, ready: bool) {
    let now = now_rfc3339();
    update_pod(st, path, |p| {
        if p["status"]["phase"] != "Running" {
            return;
        }
        for c in p["status"]["conditions"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                *c = condition(c["type"].as_str().unwrap_or_default(), ready, &now);
            }
        }
        p["status"]["containerStatuses"][0]["ready"] = json!(ready);
    });
    sync_owner(st, path);
}

/// The container ended with `code`: the pod's phase says so and its Job
/// counts it.
fn terminate(
    api: &FakeApi,
    st: &mut State,
    path: &str,
    code: i32,
    reason: &str,
    message: Option<&str>,
    finished_at: &str,
) {
    update_pod(st, path, |p| {
        let s = &mut p["status"];
        let started = s["startTime"].clone();
        s["phase"] = json!(if code == 0 { "Succeeded" } else { "Failed" });
        for c in s["conditions"].as_array_mut().into_iter().flatten() {
            if c["type"] == "Ready" || c["type"] == "ContainersReady" {
                *c = json!({ "type": c["type"], "status": "False", "reason": "PodCompleted", "lastTransitionTime": finished_at });
            }
        }
        let cs = &mut s["containerStatuses"][0];
        cs["ready"] = json!(false);
        cs["started"] = json!(false);
        let mut term = json!({ "exitCode": code, "reason": reason, "startedAt": started, "finishedAt": finished_at });
        if let Some(m) = message {
            term["message"] = json!(m);
        }
        cs["state"] = json!({ "terminated": term });
    });
    let job = owner_job(st, path);
    if let Some(job) = job {
        sync_job(api, st, &job);
    }
}

fn owner_job(st: &State, pod_path: &str) -> Option<String> {
    let pod = st.store.get(pod_path)?;
    let r = &pod["metadata"]["ownerReferences"][0];
    if r["kind"] != "Job" {
        return None;
    }
    let ns = pod["metadata"]["namespace"].as_str()?;
    Some(store::path_of(
        "batch/v1",
        "jobs",
        Some(ns),
        r["name"].as_str()?,
    ))
}

/// A pod's readiness changed: its Job's `ready` count follows.
fn sync_owner(st: &mut State, pod_path: &str) {
    let Some(job_path) = owner_job(st, pod_path) else {
        return;
    };
    let Some(mut job) = st.store.get(&job_path).cloned() else {
        return;
    };
    let uid = job["metadata"]["uid"].clone();
    let ready = st
        .store
        .objects()
        .values()
        .filter(|o| o["kind"] == "Pod" && o["metadata"]["ownerReferences"][0]["uid"] == uid)
        .filter(|o| o["status"]["phase"] == "Running" && condition_true(o, "Ready"))
        .count();
    if job["status"]["ready"] != json!(ready) {
        job["status"]["ready"] = json!(ready);
        st.store.upsert(&job_path, job, false);
    }
}

/// `pods/NAME[:PORT]/proxy/...`: the local address of the pod's port, or
/// the status code and message of the API server's refusal.
pub fn proxy_target(st: &State, ap: &ApiPath) -> Result<SocketAddr, (u16, String)> {
    let name = ap.name.as_deref().unwrap_or_default();
    let parts: Vec<&str> = name.split(':').collect();
    let (pod, port) = match parts.as_slice() {
        [pod] => (*pod, None),
        [pod, port] => (*pod, Some(*port)),
        [_scheme, pod, port] => (*pod, Some(*port)),
        _ => return Err((400, format!("invalid pod proxy name {name:?}"))),
    };
    let path = super::pod_path(ap.namespace.as_deref().unwrap_or_default(), pod);
    let Some(obj) = st.store.get(&path) else {
        return Err((404, format!("pods \"{pod}\" not found")));
    };
    let c = &obj["spec"]["containers"][0];
    let container_port = match port {
        Some(p) => port_number(c, &json!(p)),
        None => c["ports"][0]["containerPort"]
            .as_u64()
            .and_then(|n| u16::try_from(n).ok()),
    };
    let Some(container_port) = container_port
        .or_else(|| port.and_then(|p| st.pods.get(&path).and_then(|rt| rt.named.get(p).copied())))
    else {
        return Err((503, format!("no port {port:?} on pod {pod}")));
    };
    let Some(rt) = st.pods.get(&path).filter(|rt| rt.pid().is_some()) else {
        return Err((503, format!(
                "error trying to reach service: dial tcp 127.0.0.1:{container_port}: connect: connection refused (pod {pod} has no running process)"
            ),
        ));
    };
    let local = rt
        .ports
        .get(&container_port)
        .copied()
        .unwrap_or(container_port);
    Ok(SocketAddr::from(([127, 0, 0, 1], local)))
}

/// `services/NAME[:PORT]/proxy/...`: where the test routed the service's
/// in-cluster name (`FakeApi::route_host`), with its port or without.
pub fn service_target(st: &State, ap: &ApiPath) -> Result<SocketAddr, (u16, String)> {
    let name = ap.name.as_deref().unwrap_or_default();
    let parts: Vec<&str> = name.split(':').collect();
    let (svc, port) = match parts.as_slice() {
        [svc] => (*svc, None),
        [svc, port] => (*svc, Some(*port)),
        [_scheme, svc, port] => (*svc, Some(*port)),
        _ => return Err((400, format!("invalid service proxy name {name:?}"))),
    };
    let ns = ap.namespace.as_deref().unwrap_or_default();
    let hosts = [
        format!("{svc}.{ns}.svc.cluster.local"),
        format!("{svc}.{ns}.svc"),
    ];
    let found = hosts.iter().find_map(|h| {
        port.and_then(|p| st.opts.routes.get(&format!("{h}:{p}")))
            .or_else(|| st.opts.routes.get(h))
    });
    let Some(addr) = found else {
        return Err((
            503,
            format!(
                "no endpoints available for service \"{svc}\" (the test routed no {} here)",
                hosts[0]
            ),
        ));
    };
    addr.parse().map_err(|_| {
        (
            503,
            format!("the route for {} is not HOST:PORT: {addr}", hosts[0]),
        )
    })
}

/// `pods/NAME/log`: the container's stdout and stderr in arrival order;
/// `tailLines` keeps the last lines, then `limitBytes` the first bytes.
pub fn logs(st: &State, ap: &ApiPath, q: &BTreeMap<String, String>) -> Response<Body> {
    let pod = ap.name.as_deref().unwrap_or_default();
    let path = ap.object();
    let Some(obj) = st.store.get(&path) else {
        return status(404, &format!("pods \"{pod}\" not found"));
    };
    let names: Vec<String> = obj["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    let container = match q.get("container") {
        Some(c) if !names.contains(c) => {
            return status(400, &format!("container {c} is not valid for pod {pod}"));
        }
        Some(c) => c.clone(),
        None if names.len() > 1 => {
            return status(
                400,
                &format!(
                    "a container name must be specified for pod {pod}, choose one of: {names:?}"
                ),
            );
        }
        None => names.first().cloned().unwrap_or_default(),
    };
    let Some(rt) = st.pods.get(&path) else {
        // Pods the kubelet does not run (put by the test, or the predictor's) log nothing.
        return fhttp::raw(200, "text/plain", Bytes::new());
    };
    if rt.containers.first() != Some(&container) {
        return fhttp::raw(200, "text/plain", Bytes::new());
    }
    if let Some(w) = &rt.waiting {
        return status(
            400,
            &format!("container \"{container}\" in pod \"{pod}\" is waiting to start: {w}"),
        );
    }
    let mut bytes = rt.log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if let Some(n) = q.get("tailLines").and_then(|n| n.parse::<usize>().ok()) {
        let ends: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i)
            .collect();
        // The line count ignores a final newline, as `tail -n` does.
        let lines = if bytes.last() == Some(&b'\n') {
            ends.len()
        } else {
            ends.len() + 1
        };
        if n < lines {
            let cut = ends[lines - n - 1] + 1;
            bytes.drain(..cut);
        }
    }
    if let Some(n) = q.get("limitBytes").and_then(|n| n.parse::<usize>().ok()) {
        bytes.truncate(n);
    }
    fhttp::raw(200, "text/plain", Bytes::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_the_kubelet() {
        let vars: BTreeMap<String, String> = [("I".to_string(), "3".to_string())].into();
        assert_eq!(expand("$(I)/4", &vars), "3/4");
        assert_eq!(expand("$$(I) $(J) $( $", &vars), "$(I) $(J) $( $");
    }

    #[test]
    fn addresses_and_mounts_are_mapped_onto_this_machine() {
        let mounts = vec![
            ("/etc/cfg".to_string(), PathBuf::from("/tmp/pod/cfg")),
            ("/tmp".to_string(), PathBuf::from("/tmp/pod/tmp")),
        ];
        let routes: BTreeMap<String, String> = [(
            "svc.ns.svc.cluster.local".to_string(),
            "127.0.0.1:5".to_string(),
        )]
        .into();
        let mut ports = BTreeMap::new();
        let s = rewrite(
            "cat /etc/cfg/a /etc/cfgx /tmp/x; --listen 0.0.0.0:9000 http://svc.ns.svc.cluster.local/v2 http://other.ns.svc:80/x 10.0.0.0:1",
            &mounts,
            &mut ports,
            &routes,
        );
        let local = ports[&9000];
        assert_eq!(
            s,
            format!("cat /tmp/pod/cfg/a /etc/cfgx /tmp/pod/tmp/x; --listen 127.0.0.1:{local} http://127.0.0.1:5/v2 http://other.ns.svc:80/x 10.0.0.0:1")
        );
        assert_eq!(
            replace_listen("0.0.0.0:9000", &mut ports),
            format!("127.0.0.1:{local}"),
            "one port per container port"
        );
    }

    #[test]
    fn completed_indexes_are_written_as_ranges() {
        assert_eq!(index_ranges(&[0, 1, 2, 5, 7, 8].into()), "0-2,5,7-8");
        assert_eq!(index_ranges(&BTreeSet::new()), "");
    }
}
