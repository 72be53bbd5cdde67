//! The request path: classify, pick a version, the activator, the pod's
//! queue-proxy, forward.
//!
//! Simplifications against Knative, all where the autoscaler cannot see
//! them: the activator's buffer is one queue per version (Knative: a breaker
//! per revision and trackers per pod, both 10 000 deep); requests it releases
//! wait for `containerConcurrency` at the pod's gate without the queue-proxy's
//! 10 × CC limit (Knative's activator holds them until a pod has capacity, so
//! they never overflow that queue); it routes by least-request whatever the
//! CC (Knative: random-of-2 at CC 0, first-available at CC ≤ 3, round-robin
//! above); readiness is what the controller marks, not the activator's own
//! 200 ms probe. Request bodies are read whole before forwarding (inference
//! requests are bounded; gRPC needs its first message for the model name);
//! responses stream through.

use crate::grpc::{self, Code};
use crate::table::{Endpoint, Service, Shared, Upstream};
use crate::PROXY_HEADER;
use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use lab_decide::routing;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    stats_period: Option<Duration>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    if let Some(period) = stats_period {
        // Weak: the ticker ends with the gateway.
        let weak = Arc::downgrade(&shared);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(sh) => {
                        crate::GatewayHandle(sh).report_stats();
                    }
                    None => return,
                }
            }
        });
    }
    loop {
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // A connection reset while queued, or out of descriptors for
                // a moment: that connection is lost, not the gateway.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let sh = shared.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let sh = sh.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&sh, req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// The response body: one the gateway made, or the pod's streamed through
/// with the request's accounting held until it ends.
pub enum GatewayBody {
    Full(Full<Bytes>),
    Upstream(Incoming, Option<Guard>),
}

impl Body for GatewayBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            GatewayBody::Full(f) => Pin::new(f).poll_frame(cx).map_err(|e| match e {}),
            GatewayBody::Upstream(b, guard) => {
                let p = Pin::new(b).poll_frame(cx);
                if let Poll::Ready(None) = p {
                    // The response ended: the request leaves the pod now,
                    // not when the connection drops the body.
                    guard.take();
                }
                p
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            GatewayBody::Full(f) => f.is_end_stream(),
            GatewayBody::Upstream(b, _) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GatewayBody::Full(f) => f.size_hint(),
            GatewayBody::Upstream(b, _) => b.size_hint(),
        }
    }
}

/// A request at a pod: counted in its outstanding requests and stats window
/// and holding its `containerConcurrency` permit until dropped.
pub struct Guard {
    ep: Arc<Endpoint>,
    proxied: bool,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Guard {
    fn new(ep: Arc<Endpoint>, proxied: bool) -> Guard {
        ep.outstanding.fetch_add(1, Ordering::Relaxed);
        ep.window
            .lock()
            .expect("stats window")
            .request_in(Instant::now(), proxied);
        Guard {
            ep,
            proxied,
            _permit: None,
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.ep
            .window
            .lock()
            .expect("stats window")
            .request_out(Instant::now(), self.proxied);
        self.ep.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Proto {
    Rest,
    Grpc,
}

/// An answer the gateway gives itself, in the request's protocol.
struct Refusal {
    status: StatusCode,
    grpc: Code,
    message: String,
    reason: &'static str,
}

fn refusal(status: StatusCode, grpc: Code, reason: &'static str, message: String) -> Refusal {
    Refusal {
        status,
        grpc,
        message,
        reason,
    }
}

fn respond(proto: Proto, r: &Refusal) -> Response<GatewayBody> {
    match proto {
        Proto::Rest => {
            // The Open Inference Protocol's error body.
            let body = serde_json::json!({ "error": r.message }).to_string();
            let mut resp = Response::new(GatewayBody::Full(Full::new(Bytes::from(body))));
            *resp.status_mut() = r.status;
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Proto::Grpc => {
            // Trailers-only: the status rides in the headers.
            let mut resp = Response::new(GatewayBody::Full(Full::new(Bytes::new())));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            h.insert("grpc-status", HeaderValue::from_static(r.grpc.as_str()));
            if let Ok(v) = HeaderValue::from_str(&pct_encode(&r.message)) {
                h.insert("grpc-message", v);
            }
            resp
        }
    }
}

/// `grpc-message` is percent-encoded outside printable ASCII.
fn pct_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..0x7F).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The model a REST path addresses, or `None` for a path that is no
/// inference route.
fn rest_model(path: &str) -> Option<&str> {
    if let Some(rest) = path.strip_prefix("/v2/models/") {
        let name = rest.split('/').next().unwrap_or("");
        return (!name.is_empty()).then_some(name);
    }
    if let Some(rest) = path.strip_prefix("/v1/models/") {
        let name = rest.split([':', '/']).next().unwrap_or("");
        return (!name.is_empty()).then_some(name);
    }
    None
}

async fn handle(sh: &Arc<Shared>, req: Request<Incoming>) -> Response<GatewayBody> {
    let start = Instant::now();
    let is_grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    let proto = if is_grpc { Proto::Grpc } else { Proto::Rest };
    let (resp, service) = match route(sh, req, proto, start).await {
        Ok((resp, service)) => (resp, service),
        Err((r, service)) => {
            sh.counters.error(r.reason);
            (respond(proto, &r), service)
        }
    };
    sh.counters
        .request(&service, resp.status().as_u16(), start.elapsed());
    resp
}

type Refused = (Refusal, String);

async fn route(
    sh: &Arc<Shared>,
    req: Request<Incoming>,
    proto: Proto,
    start: Instant,
) -> Result<(Response<GatewayBody>, String), Refused> {
    let path = req.uri().path().to_string();
    if proto == Proto::Rest {
        match path.as_str() {
            "/metrics" => {
                let text = crate::metrics::render(sh);
                let mut resp = Response::new(GatewayBody::Full(Full::new(Bytes::from(text))));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                return Ok((resp, String::new()));
            }
            "/v2/health/live" | "/v2/health/ready" => {
                return Ok((
                    Response::new(GatewayBody::Full(Full::new(Bytes::new()))),
                    String::new(),
                ));
            }
            _ => {}
        }
    }
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|e| {
        (
            refusal(
                StatusCode::BAD_REQUEST,
                Code::InvalidArgument,
                "bad_request",
                format!("reading the request body: {e}"),
            ),
            String::new(),
        )
    })?;
    let body = body.to_bytes();
    let model = match proto {
        Proto::Rest => rest_model(&path)
            .ok_or_else(|| {
                refusal(
                    StatusCode::NOT_FOUND,
                    Code::NotFound,
                    "not_found",
                    format!("no inference route at {path}"),
                )
            })
            .map(str::to_string),
        Proto::Grpc => grpc::first_message(&body)
            .and_then(grpc::field_one)
            .map(str::to_string)
            .map_err(|e| {
                refusal(
                    StatusCode::BAD_REQUEST,
                    Code::InvalidArgument,
                    "bad_request",
                    e.to_string(),
                )
            }),
    }
    .map_err(|r| (r, String::new()))?;
    let svc = sh.services.get(&model).cloned().ok_or_else(|| {
        (
            refusal(
                StatusCode::NOT_FOUND,
                Code::NotFound,
                "not_found",
                format!("Model with name {model} does not exist."),
            ),
            String::new(),
        )
    })?;
    let name = svc.cfg.name.clone();
    forward(sh, &svc, parts, body, proto, start)
        .await
        .map(|r| (r, name.clone()))
        .map_err(|r| (r, name))
}

async fn forward(
    sh: &Arc<Shared>,
    svc: &Arc<Service>,
    parts: http::request::Parts,
    body: Bytes,
    proto: Proto,
    start: Instant,
) -> Result<Response<GatewayBody>, Refusal> {
    let deadline = tokio::time::Instant::from_std(start + svc.cfg.timeout);
    let v = {
        let mut rng = sh.rng.lock().expect("gateway rng");
        routing::pick_version(
            svc.versions.len(),
            || lab_traffic::uniform(&mut *rng),
            |i| svc.versions[i].traffic_percent,
        )
    };
    let version = &svc.versions[v];
    let mut proxied = version.in_proxy_mode();
    let ep = match pick(sh, version) {
        Some(ep) => ep,
        None => {
            // The activator: buffer until a pod of this version is ready.
            proxied = true;
            let limit = svc.cfg.activator_queue_limit as usize;
            if version.activator_queued.fetch_add(1, Ordering::AcqRel) >= limit {
                version.activator_queued.fetch_sub(1, Ordering::AcqRel);
                return Err(refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Code::Unavailable,
                    "activator_overflow",
                    format!("activator queue of {} is full ({limit})", svc.cfg.name),
                ));
            }
            version.buffered.send_modify(|n| *n += 1);
            let got = loop {
                let notified = version.became_ready.notified();
                tokio::pin!(notified);
                // Registered before looking, so a pod marked ready between
                // the look and the wait still wakes us.
                notified.as_mut().enable();
                if let Some(ep) = pick(sh, version) {
                    break Some(ep);
                }
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    break None;
                }
            };
            version.activator_queued.fetch_sub(1, Ordering::AcqRel);
            got.ok_or_else(|| {
                refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Code::Unavailable,
                    "activator_timeout",
                    format!(
                        "activator request timeout: no ready pod of {} in {:?}",
                        svc.cfg.name, svc.cfg.timeout
                    ),
                )
            })?
        }
    };
    let mut guard = Guard::new(ep.clone(), proxied);
    if let Some(gate) = &ep.gate {
        // The queue-proxy's breaker: at most CC at once, 10 × CC waiting.
        let waiting = ep.queued.fetch_add(1, Ordering::AcqRel);
        if !proxied && waiting >= ep.queue_limit {
            ep.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Unavailable,
                "queue_full",
                format!("pod {} queue is full ({})", ep.pod, ep.queue_limit),
            ));
        }
        let waiting_since = Instant::now();
        let permit = tokio::time::timeout_at(deadline, gate.clone().acquire_owned()).await;
        sh.counters.breaker_wait(waiting_since.elapsed());
        ep.queued.fetch_sub(1, Ordering::AcqRel);
        match permit {
            Ok(Ok(p)) => guard._permit = Some(p),
            _ => {
                return Err(refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    Code::Unavailable,
                    "queue_timeout",
                    format!("pod {} queue: no slot in {:?}", ep.pod, svc.cfg.timeout),
                ))
            }
        }
    }
    let authority = match proto {
        Proto::Rest => &ep.authority,
        Proto::Grpc => &ep.grpc_authority,
    };
    let upstream = upstream_request(parts, body, authority, proxied).map_err(|m| {
        refusal(
            StatusCode::BAD_REQUEST,
            Code::InvalidArgument,
            "bad_request",
            m,
        )
    })?;
    let client: &Upstream = if upstream.version() == http::Version::HTTP_2 {
        &sh.http2
    } else {
        &sh.http1
    };
    match tokio::time::timeout_at(deadline, client.request(upstream)).await {
        Ok(Ok(resp)) => {
            let (mut parts, body) = resp.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(
                parts,
                GatewayBody::Upstream(body, Some(guard)),
            ))
        }
        Ok(Err(e)) => {
            let reason = if e.is_connect() {
                "connect"
            } else {
                "upstream"
            };
            Err(refusal(
                StatusCode::BAD_GATEWAY,
                Code::Unavailable,
                reason,
                format!("pod {} at {authority}: {}", ep.pod, error_chain(&e)),
            ))
        }
        Err(_) => Err(refusal(
            StatusCode::GATEWAY_TIMEOUT,
            Code::DeadlineExceeded,
            "timeout",
            format!("pod {} gave no response in {:?}", ep.pod, svc.cfg.timeout),
        )),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// Least-request among the version's ready pods.
fn pick(sh: &Shared, version: &crate::table::Version) -> Option<Arc<Endpoint>> {
    let ready = version.ready.read().expect("ready list").clone();
    let i = routing::least_request(
        ready.len(),
        || rand::RngCore::next_u64(&mut *sh.rng.lock().expect("gateway rng")),
        |i| ready[i].outstanding.load(Ordering::Relaxed),
    )?;
    Some(ready[i].clone())
}

const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

fn strip_hop_by_hop(h: &mut http::HeaderMap) {
    for name in HOP_BY_HOP {
        if name != "content-length" && name != "host" {
            h.remove(name);
        }
    }
}

fn upstream_request(
    parts: http::request::Parts,
    body: Bytes,
    authority: &str,
    proxied: bool,
) -> Result<Request<Full<Bytes>>, String> {
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let uri: http::Uri = format!("http://{authority}{pq}")
        .parse()
        .map_err(|e| format!("bad request target {pq}: {e}"))?;
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = parts.method;
    *req.uri_mut() = uri;
    // The pod speaks the client's protocol version.
    *req.version_mut() = if parts.version == http::Version::HTTP_2 {
        http::Version::HTTP_2
    } else {
        http::Version::HTTP_11
    };
    let mut headers = parts.headers;
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if proxied {
        headers.insert(PROXY_HEADER, HeaderValue::from_static("activator"));
    }
    *req.headers_mut() = headers;
    Ok(req)
}
