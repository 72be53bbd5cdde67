//! Numbers with their units, the same way in the page, the terminal, JUnit and
//! Markdown.

use lab_results::{Level, Results, SloThreshold};

/// What `requests_delayed` counts, in the simulator's terms: requests the
/// activator held because their service had no ready pod (requests queued at
/// a pod behind a starting one are not among them).
pub const BUFFERED_AT_ACTIVATOR: &str = "buffered at the activator while no pod was ready";

/// What the run's goodput counts, to print beside it.
pub fn goodput_meaning(r: &Results) -> &'static str {
    if r.level != Level::Sim {
        // The load generator judges no SLO per request (loadgen's summary_of).
        "every completed request: no SLO is judged per request at this level"
    } else if r.slo.iter().any(|s| s.metric.quantile().is_some()) {
        "completed within every latency SLO"
    } else {
        "every completed request: no percentile or max latency SLO to meet"
    }
}

/// A value in one of the units results files use (`seconds`, `ratio`,
/// `requests`, `usd`, `rps`).
pub fn value(v: f64, unit: &str) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    match unit {
        "seconds" => seconds(v),
        "ratio" => percent(v),
        "requests" => format!("{} requests", count(v.round() as u64)),
        "usd" => usd(v),
        "rps" => rps(v),
        "count" => count(v.round().max(0.0) as u64),
        "gpu_hours" => format!("{} GPU-h", sig3(v)),
        other => format!("{} {other}", sig3(v)),
    }
}

/// `≤ 250 ms`, `≥ 100 req/s`.
pub fn bound(b: SloThreshold, threshold: f64, unit: &str) -> String {
    let op = match b {
        SloThreshold::Max => "≤",
        SloThreshold::Min => "≥",
    };
    format!("{op} {}", value(threshold, unit))
}

/// The same with ASCII operators, for JUnit messages read in plain consoles.
pub fn bound_ascii(b: SloThreshold, threshold: f64, unit: &str) -> String {
    let op = match b {
        SloThreshold::Max => "<=",
        SloThreshold::Min => ">=",
    };
    format!("{op} {}", value(threshold, unit))
}

/// Latency: µs, ms or s with three significant digits; from two minutes up,
/// minutes and hours as [`duration`] writes them (`4 min 3 s`, not `243 s`).
pub fn seconds(v: f64) -> String {
    if !v.is_finite() {
        "n/a".into()
    } else if v.abs() >= 119.5 {
        let sign = if v < 0.0 { "-" } else { "" };
        format!("{sign}{}", duration(v.abs()))
    } else if v == 0.0 {
        "0 s".into()
    } else if v.abs() < 1e-3 {
        format!("{} µs", sig3(v * 1e6))
    } else if v.abs() < 1.0 {
        format!("{} ms", sig3(v * 1e3))
    } else {
        format!("{} s", sig3(v))
    }
}

/// A run length: `45 s`, `12 min`, `2 h 30 min`.
pub fn duration(v: f64) -> String {
    if !v.is_finite() || v < 0.0 {
        return "n/a".into();
    }
    let s = v.round() as u64;
    match s {
        0..=119 => format!("{} s", sig3(v)),
        120..=3599 if s.is_multiple_of(60) => format!("{} min", s / 60),
        120..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ if (s % 3600) / 60 == 0 => format!("{} h", s / 3600),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// A duration the way the terminal prints it, Go-style and rounded to whole
/// seconds from a minute up: `1h0m23s` (not `3804.836493s`), `4m3s`, `2h`;
/// below a minute three significant digits: `45.2s`, `250ms`.
pub fn clock(v: f64) -> String {
    if !v.is_finite() || v < 0.0 {
        return "n/a".into();
    }
    if v < 59.5 {
        return if v == 0.0 {
            "0s".into()
        } else if v < 1e-3 {
            format!("{}us", sig3(v * 1e6))
        } else if v < 1.0 {
            format!("{}ms", sig3(v * 1e3))
        } else {
            format!("{}s", sig3(v))
        };
    }
    let s = v.round() as u64;
    let parts = [(s / 3600, "h"), ((s % 3600) / 60, "m"), (s % 60, "s")];
    // Leading and trailing zero parts go; a zero between two others stays,
    // as Go writes it (`1h0m23s`).
    let first = parts.iter().position(|p| p.0 > 0).unwrap_or(2);
    let last = parts.iter().rposition(|p| p.0 > 0).unwrap_or(2);
    parts[first..=last]
        .iter()
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect()
}

pub fn percent(ratio: f64) -> String {
    if !ratio.is_finite() {
        return "n/a".into();
    }
    let p = ratio * 100.0;
    if p == 0.0 {
        "0 %".into()
    } else if p.abs() < 0.01 {
        format!("{p:.4} %")
    } else if p.abs() < 10.0 {
        format!("{p:.2} %")
    } else {
        format!("{p:.1} %")
    }
}

pub fn usd(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    let sign = if v < 0.0 { "-" } else { "" };
    let a = v.abs();
    if a < 100.0 {
        format!("{sign}${a:.2}")
    } else {
        format!("{sign}${}", count(a.round() as u64))
    }
}

pub fn rps(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    format!("{} req/s", sig3(v))
}

/// Thousands separated by commas.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Three significant digits without trailing zeros (`0.0123`, `12.3`, `1230`).
pub fn sig3(v: f64) -> String {
    if !v.is_finite() {
        return "n/a".into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let mag = libm::log10(v.abs()).floor() as i32;
    if mag >= 3 {
        return count_signed(v.round());
    }
    let decimals = (2 - mag).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn count_signed(v: f64) -> String {
    if v < 0.0 {
        format!("-{}", count(v.abs() as u64))
    } else {
        count(v as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_naturally() {
        assert_eq!(value(0.2125, "seconds"), "212 ms");
        assert_eq!(value(0.000_25, "seconds"), "250 µs");
        assert_eq!(value(1.5, "seconds"), "1.5 s");
        assert_eq!(value(0.023, "ratio"), "2.30 %");
        assert_eq!(value(12_500.0, "usd"), "$12,500");
        assert_eq!(value(3.456, "usd"), "$3.46");
        assert_eq!(value(195.24, "rps"), "195 req/s");
        assert_eq!(value(1234.0, "requests"), "1,234 requests");
        assert_eq!(value(f64::NAN, "seconds"), "n/a");
        assert_eq!(bound(SloThreshold::Max, 0.25, "seconds"), "≤ 250 ms");
        assert_eq!(bound_ascii(SloThreshold::Min, 100.0, "rps"), ">= 100 req/s");
        assert_eq!(duration(3600.0), "1 h");
        assert_eq!(duration(86_400.0), "24 h");
        assert_eq!(duration(900.0), "15 min");
        assert_eq!(sig3(1_234_567.0), "1,234,567");
    }

    #[test]
    fn long_durations_read_as_people_write_them() {
        assert_eq!(clock(3804.836493), "1h3m25s");
        assert_eq!(clock(3623.2), "1h0m23s");
        assert_eq!(clock(3600.0), "1h");
        assert_eq!(clock(86_400.0), "24h");
        assert_eq!(clock(243.4), "4m3s");
        assert_eq!(clock(120.0), "2m");
        assert_eq!(clock(59.7), "1m");
        assert_eq!(clock(45.23), "45.2s");
        assert_eq!(clock(0.25), "250ms");
        assert_eq!(clock(0.0), "0s");
        assert_eq!(seconds(3804.836493), "1 h 3 min");
        assert_eq!(seconds(243.4), "4 min 3 s");
        assert_eq!(seconds(90.0), "90 s");
    }
}
