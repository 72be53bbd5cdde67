//! The scenario format as a JSON Schema, generated from the types the parser
//! deserializes into, for editors (taplo's `#:schema` line at the top of each example
//! file) and other tools. Committed as `scenarios/scenario.schema.json`.

use crate::spec::Scenario;

/// Where the schema is committed, relative to the repository root.
pub const SCHEMA_FILE: &str = "scenarios/scenario.schema.json";

/// The schema (draft 7, which TOML editors' validators read), describing what the
/// parser accepts: defaulted keys are optional, durations and quantities may be
/// text or numbers, unknown keys are refused.
pub fn json_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::draft07().into_generator();
    let schema = generator.into_root_schema_for::<Scenario>();
    serde_json::to_value(schema).expect("a schema is plain JSON")
}

/// The schema as committed: pretty-printed, with a final newline.
pub fn json_schema_text() -> String {
    serde_json::to_string_pretty(&json_schema()).expect("a schema is plain JSON") + "\n"
}
