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

/// Rewrites serde's wording in the words of the file: "expected an integer,
/// got a string", never `u32`, `f64`, `struct X` or `enum X`.
pub fn plain_words(message: &str) -> String {
    for (start, strict) in [("invalid type: ", false), ("invalid value: ", true)] {
        if let Some(rest) = message.strip_prefix(start) {
            if let Some((got, expected)) = rest.split_once(", expected ") {
                return format!(
                    "expected {}, got {}",
                    expected_words(expected, strict),
                    got_words(got, strict)
                );
            }
        }
    }
    if let Some(name) = message.strip_prefix("data did not match any variant of untagged enum ") {
        return match name.trim() {
            "BoundValue" => {
                "expected a number or text with a unit (\"250ms\", \"1%\", \"$5000\")".into()
            }
            "Scalar" => "expected a string, a number or true/false".into(),
            _ => "this value has none of the forms allowed here".into(),
        };
    }
    if message == "wanted string or table" {
        return "expected one of the names allowed here, as a string".into();
    }
    if let Some((head, expected)) = message.split_once(", expected ") {
        if head.starts_with("invalid length") {
            return format!("{head}, expected {}", expected_words(expected, true));
        }
    }
    scrub(message)
}

/// serde's `Expected` text (a Rust type name, or a visitor's own words).
fn expected_words(expected: &str, strict: bool) -> String {
    let e = expected.trim();
    let unsigned = |max: &str| {
        if strict {
            format!("an integer from 0 to {max}")
        } else {
            "an integer".to_string()
        }
    };
    match e {
        "u8" => unsigned("255"),
        "u16" => unsigned("65535"),
        "u32" => unsigned("4294967295"),
        "u64" | "u128" | "usize" if strict => "a non-negative integer".into(),
        "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => {
            "an integer".into()
        }
        "f32" | "f64" => "a number".into(),
        "a boolean" | "bool" => "true or false".into(),
        "a string" | "a borrowed string" | "string" | "String" => "a string".into(),
        "a character" | "char" => "a single character".into(),
        "a sequence" | "sequence" => "a list".into(),
        "a map" | "map" => "a table".into(),
        "unit" => "nothing".into(),
        "variant identifier" | "field identifier" => "one of the names allowed here".into(),
        _ if e.starts_with("struct ")
            || e.starts_with("internally tagged enum ")
            || e.starts_with("adjacently tagged enum ") =>
        {
            "a table".into()
        }
        _ if e.starts_with("enum ") => "one of the names allowed here".into(),
        _ if e.starts_with("tuple") || e.starts_with("an array of length") => "a list".into(),
        _ => scrub(e),
    }
}

/// serde's `Unexpected` text: `string "x"`, `integer `5``, `floating point `1.5``...
fn got_words(got: &str, strict: bool) -> String {
    let g = got.trim();
    let quoted = |s: &str| s.trim().trim_matches('`').to_string();
    if let Some(v) = g.strip_prefix("string ") {
        return if strict {
            v.to_string()
        } else {
            "a string".into()
        };
    }
    for prefix in ["integer ", "floating point ", "boolean ", "character "] {
        if let Some(v) = g.strip_prefix(prefix) {
            return quoted(v);
        }
    }
    match g {
        "sequence" => "a list".into(),
        "map" => "a table".into(),
        "unit value" => "nothing".into(),
        "Option value" | "newtype struct" => "a value".into(),
        _ => scrub(g),
    }
}

/// Last resort: words for any Rust type name left in a message.
fn scrub(message: &str) -> String {
    const WORDS: &[(&str, &str)] = &[
        ("u8", "an integer"),
        ("u16", "an integer"),
        ("u32", "an integer"),
        ("u64", "an integer"),
        ("u128", "an integer"),
        ("usize", "an integer"),
        ("i8", "an integer"),
        ("i16", "an integer"),
        ("i32", "an integer"),
        ("i64", "an integer"),
        ("i128", "an integer"),
        ("isize", "an integer"),
        ("f32", "a number"),
        ("f64", "a number"),
        ("String", "a string"),
        ("str", "a string"),
        ("bool", "true or false"),
        ("Vec", "a list"),
        ("Option", "a value"),
        ("BTreeMap", "a table"),
        ("HashMap", "a table"),
    ];
    let mut out = String::with_capacity(message.len());
    let mut word = String::new();
    let mut skip_name = false;
    let flush = |word: &mut String, out: &mut String, skip_name: &mut bool| {
        if word.is_empty() {
            return;
        }
        if *skip_name {
            // The type name after `struct` / `enum` was already put in words.
            *skip_name = false;
        } else if word == "struct" {
            out.push_str("a table");
            *skip_name = true;
        } else if word == "enum" {
            out.push_str("a value");
            *skip_name = true;
        } else if let Some((_, w)) = WORDS.iter().find(|(t, _)| t == word) {
            out.push_str(w);
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    let mut in_backquotes = false;
    for c in message.chars() {
        if c == '`' {
            in_backquotes = !in_backquotes;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            if in_backquotes || c == '`' {
                // Quoted text is the user's own (a key or value): keep it.
                out.push_str(&word);
                word.clear();
            } else {
                flush(&mut word, &mut out, &mut skip_name);
            }
            if !(skip_name && c == ' ') {
                out.push(c);
            }
        }
    }
    if in_backquotes {
        out.push_str(&word);
    } else {
        flush(&mut word, &mut out, &mut skip_name);
    }
    out
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
