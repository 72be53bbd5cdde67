//! The messages of `inference.GRPCInferenceService` we send and read: the
//! protocol's own, generated once in `lab-oip` for the predictor and us.

use crate::payload::{Tensor, TensorSpec};
use bytes::Bytes;

pub use lab_oip::model_infer_request::InferInputTensor;
pub use lab_oip::model_infer_response::InferOutputTensor;
pub use lab_oip::model_metadata_response::TensorMetadata;
pub use lab_oip::{
    ModelInferRequest, ModelInferResponse, ModelMetadataRequest, ModelMetadataResponse,
    MODEL_INFER, MODEL_METADATA,
};

/// The model's inputs as the payload builder needs them.
pub fn input_specs(metadata: &ModelMetadataResponse) -> Vec<TensorSpec> {
    metadata
        .inputs
        .iter()
        .map(|t| TensorSpec {
            name: t.name.clone(),
            datatype: t.datatype.clone(),
            shape: t.shape.clone(),
        })
        .collect()
}

/// The inference message for `tensors`, with raw contents.
pub fn infer_request(model: &str, tensors: &[Tensor]) -> ModelInferRequest {
    ModelInferRequest {
        model_name: model.to_string(),
        inputs: tensors
            .iter()
            .map(|t| InferInputTensor {
                name: t.name.clone(),
                datatype: t.datatype.clone(),
                shape: t.shape.clone(),
                ..Default::default()
            })
            .collect(),
        raw_input_contents: tensors.iter().map(|t| Bytes::from(t.raw())).collect(),
        ..Default::default()
    }
}
