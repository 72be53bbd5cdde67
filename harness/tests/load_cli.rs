//! `lab load` and `lab merge` as users meet them: exit codes, the results file
//! written against a real HTTP server on 127.0.0.1, and shards that merge to
//! the counts of the unsharded run.

mod common;
use common::{lab, repo, stderr};

use lab_results::{Level, Results};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;

fn read(path: &Path) -> Results {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A minimal HTTP/1.1 keep-alive server on an ephemeral port: `200 ok` to every
/// request, one thread per connection. Returns its base URL; the threads end
/// with the test process.
fn trivial_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || serve(conn));
        }
    });
    url
}

fn serve(conn: TcpStream) {
    let _ = conn.set_nodelay(true);
    let mut out = conn.try_clone().unwrap();
    let mut input = BufReader::new(conn);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        // Request line and headers, up to the blank line.
        loop {
            line.clear();
            match input.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if input.read_exact(&mut body).is_err() {
            return;
        }
        if out
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\n\r\nok",
            )
            .is_err()
        {
            return;
        }
    }
}

#[test]
fn load_refuses_bad_flags_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let out = out.to_str().unwrap();
    // Each case: the flags that make it wrong, after a valid target.
    let base = ["load", "--target", "http://127.0.0.1:9/", "--out", out];
    let rated = ["--protocol", "http", "--rate", "10", "--duration", "1s"];
    let cases: [(&str, Vec<&str>); 7] = [
        ("neither a scenario nor a rate", vec![]),
        ("a rate without a duration", rated[..4].to_vec()),
        (
            "a shard outside its count",
            [&rated[..], &["--shard", "3/2"]].concat(),
        ),
        (
            "no pacing thread",
            [&rated[..], &["--threads", "0"]].concat(),
        ),
        (
            "a negative rate",
            vec!["--protocol", "http", "--rate", "-5", "--duration", "1s"],
        ),
        (
            "a start instant that has passed",
            [&rated[..], &["--start-at", "1700000000"]].concat(),
        ),
        (
            "a start instant that is not one",
            [&rated[..], &["--start-at", "tomorrow"]].concat(),
        ),
    ];
    for (what, wrong) in cases {
        let args: Vec<&str> = base.iter().chain(&wrong).copied().collect();
        let o = lab(&args);
        assert_eq!(o.status.code(), Some(2), "{what}: {}", stderr(&o));
        assert!(!stderr(&o).trim().is_empty(), "{what}: no message");
    }
    assert!(!Path::new(out).exists(), "a refused run wrote results");
}

#[test]
fn load_writes_results_and_shards_merge_to_the_whole_run() {
    let url = trivial_server();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let run = |out: &str, shard: Option<&str>, threads: &str| {
        let mut args = vec![
            "load",
            "--protocol",
            "http",
            "--target",
            &url,
            "--rate",
            "400",
            "--duration",
            "1s",
            "--seed",
            "7",
            "--level",
            "cluster",
            "--json",
            "--threads",
            threads,
            "--out",
            out,
        ];
        if let Some(s) = shard {
            args.extend(["--shard", s]);
        }
        let o = lab(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        // `--json` prints the run's figures as one JSON object.
        let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["refused"], 0, "{report}");
        read(Path::new(out))
    };

    let whole = run(&path("whole.json"), None, "1");
    let c = &whole.summary.requests;
    assert_eq!(whole.level, Level::Cluster);
    assert!(whole.complete);
    assert_eq!(c.arrived, 400, "{c:?}");
    assert_eq!(c.completed, 400, "{c:?}");
    assert!(c.is_conserved());
    assert_eq!(whole.summary.latency_seconds.count, 400);
    // The send lag lives under `load`, not in `queue_seconds`.
    assert_eq!(whole.summary.queue_seconds, Default::default());
    let load = whole
        .load
        .as_ref()
        .expect("lab load writes its own figures");
    assert_eq!(load.send_lag_seconds.count, 400);
    assert_eq!(load.service_seconds.count, 400);
    assert_eq!(load.refused_in_flight_cap, 0);
    assert!(load.service_seconds.max <= whole.summary.latency_seconds.max);

    // The file validates against the committed schema.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("results/results.schema.json")).unwrap(),
    )
    .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path("whole.json")).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");

    // Shards paced by several threads each still partition the schedule.
    let s0 = run(&path("s0.json"), Some("0/2"), "2");
    let s1 = run(&path("s1.json"), Some("1/2"), "3");
    assert_eq!(
        s0.summary.requests.arrived + s1.summary.requests.arrived,
        400
    );
    assert!(s0.summary.requests.arrived > 0 && s1.summary.requests.arrived > 0);

    let o = lab(&[
        "merge",
        &path("s0.json"),
        &path("s1.json"),
        "-o",
        &path("merged.json"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let merged = read(Path::new(&path("merged.json")));
    assert_eq!(merged.summary.requests, whole.summary.requests);
    assert_eq!(
        merged.summary.latency_seconds.count,
        whole.summary.latency_seconds.count
    );
    assert_eq!(merged.services.len(), 1);
    assert_eq!(merged.services[0].requests, whole.services[0].requests);
    let ml = merged.load.as_ref().unwrap();
    assert_eq!(ml.send_lag_seconds.count, 400);
    assert_eq!(ml.service_seconds.count, 400);
    // Merged histograms are exact: the merged max is the larger shard max.
    let shard_max = [&s0, &s1]
        .iter()
        .map(|r| r.load.as_ref().unwrap().service_seconds.max)
        .fold(0.0, f64::max);
    assert_eq!(ml.service_seconds.max, shard_max);
    let arrivals: f64 =
        merged.timeseries.iter().map(|p| p.arrival_rps).sum::<f64>() * merged.run.interval_seconds;
    assert_eq!(arrivals.round() as u64, 400);
}

#[test]
fn merge_refuses_bad_parts_with_exit_code_2() {
    let url = trivial_server();
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    for (name, seed) in [("a.json", "1"), ("b.json", "2")] {
        let o = lab(&[
            "load",
            "--protocol",
            "http",
            "--target",
            &url,
            "--rate",
            "50",
            "--duration",
            "200ms",
            "--seed",
            seed,
            "--out",
            &path(name),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    std::fs::write(path("junk.json"), "{\"not\": \"results\"}").unwrap();

    // Different seeds are not shards of one run.
    let o = lab(&[
        "merge",
        &path("a.json"),
        &path("b.json"),
        "-o",
        &path("m.json"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("seed"), "{}", stderr(&o));
    // Not a results file; a file that does not exist.
    let o = lab(&[
        "merge",
        &path("a.json"),
        &path("junk.json"),
        "-o",
        &path("m.json"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = lab(&["merge", &path("missing.json"), "-o", &path("m.json")]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!Path::new(&path("m.json")).exists());
    // One part alone merges to itself.
    let o = lab(&["merge", &path("a.json"), "-o", &path("m.json")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        read(Path::new(&path("m.json"))).summary.requests,
        read(Path::new(&path("a.json"))).summary.requests
    );
}

/// A paused shard: `--await-start` listens until `POST /start` gives the
/// instant, refusing what is not one, then runs from that instant and prints
/// its results on standard output (`-o -`), as a load Job's pod does.
#[test]
fn a_paused_shard_starts_at_the_instant_it_is_given() {
    use std::process::{Command, Stdio};
    let target = trivial_server();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab"))
        .args([
            "load",
            "--target",
            &target,
            "--protocol",
            "http",
            "--rate",
            "40",
            "--duration",
            "1s",
            "--shard",
            "1/2",
            "--await-start",
            "127.0.0.1:0",
            "-o",
            "-",
        ])
        .current_dir(repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The event: the shard says where it listens.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no address in: {line}"))
        .to_string();
    let ask = |method: &str, path: &str, body: &str| -> String {
        let mut s = TcpStream::connect(&addr).unwrap();
        write!(s, "{method} {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len()).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    assert!(ask("GET", "/ready", "").starts_with("HTTP/1.1 200"));
    let bad = ask("POST", "/start", "tomorrow");
    assert!(
        bad.starts_with("HTTP/1.1 400") && bad.contains("\"error\""),
        "{bad}"
    );
    let start = std::time::SystemTime::now() + std::time::Duration::from_millis(700);
    let secs = start
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let ok = ask("POST", "/start", &format!("{secs:.3}"));
    assert!(ok.starts_with("HTTP/1.1 202"), "{ok}");
    let out = child.wait_with_output().unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert_eq!(out.status.code(), Some(0), "{rest}");
    // One line, so a reader of a pod log (stderr interleaved) finds it whole.
    assert_eq!(
        out.stdout.iter().filter(|b| **b == b'\n').count(),
        1,
        "results on one line"
    );
    let results: Results = serde_json::from_slice(&out.stdout).expect("results JSON on stdout");
    // Shard 1 of 2 sends half of the 40 arrivals, from the given instant.
    assert_eq!(results.summary.requests.arrived, 20);
    // wall_clock.started_at is RFC 3339 in UTC to the millisecond: its time of
    // day is the instant's.
    let started = results.wall_clock.started_at.clone();
    let clock = started.split('T').nth(1).unwrap().trim_end_matches('Z');
    let parts: Vec<f64> = clock.split(':').map(|p| p.parse().unwrap()).collect();
    let of_day = parts[0] * 3600.0 + parts[1] * 60.0 + parts[2];
    assert!(
        (of_day - secs.rem_euclid(86_400.0)).abs() < 0.002,
        "started at {started}, asked for {secs:.3}"
    );
}
