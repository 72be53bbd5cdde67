//! Turns a [`TrafficSpec`] and a seed into the exact instants of every request.
//!
//! Rate phases become piecewise-linear rate segments; arrivals are a unit-rate
//! renewal process (exponential, gamma or constant gaps) mapped through the
//! inverse of the cumulative rate, so a phase's rate shape and its burstiness are
//! independent knobs. Everything is integer nanoseconds and a fixed-algorithm RNG,
//! so the simulator and the load generator produce identical instants for a seed.

use crate::spec::{series_instant_ns, Arrivals, Phase, TrafficSpec};
use rand::RngCore;
use rand_pcg::Pcg64Mcg;
use std::sync::Arc;

/// One request of the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// Position in the stream's schedule, from 0.
    pub seq: u64,
    /// Intended send instant, nanoseconds from the start of the run.
    pub at_ns: u64,
    pub rows: u32,
}

#[derive(Debug, Clone)]
enum Piece {
    /// Rate moving linearly from `r0` to `r1` req/s over `dur_ns`.
    Rate {
        start_ns: u64,
        dur_ns: u64,
        r0: f64,
        r1: f64,
        /// Requests expected over the piece (the integral of the rate).
        total: f64,
        /// Nanoseconds per request when the rate is constant and positive: the
        /// common case skips the square root of the general inversion.
        ns_per_request: Option<f64>,
    },
    Trace {
        start_ns: u64,
        dur_ns: u64,
        offsets: Arc<Vec<u64>>,
        speedup: f64,
    },
}

/// Resolution of the piecewise-linear approximation of a diurnal cosine.
const DIURNAL_STEPS_PER_PERIOD: u64 = 1440;

/// The schedule of one traffic stream.
#[derive(Debug, Clone)]
pub struct Schedule {
    pieces: Vec<Piece>,
    arrivals: Arrivals,
    rows: u32,
    seed: u64,
}

impl Schedule {
    /// `stream` is the stream's index in the scenario (its position among the
    /// `[[traffic]]` tables), so each stream draws from its own RNG.
    pub fn new(spec: &TrafficSpec, seed: u64, stream: u32) -> Schedule {
        let mut pieces = Vec::new();
        let mut t = 0u64;
        for phase in &spec.phases {
            let dur = phase.duration().0;
            push_phase(&mut pieces, phase, t, dur);
            t += dur;
        }
        Schedule {
            pieces,
            arrivals: spec.arrivals,
            rows: spec.rows_per_request.max(1),
            seed: mix(seed ^ mix(u64::from(stream).wrapping_add(0x9E37_79B9_7F4A_7C15))),
        }
    }

    /// End of the last phase, in nanoseconds.
    pub fn end_ns(&self) -> u64 {
        self.pieces
            .last()
            .map(|p| match p {
                Piece::Rate {
                    start_ns, dur_ns, ..
                }
                | Piece::Trace {
                    start_ns, dur_ns, ..
                } => start_ns + dur_ns,
            })
            .unwrap_or(0)
    }

    /// Intended request rate at `t_ns` (req/s); for trace phases, the trace's mean rate.
    pub fn rate_at(&self, t_ns: u64) -> f64 {
        for p in &self.pieces {
            match p {
                Piece::Rate {
                    start_ns,
                    dur_ns,
                    r0,
                    r1,
                    ..
                } if t_ns >= *start_ns && t_ns < start_ns + dur_ns => {
                    let f = (t_ns - start_ns) as f64 / *dur_ns as f64;
                    return r0 + f * (r1 - r0);
                }
                Piece::Trace {
                    start_ns,
                    dur_ns,
                    offsets,
                    speedup,
                } if t_ns >= *start_ns && t_ns < start_ns + dur_ns => {
                    let _ = speedup;
                    return offsets.len() as f64 / (*dur_ns as f64 / 1e9);
                }
                _ => {}
            }
        }
        0.0
    }

    /// Expected number of requests over the whole schedule (exact for traces).
    pub fn expected_count(&self) -> f64 {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Rate { dur_ns, r0, r1, .. } => (r0 + r1) / 2.0 * (*dur_ns as f64 / 1e9),
                Piece::Trace {
                    dur_ns,
                    offsets,
                    speedup,
                    ..
                } => offsets
                    .iter()
                    .filter(|o| (**o as f64 / speedup) < *dur_ns as f64)
                    .count() as f64,
            })
            .sum()
    }

    /// Every arrival, in order.
    pub fn iter(&self) -> ArrivalIter {
        let mut rng = Pcg64Mcg::new(u128::from(self.seed) << 64 | u128::from(mix(self.seed)));
        let gap = draw_gap(&mut rng, self.arrivals);
        let mut it = ArrivalIter {
            pieces: self.pieces.clone().into(),
            arrivals: self.arrivals,
            rows: self.rows,
            rng,
            idx: 0,
            consumed: 0.0,
            gap,
            trace_pos: 0,
            seq: 0,
            constant: None,
        };
        it.enter_piece();
        it
    }

    /// Shard `index` of `count`: the arrivals whose `seq % count == index`. The
    /// shards of one schedule partition it exactly.
    pub fn iter_shard(&self, index: u32, count: u32) -> impl Iterator<Item = Arrival> {
        let count = u64::from(count.max(1));
        let index = u64::from(index);
        self.iter().filter(move |a| a.seq % count == index)
    }
}

fn push_phase(pieces: &mut Vec<Piece>, phase: &Phase, start: u64, dur: u64) {
    let mut lin = |s: u64, d: u64, r0: f64, r1: f64| {
        if d > 0 {
            pieces.push(Piece::Rate {
                start_ns: s,
                dur_ns: d,
                r0,
                r1,
                total: (r0 + r1) / 2.0 * (d as f64 / 1e9),
                ns_per_request: (r0 == r1 && r0 > 0.0).then(|| 1e9 / r0),
            });
        }
    };
    match phase {
        Phase::Constant { rate, .. } => lin(start, dur, *rate, *rate),
        Phase::Ramp { from, to, .. } => lin(start, dur, *from, *to),
        Phase::Idle { .. } => lin(start, dur, 0.0, 0.0),
        Phase::Spike {
            base,
            multiplier,
            at,
            rise,
            hold,
            decay,
            ..
        } => {
            let peak = base * multiplier;
            let mut t = start;
            for (d, r0, r1) in [
                (at.0, *base, *base),
                (rise.0, *base, peak),
                (hold.0, peak, peak),
                (decay.0, peak, *base),
            ] {
                lin(t, d, r0, r1);
                t += d;
            }
            lin(t, (start + dur).saturating_sub(t), *base, *base);
        }
        Phase::Diurnal {
            peak,
            trough,
            period,
            peak_at,
            ..
        } => {
            let step = (period.0 / DIURNAL_STEPS_PER_PERIOD).max(1_000_000_000);
            let mid = (peak + trough) / 2.0;
            let amp = (peak - trough) / 2.0;
            let rate = |t: u64| {
                let x = (t as f64 - peak_at.0 as f64) / period.0 as f64;
                mid + amp * libm::cos(2.0 * std::f64::consts::PI * x)
            };
            let mut t = 0;
            while t < dur {
                let d = step.min(dur - t);
                lin(start + t, d, rate(t), rate(t + d));
                t += d;
            }
        }
        Phase::Series {
            scale,
            speedup,
            time_shift,
            repeat,
            ..
        } => {
            let k = scale * speedup;
            let segments = rotated_segments(phase.series_samples(), time_shift.0 as f64 / 1e9);
            let played_ns = series_instant_ns(segments.last().map_or(0.0, |s| s.2), *speedup);
            for r in 0..u64::from(*repeat) {
                let base = start + r * played_ns;
                for &(p0, r0, p1, r1) in &segments {
                    let s0 = series_instant_ns(p0, *speedup);
                    let s1 = series_instant_ns(p1, *speedup);
                    lin(base + s0, s1 - s0, k * r0, k * r1);
                }
            }
        }
        Phase::Trace {
            offsets, speedup, ..
        } => pieces.push(Piece::Trace {
            start_ns: start,
            dur_ns: dur,
            offsets: offsets.0.clone(),
            speedup: *speedup,
        }),
    }
}

/// A series' linear segments `(p0, r0, p1, r1)`, positions in seconds from the
/// start of the replay, when it starts `shift` seconds into the recording and
/// wraps around to its start: the recording from `shift` to its end, then from
/// its start to `shift`. Segments tile `0..length` with no gap or overlap.
fn rotated_segments(samples: &[[f64; 2]], shift: f64) -> Vec<(f64, f64, f64, f64)> {
    let Some(first) = samples.first() else {
        return Vec::new();
    };
    let t0 = first[0];
    // Times from the recording's start.
    let pts: Vec<(f64, f64)> = samples.iter().map(|[t, r]| (t - t0, *r)).collect();
    let length = pts[pts.len() - 1].0;
    let mut out = Vec::with_capacity(pts.len() + 1);
    if pts.len() < 2 || length <= 0.0 {
        return out;
    }
    let shift = if shift > 0.0 && shift < length {
        shift
    } else {
        0.0
    };
    let at = |t: f64| -> f64 {
        // The rate at `t` on the recording's polyline.
        let i = pts.partition_point(|p| p.0 <= t).clamp(1, pts.len() - 1);
        let ((a, ra), (b, rb)) = (pts[i - 1], pts[i]);
        ra + (rb - ra) * ((t - a) / (b - a)).clamp(0.0, 1.0)
    };
    // The recording's polyline from `from` to `to`, appended at offset `origin`.
    let mut piece = |from: f64, to: f64, origin: f64| {
        let mut prev = (from, at(from));
        for &(t, r) in pts.iter().filter(|p| p.0 > from && p.0 < to) {
            out.push((origin + prev.0 - from, prev.1, origin + t - from, r));
            prev = (t, r);
        }
        out.push((origin + prev.0 - from, prev.1, origin + to - from, at(to)));
    };
    piece(shift, length, 0.0);
    if shift > 0.0 {
        piece(0.0, shift, length - shift);
    }
    // Exactly the recording's length, whatever the sums above rounded to.
    if let Some(last) = out.last_mut() {
        last.2 = length;
    }
    out
}

/// Iterator over a schedule's arrivals.
pub struct ArrivalIter {
    pieces: Arc<[Piece]>,
    arrivals: Arrivals,
    rows: u32,
    rng: Pcg64Mcg,
    idx: usize,
    /// Cumulative rate (requests) consumed inside the current rate piece.
    consumed: f64,
    /// Unit work left until the next arrival.
    gap: f64,
    trace_pos: usize,
    seq: u64,
    /// The current piece, when it is a constant positive rate: the fast path.
    constant: Option<ConstantPiece>,
}

/// A constant-rate piece's figures, copied out of the piece list so that the
/// common arrival touches nothing else.
#[derive(Debug, Clone, Copy)]
struct ConstantPiece {
    start_ns: u64,
    last_offset_ns: u64,
    total: f64,
    ns_per_request: f64,
}

impl Iterator for ArrivalIter {
    type Item = Arrival;

    #[inline]
    fn next(&mut self) -> Option<Arrival> {
        // The same arithmetic as the general path below, for the common case.
        if let Some(c) = self.constant {
            let consumed = self.consumed + self.gap;
            if consumed <= c.total {
                self.consumed = consumed;
                let offset = ((consumed * c.ns_per_request) as i64).max(0) as u64;
                self.gap = draw_gap(&mut self.rng, self.arrivals);
                return Some(self.emit(c.start_ns + offset.min(c.last_offset_ns)));
            }
        }
        self.next_general()
    }
}

impl ArrivalIter {
    fn enter_piece(&mut self) {
        self.constant = match self.pieces.get(self.idx) {
            Some(Piece::Rate {
                start_ns,
                dur_ns,
                total,
                ns_per_request: Some(k),
                ..
            }) => Some(ConstantPiece {
                start_ns: *start_ns,
                last_offset_ns: dur_ns.saturating_sub(1),
                total: *total,
                ns_per_request: *k,
            }),
            _ => None,
        };
    }

    fn next_general(&mut self) -> Option<Arrival> {
        loop {
            let piece = self.pieces.get(self.idx)?;
            match piece {
                Piece::Rate {
                    start_ns,
                    dur_ns,
                    r0,
                    r1,
                    total,
                    ns_per_request,
                } => {
                    let total = *total;
                    if self.consumed + self.gap <= total {
                        self.consumed += self.gap;
                        let offset_ns = match ns_per_request {
                            Some(k) => self.consumed * k,
                            None => {
                                let dur_s = *dur_ns as f64 / 1e9;
                                invert_linear(*r0, *r1, dur_s, self.consumed) * 1e9
                            }
                        };
                        // Offsets are far below 2^63 ns: the i64 conversion is one instruction.
                        let offset = (offset_ns as i64).max(0) as u64;
                        let offset = offset.min(dur_ns.saturating_sub(1));
                        self.gap = draw_gap(&mut self.rng, self.arrivals);
                        return Some(self.emit(start_ns + offset));
                    }
                    self.gap -= total - self.consumed;
                    self.consumed = 0.0;
                    self.idx += 1;
                    self.enter_piece();
                }
                Piece::Trace {
                    start_ns,
                    dur_ns,
                    offsets,
                    speedup,
                } => {
                    if let Some(o) = offsets.get(self.trace_pos) {
                        let off = (*o as f64 / speedup) as u64;
                        if off < *dur_ns {
                            self.trace_pos += 1;
                            return Some(self.emit(start_ns + off));
                        }
                    }
                    self.trace_pos = 0;
                    self.idx += 1;
                    self.enter_piece();
                }
            }
        }
    }

    #[inline]
    fn emit(&mut self, at_ns: u64) -> Arrival {
        let a = Arrival {
            seq: self.seq,
            at_ns,
            rows: self.rows,
        };
        self.seq += 1;
        a
    }
}

/// Time `s` into a segment whose rate moves from `r0` to `r1` over `d` seconds at
/// which the cumulative rate reaches `target`.
fn invert_linear(r0: f64, r1: f64, d: f64, target: f64) -> f64 {
    let k = (r1 - r0) / (2.0 * d);
    if k.abs() < 1e-12 {
        return if r0 > 0.0 { target / r0 } else { d };
    }
    let disc = (r0 * r0 + 4.0 * k * target).max(0.0);
    // Stable form of (-r0 + sqrt(disc)) / 2k, valid for rising and falling rates.
    let denom = r0 + disc.sqrt();
    if denom <= 0.0 {
        return d;
    }
    (2.0 * target / denom).min(d)
}

#[inline]
fn draw_gap(rng: &mut Pcg64Mcg, arrivals: Arrivals) -> f64 {
    match arrivals {
        Arrivals::Poisson => crate::exp1(rng),
        Arrivals::Uniform => 1.0,
        Arrivals::Gamma { cv } => {
            if cv <= 0.0 {
                return 1.0;
            }
            let shape = 1.0 / (cv * cv);
            gamma(rng, shape) * cv * cv
        }
    }
}

/// Uniform in (0, 1]: never zero, so its logarithm is finite.
pub(crate) fn unit_open(rng: &mut impl RngCore) -> f64 {
    ((rng.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn std_normal(rng: &mut impl RngCore) -> f64 {
    let u1 = unit_open(rng);
    let u2 = unit_open(rng);
    (-2.0 * libm::log(u1)).sqrt() * libm::cos(2.0 * std::f64::consts::PI * u2)
}

/// Gamma(shape, 1) by Marsaglia and Tsang, with the boost for shape < 1.
fn gamma(rng: &mut impl RngCore, shape: f64) -> f64 {
    if shape < 1.0 {
        let u = unit_open(rng);
        return gamma(rng, shape + 1.0) * libm::pow(u, 1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = std_normal(rng);
        let t = 1.0 + c * x;
        let v = t * t * t;
        if v <= 0.0 {
            continue;
        }
        let u = unit_open(rng);
        if libm::log(u) < 0.5 * x * x + d - d * v + d * libm::log(v) {
            return d * v;
        }
    }
}

/// SplitMix64 finalizer: spreads nearby seeds apart.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A seeded RNG with a fixed algorithm, for other pure crates that need one
/// (the simulator's service times and routing).
pub fn rng_for(seed: u64, purpose: u64) -> Pcg64Mcg {
    let s = mix(seed ^ mix(purpose));
    Pcg64Mcg::new(u128::from(s) << 64 | u128::from(mix(s)))
}

/// Reads a uniform in (0, 1] from any RNG.
pub fn uniform(rng: &mut impl RngCore) -> f64 {
    unit_open(rng)
}

pub use rand_pcg::Pcg64Mcg as Rng;
