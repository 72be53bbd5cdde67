//! The routing picks against the simulator engine's rule as it was before it
//! called `lab_decide::routing` (copied here verbatim in spirit: same
//! arithmetic, same draws), for random inputs.

use lab_decide::routing::{least_request, pick_version};

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

/// The engine's `route` choice before the move.
fn old_route(ready: &[u32], outstanding: &[u32], x: u64) -> Option<u32> {
    match ready.len() {
        0 => None,
        1 => Some(ready[0]),
        n => {
            let a = (((x & 0xFFFF_FFFF) * n as u64) >> 32) as usize;
            let mut b = (((x >> 32) * (n - 1) as u64) >> 32) as usize;
            if b >= a {
                b += 1;
            }
            let (pa, pb) = (ready[a], ready[b]);
            Some(if outstanding[pb as usize] < outstanding[pa as usize] {
                pb
            } else {
                pa
            })
        }
    }
}

/// The engine's `pick_version` walk before the move (offsets from `first`).
fn old_version(percents: &[f64], u: f64) -> usize {
    let count = percents.len();
    if count == 1 {
        return 0;
    }
    let mut x = u * 100.0;
    for (i, p) in percents.iter().enumerate() {
        x -= p;
        if x <= 0.0 {
            return i;
        }
    }
    count - 1
}

#[test]
fn least_request_equals_the_engines_previous_rule() {
    let mut r = Mix(15);
    for _ in 0..200_000 {
        let pods = 1 + (r.next() % 64) as usize;
        // Small loads so ties are frequent: the tie rule matters.
        let outstanding: Vec<u32> = (0..pods).map(|_| (r.next() % 4) as u32).collect();
        let ready: Vec<u32> = (0..pods as u32).filter(|_| r.next() % 3 < 2).collect();
        let x = r.next();
        let new =
            least_request(ready.len(), || x, |i| outstanding[ready[i] as usize]).map(|i| ready[i]);
        assert_eq!(
            new,
            old_route(&ready, &outstanding, x),
            "ready {ready:?} loads {outstanding:?} x {x:#x}"
        );
    }
}

#[test]
fn version_pick_equals_the_engines_previous_rule() {
    let mut r = Mix(16);
    for _ in 0..200_000 {
        let count = 1 + (r.next() % 4) as usize;
        // Whole percentages summing to 100 as in scenarios, and arbitrary ones.
        let percents: Vec<f64> = if r.next() & 1 == 0 {
            let mut left = 100u64;
            let mut v: Vec<f64> = (0..count - 1)
                .map(|_| {
                    let p = r.next() % (left + 1);
                    left -= p;
                    p as f64
                })
                .collect();
            v.push(left as f64);
            v
        } else {
            (0..count).map(|_| r.unit() * 60.0).collect()
        };
        let u = r.unit();
        let new = pick_version(count, || u, |i| percents[i]);
        assert_eq!(
            new,
            old_version(&percents, u),
            "percents {percents:?} u {u}"
        );
    }
}

#[test]
fn eighty_twenty_split_lands_near_eighty() {
    let mut r = Mix(17);
    let n = 100_000;
    let first = (0..n)
        .filter(|_| pick_version(2, || r.unit(), |i| [80.0, 20.0][i]) == 0)
        .count();
    let share = first as f64 / n as f64;
    assert!((share - 0.8).abs() < 0.01, "share {share}");
}
