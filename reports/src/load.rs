//! Reading a results file, with errors that name the file and the problem.

use crate::ReportError;
use lab_results::{Results, OLDEST_SCHEMA_VERSION, SCHEMA_VERSION};
use std::path::Path;

/// Reads and parses `path` as a `results.json` of the current schema.
pub fn load_results(path: &Path) -> Result<Results, ReportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_results(path, &text)
}

/// Parses the text of a results file; `path` only names it in errors.
pub fn parse_results(path: &Path, text: &str) -> Result<Results, ReportError> {
    let schema = |message: String| ReportError::Schema {
        path: path.to_path_buf(),
        message,
    };
    // Syntax first, so a truncated file reads as "not valid JSON" rather than
    // as a missing field.
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ReportError::Syntax {
        path: path.to_path_buf(),
        message: syntax_message(&e),
        line: e.line(),
        column: e.column(),
    })?;
    let Some(top) = value.as_object() else {
        return Err(schema(format!(
            "expected a JSON object at the top level, found {}",
            kind(&value)
        )));
    };
    match top.get("schema_version") {
        None => {
            return Err(schema(
                "no `schema_version` key (files written by `lab run`, `lab load` and \
                 `lab merge` have one)"
                    .into(),
            ))
        }
        Some(v) => match v.as_u64() {
            Some(found)
                if (u64::from(OLDEST_SCHEMA_VERSION)..=u64::from(SCHEMA_VERSION))
                    .contains(&found) => {}
            Some(found) => {
                return Err(ReportError::Version {
                    path: path.to_path_buf(),
                    found,
                    expected: SCHEMA_VERSION,
                })
            }
            None => {
                return Err(schema(format!(
                    "`schema_version` should be a whole number, found {}",
                    kind(v)
                )))
            }
        },
    }
    drop(value);
    // Second pass over the text (not the Value) so errors keep line and column,
    // and serde_path_to_error adds the key path.
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let at = e.path().to_string();
        let inner = e.into_inner();
        if at == "." {
            schema(inner.to_string())
        } else {
            schema(format!("at `{at}`: {inner}"))
        }
    })
}

/// serde_json's message without its own " at line L column C" suffix, which
/// the error variant states in its own words.
fn syntax_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full,
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
