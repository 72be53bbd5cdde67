//! Binding pods to nodes: which GPU slots a pod takes on a node, how many
//! pods of one kind an empty node holds, and which resource runs out first
//! (cpu, memory, whole GPUs, time-slice or MPS replicas, MIG instances of the
//! requested profile). The simulator binds with these rules and `lab
//! validate` checks that `minReplicas` fit with the same ones.

use lab_gpu::Sharing;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// What a pod asks of a GPU.
#[derive(Debug, Clone, PartialEq)]
pub enum GpuRequest {
    None,
    /// `nvidia.com/gpu: n` (one time-slice or MPS replica each on a shared pool).
    Devices(u32),
    /// `nvidia.com/mig-<profile>: 1`.
    Mig(String),
}

/// What one pod asks of its node.
#[derive(Debug, Clone, PartialEq)]
pub struct PodRequest {
    pub cpu_milli: u64,
    pub memory_bytes: u64,
    pub gpu: GpuRequest,
}

/// A node of a pool, as binding sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NodeShape<'a> {
    /// CPUs.
    pub cpu: f64,
    pub memory_bytes: f64,
    pub gpus_per_node: u32,
    pub sharing: &'a Sharing,
}

/// What an empty node of a pool holds of one kind of pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFit {
    /// 0 when no node of the pool can ever hold one.
    pub per_node: u32,
    /// The limiting resource, in words (`nvidia.com/mig-3g.20gb: ...`).
    pub limit: String,
}

/// One physical GPU's slots as a binder sees them: one slot for a whole GPU,
/// `replicas` for time-slicing and MPS, one per MIG instance.
pub trait GpuSlots {
    fn slot_count(&self) -> usize;
    fn is_free(&self, slot: usize) -> bool;
    /// The MIG profile of the slot, `""` when the GPU is not partitioned.
    fn profile(&self, slot: usize) -> &str;
}

/// A GPU as a list of (MIG profile or `""`, tenant).
impl<T> GpuSlots for Vec<(String, Option<T>)> {
    fn slot_count(&self) -> usize {
        self.len()
    }
    fn is_free(&self, slot: usize) -> bool {
        self[slot].1.is_none()
    }
    fn profile(&self, slot: usize) -> &str {
        &self[slot].0
    }
}

/// Time-sliced tenants share one GPU's memory unisolated: their models
/// together must fit (a byte of slack for float sums). A `total` of 0 means
/// the memory is partitioned (MIG, MPS) and checked elsewhere.
pub fn gpu_memory_overflows(used_bytes: f64, total_bytes: f64) -> bool {
    total_bytes > 0.0 && used_bytes > total_bytes + 1.0
}

/// Room for cpu and memory on a node (a hair of tolerance for float sums).
pub fn has_room(cpu_free: f64, memory_free: f64, cpu: f64, memory: f64) -> bool {
    cpu_free + 1e-9 >= cpu && memory_free + 1e-9 >= memory
}

/// The (GPU, slot) pairs a pod takes on a node with these GPUs, or `None`
/// when it does not fit. `nvidia.com/gpu: n` takes one free slot on each of
/// `n` GPUs, least-used GPUs first, as the device plugin hands out replicas;
/// a MIG request takes the first free instance of its profile.
pub fn choose_slots<G: GpuSlots>(gpus: &[G], request: &GpuRequest) -> Option<Vec<(usize, usize)>> {
    match request {
        GpuRequest::None => Some(Vec::new()),
        GpuRequest::Devices(k) => {
            let k = *k as usize;
            let used = |g: &G| (0..g.slot_count()).filter(|s| !g.is_free(*s)).count();
            let mut order: Vec<usize> = (0..gpus.len()).collect();
            // Stable: among equally used GPUs, the lower index first.
            order.sort_by_key(|g| used(&gpus[*g]));
            let got: Vec<(usize, usize)> = order
                .into_iter()
                .filter_map(|g| {
                    (0..gpus[g].slot_count())
                        .find(|s| gpus[g].is_free(*s))
                        .map(|s| (g, s))
                })
                .take(k)
                .collect();
            (got.len() == k).then_some(got)
        }
        GpuRequest::Mig(profile) => gpus.iter().enumerate().find_map(|(g, gpu)| {
            (0..gpu.slot_count())
                .find(|s| gpu.is_free(*s) && gpu.profile(*s) == profile)
                .map(|s| vec![(g, s)])
        }),
    }
}

/// How many pods like `pod` an empty node of `pool` holds.
pub fn node_fit(pool: NodeShape<'_>, pod: &PodRequest) -> NodeFit {
    let by_cpu = if pod.cpu_milli > 0 {
        (pool.cpu / (pod.cpu_milli as f64 / 1000.0)) as u32
    } else {
        u32::MAX
    };
    let by_mem = if pod.memory_bytes > 0 {
        (pool.memory_bytes / pod.memory_bytes as f64) as u32
    } else {
        u32::MAX
    };
    let (by_gpu, gpu_limit) = match &pod.gpu {
        GpuRequest::None => (u32::MAX, String::new()),
        GpuRequest::Devices(k) => {
            let slots = pool.gpus_per_node * pool.sharing.slots_per_gpu();
            let devices = match pool.sharing {
                Sharing::Mig { layout } => {
                    let mut kinds: Vec<String> =
                        layout.iter().map(|p| format!("nvidia.com/mig-{p}")).collect();
                    kinds.dedup();
                    format!(
                        "the MIG layout {layout:?} exposes {} device(s) per GPU, each an instance ({}) under the single strategy",
                        layout.len(),
                        kinds.join(", ")
                    )
                }
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
        GpuRequest::Mig(profile) => match pool.sharing {
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
            pool.cpu
        )
    } else {
        format!(
            "memory: {:.1} GiB per pod, {:.1} GiB per node",
            pod.memory_bytes as f64 / GIB,
            pool.memory_bytes / GIB
        )
    };
    NodeFit { per_node, limit }
}
