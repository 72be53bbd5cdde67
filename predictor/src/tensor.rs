//! Tensor datatypes as the Open Inference Protocol names them, and their data in
//! the three encodings the predictor speaks: JSON numbers, little-endian raw bytes
//! (binary extension and gRPC raw contents) and ONNX Runtime values.

use ort::value::{DynValue, Tensor, TensorElementType, ValueType};
use serde::ser::{Serialize, Serializer};

/// Element types the predictor serves. FP16, BF16 and BYTES models are refused at
/// load time with a clear message instead of half-working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    Bool,
    U8,
    U16,
    U32,
    U64,
    I8,
    I16,
    I32,
    I64,
    Fp32,
    Fp64,
}

const ALL: [DataType; 11] = [
    DataType::Bool,
    DataType::U8,
    DataType::U16,
    DataType::U32,
    DataType::U64,
    DataType::I8,
    DataType::I16,
    DataType::I32,
    DataType::I64,
    DataType::Fp32,
    DataType::Fp64,
];

impl DataType {
    /// The protocol's name (`FP32`, `INT64`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::U8 => "UINT8",
            DataType::U16 => "UINT16",
            DataType::U32 => "UINT32",
            DataType::U64 => "UINT64",
            DataType::I8 => "INT8",
            DataType::I16 => "INT16",
            DataType::I32 => "INT32",
            DataType::I64 => "INT64",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
        }
    }

    pub fn parse(name: &str) -> Option<DataType> {
        ALL.into_iter().find(|d| d.name() == name)
    }

    /// Bytes per element in the raw encoding.
    pub fn size(self) -> usize {
        match self {
            DataType::Bool | DataType::U8 | DataType::I8 => 1,
            DataType::U16 | DataType::I16 => 2,
            DataType::U32 | DataType::I32 | DataType::Fp32 => 4,
            DataType::U64 | DataType::I64 | DataType::Fp64 => 8,
        }
    }

    pub fn from_ort(t: TensorElementType) -> Result<DataType, String> {
        Ok(match t {
            TensorElementType::Bool => DataType::Bool,
            TensorElementType::Uint8 => DataType::U8,
            TensorElementType::Uint16 => DataType::U16,
            TensorElementType::Uint32 => DataType::U32,
            TensorElementType::Uint64 => DataType::U64,
            TensorElementType::Int8 => DataType::I8,
            TensorElementType::Int16 => DataType::I16,
            TensorElementType::Int32 => DataType::I32,
            TensorElementType::Int64 => DataType::I64,
            TensorElementType::Float32 => DataType::Fp32,
            TensorElementType::Float64 => DataType::Fp64,
            other => return Err(format!("element type {other:?} is not supported")),
        })
    }
}

/// The element type and declared shape (-1 = variable) of an ONNX value, or why
/// the predictor cannot serve it (sequences, maps, unsupported types).
pub fn spec_of(vt: &ValueType) -> Result<(DataType, Vec<i64>), String> {
    match vt {
        ValueType::Tensor { ty, shape, .. } => {
            Ok((DataType::from_ort(*ty)?, shape.iter().copied().collect()))
        }
        other => Err(format!(
            "{other:?} is not a tensor (export classifiers with zipmap disabled)"
        )),
    }
}

/// A tensor's elements, flattened row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum TensorData {
    Bool(Vec<bool>),
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
    I8(Vec<i8>),
    I16(Vec<i16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    Fp32(Vec<f32>),
    Fp64(Vec<f64>),
}

/// Runs `$body` with `$v` bound to the inner Vec, whatever the variant.
macro_rules! each {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::Bool($v) => $body,
            TensorData::U8($v) => $body,
            TensorData::U16($v) => $body,
            TensorData::U32($v) => $body,
            TensorData::U64($v) => $body,
            TensorData::I8($v) => $body,
            TensorData::I16($v) => $body,
            TensorData::I32($v) => $body,
            TensorData::I64($v) => $body,
            TensorData::Fp32($v) => $body,
            TensorData::Fp64($v) => $body,
        }
    };
}

/// Same variant rebuilt around a new Vec.
macro_rules! map_same {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::Bool($v) => TensorData::Bool($body),
            TensorData::U8($v) => TensorData::U8($body),
            TensorData::U16($v) => TensorData::U16($body),
            TensorData::U32($v) => TensorData::U32($body),
            TensorData::U64($v) => TensorData::U64($body),
            TensorData::I8($v) => TensorData::I8($body),
            TensorData::I16($v) => TensorData::I16($body),
            TensorData::I32($v) => TensorData::I32($body),
            TensorData::I64($v) => TensorData::I64($body),
            TensorData::Fp32($v) => TensorData::Fp32($body),
            TensorData::Fp64($v) => TensorData::Fp64($body),
        }
    };
}

fn le_decode<const N: usize, T>(bytes: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunks_exact yields N bytes")))
        .collect()
}

impl TensorData {
    pub fn datatype(&self) -> DataType {
        match self {
            TensorData::Bool(_) => DataType::Bool,
            TensorData::U8(_) => DataType::U8,
            TensorData::U16(_) => DataType::U16,
            TensorData::U32(_) => DataType::U32,
            TensorData::U64(_) => DataType::U64,
            TensorData::I8(_) => DataType::I8,
            TensorData::I16(_) => DataType::I16,
            TensorData::I32(_) => DataType::I32,
            TensorData::I64(_) => DataType::I64,
            TensorData::Fp32(_) => DataType::Fp32,
            TensorData::Fp64(_) => DataType::Fp64,
        }
    }

    pub fn len(&self) -> usize {
        each!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Zeros (false) of the given type, for warm-up and calibration inputs.
    pub fn zeros(dtype: DataType, n: usize) -> TensorData {
        match dtype {
            DataType::Bool => TensorData::Bool(vec![false; n]),
            DataType::U8 => TensorData::U8(vec![0; n]),
            DataType::U16 => TensorData::U16(vec![0; n]),
            DataType::U32 => TensorData::U32(vec![0; n]),
            DataType::U64 => TensorData::U64(vec![0; n]),
            DataType::I8 => TensorData::I8(vec![0; n]),
            DataType::I16 => TensorData::I16(vec![0; n]),
            DataType::I32 => TensorData::I32(vec![0; n]),
            DataType::I64 => TensorData::I64(vec![0; n]),
            DataType::Fp32 => TensorData::Fp32(vec![0.0; n]),
            DataType::Fp64 => TensorData::Fp64(vec![0.0; n]),
        }
    }

    /// Decodes little-endian raw bytes; the length must be a whole number of elements.
    pub fn from_le_bytes(dtype: DataType, bytes: &[u8]) -> Result<TensorData, String> {
        if !bytes.len().is_multiple_of(dtype.size()) {
            return Err(format!(
                "{} bytes of raw data is not a whole number of {} elements ({} bytes each)",
                bytes.len(),
                dtype.name(),
                dtype.size()
            ));
        }
        Ok(match dtype {
            DataType::Bool => TensorData::Bool(bytes.iter().map(|b| *b != 0).collect()),
            DataType::U8 => TensorData::U8(bytes.to_vec()),
            DataType::I8 => TensorData::I8(bytes.iter().map(|b| *b as i8).collect()),
            DataType::U16 => TensorData::U16(le_decode(bytes, u16::from_le_bytes)),
            DataType::I16 => TensorData::I16(le_decode(bytes, i16::from_le_bytes)),
            DataType::U32 => TensorData::U32(le_decode(bytes, u32::from_le_bytes)),
            DataType::I32 => TensorData::I32(le_decode(bytes, i32::from_le_bytes)),
            DataType::Fp32 => TensorData::Fp32(le_decode(bytes, f32::from_le_bytes)),
            DataType::U64 => TensorData::U64(le_decode(bytes, u64::from_le_bytes)),
            DataType::I64 => TensorData::I64(le_decode(bytes, i64::from_le_bytes)),
            DataType::Fp64 => TensorData::Fp64(le_decode(bytes, f64::from_le_bytes)),
        })
    }

    pub fn to_le_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len() * self.datatype().size());
        match self {
            TensorData::Bool(v) => out.extend(v.iter().map(|b| u8::from(*b))),
            TensorData::U8(v) => out.extend_from_slice(v),
            TensorData::I8(v) => out.extend(v.iter().map(|x| *x as u8)),
            TensorData::U16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::I16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::U32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::I32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::Fp32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::U64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::I64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            TensorData::Fp64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
        out
    }

    /// Elements `[start, end)` as a new tensor (splitting a batch's outputs by request).
    pub fn slice(&self, start: usize, end: usize) -> TensorData {
        map_same!(self, v => v[start..end].to_vec())
    }

    /// Concatenates tensors of one type (forming a batch). `None` if types differ.
    pub fn concat(parts: &[&TensorData]) -> Option<TensorData> {
        let first = parts.first()?;
        let total: usize = parts.iter().map(|p| p.len()).sum();
        macro_rules! cat {
            ($variant:ident) => {{
                let mut out = Vec::with_capacity(total);
                for p in parts {
                    match p {
                        TensorData::$variant(v) => out.extend_from_slice(v),
                        _ => return None,
                    }
                }
                TensorData::$variant(out)
            }};
        }
        Some(match first {
            TensorData::Bool(_) => cat!(Bool),
            TensorData::U8(_) => cat!(U8),
            TensorData::U16(_) => cat!(U16),
            TensorData::U32(_) => cat!(U32),
            TensorData::U64(_) => cat!(U64),
            TensorData::I8(_) => cat!(I8),
            TensorData::I16(_) => cat!(I16),
            TensorData::I32(_) => cat!(I32),
            TensorData::I64(_) => cat!(I64),
            TensorData::Fp32(_) => cat!(Fp32),
            TensorData::Fp64(_) => cat!(Fp64),
        })
    }

    /// An ONNX Runtime value of the given shape (moves the data).
    pub fn into_ort(self, shape: Vec<i64>) -> ort::Result<DynValue> {
        Ok(each!(self, v => Tensor::from_array((shape, v))?.into_dyn()))
    }

    /// Copies an ONNX Runtime output out as (shape, data).
    pub fn from_ort(value: &DynValue) -> Result<(Vec<i64>, TensorData), String> {
        let (dtype, _) = spec_of(value.dtype())?;
        macro_rules! ext {
            ($t:ty, $variant:ident) => {{
                let (shape, data) = value
                    .try_extract_tensor::<$t>()
                    .map_err(|e| e.to_string())?;
                (
                    shape.iter().copied().collect(),
                    TensorData::$variant(data.to_vec()),
                )
            }};
        }
        Ok(match dtype {
            DataType::Bool => ext!(bool, Bool),
            DataType::U8 => ext!(u8, U8),
            DataType::U16 => ext!(u16, U16),
            DataType::U32 => ext!(u32, U32),
            DataType::U64 => ext!(u64, U64),
            DataType::I8 => ext!(i8, I8),
            DataType::I16 => ext!(i16, I16),
            DataType::I32 => ext!(i32, I32),
            DataType::I64 => ext!(i64, I64),
            DataType::Fp32 => ext!(f32, Fp32),
            DataType::Fp64 => ext!(f64, Fp64),
        })
    }
}

/// JSON serialization is the flat array of elements.
impl Serialize for TensorData {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        each!(self, v => v.serialize(s))
    }
}

/// Number of elements a shape holds, or `None` on overflow or a negative dimension.
pub fn element_count(shape: &[i64]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, d| {
        usize::try_from(*d).ok().and_then(|d| acc.checked_mul(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_bytes_round_trip_and_reject_partial_elements() {
        for d in [
            TensorData::Fp64(vec![1.5, -2.25]),
            TensorData::I16(vec![-3, 7]),
            TensorData::Bool(vec![true, false]),
            TensorData::U64(vec![u64::MAX, 0]),
        ] {
            let back = TensorData::from_le_bytes(d.datatype(), &d.to_le_bytes()).unwrap();
            assert_eq!(back, d);
        }
        assert!(TensorData::from_le_bytes(DataType::Fp32, &[0; 6]).is_err());
    }

    #[test]
    fn concat_and_slice_split_a_batch_back() {
        let a = TensorData::Fp32(vec![1.0, 2.0]);
        let b = TensorData::Fp32(vec![3.0]);
        let c = TensorData::concat(&[&a, &b]).unwrap();
        assert_eq!(c.slice(0, 2), a);
        assert_eq!(c.slice(2, 3), b);
        assert!(TensorData::concat(&[&a, &TensorData::I8(vec![1])]).is_none());
    }

    #[test]
    fn element_count_rejects_negative_and_overflow() {
        assert_eq!(element_count(&[2, 3]), Some(6));
        assert_eq!(element_count(&[-1, 3]), None);
        assert_eq!(element_count(&[i64::MAX, i64::MAX]), None);
    }
}
