//! `inference.GRPCInferenceService` of the Open Inference Protocol (KServe V2):
//! messages, server and client generated from `proto/inference.proto`, which
//! uses the protocol's own package, messages and field numbers.
#![allow(clippy::all, clippy::pedantic)]

tonic::include_proto!("inference");

/// Full method paths, for clients that call them through a generic `tonic::client::Grpc`.
pub const MODEL_INFER: &str = "/inference.GRPCInferenceService/ModelInfer";
pub const MODEL_METADATA: &str = "/inference.GRPCInferenceService/ModelMetadata";
