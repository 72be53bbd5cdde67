//! The report says what each figure counts: goodput with its definition,
//! latency and queue-wait rows with the requests behind them, the activator's
//! buffer by name, long durations in minutes and hours, `none` for figures
//! with nothing behind them, colours only where a figure has a better
//! direction, and long run labels whole.

mod common;

use common::{spike_run, Spike};
use lab_results::{LatencySummary, Level, Results, Warning, WarningKind};

/// The `<tr>` whose first cell starts with `head`.
fn row<'a>(html: &'a str, head: &str) -> &'a str {
    let start = html
        .find(&format!("<th>{head}"))
        .unwrap_or_else(|| panic!("no row `{head}`"));
    let start = html[..start].rfind("<tr").unwrap();
    let end = start + html[start..].find("</tr>").unwrap();
    &html[start..end]
}

/// The `<td>` cells of a row, as (class, text) pairs.
fn cells(row: &str) -> Vec<(&str, &str)> {
    row.split("<td")
        .skip(1)
        .map(|c| {
            let class = c
                .strip_prefix(" class=\"")
                .map_or("", |rest| &rest[..rest.find('"').unwrap()]);
            let text = &c[c.find('>').unwrap() + 1..c.find("</td>").unwrap()];
            (class, text)
        })
        .collect()
}

fn page(r: &Results) -> String {
    lab_reports::render_html(&[r]).unwrap()
}

#[test]
fn goodput_is_defined_where_it_is_shown() {
    let r = spike_run(&Spike::default());
    let html = page(&r);
    let goodput = row(&html, "Goodput (completed within every latency SLO)");
    assert!(goodput.contains("req/s"), "{goodput}");
    assert!(html.contains("completed within every latency SLO</div>"));

    // The load generator judges no SLO per request: goodput is throughput.
    let mut local = r.clone();
    local.level = Level::Local;
    let html = page(&local);
    assert!(html.contains(
        "<th>Goodput (every completed request: no SLO is judged per request at this level)</th>"
    ));
}

#[test]
fn latency_and_queue_wait_rows_say_which_requests_they_count() {
    let mut r = spike_run(&Spike::default());
    r.summary.latency_seconds.count = 48_211;
    r.summary.queue_seconds.count = 49_002;
    let html = page(&r);
    assert!(html.contains("<caption>Latency of requests that arrived after warm-up</caption>"));
    let e2e = row(&html, "End to end: arrival to answer, completed requests");
    assert_eq!(cells(e2e)[0].1, "48,211");
    let queue = row(
        &html,
        "Queue wait: arrival to the start of the batch, requests that reached the model",
    );
    assert_eq!(cells(queue)[0].1, "49,002");
    assert!(html.contains(
        "The rows count different requests. Queue wait is recorded when a request's batch starts"
    ));

    // The load generator cannot see the server's queues: said, not zeros.
    r.level = Level::Local;
    r.summary.queue_seconds = LatencySummary::default();
    let html = page(&r);
    let queue = row(&html, "Queue wait");
    assert_eq!(
        cells(queue)[1].1,
        "not measured: the load generator does not see the server's queues"
    );
    assert!(!queue.contains("0 s"), "{queue}");
}

#[test]
fn cold_starts_name_the_activator_and_read_in_minutes() {
    let mut r = spike_run(&Spike::default());
    r.cold_starts.requests_delayed = 1_149;
    r.cold_starts.duration_seconds.max = 3804.836493;
    r.cold_starts.phases_seconds.node_provisioning = 243.0;
    let html = page(&r);
    assert!(!html.contains("waited for a pod"));
    let buffered = row(
        &html,
        "Requests buffered at the activator while no pod was ready",
    );
    assert_eq!(cells(buffered)[0].1, "1,149");
    assert!(html.contains("1,149 requests buffered at the activator while no pod was ready"));
    let ready = cells(row(&html, "Creation to ready"))[0].1;
    assert!(ready.ends_with(" / 1 h 3 min"), "{ready}");
    let phases = cells(row(&html, "Mean phases"))[0].1;
    assert!(phases.starts_with("4 min 3 s + "), "{phases}");
    assert!(!html.contains("3,805 s") && !html.contains("243 s"));
}

#[test]
fn empty_figures_read_none() {
    let mut r = spike_run(&Spike::default());
    // Nothing completed after warm-up, no pod started during the run.
    r.summary.latency_seconds = LatencySummary::default();
    r.services[1].latency_seconds = LatencySummary::default();
    r.cold_starts.count = 0;
    r.cold_starts.duration_seconds = LatencySummary::default();
    r.cold_starts.phases_seconds = Default::default();
    let html = page(&r);
    assert!(html.contains(
        "<div class=\"k\">p99 latency</div><div class=\"v\">none</div><div class=\"s\">no request completed</div>"
    ));
    assert!(html.contains("<div class=\"k\">Cold starts</div><div class=\"v\">none</div>"));
    let e2e = cells(row(&html, "End to end"));
    assert_eq!(e2e[0].1, "0");
    assert_eq!(e2e[1].1, "none");
    let bert = cells(row(&html, "bert-small"));
    assert_eq!((bert[2].1, bert[3].1), ("none", "none"), "p50 and p99");
    for head in [
        "Pods started during the run",
        "Creation to ready",
        "Mean phases",
    ] {
        assert_eq!(cells(row(&html, head))[0].1, "none", "{head}");
    }
    assert!(!html.contains(">0 s<") && !html.contains("0 s / 0 s"));
}

#[test]
fn no_data_verdicts_and_warnings_are_shown() {
    let mut r = spike_run(&Spike::default());
    // bert-small completed nothing: its p95 SLO has no data to judge.
    r.services[1].latency_seconds = LatencySummary::default();
    r.warnings.push(Warning {
        kind: WarningKind::Unschedulable,
        service: Some("bert-small".into()),
        message: "1 pod(s) of `bert-small` never scheduled: pool `a100` is at max_nodes".into(),
    });
    let html = page(&r);
    let slo = &html[html
        .find("data-slo-verdict=\"no_data\"")
        .expect("a no-data row")..];
    let slo = &slo[..slo.find("</tr>").unwrap()];
    assert!(
        slo.contains("<span class=\"badge fail\">NO DATA</span>"),
        "{slo}"
    );
    assert!(slo.contains("no data"), "{slo}");
    assert!(html.contains("<strong>Warnings</strong><ul><li data-kind=\"unschedulable\">"));
    assert!(html.contains("never scheduled: pool `a100` is at max_nodes"));

    let other = spike_run(&Spike {
        seed: 43,
        ..Spike::default()
    });
    let html = lab_reports::render_html(&[&other, &r]).unwrap();
    assert!(html.contains(
        "<strong>Warnings</strong> <span class=\"run-label\">seed 42</span><ul><li data-kind=\"unschedulable\">"
    ));
    assert!(html.contains("data-slo-verdict=\"no_data\""));
    assert!(html.contains("<span class=\"badge fail\">NO DATA</span>"));
}

#[test]
fn only_figures_with_a_direction_are_coloured() {
    let base = spike_run(&Spike::default());
    let bigger = spike_run(&Spike {
        seed: 43,
        spike_factor: 6.0,
        replicas_per_node: 2,
        ..Spike::default()
    });
    let html = lab_reports::render_html(&[&base, &bigger]).unwrap();
    let table = &html[html.find("<section id=\"differences\">").unwrap()..];
    let delta = |head: &str| {
        let cs = cells(row(table, &format!("{head}</th>")));
        let d = *cs.last().unwrap();
        assert_ne!(d.1, "same", "`{head}` differs between the runs");
        d.0
    };
    for neutral in [
        "Arrived requests",
        "Cold starts",
        "Peak ready replicas",
        "Mean ready replicas",
        "Mean GPU busy",
    ] {
        assert_eq!(delta(neutral), "num delta", "{neutral} is not coloured");
    }
    for directed in [
        "p99 latency",
        "Error rate",
        "Throughput",
        "Monthly cost",
        "GPU-hours",
    ] {
        let class = delta(directed);
        assert!(
            class == "num delta better" || class == "num delta worse",
            "{directed}: {class}"
        );
    }
    assert_eq!(delta("p99 latency"), "num delta worse");
    assert_eq!(delta("Monthly cost"), "num delta worse");
}

#[test]
fn long_override_labels_are_whole_and_wrap() {
    let (two, one) = common::mig_layout_runs();
    let labels = lab_reports::auto_labels(&[&two, &one]);
    assert_eq!(
        labels,
        [
            "node_pools.a100.sharing={ strategy = \"mig\", layout = [\"3g.20gb\", \"3g.20gb\"] }",
            "node_pools.a100.sharing={ strategy = \"mig\", layout = [\"7g.40gb\"] }",
        ]
    );
    let html = lab_reports::render_html(&[&two, &one]).unwrap();
    let shown = lab_reports_esc(&labels[0]);
    // Every table header and the runs table hold the label whole, in the
    // element the stylesheet lets wrap.
    assert!(html.contains(&format!("<th class=\"num run-label\">{shown}</th>")));
    assert!(html.contains(&format!(
        "<th class=\"num run-label\">Δ {}</th>",
        lab_reports_esc(&labels[1])
    )));
    assert!(html.contains(&format!(
        "</svg><span class=\"run-label\">{shown}</span></th>"
    )));
    assert!(html.contains("th.run-label { white-space: normal; overflow-wrap: anywhere;"));
    assert!(html
        .contains("span.run-label { display: inline-block; max-width: 22em; white-space: normal;"));
    // The chart legends carry it whole too, in items that may wrap.
    assert!(html.contains(&format!("{shown}: completions</li>")));
    assert!(html.contains(".legend li { display: flex;"));
    assert!(!html.contains('…'));
}

fn lab_reports_esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
