//! The human summary `lab run` prints.

use lab_reports::format;
use lab_results::{LatencySummary, Results, SloResult};
use std::fmt::Write;
use std::path::Path;

pub fn human(r: &Results, dir: &Path) -> String {
    let mut o = String::new();
    let w = &mut o;
    // The simulator's time is virtual; a real level ran it, perhaps faster.
    let verb = match (r.level, r.run.time_scale) {
        (lab_results::Level::Sim, _) => "simulated".to_string(),
        (_, k) if k != 1.0 => format!("played {k}x faster"),
        _ => "ran".to_string(),
    };
    let _ = writeln!(
        w,
        "{} ({}, seed {}): {} {verb} in {}{}",
        r.scenario.name,
        r.level.as_str(),
        r.seed,
        format::clock(r.run.end_seconds),
        format::clock(r.wall_clock.elapsed_seconds),
        if r.complete {
            ""
        } else {
            "  [INTERRUPTED: partial results]"
        }
    );
    for note in &r.run.notes {
        let _ = writeln!(w, "  note: {note}");
    }
    let q = &r.summary.requests;
    let reasons: Vec<String> = q
        .failed_by_reason
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(
        w,
        "  requests     arrived {}  completed {}  failed {}{}  in flight {}",
        q.arrived,
        q.completed,
        q.failed,
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join(", "))
        },
        q.in_flight
    );
    let _ = writeln!(w, "  latency      {}", lat(&r.summary.latency_seconds));
    // The simulator records queue wait when a request's batch starts: it
    // counts requests that reached the model (some then failed), not the
    // completed ones above, and misses those that gave up in a queue. The
    // load generator cannot see the server's queues (count 0).
    let queue = &r.summary.queue_seconds;
    if queue.count > 0 {
        let _ = writeln!(
            w,
            "  queue wait   p50 {}  p99 {}  max {}  (arrival to batch start: {} requests that reached the model, not those that gave up in a queue)",
            secs(queue.p50),
            secs(queue.p99),
            secs(queue.max),
            format::count(queue.count)
        );
    }
    let _ = writeln!(
        w,
        "  throughput   {:.1} req/s, goodput {:.1} req/s ({}), error rate {:.3}%",
        r.summary.throughput_rps,
        r.summary.goodput_rps,
        format::goodput_meaning(r),
        100.0 * r.summary.error_rate
    );
    for s in &r.services {
        let batches = s.batching.map_or(String::new(), |b| {
            if b.batches == 0 {
                return "; batches none".into();
            }
            format!(
                "; batches {:.1} of {} rows ({:.0}% full)",
                b.mean_rows,
                b.max_batch_size,
                100.0 * b.fill_fraction
            )
        });
        let p99 = if s.latency_seconds.count == 0 {
            "none completed".to_string()
        } else {
            secs(s.latency_seconds.p99)
        };
        let _ = writeln!(
            w,
            "  {:<12} ready replicas {}..{} (mean {:.1}), desired up to {}; p99 {p99}{batches}",
            s.name,
            s.replicas.min_ready,
            s.replicas.max_ready,
            s.replicas.mean_ready,
            s.replicas.max_desired,
        );
    }
    let c = &r.cold_starts;
    let starts = if c.count == 0 {
        "none".to_string()
    } else {
        format!(
            "{} (creation to ready: mean {}, max {})",
            c.count,
            secs(c.duration_seconds.mean),
            secs(c.duration_seconds.max)
        )
    };
    let _ = writeln!(
        w,
        "  cold starts  {starts}; {} {}",
        match c.requests_delayed {
            0 => "no request".to_string(),
            1 => "1 request".to_string(),
            n => format!("{} requests", format::count(n)),
        },
        format::BUFFERED_AT_ACTIVATOR
    );
    let pools: Vec<String> = r
        .cost
        .by_pool
        .iter()
        .map(|p| format!("{} ${:.0}/mo", p.name, p.monthly_usd))
        .collect();
    let _ = writeln!(
        w,
        "  cost         ${:.2} over the run, ${:.0}/month ({}; idle ${:.2})",
        r.cost.total_usd,
        r.cost.monthly_usd,
        pools.join(", "),
        r.cost.idle_usd
    );
    if !r.slo.is_empty() {
        let _ = writeln!(w, "  SLOs");
        let label_w = r
            .slo
            .iter()
            .map(|s| s.verdict().label().len())
            .max()
            .unwrap_or(0);
        for s in &r.slo {
            let _ = writeln!(w, "    {:label_w$} {}", s.verdict().label(), slo_line(s));
            if let Some(why) = &s.reason {
                let _ = writeln!(w, "    {:label_w$} {why}", "");
            }
        }
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(w, "  warnings");
        for warning in &r.warnings {
            let _ = writeln!(w, "    [{}] {}", warning.kind.as_str(), warning.message);
        }
    }
    let _ = writeln!(w, "  results      {}", dir.join("results.json").display());
    if dir.join("report.html").exists() {
        let _ = writeln!(w, "  report       {}", dir.join("report.html").display());
    }
    o
}

pub fn slo_line(s: &SloResult) -> String {
    let observed = s
        .observed
        .map_or_else(|| "no data".to_string(), |v| value(v, &s.unit));
    format!("{:<40} observed {observed}", s.name)
}

fn value(v: f64, unit: &str) -> String {
    match unit {
        "seconds" => secs(v),
        "ratio" => format!("{:.3}%", v * 100.0),
        "usd" => format!("${v:.0}"),
        "rps" => format!("{v:.1} req/s"),
        _ => format!("{v}"),
    }
}

/// Latency of completed requests, with how many; `none` when none completed.
fn lat(l: &LatencySummary) -> String {
    if l.count == 0 {
        return "none: no request completed after warm-up".into();
    }
    format!(
        "mean {}  p50 {}  p90 {}  p95 {}  p99 {}  p99.9 {}  max {}  ({} completed requests that arrived after warm-up)",
        secs(l.mean),
        secs(l.p50),
        secs(l.p90),
        secs(l.p95),
        secs(l.p99),
        secs(l.p999),
        secs(l.max),
        format::count(l.count)
    )
}

/// Seconds with a readable unit; a minute and more as `4m3s`, `1h0m23s`.
pub fn secs(s: f64) -> String {
    if !s.is_finite() {
        "n/a".into()
    } else if s >= 59.5 {
        format::clock(s)
    } else if s >= 1.0 {
        format!("{s:.2}s")
    } else if s >= 1e-3 {
        format!("{:.1}ms", s * 1e3)
    } else {
        format!("{:.0}us", s * 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_reports::fixtures::{spike_run, Spike};
    use lab_results::{Warning, WarningKind};

    fn run() -> Results {
        spike_run(&Spike::default())
    }

    fn text(r: &Results) -> String {
        human(r, Path::new("runs/resnet-spike"))
    }

    fn line<'a>(text: &'a str, start: &str) -> &'a str {
        text.lines()
            .map(str::trim_start)
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{text}"))
    }

    #[test]
    fn long_durations_are_written_as_people_write_them() {
        let mut r = run();
        r.run.end_seconds = 3804.836493;
        r.wall_clock.elapsed_seconds = 95.2;
        r.cold_starts.duration_seconds.mean = 313.4;
        r.cold_starts.duration_seconds.max = 3623.0;
        let t = text(&r);
        assert!(
            t.starts_with("resnet-spike (sim, seed 42): 1h3m25s simulated in 1m35s\n"),
            "{t}"
        );
        assert!(!t.contains("3804"), "{t}");
        assert!(
            line(&t, "cold starts").contains("(creation to ready: mean 5m13s, max 1h0m23s)"),
            "{t}"
        );
    }

    #[test]
    fn goodput_says_what_it_counts() {
        let r = run();
        let t = text(&r);
        let want = format!(
            "goodput {:.1} req/s (completed within every latency SLO)",
            r.summary.goodput_rps
        );
        assert!(line(&t, "throughput").contains(&want), "{t}");

        let mut r = run();
        r.slo.retain(|s| !s.metric.is_latency());
        assert!(line(&text(&r), "throughput")
            .contains("(every completed request: no percentile or max latency SLO to meet)"));

        let mut r = run();
        r.level = lab_results::Level::Local;
        assert!(line(&text(&r), "throughput")
            .contains("(every completed request: no SLO is judged per request at this level)"));
    }

    #[test]
    fn latency_and_queue_wait_say_which_requests_they_count() {
        let mut r = run();
        r.summary.latency_seconds.count = 48_211;
        r.summary.queue_seconds.count = 49_002;
        let t = text(&r);
        assert!(
            line(&t, "latency").ends_with("(48,211 completed requests that arrived after warm-up)"),
            "{t}"
        );
        assert!(
            line(&t, "queue wait").ends_with(
                "(arrival to batch start: 49,002 requests that reached the model, \
                 not those that gave up in a queue)"
            ),
            "{t}"
        );
        // The load generator sees no server queue: no queue line rather than zeros.
        r.summary.queue_seconds = LatencySummary::default();
        assert!(!text(&r).contains("queue wait"));
    }

    #[test]
    fn cold_start_waits_name_the_activator() {
        let mut r = run();
        r.cold_starts.requests_delayed = 1_149;
        assert!(line(&text(&r), "cold starts")
            .ends_with("; 1,149 requests buffered at the activator while no pod was ready"));
    }

    #[test]
    fn empty_figures_read_none() {
        let mut r = run();
        // No pod of the second service ever became ready: nothing completed.
        r.services[1].latency_seconds = LatencySummary::default();
        r.summary.latency_seconds = LatencySummary::default();
        r.cold_starts.count = 0;
        r.cold_starts.duration_seconds = LatencySummary::default();
        r.cold_starts.requests_delayed = 0;
        if let Some(b) = r.services[0].batching.as_mut() {
            *b = Default::default();
        }
        let t = text(&r);
        assert_eq!(
            line(&t, "latency"),
            "latency      none: no request completed after warm-up"
        );
        assert!(line(&t, "bert-small").contains("p99 none completed"), "{t}");
        assert!(line(&t, "resnet50").ends_with("; batches none"), "{t}");
        assert_eq!(
            line(&t, "cold starts"),
            "cold starts  none; no request buffered at the activator while no pod was ready"
        );
        assert!(!t.contains("0us"), "{t}");
    }

    #[test]
    fn warnings_have_their_heading() {
        let mut r = run();
        r.warnings.push(Warning {
            kind: WarningKind::Unschedulable,
            service: Some("bert-small".into()),
            message: "2 pods of bert-small could never be scheduled".into(),
        });
        let t = text(&r);
        assert!(
            t.contains(
                "\n  warnings\n    [unschedulable] 2 pods of bert-small could never be scheduled\n"
            ),
            "{t}"
        );
    }
}
