//! `lab report`: one results file to an HTML report, several to a comparison.

use crate::exit;
use anyhow::Context as _;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(
    long_about = "Renders one self-contained HTML file (inline SVG charts and CSS, nothing \
fetched from the network): the SLO verdict, a summary, and charts over time of traffic, \
latency, replicas, queue depth, nodes, GPU busy and cost. With several results files the \
same charts are overlaid, one colour per run, with a table of the differences in the key \
figures (e.g. sim vs local vs cluster, or time-slicing vs MIG).",
    after_help = exit::REPORT_HELP
)]
pub struct Args {
    /// Results files written by `lab run`, `lab load` or `lab merge`. One gives a
    /// report; two or more give a comparison, the first being the baseline.
    #[arg(required = true, value_name = "RESULTS.json")]
    files: Vec<PathBuf>,

    /// Where to write the HTML. Default: report.html beside the results file, or
    /// compare.html in the current directory for several files.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Name of each run in a comparison, in the order of the files (repeat the flag).
    /// Default: what differs between the runs (scenario, level, overrides, seed), or
    /// the file names.
    #[arg(long = "label", value_name = "NAME")]
    labels: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    if !args.labels.is_empty() && args.labels.len() != args.files.len() {
        return Err(exit::bad_input(format!(
            "{} --label values for {} results files: give one per file, in order",
            args.labels.len(),
            args.files.len()
        )));
    }
    let mut all = Vec::with_capacity(args.files.len());
    for file in &args.files {
        all.push(lab_reports::load_results(file).map_err(|e| exit::bad_input(e.to_string()))?);
    }
    let refs: Vec<&lab_results::Results> = all.iter().collect();
    let labels = if !args.labels.is_empty() {
        args.labels.clone()
    } else {
        let auto = lab_reports::auto_labels(&refs);
        if auto.iter().all(|l| l.starts_with("run ")) && args.files.len() > 1 {
            file_labels(&args.files)
        } else {
            auto
        }
    };
    let runs: Vec<(&str, &lab_results::Results)> = labels
        .iter()
        .map(String::as_str)
        .zip(refs.iter().copied())
        .collect();
    let page = lab_reports::render_html_labeled(&runs)?;

    let output = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.files));
    std::fs::write(&output, &page).with_context(|| format!("writing {}", output.display()))?;
    eprintln!(
        "wrote {} ({} KB, {} run{})",
        output.display(),
        page.len().div_ceil(1024),
        runs.len(),
        if runs.len() == 1 { "" } else { "s" }
    );
    Ok(exit::PASS)
}

/// The shortest way to tell the files apart: their names, else their folders
/// (`runs/a/results.json` vs `runs/b/results.json`), else their paths.
fn file_labels(files: &[PathBuf]) -> Vec<String> {
    let unique = |v: &Vec<String>| v.iter().enumerate().all(|(i, x)| !v[..i].contains(x));
    let stems: Vec<String> = files
        .iter()
        .map(|f| {
            f.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    if unique(&stems) {
        return stems;
    }
    let dirs: Vec<String> = files
        .iter()
        .map(|f| {
            f.parent()
                .and_then(|p| p.file_name())
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    if unique(&dirs) && dirs.iter().all(|d| !d.is_empty()) {
        return dirs;
    }
    files.iter().map(|f| f.display().to_string()).collect()
}

fn default_output(files: &[PathBuf]) -> PathBuf {
    match files {
        [one] => one.parent().unwrap_or(Path::new("")).join("report.html"),
        _ => PathBuf::from("compare.html"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_reports::fixtures::{spike_run, Spike};

    #[test]
    fn writes_a_report_and_a_comparison() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.json");
        let r = spike_run(&Spike {
            duration_seconds: 600.0,
            ..Spike::default()
        });
        std::fs::write(&a, serde_json::to_string(&r).unwrap()).unwrap();
        std::fs::write(&b, serde_json::to_string(&r).unwrap()).unwrap();

        let one = Args {
            files: vec![a.clone()],
            output: None,
            labels: vec![],
        };
        assert_eq!(run(one).unwrap(), exit::PASS);
        assert!(
            dir.path().join("report.html").is_file(),
            "beside the results"
        );

        let out = dir.path().join("cmp.html");
        let two = Args {
            files: vec![a.clone(), b.clone()],
            output: Some(out.clone()),
            labels: vec![],
        };
        assert_eq!(run(two).unwrap(), exit::PASS);
        let html = std::fs::read_to_string(&out).unwrap();
        // Identical runs fall back to their file names.
        assert!(html.contains("Δ b</th>"), "labelled by file");
        assert_eq!(
            file_labels(&[
                PathBuf::from("x/a/results.json"),
                PathBuf::from("x/b/results.json")
            ]),
            ["a", "b"]
        );

        let wrong = Args {
            files: vec![a, b],
            output: Some(out),
            labels: vec!["only one".into()],
        };
        let e = run(wrong).unwrap_err();
        assert!(e.chain().any(|c| c.is::<exit::BadInput>()), "{e:#}");
    }
}
