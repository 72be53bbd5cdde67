//! The endpoint table: services, their versions, and each version's pods.

use crate::metrics::Counters;
use crate::stats::{PodStat, Window};
use crate::{
    ActivatorMode, GatewayConfig, GatewayError, GatewayHandle, ServiceConfig,
    QUEUE_DEPTH_PER_CONCURRENCY,
};
use http_body_util::Full;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use rand::SeedableRng;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tokio::sync::{Notify, Semaphore};

/// A pod endpoint, as the controller names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId(pub u64);

impl std::fmt::Display for EndpointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

const NOT_READY: u8 = 0;
const READY: u8 = 1;
const DRAINING: u8 = 2;

/// An endpoint with its service and version index.
type Entry = (Arc<Service>, usize, Arc<Endpoint>);

pub(crate) type Upstream = Client<HttpConnector, Full<bytes::Bytes>>;

pub(crate) struct Shared {
    /// By model name; fixed for the gateway's life.
    pub services: HashMap<String, Arc<Service>>,
    endpoints: Mutex<HashMap<EndpointId, Entry>>,
    next_id: AtomicU64,
    pub rng: Mutex<rand_pcg::Pcg64Mcg>,
    pub http1: Upstream,
    pub http2: Upstream,
    pub counters: Counters,
    pub last_stats: Mutex<Vec<PodStat>>,
}

pub(crate) struct Service {
    pub cfg: ServiceConfig,
    pub versions: Vec<Version>,
}

pub(crate) struct Version {
    pub name: String,
    pub traffic_percent: f64,
    /// Every endpoint of the version, ready or not, in the order added.
    all: Mutex<Vec<Arc<Endpoint>>>,
    /// The ready ones: what routing reads, swapped whole on every change.
    pub ready: RwLock<Arc<Vec<Arc<Endpoint>>>>,
    /// Wakes the requests buffered at the activator.
    pub became_ready: Notify,
    pub activator_queued: AtomicUsize,
    /// Requests ever buffered at the activator: the controller's poke.
    pub buffered: tokio::sync::watch::Sender<u64>,
    proxy_mode: AtomicBool,
}

pub(crate) struct Endpoint {
    pub id: EndpointId,
    pub pod: String,
    pub service: String,
    pub version: String,
    /// `host:port` of its HTTP (REST) server.
    pub authority: String,
    /// `host:port` of its gRPC server (`lab serve --grpc-port`).
    pub grpc_authority: String,
    state: AtomicU8,
    /// Requests at this pod (queued at its queue-proxy or running): the
    /// least-request load signal.
    pub outstanding: AtomicUsize,
    /// `containerConcurrency` permits; `None` when unlimited.
    pub gate: Option<Arc<Semaphore>>,
    pub queue_limit: usize,
    /// Requests waiting for a permit.
    pub queued: AtomicUsize,
    pub window: Mutex<Window>,
    pub started: Instant,
}

fn client(cfg: &GatewayConfig, http2: bool) -> Upstream {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    conn.set_connect_timeout(Some(cfg.connect_timeout));
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_max_idle_per_host(1024);
    if http2 {
        b.http2_only(true);
    }
    b.build(conn)
}

impl Shared {
    pub fn new(cfg: &GatewayConfig) -> Result<Shared, GatewayError> {
        let mut services = HashMap::new();
        for s in &cfg.services {
            if s.versions.is_empty() {
                return Err(GatewayError::NoVersion(s.name.clone()));
            }
            let svc = Service {
                cfg: s.clone(),
                versions: s
                    .versions
                    .iter()
                    .map(|v| Version {
                        name: v.name.clone(),
                        traffic_percent: v.traffic_percent,
                        all: Mutex::new(Vec::new()),
                        ready: RwLock::new(Arc::new(Vec::new())),
                        became_ready: Notify::new(),
                        activator_queued: AtomicUsize::new(0),
                        buffered: tokio::sync::watch::Sender::new(0),
                        proxy_mode: AtomicBool::new(true),
                    })
                    .collect(),
            };
            if services.insert(s.model.clone(), Arc::new(svc)).is_some() {
                return Err(GatewayError::DuplicateModel(s.model.clone()));
            }
        }
        Ok(Shared {
            services,
            endpoints: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            rng: Mutex::new(rand_pcg::Pcg64Mcg::seed_from_u64(cfg.seed)),
            http1: client(cfg, false),
            http2: client(cfg, true),
            counters: Counters::new(&cfg.services),
            last_stats: Mutex::new(Vec::new()),
        })
    }

    fn service(&self, name: &str) -> Result<&Arc<Service>, GatewayError> {
        self.services
            .values()
            .find(|s| s.cfg.name == name)
            .ok_or_else(|| GatewayError::UnknownService(name.into()))
    }

    fn version(&self, service: &str, version: &str) -> Result<(Arc<Service>, usize), GatewayError> {
        let svc = self.service(service)?;
        let v = svc
            .versions
            .iter()
            .position(|v| v.name == version)
            .ok_or_else(|| GatewayError::UnknownVersion {
                service: service.into(),
                version: version.into(),
            })?;
        Ok((svc.clone(), v))
    }

    fn endpoint(
        &self,
        id: EndpointId,
    ) -> Result<(Arc<Service>, usize, Arc<Endpoint>), GatewayError> {
        self.endpoints
            .lock()
            .expect("endpoint table")
            .get(&id)
            .cloned()
            .ok_or(GatewayError::UnknownEndpoint(id))
    }

    pub fn all_endpoints(&self) -> Vec<Arc<Endpoint>> {
        let mut v: Vec<_> = self
            .endpoints
            .lock()
            .expect("endpoint table")
            .values()
            .map(|(_, _, e)| e.clone())
            .collect();
        v.sort_by_key(|e| e.id);
        v
    }
}

impl Version {
    pub fn in_proxy_mode(&self) -> bool {
        self.proxy_mode.load(Ordering::Relaxed)
    }

    /// Rebuilds the ready list from the endpoints' states; wakes the
    /// activator's waiters when there is one.
    fn refresh(&self) {
        let ready: Vec<_> = self
            .all
            .lock()
            .expect("version endpoints")
            .iter()
            .filter(|e| e.state.load(Ordering::Relaxed) == READY)
            .cloned()
            .collect();
        let any = !ready.is_empty();
        *self.ready.write().expect("ready list") = Arc::new(ready);
        if any {
            self.became_ready.notify_waiters();
        }
    }
}

impl GatewayHandle {
    /// Adds a pod endpoint (not ready yet) to a service's version, serving
    /// REST and gRPC on one port.
    pub fn add_endpoint(
        &self,
        service: &str,
        version: &str,
        pod: &str,
        addr: SocketAddr,
    ) -> Result<EndpointId, GatewayError> {
        self.add_endpoint_with_grpc(service, version, pod, addr, addr)
    }

    /// Adds a pod whose gRPC server has a port of its own (as `lab serve`'s
    /// does); both count as one pod for routing, concurrency and stats.
    pub fn add_endpoint_with_grpc(
        &self,
        service: &str,
        version: &str,
        pod: &str,
        http: SocketAddr,
        grpc: SocketAddr,
    ) -> Result<EndpointId, GatewayError> {
        let (svc, v) = self.0.version(service, version)?;
        let id = EndpointId(self.0.next_id.fetch_add(1, Ordering::Relaxed));
        let cc = svc.cfg.container_concurrency as usize;
        let ep = Arc::new(Endpoint {
            id,
            pod: pod.into(),
            service: svc.cfg.name.clone(),
            version: version.into(),
            authority: http.to_string(),
            grpc_authority: grpc.to_string(),
            state: AtomicU8::new(NOT_READY),
            outstanding: AtomicUsize::new(0),
            gate: (cc > 0).then(|| Arc::new(Semaphore::new(cc))),
            queue_limit: cc * QUEUE_DEPTH_PER_CONCURRENCY,
            queued: AtomicUsize::new(0),
            window: Mutex::new(Window::new(Instant::now())),
            started: Instant::now(),
        });
        svc.versions[v]
            .all
            .lock()
            .expect("version endpoints")
            .push(ep.clone());
        self.0
            .endpoints
            .lock()
            .expect("endpoint table")
            .insert(id, (svc, v, ep));
        Ok(id)
    }

    fn set_state(&self, id: EndpointId, state: u8) -> Result<(), GatewayError> {
        let (svc, v, ep) = self.0.endpoint(id)?;
        ep.state.store(state, Ordering::Relaxed);
        svc.versions[v].refresh();
        Ok(())
    }

    /// Ready pods receive requests; a pod marked not ready stops receiving
    /// new ones.
    pub fn set_ready(&self, id: EndpointId, ready: bool) -> Result<(), GatewayError> {
        self.set_state(id, if ready { READY } else { NOT_READY })
    }

    /// Takes a pod out of routing; its requests in flight finish.
    pub fn set_draining(&self, id: EndpointId) -> Result<(), GatewayError> {
        self.set_state(id, DRAINING)
    }

    /// Forgets a pod (after its process exited).
    pub fn remove_endpoint(&self, id: EndpointId) -> Result<(), GatewayError> {
        let (svc, v, _) = self
            .0
            .endpoints
            .lock()
            .expect("endpoint table")
            .remove(&id)
            .ok_or(GatewayError::UnknownEndpoint(id))?;
        svc.versions[v]
            .all
            .lock()
            .expect("version endpoints")
            .retain(|e| e.id != id);
        svc.versions[v].refresh();
        Ok(())
    }

    /// Requests a pod has (queued at its queue-proxy or running).
    pub fn outstanding(&self, id: EndpointId) -> Result<usize, GatewayError> {
        Ok(self.0.endpoint(id)?.2.outstanding.load(Ordering::Relaxed))
    }

    /// The SKS mode for a version, as the KPA decides it from its excess
    /// burst capacity (`lab_decide::routing::activator_mode`). A version
    /// starts in `Proxy`; with no ready pod the activator buffers whatever
    /// the mode.
    pub fn set_activator_mode(
        &self,
        service: &str,
        version: &str,
        mode: ActivatorMode,
    ) -> Result<(), GatewayError> {
        let (svc, v) = self.0.version(service, version)?;
        svc.versions[v]
            .proxy_mode
            .store(mode == ActivatorMode::Proxy, Ordering::Relaxed);
        Ok(())
    }

    /// Requests waiting at the activator for a version's first ready pod.
    pub fn activator_queue_depth(
        &self,
        service: &str,
        version: &str,
    ) -> Result<usize, GatewayError> {
        let (svc, v) = self.0.version(service, version)?;
        Ok(svc.versions[v].activator_queued.load(Ordering::Relaxed))
    }

    /// Counts the requests ever buffered at a version's activator and
    /// changes with each: Knative's activator pokes the autoscaler on the
    /// first request at zero, so the KPA decides at once rather than at its
    /// next tick; the controller awaits `changed()` on this.
    pub fn activator_demand(
        &self,
        service: &str,
        version: &str,
    ) -> Result<tokio::sync::watch::Receiver<u64>, GatewayError> {
        let (svc, v) = self.0.version(service, version)?;
        Ok(svc.versions[v].buffered.subscribe())
    }

    /// Closes every pod's stats window now and returns what it held, as the
    /// queue-proxy reports each period; also what [`Self::stats`] returns
    /// until the next report.
    pub fn report_stats(&self) -> Vec<PodStat> {
        let now = Instant::now();
        let stats: Vec<PodStat> = self
            .0
            .all_endpoints()
            .iter()
            .map(|e| {
                e.window
                    .lock()
                    .expect("stats window")
                    .close(now)
                    .stat(e, now)
            })
            .collect();
        *self.0.last_stats.lock().expect("last stats") = stats.clone();
        stats
    }

    /// The last reported stats of every pod (what a scrape of the
    /// queue-proxy's `:9090/metrics` returns).
    pub fn stats(&self) -> Vec<PodStat> {
        self.0.last_stats.lock().expect("last stats").clone()
    }

    /// The Prometheus text of `GET /metrics`.
    pub fn metrics_text(&self) -> String {
        crate::metrics::render(&self.0)
    }
}
