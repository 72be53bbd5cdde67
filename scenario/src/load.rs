//! Reading a scenario: overrides, parsing with key paths and positions, loading
//! the files it references (traces, calibration profiles, model files), then
//! validation.
//! File reads happen here and nowhere else in the crate.

use crate::diagnostic::{line_col, plain_words, Diagnostic, ScenarioError};
use crate::spec::Scenario;
use crate::typed::{first_line, typed_parse};
use crate::validate::{placement_problems, validate, KeyPath, Seg};
use lab_gpu::{BatchPoint, CalibrationProfile, LatencyProfile, CALIBRATION_FORMAT};
use lab_traffic::{parse_rate_csv, parse_trace_csv, Phase, RateSamples, TraceOffsets};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Reads, overrides, parses and validates the scenario at `path`.
pub fn load(path: &Path, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    read_and_parse(path, overrides, Checks::Run)
}

/// Everything [`load`] checks, and also that the node pools at `max_nodes` hold
/// every service's `minReplicas` (`lab validate`; `lab run` goes on instead and
/// records the pods it could not schedule as a warning).
pub fn load_checked(path: &Path, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    read_and_parse(path, overrides, Checks::Placement)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Checks {
    Run,
    Placement,
}

fn read_and_parse(
    path: &Path,
    overrides: &[String],
    checks: Checks,
) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        diagnostics: vec![Diagnostic {
            file: file.clone(),
            line: None,
            column: None,
            key: String::new(),
            message: format!("cannot read the scenario: {e}"),
        }],
    })?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse_with(&text, &file, &base, overrides, checks)
}

/// Parses scenario text; `base_dir` resolves the relative paths it names.
pub fn parse(
    text: &str,
    file: &str,
    base_dir: &Path,
    overrides: &[String],
) -> Result<Scenario, ScenarioError> {
    parse_with(text, file, base_dir, overrides, Checks::Run)
}

/// Where a problem came from: a value of the file (its line and column in the
/// text as written) or a `--set` (named as given).
struct Origin<'a> {
    file: &'a str,
    text: &'a str,
    located: toml_edit::Document<String>,
    /// Each applied override: the key path it set and the override as given.
    overrides: Vec<(KeyPath, String)>,
}

impl Origin<'_> {
    fn diagnostic(&self, path: &[Seg], at_key: bool, message: String) -> Diagnostic {
        let key = KeyPath(path.to_vec()).to_string();
        let set_here = self
            .overrides
            .iter()
            .rev()
            .find(|(o, _)| path.starts_with(&o.0));
        if let Some((set, spec)) = set_here {
            return Diagnostic {
                file: format!("--set {spec}"),
                line: None,
                column: None,
                key: if set.0 == path { String::new() } else { key },
                message,
            };
        }
        let pos = (!path.is_empty())
            .then(|| locate(self.located.as_table(), path, at_key))
            .flatten()
            .map(|off| line_col(self.text, off));
        // A value of the file judged together with an override inside it.
        let inside: Vec<&str> = self
            .overrides
            .iter()
            .filter(|(o, _)| !path.is_empty() && o.0.starts_with(path))
            .map(|(_, spec)| spec.as_str())
            .collect();
        let message = if inside.is_empty() {
            message
        } else {
            format!("{message} (with --set {})", inside.join(", --set "))
        };
        Diagnostic {
            file: self.file.to_string(),
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            key,
            message,
        }
    }
}

fn parse_with(
    text: &str,
    file: &str,
    base_dir: &Path,
    overrides: &[String],
    checks: Checks,
) -> Result<Scenario, ScenarioError> {
    // 1. The file as written: positions are always computed on this text.
    let located = toml_edit::Document::parse(text.to_string()).map_err(|e| {
        let pos = e.span().map(|s| line_col(text, s.start));
        ScenarioError {
            diagnostics: vec![Diagnostic {
                file: file.to_string(),
                line: pos.map(|p| p.0),
                column: pos.map(|p| p.1),
                key: String::new(),
                message: first_line(e.message()),
            }],
        }
    })?;
    let mut doc = located.clone().into_mut();
    let mut origin = Origin {
        file,
        text,
        located,
        overrides: Vec::new(),
    };
    // 2. Overrides, applied to the document; each remembers the key path it set.
    let mut diagnostics = Vec::new();
    for spec in overrides {
        match crate::overrides::apply(&mut doc, spec) {
            Ok(path) => origin.overrides.push((path, spec.clone())),
            Err(message) => diagnostics.push(Diagnostic {
                file: format!("--set {spec}"),
                line: None,
                column: None,
                key: String::new(),
                message,
            }),
        }
    }

    // 3. Typed parse, every structural problem collected.
    let service = first_service(&origin.located);
    let hint = |parent: &[Seg], key: &str| missing_hint(service.as_deref(), parent, key);
    let unparsed = doc.clone();
    let typed = typed_parse(&mut doc, &hint, true);
    diagnostics.extend(
        typed
            .problems
            .iter()
            .map(|p| origin.diagnostic(&p.path, p.at_key, p.message.clone())),
    );
    // Read as written: overrides in the order given, then the file top to bottom.
    diagnostics.sort_by_key(|d| {
        let set = overrides
            .iter()
            .position(|o| d.file == format!("--set {o}"));
        (set.unwrap_or(usize::MAX), d.line, d.column)
    });
    let Some(mut scenario) = typed.scenario else {
        return Err(ScenarioError { diagnostics });
    };

    // 4. Files the scenario references, then every semantic problem at once.
    //    With stand-ins for bad values, only the problems found with two
    //    different sets of stand-ins are real ones, less those about the
    //    stand-ins themselves.
    let semantic = |s: &mut Scenario, neutralised: &[Vec<Seg>]| {
        let mut problems = load_referenced_files(s, base_dir);
        problems.extend(validate(s));
        if checks == Checks::Placement {
            problems.extend(placement_problems(s));
        }
        problems.retain(|(path, _)| {
            // At, under or around a stand-in: a judgement of the stand-in.
            !neutralised
                .iter()
                .any(|n| path.0.starts_with(n) || (!path.0.is_empty() && n.starts_with(&path.0)))
        });
        problems
    };
    if !typed.missing_section {
        let mut problems = semantic(&mut scenario, &typed.neutralised);
        if !typed.problems.is_empty() {
            let mut other_doc = unparsed;
            let other = typed_parse(&mut other_doc, &hint, false);
            let confirmed = match other.scenario {
                Some(mut s) => semantic(&mut s, &other.neutralised),
                None => Vec::new(),
            };
            problems.retain(|p| confirmed.contains(p));
        }
        diagnostics.extend(
            problems
                .into_iter()
                .map(|(path, message)| origin.diagnostic(&path.0, false, plain_words(&message))),
        );
    }
    if diagnostics.is_empty() {
        Ok(scenario)
    } else {
        Err(ScenarioError { diagnostics })
    }
}

/// The file's first service, for the examples in hints.
fn first_service(doc: &toml_edit::Document<String>) -> Option<String> {
    doc.get("services")?
        .as_array_of_tables()?
        .get(0)?
        .get("name")?
        .as_str()
        .map(str::to_string)
}

/// What to add for a missing required key, in the file's own syntax.
fn missing_hint(service: Option<&str>, parent: &[Seg], key: &str) -> String {
    let service = service.unwrap_or("resnet");
    let parent_key = parent.iter().rev().find_map(|s| match s {
        Seg::Key(k) => Some(k.as_str()),
        Seg::Index(_) => None,
    });
    match (parent.len(), parent_key, key) {
        (0, _, "traffic") => format!(
            "missing [[traffic]]: add a traffic section, e.g. [[traffic]] service = \"{service}\" phases = [{{ kind = \"constant\", rate = 100, duration = \"10m\" }}]"
        ),
        (0, _, "services") => "missing [[services]]: add a service, e.g. [[services]] name = \"resnet\" resources = { cpu = \"2\" } with its [[services.latency]] gpu = \"cpu\" batch_latency = { \"1\" = \"20ms\" }".into(),
        (0, _, "name") => "missing `name`: add name = \"...\" at the top of the file, before any [section]".into(),
        (_, Some("services"), "latency") => "missing [[services.latency]]: add the service time per batch size on the pool's GPU, e.g. [[services.latency]] gpu = \"T4\" batch_latency = { \"1\" = \"5ms\", \"8\" = \"12ms\" }".into(),
        (_, Some("traffic"), "phases") => "missing `phases`: add e.g. phases = [{ kind = \"constant\", rate = 100, duration = \"10m\" }]".into(),
        (_, Some("node_pools"), "max_nodes") => "missing `max_nodes`: add the most nodes the cluster autoscaler may run, e.g. max_nodes = 4".into(),
        (_, Some("node_pools"), "price_per_hour") => "missing `price_per_hour`: add the price of one node per hour in USD, e.g. price_per_hour = 0.53".into(),
        (_, Some("phases"), "kind") => "missing `kind`: add the phase's kind (constant, ramp, spike, diurnal, idle, trace or series)".into(),
        (_, Some("arrivals"), "cv") => "missing `cv`: process = \"gamma\" needs the gaps' coefficient of variation, e.g. { process = \"gamma\", cv = 2.0 }".into(),
        _ => format!("missing `{key}`"),
    }
}

/// A CSV a phase names, relative to the scenario, read and parsed; the error
/// names the file.
fn read_csv<T, E: std::fmt::Display>(
    base: &Path,
    file: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, String> {
    let path = resolve(base, file);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn load_referenced_files(s: &mut Scenario, base: &Path) -> Vec<(KeyPath, String)> {
    let mut problems = Vec::new();
    for (i, stream) in s.traffic.iter_mut().enumerate() {
        for (j, phase) in stream.phases.iter_mut().enumerate() {
            let at = || {
                KeyPath::new()
                    .key("traffic")
                    .index(i)
                    .key("phases")
                    .index(j)
                    .key("file")
            };
            if let Phase::Trace { file, offsets, .. } = phase {
                match read_csv(base, file, parse_trace_csv) {
                    Ok(o) => *offsets = TraceOffsets(Arc::new(o)),
                    Err(msg) => problems.push((at(), msg)),
                }
            }
            if let Phase::Series {
                file: Some(file),
                loaded,
                ..
            } = phase
            {
                match read_csv(base, file, parse_rate_csv) {
                    Ok(samples) => *loaded = RateSamples(Arc::new(samples)),
                    Err(msg) => problems.push((at(), msg)),
                }
            }
        }
    }
    for (i, svc) in s.services.iter_mut().enumerate() {
        if let Some(file) = &svc.model_file {
            let at = KeyPath::new().key("services").index(i).key("modelFile");
            match resolve_model_file(base, file) {
                Ok(path) => svc.model_path = Some(path),
                Err(msg) => problems.push((at, msg)),
            }
        }
        let version_specs = svc
            .versions
            .iter_mut()
            .enumerate()
            .filter_map(|(v, ver)| ver.latency.as_mut().map(|l| (Some(v), l)));
        let mut all: Vec<(Option<usize>, &mut Vec<crate::spec::LatencySpec>)> =
            vec![(None, &mut svc.latency)];
        all.extend(version_specs);
        for (version, specs) in all {
            for (j, spec) in specs.iter_mut().enumerate() {
                let mut at = KeyPath::new().key("services").index(i);
                if let Some(v) = version {
                    at = at.key("versions").index(v);
                }
                let at = at.key("latency").index(j);
                match resolve_latency(spec, base) {
                    Ok(p) => spec.resolved = p,
                    Err((field, msg)) => problems.push((at.key(field), msg)),
                }
            }
        }
    }
    problems
}

fn resolve(base: &Path, file: &str) -> PathBuf {
    let p = Path::new(file);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// The `.onnx` file a service's `modelFile` names, which must be a readable file.
fn resolve_model_file(base: &Path, file: &str) -> Result<PathBuf, String> {
    let path = resolve(base, file);
    let fix = "give the path of an .onnx file relative to the scenario file, or leave `modelFile` out to emulate the service from its latency";
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        Ok(_) => Err(format!("{} is not a file; {fix}", path.display())),
        Err(e) => Err(format!("cannot read {}: {e}; {fix}", path.display())),
    }
}

/// Turns one `[[services.latency]]` entry into a profile, reading its file if any.
fn resolve_latency(
    spec: &crate::spec::LatencySpec,
    base: &Path,
) -> Result<Option<LatencyProfile>, (&'static str, String)> {
    match (&spec.profile, spec.batch_latency.is_empty()) {
        (Some(_), false) => Err((
            "profile",
            "give either `profile` or `batch_latency`, not both".into(),
        )),
        (None, true) => Err((
            "batch_latency",
            "needs `batch_latency = { \"1\" = \"5ms\", ... }` or `profile = \"file.json\"`".into(),
        )),
        (Some(file), true) => {
            let path = resolve(base, file);
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ("profile", format!("cannot read {}: {e}", path.display())))?;
            let cal: CalibrationProfile = serde_json::from_str(&text).map_err(|e| {
                (
                    "profile",
                    format!("{} is not a calibration profile: {e}", path.display()),
                )
            })?;
            if cal.format != CALIBRATION_FORMAT {
                return Err((
                    "profile",
                    format!(
                        "{} has format `{}`, expected `{CALIBRATION_FORMAT}`",
                        path.display(),
                        cal.format
                    ),
                ));
            }
            let mut p = cal.to_latency_profile(spec.distribution);
            if let Some(gpu) = &spec.gpu {
                p.gpu = gpu.clone();
            }
            Ok(Some(p))
        }
        (None, false) => {
            let mut points = Vec::new();
            for (k, v) in &spec.batch_latency {
                let batch: u32 = k.parse().ok().filter(|b| *b > 0).ok_or((
                    "batch_latency",
                    format!("`{k}` is not a batch size (keys are whole numbers from 1)"),
                ))?;
                if v.0 == 0 {
                    return Err(("batch_latency", format!("batch size {k} has zero latency")));
                }
                points.push(BatchPoint {
                    batch_size: batch,
                    seconds: v.secs_f64(),
                });
            }
            points.sort_by_key(|p| p.batch_size);
            let gpu = spec.gpu.clone().ok_or((
                "gpu",
                "inline latency needs the GPU type it was measured on (`gpu = \"T4\"`, or `cpu`)"
                    .to_string(),
            ))?;
            Ok(Some(LatencyProfile {
                gpu,
                points,
                distribution: spec.distribution.unwrap_or_default(),
            }))
        }
    }
}

/// Byte offset of the key (`at_key`) or value at `path` in the file as written,
/// or of its nearest enclosing item when the path is not in the file.
fn locate(root: &toml_edit::Table, path: &[Seg], at_key: bool) -> Option<usize> {
    use toml_edit::{Item, TableLike, Value};
    enum Node<'a> {
        Item(&'a Item),
        Value(&'a Value),
        Table(&'a toml_edit::Table),
    }
    let start = |n: &Node| match n {
        Node::Item(i) => i.span(),
        Node::Value(v) => v.span(),
        Node::Table(t) => t.span(),
    };
    let mut node = Node::Table(root);
    let mut best = None;
    for (depth, seg) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        let next = match (&node, seg) {
            (Node::Item(Item::ArrayOfTables(a)), Seg::Index(i)) => a.get(*i).map(Node::Table),
            (Node::Item(Item::Value(Value::Array(a))), Seg::Index(i))
            | (Node::Value(Value::Array(a)), Seg::Index(i)) => a.get(*i).map(Node::Value),
            (n, Seg::Key(k)) => {
                let table: Option<&dyn TableLike> = match n {
                    Node::Item(i) => i.as_table_like(),
                    Node::Value(v) => v.as_inline_table().map(|t| t as &dyn TableLike),
                    Node::Table(t) => Some(*t as &dyn TableLike),
                };
                match table.and_then(|t| t.get_key_value(k)) {
                    Some((key, item)) => {
                        if let Some(span) = key.span() {
                            if at_key && last {
                                return Some(span.start);
                            }
                            best = Some(span.start);
                        }
                        Some(Node::Item(item))
                    }
                    None => None,
                }
            }
            _ => None,
        };
        let Some(next) = next else { break };
        if let Some(span) = start(&next) {
            best = Some(span.start);
        }
        node = next;
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(model_file: &str) -> String {
        format!(
            r#"name = "m"
[[services]]
name = "mlp"
modelFile = "{model_file}"
resources = {{ cpu = "1" }}
[[services.latency]]
gpu = "cpu"
batch_latency = {{ "1" = "5ms" }}
[[traffic]]
phases = [{{ kind = "constant", rate = 1, duration = "10s" }}]
[[node_pools]]
name = "cpu"
cpu = "8"
memory = "32Gi"
max_nodes = 1
price_per_hour = 0.2
"#
        )
    }

    #[test]
    fn a_model_file_resolves_next_to_the_scenario() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("models")).unwrap();
        std::fs::write(dir.path().join("models/mlp.onnx"), b"onnx").unwrap();
        let s = parse(&scenario("models/mlp.onnx"), "s.toml", dir.path(), &[]).unwrap();
        assert_eq!(
            s.services[0].model_path.as_deref(),
            Some(dir.path().join("models/mlp.onnx").as_path())
        );
        // Absent, nothing is resolved.
        let text = scenario("x.onnx").replace("modelFile = \"x.onnx\"\n", "");
        let s = parse(&text, "s.toml", dir.path(), &[]).unwrap();
        assert_eq!(s.services[0].model_path, None);
    }

    #[test]
    fn a_missing_model_file_names_the_file_the_key_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let e = parse(&scenario("models/gone.onnx"), "s.toml", dir.path(), &[]).unwrap_err();
        assert_eq!(e.diagnostics.len(), 1, "{e}");
        let d = &e.diagnostics[0];
        assert_eq!(d.file, "s.toml");
        assert_eq!(d.key, "services[0].modelFile");
        assert_eq!(d.line, Some(4), "{d}");
        assert!(d.message.contains("gone.onnx"), "{d}");
        assert!(d.message.contains("relative to the scenario file"), "{d}");
    }

    #[test]
    fn a_model_file_that_is_not_onnx_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("model.pt"), b"torch").unwrap();
        let e = parse(&scenario("model.pt"), "s.toml", dir.path(), &[]).unwrap_err();
        assert_eq!(e.diagnostics.len(), 1, "{e}");
        assert_eq!(e.diagnostics[0].key, "services[0].modelFile");
        assert!(e.diagnostics[0].message.contains(".onnx"), "{e}");
    }
}
