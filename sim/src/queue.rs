//! The pending-event set: a binary heap ordered by (time, sequence), so events at
//! the same instant pop in the order they were scheduled, on every machine.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

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

pub struct EventQueue {
    heap: BinaryHeap<Reverse<(u64, u64, Event)>>,
    seq: u64,
}

impl EventQueue {
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(1024),
            seq: 0,
        }
    }

    pub fn push(&mut self, at: u64, ev: Event) {
        self.heap.push(Reverse((at, self.seq, ev)));
        self.seq += 1;
    }

    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    pub fn pop(&mut self) -> Option<(u64, Event)> {
        self.heap.pop().map(|Reverse((t, _, e))| (t, e))
    }
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
    }
}
