//! Paces one part of the schedule by absolute deadlines, as a task on the
//! single-threaded runtime that also sends the requests and reads the answers.
//!
//! Each request is due at `start + at_ns`, never "previous send + gap", so a late
//! wake-up does not push later requests back: the loop catches up at once.
//! Between deadlines the loop sleeps on a timerfd in the runtime's own epoll
//! (`timer`), which wakes it to the microsecond, at least `MIN_NAP` at a time;
//! while the runtime sleeps on it, the thread sleeps too (no busy core). When
//! every slot of the in-flight cap is taken it sleeps until one comes free
//! (`Slots`). Where there is no timerfd, it sleeps on tokio's 1 ms timer until
//! `SPIN` before the deadline and then spins: each turn it checks the clock and
//! yields to the runtime, which polls the sockets and runs the request tasks in
//! between. Nothing crosses threads on the way from the deadline to the socket.

use crate::plan::Planned;
use crate::slots::{wait_until, Slots};
use crate::timer::Timer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Without a timerfd: how long before a deadline the loop stops sleeping on
/// tokio's timer and starts spinning. A 1 ms timer that rounds up wakes at most
/// about 1 ms late, so sleeping until 2 ms before leaves about 1 ms of spinning.
const SPIN: Duration = Duration::from_millis(2);

/// With a timerfd: the shortest sleep. Arrivals due within it go out together,
/// up to this much late (the send lag records it); at high rates the loop then
/// arms the timer and wakes through epoll at most once per `MIN_NAP` rather
/// than once per gap, which leaves the core to the requests (and, on a machine
/// shared with the server, to the server). Measured on the 2-core VM, both
/// processes unpinned, 200k/s offered: 86k/s completed without a floor and
/// spinning for deadlines under 20 µs, 103-107k/s with this floor
/// (BENCHMARKS.md).
const MIN_NAP: Duration = Duration::from_micros(50);

/// Most arrivals handed over at once; when the loop is behind, it yields after
/// each batch so the requests already handed over make progress.
const MAX_BATCH: usize = 256;

/// How the pacing loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaceEnd {
    /// Every arrival was handed out.
    Finished,
    /// The halt was raised first.
    Stopped,
}

/// A stop request seen by every pacing loop, on whichever thread or runtime.
#[derive(Default)]
pub struct Halt {
    raised: AtomicBool,
    wake: Notify,
}

impl Halt {
    pub fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.wake.notify_waiters();
    }

    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Acquire)
    }

    /// Completes once the halt is raised.
    pub async fn raised(&self) {
        wait_until(&self.wake, || self.is_raised()).await;
    }
}

/// Calls `dispatch` with every arrival whose deadline has passed, in order: one
/// call per turn of the loop, so when several are due at once the work of
/// handing them over is paid once per batch.
pub async fn pace(
    arrivals: impl IntoIterator<Item = Planned>,
    start: Instant,
    halt: &Halt,
    slots: &Slots,
    mut dispatch: impl FnMut(&mut Vec<Planned>),
) -> PaceEnd {
    let timer = Timer::new();
    let mut arrivals = arrivals.into_iter().peekable();
    let mut due = Vec::new();
    while let Some(next) = arrivals.peek() {
        let deadline = start + Duration::from_nanos(next.arrival.at_ns);
        let now = Instant::now();
        if now >= deadline && due.len() < MAX_BATCH {
            due.push(*next);
            arrivals.next();
            continue;
        }
        if halt.is_raised() {
            return PaceEnd::Stopped;
        }
        if !due.is_empty() {
            dispatch(&mut due);
            due.clear();
            // Lets the requests just handed over (and the answers that came
            // in meanwhile) run before the next deadline is looked at: a
            // timer whose deadline passed while it was armed never yields.
            tokio::task::yield_now().await;
            continue;
        }
        if slots.full() {
            // Every arrival is refused until a slot comes free, and `Slots`
            // decides each as of its own instant whenever it is looked at, so
            // sleep until then instead of waking at each deadline to refuse.
            tokio::select! {
                _ = slots.freed() => {}
                _ = halt.raised() => {}
            }
            continue;
        }
        if let Some(timer) = &timer {
            tokio::select! {
                _ = timer.sleep_until(deadline.max(now + MIN_NAP)) => {}
                _ = halt.raised() => {}
            }
        } else if deadline - now > SPIN {
            tokio::select! {
                _ = tokio::time::sleep_until((deadline - SPIN).into()) => {}
                _ = halt.raised() => {}
            }
        } else {
            // Lets the runtime poll the sockets and run ready tasks, then
            // comes back here: microsecond precision at the cost of a busy core.
            tokio::task::yield_now().await;
        }
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
    use std::sync::Arc;

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

    #[tokio::test]
    async fn never_dispatches_early_and_catches_up_after_a_stall() {
        let halt = Halt::default();
        let start = Instant::now();
        let mut seen = Vec::new();
        let slots = Slots::new(1, start);
        let end = pace((0..60).map(planned), start, &halt, &slots, |batch| {
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
        })
        .await;
        assert_eq!(end, PaceEnd::Finished);
        assert_eq!(seen.len(), 60);
        let seqs: Vec<u64> = seen.iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, (0..60).collect::<Vec<_>>(), "in order, each once");
        let after_stall: Vec<_> = seen.iter().filter(|(s, _)| (11..=30).contains(s)).collect();
        let burst = after_stall[after_stall.len() - 1].1 - after_stall[0].1;
        assert!(burst < Duration::from_millis(15), "no catch-up: {burst:?}");
    }

    #[tokio::test]
    async fn a_raised_halt_ends_the_loop_without_waiting_for_the_next_deadline() {
        let halt = Halt::default();
        halt.raise();
        let t = Instant::now();
        let slots = Slots::new(1, t);
        let end = pace([planned(60_000)], t, &halt, &slots, |_| unreachable!()).await;
        assert_eq!(end, PaceEnd::Stopped);
    }

    #[tokio::test]
    async fn a_halt_raised_during_a_long_sleep_wakes_the_loop() {
        let halt = Arc::new(Halt::default());
        // On this single-threaded runtime the task runs only once the loop has
        // checked the halt and gone to sleep for the deadline a minute away.
        let raiser = {
            let halt = halt.clone();
            tokio::spawn(async move { halt.raise() })
        };
        let plan = [planned(0), planned(60_000)];
        let mut sent = 0;
        let t = Instant::now();
        let end = pace(plan, t, &halt, &Slots::new(1, t), |b| sent += b.len()).await;
        assert_eq!(end, PaceEnd::Stopped);
        assert_eq!(sent, 1, "the due arrival went out, the far one did not");
        raiser.await.unwrap();
    }
}
