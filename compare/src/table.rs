//! The comparison as rows of text, for the terminal and for the HTML page
//! (lab-reports renders the same rows as a table section).

use crate::judge::BoundResult;
use crate::timeline::TimelineFit;
use crate::{Comparison, Delta, Figures};
use std::fmt::Write as _;

/// A header and rows of cells, each row as long as the header.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Columns of names and words, left-aligned in text; the rest are figures.
    left: Vec<bool>,
}

impl Table {
    fn new(header: &[&str], left: &[usize]) -> Table {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            left: (0..header.len()).map(|i| left.contains(&i)).collect(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len());
        self.rows.push(cells);
    }

    /// Columns padded to their widest cell.
    pub fn to_text(&self) -> String {
        let width = |i: usize| {
            std::iter::once(&self.header)
                .chain(&self.rows)
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.header.len()).map(width).collect();
        let line = |cells: &[String]| {
            let mut s = String::new();
            for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
                if i > 0 {
                    s.push_str("  ");
                }
                if self.left[i] {
                    let _ = write!(s, "{c:<w$}");
                } else {
                    let _ = write!(s, "{c:>w$}");
                }
            }
            s.trim_end().to_string() + "\n"
        };
        let mut out = line(&self.header);
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&line(&rule));
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// How a figure reads: seconds as ms below 1 s, rates, ratios as percent.
#[derive(Clone, Copy)]
enum Unit {
    Seconds,
    Rps,
    Ratio,
    Count,
    Usd,
}

fn value(v: f64, unit: Unit) -> String {
    match unit {
        Unit::Seconds if v.abs() < 1.0 => format!("{:.1} ms", v * 1000.0),
        Unit::Seconds => format!("{v:.2} s"),
        Unit::Rps => format!("{v:.1} req/s"),
        Unit::Ratio => format!("{:.2} %", v * 100.0),
        Unit::Count => format!("{v:.0}"),
        Unit::Usd => format!("${v:.4}"),
    }
}

fn signed(v: f64, unit: Unit) -> String {
    let s = value(v.abs(), unit);
    if v > 0.0 {
        format!("+{s}")
    } else if v < 0.0 {
        format!("−{s}")
    } else {
        s
    }
}

fn relative(d: &Delta) -> String {
    match d.relative {
        Some(0.0) => "0 %".into(),
        Some(r) => format!(
            "{}{:.1} %",
            if r > 0.0 { "+" } else { "−" },
            r.abs() * 100.0
        ),
        None => "n/a".into(),
    }
}

fn seconds(v: f64) -> String {
    format!("{}{} s", if v > 0.0 { "+" } else { "" }, trim(v))
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl Comparison {
    /// Every figure as a row: scope, figure, a, b, b − a, relative error.
    pub fn table(&self) -> Table {
        let mut t = Table::new(&["Scope", "Figure", "a", "b", "b − a", "Error"], &[0, 1]);
        let delta = |t: &mut Table, scope: &str, name: &str, d: &Delta, unit: Unit| {
            t.row(vec![
                scope.to_string(),
                name.to_string(),
                value(d.a, unit),
                value(d.b, unit),
                signed(d.difference, unit),
                relative(d),
            ]);
        };
        let figures = |t: &mut Table, scope: &str, f: &Figures| {
            delta(t, scope, "p50 latency", &f.p50_seconds, Unit::Seconds);
            delta(t, scope, "p95 latency", &f.p95_seconds, Unit::Seconds);
            delta(t, scope, "p99 latency", &f.p99_seconds, Unit::Seconds);
            delta(t, scope, "mean latency", &f.mean_seconds, Unit::Seconds);
            delta(t, scope, "throughput", &f.throughput_rps, Unit::Rps);
            delta(t, scope, "goodput", &f.goodput_rps, Unit::Rps);
            delta(t, scope, "error rate", &f.error_rate, Unit::Ratio);
        };
        figures(&mut t, "overall", &self.overall);
        for s in &self.services {
            figures(&mut t, &s.name, &s.figures);
            let period = s.replicas.sync_period_seconds;
            let fit = |t: &mut Table, what: &str, f: &TimelineFit| {
                t.row(vec![
                    s.name.clone(),
                    format!("{what} replicas, largest gap"),
                    String::new(),
                    String::new(),
                    format!("{} ({} aligned)", f.max_gap, f.max_gap_aligned),
                    String::new(),
                ]);
                let lag = match (f.correlation, f.lag_periods, period) {
                    (None, _, _) => "flat: no lag".to_string(),
                    (Some(_), Some(lp), Some(p)) => {
                        format!("{} ({} × {} s)", seconds(f.lag_seconds), trim(lp), trim(p))
                    }
                    _ => seconds(f.lag_seconds),
                };
                t.row(vec![
                    s.name.clone(),
                    format!("{what} replicas, lag of b"),
                    String::new(),
                    String::new(),
                    lag,
                    f.correlation
                        .map_or(String::new(), |c| format!("r = {c:.2}")),
                ]);
            };
            fit(&mut t, "ready", &s.replicas.ready);
            fit(&mut t, "desired", &s.replicas.desired);
        }
        let c = &self.cold_starts;
        delta(&mut t, "cold starts", "count", &c.count, Unit::Count);
        delta(
            &mut t,
            "cold starts",
            "mean duration",
            &c.mean_seconds,
            Unit::Seconds,
        );
        let p = &c.phases_seconds;
        for (name, d) in [
            ("node provisioning", &p.node_provisioning),
            ("image pull", &p.image_pull),
            ("model load", &p.model_load),
            ("readiness", &p.readiness),
        ] {
            delta(
                &mut t,
                "cold starts",
                &format!("mean {name}"),
                d,
                Unit::Seconds,
            );
        }
        delta(
            &mut t,
            "cold starts",
            "requests delayed",
            &c.requests_delayed,
            Unit::Count,
        );
        for e in &self.scaling_events {
            let n = e.matched.len();
            let offsets = match (e.mean_offset_seconds(), e.max_abs_offset_seconds()) {
                (Some(m), Some(x)) => format!(", offset mean {} max {} s", seconds(m), trim(x)),
                _ => String::new(),
            };
            t.row(vec![
                e.target.clone(),
                "scaling events".into(),
                (n + e.unmatched_a.len()).to_string(),
                (n + e.unmatched_b.len()).to_string(),
                format!("{n} matched{offsets}, {} unmatched", e.unmatched()),
                String::new(),
            ]);
        }
        delta(&mut t, "cost", "total", &self.cost.total_usd, Unit::Usd);
        for pool in &self.cost.by_pool {
            delta(
                &mut t,
                "cost",
                &format!("pool {}", pool.name),
                &pool.usd,
                Unit::Usd,
            );
        }
        t
    }

    /// Scaling events without a partner, one line each.
    pub fn unmatched_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.scaling_events {
            for (side, list) in [("a", &e.unmatched_a), ("b", &e.unmatched_b)] {
                for x in list {
                    out.push(format!(
                        "{}: {} → {} at {} s, only in {side} (window ±{} s)",
                        e.target,
                        x.from,
                        x.to,
                        trim(x.t_seconds),
                        trim(e.window_seconds)
                    ));
                }
            }
        }
        out
    }

    /// The whole comparison for a terminal: which runs, the table, notes,
    /// unmatched events and the bounds judged (if any).
    pub fn to_text(&self, bounds: &[BoundResult]) -> String {
        let mut s = String::new();
        let side = |r: &crate::RunRef| {
            format!(
                "{} at level {}, seed {}{}",
                r.scenario,
                r.level.as_str(),
                r.seed,
                if r.overrides.is_empty() {
                    String::new()
                } else {
                    format!(", --set {}", r.overrides.join(" "))
                }
            )
        };
        let _ = writeln!(s, "a: {}\nb: {}\n", side(&self.a), side(&self.b));
        s.push_str(&self.table().to_text());
        if !self.notes.is_empty() {
            s.push_str("\nNotes:\n");
            for n in &self.notes {
                let _ = writeln!(s, "  - {n}");
            }
        }
        let unmatched = self.unmatched_lines();
        if !unmatched.is_empty() {
            s.push_str("\nUnmatched scaling events:\n");
            for u in unmatched {
                let _ = writeln!(s, "  - {u}");
            }
        }
        if !bounds.is_empty() {
            s.push('\n');
            s.push_str(&bounds_table(bounds).to_text());
            let broken = bounds.iter().filter(|b| !b.passed).count();
            let _ = writeln!(
                s,
                "\n{}",
                if broken == 0 {
                    format!("PASS: every fidelity bound holds ({})", bounds.len())
                } else {
                    format!("FAIL: {broken} of {} fidelity bounds broken", bounds.len())
                }
            );
        }
        s
    }
}

/// The bounds judged, as rows: bound, observed, limit, verdict, detail.
pub fn bounds_table(bounds: &[BoundResult]) -> Table {
    let mut t = Table::new(
        &["Bound", "Scope", "Observed", "Limit", "Verdict", "Detail"],
        &[0, 1, 4, 5],
    );
    let show = |v: f64, unit: &str| match unit {
        "relative" | "ratio" => format!("{:.1} %", v * 100.0),
        _ => trim(v),
    };
    for b in bounds {
        t.row(vec![
            b.key.clone(),
            b.service.clone().unwrap_or_else(|| "overall".into()),
            b.observed.map_or("none".into(), |o| show(o, &b.unit)),
            if b.slack == 1.0 {
                show(b.limit, &b.unit)
            } else {
                format!("{} (× {})", show(b.limit, &b.unit), trim(b.slack))
            },
            if b.passed { "pass" } else { "FAIL" }.into(),
            b.detail.clone(),
        ]);
    }
    t
}
