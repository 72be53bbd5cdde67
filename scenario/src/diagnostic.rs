//! Errors that point at the file, line, column and key, and suggest the fix.

use std::fmt;

/// One problem found in a scenario.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based line and column, when the key can be located in the file.
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Key path such as `services[0].minReplicas` (empty for the whole file).
    pub key: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": `{}`: {}", self.key, self.message)
        }
    }
}

/// Every problem of a scenario, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.diagnostics.len();
        if n > 1 {
            writeln!(f, "{n} problems in the scenario:")?;
        }
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScenarioError {}

/// Byte offset to 1-based (line, column), counting columns in characters.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Adds "did you mean `x`?" to serde's "unknown field `y`, expected one of ..."
/// and "unknown variant" messages.
pub fn suggest(message: &str) -> String {
    let Some(unknown) = between(message, "unknown field `", "`")
        .or_else(|| between(message, "unknown variant `", "`"))
    else {
        return message.to_string();
    };
    let expected: Vec<&str> = message
        .split("expected")
        .nth(1)
        .map(|rest| rest.split('`').skip(1).step_by(2).collect::<Vec<_>>())
        .unwrap_or_default();
    let best = expected
        .iter()
        .map(|cand| {
            (
                strsim::jaro_winkler(&unknown.to_lowercase(), &cand.to_lowercase()),
                *cand,
            )
        })
        .filter(|(score, _)| *score > 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, cand)) => format!("{message}; did you mean `{cand}`?"),
        None => message.to_string(),
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let i = s.find(start)? + start.len();
    let j = s[i..].find(end)? + i;
    Some(&s[i..j])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_closest_field() {
        let m = suggest(
            "unknown field `minReplica`, expected one of `name`, `minReplicas`, `maxReplicas`",
        );
        assert!(m.ends_with("did you mean `minReplicas`?"), "{m}");
        let v = suggest("unknown variant `poison`, expected one of `poisson`, `gamma`, `uniform`");
        assert!(v.ends_with("did you mean `poisson`?"), "{v}");
        let none = suggest("unknown field `zzz`, expected `name`");
        assert!(!none.contains("did you mean"));
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("a\nbc\nd", 3), (2, 2));
        assert_eq!(line_col("abc", 0), (1, 1));
    }
}
