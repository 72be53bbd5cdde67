//! The simulated cluster's state: deployments (one per service version), pods,
//! nodes with their physical GPUs, and executing batches.

use lab_autoscale::{Autoscaler, SignalValues};
use lab_gpu::{ContentionParams, LatencyProfile, Sharing};
use lab_scenario::GpuRequest;
use std::collections::VecDeque;

/// One request on its way through the system.
#[derive(Debug, Clone, Copy)]
pub struct Req {
    pub arrival: u64,
    /// When it entered the current queue (pod batcher or activator).
    pub enqueued: u64,
    pub rows: u32,
    pub deployment: u32,
    /// It waited at the activator for a pod to start.
    pub cold: bool,
}

/// Batching parameters of a deployment's pods.
#[derive(Debug, Clone)]
pub struct Batching {
    pub max_rows: u32,
    pub delay_ns: u64,
    /// Sorted descending.
    pub preferred: Vec<u32>,
    pub max_queue_rows: u32,
    pub instances: u32,
    pub enabled: bool,
    /// Without batching or with one-row batches, each request is its own batch.
    pub one_request_per_batch: bool,
}

/// Pods of one version of one service, scaled by one autoscaler.
pub struct Deployment {
    pub service: usize,
    pub name: String,
    pub traffic_percent: f64,
    pub autoscaler: Autoscaler,
    pub desired: u32,
    pub min: u32,
    pub max: u32,
    pub pods: Vec<u32>,
    /// Ready, not draining pods: the routing set.
    pub ready: Vec<u32>,
    pub activator: VecDeque<Req>,
    pub pool: usize,
    pub gpu_request: GpuRequest,
    pub profile: LatencyProfile,
    /// The profile was measured on the whole GPU; MIG slices scale it by their speed.
    pub scale_by_slice: bool,
    pub batching: Batching,
    pub container_concurrency: u32,
    pub timeout_ns: u64,
    pub model_memory: f64,
    pub cpu_milli: u64,
    pub memory_bytes: u64,
    /// Share of one node's price a pod of this deployment is charged
    /// (`lab_decide::cost::node_share`).
    pub node_share: f64,
    pub pod_start_ns: u64,
    pub pull_ns: u64,
    pub load_ns: u64,
    pub probe_ns: u64,
    pub grace_ns: u64,
    pub decide_gen: u32,
    /// Requests outstanding at ready pods plus the activator, and its time integral
    /// since the last KPA bucket.
    pub outstanding: u64,
    pub outstanding_area: u128,
    pub outstanding_since: u64,
    pub last_record: u64,
    pub completed_total: u64,
    /// `completed_total` at the last KPA bucket, for the bucket's requests per second.
    pub completed_at_last_record: u64,
    /// Scrapes of completed_total for `rate()` windows.
    pub rate: lab_decide::metrics::RateWindow,
    pub last_totals: SignalValues,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PodState {
    /// Not bound to a node yet.
    Pending,
    /// Bound; pulling, loading, waiting for readiness.
    Starting,
    Ready,
    /// Deleted: finishing what it holds until its grace period ends.
    Draining,
    /// Crash-looping (out of GPU memory); holds its slot, never ready.
    Failed,
    Terminated,
}

pub struct Pod {
    pub deployment: u32,
    pub state: PodState,
    /// Bumped when the pod changes state, so stale timers are ignored.
    pub gen: u32,
    pub node: Option<u32>,
    /// (GPU index on the node, slot index) per requested device.
    pub slots: Vec<(u32, u32)>,
    pub created: u64,
    pub bound: u64,
    pub ready_at: u64,
    pub queue: VecDeque<Req>,
    pub queued_rows: u64,
    /// Requests inside executing batches.
    pub executing_reqs: u32,
    pub free_instances: u32,
    /// Batches executing on the pod (their slots name the pod).
    pub executing_batches: u32,
    pub timer_at: Option<u64>,
    /// Queued plus executing requests, and its time integral since the last scrape.
    pub outstanding: u32,
    pub area: u128,
    pub area_since: u64,
    pub busy_ns: u64,
    pub busy_since: Option<u64>,
    pub completed_since_scrape: u64,
    pub scraped: Option<SignalValues>,
    pub last_scrape: u64,
    pub cold_phases: [u64; 4],
    pub ended: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Provisioning,
    Ready,
    /// Spot notice received; gone at the given instant.
    Doomed,
    Gone,
}

pub struct PhysGpu {
    /// Pod bound to each slot (one for exclusive, `replicas` for time-slicing and
    /// MPS, one per MIG instance).
    pub slots: Vec<Option<u32>>,
    /// MIG profile of each slot (empty otherwise).
    pub slot_profile: Vec<String>,
    /// Relative speed of each slot (MIG instance SMs / GPU SMs; 1 otherwise).
    pub slot_speed: Vec<f64>,
    pub executing: Vec<u32>,
    pub memory_used: f64,
    pub memory_total: f64,
    /// Busy share of this GPU right now (0..1), for utilisation integrals.
    pub util: f64,
}

impl lab_decide::binding::GpuSlots for PhysGpu {
    fn slot_count(&self) -> usize {
        self.slots.len()
    }
    fn is_free(&self, slot: usize) -> bool {
        self.slots[slot].is_none()
    }
    fn profile(&self, slot: usize) -> &str {
        self.slot_profile.get(slot).map_or("", String::as_str)
    }
}

pub struct Node {
    pub pool: usize,
    pub state: NodeState,
    pub created: u64,
    pub removed: Option<u64>,
    pub gpus: Vec<PhysGpu>,
    pub cpu_free: f64,
    pub memory_free: f64,
    pub pods: u32,
    pub empty_since: Option<u64>,
    /// Image pulls per service: (service, done at).
    pub images: Vec<(usize, u64)>,
}

pub struct Pool {
    pub name: String,
    pub sharing: Sharing,
    pub contention: ContentionParams,
    pub price_per_hour: f64,
    pub gpus_per_node: u32,
    pub cpu: f64,
    pub memory: f64,
    pub min_nodes: u32,
    pub max_nodes: u32,
    pub provisioning_ns: u64,
    /// Interruptions per node-hour; 0 for on-demand capacity.
    pub spot_interruptions_per_hour: f64,
    pub notice_ns: u64,
    pub has_gpu: bool,
    pub pending: VecDeque<u32>,
    /// Integrals for cost and utilisation.
    pub node_ns: u128,
    pub busy_level: f64,
    pub busy_since: u64,
    pub interval_busy_area: f64,
}

#[derive(Default)]
pub struct Batch {
    /// The slot holds an executing batch (otherwise it is on the free list).
    pub live: bool,
    pub pod: u32,
    pub reqs: Vec<Req>,
    /// Seconds of work left at full speed.
    pub remaining: f64,
    pub speed: f64,
    pub updated: u64,
    pub gen: u32,
    /// Physical GPU and slot it runs on, if any.
    pub gpu: Option<(u32, u32, u32)>,
}
