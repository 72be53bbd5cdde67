//! Whether two results files are runs of one scenario, and what the scenario
//! each echoes says about periods.
//!
//! Two runs are of the same scenario when their names and service sets are the
//! same and their resolved scenarios (`scenario.config`) are equal except for
//! 1. keys either run set with `--set` (an override is a deliberate change of
//!    one run: `--set services.resnet.maxReplicas=4` on the local run lets every
//!    value at or under `services[resnet].maxReplicas` differ), and
//! 2. the keys in [`NOT_COMPARED`], which describe or judge a run but do not
//!    change what runs.
//!
//! The level itself, the seed given with `--seed` (recorded in `seed`, not in
//! the scenario), `--time-scale` and the file's path are not part of the
//! scenario; a different seed is noted, not refused. A results file without a
//! resolved scenario (null `config`) is compared on name and services alone,
//! with a note.

use lab_results::Results;
use serde_json::Value;
use std::collections::BTreeSet;

/// Top-level scenario keys left out of the comparison: `description` is
/// prose, `fidelity` judges the comparison itself.
pub const NOT_COMPARED: &[&str] = &["description", "fidelity"];

/// Differences listed in a refusal before the rest are counted.
const LISTED: usize = 8;

/// Why two results files are not compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("the runs are of different scenarios: `{a}` and `{b}`")]
    Names { a: String, b: String },
    #[error("the runs have different services: {}", services_text(.only_a, .only_b))]
    Services {
        only_a: Vec<String>,
        only_b: Vec<String>,
    },
    #[error(
        "the runs' scenarios differ beyond their --set overrides: {}; run both from the same \
         file, or give the difference as --set on one of them",
        differences_text(.differences, *.more)
    )]
    Config {
        /// `key path: a's value vs b's value`, the first few.
        differences: Vec<String>,
        /// How many more differences there are.
        more: usize,
    },
    #[error("{0}")]
    Options(String),
}

fn services_text(only_a: &[String], only_b: &[String]) -> String {
    let list = |v: &[String]| {
        v.iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (only_a.is_empty(), only_b.is_empty()) {
        (false, false) => format!("only a has {}; only b has {}", list(only_a), list(only_b)),
        (false, true) => format!("only a has {}", list(only_a)),
        _ => format!("only b has {}", list(only_b)),
    }
}

fn differences_text(differences: &[String], more: usize) -> String {
    let mut s = differences.join("; ");
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s
}

pub(crate) fn same_scenario(a: &Results, b: &Results) -> Result<(), Refusal> {
    if a.scenario.name != b.scenario.name {
        return Err(Refusal::Names {
            a: a.scenario.name.clone(),
            b: b.scenario.name.clone(),
        });
    }
    let names =
        |r: &Results| -> BTreeSet<String> { r.services.iter().map(|s| s.name.clone()).collect() };
    let (na, nb) = (names(a), names(b));
    if na != nb {
        return Err(Refusal::Services {
            only_a: na.difference(&nb).cloned().collect(),
            only_b: nb.difference(&na).cloned().collect(),
        });
    }
    let (ca, cb) = (&a.scenario.config, &b.scenario.config);
    if ca.is_null() || cb.is_null() {
        return Ok(());
    }
    let ignored: Vec<Vec<String>> = a
        .scenario
        .overrides
        .iter()
        .chain(&b.scenario.overrides)
        .filter_map(|o| override_path(o))
        .collect();
    let mut found = Vec::new();
    diff(
        ca,
        cb,
        &mut Vec::new(),
        &ignored_roots(&ignored),
        &mut found,
    );
    if found.is_empty() {
        return Ok(());
    }
    let more = found.len().saturating_sub(LISTED);
    found.truncate(LISTED);
    Err(Refusal::Config {
        differences: found,
        more,
    })
}

/// What a reader should know about the pair before trusting the figures.
pub(crate) fn notes(a: &Results, b: &Results) -> Vec<String> {
    let mut out = Vec::new();
    if a.seed != b.seed {
        out.push(format!(
            "the seeds differ ({} and {}): the runs saw different arrivals, so the errors \
             include sampling noise",
            a.seed, b.seed
        ));
    }
    for (side, r) in [("a", a), ("b", b)] {
        if !r.complete {
            out.push(format!(
                "run {side} is incomplete: its figures cover {:.0} s of {:.0} s",
                r.run.end_seconds, r.run.duration_seconds
            ));
        }
        if r.run.time_scale != 1.0 {
            out.push(format!(
                "run {side} was played {} times faster and read back in scenario time",
                r.run.time_scale
            ));
        }
        if r.scenario.config.is_null() {
            out.push(format!(
                "run {side} records no resolved scenario: compared on its name and services alone"
            ));
        }
    }
    if a.level != b.level
        && (a.level == lab_results::Level::Sim || b.level == lab_results::Level::Sim)
    {
        out.push(
            "goodput is counted by the simulator against every latency SLO and by the load \
             generator from the client's side; compare it with care"
                .into(),
        );
    }
    if a.run.warmup_seconds != b.run.warmup_seconds {
        out.push(format!(
            "the warm-ups differ ({} s and {} s)",
            a.run.warmup_seconds, b.run.warmup_seconds
        ));
    }
    out
}

/// `--set services[resnet].maxReplicas=4` (or `services.resnet.maxReplicas`)
/// as its key segments; None when it has no `=` (such a run never started).
fn override_path(spec: &str) -> Option<Vec<String>> {
    let (path, _) = spec.split_once('=')?;
    let mut segs = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let flush = |cur: &mut String, segs: &mut Vec<String>| {
        let s = cur.trim();
        if !s.is_empty() {
            segs.push(s.to_string());
        }
        cur.clear();
    };
    for c in path.trim().chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => quote = Some(c),
            (None, '.' | '[' | ']') => flush(&mut cur, &mut segs),
            (None, c) => cur.push(c),
        }
    }
    flush(&mut cur, &mut segs);
    (!segs.is_empty()).then_some(segs)
}

fn ignored_roots(overrides: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = NOT_COMPARED.iter().map(|k| vec![k.to_string()]).collect();
    out.extend(overrides.iter().cloned());
    out
}

/// One step down the JSON: an object key, or an array index with the
/// element's `name` (overrides may name either).
enum Step<'a> {
    Key(&'a str),
    Index(usize, Option<&'a str>),
}

impl Step<'_> {
    fn matches(&self, seg: &str) -> bool {
        match self {
            Step::Key(k) => *k == seg,
            Step::Index(i, name) => seg == i.to_string() || *name == Some(seg),
        }
    }

    fn text(&self) -> String {
        match self {
            Step::Key(k) => format!(".{k}"),
            Step::Index(_, Some(n)) => format!("[{n}]"),
            Step::Index(i, None) => format!("[{i}]"),
        }
    }
}

/// True when some ignored path is `path` or above it.
fn is_ignored(path: &[Step], ignored: &[Vec<String>]) -> bool {
    ignored.iter().any(|ig| {
        ig.len() <= path.len() && ig.iter().zip(path).all(|(seg, step)| step.matches(seg))
    })
}

fn path_text(path: &[Step]) -> String {
    let s: String = path.iter().map(Step::text).collect();
    s.strip_prefix('.').unwrap_or(&s).to_string()
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::Null => "nothing".to_string(),
        v => v.to_string(),
    };
    if s.chars().count() > 40 {
        s.chars().take(37).collect::<String>() + "..."
    } else {
        s
    }
}

fn diff<'a>(
    a: &'a Value,
    b: &'a Value,
    path: &mut Vec<Step<'a>>,
    ignored: &[Vec<String>],
    out: &mut Vec<String>,
) {
    if is_ignored(path, ignored) || a == b {
        return;
    }
    match (a, b) {
        (Value::Object(ma), Value::Object(mb)) => {
            let keys: BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
            for k in keys {
                path.push(Step::Key(k));
                let null = &Value::Null;
                diff(
                    ma.get(k).unwrap_or(null),
                    mb.get(k).unwrap_or(null),
                    path,
                    ignored,
                    out,
                );
                path.pop();
            }
        }
        (Value::Array(va), Value::Array(vb)) if va.len() == vb.len() => {
            for (i, (x, y)) in va.iter().zip(vb).enumerate() {
                let name = x.get("name").and_then(Value::as_str);
                path.push(Step::Index(i, name));
                diff(x, y, path, ignored, out);
                path.pop();
            }
        }
        (Value::Array(va), Value::Array(vb)) => out.push(format!(
            "{}: {} entries vs {}",
            path_text(path),
            va.len(),
            vb.len()
        )),
        _ => out.push(format!("{}: {} vs {}", path_text(path), short(a), short(b))),
    }
}

/// The period at which the service's replica count can change, in seconds:
/// the HPA's sync period (also the period of the HPA that KEDA generates) or
/// the KPA's decision tick. None for a fixed count or an unreadable config.
pub(crate) fn sync_period(r: &Results, service: &str) -> Option<f64> {
    let svc = r
        .scenario
        .config
        .get("services")?
        .as_array()?
        .iter()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(service))?;
    let auto = svc.get("autoscaler");
    let get = |kind: &str| auto.and_then(|a| a.get(kind)).filter(|v| !v.is_null());
    if let Some(hpa) = get("hpa") {
        return dur_at(hpa, &["controller", "syncPeriod"]).or(Some(15.0));
    }
    if let Some(kpa) = get("kpa") {
        return dur_at(kpa, &["tick-interval"]).or(Some(2.0));
    }
    if let Some(keda) = get("keda") {
        return dur_at(keda, &["controller", "syncPeriod"]).or(Some(15.0));
    }
    None
}

/// The cluster autoscaler's scan interval, in seconds (10 s by default).
pub(crate) fn scan_interval(r: &Results) -> f64 {
    dur_at(&r.scenario.config, &["cluster_autoscaler", "scan_interval"]).unwrap_or(10.0)
}

fn dur_at(v: &Value, keys: &[&str]) -> Option<f64> {
    let v = keys.iter().try_fold(v, |v, k| v.get(k))?;
    let d = match v {
        Value::String(s) => lab_units::parse_duration(s).ok()?.secs_f64(),
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    (d > 0.0).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn override_paths_read_dots_brackets_and_quotes() {
        assert_eq!(
            override_path("services[resnet].maxReplicas=4").unwrap(),
            ["services", "resnet", "maxReplicas"]
        );
        assert_eq!(
            override_path("services.0.resources.\"nvidia.com/gpu\"=2").unwrap(),
            ["services", "0", "resources", "nvidia.com/gpu"]
        );
        assert_eq!(override_path("run.seed = 3").unwrap(), ["run", "seed"]);
        assert_eq!(override_path("no equals sign"), None);
    }

    #[test]
    fn a_difference_under_an_override_is_ignored_by_index_or_name() {
        let a = serde_json::json!({"services": [{"name": "resnet", "maxReplicas": 4, "minReplicas": 1}]});
        let b = serde_json::json!({"services": [{"name": "resnet", "maxReplicas": 6, "minReplicas": 1}]});
        for o in [
            "services[resnet].maxReplicas=6",
            "services.0=x",
            "services=x",
        ] {
            let ig = ignored_roots(&[override_path(o).unwrap()]);
            let mut found = Vec::new();
            diff(&a, &b, &mut Vec::new(), &ig, &mut found);
            assert!(found.is_empty(), "{o}: {found:?}");
        }
        let ig = ignored_roots(&[override_path("services[resnet].minReplicas=2").unwrap()]);
        let mut found = Vec::new();
        diff(&a, &b, &mut Vec::new(), &ig, &mut found);
        assert_eq!(found, ["services[resnet].maxReplicas: 4 vs 6"]);
    }
}
