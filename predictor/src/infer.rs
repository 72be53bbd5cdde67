//! Transport-independent inference: checking a request's tensors against the
//! model, queueing it for a batch, and choosing which outputs to return.

use std::sync::Arc;

use crate::batcher::Batcher;
use crate::decode::Decoded;
use crate::error::ApiError;
use crate::model::{Model, Tensors};
use crate::tensor::{element_count, DataType, TensorData};

/// Where an input's elements are in the request.
pub enum InputData<'a> {
    /// JSON `data`, flat or nested, already decoded as some datatype.
    Json(Decoded),
    /// Little-endian bytes (binary extension, gRPC raw contents).
    Raw(&'a [u8]),
    /// Already typed (gRPC typed contents).
    Typed(TensorData),
    Missing,
}

pub struct RawInput<'a> {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
    pub data: InputData<'a>,
}

fn shape_text(shape: &[i64]) -> String {
    format!("{shape:?}")
}

/// Checks every input against the model and decodes it. Returns the request's
/// rows (its batch dimension, 1 for a model that cannot batch) and the tensors in
/// the model's input order.
pub fn prepare(
    model: &Model,
    max_batch: u32,
    inputs: Vec<RawInput<'_>>,
) -> Result<(u32, Tensors), ApiError> {
    let mut slots: Vec<Option<(TensorData, Vec<i64>)>> = vec![None; model.inputs.len()];
    for input in inputs {
        let name = input.name.as_str();
        let Some(idx) = model.inputs.iter().position(|s| s.name == name) else {
            let expected: Vec<&str> = model.inputs.iter().map(|s| s.name.as_str()).collect();
            return Err(ApiError::bad_request(format!(
                "unexpected input '{name}': model {} takes {}",
                model.name,
                expected.join(", ")
            )));
        };
        if slots[idx].is_some() {
            return Err(ApiError::bad_request(format!(
                "input '{name}' is given twice"
            )));
        }
        let spec = &model.inputs[idx];
        let dtype = DataType::parse(&input.datatype).ok_or_else(|| {
            ApiError::bad_request(format!(
                "input '{name}': unknown or unsupported datatype '{}'",
                input.datatype
            ))
        })?;
        if dtype != spec.dtype {
            return Err(ApiError::bad_request(format!(
                "input '{name}': datatype {} does not match the model's {}",
                dtype.name(),
                spec.dtype.name()
            )));
        }
        let shape = input.shape.as_slice();
        let fits = shape.len() == spec.shape.len()
            && shape
                .iter()
                .zip(&spec.shape)
                .all(|(got, want)| *got >= 0 && (*want < 0 || got == want));
        if !fits {
            return Err(ApiError::bad_request(format!(
                "input '{name}': shape {} does not match the model's {} (-1 = any size)",
                shape_text(shape),
                shape_text(&spec.shape)
            )));
        }
        let count = element_count(shape).ok_or_else(|| {
            ApiError::bad_request(format!(
                "input '{name}': shape {} is too large",
                shape_text(shape)
            ))
        })?;
        let data = match input.data {
            InputData::Json(d) if d.data.datatype() != dtype => Err(format!(
                "data was read as {} but the datatype is {}",
                d.data.datatype().name(),
                dtype.name()
            )),
            // Nested data must nest as the shape does; flat data only counts.
            InputData::Json(d)
                if d.nesting.len() > 1
                    && !d.nesting.iter().zip(shape).all(|(n, s)| *n as i64 == *s)
                    || d.nesting.len() > 1 && d.nesting.len() != shape.len() =>
            {
                Err(format!(
                    "nested data has dimensions {:?} but the shape is {}",
                    d.nesting,
                    shape_text(shape)
                ))
            }
            InputData::Json(d) => Ok(d.data),
            InputData::Raw(bytes) => TensorData::from_le_bytes(dtype, bytes),
            InputData::Typed(d) if d.datatype() == dtype => Ok(d),
            InputData::Typed(d) => Err(format!(
                "contents are {} but the datatype is {}",
                d.datatype().name(),
                dtype.name()
            )),
            InputData::Missing => Err("no data given".to_string()),
        }
        .map_err(|e| ApiError::bad_request(format!("input '{name}': {e}")))?;
        if data.len() != count {
            return Err(ApiError::bad_request(format!(
                "input '{name}': shape {} needs {count} elements, got {}",
                shape_text(shape),
                data.len()
            )));
        }
        slots[idx] = Some((data, shape.to_vec()));
    }
    let mut tensors = Vec::with_capacity(slots.len());
    for (spec, slot) in model.inputs.iter().zip(slots) {
        let t =
            slot.ok_or_else(|| ApiError::bad_request(format!("missing input '{}'", spec.name)))?;
        tensors.push(t);
    }
    let rows = if model.batchable {
        let rows = tensors[0].1[0];
        if let Some((i, _)) = tensors.iter().enumerate().find(|(_, t)| t.1[0] != rows) {
            return Err(ApiError::bad_request(format!(
                "input '{}' has {} rows but '{}' has {rows}: every input needs the same first dimension",
                model.inputs[i].name, tensors[i].1[0], model.inputs[0].name
            )));
        }
        if rows == 0 {
            return Err(ApiError::bad_request(format!(
                "input '{}': the batch dimension is 0",
                model.inputs[0].name
            )));
        }
        if rows > i64::from(max_batch) {
            return Err(ApiError::bad_request(format!(
                "input '{}': {rows} rows is more than the max batch size {max_batch}",
                model.inputs[0].name
            )));
        }
        rows as u32
    } else {
        1
    };
    Ok((rows, tensors))
}

/// Indices of the requested outputs in model order (all when none is named).
pub fn select_outputs(model: &Model, requested: &[&str]) -> Result<Vec<usize>, ApiError> {
    if requested.is_empty() {
        return Ok((0..model.outputs.len()).collect());
    }
    requested
        .iter()
        .map(|name| {
            model
                .outputs
                .iter()
                .position(|s| s.name == *name)
                .ok_or_else(|| {
                    let have: Vec<&str> = model.outputs.iter().map(|s| s.name.as_str()).collect();
                    ApiError::bad_request(format!(
                        "unknown output '{name}': model {} has {}",
                        model.name,
                        have.join(", ")
                    ))
                })
        })
        .collect()
}

/// Queues a prepared request and waits for its share of the batch's outputs.
pub async fn run(batcher: &Arc<Batcher>, rows: u32, tensors: Tensors) -> Result<Tensors, ApiError> {
    let reply = batcher.submit(rows, tensors)?;
    reply
        .await
        .unwrap_or_else(|_| Err(ApiError::internal("the execution was dropped")))
}
