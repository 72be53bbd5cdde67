//! HPA Pods, Object and External metrics read from the run's Prometheus, as
//! a prometheus-adapter with its default rules serves them to the HPA: a
//! gauge as its value, a counter (`…_total`) as its `rate()` over the
//! scenario's rate window; per pod for a Pods metric, summed over the
//! service's version for Object and External ones. Only metrics that exist
//! in this run's Prometheus are queried (the predictor's `lab_predictor_*`,
//! the gateway's `kn_*` and `lab_gateway_*`); a hand-written signal name such
//! as `concurrency` keeps the value the controller observes itself.

use lab_autoscale::spec::{MetricSourceType, MetricSpec};
use lab_autoscale::{reading_for, HpaSpec, Reading};

/// One query the controller runs before an HPA decides.
#[derive(Debug, Clone, PartialEq)]
pub struct HpaQuery {
    /// Per pod (`sum by (pod)`) for a Pods metric; one value otherwise.
    pub per_pod: bool,
    pub reading: Reading,
    pub query: String,
}

/// Metric families this run's Prometheus scrapes.
fn exported(name: &str) -> bool {
    ["lab_predictor_", "kn_", "lab_gateway_"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// The queries for an HPA's metrics on one version of a service.
pub fn hpa_queries(
    hpa: &HpaSpec,
    service: &str,
    revision: &str,
    rate_window_seconds: f64,
) -> Result<Vec<HpaQuery>, String> {
    let mut out = Vec::new();
    for m in &hpa.metrics {
        let Some((id, per_pod)) = identifier(m) else {
            continue;
        };
        if !exported(&id.name) {
            continue;
        }
        let reading = reading_for(&id.name, id.signal)?;
        let selector = format!(
            "{}{{service=\"{service}\",revision=\"{revision}\"}}",
            id.name
        );
        // Prometheus wants a whole number of milliseconds in a range.
        let window = format!("{}ms", (rate_window_seconds * 1e3).round().max(1.0) as u64);
        let series = if id.name.ends_with("_total") {
            format!("rate({selector}[{window}])")
        } else {
            selector
        };
        let query = if per_pod {
            format!("sum by (pod) ({series})")
        } else {
            format!("sum({series})")
        };
        out.push(HpaQuery {
            per_pod,
            reading,
            query,
        });
    }
    Ok(out)
}

fn identifier(m: &MetricSpec) -> Option<(&lab_autoscale::spec::MetricIdentifier, bool)> {
    match m.type_ {
        MetricSourceType::Pods => m.pods.as_ref().map(|p| (&p.metric, true)),
        MetricSourceType::Object => m.object.as_ref().map(|o| (&o.metric, false)),
        MetricSourceType::External => m.external.as_ref().map(|e| (&e.metric, false)),
        MetricSourceType::Resource | MetricSourceType::ContainerResource => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hpa(toml_metrics: &str) -> HpaSpec {
        toml::from_str(toml_metrics).unwrap()
    }

    #[test]
    fn gauges_are_read_per_pod_and_counters_as_rates() {
        let spec = hpa(r#"
metrics = [
  { type = "Pods", pods = { metric = { name = "lab_predictor_inflight_requests" }, target = { type = "AverageValue", averageValue = "8" } } },
  { type = "External", external = { metric = { name = "lab_predictor_requests_total" }, target = { type = "Value", value = "100" } } },
  { type = "Pods", pods = { metric = { name = "concurrency" }, target = { type = "AverageValue", averageValue = "8" } } },
  { type = "Resource", resource = { name = "cpu", target = { type = "Utilization", averageUtilization = 80 } } },
]
"#);
        let q = hpa_queries(&spec, "ranker", "default", 60.0).unwrap();
        assert_eq!(
            q.len(),
            2,
            "CPU and a hand-written name are not queried: {q:?}"
        );
        assert_eq!(
            q[0].query,
            r#"sum by (pod) (lab_predictor_inflight_requests{service="ranker",revision="default"})"#
        );
        assert!(q[0].per_pod);
        assert_eq!(
            q[1].query,
            r#"sum(rate(lab_predictor_requests_total{service="ranker",revision="default"}[60000ms]))"#
        );
        assert!(!q[1].per_pod);
        assert_eq!(
            q[1].reading.signal,
            lab_autoscale::Signal::RequestsPerSecond
        );
    }
}
