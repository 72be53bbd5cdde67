//! Thinning time series for drawing: keep the lowest and the highest point of
//! each pixel-wide bucket, in time order, so a one-interval spike in a day of
//! data still reaches its full height on the chart.

/// A series broken into runs of finite points (gaps where a value is missing).
pub type Segments = Vec<Vec<(f64, f64)>>;

/// Splits `points` at non-finite `y` values, then thins each segment to at
/// most two points per bucket, with `buckets` buckets over `x_span`.
pub fn prepare(points: &[(f64, f64)], x_span: (f64, f64), buckets: usize) -> Segments {
    let mut segments: Segments = Vec::new();
    let mut current = Vec::new();
    for &(x, y) in points {
        if x.is_finite() && y.is_finite() {
            current.push((x, y));
        } else if !current.is_empty() {
            segments.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
        .into_iter()
        .map(|s| min_max(&s, x_span, buckets))
        .collect()
}

/// Min/max per bucket; series short enough to draw whole are returned as is.
pub fn min_max(points: &[(f64, f64)], (x0, x1): (f64, f64), buckets: usize) -> Vec<(f64, f64)> {
    let width = x1 - x0;
    if points.len() <= 2 * buckets.max(1) || width <= 0.0 || !width.is_finite() {
        return points.to_vec();
    }
    let bucket_of =
        |x: f64| (((x - x0) / width * buckets as f64).floor().max(0.0) as usize).min(buckets - 1);
    let mut out = Vec::with_capacity(2 * buckets + 2);
    let mut i = 0;
    while i < points.len() {
        let b = bucket_of(points[i].0);
        let (mut lo, mut hi) = (i, i);
        let mut j = i;
        while j < points.len() && bucket_of(points[j].0) == b {
            if points[j].1 < points[lo].1 {
                lo = j;
            }
            if points[j].1 > points[hi].1 {
                hi = j;
            }
            j += 1;
        }
        let (first, second) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        out.push(points[first]);
        if second != first {
            out.push(points[second]);
        }
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spikes_survive_and_size_is_bounded() {
        // A day at 10 s with one 10 s spike.
        let pts: Vec<(f64, f64)> = (0..8640)
            .map(|i| {
                let t = i as f64 * 10.0;
                (
                    t,
                    if i == 4321 {
                        900.0
                    } else {
                        100.0 + (i % 7) as f64
                    },
                )
            })
            .collect();
        let out = min_max(&pts, (0.0, 86_400.0), 600);
        assert!(out.len() <= 1200, "{} points", out.len());
        assert!(out.contains(&(43_210.0, 900.0)));
        assert_eq!(out.iter().map(|p| p.1).fold(f64::MAX, f64::min), 100.0);
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "time order kept");
    }

    #[test]
    fn short_series_are_untouched_and_gaps_split() {
        let pts = [(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0), (3.0, 4.0)];
        let segs = prepare(&pts, (0.0, 3.0), 600);
        assert_eq!(segs, vec![vec![(0.0, 1.0)], vec![(2.0, 3.0), (3.0, 4.0)]]);
    }
}
