//! Paces arrivals on a dedicated OS thread by absolute deadlines.
//!
//! Each request is due at `start + at_ns`, never "previous send + gap", so a late
//! wake-up does not push later requests back: the pacer catches up at once. A
//! thread of its own, because tokio's timer wheel has 1 ms resolution while an
//! OS sleep overshoots by tens of microseconds; the send lag is measured anyway.

use crate::plan::Planned;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Longest single nap, so a stop request is noticed quickly in long idle gaps.
const MAX_NAP: Duration = Duration::from_millis(20);

/// Shortest nap. Each wake-up of the pacer is a context switch away from the
/// runtime's threads (on a single core, two): napping for every 5 µs gap at
/// 200k/s spent half the core switching (80k/s completed against 128k/s with
/// this floor, BENCHMARKS.md). Arrivals due within one nap go out together, up
/// to about this much late; the send lag records it.
const MIN_NAP: Duration = Duration::from_micros(100);

/// Most arrivals handed over at once.
const MAX_BATCH: usize = 256;

/// How the pacing loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaceEnd {
    /// Every arrival was handed out.
    Finished,
    /// `stop` was raised first.
    Stopped,
}

/// Calls `dispatch` with every arrival whose deadline has passed, in order: one
/// call per wake-up, so at high rates the work of handing requests over is paid
/// once per batch rather than once per request.
pub fn pace(
    arrivals: impl Iterator<Item = Planned>,
    start: Instant,
    stop: &AtomicBool,
    mut dispatch: impl FnMut(&mut Vec<Planned>),
) -> PaceEnd {
    let mut arrivals = arrivals.peekable();
    let mut due = Vec::new();
    while let Some(next) = arrivals.peek() {
        let deadline = start + Duration::from_nanos(next.arrival.at_ns);
        let now = Instant::now();
        // Batches are capped so a stop is noticed even when the pacer is behind.
        if now >= deadline && due.len() < MAX_BATCH {
            due.push(*next);
            arrivals.next();
            continue;
        }
        if stop.load(Ordering::Relaxed) {
            return PaceEnd::Stopped;
        }
        if !due.is_empty() {
            dispatch(&mut due);
            due.clear();
            continue;
        }
        std::thread::sleep((deadline - now).clamp(MIN_NAP, MAX_NAP));
    }
    if !due.is_empty() {
        dispatch(&mut due);
    }
    PaceEnd::Finished
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_traffic::Arrival;

    fn planned(at_ms: u64) -> Planned {
        Planned {
            stream: 0,
            arrival: Arrival {
                seq: at_ms,
                at_ns: at_ms * 1_000_000,
                rows: 1,
            },
        }
    }

    #[test]
    fn never_dispatches_early_and_catches_up_after_a_stall() {
        let stop = AtomicBool::new(false);
        let start = Instant::now();
        let mut seen = Vec::new();
        let end = pace((0..60).map(planned), start, &stop, |batch| {
            for p in batch.iter() {
                let now = Instant::now();
                let due = start + Duration::from_nanos(p.arrival.at_ns);
                assert!(now >= due, "dispatched before its deadline");
                seen.push((p.arrival.seq, now));
                if p.arrival.seq == 10 {
                    // A dispatch that blocks 25 ms: the next ones are already due
                    // and must go out at once, not 1 ms apart after the stall.
                    std::thread::sleep(Duration::from_millis(25));
                }
            }
        });
        assert_eq!(end, PaceEnd::Finished);
        assert_eq!(seen.len(), 60);
        let after_stall: Vec<_> = seen.iter().filter(|(s, _)| (11..=30).contains(s)).collect();
        let burst = after_stall[after_stall.len() - 1].1 - after_stall[0].1;
        assert!(burst < Duration::from_millis(15), "no catch-up: {burst:?}");
    }

    #[test]
    fn stop_ends_the_loop_without_waiting_for_the_next_deadline() {
        let stop = AtomicBool::new(true);
        let t = Instant::now();
        let end = pace([planned(60_000)].into_iter(), t, &stop, |_| unreachable!());
        assert_eq!(end, PaceEnd::Stopped);
        assert!(t.elapsed() < Duration::from_secs(1));
    }
}
