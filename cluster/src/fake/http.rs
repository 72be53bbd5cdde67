//! The double's HTTP side: routing a request to the store, the controllers
//! and the kubelet, streaming watches, and serving it all over real HTTP on
//! 127.0.0.1 (in the caller's runtime, or on a thread with a runtime of its
//! own for tests that are not async) with a kubeconfig that points there.

use super::store::{self, ApiPath, Selectors};
use super::{controller, kubelet, FakeApi, Inner, Recorded};
use bytes::Bytes;
use http::{request, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Weak;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::mpsc;

pub type Body = BoxBody<Bytes, Infallible>;

/// How long a watch that names no `timeoutSeconds` lasts (the API server
/// picks one of 30 to 60 minutes).
const DEFAULT_WATCH: Duration = Duration::from_secs(1800);

/// A request to a pod, answered after the lock is released.
pub struct Forward {
    pub addr: SocketAddr,
    pub method: String,
    pub path_and_query: String,
    pub content_type: Option<String>,
    pub body: Bytes,
}

enum Answer {
    Now(Response<Body>),
    Forward(Forward),
}

impl FakeApi {
    pub(crate) async fn handle(&self, parts: request::Parts, bytes: Bytes) -> Response<Body> {
        match self.route(&parts, &bytes) {
            Answer::Now(r) => r,
            Answer::Forward(f) => forward(f).await,
        }
    }

    fn route(&self, parts: &request::Parts, bytes: &Bytes) -> Answer {
        let query: BTreeMap<String, String> = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (decode(k), decode(v))
            })
            .collect();
        let path = parts.uri.path().to_string();
        let header = |name: http::header::HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(http::header::CONTENT_TYPE);
        let body: Option<Value> = if bytes.is_empty() {
            None
        } else {
            Some(
                serde_json::from_slice(bytes)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
            )
        };
        let method = parts.method.as_str().to_string();
        let mut st = self.lock();
        st.requests.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            content_type: content_type.clone(),
            body: body.clone(),
            authorization: header(http::header::AUTHORIZATION),
        });
        if let Some(code) = st.fail.get(&path).copied() {
            if method != "GET" {
                return Answer::Now(status(code, &format!("refused by the test for {path}")));
            }
        }
        if let Some(a) = st.answers.get(&path) {
            return Answer::Now(raw(a.status, &a.content_type, a.body.clone().into()));
        }
        let Some(ap) = ApiPath::parse(&path) else {
            return Answer::Now(match path.as_str() {
                "/version" => reply(
                    200,
                    &json!({ "major": "1", "minor": "33", "gitVersion": "v1.33.0-lab-fake", "platform": "linux/amd64" }),
                ),
                _ => status(
                    404,
                    &format!("the server could not find the requested resource ({path})"),
                ),
            });
        };
        let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
        match (method.as_str(), ap.sub.as_deref()) {
            (_, Some(sub))
                if (ap.resource == "pods" || ap.resource == "services")
                    && (sub == "proxy" || sub.starts_with("proxy/")) =>
            {
                let rest = sub.strip_prefix("proxy").unwrap_or("");
                let rest = if rest.is_empty() { "/" } else { rest };
                let path_and_query = match parts.uri.query() {
                    Some(q) => format!("{rest}?{q}"),
                    None => rest.to_string(),
                };
                let target = if ap.resource == "pods" {
                    kubelet::proxy_target(&st, &ap)
                } else {
                    kubelet::service_target(&st, &ap)
                };
                match target {
                    Ok(addr) => Answer::Forward(Forward {
                        addr,
                        method,
                        path_and_query,
                        content_type,
                        body: bytes.clone(),
                    }),
                    Err((code, message)) => Answer::Now(status(code, &message)),
                }
            }
            ("GET", Some("log")) if ap.resource == "pods" => {
                Answer::Now(kubelet::logs(&st, &ap, &query))
            }
            ("GET", None) if watch => {
                if let Some(events) = st.watches.pop_front() {
                    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
                    return Answer::Now(raw(200, "application/json", text.into()));
                }
                let sel = match Selectors::from_query(&query) {
                    Ok(s) => s,
                    Err(e) => return Answer::Now(status(400, &e)),
                };
                let timeout = query
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(DEFAULT_WATCH);
                let from = query.get("resourceVersion").cloned().unwrap_or_default();
                Answer::Now(watch_stream(self.weak(), &mut st, ap, sel, &from, timeout))
            }
            ("GET", _) => {
                let obj_path = ap.object();
                if ap.name.is_some() {
                    return Answer::Now(match st.store.get(&obj_path) {
                        Some(o) => reply(200, o),
                        None => not_found(&ap),
                    });
                }
                let sel = match Selectors::from_query(&query) {
                    Ok(s) => s,
                    Err(e) => return Answer::Now(status(400, &e)),
                };
                let items: Vec<Value> = st
                    .store
                    .objects()
                    .iter()
                    .filter(|(p, o)| store::in_collection(p, &obj_path) && sel.matches(o))
                    .map(|(_, o)| o.clone())
                    .collect();
                Answer::Now(reply(
                    200,
                    &json!({
                        "apiVersion": "v1",
                        "kind": "List",
                        "metadata": { "resourceVersion": st.store.version().to_string() },
                        "items": items,
                    }),
                ))
            }
            ("PATCH", sub) if ap.name.is_some() => {
                let Some(patch) = body.filter(Value::is_object) else {
                    return Answer::Now(status(400, "the patch is not a JSON object"));
                };
                let obj_path = ap.object();
                let is_apply = content_type.as_deref() == Some("application/apply-patch+yaml");
                let existing = st.store.get(&obj_path).cloned();
                let obj = match (sub, is_apply, existing) {
                    (Some("status"), _, Some(mut o)) => {
                        merge(&mut o["status"], &patch["status"]);
                        st.store.upsert(&obj_path, o, false)
                    }
                    (Some(_), _, _) => return Answer::Now(not_found(&ap)),
                    (None, true, _) => {
                        st.applied.push(obj_path.clone());
                        st.store.upsert(&obj_path, patch, true)
                    }
                    (None, false, Some(mut o)) => {
                        merge(&mut o, &patch);
                        st.store.upsert(&obj_path, o, true)
                    }
                    (None, false, None) => return Answer::Now(not_found(&ap)),
                };
                if sub.is_none() {
                    self.react(&mut st, &obj_path, &obj);
                }
                Answer::Now(reply(200, &obj))
            }
            ("POST", None) if ap.name.is_none() => {
                let Some(mut obj) = body.filter(Value::is_object) else {
                    return Answer::Now(status(400, "the body is not a JSON object"));
                };
                let mut name = obj["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if name.is_empty() {
                    if let Some(g) = obj["metadata"]["generateName"].as_str() {
                        name = format!("{g}{}", store::name_suffix(st.store.next_id(), 5));
                        obj["metadata"]["name"] = json!(name);
                    }
                }
                if name.is_empty() {
                    return Answer::Now(status(422, "metadata.name: Required value"));
                }
                let obj_path = format!("{}/{name}", ap.object());
                if st.store.get(&obj_path).is_some() {
                    return Answer::Now(status(
                        409,
                        &format!("{} \"{name}\" already exists", ap.resource),
                    ));
                }
                st.applied.push(obj_path.clone());
                let obj = st.store.upsert(&obj_path, obj, false);
                self.react(&mut st, &obj_path, &obj);
                Answer::Now(reply(201, &obj))
            }
            ("PUT", None) if ap.name.is_some() => {
                let Some(obj) = body.filter(Value::is_object) else {
                    return Answer::Now(status(400, "the body is not a JSON object"));
                };
                let obj_path = ap.object();
                if st.store.get(&obj_path).is_none() {
                    return Answer::Now(not_found(&ap));
                }
                let obj = st.store.upsert(&obj_path, obj, true);
                self.react(&mut st, &obj_path, &obj);
                Answer::Now(reply(200, &obj))
            }
            ("DELETE", None) if ap.name.is_some() => {
                let obj_path = ap.object();
                match store::delete(&mut st, &obj_path) {
                    Some(_) => {
                        st.deleted.push(obj_path);
                        Answer::Now(reply(
                            200,
                            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
                        ))
                    }
                    None => Answer::Now(not_found(&ap)),
                }
            }
            _ => Answer::Now(status(405, &format!("{method} is not allowed on {path}"))),
        }
    }

    /// What the cluster's controllers do when an object is written.
    fn react(&self, st: &mut super::State, path: &str, obj: &Value) {
        match (obj["apiVersion"].as_str(), obj["kind"].as_str()) {
            (Some(v), Some("InferenceService")) if v.starts_with("serving.kserve.io/") => {
                controller::isvc_applied(self, st, path)
            }
            (Some("batch/v1"), Some("Job")) => kubelet::job_applied(self, st, path),
            _ => {}
        }
    }
}

/// A watch of the collection `ap`: the changes after `from` (every current
/// object as ADDED first when `from` is empty or 0), then each change as it
/// happens, until `timeout`.
fn watch_stream(
    weak: Weak<Inner>,
    st: &mut super::State,
    ap: ApiPath,
    sel: Selectors,
    from: &str,
    timeout: Duration,
) -> Response<Body> {
    let collection = ap.object();
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let mut initial = Vec::new();
    let mut cursor = match from.parse::<u64>() {
        Ok(v) if v > 0 => v,
        _ => {
            for (p, o) in st.store.objects() {
                if store::in_collection(p, &collection) && sel.matches(o) {
                    initial.push(event_line("ADDED", o));
                }
            }
            st.store.version()
        }
    };
    let mut changed = st.store.subscribe();
    tokio::spawn(async move {
        for line in initial {
            if tx.send(line).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let lines: Vec<Bytes> = {
                let Some(api) = FakeApi::from_weak(&weak) else {
                    return;
                };
                let st = api.lock();
                let changes = st.store.changes_after(cursor);
                cursor = changes.last().map_or(cursor, |c| c.version);
                changes
                    .iter()
                    .filter(|c| {
                        store::in_collection(&c.path, &collection) && sel.matches(&c.object)
                    })
                    .map(|c| event_line(c.kind, &c.object))
                    .collect()
            };
            for line in lines {
                if tx.send(line).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = tokio::time::sleep_until(deadline) => return,
                // The client went away: stop watching for it.
                _ = tx.closed() => return,
            }
        }
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(ChannelBody(rx).boxed())
        .unwrap_or_else(|_| status(500, "building the watch"))
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    Bytes::from(format!("{}\n", json!({ "type": kind, "object": object })))
}

/// A response body fed line by line from a channel; it ends when the sender does.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|line| line.map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// RFC 7386 merge patch: objects merge key by key, `null` deletes, anything
/// else replaces.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Sends `f` to a pod's local port and returns the pod's answer as the
/// API server's proxy does; a pod that does not answer is a 503.
async fn forward(f: Forward) -> Response<Body> {
    match send(&f).await {
        Ok(r) => r,
        Err(e) => status(
            503,
            &format!("error trying to reach service: dial tcp {}: {e}", f.addr),
        ),
    }
}

async fn send(f: &Forward) -> Result<Response<Body>, String> {
    let (code, content_type, body) = request_local(
        f.addr,
        &f.method,
        &f.path_and_query,
        f.content_type.as_deref(),
        f.body.clone(),
        None,
    )
    .await?;
    Ok(raw(
        code,
        content_type.as_deref().unwrap_or("text/plain"),
        body,
    ))
}

/// One HTTP/1.1 request to a local address: (status, content type, body).
pub async fn request_local(
    addr: SocketAddr,
    method: &str,
    path_and_query: &str,
    content_type: Option<&str>,
    body: Bytes,
    timeout: Option<Duration>,
) -> Result<(u16, Option<String>, Bytes), String> {
    let work = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path_and_query)
            .header("host", addr.to_string());
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let code = resp.status().as_u16();
        let ct = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((code, ct, bytes))
    };
    match timeout {
        Some(t) => tokio::time::timeout(t, work)
            .await
            .map_err(|_| format!("timed out after {t:?}"))?,
        None => work.await,
    }
}

/// The double, served over HTTP in the runtime that called [`FakeApi::serve`].
pub struct Served {
    api: FakeApi,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl FakeApi {
    /// Serves the double on 127.0.0.1 (a free port) in the current runtime.
    pub async fn serve(&self) -> std::io::Result<Served> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(accept(self.clone(), listener));
        Ok(Served {
            api: self.clone(),
            addr,
            task,
        })
    }

    /// Serves the double on 127.0.0.1 from a thread with its own runtime,
    /// for tests that are not async (a test that runs the `lab` binary).
    pub fn spawn_thread(&self) -> std::io::Result<ServedThread> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fake-api")
            .enable_all()
            .build()?;
        let served = runtime.block_on(self.serve())?;
        Ok(ServedThread {
            addr: served.addr,
            served: Some(served),
            runtime,
        })
    }
}

async fn accept(api: FakeApi, listener: tokio::net::TcpListener) {
    // Connections live in this set, so stopping the server ends them too.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let api = api.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let api = api.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                            Ok::<_, Infallible>(api.handle(parts, bytes).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

impl Served {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Writes `dir/kubeconfig` (see [`write_kubeconfig`]) and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> std::io::Result<PathBuf> {
        write_kubeconfig(self.addr, dir)
    }

    /// Stops serving and kills every pod's processes.
    pub fn stop(self) {}
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
        self.api.shutdown();
    }
}

/// The double served from a thread of its own; stopping it (or dropping it)
/// ends the server and kills every pod's processes.
pub struct ServedThread {
    addr: SocketAddr,
    served: Option<Served>,
    /// Dropped after `served` (fields drop in order), taking the tasks that
    /// hold the pods' processes with it.
    runtime: tokio::runtime::Runtime,
}

impl ServedThread {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Writes `dir/kubeconfig` (see [`write_kubeconfig`]) and returns its path.
    pub fn kubeconfig(&self, dir: &Path) -> std::io::Result<PathBuf> {
        write_kubeconfig(self.addr, dir)
    }

    /// Runs `f` on the double's runtime, for a test that is not async (to
    /// use a client, or [`FakeApi::wait_for`]).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    pub fn stop(self) {}
}

impl Drop for ServedThread {
    fn drop(&mut self) {
        drop(self.served.take());
    }
}

/// A kubeconfig whose only context, `fake`, reaches the double at `addr`
/// over plain HTTP with a bearer token, in namespace `default`.
pub fn write_kubeconfig(addr: SocketAddr, dir: &Path) -> std::io::Result<PathBuf> {
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: http://{addr}
users:
- name: fake
  user:
    token: fake-token
contexts:
- name: fake
  context:
    cluster: fake
    user: fake
    namespace: default
current-context: fake
"
    );
    let path = dir.join("kubeconfig");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn raw(code: u16, content_type: &str, body: Bytes) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", content_type)
        .body(Full::new(body).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

pub fn reply(code: u16, v: &Value) -> Response<Body> {
    raw(code, "application/json", Bytes::from(v.to_string()))
}

/// A Status object, as the API server answers errors.
pub fn status(code: u16, message: &str) -> Response<Body> {
    let reason = match code {
        400 => "BadRequest",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "AlreadyExists",
        422 => "Invalid",
        503 => "ServiceUnavailable",
        _ => "Failure",
    };
    reply(
        code,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code,
        }),
    )
}

pub fn not_found(ap: &ApiPath) -> Response<Body> {
    let name = ap.name.as_deref().unwrap_or("");
    status(404, &format!("{} \"{name}\" not found", ap.resource))
}
