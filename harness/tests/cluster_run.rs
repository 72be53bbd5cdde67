//! `lab run --level cluster` end to end, against lab-cluster's API server
//! double served over real HTTP through a kubeconfig: the real `lab` binary
//! applies, waits, starts a Job whose shards are real `lab load` processes
//! (the double's kubelet runs them) sending to a real `lab serve`, reads
//! their logs, merges them, and tears down. What is asserted: the requests
//! it sent (verbs, paths, field manager, bodies), that every one is allowed by
//! deploy/rbac/lab-harness.yaml, the merged results against the simulator's
//! schedule, and the teardown on success, on a service that never becomes
//! Ready, and on Ctrl-C.

use lab_cluster::fake::{FakeApi, Recorded};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const IMAGE: &str = "lab:0.0.0-test-cpu";
const NS: &str = "lab-fidelity-steady";
/// The in-cluster address the load Job is given for the service.
const SERVICE_HOST: &str = "ranker-predictor.lab-fidelity-steady.svc.cluster.local";
/// fidelity-steady, cut to 8 s of 20 req/s after a 1 s warm-up.
const SHORTER: &[&str] = &[
    "--set",
    "run.duration=\"8s\"",
    "--set",
    "run.warmup=\"1s\"",
    "--set",
    "run.interval=\"2s\"",
    "--set",
    "traffic.0.phases.0.duration=\"8s\"",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Lines of a child's stream, delivered as they come.
struct Lines {
    rx: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn new(stream: impl std::io::Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// Blocks until a line containing `what` (or fails after `limit`).
    fn wait_for(&mut self, what: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(what) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {what:?}; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn rest(&mut self) -> String {
        while let Ok(line) = self.rx.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        self.seen.join("\n")
    }
}

/// A real `lab serve` emulating the scenario's GPU (5 ms a request), the
/// pods' stand-in: the double's pods for the InferenceService are objects,
/// the Job's pods are processes that send here.
struct Server {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("t4.json");
    std::fs::write(
        &profile,
        r#"{"format": "lab-calibration/v1", "model": "ranker", "device": "cpu", "gpu": "T4",
            "measured_on": "synthetic, for tests", "points": [
            {"batch_size": 1, "mean_seconds": 0.005, "p50_seconds": 0.005, "p99_seconds": 0.005, "samples": 1}]}"#,
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--http-port",
            "0",
            "--no-grpc",
        ])
        .arg("--emulate")
        .arg(&profile)
        .args(["--emulated-model", "ranker", "--max-batch-size", "1"])
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = Lines::new(child.stdout.take().unwrap());
    let listening = out.wait_for("listening", Duration::from_secs(60));
    let addr = listening
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http="))
        .expect("the http address")
        .to_string();
    out.wait_for("ready", Duration::from_secs(60));
    Server {
        child,
        addr,
        _dir: dir,
    }
}

fn fake(server: &Server) -> FakeApi {
    FakeApi::new()
        .with_node_pool("t4")
        .run_image(IMAGE, env!("CARGO_BIN_EXE_lab"))
        .route_host(SERVICE_HOST, &server.addr)
}

/// `lab run scenarios/fidelity-steady.toml --level cluster` (shortened) with
/// the double's kubeconfig; stderr is piped for the test to read.
fn lab_run(kubeconfig: &Path, out: &Path, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .args([
            "run",
            "scenarios/fidelity-steady.toml",
            "--level",
            "cluster",
        ])
        .args(["--image", IMAGE, "--shards", "2", "--no-report"])
        .arg("--out")
        .arg(out)
        .args(SHORTER)
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn results(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json written");
    serde_json::from_str(&text).unwrap()
}

/// The simulator's arrivals for the same file, overrides and seed: the
/// schedule the shards split between them.
fn sim_arrivals() -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args([
            "run",
            "scenarios/fidelity-steady.toml",
            "--no-report",
            "--out",
        ])
        .arg(dir.path().join("sim"))
        .args(SHORTER)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        o.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    results(&dir.path().join("sim"))["summary"]["requests"]["arrived"]
        .as_u64()
        .unwrap()
}

/// Every request falls inside the ClusterRole the README tells users to bind.
fn assert_allowed_by_the_role(requests: &[Recorded]) {
    let text = std::fs::read_to_string(repo().join("deploy/rbac/lab-harness.yaml")).unwrap();
    let role: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let allowed = lab_cluster::fake::rbac_rights(&role);
    for q in requests {
        let need = lab_cluster::fake::rbac_of(q);
        assert!(
            allowed.contains(&need),
            "{} {} needs {need:?}, which deploy/rbac/lab-harness.yaml does not grant",
            q.method,
            q.path
        );
    }
}

#[test]
fn a_run_applies_loads_from_shards_merges_and_tears_down() {
    let server = serve();
    // Ready a moment after the apply, so the wait watches for it.
    let api = fake(&server).isvc_ready_after(Duration::from_millis(1500));
    let served = api.spawn_thread().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = served.kubeconfig(dir.path()).unwrap();
    let out = dir.path().join("run");
    let mut child = lab_run(&kubeconfig, &out, &[]);
    let mut err = Lines::new(child.stderr.take().unwrap());
    err.wait_for("InferenceServices ready: 0/1", Duration::from_secs(60));
    err.wait_for("InferenceServices ready: 1/1", Duration::from_secs(60));
    err.wait_for("all 2 shard(s) listening", Duration::from_secs(60));
    err.wait_for("tearing down", Duration::from_secs(120));
    let status = child.wait().unwrap();
    let log = err.rest();
    assert_eq!(status.code(), Some(0), "{log}");

    let r = results(&out);
    assert_eq!(r["level"], "cluster");
    assert_eq!(r["complete"], true);
    // The shards split the simulator's schedule between them, exactly.
    let arrived = r["summary"]["requests"]["arrived"].as_u64().unwrap();
    assert_eq!(arrived, sim_arrivals());
    assert_eq!(
        r["summary"]["requests"]["completed"].as_u64().unwrap(),
        arrived,
        "{log}"
    );
    let shards = r["load"]["shards"].as_array().expect("load.shards");
    assert_eq!(shards.len(), 2);
    let by_shard: u64 = shards.iter().map(|s| s["arrived"].as_u64().unwrap()).sum();
    assert_eq!(by_shard, arrived);
    for s in shards {
        let (asked, sent) = (
            s["requested_rps"].as_f64().unwrap(),
            s["achieved_rps"].as_f64().unwrap(),
        );
        assert!(asked > 5.0 && (sent - asked).abs() < 1e-9, "{s}");
    }
    // From the cluster: two ready replicas (minReplicas) on the pool's node,
    // no cold start, and the node's cost at the scenario's price.
    let point = &r["timeseries"][0];
    assert_eq!(point["services"][0]["ready_replicas"], 2, "{point}");
    assert_eq!(point["node_pools"][0]["nodes"], 1);
    assert_eq!(r["cold_starts"]["count"], 0);
    let node_hours = r["cost"]["by_pool"][0]["node_hours"].as_f64().unwrap();
    let end = r["run"]["end_seconds"].as_f64().unwrap();
    assert!(
        (node_hours - end / 3600.0).abs() < 1e-9,
        "{node_hours} for {end} s"
    );
    assert!(r["run"]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n.as_str().unwrap().contains("merged exactly")));
    // Each shard's log is kept beside the results.
    assert!(out.join("shards/shard-1.log").exists());

    let requests = api.requests();
    let applies: Vec<&Recorded> = requests.iter().filter(|q| q.method == "PATCH").collect();
    assert!(applies.len() >= 8, "{} applies", applies.len());
    for q in &applies {
        assert_eq!(
            q.query.get("fieldManager").map(String::as_str),
            Some("lab"),
            "{}",
            q.path
        );
        assert_eq!(
            q.query.get("force").map(String::as_str),
            Some("true"),
            "{}",
            q.path
        );
        assert_eq!(
            q.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
    }
    let isvc = applies
        .iter()
        .find(|q| q.path.ends_with("/inferenceservices/ranker"))
        .expect("the InferenceService applied");
    assert_eq!(
        isvc.body.as_ref().unwrap()["spec"]["predictor"]["minReplicas"],
        2
    );
    let job = applies
        .iter()
        .find(|q| q.path.ends_with("/jobs/lab-load"))
        .expect("the Job");
    assert_eq!(job.body.as_ref().unwrap()["spec"]["completions"], 2);
    assert!(requests.iter().any(|q| q.method == "GET"
        && q.path.ends_with("/inferenceservices")
        && q.query
            .get("watch")
            .is_some_and(|w| w == "true" || w == "1")));
    let starts = requests
        .iter()
        .filter(|q| q.method == "POST" && q.path.ends_with(":9000/proxy/start"))
        .count();
    assert_eq!(starts, 2, "one start instant to each shard");
    assert!(requests
        .iter()
        .any(|q| q.path.ends_with("/log") && q.query.contains_key("limitBytes")));
    assert_allowed_by_the_role(&requests);

    // Everything applied was deleted again, the namespace last.
    let applied: BTreeSet<String> = api.applied_paths().into_iter().collect();
    let deleted = api.deleted_paths();
    assert_eq!(applied, deleted.iter().cloned().collect::<BTreeSet<_>>());
    assert!(
        deleted
            .last()
            .unwrap()
            .ends_with(&format!("/namespaces/{NS}")),
        "{deleted:?}"
    );
    served.stop();
}

#[test]
fn a_service_that_is_never_ready_fails_with_the_schedulers_reason_and_tears_down() {
    let server = serve();
    let api = fake(&server).never_ready("ranker");
    let served = api.spawn_thread().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = served.kubeconfig(dir.path()).unwrap();
    let mut child = lab_run(
        &kubeconfig,
        &dir.path().join("run"),
        &["--ready-timeout", "3s"],
    );
    let mut err = Lines::new(child.stderr.take().unwrap());
    let status = child.wait().unwrap();
    let log = err.rest();
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(log.contains("Insufficient nvidia.com/gpu"), "{log}");
    assert!(log.contains("ranker"), "{log}");
    let applied: BTreeSet<String> = api.applied_paths().into_iter().collect();
    assert!(
        !applied.iter().any(|p| p.contains("/jobs/")),
        "no load without a ready service"
    );
    let deleted: BTreeSet<String> = api.deleted_paths().into_iter().collect();
    assert_eq!(applied, deleted, "torn down after the failure");
    served.stop();
}

#[test]
fn ctrl_c_during_the_load_tears_down_and_writes_partial_results() {
    let server = serve();
    let api = fake(&server);
    let served = api.spawn_thread().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = served.kubeconfig(dir.path()).unwrap();
    let out = dir.path().join("run");
    let mut child = lab_run(&kubeconfig, &out, &[]);
    let mut err = Lines::new(child.stderr.take().unwrap());
    err.wait_for("all 2 shard(s) listening", Duration::from_secs(60));
    // The shards' processes, as the double's kubelet runs them.
    let shard_pids: Vec<u32> = api
        .objects()
        .keys()
        .filter(|p| p.contains("/pods/lab-load-"))
        .filter_map(|p| api.pod_pid(p))
        .collect();
    assert_eq!(shard_pids.len(), 2);
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let log = err.rest();
    assert_eq!(status.code(), Some(130), "{log}");
    let r = results(&out);
    assert_eq!(r["complete"], false);
    assert_eq!(r["level"], "cluster");
    let applied: BTreeSet<String> = api.applied_paths().into_iter().collect();
    assert!(applied.iter().any(|p| p.contains("/jobs/lab-load")));
    let deleted: BTreeSet<String> = api.deleted_paths().into_iter().collect();
    assert_eq!(applied, deleted, "everything applied was deleted");
    for pid in shard_pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "shard process {pid} outlived its Job"
        );
    }
    served.stop();
}

#[test]
fn what_the_teardown_cannot_delete_is_named_and_fails_the_run() {
    let server = serve();
    let api = fake(&server).never_ready("ranker");
    let served = api.spawn_thread().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = served.kubeconfig(dir.path()).unwrap();
    let mut child = lab_run(
        &kubeconfig,
        &dir.path().join("run"),
        &["--ready-timeout", "3s"],
    );
    let mut err = Lines::new(child.stderr.take().unwrap());
    // Once applied, the PodDisruptionBudget can no longer be deleted.
    err.wait_for("InferenceServices ready: 0/1", Duration::from_secs(60));
    let pdb = api
        .applied_paths()
        .into_iter()
        .find(|p| p.contains("/poddisruptionbudgets/"))
        .expect("a PodDisruptionBudget applied");
    api.fail(&pdb, 403);
    let status = child.wait().unwrap();
    let log = err.rest();
    assert_eq!(status.code(), Some(3), "{log}");
    assert!(
        log.contains("could not delete PodDisruptionBudget"),
        "{log}"
    );
    assert!(log.contains("1 object(s) are left in the cluster"), "{log}");
    assert!(
        log.contains(&format!("kubectl delete namespace {NS}")),
        "{log}"
    );
    // Everything else went.
    let deleted: BTreeSet<String> = api.deleted_paths().into_iter().collect();
    let applied: BTreeSet<String> = api.applied_paths().into_iter().collect();
    let left: Vec<&String> = applied.difference(&deleted).collect();
    assert_eq!(left, [&pdb]);
    served.stop();
}
