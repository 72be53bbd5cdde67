//! Latency histograms in nanoseconds that serialize to text and merge exactly.

use crate::LatencySummary;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;

/// Values above this (one hour) are recorded as this.
pub const HISTOGRAM_MAX_NS: u64 = 3_600_000_000_000;

/// An HdrHistogram of latencies in nanoseconds with 3 significant digits
/// (0.1% relative error), bounded memory whatever the request count.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    h: Histogram<u64>,
    sum_ns: u128,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            h: Histogram::new_with_bounds(1_000, HISTOGRAM_MAX_NS, 3).expect("valid bounds"),
            sum_ns: 0,
        }
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        Self::default()
    }

    #[inline]
    pub fn record_ns(&mut self, ns: u64) {
        let v = ns.clamp(1_000, HISTOGRAM_MAX_NS);
        // Cannot fail: the value is clamped into the histogram's range.
        let _ = self.h.record(v);
        self.sum_ns += u128::from(ns.min(HISTOGRAM_MAX_NS));
    }

    pub fn count(&self) -> u64 {
        self.h.len()
    }

    pub fn reset(&mut self) {
        self.h.reset();
        self.sum_ns = 0;
    }

    /// Quantile in seconds (0 for an empty histogram).
    pub fn quantile_seconds(&self, q: f64) -> f64 {
        if self.h.is_empty() {
            return 0.0;
        }
        self.h.value_at_quantile(q) as f64 / 1e9
    }

    pub fn max_seconds(&self) -> f64 {
        if self.h.is_empty() {
            0.0
        } else {
            self.h.max() as f64 / 1e9
        }
    }

    /// Mean in seconds: exact while merging (kept as a sum), from buckets after a
    /// round trip through text.
    pub fn mean_seconds(&self) -> f64 {
        if self.h.is_empty() {
            0.0
        } else if self.sum_ns > 0 {
            self.sum_ns as f64 / self.h.len() as f64 / 1e9
        } else {
            self.h.mean() / 1e9
        }
    }

    pub fn summary(&self) -> LatencySummary {
        LatencySummary {
            count: self.count(),
            mean: self.mean_seconds(),
            p50: self.quantile_seconds(0.50),
            p90: self.quantile_seconds(0.90),
            p95: self.quantile_seconds(0.95),
            p99: self.quantile_seconds(0.99),
            p999: self.quantile_seconds(0.999),
            max: self.max_seconds(),
        }
    }

    /// Fraction of recorded values at or below `ns`.
    pub fn fraction_at_or_below(&self, ns: u64) -> f64 {
        if self.h.is_empty() {
            return 1.0;
        }
        self.h.count_between(0, ns) as f64 / self.h.len() as f64
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.h.add(&other.h);
        self.sum_ns += other.sum_ns;
    }

    /// Every value multiplied by `k` (finite, positive): what a run `k` times
    /// faster measured, read back in the scenario's time. Each bucket moves as a
    /// whole (its lowest value times `k`, clamped to the histogram's range), so
    /// quantiles keep HdrHistogram's 0.1% resolution and may move by up to one
    /// bucket more; the exact sum scales exactly.
    pub fn scaled(&self, k: f64) -> LatencyHistogram {
        let mut out = LatencyHistogram::new();
        for v in self.h.iter_recorded() {
            let lowest = self.h.lowest_equivalent(v.value_iterated_to());
            let ns = ((lowest as f64) * k).round() as u64;
            // Clamped into range, so recording cannot fail.
            let _ = out
                .h
                .record_n(ns.clamp(1_000, HISTOGRAM_MAX_NS), v.count_at_value());
        }
        out.sum_ns = (self.sum_ns as f64 * k).round() as u128;
        out
    }

    /// HdrHistogram V2 encoding in base64; the exact sum rides along as a prefix
    /// so means survive a round trip.
    pub fn to_base64(&self) -> String {
        let mut buf = Vec::new();
        V2Serializer::new()
            .serialize(&self.h, &mut buf)
            .expect("serializing into memory cannot fail");
        format!("{}:{}", self.sum_ns, BASE64.encode(&buf))
    }

    pub fn from_base64(text: &str) -> Result<LatencyHistogram, String> {
        let (sum, body) = text
            .split_once(':')
            .ok_or("histogram text lacks its `sum:` prefix")?;
        let sum_ns: u128 = sum.parse().map_err(|_| "histogram sum is not a number")?;
        let bytes = BASE64
            .decode(body)
            .map_err(|e| format!("histogram text is not base64: {e}"))?;
        let decoded: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("histogram does not decode: {e:?}"))?;
        let mut out = LatencyHistogram {
            sum_ns,
            ..Default::default()
        };
        out.h
            .add(&decoded)
            .map_err(|e| format!("histogram out of range: {e:?}"))?;
        Ok(out)
    }
}

/// A write-only front for a [`LatencyHistogram`] on hot paths: counts values in
/// HdrHistogram's own bucket layout (3 significant digits from 1 µs), so each
/// record is a shift, a count and an add, and `flush_into` hands the counts
/// over exactly. Recording straight into HdrHistogram costs about 50
/// instructions a value (range and resize checks, min/max upkeep); the
/// simulator records twice per request.
#[derive(Debug, Clone)]
pub struct HistogramBuffer {
    counts: Vec<u64>,
    /// Lowest and highest index touched since the last flush.
    lo: usize,
    hi: usize,
    sum_ns: u128,
}

/// The layout of `Histogram::new_with_bounds(1_000, HISTOGRAM_MAX_NS, 3)`: unit
/// magnitude floor(log2(1000)) = 9; 3 digits need 2 * 10^3 distinct values per
/// bucket, so 2^11 sub-buckets, half of them (2^10) new in each bucket after the first.
const UNIT_MAGNITUDE: u32 = 9;
const SUB_BUCKET_HALF_MAGNITUDE: u32 = 10;
const SUB_BUCKET_HALF: usize = 1 << SUB_BUCKET_HALF_MAGNITUDE;
const SUB_BUCKET_MASK: u64 = ((2 * SUB_BUCKET_HALF as u64) - 1) << UNIT_MAGNITUDE;
const LEADING_ZERO_BASE: u32 = 64 - UNIT_MAGNITUDE - SUB_BUCKET_HALF_MAGNITUDE - 1;

#[inline]
fn bucket_index(v: u64) -> usize {
    let bucket = LEADING_ZERO_BASE - (v | SUB_BUCKET_MASK).leading_zeros();
    let sub = (v >> (bucket + UNIT_MAGNITUDE)) as usize;
    ((bucket as usize + 1) << SUB_BUCKET_HALF_MAGNITUDE) + sub - SUB_BUCKET_HALF
}

/// The lowest value that lands at `index`.
fn bucket_value(index: usize) -> u64 {
    let mut bucket = (index >> SUB_BUCKET_HALF_MAGNITUDE) as i64 - 1;
    let mut sub = (index & (SUB_BUCKET_HALF - 1)) + SUB_BUCKET_HALF;
    if bucket < 0 {
        sub -= SUB_BUCKET_HALF;
        bucket = 0;
    }
    (sub as u64) << (bucket as u32 + UNIT_MAGNITUDE)
}

impl Default for HistogramBuffer {
    fn default() -> Self {
        HistogramBuffer {
            counts: vec![0; bucket_index(HISTOGRAM_MAX_NS) + 1],
            lo: usize::MAX,
            hi: 0,
            sum_ns: 0,
        }
    }
}

impl HistogramBuffer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Same clamping and sum as [`LatencyHistogram::record_ns`].
    #[inline]
    pub fn record_ns(&mut self, ns: u64) {
        let i = bucket_index(ns.clamp(1_000, HISTOGRAM_MAX_NS));
        self.counts[i] += 1;
        self.lo = self.lo.min(i);
        self.hi = self.hi.max(i);
        self.sum_ns += u128::from(ns.min(HISTOGRAM_MAX_NS));
    }

    /// Values recorded since the last flush or clear.
    pub fn count(&self) -> u64 {
        self.touched().iter().sum()
    }

    /// HdrHistogram's `value_at_quantile` over what is buffered, in seconds
    /// (0 when empty): the highest value equivalent to the first index whose
    /// running count reaches `ceil(q * count)`, at least 1. Reads only the
    /// touched range, where the full histogram scans all its buckets.
    pub fn quantile_seconds(&self, q: f64) -> f64 {
        let total = self.count();
        if total == 0 {
            return 0.0;
        }
        let q = q.min(1.0);
        let target = ((q * total as f64).ceil() as u64).max(1);
        let mut running = 0;
        for (k, n) in self.touched().iter().enumerate() {
            running += n;
            if running >= target {
                let i = self.lo + k;
                let ns = if q == 0.0 {
                    bucket_value(i)
                } else {
                    bucket_value(i + 1) - 1
                };
                return ns as f64 / 1e9;
            }
        }
        0.0
    }

    /// The highest value equivalent to the largest one buffered, in seconds
    /// (0 when empty), as HdrHistogram's `max`.
    pub fn max_seconds(&self) -> f64 {
        if self.lo > self.hi {
            return 0.0;
        }
        (bucket_value(self.hi + 1) - 1) as f64 / 1e9
    }

    /// Adds another buffer's values to this one; `other` is unchanged.
    pub fn add(&mut self, other: &HistogramBuffer) {
        for (k, n) in other.touched().iter().enumerate() {
            self.counts[other.lo + k] += n;
        }
        if other.lo <= other.hi {
            self.lo = self.lo.min(other.lo);
            self.hi = self.hi.max(other.hi);
        }
        self.sum_ns += other.sum_ns;
    }

    /// Forgets what was recorded since the last flush.
    pub fn clear(&mut self) {
        if self.lo <= self.hi {
            self.counts[self.lo..=self.hi].fill(0);
        }
        self.sum_ns = 0;
        self.lo = usize::MAX;
        self.hi = 0;
    }

    fn touched(&self) -> &[u64] {
        if self.lo <= self.hi {
            &self.counts[self.lo..=self.hi]
        } else {
            &[]
        }
    }

    /// Adds everything recorded since the last flush to `h`, and empties the buffer.
    pub fn flush_into(&mut self, h: &mut LatencyHistogram) {
        if self.lo <= self.hi {
            for i in self.lo..=self.hi {
                let n = std::mem::take(&mut self.counts[i]);
                if n > 0 {
                    // In range by construction, so recording cannot fail.
                    let _ = h.h.record_n(bucket_value(i), n);
                }
            }
        }
        h.sum_ns += std::mem::take(&mut self.sum_ns);
        self.lo = usize::MAX;
        self.hi = 0;
    }
}

/// Standard base64 with `=` padding, as HdrHistogram's other ports write it;
/// reading also takes the text unpadded.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_uses_the_same_buckets_as_hdrhistogram() {
        let h = LatencyHistogram::new();
        let mut v = 1_000u64;
        while v <= HISTOGRAM_MAX_NS {
            for x in [v, v + 1, v * 3 / 2, v * 2 - 1] {
                let x = x.min(HISTOGRAM_MAX_NS);
                assert_eq!(
                    bucket_value(bucket_index(x)),
                    h.h.lowest_equivalent(x),
                    "value {x}"
                );
            }
            v *= 2;
        }
    }

    #[test]
    fn a_flushed_buffer_equals_recording_directly() {
        let mut direct = LatencyHistogram::new();
        let mut via = LatencyHistogram::new();
        let mut buf = HistogramBuffer::new();
        // Spread over every bucket, the clamps at both ends included.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..3 {
            for _ in 0..20_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let ns = x >> (x % 40 + 12);
                direct.record_ns(ns);
                buf.record_ns(ns);
            }
            direct.record_ns(5);
            buf.record_ns(5);
            direct.record_ns(u64::MAX);
            buf.record_ns(u64::MAX);
            buf.flush_into(&mut via);
            assert_eq!(via.h, direct.h, "round {round}");
            assert_eq!(via.sum_ns, direct.sum_ns);
            assert_eq!(via.summary(), direct.summary());
        }
        // Flushing an empty buffer changes nothing.
        buf.flush_into(&mut via);
        assert_eq!(via.h, direct.h);
    }

    #[test]
    fn buffer_quantiles_equal_hdrhistogram_ones() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for round in 0..40u64 {
            let mut direct = LatencyHistogram::new();
            let mut buf = HistogramBuffer::new();
            let mut other = HistogramBuffer::new();
            // From one value (every quantile in one bucket) to many spread ones.
            for k in 0..(round * round * 7 + 1) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let ns = x >> (x % 40 + 12 + round % 8);
                direct.record_ns(ns);
                if k % 2 == 0 {
                    buf.record_ns(ns);
                } else {
                    other.record_ns(ns);
                }
            }
            buf.add(&other);
            assert_eq!(buf.count(), direct.count(), "round {round}");
            for q in [0.0, 0.001, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0, 1.5] {
                assert_eq!(
                    buf.quantile_seconds(q),
                    direct.quantile_seconds(q),
                    "round {round}, q {q}"
                );
            }
            assert_eq!(buf.max_seconds(), direct.max_seconds(), "round {round}");
            let mut via = LatencyHistogram::new();
            buf.clone().flush_into(&mut via);
            assert_eq!(via.summary(), direct.summary(), "round {round}");
            buf.clear();
            assert_eq!(buf.count(), 0);
            assert_eq!(buf.quantile_seconds(0.99), 0.0);
            assert_eq!(buf.max_seconds(), 0.0);
            buf.flush_into(&mut via);
            assert_eq!(
                via.summary(),
                direct.summary(),
                "a cleared buffer adds nothing"
            );
        }
    }

    #[test]
    fn round_trip_and_merge_are_exact() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        let mut all = LatencyHistogram::new();
        for i in 1..10_000u64 {
            let v = i * 12_345;
            if i % 3 == 0 {
                a.record_ns(v)
            } else {
                b.record_ns(v)
            }
            all.record_ns(v);
        }
        let a2 = LatencyHistogram::from_base64(&a.to_base64()).unwrap();
        let b2 = LatencyHistogram::from_base64(&b.to_base64()).unwrap();
        let mut merged = a2.clone();
        merged.merge(&b2);
        assert_eq!(merged.summary(), all.summary());
        assert!(LatencyHistogram::from_base64("12:???").is_err());
        assert!(LatencyHistogram::from_base64("nope").is_err());
    }

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(BASE64.encode(b"lab"), "bGFi");
        assert_eq!(BASE64.encode(b"la"), "bGE=");
        assert_eq!(BASE64.decode("bGE=").unwrap(), b"la");
        assert_eq!(BASE64.decode("bGE").unwrap(), b"la");
    }
}
