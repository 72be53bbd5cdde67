//! A stand-in pod for the supervisor's tests: listens on 127.0.0.1 at once, like
//! `lab serve`, and answers `GET /v2/health/ready` 503 until `--ready-after-ms`
//! has passed, then 200 (503 again from `--unready-after-ms`). `--ignore-sigterm` models a pod that outlives its grace
//! period; `--exit-after-ms` with `--exit-code` models a crash. Standard library
//! only, so it builds in a moment.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

struct Opts {
    port: u16,
    ready_after: Duration,
    unready_after: Option<Duration>,
    ignore_sigterm: bool,
    exit_after: Option<Duration>,
    exit_code: i32,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        port: 0,
        ready_after: Duration::ZERO,
        unready_after: None,
        ignore_sigterm: false,
        exit_after: None,
        exit_code: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value"))?
                .parse::<u64>()
                .map_err(|e| format!("{name}: {e}"))
        };
        match a.as_str() {
            "--port" => o.port = value("--port")? as u16,
            "--ready-after-ms" => o.ready_after = Duration::from_millis(value(&a)?),
            "--unready-after-ms" => o.unready_after = Some(Duration::from_millis(value(&a)?)),
            "--exit-after-ms" => o.exit_after = Some(Duration::from_millis(value(&a)?)),
            "--exit-code" => o.exit_code = value(&a)? as i32,
            "--ignore-sigterm" => o.ignore_sigterm = true,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(o)
}

fn main() {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("fake-pod: {e}");
            std::process::exit(2);
        }
    };
    if o.ignore_sigterm {
        // SAFETY: setting a signal disposition to SIG_IGN before any thread starts.
        unsafe {
            libc::signal(libc::SIGTERM, libc::SIG_IGN);
        }
    }
    let started = Instant::now();
    if let Some(after) = o.exit_after {
        let code = o.exit_code;
        std::thread::spawn(move || {
            std::thread::sleep(after);
            std::process::exit(code);
        });
    }
    let listener = match TcpListener::bind(("127.0.0.1", o.port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fake-pod: bind 127.0.0.1:{}: {e}", o.port);
            std::process::exit(3);
        }
    };
    for stream in listener.incoming().flatten() {
        let age = started.elapsed();
        let ready = age >= o.ready_after && o.unready_after.is_none_or(|u| age < u);
        std::thread::spawn(move || answer(stream, ready));
    }
}

fn answer(mut s: TcpStream, ready: bool) {
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap_or(0);
    let req = String::from_utf8_lossy(&buf[..n]);
    let path = req.split_whitespace().nth(1).unwrap_or("");
    let status = match path {
        "/v2/health/ready" if ready => "200 OK",
        "/v2/health/ready" => "503 Service Unavailable",
        "/v2/health/live" => "200 OK",
        _ => "404 Not Found",
    };
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
}
