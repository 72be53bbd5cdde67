//! An in-process V2 server on 127.0.0.1 for the load generator's tests: answers
//! REST (JSON, binary, V1), plain HTTP and gRPC (over HTTP/2), records when each
//! request arrived, and delays or fails requests as a test asks.

#![allow(dead_code)]

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use lab_loadgen::proto::{
    ModelInferRequest, ModelInferResponse, ModelMetadataResponse, TensorMetadata,
};
use prost::Message;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the server saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub seq: u64,
    pub at: Instant,
    pub path: String,
    pub body_len: usize,
    pub header_len: Option<usize>,
    /// gRPC: bytes of raw tensor data in the message.
    pub raw_len: usize,
}

/// How to answer one request.
#[derive(Debug, Clone, Copy)]
pub struct Reply {
    /// Answer no earlier than this.
    pub hold_until: Option<Instant>,
    pub status: u16,
    /// gRPC status code (0 = OK).
    pub grpc: i32,
}

impl Reply {
    pub const OK: Reply = Reply {
        hold_until: None,
        status: 200,
        grpc: 0,
    };
}

/// Decides a reply from the request's seq and the instant of the first request.
pub type Policy = Arc<dyn Fn(u64, Instant, Instant) -> Reply + Send + Sync>;

pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub async fn start(policy: Policy) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let first: Arc<Mutex<Option<Instant>>> = Arc::default();
        let (seen2, first2) = (seen.clone(), first.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let _ = stream.set_nodelay(true);
                let (seen, first, policy) = (seen2.clone(), first2.clone(), policy.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        handle(req, seen.clone(), first.clone(), policy.clone())
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        TestServer { addr, seen, task }
    }

    pub async fn ok() -> TestServer {
        TestServer::start(Arc::new(|_, _, _| Reply::OK)).await
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

const METADATA: &str = r#"{"name":"m","versions":["1"],"platform":"onnxruntime_onnx","inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],"outputs":[{"name":"y","datatype":"FP32","shape":[-1,1]}]}"#;

async fn handle(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<Seen>>>,
    first: Arc<Mutex<Option<Instant>>>,
    policy: Policy,
) -> Result<Response<Body>, std::convert::Infallible> {
    let now = Instant::now();
    let path = req.uri().path().to_string();
    let grpc = req
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if req.method() == http::Method::GET && path.starts_with("/v2/models/") {
        return Ok(text(200, METADATA));
    }
    if grpc && path.ends_with("/ModelMetadata") {
        let msg = ModelMetadataResponse {
            name: "m".into(),
            versions: vec!["1".into()],
            platform: "onnxruntime_onnx".into(),
            inputs: vec![TensorMetadata {
                name: "x".into(),
                datatype: "FP32".into(),
                shape: vec![-1, 4],
            }],
            outputs: vec![],
        };
        return Ok(grpc_reply(0, Some(msg.encode_to_vec())));
    }
    let seq = req
        .headers()
        .get("x-lab-seq")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(u64::MAX);
    let header_len = req
        .headers()
        .get("inference-header-content-length")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut raw_len = 0;
    if grpc {
        let mut b = body.clone();
        if b.len() >= 5 {
            b.advance(5);
            let msg = ModelInferRequest::decode(b).expect("a valid ModelInferRequest");
            raw_len = msg.raw_input_contents.iter().map(|r| r.len()).sum();
        }
    }
    let t0 = *first.lock().unwrap().get_or_insert(now);
    seen.lock().unwrap().push(Seen {
        seq,
        at: now,
        path,
        body_len: body.len(),
        header_len,
        raw_len,
    });
    let reply = policy(seq, t0, now);
    if let Some(until) = reply.hold_until {
        tokio::time::sleep_until(until.into()).await;
    }
    if grpc {
        let ok = ModelInferResponse::default().encode_to_vec();
        return Ok(grpc_reply(reply.grpc, (reply.grpc == 0).then_some(ok)));
    }
    Ok(text(reply.status, r#"{"outputs":[]}"#))
}

fn text(status: u16, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())).boxed());
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    r
}

/// A gRPC answer: the message as one length-prefixed frame, status in trailers;
/// an error is a trailers-only answer (status in the headers).
fn grpc_reply(code: i32, msg: Option<Vec<u8>>) -> Response<Body> {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/grpc"));
    let Some(msg) = msg else {
        let mut r = Response::new(Full::new(Bytes::new()).boxed());
        *r.headers_mut() = headers;
        r.headers_mut()
            .insert("grpc-status", HeaderValue::from(code));
        r.headers_mut()
            .insert("grpc-message", HeaderValue::from_static("test%20says%20no"));
        return r;
    };
    let mut frame = BytesMut::with_capacity(5 + msg.len());
    frame.put_u8(0);
    frame.put_u32(msg.len() as u32);
    frame.put_slice(&msg);
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(code));
    let body = Full::new(frame.freeze())
        .with_trailers(async move { Some(Ok(trailers)) })
        .boxed();
    let mut r = Response::new(body);
    *r.headers_mut() = headers;
    r
}

/// A port on 127.0.0.1 with nothing listening.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub fn hold_for(d: Duration) -> Reply {
    Reply {
        hold_until: Some(Instant::now() + d),
        ..Reply::OK
    }
}
