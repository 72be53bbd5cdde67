//! A constant replica count: the baseline every autoscaler is compared with.

use crate::{Decision, Observation};

#[derive(Debug, Clone, PartialEq)]
pub struct Fixed {
    pub replicas: u32,
}

impl Fixed {
    pub fn decide(&self, obs: &Observation) -> Decision {
        let reason = if obs.spec_replicas == self.replicas {
            format!("fixed: {} replicas", self.replicas)
        } else {
            format!("fixed: {} -> {} replicas", obs.spec_replicas, self.replicas)
        };
        Decision {
            desired: self.replicas,
            reason,
            activator_in_path: false,
        }
    }
}
