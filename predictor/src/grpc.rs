//! gRPC front end: `inference.GRPCInferenceService` of the Open Inference Protocol.

use std::sync::Arc;
use std::time::Instant;

use tonic::{Request, Response, Status};

use crate::app::{App, Inflight, EXTENSIONS, MODEL_VERSION, SERVER_NAME};
use crate::error::{ApiError, ErrorKind};
use crate::infer::{self, InputData, RawInput};
use crate::model::TensorSpec;
use crate::tensor::{DataType, TensorData};

/// The protocol's messages and service, shared with the load generator.
pub use lab_oip as pb;

use pb::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use pb::model_infer_response::InferOutputTensor;
use pb::model_metadata_response::TensorMetadata;

pub struct Service {
    app: Arc<App>,
}

pub fn server(
    app: Arc<App>,
    max_message_bytes: usize,
) -> StatusCodes<GrpcInferenceServiceServer<Service>> {
    StatusCodes(
        GrpcInferenceServiceServer::new(Service { app })
            // tonic reads a message's length prefix and refuses it before
            // buffering anything past this.
            .max_decoding_message_size(max_message_bytes)
            .max_encoding_message_size(usize::MAX),
    )
}

/// The gRPC service with the status codes the protocol's clients expect for
/// what tonic refuses before our handlers run: an oversized message is
/// RESOURCE_EXHAUSTED (tonic says OUT_OF_RANGE), a message that is not valid
/// protobuf is INVALID_ARGUMENT (tonic says INTERNAL).
#[derive(Clone)]
pub struct StatusCodes<S>(S);

impl<S: tonic::server::NamedService> tonic::server::NamedService for StatusCodes<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<B>> for StatusCodes<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let fut = self.0.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            remap_status(resp.headers_mut());
            Ok(resp)
        })
    }
}

/// Rewrites tonic's codes for the two refusals above in a headers-only
/// (trailers-only) error response.
fn remap_status(headers: &mut http::HeaderMap) {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| m.replace("%20", " "))
        .unwrap_or_default();
    let fixed = match code.as_deref() {
        Some("11") if message.contains("message length too large") => "8",
        Some("13") if message.contains("failed to decode Protobuf message") => "3",
        _ => return,
    };
    headers.insert("grpc-status", http::HeaderValue::from_static(fixed));
}

fn status(e: &ApiError) -> Status {
    match e.kind {
        ErrorKind::BadRequest => Status::invalid_argument(&e.message),
        ErrorKind::NotFound => Status::not_found(&e.message),
        ErrorKind::TooLarge => Status::resource_exhausted(&e.message),
        ErrorKind::Timeout => Status::deadline_exceeded(&e.message),
        ErrorKind::Unavailable => Status::unavailable(&e.message),
        ErrorKind::Internal => Status::internal(&e.message),
    }
}

fn meta(specs: &[TensorSpec]) -> Vec<TensorMetadata> {
    specs
        .iter()
        .map(|s| TensorMetadata {
            name: s.name.clone(),
            datatype: s.dtype.name().to_string(),
            shape: s.shape.clone(),
        })
        .collect()
}

/// Typed `InferTensorContents` as tensor data of the declared type.
fn typed(dtype: DataType, c: pb::InferTensorContents) -> Result<TensorData, String> {
    fn narrow<T: TryFrom<S>, S: Copy + std::fmt::Display>(
        v: Vec<S>,
        name: &str,
    ) -> Result<Vec<T>, String> {
        v.into_iter()
            .enumerate()
            .map(|(i, x)| {
                T::try_from(x).map_err(|_| format!("element {i} ({x}) is out of range for {name}"))
            })
            .collect()
    }
    let n = dtype.name();
    Ok(match dtype {
        DataType::Bool => TensorData::Bool(c.bool_contents),
        DataType::I8 => TensorData::I8(narrow(c.int_contents, n)?),
        DataType::I16 => TensorData::I16(narrow(c.int_contents, n)?),
        DataType::I32 => TensorData::I32(c.int_contents),
        DataType::I64 => TensorData::I64(c.int64_contents),
        DataType::U8 => TensorData::U8(narrow(c.uint_contents, n)?),
        DataType::U16 => TensorData::U16(narrow(c.uint_contents, n)?),
        DataType::U32 => TensorData::U32(c.uint_contents),
        DataType::U64 => TensorData::U64(c.uint64_contents),
        DataType::Fp32 => TensorData::Fp32(c.fp32_contents),
        DataType::Fp64 => TensorData::Fp64(c.fp64_contents),
    })
}

impl Service {
    async fn infer(&self, req: pb::ModelInferRequest) -> Result<pb::ModelInferResponse, ApiError> {
        let batcher = self.app.model(&req.model_name, Some(&req.model_version))?;
        self.app.admit()?;
        let model = &batcher.model;
        let use_raw = !req.raw_input_contents.is_empty();
        if use_raw && req.raw_input_contents.len() != req.inputs.len() {
            return Err(ApiError::bad_request(format!(
                "raw_input_contents has {} entries for {} inputs",
                req.raw_input_contents.len(),
                req.inputs.len()
            )));
        }
        let mut raw = Vec::with_capacity(req.inputs.len());
        for (i, input) in req.inputs.iter().enumerate() {
            let data = if use_raw {
                if input.contents.is_some() {
                    return Err(ApiError::bad_request(format!(
                        "input '{}': contents and raw_input_contents are both set",
                        input.name
                    )));
                }
                InputData::Raw(&req.raw_input_contents[i])
            } else {
                match (&input.contents, DataType::parse(&input.datatype)) {
                    (Some(c), Some(dtype)) => {
                        InputData::Typed(typed(dtype, c.clone()).map_err(|e| {
                            ApiError::bad_request(format!("input '{}': {e}", input.name))
                        })?)
                    }
                    // prepare() reports the unknown datatype or the missing data.
                    _ => InputData::Missing,
                }
            };
            raw.push(RawInput {
                name: input.name.clone(),
                datatype: input.datatype.clone(),
                shape: input.shape.clone(),
                data,
            });
        }
        let (rows, tensors) = infer::prepare(model, batcher.max_batch_size(), raw)?;
        let names: Vec<&str> = req.outputs.iter().map(|o| o.name.as_str()).collect();
        let selected = infer::select_outputs(model, &names)?;
        let outputs = infer::run(&batcher, rows, tensors).await?;
        let mut resp = pb::ModelInferResponse {
            model_name: model.name.clone(),
            model_version: MODEL_VERSION.to_string(),
            id: req.id.clone(),
            ..Default::default()
        };
        for i in selected {
            let (data, shape) = &outputs[i];
            resp.outputs.push(InferOutputTensor {
                name: model.outputs[i].name.clone(),
                datatype: model.outputs[i].dtype.name().to_string(),
                shape: shape.clone(),
                ..Default::default()
            });
            resp.raw_output_contents.push(data.to_le_bytes().into());
        }
        Ok(resp)
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for Service {
    async fn server_live(
        &self,
        _: Request<pb::ServerLiveRequest>,
    ) -> Result<Response<pb::ServerLiveResponse>, Status> {
        Ok(Response::new(pb::ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<pb::ServerReadyRequest>,
    ) -> Result<Response<pb::ServerReadyResponse>, Status> {
        Ok(Response::new(pb::ServerReadyResponse {
            ready: self.app.is_ready(),
        }))
    }

    async fn model_ready(
        &self,
        req: Request<pb::ModelReadyRequest>,
    ) -> Result<Response<pb::ModelReadyResponse>, Status> {
        let r = req.into_inner();
        // A model still loading is known and not ready.
        if self.app.is_loading(&r.name) {
            return Ok(Response::new(pb::ModelReadyResponse { ready: false }));
        }
        self.app
            .model(&r.name, Some(&r.version))
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::ModelReadyResponse {
            ready: self.app.is_ready(),
        }))
    }

    async fn server_metadata(
        &self,
        _: Request<pb::ServerMetadataRequest>,
    ) -> Result<Response<pb::ServerMetadataResponse>, Status> {
        Ok(Response::new(pb::ServerMetadataResponse {
            name: SERVER_NAME.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            extensions: EXTENSIONS.iter().map(|s| s.to_string()).collect(),
        }))
    }

    async fn model_metadata(
        &self,
        req: Request<pb::ModelMetadataRequest>,
    ) -> Result<Response<pb::ModelMetadataResponse>, Status> {
        let r = req.into_inner();
        let b = self
            .app
            .model(&r.name, Some(&r.version))
            .map_err(|e| status(&e))?;
        Ok(Response::new(pb::ModelMetadataResponse {
            name: b.model.name.clone(),
            versions: vec![MODEL_VERSION.to_string()],
            platform: b.model.platform.to_string(),
            inputs: meta(&b.model.inputs),
            outputs: meta(&b.model.outputs),
        }))
    }

    async fn model_infer(
        &self,
        req: Request<pb::ModelInferRequest>,
    ) -> Result<Response<pb::ModelInferResponse>, Status> {
        let start = Instant::now();
        let req = req.into_inner();
        let name = req.model_name.clone();
        let label = if self.app.model(&name, None).is_ok() || self.app.is_loading(&name) {
            name.as_str()
        } else {
            "_unknown"
        };
        let _inflight = Inflight::new(&self.app.metrics, label);
        let result = self.infer(req).await;
        let code = result.as_ref().map_or_else(ApiError::http_status, |_| 200);
        self.app
            .metrics
            .request(label, code, start.elapsed().as_secs_f64());
        result.map(Response::new).map_err(|e| status(&e))
    }
}
