//! One ONNX model loaded into ONNX Runtime: its tensor signature and a pool of
//! sessions, one per concurrent execution (Triton's instance count).

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

pub struct OnnxModel {
    pub name: String,
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
    /// Every input and output has a variable first dimension, so requests can be
    /// stacked along it into one batch.
    pub batchable: bool,
    sessions: Mutex<Vec<Session>>,
}

/// Tensors in the model's input (or output) order, each with its concrete shape.
pub type Tensors = Vec<(TensorData, Vec<i64>)>;

fn ort_err(context: &str, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{context}: {e}")
}

impl OnnxModel {
    pub fn load(name: &str, path: &Path, opts: &LoadOptions) -> anyhow::Result<OnnxModel> {
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
        Ok(OnnxModel {
            name: name.to_string(),
            inputs,
            outputs,
            batchable,
            sessions: Mutex::new(sessions),
        })
    }

    pub fn instances(&self) -> usize {
        self.sessions.lock().map(|s| s.len()).unwrap_or(1)
    }

    /// Runs one execution (blocking). Returns every output in model order.
    pub fn run(&self, inputs: Tensors) -> Result<Tensors, String> {
        let mut session = {
            let mut pool = self.sessions.lock().map_err(|_| "session pool poisoned")?;
            pool.pop()
                .ok_or("no free session (more executions than instances)")?
        };
        let result = self.run_on(&mut session, inputs);
        if let Ok(mut pool) = self.sessions.lock() {
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
