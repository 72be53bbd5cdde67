//! End-to-end runs of `lab run --level cluster` on a real cluster: kind with
//! the stack (`lab cluster up --kind`), or any cluster the kubeconfig names.
//! Ignored in normal runs (no cluster can run where the tests normally do);
//! on a machine with the cluster up and the image loaded into it:
//!
//! ```sh
//! LAB_IMAGE=lab:0.1.0-<commit>-cpu LAB_KUBE_CONTEXT=kind-lab \
//!   cargo test -p lab-harness --test cluster_kind -- --ignored --test-threads 1 --nocapture
//! ```
//!
//! `LAB_IMAGE` (required) is the tag `deploy/image/build.sh` printed, loaded
//! into the cluster's nodes; `LAB_KUBE_CONTEXT` (optional) the kubeconfig
//! context, else the current one; `LAB_E2E_SET` (optional) extra `--set`
//! overrides separated by `;`, given to both levels alike, for a laptop too
//! small for the scenarios' pod requests (docs/cluster.md). `kubectl` must be
//! on `PATH`. Each test takes the scenario's length in real time and more
//! (scale-to-zero 40 min, spike 30 min, plus start-up and teardown).
//!
//! Each test first simulates the scenario (same file, seed and overrides),
//! then runs it on the cluster with `--json`, and asserts:
//! - `lab` exits 0 or 1 (the SLO verdicts are the cluster's to give), the
//!   results say `level: "cluster"` and `complete: true`;
//! - arrivals equal the simulator's, and the per-shard arrivals add up to
//!   them (both levels replay one schedule for the seed);
//! - the merged `load` section has one entry per shard, in shard order, each
//!   having sent within 1 % of what it was asked to (scale-to-zero with
//!   `--shards 2`, spike with the default, two for its 2,000 req/s peak);
//! - scale-to-zero: cold starts were seen, their mean phases add up to their
//!   mean duration (within 2 s or 10 %), the service went down to zero ready
//!   and desired replicas after having been up, and the KPA scaled it both to
//!   and from zero;
//! - spike: more replicas were ready at the peak than `minReplicas`, and the
//!   HPA scaled up;
//! - afterwards nothing labelled `app.kubernetes.io/part-of=lab` is left in
//!   the run's namespace (`kubectl get all,cm,sa -l ...`), once what the
//!   teardown deleted has finished going (waited on with `kubectl wait
//!   --for=delete`, which watches).

mod common;

use lab_results::{Level, Results};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Beyond the scenario's own length: waiting for readiness (10 min at most
/// at the cluster level), cold starts, the shards' start, teardown.
const RUN_SLACK: Duration = Duration::from_secs(30 * 60);
/// How long an interrupted `lab` gets to tear down before it is killed.
const TEARDOWN_GRACE: Duration = Duration::from_secs(5 * 60);
/// Label every object `lab deploy` renders carries.
const PART_OF: &str = "app.kubernetes.io/part-of=lab";

/// What the environment says about the cluster under test.
struct Env {
    image: String,
    context: Option<String>,
    overrides: Vec<String>,
}

fn env() -> Env {
    let image = std::env::var("LAB_IMAGE").unwrap_or_default();
    assert!(
        !image.trim().is_empty(),
        "LAB_IMAGE is not set: build the image and load it into the cluster first, e.g.\n  \
         IMAGE=$(deploy/image/build.sh --binary target/release/lab | tail -n1)\n  \
         kind load docker-image \"$IMAGE\" --name lab   # or: lab cluster up --kind --image \"$IMAGE\"\n\
         then run with LAB_IMAGE=\"$IMAGE\" (docs/cluster.md)"
    );
    let context = std::env::var("LAB_KUBE_CONTEXT")
        .ok()
        .filter(|c| !c.trim().is_empty());
    let overrides = std::env::var("LAB_E2E_SET")
        .unwrap_or_default()
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let kubectl = Command::new("kubectl")
        .args(["version", "--client"])
        .output();
    assert!(
        kubectl.is_ok_and(|o| o.status.success()),
        "kubectl is not on PATH: the test reads what the run left behind with it"
    );
    Env {
        image: image.trim().to_string(),
        context,
        overrides,
    }
}

fn set_args(overrides: &[String]) -> Vec<String> {
    overrides
        .iter()
        .flat_map(|o| ["--set".to_string(), o.clone()])
        .collect()
}

/// The scenario at the sim level: the arrivals the cluster run must match.
fn simulate(scenario: &str, env: &Env, dir: &Path) -> Results {
    let out = dir.join("sim");
    let mut args: Vec<String> = vec![
        "run".into(),
        scenario.into(),
        "--out".into(),
        out.display().to_string(),
        "--json".into(),
        "--no-report".into(),
    ];
    args.extend(set_args(&env.overrides));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = common::lab(&args);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "the simulation of {scenario} failed: {}",
        common::stderr(&o)
    );
    read_results(&out.join("results.json"))
}

fn read_results(path: &Path) -> Results {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The scenario on the cluster, its stdout to `out` + `.stdout.json`;
/// progress goes to the test's stderr.
fn run_on_cluster(
    scenario: &str,
    namespace: &str,
    shards: Option<u32>,
    env: &Env,
    out: &Path,
    limit: Duration,
) -> ExitStatus {
    let mut args: Vec<String> = vec![
        "run".into(),
        scenario.into(),
        "--level".into(),
        "cluster".into(),
        "--image".into(),
        env.image.clone(),
        "--namespace".into(),
        namespace.into(),
        "--out".into(),
        out.display().to_string(),
        "--json".into(),
    ];
    if let Some(ctx) = &env.context {
        args.extend(["--context".into(), ctx.clone()]);
    }
    if let Some(n) = shards {
        args.extend(["--shards".into(), n.to_string()]);
    }
    args.extend(set_args(&env.overrides));
    let stdout_path = out.with_extension("stdout.json");
    let stdout = std::fs::File::create(&stdout_path).expect("creating the stdout file");
    eprintln!("+ lab {}", args.join(" "));
    let child = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(&args)
        .current_dir(common::repo())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .expect("lab starts");
    wait_bounded(child, limit)
}

/// Waits for `lab` up to `limit`; past it, interrupts it (so it tears down,
/// as on Ctrl-C), gives it `TEARDOWN_GRACE`, and fails the test.
fn wait_bounded(mut child: Child, limit: Duration) -> ExitStatus {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(limit) {
        Ok(status) => status.expect("waiting for lab"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
            let ended = rx.recv_timeout(TEARDOWN_GRACE);
            if ended.is_err() {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            panic!(
                "lab run --level cluster was still running after {:.0} min; it was interrupted{}",
                limit.as_secs_f64() / 60.0,
                if ended.is_ok() {
                    " and exited"
                } else {
                    ", did not exit, and was killed: the namespace may hold what it applied"
                }
            );
        }
    }
}

fn kubectl(env: &Env, args: &[&str]) -> Output {
    let mut cmd = Command::new("kubectl");
    if let Some(ctx) = &env.context {
        cmd.args(["--context", ctx]);
    }
    cmd.args(args).output().expect("kubectl runs")
}

/// What is labelled as lab's in `namespace`, as `kind/name`.
fn leftovers(env: &Env, namespace: &str) -> Vec<String> {
    let o = kubectl(
        env,
        &[
            "get",
            "all,cm,sa",
            "-l",
            PART_OF,
            "-n",
            namespace,
            "-o",
            "name",
        ],
    );
    assert!(
        o.status.success(),
        "kubectl get in {namespace}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Nothing of the run is left once the deletions it asked for are through:
/// owned objects (ReplicaSets, pods) go after their owners, so what is still
/// listed is waited on (a watch, through `kubectl wait --for=delete`) and the
/// namespace listed again.
fn assert_torn_down(env: &Env, namespace: &str) {
    for _ in 0..3 {
        let left = leftovers(env, namespace);
        if left.is_empty() {
            return;
        }
        let mut args = vec!["wait", "--for=delete", "--timeout=180s", "-n", namespace];
        args.extend(left.iter().map(String::as_str));
        let o = kubectl(env, &args);
        if !o.status.success() {
            panic!(
                "still in {namespace} 3 minutes after the run: {}\n{}",
                left.join(", "),
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    let left = leftovers(env, namespace);
    assert!(
        left.is_empty(),
        "the run left {} in {namespace}",
        left.join(", ")
    );
}

/// Where a test's runs go, kept afterwards for a look (`lab compare
/// DIR/sim/results.json DIR/cluster/results.json`); emptied first.
fn work_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("cluster_kind")
        .join(name);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("emptying {}: {e}", dir.display()),
    }
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    eprintln!("runs of this test go to {}", dir.display());
    dir
}

/// What both scenarios assert alike; returns the cluster's results.
/// `shards` is given as `--shards` when `explicit`, else it is the number
/// `lab` should choose by itself.
fn checked_run(scenario: &str, namespace: &str, shards: u32, explicit: bool) -> Results {
    let env = env();
    let dir = work_dir(namespace);
    let sim = simulate(scenario, &env, &dir);
    let out = dir.join("cluster");
    let limit = Duration::from_secs_f64(sim.run.duration_seconds) + RUN_SLACK;
    let status = run_on_cluster(
        scenario,
        namespace,
        explicit.then_some(shards),
        &env,
        &out,
        limit,
    );
    // Teardown is checked first: it must hold whatever the run's outcome.
    assert_torn_down(&env, namespace);
    assert!(
        matches!(status.code(), Some(0 | 1)),
        "lab run --level cluster exited {status} (0 or 1 expected; see its output above)"
    );
    let r = read_results(&out.join("results.json"));
    // With --json, stdout is results.json itself.
    let printed = read_results(&out.with_extension("stdout.json"));
    assert_eq!(
        printed.summary, r.summary,
        "--json printed other results than it wrote"
    );
    assert_eq!(r.level, Level::Cluster);
    assert!(r.complete, "the run was cut short");
    assert_eq!(r.seed, sim.seed);
    assert_eq!(
        r.summary.requests.arrived, sim.summary.requests.arrived,
        "the cluster's shards replayed another schedule than the simulator's"
    );

    let load = r.load.as_ref().expect("a cluster run has a load section");
    assert_eq!(
        load.shards.len(),
        shards as usize,
        "one load entry per shard: {:?}",
        load.shards
    );
    for (i, s) in load.shards.iter().enumerate() {
        assert_eq!(s.shard, format!("{i}/{shards}"));
        assert!(s.requested_rps > 0.0, "shard {i} was given nothing to send");
        assert!(
            (s.requested_rps - s.achieved_rps).abs() <= 0.01 * s.requested_rps,
            "shard {i} sent {:.2} req/s of the {:.2} it was asked (send lag p99 {:.4} s)",
            s.achieved_rps,
            s.requested_rps,
            s.send_lag_p99_seconds
        );
    }
    assert_eq!(
        load.shards.iter().map(|s| s.arrived).sum::<u64>(),
        r.summary.requests.arrived,
        "the shards' arrivals do not add up to the merged count"
    );
    r
}

#[test]
#[ignore = "needs a cluster with the stack (lab cluster up --kind) and LAB_IMAGE loaded into it"]
fn scale_to_zero_cold_starts_on_the_cluster() {
    // Its 60 req/s peak would get one shard by default: two make it a merge.
    let r = checked_run(
        "scenarios/scale-to-zero.toml",
        "lab-e2e-scale-to-zero",
        2,
        true,
    );
    let service = "sentiment";

    let cs = &r.cold_starts;
    assert!(cs.count > 0, "no cold start was seen");
    let p = &cs.phases_seconds;
    let phases = p.node_provisioning + p.image_pull + p.model_load + p.readiness;
    let mean = cs.duration_seconds.mean;
    // Pod condition timestamps have 1 s resolution.
    assert!(
        (phases - mean).abs() <= f64::max(2.0, 0.1 * mean),
        "cold-start phases add up to {phases:.1} s, their mean duration is {mean:.1} s: {p:?}"
    );

    // Down to zero after having been up: the KPA's scale-to-zero, not the start.
    let points: Vec<(u32, u32)> = r
        .timeseries
        .iter()
        .filter_map(|t| t.services.iter().find(|s| s.name == service))
        .map(|s| (s.desired_replicas, s.ready_replicas))
        .collect();
    let first_up = points.iter().position(|&(_, ready)| ready > 0);
    assert!(
        first_up.is_some_and(|i| points[i..].contains(&(0, 0))),
        "{service} never went back to zero ready and desired replicas: {points:?}"
    );

    let kpa: Vec<_> = r
        .scaling_events
        .iter()
        .filter(|e| e.target == service && e.autoscaler == "kpa")
        .collect();
    assert!(
        kpa.iter().any(|e| e.to == 0) && kpa.iter().any(|e| e.from == 0 && e.to > 0),
        "the KPA did not scale {service} both to and from zero: {:?}",
        r.scaling_events
    );
}

#[test]
#[ignore = "needs a cluster with the stack (lab cluster up --kind) and LAB_IMAGE loaded into it"]
fn spike_scales_out_on_the_cluster() {
    // The default: one shard per 1,000 req/s of the 2,000 req/s peak.
    let r = checked_run("scenarios/spike.toml", "lab-e2e-spike", 2, false);
    let service = "resnet";

    let min_replicas = r.scenario.config["services"][0]["minReplicas"]
        .as_u64()
        .expect("the scenario's echo has minReplicas") as u32;
    let s = r
        .services
        .iter()
        .find(|s| s.name == service)
        .expect("the service's summary");
    assert!(
        s.replicas.max_ready > min_replicas,
        "{service} never had more than its {min_replicas} minReplicas ready: {:?}",
        s.replicas
    );
    assert!(
        r.scaling_events
            .iter()
            .any(|e| e.target == service && e.autoscaler == "hpa" && e.to > e.from),
        "the HPA never scaled {service} up (an HPA on a Pods metric needs a custom metrics \
         adapter: docs/cluster.md): {:?}",
        r.scaling_events
    );
}
