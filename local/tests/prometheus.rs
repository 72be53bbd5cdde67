//! Against the real Prometheus (Debian's 2.42: `apt-get install prometheus`,
//! which scripts/install-test-deps.sh does; `PROMETHEUS=/path` overrides PATH).
//! Each test starts its own server on a free loopback port with a 250 ms scrape.

mod common;
use common::alive;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lab_local::prometheus::render_config;
use lab_local::{
    locate_prometheus, PodTarget, PromClient, Prometheus, PrometheusConfig, PrometheusError,
    QueryError, StaticJob,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The in-test target's counter grows by this much per second.
const RATE: f64 = 40.0;
const SCRAPE: Duration = Duration::from_millis(250);

fn binary() -> PathBuf {
    let explicit = std::env::var_os("PROMETHEUS").map(PathBuf::from);
    locate_prometheus(explicit.as_deref()).unwrap_or_else(|e| panic!("{e}"))
}

/// A /metrics target: a counter at RATE per second since it started, and a
/// gauge with two series.
async fn metrics_target() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let born = Arc::new(Instant::now());
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let born = born.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = s.read(&mut buf).await;
                let body = format!(
                    "# TYPE lab_test_requests_total counter\n\
                     lab_test_requests_total {}\n\
                     # TYPE lab_test_replicas gauge\n\
                     lab_test_replicas{{version=\"a\"}} 1\n\
                     lab_test_replicas{{version=\"b\"}} 2\n",
                    RATE * born.elapsed().as_secs_f64()
                );
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(body.as_bytes()).await;
            });
        }
    });
    addr
}

fn config(run_dir: &Path, gateway: &str) -> PrometheusConfig {
    PrometheusConfig {
        scrape_interval: SCRAPE,
        static_jobs: vec![StaticJob {
            job: "lab-gateway".into(),
            targets: vec![gateway.into()],
        }],
        pods_job: "lab-pods".into(),
        run_dir: run_dir.into(),
    }
}

/// Prometheus cannot notify us of a scrape: poll the query until `done`, up to
/// a deadline, and return the last value.
async fn poll_until(client: &PromClient, query: &str, done: impl Fn(f64) -> bool) -> f64 {
    let began = Instant::now();
    loop {
        let v = client.query_value(query).await.unwrap();
        if done(v) {
            return v;
        }
        assert!(
            began.elapsed() < Duration::from_secs(20),
            "{query} still {v} after 20 s"
        );
        tokio::time::sleep(SCRAPE / 2).await;
    }
}

#[tokio::test]
async fn scrapes_file_sd_pods_and_answers_with_keda_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let target = metrics_target().await;
    let mut prom = Prometheus::start(&binary(), &config(dir.path(), &target))
        .await
        .unwrap();
    eprintln!(
        "prometheus ready {:?} after spawn",
        prom.started_in().unwrap()
    );
    assert!(
        dir.path().join("prometheus/data").is_dir(),
        "TSDB in the run folder"
    );
    let client = prom.client();

    prom.set_pod_targets(&[PodTarget {
        address: target.clone(),
        labels: vec![("pod".into(), "p0".into()), ("service".into(), "s".into())],
    }])
    .unwrap();
    let added = Instant::now();
    poll_until(&client, r#"up{job="lab-pods",pod="p0",service="s"}"#, |v| {
        v == 1.0
    })
    .await;
    eprintln!(
        "file_sd pod scraped {:?} after it was written",
        added.elapsed()
    );
    poll_until(&client, r#"up{job="lab-gateway"}"#, |v| v == 1.0).await;
    // A 2 s rate() reads low until the series is older than its window
    // (rate() extrapolates only half an interval past the first sample): wait
    // for 11 samples, 2.5 s of them at 250 ms.
    let counter = r#"lab_test_requests_total{job="lab-pods"}"#;
    poll_until(&client, &format!("count_over_time({counter}[4s])"), |v| {
        v >= 11.0
    })
    .await;

    let before = Instant::now();
    let value = client.query_value(counter).await.unwrap();
    assert!(value > 0.0, "{value}");
    let rate = client
        .query_value(&format!("rate({counter}[2s])"))
        .await
        .unwrap();
    assert!(
        (rate - RATE).abs() < 0.1 * RATE,
        "rate {rate}, target {RATE}/s"
    );
    // The last scrape is at most one interval old (plus the query's own time).
    let later = client.query_value(counter).await.unwrap();
    assert!(later >= value);
    assert!(later - value <= RATE * (before.elapsed() + SCRAPE * 2).as_secs_f64());

    // Evaluated before the target existed, the counter has no series.
    let past = std::time::SystemTime::now() - Duration::from_secs(60);
    assert!(client
        .query_at(counter, Some(past))
        .await
        .unwrap()
        .is_empty());
    let now = std::time::SystemTime::now();
    assert_eq!(client.query_at(counter, Some(now)).await.unwrap().len(), 1);

    // KEDA's prometheus trigger: no series is 0 ...
    let absent = "lab_test_absent_metric";
    assert!(client.query(absent).await.unwrap().is_empty());
    assert_eq!(client.query_value(absent).await.unwrap(), 0.0);
    assert_eq!(
        client
            .query_value_with(absent, false, None)
            .await
            .unwrap_err(),
        QueryError::Empty {
            query: absent.into()
        }
    );
    // ... NaN is 0 ...
    let nan = r#"sum(lab_test_replicas{job="lab-pods"}) * 0 / 0"#;
    assert!(client.query(nan).await.unwrap()[0].value.is_nan());
    assert_eq!(client.query_value(nan).await.unwrap(), 0.0);
    // ... and more than one series is an error naming the query.
    let two = r#"lab_test_replicas{job="lab-pods"}"#;
    assert_eq!(client.query(two).await.unwrap().len(), 2);
    insta::assert_snapshot!("two_series", client.query_value(two).await.unwrap_err());
    // Prometheus' own message for a bad query.
    insta::assert_snapshot!("bad_query", client.query_value("rate(").await.unwrap_err());

    // `--prometheus URL`: a second handle on the running server starts and
    // stops nothing.
    let mut external = Prometheus::external(format!("{}/", prom.url()), None);
    assert_eq!(external.pid(), None);
    external.wait_ready(Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        external
            .client()
            .query_value(r#"up{job="lab-gateway"}"#)
            .await
            .unwrap(),
        1.0
    );
    external.stop().await;
    drop(external);
    assert_eq!(
        client
            .query_value(r#"up{job="lab-gateway"}"#)
            .await
            .unwrap(),
        1.0
    );

    // A pod that goes away leaves the targets file; its series go stale.
    prom.set_pod_targets(&[]).unwrap();
    let removed = Instant::now();
    poll_until(&client, r#"count(up{job="lab-pods"})"#, |v| v == 0.0).await;
    eprintln!(
        "file_sd pod gone {:?} after it was removed",
        removed.elapsed()
    );

    let pid = prom.pid().unwrap();
    prom.stop().await;
    assert!(!alive(pid), "prometheus {pid} outlived stop");
    assert_eq!(prom.pid(), None);
}

#[tokio::test]
async fn dropping_an_unstopped_prometheus_kills_it() {
    let dir = tempfile::tempdir().unwrap();
    let prom = Prometheus::start(&binary(), &config(dir.path(), "127.0.0.1:9"))
        .await
        .unwrap();
    let pid = prom.pid().unwrap();
    drop(prom);
    // Not our child any more once dropped (tokio reaps it): poll, bounded.
    let began = Instant::now();
    while alive(pid) {
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "prometheus {pid} outlived its handle"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_missing_binary_says_how_to_install_it() {
    let e = locate_prometheus(Some(Path::new("/nonexistent/prometheus"))).unwrap_err();
    insta::assert_snapshot!("missing_binary", e);
}

#[tokio::test]
async fn a_server_that_exits_at_start_up_is_reported_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let e = Prometheus::start(Path::new("/bin/false"), &config(dir.path(), "127.0.0.1:9"))
        .await
        .err()
        .unwrap();
    let PrometheusError::Exited { exit, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(exit, "exit status: 1");
}

#[test]
fn the_generated_config() {
    let cfg = PrometheusConfig {
        scrape_interval: Duration::from_millis(500),
        static_jobs: vec![
            StaticJob {
                job: "lab-gateway".into(),
                targets: vec!["127.0.0.1:8000".into()],
            },
            StaticJob {
                job: "lab-controller".into(),
                targets: vec!["127.0.0.1:8001".into()],
            },
        ],
        pods_job: "lab-pods".into(),
        run_dir: "/run/x".into(),
    };
    insta::assert_snapshot!(render_config(
        &cfg,
        Path::new("/run/x/prometheus/pods.json")
    ));
}

/// Runs only as a child of the test below (LAB_LOCAL_HELPER set): starts
/// Prometheus, prints `PID pid`, and waits to be killed.
#[tokio::test]
async fn helper_parent() {
    if std::env::var_os("LAB_LOCAL_HELPER").is_none() {
        return;
    }
    // It dies by SIGKILL and cannot clean up: leave the folder under target/.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let prom = Prometheus::start(&binary(), &config(dir.path(), "127.0.0.1:9"))
        .await
        .unwrap();
    println!("PID {}", prom.pid().unwrap());
    std::future::pending::<()>().await;
}

#[test]
fn sigkill_of_the_parent_leaves_no_prometheus() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_parent",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LAB_LOCAL_HELPER", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let pid: u32 = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        // libtest's "test helper_parent ... " precedes it on the same line.
        .find_map(|l| l.split_once("PID ").map(|(_, p)| p.trim().parse().unwrap()))
        .expect("the helper prints Prometheus' pid");
    assert!(alive(pid));
    child.kill().unwrap(); // SIGKILL: PR_SET_PDEATHSIG must take Prometheus down
    child.wait().unwrap();
    let began = Instant::now();
    while alive(pid) {
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "prometheus {pid} outlived its SIGKILLed parent"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
