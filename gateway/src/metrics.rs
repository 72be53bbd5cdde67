//! Prometheus text exposition of `GET /metrics`.
//!
//! Per pod, the stats of the last reporting window under the names of the
//! queue-proxy's Prometheus stats reporter (removed from Knative in 2022 in
//! favour of protobuf, still in OpenShift Serverless' docs):
//! `queue_average_concurrent_requests`, `queue_average_proxied_concurrent_requests`,
//! `queue_requests_per_second`, `queue_proxied_operations_per_second`,
//! `process_uptime`; the queue in front of `containerConcurrency` as
//! `kn_serving_queue_depth` (Knative 1.21's `kn.serving.queue.depth`).
//! Per version, the activator's buffer as `kn_revision_request_queued`.
//! The gateway's own: `lab_gateway_requests_total{code}`,
//! `lab_gateway_request_duration_seconds` (histogram),
//! `lab_gateway_errors_total{reason}` and
//! `lab_gateway_breaker_wait_seconds_total` (time requests waited for a
//! `containerConcurrency` slot, which the predictor's own clock does not see).

use crate::table::Shared;
use crate::ServiceConfig;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds in seconds: sub-millisecond for the gateway's own hop, then
/// Knative's 5 ms … 10 s.
pub const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

pub(crate) struct Counters {
    /// By service name.
    histograms: BTreeMap<String, Histogram>,
    codes: Mutex<BTreeMap<(String, u16), u64>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    breaker_wait_ns: AtomicU64,
}

impl Counters {
    pub fn new(services: &[ServiceConfig]) -> Counters {
        Counters {
            histograms: services
                .iter()
                .map(|s| {
                    (
                        s.name.clone(),
                        Histogram {
                            buckets: Default::default(),
                            count: AtomicU64::new(0),
                            sum_ns: AtomicU64::new(0),
                        },
                    )
                })
                .collect(),
            codes: Mutex::new(BTreeMap::new()),
            errors: Mutex::new(BTreeMap::new()),
            breaker_wait_ns: AtomicU64::new(0),
        }
    }

    /// One request answered; `service` empty when none matched.
    pub fn request(&self, service: &str, code: u16, took: Duration) {
        *self
            .codes
            .lock()
            .expect("counters")
            .entry((service.to_string(), code))
            .or_insert(0) += 1;
        if let Some(h) = self.histograms.get(service) {
            let s = took.as_secs_f64();
            if let Some(i) = BUCKETS.iter().position(|b| s <= *b) {
                h.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
            h.count.fetch_add(1, Ordering::Relaxed);
            h.sum_ns
                .fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        }
    }

    /// A request the gateway failed, by why.
    pub fn error(&self, reason: &'static str) {
        *self
            .errors
            .lock()
            .expect("counters")
            .entry(reason)
            .or_insert(0) += 1;
    }

    /// A request waited this long at a pod's breaker for its permit.
    pub fn breaker_wait(&self, waited: Duration) {
        self.breaker_wait_ns
            .fetch_add(waited.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn errors(&self) -> BTreeMap<&'static str, u64> {
        self.errors.lock().expect("counters").clone()
    }
}

/// Label values escaped as the text format wants.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A per-pod gauge: name, help, value.
type Gauge = (&'static str, &'static str, fn(&crate::PodStat) -> f64);

pub(crate) fn render(sh: &Shared) -> String {
    let mut out = String::new();
    let stats = sh.last_stats.lock().expect("last stats").clone();
    let gauges: [Gauge; 5] = [
        (
            "queue_average_concurrent_requests",
            "Average requests in flight at the pod over the last reporting period",
            |s| s.average_concurrent_requests,
        ),
        (
            "queue_average_proxied_concurrent_requests",
            "Of them, proxied by the activator",
            |s| s.average_proxied_concurrent_requests,
        ),
        (
            "queue_requests_per_second",
            "Requests per second at the pod over the last reporting period",
            |s| s.request_count,
        ),
        (
            "queue_proxied_operations_per_second",
            "Of them, proxied by the activator",
            |s| s.proxied_request_count,
        ),
        (
            "process_uptime",
            "Seconds since the pod was added to the gateway",
            |s| s.process_uptime.as_secs_f64(),
        ),
    ];
    for (name, help, f) in gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for s in &stats {
            let _ = writeln!(
                out,
                "{name}{{service=\"{}\",revision=\"{}\",pod=\"{}\"}} {}",
                esc(&s.service),
                esc(&s.version),
                esc(&s.pod_name),
                f(s)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP kn_serving_queue_depth Requests waiting at the pod's queue-proxy for containerConcurrency\n# TYPE kn_serving_queue_depth gauge"
    );
    for e in sh.all_endpoints() {
        let _ = writeln!(
            out,
            "kn_serving_queue_depth{{service=\"{}\",revision=\"{}\",pod=\"{}\"}} {}",
            esc(&e.service),
            esc(&e.version),
            esc(&e.pod),
            e.queued.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP kn_revision_request_queued Requests buffered at the activator\n# TYPE kn_revision_request_queued gauge"
    );
    let mut services: Vec<_> = sh.services.values().collect();
    services.sort_by(|a, b| a.cfg.name.cmp(&b.cfg.name));
    for svc in &services {
        for v in &svc.versions {
            let _ = writeln!(
                out,
                "kn_revision_request_queued{{service=\"{}\",revision=\"{}\"}} {}",
                esc(&svc.cfg.name),
                esc(&v.name),
                v.activator_queued.load(Ordering::Relaxed)
            );
        }
    }
    let c = &sh.counters;
    let _ = writeln!(
        out,
        "# HELP lab_gateway_requests_total Requests the gateway answered, by HTTP status\n# TYPE lab_gateway_requests_total counter"
    );
    for ((svc, code), n) in c.codes.lock().expect("counters").iter() {
        let _ = writeln!(
            out,
            "lab_gateway_requests_total{{service=\"{}\",code=\"{code}\"}} {n}",
            esc(svc)
        );
    }
    let name = "lab_gateway_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time from a request's arrival at the gateway to its response headers\n# TYPE {name} histogram"
    );
    for (svc, h) in &c.histograms {
        let mut cum = 0;
        for (i, b) in BUCKETS.iter().enumerate() {
            cum += h.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{service=\"{}\",le=\"{b}\"}} {cum}",
                esc(svc)
            );
        }
        let count = h.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{service=\"{}\",le=\"+Inf\"}} {count}",
            esc(svc)
        );
        let _ = writeln!(
            out,
            "{name}_sum{{service=\"{}\"}} {}",
            esc(svc),
            h.sum_ns.load(Ordering::Relaxed) as f64 / 1e9
        );
        let _ = writeln!(out, "{name}_count{{service=\"{}\"}} {count}", esc(svc));
    }
    let _ = writeln!(
        out,
        "# HELP lab_gateway_errors_total Requests the gateway failed, by reason\n# TYPE lab_gateway_errors_total counter"
    );
    for (reason, n) in c.errors() {
        let _ = writeln!(out, "lab_gateway_errors_total{{reason=\"{reason}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP lab_gateway_breaker_wait_seconds_total Time requests waited at a pod's queue-proxy for a containerConcurrency slot\n# TYPE lab_gateway_breaker_wait_seconds_total counter\nlab_gateway_breaker_wait_seconds_total {}",
        c.breaker_wait_ns.load(Ordering::Relaxed) as f64 / 1e9
    );
    out
}
