//! REST front end: Open Inference Protocol V2 (JSON and the binary tensor data
//! extension), KServe V1 `:predict`, and `/metrics`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};

use crate::app::{App, Inflight, EXTENSIONS, MODEL_VERSION, SERVER_NAME};
use crate::conn::ConnHandle;
use crate::decode::{self, InputValues};
use crate::encode;
use crate::error::{ApiError, ErrorKind};
use crate::infer::{self, InputData, RawInput};
use crate::model::{Model, TensorSpec};
use crate::tensor::{DataType, TensorData};

const HEADER_LENGTH: &str = "inference-header-content-length";

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(ready))
        .route("/v2", get(server_metadata))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/versions/{version}", get(model_metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(model_ready),
        )
        .route("/v2/models/{name}/infer", axum::routing::post(infer_v2))
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            axum::routing::post(infer_v2),
        )
        .route("/v1/models", get(v1_list))
        .route("/v1/models/{spec}", get(v1_status).post(v1_predict))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(every_response))
        .with_state(app)
}

fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(json!({ "error": e.message }))).into_response()
}

fn json_response(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

async fn not_found() -> Response {
    error_response(&ApiError::not_found("no such endpoint"))
}

async fn live() -> Response {
    json_response(StatusCode::OK, json!({ "live": true }))
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    let ready = app.is_ready();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(status, json!({ "ready": ready }))
}

async fn server_metadata() -> Response {
    json_response(
        StatusCode::OK,
        json!({ "name": SERVER_NAME, "version": env!("CARGO_PKG_VERSION"), "extensions": EXTENSIONS }),
    )
}

fn tensor_meta(specs: &[TensorSpec]) -> Vec<Value> {
    specs
        .iter()
        .map(|s| json!({ "name": s.name, "datatype": s.dtype.name(), "shape": s.shape }))
        .collect()
}

pub fn metadata_json(model: &Model) -> Value {
    json!({
        "name": model.name,
        "versions": [MODEL_VERSION],
        "platform": model.platform,
        "inputs": tensor_meta(&model.inputs),
        "outputs": tensor_meta(&model.outputs),
    })
}

async fn model_metadata(
    State(app): State<Arc<App>>,
    Path(p): Path<HashMap<String, String>>,
) -> Response {
    match app.model(&p["name"], p.get("version").map(String::as_str)) {
        Ok(b) => json_response(StatusCode::OK, metadata_json(&b.model)),
        Err(e) => error_response(&e),
    }
}

async fn model_ready(
    State(app): State<Arc<App>>,
    Path(p): Path<HashMap<String, String>>,
) -> Response {
    match app.model(&p["name"], p.get("version").map(String::as_str)) {
        Ok(b) => {
            let ready = app.is_ready();
            let status = if ready {
                StatusCode::OK
            } else {
                StatusCode::SERVICE_UNAVAILABLE
            };
            json_response(status, json!({ "name": b.model.name, "ready": ready }))
        }
        Err(_) if app.is_loading(&p["name"]) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "name": p["name"], "ready": false }),
        ),
        Err(e) => error_response(&e),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let text = app.metrics.render(&app.queue_depths());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// Bodies up to this size are read whole and decoded on the runtime's thread
/// (well under a millisecond); larger ones are decoded as they arrive, on a
/// decoding thread.
const SMALL_BODY: usize = 64 * 1024;

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorKind::TooLarge,
        format!("request body is larger than the limit of {limit} bytes"),
    )
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

/// Passes the body's chunks to `sink` as they arrive, within the size limit and
/// the body timeout; a shutdown stops the wait (503). Returns the bytes read.
async fn pump_body<F>(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    mut sink: F,
) -> Result<usize, ApiError>
where
    F: AsyncSink,
{
    let limit = app.max_body_bytes;
    if content_length(headers).is_some_and(|len| len > limit as u64) {
        return Err(too_large(limit));
    }
    let mut stop = app.stop.subscribe();
    let timeout = app.body_timeout;
    let read = async {
        let mut body = body;
        let mut total = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                ApiError::bad_request(format!("could not read the request body: {e}"))
            })?;
            if let Ok(data) = frame.into_data() {
                total += data.len();
                if total > limit {
                    return Err(too_large(limit));
                }
                if !sink.push(data).await {
                    // The decoder stopped (it found an error): its error is the answer.
                    break;
                }
            }
        }
        Ok(total)
    };
    tokio::select! {
        r = tokio::time::timeout(timeout, read) => r.unwrap_or_else(|_| Err(ApiError::new(
            ErrorKind::Timeout,
            format!("the request body did not arrive within the body timeout of {}s", timeout.as_secs_f64()),
        ))),
        _ = stop.wait_for(|s| *s) => Err(ApiError::unavailable("server is shutting down")),
    }
}

/// Where [`pump_body`] puts chunks.
trait AsyncSink {
    /// False when the receiver is gone.
    fn push(&mut self, chunk: Bytes) -> impl std::future::Future<Output = bool> + Send;
}

impl AsyncSink for &mut Vec<Bytes> {
    async fn push(&mut self, chunk: Bytes) -> bool {
        Vec::push(self, chunk);
        true
    }
}

impl AsyncSink for tokio::sync::mpsc::Sender<Bytes> {
    async fn push(&mut self, chunk: Bytes) -> bool {
        self.send(chunk).await.is_ok()
    }
}

/// Reads the whole body into one buffer.
async fn read_body(app: &App, headers: &HeaderMap, body: Body) -> Result<Bytes, ApiError> {
    let mut chunks = Vec::new();
    let total = pump_body(app, headers, body, &mut chunks).await?;
    if chunks.len() == 1 {
        return Ok(chunks.pop().unwrap_or_default());
    }
    let mut all = Vec::with_capacity(total);
    for c in chunks {
        all.extend_from_slice(&c);
    }
    Ok(all.into())
}

/// Decodes a JSON body with `slice` (small bodies, on this thread) or `reader`
/// (larger ones, as they arrive, on a decoding thread).
async fn decode_json<T, S, R>(
    app: &App,
    headers: &HeaderMap,
    body: Body,
    slice: S,
    reader: R,
) -> Result<T, ApiError>
where
    T: Send + 'static,
    S: FnOnce(&[u8]) -> Result<T, String>,
    R: FnOnce(crate::decode::ChunkReader, usize) -> Result<T, String> + Send + 'static,
{
    let malformed = |e: String| ApiError::bad_request(format!("malformed JSON request: {e}"));
    let len = content_length(headers);
    if len.is_some_and(|n| n <= SMALL_BODY as u64) {
        let body = read_body(app, headers, body).await?;
        return slice(&body).map_err(malformed);
    }
    let size_hint = len.map_or(app.max_body_bytes, |n| n as usize);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
    let decoded = crate::decode::on_decode_thread(move || {
        reader(crate::decode::ChunkReader::new(rx), size_hint)
    })
    .map_err(|e| ApiError::unavailable(format!("cannot start a decoding thread: {e}")))?;
    // The body's own failure (too large, too slow, shutdown) comes first: the
    // decoder only saw it end early.
    pump_body(app, headers, body, tx).await?;
    decoded
        .await
        .map_err(|_| ApiError::internal("the decoding thread stopped"))?
        .map_err(malformed)
}

/// Runs a handler body, then records the request's status and latency.
async fn measured<F>(app: &App, model: &str, start: Instant, f: F) -> Response
where
    F: std::future::Future<Output = Result<Response, ApiError>>,
{
    // Unknown names share one label so clients cannot grow the metric set.
    let label = if app.model(model, None).is_ok() || app.is_loading(model) {
        model
    } else {
        "_unknown"
    };
    let _inflight = Inflight::new(&app.metrics, label);
    let response = match f.await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    app.metrics.request(
        label,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

fn bool_param(params: &Map<String, Value>, key: &str) -> Option<bool> {
    params.get(key).and_then(Value::as_bool)
}

async fn infer_v2(
    State(app): State<Arc<App>>,
    Path(p): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let start = Instant::now();
    let name = p["name"].clone();
    measured(&app, &name, start, async {
        let batcher = app.model(&name, p.get("version").map(String::as_str))?;
        app.admit()?;
        let (req, binary) = match headers.get(HEADER_LENGTH) {
            // The binary extension: a JSON header, then raw tensors.
            Some(v) => {
                let body = read_body(&app, &headers, body).await?;
                let header_len = v
                    .to_str()
                    .ok()
                    .and_then(|s| s.trim().parse::<usize>().ok())
                    .filter(|n| *n <= body.len())
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "Inference-Header-Content-Length {v:?} is not a length within the {}-byte body",
                            body.len()
                        ))
                    })?;
                let json = body.slice(..header_len);
                let req = if json.len() <= SMALL_BODY {
                    decode::decode_v2_slice(&batcher.model, &json)
                } else {
                    let b = batcher.clone();
                    crate::decode::on_decode_thread(move || decode::decode_v2_slice(&b.model, &json))
                        .map_err(|e| ApiError::unavailable(format!("cannot start a decoding thread: {e}")))?
                        .await
                        .map_err(|_| ApiError::internal("the decoding thread stopped"))?
                }
                .map_err(|e| ApiError::bad_request(format!("malformed JSON request: {e}")))?;
                (req, body.slice(header_len..))
            }
            None => {
                let b = batcher.clone();
                let req = decode_json(
                    &app,
                    &headers,
                    body,
                    |bytes| decode::decode_v2_slice(&batcher.model, bytes),
                    move |reader, len| decode::decode_v2_reader(&b.model, reader, len),
                )
                .await?;
                (req, Bytes::new())
            }
        };
        let mut rest = &binary[..];
        let mut raw = Vec::with_capacity(req.inputs.len());
        for input in req.inputs {
            let data = match (input.parameters.get("binary_data_size"), input.data) {
                (Some(size), _) => {
                    let size = size
                        .as_u64()
                        .and_then(|s| usize::try_from(s).ok())
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "input '{}': binary_data_size must be a non-negative integer",
                                input.name
                            ))
                        })?;
                    if size > rest.len() {
                        return Err(ApiError::bad_request(format!(
                            "input '{}': binary_data_size {size} but only {} bytes of binary data remain",
                            input.name,
                            rest.len()
                        )));
                    }
                    let (chunk, tail) = rest.split_at(size);
                    rest = tail;
                    InputData::Raw(chunk)
                }
                (None, InputValues::Decoded(d)) => InputData::Json(d),
                (None, InputValues::Text(t)) => match DataType::parse(&input.datatype) {
                    Some(dtype) => InputData::Json(decode::decode_text(dtype, t.get()).map_err(|e| {
                        ApiError::bad_request(format!("input '{}': {e}", input.name))
                    })?),
                    // prepare() names the unknown datatype.
                    None => InputData::Missing,
                },
                (None, InputValues::Absent) => InputData::Missing,
            };
            raw.push(RawInput {
                name: input.name,
                datatype: input.datatype,
                shape: input.shape,
                data,
            });
        }
        if !rest.is_empty() {
            return Err(ApiError::bad_request(format!(
                "{} bytes of binary data follow the JSON but no input claims them",
                rest.len()
            )));
        }
        let model = &batcher.model;
        let (rows, tensors) = infer::prepare(model, batcher.max_batch_size(), raw)?;
        let names: Vec<&str> = req.outputs.iter().map(|o| o.name.as_str()).collect();
        let selected = infer::select_outputs(model, &names)?;
        let default_binary = bool_param(&req.parameters, "binary_data_output").unwrap_or(false);
        let outputs = infer::run(&batcher, rows, tensors).await?;

        let plan: Vec<(usize, bool)> = selected
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let wants_binary = req
                    .outputs
                    .get(k)
                    .and_then(|o| bool_param(&o.parameters, "binary_data"))
                    .unwrap_or(default_binary);
                (i, wants_binary)
            })
            .collect();
        let elements: usize = plan.iter().map(|(i, _)| outputs[*i].0.len()).sum();
        let id = req.id;
        let (mut body, tail) = if elements <= LARGE_OUTPUT {
            v2_body(model, id.as_ref(), &outputs, &plan)
        } else {
            // Writing millions of numbers takes long enough to delay probes.
            let b = batcher.clone();
            off_runtime(move || v2_body(&b.model, id.as_ref(), &outputs, &plan)).await?
        };
        if tail.is_empty() {
            return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
        }
        let json_len = body.len();
        body.extend_from_slice(&tail);
        let mut response = ([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response();
        response.headers_mut().insert(
            HEADER_LENGTH,
            HeaderValue::from_str(&json_len.to_string()).expect("digits are a valid header"),
        );
        Ok(response)
    })
    .await
}

/// Outputs with more elements than this are written on a thread of their own.
const LARGE_OUTPUT: usize = 16 * 1024;

/// Runs `f` on a decoding thread (lower priority, off the runtime's threads).
async fn off_runtime<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, ApiError> {
    crate::decode::on_decode_thread(f)
        .map_err(|e| ApiError::unavailable(format!("cannot start a thread: {e}")))?
        .await
        .map_err(|_| ApiError::internal("the encoding thread stopped"))
}

/// The V2 response JSON and the binary tail; `plan` is (output index, as binary).
fn v2_body(
    model: &Model,
    id: Option<&Value>,
    outputs: &crate::model::Tensors,
    plan: &[(usize, bool)],
) -> (Vec<u8>, Vec<u8>) {
    let mut tail: Vec<u8> = Vec::new();
    let mut out = Vec::with_capacity(plan.len());
    for &(i, wants_binary) in plan {
        let (data, shape) = &outputs[i];
        let binary_size = if wants_binary {
            let bytes = data.to_le_bytes();
            let n = bytes.len();
            tail.extend_from_slice(&bytes);
            Some(n)
        } else {
            None
        };
        out.push(encode::V2Output {
            name: &model.outputs[i].name,
            datatype: model.outputs[i].dtype.name(),
            shape,
            data,
            binary_size,
        });
    }
    (
        encode::v2_response(&model.name, MODEL_VERSION, id, &out),
        tail,
    )
}

async fn v1_list(State(app): State<Arc<App>>) -> Response {
    json_response(StatusCode::OK, json!({ "models": app.model_names() }))
}

async fn v1_status(State(app): State<Arc<App>>, Path(spec): Path<String>) -> Response {
    match app.model(&spec, None) {
        Ok(b) => json_response(
            StatusCode::OK,
            json!({ "name": b.model.name, "ready": app.is_ready() }),
        ),
        Err(e) => error_response(&e),
    }
}

async fn v1_predict(
    State(app): State<Arc<App>>,
    Path(spec): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let start = Instant::now();
    let (name, verb) = spec.split_once(':').unwrap_or((spec.as_str(), ""));
    let name = name.to_string();
    let verb = verb.to_string();
    measured(&app, &name, start, async {
        let batcher = app.model(&name, None)?;
        if verb != "predict" {
            return Err(ApiError::not_found(format!(
                "unsupported V1 verb '{verb}': use POST /v1/models/{name}:predict"
            )));
        }
        app.admit()?;
        let b = batcher.clone();
        let cols = decode_json(
            &app,
            &headers,
            body,
            |bytes| decode::decode_v1_slice(&batcher.model, bytes),
            move |reader, _| decode::decode_v1_reader(&b.model, reader),
        )
        .await?;
        let model = &batcher.model;
        let raw = model
            .inputs
            .iter()
            .zip(cols.columns)
            .map(|(spec, col)| RawInput {
                name: spec.name.clone(),
                datatype: spec.dtype.name().to_string(),
                shape: col.nesting.iter().map(|n| *n as i64).collect(),
                data: InputData::Json(col),
            })
            .collect();
        let (rows, tensors) = infer::prepare(model, batcher.max_batch_size(), raw)?;
        let outputs = infer::run(&batcher, rows, tensors).await?;
        let rows = if model.batchable {
            rows as usize
        } else {
            cols.instances
        };
        let write = move |model: &Model, outputs: &crate::model::Tensors| {
            let named: Vec<(&str, &TensorData, &[i64])> = model
                .outputs
                .iter()
                .zip(outputs)
                .map(|(spec, (d, s))| (spec.name.as_str(), d, s.as_slice()))
                .collect();
            encode::v1_predictions(rows, &named)
        };
        let elements: usize = outputs.iter().map(|(d, _)| d.len()).sum();
        let body = if elements <= LARGE_OUTPUT {
            write(model, &outputs)
        } else {
            let b = batcher.clone();
            off_runtime(move || write(&b.model, &outputs)).await?
        };
        Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
    })
    .await
}

/// Wraps every response: an error without a JSON body (axum's 405, a path it
/// could not parse) gets `{"error": ...}`, and a response sent before its
/// request's body was read closes the connection with a lingering close.
async fn every_response(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use http_body::Body as _;
    let conn = req.extensions().get::<ConnHandle>().cloned();
    let read = Arc::new(AtomicBool::new(req.body().is_end_stream()));
    let req = req.map(|b| {
        Body::new(Tracked {
            inner: b,
            read: read.clone(),
        })
    });
    let mut resp = next.run(req).await;
    if !read.load(Ordering::Relaxed) {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        if let Some(c) = conn {
            c.0.linger_on_close();
        }
    }
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let (mut parts, body) = resp.into_parts();
        let text = axum::body::to_bytes(body, 64 * 1024)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&text).trim().to_string();
        let message = if text.is_empty() {
            status.canonical_reason().unwrap_or("error").to_lowercase()
        } else {
            text
        };
        let body = json!({ "error": message }).to_string();
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::from(body));
    }
    resp
}

/// A request body that records when it has been read to the end.
struct Tracked {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        if let std::task::Poll::Ready(None) = r {
            self.read.store(true, Ordering::Relaxed);
        } else if self.inner.is_end_stream() {
            self.read.store(true, Ordering::Relaxed);
        }
        r
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_content_length_is_refused_before_reading() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("1000"));
        assert_eq!(content_length(&h), Some(1000));
        assert_eq!(too_large(10).http_status(), 413);
    }
}
