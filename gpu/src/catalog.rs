//! GPU products and their MIG profiles.
//!
//! Figures come from NVIDIA's MIG User Guide ("Supported MIG Profiles") and the
//! `nvidia-smi mig -lgip` listings users publish: a MIG-capable GPU has 7 compute
//! slices and 8 memory slices; on the A100 the full `7g` instance exposes 98 of the
//! 108 SMs the GPU has without MIG, on the H100 SXM all 132.

use serde::Serialize;

/// One GPU product as the NVIDIA device plugin's feature discovery names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuType {
    pub name: &'static str,
    pub memory_gib: f64,
    /// Streaming multiprocessors visible without MIG.
    pub sms: u32,
    pub mig_profiles: &'static [MigProfile],
}

/// A MIG GPU-instance profile such as `1g.10gb`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigProfile {
    pub name: &'static str,
    /// Compute slices out of 7.
    pub compute_slices: u32,
    /// Memory slices out of 8.
    pub memory_slices: u32,
    /// SMs the instance exposes (what sets its speed).
    pub sms: u32,
    /// Usable memory of the instance.
    pub memory_gib: f64,
    /// How many instances of this profile one GPU can hold.
    pub max_instances: u32,
}

pub const COMPUTE_SLICES: u32 = 7;
pub const MEMORY_SLICES: u32 = 8;

const fn mig(
    name: &'static str,
    compute_slices: u32,
    memory_slices: u32,
    sms: u32,
    memory_gib: f64,
    max_instances: u32,
) -> MigProfile {
    MigProfile {
        name,
        compute_slices,
        memory_slices,
        sms,
        memory_gib,
        max_instances,
    }
}

const A100_40GB_MIG: &[MigProfile] = &[
    mig("1g.5gb", 1, 1, 14, 4.75, 7),
    mig("1g.10gb", 1, 2, 14, 9.75, 4),
    mig("2g.10gb", 2, 2, 28, 9.75, 3),
    mig("3g.20gb", 3, 4, 42, 19.62, 2),
    mig("4g.20gb", 4, 4, 56, 19.62, 1),
    mig("7g.40gb", 7, 8, 98, 39.38, 1),
];

const A100_80GB_MIG: &[MigProfile] = &[
    mig("1g.10gb", 1, 1, 14, 9.5, 7),
    mig("1g.20gb", 1, 2, 14, 19.5, 4),
    mig("2g.20gb", 2, 2, 28, 19.5, 3),
    mig("3g.40gb", 3, 4, 42, 39.25, 2),
    mig("4g.40gb", 4, 4, 56, 39.25, 1),
    mig("7g.80gb", 7, 8, 98, 79.25, 1),
];

const H100_80GB_MIG: &[MigProfile] = &[
    mig("1g.10gb", 1, 1, 16, 9.75, 7),
    mig("1g.20gb", 1, 2, 16, 19.62, 4),
    mig("2g.20gb", 2, 2, 32, 19.62, 3),
    mig("3g.40gb", 3, 4, 60, 39.5, 2),
    mig("4g.40gb", 4, 4, 64, 39.5, 1),
    mig("7g.80gb", 7, 8, 132, 79.25, 1),
];

/// The GPU products a node pool may name.
pub const GPU_TYPES: &[GpuType] = &[
    GpuType {
        name: "T4",
        memory_gib: 16.0,
        sms: 40,
        mig_profiles: &[],
    },
    GpuType {
        name: "L4",
        memory_gib: 24.0,
        sms: 58,
        mig_profiles: &[],
    },
    GpuType {
        name: "A10G",
        memory_gib: 24.0,
        sms: 80,
        mig_profiles: &[],
    },
    GpuType {
        name: "A100-40GB",
        memory_gib: 40.0,
        sms: 108,
        mig_profiles: A100_40GB_MIG,
    },
    GpuType {
        name: "A100-80GB",
        memory_gib: 80.0,
        sms: 108,
        mig_profiles: A100_80GB_MIG,
    },
    GpuType {
        name: "H100-80GB",
        memory_gib: 80.0,
        sms: 132,
        mig_profiles: H100_80GB_MIG,
    },
];

/// Looks a GPU product up by name, case-insensitively.
pub fn gpu_type(name: &str) -> Option<&'static GpuType> {
    GPU_TYPES.iter().find(|g| g.name.eq_ignore_ascii_case(name))
}

/// Names of all known GPU products, for error messages.
pub fn gpu_type_names() -> Vec<&'static str> {
    GPU_TYPES.iter().map(|g| g.name).collect()
}

impl GpuType {
    pub fn mig_profile(&self, name: &str) -> Option<&'static MigProfile> {
        self.mig_profiles.iter().find(|p| p.name == name)
    }

    pub fn supports_mig(&self) -> bool {
        !self.mig_profiles.is_empty()
    }
}

impl MigProfile {
    /// The instance's speed relative to the whole GPU without MIG, from SM counts.
    pub fn speed_fraction(&self, gpu: &GpuType) -> f64 {
        f64::from(self.sms) / f64::from(gpu.sms)
    }
}

/// Checks that a MIG layout fits one GPU: at most 7 compute and 8 memory slices in
/// total and no profile past its own instance limit. Returns the reason otherwise.
pub fn check_mig_layout(gpu: &GpuType, layout: &[String]) -> Result<(), String> {
    if !gpu.supports_mig() {
        return Err(format!("{} does not support MIG", gpu.name));
    }
    let mut compute = 0;
    let mut memory = 0;
    for name in layout {
        let Some(profile) = gpu.mig_profile(name) else {
            let known: Vec<_> = gpu.mig_profiles.iter().map(|p| p.name).collect();
            return Err(format!(
                "`{name}` is not a MIG profile of {} (known: {})",
                gpu.name,
                known.join(", ")
            ));
        };
        compute += profile.compute_slices;
        memory += profile.memory_slices;
        let count = layout.iter().filter(|n| *n == name).count() as u32;
        if count > profile.max_instances {
            return Err(format!(
                "{} holds at most {} instance(s) of {name}, the layout has {count}",
                gpu.name, profile.max_instances
            ));
        }
    }
    if compute > COMPUTE_SLICES || memory > MEMORY_SLICES {
        return Err(format!(
            "the layout [{}] needs {compute}/7 compute and {memory}/8 memory slices, more than one {} has",
            layout.join(", "),
            gpu.name
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a100_full_instance_exposes_98_of_108_sms() {
        let gpu = gpu_type("a100-40gb").unwrap();
        let full = gpu.mig_profile("7g.40gb").unwrap();
        assert!((full.speed_fraction(gpu) - 98.0 / 108.0).abs() < 1e-12);
    }

    #[test]
    fn seven_small_slices_fit_but_eight_do_not() {
        let gpu = gpu_type("A100-40GB").unwrap();
        let seven = vec!["1g.5gb".to_string(); 7];
        assert!(check_mig_layout(gpu, &seven).is_ok());
        let eight = vec!["1g.5gb".to_string(); 8];
        let err = check_mig_layout(gpu, &eight).unwrap_err();
        assert!(err.contains("at most 7"), "{err}");
    }

    #[test]
    fn mixed_layout_over_compute_slices_is_rejected() {
        let gpu = gpu_type("H100-80GB").unwrap();
        let layout: Vec<String> = ["4g.40gb", "3g.40gb", "1g.10gb"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let err = check_mig_layout(gpu, &layout).unwrap_err();
        assert!(err.contains("8/7 compute"), "{err}");
    }

    #[test]
    fn gpus_without_mig_say_so() {
        let gpu = gpu_type("T4").unwrap();
        assert!(check_mig_layout(gpu, &["1g.5gb".into()])
            .unwrap_err()
            .contains("does not support MIG"));
    }
}
