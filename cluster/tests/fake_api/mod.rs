//! A Kubernetes API server double at the HTTP level, behind a real
//! `kube::Client`: it keeps applied objects by path, answers lists, gets and
//! deletes as the API server does (404 Status for what is not there), serves
//! scripted watch events, and records every request (verb, path, query,
//! content type, body) for the tests to assert.

#![allow(dead_code)]

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    pub body: Option<Value>,
}

#[derive(Default)]
pub struct State {
    pub requests: Vec<Recorded>,
    /// Object path (`/api/v1/namespaces/ns/configmaps/x`) → object.
    pub objects: BTreeMap<String, Value>,
    /// What each watch answers, in turn: the events' lines; none left is an
    /// empty watch that ends at once (the server's own timeout).
    pub watches: VecDeque<Vec<Value>>,
    /// Paths whose apply or delete is answered with this status code.
    pub fail: BTreeMap<String, u16>,
    /// Plain-text answers (pod logs), by path.
    pub texts: BTreeMap<String, String>,
}

#[derive(Clone, Default)]
pub struct FakeApi {
    pub state: Arc<Mutex<State>>,
}

impl FakeApi {
    pub fn client(&self) -> kube::Client {
        let me = self.clone();
        let svc = tower::service_fn(move |req: Request<kube::client::Body>| {
            let me = me.clone();
            async move { Ok::<_, Infallible>(me.handle(req).await) }
        });
        kube::Client::new(svc, "default")
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn put(&self, path: &str, v: Value) {
        self.state.lock().unwrap().objects.insert(path.into(), v);
    }

    pub fn script_watch(&self, events: Vec<Value>) {
        self.state.lock().unwrap().watches.push_back(events);
    }

    async fn handle(&self, req: Request<kube::client::Body>) -> Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let query: BTreeMap<String, String> = parts
            .uri
            .query()
            .unwrap_or("")
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_string(), decode(v))
            })
            .collect();
        let path = parts.uri.path().to_string();
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body: Option<Value> =
            if bytes.is_empty() {
                None
            } else {
                Some(serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(&bytes).into_owned())
                }))
            };
        let method = parts.method.as_str().to_string();
        let mut st = self.state.lock().unwrap();
        st.requests.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            content_type,
            body: body.clone(),
        });
        if let Some(code) = st.fail.get(&path).copied() {
            if method != "GET" {
                return status(code, &format!("refused by the test for {path}"));
            }
        }
        if let Some(text) = st.texts.get(&path) {
            return Response::builder()
                .status(200)
                .header("content-type", "text/plain")
                .body(Full::new(Bytes::from(text.clone())))
                .unwrap();
        }
        match method.as_str() {
            // The pod proxy: the shard's own answer to its start request.
            "POST" if path.contains("/proxy/") => Response::builder()
                .status(202)
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(b"{\"starting\":true}")))
                .unwrap(),
            "PATCH" => {
                let mut obj = body.unwrap_or(Value::Null);
                obj["metadata"]["resourceVersion"] = json!("1");
                st.objects.insert(path, obj.clone());
                reply(200, &obj)
            }
            "DELETE" => match st.objects.remove(&path) {
                Some(_) => reply(
                    200,
                    &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
                ),
                None => status(404, &format!("{path} not found")),
            },
            "GET" if query.get("watch").is_some_and(|w| w == "true" || w == "1") => {
                let events = st.watches.pop_front().unwrap_or_default();
                let text: String = events.iter().map(|e| format!("{e}\n")).collect();
                Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(text)))
                    .unwrap()
            }
            "GET" => {
                if let Some(o) = st.objects.get(&path) {
                    return reply(200, o);
                }
                // A list: every object one level below the path.
                let prefix = format!("{path}/");
                let items: Vec<Value> = st
                    .objects
                    .iter()
                    .filter(|(p, _)| p.starts_with(&prefix) && !p[prefix.len()..].contains('/'))
                    .map(|(_, o)| o.clone())
                    .filter(|o| selected(o, &query))
                    .collect();
                let plural = path.rsplit('/').next().unwrap_or("");
                if items.is_empty() && !is_collection(plural) {
                    return status(404, &format!("{path} not found"));
                }
                reply(
                    200,
                    &json!({
                        "apiVersion": "v1",
                        "kind": "List",
                        "metadata": { "resourceVersion": "10" },
                        "items": items,
                    }),
                )
            }
            _ => status(405, "method not allowed"),
        }
    }
}

fn is_collection(last: &str) -> bool {
    last.ends_with('s')
}

/// `labelSelector=k=v` and `fieldSelector=involvedObject.name=x`, the two forms the driver uses.
fn selected(o: &Value, q: &BTreeMap<String, String>) -> bool {
    if let Some(sel) = q.get("labelSelector") {
        if let Some((k, v)) = sel.split_once('=') {
            if o["metadata"]["labels"][k] != v {
                return false;
            }
        }
    }
    if let Some(sel) = q.get("fieldSelector") {
        if let Some(name) = sel.strip_prefix("involvedObject.name=") {
            if o["involvedObject"]["name"] != name {
                return false;
            }
        }
    }
    true
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

fn reply(code: u16, v: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap()
}

fn status(code: u16, message: &str) -> Response<Full<Bytes>> {
    let reason = match code {
        404 => "NotFound",
        403 => "Forbidden",
        422 => "Invalid",
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

/// An InferenceService as the API returns it, Ready or not.
pub fn isvc(ns: &str, name: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": { "name": name, "namespace": ns },
        "status": { "conditions": [
            { "type": "PredictorReady", "status": if ready { "True" } else { "False" }, "reason": if ready { "" } else { "PredictorNotReady" } },
            { "type": "Ready", "status": if ready { "True" } else { "False" } },
        ] },
    })
}

pub fn isvc_path(ns: &str, name: &str) -> String {
    format!("/apis/serving.kserve.io/v1beta1/namespaces/{ns}/inferenceservices/{name}")
}

/// A pod of the load Job with its completion index, Ready or not, in a phase.
pub fn shard_pod(ns: &str, job: &str, index: u32, ready: bool, phase: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("{job}-{index}-x{index}"), "namespace": ns,
            "labels": { "job-name": job },
            "annotations": { "batch.kubernetes.io/job-completion-index": index.to_string() },
        },
        "spec": { "containers": [{ "name": "load" }] },
        "status": { "phase": phase, "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }] },
    })
}
