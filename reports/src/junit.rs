//! JUnit XML in the Ant/Jenkins shape that Jenkins, GitLab and GitHub test
//! reporters read: one `<testsuite>` per run, one `<testcase>` per SLO, a
//! `<failure>` when the SLO is missed. Kept to the strict Ant schema (required
//! `properties`, `system-out`, `system-err`, `package` and `id`; timestamps
//! without a time zone) because the lenient readers accept it too.

use crate::verdict::RunVerdict;
use std::fmt::Write as _;

pub fn render(runs: &[RunVerdict]) -> String {
    render_with(runs, &[])
}

/// One comparison's `[fidelity]` bounds as a test suite (`lab check
/// comparison.json`): a testcase per bound, a `<failure>` when it is broken.
#[derive(Debug, Clone, PartialEq)]
pub struct FidelitySuite {
    /// The file as named on the command line.
    pub source: String,
    pub scenario: String,
    /// The two levels compared, `sim vs local`.
    pub levels: String,
    pub cases: Vec<FidelityCase>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FidelityCase {
    /// `p99 (overall)`.
    pub name: String,
    /// Observed against the limit, and what was compared; `None` when it holds.
    pub failure: Option<String>,
}

/// SLO suites for the runs, then a suite per comparison's fidelity bounds.
pub fn render_with(runs: &[RunVerdict], fidelity: &[FidelitySuite]) -> String {
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for (id, run) in runs.iter().enumerate() {
        suite(&mut x, id, run);
    }
    for (i, f) in fidelity.iter().enumerate() {
        fidelity_suite(&mut x, runs.len() + i, f);
    }
    x.push_str("</testsuites>\n");
    x
}

fn fidelity_suite(x: &mut String, id: usize, f: &FidelitySuite) {
    let classname = format!("lab.fidelity.{}", token(&f.scenario));
    let failures = f.cases.iter().filter(|c| c.failure.is_some()).count();
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" package=\"lab.fidelity\" id=\"{id}\" tests=\"{}\" failures=\"{failures}\" \
         errors=\"0\" skipped=\"0\" time=\"0\" timestamp=\"1970-01-01T00:00:00\" hostname=\"localhost\">",
        attr(&format!("{} fidelity ({})", f.scenario, f.levels)),
        f.cases.len(),
    );
    x.push_str("    <properties>\n");
    for (name, value) in [("file", &f.source), ("levels", &f.levels)] {
        let _ = writeln!(
            x,
            "      <property name=\"{name}\" value=\"{}\"/>",
            attr(value)
        );
    }
    x.push_str("    </properties>\n");
    for c in &f.cases {
        let _ = write!(
            x,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
            attr(&classname),
            attr(&c.name)
        );
        match &c.failure {
            None => x.push_str("/>\n"),
            Some(why) => {
                let _ = write!(
                    x,
                    ">\n      <failure type=\"fidelity\" message=\"{}\">{}</failure>\n    </testcase>\n",
                    attr(why),
                    text(&format!("{why}\nfile: {}\n", f.source))
                );
            }
        }
    }
    x.push_str("    <system-out></system-out>\n    <system-err></system-err>\n  </testsuite>\n");
}

fn suite(x: &mut String, id: usize, run: &RunVerdict) {
    let classname = format!("lab.slo.{}.{}", token(&run.scenario), run.level.as_str());
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" package=\"lab.slo\" id=\"{id}\" tests=\"{}\" failures=\"{}\" \
         errors=\"0\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\" hostname=\"{}\">",
        attr(&run.title()),
        run.slos.len() + usize::from(!run.complete),
        run.failures() + usize::from(run.incomplete_fails),
        usize::from(!run.complete && !run.incomplete_fails),
        decimal(run.elapsed_seconds),
        timestamp(&run.started_at),
        attr(if run.host.trim().is_empty() {
            "localhost"
        } else {
            &run.host
        }),
    );
    x.push_str("    <properties>\n");
    let props = [
        ("file", run.source.clone()),
        ("scenario", run.scenario.clone()),
        ("level", run.level.as_str().to_string()),
        ("seed", run.seed.to_string()),
        ("complete", run.complete.to_string()),
        ("duration_seconds", decimal(run.duration_seconds)),
        ("end_seconds", decimal(run.end_seconds)),
    ];
    for (name, value) in props {
        let _ = writeln!(
            x,
            "      <property name=\"{name}\" value=\"{}\"/>",
            attr(&value)
        );
    }
    x.push_str("    </properties>\n");
    // An interrupted run is a test of its own, so CI shows why it failed.
    if !run.complete {
        let _ = write!(
            x,
            "    <testcase classname=\"{}\" name=\"run complete\" time=\"0\"",
            attr(&classname)
        );
        if run.incomplete_fails {
            let _ = write!(
                x,
                ">\n      <failure type=\"incomplete\" message=\"{}\">{}</failure>\n    </testcase>\n",
                attr(&format!(
                    "the run is incomplete: it stopped at {} of {}",
                    decimal(run.end_seconds),
                    decimal(run.duration_seconds)
                )),
                text("interrupted or cut short; --allow-incomplete judges its partial figures\n")
            );
        } else {
            x.push_str(">\n      <skipped message=\"incomplete run allowed (--allow-incomplete)\"/>\n    </testcase>\n");
        }
    }
    for s in &run.slos {
        let _ = write!(
            x,
            "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
            attr(&classname),
            attr(&s.slo.name)
        );
        if s.slo.passed {
            x.push_str("/>\n");
            continue;
        }
        let no_data = s.slo.verdict() == lab_results::SloVerdict::NoData;
        let detail = format!(
            "{}: {}\nscope: {}\nmetric: {:?}\nobserved: {}\nthreshold: {}\n{}file: {}\n",
            if no_data {
                "SLO has no data"
            } else {
                "SLO missed"
            },
            s.slo.name,
            s.scope(),
            s.slo.metric,
            s.observed_text(),
            s.threshold_text(),
            s.slo
                .reason
                .as_ref()
                .map(|r| format!("reason: {r}\n"))
                .unwrap_or_default(),
            run.source,
        );
        let _ = write!(
            x,
            ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>\n",
            if no_data { "no_data" } else { "slo" },
            attr(&s.failure_message()),
            text(&detail)
        );
    }
    let _ = writeln!(
        x,
        "    <system-out>{}</system-out>\n    <system-err></system-err>\n  </testsuite>",
        text(&run.to_text())
    );
}

/// Ant wants `YYYY-MM-DDTHH:MM:SS` with no fraction or zone; results files
/// carry RFC 3339. Anything unreadable becomes the epoch rather than an
/// invalid document.
fn timestamp(rfc3339: &str) -> String {
    let s = rfc3339.trim();
    let ok = s.len() >= 19
        && s.is_char_boundary(19)
        && s[..19].bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            10 => b == b'T' || b == b't' || b == b' ',
            13 | 16 => b == b':',
            _ => b.is_ascii_digit(),
        });
    if ok {
        let mut t = s[..19].to_string();
        t.replace_range(10..11, "T");
        t
    } else {
        "1970-01-01T00:00:00".into()
    }
}

fn decimal(v: f64) -> String {
    if v.is_finite() && v >= 0.0 {
        format!("{v:.3}")
    } else {
        "0".into()
    }
}

fn token(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join("-")
}

/// Escapes for an attribute value; drops characters XML 1.0 cannot carry.
pub(crate) fn attr(s: &str) -> String {
    escape(s, true)
}

pub(crate) fn text(s: &str) -> String {
    escape(s, false)
}

fn escape(s: &str, in_attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if in_attr => out.push_str("&quot;"),
            '\'' if in_attr => out.push_str("&apos;"),
            '\n' if in_attr => out.push_str("&#10;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_fidelity_bound_is_a_failed_testcase() {
        let suite = FidelitySuite {
            source: "comparison.json".into(),
            scenario: "steady".into(),
            levels: "sim vs local".into(),
            cases: vec![
                FidelityCase {
                    name: "p50 (overall)".into(),
                    failure: None,
                },
                FidelityCase {
                    name: "p99 (overall)".into(),
                    failure: Some("observed 52.9 % > limit 20.0 %".into()),
                },
            ],
        };
        let x = render_with(&[], &[suite]);
        assert!(x.contains("tests=\"2\" failures=\"1\""), "{x}");
        assert!(x.contains("name=\"p50 (overall)\" time=\"0\"/>"), "{x}");
        assert!(
            x.contains("<failure type=\"fidelity\" message=\"observed 52.9 % &gt; limit 20.0 %\">"),
            "{x}"
        );
    }

    #[test]
    fn timestamps_lose_zone_and_fraction() {
        assert_eq!(timestamp("2026-11-24T15:00:01.123Z"), "2026-11-24T15:00:01");
        assert_eq!(
            timestamp("2026-11-24 15:00:01+02:00"),
            "2026-11-24T15:00:01"
        );
        assert_eq!(timestamp(""), "1970-01-01T00:00:00");
        assert_eq!(timestamp("yesterday"), "1970-01-01T00:00:00");
    }

    #[test]
    fn escaping_keeps_the_document_well_formed() {
        assert_eq!(
            attr("p99 < 250ms & \"x\"\n"),
            "p99 &lt; 250ms &amp; &quot;x&quot;&#10;"
        );
        assert_eq!(text("a\u{1}b<c"), "ab&lt;c");
    }
}
