//! The signals a simulator or live controller can supply, and how metric names found in
//! manifests (HPA metric names, KEDA Prometheus queries) map onto them.

use serde::{Deserialize, Serialize};

/// One measurable quantity of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// CPU use in millicores.
    Cpu,
    /// Memory use in bytes.
    Memory,
    /// Requests in flight (including those buffered at the activator, service-wide).
    Concurrency,
    /// Requests per second.
    #[serde(rename = "rps")]
    RequestsPerSecond,
    /// Requests waiting in a queue.
    QueueDepth,
    /// GPU busy percentage, 0..100.
    GpuUtilization,
}

impl Signal {
    pub const ALL: [Signal; 6] = [
        Signal::Cpu,
        Signal::Memory,
        Signal::Concurrency,
        Signal::RequestsPerSecond,
        Signal::QueueDepth,
        Signal::GpuUtilization,
    ];

    /// The spelling used in scenario files (`signal = "rps"`).
    pub fn name(self) -> &'static str {
        match self {
            Signal::Cpu => "cpu",
            Signal::Memory => "memory",
            Signal::Concurrency => "concurrency",
            Signal::RequestsPerSecond => "rps",
            Signal::QueueDepth => "queue_depth",
            Signal::GpuUtilization => "gpu_utilization",
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Values of every signal at one instant, either for one pod or summed over a service.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub struct SignalValues {
    pub cpu_milli: f64,
    pub memory_bytes: f64,
    pub concurrency: f64,
    pub rps: f64,
    pub queue_depth: f64,
    /// Percent, 0..100.
    pub gpu_utilization: f64,
}

impl SignalValues {
    pub fn get(&self, s: Signal) -> f64 {
        match s {
            Signal::Cpu => self.cpu_milli,
            Signal::Memory => self.memory_bytes,
            Signal::Concurrency => self.concurrency,
            Signal::RequestsPerSecond => self.rps,
            Signal::QueueDepth => self.queue_depth,
            Signal::GpuUtilization => self.gpu_utilization,
        }
    }
}

/// Metric names we recognise, with the signal each stands for. The `lab_predictor_*`
/// names are what our predictor exports; the plain names are for hand-written scenarios.
pub const KNOWN_METRIC_NAMES: &[(&str, Signal)] = &[
    ("lab_predictor_inflight_requests", Signal::Concurrency),
    ("lab_predictor_queue_depth", Signal::QueueDepth),
    ("lab_predictor_requests_total", Signal::RequestsPerSecond),
    // A counter of busy seconds: `rate()` of it is the busy share, 0..1.
    (
        "lab_predictor_gpu_busy_seconds_total",
        Signal::GpuUtilization,
    ),
    // The gauge the predictor exported before the counter.
    ("lab_predictor_gpu_busy_ratio", Signal::GpuUtilization),
    ("concurrency", Signal::Concurrency),
    ("rps", Signal::RequestsPerSecond),
    ("requests_per_second", Signal::RequestsPerSecond),
    ("queue_depth", Signal::QueueDepth),
    ("queue_length", Signal::QueueDepth),
    ("gpu_utilization", Signal::GpuUtilization),
    ("cpu", Signal::Cpu),
    ("memory", Signal::Memory),
];

/// A signal read in the units a manifest's quantities use: `value = signal * scale`
/// (CPU is kept in millicores but written in cores; the GPU busy ratio is 0..1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub signal: Signal,
    pub scale: f64,
}

impl Reading {
    pub fn of(signal: Signal) -> Reading {
        let scale = if signal == Signal::Cpu { 1e-3 } else { 1.0 };
        Reading { signal, scale }
    }
    pub fn read(&self, v: &SignalValues) -> f64 {
        v.get(self.signal) * self.scale
    }
}

/// Resolves a metric name or PromQL query to a reading, unless `signal` overrides it.
pub fn reading_for(text: &str, signal: Option<Signal>) -> Result<Reading, String> {
    if let Some(s) = signal {
        return Ok(Reading::of(s));
    }
    let s = resolve(text)?;
    let ratio = text.contains("lab_predictor_gpu_busy_ratio")
        || text.contains("lab_predictor_gpu_busy_seconds_total");
    Ok(if ratio {
        Reading {
            signal: s,
            scale: 0.01,
        }
    } else {
        Reading::of(s)
    })
}

/// Resolves a metric name or a PromQL query to a signal: an exact known name, or a query
/// that mentions known names all meaning the same signal.
pub fn resolve(text: &str) -> Result<Signal, String> {
    let t = text.trim();
    if let Some((_, s)) = KNOWN_METRIC_NAMES.iter().find(|(n, _)| *n == t) {
        return Ok(*s);
    }
    let mut found: Vec<(&str, Signal)> = Vec::new();
    for (name, sig) in KNOWN_METRIC_NAMES
        .iter()
        .filter(|(n, _)| n.starts_with("lab_"))
    {
        if mentions(t, name) && !found.iter().any(|(_, s)| s == sig) {
            found.push((name, *sig));
        }
    }
    match found.as_slice() {
        [(_, s)] => Ok(*s),
        [] => Err(format!(
            "cannot tell which signal `{t}` measures; use one of the known metric names ({}) or set `signal` to one of {}",
            KNOWN_METRIC_NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
            signal_choices()
        )),
        many => Err(format!(
            "`{t}` mentions metrics of different signals ({}); set `signal` to one of {}",
            many.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
            signal_choices()
        )),
    }
}

/// `cpu, memory, concurrency, ...` for error messages.
pub fn signal_choices() -> String {
    Signal::ALL
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// True when `name` occurs in `query` as a whole identifier.
fn mentions(query: &str, name: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    query.match_indices(name).any(|(i, _)| {
        let before = query[..i].chars().next_back();
        let after = query[i + name.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_resolve_by_the_metric_they_mention() {
        assert_eq!(
            resolve("sum(rate(lab_predictor_requests_total[1m]))"),
            Ok(Signal::RequestsPerSecond)
        );
        assert_eq!(resolve("queue_depth"), Ok(Signal::QueueDepth));
        assert_eq!(
            resolve("sum(lab_predictor_inflight_requests{service=\"a\"})"),
            Ok(Signal::Concurrency)
        );
        // A longer identifier that merely contains a known name does not count.
        assert!(resolve("sum(lab_predictor_queue_depth_max)").is_err());
        // The busy-seconds counter's rate is a 0..1 share, like the old ratio.
        let r = reading_for("avg(rate(lab_predictor_gpu_busy_seconds_total[1m]))", None).unwrap();
        assert_eq!((r.signal, r.scale), (Signal::GpuUtilization, 0.01));
    }

    #[test]
    fn unknown_or_mixed_queries_list_the_choices() {
        let e = resolve("sum(http_requests)").unwrap_err();
        assert!(e.contains("lab_predictor_inflight_requests") && e.contains("signal"));
        let e = resolve("lab_predictor_queue_depth / lab_predictor_inflight_requests").unwrap_err();
        assert!(e.contains("different signals"), "{e}");
    }
}
