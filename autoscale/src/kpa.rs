//! Knative Pod Autoscaler (work in progress).

use crate::hpa::Problems;
use crate::spec::KpaSpec;
use crate::{Bounds, Decision, Observation, SignalValues, Time};

#[derive(Debug, Clone, PartialEq)]
pub struct KpaConfig {
    pub min: u32,
    pub max: u32,
}

impl KpaConfig {
    pub fn compile(
        _spec: &KpaSpec,
        bounds: Bounds,
        _container_concurrency: u32,
    ) -> Result<KpaConfig, Problems> {
        Ok(KpaConfig {
            min: bounds.min,
            max: bounds.max,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Kpa {
    pub config: KpaConfig,
    next: Time,
}

impl Kpa {
    pub fn new(config: KpaConfig, now: Time) -> Kpa {
        Kpa { config, next: now }
    }
    pub fn initial_replicas(&self) -> u32 {
        self.config.min.max(1).min(self.config.max)
    }
    pub fn record(&mut self, _now: Time, _totals: &SignalValues, _ready: u32) {}
    pub fn next_decision(&self) -> Time {
        self.next
    }
    pub fn wants_poke(&self, obs: &Observation) -> bool {
        obs.spec_replicas == 0 && obs.activator_queue > 0
    }
    pub fn decide(&mut self, now: Time, obs: &Observation) -> Decision {
        self.next = now + Time::from_secs(2);
        Decision {
            desired: obs.spec_replicas,
            reason: "kpa: todo".into(),
            activator_in_path: false,
        }
    }
}
