//! `lab check`: SLOs re-judged from a results file's own figures, and the
//! verdict as terminal text or JSON.

use crate::format;
use lab_results::{recheck, Level, Results, SloResult};
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

    pub fn observed_text(&self) -> String {
        if self.slo.observed.is_finite() {
            format::value(self.slo.observed, &self.slo.unit)
        } else {
            match &self.slo.service {
                Some(s) => format!("n/a (no figures for service `{s}`)"),
                None => "n/a".into(),
            }
        }
    }

    pub fn threshold_text(&self) -> String {
        format::bound(self.slo.bound, self.slo.threshold, &self.slo.unit)
    }

    /// `observed 312 ms, threshold <= 250 ms`.
    pub fn failure_message(&self) -> String {
        format!(
            "observed {}, threshold {}",
            self.observed_text(),
            format::bound_ascii(self.slo.bound, self.slo.threshold, &self.slo.unit)
        )
    }
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
    pub passed: bool,
    pub slos: Vec<SloVerdict>,
}

impl RunVerdict {
    pub fn judge(source: &str, r: &Results) -> RunVerdict {
        let slos: Vec<SloVerdict> = recheck(r)
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
            passed: slos.iter().all(|s| s.slo.passed),
            slos,
        }
    }

    pub fn failures(&self) -> usize {
        self.slos.iter().filter(|s| !s.slo.passed).count()
    }

    /// `spike-200rps (sim)`.
    pub fn title(&self) -> String {
        format!("{} ({})", self.scenario, self.level.as_str())
    }

    /// `PASS: all 3 SLOs met`, `FAIL: 1 of 3 SLOs missed`.
    pub fn headline(&self) -> String {
        let n = self.slos.len();
        match (self.passed, n) {
            (_, 0) => "PASS: no SLOs recorded, nothing to judge".into(),
            (true, 1) => "PASS: the SLO is met".into(),
            (true, _) => format!("PASS: all {n} SLOs met"),
            (false, _) => format!("FAIL: {} of {n} SLOs missed", self.failures()),
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
        for (s, o) in self.slos.iter().zip(&obs) {
            out.push_str(&format!(
                "  {}  {:name_w$}  observed {:obs_w$}  threshold {}\n",
                if s.slo.passed { "PASS" } else { "FAIL" },
                s.slo.name,
                o,
                s.threshold_text(),
            ));
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
