//! A Markdown verdict for a CI job summary (GitHub `$GITHUB_STEP_SUMMARY`,
//! GitLab or Jenkins Markdown panels).

use crate::format;
use crate::verdict::RunVerdict;
use std::fmt::Write as _;

pub fn render(runs: &[RunVerdict]) -> String {
    let mut md = String::new();
    for run in runs {
        let mark = if run.passed { "✅" } else { "❌" };
        let _ = writeln!(
            md,
            "### {mark} {}: {}\n",
            cell(&run.title()),
            run.headline()
        );
        let _ = writeln!(
            md,
            "`{}` · seed {} · {}{}\n",
            cell(&run.source),
            run.seed,
            format::duration(run.end_seconds),
            if run.complete {
                ""
            } else {
                " · **incomplete run** (interrupted or cut short)"
            }
        );
        if run.slos.is_empty() {
            md.push_str("No SLOs were recorded for this run.\n\n");
            continue;
        }
        md.push_str("| | SLO | Scope | Observed | Threshold |\n|---|---|---|---:|---:|\n");
        for s in &run.slos {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                match s.slo.verdict() {
                    lab_results::SloVerdict::Pass => "✅ pass",
                    lab_results::SloVerdict::Fail => "❌ **fail**",
                    lab_results::SloVerdict::NoData => "❌ **no data**",
                },
                cell(&s.slo.name),
                cell(s.scope()),
                cell(&s.observed_text()),
                cell(&s.threshold_text()),
            );
        }
        for w in &run.warnings {
            let _ = writeln!(
                md,
                "\n⚠️ **warning** ({}): {}",
                w.kind.as_str(),
                cell(&w.message)
            );
        }
        md.push('\n');
    }
    md
}

/// Keeps a value inside its table cell.
fn cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}
