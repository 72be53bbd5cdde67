//! The local level's gateway: one loopback listener (HTTP/1.1 and HTTP/2 by
//! prior knowledge, so gRPC too) in front of the pods' `lab serve` processes,
//! doing what Knative's activator and queue-proxy do where the autoscaler
//! can see it.
//!
//! - Routing by model name: the REST path (`/v2/models/{name}/…`,
//!   `/v1/models/{name}:predict`) or, for gRPC, field 1 of the first message
//!   (`ModelInferRequest.model_name`, `ModelMetadataRequest.name`, …).
//! - A canary split by `trafficPercent` and least-request routing among a
//!   version's ready pods, both by `lab_decide::routing`, the simulator's rule.
//! - The activator ([`proxy`]): while a version has no ready pod, requests
//!   wait (up to `gateway.activator_queue_limit`, for the service's `timeout`)
//!   and are released the moment one is marked ready. It stays in the path
//!   while the version's [`ActivatorMode`] is `Proxy`, which the controller
//!   sets from the KPA's excess burst capacity; requests it proxies are
//!   counted as proxied in the pods' stats. Each buffered request ticks
//!   [`GatewayHandle::activator_demand`], the poke the controller's KPA
//!   decides on at zero.
//! - The queue-proxy per pod: `containerConcurrency` (0 = unlimited) with a
//!   queue of 10 × CC in front, and per-second stats ([`stats`]) as the KPA
//!   scrapes them.
//! - Prometheus text on `GET /metrics` ([`metrics`]).
//!
//! The endpoint table changes at run time through [`GatewayHandle`] (the
//! controller adds pods, marks them ready or draining, removes them).

pub mod grpc;
pub mod metrics;
pub mod proxy;
pub mod stats;
mod table;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use lab_decide::routing::ActivatorMode;
pub use stats::PodStat;
pub use table::EndpointId;

/// Knative's queue-proxy queue: `10 × containerConcurrency` requests wait
/// in front of a pod (`pkg/queue/sharedmain`).
pub const QUEUE_DEPTH_PER_CONCURRENCY: usize = 10;

/// Header Knative's activator sets on requests it proxies; the queue-proxy
/// counts them as proxied.
pub const PROXY_HEADER: &str = "k-proxy-request";

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("no service `{0}` in the gateway")]
    UnknownService(String),
    #[error("service `{service}` has no version `{version}`")]
    UnknownVersion { service: String, version: String },
    #[error("no endpoint {0} in the gateway")]
    UnknownEndpoint(EndpointId),
    #[error("service `{0}` has no version")]
    NoVersion(String),
    #[error("two services answer to model `{0}`")]
    DuplicateModel(String),
}

/// One version (Knative revision) of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionConfig {
    pub name: String,
    pub traffic_percent: f64,
}

/// One service as the gateway sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub name: String,
    /// The model name clients send.
    pub model: String,
    /// At least one; a service without a canary has one at 100 %.
    pub versions: Vec<VersionConfig>,
    /// Requests one pod admits at once; 0 = unlimited.
    pub container_concurrency: u32,
    /// Requests the activator holds per version while no pod is ready.
    pub activator_queue_limit: u32,
    /// The whole request's time limit (Knative's revision timeout): a request
    /// still at the activator then gets 503, one at a pod 504.
    pub timeout: Duration,
}

/// The name of a service's only version when it has no canary split.
pub const DEFAULT_VERSION: &str = "default";

impl ServiceConfig {
    /// The services of a scenario, with its gateway keys.
    pub fn from_scenario(sc: &lab_scenario::Scenario) -> Vec<ServiceConfig> {
        sc.services
            .iter()
            .map(|s| ServiceConfig {
                name: s.name.clone(),
                model: s.model.clone().unwrap_or_else(|| s.name.clone()),
                versions: if s.versions.is_empty() {
                    vec![VersionConfig {
                        name: DEFAULT_VERSION.into(),
                        traffic_percent: 100.0,
                    }]
                } else {
                    s.versions
                        .iter()
                        .map(|v| VersionConfig {
                            name: v.name.clone(),
                            traffic_percent: v.traffic_percent,
                        })
                        .collect()
                },
                container_concurrency: s.container_concurrency,
                activator_queue_limit: sc.gateway.activator_queue_limit,
                timeout: Duration::from_nanos(s.timeout.nanos()),
            })
            .collect()
    }
}

#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    pub services: Vec<ServiceConfig>,
    /// Seeds the version and pod picks.
    pub seed: u64,
    /// How often the pods' stats windows close (Knative: 1 s). `None`:
    /// only when [`GatewayHandle::report_stats`] is called.
    pub stats_period: Option<Duration>,
    pub connect_timeout: Duration,
}

impl GatewayConfig {
    pub fn new(services: Vec<ServiceConfig>) -> GatewayConfig {
        GatewayConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            services,
            seed: 0,
            stats_period: Some(Duration::from_secs(1)),
            connect_timeout: Duration::from_secs(1),
        }
    }
}

/// What the controller calls: the endpoint table, activator modes, stats.
#[derive(Clone)]
pub struct GatewayHandle(pub(crate) Arc<table::Shared>);

/// A running gateway; dropping it stops accepting connections.
pub struct Gateway {
    addr: SocketAddr,
    handle: GatewayHandle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Binds the listener and serves on the current tokio runtime.
    pub async fn start(cfg: GatewayConfig) -> Result<Gateway, GatewayError> {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .map_err(|source| GatewayError::Listen {
                addr: cfg.listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| GatewayError::Listen {
                addr: cfg.listen,
                source,
            })?;
        let shared = Arc::new(table::Shared::new(&cfg)?);
        let handle = GatewayHandle(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(proxy::serve(listener, shared, cfg.stats_period, stopped));
        Ok(Gateway {
            addr,
            handle,
            stop: Some(stop),
            task: Some(task),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn handle(&self) -> GatewayHandle {
        self.handle.clone()
    }

    /// Stops accepting; requests in flight on open connections finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
