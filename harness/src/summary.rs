//! The human summary `lab run` prints.

use lab_results::{LatencySummary, Results, SloResult};
use std::fmt::Write;
use std::path::Path;

pub fn human(r: &Results, dir: &Path) -> String {
    let mut o = String::new();
    let w = &mut o;
    let _ = writeln!(
        w,
        "{} ({}, seed {}): {} simulated in {:.2} s{}",
        r.scenario.name,
        r.level.as_str(),
        r.seed,
        lab_units::Dur::from_secs_f64(r.run.end_seconds),
        r.wall_clock.elapsed_seconds,
        if r.complete {
            ""
        } else {
            "  [INTERRUPTED: partial results]"
        }
    );
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
    let _ = writeln!(
        w,
        "  throughput   {:.1} req/s, goodput {:.1} req/s, error rate {:.3}%",
        r.summary.throughput_rps,
        r.summary.goodput_rps,
        100.0 * r.summary.error_rate
    );
    for s in &r.services {
        let batches = s.batching.map_or(String::new(), |b| {
            format!(
                "; batches {:.1} of {} rows ({:.0}% full)",
                b.mean_rows,
                b.max_batch_size,
                100.0 * b.fill_fraction
            )
        });
        let _ = writeln!(
            w,
            "  {:<12} ready replicas {}..{} (mean {:.1}), desired up to {}; p99 {}{batches}",
            s.name,
            s.replicas.min_ready,
            s.replicas.max_ready,
            s.replicas.mean_ready,
            s.replicas.max_desired,
            secs(s.latency_seconds.p99)
        );
    }
    let c = &r.cold_starts;
    let _ = writeln!(
        w,
        "  cold starts  {} (mean {}, max {}), {} request(s) waited on one",
        c.count,
        secs(c.duration_seconds.mean),
        secs(c.duration_seconds.max),
        c.requests_delayed
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

fn lat(l: &LatencySummary) -> String {
    format!(
        "mean {}  p50 {}  p90 {}  p95 {}  p99 {}  p99.9 {}  max {}",
        secs(l.mean),
        secs(l.p50),
        secs(l.p90),
        secs(l.p95),
        secs(l.p99),
        secs(l.p999),
        secs(l.max)
    )
}

/// Seconds with a readable unit.
pub fn secs(s: f64) -> String {
    if !s.is_finite() {
        "n/a".into()
    } else if s >= 1.0 {
        format!("{s:.2}s")
    } else if s >= 1e-3 {
        format!("{:.1}ms", s * 1e3)
    } else {
        format!("{:.0}us", s * 1e6)
    }
}
