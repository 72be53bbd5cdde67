//! The local level's I/O: pods as processes (`supervisor`) and the Prometheus a
//! local run starts and queries (`prometheus`). The decisions about *which* pods
//! to run live elsewhere (the shared decisions crate and the controller); this
//! crate carries them out on one machine and reports what it measured.

pub mod backoff;
mod http;
pub mod process;
pub mod prometheus;
pub mod supervisor;

pub use backoff::{BackOffPolicy, CrashLoop};
pub use http::encode_query_value;
pub use process::free_port;
pub use prometheus::{
    locate as locate_prometheus, parse_response, PodTarget, PromClient, Prometheus,
    PrometheusConfig, PrometheusError, QueryError, Sample, StaticJob,
};
pub use supervisor::{
    Lifecycle, Phase, PodEvent, PodHandle, PodRecord, PodSpec, Start, Supervisor, SupervisorError,
    Termination,
};
