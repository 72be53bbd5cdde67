//! What a policy is shown at each decision: the target's replica counts, its pods and
//! the service-wide metric totals.

use crate::{SignalValues, Time};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodPhase {
    Pending,
    Running,
    Failed,
}

/// One pod of the scale target as the metrics pipeline sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSample {
    pub phase: PodPhase,
    /// The Ready condition is True.
    pub ready: bool,
    /// A deletion timestamp is set.
    pub deleting: bool,
    pub start: Option<Time>,
    /// When the Ready condition last changed.
    pub ready_transition: Option<Time>,
    pub cpu_request_milli: u64,
    pub memory_request_bytes: u64,
    /// None = no sample yet (missing metrics).
    pub metrics: Option<SignalValues>,
}

/// The metric source failed (KEDA falls back; HPA treats the metric as invalid).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricError(pub String);

/// Everything a policy reads at one decision.
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    /// `scale.spec.replicas` as the controller last set it.
    pub spec_replicas: u32,
    /// Pods that exist for the target.
    pub status_replicas: u32,
    pub pods: &'a [PodSample],
    /// Service-wide values as Prometheus or the external metrics API return them (sums
    /// over pods, plus requests buffered at the activator for concurrency and queue).
    pub totals: Result<SignalValues, MetricError>,
    /// Requests buffered at the activator while no pod is ready.
    pub activator_queue: u32,
}

impl Observation<'_> {
    /// Pods in phase Running with Ready=True and no deletion pending.
    pub fn ready_pods(&self) -> u32 {
        self.pods
            .iter()
            .filter(|p| p.phase == PodPhase::Running && p.ready && !p.deleting)
            .count() as u32
    }
}
