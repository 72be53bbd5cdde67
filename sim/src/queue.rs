//! The pending-event set: a binary heap ordered by (time, sequence), so events at
//! the same instant pop in the order they were scheduled, on every machine.

/// Index types are u32 to keep events small; the simulator never holds 4 billion pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Event {
    /// A batch finishes, unless its generation moved on (its speed changed).
    BatchDone {
        batch: u32,
        gen: u32,
    },
    /// The oldest request of a pod's batcher reached the max queue delay.
    BatchTimer {
        pod: u32,
    },
    /// A pod's start-up finished (image pulled, model loaded, readiness seen).
    PodReady {
        pod: u32,
        gen: u32,
    },
    /// A pod ran out of GPU memory while loading its model.
    PodOom {
        pod: u32,
        gen: u32,
    },
    /// A draining pod's grace period ended.
    PodKill {
        pod: u32,
        gen: u32,
    },
    NodeReady {
        node: u32,
    },
    SpotNotice {
        node: u32,
    },
    NodeKill {
        node: u32,
    },
    /// An autoscaler is due to decide.
    Decide {
        deployment: u32,
        gen: u32,
    },
    /// KPA's one-second metric bucket.
    Record {
        deployment: u32,
    },
    /// Prometheus / metrics-server scrape of every pod.
    Scrape,
    ClusterAutoscalerScan,
    IntervalEnd,
}

/// A binary min-heap of events keyed by `time << 64 | sequence`: one integer
/// compare orders both fields, and holes rather than swaps move entries. The
/// heap stays small (a few entries per executing batch and per periodic timer),
/// but the simulator pushes and pops once per batch, so this is on the hot path.
///
/// A pop leaves its slot at the root empty (`root_vacant`) instead of refilling
/// it at once: a batch that completes often starts the pod's next one, and the
/// push that follows then fills the root with one sift-down, where a pop and a
/// push cost a sift-down and a sift-up.
pub struct EventQueue {
    heap: Vec<(u128, Event)>,
    root_vacant: bool,
    seq: u64,
}

impl EventQueue {
    pub fn new() -> Self {
        EventQueue {
            heap: Vec::with_capacity(1024),
            root_vacant: false,
            seq: 0,
        }
    }

    pub fn push(&mut self, at: u64, ev: Event) {
        let key = u128::from(at) << 64 | u128::from(self.seq);
        self.seq += 1;
        if self.root_vacant {
            self.root_vacant = false;
            sift_into_root(&mut self.heap, (key, ev));
            return;
        }
        let mut i = self.heap.len();
        self.heap.push((key, ev));
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.heap[parent].0 <= key {
                break;
            }
            self.heap[i] = self.heap[parent];
            i = parent;
        }
        self.heap[i] = (key, ev);
    }

    pub fn peek_time(&self) -> Option<u64> {
        let key = if self.root_vacant {
            // The root's subtrees are heaps: the smaller of their roots.
            match &self.heap[1..] {
                [] => return None,
                [only] => only.0,
                [left, right, ..] => left.0.min(right.0),
            }
        } else {
            self.heap.first()?.0
        };
        Some((key >> 64) as u64)
    }

    pub fn pop(&mut self) -> Option<(u64, Event)> {
        if self.root_vacant {
            // Fill the vacancy with the last entry, as a textbook pop would.
            let last = self.heap.pop().expect("a vacant root is an entry");
            self.root_vacant = false;
            if self.heap.is_empty() {
                return None;
            }
            sift_into_root(&mut self.heap, last);
        }
        let top = *self.heap.first()?;
        self.root_vacant = true;
        Some(((top.0 >> 64) as u64, top.1))
    }
}

/// Puts `entry` at the vacant root and restores the heap. Floyd's variant: walk
/// the vacancy down to a leaf along the smaller children, picked without a
/// branch (which child is smaller is a coin toss the branch predictor cannot
/// learn), then sift `entry` up from there; entries rarely belong near the top.
fn sift_into_root(heap: &mut [(u128, Event)], entry: (u128, Event)) {
    let len = heap.len();
    let mut i = 0;
    loop {
        let left = 2 * i + 1;
        if left + 1 >= len {
            if left < len {
                heap[i] = heap[left];
                i = left;
            }
            break;
        }
        let child = left + usize::from(heap[left + 1].0 < heap[left].0);
        heap[i] = heap[child];
        i = child;
    }
    while i > 0 {
        let parent = (i - 1) / 2;
        if heap[parent].0 <= entry.0 {
            break;
        }
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = entry;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_pop_in_scheduling_order() {
        let mut q = EventQueue::new();
        q.push(5, Event::Scrape);
        q.push(5, Event::IntervalEnd);
        q.push(1, Event::ClusterAutoscalerScan);
        assert_eq!(q.pop(), Some((1, Event::ClusterAutoscalerScan)));
        assert_eq!(q.pop(), Some((5, Event::Scrape)));
        assert_eq!(q.pop(), Some((5, Event::IntervalEnd)));
        assert_eq!(q.pop(), None);
        assert_eq!(q.peek_time(), None);
    }

    #[test]
    fn pops_in_time_then_sequence_order_for_any_interleaving() {
        // A fixed pseudo-random mix of pushes and pops against a sorted reference.
        let mut q = EventQueue::new();
        let mut reference: Vec<(u64, u64)> = Vec::new();
        let mut seq = 0u64;
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if !x.is_multiple_of(3) || reference.is_empty() {
                let at = x % 64;
                q.push(at, Event::BatchTimer { pod: seq as u32 });
                reference.push((at, seq));
                seq += 1;
            } else {
                reference.sort();
                let (at, s) = reference.remove(0);
                assert_eq!(q.peek_time(), Some(at));
                assert_eq!(q.pop(), Some((at, Event::BatchTimer { pod: s as u32 })));
                // With the root left vacant, the next instant is still right.
                reference.sort();
                assert_eq!(q.peek_time(), reference.first().map(|r| r.0));
            }
        }
        reference.sort();
        for (at, s) in reference {
            assert_eq!(q.pop(), Some((at, Event::BatchTimer { pod: s as u32 })));
        }
        assert_eq!(q.pop(), None);
    }
}
