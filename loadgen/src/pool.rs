//! HTTP/1.1 keep-alive connections to one address, each carrying one request at
//! a time. Lighter than a general-purpose client pool: at tens of thousands of
//! requests a second, checkout and check-in are a pop and a push.

use crate::client::Failure;
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::sync::Mutex;
use std::time::Duration;

/// One HTTP/1.1 keep-alive connection's request handle.
pub type H1Conn = SendRequest<Full<Bytes>>;

pub struct H1Pool {
    /// `host:port` to connect to.
    addr: String,
    connect_timeout: Duration,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl H1Pool {
    pub fn new(addr: String, connect_timeout: Duration) -> H1Pool {
        H1Pool {
            addr,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn pop(&self) -> Option<SendRequest<Full<Bytes>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    /// An idle connection, or a new one when none is idle.
    pub async fn checkout(&self) -> Result<SendRequest<Full<Bytes>>, Failure> {
        while let Some(mut conn) = self.pop() {
            // A connection the server closed while idle is dropped, not reused.
            // One just checked in may still be finishing its last answer: wait.
            if !conn.is_closed() && conn.ready().await.is_ok() {
                return Ok(conn);
            }
        }
        self.connect().await
    }

    /// A new connection; its connection task is spawned on the runtime.
    pub async fn connect(&self) -> Result<H1Conn, Failure> {
        let stream = tokio::time::timeout(
            self.connect_timeout,
            tokio::net::TcpStream::connect(&self.addr),
        )
        .await
        .map_err(|_| Failure::Connect)?
        .map_err(|_| Failure::Connect)?;
        let _ = stream.set_nodelay(true);
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Failure::Connect)?;
        // The connection task ends when the server closes or the handle is dropped.
        tokio::spawn(conn);
        Ok(send)
    }

    /// Returns a connection whose last answer was read to the end.
    pub fn checkin(&self, conn: SendRequest<Full<Bytes>>) {
        if !conn.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
    }
}
