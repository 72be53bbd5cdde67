//! The committed JSON Schema of the scenario format is what the types generate, the
//! example scenarios validate against it and name it on their first line, and it
//! refuses what the parser refuses.

use lab_scenario::schema::{json_schema, json_schema_text, SCHEMA_FILE};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The example scenarios: `scenarios/*.toml` and `scenarios/oracles/*.toml`, not the
/// search spaces of `lab plan` (`*.search.toml`).
fn examples() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in ["scenarios", "scenarios/oracles"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.ends_with(".toml") && !name.ends_with(".search.toml") {
                out.push(path);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 8, "{out:?}");
    out
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&json_schema()).expect("the schema is a valid JSON Schema")
}

/// TOML as the JSON a schema validator sees.
fn as_json(text: &str) -> serde_json::Value {
    toml::from_str(text).unwrap()
}

fn errors(v: &jsonschema::Validator, doc: &serde_json::Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path))
        .collect()
}

/// Regenerate with `UPDATE_SCHEMA=1 cargo test -p lab-scenario --test schema` after a
/// deliberate change to the scenario types.
#[test]
fn committed_schema_matches_the_types() {
    let path = repo().join(SCHEMA_FILE);
    let generated = json_schema_text();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{SCHEMA_FILE} is stale: rerun with UPDATE_SCHEMA=1 cargo test -p lab-scenario --test schema"
    );
}

#[test]
fn every_example_names_the_schema_first_and_validates() {
    let v = validator();
    let schema = repo().join(SCHEMA_FILE).canonicalize().unwrap();
    for path in examples() {
        let text = std::fs::read_to_string(&path).unwrap();
        let first = text.lines().next().unwrap_or("");
        let named = first
            .strip_prefix("#:schema ")
            .unwrap_or_else(|| panic!("{}: the first line is not `#:schema PATH`", path.display()));
        assert_eq!(
            path.parent()
                .unwrap()
                .join(named.trim())
                .canonicalize()
                .ok(),
            Some(schema.clone()),
            "{}: `#:schema {named}` does not lead to {SCHEMA_FILE}",
            path.display()
        );
        // The parser accepts the file (it is an example), and so must the schema.
        lab_scenario::parse(
            &text,
            &path.display().to_string(),
            path.parent().unwrap(),
            &[],
        )
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let found = errors(&v, &as_json(&text));
        assert!(found.is_empty(), "{}: {found:#?}", path.display());
    }
}

/// What the parser refuses, the schema refuses too: an unknown key, a duration
/// that is not one, a misplaced `cv`, a quantity with an unknown suffix, a
/// phase kind that does not exist.
#[test]
fn the_schema_refuses_what_the_parser_refuses() {
    let v = validator();
    let good = std::fs::read_to_string(repo().join("scenarios/oracles/mmc.toml")).unwrap();
    let good_json = as_json(&good);
    assert!(errors(&v, &good_json).is_empty());
    type Break = fn(&mut serde_json::Value);
    let cases: [(&str, Break); 6] = [
        ("unknown top-level key", |d| {
            d["frobnicate"] = 1.into();
        }),
        ("duration in words", |d| {
            d["run"]["warmup"] = "5 minutes".into();
        }),
        ("negative seconds", |d| {
            d["run"]["warmup"] = (-3).into();
        }),
        ("cv on poisson", |d| {
            d["traffic"][0]["arrivals"] = serde_json::json!({ "process": "poisson", "cv": 2.0 });
        }),
        ("unknown phase kind", |d| {
            d["traffic"][0]["phases"][0]["kind"] = "sawtooth".into();
        }),
        ("quantity suffix", |d| {
            d["services"][0]["modelMemory"] = "3 gigs".into();
        }),
    ];
    for (what, break_it) in cases {
        let mut doc = good_json.clone();
        break_it(&mut doc);
        assert!(!errors(&v, &doc).is_empty(), "the schema accepts {what}");
        // The parser refuses it as well, so the schema is not stricter than the file format.
        let toml_text = toml::to_string(&doc).unwrap();
        assert!(
            lab_scenario::parse(&toml_text, "t.toml", &repo().join("scenarios/oracles"), &[])
                .is_err(),
            "the parser accepts {what}"
        );
    }
    // Written either way, durations and quantities pass.
    let mut doc = good_json.clone();
    doc["run"]["warmup"] = 30.into();
    doc["services"][0]["modelMemory"] = "1.5Gi".into();
    assert!(errors(&v, &doc).is_empty(), "{:?}", errors(&v, &doc));
}
