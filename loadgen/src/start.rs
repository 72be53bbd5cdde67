//! A paused start: a shard that reads its instant from the harness, as the
//! pods of a load Job do. It listens on an address for `POST /start` with the
//! instant (Unix seconds) and answers `GET /ready` meanwhile, so a readiness
//! probe tells the harness every shard is listening before it picks one
//! instant for all of them.

use crate::LoadError;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::watch;

/// The largest start request read: a number of seconds.
const MAX_BODY: usize = 64;

/// Listens on `addr` until a valid `POST /start` arrives (then returns its
/// instant) or `stop` completes (then `None`). Invalid requests are answered
/// with 400 and a JSON error, and the wait goes on. `on_listening` hears the
/// bound address (port 0 picks one).
pub async fn await_start(
    addr: SocketAddr,
    on_listening: impl FnOnce(SocketAddr),
    stop: impl Future<Output = ()>,
) -> Result<Option<SystemTime>, LoadError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| LoadError::BadInput(format!("--await-start {addr}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| LoadError::Run(format!("--await-start: {e}")))?;
    on_listening(bound);
    let (tx, mut rx) = watch::channel(None::<SystemTime>);
    let tx = Arc::new(Mutex::new(tx));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(None),
            changed = rx.changed() => {
                if changed.is_ok() {
                    if let Some(at) = *rx.borrow() {
                        return Ok(Some(at));
                    }
                }
            }
            conn = listener.accept() => {
                let Ok((stream, _)) = conn else { continue };
                let tx = tx.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| answer(req, tx.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        }
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    tx: Arc<Mutex<watch::Sender<Option<SystemTime>>>>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let reply = |code: StatusCode, body: String| {
        Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("a static response builds")
    };
    let error =
        |code: StatusCode, msg: &str| reply(code, serde_json::json!({ "error": msg }).to_string());
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/ready") => Ok(reply(StatusCode::OK, r#"{"waiting":true}"#.into())),
        (&Method::POST, "/start") => {
            let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    return Ok(error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "give the start instant as Unix seconds",
                    ))
                }
            };
            let text = String::from_utf8_lossy(&body);
            let Some(at) = parse_instant(text.trim()) else {
                return Ok(error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "`{}` is not a start instant; give Unix seconds, e.g. 1767225600.25",
                        text.trim()
                    ),
                ));
            };
            if at < SystemTime::now() {
                return Ok(error(
                    StatusCode::BAD_REQUEST,
                    "that instant has passed; give a later one",
                ));
            }
            let _ = tx.lock().unwrap_or_else(|p| p.into_inner()).send(Some(at));
            Ok(reply(StatusCode::ACCEPTED, r#"{"starting":true}"#.into()))
        }
        (_, "/ready") | (_, "/start") => Ok(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "GET /ready or POST /start",
        )),
        _ => Ok(error(StatusCode::NOT_FOUND, "GET /ready or POST /start")),
    }
}

/// Unix seconds, fractions allowed.
pub fn parse_instant(text: &str) -> Option<SystemTime> {
    let secs: f64 = text.parse().ok()?;
    (secs.is_finite() && secs > 0.0).then(|| UNIX_EPOCH + Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_unix_seconds() {
        assert_eq!(
            parse_instant("10.5"),
            Some(UNIX_EPOCH + Duration::from_millis(10_500))
        );
        assert_eq!(parse_instant("-1"), None);
        assert_eq!(parse_instant("soon"), None);
        assert_eq!(parse_instant("inf"), None);
    }
}
