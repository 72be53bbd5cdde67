//! `lab import`: turns a Kubernetes manifest that configures autoscaling (an
//! autoscaling/v2 HorizontalPodAutoscaler, a KEDA ScaledObject, or a KServe
//! InferenceService with its Knative annotations) into a scenario's
//! `[services.autoscaler]` table. Built-in kinds parse with `k8s-openapi`, the custom
//! ones with `kube`'s `CustomResource` derive; the result is checked with
//! [`lab_autoscale::AutoscalerSpec::problems`].
//!
//! Kept apart from `lab-autoscale` so that crate's dependencies stay tiny.

mod crds;
mod hpa;
mod keda;
mod kserve;

use lab_autoscale::{AutoscalerSpec, Bounds};
use serde::Serialize;

pub use crds::{InferenceService, ScaledObject};

/// What a manifest says about autoscaling.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// e.g. "HorizontalPodAutoscaler default/web".
    pub source: String,
    pub autoscaler: AutoscalerSpec,
    /// The replica bounds, which belong to the service rather than the autoscaler table.
    pub bounds: Bounds,
    /// KServe's containerConcurrency, also a service setting.
    pub container_concurrency: Option<u32>,
    /// Settings we could not carry over, in words.
    pub notes: Vec<String>,
    /// What `AutoscalerSpec::problems` reports: key path and fix.
    pub problems: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ImportError {
    #[error("not valid YAML: {0}")]
    Yaml(String),
    #[error("the manifest has no `kind`; expected HorizontalPodAutoscaler, ScaledObject or InferenceService")]
    NoKind,
    #[error("`{kind}` ({api_version}) is not an autoscaling manifest lab can import; give a HorizontalPodAutoscaler (autoscaling/v2), a ScaledObject (keda.sh/v1alpha1) or an InferenceService (serving.kserve.io/v1beta1)")]
    UnsupportedKind { kind: String, api_version: String },
    #[error("{kind} does not match its schema: {message}")]
    Schema { kind: String, message: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("the file holds no HorizontalPodAutoscaler, ScaledObject or InferenceService")]
    Nothing,
}

/// Imports the first autoscaling object in a (possibly multi-document) YAML file.
pub fn import_yaml(text: &str) -> Result<Imported, ImportError> {
    let mut first_err = None;
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value: serde_yaml::Value =
            serde::Deserialize::deserialize(doc).map_err(|e| ImportError::Yaml(e.to_string()))?;
        if value.is_null() {
            continue;
        }
        match import_value(value) {
            Ok(i) => return Ok(i),
            // A multi-document file may hold a Deployment and the like next to the HPA.
            Err(e @ ImportError::UnsupportedKind { .. }) => {
                first_err.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(first_err.unwrap_or(ImportError::Nothing))
}

fn import_value(value: serde_yaml::Value) -> Result<Imported, ImportError> {
    let kind = value
        .get("kind")
        .and_then(|k| k.as_str())
        .ok_or(ImportError::NoKind)?
        .to_string();
    let api_version = value
        .get("apiVersion")
        .and_then(|k| k.as_str())
        .unwrap_or("")
        .to_string();
    let mut imported = match (kind.as_str(), api_version.as_str()) {
        ("HorizontalPodAutoscaler", "autoscaling/v2") => hpa::import(value)?,
        ("HorizontalPodAutoscaler", other) => {
            return Err(ImportError::Unsupported(format!(
                "HorizontalPodAutoscaler {other} is not supported; convert it to autoscaling/v2 (kubectl convert) and import that"
            )))
        }
        ("ScaledObject", _) => keda::import(value)?,
        ("InferenceService", _) => kserve::import(value)?,
        _ => return Err(ImportError::UnsupportedKind { kind, api_version }),
    };
    imported.problems = imported.autoscaler.problems(imported.bounds);
    Ok(imported)
}

fn schema_error(kind: &str, e: impl std::fmt::Display) -> ImportError {
    ImportError::Schema {
        kind: kind.to_string(),
        message: e.to_string(),
    }
}

/// Converts between two serde shapes of the same JSON (k8s-openapi types and ours
/// mirror the same camelCase fields).
fn convert<T: serde::de::DeserializeOwned>(
    what: &str,
    v: impl Serialize,
) -> Result<T, ImportError> {
    let json = serde_json::to_value(v).map_err(|e| schema_error(what, e))?;
    serde_json::from_value(json).map_err(|e| schema_error(what, e))
}

#[derive(Serialize)]
struct Doc<'a> {
    services: Services<'a>,
}

#[derive(Serialize)]
struct Services<'a> {
    autoscaler: &'a AutoscalerSpec,
}

impl Imported {
    /// The autoscaler table as TOML, with the service-level settings and anything that
    /// needs attention as comments above it.
    pub fn to_toml(&self) -> String {
        let mut out = format!("# Imported from {}.\n", self.source);
        out += &format!(
            "# Service settings from the manifest (put them on the service): minReplicas = {}, maxReplicas = {}",
            self.bounds.min, self.bounds.max
        );
        if let Some(cc) = self.container_concurrency {
            out += &format!(", containerConcurrency = {cc}");
        }
        out += "\n";
        for n in &self.notes {
            out += &format!("# Note: {n}\n");
        }
        for (k, m) in &self.problems {
            out += &format!("# Needs attention: autoscaler.{k}: {m}\n");
        }
        let body = toml::to_string(&Doc {
            services: Services {
                autoscaler: &self.autoscaler,
            },
        })
        .unwrap_or_else(|e| format!("# could not render the table: {e}\n"));
        out + &inline_lists(&body)
    }
}

/// Rewrites arrays of tables (metrics, triggers, policies) as arrays of inline tables,
/// one per line, the way people write them by hand.
fn inline_lists(text: &str) -> String {
    let Ok(mut doc) = text.parse::<toml_edit::DocumentMut>() else {
        return text.to_string();
    };
    inline_in(doc.as_table_mut());
    doc.to_string()
}

fn inline_in(table: &mut toml_edit::Table) {
    let keys: Vec<String> = table.iter().map(|(k, _)| k.to_string()).collect();
    for key in keys {
        let Some(item) = table.get_mut(&key) else {
            continue;
        };
        if let toml_edit::Item::Table(t) = item {
            inline_in(t);
        } else if item.is_array_of_tables() {
            if let toml_edit::Item::ArrayOfTables(aot) = std::mem::take(item) {
                let mut array = aot.into_array();
                for v in array.iter_mut() {
                    v.decor_mut().set_prefix("\n    ");
                }
                array.set_trailing("\n");
                array.set_trailing_comma(true);
                *item = toml_edit::Item::Value(toml_edit::Value::Array(array));
                if let Some(mut k) = table.key_mut(&key) {
                    k.leaf_decor_mut().set_suffix(" ");
                }
            }
        }
    }
}
