//! The supervisor with real processes: `fake-pod` (src/bin/fake-pod.rs) stands
//! in for `lab serve`; it answers `/v2/health/ready` after a delay, and can
//! ignore SIGTERM.

mod common;
use common::alive;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab_local::{free_port, BackOffPolicy, Lifecycle, Phase, PodEvent, PodSpec, Supervisor};
use tokio::sync::mpsc::UnboundedReceiver;

const FAKE_POD: &str = env!("CARGO_BIN_EXE_fake-pod");
/// Upper bound for anything a test awaits; every test finishes far sooner.
const DEADLINE: Duration = Duration::from_secs(20);

fn pod(name: &str, flags: &[&str]) -> PodSpec {
    let port = free_port().unwrap();
    let mut args: Vec<std::ffi::OsString> = vec!["--port".into(), port.to_string().into()];
    args.extend(flags.iter().map(Into::into));
    PodSpec {
        name: name.into(),
        program: FAKE_POD.into(),
        args,
        env: Vec::new(),
        port,
        readiness_path: "/v2/health/ready".into(),
        log: None,
    }
}

fn lifecycle(period_ms: u64, grace_ms: u64) -> Lifecycle {
    Lifecycle {
        provisioning: Duration::ZERO,
        image_pull: Duration::ZERO,
        readiness_period: Duration::from_millis(period_ms),
        probe_timeout: Duration::from_secs(1),
        failure_threshold: 3,
        grace_period: Duration::from_millis(grace_ms),
    }
}

async fn next_event(events: &mut UnboundedReceiver<PodEvent>) -> PodEvent {
    tokio::time::timeout(DEADLINE, events.recv())
        .await
        .expect("an event within the deadline")
        .expect("the supervisor is alive")
}

/// Live processes whose process group is `pgid`.
fn group_members(pgid: i32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        // After the name: state, ppid, pgrp.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(2).and_then(|g| g.parse::<i32>().ok()) == Some(pgid) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// The death of processes we are not the parent of sends us nothing: poll
/// /proc, bounded, until none of `pids` and no member of `pgid` is alive.
fn assert_all_gone(pgid: i32, pids: &[u32]) {
    let began = Instant::now();
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        let group = group_members(pgid);
        if left.is_empty() && group.is_empty() {
            return;
        }
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "processes left behind: pids {left:?}, group {pgid} members {group:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_pod_becomes_ready_and_the_event_fires_with_measured_phases() {
    let (sup, mut events) = Supervisor::new(BackOffPolicy::default()).unwrap();
    let lc = Lifecycle {
        provisioning: Duration::from_millis(150),
        image_pull: Duration::from_millis(100),
        ..lifecycle(50, 1000)
    };
    let mut handle = sup
        .start(pod("p0", &["--ready-after-ms", "300"]), lc)
        .unwrap();
    let created = handle.record().created;

    let PodEvent::Ready { pod, at } = next_event(&mut events).await else {
        panic!("the first event is Ready")
    };
    assert_eq!(pod, "p0");
    assert_eq!(handle.ready().await.unwrap(), at);

    let r = handle.record();
    assert_eq!(r.phase, Phase::Ready);
    assert!(r.provisioning >= lc.provisioning, "{:?}", r.provisioning);
    assert!(r.image_pull >= lc.image_pull, "{:?}", r.image_pull);
    let spawned = r.starts[0].spawned;
    assert!(spawned - created >= lc.provisioning + lc.image_pull);
    // Ready no sooner than the pod says, and by the first probe after that.
    let to_ready = r.start_to_ready().unwrap();
    assert!(to_ready >= Duration::from_millis(300), "{to_ready:?}");
    assert!(
        to_ready < Duration::from_millis(300) + lc.readiness_period + Duration::from_millis(500),
        "{to_ready:?}"
    );
    assert_eq!(r.restarts, 0);
    sup.shutdown().await;
}

#[tokio::test]
async fn a_ready_pod_is_not_ready_after_failure_threshold_failed_probes() {
    let (sup, mut events) = Supervisor::new(BackOffPolicy::default()).unwrap();
    let lc = lifecycle(50, 1000);
    let h = sup
        .start(pod("flaky", &["--unready-after-ms", "400"]), lc)
        .unwrap();
    let PodEvent::Ready { .. } = next_event(&mut events).await else {
        panic!("the first event is Ready")
    };
    let PodEvent::NotReady { at, .. } = next_event(&mut events).await else {
        panic!("then NotReady")
    };
    let r = h.record();
    assert_eq!(r.phase, Phase::Starting);
    // Three failed probes, 50 ms apart, the first one after 400 ms.
    let since_spawn = at - r.starts[0].spawned;
    assert!(
        since_spawn >= Duration::from_millis(400) + 2 * lc.readiness_period,
        "{since_spawn:?}"
    );
    sup.shutdown().await;
}

#[tokio::test]
async fn sigterm_honours_the_grace_period_then_sigkill() {
    let (sup, _events) = Supervisor::new(BackOffPolicy::default()).unwrap();
    let grace = Duration::from_millis(600);
    let mut stubborn = sup
        .start(
            pod("stubborn", &["--ignore-sigterm"]),
            lifecycle(20, grace.as_millis() as u64),
        )
        .unwrap();
    // A prompt pod with a long grace period: it must not be waited on.
    let mut prompt = sup
        .start(pod("prompt", &[]), lifecycle(20, 20_000))
        .unwrap();
    stubborn.ready().await.unwrap();
    prompt.ready().await.unwrap();

    sup.terminate("stubborn").unwrap();
    sup.terminate("prompt").unwrap();
    let t = tokio::time::timeout(DEADLINE, stubborn.terminated())
        .await
        .unwrap()
        .unwrap();
    assert!(t.killed);
    assert!(
        t.exited - t.signalled >= grace,
        "{:?}",
        t.exited - t.signalled
    );
    assert_eq!(t.exit.as_deref(), Some("signal: 9 (SIGKILL)"));
    assert_eq!(stubborn.record().phase, Phase::Terminated);

    let t = tokio::time::timeout(DEADLINE, prompt.terminated())
        .await
        .unwrap()
        .unwrap();
    assert!(!t.killed);
    assert!(
        t.exited - t.signalled < Duration::from_secs(2),
        "{:?}",
        t.exited - t.signalled
    );
    assert_eq!(t.exit.as_deref(), Some("signal: 15 (SIGTERM)"));
}

#[tokio::test]
async fn a_killed_pod_is_restarted_with_crash_loop_back_off_and_counted() {
    let policy = BackOffPolicy::default().scaled(20.0); // 500 ms, 1 s, ...
    let (sup, mut events) = Supervisor::new(policy).unwrap();
    let mut h = sup.start(pod("crashy", &[]), lifecycle(20, 1000)).unwrap();

    let mut expected_delays = vec![Duration::ZERO, policy.initial];
    for (i, expected) in expected_delays.drain(..).enumerate() {
        h.ready().await.unwrap();
        let pid = h.record().pid().unwrap();
        // SAFETY: kill(2) on our own pod.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
        let crash = loop {
            match next_event(&mut events).await {
                PodEvent::Ready { .. } => continue,
                e => break e,
            }
        };
        let PodEvent::Crashed {
            pod,
            exit,
            restarts,
            restart_in,
            ..
        } = crash
        else {
            panic!("expected Crashed, got {crash:?}")
        };
        assert_eq!(pod, "crashy");
        assert_eq!(exit, "signal: 9 (SIGKILL)");
        assert_eq!(restarts, i as u32 + 1);
        assert_eq!(restart_in, expected);
    }
    h.ready().await.unwrap();
    let r = h.record();
    assert_eq!(r.restarts, 2);
    assert_eq!(r.starts.len(), 3);
    let pids: Vec<u32> = r.starts.iter().map(|s| s.pid).collect();
    assert!(pids[0] != pids[1] && pids[1] != pids[2], "{pids:?}");
    // The second restart waited out the back-off after the second crash.
    let gap = r.starts[2].spawned - r.starts[1].exited.unwrap();
    assert!(gap >= policy.initial, "{gap:?}");
    sup.shutdown().await;
}

#[tokio::test]
async fn dropping_the_supervisor_leaves_no_process() {
    let (sup, _events) = Supervisor::new(BackOffPolicy::default()).unwrap();
    let mut handles: Vec<_> = (0..3)
        .map(|i| {
            sup.start(
                pod(&format!("p{i}"), &["--ignore-sigterm"]),
                lifecycle(20, 30_000),
            )
            .unwrap()
        })
        .collect();
    for h in &mut handles {
        h.ready().await.unwrap();
    }
    let pgid = sup.pgid().unwrap();
    let pids: Vec<u32> = handles.iter().map(|h| h.record().pid().unwrap()).collect();
    let mut members = group_members(pgid);
    members.sort();
    let mut sorted = pids.clone();
    sorted.sort();
    assert_eq!(members, sorted, "every pod in the supervisor's one group");
    drop(sup);
    assert_all_gone(pgid, &pids);
}

/// Runs only as a child of the tests below (LAB_LOCAL_HELPER set): starts two
/// pods, prints `PIDS pgid pid pid`, then panics or waits to be killed.
#[tokio::test]
async fn helper_parent() {
    let Ok(mode) = std::env::var("LAB_LOCAL_HELPER") else {
        return;
    };
    let (sup, _events) = Supervisor::new(BackOffPolicy::default()).unwrap();
    let mut handles: Vec<_> = (0..2)
        .map(|i| {
            sup.start(
                pod(&format!("h{i}"), &["--ignore-sigterm"]),
                lifecycle(20, 30_000),
            )
            .unwrap()
        })
        .collect();
    for h in &mut handles {
        h.ready().await.unwrap();
    }
    let pids: Vec<String> = handles
        .iter()
        .map(|h| h.record().pid().unwrap().to_string())
        .collect();
    println!("PIDS {} {}", sup.pgid().unwrap(), pids.join(" "));
    if mode == "panic" {
        panic!("the parent panics with its pods running");
    }
    std::future::pending::<()>().await;
}

/// Starts `helper_parent` in a child test process; returns it and the pgid and
/// pids it printed.
fn spawn_helper(mode: &str) -> (std::process::Child, i32, Vec<u32>) {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    // The helper dies of SIGTERM and SIGINT as a parent without handlers does,
    // however this test was started: a shell runs background jobs with SIGINT
    // ignored, and an ignored signal stays ignored across exec.
    // SAFETY: signal(2) is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd
        .args([
            "--exact",
            "helper_parent",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LAB_LOCAL_HELPER", mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let line = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        // libtest's "test helper_parent ... " precedes it on the same line.
        .find_map(|l| l.split_once("PIDS ").map(|(_, nums)| nums.to_string()))
        .expect("the helper prints its pods' pids");
    let mut nums = line.split_whitespace();
    let pgid = nums.next().unwrap().parse().unwrap();
    let pids = nums.map(|p| p.parse().unwrap()).collect::<Vec<u32>>();
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|p| alive(*p)));
    (child, pgid, pids)
}

#[test]
fn a_panic_in_the_parent_leaves_no_process() {
    let (mut child, pgid, pids) = spawn_helper("panic");
    let status = child.wait().unwrap();
    assert!(!status.success(), "the helper test panicked");
    assert_all_gone(pgid, &pids);
}

#[test]
fn sigkill_of_the_parent_leaves_no_process() {
    let (mut child, pgid, pids) = spawn_helper("wait");
    child.kill().unwrap(); // SIGKILL: no destructor runs, PR_SET_PDEATHSIG must act
    child.wait().unwrap();
    assert_all_gone(pgid, &pids);
}

/// SIGTERM and Ctrl-C's SIGINT, which a parent without handlers dies of.
#[test]
fn sigterm_or_sigint_of_the_parent_leaves_no_process() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let (mut child, pgid, pids) = spawn_helper("wait");
        // SAFETY: kill(2) on our own child.
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        child.wait().unwrap();
        assert_all_gone(pgid, &pids);
    }
}

#[tokio::test]
async fn a_missing_program_fails_the_pod_with_its_name() {
    let (sup, mut events) = Supervisor::new(BackOffPolicy::default()).unwrap();
    let mut spec = pod("nope", &[]);
    spec.program = "/nonexistent/lab".into();
    let mut h = sup.start(spec, lifecycle(20, 1000)).unwrap();
    let err = h.ready().await.unwrap_err().to_string();
    assert_eq!(
        err,
        "pod nope failed: could not start /nonexistent/lab: No such file or directory (os error 2)"
    );
    assert!(matches!(
        next_event(&mut events).await,
        PodEvent::Failed { .. }
    ));
}
