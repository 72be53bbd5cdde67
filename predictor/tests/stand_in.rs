//! The built-in stand-in model (`--emulated-model`) and the emulated model load
//! (`--model-load-secs`), against the real `lab-predictor` binary on 127.0.0.1.
//! ONNX Runtime is made unfindable (`ORT_DYLIB_PATH` names a missing file), so
//! these run where it is not installed and prove the stand-in never loads it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use lab_predictor::grpc::pb;
use pb::grpc_inference_service_client::GrpcInferenceServiceClient;
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_lab-predictor");
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A deterministic profile: every batch of up to 32 rows holds for `seconds`.
fn profile(dir: &tempfile::TempDir, seconds: f64) -> String {
    let path = dir.path().join("profile.json");
    let points: Vec<Value> = [1, 32]
        .iter()
        .map(|b| {
            json!({"batch_size": b, "mean_seconds": seconds, "p50_seconds": seconds,
                   "p99_seconds": seconds, "samples": 1})
        })
        .collect();
    let text = json!({"format": "lab-calibration/v1", "model": "stand-in", "device": "cpu",
                      "gpu": "T4", "points": points, "distribution": {"kind": "deterministic"}});
    std::fs::write(&path, text.to_string()).unwrap();
    path.display().to_string()
}

/// `lab-predictor serve` with ONNX Runtime out of reach.
fn command(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "serve",
        "--host",
        "127.0.0.1",
        "--http-port",
        "0",
        "--grpc-port",
        "0",
    ])
    .args(args)
    .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
    .env("PYTHON", "/nonexistent/python3");
    c
}

struct Server {
    child: Child,
    spawned: Instant,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    http: String,
    grpc: String,
}

impl Server {
    /// Starts the server and waits for its `listening` line (not for ready).
    fn start(args: &[&str]) -> Server {
        let spawned = Instant::now();
        let mut child = command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().unwrap();
        let err_text = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                let mut text = err_text.lock().unwrap_or_else(|p| p.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
        });
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut s = Server {
            child,
            spawned,
            lines,
            stderr,
            http: String::new(),
            grpc: String::new(),
        };
        let listening = s.wait_line("listening");
        for part in listening.split_whitespace() {
            if let Some(a) = part.strip_prefix("http=") {
                s.http = a.to_string();
            }
            if let Some(a) = part.strip_prefix("grpc=") {
                s.grpc = a.to_string();
            }
        }
        s
    }

    fn start_ready(args: &[&str]) -> Server {
        let s = Server::start(args);
        s.wait_line("ready");
        s
    }

    fn wait_line(&self, word: &str) -> String {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(word) => return line,
                Ok(_) => {}
                Err(e) => panic!(
                    "no '{word}' line from the server ({e}); its stderr:\n{}",
                    self.stderr.lock().unwrap_or_else(|p| p.into_inner())
                ),
            }
        }
    }

    fn get(&self, path: &str) -> (u16, Value) {
        http(&self.http, "GET", path, &[], &[])
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        http(&self.http, "POST", path, &[], body.to_string().as_bytes())
    }

    /// One sample of /metrics, by its name with labels.
    fn metric(&self, name: &str) -> Option<f64> {
        let (status, body) = http_raw(&self.http, "GET", "/metrics", &[], &[]);
        assert_eq!(status, 200);
        String::from_utf8(body)
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }

    async fn grpc(&self) -> GrpcInferenceServiceClient<tonic::transport::Channel> {
        GrpcInferenceServiceClient::connect(format!("http://{}", self.grpc))
            .await
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request on its own connection: status and body.
fn http_raw(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(body).unwrap();
    let mut response = Vec::new();
    conn.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete response head");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "this client reads whole bodies only: {head}"
    );
    (status, response[split + 4..].to_vec())
}

fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Value) {
    let (status, body) = http_raw(addr, method, path, headers, body);
    let v = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    (status, v)
}

/// Rows of four, and what the stand-in must answer for them.
fn rows(n: usize) -> (Vec<f32>, Vec<f32>) {
    let data: Vec<f32> = (0..n * 4).map(|i| i as f32 * 0.5 - 1.0).collect();
    let sums = data.chunks(4).map(|r| r.iter().sum()).collect();
    (data, sums)
}

fn v2_body(data: &[f32]) -> Value {
    json!({"inputs": [{"name": "input", "shape": [data.len() / 4, 4], "datatype": "FP32", "data": data}]})
}

fn as_f32s(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[tokio::test]
async fn the_stand_in_answers_row_sums_on_every_protocol_without_onnx_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let prof = profile(&dir, 0.001);
    let s = Server::start_ready(&["--emulate", &prof, "--emulated-model", "sum"]);

    let (status, meta) = s.get("/v2/models/sum");
    assert_eq!(status, 200);
    assert_eq!(
        meta,
        json!({"name": "sum", "versions": ["1"], "platform": "lab_stand_in",
               "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
               "outputs": [{"name": "output", "datatype": "FP32", "shape": [-1, 1]}]})
    );
    assert_eq!(s.get("/v2/models/sum/ready").0, 200);

    // V2 REST JSON, 1 and 3 rows.
    for n in [1, 3] {
        let (data, sums) = rows(n);
        let (status, out) = s.post("/v2/models/sum/infer", &v2_body(&data));
        assert_eq!(status, 200, "{out}");
        let o = &out["outputs"][0];
        assert_eq!(o["name"], "output");
        assert_eq!(o["datatype"], "FP32");
        assert_eq!(o["shape"], json!([n, 1]));
        assert_eq!(as_f32s(&o["data"]), sums);
    }

    // V2 REST with the binary extension, both ways.
    let (data, sums) = rows(3);
    let header = json!({"inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP32",
                                    "parameters": {"binary_data_size": 48}}],
                        "outputs": [{"name": "output", "parameters": {"binary_data": true}}]})
    .to_string();
    let mut body = header.clone().into_bytes();
    body.extend(data.iter().flat_map(|x| x.to_le_bytes()));
    let (status, raw) = http_raw(
        &s.http,
        "POST",
        "/v2/models/sum/infer",
        &[("Inference-Header-Content-Length", header.len().to_string())],
        &body,
    );
    assert_eq!(status, 200);
    let tail = &raw[raw.len() - 12..];
    let got: Vec<f32> = tail
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(got, sums);

    // KServe V1: instances are rows, each prediction a row of one.
    let instances: Vec<Value> = data.chunks(4).map(|r| json!(r)).collect();
    let (status, out) = s.post("/v1/models/sum:predict", &json!({ "instances": instances }));
    assert_eq!(status, 200, "{out}");
    let predictions: Vec<Vec<f32>> = out["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(as_f32s)
        .collect();
    assert_eq!(
        predictions,
        sums.iter().map(|x| vec![*x]).collect::<Vec<_>>()
    );

    // gRPC: readiness, metadata and inference on raw contents, 1 and 3 rows.
    let mut client = s.grpc().await;
    let ready = client
        .server_ready(pb::ServerReadyRequest {})
        .await
        .unwrap();
    assert!(ready.into_inner().ready);
    let meta = client
        .model_metadata(pb::ModelMetadataRequest {
            name: "sum".into(),
            version: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(meta.platform, "lab_stand_in");
    assert_eq!(meta.inputs[0].shape, vec![-1, 4]);
    assert_eq!(meta.outputs[0].name, "output");
    for n in [1, 3] {
        let (data, sums) = rows(n);
        let req = pb::ModelInferRequest {
            model_name: "sum".into(),
            inputs: vec![pb::model_infer_request::InferInputTensor {
                name: "input".into(),
                datatype: "FP32".into(),
                shape: vec![n as i64, 4],
                ..Default::default()
            }],
            raw_input_contents: vec![data.iter().flat_map(|x| x.to_le_bytes()).collect()],
            ..Default::default()
        };
        let out = client.model_infer(req).await.unwrap().into_inner();
        assert_eq!(out.outputs[0].shape, vec![n as i64, 1]);
        let got: Vec<f32> = out.raw_output_contents[0]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, sums);
    }

    // Counted like any model: 4 REST and 2 gRPC inferences.
    assert_eq!(
        s.metric(r#"lab_predictor_requests_total{model="sum",code="200"}"#),
        Some(6.0)
    );
    // Wrong shapes are refused by its signature like an ONNX model's.
    let (status, out) = s.post(
        "/v2/models/sum/infer",
        &json!({"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}),
    );
    assert_eq!(status, 400);
    assert!(out["error"].as_str().unwrap().contains("shape"), "{out}");
}

#[test]
fn the_missing_onnx_runtime_would_have_stopped_an_onnx_model() {
    // The same environment is fatal for a real model: so the stand-in above
    // served without ONNX Runtime, not by finding one.
    let dir = tempfile::tempdir().unwrap();
    let prof = profile(&dir, 0.001);
    let iris = concat!(env!("CARGO_MANIFEST_DIR"), "/models/iris.onnx");
    let out = command(&["--emulate", &prof, "--model", &format!("iris={iris}")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("ORT_DYLIB_PATH"), "{err}");
}

#[test]
fn the_stand_in_batches_and_holds_the_emulated_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let prof = profile(&dir, 0.8);
    let s = Server::start_ready(&["--emulate", &prof, "--emulated-model", "sum"]);
    let addr = s.http.clone();
    let send = move |n: usize| {
        let addr = addr.clone();
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let (data, sums) = rows(n);
            let body = v2_body(&data).to_string();
            let (status, out) = http(&addr, "POST", "/v2/models/sum/infer", &[], body.as_bytes());
            assert_eq!(status, 200, "{out}");
            assert_eq!(as_f32s(&out["outputs"][0]["data"]), sums);
            t0.elapsed()
        })
    };
    let first = send(1);
    // Queue time is recorded when a batch starts executing: the first holds the GPU.
    let queued = r#"lab_predictor_queue_duration_seconds_count{model="sum"}"#;
    wait_for(|| s.metric(queued) == Some(1.0));
    let rest: Vec<_> = [1, 2, 3].into_iter().map(&send).collect();
    wait_for(|| s.metric(r#"lab_predictor_queue_depth{model="sum"}"#) == Some(3.0));
    assert!(first.join().unwrap() >= Duration::from_millis(800));
    for r in rest {
        assert!(r.join().unwrap() >= Duration::from_millis(800));
    }
    let count = s.metric(r#"lab_predictor_batch_size_count{model="sum"}"#);
    let total = s.metric(r#"lab_predictor_batch_size_sum{model="sum"}"#);
    assert_eq!((count, total), (Some(2.0), Some(7.0)));
}

/// Polls a condition an outside observer has no event for, with a deadline.
fn wait_for(mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "condition not met within 20 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[tokio::test]
async fn the_emulated_model_load_holds_readiness_while_live_answers() {
    let dir = tempfile::tempdir().unwrap();
    let prof = profile(&dir, 0.001);
    let s = Server::start(&[
        "--emulate",
        &prof,
        "--emulated-model",
        "sum",
        "--model-load-secs",
        "0.5",
    ]);
    assert_eq!(s.get("/v2/health/live"), (200, json!({"live": true})));
    assert_eq!(s.get("/v2/health/ready"), (503, json!({"ready": false})));
    assert_eq!(s.get("/v2/models/sum/ready").0, 503);
    let (data, _) = rows(1);
    assert_eq!(s.post("/v2/models/sum/infer", &v2_body(&data)).0, 503);
    let mut client = s.grpc().await;
    let live = client.server_live(pb::ServerLiveRequest {}).await.unwrap();
    assert!(live.into_inner().live);
    let ready = client
        .server_ready(pb::ServerReadyRequest {})
        .await
        .unwrap();
    assert!(!ready.into_inner().ready);
    let model_ready = client
        .model_ready(pb::ModelReadyRequest {
            name: "sum".into(),
            version: String::new(),
        })
        .await
        .unwrap();
    assert!(!model_ready.into_inner().ready);

    wait_for(|| s.get("/v2/health/ready").0 == 200);
    assert!(
        s.spawned.elapsed() >= Duration::from_millis(500),
        "ready before the emulated load was over"
    );
    s.wait_line("ready");
    let ready = client
        .server_ready(pb::ServerReadyRequest {})
        .await
        .unwrap();
    assert!(ready.into_inner().ready);
    assert_eq!(s.post("/v2/models/sum/infer", &v2_body(&data)).0, 200);
}

#[test]
fn model_flags_are_checked_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let prof = profile(&dir, 0.001);
    let iris = format!(
        "iris={}",
        concat!(env!("CARGO_MANIFEST_DIR"), "/models/iris.onnx")
    );
    let cases: &[(&[&str], &str)] = &[
        (&[], "nothing to serve"),
        (&["--emulated-model", "sum"], "--emulate"),
        (
            &[
                "--emulate",
                &prof,
                "--model",
                &iris,
                "--emulated-model",
                "iris",
            ],
            "used twice",
        ),
        (
            &["--emulate", &prof, "--emulated-model", "a/b"],
            "letters, digits",
        ),
        (
            &[
                "--emulate",
                &prof,
                "--emulated-model",
                "sum",
                "--model-load-secs=-1",
            ],
            "--model-load-secs",
        ),
    ];
    for (args, words) in cases {
        let out = command(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(words), "{args:?}: {err}");
    }
}
