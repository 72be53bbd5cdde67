//! The messages of `inference.GRPCInferenceService` we send and read, written
//! with prost's derive so no protoc is needed at build time. Field numbers are
//! those of KServe's `grpc_predict_v2.proto`; fields we never use are left out
//! (prost skips unknown fields when decoding).

use crate::payload::{Tensor, TensorSpec};
use bytes::Bytes;

pub const MODEL_INFER: &str = "/inference.GRPCInferenceService/ModelInfer";
pub const MODEL_METADATA: &str = "/inference.GRPCInferenceService/ModelMetadata";

#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelMetadataRequest {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorMetadata {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub datatype: String,
    #[prost(int64, repeated, tag = "3")]
    pub shape: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelMetadataResponse {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, repeated, tag = "2")]
    pub versions: Vec<String>,
    #[prost(string, tag = "3")]
    pub platform: String,
    #[prost(message, repeated, tag = "4")]
    pub inputs: Vec<TensorMetadata>,
    #[prost(message, repeated, tag = "5")]
    pub outputs: Vec<TensorMetadata>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InferInputTensor {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub datatype: String,
    #[prost(int64, repeated, tag = "3")]
    pub shape: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelInferRequest {
    #[prost(string, tag = "1")]
    pub model_name: String,
    #[prost(string, tag = "2")]
    pub model_version: String,
    #[prost(string, tag = "3")]
    pub id: String,
    #[prost(message, repeated, tag = "5")]
    pub inputs: Vec<InferInputTensor>,
    /// `Bytes`, so cloning the message per request does not copy the tensor.
    #[prost(bytes = "bytes", repeated, tag = "7")]
    pub raw_input_contents: Vec<Bytes>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InferOutputTensor {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub datatype: String,
    #[prost(int64, repeated, tag = "3")]
    pub shape: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelInferResponse {
    #[prost(string, tag = "1")]
    pub model_name: String,
    #[prost(string, tag = "2")]
    pub model_version: String,
    #[prost(string, tag = "3")]
    pub id: String,
    #[prost(message, repeated, tag = "5")]
    pub outputs: Vec<InferOutputTensor>,
    #[prost(bytes = "bytes", repeated, tag = "6")]
    pub raw_output_contents: Vec<Bytes>,
}

impl ModelMetadataResponse {
    pub fn input_specs(&self) -> Vec<TensorSpec> {
        self.inputs
            .iter()
            .map(|t| TensorSpec {
                name: t.name.clone(),
                datatype: t.datatype.clone(),
                shape: t.shape.clone(),
            })
            .collect()
    }
}

/// The inference message for `tensors`, with raw contents.
pub fn infer_request(model: &str, tensors: &[Tensor]) -> ModelInferRequest {
    ModelInferRequest {
        model_name: model.to_string(),
        model_version: String::new(),
        id: String::new(),
        inputs: tensors
            .iter()
            .map(|t| InferInputTensor {
                name: t.name.clone(),
                datatype: t.datatype.clone(),
                shape: t.shape.clone(),
            })
            .collect(),
        raw_input_contents: tensors.iter().map(|t| Bytes::from(t.raw())).collect(),
    }
}
