//! The figures of `scenarios/README.md`, checked against runs. A figure is
//! marked by an HTML comment right after it, `p99 29 s<!-- spike.p99 -->`, which
//! renders as nothing. A test computes each marked figure from its run, writes it
//! the way the README does (a [`Format`]) and fails listing every figure that
//! differs; `UPDATE_README=1` rewrites them in place instead.
//!
//! Shared by `sim/tests/examples.rs` (the example scenarios) and
//! `plan/tests/readme_figures.rs` (the plan); each owns the keys it computes.

#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};

/// How the README writes a figure. Rounding is half away from zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Format {
    /// `1,149`
    Count,
    /// `no` for zero, else a count: "no errors", "12 errors".
    CountOrNo,
    /// `60k`
    Thousands,
    /// `5.8` with this many decimals.
    Plain(usize),
    /// `29 s` (from seconds)
    Seconds(usize),
    /// `5 minutes` (from seconds)
    Minutes(usize),
    /// `23.1 ms` (from seconds)
    Millis(usize),
    /// `56 %` (from a fraction)
    Percent(usize),
    /// `$30.61`
    Usd(usize),
    /// `$931/month`
    UsdPerMonth,
    /// A name such as `A10G`, given as is.
    Word,
}

impl Format {
    /// What comes before and after the number.
    fn affixes(self) -> (&'static str, &'static str) {
        match self {
            Format::Count | Format::CountOrNo | Format::Plain(_) | Format::Word => ("", ""),
            Format::Thousands => ("", "k"),
            Format::Seconds(_) => ("", " s"),
            Format::Minutes(_) => ("", " minutes"),
            Format::Millis(_) => ("", " ms"),
            Format::Percent(_) => ("", " %"),
            Format::Usd(_) => ("$", ""),
            Format::UsdPerMonth => ("$", "/month"),
        }
    }
}

/// One marked figure: its key and the text the runs give.
#[derive(Debug, Clone)]
pub struct Figure {
    pub key: String,
    pub format: Format,
    pub text: String,
}

impl Figure {
    pub fn new(key: &str, value: f64, format: Format) -> Figure {
        Figure {
            key: key.to_string(),
            format,
            text: format_value(value, format),
        }
    }

    pub fn word(key: &str, word: &str) -> Figure {
        Figure {
            key: key.to_string(),
            format: Format::Word,
            text: word.to_string(),
        }
    }
}

/// `value` rounded half away from zero to `decimals`, thousands grouped.
fn number(value: f64, decimals: usize) -> String {
    let scale = 10u64.pow(decimals as u32) as f64;
    let rounded = (value * scale).round() / scale;
    let text = format!("{rounded:.decimals$}");
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

pub fn format_value(value: f64, format: Format) -> String {
    let (prefix, suffix) = format.affixes();
    let n = match format {
        Format::Count | Format::UsdPerMonth => number(value, 0),
        Format::CountOrNo if value == 0.0 => "no".to_string(),
        Format::CountOrNo => number(value, 0),
        Format::Thousands => number(value / 1000.0, 0),
        Format::Plain(d) | Format::Seconds(d) | Format::Usd(d) => number(value, d),
        Format::Minutes(d) => number(value / 60.0, d),
        Format::Millis(d) => number(value * 1000.0, d),
        Format::Percent(d) => number(value * 100.0, d),
        Format::Word => unreachable!("a word is given as text"),
    };
    format!("{prefix}{n}{suffix}")
}

pub fn readme_path() -> PathBuf {
    // Both crates that use this sit one folder below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("scenarios/README.md")
}

/// A marker in the README: its key and where the comment starts and ends.
struct Marker {
    key: String,
    start: usize,
    end: usize,
}

/// `<!-- name.figure -->` comments; other comments are left alone.
fn markers(text: &str) -> Vec<Marker> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = text[from..].find("<!-- ") {
        let start = from + i;
        let Some(j) = text[start..].find(" -->") else {
            break;
        };
        let end = start + j + " -->".len();
        let key = &text[start + "<!-- ".len()..start + j];
        // One quoted in code (`<!-- spike.p99 -->`) is an example, not a marker.
        let quoted = text[..start].ends_with('`');
        let is_key = !quoted
            && key.contains('.')
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
        if is_key {
            out.push(Marker {
                key: key.to_string(),
                start,
                end,
            });
        }
        from = end;
    }
    out
}

/// Where the figure written just before `end` starts, if it has the format's shape.
fn figure_start(before: &str, format: Format) -> Option<usize> {
    let (prefix, suffix) = format.affixes();
    let body = before.strip_suffix(suffix)?;
    if format == Format::CountOrNo {
        if let Some(rest) = body.strip_suffix("no") {
            return Some(rest.len());
        }
    }
    let in_number = |c: char| match format {
        Format::Word => c.is_ascii_alphanumeric() || c == '-',
        _ => c.is_ascii_digit() || c == ',' || c == '.',
    };
    let n = body.chars().rev().take_while(|&c| in_number(c)).count();
    if n == 0 {
        return None;
    }
    let rest = body[..body.len() - n].strip_suffix(prefix)?;
    Some(rest.len())
}

/// What comparing a README's text with the figures found.
struct Comparison {
    /// Figures whose text differs: (key, written, computed).
    stale: Vec<(String, String, String)>,
    /// Markers no run computes, figures no marker shows, markers with no
    /// figure of the right shape before them.
    broken: Vec<String>,
    /// The text with every stale figure rewritten.
    rewritten: String,
}

/// Compares the markers whose key `owns` accepts with `figures`, and checks
/// that each figure is marked somewhere.
fn compare(text: &str, figures: &[Figure], owns: impl Fn(&str) -> bool) -> Comparison {
    let mut stale = Vec::new();
    let mut broken = Vec::new();
    let mut edits = Vec::new(); // (start, end, new text)
    let marks: Vec<Marker> = markers(text).into_iter().filter(|m| owns(&m.key)).collect();
    for m in &marks {
        let Some(f) = figures.iter().find(|f| f.key == m.key) else {
            broken.push(format!(
                "{}: marked in the README but no run computes it",
                m.key
            ));
            continue;
        };
        let before = &text[..m.start];
        let Some(start) = figure_start(before, f.format) else {
            let tail: String = before.chars().rev().take(30).collect();
            let tail: String = tail.chars().rev().collect();
            broken.push(format!(
                "{}: no figure shaped like `{}` just before the marker (…{tail})",
                m.key, f.text
            ));
            continue;
        };
        let written = &before[start..];
        if written != f.text {
            stale.push((m.key.clone(), written.to_string(), f.text.clone()));
            edits.push((start, m.start, f.text.clone()));
        }
    }
    for f in figures {
        if !marks.iter().any(|m| m.key == f.key) {
            broken.push(format!(
                "{}: computed but not marked in the README (`{}`)",
                f.key, f.text
            ));
        }
    }
    let mut rewritten = text.to_string();
    for (start, end, figure) in edits.iter().rev() {
        rewritten.replace_range(start..end, figure);
    }
    Comparison {
        stale,
        broken,
        rewritten,
    }
}

/// Checks scenarios/README.md's markers whose key `owns` accepts against
/// `figures`. With `UPDATE_README` set, rewrites the stale figures instead of
/// failing on them.
pub fn check(figures: &[Figure], owns: impl Fn(&str) -> bool) {
    let path = readme_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let c = compare(&text, figures, owns);
    let mut problems = c.broken;
    if std::env::var_os("UPDATE_README").is_some() {
        if !c.stale.is_empty() {
            std::fs::write(&path, &c.rewritten)
                .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
            eprintln!(
                "rewrote {} figure(s) in {}; review the sentences around them",
                c.stale.len(),
                path.display()
            );
        }
    } else {
        problems.extend(c.stale.iter().map(|(key, written, computed)| {
            format!("{key}: README says `{written}`, the run gives `{computed}`")
        }));
    }
    assert!(
        problems.is_empty(),
        "{} figure(s) of scenarios/README.md do not match the runs; fix the README \
         (or rerun with UPDATE_README=1 to rewrite the figures, then review the prose):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_the_readme_writes() {
        assert_eq!(format_value(1149.0, Format::Count), "1,149");
        assert_eq!(format_value(0.0, Format::CountOrNo), "no");
        assert_eq!(format_value(60393.0, Format::Thousands), "60k");
        assert_eq!(format_value(242.5, Format::Seconds(0)), "243 s");
        assert_eq!(format_value(0.0231, Format::Millis(1)), "23.1 ms");
        assert_eq!(format_value(0.559, Format::Percent(0)), "56 %");
        assert_eq!(format_value(11750.0, Format::UsdPerMonth), "$11,750/month");
        assert_eq!(format_value(30.6077, Format::Usd(2)), "$30.61");
        assert_eq!(format_value(300.0, Format::Minutes(0)), "5 minutes");
    }

    #[test]
    fn finds_the_figure_before_its_marker() {
        let t = "p99 28 s<!-- spike.p99 -->, cost $8,078/month<!-- x.cost -->";
        let m = markers(t);
        assert_eq!(m.len(), 2);
        let s = figure_start(&t[..m[0].start], Format::Seconds(0)).unwrap();
        assert_eq!(&t[s..m[0].start], "28 s");
        let s = figure_start(&t[..m[1].start], Format::UsdPerMonth).unwrap();
        assert_eq!(&t[s..m[1].start], "$8,078/month");
        assert_eq!(figure_start("p99 28 ms", Format::Seconds(0)), None);
        assert!(markers("e.g. `<!-- spike.p99 -->`; <!-- a comment -->").is_empty());
    }

    #[test]
    fn reports_and_rewrites_every_stale_figure() {
        let text = "p99 28 s<!-- a.p99 -->, 1,179<!-- a.waited --> waited, 5<!-- a.gone -->, 9 ms<!-- b.p99 -->";
        let figures = [
            Figure::new("a.p99", 29.07, Format::Seconds(0)),
            Figure::new("a.waited", 1149.0, Format::Count),
            Figure::new("a.new", 3.0, Format::Count),
        ];
        let c = compare(text, &figures, |k| k.starts_with("a."));
        assert_eq!(
            c.stale,
            [
                ("a.p99".into(), "28 s".into(), "29 s".into()),
                ("a.waited".into(), "1,179".into(), "1,149".into())
            ]
        );
        assert_eq!(
            c.broken,
            [
                "a.gone: marked in the README but no run computes it",
                "a.new: computed but not marked in the README (`3`)"
            ]
        );
        assert_eq!(
            c.rewritten,
            "p99 29 s<!-- a.p99 -->, 1,149<!-- a.waited --> waited, 5<!-- a.gone -->, 9 ms<!-- b.p99 -->"
        );
    }
}
