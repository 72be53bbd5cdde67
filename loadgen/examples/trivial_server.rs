//! The trivial HTTP server the load-generator benchmark runs against: every
//! request gets `200 ok` at once (HTTP/1.1 keep-alive or HTTP/2), and
//! `GET /v2/models/NAME` returns V2 metadata of one FP32[-1,4] input so the
//! V2 protocols can be exercised too.
//!
//! cargo run --release -p lab-loadgen --example trivial_server -- 127.0.0.1:8099 1

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

const METADATA: &str = r#"{"name":"m","versions":["1"],"platform":"onnxruntime_onnx","inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],"outputs":[{"name":"y","datatype":"FP32","shape":[-1,1]}]}"#;

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let metadata = req.method() == http::Method::GET && req.uri().path().starts_with("/v2/models/");
    // Drain the request body so the connection stays reusable.
    req.into_body().collect().await?;
    let body = if metadata { METADATA } else { "ok" };
    Ok(Response::new(Full::new(Bytes::from_static(
        body.as_bytes(),
    ))))
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8099".into());
    let threads: usize = args.next().and_then(|t| t.parse().ok()).unwrap_or(1);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?
        .block_on(async {
            let listener = tokio::net::TcpListener::bind(&addr).await?;
            eprintln!(
                "trivial_server on http://{} ({threads} threads)",
                listener.local_addr()?
            );
            loop {
                // A failed accept (a connection reset while queued, or out of
                // descriptors for a moment) ends that connection, not the server.
                let stream = match listener.accept().await {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        eprintln!("accept: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), hyper::service::service_fn(answer))
                        .await;
                });
            }
        })
}
