//! Reports for `results.json`: a self-contained HTML page with charts (one run,
//! or several overlaid), and the CI outputs of `lab check` (a human verdict,
//! JUnit XML, a Markdown job summary, JSON).
//!
//! Charts are drawn from the time series only, never from per-request data, and
//! long series are thinned to a few points per pixel, so a simulated day stays
//! a page of a few hundred kilobytes.
//!
//! Entry points: [`render_html`] / [`render_html_labeled`] (one run, or several
//! overlaid), [`write_report`] (what `lab run` calls for `report.html`),
//! [`load_results`] (errors name the file, the key path and the line), and
//! [`RunVerdict::judge`] with [`junit`], [`markdown`] and [`verdict::to_json`]
//! for `lab check`. The `fixtures` feature exposes a spike-shaped `Results`
//! for other crates' tests.
//!
//! Architecture invariant: no network and no script in the page; the only I/O
//! here is [`load`] and [`write_report`], which read and write the files the
//! caller names.

mod charts;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod format;
mod html;
pub mod junit;
pub mod load;
pub mod markdown;
mod series;
pub mod verdict;

pub use html::Section;
pub use load::{load_results, parse_results};
pub use verdict::{CheckPolicy, RunVerdict, SloVerdict};

use lab_results::Results;
use std::path::{Path, PathBuf};

/// What can go wrong between a results file and a report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: cannot read the file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not valid JSON: {message} (line {line}, column {column})")]
    Syntax {
        path: PathBuf,
        message: String,
        line: usize,
        column: usize,
    },
    #[error("{path}: not a lab results file: {message}")]
    Schema { path: PathBuf, message: String },
    #[error(
        "{path}: results schema version {found}, but this lab reads version {expected}; \
         re-run the scenario or use a matching lab"
    )]
    Version {
        path: PathBuf,
        found: u64,
        expected: u32,
    },
    #[error("no results to report: give at least one results file")]
    NoRuns,
    #[error("{count} labels for {runs} runs: give one label per run")]
    Labels { count: usize, runs: usize },
    #[error("drawing the {chart} chart: {message}")]
    Chart { chart: String, message: String },
    #[error("{path}: cannot write the report: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Renders the HTML report of one run, or the comparison of several runs
/// overlaid (labels are derived from what differs between the runs: scenario,
/// level, overrides, seed).
pub fn render_html(results: &[&Results]) -> Result<String, ReportError> {
    let labels = auto_labels(results);
    let runs: Vec<(&str, &Results)> = labels
        .iter()
        .map(String::as_str)
        .zip(results.iter().copied())
        .collect();
    render_html_labeled(&runs)
}

/// Like [`render_html`] with a label of the caller's choice for each run (a
/// file name, `time-slicing`, `MIG 3g.20gb`).
pub fn render_html_labeled(runs: &[(&str, &Results)]) -> Result<String, ReportError> {
    match runs {
        [] => Err(ReportError::NoRuns),
        [(_, one)] => html::single(one),
        many => html::compare(many),
    }
}

/// The comparison page of two or more runs with the caller's `sections`
/// (tables of text) after the key figures, as `lab compare -o` writes it.
pub fn render_comparison(
    runs: &[(&str, &Results)],
    sections: &[Section],
) -> Result<String, ReportError> {
    match runs {
        [] => Err(ReportError::NoRuns),
        many => html::compare_with(many, sections),
    }
}

/// Writes the report of one run to `path` (what `lab run` does with
/// `report.html` beside `results.json`).
pub fn write_report(path: &Path, results: &Results) -> Result<(), ReportError> {
    let page = render_html(&[results])?;
    std::fs::write(path, page).map_err(|source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Short names that tell runs apart: the parts of (scenario, level, overrides,
/// seed) that differ between them, or `run N` when nothing does.
pub fn auto_labels(results: &[&Results]) -> Vec<String> {
    let parts = |r: &Results| -> [String; 4] {
        [
            r.scenario.name.clone(),
            r.level.as_str().to_string(),
            overrides_label(&r.scenario.overrides),
            format!("seed {}", r.seed),
        ]
    };
    let all: Vec<[String; 4]> = results.iter().map(|r| parts(r)).collect();
    if all.len() == 1 {
        return vec![format!("{} ({})", all[0][0], all[0][1])];
    }
    let varies: Vec<usize> = (0..4)
        .filter(|&i| all.iter().any(|p| p[i] != all[0][i]))
        .collect();
    let labels: Vec<String> = all
        .iter()
        .map(|p| {
            varies
                .iter()
                .map(|&i| p[i].as_str())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" · ")
        })
        .collect();
    let unique = labels.iter().all(|l| !l.is_empty())
        && labels
            .iter()
            .enumerate()
            .all(|(i, l)| !labels[..i].contains(l));
    if unique {
        labels
    } else {
        (1..=results.len()).map(|i| format!("run {i}")).collect()
    }
}

/// `--set` overrides as a label: `no overrides` when there are none. Whole,
/// never cut: two MIG layouts differ only at the end of a long inline table
/// (the page wraps long labels instead).
fn overrides_label(overrides: &[String]) -> String {
    if overrides.is_empty() {
        return "no overrides".into();
    }
    overrides.join(" ")
}
