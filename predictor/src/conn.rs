//! The REST listener: accepting connections and serving them with hyper, with
//! the limits a server facing careless or hostile clients needs:
//!
//! - a listen backlog from the system's `somaxconn` and a cap on open
//!   connections below the descriptor limit, so `accept` never runs out of
//!   descriptors (clients over the cap wait in the backlog);
//! - a header read timeout (a request whose head is not complete in time is
//!   answered 408 and closed) and an idle keep-alive timeout;
//! - a lingering close: when a response goes out before its request's body was
//!   read (413, 404, ...), the socket's write side is shut first and the rest of
//!   the body is read and dropped for a bounded time, so a client that writes
//!   its whole body before reading (Python's urllib) gets the status instead of
//!   a reset;
//! - hyper's own error responses (400 for a malformed request, 431 for headers
//!   that are too large) get the protocol's `{"error": ...}` body;
//! - on shutdown, connections with no request in a handler close at once; the
//!   others finish their request.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tower::ServiceExt;

/// Connection limits and timeouts (the `serve` flags of the same names).
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
    /// Longest a lingering close reads and drops the rest of a request.
    pub linger: Duration,
}

/// The listen backlog the system allows (`/proc/sys/net/core/somaxconn`), or
/// 4096 where it cannot be read.
pub fn system_somaxconn() -> u32 {
    std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(4096)
}

/// The soft descriptor limit of this process (RLIMIT_NOFILE).
pub fn descriptor_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } == 0
        && r.rlim_cur != libc::RLIM_INFINITY
    {
        Some(r.rlim_cur)
    } else {
        None
    }
}

/// Descriptors kept free of client connections: the gRPC listener and its
/// connections, model files, the shared GPU file, ONNX Runtime's own.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// `requested` connections, lowered to what the descriptor limit leaves.
pub fn connection_cap(requested: usize) -> usize {
    match descriptor_limit() {
        Some(limit) => {
            let room = limit.saturating_sub(RESERVED_DESCRIPTORS).max(1);
            requested.min(usize::try_from(room).unwrap_or(usize::MAX))
        }
        None => requested,
    }
}

/// Binds `host:port` with the given listen backlog.
pub async fn bind(host: &str, port: u16, backlog: u32) -> io::Result<TcpListener> {
    let addr: SocketAddr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "the host resolves to nothing"))?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// What happened to each connection at shutdown, for the log.
#[derive(Debug, Default)]
pub struct ShutdownReport {
    /// Open connections with nothing in progress, closed at once.
    pub closed_idle: AtomicUsize,
    /// Connections with a request head still arriving, closed at once.
    pub closed_partial: AtomicUsize,
    /// Connections with a request in a handler, left to finish it.
    pub draining: AtomicUsize,
}

/// State shared between a connection's socket wrapper, its handlers and its task.
pub struct ConnState {
    epoch: Instant,
    /// Requests from their head to the end of their response body.
    active: AtomicUsize,
    /// Responses the service produced, and response heads written: a head
    /// written with none outstanding is one hyper wrote itself.
    served: AtomicU64,
    heads: AtomicU64,
    /// When the first byte of a request head arrived (ms since epoch + 1; 0 = none).
    head_started: AtomicU64,
    last_activity: AtomicU64,
    /// A response went out before its request's body was read: linger on close.
    linger: AtomicBool,
}

impl ConnState {
    fn new() -> ConnState {
        ConnState {
            epoch: Instant::now(),
            active: AtomicUsize::new(0),
            served: AtomicU64::new(0),
            heads: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            last_activity: AtomicU64::new(0),
            linger: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn read_some(&self) {
        let now = self.now_ms();
        self.last_activity.store(now, Ordering::Relaxed);
        if self.active.load(Ordering::Relaxed) == 0 {
            let _ = self.head_started.compare_exchange(
                0,
                now + 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    fn begin(&self) {
        self.head_started.store(0, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::Relaxed);
    }

    fn responded(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
    }

    fn end(&self) {
        self.last_activity.store(self.now_ms(), Ordering::Relaxed);
        self.active.fetch_sub(1, Ordering::Relaxed);
    }

    /// Asks for a lingering close after this response (its request body was not read).
    pub fn linger_on_close(&self) {
        self.linger.store(true, Ordering::Relaxed);
    }
}

/// The connection's state, put into every request's extensions.
#[derive(Clone)]
pub struct ConnHandle(pub Arc<ConnState>);

struct ActiveGuard(Arc<ConnState>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// The socket as hyper sees it: records activity, rewrites hyper's own
/// body-less error responses, and leaves the socket open for a lingering close.
struct Io {
    stream: Arc<TcpStream>,
    state: Arc<ConnState>,
    /// A rewritten response still being written, and how far.
    pending: Option<(Vec<u8>, usize)>,
}

impl Io {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((buf, at)) = &mut self.pending {
            if *at >= buf.len() {
                self.pending = None;
                break;
            }
            let n = ready!(poll_write_shared(&self.stream, cx, &buf[*at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *at += n;
        }
        Poll::Ready(Ok(()))
    }
}

fn poll_write_shared(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    loop {
        ready!(stream.poll_write_ready(cx))?;
        match stream.try_write(buf) {
            Ok(n) => return Poll::Ready(Ok(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

fn poll_read_shared(
    stream: &TcpStream,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<usize>> {
    loop {
        ready!(stream.poll_read_ready(cx))?;
        match stream.try_read(buf.initialize_unfilled()) {
            Ok(n) => {
                buf.advance(n);
                return Poll::Ready(Ok(n));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let n = ready!(poll_read_shared(&me.stream, cx, buf))?;
        if n > 0 {
            me.state.read_some();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        ready!(me.poll_pending(cx))?;
        if buf.starts_with(b"HTTP/1.") {
            let st = &me.state;
            if st.heads.load(Ordering::Relaxed) < st.served.load(Ordering::Relaxed) {
                st.heads.fetch_add(1, Ordering::Relaxed);
            } else if let Some(replacement) = with_error_body(buf) {
                // hyper answers a request it could not parse itself, with no body.
                me.pending = Some((replacement, 0));
                ready!(me.poll_pending(cx))?;
                return Poll::Ready(Ok(buf.len()));
            }
        }
        me.state
            .last_activity
            .store(me.state.now_ms(), Ordering::Relaxed);
        poll_write_shared(&me.stream, cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_pending(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        ready!(me.poll_pending(cx))?;
        shutdown_write(&me.stream);
        Poll::Ready(Ok(()))
    }
}

fn shutdown_write(stream: &TcpStream) {
    // SAFETY: the descriptor belongs to `stream`, alive for the call. Errors
    // (already shut, peer gone) leave nothing to do.
    unsafe {
        libc::shutdown(stream.as_raw_fd(), libc::SHUT_WR);
    }
}

/// hyper's body-less error response (`HTTP/1.1 4xx ...`, `content-length: 0`),
/// rewritten with a `{"error": ...}` body; `None` for anything else.
fn with_error_body(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?;
    if !text.ends_with("\r\n\r\n")
        || !text
            .to_ascii_lowercase()
            .contains("\r\ncontent-length: 0\r\n")
    {
        return None;
    }
    let status_line = text.split("\r\n").next()?;
    let code: u16 = status_line.get(9..12)?.parse().ok()?;
    if code < 400 {
        return None;
    }
    let message = match code {
        431 => "the request's header fields are too large".to_string(),
        400 => "malformed HTTP request".to_string(),
        505 => "HTTP version not supported".to_string(),
        _ => status_line.get(13..).unwrap_or("error").to_string(),
    };
    Some(error_response_bytes(status_line, &message))
}

fn error_response_bytes(status_line: &str, message: &str) -> Vec<u8> {
    let body = serde_json::json!({ "error": message }).to_string();
    format!(
        "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Why the watchdog ended a connection.
enum Expired {
    /// A request head took longer than the header timeout.
    Header,
    /// Nothing happened for the idle timeout between requests.
    Idle,
    /// Nothing at all arrived within the header timeout of connecting.
    Unused,
}

/// Resolves when the connection has been idle, or mid-head, for too long.
async fn watchdog(state: &ConnState, limits: &Limits) -> Expired {
    let header = limits.header_timeout.as_millis() as u64;
    let idle = limits.idle_timeout.as_millis() as u64;
    loop {
        let now = state.now_ms();
        let wait = if state.active.load(Ordering::Relaxed) > 0 {
            // A handler bounds its own body reading; look again later.
            1000
        } else {
            let head = state.head_started.load(Ordering::Relaxed);
            let (deadline, why) = if head > 0 {
                (head - 1 + header, Expired::Header)
            } else if state.served.load(Ordering::Relaxed) == 0 {
                // Connected but silent: the first request's head is late too.
                (header, Expired::Unused)
            } else {
                (
                    state.last_activity.load(Ordering::Relaxed) + idle,
                    Expired::Idle,
                )
            };
            if now >= deadline {
                return why;
            }
            (deadline - now).min(1000)
        };
        tokio::time::sleep(Duration::from_millis(wait.max(1))).await;
    }
}

/// Reads and drops what the client still sends, after the write side was
/// shut, until it closes or `limit` passes: the status it was sent is not
/// destroyed by a reset while it is still writing its body.
async fn linger(stream: &TcpStream, limit: Duration) {
    shutdown_write(stream);
    let _ = tokio::time::timeout(limit, async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if stream.readable().await.is_err() {
                return;
            }
            match stream.try_read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    })
    .await;
}

/// Accepts and serves REST connections until `stop` turns true; then closes
/// idle connections, lets those with a request in a handler finish, and
/// returns when every connection is gone.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    report: Arc<ShutdownReport>,
) {
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // The watchdog keeps our own header and idle timeouts; hyper's single one
    // would close idle keep-alive connections at the header timeout.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Every connection task holds a sender; all gone = all connections closed.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let mut last_accept_error: Option<Instant> = None;
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = stopped(&mut stop) => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped(&mut stop) => break,
        };
        let (stream, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors or memory: say so once a second, back off briefly.
                if last_accept_error.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                    eprintln!("lab-predictor: accepting a REST connection failed: {e}");
                    last_accept_error = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let task = connection(
            stream,
            builder.clone(),
            router.clone(),
            limits.clone(),
            stop.clone(),
            report.clone(),
        );
        let alive = alive_tx.clone();
        tokio::spawn(async move {
            task.await;
            drop(permit);
            drop(alive);
        });
    }
    drop(listener);
    drop(alive_tx);
    let _ = alive_rx.recv().await;
}

async fn connection(
    stream: TcpStream,
    builder: Arc<hyper_util::server::conn::auto::Builder<TokioExecutor>>,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    report: Arc<ShutdownReport>,
) {
    let state = Arc::new(ConnState::new());
    let stream = Arc::new(stream);
    let io = Io {
        stream: stream.clone(),
        state: state.clone(),
        pending: None,
    };
    let svc_state = state.clone();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let st = svc_state.clone();
        let router = router.clone();
        st.begin();
        let guard = ActiveGuard(st.clone());
        req.extensions_mut().insert(ConnHandle(st));
        async move {
            let r = router.oneshot(req.map(axum::body::Body::new)).await;
            guard.0.responded();
            // The request counts as active until hyper has sent (or dropped) its body.
            r.map(|resp| {
                resp.map(|b| {
                    axum::body::Body::new(http_body_util::BodyExt::map_frame(b, move |f| {
                        let _ = &guard;
                        f
                    }))
                })
            })
        }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), svc);
    let mut conn = Box::pin(conn);
    let mut timed_out_mid_head = false;
    tokio::select! {
        _ = conn.as_mut() => {}
        why = watchdog(&state, &limits) => {
            timed_out_mid_head = matches!(why, Expired::Header);
        }
        _ = stopped(&mut stop) => {
            if state.active.load(Ordering::Relaxed) == 0 {
                if state.head_started.load(Ordering::Relaxed) > 0 {
                    report.closed_partial.fetch_add(1, Ordering::Relaxed);
                } else {
                    report.closed_idle.fetch_add(1, Ordering::Relaxed);
                }
            } else {
                report.draining.fetch_add(1, Ordering::Relaxed);
                conn.as_mut().graceful_shutdown();
                let _ = conn.as_mut().await;
            }
        }
    }
    // Dropping hyper's side leaves our handle: the socket closes below.
    drop(conn);
    if timed_out_mid_head {
        let secs = limits.header_timeout.as_secs_f64();
        let bytes = error_response_bytes(
            "HTTP/1.1 408 Request Timeout",
            &format!("the request head did not arrive within the header timeout of {secs}s"),
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), write_all(&stream, &bytes)).await;
        linger(&stream, limits.linger.min(Duration::from_secs(2))).await;
    } else if state.linger.load(Ordering::Relaxed) {
        // At shutdown a client still writing gets half a second, not the
        // whole linger: the exit must not wait for it.
        tokio::select! {
            _ = linger(&stream, limits.linger) => {}
            _ = async {
                stopped(&mut stop).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            } => {}
        }
    }
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A gRPC connection holding its place under the connection cap.
pub struct CappedStream {
    stream: TcpStream,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl AsyncRead for CappedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for CappedStream {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;
    fn connect_info(&self) -> Self::ConnectInfo {
        self.stream.connect_info()
    }
}

/// The gRPC listener's connections, at most `cap` open at once (more wait in
/// the backlog), until `stop`.
pub fn capped_incoming(
    listener: TcpListener,
    cap: usize,
    mut stop: watch::Receiver<bool>,
) -> tokio_stream::wrappers::ReceiverStream<io::Result<CappedStream>> {
    let (tx, rx) = mpsc::channel(1);
    let slots = Arc::new(Semaphore::new(cap.max(1)));
    tokio::spawn(async move {
        let mut last_error: Option<Instant> = None;
        loop {
            let slot = tokio::select! {
                p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                _ = stopped(&mut stop) => return,
            };
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stopped(&mut stop) => return,
            };
            match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    if tx
                        .send(Ok(CappedStream {
                            stream,
                            _slot: slot,
                        }))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    if last_error.is_none_or(|t| t.elapsed() > Duration::from_secs(1)) {
                        eprintln!("lab-predictor: accepting a gRPC connection failed: {e}");
                        last_error = Some(Instant::now());
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hypers_bodyless_errors_get_a_json_body() {
        let head =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(with_error_body(head).unwrap()).unwrap();
        assert!(
            out.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{out}"
        );
        let body = out.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(v["error"].as_str().unwrap().contains("too large"));
        assert!(out.contains(&format!("content-length: {}\r\n", body.len())));
        // A response with a body, or a success, is left alone.
        assert!(with_error_body(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(
            with_error_body(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 5\r\n\r\n").is_none()
        );
    }

    #[test]
    fn the_connection_cap_stays_under_the_descriptor_limit() {
        let cap = connection_cap(usize::MAX);
        if let Some(limit) = descriptor_limit() {
            assert!((cap as u64) < limit, "{cap} vs {limit}");
        }
        assert_eq!(connection_cap(1), 1);
    }
}
