//! `calibrate`: measure a model's service time per batch size on this machine and
//! write a `lab-calibration/v1` profile for scenarios and `serve --emulate`.

use std::path::PathBuf;
use std::time::Instant;

use lab_gpu::{CalibrationPoint, CalibrationProfile, CALIBRATION_FORMAT};
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

use crate::error::bad_input;
use crate::model::{LoadOptions, Model, Tensors};
use crate::server::device;
use crate::tensor::{DataType, TensorData};

#[derive(Debug, Clone, clap::Args)]
pub struct CalibrateOptions {
    /// The ONNX model to measure.
    #[arg(long, value_name = "PATH.onnx")]
    pub model: PathBuf,

    /// Execution device: cpu, or cuda (needs the onnxruntime-gpu build).
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"])]
    pub device: String,

    /// CUDA device ordinal for --device cuda.
    #[arg(long, default_value_t = 0)]
    pub cuda_device: i32,

    /// ONNX Runtime intra-op threads (use what `serve --threads` will use).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,

    /// Batch sizes to measure, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2,4,8,16,32",
        value_name = "N,N,..."
    )]
    pub batch_sizes: Vec<u32>,

    /// Untimed runs per batch size before measuring.
    #[arg(long, default_value_t = 20)]
    pub warmup: u32,

    /// Timed runs per batch size.
    #[arg(long, default_value_t = 200)]
    pub repetitions: u32,

    /// GPU type the profile stands for (default: cpu for --device cpu, else required).
    #[arg(long)]
    pub gpu: Option<String>,

    /// Free text saying where it was measured (default: host, CPU model and core count).
    #[arg(long)]
    pub measured_on: Option<String>,

    /// Where to write the profile (default: standard output).
    #[arg(
        long = "output",
        alias = "out",
        short = 'o',
        value_name = "PROFILE.json"
    )]
    pub out: Option<PathBuf>,
}

/// Random inputs for `rows` rows: uniform [0, 1) floats, small integers.
fn random_inputs(model: &Model, rows: usize, rng: &mut Pcg64) -> Tensors {
    model
        .zero_inputs(rows)
        .into_iter()
        .map(|(zeros, shape)| {
            let n = zeros.len();
            let data = match zeros.datatype() {
                DataType::Fp32 => TensorData::Fp32((0..n).map(|_| rng.random::<f32>()).collect()),
                DataType::Fp64 => TensorData::Fp64((0..n).map(|_| rng.random::<f64>()).collect()),
                DataType::I64 => TensorData::I64((0..n).map(|_| rng.random_range(0..10)).collect()),
                DataType::I32 => TensorData::I32((0..n).map(|_| rng.random_range(0..10)).collect()),
                _ => zeros,
            };
            (data, shape)
        })
        .collect()
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn host_description(threads: usize) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores visible, {threads} intra-op thread(s)")
}

pub fn measure(opts: &CalibrateOptions) -> anyhow::Result<CalibrationProfile> {
    if opts.batch_sizes.is_empty() || opts.batch_sizes.contains(&0) {
        return Err(bad_input(
            "--batch-sizes needs positive sizes, e.g. 1,2,4,8",
        ));
    }
    if opts.repetitions == 0 {
        return Err(bad_input("--repetitions must be at least 1"));
    }
    let gpu = match (&opts.gpu, opts.device.as_str()) {
        (Some(g), _) => g.clone(),
        (None, "cpu") => "cpu".to_string(),
        (None, _) => {
            return Err(bad_input(
                "--device cuda needs --gpu NAME (e.g. T4) for the profile",
            ))
        }
    };
    let load = LoadOptions {
        device: device(&opts.device, opts.cuda_device),
        intra_threads: opts.threads,
        instances: 1,
    };
    let name = opts
        .model
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("model")
        .to_string();
    let model = Model::load(&name, &opts.model, &load)?;
    let mut sizes = opts.batch_sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    if !model.batchable && sizes.iter().any(|b| *b > 1) {
        return Err(bad_input(format!(
            "model {name} has a fixed first dimension, so it cannot batch: use --batch-sizes 1"
        )));
    }
    let mut rng = Pcg64::seed_from_u64(1);
    let mut points = Vec::new();
    for &b in &sizes {
        let inputs = random_inputs(&model, b as usize, &mut rng);
        for _ in 0..opts.warmup {
            model
                .run(inputs.clone())
                .map_err(|e| anyhow::anyhow!("batch {b}: {e}"))?;
        }
        let mut times = Vec::with_capacity(opts.repetitions as usize);
        for _ in 0..opts.repetitions {
            let x = inputs.clone();
            let t0 = Instant::now();
            model
                .run(x)
                .map_err(|e| anyhow::anyhow!("batch {b}: {e}"))?;
            times.push(t0.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        eprintln!(
            "batch {b:>4}: mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs",
            mean * 1e6,
            percentile(&times, 0.5) * 1e6,
            percentile(&times, 0.99) * 1e6
        );
        points.push(CalibrationPoint {
            batch_size: b,
            mean_seconds: mean,
            p50_seconds: percentile(&times, 0.5),
            p99_seconds: percentile(&times, 0.99),
            samples: u64::from(opts.repetitions),
        });
    }
    Ok(CalibrationProfile {
        format: CALIBRATION_FORMAT.to_string(),
        model: name,
        device: opts.device.clone(),
        gpu,
        measured_on: opts.measured_on.clone().unwrap_or_else(|| {
            format!(
                "{}; ONNX Runtime via lab calibrate, {} warm-up and {} timed runs per batch size",
                host_description(opts.threads),
                opts.warmup,
                opts.repetitions
            )
        }),
        points,
        // Measured, so the spread is fitted from p50 and p99 when read.
        distribution: None,
    })
}

pub fn run(opts: CalibrateOptions) -> anyhow::Result<i32> {
    let profile = measure(&opts)?;
    let text = serde_json::to_string_pretty(&profile)? + "\n";
    match &opts.out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(0)
}
