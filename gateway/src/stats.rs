//! Per-pod stats as Knative's queue-proxy reports them each period
//! (`knative/networking: pkg/http/stats/request.go`): concurrency integrated
//! over time, `AverageConcurrency = Σ(concurrency·Δt) / Σ Δt`, and request
//! counts, each also for the requests the activator proxied.

use crate::table::Endpoint;
use std::time::{Duration, Instant};

/// The running integral of one pod's current window.
#[derive(Debug, Clone)]
pub struct Window {
    start: Instant,
    last: Instant,
    concurrency: u64,
    proxied_concurrency: u64,
    /// Σ concurrency·Δt in nanoseconds.
    area: u128,
    proxied_area: u128,
    requests: u64,
    proxied_requests: u64,
}

/// A closed window.
#[derive(Debug, Clone, Copy)]
pub struct Closed {
    window: Duration,
    area: u128,
    proxied_area: u128,
    requests: u64,
    proxied_requests: u64,
}

impl Window {
    pub fn new(now: Instant) -> Window {
        Window {
            start: now,
            last: now,
            concurrency: 0,
            proxied_concurrency: 0,
            area: 0,
            proxied_area: 0,
            requests: 0,
            proxied_requests: 0,
        }
    }

    fn advance(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_nanos();
        self.area += u128::from(self.concurrency) * dt;
        self.proxied_area += u128::from(self.proxied_concurrency) * dt;
        self.last = now.max(self.last);
    }

    /// `ReqIn` / `ProxiedIn`: a request reached the pod's queue-proxy.
    pub fn request_in(&mut self, now: Instant, proxied: bool) {
        self.advance(now);
        self.concurrency += 1;
        self.requests += 1;
        if proxied {
            self.proxied_concurrency += 1;
            self.proxied_requests += 1;
        }
    }

    /// `ReqOut` / `ProxiedOut`: its response ended.
    pub fn request_out(&mut self, now: Instant, proxied: bool) {
        self.advance(now);
        self.concurrency = self.concurrency.saturating_sub(1);
        if proxied {
            self.proxied_concurrency = self.proxied_concurrency.saturating_sub(1);
        }
    }

    /// Ends the window at `now` and starts the next one, with the requests
    /// still in flight carried over.
    pub fn close(&mut self, now: Instant) -> Closed {
        self.advance(now);
        let closed = Closed {
            window: now.saturating_duration_since(self.start),
            area: self.area,
            proxied_area: self.proxied_area,
            requests: self.requests,
            proxied_requests: self.proxied_requests,
        };
        self.start = self.last;
        self.area = 0;
        self.proxied_area = 0;
        self.requests = 0;
        self.proxied_requests = 0;
        closed
    }
}

/// Knative's `Stat` for one pod over one reporting window, plus the raw
/// counts behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodStat {
    pub service: String,
    pub version: String,
    pub pod_name: String,
    pub endpoint: crate::EndpointId,
    pub average_concurrent_requests: f64,
    pub average_proxied_concurrent_requests: f64,
    /// Requests per second over the window (Knative: count / period).
    pub request_count: f64,
    pub proxied_request_count: f64,
    /// Requests that arrived in the window, and of them proxied.
    pub requests: u64,
    pub proxied_requests: u64,
    /// Σ concurrency·Δt over the window, in request·seconds.
    pub concurrency_seconds: f64,
    /// Requests waiting at the pod's queue-proxy for a `containerConcurrency`
    /// permit when the window closed (`kn_serving_queue_depth`).
    pub queue_depth: usize,
    pub window: Duration,
    pub process_uptime: Duration,
}

impl Closed {
    pub(crate) fn stat(self, e: &Endpoint, now: Instant) -> PodStat {
        let secs = self.window.as_secs_f64();
        let per = |x: f64| if secs > 0.0 { x / secs } else { 0.0 };
        let area = self.area as f64 / 1e9;
        let proxied_area = self.proxied_area as f64 / 1e9;
        PodStat {
            service: e.service.clone(),
            version: e.version.clone(),
            pod_name: e.pod.clone(),
            endpoint: e.id,
            average_concurrent_requests: per(area),
            average_proxied_concurrent_requests: per(proxied_area),
            request_count: per(self.requests as f64),
            proxied_request_count: per(self.proxied_requests as f64),
            requests: self.requests,
            proxied_requests: self.proxied_requests,
            concurrency_seconds: area,
            queue_depth: e.queued.load(std::sync::atomic::Ordering::Relaxed),
            window: self.window,
            process_uptime: now.saturating_duration_since(e.started),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_half_second_requests_average_one() {
        // Knative's example: 2 requests of 500 ms each in a 1 s window.
        let t0 = Instant::now();
        let ms = |m| t0 + Duration::from_millis(m);
        let mut w = Window::new(t0);
        w.request_in(ms(0), false);
        w.request_out(ms(500), false);
        w.request_in(ms(500), true);
        w.request_out(ms(1000), true);
        let c = w.close(ms(1000));
        assert_eq!(c.window, Duration::from_secs(1));
        assert_eq!(c.area, 1_000_000_000);
        assert_eq!(c.proxied_area, 500_000_000);
        assert_eq!((c.requests, c.proxied_requests), (2, 1));
    }

    #[test]
    fn a_request_across_windows_counts_once_and_integrates_in_both() {
        let t0 = Instant::now();
        let ms = |m| t0 + Duration::from_millis(m);
        let mut w = Window::new(t0);
        w.request_in(ms(250), false);
        let a = w.close(ms(1000));
        w.request_out(ms(1500), false);
        let b = w.close(ms(2000));
        assert_eq!((a.requests, a.area), (1, 750_000_000));
        assert_eq!((b.requests, b.area), (0, 500_000_000));
    }
}
