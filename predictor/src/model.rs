//! A served model: its tensor signature and how it computes. Either an ONNX model
//! loaded into ONNX Runtime, with a pool of sessions, one per concurrent execution
//! (Triton's instance count), or the built-in stand-in that emulated pods serve
//! when a scenario names no model file, computed in Rust without ONNX Runtime.

use std::path::Path;
use std::sync::Mutex;

use ort::ep;
use ort::session::Session;

use crate::error::bad_input;
use crate::ortlib;
use crate::tensor::{element_count, spec_of, DataType, TensorData};

/// A model input or output as metadata reports it (-1 = variable dimension).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: DataType,
    pub shape: Vec<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    /// CUDA execution provider on this device ordinal.
    Cuda(i32),
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub device: Device,
    /// ONNX Runtime intra-op threads per session (0 = ONNX Runtime's default).
    pub intra_threads: usize,
    /// Sessions, i.e. model executions that may run at once.
    pub instances: usize,
}

/// Model metadata's `platform` for an ONNX model.
pub const ONNX_PLATFORM: &str = "onnxruntime_onnx";
/// Model metadata's `platform` for the built-in stand-in (`--emulated-model`).
pub const STAND_IN_PLATFORM: &str = "lab_stand_in";
/// The stand-in's one input: FP32 `[-1, 4]`, like the iris test model's.
pub const STAND_IN_INPUT: &str = "input";
/// The stand-in's one output: FP32 `[-1, 1]`, the sum of each input row.
pub const STAND_IN_OUTPUT: &str = "output";
const STAND_IN_WIDTH: i64 = 4;

pub struct Model {
    pub name: String,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    /// Every input and output has a variable first dimension, so requests can be
    /// stacked along it into one batch.
    pub batchable: bool,
    /// What model metadata reports as the platform.
    pub platform: &'static str,
    compute: Compute,
}

enum Compute {
    /// ONNX Runtime sessions not running now.
    Onnx(Mutex<Vec<Session>>),
    /// The stand-in: each row's sum, in Rust.
    RowSum,
}

/// Tensors in the model's input (or output) order, each with its concrete shape.
pub type Tensors = Vec<(TensorData, Vec<i64>)>;

fn ort_err(context: &str, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{context}: {e}")
}

impl Model {
    /// The built-in stand-in: input `input` FP32 `[-1, 4]`, output `output` FP32
    /// `[-1, 1]` holding each row's sum. Loading it touches no file and no ONNX
    /// Runtime, so emulated pods run where ONNX Runtime is not installed.
    pub fn stand_in(name: &str) -> Model {
        let spec = |name: &str, width: i64| TensorSpec {
            name: name.to_string(),
            dtype: DataType::Fp32,
            shape: vec![-1, width],
        };
        Model {
            name: name.to_string(),
            inputs: vec![spec(STAND_IN_INPUT, STAND_IN_WIDTH)],
            outputs: vec![spec(STAND_IN_OUTPUT, 1)],
            batchable: true,
            platform: STAND_IN_PLATFORM,
            compute: Compute::RowSum,
        }
    }

    /// Loads an ONNX model into ONNX Runtime (loading the runtime itself the first time).
    pub fn load(name: &str, path: &Path, opts: &LoadOptions) -> anyhow::Result<Model> {
        if !path.is_file() {
            return Err(bad_input(format!(
                "model {name}: {} is not a file",
                path.display()
            )));
        }
        let env = ortlib::environment()?;
        let mut sessions = Vec::new();
        for _ in 0..opts.instances.max(1) {
            let mut b = Session::builder(&env).map_err(|e| ort_err("session options", e))?;
            if opts.intra_threads > 0 {
                b = b
                    .with_intra_threads(opts.intra_threads)
                    .map_err(|e| ort_err("intra-op threads", e))?;
            }
            if let Device::Cuda(id) = opts.device {
                let cuda = ep::CUDA::default()
                    .with_device_id(id)
                    .build()
                    .error_on_failure();
                b = b.with_execution_providers([cuda]).map_err(|e| {
                    bad_input(format!(
                        "--device cuda: ONNX Runtime could not enable its CUDA execution provider \
                         ({e}); install the onnxruntime-gpu build (with CUDA 12/13 and cuDNN 9) and \
                         point ORT_DYLIB_PATH at its libonnxruntime.so, or use --device cpu"
                    ))
                })?;
            }
            let session = b.commit_from_file(path).map_err(|e| {
                bad_input(format!(
                    "model {name}: ONNX Runtime cannot load {}: {e}",
                    path.display()
                ))
            })?;
            sessions.push(session);
        }
        let first = &sessions[0];
        let specs = |outlets: &[ort::value::Outlet], what: &str| {
            outlets
                .iter()
                .map(|o| {
                    let (dtype, shape) = spec_of(o.dtype()).map_err(|e| {
                        bad_input(format!("model {name}: {what} '{}': {e}", o.name()))
                    })?;
                    Ok(TensorSpec {
                        name: o.name().to_string(),
                        dtype,
                        shape,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()
        };
        let inputs = specs(first.inputs(), "input")?;
        let outputs = specs(first.outputs(), "output")?;
        let batchable = inputs
            .iter()
            .chain(outputs.iter())
            .all(|s| s.shape.first() == Some(&-1));
        Ok(Model {
            name: name.to_string(),
            inputs,
            outputs,
            batchable,
            platform: ONNX_PLATFORM,
            compute: Compute::Onnx(Mutex::new(sessions)),
        })
    }

    /// Runs one execution (blocking). Returns every output in model order.
    pub fn run(&self, inputs: Tensors) -> Result<Tensors, String> {
        let sessions = match &self.compute {
            Compute::RowSum => return row_sums(inputs),
            Compute::Onnx(sessions) => sessions,
        };
        let mut session = {
            let mut pool = sessions.lock().map_err(|_| "session pool poisoned")?;
            pool.pop()
                .ok_or("no free session (more executions than instances)")?
        };
        let result = self.run_on(&mut session, inputs);
        if let Ok(mut pool) = sessions.lock() {
            pool.push(session);
        }
        result
    }

    fn run_on(&self, session: &mut Session, inputs: Tensors) -> Result<Tensors, String> {
        let mut values = Vec::with_capacity(inputs.len());
        for (spec, (data, shape)) in self.inputs.iter().zip(inputs) {
            let v = data
                .into_ort(shape)
                .map_err(|e| format!("input '{}': {e}", spec.name))?;
            values.push((spec.name.clone(), v));
        }
        let outputs = session.run(values).map_err(|e| e.to_string())?;
        let mut result = Vec::with_capacity(self.outputs.len());
        for spec in &self.outputs {
            let v = outputs
                .get(spec.name.as_str())
                .ok_or_else(|| format!("ONNX Runtime returned no output '{}'", spec.name))?;
            let (shape, data) = TensorData::from_ort(v)?;
            result.push((data, shape));
        }
        Ok(result)
    }

    /// Inputs of `rows` rows filled with zeros, variable dimensions set to 1:
    /// used for the warm-up run and by calibration.
    pub fn zero_inputs(&self, rows: usize) -> Tensors {
        self.inputs
            .iter()
            .map(|s| {
                let mut shape: Vec<i64> = s
                    .shape
                    .iter()
                    .map(|d| if *d < 0 { 1 } else { *d })
                    .collect();
                if self.batchable {
                    shape[0] = rows as i64;
                }
                let n = element_count(&shape).unwrap_or(0);
                (TensorData::zeros(s.dtype, n), shape)
            })
            .collect()
    }
}

/// The stand-in's computation: `[rows, 4]` FP32 in, `[rows, 1]` row sums out.
/// Requests are checked against its signature before they queue, so anything
/// else here is a bug, reported as a failed execution rather than a panic.
fn row_sums(inputs: Tensors) -> Result<Tensors, String> {
    let [(TensorData::Fp32(values), shape)] = inputs.as_slice() else {
        return Err("the stand-in takes one FP32 input".into());
    };
    let (rows, width) = match shape.as_slice() {
        [rows, width] if *width > 0 && element_count(shape) == Some(values.len()) => {
            (*rows, *width as usize)
        }
        _ => return Err(format!("the stand-in cannot take shape {shape:?}")),
    };
    let sums = values
        .chunks_exact(width)
        .map(|row| row.iter().sum())
        .collect();
    Ok(vec![(TensorData::Fp32(sums), vec![rows, 1])])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stand_in_sums_each_row() {
        let m = Model::stand_in("sum");
        assert_eq!(m.platform, STAND_IN_PLATFORM);
        assert!(m.batchable);
        let input = TensorData::Fp32(vec![1.0, 2.0, 3.0, 4.0, 0.5, 0.5, -1.0, 0.0]);
        let out = m.run(vec![(input, vec![2, 4])]).unwrap();
        assert_eq!(out, vec![(TensorData::Fp32(vec![10.0, 0.0]), vec![2, 1])]);
        // The warm-up and calibration inputs fit its signature too.
        let zeros = m.run(m.zero_inputs(3)).unwrap();
        assert_eq!(zeros, vec![(TensorData::Fp32(vec![0.0; 3]), vec![3, 1])]);
    }

    #[test]
    fn the_stand_in_refuses_what_its_signature_would_not_admit() {
        let m = Model::stand_in("sum");
        assert!(m
            .run(vec![(TensorData::I32(vec![1; 4]), vec![1, 4])])
            .is_err());
        assert!(m
            .run(vec![(TensorData::Fp32(vec![1.0; 3]), vec![1, 4])])
            .is_err());
        assert!(m.run(vec![(TensorData::Fp32(vec![]), vec![0, 0])]).is_err());
    }
}
