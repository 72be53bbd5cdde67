//! Autoscaler decision logic for HPA (autoscaling/v2), Knative's KPA and KEDA.
//!
//! Architecture invariant: no I/O, no async runtime, no wall clock. A policy is built
//! from its configuration, fed observations, and asked `decide(now, observation)`; the
//! simulator passes virtual time and the live controller passes wall time, and both get
//! the same decisions. Formulas, defaults and the upstream versions they follow are in
//! `docs/autoscalers.md`.

mod autoscaler;
mod fixed;
pub mod hpa;
pub mod keda;
pub mod kpa;
mod observe;
mod signal;
pub mod spec;

pub use autoscaler::{Autoscaler, Decision};
pub use observe::{MetricError, Observation, PodPhase, PodSample};
pub use signal::{reading_for, Reading, Signal, SignalValues, KNOWN_METRIC_NAMES};
pub use spec::{AutoscalerSpec, Bounds, FixedSpec, HpaSpec, KedaSpec, KpaSpec};

/// Time since the start of the run (simulation) or of the controller (live).
pub type Time = std::time::Duration;
