//! How autoscaler observations are built from scraped metrics, the same at
//! every level: a counter's rate over Prometheus' `rate()` window, a pod's
//! signals over one scrape interval, the CPU a pod is taken to use.

use std::collections::VecDeque;

const NS: f64 = 1e9;

/// `rate(counter[window])` from the samples a scraper took: the increase
/// between the oldest sample still inside the window and the newest, over the
/// time between them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RateWindow {
    /// (scrape instant in ns, counter value), oldest first.
    samples: VecDeque<(u64, u64)>,
}

impl RateWindow {
    pub fn new() -> RateWindow {
        RateWindow::default()
    }

    /// Records a scrape of the counter at `now` and returns the per-second
    /// rate over `window_ns` (0 until two samples span some time).
    pub fn scrape(&mut self, now: u64, total: u64, window_ns: u64) -> f64 {
        self.samples.push_back((now, total));
        // Keep one sample at or before the window's start, so the rate spans it.
        while self.samples.len() > 2 && self.samples[1].0 + window_ns <= now {
            self.samples.pop_front();
        }
        let (t0, c0) = self.samples[0];
        if now > t0 {
            total.saturating_sub(c0) as f64 / ((now - t0) as f64 / NS)
        } else {
            0.0
        }
    }

    /// The counter at the last scrape.
    pub fn last_total(&self) -> Option<u64> {
        self.samples.back().map(|s| s.1)
    }
}

/// The CPU a pod uses while it serves: a tenth of its request when idle,
/// all of it when busy (our model; the results say so where it matters).
pub fn cpu_usage_milli(request_milli: f64, busy_fraction: f64) -> f64 {
    request_milli * (0.1 + 0.9 * busy_fraction)
}

/// Mean concurrency over an interval from its integral (request-ns) and its
/// length.
pub fn mean_concurrency(area: u128, elapsed_ns: u64) -> f64 {
    area as f64 / elapsed_ns.max(1) as f64
}

/// A service's concurrency or queue as its autoscaler reads it at a
/// decision: the last scraped figure, but never less than the requests
/// buffered at the activator right now (the activator reports those itself,
/// so a service at zero is seen to have demand before any scrape).
pub fn with_activator(scraped: f64, buffered: usize) -> f64 {
    scraped.max(buffered as f64)
}

/// The replicas an autoscaler's recommendation becomes on the Deployment:
/// within `[min, max]`, where a `min` of 0 lets the service reach zero and a
/// `max` of 0 still allows one replica.
pub fn clamp_replicas(recommended: u32, min: u32, max: u32) -> u32 {
    recommended
        .min(max.max(1))
        .max(if min == 0 { 0 } else { min.min(recommended) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffered_requests_are_a_floor_not_an_addition() {
        assert_eq!(with_activator(0.0, 3), 3.0);
        assert_eq!(with_activator(5.5, 3), 5.5);
        assert_eq!(with_activator(0.25, 0), 0.25);
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn rate_spans_the_window_and_no_more() {
        let mut w = RateWindow::new();
        assert_eq!(w.scrape(0, 0, 60 * S), 0.0);
        // 10 req/s for the first 30 s.
        assert_eq!(w.scrape(15 * S, 150, 60 * S), 10.0);
        assert_eq!(w.scrape(30 * S, 300, 60 * S), 10.0);
        // Then 20 req/s: the 60 s window still holds the slow part.
        let r = w.scrape(60 * S, 900, 60 * S);
        assert_eq!(r, 15.0);
        // 45 s later the slow samples have left the window.
        w.scrape(75 * S, 1200, 60 * S);
        w.scrape(90 * S, 1500, 60 * S);
        let r = w.scrape(105 * S, 1800, 60 * S);
        assert_eq!(r, 20.0);
        assert_eq!(w.last_total(), Some(1800));
    }

    #[test]
    fn a_counter_reset_reads_as_no_increase_rather_than_an_underflow() {
        let mut w = RateWindow::new();
        w.scrape(0, 100, 60 * S);
        assert_eq!(w.scrape(15 * S, 10, 60 * S), 0.0);
    }

    #[test]
    fn replicas_stay_within_min_and_max() {
        assert_eq!(clamp_replicas(7, 1, 5), 5);
        assert_eq!(clamp_replicas(0, 0, 5), 0, "scale to zero");
        assert_eq!(
            clamp_replicas(0, 2, 5),
            0,
            "min applies only up to the recommendation"
        );
        assert_eq!(clamp_replicas(3, 0, 0), 1, "max 0 still allows one");
        assert_eq!(clamp_replicas(3, 2, 1), 2, "min wins over a smaller max");
        assert_eq!(cpu_usage_milli(1000.0, 0.0), 100.0);
        assert_eq!(cpu_usage_milli(1000.0, 1.0), 1000.0);
        assert_eq!(mean_concurrency(3 * S as u128, 2 * S), 1.5);
    }
}
