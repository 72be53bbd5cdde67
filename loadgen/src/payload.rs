//! Request bodies: tensors built from a model's metadata, in each protocol's
//! encoding, or a file sent as it is.

use crate::config::Fill;
use bytes::Bytes;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value};

/// One input of the model, as its metadata states it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TensorSpec {
    pub name: String,
    pub datatype: String,
    /// `-1` marks a variable dimension.
    pub shape: Vec<i64>,
}

/// The part of `GET /v2/models/{m}` we need.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelMetadata {
    pub inputs: Vec<TensorSpec>,
}

/// Parses the V2 REST metadata body.
pub fn parse_metadata(body: &[u8]) -> Result<ModelMetadata, String> {
    let m: ModelMetadata = serde_json::from_slice(body)
        .map_err(|e| format!("the metadata is not V2 model metadata JSON: {e}"))?;
    if m.inputs.is_empty() {
        return Err("the model declares no inputs".into());
    }
    for t in &m.inputs {
        element_size(&t.datatype)?;
    }
    Ok(m)
}

/// Bytes per element in the raw encoding; `BYTES` elements are length-prefixed.
fn element_size(datatype: &str) -> Result<usize, String> {
    Ok(match datatype {
        "BOOL" | "UINT8" | "INT8" => 1,
        "UINT16" | "INT16" | "FP16" | "BF16" => 2,
        "UINT32" | "INT32" | "FP32" => 4,
        "UINT64" | "INT64" | "FP64" => 8,
        "BYTES" => 0,
        other => return Err(format!("unknown tensor datatype `{other}`")),
    })
}

/// The shape sent for a request of `rows` rows: a variable first dimension
/// becomes `rows`, any other variable dimension becomes 1.
pub fn concrete_shape(shape: &[i64], rows: u32) -> Vec<i64> {
    shape
        .iter()
        .enumerate()
        .map(|(i, d)| match (*d < 0, i) {
            (true, 0) => i64::from(rows),
            (true, _) => 1,
            (false, _) => *d,
        })
        .collect()
}

/// Values of one tensor, kept in the widest type of their kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Float(Vec<f64>),
    Int(Vec<i64>),
    Uint(Vec<u64>),
    Bool(Vec<bool>),
    Bytes(Vec<String>),
}

/// A tensor ready to encode.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
    pub values: Values,
}

/// Builds the tensor for `spec` with `rows` rows.
pub fn build_tensor(spec: &TensorSpec, rows: u32, fill: Fill, rng: &mut impl RngCore) -> Tensor {
    let shape = concrete_shape(&spec.shape, rows);
    let n = shape.iter().map(|d| *d.max(&0) as usize).product::<usize>();
    let mut draw = |m: u64| match fill {
        Fill::Zero => 0,
        Fill::Random => rng.next_u64() % m,
    };
    let values = match spec.datatype.as_str() {
        "FP16" | "BF16" | "FP32" | "FP64" => Values::Float(
            (0..n)
                .map(|_| draw(1 << 20) as f64 / (1 << 20) as f64)
                .collect(),
        ),
        "INT8" | "INT16" | "INT32" | "INT64" => {
            Values::Int((0..n).map(|_| draw(100) as i64).collect())
        }
        "UINT8" => Values::Uint((0..n).map(|_| draw(256)).collect()),
        "UINT16" | "UINT32" | "UINT64" => Values::Uint((0..n).map(|_| draw(100)).collect()),
        "BOOL" => Values::Bool((0..n).map(|_| draw(2) == 1).collect()),
        _ => Values::Bytes((0..n).map(|_| format!("x{}", draw(1000))).collect()),
    };
    Tensor {
        name: spec.name.clone(),
        datatype: spec.datatype.clone(),
        shape,
        values,
    }
}

impl Tensor {
    /// The flat values as JSON numbers, strings or booleans.
    pub fn json_data(&self) -> Value {
        match &self.values {
            Values::Float(v) => json!(v.iter().map(|x| *x as f32).collect::<Vec<_>>()),
            Values::Int(v) => json!(v),
            Values::Uint(v) => json!(v),
            Values::Bool(v) => json!(v),
            Values::Bytes(v) => json!(v),
        }
    }

    /// Row-major little-endian bytes, as the binary extension and gRPC
    /// `raw_input_contents` carry them.
    pub fn raw(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match (&self.values, self.datatype.as_str()) {
            (Values::Float(v), "FP16") => v
                .iter()
                .for_each(|x| out.extend_from_slice(&f32_to_f16(*x as f32).to_le_bytes())),
            (Values::Float(v), "BF16") => v.iter().for_each(|x| {
                out.extend_from_slice(&(((*x as f32).to_bits() >> 16) as u16).to_le_bytes())
            }),
            (Values::Float(v), "FP32") => v
                .iter()
                .for_each(|x| out.extend_from_slice(&(*x as f32).to_le_bytes())),
            (Values::Float(v), _) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            (Values::Int(v), dt) => {
                let size = element_size(dt).unwrap_or(8);
                v.iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()[..size]))
            }
            (Values::Uint(v), dt) => {
                let size = element_size(dt).unwrap_or(8);
                v.iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()[..size]))
            }
            (Values::Bool(v), _) => v.iter().for_each(|b| out.push(u8::from(*b))),
            (Values::Bytes(v), _) => v.iter().for_each(|s| {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }),
        }
        out
    }

    /// One row's values nested by the remaining dimensions, for V1 `instances`.
    fn json_rows(&self) -> Vec<Value> {
        let flat = match self.json_data() {
            Value::Array(a) => a,
            other => vec![other],
        };
        let rows = self.shape.first().copied().unwrap_or(1).max(1) as usize;
        let per_row = flat.len() / rows;
        flat.chunks(per_row.max(1))
            .map(|row| nest(row, &self.shape[1.min(self.shape.len())..]))
            .collect()
    }
}

/// Nests a flat slice by `dims` (row-major).
fn nest(flat: &[Value], dims: &[i64]) -> Value {
    match dims {
        [] => flat.first().cloned().unwrap_or(Value::Null),
        [_] => Value::Array(flat.to_vec()),
        [d, rest @ ..] => {
            let chunk = flat.len() / (*d).max(1) as usize;
            Value::Array(flat.chunks(chunk.max(1)).map(|c| nest(c, rest)).collect())
        }
    }
}

/// IEEE half precision, rounding to nearest (inputs here are in [0, 1)).
fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32 - 127 + 15;
    let mant = bits & 0x7f_ffff;
    if exp <= 0 {
        if exp < -10 {
            return sign;
        }
        let m = (mant | 0x80_0000) >> (1 - exp);
        return sign | ((m + 0x1000) >> 13) as u16;
    }
    if exp >= 0x1f {
        return sign | 0x7c00;
    }
    sign | ((exp as u16) << 10) | (((mant + 0x1000) >> 13) as u16)
}

/// Body of a V2 REST request with JSON tensors.
pub fn v2_json(tensors: &[Tensor]) -> Bytes {
    let inputs: Vec<Value> = tensors
        .iter()
        .map(|t| json!({"name": t.name, "shape": t.shape, "datatype": t.datatype, "data": t.json_data()}))
        .collect();
    Bytes::from(json!({ "inputs": inputs }).to_string())
}

/// Body of a V2 REST request with the binary tensor extension, and the length of
/// its JSON header (the `Inference-Header-Content-Length` value).
pub fn v2_binary(tensors: &[Tensor]) -> (Bytes, usize) {
    let raws: Vec<Vec<u8>> = tensors.iter().map(Tensor::raw).collect();
    let inputs: Vec<Value> = tensors
        .iter()
        .zip(&raws)
        .map(|(t, r)| {
            json!({"name": t.name, "shape": t.shape, "datatype": t.datatype,
                   "parameters": {"binary_data_size": r.len()}})
        })
        .collect();
    let header = json!({ "inputs": inputs }).to_string();
    let mut body = header.clone().into_bytes();
    for r in &raws {
        body.extend_from_slice(r);
    }
    (Bytes::from(body), header.len())
}

/// Body of a KServe V1 `:predict` request: one instance per row.
pub fn v1_json(tensors: &[Tensor]) -> Bytes {
    let instances: Vec<Value> = if let [t] = tensors {
        t.json_rows()
    } else {
        let per_tensor: Vec<Vec<Value>> = tensors.iter().map(Tensor::json_rows).collect();
        let rows = per_tensor.iter().map(Vec::len).min().unwrap_or(0);
        (0..rows)
            .map(|r| {
                Value::Object(
                    tensors
                        .iter()
                        .zip(&per_tensor)
                        .map(|(t, v)| (t.name.clone(), v[r].clone()))
                        .collect(),
                )
            })
            .collect()
    };
    Bytes::from(json!({ "instances": instances }).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_pcg::Pcg64Mcg;

    fn spec(dt: &str, shape: &[i64]) -> TensorSpec {
        TensorSpec {
            name: "x".into(),
            datatype: dt.into(),
            shape: shape.to_vec(),
        }
    }

    #[test]
    fn metadata_parses_and_rejects_nonsense() {
        let m = parse_metadata(
            br#"{"name":"m","versions":["1"],"platform":"onnx","inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],"outputs":[]}"#,
        )
        .unwrap();
        assert_eq!(m.inputs[0].shape, vec![-1, 4]);
        assert!(parse_metadata(b"<html>").is_err());
        assert!(parse_metadata(br#"{"inputs":[]}"#).is_err());
        assert!(
            parse_metadata(br#"{"inputs":[{"name":"x","datatype":"FP8","shape":[1]}]}"#)
                .unwrap_err()
                .contains("FP8")
        );
    }

    #[test]
    fn rows_fill_the_variable_batch_dimension() {
        assert_eq!(concrete_shape(&[-1, 3, -1], 8), vec![8, 3, 1]);
        assert_eq!(concrete_shape(&[2, 3], 8), vec![2, 3]);
        let mut rng = Pcg64Mcg::new(1);
        let t = build_tensor(&spec("FP32", &[-1, 4]), 3, Fill::Random, &mut rng);
        assert_eq!(t.raw().len(), 3 * 4 * 4);
        let t = build_tensor(&spec("INT16", &[-1, 4]), 2, Fill::Zero, &mut rng);
        assert_eq!(t.raw(), vec![0; 2 * 4 * 2]);
        let t = build_tensor(&spec("FP16", &[1]), 1, Fill::Zero, &mut rng);
        assert_eq!(t.raw().len(), 2);
    }

    #[test]
    fn encodings_carry_shape_and_sizes() {
        let mut rng = Pcg64Mcg::new(1);
        let t = build_tensor(&spec("FP32", &[-1, 2, 2]), 2, Fill::Random, &mut rng);
        let v: Value = serde_json::from_slice(&v2_json(std::slice::from_ref(&t))).unwrap();
        assert_eq!(v["inputs"][0]["shape"], json!([2, 2, 2]));
        assert_eq!(v["inputs"][0]["data"].as_array().unwrap().len(), 8);

        let (body, header_len) = v2_binary(std::slice::from_ref(&t));
        let header: Value = serde_json::from_slice(&body[..header_len]).unwrap();
        assert_eq!(
            header["inputs"][0]["parameters"]["binary_data_size"],
            json!(32)
        );
        assert_eq!(body.len(), header_len + 32);

        let v: Value = serde_json::from_slice(&v1_json(std::slice::from_ref(&t))).unwrap();
        let inst = v["instances"].as_array().unwrap();
        assert_eq!(inst.len(), 2);
        assert_eq!(inst[0].as_array().unwrap().len(), 2);
        assert_eq!(inst[0][0].as_array().unwrap().len(), 2);
    }

    #[test]
    fn half_precision_of_known_values() {
        assert_eq!(f32_to_f16(0.0), 0);
        assert_eq!(f32_to_f16(1.0), 0x3c00);
        assert_eq!(f32_to_f16(0.5), 0x3800);
        assert_eq!(f32_to_f16(-2.0), 0xc000);
    }
}
