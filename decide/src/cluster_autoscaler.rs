//! The cluster autoscaler's two decisions at each scan: how many nodes to add
//! for unschedulable pods, and which empty nodes to remove.

/// A node pool as the cluster autoscaler sees it at one scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolView {
    /// Pods of the pool that no node can take now.
    pub unschedulable: u32,
    /// Of those, how many one new node holds (at least 1).
    pub pods_per_node: u32,
    /// Nodes being provisioned, which will take some of them.
    pub provisioning: u32,
    /// Nodes provisioning or ready.
    pub live: u32,
    pub min_nodes: u32,
    pub max_nodes: u32,
}

/// Nodes to add: enough for the unschedulable pods beyond what is already
/// provisioning, within `max_nodes`.
pub fn nodes_to_add(p: PoolView) -> u32 {
    if p.unschedulable == 0 {
        return 0;
    }
    let need = p
        .unschedulable
        .div_ceil(p.pods_per_node.max(1))
        .saturating_sub(p.provisioning);
    need.min(p.max_nodes.saturating_sub(p.live))
}

/// A node is unneeded once it has been empty for `scale-down-unneeded-time`.
pub fn is_unneeded(empty_since: Option<u64>, now: u64, unneeded_ns: u64) -> bool {
    empty_since.is_some_and(|s| now.saturating_sub(s) >= unneeded_ns)
}

/// How many of the unneeded nodes may go without taking the pool below
/// `min_nodes`.
pub fn removable(unneeded: u32, live: u32, min_nodes: u32) -> u32 {
    unneeded.min(live.saturating_sub(min_nodes))
}

/// One node of a pool as the scale-down half of a scan sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeView<Id> {
    pub id: Id,
    /// Ready (not provisioning, not doomed, not gone).
    pub ready: bool,
    pub pods: u32,
    pub empty_since: Option<u64>,
}

/// The nodes a scan removes, in the order given: ready, empty and unneeded
/// ones, as many as `min_nodes` allows out of `live`.
pub fn nodes_to_remove<Id: Copy>(
    nodes: impl IntoIterator<Item = NodeView<Id>>,
    live: u32,
    min_nodes: u32,
    now: u64,
    unneeded_ns: u64,
) -> Vec<Id> {
    let empty: Vec<Id> = nodes
        .into_iter()
        .filter(|n| n.ready && n.pods == 0 && is_unneeded(n.empty_since, now, unneeded_ns))
        .map(|n| n.id)
        .collect();
    let allowed = removable(empty.len() as u32, live, min_nodes) as usize;
    empty.into_iter().take(allowed).collect()
}

/// Why a scan added nodes, as the scaling event says it.
pub fn scale_up_reason(unschedulable: u32, per_node: u32, provisioning: u32) -> String {
    format!(
        "{unschedulable} unschedulable pod(s), {per_node} fit per node, {provisioning} node(s) already provisioning"
    )
}

/// Why a scan removed a node, as the scaling event says it.
pub fn removal_reason(node: impl std::fmt::Display, unneeded_ns: u64) -> String {
    format!("node {node} empty for {}", lab_units::Dur(unneeded_ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ready_empty_unneeded_nodes_go_and_never_below_min_nodes() {
        let node = |id, ready, pods, empty_since| NodeView {
            id,
            ready,
            pods,
            empty_since,
        };
        let nodes = [
            node(0, true, 0, Some(0)),
            node(1, true, 2, None),
            node(2, false, 0, Some(0)),
            node(3, true, 0, Some(90)),
            node(4, true, 0, Some(10)),
        ];
        assert_eq!(nodes_to_remove(nodes, 5, 0, 100, 50), vec![0, 4]);
        assert_eq!(nodes_to_remove(nodes, 5, 4, 100, 50), vec![0]);
        assert!(nodes_to_remove(nodes, 2, 2, 100, 50).is_empty());
    }

    fn pool() -> PoolView {
        PoolView {
            unschedulable: 7,
            pods_per_node: 2,
            provisioning: 1,
            live: 3,
            min_nodes: 1,
            max_nodes: 10,
        }
    }

    #[test]
    fn adds_what_the_pending_pods_need_beyond_provisioning_nodes() {
        assert_eq!(nodes_to_add(pool()), 3, "4 nodes for 7 pods, 1 on its way");
        let full = PoolView {
            max_nodes: 4,
            ..pool()
        };
        assert_eq!(nodes_to_add(full), 1, "capped at max_nodes");
        let none = PoolView {
            unschedulable: 0,
            ..pool()
        };
        assert_eq!(nodes_to_add(none), 0);
        let odd = PoolView {
            pods_per_node: 0,
            provisioning: 0,
            ..pool()
        };
        assert_eq!(
            nodes_to_add(odd),
            7,
            "a zero fit counts as one pod per node"
        );
    }

    #[test]
    fn removes_empty_nodes_after_the_unneeded_time_down_to_min_nodes() {
        assert!(!is_unneeded(None, 100, 10));
        assert!(!is_unneeded(Some(95), 100, 10));
        assert!(is_unneeded(Some(90), 100, 10));
        assert_eq!(removable(5, 3, 1), 2);
        assert_eq!(removable(1, 3, 1), 1);
        assert_eq!(removable(2, 1, 1), 0);
    }
}
