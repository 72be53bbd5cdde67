//! The calibration profile each pod's emulated GPU is given: the scenario's
//! own latency points and spread, for the GPU type its pool has.

use lab_gpu::{CalibrationPoint, CalibrationProfile, LatencyProfile, CALIBRATION_FORMAT};

/// A `lab-calibration/v1` profile that reproduces `latency` exactly: mean,
/// p50 and p99 all the point's mean, and the scenario's distribution given
/// explicitly so the emulator draws as the simulator does.
pub fn calibration(model: &str, latency: &LatencyProfile) -> CalibrationProfile {
    CalibrationProfile {
        format: CALIBRATION_FORMAT.into(),
        model: model.into(),
        device: "emulated".into(),
        gpu: latency.gpu.clone(),
        measured_on: "written by lab run --level local from the scenario's latency profile".into(),
        points: latency
            .points
            .iter()
            .map(|p| CalibrationPoint {
                batch_size: p.batch_size,
                mean_seconds: p.seconds,
                p50_seconds: p.seconds,
                p99_seconds: p.seconds,
                samples: 1,
            })
            .collect(),
        distribution: Some(latency.distribution),
    }
}

/// Removes the emulated GPUs' shared files of this run (`/dev/shm/lab-gpu-PREFIX-*`).
pub fn remove_shm(prefix: &str) {
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return;
    };
    let start = format!("lab-gpu-{prefix}-");
    for e in dir.flatten() {
        if e.file_name().to_string_lossy().starts_with(&start) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_gpu::{BatchPoint, ServiceDistribution};

    #[test]
    fn the_emulator_reads_back_the_scenario_profile() {
        let latency = LatencyProfile {
            gpu: "L4".into(),
            points: vec![
                BatchPoint {
                    batch_size: 1,
                    seconds: 0.004,
                },
                BatchPoint {
                    batch_size: 8,
                    seconds: 0.011,
                },
            ],
            distribution: ServiceDistribution::Exponential,
        };
        let back = calibration("m", &latency).to_latency_profile(None);
        assert_eq!(back, latency);
    }
}
