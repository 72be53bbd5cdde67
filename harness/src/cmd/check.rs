//! `lab check`: re-judge the SLOs of results files from their own figures and
//! say so in the forms CI reads (exit code, JUnit XML, Markdown, JSON).

use crate::exit;
use anyhow::Context as _;
use lab_reports::{junit, markdown, verdict, CheckPolicy, RunVerdict};
use std::io::Write as _;
use std::path::PathBuf;

#[derive(clap::Args)]
#[command(
    long_about = "Re-judges the SLOs recorded in results files from the files' own figures \
(a hand-edited or stale verdict does not survive), prints the verdict, and exits 0 when every \
SLO passes, 1 when one fails, has no data to judge, or is failed by a warning about its service, \
or when a run is incomplete (interrupted or cut short), 2 when a file is missing, unreadable or \
not a lab results file."
)]
pub struct Args {
    /// Results files written by `lab run`, `lab load` or `lab merge`; each becomes one
    /// test suite in the JUnit output. A comparison written by `lab run --level
    /// local --compare-sim` (comparison.json) or `lab compare --json` is judged by
    /// its `[fidelity]` bounds instead: a test suite with one testcase per bound.
    #[arg(required = true, value_name = "RESULTS.json")]
    files: Vec<PathBuf>,

    /// Also write JUnit XML (Ant/Jenkins format: one testsuite per run, one testcase
    /// per SLO, a <failure> with observed vs threshold) for Jenkins, GitLab or GitHub
    /// test reporters.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,

    /// Also append a Markdown verdict table to FILE, e.g. "$GITHUB_STEP_SUMMARY"
    /// (appended, not overwritten, so earlier steps' summaries stay).
    #[arg(long, value_name = "FILE")]
    summary_md: Option<PathBuf>,

    /// Print the verdict as JSON on stdout instead of text.
    #[arg(long)]
    json: bool,

    /// Judge an interrupted run (`"complete": false`) on its partial figures
    /// instead of failing it.
    #[arg(long)]
    allow_incomplete: bool,

    /// Let an SLO pass whose service has a warning in the results (pods that
    /// could never be scheduled, no ready replica, ...). Without it such an
    /// SLO fails even when its figure is within bounds.
    #[arg(long)]
    allow_warnings: bool,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let policy = CheckPolicy {
        judging: lab_results::Judging {
            allow_warnings: args.allow_warnings,
        },
        allow_incomplete: args.allow_incomplete,
    };
    let mut runs = Vec::with_capacity(args.files.len());
    let mut comparisons = Vec::new();
    for file in &args.files {
        if let Some(suite) = comparison(file)? {
            comparisons.push(suite);
            continue;
        }
        let results =
            lab_reports::load_results(file).map_err(|e| exit::bad_input(e.to_string()))?;
        runs.push(RunVerdict::judge_with(
            &file.display().to_string(),
            &results,
            policy,
        ));
    }

    let text = if args.json {
        let mut doc = verdict::to_json(&runs);
        if !comparisons.is_empty() {
            doc["fidelity"] = serde_json::Value::Array(
                comparisons
                    .iter()
                    .map(|(suite, bounds)| {
                        serde_json::json!({
                            "file": suite.source,
                            "scenario": suite.scenario,
                            "levels": suite.levels,
                            "bounds": bounds,
                            "passed": lab_compare::all_hold(bounds),
                        })
                    })
                    .collect(),
            );
        }
        serde_json::to_string_pretty(&doc)? + "\n"
    } else {
        let mut t: String = runs.iter().map(RunVerdict::to_text).collect();
        for (suite, bounds) in &comparisons {
            let broken = bounds.iter().filter(|b| !b.passed).count();
            t.push_str(&format!(
                "{}: {} fidelity ({}): {}\n",
                suite.source,
                suite.scenario,
                suite.levels,
                if broken == 0 {
                    format!("PASS: every bound holds ({})", bounds.len())
                } else {
                    format!("FAIL: {broken} of {} bounds broken", bounds.len())
                }
            ));
            for (case, b) in suite.cases.iter().zip(bounds) {
                t.push_str(&format!(
                    "  {} {}: {}\n",
                    if b.passed { "PASS" } else { "FAIL" },
                    case.name,
                    b.detail
                ));
            }
        }
        t
    };
    // A closed pipe (`lab check ... | head`) is not an error worth a panic.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(e).context("writing the verdict to stdout")
        }
        _ => {}
    }
    if let Some(path) = &args.junit {
        let suites: Vec<junit::FidelitySuite> =
            comparisons.iter().map(|(s, _)| s.clone()).collect();
        std::fs::write(path, junit::render_with(&runs, &suites))
            .with_context(|| format!("writing JUnit XML to {}", path.display()))?;
    }
    if let Some(path) = &args.summary_md {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(markdown::render(&runs).as_bytes()))
            .with_context(|| format!("writing the Markdown summary to {}", path.display()))?;
    }
    let bounds_hold = comparisons
        .iter()
        .all(|(_, bounds)| lab_compare::all_hold(bounds));
    Ok(if runs.iter().all(|r| r.passed) && bounds_hold {
        exit::PASS
    } else {
        exit::SLO_FAILED
    })
}

/// A comparison file (`{"comparison": …, "bounds": […]}`) as a JUnit suite
/// and its bounds; `None` for anything else, which is read as results.
fn comparison(
    file: &std::path::Path,
) -> anyhow::Result<Option<(junit::FidelitySuite, Vec<lab_compare::BoundResult>)>> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Ok(None); // load_results says what is wrong with it
    };
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Ok(None);
    };
    let (Some(cmp), Some(bounds)) = (doc.get("comparison"), doc.get("bounds")) else {
        return Ok(None);
    };
    let bounds: Vec<lab_compare::BoundResult> =
        serde_json::from_value(bounds.clone()).map_err(|e| {
            exit::bad_input(format!(
                "{}: not a lab comparison file (its bounds: {e})",
                file.display()
            ))
        })?;
    let side = |k: &str, f: &str| cmp[k][f].as_str().unwrap_or("?").to_string();
    let cases = bounds
        .iter()
        .map(|b| junit::FidelityCase {
            name: format!("{} ({})", b.key, b.service.as_deref().unwrap_or("overall")),
            failure: (!b.passed).then(|| {
                let observed = b
                    .observed
                    .map_or("nothing to observe".to_string(), |o| format!("{o}"));
                format!(
                    "{} {}: observed {observed} {} against a limit of {} ({} × slack {}): {}",
                    b.key,
                    b.service.as_deref().unwrap_or("overall"),
                    b.unit,
                    b.limit,
                    b.declared,
                    b.slack,
                    b.detail
                )
            }),
        })
        .collect();
    Ok(Some((
        junit::FidelitySuite {
            source: file.display().to_string(),
            scenario: side("a", "scenario"),
            levels: format!("{} vs {}", side("a", "level"), side("b", "level")),
            cases,
        },
        bounds,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_reports::fixtures::{spike_run, Spike};

    fn args(files: Vec<PathBuf>) -> Args {
        Args {
            files,
            junit: None,
            summary_md: None,
            json: false,
            allow_incomplete: false,
            allow_warnings: false,
        }
    }

    fn save(dir: &std::path::Path, name: &str, r: &lab_results::Results) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, serde_json::to_string(r).unwrap()).unwrap();
        p
    }

    #[test]
    fn exit_codes_follow_the_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let fail = save(dir.path(), "fail.json", &spike_run(&Spike::default()));
        let pass = save(
            dir.path(),
            "pass.json",
            &spike_run(&Spike {
                spike_factor: 1.0,
                p99_slo_seconds: 2.0,
                ..Spike::default()
            }),
        );
        assert_eq!(run(args(vec![pass.clone()])).unwrap(), exit::PASS);
        assert_eq!(run(args(vec![fail.clone()])).unwrap(), exit::SLO_FAILED);
        assert_eq!(run(args(vec![pass, fail])).unwrap(), exit::SLO_FAILED);
    }

    #[test]
    fn bad_files_are_bad_input_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("half.json");
        std::fs::write(&bad, "{\"schema_version\": 1,\n \"level\": \"sim\"").unwrap();
        for file in [bad, dir.path().join("missing.json")] {
            let e = run(args(vec![file.clone()])).unwrap_err();
            assert!(e.chain().any(|c| c.is::<exit::BadInput>()), "{e:#}");
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            assert!(format!("{e:#}").contains(&name), "{e:#}");
        }
    }

    #[test]
    fn junit_and_markdown_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let fail = save(dir.path(), "fail.json", &spike_run(&Spike::default()));
        let md = dir.path().join("summary.md");
        std::fs::write(&md, "earlier step\n").unwrap();
        let a = Args {
            files: vec![fail],
            junit: Some(dir.path().join("junit.xml")),
            summary_md: Some(md.clone()),
            json: true,
            allow_incomplete: false,
            allow_warnings: false,
        };
        assert_eq!(run(a).unwrap(), exit::SLO_FAILED);
        let xml = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
        assert!(xml.contains("<testsuite name=\"resnet-spike (sim)\""));
        assert_eq!(xml.matches("<failure ").count(), 2);
        let md = std::fs::read_to_string(md).unwrap();
        assert!(md.starts_with("earlier step\n### "), "appended: {md}");
    }
}
