//! Latency profiles: service time per batch size on one GPU type, inline in a
//! scenario or measured by `lab calibrate`, and how individual service times vary.

use serde::{Deserialize, Serialize};

/// One measured or declared point: a batch of `batch_size` rows takes `seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchPoint {
    pub batch_size: u32,
    pub seconds: f64,
}

/// How one execution's service time varies around the profile's mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum ServiceDistribution {
    /// Always the mean.
    #[default]
    Deterministic,
    /// Exponential with the mean (CV 1): the M in M/M/c.
    Exponential,
    /// Lognormal with the mean and the given coefficient of variation.
    Lognormal { cv: f64 },
}

/// Mean service time per batch size on one GPU type (or `cpu`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyProfile {
    pub gpu: String,
    /// Sorted by batch size, no duplicates.
    pub points: Vec<BatchPoint>,
    pub distribution: ServiceDistribution,
}

impl LatencyProfile {
    /// Largest batch size the profile covers.
    pub fn max_batch_size(&self) -> u32 {
        self.points.last().map_or(0, |p| p.batch_size)
    }

    /// Mean service time of a batch of `rows`, interpolated linearly between the
    /// points; a batch smaller than the first point costs the first point. `None`
    /// past the last point: extrapolating a GPU curve is a guess we refuse to make.
    pub fn mean_seconds(&self, rows: u32) -> Option<f64> {
        let first = self.points.first()?;
        if rows <= first.batch_size {
            return Some(first.seconds);
        }
        for pair in self.points.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if rows <= b.batch_size {
                let f = f64::from(rows - a.batch_size) / f64::from(b.batch_size - a.batch_size);
                return Some(a.seconds + f * (b.seconds - a.seconds));
            }
        }
        None
    }
}

/// Draws a service time with the given mean from two independent uniforms in (0, 1].
/// Callers bring their own seeded RNG, so this crate stays free of one.
pub fn sample_service_seconds(mean: f64, dist: ServiceDistribution, u1: f64, u2: f64) -> f64 {
    match dist {
        ServiceDistribution::Deterministic => mean,
        ServiceDistribution::Exponential => -mean * libm::log(u1.max(f64::MIN_POSITIVE)),
        ServiceDistribution::Lognormal { cv } => {
            if cv <= 0.0 {
                return mean;
            }
            let sigma2 = libm::log(1.0 + cv * cv);
            let mu = libm::log(mean) - sigma2 / 2.0;
            // Box-Muller: one standard normal from two uniforms.
            let z = (-2.0 * libm::log(u1.max(f64::MIN_POSITIVE))).sqrt()
                * libm::cos(2.0 * std::f64::consts::PI * u2);
            libm::exp(mu + sigma2.sqrt() * z)
        }
    }
}

/// A profile file written by `lab calibrate` and read by scenarios and `--emulate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationProfile {
    /// Always `lab-calibration/v1`.
    pub format: String,
    pub model: String,
    /// `cpu` or `cuda`.
    pub device: String,
    /// GPU type the profile stands for (`cpu` for a CPU measurement).
    pub gpu: String,
    /// Where and how it was measured, for people reading it.
    #[serde(default)]
    pub measured_on: String,
    pub points: Vec<CalibrationPoint>,
    /// The spread to draw service times with, when it is known rather than
    /// measured (the local level hands a scenario's own to the emulator). Absent,
    /// it is fitted from the points' p50 and p99; `lab calibrate` leaves it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<ServiceDistribution>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationPoint {
    pub batch_size: u32,
    pub mean_seconds: f64,
    pub p50_seconds: f64,
    pub p99_seconds: f64,
    pub samples: u64,
}

pub const CALIBRATION_FORMAT: &str = "lab-calibration/v1";

impl CalibrationProfile {
    /// A profile that reproduces `latency` exactly: mean, p50 and p99 of each
    /// point all the point's mean, and the distribution given explicitly, so an
    /// emulated GPU (`lab serve --emulate`) draws service times as the simulator
    /// does. The local level writes one per pod; `lab deploy` puts one in a
    /// ConfigMap for pods on a cluster without GPUs.
    pub fn reproducing(
        model: &str,
        latency: &LatencyProfile,
        written_by: &str,
    ) -> CalibrationProfile {
        CalibrationProfile {
            format: CALIBRATION_FORMAT.into(),
            model: model.into(),
            device: "emulated".into(),
            gpu: latency.gpu.clone(),
            measured_on: written_by.into(),
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

    /// The profile as the simulator uses it. The spread is, first found: the
    /// `distribution` argument, the profile's own `distribution`, or a lognormal
    /// fitted from the measured p50 and p99 of the batch size the profile
    /// measured most often.
    pub fn to_latency_profile(&self, distribution: Option<ServiceDistribution>) -> LatencyProfile {
        let mut points: Vec<BatchPoint> = self
            .points
            .iter()
            .map(|p| BatchPoint {
                batch_size: p.batch_size,
                seconds: p.mean_seconds,
            })
            .collect();
        points.sort_by_key(|p| p.batch_size);
        points.dedup_by_key(|p| p.batch_size);
        let distribution = distribution.or(self.distribution).unwrap_or_else(|| {
            self.points
                .iter()
                .max_by_key(|p| p.samples)
                .map(|p| lognormal_from_quantiles(p.p50_seconds, p.p99_seconds))
                .unwrap_or_default()
        });
        LatencyProfile {
            gpu: self.gpu.clone(),
            points,
            distribution,
        }
    }
}

/// Lognormal spread whose median and 99th percentile match the measurement.
pub fn lognormal_from_quantiles(p50: f64, p99: f64) -> ServiceDistribution {
    const Z99: f64 = 2.326_347_874;
    if !(p50 > 0.0 && p99 > p50) {
        return ServiceDistribution::Deterministic;
    }
    let sigma = libm::log(p99 / p50) / Z99;
    let cv = (libm::exp(sigma * sigma) - 1.0).sqrt();
    ServiceDistribution::Lognormal { cv }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reproducing_profile_reads_back_as_the_latency_it_was_made_from() {
        let latency = LatencyProfile {
            distribution: ServiceDistribution::Exponential,
            ..profile()
        };
        let back = CalibrationProfile::reproducing("m", &latency, "test").to_latency_profile(None);
        assert_eq!(back, latency);
    }

    fn profile() -> LatencyProfile {
        LatencyProfile {
            gpu: "T4".into(),
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
            distribution: ServiceDistribution::Deterministic,
        }
    }

    #[test]
    fn interpolates_between_points_and_refuses_past_the_last() {
        let p = profile();
        assert_eq!(p.mean_seconds(1), Some(0.004));
        assert!((p.mean_seconds(4).unwrap() - 0.007).abs() < 1e-12);
        assert_eq!(p.mean_seconds(8), Some(0.011));
        assert_eq!(p.mean_seconds(9), None);
    }

    #[test]
    fn lognormal_sampling_has_the_requested_mean_and_cv() {
        // A deterministic low-discrepancy grid of uniforms keeps the test exact.
        let n = 400;
        let mut xs = Vec::new();
        for i in 0..n {
            for j in 0..n {
                let u1 = (i as f64 + 0.5) / n as f64;
                let u2 = (j as f64 + 0.5) / n as f64;
                xs.push(sample_service_seconds(
                    2.0,
                    ServiceDistribution::Lognormal { cv: 0.5 },
                    u1,
                    u2,
                ));
            }
        }
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / xs.len() as f64;
        assert!((mean - 2.0).abs() < 0.02, "mean {mean}");
        assert!(
            (var.sqrt() / mean - 0.5).abs() < 0.03,
            "cv {}",
            var.sqrt() / mean
        );
    }

    #[test]
    fn quantile_fit_recovers_a_known_cv() {
        // For cv = 0.5, sigma = sqrt(ln 1.25); p99/p50 = exp(2.326 sigma).
        let sigma = libm::log(1.25).sqrt();
        let p99 = libm::exp(2.326_347_874 * sigma);
        match lognormal_from_quantiles(1.0, p99) {
            ServiceDistribution::Lognormal { cv } => assert!((cv - 0.5).abs() < 1e-6),
            other => panic!("{other:?}"),
        }
    }

    fn calibration(distribution: Option<ServiceDistribution>) -> CalibrationProfile {
        CalibrationProfile {
            format: CALIBRATION_FORMAT.into(),
            model: "m".into(),
            device: "cpu".into(),
            gpu: "T4".into(),
            measured_on: String::new(),
            points: vec![CalibrationPoint {
                batch_size: 1,
                mean_seconds: 0.01,
                p50_seconds: 0.009,
                p99_seconds: 0.02,
                samples: 100,
            }],
            distribution,
        }
    }

    #[test]
    fn a_profile_distribution_replaces_the_fit_and_draws_exponentially() {
        let latency = calibration(Some(ServiceDistribution::Exponential)).to_latency_profile(None);
        assert_eq!(latency.distribution, ServiceDistribution::Exponential);
        // Exponential draws on a uniform grid: mean 0.01 and CV 1, unlike the
        // lognormal the p50/p99 fit gives (CV about 0.35 here).
        let n = 100_000;
        let xs: Vec<f64> = (0..n)
            .map(|i| {
                let u1 = (i as f64 + 0.5) / n as f64;
                sample_service_seconds(0.01, latency.distribution, u1, 0.5)
            })
            .collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!((mean - 0.01).abs() < 1e-4, "mean {mean}");
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.02,
            "cv {}",
            var.sqrt() / mean
        );
        // An explicit argument still wins over the profile's own.
        let explicit = calibration(Some(ServiceDistribution::Exponential))
            .to_latency_profile(Some(ServiceDistribution::Deterministic));
        assert_eq!(explicit.distribution, ServiceDistribution::Deterministic);
    }

    #[test]
    fn a_profile_without_a_distribution_reads_as_before_and_fits_a_lognormal() {
        let old = r#"{"format":"lab-calibration/v1","model":"m","device":"cpu","gpu":"T4",
            "points":[{"batch_size":1,"mean_seconds":0.01,"p50_seconds":0.009,
            "p99_seconds":0.02,"samples":100}]}"#;
        let p: CalibrationProfile = serde_json::from_str(old).unwrap();
        assert_eq!(p, calibration(None));
        let fitted = lognormal_from_quantiles(0.009, 0.02);
        assert!(matches!(fitted, ServiceDistribution::Lognormal { .. }));
        assert_eq!(p.to_latency_profile(None).distribution, fitted);
        // Written back, it has no distribution key (what `lab calibrate` writes).
        let text = serde_json::to_string(&p).unwrap();
        assert!(!text.contains("distribution"), "{text}");
        let with = serde_json::to_string(&calibration(Some(ServiceDistribution::Lognormal {
            cv: 0.25,
        })))
        .unwrap();
        assert!(
            with.contains(r#""distribution":{"kind":"lognormal","cv":0.25}"#),
            "{with}"
        );
        let back: CalibrationProfile = serde_json::from_str(&with).unwrap();
        assert_eq!(
            back.distribution,
            Some(ServiceDistribution::Lognormal { cv: 0.25 })
        );
    }
}
