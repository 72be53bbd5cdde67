//! GPU facts and arithmetic shared by every level: the catalog of GPU products and
//! MIG profiles, how sharing modes slow co-tenants down, and latency profiles.
//!
//! Architecture invariant: no I/O, no clock, no RNG. Callers pass uniforms in.

mod catalog;
mod profile;
mod sharing;

pub use catalog::{
    check_mig_layout, gpu_type, gpu_type_names, GpuType, MigProfile, COMPUTE_SLICES, GPU_TYPES,
    MEMORY_SLICES,
};
pub use profile::{
    lognormal_from_quantiles, sample_service_seconds, BatchPoint, CalibrationPoint,
    CalibrationProfile, LatencyProfile, ServiceDistribution, CALIBRATION_FORMAT,
};
pub use sharing::{tenant_speed, ContentionParams, Sharing};
