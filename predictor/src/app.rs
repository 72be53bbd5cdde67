//! State shared by the REST and gRPC front ends.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::batcher::Batcher;
use crate::error::ApiError;
use crate::metrics::Metrics;

pub const SERVER_NAME: &str = "lab-predictor";
/// Every model is served as version 1.
pub const MODEL_VERSION: &str = "1";
pub const EXTENSIONS: &[&str] = &["binary_tensor_data"];

pub struct App {
    pub models: std::sync::RwLock<BTreeMap<String, Arc<Batcher>>>,
    pub metrics: Arc<Metrics>,
    /// Models loaded and warmed up, and not shutting down.
    pub ready: AtomicBool,
    /// SIGTERM received: refuse new inference requests.
    pub draining: AtomicBool,
    pub max_body_bytes: usize,
    /// Longest a request body may take to arrive.
    pub body_timeout: std::time::Duration,
    /// Turns true at SIGTERM: connections and bodies still arriving stop waiting.
    pub stop: tokio::sync::watch::Sender<bool>,
    /// Every model named on the command line, loaded yet or not: one still
    /// loading is not ready (503), not unknown (404).
    pub configured: Vec<String>,
}

impl App {
    pub fn new(
        metrics: Arc<Metrics>,
        max_body_bytes: usize,
        body_timeout: std::time::Duration,
        configured: Vec<String>,
    ) -> App {
        App {
            models: Default::default(),
            metrics,
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            max_body_bytes,
            body_timeout,
            stop: tokio::sync::watch::channel(false).0,
            configured,
        }
    }

    /// Named on the command line but not loaded yet.
    pub fn is_loading(&self, name: &str) -> bool {
        self.configured.iter().any(|n| n == name)
            && self
                .models
                .read()
                .map(|m| !m.contains_key(name))
                .unwrap_or(false)
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst) && !self.draining.load(Ordering::SeqCst)
    }

    pub fn model_names(&self) -> Vec<String> {
        self.models
            .read()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The model's batcher; 404 for an unknown name or version.
    pub fn model(&self, name: &str, version: Option<&str>) -> Result<Arc<Batcher>, ApiError> {
        if let Some(v) = version.filter(|v| !v.is_empty()) {
            if v != MODEL_VERSION {
                return Err(ApiError::not_found(format!(
                    "model {name} has no version {v} (versions: {MODEL_VERSION})"
                )));
            }
        }
        if self.is_loading(name) {
            return Err(ApiError::unavailable(format!(
                "model '{name}' is still loading"
            )));
        }
        self.models
            .read()
            .ok()
            .and_then(|m| m.get(name).cloned())
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "unknown model '{name}' (serving: {})",
                    self.model_names().join(", ")
                ))
            })
    }

    /// Refuses inference while shutting down or before the models are warm.
    pub fn admit(&self) -> Result<(), ApiError> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(ApiError::unavailable("server is shutting down"));
        }
        if !self.ready.load(Ordering::SeqCst) {
            return Err(ApiError::unavailable("models are still loading"));
        }
        Ok(())
    }

    pub fn queue_depths(&self) -> Vec<(String, usize)> {
        self.models
            .read()
            .map(|m| {
                m.iter()
                    .map(|(n, b)| (n.clone(), b.queued_requests()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Counts a request in flight, under its model's label, for as long as it lives.
pub struct Inflight<'a>(&'a Metrics, String);

impl<'a> Inflight<'a> {
    pub fn new(m: &'a Metrics, model: &str) -> Self {
        m.inflight_add(model, 1);
        Inflight(m, model.to_string())
    }
}

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        self.0.inflight_add(&self.1, -1);
    }
}
