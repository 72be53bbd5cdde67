//! A Kubernetes API server double, for tests of the cluster level on one
//! machine (feature `fake`).
//!
//! It keeps objects by path and answers gets, lists (label and field
//! selectors), server-side apply, merge patches, creates and deletes as the
//! API server does (a 404 Status for what is not there), with increasing
//! resource versions and watches that stream real changes. Around the store
//! it plays the cluster's other actors:
//!
//! - a KServe controller: an applied InferenceService becomes Ready (or stays
//!   Pending as unschedulable, on request) with its predictor Deployment and
//!   pods, on a node of its own node list;
//! - a Job controller and a kubelet: an Indexed Job's pods run their first
//!   container as local processes, with the container's arguments expanded
//!   and its addresses and mounts mapped onto this machine, readiness probes,
//!   logs, the pod proxy, and exit codes as pod phases.
//!
//! It is reached either through [`FakeApi::client`] (a tower service in the
//! test's runtime) or over real HTTP with [`FakeApi::serve`] or
//! [`FakeApi::spawn_thread`], which write a kubeconfig for it. Every request
//! is recorded (verb, path, query, content type, body) for tests to assert,
//! and tests can script watches, refusals and plain answers.

mod controller;
mod http;
mod kubelet;
mod store;

use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

pub use self::http::{Served, ServedThread};

/// One request as the double received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    /// The body as JSON, or as a JSON string when it is not JSON.
    pub body: Option<Value>,
    /// The `Authorization` header, to see which credentials a client sent.
    pub authorization: Option<String>,
}

/// A scripted answer for one path, given before anything else is looked at.
#[derive(Debug, Clone)]
struct Scripted {
    status: u16,
    content_type: String,
    body: String,
}

/// How the double's cluster behaves; set with the `with_*` methods.
#[derive(Debug, Clone)]
struct Options {
    controller: bool,
    isvc_delay: Duration,
    never_ready: BTreeSet<String>,
    kubelet: bool,
    images: BTreeMap<String, PathBuf>,
    routes: BTreeMap<String, String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            controller: true,
            isvc_delay: Duration::ZERO,
            never_ready: BTreeSet::new(),
            kubelet: true,
            images: BTreeMap::new(),
            routes: BTreeMap::new(),
        }
    }
}

struct State {
    requests: Vec<Recorded>,
    store: store::Store,
    /// What each scripted watch answers, in turn; with none left, watches
    /// stream the store's real changes.
    watches: VecDeque<Vec<Value>>,
    /// Paths whose writes (any verb but GET) are refused with this code.
    fail: BTreeMap<String, u16>,
    answers: BTreeMap<String, Scripted>,
    /// Paths applied (PATCH or POST) and deleted by clients, in order.
    applied: Vec<String>,
    deleted: Vec<String>,
    opts: Options,
    /// The pods the kubelet runs, by object path; dropping one kills its
    /// process group, so the processes go with the double.
    pods: BTreeMap<String, kubelet::PodRuntime>,
}

pub(crate) struct Inner {
    state: Mutex<State>,
}

/// The API server double; clones share one cluster.
#[derive(Clone)]
pub struct FakeApi {
    inner: Arc<Inner>,
}

impl Default for FakeApi {
    fn default() -> Self {
        FakeApi::new()
    }
}

impl FakeApi {
    /// A cluster of one Ready node, `fake-node-0`, with the InferenceService
    /// controller and the kubelet on.
    pub fn new() -> FakeApi {
        let mut store = store::Store::new();
        let n = node("fake-node-0", None);
        store.upsert(&node_path("fake-node-0"), n, false);
        FakeApi {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    requests: Vec::new(),
                    store,
                    watches: VecDeque::new(),
                    fail: BTreeMap::new(),
                    answers: BTreeMap::new(),
                    applied: Vec::new(),
                    deleted: Vec::new(),
                    opts: Options::default(),
                    pods: BTreeMap::new(),
                }),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not hide its own
        // failure behind a poisoned mutex in every later call.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn weak(&self) -> Weak<Inner> {
        Arc::downgrade(&self.inner)
    }

    fn from_weak(w: &Weak<Inner>) -> Option<FakeApi> {
        w.upgrade().map(|inner| FakeApi { inner })
    }

    /// Replaces the node list with `nodes` (Node objects, see [`node`]); the
    /// first is where pods are bound.
    pub fn with_nodes(self, nodes: impl IntoIterator<Item = Value>) -> FakeApi {
        {
            let mut st = self.lock();
            for p in st.store.paths_under("/api/v1/nodes") {
                st.store.remove(&p);
            }
            for n in nodes {
                let name = n["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                st.store.upsert(&node_path(&name), n, false);
            }
        }
        self
    }

    /// Labels the default node with `lab.dev/node-pool: pool`.
    pub fn with_node_pool(self, pool: &str) -> FakeApi {
        self.with_nodes([node("fake-node-0", Some(pool))])
    }

    /// Turns the InferenceService controller off: applied InferenceServices
    /// then stay as applied, with no status, Deployment or pods.
    pub fn without_controller(self) -> FakeApi {
        self.lock().opts.controller = false;
        self
    }

    /// How long after an apply the controller makes an InferenceService Ready.
    pub fn isvc_ready_after(self, delay: Duration) -> FakeApi {
        self.lock().opts.isvc_delay = delay;
        self
    }

    /// The InferenceService `name` (in any namespace) never becomes Ready:
    /// its pods stay Pending, unschedulable for want of GPUs, with a
    /// FailedScheduling warning event.
    pub fn never_ready(self, name: &str) -> FakeApi {
        self.lock().opts.never_ready.insert(name.to_string());
        self
    }

    /// Turns the Job controller and kubelet off: applied Jobs get no pods.
    pub fn without_kubelet(self) -> FakeApi {
        self.lock().opts.kubelet = false;
        self
    }

    /// The program a container of `image` runs when it names no `command`
    /// (the image's entrypoint).
    pub fn run_image(self, image: &str, program: impl Into<PathBuf>) -> FakeApi {
        self.lock()
            .opts
            .images
            .insert(image.to_string(), program.into());
        self
    }

    /// A URL in a container's arguments or environment whose host is `host`
    /// (an in-cluster name, with or without its port) is rewritten to `addr`
    /// (`127.0.0.1:PORT`), keeping its scheme and path.
    pub fn route_host(self, host: &str, addr: &str) -> FakeApi {
        self.lock()
            .opts
            .routes
            .insert(host.to_string(), addr.to_string());
        self
    }

    /// A `kube::Client` that calls the double in the caller's runtime, with
    /// no network in between.
    pub fn client(&self) -> kube::Client {
        let me = self.clone();
        let svc = tower::service_fn(move |req: ::http::Request<kube::client::Body>| {
            let me = me.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = http_body_util::BodyExt::collect(body)
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                Ok::<_, std::convert::Infallible>(me.handle(parts, bytes).await)
            }
        });
        kube::Client::new(svc, "default")
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Stores `v` at `path` as it is (status included), as if some actor of
    /// the cluster had written it; no controller reacts.
    pub fn put(&self, path: &str, v: Value) {
        self.lock().store.upsert(path, v, false);
    }

    /// The object at `path`.
    pub fn get(&self, path: &str) -> Option<Value> {
        self.lock().store.get(path).cloned()
    }

    /// Every object, by path.
    pub fn objects(&self) -> BTreeMap<String, Value> {
        self.lock().store.objects().clone()
    }

    /// Deletes the object at `path` as the API server would (what it owns
    /// goes too, a pod's process is stopped), without recording a request.
    pub fn remove(&self, path: &str) -> Option<Value> {
        let mut st = self.lock();
        store::delete(&mut st, path)
    }

    /// The store's current resource version (what a list would carry).
    pub fn resource_version(&self) -> u64 {
        self.lock().store.version()
    }

    /// The next watch answers these event lines and ends.
    pub fn script_watch(&self, events: Vec<Value>) {
        self.lock().watches.push_back(events);
    }

    /// Writes (any verb but GET) to `path` are refused with `code`.
    pub fn fail(&self, path: &str, code: u16) {
        self.lock().fail.insert(path.to_string(), code);
    }

    /// Requests for `path` are answered `text` as text/plain with 200.
    pub fn put_text(&self, path: &str, text: &str) {
        self.script_answer(path, 200, "text/plain", text);
    }

    /// Requests for `path` (any verb) are answered with this status and body.
    pub fn script_answer(&self, path: &str, status: u16, content_type: &str, body: &str) {
        self.lock().answers.insert(
            path.to_string(),
            Scripted {
                status,
                content_type: content_type.to_string(),
                body: body.to_string(),
            },
        );
    }

    /// The paths clients applied (server-side apply or create), in order.
    pub fn applied_paths(&self) -> Vec<String> {
        self.lock().applied.clone()
    }

    /// The paths clients deleted, in order (what went with them is not listed).
    pub fn deleted_paths(&self) -> Vec<String> {
        self.lock().deleted.clone()
    }

    /// The process id of the pod at `pod_path` while the kubelet runs it.
    pub fn pod_pid(&self, pod_path: &str) -> Option<u32> {
        self.lock().pods.get(pod_path).and_then(|p| p.pid())
    }

    /// The local port a pod's container port was mapped to.
    pub fn pod_port(&self, pod_path: &str, container_port: u16) -> Option<u16> {
        self.lock()
            .pods
            .get(pod_path)
            .and_then(|p| p.ports.get(&container_port).copied())
    }

    /// Waits up to `timeout` until the object at `path` exists and satisfies
    /// `pred`, woken by each change of the store; None at the timeout.
    pub async fn wait_for(
        &self,
        path: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.lock().store.subscribe();
        loop {
            if let Some(o) = self.get(path).filter(|o| pred(o)) {
                return Some(o);
            }
            tokio::select! {
                r = changes.changed() => r.ok()?,
                _ = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    /// Kills every pod's processes now (the pods stay in the store, as after
    /// a node failure nobody reported). Stopping a served double calls it.
    pub fn shutdown(&self) {
        let pods = std::mem::take(&mut self.lock().pods);
        drop(pods);
    }
}

/// The path of the Node `name`.
pub fn node_path(name: &str) -> String {
    format!("/api/v1/nodes/{name}")
}

/// A Ready node with 8 CPUs and 32 GiB, labelled `lab.dev/node-pool: pool`
/// when given.
pub fn node(name: &str, pool: Option<&str>) -> Value {
    let labels = match pool {
        Some(p) => json!({ "kubernetes.io/hostname": name, "lab.dev/node-pool": p }),
        None => json!({ "kubernetes.io/hostname": name }),
    };
    let now = store::now_rfc3339();
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": name, "labels": labels },
        "spec": {},
        "status": {
            "capacity": { "cpu": "8", "memory": "32Gi", "pods": "110" },
            "allocatable": { "cpu": "7910m", "memory": "31Gi", "pods": "110" },
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": now, "lastTransitionTime": now,
            }],
            "addresses": [{ "type": "InternalIP", "address": "127.0.0.1" }],
        },
    })
}

/// An InferenceService as the API returns it, Ready or not.
pub fn isvc(ns: &str, name: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": { "name": name, "namespace": ns },
        "status": { "conditions": [
            { "type": "PredictorReady", "status": if ready { "True" } else { "False" }, "reason": if ready { "" } else { "PredictorNotReady" } },
            { "type": "Ready", "status": if ready { "True" } else { "False" } },
        ] },
    })
}

/// The path of the InferenceService `name` in `ns`.
pub fn isvc_path(ns: &str, name: &str) -> String {
    format!("/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices/{name}")
}

/// The path of the Pod `name` in `ns`.
pub fn pod_path(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/pods/{name}")
}

/// A pod of the load Job with its completion index, Ready or not, in a
/// phase, named `JOB-INDEX-xINDEX`.
pub fn shard_pod(ns: &str, job: &str, index: u32, ready: bool, phase: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{job}-{index}-x{index}"), "namespace": ns,
            "labels": { "job-name": job },
            "annotations": { "batch.kubernetes.io/job-completion-index": index.to_string() },
        },
        "spec": { "containers": [{ "name": "load" }] },
        "status": { "phase": phase, "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }] },
    })
}

/// (API group, resource or resource/subresource, verb) of a request, as RBAC sees it.
pub fn rbac_of(q: &Recorded) -> (String, String, String) {
    let parts: Vec<&str> = q.path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match parts[0] {
        "api" => (String::new(), &parts[2..]),
        _ => (parts[1].to_string(), &parts[3..]),
    };
    // namespaces/NS/RES/NAME/SUB, or RES/NAME for cluster-scoped kinds.
    let (resource, name, sub) = match rest {
        ["namespaces", ns] => ("namespaces".to_string(), Some(*ns), None),
        ["namespaces", _, res] => (res.to_string(), None, None),
        ["namespaces", _, res, name] => (res.to_string(), Some(*name), None),
        ["namespaces", _, res, name, sub, ..] => (res.to_string(), Some(*name), Some(*sub)),
        [res] => (res.to_string(), None, None),
        [res, name] => (res.to_string(), Some(*name), None),
        other => (other.join("/"), None, None),
    };
    let resource = match sub {
        Some(s) => format!("{resource}/{s}"),
        None => resource,
    };
    let verb = match (q.method.as_str(), name, q.query.contains_key("watch")) {
        ("PATCH", ..) => "patch",
        ("DELETE", ..) => "delete",
        ("POST", ..) => "create",
        ("GET", _, true) => "watch",
        ("GET", Some(_), _) => "get",
        ("GET", None, _) => "list",
        (m, ..) => m,
    };
    (group, resource, verb.to_string())
}

/// Every (API group, resource, verb) a ClusterRole's rules grant, from the
/// role as JSON.
pub fn rbac_rights(role: &Value) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    for rule in role["rules"].as_array().into_iter().flatten() {
        for g in strings(&rule["apiGroups"]) {
            for r in strings(&rule["resources"]) {
                for v in strings(&rule["verbs"]) {
                    out.insert((g.clone(), r.clone(), v));
                }
            }
        }
    }
    out
}
