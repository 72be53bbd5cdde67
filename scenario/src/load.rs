//! Reading a scenario: overrides, parsing with key paths and positions, loading
//! the files it references (traces, calibration profiles), then validation.
//! File reads happen here and nowhere else in the crate.

use crate::diagnostic::{line_col, suggest, Diagnostic, ScenarioError};
use crate::spec::Scenario;
use crate::validate::{validate, KeyPath, Seg};
use lab_gpu::{BatchPoint, CalibrationProfile, LatencyProfile, CALIBRATION_FORMAT};
use lab_traffic::{parse_trace_csv, Phase, TraceOffsets};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Reads, overrides, parses and validates the scenario at `path`.
pub fn load(path: &Path, overrides: &[String]) -> Result<Scenario, ScenarioError> {
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
    parse(&text, &file, &base, overrides)
}

/// Parses scenario text; `base_dir` resolves the relative paths it names.
pub fn parse(
    text: &str,
    file: &str,
    base_dir: &Path,
    overrides: &[String],
) -> Result<Scenario, ScenarioError> {
    let diag = |line: Option<(usize, usize)>, key: String, message: String| Diagnostic {
        file: file.to_string(),
        line: line.map(|l| l.0),
        column: line.map(|l| l.1),
        key,
        message,
    };
    // 1. Overrides, applied to the document so positions of untouched keys hold.
    let text = if overrides.is_empty() {
        text.to_string()
    } else {
        let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
            let pos = e.span().map(|s| line_col(text, s.start));
            ScenarioError {
                diagnostics: vec![diag(pos, String::new(), first_line(e.message()))],
            }
        })?;
        let mut problems = Vec::new();
        for spec in overrides {
            if let Err(message) = crate::overrides::apply(&mut doc, spec) {
                problems.push(Diagnostic {
                    file: "--set".into(),
                    line: None,
                    column: None,
                    key: spec.clone(),
                    message,
                });
            }
        }
        if !problems.is_empty() {
            return Err(ScenarioError {
                diagnostics: problems,
            });
        }
        doc.to_string()
    };

    // 2. Typed parse; the first structural error stops here (later keys may
    //    depend on it), with its key path and position.
    let de = toml::Deserializer::parse(&text).map_err(|e| ScenarioError {
        diagnostics: vec![diag(
            e.span().map(|s| line_col(&text, s.start)),
            String::new(),
            first_line(e.message()),
        )],
    })?;
    let mut scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner();
        let pos = inner
            .span()
            .map(|s| unknown_key_offset(&text, s.start, inner.message()).unwrap_or(s.start))
            .map(|off| line_col(&text, off));
        ScenarioError {
            diagnostics: vec![diag(
                pos,
                if key == "." { String::new() } else { key },
                suggest(&first_line(inner.message())),
            )],
        }
    })?;

    // 3. Files the scenario references, then 4. every semantic problem at once.
    let mut problems = load_referenced_files(&mut scenario, base_dir);
    problems.extend(validate(&scenario));
    if problems.is_empty() {
        return Ok(scenario);
    }
    let located = toml_edit::Document::parse(text.clone()).ok();
    let diagnostics = problems
        .into_iter()
        .map(|(path, message)| {
            let pos = located
                .as_ref()
                .and_then(|d| locate(d.as_table(), &path.0))
                .map(|off| line_col(&text, off));
            diag(pos, path.to_string(), message)
        })
        .collect();
    Err(ScenarioError { diagnostics })
}

/// serde points an unknown field at its table; point at the key itself.
fn unknown_key_offset(text: &str, from: usize, message: &str) -> Option<usize> {
    let key = message.split("unknown field `").nth(1)?.split('`').next()?;
    let rest = text.get(from..)?;
    let mut offset = from;
    for line in rest.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(after) = trimmed.strip_prefix(key) {
            if after.trim_start().starts_with('=') || after.trim_start().starts_with('.') {
                return Some(offset + (line.len() - trimmed.len()));
            }
        }
        // Inline tables: `{ ..., key = ...}` on this line.
        if let Some(i) = line
            .find(&format!(" {key} ="))
            .or_else(|| line.find(&format!("{{{key} =")))
        {
            return Some(offset + i + 1);
        }
        offset += line.len();
    }
    None
}

fn first_line(s: &str) -> String {
    s.trim().lines().next().unwrap_or("").to_string()
}

fn load_referenced_files(s: &mut Scenario, base: &Path) -> Vec<(KeyPath, String)> {
    let mut problems = Vec::new();
    for (i, stream) in s.traffic.iter_mut().enumerate() {
        for (j, phase) in stream.phases.iter_mut().enumerate() {
            if let Phase::Trace { file, offsets, .. } = phase {
                let path = resolve(base, file);
                let at = KeyPath::new()
                    .key("traffic")
                    .index(i)
                    .key("phases")
                    .index(j)
                    .key("file");
                match std::fs::read_to_string(&path) {
                    Ok(text) => match parse_trace_csv(&text) {
                        Ok(o) => *offsets = TraceOffsets(Arc::new(o)),
                        Err(e) => problems.push((at, format!("{}: {e}", path.display()))),
                    },
                    Err(e) => problems.push((at, format!("cannot read {}: {e}", path.display()))),
                }
            }
        }
    }
    for (i, svc) in s.services.iter_mut().enumerate() {
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

/// Byte offset of the item at `path`, or of its nearest enclosing item.
fn locate(table: &toml_edit::Table, path: &[Seg]) -> Option<usize> {
    let here = table.span().map(|s| s.start);
    match path.split_first() {
        None => here,
        Some((Seg::Key(k), rest)) => table.get(k).and_then(|i| locate_item(i, rest)).or(here),
        Some((Seg::Index(_), _)) => here,
    }
}

fn locate_item(item: &toml_edit::Item, path: &[Seg]) -> Option<usize> {
    use toml_edit::{Item, Value};
    let here = item.span().map(|s| s.start);
    let Some((seg, rest)) = path.split_first() else {
        return here;
    };
    let deeper = match (item, seg) {
        (Item::ArrayOfTables(a), Seg::Index(n)) => a.get(*n).and_then(|t| locate(t, rest)),
        (Item::Value(Value::Array(a)), Seg::Index(n)) => {
            a.get(*n).and_then(|v| match rest.split_first() {
                None => v.span().map(|s| s.start),
                Some((Seg::Key(k), r)) => v
                    .as_inline_table()
                    .and_then(|t| t.get(k))
                    .and_then(|v2| {
                        if r.is_empty() {
                            v2.span().map(|s| s.start)
                        } else {
                            v.span().map(|s| s.start)
                        }
                    })
                    .or(v.span().map(|s| s.start)),
                _ => v.span().map(|s| s.start),
            })
        }
        (i, Seg::Key(k)) => i
            .as_table_like()
            .and_then(|t| t.get(k))
            .and_then(|child| locate_item(child, rest)),
        _ => None,
    };
    deeper.or(here)
}
