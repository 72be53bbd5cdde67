//! The load generator against an in-process server on 127.0.0.1.
//!
//! Timing assertions have wide margins (the test machine is shared and busy) but
//! are far tighter than the effects they check.

mod support;

use lab_loadgen::{
    arrivals, constant_rate, default_threads, merge, run, LoadConfig, LoadOutput, Mode, Protocol,
    Shard, Stream, REFUSED,
};
use lab_traffic::Arrivals;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{closed_port, Reply, TestServer};

fn config(url: &str, protocol: Protocol, rate: f64, secs: f64, arrivals: Arrivals) -> LoadConfig {
    let stream = Stream {
        spec: constant_rate(rate, Duration::from_secs_f64(secs), arrivals),
        index: 0,
        service: "m".into(),
        model: "m".into(),
    };
    let mut c = LoadConfig::new(url, protocol, vec![stream]);
    c.seed = 7;
    c.timeout = Duration::from_secs(5);
    c
}

/// The tests run one at a time: each runs a server and a generator on a shared
/// two-core machine, and in parallel they would mostly measure each other.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn go(c: LoadConfig) -> LoadOutput {
    run(c, std::future::pending())
        .await
        .expect("the run succeeds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_every_scheduled_request_at_its_instant() {
    let _serial = SERIAL.lock().await;
    let server = TestServer::ok().await;
    let c = config(
        &server.url(),
        Protocol::V2Rest,
        400.0,
        2.0,
        Arrivals::Poisson,
    );
    let plan: Vec<_> = arrivals(&c).collect();
    let out = go(c).await;
    eprintln!("{}", out.report.text());
    let seen = server.seen();

    assert_eq!(
        seen.len(),
        plan.len(),
        "one request per scheduled arrival: {:?}",
        out.results.summary.requests
    );
    let seqs: BTreeSet<u64> = seen.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, plan.iter().map(|p| p.arrival.seq).collect());
    assert!(seen.iter().all(|s| s.path == "/v2/models/m/infer"));

    // Arrival instants at the server against the schedule, up to a constant offset.
    let base = seen.iter().map(|s| s.at).min().unwrap();
    let at_of = |seq: u64| {
        plan.iter()
            .find(|p| p.arrival.seq == seq)
            .unwrap()
            .arrival
            .at_ns
    };
    let mut skew: Vec<f64> = seen
        .iter()
        .map(|s| (s.at - base).as_secs_f64() * 1e3 - at_of(s.seq) as f64 / 1e6)
        .collect();
    skew.sort_by(f64::total_cmp);
    let median = skew[skew.len() / 2];
    let mut dev: Vec<f64> = skew.iter().map(|d| (d - median).abs()).collect();
    dev.sort_by(f64::total_cmp);
    // Loose on purpose: the machine is shared; a pacer that drifted or spaced
    // requests by their gaps instead of their instants would be off by far more.
    let (p50, p90) = (dev[dev.len() / 2], dev[dev.len() * 9 / 10]);
    assert!(p50 < 5.0, "median deviation from the schedule {p50:.2} ms");
    assert!(p90 < 100.0, "p90 deviation from the schedule {p90:.2} ms");

    let r = &out.results;
    assert!(r.complete);
    assert_eq!(r.summary.requests.arrived, plan.len() as u64);
    assert_eq!(r.summary.requests.completed, plan.len() as u64);
    assert!(r.summary.requests.is_conserved());
    assert!(
        out.report.send_lag_seconds.p50 < 0.005,
        "{:?}",
        out.report.send_lag_seconds
    );
    // The time series adds up to the totals.
    let secs = r.run.interval_seconds;
    let arrived: f64 = r.timeseries.iter().map(|p| p.arrival_rps * secs).sum();
    assert_eq!(arrived.round() as u64, plan.len() as u64);
    assert!(r.timeseries.len() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_threads_split_the_schedule_exactly() {
    let _serial = SERIAL.lock().await;
    let server = TestServer::ok().await;
    let mut c = config(
        &server.url(),
        Protocol::V2Rest,
        300.0,
        1.0,
        Arrivals::Poisson,
    );
    // More threads than cores: each paces its own part on its own runtime.
    c.threads = 3;
    let plan: Vec<_> = arrivals(&c).collect();
    let out = go(c).await;
    let mut seqs: Vec<u64> = server.seen().iter().map(|s| s.seq).collect();
    seqs.sort_unstable();
    let mut want: Vec<u64> = plan.iter().map(|p| p.arrival.seq).collect();
    want.sort_unstable();
    assert_eq!(seqs, want, "every arrival sent once, by one of the threads");
    let r = &out.results.summary.requests;
    assert_eq!(
        (r.arrived, r.completed),
        (plan.len() as u64, plan.len() as u64)
    );
    assert_eq!(
        out.results.load.as_ref().unwrap().send_lag_seconds.count,
        plan.len() as u64
    );
}

/// One second of uniform arrivals at 50 req/s against a server that holds
/// every answer for `hold`, with `cap` in-flight slots and `threads` pacing
/// threads: the arrivals scheduled, the run, and the requests the server saw.
async fn capped_run(hold: Duration, cap: u32, threads: u32) -> (u64, LoadOutput, u64) {
    let server = TestServer::start(Arc::new(move |_, _, _| support::hold_for(hold))).await;
    let mut c = config(
        &server.url(),
        Protocol::V2Rest,
        50.0,
        1.0,
        Arrivals::Uniform,
    );
    c.max_in_flight = cap;
    c.threads = threads;
    let n = arrivals(&c).count() as u64;
    let out = go(c).await;
    (n, out, server.seen().len() as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_smaller_than_the_thread_count_still_holds() {
    let _serial = SERIAL.lock().await;
    // Answers take 200 ms and arrive every 20 ms: with one slot, at most one
    // request may be at the server at any time, however many threads pace.
    let (n, out, sent) = capped_run(Duration::from_millis(200), 1, 4).await;
    let req = &out.results.summary.requests;
    let refused = req.failed_by_reason.get(REFUSED).copied().unwrap_or(0);
    assert_eq!(req.arrived, n);
    assert_eq!(sent, n - refused);
    // One request per 200 ms answer over a 1 s schedule (plus the one still
    // going at its end); two slots would have let about twice as many through.
    assert!(sent <= 6, "{sent} sent with a cap of one");
    assert!(req.is_conserved());
}

/// The server answers nothing for one second in the middle of the run.
fn stall_policy() -> support::Policy {
    Arc::new(|_, first: Instant, now: Instant| {
        let (from, to) = (
            first + Duration::from_secs(1),
            first + Duration::from_secs(2),
        );
        if now >= from && now < to {
            Reply {
                hold_until: Some(to),
                ..Reply::OK
            }
        } else {
            Reply::OK
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_the_open_loop_tail_and_hides_in_a_closed_loop() {
    let _serial = SERIAL.lock().await;
    // Open loop at 200 req/s: the ~200 requests due during the stall all wait.
    let server = TestServer::start(stall_policy()).await;
    let open = go(config(
        &server.url(),
        Protocol::V2Rest,
        200.0,
        3.0,
        Arrivals::Uniform,
    ))
    .await;
    let open_lat = open.results.summary.latency_seconds;

    // Closed loop at about the same rate: one user, 5 ms think time. During the
    // stall the user waits for one answer, so only one sample is slow.
    let server = TestServer::start(stall_policy()).await;
    let mut c = config(
        &server.url(),
        Protocol::V2Rest,
        200.0,
        3.0,
        Arrivals::Uniform,
    );
    c.mode = Mode::Closed {
        users: 1,
        think: Duration::from_millis(5),
    };
    let closed = go(c).await;
    let closed_lat = closed.results.summary.latency_seconds;

    eprintln!("open loop:   {open_lat:?}\nclosed loop: {closed_lat:?}");
    assert!(
        open_lat.max > 0.9,
        "open-loop max shows the stall: {open_lat:?}"
    );
    assert!(
        open_lat.p99 > 0.5,
        "open-loop p99 shows the stall: {open_lat:?}"
    );
    assert!(
        closed_lat.max > 0.9,
        "the closed loop saw one slow answer: {closed_lat:?}"
    );
    assert!(
        closed_lat.p99 < 0.1,
        "the closed loop hides the stall at p99: {closed_lat:?}"
    );
    assert!(open_lat.p99 > 10.0 * closed_lat.p99);
    // The stall also made the closed loop send fewer requests than the schedule.
    assert!(closed.results.summary.requests.arrived < open.results.summary.requests.arrived);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_counted_by_class() {
    let _serial = SERIAL.lock().await;
    // seq % 4: 1 -> HTTP 503, 2 -> held past the 300 ms timeout, others OK.
    let server = TestServer::start(Arc::new(|seq, _, now: Instant| match seq % 4 {
        1 => Reply {
            status: 503,
            ..Reply::OK
        },
        2 => Reply {
            hold_until: Some(now + Duration::from_secs(3)),
            ..Reply::OK
        },
        _ => Reply::OK,
    }))
    .await;
    let mut c = config(
        &server.url(),
        Protocol::V2Rest,
        100.0,
        1.0,
        Arrivals::Uniform,
    );
    c.timeout = Duration::from_millis(300);
    let n = arrivals(&c).count() as u64;
    let count = |k: u64| arrivals(&c).filter(|p| p.arrival.seq % 4 == k).count() as u64;
    let (n503, ntimeout) = (count(1), count(2));
    let out = go(c).await;
    let req = &out.results.summary.requests;
    assert_eq!(req.arrived, n);
    assert_eq!(req.failed_by_reason.get("http_503"), Some(&n503));
    assert_eq!(req.failed_by_reason.get("timeout"), Some(&ntimeout));
    assert_eq!(req.completed, n - n503 - ntimeout);
    assert!(req.is_conserved());
    assert!((out.results.summary.error_rate - (n503 + ntimeout) as f64 / n as f64).abs() < 1e-12);

    // Nothing listens: every request fails to connect.
    let target = format!("http://127.0.0.1:{}", closed_port());
    let mut c = config(&target, Protocol::Http, 50.0, 0.5, Arrivals::Uniform);
    c.timeout = Duration::from_secs(2);
    let n = arrivals(&c).count() as u64;
    let out = go(c).await;
    assert_eq!(
        out.results.summary.requests.failed_by_reason.get("connect"),
        Some(&n)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrivals_beyond_the_in_flight_cap_are_refused_and_counted() {
    let _serial = SERIAL.lock().await;
    // Every answer takes 300 ms; with 2 slots at 50 req/s most arrivals find no slot.
    let (n, out, sent) = capped_run(Duration::from_millis(300), 2, default_threads()).await;
    let req = &out.results.summary.requests;
    let refused = req.failed_by_reason.get(REFUSED).copied().unwrap_or(0);
    assert_eq!(req.arrived, n, "refused arrivals still count as arrived");
    assert_eq!(sent, n - refused);
    assert!(refused >= n / 2, "{refused} of {n} refused");
    assert_eq!(out.report.refused, refused);
    assert!(req.is_conserved());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_requests_carry_the_tensor_and_statuses_are_classified() {
    let _serial = SERIAL.lock().await;
    // seq % 3 == 2 -> RESOURCE_EXHAUSTED (8).
    let server = TestServer::start(Arc::new(|seq, _, _| Reply {
        grpc: if seq % 3 == 2 { 8 } else { 0 },
        ..Reply::OK
    }))
    .await;
    let mut c = config(
        &server.url(),
        Protocol::V2Grpc,
        100.0,
        0.6,
        Arrivals::Uniform,
    );
    c.streams[0].spec.rows_per_request = 3;
    let n = arrivals(&c).count() as u64;
    let bad = arrivals(&c).filter(|p| p.arrival.seq % 3 == 2).count() as u64;
    let out = go(c).await;
    let req = &out.results.summary.requests;
    assert_eq!(req.arrived, n);
    assert_eq!(
        req.failed_by_reason.get("grpc_resource_exhausted"),
        Some(&bad)
    );
    assert_eq!(req.completed, n - bad);
    let seen = server.seen();
    assert!(seen
        .iter()
        .all(|s| s.path == "/inference.GRPCInferenceService/ModelInfer"));
    // 3 rows of FP32[4] = 48 bytes of raw contents.
    assert!(seen.iter().all(|s| s.raw_len == 48), "{:?}", seen.first());

    // gRPC to a closed port is a connect error, not an unexplained status.
    let target = format!("http://127.0.0.1:{}", closed_port());
    let c = config(&target, Protocol::V2Grpc, 10.0, 0.2, Arrivals::Uniform);
    let err = run(c, std::future::pending()).await.unwrap_err();
    assert!(err.to_string().contains("metadata"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_v1_http2_and_file_bodies_reach_the_server() {
    let _serial = SERIAL.lock().await;
    let server = TestServer::ok().await;
    let mut c = config(
        &server.url(),
        Protocol::V2RestBinary,
        50.0,
        0.2,
        Arrivals::Uniform,
    );
    c.streams[0].spec.rows_per_request = 2;
    let out = go(c).await;
    assert!(out.results.summary.requests.failed == 0);
    for s in server.seen() {
        let h = s
            .header_len
            .expect("binary requests carry the header length");
        assert_eq!(s.body_len, h + 2 * 4 * 4, "JSON header plus 2x4 FP32");
    }

    let server = TestServer::ok().await;
    let mut c = config(&server.url(), Protocol::V1, 50.0, 0.2, Arrivals::Uniform);
    c.http2 = true;
    let out = go(c).await;
    assert!(out.results.summary.requests.completed > 0);
    assert_eq!(out.results.summary.requests.failed, 0);
    assert!(server
        .seen()
        .iter()
        .all(|s| s.path == "/v1/models/m:predict"));

    let server = TestServer::ok().await;
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body.json");
    std::fs::write(&body, br#"{"hello":"world"}"#).unwrap();
    let mut c = config(
        &format!("{}/anything", server.url()),
        Protocol::Http,
        50.0,
        0.2,
        Arrivals::Uniform,
    );
    c.payload = lab_loadgen::Payload::File(body);
    let out = go(c).await;
    assert_eq!(out.results.summary.requests.failed, 0);
    assert!(server
        .seen()
        .iter()
        .all(|s| s.path == "/anything" && s.body_len == 17));

    let mut c = config(&server.url(), Protocol::Http, 50.0, 0.2, Arrivals::Uniform);
    c.payload = lab_loadgen::Payload::File(dir.path().join("missing.bin"));
    let err = run(c, std::future::pending()).await.unwrap_err();
    assert!(matches!(err, lab_loadgen::LoadError::BadInput(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_shards_equal_the_unsharded_run() {
    let _serial = SERIAL.lock().await;
    let server = TestServer::ok().await;
    let whole_cfg = config(
        &server.url(),
        Protocol::V2Rest,
        300.0,
        2.0,
        Arrivals::Poisson,
    );
    let whole = go(whole_cfg.clone()).await;
    let whole_seqs: BTreeSet<u64> = server.seen().iter().map(|s| s.seq).collect();

    let server = TestServer::ok().await;
    let mut parts = Vec::new();
    for index in 0..2 {
        let mut c = whole_cfg.clone();
        c.target = server.url();
        c.shard = Shard { index, count: 2 };
        parts.push(go(c).await.results);
    }
    let shard_seqs: Vec<u64> = server.seen().iter().map(|s| s.seq).collect();
    assert_eq!(
        shard_seqs.len(),
        whole_seqs.len(),
        "no request sent twice or lost"
    );
    assert_eq!(shard_seqs.into_iter().collect::<BTreeSet<_>>(), whole_seqs);

    let merged = merge(&parts).unwrap();
    let (m, w) = (&merged.summary, &whole.results.summary);
    assert_eq!(m.requests, w.requests);
    assert_eq!(m.latency_seconds.count, w.latency_seconds.count);
    // Arrivals are binned by intended instant, so every interval matches; the
    // series may run on past the schedule while the last answers come back.
    for i in 0..2 {
        assert_eq!(
            merged.timeseries[i].arrival_rps,
            whole.results.timeseries[i].arrival_rps
        );
    }
    assert!(merged.complete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_early_writes_partial_results() {
    let _serial = SERIAL.lock().await;
    let server = TestServer::ok().await;
    let c = config(
        &server.url(),
        Protocol::V2Rest,
        100.0,
        30.0,
        Arrivals::Uniform,
    );
    let t = Instant::now();
    let out = run(c, tokio::time::sleep(Duration::from_millis(600)))
        .await
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "stopped promptly: {:?}",
        t.elapsed()
    );
    let r = &out.results;
    assert!(!r.complete);
    assert!(
        r.run.end_seconds < 1.0 && r.run.end_seconds > 0.4,
        "{}",
        r.run.end_seconds
    );
    assert_eq!(r.run.duration_seconds, 30.0);
    assert!(r.summary.requests.arrived >= 30 && r.summary.requests.arrived <= 100);
    assert_eq!(r.summary.requests.completed, r.summary.requests.arrived);
}

/// Shards launched apart (as the pods of a Job are) and given one start
/// instant send on one clock: every request reaches the server at its
/// scheduled offset from that instant, the late shard's included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_given_one_start_instant_send_one_schedule() {
    let _serial = SERIAL.lock().await;
    let server = TestServer::ok().await;
    let base = config(
        &server.url(),
        Protocol::V2Rest,
        200.0,
        1.0,
        Arrivals::Poisson,
    );
    let plan: Vec<_> = arrivals(&base).collect();
    let lead = Duration::from_millis(600);
    let (start_wall, start) = (std::time::SystemTime::now() + lead, Instant::now() + lead);
    let mut handles = Vec::new();
    for index in 0..2u32 {
        let mut c = base.clone();
        c.shard = Shard { index, count: 2 };
        c.start_at = Some(start_wall);
        handles.push(tokio::spawn(async move {
            // The second shard is launched 200 ms after the first.
            tokio::time::sleep(Duration::from_millis(200 * index as u64)).await;
            go(c).await
        }));
    }
    for h in handles {
        let out = h.await.unwrap();
        assert!(out.results.complete);
    }
    let seen = server.seen();
    assert_eq!(seen.len(), plan.len());
    let mut late_ms: Vec<f64> = seen
        .iter()
        .map(|s| {
            let at = plan
                .iter()
                .find(|p| p.arrival.seq == s.seq)
                .unwrap()
                .arrival
                .at_ns;
            s.at.saturating_duration_since(start).as_secs_f64() * 1e3 - at as f64 / 1e6
        })
        .collect();
    late_ms.sort_by(f64::total_cmp);
    let median = late_ms[late_ms.len() / 2];
    // Without the shared instant the second shard's half would be 200 ms late.
    assert!(
        median.abs() < 20.0 && late_ms[late_ms.len() * 9 / 10] < 50.0,
        "requests reach the server this late after their scheduled instant (ms): median {median:.2}, p90 {:.2}",
        late_ms[late_ms.len() * 9 / 10]
    );
    // A start instant already passed is refused, not run late.
    let mut c = base.clone();
    c.start_at = Some(std::time::SystemTime::now() - Duration::from_secs(1));
    let err = run(c, std::future::pending()).await.unwrap_err();
    assert!(err.to_string().contains("start time passed"), "{err}");
}
