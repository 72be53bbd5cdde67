//! `lab compare`: how far one run of a scenario is from another (normally the
//! local level from the simulator), per metric, judged against the scenario's
//! `[fidelity]` bounds.

use crate::exit;
use anyhow::Context as _;
use lab_compare::{bounds_table, BoundResult, CompareOptions, Comparison};
use std::io::Write as _;
use std::path::PathBuf;

const COMPARE_HELP: &str = "\
Exit codes:
  0    compared, and every [fidelity] bound the scenario declares holds (or it declares none)
  1    a fidelity bound is broken
  2    bad input: a file missing, unreadable or not a lab results file; runs of
       different scenarios (refused); unreadable [fidelity] bounds; bad flags
  3    the HTML file could not be written";

#[derive(clap::Args)]
#[command(
    long_about = "Compares two runs of the same scenario, b against a: per service and for the \
whole run the error (b - a, and relative to a) of p50, p95, p99 and mean latency, throughput, \
goodput and error rate; the replica timelines (the largest gap in ready and desired replicas, \
and the lag of b behind a that best aligns them by cross-correlation, in seconds and in sync \
periods of the service's autoscaler); cold starts (count, mean duration and each phase's mean, \
requests delayed); scaling events matched one to one with their time offsets; cost in total and \
per pool.\n\n\
Runs of different scenarios are refused: the scenario names, the services and the resolved \
scenarios each file echoes must agree, except for keys either run set with --set, the \
description and the [fidelity] table. The level, seed and --time-scale may differ.\n\n\
When the scenario declares [fidelity] bounds (read from the scenario echoed in a's results, \
else b's), each is judged (times its slack) and the exit code says whether all hold.",
    after_help = COMPARE_HELP
)]
pub struct Args {
    /// The baseline results file (normally the simulator's).
    #[arg(value_name = "A.json")]
    a: PathBuf,

    /// The results file measured against it (normally the local level's).
    #[arg(value_name = "B.json")]
    b: PathBuf,

    /// Print the comparison and the judged bounds as JSON on stdout instead of text.
    #[arg(long)]
    json: bool,

    /// Also write an HTML page: both runs overlaid on every chart (as `lab report A B`)
    /// with the comparison's tables.
    #[arg(short, long, value_name = "FILE.html")]
    output: Option<PathBuf>,

    /// How far apart two scaling events may be and still be matched (`30s`, `2m`).
    /// Default: four periods of the target's autoscaler (the cluster autoscaler's scan
    /// interval for a pool), and at least two time-series intervals.
    #[arg(long, value_name = "DURATION", value_parser = parse_window)]
    event_window: Option<f64>,
}

fn parse_window(text: &str) -> Result<f64, String> {
    lab_units::parse_duration(text).map(|d| d.secs_f64())
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let load =
        |p: &PathBuf| lab_reports::load_results(p).map_err(|e| exit::bad_input(e.to_string()));
    let (a, b) = (load(&args.a)?, load(&args.b)?);
    let options = CompareOptions {
        event_window_seconds: args.event_window,
    };
    let comparison = lab_compare::compare_with(&a, &b, &options).map_err(|e| {
        exit::bad_input(format!(
            "not comparing {} with {}: {e}",
            args.a.display(),
            args.b.display()
        ))
    })?;
    let bounds = match lab_compare::declared_fidelity(&a, &b).map_err(exit::bad_input)? {
        Some(spec) => comparison.judge(&spec),
        None => Vec::new(),
    };
    let passed = lab_compare::all_hold(&bounds);

    let text = if args.json {
        let doc = serde_json::json!({
            "a": args.a.display().to_string(),
            "b": args.b.display().to_string(),
            "comparison": comparison,
            "bounds": bounds,
            "passed": passed,
        });
        serde_json::to_string_pretty(&doc)? + "\n"
    } else {
        comparison.to_text(&bounds)
    };
    // A closed pipe (`lab compare ... | head`) is not an error worth a panic.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(e).context("writing the comparison to stdout")
        }
        _ => {}
    }

    if let Some(path) = &args.output {
        let labels = [
            format!("a · {}", a.level.as_str()),
            format!("b · {}", b.level.as_str()),
        ];
        let runs = [(labels[0].as_str(), &a), (labels[1].as_str(), &b)];
        let page = lab_reports::render_comparison(&runs, &sections(&comparison, &bounds))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        std::fs::write(path, &page).with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "wrote {} ({} KB)",
            path.display(),
            page.len().div_ceil(1024)
        );
    }
    Ok(if passed { exit::PASS } else { exit::SLO_FAILED })
}

/// The comparison's tables as sections of the report page.
pub(super) fn sections(c: &Comparison, bounds: &[BoundResult]) -> Vec<lab_reports::Section> {
    let table = c.table();
    let mut notes = c.notes.clone();
    notes.extend(c.unmatched_lines());
    let mut out = vec![lab_reports::Section {
        id: "fidelity".into(),
        title: "Error per metric".into(),
        lead: "b against a: the difference b − a and the error relative to a; replica lags are \
               b's delay behind a that best aligns the timelines."
            .into(),
        numeric: vec![false, false, true, true, true, true],
        header: table.header,
        rows: table.rows,
        notes,
    }];
    if !bounds.is_empty() {
        let t = bounds_table(bounds);
        let broken = bounds.iter().filter(|b| !b.passed).count();
        out.push(lab_reports::Section {
            id: "fidelity-bounds".into(),
            title: "Fidelity bounds".into(),
            lead: if broken == 0 {
                format!("PASS: every bound holds ({}).", bounds.len())
            } else {
                format!("FAIL: {broken} of {} bounds broken.", bounds.len())
            },
            numeric: vec![false, false, true, true, false, false],
            header: t.header,
            rows: t.rows,
            notes: Vec::new(),
        });
    }
    out
}
