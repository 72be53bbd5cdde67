//! A Deployment's ReplicaSet keeping its pod count at the desired replicas.

/// What the ReplicaSet controller knows of a live pod (not deleting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LivePod<Id> {
    pub id: Id,
    pub phase: LivePhase,
    /// Requests it holds (queued or executing): with fewer, less work is lost.
    pub outstanding: u64,
    pub created: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LivePhase {
    /// Not bound to a node yet.
    Unscheduled,
    /// Bound, not ready yet.
    Starting,
    /// Crash-looping.
    Failed,
    Ready,
}

/// Pods to create, or which pods to delete, to reach `desired`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reconcile<Id> {
    Create(usize),
    Delete(Vec<Id>),
    Nothing,
}

/// Kubernetes' deletion order: unscheduled pods first, then starting ones,
/// then crash-looping, then ready pods with the least work, newest first.
pub fn reconcile<Id: Copy>(live: &[LivePod<Id>], desired: usize) -> Reconcile<Id> {
    if live.len() < desired {
        return Reconcile::Create(desired - live.len());
    }
    if live.len() == desired {
        return Reconcile::Nothing;
    }
    let mut order: Vec<&LivePod<Id>> = live.iter().collect();
    order.sort_by_key(|p| {
        let rank = match p.phase {
            LivePhase::Unscheduled => 0,
            LivePhase::Starting => 1,
            LivePhase::Failed => 2,
            LivePhase::Ready => 3,
        };
        (rank, p.outstanding, u64::MAX - p.created)
    });
    Reconcile::Delete(
        order
            .into_iter()
            .take(live.len() - desired)
            .map(|p| p.id)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(id: u32, phase: LivePhase, outstanding: u64, created: u64) -> LivePod<u32> {
        LivePod {
            id,
            phase,
            outstanding,
            created,
        }
    }

    #[test]
    fn too_few_creates_the_difference() {
        let live = [pod(1, LivePhase::Ready, 0, 0)];
        assert_eq!(reconcile(&live, 3), Reconcile::Create(2));
        assert_eq!(reconcile(&live, 1), Reconcile::Nothing);
        assert_eq!(reconcile::<u32>(&[], 0), Reconcile::Nothing);
    }

    #[test]
    fn too_many_deletes_the_cheapest_to_lose_first() {
        let live = [
            pod(1, LivePhase::Ready, 5, 10),
            pod(2, LivePhase::Ready, 1, 20),
            pod(3, LivePhase::Ready, 1, 30),
            pod(4, LivePhase::Starting, 0, 40),
            pod(5, LivePhase::Failed, 0, 5),
            pod(6, LivePhase::Unscheduled, 0, 1),
        ];
        assert_eq!(reconcile(&live, 5), Reconcile::Delete(vec![6]));
        assert_eq!(reconcile(&live, 2), Reconcile::Delete(vec![6, 4, 5, 3]));
        // Equal work: the newest ready pod goes first.
        assert_eq!(
            reconcile(&live, 0),
            Reconcile::Delete(vec![6, 4, 5, 3, 2, 1])
        );
    }
}
