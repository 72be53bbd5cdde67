//! KEDA ScaledObject (work in progress).

use crate::hpa::Problems;
use crate::spec::KedaSpec;
use crate::{Bounds, Decision, Observation, Time};

#[derive(Debug, Clone, PartialEq)]
pub struct KedaConfig {
    pub min: u32,
    pub max: u32,
}

impl KedaConfig {
    pub fn compile(_spec: &KedaSpec, bounds: Bounds) -> Result<KedaConfig, Problems> {
        Ok(KedaConfig {
            min: bounds.min,
            max: bounds.max,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Keda {
    pub config: KedaConfig,
    next: Time,
}

impl Keda {
    pub fn new(config: KedaConfig, now: Time) -> Keda {
        Keda { config, next: now }
    }
    pub fn initial_replicas(&self) -> u32 {
        self.config.min
    }
    pub fn next_decision(&self) -> Time {
        self.next
    }
    pub fn decide(&mut self, now: Time, obs: &Observation) -> Decision {
        self.next = now + Time::from_secs(30);
        Decision {
            desired: obs.spec_replicas,
            reason: "keda: todo".into(),
            activator_in_path: false,
        }
    }
}
