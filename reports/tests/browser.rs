//! Opens reports in headless Chromium with the network off: the page must
//! render without errors, with its charts, and not blank.
//!
//! Needs `chromium` (scripts/install-test-deps.sh). With LAB_DOCS_SCREENSHOTS=1
//! it also writes the screenshots the README shows (docs/report-*.png).

mod common;

use common::{spike_run, Spike};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(dir) = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .find(|d| d.join(name).is_file())
        {
            return dir.join(name);
        }
    }
    panic!(
        "headless Chromium not found: install it with scripts/install-test-deps.sh or set CHROMIUM"
    );
}

#[test]
fn the_network_check_catches_a_page_that_fetches() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("fetches.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><img src=\"http://example.invalid/x.png\"><p>x</p>",
    )
    .unwrap();
    let netlog = dir.path().join("netlog.json");
    let out = headless(
        &page,
        &[
            "--dump-dom".into(),
            format!("--log-net-log={}", netlog.display()),
        ],
    );
    assert!(out.status.success());
    assert_eq!(page_requests(&netlog), ["http://example.invalid/x.png"]);
}

/// Runs Chromium headless on `page` with everything that could reach the
/// network switched off; any name lookup fails, so a stray fetch shows up as
/// an error in the log.
fn headless(page: &Path, extra: &[String]) -> Output {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    // Read pipes on threads so a large DOM cannot block the child.
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut so, &mut v).ok();
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut se, &mut v).ok();
        v
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Output {
        status,
        stdout: t1.join().unwrap(),
        stderr: t2.join().unwrap(),
    }
}

/// Log lines that mean the page itself went wrong (Chromium also logs about
/// D-Bus and the like in containers; those are not the page's business).
fn page_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.contains("net::ERR")
                || l.contains("CONSOLE")
                || l.contains("Uncaught")
                || l.contains("Failed to load resource")
                || l.contains("Refused to")
        })
        .collect()
}

/// Addresses the page itself asked for, from Chromium's net log (the browser's
/// own background requests have no `file://` page behind them).
fn page_requests(netlog: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(netlog).expect("net log written");
    let log: serde_json::Value = serde_json::from_str(&text).expect("net log is JSON");
    let mut urls: Vec<String> = log["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let p = &e["params"];
            let from_page = p["network_isolation_key"].as_str()?.contains("file://");
            let url = p["url"].as_str()?;
            (from_page && !url.starts_with("file:") && !url.starts_with("data:"))
                .then(|| url.to_string())
        })
        .collect();
    urls.dedup();
    urls
}

fn png_stats(png: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/png_stats.py");
    let out = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .arg(script)
        .arg(png)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check_page(html: &str, name: &str, charts: usize, verdict: &str, docs_height: u32) {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join(format!("{name}.html"));
    std::fs::write(&page, html).unwrap();

    let netlog = dir.path().join("netlog.json");
    let dom = headless(
        &page,
        &[
            "--dump-dom".into(),
            format!("--log-net-log={}", netlog.display()),
        ],
    );
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(dom.status.success(), "chromium failed: {log}");
    assert_eq!(
        page_errors(&log),
        Vec::<&str>::new(),
        "errors while loading {name}"
    );
    assert_eq!(
        page_requests(&netlog),
        Vec::<String>::new(),
        "{name} reached for the network"
    );
    assert_eq!(
        dom_text.matches("<svg class=\"chart\"").count(),
        charts,
        "charts in the rendered DOM of {name}"
    );
    assert!(dom_text.contains(&format!("data-verdict=\"{verdict}\"")));
    assert!(
        dom_text.matches("<polyline").count() >= charts,
        "lines drawn"
    );

    let png = dir.path().join(format!("{name}.png"));
    let shot = headless(
        &page,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1280,2400".into(),
        ],
    );
    let log = String::from_utf8_lossy(&shot.stderr);
    assert!(
        shot.status.success() && png.is_file(),
        "no screenshot: {log}"
    );
    assert_eq!(
        page_errors(&log),
        Vec::<&str>::new(),
        "errors while rendering {name}"
    );
    let stats = png_stats(&png);
    assert_eq!(stats["width"], 1280);
    assert!(
        stats["colors"].as_u64().unwrap() > 100,
        "{name} looks blank: {stats}"
    );
    assert!(
        stats["non_white"].as_f64().unwrap() > 0.2,
        "{name} looks blank: {stats}"
    );

    if std::env::var_os("LAB_DOCS_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        let target = docs.join(format!("report-{name}.png"));
        let shot = headless(
            &page,
            &[
                format!("--screenshot={}", target.display()),
                format!("--window-size=1280,{docs_height}"),
            ],
        );
        assert!(
            shot.status.success(),
            "{}",
            String::from_utf8_lossy(&shot.stderr)
        );
    }
}

#[test]
fn spike_report_renders_in_chromium() {
    let r = spike_run(&Spike::default());
    let html = lab_reports::render_html(&[&r]).unwrap();
    // traffic, latency, two services, queue, nodes, gpu, cost
    check_page(&html, "spike", 8, "fail", 3300);
}

#[test]
fn comparison_renders_in_chromium() {
    let sliced = spike_run(&Spike {
        name: "resnet-gpu-sharing".into(),
        overrides: vec!["gpu.sharing=time-slicing".into()],
        replicas_per_node: 7,
        replica_rps: 48.0,
        ..Spike::default()
    });
    let mig = spike_run(&Spike {
        name: "resnet-gpu-sharing".into(),
        overrides: vec!["gpu.sharing=mig-3g.40gb".into()],
        replicas_per_node: 2,
        replica_rps: 70.0,
        cold_start_seconds: 75.0,
        ..Spike::default()
    });
    let html =
        lab_reports::render_html_labeled(&[("time-slicing", &sliced), ("MIG 3g.40gb", &mig)])
            .unwrap();
    check_page(&html, "compare", 8, "fail", 3000);
}

#[test]
fn long_override_labels_wrap_in_chromium() {
    let (two, one) = common::mig_layout_runs();
    let html = lab_reports::render_html(&[&two, &one]).unwrap();
    // A copy of the page measures its own layout (the report has no script).
    let probe = "<script>\
        const box = e => e.getBoundingClientRect();\
        const lines = e => box(e).height / parseFloat(getComputedStyle(e).lineHeight);\
        const labels = [...document.querySelectorAll('th.run-label, span.run-label')];\
        const items = [...document.querySelectorAll('.legend li')];\
        document.body.setAttribute('data-measure', JSON.stringify({\
          page_overflow: document.documentElement.scrollWidth - innerWidth,\
          labels: labels.length,\
          one_line_labels: labels.filter(e => lines(e) < 1.5).map(e => e.textContent),\
          cut_labels: labels.filter(e => e.scrollWidth > e.clientWidth + 1).length,\
          long_items: items.filter(e => e.textContent.length > 60).length,\
          overflowing_items: items.filter(e => box(e).right > box(e.parentElement).right + 1\
            || e.scrollWidth > e.clientWidth + 1).map(e => e.textContent),\
        }));</script></body>";
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("labels.html");
    std::fs::write(&page, html.replace("</body>", probe)).unwrap();
    let out = headless(
        &page,
        &["--dump-dom".into(), "--window-size=1280,2400".into()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dom = String::from_utf8_lossy(&out.stdout);
    let attr = dom
        .split("data-measure=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the probe ran");
    let m: serde_json::Value = serde_json::from_str(&attr.replace("&quot;", "\"")).unwrap();
    assert!(m["page_overflow"].as_f64().unwrap() <= 0.0, "{m}");
    // The runs table (2), the SLO matrix (2) and the key figures (3).
    assert!(m["labels"].as_u64().unwrap() >= 7, "{m}");
    assert_eq!(m["one_line_labels"], serde_json::json!([]), "{m}");
    assert_eq!(m["cut_labels"], 0, "{m}");
    assert!(m["long_items"].as_u64().unwrap() >= 8, "{m}");
    assert_eq!(m["overflowing_items"], serde_json::json!([]), "{m}");
}
