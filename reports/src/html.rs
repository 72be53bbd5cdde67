//! The report page: one self-contained HTML file (inline CSS and SVG, no
//! script, no web fonts), readable on a phone and printable.

use crate::charts::{self, Chart, Color, Dash, Line, Marker, MarkerKind, Threshold, TimeAxis};
use crate::format;
use crate::verdict::RunVerdict;
use crate::ReportError;
use lab_results::Results;
use std::collections::BTreeSet;
use std::fmt::Write as _;

const CSS: &str = include_str!("report.css");

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"lab {}\">\n<title>{}</title>\n<style>\n{CSS}</style>\n\
         </head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(title)
    )
}

// ---------------------------------------------------------------- one run

pub fn single(r: &Results) -> Result<String, ReportError> {
    let v = RunVerdict::judge("results.json", r);
    let mut b = String::new();
    let _ = write!(
        b,
        "<header>\n<p class=\"kicker\">lab capacity report</p>\n<h1>{}</h1>\n<p class=\"meta\">{}</p>\n</header>\n",
        esc(&r.scenario.name),
        esc(&run_meta(r))
    );
    incomplete_note(&mut b, r);
    verdict_banner(&mut b, &v);
    warnings(&mut b, None, r);
    summary(&mut b, r);
    let axis = TimeAxis {
        end_seconds: r.run.end_seconds.max(r.run.interval_seconds),
        warmup_seconds: r.run.warmup_seconds,
    };
    b.push_str("<section id=\"charts\">\n<h2>Over time</h2>\n<div class=\"charts\">\n");
    for chart in single_charts(r) {
        figure(&mut b, &chart, axis)?;
    }
    b.push_str("</div>\n</section>\n");
    cost_breakdown(&mut b, r);
    footer(&mut b, &[r]);
    Ok(page(&format!("{}: lab report", r.scenario.name), &b))
}

fn run_meta(r: &Results) -> String {
    let mut parts = vec![
        format!("level {}", r.level.as_str()),
        format!("seed {}", r.seed),
        format!("{} run", format::duration(r.run.end_seconds)),
        format!("{} intervals", format::duration(r.run.interval_seconds)),
    ];
    if r.run.warmup_seconds > 0.0 {
        parts.push(format!(
            "{} warm-up",
            format::duration(r.run.warmup_seconds)
        ));
    }
    if !r.scenario.file.is_empty() {
        parts.push(r.scenario.file.clone());
    }
    if !r.scenario.overrides.is_empty() {
        parts.push(format!("--set {}", r.scenario.overrides.join(" ")));
    }
    if !r.wall_clock.started_at.is_empty() {
        parts.push(format!("started {}", r.wall_clock.started_at));
    }
    parts.join(" · ")
}

fn incomplete_note(b: &mut String, r: &Results) {
    if !r.complete {
        let _ = writeln!(
            b,
            "<p class=\"warn\" id=\"incomplete\"><strong>Incomplete run.</strong> It stopped at {} of {}; \
             every figure covers only that part.</p>",
            format::duration(r.run.end_seconds),
            format::duration(r.run.duration_seconds)
        );
    }
}

fn verdict_banner(b: &mut String, v: &RunVerdict) {
    let class = if v.passed { "pass" } else { "fail" };
    let (word, rest) = v
        .headline()
        .split_once(": ")
        .map_or((String::new(), v.headline()), |(w, r)| {
            (w.to_string(), r.to_string())
        });
    let _ = writeln!(
        b,
        "<section id=\"verdict\" class=\"verdict {class}\" data-verdict=\"{class}\">\n\
         <div class=\"verdict-head\"><span class=\"badge {class}\">{word}</span><span>{}</span></div>",
        esc(&rest)
    );
    if !v.slos.is_empty() {
        b.push_str(
            "<div class=\"table-wrap\"><table class=\"slos\">\n<thead><tr><th>Result</th><th>SLO</th>\
             <th class=\"opt\">Scope</th><th class=\"num\">Observed</th><th class=\"num\">Threshold</th>\
             <th class=\"num opt\">Margin</th></tr></thead>\n<tbody>\n",
        );
        for s in &v.slos {
            let c = if s.slo.passed { "pass" } else { "fail" };
            let _ = writeln!(
                b,
                "<tr class=\"slo {c}\" data-slo-verdict=\"{}\" data-passed=\"{}\"><td><span class=\"badge {c}\">{}</span></td>\
                 <td class=\"name\">{}{}</td><td class=\"opt\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num opt\">{}</td></tr>",
                verdict_key(&s.slo),
                s.slo.passed,
                s.label(),
                esc(&s.slo.name),
                s.slo.reason.as_deref().map_or(String::new(), |why| format!(
                    "<span class=\"why\">{}</span>",
                    esc(why)
                )),
                esc(s.scope()),
                esc(&s.observed_text()),
                esc(&s.threshold_text()),
                esc(&margin(s.slo.observed.unwrap_or(f64::NAN), s.slo.threshold, s.slo.bound)),
            );
        }
        b.push_str("</tbody></table></div>\n");
    }
    for s in v.changed() {
        let _ = writeln!(
            b,
            "<p class=\"note\">The file recorded <em>{}</em> as {}; re-judged from its own figures it {}.</p>",
            esc(&s.slo.name),
            if s.recorded_passed { "passed" } else { "failed" },
            if s.slo.passed { "passes" } else { "fails" }
        );
    }
    b.push_str("</section>\n");
}

/// A run's label inside running text or a row header: long ones (a whole
/// `--set` MIG layout) wrap within a bounded width. Column headers carry the
/// `run-label` class themselves.
fn run_label(l: &str) -> String {
    format!("<span class=\"run-label\">{}</span>", esc(l))
}

/// `pass`, `fail` or `no_data`, as results.json spells the verdict.
fn verdict_key(s: &lab_results::SloResult) -> &'static str {
    match s.verdict() {
        lab_results::SloVerdict::Pass => "pass",
        lab_results::SloVerdict::Fail => "fail",
        lab_results::SloVerdict::NoData => "no_data",
    }
}

/// What makes a run's answer suspect, as recorded in its `warnings`.
fn warnings(b: &mut String, label: Option<&str>, r: &Results) {
    if r.warnings.is_empty() {
        return;
    }
    b.push_str("<div class=\"warn warnings\"><strong>Warnings</strong>");
    if let Some(l) = label {
        let _ = write!(b, " {}", run_label(l));
    }
    b.push_str("<ul>");
    for w in &r.warnings {
        let _ = write!(
            b,
            "<li data-kind=\"{0}\"><code>{0}</code> {1}</li>",
            w.kind.as_str(),
            esc(&w.message)
        );
    }
    b.push_str("</ul></div>\n");
}

/// Room left under a limit, or how far past it: `18 % headroom`, `25 % over`.
fn margin(observed: f64, threshold: f64, bound: lab_results::SloThreshold) -> String {
    if !observed.is_finite() || !threshold.is_finite() || threshold == 0.0 {
        return String::new();
    }
    let rel = match bound {
        lab_results::SloThreshold::Max => (threshold - observed) / threshold,
        lab_results::SloThreshold::Min => (observed - threshold) / threshold,
    };
    if rel >= 0.0 {
        format!("{} headroom", format::percent(rel))
    } else if rel < -1.0 {
        format!("{}× the limit", format::sig3(observed / threshold))
    } else {
        format!(
            "{} {}",
            format::percent(-rel),
            match bound {
                lab_results::SloThreshold::Max => "over",
                lab_results::SloThreshold::Min => "short",
            }
        )
    }
}

fn card(b: &mut String, key: &str, value: &str, sub: &str) {
    let _ = write!(
        b,
        "<div class=\"card\"><div class=\"k\">{}</div><div class=\"v\">{}</div><div class=\"s\">{}</div></div>",
        esc(key),
        esc(value),
        esc(sub)
    );
}

fn summary(b: &mut String, r: &Results) {
    let s = &r.summary;
    b.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"cards\">");
    card(
        b,
        "Throughput",
        &format::rps(s.throughput_rps),
        &format!(
            "goodput {}: {}",
            format::rps(s.goodput_rps),
            format::goodput_meaning(r)
        ),
    );
    if s.latency_seconds.count == 0 {
        card(b, "p99 latency", "none", "no request completed");
    } else {
        card(
            b,
            "p99 latency",
            &format::seconds(s.latency_seconds.p99),
            &format!("p50 {}", format::seconds(s.latency_seconds.p50)),
        );
    }
    card(
        b,
        "Error rate",
        &format::percent(s.error_rate),
        &format!("{} failed", format::count(s.requests.failed)),
    );
    let peak: u32 = r.services.iter().map(|x| x.replicas.max_ready).sum();
    let mean: f64 = r.services.iter().map(|x| x.replicas.mean_ready).sum();
    card(
        b,
        "Peak replicas",
        &peak.to_string(),
        &format!("mean {} ready", format::sig3(mean)),
    );
    card(
        b,
        "Cold starts",
        &count_or_none(r.cold_starts.count),
        &format!(
            "{} requests {}",
            format::count(r.cold_starts.requests_delayed),
            format::BUFFERED_AT_ACTIVATOR
        ),
    );
    card(
        b,
        "Monthly cost",
        &format::usd(r.cost.monthly_usd),
        &format!("{} this run", format::usd(r.cost.total_usd)),
    );
    b.push_str("</div>\n<div class=\"tables\">\n");

    // Requests and latency.
    let q = &s.requests;
    let mut reasons: Vec<String> = q
        .failed_by_reason
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(k, n)| format!("{k} {}", format::count(*n)))
        .collect();
    if reasons.is_empty() {
        reasons.push("none".into());
    }
    let goodput = format!("Goodput ({})", format::goodput_meaning(r));
    b.push_str("<div class=\"table-wrap\"><table><caption>Requests</caption><tbody>\n");
    for (k, v) in [
        ("Arrived", format::count(q.arrived)),
        ("Completed", format::count(q.completed)),
        ("Failed", format::count(q.failed)),
        ("Failed by reason", reasons.join(", ")),
        ("In flight at the end", format::count(q.in_flight)),
        ("Throughput", format::rps(s.throughput_rps)),
        (goodput.as_str(), format::rps(s.goodput_rps)),
        ("Error rate", format::percent(s.error_rate)),
    ] {
        let _ = writeln!(b, "<tr><th>{k}</th><td class=\"num\">{}</td></tr>", esc(&v));
    }
    b.push_str("</tbody></table></div>\n");

    let c = &r.cold_starts;
    let p = &c.phases_seconds;
    b.push_str("<div class=\"table-wrap\"><table><caption>Cold starts</caption><tbody>\n");
    let none = c.count == 0;
    let buffered = format!("Requests {}", format::BUFFERED_AT_ACTIVATOR);
    for (k, v) in [
        ("Pods started during the run", count_or_none(c.count)),
        (
            "Creation to ready, p50 / p95 / max",
            if none {
                "none".into()
            } else {
                format!(
                    "{} / {} / {}",
                    format::seconds(c.duration_seconds.p50),
                    format::seconds(c.duration_seconds.p95),
                    format::seconds(c.duration_seconds.max)
                )
            },
        ),
        (buffered.as_str(), format::count(c.requests_delayed)),
        (
            "Mean phases: node, image, model, ready",
            if none {
                "none".into()
            } else {
                format!(
                    "{} + {} + {} + {}",
                    format::seconds(p.node_provisioning),
                    format::seconds(p.image_pull),
                    format::seconds(p.model_load),
                    format::seconds(p.readiness)
                )
            },
        ),
    ] {
        let _ = writeln!(b, "<tr><th>{k}</th><td class=\"num\">{}</td></tr>", esc(&v));
    }
    b.push_str("</tbody></table></div>\n</div>\n");

    b.push_str(
        "<div class=\"table-wrap wide\"><table id=\"latency\"><caption>Latency of requests that arrived after warm-up</caption>\
         <thead><tr><th></th><th class=\"num\">Requests</th>\
         <th class=\"num\">p50</th><th class=\"num\">p90</th><th class=\"num\">p95</th><th class=\"num\">p99</th>\
         <th class=\"num\">p99.9</th><th class=\"num\">max</th><th class=\"num\">mean</th></tr></thead><tbody>\n",
    );
    let sim = r.level == lab_results::Level::Sim;
    for (key, k, l) in [
        (
            "end-to-end",
            "End to end: arrival to answer, completed requests",
            &s.latency_seconds,
        ),
        (
            "queue-wait",
            "Queue wait: arrival to the start of the batch, requests that reached the model",
            &s.queue_seconds,
        ),
    ] {
        let _ = write!(
            b,
            "<tr data-row=\"{key}\"><th>{k}</th><td class=\"num\">{}</td>",
            format::count(l.count)
        );
        if l.count == 0 {
            let why = if key == "queue-wait" && !sim {
                "not measured: the load generator does not see the server's queues"
            } else {
                "none"
            };
            let _ = write!(b, "<td class=\"num none\" colspan=\"7\">{why}</td>");
        } else {
            for v in [l.p50, l.p90, l.p95, l.p99, l.p999, l.max, l.mean] {
                let _ = write!(b, "<td class=\"num\">{}</td>", esc(&format::seconds(v)));
            }
        }
        b.push_str("</tr>\n");
    }
    b.push_str("</tbody></table>");
    if sim {
        // The simulator records queue wait as a batch starts (engine.rs).
        b.push_str(
            "<p class=\"note table-note\">The rows count different requests. Queue wait is recorded \
             when a request's batch starts: it includes requests that then failed (a timeout during \
             execution, a pod killed) and leaves out those that gave up while queued or were still \
             queued at the end.</p>",
        );
    }
    b.push_str("</div>\n");

    if !r.services.is_empty() {
        // Batch fill only where some service batches (simulator runs).
        let batches = r.services.iter().any(|sv| sv.batching.is_some());
        b.push_str(
            "<div class=\"table-wrap wide\"><table><caption>Services</caption><thead><tr><th>Service</th>\
             <th class=\"num\">Arrived</th><th class=\"num\">Throughput</th><th class=\"num\">p50</th>\
             <th class=\"num\">p99</th><th class=\"num\">Error rate</th><th class=\"num\">Ready replicas min / mean / max</th>\
             <th class=\"num\">Max desired</th>",
        );
        if batches {
            b.push_str("<th class=\"num\">Rows per batch (fill)</th>");
        }
        b.push_str("</tr></thead><tbody>\n");
        for sv in &r.services {
            let _ = write!(
                b,
                "<tr><th>{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{} / {} / {}</td><td class=\"num\">{}</td>",
                esc(&sv.name),
                format::count(sv.requests.arrived),
                esc(&format::rps(sv.throughput_rps)),
                esc(&latency_or_none(&sv.latency_seconds, sv.latency_seconds.p50)),
                esc(&latency_or_none(&sv.latency_seconds, sv.latency_seconds.p99)),
                esc(&format::percent(sv.error_rate)),
                sv.replicas.min_ready,
                format::sig3(sv.replicas.mean_ready),
                sv.replicas.max_ready,
                sv.replicas.max_desired,
            );
            if batches {
                match &sv.batching {
                    Some(bs) if bs.batches == 0 => b.push_str("<td class=\"num\">none</td>"),
                    Some(bs) => {
                        let _ = write!(
                            b,
                            "<td class=\"num\">{} of {} ({})</td>",
                            format::sig3(bs.mean_rows),
                            bs.max_batch_size,
                            esc(&format::percent(bs.fill_fraction))
                        );
                    }
                    None => b.push_str("<td class=\"num\">no batching</td>"),
                }
            }
            b.push_str("</tr>\n");
        }
        b.push_str("</tbody></table></div>\n");
    }
    b.push_str("</section>\n");
}

/// A count, or `none` for zero.
fn count_or_none(n: u64) -> String {
    if n == 0 {
        "none".into()
    } else {
        format::count(n)
    }
}

/// A latency figure of `l`, or `none` when it counts no request (a zero there
/// would read as instant answers).
fn latency_or_none(l: &lab_results::LatencySummary, v: f64) -> String {
    if l.count == 0 {
        "none".into()
    } else {
        format::seconds(v)
    }
}

fn cost_breakdown(b: &mut String, r: &Results) {
    let c = &r.cost;
    let _ = writeln!(
        b,
        "<section id=\"cost\">\n<h2>Cost</h2>\n<p class=\"lead\"><strong>{}</strong> for this run of {}; \
         at the same rate, <strong>{} per month</strong> (730 hours).</p>",
        esc(&format::usd(c.total_usd)),
        esc(&format::duration(r.run.end_seconds)),
        esc(&format::usd(c.monthly_usd))
    );
    b.push_str("<div class=\"tables\">\n");
    b.push_str(
        "<div class=\"table-wrap\"><table id=\"cost-by-pool\"><caption>By node pool</caption><thead><tr><th>Pool</th>\
         <th class=\"num\">Node-hours</th><th class=\"num\">GPU-hours</th><th class=\"num\">This run</th>\
         <th class=\"num\">Per month</th></tr></thead><tbody>\n",
    );
    for p in &c.by_pool {
        let _ = writeln!(
            b,
            "<tr><th>{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&p.name),
            format::sig3(p.node_hours),
            format::sig3(p.gpu_hours),
            esc(&format::usd(p.usd)),
            esc(&format::usd(p.monthly_usd))
        );
    }
    b.push_str("</tbody></table></div>\n");

    // Services and idle share the run's total; bars show each one's share.
    let total = c.total_usd.max(1e-12);
    let monthly_of = |usd: f64| {
        if c.total_usd > 0.0 {
            usd / c.total_usd * c.monthly_usd
        } else {
            0.0
        }
    };
    b.push_str(
        "<div class=\"table-wrap\"><table id=\"cost-by-service\"><caption>By service, idle apart</caption><thead><tr>\
         <th>Service</th><th>Share</th><th class=\"num\">This run</th><th class=\"num\">Per month</th></tr></thead><tbody>\n",
    );
    let mut rows: Vec<(String, f64, f64, bool)> = c
        .by_service
        .iter()
        .map(|s| (s.name.clone(), s.usd, s.monthly_usd, false))
        .collect();
    rows.push((
        "idle (not requested by any pod)".into(),
        c.idle_usd,
        monthly_of(c.idle_usd),
        true,
    ));
    for (i, (name, usd, monthly, idle)) in rows.iter().enumerate() {
        let color = if *idle {
            charts::GREY
        } else {
            charts::PALETTE[i % charts::PALETTE.len()]
        };
        let share = (usd / total).clamp(0.0, 1.0);
        let _ = writeln!(
            b,
            "<tr{}><th>{}</th><td class=\"bar\"><span class=\"bar-fill\" style=\"width:{:.1}%;background:{}\"></span>\
             <span class=\"bar-label\">{}</span></td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            if *idle { " class=\"idle\"" } else { "" },
            esc(name),
            share * 100.0,
            color.hex(),
            esc(&format::percent(share)),
            esc(&format::usd(*usd)),
            esc(&format::usd(*monthly))
        );
    }
    b.push_str("</tbody></table></div>\n</div>\n</section>\n");
}

fn footer(b: &mut String, runs: &[&Results]) {
    let tools: BTreeSet<&str> = runs
        .iter()
        .map(|r| r.wall_clock.tool.as_str())
        .filter(|t| !t.is_empty())
        .collect();
    let _ = writeln!(
        b,
        "<footer>Written by lab {} from results.json{}. Charts show {} intervals; long series are drawn \
         as the lowest and highest value per pixel, so short spikes keep their height.</footer>",
        env!("CARGO_PKG_VERSION"),
        if tools.is_empty() {
            String::new()
        } else {
            format!(" (runs by {})", esc(&tools.into_iter().collect::<Vec<_>>().join(", ")))
        },
        esc(&format::duration(runs[0].run.interval_seconds)),
    );
}

fn figure(b: &mut String, chart: &Chart, axis: TimeAxis) -> Result<(), ReportError> {
    let id = esc(&chart.id);
    let _ = write!(
        b,
        "<figure class=\"chart-card\" id=\"chart-{id}\" data-chart=\"{id}\">\n<figcaption><h3>{}</h3>",
        esc(&chart.title)
    );
    if !chart.note.is_empty() {
        let _ = write!(b, "<p>{}</p>", esc(&chart.note));
    }
    b.push_str("</figcaption>\n");
    if chart.has_data() {
        b.push_str("<div class=\"chart-scroll\">");
        b.push_str(&charts::draw(chart, axis)?);
        b.push_str("</div>\n");
        legend(b, chart);
    } else {
        b.push_str("<p class=\"empty\">No data in this run.</p>\n");
    }
    b.push_str("</figure>\n");
    Ok(())
}

fn swatch(color: Color, dash: Dash, width: u32) -> String {
    format!(
        "<svg width=\"28\" height=\"12\" aria-hidden=\"true\"><line x1=\"1\" y1=\"6\" x2=\"27\" y2=\"6\" \
         stroke=\"{}\" stroke-width=\"{}\"{}/></svg>",
        color.hex(),
        width.max(2) + 1,
        dash.pattern()
            .map(|p| format!(" stroke-dasharray=\"{p}\""))
            .unwrap_or_default()
    )
}

fn legend(b: &mut String, chart: &Chart) {
    b.push_str("<ul class=\"legend\">");
    for l in chart.lines.iter().filter(|l| !l.label.is_empty()) {
        let _ = write!(
            b,
            "<li>{}{}</li>",
            swatch(l.color, l.dash, l.width),
            esc(&l.label)
        );
    }
    if !chart.thresholds.is_empty() {
        let _ = write!(
            b,
            "<li>{}SLO threshold</li>",
            swatch(charts::SLO_RED, Dash::Dashed, 2)
        );
    }
    let kinds: BTreeSet<u8> = chart.markers.iter().map(|m| m.kind as u8).collect();
    for (kind, text) in [
        (MarkerKind::ScaleUp, "scale-up decision"),
        (MarkerKind::ScaleDown, "scale-down decision"),
        (MarkerKind::Ready, "became ready (cold start)"),
    ] {
        if !kinds.contains(&(kind as u8)) {
            continue;
        }
        let color = chart
            .markers
            .iter()
            .find(|m| m.kind == kind)
            .map_or(charts::GREY, |m| m.color)
            .hex();
        let shape = match kind {
            MarkerKind::ScaleUp => format!("<polygon points=\"7,1 13,11 1,11\" fill=\"{color}\"/>"),
            MarkerKind::ScaleDown => format!("<polygon points=\"1,1 13,1 7,11\" fill=\"{color}\"/>"),
            MarkerKind::Ready => format!(
                "<circle cx=\"7\" cy=\"6\" r=\"4\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>"
            ),
        };
        let _ = write!(
            b,
            "<li><svg width=\"14\" height=\"12\" aria-hidden=\"true\">{shape}</svg>{text}</li>"
        );
    }
    b.push_str("</ul>\n");
}

// ---------------------------------------------------------------- charts of one run

fn points(r: &Results, f: impl Fn(&lab_results::TimePoint) -> f64) -> Vec<(f64, f64)> {
    r.timeseries.iter().map(|p| (p.t_seconds, f(p))).collect()
}

/// Latency axis unit: milliseconds unless values reach seconds.
fn latency_scale(max_seconds: f64) -> (f64, &'static str) {
    if max_seconds < 2.0 {
        (1e3, "ms")
    } else {
        (1.0, "s")
    }
}

fn latency_max(r: &Results) -> f64 {
    r.timeseries
        .iter()
        .map(|p| p.latency_seconds.p99.max(p.latency_seconds.p95))
        .chain(latency_thresholds(r).into_iter().map(|t| t.1))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
}

/// Latency SLOs of a run as (label, seconds): those on the whole run, or on
/// its only service, since the chart shows overall latency.
fn latency_thresholds(r: &Results) -> Vec<(String, f64)> {
    let one_service = r.services.len() <= 1;
    r.slo
        .iter()
        .filter(|s| s.metric.is_latency() && s.threshold.is_finite())
        .filter(|s| s.service.is_none() || one_service)
        .map(|s| (format!("SLO {}", s.name), s.threshold))
        .collect()
}

/// A latency value is only meaningful where requests completed.
fn latency_points(
    r: &Results,
    f: impl Fn(&lab_results::IntervalLatency) -> f64,
    scale: f64,
) -> Vec<(f64, f64)> {
    points(r, |p| {
        if p.completion_rps > 0.0 {
            f(&p.latency_seconds) * scale
        } else {
            f64::NAN
        }
    })
}

fn service_names(runs: &[&Results]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in runs {
        for n in r.services.iter().map(|s| &s.name).chain(
            r.timeseries
                .first()
                .into_iter()
                .flat_map(|p| p.services.iter().map(|s| &s.name)),
        ) {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    names
}

fn pool_names(runs: &[&Results]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in runs {
        for p in &r.timeseries {
            for n in p.node_pools.iter().map(|x| &x.name) {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
        }
    }
    names
}

/// Pools that have GPUs: a CPU pool's busy fraction is always zero and would
/// only crowd the GPU chart.
fn gpu_pools(r: &Results) -> Vec<String> {
    pool_names(&[r])
        .into_iter()
        .filter(|name| {
            let billed_gpu = r
                .cost
                .by_pool
                .iter()
                .any(|c| &c.name == name && c.gpu_hours > 0.0);
            let busy = r
                .timeseries
                .iter()
                .any(|p| pool_point(p, name).is_some_and(|x| x.gpu_busy_fraction > 0.0));
            billed_gpu || busy
        })
        .collect()
}

fn service_point<'a>(
    p: &'a lab_results::TimePoint,
    name: &str,
) -> Option<&'a lab_results::ServicePoint> {
    p.services.iter().find(|s| s.name == name)
}

fn pool_point<'a>(p: &'a lab_results::TimePoint, name: &str) -> Option<&'a lab_results::PoolPoint> {
    p.node_pools.iter().find(|s| s.name == name)
}

fn scaling_markers(r: &Results, target: &str, color_up: Color, color_down: Color) -> Vec<Marker> {
    r.scaling_events
        .iter()
        .filter(|e| {
            e.target == target
                || e.target
                    .strip_prefix(target)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
        .filter(|e| e.from != e.to)
        .map(|e| Marker {
            kind: if e.to > e.from {
                MarkerKind::ScaleUp
            } else {
                MarkerKind::ScaleDown
            },
            t: e.t_seconds,
            y: f64::from(e.to),
            color: if e.to > e.from { color_up } else { color_down },
        })
        .collect()
}

fn single_charts(r: &Results) -> Vec<Chart> {
    let mut out = Vec::new();

    let mut c = Chart::new(
        "traffic",
        "Arrivals and completions",
        "requests per second (req/s)",
    );
    c.note = "Offered load against served load; a gap between them is queueing or failure.".into();
    c.lines
        .push(Line::new("arrivals", charts::BLUE, points(r, |p| p.arrival_rps)).filled());
    c.lines.push(Line::new(
        "completions",
        charts::GREEN,
        points(r, |p| p.completion_rps),
    ));
    if r.timeseries.iter().any(|p| p.failure_rps > 0.0) {
        c.lines.push(Line::new(
            "failures",
            charts::VERMILION,
            points(r, |p| p.failure_rps),
        ));
    }
    out.push(c);

    let (scale, unit) = latency_scale(latency_max(r));
    let mut c = Chart::new(
        "latency",
        "Latency percentiles",
        format!("latency ({unit})"),
    );
    c.note = "End-to-end latency of the requests completed in each interval.".into();
    c.lines.push(Line::new(
        "p50",
        charts::GREEN,
        latency_points(r, |l| l.p50, scale),
    ));
    c.lines.push(Line::new(
        "p95",
        charts::ORANGE,
        latency_points(r, |l| l.p95, scale),
    ));
    c.lines.push(
        Line::new(
            "p99",
            charts::VERMILION,
            latency_points(r, |l| l.p99, scale),
        )
        .width(3),
    );
    c.log_y = true;
    c.thresholds = latency_thresholds(r)
        .into_iter()
        .map(|(label, v)| Threshold {
            label,
            value: v * scale,
        })
        .collect();
    out.push(c);

    for name in service_names(&[r]) {
        let mut c = Chart::new(
            format!("replicas-{}", slug(&name)),
            format!("Replicas: {name}"),
            "replicas (pods)",
        );
        c.integer = true;
        c.note = "Ready pods (shaded) against what the autoscaler asked for.".into();
        let ready = points(r, |p| {
            service_point(p, &name).map_or(f64::NAN, |s| f64::from(s.ready_replicas))
        });
        c.lines
            .push(Line::new("ready", charts::BLUE, ready.clone()).filled());
        c.lines.push(
            Line::new(
                "desired",
                charts::BLACK_INK,
                points(r, |p| {
                    service_point(p, &name).map_or(f64::NAN, |s| f64::from(s.desired_replicas))
                }),
            )
            .dash(Dash::Dashed),
        );
        c.markers = scaling_markers(r, &name, charts::GREEN, charts::VERMILION);
        c.markers.extend(
            ready
                .windows(2)
                .filter(|w| w[1].1 > w[0].1)
                .map(|w| Marker {
                    kind: MarkerKind::Ready,
                    t: w[1].0,
                    y: w[1].1,
                    color: charts::BLUE,
                }),
        );
        c.markers.sort_by(|a, b| a.t.total_cmp(&b.t));
        out.push(c);
    }

    let mut c = Chart::new("queue", "Queue depth", "requests waiting");
    c.note = "Requests waiting at the interval's end (activator, pod queues, batchers).".into();
    c.lines.push(
        Line::new(
            "all services",
            charts::BLUE,
            points(r, |p| p.queue_depth as f64),
        )
        .filled(),
    );
    let services = service_names(&[r]);
    if services.len() > 1 {
        for (i, name) in services.iter().enumerate() {
            c.lines.push(
                Line::new(
                    name.clone(),
                    charts::PALETTE[(i + 1) % charts::PALETTE.len()],
                    points(r, |p| {
                        service_point(p, name).map_or(f64::NAN, |s| s.queue_depth as f64)
                    }),
                )
                .width(1),
            );
        }
    }
    out.push(c);

    let mut c = Chart::new("nodes", "Nodes per pool", "nodes");
    c.integer = true;
    c.note = "Nodes that exist (solid) and those ready (dashed); triangles are cluster-autoscaler decisions.".into();
    for (i, pool) in pool_names(&[r]).iter().enumerate() {
        let color = charts::PALETTE[i % charts::PALETTE.len()];
        c.lines.push(Line::new(
            format!("{pool}: nodes"),
            color,
            points(r, |p| {
                pool_point(p, pool).map_or(f64::NAN, |x| f64::from(x.nodes))
            }),
        ));
        c.lines.push(
            Line::new(
                format!("{pool}: ready"),
                color,
                points(r, |p| {
                    pool_point(p, pool).map_or(f64::NAN, |x| f64::from(x.ready_nodes))
                }),
            )
            .dash(Dash::Dashed)
            .width(1),
        );
        c.markers.extend(scaling_markers(
            r,
            &format!("pool:{pool}"),
            charts::GREEN,
            charts::VERMILION,
        ));
    }
    c.markers.sort_by(|a, b| a.t.total_cmp(&b.t));
    out.push(c);

    // Busy says a batch ran; fill says how full it was. Both in percent.
    let batching: Vec<String> = r
        .services
        .iter()
        .filter(|sv| sv.batching.is_some())
        .map(|sv| sv.name.clone())
        .collect();
    let (title, axis) = if batching.is_empty() {
        ("GPU busy", "GPU busy (%)")
    } else {
        ("GPU busy and batch fill", "GPU busy, batch fill (%)")
    };
    let mut c = Chart::new("gpu", title, axis);
    c.y_min_top = 100.0;
    c.note = if batching.is_empty() {
        "Share of time the GPUs that exist were executing batches.".into()
    } else {
        "Share of time the GPUs that exist were executing batches (solid), and \
         mean rows of the batches started over the maximum batch size (dashed): \
         a GPU busy with near-empty batches has room to spare."
            .into()
    };
    c.lines.push(
        Line::new(
            "all GPUs",
            charts::BLACK_INK,
            points(r, |p| p.gpu_busy_fraction * 100.0),
        )
        .width(3),
    );
    let pools = gpu_pools(r);
    if pools.len() > 1 {
        for (i, pool) in pools.iter().enumerate() {
            c.lines.push(
                Line::new(
                    pool.clone(),
                    charts::PALETTE[i % charts::PALETTE.len()],
                    points(r, |p| {
                        pool_point(p, pool).map_or(f64::NAN, |x| x.gpu_busy_fraction * 100.0)
                    }),
                )
                .width(1),
            );
        }
    }
    for (i, name) in batching.iter().enumerate() {
        c.lines.push(
            Line::new(
                format!("batch fill: {name}"),
                charts::PALETTE[(i + 1) % charts::PALETTE.len()],
                points(r, |p| {
                    service_point(p, name)
                        .and_then(|x| x.batch_fill_fraction)
                        .map_or(f64::NAN, |f| f * 100.0)
                }),
            )
            .dash(Dash::Dashed)
            .width(2),
        );
    }
    out.push(c);

    let mut c = Chart::new("cost", "Cumulative cost", "cost so far (USD)");
    c.note = format!(
        "{} over the run; at this rate {} per 730-hour month.",
        format::usd(r.cost.total_usd),
        format::usd(r.cost.monthly_usd)
    );
    c.lines
        .push(Line::new("cost so far", charts::GREEN, points(r, |p| p.cost_usd)).filled());
    out.push(c);
    out
}

fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

// ---------------------------------------------------------------- comparison

pub fn compare(runs: &[(&str, &Results)]) -> Result<String, ReportError> {
    compare_with(runs, &[])
}

/// A table a caller adds to the comparison page, after the key figures (what
/// `lab compare` adds: each figure's error, the bounds it judged).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Section {
    /// The section's anchor (`id`), letters, digits and `-`.
    pub id: String,
    pub title: String,
    /// A sentence above the table; may be empty.
    pub lead: String,
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Which columns hold figures (right-aligned); missing entries are text.
    pub numeric: Vec<bool>,
    /// Lines listed under the table.
    pub notes: Vec<String>,
}

fn section(b: &mut String, s: &Section) {
    let num = |i: usize| s.numeric.get(i).copied().unwrap_or(false);
    let class = |i: usize| if num(i) { " class=\"num\"" } else { "" };
    let _ = writeln!(
        b,
        "<section id=\"{}\">\n<h2>{}</h2>",
        slug(&s.id),
        esc(&s.title)
    );
    if !s.lead.is_empty() {
        let _ = writeln!(b, "<p class=\"lead\">{}</p>", esc(&s.lead));
    }
    b.push_str("<div class=\"table-wrap\"><table class=\"diff\"><thead><tr>");
    for (i, h) in s.header.iter().enumerate() {
        let _ = write!(b, "<th{}>{}</th>", class(i), esc(h));
    }
    b.push_str("</tr></thead><tbody>\n");
    for row in &s.rows {
        b.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let _ = write!(b, "<td{}>{}</td>", class(i), esc(cell));
        }
        b.push_str("</tr>\n");
    }
    b.push_str("</tbody></table></div>\n");
    if !s.notes.is_empty() {
        b.push_str("<ul>\n");
        for n in &s.notes {
            let _ = writeln!(b, "<li>{}</li>", esc(n));
        }
        b.push_str("</ul>\n");
    }
    b.push_str("</section>\n");
}

/// The comparison page with `extra` tables after the key figures.
pub fn compare_with(runs: &[(&str, &Results)], extra: &[Section]) -> Result<String, ReportError> {
    let results: Vec<&Results> = runs.iter().map(|r| r.1).collect();
    let labels: Vec<&str> = runs.iter().map(|r| r.0).collect();
    let verdicts: Vec<RunVerdict> = runs.iter().map(|(l, r)| RunVerdict::judge(l, r)).collect();
    let color = |i: usize| charts::PALETTE[i % charts::PALETTE.len()];
    let mut b = String::new();
    let names: BTreeSet<&str> = results.iter().map(|r| r.scenario.name.as_str()).collect();
    let _ = writeln!(
        b,
        "<header>\n<p class=\"kicker\">lab comparison</p>\n<h1>{} runs: {}</h1>\n</header>",
        runs.len(),
        esc(&names.into_iter().collect::<Vec<_>>().join(", "))
    );

    // Runs, with their colour and verdict.
    let all_pass = verdicts.iter().all(|v| v.passed);
    let class = if all_pass { "pass" } else { "fail" };
    let failing = verdicts.iter().filter(|v| !v.passed).count();
    let _ = writeln!(
        b,
        "<section id=\"verdict\" class=\"verdict {class}\" data-verdict=\"{class}\">\n<div class=\"verdict-head\">\
         <span class=\"badge {class}\">{}</span><span>{}</span></div>",
        if all_pass { "PASS" } else { "FAIL" },
        if all_pass {
            "every run meets its SLOs".to_string()
        } else {
            format!("{failing} of {} runs miss an SLO", runs.len())
        }
    );
    b.push_str(
        "<div class=\"table-wrap\"><table class=\"runs\"><thead><tr><th>Run</th><th>Scenario</th><th>Level</th>\
         <th class=\"num\">Seed</th><th class=\"num\">Length</th><th>Verdict</th></tr></thead><tbody>\n",
    );
    for (i, ((label, r), v)) in runs.iter().zip(&verdicts).enumerate() {
        let c = if v.passed { "pass" } else { "fail" };
        let _ = writeln!(
            b,
            "<tr data-passed=\"{}\"><th>{}{}</th><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}{}</td>\
             <td><span class=\"badge {c}\">{}</span> {}</td></tr>",
            v.passed,
            swatch(color(i), Dash::Solid, 3),
            run_label(label),
            esc(&r.scenario.name),
            r.level.as_str(),
            r.seed,
            esc(&format::duration(r.run.end_seconds)),
            if r.complete { "" } else { " (incomplete)" },
            if v.passed { "PASS" } else { "FAIL" },
            esc(v.headline().split_once(": ").map_or("", |x| x.1)),
        );
    }
    b.push_str("</tbody></table></div>\n");
    slo_matrix(&mut b, &labels, &verdicts);
    for (label, r) in runs {
        warnings(&mut b, Some(label), r);
    }
    b.push_str("</section>\n");

    differences(&mut b, &labels, &results);
    for s in extra {
        section(&mut b, s);
    }

    let axis = TimeAxis {
        end_seconds: results
            .iter()
            .map(|r| r.run.end_seconds.max(r.run.interval_seconds))
            .fold(0.0, f64::max),
        warmup_seconds: if results
            .iter()
            .all(|r| r.run.warmup_seconds == results[0].run.warmup_seconds)
        {
            results[0].run.warmup_seconds
        } else {
            0.0
        },
    };
    b.push_str("<section id=\"charts\">\n<h2>Over time, overlaid</h2>\n<div class=\"charts\">\n");
    for chart in compare_charts(&labels, &results) {
        figure(&mut b, &chart, axis)?;
    }
    b.push_str("</div>\n</section>\n");
    footer(&mut b, &results);
    Ok(page(
        &format!("Comparison of {} runs: lab report", runs.len()),
        &b,
    ))
}

/// SLOs as rows, runs as columns.
fn slo_matrix(b: &mut String, labels: &[&str], verdicts: &[RunVerdict]) {
    let mut keys: Vec<(String, String)> = Vec::new();
    for v in verdicts {
        for s in &v.slos {
            let k = (s.slo.name.clone(), s.scope().to_string());
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    if keys.is_empty() {
        return;
    }
    b.push_str(
        "<div class=\"table-wrap\"><table class=\"slos\"><thead><tr><th>SLO</th><th>Scope</th>",
    );
    for l in labels {
        let _ = write!(b, "<th class=\"num run-label\">{}</th>", esc(l));
    }
    b.push_str("</tr></thead><tbody>\n");
    for (name, scope) in &keys {
        let _ = write!(b, "<tr><th>{}</th><td>{}</td>", esc(name), esc(scope));
        for v in verdicts {
            match v
                .slos
                .iter()
                .find(|s| &s.slo.name == name && s.scope() == scope)
            {
                Some(s) => {
                    let c = if s.slo.passed { "pass" } else { "fail" };
                    let _ = write!(
                        b,
                        "<td class=\"num cell-{c}\" data-slo-verdict=\"{}\" title=\"threshold {}\">{} <span class=\"badge {c}\">{}</span></td>",
                        verdict_key(&s.slo),
                        esc(&s.threshold_text()),
                        esc(&s.observed_text()),
                        s.label()
                    );
                }
                None => b.push_str("<td class=\"num\">not set</td>"),
            }
        }
        b.push_str("</tr>\n");
    }
    b.push_str("</tbody></table></div>\n");
}

/// Which way a figure is better. Only latency, errors, cost (lower) and
/// throughput and goodput (higher) have one; arrivals, replicas, GPU busy and
/// cold starts depend on the load and the design and stay uncoloured.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Better {
    Lower,
    Higher,
    Neither,
}

/// A figure worth comparing between runs; `value` is None where the run has
/// nothing to measure it on (latency with no completed request).
struct KeyFigure {
    name: String,
    unit: &'static str,
    better: Better,
    value: Option<f64>,
}

fn key_figures(r: &Results) -> Vec<KeyFigure> {
    let s = &r.summary;
    let l = &s.latency_seconds;
    let q = &s.queue_seconds;
    let gpu_hours: f64 = r.cost.by_pool.iter().map(|p| p.gpu_hours).sum();
    let gpu_busy = (!r.timeseries.is_empty()).then(|| {
        r.timeseries
            .iter()
            .map(|p| p.gpu_busy_fraction)
            .sum::<f64>()
            / r.timeseries.len() as f64
    });
    let lat = |v: f64| (l.count > 0).then_some(v);
    let f = |name: &str, unit, better, value: Option<f64>| KeyFigure {
        name: name.to_string(),
        unit,
        better,
        value,
    };
    vec![
        f(
            "Arrived requests",
            "count",
            Better::Neither,
            Some(s.requests.arrived as f64),
        ),
        f("Throughput", "rps", Better::Higher, Some(s.throughput_rps)),
        f(
            &format!("Goodput ({})", format::goodput_meaning(r)),
            "rps",
            Better::Higher,
            Some(s.goodput_rps),
        ),
        f("Error rate", "ratio", Better::Lower, Some(s.error_rate)),
        f("p50 latency", "seconds", Better::Lower, lat(l.p50)),
        f("p95 latency", "seconds", Better::Lower, lat(l.p95)),
        f("p99 latency", "seconds", Better::Lower, lat(l.p99)),
        f("p99.9 latency", "seconds", Better::Lower, lat(l.p999)),
        f(
            "p99 queue wait (requests that reached the model)",
            "seconds",
            Better::Lower,
            (q.count > 0).then_some(q.p99),
        ),
        f(
            "Cold starts",
            "count",
            Better::Neither,
            Some(r.cold_starts.count as f64),
        ),
        f(
            &format!("Requests {}", format::BUFFERED_AT_ACTIVATOR),
            "count",
            Better::Lower,
            Some(r.cold_starts.requests_delayed as f64),
        ),
        f(
            "Peak ready replicas",
            "count",
            Better::Neither,
            Some(
                r.services
                    .iter()
                    .map(|x| f64::from(x.replicas.max_ready))
                    .sum(),
            ),
        ),
        f(
            "Mean ready replicas",
            "replicas",
            Better::Neither,
            Some(r.services.iter().map(|x| x.replicas.mean_ready).sum()),
        ),
        f("Mean GPU busy", "ratio", Better::Neither, gpu_busy),
        f("GPU-hours", "gpu_hours", Better::Lower, Some(gpu_hours)),
        f(
            "Cost of the run",
            "usd",
            Better::Lower,
            Some(r.cost.total_usd),
        ),
        f(
            "Monthly cost",
            "usd",
            Better::Lower,
            Some(r.cost.monthly_usd),
        ),
        f("Idle cost", "usd", Better::Lower, Some(r.cost.idle_usd)),
    ]
}

fn differences(b: &mut String, labels: &[&str], results: &[&Results]) {
    let base = labels[0];
    b.push_str("<section id=\"differences\">\n<h2>Key figures</h2>\n");
    let _ = writeln!(
        b,
        "<p class=\"lead\">Differences are against <strong>{}</strong>; green is better, \
         red is worse. Figures with no better direction (arrivals, replicas, GPU busy, cold starts) \
         stay uncoloured.</p>",
        esc(base)
    );
    b.push_str("<div class=\"table-wrap\"><table class=\"diff\"><thead><tr><th>Figure</th>");
    for l in labels {
        let _ = write!(b, "<th class=\"num run-label\">{}</th>", esc(l));
    }
    for l in &labels[1..] {
        let _ = write!(b, "<th class=\"num run-label\">Δ {}</th>", esc(l));
    }
    b.push_str("</tr></thead><tbody>\n");
    let figures: Vec<_> = results.iter().map(|r| key_figures(r)).collect();
    for row in 0..figures[0].len() {
        let KeyFigure {
            name,
            unit,
            better,
            value: base_v,
        } = &figures[0][row];
        // Goodput counts differently at the simulator and the load generator.
        let name = if figures.iter().all(|f| &f[row].name == name) {
            name.as_str()
        } else {
            "Goodput (counted differently by these runs: see each run's report)"
        };
        let _ = write!(b, "<tr><th>{}</th>", esc(name));
        for f in &figures {
            let _ = write!(
                b,
                "<td class=\"num\">{}</td>",
                esc(&figure_value(f[row].value, unit))
            );
        }
        for f in &figures[1..] {
            let v = f[row].value;
            let d = match (*base_v, v) {
                (Some(a), Some(b)) => b - a,
                _ => f64::NAN,
            };
            let class = if !d.is_finite() || d.abs() < 1e-12 || *better == Better::Neither {
                ""
            } else if (d < 0.0) == (*better == Better::Lower) {
                " better"
            } else {
                " worse"
            };
            let _ = write!(
                b,
                "<td class=\"num delta{class}\">{}</td>",
                esc(&match (*base_v, v) {
                    (Some(a), Some(v)) => delta(a, v, unit),
                    _ => "n/a".into(),
                })
            );
        }
        b.push_str("</tr>\n");
    }
    // SLO tallies close the table.
    let _ = write!(b, "<tr><th>SLOs met</th>");
    for r in results {
        let v = RunVerdict::judge("", r);
        let _ = write!(
            b,
            "<td class=\"num\">{} of {}</td>",
            v.slos.len() - v.failures(),
            v.slos.len()
        );
    }
    for _ in &labels[1..] {
        b.push_str("<td></td>");
    }
    b.push_str("</tr>\n</tbody></table></div>\n</section>\n");
}

fn figure_value(v: Option<f64>, unit: &str) -> String {
    match (v, unit) {
        (None, _) => "none".into(),
        (Some(v), "replicas") => format::sig3(v),
        (Some(v), _) => format::value(v, unit),
    }
}

/// `+12.0 ms (+8.1 %)`; ratios differ in percentage points.
fn delta(base: f64, v: f64, unit: &str) -> String {
    let d = v - base;
    if !d.is_finite() {
        return "n/a".into();
    }
    if d == 0.0 {
        return "same".into();
    }
    let sign = if d > 0.0 { "+" } else { "−" };
    let abs = match unit {
        "ratio" => format!("{} pp", format::sig3(d.abs() * 100.0)),
        "replicas" => format::sig3(d.abs()),
        _ => format::value(d.abs(), unit),
    };
    if base != 0.0 && unit != "ratio" {
        format!("{sign}{abs} ({sign}{})", format::percent((d / base).abs()))
    } else {
        format!("{sign}{abs}")
    }
}

fn compare_charts(labels: &[&str], results: &[&Results]) -> Vec<Chart> {
    let color = |i: usize| charts::PALETTE[i % charts::PALETTE.len()];
    // Earlier runs draw wider, so where runs coincide each still shows as a
    // coloured edge around the next.
    let n = results.len() as u32;
    let w = |i: usize| 2 + (n - 1 - i as u32).min(3);
    let mut out = Vec::new();
    let each = |f: &dyn Fn(usize, &str, &Results) -> Vec<Line>| -> Vec<Line> {
        results
            .iter()
            .enumerate()
            .flat_map(|(i, r)| f(i, labels[i], r))
            .collect()
    };

    let mut c = Chart::new(
        "traffic",
        "Arrivals and completions",
        "requests per second (req/s)",
    );
    c.note = "Completions solid, arrivals dashed; one colour per run.".into();
    c.lines = each(&|i, l, r| {
        vec![
            Line::new(
                format!("{l}: completions"),
                color(i),
                points(r, |p| p.completion_rps),
            )
            .width(w(i)),
            Line::new(
                format!("{l}: arrivals"),
                color(i),
                points(r, |p| p.arrival_rps),
            )
            .dash(Dash::Dashed)
            .width(1),
        ]
    });
    out.push(c);

    let max = results.iter().map(|r| latency_max(r)).fold(0.0, f64::max);
    let (scale, unit) = latency_scale(max);
    let mut c = Chart::new(
        "latency",
        "Latency percentiles",
        format!("latency ({unit})"),
    );
    c.note = "p99 solid, p50 dotted; one colour per run.".into();
    c.log_y = true;
    c.lines = each(&|i, l, r| {
        vec![
            Line::new(
                format!("{l}: p99"),
                color(i),
                latency_points(r, |x| x.p99, scale),
            )
            .width(w(i)),
            Line::new(
                format!("{l}: p50"),
                color(i),
                latency_points(r, |x| x.p50, scale),
            )
            .dash(Dash::Dotted)
            .width(2),
        ]
    });
    let mut seen: Vec<f64> = Vec::new();
    for r in results {
        for (label, v) in latency_thresholds(r) {
            if !seen.contains(&v) {
                seen.push(v);
                c.thresholds.push(Threshold {
                    label,
                    value: v * scale,
                });
            }
        }
    }
    out.push(c);

    for name in service_names(results) {
        let mut c = Chart::new(
            format!("replicas-{}", slug(&name)),
            format!("Replicas: {name}"),
            "replicas (pods)",
        );
        c.integer = true;
        c.note = "Ready solid, desired dashed; one colour per run.".into();
        c.lines = each(&|i, l, r| {
            if !r
                .timeseries
                .iter()
                .any(|p| service_point(p, &name).is_some())
            {
                return Vec::new();
            }
            vec![
                Line::new(
                    format!("{l}: ready"),
                    color(i),
                    points(r, |p| {
                        service_point(p, &name).map_or(f64::NAN, |s| f64::from(s.ready_replicas))
                    }),
                )
                .width(w(i)),
                Line::new(
                    format!("{l}: desired"),
                    color(i),
                    points(r, |p| {
                        service_point(p, &name).map_or(f64::NAN, |s| f64::from(s.desired_replicas))
                    }),
                )
                .dash(Dash::Dashed)
                .width(1),
            ]
        });
        out.push(c);
    }

    let mut c = Chart::new("queue", "Queue depth", "requests waiting");
    c.note = "Requests waiting at each interval's end.".into();
    c.lines = each(&|i, l, r| {
        vec![Line::new(l, color(i), points(r, |p| p.queue_depth as f64)).width(w(i))]
    });
    out.push(c);

    let pools = pool_names(results);
    let mut c = Chart::new("nodes", "Nodes per pool", "nodes");
    c.integer = true;
    c.note = if pools.len() > 1 {
        "Nodes that exist; one colour per run, one dash per pool.".into()
    } else {
        "Nodes that exist; one colour per run.".into()
    };
    c.lines = each(&|i, l, r| {
        pools
            .iter()
            .enumerate()
            .filter(|(_, pool)| r.timeseries.iter().any(|p| pool_point(p, pool).is_some()))
            .map(|(k, pool)| {
                let label = if pools.len() > 1 {
                    format!("{l}: {pool}")
                } else {
                    l.to_string()
                };
                Line::new(
                    label,
                    color(i),
                    points(r, |p| {
                        pool_point(p, pool).map_or(f64::NAN, |x| f64::from(x.nodes))
                    }),
                )
                .dash([Dash::Solid, Dash::Dashed, Dash::Dotted][k % 3])
                .width(w(i))
            })
            .collect()
    });
    out.push(c);

    let mut c = Chart::new("gpu", "GPU busy", "GPU busy (%)");
    c.y_min_top = 100.0;
    c.note = "Mean busy share over all GPUs that exist.".into();
    c.lines = each(&|i, l, r| {
        vec![Line::new(l, color(i), points(r, |p| p.gpu_busy_fraction * 100.0)).width(w(i))]
    });
    out.push(c);

    let mut c = Chart::new("cost", "Cumulative cost", "cost so far (USD)");
    c.note = results
        .iter()
        .zip(labels)
        .map(|(r, l)| format!("{l}: {} per month", format::usd(r.cost.monthly_usd)))
        .collect::<Vec<_>>()
        .join("; ");
    c.lines = each(&|i, l, r| vec![Line::new(l, color(i), points(r, |p| p.cost_usd)).width(w(i))]);
    out.push(c);
    out
}
