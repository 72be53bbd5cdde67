//! The traffic schedule: phases of load and the exact arrival instants they
//! produce for a seed. The simulator and the load generator both iterate a
//! [`Schedule`], so they send the same requests at the same instants.
//!
//! Architecture invariant: no I/O and no clock; trace files are read by the
//! scenario loader and handed in as offsets.

mod exponential;
mod schedule;
mod spec;

pub use exponential::exp1;
pub use schedule::{mix, rng_for, uniform, Arrival, ArrivalIter, Rng, Schedule};
pub use spec::{
    check_rate_samples, Arrivals, Phase, RateSamples, TraceOffsets, TrafficSpec, MAX_SERIES_PIECES,
};

/// Parses a trace CSV into sorted offsets (ns) from its first request. The first
/// column (or the one headed `TIMESTAMP`) holds either seconds as numbers or
/// `YYYY-MM-DD HH:MM:SS[.fraction]` timestamps. Pure: the caller reads the file.
pub fn parse_trace_csv(text: &str) -> Result<Vec<u64>, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let mut column = 0;
    let mut stamps: Vec<f64> = Vec::new();
    let mut first_data: Option<(usize, &str)> = None;
    if let Some((n, header)) = lines.next() {
        let cells: Vec<&str> = header.split(',').map(str::trim).collect();
        if let Some(i) = cells
            .iter()
            .position(|c| c.eq_ignore_ascii_case("timestamp"))
        {
            column = i;
        } else if parse_stamp(cells[0]).is_some() {
            first_data = Some((n, header));
        } else {
            return Err(format!(
                "line {}: no TIMESTAMP column and `{}` is not a timestamp",
                n + 1,
                cells[0]
            ));
        }
    }
    for (n, line) in first_data.into_iter().chain(lines) {
        let cell = line.split(',').nth(column).unwrap_or("").trim();
        let t = parse_stamp(cell).ok_or_else(|| {
            format!(
                "line {}: `{cell}` is not a timestamp (seconds, or YYYY-MM-DD HH:MM:SS.frac)",
                n + 1
            )
        })?;
        stamps.push(t);
    }
    if stamps.is_empty() {
        return Err("the trace has no requests".into());
    }
    stamps.sort_by(f64::total_cmp);
    let t0 = stamps[0];
    Ok(stamps
        .iter()
        .map(|t| ((t - t0) * 1e9).round() as u64)
        .collect())
}

/// Parses a rate series CSV: `t_seconds,rate` rows (a header row and `#`
/// comment lines allowed; further columns ignored), checked as
/// [`check_rate_samples`] does. Pure: the caller reads the file.
pub fn parse_rate_csv(text: &str) -> Result<Vec<[f64; 2]>, String> {
    let mut out = Vec::new();
    let mut lines_of = Vec::new();
    let mut header_seen = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut cells = line.split(',').map(str::trim);
        let (t, r) = (cells.next().unwrap_or(""), cells.next().unwrap_or(""));
        match (t.parse::<f64>(), r.parse::<f64>()) {
            (Ok(t), Ok(r)) => {
                out.push([t, r]);
                lines_of.push(n + 1);
            }
            _ if out.is_empty() && !header_seen && t.parse::<f64>().is_err() => header_seen = true,
            _ => {
                return Err(format!(
                    "line {}: `{line}` is not a `t_seconds,rate` row of two numbers",
                    n + 1
                ))
            }
        }
    }
    check_rate_samples(&out).map_err(|(i, msg)| match lines_of.get(i) {
        Some(line) if out.len() >= 2 => format!("line {line}: {msg}"),
        _ => msg,
    })?;
    Ok(out)
}

/// Seconds since an arbitrary epoch; only differences matter.
fn parse_stamp(s: &str) -> Option<f64> {
    if let Ok(x) = s.parse::<f64>() {
        return x.is_finite().then_some(x);
    }
    // YYYY-MM-DD HH:MM:SS(.fff)
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let mut t = time.trim_end_matches('Z').split(':');
    let (hh, mm) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    let ss = t.next()?.parse::<f64>().ok()?;
    // Days from civil date (proleptic Gregorian), so traces may cross midnight or month ends.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe;
    Some(days as f64 * 86_400.0 + hh * 3600.0 + mm * 60.0 + ss)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod series_tests;
