//! Spot interruptions: when a spot node gets its interruption notice, and when
//! the provider takes it back.
//!
//! Interruptions of one node arrive as a Poisson process at the pool's rate,
//! counted from the moment the node is ready; the first one ends the node.
//! The caller owns the random stream and passes a draw in, so the simulator
//! keeps its own stream (and its results) while the live controller may draw
//! from anything it likes.

/// Requests a reclaimed node still holds fail with this reason, the same as
/// a pod killed at the end of its grace period.
pub const RECLAIMED_REASON: &str = crate::drain::KILLED_REASON;

/// The instant a node that became ready at `now` gets its interruption
/// notice, for a pool interrupted `per_hour` times per node-hour; `None` for
/// a pool that is never interrupted (rate 0, negative or NaN) or when the
/// wait would not fit the clock.
///
/// `draw` yields a uniform in (0, 1] and is called only when the pool is
/// interrupted at all, so a caller's stream advances exactly once per
/// interruptible node.
pub fn next_interruption_ns(now: u64, per_hour: f64, draw: impl FnOnce() -> f64) -> Option<u64> {
    // `/ 3600.0 / 1e9` in this order: the simulator's results depend on the bits.
    let rate_per_ns = per_hour / 3600.0 / 1e9;
    // NaN compares false too: a pool with no usable rate is never interrupted.
    if rate_per_ns.is_nan() || rate_per_ns <= 0.0 {
        return None;
    }
    let wait = -libm::log(draw()) / rate_per_ns;
    if wait.is_finite() && wait < (u64::MAX / 2) as f64 {
        now.checked_add(wait as u64)
    } else {
        None
    }
}

/// What the scaling event of a spot notice says.
pub fn notice_reason(node: impl std::fmt::Display, notice_ns: u64) -> String {
    format!(
        "spot interruption notice for node {node}: reclaimed in {}",
        lab_units::Dur(notice_ns)
    )
}

/// When the provider reclaims a node whose notice came at `notice_at`, with
/// the pool's notice period; `None` when the node is no longer ready (a
/// second notice, or one for a node already gone, does nothing).
///
/// At the notice the node takes no new pods and its pods are deleted: a
/// ready one drains with its grace period while its ReplicaSet replaces it
/// elsewhere. Whatever still runs at the reclaim is killed and its requests
/// fail with [`RECLAIMED_REASON`].
pub fn reclaim_at(node_ready: bool, notice_at: u64, notice_ns: u64) -> Option<u64> {
    node_ready.then(|| notice_at.saturating_add(notice_ns))
}
