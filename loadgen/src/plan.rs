//! The arrivals this process sends: every stream's schedule, scaled, cut to the
//! run's duration, sharded, and merged into one sequence ordered by instant.

use crate::config::{scale_spec, LoadConfig};
use lab_traffic::{Arrival, Schedule};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One request to send: which stream, and its place in that stream's schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Planned {
    pub stream: usize,
    pub arrival: Arrival,
}

/// Schedules of the config's streams after `--rate-scale`.
pub fn schedules(config: &LoadConfig) -> Vec<Schedule> {
    config
        .streams
        .iter()
        .map(|s| {
            Schedule::new(
                &scale_spec(&s.spec, config.rate_scale),
                config.seed,
                s.index,
            )
        })
        .collect()
}

/// Length of the replay in nanoseconds: the longest stream, cut by `--duration`.
pub fn end_ns(config: &LoadConfig) -> u64 {
    let longest = schedules(config)
        .iter()
        .map(Schedule::end_ns)
        .max()
        .unwrap_or(0);
    match config.duration {
        Some(d) => longest.min(d.as_nanos() as u64),
        None => longest,
    }
}

/// All arrivals of this shard in order of intended instant (ties: stream order).
pub fn arrivals(config: &LoadConfig) -> impl Iterator<Item = Planned> + Send + 'static {
    part(config, 0, 1)
}

/// Part `index` of `count` of this shard's arrivals, for one pacing thread: in
/// each stream, the shard's `k`-th arrival (`seq = I + k*N` for shard `I/N`)
/// goes to part `k % count`, so the parts partition the shard exactly (it is
/// the shard `I + index*N` of `N*count`), each in order of instant.
pub fn part(
    config: &LoadConfig,
    index: u32,
    count: u32,
) -> impl Iterator<Item = Planned> + Send + 'static {
    let end = end_ns(config);
    let shard = config.shard;
    // `LoadConfig::validate` keeps shard count times threads within u32.
    let n = shard.count.saturating_mul(count.max(1));
    let i = shard.index + shard.count.saturating_mul(index);
    let iters: Vec<_> = schedules(config)
        .into_iter()
        .map(|s| s.iter_shard(i, n))
        .collect();
    Merge::new(iters).take_while(move |p| p.arrival.at_ns < end)
}

/// k-way merge of per-stream iterators, each already sorted by instant.
struct Merge<I: Iterator<Item = Arrival>> {
    iters: Vec<I>,
    heads: BinaryHeap<Reverse<(u64, usize, u64, u32)>>,
}

impl<I: Iterator<Item = Arrival>> Merge<I> {
    fn new(mut iters: Vec<I>) -> Self {
        let mut heads = BinaryHeap::new();
        for (i, it) in iters.iter_mut().enumerate() {
            if let Some(a) = it.next() {
                heads.push(Reverse((a.at_ns, i, a.seq, a.rows)));
            }
        }
        Merge { iters, heads }
    }
}

impl<I: Iterator<Item = Arrival>> Iterator for Merge<I> {
    type Item = Planned;

    fn next(&mut self) -> Option<Planned> {
        let Reverse((at_ns, stream, seq, rows)) = self.heads.pop()?;
        if let Some(a) = self.iters[stream].next() {
            self.heads.push(Reverse((a.at_ns, stream, a.seq, a.rows)));
        }
        Some(Planned {
            stream,
            arrival: Arrival { seq, at_ns, rows },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{constant_rate, Protocol, Shard, Stream};
    use lab_traffic::Arrivals;
    use std::time::Duration;

    fn config(rates: &[f64]) -> LoadConfig {
        let streams = rates
            .iter()
            .enumerate()
            .map(|(i, r)| Stream {
                spec: constant_rate(*r, Duration::from_secs(2), Arrivals::Poisson),
                index: i as u32,
                service: format!("s{i}"),
                model: format!("m{i}"),
            })
            .collect();
        LoadConfig::new("http://127.0.0.1:1", Protocol::V2Rest, streams)
    }

    #[test]
    fn merged_streams_are_ordered_and_complete() {
        let c = config(&[100.0, 37.0]);
        let all: Vec<Planned> = arrivals(&c).collect();
        assert!(all
            .windows(2)
            .all(|w| w[0].arrival.at_ns <= w[1].arrival.at_ns));
        for (i, s) in schedules(&c).iter().enumerate() {
            let own: Vec<Arrival> = all
                .iter()
                .filter(|p| p.stream == i)
                .map(|p| p.arrival)
                .collect();
            assert_eq!(own, s.iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn shards_partition_the_plan() {
        let mut c = config(&[300.0, 50.0]);
        let whole: Vec<Planned> = arrivals(&c).collect();
        let mut parts = Vec::new();
        for index in 0..3 {
            c.shard = Shard { index, count: 3 };
            parts.extend(arrivals(&c));
        }
        parts.sort_by_key(|p| (p.arrival.at_ns, p.stream, p.arrival.seq));
        let mut sorted = whole.clone();
        sorted.sort_by_key(|p| (p.arrival.at_ns, p.stream, p.arrival.seq));
        assert_eq!(parts, sorted);
    }

    #[test]
    fn thread_parts_partition_each_shard_in_order() {
        let mut c = config(&[300.0, 50.0]);
        for (index, count) in [(0, 1), (1, 3)] {
            c.shard = Shard { index, count };
            let shard: Vec<Planned> = arrivals(&c).collect();
            let mut parts = Vec::new();
            for t in 0..4 {
                let p: Vec<Planned> = part(&c, t, 4).collect();
                assert!(p
                    .windows(2)
                    .all(|w| w[0].arrival.at_ns <= w[1].arrival.at_ns));
                assert!(!p.is_empty());
                parts.extend(p);
            }
            let key = |p: &Planned| (p.arrival.at_ns, p.stream, p.arrival.seq);
            parts.sort_by_key(key);
            let mut sorted = shard.clone();
            sorted.sort_by_key(key);
            assert_eq!(parts, sorted);
        }
    }

    #[test]
    fn duration_and_scale_cut_the_plan() {
        let mut c = config(&[1000.0]);
        c.streams[0].spec.arrivals = Arrivals::Uniform;
        assert_eq!(arrivals(&c).count(), 2000);
        c.duration = Some(Duration::from_millis(500));
        // Arrivals every 1 ms from 1 ms: the one due at exactly 500 ms is past the end.
        assert_eq!(arrivals(&c).count(), 499);
        c.rate_scale = 0.1;
        assert_eq!(arrivals(&c).count(), 49);
        assert!(arrivals(&c).all(|p| p.arrival.at_ns < 500_000_000));
    }
}
