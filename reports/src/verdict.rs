//! `lab check`: SLOs re-judged from a results file's own figures, and the
//! verdict as terminal text or JSON.

use crate::format;
use lab_results::{recheck, Judging, Level, Results, SloResult, Warning};
use serde::Serialize;

/// One SLO as re-judged, next to what the file had recorded.
#[derive(Debug, Clone, Serialize)]
pub struct SloVerdict {
    #[serde(flatten)]
    pub slo: SloResult,
    /// The verdict stored in the file; differs from `slo.passed` only when the
    /// file was edited by hand or written by an older judge.
    pub recorded_passed: bool,
}

impl SloVerdict {
    /// Where it applies: the service, or `overall`.
    pub fn scope(&self) -> &str {
        self.slo.service.as_deref().unwrap_or("overall")
    }

    /// The observed value, or `no data`.
    pub fn observed_text(&self) -> String {
        match self.slo.observed {
            Some(v) if v.is_finite() => format::value(v, &self.slo.unit),
            _ => "no data".into(),
        }
    }

    /// `PASS`, `FAIL` or `NO DATA`.
    pub fn label(&self) -> &'static str {
        self.slo.verdict().label()
    }

    pub fn threshold_text(&self) -> String {
        format::bound(self.slo.bound, self.slo.threshold, &self.slo.unit)
    }

    /// `observed 312 ms, threshold <= 250 ms`, with the reason when there is one.
    pub fn failure_message(&self) -> String {
        let mut m = format!(
            "observed {}, threshold {}",
            self.observed_text(),
            format::bound_ascii(self.slo.bound, self.slo.threshold, &self.slo.unit)
        );
        if let Some(why) = &self.slo.reason {
            m.push_str(": ");
            m.push_str(why);
        }
        m
    }
}

/// What `lab check` lets pass: by default neither an incomplete run nor an
/// SLO whose service has a warning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckPolicy {
    pub judging: Judging,
    /// `--allow-incomplete`: judge an interrupted run on its partial figures.
    pub allow_incomplete: bool,
}

/// The verdict on one results file.
#[derive(Debug, Clone, Serialize)]
pub struct RunVerdict {
    /// The file as named on the command line.
    pub source: String,
    pub scenario: String,
    pub level: Level,
    pub seed: u64,
    pub complete: bool,
    pub duration_seconds: f64,
    pub end_seconds: f64,
    pub started_at: String,
    pub elapsed_seconds: f64,
    pub host: String,
    /// Every SLO passed, and the run is complete (or `--allow-incomplete`).
    pub passed: bool,
    /// The run is incomplete and that alone fails it.
    pub incomplete_fails: bool,
    pub slos: Vec<SloVerdict>,
    pub warnings: Vec<Warning>,
}

impl RunVerdict {
    /// Judged as `lab check` does by default: incomplete runs and warned-about
    /// SLOs fail.
    pub fn judge(source: &str, r: &Results) -> RunVerdict {
        RunVerdict::judge_with(source, r, CheckPolicy::default())
    }

    pub fn judge_with(source: &str, r: &Results, policy: CheckPolicy) -> RunVerdict {
        let slos: Vec<SloVerdict> = recheck(r, policy.judging)
            .into_iter()
            .zip(&r.slo)
            .map(|(slo, recorded)| SloVerdict {
                slo,
                recorded_passed: recorded.passed,
            })
            .collect();
        RunVerdict {
            source: source.to_string(),
            scenario: r.scenario.name.clone(),
            level: r.level,
            seed: r.seed,
            complete: r.complete,
            duration_seconds: r.run.duration_seconds,
            end_seconds: r.run.end_seconds,
            started_at: r.wall_clock.started_at.clone(),
            elapsed_seconds: r.wall_clock.elapsed_seconds,
            host: r.wall_clock.host.clone(),
            passed: slos.iter().all(|s| s.slo.passed) && (r.complete || policy.allow_incomplete),
            incomplete_fails: !r.complete && !policy.allow_incomplete,
            slos,
            warnings: r.warnings.clone(),
        }
    }

    pub fn failures(&self) -> usize {
        self.slos.iter().filter(|s| !s.slo.passed).count()
    }

    /// `spike-200rps (sim)`.
    pub fn title(&self) -> String {
        format!("{} ({})", self.scenario, self.level.as_str())
    }

    /// `PASS: all 3 SLOs met`, `FAIL: 1 of 3 SLOs missed`; an incomplete run
    /// that fails for it says so first.
    pub fn headline(&self) -> String {
        let slos = self.slo_summary();
        if self.incomplete_fails {
            return format!(
                "FAIL: the run is incomplete (interrupted or cut short; --allow-incomplete \
                 judges its partial figures); {slos}"
            );
        }
        let all_passed = self.slos.iter().all(|s| s.slo.passed);
        format!("{}: {slos}", if all_passed { "PASS" } else { "FAIL" })
    }

    /// What the SLOs say, without the verdict word.
    fn slo_summary(&self) -> String {
        let n = self.slos.len();
        let no_data = self
            .slos
            .iter()
            .filter(|s| s.slo.verdict() == lab_results::SloVerdict::NoData)
            .count();
        let missed = self.failures() - no_data;
        match (n, missed, no_data) {
            (0, _, _) => "no SLOs recorded, nothing to judge".into(),
            (1, 0, 0) => "the SLO is met".into(),
            (_, 0, 0) => format!("all {n} SLOs met"),
            (_, m, 0) => format!("{m} of {n} SLOs missed"),
            (_, 0, d) => format!("{d} of {n} SLOs with no data to judge"),
            (_, m, d) => format!("{m} of {n} SLOs missed, {d} with no data to judge"),
        }
    }

    /// Verdicts that differ from the ones stored in the file.
    pub fn changed(&self) -> impl Iterator<Item = &SloVerdict> {
        self.slos
            .iter()
            .filter(|s| s.slo.passed != s.recorded_passed)
    }

    /// The verdict for a terminal.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "{}: {}, seed {}, {} {}\n",
            self.source,
            self.title(),
            self.seed,
            format::duration(self.end_seconds),
            if self.complete {
                "run"
            } else {
                "run (INCOMPLETE: interrupted or cut short)"
            }
        );
        let name_w = self
            .slos
            .iter()
            .map(|s| s.slo.name.chars().count())
            .max()
            .unwrap_or(0);
        let obs: Vec<String> = self.slos.iter().map(SloVerdict::observed_text).collect();
        let obs_w = obs.iter().map(|o| o.chars().count()).max().unwrap_or(0);
        let label_w = self.slos.iter().map(|s| s.label().len()).max().unwrap_or(0);
        for (s, o) in self.slos.iter().zip(&obs) {
            out.push_str(&format!(
                "  {:label_w$}  {:name_w$}  observed {:obs_w$}  threshold {}\n",
                s.label(),
                s.slo.name,
                o,
                s.threshold_text(),
            ));
            if let Some(why) = &s.slo.reason {
                out.push_str(&format!("  {:label_w$}  {why}\n", ""));
            }
        }
        for w in &self.warnings {
            out.push_str(&format!("  warning [{}]: {}\n", w.kind.as_str(), w.message));
        }
        for s in self.changed() {
            out.push_str(&format!(
                "  note: `{}` was recorded as {} but its figures say {}\n",
                s.slo.name,
                if s.recorded_passed {
                    "passed"
                } else {
                    "failed"
                },
                if s.slo.passed { "passed" } else { "failed" },
            ));
        }
        out.push_str(&format!("verdict: {}\n", self.headline()));
        out
    }
}

/// Machine-readable verdict of one or more runs, for `lab check --json`.
pub fn to_json(runs: &[RunVerdict]) -> serde_json::Value {
    serde_json::json!({
        "passed": runs.iter().all(|r| r.passed),
        "runs": runs,
    })
}
