//! `lab import --prometheus`: a PromQL range query's answer to `[[traffic]]`
//! sections whose phase is a rate series (`kind = "series"`). Pure: the
//! caller sends the queries ([`range_path`]) and hands the bodies back.
//!
//! What Prometheus' `rate()` implies, and what is reported rather than hidden:
//! a step with too few samples in its window has no value, so a gap in the
//! scrapes is a run of missing steps; the series is piecewise-linear, so the
//! replay bridges it between the rates either side, and every gap is listed.
//! A counter reset is counted across by `rate()` itself (the new count is
//! taken as an increase from zero), so the series shows no dip; resets are
//! found with `resets()` over the same selector and listed too.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Prometheus refuses a range query of more than 11,000 steps; chunks stay below.
pub const MAX_STEPS_PER_QUERY: u64 = 10_000;
/// Series of at most this many samples are written inline in the scenario;
/// longer ones go to a CSV beside it.
pub const MAX_INLINE_SAMPLES: usize = 100;

/// Parses `--start` / `--end`: `now`, a duration relative to now (`-7d`,
/// `-90m`, `now-1h`), an RFC 3339 instant or Unix seconds. Returns Unix seconds.
pub fn parse_time(text: &str, now: f64) -> Result<f64, String> {
    let t = text.trim();
    if t == "now" {
        return Ok(now);
    }
    let relative = t.strip_prefix("now").unwrap_or(t);
    if let Some(ago) = relative.strip_prefix('-') {
        if !ago.is_empty() && !ago.contains(['T', ':']) {
            return parse_duration_secs(ago).map(|d| now - d);
        }
    }
    if let Ok(x) = t.parse::<f64>() {
        if x.is_finite() && x >= 0.0 {
            return Ok(x);
        }
    }
    match t.parse::<jiff::Timestamp>() {
        Ok(ts) => Ok(ts.as_nanosecond() as f64 / 1e9),
        Err(e) => {
            // What is wrong with an instant, when the text tried to be one.
            let why = if t.starts_with(|c: char| c.is_ascii_digit()) {
                format!(" ({e})")
            } else {
                String::new()
            };
            Err(format!(
                "`{text}` is not a time: give now, a duration before now (-7d, -90m, now-1h), an RFC 3339 instant (2026-11-24T09:00:00Z) or Unix seconds{why}"
            ))
        }
    }
}

/// A duration as Prometheus writes one (`30s`, `5m`, `1h30m`, `7d`, `2w`) or
/// as lab does (`1.5s`, plain seconds), in seconds.
pub fn parse_duration_secs(text: &str) -> Result<f64, String> {
    let t = text.trim();
    // Days and weeks are Prometheus' units that lab's durations lack.
    let mut secs = 0.0;
    let mut rest = t;
    for (unit, scale) in [('w', 604_800.0), ('d', 86_400.0)] {
        if let Some(i) = rest.find(unit) {
            let n: f64 = rest[..i]
                .parse()
                .map_err(|_| format!("`{text}` is not a duration (try 30s, 5m, 1h, 7d)"))?;
            secs += n * scale;
            rest = &rest[i + 1..];
        }
    }
    if !rest.is_empty() {
        secs += lab_units::parse_duration(rest)
            .map_err(|e| format!("`{text}` is not a duration: {e}"))?
            .0 as f64
            / 1e9;
    }
    if secs.is_finite() && secs > 0.0 {
        Ok(secs)
    } else {
        Err(format!("`{text}` must be a duration longer than zero"))
    }
}

/// One range query to send: the whole range, or one chunk of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    pub start: f64,
    pub end: f64,
}

/// The range cut into queries Prometheus accepts, each at most
/// [`MAX_STEPS_PER_QUERY`] steps, on one grid of steps from `start`.
pub fn chunks(start: f64, end: f64, step: f64) -> Vec<Chunk> {
    let mut out = Vec::new();
    let span = MAX_STEPS_PER_QUERY as f64 * step;
    let mut s = start;
    while s <= end {
        let e = (s + span - step).min(end);
        out.push(Chunk { start: s, end: e });
        s = e + step;
    }
    out
}

/// `/api/v1/query_range?...` for one chunk, to append to the server's URL.
pub fn range_path(query: &str, chunk: &Chunk, step: f64) -> String {
    format!(
        "/api/v1/query_range?query={}&start={}&end={}&step={}",
        encode(query),
        chunk.start,
        chunk.end,
        step
    )
}

/// Percent-encodes a query string value (RFC 3986 unreserved characters kept).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// One series of a matrix answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    /// `(unix seconds, value)`, in time order.
    pub values: Vec<(f64, f64)>,
}

/// Why an import failed. `Prometheus` carries Prometheus' own words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PromError {
    #[error("Prometheus refused the query: {0}")]
    Prometheus(String),
    #[error("{0}")]
    Unusable(String),
}

/// Parses a `/api/v1/query_range` answer (any status code: Prometheus puts
/// its errors in the body).
pub fn parse_matrix(code: u16, body: &[u8]) -> Result<Vec<Series>, PromError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        PromError::Unusable(format!(
            "the server answered HTTP {code} with something other than Prometheus JSON ({e}): {}",
            String::from_utf8_lossy(&body[..body.len().min(200)]).trim()
        ))
    })?;
    if v["status"] != "success" {
        return Err(PromError::Prometheus(
            match (v["errorType"].as_str(), v["error"].as_str()) {
                (Some(t), Some(e)) => format!("{t}: {e}"),
                (None, Some(e)) => e.to_string(),
                _ => format!("HTTP {code}: {v}"),
            },
        ));
    }
    let data = &v["data"];
    if data["resultType"] != "matrix" {
        return Err(PromError::Unusable(format!(
            "the query's result is a {}, not a range vector; query a rate, e.g. sum(rate(kserve_inference_request_total[5m]))",
            data["resultType"].as_str().unwrap_or("nothing")
        )));
    }
    let bad = |what: &Value| PromError::Unusable(format!("unexpected sample {what}"));
    let mut out = Vec::new();
    for s in data["result"].as_array().into_iter().flatten() {
        let labels = s["metric"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let mut values = Vec::new();
        for pair in s["values"].as_array().into_iter().flatten() {
            let t = pair[0].as_f64().ok_or_else(|| bad(pair))?;
            let x = match pair[1].as_str().ok_or_else(|| bad(pair))? {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                x => x.parse().map_err(|_| bad(pair))?,
            };
            values.push((t, x));
        }
        out.push(Series { labels, values });
    }
    Ok(out)
}

/// Joins the answers of several chunks, series by label set.
pub fn merge(parts: Vec<Vec<Series>>) -> Vec<Series> {
    let mut by: BTreeMap<Vec<(String, String)>, Series> = BTreeMap::new();
    for s in parts.into_iter().flatten() {
        let key: Vec<_> = s.labels.clone().into_iter().collect();
        match by.get_mut(&key) {
            Some(have) => have.values.extend(s.values),
            None => {
                by.insert(key, s);
            }
        }
    }
    by.into_values().collect()
}

/// The query `resets()` of the same counter, grouped as the query is: for
/// `sum by (model_name) (rate(x_total{a="b"}[5m]))`,
/// `sum by (model_name) (resets(x_total{a="b"}[5m]))`. `None` when the query
/// takes no `rate`, `irate` or `increase` of a range (a recording rule, say).
pub fn resets_query(query: &str) -> Option<String> {
    let inner = rate_argument(query)?;
    let by = grouping(query);
    Some(match by {
        Some(labels) => format!("sum by ({labels}) (resets({inner}))"),
        None => format!("sum(resets({inner}))"),
    })
}

/// The window of the query's `rate(x[5m])` (or `irate`, `increase`), in seconds.
pub fn rate_window(query: &str) -> Option<f64> {
    let inner = rate_argument(query)?;
    let range = &inner[inner.rfind('[')? + 1..inner.len() - 1];
    parse_duration_secs(range).ok()
}

/// The range-vector argument of the query's first `rate(`, `irate(` or `increase(`.
fn rate_argument(query: &str) -> Option<&str> {
    let (at, name) = ["irate(", "rate(", "increase("]
        .iter()
        .filter_map(|f| find_call(query, f).map(|i| (i, *f)))
        .min()?;
    let open = at + name.len();
    let mut depth = 1;
    let mut close = None;
    for (i, c) in query[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    close = Some(open + i);
                    break;
                }
            }
            _ => {}
        }
    }
    let inner = query[open..close?].trim();
    inner.ends_with(']').then_some(inner)
}

/// Where `f` (e.g. `rate(`) is called: not as the tail of a longer name (`irate(`).
fn find_call(query: &str, f: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = query[from..].find(f) {
        let at = from + i;
        let before = query[..at].chars().next_back();
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Some(at);
        }
        from = at + f.len();
    }
    None
}

/// The labels of the query's outermost `by (...)`, as written.
fn grouping(query: &str) -> Option<String> {
    let i = query.find("by")?;
    let rest = query[i + 2..].trim_start().strip_prefix('(')?;
    let end = rest.find(')')?;
    Some(rest[..end].trim().to_string())
}

/// A run of steps without a value.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    /// The last sample before the gap and the first after it (Unix seconds);
    /// for a gap at the range's start or end, that edge of the range.
    pub from: f64,
    pub to: f64,
    pub missing_steps: u64,
    pub edge: bool,
    /// Steps beside the gap whose `rate()` window reaches into it, left out:
    /// `rate()` extrapolates at most half a scrape interval past the last
    /// sample, so they read low.
    pub partial_steps: u64,
}

/// One service's imported series.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// `None` for a single series without `--service` or a grouping label:
    /// a scenario with one service needs no name.
    pub service: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// `[seconds from the range's start, rate]`.
    pub points: Vec<[f64; 2]>,
    pub gaps: Vec<Gap>,
    /// Intervals (Unix seconds) in which `resets()` saw the counter go back.
    pub resets: Vec<(f64, f64)>,
    /// Samples that were NaN or infinite (a division by zero in the query), left out.
    pub not_finite: usize,
    /// Samples below zero (a `deriv` or a difference), left out.
    pub negative: usize,
}

/// What the user asked for.
#[derive(Debug, Clone)]
pub struct Request {
    pub url: String,
    pub query: String,
    pub start: f64,
    pub end: f64,
    pub step: f64,
    pub service: Option<String>,
}

/// Maps the answer's series to services and finds their gaps. `resets`, if
/// given, is the answer of [`resets_query`] over the same range.
pub fn to_services(
    req: &Request,
    series: Vec<Series>,
    resets: Option<Vec<Series>>,
) -> Result<Vec<Imported>, PromError> {
    let names: Vec<Option<String>> = match series.as_slice() {
        [] => {
            return Err(PromError::Unusable(format!(
                "Prometheus has no data for {:?} from {} to {}: the query returned no series (check the metric's name and labels, e.g. in Prometheus' graph page, and the range)",
                req.query,
                rfc3339(req.start),
                rfc3339(req.end)
            )))
        }
        [one] => vec![req.service.clone().or_else(|| single_label(&one.labels))],
        many => {
            if let Some(s) = &req.service {
                return Err(PromError::Unusable(format!(
                    "the query returned {} series but --service names one ({s}): aggregate them with sum(...), or group them with sum by (model_name) (...) to import one per service without --service",
                    many.len()
                )));
            }
            let keys: Vec<Option<String>> = many
                .iter()
                .map(|s| s.labels.keys().next().filter(|_| s.labels.len() == 1).cloned())
                .collect();
            if keys.iter().any(|k| k.is_none() || *k != keys[0]) {
                let shown: Vec<String> = many.iter().take(3).map(|s| label_text(&s.labels)).collect();
                return Err(PromError::Unusable(format!(
                    "the query returned {} series ({}{}) and lab imports one per service: group them by the label that names the service, e.g. sum by (model_name) (rate(...[5m])), or aggregate them into one with sum(...)",
                    many.len(),
                    shown.join(", "),
                    if many.len() > 3 { ", ..." } else { "" }
                )));
            }
            many.iter().map(|s| single_label(&s.labels)).collect()
        }
    };
    let resets = resets.unwrap_or_default();
    let only_one = series.len() == 1;
    let mut out = Vec::new();
    for (s, service) in series.into_iter().zip(names) {
        let mut values = s.values;
        values.sort_by(|a, b| a.0.total_cmp(&b.0));
        values.dedup_by(|a, b| a.0 == b.0);
        let not_finite = values.iter().filter(|v| !v.1.is_finite()).count();
        let negative = values.iter().filter(|v| v.1 < 0.0).count();
        values.retain(|v| v.1.is_finite() && v.1 >= 0.0);
        if values.len() < 2 {
            return Err(PromError::Unusable(format!(
                "{}{} value(s) from {} to {} at step {}s: too few to replay (a rate series needs two); widen the range or shorten the step",
                service.as_deref().map(|s| format!("{s}: ")).unwrap_or_default(),
                values.len(),
                rfc3339(req.start),
                rfc3339(req.end),
                req.step
            )));
        }
        let mut gaps = gaps(&values, req);
        if let Some(w) = rate_window(&req.query) {
            trim_partial_windows(&mut values, &mut gaps, w);
        }
        if values.len() < 2 {
            return Err(PromError::Unusable(format!(
                "{}too few values left once the steps whose {} rate() window reaches into a gap are left out; widen the range",
                service.as_deref().map(|s| format!("{s}: ")).unwrap_or_default(),
                secs_text(rate_window(&req.query).unwrap_or(0.0)),
            )));
        }
        let resets = resets
            .iter()
            // An ungrouped resets() sums every series: it belongs to a lone one only.
            .find(|r| r.labels == s.labels || (r.labels.is_empty() && only_one))
            .map(|r| intervals(&r.values, req.step))
            .unwrap_or_default();
        let points = values
            .iter()
            .map(|(t, r)| [((t - req.start) * 1000.0).round() / 1000.0, *r])
            .collect();
        out.push(Imported {
            service,
            labels: s.labels,
            points,
            gaps,
            resets,
            not_finite,
            negative,
        });
    }
    Ok(out)
}

fn single_label(labels: &BTreeMap<String, String>) -> Option<String> {
    (labels.len() == 1)
        .then(|| labels.values().next().cloned())
        .flatten()
}

fn label_text(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// Runs of missing steps: inside the series, and before its first or after its last value.
fn gaps(values: &[(f64, f64)], req: &Request) -> Vec<Gap> {
    let steps = |a: f64, b: f64| ((b - a) / req.step).round() as u64;
    // The range's end need not fall on the grid of steps from its start.
    let whole_steps = |a: f64, b: f64| ((b - a) / req.step + 1e-9).floor() as u64;
    let mut out = Vec::new();
    let (first, last) = (values[0].0, values[values.len() - 1].0);
    if steps(req.start, first) > 0 {
        out.push(Gap {
            from: req.start,
            to: first,
            missing_steps: steps(req.start, first),
            edge: true,
            partial_steps: 0,
        });
    }
    for w in values.windows(2) {
        let n = steps(w[0].0, w[1].0);
        if n > 1 {
            out.push(Gap {
                from: w[0].0,
                to: w[1].0,
                missing_steps: n - 1,
                edge: false,
                partial_steps: 0,
            });
        }
    }
    if whole_steps(last, req.end) > 0 {
        out.push(Gap {
            from: last,
            to: req.end,
            missing_steps: whole_steps(last, req.end),
            edge: true,
            partial_steps: 0,
        });
    }
    out
}

/// Leaves out the values whose `window` reaches into a gap: the steps in
/// `(from - window, from]` before it and `[to, to + window)` after it (for a
/// gap at the range's start, after it only; at its end, before it only).
fn trim_partial_windows(values: &mut Vec<(f64, f64)>, gaps: &mut [Gap], window: f64) {
    for g in gaps.iter_mut() {
        let leading = g.edge && values.first().is_some_and(|v| v.0 == g.to);
        let trailing = g.edge && !leading;
        let before = |t: f64| !leading && t > g.from - window && t <= g.from;
        let after = |t: f64| !trailing && t >= g.to && t < g.to + window;
        let n = values.len();
        values.retain(|v| !(before(v.0) || after(v.0)));
        g.partial_steps = (n - values.len()) as u64;
    }
}

/// Consecutive steps with a value above zero, as `(first, last)` instants.
fn intervals(values: &[(f64, f64)], step: f64) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = Vec::new();
    for &(t, v) in values {
        if v.is_finite() && v > 0.0 {
            match out.last_mut() {
                Some(last) if t - last.1 <= step * 1.5 => last.1 = t,
                _ => out.push((t, t)),
            }
        }
    }
    out
}

/// `2026-11-24T09:00:00Z` (to the second; a fraction when there is one).
pub fn rfc3339(unix: f64) -> String {
    match jiff::Timestamp::from_nanosecond((unix * 1e9).round() as i128) {
        Ok(ts) if unix.fract() == 0.0 => format!("{ts:.0}"),
        Ok(ts) => format!("{ts:.3}"),
        Err(_) => format!("{unix}"),
    }
}

fn secs_text(s: f64) -> String {
    lab_units::Dur((s * 1e9).round() as u64).to_string()
}

/// The problems worth a warning on the terminal, one line each (also written
/// as comments in the output).
pub fn findings(imported: &[Imported]) -> Vec<String> {
    let mut out = Vec::new();
    for i in imported {
        let who = i
            .service
            .as_deref()
            .map(|s| format!("{s}: "))
            .unwrap_or_default();
        for g in &i.gaps {
            let what = if g.edge {
                "left out of the replay (it starts at the first value and ends at the last)"
            } else {
                "the replay bridges it linearly between the rates either side"
            };
            let partial = if g.partial_steps > 0 {
                format!(
                    "; {} step(s) beside it whose rate() window reaches into it read low and are left out too",
                    g.partial_steps
                )
            } else {
                String::new()
            };
            out.push(format!(
                "{who}gap: no value for {} step(s) from {} to {} ({}): rate() had fewer than two samples in its window{partial}; {what}",
                g.missing_steps,
                rfc3339(g.from),
                rfc3339(g.to),
                secs_text(g.to - g.from),
            ));
        }
        for (a, b) in &i.resets {
            out.push(format!(
                "{who}counter reset: resets() > 0 at steps {} to {}: rate() counted across it (the new count as an increase from zero), so the series shows no dip there",
                rfc3339(*a),
                rfc3339(*b)
            ));
        }
        if i.not_finite > 0 {
            out.push(format!(
                "{who}{} NaN or infinite value(s) left out (a division by zero in the query?); the replay bridges them",
                i.not_finite
            ));
        }
        if i.negative > 0 {
            out.push(format!(
                "{who}{} negative value(s) left out: a request rate is never below zero; is the query a rate()?",
                i.negative
            ));
        }
    }
    out
}

/// What to write: the TOML, and the CSV files it names (file name, text).
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub toml: String,
    pub files: Vec<(String, String)>,
}

/// The `[[traffic]]` sections, with the query, the range and the source in
/// comments. Series longer than [`MAX_INLINE_SAMPLES`] go to CSV files named
/// `{csv_stem}.csv` (one series) or `{csv_stem}.{service}.csv` when
/// `csv_stem` is given; without one, every series is written inline.
pub fn render(
    imported: &[Imported],
    req: &Request,
    resets_checked: Option<&str>,
    csv_stem: Option<&str>,
) -> Output {
    let mut head = String::new();
    let _ = writeln!(
        head,
        "# Imported with `lab import --prometheus` from {}",
        req.url
    );
    let _ = writeln!(head, "# query: {}", req.query.replace('\n', " "));
    let _ = writeln!(
        head,
        "# range: {} to {} (Unix {} to {}), step {}",
        rfc3339(req.start),
        rfc3339(req.end),
        req.start,
        req.end,
        secs_text(req.step)
    );
    let _ = writeln!(
        head,
        "# t_seconds is from the range's start; between samples the rate is linear"
    );
    match resets_checked {
        Some(q) => {
            let _ = writeln!(head, "# counter resets looked for with: {q}");
        }
        None => {
            let _ = writeln!(
                head,
                "# counter resets not looked for: the query takes no rate(), irate() or increase() of a counter"
            );
        }
    }
    let notes = findings(imported);
    if notes.is_empty() {
        let _ = writeln!(head, "# no gaps, counter resets or unusable values");
    }
    for n in &notes {
        let _ = writeln!(head, "# {n}");
    }
    let mut toml = head.clone();
    let mut files = Vec::new();
    for i in imported {
        let _ = writeln!(toml, "\n[[traffic]]");
        if let Some(s) = &i.service {
            let _ = writeln!(toml, "service = {}", toml_string(s));
        }
        if !i.labels.is_empty() {
            let _ = writeln!(toml, "# series {}", label_text(&i.labels));
        }
        let _ = writeln!(toml, "arrivals = {{ process = \"poisson\" }}");
        let _ = writeln!(toml, "[[traffic.phases]]");
        let _ = writeln!(toml, "kind = \"series\"");
        match csv_stem {
            Some(stem) if i.points.len() > MAX_INLINE_SAMPLES => {
                let name = match (&i.service, imported.len()) {
                    (Some(s), n) if n > 1 => format!("{stem}.{}.csv", file_safe(s)),
                    _ => format!("{stem}.csv"),
                };
                let _ = writeln!(
                    toml,
                    "file = {}  # {} samples, t_seconds,rate",
                    toml_string(&name),
                    i.points.len()
                );
                let mut csv = head.clone();
                if let Some(s) = &i.service {
                    let _ = writeln!(csv, "# service: {s}");
                }
                csv.push_str("t_seconds,rate\n");
                for [t, r] in &i.points {
                    let _ = writeln!(csv, "{t},{r}");
                }
                files.push((name, csv));
            }
            _ => {
                let _ = writeln!(toml, "points = [");
                for [t, r] in &i.points {
                    let _ = writeln!(toml, "  [{t}, {r}],");
                }
                let _ = writeln!(toml, "]");
            }
        }
        let _ = writeln!(
            toml,
            "# replay it transformed: scale = 2 (twice the rate), speedup = 10, time_shift = \"6h\", repeat = 7"
        );
    }
    Output { toml, files }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_764_662_400.0; // 2025-12-02T08:00:00Z

    #[test]
    fn times_in_every_accepted_form() {
        assert_eq!(parse_time("now", NOW).unwrap(), NOW);
        assert_eq!(parse_time("-7d", NOW).unwrap(), NOW - 7.0 * 86_400.0);
        assert_eq!(parse_time("now-90m", NOW).unwrap(), NOW - 5400.0);
        assert_eq!(parse_time("-1h30m", NOW).unwrap(), NOW - 5400.0);
        assert_eq!(parse_time("-2w", NOW).unwrap(), NOW - 14.0 * 86_400.0);
        assert_eq!(parse_time("1764662400", NOW).unwrap(), 1_764_662_400.0);
        assert_eq!(parse_time("1764662400.5", NOW).unwrap(), 1_764_662_400.5);
        assert_eq!(
            parse_time("2025-12-02T08:00:00Z", NOW).unwrap(),
            1_764_662_400.0
        );
        assert_eq!(
            parse_time("2025-12-02T10:00:00+02:00", NOW).unwrap(),
            1_764_662_400.0
        );
        let e = parse_time("yesterday", NOW).unwrap_err();
        assert!(e.contains("-7d") && e.contains("RFC 3339"), "{e}");
        assert!(parse_time("-7x", NOW).is_err());
        assert_eq!(rfc3339(1_764_662_400.0), "2025-12-02T08:00:00Z");
    }

    #[test]
    fn steps_and_chunks() {
        assert_eq!(parse_duration_secs("30s").unwrap(), 30.0);
        assert_eq!(parse_duration_secs("1d12h").unwrap(), 129_600.0);
        assert!(parse_duration_secs("0s").is_err());
        // A week at 30 s is 20,161 steps: three queries on one grid, none over the limit.
        let c = chunks(0.0, 604_800.0, 30.0);
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[0],
            Chunk {
                start: 0.0,
                end: 299_970.0
            }
        );
        assert_eq!(c[1].start, 300_000.0);
        assert_eq!(c[2].end, 604_800.0);
        assert!(c
            .iter()
            .all(|c| (((c.end - c.start) / 30.0) as u64) < MAX_STEPS_PER_QUERY));
        let u = range_path("sum(rate(x[5m]))", &c[0], 30.0);
        assert_eq!(
            u,
            "/api/v1/query_range?query=sum%28rate%28x%5B5m%5D%29%29&start=0&end=299970&step=30"
        );
    }

    #[test]
    fn resets_follow_the_query_grouping() {
        assert_eq!(
            resets_query(
                "sum by (model_name) (rate(kserve_inference_request_total{ns=\"a\"}[5m]))"
            )
            .unwrap(),
            "sum by (model_name) (resets(kserve_inference_request_total{ns=\"a\"}[5m]))"
        );
        assert_eq!(
            resets_query("sum(irate(x_total[1m])) * 2").unwrap(),
            "sum(resets(x_total[1m]))"
        );
        assert_eq!(resets_query("job:requests:rate5m"), None);
        assert_eq!(resets_query("rate(x)"), None);
    }

    fn req() -> Request {
        Request {
            url: "http://p".into(),
            query: "sum by (model_name) (rate(x_total[5m]))".into(),
            start: 1000.0,
            end: 1600.0,
            step: 60.0,
            service: None,
        }
    }

    fn matrix(series: &[(&str, &[(f64, &str)])]) -> Vec<u8> {
        let result: Vec<Value> = series
            .iter()
            .map(|(model, values)| {
                let metric = if model.is_empty() {
                    serde_json::json!({})
                } else {
                    serde_json::json!({ "model_name": model })
                };
                serde_json::json!({
                    "metric": metric,
                    "values": values.iter().map(|(t, v)| serde_json::json!([t, v])).collect::<Vec<_>>(),
                })
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "status": "success",
            "data": { "resultType": "matrix", "result": result },
        }))
        .unwrap()
    }

    #[test]
    fn series_map_to_services_and_gaps_are_found() {
        let body = matrix(&[
            (
                "bert",
                &[
                    (1000.0, "1"),
                    (1060.0, "2"),
                    (1300.0, "5"),
                    (1360.0, "NaN"),
                    (1420.0, "4"),
                ],
            ),
            ("resnet", &[(1000.0, "3"), (1060.0, "3")]),
        ]);
        let series = parse_matrix(200, &body).unwrap();
        let resets = parse_matrix(
            200,
            &matrix(&[("bert", &[(1300.0, "1"), (1360.0, "1"), (1420.0, "0")])]),
        )
        .unwrap();
        // A recording rule's name: no rate() window to trim by.
        let mut r = req();
        r.query = "model_name:requests:rate5m".into();
        let got = to_services(&r, series, Some(resets)).unwrap();
        assert_eq!(got[0].service.as_deref(), Some("bert"));
        assert_eq!(got[1].service.as_deref(), Some("resnet"));
        assert_eq!(
            got[0].points,
            vec![[0.0, 1.0], [60.0, 2.0], [300.0, 5.0], [420.0, 4.0]]
        );
        assert_eq!(got[0].not_finite, 1);
        let inner: Vec<_> = got[0]
            .gaps
            .iter()
            .filter(|g| !g.edge)
            .map(|g| g.missing_steps)
            .collect();
        assert_eq!(inner, [3, 1]);
        // Nine steps missing at the end of resnet's series.
        assert!(got[1].gaps.iter().any(|g| g.edge && g.missing_steps == 9));
        assert_eq!(got[0].resets, vec![(1300.0, 1360.0)]);
        assert!(got[1].resets.is_empty());
        let notes = findings(&got);
        assert!(
            notes
                .iter()
                .any(|n| n.starts_with("bert: gap: no value for 3 step(s)")),
            "{notes:?}"
        );
        assert!(
            notes.iter().any(|n| n.starts_with("bert: counter reset")),
            "{notes:?}"
        );
    }

    #[test]
    fn steps_whose_window_reaches_into_a_gap_are_left_out() {
        // Steps every 60 s from 0 to 3600 with none from 1260 to 1740 (a gap of 9 steps).
        let values: Vec<(f64, String)> = (0..=60)
            .map(|i| 60.0 * i as f64)
            .filter(|t| !(1260.0..=1740.0).contains(t))
            .map(|t| (t, "10".to_string()))
            .collect();
        let refs: Vec<(f64, &str)> = values.iter().map(|(t, v)| (*t, v.as_str())).collect();
        let r = Request {
            start: 0.0,
            end: 3600.0,
            ..req()
        };
        let got = to_services(
            &r,
            parse_matrix(200, &matrix(&[("", &refs)])).unwrap(),
            None,
        )
        .unwrap();
        let g = &got[0].gaps;
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!(
            (g[0].from, g[0].to, g[0].missing_steps),
            (1200.0, 1800.0, 9)
        );
        // A 5m window: 960..1200 before (5 steps) and 1800..2040 after (5 steps).
        assert_eq!(g[0].partial_steps, 10);
        let times: Vec<f64> = got[0].points.iter().map(|p| p[0]).collect();
        assert!(
            times.contains(&900.0) && !times.contains(&960.0),
            "{times:?}"
        );
        assert!(
            times.contains(&2100.0) && !times.contains(&2040.0),
            "{times:?}"
        );
        assert_eq!(rate_window("sum(rate(x[5m]))"), Some(300.0));
        assert_eq!(rate_window("sum(rate(x[5m:1m]))"), None);
    }

    #[test]
    fn refusals_say_what_to_do() {
        let e = parse_matrix(
            400,
            br#"{"status":"error","errorType":"bad_data","error":"1:6: parse error: unexpected end of input"}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Prometheus refused the query: bad_data: 1:6: parse error: unexpected end of input"
        );
        let e = to_services(&req(), vec![], None).unwrap_err().to_string();
        assert!(e.contains("no data") && e.contains("no series"), "{e}");
        let mut two = parse_matrix(
            200,
            &matrix(&[("a", &[(1000.0, "1")]), ("b", &[(1000.0, "1")])]),
        )
        .unwrap();
        two[1].labels.insert("instance".into(), "x:1".into());
        let e = to_services(&req(), two.clone(), None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("returned 2 series") && e.contains("sum by (model_name)"),
            "{e}"
        );
        let mut r = req();
        r.service = Some("web".into());
        let e = to_services(&r, two, None).unwrap_err().to_string();
        assert!(e.contains("--service"), "{e}");
        let one = parse_matrix(200, &matrix(&[("", &[(1000.0, "1")])])).unwrap();
        let e = to_services(&req(), one, None).unwrap_err().to_string();
        assert!(e.contains("too few"), "{e}");
    }

    #[test]
    fn rendered_sections_parse_as_traffic_and_keep_the_samples() {
        let values: Vec<(f64, String)> = (0..=200)
            .map(|i| (1000.0 + 3.0 * i as f64, format!("{}", i as f64 / 4.0)))
            .collect();
        let refs: Vec<(f64, &str)> = values.iter().map(|(t, v)| (*t, v.as_str())).collect();
        let mut r = req();
        r.end = 1600.0;
        r.step = 3.0;
        r.service = Some("web".into());
        let got = to_services(
            &r,
            parse_matrix(200, &matrix(&[("", &refs)])).unwrap(),
            None,
        )
        .unwrap();
        #[derive(serde::Deserialize)]
        struct Doc {
            traffic: Vec<toml::Value>,
        }
        // Inline without a CSV stem.
        let out = render(&got, &r, None, None);
        assert!(out.files.is_empty());
        assert!(
            out.toml
                .contains("# query: sum by (model_name) (rate(x_total[5m]))"),
            "{}",
            out.toml
        );
        assert!(
            out.toml
                .contains("# range: 1970-01-01T00:16:40Z to 1970-01-01T00:26:40Z"),
            "{}",
            out.toml
        );
        let doc: Doc = toml::from_str(&out.toml).unwrap();
        let phase = &doc.traffic[0]["phases"][0];
        assert_eq!(doc.traffic[0]["service"].as_str(), Some("web"));
        assert_eq!(phase["points"].as_array().unwrap().len(), 201);
        // A CSV beside it with a stem: the same samples.
        let out = render(&got, &r, Some("sum(resets(x[5m]))"), Some("prod"));
        assert_eq!(out.files.len(), 1);
        assert_eq!(out.files[0].0, "prod.csv");
        let doc: Doc = toml::from_str(&out.toml).unwrap();
        assert_eq!(
            doc.traffic[0]["phases"][0]["file"].as_str(),
            Some("prod.csv")
        );
        let samples = lab_traffic::parse_rate_csv(&out.files[0].1).unwrap();
        assert_eq!(samples, got[0].points);
        assert!(out.files[0]
            .1
            .starts_with("# Imported with `lab import --prometheus` from http://p\n"));
    }
}
