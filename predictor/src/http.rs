//! REST front end: Open Inference Protocol V2 (JSON and the binary tensor data
//! extension), KServe V1 `:predict`, and `/metrics`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::app::{App, Inflight, EXTENSIONS, MODEL_VERSION, SERVER_NAME};
use crate::error::{ApiError, ErrorKind};
use crate::infer::{self, InputData, RawInput};
use crate::model::{Model, TensorSpec};
use crate::tensor::TensorData;

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

/// Reads the whole body, refusing (413) anything over the limit without reading it all.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorKind::TooLarge,
            format!("request body is larger than the limit of {limit} bytes"),
        )
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > limit as u64 {
            return Err(too_large());
        }
    }
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) => Err(ApiError::bad_request(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// Runs a handler body, then records the request's status and latency.
async fn measured<F>(app: &App, model: &str, start: Instant, f: F) -> Response
where
    F: std::future::Future<Output = Result<Response, ApiError>>,
{
    let _inflight = Inflight::new(&app.metrics);
    let response = match f.await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    // Unknown names share one label so clients cannot grow the metric set.
    let label = if app.model(model, None).is_ok() {
        model
    } else {
        "_unknown"
    };
    app.metrics.request(
        label,
        response.status().as_u16(),
        start.elapsed().as_secs_f64(),
    );
    response
}

#[derive(Deserialize)]
struct V2Request {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    parameters: Map<String, Value>,
    inputs: Vec<V2Input>,
    #[serde(default)]
    outputs: Vec<V2RequestedOutput>,
}

#[derive(Deserialize)]
struct V2Input {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    #[serde(default)]
    data: Option<Value>,
}

#[derive(Deserialize)]
struct V2RequestedOutput {
    name: String,
    #[serde(default)]
    parameters: Map<String, Value>,
}

#[derive(Serialize)]
struct V2Response<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Value>,
    outputs: Vec<V2Output<'a>>,
}

#[derive(Serialize)]
struct V2Output<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [i64],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a TensorData>,
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
        let body = read_body(&headers, body, app.max_body_bytes).await?;
        let header_len = match headers.get(HEADER_LENGTH) {
            None => body.len(),
            Some(v) => v
                .to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .filter(|n| *n <= body.len())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Inference-Header-Content-Length {v:?} is not a length within the {}-byte body",
                        body.len()
                    ))
                })?,
        };
        let req: V2Request = serde_json::from_slice(&body[..header_len])
            .map_err(|e| ApiError::bad_request(format!("malformed JSON request: {e}")))?;
        let mut binary = &body[header_len..];
        let mut raw = Vec::with_capacity(req.inputs.len());
        for input in &req.inputs {
            let data = match (input.parameters.get("binary_data_size"), &input.data) {
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
                    if size > binary.len() {
                        return Err(ApiError::bad_request(format!(
                            "input '{}': binary_data_size {size} but only {} bytes of binary data remain",
                            input.name,
                            binary.len()
                        )));
                    }
                    let (chunk, rest) = binary.split_at(size);
                    binary = rest;
                    InputData::Raw(chunk)
                }
                (None, Some(v)) => InputData::Json(v),
                (None, None) => InputData::Missing,
            };
            raw.push(RawInput {
                name: &input.name,
                datatype: &input.datatype,
                shape: &input.shape,
                data,
            });
        }
        if !binary.is_empty() {
            return Err(ApiError::bad_request(format!(
                "{} bytes of binary data follow the JSON but no input claims them",
                binary.len()
            )));
        }
        let model = &batcher.model;
        let (rows, tensors) = infer::prepare(model, batcher.max_batch_size(), raw)?;
        let names: Vec<&str> = req.outputs.iter().map(|o| o.name.as_str()).collect();
        let selected = infer::select_outputs(model, &names)?;
        let default_binary = req
            .parameters
            .get("binary_data_output")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let outputs = infer::run(&batcher, rows, tensors).await?;

        let mut tail: Vec<u8> = Vec::new();
        let mut out_json = Vec::with_capacity(selected.len());
        let mut raw_parts = Vec::new();
        for (k, &i) in selected.iter().enumerate() {
            let (data, shape) = &outputs[i];
            let wants_binary = req
                .outputs
                .get(k)
                .and_then(|o| o.parameters.get("binary_data"))
                .and_then(Value::as_bool)
                .unwrap_or(default_binary);
            let (parameters, data) = if wants_binary {
                let bytes = data.to_le_bytes();
                let p = json!({ "binary_data_size": bytes.len() });
                raw_parts.push(bytes);
                (Some(p), None)
            } else {
                (None, Some(data))
            };
            out_json.push(V2Output {
                name: &model.outputs[i].name,
                datatype: model.outputs[i].dtype.name(),
                shape,
                parameters,
                data,
            });
        }
        let resp = V2Response {
            model_name: &model.name,
            model_version: MODEL_VERSION,
            id: req.id.as_ref(),
            outputs: out_json,
        };
        let mut body = serde_json::to_vec(&resp)
            .map_err(|e| ApiError::internal(format!("encoding the response: {e}")))?;
        if raw_parts.is_empty() {
            return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
        }
        let json_len = body.len();
        for part in raw_parts {
            tail.extend_from_slice(&part);
        }
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

/// Shape of nested JSON arrays, following the first element at each level.
fn nested_shape(v: &Value) -> Vec<i64> {
    let mut shape = Vec::new();
    let mut cur = v;
    while let Value::Array(items) = cur {
        shape.push(items.len() as i64);
        match items.first() {
            Some(first) => cur = first,
            None => break,
        }
    }
    shape
}

/// Nests a flat row-major list of values into arrays of the given dimensions.
fn nest(values: &[Value], dims: &[i64]) -> Value {
    if dims.len() <= 1 {
        return Value::Array(values.to_vec());
    }
    let inner: usize = dims[1..]
        .iter()
        .map(|d| *d as usize)
        .product::<usize>()
        .max(1);
    Value::Array(values.chunks(inner).map(|c| nest(c, &dims[1..])).collect())
}

/// One JSON value per row of an output.
fn rows_of(data: &TensorData, shape: &[i64]) -> Vec<Value> {
    let flat = match data {
        // Widening f32 to f64 would print 0.9816568493843079 for 0.98165685; go
        // through the f32's shortest decimal instead.
        TensorData::Fp32(v) => v
            .iter()
            .map(|x| {
                x.to_string()
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            })
            .collect(),
        _ => match serde_json::to_value(data) {
            Ok(Value::Array(v)) => v,
            _ => Vec::new(),
        },
    };
    let rows = shape.first().copied().unwrap_or(1).max(1) as usize;
    let per_row = (flat.len() / rows).max(1);
    flat.chunks(per_row)
        .map(|c| {
            if shape.len() <= 1 {
                c[0].clone()
            } else {
                nest(c, &shape[1..])
            }
        })
        .collect()
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
        let body = read_body(&headers, body, app.max_body_bytes).await?;
        let req: Map<String, Value> = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON request: {e}")))?;
        let instances = req
            .get("instances")
            .or_else(|| req.get("inputs"))
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                ApiError::bad_request("the request needs a non-empty \"instances\" array")
            })?;
        let model = &batcher.model;
        // One input: instances are its rows. Several: each instance is an object.
        let mut columns: Vec<Value> = Vec::with_capacity(model.inputs.len());
        if model.inputs.len() == 1 {
            columns.push(Value::Array(instances.clone()));
        } else {
            for spec in &model.inputs {
                let mut col = Vec::with_capacity(instances.len());
                for (i, inst) in instances.iter().enumerate() {
                    let v = inst.get(&spec.name).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "instance {i}: missing input '{}' (the model has several inputs, so each instance is an object keyed by input name)",
                            spec.name
                        ))
                    })?;
                    col.push(v.clone());
                }
                columns.push(Value::Array(col));
            }
        }
        let shapes: Vec<Vec<i64>> = columns.iter().map(nested_shape).collect();
        let raw = model
            .inputs
            .iter()
            .zip(&columns)
            .zip(&shapes)
            .map(|((spec, col), shape)| RawInput {
                name: &spec.name,
                datatype: spec.dtype.name(),
                shape,
                data: InputData::Json(col),
            })
            .collect();
        let (rows, tensors) = infer::prepare(model, batcher.max_batch_size(), raw)?;
        let outputs = infer::run(&batcher, rows, tensors).await?;
        let per_output: Vec<Vec<Value>> = outputs.iter().map(|(d, s)| rows_of(d, s)).collect();
        let predictions: Vec<Value> = if per_output.len() == 1 {
            per_output.into_iter().next().unwrap_or_default()
        } else {
            (0..rows as usize)
                .map(|r| {
                    let mut obj = Map::new();
                    for (spec, vals) in model.outputs.iter().zip(&per_output) {
                        obj.insert(spec.name.clone(), vals.get(r).cloned().unwrap_or(Value::Null));
                    }
                    Value::Object(obj)
                })
                .collect()
        };
        Ok(json_response(StatusCode::OK, json!({ "predictions": predictions })))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_rows_nest_by_the_output_shape() {
        let d = TensorData::Fp32(vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(
            rows_of(&d, &[2, 2]),
            vec![json!([1.0, 2.0]), json!([3.0, 4.0])]
        );
        let l = TensorData::I64(vec![7, 8]);
        assert_eq!(rows_of(&l, &[2]), vec![json!(7), json!(8)]);
        assert_eq!(nested_shape(&json!([[1, 2, 3], [4, 5, 6]])), vec![2, 3]);
    }
}
