//! Any bytes given to the REST request decoders (V2 JSON, KServe V1 JSON, and
//! the binary extension's raw tensors) yield a request or an error message,
//! never a panic. Run with `cargo +nightly fuzz run rest_decode -- -max_total_time=60`
//! from the repository root.
#![no_main]

use lab_predictor::decode::{decode_text, decode_v1_slice, decode_v2_slice};
use lab_predictor::model::Model;
use lab_predictor::tensor::{DataType, TensorData};
use libfuzzer_sys::fuzz_target;

const TYPES: [&str; 11] = [
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP32",
    "FP64",
];

fuzz_target!(|data: &[u8]| {
    let model = Model::stand_in("m");
    let _ = decode_v2_slice(&model, data);
    let _ = decode_v1_slice(&model, data);
    // The binary extension: the first byte picks a datatype, the rest is raw data.
    if let Some((first, rest)) = data.split_first() {
        if let Some(dtype) = DataType::parse(TYPES[*first as usize % TYPES.len()]) {
            let _ = TensorData::from_le_bytes(dtype, rest);
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = decode_text(dtype, text);
            }
        }
    }
});
