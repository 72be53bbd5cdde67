//! The one HTTP/1.1 GET the local level needs (readiness probes, Prometheus'
//! API), on the workspace's hyper.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Empty<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient {
            inner: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl HttpClient {
    /// GET `url`; the status and whole body, or a message saying what failed.
    pub async fn get(&self, url: &str, timeout: Duration) -> Result<(u16, Bytes), String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
        let fut = async {
            let resp = self
                .inner
                .get(uri)
                .await
                .map_err(|e| format!("GET {url}: {}", chain(&e)))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("GET {url}: reading the body: {e}"))?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| format!("GET {url}: no answer within {timeout:?}"))?
    }
}

/// hyper-util's errors say "client error (Connect)" and keep the cause below.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Percent-encodes a query-string value (RFC 3986 unreserved characters pass).
pub fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
