//! Cost accounting, OpenCost-style: a pool pays its price for every hour each
//! of its nodes exists (provisioning and draining included); each pod is
//! charged its share of a node's price for the hours it is bound; what no pod
//! is charged is idle cost. Projections assume a 730-hour month.
//!
//! The float operations are the simulator's, in its order: results.json's
//! cost figures are compared bit for bit across versions.

use crate::binding::{GpuRequest, NodeShape};
use lab_gpu::{GpuType, COMPUTE_SLICES};

const NS: f64 = 1e9;

/// Hours in a month for projections (365 × 24 / 12), as cloud price sheets
/// use.
pub const MONTH_HOURS: f64 = 730.0;

/// Hours in `ns` nanoseconds.
pub fn hours(ns: u128) -> f64 {
    ns as f64 / NS / 3600.0
}

/// A pool's node-nanoseconds up to `now`: `closed_ns` from nodes already
/// gone, plus each live node's time since `created` (one item per node).
pub fn node_ns(closed_ns: u128, live_created: impl IntoIterator<Item = u64>, now: u64) -> u128 {
    let live: u128 = live_created
        .into_iter()
        .map(|created| u128::from(now.saturating_sub(created)))
        .sum();
    closed_ns + live
}

/// What a pool has cost: node-hours and USD at `price_per_hour` per node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolUsage {
    pub node_hours: f64,
    pub usd: f64,
}

/// The node-hours and USD of `node_ns` node-nanoseconds.
pub fn pool_usage(node_ns: u128, price_per_hour: f64) -> PoolUsage {
    let node_hours = hours(node_ns);
    PoolUsage {
        node_hours,
        usd: node_hours * price_per_hour,
    }
}

/// GPU-hours of `node_hours` on nodes with `gpus_per_node` GPUs.
pub fn gpu_hours(node_hours: f64, gpus_per_node: u32) -> f64 {
    node_hours * f64::from(gpus_per_node)
}

/// What one pod asks for, as the share rule reads it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Requested<'a> {
    /// CPUs.
    pub cpu: f64,
    pub memory_bytes: f64,
    pub gpu: &'a GpuRequest,
}

/// The share of one node's price a pod is charged while bound. A GPU pod
/// pays for the devices it takes: `n` of the node's GPU devices
/// (time-slice or MPS replicas count as devices), or a MIG instance's
/// compute slices out of 7 of one GPU; GPU pods' cpu and memory come with
/// the GPUs. A CPU-only pod pays its larger fraction of the node's cpu or
/// memory, at most the whole node. `gpu_type` names the node's GPU (for MIG
/// slices; an unknown profile counts one slice).
pub fn node_share(pod: Requested<'_>, node: NodeShape<'_>, gpu_type: Option<&GpuType>) -> f64 {
    match pod.gpu {
        GpuRequest::None => (pod.cpu / node.cpu.max(1e-9))
            .max(pod.memory_bytes / node.memory_bytes.max(1e-9))
            .min(1.0),
        GpuRequest::Devices(n) => {
            f64::from(*n)
                / f64::from(node.sharing.slots_per_gpu().max(1))
                / f64::from(node.gpus_per_node.max(1))
        }
        GpuRequest::Mig(profile) => {
            let slices = gpu_type
                .and_then(|g| g.mig_profile(profile))
                .map_or(1, |m| m.compute_slices);
            f64::from(slices) / f64::from(COMPUTE_SLICES) / f64::from(node.gpus_per_node.max(1))
        }
    }
}

/// What a pod bound from `bound` to `end` is charged, at `share` of a node
/// priced `price_per_hour`.
pub fn pod_usd(bound: u64, end: u64, share: f64, price_per_hour: f64) -> f64 {
    let h = end.saturating_sub(bound) as f64 / NS / 3600.0;
    h * share * price_per_hour
}

/// The part of the nodes' cost no pod was charged (never negative, whatever
/// float sums do).
pub fn idle_usd(total_usd: f64, attributed_usd: f64) -> f64 {
    (total_usd - attributed_usd).max(0.0)
}

/// `usd` spent over `hours`, projected to a [`MONTH_HOURS`] month at the
/// same rate; 0 for a run of no time.
pub fn monthly(usd: f64, hours: f64) -> f64 {
    if hours > 0.0 {
        usd / hours * MONTH_HOURS
    } else {
        0.0
    }
}

/// One pool's node time over a run, for [`tally`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolTime<'a> {
    pub name: &'a str,
    pub node_ns: u128,
    pub price_per_hour: f64,
    pub gpus_per_node: u32,
}

/// The cost section of a run `end_ns` long: each pool's node-hours at its
/// price (the total is their sum, in pool order), the USD charged to each
/// service, monthly projections, and what no pod was charged (idle).
pub fn tally<'a>(
    pools: impl IntoIterator<Item = PoolTime<'a>>,
    services: impl IntoIterator<Item = (String, f64)>,
    end_ns: u64,
) -> lab_results::Cost {
    let run_hours = hours(u128::from(end_ns));
    let mut total = 0.0;
    let by_pool: Vec<lab_results::PoolCost> = pools
        .into_iter()
        .map(|p| {
            let usage = pool_usage(p.node_ns, p.price_per_hour);
            total += usage.usd;
            lab_results::PoolCost {
                name: p.name.to_string(),
                usd: usage.usd,
                node_hours: usage.node_hours,
                gpu_hours: gpu_hours(usage.node_hours, p.gpus_per_node),
                monthly_usd: monthly(usage.usd, run_hours),
            }
        })
        .collect();
    let by_service: Vec<lab_results::ServiceCost> = services
        .into_iter()
        .map(|(name, usd)| lab_results::ServiceCost {
            name,
            usd,
            monthly_usd: monthly(usd, run_hours),
        })
        .collect();
    let attributed: f64 = by_service.iter().map(|s| s.usd).sum();
    lab_results::Cost {
        total_usd: total,
        monthly_usd: monthly(total, run_hours),
        by_pool,
        by_service,
        idle_usd: idle_usd(total, attributed),
    }
}
