//! One pacing thread's share of the in-flight cap, decided as of each
//! arrival's own instant.
//!
//! A slot given back is logged with the instant it came free. An arrival looked
//! at late (the loop was busy, or asleep because every slot was taken) counts
//! as in flight, besides the requests in flight now, those that ended after its
//! instant: it is refused exactly when the cap was reached at its instant. So a
//! loop whose slots are all taken can sleep until one comes free instead of
//! waking at every deadline only to refuse the arrival.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

struct State {
    in_flight: usize,
    /// Instants (ns from the start) at which slots came free, ascending, not
    /// yet behind every arrival looked at.
    frees: VecDeque<u64>,
}

pub struct Slots {
    max: usize,
    start: Instant,
    state: Mutex<State>,
    freed: Notify,
}

/// A request's place under the cap, given back when dropped.
pub struct Slot(Arc<Slots>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.give_back();
    }
}

impl Slots {
    /// `max` slots; instants count from `start`.
    pub fn new(max: usize, start: Instant) -> Arc<Slots> {
        Arc::new(Slots {
            max,
            start,
            state: Mutex::new(State {
                in_flight: 0,
                frees: VecDeque::new(),
            }),
            freed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for the arrival due at `at_ns` if fewer than `max` requests were
    /// in flight at that instant. Arrivals must be asked about in order of
    /// instant.
    pub fn take(self: &Arc<Self>, at_ns: u64) -> Option<Slot> {
        let mut s = self.lock();
        while s.frees.front().is_some_and(|&t| t <= at_ns) {
            s.frees.pop_front();
        }
        if s.in_flight + s.frees.len() >= self.max {
            return None;
        }
        s.in_flight += 1;
        Some(Slot(self.clone()))
    }

    /// Every slot is taken now: the next arrivals are refused until one comes free.
    pub fn full(&self) -> bool {
        self.lock().in_flight >= self.max
    }

    /// Completes when a slot has come free since the last call (or at once).
    pub async fn freed(&self) {
        self.freed.notified().await;
    }

    fn give_back(&self) {
        let at = self.start.elapsed().as_nanos() as u64;
        // `elapsed` is zero before the start; instants stay ascending.
        let mut s = self.lock();
        s.in_flight -= 1;
        let at = at.max(s.frees.back().copied().unwrap_or(0));
        s.frees.push_back(at);
        drop(s);
        self.freed.notify_one();
    }

    /// Waits until no request holds a slot, at most `limit`.
    pub async fn drained(&self, limit: Duration) {
        let _ = tokio::time::timeout(
            limit,
            wait_until(&self.freed, || self.lock().in_flight == 0),
        )
        .await;
    }
}

/// Waits on `notify` until `ready` holds. Registered before each check, so a
/// notification between the check and the wait is not lost.
pub async fn wait_until(notify: &Notify, ready: impl Fn() -> bool) {
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if ready() {
            return;
        }
        notified.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_arrival_is_decided_as_of_its_own_instant() {
        // Start a minute ago, so every slot given back now comes free at ~60 s.
        let start = Instant::now() - Duration::from_secs(60);
        let slots = Slots::new(2, start);
        let ms = 1_000_000;
        let a = slots.take(10 * ms).expect("a free slot");
        let b = slots.take(20 * ms).expect("a free slot");
        assert!(slots.full());
        assert!(slots.take(30 * ms).is_none(), "the cap is reached");
        drop(a);
        assert!(!slots.full());
        // Looked at only now, but due at 40 s, before `a` ended: still refused.
        assert!(slots.take(40 * ms).is_none());
        // Due after `a` ended: admitted.
        let c = slots.take(61_000 * ms).expect("the slot `a` gave back");
        assert!(slots.full());
        drop((b, c));
        assert!(!slots.full());
    }

    #[tokio::test]
    async fn drained_waits_for_the_last_slot() {
        let slots = Slots::new(4, Instant::now());
        let held = slots.take(0).unwrap();
        let waiter = {
            let slots = slots.clone();
            tokio::spawn(async move { slots.drained(Duration::from_secs(60)).await })
        };
        // On this single-threaded runtime the waiter runs only at this await,
        // finds the slot held, and must wake when it is given back.
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        waiter.await.unwrap();
        assert!(!slots.full());
    }
}
