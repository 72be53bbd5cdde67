//! Streaming statistics: histograms and counters whose memory does not grow with
//! the number of requests.

use lab_results::{HistogramBuffer, LatencyHistogram, RequestCounts};

/// Per-service (and per-version) figures.
#[derive(Default)]
pub struct ServiceStats {
    pub counts: RequestCounts,
    /// Counts over requests that arrived after warm-up (for rates and SLOs).
    pub measured: RequestCounts,
    pub goodput: u64,
    pub latency: LatencyHistogram,
    pub queue: LatencyHistogram,
    /// Completions of the current interval (all, warm-up or not), and the hot-path
    /// front of `queue`; both are emptied when an interval closes.
    pub interval_buf: HistogramBuffer,
    pub queue_buf: HistogramBuffer,
    pub interval_arrivals: u64,
    pub min_ready: u32,
    pub max_ready: u32,
    pub max_desired: u32,
    pub ready_area: f64,
}

impl ServiceStats {
    pub fn fail(&mut self, reason: &'static str, measured: bool) {
        self.counts.failed += 1;
        *self
            .counts
            .failed_by_reason
            .entry(reason.to_string())
            .or_default() += 1;
        if measured {
            self.measured.failed += 1;
            *self
                .measured
                .failed_by_reason
                .entry(reason.to_string())
                .or_default() += 1;
        }
    }
}

/// Batches that can hold more than one row, per service: how full the batcher
/// fills them. Kept apart from `ServiceStats`, whose hot fields it would spread.
#[derive(Default, Clone, Copy)]
pub struct BatchCounts {
    /// Started after warm-up (folded in from the interval's counts when an
    /// interval closes, as the latency histogram is).
    pub batches: u64,
    pub rows: u64,
    /// Started in the current interval.
    pub interval_batches: u64,
    pub interval_rows: u64,
}

/// Whole-run figures that are not per service.
#[derive(Default)]
pub struct RunStats {
    /// All services' completions of the current interval, when there are several.
    pub interval_all: HistogramBuffer,
    pub interval_failures: u64,
    pub cold_start_ns: LatencyHistogram,
    pub cold_phase_sum: [f64; 4],
    pub cold_count: u64,
    pub requests_delayed: u64,
    pub events: u64,
}
