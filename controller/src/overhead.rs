//! What the local stack adds to every request beyond the model server's own
//! time, measured in the run, so that `lab run --level local --compare-sim`
//! can give the simulator what was really played. The stack's overhead is
//! wall-clock: under `--time-scale K` it does not shrink with the scenario,
//! and reads as K times larger in scenario time.
//!
//! Three clocks meet here, all means over the run in run time:
//! - the client's latency (the load generator, completed requests);
//! - the gateway's: from a request's arrival to its response headers
//!   (`lab_gateway_request_duration_seconds`), and the time it held the
//!   request at a pod (its stats windows, queue-proxy style: from the pod's
//!   pick to the end of the response body) less the time it waited there for
//!   a `containerConcurrency` slot (`lab_gateway_breaker_wait_seconds_total`:
//!   the pod queue the simulator models, before the predictor's clock starts);
//! - the predictor's own (`lab_predictor_request_duration_seconds`, read
//!   back from Prometheus, which scraped every pod, also the ones since
//!   deleted).
//!
//! Beside them, the emulated GPU's own figure: the predictor's mean hold per
//! batch (`lab_predictor_compute_duration_seconds`) and mean batch size, which
//! the simulator is not given (its holds are the profile's) but which say
//! whether the local pods served at the profile's speed: a hold that overshoots
//! under `--time-scale` raises every pod's utilisation by the same factor.
//!
//! Client minus gateway is the ingress share (encoding, the loopback hop to
//! the gateway and back, decoding), in no pod's concurrency; time at the pod
//! minus the predictor's is the queue-proxy share (the hop to the pod and
//! back), in the pod's concurrency. A cold start's wait at the activator is
//! in both the client's and the gateway's figure and cancels out.

use lab_scenario::Scenario;
use lab_units::Dur;

/// Failed requests are in the gateway's histogram but not in the client's
/// latency; past this share of all answers the difference of the two means
/// says more about the failures than about the hop.
const MAX_FAILED_SHARE: f64 = 0.01;

/// The overhead one local run measured, in run-time seconds per request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeasuredOverhead {
    /// Client mean latency minus the gateway's mean time per request.
    pub ingress_seconds: Option<f64>,
    /// The gateway's mean time at a pod minus the predictor's mean request time.
    pub queue_proxy_seconds: Option<f64>,
    pub client_mean_seconds: Option<f64>,
    pub gateway_mean_seconds: Option<f64>,
    pub at_pod_mean_seconds: Option<f64>,
    pub predictor_mean_seconds: Option<f64>,
    /// The emulated GPU's mean hold per batch, and the mean batch size.
    pub compute_mean_seconds: Option<f64>,
    pub batch_size_mean: Option<f64>,
    /// Why a share could not be measured, in words.
    pub missing: Vec<String>,
}

/// The means `measure` combines, each `None` where its source had nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Means {
    pub client: Option<f64>,
    /// Failed over all answered requests, at the client.
    pub failed_share: f64,
    pub gateway: Option<f64>,
    pub at_pod: Option<f64>,
    pub predictor: Option<f64>,
    pub compute: Option<f64>,
    pub batch_size: Option<f64>,
}

impl MeasuredOverhead {
    pub fn measure(m: Means) -> MeasuredOverhead {
        let mut missing = Vec::new();
        let ingress = match (m.client, m.gateway) {
            (Some(_), Some(_)) if m.failed_share > MAX_FAILED_SHARE => {
                missing.push(format!(
                    "ingress share not measured: {:.1} % of the requests failed, and the gateway's mean counts them where the client's does not",
                    100.0 * m.failed_share
                ));
                None
            }
            (Some(c), Some(g)) => Some((c - g).max(0.0)),
            _ => {
                missing.push(
                    "ingress share not measured: no request completed through the gateway".into(),
                );
                None
            }
        };
        let queue_proxy = match (m.at_pod, m.predictor) {
            (Some(a), Some(p)) => Some((a - p).max(0.0)),
            (_, None) => {
                missing.push(
                    "queue-proxy share not measured: the predictor's request times need Prometheus (none ran, or it scraped no pod)"
                        .into(),
                );
                None
            }
            (None, _) => {
                missing.push("queue-proxy share not measured: no request reached a pod".into());
                None
            }
        };
        MeasuredOverhead {
            ingress_seconds: ingress,
            queue_proxy_seconds: queue_proxy,
            client_mean_seconds: m.client,
            gateway_mean_seconds: m.gateway,
            at_pod_mean_seconds: m.at_pod,
            predictor_mean_seconds: m.predictor,
            compute_mean_seconds: m.compute,
            batch_size_mean: m.batch_size,
            missing,
        }
    }

    /// `sc` with what this run measured added to its `[gateway]` overheads,
    /// converted to scenario time (`k` times the run-time figure), so the
    /// simulator plays what the local level played.
    pub fn added_to(&self, sc: &Scenario, k: f64) -> Scenario {
        let mut out = sc.clone();
        let scaled = |s: Option<f64>| Dur::from_secs_f64(s.unwrap_or(0.0) * k);
        let g = &mut out.gateway;
        g.ingress_overhead = Dur(g.ingress_overhead.0 + scaled(self.ingress_seconds).0);
        g.queue_proxy_overhead = Dur(g.queue_proxy_overhead.0 + scaled(self.queue_proxy_seconds).0);
        out
    }

    /// For `comparison.json` and the run's notes: every figure in scenario
    /// time (`k` times run time) and in run time.
    pub fn to_json(&self, k: f64) -> serde_json::Value {
        let ms = |s: Option<f64>| s.map(|s| s * 1e3);
        let scen = |s: Option<f64>| s.map(|s| s * k * 1e3);
        serde_json::json!({
            "time_scale": k,
            "run_time_ms": {
                "ingress": ms(self.ingress_seconds),
                "queue_proxy": ms(self.queue_proxy_seconds),
                "client_mean": ms(self.client_mean_seconds),
                "gateway_mean": ms(self.gateway_mean_seconds),
                "at_pod_mean": ms(self.at_pod_mean_seconds),
                "predictor_mean": ms(self.predictor_mean_seconds),
                "compute_mean": ms(self.compute_mean_seconds),
            },
            "scenario_time_ms": {
                "ingress": scen(self.ingress_seconds),
                "queue_proxy": scen(self.queue_proxy_seconds),
                "compute_mean": scen(self.compute_mean_seconds),
            },
            "batch_size_mean": self.batch_size_mean,
            "missing": self.missing,
        })
    }

    /// One line for the run's notes.
    pub fn note(&self, k: f64) -> String {
        let f = |s: Option<f64>| match s {
            Some(s) => format!("{:.3} ms ({:.2} ms of scenario time)", s * 1e3, s * k * 1e3),
            None => "not measured".into(),
        };
        let mut line = format!(
            "the local stack's own overhead per request, measured: ingress (client to gateway and back) {}, queue-proxy (gateway to pod and back) {}",
            f(self.ingress_seconds),
            f(self.queue_proxy_seconds)
        );
        if let Some(c) = self.compute_mean_seconds {
            line += &format!(
                "; the emulated GPU held {} per batch on average ({} rows)",
                f(Some(c)),
                self.batch_size_mean
                    .map_or("?".to_string(), |b| format!("{b:.2}"))
            );
        }
        for m in &self.missing {
            line += "; ";
            line += m;
        }
        line
    }
}

/// The sum over every series of `name` in Prometheus text (`name{...} v` or
/// `name v` lines), or `None` when there is none.
pub fn sum_of(text: &str, name: &str) -> Option<f64> {
    let mut total = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // `name_sum` must not match `name_sum_extra`.
        let value = match rest.chars().next() {
            Some('{') => rest.rsplit_once('}').map(|(_, v)| v),
            Some(' ') => Some(rest),
            _ => None,
        };
        if let Some(v) = value.and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok()) {
            *total.get_or_insert(0.0) += v;
        }
    }
    total
}

/// `sum / count`, or `None` when nothing was counted.
pub fn mean(sum: Option<f64>, count: Option<f64>) -> Option<f64> {
    match (sum, count) {
        (Some(s), Some(c)) if c > 0.0 => Some(s / c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GATEWAY: &str = "\
# TYPE lab_gateway_request_duration_seconds histogram
lab_gateway_request_duration_seconds_bucket{service=\"a\",le=\"0.01\"} 3
lab_gateway_request_duration_seconds_sum{service=\"a\"} 0.030
lab_gateway_request_duration_seconds_count{service=\"a\"} 3
lab_gateway_request_duration_seconds_sum{service=\"b\"} 0.050
lab_gateway_request_duration_seconds_count{service=\"b\"} 2
lab_gateway_request_duration_seconds_sum_other 99
";

    #[test]
    fn sums_add_every_series_of_the_name_and_only_it() {
        let name = "lab_gateway_request_duration_seconds";
        let sum = sum_of(GATEWAY, &format!("{name}_sum"));
        let count = sum_of(GATEWAY, &format!("{name}_count"));
        assert_eq!(count, Some(5.0));
        assert!((mean(sum, count).unwrap() - 0.016).abs() < 1e-12);
        assert_eq!(sum_of(GATEWAY, "absent"), None);
        assert_eq!(mean(Some(1.0), Some(0.0)), None);
        assert_eq!(sum_of("x 2\nx{a=\"1\"} 3\n", "x"), Some(5.0));
    }

    #[test]
    fn the_shares_are_differences_of_the_means_and_missing_ones_say_why() {
        let m = MeasuredOverhead::measure(Means {
            client: Some(0.0200),
            failed_share: 0.0,
            gateway: Some(0.0195),
            at_pod: Some(0.0190),
            predictor: Some(0.0183),
            ..Means::default()
        });
        assert!((m.ingress_seconds.unwrap() - 0.0005).abs() < 1e-12);
        assert!((m.queue_proxy_seconds.unwrap() - 0.0007).abs() < 1e-12);
        assert!(m.missing.is_empty());
        let m = MeasuredOverhead::measure(Means {
            client: Some(0.02),
            failed_share: 0.2,
            gateway: Some(0.01),
            at_pod: Some(0.01),
            predictor: None,
            ..Means::default()
        });
        assert_eq!((m.ingress_seconds, m.queue_proxy_seconds), (None, None));
        assert!(
            m.missing[0].contains("20.0 % of the requests failed"),
            "{:?}",
            m.missing
        );
        assert!(m.missing[1].contains("Prometheus"), "{:?}", m.missing);
        // A clock's noise never makes a negative overhead.
        let m = MeasuredOverhead::measure(Means {
            client: Some(0.010),
            gateway: Some(0.011),
            ..Means::default()
        });
        assert_eq!(m.ingress_seconds, Some(0.0));
    }

    #[test]
    fn the_simulator_is_given_k_times_the_run_time_figure_on_top_of_the_scenarios() {
        let text = r#"
name = "h"
[gateway]
ingress_overhead = "1ms"
[[node_pools]]
name = "cpu"
price_per_hour = 1
max_nodes = 1
[[services]]
name = "s"
resources = { cpu = "1" }
[[services.latency]]
gpu = "cpu"
batch_latency = { "1" = "10ms" }
[[traffic]]
phases = [{ kind = "constant", rate = 1, duration = "10s" }]
"#;
        let sc = lab_scenario::parse(text, "h.toml", std::path::Path::new("."), &[])
            .unwrap_or_else(|e| panic!("{e}"));
        let m = MeasuredOverhead {
            ingress_seconds: Some(0.0004),
            queue_proxy_seconds: Some(0.0008),
            compute_mean_seconds: Some(0.0017),
            batch_size_mean: Some(1.0),
            ..MeasuredOverhead::default()
        };
        let given = m.added_to(&sc, 10.0);
        assert_eq!(given.gateway.ingress_overhead, Dur::from_millis(5));
        assert_eq!(given.gateway.queue_proxy_overhead, Dur::from_millis(8));
        assert_eq!(given.services, sc.services, "nothing else changes");
        let none = MeasuredOverhead::default().added_to(&sc, 10.0);
        assert_eq!(none, sc);
        let j = m.to_json(10.0);
        let scenario_ms = j["scenario_time_ms"]["queue_proxy"].as_f64().unwrap();
        assert!((scenario_ms - 8.0).abs() < 1e-9, "{j}");
        assert!(
            m.note(10.0).contains("0.800 ms (8.00 ms of scenario time)"),
            "{}",
            m.note(10.0)
        );
        assert!(
            m.note(10.0).contains(
                "held 1.700 ms (17.00 ms of scenario time) per batch on average (1.00 rows)"
            ),
            "{}",
            m.note(10.0)
        );
        let hold = j["scenario_time_ms"]["compute_mean"].as_f64().unwrap();
        assert!((hold - 17.0).abs() < 1e-9, "{j}");
    }
}
