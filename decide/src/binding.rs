//! Binding pods to nodes: how many pods of one kind an empty node holds, and
//! which resource runs out first (cpu, memory, whole GPUs, time-slice or MPS
//! replicas, MIG instances of the requested profile).

use lab_gpu::Sharing;
use lab_scenario::{GpuRequest, NodePoolSpec};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// What one pod asks of its node.
#[derive(Debug, Clone, PartialEq)]
pub struct PodRequest {
    pub cpu_milli: u64,
    pub memory_bytes: u64,
    pub gpu: GpuRequest,
}

/// What an empty node of a pool holds of one kind of pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFit {
    /// 0 when no node of the pool can ever hold one.
    pub per_node: u32,
    /// The limiting resource, in words (`nvidia.com/mig-3g.20gb: ...`).
    pub limit: String,
}

/// How many pods like `pod` an empty node of `pool` holds.
pub fn node_fit(pool: &NodePoolSpec, pod: &PodRequest) -> NodeFit {
    let by_cpu = if pod.cpu_milli > 0 {
        (pool.cpu.0 / (pod.cpu_milli as f64 / 1000.0)) as u32
    } else {
        u32::MAX
    };
    let by_mem = if pod.memory_bytes > 0 {
        (pool.memory.0 / pod.memory_bytes as f64) as u32
    } else {
        u32::MAX
    };
    let (by_gpu, gpu_limit) = match &pod.gpu {
        GpuRequest::None => (u32::MAX, String::new()),
        GpuRequest::Devices(k) => {
            let slots = pool.gpus_per_node * pool.sharing.slots_per_gpu();
            let devices = match &pool.sharing {
                Sharing::Mig { layout } => format!(
                    "the MIG layout {layout:?} exposes {} device(s) per GPU",
                    layout.len()
                ),
                Sharing::None => "one device per GPU".to_string(),
                other => format!(
                    "{} exposes {} device(s) per GPU",
                    other.label(),
                    other.slots_per_gpu()
                ),
            };
            (
                slots / (*k).max(1),
                format!(
                    "nvidia.com/gpu: {k} per pod; {devices}, {} GPU(s) per node",
                    pool.gpus_per_node
                ),
            )
        }
        GpuRequest::Mig(profile) => match &pool.sharing {
            Sharing::Mig { layout } => {
                let per_gpu = layout.iter().filter(|l| *l == profile).count() as u32;
                (
                    pool.gpus_per_node * per_gpu,
                    format!(
                        "nvidia.com/mig-{profile}: the MIG layout {layout:?} has {per_gpu} such instance(s) per GPU, {} GPU(s) per node",
                        pool.gpus_per_node
                    ),
                )
            }
            _ => (
                0,
                format!(
                    "nvidia.com/mig-{profile}: the pool's GPUs are not partitioned with MIG (sharing {})",
                    pool.sharing.label()
                ),
            ),
        },
    };
    let per_node = by_cpu.min(by_mem).min(by_gpu);
    let limit = if per_node == by_gpu && !gpu_limit.is_empty() {
        gpu_limit
    } else if per_node == by_cpu {
        format!(
            "cpu: {} per pod, {} per node",
            pod.cpu_milli as f64 / 1000.0,
            pool.cpu.0
        )
    } else {
        format!(
            "memory: {:.1} GiB per pod, {:.1} GiB per node",
            pod.memory_bytes as f64 / GIB,
            pool.memory.0 / GIB
        )
    };
    NodeFit { per_node, limit }
}
