//! `lab import --prometheus` against a real Prometheus (Debian's 2.42) holding
//! known history: generated counters (a diurnal curve with a counter reset and
//! a gap in the scrapes, and a second, steady service) are backfilled with
//! `promtool tsdb create-blocks-from openmetrics`, Prometheus is started on
//! that TSDB with lab-local's launcher, and the imported rate series is
//! checked against the generated truth within the `rate()` window's
//! resolution; then the imported scenario runs in the simulator and its
//! arrivals are checked against the integral of the series.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

const SCRAPE: f64 = 15.0;
const WINDOW: f64 = 300.0;
const STEP: f64 = 60.0;
const HOURS: f64 = 4.0;
/// The counter restarts from zero one second after this sample (s from t0).
const RESET_AT: f64 = 5400.0;
/// No scrapes in [GAP.0, GAP.1) (s from t0).
const GAP: (f64, f64) = (9600.0, 10_800.0);
const PERIOD: f64 = HOURS * 3600.0;

/// resnet's true rate: a cosine between 4 and 20 req/s peaking an hour in.
fn resnet_rate(t: f64) -> f64 {
    12.0 + 8.0 * libm::cos(2.0 * std::f64::consts::PI * (t - 3600.0) / PERIOD)
}

/// Its integral from 0 to `t`.
fn resnet_count(t: f64) -> f64 {
    let w = 2.0 * std::f64::consts::PI / PERIOD;
    12.0 * t + 8.0 / w * (libm::sin(w * (t - 3600.0)) - libm::sin(w * -3600.0))
}

/// bert's: a ramp from 2 to 6 req/s.
fn bert_rate(t: f64) -> f64 {
    2.0 + 4.0 * t / PERIOD
}

fn bert_count(t: f64) -> f64 {
    2.0 * t + 2.0 * t * t / PERIOD
}

/// The OpenMetrics text promtool backfills: one sample every 15 s per series.
fn openmetrics(t0: f64) -> String {
    let mut s = String::from("# HELP lab_requests Requests served.\n# TYPE lab_requests counter\n");
    let n = (HOURS * 3600.0 / SCRAPE) as u64;
    for k in 0..=n {
        let t = k as f64 * SCRAPE;
        if t >= GAP.0 && t < GAP.1 {
            continue;
        }
        let c = if t > RESET_AT {
            resnet_count(t) - resnet_count(RESET_AT + 1.0)
        } else {
            resnet_count(t)
        };
        let _ = writeln!(
            s,
            "lab_requests_total{{model_name=\"resnet\"}} {c} {}",
            t0 + t
        );
    }
    for k in 0..=n {
        let t = k as f64 * SCRAPE;
        let _ = writeln!(
            s,
            "lab_requests_total{{model_name=\"bert\"}} {} {}",
            bert_count(t),
            t0 + t
        );
    }
    s.push_str("# EOF\n");
    s
}

fn lab(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lab"))
        .args(args)
        .output()
        .expect("lab runs")
}

/// Scrape instants (s from t0) in `[a, b]`, as 2.42's range selection takes
/// them; `gappy` for resnet, whose scrapes stop in `GAP`.
fn samples_in(a: f64, b: f64, gappy: bool) -> Vec<f64> {
    let n = (HOURS * 3600.0 / SCRAPE) as u64;
    (0..=n)
        .map(|k| k as f64 * SCRAPE)
        .filter(|t| *t >= a && *t <= b)
        .filter(|t| !(gappy && *t >= GAP.0 && *t < GAP.1))
        .collect()
}

#[test]
fn imports_a_backfilled_history_and_replays_it() {
    let Ok(binary) = lab_local::locate_prometheus(None) else {
        panic!("this test needs Debian's prometheus package (apt-get install prometheus)");
    };
    let dir = tempfile::tempdir().unwrap();
    // Whole hours a day ago, so the blocks sit well inside the retention.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let t0 = ((now / 3600) * 3600 - 86_400) as f64;
    let om = dir.path().join("history.om");
    std::fs::write(&om, openmetrics(t0)).unwrap();
    let data = dir.path().join("prometheus/data");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&data)
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let config = lab_local::PrometheusConfig {
        scrape_interval: Duration::from_secs(15),
        static_jobs: Vec::new(),
        pods_job: "lab-pods".into(),
        run_dir: dir.path().into(),
    };
    let mut prom = runtime
        .block_on(lab_local::Prometheus::start(&binary, &config))
        .unwrap_or_else(|e| panic!("{e}"));
    let url = prom.url().to_string();

    // The step grid is 7 s off the scrapes, so no window edge falls on a sample.
    let start = t0 + 7.0;
    let end = t0 + HOURS * 3600.0;
    let end_rfc = lab_import::prometheus::rfc3339(end);
    let fragment = dir.path().join("prod.toml");
    let query = "sum by (model_name) (rate(lab_requests_total[5m]))";
    let out = lab(&[
        "import",
        "--prometheus",
        &url,
        "--query",
        query,
        "--start",
        &format!("{start}"),
        "--end",
        &end_rfc,
        "--step",
        "1m",
        "-o",
        fragment.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    // Both services, each in a CSV beside the fragment (240 samples each).
    let toml_text = std::fs::read_to_string(&fragment).unwrap();
    assert!(
        toml_text.contains(&format!("# query: {query}")),
        "{toml_text}"
    );
    assert!(toml_text.contains(&format!("from {url}")), "{toml_text}");
    let csv = |svc: &str| {
        lab_traffic::parse_rate_csv(
            &std::fs::read_to_string(dir.path().join(format!("prod.{svc}.csv"))).unwrap(),
        )
        .unwrap()
    };
    let (resnet, bert) = (csv("resnet"), csv("bert"));

    // Which steps rate() answers: two samples or more in [t - 5m, t]. The
    // importer leaves out, besides, the steps whose window reaches into a gap.
    let steps: Vec<f64> = (0..)
        .map(|j| 7.0 + STEP * j as f64)
        .take_while(|t| *t <= HOURS * 3600.0)
        .collect();
    let answered = |t: f64, gappy: bool| samples_in(t - WINDOW, t, gappy).len() >= 2;
    let missing: Vec<f64> = steps
        .iter()
        .copied()
        .filter(|t| !answered(*t, true))
        .collect();
    // The range's first step (one sample in its window) and the gap's.
    assert_eq!(missing[0], 7.0);
    let inner: Vec<&f64> = missing.iter().filter(|t| **t > 7.0).collect();
    let (gap_from, gap_to) = (
        steps.iter().rev().find(|t| **t < *inner[0]).unwrap(),
        steps
            .iter()
            .find(|t| **t > **inner.last().unwrap())
            .unwrap(),
    );
    let gap_line = format!(
        "resnet: gap: no value for {} step(s) from {} to {}",
        inner.len(),
        lab_import::prometheus::rfc3339(t0 + gap_from),
        lab_import::prometheus::rfc3339(t0 + gap_to)
    );
    assert!(
        stderr.contains(&gap_line),
        "wanted {gap_line:?} in:\n{stderr}"
    );
    assert!(toml_text.contains(&gap_line), "{toml_text}");
    assert!(stderr.contains("resnet: counter reset"), "{stderr}");
    assert!(
        !stderr.contains("bert: gap: no value for")
            || stderr.contains("bert: gap: no value for 1 step(s) from")
    );
    assert!(!stderr.contains("bert: counter reset"), "{stderr}");
    // The reset is reported where it happened: from the first step whose
    // window holds the first sample after it, to the last whose window still
    // holds the one before it.
    let reset_line = stderr
        .lines()
        .find(|l| l.contains("resnet: counter reset"))
        .unwrap();
    let step_at = |t: &f64| lab_import::prometheus::rfc3339(t0 + t);
    let reset_from = step_at(steps.iter().find(|t| **t >= RESET_AT + SCRAPE).unwrap());
    let reset_to = step_at(
        steps
            .iter()
            .rev()
            .find(|t| **t <= RESET_AT + WINDOW)
            .unwrap(),
    );
    assert!(
        reset_line.contains(&format!("at steps {reset_from} to {reset_to}")),
        "{reset_line} vs {reset_from}..{reset_to}"
    );

    // Every imported value lies within the true rate's range over its window
    // (rate() averages the window), widened by what its extrapolation may
    // miss at the window's edges: a scrape interval of the window's length.
    let check = |series: &[[f64; 2]], rate: &dyn Fn(f64) -> f64, name: &str| {
        for [t, v] in series {
            // t_seconds counts from --start, which is t0 + 7.
            let t = t + 7.0;
            let truth: Vec<f64> = (0..=30)
                .map(|i| rate(t - WINDOW + WINDOW * i as f64 / 30.0))
                .collect();
            let (lo, hi) = truth
                .iter()
                .fold((f64::MAX, 0.0f64), |(a, b), x| (a.min(*x), b.max(*x)));
            let slack = 1.1 * SCRAPE / WINDOW;
            assert!(
                *v >= lo * (1.0 - slack) && *v <= hi * (1.0 + slack),
                "{name} at {t} s: imported {v}, true rate over its window {lo}..{hi}"
            );
        }
    };
    check(&resnet, &resnet_rate, "resnet");
    check(&bert, &bert_rate, "bert");
    // Nothing in the gap, and everything else rate() answered with a full window.
    assert!(resnet
        .iter()
        .all(|[t, _]| !(t + 7.0 > *gap_from && t + 7.0 < *gap_to)));
    // Left out as well: a window's worth of steps after the range's first
    // (the history starts inside it) and either side of the gap.
    let per_window = (WINDOW / STEP) as usize;
    assert_eq!(resnet.len(), steps.len() - missing.len() - 3 * per_window);
    assert_eq!(bert.len(), steps.len() - 1 - per_window);
    assert!(
        stderr.contains(&format!(
            "{} step(s) beside it whose rate() window reaches into it",
            2 * per_window
        )),
        "{stderr}"
    );

    // The fragment in a scenario, simulated: arrivals are the series' integral.
    let scenario = dir.path().join("prod-replay.toml");
    std::fs::write(&scenario, format!("{HEADER}\n{toml_text}")).unwrap();
    let sc = lab_scenario::load(&scenario, &[]).unwrap_or_else(|e| panic!("{e}"));
    let out = lab_sim::simulate(&sc, 1, &mut |_| lab_sim::Control::Continue).results;
    for (name, series) in [("resnet", &resnet), ("bert", &bert)] {
        let integral: f64 = series
            .windows(2)
            .map(|w| (w[0][1] + w[1][1]) / 2.0 * (w[1][0] - w[0][0]))
            .sum();
        let arrived = out
            .services
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .requests
            .arrived as f64;
        // Poisson: 5 sigma.
        assert!(
            (arrived - integral).abs() < 5.0 * integral.sqrt(),
            "{name}: {arrived} arrivals, the series integrates to {integral}"
        );
        // And the series is the recorded traffic, to within the bridged gap.
        let truth = if name == "resnet" {
            resnet_count(HOURS * 3600.0) - resnet_count(60.0)
        } else {
            bert_count(HOURS * 3600.0) - bert_count(60.0)
        };
        assert!(
            (integral - truth).abs() / truth < 0.03,
            "{name}: {integral} vs {truth}"
        );
    }

    // A query Prometheus refuses: its own message, exit 2.
    let out = lab(&[
        "import",
        "--prometheus",
        &url,
        "--query",
        "sum(rate(lab_requests_total[5m])",
        "--start",
        &format!("{start}"),
        "--end",
        &format!("{end}"),
    ]);
    let e = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("bad_data") && e.contains("parse error"), "{e}");
    // No data over the range.
    let out = lab(&[
        "import",
        "--prometheus",
        &url,
        "--query",
        "sum(rate(no_such_metric_total[5m]))",
        "--start",
        &format!("{start}"),
        "--end",
        &format!("{end}"),
    ]);
    let e = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("no data"), "{e}");
    // More than one series without a grouping.
    let out = lab(&[
        "import", "--prometheus", &url, "--query", "label_replace(rate(lab_requests_total[5m]), \"instance\", \"pod-$1:8080\", \"model_name\", \"(.*)\")",
        "--start", &format!("{start}"), "--end", &format!("{end}"),
    ]);
    let e = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(
        e.contains("returned 2 series") && e.contains("sum by (model_name)"),
        "{e}"
    );
    // One series named by --service, written inline on standard output.
    let out = lab(&[
        "import",
        "--prometheus",
        &url,
        "--query",
        "sum(rate(lab_requests_total{model_name=\"bert\"}[5m]))",
        "--start",
        &format!("{}", end - 3600.0),
        "--end",
        &format!("{end}"),
        "--step",
        "5m",
        "--service",
        "ranker",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("service = \"ranker\"") && text.contains("points = ["),
        "{text}"
    );

    runtime.block_on(prom.stop());
}

const HEADER: &str = r#"name = "prod-replay"
[run]
duration = "4h"
warmup = "0s"
[[node_pools]]
name = "l4"
gpu = "L4"
gpus_per_node = 1
cpu = "8"
memory = "32Gi"
price_per_hour = 0.8
min_nodes = 2
max_nodes = 2
[[services]]
name = "resnet"
minReplicas = 1
maxReplicas = 1
resources = { cpu = "1", memory = "1Gi", "nvidia.com/gpu" = 1 }
[[services.latency]]
gpu = "L4"
batch_latency = { "1" = "5ms" }
[[services]]
name = "bert"
minReplicas = 1
maxReplicas = 1
resources = { cpu = "1", memory = "1Gi", "nvidia.com/gpu" = 1 }
[[services.latency]]
gpu = "L4"
batch_latency = { "1" = "5ms" }
"#;
