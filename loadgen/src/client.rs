//! Sending one request and saying how it ended: HTTP/1.1 keep-alive pool or
//! HTTP/2 (hyper), or gRPC (tonic), with a per-request timeout.

use crate::config::{Fill, LoadConfig, Payload, Protocol, Stream};
use crate::error::LoadError;
use crate::grpc::{
    self, ModelInferRequest, ModelInferResponse, ModelMetadataRequest, ModelMetadataResponse,
};
use crate::payload::{self, Tensor, TensorSpec};
use crate::pool::H1Pool;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::Duration;
use tonic::codegen::http::uri::PathAndQuery;

/// RNG purpose of tensor values, apart from the schedule's streams.
const PAYLOAD_RNG: u64 = 0x7061_796c_6f61_6400;

/// Header carrying the request's place in the schedule, for servers and tests.
pub const SEQ_HEADER: &str = "x-lab-seq";

/// Why a request failed; the key names the reason in `failed_by_reason`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The connection could not be made.
    Connect,
    /// No complete answer within the per-request timeout.
    Timeout,
    /// An answer with a non-2xx status.
    Http(u16),
    /// A gRPC status other than OK.
    Grpc(tonic::Code),
    /// The connection broke mid-request, or the answer was malformed.
    Transport,
}

impl Failure {
    pub fn key(&self) -> String {
        match self {
            Failure::Connect => "connect".into(),
            Failure::Timeout => "timeout".into(),
            Failure::Http(code) => format!("http_{code}"),
            Failure::Grpc(code) => format!("grpc_{}", grpc_code_name(*code)),
            Failure::Transport => "transport".into(),
        }
    }
}

fn grpc_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "ok",
        Cancelled => "cancelled",
        Unknown => "unknown",
        InvalidArgument => "invalid_argument",
        DeadlineExceeded => "deadline_exceeded",
        NotFound => "not_found",
        AlreadyExists => "already_exists",
        PermissionDenied => "permission_denied",
        ResourceExhausted => "resource_exhausted",
        FailedPrecondition => "failed_precondition",
        Aborted => "aborted",
        OutOfRange => "out_of_range",
        Unimplemented => "unimplemented",
        Internal => "internal",
        Unavailable => "unavailable",
        DataLoss => "data_loss",
        Unauthenticated => "unauthenticated",
    }
}

type HyperClient = hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>;

/// A connection pool to the target.
#[derive(Clone)]
pub enum Client {
    Http {
        /// Metadata reads, and every request over HTTP/2.
        hyper: HyperClient,
        /// Requests over HTTP/1.1 (absent with `--http2`).
        h1: Option<Arc<H1Pool>>,
    },
    Grpc(tonic::client::Grpc<tonic::transport::Channel>),
}

/// Everything needed to send one stream's request, built once.
// One per stream, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Template {
    Http {
        method: Method,
        /// Absolute URI, for the HTTP/2 client.
        uri: Uri,
        /// Path and query, for HTTP/1.1 connections (with `Host` in `headers`).
        origin: Uri,
        headers: HeaderMap,
        body: Bytes,
    },
    Grpc(ModelInferRequest),
}

impl Client {
    pub fn new(config: &LoadConfig) -> Result<Client, LoadError> {
        if config.protocol == Protocol::V2Grpc {
            let endpoint = tonic::transport::Endpoint::from_shared(config.target.clone())
                .map_err(|e| LoadError::BadInput(format!("target `{}`: {e}", config.target)))?
                .connect_timeout(config.timeout)
                .tcp_nodelay(true);
            return Ok(Client::Grpc(tonic::client::Grpc::new(
                endpoint.connect_lazy(),
            )));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.timeout));
        let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            // Keep every connection the cap can need, so a burst does not churn sockets.
            .pool_max_idle_per_host(config.max_in_flight as usize)
            .pool_idle_timeout(Duration::from_secs(90))
            .http2_only(config.http2)
            .build(connector);
        let h1 = if config.http2 {
            None
        } else {
            let uri: Uri = config
                .target
                .parse()
                .map_err(|e| LoadError::BadInput(format!("target `{}`: {e}", config.target)))?;
            let host = uri.host().unwrap_or("localhost");
            let port = uri.port_u16().unwrap_or(80);
            Some(Arc::new(H1Pool::new(
                format!("{host}:{port}"),
                config.timeout,
            )))
        };
        Ok(Client::Http { hyper: client, h1 })
    }

    /// Sends one request and reads the whole answer, within `timeout`.
    pub async fn send(
        &self,
        template: &Template,
        seq: u64,
        timeout: Duration,
    ) -> Result<(), Failure> {
        match tokio::time::timeout(timeout, self.send_inner(template, seq)).await {
            Ok(r) => r,
            Err(_) => Err(Failure::Timeout),
        }
    }

    async fn send_inner(&self, template: &Template, seq: u64) -> Result<(), Failure> {
        match (self, template) {
            (Client::Http { h1: Some(pool), .. }, Template::Http { .. }) => {
                let mut conn = pool.checkout().await?;
                let (result, reusable) = send_h1(&mut conn, template, seq).await;
                if reusable {
                    pool.checkin(conn);
                }
                result
            }
            (
                Client::Http { hyper, h1: None },
                Template::Http {
                    method,
                    uri,
                    headers,
                    body,
                    ..
                },
            ) => {
                let req = request(method, uri, headers, body, seq);
                let resp = hyper.request(req).await.map_err(|e| {
                    if e.is_connect() {
                        Failure::Connect
                    } else {
                        Failure::Transport
                    }
                })?;
                let status = resp.status();
                resp.into_body()
                    .collect()
                    .await
                    .map_err(|_| Failure::Transport)?;
                status_result(status)
            }
            (Client::Grpc(grpc), Template::Grpc(msg)) => {
                let mut grpc = grpc.clone();
                grpc.ready()
                    .await
                    .map_err(|e| classify_grpc_transport(&e))?;
                let mut req = tonic::Request::new(msg.clone());
                req.metadata_mut().insert(SEQ_HEADER, seq.into());
                grpc.unary::<ModelInferRequest, ModelInferResponse, _>(
                    req,
                    PathAndQuery::from_static(grpc::MODEL_INFER),
                    tonic_prost::ProstCodec::default(),
                )
                .await
                .map(|_| ())
                .map_err(|s| classify_status(&s))
            }
            _ => Err(Failure::Transport),
        }
    }

    /// Builds each stream's request: reads the model's metadata when the payload
    /// comes from it.
    pub async fn templates(&self, config: &LoadConfig) -> Result<Vec<Template>, LoadError> {
        let mut out = Vec::with_capacity(config.streams.len());
        for (i, s) in config.streams.iter().enumerate() {
            out.push(self.template(config, i, s).await?);
        }
        Ok(out)
    }

    /// The request of `stream`, the `position`-th of `config.streams`.
    async fn template(
        &self,
        config: &LoadConfig,
        position: usize,
        stream: &Stream,
    ) -> Result<Template, LoadError> {
        let base = config.target.trim_end_matches('/');
        let rows = stream.spec.rows_per_request.max(1);
        let tensors = |specs: &[TensorSpec], fill: Fill| -> Vec<Tensor> {
            let mut rng = lab_traffic::rng_for(config.seed, PAYLOAD_RNG ^ u64::from(stream.index));
            specs
                .iter()
                .map(|t| payload::build_tensor(t, rows, fill, &mut rng))
                .collect()
        };
        let file =
            match &config.payload {
                Payload::File(path) => Some(Bytes::from(std::fs::read(path).map_err(|e| {
                    LoadError::BadInput(format!("body file {}: {e}", path.display()))
                })?)),
                Payload::FromMetadata(_) | Payload::Inputs(..) => None,
            };
        let fill = match config.payload {
            Payload::FromMetadata(f) | Payload::Inputs(_, f) => f,
            Payload::File(_) => Fill::Zero,
        };
        let known = match &config.payload {
            Payload::Inputs(per_stream, _) => {
                Some(per_stream.get(position).cloned().ok_or_else(|| {
                    LoadError::BadInput(format!("no input list for traffic stream {position}"))
                })?)
            }
            _ => None,
        };
        let mut headers = HeaderMap::new();
        let json = HeaderValue::from_static("application/json");
        let (method, url, body) = match config.protocol {
            Protocol::V2Grpc => {
                let specs = match known {
                    Some(s) => s,
                    None => self.grpc_metadata(&stream.model, config.timeout).await?,
                };
                return Ok(Template::Grpc(grpc::infer_request(
                    &stream.model,
                    &tensors(&specs, fill),
                )));
            }
            Protocol::Http => {
                let method = if file.is_some() {
                    Method::POST
                } else {
                    Method::GET
                };
                if let Payload::File(p) = &config.payload {
                    let ct = if p.extension().is_some_and(|e| e == "json") {
                        json
                    } else {
                        HeaderValue::from_static("application/octet-stream")
                    };
                    headers.insert(header::CONTENT_TYPE, ct);
                }
                (method, config.target.clone(), file.unwrap_or_default())
            }
            Protocol::V2Rest | Protocol::V2RestBinary | Protocol::V1 => {
                let url = if config.protocol == Protocol::V1 {
                    format!("{base}/v1/models/{}:predict", stream.model)
                } else {
                    format!("{base}/v2/models/{}/infer", stream.model)
                };
                let binary = config.protocol == Protocol::V2RestBinary;
                let body = match file {
                    Some(b) => {
                        if binary {
                            let len = json_prefix_len(&b).ok_or_else(|| {
                                LoadError::BadInput(
                                    "the body file does not start with a JSON inference header"
                                        .into(),
                                )
                            })?;
                            headers
                                .insert("inference-header-content-length", HeaderValue::from(len));
                        }
                        b
                    }
                    None => {
                        let specs = match known {
                            Some(s) => s,
                            None => {
                                self.rest_metadata(base, &stream.model, config.timeout)
                                    .await?
                            }
                        };
                        let t = tensors(&specs, fill);
                        match config.protocol {
                            Protocol::V1 => payload::v1_json(&t),
                            Protocol::V2RestBinary => {
                                let (b, len) = payload::v2_binary(&t);
                                headers.insert(
                                    "inference-header-content-length",
                                    HeaderValue::from(len),
                                );
                                b
                            }
                            _ => payload::v2_json(&t),
                        }
                    }
                };
                let ct = if binary {
                    HeaderValue::from_static("application/octet-stream")
                } else {
                    json
                };
                headers.insert(header::CONTENT_TYPE, ct);
                (Method::POST, url, body)
            }
        };
        let uri: Uri = url
            .parse()
            .map_err(|e| LoadError::BadInput(format!("request URL `{url}`: {e}")))?;
        let origin: Uri = uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .parse()
            .map_err(|e| LoadError::BadInput(format!("request URL `{url}`: {e}")))?;
        if let Some(authority) = uri.authority() {
            let host = HeaderValue::from_str(authority.as_str())
                .map_err(|e| LoadError::BadInput(format!("request URL `{url}`: {e}")))?;
            headers.insert(header::HOST, host);
        }
        Ok(Template::Http {
            method,
            uri,
            origin,
            headers,
            body,
        })
    }

    async fn rest_metadata(
        &self,
        base: &str,
        model: &str,
        timeout: Duration,
    ) -> Result<Vec<TensorSpec>, LoadError> {
        let Client::Http { hyper: client, .. } = self else {
            return Err(LoadError::Run("REST metadata over a gRPC client".into()));
        };
        let url = format!("{base}/v2/models/{model}");
        let uri: Uri = url
            .parse()
            .map_err(|e| LoadError::BadInput(format!("metadata URL `{url}`: {e}")))?;
        let fetch = async {
            let resp = client
                .get(uri)
                .await
                .map_err(|e| LoadError::Metadata(format!("GET {url}: {e}")))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| LoadError::Metadata(format!("GET {url}: {e}")))?
                .to_bytes();
            if !status.is_success() {
                let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                return Err(LoadError::Metadata(format!(
                    "GET {url} answered {status}: {text} (pass --body FILE to skip metadata)"
                )));
            }
            payload::parse_metadata(&body)
                .map(|m| m.inputs)
                .map_err(|e| LoadError::Metadata(format!("GET {url}: {e}")))
        };
        tokio::time::timeout(timeout, fetch)
            .await
            .map_err(|_| LoadError::Metadata(format!("GET {url}: no answer within {timeout:?}")))?
    }

    async fn grpc_metadata(
        &self,
        model: &str,
        timeout: Duration,
    ) -> Result<Vec<TensorSpec>, LoadError> {
        let Client::Grpc(grpc) = self else {
            return Err(LoadError::Run("gRPC metadata over an HTTP client".into()));
        };
        let mut grpc = grpc.clone();
        let fetch = async {
            grpc.ready()
                .await
                .map_err(|e| LoadError::Metadata(format!("gRPC ModelMetadata({model}): {e}")))?;
            let req = tonic::Request::new(ModelMetadataRequest {
                name: model.to_string(),
                version: String::new(),
            });
            let resp = grpc
                .unary::<ModelMetadataRequest, ModelMetadataResponse, _>(
                    req,
                    PathAndQuery::from_static(grpc::MODEL_METADATA),
                    tonic_prost::ProstCodec::default(),
                )
                .await
                .map_err(|s| {
                    LoadError::Metadata(format!(
                        "gRPC ModelMetadata({model}): {} {}",
                        grpc_code_name(s.code()),
                        s.message()
                    ))
                })?;
            let specs = grpc::input_specs(&resp.into_inner());
            if specs.is_empty() {
                return Err(LoadError::Metadata(format!(
                    "model `{model}` declares no inputs"
                )));
            }
            Ok(specs)
        };
        tokio::time::timeout(timeout, fetch).await.map_err(|_| {
            LoadError::Metadata(format!(
                "gRPC ModelMetadata({model}): no answer within {timeout:?}"
            ))
        })?
    }
}

fn request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    seq: u64,
) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(body.clone()));
    *req.method_mut() = method.clone();
    *req.uri_mut() = uri.clone();
    *req.headers_mut() = headers.clone();
    req.headers_mut().insert(SEQ_HEADER, HeaderValue::from(seq));
    req
}

/// Sends one request of an HTTP template over `conn` and reads the whole
/// answer; also says whether the connection can carry the next request.
pub async fn send_h1(
    conn: &mut crate::pool::H1Conn,
    template: &Template,
    seq: u64,
) -> (Result<(), Failure>, bool) {
    let Template::Http {
        method,
        origin,
        headers,
        body,
        ..
    } = template
    else {
        return (Err(Failure::Transport), true);
    };
    let req = request(method, origin, headers, body, seq);
    let resp = match conn.send_request(req).await {
        Ok(r) => r,
        Err(_) => return (Err(Failure::Transport), false),
    };
    let status = resp.status();
    // Read the body to the end so the connection can be reused.
    match resp.into_body().collect().await {
        Ok(_) => (status_result(status), !conn.is_closed()),
        Err(_) => (Err(Failure::Transport), false),
    }
}

fn status_result(status: http::StatusCode) -> Result<(), Failure> {
    if status.is_success() {
        Ok(())
    } else {
        Err(Failure::Http(status.as_u16()))
    }
}

/// Length of the JSON value at the start of `bytes`.
fn json_prefix_len(bytes: &[u8]) -> Option<usize> {
    let mut it = serde_json::Deserializer::from_slice(bytes).into_iter::<serde_json::Value>();
    match it.next() {
        Some(Ok(_)) => Some(it.byte_offset()),
        _ => None,
    }
}

/// A status from a failed call: transport failures arrive as `Unavailable`
/// with the connect error as their source.
fn classify_status(status: &tonic::Status) -> Failure {
    if status.code() == tonic::Code::Unavailable && is_connect_error(status) {
        Failure::Connect
    } else {
        Failure::Grpc(status.code())
    }
}

fn classify_grpc_transport(e: &(dyn std::error::Error + 'static)) -> Failure {
    if is_connect_error(e) {
        Failure::Connect
    } else {
        Failure::Transport
    }
}

fn is_connect_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused | AddrNotAvailable | HostUnreachable | NetworkUnreachable
            ) {
                return true;
            }
        }
        if let Some(h) = err.downcast_ref::<hyper_util::client::legacy::Error>() {
            if h.is_connect() {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_keys_name_the_class() {
        assert_eq!(Failure::Http(503).key(), "http_503");
        assert_eq!(
            Failure::Grpc(tonic::Code::ResourceExhausted).key(),
            "grpc_resource_exhausted"
        );
        assert_eq!(Failure::Connect.key(), "connect");
        assert_eq!(Failure::Timeout.key(), "timeout");
    }

    #[test]
    fn binary_body_files_have_their_header_measured() {
        assert_eq!(json_prefix_len(br#"{"inputs":[]}rawbytes"#), Some(13));
        assert_eq!(json_prefix_len(b"\x00\x01"), None);
    }
}
