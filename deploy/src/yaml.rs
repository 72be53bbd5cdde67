//! YAML text for rendered objects: one document per object, a comment on top.

use serde_json::Value;

/// `header`, then every value as its own `---` document. Keys keep the
/// order serde_json gives them (sorted), so the output is deterministic.
pub fn documents(values: &[&Value], header: &str) -> String {
    let mut out = String::from(header);
    for v in values {
        out.push_str("---\n");
        // A serde_json::Value always serializes; a failure here is a bug in the serializer.
        let text = serde_saphyr::to_string(v).expect("a JSON value serializes as YAML");
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// One value as YAML text, for configuration files held inside a ConfigMap.
pub fn plain(v: &Value) -> String {
    serde_saphyr::to_string(v).expect("a JSON value serializes as YAML")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_look_like_other_types_stay_strings() {
        let v = serde_json::json!({"a": "8", "b": "true", "c": "0.5", "d": "null", "e": 8, "f": "60s", "g": "on"});
        let text = documents(&[&v], "# h\n");
        let back: serde_json::Value =
            serde_saphyr::from_str(text.trim_start_matches("# h\n---\n")).unwrap();
        assert_eq!(back, v, "{text}");
    }
}
