//! A deleted pod's drain: it takes no new requests, finishes what it holds,
//! and exits once it holds nothing or when its grace period
//! (`terminationGracePeriodSeconds`) runs out, whichever comes first. At the
//! deadline the kubelet's SIGKILL ends it and whatever it still holds fails.

/// The failure reason of requests a pod still held when it was killed.
pub const KILLED_REASON: &str = "pod_killed";

/// What a draining pod still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Held {
    /// Requests waiting in the pod's queue.
    pub queued: u64,
    /// Work running: batches (or requests) being executed.
    pub executing: u64,
}

impl Held {
    pub fn is_empty(self) -> bool {
        self.queued == 0 && self.executing == 0
    }
}

/// The next step of a draining pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainStep {
    /// Nothing is left: the pod exits cleanly now.
    Exit,
    /// Work is left and the grace period runs: keep finishing it.
    Wait,
    /// The grace period is over with work left: the pod is killed and every
    /// request it holds, queued or executing, fails with `reason`.
    Kill { reason: &'static str },
}

/// When the grace period of a pod deleted at `deleted_at` runs out.
pub fn deadline(deleted_at: u64, grace_ns: u64) -> u64 {
    deleted_at.saturating_add(grace_ns)
}

/// Whether `now` is at or past the drain's deadline.
pub fn deadline_reached(now: u64, deadline: u64) -> bool {
    now >= deadline
}

/// What a draining pod does now, given what it holds and whether its
/// deadline has come.
pub fn step(held: Held, deadline_reached: bool) -> DrainStep {
    if held.is_empty() {
        DrainStep::Exit
    } else if deadline_reached {
        DrainStep::Kill {
            reason: KILLED_REASON,
        }
    } else {
        DrainStep::Wait
    }
}
