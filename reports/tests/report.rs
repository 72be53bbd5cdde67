//! The HTML report: structure, verdict, self-containment and size.

mod common;

use common::{spike_run, Spike};
use lab_results::{Level, Results};

/// The `<figure>` of chart `id`, or a panic naming the missing chart.
fn figure<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<figure class=\"chart-card\" id=\"chart-{id}\""))
        .unwrap_or_else(|| panic!("chart `{id}` missing"));
    let end = start + html[start..].find("</figure>").expect("figure closed");
    &html[start..end]
}

/// Points drawn in the polylines of a piece of SVG.
fn polyline_points(svg: &str) -> usize {
    svg.match_indices(" points=\"")
        .filter(|(i, _)| svg[..*i].ends_with_polyline())
        .map(|(i, m)| {
            let rest = &svg[i + m.len()..];
            rest[..rest.find('"').unwrap()].split_whitespace().count()
        })
        .sum()
}

trait EndsWithPolyline {
    fn ends_with_polyline(&self) -> bool;
}
impl EndsWithPolyline for str {
    fn ends_with_polyline(&self) -> bool {
        self.rfind('<')
            .is_some_and(|i| self[i..].starts_with("<polyline"))
    }
}

const CHARTS: [&str; 8] = [
    "traffic",
    "latency",
    "replicas-resnet50",
    "replicas-bert-small",
    "queue",
    "nodes",
    "gpu",
    "cost",
];

fn assert_self_contained(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.contains("<script"), "no script");
    assert!(!html.contains("<link"), "no linked resources");
    assert!(
        !html.contains("@import") && !html.contains("url("),
        "no fetched CSS"
    );
    assert!(!html.contains("<img"), "charts are inline SVG");
    let external = html
        .match_indices("http")
        .filter(|(i, _)| !html[*i..].starts_with("http://www.w3.org/2000/svg"))
        .count();
    assert_eq!(external, 0, "no address other than the SVG namespace");
    assert!(
        !html.contains("NaN") && !html.contains("inf "),
        "no unformatted numbers"
    );
}

#[test]
fn spike_report_has_every_chart_with_data_and_the_right_verdict() {
    let r = spike_run(&Spike::default());
    assert!(!r.passed(), "the default spike misses its p99 SLO");
    let html = lab_reports::render_html(&[&r]).unwrap();
    assert_self_contained(&html);

    for id in CHARTS {
        let fig = figure(&html, id);
        assert!(
            fig.contains("<svg class=\"chart\""),
            "chart `{id}` has an SVG"
        );
        assert!(
            fig.contains("<ul class=\"legend\">"),
            "chart `{id}` has a legend"
        );
        let n = polyline_points(fig);
        assert!(n >= 100, "chart `{id}` draws {n} points");
    }
    // Axes say their units.
    for label in [
        "requests per second (req/s)",
        "latency (",
        "replicas (pods)",
        "GPU busy, batch fill (%)",
        "cost so far (USD)",
        "time since start (min)",
    ] {
        assert!(html.contains(label), "axis label `{label}`");
    }
    // The SLO line is on the latency chart, and scaling and cold starts on the replicas chart.
    assert!(figure(&html, "latency").contains("SLO p99 latency"));
    assert!(figure(&html, "latency").contains("stroke-dasharray"));
    let replicas = figure(&html, "replicas-resnet50");
    assert!(
        replicas.contains("scale-up decision") && replicas.contains("became ready (cold start)")
    );
    assert!(replicas.contains("<polygon") && replicas.contains("<circle"));

    // The verdict banner and every SLO row agree with the file.
    assert!(html.contains("data-verdict=\"fail\""));
    for slo in &r.slo {
        let row = format!(
            "data-passed=\"{}\"><td><span class=\"badge {}\">",
            slo.passed,
            if slo.passed { "pass" } else { "fail" }
        );
        assert!(html.contains(&row), "row for {}", slo.name);
        assert!(html.contains(&slo.name.replace('<', "&lt;").replace('>', "&gt;")));
    }
    let failing = r.slo.iter().filter(|s| !s.passed).count();
    assert!(html.contains(&format!("{failing} of {} SLOs missed", r.slo.len())));

    // Batch fill on the GPU chart (dashed) for the service that batches only.
    let gpu = figure(&html, "gpu");
    assert!(gpu.contains("batch fill: resnet50") && !gpu.contains("batch fill: bert-small"));
    assert!(gpu.contains("stroke-dasharray"));
    // And beside the replicas.
    assert!(html.contains("Rows per batch (fill)"));
    assert!(html.contains("<td class=\"num\">11.5 of 32 (35.9 %)</td>"));
    assert!(html.contains("<td class=\"num\">no batching</td>"));

    // Cost: projection and the breakdown with idle apart.
    assert!(html.contains("per 730-hour month"));
    assert!(html.contains("id=\"cost-by-pool\"") && html.contains("gpu-a100"));
    assert!(html.contains("idle (not requested by any pod)"));
}

#[test]
fn a_run_within_its_slos_reads_as_passed() {
    let r = spike_run(&Spike {
        spike_factor: 1.0,
        p99_slo_seconds: 2.0,
        ..Spike::default()
    });
    assert!(r.passed(), "{:?}", r.slo);
    let html = lab_reports::render_html(&[&r]).unwrap();
    assert!(html.contains("data-verdict=\"pass\""));
    assert!(html.contains("all 4 SLOs met"));
    assert!(!html.contains("badge fail"));
}

#[test]
fn a_hand_edited_verdict_does_not_survive() {
    let mut r = spike_run(&Spike::default());
    for s in &mut r.slo {
        s.passed = true;
    }
    let html = lab_reports::render_html(&[&r]).unwrap();
    assert!(html.contains("data-verdict=\"fail\""));
    assert!(html.contains("re-judged from its own figures it fails"));
}

#[test]
fn a_simulated_day_stays_light_and_keeps_its_spike() {
    let r = spike_run(&Spike {
        duration_seconds: 86_400.0,
        ..Spike::default()
    });
    assert_eq!(r.timeseries.len(), 8640);
    let html = lab_reports::render_html(&[&r]).unwrap();
    eprintln!(
        "report of a simulated day at 10 s: {} KB",
        html.len() / 1024
    );
    assert!(
        html.len() < 600_000,
        "report of a day is {} bytes",
        html.len()
    );
    assert!(html.contains("time since start (h)"));
    // Thinning keeps at most two points per pixel bucket of each line.
    let traffic = figure(&html, "traffic");
    let longest = traffic
        .split("<polyline")
        .skip(1)
        .map(|p| polyline_points(&format!("<polyline{}", &p[..p.find("/>").unwrap()])))
        .max()
        .unwrap();
    assert!(
        (500..=2 * 600).contains(&longest),
        "longest line has {longest} points"
    );
    // The spike still reaches the top of the plot: some point of the arrivals
    // line sits near the top edge (SVG y grows downwards).
    let top_y = traffic
        .split(" points=\"")
        .skip(1)
        .flat_map(|s| {
            s[..s.find('"').unwrap()]
                .split_whitespace()
                .map(|p| p.split(',').nth(1).unwrap().parse::<i32>().unwrap())
                .collect::<Vec<_>>()
        })
        .min()
        .unwrap();
    assert!(top_y < 60, "highest point at y={top_y}");

    // Three runs of a day overlaid stay under a few MB too.
    let b = spike_run(&Spike {
        duration_seconds: 86_400.0,
        level: Level::Local,
        seed: 7,
        ..Spike::default()
    });
    let c = spike_run(&Spike {
        duration_seconds: 86_400.0,
        level: Level::Cluster,
        seed: 9,
        ..Spike::default()
    });
    let page = lab_reports::render_html(&[&r, &b, &c]).unwrap();
    eprintln!("comparison of three such days: {} KB", page.len() / 1024);
    assert!(
        page.len() < 1_500_000,
        "comparison of three days is {} bytes",
        page.len()
    );
}

#[test]
fn comparison_overlays_runs_and_tabulates_differences() {
    let sim = spike_run(&Spike::default());
    let local = spike_run(&Spike {
        level: Level::Local,
        seed: 43,
        replica_rps: 55.0,
        ..Spike::default()
    });
    let cluster = spike_run(&Spike {
        level: Level::Cluster,
        seed: 44,
        replica_rps: 50.0,
        ..Spike::default()
    });
    let runs: [&Results; 3] = [&sim, &local, &cluster];
    assert_eq!(
        lab_reports::auto_labels(&runs),
        ["sim · seed 42", "local · seed 43", "cluster · seed 44"]
    );
    let html = lab_reports::render_html(&runs).unwrap();
    assert_self_contained(&html);
    for id in CHARTS {
        let fig = figure(&html, id);
        // One colour per run in every overlaid chart.
        for color in ["#0072B0", "#D55E00", "#009E70"] {
            assert!(
                fig.contains(&format!("stroke=\"{color}\"")),
                "chart `{id}` lacks run colour {color}"
            );
        }
    }
    assert!(html.contains("id=\"differences\""));
    assert!(html.contains("Δ local · seed 43") && html.contains("Δ cluster · seed 44"));
    // A slower replica means more replicas: the p99 row shows a worse delta.
    let p99_row = &html[html.find("<tr><th>p99 latency</th>").unwrap()..];
    let p99_row = &p99_row[..p99_row.find("</tr>").unwrap()];
    assert!(
        p99_row.contains("delta worse") || p99_row.contains("delta better"),
        "{p99_row}"
    );
    assert_eq!(
        html.matches("data-passed=\"false\"").count(),
        3,
        "each run misses an SLO"
    );
}

#[test]
fn labels_can_be_given_and_must_match() {
    let a = spike_run(&Spike::default());
    let html = lab_reports::render_html_labeled(&[("time-slicing", &a), ("MIG <3g>", &a)]).unwrap();
    assert!(html.contains("Δ MIG &lt;3g&gt;"));
    assert!(matches!(
        lab_reports::render_html(&[]),
        Err(lab_reports::ReportError::NoRuns)
    ));
    assert_eq!(lab_reports::auto_labels(&[&a, &a]), ["run 1", "run 2"]);
}

#[test]
fn odd_runs_render_without_panicking() {
    // Interrupted early, no time series, no SLOs, no services.
    let mut r = spike_run(&Spike {
        duration_seconds: 600.0,
        ..Spike::default()
    });
    r.complete = false;
    r.run.end_seconds = 0.0;
    r.timeseries.clear();
    r.scaling_events.clear();
    r.slo.clear();
    r.services.clear();
    r.cost = Default::default();
    let html = lab_reports::render_html(&[&r]).unwrap();
    assert!(html.contains("id=\"incomplete\""));
    assert!(html.contains("No data in this run."));
    assert!(html.contains("no SLOs recorded"));
    assert!(!html.contains("NaN"));

    // NaN and infinite values in the series leave gaps, not broken SVG.
    let mut r = spike_run(&Spike {
        duration_seconds: 600.0,
        ..Spike::default()
    });
    r.timeseries[10].arrival_rps = f64::NAN;
    r.timeseries[11].latency_seconds.p99 = f64::INFINITY;
    let html = lab_reports::render_html(&[&r]).unwrap();
    assert!(!html.contains("NaN"));
}

#[test]
fn write_report_writes_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    let r = spike_run(&Spike {
        duration_seconds: 600.0,
        ..Spike::default()
    });
    lab_reports::write_report(&path, &r).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("resnet-spike"));
    let err =
        lab_reports::write_report(&dir.path().join("no/such/dir/report.html"), &r).unwrap_err();
    assert!(err.to_string().contains("cannot write the report"), "{err}");
}
