//! Response JSON written straight from typed outputs (no JSON tree).
//!
//! **Non-finite outputs.** JSON has no NaN or infinity. An FP32 or FP64 output
//! element that is NaN, +inf or -inf is written as the bare token `NaN`,
//! `Infinity` or `-Infinity`: what Python's `json` and the `rapidjson` that
//! `tritonclient` parses with read back as the same value. Strict JSON parsers
//! refuse these tokens; a client that uses one should ask for binary outputs
//! (`binary_data_output`) or use gRPC, where every value travels as raw bytes.

use crate::tensor::TensorData;

fn write_f64(out: &mut Vec<u8>, x: f64) {
    if x.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(x).as_bytes());
    } else {
        out.extend_from_slice(non_finite(x.is_nan(), x > 0.0));
    }
}

fn write_f32(out: &mut Vec<u8>, x: f32) {
    if x.is_finite() {
        // The f32's own shortest decimal: 0.98165685, not 0.9816568493843079.
        out.extend_from_slice(ryu::Buffer::new().format_finite(x).as_bytes());
    } else {
        out.extend_from_slice(non_finite(x.is_nan(), x > 0.0));
    }
}

fn non_finite(nan: bool, positive: bool) -> &'static [u8] {
    if nan {
        b"NaN"
    } else if positive {
        b"Infinity"
    } else {
        b"-Infinity"
    }
}

fn write_int(out: &mut Vec<u8>, x: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(x).as_bytes());
}

/// Writes element `i` of `data`.
pub fn write_element(out: &mut Vec<u8>, data: &TensorData, i: usize) {
    match data {
        TensorData::Bool(v) => out.extend_from_slice(if v[i] { b"true" } else { b"false" }),
        TensorData::U8(v) => write_int(out, v[i]),
        TensorData::U16(v) => write_int(out, v[i]),
        TensorData::U32(v) => write_int(out, v[i]),
        TensorData::U64(v) => write_int(out, v[i]),
        TensorData::I8(v) => write_int(out, v[i]),
        TensorData::I16(v) => write_int(out, v[i]),
        TensorData::I32(v) => write_int(out, v[i]),
        TensorData::I64(v) => write_int(out, v[i]),
        TensorData::Fp32(v) => write_f32(out, v[i]),
        TensorData::Fp64(v) => write_f64(out, v[i]),
    }
}

/// Writes every element of `data` as one flat JSON array.
pub fn write_flat(out: &mut Vec<u8>, data: &TensorData) {
    out.push(b'[');
    for i in 0..data.len() {
        if i > 0 {
            out.push(b',');
        }
        write_element(out, data, i);
    }
    out.push(b']');
}

/// Writes elements `[start, start + product(dims))` nested as `dims` says.
pub fn write_nested(out: &mut Vec<u8>, data: &TensorData, start: usize, dims: &[usize]) {
    match dims {
        [] => write_element(out, data, start),
        [n, rest @ ..] => {
            let inner: usize = rest.iter().product();
            out.push(b'[');
            for k in 0..*n {
                if k > 0 {
                    out.push(b',');
                }
                write_nested(out, data, start + k * inner, rest);
            }
            out.push(b']');
        }
    }
}

/// Writes a JSON string (or any serializable value) with serde's escaping.
pub fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing into a Vec cannot fail, and these values are plain strings and maps.
    let _ = serde_json::to_writer(&mut *out, v);
}

/// One output of a V2 response: JSON `data`, or binary data of this size.
pub struct V2Output<'a> {
    pub name: &'a str,
    pub datatype: &'static str,
    pub shape: &'a [i64],
    pub data: &'a TensorData,
    pub binary_size: Option<usize>,
}

/// The V2 response object (without any binary tail).
pub fn v2_response(
    model: &str,
    version: &str,
    id: Option<&serde_json::Value>,
    outputs: &[V2Output<'_>],
) -> Vec<u8> {
    let json_bytes: usize = outputs
        .iter()
        .filter(|o| o.binary_size.is_none())
        .map(|o| o.data.len() * 12)
        .sum();
    let mut out = Vec::with_capacity(256 + json_bytes);
    out.extend_from_slice(b"{\"model_name\":");
    write_json(&mut out, model);
    out.extend_from_slice(b",\"model_version\":");
    write_json(&mut out, version);
    if let Some(id) = id {
        out.extend_from_slice(b",\"id\":");
        write_json(&mut out, id);
    }
    out.extend_from_slice(b",\"outputs\":[");
    for (k, o) in outputs.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        write_json(&mut out, o.name);
        out.extend_from_slice(b",\"datatype\":");
        write_json(&mut out, o.datatype);
        out.extend_from_slice(b",\"shape\":");
        write_json(&mut out, o.shape);
        match o.binary_size {
            Some(n) => {
                out.extend_from_slice(b",\"parameters\":{\"binary_data_size\":");
                write_int(&mut out, n);
                out.push(b'}');
            }
            None => {
                out.extend_from_slice(b",\"data\":");
                write_flat(&mut out, o.data);
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// KServe V1 `{"predictions": [...]}`: one value per row, nested as the
/// output's non-batch dimensions; an object per row keyed by output name when
/// the model has several outputs.
pub fn v1_predictions(rows: usize, outputs: &[(&str, &TensorData, &[i64])]) -> Vec<u8> {
    let total: usize = outputs.iter().map(|(_, d, _)| d.len()).sum();
    let mut out = Vec::with_capacity(32 + total * 12);
    out.extend_from_slice(b"{\"predictions\":[");
    let dims: Vec<Vec<usize>> = outputs
        .iter()
        .map(|(_, _, s)| s.iter().skip(1).map(|d| (*d).max(0) as usize).collect())
        .collect();
    for r in 0..rows {
        if r > 0 {
            out.push(b',');
        }
        let several = outputs.len() > 1;
        if several {
            out.push(b'{');
        }
        for (k, ((name, data, _), d)) in outputs.iter().zip(&dims).enumerate() {
            if several {
                if k > 0 {
                    out.push(b',');
                }
                write_json(&mut out, *name);
                out.push(b':');
            }
            let per_row: usize = d.iter().product();
            if (r + 1) * per_row <= data.len() {
                write_nested(&mut out, data, r * per_row, d);
            } else {
                out.extend_from_slice(b"null");
            }
        }
        if several {
            out.push(b'}');
        }
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn floats_keep_their_shortest_decimal_and_non_finite_tokens() {
        let mut out = Vec::new();
        write_flat(
            &mut out,
            &TensorData::Fp32(vec![
                0.98165685,
                1.0,
                f32::NAN,
                f32::INFINITY,
                -f32::INFINITY,
            ]),
        );
        assert_eq!(text(out), "[0.98165685,1.0,NaN,Infinity,-Infinity]");
        let mut out = Vec::new();
        write_flat(&mut out, &TensorData::I64(vec![-3, i64::MAX]));
        assert_eq!(text(out), "[-3,9223372036854775807]");
    }

    #[test]
    fn v1_rows_nest_by_the_output_shape() {
        let d = TensorData::Fp32(vec![1.0, 2.0, 3.0, 4.0]);
        let one = v1_predictions(2, &[("y", &d, &[2, 2])]);
        assert_eq!(text(one), r#"{"predictions":[[1.0,2.0],[3.0,4.0]]}"#);
        let l = TensorData::I64(vec![7, 8]);
        let two = v1_predictions(2, &[("label", &l, &[2]), ("p", &d, &[2, 2])]);
        assert_eq!(
            text(two),
            r#"{"predictions":[{"label":7,"p":[1.0,2.0]},{"label":8,"p":[3.0,4.0]}]}"#
        );
    }

    #[test]
    fn a_v2_response_is_valid_json() {
        let d = TensorData::I32(vec![1, 2]);
        let outputs = [
            V2Output {
                name: "a",
                datatype: "INT32",
                shape: &[2],
                data: &d,
                binary_size: None,
            },
            V2Output {
                name: "b\"",
                datatype: "INT32",
                shape: &[2],
                data: &d,
                binary_size: Some(8),
            },
        ];
        let body = v2_response("m", "1", Some(&serde_json::json!("x")), &outputs);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["outputs"][0]["data"], serde_json::json!([1, 2]));
        assert_eq!(v["outputs"][1]["parameters"]["binary_data_size"], 8);
        assert_eq!(v["outputs"][1]["name"], "b\"");
        assert_eq!(v["id"], "x");
    }
}
