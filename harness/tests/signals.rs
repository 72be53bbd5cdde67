//! Ctrl-C and SIGTERM as `lab run`, `lab load` and `lab serve` meet them: the
//! first signal stops gracefully (partial results, a drain) and exits 130 or 143,
//! a second one exits at once even while the first stop is still under way.
//!
//! Every wait is for an event (a line on a pipe, a request reaching a server, a
//! metric), never a fixed sleep; the only timing asserted is the bound the issue
//! asks for: a second signal ends the process within a second.

mod common;
use common::repo;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// Lines of a child's pipe, read on a thread of their own.
struct Lines {
    rx: Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn new(pipe: impl Read + Send + 'static) -> Self {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
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

    /// The first line (from now on) containing `text`; panics after `within`.
    fn wait_for(&mut self, text: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with `{text}` within {within:?}; so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }
}

fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{signal} failed");
}

/// Waits for the child to exit, at most `within`; its exit code and how long it took.
fn exit_within(child: &mut Child, within: Duration) -> (Option<i32>, Duration) {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), t0.elapsed());
        }
        if t0.elapsed() > within {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running {within:?} after the signal");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `lab run` on a long scenario, stopped by `signal` once its first progress
/// line shows it under way: the exit code and the partial results.
fn interrupted_run(signal: &str) -> (Option<i32>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("partial");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args([
            "run",
            "scenarios/diurnal-cost.toml",
            "--no-report",
            "--progress",
            "always",
            "--out",
        ])
        .arg(&out)
        .current_dir(repo())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = Lines::new(child.stderr.take().unwrap());
    // A progress line: the run is under way, its handlers installed.
    err.wait_for("simulated", Duration::from_secs(60));
    kill(&child, signal);
    let (code, _) = exit_within(&mut child, Duration::from_secs(60));
    let v = read_json(&out.join("results.json"));
    assert_eq!(v["complete"], false, "{}", err.seen.join("\n"));
    assert!(
        v["run"]["end_seconds"].as_f64().unwrap() < v["run"]["duration_seconds"].as_f64().unwrap()
    );
    let req = &v["summary"]["requests"];
    assert_eq!(
        req["arrived"].as_u64().unwrap(),
        req["completed"].as_u64().unwrap()
            + req["failed"].as_u64().unwrap()
            + req["in_flight"].as_u64().unwrap(),
        "requests are conserved in partial results"
    );
    (code, v)
}

#[test]
fn sigterm_writes_partial_results_and_exits_143() {
    assert_eq!(interrupted_run("TERM").0, Some(143));
}

#[test]
fn ctrl_c_writes_partial_results_and_exits_130() {
    assert_eq!(interrupted_run("INT").0, Some(130));
}

/// A server that accepts connections and reads requests but never answers,
/// so `lab load`'s drain after the first signal waits on them. Each request's
/// arrival is reported on the channel.
fn silent_server() -> (String, Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || hold(conn, tx));
        }
    });
    (url, rx)
}

fn hold(conn: TcpStream, arrived: std::sync::mpsc::Sender<()>) {
    let mut input = BufReader::new(conn);
    let mut line = String::new();
    loop {
        line.clear();
        match input.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => {
                let _ = arrived.send(());
            }
            Ok(_) => {}
        }
    }
}

fn load_against(url: &str, out: &Path, timeout: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .args([
            "load",
            "--target",
            url,
            "--protocol",
            "http",
            "--rate",
            "20",
            "--duration",
            "60s",
            "--timeout",
            timeout,
            "--output",
        ])
        .arg(out)
        .current_dir(repo())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn second_sigint_ends_load_at_once_during_its_drain() {
    let (url, arrived) = silent_server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    // The drain after the first signal waits up to --timeout for the unanswered requests.
    let mut child = load_against(&url, &out, "60s");
    let mut err = Lines::new(child.stderr.take().unwrap());
    arrived
        .recv_timeout(Duration::from_secs(30))
        .expect("a request reaches the server");
    kill(&child, "INT");
    err.wait_for("exits at once", Duration::from_secs(10));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first Ctrl-C waits for the in-flight requests"
    );
    kill(&child, "INT");
    let (code, took) = exit_within(&mut child, Duration::from_secs(10));
    assert_eq!(code, Some(130), "{}", err.seen.join("\n"));
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert!(!out.exists(), "an immediate exit writes no results");
}

#[test]
fn sigterm_drains_load_and_exits_143_with_partial_results() {
    let (url, arrived) = silent_server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let mut child = load_against(&url, &out, "1s");
    let mut err = Lines::new(child.stderr.take().unwrap());
    arrived
        .recv_timeout(Duration::from_secs(30))
        .expect("a request reaches the server");
    kill(&child, "TERM");
    let (code, _) = exit_within(&mut child, Duration::from_secs(30));
    err.seen.extend(err.rx.try_iter());
    assert_eq!(code, Some(143), "{}", err.seen.join("\n"));
    let v = read_json(&out);
    assert_eq!(v["complete"], false);
}

/// An HTTP/1.1 request on its own connection; the answer is never read.
fn send_infer(addr: &str) -> TcpStream {
    let body =
        r#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}"#;
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST /v2/models/iris/infer HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    s
}

/// `GET path` on a fresh connection; the body of the answer.
fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

#[test]
fn second_sigterm_ends_serve_at_once_during_its_drain() {
    let dir = tempfile::tempdir().unwrap();
    // Every batch takes 30 s on the emulated GPU: the request below stays in flight.
    let profile = dir.path().join("slow.json");
    std::fs::write(
        &profile,
        r#"{"format": "lab-calibration/v1", "model": "iris", "device": "cpu", "gpu": "cpu",
            "measured_on": "synthetic, for tests", "points": [
            {"batch_size": 1, "mean_seconds": 30, "p50_seconds": 30, "p99_seconds": 30, "samples": 1},
            {"batch_size": 32, "mean_seconds": 30, "p50_seconds": 30, "p99_seconds": 30, "samples": 1}]}"#,
    )
    .unwrap();
    let model = repo().join("predictor/models/iris.onnx");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--http-port",
            "0",
            "--no-grpc",
        ])
        .arg("--model")
        .arg(format!("iris={}", model.display()))
        .arg("--emulate")
        .arg(&profile)
        .args(["--grace-period-secs", "60"])
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = Lines::new(child.stdout.take().unwrap());
    let mut err = Lines::new(child.stderr.take().unwrap());
    let listening = out.wait_for("listening", Duration::from_secs(60));
    let addr = listening
        .split_whitespace()
        .find_map(|w| w.strip_prefix("http="))
        .expect("the http address")
        .to_string();
    // Needs ONNX Runtime (scripts/install-test-deps.sh), as the predictor's own tests do.
    out.wait_for("ready", Duration::from_secs(60));
    let _held = send_infer(&addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !get(&addr, "/metrics").contains("lab_predictor_inflight_requests{model=\"iris\"} 1") {
        assert!(Instant::now() < deadline, "the request never got in flight");
        std::thread::sleep(Duration::from_millis(10));
    }
    kill(&child, "TERM");
    err.wait_for("exits at once", Duration::from_secs(10));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first SIGTERM drains the in-flight request"
    );
    kill(&child, "TERM");
    let (code, took) = exit_within(&mut child, Duration::from_secs(10));
    assert_eq!(code, Some(143), "{}", err.seen.join("\n"));
    assert!(took < Duration::from_secs(1), "took {took:?}");
}
