//! Spot interruption timing against the simulator engine's rule before it
//! called `lab_decide::spot` (same arithmetic, same draw), and its edges.

use lab_decide::spot::{next_interruption_ns, reclaim_at, RECLAIMED_REASON};
use std::cell::Cell;

const HOUR_NS: u64 = 3_600_000_000_000;

/// SplitMix64: a dependency-free stream of random 64-bit numbers.
struct Mix(u64);
impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1], as `lab_traffic::schedule::uniform`.
    fn unit(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// The engine's `node_ready` before the move: the rate per ns computed at
/// start-up, a draw only for a positive rate.
fn old_next(now: u64, per_hour: f64, u: &mut impl FnMut() -> f64) -> Option<u64> {
    let rate = per_hour / 3600.0 / 1e9;
    if rate > 0.0 {
        let wait = -libm::log(u()) / rate;
        if wait.is_finite() && wait < (u64::MAX / 2) as f64 {
            return Some(now + wait as u64);
        }
    }
    None
}

#[test]
fn the_instant_is_the_engines_to_the_nanosecond_and_draws_alike() {
    let mut rates = Mix(7);
    let (mut old_draws, mut new_draws) = (Mix(11), Mix(11));
    for i in 0..20_000 {
        let per_hour = match i % 5 {
            0 => 0.0,
            1 => (rates.next() % 1000) as f64 / 100.0,
            _ => rates.unit() * 3.0,
        };
        let now = rates.next() % (30 * 24 * HOUR_NS);
        let old = old_next(now, per_hour, &mut || old_draws.unit());
        let new = next_interruption_ns(now, per_hour, || new_draws.unit());
        assert_eq!(old, new, "now {now}, {per_hour}/h");
    }
    // Both streams advanced by the same number of draws.
    assert_eq!(old_draws.next(), new_draws.next());
}

#[test]
fn a_pool_never_interrupted_does_not_draw() {
    let draws = Cell::new(0);
    let draw = || {
        draws.set(draws.get() + 1);
        0.5
    };
    for per_hour in [0.0, -1.0, f64::NAN] {
        assert_eq!(next_interruption_ns(5, per_hour, draw), None);
    }
    assert_eq!(draws.get(), 0);
    assert!(next_interruption_ns(5, 1.0, draw).is_some());
    assert_eq!(draws.get(), 1);
}

#[test]
fn a_draw_of_one_is_now_and_a_draw_of_zero_is_never() {
    assert_eq!(next_interruption_ns(42, 2.0, || 1.0), Some(42));
    assert_eq!(next_interruption_ns(42, 2.0, || 0.0), None);
    // One interruption an hour, a draw of 1/e: one hour on.
    let at = next_interruption_ns(0, 1.0, || libm::exp(-1.0)).unwrap();
    assert!(at.abs_diff(HOUR_NS) < 1_000, "{at}");
    // A wait past the clock's range is no interruption, not a wrap-around.
    assert_eq!(next_interruption_ns(u64::MAX - 10, 1.0, || 0.5), None);
}

#[test]
fn waits_average_the_inverse_of_the_rate() {
    let mut u = Mix(3);
    let per_hour = 0.5;
    let n = 50_000;
    let total: f64 = (0..n)
        .map(|_| next_interruption_ns(0, per_hour, || u.unit()).unwrap() as f64)
        .sum();
    let mean_hours = total / n as f64 / HOUR_NS as f64;
    // Exponential waits: the mean of 50k has a standard error under 0.5 %.
    assert!((mean_hours - 2.0).abs() < 0.04, "{mean_hours}");
}

#[test]
fn only_a_ready_node_is_reclaimed_after_its_notice() {
    let notice = 120_000_000_000;
    assert_eq!(reclaim_at(true, 1_000, notice), Some(1_000 + notice));
    assert_eq!(reclaim_at(false, 1_000, notice), None);
    assert_eq!(reclaim_at(true, u64::MAX - 1, notice), Some(u64::MAX));
    assert_eq!(RECLAIMED_REASON, "pod_killed");
}
