//! Semantic checks, all collected: a user fixes every problem in one pass.

use crate::spec::{NodePoolSpec, Scenario, ServiceSpec};
use lab_autoscale::Bounds;
use lab_gpu::{check_mig_layout, gpu_type, gpu_type_names, LatencyProfile, Sharing};
use std::collections::BTreeSet;
use std::fmt;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A key path such as `services[0].minReplicas`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn new() -> Self {
        KeyPath(Vec::new())
    }
    pub fn key(mut self, k: &str) -> Self {
        self.0.push(Seg::Key(k.to_string()));
        self
    }
    pub fn index(mut self, i: usize) -> Self {
        self.0.push(Seg::Index(i));
        self
    }
    /// Appends a relative path such as `hpa.behavior.scaleUp` from another crate.
    pub fn dotted(mut self, rel: &str) -> Self {
        for part in rel.split('.').filter(|p| !p.is_empty()) {
            match part.split_once('[') {
                Some((k, idx)) => {
                    if !k.is_empty() {
                        self = self.key(k);
                    }
                    for n in idx.split('[') {
                        if let Ok(i) = n.trim_end_matches(']').parse() {
                            self = self.index(i);
                        }
                    }
                }
                None => self = self.key(part),
            }
        }
        self
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

pub const GPU_RESOURCE: &str = "nvidia.com/gpu";
pub const MIG_RESOURCE_PREFIX: &str = "nvidia.com/mig-";
const KNOWN_RESOURCES: &[&str] = &["cpu", "memory", "ephemeral-storage", GPU_RESOURCE];

pub use lab_decide::binding::GpuRequest;
use lab_decide::binding::{node_fit, NodeShape, PodRequest};

impl ServiceSpec {
    pub fn gpu_request(&self) -> GpuRequest {
        for (name, q) in &self.resources {
            if let Some(profile) = name.strip_prefix(MIG_RESOURCE_PREFIX) {
                if q.0 > 0.0 {
                    return GpuRequest::Mig(profile.to_string());
                }
            }
        }
        match self.resources.get(GPU_RESOURCE) {
            Some(q) if q.0 > 0.0 => GpuRequest::Devices(q.0.round() as u32),
            _ => GpuRequest::None,
        }
    }

    /// What one pod asks of its node, in the units binding counts.
    pub fn pod_request(&self) -> PodRequest {
        PodRequest {
            cpu_milli: (self.cpu_request() * 1000.0) as u64,
            memory_bytes: self.memory_request() as u64,
            gpu: self.gpu_request(),
        }
    }

    pub fn cpu_request(&self) -> f64 {
        self.resources.get("cpu").map_or(0.0, |q| q.0)
    }

    pub fn memory_request(&self) -> f64 {
        self.resources.get("memory").map_or(0.0, |q| q.0)
    }

    pub fn model_name(&self) -> &str {
        self.model.as_deref().unwrap_or(&self.name)
    }
}

impl NodePoolSpec {
    /// One node of the pool as binding sees it.
    pub fn node_shape(&self) -> NodeShape<'_> {
        NodeShape {
            cpu: self.cpu.0,
            memory_bytes: self.memory.0,
            gpus_per_node: self.gpus_per_node,
            sharing: &self.sharing,
        }
    }

    /// Can a pod with this GPU request land on this pool at all?
    pub fn offers(&self, req: &GpuRequest) -> bool {
        match (req, &self.sharing) {
            (GpuRequest::None, _) => true,
            // MIG's `single` strategy advertises identical instances as nvidia.com/gpu.
            (GpuRequest::Devices(_), Sharing::Mig { layout }) => {
                self.gpu.is_some() && layout.windows(2).all(|w| w[0] == w[1]) && !layout.is_empty()
            }
            (GpuRequest::Devices(_), _) => self.gpu.is_some() && self.gpus_per_node > 0,
            (GpuRequest::Mig(p), Sharing::Mig { layout }) => layout.iter().any(|l| l == p),
            (GpuRequest::Mig(_), _) => false,
        }
    }
}

impl Scenario {
    /// The pool a service's pods run on.
    pub fn pool_for(&self, svc: &ServiceSpec) -> Option<&NodePoolSpec> {
        match &svc.node_pool {
            Some(name) => self.node_pools.iter().find(|p| &p.name == name),
            None => {
                let req = svc.gpu_request();
                self.node_pools.iter().find(|p| p.offers(&req))
            }
        }
    }

    /// Simulated time: `run.duration`, or the longest traffic stream.
    pub fn duration(&self) -> lab_units::Dur {
        self.run.duration.unwrap_or_else(|| {
            self.traffic
                .iter()
                .map(|t| t.duration())
                .max()
                .unwrap_or_default()
        })
    }

    /// The service a traffic stream targets.
    pub fn stream_service(&self, stream: usize) -> Option<usize> {
        let t = self.traffic.get(stream)?;
        match &t.service {
            Some(name) => self.services.iter().position(|s| &s.name == name),
            None if self.services.len() == 1 => Some(0),
            None => None,
        }
    }
}

/// The latency profile that applies to a service (or one of its versions) on a
/// pool: the entry for `<gpu>/<mig profile>` if the pod gets a MIG slice and one
/// was measured there, else the entry for the pool's GPU type (or `cpu`).
pub fn profile_for<'a>(
    specs: &'a [crate::spec::LatencySpec],
    pool: &NodePoolSpec,
    req: &GpuRequest,
) -> Option<&'a LatencyProfile> {
    let gpu = pool.gpu.as_deref().unwrap_or("cpu");
    let resolved = || specs.iter().filter_map(|s| s.resolved.as_ref());
    if let GpuRequest::Mig(p) = req {
        let key = format!("{gpu}/{p}");
        if let Some(found) = resolved().find(|r| r.gpu.eq_ignore_ascii_case(&key)) {
            return Some(found);
        }
    }
    let want = if matches!(req, GpuRequest::None) {
        "cpu"
    } else {
        gpu
    };
    resolved()
        .find(|r| r.gpu.eq_ignore_ascii_case(want))
        .or_else(|| resolved().find(|r| r.gpu.eq_ignore_ascii_case(gpu)))
}

/// Every semantic problem, with the key path it concerns.
/// Most nodes or replicas one scenario may ask for.
const LIMIT: u32 = 10_000;
/// Highest request rate a phase may ask for (req/s).
const MAX_RATE: f64 = 1e7;

pub fn validate(s: &Scenario) -> Vec<(KeyPath, String)> {
    let out: std::cell::RefCell<Vec<(KeyPath, String)>> = Default::default();
    let push = |p: KeyPath, m: String| out.borrow_mut().push((p, m));
    let out_has = |m: &str| {
        out.borrow()
            .iter()
            .any(|(_, x)| x.contains(m) || m.contains(x.as_str()))
    };
    let root = KeyPath::new;

    if s.name.trim().is_empty() {
        push(root().key("name"), "must not be empty".into());
    }
    // run
    let duration = s.duration();
    if duration.0 == 0 {
        push(
            root().key("run").key("duration"),
            "the run has no length: set `run.duration` or give traffic phases a duration".into(),
        );
    }
    if s.run.interval.0 == 0 {
        push(
            root().key("run").key("interval"),
            "must be longer than zero".into(),
        );
    }
    if s.run.warmup >= duration && duration.0 > 0 {
        push(
            root().key("run").key("warmup"),
            format!(
                "{} leaves nothing to measure in a {} run",
                s.run.warmup, duration
            ),
        );
    }
    if s.metrics.scrape_interval.0 == 0 {
        push(
            root().key("metrics").key("scrape_interval"),
            "must be longer than zero".into(),
        );
    }

    // node pools
    if s.node_pools.is_empty() {
        push(
            root().key("node_pools"),
            "the scenario needs at least one [[node_pools]] entry".into(),
        );
    }
    let mut pool_names = BTreeSet::new();
    for (i, p) in s.node_pools.iter().enumerate() {
        let at = || root().key("node_pools").index(i);
        if !pool_names.insert(p.name.as_str()) {
            push(at().key("name"), format!("`{}` names two pools", p.name));
        }
        if let Some(g) = &p.gpu {
            match gpu_type(g) {
                None => push(
                    at().key("gpu"),
                    format!(
                        "unknown GPU type `{g}` (known: {})",
                        gpu_type_names().join(", ")
                    ),
                ),
                Some(t) => {
                    if let Sharing::Mig { layout } = &p.sharing {
                        if let Err(e) = check_mig_layout(t, layout) {
                            push(at().key("sharing").key("layout"), e);
                        }
                    }
                }
            }
            if p.gpus_per_node == 0 {
                push(
                    at().key("gpus_per_node"),
                    "a GPU pool needs at least 1 GPU per node".into(),
                );
            }
        } else if !matches!(p.sharing, Sharing::None) {
            push(
                at().key("sharing"),
                "GPU sharing needs a `gpu` type on the pool".into(),
            );
        }
        match &p.sharing {
            Sharing::TimeSlicing { replicas } | Sharing::Mps { replicas } if *replicas == 0 => {
                push(
                    at().key("sharing").key("replicas"),
                    "must be at least 1".into(),
                )
            }
            _ => {}
        }
        if p.max_nodes > LIMIT {
            push(
                at().key("max_nodes"),
                format!(
                    "{} is more nodes than lab simulates (at most {LIMIT})",
                    p.max_nodes
                ),
            );
        }
        if p.gpus_per_node > 64 {
            push(
                at().key("gpus_per_node"),
                format!(
                    "{} GPUs per node is more than any node has (at most 64)",
                    p.gpus_per_node
                ),
            );
        }
        if p.min_nodes > p.max_nodes {
            push(
                at().key("max_nodes"),
                format!(
                    "max_nodes {} is below min_nodes {}",
                    p.max_nodes, p.min_nodes
                ),
            );
        }
        if let Some(n) = p.initial_nodes {
            if n < p.min_nodes || n > p.max_nodes {
                push(
                    at().key("initial_nodes"),
                    format!(
                        "{n} is outside [min_nodes, max_nodes] = [{}, {}]",
                        p.min_nodes, p.max_nodes
                    ),
                );
            }
        }
        if !(p.price_per_hour.is_finite() && p.price_per_hour >= 0.0) {
            push(
                at().key("price_per_hour"),
                "must be a non-negative number of USD".into(),
            );
        }
        if !(p.spot_interruptions_per_hour.is_finite() && p.spot_interruptions_per_hour >= 0.0) {
            push(
                at().key("spot_interruptions_per_hour"),
                "must be non-negative".into(),
            );
        }
    }

    // services
    if s.services.is_empty() {
        push(
            root().key("services"),
            "the scenario needs at least one [[services]] entry".into(),
        );
    }
    let mut names = BTreeSet::new();
    for (i, svc) in s.services.iter().enumerate() {
        let at = || root().key("services").index(i);
        if !names.insert(svc.name.as_str()) {
            push(
                at().key("name"),
                format!("`{}` names two services", svc.name),
            );
        }
        if svc.min_replicas > svc.max_replicas {
            push(
                at().key("maxReplicas"),
                format!(
                    "maxReplicas {} is below minReplicas {}",
                    svc.max_replicas, svc.min_replicas
                ),
            );
        }
        if svc.max_replicas > LIMIT {
            push(
                at().key("maxReplicas"),
                format!(
                    "{} is more replicas than lab simulates (at most {LIMIT})",
                    svc.max_replicas
                ),
            );
        }
        if svc.max_replicas == 0 {
            push(at().key("maxReplicas"), "must be at least 1".into());
        }
        // The loader checks that the file exists; its kind is checked here.
        if let Some(file) = &svc.model_file {
            if !file.to_ascii_lowercase().ends_with(".onnx") {
                push(
                    at().key("modelFile"),
                    format!(
                        "`{file}` is not an .onnx file: the local level serves it with ONNX Runtime, so give the path of an ONNX model (`model.onnx`)"
                    ),
                );
            }
        }
        // The autoscaler's own checks assume sane bounds; bad bounds are reported above.
        let bounds_ok = svc.min_replicas <= svc.max_replicas;
        for (path, msg) in svc
            .autoscaler
            .problems(Bounds {
                min: svc.min_replicas,
                max: svc.max_replicas,
            })
            .into_iter()
            .filter(|_| bounds_ok)
        {
            push(at().key("autoscaler").dotted(&path), msg);
        }
        // Whatever the autoscaler itself refuses is an input problem too.
        if bounds_ok && svc.max_replicas > 0 {
            if let Err(errors) = lab_autoscale::Autoscaler::new(
                &svc.autoscaler,
                Bounds {
                    min: svc.min_replicas,
                    max: svc.max_replicas,
                },
                svc.container_concurrency,
                std::time::Duration::ZERO,
            ) {
                for e in errors {
                    if !out_has(&e) {
                        push(at().key("autoscaler"), e);
                    }
                }
            }
        }
        for name in svc.resources.keys() {
            if !KNOWN_RESOURCES.contains(&name.as_str()) && !name.starts_with(MIG_RESOURCE_PREFIX) {
                push(
                    at().key("resources").key(name),
                    format!(
                        "unknown resource `{name}` (use cpu, memory, {GPU_RESOURCE} or {MIG_RESOURCE_PREFIX}<profile>)"
                    ),
                );
            }
        }
        let req = svc.gpu_request();
        let pool = s.pool_for(svc);
        match (&svc.node_pool, pool) {
            (Some(name), None) => push(
                at().key("nodePool"),
                format!(
                    "no node pool named `{name}` (pools: {})",
                    s.node_pools
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            (None, None) if !s.node_pools.is_empty() => push(
                at().key("resources"),
                format!("no node pool offers {}", describe(&req)),
            ),
            (Some(_), Some(p)) if !p.offers(&req) => push(
                at().key("nodePool"),
                format!("pool `{}` does not offer {}", p.name, describe(&req)),
            ),
            _ => {}
        }
        if let Some(pool) = pool {
            check_fit(svc, pool, &req, &mut |k, m| push(at().dotted(k), m));
            let max_rows = s
                .traffic
                .iter()
                .enumerate()
                .filter(|(t, _)| s.stream_service(*t) == Some(i))
                .map(|(_, t)| t.rows_per_request)
                .max()
                .unwrap_or(1);
            let check_profile = |specs: &[crate::spec::LatencySpec], base: KeyPath| {
                match profile_for(specs, pool, &req) {
                    None if specs.iter().all(|l| l.resolved.is_some()) => push(
                        base,
                        format!(
                            "no latency profile for {} (pool `{}`): add a [[services.latency]] entry with gpu = \"{}\"",
                            pool.gpu.as_deref().unwrap_or("cpu"),
                            pool.name,
                            pool.gpu.as_deref().unwrap_or("cpu")
                        ),
                    ),
                    None => {}
                    Some(p) => {
                        let batch = svc.batching.as_ref().map_or(max_rows, |b| b.max_batch_size.max(max_rows));
                        if batch > p.max_batch_size() {
                            push(
                                base,
                                format!(
                                    "batches of {batch} rows exceed the profile for {}, which covers up to {}: measure larger batches or lower max_batch_size",
                                    p.gpu,
                                    p.max_batch_size()
                                ),
                            );
                        }
                    }
                }
            };
            check_profile(&svc.latency, at().key("latency"));
            for (v, ver) in svc.versions.iter().enumerate() {
                if let Some(l) = &ver.latency {
                    check_profile(l, at().key("versions").index(v).key("latency"));
                }
            }
        }
        if let Some(b) = &svc.batching {
            if b.max_batch_size == 0 {
                push(
                    at().key("batching").key("max_batch_size"),
                    "must be at least 1".into(),
                );
            }
            for (k, p) in b.preferred_batch_size.iter().enumerate() {
                if *p == 0 || *p > b.max_batch_size {
                    push(
                        at().key("batching").key("preferred_batch_size").index(k),
                        format!("{p} is outside 1..=max_batch_size ({})", b.max_batch_size),
                    );
                }
            }
            if b.instances == 0 {
                push(
                    at().key("batching").key("instances"),
                    "must be at least 1".into(),
                );
            }
        }
        if !svc.versions.is_empty() {
            let sum: f64 = svc.versions.iter().map(|v| v.traffic_percent).sum();
            if (sum - 100.0).abs() > 1e-9 {
                push(
                    at().key("versions"),
                    format!(
                        "trafficPercent of the versions sums to {sum}, not 100 ({})",
                        svc.versions
                            .iter()
                            .map(|v| format!("{} {}", v.name, v.traffic_percent))
                            .collect::<Vec<_>>()
                            .join(" + ")
                    ),
                );
            }
            let mut vn = BTreeSet::new();
            for (v, ver) in svc.versions.iter().enumerate() {
                if !vn.insert(ver.name.as_str()) {
                    push(
                        at().key("versions").index(v).key("name"),
                        format!("`{}` names two versions", ver.name),
                    );
                }
                if ver.traffic_percent < 0.0 {
                    push(
                        at().key("versions").index(v).key("trafficPercent"),
                        "must not be negative".into(),
                    );
                }
            }
        }
    }

    // traffic
    if s.traffic.is_empty() {
        push(
            root().key("traffic"),
            "the scenario needs at least one [[traffic]] stream".into(),
        );
    }
    for (i, t) in s.traffic.iter().enumerate() {
        let at = || root().key("traffic").index(i);
        match &t.service {
            Some(name) if !s.services.iter().any(|x| &x.name == name) => push(
                at().key("service"),
                format!("no service named `{name}` (services: {})", service_names(s)),
            ),
            None if s.services.len() > 1 => push(
                at().key("service"),
                format!(
                    "with several services each stream names its target (services: {})",
                    service_names(s)
                ),
            ),
            _ => {}
        }
        if t.rows_per_request == 0 {
            push(at().key("rows_per_request"), "must be at least 1".into());
        }
        if let lab_traffic::Arrivals::Gamma { cv } = t.arrivals {
            if !(cv.is_finite() && cv > 0.0) {
                push(
                    at().key("arrivals").key("cv"),
                    format!("must be positive, got {cv}"),
                );
            }
        }
        if t.phases.is_empty() {
            push(at().key("phases"), "needs at least one phase".into());
        }
        for (j, ph) in t.phases.iter().enumerate() {
            for (field, msg) in ph.problems() {
                push(at().key("phases").index(j).key(field), msg);
            }
            let peak = match ph {
                lab_traffic::Phase::Constant { rate, .. } => *rate,
                lab_traffic::Phase::Ramp { from, to, .. } => from.max(*to),
                lab_traffic::Phase::Spike {
                    base, multiplier, ..
                } => base * multiplier.max(1.0),
                lab_traffic::Phase::Diurnal { peak, .. } => *peak,
                lab_traffic::Phase::Series { scale, speedup, .. } => {
                    let top = ph.series_samples().iter().map(|p| p[1]).fold(0.0, f64::max);
                    top * scale * speedup
                }
                _ => 0.0,
            };
            if peak > MAX_RATE {
                push(
                    at().key("phases").index(j),
                    format!("a peak of {peak} req/s is more than lab simulates (at most {MAX_RATE}); split the load over services or shards"),
                );
            }
        }
    }

    // slo
    for (i, slo) in s.slo.iter().enumerate() {
        let at = || root().key("slo").index(i);
        if let Err(e) = slo.bound() {
            push(at(), e);
        }
        if let Some(name) = &slo.service {
            if !s.services.iter().any(|x| &x.name == name) {
                push(
                    at().key("service"),
                    format!("no service named `{name}` (services: {})", service_names(s)),
                );
            }
            if slo.metric == lab_results::SloMetric::ColdStartRequests {
                push(
                    at().key("service"),
                    "cold_start_requests is judged for the whole run; drop `service`".into(),
                );
            }
        }
    }
    // fidelity
    if let Some(f) = &s.fidelity {
        let at = || root().key("fidelity");
        for (key, v) in f.bounds() {
            if !(v.is_finite() && v >= 0.0) {
                push(
                    at().key(key),
                    format!("a bound must be a finite number of at least 0, got {v}"),
                );
            }
        }
        if !(f.slack.is_finite() && f.slack >= 1.0) {
            push(
                at().key("slack"),
                format!(
                    "slack multiplies every bound and must be at least 1, got {}",
                    f.slack
                ),
            );
        }
    }
    out.into_inner()
}

fn service_names(s: &Scenario) -> String {
    s.services
        .iter()
        .map(|x| x.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe(req: &GpuRequest) -> String {
    match req {
        GpuRequest::None => "CPU-only pods".into(),
        GpuRequest::Devices(n) => format!("{GPU_RESOURCE}: {n}"),
        GpuRequest::Mig(p) => format!("{MIG_RESOURCE_PREFIX}{p} (a pool with sharing = {{ strategy = \"mig\", layout = [..., \"{p}\"] }})"),
    }
}

/// Does one pod fit on one node of the pool, and the model in its GPU memory?
fn check_fit(
    svc: &ServiceSpec,
    pool: &NodePoolSpec,
    req: &GpuRequest,
    push: &mut dyn FnMut(&str, String),
) {
    if svc.cpu_request() > pool.cpu.0 {
        push(
            "resources.cpu",
            format!(
                "{} CPUs exceed a `{}` node's {}",
                svc.cpu_request(),
                pool.name,
                pool.cpu.0
            ),
        );
    }
    if svc.memory_request() > pool.memory.0 {
        push(
            "resources.memory",
            format!(
                "{:.1} GiB exceed a `{}` node's {:.1} GiB",
                svc.memory_request() / GIB,
                pool.name,
                pool.memory.0 / GIB
            ),
        );
    }
    let Some(gpu) = pool.gpu.as_deref().and_then(gpu_type) else {
        return;
    };
    match req {
        GpuRequest::Devices(_) if matches!(pool.sharing, Sharing::Mig { .. }) => {
            if let Sharing::Mig { layout } = &pool.sharing {
                if let Some(m) = layout.first().and_then(|p| gpu.mig_profile(p)) {
                    if svc.model_memory.0 > m.memory_gib * GIB {
                        push(
                            "modelMemory",
                            format!(
                                "{:.1} GiB do not fit in a {} slice ({} GiB)",
                                svc.model_memory.0 / GIB,
                                m.name,
                                m.memory_gib
                            ),
                        );
                    }
                }
            }
        }
        GpuRequest::Devices(n) => {
            let slots = pool.gpus_per_node * pool.sharing.slots_per_gpu();
            if *n > slots {
                push(
                    "resources",
                    format!(
                        "{GPU_RESOURCE}: {n} exceeds the {slots} a `{}` node advertises",
                        pool.name
                    ),
                );
            }
            if matches!(pool.sharing, Sharing::None)
                && svc.model_memory.0 > gpu.memory_gib * GIB * f64::from(*n)
            {
                push(
                    "modelMemory",
                    format!(
                        "{:.1} GiB do not fit in {n} x {} ({} GiB)",
                        svc.model_memory.0 / GIB,
                        gpu.name,
                        gpu.memory_gib
                    ),
                );
            }
            if let Sharing::Mps { replicas } = pool.sharing {
                let share = gpu.memory_gib / f64::from(replicas.max(1));
                if svc.model_memory.0 > share * GIB {
                    push(
                        "modelMemory",
                        format!("{:.1} GiB exceed the {share:.1} GiB MPS gives each of {replicas} replicas", svc.model_memory.0 / GIB),
                    );
                }
            }
        }
        GpuRequest::Mig(p) => match gpu.mig_profile(p) {
            None => push(
                "resources",
                format!(
                    "{p} is not a MIG profile of {} (known: {})",
                    gpu.name,
                    gpu.mig_profiles
                        .iter()
                        .map(|m| m.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Some(m) if svc.model_memory.0 > m.memory_gib * GIB => push(
                "modelMemory",
                format!(
                    "{:.1} GiB do not fit in a {p} slice ({} GiB)",
                    svc.model_memory.0 / GIB,
                    m.memory_gib
                ),
            ),
            _ => {}
        },
        GpuRequest::None => {}
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Whether the node pools, grown to `max_nodes`, hold every service's
/// `minReplicas` (each version's, as each version is its own deployment), and
/// whether co-tenants' models fit the GPU memory time-slicing shares.
///
/// Pods are placed as the simulator binds its initial ones: service by service,
/// first fit over the pool's nodes in order; a node has its `cpu`, `memory` and
/// one slot per GPU for each time-slicing or MPS replica (one for exclusive
/// GPUs, one per instance of a MIG layout); `nvidia.com/gpu: k` takes one free
/// slot on each of k GPUs, least used first, and `nvidia.com/mig-<profile>` one
/// instance of that profile. Pods that never fit one empty node are reported by
/// [`validate`] already.
pub fn placement_problems(s: &Scenario) -> Vec<(KeyPath, String)> {
    struct Node {
        cpu: f64,
        memory: f64,
        /// Per GPU: each slot's MIG profile ("" otherwise) and its tenant.
        gpus: Vec<Vec<(String, Option<usize>)>>,
    }
    struct Deployment<'a> {
        service: usize,
        label: String,
        model_memory: f64,
        want: u32,
        placed: u32,
        svc: &'a ServiceSpec,
    }
    let mut out = Vec::new();
    for pool in &s.node_pools {
        let gpu = pool.gpu.as_deref().and_then(gpu_type);
        let per_gpu: Vec<String> = match &pool.sharing {
            Sharing::Mig { layout } => layout.clone(),
            other => vec![String::new(); other.slots_per_gpu() as usize],
        };
        let empty_node = || Node {
            cpu: pool.cpu.0,
            memory: pool.memory.0,
            gpus: match gpu {
                Some(_) => (0..pool.gpus_per_node)
                    .map(|_| per_gpu.iter().map(|p| (p.clone(), None)).collect())
                    .collect(),
                None => Vec::new(),
            },
        };
        let mut nodes: Vec<Node> = (0..pool.max_nodes.min(LIMIT))
            .map(|_| empty_node())
            .collect();
        let mut deployments: Vec<Deployment> = Vec::new();
        for (si, svc) in s.services.iter().enumerate() {
            if s.pool_for(svc).map(|p| p.name.as_str()) != Some(pool.name.as_str()) {
                continue;
            }
            let req = svc.gpu_request();
            if !fits_empty_node(svc, pool, &req) {
                continue;
            }
            let versions: Vec<(String, f64)> = if svc.versions.is_empty() {
                vec![(format!("`{}`", svc.name), svc.model_memory.0)]
            } else {
                svc.versions
                    .iter()
                    .map(|v| {
                        (
                            format!("`{}` version `{}`", svc.name, v.name),
                            v.model_memory.map_or(svc.model_memory.0, |m| m.0),
                        )
                    })
                    .collect()
            };
            for (label, model_memory) in versions {
                let d = deployments.len();
                let mut placed = 0;
                for _ in 0..svc.min_replicas {
                    let Some((n, slots)) = nodes.iter().enumerate().find_map(|(n, node)| {
                        place(node.cpu, node.memory, &node.gpus, svc, &req).map(|s| (n, s))
                    }) else {
                        break;
                    };
                    let node = &mut nodes[n];
                    node.cpu -= svc.cpu_request();
                    node.memory -= svc.memory_request();
                    for (g, slot) in slots {
                        node.gpus[g][slot].1 = Some(d);
                    }
                    placed += 1;
                }
                deployments.push(Deployment {
                    service: si,
                    label,
                    model_memory,
                    want: svc.min_replicas,
                    placed,
                    svc,
                });
            }
        }
        let holders = |except: usize| {
            let mut held: Vec<String> = Vec::new();
            for (d, dep) in deployments.iter().enumerate() {
                if d != except && dep.placed > 0 {
                    held.push(format!("{} ({})", dep.label, count(dep.placed, "pod")));
                }
            }
            held
        };
        for (d, dep) in deployments.iter().enumerate() {
            if dep.placed == dep.want {
                continue;
            }
            let why = limit(dep.svc, pool);
            let held = holders(d);
            let held = if held.is_empty() {
                String::new()
            } else {
                format!("; already held by {}", held.join(", "))
            };
            out.push((
                KeyPath::new()
                    .key("services")
                    .index(dep.service)
                    .key("minReplicas"),
                format!(
                    "only {} of the {} minReplicas of {} fit on pool `{}` at max_nodes = {}: {why}{held}",
                    dep.placed, dep.want, dep.label, pool.name, pool.max_nodes
                ),
            ));
        }
        // Time-slicing shares the GPU's memory: co-tenants' models must fit together.
        let (Some(gpu), Sharing::TimeSlicing { .. }) = (gpu, &pool.sharing) else {
            continue;
        };
        let mut reported = BTreeSet::new();
        for node in &nodes {
            for slots in &node.gpus {
                let tenants: Vec<usize> = slots.iter().filter_map(|(_, t)| *t).collect();
                let used: f64 = tenants.iter().map(|t| deployments[*t].model_memory).sum();
                if tenants.len() < 2
                    || !lab_decide::binding::gpu_memory_overflows(used, gpu.memory_gib * GIB)
                {
                    continue;
                }
                if !reported.insert(tenants.clone()) {
                    continue;
                }
                let last = &deployments[*tenants.last().expect("two tenants")];
                let mut kinds = tenants.clone();
                kinds.dedup();
                let names: Vec<String> = kinds
                    .iter()
                    .map(|t| {
                        let dep = &deployments[*t];
                        match tenants.iter().filter(|x| *x == t).count() {
                            1 => format!("{} ({:.1} GiB)", dep.label, dep.model_memory / GIB),
                            n => format!(
                                "{n} pods of {} ({:.1} GiB each)",
                                dep.label,
                                dep.model_memory / GIB
                            ),
                        }
                    })
                    .collect();
                out.push((
                    KeyPath::new()
                        .key("services")
                        .index(last.service)
                        .key("modelMemory"),
                    format!(
                        "the models time-sliced on one {} of pool `{}` need {:.1} GiB of its {:.1} GiB: {}; their pods would be OOM-killed",
                        gpu.name,
                        pool.name,
                        used / GIB,
                        gpu.memory_gib,
                        names.join(" and ")
                    ),
                ));
            }
        }
    }
    out
}

/// Does one pod fit on an empty node of the pool? When it does not, [`validate`]
/// has said why.
fn fits_empty_node(svc: &ServiceSpec, pool: &NodePoolSpec, req: &GpuRequest) -> bool {
    pool.offers(req) && node_fit(pool.node_shape(), &svc.pod_request()).per_node > 0
}

/// Where a pod goes on a node with this much left: (GPU, slot) for each device.
fn place(
    cpu: f64,
    memory: f64,
    gpus: &[Vec<(String, Option<usize>)>],
    svc: &ServiceSpec,
    req: &GpuRequest,
) -> Option<Vec<(usize, usize)>> {
    if !lab_decide::binding::has_room(cpu, memory, svc.cpu_request(), svc.memory_request()) {
        return None;
    }
    lab_decide::binding::choose_slots(gpus, req)
}

fn count(n: u32, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Why the pool runs out for this pod: the resource that limits a node (the
/// same fit the simulator's cluster autoscaler uses) and what the whole pool
/// holds at `max_nodes`.
fn limit(svc: &ServiceSpec, pool: &NodePoolSpec) -> String {
    let fit = node_fit(pool.node_shape(), &svc.pod_request());
    format!(
        "{}; at most {} in the pool ({})",
        fit.limit,
        count(fit.per_node.saturating_mul(pool.max_nodes), "such pod"),
        count(pool.max_nodes, "node")
    )
}
