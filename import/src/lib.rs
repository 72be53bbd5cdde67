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
pub mod prometheus;
mod yaml;

use lab_autoscale::{AutoscalerSpec, Bounds};
use serde::Serialize;
use std::fmt;
use yaml::{Document, Seg};

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

/// A place in the manifest file, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

/// Why a manifest could not be imported, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportError {
    /// Where in the file, when the error is about a place in it.
    pub position: Option<Position>,
    /// The key inside the object, e.g. `spec.metrics[0].resource.target`.
    pub path: Option<String>,
    pub problem: Problem,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum Problem {
    #[error("not valid YAML: {0}")]
    Yaml(String),
    #[error("the manifest has no `kind`; expected HorizontalPodAutoscaler, ScaledObject or InferenceService")]
    NoKind,
    #[error("`{kind}` ({api_version}) is not an autoscaling manifest lab can import; give a HorizontalPodAutoscaler (autoscaling/v2), a ScaledObject (keda.sh/v1alpha1) or an InferenceService (serving.kserve.io/v1beta1)")]
    UnsupportedKind { kind: String, api_version: String },
    #[error("{message} ({kind})")]
    Schema { kind: String, message: String },
    #[error("{0}")]
    Unsupported(String),
    #[error("the file holds no HorizontalPodAutoscaler, ScaledObject or InferenceService")]
    Nothing,
}

/// `LINE:COLUMN: KEY.PATH: problem`, each part where known; [`ImportError::in_file`]
/// puts the file name in front.
impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = self.position {
            write!(f, "{}:{}: ", p.line, p.column)?;
        }
        if let Some(path) = &self.path {
            write!(f, "{path}: ")?;
        }
        write!(f, "{}", self.problem)
    }
}

impl std::error::Error for ImportError {}

impl From<Problem> for ImportError {
    fn from(problem: Problem) -> Self {
        ImportError {
            position: None,
            path: None,
            problem,
        }
    }
}

impl ImportError {
    /// The error as editors and compilers print it: `hpa.yaml:12:7: spec.maxReplicas: ...`.
    pub fn in_file(&self, name: &str) -> String {
        match self.position {
            Some(_) => format!("{name}:{self}"),
            None => format!("{name}: {self}"),
        }
    }
}

/// Imports the first autoscaling object in a (possibly multi-document) YAML file;
/// documents of other kinds (a Deployment next to its HPA) are skipped.
pub fn import_yaml(text: &str) -> Result<Imported, ImportError> {
    let mut first_err = None;
    for doc in yaml::documents(text)? {
        match import_document(&doc) {
            Ok(i) => return Ok(i),
            Err(
                e @ ImportError {
                    problem: Problem::UnsupportedKind { .. },
                    ..
                },
            ) => {
                first_err.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(first_err.unwrap_or_else(|| Problem::Nothing.into()))
}

fn import_document(doc: &Document) -> Result<Imported, ImportError> {
    let Some(kind) = doc.kind.clone() else {
        return Err(doc.error_at(&[], Problem::NoKind));
    };
    let api_version = doc.api_version.clone().unwrap_or_default();
    let mut imported = match (kind.as_str(), api_version.as_str()) {
        ("HorizontalPodAutoscaler", "autoscaling/v2") => hpa::import(doc)?,
        ("HorizontalPodAutoscaler", other) => {
            return Err(doc.error_at(&[yaml::key("apiVersion")], Problem::Unsupported(format!(
                "HorizontalPodAutoscaler {other} is not supported; convert it to autoscaling/v2 (kubectl convert) and import that"
            ))))
        }
        ("ScaledObject", _) => keda::import(doc)?,
        ("InferenceService", _) => kserve::import(doc)?,
        (list, _) if list.ends_with("List") => {
            return Err(doc.error_at(&[yaml::key("kind")], Problem::Unsupported(format!(
                "a {list} holds several objects; import one at a time (kubectl get hpa NAME -o yaml)"
            ))))
        }
        _ => {
            return Err(doc.error_at(
                &[yaml::key("kind")],
                Problem::UnsupportedKind { kind, api_version },
            ))
        }
    };
    imported.problems = imported.autoscaler.problems(imported.bounds);
    Ok(imported)
}

fn schema_problem(kind: &str, e: impl fmt::Display) -> Problem {
    Problem::Schema {
        kind: kind.to_string(),
        message: e.to_string(),
    }
}

/// Converts between two serde shapes of the same JSON (k8s-openapi types and ours
/// mirror the same camelCase fields); an error names the key under `at`, placed in
/// the document.
fn convert<T: serde::de::DeserializeOwned>(
    doc: &Document,
    kind: &str,
    at: &[Seg],
    v: impl Serialize,
) -> Result<T, ImportError> {
    let json = serde_json::to_value(v).map_err(|e| doc.error_at(at, schema_problem(kind, e)))?;
    serde_path_to_error::deserialize(json).map_err(|e| {
        let mut path = at.to_vec();
        path.extend(yaml::segments(e.path()));
        doc.error_at(&path, schema_problem(kind, e.inner()))
    })
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
