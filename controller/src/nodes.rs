//! Emulated node pools: nodes are accounting objects. They take the pool's
//! provisioning time to appear, hold pods by the binding rules of
//! `lab-decide` (the simulator's), and are added and removed by its cluster
//! autoscaler. Nothing here runs a process; a bound pod's process is the
//! supervisor's business.

use lab_decide::binding::{self, GpuRequest, PodRequest};
use lab_decide::cluster_autoscaler;
use lab_gpu::Sharing;
use lab_scenario::NodePoolSpec;

pub type NodeId = usize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Provisioning {
        ready_at: u64,
    },
    Ready,
    /// A spot notice arrived: no new pods, reclaimed at `at`.
    Doomed {
        at: u64,
    },
    Gone,
}

/// One physical GPU: per slot, the MIG profile (or `""`) and its tenant pod.
pub type Gpu = Vec<(String, Option<u64>)>;

#[derive(Debug, Clone)]
pub struct Node {
    pub pool: usize,
    pub state: NodeState,
    pub created: u64,
    pub removed: Option<u64>,
    pub gpus: Vec<Gpu>,
    pub cpu_free: f64,
    pub memory_free: f64,
    pub pods: u32,
    pub empty_since: Option<u64>,
    /// When the node had (or will have) each service's image.
    pub images: Vec<(usize, u64)>,
    /// A spot node's interruption notice, drawn when it became ready.
    pub notice_at: Option<u64>,
}

/// Where a pod was bound.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub node: NodeId,
    /// (GPU, slot) pairs it holds.
    pub slots: Vec<(usize, usize)>,
}

/// A change of node count, for the scaling events.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolChange {
    pub pool: usize,
    pub from: u32,
    pub to: u32,
    pub reason: String,
}

#[derive(Debug, Clone)]
pub struct Nodes {
    pub pools: Vec<NodePoolSpec>,
    pub nodes: Vec<Node>,
}

impl Nodes {
    /// The pools with their initial nodes, ready at `now`.
    pub fn new(pools: &[NodePoolSpec], now: u64) -> Nodes {
        let mut n = Nodes {
            pools: pools.to_vec(),
            nodes: Vec::new(),
        };
        for (i, p) in pools.iter().enumerate() {
            for _ in 0..p.initial_nodes.unwrap_or(p.min_nodes) {
                n.add_ready(i, now);
            }
        }
        n
    }

    /// A node that exists from `now` on (the warm start's own nodes).
    pub fn add_ready(&mut self, pool: usize, now: u64) -> NodeId {
        let id = self.add(pool, now);
        self.nodes[id].state = NodeState::Ready;
        id
    }

    fn add(&mut self, pool: usize, now: u64) -> NodeId {
        let spec = &self.pools[pool];
        let gpus = if spec.gpu.is_some() {
            (0..spec.gpus_per_node)
                .map(|_| match &spec.sharing {
                    Sharing::Mig { layout } => layout.iter().map(|p| (p.clone(), None)).collect(),
                    other => (0..other.slots_per_gpu())
                        .map(|_| (String::new(), None))
                        .collect(),
                })
                .collect()
        } else {
            Vec::new()
        };
        self.nodes.push(Node {
            pool,
            state: NodeState::Provisioning {
                ready_at: now + spec.provisioning_time.nanos(),
            },
            created: now,
            removed: None,
            gpus,
            cpu_free: spec.cpu.0,
            memory_free: spec.memory.0,
            pods: 0,
            empty_since: Some(now),
            images: Vec::new(),
            notice_at: None,
        });
        self.nodes.len() - 1
    }

    /// Nodes that exist or are coming (the cluster autoscaler's count).
    pub fn live(&self, pool: usize) -> u32 {
        self.nodes
            .iter()
            .filter(|n| {
                n.pool == pool
                    && matches!(n.state, NodeState::Provisioning { .. } | NodeState::Ready)
            })
            .count() as u32
    }

    pub fn ready(&self, pool: usize) -> u32 {
        self.nodes
            .iter()
            .filter(|n| n.pool == pool && n.state == NodeState::Ready)
            .count() as u32
    }

    /// Provisioning nodes whose time has come become ready; returns them.
    pub fn advance(&mut self, now: u64) -> Vec<NodeId> {
        let mut out = Vec::new();
        for (i, n) in self.nodes.iter_mut().enumerate() {
            if let NodeState::Provisioning { ready_at } = n.state {
                if ready_at <= now {
                    n.state = NodeState::Ready;
                    n.empty_since = Some(now);
                    out.push(i);
                }
            }
        }
        out
    }

    /// The next instant a provisioning node becomes ready.
    pub fn next_ready(&self) -> Option<u64> {
        self.nodes
            .iter()
            .filter_map(|n| match n.state {
                NodeState::Provisioning { ready_at } => Some(ready_at),
                _ => None,
            })
            .min()
    }

    /// Binds a pod of `service` asking `req` on a ready node of `pool`, the
    /// first that has room, taking GPU slots by `lab_decide::binding`.
    pub fn bind(&mut self, pool: usize, pod: u64, req: &PodRequest) -> Option<Placement> {
        let cpu = req.cpu_milli as f64 / 1000.0;
        let mem = req.memory_bytes as f64;
        let (node, slots) = self.nodes.iter().enumerate().find_map(|(i, n)| {
            if n.pool != pool
                || n.state != NodeState::Ready
                || !binding::has_room(n.cpu_free, n.memory_free, cpu, mem)
            {
                return None;
            }
            binding::choose_slots(&n.gpus, &req.gpu).map(|s| (i, s))
        })?;
        let n = &mut self.nodes[node];
        n.cpu_free -= cpu;
        n.memory_free -= mem;
        n.pods += 1;
        n.empty_since = None;
        for (g, s) in &slots {
            n.gpus[*g][*s].1 = Some(pod);
        }
        Some(Placement { node, slots })
    }

    /// Gives a pod's resources back.
    pub fn release(&mut self, placement: &Placement, req: &PodRequest, now: u64) {
        let n = &mut self.nodes[placement.node];
        n.cpu_free += req.cpu_milli as f64 / 1000.0;
        n.memory_free += req.memory_bytes as f64;
        n.pods = n.pods.saturating_sub(1);
        for (g, s) in &placement.slots {
            n.gpus[*g][*s].1 = None;
        }
        if n.pods == 0 {
            n.empty_since = Some(now);
        }
    }

    /// The instant the node has the image of `service`, if it pulled it.
    pub fn image_ready(&self, node: NodeId, service: usize) -> Option<u64> {
        self.nodes[node]
            .images
            .iter()
            .find(|(s, _)| *s == service)
            .map(|(_, t)| *t)
    }

    pub fn record_image(&mut self, node: NodeId, service: usize, at: u64) {
        self.nodes[node].images.push((service, at));
    }

    /// One cluster-autoscaler scan of `pool`: nodes for `unschedulable` pods
    /// that fit `per_node` to a node, and removal of nodes empty for
    /// `unneeded_ns`.
    pub fn scan(
        &mut self,
        pool: usize,
        unschedulable: u32,
        per_node: u32,
        unneeded_ns: u64,
        now: u64,
    ) -> Vec<PoolChange> {
        let mut changes = Vec::new();
        let provisioning = self
            .nodes
            .iter()
            .filter(|n| n.pool == pool && matches!(n.state, NodeState::Provisioning { .. }))
            .count() as u32;
        let spec = &self.pools[pool];
        if unschedulable > 0 {
            let add = cluster_autoscaler::nodes_to_add(cluster_autoscaler::PoolView {
                unschedulable,
                pods_per_node: per_node.max(1),
                provisioning,
                live: self.live(pool),
                min_nodes: spec.min_nodes,
                max_nodes: spec.max_nodes,
            });
            if add > 0 {
                let before = self.live(pool);
                for _ in 0..add {
                    self.add(pool, now);
                }
                changes.push(PoolChange {
                    pool,
                    from: before,
                    to: before + add,
                    reason: cluster_autoscaler::scale_up_reason(
                        unschedulable,
                        per_node,
                        provisioning,
                    ),
                });
            }
        }
        let mut live = self.live(pool);
        let views = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.pool == pool)
            .map(|(id, n)| cluster_autoscaler::NodeView {
                id,
                ready: n.state == NodeState::Ready,
                pods: n.pods,
                empty_since: n.empty_since,
            });
        let gone = cluster_autoscaler::nodes_to_remove(
            views,
            live,
            self.pools[pool].min_nodes,
            now,
            unneeded_ns,
        );
        for n in gone {
            self.remove(n, now);
            changes.push(PoolChange {
                pool,
                from: live,
                to: live - 1,
                reason: cluster_autoscaler::removal_reason(n, unneeded_ns),
            });
            live -= 1;
        }
        changes
    }

    /// The next spot notice or reclaim due.
    pub fn next_spot(&self) -> Option<u64> {
        self.nodes
            .iter()
            .filter_map(|n| match n.state {
                NodeState::Ready => n.notice_at,
                NodeState::Doomed { at } => Some(at),
                _ => None,
            })
            .min()
    }

    pub fn remove(&mut self, node: NodeId, now: u64) {
        let n = &mut self.nodes[node];
        n.state = NodeState::Gone;
        n.removed = Some(now);
    }

    /// Node-nanoseconds of `pool` up to `now` (nodes are billed from their
    /// request to their removal, as a cloud bills an instance), summed as
    /// lab-decide's cost accounting does.
    pub fn node_ns(&self, pool: usize, now: u64) -> u128 {
        let of_pool = || self.nodes.iter().filter(move |n| n.pool == pool);
        let closed: u128 = of_pool()
            .filter_map(|n| {
                n.removed
                    .filter(|r| *r <= now)
                    .map(|r| u128::from(r - n.created))
            })
            .sum();
        let live = of_pool()
            .filter(|n| n.removed.is_none_or(|r| r > now))
            .map(|n| n.created);
        lab_decide::cost::node_ns(closed, live, now)
    }

    /// What the device plugin tells a pod about its GPU: the `--sharing`
    /// argument of its emulated GPU and the id of the physical GPU, so that
    /// co-tenants contend as on the real node.
    pub fn sharing_arg(&self, placement: &Placement, req: &GpuRequest) -> Option<(String, String)> {
        let (g, s) = *placement.slots.first()?;
        let node = &self.nodes[placement.node];
        let spec = &self.pools[node.pool];
        let sharing = match (&spec.sharing, req) {
            (Sharing::None, _) => "none".to_string(),
            (Sharing::TimeSlicing { replicas }, _) => format!("time-slicing:{replicas}"),
            (Sharing::Mps { replicas }, _) => format!("mps:{replicas}"),
            (Sharing::Mig { .. }, _) => format!("mig:{}", node.gpus[g][s].0),
        };
        Some((sharing, format!("node{}-gpu{g}", placement.node)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_units::{Dur, Quantity};

    fn pool(sharing: Sharing, max_nodes: u32) -> NodePoolSpec {
        let gpu = if matches!(sharing, Sharing::Mig { .. }) {
            "A100-40GB"
        } else {
            "L4"
        };
        NodePoolSpec {
            name: "gpu".into(),
            gpu: Some(gpu.into()),
            gpus_per_node: 1,
            cpu: Quantity(8.0),
            memory: Quantity(32.0 * 1024.0 * 1024.0 * 1024.0),
            sharing,
            contention: Default::default(),
            capacity_type: Default::default(),
            spot_interruptions_per_hour: 0.0,
            interruption_notice: Dur::from_secs(120),
            price_per_hour: 1.0,
            min_nodes: 1,
            max_nodes,
            initial_nodes: None,
            provisioning_time: Dur::from_secs(60),
        }
    }

    fn gpu_pod() -> PodRequest {
        PodRequest {
            cpu_milli: 1000,
            memory_bytes: 1 << 30,
            gpu: GpuRequest::Devices(1),
        }
    }

    #[test]
    fn time_sliced_gpu_takes_as_many_pods_as_replicas_then_none() {
        let mut n = Nodes::new(&[pool(Sharing::TimeSlicing { replicas: 2 }, 1)], 0);
        let a = n.bind(0, 1, &gpu_pod()).expect("first replica");
        let b = n.bind(0, 2, &gpu_pod()).expect("second replica");
        assert_eq!(a.node, b.node);
        assert_ne!(a.slots, b.slots);
        assert!(n.bind(0, 3, &gpu_pod()).is_none());
        assert_eq!(
            n.sharing_arg(&a, &GpuRequest::Devices(1)),
            Some(("time-slicing:2".into(), "node0-gpu0".into()))
        );
        n.release(&a, &gpu_pod(), 5);
        assert!(n.bind(0, 3, &gpu_pod()).is_some());
    }

    #[test]
    fn the_cluster_autoscaler_adds_a_node_that_appears_after_provisioning_and_removes_it_when_empty(
    ) {
        let mut n = Nodes::new(&[pool(Sharing::None, 2)], 0);
        n.bind(0, 1, &gpu_pod()).unwrap();
        assert!(n.bind(0, 2, &gpu_pod()).is_none());
        let ch = n.scan(0, 1, 1, 600_000_000_000, 1_000);
        assert_eq!((ch[0].from, ch[0].to), (1, 2));
        assert_eq!(n.live(0), 2);
        assert_eq!(n.ready(0), 1);
        assert_eq!(n.next_ready(), Some(1_000 + 60_000_000_000));
        assert!(n.advance(59_000_000_000).is_empty());
        assert_eq!(n.advance(61_000_000_000), vec![1]);
        let placed = n.bind(0, 2, &gpu_pod()).unwrap();
        assert_eq!(placed.node, 1);
        n.release(&placed, &gpu_pod(), 62_000_000_000);
        // Not empty long enough, then long enough: removed down to min_nodes.
        assert!(n.scan(0, 0, 1, 600_000_000_000, 100_000_000_000).is_empty());
        let ch = n.scan(0, 0, 1, 600_000_000_000, 700_000_000_000);
        assert_eq!((ch[0].from, ch[0].to), (2, 1));
        assert_eq!(n.live(0), 1);
        assert_eq!(
            n.node_ns(0, 700_000_000_000),
            700_000_000_000 + (700_000_000_000 - 1_000)
        );
    }

    #[test]
    fn mig_pods_get_their_instance_profile() {
        let mut n = Nodes::new(
            &[pool(
                Sharing::Mig {
                    layout: vec!["3g.20gb".into(), "1g.5gb".into()],
                },
                1,
            )],
            0,
        );
        let req = PodRequest {
            cpu_milli: 100,
            memory_bytes: 0,
            gpu: GpuRequest::Mig("1g.5gb".into()),
        };
        let p = n.bind(0, 1, &req).unwrap();
        assert_eq!(p.slots, vec![(0, 1)]);
        assert_eq!(n.sharing_arg(&p, &req.gpu).unwrap().0, "mig:1g.5gb");
        assert!(n.bind(0, 2, &req).is_none());
    }
}
