//! The event loop and the request path: arrival -> routing -> activator or pod
//! queue -> dynamic batcher -> GPU executor -> response; and around it the pod
//! lifecycle, the autoscalers, the cluster autoscaler and spot interruptions.

use crate::queue::{Event, EventQueue};
use crate::stats::{BatchCounts, RunStats, ServiceStats};
use crate::world::*;
use lab_autoscale::{
    Autoscaler, Bounds, MetricError, Observation, PodPhase, PodSample, SignalValues, Time,
};
use lab_decide::metrics::{clamp_replicas, cpu_usage_milli, with_activator, RateWindow};
use lab_decide::routing;
use lab_decide::{
    binding, binding::NodeFit, cluster_autoscaler, cost, drain, lifecycle, reconcile, spot,
};
use lab_gpu::{sample_service_seconds, tenant_speed, ServiceDistribution, Sharing};
use lab_results::{ScalingEvent, TimePoint};
use lab_scenario::{profile_for, CapacityType, Scenario};
use lab_traffic::{exp1, rng_for, uniform, ArrivalIter, Rng, Schedule};
use std::collections::VecDeque;

const NS: f64 = 1e9;

/// No arrival or event pending.
const NONE_PENDING: u64 = u64::MAX;

/// One traffic stream and its next arrival, held as plain fields: the event loop
/// compares `next_at` on every step.
struct Stream {
    arrivals: ArrivalIter,
    service: usize,
    /// `NONE_PENDING` once the stream has ended.
    next_at: u64,
    next_rows: u32,
}

impl Stream {
    fn advance(&mut self) {
        match self.arrivals.next() {
            Some(a) => {
                self.next_at = a.at_ns;
                self.next_rows = a.rows;
            }
            None => self.next_at = NONE_PENDING,
        }
    }
}

fn t(ns: u64) -> Time {
    Time::from_nanos(ns)
}

/// What a progress callback may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop,
}

/// Progress reported every so many events.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub sim_ns: u64,
    pub end_ns: u64,
    pub events: u64,
}

pub struct Engine<'s> {
    pub sc: &'s Scenario,
    pub now: u64,
    pub end: u64,
    pub warmup: u64,
    pub q: EventQueue,
    pub deployments: Vec<Deployment>,
    pub pods: Vec<Pod>,
    pub nodes: Vec<Node>,
    pub pools: Vec<Pool>,
    /// Batch slots, reused: a slot keeps its request buffer between batches, so
    /// steady state allocates nothing per batch.
    pub batches: Vec<Batch>,
    free_batches: Vec<u32>,
    streams: Vec<Stream>,
    /// The earliest pending arrival (`NONE_PENDING` when traffic is over) and its stream.
    next_arrival_at: u64,
    next_stream: usize,
    /// Some service has a canary split: keep per-version figures.
    has_versions: bool,
    rng_service: Rng,
    rng_route: Rng,
    rng_spot: Rng,
    pub svc_stats: Vec<ServiceStats>,
    pub batch_counts: Vec<BatchCounts>,
    pub dep_stats: Vec<ServiceStats>,
    pub run: RunStats,
    pub timeseries: Vec<TimePoint>,
    pub scaling_events: Vec<ScalingEvent>,
    /// Goodput deadline per service: the tightest latency bound that applies.
    goodput_deadline: Vec<u64>,
    interval_ns: u64,
    last_interval: u64,
    /// `[gateway] ingress_overhead` and `queue_proxy_overhead`, in ns.
    ingress_overhead_ns: u64,
    queue_proxy_overhead_ns: u64,
    pub stopped_early: bool,
}

impl<'s> Engine<'s> {
    pub fn new(sc: &'s Scenario, seed: u64) -> Engine<'s> {
        let end = sc.duration().nanos();
        let mut e = Engine {
            sc,
            now: 0,
            end,
            warmup: sc.run.warmup.nanos(),
            q: EventQueue::new(),
            deployments: Vec::new(),
            pods: Vec::new(),
            nodes: Vec::new(),
            pools: Vec::new(),
            batches: Vec::new(),
            free_batches: Vec::new(),
            streams: Vec::new(),
            next_arrival_at: NONE_PENDING,
            next_stream: 0,
            has_versions: sc.services.iter().any(|s| !s.versions.is_empty()),
            rng_service: rng_for(seed, 1),
            rng_route: rng_for(seed, 2),
            rng_spot: rng_for(seed, 3),
            svc_stats: Vec::new(),
            batch_counts: Vec::new(),
            dep_stats: Vec::new(),
            run: RunStats::default(),
            timeseries: Vec::new(),
            scaling_events: Vec::new(),
            goodput_deadline: Vec::new(),
            interval_ns: sc.run.interval.nanos().max(1),
            last_interval: 0,
            ingress_overhead_ns: sc.gateway.ingress_overhead.nanos(),
            queue_proxy_overhead_ns: sc.gateway.queue_proxy_overhead.nanos(),
            stopped_early: false,
        };
        e.build(seed);
        e
    }

    fn build(&mut self, seed: u64) {
        let sc = self.sc;
        for p in &sc.node_pools {
            let gpu = p.gpu.as_deref().and_then(lab_gpu::gpu_type);
            self.pools.push(Pool {
                name: p.name.clone(),
                sharing: p.sharing.clone(),
                contention: p.contention,
                price_per_hour: p.price_per_hour,
                gpus_per_node: if gpu.is_some() { p.gpus_per_node } else { 0 },
                cpu: p.cpu.0,
                memory: p.memory.0,
                min_nodes: p.min_nodes,
                max_nodes: p.max_nodes,
                provisioning_ns: p.provisioning_time.nanos(),
                spot_interruptions_per_hour: if p.capacity_type == CapacityType::Spot {
                    p.spot_interruptions_per_hour
                } else {
                    0.0
                },
                notice_ns: p.interruption_notice.nanos(),
                has_gpu: gpu.is_some(),
                pending: VecDeque::new(),
                node_ns: 0,
                busy_level: 0.0,
                busy_since: 0,
                interval_busy_area: 0.0,
            });
        }
        for (pi, p) in sc.node_pools.iter().enumerate() {
            for _ in 0..p.initial_nodes.unwrap_or(p.min_nodes) {
                let n = self.add_node(pi);
                self.node_ready(n);
            }
        }
        for (si, svc) in sc.services.iter().enumerate() {
            self.svc_stats.push(ServiceStats {
                min_ready: u32::MAX,
                ..Default::default()
            });
            self.batch_counts.push(BatchCounts::default());
            let deadline = sc
                .slo
                .iter()
                .filter(|s| s.service.is_none() || s.service.as_deref() == Some(&svc.name))
                .filter(|s| s.metric.quantile().is_some())
                .filter_map(|s| s.bound().ok().map(|b| (b.1 * NS) as u64))
                .min()
                .unwrap_or(u64::MAX);
            self.goodput_deadline.push(deadline);
            let pool_idx = sc
                .pool_for(svc)
                .and_then(|p| sc.node_pools.iter().position(|q| q.name == p.name))
                .unwrap_or(0);
            let versions: Vec<(String, f64, &[lab_scenario::LatencySpec], f64)> =
                if svc.versions.is_empty() {
                    vec![(
                        "default".into(),
                        100.0,
                        &svc.latency[..],
                        svc.model_memory.0,
                    )]
                } else {
                    svc.versions
                        .iter()
                        .map(|v| {
                            (
                                v.name.clone(),
                                v.traffic_percent,
                                v.latency.as_deref().unwrap_or(&svc.latency[..]),
                                v.model_memory.map_or(svc.model_memory.0, |m| m.0),
                            )
                        })
                        .collect()
                };
            for (vname, percent, latency, memory) in versions {
                self.add_deployment(si, pool_idx, vname, percent, latency, memory);
            }
        }
        // Initial pods start warm: the run begins in steady state.
        for d in 0..self.deployments.len() {
            let n = self.deployments[d].autoscaler.initial_replicas();
            self.deployments[d].desired = n;
            for _ in 0..n {
                let p = self.create_pod(d as u32);
                self.try_bind(p, true);
            }
            let first = self.deployments[d].autoscaler.next_decision().as_nanos() as u64;
            self.q.push(
                first,
                Event::Decide {
                    deployment: d as u32,
                    gen: 0,
                },
            );
            if let Some(iv) = self.deployments[d].autoscaler.metric_interval() {
                self.q.push(
                    iv.as_nanos() as u64,
                    Event::Record {
                        deployment: d as u32,
                    },
                );
            }
        }
        for (i, spec) in sc.traffic.iter().enumerate() {
            let svc = sc.stream_service(i).unwrap_or(0);
            let mut stream = Stream {
                arrivals: Schedule::new(spec, seed, i as u32).iter(),
                service: svc,
                next_at: NONE_PENDING,
                next_rows: 0,
            };
            stream.advance();
            self.streams.push(stream);
        }
        self.find_next_stream();
        self.q
            .push(sc.metrics.scrape_interval.nanos().max(1), Event::Scrape);
        if sc.cluster_autoscaler.enabled {
            self.q.push(
                sc.cluster_autoscaler.scan_interval.nanos().max(1),
                Event::ClusterAutoscalerScan,
            );
        }
        self.q.push(self.interval_ns, Event::IntervalEnd);
    }

    fn add_deployment(
        &mut self,
        si: usize,
        pool_idx: usize,
        vname: String,
        percent: f64,
        latency: &[lab_scenario::LatencySpec],
        memory: f64,
    ) {
        let sc = self.sc;
        let svc = &sc.services[si];
        let pool_spec = &sc.node_pools[pool_idx];
        let pod = svc.pod_request();
        let req = pod.gpu.clone();
        let profile = profile_for(latency, pool_spec, &req)
            .cloned()
            .expect("validated: a profile exists for the pool");
        let scale_by_slice = !profile.gpu.contains('/');
        let bounds = Bounds {
            min: svc.min_replicas,
            max: svc.max_replicas,
        };
        let autoscaler = Autoscaler::new(&svc.autoscaler, bounds, svc.container_concurrency, t(0))
            .expect("validated: the autoscaler builds");
        let b = svc.batching.as_ref();
        let mut preferred: Vec<u32> = b
            .map(|b| b.preferred_batch_size.clone())
            .unwrap_or_default();
        preferred.sort_unstable_by(|a, b| b.cmp(a));
        let mut batching = Batching {
            max_rows: b.map_or(profile.max_batch_size().max(1), |b| b.max_batch_size),
            delay_ns: b.map_or(0, |b| b.max_queue_delay_microseconds * 1000),
            preferred,
            max_queue_rows: b.map_or(0, |b| b.max_queue_size),
            instances: b.map_or(1, |b| b.instances.max(1)),
            enabled: b.is_some(),
            one_request_per_batch: false,
        };
        batching.one_request_per_batch = !batching.enabled || batching.max_rows <= 1;
        let cs = &svc.cold_start;
        let pull_ns = cs.image_pull.map(|d| d.nanos()).unwrap_or_else(|| {
            if cs.image_pull_bandwidth.0 > 0.0 {
                (cs.image_size.0 / cs.image_pull_bandwidth.0 * NS) as u64
            } else {
                0
            }
        });
        let pool = &self.pools[pool_idx];
        let node_share = cost::node_share(
            cost::Requested {
                cpu: svc.cpu_request(),
                memory_bytes: svc.memory_request(),
                gpu: &req,
            },
            binding::NodeShape {
                cpu: pool.cpu,
                memory_bytes: pool.memory,
                gpus_per_node: pool.gpus_per_node,
                sharing: &pool.sharing,
            },
            pool_spec.gpu.as_deref().and_then(lab_gpu::gpu_type),
        );
        self.deployments.push(Deployment {
            service: si,
            name: vname,
            traffic_percent: percent,
            autoscaler,
            desired: 0,
            min: svc.min_replicas,
            max: svc.max_replicas,
            pods: Vec::new(),
            ready: Vec::new(),
            activator: VecDeque::new(),
            pool: pool_idx,
            gpu_request: req,
            profile,
            scale_by_slice,
            batching,
            container_concurrency: svc.container_concurrency,
            timeout_ns: svc.timeout.nanos().max(1),
            model_memory: memory,
            cpu_milli: pod.cpu_milli,
            memory_bytes: pod.memory_bytes,
            node_share,
            pod_start_ns: cs.pod_start.nanos(),
            pull_ns,
            load_ns: cs.model_load.nanos(),
            probe_ns: cs.readiness_probe_period.nanos(),
            grace_ns: cs.termination_grace_period.nanos(),
            decide_gen: 0,
            outstanding: 0,
            outstanding_area: 0,
            outstanding_since: 0,
            last_record: 0,
            completed_total: 0,
            completed_at_last_record: 0,
            rate: RateWindow::new(),
            last_totals: SignalValues::default(),
        });
        self.dep_stats.push(ServiceStats::default());
    }

    // ----- main loop ------------------------------------------------------

    /// Runs to the end of the scenario or until `progress` says stop.
    pub fn run(&mut self, progress: &mut dyn FnMut(Progress) -> Control) {
        const REPORT_EVERY: u64 = 1 << 20;
        let mut next_report = REPORT_EVERY;
        loop {
            let arrival_at = self.next_arrival_at;
            let event_at = self.q.peek_time().unwrap_or(NONE_PENDING);
            if event_at == NONE_PENDING && arrival_at == NONE_PENDING {
                break;
            }
            let take_event = event_at <= arrival_at;
            let at = event_at.min(arrival_at);
            if at >= self.end {
                self.advance(self.end);
                break;
            }
            self.advance(at);
            if take_event {
                let (_, ev) = self.q.pop().expect("peeked");
                self.handle(ev);
            } else {
                self.next_arrival();
            }
            self.run.events += 1;
            if self.run.events >= next_report {
                next_report += REPORT_EVERY;
                if progress(Progress {
                    sim_ns: self.now,
                    end_ns: self.end,
                    events: self.run.events,
                }) == Control::Stop
                {
                    self.stopped_early = true;
                    break;
                }
            }
        }
        self.finish_integrals();
    }

    fn advance(&mut self, to: u64) {
        self.now = to.max(self.now);
    }

    /// Finds the earliest pending arrival over all streams (ties to the lower stream).
    fn find_next_stream(&mut self) {
        self.next_arrival_at = NONE_PENDING;
        for (i, s) in self.streams.iter().enumerate() {
            if s.next_at < self.next_arrival_at {
                self.next_arrival_at = s.next_at;
                self.next_stream = i;
            }
        }
    }

    fn next_arrival(&mut self) {
        let stream = &mut self.streams[self.next_stream];
        let (svc, rows) = (stream.service, stream.next_rows);
        stream.advance();
        if self.streams.len() == 1 {
            self.next_arrival_at = self.streams[0].next_at;
        } else {
            self.find_next_stream();
        }
        self.arrive(svc, rows);
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::BatchDone { batch, gen } => self.batch_done(batch, gen),
            Event::BatchTimer { pod } => {
                if self.pods[pod as usize].timer_at == Some(self.now) {
                    self.pods[pod as usize].timer_at = None;
                }
                self.dispatch(pod);
            }
            Event::PodReady { pod, gen } => {
                if self.pods[pod as usize].gen == gen
                    && self.pods[pod as usize].state == PodState::Starting
                {
                    self.pod_ready(pod, false);
                }
            }
            Event::PodOom { pod, gen } => {
                if self.pods[pod as usize].gen == gen
                    && self.pods[pod as usize].state == PodState::Starting
                {
                    self.pod_oom(pod);
                }
            }
            Event::PodKill { pod, gen } => {
                if self.pods[pod as usize].gen == gen
                    && self.pods[pod as usize].state == PodState::Draining
                {
                    match drain::step(self.held(pod), true) {
                        drain::DrainStep::Exit => self.terminate(pod),
                        drain::DrainStep::Kill { reason } => self.kill_pod(pod, reason),
                        drain::DrainStep::Wait => {}
                    }
                }
            }
            Event::NodeReady { node } => {
                if self.nodes[node as usize].state == NodeState::Provisioning {
                    self.node_ready(node);
                }
            }
            Event::SpotNotice { node } => self.spot_notice(node),
            Event::NodeKill { node } => self.node_kill(node),
            Event::Decide { deployment, gen } => {
                if self.deployments[deployment as usize].decide_gen == gen {
                    self.decide(deployment as usize);
                }
            }
            Event::Record { deployment } => self.record(deployment as usize),
            Event::Scrape => self.scrape(),
            Event::ClusterAutoscalerScan => self.ca_scan(),
            Event::IntervalEnd => self.interval_end(),
        }
    }

    // ----- request path ---------------------------------------------------

    #[inline(always)]
    fn arrive(&mut self, svc: usize, rows: u32) {
        let measured = self.now >= self.warmup;
        let st = &mut self.svc_stats[svc];
        st.counts.arrived += 1;
        if measured {
            st.measured.arrived += 1;
        }
        st.interval_arrivals += 1;
        let d = self.pick_version(svc);
        if self.has_versions {
            self.dep_stats[d].counts.arrived += 1;
            if measured {
                self.dep_stats[d].measured.arrived += 1;
            }
        }
        self.route(d, self.now, rows, false);
    }

    fn pick_version(&mut self, svc: usize) -> usize {
        if !self.has_versions {
            // One deployment per service, in service order.
            return svc;
        }
        let first = self
            .deployments
            .iter()
            .position(|d| d.service == svc)
            .expect("every service has a deployment");
        let count = self.deployments[first..]
            .iter()
            .take_while(|d| d.service == svc)
            .count();
        let (rng, deployments) = (&mut self.rng_route, &self.deployments[first..]);
        first + routing::pick_version(count, || uniform(rng), |i| deployments[i].traffic_percent)
    }

    // Inlined down to the pod queue's push, so a new request goes from
    // registers into the queue; through a stack copy, the copy's wide loads of
    // narrow stores stall on store forwarding.
    #[inline(always)]
    fn route(&mut self, d: usize, arrival: u64, rows: u32, cold: bool) {
        let ready = &self.deployments[d].ready;
        // Envoy's LEAST_REQUEST: the less loaded of two random picks.
        let (rng, pods) = (&mut self.rng_route, &self.pods);
        let pod = routing::least_request(
            ready.len(),
            || rand::RngCore::next_u64(rng),
            |i| pods[ready[i] as usize].outstanding,
        )
        .map(|i| ready[i]);
        match pod {
            Some(p) => self.enqueue(p, arrival, rows, cold),
            None => self.buffer_at_activator(
                d,
                Req {
                    arrival,
                    enqueued: self.now,
                    rows,
                    deployment: d as u32,
                    cold,
                },
            ),
        }
    }

    /// No ready pod: the activator holds the request until one is ready.
    #[cold]
    fn buffer_at_activator(&mut self, d: usize, mut req: Req) {
        let limit = self.sc.gateway.activator_queue_limit as usize;
        if self.deployments[d].activator.len() >= limit {
            self.fail(req, "activator_overflow");
            return;
        }
        if !req.cold {
            req.cold = true;
            self.run.requests_delayed += 1;
        }
        req.enqueued = self.now;
        self.dep_outstanding(d, 1);
        self.deployments[d].activator.push_back(req);
        self.poke(d);
    }

    /// Knative's activator pokes the autoscaler when requests wait at zero.
    fn poke(&mut self, d: usize) {
        let wants = {
            let obs_pods = self.pod_samples(d);
            let obs = self.observation(d, &obs_pods);
            self.deployments[d].autoscaler.wants_poke(&obs)
        };
        if wants {
            self.schedule_decide(d, self.now);
        }
    }

    #[inline(always)]
    fn enqueue(&mut self, p: u32, arrival: u64, rows: u32, cold: bool) {
        let pod = &mut self.pods[p as usize];
        let d = pod.deployment as usize;
        // Built where it is stored: see `route`.
        let req = Req {
            arrival,
            enqueued: self.now,
            rows,
            deployment: d as u32,
            cold,
        };
        let cap = self.deployments[d].batching.max_queue_rows;
        if cap > 0 && pod.queued_rows + u64::from(rows) > u64::from(cap) {
            self.fail(req, "queue_full");
            return;
        }
        pod_outstanding(pod, self.now, 1);
        let dep = &self.deployments[d];
        // An idle instance, nobody ahead and batches of one: what `dispatch`
        // would decide, without the trip through the queue.
        if pod.free_instances > 0
            && pod.queue.is_empty()
            && dep.batching.one_request_per_batch
            && (dep.container_concurrency == 0 || pod.executing_reqs < dep.container_concurrency)
            && self.now - arrival < dep.timeout_ns
            && matches!(pod.state, PodState::Ready | PodState::Draining)
        {
            self.dep_outstanding(d, 1);
            let id = self.batch_slot();
            self.batches[id as usize].reqs.push(req);
            self.start_batch(p, id, rows);
            return;
        }
        pod.queued_rows += u64::from(rows);
        pod.queue.push_back(req);
        // Every instance busy: the request waits for a completion to dispatch it.
        let idle_instance = pod.free_instances > 0;
        self.dep_outstanding(d, 1);
        if idle_instance {
            self.dispatch(p);
        }
    }

    /// A free batch slot, its request buffer empty.
    #[inline]
    fn batch_slot(&mut self) -> u32 {
        match self.free_batches.pop() {
            Some(id) => id,
            None => {
                self.batches.push(Batch::default());
                (self.batches.len() - 1) as u32
            }
        }
    }

    fn dep_outstanding(&mut self, d: usize, delta: i64) {
        let dep = &mut self.deployments[d];
        dep.outstanding_area +=
            u128::from(dep.outstanding) * u128::from(self.now - dep.outstanding_since);
        dep.outstanding_since = self.now;
        dep.outstanding = (dep.outstanding as i64 + delta).max(0) as u64;
    }

    /// Forms batches while an execution instance is free (Triton's dynamic batcher).
    fn dispatch(&mut self, p: u32) {
        loop {
            let pi = p as usize;
            let d = self.pods[pi].deployment as usize;
            if self.pods[pi].free_instances == 0 || self.pods[pi].queue.is_empty() {
                return;
            }
            if !matches!(self.pods[pi].state, PodState::Ready | PodState::Draining) {
                return;
            }
            // Requests whose client already gave up never reach the model.
            let timeout = self.deployments[d].timeout_ns;
            while let Some(head) = self.pods[pi].queue.front() {
                if self.now.saturating_sub(head.arrival) < timeout {
                    break;
                }
                let r = self.pods[pi].queue.pop_front().expect("head");
                self.pods[pi].queued_rows -= u64::from(r.rows);
                pod_outstanding(&mut self.pods[pi], self.now, -1);
                self.dep_outstanding(d, -1);
                self.fail(r, "timeout");
            }
            if self.pods[pi].queue.is_empty() {
                return;
            }
            let b = &self.deployments[d].batching;
            let cc = self.deployments[d].container_concurrency;
            let pod = &self.pods[pi];
            // containerConcurrency bounds requests admitted past the queue-proxy.
            let admissible = if cc == 0 {
                usize::MAX
            } else {
                (cc.saturating_sub(pod.executing_reqs)) as usize
            };
            if admissible == 0 {
                return;
            }
            let mut take = 0usize;
            let rows: u32;
            let limit = if b.enabled { b.max_rows } else { 0 };
            // Without batching, or with batches of one row, the head goes alone
            // (requests carry at least one row): no need to scan the queue.
            if b.one_request_per_batch {
                take = 1;
                rows = pod.queue[0].rows;
            } else {
                let mut avail_rows = 0u32;
                let mut avail = 0usize;
                for r in pod.queue.iter().take(admissible) {
                    if avail_rows + r.rows > limit && avail > 0 {
                        break;
                    }
                    avail_rows += r.rows;
                    avail += 1;
                    if avail_rows >= limit {
                        break;
                    }
                }
                let oldest = pod.queue[0].enqueued;
                let full = avail_rows >= limit;
                let preferred = b.preferred.iter().copied().find(|p| *p <= avail_rows);
                let waited = self.now.saturating_sub(oldest) >= b.delay_ns;
                if full || waited || b.delay_ns == 0 {
                    take = avail;
                    rows = avail_rows;
                } else if let Some(pref) = preferred {
                    // Take requests up to the preferred size.
                    let mut acc = 0;
                    for r in pod.queue.iter().take(avail) {
                        if acc + r.rows > pref {
                            break;
                        }
                        acc += r.rows;
                        take += 1;
                    }
                    rows = acc;
                } else {
                    let due = oldest + b.delay_ns;
                    if self.pods[pi]
                        .timer_at
                        .is_none_or(|at| at > due || at < self.now)
                    {
                        self.pods[pi].timer_at = Some(due);
                        self.q.push(due, Event::BatchTimer { pod: p });
                    }
                    return;
                }
            }
            if take == 0 {
                return;
            }
            let id = self.batch_slot();
            let reqs = &mut self.batches[id as usize].reqs;
            let queue = &mut self.pods[pi].queue;
            if take == 1 {
                // The common unbatched case: no drain iterator for one request.
                // Copied out by index and then popped: going through the
                // `Option<Req>` of `pop_front` costs a store-forwarding stall.
                let r = queue[0];
                queue.pop_front();
                reqs.push(r);
            } else {
                reqs.extend(queue.drain(..take));
            }
            self.pods[pi].queued_rows -= u64::from(rows);
            self.start_batch(p, id, rows);
        }
    }

    /// Starts batch slot `id`, already holding its requests, on pod `p`.
    fn start_batch(&mut self, p: u32, id: u32, rows: u32) {
        let pi = p as usize;
        let d = self.pods[pi].deployment as usize;
        let dep = &self.deployments[d];
        let mean = dep.profile.mean_seconds(rows).unwrap_or_else(|| {
            // Validation keeps batches within the profile; a single oversized
            // request is charged proportionally to the largest point.
            let max = dep.profile.max_batch_size().max(1);
            dep.profile.mean_seconds(max).unwrap_or(0.0) * f64::from(rows) / f64::from(max)
        });
        let work = match dep.profile.distribution {
            ServiceDistribution::Deterministic => mean,
            // The ziggurat draw: no logarithm per batch.
            ServiceDistribution::Exponential => mean * exp1(&mut self.rng_service),
            dist => {
                let u1 = uniform(&mut self.rng_service);
                let u2 = uniform(&mut self.rng_service);
                sample_service_seconds(mean, dist, u1, u2)
            }
        };
        let pod = &mut self.pods[pi];
        let batch = &mut self.batches[id as usize];
        pod.free_instances -= 1;
        pod.executing_reqs += batch.reqs.len() as u32;
        if pod.busy_since.is_none() {
            pod.busy_since = Some(self.now);
        }
        let gpu = pod
            .node
            .and_then(|n| pod.slots.first().map(|(g, s)| (n, *g, *s)));
        let service = self.deployments[d].service;
        // Batches of one request are full by definition: only real batching
        // is worth counting (and the unbatched hot path stays lean).
        if !self.deployments[d].batching.one_request_per_batch {
            let bc = &mut self.batch_counts[service];
            bc.interval_batches += 1;
            bc.interval_rows += u64::from(rows);
            // As for latency: only the interval that straddles warm-up counts
            // its measured batches one by one; later ones fold in when they close.
            if self.last_interval < self.warmup && self.now >= self.warmup {
                bc.batches += 1;
                bc.rows += u64::from(rows);
            }
        }
        let st = &mut self.svc_stats[service];
        let queue_hist = &mut st.queue_buf;
        for r in &batch.reqs {
            if r.arrival >= self.warmup {
                queue_hist.record_ns(self.now - r.arrival);
            }
        }
        batch.live = true;
        batch.pod = p;
        batch.remaining = work;
        batch.speed = 1.0;
        batch.updated = self.now;
        batch.gen = 0;
        batch.gpu = gpu;
        self.pods[pi].executing_batches += 1;
        match gpu {
            Some((n, g, _)) if self.pools[self.nodes[n as usize].pool].has_gpu => {
                self.nodes[n as usize].gpus[g as usize].executing.push(id);
                self.respeed(n, g);
            }
            _ => {
                // CPU pods: each execution instance runs on its own cores.
                self.schedule_done(id);
            }
        }
    }

    /// Recomputes the speed of every batch on one physical GPU after the set of
    /// busy tenants changed, carrying over the work already done. Runs twice per
    /// batch, so it allocates nothing.
    fn respeed(&mut self, n: u32, g: u32) {
        let now = self.now;
        let (ni, gi) = (n as usize, g as usize);
        let pool_idx = self.nodes[ni].pool;
        let busy = self.nodes[ni].gpus[gi].executing.len();
        let is_mig = matches!(self.pools[pool_idx].sharing, Sharing::Mig { .. });
        // MIG instances are isolated: count busy batches per instance (at most 7).
        let mut per_slot = [0u32; lab_gpu::COMPUTE_SLICES as usize + 1];
        if is_mig {
            for k in 0..busy {
                let id = self.nodes[ni].gpus[gi].executing[k];
                if let Some((_, _, slot)) = self.batches[id as usize].gpu {
                    per_slot[(slot as usize).min(per_slot.len() - 1)] += 1;
                }
            }
        }
        // Utilisation of this GPU: any work on it, or the busy MIG instances' share.
        let util = {
            let gpu = &self.nodes[ni].gpus[gi];
            if is_mig {
                let total: f64 = gpu.slot_speed.iter().sum::<f64>().max(1e-9);
                gpu.slot_speed
                    .iter()
                    .enumerate()
                    .filter(|(s, _)| per_slot[(*s).min(per_slot.len() - 1)] > 0)
                    .map(|(_, v)| v / total)
                    .sum()
            } else {
                f64::from(u8::from(busy > 0))
            }
        };
        let old = self.nodes[ni].gpus[gi].util;
        if (util - old).abs() > 1e-12 {
            self.pool_level_change(pool_idx);
            self.pools[pool_idx].busy_level += util - old;
            self.nodes[ni].gpus[gi].util = util;
        }
        for k in 0..busy {
            let id = self.nodes[ni].gpus[gi].executing[k];
            let scale = {
                let b = &self.batches[id as usize];
                let pool = &self.pools[pool_idx];
                match &pool.sharing {
                    Sharing::Mig { .. } => {
                        let s = b.gpu.map_or(0, |x| x.2) as usize;
                        let dep = &self.deployments[self.pods[b.pod as usize].deployment as usize];
                        let slice = if dep.scale_by_slice {
                            self.nodes[ni].gpus[gi].slot_speed[s]
                        } else {
                            1.0
                        };
                        slice / f64::from(per_slot[s.min(per_slot.len() - 1)].max(1))
                    }
                    Sharing::None => 1.0 / busy.max(1) as f64,
                    other => tenant_speed(other, busy as u32, &pool.contention),
                }
            };
            let b = &mut self.batches[id as usize];
            b.remaining = (b.remaining - b.speed * (now - b.updated) as f64 / NS).max(0.0);
            b.updated = now;
            if (b.speed - scale).abs() > 1e-15 || b.gen == 0 {
                b.speed = scale;
                b.gen += 1;
                self.schedule_done(id);
            }
        }
    }

    fn schedule_done(&mut self, id: u32) {
        let b = &mut self.batches[id as usize];
        if b.gen == 0 {
            b.gen = 1;
        }
        let exact = if b.speed == 1.0 {
            b.remaining * NS
        } else {
            b.remaining / b.speed.max(1e-12) * NS
        };
        let dur = ceil_ns(exact);
        let at = self.now.saturating_add(dur);
        let gen = b.gen;
        self.q.push(at, Event::BatchDone { batch: id, gen });
    }

    fn batch_done(&mut self, id: u32, gen: u32) {
        let b = &mut self.batches[id as usize];
        if !b.live || b.gen != gen {
            return;
        }
        b.live = false;
        let p = b.pod;
        let gpu = b.gpu;
        let mut reqs = std::mem::take(&mut b.reqs);
        let pi = p as usize;
        let d = self.pods[pi].deployment as usize;
        if let Some((n, g, _)) = gpu {
            if let Some(gpu) = self.nodes[n as usize].gpus.get_mut(g as usize) {
                gpu.executing.retain(|x| *x != id);
            }
            if self.pools[self.nodes[n as usize].pool].has_gpu {
                self.respeed(n, g);
            }
        }
        let pod = &mut self.pods[pi];
        pod.executing_batches -= 1;
        pod.free_instances += 1;
        pod.executing_reqs -= reqs.len() as u32;
        if pod.executing_batches == 0 {
            if let Some(since) = pod.busy_since.take() {
                pod.busy_ns += self.now - since;
            }
        }
        let n = reqs.len() as i64;
        pod_outstanding(pod, self.now, -n);
        // The queue-proxy holds each answer for its overhead after the model
        // is done. Its share of the concurrency integrals is added whole here
        // rather than by an event per batch: the areas the KPA and the scrapes
        // read are exact, only the moment it lands (at most the overhead
        // early) and the instantaneous count used for routing leave it out.
        let held = u128::from(self.queue_proxy_overhead_ns) * n as u128;
        pod.area += held;
        pod.completed_since_scrape += n as u64;
        self.dep_outstanding(d, -n);
        self.deployments[d].outstanding_area += held;
        self.deployments[d].completed_total += n as u64;
        let timeout = self.deployments[d].timeout_ns;
        // The ingress hop is the client's alone: in its latency, in no
        // pod's concurrency. Modelled as paid on the way back, which shifts
        // no arrival against the autoscalers' ticks.
        let overhead = self.queue_proxy_overhead_ns + self.ingress_overhead_ns;
        for r in reqs.drain(..) {
            let latency = self.now - r.arrival + overhead;
            if latency > timeout {
                self.fail(r, "timeout");
            } else {
                self.complete(r, latency);
            }
        }
        // The slot keeps its buffer; only then may the next batch take it.
        self.batches[id as usize].reqs = reqs;
        self.free_batches.push(id);
        if !self.pods[pi].queue.is_empty() {
            self.dispatch(p);
        }
        self.maybe_finish_drain(p);
    }

    fn complete(&mut self, r: Req, latency: u64) {
        let d = r.deployment as usize;
        let s = self.deployments[d].service;
        let measured = r.arrival >= self.warmup;
        let st = &mut self.svc_stats[s];
        st.counts.completed += 1;
        st.interval_buf.record_ns(latency);
        if measured {
            st.measured.completed += 1;
            // Intervals that start after warm-up fold into the run's histogram
            // when they close; only the interval that straddles warm-up records
            // its measured requests one by one.
            if self.last_interval < self.warmup {
                st.latency.record_ns(latency);
            }
            if latency <= self.goodput_deadline[s] {
                st.goodput += 1;
            }
        }
        if self.has_versions {
            let ds = &mut self.dep_stats[d];
            ds.counts.completed += 1;
            if measured {
                ds.measured.completed += 1;
                ds.latency.record_ns(latency);
            }
        }
    }

    fn fail(&mut self, r: Req, reason: &'static str) {
        let d = r.deployment as usize;
        let s = self.deployments[d].service;
        let measured = r.arrival >= self.warmup;
        self.svc_stats[s].fail(reason, measured);
        if self.has_versions {
            self.dep_stats[d].fail(reason, measured);
        }
        self.run.interval_failures += 1;
    }

    // ----- pods -----------------------------------------------------------

    fn create_pod(&mut self, d: u32) -> u32 {
        let dep = &self.deployments[d as usize];
        let id = self.pods.len() as u32;
        self.pods.push(Pod {
            deployment: d,
            state: PodState::Pending,
            gen: 0,
            node: None,
            slots: Vec::new(),
            created: self.now,
            bound: 0,
            ready_at: 0,
            queue: VecDeque::new(),
            queued_rows: 0,
            executing_reqs: 0,
            free_instances: dep.batching.instances,
            executing_batches: 0,
            timer_at: None,
            outstanding: 0,
            area: 0,
            area_since: self.now,
            busy_ns: 0,
            busy_since: None,
            completed_since_scrape: 0,
            scraped: None,
            last_scrape: self.now,
            cold_phases: [0; 4],
            ended: None,
        });
        self.deployments[d as usize].pods.push(id);
        id
    }

    /// Places a pending pod on a node of its pool; `warm` skips start-up (the
    /// initial replicas of a run). Returns false when nothing fits.
    fn try_bind(&mut self, p: u32, warm: bool) -> bool {
        let d = self.pods[p as usize].deployment as usize;
        let pool = self.deployments[d].pool;
        let placement = self.find_slot(d, pool);
        let Some((n, slots)) = placement.or_else(|| {
            if warm {
                // The run starts in steady state: add a node if the initial pods need one.
                let live = self.live_nodes(pool);
                if live < self.pools[pool].max_nodes {
                    let n = self.add_node(pool);
                    self.node_ready(n);
                    return self.find_slot(d, pool);
                }
            }
            None
        }) else {
            if !self.pools[pool].pending.contains(&p) {
                self.pools[pool].pending.push_back(p);
            }
            return false;
        };
        let dep = &self.deployments[d];
        let (cpu, mem, model_mem) = (
            dep.cpu_milli as f64 / 1000.0,
            dep.memory_bytes as f64,
            dep.model_memory,
        );
        let node = &mut self.nodes[n as usize];
        node.cpu_free -= cpu;
        node.memory_free -= mem;
        node.pods += 1;
        node.empty_since = None;
        let mut oom = false;
        for (g, s) in &slots {
            let gpu = &mut node.gpus[*g as usize];
            gpu.slots[*s as usize] = Some(p);
            gpu.memory_used += model_mem;
            // Time-slicing does not isolate memory: co-tenants can run it out.
            if binding::gpu_memory_overflows(gpu.memory_used, gpu.memory_total) {
                oom = true;
            }
        }
        let svc = dep.service;
        let pod = &mut self.pods[p as usize];
        pod.node = Some(n);
        pod.slots = slots;
        pod.bound = self.now;
        pod.state = PodState::Starting;
        pod.gen += 1;
        let gen = pod.gen;
        if warm {
            self.nodes[n as usize].images.push((svc, 0));
            self.pod_ready(p, true);
            return true;
        }
        // Start-up: container start, image pull (once per node), model load,
        // readiness seen at the next probe.
        let dep = &self.deployments[d];
        let image = self.nodes[n as usize]
            .images
            .iter()
            .find(|(s, _)| *s == svc)
            .map(|(_, done)| *done);
        let up = lifecycle::startup(
            self.pods[p as usize].created,
            self.now,
            image,
            lifecycle::StartupTimes {
                pod_start_ns: dep.pod_start_ns,
                image_pull_ns: dep.pull_ns,
                model_load_ns: dep.load_ns,
                probe_period_ns: dep.probe_ns,
            },
        );
        if let Some(done) = up.node_image_ready {
            self.nodes[n as usize].images.push((svc, done));
        }
        self.pods[p as usize].cold_phases = up.phases_ns;
        if oom {
            self.q.push(up.model_loaded, Event::PodOom { pod: p, gen });
        } else {
            self.q.push(up.ready, Event::PodReady { pod: p, gen });
        }
        true
    }

    fn find_slot(&self, d: usize, pool: usize) -> Option<(u32, Vec<(u32, u32)>)> {
        let dep = &self.deployments[d];
        let cpu = dep.cpu_milli as f64 / 1000.0;
        let mem = dep.memory_bytes as f64;
        self.nodes.iter().enumerate().find_map(|(ni, node)| {
            if node.pool != pool
                || node.state != NodeState::Ready
                || !binding::has_room(node.cpu_free, node.memory_free, cpu, mem)
            {
                return None;
            }
            // On a MIG pool (single strategy) every instance is a device too.
            let slots = binding::choose_slots(&node.gpus, &dep.gpu_request)?;
            Some((
                ni as u32,
                slots
                    .into_iter()
                    .map(|(g, s)| (g as u32, s as u32))
                    .collect(),
            ))
        })
    }

    fn pod_ready(&mut self, p: u32, warm: bool) {
        let pi = p as usize;
        let d = self.pods[pi].deployment as usize;
        let pod = &mut self.pods[pi];
        pod.state = PodState::Ready;
        pod.ready_at = self.now;
        pod.area_since = self.now;
        pod.last_scrape = self.now;
        if !warm {
            let total = self.now - pod.created;
            self.run.cold_start_ns.record_ns(total);
            self.run.cold_count += 1;
            for (i, v) in pod.cold_phases.iter().enumerate() {
                self.run.cold_phase_sum[i] += *v as f64 / NS;
            }
        }
        self.deployments[d].ready.push(p);
        // The activator hands its buffer to the new pod(s).
        let buffered: Vec<Req> = self.deployments[d].activator.drain(..).collect();
        self.dep_outstanding(d, -(buffered.len() as i64));
        for r in buffered {
            if self.now - r.arrival >= self.deployments[d].timeout_ns {
                self.fail(r, "timeout");
            } else {
                self.route(r.deployment as usize, r.arrival, r.rows, r.cold);
            }
        }
    }

    fn pod_oom(&mut self, p: u32) {
        let d = self.pods[p as usize].deployment as usize;
        self.pods[p as usize].state = PodState::Failed;
        let svc = &self.sc.services[self.deployments[d].service];
        let node = self.pods[p as usize].node.unwrap_or(0);
        self.scaling_events.push(ScalingEvent {
            t_seconds: self.now as f64 / NS,
            target: self.target_name(d),
            autoscaler: "kubelet".into(),
            from: self.deployments[d].ready.len() as u32,
            to: self.deployments[d].ready.len() as u32,
            reason: format!(
                "pod OOMKilled loading {} ({:.1} GiB) on a shared GPU of node {node}: time-slicing does not isolate GPU memory",
                svc.model_name(),
                self.deployments[d].model_memory / GIB
            ),
        });
    }

    /// Deletes a pod: an unstarted one goes at once, a ready one drains.
    fn delete_pod(&mut self, p: u32) {
        let pi = p as usize;
        let d = self.pods[pi].deployment as usize;
        match self.pods[pi].state {
            PodState::Pending => {
                let pool = self.deployments[d].pool;
                self.pools[pool].pending.retain(|x| *x != p);
                self.terminate(p);
            }
            PodState::Starting | PodState::Failed => self.terminate(p),
            PodState::Ready => {
                self.deployments[d].ready.retain(|x| *x != p);
                let pod = &mut self.pods[pi];
                pod.state = PodState::Draining;
                pod.gen += 1;
                let gen = pod.gen;
                let deadline = drain::deadline(self.now, self.deployments[d].grace_ns);
                self.q.push(deadline, Event::PodKill { pod: p, gen });
                self.maybe_finish_drain(p);
            }
            PodState::Draining | PodState::Terminated => {}
        }
    }

    /// A draining pod that holds nothing exits; the grace deadline is the
    /// `PodKill` timer's to judge.
    fn maybe_finish_drain(&mut self, p: u32) {
        if self.pods[p as usize].state == PodState::Draining
            && drain::step(self.held(p), false) == drain::DrainStep::Exit
        {
            self.terminate(p);
        }
    }

    /// What a pod holds, as a drain sees it: queued requests, executing batches.
    fn held(&self, p: u32) -> drain::Held {
        let pod = &self.pods[p as usize];
        drain::Held {
            queued: pod.queue.len() as u64,
            executing: u64::from(pod.executing_batches),
        }
    }

    /// Ends a pod now; whatever it still holds fails with `reason`.
    fn kill_pod(&mut self, p: u32, reason: &'static str) {
        let pi = p as usize;
        let d = self.pods[pi].deployment as usize;
        let queued: Vec<Req> = self.pods[pi].queue.drain(..).collect();
        self.pods[pi].queued_rows = 0;
        self.pods[pi].executing_batches = 0;
        let mut lost = queued;
        // Kills are rare: find the pod's batches by scanning the slots.
        for id in 0..self.batches.len() as u32 {
            let b = &mut self.batches[id as usize];
            if b.live && b.pod == p {
                b.live = false;
                let gpu = b.gpu;
                lost.append(&mut b.reqs);
                self.free_batches.push(id);
                if let Some((n, g, _)) = gpu {
                    self.nodes[n as usize].gpus[g as usize]
                        .executing
                        .retain(|x| *x != id);
                    if self.pools[self.nodes[n as usize].pool].has_gpu {
                        self.respeed(n, g);
                    }
                }
            }
        }
        let n = lost.len() as i64;
        pod_outstanding(&mut self.pods[pi], self.now, -n);
        self.dep_outstanding(d, -n);
        for r in lost {
            self.fail(r, reason);
        }
        self.deployments[d].ready.retain(|x| *x != p);
        self.terminate(p);
    }

    fn terminate(&mut self, p: u32) {
        let pi = p as usize;
        if self.pods[pi].state == PodState::Terminated {
            return;
        }
        let d = self.pods[pi].deployment as usize;
        let pod = &mut self.pods[pi];
        pod.state = PodState::Terminated;
        pod.gen += 1;
        pod.ended = Some(self.now);
        if let Some(since) = pod.busy_since.take() {
            pod.busy_ns += self.now - since;
        }
        self.deployments[d].pods.retain(|x| *x != p);
        self.deployments[d].ready.retain(|x| *x != p);
        if let Some(n) = self.pods[pi].node {
            let dep = &self.deployments[d];
            let (cpu, mem, model_mem) = (
                dep.cpu_milli as f64 / 1000.0,
                dep.memory_bytes as f64,
                dep.model_memory,
            );
            let slots = self.pods[pi].slots.clone();
            let node = &mut self.nodes[n as usize];
            node.cpu_free += cpu;
            node.memory_free += mem;
            node.pods -= 1;
            for (g, s) in slots {
                let gpu = &mut node.gpus[g as usize];
                gpu.slots[s as usize] = None;
                gpu.memory_used -= model_mem;
            }
            if node.pods == 0 {
                node.empty_since = Some(self.now);
            }
            let pool = node.pool;
            self.bind_pending(pool);
        }
    }

    /// Keeps a deployment's pod count at its desired replicas.
    fn reconcile(&mut self, d: usize) {
        let live: Vec<reconcile::LivePod<u32>> = self.deployments[d]
            .pods
            .iter()
            .filter_map(|p| {
                let pod = &self.pods[*p as usize];
                let phase = match pod.state {
                    PodState::Draining | PodState::Terminated => return None,
                    PodState::Pending => reconcile::LivePhase::Unscheduled,
                    PodState::Starting => reconcile::LivePhase::Starting,
                    PodState::Failed => reconcile::LivePhase::Failed,
                    PodState::Ready => reconcile::LivePhase::Ready,
                };
                Some(reconcile::LivePod {
                    id: *p,
                    phase,
                    outstanding: u64::from(pod.outstanding),
                    created: pod.created,
                })
            })
            .collect();
        match reconcile::reconcile(&live, self.deployments[d].desired as usize) {
            reconcile::Reconcile::Create(n) => {
                for _ in 0..n {
                    let p = self.create_pod(d as u32);
                    self.try_bind(p, false);
                }
            }
            reconcile::Reconcile::Delete(pods) => {
                for p in pods {
                    self.delete_pod(p);
                }
            }
            reconcile::Reconcile::Nothing => {}
        }
    }

    // ----- nodes ----------------------------------------------------------

    pub(crate) fn live_nodes(&self, pool: usize) -> u32 {
        self.nodes
            .iter()
            .filter(|n| {
                n.pool == pool && matches!(n.state, NodeState::Provisioning | NodeState::Ready)
            })
            .count() as u32
    }

    fn add_node(&mut self, pool: usize) -> u32 {
        let spec = &self.sc.node_pools[pool];
        let gpu_type = spec.gpu.as_deref().and_then(lab_gpu::gpu_type);
        let mut gpus = Vec::new();
        if let Some(gt) = gpu_type {
            for _ in 0..spec.gpus_per_node {
                let (profiles, speeds): (Vec<String>, Vec<f64>) = match &spec.sharing {
                    Sharing::Mig { layout } => layout
                        .iter()
                        .map(|name| {
                            let speed = gt.mig_profile(name).map_or(1.0, |m| m.speed_fraction(gt));
                            (name.clone(), speed)
                        })
                        .unzip(),
                    other => (0..other.slots_per_gpu())
                        .map(|_| (String::new(), 1.0))
                        .unzip(),
                };
                gpus.push(PhysGpu {
                    slots: vec![None; profiles.len()],
                    slot_profile: profiles,
                    slot_speed: speeds,
                    executing: Vec::new(),
                    memory_used: 0.0,
                    util: 0.0,
                    memory_total: match spec.sharing {
                        // MIG and MPS cap memory per tenant: validation checks the fit.
                        Sharing::Mig { .. } | Sharing::Mps { .. } => 0.0,
                        _ => gt.memory_gib * GIB,
                    },
                });
            }
        }
        let id = self.nodes.len() as u32;
        self.nodes.push(Node {
            pool,
            state: NodeState::Provisioning,
            created: self.now,
            removed: None,
            gpus,
            cpu_free: spec.cpu.0,
            memory_free: spec.memory.0,
            pods: 0,
            empty_since: Some(self.now),
            images: Vec::new(),
        });
        self.pool_level_change(pool);
        id
    }

    fn node_ready(&mut self, n: u32) {
        let pool = self.nodes[n as usize].pool;
        self.nodes[n as usize].state = NodeState::Ready;
        self.nodes[n as usize].empty_since = Some(self.now);
        let per_hour = self.pools[pool].spot_interruptions_per_hour;
        let rng = &mut self.rng_spot;
        if let Some(at) = spot::next_interruption_ns(self.now, per_hour, || uniform(rng)) {
            self.q.push(at, Event::SpotNotice { node: n });
        }
        self.bind_pending(pool);
    }

    fn bind_pending(&mut self, pool: usize) {
        let pending: Vec<u32> = self.pools[pool].pending.drain(..).collect();
        for p in pending {
            if self.pods[p as usize].state == PodState::Pending && !self.try_bind(p, false) {
                // try_bind re-queued it.
            }
        }
    }

    fn spot_notice(&mut self, n: u32) {
        let pool = self.nodes[n as usize].pool;
        let notice = self.pools[pool].notice_ns;
        let ready = self.nodes[n as usize].state == NodeState::Ready;
        let Some(reclaim) = spot::reclaim_at(ready, self.now, notice) else {
            return;
        };
        self.nodes[n as usize].state = NodeState::Doomed;
        self.q.push(reclaim, Event::NodeKill { node: n });
        self.scaling_events.push(ScalingEvent {
            t_seconds: self.now as f64 / NS,
            target: format!("pool:{}", self.pools[pool].name),
            autoscaler: "spot".into(),
            from: self.live_nodes(pool) + 1,
            to: self.live_nodes(pool),
            reason: lab_decide::spot::notice_reason(n, notice),
        });
        // The node is drained: its pods are deleted and replaced elsewhere.
        let on_node: Vec<u32> = (0..self.pods.len() as u32)
            .filter(|p| {
                let pod = &self.pods[*p as usize];
                pod.node == Some(n) && pod.state != PodState::Terminated
            })
            .collect();
        let mut touched = Vec::new();
        for p in on_node {
            touched.push(self.pods[p as usize].deployment as usize);
            self.delete_pod(p);
        }
        touched.sort_unstable();
        touched.dedup();
        for d in touched {
            self.reconcile(d);
        }
    }

    fn node_kill(&mut self, n: u32) {
        let on_node: Vec<u32> = (0..self.pods.len() as u32)
            .filter(|p| {
                let pod = &self.pods[*p as usize];
                pod.node == Some(n) && pod.state != PodState::Terminated
            })
            .collect();
        for p in on_node {
            self.kill_pod(p, spot::RECLAIMED_REASON);
        }
        self.remove_node(n);
    }

    fn remove_node(&mut self, n: u32) {
        let pool = self.nodes[n as usize].pool;
        self.pool_level_change(pool);
        let node = &mut self.nodes[n as usize];
        node.state = NodeState::Gone;
        node.removed = Some(self.now);
        let d = (self.now - node.created) as u128;
        self.pools[pool].node_ns += d;
    }

    /// Cluster autoscaler: nodes for unschedulable pods, removal of idle nodes.
    fn ca_scan(&mut self) {
        let scan = self.sc.cluster_autoscaler.scan_interval.nanos().max(1);
        self.q.push(self.now + scan, Event::ClusterAutoscalerScan);
        let unneeded = self.sc.cluster_autoscaler.scale_down_unneeded_time.nanos();
        for pool in 0..self.pools.len() {
            let pending = self.pools[pool]
                .pending
                .iter()
                .filter(|p| self.pods[**p as usize].state == PodState::Pending)
                .count() as u32;
            let provisioning = self
                .nodes
                .iter()
                .filter(|n| n.pool == pool && n.state == NodeState::Provisioning)
                .count() as u32;
            if pending > 0 {
                let per_node = self.pods_per_node(pool).max(1);
                let add = cluster_autoscaler::nodes_to_add(cluster_autoscaler::PoolView {
                    unschedulable: pending,
                    pods_per_node: per_node,
                    provisioning,
                    live: self.live_nodes(pool),
                    min_nodes: self.pools[pool].min_nodes,
                    max_nodes: self.pools[pool].max_nodes,
                });
                if add > 0 {
                    let before = self.live_nodes(pool);
                    for _ in 0..add {
                        let n = self.add_node(pool);
                        let at = self.now + self.pools[pool].provisioning_ns;
                        self.q.push(at, Event::NodeReady { node: n });
                    }
                    self.scaling_events.push(ScalingEvent {
                        t_seconds: self.now as f64 / NS,
                        target: format!("pool:{}", self.pools[pool].name),
                        autoscaler: "cluster-autoscaler".into(),
                        from: before,
                        to: before + add,
                        reason: cluster_autoscaler::scale_up_reason(
                            pending,
                            per_node,
                            provisioning,
                        ),
                    });
                }
            }
            let mut live = self.live_nodes(pool);
            let views = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.pool == pool)
                .map(|(i, n)| cluster_autoscaler::NodeView {
                    id: i as u32,
                    ready: n.state == NodeState::Ready,
                    pods: n.pods,
                    empty_since: n.empty_since,
                });
            let gone = cluster_autoscaler::nodes_to_remove(
                views,
                live,
                self.pools[pool].min_nodes,
                self.now,
                unneeded,
            );
            for n in gone {
                self.remove_node(n);
                self.scaling_events.push(ScalingEvent {
                    t_seconds: self.now as f64 / NS,
                    target: format!("pool:{}", self.pools[pool].name),
                    autoscaler: "cluster-autoscaler".into(),
                    from: live,
                    to: live - 1,
                    reason: cluster_autoscaler::removal_reason(n, unneeded),
                });
                live -= 1;
            }
        }
    }

    /// How many pods of the first pending pod's kind fit on one new node.
    fn pods_per_node(&self, pool: usize) -> u32 {
        let Some(p) = self.pools[pool].pending.front() else {
            return 1;
        };
        let d = self.pods[*p as usize].deployment as usize;
        self.node_fit(d, pool).per_node.clamp(1, 10_000)
    }

    /// How many pods of deployment `d` an empty node of `pool` holds, and the
    /// resource that limits it.
    pub(crate) fn node_fit(&self, d: usize, pool: usize) -> NodeFit {
        let dep = &self.deployments[d];
        binding::node_fit(
            self.sc.node_pools[pool].node_shape(),
            &binding::PodRequest {
                cpu_milli: dep.cpu_milli,
                memory_bytes: dep.memory_bytes,
                gpu: dep.gpu_request.clone(),
            },
        )
    }

    // ----- metrics and autoscalers ---------------------------------------

    fn scrape(&mut self) {
        let interval = self.sc.metrics.scrape_interval.nanos().max(1);
        self.q.push(self.now + interval, Event::Scrape);
        let now = self.now;
        for pod in self.pods.iter_mut() {
            if !matches!(pod.state, PodState::Ready | PodState::Draining) {
                continue;
            }
            let elapsed = now.saturating_sub(pod.last_scrape).max(1) as f64;
            pod_outstanding(pod, now, 0);
            let busy = pod.busy_ns + pod.busy_since.map_or(0, |s| now - s);
            if let Some(s) = pod.busy_since.as_mut() {
                *s = now;
            }
            pod.busy_ns = 0;
            let busy_frac = (busy as f64 / elapsed).min(1.0);
            let dep = &self.deployments[pod.deployment as usize];
            pod.scraped = Some(SignalValues {
                // CPU tracks request handling: a baseline plus a share while busy.
                cpu_milli: cpu_usage_milli(dep.cpu_milli as f64, busy_frac),
                memory_bytes: dep.memory_bytes as f64,
                concurrency: pod.area as f64 / elapsed,
                rps: pod.completed_since_scrape as f64 / (elapsed / NS),
                queue_depth: pod.queue.len() as f64,
                gpu_utilization: 100.0 * busy_frac,
            });
            pod.area = 0;
            pod.completed_since_scrape = 0;
            pod.last_scrape = now;
        }
        let window = self.sc.metrics.rate_window.nanos().max(interval);
        for d in 0..self.deployments.len() {
            let total = self.deployments[d].completed_total;
            let rps = self.deployments[d].rate.scrape(now, total, window);
            let mut totals = SignalValues {
                rps,
                ..Default::default()
            };
            for p in &self.deployments[d].pods {
                if let Some(v) = self.pods[*p as usize].scraped {
                    if matches!(
                        self.pods[*p as usize].state,
                        PodState::Ready | PodState::Draining
                    ) {
                        totals.cpu_milli += v.cpu_milli;
                        totals.memory_bytes += v.memory_bytes;
                        totals.concurrency += v.concurrency;
                        totals.queue_depth += v.queue_depth;
                        totals.gpu_utilization += v.gpu_utilization;
                    }
                }
            }
            let buffered = self.deployments[d].activator.len() as f64;
            totals.concurrency += buffered;
            totals.queue_depth += buffered;
            self.deployments[d].last_totals = totals;
        }
    }

    /// KPA's per-second bucket: revision-wide concurrency averaged over the bucket,
    /// and requests per second over it (the queue-proxy's per-period stat, not the
    /// count since the last Prometheus scrape).
    fn record(&mut self, d: usize) {
        let Some(iv) = self.deployments[d].autoscaler.metric_interval() else {
            return;
        };
        let iv = (iv.as_nanos() as u64).max(1);
        self.q.push(
            self.now + iv,
            Event::Record {
                deployment: d as u32,
            },
        );
        self.dep_outstanding(d, 0);
        let dep = &mut self.deployments[d];
        let elapsed = self.now.saturating_sub(dep.last_record).max(1) as f64;
        let concurrency = dep.outstanding_area as f64 / elapsed;
        dep.outstanding_area = 0;
        dep.last_record = self.now;
        let completed = dep.completed_total;
        let rps = completed.saturating_sub(dep.completed_at_last_record) as f64 / (elapsed / NS);
        dep.completed_at_last_record = completed;
        let totals = SignalValues {
            concurrency,
            rps,
            queue_depth: dep.activator.len() as f64,
            ..dep.last_totals
        };
        let ready = dep.ready.len() as u32;
        dep.autoscaler.record(t(self.now), &totals, ready);
    }

    fn pod_samples(&self, d: usize) -> Vec<PodSample> {
        self.deployments[d]
            .pods
            .iter()
            .map(|p| {
                let pod = &self.pods[*p as usize];
                PodSample {
                    phase: match pod.state {
                        PodState::Pending => PodPhase::Pending,
                        PodState::Failed => PodPhase::Failed,
                        _ => PodPhase::Running,
                    },
                    ready: pod.state == PodState::Ready,
                    deleting: pod.state == PodState::Draining,
                    start: (pod.state != PodState::Pending).then(|| t(pod.bound)),
                    ready_transition: (pod.state == PodState::Ready).then(|| t(pod.ready_at)),
                    cpu_request_milli: self.deployments[d].cpu_milli,
                    memory_request_bytes: self.deployments[d].memory_bytes,
                    metrics: pod.scraped,
                }
            })
            .collect()
    }

    fn observation<'a>(&self, d: usize, pods: &'a [PodSample]) -> Observation<'a> {
        let dep = &self.deployments[d];
        let status = dep
            .pods
            .iter()
            .filter(|p| self.pods[**p as usize].state != PodState::Draining)
            .count() as u32;
        Observation {
            spec_replicas: dep.desired,
            status_replicas: status,
            pods,
            totals: Ok::<SignalValues, MetricError>(SignalValues {
                concurrency: with_activator(dep.last_totals.concurrency, dep.activator.len()),
                queue_depth: with_activator(dep.last_totals.queue_depth, dep.activator.len()),
                ..dep.last_totals
            }),
            activator_queue: dep.activator.len() as u32,
        }
    }

    fn schedule_decide(&mut self, d: usize, at: u64) {
        let dep = &mut self.deployments[d];
        dep.decide_gen += 1;
        let gen = dep.decide_gen;
        self.q.push(
            at,
            Event::Decide {
                deployment: d as u32,
                gen,
            },
        );
    }

    fn decide(&mut self, d: usize) {
        let samples = self.pod_samples(d);
        let decision = {
            let obs = self.observation(d, &samples);
            let now = t(self.now);
            self.deployments[d].autoscaler.decide(now, &obs)
        };
        let dep = &mut self.deployments[d];
        let from = dep.desired;
        let to = clamp_replicas(decision.desired, dep.min, dep.max);
        let next = (dep.autoscaler.next_decision().as_nanos() as u64).max(self.now + 1);
        self.schedule_decide(d, next);
        if to != from {
            self.deployments[d].desired = to;
            let kind = self.deployments[d].autoscaler.kind().to_string();
            self.scaling_events.push(ScalingEvent {
                t_seconds: self.now as f64 / NS,
                target: self.target_name(d),
                autoscaler: kind,
                from,
                to,
                reason: decision.reason,
            });
            self.reconcile(d);
        }
    }

    pub(crate) fn target_name(&self, d: usize) -> String {
        let dep = &self.deployments[d];
        let svc = &self.sc.services[dep.service].name;
        if self.sc.services[dep.service].versions.is_empty() {
            svc.clone()
        } else {
            format!("{svc}/{}", dep.name)
        }
    }

    // ----- time series ----------------------------------------------------

    /// Brings a pool's GPU-busy integrals up to now (before its busy level changes).
    pub(crate) fn pool_level_change(&mut self, pool: usize) {
        let now = self.now;
        let p = &mut self.pools[pool];
        let d = (now - p.busy_since) as f64;
        p.interval_busy_area += p.busy_level * d;
        p.busy_since = now;
    }

    fn interval_end(&mut self) {
        crate::output::interval_point(self);
        self.last_interval = self.now;
        self.q.push(self.now + self.interval_ns, Event::IntervalEnd);
    }

    pub fn interval_start(&self) -> u64 {
        self.last_interval
    }

    fn finish_integrals(&mut self) {
        // The last interval, whole or cut short, closes with the run.
        if self.now > self.last_interval {
            crate::output::interval_point(self);
            self.last_interval = self.now;
        }
        let now = self.now;
        for n in &mut self.nodes {
            if n.state != NodeState::Gone {
                self.pools[n.pool].node_ns += (now - n.created) as u128;
                n.created = now;
            }
        }
    }
}

/// Rounds a non-negative duration up to whole nanoseconds. Durations fit in an
/// i64, whose conversion is one instruction (u64's and `ceil` are not, on
/// baseline x86-64); anything past that range saturates, NaN reads as zero.
#[inline]
fn ceil_ns(exact: f64) -> u64 {
    if exact >= 9.0e18 {
        u64::MAX
    } else if exact > 0.0 {
        let whole = exact as i64;
        (whole + i64::from((whole as f64) < exact)) as u64
    } else {
        0
    }
}

fn pod_outstanding(pod: &mut Pod, now: u64, delta: i64) {
    // Integer time integrals: exact, and no float conversion per request.
    pod.area += u128::from(pod.outstanding) * u128::from(now - pod.area_since);
    pod.area_since = now;
    pod.outstanding = (i64::from(pod.outstanding) + delta).max(0) as u32;
}

pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

#[cfg(test)]
mod tests {
    use super::*;

    /// 50 req/s evenly spaced, 10 ms each, one fixed pod: 0.5 requests in
    /// flight at the pod without overhead.
    fn concurrency_seen(gateway: &str) -> (f64, f64) {
        let text = format!(
            r#"
name = "c"
[run]
duration = "2m"
[[node_pools]]
name = "cpu"
price_per_hour = 1
max_nodes = 1
min_nodes = 1
[gateway]
{gateway}
[[services]]
name = "s"
resources = {{ cpu = "1" }}
[[services.latency]]
gpu = "cpu"
batch_latency = {{ "1" = "10ms" }}
distribution = {{ kind = "deterministic" }}
[[traffic]]
arrivals = {{ process = "uniform" }}
phases = [{{ kind = "constant", rate = 50, duration = "2m" }}]
"#
        );
        let sc = lab_scenario::parse(&text, "c.toml", std::path::Path::new("."), &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let mut e = Engine::new(&sc, 1);
        e.run(&mut |_| Control::Continue);
        // The last scrape's pod concurrency (KEDA's and the HPA's view) and the
        // deployment's integral since the last KPA bucket (the KPA's).
        let scraped = e.deployments[0].last_totals.concurrency;
        e.dep_outstanding(0, 0);
        let dep = &e.deployments[0];
        let kpa = dep.outstanding_area as f64 / (e.now - dep.last_record) as f64;
        (scraped, kpa)
    }

    #[test]
    fn the_queue_proxys_overhead_adds_rate_times_overhead_to_the_concurrency() {
        let near = |got: f64, want: f64| (got - want).abs() < 0.02;
        let (scraped, kpa) = concurrency_seen("");
        assert!(near(scraped, 0.5) && near(kpa, 0.5), "{scraped} {kpa}");
        // 50 req/s × 20 ms more at the pod.
        let (scraped, kpa) = concurrency_seen(r#"queue_proxy_overhead = "20ms""#);
        assert!(near(scraped, 1.5) && near(kpa, 1.5), "{scraped} {kpa}");
        // The ingress hop is before the queue-proxy: not counted.
        let (scraped, kpa) = concurrency_seen(r#"ingress_overhead = "20ms""#);
        assert!(near(scraped, 0.5) && near(kpa, 0.5), "{scraped} {kpa}");
    }
}
