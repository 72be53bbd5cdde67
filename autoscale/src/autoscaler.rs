//! The one entry point the simulator and the live controller use: an [`Autoscaler`]
//! built from an [`AutoscalerSpec`], whatever its kind.

use crate::fixed::Fixed;
use crate::hpa::{Hpa, HpaConfig};
use crate::keda::{Keda, KedaConfig};
use crate::kpa::{Kpa, KpaConfig};
use crate::{AutoscalerSpec, Bounds, Observation, SignalValues, Time};

/// What a policy decided at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Replicas wanted; may equal the current spec.replicas.
    pub desired: u32,
    /// What the decision rested on, in words with the numbers.
    pub reason: String,
    /// Whether the Knative activator is (or should be) in the request path.
    pub activator_in_path: bool,
}

#[derive(Debug, Clone)]
enum Policy {
    Hpa(Box<Hpa>),
    Kpa(Box<Kpa>),
    Keda(Box<Keda>),
    Fixed(Fixed),
}

/// A running autoscaler of any kind.
#[derive(Debug, Clone)]
pub struct Autoscaler {
    policy: Policy,
}

fn flatten(problems: Vec<(String, String)>) -> Vec<String> {
    problems
        .into_iter()
        .map(|(k, m)| if k.is_empty() { m } else { format!("{k}: {m}") })
        .collect()
}

impl Autoscaler {
    /// Builds the policy the spec names. Errors are "key.path: message" lines.
    pub fn new(
        spec: &AutoscalerSpec,
        bounds: Bounds,
        container_concurrency: u32,
        now: Time,
    ) -> Result<Autoscaler, Vec<String>> {
        let speed = spec.played_faster;
        let mut problems = spec.problems(bounds);
        if let Some(k) = &spec.kpa {
            // problems() checks without the service's containerConcurrency; check with it.
            if let Err(p) = KpaConfig::compile_played(k, bounds, container_concurrency, speed) {
                for x in p {
                    if !problems.contains(&x) {
                        problems.push(x);
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(flatten(problems));
        }
        let policy = if let Some(h) = &spec.hpa {
            Policy::Hpa(Box::new(Hpa::new(
                HpaConfig::compile_played(h, bounds, "hpa", speed).map_err(flatten)?,
                now,
            )))
        } else if let Some(k) = &spec.kpa {
            Policy::Kpa(Box::new(Kpa::new(
                KpaConfig::compile_played(k, bounds, container_concurrency, speed)
                    .map_err(flatten)?,
                now,
            )))
        } else if let Some(k) = &spec.keda {
            Policy::Keda(Box::new(Keda::new(
                KedaConfig::compile_played(k, bounds, speed).map_err(flatten)?,
                now,
            )))
        } else {
            let replicas = spec
                .fixed
                .as_ref()
                .and_then(|f| f.replicas)
                .unwrap_or(bounds.min);
            Policy::Fixed(Fixed { replicas })
        };
        Ok(Autoscaler { policy })
    }

    /// "hpa", "kpa", "keda" or "fixed".
    pub fn kind(&self) -> &'static str {
        match self.policy {
            Policy::Hpa(_) => "hpa",
            Policy::Kpa(_) => "kpa",
            Policy::Keda(_) => "keda",
            Policy::Fixed(_) => "fixed",
        }
    }

    /// Replicas to create at the start: KPA's initial scale, HPA's minReplicas, KEDA's
    /// minReplicaCount (0 allowed), or the fixed count.
    pub fn initial_replicas(&self) -> u32 {
        match &self.policy {
            Policy::Hpa(h) => h.config.min,
            Policy::Kpa(k) => k.initial_replicas(),
            Policy::Keda(k) => k.initial_replicas(),
            Policy::Fixed(f) => f.replicas,
        }
    }

    /// How often `record` wants samples: KPA aggregates buckets of its `metric-bucket`
    /// width (1 s by default); others read totals at decision time.
    pub fn metric_interval(&self) -> Option<Time> {
        match &self.policy {
            Policy::Kpa(k) => Some(k.config.metric_bucket),
            _ => None,
        }
    }

    /// Feeds one metric sample (service-wide totals) to policies that aggregate over time.
    pub fn record(&mut self, now: Time, totals: &SignalValues, ready_pods: u32) {
        if let Policy::Kpa(k) = &mut self.policy {
            k.record(now, totals, ready_pods);
        }
    }

    /// The absolute time at which `decide` is next due; always fits in u64 nanoseconds.
    pub fn next_decision(&self) -> Time {
        match &self.policy {
            Policy::Hpa(h) => h.next_decision(),
            Policy::Kpa(k) => k.next_decision(),
            Policy::Keda(k) => k.next_decision(),
            // A fixed count never changes. The far future is u64::MAX nanoseconds (about
            // 584 years) rather than Duration::MAX, so callers may keep it as u64 nanos.
            Policy::Fixed(_) => Time::from_nanos(u64::MAX),
        }
    }

    /// True when the policy must decide at once (KPA at zero with requests waiting).
    pub fn wants_poke(&self, obs: &Observation) -> bool {
        match &self.policy {
            Policy::Kpa(k) => k.wants_poke(obs),
            _ => false,
        }
    }

    /// Decides the replica count at `now`.
    pub fn decide(&mut self, now: Time, obs: &Observation) -> crate::Decision {
        match &mut self.policy {
            Policy::Hpa(h) => h.decide(now, obs),
            Policy::Kpa(k) => k.decide(now, obs),
            Policy::Keda(k) => k.decide(now, obs),
            Policy::Fixed(f) => f.decide(obs),
        }
    }
}
