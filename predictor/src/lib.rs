//! `lab-predictor`: serves ONNX models through ONNX Runtime over the Open
//! Inference Protocol (REST with the binary tensor extension, and gRPC) and
//! KServe V1, with Triton-style dynamic batching, Kubernetes readiness and drain,
//! Prometheus metrics, GPU emulation from calibration profiles, and calibration.
//!
//! Entry points: [`server::run`] (`lab serve`) and [`calibrate::run`] (`lab calibrate`).

pub mod app;
pub mod batcher;
pub mod calibrate;
pub mod conn;
pub mod decode;
pub mod emulate;
pub mod encode;
pub mod error;
pub mod grpc;
pub mod http;
pub mod infer;
pub mod metrics;
pub mod model;
pub mod ortlib;
pub mod server;
pub mod tensor;

pub use calibrate::CalibrateOptions;
pub use error::BadInput;
pub use server::ServeOptions;
