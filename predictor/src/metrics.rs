//! Prometheus metrics in the text exposition format, written by hand: a handful of
//! counters, gauges and histograms does not justify a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Latency buckets in seconds: 100 µs to 10 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Batch sizes in rows.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

#[derive(Clone)]
struct Hist {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Hist {
    fn new(bounds: &'static [f64]) -> Hist {
        Hist {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }
    fn observe(&mut self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i] += 1;
        }
        self.sum += v;
        self.count += 1;
    }
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cumulative += c;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// Per-model histograms, created on first use.
struct HistFamily {
    bounds: &'static [f64],
    by_model: BTreeMap<String, Hist>,
}

impl HistFamily {
    fn new(bounds: &'static [f64]) -> HistFamily {
        HistFamily {
            bounds,
            by_model: BTreeMap::new(),
        }
    }
    fn observe(&mut self, model: &str, v: f64) {
        if let Some(h) = self.by_model.get_mut(model) {
            h.observe(v);
        } else {
            let mut h = Hist::new(self.bounds);
            h.observe(v);
            self.by_model.insert(model.to_string(), h);
        }
    }
}

/// Time with at least one execution of a model running: the (emulated) GPU's
/// busy time as DCGM counts it, for `rate()` to average over any window.
#[derive(Default)]
struct Busy {
    active: u32,
    since: Option<Instant>,
    total: Duration,
}

impl Busy {
    fn total_at(&self, now: Instant) -> Duration {
        match self.since {
            Some(since) if self.active > 0 => self.total + now.saturating_duration_since(since),
            _ => self.total,
        }
    }
}

struct Inner {
    requests: BTreeMap<(String, u16), u64>,
    request: HistFamily,
    queue: HistFamily,
    compute: HistFamily,
    batch: HistFamily,
    busy: BTreeMap<String, Busy>,
    inflight: BTreeMap<String, i64>,
}

pub struct Metrics {
    inner: Mutex<Inner>,
    inflight_total: AtomicI64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            inner: Mutex::new(Inner {
                requests: BTreeMap::new(),
                request: HistFamily::new(SECONDS_BUCKETS),
                queue: HistFamily::new(SECONDS_BUCKETS),
                compute: HistFamily::new(SECONDS_BUCKETS),
                batch: HistFamily::new(BATCH_BUCKETS),
                busy: BTreeMap::new(),
                inflight: BTreeMap::new(),
            }),
            inflight_total: AtomicI64::new(0),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        // A panic elsewhere must not take metrics down with it.
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g)
    }

    /// One finished request: its status code and end-to-end latency.
    pub fn request(&self, model: &str, code: u16, seconds: f64) {
        self.with(|m| {
            *m.requests.entry((model.to_string(), code)).or_insert(0) += 1;
            m.request.observe(model, seconds);
        });
    }

    pub fn queued(&self, model: &str, seconds: f64) {
        self.with(|m| m.queue.observe(model, seconds));
    }

    pub fn executed(&self, model: &str, rows: u32, seconds: f64) {
        self.with(|m| {
            m.compute.observe(model, seconds);
            m.batch.observe(model, f64::from(rows));
        });
    }

    pub fn inflight_add(&self, model: &str, delta: i64) {
        self.inflight_total.fetch_add(delta, Ordering::Relaxed);
        self.with(|m| {
            if let Some(n) = m.inflight.get_mut(model) {
                *n += delta;
            } else {
                m.inflight.insert(model.to_string(), delta);
            }
        });
    }

    /// Inference requests being handled now, all models together.
    pub fn inflight_total(&self) -> i64 {
        self.inflight_total.load(Ordering::Relaxed)
    }

    pub fn busy_begin(&self, model: &str) {
        let now = Instant::now();
        self.with(|m| {
            let b = m.busy.entry(model.to_string()).or_default();
            if b.active == 0 {
                b.since = Some(now);
            }
            b.active += 1;
        });
    }

    pub fn busy_end(&self, model: &str) {
        let now = Instant::now();
        self.with(|m| {
            let b = m.busy.entry(model.to_string()).or_default();
            b.active = b.active.saturating_sub(1);
            if b.active == 0 {
                if let Some(since) = b.since.take() {
                    b.total += now.saturating_duration_since(since);
                }
            }
        });
    }

    /// Busy seconds of a model so far.
    pub fn busy_seconds(&self, model: &str) -> f64 {
        let now = Instant::now();
        self.with(|m| {
            m.busy
                .get(model)
                .map_or(0.0, |b| b.total_at(now).as_secs_f64())
        })
    }

    /// The exposition text; `queue_depths` are (model, queued requests).
    pub fn render(&self, queue_depths: &[(String, usize)]) -> String {
        let mut out = String::with_capacity(8192);
        self.with(|m| {
            out.push_str("# HELP lab_predictor_requests_total Inference requests by model and HTTP status code (gRPC codes mapped to HTTP).\n");
            out.push_str("# TYPE lab_predictor_requests_total counter\n");
            for ((model, code), n) in &m.requests {
                let _ = writeln!(
                    out,
                    "lab_predictor_requests_total{{model=\"{model}\",code=\"{code}\"}} {n}"
                );
            }
            let families: [(&str, &str, &HistFamily); 4] = [
                ("lab_predictor_request_duration_seconds", "End-to-end inference request latency in the server.", &m.request),
                ("lab_predictor_queue_duration_seconds", "Time a request waited in the batching queue.", &m.queue),
                ("lab_predictor_compute_duration_seconds", "Time one batch execution took (including emulated GPU hold).", &m.compute),
                ("lab_predictor_batch_size", "Rows per executed batch.", &m.batch),
            ];
            for (name, help, fam) in families {
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
                for (model, h) in &fam.by_model {
                    h.render(&mut out, name, &format!("model=\"{model}\""));
                }
            }
        });
        let now = Instant::now();
        self.with(|m| {
            out.push_str("# HELP lab_predictor_inflight_requests Inference requests being handled now.\n# TYPE lab_predictor_inflight_requests gauge\n");
            for (model, n) in &m.inflight {
                let _ = writeln!(out, "lab_predictor_inflight_requests{{model=\"{model}\"}} {n}");
            }
            out.push_str("# HELP lab_predictor_gpu_busy_seconds_total Seconds with at least one execution of the model running on the (emulated) GPU or the CPU.\n# TYPE lab_predictor_gpu_busy_seconds_total counter\n");
            for (model, b) in &m.busy {
                let _ = writeln!(
                    out,
                    "lab_predictor_gpu_busy_seconds_total{{model=\"{model}\"}} {:.6}",
                    b.total_at(now).as_secs_f64()
                );
            }
        });
        out.push_str("# HELP lab_predictor_queue_depth Requests waiting in the batching queue.\n# TYPE lab_predictor_queue_depth gauge\n");
        for (model, n) in queue_depths {
            let _ = writeln!(out, "lab_predictor_queue_depth{{model=\"{model}\"}} {n}");
        }
        out.push_str("# HELP lab_predictor_build_info The predictor's version; always 1.\n# TYPE lab_predictor_build_info gauge\n");
        let _ = writeln!(
            out,
            "lab_predictor_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_with_inf_equal_to_count() {
        let m = Metrics::new();
        m.request("iris", 200, 0.0003);
        m.request("iris", 200, 0.02);
        m.request("iris", 400, 20.0);
        let text = m.render(&[("iris".into(), 0)]);
        assert!(text.contains("lab_predictor_requests_total{model=\"iris\",code=\"200\"} 2"));
        assert!(text.contains("lab_predictor_requests_total{model=\"iris\",code=\"400\"} 1"));
        assert!(text.contains(
            "lab_predictor_request_duration_seconds_bucket{model=\"iris\",le=\"0.0005\"} 1"
        ));
        assert!(text
            .contains("lab_predictor_request_duration_seconds_bucket{model=\"iris\",le=\"10\"} 2"));
        assert!(text.contains(
            "lab_predictor_request_duration_seconds_bucket{model=\"iris\",le=\"+Inf\"} 3"
        ));
        assert!(text.contains("lab_predictor_request_duration_seconds_count{model=\"iris\"} 3"));
    }
}
