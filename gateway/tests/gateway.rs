//! The gateway over real loopback HTTP/1.1, HTTP/2 and gRPC, in front of
//! in-process pods that record what reached them.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use lab_gateway::{
    ActivatorMode, Gateway, GatewayConfig, GatewayHandle, ServiceConfig, VersionConfig,
};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A pod: answers with its name, counts requests and concurrency, and
/// takes `hold` per request.
struct Pod {
    name: String,
    addr: SocketAddr,
    requests: AtomicUsize,
    current: AtomicUsize,
    max: AtomicUsize,
    proxied: AtomicUsize,
    hold: Duration,
}

#[derive(Clone, PartialEq, prost::Message)]
struct InferRequest {
    #[prost(string, tag = "1")]
    model_name: String,
    #[prost(string, tag = "3")]
    id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct InferResponse {
    #[prost(string, tag = "1")]
    model_name: String,
    #[prost(string, tag = "3")]
    id: String,
}

type PodBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

async fn answer(pod: Arc<Pod>, req: Request<Incoming>) -> Response<PodBody> {
    let now = pod.current.fetch_add(1, Ordering::SeqCst) + 1;
    pod.max.fetch_max(now, Ordering::SeqCst);
    pod.requests.fetch_add(1, Ordering::SeqCst);
    if req.headers().get("k-proxy-request").is_some() {
        pod.proxied.fetch_add(1, Ordering::SeqCst);
    }
    let grpc = req
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    let body = req.into_body().collect().await.unwrap().to_bytes();
    if !pod.hold.is_zero() {
        tokio::time::sleep(pod.hold).await;
    }
    pod.current.fetch_sub(1, Ordering::SeqCst);
    if grpc {
        let msg: InferRequest = prost::Message::decode(&body[5..]).unwrap();
        let reply = prost::Message::encode_to_vec(&InferResponse {
            model_name: pod.name.clone(),
            id: msg.id,
        });
        let mut frame = vec![0u8];
        frame.extend_from_slice(&(reply.len() as u32).to_be_bytes());
        frame.extend_from_slice(&reply);
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        let body = Frames([Frame::data(Bytes::from(frame)), Frame::trailers(trailers)].into());
        return Response::builder()
            .header("content-type", "application/grpc")
            .body(BodyExt::boxed(body))
            .unwrap();
    }
    Response::new(BodyExt::boxed(Full::new(Bytes::from(pod.name.clone()))))
}

/// Frames sent as they are: a gRPC reply with its trailers.
struct Frames(std::collections::VecDeque<Frame<Bytes>>);

impl hyper::body::Body for Frames {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(self.get_mut().0.pop_front().map(Ok))
    }
}

async fn pod(name: &str, hold: Duration) -> Arc<Pod> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pod = Arc::new(Pod {
        name: name.into(),
        addr: listener.local_addr().unwrap(),
        requests: AtomicUsize::new(0),
        current: AtomicUsize::new(0),
        max: AtomicUsize::new(0),
        proxied: AtomicUsize::new(0),
        hold,
    });
    let p = pod.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let p = p.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let p = p.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(p, req).await) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    pod
}

fn service(name: &str, versions: &[(&str, f64)], cc: u32, queue: u32) -> ServiceConfig {
    ServiceConfig {
        name: name.into(),
        model: name.into(),
        versions: versions
            .iter()
            .map(|(n, p)| VersionConfig {
                name: n.to_string(),
                traffic_percent: *p,
            })
            .collect(),
        container_concurrency: cc,
        activator_queue_limit: queue,
        timeout: Duration::from_secs(30),
    }
}

async fn gateway(services: Vec<ServiceConfig>) -> Gateway {
    let mut cfg = GatewayConfig::new(services);
    cfg.seed = 15;
    cfg.stats_period = None;
    Gateway::start(cfg).await.unwrap()
}

fn ready(h: &GatewayHandle, svc: &str, version: &str, p: &Pod) -> lab_gateway::EndpointId {
    let id = h.add_endpoint(svc, version, &p.name, p.addr).unwrap();
    h.set_ready(id, true).unwrap();
    id
}

type C = Client<HttpConnector, Full<Bytes>>;

fn h1() -> C {
    Client::builder(TokioExecutor::new()).build_http()
}

fn h2() -> C {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

async fn post(c: &C, gw: &Gateway, path: &str) -> (u16, String) {
    let req = Request::post(format!("http://{}{path}", gw.local_addr()))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(b"{\"inputs\":[]}")))
        .unwrap();
    let resp = c.request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn routes_by_model_name_over_http1_and_http2() {
    let (a, b) = (
        pod("pod-a", Duration::ZERO).await,
        pod("pod-b", Duration::ZERO).await,
    );
    let gw = gateway(vec![
        service("alpha", &[("default", 100.0)], 0, 10),
        service("beta", &[("default", 100.0)], 0, 10),
    ])
    .await;
    let h = gw.handle();
    ready(&h, "alpha", "default", &a);
    ready(&h, "beta", "default", &b);
    for c in [h1(), h2()] {
        assert_eq!(
            post(&c, &gw, "/v2/models/alpha/infer").await,
            (200, "pod-a".into())
        );
        assert_eq!(
            post(&c, &gw, "/v2/models/beta/versions/1/infer").await,
            (200, "pod-b".into())
        );
        assert_eq!(
            post(&c, &gw, "/v1/models/beta:predict").await,
            (200, "pod-b".into())
        );
        let (code, body) = post(&c, &gw, "/v2/models/gamma/infer").await;
        assert_eq!(code, 404);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "Model with name gamma does not exist.");
        assert_eq!(post(&c, &gw, "/predict").await.0, 404);
    }
    assert_eq!(a.requests.load(Ordering::SeqCst), 2);
    assert_eq!(b.requests.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn canary_split_eighty_twenty() {
    let (stable, canary) = (
        pod("v1", Duration::ZERO).await,
        pod("v2", Duration::ZERO).await,
    );
    let gw = gateway(vec![service("m", &[("v1", 80.0), ("v2", 20.0)], 0, 10)]).await;
    let h = gw.handle();
    ready(&h, "m", "v1", &stable);
    ready(&h, "m", "v2", &canary);
    let c = h1();
    let n = 3000;
    let mut to_v1 = 0;
    for _ in 0..n {
        let (code, body) = post(&c, &gw, "/v2/models/m/infer").await;
        assert_eq!(code, 200);
        to_v1 += usize::from(body == "v1");
    }
    let share = to_v1 as f64 / n as f64;
    assert!((share - 0.8).abs() <= 0.02, "v1 got {share}");
    assert_eq!(stable.requests.load(Ordering::SeqCst), to_v1);
}

/// Waits for the activator to hold `n` requests: the requests are in other
/// tasks, so this yields until they got there.
async fn until_queued(h: &GatewayHandle, svc: &str, n: usize) {
    let t = Instant::now();
    while h.activator_queue_depth(svc, "default").unwrap() < n {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "activator never held {n}"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activator_holds_until_ready_and_refuses_past_its_limit() {
    let p = pod("late", Duration::ZERO).await;
    let gw = Arc::new(gateway(vec![service("m", &[("default", 100.0)], 0, 3)]).await);
    let h = gw.handle();
    let id = h.add_endpoint("m", "default", "late", p.addr).unwrap();
    let mut demand = h.activator_demand("m", "default").unwrap();
    let held: Vec<_> = (0..3)
        .map(|_| {
            let gw = gw.clone();
            tokio::spawn(async move { post(&h1(), &gw, "/v2/models/m/infer").await })
        })
        .collect();
    // The poke: the controller hears of the first buffered request.
    demand.changed().await.unwrap();
    assert!(*demand.borrow_and_update() >= 1);
    until_queued(&h, "m", 3).await;
    // The fourth finds the buffer full: 503 at once, while three wait.
    let (code, body) = post(&h1(), &gw, "/v2/models/m/infer").await;
    assert_eq!(code, 503);
    assert!(body.contains("activator queue of m is full (3)"), "{body}");
    assert_eq!(p.requests.load(Ordering::SeqCst), 0);
    h.set_ready(id, true).unwrap();
    for r in held {
        assert_eq!(r.await.unwrap(), (200, "late".into()));
    }
    assert_eq!(h.activator_queue_depth("m", "default").unwrap(), 0);
    // Released by the activator: proxied, as the pod's header says.
    assert_eq!(p.proxied.load(Ordering::SeqCst), 3);
    let stats = h.report_stats();
    assert_eq!((stats[0].requests, stats[0].proxied_requests), (3, 3));
    let metrics = h.metrics_text();
    assert!(
        metrics.contains("lab_gateway_errors_total{reason=\"activator_overflow\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activator_times_out_with_503() {
    let mut svc = service("m", &[("default", 100.0)], 0, 10);
    svc.timeout = Duration::from_millis(50);
    let gw = gateway(vec![svc]).await;
    let (code, body) = post(&h1(), &gw, "/v2/models/m/infer").await;
    assert_eq!(code, 503);
    assert!(body.contains("activator request timeout"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_concurrency_one_serialises_and_stats_add_up() {
    let hold = Duration::from_millis(20);
    let p = pod("cc1", hold).await;
    let gw = Arc::new(gateway(vec![service("m", &[("default", 100.0)], 1, 10)]).await);
    let h = gw.handle();
    ready(&h, "m", "default", &p);
    h.set_activator_mode("m", "default", ActivatorMode::Serve)
        .unwrap();
    h.report_stats();
    let started = Instant::now();
    let n = 8;
    let all: Vec<_> = (0..n)
        .map(|_| {
            let gw = gw.clone();
            tokio::spawn(async move { post(&h1(), &gw, "/v2/models/m/infer").await })
        })
        .collect();
    for r in all {
        assert_eq!(r.await.unwrap().0, 200);
    }
    let stats = h.report_stats();
    assert_eq!(
        p.max.load(Ordering::SeqCst),
        1,
        "containerConcurrency 1 let two in"
    );
    assert_eq!(p.requests.load(Ordering::SeqCst), n);
    let s = &stats[0];
    assert_eq!((s.requests, s.proxied_requests), (n as u64, 0));
    // Each request was at the pod (queued or served) at least its hold; at
    // most the whole window, all of them at once.
    let lower = n as f64 * hold.as_secs_f64();
    assert!(
        s.concurrency_seconds >= lower,
        "{} < {lower}",
        s.concurrency_seconds
    );
    assert!(s.concurrency_seconds <= n as f64 * s.window.as_secs_f64());
    assert!(s.window <= started.elapsed() + Duration::from_millis(50));
    let avg = s.concurrency_seconds / s.window.as_secs_f64();
    assert!((s.average_concurrent_requests - avg).abs() < 1e-9);
    assert!((s.request_count - n as f64 / s.window.as_secs_f64()).abs() < 1e-6);
    let metrics = h.metrics_text();
    assert!(metrics
        .contains("queue_requests_per_second{service=\"m\",revision=\"default\",pod=\"cc1\"}"));
    assert!(
        metrics.contains("lab_gateway_requests_total{service=\"m\",code=\"200\"} 8"),
        "{metrics}"
    );
}

#[tokio::test]
async fn grpc_routes_by_model_name_field() {
    // As `lab serve` runs them: REST and gRPC on ports of their own.
    let (rest, p) = (
        pod("rest-port", Duration::ZERO).await,
        pod("grpc-pod", Duration::ZERO).await,
    );
    let gw = gateway(vec![service("resnet", &[("default", 100.0)], 0, 10)]).await;
    let h = gw.handle();
    let id = h
        .add_endpoint_with_grpc("resnet", "default", "pod-0", rest.addr, p.addr)
        .unwrap();
    h.set_ready(id, true).unwrap();
    assert_eq!(
        post(&h2(), &gw, "/v2/models/resnet/infer").await,
        (200, "rest-port".into())
    );
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", gw.local_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    let path = http::uri::PathAndQuery::from_static("/inference.GRPCInferenceService/ModelInfer");
    let call = |model: &str| InferRequest {
        model_name: model.into(),
        id: "r1".into(),
    };
    grpc.ready().await.unwrap();
    let resp: tonic::Response<InferResponse> = grpc
        .unary(
            tonic::Request::new(call("resnet")),
            path.clone(),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap();
    assert_eq!(resp.get_ref().model_name, "grpc-pod");
    assert_eq!(resp.get_ref().id, "r1");
    grpc.ready().await.unwrap();
    let err = grpc
        .unary::<_, InferResponse, _>(
            tonic::Request::new(call("bert")),
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err}");
    assert_eq!(p.requests.load(Ordering::SeqCst), 1);
    let stats = h.report_stats();
    assert_eq!(stats[0].requests, 2, "REST and gRPC count as one pod");
}

#[tokio::test]
async fn a_dead_pod_is_502_counted_by_reason() {
    // A port nobody listens on any more.
    let addr = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let gw = gateway(vec![service("m", &[("default", 100.0)], 0, 10)]).await;
    let h = gw.handle();
    let id = h.add_endpoint("m", "default", "gone", addr).unwrap();
    h.set_ready(id, true).unwrap();
    let (code, body) = post(&h1(), &gw, "/v2/models/m/infer").await;
    assert_eq!(code, 502, "{body}");
    assert!(h
        .metrics_text()
        .contains("lab_gateway_errors_total{reason=\"connect\"} 1"));
}

#[tokio::test]
async fn draining_and_removed_pods_get_no_new_requests() {
    let (a, b) = (
        pod("a", Duration::ZERO).await,
        pod("b", Duration::ZERO).await,
    );
    let gw = gateway(vec![service("m", &[("default", 100.0)], 0, 10)]).await;
    let h = gw.handle();
    let ida = ready(&h, "m", "default", &a);
    let idb = ready(&h, "m", "default", &b);
    let c = h1();
    for _ in 0..50 {
        assert_eq!(post(&c, &gw, "/v2/models/m/infer").await.0, 200);
    }
    // Least-request over two idle pods still spreads: both got some.
    assert!(a.requests.load(Ordering::SeqCst) > 0 && b.requests.load(Ordering::SeqCst) > 0);
    h.set_draining(ida).unwrap();
    let before = a.requests.load(Ordering::SeqCst);
    for _ in 0..20 {
        assert_eq!(post(&c, &gw, "/v2/models/m/infer").await, (200, "b".into()));
    }
    assert_eq!(a.requests.load(Ordering::SeqCst), before);
    h.remove_endpoint(ida).unwrap();
    assert!(h.remove_endpoint(ida).is_err());
    assert_eq!(h.outstanding(idb).unwrap(), 0);
    assert_eq!(h.report_stats().len(), 1);
}
