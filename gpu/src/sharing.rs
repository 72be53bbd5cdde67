//! How co-tenant pods on one physical GPU slow each other down.
//!
//! The simulator and the predictor's GPU emulation both call [`tenant_speed`], so
//! the two levels agree on contention by construction.

use serde::{Deserialize, Serialize};

/// A node pool's GPU sharing strategy, named as the NVIDIA device plugin's
/// `sharing` config and MIG manager name them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(tag = "strategy", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Sharing {
    /// One pod per GPU.
    #[default]
    None,
    /// `sharing.timeSlicing.resources[].replicas`: each GPU is advertised
    /// `replicas` times; busy tenants take turns.
    TimeSlicing { replicas: u32 },
    /// A MIG partition layout applied to every GPU of the pool, e.g.
    /// `["3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb"]`.
    Mig { layout: Vec<String> },
    /// `sharing.mps.resources[].replicas`: tenants run concurrently, each capped at
    /// 1/replicas of the SMs and memory.
    Mps { replicas: u32 },
}

impl Sharing {
    /// How many pods one physical GPU can host.
    pub fn slots_per_gpu(&self) -> u32 {
        match self {
            Sharing::None => 1,
            Sharing::TimeSlicing { replicas } | Sharing::Mps { replicas } => *replicas,
            Sharing::Mig { layout } => layout.len() as u32,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Sharing::None => "none",
            Sharing::TimeSlicing { .. } => "time-slicing",
            Sharing::Mig { .. } => "mig",
            Sharing::Mps { .. } => "mps",
        }
    }
}

/// Contention parameters. NVIDIA publishes no per-switch cost for time-slicing, so
/// the defaults are assumptions stated here and overridable per node pool.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ContentionParams {
    /// Fraction of GPU time lost to context switches when two or more tenants are
    /// busy under time-slicing.
    pub context_switch_overhead: f64,
    /// Slowdown each additional busy MPS tenant adds through shared memory
    /// bandwidth and caches (speed = 1 / (1 + interference * (busy - 1))).
    pub mps_interference: f64,
    /// Fraction of the GPU's SMs one tenant's kernels would occupy alone. Under MPS
    /// a tenant capped at 1/replicas of the SMs slows down only if it needs more.
    pub kernel_occupancy: f64,
}

impl Default for ContentionParams {
    fn default() -> Self {
        ContentionParams {
            context_switch_overhead: 0.05,
            mps_interference: 0.10,
            kernel_occupancy: 1.0,
        }
    }
}

/// Speed, relative to running alone on the whole GPU, of each busy tenant when
/// `busy` tenants of one physical GPU (or one MIG instance) execute at once.
///
/// - exclusive: 1.
/// - time-slicing: the GPU is time-multiplexed, so `busy` tenants each get
///   `1/busy` of it, less the context-switch overhead when `busy > 1`.
/// - MPS: each tenant is capped at `1/replicas` of the SMs; it runs at
///   `min(1, (1/replicas) / occupancy)`, slowed by interference from the others.
/// - MIG: instances are isolated; the instance's own speed fraction applies
///   (see [`crate::MigProfile::speed_fraction`]) and busy co-tenants do not matter,
///   so this returns 1 and the caller multiplies by the instance fraction.
pub fn tenant_speed(sharing: &Sharing, busy: u32, params: &ContentionParams) -> f64 {
    let busy = busy.max(1);
    match sharing {
        Sharing::None | Sharing::Mig { .. } => 1.0,
        Sharing::TimeSlicing { .. } => {
            if busy == 1 {
                1.0
            } else {
                (1.0 - params.context_switch_overhead) / f64::from(busy)
            }
        }
        Sharing::Mps { replicas } => {
            let cap = 1.0 / f64::from((*replicas).max(1));
            let alone = (cap / params.kernel_occupancy.max(1e-9)).min(1.0);
            alone / (1.0 + params.mps_interference * f64::from(busy - 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn time_slicing_two_busy_tenants_each_get_under_half() {
        let p = ContentionParams::default();
        let s = tenant_speed(&Sharing::TimeSlicing { replicas: 4 }, 2, &p);
        assert!((s - 0.475).abs() < 1e-12);
        assert_eq!(
            tenant_speed(&Sharing::TimeSlicing { replicas: 4 }, 1, &p),
            1.0
        );
    }

    #[test]
    fn mps_small_kernels_run_at_full_speed_alone() {
        let p = ContentionParams {
            kernel_occupancy: 0.2,
            ..Default::default()
        };
        assert_eq!(tenant_speed(&Sharing::Mps { replicas: 4 }, 1, &p), 1.0);
        let big = ContentionParams::default();
        assert!((tenant_speed(&Sharing::Mps { replicas: 4 }, 1, &big) - 0.25).abs() < 1e-12);
    }

    proptest! {
        #[test]
        fn time_slicing_never_creates_capacity(busy in 1u32..64) {
            let p = ContentionParams::default();
            let s = tenant_speed(&Sharing::TimeSlicing { replicas: 64 }, busy, &p);
            prop_assert!(s * f64::from(busy) <= 1.0 + 1e-12);
            prop_assert!(s > 0.0);
        }
    }
}
