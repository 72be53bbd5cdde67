//! Where a request goes: which version (revision) of a canary split, and
//! which ready pod of that version.
//!
//! The simulator's engine and the local gateway both call these, so a
//! request drawn with the same random numbers lands on the same pod at every
//! level. Random numbers are passed in as closures and drawn only when a
//! choice exists, so a caller's random stream advances exactly as before.

/// The version a request goes to under a canary split: `percent(i)` is
/// version `i`'s `trafficPercent`, `draw()` a uniform in (0, 1], drawn only
/// when there are two versions or more. Walks the cumulative percentages; a
/// draw past their sum (percentages adding up to less than 100) goes to the
/// last version. `count` 0 returns 0.
#[inline]
pub fn pick_version(
    count: usize,
    draw: impl FnOnce() -> f64,
    percent: impl Fn(usize) -> f64,
) -> usize {
    if count <= 1 {
        return 0;
    }
    let mut x = draw() * 100.0;
    for i in 0..count {
        x -= percent(i);
        if x <= 0.0 {
            return i;
        }
    }
    count - 1
}

/// Two distinct indices below `n` (`n` ≥ 2) from one 64-bit draw: the low
/// half picks the first, the high half the second among the other `n - 1`,
/// by multiply-shift rather than division.
#[inline]
pub fn two_choices(x: u64, n: usize) -> (usize, usize) {
    debug_assert!(n >= 2);
    let a = (((x & 0xFFFF_FFFF) * n as u64) >> 32) as usize;
    let mut b = (((x >> 32) * (n - 1) as u64) >> 32) as usize;
    if b >= a {
        b += 1;
    }
    (a, b)
}

/// Envoy's `LEAST_REQUEST` with its default choice count of two: the index of
/// the less loaded of two random ready pods among `n`, the first pick on a
/// tie. `draw()` (a 64-bit random number) is called only when `n` ≥ 2;
/// `None` when there is no ready pod.
#[inline]
pub fn least_request<L: PartialOrd>(
    n: usize,
    draw: impl FnOnce() -> u64,
    load: impl Fn(usize) -> L,
) -> Option<usize> {
    match n {
        0 => None,
        1 => Some(0),
        n => {
            let (a, b) = two_choices(draw(), n);
            Some(if load(b) < load(a) { b } else { a })
        }
    }
}

/// Knative's serverless service mode: `Proxy` keeps the activator in the
/// request path, `Serve` routes to the pods directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivatorMode {
    Proxy,
    Serve,
}

/// The SKS mode the KPA sets: `Serve` iff it wants pods and the excess burst
/// capacity `floor(ready × TotalValue − TBC − panicConcurrency)` is not
/// negative (`target-burst-capacity` 0 makes it 0, −1 makes it −1, so 0 means
/// "activator only at zero" and −1 "always in the path").
#[inline]
pub fn activator_mode(want_pods: u32, excess_burst_capacity: i64) -> ActivatorMode {
    if want_pods > 0 && excess_burst_capacity >= 0 {
        ActivatorMode::Serve
    } else {
        ActivatorMode::Proxy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_choices_are_distinct_and_in_range() {
        for n in 2..50usize {
            for k in 0..2000u64 {
                let x = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let (a, b) = two_choices(x, n);
                assert!(a < n && b < n && a != b, "n={n} x={x:#x} gave {a},{b}");
            }
        }
    }

    #[test]
    fn no_draw_without_a_choice() {
        assert_eq!(least_request(0, || panic!("drew"), |_| 0u32), None);
        assert_eq!(least_request(1, || panic!("drew"), |_| 0u32), Some(0));
        assert_eq!(pick_version(1, || panic!("drew"), |_| 100.0), 0);
    }

    #[test]
    fn mode_follows_excess_burst_capacity() {
        assert_eq!(activator_mode(0, 5), ActivatorMode::Proxy);
        assert_eq!(activator_mode(2, -1), ActivatorMode::Proxy);
        assert_eq!(activator_mode(2, 0), ActivatorMode::Serve);
    }
}
