//! A Unix-socket relay to the Docker daemon that rewrites the API version in each
//! request line, for daemons older than the client library.
//!
//! testcontainers 0.28 talks to Docker through bollard 0.21, which puts API
//! version 1.53 in every path (`POST /v1.53/containers/create`) and does not
//! negotiate. Docker Engine 20.10 (Debian 12's `docker.io`) answers anything above
//! 1.41 with "client version 1.53 is too new". The relay turns ` /v1.53/` into
//! ` /v1.41/` on the way in and passes every other byte through unchanged, both
//! ways (exec and attach streams included); the request bodies testcontainers
//! sends (create, exec, network) use fields that 1.41 already had. Where the
//! daemon is new enough the test does not start the relay.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread;

pub struct ApiProxy {
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts the relay on a socket in a fresh temporary folder; it serves until the
/// test process ends.
pub fn start(daemon: &Path, daemon_version: &str) -> io::Result<ApiProxy> {
    let dir = tempfile::tempdir()?;
    let socket = dir.path().join("docker.sock");
    let listener = UnixListener::bind(&socket)?;
    let daemon = daemon.to_path_buf();
    let version = daemon_version.to_string();
    thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let daemon = daemon.clone();
            let version = version.clone();
            thread::spawn(move || {
                if let Ok(upstream) = UnixStream::connect(&daemon) {
                    let _ = relay(client, upstream, &version);
                }
            });
        }
    });
    Ok(ApiProxy { socket, _dir: dir })
}

fn relay(client: UnixStream, upstream: UnixStream, version: &str) -> io::Result<()> {
    let mut down_from = upstream.try_clone()?;
    let mut down_to = client.try_clone()?;
    let back = thread::spawn(move || {
        let _ = io::copy(&mut down_from, &mut down_to);
        let _ = down_to.shutdown(Shutdown::Write);
    });
    let mut from = client;
    let mut to = upstream;
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            to.write_all(&pending)?;
            let _ = to.shutdown(Shutdown::Write);
            break;
        }
        pending.extend_from_slice(&buf[..n]);
        rewrite_versions(&mut pending, version);
        // Hold back only a tail that could be the start of a version path, so
        // a request is never delayed waiting for bytes that will not come.
        let keep = partial_tail(&pending);
        let send = pending.len() - keep;
        to.write_all(&pending[..send])?;
        pending.drain(..send);
    }
    let _ = back.join();
    Ok(())
}

/// Replaces every ` /v1.NN/` whose version is newer than the daemon's and of the
/// same length by the daemon's version, in place.
pub fn rewrite_versions(bytes: &mut [u8], daemon_version: &str) {
    let want = daemon_version.as_bytes();
    let mut i = 0;
    while i + 3 + want.len() < bytes.len() {
        let path = &bytes[i..];
        if path.starts_with(b" /v") {
            let ver = &path[3..3 + want.len()];
            if path[3 + want.len()] == b'/' && is_version(ver) && newer(ver, want) {
                bytes[i + 3..i + 3 + want.len()].copy_from_slice(want);
            }
        }
        i += 1;
    }
}

fn is_version(v: &[u8]) -> bool {
    let s = std::str::from_utf8(v).unwrap_or("");
    let mut parts = s.split('.');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(a), Some(b), None) if !a.is_empty() && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit())
    )
}

fn newer(v: &[u8], than: &[u8]) -> bool {
    let parse = |b: &[u8]| -> (u32, u32) {
        let s = std::str::from_utf8(b).unwrap_or("0.0");
        let (a, b) = s.split_once('.').unwrap_or(("0", "0"));
        (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
    };
    parse(v) > parse(than)
}

/// How many trailing bytes could begin a ` /vX.YY/` path cut by a read.
fn partial_tail(bytes: &[u8]) -> usize {
    const LONGEST: usize = 9; // " /v1.53/" is 8; one spare
    let start = bytes.len().saturating_sub(LONGEST);
    for i in start..bytes.len() {
        let tail = &bytes[i..];
        let template = b" /v";
        let prefix_ok = tail.iter().zip(template.iter()).all(|(a, b)| a == b);
        let rest_ok = tail
            .iter()
            .skip(template.len())
            .all(|c| c.is_ascii_digit() || *c == b'.');
        if prefix_ok && rest_ok {
            return tail.len();
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_rewritten_and_nothing_else() {
        let mut b = b"POST /v1.53/containers/create HTTP/1.1\r\nX: a /v1.40/b\r\n\r\n{\"Cmd\":[\"x /v1.53/\"]}GET /v1.53/version HTTP/1.1\r\n".to_vec();
        rewrite_versions(&mut b, "1.41");
        let s = String::from_utf8(b).unwrap();
        assert!(s.starts_with("POST /v1.41/containers/create"));
        assert!(s.contains("a /v1.40/b"), "an older version stays: {s}");
        assert!(s.contains("GET /v1.41/version"));
    }

    #[test]
    fn a_cut_version_path_is_held_back_and_a_finished_request_is_not() {
        assert_eq!(partial_tail(b"abc /v1.5"), 6);
        assert_eq!(partial_tail(b"abc /"), 2);
        assert_eq!(partial_tail(b"abc\r\n\r\n"), 0);
        assert_eq!(partial_tail(b"{\"a\":1}"), 0);
    }
}
