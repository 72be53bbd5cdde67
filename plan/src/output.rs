//! What `lab plan` writes: the ranked table, plan.json, winner.toml and
//! plan.html.

use crate::chart;
use crate::rank::Ranking;
use crate::search::{Evaluation, Outcome, Problem};
use std::fmt::Write as _;

pub fn usd(v: f64) -> String {
    let whole = v.round() as i64;
    let digits = whole.abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    format!("{}${out}", if whole < 0 { "-" } else { "" })
}

pub fn ms(seconds: f64) -> String {
    let v = seconds * 1000.0;
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn margin(m: Option<f64>) -> String {
    m.map_or("-".into(), |m| format!("{:+.0}%", m * 100.0))
}

/// The counts line: how much of the grid the search had to simulate.
pub fn summary_line(o: &Outcome) -> String {
    let mut s = format!(
        "{} of {} candidates simulated ({} simulations, seeds {})",
        o.evaluated.len(),
        o.grid_size,
        o.simulations,
        o.seeds
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !o.overloaded.is_empty() {
        let _ = write!(
            s,
            "; {} below the offered load, not simulated",
            o.overloaded.len()
        );
    }
    if !o.invalid.is_empty() {
        let _ = write!(s, "; {} rejected by the scenario", o.invalid.len());
    }
    s
}

fn row(out: &mut String, rank: &str, e: &Evaluation, extra: &str) {
    let _ = writeln!(
        out,
        "  {rank:>4}  {:>10}  {:>9}  {:>7}  {:>5}  {:>5.0}%  {:>5}  {}{extra}",
        usd(e.monthly_cost_usd()),
        ms(e.p99_seconds()),
        margin(e.slo_margin()),
        e.cold_starts(),
        e.gpu_utilization() * 100.0,
        e.runs.len(),
        e.label,
    );
}

/// The human table printed to stdout.
pub fn table(o: &Outcome, r: &Ranking, dir: Option<&std::path::Path>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", summary_line(o));
    let header = "  rank  cost/month        p99   margin   cold   GPU%  seeds  candidate";
    let _ = writeln!(out, "\nPassing configurations (cheapest first):");
    if r.passing.is_empty() {
        let _ = writeln!(out, "  none");
    } else {
        let _ = writeln!(out, "{header}");
        for (i, e) in r.passing.iter().enumerate() {
            let note = if e.runs.len() < o.seeds.len() {
                "  (not re-run with every seed)"
            } else {
                ""
            };
            row(&mut out, &(i + 1).to_string(), e, note);
        }
    }
    if !r.nearest_failures.is_empty() {
        let _ = writeln!(out, "\nNearest failures:");
        let _ = writeln!(out, "{header}");
        for e in &r.nearest_failures {
            row(
                &mut out,
                "-",
                e,
                &format!("  fails {}", e.failed().join(", ")),
            );
        }
    }
    let _ = writeln!(out, "\nPareto front, monthly cost against p99:");
    if r.front.is_empty() {
        let _ = writeln!(out, "  nothing was simulated");
    }
    for e in &r.front {
        let _ = writeln!(
            out,
            "  {:>10}  {:>9}  {}  {}",
            usd(e.monthly_cost_usd()),
            ms(e.p99_seconds()),
            if e.passed() { "pass" } else { "FAIL" },
            e.label
        );
    }
    if o.interrupted {
        let _ = writeln!(
            out,
            "\nInterrupted before the search settled: the plan is the best found so far."
        );
    }
    if o.budget_exhausted {
        let _ = writeln!(
            out,
            "\nThe simulation budget ran out before the search settled: the plan may not be the cheapest."
        );
    }
    match o.winner.and_then(|id| o.get(id)) {
        Some(w) => {
            let _ = writeln!(
                out,
                "\nPlan: {} at {}/month, p99 {} (worst of {} seeds)",
                w.label,
                usd(w.monthly_cost_usd()),
                ms(w.p99_seconds()),
                w.runs.len()
            );
            for s in &w.overrides {
                let _ = writeln!(out, "  --set '{s}'");
            }
        }
        None => {
            let _ = writeln!(out, "\nNo configuration in the space holds the SLOs.");
        }
    }
    if let Some(dir) = dir {
        let _ = writeln!(out, "\nWrote {}/plan.json and plan.html", dir.display());
        if o.winner.is_some() {
            let _ = writeln!(out, "Wrote {}/winner.toml", dir.display());
        }
        let _ = writeln!(
            out,
            "Kubernetes manifests for the winner are not written: this build has no deploy renderer yet."
        );
    }
    out
}

/// plan.json.
pub fn json(o: &Outcome, r: &Ranking, problem: &Problem) -> serde_json::Value {
    let ids = |v: &[&Evaluation]| v.iter().map(|e| e.id).collect::<Vec<_>>();
    serde_json::json!({
        "scenario": problem.file,
        "grid_size": o.grid_size,
        "simulations": o.simulations,
        "seeds": o.seeds,
        "budget_exhausted": o.budget_exhausted,
        "interrupted": o.interrupted,
        "winner": o.winner.and_then(|id| o.get(id)),
        "passing": ids(&r.passing),
        "nearest_failures": ids(&r.nearest_failures),
        "pareto_front": ids(&r.front),
        "evaluated": o.evaluated,
        "overloaded": o.overloaded.iter().map(|(id, why)| serde_json::json!({"id": id, "reason": why})).collect::<Vec<_>>(),
        "invalid": o.invalid.iter().map(|(id, why)| serde_json::json!({"id": id, "error": why})).collect::<Vec<_>>(),
    })
}

/// The scenario file with the winner's overrides applied, headed by a note.
pub fn winner_toml(problem: &Problem, w: &Evaluation) -> Result<String, String> {
    let body = lab_scenario::apply_overrides(&problem.text, &w.overrides)?;
    let mut head = format!(
        "# Written by `lab plan` from {}: the cheapest configuration that held\n# every SLO with seeds {}, at {}/month (p99 {}). Overrides applied:\n",
        problem.file,
        w.runs.iter().map(|r| r.seed.to_string()).collect::<Vec<_>>().join(", "),
        usd(w.monthly_cost_usd()),
        ms(w.p99_seconds()),
    );
    for s in &w.overrides {
        let _ = writeln!(head, "#   {s}");
    }
    Ok(format!("{head}\n{body}"))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// plan.html: the front plotted, then the tables.
pub fn html(o: &Outcome, r: &Ranking, problem: &Problem, p99_bound: Option<f64>) -> String {
    let svg =
        chart::pareto_svg(o, r, p99_bound).unwrap_or_else(|e| format!("<p>chart: {}</p>", esc(&e)));
    let mut rows = String::new();
    let mut add = |e: &Evaluation, rank: String| {
        let _ = writeln!(
            rows,
            "<tr class=\"{}\"><td>{rank}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}%</td><td>{}</td><td>{}</td></tr>",
            if e.passed() { "pass" } else { "fail" },
            usd(e.monthly_cost_usd()),
            ms(e.p99_seconds()),
            margin(e.slo_margin()),
            e.cold_starts(),
            e.gpu_utilization() * 100.0,
            e.runs.len(),
            esc(&e.label),
        );
    };
    for (i, e) in r.passing.iter().enumerate() {
        add(e, (i + 1).to_string());
    }
    for e in &r.nearest_failures {
        add(e, format!("fails {}", esc(&e.failed().join(", "))));
    }
    let verdict = match o.winner.and_then(|id| o.get(id)) {
        Some(w) => format!(
            "Plan: <b>{}</b> at {}/month, p99 {}.",
            esc(&w.label),
            usd(w.monthly_cost_usd()),
            ms(w.p99_seconds())
        ),
        None => "No configuration in the space holds the SLOs.".into(),
    };
    format!(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lab plan: {title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #1e1e1e; }}
table {{ border-collapse: collapse; }} td, th {{ padding: 0.2em 0.8em; text-align: right; white-space: nowrap; }}
td:last-child, th:last-child {{ text-align: left; }} tr.fail {{ color: #b00020; }}
svg {{ width: 100%; height: auto; }}
</style></head><body>
<h1>lab plan: {title}</h1>
<p>{verdict}</p>
<p>{summary}</p>
<h2>Cost against p99</h2>
{svg}
<h2>Passing configurations and nearest failures</h2>
<table><tr><th>rank</th><th>cost/month</th><th>p99</th><th>SLO margin</th><th>cold starts</th><th>GPU</th><th>seeds</th><th>candidate</th></tr>
{rows}</table>
</body></html>
"#,
        title = esc(&problem.file),
        summary = esc(&summary_line(o)),
    )
}
