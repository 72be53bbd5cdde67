//! The Pareto front of monthly cost against p99 latency.

/// Indices of the points no other point beats on both cost and p99 (lower is
/// better on both), in ascending cost. Ties keep the earlier index.
pub fn front(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        let (pa, pb) = (points[a], points[b]);
        pa.0.total_cmp(&pb.0)
            .then(pa.1.total_cmp(&pb.1))
            .then(a.cmp(&b))
    });
    let mut out = Vec::new();
    let mut best_p99 = f64::INFINITY;
    for i in order {
        // Sweeping by ascending cost, a point is on the front when its p99 is
        // below every cheaper point's.
        if points[i].1 < best_p99 {
            best_p99 = points[i].1;
            out.push(i);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dominated(points: &[(f64, f64)], i: usize) -> bool {
        points.iter().enumerate().any(|(j, q)| {
            j != i
                && q.0 <= points[i].0
                && q.1 <= points[i].1
                && (q.0 < points[i].0 || q.1 < points[i].1 || j < i)
        })
    }

    #[test]
    fn front_is_exactly_the_non_dominated_points() {
        // A small deterministic pseudo-random cloud with ties.
        let mut x = 12345u64;
        let mut points = Vec::new();
        for _ in 0..200 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let c = ((x >> 33) % 50) as f64;
            let p = ((x >> 13) % 40) as f64;
            points.push((c, p));
        }
        let f = front(&points);
        for i in 0..points.len() {
            assert_eq!(
                f.contains(&i),
                !dominated(&points, i),
                "point {i} {:?}",
                points[i]
            );
        }
        assert!(f.windows(2).all(|w| points[w[0]].0 < points[w[1]].0));
    }
}
