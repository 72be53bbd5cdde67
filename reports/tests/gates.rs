//! Gates that cannot pass by accident: an SLO with nothing to judge, a warning
//! about its service, or an interrupted run fails the verdict `lab check`,
//! JUnit and the Markdown summary give.

mod common;

use common::{spike_run, Spike};
use lab_reports::{junit, markdown, CheckPolicy, RunVerdict};
use lab_results::{
    evaluate_slos, BoundValue, Judging, LatencySummary, Results, SloMetric, SloSpec, SloVerdict,
    WarningKind,
};

fn passing_run() -> Results {
    let r = spike_run(&Spike {
        spike_factor: 1.0,
        p99_slo_seconds: 2.0,
        ..Spike::default()
    });
    assert!(
        r.passed(),
        "the fixture passes before any change: {:?}",
        r.slo
    );
    r
}

fn slo(metric: SloMetric, service: Option<&str>, max: f64) -> SloSpec {
    SloSpec {
        name: None,
        metric,
        service: service.map(str::to_string),
        max: Some(BoundValue::Number(max)),
        min: None,
    }
}

/// `bert-small` as if it completed nothing after warm-up.
fn without_completions(r: &mut Results, service: &str) {
    let s = r.services.iter_mut().find(|s| s.name == service).unwrap();
    s.latency_seconds = LatencySummary::default();
    s.requests.failed = s.requests.completed;
    s.requests.completed = 0;
    s.requests.failed_by_reason = [("activator_overflow".to_string(), s.requests.failed)].into();
}

fn without_traffic(r: &mut Results, service: &str) {
    let s = r.services.iter_mut().find(|s| s.name == service).unwrap();
    s.latency_seconds = LatencySummary::default();
    s.requests = Default::default();
    s.error_rate = 0.0;
}

#[test]
fn a_latency_slo_on_a_service_that_completed_nothing_has_no_data_and_fails() {
    let mut r = passing_run();
    without_completions(&mut r, "bert-small");
    let specs = [slo(SloMetric::P99, Some("bert-small"), 0.05)];
    evaluate_slos(&specs, &mut r, Judging::default());
    let s = &r.slo[0];
    assert_eq!(s.verdict(), SloVerdict::NoData);
    assert!(!s.passed);
    assert_eq!(s.observed, None);
    assert!(
        s.reason
            .as_deref()
            .unwrap()
            .contains("no request of `bert-small` completed"),
        "{:?}",
        s.reason
    );
    let v = RunVerdict::judge("r.json", &r);
    assert!(!v.passed);
    let text = v.to_text();
    assert!(
        text.contains("NO DATA  p99 latency <= 50ms (bert-small)"),
        "{text}"
    );
    assert!(text.contains("observed no data"), "{text}");
    assert!(
        text.contains("verdict: FAIL: 1 of 1 SLOs with no data"),
        "{text}"
    );
    // Allowing warnings does not make missing data pass.
    let lenient = CheckPolicy {
        judging: Judging {
            allow_warnings: true,
        },
        allow_incomplete: true,
    };
    assert!(!RunVerdict::judge_with("r.json", &r, lenient).passed);
}

#[test]
fn error_rate_and_cold_start_slos_without_traffic_have_no_data() {
    let mut r = passing_run();
    without_traffic(&mut r, "bert-small");
    let specs = [
        slo(SloMetric::ErrorRate, Some("bert-small"), 0.01),
        slo(SloMetric::ColdStartRequests, Some("bert-small"), 100.0),
        slo(SloMetric::GoodputRps, Some("bert-small"), 1e9),
        slo(SloMetric::ErrorRate, Some("resnet50"), 0.5),
    ];
    evaluate_slos(&specs, &mut r, Judging::default());
    let verdicts: Vec<SloVerdict> = r.slo.iter().map(|s| s.verdict()).collect();
    assert_eq!(
        verdicts,
        [
            SloVerdict::NoData,
            SloVerdict::NoData,
            SloVerdict::NoData,
            SloVerdict::Pass
        ]
    );
    assert_eq!(
        r.slo[0].reason.as_deref(),
        Some("`bert-small` received no request")
    );
    // The verdict survives the round trip through results.json and `lab check`.
    let back: Results = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    let v = RunVerdict::judge("r.json", &back);
    assert_eq!(v.failures(), 3);
    assert_eq!(v.slos[0].slo.verdict(), SloVerdict::NoData);
}

#[test]
fn a_percentile_on_too_few_requests_fails_with_a_warning() {
    let mut r = passing_run();
    let bert = r
        .services
        .iter_mut()
        .find(|s| s.name == "bert-small")
        .unwrap();
    bert.latency_seconds.count = 500;
    let specs = [
        slo(SloMetric::P999, Some("bert-small"), 10.0),
        slo(SloMetric::P99, Some("bert-small"), 10.0),
        slo(SloMetric::MaxLatency, Some("bert-small"), 10.0),
    ];
    evaluate_slos(&specs, &mut r, Judging::default());
    assert_eq!(r.slo[0].verdict(), SloVerdict::Fail, "p99.9 on 500");
    assert!(
        r.slo[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("needs at least 1000"),
        "{:?}",
        r.slo[0].reason
    );
    assert_eq!(r.slo[1].verdict(), SloVerdict::Pass, "p99 on 500 is fine");
    assert_eq!(r.slo[2].verdict(), SloVerdict::Pass, "max needs no minimum");
    let w: Vec<_> = r
        .warnings
        .iter()
        .filter(|w| w.kind == WarningKind::TooFewSamples)
        .collect();
    assert_eq!(w.len(), 1, "{:?}", r.warnings);
    assert_eq!(w[0].service.as_deref(), Some("bert-small"));
    // Judged again (as `lab check` does), the same verdict.
    assert!(!RunVerdict::judge("r.json", &r).passed);
    let mut lenient = r.clone();
    evaluate_slos(
        &specs,
        &mut lenient,
        Judging {
            allow_warnings: true,
        },
    );
    assert!(lenient.passed());
}

#[test]
fn a_warning_fails_the_slos_of_its_service_and_run_wide_ones_unless_allowed() {
    let mut r = passing_run();
    r.warn(
        WarningKind::Unschedulable,
        Some("bert-small"),
        "1 pod(s) of `bert-small` never scheduled".into(),
    );
    let specs = [
        slo(SloMetric::P99, Some("bert-small"), 10.0),
        slo(SloMetric::P99, Some("resnet50"), 10.0),
        slo(SloMetric::MonthlyCostUsd, None, 1e9),
    ];
    evaluate_slos(&specs, &mut r, Judging::default());
    let verdicts: Vec<bool> = r.slo.iter().map(|s| s.passed).collect();
    assert_eq!(verdicts, [false, true, false]);
    assert!(
        r.slo[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("never scheduled"),
        "{:?}",
        r.slo[0].reason
    );
    assert!(r.slo[0].observed.is_some(), "the figure is still reported");
    let v = RunVerdict::judge("r.json", &r);
    assert_eq!(v.failures(), 2);
    assert!(v.to_text().contains("warning [unschedulable]"));
    let allowed = CheckPolicy {
        judging: Judging {
            allow_warnings: true,
        },
        allow_incomplete: false,
    };
    assert!(RunVerdict::judge_with("r.json", &r, allowed).passed);
    assert!(markdown::render(&[v]).contains("**warning** (unschedulable)"));
}

#[test]
fn an_incomplete_run_fails_the_check_unless_allowed_and_junit_says_so() {
    let mut r = passing_run();
    r.complete = false;
    r.run.end_seconds = r.run.duration_seconds / 2.0;
    let v = RunVerdict::judge("r.json", &r);
    assert!(!v.passed);
    assert!(
        v.slos.iter().all(|s| s.slo.passed),
        "the SLOs themselves pass"
    );
    let text = v.to_text();
    assert!(
        text.contains("verdict: FAIL: the run is incomplete"),
        "{text}"
    );
    let xml = junit::render(std::slice::from_ref(&v));
    assert!(xml.contains("name=\"run complete\""), "{xml}");
    assert!(xml.contains("<failure type=\"incomplete\""), "{xml}");
    assert!(xml.contains("failures=\"1\""), "{xml}");

    let allowed = CheckPolicy {
        allow_incomplete: true,
        ..CheckPolicy::default()
    };
    let v = RunVerdict::judge_with("r.json", &r, allowed);
    assert!(v.passed);
    let xml = junit::render(&[v]);
    assert!(
        xml.contains("<skipped message=\"incomplete run allowed"),
        "{xml}"
    );
    assert!(
        xml.contains("failures=\"0\" errors=\"0\" skipped=\"1\""),
        "{xml}"
    );
}

#[test]
fn files_of_schema_version_1_still_read_with_their_verdicts() {
    let r = passing_run();
    let mut v: serde_json::Value = serde_json::to_value(&r).unwrap();
    v["schema_version"] = 1.into();
    v.as_object_mut().unwrap().remove("warnings");
    for s in v["slo"].as_array_mut().unwrap() {
        s.as_object_mut().unwrap().remove("verdict");
    }
    let text = serde_json::to_string(&v).unwrap();
    let old = lab_reports::parse_results(std::path::Path::new("v1.json"), &text).unwrap();
    assert!(old.warnings.is_empty());
    assert!(old.slo.iter().all(|s| s.verdict() == SloVerdict::Pass));
    assert!(RunVerdict::judge("v1.json", &old).passed);
}

#[test]
fn junit_for_incomplete_and_no_data_runs_is_schema_valid_and_read_as_failures() {
    let mut r = passing_run();
    r.complete = false;
    without_completions(&mut r, "bert-small");
    let specs = [
        slo(SloMetric::P99, Some("bert-small"), 0.05),
        slo(SloMetric::P99, Some("resnet50"), 10.0),
    ];
    evaluate_slos(&specs, &mut r, Judging::default());
    let mut allowed = r.clone();
    allowed.scenario.name = "allowed".into();
    let runs = [
        RunVerdict::judge("cut.json", &r),
        RunVerdict::judge_with(
            "allowed.json",
            &allowed,
            CheckPolicy {
                allow_incomplete: true,
                ..CheckPolicy::default()
            },
        ),
    ];
    let seen = common::junit_as_ci_reads_it(&junit::render(&runs));
    let cut = &seen["suites"][0];
    assert_eq!(cut["tests"], 3, "two SLOs and the run itself");
    assert_eq!(cut["failures"], 2, "the incomplete run and the no-data SLO");
    let cases = cut["cases"].as_array().unwrap();
    assert_eq!(cases[0]["name"], "run complete");
    assert_eq!(cases[0]["type"], "incomplete");
    assert_eq!(cases[1]["type"], "no_data");
    assert!(cases[1]["message"]
        .as_str()
        .unwrap()
        .starts_with("observed no data"));
    assert_eq!(cases[2]["passed"], true);
    let allowed = &seen["suites"][1];
    assert_eq!(allowed["failures"], 1, "only the no-data SLO");
}
