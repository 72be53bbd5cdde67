//! The API server double's cluster: a kubelet that runs an Indexed Job's
//! pods as local processes (arguments expanded, ConfigMaps mounted,
//! addresses mapped, readiness probed, logs kept, the pod proxy forwarded,
//! exit codes as phases, processes killed with their pods and with the
//! double), the KServe controller seen through a watch and through the
//! driver's NotReady report, and the double served over real HTTP behind a
//! kubeconfig.

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, LogParams};
use lab_cluster::fake::{isvc_path, pod_path, FakeApi};
use lab_cluster::{Cluster, ClusterError};
use serde_json::{json, Value};
use std::time::Duration;

const NS: &str = "t";
/// Long enough for a loaded machine to start `sh` or Python; the waits end
/// as soon as what they wait for happens.
const PATIENCE: Duration = Duration::from_secs(30);

fn job_path(name: &str) -> String {
    format!("/apis/batch/v1/namespaces/{NS}/jobs/{name}")
}

/// An Indexed Job of `completions` pods whose container is `container`.
fn job(name: &str, completions: u32, backoff: u32, container: Value) -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": { "name": name, "namespace": NS },
        "spec": {
            "completionMode": "Indexed", "completions": completions, "parallelism": completions,
            "backoffLimit": backoff,
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "restartPolicy": "Never", "containers": [container] },
            },
        },
    })
}

const INDEX_ENV: &str = "metadata.annotations['batch.kubernetes.io/job-completion-index']";

fn index_env() -> Value {
    json!([{ "name": "SHARD_INDEX", "valueFrom": { "fieldRef": { "fieldPath": INDEX_ENV } } }])
}

fn condition(o: &Value, t: &str) -> Option<String> {
    o["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
        .and_then(|c| c["status"].as_str().map(str::to_string))
}

async fn job_pods(api: &FakeApi, job: &str) -> Vec<Value> {
    api.objects()
        .into_iter()
        .filter(|(p, o)| {
            p.starts_with(&format!("/api/v1/namespaces/{NS}/pods/"))
                && o["metadata"]["labels"]["job-name"] == job
        })
        .map(|(_, o)| o)
        .collect()
}

/// Waits for the process `pid` to end, by its pidfd becoming readable
/// (which it does at exit, zombie or not): the event, not a poll of kill(0).
fn exits_within(pid: u32, timeout: Duration) -> bool {
    // SAFETY: pidfd_open(2) and poll(2) on a descriptor this function owns.
    unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) as i32;
        if fd < 0 {
            // ESRCH: it is already gone.
            return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let n = libc::poll(&mut p, 1, timeout.as_millis() as i32);
        libc::close(fd);
        n == 1
    }
}

fn alive(pid: u32) -> bool {
    !exits_within(pid, Duration::ZERO)
}

#[tokio::test]
async fn an_indexed_job_runs_one_process_per_index_with_its_args_config_and_logs() {
    let api = FakeApi::new();
    let cluster = Cluster::new(api.client());
    let script = "echo \"index $(SHARD_INDEX) of 2\"; cat /etc/cfg/greeting; echo \"warn-$(SHARD_INDEX)\" >&2";
    let container = json!({
        "name": "load", "image": "unused", "command": ["sh", "-c"], "args": [script],
        "env": index_env(),
        "volumeMounts": [{ "name": "cfg", "mountPath": "/etc/cfg", "readOnly": true }],
    });
    let mut j = job("echo", 2, 0, container);
    j["spec"]["template"]["spec"]["volumes"] =
        json!([{ "name": "cfg", "configMap": { "name": "greet" } }]);
    // The Job before its ConfigMap: the pods wait for the mount, then start.
    cluster.apply(&[j]).await.unwrap();
    let pods = job_pods(&api, "echo").await;
    assert_eq!(pods.len(), 2, "one pod per index");
    let first = pod_path(NS, pods[0]["metadata"]["name"].as_str().unwrap());
    let waiting = api
        .wait_for(&first, PATIENCE, |p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("configmap \"greet\" not found"))
        })
        .await;
    assert!(
        waiting.is_some(),
        "the missing ConfigMap is said: {:?}",
        api.get(&first)
    );
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": { "name": "greet", "namespace": NS },
        "data": { "greeting": "hello from the config map" },
    });
    cluster.apply(&[cm]).await.unwrap();
    let done = api
        .wait_for(&job_path("echo"), PATIENCE, |j| {
            condition(j, "Complete").as_deref() == Some("True")
        })
        .await
        .expect("the Job completes");
    assert_eq!(done["status"]["succeeded"], 2);
    assert_eq!(done["status"]["completedIndexes"], "0-1");

    let client = api.client();
    let pods: Api<Pod> = Api::namespaced(client, NS);
    let listed = pods
        .list(&ListParams::default().labels("job-name=echo,app"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    let mut seen = Vec::new();
    for p in &listed.items {
        let name = p.metadata.name.clone().unwrap();
        let index = p.metadata.annotations.as_ref().unwrap()
            ["batch.kubernetes.io/job-completion-index"]
            .clone();
        assert!(
            name.starts_with(&format!("echo-{index}-")) && name.len() == "echo-0-".len() + 5,
            "{name}"
        );
        let status = p.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Succeeded"));
        let term = status.container_statuses.as_ref().unwrap()[0]
            .state
            .as_ref()
            .unwrap()
            .terminated
            .clone()
            .unwrap();
        assert_eq!(term.exit_code, 0);
        let log = pods
            .logs(
                &name,
                &LogParams {
                    container: Some("load".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(
            log.contains(&format!("index {index} of 2")),
            "$(SHARD_INDEX) expanded: {log}"
        );
        assert!(
            log.contains("hello from the config map"),
            "the ConfigMap file is readable: {log}"
        );
        assert!(
            log.contains(&format!("warn-{index}")),
            "stderr is in the log: {log}"
        );
        let head = pods
            .logs(
                &name,
                &LogParams {
                    limit_bytes: Some(7),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(head, log[..7], "limitBytes keeps the first bytes");
        let last = pods
            .logs(
                &name,
                &LogParams {
                    tail_lines: Some(1),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(last.lines().count(), 1, "{last:?}");
        seen.push(index);
    }
    seen.sort();
    assert_eq!(seen, ["0", "1"]);
    let wrong = pods
        .logs(
            listed.items[0].metadata.name.as_deref().unwrap(),
            &LogParams {
                container: Some("nope".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(wrong.to_string().contains("not valid"), "{wrong}");
}

/// A container runtime logs whole lines: a stdout line written in two pieces
/// with a stderr line between them comes back whole, as a load shard's
/// results line must.
#[tokio::test]
async fn a_line_cut_by_the_other_stream_comes_back_whole() {
    let api = FakeApi::new();
    let cluster = Cluster::new(api.client());
    // The pause lets the first piece reach the log reader on its own.
    let script = "printf 'results: {'; sleep 0.3; echo 'a warning' >&2; sleep 0.3; echo '}'";
    let container = json!({
        "name": "load", "image": "unused", "command": ["sh", "-c"], "args": [script],
    });
    cluster.apply(&[job("cut", 1, 0, container)]).await.unwrap();
    api.wait_for(&job_path("cut"), PATIENCE, |j| {
        condition(j, "Complete").as_deref() == Some("True")
    })
    .await
    .expect("the Job completes");
    let pods = job_pods(&api, "cut").await;
    let name = pods[0]["metadata"]["name"].as_str().unwrap();
    let log = Api::<Pod>::namespaced(api.client(), NS)
        .logs(name, &LogParams::default())
        .await
        .unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines, ["a warning", "results: {}"], "{log:?}");
}

#[tokio::test]
async fn a_non_zero_exit_fails_the_pod_and_the_job_after_its_retries() {
    let api = FakeApi::new();
    let cluster = Cluster::new(api.client());
    let container =
        json!({ "name": "c", "image": "unused", "command": ["sh", "-c", "echo failing; exit 3"] });
    cluster.apply(&[job("bad", 1, 1, container)]).await.unwrap();
    let failed = api
        .wait_for(&job_path("bad"), PATIENCE, |j| {
            condition(j, "Failed").as_deref() == Some("True")
        })
        .await
        .expect("the Job fails");
    assert_eq!(
        failed["status"]["failed"], 2,
        "one retry within backoffLimit 1, then no more"
    );
    assert_eq!(
        failed["status"]["conditions"][0]["reason"],
        "BackoffLimitExceeded"
    );
    let pods = job_pods(&api, "bad").await;
    assert_eq!(pods.len(), 2, "the failed index was replaced once");
    for p in &pods {
        assert_eq!(p["status"]["phase"], "Failed");
        assert_eq!(
            p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            3
        );
        assert_eq!(
            p["status"]["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Error"
        );
    }
}

/// A small HTTP server like a paused load shard: it listens on the address
/// in its first argument, answers `/ready` with 200 until told `/flip` (and
/// again after the next), and echoes what is posted to `/echo`; it prints
/// the URL it was given.
const SERVER: &str = r#"
import http.server, os, sys
host, port = sys.argv[1].rsplit(":", 1)
state = {"ready": True}
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def answer(self, code, body):
        self.send_response(code)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.answer(200 if state["ready"] else 503, b"ready?")
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path == "/flip":
            state["ready"] = not state["ready"]
            self.answer(200, b"flipped")
        else:
            ct = self.headers.get("content-type", "")
            self.answer(201, b"got " + body + b" as " + ct.encode())
print("target", os.environ["TARGET"], flush=True)
http.server.HTTPServer((host, int(port)), H).serve_forever()
"#;

fn server_job(name: &str) -> Value {
    job(
        name,
        1,
        0,
        json!({
            "name": "srv", "image": "unused",
            "command": ["python3", "-c", SERVER], "args": ["0.0.0.0:8000"],
            "env": [{ "name": "TARGET", "value": "http://backend-predictor.t.svc.cluster.local/v2/models" }],
            "ports": [{ "name": "http", "containerPort": 8000 }],
            "readinessProbe": { "httpGet": { "path": "/ready", "port": "http" }, "failureThreshold": 1 },
        }),
    )
}

#[tokio::test]
async fn readiness_follows_the_probe_and_the_pod_proxy_reaches_the_process() {
    let api = FakeApi::new().route_host("backend-predictor.t.svc.cluster.local", "127.0.0.1:4321");
    let cluster = Cluster::new(api.client());
    cluster.apply(&[server_job("srv")]).await.unwrap();
    let pod = job_pods(&api, "srv").await.remove(0);
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    let path = pod_path(NS, &name);
    let ready = api
        .wait_for(&path, PATIENCE, |p| {
            condition(p, "Ready").as_deref() == Some("True")
        })
        .await
        .expect("Ready once the probe answers");
    assert_eq!(ready["status"]["phase"], "Running");
    assert_eq!(ready["status"]["containerStatuses"][0]["ready"], true);
    let local = api.pod_port(&path, 8000).expect("port 8000 is mapped");
    assert_ne!(local, 8000);

    let client = api.client();
    let post = |to: &str, body: &str| {
        http::Request::post(format!(
            "/api/v1/namespaces/{NS}/pods/{name}:8000/proxy{to}"
        ))
        .header("content-type", "text/plain")
        .body(body.as_bytes().to_vec())
        .unwrap()
    };
    // The service proxy reaches what the test routed the service's name to.
    let api = api.route_host("prometheus.monitoring.svc", &format!("127.0.0.1:{local}"));
    let through_service = client
        .request_text(
            http::Request::get("/api/v1/namespaces/monitoring/services/prometheus:9090/proxy/api/v1/query?query=up")
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(through_service, "ready?");
    let answer = client.request_text(post("/echo", "12.5")).await.unwrap();
    assert_eq!(
        answer, "got 12.5 as text/plain",
        "the body and content type reach the pod"
    );
    assert_eq!(
        client.request_text(post("/flip", "")).await.unwrap(),
        "flipped"
    );
    let unready = api
        .wait_for(&path, PATIENCE, |p| {
            condition(p, "Ready").as_deref() == Some("False")
        })
        .await
        .expect("not Ready once the probe fails");
    assert_eq!(unready["status"]["phase"], "Running");
    client.request_text(post("/flip", "")).await.unwrap();
    api.wait_for(&path, PATIENCE, |p| {
        condition(p, "Ready").as_deref() == Some("True")
    })
    .await
    .expect("and Ready again");

    let log = Api::<Pod>::namespaced(client, NS)
        .logs(&name, &LogParams::default())
        .await
        .unwrap();
    assert!(
        log.contains("target http://127.0.0.1:4321/v2/models"),
        "the in-cluster URL is routed: {log}"
    );
}

/// A shell whose child listens on the pod's port 7000: the pod is Ready
/// (a tcpSocket probe) once the child exists, and the child shares the
/// shell's process group, not its fate.
fn parent_and_child(name: &str, completions: u32) -> Value {
    let listener = "import socket, sys; h, p = sys.argv[1].rsplit(':', 1); s = socket.socket(); s.bind((h, int(p))); s.listen(); [s.accept() for _ in iter(int, 1)]";
    job(
        name,
        completions,
        0,
        json!({
            "name": "c", "image": "unused",
            "command": ["sh", "-c", format!("python3 -c \"{listener}\" 0.0.0.0:7000 & wait")],
            "readinessProbe": { "tcpSocket": { "port": 7000 } },
        }),
    )
}

/// The pids of the pod's shell and of its one child, once the pod is Ready.
async fn shell_and_child(api: &FakeApi, path: &str) -> (u32, u32) {
    api.wait_for(path, PATIENCE, |p| {
        condition(p, "Ready").as_deref() == Some("True")
    })
    .await
    .expect("the child listens");
    let shell = api.pod_pid(path).expect("a process");
    let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children")).unwrap();
    let child = children
        .split_whitespace()
        .next()
        .expect("the shell's child")
        .parse()
        .unwrap();
    (shell, child)
}

#[tokio::test]
async fn deleting_the_job_kills_its_processes_and_their_children() {
    let api = FakeApi::new();
    let cluster = Cluster::new(api.client());
    let applied = cluster
        .apply(&[parent_and_child("sleepy", 1)])
        .await
        .unwrap();
    let pod = job_pods(&api, "sleepy").await.remove(0);
    let path = pod_path(NS, pod["metadata"]["name"].as_str().unwrap());
    let (shell, child) = shell_and_child(&api, &path).await;
    assert!(alive(shell) && alive(child));
    assert!(cluster.teardown(&applied).await.is_empty());
    assert!(api.get(&path).is_none(), "the pod went with its Job");
    assert_eq!(api.deleted_paths(), [job_path("sleepy")]);
    let (a, b) = tokio::task::spawn_blocking(move || {
        (exits_within(shell, PATIENCE), exits_within(child, PATIENCE))
    })
    .await
    .unwrap();
    assert!(a && b, "the shell ({a}) and its child ({b}) are gone");
}

/// Over real HTTP from a thread of its own, as the end-to-end test runs it:
/// a kube client built from the kubeconfig file lists through it, and
/// dropping the double leaves no process behind.
#[test]
fn served_from_a_thread_it_answers_a_kubeconfig_client_and_dropping_it_kills_every_process() {
    let api = FakeApi::new()
        .with_node_pool("gpu-a")
        .isvc_ready_after(Duration::from_millis(200));
    let served = api.spawn_thread().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = served.kubeconfig(dir.path()).unwrap();
    let pids = served.block_on(async {
        let kc = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
        let config =
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .unwrap();
        assert_eq!(
            config.cluster_url.to_string(),
            format!("http://{}/", served.addr())
        );
        let client = kube::Client::try_from(config).unwrap();
        let nodes: Api<Node> = Api::all(client.clone());
        let listed = nodes
            .list(&ListParams::default().labels("lab.dev/node-pool=gpu-a"))
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 1);
        let node = &listed.items[0];
        assert_eq!(node.metadata.name.as_deref(), Some("fake-node-0"));
        assert!(node.metadata.creation_timestamp.is_some());
        let status = node.status.as_ref().unwrap();
        assert!(status.capacity.as_ref().unwrap().contains_key("cpu"));
        assert!(status
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True"));

        let cluster = Cluster::new(client.clone());
        // The watch streams over HTTP: the InferenceService turns Ready on it.
        let isvc = json!({
            "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": { "name": "resnet", "namespace": NS },
        });
        cluster.apply(&[isvc]).await.unwrap();
        let mut seen = Vec::new();
        cluster
            .wait_ready(
                NS,
                &["resnet".into()],
                PATIENCE,
                |n, _| seen.push(n),
                std::future::pending(),
            )
            .await
            .unwrap();
        assert_eq!(seen, [0, 1], "not ready at the list, ready on the watch");
        cluster
            .apply(&[parent_and_child("forever", 2)])
            .await
            .unwrap();
        let pods: Api<Pod> = Api::namespaced(client, NS);
        let listed = pods
            .list(&ListParams::default().labels("job-name=forever"))
            .await
            .unwrap();
        assert_eq!(listed.items.len(), 2, "listed through real HTTP");
        let mut pids = Vec::new();
        for p in &listed.items {
            let path = pod_path(NS, p.metadata.name.as_deref().unwrap());
            let (shell, child) = shell_and_child(&api, &path).await;
            pids.extend([shell, child]);
        }
        pids
    });
    let auth = api.requests().iter().find_map(|r| r.authorization.clone());
    assert_eq!(
        auth.as_deref(),
        Some("Bearer fake-token"),
        "the kubeconfig's token is sent"
    );
    assert!(pids.iter().all(|p| alive(*p)));
    drop(served);
    drop(api);
    for pid in pids {
        assert!(
            exits_within(pid, PATIENCE),
            "process {pid} outlived the double"
        );
    }
}

#[tokio::test]
async fn a_watch_sees_the_controller_make_an_inference_service_ready() {
    let api = FakeApi::new().isvc_ready_after(Duration::from_millis(300));
    let cluster = Cluster::new(api.client());
    let isvc = json!({
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": { "name": "resnet", "namespace": NS },
        "spec": { "predictor": { "minReplicas": 2, "model": { "modelFormat": { "name": "onnx" } } } },
    });
    let applied = cluster.apply(&[isvc]).await.unwrap();
    let mut seen = Vec::new();
    cluster
        .wait_ready(
            NS,
            &["resnet".into()],
            PATIENCE,
            |n, of| seen.push((n, of)),
            std::future::pending(),
        )
        .await
        .unwrap();
    assert_eq!(
        seen,
        [(0, 1), (1, 1)],
        "not ready at the list, ready on the watch"
    );
    let reqs = api.requests();
    let lists = reqs
        .iter()
        .filter(|q| q.method == "GET" && !q.query.contains_key("watch"))
        .count();
    assert_eq!(
        lists, 1,
        "the change came through the watch, not a second list"
    );

    let got = api.get(&isvc_path(NS, "resnet")).unwrap();
    assert_eq!(condition(&got, "PredictorReady").as_deref(), Some("True"));
    assert!(got["status"]["url"]
        .as_str()
        .unwrap()
        .starts_with("http://resnet."));
    let deployment = api
        .get(&format!(
            "/apis/apps/v1/namespaces/{NS}/deployments/resnet-predictor"
        ))
        .unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2, "minReplicas");
    assert_eq!(deployment["status"]["readyReplicas"], 2);
    let pods: Api<Pod> = Api::namespaced(api.client(), NS);
    let listed = pods
        .list(
            &ListParams::default()
                .labels("serving.kserve.io/inferenceservice=resnet,component=predictor"),
        )
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
    for p in &listed.items {
        assert!(p
            .metadata
            .name
            .as_deref()
            .unwrap()
            .starts_with("resnet-predictor-"));
        assert_eq!(
            p.spec.as_ref().unwrap().node_name.as_deref(),
            Some("fake-node-0")
        );
        let s = p.status.as_ref().unwrap();
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let cs = &s.container_statuses.as_ref().unwrap()[0];
        assert!(cs.ready && cs.restart_count == 0 && cs.state.as_ref().unwrap().running.is_some());
    }
    assert!(cluster.teardown(&applied).await.is_empty());
    assert!(
        pods.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "deleting the InferenceService deletes its Deployment's pods"
    );
}

#[tokio::test]
async fn an_unschedulable_service_is_reported_in_the_schedulers_words() {
    let api = FakeApi::new().never_ready("resnet");
    let cluster = Cluster::new(api.client());
    let isvc = json!({
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
        "metadata": { "name": "resnet", "namespace": NS },
        "spec": { "predictor": { "model": { "modelFormat": { "name": "onnx" } } } },
    });
    cluster.apply(&[isvc]).await.unwrap();
    let err = cluster
        .wait_ready(
            NS,
            &["resnet".into()],
            Duration::from_millis(300),
            |_, _| {},
            std::future::pending(),
        )
        .await
        .unwrap_err();
    let ClusterError::NotReady(report) = err else {
        panic!("{err}")
    };
    let text = report.to_string();
    assert!(text.contains("condition Ready=False"), "{text}");
    assert!(
        text.contains("Pending, not scheduled (Unschedulable): 0/1 nodes are available: 1 Insufficient nvidia.com/gpu."),
        "{text}"
    );
    assert!(text.contains("event FailedScheduling"), "{text}");
}

#[tokio::test]
async fn an_image_the_test_did_not_map_leaves_the_pod_waiting_with_the_reason() {
    let api = FakeApi::new();
    let cluster = Cluster::new(api.client());
    let container = json!({ "name": "load", "image": "lab:unknown", "args": ["load"] });
    cluster
        .apply(&[job("nomap", 1, 0, container)])
        .await
        .unwrap();
    let pod = job_pods(&api, "nomap").await.remove(0);
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    let waiting = api
        .wait_for(&pod_path(NS, &name), PATIENCE, |p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImagePull"
        })
        .await
        .expect("the pull error is the container's state");
    assert_eq!(waiting["status"]["phase"], "Pending");
    let err = Api::<Pod>::namespaced(api.client(), NS)
        .logs(&name, &LogParams::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("is waiting to start: ErrImagePull"),
        "{err}"
    );
}
